/* The SIMD layer with one-lane "vectors": the portable fallback, built
 * from the same kernel source as the SIMD ISAs. */
#ifndef EEX_SIMD_SCALAR_H
#define EEX_SIMD_SCALAR_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../base/half.h"

#define EEX_ISA_SUFFIX scalar
#define EEX_ISA_NAME "scalar"
#define EEX_ISA_ID EEX_ISA_SCALAR
#define EEX_VREGS 32 /* vector registers */
#define VL 1
#define GEMM_MR 4
#define GEMM_NV 4

typedef float vf;

static inline vf v_load(const float *p) { return *p; }
static inline void v_store(float *p, vf v) { *p = v; }
/* With one lane a partial vector never occurs. */
static inline vf v_loadn(const float *p, int n) { return n > 0 ? *p : 0.0f; }
static inline void v_storen(float *p, vf v, int n)
{
    if (n > 0)
        *p = v;
}
static inline vf v_set1(float x) { return x; }
static inline vf v_zero(void) { return 0.0f; }
/* a*b+c, not fmaf: without hardware FMA fmaf is a slow libm call */
static inline vf v_fma(vf a, vf b, vf c) { return a * b + c; }
static inline vf v_add(vf a, vf b) { return a + b; }
static inline vf v_mul(vf a, vf b) { return a * b; }
static inline vf v_sub(vf a, vf b) { return a - b; }
static inline vf v_div(vf a, vf b) { return a / b; }
/* 2^n for integral n in [-126, 127], by building the exponent field */
static inline vf v_pow2i(vf n)
{
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
/* x < 0 (sign bit set) ? a : b */
static inline vf v_select_neg(vf x, vf a, vf b) { return signbit(x) ? a : b; }
/* a NaN in the first operand comes through, as on the vector ISAs */
static inline vf v_max(vf a, vf b) { return b > a ? b : a; }
static inline vf v_min(vf a, vf b) { return b < a ? b : a; }
static inline float v_hsum(vf a) { return a; }
static inline vf v_load_half(const uint16_t *p) { return eex_f16_to_f32(*p); }

#endif
