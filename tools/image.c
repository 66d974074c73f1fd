#include "image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

#include "budget.h"

/* stb_image's JPEG decoder (the Debian version) writes past a table when a
 * Huffman table declares more than 256 codes; untrusted files reach it, so
 * every DHT segment is checked here first. Walks all markers, including the
 * ones between the scans of a progressive JPEG. Returns 0 when the tables are
 * sane or the file is not a JPEG. */
static int jpeg_tables_bad(const unsigned char *b, size_t n)
{
    /* the decoder takes 0xFF fill bytes before any marker, SOI included */
    size_t p = 1;
    while (p < n && b[p] == 0xFF)
        p++;
    if (n < 4 || b[0] != 0xFF || p >= n || b[p] != 0xD8)
        return 0;
    p++;
    while (p + 4 <= n) {
        if (b[p] != 0xFF) {  /* the decoder skips stray bytes to the next marker: so do we */
            p++;
            continue;
        }
        const unsigned marker = b[p + 1];
        if (marker == 0xFF) {  /* fill byte */
            p++;
            continue;
        }
        if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
            p += 2;
            continue;
        }
        if (marker == 0xD9)
            return 0;
        const size_t len = (size_t)b[p + 2] << 8 | b[p + 3];
        if (len < 2 || p + 2 + len > n)
            return marker == 0xC4;  /* a DHT cut short is not decoded safely either */
        if (marker == 0xC4) {  /* DHT: one or more tables of 1 + 16 + sum(counts) bytes */
            size_t q = p + 4;
            const size_t end = p + 2 + len;
            while (q < end) {
                if (q + 17 > end)
                    return 1;
                unsigned total = 0;
                for (int i = 1; i <= 16; i++)
                    total += b[q + i];
                if (total > 256 || q + 17 + total > end)
                    return 1;
                q += 17 + total;
            }
        }
        p += 2 + len;
        if (marker == 0xDA) {  /* entropy-coded data runs to the next real marker */
            while (p + 1 < n && !(b[p] == 0xFF && b[p + 1] != 0 && !(b[p + 1] >= 0xD0 && b[p + 1] <= 0xD7)))
                p++;
        }
    }
    return 0;
}

/* stb_image's PNG decoder computes its IDAT buffer + offset before it has
 * allocated the buffer when the first IDAT chunk is empty: NULL + 0, undefined
 * behaviour (found by tests/fuzz/fuzz_image). Walks the chunks; returns 1
 * when the first IDAT is empty, 0 otherwise or when the file is not a PNG. */
static int png_first_idat_empty(const unsigned char *b, size_t n)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (n < 8 || memcmp(b, sig, 8))
        return 0;
    size_t p = 8;
    while (p + 8 <= n) {
        const size_t len = (size_t)b[p] << 24 | (size_t)b[p + 1] << 16 | (size_t)b[p + 2] << 8 | b[p + 3];
        if (!memcmp(b + p + 4, "IDAT", 4))
            return len == 0;
        if (len > n - p - 8)
            return 0;
        p += 8 + len + 4;  /* length, type, data, CRC */
    }
    return 0;
}

/* ---- the budget, decided from the header before decoding ---- */

enum { F_NONE, F_PNG, F_JPEG, F_GIF, F_BMP, F_PNM };

static int format_of(const unsigned char *b, size_t n)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (n >= 8 && !memcmp(b, png, 8))
        return F_PNG;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return F_JPEG;
    if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6)))
        return F_GIF;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M')
        return F_BMP;
    if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6'))
        return F_PNM;
    return F_NONE;
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static unsigned le16(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

#define BAD(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* Every chunk whole, IHDR first, through IEND. */
static int png_whole(const unsigned char *b, size_t n, char *err, size_t errlen)
{
    if (n < 8 + 8 + 13 || be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4))
        return BAD("truncated or malformed PNG: no complete IHDR header chunk");
    size_t p = 8;
    while (p + 12 <= n) {
        const size_t len = be32(b + p);
        if (len > n - p - 12)
            return BAD("truncated PNG: chunk '%.4s' of %zu bytes ends past the end of the file (%zu bytes)",
                       (const char *)b + p + 4, len, n);
        if (!memcmp(b + p + 4, "IEND", 4))
            return 0;
        p += 12 + len;
    }
    return BAD("truncated PNG: the file (%zu bytes) ends before the IEND chunk", n);
}

/* The markers, through the entropy-coded data, to EOI. */
static int jpeg_whole(const unsigned char *b, size_t n, char *err, size_t errlen)
{
    size_t p = 2;
    while (p + 2 <= n) {
        if (b[p] != 0xFF) {
            p++;
            continue;
        }
        const unsigned marker = b[p + 1];
        if (marker == 0xFF) {
            p++;
            continue;
        }
        if (marker == 0xD9)
            return 0;
        if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
            p += 2;
            continue;
        }
        if (p + 4 > n)
            break;
        const size_t len = (size_t)b[p + 2] << 8 | b[p + 3];
        if (len < 2 || p + 2 + len > n)
            return BAD("truncated JPEG: marker 0x%02X of %zu bytes ends past the end of the file (%zu bytes)", marker,
                       len, n);
        p += 2 + len;
        if (marker == 0xDA)
            while (p + 1 < n && !(b[p] == 0xFF && b[p + 1] != 0 && !(b[p + 1] >= 0xD0 && b[p + 1] <= 0xD7)))
                p++;
    }
    return BAD("truncated JPEG: the file (%zu bytes) ends before its end-of-image marker", n);
}

/* Sub-blocks (a length byte, then that many bytes) up to the 0 terminator:
 * the offset after it, or 0 when the file ends first. */
static size_t gif_sub_blocks(const unsigned char *b, size_t n, size_t p)
{
    while (p < n) {
        const size_t len = b[p];
        if (!len)
            return p + 1;
        p += 1 + len;
    }
    return 0;
}

/* Header, colour tables, extensions and images, through the trailer. */
static int gif_whole(const unsigned char *b, size_t n, char *err, size_t errlen)
{
    if (n < 13)
        return BAD("truncated GIF: no complete screen descriptor");
    size_t p = 13 + (b[10] & 0x80 ? 3u * (2u << (b[10] & 7)) : 0);
    while (p < n) {
        if (b[p] == 0x3B)
            return 0;
        if (b[p] == 0x21) {  /* extension: label, sub-blocks */
            const size_t q = p + 2 <= n ? gif_sub_blocks(b, n, p + 2) : 0;
            if (!q)
                break;
            p = q;
        } else if (b[p] == 0x2C) {  /* image: descriptor, local table, LZW size, sub-blocks */
            if (p + 10 > n)
                break;
            const unsigned fl = b[p + 9];
            const size_t q0 = p + 10 + (fl & 0x80 ? 3u * (2u << (fl & 7)) : 0) + 1;
            const size_t q = q0 <= n ? gif_sub_blocks(b, n, q0) : 0;
            if (!q)
                break;
            p = q;
        } else
            return BAD("malformed GIF: block 0x%02X at byte %zu", b[p], p);
    }
    return BAD("truncated GIF: the file (%zu bytes) ends before its trailer", n);
}

/* Uncompressed pixel rows must all be in the file. */
static int bmp_whole(const unsigned char *b, size_t n, char *err, size_t errlen)
{
    if (n < 26)
        return BAD("truncated BMP: no complete header");
    const uint64_t off = le32(b + 10);
    const uint32_t hsz = le32(b + 14);
    int64_t w, h;
    unsigned bpp, comp = 0;
    if (hsz == 12) {
        w = le16(b + 18), h = le16(b + 20), bpp = le16(b + 24);
    } else {
        if (n < 34)
            return BAD("truncated BMP: no complete header");
        w = (int32_t)le32(b + 18), h = (int32_t)le32(b + 22), bpp = le16(b + 28), comp = le32(b + 30);
    }
    if (h < 0)
        h = -h;
    if (comp != 0 && comp != 3)
        return 0;  /* compressed: the decoder finds out */
    const uint64_t row = ((uint64_t)(w < 0 ? 0 : w) * bpp + 31) / 32 * 4;
    const uint64_t need = off + row * (uint64_t)h;
    if (need > n)
        return BAD("truncated BMP: %lldx%lld at %u bits needs %llu bytes, the file has %zu", (long long)w, (long long)h,
                   bpp, (unsigned long long)need, n);
    return 0;
}

/* Binary PGM/PPM: the header's w x h x channels x (1 or 2) bytes follow it. */
static int pnm_whole(const unsigned char *b, size_t n, char *err, size_t errlen)
{
    size_t p = 2;
    uint64_t v[3];
    for (int k = 0; k < 3; k++) {
        for (;;) {  /* whitespace and comments */
            while (p < n && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r'))
                p++;
            if (p < n && b[p] == '#') {
                while (p < n && b[p] != '\n')
                    p++;
                continue;
            }
            break;
        }
        if (p >= n || b[p] < '0' || b[p] > '9')
            return BAD("truncated or malformed PGM/PPM header");
        v[k] = 0;
        while (p < n && b[p] >= '0' && b[p] <= '9' && v[k] < 1000000000)
            v[k] = v[k] * 10 + (uint64_t)(b[p++] - '0');
    }
    p++;  /* the single whitespace before the pixels */
    const uint64_t need = p + v[0] * v[1] * (b[1] == '6' ? 3u : 1u) * (v[2] > 255 ? 2u : 1u);
    if (need > n)
        return BAD("truncated PGM/PPM: %llux%llu needs %llu bytes, the file has %zu", (unsigned long long)v[0],
                   (unsigned long long)v[1], (unsigned long long)need, n);
    return 0;
}

int eex_image_load(const char *path, int channels, eex_image *img, char *err, size_t errlen)
{
    memset(img, 0, sizeof *img);
    if (channels != 0 && channels != 1 && channels != 3) {
        snprintf(err, errlen, "models with %d input channels cannot take images", channels);
        return -1;
    }
    unsigned char *buf;
    size_t size;
    if (cli_read_file(path, "image", cli_lim.input_bytes, CLI_INPUT_FLAG, &buf, &size, err, errlen))
        return -1;
    const int rc = eex_image_load_memory(buf, size, channels, img, err, errlen);
    free(buf);
    return rc;
}

int eex_image_load_memory(const unsigned char *buf, size_t size, int channels, eex_image *img, char *err,
                          size_t errlen)
{
    memset(img, 0, sizeof *img);
    if (size > 0x7fffffff || (channels != 0 && channels != 1 && channels != 3)) {
        snprintf(err, errlen, "bad image buffer or channel count");
        return -1;
    }
    const int fmt = format_of(buf, size);
    if (fmt == F_NONE)
        return BAD("cannot decode image: not a format eex reads (PNG, JPEG, GIF, BMP, binary PGM/PPM): %s",
                   size < 4 ? "the file is shorter than any image header" : "unknown signature");
    const int whole = fmt == F_PNG ? png_whole(buf, size, err, errlen)
                      : fmt == F_JPEG ? jpeg_whole(buf, size, err, errlen)
                      : fmt == F_GIF ? gif_whole(buf, size, err, errlen)
                      : fmt == F_BMP ? bmp_whole(buf, size, err, errlen)
                                     : pnm_whole(buf, size, err, errlen);
    if (whole)
        return -1;
    /* before stbi_info too: reading a JPEG's header builds its Huffman tables */
    if (jpeg_tables_bad(buf, size)) {
        snprintf(err, errlen, "cannot decode image: corrupt JPEG Huffman table");
        return -1;
    }
    if (png_first_idat_empty(buf, size)) {
        snprintf(err, errlen, "cannot decode image: PNG whose first IDAT chunk is empty");
        return -1;
    }
    int w, h, n;
    if (!stbi_info_from_memory(buf, (int)size, &w, &h, &n))
        return BAD("cannot read the image header: %s", stbi_failure_reason());
    if (w < 1 || h < 1 || w > 16384 || h > 16384)
        return BAD("image size %dx%d is out of range (1..16384)", w, h);
    /* what the decoder holds at once, per pixel: the output (4 at most);
     * a PNG also its inflated rows (4 for 8-bit RGBA); a GIF its
     * canvas, background and history (9) */
    const double need = (double)w * h * (fmt == F_GIF ? 9 : fmt == F_PNG ? 8 : 4);
    if (need > (double)cli_lim.input_bytes)
        return BAD("image of %dx%d pixels: decoding it takes about %.0f MB; the limit is %.0f MB (%s)", w, h,
                   need / (1 << 20), cli_mb(cli_lim.input_bytes), CLI_INPUT_FLAG);
    if (channels == 0)
        channels = n <= 2 ? 1 : 3;
    unsigned char *px = stbi_load_from_memory(buf, (int)size, &w, &h, &n, channels);
    if (!px) {
        /* stb keeps the last reason any of its decoders gave, also one that
         * tried the file as another format: say only what is about this one */
        static const char *const names[] = {"", "PNG", "JPEG", "GIF", "BMP", "PGM/PPM"};
        const char *why = stbi_failure_reason();
        for (int f = F_PNG; f <= F_PNM; f++)
            if (f != fmt && why && strstr(why, names[f]))
                why = "corrupt or unsupported data";
        return BAD("cannot decode image: %s: %s", names[fmt], why ? why : "corrupt or unsupported data");
    }
    img->w = w, img->h = h, img->c = channels, img->px = px;
    return 0;
}

void eex_image_free(eex_image *img)
{
    if (img->px)
        stbi_image_free(img->px);
    img->px = NULL;
}
