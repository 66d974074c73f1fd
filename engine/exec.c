/* Executing one node: picks the kernel for its op and algorithm (reference
 * or fast) and hands it pointers into the session's arena. */
#include "exec.h"

#include "../kernels/conv_fast.h"
#include "../kernels/gemm.h"
#include "../kernels/kernels.h"

static float *value_ptr(const eex_exec_ctx *s, int v) { return (float *)(s->arena + s->offsets[v]); }

static eex_conv_shape conv_shape(const eex_exec_ctx *s, const eex_node *nd)
{
    const eex_value *x = &s->m->values[nd->in[0].index], *y = &s->m->values[nd->out];
    return (eex_conv_shape){.n = s->batch, .ih = x->h, .iw = x->w, .ic = x->c, .oh = y->h, .ow = y->w,
                            .oc = y->c, .kh = nd->kh, .kw = nd->kw, .sh = nd->sh, .sw = nd->sw,
                            .pt = nd->pt, .pl = nd->pl, .dh = nd->dh, .dw = nd->dw, .group = nd->group};
}

static const float *operand_ptr(const eex_exec_ctx *s, eex_operand o)
{
    if (o.kind == EEX_OPND_VALUE)
        return value_ptr(s, o.index);
    if (o.kind == EEX_OPND_CONST)
        return eex_const_data(s->m, o);
    return NULL;
}

static void exec_conv(const eex_exec_ctx *s, const eex_node *nd, float *y)
{
    const eex_conv_shape cs = conv_shape(s, nd);
    const float *x = operand_ptr(s, nd->in[0]);
    const float *bias = nd->n_in > 2 ? operand_ptr(s, nd->in[2]) : NULL;
    if (s->kernels == EEX_KERNELS_REF) {
        eex_conv_ref(&cs, x, eex_const_data(s->m, nd->in[1]), bias, &nd->act, y);
        return;
    }
    switch (nd->algo) {
    case EEX_CONV_GEMM_1X1: eex_conv1x1_gemm(&cs, x, nd->packed, bias, &nd->act, y); break;
    case EEX_CONV_DEPTHWISE: eex_dwconv(&cs, x, nd->packed, bias, &nd->act, y); break;
    default: eex_conv_im2col(&cs, x, nd->packed, bias, &nd->act, s->scratch, y); break;
    }
}

static void exec_dense(const eex_exec_ctx *s, const eex_node *nd, float *y)
{
    const eex_value *x = &s->m->values[nd->in[0].index], *out = &s->m->values[nd->out];
    const float *w = eex_const_data(s->m, nd->in[1]);
    const float *bias = nd->n_in > 2 ? operand_ptr(s, nd->in[2]) : NULL;
    if (s->kernels == EEX_KERNELS_REF) {
        eex_dense_ref(s->batch, x->c, out->c, value_ptr(s, nd->in[0].index), w, bias, &nd->act, y);
        return;
    }
    eex_gemm(s->batch, out->c, x->c, value_ptr(s, nd->in[0].index), x->c, w, x->c, 1, y, out->c);
    eex_bias_act(s->batch, out->c, out->c, bias, &nd->act, y);
}

static eex_pool_shape pool_shape(const eex_exec_ctx *s, const eex_node *nd)
{
    const eex_value *x = &s->m->values[nd->in[0].index], *y = &s->m->values[nd->out];
    return (eex_pool_shape){.n = s->batch, .ih = x->h, .iw = x->w, .c = x->c, .oh = y->h, .ow = y->w,
                            .kh = nd->kh, .kw = nd->kw, .sh = nd->sh, .sw = nd->sw, .pt = nd->pt,
                            .pl = nd->pl, .pb = nd->pb, .pr = nd->pr,
                            .count_include_pad = nd->count_include_pad};
}

void eex_exec_node(const eex_exec_ctx *s, const eex_node *nd)
{
    const eex_model *m = s->m;
    const eex_value *out = &m->values[nd->out];
    float *y = value_ptr(s, nd->out);
    const eex_value *x = nd->in[0].kind == EEX_OPND_VALUE ? &m->values[nd->in[0].index] : NULL;
    const int64_t count = (int64_t)s->batch * eex_value_elems(out);
    switch (nd->op) {
    case EEX_OP_CONV: exec_conv(s, nd, y); break;
    case EEX_OP_DENSE: exec_dense(s, nd, y); break;
    case EEX_OP_ADD:
    case EEX_OP_MUL:
        eex_binary_ref(nd->op == EEX_OP_MUL, s->batch, out->h * out->w, out->c, operand_ptr(s, nd->in[0]),
                       operand_ptr(s, nd->in[1]), nd->bcast, &nd->act, y);
        break;
    case EEX_OP_RELU: eex_unary_ref(EEX_UNARY_RELU, 0, 0, count, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_CLIP: eex_unary_ref(EEX_UNARY_CLIP, nd->p0, nd->p1, count, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_SIGMOID: eex_unary_ref(EEX_UNARY_SIGMOID, 0, 0, count, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_HARDSIGMOID:
        eex_unary_ref(EEX_UNARY_HARDSIGMOID, nd->p0, nd->p1, count, operand_ptr(s, nd->in[0]), y);
        break;
    case EEX_OP_HARDSWISH: eex_unary_ref(EEX_UNARY_HARDSWISH, 0, 0, count, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_MAXPOOL: {
        const eex_pool_shape ps = pool_shape(s, nd);
        eex_maxpool_ref(&ps, operand_ptr(s, nd->in[0]), y);
        break;
    }
    case EEX_OP_AVGPOOL: {
        const eex_pool_shape ps = pool_shape(s, nd);
        eex_avgpool_ref(&ps, operand_ptr(s, nd->in[0]), y);
        break;
    }
    case EEX_OP_GLOBALAVGPOOL: eex_gap_ref(s->batch, x->h * x->w, x->c, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_FLATTEN: eex_flatten_ref(s->batch, x->h * x->w, x->c, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_SOFTMAX: eex_softmax_ref(s->batch, out->c, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_CONCAT: {
        const float *xs[EEX_NODE_MAX_INPUTS];
        int cs[EEX_NODE_MAX_INPUTS];
        for (int k = 0; k < nd->n_in; k++) {
            xs[k] = operand_ptr(s, nd->in[k]);
            cs[k] = m->values[nd->in[k].index].c;
        }
        eex_concat_ref(s->batch, out->h * out->w, nd->n_in, xs, cs, y);
        break;
    }
    default: break; /* bind rejects every other op */
    }
}

