/* The early-exit executor: run with a policy (stop at the first confident
 * exit), run everything (evaluation), hand out the tensor at a cut; runs that
 * finish the network from a cut tensor are engine/partial.c's. The node sets
 * come from engine/ee_bind.c; each run executes a subsequence of the planned
 * order, so partial runs never read a value that was overwritten. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../branches/bandit.h"
#include "../kernels/kernels.h"
#include "../weights/metawrite.h"
#include "ee_result.h"
#include "session.h"
#include "../base/status.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static eex_status need_ee(const eex_model *m, const char *what)
{
    if (!m->has_ee)
        return eex_fail(EEX_ERR_UNSUPPORTED, "%s: the model has no early-exit structure (no ee.* metadata)", what);
    return EEX_OK;
}

/* Runs the nodes of `set` that this run has not executed yet, in runs of
 * consecutive ones (so that a depthwise and a pointwise conv run as a pair,
 * eex_session_run_nodes). */
static void run_set(eex_session *s, const eex_exec_ctx *ctx, const eex_nodeset *set)
{
    for (int k = 0; k < set->n;) {
        if (s->done[set->idx[k]]) {
            k++;
            continue;
        }
        int e = k + 1;
        while (e < set->n && !s->done[set->idx[e]])
            e++;
        eex_session_run_nodes(s, ctx, &set->idx[k], e - k);
        k = e;
    }
}

/* Detector on image 0: class, probabilities and the expert it selects. */
static eex_status run_detector(eex_session *s, const eex_exec_ctx *ctx, eex_exit_result *r)
{
    const eex_ee *ee = &s->m->ee;
    const double t0 = now_ms();
    run_set(s, ctx, &ee->detector);
    const float *z = eex_session_value(s, ee->det_logits);
    for (int i = 0; i < ee->n_det_classes; i++)
        if (!isfinite(z[i]))
            return eex_fail(EEX_ERR_NUMERIC, "detector: logit %d is not finite", i);
    eex_softmax_row(z, ee->n_det_classes, 1.0f, r->detector_probs);
    int best = 0;
    for (int i = 1; i < ee->n_det_classes; i++)
        if (r->detector_probs[i] > r->detector_probs[best])
            best = i;
    r->detector_class = best;
    r->n_detector_classes = ee->n_det_classes;
    r->expert = ee->det_expert[best];
    r->stage_ms[EEX_MAX_EXITS + 1] = now_ms() - t0;
    return EEX_OK;
}

/* Computes exit k (0-based; E = final) of image 0 and records it. */
static eex_status run_exit(eex_session *s, const eex_exec_ctx *ctx, int k, int e, eex_metric metric,
                           eex_exit_result *r)
{
    const eex_ee *ee = &s->m->ee;
    const int X = ee->n_experts;
    const double t0 = now_ms();
    run_set(s, ctx, &ee->stage[k]);
    run_set(s, ctx, &ee->head[k * X + e]);
    eex_status st = eex_confidence(eex_session_value(s, ee->logits[k * X + e]), ee->n_classes,
                                   ee->temperature[k * X + e], metric, &r->confidences[k], &r->predictions[k]);
    if (st)
        return eex_fail(st, "exit %d (%s): %s", k + 1, ee->experts[e], eex_last_error());
    r->n_computed = k + 1;
    r->stage_ms[k] = now_ms() - t0;
    return EEX_OK;
}

eex_status eex_session_run_policy(eex_session *s, const eex_policy *p, eex_exit_result *r)
{
    if (!s || !p || !r)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_run_policy: NULL argument");
    const eex_model *m = s->m;
    const eex_ee *ee = &m->ee;
    eex_status st;
    if ((st = need_ee(m, "run_policy")))
        return st;
    if (!isfinite(p->threshold))
        return eex_fail(EEX_ERR_NUMERIC, "run_policy: threshold is not a finite number");
    if (p->thresholds && (p->n_thresholds < 1 || p->n_thresholds > ee->n_exits + 1))
        return eex_fail(EEX_ERR_ARGUMENT, "run_policy: %d per-exit thresholds for %d exits + final", p->n_thresholds,
                        ee->n_exits);
    for (int k = 0; p->thresholds && k < p->n_thresholds; k++)
        if (!isfinite(p->thresholds[k]))
            return eex_fail(EEX_ERR_NUMERIC, "run_policy: threshold of exit %d is not a finite number", k + 1);
    if (p->adaptive && !s->bandit)
        return eex_fail(EEX_ERR_STATE, "run_policy: adaptive policy without eex_session_set_adaptive");
    if (p->metric != EEX_METRIC_MAXPROB && p->metric != EEX_METRIC_ENTROPY)
        return eex_fail(EEX_ERR_ARGUMENT, "run_policy: unknown metric %d", (int)p->metric);
    if (p->expert == EEX_EXPERT_AUTO ? ee->det_logits < 0 : (p->expert < 0 || p->expert >= ee->n_experts))
        return eex_fail(EEX_ERR_ARGUMENT, p->expert == EEX_EXPERT_AUTO ? "run_policy: expert 'auto' needs a detector, and the model has none"
                                                                      : "run_policy: expert index %d out of range", p->expert);
    if (p->cut != EEX_NO_CUT && (p->cut < 0 || p->cut >= ee->n_cuts))
        return eex_fail(EEX_ERR_ARGUMENT, "run_policy: cut %d out of range (model has %d)", p->cut, ee->n_cuts);
    if (p->force_exit < 0 || p->force_exit > ee->n_exits + 1)
        return eex_fail(EEX_ERR_ARGUMENT, "run_policy: force_exit %d out of range (0..%d)", p->force_exit, ee->n_exits + 1);
    if (s->batch != 1)
        return eex_fail(EEX_ERR_SHAPE, "run_policy: decides per image; set a batch of 1 (have %d)", s->batch);
    uint64_t need = 1ull << ee->image_input;
    if (p->expert == EEX_EXPERT_AUTO)
        need |= 1ull << ee->detector_input;
    if ((st = eex_session_need_inputs(s, need)))
        return st;

    memset(r, 0, sizeof *r);
    r->detector_class = -1;
    r->cut = -1;
    r->expert = p->expert;
    eex_session_begin_run(s);
    const eex_exec_ctx ctx = eex_session_ctx(s);
    if (p->expert == EEX_EXPERT_AUTO && (st = run_detector(s, &ctx, r)))
        return st;
    eex_policy ap;
    if (p->adaptive) {  /* the bandit's arm for this image's context is the p_tar of every exit */
        s->bandit_ctx = r->detector_class < 0 ? 0 : r->detector_class;
        s->bandit_arm = eex_bandit_choose(s->bandit, s->bandit_ctx);
        s->bandit_pending = 1;
        ap = *p;
        ap.threshold = eex_bandit_threshold(s->bandit, s->bandit_arm);
        ap.thresholds = NULL;
        p = &ap;
    }
    const int E = ee->n_exits, e = r->expert;
    const int last = p->cut == EEX_NO_CUT ? E : ee->cut_exit[p->cut];
    for (int k = 0; k < last; k++) {
        if ((st = run_exit(s, &ctx, k, e, p->metric, r)))
            return st;
        if (p->force_exit ? p->force_exit == k + 1 : eex_exit_passes(r->confidences[k], eex_policy_threshold(p, k))) {
            eex_result_answer(r, EEX_WHERE_EDGE, k);
            r->nodes_executed = s->nodes_executed;
            if (p->adaptive)
                eex_session_adaptive_settle(s, r);
            return EEX_OK;
        }
    }
    if (p->cut != EEX_NO_CUT) {
        run_set(s, &ctx, &ee->to_cut[p->cut]);
        if (r->n_computed)
            eex_result_answer(r, EEX_WHERE_CUT, eex_result_choose(r, p));
        r->exit = 0;  /* no exit answered: the cloud will */
        r->cut = p->cut;
        s->cut_ready = p->cut;
    } else {
        if ((st = run_exit(s, &ctx, E, e, p->metric, r)))
            return st;
        /* the exit rule over every classifier: the final one if it passes, else the most
         * confident (the paper's rule: a final answer under p_tar yields to an exit) */
        eex_result_answer(r, EEX_WHERE_LOCAL, eex_result_choose(r, p));
    }
    r->nodes_executed = s->nodes_executed;
    /* with a cut the reward waits for the cloud's answer (eex_session_run_offload) */
    if (p->adaptive && r->where == EEX_WHERE_LOCAL)
        eex_session_adaptive_settle(s, r);
    return EEX_OK;
}

eex_status eex_session_run_all(eex_session *s)
{
    eex_status st;
    if (!s)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_run_all: NULL session");
    if ((st = need_ee(s->m, "run_all")) || (st = eex_session_run(s)))
        return st;
    s->ee_ran = 1;
    s->cut_ready = EEX_CUT_ALL;
    return EEX_OK;
}

static eex_status probs_of(const eex_session *s, int v, float t, float *probs, size_t cap)
{
    const int c = s->m->values[v].c;
    if ((size_t)s->batch * (size_t)c > cap)
        return eex_fail(EEX_ERR_ARGUMENT, "probs: need %d x %d floats, buffer holds %zu", s->batch, c, cap);
    const float *z = eex_session_value(s, v);
    for (int n = 0; n < s->batch; n++) {
        for (int i = 0; i < c; i++)
            if (!isfinite(z[(size_t)n * c + i]))
                return eex_fail(EEX_ERR_NUMERIC, "probs: image %d logit %d of '%s' is not finite", n, i,
                                s->m->values[v].name);
        eex_softmax_row(z + (size_t)n * c, c, t, probs + (size_t)n * c);
    }
    return EEX_OK;
}

eex_status eex_session_exit_probs(const eex_session *s, int exit, int expert, float *probs, size_t cap)
{
    if (!s || !probs)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_exit_probs: NULL argument");
    const eex_ee *ee = &s->m->ee;
    eex_status st;
    if ((st = need_ee(s->m, "exit_probs")))
        return st;
    if (exit < 1 || exit > ee->n_exits + 1 || expert < 0 || expert >= ee->n_experts)
        return eex_fail(EEX_ERR_ARGUMENT, "exit_probs: exit %d / expert %d out of range (%d exits + final, %d experts)",
                        exit, expert, ee->n_exits, ee->n_experts);
    if (!s->ee_ran && !(exit == ee->n_exits + 1 && s->final_ready == expert + 1))
        return eex_fail(EEX_ERR_STATE, "exit_probs: run eex_session_run_all (or resume) first");
    const int k = exit - 1;
    return probs_of(s, ee->logits[k * ee->n_experts + expert], ee->temperature[k * ee->n_experts + expert], probs, cap);
}

eex_status eex_session_exit_confidence(const eex_session *s, int exit, int expert, eex_metric metric, float *conf,
                                       int *cls, size_t cap)
{
    if (!s || !conf || !cls)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_exit_confidence: NULL argument");
    const eex_ee *ee = &s->m->ee;
    eex_status st;
    if ((st = need_ee(s->m, "exit_confidence")))
        return st;
    if (exit < 1 || exit > ee->n_exits + 1 || expert < 0 || expert >= ee->n_experts)
        return eex_fail(EEX_ERR_ARGUMENT, "exit_confidence: exit %d / expert %d out of range", exit, expert);
    if (!s->ee_ran && !(exit == ee->n_exits + 1 && s->final_ready == expert + 1))
        return eex_fail(EEX_ERR_STATE, "exit_confidence: run eex_session_run_all (or resume) first");
    if ((size_t)s->batch > cap)
        return eex_fail(EEX_ERR_ARGUMENT, "exit_confidence: batch %d exceeds the buffers (%zu)", s->batch, cap);
    const int k = (exit - 1) * ee->n_experts + expert;
    const float *z = eex_session_value(s, ee->logits[k]);
    for (int n = 0; n < s->batch; n++)
        if ((st = eex_confidence(z + (size_t)n * ee->n_classes, ee->n_classes, ee->temperature[k], metric, &conf[n],
                                 &cls[n])))
            return eex_fail(st, "exit %d (%s), image %d: %s", exit, ee->experts[expert], n, eex_last_error());
    return EEX_OK;
}

eex_status eex_session_exit_logits(const eex_session *s, int exit, int expert, float *z, size_t cap)
{
    if (!s || !z)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_exit_logits: NULL argument");
    const eex_ee *ee = &s->m->ee;
    eex_status st;
    if ((st = need_ee(s->m, "exit_logits")))
        return st;
    if (exit < 1 || exit > ee->n_exits + 1 || expert < 0 || expert >= ee->n_experts)
        return eex_fail(EEX_ERR_ARGUMENT, "exit_logits: exit %d / expert %d out of range", exit, expert);
    if (!s->ee_ran)
        return eex_fail(EEX_ERR_STATE, "exit_logits: run eex_session_run_all first");
    const size_t n = (size_t)s->batch * (size_t)ee->n_classes;
    if (n > cap)
        return eex_fail(EEX_ERR_ARGUMENT, "exit_logits: need %zu floats, buffer holds %zu", n, cap);
    memcpy(z, eex_session_value(s, ee->logits[(exit - 1) * ee->n_experts + expert]), n * sizeof(float));
    return EEX_OK;
}

eex_status eex_model_save_calibrated(const eex_model *m, const float *temps, const float *th, int n_th,
                                     const char *path)
{
    if (!m || !temps || !path)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_model_save_calibrated: NULL argument");
    eex_status st;
    if ((st = need_ee(m, "save_calibrated")))
        return st;
    const eex_ee *ee = &m->ee;
    const int E = ee->n_exits, X = ee->n_experts;
    if (th && n_th != E && n_th != E + 1)
        return eex_fail(EEX_ERR_ARGUMENT, "save_calibrated: %d thresholds for %d exits", n_th, E);
    const int n = (E + 1) * X + (th ? 1 : 0);
    eex_meta_set *set = calloc((size_t)n, sizeof *set);
    char (*keys)[192] = calloc((size_t)n, sizeof *keys);
    double ths[EEX_MAX_EXITS + 1];
    if (!set || !keys) {
        free(set), free(keys);
        return eex_fail(EEX_ERR_NOMEM, "save_calibrated: out of memory");
    }
    st = EEX_OK;
    for (int k = 0; k <= E && !st; k++)
        for (int e = 0; e < X; e++) {
            const float t = temps[k * X + e];
            if (!(t > 0.0f) || !isfinite(t)) {
                st = eex_fail(EEX_ERR_NUMERIC, "save_calibrated: temperature of exit %d (%s) must be > 0", k + 1,
                              ee->experts[e]);
                break;
            }
            if (k < E)
                snprintf(keys[k * X + e], sizeof keys[0], "ee.exit.%d.%s.temperature", k + 1, ee->experts[e]);
            else
                snprintf(keys[k * X + e], sizeof keys[0], "ee.final.%s.temperature", ee->experts[e]);
            set[k * X + e] = (eex_meta_set){.key = keys[k * X + e], .type = EEX_V_F64, .f = (double)t};
        }
    if (!st && th) {
        for (int k = 0; k < n_th && !st; k++) {
            if (!(th[k] >= 0.0f && th[k] <= 1.0f))
                st = eex_fail(EEX_ERR_ARGUMENT, "save_calibrated: threshold %d must be in [0, 1]", k + 1);
            ths[k] = th[k];
        }
        set[n - 1] = (eex_meta_set){.key = "ee.thresholds", .type = EEX_V_F64S, .fs = ths, .count = (uint32_t)n_th};
    }
    if (!st)
        st = eex_file_write_meta(&m->file, set, n, path);
    free(set), free(keys);
    return st;
}

eex_status eex_session_detector_probs(const eex_session *s, float *probs, size_t cap)
{
    if (!s || !probs)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_detector_probs: NULL argument");
    if (!s->m->has_ee || s->m->ee.det_logits < 0)
        return eex_fail(EEX_ERR_UNSUPPORTED, "detector_probs: the model has no detector");
    if (!s->ee_ran)
        return eex_fail(EEX_ERR_STATE, "detector_probs: run eex_session_run_all first");
    return probs_of(s, s->m->ee.det_logits, 1.0f, probs, cap);
}

static int cut_shape(const eex_model *m, int cut, int batch, int64_t dims[EEX_MAX_RANK])
{
    const eex_value *v = &m->values[m->ee.cut_value[cut]];
    return eex_value_dims(v, batch, dims);
}

eex_status eex_session_cut_tensor(const eex_session *s, int cut, float *dst, size_t cap, int64_t shape[EEX_MAX_RANK],
                                  int *rank)
{
    if (!s || !dst)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_cut_tensor: NULL argument");
    const eex_model *m = s->m;
    eex_status st;
    if ((st = need_ee(m, "cut_tensor")))
        return st;
    if (cut < 0 || cut >= m->ee.n_cuts)
        return eex_fail(EEX_ERR_ARGUMENT, "cut_tensor: cut %d out of range (model has %d)", cut, m->ee.n_cuts);
    if (s->cut_ready != cut && s->cut_ready != EEX_CUT_ALL)
        return eex_fail(EEX_ERR_STATE, "cut_tensor: the last run did not reach cut %d", cut);
    const int v = m->ee.cut_value[cut];
    const size_t need = (size_t)s->batch * (size_t)eex_value_elems(&m->values[v]);
    if (need > cap)
        return eex_fail(EEX_ERR_ARGUMENT, "cut_tensor: needs %zu floats, buffer holds %zu", need, cap);
    eex_value_to_nchw(s, v, dst);
    int64_t d[EEX_MAX_RANK];
    const int r = cut_shape(m, cut, s->batch, d);
    if (shape)
        memcpy(shape, d, sizeof(int64_t) * (size_t)r);
    if (rank)
        *rank = r;
    return EEX_OK;
}

/* ---- model accessors ----------------------------------------------------------- */

int eex_model_exit_count(const eex_model *m) { return m && m->has_ee ? m->ee.n_exits : 0; }
int eex_model_class_count(const eex_model *m) { return m && m->has_ee ? m->ee.n_classes : 0; }
int eex_model_expert_count(const eex_model *m) { return m && m->has_ee ? m->ee.n_experts : 0; }

const char *eex_model_expert_name(const eex_model *m, int i)
{
    return m && m->has_ee && i >= 0 && i < m->ee.n_experts ? m->ee.experts[i] : NULL;
}

eex_status eex_model_find_expert(const eex_model *m, const char *name, int *index)
{
    if (!m || !name || !index)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_model_find_expert: NULL argument");
    if (!m->has_ee)
        return eex_fail(EEX_ERR_NOT_FOUND, "expert '%s': the model has no expert sets", name);
    char known[256] = "";
    for (int e = 0; e < m->ee.n_experts; e++) {
        if (!strcmp(m->ee.experts[e], name)) {
            *index = e;
            return EEX_OK;
        }
        if (strlen(known) + strlen(m->ee.experts[e]) + 3 < sizeof known) {
            strcat(known, e ? ", " : "");
            strcat(known, m->ee.experts[e]);
        }
    }
    return eex_fail(EEX_ERR_NOT_FOUND, "unknown expert '%s' (the model has: %s)", name, known);
}

float eex_model_temperature(const eex_model *m, int exit, int expert)
{
    if (!m || !m->has_ee || exit < 1 || exit > m->ee.n_exits + 1 || expert < 0 || expert >= m->ee.n_experts)
        return 0.0f;
    return m->ee.temperature[(exit - 1) * m->ee.n_experts + expert];
}

int eex_model_image_input(const eex_model *m) { return m && m->has_ee ? m->ee.image_input : 0; }
int eex_model_detector_input(const eex_model *m) { return m && m->has_ee ? m->ee.detector_input : -1; }

int eex_model_has_detector(const eex_model *m) { return m && m->has_ee && m->ee.det_logits >= 0; }
int eex_model_detector_class_count(const eex_model *m) { return eex_model_has_detector(m) ? m->ee.n_det_classes : 0; }

const char *eex_model_detector_class(const eex_model *m, int i)
{
    return eex_model_has_detector(m) && i >= 0 && i < m->ee.n_det_classes ? m->ee.det_classes[i] : NULL;
}

float eex_model_default_threshold(const eex_model *m) { return m && m->has_ee ? m->ee.threshold : -1.0f; }

int eex_model_default_thresholds(const eex_model *m, float *t, int cap)
{
    if (!m || !m->has_ee)
        return 0;
    for (int k = 0; t && k < cap && k < m->ee.n_thresholds; k++)
        t[k] = m->ee.thresholds[k];
    return m->ee.n_thresholds;
}

float eex_policy_threshold(const eex_policy *p, int k)
{
    return p->thresholds && k >= 0 && k < p->n_thresholds ? p->thresholds[k] : p->threshold;
}
int eex_model_cut_count(const eex_model *m) { return m && m->has_ee ? m->ee.n_cuts : 0; }

const char *eex_model_cut_name(const eex_model *m, int i)
{
    return m && m->has_ee && i >= 0 && i < m->ee.n_cuts ? m->values[m->ee.cut_value[i]].name : NULL;
}

int eex_model_cut_shape(const eex_model *m, int i, int64_t dims[EEX_MAX_RANK])
{
    if (!m || !m->has_ee || i < 0 || i >= m->ee.n_cuts)
        return -1;
    return cut_shape(m, i, 1, dims);
}

int eex_model_cut_exit(const eex_model *m, int i)
{
    return m && m->has_ee && i >= 0 && i < m->ee.n_cuts ? m->ee.cut_exit[i] : 0;
}

/* ---- adaptive policy -------------------------------------------------------- */

eex_status eex_session_set_adaptive(eex_session *s, const eex_adaptive_opts *o)
{
    if (!s)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_set_adaptive: NULL session");
    eex_status st;
    if ((st = need_ee(s->m, "set_adaptive")))
        return st;
    eex_bandit *b = NULL;
    const int contexts = s->m->ee.det_logits >= 0 ? s->m->ee.n_det_classes : 1;
    if (o && (st = eex_bandit_new(o, contexts, &b)))
        return st;
    eex_bandit_free(s->bandit);
    s->bandit = b;
    s->bandit_pending = 0;
    return EEX_OK;
}

void eex_session_reset_adaptive(eex_session *s)
{
    if (s) {
        eex_bandit_reset(s->bandit);
        s->bandit_pending = 0;
    }
}

void eex_session_adaptive_settle(eex_session *s, const eex_exit_result *r)
{
    if (!s || !s->bandit || !s->bandit_pending || !r)
        return;
    s->bandit_pending = 0;
    const int E = s->m->ee.n_exits;
    const int edge_exits = r->cut >= 0 ? s->m->ee.cut_exit[r->cut] : E;
    const int offloaded = r->where != EEX_WHERE_EDGE;
    float conf[EEX_MAX_EXITS + 1];
    memcpy(conf, r->confidences, sizeof conf);
    if (r->where == EEX_WHERE_DEGRADED || r->where == EEX_WHERE_CUT)
        conf[E] = 0.0f;  /* no cloud answer: the offload gained nothing */
    eex_bandit_update(s->bandit, s->bandit_ctx, s->bandit_arm,
                      eex_adaptive_reward(conf, edge_exits - 1, E, offloaded, s->bandit->offload_cost));
}
