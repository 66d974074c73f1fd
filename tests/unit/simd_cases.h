/* Randomized checks of one fast-kernel table against the kernels/ref twins:
 * odd channel counts (vector tails), strides, padding on every side,
 * dilation, groups, every fused activation, and work split into random
 * slices (as the thread pool does). Shared by the Criterion test on the host
 * (tests/unit/test_simd.c) and the stand-alone runner that the AArch64 build
 * runs under qemu (tests/arm/test_simd_arm.c). Each check returns 0 or
 * writes what failed to msg and returns 1. */
#ifndef EEX_TEST_SIMD_CASES_H
#define EEX_TEST_SIMD_CASES_H

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/dispatch.h"
#include "../../kernels/kernels.h"
#include "../../weights/half.h"

static uint64_t sc_rng = 0x9E3779B97F4A7C15ull;
static uint32_t sc_rnd(void)
{
    sc_rng ^= sc_rng << 13;
    sc_rng ^= sc_rng >> 7;
    sc_rng ^= sc_rng << 17;
    return (uint32_t)(sc_rng >> 16);
}
static int sc_int(int lo, int hi) { return lo + (int)(sc_rnd() % (uint32_t)(hi - lo + 1)); }
static float *sc_array(size_t n)
{
    float *a = malloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n; i++)
        a[i] = (float)(sc_rnd() % 20001) / 10000.0f - 1.0f;
    return a;
}

static eex_act_params sc_act(void)
{
    eex_act_params a = {.act = (eex_act)sc_int(0, 3), .lo = 0.0f, .hi = 6.0f};
    if (a.act == EEX_ACT_CLIP && sc_int(0, 1))
        a.lo = -0.5f, a.hi = 0.75f;
    return a;
}

/* max |a-b| <= tol * max(1, max|b|) */
static int sc_close(const float *a, const float *b, size_t n, float tol, char *msg, size_t cap, const char *what)
{
    float md = 0, mb = 1;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const float d = fabsf(a[i] - b[i]);
        if (!(d <= md)) /* also catches NaN */
            md = d, at = i;
        mb = fmaxf(mb, fabsf(b[i]));
    }
    if (md <= tol * mb)
        return 0;
    snprintf(msg, cap, "%s: max diff %g at %zu (got %g, want %g, scale %g)", what, md, at, a[at], b[at], mb);
    return 1;
}

/* Random cut points: [0, n) in up to 3 slices aligned to `align`. */
static int sc_slices(int64_t n, int64_t align, int64_t *cuts)
{
    const int k = sc_int(1, 3);
    cuts[0] = 0;
    for (int i = 1; i < k; i++) {
        int64_t c = n > 0 ? (int64_t)(sc_rnd() % (uint64_t)(n + 1)) : 0;
        c = c / align * align;
        cuts[i] = c < cuts[i - 1] ? cuts[i - 1] : c;
    }
    cuts[k] = n;
    return k;
}

static int sc_out(int in, int k, int s, int p0, int p1, int d) { return (in + p0 + p1 - ((k - 1) * d + 1)) / s + 1; }

/* GEMM conv (incl. pointwise, strided, padded, dilated, grouped) and dense. */
static int sc_conv_gemm(const eex_kernel_table *kt, int it, char *msg, size_t cap)
{
    eex_conv_shape s = {0};
    s.n = sc_int(1, 2);
    s.group = sc_int(1, 4) == 1 ? sc_int(2, 3) : 1;
    s.ic = s.group * sc_int(1, 21);
    s.oc = s.group * sc_int(1, 2 * kt->nr + 5);
    s.kh = sc_int(1, 5), s.kw = sc_int(1, 5);
    if (it % 3 == 0)
        s.kh = s.kw = 1;
    if (it == 7)
        s.kh = s.kw = 9; /* more taps than the pointer table: the slow path */
    s.sh = sc_int(1, 3), s.sw = sc_int(1, 3);
    s.dh = sc_int(1, 3) == 3 ? 2 : 1, s.dw = sc_int(1, 3) == 3 ? 2 : 1;
    s.pt = sc_int(0, s.kh - 1), s.pl = sc_int(0, s.kw - 1);
    int pb = sc_int(0, s.kh - 1), pr = sc_int(0, s.kw - 1);
    if (it % 3 == 0)
        s.sh = s.sw = 1, s.pt = s.pl = pb = pr = 0, s.dh = s.dw = 1;
    s.ih = sc_int((s.kh - 1) * s.dh + 1, 19), s.iw = sc_int((s.kw - 1) * s.dw + 1, 23);
    if (it % 5 == 1) {
        /* many input channels: K is split into blocks (partial sums in the
         * output, the activation after the last block) */
        s.group = 1, s.ic = sc_int(60, 260), s.kh = s.kw = 3, s.dh = s.dw = 1;
        s.pt = s.pl = pb = pr = sc_int(0, 1);
        s.ih = sc_int(3, 9), s.iw = sc_int(3, 11);
    }
    s.oh = sc_out(s.ih, s.kh, s.sh, s.pt, pb, s.dh);
    s.ow = sc_out(s.iw, s.kw, s.sw, s.pl, pr, s.dw);
    const int icg = s.ic / s.group, kk = s.kh * s.kw;
    const size_t nx = (size_t)s.n * s.ih * s.iw * s.ic, ny = (size_t)s.n * s.oh * s.ow * s.oc;
    float *x = sc_array(nx), *w = sc_array((size_t)s.oc * icg * kk), *b = sc_array((size_t)s.oc);
    float *want = malloc(ny * 4), *got = malloc(ny * 4);
    float *zeros = calloc((size_t)s.kw * s.ic + 1, sizeof(float));
    const int use_bias = sc_int(0, 3) != 0;
    const eex_act_params act = sc_act();
    eex_conv_ref(&s, x, w, use_bias ? b : NULL, &act, want);
    float *p = malloc(sizeof(float) * (size_t)eex_pack_gemm_floats(s.oc, icg, s.kh, s.kw, s.group, kt->nr));
    eex_pack_gemm_weights(w, use_bias ? b : NULL, s.oc, icg, s.kh, s.kw, s.group, kt->nr, p);
    for (size_t i = 0; i < ny; i++)
        got[i] = NAN;
    const int64_t pixels = (int64_t)s.n * s.oh * s.ow;
    const int panels = s.group * ((s.oc / s.group + kt->nr - 1) / kt->nr);
    int64_t cuts[4];
    if (sc_int(0, 1)) {
        const int k = sc_slices(pixels, kt->mr, cuts);
        for (int i = 0; i < k; i++)
            kt->conv_gemm_f32(&s, x, p, &act, got, cuts[i], cuts[i + 1], 0, panels, zeros);
    } else {
        const int k = sc_slices(panels, 1, cuts);
        for (int i = 0; i < k; i++)
            kt->conv_gemm_f32(&s, x, p, &act, got, 0, pixels, (int)cuts[i], (int)cuts[i + 1], zeros);
    }
    char what[200];
    snprintf(what, sizeof what, "%s conv_gemm n%d %dx%dx%d->%d k%dx%d s%d,%d p%d,%d,%d,%d d%d,%d g%d act%d", kt->name,
             s.n, s.ih, s.iw, s.ic, s.oc, s.kh, s.kw, s.sh, s.sw, s.pt, s.pl, pb, pr, s.dh, s.dw, s.group, act.act);
    /* float sums of K products drift from the double reference roughly
     * with K: 1e-5 up to K = 256, proportionally beyond */
    const float tol = 1e-5f * (icg * kk > 256 ? (float)(icg * kk) / 256.0f : 1.0f);
    const int bad = sc_close(got, want, ny, tol, msg, cap, what);
    free(x), free(w), free(b), free(want), free(got), free(zeros), free(p);
    return bad;
}

/* float16 weights: the reference runs on their exact float32 values */
static int sc_dense_half(const eex_kernel_table *kt, char *msg, size_t cap)
{
    const int n = sc_int(1, 5), k = sc_int(1, 300), m = sc_int(1, 3 * kt->nr + 3), panels = (m + kt->nr - 1) / kt->nr;
    float *x = sc_array((size_t)n * k), *w = sc_array((size_t)m * k), *b = sc_array((size_t)m);
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)m * k);
    for (size_t i = 0; i < (size_t)m * k; i++) {
        h[i] = eex_f32_to_f16(w[i]);
        w[i] = eex_f16_to_f32(h[i]);
    }
    float *want = malloc(sizeof(float) * (size_t)n * m), *got = malloc(sizeof(float) * (size_t)n * m);
    const eex_act_params act = sc_act();
    const int use_bias = sc_int(0, 3) != 0;
    eex_dense_ref(n, k, m, x, w, use_bias ? b : NULL, &act, want);
    uint16_t *p = malloc(sizeof(uint16_t) * (size_t)panels * kt->nr * k);
    float *pb = malloc(sizeof(float) * (size_t)panels * kt->nr);
    eex_pack_dense_half(h, use_bias ? b : NULL, k, m, kt->nr, p, pb);
    int64_t cuts[4];
    const int nc = sc_slices(panels, 1, cuts);
    for (int i = 0; i < nc; i++)
        kt->dense_half_f32(n, k, m, x, p, pb, &act, got, (int)cuts[i], (int)cuts[i + 1]);
    char what[120];
    snprintf(what, sizeof what, "%s dense_half %dx%d->%d act%d", kt->name, n, k, m, act.act);
    const int bad = sc_close(got, want, (size_t)n * m, 1e-5f, msg, cap, what);
    free(x), free(w), free(b), free(h), free(want), free(got), free(p), free(pb);
    return bad;
}

static int sc_dense(const eex_kernel_table *kt, char *msg, size_t cap)
{
    const int n = sc_int(1, 5), k = sc_int(1, 300), m = sc_int(1, 3 * kt->nr + 3);
    float *x = sc_array((size_t)n * k), *w = sc_array((size_t)m * k), *b = sc_array((size_t)m);
    float *want = malloc(sizeof(float) * (size_t)n * m), *got = malloc(sizeof(float) * (size_t)n * m);
    const eex_act_params act = sc_act();
    eex_dense_ref(n, k, m, x, w, b, &act, want);
    float *p = malloc(sizeof(float) * (size_t)eex_pack_gemm_floats(m, k, 1, 1, 1, kt->nr));
    eex_pack_gemm_weights(w, b, m, k, 1, 1, 1, kt->nr, p);
    const eex_conv_shape s = {.n = n, .ih = 1, .iw = 1, .ic = k, .oh = 1, .ow = 1, .oc = m, .kh = 1, .kw = 1,
                              .sh = 1, .sw = 1, .dh = 1, .dw = 1, .group = 1};
    kt->conv_gemm_f32(&s, x, p, &act, got, 0, n, 0, (m + kt->nr - 1) / kt->nr, NULL);
    char what[120];
    snprintf(what, sizeof what, "%s dense %dx%d->%d act%d", kt->name, n, k, m, act.act);
    const int bad = sc_close(got, want, (size_t)n * m, 1e-5f, msg, cap, what);
    free(x), free(w), free(b), free(want), free(got), free(p);
    return bad;
}

/* kind 0: dwconv3x3_s1, 1: dwconv3x3_s2, 2: the general depthwise kernel,
 * 3: dwconv5x5_s1, 4: dwconv5x5_s2 */
static int sc_dwconv(const eex_kernel_table *kt, int kind, char *msg, size_t cap)
{
    eex_conv_shape s = {0};
    s.n = sc_int(1, 2);
    s.ic = s.oc = s.group = sc_int(1, 3 * kt->vl + 5);
    s.kh = s.kw = kind < 2 ? 3 : kind > 2 ? 5 : sc_int(1, 5);
    if (kind == 2 && sc_int(0, 1))
        s.kw = sc_int(1, 5);
    s.sh = s.sw = kind == 0 || kind == 3 ? 1 : kind == 1 || kind == 4 ? 2 : sc_int(1, 3);
    s.dh = s.dw = kind != 2 ? 1 : sc_int(1, 2);
    s.pt = sc_int(0, s.kh - 1), s.pl = sc_int(0, s.kw - 1);
    const int pb = sc_int(0, s.kh - 1), pr = sc_int(0, s.kw - 1);
    s.ih = sc_int((s.kh - 1) * s.dh + 1, 21), s.iw = sc_int((s.kw - 1) * s.dw + 1, 21);
    s.oh = sc_out(s.ih, s.kh, s.sh, s.pt, pb, s.dh);
    s.ow = sc_out(s.iw, s.kw, s.sw, s.pl, pr, s.dw);
    const int C = s.oc, kk = s.kh * s.kw;
    const size_t nx = (size_t)s.n * s.ih * s.iw * C, ny = (size_t)s.n * s.oh * s.ow * C;
    float *x = sc_array(nx), *w = sc_array((size_t)C * kk), *b = sc_array((size_t)C);
    float *wp = malloc(sizeof(float) * (size_t)C * kk), *want = malloc(ny * 4), *got = malloc(ny * 4);
    for (int c = 0; c < C; c++)
        for (int t = 0; t < kk; t++)
            wp[(size_t)t * C + c] = w[(size_t)c * kk + t];
    const int use_bias = sc_int(0, 3) != 0;
    const eex_act_params act = sc_act();
    eex_conv_ref(&s, x, w, use_bias ? b : NULL, &act, want);
    for (size_t i = 0; i < ny; i++)
        got[i] = NAN;
    void (*fn)(const eex_conv_shape *, const float *, const float *, const float *, const eex_act_params *, float *,
               int64_t, int64_t) = kind == 0   ? kt->dwconv3x3_s1_f32
                                   : kind == 1 ? kt->dwconv3x3_s2_f32
                                   : kind == 3 ? kt->dwconv5x5_s1_f32
                                   : kind == 4 ? kt->dwconv5x5_s2_f32
                                               : kt->dwconv_f32;
    int64_t cuts[4];
    const int k = sc_slices((int64_t)s.n * s.oh, 1, cuts);
    for (int i = 0; i < k; i++)
        fn(&s, x, wp, use_bias ? b : NULL, &act, got, cuts[i], cuts[i + 1]);
    char what[200];
    snprintf(what, sizeof what, "%s dwconv%s n%d %dx%dx%d k%dx%d s%d p%d,%d,%d,%d d%d act%d", kt->name,
             kind == 0 ? "3x3_s1" : kind == 1 ? "3x3_s2" : kind == 3 ? "5x5_s1" : kind == 4 ? "5x5_s2" : "", s.n, s.ih, s.iw, C, s.kh, s.kw, s.sh, s.pt, s.pl, pb, pr,
             s.dh, act.act);
    const int bad = sc_close(got, want, ny, 1e-5f, msg, cap, what);
    free(x), free(w), free(b), free(wp), free(want), free(got);
    return bad;
}

static int sc_pool(const eex_kernel_table *kt, int is_max, char *msg, size_t cap)
{
    eex_pool_shape s = {0};
    s.n = sc_int(1, 2);
    s.c = sc_int(1, 3 * kt->vl + 3);
    s.kh = sc_int(1, 4), s.kw = sc_int(1, 4);
    s.sh = sc_int(1, 3), s.sw = sc_int(1, 3);
    s.pt = sc_int(0, s.kh / 2), s.pl = sc_int(0, s.kw / 2), s.pb = sc_int(0, s.kh / 2), s.pr = sc_int(0, s.kw / 2);
    s.ih = sc_int(s.kh, 17), s.iw = sc_int(s.kw, 17);
    const int ceil_mode = sc_int(0, 1);
    const int sy = s.ih + s.pt + s.pb - s.kh, sx = s.iw + s.pl + s.pr - s.kw;
    s.oh = (ceil_mode ? (sy + s.sh - 1) / s.sh : sy / s.sh) + 1;
    s.ow = (ceil_mode ? (sx + s.sw - 1) / s.sw : sx / s.sw) + 1;
    /* the last window must start inside the input or its leading padding */
    if ((s.oh - 1) * s.sh >= s.ih + s.pt)
        s.oh--;
    if ((s.ow - 1) * s.sw >= s.iw + s.pl)
        s.ow--;
    s.count_include_pad = sc_int(0, 1);
    const size_t nx = (size_t)s.n * s.ih * s.iw * s.c, ny = (size_t)s.n * s.oh * s.ow * s.c;
    float *x = sc_array(nx), *want = malloc(ny * 4 + 4), *got = malloc(ny * 4 + 4);
    (is_max ? eex_maxpool_ref : eex_avgpool_ref)(&s, x, want);
    int64_t cuts[4];
    const int k = sc_slices((int64_t)s.n * s.oh, 1, cuts);
    for (int i = 0; i < k; i++)
        (is_max ? kt->maxpool_f32 : kt->avgpool_f32)(&s, x, got, cuts[i], cuts[i + 1]);
    char what[160];
    snprintf(what, sizeof what, "%s %spool %dx%dx%d k%dx%d s%d,%d p%d,%d,%d,%d incl%d", kt->name, is_max ? "max" : "avg",
             s.ih, s.iw, s.c, s.kh, s.kw, s.sh, s.sw, s.pt, s.pl, s.pb, s.pr, s.count_include_pad);
    const int bad = sc_close(got, want, ny, 1e-5f, msg, cap, what);
    free(x), free(want), free(got);
    return bad;
}

static int sc_gap(const eex_kernel_table *kt, char *msg, size_t cap)
{
    const int n = sc_int(1, 3), hw = sc_int(1, 230), c = sc_int(1, 4 * kt->vl + 3);
    float *x = sc_array((size_t)n * hw * c), *want = malloc(sizeof(float) * (size_t)n * c),
          *got = malloc(sizeof(float) * (size_t)n * c);
    eex_gap_ref(n, hw, c, x, want);
    int64_t cuts[4];
    const int k = sc_slices(c, kt->vl, cuts);
    for (int i = 0; i < k; i++)
        kt->gap_f32(n, hw, c, x, got, (int)cuts[i], (int)cuts[i + 1]);
    char what[100];
    snprintf(what, sizeof what, "%s gap n%d hw%d c%d", kt->name, n, hw, c);
    const int bad = sc_close(got, want, (size_t)n * c, 1e-5f, msg, cap, what);
    free(x), free(want), free(got);
    return bad;
}

static int sc_binary(const eex_kernel_table *kt, char *msg, size_t cap)
{
    const int n = sc_int(1, 3), hw = sc_int(1, 40), c = sc_int(1, 3 * kt->vl + 3), op = sc_int(0, EEX_BIN_COUNT - 1);
    const eex_bcast mode = (eex_bcast)sc_int(0, 3);
    const size_t na = (size_t)n * hw * c;
    float *a = sc_array(na), *b = sc_array(na), *want = malloc(na * 4), *got = malloc(na * 4);
    const eex_act_params act = sc_act();
    eex_binary_ref(op, n, hw, c, a, b, mode, &act, want);
    int64_t cuts[4];
    const int k = sc_slices((int64_t)n * hw, 1, cuts);
    for (int i = 0; i < k; i++)
        kt->binary_f32(op, n, hw, c, a, b, mode, &act, got, cuts[i], cuts[i + 1]);
    char what[100];
    snprintf(what, sizeof what, "%s binop%d n%d hw%d c%d bcast%d act%d", kt->name, op, n, hw, c, (int)mode,
             act.act);
    const int bad = sc_close(got, want, na, 1e-6f, msg, cap, what);
    free(a), free(b), free(want), free(got);
    return bad;
}

static int sc_unary(const eex_kernel_table *kt, char *msg, size_t cap)
{
    const eex_unary op = (eex_unary)sc_int(0, EEX_UNARY_COUNT - 1);
    const int64_t count = sc_int(1, 200);
    const float p0 = op == EEX_UNARY_CLIP ? -0.25f : 0.2f, p1 = op == EEX_UNARY_CLIP ? 0.5f : 0.5f;
    float *x = sc_array((size_t)count), *want = malloc(sizeof(float) * (size_t)count),
          *got = malloc(sizeof(float) * (size_t)count);
    /* reach the clamps of hardswish and hardsigmoid, and now and then the
     * tails of exp, sigmoid, tanh and erf */
    const float spread = sc_int(0, 3) ? 5.0f : 40.0f;
    for (int64_t i = 0; i < count; i++)
        x[i] = op == EEX_UNARY_SQRT ? fabsf(x[i]) * spread : x[i] * spread;
    eex_unary_ref(op, p0, p1, count, x, want);
    int64_t cuts[4];
    const int k = sc_slices(count, 1, cuts);
    for (int i = 0; i < k; i++)
        kt->unary_f32(op, p0, p1, x, got, cuts[i], cuts[i + 1]);
    char what[100];
    snprintf(what, sizeof what, "%s unary op%d count %lld", kt->name, (int)op, (long long)count);
    /* sigmoid, tanh, elu, erf and gelu are polynomial approximations in the
     * SIMD tables (v_exp, v_erfc_abs: a few 1e-7 absolute at most) */
    const int approx = op == EEX_UNARY_SIGMOID || (op >= EEX_UNARY_TANH && op <= EEX_UNARY_GELU);
    const int bad = sc_close(got, want, (size_t)count, approx ? 2e-6f : 1e-6f, msg, cap, what);
    free(x), free(want), free(got);
    return bad;
}

static int sc_layernorm(const eex_kernel_table *kt, char *msg, size_t cap)
{
    const int64_t px = sc_int(1, 30);
    const int c = sc_int(1, 5 * kt->vl + 3);
    const size_t na = (size_t)px * c;
    float *x = sc_array(na), *scale = sc_array((size_t)c), *bias = sc_array((size_t)c), *want = malloc(na * 4),
          *got = malloc(na * 4);
    for (size_t i = 0; i < na; i++)
        x[i] = x[i] * 3.0f + 2.0f; /* a mean far from 0, as after a residual add */
    const int with_bias = sc_int(0, 1);
    eex_layernorm_ref(0, px, c, 1e-6f, scale, with_bias ? bias : NULL, x, want);
    int64_t cuts[4];
    const int k = sc_slices(px, 1, cuts);
    for (int i = 0; i < k; i++)
        kt->layernorm_f32(cuts[i], cuts[i + 1], c, 1e-6f, scale, with_bias ? bias : NULL, x, got);
    /* float carries the mean to 1 part in 2^24 of |mean|; an output moves by that
     * over std, so the tolerance follows each pixel's |mean| / std */
    double cond = 1.0;
    for (int64_t p = 0; p < px; p++) {
        double s = 0, q = 0;
        for (int k = 0; k < c; k++)
            s += x[p * c + k];
        const double mean = s / c;
        for (int k = 0; k < c; k++)
            q += (x[p * c + k] - mean) * (x[p * c + k] - mean);
        const double r = fabs(mean) / sqrt(q / c + 1e-6);
        cond = r > cond ? r : cond;
    }
    char what[100];
    snprintf(what, sizeof what, "%s layernorm px%lld c%d bias%d", kt->name, (long long)px, c, with_bias);
    const int bad = sc_close(got, want, na, (float)(2e-6 * cond), msg, cap, what);
    free(x), free(scale), free(bias), free(want), free(got);
    return bad;
}

/* Every check, `iters` random cases each; stops at the first failure. */
static inline int sc_all(const eex_kernel_table *kt, int iters, char *msg, size_t cap)
{
    for (int it = 0; it < iters; it++) {
        if (sc_conv_gemm(kt, it, msg, cap) || sc_dense(kt, msg, cap) || sc_dense_half(kt, msg, cap) ||
            sc_dwconv(kt, 0, msg, cap) ||
            sc_dwconv(kt, 1, msg, cap) || sc_dwconv(kt, 2, msg, cap) || sc_dwconv(kt, 3, msg, cap) ||
            sc_dwconv(kt, 4, msg, cap) || sc_pool(kt, 1, msg, cap) ||
            sc_pool(kt, 0, msg, cap) || sc_gap(kt, msg, cap) || sc_binary(kt, msg, cap) || sc_unary(kt, msg, cap) ||
            sc_layernorm(kt, msg, cap))
            return 1;
    }
    return 0;
}

#endif
