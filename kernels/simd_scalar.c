/* The fast kernels with one-lane vectors: the fallback on CPUs with none of
 * the SIMD ISAs eex has kernels for, and the table tests compare first. */
#include "simd_scalar.h"
#include "simd_kernels.h"
