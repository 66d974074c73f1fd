/* The scalar convolution: the ground truth every fast conv is tested against.
 * Written for clarity, not speed. */
#include "../kernels.h"

void eex_conv_ref(const eex_conv_shape *s, const float *x, const float *w, const float *bias,
                  const eex_act_params *act, float *y)
{
    const int icg = s->ic / s->group, ocg = s->oc / s->group;
    for (int n = 0; n < s->n; n++)
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++)
                for (int oc = 0; oc < s->oc; oc++) {
                    const int g = oc / ocg;
                    double acc = bias ? bias[oc] : 0.0;
                    for (int ky = 0; ky < s->kh; ky++) {
                        const int iy = oy * s->sh - s->pt + ky * s->dh;
                        if (iy < 0 || iy >= s->ih)
                            continue;
                        for (int kx = 0; kx < s->kw; kx++) {
                            const int ix = ox * s->sw - s->pl + kx * s->dw;
                            if (ix < 0 || ix >= s->iw)
                                continue;
                            const float *xp = x + (((int64_t)n * s->ih + iy) * s->iw + ix) * s->ic + g * icg;
                            for (int ci = 0; ci < icg; ci++)
                                acc += (double)xp[ci] *
                                       w[(((int64_t)oc * icg + ci) * s->kh + ky) * s->kw + kx];
                        }
                    }
                    y[(((int64_t)n * s->oh + oy) * s->ow + ox) * s->oc + oc] =
                        eex_act_apply((float)acc, act);
                }
}
