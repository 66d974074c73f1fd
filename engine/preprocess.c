/* Images to model inputs: the one resize every path uses (the CLI, the
 * detector's spectrum, evaluation), so the same pixels give the same floats. */
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "status.h"

void eex_resize_channel(const uint8_t *src, int h, int w, int c, int ch, int oh, int ow, float mean, float std,
                        float *out)
{
    const float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
    for (int y = 0; y < oh; y++) {
        float fy = ((float)y + 0.5f) * sy - 0.5f;
        if (fy < 0)
            fy = 0;
        int y0 = (int)fy;
        if (y0 > h - 1)
            y0 = h - 1;
        const int y1 = y0 + 1 < h ? y0 + 1 : y0;
        const float wy = fy - (float)y0;
        for (int x = 0; x < ow; x++) {
            float fx = ((float)x + 0.5f) * sx - 0.5f;
            if (fx < 0)
                fx = 0;
            int x0 = (int)fx;
            if (x0 > w - 1)
                x0 = w - 1;
            const int x1 = x0 + 1 < w ? x0 + 1 : x0;
            const float wx = fx - (float)x0;
            const float v = (1 - wy) * ((1 - wx) * src[((size_t)y0 * w + x0) * c + ch] + wx * src[((size_t)y0 * w + x1) * c + ch]) +
                            wy * ((1 - wx) * src[((size_t)y1 * w + x0) * c + ch] + wx * src[((size_t)y1 * w + x1) * c + ch]);
            out[(size_t)y * ow + x] = (v / 255.0f - mean) / std;
        }
    }
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

static eex_status set_plane_input(eex_session *s, int input, const uint8_t *px, int h, int w, int c,
                                  const double *mean, int n_mean, const double *std, int n_std)
{
    const eex_model *m = s->m;
    const eex_value *v = &m->values[m->inputs[input]];
    if (v->rank != 4)
        return eex_fail(EEX_ERR_SHAPE, "image: input '%s' is not an image [N,C,H,W]", v->name);
    float *x = malloc(sizeof(float) * (size_t)v->c * v->h * v->w);
    if (!x)
        return eex_fail(EEX_ERR_NOMEM, "image: out of memory");
    for (int ch = 0; ch < v->c; ch++) {
        /* a gray image feeds every channel of an RGB model */
        const int src_ch = c == 1 ? 0 : ch;
        const float mu = n_mean == v->c ? (float)mean[ch] : 0.0f, sd = n_std == v->c ? (float)std[ch] : 1.0f;
        eex_resize_channel(px, h, w, c, src_ch, v->h, v->w, mu, sd, x + (size_t)ch * v->h * v->w);
    }
    const int64_t shape[4] = {1, v->c, v->h, v->w};
    eex_status st = eex_session_set_input(s, input, x, shape, 4);
    free(x);
    return st;
}

eex_status eex_session_set_image(eex_session *s, const uint8_t *px, int h, int w, int c)
{
    if (!s || !px)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_set_image: NULL argument");
    if (h < 1 || w < 1 || h > 16384 || w > 16384 || (c != 1 && c != 3))
        return eex_fail(EEX_ERR_ARGUMENT, "image: %dx%d with %d channels is not supported (1 or 3 channels)", w, h, c);
    const eex_model *m = s->m;
    const int image_input = m->has_ee ? m->ee.image_input : 0;
    const eex_value *v = &m->values[m->inputs[image_input]];
    uint8_t *gray = NULL;
    const uint8_t *src = px;
    int sc = c;
    if (v->c == 1 && c == 3) {
        if (!(gray = to_gray(px, (size_t)h * w)))
            return eex_fail(EEX_ERR_NOMEM, "image: out of memory");
        src = gray, sc = 1;
    } else if (v->rank == 4 && v->c != 1 && v->c != 3)
        return eex_fail(EEX_ERR_UNSUPPORTED, "image: model input '%s' has %d channels", v->name, v->c);
    eex_status st = set_plane_input(s, image_input, src, h, w, sc, m->mean, m->n_mean, m->std, m->n_std);
    if (!st && m->has_ee && m->ee.detector_input >= 0) {
        uint8_t *spec = malloc((size_t)h * w);
        if (!spec)
            st = eex_fail(EEX_ERR_NOMEM, "image: out of memory");
        else if (!(st = eex_spectrum_u8(px, h, w, c, spec)))
            st = set_plane_input(s, m->ee.detector_input, spec, h, w, 1, NULL, 0, NULL, 0);
        free(spec);
    }
    free(gray);
    return st;
}
