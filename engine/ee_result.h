/* Filling an eex_exit_result: shared by the local executor (ee_run.c,
 * partial.c) and the offload client, which applies the same answer rule
 * (branches/exit_rule.c) across the edge's exits and the cloud's classifiers. */
#ifndef EEX_EE_RESULT_H
#define EEX_EE_RESULT_H

#include "eex.h"

/* Classifier k (0-based) answers, from `where`. */
static inline void eex_result_answer(eex_exit_result *r, eex_where where, int k)
{
    r->where = where;
    r->exit = k + 1;
    r->cls = r->predictions[k];
    r->confidence = r->confidences[k];
}

/* The exit rule (eex_exit_choose) over the classifiers computed so far, with
 * the policy's per-classifier thresholds. */
static inline int eex_result_choose(const eex_exit_result *r, const eex_policy *p)
{
    float t[EEX_MAX_EXITS + 1];
    for (int k = 0; k < r->n_computed; k++)
        t[k] = eex_policy_threshold(p, k);
    return eex_exit_choose(r->confidences, t, r->n_computed, NULL);
}

#endif
