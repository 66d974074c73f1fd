/* The cloud server's workers. Complete INFER frames wait in one FIFO; a
 * worker takes the oldest and, up to the batch limit, the others waiting for
 * the same cut and expert (leaving a share for idle workers), checks each
 * (with a key: its tag and the connection's request id sequence, hashed here
 * so that a large tensor does not stall the I/O thread), decodes it, and
 * finishes them in one run of the remaining layers (offload/resume.c;
 * pieces of power-of-two sizes on sessions planned once per size, capped per
 * cut: server_setup.c's run_cap). Each reply (RESULT or ERROR frame, the
 * error code from eexw_error_of_status) is built here and handed back to
 * the I/O thread (server.c) to write. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "../base/status.h"
#include "server_int.h"

int eex_srv_reserve_out(conn *c, size_t n)
{
    if (n <= c->out_cap)
        return 0;
    uint8_t *p = realloc(c->out, n);
    if (!p)
        return -1;
    c->out = p, c->out_cap = n;
    return 0;
}

void eex_srv_put_error(eex_server *s, conn *c, uint64_t id, int code, const char *reason)
{
    c->error = code;
    snprintf(c->reason, sizeof c->reason, "%s", reason);
    if (eex_srv_reserve_out(c, EEXW_HEADER + 4 + EEXW_MAX_REASON + EEXW_TAG + EEXW_TRAILER)) {
        c->out_len = 0;
        c->close_after = 1;
        return;
    }
    const uint32_t n = eexw_put_error(c->out + EEXW_HEADER, code, reason);
    eexw_put_header(c->out, EEXW_ERROR, id, n);
    c->out_len = eexw_finish_reply(c->out, n, s->has_key ? &s->key : NULL, c->req_tag);
    c->out_off = 0;
    if (!eexw_error_keeps_open(code))
        c->close_after = 1;
}

void eex_srv_count_refused(eex_server *s, int code)
{
    pthread_mutex_lock(&s->mu);
    code == EEX_WIRE_ERR_AUTH ? s->xstats.auth_rejected++ : s->xstats.replays++;
    pthread_mutex_unlock(&s->mu);
}

static void put_result(eex_server *s, conn *c, eex_cloud_answer *a)
{
    a->server_ms = eex_now_ms() - c->done_at;
    if (eex_srv_reserve_out(c, EEXW_HEADER + EEXW_RESULT_FIXED + EEXW_RESULT_ENTRY * (EEX_MAX_EXITS + 1) + EEXW_TAG +
                           EEXW_TRAILER)) {
        eex_srv_put_error(s, c, c->h.request_id, EEX_WIRE_ERR_INTERNAL, "out of memory");
        return;
    }
    const uint32_t n = eexw_put_result(c->out + EEXW_HEADER, a);
    eexw_put_header(c->out, EEXW_RESULT, c->h.request_id, n);
    c->out_len = eexw_finish_reply(c->out, n, s->has_key ? &s->key : NULL, c->req_tag);
    c->out_off = 0;
    c->exit = a->exit, c->cls = a->cls, c->confidence = a->confidence;
}

int eex_srv_authenticate(eex_server *s, conn *c, char *reason, size_t cap)
{
    if (!s->has_key)
        return 0;
    const int r = eexw_auth_check(c->buf, c->h.body_len, &s->key);
    if (r) {
        snprintf(reason, cap, "%s", r == 1 ? "frame not authenticated: this server requires an HMAC-SHA256 tag (--key)"
                                           : "wrong HMAC-SHA256 tag: another key, or the frame was altered");
        return EEX_WIRE_ERR_AUTH;
    }
    if (c->has_id && c->h.request_id <= c->last_id) {
        snprintf(reason, cap, "request id %llu replayed: the last on this connection was %llu",
                 (unsigned long long)c->h.request_id, (unsigned long long)c->last_id);
        return EEX_WIRE_ERR_REPLAY;
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
            return EEX_WIRE_ERR_REPLAY;
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
    int err = eex_srv_authenticate(s, c, reason, sizeof reason);
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
        err = EEX_WIRE_ERR_DIGEST;
    }
    if (!err && q->cut >= eex_model_cut_count(s->m))
        err = EEX_WIRE_ERR_REQUEST,
        snprintf(reason, sizeof reason, "cut %d out of range (model has %d)", q->cut, eex_model_cut_count(s->m));
    if (!err && q->expert >= eex_model_expert_count(s->m))
        err = EEX_WIRE_ERR_REQUEST,
        snprintf(reason, sizeof reason, "expert %d out of range (model has %d)", q->expert,
                 eex_model_expert_count(s->m));
    if (!err) {
        int64_t want[EEX_MAX_RANK];
        const int wr = eex_model_cut_shape(s->m, q->cut, want);
        int ok = q->rank == wr && q->dims[0] == 1;
        for (int d = 1; ok && d < wr; d++)
            ok = q->dims[d] == want[d];
        if (!ok)
            err = EEX_WIRE_ERR_REQUEST, snprintf(reason, sizeof reason, "cut %d '%s' takes a [1,%lld%s] tensor", q->cut,
                                           eex_model_cut_name(s->m, q->cut), (long long)want[1], wr == 4 ? ",H,W" : "");
    }
    const uint8_t *raw = q->payload;
    const size_t groups = q->rank > 1 ? (size_t)q->dims[1] : 1;
    const size_t unit = q->dtype == EEXW_Q4 ? 1 : eexw_dtype_size(q->dtype);
    if (!err && q->packing == 1) {
        if (eexw_unpack(q->payload, q->payload_len, eexw_raw_bytes(q->dtype, q->elems, groups) / unit, unit, w->raw))
            err = EEX_WIRE_ERR_REQUEST, snprintf(reason, sizeof reason, "malformed packed payload");
        raw = w->raw;
    }
    if (!err && eexw_decode_ch(raw, q->elems, groups, q->dtype, q->scale, q->zero_point, x))
        err = EEX_WIRE_ERR_REQUEST, snprintf(reason, sizeof reason, "q4 channel parameters are not finite");
    if (err) {
        if (err == EEX_WIRE_ERR_AUTH || err == EEX_WIRE_ERR_REPLAY)
            eex_srv_count_refused(s, err);
        eex_srv_put_error(s, c, c->h.request_id, err, reason);
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
                eex_srv_put_error(s, c, c->h.request_id, eexw_error_of_status(st ? st : each), eex_last_error());
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
                eex_srv_put_error(s, c, c->h.request_id, eexw_error_of_status(st), reason);
            else if (w->each[i])
                eex_srv_put_error(s, c, c->h.request_id, eexw_error_of_status(w->each[i]),
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
 * offload.md, "The 10 ms path, step by step"). The I/O thread still finishes
 * the write (what is left, errors) and resets the connection. Built with
 * -DEEX_SERVE_IO_REPLY, the I/O thread writes every reply (the old path, for
 * comparison). */
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

void *eex_srv_worker_main(void *arg)
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

