/* Depthwise + pointwise in strips: see dw_pw.h. */
#include "dw_pw.h"

eex_dw_fn eex_dw_pick(const eex_kernel_table *kt, const eex_conv_shape *s)
{
    if (s->dh == 1 && s->dw == 1 && s->sh == s->sw && s->sh <= 2 && s->kh == s->kw) {
        if (s->kh == 3)
            return s->sh == 1 ? kt->dwconv3x3_s1_f32 : kt->dwconv3x3_s2_f32;
        if (s->kh == 5)
            return s->sh == 1 ? kt->dwconv5x5_s1_f32 : kt->dwconv5x5_s2_f32;
    }
    return kt->dwconv_f32;
}

void eex_dw_pw_rows(const eex_kernel_table *kt, const eex_conv_shape *d, const float *x, const float *wd,
                    const float *bd, const eex_act_params *ad, const eex_conv_shape *p, const float *wp,
                    const eex_act_params *ap, const float *zeros, float *strip, int strip_rows, float *y, int64_t r0,
                    int64_t r1)
{
    const eex_dw_fn dw = eex_dw_pick(kt, d);
    const int panels = (p->oc + kt->nr - 1) / kt->nr;
    for (int64_t r = r0; r < r1;) {
        const int img = (int)(r / d->oh), oy = (int)(r % d->oh);
        int rows = strip_rows < 1 ? 1 : strip_rows;
        if (rows > d->oh - oy)
            rows = d->oh - oy;
        if (rows > r1 - r)
            rows = (int)(r1 - r);
        /* the strip as a conv of its own: one image, `rows` output rows,
         * the top padding moved so that its row 0 is row oy of the whole */
        eex_conv_shape sd = *d;
        sd.n = 1, sd.oh = rows, sd.pt = d->pt - oy * d->sh;
        dw(&sd, x + (int64_t)img * d->ih * d->iw * d->ic, wd, bd, ad, strip, 0, rows);
        eex_conv_shape sp = *p;
        sp.n = 1, sp.ih = sp.oh = rows;
        kt->conv_gemm_f32(&sp, strip, wp, ap, y + r * d->ow * (int64_t)p->oc, 0, (int64_t)rows * d->ow, 0, panels,
                          zeros);
        r += rows;
    }
}
