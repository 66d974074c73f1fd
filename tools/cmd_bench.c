/* eex bench: how fast a model runs here, whole and node by node.
 *
 * Whole-model times come from unprofiled runs; the per-node table from a
 * second series of profiled runs (a clock read around each node), so the
 * profiling cost never shows in the headline numbers. */
#define _GNU_SOURCE /* sched_setaffinity, cpu_set_t */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_exits.h"
#include "cli.h"
#include "run_ee.h"
#include "sysinfo.h"

static const char help[] =
    "usage: eex bench MODEL.eex [options]\n"
    "\n"
    "Runs MODEL.eex on a seeded random input: W warm-up runs, then K rounds of R\n"
    "timed runs (min / median / max ms over all of them, and per round), then R\n"
    "profiled runs for a per-node table: op, output shape, median ms, GFLOP/s\n"
    "(compute-bound nodes) or GB/s (memory-bound nodes, by arithmetic intensity),\n"
    "and share of the total. Ends with the peak resident memory of the process.\n"
    "\n"
    "On Linux it also records the machine (CPU model, board, cores, clusters of\n"
    "alike cores with max/min frequency, cpu_capacity and governor: see eex\n"
    "sysinfo), which cpus the threads may run on and which they ran on, and\n"
    "the cpus' current frequencies and the temperatures before and after each\n"
    "round. It warns when a frequency fell by more than 5% over a round or a\n"
    "thermal zone ended a round at or above the temperature limit: figures from\n"
    "such a run are not the board's steady speed. What the machine does not\n"
    "expose is reported as unknown (null in JSON).\n"
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
    "  --cpus LIST        run every thread of the process, and the workers started\n"
    "                     later, only on these cpus (sched_setaffinity): e.g.\n"
    "                     0-3,6, all, big or little (the cluster with the highest /\n"
    "                     lowest cpu_capacity, else max frequency); an error when a\n"
    "                     listed cpu is not available here\n"
    "  --rounds K         rounds of R timed runs (default 1)\n"
    "  --cooldown S       seconds of sleep between rounds (default 0)\n"
    "  --temp-limit C     warn when a thermal zone ends a round at or above C\n"
    "                     degrees Celsius (default 80)\n"
    "  --label TEXT       a name for this machine in the results (default: the\n"
    "                     board, else the CPU model)\n"
    "\n"
    "--exits reports latencies only (no machine, rounds or frequencies; --cpus\n"
    "still pins).\n"
    "The fast kernels' ISA is the best this CPU has; EEX_ISA=avx2|scalar|... caps it.\n"
    "EEX_SYSFS_ROOT=DIR reads the machine's /sys and /proc/cpuinfo under DIR (and\n"
    "EEX_SYSFS_ROOT_AFTER=DIR the snapshots after each round): for tests on\n"
    "copies of boards' files (tests/sysfs/).\n";

typedef struct bench_opts {
    const char *model;
    int threads, runs, warmup, batch, json, nodes, exits, rounds;
    double cooldown_s, temp_limit_c;
    const char *expert, *cpus, *label;
    eex_kernels kernels;
} bench_opts;

/* What bench knows about where it ran. */
typedef struct bench_env {
    si_machine machine;
    unsigned char allowed[SI_MAX_CPUS]; /* the affinity the threads inherit */
    unsigned char watch[SI_MAX_CPUS];   /* allowed and present: whose frequency is recorded */
    int pinned;                          /* --cpus was given and applied */
} bench_env;

static int parse_seconds(const char *s, double lo, double hi, double *out)
{
    char *end;
    const double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

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
    o->threads = 1, o->runs = 50, o->warmup = 10, o->batch = 1, o->rounds = 1, o->temp_limit_c = 80.0;
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
        else if (!strcmp(a, "--cpus") && has_val)
            o->cpus = argv[++i];
        else if (!strcmp(a, "--label") && has_val)
            o->label = argv[++i];
        else if (!strcmp(a, "--rounds") && has_val)
            dst = &o->rounds, hi = 1000;
        else if (!strcmp(a, "--cooldown") && has_val) {
            if (parse_seconds(argv[++i], 0.0, 3600.0, &o->cooldown_s))
                return cli_usage("bench", "--cooldown takes seconds in [0, 3600], not '%s'", argv[i]);
        } else if (!strcmp(a, "--temp-limit") && has_val) {
            if (parse_seconds(argv[++i], -50.0, 200.0, &o->temp_limit_c))
                return cli_usage("bench", "--temp-limit takes degrees Celsius in [-50, 200], not '%s'", argv[i]);
        } else if (a[0] == '-' && a[1])
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
    else if (in->out_rank == 3)
        snprintf(buf, cap, "%lldx%lldx%lld", (long long)in->out_shape[0], (long long)in->out_shape[1],
                 (long long)in->out_shape[2]);
    else if (in->out_rank == 1)
        snprintf(buf, cap, "%lld", (long long)in->out_shape[0]);
    else
        snprintf(buf, cap, "%lldx%lld", (long long)in->out_shape[0], (long long)in->out_shape[1]);
}

/* The nodes the fast path runs on scalar reference kernels (no SIMD twin yet):
 * how many, their share of the node time, and their ops, e.g. "softmax x1". */
static void ref_summary(const node_row *rows, int n, double total, int *count, double *share, char *ops,
                        size_t cap)
{
    *count = 0, *share = 0.0, ops[0] = 0;
    for (int k = 0; k < n; k++) {
        if (strcmp(rows[k].info.kernel, "ref"))
            continue;
        ++*count;
        *share += total > 0 ? rows[k].ms / total : 0.0;
        int seen = 0; /* each op once, with its count */
        for (int j = 0; j < k && !seen; j++)
            seen = !strcmp(rows[j].info.kernel, "ref") && !strcmp(rows[j].info.op, rows[k].info.op);
        if (seen)
            continue;
        int times = 0;
        for (int j = k; j < n; j++)
            times += !strcmp(rows[j].info.kernel, "ref") && !strcmp(rows[j].info.op, rows[k].info.op);
        const size_t used = strlen(ops);
        snprintf(ops + used, cap - used, "%s%s x%d", used ? ", " : "", rows[k].info.op, times);
    }
}

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void sleep_seconds(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts))
        ; /* interrupted: sleep the rest */
}

/* The lines of warn (each ends in \n) as a JSON array. */
static void json_lines(FILE *f, const char *warn)
{
    fputc('[', f);
    for (int first = 1; *warn; first = 0) {
        const char *nl = strchr(warn, '\n');
        const size_t n = nl ? (size_t)(nl - warn) : strlen(warn);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), warn);
        fputs(first ? "" : ", ", f);
        cli_json_string(f, line);
        warn += n + (nl != NULL);
    }
    fputc(']', f);
}

static int bench(const bench_opts *o, const bench_env *env, eex_model *m, eex_session *s)
{
    eex_status st = bench_random_inputs(m, s, o->batch);
    if (st)
        return st == EEX_ERR_NOMEM ? cli_error("bench", "out of memory") : cli_status("bench", st);

    const si_machine *mach = &env->machine;
    const int n_nodes = eex_session_node_count(s), total = o->runs * o->rounds;
    double *t = malloc(sizeof(double) * (size_t)total);
    double *node_t = malloc(sizeof(double) * (size_t)o->runs * (size_t)(n_nodes > 0 ? n_nodes : 1));
    node_row *rows = calloc((size_t)(n_nodes > 0 ? n_nodes : 1), sizeof *rows);
    si_snapshot *snap = malloc(sizeof *snap * 2 * (size_t)o->rounds); /* before, after of each round */
    double *round_stat = malloc(sizeof(double) * 3 * (size_t)o->rounds); /* min, median, max */
    double *scratch = malloc(sizeof(double) * (size_t)o->runs);
    if (!t || !node_t || !rows || !snap || !round_stat || !scratch) {
        free(t), free(node_t), free(rows), free(snap), free(round_stat), free(scratch);
        return cli_error("bench", "out of memory");
    }
    for (int i = 0; i < o->warmup && !st; i++)
        st = eex_session_run(s);
    /* which cpus ran: the main thread asks after every timed run; the
     * others are read from /proc before and after the rounds */
    static si_thread th0[64], th1[64];
    const int n_th0 = si_threads(th0, 64);
    unsigned char main_cpus[SI_MAX_CPUS] = {0};
    char warn[4096] = "";
    int n_warn = 0;
    for (int r = 0; r < o->rounds && !st; r++) {
        if (r > 0 && o->cooldown_s > 0)
            sleep_seconds(o->cooldown_s);
        si_snapshot *before = &snap[2 * r], *after = &snap[2 * r + 1];
        si_snapshot_read(si_root(), mach, before);
        double *tr = t + (size_t)r * o->runs;
        for (int i = 0; i < o->runs && !st; i++) {
            const double t0 = cli_now_ms();
            st = eex_session_run(s);
            tr[i] = cli_now_ms() - t0;
            const int cpu = sched_getcpu();
            if (cpu >= 0 && cpu < SI_MAX_CPUS)
                main_cpus[cpu] = 1;
        }
        si_snapshot_read(si_root_after(), mach, after);
        memcpy(scratch, tr, sizeof(double) * (size_t)o->runs);
        qsort(scratch, (size_t)o->runs, sizeof *scratch, cli_cmp_double);
        round_stat[3 * r] = scratch[0], round_stat[3 * r + 1] = cli_median(scratch, o->runs);
        round_stat[3 * r + 2] = scratch[o->runs - 1];
        const size_t used = strlen(warn);
        const int w = si_throttle_check(mach, env->watch, before, after, o->temp_limit_c, warn + used,
                                        sizeof warn - used);
        if (w && o->rounds > 1) { /* say which round */
            char tagged[4096] = "";
            size_t n = 0;
            for (const char *p = warn + used; *p && n < sizeof tagged;) {
                const char *nl = strchr(p, '\n');
                const size_t len = nl ? (size_t)(nl - p) : strlen(p);
                int k = snprintf(tagged + n, sizeof tagged - n, "round %d: %.*s\n", r + 1, (int)len, p);
                n += k > 0 ? (size_t)k : 0;
                p += len + (nl != NULL);
            }
            snprintf(warn + used, sizeof warn - used, "%s", tagged);
        }
        n_warn += w;
    }
    /* threads that used CPU time during the rounds (clock-tick resolution:
     * short rounds may show only the main thread) and the cpu each last
     * ran on; the rest slept throughout (OpenBLAS's when it has no work,
     * qemu's own) and are only counted */
    const int n_th1 = si_threads(th1, 64);
    int last_cpu[64], n_last = 0, n_idle = 0;
    for (int i = 0; i < n_th1; i++) {
        int ran = th1[i].tid == (int)getpid();
        for (int k = 0; k < n_th0 && !ran; k++)
            ran = th0[k].tid == th1[i].tid && th1[i].ticks > th0[k].ticks;
        int known = 0;
        for (int k = 0; k < n_th0; k++)
            known |= th0[k].tid == th1[i].tid;
        if (ran || !known)
            last_cpu[n_last++] = th1[i].cpu;
        else
            n_idle++;
    }
    qsort(last_cpu, (size_t)n_last, sizeof last_cpu[0], cmp_int);
    char main_list[1024];
    si_format_cpus(main_cpus, main_list, sizeof main_list);
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
        free(t), free(node_t), free(rows), free(snap), free(round_stat), free(scratch);
        return cli_status("bench", st);
    }
    qsort(t, (size_t)total, sizeof *t, cli_cmp_double);
    const double med = cli_median(t, total);
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
    const char *isa = o->kernels == EEX_KERNELS_REF ? "ref" : eex_kernel_isa();
    int shown = o->nodes > 0 && o->nodes < n_nodes ? o->nodes : n_nodes;
    char shape[64], allowed[1024], ref_ops[256];
    int n_ref;
    double ref_share;
    ref_summary(rows, n_nodes, node_total, &n_ref, &ref_share, ref_ops, sizeof ref_ops);
    si_format_cpus(env->allowed, allowed, sizeof allowed);
    const char *label = o->label           ? o->label
                        : mach->board[0]     ? mach->board
                        : mach->cpu_model[0] ? mach->cpu_model
                                             : "unknown";
    eex_model_stats ms;
    eex_model_get_stats(m, &ms);
    char date[32] = "unknown";
    const time_t now = time(NULL);
    struct tm utc;
    if (gmtime_r(&now, &utc))
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &utc);
    FILE *f = stdout;
    for (const char *p = warn; *p;) { /* warnings go to stderr in both formats */
        const char *nl = strchr(p, '\n');
        const int len = (int)(nl ? nl - p : (long)strlen(p));
        fprintf(stderr, "eex bench: warning: %.*s\n", len, p);
        p += len + (nl != NULL);
    }
    if (o->json) {
        fputs("{\"format\": \"eex-bench/1\", \"eex_version\": \"" EEX_VERSION_STRING "\", \"date\": ", f);
        cli_json_string(f, date);
        fputs(", \"label\": ", f);
        cli_json_string(f, label);
        fputs(", \"model\": ", f);
        cli_json_string(f, o->model);
        fputs(", \"model_name\": ", f);
        cli_json_string(f, eex_model_name(m) ? eex_model_name(m) : "");
        fprintf(f, ", \"macs\": %lld", (long long)ms.macs);
        fprintf(f, ", \"threads\": %d, \"batch\": %d, \"runs\": %d, \"warmup\": %d, \"isa\": \"%s\", \"gemm\": \"%s\"",
                o->threads, o->batch, o->runs, o->warmup, isa, eex_gemm_backend());
        fprintf(f, ", \"min_ms\": %.4f, \"median_ms\": %.4f, \"max_ms\": %.4f, \"peak_rss_mb\": %.2f", t[0], med,
                t[total - 1], rss);
        fputs(",\n \"machine\": ", f);
        si_machine_json(f, mach);
        fputs(",\n \"cpus_requested\": ", f);
        if (o->cpus)
            cli_json_string(f, o->cpus);
        else
            fputs("null", f);
        fprintf(f, ", \"cpus_allowed\": \"%s\", \"threads_last_cpu\": [", allowed);
        for (int i = 0; i < n_last; i++)
            fprintf(f, "%s%d", i ? ", " : "", last_cpu[i]);
        fprintf(f, "], \"threads_idle\": %d, \"main_thread_cpus\": \"%s\"", n_idle, main_list);
        fprintf(f, ", \"rounds\": %d, \"cooldown_s\": %g, \"temp_limit_c\": %g, \"round_results\": [", o->rounds,
                o->cooldown_s, o->temp_limit_c);
        for (int r = 0; r < o->rounds; r++) {
            fprintf(f, "%s\n  {\"min_ms\": %.4f, \"median_ms\": %.4f, \"max_ms\": %.4f, \"before\": ", r ? "," : "",
                    round_stat[3 * r], round_stat[3 * r + 1], round_stat[3 * r + 2]);
            si_snapshot_json(f, mach, env->watch, &snap[2 * r]);
            fputs(", \"after\": ", f);
            si_snapshot_json(f, mach, env->watch, &snap[2 * r + 1]);
            fputc('}', f);
        }
        fprintf(f, "],\n \"throttled\": %s, \"warnings\": ", n_warn ? "true" : "false");
        json_lines(f, warn);
        fputs(",\n \"times_ms\": [", f);
        for (int i = 0; i < total; i++)
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
        fprintf(f, "], \"ref_nodes\": %d, \"ref_share\": %.4f}\n", n_ref, ref_share);
    } else {
        fprintf(f, "%s: %d thread%s, batch %d, kernels %s, gemm %s, %d runs after %d warm-up\n", o->model,
                o->threads, o->threads == 1 ? "" : "s", o->batch, isa, eex_gemm_backend(), o->runs, o->warmup);
        si_machine_text(f, mach);
        fprintf(f, "threads on cpus %s (%s); main thread ran on %s; threads that ran last ran on", allowed,
                env->pinned ? "pinned by --cpus" : "not pinned", main_list);
        for (int i = 0; i < n_last; i++)
            fprintf(f, "%s%d", i ? "," : " ", last_cpu[i]);
        fprintf(f, "%s (%d idle)\n", n_last ? "" : " unknown", n_idle);
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
        fputc('\n', f);
        for (int r = 0; r < o->rounds; r++) {
            fprintf(f, "round %d: min %.3f, median %.3f, max %.3f ms\n  before: ", r + 1, round_stat[3 * r],
                    round_stat[3 * r + 1], round_stat[3 * r + 2]);
            si_snapshot_text(f, mach, env->watch, &snap[2 * r]);
            fputs("\n  after:  ", f);
            si_snapshot_text(f, mach, env->watch, &snap[2 * r + 1]);
            fputc('\n', f);
        }
        for (const char *p = warn; *p;) {
            const char *nl = strchr(p, '\n');
            const int len = (int)(nl ? nl - p : (long)strlen(p));
            fprintf(f, "WARNING (throttling?): %.*s\n", len, p);
            p += len + (nl != NULL);
        }
        fprintf(f, "\nwhole model: min %.3f ms, median %.3f ms, max %.3f ms (nodes sum %.3f ms)\n", t[0], med,
                t[total - 1], node_total);
        if (o->kernels == EEX_KERNELS_REF)
            fprintf(f, "reference kernels: every node (--kernels ref)\n");
        else if (n_ref)
            fprintf(f, "reference kernels on the fast path: %d node%s, %.1f%% of node time (%s)\n", n_ref,
                    n_ref == 1 ? "" : "s", 100.0 * ref_share, ref_ops);
        else
            fprintf(f, "reference kernels on the fast path: none\n");
        fprintf(f, "peak RSS: %.1f MB\n", rss);
    }
    free(t), free(node_t), free(rows), free(snap), free(round_stat), free(scratch);
    return CLI_OK;
}

/* Sets the affinity of every thread the process has now (OpenBLAS starts
 * its own at load time) and, through the calling thread, of every worker
 * the session starts later. 0, or -1 with errno. */
static int pin_all_threads(const cpu_set_t *cs)
{
    if (sched_setaffinity(0, sizeof *cs, cs))
        return -1;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && sched_setaffinity((pid_t)atoi(e->d_name), sizeof *cs, cs) && errno != ESRCH)
            rc = -1;
    closedir(d);
    return rc;
}

/* --cpus: pins the process's threads, and every worker the session starts
 * after it, to the list; fills env->allowed with the affinity that holds. */
static int pin_cpus(const bench_opts *o, bench_env *env)
{
    cpu_set_t cs;
    CPU_ZERO(&cs);
    if (o->cpus) {
        unsigned char want[SI_MAX_CPUS];
        char err[256];
        if (si_parse_cpus(&env->machine, o->cpus, want, err, sizeof err) < 0)
            return cli_usage("bench", "--cpus %s", err);
        for (int i = 0; i < SI_MAX_CPUS; i++)
            if (want[i])
                CPU_SET(i, &cs);
        cpu_set_t before;
        CPU_ZERO(&before);
        const int had = !sched_getaffinity(0, sizeof before, &before);
        if (pin_all_threads(&cs)) {
            const int e = errno;
            char list[1024], now[1024] = "unknown";
            si_format_cpus(want, list, sizeof list);
            unsigned char b[SI_MAX_CPUS] = {0};
            for (int i = 0; had && i < SI_MAX_CPUS; i++)
                b[i] = (unsigned char)(CPU_ISSET(i, &before) != 0);
            if (had)
                si_format_cpus(b, now, sizeof now);
            return cli_error("bench", "--cpus %s: cpus %s are not available here (sched_setaffinity: %s; the threads may run on %s)",
                             o->cpus, list, strerror(e), now);
        }
        env->pinned = 1;
    }
    if (sched_getaffinity(0, sizeof cs, &cs))
        return cli_error("bench", "sched_getaffinity: %s", strerror(errno));
    memset(env->allowed, 0, sizeof env->allowed);
    for (int i = 0; i < SI_MAX_CPUS; i++)
        env->allowed[i] = (unsigned char)(CPU_ISSET(i, &cs) != 0);
    for (int i = 0; i < SI_MAX_CPUS; i++)
        env->watch[i] = (unsigned char)(env->allowed[i] && i < env->machine.ncpus && env->machine.cpu[i].present);
    if (o->cpus) {
        /* the kernel quietly drops cpus that are offline or not ours */
        unsigned char want[SI_MAX_CPUS];
        char err[256];
        si_parse_cpus(&env->machine, o->cpus, want, err, sizeof err);
        for (int i = 0; i < SI_MAX_CPUS; i++)
            if (want[i] && !env->allowed[i]) {
                char got[1024];
                si_format_cpus(env->allowed, got, sizeof got);
                return cli_error("bench", "--cpus %s: cpu %d is not available here (the threads may run on %s)",
                                 o->cpus, i, got);
            }
    }
    return CLI_OK;
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    static bench_env env;
    si_read_machine(si_root(), &env.machine);
    if ((rc = pin_cpus(&o, &env)))
        return rc;
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
        rc = o.exits ? bench_exits(o.model, m, s, expert, o.runs, o.warmup, o.threads, o.json)
                     : bench(&o, &env, m, s);
    eex_session_free(s);
    eex_model_close(m);
    return rc;
}
