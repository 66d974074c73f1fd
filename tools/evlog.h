/* Reading the per-image JSONL log that `eex eval --log` writes, for the
 * offline tools (`eex thresholds`, `eex plan --log`). Only the fields they need are
 * kept; every line is parsed whole, so a truncated or malformed line is an
 * error that names its line number. */
#ifndef EEX_EVLOG_H
#define EEX_EVLOG_H

#include <stddef.h>

#include "eex.h"

#define EVLOG_MAX_SETTINGS 32          /* threshold settings of one eval (EVAL_MAX_THRESHOLDS) */

typedef struct evlog_rec {
    long index;
    int label;                       /* -1 when the log has none */
    int context;                     /* detector class index in evlog.contexts, -1 for null */
    float conf[EEX_MAX_EXITS + 1];   /* exits 1..E, then the final */
    int pred[EEX_MAX_EXITS + 1];
    int answer[EVLOG_MAX_SETTINGS];  /* the "answer" of each of evlog.settings, -1 when absent */
} evlog_rec;

typedef struct evlog {
    evlog_rec *r;
    long n;
    int exits;                       /* E (side exits): each line has E + 1 confidences */
    char contexts[EEX_MAX_CLASSES_DET][32];
    int n_contexts;
    char settings[EVLOG_MAX_SETTINGS][24];  /* the keys of "answer" ("0.8", "0.9/0.85"), first seen first */
    int n_settings;
} evlog;

/* 0, or -1 with "PATH:LINE: what" in err. need_labels: a line without a
 * "label" is an error. */
int evlog_read(const char *path, int need_labels, evlog *out, char *err, size_t errlen);
void evlog_free(evlog *log);

#endif
