/* What `eex eval` writes from its records: the per-image log (JSONL, --log),
 * and the summary, as a text table or one JSON object (--json). The records
 * and the decisions come from eval.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval_rec.h"
#include "offload_cli.h"

/* Percentile q (0..1) of v[0..n) with linear interpolation (as numpy); sorts v. */
double eval_percentile(double *v, long n, double q)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof *v, cli_cmp_double);
    const double pos = q * (double)(n - 1);
    const long lo = (long)pos;
    const double f = pos - (double)lo;
    return lo + 1 < n ? v[lo] * (1.0 - f) + v[lo + 1] * f : v[lo];
}

void eval_write_log(FILE *f, const eex_model *m, const eval_opts *o, long index, const image_rec *r, int E,
                      const cloud_eval *ce)
{
    fprintf(f, "{\"index\": %ld, \"label\": %d, ", index, r->label);
    if (o->dist == DIST_MIX)
        fprintf(f, "\"distortion\": \"%s\", ", r->kind == 1 ? "blur" : r->kind == 2 ? "noise" : "none");
    fputs("\"detector\": ", f);
    if (r->det_class >= 0)
        cli_json_string(f, eex_model_detector_class(m, r->det_class));
    else
        fputs("null", f);
    fputs(", \"expert\": ", f);
    cli_json_string(f, eex_model_expert_name(m, r->expert));
    fputs(", \"confidences\": [", f);
    for (int k = 0; k <= E; k++)
        fprintf(f, "%s%.6f", k ? ", " : "", r->conf[k]);
    fputs("], \"predictions\": [", f);
    for (int k = 0; k <= E; k++)
        fprintf(f, "%s%d", k ? ", " : "", r->pred[k]);
    int ans[EVAL_MAX_THRESHOLDS], where[EVAL_MAX_THRESHOLDS];
    char name[EVAL_MAX_THRESHOLDS][256];
    fputs("], \"exit\": {", f);
    for (int t = 0; t < o->n_thr; t++) {
        where[t] = 0;
        eval_thr_name(o, t, name[t], sizeof name[t]);
        const int k = ce ? eval_decide_cloud(r, E, r->edge_exits, o->thv[t], &ans[t], &where[t]) : eval_decide(r, E, o->thv[t], &ans[t]);
        fprintf(f, "%s\"%s\": %d", t ? ", " : "", name[t], k + 1);
    }
    fputs("}, \"answer\": {", f);
    for (int t = 0; t < o->n_thr; t++)
        fprintf(f, "%s\"%s\": %d", t ? ", " : "", name[t], ans[t]);
    fputs("}", f);
    if (ce) {
        static const char *const names[] = {"edge", "cloud", "degraded"};
        fputs(", \"where\": {", f);
        for (int t = 0; t < o->n_thr; t++)
            fprintf(f, "%s\"%s\": \"%s\"", t ? ", " : "", name[t], names[where[t]]);
        fputs("}", f);
        if (r->sent) {
            fprintf(f, ", \"latency_ms\": %.3f, \"edge_ms\": %.3f, \"offload_ms\": %.3f, \"bytes\": %zu", r->total_ms,
                    r->edge_ms, r->offload_ms, r->bytes);
            if (r->planned)
                cli_auto_json(f, &r->plan);
            if (r->degraded) {
                fputs(", \"reason\": ", f);
                cli_json_string(f, r->reason);
            }
        }
    }
    fputs("}\n", f);
}

static double frac(long a, long b) { return b ? (double)a / (double)b : 0.0; }

static void report_json(const eval_opts *o, const eex_model *m, long N, int E, const thr_stats *ts, const long *exit_correct,
                        const long conf_mat[EEX_MAX_CLASSES_DET][EEX_MAX_CLASSES_DET], int true_det, double secs,
                        const cloud_eval *ce, double (*thr_lat)[2], int D, long det_right, long det_total)
{
    printf("{\"model\": ");
    cli_json_string(stdout, o->model);
    printf(", \"split\": \"%s\", \"distortion\": ", o->split);
    cli_json_string(stdout, o->dist_spec);
    printf(", \"expert\": ");
    cli_json_string(stdout, o->expert_mode);
    printf(", \"metric\": \"%s\", \"seed\": %llu, \"images\": %ld, \"exits\": %d, \"seconds\": %.3f",
           o->metric == EEX_METRIC_ENTROPY ? "entropy" : "maxprob", (unsigned long long)o->seed, N, E, secs);
    if (D && true_det >= 0)
        printf(", \"detector_accuracy\": %.6f", frac(det_right, det_total));
    if (D) {
        printf(", \"detector_classes\": [");
        for (int c = 0; c < D; c++) {
            fputs(c ? ", " : "", stdout);
            cli_json_string(stdout, eex_model_detector_class(m, c));
        }
        printf("], \"detector_predicted\": [");
        for (int c = 0; c < D; c++)
            printf("%s%ld", c ? ", " : "", true_det >= 0 ? conf_mat[true_det][c] : 0);
        printf("]");
    }
    if (ce) {
        double *v = malloc(sizeof(double) * (size_t)(ce->sent ? ce->sent : 1));
        double lat[3][2] = {{0}};
        const double *src[3] = {ce->total_ms, ce->edge_ms, ce->offload_ms};
        for (int q = 0; v && q < 3; q++) {
            long n = 0;
            for (long i = 0; i < N; i++)
                if (src[q][i] == src[q][i])
                    v[n++] = src[q][i];
            lat[q][1] = eval_percentile(v, n, 0.95);
            lat[q][0] = eval_percentile(v, n, 0.5);
        }
        free(v);
        const double bpo = ce->sent ? (double)ce->bytes_sum / (double)ce->sent : 0.0;
        const double jpo = ce->json_samples ? ce->json_bytes_sum / (double)ce->json_samples : 0.0;
        printf(", \"cloud\": ");
        cli_json_string(stdout, ce->where);
        printf(", \"wire\": \"%s\", \"cut\": %d, \"cut_name\": ",
               ce->autop.on ? eex_wire_name(ce->autop.plan.wire ? ce->autop.plan.wire : EEX_WIRE_F32) : cli_wire_name(o->wire),
               ce->cut);
        cli_json_string(stdout, eex_model_cut_name(m, ce->cut));
        if (ce->autop.on)
            printf(", \"plan\": {\"cut\": \"%s\", \"wire\": \"%s\", \"changes\": %d, \"est_rtt_ms\": %.3f, "
                   "\"est_mbit\": %.3f, \"cloud_extra_ms\": %.3f}",
                   o->autop.cut_auto ? "auto" : "fixed", o->autop.wire_auto ? "auto" : "fixed", ce->autop.plan.changes,
                   ce->autop.plan.path.rtt_ms, ce->autop.plan.path.mbit, ce->autop.plan.cloud_extra);
        if (ce->autop.on) {  /* the final costs: what the last choice was made with */
            printf(", \"plan_final\": {\"cut\": %d, \"wire\": \"%s\", ", ce->autop.plan.cut,
                   eex_wire_name(ce->autop.plan.wire));
            cli_auto_costs_json(stdout, &ce->autop);
            printf("}");
        }
        printf(", \"edge_exits\": %d, \"offloaded\": %ld, \"latency_ms\": {\"median\": %.3f, \"p95\": %.3f}, "
               "\"edge_ms\": {\"median\": %.3f, \"p95\": %.3f}, \"offload_ms\": {\"median\": %.3f, \"p95\": %.3f}, "
               "\"bytes_per_offload\": %.1f, \"payload_bytes_per_offload\": %.1f, \"json_bytes_per_offload\": %.1f, "
               "\"degraded\": %ld, \"path_mismatch\": %ld, \"final_mismatch\": %ld",
               ce->edge_exits, ce->sent, lat[0][0], lat[0][1], lat[1][0], lat[1][1], lat[2][0], lat[2][1], bpo,
               ce->sent ? (double)ce->payload_sum / (double)ce->sent : 0.0, jpo, ce->degraded, ce->path_mismatch,
               ce->final_mismatch);
    }
    printf(", \"exit_accuracy\": [");
    for (int k = 0; k <= E; k++)
        printf("%s%.6f", k ? ", " : "", frac(exit_correct[k], N));
    printf("], \"results\": [");
    for (int t = 0; t < o->n_thr; t++) {
        const thr_stats *s = &ts[t];
        const long edge = N - s->offload;
        if (o->thr_n[t]) {
            printf("%s{\"thresholds\": [", t ? ", " : "");
            for (int k = 0; k <= E; k++)
                printf("%s%g", k ? ", " : "", o->thv[t][k]);
            printf("], \"exit_share\": [");
        } else
            printf("%s{\"threshold\": %g, \"exit_share\": [", t ? ", " : "", o->thr[t]);
        for (int k = 0; k < E; k++)
            printf("%s%.6f", k ? ", " : "", frac(s->exit_count[k], N));
        printf("], \"p_offload\": %.6f, \"edge_accuracy\": %.6f, \"cloud_accuracy\": %.6f, "
               "\"final_accuracy_offloaded\": %.6f, \"overall_accuracy\": %.6f",
               frac(s->offload, N), frac(s->edge_correct, edge), frac(s->cloud_correct, s->offload),
               frac(s->final_correct, s->offload), frac(s->edge_correct + s->cloud_correct, N));
        if (o->outage_window)
            printf(", \"outage_probability\": %.6f, \"outage_windows\": %ld, \"outage_windows_no_edge\": %ld",
                   outage_prob(&s->outage), s->outage.windows, s->outage.empty);
        if (ce && o->miss_deadline)
            printf(", \"missed_deadline_probability\": %.6f, \"missed_deadline\": %ld",
                   deadline_miss_prob(&s->deadline), s->deadline.missed);
        if (ce)
            printf(", \"degraded\": %ld, \"latency_ms\": {\"median\": %.3f, \"p95\": %.3f}}", s->degraded,
                   thr_lat[t][0], thr_lat[t][1]);
        else
            printf("}");
    }
    printf("]}\n");
}

static void report_text(const eval_opts *o, const eex_model *m, long N, int E, const thr_stats *ts, const long *exit_correct,
                        const long conf_mat[EEX_MAX_CLASSES_DET][EEX_MAX_CLASSES_DET], int true_det, double secs,
                        const cloud_eval *ce, double (*thr_lat)[2], int D, long det_right, long det_total)
{
    printf("eex eval: %s, %s split, %ld images, distortion %s, expert %s, metric %s (%.1f s, %.0f images/s)\n", o->model,
           o->split, N, o->dist_spec, o->expert_mode, o->metric == EEX_METRIC_ENTROPY ? "entropy" : "maxprob", secs,
           secs > 0 ? (double)N / secs : 0.0);
    if (D && true_det >= 0) {
        printf("detector: %.2f%% say '%s' (", 100.0 * frac(det_right, det_total), eex_model_detector_class(m, true_det));
        for (int c = 0; c < D; c++)
            printf("%s%s %ld", c ? ", " : "", eex_model_detector_class(m, c), conf_mat[true_det][c]);
        printf(")\n");
    }
    if (ce) {
        double *v = malloc(sizeof(double) * (size_t)(ce->sent ? ce->sent : 1));
        double med = 0, p95 = 0, emed = 0, omed = 0;
        long n = 0;
        for (long i = 0; v && i < N; i++)
            if (ce->total_ms[i] == ce->total_ms[i])
                v[n++] = ce->total_ms[i];
        p95 = eval_percentile(v, n, 0.95), med = eval_percentile(v, n, 0.5);
        n = 0;
        for (long i = 0; v && i < N; i++)
            if (ce->edge_ms[i] == ce->edge_ms[i])
                v[n++] = ce->edge_ms[i];
        emed = eval_percentile(v, n, 0.5);
        n = 0;
        for (long i = 0; v && i < N; i++)
            if (ce->offload_ms[i] == ce->offload_ms[i])
                v[n++] = ce->offload_ms[i];
        omed = eval_percentile(v, n, 0.5);
        free(v);
        printf("cloud %s, %s wire, cut %d '%s' (%d exits on the edge)%s: %ld images offloaded, %ld degraded\n", ce->where,
               ce->autop.on ? eex_wire_name(ce->autop.plan.wire ? ce->autop.plan.wire : EEX_WIRE_F32) : cli_wire_name(o->wire),
               ce->cut, eex_model_cut_name(m, ce->cut), ce->edge_exits, ce->autop.on ? " at the end" : "", ce->sent,
               ce->degraded);
        if (ce->autop.on)
            printf("  plan: cut %s, wire %s; %d changes; path estimate %.2f ms RTT, %.1f Mbit/s\n",
                   o->autop.cut_auto ? "auto" : "fixed", o->autop.wire_auto ? "auto" : "fixed", ce->autop.plan.changes,
                   ce->autop.plan.path.rtt_ms, ce->autop.plan.path.mbit);
        printf("  end-to-end latency median %.2f ms, p95 %.2f ms (median edge %.2f ms + offload %.2f ms)\n", med, p95,
               emed, omed);
        if (ce->sent)
            printf("  %.0f bytes per offload (JSON float list of the same tensor: %.0f bytes, %.1fx more)\n",
                   (double)ce->bytes_sum / (double)ce->sent, ce->json_samples ? ce->json_bytes_sum / (double)ce->json_samples : 0.0,
                   ce->json_samples ? ce->json_bytes_sum / (double)ce->json_samples / ((double)ce->bytes_sum / (double)ce->sent) : 0.0);
    }
    printf("accuracy of each exit on all images:");
    for (int k = 0; k <= E; k++)
        printf("  %s%d %.2f%%", k < E ? "exit" : "final/exit", k + 1, 100.0 * frac(exit_correct[k], N));
    printf("\n\n threshold");
    for (int k = 0; k < E; k++)
        printf("   exit%d", k + 1);
    printf("  P(offload)  edge acc  cloud acc  overall%s\n", ce ? "  degraded  latency med/p95 ms" : "");
    for (int t = 0; t < o->n_thr; t++) {
        const thr_stats *s = &ts[t];
        if (o->thr_n[t]) {
            char name[256];
            eval_thr_name(o, t, name, sizeof name);
            printf("  %s\n  %8s", name, "");
        } else
            printf("  %8.3f", o->thr[t]);
        for (int k = 0; k < E; k++)
            printf("  %5.1f%%", 100.0 * frac(s->exit_count[k], N));
        printf("     %5.1f%%    %5.1f%%     %5.1f%%   %5.1f%%", 100.0 * frac(s->offload, N),
               100.0 * frac(s->edge_correct, N - s->offload), 100.0 * frac(s->cloud_correct, s->offload),
               100.0 * frac(s->edge_correct + s->cloud_correct, N));
        if (ce)
            printf("  %8ld  %7.2f / %.2f", s->degraded, thr_lat[t][0], thr_lat[t][1]);
        printf("\n");
    }
    if (o->outage_window || (ce && o->miss_deadline)) {
        printf("\n");
        for (int t = 0; t < o->n_thr; t++) {
            char name[256];
            eval_thr_name(o, t, name, sizeof name);
            printf("  %-10s", name);
            if (o->outage_window)
                printf("  outage (edge accuracy < %.3g in windows of %d): %.4f (%ld of %ld windows; %ld with no edge answer)",
                       o->outage_target, o->outage_window, outage_prob(&ts[t].outage), ts[t].outage.outages,
                       ts[t].outage.windows, ts[t].outage.empty);
            if (ce && o->miss_deadline)
                printf("  missed deadline (%d ms): %.4f (%ld images)", o->deadline_ms, deadline_miss_prob(&ts[t].deadline),
                       ts[t].deadline.missed);
            printf("\n");
        }
    }
}

void eval_report(const eval_opts *o, const eex_model *m, long N, int E, const thr_stats *ts, const long *exit_correct,
                 const long conf_mat[EEX_MAX_CLASSES_DET][EEX_MAX_CLASSES_DET], int true_det, double secs,
                 const cloud_eval *ce, double (*thr_lat)[2])
{
    const int D = eex_model_detector_class_count(m);
    long det_right = 0, det_total = 0;
    if (true_det >= 0)
        for (int c = 0; c < D; c++) {
            det_total += conf_mat[true_det][c];
            det_right += c == true_det ? conf_mat[true_det][c] : 0;
        }
    (o->json ? report_json : report_text)(o, m, N, E, ts, exit_correct, conf_mat, true_det, secs, ce, thr_lat, D,
                                          det_right, det_total);
}
