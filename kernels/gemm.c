#include "gemm.h"

#include <string.h>

#ifndef EEX_NO_BLAS
#include <cblas.h>
#endif

void eex_gemm_builtin(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b,
                      float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        const float *a = A + (size_t)i * lda;
        if (trans_b) {
            for (int j = 0; j < N; j++) {
                const float *b = B + (size_t)j * ldb;
                float acc = 0.0f;
                for (int k = 0; k < K; k++)
                    acc += a[k] * b[k];
                c[j] = acc;
            }
        } else {
            memset(c, 0, sizeof(float) * (size_t)N);
            for (int k = 0; k < K; k++) {
                const float av = a[k];
                const float *b = B + (size_t)k * ldb;
                for (int j = 0; j < N; j++)
                    c[j] += av * b[j];
            }
        }
    }
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
