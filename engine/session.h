/* The session's insides, shared by the plain executor (session.c), the
 * early-exit executor (ee_run.c) and the runs from a cut (partial.c). The run
 * state (ran, ee_ran, cut_ready, final_ready, done, nodes_executed) is
 * written by these three files only: offload/ finishes a network through
 * eex_session_run_from_cut and reads values, never the run state. */
#ifndef EEX_SESSION_H
#define EEX_SESSION_H

#include <stddef.h>

#include "eex.h"
#include "exec.h"
#include "graph.h"
#include "threadpool.h"

#define EEX_CUT_ALL (-2)

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
    uint64_t inputs_set;     /* bit i: input i holds data for the planned batch */
    int ran;
    int profiling;
    double *node_ms;
    eex_pool *pool;
    int nodes_executed;      /* by the last run of any kind */
    int ee_ran;              /* eex_session_run_all completed: exit probabilities readable */
    int cut_ready;           /* cut whose tensor is valid: its index, EEX_CUT_ALL, or -1 */
    int final_ready;         /* expert + 1 whose final logits a resume computed, or 0 */
    unsigned char *done;     /* per node: executed in the current early-exit run */
    /* adaptive policy (eex_session_set_adaptive): the bandit, and the
       context and arm of the last run until its reward is known */
    struct eex_bandit *bandit;
    int bandit_ctx, bandit_arm, bandit_pending;
};

/* Rewards the bandit's last choice from a finished result (edge answer, local
   run, or the cloud's answer after a cut); no-op when nothing is pending. */
void eex_session_adaptive_settle(eex_session *s, const eex_exit_result *r);

/* EEX_OK when every input in `mask` was set since the last re-plan. */
eex_status eex_session_need_inputs(const eex_session *s, uint64_t mask);

static inline float *eex_session_value(const eex_session *s, int v) { return (float *)(s->arena + s->offsets[v]); }

/* Copies between a value (NHWC, current batch) and logical NCHW floats. */
void eex_value_from_nchw(eex_session *s, int v, const float *data);
void eex_value_to_nchw(const eex_session *s, int v, float *dst);
/* Re-plans the arena for another batch size (forgets every input). */
eex_status eex_session_replan(eex_session *s, int batch);

/* The executor context for this session's current plan. */
eex_exec_ctx eex_session_ctx(const eex_session *s);
/* Runs the nodes of a set in order, counting them and (when profiling) timing them. */
void eex_session_run_nodes(eex_session *s, const eex_exec_ctx *ctx, const int *nodes, int n);

/* partial.c. Forgets the last run: no node done, no result readable. */
void eex_session_begin_run(eex_session *s);
/* A run from cut `cut`: n cut tensors (NCHW, back to back; the session is
 * re-planned for batch n when it differs), then the nodes after the cut for
 * the expert's final classifier and, with side_exits, the heads of every side
 * exit after the cut. Afterwards those classifiers' logits are readable
 * (eex_session_value of ee.logits, row b for image b) and so is the final's
 * through eex_session_exit_logits. Errors name `what`. */
eex_status eex_session_run_from_cut(eex_session *s, const char *what, int cut, const float *data, int n, int expert,
                                    int side_exits);

#endif
