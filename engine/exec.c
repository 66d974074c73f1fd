/* Executing one node: picks the kernel for its op and algorithm (reference,
 * or the fast table chosen for this CPU), splits the work across the
 * session's pool, and hands the kernels pointers into the arena.
 *
 * Splits are static (eex_split) and every output element is computed by
 * exactly one task with the same arithmetic whatever the split, so results
 * are bit-identical for any thread count. Dense layers at large batches may
 * go through OpenBLAS instead (dense_blas.c). */
#include "exec.h"

#include "../kernels/dispatch.h"
#include "../kernels/kernels.h"
#include "../kernels/winograd.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/conv_fast.h"
#include "../kernels/dw_pw.h"

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

/* Below this many bytes touched a node runs on the calling thread: waking
 * the pool would cost more than the split saves. */
#define PARALLEL_MIN_BYTES (32 * 1024)

/* Tasks per thread: threads take tasks as they come free, so when one of
 * them is slowed (another process on its core, a page fault) the others
 * take over its share instead of waiting for it at the end of the node. */
#define TASKS_PER_THREAD 4

int eex_exec_tasks(const eex_exec_ctx *s, int64_t bytes, int64_t units)
{
    const int threads = eex_pool_threads(s->pool);
    if (threads == 1 || bytes < PARALLEL_MIN_BYTES)
        return 1;
    const int64_t t = (int64_t)threads * TASKS_PER_THREAD;
    return units < t ? (int)(units > 0 ? units : 1) : (int)t;
}

/* ---- conv and dense through the GEMM kernel ---- */

typedef struct gemm_job {
    const eex_kernel_table *kt;
    eex_conv_shape cs;
    const float *x, *w, *zeros;
    const eex_act_params *act;
    float *y;
    int64_t pixels;
    int panels;
    int pgroups; /* tasks are pgroups x (n / pgroups): a range of panels times a range of pixels */
} gemm_job;

static void gemm_task(void *arg, int t, int n)
{
    const gemm_job *j = arg;
    const int xg = n / j->pgroups;
    int64_t p0, p1, j0, j1;
    eex_split(j->panels, t / xg, j->pgroups, 1, &j0, &j1);
    eex_split(j->pixels, t % xg, xg, j->kt->mr, &p0, &p1);
    j->kt->conv_gemm_f32(&j->cs, j->x, j->w, j->act, j->y, p0, p1, (int)j0, (int)j1, j->zeros);
}

/* How a conv's GEMM is cut into `want` tasks: pg groups of panels times
 * want / pg groups of pixels. Each task reads all the weights of its panels
 * and all the input of its pixels, so the weights are read want / pg times
 * in all and the input pg times; the split that reads the fewest bytes wins
 * (ResNet's 7x7 convs, 9.4 MB of weights for 100 KB of input, were cut by
 * pixels into tasks of one or two tiles each reading all 9.4 MB). Cuts that
 * leave a task without a tile or a panel are skipped. Returns pg, or 0 when
 * no cut gives every task work. */
static int gemm_panel_groups(int want, int64_t tiles, int panels, int64_t w_bytes, int64_t x_bytes)
{
    int best = 0;
    int64_t best_bytes = 0;
    for (int pg = 1; pg <= want; pg++) {
        if (want % pg || pg > panels || want / pg > tiles)
            continue;
        const int64_t bytes = (int64_t)(want / pg) * w_bytes + (int64_t)pg * x_bytes;
        if (!best || bytes < best_bytes)
            best = pg, best_bytes = bytes;
    }
    return best;
}

static void run_gemm(const eex_exec_ctx *s, const eex_conv_shape *cs, const float *x, const float *w,
                     const float *zeros, const eex_act_params *act, float *y, int64_t macs)
{
    const eex_kernel_table *kt = eex_kernels_best();
    const int ocg = cs->oc / cs->group;
    gemm_job j = {.kt = kt, .cs = *cs, .x = x, .w = w, .zeros = zeros, .act = act, .y = y,
                  .pixels = (int64_t)cs->n * cs->oh * cs->ow,
                  .panels = cs->group * ((ocg + kt->nr - 1) / kt->nr)};
    const int threads = eex_pool_threads(s->pool);
    int tasks = 1;
    j.pgroups = 1;
    if (threads > 1 && macs >= 64 * 1024) {
        const int64_t tiles = (j.pixels + kt->mr - 1) / kt->mr;
        const int want = threads * TASKS_PER_THREAD;
        const int icg = cs->ic / cs->group;
        const int64_t w_bytes = 4 * (int64_t)j.panels * eex_gemm_panel_floats(kt->nr, cs->kh * cs->kw, icg);
        const int64_t x_bytes = 4 * (int64_t)cs->n * cs->ih * cs->iw * cs->ic;
        const int pg = gemm_panel_groups(want, tiles, j.panels, w_bytes, x_bytes);
        if (pg) {
            tasks = want;
            j.pgroups = pg;
        } else {
            /* fewer tiles or panels than tasks: cut whichever dimension
             * balances better over the threads, one unit per task */
            const double by_pix = (double)((tiles + threads - 1) / threads) / (double)tiles;
            const double by_pan = (double)((j.panels + threads - 1) / threads) / (double)j.panels;
            const int by_panels = by_pan < by_pix;
            const int64_t units = by_panels ? j.panels : tiles;
            tasks = (int)(units < want ? units : want);
            j.pgroups = by_panels ? tasks : 1;
        }
    }
    eex_pool_run(s->pool, tasks, gemm_task, &j);
}

/* ---- depthwise ---- */

typedef struct dw_job {
    eex_dw_fn fn;
    eex_conv_shape cs;
    const float *x, *w, *bias;
    const eex_act_params *act;
    float *y;
} dw_job;

static void dw_task(void *arg, int t, int n)
{
    const dw_job *j = arg;
    int64_t lo, hi;
    eex_split((int64_t)j->cs.n * j->cs.oh, t, n, 1, &lo, &hi);
    j->fn(&j->cs, j->x, j->w, j->bias, j->act, j->y, lo, hi);
}

static void run_dw(const eex_exec_ctx *s, const eex_conv_shape *cs, const float *x, const float *w,
                   const float *bias, const eex_act_params *act, float *y)
{
    const eex_kernel_table *kt = eex_kernels_best();
    dw_job j = {.fn = eex_dw_pick(kt, cs), .cs = *cs, .x = x, .w = w, .bias = bias, .act = act, .y = y};
    const int64_t rows = (int64_t)cs->n * cs->oh;
    const int64_t bytes = 4 * (int64_t)cs->n * cs->oc * ((int64_t)cs->ih * cs->iw + (int64_t)cs->oh * cs->ow);
    eex_pool_run(s->pool, eex_exec_tasks(s, bytes, rows), dw_task, &j);
}

/* ---- a depthwise conv and the pointwise conv after it, in row strips ---- */

/* MobileNet-style blocks write a depthwise output of up to 112x112x96
 * floats only for the next pointwise conv to read it back: at 1-2 MB it
 * has left L2 by then. Run as a pair, each task computes a strip of a few
 * depthwise rows into its thread's scratch and the pointwise conv of those
 * pixels from there (kernels/dw_pw.c), so the depthwise output never goes
 * to memory. Results are bit-identical to the unfused run: the selfcheck
 * dw_pw compares the two on random shapes per ISA, tests/parity/run.sh on
 * whole networks. */
#define FUSE_MIN_BYTES (512 * 1024)      /* smaller depthwise outputs stay in L2 anyway */
#define FUSE_MAX_PW_BYTES (256 * 1024)   /* pointwise weights, read again for every strip */
#define FUSE_STRIP_FLOATS (8 * 1024)     /* a strip of depthwise rows: 32 KB, about L1 */

static int fuse_enabled(void)
{
    static atomic_int v = -1; /* EEX_FUSE=0 turns the pairing off (A/B runs, debugging) */
    int e = atomic_load_explicit(&v, memory_order_relaxed);
    if (e < 0) {
        const char *env = getenv("EEX_FUSE");
        e = !(env && !strcmp(env, "0"));
        atomic_store_explicit(&v, e, memory_order_relaxed);
    }
    return e;
}

int eex_exec_fuses(const eex_exec_ctx *s, const eex_node *nd)
{
    if (!nd->pw_next || s->kernels == EEX_KERNELS_REF || !fuse_enabled())
        return 0;
    const eex_value *mid = &s->m->values[nd->out], *out = &s->m->values[nd[1].out];
    const int64_t mid_bytes = 4 * (int64_t)s->batch * eex_value_elems(mid);
    const int64_t pw_bytes = 4 * (int64_t)mid->c * out->c;
    return mid_bytes >= FUSE_MIN_BYTES && pw_bytes <= FUSE_MAX_PW_BYTES;
}

typedef struct dwpw_job {
    const eex_kernel_table *kt;
    eex_conv_shape d, p;
    const float *x, *wd, *bd, *wp, *zeros;
    const eex_act_params *ad, *ap;
    float *mid, *y; /* the depthwise output in the arena (used when scratch fails), the pair's output */
    int strip_rows;
} dwpw_job;

static void dwpw_task(void *arg, int t, int n)
{
    const dwpw_job *j = arg;
    const int64_t row_floats = (int64_t)j->d.ow * j->d.oc;
    int64_t lo, hi;
    eex_split((int64_t)j->d.n * j->d.oh, t, n, 1, &lo, &hi);
    if (lo >= hi)
        return;
    float *buf = eex_wino_scratch((int64_t)j->strip_rows * row_floats);
    int strip_rows = j->strip_rows;
    if (!buf) /* no scratch: the task's rows of the arena's depthwise output serve as the strip */
        buf = j->mid + lo * row_floats, strip_rows = (int)(hi - lo);
    eex_dw_pw_rows(j->kt, &j->d, j->x, j->wd, j->bd, j->ad, &j->p, j->wp, j->ap, j->zeros, buf, strip_rows, j->y, lo,
                   hi);
}

void eex_exec_dw_pw(const eex_exec_ctx *s, const eex_node *dn, const eex_node *pn)
{
    dwpw_job j = {.kt = eex_kernels_best(), .d = conv_shape(s, dn), .p = conv_shape(s, pn),
                  .x = operand_ptr(s, dn->in[0]), .wd = dn->packed, .bd = dn->n_in > 2 ? operand_ptr(s, dn->in[2]) : NULL,
                  .wp = pn->packed, .zeros = pn->zeros, .ad = &dn->act, .ap = &pn->act, .mid = value_ptr(s, dn->out),
                  .y = value_ptr(s, pn->out)};
    const int64_t row_floats = (int64_t)j.d.ow * j.d.oc;
    j.strip_rows = (int)(FUSE_STRIP_FLOATS / row_floats);
    if (j.strip_rows < 1)
        j.strip_rows = 1;
    const int64_t rows = (int64_t)j.d.n * j.d.oh;
    const int64_t bytes = 4 * (int64_t)j.d.n * j.d.oc * ((int64_t)j.d.ih * j.d.iw + (int64_t)j.d.oh * j.d.ow);
    eex_pool_run(s->pool, eex_exec_tasks(s, bytes, rows), dwpw_task, &j);
}

/* ---- Winograd F(4x4, 3x3) ---- */

typedef struct wino_job {
    const eex_kernel_table *kt;
    eex_conv_shape cs;
    const float *x, *u, *bias;
    const eex_act_params *act;
    float *y;
    int64_t tiles;
    int panels, split_panels; /* tasks split output panels (1) or tiles (0) */
    atomic_int failed; /* a task found no scratch memory */
} wino_job;

static void wino_task(void *arg, int t, int n)
{
    wino_job *j = arg;
    int64_t t0 = 0, t1 = j->tiles, j0 = 0, j1 = j->panels;
    if (j->split_panels)
        eex_split(j->panels, t, n, 1, &j0, &j1);
    else
        eex_split(j->tiles, t, n, 1, &t0, &t1);
    if (t0 >= t1 || j0 >= j1)
        return;
    float *scratch = eex_wino_scratch(eex_wino_scratch_floats(j->cs.ic, j->cs.oc, j->kt->mr));
    if (!scratch) {
        atomic_store(&j->failed, 1);
        return;
    }
    j->kt->winograd43_f32(&j->cs, j->x, j->u, j->bias, j->act, j->y, t0, t1, (int)j0, (int)j1, scratch);
}

/* Tasks split the tiles, or the output panels when there are fewer tiles
 * than a tile row per task: by tiles every task reads all 36 transformed
 * weight matrices (4x the conv's weights), so on ResNet-18's 14x14 maps (16
 * tiles, 9.4 MB of them) two threads were slower than one (1.44 -> 1.8-1.95
 * ms per conv; 0.85-0.97x the 1-thread time by panels); by panels a task
 * reads only its panels' share but transforms the whole input, which cost
 * more than it saved on the 28x28 maps (49 tiles: 0.7x the 1-thread time by
 * tiles, 0.9-1.0x by panels). Each output is
 * computed the same way whatever the split. Without memory for a thread's
 * scratch the node falls back to the reference conv on the file's weights
 * (the pages fault back in). */
static void run_winograd(const eex_exec_ctx *s, const eex_node *nd, const eex_conv_shape *cs, const float *x,
                         const float *bias, float *y)
{
    wino_job j = {.kt = eex_kernels_best(), .cs = *cs, .x = x, .u = nd->packed, .bias = bias, .act = &nd->act,
                  .y = y, .tiles = eex_wino_tiles(cs)};
    atomic_init(&j.failed, 0);
    const int threads = eex_pool_threads(s->pool);
    const int64_t want = (int64_t)threads * TASKS_PER_THREAD;
    j.panels = (cs->oc + j.kt->nr - 1) / j.kt->nr;
    j.split_panels = threads > 1 && j.panels >= want && j.tiles < want * j.kt->mr;
    const int64_t units = j.split_panels ? j.panels : j.tiles;
    const int tasks = threads == 1 ? 1 : (int)(units < want ? units : want);
    eex_pool_run(s->pool, tasks, wino_task, &j);
    if (atomic_load(&j.failed))
        eex_conv_ref(cs, x, eex_const_data(s->m, nd->in[1]), bias, &nd->act, y);
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
    if (nd->algo == EEX_CONV_DEPTHWISE)
        run_dw(s, &cs, x, nd->packed, bias, &nd->act, y);
    else if (nd->algo == EEX_CONV_WINOGRAD)
        run_winograd(s, nd, &cs, x, bias, y);
    else
        run_gemm(s, &cs, x, nd->packed, nd->zeros, &nd->act, y, nd->macs * s->batch);
}

typedef struct dense_half_job {
    const eex_kernel_table *kt;
    const eex_node *nd;
    const float *x;
    float *y;
    int n, k, m, panels;
} dense_half_job;

static void dense_half_task(void *arg, int t, int n)
{
    const dense_half_job *j = arg;
    int64_t lo, hi;
    eex_split(j->panels, t, n, 1, &lo, &hi);
    j->kt->dense_half_f32(j->n, j->k, j->m, j->x, j->nd->packed_half, j->nd->packed_half_bias, &j->nd->act, j->y,
                          (int)lo, (int)hi);
}

/* Tasks split the output panels: each reads only its own weights. */
static void run_dense_half(const eex_exec_ctx *s, const eex_node *nd, const float *x, int k, int m, float *y)
{
    const eex_kernel_table *kt = eex_kernels_best();
    dense_half_job j = {.kt = kt, .nd = nd, .x = x, .y = y, .n = s->batch, .k = k, .m = m,
                        .panels = (m + kt->nr - 1) / kt->nr};
    eex_pool_run(s->pool, eex_exec_tasks(s, 2 * (int64_t)k * m, j.panels), dense_half_task, &j);
}


static void exec_dense(const eex_exec_ctx *s, const eex_node *nd, float *y)
{
    const eex_value *x = &s->m->values[nd->in[0].index], *out = &s->m->values[nd->out];
    if (s->kernels == EEX_KERNELS_REF) {
        const float *bias = nd->n_in > 2 ? operand_ptr(s, nd->in[2]) : NULL;
        eex_dense_ref(s->batch, x->c, out->c, value_ptr(s, nd->in[0].index), eex_const_data(s->m, nd->in[1]), bias,
                      &nd->act, y);
        return;
    }
    if (nd->packed_half) {
        run_dense_half(s, nd, value_ptr(s, nd->in[0].index), x->c, out->c, y);
        return;
    }
    if (eex_dense_uses_blas(s, nd)) {
        eex_run_dense_blas(s, nd, value_ptr(s, nd->in[0].index), nd->n_in > 2 ? operand_ptr(s, nd->in[2]) : NULL,
                           x->c, out->c, y);
        return;
    }
    /* a dense layer is a 1x1 conv over `batch` one-pixel images */
    const eex_conv_shape cs = {.n = s->batch, .ih = 1, .iw = 1, .ic = x->c, .oh = 1, .ow = 1, .oc = out->c,
                               .kh = 1, .kw = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1, .group = 1};
    run_gemm(s, &cs, value_ptr(s, nd->in[0].index), nd->packed, NULL, &nd->act, y, nd->macs * s->batch);
}

/* ---- pooling ---- */

static eex_pool_shape pool_shape(const eex_exec_ctx *s, const eex_node *nd)
{
    const eex_value *x = &s->m->values[nd->in[0].index], *y = &s->m->values[nd->out];
    return (eex_pool_shape){.n = s->batch, .ih = x->h, .iw = x->w, .c = x->c, .oh = y->h, .ow = y->w,
                            .kh = nd->kh, .kw = nd->kw, .sh = nd->sh, .sw = nd->sw, .pt = nd->pt,
                            .pl = nd->pl, .pb = nd->pb, .pr = nd->pr,
                            .count_include_pad = nd->count_include_pad};
}

typedef struct pool_job {
    void (*fn)(const eex_pool_shape *, const float *, float *, int64_t, int64_t);
    eex_pool_shape ps;
    const float *x;
    float *y;
} pool_job;

static void pool_task(void *arg, int t, int n)
{
    const pool_job *j = arg;
    int64_t lo, hi;
    eex_split((int64_t)j->ps.n * j->ps.oh, t, n, 1, &lo, &hi);
    j->fn(&j->ps, j->x, j->y, lo, hi);
}

static void exec_pool(const eex_exec_ctx *s, const eex_node *nd, float *y)
{
    const eex_pool_shape ps = pool_shape(s, nd);
    const float *x = operand_ptr(s, nd->in[0]);
    if (s->kernels == EEX_KERNELS_REF) {
        (nd->op == EEX_OP_MAXPOOL ? eex_maxpool_ref : eex_avgpool_ref)(&ps, x, y);
        return;
    }
    const eex_kernel_table *kt = eex_kernels_best();
    pool_job j = {.fn = nd->op == EEX_OP_MAXPOOL ? kt->maxpool_f32 : kt->avgpool_f32, .ps = ps, .x = x, .y = y};
    const int64_t bytes = 4 * (int64_t)ps.n * ps.c * ((int64_t)ps.ih * ps.iw + (int64_t)ps.oh * ps.ow);
    eex_pool_run(s->pool, eex_exec_tasks(s, bytes, (int64_t)ps.n * ps.oh), pool_task, &j);
}

typedef struct gap_job {
    const eex_kernel_table *kt;
    int n, hw, c;
    const float *x;
    float *y;
} gap_job;

static void gap_task(void *arg, int t, int n)
{
    const gap_job *j = arg;
    int64_t lo, hi;
    eex_split(j->c, t, n, j->kt->vl, &lo, &hi);
    j->kt->gap_f32(j->n, j->hw, j->c, j->x, j->y, (int)lo, (int)hi);
}

/* ---- element-wise ---- */

typedef struct binary_job {
    const eex_kernel_table *kt;
    int op, n, hw, c;
    const float *a, *b;
    eex_bcast mode;
    const eex_act_params *act;
    float *y;
} binary_job;

static void binary_task(void *arg, int t, int n)
{
    const binary_job *j = arg;
    int64_t lo, hi;
    eex_split((int64_t)j->n * j->hw, t, n, 1, &lo, &hi);
    j->kt->binary_f32(j->op, j->n, j->hw, j->c, j->a, j->b, j->mode, j->act, j->y, lo, hi);
}

typedef struct unary_job {
    const eex_kernel_table *kt;
    eex_unary op;
    float p0, p1;
    const float *x;
    float *y;
    int64_t count;
} unary_job;

static void unary_task(void *arg, int t, int n)
{
    const unary_job *j = arg;
    int64_t lo, hi;
    eex_split(j->count, t, n, 64, &lo, &hi);
    j->kt->unary_f32(j->op, j->p0, j->p1, j->x, j->y, lo, hi);
}

static void exec_unary(const eex_exec_ctx *s, eex_unary op, float p0, float p1, int64_t count, const float *x,
                       float *y)
{
    if (s->kernels == EEX_KERNELS_REF) {
        eex_unary_ref(op, p0, p1, count, x, y);
        return;
    }
    unary_job j = {.kt = eex_kernels_best(), .op = op, .p0 = p0, .p1 = p1, .x = x, .y = y, .count = count};
    eex_pool_run(s->pool, eex_exec_tasks(s, 8 * count, (count + 63) / 64), unary_task, &j);
}

/* ---- data movement and normalisation ---- */

typedef struct layernorm_job {
    const eex_kernel_table *kt;
    int c;
    float eps;
    const float *scale, *bias, *x;
    float *y;
    int64_t pixels;
} layernorm_job;

static void layernorm_task(void *arg, int t, int n)
{
    const layernorm_job *j = arg;
    int64_t lo, hi;
    eex_split(j->pixels, t, n, 1, &lo, &hi);
    j->kt->layernorm_f32(lo, hi, j->c, j->eps, j->scale, j->bias, j->x, j->y);
}

static void eex_exec_more(const eex_exec_ctx *s, const eex_node *nd, float *y)
{
    const eex_model *m = s->m;
    const eex_value *x = &m->values[nd->in[0].index], *out = &m->values[nd->out];
    const float *xp = operand_ptr(s, nd->in[0]);
    const int64_t pixels = (int64_t)s->batch * x->h * x->w;
    switch (nd->op) {
    case EEX_OP_PAD: eex_pad_ref(s->batch, x->h, x->w, x->c, nd->pt, nd->pl, nd->pb, nd->pr, nd->p0, xp, y); break;
    case EEX_OP_SLICE: {
        const int count = nd->axis == 1 ? out->c : nd->axis == 2 ? out->h : out->w;
        eex_slice_ref(s->batch, x->h, x->w, x->c, nd->axis, nd->start, nd->step, count, xp, y);
        break;
    }
    case EEX_OP_SHUFFLE: eex_shuffle_ref(pixels, x->c, nd->group, xp, y); break;
    case EEX_OP_RESHAPE: eex_reshape_ref(s->batch, x->c, x->h, x->w, out->c, out->h, out->w, xp, y); break;
    case EEX_OP_GLOBALMAXPOOL: eex_gmp_ref(s->batch, x->h * x->w, x->c, xp, y); break;
    case EEX_OP_LRN: eex_lrn_ref(pixels, x->c, nd->kh, nd->p0, nd->p1, nd->p2, xp, y); break;
    case EEX_OP_LAYERNORM: {
        const float *scale = operand_ptr(s, nd->in[1]), *bias = nd->n_in > 2 ? operand_ptr(s, nd->in[2]) : NULL;
        if (s->kernels == EEX_KERNELS_REF) {
            eex_layernorm_ref(0, pixels, x->c, nd->p0, scale, bias, xp, y);
            break;
        }
        layernorm_job j = {.kt = eex_kernels_best(), .c = x->c, .eps = nd->p0, .scale = scale, .bias = bias,
                           .x = xp, .y = y, .pixels = pixels};
        eex_pool_run(s->pool, eex_exec_tasks(s, 8 * pixels * x->c, pixels), layernorm_task, &j);
        break;
    }
    default: break; /* bind rejects every other op */
    }
}

const char *eex_node_kernel_name(const eex_exec_ctx *s, const eex_node *nd)
{
    if (s->kernels == EEX_KERNELS_REF && (nd->op == EEX_OP_CONV || nd->op == EEX_OP_DENSE))
        return "ref";
    if (nd->op == EEX_OP_DENSE)
        return nd->packed_half ? "gemv_f16" : eex_dense_uses_blas(s, nd) ? "sgemm_blas" : "gemm";
    if (nd->op != EEX_OP_CONV)
        return eex_node_kernel_kind(nd);
    switch (nd->algo) {
    case EEX_CONV_GEMM_1X1:
        /* computed by the depthwise conv before it (eex_exec_dw_pw) */
        return nd > s->m->nodes && eex_exec_fuses(s, nd - 1) ? "fused_above" : "gemm_1x1";
    case EEX_CONV_WINOGRAD: return "winograd_f4x4";
    case EEX_CONV_DEPTHWISE:
        if (eex_exec_fuses(s, nd))
            return nd->kh == 3 ? (nd->sh == 1 ? "dw3x3_s1+1x1" : "dw3x3_s2+1x1") : (nd->sh == 1 ? "dw5x5_s1+1x1" : "dw5x5_s2+1x1");
        if (nd->dh == 1 && nd->dw == 1 && nd->sh == nd->sw && nd->sh <= 2 && nd->kh == nd->kw &&
            (nd->kh == 3 || nd->kh == 5))
            return nd->kh == 3 ? (nd->sh == 1 ? "dw3x3_s1" : "dw3x3_s2") : (nd->sh == 1 ? "dw5x5_s1" : "dw5x5_s2");
        return "dw_any";
    default: return "gemm_indirect";
    }
}

const char *eex_node_kernel_kind(const eex_node *nd)
{
    switch (nd->op) {
    case EEX_OP_FLATTEN:
    case EEX_OP_CONCAT:
    case EEX_OP_PAD:
    case EEX_OP_SLICE:
    case EEX_OP_SHUFFLE:
    case EEX_OP_RESHAPE: return "copy";
    case EEX_OP_SOFTMAX:
    case EEX_OP_GLOBALMAXPOOL:
    case EEX_OP_LRN: return "ref";
    default: return "fast";
    }
}

/* tanh .. sqrt map onto the unary kernel's ops by offset */
_Static_assert(EEX_OP_SQRT - EEX_OP_TANH == EEX_UNARY_SQRT - EEX_UNARY_TANH &&
                   EEX_OP_GELU - EEX_OP_TANH == EEX_UNARY_GELU - EEX_UNARY_TANH,
               "eex_op tanh..sqrt and eex_unary tanh..sqrt must be in the same order");

void eex_exec_node(const eex_exec_ctx *s, const eex_node *nd)
{
    const eex_model *m = s->m;
    const eex_value *out = &m->values[nd->out];
    float *y = value_ptr(s, nd->out);
    const eex_value *x = nd->in[0].kind == EEX_OPND_VALUE ? &m->values[nd->in[0].index] : NULL;
    const int64_t count = (int64_t)s->batch * eex_value_elems(out);
    const int ref = s->kernels == EEX_KERNELS_REF;
    switch (nd->op) {
    case EEX_OP_CONV: exec_conv(s, nd, y); break;
    case EEX_OP_DENSE: exec_dense(s, nd, y); break;
    case EEX_OP_ADD:
    case EEX_OP_MUL:
    case EEX_OP_SUB:
    case EEX_OP_DIV:
    case EEX_OP_MAX:
    case EEX_OP_MIN:
    case EEX_OP_PRELU: {
        const float *a = operand_ptr(s, nd->in[0]), *b = operand_ptr(s, nd->in[1]);
        const int hw = out->h * out->w;
        if (ref) {
            eex_binary_ref(nd->binop, s->batch, hw, out->c, a, b, nd->bcast, &nd->act, y);
            break;
        }
        binary_job j = {.kt = eex_kernels_best(), .op = nd->binop, .n = s->batch, .hw = hw, .c = out->c,
                        .a = a, .b = b, .mode = nd->bcast, .act = &nd->act, .y = y};
        eex_pool_run(s->pool, eex_exec_tasks(s, 12 * count, (int64_t)s->batch * hw), binary_task, &j);
        break;
    }
    case EEX_OP_RELU: exec_unary(s, EEX_UNARY_RELU, 0, 0, count, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_CLIP: exec_unary(s, EEX_UNARY_CLIP, nd->p0, nd->p1, count, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_SIGMOID: exec_unary(s, EEX_UNARY_SIGMOID, 0, 0, count, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_HARDSIGMOID:
        exec_unary(s, EEX_UNARY_HARDSIGMOID, nd->p0, nd->p1, count, operand_ptr(s, nd->in[0]), y);
        break;
    case EEX_OP_HARDSWISH: exec_unary(s, EEX_UNARY_HARDSWISH, 0, 0, count, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_SILU: exec_unary(s, EEX_UNARY_SILU, 0, 0, count, operand_ptr(s, nd->in[0]), y); break;
    case EEX_OP_TANH:
    case EEX_OP_LEAKYRELU:
    case EEX_OP_ELU:
    case EEX_OP_ERF:
    case EEX_OP_GELU:
    case EEX_OP_ABS:
    case EEX_OP_NEG:
    case EEX_OP_EXP:
    case EEX_OP_SQRT:
        exec_unary(s, (eex_unary)(EEX_UNARY_TANH + (nd->op - EEX_OP_TANH)), nd->p0, 0, count,
                   operand_ptr(s, nd->in[0]), y);
        break;
    case EEX_OP_MAXPOOL:
    case EEX_OP_AVGPOOL: exec_pool(s, nd, y); break;
    case EEX_OP_GLOBALAVGPOOL:
        if (ref)
            eex_gap_ref(s->batch, x->h * x->w, x->c, operand_ptr(s, nd->in[0]), y);
        else {
            gap_job j = {.kt = eex_kernels_best(), .n = s->batch, .hw = x->h * x->w, .c = x->c,
                         .x = operand_ptr(s, nd->in[0]), .y = y};
            const int64_t bytes = 4 * (int64_t)s->batch * eex_value_elems(x);
            eex_pool_run(s->pool, eex_exec_tasks(s, bytes, (x->c + j.kt->vl - 1) / j.kt->vl), gap_task, &j);
        }
        break;
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
    default: eex_exec_more(s, nd, y); break;
    }
}
