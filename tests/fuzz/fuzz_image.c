/* libFuzzer target: image decoding (stb_image through eex's wrapper) and
 * the preprocessing that follows it: spectrum and resize. */
#include <stdint.h>
#include <stdlib.h>

#include "../../tools/image.h"
#include "eex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    eex_image img;
    if (eex_image_load_memory(data, size, 0, &img, err, sizeof err) != 0)
        return 0;
    if ((size_t)img.w * img.h <= (1u << 16)) { /* the DFT is O(HW(H+W)): keep runs fast */
        uint8_t *spec = malloc((size_t)img.w * img.h);
        float plane[16 * 16];
        if (spec)
            eex_spectrum_u8(img.px, img.h, img.w, img.c, spec);
        eex_resize_channel(img.px, img.h, img.w, img.c, 0, 16, 16, 0.5f, 0.25f, plane);
        free(spec);
    }
    eex_image_free(&img);
    return 0;
}
