/* Image files: decoding with stb_image (PNG, JPEG, BMP, GIF, PNM, ...). */
#ifndef EEX_IMAGE_H
#define EEX_IMAGE_H

#include <stddef.h>

typedef struct eex_image {
    int w, h, c;          /* c: 1 or 3 */
    unsigned char *px;    /* HWC, malloc'd */
} eex_image;

/* channels: 1 or 3, or 0 for the file's own (1 for gray, else 3).
 * Returns 0, or -1 with a message in err. The library's
 * eex_session_set_image does the resizing and normalisation. */
int eex_image_load(const char *path, int channels, eex_image *img, char *err, size_t errlen);
int eex_image_load_memory(const unsigned char *buf, size_t size, int channels, eex_image *img, char *err,
                          size_t errlen);
void eex_image_free(eex_image *img);

#endif
