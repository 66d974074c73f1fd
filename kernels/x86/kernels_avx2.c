/* The fast kernels for AVX2 + FMA (+ F16C); built with -mavx2 -mfma -mf16c (mk/kernels.mk)
 * and used only when the CPU has them. */
#include "simd_avx2.h"
#include "../simd_kernels.h"
