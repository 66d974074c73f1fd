/* Images to model inputs: the one resize every path uses (the CLI, the
 * detector's spectrum, evaluation), so the same pixels give the same floats. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "../base/status.h"

/* Bilinear resize of one channel: out = f(v), v the interpolated value on
 * the 0..255 scale, in float as docs/distortions.md spells it out. */
#define RESIZE_BODY(STORE)                                                                                       \
    const float sy = (float)h / (float)oh, sx = (float)w / (float)ow;                                           \
    for (int y = 0; y < oh; y++) {                                                                               \
        float fy = ((float)y + 0.5f) * sy - 0.5f;                                                                \
        if (fy < 0)                                                                                              \
            fy = 0;                                                                                              \
        int y0 = (int)fy;                                                                                        \
        if (y0 > h - 1)                                                                                          \
            y0 = h - 1;                                                                                          \
        const int y1 = y0 + 1 < h ? y0 + 1 : y0;                                                                 \
        const float wy = fy - (float)y0;                                                                         \
        for (int x = 0; x < ow; x++) {                                                                           \
            float fx = ((float)x + 0.5f) * sx - 0.5f;                                                            \
            if (fx < 0)                                                                                          \
                fx = 0;                                                                                          \
            int x0 = (int)fx;                                                                                    \
            if (x0 > w - 1)                                                                                      \
                x0 = w - 1;                                                                                      \
            const int x1 = x0 + 1 < w ? x0 + 1 : x0;                                                             \
            const float wx = fx - (float)x0;                                                                     \
            const float v = (1 - wy) * ((1 - wx) * src[((size_t)y0 * w + x0) * c + ch] +                         \
                                        wx * src[((size_t)y0 * w + x1) * c + ch]) +                              \
                            wy * ((1 - wx) * src[((size_t)y1 * w + x0) * c + ch] +                               \
                                  wx * src[((size_t)y1 * w + x1) * c + ch]);                                     \
            STORE;                                                                                               \
        }                                                                                                        \
    }

void eex_resize_u8(const uint8_t *src, int h, int w, int c, int oh, int ow, uint8_t *out)
{
    for (int ch = 0; ch < c; ch++) {
        RESIZE_BODY(out[((size_t)y * ow + x) * c + ch] = (uint8_t)floorf(v + 0.5f))
    }
}

void eex_resize_channel(const uint8_t *src, int h, int w, int c, int ch, int oh, int ow, float mean, float std,
                        float *out)
{
    RESIZE_BODY(out[(size_t)y * ow + x] = (v / 255.0f - mean) / std)
}

void eex_spectrum_size(int h, int w, int *sh, int *sw)
{
    const int longer = h > w ? h : w;
    *sh = h, *sw = w;
    if (longer > EEX_SPECTRUM_MAX_SIDE) {
        /* the other side in proportion, rounded, at least 1 */
        *sh = h == longer ? EEX_SPECTRUM_MAX_SIDE : (int)(((long long)h * EEX_SPECTRUM_MAX_SIDE + longer / 2) / longer);
        *sw = w == longer ? EEX_SPECTRUM_MAX_SIDE : (int)(((long long)w * EEX_SPECTRUM_MAX_SIDE + longer / 2) / longer);
        *sh = *sh < 1 ? 1 : *sh;
        *sw = *sw < 1 ? 1 : *sw;
    }
}

eex_status eex_detector_spectrum_u8(const uint8_t *src, int h, int w, int c, uint8_t *out, int *sh, int *sw)
{
    if (!src || !out || !sh || !sw)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_detector_spectrum_u8: NULL argument");
    if (h < 1 || w < 1 || h > 16384 || w > 16384 || (c != 1 && c != 3))
        return eex_fail(EEX_ERR_ARGUMENT, "spectrum: bad image %dx%dx%d", w, h, c);
    eex_spectrum_size(h, w, sh, sw);
    if (*sh == h && *sw == w)
        return eex_spectrum_u8(src, h, w, c, out);
    /* a large image is shrunk first: the DFT costs H*W*(H+W) */
    uint8_t *small = malloc((size_t)*sh * *sw * c);
    if (!small)
        return eex_fail(EEX_ERR_NOMEM, "spectrum: out of memory");
    eex_resize_u8(src, h, w, c, *sh, *sw, small);
    const eex_status st = eex_spectrum_u8(small, *sh, *sw, c, out);
    free(small);
    return st;
}

/* The detector's channel 2 (docs/distortions.md, "Detector input"): the diagonal
 * second difference r = x[i][j] - x[i][j+1] - x[i+1][j] + x[i+1][j+1] of the gray
 * image at the detector's size (resized to uint8 first when the sizes differ), 0 on
 * the last row and column, as 0.5 + r / 64 clipped to [0, 1]. Smooth backgrounds and
 * textures cancel in r far more than pixel noise does, whatever the background. */
static eex_status residual_channel(const uint8_t *gray, int h, int w, int oh, int ow, float *out)
{
    uint8_t *small = NULL;
    if (h != oh || w != ow) {
        if (!(small = malloc((size_t)oh * ow)))
            return eex_fail(EEX_ERR_NOMEM, "image: out of memory");
        eex_resize_u8(gray, h, w, 1, oh, ow, small);
        gray = small;
    }
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            float v = 0.5f;
            if (y + 1 < oh && x + 1 < ow) {
                const uint8_t *p = gray + (size_t)y * ow + x;
                const int r = (int)p[0] - p[1] - p[ow] + p[ow + 1];
                v = 0.5f + (float)r / 64.0f;
                v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            }
            out[(size_t)y * ow + x] = v;
        }
    free(small);
    return EEX_OK;
}

/* 3 -> 1 channels: the same luma weights as the spectrum uses */
static uint8_t *to_gray(const uint8_t *px, size_t n)
{
    uint8_t *g = malloc(n ? n : 1);
    if (g)
        for (size_t i = 0; i < n; i++) {
            const double v = 0.299 * px[3 * i] + 0.587 * px[3 * i + 1] + 0.114 * px[3 * i + 2] + 0.5;
            g[i] = (uint8_t)(v > 255.0 ? 255.0 : v);
        }
    return g;
}

/* One image plane set into a [1,C,H,W] buffer for model input `input`. */
static eex_status fill_input(const eex_model *m, int input, const uint8_t *px, int h, int w, int c,
                             const double *mean, int n_mean, const double *std, int n_std, float *x)
{
    const eex_value *v = &m->values[m->inputs[input]];
    if (v->rank != 4)
        return eex_fail(EEX_ERR_SHAPE, "image: input '%s' is not an image [N,C,H,W]", v->name);
    for (int ch = 0; ch < v->c; ch++) {
        /* a gray image feeds every channel of an RGB model */
        const int src_ch = c == 1 ? 0 : ch;
        const float mu = n_mean == v->c ? (float)mean[ch] : 0.0f, sd = n_std == v->c ? (float)std[ch] : 1.0f;
        eex_resize_channel(px, h, w, c, src_ch, v->h, v->w, mu, sd, x + (size_t)ch * v->h * v->w);
    }
    return EEX_OK;
}

static size_t input_floats(const eex_model *m, int input)
{
    const eex_value *v = &m->values[m->inputs[input]];
    return (size_t)v->c * v->h * v->w;
}

eex_status eex_model_preprocess(const eex_model *m, const uint8_t *px, int h, int w, int c, float *image,
                                float *detector)
{
    if (!m || !px || !image)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_model_preprocess: NULL argument");
    if (h < 1 || w < 1 || h > 16384 || w > 16384 || (c != 1 && c != 3))
        return eex_fail(EEX_ERR_ARGUMENT, "image: %dx%d with %d channels is not supported (1 or 3 channels)", w, h, c);
    const int image_input = m->has_ee ? m->ee.image_input : 0;
    const eex_value *v = &m->values[m->inputs[image_input]];
    if (v->rank != 4 || (v->c != 1 && v->c != 3))
        return eex_fail(EEX_ERR_UNSUPPORTED, "image: model input '%s' is not a 1- or 3-channel image", v->name);
    const int want_det = m->has_ee && m->ee.detector_input >= 0 && detector;
    const eex_value *dv = want_det ? &m->values[m->inputs[m->ee.detector_input]] : NULL;
    /* The gray image, when a 3-channel image must feed a 1-channel model input or a
     * detector's image channel: converted once for both. */
    uint8_t *gray = NULL;
    if (c == 3 && (v->c == 1 || (dv && dv->c >= 2)) && !(gray = to_gray(px, (size_t)h * w)))
        return eex_fail(EEX_ERR_NOMEM, "image: out of memory");
    const uint8_t *gray_px = gray ? gray : px;
    eex_status st = fill_input(m, image_input, v->c == 1 ? gray_px : px, h, w, v->c == 1 ? 1 : c, m->mean, m->n_mean,
                               m->std, m->n_std, image);
    if (st || !dv) {
        free(gray);
        return st;
    }
    int sh, sw;
    eex_spectrum_size(h, w, &sh, &sw);
    uint8_t *spec = malloc((size_t)sh * sw);
    if (!spec)
        st = eex_fail(EEX_ERR_NOMEM, "image: out of memory");
    else if (!(st = eex_detector_spectrum_u8(px, h, w, c, spec, &sh, &sw))) {
        /* channel 0 the spectrum; a second channel, when the detector has one, the
         * grayscale image itself: light noise on a dark background shows in the pixels
         * far more than in the magnitude spectrum (docs/distortions.md) */
        eex_resize_channel(spec, sh, sw, 1, 0, dv->h, dv->w, 0.0f, 1.0f, detector);
        if (dv->c >= 2)
            eex_resize_channel(gray_px, h, w, 1, 0, dv->h, dv->w, 0.0f, 1.0f, detector + (size_t)dv->h * dv->w);
        if (dv->c == 3)
            st = residual_channel(gray_px, h, w, dv->h, dv->w, detector + 2 * (size_t)dv->h * dv->w);
    }
    free(spec);
    free(gray);
    return st;
}

eex_status eex_session_set_image(eex_session *s, const uint8_t *px, int h, int w, int c)
{
    if (!s || !px)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_set_image: NULL argument");
    const eex_model *m = s->m;
    const int image_input = m->has_ee ? m->ee.image_input : 0;
    const int det = m->has_ee ? m->ee.detector_input : -1;
    float *x = malloc(sizeof(float) * input_floats(m, image_input));
    float *d = det >= 0 ? malloc(sizeof(float) * input_floats(m, det)) : NULL;
    eex_status st;
    if (!x || (det >= 0 && !d))
        st = eex_fail(EEX_ERR_NOMEM, "image: out of memory");
    else if (!(st = eex_model_preprocess(m, px, h, w, c, x, d))) {
        int64_t shape[EEX_MAX_RANK];
        eex_model_input_shape(m, image_input, shape);
        st = eex_session_set_input(s, image_input, x, shape, 4);
        if (!st && det >= 0) {
            eex_model_input_shape(m, det, shape);
            st = eex_session_set_input(s, det, d, shape, 4);
        }
    }
    free(x);
    free(d);
    return st;
}
