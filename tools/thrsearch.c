/* The per-exit search walks the candidate grid exit by exit, carrying only
 * the images no earlier exit answered, so a vector costs what its remaining
 * images cost (most images leave at exit 1). The frontiers are kept as one
 * best point per offload count and per correct count: O(N) memory whatever
 * the grid. */
#include "thrsearch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The answering classifier of an image no side exit took, by the exit rule
 * (eex_exit_choose) with the final classifier held to the last exit's threshold. */
static int final_answer(const evlog_rec *r, int E, const float *t)
{
    float th[EEX_MAX_EXITS + 1];
    memcpy(th, t, sizeof(float) * (size_t)E);
    th[E] = t[E - 1];
    return eex_exit_choose(r->conf, th, E + 1, NULL);
}

/* Image outcome under t: *off 1 when offloaded; returns 1 when correct. */
static int outcome(const evlog_rec *r, int E, const float *t, int *off, int *exit_k)
{
    for (int k = 0; k < E; k++)
        if (r->conf[k] > t[k]) {
            *off = 0, *exit_k = k;
            return r->pred[k] == r->label;
        }
    *off = 1, *exit_k = E;
    return r->pred[final_answer(r, E, t)] == r->label;
}

static double image_ms(const thr_costs *c, int E, int exit_k)
{
    if (!c || !c->have)
        return 0.0;
    return exit_k < E ? c->exit_ms[exit_k] : c->exit_ms[E - 1] + c->offload_ms;
}

void thr_eval(const evlog *log, const float *t, const thr_costs *c, thr_point *p)
{
    const int E = log->exits;
    memset(p, 0, sizeof *p);
    memcpy(p->t, t, sizeof(float) * (size_t)E);
    double ms = 0;
    for (long i = 0; i < log->n; i++) {
        int off, k;
        p->correct += outcome(&log->r[i], E, t, &off, &k);
        p->offload += off;
        ms += image_ms(c, E, k);
    }
    p->n = log->n;
    p->latency_ms = ms / (double)log->n;
}

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Sorted distinct values of v[0..n) with 0 and 1 added; returns the count. */
static int distinct(float *v, long n)
{
    v[n] = 0.0f, v[n + 1] = 1.0f;
    n += 2;
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    long m = 0;
    for (long i = 0; i < n; i++)
        if (!m || v[i] != v[m - 1])
            v[m++] = v[i];
    return (int)m;
}

typedef struct search {
    const evlog *log;
    const thr_search_opts *o;
    int E;
    float *grid[EEX_MAX_EXITS];
    int ng[EEX_MAX_EXITS];
    long *list[EEX_MAX_EXITS];
    float t[EEX_MAX_EXITS];
    thr_search_result *res;
    thr_point *by_off, *by_correct;   /* best point per offload count / per correct count */
    char *have_off, *have_correct;
} search;

static int feasible(const thr_search_opts *o, const thr_point *p)
{
    if (o->obj == OBJ_MAX_ACCURACY)
        return (double)p->offload <= o->budget * (double)p->n + 1e-9;
    return (double)p->correct >= o->floor * (double)p->n - 1e-9;
}

/* 1 when a beats b under the objective (ties: the next criteria). */
static int better(const thr_search_opts *o, const thr_point *a, const thr_point *b)
{
    switch (o->obj) {
    case OBJ_MAX_ACCURACY:
        if (a->correct != b->correct)
            return a->correct > b->correct;
        if (a->offload != b->offload)
            return a->offload < b->offload;
        return a->latency_ms < b->latency_ms;
    case OBJ_MIN_OFFLOAD:
        if (a->offload != b->offload)
            return a->offload < b->offload;
        if (a->correct != b->correct)
            return a->correct > b->correct;
        return a->latency_ms < b->latency_ms;
    default:
        if (a->latency_ms != b->latency_ms)
            return a->latency_ms < b->latency_ms;
        if (a->correct != b->correct)
            return a->correct > b->correct;
        return a->offload < b->offload;
    }
}

static void consider(search *s, const thr_point *p)
{
    thr_search_result *res = s->res;
    res->evaluated++;
    if (feasible(s->o, p) && (!res->found || better(s->o, p, &res->best))) {
        res->best = *p;
        res->found = 1;
    }
    const long f = p->offload, c = p->correct;
    if (!s->have_off[f] || p->correct > s->by_off[f].correct ||
        (p->correct == s->by_off[f].correct && p->latency_ms < s->by_off[f].latency_ms))
        s->by_off[f] = *p, s->have_off[f] = 1;
    if (!s->have_correct[c] || p->latency_ms < s->by_correct[c].latency_ms)
        s->by_correct[c] = *p, s->have_correct[c] = 1;
}

static void walk(search *s, int k, long n, long correct, double ms)
{
    const evlog_rec *R = s->log->r;
    const int E = s->E;
    const thr_costs *c = &s->o->costs;
    for (int g = 0; g < s->ng[k]; g++) {
        const float t = s->grid[k][g];
        s->t[k] = t;
        long cc = correct, m = 0, off = 0;
        double l = ms;
        if (k < E - 1) {
            for (long j = 0; j < n; j++) {
                const evlog_rec *r = &R[s->list[k][j]];
                if (r->conf[k] > t)
                    cc += r->pred[k] == r->label, l += image_ms(c, E, k);
                else
                    s->list[k + 1][m++] = s->list[k][j];
            }
            walk(s, k + 1, m, cc, l);
            continue;
        }
        for (long j = 0; j < n; j++) {
            const evlog_rec *r = &R[s->list[k][j]];
            if (r->conf[k] > t) {
                cc += r->pred[k] == r->label, l += image_ms(c, E, k);
                continue;
            }
            /* offloaded: the final answers above the last exit's threshold, else the most confident */
            cc += r->pred[final_answer(r, E, s->t)] == r->label;
            off++;
            l += image_ms(c, E, E);
        }
        thr_point p = {.correct = cc, .offload = off, .n = s->log->n, .latency_ms = l / (double)s->log->n};
        memcpy(p.t, s->t, sizeof(float) * (size_t)E);
        consider(s, &p);
    }
}

static int search_single(const evlog *log, const thr_search_opts *o, thr_search_result *res)
{
    const int E = log->exits;
    const long N = log->n;
    float *v = malloc(sizeof(float) * ((size_t)N * (size_t)(E + 1) + 2));
    if (!v)
        return -1;
    long n = 0;
    for (long i = 0; i < N; i++)
        for (int k = 0; k <= E; k++)
            v[n++] = log->r[i].conf[k];
    const int m = distinct(v, n);
    for (int g = 0; g < m; g++) {
        float t[EEX_MAX_EXITS];
        for (int k = 0; k < E; k++)
            t[k] = v[g];
        thr_point p;
        thr_eval(log, t, &o->costs, &p);
        if (feasible(o, &p) && (!res->single_found || better(o, &p, &res->single)))
            res->single = p, res->single_found = 1;
    }
    free(v);
    return 0;
}

int thr_search(const evlog *log, const thr_search_opts *o, thr_search_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    const int E = log->exits;
    const long N = log->n;
    if (E < 1) {
        snprintf(err, errlen, "the log has no side exits (one confidence per line)");
        return -1;
    }
    for (long i = 0; i < N; i++)
        if (log->r[i].label < 0) {
            snprintf(err, errlen, "line of image %ld has no label", log->r[i].index);
            return -1;
        }
    search s = {.log = log, .o = o, .E = E, .res = res};
    int rc = -1;
    double combos = 1;
    s.by_off = calloc((size_t)N + 1, sizeof *s.by_off);
    s.by_correct = calloc((size_t)N + 1, sizeof *s.by_correct);
    s.have_off = calloc((size_t)N + 1, 1);
    s.have_correct = calloc((size_t)N + 1, 1);
    if (!s.by_off || !s.by_correct || !s.have_off || !s.have_correct)
        goto oom;
    res->exact = 1;
    for (int k = 0; k < E; k++) {
        /* exit k's observed values; the last exit's also the final's (its threshold is the final's) */
        const int with_final = k == E - 1;
        float *v = malloc(sizeof(float) * ((size_t)N * 2 + 2));
        s.list[k] = malloc(sizeof(long) * (size_t)N);
        if (!v || !s.list[k]) {
            free(v);
            goto oom;
        }
        long n = 0;
        for (long i = 0; i < N; i++) {
            v[n++] = log->r[i].conf[k];
            if (with_final)
                v[n++] = log->r[i].conf[E];
        }
        int m = distinct(v, n);
        if (o->grid > 0 && m > o->grid + 2) {
            /* quantiles of the distinct values, and the ends */
            float *q = malloc(sizeof(float) * (size_t)(o->grid + 2));
            if (!q) {
                free(v);
                goto oom;
            }
            int mq = 0;
            for (int g = 0; g < o->grid; g++) {
                const float x = v[1 + (long)((double)g * (double)(m - 3) / (double)(o->grid > 1 ? o->grid - 1 : 1) + 0.5)];
                if (!mq || x != q[mq - 1])
                    q[mq++] = x;
            }
            q[mq++] = 1.0f;
            memmove(q + 1, q, sizeof(float) * (size_t)mq);
            q[0] = 0.0f;
            mq++;
            free(v);
            v = q, m = mq;
            res->exact = 0;
        }
        s.grid[k] = v, s.ng[k] = m;
        res->grid_size[k] = m;
        combos *= m;
    }
    if (combos > 2e8) {
        snprintf(err, errlen, "%.3g threshold vectors to evaluate; use a coarser --grid", combos);
        goto done;
    }
    for (long i = 0; i < N; i++)
        s.list[0][i] = i;
    walk(&s, 0, N, 0, 0.0);
    if (search_single(log, o, res))
        goto oom;
    if (res->single_found) {
        thr_point p;
        thr_eval(log, res->single.t, &o->costs, &p);
        consider(&s, &p);  /* the grid need not hold the single optimum: per-exit is never worse */
    }
    /* frontiers: accuracy rising with offload; accuracy falling as latency falls */
    res->front_off = malloc(sizeof(thr_point) * ((size_t)N + 1));
    res->front_lat = malloc(sizeof(thr_point) * ((size_t)N + 1));
    if (!res->front_off || !res->front_lat)
        goto oom;
    long best = -1;
    for (long f = 0; f <= N; f++)
        if (s.have_off[f] && s.by_off[f].correct > best)
            res->front_off[res->n_front_off++] = s.by_off[f], best = s.by_off[f].correct;
    if (o->costs.have) {
        double lo = INFINITY;
        for (long c = N; c >= 0; c--)
            if (s.have_correct[c] && s.by_correct[c].latency_ms < lo)
                res->front_lat[res->n_front_lat++] = s.by_correct[c], lo = s.by_correct[c].latency_ms;
        for (long a = 0, b = res->n_front_lat - 1; a < b; a++, b--) {
            const thr_point t = res->front_lat[a];
            res->front_lat[a] = res->front_lat[b], res->front_lat[b] = t;
        }
    }
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory");
done:
    for (int k = 0; k < E; k++)
        free(s.grid[k]), free(s.list[k]);
    free(s.by_off), free(s.by_correct), free(s.have_off), free(s.have_correct);
    if (rc)
        thr_search_free(res);
    return rc;
}

void thr_search_free(thr_search_result *res)
{
    free(res->front_off), free(res->front_lat);
    res->front_off = res->front_lat = NULL;
}

int thr_bootstrap(const evlog *log, const float *t, const thr_costs *c, int B, uint64_t seed, double ci[3][2])
{
    const int E = log->exits;
    const long N = log->n;
    unsigned char *ok = malloc((size_t)N * 2);
    double *ms = malloc(sizeof(double) * (size_t)N), *stat = malloc(sizeof(double) * (size_t)B * 3);
    if (!ok || !ms || !stat) {
        free(ok), free(ms), free(stat);
        return -1;
    }
    for (long i = 0; i < N; i++) {
        int off, k;
        ok[2 * i] = (unsigned char)outcome(&log->r[i], E, t, &off, &k);
        ok[2 * i + 1] = (unsigned char)off;
        ms[i] = image_ms(c, E, k);
    }
    uint64_t st = seed;
    for (int b = 0; b < B; b++) {
        long cor = 0, off = 0;
        double l = 0;
        for (long j = 0; j < N; j++) {
            const long i = (long)(eex_splitmix64(&st) % (uint64_t)N);
            cor += ok[2 * i], off += ok[2 * i + 1], l += ms[i];
        }
        stat[b] = (double)cor / (double)N;
        stat[B + b] = (double)off / (double)N;
        stat[2 * B + b] = l / (double)N;
    }
    for (int q = 0; q < 3; q++) {
        double *v = stat + (size_t)q * (size_t)B;
        qsort(v, (size_t)B, sizeof *v, cli_cmp_double);
        /* percentile interval: the 2.5% and 97.5% order statistics */
        ci[q][0] = v[(int)floor(0.025 * (B - 1))];
        ci[q][1] = v[(int)ceil(0.975 * (B - 1))];
    }
    free(ok), free(ms), free(stat);
    return 0;
}

int thr_bootstrap_gain(const evlog *log, const float *ta, const float *tb, int B, uint64_t seed, double *diff,
                       double ci[2])
{
    const int E = log->exits;
    const long N = log->n;
    signed char *d = malloc((size_t)N);
    double *stat = malloc(sizeof(double) * (size_t)(B > 0 ? B : 1));
    if (!d || !stat) {
        free(d), free(stat);
        return -1;
    }
    long sum = 0;
    for (long i = 0; i < N; i++) {
        int off, k;
        d[i] = (signed char)(outcome(&log->r[i], E, ta, &off, &k) - outcome(&log->r[i], E, tb, &off, &k));
        sum += d[i];
    }
    *diff = (double)sum / (double)N;
    uint64_t st = seed;
    for (int b = 0; b < B; b++) {
        long s = 0;
        for (long j = 0; j < N; j++)
            s += d[eex_splitmix64(&st) % (uint64_t)N];
        stat[b] = (double)s / (double)N;
    }
    ci[0] = ci[1] = *diff;
    if (B > 0) {
        qsort(stat, (size_t)B, sizeof *stat, cli_cmp_double);
        ci[0] = stat[(int)floor(0.025 * (B - 1))];
        ci[1] = stat[(int)ceil(0.975 * (B - 1))];
    }
    free(d), free(stat);
    return 0;
}
