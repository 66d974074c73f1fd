/* Kernel contracts. Kernels know nothing about graphs or files: they take
 * shapes and pointers. Activations are NHWC float32; conv weights arrive in
 * the file's OIHW layout for the reference kernels and pre-packed for the
 * fast ones. Each fast kernel has a scalar twin in kernels/ref that is the
 * ground truth in tests. */
#ifndef EEX_KERNELS_H
#define EEX_KERNELS_H

#include <math.h>
#include <stdint.h>

#include "../base/ops.h"

typedef struct eex_act_params {
    eex_act act;
    float lo, hi;  /* bounds for EEX_ACT_CLIP */
} eex_act_params;

static inline float eex_act_apply(float v, const eex_act_params *a)
{
    switch (a->act) {
    case EEX_ACT_RELU:
        return v < 0.0f ? 0.0f : v;  /* NaN passes, as in PyTorch */
    case EEX_ACT_CLIP:
        return v < a->lo ? a->lo : (v > a->hi ? a->hi : v);
    case EEX_ACT_HARDSWISH: {
        float t = v / 6.0f + 0.5f;
        t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
        return v * t;
    }
    case EEX_ACT_SILU:
        /* x / (1 + e^-x): e^-x overflows to inf below x ~ -88.7 and the
         * quotient is then -0, never NaN (the SIMD form clamps instead) */
        return v / (1.0f + expf(-v));
    default:
        return v;
    }
}

typedef struct eex_conv_shape {
    int n, ih, iw, ic;      /* input NHWC */
    int oh, ow, oc;         /* output spatial size and channels */
    int kh, kw, sh, sw;     /* kernel and stride */
    int pt, pl;             /* top and left padding (bottom/right follow from oh, ow) */
    int dh, dw;             /* dilation */
    int group;
} eex_conv_shape;

typedef struct eex_pool_shape {
    int n, ih, iw, c, oh, ow;
    int kh, kw, sh, sw, pt, pl, pb, pr;
    int count_include_pad;  /* avg only */
} eex_pool_shape;

/* ---- reference kernels (kernels/ref) -------------------------------------- */

/* y[n,oh,ow,oc] = act(bias[oc] + sum x * w), w in OIHW [oc, ic/group, kh, kw]. */
void eex_conv_ref(const eex_conv_shape *s, const float *x, const float *w_oihw, const float *bias,
                  const eex_act_params *act, float *y);
/* y[n,m] = act(bias[m] + sum_k x[n,k] w[m,k]). */
void eex_dense_ref(int n, int k, int m, const float *x, const float *w_mk, const float *bias,
                   const eex_act_params *act, float *y);
void eex_maxpool_ref(const eex_pool_shape *s, const float *x, float *y);
void eex_avgpool_ref(const eex_pool_shape *s, const float *x, float *y);
/* y[n,c] = mean over hw of x[n,hw,c]. */
void eex_gap_ref(int n, int hw, int c, const float *x, float *y);

/* Elementwise a (op) b with b broadcast: b_mode says how b is indexed. */
typedef enum eex_bcast {
    EEX_BCAST_SAME = 0,     /* b has a's shape */
    EEX_BCAST_SCALAR,       /* one value */
    EEX_BCAST_CHANNEL,      /* [C], the same for every image */
    EEX_BCAST_IMAGE_CHANNEL /* [N, C]: one value per image and channel */
} eex_bcast;
/* The element-wise binary ops; the values 0 and 1 are add and mul, as the
 * `is_mul` flag they replace. RSUB/RDIV are b - a and b / a: the binder puts
 * the full-size operand first, so a constant minuend or dividend becomes b. */
typedef enum eex_binop {
    EEX_BIN_ADD = 0,
    EEX_BIN_MUL = 1,
    EEX_BIN_SUB,
    EEX_BIN_DIV,
    EEX_BIN_RSUB,
    EEX_BIN_RDIV,
    EEX_BIN_MAX,
    EEX_BIN_MIN,
    EEX_BIN_PRELU,  /* a < 0 ? a * b : a (b: the slope) */
    EEX_BIN_COUNT
} eex_binop;

/* One element of a binary op (the reference). max/min pass a NaN in a, as
 * the SIMD layer's v_max/v_min do. */
static inline float eex_binop_apply(int op, float a, float b)
{
    switch (op) {
    case EEX_BIN_MUL: return a * b;
    case EEX_BIN_SUB: return a - b;
    case EEX_BIN_DIV: return a / b;
    case EEX_BIN_RSUB: return b - a;
    case EEX_BIN_RDIV: return b / a;
    case EEX_BIN_MAX: return b > a ? b : a;
    case EEX_BIN_MIN: return b < a ? b : a;
    case EEX_BIN_PRELU: return a < 0.0f ? a * b : a;
    default: return a + b;
    }
}

/* a is [n, hw, c]; op is an eex_binop; act after the op. */
void eex_binary_ref(int op, int n, int hw, int c, const float *a, const float *b, eex_bcast mode,
                    const eex_act_params *act, float *y);

typedef enum eex_unary {
    EEX_UNARY_RELU,
    EEX_UNARY_CLIP,
    EEX_UNARY_SIGMOID,
    EEX_UNARY_HARDSIGMOID,
    EEX_UNARY_HARDSWISH,
    EEX_UNARY_TANH,
    EEX_UNARY_LEAKYRELU,  /* p0: alpha */
    EEX_UNARY_ELU,        /* p0: alpha */
    EEX_UNARY_ERF,
    EEX_UNARY_GELU,       /* x/2 (1 + erf(x/sqrt 2)), the exact form */
    EEX_UNARY_ABS,
    EEX_UNARY_NEG,
    EEX_UNARY_EXP,
    EEX_UNARY_SQRT,
    EEX_UNARY_SILU,       /* x * sigmoid(x) */
    EEX_UNARY_COUNT
} eex_unary;
/* p0, p1: clip min/max, hardsigmoid alpha/beta, leakyrelu/elu alpha. */
void eex_unary_ref(eex_unary op, float p0, float p1, int64_t count, const float *x, float *y);
/* Over the last axis of [n, k]: eex_softmax_row of each row, temperature 1. */
void eex_softmax_ref(int n, int k, const float *x, float *y);
/* Softmax with a temperature t > 0, the one every path uses (the Softmax op,
 * exit probabilities, confidences, the detector, eex_softmax): in double,
 * shifted by the row's largest value m,
 *   p_i = exp((z_i - m) / t) / sum_j exp((z_j - m) / t).
 * eex_softmax_sum returns the sum and sets *max = m (n >= 1); each term is
 * eex_softmax_term(z_i, m, t). eex_softmax_row writes p (float; p may be z). */
static inline double eex_softmax_term(float z, float max, float t) { return exp(((double)z - max) / t); }
double eex_softmax_sum(const float *z, int n, float t, float *max);
void eex_softmax_row(const float *z, int n, float t, float *p);
/* NHWC [n, hw, c] -> [n, c*hw] in NCHW order (what PyTorch's flatten gives). */
void eex_flatten_ref(int n, int hw, int c, const float *x, float *y);
/* Channel concat of `count` NHWC tensors [n, hw, cs[i]]. */
void eex_concat_ref(int n, int hw, int count, const float *const *xs, const int *cs, float *y);

/* ---- data movement and normalisation (kernels/ref/shape_ref.c) ----------- */

/* Constant padding of NHWC [n, h, w, c] by pt/pl/pb/pr rows and columns. */
void eex_pad_ref(int n, int h, int w, int c, int pt, int pl, int pb, int pr, float value, const float *x,
                 float *y);
/* A strided slice of one logical axis (1 = C, 2 = H, 3 = W) of NHWC
 * [n, h, w, c]: indices start, start + step, ... (count of them). */
void eex_slice_ref(int n, int h, int w, int c, int axis, int start, int step, int count, const float *x, float *y);
/* Channel shuffle: the channels, seen as [groups, c/groups], transposed to
 * [c/groups, groups] (ShuffleNet's reshape - transpose - reshape). */
void eex_shuffle_ref(int64_t pixels, int c, int groups, const float *x, float *y);
/* A reshape in logical NCHW order (PyTorch's view) between per-image shapes
 * [c0, h0, w0] and [c1, h1, w1] of the same size, for NHWC memory. */
void eex_reshape_ref(int n, int c0, int h0, int w0, int c1, int h1, int w1, const float *x, float *y);
/* y[n, c] = max over hw of x[n, hw, c]. */
void eex_gmp_ref(int n, int hw, int c, const float *x, float *y);
/* Per pixel, over its c channels: (x - mean) / sqrt(var + eps) * scale + bias
 * (bias may be NULL). Pixels [p0, p1). */
void eex_layernorm_ref(int64_t p0, int64_t p1, int c, float eps, const float *scale, const float *bias,
                       const float *x, float *y);
/* Local response normalisation across channels (ONNX LRN). */
void eex_lrn_ref(int64_t pixels, int c, int size, float alpha, float beta, float bias, const float *x, float *y);

#endif
