/* Image files to model inputs: decode (stb_image: PNG, JPEG, BMP, ...),
 * convert to the model's channel count, resize (bilinear, half-pixel
 * centres), scale to 0..1 and normalise with the model's mean/std. */
#ifndef EEX_IMAGE_H
#define EEX_IMAGE_H

#include <stddef.h>

typedef struct eex_image {
    int w, h, c;          /* c: 1 or 3 */
    unsigned char *px;    /* HWC, malloc'd */
} eex_image;

/* channels: 1 or 3. Returns 0, or -1 with a message in err. */
int eex_image_load(const char *path, int channels, eex_image *img, char *err, size_t errlen);
int eex_image_load_memory(const unsigned char *buf, size_t size, int channels, eex_image *img, char *err,
                          size_t errlen);
void eex_image_free(eex_image *img);

/* Writes a [1, c, oh, ow] NCHW float tensor: resized, /255, (v - mean) / std.
 * mean/std may be NULL (0 and 1) or hold c values. */
void eex_image_to_tensor(const eex_image *img, int oh, int ow, const float *mean, const float *std, float *out);

#endif
