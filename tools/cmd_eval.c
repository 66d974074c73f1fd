/* eex eval: an early-exit model over a labelled IDX dataset, with a
 * distortion applied in C, for a list of thresholds in one pass. Every image
 * runs every exit of every expert once (batched); each threshold's policy is
 * then decided from the recorded confidences, so ten thresholds cost what one
 * does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "cli.h"
#include "eval.h"
#include "idx.h"
#include "offload_cli.h"
#include "run_ee.h"
#include "split.h"

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
    "  --split test|train|val   (default test); val: the training images listed in\n"
    "  --val-index FILE         (one 0-based index per line; models/fmnist-val-index.txt\n"
    "                           is train/data.py's held-out 10%)\n"
    "  --distortion none|blur:S|noise:S|mix:B,N   (default none); mix: each image\n"
    "                           clean, blur:B or noise:N, chosen by a hash of the seed\n"
    "                           and the image index (a seeded mixed stream)\n"
    "  --expert pristine|auto|oracle|NAME expert set: a fixed one, the detector's\n"
    "                           choice, or the one matching the applied distortion\n"
    "                           (default pristine, i.e. the model's first set)\n"
    "  --threshold T[,T,...]    p_tar values (default 0.7,0.75,0.8,0.85,0.9)\n"
    "  --thresholds T1,..,TE[,TF] one setting with a threshold per exit (exit k\n"
    "                           answers when its confidence > Tk; the final takes TF,\n"
    "                           else TE); repeat for more settings; with --threshold,\n"
    "                           both lists are evaluated in the same pass\n"
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
    "  --outage-window W        with --outage-target A: edge-inference outage\n"
    "  --outage-target A        probability per threshold, the share of consecutive\n"
    "                           windows of W images (a shorter tail dropped) whose\n"
    "                           edge-answered images have accuracy < A (windows with\n"
    "                           no edge answer are not counted; docs/thresholds.md)\n"
    "\n"
    "adaptive p_tar (AdaEE-like; docs/thresholds.md); reads no labels:\n"
    "  --adaptive               a UCB1 bandit per detector class picks p_tar for each\n"
    "                           image in order; reward 0 when an edge exit answers,\n"
    "                           max(0, C_final - C_last_exit) - cost when offloaded;\n"
    "                           reports plays, P(offload), and the cumulative regret\n"
    "                           against the best fixed candidate per context in\n"
    "                           hindsight with its fitted exponent (R ~ t^a). --log\n"
    "                           writes each image's arm, threshold, exit and reward\n"
    "  --candidates T,...       p_tar values (default 0.5,0.6,0.7,0.8,0.85,0.9,0.95,0.99)\n"
    "  --offload-cost O         in confidence units (default 0.1)\n"
    "  --exploration C          UCB's mean + C sqrt(ln n / n_arm) (default sqrt 2)\n"
    "\n"
    "offloading through a cloud (`eex serve` on the same model file):\n"
    "  --cloud HOST:PORT        every image that no edge exit answers at the highest\n"
    "                           threshold runs the real edge path (batch 1: detector,\n"
    "                           exits, stages to the cut) and its cut tensor goes to the\n"
    "                           cloud, whose classifiers then decide every threshold;\n"
    "                           adds end-to-end latency (median, p95), bytes per\n"
    "                           offload and degraded answers to the report\n"
    "  --cut N|NAME|auto        cut point (default the last: the edge hosts every exit\n"
    "                           it can)\n"
    "  --wire f32|f16|i8|q4|auto  tensor encoding (default f32)\n"
    CLI_AUTO_HELP("                           ")
    "                           (--log: \"plan\" per offloaded image; --json: \"plan\",\n"
    "                           the final estimate and the number of changes, and\n"
    "                           \"plan_final\", the last choice and its costs).\n"
    "                           With --cut auto each image's cut decides which exits\n"
    "                           are on the edge for it\n"
    "  --deadline-ms D          per image (default 5000); past it the edge answers\n"
    "                           with its most confident exit, marked degraded. Given,\n"
    "                           it also reports the missed-deadline probability: the\n"
    "                           share of images offloaded at a threshold whose measured\n"
    "                           end-to-end latency exceeds D or that degraded\n"
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
    if (!strncmp(s, "mix:", 4)) {
        o->dist = DIST_MIX;
        o->mix_blur = strtod(s + 4, &end);
        if (*end != ',' || !(o->mix_blur > 0 && o->mix_blur <= 100))
            return -1;
        o->mix_noise = strtod(end + 1, &end);
        return *end || !(o->mix_noise >= 0 && o->mix_noise <= 1000) ? -1 : 0;
    }
    if (!strncmp(s, "noise:", 6)) {
        o->dist = DIST_NOISE;
        o->level = strtod(s + 6, &end);
        return *end || !(o->level >= 0 && o->level <= 1000) ? -1 : 0;
    }
    return -1;
}

/* --thresholds t1,t2,...: one more setting with a threshold per exit. */
static int parse_vector(const char *s, eval_opts *o)
{
    if (o->n_thr == EVAL_MAX_THRESHOLDS)
        return -1;
    float *v = o->thv[o->n_thr];
    int n = 0;
    while (*s) {
        char *end;
        const double t = strtod(s, &end);
        if (end == s || !(t >= 0 && t <= 1) || n == EEX_MAX_EXITS + 1)
            return -1;
        v[n++] = (float)t;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    if (!n)
        return -1;
    o->thr[o->n_thr] = v[n - 1];
    o->thr_n[o->n_thr++] = n;
    return 0;
}

static int parse_thresholds(const char *s, eval_opts *o)
{
    if (!*s)
        return -1;  /* "" is no threshold, not 0 */
    while (*s) {
        char *end;
        const double t = strtod(s, &end);
        if (end == s || !(t >= 0 && t <= 1) || o->n_thr == EVAL_MAX_THRESHOLDS)
            return -1;
        o->thr_n[o->n_thr] = 0;
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
    int thr_given = 0, outage_target = 0;
    o->offload_cost = 0.1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        int has_auto;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return -1;
        } else if (!strcmp(a, "--dataset") && has_val)
            o->dataset = argv[++i];
        else if (!strcmp(a, "--split") && has_val) {
            if (!(o->split = cli_parse_split("eval", argv[++i])))
                return CLI_USAGE;
        } else if (!strcmp(a, "--val-index") && has_val) {
            o->val_index = argv[++i];
        } else if (!strcmp(a, "--distortion") && has_val) {
            if (parse_distortion(argv[++i], o))
                return cli_usage("eval", "--distortion takes none, blur:SIGMA, noise:SIGMA or mix:BLUR,NOISE, not '%s'",
                                 argv[i]);
            o->dist_spec = argv[i];
        } else if (!strcmp(a, "--expert") && has_val)
            o->expert_mode = argv[++i];
        else if (!strcmp(a, "--threshold") && has_val) {
            thr_given = 1;
            if (parse_thresholds(argv[++i], o))
                return cli_usage("eval", "--threshold takes up to %d comma-separated numbers in [0, 1], not '%s'",
                                 EVAL_MAX_THRESHOLDS, argv[i]);
        } else if (!strcmp(a, "--thresholds") && has_val) {
            thr_given = 1;
            if (parse_vector(argv[++i], o))
                return cli_usage("eval", "--thresholds takes one number in [0, 1] per exit, comma-separated (up to %d "
                                 "settings in all), not '%s'", EVAL_MAX_THRESHOLDS, argv[i]);
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
        else if (!strcmp(a, "--cut") && has_val) {
            o->cut = argv[++i];
            if (!strcmp(o->cut, "auto"))
                o->autop.cut_auto = 1;
        } else if ((has_auto = cli_auto_arg("eval", argc, argv, &i, &o->autop, &o->wire))) {
            if (has_auto < 0)
                return -has_auto;
        } else if (!strcmp(a, "--key") && has_val) {
            o->key = argv[++i];
        } else if (!strcmp(a, "--deadline-ms") && has_val) {
            if ((o->deadline_ms = cli_parse_int(argv[++i], 1, 100000000)) < 0)
                return cli_usage("eval", "--deadline-ms takes a positive integer, not '%s'", argv[i]);
            o->miss_deadline = 1;
        } else if (!strcmp(a, "--outage-window") && has_val) {
            if ((o->outage_window = cli_parse_int(argv[++i], 1, 100000000)) < 0)
                return cli_usage("eval", "--outage-window takes a positive integer, not '%s'", argv[i]);
        } else if (!strcmp(a, "--outage-target") && has_val) {
            if (cli_parse_float(argv[++i], 0.0, 1.0, &o->outage_target))
                return cli_usage("eval", "--outage-target takes an accuracy in [0, 1], not '%s'", argv[i]);
            outage_target = 1;
        } else if (!strcmp(a, "--adaptive"))
            o->adaptive = 1;
        else if (!strcmp(a, "--candidates") && has_val) {
            eval_opts tmp;
            memset(&tmp, 0, sizeof tmp);
            if (parse_thresholds(argv[++i], &tmp) || tmp.n_thr > EEX_ADAPTIVE_MAX_ARMS)
                return cli_usage("eval", "--candidates takes up to %d comma-separated numbers in [0, 1], not '%s'",
                                 EEX_ADAPTIVE_MAX_ARMS, argv[i]);
            memcpy(o->cand, tmp.thr, sizeof(float) * (size_t)tmp.n_thr);
            o->n_cand = tmp.n_thr;
        } else if (!strcmp(a, "--offload-cost") && has_val) {
            if (cli_parse_float(argv[++i], 0.0, 1.0, &o->offload_cost))
                return cli_usage("eval", "--offload-cost takes a number in [0, 1], not '%s'", argv[i]);
        } else if (!strcmp(a, "--exploration") && has_val) {
            if (cli_parse_float(argv[++i], 0.0, 100.0, &o->exploration) || !(o->exploration > 0))
                return cli_usage("eval", "--exploration takes a number in (0, 100], not '%s'", argv[i]);
        }
        else if (a[0] == '-' && a[1])
            return cli_usage("eval", has_val ? "unknown option '%s'" : "option '%s' needs a value or is unknown", a);
        else if (!o->model)
            o->model = a;
        else
            return cli_usage("eval", "unexpected argument '%s'", a);
    }
    if (!thr_given)
        parse_thresholds("0.7,0.75,0.8,0.85,0.9", o);
    if (!o->model)
        return cli_usage("eval", "missing MODEL.eex");
    if (!o->dataset)
        return cli_usage("eval", "missing --dataset DIR");
    if (!o->dist_spec)
        o->dist_spec = "none";
    if ((o->cut || o->wire || o->autop.wire_auto || o->deadline_ms || o->key) && !o->cloud)
        return cli_usage("eval", "--cut, --wire, --deadline-ms and --key go with --cloud HOST:PORT");
    if (!!o->outage_window != outage_target)
        return cli_usage("eval", "--outage-window W and --outage-target A go together");
    if (o->adaptive && (o->cloud || o->outage_window))
        return cli_usage("eval", "--adaptive decides without labels: not with --cloud or the outage flags");
    if (!o->adaptive && o->n_cand)
        return cli_usage("eval", "--candidates goes with --adaptive");
    if (o->adaptive && !o->n_cand) {
        static const float def[] = {0.5f, 0.6f, 0.7f, 0.8f, 0.85f, 0.9f, 0.95f, 0.99f};
        memcpy(o->cand, def, sizeof def);
        o->n_cand = (int)(sizeof def / sizeof *def);
    }
    if (!o->wire)
        o->wire = EEX_WIRE_F32;
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    eval_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    idx_array images, labels = {0};
    /* the adaptive policy learns without labels: the labels file is never opened */
    if ((rc = split_load("eval", o.dataset, o.split, o.val_index, &images, o.adaptive ? NULL : &labels)))
        return rc;
    eex_model *m;
    eex_status st = eex_model_open(o.model, &m);
    if (st) {
        idx_free(&images), idx_free(&labels);
        return cli_status("eval", st);
    }
    rc = eval_run(&o, m, &images, o.adaptive ? NULL : &labels);
    eex_model_close(m);
    idx_free(&images);
    idx_free(&labels);
    return rc;
}
