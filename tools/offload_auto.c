#include "offload_auto.h"

#include <string.h>

#include "cli.h"
#include "offload_cli.h"

int cli_auto_arg(const char *cmd, int argc, char **argv, int *i, cli_auto_opts *o, eex_wire *wire)
{
    const char *a = argv[*i];
    if (*i + 1 >= argc)
        return 0;
    if (!strcmp(a, "--wire")) {
        if (!strcmp(argv[++*i], "auto"))
            o->wire_auto = 1;
        else if (cli_parse_wire(argv[*i], wire))
            return -cli_usage(cmd, "--wire takes f32, f16, i8, q4 or auto, not '%s'", argv[*i]);
        return 1;
    }
    if (!strcmp(a, "--plan-runs")) {
        if ((o->runs = cli_parse_int(argv[++*i], 1, 100000)) < 0)
            return -cli_usage(cmd, "--plan-runs takes a positive integer, not '%s'", argv[*i]);
        return 1;
    }
    if (!strcmp(a, "--edge-scale")) {
        if (cli_parse_float(argv[++*i], 1e-3, 1e6, &o->edge_scale))
            return -cli_usage(cmd, "--edge-scale takes a number in [0.001, 1e6], not '%s'", argv[*i]);
        return 1;
    }
    if (!strcmp(a, "--wires")) {
        const char *v = argv[++*i];
        char buf[64];
        o->wires = 0;
        snprintf(buf, sizeof buf, "%s", v);
        for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
            eex_wire w;
            if (cli_parse_wire(t, &w)) {
                o->wires = 0;
                break;
            }
            o->wires |= 1u << (int)w;
        }
        if (!o->wires)
            return -cli_usage(cmd, "--wires takes a comma-separated list of f32, f16, i8, q4, not '%s'", v);
        return 1;
    }
    return 0;
}

int cli_auto_open(const char *cmd, const eex_model *m, const cli_auto_opts *o, int cut_fixed, eex_wire wire, cli_auto *a)
{
    memset(a, 0, sizeof *a);
    a->cut_fixed = -1;
    if (!o->cut_auto && !o->wire_auto)
        return CLI_OK;
    a->on = 1;
    a->cut_fixed = o->cut_auto ? -1 : cut_fixed;
    eex_plan_costs k;
    eex_status st = eex_plan_measure(m, o->runs > 0 ? o->runs : 10, &k);
    if (st)
        return cli_status(cmd, st);
    const double x = o->edge_scale > 0 ? o->edge_scale : 1.0;
    for (int c = 0; c < k.cuts; c++)
        k.edge_ms[c] *= x;
    for (int e = 1; e <= k.exits && e <= EEX_MAX_EXITS; e++)
        k.exit_ms[e] *= x;
    unsigned wires = o->wires;
    for (int w = 1; !wires && w <= EEX_WIRE_COUNT; w++)
        wires |= 1u << w;
    eex_autoplan_init(&a->plan, &k, o->wire_auto ? wires : 1u << (int)(wire ? wire : EEX_WIRE_F32));
    return CLI_OK;
}

int cli_auto_next(const char *cmd, cli_auto *a, eex_cloud_client *c, int *cut)
{
    eex_status st = eex_autoplan_next(&a->plan, c, &a->step);
    if (st)
        return cli_status(cmd, st);
    if (a->cut_fixed >= 0)
        a->step.cut = a->cut_fixed;
    *cut = a->step.cut;
    return CLI_OK;
}

void cli_auto_done(cli_auto *a, const eex_cloud_client *c, const eex_offload_info *info)
{
    eex_autoplan_done(&a->plan, c, &a->step, info);
}

void cli_auto_json(FILE *f, const eex_autoplan_step *s)
{
    fprintf(f,
            ", \"plan\": {\"cut\": %d, \"wire\": \"%s\", \"est_rtt_ms\": %.3f, \"est_mbit\": %.3f, \"ping_ms\": %.3f, "
            "\"tcp_rtt_ms\": %.3f, \"predicted_ms\": %.3f}",
            s->cut, eex_wire_name(s->wire), s->path.rtt_ms, s->path.mbit, s->probe_rtt_ms, s->tcp_rtt_ms,
            s->predicted_ms);
}

void cli_auto_costs_json(FILE *f, const cli_auto *a)
{
    const eex_plan_costs *k = &a->plan.costs;
    fputs("\"costs\": {\"edge_ms\": [", f);
    for (int c = 0; c < k->cuts; c++)
        fprintf(f, "%s%.4f", c ? ", " : "", k->edge_ms[c]);
    fputs("], \"cloud_ms\": [", f);
    for (int c = 0; c < k->cuts; c++)
        fprintf(f, "%s%.4f", c ? ", " : "", k->cloud_ms[c]);
    for (int q = 0; q < 2; q++) {
        fputs(q ? "], \"codec_ms\": [" : "], \"bytes\": [", f);
        for (int c = 0; c < k->cuts; c++) {
            fputs(c ? ", [" : "[", f);
            for (int w = 1; w <= EEX_WIRE_COUNT; w++) {
                const int allowed = a->plan.wires >> w & 1u;
                fprintf(f, "%s%.4f", w > 1 ? ", " : "", !allowed ? 0.0 : q ? k->codec_ms[c][w] : k->bytes[c][w]);
            }
            fputs("]", f);
        }
    }
    fputs("]}", f);
}
