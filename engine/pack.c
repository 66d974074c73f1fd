/* Load-time weight packing for the fast kernels (kernels/dispatch.h):
 * depthwise convs get [kh*kw][C] so the channel loop is unit-stride; every
 * other conv and every dense layer gets the GEMM panels of the CPU's kernel
 * table, bias included. Afterwards the file's copies of those weights are no
 * longer read on the fast path, so their pages are released from memory. */
#include "pack.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../kernels/dispatch.h"
#include "../kernels/winograd.h"
#include "graph.h"
#include "../base/status.h"

/* Winograd F(4x4, 3x3) for a 3x3 stride-1 conv (kernels/winograd.h): 4x
 * fewer multiply-adds, plus transforms costing about 2 * (ic + oc) * 36 adds
 * per tile against 36 * ic * oc MACs, so worth it once both channel counts
 * are past a few vectors; and its transformed weights are 4x the size of
 * the conv's, read once per image, so on maps smaller than 14x14 (ResNet's
 * 7x7 stage: 4 tiles, 12 MB of weights per conv) the direct GEMM, which
 * reads a quarter of the bytes, stays. */
static int use_winograd(const eex_value *x, const eex_value *y, const eex_node *nd)
{
    const eex_conv_shape s = {.n = 1, .ih = x->h, .iw = x->w, .ic = x->c, .oh = y->h, .ow = y->w, .oc = y->c,
                              .kh = nd->kh, .kw = nd->kw, .sh = nd->sh, .sw = nd->sw, .dh = nd->dh, .dw = nd->dw,
                              .group = nd->group};
    /* Off unless asked: EEX_WINOGRAD=1 where it pays (the rule below), =all wherever it
     * applies (for measurements). Its rounding error, compounded over deep networks,
     * took ResNet-50 (1.05e-4) and Inception-v3 (2.1e-4 of max |out|) past the 1e-4
     * parity of `make test-zoo` (docs/performance.md, "Winograd"). */
    const char *e = getenv("EEX_WINOGRAD");
    if (!e || !strcmp(e, "0") || !*e)
        return 0;
    if (e && !strcmp(e, "all"))
        return eex_wino_applies(&s);
    return eex_wino_applies(&s) && x->c >= 16 && y->c >= 16 && y->h >= 12 && y->w >= 12;
}

static eex_status pack_conv(eex_model *m, eex_node *nd, int nr)
{
    const eex_value *x = &m->values[nd->in[0].index];
    const eex_value *y = &m->values[nd->out];
    const float *w = eex_const_data(m, nd->in[1]);
    const float *bias = nd->n_in > 2 && nd->in[2].kind == EEX_OPND_CONST ? eex_const_data(m, nd->in[2]) : NULL;
    const int oc = y->c, ic = x->c, g = nd->group, icg = ic / g;
    const int kk = nd->kh * nd->kw;
    if (g == ic && g == oc) {
        nd->algo = EEX_CONV_DEPTHWISE;
        float *p = eex_arena_array(&m->arena, (size_t)oc * kk, sizeof(float));
        if (!p)
            return eex_fail(EEX_ERR_NOMEM, "pack: out of memory for conv '%s'", nd->name);
        for (int c = 0; c < oc; c++)
            for (int t = 0; t < kk; t++)
                p[(size_t)t * oc + c] = w[(size_t)c * kk + t];
        nd->packed = p;
        return EEX_OK;
    }
    const int is_1x1 = g == 1 && kk == 1 && nd->sh == 1 && nd->sw == 1 && nd->pt == 0 && nd->pl == 0 &&
                       nd->pb == 0 && nd->pr == 0;
    nd->algo = is_1x1 ? EEX_CONV_GEMM_1X1 : EEX_CONV_IM2COL;
    if (use_winograd(x, y, nd)) {
        nd->algo = EEX_CONV_WINOGRAD;
        float *u = eex_arena_array(&m->arena, (size_t)eex_wino_pack_floats(oc, ic, nr), sizeof(float));
        if (!u)
            return eex_fail(EEX_ERR_NOMEM, "pack: out of memory for conv '%s'", nd->name);
        eex_wino_pack_weights(w, oc, ic, nr, u);
        nd->packed = u;
        return EEX_OK;
    }
    const int64_t floats = eex_pack_gemm_floats(oc, icg, nd->kh, nd->kw, g, nr);
    float *p = eex_arena_array(&m->arena, (size_t)floats, sizeof(float));
    if (!p)
        return eex_fail(EEX_ERR_NOMEM, "pack: out of memory for conv '%s'", nd->name);
    eex_pack_gemm_weights(w, bias, oc, icg, nd->kh, nd->kw, g, nr, p);
    nd->packed = p;
    return EEX_OK;
}

/* A dense layer whose weights the file stores as float16 keeps them so:
 * the kernel widens them as it goes, reading half the bytes (its weights
 * come from memory once per image; docs/performance.md). */
static eex_status pack_dense_half(eex_model *m, eex_node *nd, int nr, const uint16_t *w_mk, const float *bias)
{
    const int k = m->values[nd->in[0].index].c, oc = m->values[nd->out].c, panels = (oc + nr - 1) / nr;
    uint16_t *p = eex_arena_array(&m->arena, (size_t)panels * nr * (size_t)k, sizeof(uint16_t));
    float *b = eex_arena_array(&m->arena, (size_t)panels * nr, sizeof(float));
    if (!p || !b)
        return eex_fail(EEX_ERR_NOMEM, "pack: out of memory for dense '%s'", nd->name);
    eex_pack_dense_half(w_mk, bias, k, oc, nr, p, b);
    nd->packed_half = p;
    nd->packed_half_bias = b;
    return EEX_OK;
}

static eex_status pack_dense(eex_model *m, eex_node *nd, int nr)
{
    const eex_value *x = &m->values[nd->in[0].index];
    const eex_value *y = &m->values[nd->out];
    const float *bias = nd->n_in > 2 && nd->in[2].kind == EEX_OPND_CONST ? eex_const_data(m, nd->in[2]) : NULL;
    if (nd->in[1].kind == EEX_OPND_CONST && m->file.tensors[nd->in[1].index].half)
        return pack_dense_half(m, nd, nr, m->file.tensors[nd->in[1].index].half, bias);
    const int64_t floats = eex_pack_gemm_floats(y->c, x->c, 1, 1, 1, nr);
    float *p = eex_arena_array(&m->arena, (size_t)floats, sizeof(float));
    if (!p)
        return eex_fail(EEX_ERR_NOMEM, "pack: out of memory for dense '%s'", nd->name);
    eex_pack_gemm_weights(eex_const_data(m, nd->in[1]), bias, y->c, x->c, 1, 1, 1, nr, p);
    nd->packed = p;
    return EEX_OK;
}

/* Drops the resident pages of a constant that only the reference kernels
 * still read (they fault back in from the page cache if those run). Only for
 * a mapped file: on a caller's buffer MADV_DONTNEED would destroy data. */
static void release_const(eex_model *m, eex_operand o)
{
    if (!m->file.map || o.kind != EEX_OPND_CONST)
        return;
    const long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0)
        return;
    const eex_ftensor *t = &m->file.tensors[o.index];
    /* a float16 tensor: its file bytes (the float32 copy is not in the map) */
    uintptr_t a = (uintptr_t)(t->half ? (const void *)t->half : t->data), e = a + t->nbytes;
    a = (a + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1); /* whole pages inside the tensor only */
    e &= ~((uintptr_t)pg - 1);
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

/* A depthwise conv with a fast kernel (3x3 or 5x5, stride 1 or 2) followed
 * by a pointwise conv that is the only reader of its output (not a graph
 * output, not read by an exit head or a second branch): engine/exec.c may
 * run the two row strip by row strip, the depthwise rows staying in cache
 * (eex_exec_fuses decides per run). A node range that ends or starts
 * between the two (a cut) runs them apart as before. Called once the node
 * order is final (after eex_ee_bind's reordering). */
void eex_mark_dw_pw_pairs(eex_model *m)
{
    for (int i = 0; i + 1 < m->n_nodes; i++) {
        eex_node *d = &m->nodes[i];
        const eex_node *p = &m->nodes[i + 1];
        d->pw_next = 0;
        if (d->op != EEX_OP_CONV || d->algo != EEX_CONV_DEPTHWISE || d->dh != 1 || d->dw != 1 ||
            d->sh != d->sw || d->sh > 2 || d->kh != d->kw || (d->kh != 3 && d->kh != 5))
            continue;
        if (p->op != EEX_OP_CONV || p->algo != EEX_CONV_GEMM_1X1 || p->in[0].kind != EEX_OPND_VALUE ||
            p->in[0].index != d->out || m->values[d->out].last_use != i + 1)
            continue;
        int readers = 0;
        for (int j = 0; j < m->n_nodes; j++)
            for (int k = 0; k < m->nodes[j].n_in; k++)
                readers += m->nodes[j].in[k].kind == EEX_OPND_VALUE && m->nodes[j].in[k].index == d->out;
        d->pw_next = readers == 1;
    }
}

eex_status eex_pack_weights(eex_model *m)
{
    const int nr = eex_kernels_best()->nr;
    int max_icg = 0; /* floats of the shared zero row */
    for (int i = 0; i < m->n_nodes; i++) {
        eex_node *nd = &m->nodes[i];
        eex_status st = EEX_OK;
        if (nd->op == EEX_OP_CONV) {
            st = pack_conv(m, nd, nr);
            /* a whole kernel row of input channels (see conv_gemm_f32) */
            const int row = nd->kw * m->values[nd->in[0].index].c;
            if (nd->algo == EEX_CONV_IM2COL && row > max_icg)
                max_icg = row;
        } else if (nd->op == EEX_OP_DENSE)
            st = pack_dense(m, nd, nr);
        if (st)
            return st;
    }
    /* one read-only zero row, shared by every padded GEMM conv */
    float *zeros = max_icg ? eex_arena_array(&m->arena, (size_t)max_icg, sizeof(float)) : NULL;
    if (max_icg && !zeros)
        return eex_fail(EEX_ERR_NOMEM, "pack: out of memory");
    for (int i = 0; i < m->n_nodes; i++) {
        eex_node *nd = &m->nodes[i];
        if (nd->op == EEX_OP_CONV && nd->algo == EEX_CONV_IM2COL)
            nd->zeros = zeros;
        if (nd->op == EEX_OP_CONV || nd->op == EEX_OP_DENSE) {
            release_const(m, nd->in[1]);
            if (nd->n_in > 2)
                release_const(m, nd->in[2]);
        }
    }
    return EEX_OK;
}
