/* The evaluation loop behind `eex eval`. */
#ifndef EEX_EVAL_H
#define EEX_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "eex.h"
#include "idx.h"
#include "offload_auto.h"

#define EVAL_MAX_THRESHOLDS 32

typedef enum dist_kind { DIST_NONE = 0, DIST_BLUR, DIST_NOISE, DIST_MIX } dist_kind;

typedef struct eval_opts {
    const char *model, *dataset, *split, *val_index, *expert_mode, *log, *dist_spec;
    dist_kind dist;
    double level;
    double mix_blur, mix_noise;   /* --distortion mix:B,N: per image none, blur:B or noise:N */
    float thr[EVAL_MAX_THRESHOLDS];      /* setting t: a single p_tar, or ... */
    int thr_n[EVAL_MAX_THRESHOLDS];      /* ... 0, or the count of per-exit values in thv[t] */
    float thv[EVAL_MAX_THRESHOLDS][EEX_MAX_EXITS + 1];
    int n_thr;
    eex_metric metric;
    int limit, batch, threads, json, quiet;
    uint64_t seed;
    /* --cloud: offloaded images go through a real `eex serve` */
    const char *cloud, *cut;
    eex_wire wire;
    int deadline_ms;
    const char *key;       /* --key FILE: HMAC-authenticated frames, or NULL */
    int miss_deadline;     /* --deadline-ms given: report the missed-deadline probability */
    cli_auto_opts autop;   /* --cut auto / --wire auto */
    int outage_window;     /* W > 0: report the edge-inference outage probability */
    double outage_target;
    /* --adaptive: the UCB bandit picks p_tar per detected distortion; no labels */
    int adaptive;
    float cand[EEX_ADAPTIVE_MAX_ARMS];
    int n_cand;
    double offload_cost, exploration;
} eval_opts;

/* The distortion kind of image `index` of a mixed stream (0 none, 1 blur, 2 noise). */
int eval_mix_kind(uint64_t seed, uint64_t index);

/* labels is NULL with --adaptive (never read). */
/* "0.8" for a single threshold, "0.9/0.85/0.8" for per-exit ones. */
void eval_thr_name(const eval_opts *o, int t, char *buf, size_t cap);

int eval_run(eval_opts *o, const eex_model *m, const idx_array *images, const idx_array *labels);

#endif
