/* The cloud: `eex serve`. One I/O thread runs a poll() loop over the
 * listening socket, a wake pipe and every connection; a pool of workers, each
 * with its own session over the shared read-only model, does the compute.
 *
 * A connection is a small state machine: READ (header, then body) -> WORK
 * (a worker owns it) -> WRITE -> READ. One request is in flight per
 * connection, so nothing is read while a worker holds the buffer. Every
 * length is checked against the model-derived limit before a byte is
 * allocated for it; a frame must arrive whole within frame_timeout_ms of its
 * first byte (slow-drip senders are cut off); a bad frame earns an error
 * frame and, when the stream can no longer be trusted, a close of that
 * connection only. Stop (async-signal-safe) closes the listener, lets
 * requests in flight finish and closes the rest.
 *
 * Batching: complete INFER frames wait in one FIFO; a worker takes the
 * oldest and, up to the batch limit, the others waiting for the same cut
 * and expert (leaving a share for idle workers), and finishes them in one
 * run of the remaining layers (offload/resume.c; pieces of power-of-two
 * sizes on sessions planned once per size, capped per cut, see run_cap).
 * With a key, an INFER's tag is checked by the worker (hashing a large
 * tensor must not stall the I/O thread; the I/O thread checks PINGs, whose
 * bodies are empty), and so is the request id sequence of the connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../base/status.h"
#include "offload.h"

enum { C_FREE = 0, C_READ, C_WORK, C_WRITE };

typedef struct conn {
    int fd, state;
    uint8_t hdr[EEXW_HEADER];
    size_t hgot;
    eexw_header h;
    uint8_t *buf;                  /* the whole frame: header, body, CRC */
    size_t cap, need, got;
    double frame_start, idle_since, write_start, done_at;
    double taken_at, computed_at;  /* a worker took the frame; its run ended (the log's breakdown) */
    uint8_t *out;                  /* the reply frame */
    size_t out_cap, out_len, out_off;
    int close_after;
    int key_cut, key_expert;       /* batching key, read from the body by the I/O thread */
    uint64_t last_id;              /* highest authenticated request id on this connection */
    uint8_t req_tag[EEXW_TAG];     /* the request's tag (zeros until read): replies are bound to it */
    int has_id;
    uint64_t frames;               /* frames completed: 0 = the first byte is still awaited */
    int family;                    /* the peer's address, for the per-address cap */
    uint8_t addr[16];
    char peer[64];
    /* the log line of the request in flight */
    int type, cut, expert, dtype, error, exit, cls;
    float confidence;
    double ms;
    char reason[EEXW_MAX_REASON + 1];
} conn;

typedef struct worker {
    struct eex_server *srv;
    pthread_t tid;
    eex_session *s;                /* batch 1 (= bs[0]) */
    eex_session *bs[9];            /* bs[k]: planned for batch 2^k, made on first use */
    float *x;                      /* decoded cut tensors, one per batch member */
    uint8_t *raw;                  /* unpacked payload */
    int *ci;                       /* the batch: conn indices */
    eex_metric *metric;
    float *threshold;
    eex_cloud_answer *ans;
    eex_status *each;
} worker;

struct eex_server {
    const eex_model *m;
    eex_server_opts o;
    uint8_t digest[EEX_DIGEST_BYTES];
    char digest_hex[2 * EEX_DIGEST_BYTES + 1];
    int lfd, port;
    int wake[2];                   /* self-pipe: stop and finished jobs */
    atomic_int stopping;           /* lock-free: set from a signal handler */
    int has_key;
    eexw_key key;
    eexw_replay *replay;           /* recent INFER tags, across connections (with a key) */
    pthread_mutex_t replay_mu;
    int max_batch, max_wait_us;
    int max_per_addr;
    int *cut_cap;                  /* per cut: the largest run worth making (see run_cap) */
    size_t max_body, max_elems;
    conn *conns;
    struct pollfd *pfd;
    int *pmap;                     /* pollfd index -> conn index */
    int n_workers;
    worker *workers;
    pthread_mutex_t mu;            /* the two queues and stats */
    pthread_cond_t cv;
    int *jobs, jobs_n;             /* FIFO of conn indices waiting for a worker */
    int *done, done_n;             /* conn indices whose reply is ready */
    int idle;                      /* workers waiting for jobs */
    int busy;                      /* workers holding jobs (taken, not yet done) */
    int swapping;                  /* a model swap is waiting for busy == 0: take no jobs */
    pthread_cond_t cv_idle;        /* busy fell to 0 */
    atomic_int reload;             /* set by eex_server_reload (a signal handler) */
    eex_server_reloader reloader;
    int quit;
    eex_server_stats stats;
    eex_server_xstats xstats;
};

static void set_nonblock(int fd)
{
    const int fl = fcntl(fd, F_GETFL, 0);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

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
    for (int i = 0; i < EEX_DIGEST_BYTES; i++)
        snprintf(s->digest_hex + 2 * i, 3, "%02x", s->digest[i]);
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
        set_nonblock(s->wake[0]);
        set_nonblock(s->wake[1]);
        fcntl(s->wake[0], F_SETFD, FD_CLOEXEC);
        fcntl(s->wake[1], F_SETFD, FD_CLOEXEC);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
        char ps[16];
        snprintf(ps, sizeof ps, "%d", s->o.port);
        const int gai = getaddrinfo(s->o.host, ps, &hints, &res);
        if (gai || !res)
            st = eex_fail(EEX_ERR_ARGUMENT, "serve: cannot resolve '%s': %s", s->o.host, gai ? gai_strerror(gai) : "no address");
        else {
            s->lfd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
            const int one = 1;
            if (s->lfd >= 0) {
                setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                /* accepted connections inherit it: a pacing congestion
                 * control (BBR) held a RESULT behind the PONG sent just
                 * before it by PONG bytes / its app-limited pacing rate
                 * (5 ms on a 10 ms path); docs/results/offload.md */
                if (setsockopt(s->lfd, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5) < 0)
                    setsockopt(s->lfd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4);
            }
            if (s->lfd < 0 || bind(s->lfd, res->ai_addr, res->ai_addrlen) < 0 || listen(s->lfd, 128) < 0)
                st = eex_fail(EEX_ERR_IO, "serve: cannot listen on %s:%d: %s", s->o.host, s->o.port, strerror(errno));
            freeaddrinfo(res);
        }
    }
    if (!st) {
        set_nonblock(s->lfd);
        struct sockaddr_storage a;
        socklen_t al = sizeof a;
        getsockname(s->lfd, (struct sockaddr *)&a, &al);
        s->port = ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port : ((struct sockaddr_in *)&a)->sin_port);
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
    memcpy(s->digest, digest, sizeof digest);
    for (int i = 0; i < EEX_DIGEST_BYTES; i++)
        snprintf(s->digest_hex + 2 * i, 3, "%02x", s->digest[i]);
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

static void do_reload(eex_server *s)
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

/* ---- replies ---- */

static int reserve_out(conn *c, size_t n)
{
    if (n <= c->out_cap)
        return 0;
    uint8_t *p = realloc(c->out, n);
    if (!p)
        return -1;
    c->out = p, c->out_cap = n;
    return 0;
}

/* Builds an error frame in c->out (falls back to closing when memory is short). */
static void put_error(eex_server *s, conn *c, uint64_t id, int code, const char *reason)
{
    c->error = code;
    snprintf(c->reason, sizeof c->reason, "%s", reason);
    if (reserve_out(c, EEXW_HEADER + 4 + EEXW_MAX_REASON + EEXW_TAG + EEXW_TRAILER)) {
        c->out_len = 0;
        c->close_after = 1;
        return;
    }
    const uint32_t n = eexw_put_error(c->out + EEXW_HEADER, code, reason);
    eexw_put_header(c->out, EEXW_ERROR, id, n);
    c->out_len = eexw_finish_reply(c->out, n, s->has_key ? &s->key : NULL, c->req_tag);
    c->out_off = 0;
    if (code != EEXW_E_DIGEST && code != EEXW_E_REQUEST && code != EEXW_E_NUMERIC && code != EEXW_E_INTERNAL)
        c->close_after = 1;
}

static void put_result(eex_server *s, conn *c, eex_cloud_answer *a)
{
    a->server_ms = eex_now_ms() - c->done_at;
    if (reserve_out(c, EEXW_HEADER + EEXW_RESULT_FIXED + EEXW_RESULT_ENTRY * (EEX_MAX_EXITS + 1) + EEXW_TAG +
                           EEXW_TRAILER)) {
        put_error(s, c, c->h.request_id, EEXW_E_INTERNAL, "out of memory");
        return;
    }
    const uint32_t n = eexw_put_result(c->out + EEXW_HEADER, a);
    eexw_put_header(c->out, EEXW_RESULT, c->h.request_id, n);
    c->out_len = eexw_finish_reply(c->out, n, s->has_key ? &s->key : NULL, c->req_tag);
    c->out_off = 0;
    c->exit = a->exit, c->cls = a->cls, c->confidence = a->confidence;
}

/* ---- workers ---- */

/* A tag and a fresh request id, when the server has a key: 0 or the error. */
static int authenticate(eex_server *s, conn *c, char *reason, size_t cap)
{
    if (!s->has_key)
        return 0;
    const int r = eexw_auth_check(c->buf, c->h.body_len, &s->key);
    if (r) {
        snprintf(reason, cap, "%s", r == 1 ? "frame not authenticated: this server requires an HMAC-SHA256 tag (--key)"
                                           : "wrong HMAC-SHA256 tag: another key, or the frame was altered");
        return EEXW_E_AUTH;
    }
    if (c->has_id && c->h.request_id <= c->last_id) {
        snprintf(reason, cap, "request id %llu replayed: the last on this connection was %llu",
                 (unsigned long long)c->h.request_id, (unsigned long long)c->last_id);
        return EEXW_E_REPLAY;
    }
    c->last_id = c->h.request_id;
    c->has_id = 1;
    /* across connections: an INFER frame's tag once only (PINGs repeat by
     * design: a load balancer's health check is one fixed frame) */
    if (c->h.type == EEXW_INFER && s->replay) {
        pthread_mutex_lock(&s->replay_mu);
        const int seen = eexw_replay_seen(s->replay, c->req_tag);
        pthread_mutex_unlock(&s->replay_mu);
        if (seen) {
            snprintf(reason, cap, "request id %llu: this very frame was accepted before (replayed, maybe on another "
                                  "connection)", (unsigned long long)c->h.request_id);
            return EEXW_E_REPLAY;
        }
    }
    return 0;
}

/* Checks an INFER frame and decodes its tensor into x: 0, or an error frame
 * is already in c->out. */
static int prepare(eex_server *s, worker *w, conn *c, float *x, eexw_infer *q)
{
    const uint8_t *body = c->buf + EEXW_HEADER;
    char reason[EEXW_MAX_REASON];
    int err = authenticate(s, c, reason, sizeof reason);
    if (!err)
        err = eexw_get_infer(body, c->h.body_len, q, reason, sizeof reason);
    if (!err)
        c->cut = q->cut, c->expert = q->expert, c->dtype = q->dtype;
    if (!err && memcmp(q->digest, s->digest, EEX_DIGEST_BYTES)) {
        char hex[13];
        for (int i = 0; i < 6; i++)
            snprintf(hex + 2 * i, 3, "%02x", q->digest[i]);
        snprintf(reason, sizeof reason,
                 "model digest mismatch: this server runs '%s' (sha256 %.12s...), the request is for sha256 %s...",
                 eex_model_name(s->m) ? eex_model_name(s->m) : "?", s->digest_hex, hex);
        err = EEXW_E_DIGEST;
    }
    if (!err && q->cut >= eex_model_cut_count(s->m))
        err = EEXW_E_REQUEST,
        snprintf(reason, sizeof reason, "cut %d out of range (model has %d)", q->cut, eex_model_cut_count(s->m));
    if (!err && q->expert >= eex_model_expert_count(s->m))
        err = EEXW_E_REQUEST,
        snprintf(reason, sizeof reason, "expert %d out of range (model has %d)", q->expert,
                 eex_model_expert_count(s->m));
    if (!err) {
        int64_t want[EEX_MAX_RANK];
        const int wr = eex_model_cut_shape(s->m, q->cut, want);
        int ok = q->rank == wr && q->dims[0] == 1;
        for (int d = 1; ok && d < wr; d++)
            ok = q->dims[d] == want[d];
        if (!ok)
            err = EEXW_E_REQUEST, snprintf(reason, sizeof reason, "cut %d '%s' takes a [1,%lld%s] tensor", q->cut,
                                           eex_model_cut_name(s->m, q->cut), (long long)want[1], wr == 4 ? ",H,W" : "");
    }
    const uint8_t *raw = q->payload;
    const size_t groups = q->rank > 1 ? (size_t)q->dims[1] : 1;
    const size_t unit = q->dtype == EEXW_Q4 ? 1 : eexw_dtype_size(q->dtype);
    if (!err && q->packing == 1) {
        if (eexw_unpack(q->payload, q->payload_len, eexw_raw_bytes(q->dtype, q->elems, groups) / unit, unit, w->raw))
            err = EEXW_E_REQUEST, snprintf(reason, sizeof reason, "malformed packed payload");
        raw = w->raw;
    }
    if (!err && eexw_decode_ch(raw, q->elems, groups, q->dtype, q->scale, q->zero_point, x))
        err = EEXW_E_REQUEST, snprintf(reason, sizeof reason, "q4 channel parameters are not finite");
    if (err) {
        if (err == EEXW_E_AUTH || err == EEXW_E_REPLAY) {
            pthread_mutex_lock(&s->mu);
            err == EEXW_E_AUTH ? s->xstats.auth_rejected++ : s->xstats.replays++;
            pthread_mutex_unlock(&s->mu);
        }
        put_error(s, c, c->h.request_id, err, reason);
        return err;
    }
    return 0;
}

/* Answers the n requests in w->ci: each is checked and decoded; those for
 * the cut and expert of the first valid one run together, the others
 * (a different key read from a malformed body) one at a time. */
static void handle_batch(eex_server *s, worker *w, int n)
{
    int m = 0;  /* valid requests, compacted to the front of w->ci */
    int cut = -1, expert = -1;
    size_t elems = 0;
    for (int i = 0; i < n; i++) {
        conn *c = &s->conns[w->ci[i]];
        eexw_infer q;
        if (prepare(s, w, c, w->x + elems * (size_t)m, &q))
            continue;
        if (m && (q.cut != cut || q.expert != expert)) {  /* another key: alone, now */
            const float *x = w->x + elems * (size_t)m;  /* prepare decoded it there */
            eex_status each;
            const eex_metric mt = (eex_metric)q.metric;
            eex_status st = eex_offload_resume_batch(w->s, q.cut, x, 1, q.expert, &mt, &q.threshold, w->ans, &each);
            if (st || each)
                put_error(s, c, c->h.request_id, (st ? st : each) == EEX_ERR_NUMERIC ? EEXW_E_NUMERIC : EEXW_E_INTERNAL,
                          eex_last_error());
            else
                put_result(s, c, w->ans);
            continue;
        }
        cut = q.cut, expert = q.expert, elems = q.elems;
        w->metric[m] = (eex_metric)q.metric;
        w->threshold[m] = q.threshold;
        w->ci[m++] = w->ci[i];
    }
    /* the invalid ones already hold their error frames */
    if (!m)
        return;
    char reason[EEXW_MAX_REASON];
    int runs = 0, largest = 0;
    for (int done = 0; done < m;) {
        int k = 0;  /* the largest power of two that fits */
        while (k < 8 && (1 << (k + 1)) <= m - done)
            k++;
        const int piece = 1 << k;
        eex_status st = EEX_OK;
        if (!w->bs[k]) {
            eex_session_opts so = {.batch = piece, .threads = 1};
            st = eex_session_new(s->m, &so, &w->bs[k]);
        }
        if (!st)
            st = eex_offload_resume_batch(w->bs[k], cut, w->x + elems * (size_t)done, piece, expert, w->metric + done,
                                          w->threshold + done, w->ans + done, w->each + done);
        if (st)
            snprintf(reason, sizeof reason, "%s", eex_last_error());
        for (int i = done; i < done + piece; i++) {
            conn *c = &s->conns[w->ci[i]];
            if (st)
                put_error(s, c, c->h.request_id, st == EEX_ERR_NUMERIC ? EEXW_E_NUMERIC
                                                 : st == EEX_ERR_NOMEM ? EEXW_E_INTERNAL : EEXW_E_REQUEST, reason);
            else if (w->each[i])
                put_error(s, c, c->h.request_id, w->each[i] == EEX_ERR_NUMERIC ? EEXW_E_NUMERIC : EEXW_E_INTERNAL,
                          "the tensor gave non-finite logits");
            else
                put_result(s, c, &w->ans[i]);
        }
        done += piece;
        runs++;
        largest = piece > largest ? piece : largest;
    }
    pthread_mutex_lock(&s->mu);
    s->xstats.runs += (uint64_t)runs;
    s->xstats.batched += m > 1 ? (uint64_t)m : 0;
    s->xstats.max_batch = largest > s->xstats.max_batch ? largest : s->xstats.max_batch;
    pthread_mutex_unlock(&s->mu);
}

static int same_key(const conn *a, const conn *b) { return a->key_cut == b->key_cut && a->key_expert == b->key_expert; }

/* The most requests of c's key worth one run. */
static int key_cap(const eex_server *s, const conn *c)
{
    return c->key_cut >= 0 && c->key_cut < eex_model_cut_count(s->m) ? s->cut_cap[c->key_cut] : 1;
}

/* With s->mu held: moves into out[] the oldest job and the others waiting
 * for its key, at most cap and at most a fair share when other workers are
 * idle; returns how many. `like` (or NULL: the oldest job) gives the key. */
static int take_jobs(eex_server *s, const conn *like, int *out, int cap)
{
    if (!s->jobs_n || cap < 1)
        return 0;
    if (!like)
        like = &s->conns[s->jobs[0]];
    cap = cap < key_cap(s, like) ? cap : key_cap(s, like);
    int same = 0;
    for (int i = 0; i < s->jobs_n; i++)
        same += same_key(&s->conns[s->jobs[i]], like);
    int want = s->idle > 0 ? (same + s->idle) / (s->idle + 1) : same;
    want = want < 1 ? 1 : want > cap ? cap : want;
    int n = 0, k = 0;
    for (int i = 0; i < s->jobs_n; i++) {
        const int ci = s->jobs[i];
        if (n < want && same_key(&s->conns[ci], like))
            out[n++] = ci;
        else
            s->jobs[k++] = ci;
    }
    s->jobs_n = k;
    return n;
}

/* The worker sends the reply itself, as far as the socket takes it without
 * blocking (the connection is the worker's: the I/O thread does not poll
 * it in C_WORK). Handing the reply to the I/O thread through the wake pipe
 * cost a second wake-up per request: on the loaded 2 cores 0.9 ms on
 * average, 2.6 ms at the 90th percentile, up to 8.5 ms (docs/results/
 * offload.md, "The 10 ms path, step by step"). The I/O thread still finishes the write (what is left,
 * errors) and resets the connection. Built with -DEEX_SERVE_IO_REPLY, the
 * I/O thread writes every reply (the old path, for comparison). */
static void worker_write(conn *c)
{
#ifndef EEX_SERVE_IO_REPLY
    while (c->fd >= 0 && c->out_off < c->out_len) {
        const ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            c->out_off += (size_t)w;
        else if (!(w < 0 && errno == EINTR))
            return;  /* full, or an error: the I/O thread's try_write sees it */
    }
#else
    (void)c;
#endif
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    eex_server *s = w->srv;
    /* signals go to the main thread only */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while ((!s->jobs_n || s->swapping) && !s->quit) {
            s->idle++;
            pthread_cond_wait(&s->cv, &s->mu);
            s->idle--;
        }
        if (!s->jobs_n && s->quit)
            break;
        int n = take_jobs(s, NULL, w->ci, s->max_batch);
        s->busy++;
        const int limit = key_cap(s, &s->conns[w->ci[0]]);
        if (n < limit && s->max_wait_us > 0 && !s->quit) {
            /* a short wait for more of the same key */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += (long)s->max_wait_us * 1000;
            until.tv_sec += until.tv_nsec / 1000000000;
            until.tv_nsec %= 1000000000;
            const conn *like = &s->conns[w->ci[0]];
            while (n < limit && !s->quit) {
                if (pthread_cond_timedwait(&s->cv, &s->mu, &until))
                    break;
                n += take_jobs(s, like, w->ci + n, limit - n);
            }
            n += take_jobs(s, like, w->ci + n, limit - n);
            if (s->jobs_n)
                pthread_cond_signal(&s->cv);  /* the wake-up may have been meant for another worker */
        }
        pthread_mutex_unlock(&s->mu);
        const double taken = eex_now_ms();
        for (int i = 0; i < n; i++)
            s->conns[w->ci[i]].taken_at = taken;
        handle_batch(s, w, n);
        const double t = eex_now_ms();
        for (int i = 0; i < n; i++) {
            conn *c = &s->conns[w->ci[i]];
            c->ms = t - c->done_at;
            c->computed_at = t;
            worker_write(c);
        }
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < n; i++)
            s->done[s->done_n++] = w->ci[i];
        if (!--s->busy)
            pthread_cond_broadcast(&s->cv_idle);
        const char b = 'j';
        ssize_t r = write(s->wake[1], &b, 1);
        (void)r;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- the I/O thread ---- */

static void log_request(eex_server *s, conn *c)
{
    pthread_mutex_lock(&s->mu);
    if (c->error)
        s->stats.errors++;
    else if (c->type == EEXW_INFER)
        s->stats.requests++;
    pthread_mutex_unlock(&s->mu);
    if (!s->o.log)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    eex_server_log_rec rec = {
        .unix_time = (double)ts.tv_sec + ts.tv_nsec / 1e9,
        .request_id = c->h.request_id,
        .peer = c->peer,
        .type = c->type,
        .cut = c->cut,
        .expert = c->expert,
        .dtype = eexw_dtype_name(c->dtype),
        .bytes_in = c->need ? c->need : c->hgot,
        .bytes_out = c->out_len,
        .ms = c->ms,
        .error = c->error,
        .reason = c->reason,
        .exit = c->error ? 0 : c->exit,
        .cls = c->error ? -1 : c->cls,
        .confidence = c->error ? 0.0f : c->confidence,
        .recv_at = c->done_at,
    };
    if (c->computed_at > 0 && c->taken_at >= c->done_at) {  /* a worker's: the breakdown */
        rec.queue_ms = c->taken_at - c->done_at;
        rec.compute_ms = c->computed_at - c->taken_at;
        rec.handoff_ms = eex_now_ms() - c->computed_at;
    }
    s->o.log(s->o.log_user, &rec);
}

static void close_conn(eex_server *s, conn *c, int bad)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = C_FREE;
    free(c->buf);
    free(c->out);
    c->buf = c->out = NULL;
    c->cap = c->out_cap = 0;
    pthread_mutex_lock(&s->mu);
    s->stats.open--;
    s->stats.closed_bad += bad != 0;
    pthread_mutex_unlock(&s->mu);
}

static void reset_request(conn *c, double now)
{
    c->state = C_READ;
    c->hgot = c->need = c->got = 0;
    c->frame_start = 0;
    c->idle_since = now;
    c->type = 0, c->cut = c->expert = -1, c->dtype = 0, c->error = 0, c->exit = 0, c->cls = -1;
    c->confidence = 0, c->ms = 0, c->reason[0] = '\0';
    c->taken_at = c->computed_at = 0;
    c->out_len = c->out_off = 0;
    memset(c->req_tag, 0, sizeof c->req_tag);
}

static void start_write(eex_server *s, conn *c, double now);

/* An error found by the I/O thread: reply, then (usually) close. */
static void io_error(eex_server *s, conn *c, int code, const char *reason, double now)
{
    put_error(s, c, c->hgot >= EEXW_HEADER ? c->h.request_id : 0, code, reason);
    c->ms = 0;
    log_request(s, c);
    start_write(s, c, now);
}

static void finish_write(eex_server *s, conn *c, double now)
{
    if (c->close_after || atomic_load(&s->stopping)) {
        close_conn(s, c, c->error && c->close_after);
        return;
    }
    reset_request(c, now);
}

static void try_write(eex_server *s, conn *c, double now)
{
    while (c->out_off < c->out_len) {
        const ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;  /* poll for POLLOUT */
        close_conn(s, c, 1);
        return;
    }
    finish_write(s, c, now);
}

static void start_write(eex_server *s, conn *c, double now)
{
    c->state = C_WRITE;
    c->write_start = now;
    try_write(s, c, now);
}

static void frame_complete(eex_server *s, int ci, double now)
{
    conn *c = &s->conns[ci];
    c->done_at = now;
    c->frames++;
    if (!eexw_crc_ok(c->buf, c->h.body_len)) {
        io_error(s, c, EEXW_E_CRC, "CRC-32 of the frame does not match", now);
        return;
    }
    const int tagged = (c->h.flags & EEXW_F_AUTH) != 0;
    if (tagged)
        memcpy(c->req_tag, c->buf + EEXW_HEADER + c->h.body_len, EEXW_TAG);
    if (tagged != s->has_key) {  /* cheap to tell here; a wrong tag is the worker's to find */
        pthread_mutex_lock(&s->mu);
        s->xstats.auth_rejected++;
        pthread_mutex_unlock(&s->mu);
        io_error(s, c, EEXW_E_AUTH,
                 tagged ? "frame carries an HMAC tag but this server has no key"
                        : "frame not authenticated: this server requires an HMAC-SHA256 tag (--key)", now);
        return;
    }
    if (c->h.type == EEXW_PING) {
        char reason[160];
        const int err = authenticate(s, c, reason, sizeof reason);
        if (err) {
            pthread_mutex_lock(&s->mu);
            err == EEXW_E_AUTH ? s->xstats.auth_rejected++ : s->xstats.replays++;
            pthread_mutex_unlock(&s->mu);
            io_error(s, c, err, reason, now);
            return;
        }
        if (reserve_out(c, EEXW_HEADER + EEXW_TAG + EEXW_TRAILER)) {
            close_conn(s, c, 1);
            return;
        }
        eexw_put_header(c->out, EEXW_PONG, c->h.request_id, 0);
        c->out_len = eexw_finish_reply(c->out, 0, s->has_key ? &s->key : NULL, c->req_tag);
        c->out_off = 0;
        log_request(s, c);
        start_write(s, c, now);
        return;
    }
    /* the batching key, when the body is long enough to hold it (the worker
     * checks everything) */
    const uint8_t *b = c->buf + EEXW_HEADER;
    c->key_cut = c->h.body_len >= 36 ? eexw_u16(b + 32) : -1;
    c->key_expert = c->h.body_len >= 36 ? eexw_u16(b + 34) : -1;
    c->state = C_WORK;
    pthread_mutex_lock(&s->mu);
    s->jobs[s->jobs_n++] = ci;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_readable(eex_server *s, int ci, double now)
{
    conn *c = &s->conns[ci];
    char reason[160];
    for (;;) {
        uint8_t *dst;
        size_t want;
        if (c->hgot < EEXW_HEADER)
            dst = c->hdr + c->hgot, want = EEXW_HEADER - c->hgot;
        else
            dst = c->buf + c->got, want = c->need - c->got;
        const ssize_t r = recv(c->fd, dst, want, 0);
        if (r == 0) {  /* the peer closed: mid-frame that is a truncated frame */
            close_conn(s, c, c->hgot > 0);
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                close_conn(s, c, 1);
            return;
        }
        if (!c->frame_start)
            c->frame_start = now;
        if (c->hgot < EEXW_HEADER) {
            c->hgot += (size_t)r;
            if (c->hgot < EEXW_HEADER)
                continue;
            const int herr = eexw_get_header(c->hdr, &c->h);
            c->type = herr ? 0 : c->h.type;
            if (herr == EEXW_E_MALFORMED) {
                if (memcmp(c->hdr, EEXW_MAGIC, 4))
                    snprintf(reason, sizeof reason, "not a wire frame (bad magic)");
                else
                    snprintf(reason, sizeof reason, "unknown flags 0x%04x (known: 0x%04x)", (unsigned)c->h.flags,
                             EEXW_F_KNOWN);
                io_error(s, c, herr, reason, now);
                return;
            }
            if (herr == EEXW_E_VERSION) {
                snprintf(reason, sizeof reason, "wire version %d; this server speaks version %d", c->h.version, EEXW_VERSION);
                io_error(s, c, herr, reason, now);
                return;
            }
            if (c->h.type != EEXW_INFER && c->h.type != EEXW_PING) {
                snprintf(reason, sizeof reason, "frame type %d is not a request (1 INFER, 4 PING)", c->h.type);
                io_error(s, c, EEXW_E_TYPE, reason, now);
                return;
            }
            const size_t limit = c->h.type == EEXW_PING ? 0 : s->max_body;
            if (c->h.body_len > limit) {
                snprintf(reason, sizeof reason, "body of %u bytes; the limit for this model is %zu", c->h.body_len, limit);
                io_error(s, c, EEXW_E_TOO_LARGE, reason, now);
                return;
            }
            /* bounded above: only now is memory committed for the body */
            c->need = EEXW_HEADER + (size_t)c->h.body_len + eexw_trailer(c->h.flags);
            if (c->need > c->cap) {
                uint8_t *nb = realloc(c->buf, c->need);
                if (!nb) {
                    io_error(s, c, EEXW_E_INTERNAL, "out of memory", now);
                    return;
                }
                c->buf = nb, c->cap = c->need;
            }
            memcpy(c->buf, c->hdr, EEXW_HEADER);
            c->got = EEXW_HEADER;
        } else
            c->got += (size_t)r;
        if (c->got == c->need) {
            frame_complete(s, ci, now);
            return;
        }
    }
}

static void peer_addr(const struct sockaddr_storage *a, int *family, uint8_t addr[16])
{
    memset(addr, 0, 16);
    *family = a->ss_family;
    if (a->ss_family == AF_INET)
        memcpy(addr, &((const struct sockaddr_in *)a)->sin_addr, 4);
    else if (a->ss_family == AF_INET6)
        memcpy(addr, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
}

/* The slot for a new connection: a free one; else the connection idle the
 * longest among those that never sent a frame, else among all idle ones
 * (closed, counted); else -1. A connection with a frame partly in, computing
 * or writing is never taken. */
static int free_slot(eex_server *s)
{
    int fresh = -1, idle = -1;
    for (int i = 0; i < s->o.max_conns; i++) {
        const conn *c = &s->conns[i];
        if (c->state == C_FREE)
            return i;
        if (c->state != C_READ || c->hgot)
            continue;
        if (!c->frames && (fresh < 0 || c->idle_since < s->conns[fresh].idle_since))
            fresh = i;
        if (idle < 0 || c->idle_since < s->conns[idle].idle_since)
            idle = i;
    }
    const int v = fresh >= 0 ? fresh : idle;
    if (v >= 0) {
        close_conn(s, &s->conns[v], 0);
        pthread_mutex_lock(&s->mu);
        s->xstats.evicted++;
        pthread_mutex_unlock(&s->mu);
    }
    return v;
}

static void on_accept(eex_server *s, double now)
{
    for (int round = 0; round < 4 * s->o.max_conns; round++) {  /* bounded: the loop must poll again */
        struct sockaddr_storage a;
        socklen_t al = sizeof a;
        const int fd = accept(s->lfd, (struct sockaddr *)&a, &al);
        if (fd < 0)
            return;  /* EAGAIN, or a transient error: the next poll retries */
        int family;
        uint8_t addr[16];
        peer_addr(&a, &family, addr);
        int same = 0;
        for (int i = 0; i < s->o.max_conns; i++) {
            const conn *c = &s->conns[i];
            same += c->state != C_FREE && c->family == family && !memcmp(c->addr, addr, 16);
        }
        const int over = same >= s->max_per_addr;
        const int ci = over || atomic_load(&s->stopping) ? -1 : free_slot(s);
        if (ci < 0) {
            close(fd);
            pthread_mutex_lock(&s->mu);
            s->stats.refused++;
            s->xstats.refused_addr += over;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        eex_sock_prepare(fd);
        conn *c = &s->conns[ci];
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->family = family;
        memcpy(c->addr, addr, 16);
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (a.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, host, sizeof host);
            port = ntohs(((struct sockaddr_in *)&a)->sin_port);
        } else if (a.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a)->sin6_addr, host, sizeof host);
            port = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
        }
        snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
        reset_request(c, now);
        pthread_mutex_lock(&s->mu);
        s->stats.connections++;
        s->stats.open++;
        pthread_mutex_unlock(&s->mu);
    }
}

static void drain_done(eex_server *s, double now)
{
    int local[1024], n;
    do {
        pthread_mutex_lock(&s->mu);
        n = s->done_n < 1024 ? s->done_n : 1024;
        memcpy(local, s->done + (s->done_n - n), sizeof(int) * (size_t)n);
        s->done_n -= n;
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < n; i++) {
            conn *c = &s->conns[local[i]];
            log_request(s, c);
            if (!c->out_len) {
                close_conn(s, c, 1);
                continue;
            }
            start_write(s, c, now);
        }
    } while (n == 1024);
}

/* How long a connection may wait for its next frame's first byte: a new one
 * (no frame yet) no longer than a frame may take, so connections that never
 * send hold a slot for the frame timeout, not the idle timeout. */
static double idle_limit(const eex_server *s, const conn *c)
{
    return c->frames ? s->o.idle_timeout_ms : s->o.frame_timeout_ms < s->o.idle_timeout_ms ? s->o.frame_timeout_ms
                                                                                           : s->o.idle_timeout_ms;
}

/* Timeouts; during a drain, idle connections go at once. */
static void sweep(eex_server *s, double now, int draining)
{
    for (int i = 0; i < s->o.max_conns; i++) {
        conn *c = &s->conns[i];
        if (c->state == C_READ) {
            if (c->hgot == 0 && (draining || now - c->idle_since > idle_limit(s, c)))
                close_conn(s, c, 0);
            else if (c->hgot > 0 && now - c->frame_start > s->o.frame_timeout_ms)
                io_error(s, c, EEXW_E_TIMEOUT, "the frame did not arrive whole within the server's frame timeout", now);
        } else if (c->state == C_WRITE && now - c->write_start > s->o.write_timeout_ms)
            close_conn(s, c, 1);
    }
}

static int next_timeout(const eex_server *s, double now)
{
    double t = 1000.0;
    for (int i = 0; i < s->o.max_conns; i++) {
        const conn *c = &s->conns[i];
        double due = 1e300;
        if (c->state == C_READ)
            due = c->hgot ? c->frame_start + s->o.frame_timeout_ms : c->idle_since + idle_limit(s, c);
        else if (c->state == C_WRITE)
            due = c->write_start + s->o.write_timeout_ms;
        if (due - now < t)
            t = due - now;
    }
    return t < 1 ? 1 : (int)t + 1;
}

eex_status eex_server_run(eex_server *s)
{
    if (!s)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_server_run: NULL server");
    int started = 0;
    for (; started < s->n_workers; started++)
        if (pthread_create(&s->workers[started].tid, NULL, worker_main, &s->workers[started]))
            break;
    eex_status st = started < s->n_workers ? eex_fail(EEX_ERR_NOMEM, "serve: cannot start worker threads") : EEX_OK;
    double drain_until = 0;
    while (!st) {
        const double now = eex_now_ms();
        const int draining = atomic_load(&s->stopping) != 0;
        if (draining && !drain_until) {
            drain_until = now + s->o.drain_timeout_ms;
            close(s->lfd);
            s->lfd = -1;
        }
        if (draining) {
            sweep(s, now, 1);
            int busy = 0;
            for (int i = 0; i < s->o.max_conns; i++)
                busy += s->conns[i].state != C_FREE;
            if (!busy || now > drain_until)
                break;
        }
        int n = 0;
        s->pfd[n] = (struct pollfd){.fd = s->wake[0], .events = POLLIN}, s->pmap[n++] = -1;
        if (s->lfd >= 0)
            s->pfd[n] = (struct pollfd){.fd = s->lfd, .events = POLLIN}, s->pmap[n++] = -2;
        for (int i = 0; i < s->o.max_conns; i++) {
            const conn *c = &s->conns[i];
            if (c->state == C_READ || c->state == C_WRITE) {
                s->pfd[n] = (struct pollfd){.fd = c->fd, .events = c->state == C_READ ? POLLIN : POLLOUT};
                s->pmap[n++] = i;
            }
        }
        const int r = poll(s->pfd, (nfds_t)n, next_timeout(s, now));
        if (r < 0 && errno != EINTR) {
            st = eex_fail(EEX_ERR_IO, "serve: poll: %s", strerror(errno));
            break;
        }
        const double t = eex_now_ms();
        for (int k = 0; r > 0 && k < n; k++) {
            if (!s->pfd[k].revents)
                continue;
            const int ci = s->pmap[k];
            if (ci == -1) {
                char junk[256];
                while (read(s->wake[0], junk, sizeof junk) > 0) {
                }
            } else if (ci == -2)
                on_accept(s, t);
            else {
                conn *c = &s->conns[ci];
                if (c->fd != s->pfd[k].fd)
                    continue;  /* closed and reused during this round */
                if (c->state == C_READ)
                    on_readable(s, ci, t);
                else if (c->state == C_WRITE)
                    try_write(s, c, t);
            }
        }
        drain_done(s, t);
        sweep(s, t, 0);
        if (atomic_load(&s->reload) && !atomic_load(&s->stopping))
            do_reload(s);
    }
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < started; i++)
        pthread_join(s->workers[i].tid, NULL);
    for (int i = 0; i < s->o.max_conns; i++)
        if (s->conns[i].state != C_FREE)
            close_conn(s, &s->conns[i], 0);
    return st;
}
