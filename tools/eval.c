#include "eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *dist_name(dist_kind d) { return d == DIST_BLUR ? "blur" : d == DIST_NOISE ? "noise" : "pristine"; }

/* What one image left behind: enough to decide any threshold afterwards. */
typedef struct image_rec {
    int label, expert, det_class;
    float conf[EEX_MAX_EXITS + 1];
    int pred[EEX_MAX_EXITS + 1];
} image_rec;

typedef struct thr_stats {
    long exit_count[EEX_MAX_EXITS];
    long offload, edge_correct, cloud_correct, final_correct;
} thr_stats;

/* The policy for one threshold on one recorded image: the exit taken
 * (0-based side exit, or E when offloaded) and the answer. */
static int decide(const image_rec *r, int E, float t, int *answer)
{
    for (int k = 0; k < E; k++)
        if (r->conf[k] > t) {
            *answer = r->pred[k];
            return k;
        }
    int best = E;
    if (!(r->conf[E] > t))
        for (int k = 0; k < E; k++)
            if (r->conf[k] > r->conf[best])
                best = k;
    *answer = r->pred[best];
    return E;
}

static int find_named(const eex_model *m, const char *name, int detector)
{
    const int n = detector ? eex_model_detector_class_count(m) : eex_model_expert_count(m);
    for (int i = 0; i < n; i++)
        if (!strcmp(detector ? eex_model_detector_class(m, i) : eex_model_expert_name(m, i), name))
            return i;
    return -1;
}

/* The fixed expert, or -1 for auto, or -2 for oracle. */
static int choose_expert(const eval_opts *o, const eex_model *m, int *expert)
{
    if (!strcmp(o->expert_mode, "auto")) {
        if (!eex_model_has_detector(m))
            return cli_error("eval", "--expert auto needs a distortion detector, and this model has none");
        *expert = -1;
        return CLI_OK;
    }
    if (!strcmp(o->expert_mode, "oracle")) {
        const int e = find_named(m, dist_name(o->dist), 0);
        if (e < 0 && o->dist != DIST_NONE)
            return cli_error("eval", "--expert oracle: the model has no expert set named '%s'", dist_name(o->dist));
        *expert = e < 0 ? 0 : e;
        return CLI_OK;
    }
    if (!strcmp(o->expert_mode, "pristine")) {
        const int e = find_named(m, "pristine", 0);
        *expert = e < 0 ? 0 : e;
        return CLI_OK;
    }
    eex_status st = eex_model_find_expert(m, o->expert_mode, expert);
    return st ? cli_status("eval", st) : CLI_OK;
}

static eex_status distort(const eval_opts *o, const uint8_t *src, uint8_t *dst, int h, int w, uint64_t index)
{
    switch (o->dist) {
    case DIST_BLUR: return eex_blur_u8(src, dst, h, w, 1, o->level);
    case DIST_NOISE: return eex_noise_u8(src, dst, h, w, 1, o->level, o->seed + index);
    default: memcpy(dst, src, (size_t)h * w); return EEX_OK;
    }
}

/* Runs one batch [first, first + n) and fills recs. */
static int run_batch(const eval_opts *o, const eex_model *m, eex_session *s, const idx_array *images,
                     const idx_array *labels, int first, int n, int fixed_expert, float *img_buf, float *det_buf,
                     uint8_t *px, float *conf, int *cls, float *dprobs, image_rec *recs)
{
    const int h = images->dims[1], w = images->dims[2];
    const int E = eex_model_exit_count(m), X = eex_model_expert_count(m);
    const int img_in = eex_model_image_input(m), det_in = eex_model_detector_input(m);
    int64_t ishape[EEX_MAX_RANK], dshape[EEX_MAX_RANK];
    eex_model_input_shape(m, img_in, ishape);
    const size_t img_size = (size_t)(ishape[1] * ishape[2] * ishape[3]);
    size_t det_size = 0;
    if (det_in >= 0) {
        eex_model_input_shape(m, det_in, dshape);
        det_size = (size_t)(dshape[1] * dshape[2] * dshape[3]);
    }
    eex_status st;
    for (int i = 0; i < n; i++) {
        const uint64_t idx = (uint64_t)first + (uint64_t)i;
        if ((st = distort(o, images->data + idx * (size_t)h * w, px, h, w, idx)) ||
            (st = eex_model_preprocess(m, px, h, w, 1, img_buf + i * img_size, det_in >= 0 ? det_buf + i * det_size : NULL)))
            return cli_status("eval", st);
    }
    ishape[0] = n;
    if ((st = eex_session_set_input(s, img_in, img_buf, ishape, 4)))
        return cli_status("eval", st);
    if (det_in >= 0) {
        dshape[0] = n;
        if ((st = eex_session_set_input(s, det_in, det_buf, dshape, 4)))
            return cli_status("eval", st);
    }
    if ((st = eex_session_run_all(s)))
        return cli_status("eval", st);
    const int D = eex_model_detector_class_count(m);
    if (D && (st = eex_session_detector_probs(s, dprobs, (size_t)n * D)))
        return cli_status("eval", st);
    for (int i = 0; i < n; i++) {
        image_rec *r = &recs[i];
        r->label = labels->data[first + i];
        r->det_class = -1;
        if (D) {
            int best = 0;
            for (int c = 1; c < D; c++)
                if (dprobs[i * D + c] > dprobs[i * D + best])
                    best = c;
            r->det_class = best;
        }
        r->expert = fixed_expert >= 0 ? fixed_expert : find_named(m, eex_model_detector_class(m, r->det_class), 0);
    }
    for (int e = 0; e < X; e++) {
        int used = 0;
        for (int i = 0; i < n; i++)
            used |= recs[i].expert == e;
        if (!used)
            continue;
        for (int k = 0; k <= E; k++) {
            if ((st = eex_session_exit_confidence(s, k + 1, e, o->metric, conf, cls, (size_t)n)))
                return cli_status("eval", st);
            for (int i = 0; i < n; i++)
                if (recs[i].expert == e) {
                    recs[i].conf[k] = conf[i];
                    recs[i].pred[k] = cls[i];
                }
        }
    }
    return CLI_OK;
}

static void write_log(FILE *f, const eex_model *m, const eval_opts *o, long index, const image_rec *r, int E)
{
    fprintf(f, "{\"index\": %ld, \"label\": %d, \"detector\": ", index, r->label);
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
    fputs("], \"exit\": {", f);
    for (int t = 0; t < o->n_thr; t++) {
        int ans;
        const int k = decide(r, E, o->thr[t], &ans);
        fprintf(f, "%s\"%g\": %d", t ? ", " : "", o->thr[t], k + 1);
    }
    fputs("}}\n", f);
}

static double frac(long a, long b) { return b ? (double)a / (double)b : 0.0; }

static void report(const eval_opts *o, const eex_model *m, long N, int E, const thr_stats *ts, const long *exit_correct,
                   const long conf_mat[EEX_MAX_CLASSES_DET][EEX_MAX_CLASSES_DET], int true_det, double secs)
{
    const int D = eex_model_detector_class_count(m);
    long det_right = 0, det_total = 0;
    if (true_det >= 0)
        for (int c = 0; c < D; c++) {
            det_total += conf_mat[true_det][c];
            det_right += c == true_det ? conf_mat[true_det][c] : 0;
        }
    if (o->json) {
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
        printf(", \"exit_accuracy\": [");
        for (int k = 0; k <= E; k++)
            printf("%s%.6f", k ? ", " : "", frac(exit_correct[k], N));
        printf("], \"results\": [");
        for (int t = 0; t < o->n_thr; t++) {
            const thr_stats *s = &ts[t];
            const long edge = N - s->offload;
            printf("%s{\"threshold\": %g, \"exit_share\": [", t ? ", " : "", o->thr[t]);
            for (int k = 0; k < E; k++)
                printf("%s%.6f", k ? ", " : "", frac(s->exit_count[k], N));
            printf("], \"p_offload\": %.6f, \"edge_accuracy\": %.6f, \"cloud_accuracy\": %.6f, "
                   "\"final_accuracy_offloaded\": %.6f, \"overall_accuracy\": %.6f}",
                   frac(s->offload, N), frac(s->edge_correct, edge), frac(s->cloud_correct, s->offload),
                   frac(s->final_correct, s->offload), frac(s->edge_correct + s->cloud_correct, N));
        }
        printf("]}\n");
        return;
    }
    printf("eex eval: %s, %s split, %ld images, distortion %s, expert %s, metric %s (%.1f s, %.0f images/s)\n", o->model,
           o->split, N, o->dist_spec, o->expert_mode, o->metric == EEX_METRIC_ENTROPY ? "entropy" : "maxprob", secs,
           secs > 0 ? (double)N / secs : 0.0);
    if (D && true_det >= 0) {
        printf("detector: %.2f%% say '%s' (", 100.0 * frac(det_right, det_total), eex_model_detector_class(m, true_det));
        for (int c = 0; c < D; c++)
            printf("%s%s %ld", c ? ", " : "", eex_model_detector_class(m, c), conf_mat[true_det][c]);
        printf(")\n");
    }
    printf("accuracy of each exit on all images:");
    for (int k = 0; k <= E; k++)
        printf("  %s%d %.2f%%", k < E ? "exit" : "final/exit", k + 1, 100.0 * frac(exit_correct[k], N));
    printf("\n\n threshold");
    for (int k = 0; k < E; k++)
        printf("   exit%d", k + 1);
    printf("  P(offload)  edge acc  cloud acc  overall\n");
    for (int t = 0; t < o->n_thr; t++) {
        const thr_stats *s = &ts[t];
        printf("  %8.3f", o->thr[t]);
        for (int k = 0; k < E; k++)
            printf("  %5.1f%%", 100.0 * frac(s->exit_count[k], N));
        printf("     %5.1f%%    %5.1f%%     %5.1f%%   %5.1f%%\n", 100.0 * frac(s->offload, N),
               100.0 * frac(s->edge_correct, N - s->offload), 100.0 * frac(s->cloud_correct, s->offload),
               100.0 * frac(s->edge_correct + s->cloud_correct, N));
    }
}

int eval_run(const eval_opts *o, const eex_model *m, const idx_array *images, const idx_array *labels)
{
    const int E = eex_model_exit_count(m), X = eex_model_expert_count(m), C = eex_model_class_count(m);
    if (X < 1)
        return cli_error("eval", "the model has no early-exit structure (no ee.* metadata)");
    int fixed_expert, rc;
    if ((rc = choose_expert(o, m, &fixed_expert)))
        return rc;
    const long N = o->limit && o->limit < images->dims[0] ? o->limit : images->dims[0];
    const int h = images->dims[1], w = images->dims[2];
    for (long i = 0; i < N; i++)
        if (labels->data[i] >= C)
            return cli_error("eval", "label %d of image %ld is not a class of the model (%d classes)", labels->data[i], i, C);
    const int B = o->batch;
    eex_session *s;
    eex_session_opts so = {.batch = B, .threads = o->threads};
    eex_status st = eex_session_new(m, &so, &s);
    if (st)
        return cli_status("eval", st);
    const int img_in = eex_model_image_input(m), det_in = eex_model_detector_input(m);
    int64_t d[EEX_MAX_RANK];
    eex_model_input_shape(m, img_in, d);
    const size_t img_size = (size_t)(d[1] * d[2] * d[3]);
    size_t det_size = 1;
    if (det_in >= 0) {
        eex_model_input_shape(m, det_in, d);
        det_size = (size_t)(d[1] * d[2] * d[3]);
    }
    float *img_buf = malloc(sizeof(float) * img_size * (size_t)B);
    float *det_buf = malloc(sizeof(float) * det_size * (size_t)B);
    uint8_t *px = malloc((size_t)h * w);
    float *conf = malloc(sizeof(float) * (size_t)B);
    int *cls = malloc(sizeof(int) * (size_t)B);
    float *dprobs = malloc(sizeof(float) * EEX_MAX_CLASSES_DET * (size_t)B);
    image_rec *recs = calloc((size_t)B, sizeof *recs);
    thr_stats *ts = calloc((size_t)o->n_thr, sizeof *ts);
    long exit_correct[EEX_MAX_EXITS + 1] = {0};
    long conf_mat[EEX_MAX_CLASSES_DET][EEX_MAX_CLASSES_DET] = {{0}};
    FILE *log = o->log ? fopen(o->log, "w") : NULL;
    rc = CLI_OK;
    if (!img_buf || !det_buf || !px || !conf || !cls || !dprobs || !recs || !ts)
        rc = cli_error("eval", "out of memory");
    else if (o->log && !log)
        rc = cli_error("eval", "cannot write '%s'", o->log);
    const int true_det = find_named(m, dist_name(o->dist), 1);
    const double t0 = now_s();
    double last_progress = t0;
    for (long first = 0; !rc && first < N; first += B) {
        const int n = (int)(N - first < B ? N - first : B);
        rc = run_batch(o, m, s, images, labels, (int)first, n, fixed_expert, img_buf, det_buf, px, conf, cls, dprobs, recs);
        for (int i = 0; !rc && i < n; i++) {
            const image_rec *r = &recs[i];
            for (int k = 0; k <= E; k++)
                exit_correct[k] += r->pred[k] == r->label;
            if (true_det >= 0 && r->det_class >= 0)
                conf_mat[true_det][r->det_class]++;
            for (int t = 0; t < o->n_thr; t++) {
                int ans;
                const int k = decide(r, E, o->thr[t], &ans);
                if (k < E) {
                    ts[t].exit_count[k]++;
                    ts[t].edge_correct += ans == r->label;
                } else {
                    ts[t].offload++;
                    ts[t].cloud_correct += ans == r->label;
                    ts[t].final_correct += r->pred[E] == r->label;
                }
            }
            if (log)
                write_log(log, m, o, first + i, r, E);
        }
        const double now = now_s();
        if (!o->quiet && now - last_progress > 2.0) {
            fprintf(stderr, "eex eval: %ld / %ld images (%.0f images/s)\n", first + n, N, (double)(first + n) / (now - t0));
            last_progress = now;
        }
    }
    const double secs = now_s() - t0;
    if (log && fclose(log) != 0 && !rc)
        rc = cli_error("eval", "error writing '%s'", o->log);
    if (!rc)
        report(o, m, N, E, ts, exit_correct, (const long(*)[EEX_MAX_CLASSES_DET])conf_mat, true_det, secs);
    free(img_buf), free(det_buf), free(px), free(conf), free(cls), free(dprobs), free(recs), free(ts);
    eex_session_free(s);
    (void)X;
    return rc;
}
