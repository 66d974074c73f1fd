/* eex eval: an early-exit model over a labelled IDX dataset, with a
 * distortion applied in C, for a list of thresholds in one pass. Every image
 * runs every exit of every expert once (batched); each threshold's policy is
 * then decided from the recorded confidences, so ten thresholds cost what one
 * does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "eval.h"
#include "idx.h"
#include "offload_cli.h"
#include "run_ee.h"

static const char help[] =
    "usage: eex eval MODEL.eex --dataset DIR [options]\n"
    "\n"
    "Evaluates an early-exit model on an IDX dataset (DIR/t10k-images-idx3-ubyte[.gz]\n"
    "and labels for --split test; train-* for --split train). Each image is distorted\n"
    "in C (seed S + image index, docs/distortions.md), classified by every exit, and\n"
    "each threshold's policy is decided from the same pass: an image exits at the first\n"
    "exit whose calibrated confidence is > T; otherwise it is offloaded and the final\n"
    "classifier answers (or, when it is not above T either, the most confident\n"
    "classifier: the paper's rule).\n"
    "\n"
    "options:\n"
    "  --dataset DIR            folder with the IDX files (required)\n"
    "  --split test|train       (default test)\n"
    "  --distortion none|blur:S|noise:S   (default none)\n"
    "  --expert pristine|auto|oracle|NAME expert set: a fixed one, the detector's\n"
    "                           choice, or the one matching the applied distortion\n"
    "                           (default pristine, i.e. the model's first set)\n"
    "  --threshold T[,T,...]    p_tar values (default 0.7,0.75,0.8,0.85,0.9)\n"
    "  --metric maxprob|entropy (default maxprob)\n"
    "  --limit N                first N images only\n"
    "  --seed S                 distortion seed (default 0)\n"
    "  --batch B                images per run (default 64)\n"
    "  --threads N              worker threads (default 1)\n"
    "  --json                   one JSON object on stdout instead of tables\n"
    "  --log FILE.jsonl         one line per image: index, label, detector class,\n"
    "                           expert, every exit's confidence and prediction, the\n"
    "                           exit taken at each threshold\n"
    "  --quiet                  no progress lines on stderr\n"
    "\n"
    "offloading through a cloud (`eex serve` on the same model file):\n"
    "  --cloud HOST:PORT        every image that no edge exit answers at the highest\n"
    "                           threshold runs the real edge path (batch 1: detector,\n"
    "                           exits, stages to the cut) and its cut tensor goes to the\n"
    "                           cloud, whose classifiers then decide every threshold;\n"
    "                           adds end-to-end latency (median, p95), bytes per\n"
    "                           offload and degraded answers to the report\n"
    "  --cut N|NAME             cut point (default the last: the edge hosts every exit\n"
    "                           it can)\n"
    "  --wire f32|f16|i8|q4     tensor encoding (default f32)\n"
    "  --deadline-ms D          per image (default 5000); past it the edge answers\n"
    "                           with its most confident exit, marked degraded\n"
    "  --key FILE               shared key of an `eex serve --key FILE` (HMAC-SHA256\n"
    "                           tags on every frame; docs/protocol.md)\n";

static int parse_distortion(const char *s, eval_opts *o)
{
    if (!strcmp(s, "none")) {
        o->dist = DIST_NONE;
        return 0;
    }
    char *end;
    if (!strncmp(s, "blur:", 5)) {
        o->dist = DIST_BLUR;
        o->level = strtod(s + 5, &end);
        return *end || !(o->level > 0 && o->level <= 100) ? -1 : 0;
    }
    if (!strncmp(s, "noise:", 6)) {
        o->dist = DIST_NOISE;
        o->level = strtod(s + 6, &end);
        return *end || !(o->level >= 0 && o->level <= 1000) ? -1 : 0;
    }
    return -1;
}

static int parse_thresholds(const char *s, eval_opts *o)
{
    o->n_thr = 0;
    if (!*s)
        return -1;  /* "" is no threshold, not 0 */
    while (*s) {
        char *end;
        const double t = strtod(s, &end);
        if (end == s || !(t >= 0 && t <= 1) || o->n_thr == EVAL_MAX_THRESHOLDS)
            return -1;
        o->thr[o->n_thr++] = (float)t;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return o->n_thr ? 0 : -1;
}

static int parse(int argc, char **argv, eval_opts *o)
{
    memset(o, 0, sizeof *o);
    o->split = "test";
    o->expert_mode = "pristine";
    o->batch = 64;
    parse_thresholds("0.7,0.75,0.8,0.85,0.9", o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return -1;
        } else if (!strcmp(a, "--dataset") && has_val)
            o->dataset = argv[++i];
        else if (!strcmp(a, "--split") && has_val) {
            o->split = argv[++i];
            if (strcmp(o->split, "test") && strcmp(o->split, "train"))
                return cli_usage("eval", "--split takes 'test' or 'train', not '%s'", o->split);
        } else if (!strcmp(a, "--distortion") && has_val) {
            if (parse_distortion(argv[++i], o))
                return cli_usage("eval", "--distortion takes none, blur:SIGMA or noise:SIGMA, not '%s'", argv[i]);
            o->dist_spec = argv[i];
        } else if (!strcmp(a, "--expert") && has_val)
            o->expert_mode = argv[++i];
        else if (!strcmp(a, "--threshold") && has_val) {
            if (parse_thresholds(argv[++i], o))
                return cli_usage("eval", "--threshold takes up to %d comma-separated numbers in [0, 1], not '%s'",
                                 EVAL_MAX_THRESHOLDS, argv[i]);
        } else if (!strcmp(a, "--metric") && has_val) {
            if (cli_parse_metric(argv[++i], &o->metric))
                return cli_usage("eval", "--metric takes 'maxprob' or 'entropy', not '%s'", argv[i]);
        } else if (!strcmp(a, "--limit") && has_val) {
            if ((o->limit = cli_parse_int(argv[++i], 1, 100000000)) < 0)
                return cli_usage("eval", "--limit takes a positive integer, not '%s'", argv[i]);
        } else if (!strcmp(a, "--seed") && has_val) {
            if (cli_parse_u64(argv[++i], &o->seed))
                return cli_usage("eval", "--seed takes a non-negative integer, not '%s'", argv[i]);
        } else if (!strcmp(a, "--batch") && has_val) {
            if ((o->batch = cli_parse_int(argv[++i], 1, 4096)) < 0)
                return cli_usage("eval", "--batch takes an integer from 1 to 4096, not '%s'", argv[i]);
        } else if (!strcmp(a, "--threads") && has_val) {
            if ((o->threads = cli_parse_int(argv[++i], 1, 256)) < 0)
                return cli_usage("eval", "--threads takes an integer from 1 to 256, not '%s'", argv[i]);
        } else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--quiet"))
            o->quiet = 1;
        else if (!strcmp(a, "--log") && has_val)
            o->log = argv[++i];
        else if (!strcmp(a, "--cloud") && has_val)
            o->cloud = argv[++i];
        else if (!strcmp(a, "--cut") && has_val)
            o->cut = argv[++i];
        else if (!strcmp(a, "--wire") && has_val) {
            if (cli_parse_wire(argv[++i], &o->wire))
                return cli_usage("eval", "--wire takes f32, f16, i8 or q4, not '%s'", argv[i]);
        } else if (!strcmp(a, "--key") && has_val) {
            o->key = argv[++i];
        } else if (!strcmp(a, "--deadline-ms") && has_val) {
            if ((o->deadline_ms = cli_parse_int(argv[++i], 1, 100000000)) < 0)
                return cli_usage("eval", "--deadline-ms takes a positive integer, not '%s'", argv[i]);
        }
        else if (a[0] == '-' && a[1])
            return cli_usage("eval", has_val ? "unknown option '%s'" : "option '%s' needs a value or is unknown", a);
        else if (!o->model)
            o->model = a;
        else
            return cli_usage("eval", "unexpected argument '%s'", a);
    }
    if (!o->model)
        return cli_usage("eval", "missing MODEL.eex");
    if (!o->dataset)
        return cli_usage("eval", "missing --dataset DIR");
    if (!o->dist_spec)
        o->dist_spec = "none";
    if ((o->cut || o->wire || o->deadline_ms || o->key) && !o->cloud)
        return cli_usage("eval", "--cut, --wire, --deadline-ms and --key go with --cloud HOST:PORT");
    if (!o->wire)
        o->wire = EEX_WIRE_F32;
    return 0;
}

/* DIR/<split>-images-idx3-ubyte, with or without .gz */
static int load_idx(const char *dir, const char *split, const char *kind, idx_array *a, char *err, size_t errlen)
{
    char path[4096];
    const char *stem = !strcmp(split, "test") ? "t10k" : "train";
    const char *suffix = !strcmp(kind, "images") ? "idx3-ubyte" : "idx1-ubyte";
    snprintf(path, sizeof path, "%s/%s-%s-%s", dir, stem, kind, suffix);
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    else
        snprintf(path, sizeof path, "%s/%s-%s-%s.gz", dir, stem, kind, suffix);
    if (idx_load(path, a, err, errlen))
        return cli_error("eval", "%s: %s", path, err);
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    eval_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    char err[1024];
    idx_array images, labels;
    if (load_idx(o.dataset, o.split, "images", &images, err, sizeof err))
        return CLI_FAIL;
    if (load_idx(o.dataset, o.split, "labels", &labels, err, sizeof err)) {
        idx_free(&images);
        return CLI_FAIL;
    }
    if (images.ndim != 3 || labels.ndim != 1 || labels.dims[0] != images.dims[0]) {
        idx_free(&images), idx_free(&labels);
        return cli_error("eval", "dataset: expected N images of HxW and N labels");
    }
    eex_model *m;
    eex_status st = eex_model_open(o.model, &m);
    if (st) {
        idx_free(&images), idx_free(&labels);
        return cli_status("eval", st);
    }
    rc = eval_run(&o, m, &images, &labels);
    eex_model_close(m);
    idx_free(&images);
    idx_free(&labels);
    return rc;
}
