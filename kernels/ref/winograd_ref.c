/* The scalar twin of the Winograd F(4x4, 3x3) fast kernels (see
 * kernels/winograd.h): per tile and channel, d = the 6x6 input (zeros in
 * the padding), V = B^T d B, M = sum over input channels of U .* V,
 * Y = A^T M A + bias, activation; in float, as the fast kernels compute. */
#include "../winograd.h"

static const float wino_BT[6][6] = {
    {4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
    {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1},
};
static const float wino_AT[4][6] = {
    {1, 1, 1, 1, 1, 0},
    {0, 1, -1, 2, -2, 0},
    {0, 1, 1, 4, 4, 0},
    {0, 1, -1, 8, -8, 1},
};

void eex_winograd43_ref(const eex_conv_shape *s, const float *x, const float *u, const float *bias,
                        const eex_act_params *act, float *y)
{
    const int th = (s->oh + 3) / 4, tw = (s->ow + 3) / 4, ic = s->ic, oc = s->oc;
    for (int n = 0; n < s->n; n++)
        for (int ty = 0; ty < th; ty++)
            for (int tx = 0; tx < tw; tx++)
                for (int o = 0; o < oc; o++) {
                    float m[6][6] = {{0}};
                    for (int c = 0; c < ic; c++) {
                        float d[6][6], t[6][6];
                        for (int i = 0; i < 6; i++)
                            for (int j = 0; j < 6; j++) {
                                const int iy = ty * 4 - s->pt + i, ix = tx * 4 - s->pl + j;
                                d[i][j] = iy >= 0 && iy < s->ih && ix >= 0 && ix < s->iw
                                              ? x[(((int64_t)n * s->ih + iy) * s->iw + ix) * ic + c]
                                              : 0.0f;
                            }
                        for (int i = 0; i < 6; i++)
                            for (int j = 0; j < 6; j++) {
                                float a = 0;
                                for (int k = 0; k < 6; k++)
                                    a += wino_BT[i][k] * d[k][j];
                                t[i][j] = a;
                            }
                        for (int i = 0; i < 6; i++)
                            for (int l = 0; l < 6; l++) {
                                float v = 0;
                                for (int k = 0; k < 6; k++)
                                    v += t[i][k] * wino_BT[l][k];
                                m[i][l] += u[((int64_t)(i * 6 + l) * oc + o) * ic + c] * v;
                            }
                    }
                    float t2[4][6];
                    for (int i = 0; i < 4; i++)
                        for (int l = 0; l < 6; l++) {
                            float a = 0;
                            for (int k = 0; k < 6; k++)
                                a += wino_AT[i][k] * m[k][l];
                            t2[i][l] = a;
                        }
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) {
                            const int oy = ty * 4 + i, ox = tx * 4 + j;
                            if (oy >= s->oh || ox >= s->ow)
                                continue;
                            float a = bias ? bias[o] : 0.0f;
                            for (int k = 0; k < 6; k++)
                                a += t2[i][k] * wino_AT[j][k];
                            y[(((int64_t)n * s->oh + oy) * s->ow + ox) * oc + o] = eex_act_apply(a, act);
                        }
                }
}
