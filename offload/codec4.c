/* The q4 wire codec (dtype 4, docs/protocol.md "Codecs"): 4 bits an element
 * with a minimum and a step per channel. A NCHW batch-1 tensor of C
 * channels travels as C pairs of IEEE binary16 (minimum, step), then the
 * elements two to a byte (element 2i in the low nibble, 2i + 1 in the
 * high; a last odd element's high nibble is 0). Element x of channel c is
 * q = round((x - min_c) / step_c) clamped to 0..15 and comes back as
 * min_c + q * step_c, with min_c and step_c the binary16 values sent, so
 * edge and cloud agree bit for bit. A channel whose minimum is 0 (after a
 * ReLU) keeps its zeros exact. Also the per-channel entry points for every
 * dtype, so callers need not special-case q4. */
#include <math.h>
#include <string.h>

#include "../base/status.h"
#include "offload.h"

size_t eexw_raw_bytes(int dtype, size_t elems, size_t groups)
{
    if (dtype == EEXW_Q4)
        return 4 * (groups ? groups : 1) + (elems + 1) / 2;
    return elems * eexw_dtype_size(dtype);
}

static float sat16(float v) { return v > 65504.0f ? 65504.0f : v < -65504.0f ? -65504.0f : v; }

eex_status eexw_encode_ch(const float *x, size_t elems, size_t groups, int dtype, uint8_t *dst, float *scale,
                          int32_t *zp)
{
    if (dtype != EEXW_Q4)
        return eexw_encode(x, elems, dtype, dst, scale, zp);
    *scale = 0.0f;
    *zp = 0;
    if (!groups || elems % groups)
        return eex_fail(EEX_ERR_ARGUMENT, "q4 wire: %zu elements do not split into %zu channels", elems, groups);
    const size_t inner = elems / groups;
    uint8_t *q = dst + 4 * groups;
    memset(q, 0, (elems + 1) / 2);
    for (size_t g = 0; g < groups; g++) {
        const float *v = x + g * inner;
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < inner; i++) {
            if (!isfinite(v[i]))
                return eex_fail(EEX_ERR_NUMERIC, "q4 wire: value %zu of the cut tensor is not finite", g * inner + i);
            lo = v[i] < lo ? v[i] : lo;
            hi = v[i] > hi ? v[i] : hi;
        }
        /* values below the binary16 minimum (its rounding) come back as it */
        const uint16_t lo_h = eex_f32_to_f16(sat16(lo));
        const float lo_f = eex_f16_to_f32(lo_h);
        const float span = sat16(hi) - lo_f;
        const uint16_t st_h = eex_f32_to_f16(sat16(span > 0 ? span / 15.0f : 0.0f));
        const float st = eex_f16_to_f32(st_h);
        eexw_put_u16(dst + 4 * g, lo_h);
        eexw_put_u16(dst + 4 * g + 2, st_h);
        for (size_t i = 0; i < inner; i++) {
            float r = st > 0 ? nearbyintf((v[i] - lo_f) / st) : 0.0f;
            r = r < 0 ? 0 : r > 15 ? 15 : r;
            const size_t e = g * inner + i;
            q[e / 2] |= (uint8_t)((unsigned)r << (e & 1 ? 4 : 0));
        }
    }
    return EEX_OK;
}

int eexw_decode_ch(const uint8_t *src, size_t elems, size_t groups, int dtype, float scale, int32_t zp, float *x)
{
    if (dtype != EEXW_Q4) {
        eexw_decode(src, elems, dtype, scale, zp, x);
        return 0;
    }
    if (!groups || elems % groups)
        return -1;
    const size_t inner = elems / groups;
    const uint8_t *q = src + 4 * groups;
    for (size_t g = 0; g < groups; g++) {
        const float lo = eex_f16_to_f32(eexw_u16(src + 4 * g)), st = eex_f16_to_f32(eexw_u16(src + 4 * g + 2));
        if (!isfinite(lo) || !isfinite(st) || st < 0)
            return -1;
        for (size_t i = 0; i < inner; i++) {
            const size_t e = g * inner + i;
            x[e] = lo + (float)(q[e / 2] >> (e & 1 ? 4 : 0) & 15u) * st;
        }
    }
    return 0;
}
