#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

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
    if (channels != 1 && channels != 3) {
        snprintf(err, errlen, "models with %d input channels cannot take images", channels);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open image '%s'", path);
        return -1;
    }
    int w, h, n;
    unsigned char *px = stbi_load_from_file(f, &w, &h, &n, channels);
    fclose(f);
    return finish(px, w, h, channels, img, err, errlen);
}

int eex_image_load_memory(const unsigned char *buf, size_t size, int channels, eex_image *img, char *err,
                          size_t errlen)
{
    memset(img, 0, sizeof *img);
    if (size > 0x7fffffff || (channels != 1 && channels != 3)) {
        snprintf(err, errlen, "bad image buffer or channel count");
        return -1;
    }
    int w, h, n;
    unsigned char *px = stbi_load_from_memory(buf, (int)size, &w, &h, &n, channels);
    return finish(px, w, h, channels, img, err, errlen);
}

void eex_image_free(eex_image *img)
{
    if (img->px)
        stbi_image_free(img->px);
    img->px = NULL;
}

void eex_image_to_tensor(const eex_image *img, int oh, int ow, const float *mean, const float *std, float *out)
{
    const float sy = (float)img->h / (float)oh, sx = (float)img->w / (float)ow;
    for (int c = 0; c < img->c; c++) {
        const float m = mean ? mean[c] : 0.0f, s = std ? std[c] : 1.0f;
        for (int y = 0; y < oh; y++) {
            float fy = ((float)y + 0.5f) * sy - 0.5f;
            if (fy < 0)
                fy = 0;
            int y0 = (int)fy;
            if (y0 > img->h - 1)
                y0 = img->h - 1;
            const int y1 = y0 + 1 < img->h ? y0 + 1 : y0;
            const float wy = fy - (float)y0;
            for (int x = 0; x < ow; x++) {
                float fx = ((float)x + 0.5f) * sx - 0.5f;
                if (fx < 0)
                    fx = 0;
                int x0 = (int)fx;
                if (x0 > img->w - 1)
                    x0 = img->w - 1;
                const int x1 = x0 + 1 < img->w ? x0 + 1 : x0;
                const float wx = fx - (float)x0;
                const unsigned char *p = img->px;
                const int C = img->c, W = img->w;
                const float v = (1 - wy) * ((1 - wx) * p[(y0 * W + x0) * C + c] + wx * p[(y0 * W + x1) * C + c]) +
                                wy * ((1 - wx) * p[(y1 * W + x0) * C + c] + wx * p[(y1 * W + x1) * C + c]);
                out[((size_t)c * oh + y) * ow + x] = (v / 255.0f - m) / s;
            }
        }
    }
}
