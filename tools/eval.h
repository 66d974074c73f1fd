/* The evaluation loop behind `eex eval`. */
#ifndef EEX_EVAL_H
#define EEX_EVAL_H

#include <stdint.h>

#include "eex.h"
#include "idx.h"

#define EVAL_MAX_THRESHOLDS 32

typedef enum dist_kind { DIST_NONE = 0, DIST_BLUR, DIST_NOISE } dist_kind;

typedef struct eval_opts {
    const char *model, *dataset, *split, *expert_mode, *log, *dist_spec;
    dist_kind dist;
    double level;
    float thr[EVAL_MAX_THRESHOLDS];
    int n_thr;
    eex_metric metric;
    int limit, batch, threads, json, quiet;
    uint64_t seed;
    /* --cloud: offloaded images go through a real `eex serve` */
    const char *cloud, *cut;
    eex_wire wire;
    int deadline_ms;
    const char *key;       /* --key FILE: HMAC-authenticated frames, or NULL */
} eval_opts;

int eval_run(const eval_opts *o, const eex_model *m, const idx_array *images, const idx_array *labels);

#endif
