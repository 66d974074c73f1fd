/* eex_gemm: OpenBLAS's cblas_sgemm by default; with BLAS=none, and always as
 * eex_gemm_builtin, the fast kernels' register-blocked micro-kernel
 * (kernels/simd_kernels.h) after packing B into its panels. The engine's
 * convs and dense layers call that micro-kernel directly on weights packed
 * once at load (measured faster than sgemm for every MobileNetV2 shape, see
 * docs/performance.md); this entry point serves everything else. */
#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#include "dispatch.h"

#ifndef EEX_NO_BLAS
#include <cblas.h>
#endif

static void gemm_naive(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b, float *C,
                       int ldc)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        const float *a = A + (size_t)i * lda;
        for (int j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++)
                acc += a[k] * (trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            c[j] = acc;
        }
    }
}

void eex_gemm_builtin(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b,
                      float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    const eex_kernel_table *kt = eex_kernels_best();
    const int nr = kt->nr, panels = (N + nr - 1) / nr;
    const int64_t panel = eex_gemm_panel_floats(nr, 1, K);
    /* the micro-kernel reads A rows K apart and writes C rows N apart */
    float *pk = K > 0 && lda == K && ldc == N ? calloc((size_t)(panels * panel), sizeof(float)) : NULL;
    if (!pk) {
        gemm_naive(M, N, K, A, lda, B, ldb, trans_b, C, ldc);
        return;
    }
    for (int j = 0; j < panels; j++) {
        float *p = pk + (int64_t)j * panel + nr; /* a zero bias row first */
        for (int k = 0; k < K; k++)
            for (int o = 0; o < nr && j * nr + o < N; o++) {
                const int col = j * nr + o;
                p[(int64_t)k * nr + o] = trans_b ? B[(size_t)col * ldb + k] : B[(size_t)k * ldb + col];
            }
    }
    /* C = A B is a 1x1 conv over M one-pixel images of K channels */
    const eex_conv_shape s = {.n = M, .ih = 1, .iw = 1, .ic = K, .oh = 1, .ow = 1, .oc = N, .kh = 1, .kw = 1,
                              .sh = 1, .sw = 1, .dh = 1, .dw = 1, .group = 1};
    const eex_act_params none = {.act = EEX_ACT_NONE};
    kt->conv_gemm_f32(&s, A, pk, &none, C, 0, M, 0, panels, NULL);
    free(pk);
}

void eex_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b, float *C,
              int ldc)
{
#ifdef EEX_NO_BLAS
    eex_gemm_builtin(M, N, K, A, lda, B, ldb, trans_b, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb,
                0.0f, C, ldc);
#endif
}

const char *eex_gemm_backend(void)
{
#ifdef EEX_NO_BLAS
    return "builtin";
#else
    return "openblas";
#endif
}
