/* The cloud half of a request: from the cut tensor, every side exit the edge
 * did not host and the final classifier, for one expert, and the exit rule's
 * choice among them. The run itself is the engine's (eex_session_run_from_cut
 * with the side exits, engine/partial.c); the public eex_session_resume is
 * the same run without them (the final only). The remaining exits are needed
 * so that an offloaded image gets the same answer as a local full run (an
 * exit after the cut may fire first). Batched: n tensors of one cut and
 * expert go through the layers at once; every image reads and writes only
 * its own rows of each value. */
#include <string.h>

#include "../engine/session.h"
#include "../base/status.h"
#include "offload.h"

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
    const eex_ee *ee = &s->m->ee;
    for (int i = 0; i < nb && i < 4096; i++)
        if (metric[i] != EEX_METRIC_MAXPROB && metric[i] != EEX_METRIC_ENTROPY)
            return eex_fail(EEX_ERR_ARGUMENT, "unknown metric %d", (int)metric[i]);
    /* the cut, expert and batch are checked there, before anything runs */
    eex_status st = eex_session_run_from_cut(s, "offload resume", cut, data, nb, expert, 1);
    if (st)
        return st;
    const int E = ee->n_exits, X = ee->n_experts, first = ee->cut_exit[cut];

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
