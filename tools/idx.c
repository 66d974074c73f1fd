#include "idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

#include "budget.h"
#include "eex.h"  /* eex_crc32 */

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

/* The header and the size: 0 with out's dims and count and *off the data's
 * offset, or -1. */
static int idx_check(const uint8_t *buf, size_t size, idx_array *out, size_t *off_out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (size < 4 || buf[0] != 0 || buf[1] != 0)
        return fail(err, errlen, "idx: bad magic (not an IDX file)");
    if (buf[2] != 0x08)
        return fail(err, errlen, "idx: only unsigned-byte IDX arrays are supported");
    const int ndim = buf[3];
    if (ndim < 1 || ndim > 4)
        return fail(err, errlen, "idx: 1 to 4 dimensions supported");
    if (size < 4 + 4 * (size_t)ndim)
        return fail(err, errlen, "idx: truncated header");
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        const uint8_t *p = buf + 4 + 4 * d;
        const uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (v == 0 || v > (1u << 30))
            return fail(err, errlen, "idx: dimension out of range");
        if (count > ((size_t)1 << 40) / v)
            return fail(err, errlen, "idx: array too large");
        count *= v;
        out->dims[d] = (int)v;
    }
    const size_t off = 4 + 4 * (size_t)ndim;
    if (count != size - off)
        return fail(err, errlen, count > size - off ? "idx: file is shorter than its dimensions say"
                                                    : "idx: file is longer than its dimensions say");
    out->ndim = ndim;
    out->count = count;
    *off_out = off;
    return 0;
}

int idx_parse(const uint8_t *buf, size_t size, idx_array *out, char *err, size_t errlen)
{
    size_t off;
    if (idx_check(buf, size, out, &off, err, errlen))
        return -1;
    out->data = malloc(out->count ? out->count : 1);
    if (!out->data)
        return fail(err, errlen, "idx: out of memory");
    memcpy(out->data, buf + off, out->count);
    return 0;
}

int idx_gunzip(const uint8_t *buf, size_t size, uint8_t **out, size_t *out_size, char *err, size_t errlen)
{
    *out = NULL;
    *out_size = 0;
    if (size < 18 || buf[0] != 0x1f || buf[1] != 0x8b || buf[2] != 8)
        return fail(err, errlen, "gzip: bad header");
    const int flags = buf[3];
    size_t p = 10;
    if (flags & 0xE0)
        return fail(err, errlen, "gzip: reserved flags set");
    if (flags & 4) { /* FEXTRA */
        if (p + 2 > size)
            return fail(err, errlen, "gzip: truncated");
        p += 2 + ((size_t)buf[p] | (size_t)buf[p + 1] << 8);
    }
    for (int f = 8; f <= 16; f *= 2) /* FNAME, FCOMMENT: NUL-terminated */
        if (flags & f) {
            while (p < size && buf[p])
                p++;
            p++;
        }
    if (flags & 2) /* FHCRC */
        p += 2;
    if (p + 8 > size || size - p - 8 > 0x7fffffff)
        return fail(err, errlen, "gzip: truncated or too large");
    const uint8_t *t = buf + size - 8;
    const uint32_t crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    const uint32_t isize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
    /* the member declares its length (mod 2^32): over the budget, refused
     * before inflating; under it, inflated into exactly that many bytes, so
     * a stream that lies about its length fails as soon as it passes it */
    if (isize > cli_lim.input_bytes || isize > 0x7fffffff) {
        snprintf(err, errlen, "gzip: declares %.0f MB decompressed; the limit is %.0f MB (%s)",
                 (double)isize / (1 << 20), cli_mb(cli_lim.input_bytes), CLI_INPUT_FLAG);
        return -1;
    }
    char *data = malloc(isize ? isize : 1);
    if (!data)
        return fail(err, errlen, "gzip: out of memory");
    /* the 8-byte trailer is passed too: the bit reader may look ahead past the
     * final block, and it stops at the final block whatever follows */
    const int n = stbi_zlib_decode_noheader_buffer(data, (int)isize, (const char *)buf + p, (int)(size - p));
    if (n < 0 || (uint32_t)n != isize) {
        free(data);
        snprintf(err, errlen, "gzip: the stream does not inflate to its declared %u bytes (corrupt, or more: a "
                              "decompression bomb)", isize);
        return -1;
    }
    if (eex_crc32(0, data, (size_t)n) != crc) {
        free(data);
        return fail(err, errlen, "gzip: CRC or length mismatch");
    }
    *out = (uint8_t *)data;
    *out_size = (size_t)n;
    return 0;
}

int idx_load(const char *path, idx_array *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t size;
    if (cli_read_file(path, "IDX file", cli_lim.input_bytes, CLI_INPUT_FLAG, &buf, &size, err, errlen))
        return -1;
    if (size >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
        uint8_t *raw;
        size_t raw_size;
        const int rc = idx_gunzip(buf, size, &raw, &raw_size, err, errlen);
        free(buf);
        if (rc)
            return -1;
        buf = raw, size = raw_size;
    }
    /* parsed in place: the array takes the buffer, no second copy */
    size_t off;
    const int rc = idx_check(buf, size, out, &off, err, errlen);
    if (!rc) {
        memmove(buf, buf + off, out->count);
        out->data = buf;
    } else
        free(buf);
    return rc;
}

void idx_free(idx_array *a)
{
    free(a->data);
    a->data = NULL;
}
