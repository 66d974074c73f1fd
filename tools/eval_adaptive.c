#include "eval_adaptive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct adaptive_run {
    const eval_opts *o;
    const eex_model *m;
    eex_bandit *b;
    int E, A, n_ctx;
    long n, cap;
    int *ctx;            /* per image */
    long *arm;           /* per image: the arm played */
    double *got;         /* per image: the bandit's reward */
    double *arm_r;       /* per image x arm: what each candidate would have earned */
    long offload;
    double reward_sum;
};

int adaptive_new(const eval_opts *o, const eex_model *m, long n_images, adaptive_run **out)
{
    adaptive_run *a = calloc(1, sizeof *a);
    if (!a)
        return cli_error("eval", "out of memory");
    a->o = o, a->m = m, a->E = eex_model_exit_count(m), a->A = o->n_cand, a->cap = n_images;
    a->n_ctx = eex_model_has_detector(m) ? eex_model_detector_class_count(m) : 1;
    const eex_adaptive_opts ao = {.candidates = o->cand, .n_candidates = o->n_cand, .offload_cost = o->offload_cost,
                                  .exploration = o->exploration};
    eex_status st = eex_bandit_new(&ao, a->n_ctx, &a->b);
    a->ctx = malloc(sizeof(int) * (size_t)n_images);
    a->arm = malloc(sizeof(long) * (size_t)n_images);
    a->got = malloc(sizeof(double) * (size_t)n_images);
    a->arm_r = malloc(sizeof(double) * (size_t)n_images * (size_t)a->A);
    if (st || !a->ctx || !a->arm || !a->got || !a->arm_r) {
        adaptive_free(a);
        return st ? cli_status("eval", st) : cli_error("eval", "out of memory");
    }
    *out = a;
    return CLI_OK;
}

/* The policy at one p_tar for every exit, by the exit rule (eex_exit_choose):
 * exit index (E when offloaded), answer. */
static int decide1(const float *conf, const int *pred, int E, float t, int *answer)
{
    float th[EEX_MAX_EXITS + 1];
    for (int k = 0; k <= E; k++)
        th[k] = t;
    int passed;
    const int k = eex_exit_choose(conf, th, E + 1, &passed);
    *answer = pred[k];
    return passed && k < E ? k : E;
}

void adaptive_image(adaptive_run *a, long index, const float *conf, const int *pred, int det_class, int expert,
                    int kind, FILE *log)
{
    if (a->n >= a->cap)
        return;
    const int E = a->E, ctx = det_class >= 0 ? det_class : 0;
    for (int q = 0; q < a->A; q++) {
        int ans;
        const int k = decide1(conf, pred, E, a->o->cand[q], &ans);
        a->arm_r[(size_t)a->n * (size_t)a->A + (size_t)q] =
            eex_adaptive_reward(conf, E - 1, E, k >= E, a->o->offload_cost);
    }
    const int arm = eex_bandit_choose(a->b, ctx);
    int ans;
    const int k = decide1(conf, pred, E, a->o->cand[arm], &ans);
    const double r = a->arm_r[(size_t)a->n * (size_t)a->A + (size_t)arm];
    eex_bandit_update(a->b, ctx, arm, r);
    a->ctx[a->n] = ctx, a->got[a->n] = r, a->arm[a->n] = arm;
    a->offload += k >= E, a->reward_sum += r;
    a->n++;
    if (!log)
        return;
    fprintf(log, "{\"index\": %ld, ", index);
    if (a->o->dist == DIST_MIX)
        fprintf(log, "\"distortion\": \"%s\", ", kind == 1 ? "blur" : kind == 2 ? "noise" : "none");
    fputs("\"detector\": ", log);
    if (det_class >= 0)
        cli_json_string(log, eex_model_detector_class(a->m, det_class));
    else
        fputs("null", log);
    fputs(", \"expert\": ", log);
    cli_json_string(log, eex_model_expert_name(a->m, expert));
    fputs(", \"confidences\": [", log);
    for (int q = 0; q <= E; q++)
        fprintf(log, "%s%.6f", q ? ", " : "", conf[q]);
    fputs("], \"predictions\": [", log);
    for (int q = 0; q <= E; q++)
        fprintf(log, "%s%d", q ? ", " : "", pred[q]);
    fprintf(log, "], \"arm\": %d, \"threshold\": %g, \"exit\": %d, \"answer\": %d, \"reward\": %.6f}\n", arm,
            a->o->cand[arm], k + 1, ans, r);
}

/* Cumulative regret after each image against the best fixed arm per
 * context over the whole stream (hindsight). realized: what that arm earned
 * on these images minus what the bandit earned; pseudo: the gap of the
 * per-context mean rewards of the best and the played arm (UCB1's bounds are
 * on this one; it never decreases). R holds 2 x n: realized, then pseudo. */
static double *regret_curve(const adaptive_run *a, long *arm_played)
{
    const size_t CA = (size_t)a->n_ctx * (size_t)a->A;
    double *sum = calloc(CA, sizeof(double));
    long *cnt = calloc((size_t)a->n_ctx, sizeof(long));
    int *best = calloc((size_t)a->n_ctx, sizeof(int));
    double *R = calloc(2 * (size_t)(a->n ? a->n : 1), sizeof(double));
    if (!sum || !cnt || !best || !R) {
        free(sum), free(cnt), free(best), free(R);
        return NULL;
    }
    for (long i = 0; i < a->n; i++) {
        cnt[a->ctx[i]]++;
        for (int q = 0; q < a->A; q++)
            sum[(size_t)a->ctx[i] * (size_t)a->A + (size_t)q] += a->arm_r[(size_t)i * (size_t)a->A + (size_t)q];
    }
    for (int c = 0; c < a->n_ctx; c++)
        for (int q = 1; q < a->A; q++)
            if (sum[(size_t)c * (size_t)a->A + (size_t)q] > sum[(size_t)c * (size_t)a->A + (size_t)best[c]])
                best[c] = q;
    double real = 0, pseudo = 0;
    for (long i = 0; i < a->n; i++) {
        const int c = a->ctx[i];
        real += a->arm_r[(size_t)i * (size_t)a->A + (size_t)best[c]] - a->got[i];
        pseudo += (sum[(size_t)c * (size_t)a->A + (size_t)best[c]] -
                   sum[(size_t)c * (size_t)a->A + (size_t)arm_played[i]]) / (double)cnt[c];
        R[i] = real, R[a->n + i] = pseudo;
    }
    free(sum), free(cnt), free(best);
    return R;
}

/* Least-squares slope of log R(t) on log t over t >= n / 100 where R > 0:
 * R ~ t^alpha, alpha < 1 is sublinear. */
static double fit_exponent(const double *R, long n, long *used)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    long k = 0;
    const long from = n / 100 > 10 ? n / 100 : 10;
    for (long i = from; i < n; i++)
        if (R[i] > 0) {
            const double x = log((double)(i + 1)), y = log(R[i]);
            sx += x, sy += y, sxx += x * x, sxy += x * y, k++;
        }
    *used = k;
    if (k < 2 || k * sxx - sx * sx <= 0)
        return NAN;
    return (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

void adaptive_report(const adaptive_run *a, double secs)
{
    const eval_opts *o = a->o;
    double *R = regret_curve(a, a->arm);
    long used = 0, used_real = 0;
    const double alpha = R ? fit_exponent(R + a->n, a->n, &used) : NAN;
    const double alpha_real = R ? fit_exponent(R, a->n, &used_real) : NAN;
    const double final_R = R && a->n ? R[2 * a->n - 1] : 0, final_real = R && a->n ? R[a->n - 1] : 0;
    if (o->json) {
        printf("{\"model\": ");
        cli_json_string(stdout, o->model);
        printf(", \"split\": \"%s\", \"distortion\": ", o->split);
        cli_json_string(stdout, o->dist_spec);
        printf(", \"adaptive\": true, \"images\": %ld, \"seed\": %llu, \"seconds\": %.3f, \"offload_cost\": %g, "
               "\"exploration\": %g, \"candidates\": [",
               a->n, (unsigned long long)o->seed, secs, o->offload_cost, o->exploration > 0 ? o->exploration : sqrt(2.0));
        for (int q = 0; q < a->A; q++)
            printf("%s%g", q ? ", " : "", o->cand[q]);
        printf("], \"p_offload\": %.6f, \"mean_reward\": %.6f, \"contexts\": [", a->n ? (double)a->offload / a->n : 0.0,
               a->n ? a->reward_sum / a->n : 0.0);
        for (int c = 0; c < a->n_ctx; c++) {
            printf("%s{\"context\": ", c ? ", " : "");
            if (eex_model_has_detector(a->m))
                cli_json_string(stdout, eex_model_detector_class(a->m, c));
            else
                printf("null");
            printf(", \"plays\": [");
            for (int q = 0; q < a->A; q++)
                printf("%s%ld", q ? ", " : "", eex_bandit_plays(a->b, c, q));
            printf("]}");
        }
        printf("], \"pseudo_regret\": %.6f, \"pseudo_regret_exponent\": %.4f, \"regret_fit_points\": %ld, "
               "\"realized_regret\": %.6f, \"realized_regret_exponent\": %.4f, \"regret_curve\": [",
               final_R, alpha, used, final_real, alpha_real);
        /* about 200 log-spaced points */
        long last = -1;
        int first = 1;
        for (int j = 0; R && j <= 200; j++) {
            const long t = (long)llround(pow((double)a->n, j / 200.0)) - 1;
            if (t <= last || t >= a->n)
                continue;
            printf("%s[%ld, %.6f, %.6f]", first ? "" : ", ", t + 1, R[a->n + t], R[t]);
            first = 0, last = t;
        }
        printf("]}\n");
    } else {
        printf("eex eval --adaptive: %s, %s split, %ld images, distortion %s (%.1f s); no labels read\n", o->model,
               o->split, a->n, o->dist_spec, secs);
        printf("UCB1 over p_tar in {");
        for (int q = 0; q < a->A; q++)
            printf("%s%g", q ? ", " : "", o->cand[q]);
        printf("}, offload cost %g, exploration %g; reward: 0 on the edge, max(0, C_final - C_exit%d) - cost offloaded\n",
               o->offload_cost, o->exploration > 0 ? o->exploration : sqrt(2.0), a->E);
        for (int c = 0; c < a->n_ctx; c++) {
            long tot = 0, most = 0;
            for (int q = 0; q < a->A; q++) {
                tot += eex_bandit_plays(a->b, c, q);
                if (eex_bandit_plays(a->b, c, q) > eex_bandit_plays(a->b, c, (int)most))
                    most = q;
            }
            printf("  context %-9s %6ld images, most played p_tar %g (%ld plays)\n",
                   eex_model_has_detector(a->m) ? eex_model_detector_class(a->m, c) : "-", tot, o->cand[most],
                   eex_bandit_plays(a->b, c, (int)most));
        }
        printf("P(offload) %.2f%%, mean reward %.4f\n", a->n ? 100.0 * (double)a->offload / a->n : 0.0,
               a->n ? a->reward_sum / a->n : 0.0);
        printf("regret vs the best fixed p_tar per context in hindsight (same reward), after %ld images:\n", a->n);
        printf("  pseudo-regret (mean-reward gaps) %.3f, fitted R(t) ~ t^%.3f;  realized %.3f, ~ t^%.3f\n", final_R,
               alpha, final_real, alpha_real);
    }
    free(R);
}

void adaptive_free(adaptive_run *a)
{
    if (!a)
        return;
    eex_bandit_free(a->b);
    free(a->ctx), free(a->arm), free(a->got), free(a->arm_r), free(a);
}
