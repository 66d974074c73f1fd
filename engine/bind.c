/* Binding a parsed file into an executable graph: every check that depends on
 * how ops fit together (arity, operand kinds, shapes, attributes) lives here,
 * so the executor can trust what it runs. */
#include <string.h>

#include "attrs.h"
#include "graph.h"
#include "pack.h"
#include "../base/status.h"
#include "../base/strmap.h"

typedef struct binder {
    eex_model *m;
    eex_strmap values;   /* name -> value index */
    eex_strmap consts;   /* name -> tensor index */
} binder;

static eex_status resolve(binder *b, const eex_fnode *fn, int k, eex_operand *o)
{
    const char *name = fn->in[k];
    if (!name[0]) {
        o->kind = EEX_OPND_NONE;
        return EEX_OK;
    }
    int v = eex_strmap_get(&b->values, name);
    if (v >= 0) {
        o->kind = EEX_OPND_VALUE;
        o->index = v;
        return EEX_OK;
    }
    int t = eex_strmap_get(&b->consts, name);
    if (t >= 0) {
        o->kind = EEX_OPND_CONST;
        o->index = t;
        return EEX_OK;
    }
    return eex_fail(EEX_ERR_GRAPH, "graph: node '%s' input '%s' is undefined", fn->name, name);
}

static const eex_ftensor *const_of(binder *b, eex_operand o) { return &b->m->file.tensors[o.index]; }
static eex_value *value_of(binder *b, eex_operand o) { return &b->m->values[o.index]; }

static eex_status need_value(const eex_fnode *fn, const eex_node *nd, int k)
{
    if (nd->in[k].kind != EEX_OPND_VALUE)
        return eex_fail(EEX_ERR_GRAPH, "graph: node '%s' (%s) input %d must be an activation, not a constant",
                        fn->name, fn->op, k);
    return EEX_OK;
}

static eex_status need_const(const eex_fnode *fn, const eex_node *nd, int k, int optional)
{
    if (nd->in[k].kind == EEX_OPND_CONST || (optional && nd->in[k].kind == EEX_OPND_NONE))
        return EEX_OK;
    return eex_fail(EEX_ERR_GRAPH, "graph: node '%s' (%s) input %d must be a constant tensor",
                    fn->name, fn->op, k);
}

static eex_status parse_act(const eex_fnode *fn, eex_act_params *a)
{
    const char *s;
    eex_status st = eex_attr_str(fn, "act", "none", &s);
    if (st)
        return st;
    a->lo = 0.0f;
    a->hi = 0.0f;
    if (!strcmp(s, "none"))
        a->act = EEX_ACT_NONE;
    else if (!strcmp(s, "relu"))
        a->act = EEX_ACT_RELU;
    else if (!strcmp(s, "hardswish"))
        a->act = EEX_ACT_HARDSWISH;
    else if (!strcmp(s, "silu"))
        a->act = EEX_ACT_SILU;
    else if (!strcmp(s, "clip")) {
        a->act = EEX_ACT_CLIP;
        if ((st = eex_attr_float(fn, "act_min", -3.4e38, &a->lo)) ||
            (st = eex_attr_float(fn, "act_max", 3.4e38, &a->hi)))
            return st;
        if (a->lo > a->hi)
            return eex_fail(EEX_ERR_FORMAT, "graph: node '%s' act_min > act_max", fn->name);
    } else
        return eex_fail(EEX_ERR_FORMAT, "graph: node '%s' has unknown act '%s'", fn->name, s);
    return EEX_OK;
}

static eex_status set_out(binder *b, const eex_fnode *fn, eex_node *nd, int rank, int64_t c, int64_t h,
                          int64_t w)
{
    if (c < 1 || h < 1 || w < 1 || c > (1 << 24) || h > (1 << 16) || w > (1 << 16) ||
        c * h * w > ((int64_t)1 << 30))
        return eex_fail(EEX_ERR_SHAPE, "graph: node '%s' (%s) gives output shape [%lld,%lld,%lld], which is empty or too large",
                        fn->name, fn->op, (long long)c, (long long)h, (long long)w);
    eex_value *v = &b->m->values[nd->out];
    v->rank = rank;
    v->c = (int)c;
    v->h = (int)h;
    v->w = (int)w;
    return EEX_OK;
}

static eex_status bind_conv(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed[] = {"strides", "pads", "dilations", "group", "act", "act_min", "act_max", NULL};
    static const int one2[2] = {1, 1}, zero4[4] = {0, 0, 0, 0};
    eex_status st;
    int s[2], p[4], d[2];
    if (nd->n_in < 2 || nd->n_in > 3)
        return eex_fail(EEX_ERR_GRAPH, "graph: conv '%s' needs 2 or 3 inputs, has %d", fn->name, nd->n_in);
    if ((st = eex_attrs_only(fn, allowed)) || (st = need_value(fn, nd, 0)) || (st = need_const(fn, nd, 1, 0)) ||
        (nd->n_in == 3 && (st = need_const(fn, nd, 2, 1))) || (st = eex_attr_ints(fn, "strides", 2, one2, s)) ||
        (st = eex_attr_ints(fn, "pads", 4, zero4, p)) || (st = eex_attr_ints(fn, "dilations", 2, one2, d)) ||
        (st = eex_attr_int(fn, "group", 1, &nd->group)) || (st = parse_act(fn, &nd->act)))
        return st;
    const eex_value *x = value_of(b, nd->in[0]);
    const eex_ftensor *w = const_of(b, nd->in[1]);
    if (x->rank != 4 || w->ndim != 4)
        return eex_fail(EEX_ERR_SHAPE, "graph: conv '%s' needs a 4-D input and 4-D weight", fn->name);
    if (s[0] < 1 || s[1] < 1 || d[0] < 1 || d[1] < 1 || nd->group < 1)
        return eex_fail(EEX_ERR_FORMAT, "graph: conv '%s' has a zero stride, dilation or group", fn->name);
    const int64_t oc = (int64_t)w->dims[0], icg = (int64_t)w->dims[1];
    if (x->c % nd->group || oc % nd->group || icg * nd->group != x->c)
        return eex_fail(EEX_ERR_SHAPE, "graph: conv '%s' weight [%lld,%lld,..] does not fit %d input channels in %d groups",
                        fn->name, (long long)oc, (long long)icg, x->c, nd->group);
    if (w->dims[2] > 64 || w->dims[3] > 64)
        return eex_fail(EEX_ERR_UNSUPPORTED, "graph: conv '%s' kernel larger than 64", fn->name);
    if (nd->n_in == 3 && nd->in[2].kind == EEX_OPND_CONST && const_of(b, nd->in[2])->elems != (uint64_t)oc)
        return eex_fail(EEX_ERR_SHAPE, "graph: conv '%s' bias has %llu values for %lld channels", fn->name,
                        (unsigned long long)const_of(b, nd->in[2])->elems, (long long)oc);
    nd->kh = (int)w->dims[2];
    nd->kw = (int)w->dims[3];
    nd->sh = s[0], nd->sw = s[1], nd->dh = d[0], nd->dw = d[1];
    nd->pt = p[0], nd->pl = p[1], nd->pb = p[2], nd->pr = p[3];
    const int64_t ekh = (int64_t)(nd->kh - 1) * nd->dh + 1, ekw = (int64_t)(nd->kw - 1) * nd->dw + 1;
    const int64_t hh = x->h + nd->pt + nd->pb - ekh, ww = x->w + nd->pl + nd->pr - ekw;
    if (hh < 0 || ww < 0)
        return eex_fail(EEX_ERR_SHAPE, "graph: conv '%s' kernel is larger than its padded input", fn->name);
    st = set_out(b, fn, nd, 4, oc, hh / nd->sh + 1, ww / nd->sw + 1);
    if (st)
        return st;
    const eex_value *y = &b->m->values[nd->out];
    nd->macs = (int64_t)y->h * y->w * oc * icg * nd->kh * nd->kw;
    return EEX_OK;
}

static eex_status bind_dense(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed[] = {"act", "act_min", "act_max", NULL};
    eex_status st;
    if (nd->n_in < 2 || nd->n_in > 3)
        return eex_fail(EEX_ERR_GRAPH, "graph: dense '%s' needs 2 or 3 inputs, has %d", fn->name, nd->n_in);
    if ((st = eex_attrs_only(fn, allowed)) || (st = need_value(fn, nd, 0)) || (st = need_const(fn, nd, 1, 0)) ||
        (nd->n_in == 3 && (st = need_const(fn, nd, 2, 1))) || (st = parse_act(fn, &nd->act)))
        return st;
    const eex_value *x = value_of(b, nd->in[0]);
    const eex_ftensor *w = const_of(b, nd->in[1]);
    if (x->rank != 2 || w->ndim != 2 || w->dims[1] != (uint64_t)x->c)
        return eex_fail(EEX_ERR_SHAPE, "graph: dense '%s' needs a [N,K] input and [M,K] weight (K = %d)",
                        fn->name, x->c);
    if (nd->n_in == 3 && nd->in[2].kind == EEX_OPND_CONST && const_of(b, nd->in[2])->elems != w->dims[0])
        return eex_fail(EEX_ERR_SHAPE, "graph: dense '%s' bias size does not match its %llu outputs", fn->name,
                        (unsigned long long)w->dims[0]);
    nd->macs = (int64_t)w->dims[0] * x->c;
    return set_out(b, fn, nd, 2, (int64_t)w->dims[0], 1, 1);
}

/* add/mul: the first operand gives the shape; the other may broadcast. */
static eex_status bind_binary(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed_add[] = {"act", "act_min", "act_max", NULL};
    static const char *const allowed_mul[] = {NULL};
    eex_status st;
    if (nd->n_in != 2)
        return eex_fail(EEX_ERR_GRAPH, "graph: %s '%s' needs 2 inputs, has %d", fn->op, fn->name, nd->n_in);
    if ((st = eex_attrs_only(fn, nd->op == EEX_OP_ADD ? allowed_add : allowed_mul)) ||
        (nd->op == EEX_OP_ADD && (st = parse_act(fn, &nd->act))))
        return st;
    if (nd->op == EEX_OP_PRELU && (nd->in[0].kind != EEX_OPND_VALUE || nd->in[1].kind != EEX_OPND_CONST))
        return eex_fail(EEX_ERR_GRAPH, "graph: prelu '%s' needs an activation and a constant slope", fn->name);
    if (nd->in[0].kind != EEX_OPND_VALUE ||
        (nd->in[1].kind == EEX_OPND_VALUE && eex_value_elems(value_of(b, nd->in[1])) >
                                                   eex_value_elems(value_of(b, nd->in[0])))) {
        eex_operand t = nd->in[0];
        nd->in[0] = nd->in[1];
        nd->in[1] = t;
        nd->swap = 1;
    }
    switch (nd->op) {
    case EEX_OP_MUL: nd->binop = EEX_BIN_MUL; break;
    case EEX_OP_SUB: nd->binop = nd->swap ? EEX_BIN_RSUB : EEX_BIN_SUB; break;
    case EEX_OP_DIV: nd->binop = nd->swap ? EEX_BIN_RDIV : EEX_BIN_DIV; break;
    case EEX_OP_MAX: nd->binop = EEX_BIN_MAX; break;
    case EEX_OP_MIN: nd->binop = EEX_BIN_MIN; break;
    case EEX_OP_PRELU: nd->binop = EEX_BIN_PRELU; break;
    default: nd->binop = EEX_BIN_ADD; break;
    }
    if ((st = need_value(fn, nd, 0)))
        return st;
    const eex_value *a = value_of(b, nd->in[0]);
    if (nd->in[1].kind == EEX_OPND_CONST) {
        const uint64_t e = const_of(b, nd->in[1])->elems;
        if (e == 1)
            nd->bcast = EEX_BCAST_SCALAR;
        else if (e == (uint64_t)a->c)
            nd->bcast = EEX_BCAST_CHANNEL;
        else
            return eex_fail(EEX_ERR_SHAPE, "graph: %s '%s' constant has %llu values; expected 1 or %d",
                            fn->op, fn->name, (unsigned long long)e, a->c);
    } else if (nd->in[1].kind == EEX_OPND_VALUE) {
        const eex_value *v = value_of(b, nd->in[1]);
        if (v->c == a->c && v->h == a->h && v->w == a->w && v->rank == a->rank)
            nd->bcast = EEX_BCAST_SAME;
        else if (v->c == a->c && v->h == 1 && v->w == 1)
            nd->bcast = EEX_BCAST_IMAGE_CHANNEL;
        else
            return eex_fail(EEX_ERR_SHAPE, "graph: %s '%s' operands [%d,%d,%d] and [%d,%d,%d] do not broadcast",
                            fn->op, fn->name, a->c, a->h, a->w, v->c, v->h, v->w);
    } else
        return eex_fail(EEX_ERR_GRAPH, "graph: %s '%s' has an absent operand", fn->op, fn->name);
    return set_out(b, fn, nd, a->rank, a->c, a->h, a->w);
}

static eex_status bind_unary(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const none[] = {NULL};
    static const char *const clip[] = {"min", "max", NULL};
    static const char *const hsig[] = {"alpha", "beta", NULL};
    static const char *const alpha[] = {"alpha", NULL};
    eex_status st;
    if (nd->n_in != 1)
        return eex_fail(EEX_ERR_GRAPH, "graph: %s '%s' needs 1 input, has %d", fn->op, fn->name, nd->n_in);
    if (nd->op == EEX_OP_CLIP) {
        if ((st = eex_attrs_only(fn, clip)) || (st = eex_attr_float(fn, "min", -3.4e38, &nd->p0)) ||
            (st = eex_attr_float(fn, "max", 3.4e38, &nd->p1)))
            return st;
    } else if (nd->op == EEX_OP_HARDSIGMOID) {
        if ((st = eex_attrs_only(fn, hsig)) || (st = eex_attr_float(fn, "alpha", 0.2, &nd->p0)) ||
            (st = eex_attr_float(fn, "beta", 0.5, &nd->p1)))
            return st;
    } else if (nd->op == EEX_OP_LEAKYRELU || nd->op == EEX_OP_ELU) {
        if ((st = eex_attrs_only(fn, alpha)) ||
            (st = eex_attr_float(fn, "alpha", nd->op == EEX_OP_ELU ? 1.0 : 0.01, &nd->p0)))
            return st;
    } else if ((st = eex_attrs_only(fn, none)))
        return st;
    if ((st = need_value(fn, nd, 0)))
        return st;
    const eex_value *x = value_of(b, nd->in[0]);
    return set_out(b, fn, nd, x->rank, x->c, x->h, x->w);
}

static int64_t pool_out(int in, int k, int s, int p0, int p1, int ceil_mode)
{
    const int64_t span = (int64_t)in + p0 + p1 - k;
    if (span < 0)
        return 0;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* the last window must start inside the input or its leading padding */
    if (ceil_mode && (out - 1) * s >= (int64_t)in + p0)
        out--;
    return out;
}

static eex_status bind_pool(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed_max[] = {"kernel", "strides", "pads", "ceil_mode", NULL};
    static const char *const allowed_avg[] = {"kernel", "strides", "pads", "ceil_mode", "count_include_pad", NULL};
    static const int one2[2] = {1, 1}, zero4[4] = {0, 0, 0, 0};
    int k[2], s[2], p[4];
    eex_status st;
    if (nd->n_in != 1)
        return eex_fail(EEX_ERR_GRAPH, "graph: %s '%s' needs 1 input", fn->op, fn->name);
    if ((st = eex_attrs_only(fn, nd->op == EEX_OP_MAXPOOL ? allowed_max : allowed_avg)) ||
        (st = need_value(fn, nd, 0)) || (st = eex_attr_ints(fn, "kernel", 2, NULL, k)) ||
        (st = eex_attr_ints(fn, "strides", 2, one2, s)) || (st = eex_attr_ints(fn, "pads", 4, zero4, p)) ||
        (st = eex_attr_int(fn, "ceil_mode", 0, &nd->ceil_mode)) ||
        (st = eex_attr_int(fn, "count_include_pad", 0, &nd->count_include_pad)))
        return st;
    const eex_value *x = value_of(b, nd->in[0]);
    if (x->rank != 4)
        return eex_fail(EEX_ERR_SHAPE, "graph: %s '%s' needs a 4-D input", fn->op, fn->name);
    if (k[0] < 1 || k[1] < 1 || s[0] < 1 || s[1] < 1)
        return eex_fail(EEX_ERR_FORMAT, "graph: %s '%s' has a zero kernel or stride", fn->op, fn->name);
    if (p[0] >= k[0] || p[2] >= k[0] || p[1] >= k[1] || p[3] >= k[1])
        return eex_fail(EEX_ERR_FORMAT, "graph: %s '%s' pads must be smaller than the kernel", fn->op, fn->name);
    nd->kh = k[0], nd->kw = k[1], nd->sh = s[0], nd->sw = s[1];
    nd->pt = p[0], nd->pl = p[1], nd->pb = p[2], nd->pr = p[3];
    return set_out(b, fn, nd, 4, x->c, pool_out(x->h, k[0], s[0], p[0], p[2], nd->ceil_mode),
                   pool_out(x->w, k[1], s[1], p[1], p[3], nd->ceil_mode));
}

static eex_status bind_reduce(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const none[] = {NULL};
    eex_status st;
    if (nd->n_in != 1)
        return eex_fail(EEX_ERR_GRAPH, "graph: %s '%s' needs 1 input", fn->op, fn->name);
    if ((st = eex_attrs_only(fn, none)) || (st = need_value(fn, nd, 0)))
        return st;
    const eex_value *x = value_of(b, nd->in[0]);
    switch (nd->op) {
    case EEX_OP_GLOBALAVGPOOL:
    case EEX_OP_GLOBALMAXPOOL:
        if (x->rank != 4)
            return eex_fail(EEX_ERR_SHAPE, "graph: %s '%s' needs a 4-D input", fn->op, fn->name);
        return set_out(b, fn, nd, 4, x->c, 1, 1);
    case EEX_OP_FLATTEN:
        return set_out(b, fn, nd, 2, (int64_t)x->c * x->h * x->w, 1, 1);
    default: /* softmax */
        if (x->rank != 2)
            return eex_fail(EEX_ERR_UNSUPPORTED, "graph: softmax '%s' supports only [N,K] inputs", fn->name);
        return set_out(b, fn, nd, 2, x->c, 1, 1);
    }
}

static eex_status bind_concat(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed[] = {"axis", NULL};
    eex_status st;
    int axis;
    if ((st = eex_attrs_only(fn, allowed)) || (st = eex_attr_int(fn, "axis", 1, &axis)))
        return st;
    if (axis != 1)
        return eex_fail(EEX_ERR_UNSUPPORTED, "graph: concat '%s' on axis %d (only the channel axis 1)", fn->name, axis);
    if (nd->n_in < 1)
        return eex_fail(EEX_ERR_GRAPH, "graph: concat '%s' has no inputs", fn->name);
    int64_t c = 0;
    const eex_value *x0 = NULL;
    for (int k = 0; k < nd->n_in; k++) {
        if ((st = need_value(fn, nd, k)))
            return st;
        const eex_value *x = value_of(b, nd->in[k]);
        if (x0 && (x->h != x0->h || x->w != x0->w || x->rank != x0->rank))
            return eex_fail(EEX_ERR_SHAPE, "graph: concat '%s' input %d is %dx%d, input 0 is %dx%d", fn->name,
                            k, x->h, x->w, x0->h, x0->w);
        x0 = x0 ? x0 : x;
        c += x->c;
    }
    return set_out(b, fn, nd, x0->rank, c, x0->h, x0->w);
}

/* ---- ops added for the torchvision zoo (docs/format.md) ---- */

static eex_status one_value_input(const eex_fnode *fn, const eex_node *nd)
{
    if (nd->n_in != 1)
        return eex_fail(EEX_ERR_GRAPH, "graph: %s '%s' needs 1 input, has %d", fn->op, fn->name, nd->n_in);
    return need_value(fn, nd, 0);
}

static eex_status bind_pad(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed[] = {"pads", "value", NULL};
    int p[4];
    eex_status st;
    if ((st = eex_attrs_only(fn, allowed)) || (st = one_value_input(fn, nd)) ||
        (st = eex_attr_ints(fn, "pads", 4, NULL, p)) || (st = eex_attr_float(fn, "value", 0.0, &nd->p0)))
        return st;
    const eex_value *x = value_of(b, nd->in[0]);
    if (x->rank != 4)
        return eex_fail(EEX_ERR_SHAPE, "graph: pad '%s' needs a 4-D input", fn->name);
    nd->pt = p[0], nd->pl = p[1], nd->pb = p[2], nd->pr = p[3];
    return set_out(b, fn, nd, 4, x->c, (int64_t)x->h + p[0] + p[2], (int64_t)x->w + p[1] + p[3]);
}

static eex_status bind_slice(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed[] = {"axis", "start", "end", "step", NULL};
    int end;
    eex_status st;
    if ((st = eex_attrs_only(fn, allowed)) || (st = one_value_input(fn, nd)) ||
        (st = eex_attr_int(fn, "axis", 1, &nd->axis)) || (st = eex_attr_int(fn, "start", 0, &nd->start)) ||
        (st = eex_attr_int(fn, "end", -1, &end)) || (st = eex_attr_int(fn, "step", 1, &nd->step)))
        return st;
    const eex_value *x = value_of(b, nd->in[0]);
    if (nd->axis < 1 || nd->axis > 3 || (x->rank < 4 && nd->axis == 2) || (x->rank < 3 && nd->axis == 3))
        return eex_fail(EEX_ERR_UNSUPPORTED, "graph: slice '%s' on axis %d of a rank-%d value", fn->name, nd->axis,
                        x->rank);
    const int dim = nd->axis == 1 ? x->c : nd->axis == 2 ? x->h : x->w;
    if (nd->step < 1 || nd->start < 0 || end > dim || nd->start >= end)
        return eex_fail(EEX_ERR_SHAPE, "graph: slice '%s' [%d:%d:%d] does not fit axis %d of size %d", fn->name,
                        nd->start, end, nd->step, nd->axis, dim);
    const int count = (end - nd->start + nd->step - 1) / nd->step;
    return set_out(b, fn, nd, x->rank, nd->axis == 1 ? count : x->c, nd->axis == 2 ? count : x->h,
                   nd->axis == 3 ? count : x->w);
}

static eex_status bind_shuffle(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed[] = {"groups", NULL};
    eex_status st;
    if ((st = eex_attrs_only(fn, allowed)) || (st = one_value_input(fn, nd)) ||
        (st = eex_attr_int(fn, "groups", 1, &nd->group)))
        return st;
    const eex_value *x = value_of(b, nd->in[0]);
    if (nd->group < 1 || x->c % nd->group)
        return eex_fail(EEX_ERR_SHAPE, "graph: shuffle '%s' groups %d do not divide %d channels", fn->name,
                        nd->group, x->c);
    return set_out(b, fn, nd, x->rank, x->c, x->h, x->w);
}

static eex_status bind_reshape(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed[] = {"shape", NULL};
    eex_status st;
    if ((st = eex_attrs_only(fn, allowed)) || (st = one_value_input(fn, nd)))
        return st;
    const eex_kv *kv = eex_kv_get(&fn->attrs, "shape");
    if (!kv || kv->type != EEX_V_I64S || kv->count > 3)
        return eex_fail(EEX_ERR_FORMAT, "graph: reshape '%s' needs 'shape', 0 to 3 integers (per image)", fn->name);
    int64_t d[3] = {1, 1, 1}; /* c, h, w; rank 3 is [c, w] */
    for (uint32_t i = 0; i < kv->count; i++) {
        if (kv->is[i] < 1 || kv->is[i] > ((int64_t)1 << 30))
            return eex_fail(EEX_ERR_FORMAT, "graph: reshape '%s' shape[%u] = %lld is out of range", fn->name, i,
                            (long long)kv->is[i]);
        d[kv->count == 2 && i == 1 ? 2 : i] = kv->is[i];
    }
    const eex_value *x = value_of(b, nd->in[0]);
    if (d[0] * d[1] * d[2] != eex_value_elems(x))
        return eex_fail(EEX_ERR_SHAPE, "graph: reshape '%s' to %lld values from %lld", fn->name,
                        (long long)(d[0] * d[1] * d[2]), (long long)eex_value_elems(x));
    return set_out(b, fn, nd, (int)kv->count + 1, d[0], d[1], d[2]);
}

static eex_status bind_layernorm(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed[] = {"epsilon", NULL};
    eex_status st;
    if (nd->n_in < 2 || nd->n_in > 3)
        return eex_fail(EEX_ERR_GRAPH, "graph: layernorm '%s' needs 2 or 3 inputs, has %d", fn->name, nd->n_in);
    if ((st = eex_attrs_only(fn, allowed)) || (st = need_value(fn, nd, 0)) || (st = need_const(fn, nd, 1, 0)) ||
        (nd->n_in == 3 && (st = need_const(fn, nd, 2, 1))) || (st = eex_attr_float(fn, "epsilon", 1e-5, &nd->p0)))
        return st;
    const eex_value *x = value_of(b, nd->in[0]);
    for (int k = 1; k < nd->n_in; k++)
        if (nd->in[k].kind == EEX_OPND_CONST && const_of(b, nd->in[k])->elems != (uint64_t)x->c)
            return eex_fail(EEX_ERR_SHAPE, "graph: layernorm '%s' input %d has %llu values for %d channels",
                            fn->name, k, (unsigned long long)const_of(b, nd->in[k])->elems, x->c);
    if (!(nd->p0 > 0.0f))
        return eex_fail(EEX_ERR_FORMAT, "graph: layernorm '%s' epsilon must be > 0", fn->name);
    return set_out(b, fn, nd, x->rank, x->c, x->h, x->w);
}

static eex_status bind_lrn(binder *b, const eex_fnode *fn, eex_node *nd)
{
    static const char *const allowed[] = {"size", "alpha", "beta", "bias", NULL};
    eex_status st;
    if ((st = eex_attrs_only(fn, allowed)) || (st = one_value_input(fn, nd)) ||
        (st = eex_attr_int(fn, "size", 0, &nd->kh)) || (st = eex_attr_float(fn, "alpha", 1e-4, &nd->p0)) ||
        (st = eex_attr_float(fn, "beta", 0.75, &nd->p1)) || (st = eex_attr_float(fn, "bias", 1.0, &nd->p2)))
        return st;
    if (nd->kh < 1)
        return eex_fail(EEX_ERR_FORMAT, "graph: lrn '%s' needs a size >= 1", fn->name);
    const eex_value *x = value_of(b, nd->in[0]);
    return set_out(b, fn, nd, x->rank, x->c, x->h, x->w);
}

static eex_status bind_node(binder *b, const eex_fnode *fn, eex_node *nd)
{
    switch (nd->op) {
    case EEX_OP_CONV: return bind_conv(b, fn, nd);
    case EEX_OP_DENSE: return bind_dense(b, fn, nd);
    case EEX_OP_ADD:
    case EEX_OP_MUL:
    case EEX_OP_SUB:
    case EEX_OP_DIV:
    case EEX_OP_MAX:
    case EEX_OP_MIN:
    case EEX_OP_PRELU: return bind_binary(b, fn, nd);
    case EEX_OP_TANH:
    case EEX_OP_LEAKYRELU:
    case EEX_OP_ELU:
    case EEX_OP_ERF:
    case EEX_OP_GELU:
    case EEX_OP_ABS:
    case EEX_OP_NEG:
    case EEX_OP_EXP:
    case EEX_OP_SQRT:
    case EEX_OP_RELU:
    case EEX_OP_CLIP:
    case EEX_OP_SIGMOID:
    case EEX_OP_HARDSIGMOID:
    case EEX_OP_HARDSWISH:
    case EEX_OP_SILU: return bind_unary(b, fn, nd);
    case EEX_OP_MAXPOOL:
    case EEX_OP_AVGPOOL: return bind_pool(b, fn, nd);
    case EEX_OP_GLOBALAVGPOOL:
    case EEX_OP_GLOBALMAXPOOL:
    case EEX_OP_FLATTEN:
    case EEX_OP_SOFTMAX: return bind_reduce(b, fn, nd);
    case EEX_OP_CONCAT: return bind_concat(b, fn, nd);
    case EEX_OP_PAD: return bind_pad(b, fn, nd);
    case EEX_OP_SLICE: return bind_slice(b, fn, nd);
    case EEX_OP_SHUFFLE: return bind_shuffle(b, fn, nd);
    case EEX_OP_RESHAPE: return bind_reshape(b, fn, nd);
    case EEX_OP_LAYERNORM: return bind_layernorm(b, fn, nd);
    case EEX_OP_LRN: return bind_lrn(b, fn, nd);
    default: return eex_fail(EEX_ERR_UNKNOWN_OP, "graph: node '%s' has unknown op '%s'", fn->name, fn->op);
    }
}

static eex_status bind_inputs(binder *b)
{
    eex_model *m = b->m;
    for (uint32_t i = 0; i < m->file.n_inputs; i++) {
        const eex_finput *in = &m->file.inputs[i];
        eex_value *v = &m->values[i];
        v->name = in->name;
        v->producer = -1;
        if (in->ndim == 4) {
            v->rank = 4, v->c = (int)in->dims[1], v->h = (int)in->dims[2], v->w = (int)in->dims[3];
        } else if (in->ndim == 3) {
            v->rank = 3, v->c = (int)in->dims[1], v->h = 1, v->w = (int)in->dims[2];
        } else if (in->ndim == 2) {
            v->rank = 2, v->c = (int)in->dims[1], v->h = v->w = 1;
        } else if (in->ndim == 1) {
            v->rank = 1, v->c = v->h = v->w = 1;
        } else
            return eex_fail(EEX_ERR_UNSUPPORTED, "graph: input '%s' has rank %d (1 to 4 supported)", in->name,
                            in->ndim);
        if ((int64_t)v->c * v->h * v->w > ((int64_t)1 << 30))
            return eex_fail(EEX_ERR_SHAPE, "graph: input '%s' is too large", in->name);
        m->inputs[i] = (int)i;
        eex_strmap_put(&b->values, v->name, (int)i);
    }
    return EEX_OK;
}

eex_status eex_graph_bind(eex_model *m)
{
    const eex_file *f = &m->file;
    eex_status st;
    binder b = {.m = m};
    m->n_inputs = (int)f->n_inputs;
    m->n_outputs = (int)f->n_outputs;
    m->n_nodes = (int)f->n_nodes;
    m->n_values = (int)f->n_inputs;
    for (uint32_t i = 0; i < f->n_nodes; i++) {
        if (f->nodes[i].n_out != 1)
            return eex_fail(EEX_ERR_GRAPH, "graph: node '%s' has %d outputs (v1 ops have one)", f->nodes[i].name,
                            f->nodes[i].n_out);
        if (f->nodes[i].n_in > EEX_NODE_MAX_INPUTS)
            return eex_fail(EEX_ERR_GRAPH, "graph: node '%s' has %d inputs (max %d)", f->nodes[i].name,
                            f->nodes[i].n_in, EEX_NODE_MAX_INPUTS);
        m->n_values++;
    }
    m->values = eex_arena_array(&m->arena, (size_t)m->n_values, sizeof *m->values);
    m->nodes = eex_arena_array(&m->arena, (size_t)m->n_nodes + 1, sizeof *m->nodes);
    m->inputs = eex_arena_array(&m->arena, (size_t)m->n_inputs, sizeof(int));
    m->outputs = eex_arena_array(&m->arena, (size_t)m->n_outputs, sizeof(int));
    if (!m->values || !m->nodes || !m->inputs || !m->outputs || !eex_strmap_init(&b.values, &m->arena, (size_t)m->n_values) ||
        !eex_strmap_init(&b.consts, &m->arena, f->n_tensors))
        return eex_fail(EEX_ERR_NOMEM, "graph: out of memory binding %d nodes", m->n_nodes);
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        eex_strmap_put(&b.consts, f->tensors[i].name, (int)i);
        m->params += (int64_t)f->tensors[i].elems;
    }
    if ((st = bind_inputs(&b)))
        return st;
    for (int i = 0; i < m->n_nodes; i++) {
        const eex_fnode *fn = &f->nodes[i];
        eex_node *nd = &m->nodes[i];
        nd->op = eex_op_from_name(fn->op);
        nd->name = fn->name;
        nd->n_in = fn->n_in;
        for (int k = 0; k < fn->n_in; k++)
            if ((st = resolve(&b, fn, k, &nd->in[k])))
                return st;
        nd->out = m->n_inputs + i;
        eex_value *out = &m->values[nd->out];
        out->name = fn->out[0];
        out->producer = i;
        if ((st = bind_node(&b, fn, nd)))
            return st;
        eex_strmap_put(&b.values, out->name, nd->out);
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k].kind == EEX_OPND_VALUE)
                m->values[nd->in[k].index].last_use = i;
        m->macs += nd->macs;
    }
    /* inputs stay readable for the whole run, so a session can run the same
     * input again (full run, then a policy run, then a cut) without setting it */
    for (int i = 0; i < m->n_inputs; i++)
        m->values[m->inputs[i]].last_use = m->n_nodes;
    for (int i = 0; i < m->n_outputs; i++) {
        int v = eex_strmap_get(&b.values, f->outputs[i]);
        if (v < 0)
            return eex_fail(EEX_ERR_GRAPH, "graph: output '%s' is a constant, not a computed value", f->outputs[i]);
        m->outputs[i] = v;
        m->values[v].last_use = m->n_nodes;
    }
    return eex_pack_weights(m);
}
