/* Fast convolution kernels; each is tested against eex_conv_ref. */
#ifndef EEX_CONV_FAST_H
#define EEX_CONV_FAST_H

#include "kernels.h"

/* y[r, 0..n) = act(y[r, j] + bias[j]) for `rows` rows of stride ldc. */
void eex_bias_act(int64_t rows, int n, int ldc, const float *bias, const eex_act_params *act, float *y);

/* 1x1, stride 1, no padding, group 1; w is [ic][oc]. */
void eex_conv1x1_gemm(const eex_conv_shape *s, const float *x, const float *w_kn, const float *bias,
                      const eex_act_params *act, float *y);
/* Any conv; w is per group [kh*kw*icg][ocg]; scratch holds oh*ow*kh*kw*icg floats. */
void eex_conv_im2col(const eex_conv_shape *s, const float *x, const float *w_packed, const float *bias,
                     const eex_act_params *act, float *scratch, float *y);
/* Depthwise (group = ic = oc); w is [kh*kw][C]. */
void eex_dwconv(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                const eex_act_params *act, float *y);

#endif
