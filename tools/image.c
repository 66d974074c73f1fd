#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

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

static int finish(unsigned char *px, int w, int h, int channels, eex_image *img, char *err, size_t errlen)
{
    if (!px) {
        snprintf(err, errlen, "cannot decode image: %s", stbi_failure_reason());
        return -1;
    }
    if (w < 1 || h < 1 || w > 16384 || h > 16384) {
        stbi_image_free(px);
        snprintf(err, errlen, "image size %dx%d is out of range", w, h);
        return -1;
    }
    img->w = w, img->h = h, img->c = channels, img->px = px;
    return 0;
}

int eex_image_load(const char *path, int channels, eex_image *img, char *err, size_t errlen)
{
    memset(img, 0, sizeof *img);
    if (channels != 0 && channels != 1 && channels != 3) {
        snprintf(err, errlen, "models with %d input channels cannot take images", channels);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open image '%s'", path);
        return -1;
    }
    /* read whole: the JPEG check needs the bytes, and images are small */
    unsigned char *buf = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                snprintf(err, errlen, "image '%s' is too large or memory ran out", path);
                return -1;
            }
            buf = nb;
        }
        const size_t got = fread(buf + size, 1, cap - size, f);
        size += got;
        if (!got)
            break;
    }
    fclose(f);
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
    if (jpeg_tables_bad(buf, size)) {
        snprintf(err, errlen, "cannot decode image: corrupt JPEG Huffman table");
        return -1;
    }
    if (png_first_idat_empty(buf, size)) {
        snprintf(err, errlen, "cannot decode image: PNG whose first IDAT chunk is empty");
        return -1;
    }
    int w, h, n;
    if (channels == 0)
        channels = stbi_info_from_memory(buf, (int)size, &w, &h, &n) && n <= 2 ? 1 : 3;
    unsigned char *px = stbi_load_from_memory(buf, (int)size, &w, &h, &n, channels);
    return finish(px, w, h, channels, img, err, errlen);
}

void eex_image_free(eex_image *img)
{
    if (img->px)
        stbi_image_free(img->px);
    img->px = NULL;
}
