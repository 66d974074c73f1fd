/* The SIMD layer for AArch64 NEON: 4 floats; NEON has no masked memory
 * access, so tails go through a small stack buffer. */
#ifndef EEX_SIMD_NEON_H
#define EEX_SIMD_NEON_H

#include <stdint.h>
#include <arm_neon.h>
#include <string.h>

#define EEX_ISA_SUFFIX neon
#define EEX_ISA_NAME "neon"
#define EEX_ISA_ID EEX_ISA_NEON
#define EEX_VREGS 32 /* vector registers */
#define VL 4
/* 8 x 3 vectors: 24 accumulators + 3 weight vectors + broadcasts of 32. */
#define GEMM_MR 8
#define GEMM_NV 3

typedef float32x4_t vf;

static inline vf v_load(const float *p) { return vld1q_f32(p); }
static inline void v_store(float *p, vf v) { vst1q_f32(p, v); }
static inline vf v_loadn(const float *p, int n)
{
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, sizeof(float) * (size_t)n);
    return vld1q_f32(t);
}
static inline void v_storen(float *p, vf v, int n)
{
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, sizeof(float) * (size_t)n);
}
static inline vf v_set1(float x) { return vdupq_n_f32(x); }
static inline vf v_zero(void) { return vdupq_n_f32(0.0f); }
static inline vf v_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf v_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf v_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf v_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf v_div(vf a, vf b) { return vdivq_f32(a, b); }
/* 2^n for integral n in [-126, 127], by building the exponent field */
static inline vf v_pow2i(vf n)
{
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23));
}
/* x < 0 (sign bit set) ? a : b */
static inline vf v_select_neg(vf x, vf a, vf b)
{
    return vbslq_f32(vcltq_s32(vreinterpretq_s32_f32(x), vdupq_n_s32(0)), a, b);
}
static inline vf v_max(vf a, vf b) { return vmaxq_f32(a, b); }
static inline vf v_min(vf a, vf b) { return vminq_f32(a, b); }
static inline float v_hsum(vf a) { return vaddvq_f32(a); }
/* VL float16 values, widened (exact) */
static inline vf v_load_half(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

#endif
