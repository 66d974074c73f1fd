/* The cloud server outside its loop: eex_server_new (a session per worker
 * over the shared read-only model, the limits the model implies, the wake
 * pipe and the listening socket), its settings (batching, key, limits per
 * address, replay window), the model swap a reload asks for, stats, stop
 * and free. The loop itself is server.c's, the workers server_work.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/status.h"
#include "server_int.h"

/* Per-worker buffers for batches of up to n requests. */
static eex_status alloc_batch(eex_server *s, int n)
{
    for (int i = 0; i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        free(w->x), free(w->ci), free(w->metric), free(w->threshold), free(w->ans), free(w->each);
        w->x = malloc(sizeof(float) * s->max_elems * (size_t)n);
        w->ci = malloc(sizeof(int) * (size_t)n);
        w->metric = malloc(sizeof(eex_metric) * (size_t)n);
        w->threshold = malloc(sizeof(float) * (size_t)n);
        w->ans = malloc(sizeof(eex_cloud_answer) * (size_t)n);
        w->each = malloc(sizeof(eex_status) * (size_t)n);
        if (!w->x || !w->ci || !w->metric || !w->threshold || !w->ans || !w->each)
            return eex_fail(EEX_ERR_NOMEM, "serve: out of memory for batches of %d", n);
    }
    return EEX_OK;
}

/* A batch runs layer by layer over all its images, so its activations must
 * stay in cache for the run to be no slower per image than one at a time
 * (measured: MobileNetV2 at cut 0, 300 KB per image, takes twice as long per
 * image at batch 16 as at batch 1; cut tensors of a few KB gain a little).
 * So a run holds at most RUN_CUT_BYTES of cut tensors and RUN_ARENA_BYTES of
 * activation arena, and is made of power-of-two pieces on sessions planned
 * once for each size (re-planning per run costs more than batching saves). */
#define RUN_CUT_BYTES (512u << 10)
#define RUN_ARENA_BYTES (32u << 20)

static int run_cap(const eex_server *s, int cut, size_t arena1)
{
    int64_t d[EEX_MAX_RANK];
    const int r = eex_model_cut_shape(s->m, cut, d);
    size_t bytes = sizeof(float);
    for (int i = 1; i < r; i++)
        bytes *= (size_t)d[i];
    size_t cap = RUN_CUT_BYTES / bytes;
    if (arena1 && RUN_ARENA_BYTES / arena1 < cap)
        cap = RUN_ARENA_BYTES / arena1;
    cap = cap < 1 ? 1 : cap;
    return cap < (size_t)s->max_batch ? (int)cap : s->max_batch;
}

eex_status eex_server_set_batch(eex_server *s, int max_batch, int max_wait_us)
{
    if (!s)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_server_set_batch: NULL server");
    if (max_batch < 1 || max_batch > 256 || max_wait_us < 0 || max_wait_us > 1000000)
        return eex_fail(EEX_ERR_ARGUMENT, "serve: batch %d (1..256) or wait %d us (0..1000000) out of range", max_batch,
                        max_wait_us);
    eex_status st = alloc_batch(s, max_batch);
    if (st)
        return st;
    s->max_batch = max_batch;
    s->max_wait_us = max_wait_us;
    const size_t arena1 = s->n_workers ? eex_session_arena_bytes(s->workers[0].s) : 0;
    for (int c = 0; c < eex_model_cut_count(s->m); c++)
        s->cut_cap[c] = run_cap(s, c, arena1);
    return EEX_OK;
}

eex_status eex_server_set_key(eex_server *s, const void *key, size_t len)
{
    if (!s || !key)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_server_set_key: NULL argument");
    if (len < EEX_KEY_MIN || len > EEX_KEY_MAX)
        return eex_fail(EEX_ERR_ARGUMENT, "serve: a key of %zu bytes (%d..%d)", len, EEX_KEY_MIN, EEX_KEY_MAX);
    if (!s->replay && !(s->replay = eexw_replay_new(EEX_REPLAY_WINDOW)))
        return eex_fail(EEX_ERR_NOMEM, "serve: out of memory for the replay window");
    eexw_key_init(&s->key, key, len);
    s->has_key = 1;
    return EEX_OK;
}

eex_status eex_server_set_conn_limit(eex_server *s, int max_per_addr)
{
    if (!s)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_server_set_conn_limit: NULL server");
    if (max_per_addr < 1 || max_per_addr > s->o.max_conns)
        return eex_fail(EEX_ERR_ARGUMENT, "serve: %d connections per address (1..%d, --max-conns)", max_per_addr,
                        s->o.max_conns);
    s->max_per_addr = max_per_addr;
    return EEX_OK;
}

eex_status eex_server_set_replay_window(eex_server *s, int window)
{
    if (!s)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_server_set_replay_window: NULL server");
    if (window < 1 || (uint32_t)window > EEXW_REPLAY_MAX)
        return eex_fail(EEX_ERR_ARGUMENT, "serve: replay window of %d requests (1..%u)", window, EEXW_REPLAY_MAX);
    eexw_replay *r = eexw_replay_new((uint32_t)window);
    if (!r)
        return eex_fail(EEX_ERR_NOMEM, "serve: out of memory for a replay window of %d requests", window);
    eexw_replay_free(s->replay);
    s->replay = r;
    return EEX_OK;
}

void eex_server_get_xstats(const eex_server *s, eex_server_xstats *x)
{
    if (!s || !x)
        return;
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    *x = s->xstats;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
}

/* The served model's digest, and in hex for messages. */
static void set_digest(eex_server *s, const uint8_t digest[EEX_DIGEST_BYTES])
{
    memmove(s->digest, digest, EEX_DIGEST_BYTES);
    for (int i = 0; i < EEX_DIGEST_BYTES; i++)
        snprintf(s->digest_hex + 2 * i, 3, "%02x", s->digest[i]);
}

/* Elements of the largest cut tensor: the largest legal INFER body is it as f32. */
static size_t largest_cut(const eex_model *m)
{
    size_t most = 0;
    for (int c = 0; c < eex_model_cut_count(m); c++) {
        int64_t d[EEX_MAX_RANK];
        const int r = eex_model_cut_shape(m, c, d);
        size_t e = 1;
        for (int i = 0; i < r; i++)
            e *= (size_t)d[i];
        most = e > most ? e : most;
    }
    return most;
}

eex_status eex_server_new(const eex_model *m, const eex_server_opts *opts, eex_server **out)
{
    if (!m || !out)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_server_new: NULL argument");
    *out = NULL;
    if (!eex_model_cut_count(m))
        return eex_fail(EEX_ERR_UNSUPPORTED, "serve: the model has no cut points (ee.cuts): nothing to finish");
    eex_server *s = calloc(1, sizeof *s);
    if (!s)
        return eex_fail(EEX_ERR_NOMEM, "serve: out of memory");
    s->m = m;
    s->o = opts ? *opts : (eex_server_opts){0};
    s->lfd = s->wake[0] = s->wake[1] = -1;
    if (!s->o.host)
        s->o.host = "127.0.0.1";
    if (s->o.threads <= 0)
        s->o.threads = 1;
    if (s->o.threads > 256 || s->o.max_conns > 65536) {
        const int t = s->o.threads, mc = s->o.max_conns;
        free(s);
        return eex_fail(EEX_ERR_ARGUMENT, "serve: %d worker threads (1..256) or %d connections (1..65536)", t, mc);
    }
    if (s->o.max_conns <= 0)
        s->o.max_conns = 256;
    if (s->o.frame_timeout_ms <= 0)
        s->o.frame_timeout_ms = 5000;
    if (s->o.idle_timeout_ms <= 0)
        s->o.idle_timeout_ms = 60000;
    if (s->o.write_timeout_ms <= 0)
        s->o.write_timeout_ms = 5000;
    if (s->o.drain_timeout_ms <= 0)
        s->o.drain_timeout_ms = 10000;
    s->max_per_addr = s->o.max_conns / 2 > 0 ? s->o.max_conns / 2 : 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->replay_mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->cv_idle, NULL);
    eex_status st = eex_model_digest(m, s->digest);
    set_digest(s, s->digest);
    s->max_elems = largest_cut(m);
    s->max_body = eexw_infer_body_max(EEX_MAX_RANK, s->max_elems, EEXW_F32);
    const int N = s->o.max_conns;
    s->conns = calloc((size_t)N, sizeof *s->conns);
    s->pfd = calloc((size_t)N + 2, sizeof *s->pfd);
    s->pmap = calloc((size_t)N + 2, sizeof *s->pmap);
    s->jobs = calloc((size_t)N, sizeof *s->jobs);
    s->done = calloc((size_t)N, sizeof *s->done);
    s->workers = calloc((size_t)s->o.threads, sizeof *s->workers);
    s->cut_cap = calloc((size_t)eex_model_cut_count(m), sizeof *s->cut_cap);
    if (!st && (!s->conns || !s->pfd || !s->pmap || !s->jobs || !s->done || !s->workers || !s->cut_cap))
        st = eex_fail(EEX_ERR_NOMEM, "serve: out of memory");
    for (int i = 0; !st && i < N; i++)
        s->conns[i].fd = -1;
    s->max_batch = 1;
    for (int c = 0; s->cut_cap && c < eex_model_cut_count(m); c++)
        s->cut_cap[c] = 1;
    for (int i = 0; !st && i < s->o.threads; i++) {
        worker *w = &s->workers[i];
        w->srv = s;
        eex_session_opts so = {.batch = 1, .threads = 1};
        if ((st = eex_session_new(m, &so, &w->s)))
            break;
        w->bs[0] = w->s;
        s->n_workers = i + 1;
        if (!(w->raw = malloc(sizeof(float) * s->max_elems)))
            st = eex_fail(EEX_ERR_NOMEM, "serve: out of memory");
    }
    if (!st)
        st = alloc_batch(s, 1);
    if (!st && pipe(s->wake) < 0)
        st = eex_fail(EEX_ERR_IO, "serve: pipe: %s", strerror(errno));
    if (!st) {
        eex_set_nonblock(s->wake[0]);
        eex_set_nonblock(s->wake[1]);
        fcntl(s->wake[0], F_SETFD, FD_CLOEXEC);
        fcntl(s->wake[1], F_SETFD, FD_CLOEXEC);
        st = eex_listen(s->o.host, s->o.port, &s->lfd, &s->port);
    }
    if (st) {
        eex_server_free(s);
        return st;
    }
    *out = s;
    return EEX_OK;
}

int eex_server_port(const eex_server *s) { return s ? s->port : -1; }

eex_status eex_server_set_reloader(eex_server *s, const eex_server_reloader *r)
{
    if (!s || !r || !r->open || !r->done)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_server_set_reloader: NULL argument");
    s->reloader = *r;
    return EEX_OK;
}

void eex_server_reload(eex_server *s)
{
    if (!s)
        return;
    atomic_store(&s->reload, 1);
    const char b = 'r';
    ssize_t r = write(s->wake[1], &b, 1);  /* async-signal-safe */
    (void)r;
}

/* Replaces the model on the I/O thread: everything the new model needs is
 * made first (a failure leaves the old model serving), then the workers are
 * parked between batches, and model, digest, limits and sessions change
 * while none computes. */
static eex_status swap_model(eex_server *s, const eex_model *nm)
{
    if (!eex_model_cut_count(nm))
        return eex_fail(EEX_ERR_UNSUPPORTED, "serve: the new model has no cut points (ee.cuts): nothing to finish");
    const int W = s->n_workers;
    uint8_t digest[EEX_DIGEST_BYTES];
    eex_status st = eex_model_digest(nm, digest);
    const size_t max_elems = largest_cut(nm);
    eex_session **ses = calloc((size_t)W, sizeof *ses);
    float **xs = calloc((size_t)W, sizeof *xs);
    uint8_t **raws = calloc((size_t)W, sizeof *raws);
    int *cap = calloc((size_t)eex_model_cut_count(nm), sizeof *cap);
    if (!st && (!ses || !xs || !raws || !cap))
        st = eex_fail(EEX_ERR_NOMEM, "serve: out of memory for the new model");
    for (int i = 0; !st && i < W; i++) {
        eex_session_opts so = {.batch = 1, .threads = 1};
        if ((st = eex_session_new(nm, &so, &ses[i])))
            break;
        xs[i] = malloc(sizeof(float) * max_elems * (size_t)s->max_batch);
        raws[i] = malloc(sizeof(float) * max_elems);
        if (!xs[i] || !raws[i])
            st = eex_fail(EEX_ERR_NOMEM, "serve: out of memory for the new model");
    }
    if (st) {
        for (int i = 0; ses && i < W; i++) {
            eex_session_free(ses[i]);
            free(xs[i]), free(raws[i]);
        }
        free(ses), free(xs), free(raws), free(cap);
        return st;
    }
    pthread_mutex_lock(&s->mu);
    s->swapping = 1;
    while (s->busy)
        pthread_cond_wait(&s->cv_idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    /* no worker holds a job, none takes one: the I/O thread owns everything */
    for (int i = 0; i < W; i++) {
        worker *w = &s->workers[i];
        for (int k = 0; k < 9; k++)
            eex_session_free(w->bs[k]), w->bs[k] = NULL;
        w->s = w->bs[0] = ses[i];
        free(w->x), free(w->raw);
        w->x = xs[i], w->raw = raws[i];
    }
    s->m = nm;
    set_digest(s, digest);
    s->max_elems = max_elems;
    s->max_body = eexw_infer_body_max(EEX_MAX_RANK, max_elems, EEXW_F32);
    free(s->cut_cap);
    s->cut_cap = cap;
    const size_t arena1 = eex_session_arena_bytes(s->workers[0].s);
    for (int c = 0; c < eex_model_cut_count(nm); c++)
        s->cut_cap[c] = run_cap(s, c, arena1);
    free(ses), free(xs), free(raws);
    pthread_mutex_lock(&s->mu);
    s->swapping = 0;
    s->xstats.reloads++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return EEX_OK;
}

void eex_srv_do_reload(eex_server *s)
{
    atomic_store(&s->reload, 0);
    if (!s->reloader.open)
        return;
    const eex_model *nm = s->reloader.open(s->reloader.user);
    if (!nm)
        return;
    const eex_model *old = s->m;
    const eex_status st = swap_model(s, nm);
    s->reloader.done(s->reloader.user, st ? nm : old, st);  /* refused: the old model stays */
}

void eex_server_stop(eex_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, 1);
    const char b = 'x';
    ssize_t r = write(s->wake[1], &b, 1);  /* async-signal-safe; a full pipe already wakes the loop */
    (void)r;
}

void eex_server_get_stats(const eex_server *s, eex_server_stats *st)
{
    if (!s || !st)
        return;
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    *st = s->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
}

void eex_server_free(eex_server *s)
{
    if (!s)
        return;
    for (int i = 0; s->conns && i < s->o.max_conns; i++) {
        if (s->conns[i].fd >= 0)
            close(s->conns[i].fd);
        free(s->conns[i].buf);
        free(s->conns[i].out);
    }
    for (int i = 0; s->workers && i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        for (int k = 0; k < 9; k++)
            eex_session_free(w->bs[k]);
        free(w->x), free(w->raw), free(w->ci), free(w->metric), free(w->threshold), free(w->ans), free(w->each);
    }
    memset(&s->key, 0, sizeof s->key);
    eexw_replay_free(s->replay);
    pthread_mutex_destroy(&s->replay_mu);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->wake[0] >= 0)
        close(s->wake[0]), close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->cv_idle);
    free(s->conns), free(s->pfd), free(s->pmap), free(s->jobs), free(s->done), free(s->workers), free(s->cut_cap);
    free(s);
}

