/* The fast kernels for AVX-512 (F, VL, DQ); built with -mavx512f -mavx512vl
 * -mavx512dq -mfma (mk/kernels.mk) and used only when the CPU has them. */
#include "simd_avx512.h"
#include "../simd_kernels.h"
