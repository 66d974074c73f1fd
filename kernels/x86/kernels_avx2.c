/* The fast kernels for AVX2 + FMA; built with -mavx2 -mfma (mk/kernels.mk)
 * and used only when the CPU has them. */
#include "simd_avx2.h"
#include "../simd_kernels.h"
