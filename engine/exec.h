/* The node executor shared by every way of running a graph (full run, run
 * to an exit, run from a cut). */
#ifndef EEX_EXEC_H
#define EEX_EXEC_H

#include <stddef.h>
#include <stdint.h>

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

/* 1 when `node`, a depthwise conv marked pw_next, and the pointwise conv
 * after it run as one in this context (fast kernels, EEX_FUSE not 0, a
 * depthwise output too large for L2): then eex_exec_dw_pw(ctx, node,
 * node + 1) computes the second's output without writing the first's. */
int eex_exec_fuses(const eex_exec_ctx *ctx, const eex_node *node);
void eex_exec_dw_pw(const eex_exec_ctx *ctx, const eex_node *dw, const eex_node *pw);
/* How many pool tasks a node touching `bytes` over `units` independent
 * pieces is split into (1: the calling thread alone). */
int eex_exec_tasks(const eex_exec_ctx *ctx, int64_t bytes, int64_t units);

/* dense_blas.c: whether a dense node runs as cblas_sgemm in this context
 * (EEX_DENSE_BLAS_MIN; never without BLAS), and that run. */
int eex_dense_uses_blas(const eex_exec_ctx *ctx, const eex_node *node);
void eex_run_dense_blas(const eex_exec_ctx *ctx, const eex_node *node, const float *x, const float *bias, int k, int m,
                        float *y);

/* What the fast path runs for a node: "fast" (a kernel of the CPU's SIMD
 * table), "copy" (data movement, no arithmetic) or "ref" (a scalar reference
 * kernel: no fast twin yet; `eex bench` lists these). */
const char *eex_node_kernel_kind(const eex_node *node);
/* The kernel a conv or dense node runs with in this context ("winograd_f4x4",
 * "gemm_1x1", "gemm_indirect", "dw3x3_s1", ..., "gemm", "gemv_f16",
 * "sgemm_blas", "ref"); other nodes: eex_node_kernel_kind. */
const char *eex_node_kernel_name(const eex_exec_ctx *ctx, const eex_node *node);

#endif
