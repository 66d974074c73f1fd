/* Kernel contracts. Kernels know nothing about graphs or files: they take
 * shapes and pointers. Activations are NHWC float32; conv weights arrive in
 * the file's OIHW layout for the reference kernels and pre-packed for the
 * fast ones. Each fast kernel has a scalar twin in kernels/ref that is the
 * ground truth in tests. */
#ifndef EEX_KERNELS_H
#define EEX_KERNELS_H

#include <stdint.h>

#include "../engine/ops.h"

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
/* a is [n, hw, c]; is_mul selects multiply instead of add; act after the op. */
void eex_binary_ref(int is_mul, int n, int hw, int c, const float *a, const float *b, eex_bcast mode,
                    const eex_act_params *act, float *y);

typedef enum eex_unary {
    EEX_UNARY_RELU,
    EEX_UNARY_CLIP,
    EEX_UNARY_SIGMOID,
    EEX_UNARY_HARDSIGMOID,
    EEX_UNARY_HARDSWISH
} eex_unary;
/* p0, p1: clip min/max, or hardsigmoid alpha/beta. */
void eex_unary_ref(eex_unary op, float p0, float p1, int64_t count, const float *x, float *y);
/* Over the last axis of [n, k]. */
void eex_softmax_ref(int n, int k, const float *x, float *y);
/* NHWC [n, hw, c] -> [n, c*hw] in NCHW order (what PyTorch's flatten gives). */
void eex_flatten_ref(int n, int hw, int c, const float *x, float *y);
/* Channel concat of `count` NHWC tensors [n, hw, cs[i]]. */
void eex_concat_ref(int n, int hw, int count, const float *const *xs, const int *cs, float *y);

#endif
