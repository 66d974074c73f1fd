/* What `eex eval` records per image and totals per threshold setting
 * (eval.c), and the reports written from them (eval_report.c). */
#ifndef EEX_EVAL_REC_H
#define EEX_EVAL_REC_H

#include <stdio.h>

#include "eex.h"
#include "eval.h"
#include "metrics.h"

/* What one image left behind: enough to decide any threshold afterwards. */
typedef struct image_rec {
    int label, expert, det_class, kind;
    float conf[EEX_MAX_EXITS + 1];
    int pred[EEX_MAX_EXITS + 1];
    /* with --cloud: the real path at the highest threshold */
    int sent, degraded;      /* conf/pred from the cut on are the cloud's when sent && !degraded */
    double total_ms, offload_ms, edge_ms;
    size_t bytes;
    char reason[96];
    int edge_exits;          /* the exits before this image's cut (--cut auto: its own) */
    int planned;             /* --cut/--wire auto: plan holds its request's choice */
    eex_autoplan_step plan;
} image_rec;

typedef struct thr_stats {
    long exit_count[EEX_MAX_EXITS];
    long offload, edge_correct, cloud_correct, final_correct, degraded;
    outage_acc outage;
    deadline_acc deadline;
} thr_stats;

/* The cloud side of an evaluation (NULL without --cloud). */
typedef struct cloud_eval {
    eex_cloud_client *client;
    eex_session *s1;             /* batch 1: the real edge path */
    int cut, edge_exits;         /* the cut and the exits before it */
    char where[300];
    float t_max[EEX_MAX_EXITS + 1];
    long sent, degraded, path_mismatch, final_mismatch;
    double *total_ms, *offload_ms, *edge_ms;   /* per image, NaN when not sent */
    size_t bytes_sum, payload_sum;
    double json_bytes_sum;
    long json_samples;
    float *tensor;
    size_t tensor_cap;
    cli_auto autop;              /* --cut auto / --wire auto */
} cloud_eval;

/* The policy for one threshold setting t (one value per classifier) on one
 * recorded image: the exit taken (0-based side exit, or E when offloaded)
 * and the answer. eval_decide_cloud: with --cloud, ce exits on the edge;
 * *where 0 edge, 1 cloud, 2 degraded. */
int eval_decide(const image_rec *r, int E, const float *t, int *answer);
int eval_decide_cloud(const image_rec *r, int E, int ce, const float *t, int *answer, int *where);

/* Percentile q (0..1) of v[0..n) with linear interpolation (as numpy); sorts v. */
double eval_percentile(double *v, long n, double q);

/* One line of the --log JSONL for image `index` (every setting decided again). */
void eval_write_log(FILE *f, const eex_model *m, const eval_opts *o, long index, const image_rec *r, int E,
                    const cloud_eval *ce);
/* The summary on stdout: one JSON object with --json, else the text table.
 * ts: per setting; exit_correct: per classifier; conf_mat: the detector's
 * counts (row true_det, -1 for none); ce and thr_lat (median, p95 per
 * setting) only with --cloud. */
void eval_report(const eval_opts *o, const eex_model *m, long N, int E, const thr_stats *ts, const long *exit_correct,
                 const long conf_mat[EEX_MAX_CLASSES_DET][EEX_MAX_CLASSES_DET], int true_det, double secs,
                 const cloud_eval *ce, double (*thr_lat)[2]);

#endif
