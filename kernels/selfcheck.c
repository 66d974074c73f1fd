/* Randomized checks of one fast-kernel table against the kernels/ref twins
 * (see selfcheck.h). Each case allocates its arrays from a small per-case
 * list so that running out of memory is a result (-1), not a crash. */
#include "selfcheck.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/half.h"
#include "dw_pw.h"
#include "kernels.h"

#define SC_MAX_BLOCKS 12

typedef struct sc_ctx {
    uint64_t rng;
    void *blocks[SC_MAX_BLOCKS];
    int nblocks, oom;
} sc_ctx;

static uint32_t sc_rnd(sc_ctx *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return (uint32_t)(c->rng >> 16);
}
static int sc_int(sc_ctx *c, int lo, int hi) { return lo + (int)(sc_rnd(c) % (uint32_t)(hi - lo + 1)); }

static void *sc_alloc(sc_ctx *c, size_t bytes)
{
    void *p = c->nblocks < SC_MAX_BLOCKS ? malloc(bytes + 64) : NULL;
    if (!p) {
        c->oom = 1;
        return NULL;
    }
    c->blocks[c->nblocks++] = p;
    return p;
}
static void sc_release(sc_ctx *c)
{
    for (int i = 0; i < c->nblocks; i++)
        free(c->blocks[i]);
    c->nblocks = 0;
}
/* n floats uniform in [-1, 1] */
static float *sc_array(sc_ctx *c, size_t n)
{
    float *a = sc_alloc(c, n * sizeof(float));
    for (size_t i = 0; a && i < n; i++)
        a[i] = (float)(sc_rnd(c) % 20001) / 10000.0f - 1.0f;
    return a;
}
static float *sc_floats(sc_ctx *c, size_t n) { return sc_alloc(c, n * sizeof(float)); }
static void sc_fill_nan(float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = NAN;
}

static eex_act_params sc_act(sc_ctx *c)
{
    eex_act_params a = {.act = (eex_act)sc_int(c, 0, EEX_ACT_SILU), .lo = 0.0f, .hi = 6.0f};
    if (a.act == EEX_ACT_CLIP && sc_int(c, 0, 1))
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
static int sc_slices(sc_ctx *c, int64_t n, int64_t align, int64_t *cuts)
{
    const int k = sc_int(c, 1, 3);
    cuts[0] = 0;
    for (int i = 1; i < k; i++) {
        int64_t v = n > 0 ? (int64_t)(sc_rnd(c) % (uint64_t)(n + 1)) : 0;
        v = v / align * align;
        cuts[i] = v < cuts[i - 1] ? cuts[i - 1] : v;
    }
    cuts[k] = n;
    return k;
}

static int sc_out(int in, int k, int s, int p0, int p1, int d) { return (in + p0 + p1 - ((k - 1) * d + 1)) / s + 1; }

static int sc_oom(char *msg, size_t cap, const char *what)
{
    snprintf(msg, cap, "%s: out of memory", what);
    return -1;
}

/* GEMM conv (incl. pointwise, strided, padded, dilated, grouped); `it` picks
 * the special cases. */
static int sc_conv_gemm(sc_ctx *c, const eex_kernel_table *kt, int it, char *msg, size_t cap)
{
    eex_conv_shape s = {0};
    s.n = sc_int(c, 1, 2);
    s.group = sc_int(c, 1, 4) == 1 ? sc_int(c, 2, 3) : 1;
    s.ic = s.group * sc_int(c, 1, 21);
    s.oc = s.group * sc_int(c, 1, 2 * kt->nr + 5);
    s.kh = sc_int(c, 1, 5), s.kw = sc_int(c, 1, 5);
    if (it % 3 == 0)
        s.kh = s.kw = 1;
    if (it == 7)
        s.kh = s.kw = 9; /* more taps than the pointer table: the slow path */
    s.sh = sc_int(c, 1, 3), s.sw = sc_int(c, 1, 3);
    s.dh = sc_int(c, 1, 3) == 3 ? 2 : 1, s.dw = sc_int(c, 1, 3) == 3 ? 2 : 1;
    if (it == 7)
        s.dw = 2; /* no row segments either: really the slow path */
    s.pt = sc_int(c, 0, s.kh - 1), s.pl = sc_int(c, 0, s.kw - 1);
    int pb = sc_int(c, 0, s.kh - 1), pr = sc_int(c, 0, s.kw - 1);
    if (it % 3 == 0)
        s.sh = s.sw = 1, s.pt = s.pl = pb = pr = 0, s.dh = s.dw = 1;
    s.ih = sc_int(c, (s.kh - 1) * s.dh + 1, 19), s.iw = sc_int(c, (s.kw - 1) * s.dw + 1, 23);
    if (it % 5 == 1) {
        /* many input channels: K is split into blocks (partial sums in the
         * output, the activation after the last block) */
        s.group = 1, s.ic = sc_int(c, 60, 260), s.kh = s.kw = 3, s.dh = s.dw = 1;
        s.pt = s.pl = pb = pr = sc_int(c, 0, 1);
        s.ih = sc_int(c, 3, 9), s.iw = sc_int(c, 3, 11);
    }
    if (it == 13) {
        /* an 11x11 RGB stem at stride 4 (AlexNet's): 121 taps, but 11 row
         * segments per tile, so the tiled path */
        s.group = 1, s.ic = 3, s.kh = s.kw = 11, s.sh = s.sw = 4, s.dh = s.dw = 1;
        s.pt = s.pl = pb = pr = 2;
        s.ih = sc_int(c, 11, 40), s.iw = sc_int(c, 11, 45);
    }
    s.oh = sc_out(s.ih, s.kh, s.sh, s.pt, pb, s.dh);
    s.ow = sc_out(s.iw, s.kw, s.sw, s.pl, pr, s.dw);
    const int icg = s.ic / s.group, kk = s.kh * s.kw;
    const size_t nx = (size_t)s.n * s.ih * s.iw * s.ic, ny = (size_t)s.n * s.oh * s.ow * s.oc;
    const int use_bias = sc_int(c, 0, 3) != 0;
    const eex_act_params act = sc_act(c);
    char what[200];
    snprintf(what, sizeof what, "%s conv_gemm n%d %dx%dx%d->%d k%dx%d s%d,%d p%d,%d,%d,%d d%d,%d g%d act%d", kt->name,
             s.n, s.ih, s.iw, s.ic, s.oc, s.kh, s.kw, s.sh, s.sw, s.pt, s.pl, pb, pr, s.dh, s.dw, s.group, act.act);
    float *x = sc_array(c, nx), *w = sc_array(c, (size_t)s.oc * icg * kk), *b = sc_array(c, (size_t)s.oc);
    float *want = sc_floats(c, ny), *got = sc_floats(c, ny), *zeros = sc_floats(c, (size_t)s.kw * s.ic + 1);
    float *p = sc_floats(c, (size_t)eex_pack_gemm_floats(s.oc, icg, s.kh, s.kw, s.group, kt->nr));
    if (c->oom)
        return sc_oom(msg, cap, what);
    memset(zeros, 0, sizeof(float) * ((size_t)s.kw * s.ic + 1));
    eex_conv_ref(&s, x, w, use_bias ? b : NULL, &act, want);
    eex_pack_gemm_weights(w, use_bias ? b : NULL, s.oc, icg, s.kh, s.kw, s.group, kt->nr, p);
    sc_fill_nan(got, ny);
    const int64_t pixels = (int64_t)s.n * s.oh * s.ow;
    const int panels = s.group * ((s.oc / s.group + kt->nr - 1) / kt->nr);
    int64_t cuts[4];
    if (sc_int(c, 0, 1)) {
        const int k = sc_slices(c, pixels, kt->mr, cuts);
        for (int i = 0; i < k; i++)
            kt->conv_gemm_f32(&s, x, p, &act, got, cuts[i], cuts[i + 1], 0, panels, zeros);
    } else {
        const int k = sc_slices(c, panels, 1, cuts);
        for (int i = 0; i < k; i++)
            kt->conv_gemm_f32(&s, x, p, &act, got, 0, pixels, (int)cuts[i], (int)cuts[i + 1], zeros);
    }
    /* float sums of K products drift from the double reference roughly
     * with K: 1e-5 up to K = 256, proportionally beyond */
    const float tol = 1e-5f * (icg * kk > 256 ? (float)(icg * kk) / 256.0f : 1.0f);
    return sc_close(got, want, ny, tol, msg, cap, what);
}

/* float16 weights: the reference runs on their exact float32 values */
static int sc_dense_half(sc_ctx *c, const eex_kernel_table *kt, char *msg, size_t cap)
{
    const int n = sc_int(c, 1, 5), k = sc_int(c, 1, 300), m = sc_int(c, 1, 3 * kt->nr + 3);
    const int panels = (m + kt->nr - 1) / kt->nr;
    const eex_act_params act = sc_act(c);
    const int use_bias = sc_int(c, 0, 3) != 0;
    char what[120];
    snprintf(what, sizeof what, "%s dense_half %dx%d->%d act%d", kt->name, n, k, m, act.act);
    float *x = sc_array(c, (size_t)n * k), *w = sc_array(c, (size_t)m * k), *b = sc_array(c, (size_t)m);
    uint16_t *h = sc_alloc(c, sizeof(uint16_t) * (size_t)m * k);
    float *want = sc_floats(c, (size_t)n * m), *got = sc_floats(c, (size_t)n * m);
    uint16_t *p = sc_alloc(c, sizeof(uint16_t) * (size_t)panels * kt->nr * k);
    float *pb = sc_floats(c, (size_t)panels * kt->nr);
    if (c->oom)
        return sc_oom(msg, cap, what);
    for (size_t i = 0; i < (size_t)m * k; i++) {
        h[i] = eex_f32_to_f16(w[i]);
        w[i] = eex_f16_to_f32(h[i]);
    }
    eex_dense_ref(n, k, m, x, w, use_bias ? b : NULL, &act, want);
    eex_pack_dense_half(h, use_bias ? b : NULL, k, m, kt->nr, p, pb);
    int64_t cuts[4];
    const int nc = sc_slices(c, panels, 1, cuts);
    for (int i = 0; i < nc; i++)
        kt->dense_half_f32(n, k, m, x, p, pb, &act, got, (int)cuts[i], (int)cuts[i + 1]);
    return sc_close(got, want, (size_t)n * m, 1e-5f, msg, cap, what);
}

/* Dense layers through conv_gemm_f32 as a 1x1 conv of n pixels. */
static int sc_dense(sc_ctx *c, const eex_kernel_table *kt, char *msg, size_t cap)
{
    const int n = sc_int(c, 1, 5), k = sc_int(c, 1, 300), m = sc_int(c, 1, 3 * kt->nr + 3);
    const eex_act_params act = sc_act(c);
    char what[120];
    snprintf(what, sizeof what, "%s dense %dx%d->%d act%d", kt->name, n, k, m, act.act);
    float *x = sc_array(c, (size_t)n * k), *w = sc_array(c, (size_t)m * k), *b = sc_array(c, (size_t)m);
    float *want = sc_floats(c, (size_t)n * m), *got = sc_floats(c, (size_t)n * m);
    float *p = sc_floats(c, (size_t)eex_pack_gemm_floats(m, k, 1, 1, 1, kt->nr));
    if (c->oom)
        return sc_oom(msg, cap, what);
    eex_dense_ref(n, k, m, x, w, b, &act, want);
    eex_pack_gemm_weights(w, b, m, k, 1, 1, 1, kt->nr, p);
    const eex_conv_shape s = {.n = n, .ih = 1, .iw = 1, .ic = k, .oh = 1, .ow = 1, .oc = m, .kh = 1, .kw = 1,
                              .sh = 1, .sw = 1, .dh = 1, .dw = 1, .group = 1};
    kt->conv_gemm_f32(&s, x, p, &act, got, 0, n, 0, (m + kt->nr - 1) / kt->nr, NULL);
    return sc_close(got, want, (size_t)n * m, 1e-5f, msg, cap, what);
}

/* kind 0: dwconv3x3_s1, 1: dwconv3x3_s2, 2: the general depthwise kernel,
 * 3: dwconv5x5_s1, 4: dwconv5x5_s2 */
static int sc_dwconv(sc_ctx *c, const eex_kernel_table *kt, int kind, char *msg, size_t cap)
{
    eex_conv_shape s = {0};
    s.n = sc_int(c, 1, 2);
    s.ic = s.oc = s.group = sc_int(c, 1, 3 * kt->vl + 5);
    s.kh = s.kw = kind < 2 ? 3 : kind > 2 ? 5 : sc_int(c, 1, 5);
    if (kind == 2 && sc_int(c, 0, 1))
        s.kw = sc_int(c, 1, 5);
    s.sh = s.sw = kind == 0 || kind == 3 ? 1 : kind == 1 || kind == 4 ? 2 : sc_int(c, 1, 3);
    s.dh = s.dw = kind != 2 ? 1 : sc_int(c, 1, 2);
    s.pt = sc_int(c, 0, s.kh - 1), s.pl = sc_int(c, 0, s.kw - 1);
    const int pb = sc_int(c, 0, s.kh - 1), pr = sc_int(c, 0, s.kw - 1);
    s.ih = sc_int(c, (s.kh - 1) * s.dh + 1, 21), s.iw = sc_int(c, (s.kw - 1) * s.dw + 1, 21);
    s.oh = sc_out(s.ih, s.kh, s.sh, s.pt, pb, s.dh);
    s.ow = sc_out(s.iw, s.kw, s.sw, s.pl, pr, s.dw);
    const int C = s.oc, kk = s.kh * s.kw;
    const size_t nx = (size_t)s.n * s.ih * s.iw * C, ny = (size_t)s.n * s.oh * s.ow * C;
    const int use_bias = sc_int(c, 0, 3) != 0;
    const eex_act_params act = sc_act(c);
    char what[200];
    snprintf(what, sizeof what, "%s dwconv%s n%d %dx%dx%d k%dx%d s%d p%d,%d,%d,%d d%d act%d", kt->name,
             kind == 0   ? "3x3_s1"
             : kind == 1 ? "3x3_s2"
             : kind == 3 ? "5x5_s1"
             : kind == 4 ? "5x5_s2"
                         : "",
             s.n, s.ih, s.iw, C, s.kh, s.kw, s.sh, s.pt, s.pl, pb, pr, s.dh, act.act);
    float *x = sc_array(c, nx), *w = sc_array(c, (size_t)C * kk), *b = sc_array(c, (size_t)C);
    float *wp = sc_floats(c, (size_t)C * kk), *want = sc_floats(c, ny), *got = sc_floats(c, ny);
    if (c->oom)
        return sc_oom(msg, cap, what);
    for (int ch = 0; ch < C; ch++)
        for (int t = 0; t < kk; t++)
            wp[(size_t)t * C + ch] = w[(size_t)ch * kk + t];
    eex_conv_ref(&s, x, w, use_bias ? b : NULL, &act, want);
    sc_fill_nan(got, ny);
    void (*fn)(const eex_conv_shape *, const float *, const float *, const float *, const eex_act_params *, float *,
               int64_t, int64_t) = kind == 0   ? kt->dwconv3x3_s1_f32
                                   : kind == 1 ? kt->dwconv3x3_s2_f32
                                   : kind == 3 ? kt->dwconv5x5_s1_f32
                                   : kind == 4 ? kt->dwconv5x5_s2_f32
                                               : kt->dwconv_f32;
    int64_t cuts[4];
    const int k = sc_slices(c, (int64_t)s.n * s.oh, 1, cuts);
    for (int i = 0; i < k; i++)
        fn(&s, x, wp, use_bias ? b : NULL, &act, got, cuts[i], cuts[i + 1]);
    return sc_close(got, want, ny, 1e-5f, msg, cap, what);
}

/* A depthwise conv (3x3 or 5x5, stride 1 or 2) and a 1x1 conv through
 * eex_dw_pw_rows in random strips over random row ranges: within tolerance
 * of the two reference kernels, and the same bytes as the table's own two
 * kernels run apart over the whole shape (what engine/exec.c relies on). */
static int sc_dw_pw(sc_ctx *c, const eex_kernel_table *kt, char *msg, size_t cap)
{
    eex_conv_shape d = {0}, p = {0};
    d.n = sc_int(c, 1, 3);
    d.ic = d.oc = d.group = sc_int(c, 1, 3 * kt->vl + 5);
    d.kh = d.kw = sc_int(c, 0, 1) ? 3 : 5;
    d.sh = d.sw = sc_int(c, 1, 2);
    d.dh = d.dw = 1;
    d.pt = sc_int(c, 0, d.kh - 1), d.pl = sc_int(c, 0, d.kw - 1);
    const int pb = sc_int(c, 0, d.kh - 1), pr = sc_int(c, 0, d.kw - 1);
    d.ih = sc_int(c, d.kh, 24), d.iw = sc_int(c, d.kw, 24);
    d.oh = sc_out(d.ih, d.kh, d.sh, d.pt, pb, 1);
    d.ow = sc_out(d.iw, d.kw, d.sw, d.pl, pr, 1);
    p = (eex_conv_shape){.n = d.n, .ih = d.oh, .iw = d.ow, .ic = d.oc, .oh = d.oh, .ow = d.ow,
                         .oc = sc_int(c, 1, 2 * kt->nr + 5), .kh = 1, .kw = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1,
                         .group = 1};
    const int C = d.oc, kk = d.kh * d.kw, strip_rows = sc_int(c, 1, 4);
    const size_t nx = (size_t)d.n * d.ih * d.iw * C, nm = (size_t)d.n * d.oh * d.ow * C;
    const size_t ny = (size_t)d.n * d.oh * d.ow * p.oc;
    const eex_act_params ad = sc_act(c), ap = sc_act(c);
    char what[200];
    snprintf(what, sizeof what, "%s dw_pw n%d %dx%dx%d k%d s%d p%d,%d,%d,%d act%d -> 1x1 %d act%d, strips of %d rows",
             kt->name, d.n, d.ih, d.iw, C, d.kh, d.sh, d.pt, d.pl, pb, pr, ad.act, p.oc, ap.act, strip_rows);
    float *x = sc_array(c, nx), *w = sc_array(c, (size_t)C * kk), *b = sc_array(c, (size_t)C);
    float *w1 = sc_array(c, (size_t)p.oc * C), *b1 = sc_array(c, (size_t)p.oc);
    float *wd = sc_floats(c, (size_t)C * kk), *mid = sc_floats(c, nm), *want = sc_floats(c, ny);
    float *apart = sc_floats(c, ny), *got = sc_floats(c, ny);
    float *strip = sc_floats(c, (size_t)strip_rows * d.ow * C);
    float *wp = sc_floats(c, (size_t)eex_pack_gemm_floats(p.oc, C, 1, 1, 1, kt->nr));
    if (c->oom)
        return sc_oom(msg, cap, what);
    for (int ch = 0; ch < C; ch++)
        for (int t = 0; t < kk; t++)
            wd[(size_t)t * C + ch] = w[(size_t)ch * kk + t];
    eex_pack_gemm_weights(w1, b1, p.oc, C, 1, 1, 1, kt->nr, wp);
    /* the references, then the table's kernels apart over the whole shape */
    eex_conv_ref(&d, x, w, b, &ad, mid);
    eex_conv_ref(&p, mid, w1, b1, &ap, want);
    const int64_t rows = (int64_t)d.n * d.oh, pixels = rows * d.ow;
    eex_dw_pick(kt, &d)(&d, x, wd, b, &ad, mid, 0, rows);
    kt->conv_gemm_f32(&p, mid, wp, &ap, apart, 0, pixels, 0, (p.oc + kt->nr - 1) / kt->nr, NULL);
    sc_fill_nan(got, ny);
    int64_t cuts[4];
    const int k = sc_slices(c, rows, 1, cuts);
    for (int i = 0; i < k; i++)
        eex_dw_pw_rows(kt, &d, x, wd, b, &ad, &p, wp, &ap, NULL, strip, strip_rows, got, cuts[i], cuts[i + 1]);
    if (memcmp(got, apart, sizeof(float) * ny)) {
        size_t i = 0;
        while (i < ny && !memcmp(got + i, apart + i, sizeof(float)))
            i++;
        snprintf(msg, cap, "%s: element %zu is %.9g in strips, %.9g with the kernels apart", what, i, (double)got[i],
                 (double)apart[i]);
        return 1;
    }
    const float tol = 1e-5f * (C > 256 ? (float)C / 256.0f : 1.0f) * 4.0f;
    return sc_close(got, want, ny, tol, msg, cap, what);
}

static int sc_pool(sc_ctx *c, const eex_kernel_table *kt, int is_max, char *msg, size_t cap)
{
    eex_pool_shape s = {0};
    s.n = sc_int(c, 1, 2);
    s.c = sc_int(c, 1, 3 * kt->vl + 3);
    s.kh = sc_int(c, 1, 4), s.kw = sc_int(c, 1, 4);
    s.sh = sc_int(c, 1, 3), s.sw = sc_int(c, 1, 3);
    s.pt = sc_int(c, 0, s.kh / 2), s.pl = sc_int(c, 0, s.kw / 2), s.pb = sc_int(c, 0, s.kh / 2),
    s.pr = sc_int(c, 0, s.kw / 2);
    s.ih = sc_int(c, s.kh, 17), s.iw = sc_int(c, s.kw, 17);
    const int ceil_mode = sc_int(c, 0, 1);
    const int sy = s.ih + s.pt + s.pb - s.kh, sx = s.iw + s.pl + s.pr - s.kw;
    s.oh = (ceil_mode ? (sy + s.sh - 1) / s.sh : sy / s.sh) + 1;
    s.ow = (ceil_mode ? (sx + s.sw - 1) / s.sw : sx / s.sw) + 1;
    /* the last window must start inside the input or its leading padding */
    if ((s.oh - 1) * s.sh >= s.ih + s.pt)
        s.oh--;
    if ((s.ow - 1) * s.sw >= s.iw + s.pl)
        s.ow--;
    s.count_include_pad = sc_int(c, 0, 1);
    char what[160];
    snprintf(what, sizeof what, "%s %spool %dx%dx%d k%dx%d s%d,%d p%d,%d,%d,%d incl%d", kt->name,
             is_max ? "max" : "avg", s.ih, s.iw, s.c, s.kh, s.kw, s.sh, s.sw, s.pt, s.pl, s.pb, s.pr,
             s.count_include_pad);
    const size_t nx = (size_t)s.n * s.ih * s.iw * s.c, ny = (size_t)s.n * s.oh * s.ow * s.c;
    float *x = sc_array(c, nx), *want = sc_floats(c, ny + 1), *got = sc_floats(c, ny + 1);
    if (c->oom)
        return sc_oom(msg, cap, what);
    (is_max ? eex_maxpool_ref : eex_avgpool_ref)(&s, x, want);
    int64_t cuts[4];
    const int k = sc_slices(c, (int64_t)s.n * s.oh, 1, cuts);
    for (int i = 0; i < k; i++)
        (is_max ? kt->maxpool_f32 : kt->avgpool_f32)(&s, x, got, cuts[i], cuts[i + 1]);
    return sc_close(got, want, ny, 1e-5f, msg, cap, what);
}

static int sc_gap(sc_ctx *c, const eex_kernel_table *kt, char *msg, size_t cap)
{
    const int n = sc_int(c, 1, 3), hw = sc_int(c, 1, 230), ch = sc_int(c, 1, 4 * kt->vl + 3);
    char what[100];
    snprintf(what, sizeof what, "%s gap n%d hw%d c%d", kt->name, n, hw, ch);
    float *x = sc_array(c, (size_t)n * hw * ch), *want = sc_floats(c, (size_t)n * ch),
          *got = sc_floats(c, (size_t)n * ch);
    if (c->oom)
        return sc_oom(msg, cap, what);
    eex_gap_ref(n, hw, ch, x, want);
    int64_t cuts[4];
    const int k = sc_slices(c, ch, kt->vl, cuts);
    for (int i = 0; i < k; i++)
        kt->gap_f32(n, hw, ch, x, got, (int)cuts[i], (int)cuts[i + 1]);
    return sc_close(got, want, (size_t)n * ch, 1e-5f, msg, cap, what);
}

static int sc_binary(sc_ctx *c, const eex_kernel_table *kt, char *msg, size_t cap)
{
    const int n = sc_int(c, 1, 3), hw = sc_int(c, 1, 40), ch = sc_int(c, 1, 3 * kt->vl + 3),
              op = sc_int(c, 0, EEX_BIN_COUNT - 1);
    const eex_bcast mode = (eex_bcast)sc_int(c, 0, 3);
    const eex_act_params act = sc_act(c);
    char what[100];
    snprintf(what, sizeof what, "%s binop%d n%d hw%d c%d bcast%d act%d", kt->name, op, n, hw, ch, (int)mode,
             act.act);
    const size_t na = (size_t)n * hw * ch;
    float *a = sc_array(c, na), *b = sc_array(c, na), *want = sc_floats(c, na), *got = sc_floats(c, na);
    if (c->oom)
        return sc_oom(msg, cap, what);
    eex_binary_ref(op, n, hw, ch, a, b, mode, &act, want);
    int64_t cuts[4];
    const int k = sc_slices(c, (int64_t)n * hw, 1, cuts);
    for (int i = 0; i < k; i++)
        kt->binary_f32(op, n, hw, ch, a, b, mode, &act, got, cuts[i], cuts[i + 1]);
    return sc_close(got, want, na, 1e-6f, msg, cap, what);
}

static int sc_unary(sc_ctx *c, const eex_kernel_table *kt, char *msg, size_t cap)
{
    const eex_unary op = (eex_unary)sc_int(c, 0, EEX_UNARY_COUNT - 1);
    const int64_t count = sc_int(c, 1, 200);
    const float p0 = op == EEX_UNARY_CLIP ? -0.25f : 0.2f, p1 = 0.5f;
    char what[100];
    snprintf(what, sizeof what, "%s unary op%d count %lld", kt->name, (int)op, (long long)count);
    float *x = sc_array(c, (size_t)count), *want = sc_floats(c, (size_t)count), *got = sc_floats(c, (size_t)count);
    if (c->oom)
        return sc_oom(msg, cap, what);
    /* reach the clamps of hardswish and hardsigmoid, and now and then the
     * tails of exp, sigmoid, tanh and erf */
    const float spread = sc_int(c, 0, 3) ? 5.0f : 40.0f;
    for (int64_t i = 0; i < count; i++)
        x[i] = op == EEX_UNARY_SQRT ? fabsf(x[i]) * spread : x[i] * spread;
    eex_unary_ref(op, p0, p1, count, x, want);
    int64_t cuts[4];
    const int k = sc_slices(c, count, 1, cuts);
    for (int i = 0; i < k; i++)
        kt->unary_f32(op, p0, p1, x, got, cuts[i], cuts[i + 1]);
    /* sigmoid, silu, tanh, elu, erf and gelu are polynomial approximations in
     * the SIMD tables (v_exp, v_erfc_abs: a few 1e-7 absolute at most) */
    const int approx = op == EEX_UNARY_SIGMOID || op == EEX_UNARY_SILU ||
                       (op >= EEX_UNARY_TANH && op <= EEX_UNARY_GELU);
    return sc_close(got, want, (size_t)count, approx ? 2e-6f : 1e-6f, msg, cap, what);
}

static int sc_layernorm(sc_ctx *c, const eex_kernel_table *kt, char *msg, size_t cap)
{
    const int64_t px = sc_int(c, 1, 30);
    const int ch = sc_int(c, 1, 5 * kt->vl + 3), with_bias = sc_int(c, 0, 1);
    char what[100];
    snprintf(what, sizeof what, "%s layernorm px%lld c%d bias%d", kt->name, (long long)px, ch, with_bias);
    const size_t na = (size_t)px * ch;
    float *x = sc_array(c, na), *scale = sc_array(c, (size_t)ch), *bias = sc_array(c, (size_t)ch),
          *want = sc_floats(c, na), *got = sc_floats(c, na);
    if (c->oom)
        return sc_oom(msg, cap, what);
    for (size_t i = 0; i < na; i++)
        x[i] = x[i] * 3.0f + 2.0f; /* a mean far from 0, as after a residual add */
    eex_layernorm_ref(0, px, ch, 1e-6f, scale, with_bias ? bias : NULL, x, want);
    int64_t cuts[4];
    const int k = sc_slices(c, px, 1, cuts);
    for (int i = 0; i < k; i++)
        kt->layernorm_f32(cuts[i], cuts[i + 1], ch, 1e-6f, scale, with_bias ? bias : NULL, x, got);
    /* float carries the mean to 1 part in 2^24 of |mean|; an output moves by that
     * over std, so the tolerance follows each pixel's |mean| / std */
    double cond = 1.0;
    for (int64_t p = 0; p < px; p++) {
        double s = 0, q = 0;
        for (int j = 0; j < ch; j++)
            s += x[p * ch + j];
        const double mean = s / ch;
        for (int j = 0; j < ch; j++)
            q += (x[p * ch + j] - mean) * (x[p * ch + j] - mean);
        const double r = fabs(mean) / sqrt(q / ch + 1e-6);
        cond = r > cond ? r : cond;
    }
    return sc_close(got, want, na, (float)(2e-6 * cond), msg, cap, what);
}

/* The exp family element by element, relative to each value: sigmoid and
 * silu through unary_f32, and the silu epilogue (vact_apply) through
 * binary_f32 (x + 0) and through the GEMM tile's stores (a 1x1 conv from one
 * input channel with unit weights, so y[p, o] = x[p] exactly before the
 * activation). The inputs reach past the clamps of v_exp: +-87, +-88, +-89,
 * +-100, +-1e4, +-FLT_MAX, where expf in the reference overflows to inf. No
 * output may be NaN; each must be within 8 float ulps of the expf-based
 * reference or 1e-30 absolute (below x = -87 the true values are < 1e-36). */
static int sc_expfam(sc_ctx *c, const eex_kernel_table *kt, char *msg, size_t cap)
{
    static const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 0.5f, -0.5f, 15.0f, -15.0f, 20.0f, -20.0f,
                                    86.9f, -86.9f, 87.0f, -87.0f, 87.5f, -87.5f, 88.0f, -88.0f, 88.72f, -88.72f,
                                    89.0f, -89.0f, 100.0f, -100.0f, 1e4f, -1e4f, FLT_MAX, -FLT_MAX};
    const int nspecial = (int)(sizeof special / sizeof special[0]);
    const int kind = sc_int(c, 0, 3); /* 0 sigmoid, 1 silu, 2 silu via binary, 3 silu via conv_gemm */
    const int64_t count = sc_int(c, 1, 3 * kt->nr + 40);
    const int oc = sc_int(c, 1, 2 * kt->nr + 5);
    const float spread = (float[]){1.0f, 8.0f, 40.0f, 120.0f}[sc_int(c, 0, 3)];
    char what[120];
    snprintf(what, sizeof what, "%s %s count %lld spread %g", kt->name,
             kind == 0 ? "sigmoid" : kind == 1 ? "silu" : kind == 2 ? "silu epilogue (binary)" : "silu epilogue (gemm)",
             (long long)count, (double)spread);
    const size_t ny = kind == 3 ? (size_t)count * oc : (size_t)count;
    float *x = sc_array(c, (size_t)count), *zero = sc_floats(c, 1), *want = sc_floats(c, ny), *got = sc_floats(c, ny);
    float *w1 = sc_floats(c, (size_t)oc);
    float *p = kind == 3 ? sc_floats(c, (size_t)eex_pack_gemm_floats(oc, 1, 1, 1, 1, kt->nr)) : NULL;
    if (c->oom)
        return sc_oom(msg, cap, what);
    for (int64_t i = 0; i < count; i++)
        x[i] = sc_int(c, 0, 4) == 0 ? special[sc_int(c, 0, nspecial - 1)] : x[i] * spread;
    zero[0] = 0.0f;
    sc_fill_nan(got, ny);
    const eex_act_params silu = {.act = EEX_ACT_SILU};
    int64_t cuts[4];
    const int k = sc_slices(c, count, kind == 3 ? kt->mr : 1, cuts);
    if (kind <= 1) {
        const eex_unary op = kind == 0 ? EEX_UNARY_SIGMOID : EEX_UNARY_SILU;
        eex_unary_ref(op, 0.0f, 0.0f, count, x, want);
        for (int i = 0; i < k; i++)
            kt->unary_f32(op, 0.0f, 0.0f, x, got, cuts[i], cuts[i + 1]);
    } else if (kind == 2) {
        eex_binary_ref(EEX_BIN_ADD, 1, (int)count, 1, x, zero, EEX_BCAST_SCALAR, &silu, want);
        for (int i = 0; i < k; i++)
            kt->binary_f32(EEX_BIN_ADD, 1, (int)count, 1, x, zero, EEX_BCAST_SCALAR, &silu, got, cuts[i],
                           cuts[i + 1]);
    } else {
        for (int o = 0; o < oc; o++)
            w1[o] = 1.0f;
        const eex_conv_shape s = {.n = (int)count, .ih = 1, .iw = 1, .ic = 1, .oh = 1, .ow = 1, .oc = oc, .kh = 1,
                                  .kw = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1, .group = 1};
        eex_conv_ref(&s, x, w1, NULL, &silu, want);
        eex_pack_gemm_weights(w1, NULL, oc, 1, 1, 1, 1, kt->nr, p);
        for (int i = 0; i < k; i++)
            kt->conv_gemm_f32(&s, x, p, &silu, got, cuts[i], cuts[i + 1], 0, (oc + kt->nr - 1) / kt->nr, NULL);
    }
    for (size_t i = 0; i < ny; i++) {
        const float d = fabsf(got[i] - want[i]);
        if (isnan(got[i]) || !(d <= 8.0f * FLT_EPSILON * fabsf(want[i]) || d <= 1e-30f)) {
            const float xi = x[kind == 3 ? i / (size_t)oc : i];
            snprintf(msg, cap, "%s: x = %.9g gives %.9g, want %.9g (%.3g ulps)", what, (double)xi, (double)got[i],
                     (double)want[i], (double)(d / (FLT_EPSILON * fabsf(want[i]))));
            return 1;
        }
    }
    return 0;
}

static const char *const check_names[EEX_SELFCHECK_COUNT] = {
    "conv_gemm",    "dense",        "dense_half", "dwconv3x3_s1", "dwconv3x3_s2", "dwconv5x5_s1", "dwconv5x5_s2",
    "dwconv",       "maxpool",      "avgpool",    "gap",          "binary",       "unary",        "layernorm",
    "exp_family",   "dw_pw"};

const char *eex_selfcheck_name(int check)
{
    return check >= 0 && check < EEX_SELFCHECK_COUNT ? check_names[check] : "?";
}

int eex_selfcheck_count(void) { return EEX_SELFCHECK_COUNT; }

int eex_selfcheck(const char *isa, int check, int iters, uint64_t seed, char *msg, size_t cap)
{
    const eex_isa i = eex_isa_from_name(isa);
    if (i == EEX_ISA_COUNT || !eex_kernels_for(i)) {
        snprintf(msg, cap, "selfcheck: no kernels '%s' in this build on this CPU", isa ? isa : "(null)");
        return -1;
    }
    return eex_selfcheck_kernel(eex_kernels_for(i), check, iters, seed, msg, cap);
}

int eex_selfcheck_kernel(const eex_kernel_table *kt, int check, int iters, uint64_t seed, char *msg, size_t cap)
{
    if (cap)
        msg[0] = '\0';
    if (!kt || check < 0 || check >= EEX_SELFCHECK_COUNT) {
        snprintf(msg, cap, "selfcheck: no table or no check %d", check);
        return -1;
    }
    /* xorshift needs a nonzero state; mixing the check in gives each check
     * its own shapes from one seed */
    sc_ctx c = {.rng = (seed ^ 0x9E3779B97F4A7C15ull) + (uint64_t)check * 0xD1B54A32D192ED03ull};
    if (!c.rng)
        c.rng = 1;
    for (int it = 0; it < iters; it++) {
        int r;
        switch (check) {
        case EEX_SELFCHECK_CONV_GEMM: r = sc_conv_gemm(&c, kt, it, msg, cap); break;
        case EEX_SELFCHECK_DENSE: r = sc_dense(&c, kt, msg, cap); break;
        case EEX_SELFCHECK_DENSE_HALF: r = sc_dense_half(&c, kt, msg, cap); break;
        case EEX_SELFCHECK_DWCONV3X3_S1: r = sc_dwconv(&c, kt, 0, msg, cap); break;
        case EEX_SELFCHECK_DWCONV3X3_S2: r = sc_dwconv(&c, kt, 1, msg, cap); break;
        case EEX_SELFCHECK_DWCONV5X5_S1: r = sc_dwconv(&c, kt, 3, msg, cap); break;
        case EEX_SELFCHECK_DWCONV5X5_S2: r = sc_dwconv(&c, kt, 4, msg, cap); break;
        case EEX_SELFCHECK_DWCONV: r = sc_dwconv(&c, kt, 2, msg, cap); break;
        case EEX_SELFCHECK_MAXPOOL: r = sc_pool(&c, kt, 1, msg, cap); break;
        case EEX_SELFCHECK_AVGPOOL: r = sc_pool(&c, kt, 0, msg, cap); break;
        case EEX_SELFCHECK_GAP: r = sc_gap(&c, kt, msg, cap); break;
        case EEX_SELFCHECK_BINARY: r = sc_binary(&c, kt, msg, cap); break;
        case EEX_SELFCHECK_LAYERNORM: r = sc_layernorm(&c, kt, msg, cap); break;
        case EEX_SELFCHECK_EXP_FAMILY: r = sc_expfam(&c, kt, msg, cap); break;
        case EEX_SELFCHECK_DW_PW: r = sc_dw_pw(&c, kt, msg, cap); break;
        default: r = sc_unary(&c, kt, msg, cap); break;
        }
        sc_release(&c);
        if (r)
            return r;
    }
    return 0;
}
