/* The UCB1 bandit behind the adaptive policy (public API in eex.h). */
#ifndef EEX_BANDIT_H
#define EEX_BANDIT_H

#include "eex.h"

struct eex_bandit {
    int n_arms, n_ctx;
    float arm[EEX_ADAPTIVE_MAX_ARMS];
    double offload_cost, c;
    long *plays;     /* n_ctx x n_arms */
    double *sum;     /* n_ctx x n_arms rewards */
    long *total;     /* n_ctx */
};

#endif
