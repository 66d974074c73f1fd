#include "run_ee.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "offload_cli.h"

static const char *where_name(eex_where w)
{
    static const char *const names[] = {"edge", "local", "cut", "cloud", "degraded"};
    return (unsigned)w < 5 ? names[w] : "?";
}

int resolve_expert(const char *cmd, const eex_model *m, const char *name, int *expert)
{
    if (!name || !strcmp(name, "auto")) {
        if (eex_model_has_detector(m)) {
            *expert = EEX_EXPERT_AUTO;
            return CLI_OK;
        }
        if (name)
            return cli_error(cmd, "--expert auto needs a distortion detector, and this model has none");
        *expert = 0;
        return CLI_OK;
    }
    eex_status st = eex_model_find_expert(m, name, expert);
    return st ? cli_status(cmd, st) : CLI_OK;
}

int resolve_cut(const char *cmd, const eex_model *m, const char *spec, int *cut)
{
    *cut = EEX_NO_CUT;
    if (!spec)
        return CLI_OK;
    const int n = eex_model_cut_count(m);
    for (int i = 0; i < n; i++)
        if (!strcmp(eex_model_cut_name(m, i), spec)) {
            *cut = i;
            return CLI_OK;
        }
    int idx = cli_parse_int(spec, 0, n - 1);
    if (idx < 0)
        return cli_error(cmd, "--cut '%s' is neither a cut index (0..%d) nor a cut name", spec, n - 1);
    *cut = idx;
    return CLI_OK;
}

static void print_json(const eex_model *m, const run_opts *o, const eex_exit_result *r, const eex_policy *p,
                       const eex_offload_info *off, const cli_auto *au)
{
    FILE *f = stdout;
    fputs("{\"image\": ", f);
    cli_json_string(f, o->image);
    fputs(", \"detector\": ", f);
    if (r->detector_class >= 0) {
        cli_json_string(f, eex_model_detector_class(m, r->detector_class));
        fputs(", \"detector_probs\": {", f);
        for (int i = 0; i < r->n_detector_classes; i++) {
            fputs(i ? ", " : "", f);
            cli_json_string(f, eex_model_detector_class(m, i));
            fprintf(f, ": %.6f", r->detector_probs[i]);
        }
        fprintf(f, "}, \"detector_ms\": %.3f", r->stage_ms[EEX_MAX_EXITS + 1]);
    } else
        fputs("null", f);
    fputs(", \"expert\": ", f);
    cli_json_string(f, eex_model_expert_name(m, r->expert));
    fprintf(f, ", \"threshold\": %.6g, \"metric\": \"%s\"", p->threshold,
            o->metric == EEX_METRIC_ENTROPY ? "entropy" : "maxprob");
    if (p->thresholds) {
        fputs(", \"thresholds\": [", f);
        for (int k = 0; k <= eex_model_exit_count(m); k++)
            fprintf(f, "%s%.6g", k ? ", " : "", eex_policy_threshold(p, k));
        fputs("]", f);
    }
    if (r->exit > 0)
        fprintf(f, ", \"exit\": %d", r->exit);
    else
        fputs(", \"exit\": null", f);
    fprintf(f, ", \"final_exit\": %d, \"where\": \"%s\", \"class\": %d, \"label\": ", eex_model_exit_count(m) + 1,
            where_name(r->where), r->cls);
    cli_json_string(f, eex_model_label(m, r->cls));
    fprintf(f, ", \"confidence\": %.6f, \"confidences\": [", r->confidence);
    for (int k = 0; k < r->n_computed; k++)
        fprintf(f, "%s%.6f", k ? ", " : "", r->confidences[k]);
    fputs("], \"predictions\": [", f);
    for (int k = 0; k < r->n_computed; k++)
        fprintf(f, "%s%d", k ? ", " : "", r->predictions[k]);
    fputs("], \"stage_ms\": [", f);
    for (int k = 0; k < r->n_computed; k++)
        fprintf(f, "%s%.3f", k ? ", " : "", r->stage_ms[k]);
    fprintf(f, "], \"nodes_executed\": %d", r->nodes_executed);
    if (off) {
        if (r->where == EEX_WHERE_DEGRADED) {
            fputs(", \"reason\": ", f);
            cli_json_string(f, off->reason);
        }
        fputs(", \"cloud\": ", f);
        if (off->offloaded) {
            fputs("{\"address\": ", f);
            cli_json_string(f, o->cloud);
            fprintf(f, ", \"wire\": \"%s\", \"cut\": %d, \"info\": ",
                    au && au->on ? eex_wire_name(au->step.wire) : cli_wire_name(o->wire), r->cut);
            cli_offload_json(f, off);
            if (au && au->on)
                cli_auto_json(f, &au->step);
            fputs("}", f);
        } else
            fputs("null", f);
    }
    if (r->where == EEX_WHERE_CUT) {
        int64_t d[EEX_MAX_RANK];
        const int rank = eex_model_cut_shape(m, r->cut, d);
        int64_t elems = 1;
        fputs(", \"cut\": {\"index\": ", f);
        fprintf(f, "%d, \"name\": ", r->cut);
        cli_json_string(f, eex_model_cut_name(m, r->cut));
        fputs(", \"shape\": [", f);
        for (int i = 0; i < rank; i++) {
            fprintf(f, "%s%lld", i ? ", " : "", (long long)d[i]);
            elems *= d[i];
        }
        fprintf(f, "], \"bytes_f32\": %lld}", (long long)elems * 4);
    }
    fputs("}\n", f);
}

static void print_text(const eex_model *m, const run_opts *o, const eex_exit_result *r, const eex_policy *p,
                       const eex_offload_info *off, const cli_auto *au)
{
    const int E = eex_model_exit_count(m);
    char pb[256], cb[256];  /* names and labels from the file, made safe for a terminal */
    printf("%s\n", o->image);
    if (r->detector_class >= 0) {
        printf("  detector   %s (", eex_model_detector_class(m, r->detector_class));
        for (int i = 0; i < r->n_detector_classes; i++)
            printf("%s%s %.3f", i ? ", " : "", cli_printable(eex_model_detector_class(m, i), pb, sizeof pb),
                   r->detector_probs[i]);
        printf(")  %.2f ms\n", r->stage_ms[EEX_MAX_EXITS + 1]);
    }
    printf("  expert     %s\n", cli_printable(eex_model_expert_name(m, r->expert), pb, sizeof pb));
    for (int k = 0; k < r->n_computed; k++) {
        const char *label = cli_printable(eex_model_label(m, r->predictions[k]), pb, sizeof pb);
        char name[16];
        if (k < E)
            snprintf(name, sizeof name, "exit %d", k + 1);
        else
            snprintf(name, sizeof name, "final");
        const int on_cloud = off && off->offloaded && r->where == EEX_WHERE_CLOUD && r->cut >= 0 &&
                             k >= eex_model_cut_exit(m, r->cut);
        if (on_cloud)
            printf("  %-9s  confidence %.3f  class %d %-14s     cloud%s\n", name, r->confidences[k], r->predictions[k],
                   label ? label : "", r->confidences[k] > eex_policy_threshold(p, k) ? "  (> threshold)" : "");
        else
            printf("  %-9s  confidence %.3f  class %d %-14s %7.2f ms%s\n", name, r->confidences[k], r->predictions[k],
                   label ? label : "", r->stage_ms[k], r->confidences[k] > eex_policy_threshold(p, k) ? "  (> threshold)" : "");
    }
    const char *label = cli_printable(eex_model_label(m, r->cls), pb, sizeof pb);
    if (r->where == EEX_WHERE_CLOUD || r->where == EEX_WHERE_DEGRADED) {
        printf("  offload    cut %d '%s', %s wire, %zu bytes sent, %.2f ms edge + %.2f ms offload (server %.2f ms)\n",
               r->cut, cli_printable(eex_model_cut_name(m, r->cut), cb, sizeof cb),
               au && au->on ? eex_wire_name(au->step.wire) : cli_wire_name(o->wire), off->bytes_sent, off->edge_ms,
               off->offload_ms, off->server_ms);
        if (au && au->on)
            printf("  plan       cut %d %s chosen on %s (predicted %.2f ms); this request's PING %.2f ms, path now "
                   "%.2f ms / %.1f Mbit/s\n",
                   au->step.cut, eex_wire_name(au->step.wire),
                   au->step.path.samples ? "the estimated path" : "no measured path yet (0 ms / 100 Mbit/s)",
                   au->step.predicted_ms, au->step.probe_rtt_ms, au->plan.path.rtt_ms, au->plan.path.mbit);
        if (r->where == EEX_WHERE_CLOUD)
            printf("  answer     class %d %s, confidence %.3f, %s %d (answered via the cloud at %s)\n", r->cls,
                   label ? label : "", r->confidence, r->exit == E + 1 ? "final classifier, exit" : "exit", r->exit,
                   o->cloud);
        else
            printf("  answer     class %d %s, confidence %.3f, exit %d (DEGRADED: %s)\n", r->cls, label ? label : "",
                   r->confidence, r->exit, off->reason);
    } else if (r->where == EEX_WHERE_CUT) {
        int64_t d[EEX_MAX_RANK];
        const int rank = eex_model_cut_shape(m, r->cut, d);
        int64_t elems = 1;
        for (int i = 0; i < rank; i++)
            elems *= d[i];
        printf("  answer     needs cloud: no exit above %.2f; cut %d '%s' sends %lld floats (%lld bytes as f32)\n",
               p->threshold, r->cut, eex_model_cut_name(m, r->cut), (long long)elems, (long long)elems * 4);
        if (r->n_computed)
            printf("             best local guess: class %d %s (confidence %.3f)\n", r->cls, label ? label : "",
                   r->confidence);
    } else
        printf("  answer     class %d %s, confidence %.3f, %s %d (%s)\n", r->cls, label ? label : "", r->confidence,
               r->exit == E + 1 ? "final classifier, exit" : "exit", r->exit,
               r->where == EEX_WHERE_EDGE ? "answered on the edge" : "no exit above threshold: ran to the end here");
}

int run_ee(const run_opts *o, const eex_model *m, eex_session *s)
{
    eex_policy p = {.metric = o->metric};
    int rc;
    if ((rc = resolve_expert("run", m, o->expert, &p.expert)) || (rc = resolve_cut("run", m, o->cut, &p.cut)))
        return rc;
    p.threshold = o->threshold >= 0 ? o->threshold
                                    : (eex_model_default_threshold(m) >= 0 ? eex_model_default_threshold(m) : 0.8f);
    /* per-exit thresholds: --thresholds, else the file's ee.thresholds unless --threshold was given */
    float tv[EEX_MAX_EXITS + 1];
    int tn = o->n_thresholds;
    memcpy(tv, o->thresholds, sizeof tv);
    if (!tn && o->threshold < 0)
        tn = eex_model_default_thresholds(m, tv, EEX_MAX_EXITS + 1);
    if (tn) {
        const int E = eex_model_exit_count(m);
        if (tn != E && tn != E + 1)
            return cli_usage("run", "--thresholds: the model has %d exits; give %d values (or %d with the final's)", E, E,
                             E + 1);
        if (tn == E)
            tv[E] = tv[E - 1];  /* the final takes the last exit's threshold */
        p.thresholds = tv, p.n_thresholds = E + 1, p.threshold = tv[E];
    }
    eex_exit_result r;
    eex_status st;
    if (o->cloud) {
        char host[256];
        int port;
        if (cli_parse_hostport(o->cloud, "127.0.0.1", host, sizeof host, &port) || port < 1)
            return cli_usage("run", "--cloud takes HOST:PORT, not '%s'", o->cloud);
        eex_cloud_opts co = {.wire = o->wire ? o->wire : EEX_WIRE_F32, .deadline_ms = o->deadline_ms};
        eex_cloud_client *c;
        if ((st = eex_cloud_client_new(m, host, port, &co, &c)))
            return cli_status("run", st);
        if ((rc = cli_cloud_key("run", c, o->key))) {
            eex_cloud_client_free(c);
            return rc;
        }
        cli_auto au;
        if ((rc = cli_auto_open("run", m, &o->autop, p.cut == EEX_NO_CUT ? eex_model_cut_count(m) - 1 : p.cut, o->wire,
                                &au)) ||
            (au.on && (rc = cli_auto_next("run", &au, c, &p.cut)))) {
            eex_cloud_client_free(c);
            return rc;
        }
        eex_offload_info off;
        st = eex_session_run_offload(s, c, &p, &r, &off);
        if (!st && au.on)
            cli_auto_done(&au, c, &off);
        eex_cloud_client_free(c);
        if (st)
            return cli_status("run", st);
        if (o->json)
            print_json(m, o, &r, &p, &off, &au);
        else
            print_text(m, o, &r, &p, &off, &au);
        return CLI_OK;
    }
    if ((st = eex_session_run_policy(s, &p, &r)))
        return cli_status("run", st);
    if (o->json)
        print_json(m, o, &r, &p, NULL, NULL);
    else
        print_text(m, o, &r, &p, NULL, NULL);
    return CLI_OK;
}
