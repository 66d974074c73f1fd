/* eex serve: the cloud half. Finishes the network from cut tensors sent by
 * edges running the same model file (docs/protocol.md). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "offload_cli.h"

static const char help[] =
    "usage: eex serve MODEL.eex --listen [ADDR:]PORT [options]\n"
    "\n"
    "Serves the cloud half of MODEL.eex over TCP (wire protocol v1, docs/protocol.md):\n"
    "an edge that stops at a cut point sends the cut tensor; the server runs the rest\n"
    "of the network (the side exits after the cut and the final classifier) and\n"
    "answers. Requests for another model file (digest) or protocol version get an\n"
    "error frame. Many edges may stay connected, each for many requests.\n"
    "SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.\n"
    "The model is read into memory at start: the file may be replaced or edited\n"
    "while the server runs. SIGHUP: read MODEL.eex again and serve it (the new\n"
    "digest is printed on stderr; a file that cannot be served leaves the old one).\n"
    "\n"
    "options:\n"
    "  --listen [ADDR:]PORT    address and port (ADDR defaults to 127.0.0.1; PORT 0\n"
    "                          picks a free one, printed on stderr)\n"
    "  --threads N             worker sessions, 1..256 (default 1)\n"
    "  --log FILE.jsonl        one line per request: time, request id, peer, cut,\n"
    "                          expert, dtype, bytes in/out, ms, error (answered:\n"
    "                          recv_at, queue_ms, compute_ms, handoff_ms, where the\n"
    "                          time went; recv_at in the monotonic clock); refused\n"
    "                          frames: 5 lines per client address and second, the\n"
    "                          rest counted in one line, 100 such lines a second\n"
    "  --max-conns N           open connections at most (default 256); when all are\n"
    "                          taken, a new one replaces the connection idle longest\n"
    "                          (one that never sent a frame first)\n"
    "  --max-conns-per-addr N  open connections from one IP address at most (default\n"
    "                          max-conns / 2; behind a load balancer: = --max-conns)\n"
    "  --frame-timeout-ms T    a frame must arrive whole within T of its first byte,\n"
    "                          and a new connection's first byte within T (default 5000)\n"
    "  --idle-timeout-ms T     close a connection idle between frames (default 60000)\n"
    "  --write-timeout-ms T    close a connection that does not take its reply (5000)\n"
    "  --drain-timeout-ms T    on SIGTERM, longest wait for requests in flight (10000)\n"
    "  --batch N               finish up to N waiting requests for the same cut and\n"
    "                          expert in one run of the remaining layers (default 32)\n"
    "  --no-batch              one request per run (--batch 1)\n"
    "  --batch-wait-us T       a worker that found fewer than N waits up to T us for\n"
    "                          more (default 0: batch only what is already waiting)\n"
    "  --key FILE              shared secret (16..4096 bytes, mode o-rwx): every frame\n"
    "                          must carry its HMAC-SHA256 tag and request ids must\n"
    "                          increase on a connection; others are refused, closed\n"
    "                          and reported on stderr (and in --log); replies are\n"
    "                          bound to their requests, and a request frame seen\n"
    "                          before on any connection is refused (--replay-window)\n"
    "  --replay-window N       with --key: remember the tags of the last N requests\n"
    "                          (default 262144, about 7 MB)\n";

static eex_server *g_server;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        eex_server_reload(g_server);
    else
        eex_server_stop(g_server);
}

/* The served model lives in private memory, read from the file once: the
 * file may then be overwritten, truncated or edited in place without the
 * server noticing (a mapping of it would fault or change under the digest).
 * A reload (SIGHUP) reads the path again. */
typedef struct served {
    eex_model *m;
    unsigned char *buf;
} served;

static const char *g_path;
static served g_cur, g_next;
static double g_reload_t0;

/* On failure err says why (the file's error, or eex_last_error()). */
static eex_status served_open(const char *path, served *out, char *err, size_t cap)
{
    size_t size;
    out->m = NULL;
    if (cli_read_file(path, "model", (size_t)-1, NULL, &out->buf, &size, err, cap))
        return EEX_ERR_IO;
    const eex_status st = eex_model_open_buffer(out->buf, size, &out->m);
    if (st) {
        snprintf(err, cap, "%s", eex_last_error());
        free(out->buf);
        out->buf = NULL;
    }
    return st;
}

static void served_close(served *s)
{
    eex_model_close(s->m);
    free(s->buf);
    s->m = NULL, s->buf = NULL;
}

static void digest_hex(const eex_model *m, char hex[2 * EEX_DIGEST_BYTES + 1])
{
    uint8_t d[EEX_DIGEST_BYTES];
    eex_model_digest(m, d);
    for (int i = 0; i < EEX_DIGEST_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static const eex_model *reload_open(void *user)
{
    (void)user;
    char was[2 * EEX_DIGEST_BYTES + 1];
    digest_hex(g_cur.m, was);
    g_reload_t0 = cli_now_ms();
    char err[512];
    if (served_open(g_path, &g_next, err, sizeof err)) {
        fprintf(stderr, "eex serve: reload of %s failed: %s; still serving sha256 %.12s...\n", g_path, err,
                was);
        fflush(stderr);
        return NULL;
    }
    return g_next.m;
}

static void reload_done(void *user, const eex_model *unused, eex_status st)
{
    (void)user;
    char was[2 * EEX_DIGEST_BYTES + 1], now[2 * EEX_DIGEST_BYTES + 1];
    digest_hex(g_cur.m, was);
    if (st) {
        fprintf(stderr, "eex serve: reload of %s refused: %s; still serving sha256 %.12s...\n", g_path,
                eex_last_error(), was);
        served_close(&g_next);
    } else {
        (void)unused;  /* the old model: g_cur */
        served_close(&g_cur);
        g_cur = g_next;
        g_next = (served){0};
        digest_hex(g_cur.m, now);
        fprintf(stderr, "eex serve: reloaded %s: model %s (sha256 %s), was sha256 %.12s... (%.1f ms)\n", g_path,
                eex_model_name(g_cur.m) ? eex_model_name(g_cur.m) : "?", now, was, cli_now_ms() - g_reload_t0);
    }
    fflush(stderr);
}

/* Refused frames (authentication, replay) go to stderr too, at most 10 a
 * second so that a flood cannot fill a disk; the rest are counted. */
static void report_rejected(const eex_server_log_rec *r)
{
    static double window;
    static int shown;
    static unsigned long suppressed;
    const double sec = (double)(long)r->unix_time;
    if (sec != window)
        window = sec, shown = 0;
    if (shown >= 10) {
        suppressed++;
        return;
    }
    shown++;
    fprintf(stderr, "eex serve: refused a frame from %s (request id %llu): %s: %s", r->peer,
            (unsigned long long)r->request_id, r->error == EEX_WIRE_ERR_AUTH ? "auth" : "replay", r->reason);
    if (suppressed)
        fprintf(stderr, " (%lu more not shown)", suppressed), suppressed = 0;
    fputc('\n', stderr);
}

static void write_rec(FILE *f, const eex_server_log_rec *r)
{
    fprintf(f, "{\"t\": %.6f, \"id\": %llu, \"peer\": ", r->unix_time, (unsigned long long)r->request_id);
    cli_json_string(f, r->peer);
    fprintf(f, ", \"type\": %d, \"cut\": %d, \"expert\": %d, \"dtype\": ", r->type, r->cut, r->expert);
    cli_json_string(f, r->dtype);
    fprintf(f, ", \"bytes_in\": %zu, \"bytes_out\": %zu, \"ms\": %.3f", r->bytes_in, r->bytes_out, r->ms);
    if (r->compute_ms > 0)
        fprintf(f, ", \"recv_at\": %.3f, \"queue_ms\": %.3f, \"compute_ms\": %.3f, \"handoff_ms\": %.3f", r->recv_at,
                r->queue_ms, r->compute_ms, r->handoff_ms);
    if (r->error) {
        fprintf(f, ", \"error\": %d, \"reason\": ", r->error);
        cli_json_string(f, r->reason);
    } else
        fprintf(f, ", \"exit\": %d, \"class\": %d, \"confidence\": %.6f", r->exit, r->cls, r->confidence);
    fputs("}\n", f);
}

/* Refusals in --log: per client address and second, the first LOG_PER_PEER
 * are written whole; the rest of that second become one line
 * {"t", "peer", "suppressed": N, "errors": {"code": n, ...}} written when the
 * address shows up again in a later second, when its slot is needed, or at
 * exit. All addresses together get at most LOG_PER_SEC lines of refusals a
 * second (whole or summaries); beyond that one global summary line
 * ("peer": "*") carries the count. Answered requests are always written. */
#define LOG_PER_PEER 5
#define LOG_PER_SEC 100
#define LOG_PEERS 64

typedef struct peer_log {
    char addr[64];                 /* the peer without its port */
    long sec;
    int shown;
    unsigned long suppressed, by_code[16];
    double last;                   /* for eviction: least recently seen goes */
} peer_log;

static peer_log g_peers[LOG_PEERS];
static long g_log_sec;
static int g_log_lines;
static unsigned long g_log_dropped, g_dropped_by_code[16];

static void write_summary(FILE *f, double t, const char *peer, unsigned long n, const unsigned long *by_code)
{
    fprintf(f, "{\"t\": %.6f, \"peer\": ", t);
    cli_json_string(f, peer);
    fprintf(f, ", \"suppressed\": %lu, \"errors\": {", n);
    const char *sep = "";
    for (int k = 0; k < 16; k++)
        if (by_code[k]) {
            fprintf(f, "%s\"%d\": %lu", sep, k, by_code[k]);
            sep = ", ";
        }
    fputs("}}\n", f);
}

static void flush_peer(FILE *f, peer_log *p, double t)
{
    if (p->suppressed)
        write_summary(f, t, p->addr, p->suppressed, p->by_code);
    p->suppressed = 0;
    memset(p->by_code, 0, sizeof p->by_code);
}

static void flush_dropped(FILE *f, double t)
{
    if (g_log_dropped)
        write_summary(f, t, "*", g_log_dropped, g_dropped_by_code);
    g_log_dropped = 0;
    memset(g_dropped_by_code, 0, sizeof g_dropped_by_code);
}

/* Every pending summary, at exit. */
static void flush_log(FILE *f, double t)
{
    if (!f)
        return;
    for (int i = 0; i < LOG_PEERS; i++)
        if (g_peers[i].addr[0])
            flush_peer(f, &g_peers[i], t);
    flush_dropped(f, t);
    fflush(f);
}

static void log_refusal(FILE *f, const eex_server_log_rec *r)
{
    const long sec = (long)r->unix_time;
    if (sec != g_log_sec) {
        if (g_log_dropped)
            flush_dropped(f, r->unix_time);
        g_log_sec = sec, g_log_lines = 0;
    }
    char addr[64];
    snprintf(addr, sizeof addr, "%s", r->peer ? r->peer : "?");
    char *colon = strrchr(addr, ':');  /* "1.2.3.4:5678" and "::1:5678": the port is after the last colon */
    if (colon)
        *colon = '\0';
    peer_log *p = NULL, *lru = &g_peers[0];
    for (int i = 0; i < LOG_PEERS && !p; i++) {
        if (!strcmp(g_peers[i].addr, addr))
            p = &g_peers[i];
        else if (g_peers[i].last < lru->last)
            lru = &g_peers[i];
    }
    if (!p) {
        if (lru->addr[0])
            flush_peer(f, lru, r->unix_time);
        memset(lru, 0, sizeof *lru);
        snprintf(lru->addr, sizeof lru->addr, "%s", addr);
        lru->sec = sec;
        p = lru;
    }
    p->last = r->unix_time;
    if (p->sec != sec) {
        if (p->suppressed && g_log_lines < LOG_PER_SEC) {
            flush_peer(f, p, r->unix_time);
            g_log_lines++;
        }
        p->sec = sec, p->shown = 0;
    }
    const int code = r->error > 0 && r->error < 16 ? r->error : 0;
    if (p->shown < LOG_PER_PEER && g_log_lines < LOG_PER_SEC) {
        p->shown++;
        g_log_lines++;
        write_rec(f, r);
    } else if (p->shown < LOG_PER_PEER) {
        g_log_dropped++;
        g_dropped_by_code[code]++;
    } else {
        p->suppressed++;
        p->by_code[code]++;
    }
}

static void log_line(void *user, const eex_server_log_rec *r)
{
    if (r->error == EEX_WIRE_ERR_AUTH || r->error == EEX_WIRE_ERR_REPLAY)
        report_rejected(r);
    FILE *f = user;
    if (!f)
        return;
    if (r->error)
        log_refusal(f, r);
    else
        write_rec(f, r);
    fflush(f);
}

int cmd_serve(int argc, char **argv)
{
    const char *model = NULL, *listen = NULL, *log = NULL, *keyfile = NULL;
    eex_server_opts o = {0};
    int batch = 32, batch_wait_us = 0, replay_window = 0, per_addr = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        int *num = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--listen") && has_val)
            listen = argv[++i];
        else if (!strcmp(a, "--log") && has_val)
            log = argv[++i];
        else if (!strcmp(a, "--threads") && has_val) {
            if ((o.threads = cli_parse_int(argv[++i], 1, 256)) < 0)
                return cli_usage("serve", "--threads takes 1..256 (worker sessions), not '%s'", argv[i]);
        }
        else if (!strcmp(a, "--max-conns") && has_val)
            num = &o.max_conns;
        else if (!strcmp(a, "--frame-timeout-ms") && has_val)
            num = &o.frame_timeout_ms;
        else if (!strcmp(a, "--idle-timeout-ms") && has_val)
            num = &o.idle_timeout_ms;
        else if (!strcmp(a, "--write-timeout-ms") && has_val)
            num = &o.write_timeout_ms;
        else if (!strcmp(a, "--drain-timeout-ms") && has_val)
            num = &o.drain_timeout_ms;
        else if (!strcmp(a, "--max-conns-per-addr") && has_val)
            num = &per_addr;
        else if (!strcmp(a, "--replay-window") && has_val)
            num = &replay_window;
        else if (!strcmp(a, "--key") && has_val)
            keyfile = argv[++i];
        else if (!strcmp(a, "--no-batch"))
            batch = 1;
        else if (!strcmp(a, "--batch") && has_val) {
            if ((batch = cli_parse_int(argv[++i], 1, 256)) < 0)
                return cli_usage("serve", "--batch takes 1..256, not '%s'", argv[i]);
        } else if (!strcmp(a, "--batch-wait-us") && has_val) {
            if ((batch_wait_us = cli_parse_int(argv[++i], 0, 1000000)) < 0)
                return cli_usage("serve", "--batch-wait-us takes 0..1000000, not '%s'", argv[i]);
        }
        else if (a[0] == '-' && a[1])
            return cli_usage("serve", has_val ? "unknown option '%s'" : "option '%s' needs a value or is unknown", a);
        else if (!model)
            model = a;
        else
            return cli_usage("serve", "unexpected argument '%s'", a);
        if (num && (*num = cli_parse_int(argv[++i], 1, 100000000)) < 0)
            return cli_usage("serve", "%s takes a positive integer, not '%s'", a, argv[i]);
    }
    if (!model)
        return cli_usage("serve", "missing MODEL.eex");
    if (!listen)
        return cli_usage("serve", "missing --listen [ADDR:]PORT");
    char host[256];
    if (cli_parse_hostport(listen, "127.0.0.1", host, sizeof host, &o.port))
        return cli_usage("serve", "--listen takes [ADDR:]PORT, not '%s'", listen);
    o.host = host;
    uint8_t key[EEX_KEY_MAX];
    size_t key_len = 0;
    eex_status st;
    if (keyfile && (st = eex_key_read(keyfile, key, sizeof key, &key_len)))
        return cli_status("serve", st);
    FILE *lf = NULL;
    if (log && !(lf = fopen(log, "a")))
        return cli_error("serve", "cannot open log '%s'", log);
    o.log = log_line;  /* also reports refused frames on stderr */
    o.log_user = lf;
    g_path = model;
    char err[512];
    st = served_open(model, &g_cur, err, sizeof err);
    eex_model *m = g_cur.m;
    if (st) {
        if (lf)
            fclose(lf);
        return cli_error("serve", "%s (%s)", err, eex_status_name(st));
    }
    if ((st = eex_server_new(m, &o, &g_server)) || (st = eex_server_set_batch(g_server, batch, batch_wait_us)) ||
        (key_len && (st = eex_server_set_key(g_server, key, key_len))) ||
        (replay_window && (st = eex_server_set_replay_window(g_server, replay_window))) ||
        (per_addr && (st = eex_server_set_conn_limit(g_server, per_addr)))) {
        memset(key, 0, sizeof key);
        eex_server_free(g_server);
        g_server = NULL;
        served_close(&g_cur);
        if (lf)
            fclose(lf);
        return cli_status("serve", st);
    }
    memset(key, 0, sizeof key);
    uint8_t d[EEX_DIGEST_BYTES];
    eex_model_digest(m, d);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    const eex_server_reloader rl = {.open = reload_open, .done = reload_done};
    eex_server_set_reloader(g_server, &rl);
    fprintf(stderr,
            "eex serve: listening on %s%s%s:%d, model %s (sha256 %02x%02x%02x%02x%02x%02x...), %d worker%s, "
            "batch %d, %s\n",
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", eex_server_port(g_server),
            eex_model_name(m) ? eex_model_name(m) : model, d[0], d[1], d[2], d[3], d[4], d[5], o.threads ? o.threads : 1,
            o.threads > 1 ? "s" : "", batch, key_len ? "frames authenticated (HMAC-SHA256)" : "no key");
    fflush(stderr);
    st = eex_server_run(g_server);
    eex_server_stats ss;
    eex_server_xstats xs;
    eex_server_get_stats(g_server, &ss);
    eex_server_get_xstats(g_server, &xs);
    fprintf(stderr,
            "eex serve: stopped: %llu connections (%llu refused), %llu requests answered, %llu error frames, "
            "%llu connections closed for bad frames or timeouts; %llu runs (%llu requests in batches, largest %d); "
            "%llu frames refused for authentication, %llu for replayed ids; %llu idle connections evicted, "
            "%llu refused over the per-address cap; %llu reloads\n",
            (unsigned long long)ss.connections, (unsigned long long)ss.refused, (unsigned long long)ss.requests,
            (unsigned long long)ss.errors, (unsigned long long)ss.closed_bad, (unsigned long long)xs.runs,
            (unsigned long long)xs.batched, xs.max_batch, (unsigned long long)xs.auth_rejected,
            (unsigned long long)xs.replays, (unsigned long long)xs.evicted, (unsigned long long)xs.refused_addr,
            (unsigned long long)xs.reloads);
    int rc = st ? cli_status("serve", st) : CLI_OK;
    eex_server_free(g_server);
    g_server = NULL;
    served_close(&g_cur);
    if (lf) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        flush_log(lf, (double)ts.tv_sec + ts.tv_nsec / 1e9);
        fclose(lf);
    }
    return rc;
}
