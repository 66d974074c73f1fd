/* The pool behind eex_pool_run. A run of MobileNetV2 is ~100 parallel
 * regions of 20-500 us each, so waking sleeping threads through a condition
 * variable for each one (several us per wake-up, more on a busy machine)
 * would eat a large share of the gain. Workers therefore spin on a
 * generation counter for a short while after each region and only then sleep
 * on the condition variable; the caller takes tasks too and spins for the
 * last ones to finish, and runs regions alone for a while when waiting for
 * the workers costs more than they save (another process on a core; see
 * eex_pool_run). */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle worker spins before it sleeps. Long enough to bridge the
 * gap between two nodes, short enough not to burn a core between runs or
 * take much from another process on a shared core (300 us before; 50 us
 * measured no worse alone and better beside a busy loop, see
 * docs/performance.md). */
#define SPIN_NS 50000L

/* One job's description. Two slots alternate by generation so that a worker
 * still looking at the previous job never reads fields being rewritten. */
typedef struct job_slot {
    _Atomic(eex_task_fn) fn;
    _Atomic(void *) arg;
    atomic_int n_tasks;
} job_slot;

struct eex_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    job_slot slots[2];
    /* generation << 32 | next task index: taking a task is one CAS that also
     * proves the job is still current, so a late worker cannot take a task
     * of a job that is over */
    atomic_ullong ticket;
    atomic_int finished;
    atomic_int sleepers;
    atomic_int stop;
    /* the caller's own bookkeeping (only eex_pool_run's thread touches it):
     * see the comment on eex_pool_run */
    long win_wait, win_total;
    int win_n;
    int solo_left, solo_len;
};

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static unsigned long long gen_of(unsigned long long ticket) { return ticket >> 32; }

static void drain(eex_pool *p, unsigned long long gen)
{
    const job_slot *js = &p->slots[gen & 1];
    for (;;) {
        unsigned long long t = atomic_load(&p->ticket);
        if (gen_of(t) != gen)
            return;
        const int i = (int)(t & 0xffffffffu);
        const int n = atomic_load_explicit(&js->n_tasks, memory_order_relaxed);
        if (i >= n)
            return;
        eex_task_fn fn = atomic_load_explicit(&js->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&js->arg, memory_order_relaxed);
        if (!atomic_compare_exchange_weak(&p->ticket, &t, t + 1))
            continue;
        fn(arg, i, n);
        atomic_fetch_add(&p->finished, 1);
    }
}

static void *worker(void *arg)
{
    eex_pool *p = arg;
    unsigned long long seen = 0;
    for (;;) {
        /* spin, then sleep, until a new generation or stop */
        long deadline = 0;
        for (unsigned spins = 0;; spins++) {
            if (atomic_load(&p->stop))
                return NULL;
            if (gen_of(atomic_load(&p->ticket)) != seen)
                break;
            cpu_relax();
            if ((spins & 255) == 255) {
                const long t = now_ns();
                if (!deadline)
                    deadline = t + SPIN_NS;
                else if (t > deadline) {
                    pthread_mutex_lock(&p->mu);
                    atomic_fetch_add(&p->sleepers, 1);
                    /* re-checked under the lock: eex_pool_run broadcasts under it */
                    while (!atomic_load(&p->stop) && gen_of(atomic_load(&p->ticket)) == seen)
                        pthread_cond_wait(&p->wake, &p->mu);
                    atomic_fetch_sub(&p->sleepers, 1);
                    pthread_mutex_unlock(&p->mu);
                    deadline = 0;
                }
            }
        }
        seen = gen_of(atomic_load(&p->ticket));
        drain(p, seen);
    }
}

eex_pool *eex_pool_new(int threads)
{
    if (threads <= 1)
        return NULL;
    eex_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->workers = calloc((size_t)threads, sizeof *p->workers);
    if (!p->workers) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (int i = 0; i < 2; i++) {
        atomic_init(&p->slots[i].fn, NULL);
        atomic_init(&p->slots[i].arg, NULL);
        atomic_init(&p->slots[i].n_tasks, 0);
    }
    atomic_init(&p->ticket, 0);
    atomic_init(&p->finished, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    p->threads = 1;
    for (int i = 0; i < threads - 1; i++) {
        if (pthread_create(&p->workers[i], NULL, worker, p) != 0)
            break;
        p->threads++;
    }
    return p;
}

void eex_pool_free(eex_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->threads - 1; i++)
        pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p->workers);
    free(p);
}

int eex_pool_threads(const eex_pool *p) { return p ? p->threads : 1; }

/* When another process takes a core, a worker can be preempted in the
 * middle of a task; the caller then waits for it a scheduler time slice
 * (milliseconds) with nothing to do, region after region, and two threads
 * end up slower than one. So the caller measures, over windows of
 * PROBE_REGIONS regions, how much of their time it spent waiting for the
 * workers after it ran out of tasks; past an eighth (normally it is a few
 * percent: the tail of the last task), it runs the next solo_len regions
 * alone, then probes again, doubling solo_len (up to SOLO_MAX) while the
 * probes keep failing. Tasks compute the same thing whichever thread runs
 * them, so this changes no result. */
#define PROBE_REGIONS 32
#define SOLO_MIN 256
#define SOLO_MAX 16384

static void pool_account(eex_pool *p, long wait, long total)
{
    p->win_wait += wait;
    p->win_total += total;
    if (++p->win_n < PROBE_REGIONS)
        return;
    if (p->win_wait * 8 > p->win_total) {
        p->solo_len = p->solo_len ? (p->solo_len * 2 < SOLO_MAX ? p->solo_len * 2 : SOLO_MAX) : SOLO_MIN;
        p->solo_left = p->solo_len;
    } else
        p->solo_len = 0;
    p->win_wait = p->win_total = 0;
    p->win_n = 0;
}

void eex_pool_run(eex_pool *p, int n_tasks, eex_task_fn fn, void *arg)
{
    if (n_tasks <= 0)
        return;
    if (!p || n_tasks == 1 || (p->solo_left > 0 && p->solo_left--)) {
        for (int t = 0; t < n_tasks; t++)
            fn(arg, t, n_tasks);
        return;
    }
    const long t_start = now_ns();
    const unsigned long long gen = gen_of(atomic_load(&p->ticket)) + 1;
    job_slot *js = &p->slots[gen & 1];
    atomic_store_explicit(&js->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&js->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&js->n_tasks, n_tasks, memory_order_relaxed);
    atomic_store(&p->finished, 0);
    atomic_store(&p->ticket, gen << 32); /* publishes the slot */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    drain(p, gen);
    const long t_drained = now_ns();
    /* The last tasks are running on workers. If one of them was preempted
     * (more runnable threads than cores), yielding lets it back onto this
     * core instead of spinning through the rest of our time slice. */
    for (unsigned spins = 0; atomic_load(&p->finished) < n_tasks; spins++) {
        if (spins < 2048)
            cpu_relax();
        else
            sched_yield();
    }
    const long t_end = now_ns();
    pool_account(p, t_end - t_drained, t_end - t_start);
}
