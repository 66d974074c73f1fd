/* The v1 frames: layout, CRC, and the three bodies (docs/protocol.md), the
 * error codes with the statuses they map to (the one table the server and
 * the client use), and the client's first request id. All integers
 * little-endian; floats IEEE binary32 in little-endian byte order. Readers
 * check every length against what is left before reading it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "../base/crc32.h"
#include "offload.h"

void eexw_put_f32(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    eexw_put_u32(p, u);
}

float eexw_f32(const uint8_t *p)
{
    const uint32_t u = eexw_u32(p);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

const char *eexw_error_name(int code)
{
    static const char *const names[] = {"?", "malformed", "version", "too_large", "crc", "digest", "request",
                                        "timeout", "shutdown", "numeric", "type", "internal",
                                        "auth", "replay"};
    return code > 0 && code <= EEX_WIRE_ERR_REPLAY ? names[code] : "?";
}

/* Error codes and the statuses they stand for, both ways. */
static const struct {
    int code;
    eex_status st;
} PAIRS[] = {{EEX_WIRE_ERR_DIGEST, EEX_ERR_NOT_FOUND},
             {EEX_WIRE_ERR_REQUEST, EEX_ERR_ARGUMENT},
             {EEX_WIRE_ERR_NUMERIC, EEX_ERR_NUMERIC},
             {EEX_WIRE_ERR_VERSION, EEX_ERR_VERSION}};

int eexw_error_of_status(eex_status st)
{
    for (size_t i = 0; i < sizeof PAIRS / sizeof PAIRS[0]; i++)
        if (PAIRS[i].st == st)
            return PAIRS[i].code;
    return EEX_WIRE_ERR_INTERNAL;
}

eex_status eexw_status_of_error(int code)
{
    for (size_t i = 0; i < sizeof PAIRS / sizeof PAIRS[0]; i++)
        if (PAIRS[i].code == code)
            return PAIRS[i].st;
    return EEX_ERR_IO;
}

int eexw_error_keeps_open(int code)
{
    return code == EEX_WIRE_ERR_DIGEST || code == EEX_WIRE_ERR_REQUEST || code == EEX_WIRE_ERR_NUMERIC || code == EEX_WIRE_ERR_INTERNAL;
}

/* Random per client, so that two edge processes (or one restarted) never
 * number requests alike and a reply recorded for one request id never meets
 * a request with that id again (docs/protocol.md, "Replies bound to
 * requests"). Below 2^62: ids never wrap. */
uint64_t eexw_random_id_base(void)
{
    uint64_t v = 0;
    size_t got = 0;
    while (got < sizeof v) {
        const ssize_t r = getrandom((uint8_t *)&v + got, sizeof v - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < sizeof v) {  /* no getrandom: a weaker mix, still different per process and instant */
        const double t = eex_now_ms();
        memcpy(&v, &t, sizeof v);
        v ^= (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)&v;
        v *= 0x9e3779b97f4a7c15ull;
    }
    v &= (1ull << 62) - 1;
    return v ? v : 1;
}

void eexw_put_header(uint8_t *p, int type, uint64_t request_id, uint32_t body_len)
{
    memcpy(p, EEXW_MAGIC, 4);
    p[4] = EEXW_VERSION;
    p[5] = (uint8_t)type;
    eexw_put_u16(p + 6, 0);
    eexw_put_u64(p + 8, request_id);
    eexw_put_u32(p + 16, body_len);
}

int eexw_get_header(const uint8_t *p, eexw_header *h)
{
    if (memcmp(p, EEXW_MAGIC, 4))
        return EEX_WIRE_ERR_MALFORMED;
    h->version = p[4];
    h->type = p[5];
    h->flags = eexw_u16(p + 6);
    h->request_id = eexw_u64(p + 8);
    h->body_len = eexw_u32(p + 16);
    if (h->version != EEXW_VERSION)
        return EEX_WIRE_ERR_VERSION;
    if ((unsigned)h->flags & ~EEXW_F_KNOWN)
        return EEX_WIRE_ERR_MALFORMED;
    return 0;
}

static size_t finish(uint8_t *frame, uint32_t body_len, const eexw_key *key, const uint8_t *bind)
{
    size_t n = EEXW_HEADER + (size_t)body_len;
    if (key) {
        eexw_put_u16(frame + 6, (uint16_t)(eexw_u16(frame + 6) | EEXW_F_AUTH));
        eexw_hmac2(key, frame, n, bind, bind ? EEXW_TAG : 0, frame + n);
        n += EEXW_TAG;
    }
    eexw_put_u32(frame + n, eex_crc32(0, frame, n));
    return n + EEXW_TRAILER;
}

size_t eexw_finish(uint8_t *frame, uint32_t body_len, const eexw_key *key) { return finish(frame, body_len, key, NULL); }

size_t eexw_finish_reply(uint8_t *frame, uint32_t body_len, const eexw_key *key, const uint8_t bind[EEXW_TAG])
{
    static const uint8_t zeros[EEXW_TAG];
    return finish(frame, body_len, key, bind ? bind : zeros);
}

void eexw_seal(uint8_t *frame, uint32_t body_len) { eexw_finish(frame, body_len, NULL); }

int eexw_crc_ok(const uint8_t *frame, uint32_t body_len)
{
    const size_t n = EEXW_HEADER + (size_t)body_len + eexw_trailer(eexw_u16(frame + 6)) - EEXW_TRAILER;
    return eexw_u32(frame + n) == eex_crc32(0, frame, n);
}

static int auth_check(const uint8_t *frame, uint32_t body_len, const eexw_key *key, const uint8_t *bind)
{
    if (!(eexw_u16(frame + 6) & EEXW_F_AUTH))
        return 1;
    uint8_t tag[EEXW_TAG];
    const size_t n = EEXW_HEADER + (size_t)body_len;
    eexw_hmac2(key, frame, n, bind, bind ? EEXW_TAG : 0, tag);
    return eexw_tag_equal(tag, frame + n) ? 0 : 2;
}

int eexw_auth_check(const uint8_t *frame, uint32_t body_len, const eexw_key *key)
{
    return auth_check(frame, body_len, key, NULL);
}

int eexw_auth_check_reply(const uint8_t *frame, uint32_t body_len, const eexw_key *key, const uint8_t bind[EEXW_TAG])
{
    static const uint8_t zeros[EEXW_TAG];
    return auth_check(frame, body_len, key, bind ? bind : zeros);
}

size_t eexw_infer_body_len(int rank, size_t elems, int dtype)
{
    return EEXW_INFER_FIXED + 4u * (size_t)rank + elems * eexw_dtype_size(dtype);
}

size_t eexw_infer_body_max(int rank, size_t elems, int dtype)
{
    if (dtype == EEXW_Q4)  /* its raw bytes are at most 4 x elems (eexw_get_infer) */
        return EEXW_INFER_FIXED + 4u * (size_t)rank + eexw_pack_bound(4 * elems, 1);
    return EEXW_INFER_FIXED + 4u * (size_t)rank + eexw_pack_bound(elems, eexw_dtype_size(dtype));
}

size_t eexw_put_infer(uint8_t *b, const eexw_infer *q)
{
    memcpy(b, q->digest, EEX_DIGEST_BYTES);
    eexw_put_u16(b + 32, (uint16_t)q->cut);
    eexw_put_u16(b + 34, (uint16_t)q->expert);
    b[36] = (uint8_t)q->metric;
    b[37] = (uint8_t)q->dtype;
    b[38] = (uint8_t)q->rank;
    b[39] = (uint8_t)q->packing;
    eexw_put_f32(b + 40, q->threshold);
    eexw_put_f32(b + 44, q->scale);
    eexw_put_u32(b + 48, (uint32_t)q->zero_point);
    for (int d = 0; d < q->rank; d++)
        eexw_put_u32(b + EEXW_INFER_FIXED + 4 * d, (uint32_t)q->dims[d]);
    return EEXW_INFER_FIXED + 4u * (size_t)q->rank;
}

#define BAD(...) (snprintf(reason, cap, __VA_ARGS__), EEX_WIRE_ERR_REQUEST)

int eexw_get_infer(const uint8_t *b, uint32_t len, eexw_infer *q, char *reason, size_t cap)
{
    memset(q, 0, sizeof *q);
    if (len < EEXW_INFER_FIXED)
        return BAD("INFER body of %u bytes is shorter than its %d fixed bytes", len, EEXW_INFER_FIXED);
    memcpy(q->digest, b, EEX_DIGEST_BYTES);
    q->cut = eexw_u16(b + 32);
    q->expert = eexw_u16(b + 34);
    q->metric = b[36];
    q->dtype = b[37];
    q->rank = b[38];
    q->packing = b[39];
    q->threshold = eexw_f32(b + 40);
    q->scale = eexw_f32(b + 44);
    q->zero_point = (int32_t)eexw_u32(b + 48);
    if (q->metric > 1)
        return BAD("unknown metric %d", q->metric);
    if (!eexw_dtype_size(q->dtype))
        return BAD("unknown dtype %d (1 f32, 2 f16, 3 i8, 4 q4)", q->dtype);
    if (q->packing > 1)
        return BAD("unknown payload packing %d (0 raw, 1 planes)", q->packing);
    if (q->rank < 1 || q->rank > EEX_MAX_RANK)
        return BAD("rank %d is outside 1..%d", q->rank, EEX_MAX_RANK);
    if (!(q->threshold == q->threshold))
        return BAD("threshold is NaN");
    if (q->dtype == EEXW_I8 && (!(q->scale > 0.0f) || q->scale > 3.0e38f || q->zero_point < -128 || q->zero_point > 127))
        return BAD("int8 scale %g / zero point %d out of range", (double)q->scale, (int)q->zero_point);
    if (len < EEXW_INFER_FIXED + 4u * (uint32_t)q->rank)
        return BAD("INFER body ends inside its dims");
    size_t elems = 1;
    for (int d = 0; d < q->rank; d++) {
        const uint32_t v = eexw_u32(b + EEXW_INFER_FIXED + 4 * d);
        if (v == 0 || v > EEXW_MAX_BODY)
            return BAD("dim %d is %u", d, v);
        q->dims[d] = v;
        elems *= v;
        if (elems > EEXW_MAX_BODY)
            return BAD("tensor of more than %u elements", EEXW_MAX_BODY);
    }
    q->elems = elems;
    const size_t head = EEXW_INFER_FIXED + 4u * (size_t)q->rank;
    q->payload = b + head;
    q->payload_len = len - head;
    const size_t raw = eexw_raw_bytes(q->dtype, elems, q->rank > 1 ? (size_t)q->dims[1] : 1);
    if (q->dtype == EEXW_Q4 && raw > 4 * elems)
        return BAD("q4 needs at least 2 elements a channel (%zu elements)", elems);
    if (q->packing == 0 && q->payload_len != raw)
        return BAD("payload of %zu bytes, the shape and dtype say %zu", q->payload_len, raw);
    /* byte planes of the raw bytes; q4's raw bytes are packed as one plane */
    const size_t unit = q->dtype == EEXW_Q4 ? 1 : eexw_dtype_size(q->dtype), units = raw / unit;
    if (q->packing == 1 && (q->payload_len < unit || q->payload_len > eexw_pack_bound(units, unit)))
        return BAD("packed payload of %zu bytes for %zu elements", q->payload_len, elems);
    return 0;
}

uint32_t eexw_put_result(uint8_t *b, const eex_cloud_answer *a)
{
    const int n = a->n < 0 ? 0 : a->n > EEX_MAX_EXITS + 1 ? EEX_MAX_EXITS + 1 : a->n;
    eexw_put_u16(b, 0);
    b[2] = (uint8_t)a->exit;
    b[3] = (uint8_t)n;
    eexw_put_u32(b + 4, (uint32_t)a->cls);
    eexw_put_f32(b + 8, a->confidence);
    const double us = a->server_ms * 1000.0;
    eexw_put_u32(b + 12, us < 0 ? 0u : us > 4e9 ? 4000000000u : (uint32_t)us);
    for (int i = 0; i < n; i++) {
        uint8_t *e = b + EEXW_RESULT_FIXED + EEXW_RESULT_ENTRY * i;
        eexw_put_u16(e, (uint16_t)(a->first_exit + i));
        eexw_put_u16(e + 2, 0);
        eexw_put_u32(e + 4, (uint32_t)a->classes[i]);
        eexw_put_f32(e + 8, a->confidences[i]);
    }
    return EEXW_RESULT_FIXED + EEXW_RESULT_ENTRY * (uint32_t)n;
}

int eexw_get_result(const uint8_t *b, uint32_t len, eex_cloud_answer *a)
{
    memset(a, 0, sizeof *a);
    if (len < EEXW_RESULT_FIXED || eexw_u16(b) != 0)
        return -1;
    a->exit = b[2];
    a->n = b[3];
    if (a->n < 1 || a->n > EEX_MAX_EXITS + 1 || len != EEXW_RESULT_FIXED + EEXW_RESULT_ENTRY * (uint32_t)a->n)
        return -1;
    a->cls = (int32_t)eexw_u32(b + 4);
    a->confidence = eexw_f32(b + 8);
    a->server_ms = eexw_u32(b + 12) / 1000.0;
    for (int i = 0; i < a->n; i++) {
        const uint8_t *e = b + EEXW_RESULT_FIXED + EEXW_RESULT_ENTRY * i;
        const int k = eexw_u16(e);
        if (i == 0)
            a->first_exit = k;
        else if (k != a->first_exit + i)
            return -1;
        a->classes[i] = (int32_t)eexw_u32(e + 4);
        a->confidences[i] = eexw_f32(e + 8);
    }
    return a->first_exit >= 1 && a->exit >= a->first_exit && a->exit < a->first_exit + a->n ? 0 : -1;
}

uint32_t eexw_put_error(uint8_t *b, int code, const char *reason)
{
    size_t n = reason ? strlen(reason) : 0;
    n = n > EEXW_MAX_REASON ? EEXW_MAX_REASON : n;
    eexw_put_u16(b, (uint16_t)code);
    eexw_put_u16(b + 2, (uint16_t)n);
    memcpy(b + 4, reason ? reason : "", n);
    return 4u + (uint32_t)n;
}

int eexw_get_error(const uint8_t *b, uint32_t len, int *code, char *reason, size_t cap)
{
    if (len < 4)
        return -1;
    *code = eexw_u16(b);
    const uint32_t n = eexw_u16(b + 2);
    if (n > EEXW_MAX_REASON || len != 4 + n)
        return -1;
    size_t k = n < cap - 1 ? n : cap - 1;
    for (size_t i = 0; i < k; i++)  /* printable only: the reason goes to logs and terminals */
        reason[i] = b[4 + i] >= 0x20 && b[4 + i] < 0x7f ? (char)b[4 + i] : '?';
    reason[k] = '\0';
    return 0;
}
