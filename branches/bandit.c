/* UCB1 over candidate thresholds, one independent bandit per context
 * (AdaEE, ICC 2023: the context is the detected distortion). Deterministic:
 * ties go to the lowest arm, so a seeded stream replays exactly. */
#include "bandit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/status.h"

eex_status eex_bandit_new(const eex_adaptive_opts *o, int n_contexts, eex_bandit **out)
{
    if (!o || !out || !o->candidates)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_bandit_new: NULL argument");
    *out = NULL;
    if (o->n_candidates < 1 || o->n_candidates > EEX_ADAPTIVE_MAX_ARMS)
        return eex_fail(EEX_ERR_ARGUMENT, "adaptive: %d candidate thresholds (1..%d)", o->n_candidates,
                        EEX_ADAPTIVE_MAX_ARMS);
    if (n_contexts < 1 || n_contexts > 4096)
        return eex_fail(EEX_ERR_ARGUMENT, "adaptive: %d contexts (1..4096)", n_contexts);
    if (!isfinite(o->offload_cost) || !isfinite(o->exploration) || o->exploration < 0)
        return eex_fail(EEX_ERR_ARGUMENT, "adaptive: offload cost and exploration must be finite (exploration >= 0)");
    for (int a = 0; a < o->n_candidates; a++)
        if (!isfinite(o->candidates[a]))
            return eex_fail(EEX_ERR_NUMERIC, "adaptive: candidate %d is not a finite number", a);
    eex_bandit *b = calloc(1, sizeof *b);
    const size_t cells = (size_t)n_contexts * (size_t)o->n_candidates;
    if (b) {
        b->plays = calloc(cells, sizeof *b->plays);
        b->sum = calloc(cells, sizeof *b->sum);
        b->total = calloc((size_t)n_contexts, sizeof *b->total);
    }
    if (!b || !b->plays || !b->sum || !b->total) {
        eex_bandit_free(b);
        return eex_fail(EEX_ERR_NOMEM, "adaptive: out of memory");
    }
    b->n_arms = o->n_candidates, b->n_ctx = n_contexts;
    memcpy(b->arm, o->candidates, sizeof(float) * (size_t)b->n_arms);
    b->offload_cost = o->offload_cost;
    b->c = o->exploration > 0 ? o->exploration : sqrt(2.0);
    *out = b;
    return EEX_OK;
}

void eex_bandit_free(eex_bandit *b)
{
    if (!b)
        return;
    free(b->plays), free(b->sum), free(b->total), free(b);
}

void eex_bandit_reset(eex_bandit *b)
{
    if (!b)
        return;
    memset(b->plays, 0, sizeof *b->plays * (size_t)b->n_ctx * (size_t)b->n_arms);
    memset(b->sum, 0, sizeof *b->sum * (size_t)b->n_ctx * (size_t)b->n_arms);
    memset(b->total, 0, sizeof *b->total * (size_t)b->n_ctx);
}

int eex_bandit_choose(eex_bandit *b, int ctx)
{
    if (!b)
        return 0;
    if (ctx < 0 || ctx >= b->n_ctx)
        ctx = 0;
    const long *n = b->plays + (size_t)ctx * (size_t)b->n_arms;
    const double *s = b->sum + (size_t)ctx * (size_t)b->n_arms;
    for (int a = 0; a < b->n_arms; a++)
        if (!n[a])
            return a;
    const double ln = log((double)b->total[ctx]);
    int best = 0;
    double best_u = -INFINITY;
    for (int a = 0; a < b->n_arms; a++) {
        const double u = s[a] / (double)n[a] + b->c * sqrt(ln / (double)n[a]);
        if (u > best_u)
            best_u = u, best = a;
    }
    return best;
}

float eex_bandit_threshold(const eex_bandit *b, int arm)
{
    return b && arm >= 0 && arm < b->n_arms ? b->arm[arm] : 1.0f;
}

void eex_bandit_update(eex_bandit *b, int ctx, int arm, double reward)
{
    if (!b || arm < 0 || arm >= b->n_arms || !isfinite(reward))
        return;
    if (ctx < 0 || ctx >= b->n_ctx)
        ctx = 0;
    b->plays[(size_t)ctx * (size_t)b->n_arms + (size_t)arm]++;
    b->sum[(size_t)ctx * (size_t)b->n_arms + (size_t)arm] += reward;
    b->total[ctx]++;
}

long eex_bandit_plays(const eex_bandit *b, int ctx, int arm)
{
    if (!b || ctx < 0 || ctx >= b->n_ctx || arm < 0 || arm >= b->n_arms)
        return 0;
    return b->plays[(size_t)ctx * (size_t)b->n_arms + (size_t)arm];
}

double eex_adaptive_reward(const float *conf, int last_edge, int final_index, int offloaded, double offload_cost)
{
    if (!offloaded)
        return 0.0;
    const double edge = last_edge >= 0 ? conf[last_edge] : 0.0;
    const double gain = (double)conf[final_index] - edge;
    return (gain > 0 ? gain : 0.0) - offload_cost;
}
