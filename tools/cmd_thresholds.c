/* eex thresholds: chooses per-exit thresholds from an `eex eval --log` for
 * one of three objectives, reports them with bootstrap intervals on the
 * choosing log and (--report) on another, beside the best single p_tar, and
 * writes the Pareto frontiers as JSON (bench/experiments/plot_frontier.py
 * draws them). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evlog.h"
#include "thrsearch.h"

static const char help[] =
    "usage: eex thresholds LOG.jsonl --objective OBJ [options]\n"
    "\n"
    "Chooses one threshold per side exit from the per-image log of `eex eval --log`\n"
    "(it holds every exit's confidence and prediction and the label). The policy is\n"
    "eval's: exit k answers when its confidence > Tk; an image no exit answers is\n"
    "offloaded, and the final classifier answers when its confidence > TE (the last\n"
    "exit's threshold), else the most confident classifier. Choose on a validation\n"
    "log, report on a test log (--report).\n"
    "\n"
    "objectives:\n"
    "  max-accuracy --offload-budget B    highest accuracy with P(offload) <= B\n"
    "  min-offload --accuracy-floor A     lowest P(offload) with accuracy >= A\n"
    "  min-latency --accuracy-floor A --exit-ms M1,..,ME --offload-ms M\n"
    "                                     lowest expected latency with accuracy >= A:\n"
    "                                     an image answered at exit k costs Mk (the edge\n"
    "                                     time to answer there, `eex bench --exits`), an\n"
    "                                     offloaded one ME + M (measured RTT + cloud)\n"
    "\n"
    "The search: per exit, the candidate thresholds are --grid G quantiles of that\n"
    "exit's observed confidences (the last exit's pooled with the final's), plus 0 and\n"
    "1, and every vector of the grid is evaluated. That is exact (decisions change\n"
    "only at observed values) with --grid 0, which takes every observed value:\n"
    "feasible on small logs. The best single p_tar (the same T at every exit) is\n"
    "always searched exactly, and is itself a candidate of the per-exit search.\n"
    "\n"
    "options:\n"
    "  --objective max-accuracy|min-offload|min-latency   (required)\n"
    "  --offload-budget B       in [0, 1]\n"
    "  --accuracy-floor A       in [0, 1]\n"
    "  --exit-ms M1,..,ME       per-exit latency (ms); with --offload-ms, adds the\n"
    "  --offload-ms M           expected latency to every figure and its frontier\n"
    "  --report LOG2.jsonl      the same figures for the chosen vectors on a second log\n"
    "  --grid G                 candidates per exit (default 40; 0 = exact)\n"
    "  --bootstrap B            resamples for the 95% intervals (default 1000; 0 = none);\n"
    "                           the gain over the single p_tar gets a paired interval\n"
    "                           (both vectors on the same resampled images)\n"
    "  --seed S                 bootstrap seed (default 1)\n"
    "  --frontier FILE.json     the Pareto frontiers: accuracy against P(offload) and\n"
    "                           (with costs) against expected latency, each point's\n"
    "                           thresholds, and its figures on the --report log\n"
    "  --model MODEL.eex -o OUT.eex   a copy of the model with the chosen vector as its\n"
    "                           ee.thresholds (eex run then uses it by default)\n"
    "  --json                   one JSON object on stdout\n"
    "\n"
    "A malformed or truncated log line is an error naming its line number.\n";

typedef struct opts {
    const char *log, *report, *frontier, *model, *out;
    thr_search_opts s;
    int have_budget, have_floor, have_exit_ms, have_offload_ms, n_exit_ms, bootstrap, json;
    uint64_t seed;
} opts;

static int parse_list(const char *s, double *v, int cap)
{
    int n = 0;
    while (*s) {
        char *end;
        const double x = strtod(s, &end);
        if (end == s || !(x >= 0 && x < 1e9) || n == cap)
            return -1;
        v[n++] = x;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return n ? n : -1;
}

static int parse_unit(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end == s || *end || !(*v >= 0 && *v <= 1) ? -1 : 0;
}

static int parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->s.grid = 40;
    o->bootstrap = 1000;
    o->seed = 1;
    const char *obj = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        char *end;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return -1;
        } else if (!strcmp(a, "--objective") && has_val)
            obj = argv[++i];
        else if (!strcmp(a, "--offload-budget") && has_val) {
            if (parse_unit(argv[++i], &o->s.budget))
                return cli_usage("thresholds", "--offload-budget takes a number in [0, 1], not '%s'", argv[i]);
            o->have_budget = 1;
        } else if (!strcmp(a, "--accuracy-floor") && has_val) {
            if (parse_unit(argv[++i], &o->s.floor))
                return cli_usage("thresholds", "--accuracy-floor takes a number in [0, 1], not '%s'", argv[i]);
            o->have_floor = 1;
        } else if (!strcmp(a, "--exit-ms") && has_val) {
            if ((o->n_exit_ms = parse_list(argv[++i], o->s.costs.exit_ms, EEX_MAX_EXITS)) < 0)
                return cli_usage("thresholds", "--exit-ms takes comma-separated non-negative milliseconds, not '%s'",
                                 argv[i]);
            o->have_exit_ms = 1;
        } else if (!strcmp(a, "--offload-ms") && has_val) {
            o->s.costs.offload_ms = strtod(argv[++i], &end);
            if (*end || end == argv[i] || !(o->s.costs.offload_ms >= 0 && o->s.costs.offload_ms < 1e9))
                return cli_usage("thresholds", "--offload-ms takes non-negative milliseconds, not '%s'", argv[i]);
            o->have_offload_ms = 1;
        } else if (!strcmp(a, "--report") && has_val)
            o->report = argv[++i];
        else if (!strcmp(a, "--model") && has_val)
            o->model = argv[++i];
        else if (!strcmp(a, "-o") && has_val)
            o->out = argv[++i];
        else if (!strcmp(a, "--frontier") && has_val)
            o->frontier = argv[++i];
        else if (!strcmp(a, "--grid") && has_val) {
            if ((o->s.grid = cli_parse_int(argv[++i], 0, 100000)) < 0)
                return cli_usage("thresholds", "--grid takes an integer from 0 to 100000, not '%s'", argv[i]);
        } else if (!strcmp(a, "--bootstrap") && has_val) {
            if ((o->bootstrap = cli_parse_int(argv[++i], 0, 100000)) < 0)
                return cli_usage("thresholds", "--bootstrap takes an integer from 0 to 100000, not '%s'", argv[i]);
        } else if (!strcmp(a, "--seed") && has_val) {
            if (cli_parse_u64(argv[++i], &o->seed))
                return cli_usage("thresholds", "--seed takes a non-negative integer, not '%s'", argv[i]);
        } else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (a[0] == '-' && a[1])
            return cli_usage("thresholds", has_val ? "unknown option '%s'" : "option '%s' needs a value or is unknown", a);
        else if (!o->log)
            o->log = a;
        else
            return cli_usage("thresholds", "unexpected argument '%s'", a);
    }
    if (!o->log)
        return cli_usage("thresholds", "missing LOG.jsonl (from eex eval --log)");
    if (!obj)
        return cli_usage("thresholds", "missing --objective max-accuracy|min-offload|min-latency");
    if (!strcmp(obj, "max-accuracy")) {
        o->s.obj = OBJ_MAX_ACCURACY;
        if (!o->have_budget)
            return cli_usage("thresholds", "--objective max-accuracy needs --offload-budget B");
    } else if (!strcmp(obj, "min-offload") || !strcmp(obj, "min-latency")) {
        o->s.obj = obj[4] == 'o' ? OBJ_MIN_OFFLOAD : OBJ_MIN_LATENCY;
        if (!o->have_floor)
            return cli_usage("thresholds", "--objective %s needs --accuracy-floor A", obj);
        if (o->s.obj == OBJ_MIN_LATENCY && (!o->have_exit_ms || !o->have_offload_ms))
            return cli_usage("thresholds", "--objective min-latency needs --exit-ms M1,..,ME and --offload-ms M");
    } else
        return cli_usage("thresholds", "--objective takes max-accuracy, min-offload or min-latency, not '%s'", obj);
    if (!!o->model != !!o->out)
        return cli_usage("thresholds", "--model MODEL.eex and -o OUT.eex go together");
    if (o->have_exit_ms != o->have_offload_ms)
        return cli_usage("thresholds", "--exit-ms and --offload-ms go together");
    o->s.costs.have = o->have_exit_ms;
    return 0;
}

static const char *obj_name(thr_objective o)
{
    return o == OBJ_MAX_ACCURACY ? "max-accuracy" : o == OBJ_MIN_OFFLOAD ? "min-offload" : "min-latency";
}

typedef struct figures {
    thr_point p;
    double ci[3][2];
    int have_ci;
} figures;

static int figures_of(const opts *o, const evlog *log, const float *t, figures *f)
{
    thr_eval(log, t, &o->s.costs, &f->p);
    f->have_ci = o->bootstrap > 0;
    if (f->have_ci && thr_bootstrap(log, t, &o->s.costs, o->bootstrap, o->seed, f->ci))
        return cli_error("thresholds", "out of memory");
    return 0;
}

static void json_vec(FILE *f, const float *t, int E)
{
    fputc('[', f);
    for (int k = 0; k < E; k++)
        fprintf(f, "%s%.6g", k ? ", " : "", t[k]);
    fputc(']', f);
}

static void json_figures(FILE *f, const figures *g, int costs)
{
    const double n = (double)g->p.n;
    fprintf(f, "{\"images\": %ld, \"accuracy\": %.6f, \"p_offload\": %.6f", g->p.n, (double)g->p.correct / n,
            (double)g->p.offload / n);
    if (costs)
        fprintf(f, ", \"latency_ms\": %.4f", g->p.latency_ms);
    if (g->have_ci) {
        fprintf(f, ", \"accuracy_ci95\": [%.6f, %.6f], \"p_offload_ci95\": [%.6f, %.6f]", g->ci[0][0], g->ci[0][1],
                g->ci[1][0], g->ci[1][1]);
        if (costs)
            fprintf(f, ", \"latency_ms_ci95\": [%.4f, %.4f]", g->ci[2][0], g->ci[2][1]);
    }
    fputc('}', f);
}

static void text_figures(const char *what, const figures *g, int costs)
{
    const double n = (double)g->p.n;
    printf("  %-13s accuracy %6.2f%%", what, 100.0 * (double)g->p.correct / n);
    if (g->have_ci)
        printf(" [%.2f, %.2f]", 100.0 * g->ci[0][0], 100.0 * g->ci[0][1]);
    printf("  P(offload) %5.2f%%", 100.0 * (double)g->p.offload / n);
    if (g->have_ci)
        printf(" [%.2f, %.2f]", 100.0 * g->ci[1][0], 100.0 * g->ci[1][1]);
    if (costs) {
        printf("  latency %.3f ms", g->p.latency_ms);
        if (g->have_ci)
            printf(" [%.3f, %.3f]", g->ci[2][0], g->ci[2][1]);
    }
    printf("  (%ld images)\n", g->p.n);
}

static int write_frontier(const opts *o, const evlog *log, const evlog *rep, const thr_search_result *res)
{
    FILE *f = fopen(o->frontier, "w");
    if (!f)
        return cli_error("thresholds", "cannot write '%s'", o->frontier);
    const int E = log->exits;
    fprintf(f, "{\"log\": ");
    cli_json_string(f, o->log);
    fprintf(f, ", \"report\": ");
    if (rep)
        cli_json_string(f, o->report);
    else
        fputs("null", f);
    fprintf(f, ", \"images\": %ld, \"exits\": %d", log->n, E);
    for (int which = 0; which < 2; which++) {
        const thr_point *pts = which ? res->front_lat : res->front_off;
        const long n = which ? res->n_front_lat : res->n_front_off;
        fprintf(f, ", \"%s\": [", which ? "latency" : "offload");
        for (long i = 0; i < n; i++) {
            const thr_point *p = &pts[i];
            fprintf(f, "%s\n  {\"thresholds\": ", i ? "," : "");
            json_vec(f, p->t, E);
            fprintf(f, ", \"accuracy\": %.6f, \"p_offload\": %.6f", (double)p->correct / (double)p->n,
                    (double)p->offload / (double)p->n);
            if (o->s.costs.have)
                fprintf(f, ", \"latency_ms\": %.4f", p->latency_ms);
            if (rep) {
                thr_point q;
                thr_eval(rep, p->t, &o->s.costs, &q);
                fprintf(f, ", \"report_accuracy\": %.6f, \"report_p_offload\": %.6f", (double)q.correct / (double)q.n,
                        (double)q.offload / (double)q.n);
                if (o->s.costs.have)
                    fprintf(f, ", \"report_latency_ms\": %.4f", q.latency_ms);
            }
            fputc('}', f);
        }
        fputs("]", f);
    }
    fputs("}\n", f);
    if (fclose(f))
        return cli_error("thresholds", "error writing '%s'", o->frontier);
    return 0;
}

/* A copy of the model with the chosen vector as its ee.thresholds. */
static int write_model(const opts *o, const float *t, int E)
{
    eex_model *m;
    eex_status st = eex_model_open(o->model, &m);
    if (st)
        return cli_status("thresholds", st);
    int rc = 0;
    const int X = eex_model_expert_count(m);
    float *temps = calloc((size_t)(E + 1) * (size_t)(X ? X : 1), sizeof(float));
    if (eex_model_exit_count(m) != E)
        rc = cli_error("thresholds", "%s has %d exits, the log %d", o->model, eex_model_exit_count(m), E);
    else if (!temps)
        rc = cli_error("thresholds", "out of memory");
    for (int k = 0; !rc && k <= E; k++)
        for (int e = 0; e < X; e++)
            temps[k * X + e] = eex_model_temperature(m, k + 1, e);
    if (!rc && (st = eex_model_save_calibrated(m, temps, t, E, o->out)))
        rc = cli_status("thresholds", st);
    free(temps);
    eex_model_close(m);
    return rc;
}

int cmd_thresholds(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    char err[512];
    evlog log = {0}, rep = {0};
    if (evlog_read(o.log, 1, &log, err, sizeof err))
        return cli_error("thresholds", "%s", err);
    if (o.report && evlog_read(o.report, 1, &rep, err, sizeof err)) {
        evlog_free(&log);
        return cli_error("thresholds", "%s", err);
    }
    const int E = log.exits;
    thr_search_result res = {0};
    if (o.report && rep.exits != E)
        rc = cli_error("thresholds", "%s has %d exits, %s has %d", o.report, rep.exits, o.log, E);
    else if (o.s.costs.have && o.n_exit_ms != E)
        rc = cli_usage("thresholds", "--exit-ms: the log has %d side exits; give %d values", E, E);
    else if (thr_search(&log, &o.s, &res, err, sizeof err))
        rc = cli_error("thresholds", "%s: %s", o.log, err);
    else if (!res.found)
        rc = cli_error("thresholds", "%s: no threshold vector meets %s %.4g (best accuracy %.2f%% at P(offload) %.2f%%)",
                       o.log, o.s.obj == OBJ_MAX_ACCURACY ? "P(offload) <=" : "accuracy >=",
                       o.s.obj == OBJ_MAX_ACCURACY ? o.s.budget : o.s.floor,
                       res.n_front_off ? 100.0 * (double)res.front_off[res.n_front_off - 1].correct / (double)log.n : 0.0,
                       res.n_front_off ? 100.0 * (double)res.front_off[res.n_front_off - 1].offload / (double)log.n : 0.0);
    figures per[2], single[2];
    if (!rc)
        rc = figures_of(&o, &log, res.best.t, &per[0]);
    if (!rc && res.single_found)
        rc = figures_of(&o, &log, res.single.t, &single[0]);
    if (!rc && o.report) {
        rc = figures_of(&o, &rep, res.best.t, &per[1]);
        if (!rc && res.single_found)
            rc = figures_of(&o, &rep, res.single.t, &single[1]);
    }
    if (!rc && o.frontier)
        rc = write_frontier(&o, &log, o.report ? &rep : NULL, &res);
    if (!rc && o.model)
        rc = write_model(&o, res.best.t, E);
    if (!rc && o.json) {
        printf("{\"log\": ");
        cli_json_string(stdout, o.log);
        printf(", \"report\": ");
        if (o.report)
            cli_json_string(stdout, o.report);
        else
            printf("null");
        printf(", \"images\": %ld, \"exits\": %d, \"objective\": \"%s\"", log.n, E, obj_name(o.s.obj));
        if (o.s.obj == OBJ_MAX_ACCURACY)
            printf(", \"offload_budget\": %.6g", o.s.budget);
        else
            printf(", \"accuracy_floor\": %.6g", o.s.floor);
        printf(", \"grid\": [");
        for (int k = 0; k < E; k++)
            printf("%s%d", k ? ", " : "", res.grid_size[k]);
        printf("], \"exact\": %s, \"evaluated\": %ld, \"bootstrap\": %d, \"per_exit\": {\"thresholds\": ",
               res.exact ? "true" : "false", res.evaluated, o.bootstrap);
        json_vec(stdout, res.best.t, E);
        printf(", \"choose\": ");
        json_figures(stdout, &per[0], o.s.costs.have);
        if (o.report) {
            printf(", \"report\": ");
            json_figures(stdout, &per[1], o.s.costs.have);
        }
        printf("}, \"single\": ");
        if (res.single_found) {
            printf("{\"threshold\": %.6g, \"choose\": ", res.single.t[0]);
            json_figures(stdout, &single[0], o.s.costs.have);
            if (o.report) {
                printf(", \"report\": ");
                json_figures(stdout, &single[1], o.s.costs.have);
            }
            printf("}");
        } else
            printf("null");
        for (int q = 0; res.single_found && q < (o.report ? 2 : 1); q++) {
            double d, ci[2];
            if (thr_bootstrap_gain(q ? &rep : &log, res.best.t, res.single.t, o.bootstrap, o.seed, &d, ci))
                continue;
            printf(", \"%s_gain_vs_single\": {\"accuracy\": %.6f, \"ci95\": [%.6f, %.6f]}", q ? "report" : "choose", d,
                   ci[0], ci[1]);
        }
        printf(", \"frontier_points\": [%ld, %ld]}\n", res.n_front_off, res.n_front_lat);
    } else if (!rc) {
        printf("eex thresholds: %s, %ld images, %d exits; objective %s, %s %.4g\n", o.log, log.n, E, obj_name(o.s.obj),
               o.s.obj == OBJ_MAX_ACCURACY ? "P(offload) <=" : "accuracy >=",
               o.s.obj == OBJ_MAX_ACCURACY ? o.s.budget : o.s.floor);
        printf("search: %s, candidates per exit", res.exact ? "exact (every observed confidence)" : "per-exit quantile grid");
        for (int k = 0; k < E; k++)
            printf("%s%d", k ? " x " : " ", res.grid_size[k]);
        printf(", %ld vectors evaluated%s\n", res.evaluated,
               o.bootstrap ? "; [95% bootstrap intervals]" : "");
        printf("per-exit thresholds ");
        for (int k = 0; k < E; k++)
            printf("%s%.6g", k ? "," : "", res.best.t[k]);
        printf("\n");
        text_figures("choosing log", &per[0], o.s.costs.have);
        if (o.report)
            text_figures("report log", &per[1], o.s.costs.have);
        if (res.single_found) {
            printf("best single p_tar %.6g (exact)\n", res.single.t[0]);
            text_figures("choosing log", &single[0], o.s.costs.have);
            if (o.report)
                text_figures("report log", &single[1], o.s.costs.have);
            for (int q = 0; q < (o.report ? 2 : 1); q++) {
                double d, ci[2];
                if (!thr_bootstrap_gain(q ? &rep : &log, res.best.t, res.single.t, o.bootstrap, o.seed, &d, ci))
                    printf("per-exit minus single, %s log: %+.2f accuracy points, paired 95%% interval [%+.2f, %+.2f]\n",
                           q ? "report" : "choosing", 100 * d, 100 * ci[0], 100 * ci[1]);
            }
        } else
            printf("no single p_tar meets the constraint\n");
        if (o.frontier)
            printf("Pareto frontiers: %ld points (accuracy vs P(offload))%s%ld (vs latency) in %s\n", res.n_front_off,
                   o.s.costs.have ? ", " : ", ", res.n_front_lat, o.frontier);
    }
    thr_search_free(&res);
    evlog_free(&log);
    evlog_free(&rep);
    return rc;
}
