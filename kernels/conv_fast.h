/* The bias + activation epilogue for products computed elsewhere (eex_gemm
 * output). The engine's convs and dense layers fuse it into their kernels
 * (kernels/dispatch.h); this stand-alone form serves the OpenBLAS paths of
 * the tests and kernel benchmarks. */
#ifndef EEX_CONV_FAST_H
#define EEX_CONV_FAST_H

#include "kernels.h"

/* y[r, 0..n) = act(y[r, j] + bias[j]) for `rows` rows of stride ldc. */
void eex_bias_act(int64_t rows, int n, int ldc, const float *bias, const eex_act_params *act, float *y);

#endif
