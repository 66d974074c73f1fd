/* Tensor codecs of the wire: f32 (exact), f16 (IEEE binary16, round to
 * nearest even, base/half.c) and int8 (per-tensor scale and zero point). */
#include <math.h>
#include <string.h>

#include "../base/status.h"
#include "offload.h"

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

size_t eexw_dtype_size(int dtype)
{
    return dtype == EEXW_F32 ? 4 : dtype == EEXW_F16 ? 2 : dtype == EEXW_I8 || dtype == EEXW_Q4 ? 1 : 0;
}

const char *eexw_dtype_name(int dtype)
{
    return dtype == EEXW_F32 ? "f32" : dtype == EEXW_F16 ? "f16" : dtype == EEXW_I8 ? "i8" : dtype == EEXW_Q4 ? "q4" : "";
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
