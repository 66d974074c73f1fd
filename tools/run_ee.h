/* `eex run` on an early-exit model: the policy run and its report. */
#ifndef EEX_RUN_EE_H
#define EEX_RUN_EE_H

#include "eex.h"
#include "offload_auto.h"

typedef struct run_opts {
    const char *model, *image;
    const char *in[16], *out[16];
    int n_in, n_out;
    int top, json, threads;
    eex_kernels kernels;
    float threshold;       /* < 0: the model's default, else 0.8 */
    float thresholds[EEX_MAX_EXITS + 1];  /* --thresholds: per exit (n_thresholds values) */
    int n_thresholds;
    const char *expert;    /* NULL: auto when a detector exists */
    eex_metric metric;
    const char *cut;       /* NULL: run to the end locally (with --cloud: the last cut) */
    const char *cloud;     /* HOST:PORT of an `eex serve`, or NULL */
    eex_wire wire;
    int deadline_ms;       /* 0: the client's default */
    const char *key;       /* --key FILE: HMAC-authenticated frames, or NULL */
    cli_auto_opts autop;   /* --cut auto / --wire auto (with --cloud) */
} run_opts;

/* The image is already set on the session. */
int run_ee(const run_opts *o, const eex_model *m, eex_session *s);

/* Resolves --expert / --cut against the model (shared with eval and bench). */
int resolve_expert(const char *cmd, const eex_model *m, const char *name, int *expert);
int resolve_cut(const char *cmd, const eex_model *m, const char *spec, int *cut);

#endif
