/* eex info: what a model file holds and what running it costs. */
#include <string.h>

#include "cli.h"

static const char help[] =
    "usage: eex info MODEL.eex [--json]\n"
    "\n"
    "Validates MODEL.eex and prints its name, inputs and outputs with shapes (NCHW,\n"
    "batch 1), node count by op, parameter count, multiply-accumulates per image,\n"
    "the activation arena one session needs at batch 1, and the kernel each conv\n"
    "and dense node runs with on this CPU at batch 1 (counts; --nodes lists them).\n"
    "\n"
    "  --json   one JSON object on stdout instead of the table (with a \"kernels\"\n"
    "           list: name, op and kernel of every conv and dense node)\n"
    "  --nodes  one line per conv and dense node: index, op, kernel, name\n";

/* Counts of the kernels the session's conv and dense nodes run with. */
static int kernel_histogram(const eex_session *s, const char **names, int *counts, int cap)
{
    int n = 0;
    for (int k = 0; k < eex_session_node_count(s); k++) {
        eex_node_info in;
        if (eex_session_node_info(s, k, &in) || (strcmp(in.op, "conv") && strcmp(in.op, "dense")))
            continue;
        int i = 0;
        while (i < n && strcmp(names[i], in.kernel))
            i++;
        if (i == n) {
            if (n == cap)
                continue;
            names[n] = in.kernel, counts[n++] = 0;
        }
        counts[i]++;
    }
    return n;
}

static void print_shape(FILE *f, const int64_t *d, int rank, int json)
{
    fputs(json ? "[" : "[", f);
    for (int i = 0; i < rank; i++)
        fprintf(f, "%s%lld", i ? (json ? ", " : "x") : "", (long long)d[i]);
    fputs("]", f);
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, nodes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return CLI_OK;
        } else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--nodes"))
            nodes = 1;
        else if (argv[i][0] == '-')
            return cli_usage("info", "unknown option '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else
            return cli_usage("info", "unexpected argument '%s'", argv[i]);
    }
    if (!path)
        return cli_usage("info", "missing MODEL.eex");
    eex_model *m;
    eex_status st = eex_model_open(path, &m);
    if (st)
        return cli_status("info", st);
    eex_session *s;
    if ((st = eex_session_new(m, NULL, &s))) {
        eex_model_close(m);
        return cli_status("info", st);
    }
    eex_model_stats stats;
    eex_model_get_stats(m, &stats);
    const char *ops[64];
    int counts[64];
    const int n_ops = eex_model_op_histogram(m, ops, counts, 64);
    const size_t arena = eex_session_arena_bytes(s);
    FILE *o = stdout;
    int64_t d[EEX_MAX_RANK];
    if (json) {
        fputs("{\"name\": ", o);
        cli_json_string(o, eex_model_name(m));
        fputs(", \"inputs\": [", o);
        for (int i = 0; i < eex_model_input_count(m); i++) {
            int r = eex_model_input_shape(m, i, d);
            fprintf(o, "%s{\"name\": ", i ? ", " : "");
            cli_json_string(o, eex_model_input_name(m, i));
            fputs(", \"shape\": ", o);
            print_shape(o, d, r, 1);
            fputs("}", o);
        }
        fputs("], \"outputs\": [", o);
        for (int i = 0; i < eex_model_output_count(m); i++) {
            int r = eex_model_output_shape(m, i, d);
            fprintf(o, "%s{\"name\": ", i ? ", " : "");
            cli_json_string(o, eex_model_output_name(m, i));
            fputs(", \"shape\": ", o);
            print_shape(o, d, r, 1);
            fputs("}", o);
        }
        fprintf(o, "], \"nodes\": %d, \"ops\": {", stats.nodes);
        for (int i = 0; i < n_ops && i < 64; i++) {
            fputs(i ? ", " : "", o);
            cli_json_string(o, ops[i]);
            fprintf(o, ": %d", counts[i]);
        }
        fprintf(o, "}, \"params\": %lld, \"macs\": %lld, \"arena_bytes\": %zu, \"file_bytes\": %llu, \"labels\": %d",
                (long long)stats.params, (long long)stats.macs, arena, (unsigned long long)stats.file_bytes,
                eex_model_label_count(m));
        fputs(", \"kernels\": [", o);
        int first = 1;
        for (int k = 0; k < eex_session_node_count(s); k++) {
            eex_node_info in;
            if (eex_session_node_info(s, k, &in) || (strcmp(in.op, "conv") && strcmp(in.op, "dense")))
                continue;
            fprintf(o, "%s{\"index\": %d, \"name\": ", first ? "" : ", ", k);
            cli_json_string(o, in.name);
            fprintf(o, ", \"op\": \"%s\", \"kernel\": \"%s\"}", in.op, in.kernel);
            first = 0;
        }
        fputs("]}\n", o);
    } else {
        fprintf(o, "model       %s\n", eex_model_name(m) ? eex_model_name(m) : "(unnamed)");
        fprintf(o, "file        %s (%llu bytes)\n", path, (unsigned long long)stats.file_bytes);
        for (int i = 0; i < eex_model_input_count(m); i++) {
            int r = eex_model_input_shape(m, i, d);
            fprintf(o, "input       %s ", eex_model_input_name(m, i));
            print_shape(o, d, r, 0);
            fputc('\n', o);
        }
        for (int i = 0; i < eex_model_output_count(m); i++) {
            int r = eex_model_output_shape(m, i, d);
            fprintf(o, "output      %s ", eex_model_output_name(m, i));
            print_shape(o, d, r, 0);
            fputc('\n', o);
        }
        fprintf(o, "nodes       %d:", stats.nodes);
        for (int i = 0; i < n_ops && i < 64; i++)
            fprintf(o, " %s %d", ops[i], counts[i]);
        fputc('\n', o);
        fprintf(o, "params      %lld (%.2f M)\n", (long long)stats.params, (double)stats.params / 1e6);
        fprintf(o, "MACs        %lld (%.1f M per image)\n", (long long)stats.macs, (double)stats.macs / 1e6);
        fprintf(o, "arena       %zu bytes (%.2f MB at batch 1)\n", arena, (double)arena / (1 << 20));
        fprintf(o, "labels      %d\n", eex_model_label_count(m));
        const char *kn[32];
        int kc[32];
        const int nk = kernel_histogram(s, kn, kc, 32);
        fprintf(o, "kernels     %s:", eex_kernel_isa());
        for (int i = 0; i < nk; i++)
            fprintf(o, " %s %d", kn[i], kc[i]);
        fputc('\n', o);
        for (int k = 0; nodes && k < eex_session_node_count(s); k++) {
            eex_node_info in;
            if (eex_session_node_info(s, k, &in) || (strcmp(in.op, "conv") && strcmp(in.op, "dense")))
                continue;
            fprintf(o, "  %-4d %-6s %-14s %s\n", k, in.op, in.kernel, in.name);
        }
    }
    eex_session_free(s);
    eex_model_close(m);
    return CLI_OK;
}
