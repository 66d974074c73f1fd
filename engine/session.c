/* eex_session: one activation arena planned from tensor lifetimes, and the
 * executor that walks the bound graph in order. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec.h"
#include "graph.h"
#include "../branches/bandit.h"
#include "planner.h"
#include "session.h"
#include "../base/status.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}


/* Set once by the application before it makes sessions (eex_set_arena_limit). */
static size_t g_arena_limit = (size_t)-1;
static const char *g_arena_hint;

void eex_set_arena_limit(size_t bytes, const char *hint)
{
    g_arena_limit = bytes ? bytes : (size_t)-1;
    g_arena_hint = hint;
}

static eex_status plan(eex_session *s, int batch)
{
    const eex_model *m = s->m;
    eex_plan_item *items = calloc((size_t)m->n_values, sizeof *items);
    if (!items)
        return eex_fail(EEX_ERR_NOMEM, "session: out of memory planning %d values", m->n_values);
    for (int v = 0; v < m->n_values; v++) {
        const eex_value *val = &m->values[v];
        items[v].bytes = (size_t)batch * (size_t)eex_value_elems(val) * sizeof(float);
        items[v].first = val->producer;
        items[v].last = val->last_use > val->producer ? val->last_use : val->producer;
    }
    /* A depthwise conv that may run paired with the pointwise conv after it
     * (exec.c, eex_exec_dw_pw) still reads its input while the second
     * writes its output: that input lives one node longer, so the two never
     * share bytes. */
    for (int i = 0; i + 1 < m->n_nodes; i++) {
        const eex_node *nd = &m->nodes[i];
        if (!nd->pw_next)
            continue;
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k].kind == EEX_OPND_VALUE && items[nd->in[k].index].last < i + 1)
                items[nd->in[k].index].last = i + 1;
    }
    int ok;
    size_t total = eex_plan(items, m->n_values, &ok);
    if (!ok) {
        free(items);
        return eex_fail(EEX_ERR_NOMEM, "session: out of memory planning the arena");
    }
    if (total > g_arena_limit) {
        free(items);
        return eex_fail(EEX_ERR_NOMEM, "session: the model plans a %.0f MB activation arena at batch %d; the limit is "
                        "%.0f MB%s%s%s", (double)total / (1 << 20), batch, (double)g_arena_limit / (1 << 20),
                        g_arena_hint ? " (" : "", g_arena_hint ? g_arena_hint : "", g_arena_hint ? ")" : "");
    }
    unsigned char *arena = total ? aligned_alloc(64, total) : NULL;
    if (total && !arena) {
        free(items);
        return eex_fail(EEX_ERR_NOMEM, "session: cannot allocate a %zu-byte arena", total);
    }
    free(s->arena);
    s->arena = arena;
    s->arena_bytes = total;
    for (int v = 0; v < m->n_values; v++)
        s->offsets[v] = items[v].offset;
    free(items);
    s->batch = batch;
    return EEX_OK;
}

eex_status eex_session_replan(eex_session *s, int batch)
{
    eex_status st = plan(s, batch);
    s->inputs_set = 0;
    s->ran = s->ee_ran = 0;
    s->cut_ready = -1;
    s->final_ready = 0;
    return st;
}

eex_status eex_session_new(const eex_model *m, const eex_session_opts *opts, eex_session **out)
{
    if (!m || !out)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_new: NULL argument");
    *out = NULL;
    eex_session_opts o = {0};
    if (opts)
        o = *opts;
    if (o.batch < 0 || o.batch > 4096 || o.threads < 0 || o.threads > 256)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_new: batch %d or threads %d out of range", o.batch,
                        o.threads);
    if (o.kernels != EEX_KERNELS_AUTO && o.kernels != EEX_KERNELS_REF)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_new: unknown kernels choice %d", (int)o.kernels);
    eex_session *s = calloc(1, sizeof *s);
    if (!s)
        return eex_fail(EEX_ERR_NOMEM, "session: out of memory");
    s->m = m;
    s->cut_ready = -1;
    s->kernels = o.kernels;
    s->threads = o.threads ? o.threads : 1;
    s->offsets = calloc((size_t)m->n_values, sizeof *s->offsets);
    s->node_ms = calloc((size_t)m->n_nodes + 1, sizeof *s->node_ms);
    s->done = calloc((size_t)m->n_nodes + 1, 1);
    for (int i = 0; i < m->n_nodes; i++)
        if ((size_t)m->nodes[i].scratch_floats > s->scratch_floats)
            s->scratch_floats = (size_t)m->nodes[i].scratch_floats;
    /* each thread gets its own slice of scratch */
    const size_t scratch_bytes = (s->scratch_floats * sizeof(float) * (size_t)s->threads + 63) & ~(size_t)63;
    s->scratch = s->scratch_floats ? aligned_alloc(64, scratch_bytes) : NULL;
    s->pool = eex_pool_new(s->threads);
    if (!s->offsets || !s->node_ms || !s->done || (s->scratch_floats && !s->scratch) || (s->threads > 1 && !s->pool)) {
        eex_session_free(s);
        return eex_fail(EEX_ERR_NOMEM, "session: out of memory");
    }
    eex_status st = plan(s, o.batch ? o.batch : 1);
    if (st) {
        eex_session_free(s);
        return st;
    }
    *out = s;
    return EEX_OK;
}

void eex_session_free(eex_session *s)
{
    if (!s)
        return;
    free(s->arena);
    free(s->offsets);
    free(s->scratch);
    free(s->node_ms);
    free(s->done);
    eex_bandit_free(s->bandit);
    eex_pool_free(s->pool);
    free(s);
}

size_t eex_session_arena_bytes(const eex_session *s) { return s ? s->arena_bytes : 0; }

eex_status eex_session_set_input(eex_session *s, int index, const float *data, const int64_t *shape, int rank)
{
    if (!s || !data || !shape)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_set_input: NULL argument");
    const eex_model *m = s->m;
    if (index < 0 || index >= m->n_inputs)
        return eex_fail(EEX_ERR_NOT_FOUND, "session: input index %d out of range (model has %d)", index,
                        m->n_inputs);
    const eex_value *v = &m->values[m->inputs[index]];
    int64_t want[4];
    const int wr = eex_value_dims(v, shape[0], want);
    int ok = rank == wr && shape[0] >= 1 && shape[0] <= 4096;
    for (int d = 1; ok && d < rank; d++)
        ok = shape[d] == want[d];
    if (!ok) {
        if (v->rank == 4)
            return eex_fail(EEX_ERR_SHAPE, "session: input '%s' must be [N,%d,%d,%d] with 1 <= N <= 4096", v->name,
                            v->c, v->h, v->w);
        if (v->rank == 3)
            return eex_fail(EEX_ERR_SHAPE, "session: input '%s' must be [N,%d,%d] with 1 <= N <= 4096", v->name,
                            v->c, v->w);
        if (v->rank == 1)
            return eex_fail(EEX_ERR_SHAPE, "session: input '%s' must be [N] with 1 <= N <= 4096", v->name);
        return eex_fail(EEX_ERR_SHAPE, "session: input '%s' must be [N,%d] with 1 <= N <= 4096", v->name, v->c);
    }
    if (shape[0] != s->batch) {
        eex_status st = plan(s, (int)shape[0]);
        if (st)
            return st;
        s->inputs_set = 0;  /* the other inputs were laid out for the old batch */
    }
    eex_value_from_nchw(s, m->inputs[index], data);
    s->inputs_set |= 1ull << index;
    s->ran = 0;
    s->ee_ran = 0;
    s->cut_ready = -1;
    s->final_ready = 0;
    return EEX_OK;
}

void eex_value_from_nchw(eex_session *s, int v, const float *data)
{
    const eex_value *val = &s->m->values[v];
    float *dst = eex_session_value(s, v);
    const int64_t hw = (int64_t)val->h * val->w;
    for (int64_t n = 0; n < s->batch; n++)
        for (int c = 0; c < val->c; c++)
            for (int64_t p = 0; p < hw; p++)
                dst[(n * hw + p) * val->c + c] = data[(n * val->c + c) * hw + p];
}

void eex_value_to_nchw(const eex_session *s, int v, float *dst)
{
    const eex_value *val = &s->m->values[v];
    const float *src = eex_session_value(s, v);
    const int64_t hw = (int64_t)val->h * val->w;
    for (int64_t n = 0; n < s->batch; n++)
        for (int c = 0; c < val->c; c++)
            for (int64_t p = 0; p < hw; p++)
                dst[(n * val->c + c) * hw + p] = src[(n * hw + p) * val->c + c];
}

eex_exec_ctx eex_session_ctx(const eex_session *s)
{
    return (eex_exec_ctx){.m = s->m, .batch = s->batch, .arena = s->arena, .offsets = s->offsets,
                          .scratch = s->scratch, .scratch_floats = s->scratch_floats,
                          .kernels = s->kernels, .pool = s->pool};
}

void eex_session_run_nodes(eex_session *s, const eex_exec_ctx *ctx, const int *nodes, int n)
{
    for (int k = 0; k < n; k++) {
        const int i = nodes ? nodes[k] : k;
        const eex_node *nd = &s->m->nodes[i];
        /* a depthwise conv and the pointwise conv after it, both in this
         * run: one pass (exec.c); the profile gives the pair's time to the
         * first and 0 to the second */
        const int pair = k + 1 < n && (nodes ? nodes[k + 1] : k + 1) == i + 1 && eex_exec_fuses(ctx, nd);
        const double t0 = s->profiling ? now_ms() : 0.0;
        if (pair)
            eex_exec_dw_pw(ctx, nd, nd + 1);
        else
            eex_exec_node(ctx, nd);
        if (s->profiling)
            s->node_ms[i] = now_ms() - t0;
        s->done[i] = 1;
        if (pair) {
            k++;
            s->done[i + 1] = 1;
            s->node_ms[i + 1] = 0.0;
        }
    }
    s->nodes_executed += n;
}

eex_status eex_session_run(eex_session *s)
{
    if (!s)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_run: NULL session");
    eex_status st = eex_session_need_inputs(s, s->m->n_inputs >= 64 ? ~0ull : (1ull << s->m->n_inputs) - 1);
    if (st)
        return st;
    const eex_exec_ctx ctx = eex_session_ctx(s);
    s->nodes_executed = 0;
    eex_session_run_nodes(s, &ctx, NULL, s->m->n_nodes);
    s->ran = 1;
    return EEX_OK;
}

eex_status eex_session_need_inputs(const eex_session *s, uint64_t mask)
{
    for (int i = 0; i < s->m->n_inputs; i++)
        if ((mask >> i & 1) && !(s->inputs_set >> i & 1))
            return eex_fail(EEX_ERR_STATE, "session: input '%s' was not set (for this batch size) before the run",
                            s->m->values[s->m->inputs[i]].name);
    return EEX_OK;
}

int eex_session_nodes_executed(const eex_session *s) { return s ? s->nodes_executed : 0; }

eex_status eex_session_output(const eex_session *s, int index, float *dst, size_t cap,
                              int64_t shape[EEX_MAX_RANK], int *rank)
{
    if (!s || !dst)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_output: NULL argument");
    const eex_model *m = s->m;
    if (index < 0 || index >= m->n_outputs)
        return eex_fail(EEX_ERR_NOT_FOUND, "session: output index %d out of range (model has %d)", index,
                        m->n_outputs);
    if (!s->ran)
        return eex_fail(EEX_ERR_STATE, "session: output read before a successful run");
    const eex_value *v = &m->values[m->outputs[index]];
    const int64_t hw = (int64_t)v->h * v->w, total = (int64_t)s->batch * v->c * hw;
    if ((size_t)total > cap)
        return eex_fail(EEX_ERR_ARGUMENT, "session: output '%s' needs %lld floats, buffer holds %zu", v->name,
                        (long long)total, cap);
    eex_value_to_nchw(s, m->outputs[index], dst);
    int64_t dims[4];
    const int r = eex_value_dims(v, s->batch, dims);
    if (shape)
        for (int d = 0; d < r; d++)
            shape[d] = dims[d];
    if (rank)
        *rank = r;
    return EEX_OK;
}

eex_status eex_session_enable_profiling(eex_session *s, int on)
{
    if (!s)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_enable_profiling: NULL session");
    s->profiling = on != 0;
    return EEX_OK;
}

int eex_session_node_count(const eex_session *s) { return s ? s->m->n_nodes : 0; }

eex_status eex_session_node_info(const eex_session *s, int index, eex_node_info *info)
{
    if (!s || !info)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_node_info: NULL argument");
    if (index < 0 || index >= s->m->n_nodes)
        return eex_fail(EEX_ERR_NOT_FOUND, "session: node index %d out of range", index);
    const eex_node *nd = &s->m->nodes[index];
    const eex_value *y = &s->m->values[nd->out];
    memset(info, 0, sizeof *info);
    info->name = nd->name;
    info->op = eex_op_name(nd->op);
    info->out_rank = eex_value_dims(y, s->batch, info->out_shape);
    info->macs = nd->macs * s->batch;
    int64_t bytes = eex_value_elems(y) * s->batch * 4;
    for (int k = 0; k < nd->n_in; k++) {
        if (nd->in[k].kind == EEX_OPND_VALUE)
            bytes += eex_value_elems(&s->m->values[nd->in[k].index]) * s->batch * 4;
        else if (nd->in[k].kind == EEX_OPND_CONST)
            bytes += (int64_t)s->m->file.tensors[nd->in[k].index].nbytes;
    }
    const eex_exec_ctx ctx = eex_session_ctx(s);
    if (nd->op == EEX_OP_CONV && eex_exec_fuses(&ctx, nd)) {
        /* the pair's work: its input, its output and both weights */
        const eex_node *pw = nd + 1;
        info->macs += pw->macs * s->batch;
        bytes += eex_value_elems(&s->m->values[pw->out]) * s->batch * 4 - eex_value_elems(y) * s->batch * 4;
        if (pw->in[1].kind == EEX_OPND_CONST)
            bytes += (int64_t)s->m->file.tensors[pw->in[1].index].nbytes;
    } else if (nd->op == EEX_OP_CONV && index > 0 && eex_exec_fuses(&ctx, nd - 1))
        info->macs = 0, bytes = 0; /* counted in the depthwise conv's row */
    info->bytes = bytes;
    info->ms = s->node_ms[index];
    info->stage = nd->ee_stage;
    info->head_exit = nd->ee_head_exit;
    info->head_experts = nd->ee_head_experts;
    info->detector = nd->ee_detector;
    info->kernel = s->kernels == EEX_KERNELS_REF ? "ref" : eex_node_kernel_name(&ctx, nd);
    return EEX_OK;
}
