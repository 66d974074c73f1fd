/* The session's insides, shared by the plain executor (session.c) and the
 * early-exit executor (ee_run.c). */
#ifndef EEX_SESSION_H
#define EEX_SESSION_H

#include <stddef.h>

#include "eex.h"
#include "exec.h"
#include "graph.h"
#include "threadpool.h"

struct eex_session {
    const eex_model *m;
    eex_kernels kernels;
    int threads;
    int batch;               /* batch the arena is planned for */
    unsigned char *arena;
    size_t arena_bytes;
    size_t *offsets;         /* per value */
    float *scratch;          /* im2col patches of one image, largest conv */
    size_t scratch_floats;
    int input_set;
    int ran;
    int profiling;
    double *node_ms;
    eex_pool *pool;
    int nodes_executed;      /* by the last run of any kind */
    int ee_ran;              /* eex_session_run_all completed: exit probabilities readable */
    int cut_ready;           /* bitmask-free: index of the cut whose tensor is valid, or -1 */
};

static inline float *eex_session_value(const eex_session *s, int v) { return (float *)(s->arena + s->offsets[v]); }

/* The executor context for this session's current plan. */
eex_exec_ctx eex_session_ctx(const eex_session *s);
/* Runs the nodes of a set in order, counting them and (when profiling) timing them. */
void eex_session_run_nodes(eex_session *s, const eex_exec_ctx *ctx, const int *nodes, int n);

#endif
