/* The cloud: `eex serve`. One I/O thread runs a poll() loop over the
 * listening socket, a wake pipe and every connection (this file); a pool of
 * workers, each with its own session over the shared read-only model, does
 * the compute (server_work.c); server_setup.c makes and configures the server.
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
 * Batching, and the checks of an INFER's tag and request id, are the
 * workers' (server_work.c); the I/O thread checks PINGs, whose bodies are
 * empty, and reads each INFER's batching key. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../base/status.h"
#include "server_int.h"

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
    eex_srv_put_error(s, c, c->hgot >= EEXW_HEADER ? c->h.request_id : 0, code, reason);
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
        io_error(s, c, EEX_WIRE_ERR_CRC, "CRC-32 of the frame does not match", now);
        return;
    }
    const int tagged = (c->h.flags & EEXW_F_AUTH) != 0;
    if (tagged)
        memcpy(c->req_tag, c->buf + EEXW_HEADER + c->h.body_len, EEXW_TAG);
    if (tagged != s->has_key) {  /* cheap to tell here; a wrong tag is the worker's to find */
        eex_srv_count_refused(s, EEX_WIRE_ERR_AUTH);
        io_error(s, c, EEX_WIRE_ERR_AUTH,
                 tagged ? "frame carries an HMAC tag but this server has no key"
                        : "frame not authenticated: this server requires an HMAC-SHA256 tag (--key)", now);
        return;
    }
    if (c->h.type == EEXW_PING) {
        char reason[160];
        const int err = eex_srv_authenticate(s, c, reason, sizeof reason);
        if (err) {
            eex_srv_count_refused(s, err);
            io_error(s, c, err, reason, now);
            return;
        }
        if (eex_srv_reserve_out(c, EEXW_HEADER + EEXW_TAG + EEXW_TRAILER)) {
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
            if (herr == EEX_WIRE_ERR_MALFORMED) {
                if (memcmp(c->hdr, EEXW_MAGIC, 4))
                    snprintf(reason, sizeof reason, "not a wire frame (bad magic)");
                else
                    snprintf(reason, sizeof reason, "unknown flags 0x%04x (known: 0x%04x)", (unsigned)c->h.flags,
                             EEXW_F_KNOWN);
                io_error(s, c, herr, reason, now);
                return;
            }
            if (herr == EEX_WIRE_ERR_VERSION) {
                snprintf(reason, sizeof reason, "wire version %d; this server speaks version %d", c->h.version, EEXW_VERSION);
                io_error(s, c, herr, reason, now);
                return;
            }
            if (c->h.type != EEXW_INFER && c->h.type != EEXW_PING) {
                snprintf(reason, sizeof reason, "frame type %d is not a request (1 INFER, 4 PING)", c->h.type);
                io_error(s, c, EEX_WIRE_ERR_TYPE, reason, now);
                return;
            }
            const size_t limit = c->h.type == EEXW_PING ? 0 : s->max_body;
            if (c->h.body_len > limit) {
                snprintf(reason, sizeof reason, "body of %u bytes; the limit for this model is %zu", c->h.body_len, limit);
                io_error(s, c, EEX_WIRE_ERR_TOO_LARGE, reason, now);
                return;
            }
            /* bounded above: only now is memory committed for the body */
            c->need = EEXW_HEADER + (size_t)c->h.body_len + eexw_trailer(c->h.flags);
            if (c->need > c->cap) {
                uint8_t *nb = realloc(c->buf, c->need);
                if (!nb) {
                    io_error(s, c, EEX_WIRE_ERR_INTERNAL, "out of memory", now);
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
                io_error(s, c, EEX_WIRE_ERR_TIMEOUT, "the frame did not arrive whole within the server's frame timeout", now);
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
        if (pthread_create(&s->workers[started].tid, NULL, eex_srv_worker_main, &s->workers[started]))
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
            eex_srv_do_reload(s);
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
