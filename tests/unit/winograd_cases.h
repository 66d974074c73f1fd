/* Randomized checks of the Winograd F(4x4, 3x3) kernels (kernels/winograd.h)
 * of one fast-kernel table: against their scalar twin eex_winograd43_ref,
 * and both against direct convolution in double (eex_conv_ref) with the
 * error bound below. Shared by the Criterion test (tests/unit/test_winograd.c)
 * and the stand-alone runner the AArch64 build runs under qemu
 * (tests/arm/test_winograd_arm.c). Carries its own random generators.
 *
 * The error bound. Inputs and weights are uniform in [-1, 1]. F(4x4, 3x3)
 * with the points 0, +-1, +-2 multiplies values by up to 5 in B^T (25 in
 * B^T d B) and by up to 8 in A^T (64 in A^T M A), so the rounding of each
 * transformed product is amplified against the direct sum's: the measured
 * error, max |winograd - direct| / max(1, max |direct before the
 * activation|) on 16x16 maps, was 3-6e-6 for ic <= 64, 8e-6 at 128, 1.4e-5
 * at 256 and 1.7e-5 at 512 (AVX2 and the twin alike): it grows about with
 * sqrt(ic), its sum of ic rounded terms. The test asserts
 * 2e-5 * max(1, sqrt(ic / 16)): 3x above what was measured at ic = 16, 6x
 * at 512. The twin and a fast kernel differ only in FMA contraction and
 * summation order: asserted within the same bound. */
#ifndef EEX_TEST_WINOGRAD_CASES_H
#define EEX_TEST_WINOGRAD_CASES_H

#include "../../kernels/winograd.h"
/* Random shapes and values (the same generators the other kernel checks use). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/dispatch.h"
#include "../../kernels/kernels.h"
#include "../../base/half.h"

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


static double wc_worst; /* largest relative error against direct seen */

/* max |a - b| / scale (NaN counts as infinitely far) */
static float wc_err(const float *a, const float *b, size_t n, float scale)
{
    float md = 0;
    for (size_t i = 0; i < n; i++) {
        const float d = fabsf(a[i] - b[i]);
        if (!(d <= md))
            md = d == d ? d : INFINITY;
    }
    return md / scale;
}

static int wc_check(const float *a, const float *b, size_t n, float scale, float bound, double *worst, char *msg,
                    size_t cap, const char *what, const char *pair)
{
    const float e = wc_err(a, b, n, scale);
    if (e / bound > *worst)
        *worst = e / bound;
    if (e <= bound)
        return 0;
    snprintf(msg, cap, "%s: %s: error %g of scale %g over the bound", what, pair, e, scale);
    return 1;
}

static int sc_winograd(const eex_kernel_table *kt, int it, char *msg, size_t cap)
{
    eex_conv_shape s = {0};
    s.n = sc_int(1, 2);
    s.ic = sc_int(1, 40);
    s.oc = sc_int(1, 2 * kt->nr + 5);
    if (it % 4 == 1)
        s.ic = sc_int(100, 300); /* deep: the error grows with ic */
    s.kh = s.kw = 3, s.sh = s.sw = 1, s.dh = s.dw = 1, s.group = 1;
    s.pt = sc_int(0, 2), s.pl = sc_int(0, 2);
    const int pb = sc_int(0, 2), pr = sc_int(0, 2);
    s.ih = sc_int(1, 17), s.iw = sc_int(1, 17);
    if (s.ih + s.pt + pb < 3)
        s.ih = 3;
    if (s.iw + s.pl + pr < 3)
        s.iw = 3;
    s.oh = sc_out(s.ih, 3, 1, s.pt, pb, 1);
    s.ow = sc_out(s.iw, 3, 1, s.pl, pr, 1);
    const size_t nx = (size_t)s.n * s.ih * s.iw * s.ic, ny = (size_t)s.n * s.oh * s.ow * s.oc;
    float *x = sc_array(nx), *w = sc_array((size_t)s.oc * s.ic * 9), *b = sc_array((size_t)s.oc);
    float *direct = malloc(ny * 4), *plain = malloc(ny * 4), *twin = malloc(ny * 4), *got = malloc(ny * 4);
    float *u = malloc(sizeof(float) * 36 * (size_t)s.oc * s.ic);
    float *p = malloc(sizeof(float) * (size_t)eex_wino_pack_floats(s.oc, s.ic, kt->nr));
    float *scratch = malloc(sizeof(float) * (size_t)eex_wino_scratch_floats(s.ic, s.oc, kt->mr));
    const int use_bias = sc_int(0, 3) != 0;
    const eex_act_params act = sc_act();
    eex_conv_ref(&s, x, w, use_bias ? b : NULL, &act, direct);
    const eex_act_params none = {.act = EEX_ACT_NONE};
    eex_conv_ref(&s, x, w, use_bias ? b : NULL, &none, plain); /* the scale errors are relative to */
    float scale = 1.0f;
    for (size_t i = 0; i < ny; i++)
        scale = fmaxf(scale, fabsf(plain[i]));
    eex_wino_transform_weights(w, s.oc, s.ic, u);
    eex_winograd43_ref(&s, x, u, use_bias ? b : NULL, &act, twin);
    eex_wino_pack_weights(w, s.oc, s.ic, kt->nr, p);
    for (size_t i = 0; i < ny; i++)
        got[i] = NAN;
    /* split by tiles or by output panels, as engine/exec.c does */
    int64_t cuts[4];
    const int panels = (s.oc + kt->nr - 1) / kt->nr;
    if (sc_int(0, 1)) {
        const int k = sc_slices(eex_wino_tiles(&s), 1, cuts);
        for (int i = 0; i < k; i++)
            kt->winograd43_f32(&s, x, p, use_bias ? b : NULL, &act, got, cuts[i], cuts[i + 1], 0, panels, scratch);
    } else {
        const int k = sc_slices(panels, 1, cuts);
        for (int i = 0; i < k; i++)
            kt->winograd43_f32(&s, x, p, use_bias ? b : NULL, &act, got, 0, eex_wino_tiles(&s), (int)cuts[i],
                               (int)cuts[i + 1], scratch);
    }
    const float bound = 2e-5f * (s.ic > 16 ? sqrtf((float)s.ic / 16.0f) : 1.0f);
    char what[200];
    snprintf(what, sizeof what, "%s winograd43 n%d %dx%dx%d->%d p%d,%d,%d,%d act%d (bound %g)", kt->name, s.n, s.ih,
             s.iw, s.ic, s.oc, s.pt, s.pl, pb, pr, act.act, bound);
    int bad = wc_check(twin, direct, ny, scale, bound, &wc_worst, msg, cap, what, "twin vs direct");
    bad = bad || wc_check(got, direct, ny, scale, bound, &wc_worst, msg, cap, what, "fast vs direct");
    bad = bad || wc_check(got, twin, ny, scale, bound, &wc_worst, msg, cap, what, "fast vs twin");
    free(x), free(w), free(b), free(direct), free(plain), free(twin), free(got), free(u), free(p), free(scratch);
    return bad;
}

#endif
