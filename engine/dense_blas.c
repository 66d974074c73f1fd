/* Dense layers through OpenBLAS (batched, float32 weights), for engine/exec.c.
 *
 * At a large batch a dense layer is a real GEMM, where OpenBLAS's cache
 * blocking beats the built-in kernel, which streams each weight panel once
 * per tile of rows. From EEX_DENSE_BLAS_MIN images such a layer runs as
 * cblas_sgemm on the
 * file's [m][k] weights; their pages, released after packing, fault back in,
 * so a process that takes this path holds both copies of those layers. The
 * pool splits the output columns in whole blocks of DENSE_BLAS_COLS, one
 * sgemm call per block on one OpenBLAS thread (set once for the process),
 * so results do not depend on the thread count. Off by default: on the Zen 3
 * (AVX2) machine it was measured no faster than the built-in kernel at batch
 * 64 (AlexNet-EE's 9216 -> 4096 layer: 96-107 ms both) and up to 2x slower
 * at batch 16 (docs/performance.md). */
#include <pthread.h>
#include <stdlib.h>

#include "../kernels/conv_fast.h"
#include "exec.h"

#ifndef EEX_NO_BLAS
#include <cblas.h>

#define DENSE_BLAS_COLS 512

static int dense_blas_min_batch(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("EEX_DENSE_BLAS_MIN");
        v = e && *e ? atoi(e) : 0;
        if (v <= 0)
            v = 1 << 30; /* unset or 0: never */
    }
    return v;
}

static void blas_one_thread(void) { openblas_set_num_threads(1); }

typedef struct dense_blas_job {
    int n, k, m;
    const float *x, *w, *bias;
    const eex_act_params *act;
    float *y;
} dense_blas_job;

static void dense_blas_task(void *arg, int t, int n)
{
    const dense_blas_job *j = arg;
    int64_t lo, hi;
    eex_split(j->m, t, n, DENSE_BLAS_COLS, &lo, &hi);
    for (int64_t c = lo; c < hi; c += DENSE_BLAS_COLS) {
        const int cols = hi - c < DENSE_BLAS_COLS ? (int)(hi - c) : DENSE_BLAS_COLS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, cols, j->k, 1.0f, j->x, j->k,
                    j->w + c * j->k, j->k, 0.0f, j->y + c, j->m);
        eex_bias_act(j->n, cols, j->m, j->bias ? j->bias + c : NULL, j->act, j->y + c);
    }
}

int eex_dense_uses_blas(const eex_exec_ctx *s, const eex_node *nd)
{
    return !nd->packed_half && nd->in[1].kind == EEX_OPND_CONST && s->batch >= dense_blas_min_batch();
}

void eex_run_dense_blas(const eex_exec_ctx *s, const eex_node *nd, const float *x, const float *bias, int k, int m,
                        float *y)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, blas_one_thread);
    dense_blas_job j = {.n = s->batch, .k = k, .m = m, .x = x, .w = eex_const_data(s->m, nd->in[1]),
                        .bias = bias, .act = &nd->act, .y = y};
    const int64_t blocks = (m + DENSE_BLAS_COLS - 1) / DENSE_BLAS_COLS;
    eex_pool_run(s->pool, eex_exec_tasks(s, 4 * (int64_t)k * m, blocks), dense_blas_task, &j);
}
#else
int eex_dense_uses_blas(const eex_exec_ctx *s, const eex_node *nd) { return (void)s, (void)nd, 0; }

void eex_run_dense_blas(const eex_exec_ctx *s, const eex_node *nd, const float *x, const float *bias, int k, int m,
                        float *y)
{
    (void)s, (void)nd, (void)x, (void)bias, (void)k, (void)m, (void)y;  /* eex_dense_uses_blas is 0 */
}
#endif
