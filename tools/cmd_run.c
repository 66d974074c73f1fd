/* eex run: one model on one input, either an image (top-5 classes) or a
 * float32 NCHW .npy array (the raw output written back as .npy). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image.h"
#include "npy.h"

static const char help[] =
    "usage: eex run MODEL.eex IMAGE [options]\n"
    "       eex run MODEL.eex --input IN.npy --output OUT.npy [options]\n"
    "\n"
    "With IMAGE (PNG, JPEG, BMP, GIF, ...): the image is converted to the model's\n"
    "channel count, resized (bilinear) to its input size, scaled to 0..1 and\n"
    "normalised with the mean/std stored in the model; the top classes are printed\n"
    "with their labels and probabilities (softmax of the output, unless the output\n"
    "already is a probability vector).\n"
    "\n"
    "With --input: IN.npy is a float32 array in NCHW order (as PyTorch and ONNX\n"
    "use), any batch; the model's first output is written to OUT.npy as float32.\n"
    "\n"
    "options:\n"
    "  --top K            classes to print for an image (default 5)\n"
    "  --threads N        worker threads (default 1)\n"
    "  --kernels ref|auto ref runs the scalar reference kernels (default auto)\n"
    "  --json             print the image result as one JSON object\n";

typedef struct run_opts {
    const char *model, *image, *in, *out;
    int top, json, threads;
    eex_kernels kernels;
} run_opts;

static int parse(int argc, char **argv, run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->top = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return -1;
        } else if (!strcmp(a, "--input") && has_val)
            o->in = argv[++i];
        else if (!strcmp(a, "--output") && has_val)
            o->out = argv[++i];
        else if (!strcmp(a, "--top") && has_val) {
            if ((o->top = cli_parse_int(argv[++i], 1, 1000000)) < 0)
                return cli_usage("run", "--top takes a positive integer, not '%s'", argv[i]);
        } else if (!strcmp(a, "--threads") && has_val) {
            if ((o->threads = cli_parse_int(argv[++i], 1, 256)) < 0)
                return cli_usage("run", "--threads takes an integer from 1 to 256, not '%s'", argv[i]);
        } else if (!strcmp(a, "--kernels") && has_val) {
            const char *k = argv[++i];
            if (!strcmp(k, "ref"))
                o->kernels = EEX_KERNELS_REF;
            else if (!strcmp(k, "auto"))
                o->kernels = EEX_KERNELS_AUTO;
            else
                return cli_usage("run", "--kernels takes 'ref' or 'auto', not '%s'", k);
        } else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (a[0] == '-' && a[1])
            return cli_usage("run", has_val ? "unknown option '%s'" : "option '%s' needs a value or is unknown", a);
        else if (!o->model)
            o->model = a;
        else if (!o->image)
            o->image = a;
        else
            return cli_usage("run", "unexpected argument '%s'", a);
    }
    if (!o->model)
        return cli_usage("run", "missing MODEL.eex");
    if (!!o->in != !!o->out)
        return cli_usage("run", "--input and --output go together");
    if (!o->in && !o->image)
        return cli_usage("run", "give an IMAGE or --input IN.npy --output OUT.npy");
    if (o->in && o->image)
        return cli_usage("run", "give either an IMAGE or --input, not both");
    return 0;
}

static int run_npy(const run_opts *o, eex_model *m, eex_session *s)
{
    npy_array in;
    char err[256];
    if (npy_load(o->in, &in, err, sizeof err))
        return cli_error("run", "%s: %s", o->in, err);
    eex_status st = eex_session_set_input(s, 0, in.data, in.shape, in.rank);
    npy_free(&in);
    if (st || (st = eex_session_run(s)))
        return cli_status("run", st);
    int64_t shape[EEX_MAX_RANK];
    int rank = eex_model_output_shape(m, 0, shape);
    size_t count = 1;
    shape[0] = in.shape[0];
    for (int d = 0; d < rank; d++)
        count *= (size_t)shape[d];
    float *out = malloc(count * sizeof(float));
    if (!out)
        return cli_error("run", "out of memory");
    if ((st = eex_session_output(s, 0, out, count, shape, &rank))) {
        free(out);
        return cli_status("run", st);
    }
    int rc = npy_save(o->out, out, shape, rank, err, sizeof err) ? cli_error("run", "%s", err) : CLI_OK;
    free(out);
    return rc;
}

static void to_probabilities(float *v, int n)
{
    double sum = 0.0;
    int is_prob = 1;
    for (int i = 0; i < n; i++) {
        if (!(v[i] >= 0.0f && v[i] <= 1.0f))
            is_prob = 0;
        sum += v[i];
    }
    if (is_prob && fabs(sum - 1.0) < 1e-3)
        return;
    float mx = v[0];
    for (int i = 1; i < n; i++)
        mx = v[i] > mx ? v[i] : mx;
    sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += (v[i] = expf(v[i] - mx));
    for (int i = 0; i < n; i++)
        v[i] = (float)(v[i] / sum);
}

static int run_image(const run_opts *o, eex_model *m, eex_session *s)
{
    int64_t d[EEX_MAX_RANK];
    if (eex_model_input_shape(m, 0, d) != 4)
        return cli_error("run", "model input is not an image ([N,C,H,W])");
    eex_image img;
    char err[256];
    if (eex_image_load(o->image, (int)d[1], &img, err, sizeof err))
        return cli_error("run", "%s: %s", o->image, err);
    float mean[3] = {0, 0, 0}, stdv[3] = {1, 1, 1};
    if (eex_model_mean(m, mean, 3) != 0 && eex_model_mean(m, mean, 3) != d[1])
        fprintf(stderr, "eex run: warning: model mean has %d values for %lld channels; using 0\n",
                eex_model_mean(m, mean, 3), (long long)d[1]), memset(mean, 0, sizeof mean);
    if (eex_model_std(m, stdv, 3) != 0 && eex_model_std(m, stdv, 3) != d[1])
        fprintf(stderr, "eex run: warning: model std has %d values for %lld channels; using 1\n",
                eex_model_std(m, stdv, 3), (long long)d[1]), stdv[0] = stdv[1] = stdv[2] = 1.0f;
    const size_t n_in = (size_t)(d[1] * d[2] * d[3]);
    float *x = malloc(n_in * sizeof(float));
    if (!x) {
        eex_image_free(&img);
        return cli_error("run", "out of memory");
    }
    eex_image_to_tensor(&img, (int)d[2], (int)d[3], mean, stdv, x);
    eex_image_free(&img);
    eex_status st = eex_session_set_input(s, 0, x, d, 4);
    free(x);
    if (st || (st = eex_session_run(s)))
        return cli_status("run", st);
    int64_t od[EEX_MAX_RANK];
    const int orank = eex_model_output_shape(m, 0, od);
    int n = 1;
    for (int i = 1; i < orank; i++)
        n *= (int)od[i];
    float *p = malloc((size_t)n * sizeof(float));
    int *idx = malloc((size_t)n * sizeof(int));
    if (!p || !idx || (st = eex_session_output(s, 0, p, (size_t)n, NULL, NULL))) {
        free(p);
        free(idx);
        return st ? cli_status("run", st) : cli_error("run", "out of memory");
    }
    to_probabilities(p, n);
    const int top = o->top < n ? o->top : n;
    for (int i = 0; i < n; i++)
        idx[i] = i;
    for (int i = 0; i < top; i++)  /* partial selection sort: top is small */
        for (int j = i + 1; j < n; j++)
            if (p[idx[j]] > p[idx[i]]) {
                int t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
            }
    if (o->json) {
        printf("{\"image\": ");
        cli_json_string(stdout, o->image);
        printf(", \"class\": %d, \"label\": ", idx[0]);
        cli_json_string(stdout, eex_model_label(m, idx[0]));
        printf(", \"confidence\": %.6f, \"top\": [", p[idx[0]]);
        for (int i = 0; i < top; i++) {
            printf("%s{\"class\": %d, \"label\": ", i ? ", " : "", idx[i]);
            cli_json_string(stdout, eex_model_label(m, idx[i]));
            printf(", \"probability\": %.6f}", p[idx[i]]);
        }
        printf("]}\n");
    } else {
        printf("%s\n", o->image);
        for (int i = 0; i < top; i++) {
            const char *label = eex_model_label(m, idx[i]);
            printf("  %2d. %-5d %8.4f  %s\n", i + 1, idx[i], p[idx[i]], label ? label : "");
        }
    }
    free(p);
    free(idx);
    return CLI_OK;
}

int cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    eex_model *m;
    eex_status st = eex_model_open(o.model, &m);
    if (st)
        return cli_status("run", st);
    eex_session *s;
    eex_session_opts so = {.kernels = o.kernels, .threads = o.threads};
    if ((st = eex_session_new(m, &so, &s))) {
        eex_model_close(m);
        return cli_status("run", st);
    }
    rc = o.in ? run_npy(&o, m, s) : run_image(&o, m, s);
    eex_session_free(s);
    eex_model_close(m);
    return rc;
}
