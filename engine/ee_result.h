/* Filling an eex_exit_result: shared by the local executor (ee_run.c) and
 * the offload client, which applies the same answer rule across the edge's
 * exits and the cloud's classifiers. */
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

/* The most confident of the classifiers computed so far (the earliest on ties). */
static inline int eex_result_most_confident(const eex_exit_result *r)
{
    int best = 0;
    for (int k = 1; k < r->n_computed; k++)
        if (r->confidences[k] > r->confidences[best])
            best = k;
    return best;
}

#endif
