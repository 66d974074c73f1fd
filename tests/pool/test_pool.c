/* The thread pool under stress (engine/threadpool.c): regions of 1-24 tasks of
 * unequal length, with pauses between some of them longer than the workers'
 * spin (so they sleep and must be woken) and bursts of back-to-back regions
 * (so a worker still waking from one broadcast meets the next region).
 * Every task of every region must run exactly once, with the region's task
 * count, before eex_pool_run returns. No Criterion: it runs under
 * ThreadSanitizer too (`make test-tsan`), which Criterion cannot start under.
 *
 *   test_pool [REGIONS]   (default 4000 per thread count) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../../engine/threadpool.h"

#define MAX_TASKS 24

typedef struct region {
    atomic_int hits[MAX_TASKS];
    atomic_int bad_n;
    int n, spin;
    pthread_t caller;
} region;

/* tasks run by a worker (not the caller) since the first long pause: a
 * worker that slept through it must have been woken for later regions */
static atomic_long worker_tasks;
static int counting;

static void task(void *arg, int t, int n)
{
    region *r = arg;
    if (n != r->n || t < 0 || t >= n) {
        atomic_fetch_add(&r->bad_n, 1);
        return;
    }
    /* unequal tasks: some threads finish early and go looking for more */
    volatile unsigned x = 0;
    for (int i = 0; i < r->spin * (t % 3 + 1); i++)
        x += (unsigned)i;
    atomic_fetch_add(&r->hits[t], 1);
    if (counting && !pthread_equal(pthread_self(), r->caller))
        atomic_fetch_add(&worker_tasks, 1);
}

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static unsigned next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)(rng >> 32);
}

static void pause_us(long us)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    const int regions = argc > 1 ? atoi(argv[1]) : 4000;
    if (regions < 1) {
        fprintf(stderr, "usage: test_pool [REGIONS >= 1]\n");
        return 2;
    }
    int failures = 0;
    if (eex_pool_new(1) != NULL || eex_pool_threads(NULL) != 1) {
        fprintf(stderr, "FAIL  a pool of 1 thread is NULL and counts 1 thread\n");
        failures++;
    }
    for (int threads = 2; threads <= 4; threads++) {
        eex_pool *p = eex_pool_new(threads);
        if (!p || eex_pool_threads(p) != threads) {
            fprintf(stderr, "FAIL  pool of %d threads: %s\n", threads, p ? "wrong thread count" : "not created");
            failures++;
            eex_pool_free(p);
            continue;
        }
        int bad_regions = 0;
        long tasks = 0;
        counting = 0;
        atomic_store(&worker_tasks, 0);
        for (int i = 0; i < regions; i++) {
            region r;
            r.n = 1 + (int)(next() % MAX_TASKS);
            r.spin = (int)(next() % 2000);
            atomic_init(&r.bad_n, 0);
            r.caller = pthread_self();
            for (int t = 0; t < MAX_TASKS; t++)
                atomic_init(&r.hits[t], 0);
            eex_pool_run(p, r.n, task, &r);
            int ok = atomic_load(&r.bad_n) == 0;
            for (int t = 0; t < MAX_TASKS; t++)
                ok &= atomic_load(&r.hits[t]) == (t < r.n ? 1 : 0);
            bad_regions += !ok;
            tasks += r.n;
            /* one region in 8 is followed by a pause past the workers'
             * spin (50 us), one in 64 by a long one; the rest back to back */
            const unsigned u = next() % 64;
            if (u == 0) {
                pause_us(2000);
                counting = 1; /* set by the caller between regions: no task is running */
            }
            else if (u < 8)
                pause_us(60 + (long)(next() % 300));
        }
        eex_pool_free(p);
        const long by_workers = atomic_load(&worker_tasks);
        if (!by_workers) {
            fprintf(stderr, "FAIL  %d threads: after the first 2 ms pause no worker ran a task (never woken?)\n",
                    threads);
            failures++;
        }
        if (bad_regions) {
            fprintf(stderr, "FAIL  %d threads: %d of %d regions ran a task twice, not at all or with the wrong count\n",
                    threads, bad_regions, regions);
            failures++;
        } else if (by_workers)
            printf("ok    %d threads: %d regions, %ld tasks, each run exactly once (%ld by workers after a sleep)\n",
                   threads, regions, tasks, by_workers);
    }
    printf("test_pool: %d failed\n", failures);
    return failures ? 1 : 0;
}
