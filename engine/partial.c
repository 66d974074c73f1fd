/* Partial runs from a cut, the one way into a session's run state from
 * outside engine/. A partial run forgets the last run, sets the cut tensor
 * and runs only nodes after it: the after-cut nodes for an expert's final
 * classifier and, when asked, the heads of the side exits after the cut,
 * merged in execution order so every head runs while its attach value is
 * live. Two callers: the public eex_session_resume (below: the final
 * classifier only) and the cloud's offload/resume.c (every classifier after
 * the cut, so that an offloaded image gets the answer of a local full run).
 * The node sets come from engine/ee_bind.c; each run executes a subsequence
 * of the planned order, so it never reads a value that was overwritten. */
#include <stdlib.h>
#include <string.h>

#include "ee_result.h"
#include "session.h"
#include "../base/status.h"

void eex_session_begin_run(eex_session *s)
{
    memset(s->done, 0, (size_t)s->m->n_nodes);
    s->nodes_executed = 0;
    s->ran = s->ee_ran = 0;
    s->cut_ready = -1;
    s->final_ready = 0;
}

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The after-cut nodes of the expert merged with the heads of the side exits
 * after the cut, ascending, each once (a node shared by a head and the
 * backbone runs once); *n their count. NULL when memory is short. */
static int *with_side_exits(const eex_ee *ee, int cut, int expert, int *n)
{
    const int E = ee->n_exits, X = ee->n_experts, first = ee->cut_exit[cut];
    const eex_nodeset *rest = &ee->after_cut[cut * X + expert];
    int k = rest->n;
    for (int e = first; e < E; e++)
        k += ee->head[e * X + expert].n;
    int *order = malloc(sizeof(int) * (size_t)(k ? k : 1));
    if (!order)
        return NULL;
    memcpy(order, rest->idx, sizeof(int) * (size_t)rest->n);
    k = rest->n;
    for (int e = first; e < E; e++) {
        const eex_nodeset *h = &ee->head[e * X + expert];
        memcpy(order + k, h->idx, sizeof(int) * (size_t)h->n);
        k += h->n;
    }
    qsort(order, (size_t)k, sizeof(int), cmp_int);
    int u = 0;
    for (int i = 0; i < k; i++)
        if (!u || order[i] != order[u - 1])
            order[u++] = order[i];
    *n = u;
    return order;
}

eex_status eex_session_run_from_cut(eex_session *s, const char *what, int cut, const float *data, int n, int expert,
                                    int side_exits)
{
    const eex_model *m = s->m;
    const eex_ee *ee = &m->ee;
    if (!m->has_ee)
        return eex_fail(EEX_ERR_UNSUPPORTED, "%s: the model has no early-exit structure (no ee.* metadata)", what);
    if (cut < 0 || cut >= ee->n_cuts)
        return eex_fail(EEX_ERR_ARGUMENT, "%s: cut %d out of range (model has %d)", what, cut, ee->n_cuts);
    if (expert < 0 || expert >= ee->n_experts)
        return eex_fail(EEX_ERR_ARGUMENT, "%s: expert %d out of range (model has %d)", what, expert, ee->n_experts);
    if (n < 1 || n > 4096)
        return eex_fail(EEX_ERR_ARGUMENT, "%s: batch %d out of range 1..4096", what, n);
    eex_status st;
    if (n != s->batch && (st = eex_session_replan(s, n)))
        return st;
    const eex_nodeset *rest = &ee->after_cut[cut * ee->n_experts + expert];
    int count = rest->n;
    int *order = side_exits ? with_side_exits(ee, cut, expert, &count) : NULL;
    if (side_exits && !order)
        return eex_fail(EEX_ERR_NOMEM, "%s: out of memory", what);
    eex_session_begin_run(s);
    eex_value_from_nchw(s, ee->cut_value[cut], data);
    const eex_exec_ctx ctx = eex_session_ctx(s);
    eex_session_run_nodes(s, &ctx, order ? order : rest->idx, count);
    free(order);
    s->final_ready = expert + 1;
    return EEX_OK;
}

eex_status eex_session_resume(eex_session *s, int cut, const float *data, const int64_t *shape, int rank, int expert,
                              eex_metric metric, eex_exit_result *r)
{
    if (!s || !data || !shape || !r)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_session_resume: NULL argument");
    const eex_model *m = s->m;
    const eex_ee *ee = &m->ee;
    if (!m->has_ee || cut < 0 || cut >= ee->n_cuts || expert < 0 || expert >= ee->n_experts)  /* it says which */
        return eex_session_run_from_cut(s, "resume", cut, data, 1, expert, 0);
    int64_t want[EEX_MAX_RANK];
    const int wr = eex_model_cut_shape(m, cut, want);
    int ok = rank == wr && shape[0] >= 1 && shape[0] <= 4096;
    for (int d = 1; ok && d < rank; d++)
        ok = shape[d] == want[d];
    if (!ok)
        return eex_fail(EEX_ERR_SHAPE, "resume: cut '%s' takes [N,%lld%s] tensors", m->values[ee->cut_value[cut]].name,
                        (long long)want[1], wr == 4 ? ",H,W" : "");
    eex_status st = eex_session_run_from_cut(s, "resume", cut, data, (int)shape[0], expert, 0);
    if (st)
        return st;
    memset(r, 0, sizeof *r);
    r->detector_class = -1;
    r->cut = -1;
    r->expert = expert;
    const int E = ee->n_exits, k = E * ee->n_experts + expert;
    if ((st = eex_confidence(eex_session_value(s, ee->logits[k]), ee->n_classes, ee->temperature[k], metric,
                             &r->confidences[E], &r->predictions[E]))) {
        s->final_ready = 0;  /* as before: a resume that failed leaves no logits readable */
        return st;
    }
    r->n_computed = E + 1;
    eex_result_answer(r, EEX_WHERE_LOCAL, E);
    r->nodes_executed = s->nodes_executed;
    return EEX_OK;
}
