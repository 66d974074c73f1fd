/* IEEE binary16 <-> binary32 (weights/half.c). */
#ifndef EEX_HALF_H
#define EEX_HALF_H

#include <stdint.h>

/* f32 -> f16 rounds to nearest, ties to even; overflow gives infinity, NaN
 * stays NaN (quiet). f16 -> f32 is exact. */
uint16_t eex_f32_to_f16(float f);
float eex_f16_to_f32(uint16_t h);

#endif
