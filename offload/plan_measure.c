/* eex_plan_measure: the split planner's costs measured on this machine
 * (include/eex.h). Seeded random inputs; every exit's threshold is out of
 * reach (p_tar 1), so every run goes to the cut. With an idle gap every timed
 * run comes after a sleep, as a deployment's runs come after a round trip:
 * caches, TLBs and the worker threads have gone cold by then, and a
 * back-to-back loop would time a machine the deployment never sees. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/status.h"
#include "offload.h"

#define IMAGES 8  /* distinct inputs the timings cycle over */

typedef struct bench_ctx {
    const eex_model *m;
    eex_session *s;
    uint8_t *px[IMAGES];
    int h, w, c, expert;
    double idle_ms;
} bench_ctx;

static void idle(const bench_ctx *b)
{
    if (!(b->idle_ms > 0))
        return;
    const long ns = (long)(b->idle_ms * 1e6);
    struct timespec ts = {.tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;  /* a signal cut it short: sleep the rest */
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int set_img(bench_ctx *b, int i) { return eex_session_set_image(b->s, b->px[i % IMAGES], b->h, b->w, b->c) ? -1 : 0; }

/* Median ms of each of n policy runs (force_exit k, or to cut `cut`), timed
 * in rounds: every round runs each policy once, so a slow spell of the
 * machine (another process, a frequency change) falls on all of them alike.
 * Timed one after the other, a spell over one cut's runs made a deeper cut
 * look cheaper on the edge than a shallower one, and the planner then chose
 * between them on noise. */
static int time_policies(bench_ctx *b, const eex_policy *p, int n, int runs, double *const *ms)
{
    double *v = malloc(sizeof(double) * (size_t)runs * (size_t)n);
    if (!v)
        return -1;
    eex_exit_result r;
    for (int i = -2; i < runs; i++) {  /* two warm-up rounds */
        for (int j = 0; j < n; j++) {
            if (set_img(b, i + 2 + j))
                return free(v), -1;
            idle(b);
            const double t0 = eex_now_ms();
            if (eex_session_run_policy(b->s, &p[j], &r))
                return free(v), -1;
            if (i >= 0)
                v[(size_t)j * runs + i] = eex_now_ms() - t0;
        }
    }
    for (int j = 0; j < n; j++)
        *ms[j] = median_of(v + (size_t)j * runs, runs);
    free(v);
    return 0;
}

static double frame_bytes(int rank, size_t payload) { return EEXW_HEADER + EEXW_INFER_FIXED + 4.0 * rank + (double)payload + EEXW_TRAILER; }

/* Per cut: cloud time (eex_offload_resume), per wire: frame bytes and codec
 * time (encode + pack on the edge, unpack + decode on the cloud). */
static int time_cut(bench_ctx *b, int cut, int runs, eex_plan_costs *k)
{
    int64_t dims[EEX_MAX_RANK];
    const int rank = eex_model_cut_shape(b->m, cut, dims);
    size_t elems = 1;
    for (int d = 0; d < rank; d++)
        elems *= (size_t)dims[d];
    float *x = malloc(elems * sizeof(float) * IMAGES), *y = malloc(elems * sizeof(float));
    /* raw bytes are at most 4.5 x elems (q4 of 1-element channels), packed ones 20 more */
    uint8_t *raw = malloc(6 * elems + 64), *packed = malloc(6 * elems + 64), *back = malloc(6 * elems + 64);
    double *v = malloc(sizeof(double) * (size_t)(runs > IMAGES ? runs : IMAGES));
    int rc = -1;
    if (!x || !y || !raw || !packed || !back || !v)
        goto out;
    const eex_policy p = {.threshold = 1.0f, .metric = EEX_METRIC_MAXPROB, .expert = b->expert, .cut = cut};
    eex_exit_result r;
    for (int i = 0; i < IMAGES; i++) {
        if (set_img(b, i) || eex_session_run_policy(b->s, &p, &r) || r.where != EEX_WHERE_CUT ||
            eex_session_cut_tensor(b->s, cut, x + (size_t)i * elems, elems, NULL, NULL))
            goto out;
    }
    eex_cloud_answer a;
    for (int i = -2; i < runs; i++) {
        idle(b);
        const double t0 = eex_now_ms();
        if (eex_offload_resume(b->s, cut, x + (size_t)((i + 2) % IMAGES) * elems, dims, rank, r.expert,
                               EEX_METRIC_MAXPROB, 1.0f, &a))
            goto out;
        if (i >= 0)
            v[i] = eex_now_ms() - t0;
    }
    k->cloud_ms[cut] = median_of(v, runs);
    const int channels = rank > 1 ? (int)dims[1] : 1;
    for (int w = 1; w <= EEX_WIRE_COUNT; w++) {
        const size_t rb = eexw_raw_bytes(w, elems, channels);
        double *bv = malloc(sizeof(double) * IMAGES);
        if (!bv)
            goto out;
        for (int i = 0; i < IMAGES; i++) {
            float scale;
            int32_t zp;
            const double t0 = eex_now_ms();
            if (eexw_encode_ch(x + (size_t)i * elems, elems, channels, w, raw, &scale, &zp)) {
                free(bv);
                goto out;
            }
            const size_t unit = w == EEXW_Q4 ? 1 : eexw_dtype_size(w);  /* as the client packs */
            const size_t n = eexw_pack(raw, rb / unit, unit, packed);
            if (eexw_unpack(packed, n, rb / unit, unit, back)) {
                free(bv);
                goto out;
            }
            if (eexw_decode_ch(back, elems, channels, w, scale, zp, y)) {
                free(bv);
                goto out;
            }
            v[i] = eex_now_ms() - t0;
            bv[i] = frame_bytes(rank, n);
        }
        k->codec_ms[cut][w] = median_of(v, IMAGES);
        k->bytes[cut][w] = median_of(bv, IMAGES);
        free(bv);
    }
    rc = 0;
out:
    free(x), free(y), free(raw), free(packed), free(back), free(v);
    return rc;
}


eex_status eex_plan_measure(const eex_model *m, int runs, eex_plan_costs *k) { return eex_plan_measure_idle(m, runs, 0.0, k); }

eex_status eex_plan_measure_idle(const eex_model *m, int runs, double idle_ms, eex_plan_costs *k)
{
    if (!m || !k || runs < 1)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_plan_measure: NULL argument or runs < 1");
    if (!(idle_ms >= 0) || idle_ms > 10000)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_plan_measure: idle gap %g ms is not in 0..10000", idle_ms);
    memset(k, 0, sizeof *k);
    if (eex_model_cut_count(m) < 1)
        return eex_fail(EEX_ERR_ARGUMENT, "plan: the model has no cut points");
    bench_ctx b = {.m = m, .idle_ms = idle_ms};
    eex_status st = eex_session_new(m, NULL, &b.s);
    if (st)
        return st;
    int64_t d[EEX_MAX_RANK];
    eex_model_input_shape(m, eex_model_image_input(m), d);
    b.c = (int)d[1], b.h = (int)d[2], b.w = (int)d[3];
    b.expert = eex_model_has_detector(m) ? EEX_EXPERT_AUTO : 0;
    uint64_t seed = 15;
    st = EEX_OK;
    for (int i = 0; i < IMAGES && !st; i++) {
        b.px[i] = malloc((size_t)b.h * b.w * b.c);
        if (!b.px[i]) {
            st = eex_fail(EEX_ERR_NOMEM, "plan: out of memory");
            break;
        }
        for (size_t q = 0; q < (size_t)b.h * b.w * b.c; q++)
            b.px[i][q] = (uint8_t)(eex_splitmix64(&seed) >> 56);
    }
    k->cuts = eex_model_cut_count(m);
    if (k->cuts > EEX_PLAN_MAX_CUTS)
        k->cuts = EEX_PLAN_MAX_CUTS;
    k->exits = eex_model_exit_count(m);
    const int exits = k->exits < EEX_MAX_EXITS ? k->exits : EEX_MAX_EXITS;
    /* the edge's runs: to each exit, then to each cut, timed in rounds */
    eex_policy pol[EEX_MAX_EXITS + EEX_PLAN_MAX_CUTS];
    double *out[EEX_MAX_EXITS + EEX_PLAN_MAX_CUTS];
    int n = 0;
    for (int x = 1; x <= exits; x++, n++) {
        pol[n] = (eex_policy){.threshold = 1.0f, .metric = EEX_METRIC_MAXPROB, .expert = b.expert, .cut = EEX_NO_CUT,
                              .force_exit = x};
        out[n] = &k->exit_ms[x];
    }
    for (int c = 0; c < k->cuts; c++, n++) {
        k->cut_exit[c] = eex_model_cut_exit(m, c);
        pol[n] = (eex_policy){.threshold = 1.0f, .metric = EEX_METRIC_MAXPROB, .expert = b.expert, .cut = c};
        out[n] = &k->edge_ms[c];
    }
    if (!st && time_policies(&b, pol, n, runs, out))
        st = eex_fail(EEX_ERR_STATE, "plan: timing the edge's runs: %s", eex_last_error());
    for (int c = 0; !st && c < k->cuts; c++)
        if (time_cut(&b, c, runs, k))
            st = eex_fail(EEX_ERR_STATE, "plan: timing cut %d: %s", c, eex_last_error());
    for (int i = 0; i < IMAGES; i++)
        free(b.px[i]);
    eex_session_free(b.s);
    return st;
}
