/* libFuzzer target: the wire frame decoder (offload/wire.c, pack.c, codec.c,
 * hmac.c), as the server and the client meet it. The input is taken as one
 * frame: header, then the body parsers for its type, and every body parser
 * on the same bytes whatever the type (a server must survive a body that
 * does not match its header, and the CRC must not stop the fuzzer from
 * reaching the parsers). Packed payloads are unpacked and decoded into
 * buffers of exactly the size the parsed shape gives, so any overrun shows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../offload/offload.h"

#define MAX_ELEMS (1u << 16)  /* the fuzzer's own bound; the server's comes from its model */

static void body_parsers(const uint8_t *b, uint32_t len)
{
    eexw_infer q;
    char reason[EEXW_MAX_REASON];
    if (eexw_get_infer(b, len, &q, reason, sizeof reason) == 0 && q.elems <= MAX_ELEMS) {
        const size_t es = eexw_dtype_size(q.dtype);
        uint8_t *raw = malloc(q.elems * es);
        float *x = malloc(q.elems * sizeof(float));
        const uint8_t *src = q.payload;
        int ok = 1;
        if (q.packing == 1) {
            ok = eexw_unpack(q.payload, q.payload_len, q.elems, es, raw) == 0;
            src = raw;
        }
        if (ok)
            eexw_decode(src, q.elems, q.dtype, q.scale, q.zero_point, x);
        free(raw);
        free(x);
    }
    eex_cloud_answer a;
    eexw_get_result(b, len, &a);
    int code;
    char msg[64];
    eexw_get_error(b, len, &code, msg, sizeof msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static eexw_key key;
    static int have_key;
    if (!have_key) {
        eexw_key_init(&key, "fuzz-key-0123456789abcdef", 25);
        have_key = 1;
    }
    if (size < EEXW_HEADER) {
        body_parsers(data, (uint32_t)size);
        return 0;
    }
    eexw_header h;
    const int herr = eexw_get_header(data, &h);
    const size_t avail = size - EEXW_HEADER;
    if (herr || (size_t)h.body_len + eexw_trailer(h.flags) > avail) {
        /* not a whole frame: the parsers still get whatever follows the header */
        body_parsers(data + EEXW_HEADER, (uint32_t)avail);
        return 0;
    }
    /* a copy of exactly the frame's length, so reads past it are caught */
    const size_t n = EEXW_HEADER + (size_t)h.body_len + eexw_trailer(h.flags);
    uint8_t *frame = malloc(n);
    memcpy(frame, data, n);
    eexw_crc_ok(frame, h.body_len);
    if (h.flags & EEXW_F_AUTH)
        eexw_auth_check(frame, h.body_len, &key);
    body_parsers(frame + EEXW_HEADER, h.body_len);
    free(frame);
    return 0;
}
