/* The SIMD layer for AVX2 + FMA: 8 floats, tails through maskload/maskstore. */
#ifndef EEX_SIMD_AVX2_H
#define EEX_SIMD_AVX2_H

#include <stdint.h>
#include <immintrin.h>

#define EEX_ISA_SUFFIX avx2
#define EEX_ISA_NAME "avx2"
#define EEX_ISA_ID EEX_ISA_AVX2
#define EEX_VREGS 16 /* vector registers */
#define VL 8
/* 6 x 2 vectors: 12 accumulators + 2 weight vectors + 1 broadcast of 16
 * (4 x 3 measured no faster on Zen 4). */
#define GEMM_MR 6
#define GEMM_NV 2

typedef __m256 vf;

static inline vf v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void v_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline __m256i v_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vf v_loadn(const float *p, int n) { return _mm256_maskload_ps(p, v_mask(n)); }
static inline void v_storen(float *p, vf v, int n) { _mm256_maskstore_ps(p, v_mask(n), v); }
static inline vf v_set1(float x) { return _mm256_set1_ps(x); }
static inline vf v_zero(void) { return _mm256_setzero_ps(); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm256_div_ps(a, b); }
/* 2^n for integral n in [-126, 127], by building the exponent field */
static inline vf v_pow2i(vf n)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
/* x < 0 (sign bit set) ? a : b */
static inline vf v_select_neg(vf x, vf a, vf b) { return _mm256_blendv_ps(b, a, x); }
/* v_max/v_min(x, bound): a NaN in x comes through (MAXPS returns its second
 * operand when either is NaN), as PyTorch propagates NaN through clamps */
static inline vf v_max(vf a, vf b) { return _mm256_max_ps(b, a); }
static inline vf v_min(vf a, vf b) { return _mm256_min_ps(b, a); }
static inline float v_hsum(vf a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* VL float16 values, widened (exact; F16C) */
static inline vf v_load_half(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

#endif
