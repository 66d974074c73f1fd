#include "pack.h"

#include "graph.h"
#include "status.h"

static eex_status pack_conv(eex_model *m, eex_node *nd)
{
    const eex_value *x = &m->values[nd->in[0].index];
    const eex_value *y = &m->values[nd->out];
    const float *w = eex_const_data(m, nd->in[1]);
    const int oc = y->c, ic = x->c, g = nd->group, icg = ic / g, ocg = oc / g;
    const int kk = nd->kh * nd->kw;
    float *p = eex_arena_array(&m->arena, (size_t)oc * icg * kk, sizeof(float));
    if (!p)
        return eex_fail(EEX_ERR_NOMEM, "pack: out of memory for conv '%s'", nd->name);
    if (g == ic && g == oc) {
        /* depthwise: [kh*kw][C], so the channel loop is unit-stride */
        nd->algo = EEX_CONV_DEPTHWISE;
        for (int c = 0; c < oc; c++)
            for (int t = 0; t < kk; t++)
                p[(size_t)t * oc + c] = w[(size_t)c * kk + t];
    } else {
        /* per group, a [K = kh*kw*icg][ocg] matrix whose K order matches the
         * NHWC patch order (ky, kx, ci) of im2col */
        const int is_1x1 = g == 1 && kk == 1 && nd->sh == 1 && nd->sw == 1 && nd->pt == 0 && nd->pl == 0 &&
                           nd->pb == 0 && nd->pr == 0;
        nd->algo = is_1x1 ? EEX_CONV_GEMM_1X1 : EEX_CONV_IM2COL;
        const size_t K = (size_t)kk * icg;
        for (int gi = 0; gi < g; gi++)
            for (int o = 0; o < ocg; o++)
                for (int ci = 0; ci < icg; ci++)
                    for (int t = 0; t < kk; t++) {
                        const int co = gi * ocg + o;
                        p[(size_t)gi * K * ocg + ((size_t)t * icg + ci) * ocg + o] =
                            w[((size_t)co * icg + ci) * kk + t];
                    }
        if (!is_1x1)
            nd->scratch_floats = (int64_t)y->h * y->w * (int64_t)K;
    }
    nd->packed = p;
    return EEX_OK;
}

eex_status eex_pack_weights(eex_model *m)
{
    for (int i = 0; i < m->n_nodes; i++) {
        eex_node *nd = &m->nodes[i];
        if (nd->op == EEX_OP_CONV) {
            eex_status st = pack_conv(m, nd);
            if (st)
                return st;
        }
    }
    return EEX_OK;
}
