/* A depthwise conv and the 1x1 conv after it, computed strip by strip so
 * the depthwise output never leaves a small buffer (engine/exec.c runs
 * MobileNet-style pairs this way; kernels/selfcheck.c checks it). */
#ifndef EEX_DW_PW_H
#define EEX_DW_PW_H

#include <stdint.h>

#include "dispatch.h"

typedef void (*eex_dw_fn)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                          const eex_act_params *act, float *y, int64_t r0, int64_t r1);

/* The table's depthwise kernel for shape s: the 3x3 / 5x5 stride 1 / 2
 * specialisations, else the general one. */
eex_dw_fn eex_dw_pick(const eex_kernel_table *kt, const eex_conv_shape *s);

/* Output rows r0..r1 (of d->n * d->oh) of pw(dw(x)): d is the depthwise
 * shape (weights wd in the [kh*kw][C] layout of engine/pack.c, bias bd or
 * NULL, activation ad), p the pointwise one (stride 1, no padding, one
 * group; GEMM panels wp with their bias, activation ap; its ih/iw/ic are
 * d's oh/ow/oc). Strips of at most strip_rows depthwise rows, never
 * crossing an image, go through `strip` (strip_rows * d->ow * d->oc
 * floats), each followed by the 1x1 GEMM of its pixels into y. Every output
 * element gets the arithmetic of the two kernels run apart over the whole
 * shape: the depthwise kernel sees the strip as a shape of strip rows with
 * its top padding shifted, the GEMM computes each pixel alike wherever its
 * tile starts. So the bytes are those of the unfused run. */
void eex_dw_pw_rows(const eex_kernel_table *kt, const eex_conv_shape *d, const float *x, const float *wd,
                    const float *bd, const eex_act_params *ad, const eex_conv_shape *p, const float *wp,
                    const eex_act_params *ap, const float *zeros, float *strip, int strip_rows, float *y, int64_t r0,
                    int64_t r1);

#endif
