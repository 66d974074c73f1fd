#include <math.h>
#include <string.h>

#include "../kernels.h"

void eex_binary_ref(int op, int n, int hw, int c, const float *a, const float *b, eex_bcast mode,
                    const eex_act_params *act, float *y)
{
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hw; p++)
            for (int ch = 0; ch < c; ch++) {
                const int64_t idx = ((int64_t)i * hw + p) * c + ch;
                float bv;
                switch (mode) {
                case EEX_BCAST_SCALAR: bv = b[0]; break;
                case EEX_BCAST_CHANNEL: bv = b[ch]; break;
                case EEX_BCAST_IMAGE_CHANNEL: bv = b[(int64_t)i * c + ch]; break;
                default: bv = b[idx]; break;
                }
                const float v = eex_binop_apply(op, a[idx], bv);
                y[idx] = eex_act_apply(v, act);
            }
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

void eex_unary_ref(eex_unary op, float p0, float p1, int64_t count, const float *x, float *y)
{
    for (int64_t i = 0; i < count; i++) {
        const float v = x[i];
        switch (op) {
        case EEX_UNARY_RELU: y[i] = v < 0.0f ? 0.0f : v; break;
        case EEX_UNARY_CLIP: y[i] = clampf(v, p0, p1); break;
        case EEX_UNARY_SIGMOID: y[i] = 1.0f / (1.0f + expf(-v)); break;
        case EEX_UNARY_HARDSIGMOID: y[i] = clampf(p0 * v + p1, 0.0f, 1.0f); break;
        case EEX_UNARY_HARDSWISH: y[i] = v * clampf(v / 6.0f + 0.5f, 0.0f, 1.0f); break;
        case EEX_UNARY_TANH: y[i] = tanhf(v); break;
        case EEX_UNARY_LEAKYRELU: y[i] = v < 0.0f ? p0 * v : v; break;
        case EEX_UNARY_ELU: y[i] = v < 0.0f ? p0 * expm1f(v) : v; break;
        case EEX_UNARY_ERF: y[i] = erff(v); break;
        case EEX_UNARY_GELU: y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); break;
        case EEX_UNARY_ABS: y[i] = fabsf(v); break;
        case EEX_UNARY_NEG: y[i] = -v; break;
        case EEX_UNARY_EXP: y[i] = expf(v); break;
        case EEX_UNARY_SQRT: y[i] = sqrtf(v); break;
        case EEX_UNARY_SILU: y[i] = v / (1.0f + expf(-v)); break;
        default: y[i] = v; break;
        }
    }
}

double eex_softmax_sum(const float *z, int n, float t, float *max)
{
    float m = z[0];
    for (int i = 1; i < n; i++)
        m = z[i] > m ? z[i] : m;
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += eex_softmax_term(z[i], m, t);
    *max = m;
    return sum;
}

void eex_softmax_row(const float *z, int n, float t, float *p)
{
    float m;
    const double sum = eex_softmax_sum(z, n, t, &m);
    for (int i = 0; i < n; i++)
        p[i] = (float)(eex_softmax_term(z[i], m, t) / sum);
}

void eex_softmax_ref(int n, int k, const float *x, float *y)
{
    for (int i = 0; i < n; i++)
        eex_softmax_row(x + (int64_t)i * k, k, 1.0f, y + (int64_t)i * k);
}

void eex_flatten_ref(int n, int hw, int c, const float *x, float *y)
{
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hw; p++)
            for (int ch = 0; ch < c; ch++)
                y[(int64_t)i * hw * c + (int64_t)ch * hw + p] = x[((int64_t)i * hw + p) * c + ch];
}

void eex_concat_ref(int n, int hw, int count, const float *const *xs, const int *cs, float *y)
{
    int total = 0;
    for (int t = 0; t < count; t++)
        total += cs[t];
    for (int64_t px = 0; px < (int64_t)n * hw; px++) {
        float *dst = y + px * total;
        for (int t = 0; t < count; t++) {
            memcpy(dst, xs[t] + px * cs[t], sizeof(float) * (size_t)cs[t]);
            dst += cs[t];
        }
    }
}
