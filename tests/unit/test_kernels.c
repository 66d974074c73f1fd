/* The GEMM backends (OpenBLAS or built-in) against a naive product, and the
 * reference kernels' own corner cases (pooling windows, flatten order,
 * softmax stability). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/conv_fast.h"
#include "../../kernels/gemm.h"
#include "../../kernels/kernels.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static int rint_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
static float rfloat(void) { return (float)(rnd() % 20001) / 10000.0f - 1.0f; }
static float *rarray(size_t n)
{
    float *a = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++)
        a[i] = rfloat();
    return a;
}

/* max |a-b| <= tol * max(1, max|b|) */
static void assert_close(const float *a, const float *b, size_t n, float tol, const char *what)
{
    float md = 0, mb = 1;
    for (size_t i = 0; i < n; i++) {
        md = fmaxf(md, fabsf(a[i] - b[i]));
        mb = fmaxf(mb, fabsf(b[i]));
    }
    cr_assert(md <= tol * mb, "%s: max diff %g (scale %g)", what, md, mb);
}

/* The conv, depthwise, pooling and element-wise fast kernels of every ISA
 * are checked against these references in test_simd.c. */

Test(kernels, gemm_backend_matches_builtin_and_naive)
{
    for (int it = 0; it < 60; it++) {
        const int M = rint_in(1, 70), N = rint_in(1, 70), K = rint_in(1, 90), tb = it % 2;
        float *A = rarray((size_t)M * K), *B = rarray((size_t)K * N);
        float *C = malloc(sizeof(float) * (size_t)M * N), *C2 = malloc(sizeof(float) * (size_t)M * N),
              *R = malloc(sizeof(float) * (size_t)M * N);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double acc = 0;
                for (int k = 0; k < K; k++)
                    acc += (double)A[i * K + k] * (tb ? B[j * K + k] : B[k * N + j]);
                R[i * N + j] = (float)acc;
            }
        eex_gemm(M, N, K, A, K, B, tb ? K : N, tb, C, N);
        eex_gemm_builtin(M, N, K, A, K, B, tb ? K : N, tb, C2, N);
        assert_close(C, R, (size_t)M * N, 1e-5f, eex_gemm_backend());
        assert_close(C2, R, (size_t)M * N, 1e-5f, "builtin");
        free(A), free(B), free(C), free(C2), free(R);
    }
}

Test(kernels, dense_ref_matches_gemm_with_bias_act)
{
    const int n = 3, k = 29, m = 11;
    float *x = rarray((size_t)n * k), *w = rarray((size_t)m * k), *b = rarray((size_t)m);
    float y_ref[33], y[33];
    eex_act_params act = {.act = EEX_ACT_RELU};
    eex_dense_ref(n, k, m, x, w, b, &act, y_ref);
    eex_gemm(n, m, k, x, k, w, k, 1, y, m);
    eex_bias_act(n, m, m, b, &act, y);
    assert_close(y, y_ref, (size_t)n * m, 1e-5f, "dense");
    free(x), free(w), free(b);
}

Test(kernels, pooling_ceil_mode_and_padding)
{
    /* 1 channel 5x5 ramp, 3x3 stride 2, ceil mode: 3x3 output whose last
     * window overhangs; avg without pad counts only in-bounds cells */
    float x[25], y[9];
    for (int i = 0; i < 25; i++)
        x[i] = (float)i;
    eex_pool_shape s = {.n = 1, .ih = 5, .iw = 5, .c = 1, .oh = 3, .ow = 3, .kh = 3, .kw = 3, .sh = 2, .sw = 2};
    eex_maxpool_ref(&s, x, y);
    cr_assert_float_eq(y[0], 12.0f, 0);
    cr_assert_float_eq(y[8], 24.0f, 0);
    s.kh = s.kw = 2;
    s.oh = s.ow = 3;
    eex_avgpool_ref(&s, x, y);
    cr_assert_float_eq(y[0], (0 + 1 + 5 + 6) / 4.0f, 1e-6);
    cr_assert_float_eq(y[2], (4 + 9) / 2.0f, 1e-6); /* overhanging window: 2 valid cells */
    /* padding 1 with count_include_pad: corner window holds 1 real cell of 4 */
    s.pt = s.pl = s.pb = s.pr = 1;
    s.count_include_pad = 1;
    eex_avgpool_ref(&s, x, y);
    cr_assert_float_eq(y[0], 0.0f / 4, 1e-6);
    s.count_include_pad = 0;
    x[0] = 8.0f;
    eex_avgpool_ref(&s, x, y);
    cr_assert_float_eq(y[0], 8.0f, 1e-6);
}

Test(kernels, flatten_gives_nchw_order)
{
    /* NHWC [1, 2x1, 3]: pixel-major in memory, channel-major out */
    const float x[6] = {0, 10, 20, 1, 11, 21};
    float y[6];
    eex_flatten_ref(1, 2, 3, x, y);
    const float want[6] = {0, 1, 10, 11, 20, 21};
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(y[i], want[i], 0);
}

Test(kernels, softmax_sums_to_one_and_is_stable)
{
    const float x[4] = {1000.0f, 1001.0f, -1000.0f, 999.0f};
    float y[4];
    eex_softmax_ref(1, 4, x, y);
    cr_assert_float_eq(y[0] + y[1] + y[2] + y[3], 1.0f, 1e-6);
    cr_assert(y[1] > y[0] && y[0] > y[3] && y[2] == 0.0f);
}
