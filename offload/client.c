/* The edge's client: one non-blocking TCP connection, reused across requests,
 * every wait bounded by the request's absolute deadline (CLOCK_MONOTONIC).
 * A request whose connection fails (refused, reset or closed before the
 * whole reply) is sent once more on a new connection within the same
 * deadline: the request is idempotent, and behind a load balancer the new
 * connection reaches another worker. Any other failure closes the
 * connection; a later request opens a new one, after a short retry window
 * so that a dead cloud costs the edge nothing. With a key every request is
 * tagged and every reply must be. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../engine/ee_result.h"
#include "../engine/session.h"
#include "../base/status.h"
#include "offload.h"

#define REPLY_CAP 1024  /* the largest reply body: an ERROR with a 512-byte reason */

struct eex_cloud_client {
    const eex_model *m;
    uint8_t digest[EEX_DIGEST_BYTES];
    char where[300];               /* "host:port" for messages */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    eex_cloud_opts o;
    int fd;                        /* -1: not connected */
    uint64_t next_id;
    uint64_t retries;              /* requests sent again on a new connection */
    int has_key;
    eexw_key key;
    int failures;                  /* in a row */
    double retry_at;               /* no attempt before this (ms, monotonic) */
    char last_error[160];
    char tcp_cc[16];               /* wanted congestion control; "" = the system's */
    int tcp_cc_default;            /* 1: cubic, else reno */
    char tcp_cc_used[16];          /* what the last connection got */
    int probe;                     /* 1: a PING goes ahead of each request (its PONG times the RTT) */
    uint64_t ping_id;              /* the PING in flight, 0 for none */
    uint8_t ping[EEXW_HEADER + EEXW_TAG + EEXW_TRAILER];
    size_t ping_len;
    uint8_t ping_tag[EEXW_TAG];
    double ping_sent, probe_rtt;   /* ms, monotonic; the last PONG's round trip (0: none) */
    eex_cloud_timing tm;           /* the last request's timestamps */
    uint8_t *frame;                /* request frame buffer, sized for the largest cut */
    size_t frame_cap;
    uint8_t *raw;                  /* the encoded tensor before packing */
    size_t raw_cap;
    float *tensor;                 /* the cut tensor, for eex_session_run_offload */
    size_t tensor_cap;
    uint8_t req_tag[EEXW_TAG];     /* the tag of the request in flight: its reply's tag covers it */
    uint8_t reply[EEXW_HEADER + REPLY_CAP + EEXW_TAG + EEXW_TRAILER];
};

eex_status eex_cloud_client_set_key(eex_cloud_client *c, const void *key, size_t len)
{
    if (!c || !key)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_cloud_client_set_key: NULL argument");
    if (len < EEX_KEY_MIN || len > EEX_KEY_MAX)
        return eex_fail(EEX_ERR_ARGUMENT, "cloud: a key of %zu bytes (%d..%d)", len, EEX_KEY_MIN, EEX_KEY_MAX);
    eexw_key_init(&c->key, key, len);
    c->has_key = 1;
    return EEX_OK;
}

uint64_t eex_cloud_client_retries(const eex_cloud_client *c) { return c ? c->retries : 0; }

eex_status eex_cloud_client_new(const eex_model *m, const char *host, int port, const eex_cloud_opts *opts,
                                eex_cloud_client **out)
{
    if (!m || !host || !out)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_cloud_client_new: NULL argument");
    *out = NULL;
    if (port < 1 || port > 65535)
        return eex_fail(EEX_ERR_ARGUMENT, "cloud: port %d is not in 1..65535", port);
    eex_cloud_opts o = opts ? *opts : (eex_cloud_opts){0};
    if (!o.wire)
        o.wire = EEX_WIRE_F32;
    if (o.wire < EEX_WIRE_F32 || o.wire > EEX_WIRE_Q4)
        return eex_fail(EEX_ERR_ARGUMENT, "cloud: unknown wire codec %d", (int)o.wire);
    if (o.deadline_ms <= 0)
        o.deadline_ms = 5000;
    if (!o.retry_ms)
        o.retry_ms = 200;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    const int gai = getaddrinfo(host, ps, &hints, &res);
    if (gai || !res)
        return eex_fail(EEX_ERR_ARGUMENT, "cloud: cannot resolve '%s': %s", host, gai ? gai_strerror(gai) : "no address");
    eex_cloud_client *c = calloc(1, sizeof *c);
    if (!c) {
        freeaddrinfo(res);
        return eex_fail(EEX_ERR_NOMEM, "cloud: out of memory");
    }
    memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
    c->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(c->where, sizeof c->where, "%s:%d", host, port);
    c->m = m;
    c->o = o;
    c->fd = -1;
    c->next_id = eexw_random_id_base();  /* docs/protocol.md, "Replies bound to requests" */
    c->tcp_cc_default = 1;
    eex_status st = eex_model_digest(m, c->digest);
    if (st) {
        free(c);
        return st;
    }
    *out = c;
    return EEX_OK;
}

void eex_cloud_client_free(eex_cloud_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->frame);
    free(c->raw);
    free(c->tensor);
    memset(&c->key, 0, sizeof c->key);
    free(c);
}

static void drop(eex_cloud_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

typedef struct fail_t {
    eex_status st;
    char msg[192];
    int conn;     /* a connection-level failure (worth one retry on a reused connection) */
} fail_t;

static int failf(fail_t *f, eex_status st, int conn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    f->st = st;
    f->conn = conn;
    return -1;
}

eex_status eex_cloud_client_set_tcp_cc(eex_cloud_client *c, const char *name)
{
    if (!c)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_cloud_client_set_tcp_cc: NULL client");
    if (name && strlen(name) >= sizeof c->tcp_cc)
        return eex_fail(EEX_ERR_ARGUMENT, "cloud: congestion control name '%.32s' is too long", name);
    c->tcp_cc_default = 0;
    snprintf(c->tcp_cc, sizeof c->tcp_cc, "%s", name ? name : "");
    return EEX_OK;
}

const char *eex_cloud_client_tcp_cc(const eex_cloud_client *c) { return c ? c->tcp_cc_used : ""; }

eex_status eex_cloud_client_set_wire(eex_cloud_client *c, eex_wire wire)
{
    if (!c)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_cloud_client_set_wire: NULL client");
    if ((int)wire < 1 || (int)wire > EEX_WIRE_COUNT)
        return eex_fail(EEX_ERR_ARGUMENT, "cloud: unknown wire codec %d", (int)wire);
    c->o.wire = wire;
    return EEX_OK;
}

eex_status eex_cloud_client_set_probe(eex_cloud_client *c, int on)
{
    if (!c)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_cloud_client_set_probe: NULL client");
    c->probe = on != 0;
    return EEX_OK;
}

double eex_cloud_client_probe_rtt_ms(const eex_cloud_client *c) { return c ? c->probe_rtt : 0.0; }

double eex_cloud_client_tcp_rtt_ms(const eex_cloud_client *c) { return c && c->fd >= 0 ? eex_sock_rtt_ms(c->fd) : 0.0; }

void eex_cloud_client_last_timing(const eex_cloud_client *c, eex_cloud_timing *t)
{
    if (t)
        *t = c ? c->tm : (eex_cloud_timing){0};
}

/* Before connect: the congestion control (see eex_cloud_client_set_tcp_cc).
 * Set after connect, BBR's pacing would stay on (the kernel keeps a socket's
 * pacing once a pacing module initialised it). */
static void set_cc(eex_cloud_client *c, int fd)
{
    if (c->tcp_cc_default)
        eex_sock_default_cc(fd);
    else if (c->tcp_cc[0])
        setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, c->tcp_cc, (socklen_t)strlen(c->tcp_cc));
    eex_sock_cc_name(fd, c->tcp_cc_used, sizeof c->tcp_cc_used);
}

static int do_connect(eex_cloud_client *c, double deadline, fail_t *f)
{
    const int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return failf(f, EEX_ERR_IO, 0, "socket: %s", strerror(errno));
    if (eex_sock_prepare(fd)) {
        close(fd);
        return failf(f, EEX_ERR_IO, 0, "socket options: %s", strerror(errno));
    }
    set_cc(c, fd);
    const int r = eex_connect_by(fd, (const struct sockaddr *)&c->addr, c->addrlen, deadline);
    if (r) {
        const int e = errno;
        close(fd);
        if (r > 0)
            return failf(f, EEX_ERR_IO, 0, "connect to %s: no answer before the deadline", c->where);
        return failf(f, EEX_ERR_IO, 1, "connect to %s: %s", c->where, strerror(e));
    }
    c->fd = fd;
    return 0;
}

static int write_all(eex_cloud_client *c, const uint8_t *p, size_t n, double deadline, fail_t *f)
{
    const int r = eex_send_all(c->fd, p, n, deadline);
    if (r > 0)
        return failf(f, EEX_ERR_IO, 0, "sending to %s: deadline reached", c->where);
    if (r < 0)
        return failf(f, EEX_ERR_IO, 1, "sending to %s: %s", c->where, errno ? strerror(errno) : "closed");
    return 0;
}

/* Reads exactly n bytes; *got counts what arrived (to tell a clean close). */
static int read_all(eex_cloud_client *c, uint8_t *p, size_t n, double deadline, size_t *got, fail_t *f)
{
    const int r = eex_recv_all(c->fd, p, n, deadline, got);
    if (r > 0)
        return failf(f, EEX_ERR_IO, 0, "no answer from %s before the deadline", c->where);
    if (r < 0 && !errno)
        return failf(f, EEX_ERR_IO, 1, "%s closed the connection%s", c->where, *got ? " mid-reply" : "");
    if (r < 0)
        return failf(f, EEX_ERR_IO, 1, "receiving from %s: %s", c->where, strerror(errno));
    return 0;
}

/* A well-formed RESULT may still be nonsense (a broken or hostile server,
 * or an attacker on the path when there is no key): every class must be one
 * of the model's, every confidence a number in [0, 1], the cloud's choice one
 * of its classifiers, and its classifiers the exits after the cut. A reply
 * that fails is a failed offload (docs/protocol.md, "Checks on the reply"). */
static int check_answer(const eex_cloud_client *c, const eex_cloud_answer *a, fail_t *f)
{
    const int C = eex_model_class_count(c->m), E = eex_model_exit_count(c->m);
    if (a->first_exit < 1 || a->first_exit + a->n - 1 != E + 1)
        return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: classifiers %d..%d, the model's last is %d", c->where,
                     a->first_exit, a->first_exit + a->n - 1, E + 1);
    for (int i = 0; i < a->n; i++) {
        if (a->classes[i] < 0 || (C > 0 && a->classes[i] >= C))
            return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: exit %d's class %d is outside 0..%d", c->where,
                         a->first_exit + i, (int)a->classes[i], C - 1);
        /* NaN fails too; 1e-6 of slack for 1 - H / ln(C) rounded below 0 */
        if (!(a->confidences[i] >= -1e-6f && a->confidences[i] <= 1.0f + 1e-6f))
            return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: exit %d's confidence %g is not in [0, 1]", c->where,
                         a->first_exit + i, (double)a->confidences[i]);
    }
    const int k = a->exit - a->first_exit;
    if (a->cls != a->classes[k] || !(a->confidence == a->confidences[k]))
        return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: its choice (exit %d, class %d, %g) is not its exit %d's "
                     "answer (class %d, %g)", c->where, a->exit, (int)a->cls, (double)a->confidence, a->exit,
                     (int)a->classes[k], (double)a->confidences[k]);
    return 0;
}

/* One exchange on the current connection: 0, or -1 with f filled. */
static int exchange(eex_cloud_client *c, size_t frame_len, uint64_t id, double deadline, eex_cloud_answer *a,
                    eex_offload_info *info, fail_t *f)
{
    if (c->ping_id) {
        c->ping_sent = eex_now_ms();
        if (write_all(c, c->ping, c->ping_len, deadline, f))
            return -1;
    }
    if (write_all(c, c->frame, frame_len, deadline, f))
        return -1;
    c->tm.sent = eex_now_ms();
    info->bytes_sent = frame_len;
    size_t got = 0;
    if (read_all(c, c->reply, EEXW_HEADER, deadline, &got, f))
        return -1;
    eexw_header h;
    int herr = eexw_get_header(c->reply, &h);
    if (!herr && c->ping_id && h.type == EEXW_PONG) {
        /* the probe's answer: an empty body, our PING's id (and tag) */
        const double at = eex_now_ms();
        const size_t tl = eexw_trailer(h.flags);
        if (h.body_len || h.request_id != c->ping_id)
            return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: PONG with a %u-byte body or another id", c->where,
                         h.body_len);
        if (read_all(c, c->reply + EEXW_HEADER, tl, deadline, &got, f))
            return -1;
        if (!eexw_crc_ok(c->reply, 0))
            return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: CRC mismatch", c->where);
        if (c->has_key && eexw_auth_check_reply(c->reply, 0, &c->key, c->ping_tag))
            return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: PONG not authenticated", c->where);
        c->probe_rtt = at - c->ping_sent;
        c->tm.pong = at;
        c->ping_id = 0;
        got = 0;
        if (read_all(c, c->reply, EEXW_HEADER, deadline, &got, f))
            return -1;
        herr = eexw_get_header(c->reply, &h);
    }
    if (herr)
        return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: %s header", c->where,
                     herr == EEX_WIRE_ERR_VERSION ? "another protocol version's" : "not a wire");
    if ((h.type != EEXW_RESULT && h.type != EEXW_ERROR) || h.body_len > REPLY_CAP)
        return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: type %d with a %u-byte body", c->where, h.type, h.body_len);
    c->tm.reply_head = eex_now_ms();
    const size_t trailer = eexw_trailer(h.flags);
    if (read_all(c, c->reply + EEXW_HEADER, h.body_len + trailer, deadline, &got, f))
        return -1;
    c->tm.reply = eex_now_ms();
    info->bytes_received = EEXW_HEADER + (size_t)h.body_len + trailer;
    if (!eexw_crc_ok(c->reply, h.body_len))
        return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: CRC mismatch", c->where);
    const uint8_t *body = c->reply + EEXW_HEADER;
    if (c->has_key && eexw_auth_check_reply(c->reply, h.body_len, &c->key, c->req_tag)) {
        /* not from a holder of the key: nothing in it is to be believed */
        int code = 0;
        char reason[EEXW_MAX_REASON + 1] = "";
        if (h.type == EEXW_ERROR && !eexw_get_error(body, h.body_len, &code, reason, sizeof reason))
            return failf(f, EEX_ERR_FORMAT, 0, "reply from %s not authenticated (unverified: error %s: %.80s)",
                         c->where, eexw_error_name(code), reason);
        return failf(f, EEX_ERR_FORMAT, 0,
                     "reply from %s not authenticated (no HMAC tag, a wrong one, or one for another request)",
                     c->where);
    }
    if (c->has_key && h.request_id != id)  /* an old tagged reply, replayed */
        return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: request id %llu, sent %llu", c->where,
                     (unsigned long long)h.request_id, (unsigned long long)id);
    if (h.type == EEXW_ERROR) {
        int code = 0;
        char reason[EEXW_MAX_REASON + 1];
        if (eexw_get_error(body, h.body_len, &code, reason, sizeof reason))
            return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: malformed error frame", c->where);
        failf(f, eexw_status_of_error(code), 0, "cloud error %s: %s", eexw_error_name(code), reason);
        /* the server keeps the connection only after these */
        if (!eexw_error_keeps_open(code))
            drop(c);
        return -1;
    }
    if (h.request_id != id)
        return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: request id %llu, sent %llu", c->where,
                     (unsigned long long)h.request_id, (unsigned long long)id);
    if (eexw_get_result(body, h.body_len, a))
        return failf(f, EEX_ERR_FORMAT, 0, "reply from %s: malformed result", c->where);
    return check_answer(c, a, f);
}

static eex_status send_until(eex_cloud_client *c, int cut, int expert, eex_metric metric, float threshold,
                             const float *x, const int64_t *shape, int rank, double deadline, eex_cloud_answer *a,
                             eex_offload_info *info)
{
    const double t0 = eex_now_ms();
    c->tm = (eex_cloud_timing){.start = t0};
    fail_t f = {0};
    if (rank < 1 || rank > EEX_MAX_RANK)
        return eex_fail(EEX_ERR_ARGUMENT, "cloud: rank %d", rank);
    size_t elems = 1;
    for (int d = 0; d < rank; d++) {
        if (shape[d] < 1 || shape[d] > (int64_t)EEXW_MAX_BODY)
            return eex_fail(EEX_ERR_ARGUMENT, "cloud: dim %d is %lld", d, (long long)shape[d]);
        elems *= (size_t)shape[d];
        if (elems > EEXW_MAX_BODY)
            return eex_fail(EEX_ERR_ARGUMENT, "cloud: tensor too large for the wire");
    }
    if (t0 < c->retry_at) {
        snprintf(info->reason, sizeof info->reason, "cloud unavailable (%.120s); next try in %.0f ms", c->last_error,
                 c->retry_at - t0);
        return eex_fail(EEX_ERR_STATE, "%s", info->reason);
    }
    eexw_infer q = {.cut = cut, .expert = expert, .metric = (int)metric, .dtype = (int)c->o.wire, .rank = rank,
                    .threshold = threshold, .packing = 1};
    memcpy(q.digest, c->digest, sizeof q.digest);
    for (int d = 0; d < rank; d++)
        q.dims[d] = shape[d];
    const size_t groups = rank > 1 ? (size_t)shape[1] : 1, rawn = eexw_raw_bytes(q.dtype, elems, groups);
    const size_t esize = q.dtype == EEXW_Q4 ? 1 : eexw_dtype_size(q.dtype),
                 body_max = eexw_infer_body_max(rank, elems, q.dtype);
    if (q.dtype == EEXW_Q4 && rawn > 4 * elems)
        return eex_fail(EEX_ERR_ARGUMENT, "cloud: q4 needs at least 2 elements a channel");
    if (body_max > EEXW_MAX_BODY)
        return eex_fail(EEX_ERR_ARGUMENT, "cloud: tensor too large for the wire");
    const size_t frame_max = EEXW_HEADER + body_max + EEXW_TAG + EEXW_TRAILER;
    if (frame_max > c->frame_cap) {
        uint8_t *nb = realloc(c->frame, frame_max);
        if (!nb)
            return eex_fail(EEX_ERR_NOMEM, "cloud: out of memory");
        c->frame = nb, c->frame_cap = frame_max;
    }
    if (rawn > c->raw_cap) {
        uint8_t *nr = realloc(c->raw, rawn);
        if (!nr)
            return eex_fail(EEX_ERR_NOMEM, "cloud: out of memory");
        c->raw = nr, c->raw_cap = rawn;
    }
    eex_status st = eexw_encode_ch(x, elems, groups, q.dtype, c->raw, &q.scale, &q.zero_point);
    if (st) {
        snprintf(info->reason, sizeof info->reason, "%s", eex_last_error());
        return st;
    }
    uint8_t *b = c->frame + EEXW_HEADER;
    const size_t off = eexw_put_infer(b, &q);
    const size_t payload = eexw_pack(c->raw, rawn / esize, esize, b + off);
    const size_t body = off + payload;
    info->payload_bytes = payload;
    c->tm.encoded = eex_now_ms();

    int rc = -1;
    c->probe_rtt = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt)
            c->retries++;
        /* a retry is a new request (new id, new tag): the server may have
         * seen the first and would refuse it as a replay */
        c->ping_id = 0;
        if (c->probe) {  /* the PING's id comes first: ids increase on a connection */
            c->ping_id = c->next_id++;
            eexw_put_header(c->ping, EEXW_PING, c->ping_id, 0);
            c->ping_len = eexw_finish(c->ping, 0, c->has_key ? &c->key : NULL);
            if (c->has_key)
                memcpy(c->ping_tag, c->ping + EEXW_HEADER, EEXW_TAG);
        }
        const uint64_t id = c->next_id++;
        info->request_id = id;
        eexw_put_header(c->frame, EEXW_INFER, id, (uint32_t)body);
        const size_t frame_len = eexw_finish(c->frame, (uint32_t)body, c->has_key ? &c->key : NULL);
        if (c->has_key)
            memcpy(c->req_tag, c->frame + EEXW_HEADER + body, EEXW_TAG);
        if (c->fd < 0) {
            rc = do_connect(c, deadline, &f);
            if (!rc)
                info->connects++;
        } else
            rc = 0;
        if (!rc)
            rc = exchange(c, frame_len, id, deadline, a, info, &f);
        if (!rc)
            break;
        if (f.st != EEX_ERR_IO)
            break;  /* an answer that was an error: a second try gets the same */
        drop(c);
        /* the connection failed (refused, reset, closed before the whole
         * reply: a server killed or restarted, an idle timeout): once more on
         * a new connection, which a load balancer sends to another worker */
        if (!f.conn || eex_now_ms() >= deadline)
            break;
    }
    if (!rc) {
        c->failures = 0;
        c->retry_at = 0;
        c->tm.done = eex_now_ms();
        return EEX_OK;
    }
    if (f.st == EEX_ERR_IO || f.st == EEX_ERR_FORMAT || f.st == EEX_ERR_NOT_FOUND || f.st == EEX_ERR_VERSION) {
        if (f.st == EEX_ERR_FORMAT)
            drop(c);
        c->failures++;
        if (c->o.retry_ms > 0) {
            const int k = c->failures - 1 < 3 ? c->failures - 1 : 3;
            c->retry_at = eex_now_ms() + (double)c->o.retry_ms * (double)(1 << k);
        }
        snprintf(c->last_error, sizeof c->last_error, "%.150s", f.msg);
    }
    snprintf(info->reason, sizeof info->reason, "%s", f.msg);
    return eex_fail(f.st, "%s", f.msg);
}

eex_status eex_cloud_client_send(eex_cloud_client *c, int cut, int expert, eex_metric metric, float threshold,
                                 const float *tensor, const int64_t *shape, int rank, eex_cloud_answer *answer,
                                 eex_offload_info *info)
{
    if (!c || !tensor || !shape || !answer || !info)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_cloud_client_send: NULL argument");
    const double t0 = eex_now_ms();
    memset(info, 0, sizeof *info);
    info->offloaded = 1;
    const eex_status st =
        send_until(c, cut, expert, metric, threshold, tensor, shape, rank, t0 + c->o.deadline_ms, answer, info);
    info->offload_ms = info->total_ms = eex_now_ms() - t0;
    info->server_ms = st ? 0.0 : answer->server_ms;
    info->degraded = st != EEX_OK;
    return st;
}

eex_status eex_session_run_offload(eex_session *s, eex_cloud_client *c, const eex_policy *policy, eex_exit_result *r,
                                   eex_offload_info *info)
{
    if (!s || !c || !policy || !r || !info)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_run_offload: NULL argument");
    const double t0 = eex_now_ms(), deadline = t0 + c->o.deadline_ms;
    /* the network waits end a little before the deadline, so that the local
     * answer after a failure is ready by it on a busy machine (waking from
     * poll() took up to 7 ms on the shared 2 cores): 5%, at most 10 ms */
    const double reserve = c->o.deadline_ms / 20.0 < 10.0 ? c->o.deadline_ms / 20.0 : 10.0;
    memset(info, 0, sizeof *info);
    const eex_model *m = c->m;
    eex_policy p = *policy;
    if (p.cut == EEX_NO_CUT && eex_model_cut_count(m) > 0)
        p.cut = eex_model_cut_count(m) - 1;  /* the edge hosts as many exits as it can */
    eex_status st = eex_session_run_policy(s, &p, r);
    info->edge_ms = eex_now_ms() - t0;
    if (st || r->where != EEX_WHERE_CUT) {
        info->total_ms = info->edge_ms;
        return st;
    }
    info->offloaded = 1;
    const int E = eex_model_exit_count(m), cut = r->cut, first = eex_model_cut_exit(m, cut);
    int64_t shape[EEX_MAX_RANK];
    int rank = eex_model_cut_shape(m, cut, shape);
    size_t elems = 1;
    for (int d = 0; d < rank; d++)
        elems *= (size_t)shape[d];
    if (elems > c->tensor_cap) {
        float *nt = realloc(c->tensor, elems * sizeof(float));
        if (!nt)
            return eex_fail(EEX_ERR_NOMEM, "cloud: out of memory");
        c->tensor = nt, c->tensor_cap = elems;
    }
    if ((st = eex_session_cut_tensor(s, cut, c->tensor, c->tensor_cap, shape, &rank)))
        return st;
    const double t1 = eex_now_ms();
    eex_cloud_answer a;
    if (t1 >= deadline) {
        snprintf(info->reason, sizeof info->reason, "deadline of %d ms passed on the edge (%.1f ms)", c->o.deadline_ms,
                 t1 - t0);
        st = EEX_ERR_IO;
    } else {
        st = send_until(c, cut, r->expert, p.metric, p.threshold, c->tensor, shape, rank, deadline - reserve, &a,
                        info);
        if (!st && (a.first_exit != first + 1 || a.first_exit + a.n != E + 2)) {
            snprintf(info->reason, sizeof info->reason, "the cloud answered for exits %d..%d, the edge needs %d..%d",
                     a.first_exit, a.first_exit + a.n - 1, first + 1, E + 1);
            st = EEX_ERR_FORMAT;
        }
    }
    info->offload_ms = eex_now_ms() - t1;
    if (!st) {
        for (int i = 0; i < a.n; i++) {
            r->confidences[first + i] = a.confidences[i];
            r->predictions[first + i] = a.classes[i];
        }
        r->n_computed = E + 1;
        info->server_ms = a.server_ms;
        /* the exit rule of a local full run, over edge and cloud classifiers */
        eex_result_answer(r, EEX_WHERE_CLOUD, eex_result_choose(r, &p));
    } else {
        info->degraded = 1;
        if (r->n_computed > 0)
            eex_result_answer(r, EEX_WHERE_DEGRADED, eex_result_choose(r, &p));
        else {
            /* no exit precedes the cut: the only local answer is the rest of the network */
            eex_status lst =
                eex_offload_resume(s, cut, c->tensor, shape, rank, r->expert, p.metric, p.threshold, &a);
            if (lst)
                return lst;
            for (int i = 0; i < a.n; i++) {
                r->confidences[first + i] = a.confidences[i];
                r->predictions[first + i] = a.classes[i];
            }
            r->n_computed = E + 1;
            eex_result_answer(r, EEX_WHERE_DEGRADED, a.exit - 1);
            const size_t n = strlen(info->reason);
            snprintf(info->reason + n, sizeof info->reason - n, "; finished locally");
        }
        eex_clear_error();
    }
    r->nodes_executed = eex_session_nodes_executed(s);
    eex_session_adaptive_settle(s, r);  /* an adaptive policy learns from the cloud's answer */
    info->total_ms = eex_now_ms() - t0;
    return EEX_OK;
}
