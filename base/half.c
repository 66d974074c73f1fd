/* IEEE binary16 <-> binary32, done on the bits so it is the same on every
 * compiler and CPU: the wire's f16 codec (offload/) and float16 tensors in
 * .eex files (docs/format.md) both use it. tests/offload/test_offload.c
 * checks it against the compiler's _Float16 where there is one, and against
 * published bit patterns. */
#include "half.h"

#include <math.h>
#include <string.h>

uint16_t eex_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u)  /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u)  /* >= 65520 (the midpoint above 65504) rounds to infinity, as does infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) {  /* normal in f16: >= 2^-14 */
        uint32_t h = ((a >> 23) - 112u) << 10 | ((a >> 13) & 0x3ffu);
        const uint32_t rest = a & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
            h++;  /* a carry into the exponent is the right answer */
        return (uint16_t)(sign | h);
    }
    if (a <= 0x33000000u)  /* <= 2^-25: the tie at 2^-25 goes to the even zero */
        return sign;
    /* subnormal in f16: the value in units of 2^-24 is mant * 2^(e - 126) */
    const uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;  /* 14..24 */
    uint32_t h = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

float eex_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t x;
    if (e == 0) {
        const float v = ldexpf((float)m, -24);  /* exact: m < 2^10 */
        return sign ? -v : v;
    }
    if (e == 31)
        x = sign | 0x7f800000u | m << 13;
    else
        x = sign | (e + 112u) << 23 | m << 13;
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}
