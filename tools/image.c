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
    if (channels != 0 && channels != 1 && channels != 3) {
        snprintf(err, errlen, "models with %d input channels cannot take images", channels);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open image '%s'", path);
        return -1;
    }
    int w, h, n;
    if (channels == 0) {  /* as stored: gray stays gray, colour becomes RGB */
        channels = stbi_info_from_file(f, &w, &h, &n) && n <= 2 ? 1 : 3;
    }
    unsigned char *px = stbi_load_from_file(f, &w, &h, &n, channels);
    fclose(f);
    return finish(px, w, h, channels, img, err, errlen);
}

int eex_image_load_memory(const unsigned char *buf, size_t size, int channels, eex_image *img, char *err,
                          size_t errlen)
{
    memset(img, 0, sizeof *img);
    if (size > 0x7fffffff || (channels != 0 && channels != 1 && channels != 3)) {
        snprintf(err, errlen, "bad image buffer or channel count");
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
