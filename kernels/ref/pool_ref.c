#include <float.h>

#include "../kernels.h"

void eex_maxpool_ref(const eex_pool_shape *s, const float *x, float *y)
{
    for (int n = 0; n < s->n; n++)
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++)
                for (int c = 0; c < s->c; c++) {
                    float m = -FLT_MAX;
                    for (int ky = 0; ky < s->kh; ky++) {
                        const int iy = oy * s->sh - s->pt + ky;
                        if (iy < 0 || iy >= s->ih)
                            continue;
                        for (int kx = 0; kx < s->kw; kx++) {
                            const int ix = ox * s->sw - s->pl + kx;
                            if (ix < 0 || ix >= s->iw)
                                continue;
                            const float v = x[(((int64_t)n * s->ih + iy) * s->iw + ix) * s->c + c];
                            if (v > m)
                                m = v;
                        }
                    }
                    y[(((int64_t)n * s->oh + oy) * s->ow + ox) * s->c + c] = m;
                }
}

/* The divisor follows PyTorch/ONNX: with count_include_pad the window is
 * clipped to the padded input (a ceil-mode overhang does not count), without
 * it only in-bounds cells count. */
void eex_avgpool_ref(const eex_pool_shape *s, const float *x, float *y)
{
    for (int n = 0; n < s->n; n++)
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                const int y0 = oy * s->sh - s->pt, x0 = ox * s->sw - s->pl;
                int y1 = y0 + s->kh, x1 = x0 + s->kw;
                if (y1 > s->ih + s->pb)
                    y1 = s->ih + s->pb;
                if (x1 > s->iw + s->pr)
                    x1 = s->iw + s->pr;
                const int padded = (y1 - y0) * (x1 - x0);
                const int ya = y0 < 0 ? 0 : y0, xa = x0 < 0 ? 0 : x0;
                const int yb = y1 > s->ih ? s->ih : y1, xb = x1 > s->iw ? s->iw : x1;
                const int valid = (yb - ya) * (xb - xa);
                const int div = s->count_include_pad ? padded : valid;
                for (int c = 0; c < s->c; c++) {
                    double acc = 0.0;
                    for (int iy = ya; iy < yb; iy++)
                        for (int ix = xa; ix < xb; ix++)
                            acc += x[(((int64_t)n * s->ih + iy) * s->iw + ix) * s->c + c];
                    y[(((int64_t)n * s->oh + oy) * s->ow + ox) * s->c + c] =
                        div > 0 ? (float)(acc / div) : 0.0f;
                }
            }
}

void eex_gap_ref(int n, int hw, int c, const float *x, float *y)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            double acc = 0.0;
            for (int p = 0; p < hw; p++)
                acc += x[((int64_t)i * hw + p) * c + ch];
            y[(int64_t)i * c + ch] = (float)(acc / hw);
        }
}
