/* Reference kernels for data movement (pad, slice, shuffle, reshape) and for
 * the normalisations over channels. The data movers are also what the fast
 * path runs: they do no arithmetic, so there is nothing to vectorise beyond
 * the memcpy of contiguous channel runs they already do. */
#include <math.h>
#include <string.h>

#include "../kernels.h"

void eex_pad_ref(int n, int h, int w, int c, int pt, int pl, int pb, int pr, float value, const float *x,
                 float *y)
{
    const int oh = h + pt + pb, ow = w + pl + pr;
    const int64_t row = (int64_t)ow * c;
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < oh; oy++) {
            float *dst = y + ((int64_t)i * oh + oy) * row;
            const int iy = oy - pt;
            if (iy < 0 || iy >= h) {
                for (int64_t k = 0; k < row; k++)
                    dst[k] = value;
                continue;
            }
            for (int64_t k = 0; k < (int64_t)pl * c; k++)
                dst[k] = value;
            memcpy(dst + (int64_t)pl * c, x + ((int64_t)i * h + iy) * w * c, sizeof(float) * (size_t)w * (size_t)c);
            for (int64_t k = (int64_t)(pl + w) * c; k < row; k++)
                dst[k] = value;
        }
}

void eex_slice_ref(int n, int h, int w, int c, int axis, int start, int step, int count, const float *x, float *y)
{
    if (axis == 1) {
        const int64_t px = (int64_t)n * h * w;
        for (int64_t p = 0; p < px; p++)
            for (int k = 0; k < count; k++)
                y[p * count + k] = x[p * c + start + (int64_t)k * step];
        return;
    }
    const int oh = axis == 2 ? count : h, ow = axis == 3 ? count : w;
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const int iy = axis == 2 ? start + oy * step : oy, ix = axis == 3 ? start + ox * step : ox;
                memcpy(y + (((int64_t)i * oh + oy) * ow + ox) * c, x + (((int64_t)i * h + iy) * w + ix) * c,
                       sizeof(float) * (size_t)c);
            }
}

void eex_shuffle_ref(int64_t pixels, int c, int groups, const float *x, float *y)
{
    const int per = c / groups;
    for (int64_t p = 0; p < pixels; p++) {
        const float *xp = x + p * c;
        float *yp = y + p * c;
        for (int g = 0; g < groups; g++)
            for (int k = 0; k < per; k++)
                yp[k * groups + g] = xp[g * per + k];
    }
}

void eex_reshape_ref(int n, int c0, int h0, int w0, int c1, int h1, int w1, const float *x, float *y)
{
    const int64_t per = (int64_t)c0 * h0 * w0;
    for (int i = 0; i < n; i++) {
        const float *xi = x + i * per;
        float *yi = y + i * per;
        /* walk the output in NCHW order, which is the order both share */
        int64_t q = 0;
        for (int ch = 0; ch < c1; ch++)
            for (int yy = 0; yy < h1; yy++)
                for (int xx = 0; xx < w1; xx++, q++) {
                    const int64_t sc = q / ((int64_t)h0 * w0), rem = q % ((int64_t)h0 * w0);
                    yi[((int64_t)yy * w1 + xx) * c1 + ch] = xi[rem * c0 + sc];
                }
    }
}

void eex_gmp_ref(int n, int hw, int c, const float *x, float *y)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            float m = x[(int64_t)i * hw * c + ch];
            for (int p = 1; p < hw; p++) {
                const float v = x[((int64_t)i * hw + p) * c + ch];
                if (v > m || v != v)
                    m = v;
            }
            y[(int64_t)i * c + ch] = m;
        }
}

void eex_layernorm_ref(int64_t p0, int64_t p1, int c, float eps, const float *scale, const float *bias,
                       const float *x, float *y)
{
    for (int64_t p = p0; p < p1; p++) {
        const float *xp = x + p * c;
        float *yp = y + p * c;
        double s = 0.0;
        for (int k = 0; k < c; k++)
            s += xp[k];
        const double mean = s / c;
        double v = 0.0;
        for (int k = 0; k < c; k++)
            v += (xp[k] - mean) * (xp[k] - mean);
        const double inv = 1.0 / sqrt(v / c + eps);
        for (int k = 0; k < c; k++)
            yp[k] = (float)((xp[k] - mean) * inv * scale[k] + (bias ? bias[k] : 0.0));
    }
}

void eex_lrn_ref(int64_t pixels, int c, int size, float alpha, float beta, float bias, const float *x, float *y)
{
    const int lo = (size - 1) / 2, hi = size / 2; /* ONNX: floor((size-1)/2) before, ceil((size-1)/2) after */
    for (int64_t p = 0; p < pixels; p++) {
        const float *xp = x + p * c;
        for (int k = 0; k < c; k++) {
            double sq = 0.0;
            for (int j = k - lo; j <= k + hi; j++)
                if (j >= 0 && j < c)
                    sq += (double)xp[j] * xp[j];
            y[p * c + k] = (float)(xp[k] / pow(bias + alpha / size * sq, beta));
        }
    }
}
