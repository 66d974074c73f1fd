/* Distortions for evaluation, exactly as docs/distortions.md defines them so
 * that converter/distort.py gives the same images. */
#include <math.h>
#include <stdlib.h>

#include "../base/status.h"
#include "eex.h"

static const uint64_t GOLDEN = 0x9E3779B97F4A7C15ull;

uint64_t eex_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += GOLDEN);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *state) { return (double)(eex_splitmix64(state) >> 11) * 0x1.0p-53; }

static uint8_t to_u8(double v)
{
    const double r = floor(v + 0.5);
    return (uint8_t)(r < 0.0 ? 0.0 : (r > 255.0 ? 255.0 : r));
}

eex_status eex_noise_u8(const uint8_t *src, uint8_t *dst, int h, int w, int c, double sigma, uint64_t seed)
{
    if (!src || !dst || h < 1 || w < 1 || c < 1 || !(sigma >= 0.0) || !isfinite(sigma))
        return eex_fail(EEX_ERR_ARGUMENT, "noise: bad image or sigma %g", sigma);
    uint64_t state = seed;
    const size_t n = (size_t)h * w * c;
    for (size_t i = 0; i < n; i++) {
        const double u1 = uniform(&state), u2 = uniform(&state);
        const double z = sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
        dst[i] = to_u8((double)src[i] + sigma * z);
    }
    return EEX_OK;
}

eex_status eex_blur_u8(const uint8_t *src, uint8_t *dst, int h, int w, int c, double sigma)
{
    if (!src || !dst || h < 1 || w < 1 || c < 1 || !(sigma > 0.0) || sigma > 100.0)
        return eex_fail(EEX_ERR_ARGUMENT, "blur: bad image or sigma %g (0 < sigma <= 100)", sigma);
    const int r = (int)ceil(2.0 * sigma);
    double *k = malloc(sizeof(double) * (size_t)(2 * r + 1));
    double *tmp = malloc(sizeof(double) * (size_t)h * w * c);
    if (!k || !tmp) {
        free(k), free(tmp);
        return eex_fail(EEX_ERR_NOMEM, "blur: out of memory for a %dx%d image", w, h);
    }
    double sum = 0.0;
    for (int j = -r; j <= r; j++)
        sum += (k[j + r] = exp(-(double)(j * j) / (2.0 * sigma * sigma)));
    for (int j = 0; j <= 2 * r; j++)
        k[j] /= sum;
    /* horizontal pass into tmp; zero outside the image */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                double acc = 0.0;
                for (int j = -r; j <= r; j++) {
                    const int xx = x + j;
                    if (xx >= 0 && xx < w)
                        acc += k[j + r] * src[((size_t)y * w + xx) * c + ch];
                }
                tmp[((size_t)y * w + x) * c + ch] = acc;
            }
    /* vertical pass */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                double acc = 0.0;
                for (int j = -r; j <= r; j++) {
                    const int yy = y + j;
                    if (yy >= 0 && yy < h)
                        acc += k[j + r] * tmp[((size_t)yy * w + x) * c + ch];
                }
                dst[((size_t)y * w + x) * c + ch] = to_u8(acc);
            }
    free(k);
    free(tmp);
    return EEX_OK;
}
