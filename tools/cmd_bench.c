/* eex bench: how fast a model runs here, whole and node by node.
 *
 * Whole-model times come from unprofiled runs; the per-node table from a
 * second series of profiled runs (a clock read around each node), so the
 * profiling cost never shows in the headline numbers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../kernels/dispatch.h"
#include "../kernels/gemm.h"
#include "bench_exits.h"
#include "cli.h"
#include "run_ee.h"

static const char help[] =
    "usage: eex bench MODEL.eex [options]\n"
    "\n"
    "Runs MODEL.eex on a seeded random input: W warm-up runs, then R timed runs\n"
    "(min / median / max ms), then R profiled runs for a per-node table: op,\n"
    "output shape, median ms, GFLOP/s (compute-bound nodes) or GB/s (memory-bound\n"
    "nodes, by arithmetic intensity), and share of the total. Ends with the peak\n"
    "resident memory of the process.\n"
    "\n"
    "options:\n"
    "  --threads N        worker threads (default 1)\n"
    "  --runs R           timed runs (default 50)\n"
    "  --warmup W         warm-up runs (default 10)\n"
    "  --batch B          images per run (default 1)\n"
    "  --kernels ref|auto ref times the scalar reference kernels (default auto)\n"
    "  --json             one JSON object on stdout instead of the table\n"
    "  --nodes N          rows of the node table, slowest first (default all)\n"
    "  --exits            early-exit models: the latency to each exit (a run that\n"
    "                     answers there) beside the profile's backbone-up-to-k plus\n"
    "                     head time, and what the heads cost the backbone\n"
    "  --expert NAME      expert set for --exits (default the first)\n"
    "\n"
    "The fast kernels' ISA is the best this CPU has; EEX_ISA=avx2|scalar|... caps it.\n";

typedef struct bench_opts {
    const char *model;
    int threads, runs, warmup, batch, json, nodes, exits;
    const char *expert;
    eex_kernels kernels;
} bench_opts;

static double peak_rss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return 0.0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

static int parse(int argc, char **argv, bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->threads = 1, o->runs = 50, o->warmup = 10, o->batch = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        int *dst = NULL, lo = 1, hi = 1000000;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return -1;
        } else if (!strcmp(a, "--threads") && has_val)
            dst = &o->threads, hi = 256;
        else if (!strcmp(a, "--runs") && has_val)
            dst = &o->runs;
        else if (!strcmp(a, "--warmup") && has_val)
            dst = &o->warmup, lo = 0;
        else if (!strcmp(a, "--batch") && has_val)
            dst = &o->batch, hi = 4096;
        else if (!strcmp(a, "--nodes") && has_val)
            dst = &o->nodes, lo = 0;
        else if (!strcmp(a, "--kernels") && has_val) {
            if (cli_parse_kernels(argv[++i], &o->kernels))
                return cli_usage("bench", "--kernels takes 'ref' or 'auto', not '%s'", argv[i]);
        } else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--exits"))
            o->exits = 1;
        else if (!strcmp(a, "--expert") && has_val)
            o->expert = argv[++i];
        else if (a[0] == '-' && a[1])
            return cli_usage("bench", has_val ? "unknown option '%s'" : "option '%s' needs a value or is unknown", a);
        else if (!o->model)
            o->model = a;
        else
            return cli_usage("bench", "unexpected argument '%s'", a);
        if (dst && (*dst = cli_parse_int(argv[++i], lo, hi)) < 0)
            return cli_usage("bench", "%s takes an integer in [%d, %d], not '%s'", a, lo, hi, argv[i]);
    }
    if (!o->model)
        return cli_usage("bench", "missing MODEL.eex");
    return 0;
}

typedef struct node_row {
    eex_node_info info;
    double ms;    /* median */
    double rate;  /* GFLOP/s or GB/s */
    int compute;  /* rate is GFLOP/s */
} node_row;

/* Nodes doing more than this many FLOPs per byte moved are reported in
 * GFLOP/s, the rest in GB/s: roughly where a core's FLOP rate and its
 * cache bandwidth cross. */
#define COMPUTE_BOUND_FLOP_PER_BYTE 4.0

static int cmp_row_ms(const void *a, const void *b)
{
    const double x = ((const node_row *)a)->ms, y = ((const node_row *)b)->ms;
    return x > y ? -1 : x < y;
}

static void shape_str(const eex_node_info *in, char *buf, size_t cap)
{
    if (in->out_rank == 4)
        snprintf(buf, cap, "%lldx%lldx%lldx%lld", (long long)in->out_shape[0], (long long)in->out_shape[1],
                 (long long)in->out_shape[2], (long long)in->out_shape[3]);
    else
        snprintf(buf, cap, "%lldx%lld", (long long)in->out_shape[0], (long long)in->out_shape[1]);
}

static int bench(const bench_opts *o, eex_model *m, eex_session *s)
{
    eex_status st = bench_random_inputs(m, s, o->batch);
    if (st)
        return st == EEX_ERR_NOMEM ? cli_error("bench", "out of memory") : cli_status("bench", st);

    const int n_nodes = eex_session_node_count(s);
    double *t = malloc(sizeof(double) * (size_t)o->runs);
    double *node_t = malloc(sizeof(double) * (size_t)o->runs * (size_t)(n_nodes > 0 ? n_nodes : 1));
    node_row *rows = calloc((size_t)(n_nodes > 0 ? n_nodes : 1), sizeof *rows);
    if (!t || !node_t || !rows) {
        free(t), free(node_t), free(rows);
        return cli_error("bench", "out of memory");
    }
    for (int i = 0; i < o->warmup && !st; i++)
        st = eex_session_run(s);
    for (int i = 0; i < o->runs && !st; i++) {
        const double t0 = cli_now_ms();
        st = eex_session_run(s);
        t[i] = cli_now_ms() - t0;
    }
    if (!st)
        st = eex_session_enable_profiling(s, 1);
    for (int i = 0; i < o->runs && !st; i++) {
        st = eex_session_run(s);
        for (int k = 0; k < n_nodes && !st; k++) {
            eex_node_info in;
            st = eex_session_node_info(s, k, &in);
            node_t[(size_t)k * o->runs + i] = in.ms;
        }
    }
    if (st) {
        free(t), free(node_t), free(rows);
        return cli_status("bench", st);
    }
    qsort(t, (size_t)o->runs, sizeof *t, cli_cmp_double);
    const double med = cli_median(t, o->runs);
    double node_total = 0.0;
    for (int k = 0; k < n_nodes; k++) {
        node_row *nr = &rows[k];
        eex_session_node_info(s, k, &nr->info);
        nr->ms = cli_median(node_t + (size_t)k * o->runs, o->runs);
        node_total += nr->ms;
        const double flops = 2.0 * (double)nr->info.macs, bytes = (double)nr->info.bytes;
        nr->compute = bytes > 0 && flops / bytes >= COMPUTE_BOUND_FLOP_PER_BYTE;
        nr->rate = nr->ms > 0 ? (nr->compute ? flops : bytes) / (nr->ms * 1e6) : 0.0;
    }
    const double rss = peak_rss_mb();
    const char *isa = o->kernels == EEX_KERNELS_REF ? "ref" : eex_kernels_best()->name;
    int shown = o->nodes > 0 && o->nodes < n_nodes ? o->nodes : n_nodes;
    char shape[64];
    FILE *f = stdout;
    if (o->json) {
        fputs("{\"model\": ", f);
        cli_json_string(f, o->model);
        fprintf(f, ", \"threads\": %d, \"batch\": %d, \"runs\": %d, \"warmup\": %d, \"isa\": \"%s\", \"gemm\": \"%s\"",
                o->threads, o->batch, o->runs, o->warmup, isa, eex_gemm_backend());
        fprintf(f, ", \"min_ms\": %.4f, \"median_ms\": %.4f, \"max_ms\": %.4f, \"peak_rss_mb\": %.2f", t[0], med,
                t[o->runs - 1], rss);
        fputs(", \"times_ms\": [", f);
        for (int i = 0; i < o->runs; i++)
            fprintf(f, "%s%.4f", i ? ", " : "", t[i]);
        fputs("], \"nodes\": [", f);
        for (int k = 0; k < n_nodes; k++) {
            const node_row *nr = &rows[k];
            shape_str(&nr->info, shape, sizeof shape);
            fprintf(f, "%s\n  {\"name\": ", k ? "," : "");
            cli_json_string(f, nr->info.name);
            fprintf(f, ", \"op\": \"%s\", \"kernel\": \"%s\", \"shape\": \"%s\", \"median_ms\": %.5f, \"%s\": %.3f, "
                       "\"share\": %.4f}",
                    nr->info.op, nr->info.kernel ? nr->info.kernel : "", shape, nr->ms, nr->compute ? "gflops" : "gbps",
                    nr->rate,
                    node_total > 0 ? nr->ms / node_total : 0.0);
        }
        fputs("]}\n", f);
    } else {
        fprintf(f, "%s: %d thread%s, batch %d, kernels %s, gemm %s, %d runs after %d warm-up\n", o->model,
                o->threads, o->threads == 1 ? "" : "s", o->batch, isa, eex_gemm_backend(), o->runs, o->warmup);
        if (shown < n_nodes)
            qsort(rows, (size_t)n_nodes, sizeof *rows, cmp_row_ms);
        fprintf(f, "\n  %-4s %-14s %-14s %-20s %9s %12s %7s\n", "#", "op", "kernel", "output", "ms", "rate", "share");
        for (int k = 0; k < shown; k++) {
            const node_row *nr = &rows[k];
            shape_str(&nr->info, shape, sizeof shape);
            fprintf(f, "  %-4d %-14s %-14s %-20s %9.4f %7.2f %-4s %6.1f%%\n", k, nr->info.op,
                    nr->info.kernel ? nr->info.kernel : "", shape, nr->ms, nr->rate,
                    nr->compute ? "GF/s" : "GB/s", node_total > 0 ? 100.0 * nr->ms / node_total : 0.0);
        }
        fprintf(f, "\nwhole model: min %.3f ms, median %.3f ms, max %.3f ms (nodes sum %.3f ms)\n", t[0], med,
                t[o->runs - 1], node_total);
        fprintf(f, "peak RSS: %.1f MB\n", rss);
    }
    free(t), free(node_t), free(rows);
    return CLI_OK;
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    eex_model *m;
    eex_status st = eex_model_open(o.model, &m);
    if (st)
        return cli_status("bench", st);
    eex_session *s;
    eex_session_opts so = {.batch = o.batch, .threads = o.threads, .kernels = o.kernels};
    if ((st = eex_session_new(m, &so, &s))) {
        eex_model_close(m);
        return cli_status("bench", st);
    }
    int expert = 0;
    if (o.exits && o.expert && o.expert[0] && (rc = resolve_expert("bench", m, o.expert, &expert)) == CLI_OK &&
        expert < 0)
        rc = cli_usage("bench", "--exits takes a named expert set, not 'auto'");
    if (!rc)
        rc = o.exits ? bench_exits(o.model, m, s, expert, o.runs, o.warmup, o.threads, o.json) : bench(&o, m, s);
    eex_session_free(s);
    eex_model_close(m);
    return rc;
}
