/* `eex eval --adaptive`: the stream decided by the UCB bandit (eex_bandit,
 * the same one eex_session_set_adaptive gives a session) from the recorded
 * confidences, with no labels. Regret is measured in the bandit's own
 * label-free reward against the best fixed candidate per context in
 * hindsight; the regret against a threshold chosen with labels needs the
 * labels and is computed from the log (bench/experiments/thresholds.py). */
#ifndef EEX_EVAL_ADAPTIVE_H
#define EEX_EVAL_ADAPTIVE_H

#include <stdio.h>

#include "eval.h"

typedef struct adaptive_run adaptive_run;

int adaptive_new(const eval_opts *o, const eex_model *m, long n_images, adaptive_run **out);
/* One image in stream order: its confidences/predictions (E + 1) and detector class. */
void adaptive_image(adaptive_run *a, long index, const float *conf, const int *pred, int det_class, int expert,
                    int kind, FILE *log);
void adaptive_report(const adaptive_run *a, double secs);
void adaptive_free(adaptive_run *a);

#endif
