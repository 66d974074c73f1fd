/* `eex bench --exits`: for each exit k, the measured latency of a run that
 * answers at exit k (policy with force_exit = k), beside what the profile
 * predicts: the backbone up to exit k plus exit k's head (per-node medians of
 * profiled runs through every exit to the final classifier). The heads' share of the backbone says what the exits
 * cost a network that never uses them. */
#include <stdlib.h>
#include <string.h>

#include "bench_exits.h"
#include "cli.h"

eex_status bench_random_inputs(const eex_model *m, eex_session *s, int batch)
{
    uint64_t r = 0x2545F4914F6CDD1Dull; /* fixed seed: the same input every run */
    for (int in = 0; in < eex_model_input_count(m); in++) {
        int64_t d[EEX_MAX_RANK];
        const int rank = eex_model_input_shape(m, in, d);
        d[0] = batch;
        size_t count = 1;
        for (int i = 0; i < rank; i++)
            count *= (size_t)d[i];
        float *x = malloc(count * sizeof(float));
        if (!x)
            return EEX_ERR_NOMEM;
        for (size_t i = 0; i < count; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            x[i] = (float)(r >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
        }
        const eex_status st = eex_session_set_input(s, in, x, d, rank);
        free(x);
        if (st)
            return st;
    }
    return EEX_OK;
}

int bench_exits(const char *path, const eex_model *m, eex_session *s, int expert, int runs, int warmup, int threads,
                int json)
{
    const int E = eex_model_exit_count(m), n_nodes = eex_session_node_count(s);
    if (E < 1)
        return cli_error("bench", "--exits: the model has no side exits");
    eex_status st = bench_random_inputs(m, s, 1);
    double *node_t = malloc(sizeof(double) * (size_t)runs * (size_t)n_nodes);
    double measured[EEX_MAX_EXITS + 1], stage[EEX_MAX_EXITS + 1] = {0}, head[EEX_MAX_EXITS + 1] = {0};
    if (!node_t) {
        return cli_error("bench", "out of memory");
    }
    /* latency to each exit, interleaved over exits so drift hits all alike */
    double *lat = malloc(sizeof(double) * (size_t)runs * (size_t)(E + 1));
    eex_exit_result r;
    for (int i = 0; !st && lat && i < warmup; i++)
        for (int k = 1; k <= E + 1 && !st; k++) {
            eex_policy p = {.threshold = 2.0f, .expert = expert, .cut = EEX_NO_CUT, .force_exit = k};
            st = eex_session_run_policy(s, &p, &r);
        }
    for (int i = 0; !st && lat && i < runs; i++)
        for (int k = 1; k <= E + 1 && !st; k++) {
            eex_policy p = {.threshold = 2.0f, .expert = expert, .cut = EEX_NO_CUT, .force_exit = k};
            const double t0 = cli_now_ms();
            st = eex_session_run_policy(s, &p, &r);
            lat[(size_t)(k - 1) * runs + i] = cli_now_ms() - t0;
        }
    /* the profile: per-node medians of runs to the final classifier with this
     * expert set, i.e. every node a deployed edge may run and no other expert's
     * heads competing for the caches */
    if (!st)
        st = eex_session_enable_profiling(s, 1);
    for (int i = 0; !st && lat && i < runs; i++) {
        eex_policy p = {.threshold = 2.0f, .expert = expert, .cut = EEX_NO_CUT, .force_exit = E + 1};
        st = eex_session_run_policy(s, &p, &r);
        for (int n = 0; n < n_nodes && !st; n++) {
            eex_node_info in;
            st = eex_session_node_info(s, n, &in);
            node_t[(size_t)n * runs + i] = in.ms;
        }
    }
    eex_session_enable_profiling(s, 0);
    if (st || !lat) {
        free(node_t), free(lat);
        return st ? cli_status("bench", st) : cli_error("bench", "out of memory");
    }
    double backbone_total = 0.0;
    for (int n = 0; n < n_nodes; n++) {
        eex_node_info in;
        eex_session_node_info(s, n, &in);
        const double ms = cli_median(node_t + (size_t)n * runs, runs);
        if (in.stage >= 1 && in.stage <= E + 1) {
            stage[in.stage - 1] += ms;
            backbone_total += ms;
        }
        if (in.head_exit >= 1 && in.head_exit <= E + 1 && (in.head_experts >> expert & 1))
            head[in.head_exit - 1] += ms;
    }
    for (int k = 0; k <= E; k++)
        measured[k] = cli_median(lat + (size_t)k * runs, runs);
    double heads = 0.0;
    for (int k = 0; k < E; k++)
        heads += head[k];
    const char *ename = eex_model_expert_name(m, expert);
    if (json) {
        printf("{\"model\": ");
        cli_json_string(stdout, path);
        printf(", \"expert\": ");
        cli_json_string(stdout, ename);
        printf(", \"threads\": %d, \"runs\": %d, \"backbone_ms\": %.4f, \"heads_ms\": %.4f, \"heads_share\": %.5f, \"exits\": [",
               threads, runs, backbone_total, heads, backbone_total > 0 ? heads / backbone_total : 0.0);
        double up_to = 0.0;
        for (int k = 0; k <= E; k++) {
            up_to += stage[k];
            const double predicted = up_to + head[k];
            printf("%s{\"exit\": %d, \"final\": %s, \"measured_ms\": %.4f, \"backbone_ms\": %.4f, \"head_ms\": %.4f, "
                   "\"predicted_ms\": %.4f, \"ratio\": %.4f}",
                   k ? ", " : "", k + 1, k == E ? "true" : "false", measured[k], up_to, head[k], predicted,
                   predicted > 0 ? measured[k] / predicted : 0.0);
        }
        printf("]}\n");
    } else {
        printf("%s: exits of expert set '%s', %d thread%s, %d runs (medians)\n\n", path, ename, threads,
               threads == 1 ? "" : "s", runs);
        printf("  %-8s %12s %14s %10s %14s %9s\n", "exit", "measured ms", "backbone to k", "head ms", "backbone+head",
               "ratio");
        double up_to = 0.0;
        for (int k = 0; k <= E; k++) {
            up_to += stage[k];
            const double predicted = up_to + head[k];
            char name[16];
            snprintf(name, sizeof name, k < E ? "exit %d" : "final", k + 1);
            printf("  %-8s %12.3f %14.3f %10.3f %14.3f %9.3f\n", name, measured[k], up_to, head[k], predicted,
                   predicted > 0 ? measured[k] / predicted : 0.0);
        }
        printf("\n  side-exit heads together: %.3f ms = %.2f%% of the full backbone (%.3f ms)\n", heads,
               backbone_total > 0 ? 100.0 * heads / backbone_total : 0.0, backbone_total);
    }
    free(node_t), free(lat);
    return CLI_OK;
}
