/* Winograd F(4x4, 3x3) for 3x3 convs at stride 1, dilation 1, one group.
 *
 * Each 4x4 tile of output is computed from a 6x6 tile of input:
 * Y = A^T [ (G g G^T) .* (B^T d B) ] A (Lavin & Gray, 2015; points 0, +-1,
 * +-2, infinity). The weights are transformed once at load (in double, then
 * rounded), so per tile the work is the input transform, 36 products over the
 * input channels (a GEMM per transform position xi = 0..35, run on the same
 * register-blocked micro-kernel as the direct convs) and the output
 * transform: 36 MACs per input/output channel pair for 16 outputs instead of
 * 144, at the cost of float rounding in the transforms (measured and bounded
 * in tests/unit/test_winograd.c).
 *
 * Layouts: the input and output are NHWC. The transformed weights are, per
 * xi, the GEMM panels of eex_pack_gemm_weights for a 1x1 conv of ic -> oc
 * with no bias (so 36 * eex_pack_gemm_floats(oc, ic, 1, 1, 1, nr) floats).
 * Tiles are numbered n * th * tw + ty * tw + tx, th = ceil(oh/4),
 * tw = ceil(ow/4); a kernel call computes tiles [t0, t1), each tile the same
 * way whatever the split, so results do not depend on the thread count. */
#ifndef EEX_WINOGRAD_H
#define EEX_WINOGRAD_H

#include <stdint.h>

#include "kernels.h"

#define EEX_WINO_T 6       /* input tile side */
#define EEX_WINO_M 4       /* output tile side */
#define EEX_WINO_XI 36     /* transform positions */

static inline int64_t eex_wino_tiles(const eex_conv_shape *s)
{
    return (int64_t)s->n * ((s->oh + EEX_WINO_M - 1) / EEX_WINO_M) * ((s->ow + EEX_WINO_M - 1) / EEX_WINO_M);
}

/* Tiles per block: the kernel transforms a block of tiles' inputs, runs the
 * 36 products over the block, then transforms its outputs. The block's
 * transformed input for one xi (block * ic floats) is re-read for each panel
 * of output channels, so it should stay in L2: about 64 KB. A multiple of
 * the micro-kernel's tile height mr. */
static inline int eex_wino_block(int ic, int mr)
{
    int b = 16384 / (ic > 0 ? ic : 1);
    b = b / mr * mr;
    if (b < 2 * mr)
        b = 2 * mr;
    if (b > 40 * mr)
        b = 40 * mr;
    return b;
}

/* Scratch floats one kernel call needs (per thread): the transformed input
 * and the products of one block (their rows padded to whole vectors of up
 * to 16 floats). */
static inline int64_t eex_wino_scratch_floats(int ic, int oc, int mr)
{
    return (int64_t)EEX_WINO_XI * eex_wino_block(ic, mr) * (ic + (oc + 15) / 16 * 16);
}

/* Whether a conv can run as Winograd F(4x4, 3x3). */
static inline int eex_wino_applies(const eex_conv_shape *s)
{
    return s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 && s->dh == 1 && s->dw == 1 && s->group == 1;
}

/* U = G g G^T for every (oc, ic) pair of OIHW 3x3 weights, in double, into
 * u[36][oc][ic] (the reference's layout). */
void eex_wino_transform_weights(const float *w_oihw, int oc, int ic, float *u);
/* The same, packed per xi into GEMM panels of width nr (see above). */
int64_t eex_wino_pack_floats(int oc, int ic, int nr);
void eex_wino_pack_weights(const float *w_oihw, int oc, int ic, int nr, float *dst);

/* The scalar twin of the fast kernels: the same algorithm in plain loops
 * over the whole conv, from u[36][oc][ic] (eex_wino_transform_weights). */
void eex_winograd43_ref(const eex_conv_shape *s, const float *x, const float *u, const float *bias,
                        const eex_act_params *act, float *y);

/* A per-thread scratch buffer of at least `floats` floats, kept for the
 * thread's lifetime (freed when the thread exits); NULL when out of memory. */
float *eex_wino_scratch(int64_t floats);

#endif
