/* eex calibrate: temperature scaling per exit and per expert set (Guo et al.
 * 2017; per branch as in Pacheco et al., ICC 2021). Each expert set is fitted
 * on the split's images under its own distortion (pristine: none; blur and
 * noise: the paper's five levels in turn, image i at level i mod 5), by
 * minimising the NLL over T (convex in 1/T: bisection on the derivative).
 * ECE with 15 equal-width bins, before (T = 1), with the file's temperatures,
 * and after, on the fitting split and on --report-split. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "split.h"

#define ECE_BINS 15

static const char help[] =
    "usage: eex calibrate MODEL.eex --dataset DIR --split val --val-index FILE -o OUT.eex [options]\n"
    "\n"
    "Fits one softmax temperature per exit (and the final classifier) of every expert\n"
    "set by minimising the negative log-likelihood on the split, and writes a copy of\n"
    "the model with them (weights and graph byte for byte). Expert set 'pristine' (and\n"
    "any set not named blur or noise) is fitted on the images as they are; 'blur' on\n"
    "Gaussian blur and 'noise' on Gaussian noise at the paper's levels (blur sigma\n"
    "1..5, noise sigma 5..40; image i at level i mod 5; noise seed S + i).\n"
    "Reports per exit the temperature, NLL and expected calibration error (ECE, 15\n"
    "equal-width confidence bins) before (T = 1), with the file's temperatures, and\n"
    "after, on the split and on --report-split (held out from the fit).\n"
    "\n"
    "options:\n"
    "  --dataset DIR            IDX folder (required)\n"
    "  --split val|train|test   images to fit on (default val; val needs --val-index)\n"
    "  --val-index FILE         models/fmnist-val-index.txt: train/data.py's held-out 10%\n"
    "  -o OUT.eex               the calibrated copy (required)\n"
    "  --report-split test|train|none  where ECE is also measured (default test)\n"
    "  --diagram FILE.json      reliability diagram data (per bin: count, mean\n"
    "                           confidence, accuracy; before and after, per exit);\n"
    "                           bench/experiments/plot_reliability.py draws the PNG\n"
    "  --limit N                first N images of each split\n"
    "  --seed S                 noise seed (default 0)\n"
    "  --batch B, --threads N   (default 64, 1)\n"
    "  --json                   one JSON object on stdout\n";

typedef struct opts {
    const char *model, *dataset, *split, *val_index, *out, *report, *diagram;
    int limit, batch, threads, json;
    uint64_t seed;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->split = "val", o->report = "test", o->batch = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return -1;
        } else if (!strcmp(a, "--dataset") && has_val)
            o->dataset = argv[++i];
        else if (!strcmp(a, "--split") && has_val) {
            if (!(o->split = cli_parse_split("calibrate", argv[++i])))
                return CLI_USAGE;
        } else if (!strcmp(a, "--val-index") && has_val)
            o->val_index = argv[++i];
        else if (!strcmp(a, "-o") && has_val)
            o->out = argv[++i];
        else if (!strcmp(a, "--report-split") && has_val) {
            o->report = argv[++i];
            if (strcmp(o->report, "test") && strcmp(o->report, "train") && strcmp(o->report, "none"))
                return cli_usage("calibrate", "--report-split takes test, train or none, not '%s'", o->report);
        } else if (!strcmp(a, "--diagram") && has_val)
            o->diagram = argv[++i];
        else if (!strcmp(a, "--limit") && has_val) {
            if ((o->limit = cli_parse_int(argv[++i], 1, 100000000)) < 0)
                return cli_usage("calibrate", "--limit takes a positive integer, not '%s'", argv[i]);
        } else if (!strcmp(a, "--batch") && has_val) {
            if ((o->batch = cli_parse_int(argv[++i], 1, 4096)) < 0)
                return cli_usage("calibrate", "--batch takes an integer from 1 to 4096, not '%s'", argv[i]);
        } else if (!strcmp(a, "--threads") && has_val) {
            if ((o->threads = cli_parse_int(argv[++i], 1, 256)) < 0)
                return cli_usage("calibrate", "--threads takes an integer from 1 to 256, not '%s'", argv[i]);
        } else if (!strcmp(a, "--seed") && has_val) {
            if (cli_parse_u64(argv[++i], &o->seed))
                return cli_usage("calibrate", "--seed takes a non-negative integer, not '%s'", argv[i]);
        } else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (a[0] == '-' && a[1])
            return cli_usage("calibrate", has_val ? "unknown option '%s'" : "option '%s' needs a value or is unknown", a);
        else if (!o->model)
            o->model = a;
        else
            return cli_usage("calibrate", "unexpected argument '%s'", a);
    }
    if (!o->model)
        return cli_usage("calibrate", "missing MODEL.eex");
    if (!o->dataset)
        return cli_usage("calibrate", "missing --dataset DIR");
    if (!o->out)
        return cli_usage("calibrate", "missing -o OUT.eex");
    return 0;
}

/* Logits of every exit of one expert set over a split: z[(k * N + i) * C + c]. */
typedef struct split_logits {
    long n;
    float *z;
    uint8_t *y;
} split_logits;

static eex_status distort(const char *expert, const uint8_t *src, uint8_t *dst, int h, int w, long i, uint64_t seed)
{
    static const double blur[5] = {1, 2, 3, 4, 5}, noise[5] = {5, 10, 20, 30, 40};
    if (!strcmp(expert, "blur"))
        return eex_blur_u8(src, dst, h, w, 1, blur[i % 5]);
    if (!strcmp(expert, "noise"))
        return eex_noise_u8(src, dst, h, w, 1, noise[i % 5], seed + (uint64_t)i);
    memcpy(dst, src, (size_t)h * (size_t)w);
    return EEX_OK;
}

static int collect(const opts *o, const eex_model *m, eex_session *s, const idx_array *im, const idx_array *lb, int e,
                   split_logits *out)
{
    const int E = eex_model_exit_count(m), C = eex_model_class_count(m), B = o->batch;
    const long N = o->limit && o->limit < im->dims[0] ? o->limit : im->dims[0];
    const int h = im->dims[1], w = im->dims[2], ii = eex_model_image_input(m), di = eex_model_detector_input(m);
    int64_t is[EEX_MAX_RANK], ds[EEX_MAX_RANK] = {0};
    eex_model_input_shape(m, ii, is);
    const size_t isz = (size_t)(is[1] * is[2] * is[3]);
    size_t dsz = 1;
    if (di >= 0) {
        eex_model_input_shape(m, di, ds);
        dsz = (size_t)(ds[1] * ds[2] * ds[3]);
    }
    float *img = malloc(sizeof(float) * isz * (size_t)B), *det = malloc(sizeof(float) * dsz * (size_t)B);
    float *z = malloc(sizeof(float) * (size_t)C * (size_t)B);
    uint8_t *px = malloc((size_t)h * (size_t)w);
    out->n = N;
    out->z = malloc(sizeof(float) * (size_t)(E + 1) * (size_t)N * (size_t)C);
    out->y = malloc((size_t)N);
    if (!img || !det || !z || !px || !out->z || !out->y) {
        free(img), free(det), free(z), free(px);
        return cli_error("calibrate", "out of memory");
    }
    const char *name = eex_model_expert_name(m, e);
    eex_status st = EEX_OK;
    for (long first = 0; !st && first < N; first += B) {
        const int n = (int)(N - first < B ? N - first : B);
        for (int i = 0; !st && i < n; i++) {
            const long idx = first + i;
            st = distort(name, im->data + (size_t)idx * (size_t)h * (size_t)w, px, h, w, idx, o->seed);
            if (!st)
                st = eex_model_preprocess(m, px, h, w, 1, img + (size_t)i * isz, di >= 0 ? det + (size_t)i * dsz : NULL);
            out->y[idx] = lb->data[idx];
        }
        is[0] = ds[0] = n;
        if (!st)
            st = eex_session_set_input(s, ii, img, is, 4);
        if (!st && di >= 0)
            st = eex_session_set_input(s, di, det, ds, 4);
        if (!st)
            st = eex_session_run_all(s);
        for (int k = 0; !st && k <= E; k++) {
            st = eex_session_exit_logits(s, k + 1, e, z, (size_t)C * (size_t)B);
            for (int i = 0; !st && i < n; i++)
                memcpy(out->z + ((size_t)k * (size_t)N + (size_t)(first + i)) * (size_t)C, z + (size_t)i * (size_t)C,
                       sizeof(float) * (size_t)C);
        }
    }
    free(img), free(det), free(z), free(px);
    for (long i = 0; !st && i < N; i++)
        if (out->y[i] >= C)
            return cli_error("calibrate", "label %d of image %ld is not a class of the model", out->y[i], i);
    return st ? cli_status("calibrate", st) : 0;
}

/* NLL and its derivative in beta = 1/T, over N rows of C logits. */
static void nll(const float *z, const uint8_t *y, long N, int C, double beta, double *f, double *df)
{
    double sf = 0, sd = 0;
    for (long i = 0; i < N; i++) {
        const float *r = z + (size_t)i * (size_t)C;
        double mx = r[0];
        for (int c = 1; c < C; c++)
            mx = r[c] > mx ? r[c] : mx;
        double s = 0, ez = 0;
        for (int c = 0; c < C; c++) {
            const double e = exp(beta * (r[c] - mx));
            s += e, ez += e * r[c];
        }
        sf += log(s) + beta * mx - beta * r[y[i]];
        sd += ez / s - r[y[i]];
    }
    *f = sf / (double)N, *df = sd / (double)N;
}

static double fit_temperature(const float *z, const uint8_t *y, long N, int C)
{
    double lo = 1e-3, hi = 1e3, f, d;
    nll(z, y, N, C, hi, &f, &d);
    if (d < 0)
        return 1.0 / hi;  /* still falling at beta = 1000: (nearly) separable */
    for (int it = 0; it < 80; it++) {  /* the derivative rises with beta (convexity) */
        const double mid = sqrt(lo * hi);
        nll(z, y, N, C, mid, &f, &d);
        if (d > 0)
            hi = mid;
        else
            lo = mid;
    }
    return 1.0 / sqrt(lo * hi);
}

typedef struct calib {
    double ece, nll, bin_conf[ECE_BINS], bin_acc[ECE_BINS];
    long bin_n[ECE_BINS];
} calib;

static void measure(const float *z, const uint8_t *y, long N, int C, double T, calib *out)
{
    memset(out, 0, sizeof *out);
    double f, d;
    nll(z, y, N, C, 1.0 / T, &f, &d);
    out->nll = f;
    for (long i = 0; i < N; i++) {
        float conf;
        int cls;
        if (eex_confidence(z + (size_t)i * (size_t)C, C, (float)T, EEX_METRIC_MAXPROB, &conf, &cls))
            continue;
        int b = (int)(conf * ECE_BINS);
        b = b < 0 ? 0 : b >= ECE_BINS ? ECE_BINS - 1 : b;
        out->bin_n[b]++, out->bin_conf[b] += conf, out->bin_acc[b] += cls == y[i];
    }
    for (int b = 0; b < ECE_BINS; b++)
        if (out->bin_n[b]) {
            out->bin_conf[b] /= (double)out->bin_n[b], out->bin_acc[b] /= (double)out->bin_n[b];
            out->ece += (double)out->bin_n[b] / (double)N * fabs(out->bin_acc[b] - out->bin_conf[b]);
        }
}

enum { BEFORE, FILE_T, AFTER };

static void json_bins(FILE *f, const calib *c)
{
    fputs("[", f);
    for (int b = 0; b < ECE_BINS; b++)
        fprintf(f, "%s[%ld, %.6f, %.6f]", b ? ", " : "", c->bin_n[b], c->bin_conf[b], c->bin_acc[b]);
    fputs("]", f);
}

int cmd_calibrate(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    idx_array im, lb, rim = {0}, rlb = {0};
    if ((rc = split_load("calibrate", o.dataset, o.split, o.val_index, &im, &lb)))
        return rc;
    const int rep = strcmp(o.report, "none") != 0;
    if (rep && (rc = split_load("calibrate", o.dataset, o.report, NULL, &rim, &rlb))) {
        idx_free(&im), idx_free(&lb);
        return rc;
    }
    eex_model *m = NULL;
    eex_session *s = NULL;
    eex_status st = eex_model_open(o.model, &m);
    eex_session_opts so = {.batch = o.batch, .threads = o.threads};
    if (!st && !eex_model_expert_count(m))
        rc = cli_error("calibrate", "%s has no early-exit structure (no ee.* metadata)", o.model);
    else if (!st)
        st = eex_session_new(m, &so, &s);
    if (st)
        rc = cli_status("calibrate", st);
    const int E = m ? eex_model_exit_count(m) : 0, X = m ? eex_model_expert_count(m) : 0,
              C = m ? eex_model_class_count(m) : 0;
    float *temps = calloc((size_t)(E + 1) * (size_t)(X ? X : 1), sizeof(float));
    calib *cal = calloc((size_t)(E + 1) * (size_t)(X ? X : 1) * 6, sizeof *cal);  /* [k][e][split][before/file/after] */
    if (!rc && (!temps || !cal))
        rc = cli_error("calibrate", "out of memory");
    long n_fit = 0, n_rep = 0;
    for (int e = 0; !rc && e < X; e++) {
        split_logits fit = {0}, rl = {0};
        rc = collect(&o, m, s, &im, &lb, e, &fit);
        if (!rc && rep)
            rc = collect(&o, m, s, &rim, &rlb, e, &rl);
        n_fit = fit.n, n_rep = rl.n;
        for (int k = 0; !rc && k <= E; k++) {
            const float *zf = fit.z + (size_t)k * (size_t)fit.n * (size_t)C;
            const double T = fit_temperature(zf, fit.y, fit.n, C), Tfile = eex_model_temperature(m, k + 1, e);
            temps[k * X + e] = (float)T;
            const double Ts[3] = {1.0, Tfile, T};
            calib *c = cal + ((size_t)k * (size_t)X + (size_t)e) * 6;
            for (int q = 0; q < 3; q++) {
                measure(zf, fit.y, fit.n, C, Ts[q], &c[q]);
                if (rep)
                    measure(rl.z + (size_t)k * (size_t)rl.n * (size_t)C, rl.y, rl.n, C, Ts[q], &c[3 + q]);
            }
        }
        free(fit.z), free(fit.y), free(rl.z), free(rl.y);
    }
    if (!rc && (st = eex_model_save_calibrated(m, temps, NULL, 0, o.out)))
        rc = cli_status("calibrate", st);
    if (!rc && o.diagram) {
        FILE *f = fopen(o.diagram, "w");
        if (!f)
            rc = cli_error("calibrate", "cannot write '%s'", o.diagram);
        else {
            fprintf(f, "{\"model\": ");
            cli_json_string(f, o.model);
            fprintf(f, ", \"bins\": %d, \"split\": \"%s\", \"report_split\": \"%s\", \"exits\": [", ECE_BINS,
                    o.split, rep ? o.report : "none");
            for (int k = 0; k <= E; k++)
                for (int e = 0; e < X; e++) {
                    const calib *c = cal + ((size_t)k * (size_t)X + (size_t)e) * 6;
                    fprintf(f, "%s\n {\"exit\": %d, \"final\": %s, \"expert\": ", k || e ? "," : "", k + 1,
                            k == E ? "true" : "false");
                    cli_json_string(f, eex_model_expert_name(m, e));
                    fprintf(f, ", \"temperature\": %.6f", temps[k * X + e]);
                    const char *names[6] = {"fit_before", "fit_file", "fit_after", "report_before", "report_file",
                                            "report_after"};
                    for (int q = 0; q < (rep ? 6 : 3); q++) {
                        fprintf(f, ", \"%s\": ", names[q]);
                        json_bins(f, &c[q]);
                    }
                    fputs("}", f);
                }
            fputs("]}\n", f);
            if (fclose(f))
                rc = cli_error("calibrate", "error writing '%s'", o.diagram);
        }
    }
    if (!rc) {
        /* means over every exit (side exits and final) of every expert set */
        double mean[6] = {0};
        for (int i = 0; i < (E + 1) * X; i++)
            for (int q = 0; q < 6; q++)
                mean[q] += cal[(size_t)i * 6 + (size_t)q].ece / (double)((E + 1) * X);
        if (o.json) {
            printf("{\"model\": ");
            cli_json_string(stdout, o.model);
            printf(", \"out\": ");
            cli_json_string(stdout, o.out);
            printf(", \"split\": \"%s\", \"images\": %ld, \"report_split\": \"%s\", \"report_images\": %ld, \"bins\": %d, "
                   "\"exits\": [", o.split, n_fit, rep ? o.report : "none", n_rep, ECE_BINS);
            for (int k = 0; k <= E; k++)
                for (int e = 0; e < X; e++) {
                    const calib *c = cal + ((size_t)k * (size_t)X + (size_t)e) * 6;
                    printf("%s{\"exit\": %d, \"final\": %s, \"expert\": ", k || e ? ", " : "", k + 1,
                           k == E ? "true" : "false");
                    cli_json_string(stdout, eex_model_expert_name(m, e));
                    printf(", \"temperature\": %.6f, \"file_temperature\": %.6f, \"nll\": [%.6f, %.6f, %.6f], "
                           "\"ece\": [%.6f, %.6f, %.6f]",
                           temps[k * X + e], eex_model_temperature(m, k + 1, e), c[0].nll, c[1].nll, c[2].nll, c[0].ece,
                           c[1].ece, c[2].ece);
                    if (rep)
                        printf(", \"report_nll\": [%.6f, %.6f, %.6f], \"report_ece\": [%.6f, %.6f, %.6f]", c[3].nll,
                               c[4].nll, c[5].nll, c[3].ece, c[4].ece, c[5].ece);
                    printf("}");
                }
            printf("], \"mean_ece\": [%.6f, %.6f, %.6f]", mean[0], mean[1], mean[2]);
            if (rep)
                printf(", \"report_mean_ece\": [%.6f, %.6f, %.6f]", mean[3], mean[4], mean[5]);
            printf(", \"columns\": [\"T = 1\", \"file temperatures\", \"fitted\"]}\n");
        } else {
            printf("eex calibrate: %s, fitted on %s (%ld images per expert set), ECE with %d bins%s%s\n", o.model,
                   o.split, n_fit, ECE_BINS, rep ? "; held out: " : "", rep ? o.report : "");
            printf("  expert    exit    T fitted  (file)   NLL T=1 / file / fitted     ECE %s T=1 / file / fitted%s\n",
                   o.split, rep ? "      ECE held-out T=1 / file / fitted" : "");
            for (int e = 0; e < X; e++)
                for (int k = 0; k <= E; k++) {
                    const calib *c = cal + ((size_t)k * (size_t)X + (size_t)e) * 6;
                    char ex[16];
                    snprintf(ex, sizeof ex, k < E ? "%d" : "final", k + 1);
                    printf("  %-9s %-6s %8.4f  (%.4f)  %.4f / %.4f / %.4f     %.4f / %.4f / %.4f", eex_model_expert_name(m, e),
                           ex, temps[k * X + e], eex_model_temperature(m, k + 1, e), c[0].nll, c[1].nll, c[2].nll,
                           c[0].ece, c[1].ece, c[2].ece);
                    if (rep)
                        printf("      %.4f / %.4f / %.4f", c[3].ece, c[4].ece, c[5].ece);
                    printf("\n");
                }
            printf("  mean ECE over all exits: %s %.4f / %.4f / %.4f", o.split, mean[0], mean[1], mean[2]);
            if (rep)
                printf(";  %s %.4f / %.4f / %.4f", o.report, mean[3], mean[4], mean[5]);
            printf("\n  wrote %s\n", o.out);
        }
    }
    free(temps), free(cal);
    eex_session_free(s);
    eex_model_close(m);
    idx_free(&im), idx_free(&lb), idx_free(&rim), idx_free(&rlb);
    return rc;
}
