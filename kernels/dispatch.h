/* The fast-kernel table, chosen once at start-up from the CPU's features.
 *
 * Every kernel is written once (kernels/simd_kernels.h) against a thin SIMD
 * layer and compiled once per ISA with that ISA's flags (kernels/x86/,
 * kernels/arm/, kernels/simd_scalar.c). Each ISA build fills one table; the
 * engine asks for the best table the CPU runs, the tests for every table it
 * runs. Kernels compute a slice of their output ([lo, hi) of rows, pixels or
 * elements) so the engine can split a node across its thread pool; a slice
 * never depends on how the rest is split, so results do not depend on the
 * thread count. */
#ifndef EEX_DISPATCH_H
#define EEX_DISPATCH_H

#include <stdint.h>

#include "eex.h"  /* the public eex_kernel_isa, eex_kernel_isas */
#include "kernels.h"

typedef enum eex_isa {
    EEX_ISA_SCALAR = 0,
    EEX_ISA_AVX2,      /* AVX2 + FMA */
    EEX_ISA_AVX512,    /* AVX-512 F + VL + DQ */
    EEX_ISA_NEON,      /* AArch64 Advanced SIMD */
    EEX_ISA_COUNT
} eex_isa;

/* Packed weights of a GEMM-based conv or dense layer (see eex_pack_gemm_weights):
 * per group, ceil(ocg / nr) panels; panel j is [nr bias][taps * icg][nr weights],
 * zero-padded past ocg, K ordered (ky, kx, ci) like an NHWC patch. */
static inline int64_t eex_gemm_panel_floats(int nr, int taps, int icg) { return (int64_t)nr * (1 + (int64_t)taps * icg); }

typedef struct eex_kernel_table {
    eex_isa isa;
    const char *name;          /* "avx512", "avx2", "neon", "scalar" */
    int vl;                    /* floats per vector */
    int mr, nr;                /* GEMM: pixel-split granularity (a multiple of every tile height), panel width */

    /* Convolution as a register-blocked GEMM over packed weights, reading the
     * NHWC input directly (indirect: per micro-tile, one row pointer per pixel
     * and tap; padding reads a zero row). Computes output pixels [p0, p1) of
     * n*oh*ow and panels [j0, j1) of group*ceil(ocg/nr), bias and act fused.
     * `zeros` holds kw*ic zeros when the conv has padding (else may be NULL).
     * Dense layers are the 1x1 case with n = batch and h = w = 1. */
    void (*conv_gemm_f32)(const eex_conv_shape *s, const float *x, const float *w_packed,
                          const eex_act_params *act, float *y, int64_t p0, int64_t p1, int j0, int j1,
                          const float *zeros);
    /* Winograd F(4x4, 3x3) for 3x3 stride-1 convs with one group
     * (kernels/winograd.h): tiles [t0, t1) of eex_wino_tiles(s) and output
     * panels [j0, j1) of ceil(oc/nr), weights from eex_wino_pack_weights
     * with this table's nr, bias (or NULL) and act fused; scratch holds
     * eex_wino_scratch_floats(ic, oc, mr) floats. */
    void (*winograd43_f32)(const eex_conv_shape *s, const float *x, const float *u_packed, const float *bias,
                           const eex_act_params *act, float *y, int64_t t0, int64_t t1, int j0, int j1,
                           float *scratch);
    /* Dense layer y[n, m] = act(bias + x[n, k] W) with float16 weights in
     * [panels][k][nr] panels, zero-padded past m, and a float32 bias of
     * panels * nr (engine/pack.c); panels [j0, j1) of every image. */
    void (*dense_half_f32)(int n, int k, int m, const float *x, const uint16_t *w, const float *bias,
                           const eex_act_params *act, float *y, int j0, int j1);
    /* Depthwise (group = ic = oc) over weights [kh*kw][C], output rows
     * [r0, r1) of n*oh. The 3x3 ones need kh = kw = 3, dilation 1 and their stride;
     * dwconv_f32 takes any kernel, stride and dilation. */
    void (*dwconv3x3_s1_f32)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                             const eex_act_params *act, float *y, int64_t r0, int64_t r1);
    void (*dwconv3x3_s2_f32)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                             const eex_act_params *act, float *y, int64_t r0, int64_t r1);
    /* The 5x5 ones (MobileNetV3) need kh = kw = 5, dilation 1 and their stride. */
    void (*dwconv5x5_s1_f32)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                             const eex_act_params *act, float *y, int64_t r0, int64_t r1);
    void (*dwconv5x5_s2_f32)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                             const eex_act_params *act, float *y, int64_t r0, int64_t r1);
    void (*dwconv_f32)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                       const eex_act_params *act, float *y, int64_t r0, int64_t r1);
    /* Pooling, output rows [r0, r1) of n*oh. */
    void (*maxpool_f32)(const eex_pool_shape *s, const float *x, float *y, int64_t r0, int64_t r1);
    void (*avgpool_f32)(const eex_pool_shape *s, const float *x, float *y, int64_t r0, int64_t r1);
    /* Global average pool of [n, hw, c], channels [c0, c1) of every image. */
    void (*gap_f32)(int n, int hw, int c, const float *x, float *y, int c0, int c1);
    /* y = act(a (+ or *) b), pixels [p0, p1) of n*hw (see eex_binary_ref). */
    void (*binary_f32)(int op, int n, int hw, int c, const float *a, const float *b, eex_bcast mode,
                       const eex_act_params *act, float *y, int64_t p0, int64_t p1);
    /* Element-wise unary on [i0, i1) (see eex_unary_ref). */
    void (*unary_f32)(eex_unary op, float p0, float p1, const float *x, float *y, int64_t i0, int64_t i1);
    /* Layer normalisation over channels, pixels [p0, p1) (see eex_layernorm_ref). */
    void (*layernorm_f32)(int64_t p0, int64_t p1, int c, float eps, const float *scale, const float *bias,
                          const float *x, float *y);
} eex_kernel_table;

/* The best table this CPU runs (detected once, thread-safe). EEX_ISA env
 * variable (scalar, avx2, avx512, neon) caps the choice, for measurements. */
const eex_kernel_table *eex_kernels_best(void);
/* The table for one ISA, or NULL when this build or this CPU lacks it. */
const eex_kernel_table *eex_kernels_for(eex_isa isa);
const char *eex_isa_name(eex_isa isa);
/* The ISA named "scalar", "avx2", ... (eex_isa_name), or EEX_ISA_COUNT. */
eex_isa eex_isa_from_name(const char *name);

/* Per-ISA tables (defined in the per-ISA files; absent ones are NULL). */
extern const eex_kernel_table eex_kernel_table_scalar;
#if defined(__x86_64__)
extern const eex_kernel_table eex_kernel_table_avx2;
extern const eex_kernel_table eex_kernel_table_avx512;
#endif
#if defined(__aarch64__)
extern const eex_kernel_table eex_kernel_table_neon;
#endif

/* Packs OIHW conv weights (or [oc][ic] dense weights with kh = kw = 1) and
 * the bias into the layout conv_gemm_f32 of a table with panel width nr
 * reads. dst holds group * ceil(ocg/nr) * eex_gemm_panel_floats(nr, kh*kw, icg). */
void eex_pack_gemm_weights(const float *w_oihw, const float *bias, int oc, int icg, int kh, int kw, int group,
                           int nr, float *dst);
int64_t eex_pack_gemm_floats(int oc, int icg, int kh, int kw, int group, int nr);
/* Packs [m][k] float16 dense weights (any alignment) and the float32 bias
 * (or NULL) into what dense_half_f32 reads: dst ceil(m/nr)*nr*k values,
 * dst_bias ceil(m/nr)*nr floats. */
void eex_pack_dense_half(const uint16_t *w_mk, const float *bias, int k, int m, int nr, uint16_t *dst,
                         float *dst_bias);

#endif
