/* The node executor shared by every way of running a graph (full run, run
 * to an exit, run from a cut). */
#ifndef EEX_EXEC_H
#define EEX_EXEC_H

#include <stddef.h>

#include "graph.h"
#include "threadpool.h"

typedef struct eex_exec_ctx {
    const eex_model *m;
    int batch;
    unsigned char *arena;    /* activation arena of the session */
    const size_t *offsets;   /* byte offset of each value in the arena */
    float *scratch;          /* per-session scratch (im2col patches), per thread */
    size_t scratch_floats;   /* floats of scratch each thread may use */
    eex_kernels kernels;
    eex_pool *pool;          /* NULL: single-threaded */
} eex_exec_ctx;

void eex_exec_node(const eex_exec_ctx *ctx, const eex_node *node);

#endif
