/* eex plan: where to cut and how to send. For every cut point and wire
 * codec: the edge's time to the cut, the request's bytes, transfer and
 * round trip on the given paths, the cloud's time for the rest, and with an
 * eval log the expected latency and accuracy given which images exit early;
 * the best cut + codec per path. The cost model is eex_plan_* (offload/
 * plan.c); the times are measured here (or scaled by `eex bench --json`
 * profiles of the edge and cloud machines); with --measure the same table is
 * run against a real `eex serve` and the measured medians printed beside the
 * predictions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evlog.h"
#include "offload_cli.h"

#define MAX_PATHS 8
#define MAX_THR 32
#define IMAGES 8  /* distinct seeded random inputs the timings cycle over */

static const char *HELP =
    "usage: eex plan MODEL.eex --rtt MS[,MS...] --bandwidth MBIT[,MBIT...] [options]\n"
    "\n"
    "For every cut point and wire codec: the edge's time to the cut, the request's\n"
    "bytes, transfer + round trip on each path, the cloud's time for the rest, the\n"
    "predicted latency of an offloaded image\n"
    "  edge + codec + RTT + bytes * 8 / bandwidth + cloud\n"
    "and, with an eval log, the expected latency over all images (an image that an\n"
    "exit before the cut answers costs only its edge time) and the accuracy; then\n"
    "the best cut + codec per path. Edge and cloud times are measured here on seeded\n"
    "random inputs (the exits forced off, so every run reaches the cut); a profile\n"
    "scales them by the ratio of its whole-model median to this machine's.\n"
    "\n"
    "options:\n"
    "  --rtt MS[,MS...]          round-trip time of each path (required)\n"
    "  --bandwidth MBIT[,...]    bandwidth of each path, Mbit/s (required, one per RTT)\n"
    "  --log EVAL.jsonl          an `eex eval --log` of this model: exit shares and\n"
    "                            accuracy per threshold\n"
    "  --threshold T             the p_tar to plan for (must be in the log; default\n"
    "                            the log's last)\n"
    "  --objective latency|accuracy  latency: least expected latency at the\n"
    "                            threshold; accuracy: the log's most accurate\n"
    "                            threshold, then least latency (default latency)\n"
    "  --wires LIST              codecs to consider, e.g. f16,i8 (default f32,f16,i8,q4)\n"
    "  --edge-profile FILE.json  `eex bench MODEL --json` made on the edge machine\n"
    "  --cloud-profile FILE.json `eex bench MODEL --json` made on the cloud machine\n"
    "  --runs R                  timed runs per figure (default 20)\n"
    "  --idle-ms MS              sleep before each timed edge and cloud run, as a\n"
    "                            deployment waits a round trip between images: runs\n"
    "                            after an idle gap are slower than back-to-back ones\n"
    "                            (default the smallest --rtt, at most 50; 0: back to\n"
    "                            back)\n"
    "  --measure HOST:PORT       also run R requests per cut and codec against an\n"
    "                            `eex serve` of this model over the (single) path given\n"
    "                            and print the measured medians beside the prediction\n"
    "                            (each cut's times are measured again just before its\n"
    "                            requests); a PING ahead of each request measures the\n"
    "                            path's round trip as this machine sees it\n"
    "  --tcp-cc NAME|system      congestion control of the --measure connection\n"
    "                            (default cubic, else reno: they do not pace;\n"
    "                            system: the machine's default, e.g. bbr)\n"
    "  --json                    one JSON object on stdout\n";

typedef struct plan_opts {
    const char *model, *log, *edge_prof, *cloud_prof, *measure, *tcp_cc;
    double rtt[MAX_PATHS], mbit[MAX_PATHS];
    int paths, runs, json, objective;
    double threshold, idle_ms;
    int has_threshold;
    unsigned wires;
} plan_opts;

typedef struct measured {
    double total, edge, offload, server, bytes, ping;
    double bound, bound_ping;  /* medians over requests of RTT (nominal, PING's) + bytes / bandwidth + server */
    int n, degraded;
} measured;

static int parse_list(const char *s, double *v, int cap, double lo, double hi)
{
    char buf[256];
    if (!s || strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == cap || cli_parse_float(t, lo, hi, &v[n]))
            return -1;
        n++;
    }
    return n ? n : -1;
}

static int parse_wires(const char *s, unsigned *mask)
{
    char buf[64];
    if (!s || strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    *mask = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        eex_wire w;
        if (cli_parse_wire(t, &w))
            return -1;
        *mask |= 1u << (int)w;
    }
    return *mask ? 0 : -1;
}

/* The top-level "median_ms" of an `eex bench --json` file. */
static int profile_median(const char *path, double *ms)
{
    size_t len;
    unsigned char *buf = NULL;
    char err[256];
    if (cli_read_file(path, "profile", 64u << 20, "", &buf, &len, err, sizeof err))
        return -1;
    char *text = malloc(len + 1);
    if (!text)
        return free(buf), -1;
    memcpy(text, buf, len);
    text[len] = 0;
    free(buf);
    const char *p = strstr(text, "\"median_ms\":");
    const int ok = p && sscanf(p + 12, "%lf", ms) == 1 && *ms > 0 && isfinite(*ms);
    free(text);
    return ok ? 0 : -1;
}

/* ---- eval log ---- */
typedef struct logstats {
    int images;
    int nthr;
    double thr[MAX_THR];
    /* [t][k]: images whose first side exit above the threshold is k (they
     * exit on the edge when exit k is before the cut) */
    double edge_at[MAX_THR][EEX_MAX_EXITS + 1];
    double correct[MAX_THR];
} logstats;

/* The log's threshold settings (the keys of its "answer" objects) and, per
 * setting, the exit shares and the accuracy of its answers. */
static int read_log(const char *path, logstats *L, char thr_str[MAX_THR][24])
{
    evlog log;
    char err[256];
    memset(L, 0, sizeof *L);
    if (evlog_read(path, 1, &log, err, sizeof err))
        return -1;
    L->nthr = log.n_settings < MAX_THR ? log.n_settings : MAX_THR;
    for (int t = 0; t < L->nthr; t++) {
        snprintf(thr_str[t], 24, "%s", log.settings[t]);
        L->thr[t] = atof(thr_str[t]);
    }
    int rc = 0;
    for (long i = 0; !rc && i < log.n; i++) {
        const evlog_rec *r = &log.r[i];
        for (int t = 0; t < L->nthr; t++) {
            if (r->answer[t] < 0) {
                rc = -1;
                break;
            }
            for (int k = 1; k <= log.exits; k++)
                if (r->conf[k - 1] > (float)L->thr[t]) {
                    L->edge_at[t][k] += 1;
                    break;
                }
            L->correct[t] += r->answer[t] == r->label;
        }
        L->images++;
    }
    evlog_free(&log);
    return rc || !L->images || !L->nthr ? -1 : 0;
}

/* ---- measurement here ---- */
static double median_of(double *v, int n) { return n ? cli_median(v, n) : 0.0; }

typedef struct bench_ctx {
    eex_model *m;
    eex_session *s;
    uint8_t *px[IMAGES];
    int h, w, c, expert;
} bench_ctx;

static int set_img(bench_ctx *b, int i) { return eex_session_set_image(b->s, b->px[i % IMAGES], b->h, b->w, b->c) ? -1 : 0; }

static int measure_cut(bench_ctx *b, eex_cloud_client *cl, int cut, int wire, int runs, const eex_path_model *pm,
                       measured *mo)
{
    double *t = malloc(sizeof(double) * 8 * (size_t)runs);
    if (!t)
        return -1;
    double *edge = t + runs, *off = t + 2 * runs, *srv = t + 3 * runs, *by = t + 4 * runs, *pg = t + 5 * runs,
           *bn = t + 6 * runs, *bp = t + 7 * runs;
    eex_cloud_client_set_wire(cl, (eex_wire)wire);
    const eex_policy p = {.threshold = 1.0f, .metric = EEX_METRIC_MAXPROB, .expert = b->expert, .cut = cut};
    int n = 0;
    mo->degraded = 0;
    for (int i = -2; i < runs; i++) {  /* two warm-up requests: connection, windows */
        eex_exit_result r;
        eex_offload_info info;
        if (set_img(b, i + 2) || eex_session_run_offload(b->s, cl, &p, &r, &info))
            return free(t), -1;
        if (i < 0)
            continue;
        if (r.where != EEX_WHERE_CLOUD) {
            mo->degraded++;
            continue;
        }
        t[n] = info.total_ms, edge[n] = info.edge_ms, off[n] = info.offload_ms, srv[n] = info.server_ms;
        by[n] = (double)info.bytes_sent;
        pg[n] = eex_cloud_client_probe_rtt_ms(cl);
        const double xfer = by[n] * 8.0 / (pm->mbit * 1000.0);
        bn[n] = pm->rtt_ms + xfer + srv[n];
        bp[n] = pg[n] + xfer + srv[n];
        n++;
    }
    mo->n = n;
    mo->total = median_of(t, n), mo->edge = median_of(edge, n), mo->offload = median_of(off, n);
    mo->server = median_of(srv, n), mo->bytes = median_of(by, n), mo->ping = median_of(pg, n);
    mo->bound = median_of(bn, n), mo->bound_ping = median_of(bp, n);
    free(t);
    return 0;
}

static int parse_args(int argc, char **argv, plan_opts *o)
{
    memset(o, 0, sizeof *o);
    o->runs = 20;
    o->idle_ms = -1;  /* the smallest RTT, below */
    o->wires = 1u << EEX_WIRE_F32 | 1u << EEX_WIRE_F16 | 1u << EEX_WIRE_I8 | 1u << EEX_WIRE_Q4;
    int nr = 0, nb = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(HELP, stdout);
            return -1;
        } else if (!strcmp(a, "--rtt") && has_val) {
            if ((nr = parse_list(argv[++i], o->rtt, MAX_PATHS, 0, 1e6)) < 0)
                return cli_usage("plan", "--rtt takes up to %d comma-separated ms values, not '%s'", MAX_PATHS, argv[i]);
        } else if (!strcmp(a, "--bandwidth") && has_val) {
            if ((nb = parse_list(argv[++i], o->mbit, MAX_PATHS, 1e-3, 1e6)) < 0)
                return cli_usage("plan", "--bandwidth takes up to %d comma-separated Mbit/s values > 0, not '%s'",
                                 MAX_PATHS, argv[i]);
        } else if (!strcmp(a, "--log") && has_val)
            o->log = argv[++i];
        else if (!strcmp(a, "--threshold") && has_val) {
            if (cli_parse_float(argv[++i], 0, 1, &o->threshold))
                return cli_usage("plan", "--threshold takes a number in [0,1], not '%s'", argv[i]);
            o->has_threshold = 1;
        } else if (!strcmp(a, "--objective") && has_val) {
            ++i;
            if (!strcmp(argv[i], "latency"))
                o->objective = 0;
            else if (!strcmp(argv[i], "accuracy"))
                o->objective = 1;
            else
                return cli_usage("plan", "--objective takes latency or accuracy, not '%s'", argv[i]);
        } else if (!strcmp(a, "--wires") && has_val) {
            if (parse_wires(argv[++i], &o->wires))
                return cli_usage("plan", "--wires takes a list of f32, f16, i8, q4, not '%s'", argv[i]);
        } else if (!strcmp(a, "--edge-profile") && has_val)
            o->edge_prof = argv[++i];
        else if (!strcmp(a, "--cloud-profile") && has_val)
            o->cloud_prof = argv[++i];
        else if (!strcmp(a, "--runs") && has_val) {
            if ((o->runs = cli_parse_int(argv[++i], 1, 100000)) < 0)
                return cli_usage("plan", "--runs takes 1..100000, not '%s'", argv[i]);
        } else if (!strcmp(a, "--idle-ms") && has_val) {
            if (cli_parse_float(argv[++i], 0, 10000, &o->idle_ms))
                return cli_usage("plan", "--idle-ms takes 0..10000 ms, not '%s'", argv[i]);
        } else if (!strcmp(a, "--measure") && has_val)
            o->measure = argv[++i];
        else if (!strcmp(a, "--tcp-cc") && has_val)
            o->tcp_cc = argv[++i];
        else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (a[0] == '-')
            return cli_usage("plan", "unknown option '%s' (or it needs a value)", a);
        else if (!o->model)
            o->model = a;
        else
            return cli_usage("plan", "unexpected argument '%s'", a);
    }
    if (!o->model)
        return cli_usage("plan", "a MODEL.eex is required");
    if (!nr || !nb)
        return cli_usage("plan", "--rtt and --bandwidth are required");
    if (nr != nb)
        return cli_usage("plan", "%d RTTs and %d bandwidths: give one of each per path", nr, nb);
    o->paths = nr;
    if (o->idle_ms < 0) {
        o->idle_ms = 50;
        for (int p = 0; p < nr; p++)
            o->idle_ms = o->rtt[p] < o->idle_ms ? o->rtt[p] : o->idle_ms;
    }
    if (o->measure && o->paths != 1)
        return cli_usage("plan", "--measure runs over one path: give one --rtt and one --bandwidth");
    return 0;
}

int cmd_plan(int argc, char **argv)
{
    plan_opts o;
    const int pr = parse_args(argc, argv, &o);
    if (pr)
        return pr < 0 ? CLI_OK : pr;
    logstats L;
    char thr_str[MAX_THR][24];
    int ti = -1;
    if (o.log) {
        if (read_log(o.log, &L, thr_str))
            return cli_error("plan", "%s: not an `eex eval --log` file (or empty)", o.log);
        if (o.objective == 1) {
            ti = 0;
            for (int t = 1; t < L.nthr; t++)
                if (L.correct[t] > L.correct[ti])
                    ti = t;
        } else if (o.has_threshold) {
            for (int t = 0; t < L.nthr; t++)
                if (fabs(L.thr[t] - o.threshold) < 1e-6)
                    ti = t;
            if (ti < 0)
                return cli_error("plan", "threshold %g is not in %s", o.threshold, o.log);
        } else
            ti = L.nthr - 1;
    } else if (o.objective == 1)
        return cli_usage("plan", "--objective accuracy needs --log EVAL.jsonl");
    double edge_scale = 1.0, cloud_scale = 1.0, edge_prof = 0, cloud_prof = 0;
    if (o.edge_prof && profile_median(o.edge_prof, &edge_prof))
        return cli_error("plan", "%s: no \"median_ms\" (make it with `eex bench MODEL --json`)", o.edge_prof);
    if (o.cloud_prof && profile_median(o.cloud_prof, &cloud_prof))
        return cli_error("plan", "%s: no \"median_ms\" (make it with `eex bench MODEL --json`)", o.cloud_prof);

    bench_ctx b = {0};
    eex_status st = eex_model_open(o.model, &b.m);
    if (st)
        return cli_status("plan", st);
    int rc = CLI_FAIL;
    eex_cloud_client *cl = NULL;
    if (eex_model_cut_count(b.m) < 1) {
        rc = cli_error("plan", "%s has no cut points", o.model);
        goto done;
    }
    if ((st = eex_session_new(b.m, NULL, &b.s))) {
        rc = cli_status("plan", st);
        goto done;
    }
    int64_t d[EEX_MAX_RANK];
    eex_model_input_shape(b.m, eex_model_image_input(b.m), d);
    b.c = (int)d[1], b.h = (int)d[2], b.w = (int)d[3];
    b.expert = eex_model_has_detector(b.m) ? EEX_EXPERT_AUTO : 0;
    uint64_t seed = 15;
    for (int i = 0; i < IMAGES; i++) {
        b.px[i] = malloc((size_t)b.h * b.w * b.c);
        if (!b.px[i]) {
            rc = cli_error("plan", "out of memory");
            goto done;
        }
        for (size_t q = 0; q < (size_t)b.h * b.w * b.c; q++)
            b.px[i][q] = (uint8_t)(eex_splitmix64(&seed) >> 56);
    }
    /* the whole model, as `eex bench` times it, for the profiles' scale */
    double local_full = 0;
    if (o.edge_prof || o.cloud_prof) {
        double *v = malloc(sizeof(double) * (size_t)o.runs);
        if (!v || set_img(&b, 0)) {
            free(v);
            rc = cli_error("plan", "out of memory");
            goto done;
        }
        for (int i = -2; i < o.runs; i++) {
            const double t0 = cli_now_ms();
            if ((st = eex_session_run(b.s))) {
                free(v);
                rc = cli_status("plan", st);
                goto done;
            }
            if (i >= 0)
                v[i] = cli_now_ms() - t0;
        }
        local_full = median_of(v, o.runs);
        free(v);
        if (o.edge_prof)
            edge_scale = edge_prof / local_full;
        if (o.cloud_prof)
            cloud_scale = cloud_prof / local_full;
    }

    eex_plan_costs k;
    if ((st = eex_plan_measure_idle(b.m, o.runs, o.idle_ms, &k))) {
        rc = cli_status("plan", st);
        goto done;
    }
    for (int x = 1; x <= k.exits && x <= EEX_MAX_EXITS; x++) {
        k.exit_ms[x] *= edge_scale;
        if (ti >= 0)
            k.exit_share[x] = L.edge_at[ti][x] / L.images;
    }
    for (int c = 0; c < k.cuts; c++) {
        k.edge_ms[c] *= edge_scale;
        k.cloud_ms[c] *= cloud_scale;
    }
    measured meas[EEX_PLAN_MAX_CUTS][EEX_WIRE_COUNT + 1];
    memset(meas, 0, sizeof meas);
    if (o.measure) {
        char host[256];
        int port;
        if (cli_parse_hostport(o.measure, "127.0.0.1", host, sizeof host, &port) || port < 1) {
            rc = cli_usage("plan", "--measure takes HOST:PORT, not '%s'", o.measure);
            goto done;
        }
        const eex_cloud_opts co = {.wire = EEX_WIRE_F32, .deadline_ms = 10000, .retry_ms = -1};
        const eex_path_model pm0 = {.rtt_ms = o.rtt[0], .mbit = o.mbit[0]};
        if ((st = eex_cloud_client_new(b.m, host, port, &co, &cl)) ||
            (o.tcp_cc && (st = eex_cloud_client_set_tcp_cc(cl, strcmp(o.tcp_cc, "system") ? o.tcp_cc : ""))) ||
            (st = eex_cloud_client_set_probe(cl, 1))) {
            rc = cli_status("plan", st);
            goto done;
        }
        for (int c = 0; c < k.cuts; c++) {
            /* this cut's costs again, just before its requests: on a shared
             * machine the load changes over the minutes a table takes */
            eex_plan_costs again;
            if ((st = eex_plan_measure_idle(b.m, o.runs, o.idle_ms, &again))) {
                rc = cli_status("plan", st);
                goto done;
            }
            k.edge_ms[c] = again.edge_ms[c] * edge_scale;
            k.cloud_ms[c] = again.cloud_ms[c] * cloud_scale;
            for (int w = 1; w <= EEX_WIRE_COUNT; w++)
                k.codec_ms[c][w] = again.codec_ms[c][w];
            for (int w = 1; w <= EEX_WIRE_COUNT; w++)
                if (o.wires >> w & 1u && measure_cut(&b, cl, c, w, o.runs, &pm0, &meas[c][w])) {
                    rc = cli_error("plan", "measuring cut %d %s: %s", c, cli_wire_name((eex_wire)w), eex_last_error());
                    goto done;
                }
        }
    }

    /* ---- report ---- */
    int best_c[MAX_PATHS], best_w[MAX_PATHS];
    double best_ms[MAX_PATHS];
    for (int pi = 0; pi < o.paths; pi++) {
        const eex_path_model pm = {.rtt_ms = o.rtt[pi], .mbit = o.mbit[pi]};
        best_ms[pi] = eex_plan_best(&k, &pm, o.wires, &best_c[pi], &best_w[pi]);
    }
    double acc = ti >= 0 ? L.correct[ti] / L.images : -1;
    if (o.json) {
        printf("{\"model\": ");
        cli_json_string(stdout, o.model);
        printf(", \"runs\": %d, \"idle_ms\": %.6g, \"edge_scale\": %.6g, \"cloud_scale\": %.6g, \"local_full_ms\": %.4f",
               o.runs, o.idle_ms, edge_scale, cloud_scale, local_full);
        if (ti >= 0)
            printf(", \"log\": {\"images\": %d, \"threshold\": %s, \"accuracy\": %.6f}", L.images, thr_str[ti], acc);
        if (cl)
            printf(", \"tcp_cc\": \"%s\"", eex_cloud_client_tcp_cc(cl));
        printf(", \"objective\": \"%s\", \"exits\": [", o.objective ? "accuracy" : "latency");
        for (int x = 1; x <= k.exits; x++)
            printf("%s{\"exit\": %d, \"edge_ms\": %.4f, \"share\": %.6f}", x > 1 ? ", " : "", x, k.exit_ms[x],
                   k.exit_share[x]);
        printf("], \"paths\": [");
        for (int pi = 0; pi < o.paths; pi++) {
            const eex_path_model pm = {.rtt_ms = o.rtt[pi], .mbit = o.mbit[pi]};
            printf("%s{\"rtt_ms\": %g, \"mbit\": %g, \"best\": {\"cut\": %d, \"cut_name\": ", pi ? ", " : "", pm.rtt_ms,
                   pm.mbit, best_c[pi]);
            cli_json_string(stdout, eex_model_cut_name(b.m, best_c[pi]));
            printf(", \"wire\": \"%s\", \"expected_ms\": %.3f}, \"rows\": [", cli_wire_name((eex_wire)best_w[pi]),
                   best_ms[pi]);
            int first = 1;
            for (int c = 0; c < k.cuts; c++)
                for (int w = 1; w <= EEX_WIRE_COUNT; w++) {
                    if (!(o.wires >> w & 1u))
                        continue;
                    printf("%s{\"cut\": %d, \"cut_name\": ", first ? "" : ", ", c);
                    first = 0;
                    cli_json_string(stdout, eex_model_cut_name(b.m, c));
                    const double req = eex_plan_request_ms(&k, c, w, &pm);
                    int64_t cd[EEX_MAX_RANK];
                    const int cr = eex_model_cut_shape(b.m, c, cd);
                    long long ne = 1;
                    for (int q = 0; q < cr; q++)
                        ne *= (long long)cd[q];
                    printf(", \"elements\": %lld", ne);
                    printf(", \"cut_exit\": %d, \"wire\": \"%s\", \"edge_ms\": %.4f, \"codec_ms\": %.4f, \"bytes\": %.0f, "
                           "\"transfer_ms\": %.4f, \"cloud_ms\": %.4f, \"request_ms\": %.3f, \"expected_ms\": %.3f",
                           k.cut_exit[c], cli_wire_name((eex_wire)w), k.edge_ms[c], k.codec_ms[c][w], k.bytes[c][w],
                           k.bytes[c][w] * 8.0 / (pm.mbit * 1000.0), k.cloud_ms[c], req,
                           eex_plan_expected_ms(&k, c, w, &pm));
                    if (o.measure) {
                        const measured *mm = &meas[c][w];
                        printf(", \"measured\": {\"n\": %d, \"degraded\": %d, \"total_ms\": %.3f, \"edge_ms\": %.3f, "
                               "\"offload_ms\": %.3f, \"server_ms\": %.3f, \"bytes\": %.0f, \"ping_ms\": %.3f, "
                               "\"wire_bound_ms\": %.3f, \"wire_bound_ping_ms\": %.3f}",
                               mm->n, mm->degraded, mm->total, mm->edge, mm->offload, mm->server, mm->bytes, mm->ping,
                               mm->bound, mm->bound_ping);
                    }
                    printf("}");
                    (void)0;
                }
            printf("]}");
        }
        printf("]}\n");
    } else {
        printf("model %s: %d cut points, %d side exits; times measured here (%d runs, %.3g ms idle before each)", o.model,
               k.cuts, k.exits, o.runs, o.idle_ms);
        if (o.edge_prof || o.cloud_prof)
            printf(", scaled edge x%.3f cloud x%.3f by the profiles", edge_scale, cloud_scale);
        printf("\n");
        if (ti >= 0) {
            printf("eval log %s: %d images, threshold %s, accuracy %.2f%%; edge exit shares", o.log, L.images,
                   thr_str[ti], 100 * acc);
            for (int x = 1; x <= k.exits; x++)
                printf(" %d:%.1f%%", x, 100 * k.exit_share[x]);
            printf("\n");
        }
        for (int pi = 0; pi < o.paths; pi++) {
            const eex_path_model pm = {.rtt_ms = o.rtt[pi], .mbit = o.mbit[pi]};
            printf("\npath %g Mbit/s, %g ms RTT\n", pm.mbit, pm.rtt_ms);
            printf("%-4s %-16s %-4s %9s %8s %9s %10s %9s %11s %12s%s\n", "cut", "name", "wire", "edge ms", "codec", "bytes",
                   "xfer ms", "cloud ms", "request ms", "expected ms", o.measure ? "  measured total / offload / bound ms" : "");
            for (int c = 0; c < k.cuts; c++)
                for (int w = 1; w <= EEX_WIRE_COUNT; w++) {
                    if (!(o.wires >> w & 1u))
                        continue;
                    char nb[64];
                    printf("%-4d %-16.16s %-4s %9.2f %8.3f %9.0f %10.3f %9.2f %11.2f %12.2f", c,
                           cli_printable(eex_model_cut_name(b.m, c), nb, sizeof nb), cli_wire_name((eex_wire)w),
                           k.edge_ms[c], k.codec_ms[c][w], k.bytes[c][w], k.bytes[c][w] * 8.0 / (pm.mbit * 1000.0),
                           k.cloud_ms[c], eex_plan_request_ms(&k, c, w, &pm), eex_plan_expected_ms(&k, c, w, &pm));
                    if (o.measure) {
                        const measured *mm = &meas[c][w];
                        printf("  %8.2f / %8.2f / %8.2f", mm->total, mm->offload, mm->bound);
                    }
                    printf("%s\n", c == best_c[pi] && w == best_w[pi] ? "  <- best" : "");
                }
        }
    }
    rc = CLI_OK;
done:
    eex_cloud_client_free(cl);
    for (int i = 0; i < IMAGES; i++)
        free(b.px[i]);
    eex_session_free(b.s);
    eex_model_close(b.m);
    return rc;
}
