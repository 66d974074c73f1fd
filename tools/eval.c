/* eex eval: records every image (confidences and predictions of every exit,
 * the detector, the real offload path with --cloud) and decides each
 * threshold setting from the records; eval_report.c writes what it found. */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "eval_adaptive.h"
#include "eval_rec.h"
#include "metrics.h"
#include "offload_cli.h"
#include "run_ee.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *dist_name(dist_kind d) { return d == DIST_BLUR ? "blur" : d == DIST_NOISE ? "noise" : "pristine"; }

int eval_mix_kind(uint64_t seed, uint64_t index)
{
    uint64_t st = seed * 0x9E3779B97F4A7C15ull ^ (index + 0x5EEDull);
    return (int)(eex_splitmix64(&st) % 3u);
}

/* The policy for one threshold on one recorded image, by the exit rule every
 * path uses (eex_exit_choose over the E side exits and the final classifier):
 * the exit taken (0-based side exit, or E when offloaded) and the answer. */
int eval_decide(const image_rec *r, int E, const float *t, int *answer)
{
    int passed;
    const int k = eex_exit_choose(r->conf, t, E + 1, &passed);
    *answer = r->pred[k];
    return passed && k < E ? k : E;
}

/* The same with --cloud: exits before the cut decide on the edge; an
 * offloaded image is decided by the cloud's classifiers and the edge's exits
 * (the local full run's rule), or, degraded, by the most confident edge exit.
 * *where: 0 edge, 1 cloud, 2 degraded. */
int eval_decide_cloud(const image_rec *r, int E, int ce, const float *t, int *answer, int *where)
{
    int passed;
    int k = ce > 0 ? eex_exit_choose(r->conf, t, ce, &passed) : 0;
    if (ce > 0 && passed) {
        *answer = r->pred[k];
        *where = 0;
        return k;
    }
    *where = r->degraded ? 2 : 1;
    if (!(r->degraded && ce > 0))
        k = eex_exit_choose(r->conf, t, E + 1, NULL);
    *answer = r->pred[k];
    return k;
}

/* Characters of Python's repr() of a double: the shortest digits that read
 * back, in fixed notation for decimal exponents -4..15, else d.ddde-XX. */
static size_t py_repr_len(double v)
{
    char buf[40];
    int digits = 17;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v) {
            digits = p;
            break;
        }
    }
    snprintf(buf, sizeof buf, "%.*e", digits - 1, v);
    const char *e = strchr(buf, 'e');
    const int x = e ? atoi(e + 1) : 0;
    size_t n = v < 0 || (v == 0 && signbit(v)) ? 1 : 0;
    if (v == 0)
        return n + 3;  /* 0.0 */
    if (x >= -4 && x < 16)
        n += x >= 0 ? (size_t)(x + 1) + 1 + (size_t)(digits - x - 1 > 1 ? digits - x - 1 : 1) : 2 + (size_t)(-x - 1) + (size_t)digits;
    else {
        const int ax = x < 0 ? -x : x;
        n += (size_t)digits + (digits > 1) + 2 + (ax >= 100 ? 3 : 2);
    }
    return n;
}

/* Bytes of json.dumps(tensor.tolist()) for an NCHW float tensor: what the
 * authors' edge posted. Brackets per nesting level, ", " between items. */
static double json_list_bytes(const float *x, const int64_t *shape, int rank)
{
    double n = 0;
    size_t elems = 1, lists = 0, block = 1;
    for (int d = 0; d < rank; d++)
        elems *= (size_t)shape[d];
    for (int d = rank - 1; d >= 0; d--) {  /* each level: its lists' brackets and separators */
        const size_t count = elems / (block * (size_t)shape[d]);
        lists += count;
        n += (double)count * (2.0 + 2.0 * (double)(shape[d] - 1));
        block *= (size_t)shape[d];
    }
    (void)lists;
    for (size_t i = 0; i < elems; i++)
        n += (double)py_repr_len((double)x[i]);
    return n;
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
    if (!strcmp(o->expert_mode, "oracle") && o->dist == DIST_MIX)
        return cli_usage("eval", "--expert oracle: not with a mixed stream (use auto)");
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
    case DIST_MIX:
        switch (eval_mix_kind(o->seed, index)) {
        case 1: return eex_blur_u8(src, dst, h, w, 1, o->mix_blur);
        case 2: return eex_noise_u8(src, dst, h, w, 1, o->mix_noise, o->seed + index);
        default: memcpy(dst, src, (size_t)h * w); return EEX_OK;
        }
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
        r->label = labels ? labels->data[first + i] : -1;
        r->kind = o->dist == DIST_MIX ? eval_mix_kind(o->seed, (uint64_t)(first + i)) : (int)o->dist;
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

/* Sets up the real edge path and the client. */
static int cloud_open(const eval_opts *o, const eex_model *m, long N, cloud_eval *ce)
{
    char host[256];
    int port, rc;
    if (cli_parse_hostport(o->cloud, "127.0.0.1", host, sizeof host, &port) || port < 1)
        return cli_usage("eval", "--cloud takes HOST:PORT, not '%s'", o->cloud);
    snprintf(ce->where, sizeof ce->where, "%s", o->cloud);
    if (!eex_model_cut_count(m))
        return cli_error("eval", "--cloud: the model has no cut points (ee.cuts)");
    if ((rc = resolve_cut("eval", m, o->autop.cut_auto ? NULL : o->cut, &ce->cut)))
        return rc;
    if (ce->cut == EEX_NO_CUT)
        ce->cut = eex_model_cut_count(m) - 1;
    ce->edge_exits = eex_model_cut_exit(m, ce->cut);
    /* per classifier, the highest threshold of any setting: an image no edge
       exit answers under it is offloaded by at least one setting */
    const int E = eex_model_exit_count(m);
    for (int k = 0; k <= E; k++) {
        ce->t_max[k] = o->thv[0][k];
        for (int t = 1; t < o->n_thr; t++)
            ce->t_max[k] = o->thv[t][k] > ce->t_max[k] ? o->thv[t][k] : ce->t_max[k];
    }
    eex_cloud_opts co = {.wire = o->wire, .deadline_ms = o->deadline_ms};
    eex_status st = eex_cloud_client_new(m, host, port, &co, &ce->client);
    eex_session_opts so = {.batch = 1, .threads = o->threads};
    if (st || (st = eex_session_new(m, &so, &ce->s1)))
        return cli_status("eval", st);
    if ((rc = cli_cloud_key("eval", ce->client, o->key)) ||
        (rc = cli_auto_open("eval", m, &o->autop, ce->cut, o->wire, &ce->autop)))
        return rc;
    ce->tensor_cap = 1;
    for (int c = 0; c < eex_model_cut_count(m); c++) {  /* the largest: --cut auto uses any */
        int64_t d[EEX_MAX_RANK];
        const int r = eex_model_cut_shape(m, c, d);
        size_t n = 1;
        for (int i = 0; i < r; i++)
            n *= (size_t)d[i];
        ce->tensor_cap = n > ce->tensor_cap ? n : ce->tensor_cap;
    }
    ce->tensor = malloc(sizeof(float) * ce->tensor_cap);
    ce->total_ms = malloc(sizeof(double) * (size_t)N);
    ce->offload_ms = malloc(sizeof(double) * (size_t)N);
    ce->edge_ms = malloc(sizeof(double) * (size_t)N);
    if (!ce->tensor || !ce->total_ms || !ce->offload_ms || !ce->edge_ms)
        return cli_error("eval", "out of memory");
    for (long i = 0; i < N; i++)
        ce->total_ms[i] = ce->offload_ms[i] = ce->edge_ms[i] = NAN;
    return CLI_OK;
}

static void cloud_close(cloud_eval *ce)
{
    eex_cloud_client_free(ce->client);
    eex_session_free(ce->s1);
    free(ce->tensor), free(ce->total_ms), free(ce->offload_ms), free(ce->edge_ms);
}

/* Image `index` (its preprocessed inputs at img / det) through the real
 * path when no edge exit answers it at the highest threshold. */
static int cloud_image(const eval_opts *o, const eex_model *m, cloud_eval *ce, long index, const float *img,
                       const float *det, int fixed_expert, image_rec *r)
{
    const int E = eex_model_exit_count(m);
    int rc;
    r->sent = r->degraded = r->planned = 0;
    if (ce->autop.on) {  /* this image's cut and wire */
        if ((rc = cli_auto_next("eval", &ce->autop, ce->client, &ce->cut)))
            return rc;
        ce->edge_exits = eex_model_cut_exit(m, ce->cut);
    }
    r->edge_exits = ce->edge_exits;
    for (int k = 0; k < ce->edge_exits; k++)
        if (r->conf[k] > ce->t_max[k])
            return CLI_OK;  /* answered on the edge at every threshold */
    int64_t shape[EEX_MAX_RANK];
    eex_model_input_shape(m, eex_model_image_input(m), shape);
    eex_status st = eex_session_set_input(ce->s1, eex_model_image_input(m), img, shape, 4);
    if (!st && det) {
        eex_model_input_shape(m, eex_model_detector_input(m), shape);
        st = eex_session_set_input(ce->s1, eex_model_detector_input(m), det, shape, 4);
    }
    if (st)
        return cli_status("eval", st);
    const eex_policy p = {.threshold = ce->t_max[E], .metric = o->metric,
                          .expert = fixed_expert >= 0 ? fixed_expert : EEX_EXPERT_AUTO, .cut = ce->cut,
                          .thresholds = ce->t_max, .n_thresholds = E + 1};
    eex_exit_result res;
    eex_offload_info info;
    if ((st = eex_session_run_offload(ce->s1, ce->client, &p, &res, &info)))
        return cli_status("eval", st);
    if (ce->autop.on) {
        cli_auto_done(&ce->autop, ce->client, &info);
        r->plan = ce->autop.step;
        r->planned = 1;
    }
    if (!info.offloaded) {  /* batch-1 numbers put an edge exit just above the threshold */
        ce->path_mismatch++;
        return CLI_OK;
    }
    r->sent = 1;
    ce->sent++;
    r->total_ms = ce->total_ms[index] = info.total_ms;
    r->offload_ms = ce->offload_ms[index] = info.offload_ms;
    r->edge_ms = ce->edge_ms[index] = info.edge_ms;
    r->bytes = info.bytes_sent ? info.bytes_sent : 0;
    ce->bytes_sum += info.bytes_sent;
    ce->payload_sum += info.payload_bytes;
    const int first = res.where == EEX_WHERE_CLOUD || ce->edge_exits == 0 ? ce->edge_exits : E + 1;
    if (res.where == EEX_WHERE_CLOUD && res.predictions[E] != r->pred[E])
        ce->final_mismatch++;
    for (int k = first; k <= E; k++) {
        r->conf[k] = res.confidences[k];
        r->pred[k] = res.predictions[k];
    }
    if (res.where == EEX_WHERE_DEGRADED) {
        r->degraded = 1;
        ce->degraded++;
        snprintf(r->reason, sizeof r->reason, "%.95s", info.reason);
    } else if (ce->json_samples < 16) {
        int64_t d[EEX_MAX_RANK];
        int rank;
        if (!eex_session_cut_tensor(ce->s1, ce->cut, ce->tensor, ce->tensor_cap, d, &rank)) {
            ce->json_bytes_sum += json_list_bytes(ce->tensor, d, rank);
            ce->json_samples++;
        }
    }
    return CLI_OK;
}

void eval_thr_name(const eval_opts *o, int t, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    if (!o->thr_n[t]) {
        snprintf(buf, cap, "%g", o->thr[t]);
        return;
    }
    for (int k = 0; k < o->thr_n[t] && n + 1 < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%g", k ? "/" : "", o->thv[t][k]);
}

/* Every setting as one threshold per classifier: a single p_tar for all; E
 * per-exit values and the final takes the last; or E + 1. */
static int fill_thresholds(eval_opts *o, int E)
{
    for (int t = 0; t < o->n_thr; t++) {
        if (!o->thr_n[t]) {
            for (int k = 0; k <= E; k++)
                o->thv[t][k] = o->thr[t];
            continue;
        }
        if (o->thr_n[t] != E && o->thr_n[t] != E + 1) {
            char name[256];
            eval_thr_name(o, t, name, sizeof name);
            return cli_usage("eval", "--thresholds %s: the model has %d exits; give %d values (or %d with the final's)",
                             name, E, E, E + 1);
        }
        if (o->thr_n[t] == E)
            o->thv[t][E] = o->thv[t][E - 1];
    }
    return CLI_OK;
}

int eval_run(eval_opts *o, const eex_model *m, const idx_array *images, const idx_array *labels)
{
    const int E = eex_model_exit_count(m), X = eex_model_expert_count(m), C = eex_model_class_count(m);
    if (X < 1)
        return cli_error("eval", "the model has no early-exit structure (no ee.* metadata)");
    int fixed_expert, rc;
    if ((rc = choose_expert(o, m, &fixed_expert)))
        return rc;
    if ((rc = fill_thresholds(o, E)))
        return rc;
    const long N = o->limit && o->limit < images->dims[0] ? o->limit : images->dims[0];
    const int h = images->dims[1], w = images->dims[2];
    for (long i = 0; labels && i < N; i++)
        if (labels->data[i] >= C)
            return cli_error("eval", "label %d of image %ld is not a class of the model (%d classes)", labels->data[i], i, C);
    cloud_eval cloud = {0}, *ce = NULL;
    if (o->cloud) {
        ce = &cloud;
        if ((rc = cloud_open(o, m, N, ce))) {
            cloud_close(ce);
            return rc;
        }
    }
    const int B = o->batch;
    eex_session *s;
    eex_session_opts so = {.batch = B, .threads = o->threads};
    eex_status st = eex_session_new(m, &so, &s);
    if (st) {
        if (ce)
            cloud_close(ce);
        return cli_status("eval", st);
    }
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
    for (int t = 0; ts && t < o->n_thr; t++) {
        outage_init(&ts[t].outage, o->outage_window, o->outage_target);
        deadline_init(&ts[t].deadline, (double)o->deadline_ms);
    }
    double *thr_lat_v = ce ? malloc(sizeof(double) * (size_t)N * (size_t)o->n_thr) : NULL;
    long *thr_lat_n = calloc((size_t)o->n_thr, sizeof(long));
    double (*thr_lat)[2] = calloc((size_t)o->n_thr, sizeof *thr_lat);
    long exit_correct[EEX_MAX_EXITS + 1] = {0};
    long conf_mat[EEX_MAX_CLASSES_DET][EEX_MAX_CLASSES_DET] = {{0}};
    FILE *log = o->log ? fopen(o->log, "w") : NULL;
    rc = CLI_OK;
    if (!img_buf || !det_buf || !px || !conf || !cls || !dprobs || !recs || !ts || (ce && !thr_lat_v) || !thr_lat_n ||
        !thr_lat)
        rc = cli_error("eval", "out of memory");
    else if (o->log && !log)
        rc = cli_error("eval", "cannot write '%s'", o->log);
    const int true_det = o->dist == DIST_MIX ? -1 : find_named(m, dist_name(o->dist), 1);
    adaptive_run *ad = NULL;
    if (!rc && o->adaptive)
        rc = adaptive_new(o, m, N, &ad);
    const double t0 = now_s();
    double last_progress = t0;
    for (long first = 0; !rc && first < N; first += B) {
        const int n = (int)(N - first < B ? N - first : B);
        rc = run_batch(o, m, s, images, labels, (int)first, n, fixed_expert, img_buf, det_buf, px, conf, cls, dprobs, recs);
        for (int i = 0; !rc && ce && i < n; i++)
            rc = cloud_image(o, m, ce, first + i, img_buf + (size_t)i * img_size,
                             det_in >= 0 ? det_buf + (size_t)i * det_size : NULL, fixed_expert, &recs[i]);
        for (int i = 0; !rc && ad && i < n; i++)
            adaptive_image(ad, first + i, recs[i].conf, recs[i].pred, recs[i].det_class, recs[i].expert, recs[i].kind, log);
        for (int i = 0; !rc && !ad && i < n; i++) {
            const image_rec *r = &recs[i];
            for (int k = 0; k <= E; k++)
                exit_correct[k] += r->pred[k] == r->label;
            if (true_det >= 0 && r->det_class >= 0)
                conf_mat[true_det][r->det_class]++;
            for (int t = 0; t < o->n_thr; t++) {
                int ans, where = 0;
                const int k = ce ? eval_decide_cloud(r, E, r->edge_exits, o->thv[t], &ans, &where) : eval_decide(r, E, o->thv[t], &ans);
                const int offloaded = ce ? where != 0 : k >= E;
                outage_add(&ts[t].outage, !offloaded, ans == r->label);
                /* an image the batch-1 path answered on the edge after all (not sent) was in time */
                deadline_add(&ts[t].deadline, offloaded && r->sent, r->sent ? r->total_ms : NAN, where == 2);
                if (!offloaded) {
                    ts[t].exit_count[k]++;
                    ts[t].edge_correct += ans == r->label;
                } else {
                    ts[t].offload++;
                    ts[t].cloud_correct += ans == r->label;
                    ts[t].final_correct += r->pred[E] == r->label;
                    ts[t].degraded += where == 2;
                    if (ce && r->sent)
                        thr_lat_v[(size_t)t * (size_t)N + (size_t)thr_lat_n[t]++] = r->total_ms;
                }
            }
            if (log)
                eval_write_log(log, m, o, first + i, r, E, ce);
            if (log && ce && ce->autop.on)
                fflush(log);  /* a run on a changing path is watched as it goes */
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
    for (int t = 0; !rc && ce && t < o->n_thr; t++) {
        thr_lat[t][1] = eval_percentile(thr_lat_v + (size_t)t * (size_t)N, thr_lat_n[t], 0.95);
        thr_lat[t][0] = eval_percentile(thr_lat_v + (size_t)t * (size_t)N, thr_lat_n[t], 0.5);
    }
    if (!rc && ad)
        adaptive_report(ad, secs);
    else if (!rc)
        eval_report(o, m, N, E, ts, exit_correct, (const long(*)[EEX_MAX_CLASSES_DET])conf_mat, true_det, secs, ce, thr_lat);
    free(img_buf), free(det_buf), free(px), free(conf), free(cls), free(dprobs), free(recs), free(ts);
    free(thr_lat_v), free(thr_lat_n), free(thr_lat);
    eex_session_free(s);
    adaptive_free(ad);
    if (ce)
        cloud_close(ce);
    (void)X;
    return rc;
}
