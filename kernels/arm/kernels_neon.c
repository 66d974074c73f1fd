/* The fast kernels for AArch64 NEON (always present on AArch64). */
#include "simd_neon.h"
#include "../simd_kernels.h"
