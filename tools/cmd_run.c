/* eex run: one model on one input. An image on an early-exit model runs the
 * exit policy (detector, exits, local finish or stop at a cut); an image on a
 * plain model prints the top classes; .npy arrays in give .npy arrays out. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image.h"
#include "npy.h"
#include "offload_cli.h"
#include "run_ee.h"

static const char help[] =
    "usage: eex run MODEL.eex IMAGE [options]\n"
    "       eex run MODEL.eex --input [NAME=]IN.npy ... --output [NAME=]OUT.npy ... [options]\n"
    "\n"
    "With IMAGE (PNG, JPEG, BMP, GIF, ...): the image is converted to the model's\n"
    "channel count, resized (bilinear) to its input size, scaled to 0..1 and\n"
    "normalised with the mean/std stored in the model.\n"
    "  On an early-exit model: the distortion detector picks the expert set (unless\n"
    "  --expert names one), then exits run in order and the first whose calibrated\n"
    "  confidence is above the threshold answers; nothing past it is computed. When\n"
    "  none answers, the rest of the network runs here (or, with --cut, the edge stops\n"
    "  at that cut point and reports what it would send to the cloud).\n"
    "  On a plain model: the top classes with labels and probabilities.\n"
    "\n"
    "With --input: float32 arrays in NCHW order (as PyTorch and ONNX use), any batch;\n"
    "NAME= picks a graph input or output by name (default: the first). Every graph\n"
    "input must be given.\n"
    "\n"
    "options:\n"
    "  --threshold T      p_tar in [0,1]: exit when confidence > T (default: the\n"
    "                     model's ee.threshold, else 0.8)\n"
    "  --thresholds T1,..,TE[,TF]  one threshold per exit (the final takes TF, else\n"
    "                     TE); default: the model's ee.thresholds when it has them\n"
    "                     and --threshold is not given\n"
    "  --expert auto|NAME expert set (default auto when the model has a detector,\n"
    "                     else its first set)\n"
    "  --metric maxprob|entropy   confidence metric (default maxprob)\n"
    "  --cut N|NAME|auto  stop at cut point N (0-based) or named value when no exit\n"
    "                     answers before it (auto: with --cloud, see below)\n"
    "  --top K            classes to print for a plain model (default 5)\n"
    "  --threads N        worker threads (default 1)\n"
    "  --kernels ref|auto ref runs the scalar reference kernels (default auto)\n"
    "  --cloud HOST:PORT  offload to an `eex serve` running the same model file: when\n"
    "                     no edge exit answers, the cut tensor (at --cut, default\n"
    "                     the last cut point) goes to the cloud, which finishes the\n"
    "                     network; if the cloud is unreachable, too slow or answers\n"
    "                     an error, the most confident local exit answers, marked\n"
    "                     \"degraded\" with the reason\n"
    "  --wire f32|f16|i8|q4|auto  tensor encoding on the wire (default f32)\n"
    CLI_AUTO_HELP("                     ")
    "                     (--json: cloud.plan). One image: the choice is made before\n"
    "                     any reply, on 0 ms / 100 Mbit/s (`eex eval --cloud` learns\n"
    "                     the path over many)\n"
    "  --deadline-ms D    answer within D ms of the start (default 5000)\n"
    "  --key FILE         shared key of an `eex serve --key FILE`: every frame carries\n"
    "                     an HMAC-SHA256 tag (docs/protocol.md, Authentication)\n"
    "  --json             print the result as one JSON object\n";

enum { MAX_ARRAYS = 16 };

static int parse(int argc, char **argv, run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->top = 5;
    o->threshold = -1.0f;
    o->cut = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        int has_auto;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return -1;
        } else if (!strcmp(a, "--input") && has_val) {
            if (o->n_in == MAX_ARRAYS)
                return cli_usage("run", "at most %d --input arrays", MAX_ARRAYS);
            o->in[o->n_in++] = argv[++i];
        } else if (!strcmp(a, "--output") && has_val) {
            if (o->n_out == MAX_ARRAYS)
                return cli_usage("run", "at most %d --output arrays", MAX_ARRAYS);
            o->out[o->n_out++] = argv[++i];
        } else if (!strcmp(a, "--top") && has_val) {
            if ((o->top = cli_parse_int(argv[++i], 1, 1000000)) < 0)
                return cli_usage("run", "--top takes a positive integer, not '%s'", argv[i]);
        } else if (!strcmp(a, "--threads") && has_val) {
            if ((o->threads = cli_parse_int(argv[++i], 1, 256)) < 0)
                return cli_usage("run", "--threads takes an integer from 1 to 256, not '%s'", argv[i]);
        } else if (!strcmp(a, "--threshold") && has_val) {
            double t;
            if (cli_parse_float(argv[++i], 0.0, 1.0, &t))
                return cli_usage("run", "--threshold takes a number in [0, 1], not '%s'", argv[i]);
            o->threshold = (float)t;
        } else if (!strcmp(a, "--thresholds") && has_val) {
            const char *v = argv[++i];
            o->n_thresholds = 0;
            while (*v) {
                char *end;
                const float t = strtof(v, &end);
                if (end == v || !(t >= 0.0f && t <= 1.0f) || o->n_thresholds == EEX_MAX_EXITS + 1)
                    return cli_usage("run", "--thresholds takes one number in [0, 1] per exit, comma-separated, not '%s'",
                                     argv[i]);
                o->thresholds[o->n_thresholds++] = t;
                v = *end == ',' ? end + 1 : end;
                if (*end && *end != ',')
                    return cli_usage("run", "--thresholds takes one number in [0, 1] per exit, comma-separated, not '%s'",
                                     argv[i]);
            }
            if (!o->n_thresholds)
                return cli_usage("run", "--thresholds needs at least one value");
        } else if (!strcmp(a, "--expert") && has_val)
            o->expert = argv[++i];
        else if (!strcmp(a, "--metric") && has_val) {
            if (cli_parse_metric(argv[++i], &o->metric))
                return cli_usage("run", "--metric takes 'maxprob' or 'entropy', not '%s'", argv[i]);
        } else if (!strcmp(a, "--cut") && has_val) {
            o->cut = argv[++i];
            if (!strcmp(o->cut, "auto"))
                o->cut = NULL, o->autop.cut_auto = 1;
        } else if (!strcmp(a, "--cloud") && has_val)
            o->cloud = argv[++i];
        else if ((has_auto = cli_auto_arg("run", argc, argv, &i, &o->autop, &o->wire))) {
            if (has_auto < 0)
                return -has_auto;
        } else if (!strcmp(a, "--key") && has_val) {
            o->key = argv[++i];
        } else if (!strcmp(a, "--deadline-ms") && has_val) {
            if ((o->deadline_ms = cli_parse_int(argv[++i], 1, 100000000)) < 0)
                return cli_usage("run", "--deadline-ms takes a positive integer, not '%s'", argv[i]);
        }
        else if (!strcmp(a, "--kernels") && has_val) {
            if (cli_parse_kernels(argv[++i], &o->kernels))
                return cli_usage("run", "--kernels takes 'ref' or 'auto', not '%s'", argv[i]);
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
    if (!o->n_in != !o->n_out)
        return cli_usage("run", "--input and --output go together");
    if (!o->n_in && !o->image)
        return cli_usage("run", "give an IMAGE or --input IN.npy --output OUT.npy");
    if (o->n_in && o->image)
        return cli_usage("run", "give either an IMAGE or --input, not both");
    if (o->cloud && o->n_in)
        return cli_usage("run", "--cloud works on an IMAGE, not on --input arrays");
    if ((o->autop.cut_auto || o->autop.wire_auto) && !o->cloud)
        return cli_usage("run", "--cut auto and --wire auto need --cloud");
    return 0;
}

/* "NAME=FILE" -> name, file; "FILE" -> NULL, file */
static const char *split_named(const char *arg, char *name, size_t cap)
{
    const char *eq = strchr(arg, '=');
    if (!eq || (size_t)(eq - arg) >= cap) {
        name[0] = '\0';
        return arg;
    }
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    return eq + 1;
}

static int find_name(const eex_model *m, const char *name, int outputs)
{
    const int n = outputs ? eex_model_output_count(m) : eex_model_input_count(m);
    for (int i = 0; i < n; i++)
        if (!strcmp(outputs ? eex_model_output_name(m, i) : eex_model_input_name(m, i), name))
            return i;
    return -1;
}

static void list_names(const eex_model *m, int outputs, char *buf, size_t cap)
{
    buf[0] = '\0';
    const int n = outputs ? eex_model_output_count(m) : eex_model_input_count(m);
    for (int i = 0; i < n; i++) {
        const char *s = outputs ? eex_model_output_name(m, i) : eex_model_input_name(m, i);
        if (strlen(buf) + strlen(s) + 3 >= cap)
            break;
        strcat(buf, i ? ", " : "");
        strcat(buf, s);
    }
}

static int run_npy(const run_opts *o, eex_model *m, eex_session *s)
{
    char err[256], name[256], known[1024];
    eex_status st;
    int64_t batch = 1;
    for (int i = 0; i < o->n_in; i++) {
        const char *path = split_named(o->in[i], name, sizeof name);
        const int idx = name[0] ? find_name(m, name, 0) : 0;
        if (idx < 0) {
            list_names(m, 0, known, sizeof known);
            return cli_error("run", "the model has no input '%s' (it has: %s)", name, known);
        }
        npy_array in;
        if (npy_load(path, &in, err, sizeof err))
            return cli_error("run", "%s: %s", path, err);
        batch = in.rank ? in.shape[0] : 1;
        st = eex_session_set_input(s, idx, in.data, in.shape, in.rank);
        npy_free(&in);
        if (st)
            return cli_status("run", st);
    }
    if ((st = eex_session_run(s)))
        return cli_status("run", st);
    for (int i = 0; i < o->n_out; i++) {
        const char *path = split_named(o->out[i], name, sizeof name);
        const int idx = name[0] ? find_name(m, name, 1) : 0;
        if (idx < 0) {
            list_names(m, 1, known, sizeof known);
            return cli_error("run", "the model has no output '%s' (it has: %s)", name, known);
        }
        int64_t shape[EEX_MAX_RANK];
        int rank = eex_model_output_shape(m, idx, shape);
        size_t count = (size_t)batch;
        for (int d = 1; d < rank; d++)
            count *= (size_t)shape[d];
        float *out = malloc(count * sizeof(float));
        if (!out)
            return cli_error("run", "out of memory");
        if ((st = eex_session_output(s, idx, out, count, shape, &rank))) {
            free(out);
            return cli_status("run", st);
        }
        const int rc = npy_save(path, out, shape, rank, err, sizeof err);
        free(out);
        if (rc)
            return cli_error("run", "%s", err);
    }
    return CLI_OK;
}

/* Outputs that are not probabilities already go through a softmax. */
static eex_status to_probabilities(float *v, int n)
{
    double sum = 0.0;
    int is_prob = 1;
    for (int i = 0; i < n; i++) {
        if (!(v[i] >= 0.0f && v[i] <= 1.0f))
            is_prob = 0;
        sum += v[i];
    }
    if (is_prob && fabs(sum - 1.0) < 1e-3)
        return EEX_OK;
    return eex_softmax(v, n, 1.0f, v);
}

static int run_topk(const run_opts *o, eex_model *m, eex_session *s)
{
    int64_t od[EEX_MAX_RANK];
    const int orank = eex_model_output_shape(m, 0, od);
    int n = 1;
    for (int i = 1; i < orank; i++)
        n *= (int)od[i];
    eex_status st = eex_session_run(s);
    if (st)
        return cli_status("run", st);
    float *p = malloc((size_t)n * sizeof(float));
    int *idx = malloc((size_t)n * sizeof(int));
    if (!p || !idx || (st = eex_session_output(s, 0, p, (size_t)n, NULL, NULL))) {
        free(p);
        free(idx);
        return st ? cli_status("run", st) : cli_error("run", "out of memory");
    }
    if ((st = to_probabilities(p, n))) {
        free(p);
        free(idx);
        return cli_status("run", st);
    }
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
            char lb[256];  /* the file's text, made safe for a terminal */
            printf("  %2d. %-5d %8.4f  %s\n", i + 1, idx[i], p[idx[i]],
                   cli_printable(eex_model_label(m, idx[i]), lb, sizeof lb));
        }
    }
    free(p);
    free(idx);
    return CLI_OK;
}

static int run_image(const run_opts *o, eex_model *m, eex_session *s)
{
    int64_t d[EEX_MAX_RANK];
    const int image_input = 0;
    if (eex_model_input_shape(m, image_input, d) != 4)
        return cli_error("run", "model input is not an image ([N,C,H,W])");
    eex_image img;
    char err[256];
    /* early-exit models take the image as decoded (the detector wants its
     * colours); plain models get it in their channel count */
    const int channels = eex_model_exit_count(m) || eex_model_has_detector(m) ? 0 : (int)d[1];
    if (eex_image_load(o->image, channels, &img, err, sizeof err))
        return cli_error("run", "%s: %s", o->image, err);
    eex_status st = eex_session_set_image(s, img.px, img.h, img.w, img.c);
    eex_image_free(&img);
    if (st)
        return cli_status("run", st);
    if (eex_model_expert_count(m) > 0)
        return run_ee(o, m, s);
    return run_topk(o, m, s);
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
    rc = o.n_in ? run_npy(&o, m, s) : run_image(&o, m, s);
    eex_session_free(s);
    eex_model_close(m);
    return rc;
}
