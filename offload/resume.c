/* The cloud half of a request: from the cut tensor, every side exit the edge
 * did not host and the final classifier, for one expert. eex_session_resume
 * computes only the final; the remaining exits are needed so that an
 * offloaded image gets the same answer as a local full run (an exit after
 * the cut may fire first). Their heads are merged into the after-cut nodes
 * in execution order, so every head runs while its attach value is live.
 * Batched: n tensors of one cut and expert go through the layers at once;
 * every image reads and writes only its own rows of each value. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/session.h"
#include "../base/status.h"
#include "offload.h"

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The exit rule among the cloud's classifiers (the edge applies it again over
 * its own exits and these: offload/client.c). */
static void choose(eex_cloud_answer *a, float threshold)
{
    float t[EEX_MAX_EXITS + 1];
    for (int i = 0; i < a->n; i++)
        t[i] = threshold;
    const int pick = eex_exit_choose(a->confidences, t, a->n, NULL);
    a->exit = a->first_exit + pick;
    a->cls = a->classes[pick];
    a->confidence = a->confidences[pick];
}

eex_status eex_offload_resume_batch(eex_session *s, int cut, const float *data, int nb, int expert,
                                    const eex_metric *metric, const float *threshold, eex_cloud_answer *a,
                                    eex_status *each)
{
    if (!s || !data || !metric || !threshold || !a || !each)
        return eex_fail(EEX_ERR_ARGUMENT, "offload resume: NULL argument");
    const eex_model *m = s->m;
    const eex_ee *ee = &m->ee;
    if (!m->has_ee)
        return eex_fail(EEX_ERR_UNSUPPORTED, "offload resume: the model has no early-exit structure");
    if (cut < 0 || cut >= ee->n_cuts)
        return eex_fail(EEX_ERR_ARGUMENT, "cut %d out of range (model has %d)", cut, ee->n_cuts);
    if (expert < 0 || expert >= ee->n_experts)
        return eex_fail(EEX_ERR_ARGUMENT, "expert %d out of range (model has %d)", expert, ee->n_experts);
    if (nb < 1 || nb > 4096)
        return eex_fail(EEX_ERR_ARGUMENT, "offload resume: batch %d out of range 1..4096", nb);
    for (int i = 0; i < nb; i++)
        if (metric[i] != EEX_METRIC_MAXPROB && metric[i] != EEX_METRIC_ENTROPY)
            return eex_fail(EEX_ERR_ARGUMENT, "unknown metric %d", (int)metric[i]);
    eex_status st;
    if (s->batch != nb && (st = eex_session_replan(s, nb)))
        return st;
    const int E = ee->n_exits, X = ee->n_experts, first = ee->cut_exit[cut];
    const eex_nodeset *rest = &ee->after_cut[cut * X + expert];
    int n = rest->n;
    for (int k = first; k < E; k++)
        n += ee->head[k * X + expert].n;
    int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!order)
        return eex_fail(EEX_ERR_NOMEM, "offload resume: out of memory");
    memcpy(order, rest->idx, sizeof(int) * (size_t)rest->n);
    n = rest->n;
    for (int k = first; k < E; k++) {
        const eex_nodeset *h = &ee->head[k * X + expert];
        memcpy(order + n, h->idx, sizeof(int) * (size_t)h->n);
        n += h->n;
    }
    qsort(order, (size_t)n, sizeof(int), cmp_int);
    int u = 0;  /* a node shared by a head and the backbone runs once */
    for (int i = 0; i < n; i++)
        if (!u || order[i] != order[u - 1])
            order[u++] = order[i];

    memset(s->done, 0, (size_t)m->n_nodes);
    s->nodes_executed = 0;
    s->ran = s->ee_ran = 0;
    s->cut_ready = -1;
    s->final_ready = 0;
    eex_value_from_nchw(s, ee->cut_value[cut], data);
    const eex_exec_ctx ctx = eex_session_ctx(s);
    eex_session_run_nodes(s, &ctx, order, u);
    free(order);
    s->final_ready = expert + 1;

    /* logits of image b of a classifier: row b of its [N, classes] value */
    const size_t C = (size_t)ee->n_classes;
    for (int b = 0; b < nb; b++) {
        eex_cloud_answer *ab = &a[b];
        memset(ab, 0, sizeof *ab);
        ab->first_exit = first + 1;
        ab->n = E - first + 1;
        each[b] = EEX_OK;
        for (int k = first; k <= E && !each[b]; k++) {
            const int i = k - first, v = k * X + expert;
            if ((each[b] = eex_confidence(eex_session_value(s, ee->logits[v]) + (size_t)b * C, ee->n_classes,
                                          ee->temperature[v], metric[b], &ab->confidences[i], &ab->classes[i])))
                eex_fail(each[b], "%s of expert %s: %s", k == E ? "final classifier" : "exit", ee->experts[expert],
                         eex_last_error());
        }
        if (!each[b])
            choose(ab, threshold[b]);
    }
    return EEX_OK;
}

eex_status eex_offload_resume(eex_session *s, int cut, const float *data, const int64_t *shape, int rank, int expert,
                              eex_metric metric, float threshold, eex_cloud_answer *a)
{
    if (!s || !data || !shape || !a)
        return eex_fail(EEX_ERR_ARGUMENT, "offload resume: NULL argument");
    const eex_model *m = s->m;
    const eex_ee *ee = &m->ee;
    if (!m->has_ee)
        return eex_fail(EEX_ERR_UNSUPPORTED, "offload resume: the model has no early-exit structure");
    if (cut < 0 || cut >= ee->n_cuts)
        return eex_fail(EEX_ERR_ARGUMENT, "cut %d out of range (model has %d)", cut, ee->n_cuts);
    int64_t want[EEX_MAX_RANK];
    const int wr = eex_model_cut_shape(m, cut, want);
    int ok = rank == wr && shape[0] == 1;
    for (int d = 1; ok && d < rank; d++)
        ok = shape[d] == want[d];
    if (!ok)
        return eex_fail(EEX_ERR_SHAPE, "cut %d '%s' takes a [1,%lld%s] tensor", cut, m->values[ee->cut_value[cut]].name,
                        (long long)want[1], wr == 4 ? ",H,W" : "");
    eex_status each;
    const eex_status st = eex_offload_resume_batch(s, cut, data, 1, expert, &metric, &threshold, a, &each);
    return st ? st : each;
}
