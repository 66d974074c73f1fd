/* Tensor codecs of the wire: f32 (exact), f16 (IEEE binary16, round to
 * nearest even) and int8 (per-tensor scale and zero point). The f16
 * conversion is done on the bits so it is the same on every compiler and
 * CPU; tests/offload/test_offload.c checks it against the compiler's
 * _Float16 where there is one, and against published bit patterns. */
#include <math.h>
#include <string.h>

#include "../engine/status.h"
#include "offload.h"

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

eex_status eex_i8_params(const float *x, size_t n, float *scale, int32_t *zero_point)
{
    float lo = 0.0f, hi = 0.0f;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return eex_fail(EEX_ERR_NUMERIC, "int8 wire: value %zu of the cut tensor is not finite", i);
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    if (hi - lo <= 0.0f || !isfinite(hi - lo)) {
        if (hi - lo <= 0.0f) {  /* all zeros */
            *scale = 1.0f;
            *zero_point = 0;
            return EEX_OK;
        }
        return eex_fail(EEX_ERR_NUMERIC, "int8 wire: the cut tensor's range overflows a float");
    }
    const float s = (hi - lo) / 255.0f;
    long zp = -128 - lrintf(lo / s);
    zp = zp < -128 ? -128 : zp > 127 ? 127 : zp;
    *scale = s;
    *zero_point = (int32_t)zp;
    return EEX_OK;
}

float eex_i8_dequantize(int8_t q, float scale, int32_t zp) { return (float)((int32_t)q - zp) * scale; }

size_t eexw_dtype_size(int dtype) { return dtype == EEXW_F32 ? 4 : dtype == EEXW_F16 ? 2 : dtype == EEXW_I8 ? 1 : 0; }

const char *eexw_dtype_name(int dtype)
{
    return dtype == EEXW_F32 ? "f32" : dtype == EEXW_F16 ? "f16" : dtype == EEXW_I8 ? "i8" : "";
}

eex_status eexw_encode(const float *x, size_t n, int dtype, uint8_t *dst, float *scale, int32_t *zp)
{
    *scale = 0.0f;
    *zp = 0;
    switch (dtype) {
    case EEXW_F32:
        for (size_t i = 0; i < n; i++)
            eexw_put_f32(dst + 4 * i, x[i]);
        return EEX_OK;
    case EEXW_F16:
        for (size_t i = 0; i < n; i++) {
            /* saturate finite values: a large activation arrives as +-65504, not inf */
            const float v = x[i] > 65504.0f ? 65504.0f : x[i] < -65504.0f ? -65504.0f : x[i];
            eexw_put_u16(dst + 2 * i, eex_f32_to_f16(v));
        }
        return EEX_OK;
    case EEXW_I8: {
        eex_status st = eex_i8_params(x, n, scale, zp);
        if (st)
            return st;
        for (size_t i = 0; i < n; i++)
            dst[i] = (uint8_t)eex_i8_quantize(x[i], *scale, *zp);
        return EEX_OK;
    }
    default: return eex_fail(EEX_ERR_ARGUMENT, "wire: unknown dtype %d", dtype);
    }
}

void eexw_decode(const uint8_t *src, size_t n, int dtype, float scale, int32_t zp, float *x)
{
    switch (dtype) {
    case EEXW_F32:
        for (size_t i = 0; i < n; i++)
            x[i] = eexw_f32(src + 4 * i);
        break;
    case EEXW_F16:
        for (size_t i = 0; i < n; i++)
            x[i] = eex_f16_to_f32(eexw_u16(src + 2 * i));
        break;
    case EEXW_I8:
        for (size_t i = 0; i < n; i++)
            x[i] = eex_i8_dequantize((int8_t)src[i], scale, zp);
        break;
    default: break;
    }
}
