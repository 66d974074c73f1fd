/* The distortion detector's input (docs/distortions.md, "Spectrum"): the
 * log-magnitude of the image's 2-D DFT, zero frequency in the centre. The DFT
 * is two dense passes in double precision (rows, then columns) against
 * cos/sin tables: exact enough that 20 ln|F| lands on the same uint8 as
 * numpy's FFT, and a few milliseconds even at 224 x 224. */
#include <math.h>
#include <stdlib.h>

#include "../base/status.h"
#include "eex.h"

eex_status eex_spectrum_u8(const uint8_t *img, int h, int w, int c, uint8_t *out)
{
    if (!img || !out || h < 1 || w < 1 || h > 4096 || w > 4096 || (c != 1 && c != 3))
        return eex_fail(EEX_ERR_ARGUMENT, "spectrum: bad image %dx%dx%d", w, h, c);
    const size_t hw = (size_t)h * w;
    double *g = malloc(sizeof(double) * hw);
    double *re = malloc(sizeof(double) * hw), *im = malloc(sizeof(double) * hw);
    double *cw = malloc(sizeof(double) * (size_t)w * w), *sw = malloc(sizeof(double) * (size_t)w * w);
    double *ch = malloc(sizeof(double) * (size_t)h * h), *sh = malloc(sizeof(double) * (size_t)h * h);
    double *row_re = malloc(sizeof(double) * (size_t)w), *row_im = malloc(sizeof(double) * (size_t)w);
    eex_status st = EEX_OK;
    if (!g || !re || !im || !cw || !sw || !ch || !sh || !row_re || !row_im) {
        st = eex_fail(EEX_ERR_NOMEM, "spectrum: out of memory for a %dx%d image", w, h);
        goto done;
    }
    for (size_t i = 0; i < hw; i++)
        g[i] = c == 1 ? img[i] : 0.299 * img[3 * i] + 0.587 * img[3 * i + 1] + 0.114 * img[3 * i + 2];
    /* twiddles by (j * k mod N) so the angle stays small and exact */
    for (int a = 0; a < w; a++)
        for (int b = 0; b < w; b++) {
            const double ang = 2.0 * M_PI * (double)(((long)a * b) % w) / w;
            cw[(size_t)a * w + b] = cos(ang);
            sw[(size_t)a * w + b] = sin(ang);
        }
    for (int a = 0; a < h; a++)
        for (int b = 0; b < h; b++) {
            const double ang = 2.0 * M_PI * (double)(((long)a * b) % h) / h;
            ch[(size_t)a * h + b] = cos(ang);
            sh[(size_t)a * h + b] = sin(ang);
        }
    /* rows: R[y][v] = sum_x g[y][x] e^{-2 pi i x v / W} */
    for (int y = 0; y < h; y++) {
        for (int v = 0; v < w; v++)
            row_re[v] = row_im[v] = 0.0;
        for (int x = 0; x < w; x++) {
            const double gv = g[(size_t)y * w + x];
            const double *cr = cw + (size_t)x * w, *sr = sw + (size_t)x * w;
            for (int v = 0; v < w; v++) {
                row_re[v] += gv * cr[v];
                row_im[v] -= gv * sr[v];
            }
        }
        for (int v = 0; v < w; v++) {
            re[(size_t)y * w + v] = row_re[v];
            im[(size_t)y * w + v] = row_im[v];
        }
    }
    /* columns: F[u][v] = sum_y R[y][v] e^{-2 pi i y u / H}; then shift and log */
    for (int u = 0; u < h; u++) {
        for (int v = 0; v < w; v++)
            row_re[v] = row_im[v] = 0.0;
        for (int y = 0; y < h; y++) {
            const double cu = ch[(size_t)u * h + y], su = sh[(size_t)u * h + y];
            const double *rr = re + (size_t)y * w, *ri = im + (size_t)y * w;
            for (int v = 0; v < w; v++) {
                /* (rr + i ri)(cu - i su) */
                row_re[v] += rr[v] * cu + ri[v] * su;
                row_im[v] += ri[v] * cu - rr[v] * su;
            }
        }
        const int su_row = (u + h / 2) % h;
        for (int v = 0; v < w; v++) {
            const double mag = sqrt(row_re[v] * row_re[v] + row_im[v] * row_im[v]);
            double s = mag > 0.0 ? 20.0 * log(mag) : 0.0;
            s = s < 0.0 ? 0.0 : (s > 255.0 ? 255.0 : s);
            out[(size_t)su_row * w + (v + w / 2) % w] = (uint8_t)s;
        }
    }
done:
    free(g), free(re), free(im), free(cw), free(sw), free(ch), free(sh), free(row_re), free(row_im);
    return st;
}
