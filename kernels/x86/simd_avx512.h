/* The SIMD layer for AVX-512 (F, VL, DQ): 16 floats, masked tails. */
#ifndef EEX_SIMD_AVX512_H
#define EEX_SIMD_AVX512_H

#include <stdint.h>
#include <immintrin.h>

#define EEX_ISA_SUFFIX avx512
#define EEX_ISA_NAME "avx512"
#define EEX_ISA_ID EEX_ISA_AVX512
#define EEX_VREGS 32 /* vector registers */
#define VL 16
/* 8 x 3 vectors: 24 accumulators + 3 weight vectors + 1 broadcast of the 32
 * registers, and 8 broadcast loads feed 24 FMAs per k. */
#define GEMM_MR 8
#define GEMM_NV 3

typedef __m512 vf;

static inline vf v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void v_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline __mmask16 v_mask(int n) { return (__mmask16)((1u << n) - 1u); }
/* The first n (0 < n < VL) lanes; the rest read as zero and are not touched. */
static inline vf v_loadn(const float *p, int n) { return _mm512_maskz_loadu_ps(v_mask(n), p); }
static inline void v_storen(float *p, vf v, int n) { _mm512_mask_storeu_ps(p, v_mask(n), v); }
static inline vf v_set1(float x) { return _mm512_set1_ps(x); }
static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm512_div_ps(a, b); }
/* 2^n for integral n in [-126, 127], by building the exponent field */
static inline vf v_pow2i(vf n)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
/* x < 0 (sign bit set) ? a : b */
static inline vf v_select_neg(vf x, vf a, vf b)
{
    return _mm512_mask_blend_ps(_mm512_movepi32_mask(_mm512_castps_si512(x)), b, a);
}
/* v_max/v_min(x, bound): a NaN in x comes through (MAXPS returns its second
 * operand when either is NaN), as PyTorch propagates NaN through clamps */
static inline vf v_max(vf a, vf b) { return _mm512_max_ps(b, a); }
static inline vf v_min(vf a, vf b) { return _mm512_min_ps(b, a); }
static inline float v_hsum(vf a) { return _mm512_reduce_add_ps(a); }
/* VL float16 values, widened (exact) */
static inline vf v_load_half(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

#endif
