/* Row-major single-precision GEMM: C[M,N] = A[M,K] * op(B), with op(B) = B
 * ([K,N], leading dim ldb) or B^T (B is [N,K]). Backed by OpenBLAS's
 * cblas_sgemm, or by the built-in kernel when built with BLAS=none. */
#ifndef EEX_GEMM_H
#define EEX_GEMM_H

#include "eex.h"  /* eex_gemm_backend(): "openblas" or "builtin" */

void eex_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b, float *C,
              int ldc);
/* The built-in kernel, always compiled so tests can compare both. */
void eex_gemm_builtin(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b,
                      float *C, int ldc);

#endif
