/* A fixed pool of worker threads for data-parallel loops inside one node.
 * The calling thread takes part, so a pool of N threads starts N-1 workers.
 * Splitting is static and deterministic: task t always covers the same range,
 * so results do not depend on scheduling. */
#ifndef EEX_THREADPOOL_H
#define EEX_THREADPOOL_H

#include <stdint.h>

typedef struct eex_pool eex_pool;

/* fn(arg, task, n_tasks) runs once per task in [0, n_tasks). */
typedef void (*eex_task_fn)(void *arg, int task, int n_tasks);

/* NULL when threads <= 1 (everything then runs on the caller) or on failure. */
eex_pool *eex_pool_new(int threads);
void eex_pool_free(eex_pool *pool);
int eex_pool_threads(const eex_pool *pool);  /* 1 for NULL */

/* Runs n_tasks tasks across the pool and returns when all are done. */
void eex_pool_run(eex_pool *pool, int n_tasks, eex_task_fn fn, void *arg);

/* The part [*lo, *hi) of [0, n) that task `t` of `tasks` covers, in multiples of `align`. */
static inline void eex_split(int64_t n, int t, int tasks, int64_t align, int64_t *lo, int64_t *hi)
{
    const int64_t blocks = (n + align - 1) / align;
    const int64_t b0 = blocks * t / tasks, b1 = blocks * (t + 1) / tasks;
    *lo = b0 * align < n ? b0 * align : n;
    *hi = b1 * align < n ? b1 * align : n;
}

#endif
