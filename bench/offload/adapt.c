/* adapt: one edge client choosing its cut and codec itself (test tooling
 * for the automatic mode, eex_autoplan; docs/results/offload.md).
 *
 *   adapt MODEL.eex --cloud HOST:PORT [--requests N] [--interval-ms I]
 *         [--cut auto|N] [--wire auto|f32|f16|i8|q4] [--wires LIST]
 *         [--runs R] [--edge-scale X] [--expect RTT:MBIT[,RTT:MBIT...]]
 *         [--log FILE.jsonl] [--key FILE] [--tcp-cc NAME|system]
 *
 * Measures the costs here (eex_plan_measure, R runs; --edge-scale multiplies
 * the edge's times, to stand for a slower edge board), then sends N requests
 * of seeded random images, request i starting at i x I ms. With auto, each
 * request's cut and codec come from eex_autoplan_next and every reply
 * updates the estimate (eex_autoplan_done, the calls `eex eval --cut auto
 * --wire auto` makes); a PING ahead of each request times its round trip. The log has one line per request: the
 * choice, the estimated path (RTT, Mbit/s) it was made on, the PING's and
 * the kernel's RTT, the predicted and the measured latency. With --expect, the summary line tells which cut + codec
 * the final costs choose on each of those paths (what the test compares
 * the run's choices with). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../offload/offload.h"
#include "eex.h"

static int die(const char *what)
{
    fprintf(stderr, "adapt: %s: %s\n", what, eex_last_error());
    return 1;
}

#define wname eex_wire_name

static int wparse(const char *s)
{
    for (int w = 1; w <= EEX_WIRE_COUNT; w++)
        if (!strcmp(s, wname(w)))
            return w;
    return 0;
}

static void sleep_until(double t)
{
    for (;;) {
        const double l = t - eex_now_ms();
        if (l <= 0)
            return;
        struct timespec ts = {.tv_sec = (time_t)(l / 1e3), .tv_nsec = (long)((l - (double)(time_t)(l / 1e3) * 1e3) * 1e6)};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    const char *model = NULL, *cloud = NULL, *log = NULL, *expect = NULL, *keyfile = NULL, *tcp_cc = NULL;
    int requests = 40, interval = 0, runs = 10, cut_fixed = -1, wire_fixed = 0;
    double edge_scale = 1.0;
    unsigned wires = 0x1e;  /* f32 f16 i8 q4 */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--cloud") && v)
            cloud = argv[++i];
        else if (!strcmp(a, "--requests") && v)
            requests = atoi(argv[++i]);
        else if (!strcmp(a, "--interval-ms") && v)
            interval = atoi(argv[++i]);
        else if (!strcmp(a, "--runs") && v)
            runs = atoi(argv[++i]);
        else if (!strcmp(a, "--edge-scale") && v)
            edge_scale = atof(argv[++i]);
        else if (!strcmp(a, "--cut") && v) {
            ++i;
            cut_fixed = strcmp(argv[i], "auto") ? atoi(argv[i]) : -1;
        } else if (!strcmp(a, "--wire") && v) {
            ++i;
            wire_fixed = strcmp(argv[i], "auto") ? wparse(argv[i]) : 0;
            if (strcmp(argv[i], "auto") && !wire_fixed) {
                fprintf(stderr, "adapt: unknown wire '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--wires") && v) {
            char buf[64];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            wires = 0;
            for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv))
                wires |= wparse(t) ? 1u << wparse(t) : 0;
        } else if (!strcmp(a, "--expect") && v)
            expect = argv[++i];
        else if (!strcmp(a, "--log") && v)
            log = argv[++i];
        else if (!strcmp(a, "--key") && v)
            keyfile = argv[++i];
        else if (!strcmp(a, "--tcp-cc") && v)
            tcp_cc = argv[++i];
        else if (a[0] != '-' && !model)
            model = a;
        else {
            fprintf(stderr, "adapt: bad argument '%s'\n", a);
            return 2;
        }
    }
    const char *colon = cloud ? strrchr(cloud, ':') : NULL;
    if (!model || !colon || requests < 1 || runs < 1 || !wires || !(edge_scale > 0)) {
        fprintf(stderr, "usage: adapt MODEL.eex --cloud HOST:PORT [--requests N] [--interval-ms I] [--cut auto|N] "
                        "[--wire auto|W] [--wires LIST] [--runs R] [--edge-scale X] [--expect RTT:MBIT,...] [--log F]\n");
        return 2;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(colon - cloud), cloud);
    eex_model *m;
    if (eex_model_open(model, &m))
        return die(model);
    if (wire_fixed)
        wires = 1u << wire_fixed;
    eex_plan_costs k;
    if (eex_plan_measure(m, runs, &k))
        return die("measure");
    for (int c = 0; c < k.cuts; c++)
        k.edge_ms[c] *= edge_scale;
    if (cut_fixed >= k.cuts) {
        fprintf(stderr, "adapt: cut %d out of range (%d)\n", cut_fixed, k.cuts);
        return 2;
    }
    eex_autoplan ap;
    eex_autoplan_init(&ap, &k, wires);
    eex_session *s;
    eex_cloud_client *cl;
    const eex_cloud_opts co = {.wire = EEX_WIRE_F32, .deadline_ms = 10000, .retry_ms = -1};
    if (eex_session_new(m, NULL, &s) || eex_cloud_client_new(m, host, atoi(colon + 1), &co, &cl))
        return die("client");
    if (tcp_cc && eex_cloud_client_set_tcp_cc(cl, strcmp(tcp_cc, "system") ? tcp_cc : ""))
        return die("tcp-cc");
    if (keyfile) {
        uint8_t key[EEX_KEY_MAX];
        size_t klen;
        if (eex_key_read(keyfile, key, sizeof key, &klen) || eex_cloud_client_set_key(cl, key, klen))
            return die("key");
    }
    int64_t d[EEX_MAX_RANK];
    eex_model_input_shape(m, eex_model_image_input(m), d);
    const int C = (int)d[1], H = (int)d[2], W = (int)d[3];
    uint8_t *px = malloc((size_t)H * W * C);
    if (!px)
        return die("memory");
    FILE *lf = log ? fopen(log, "w") : NULL;
    if (log && !lf) {
        perror(log);
        return 1;
    }
    uint64_t seed = 7;
    const double t0 = eex_now_ms();
    int cloud_n = 0;
    for (int r = 0; r < requests; r++) {
        if (interval)
            sleep_until(t0 + (double)r * interval);
        for (size_t q = 0; q < (size_t)H * W * C; q++)
            px[q] = (uint8_t)(eex_splitmix64(&seed) >> 56);
        eex_autoplan_step step;
        if (eex_autoplan_next(&ap, cl, &step))
            return die("plan");
        if (cut_fixed >= 0)
            step.cut = cut_fixed;
        const int cut = step.cut, wire = step.wire;
        const eex_policy p = {.threshold = 1.0f, .metric = EEX_METRIC_MAXPROB,
                              .expert = eex_model_has_detector(m) ? EEX_EXPERT_AUTO : 0, .cut = cut};
        eex_exit_result res;
        eex_offload_info info;
        const double start = eex_now_ms() - t0;
        if (eex_session_set_image(s, px, H, W, C) || eex_session_run_offload(s, cl, &p, &res, &info))
            return die("request");
        eex_autoplan_done(&ap, cl, &step, &info);
        const double trtt = step.tcp_rtt_ms, prtt = step.probe_rtt_ms;
        const double pred = step.predicted_ms;
        const eex_path_est before = step.path;
        cloud_n += res.where == EEX_WHERE_CLOUD;
        eex_cloud_timing tm;
        eex_cloud_client_last_timing(cl, &tm);
        if (lf)
            fprintf(lf,
                    "{\"i\": %d, \"id\": %llu, \"t_start\": %.3f, \"encoded\": %.3f, \"sent\": %.3f, \"pong\": %.3f, "
                    "\"reply_head\": %.3f, \"reply\": %.3f, \"done\": %.3f, ",
                    r, (unsigned long long)info.request_id, tm.start, tm.encoded - tm.start, tm.sent - tm.start,
                    tm.pong > 0 ? tm.pong - tm.start : 0.0, tm.reply_head - tm.start, tm.reply - tm.start,
                    tm.done - tm.start);
        if (lf)
            fprintf(lf,
                    "\"start_ms\": %.3f, \"cut\": %d, \"wire\": \"%s\", \"where\": \"%s\", "
                    "\"est_rtt_ms\": %.3f, \"est_mbit\": %.3f, \"ping_ms\": %.3f, \"tcp_rtt_ms\": %.3f, \"predicted_ms\": %.3f, "
                    "\"total_ms\": %.3f, \"edge_ms\": %.3f, \"offload_ms\": %.3f, \"server_ms\": %.3f, \"bytes\": %zu, "
                    "\"tcp_cc\": \"%s\"}\n",
                    start, cut, wname(wire), res.where == EEX_WHERE_CLOUD ? "cloud" : "degraded", before.rtt_ms,
                    before.mbit, prtt, trtt, pred, info.total_ms, info.edge_ms, info.offload_ms, info.server_ms,
                    info.bytes_sent, eex_cloud_client_tcp_cc(cl));
        if (lf)
            fflush(lf);  /* the test watches the log to change the path */
    }
    if (lf)
        fclose(lf);
    printf("{\"requests\": %d, \"cloud\": %d, \"changes\": %d, \"final\": {\"cut\": %d, \"wire\": \"%s\", \"rtt_ms\": %.3f, "
           "\"mbit\": %.3f}, \"expect\": [",
           requests, cloud_n, ap.changes, ap.cut, wname(ap.wire), ap.path.rtt_ms, ap.path.mbit);
    if (expect) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", expect);
        int first = 1;
        for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
            eex_path_model pm = {0};
            if (sscanf(t, "%lf:%lf", &pm.rtt_ms, &pm.mbit) != 2 || !(pm.mbit > 0))
                continue;
            int c = 0, w = 1;
            const double ms = eex_plan_best(&ap.costs, &pm, wires, &c, &w);
            printf("%s{\"rtt_ms\": %g, \"mbit\": %g, \"cut\": %d, \"wire\": \"%s\", \"ms\": %.3f, \"table\": {",
                   first ? "" : ", ", pm.rtt_ms, pm.mbit, c, wname(w), ms);
            int f2 = 1;
            for (int cc = 0; cc < ap.costs.cuts; cc++)
                for (int ww = 1; ww <= EEX_WIRE_COUNT; ww++)
                    if (wires >> ww & 1u) {
                        printf("%s\"%d%s\": %.3f", f2 ? "" : ", ", cc, wname(ww), eex_plan_expected_ms(&ap.costs, cc, ww, &pm));
                        f2 = 0;
                    }
            printf("}}");
            first = 0;
        }
    }
    printf("], \"edge_ms\": [");
    for (int c = 0; c < ap.costs.cuts; c++)
        printf("%s%.4f", c ? ", " : "", ap.costs.edge_ms[c]);
    printf("], \"cloud_ms\": [");
    for (int c = 0; c < ap.costs.cuts; c++)
        printf("%s%.4f", c ? ", " : "", ap.costs.cloud_ms[c]);
    printf("]}\n");
    free(px);
    eex_cloud_client_free(cl);
    eex_session_free(s);
    eex_model_close(m);
    return 0;
}
