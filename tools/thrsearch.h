/* Choosing per-exit thresholds offline from an `eex eval --log` (the search
 * behind `eex thresholds`). The policy is eval's: exit k answers when its
 * confidence > t[k]; an image no side exit answers is offloaded and the final
 * classifier answers if its confidence > t[E-1] (the final takes the last
 * exit's threshold), else the most confident classifier. */
#ifndef EEX_THRSEARCH_H
#define EEX_THRSEARCH_H

#include <stdint.h>

#include "evlog.h"

typedef enum thr_objective { OBJ_MAX_ACCURACY, OBJ_MIN_OFFLOAD, OBJ_MIN_LATENCY } thr_objective;

typedef struct thr_costs {
    int have;                        /* exit_ms and offload_ms given */
    double exit_ms[EEX_MAX_EXITS];   /* edge time to answer at exit k (eex bench --exits) */
    double offload_ms;               /* added for an offloaded image (RTT + cloud) */
} thr_costs;

typedef struct thr_point {
    float t[EEX_MAX_EXITS];
    long correct, offload, n;
    double latency_ms;               /* mean per image (0 without costs) */
} thr_point;

typedef struct thr_search_opts {
    thr_objective obj;
    double budget;                   /* max-accuracy: P(offload) <= budget */
    double floor;                    /* min-offload, min-latency: accuracy >= floor */
    int grid;                        /* candidates per exit; 0 = every observed value (exact) */
    thr_costs costs;
} thr_search_opts;

typedef struct thr_search_result {
    thr_point best, single;          /* per-exit and best single p_tar (t[k] all equal) */
    int found, single_found;
    long evaluated;                  /* per-exit vectors evaluated */
    int grid_size[EEX_MAX_EXITS];
    int exact;                       /* 1: every observed value was a candidate */
    thr_point *front_off;            /* accuracy vs P(offload), ascending offload */
    long n_front_off;
    thr_point *front_lat;            /* accuracy vs latency, ascending latency (with costs) */
    long n_front_lat;
} thr_search_result;

/* 0, or -1 with a message. */
int thr_search(const evlog *log, const thr_search_opts *o, thr_search_result *res, char *err, size_t errlen);
void thr_search_free(thr_search_result *res);

/* The figures of vector t on a log. */
void thr_eval(const evlog *log, const float *t, const thr_costs *c, thr_point *out);

/* Bootstrap (B resamples of the images, seeded) 95% percentile intervals of
 * accuracy, P(offload) and mean latency for vector t: ci[q] = {lo, hi}. */
int thr_bootstrap(const evlog *log, const float *t, const thr_costs *c, int B, uint64_t seed, double ci[3][2]);

/* Paired bootstrap (the same resampled images for both) 95% interval of the
 * accuracy of vector a minus that of vector b; *diff the point estimate. */
int thr_bootstrap_gain(const evlog *log, const float *a, const float *b, int B, uint64_t seed, double *diff,
                       double ci[2]);

#endif
