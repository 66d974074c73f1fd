/* Fast convolutions over packed weights (engine/pack.c gives the layouts).
 * Pointwise convs are one GEMM on the NHWC tensor itself; other convs gather
 * patches per image (im2col) and run one GEMM per group; depthwise convs run
 * directly with the channel loop innermost so it vectorises. */
#include <string.h>

#include "conv_fast.h"
#include "gemm.h"

void eex_bias_act(int64_t rows, int n, int ldc, const float *bias, const eex_act_params *act, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        float *row = y + r * ldc;
        if (bias)
            for (int j = 0; j < n; j++)
                row[j] += bias[j];
        switch (act->act) {
        case EEX_ACT_NONE:
            break;
        case EEX_ACT_RELU:
            for (int j = 0; j < n; j++)
                row[j] = row[j] > 0.0f ? row[j] : 0.0f;
            break;
        default:
            for (int j = 0; j < n; j++)
                row[j] = eex_act_apply(row[j], act);
            break;
        }
    }
}

void eex_conv1x1_gemm(const eex_conv_shape *s, const float *x, const float *w_kn, const float *bias,
                      const eex_act_params *act, float *y)
{
    const int64_t m = (int64_t)s->n * s->ih * s->iw;
    eex_gemm((int)m, s->oc, s->ic, x, s->ic, w_kn, s->oc, 0, y, s->oc);
    eex_bias_act(m, s->oc, s->oc, bias, act, y);
}

/* patches[p, (ky,kx,ci)] for output pixel p of image x (NHWC, one group) */
static void im2col(const eex_conv_shape *s, const float *x, int c0, int icg, float *patches)
{
    const int kk = s->kh * s->kw;
    const size_t K = (size_t)kk * icg;
    for (int oy = 0; oy < s->oh; oy++)
        for (int ox = 0; ox < s->ow; ox++) {
            float *dst = patches + ((size_t)oy * s->ow + ox) * K;
            for (int ky = 0; ky < s->kh; ky++) {
                const int iy = oy * s->sh - s->pt + ky * s->dh;
                for (int kx = 0; kx < s->kw; kx++, dst += icg) {
                    const int ix = ox * s->sw - s->pl + kx * s->dw;
                    if (iy < 0 || iy >= s->ih || ix < 0 || ix >= s->iw)
                        memset(dst, 0, sizeof(float) * (size_t)icg);
                    else
                        memcpy(dst, x + ((size_t)iy * s->iw + ix) * s->ic + c0, sizeof(float) * (size_t)icg);
                }
            }
        }
}

void eex_conv_im2col(const eex_conv_shape *s, const float *x, const float *w_packed, const float *bias,
                     const eex_act_params *act, float *scratch, float *y)
{
    const int icg = s->ic / s->group, ocg = s->oc / s->group;
    const int K = s->kh * s->kw * icg, M = s->oh * s->ow;
    for (int n = 0; n < s->n; n++) {
        const float *xn = x + (size_t)n * s->ih * s->iw * s->ic;
        float *yn = y + (size_t)n * M * s->oc;
        for (int g = 0; g < s->group; g++) {
            im2col(s, xn, g * icg, icg, scratch);
            eex_gemm(M, ocg, K, scratch, K, w_packed + (size_t)g * K * ocg, ocg, 0, yn + g * ocg, s->oc);
        }
        eex_bias_act(M, s->oc, s->oc, bias, act, yn);
    }
}

void eex_dwconv(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                const eex_act_params *act, float *y)
{
    const int C = s->oc;
    for (int n = 0; n < s->n; n++)
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                float *out = y + (((size_t)n * s->oh + oy) * s->ow + ox) * C;
                if (bias)
                    memcpy(out, bias, sizeof(float) * (size_t)C);
                else
                    memset(out, 0, sizeof(float) * (size_t)C);
                for (int ky = 0; ky < s->kh; ky++) {
                    const int iy = oy * s->sh - s->pt + ky * s->dh;
                    if (iy < 0 || iy >= s->ih)
                        continue;
                    for (int kx = 0; kx < s->kw; kx++) {
                        const int ix = ox * s->sw - s->pl + kx * s->dw;
                        if (ix < 0 || ix >= s->iw)
                            continue;
                        const float *in = x + (((size_t)n * s->ih + iy) * s->iw + ix) * C;
                        const float *w = w_kc + (size_t)(ky * s->kw + kx) * C;
                        for (int c = 0; c < C; c++)
                            out[c] += in[c] * w[c];
                    }
                }
                eex_bias_act(1, C, C, NULL, act, out);
            }
}
