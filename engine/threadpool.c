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

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

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
 * docs/performance.md). It counts from when the worker runs out of tasks,
 * so a worker also sleeps while the caller finishes a long last task
 * (MobileNetV2 at 2 threads: ~15 sleeps per run). Counting from the end of
 * the region instead cut that to ~0.5 per run, but with other work on the
 * machine the extra spinning took the share of CPU the caller needed (Linux
 * autogroup shares CPU between sessions, not threads) and 2 threads ran
 * 1.2-1.5x slower than 1 beside a busy loop, so it was not kept. */
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
    /* 1 once a region has broadcast to the sleepers; back to 0 when a
     * worker goes to sleep. A woken worker stays counted in sleepers until
     * it runs again, which on a VM whose idle vCPU the host has to wake can
     * take several regions; each of them broadcast again (MobileNetV3-Small
     * at 2 threads: 822 wake-up calls of ~40 us for 272 sleeps). */
    atomic_int signalled;
    atomic_int stop;
    atomic_long st_sleeps; /* times a worker went to sleep (pool_account, EEX_POOL_STATS) */
    /* Linux: each worker's thread id (0 until it has started) and, opened by
     * the caller, its /proc/self/task/<tid>/schedstat, whose second field is
     * the time the thread has spent runnable but waiting for a CPU */
    atomic_int n_started;
    atomic_int *tids;
    int *sched_fd;
    long win_t0, win_rq0, win_sleeps0;
    /* the caller's own bookkeeping (only eex_pool_run's thread touches it):
     * see the comment on eex_pool_run */
    long win_wait, win_saved;
    int win_n;
    int solo_left, solo_len, fails;
    /* EEX_POOL_STATS=1: counters printed to stderr by eex_pool_free, to see
     * how much of a run actually ran in parallel (caller's thread only) */
    int stats;
    long st_single, st_solo, st_par, st_episodes, st_caller_tasks, st_tasks;
    long st_wait_ns, st_par_ns, st_solo_ns, st_hist[5], st_woke, st_woke_ns, st_gaps, st_last_end, st_queued;
};

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static unsigned long long gen_of(unsigned long long ticket) { return ticket >> 32; }

/* Runs tasks of generation gen until none is left; returns how many it ran. */
static int drain(eex_pool *p, unsigned long long gen)
{
    const job_slot *js = &p->slots[gen & 1];
    int ran = 0;
    for (;;) {
        unsigned long long t = atomic_load(&p->ticket);
        if (gen_of(t) != gen)
            return ran;
        const int i = (int)(t & 0xffffffffu);
        const int n = atomic_load_explicit(&js->n_tasks, memory_order_relaxed);
        if (i >= n)
            return ran;
        eex_task_fn fn = atomic_load_explicit(&js->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&js->arg, memory_order_relaxed);
        if (!atomic_compare_exchange_weak(&p->ticket, &t, t + 1))
            continue;
        fn(arg, i, n);
        atomic_fetch_add(&p->finished, 1);
        ran++;
    }
}

static void *worker(void *arg)
{
    eex_pool *p = arg;
    unsigned long long seen = 0;
#ifdef __linux__
    /* tids has room for every worker eex_pool_new may start */
    atomic_store(&p->tids[atomic_fetch_add(&p->n_started, 1)], (int)syscall(SYS_gettid));
#endif
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
                    atomic_store(&p->signalled, 0);
                    atomic_fetch_add_explicit(&p->st_sleeps, 1, memory_order_relaxed);
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
    p->tids = calloc((size_t)threads, sizeof *p->tids);
    p->sched_fd = malloc((size_t)threads * sizeof *p->sched_fd);
    if (!p->workers || !p->tids || !p->sched_fd) {
        free(p->workers), free(p->tids), free(p->sched_fd);
        free(p);
        return NULL;
    }
    for (int i = 0; i < threads; i++) {
        atomic_init(&p->tids[i], 0);
        p->sched_fd[i] = -1;
    }
    atomic_init(&p->n_started, 0);
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
    atomic_init(&p->signalled, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->st_sleeps, 0);
    const char *st = getenv("EEX_POOL_STATS");
    p->stats = st && *st && *st != '0';
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
    if (p->stats)
        fprintf(stderr,
                "eex pool: %d threads; regions: %ld one-task, %ld solo (%ld solo episodes, %.1f ms), "
                "%ld parallel (%.1f ms, of which %.1f ms waiting for workers after the caller ran out of tasks); "
                "caller ran %ld of %ld parallel tasks; windows by wait/saved <1/8 %ld, <1/4 %ld, <1/2 %ld, <1 %ld, >=1 %ld; "
                "%ld regions woke a sleeping worker (%.1f ms in the wake-up call); workers slept %ld times; %ld gaps > SPIN_NS between parallel regions; "
                "%ld windows failed by the workers' run-queue wait\n",
                p->threads, p->st_single, p->st_solo, p->st_episodes, p->st_solo_ns / 1e6, p->st_par,
                p->st_par_ns / 1e6, p->st_wait_ns / 1e6, p->st_caller_tasks, p->st_tasks, p->st_hist[0],
                p->st_hist[1], p->st_hist[2], p->st_hist[3], p->st_hist[4], p->st_woke, p->st_woke_ns / 1e6,
                atomic_load(&p->st_sleeps), p->st_gaps, p->st_queued);
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->threads - 1; i++)
        pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    for (int i = 0; i < p->threads - 1; i++)
        if (p->sched_fd[i] >= 0)
            close(p->sched_fd[i]);
    free(p->workers);
    free(p->tids);
    free(p->sched_fd);
    free(p);
}

int eex_pool_threads(const eex_pool *p) { return p ? p->threads : 1; }

/* When another process takes a core, a worker can be preempted in the
 * middle of a task; the caller then waits for it a scheduler time slice
 * (milliseconds) with nothing to do, region after region, and two threads
 * end up slower than one. So the caller compares, over windows of
 * PROBE_REGIONS parallel regions, what the workers cost it with what they
 * saved it. The cost: the time it spent waiting for them after it ran out
 * of tasks. The saving: the time the workers' tasks would have taken the
 * caller, at its own pace per task in the same region. (Counting the
 * wake-up call of a sleeping worker as cost too, 100-150 us per call on the
 * Zen 3 VM beside other work, sent MobileNetV2 alone on a quiet machine:
 * 2 threads 1.03x faster than 1 instead of 1.82x; docs/performance.md.)
 * When the cost passes half the saving, or (Linux) the workers waited for a
 * CPU more than a quarter of the window (workers_queued_ns), in two windows
 * in a row (pool_account), it runs the next solo_len regions alone, then
 * probes again, doubling solo_len (up to SOLO_MAX) while the probes keep
 * failing. Beside a busy loop the run-queue test keeps probes from passing
 * in a window in which the worker happened to get its slices (busy_core.py
 * 2T/1T on MobileNetV2, Zen 3: 0.95-1.36 without it, 1.00-1.13 with it).
 * Tasks compute the same thing whichever thread runs them, so this changes
 * no result.
 *
 * It used to compare the wait alone with an eighth of the regions' time. On
 * the Zen 3 at light load (load average 0.9) that fired on most runs:
 * MobileNetV2 ran 45% and ResNet-18 38% of their parallel regions alone at
 * --threads 2 (EEX_POOL_STATS=1), although the wait was 13% and 4% of their
 * parallel time: with 8 tasks of unequal size on 2 threads, the last task's
 * tail alone passes an eighth of a small region. Against the saving, a
 * quiet worker costs a fraction of what it saves (mostly under 1/8), a
 * preempted one milliseconds against tens of microseconds. */
#define PROBE_REGIONS 32
#define WAKE_ALLOW_NS 300000L /* run-queue wait forgiven per worker sleep (see pool_account) */
#define SOLO_MIN 256
#define SOLO_MAX 16384

/* The workers' total time runnable but not running (ns), from
 * /proc/self/task/<tid>/schedstat (Linux; -1 where it cannot be read). A
 * worker that waits for a CPU is a worker sharing its core with another
 * process: the clearest sign of a busy core, seen even in a window in which
 * it happened to get its time slices when the caller needed it. */
static long workers_queued_ns(eex_pool *p)
{
#ifdef __linux__
    long sum = 0;
    for (int i = 0; i < p->threads - 1; i++) {
        if (p->sched_fd[i] < 0) {
            const int tid = atomic_load(&p->tids[i]);
            char path[64];
            if (!tid || snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid) >= (int)sizeof path ||
                (p->sched_fd[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
                return -1;
        }
        char buf[96];
        const ssize_t n = pread(p->sched_fd[i], buf, sizeof buf - 1, 0);
        if (n <= 0)
            return -1;
        buf[n] = '\0';
        char *end;
        (void)strtoull(buf, &end, 10); /* time on a CPU */
        sum += (long)strtoull(end, NULL, 10);
    }
    return sum;
#else
    (void)p;
    return -1;
#endif
}

static void pool_account(eex_pool *p, long t_end, long wait, long saved)
{
    p->win_wait += wait;
    p->win_saved += saved;
    if (++p->win_n < PROBE_REGIONS)
        return;
    if (p->stats) {
        /* windows by wait / saved: < 1/8, < 1/4, < 1/2, < 1, >= 1 */
        const long w = p->win_wait, sv = p->win_saved > 0 ? p->win_saved : 1;
        p->st_hist[w * 8 < sv ? 0 : w * 4 < sv ? 1 : w * 2 < sv ? 2 : w < sv ? 3 : 4]++;
    }
    /* or the workers waited for a CPU more than a quarter of the window
     * (beside a busy loop about half). A sleeping worker's wake-up counts as
     * waiting too, up to a few hundred us on a VM whose idle vCPU the host
     * has to wake: without an allowance per sleep MobileNetV3-Small, whose
     * workers sleep between its short regions, ran a third of its regions
     * alone on a quiet machine. */
    const long rq = p->win_rq0 >= 0 ? workers_queued_ns(p) : -1;
    const long woken = atomic_load_explicit(&p->st_sleeps, memory_order_relaxed) - p->win_sleeps0;
    const long excess = rq >= 0 ? rq - p->win_rq0 - woken * WAKE_ALLOW_NS : 0;
    const int queued = excess * 4 > (t_end - p->win_t0) * (long)(p->threads - 1);
    p->st_queued += queued;
    const int failed = p->win_wait * 2 > p->win_saved || queued;
    /* a first failure out of parallel running needs a second in a row: one
     * preemption (another process waking for a moment) costs one time slice
     * once, and 256 regions alone for it would cost far more; a busy core
     * fails window after window */
    p->fails = failed ? p->fails + 1 : 0;
    if (failed && (p->solo_len || p->fails >= 2)) {
        p->solo_len = p->solo_len ? (p->solo_len * 2 < SOLO_MAX ? p->solo_len * 2 : SOLO_MAX) : SOLO_MIN;
        p->solo_left = p->solo_len;
        p->st_episodes++;
    } else
        p->solo_len = 0;
    p->win_wait = p->win_saved = 0;
    p->win_n = 0;
}

void eex_pool_run(eex_pool *p, int n_tasks, eex_task_fn fn, void *arg)
{
    if (n_tasks <= 0)
        return;
    if (!p || n_tasks == 1 || (p->solo_left > 0 && p->solo_left--)) {
        const long t0 = p && p->stats ? now_ns() : 0;
        for (int t = 0; t < n_tasks; t++)
            fn(arg, t, n_tasks);
        if (p && p->stats) {
            if (n_tasks == 1)
                p->st_single++;
            else {
                p->st_solo++;
                p->st_solo_ns += now_ns() - t0;
            }
        }
        return;
    }
    const long t_start = now_ns();
    if (p->stats && p->st_last_end && t_start - p->st_last_end > SPIN_NS)
        p->st_gaps++;
    if (p->win_n == 0) {
        p->win_t0 = t_start;
        p->win_rq0 = workers_queued_ns(p);
        p->win_sleeps0 = atomic_load_explicit(&p->st_sleeps, memory_order_relaxed);
    }
    const unsigned long long gen = gen_of(atomic_load(&p->ticket)) + 1;
    job_slot *js = &p->slots[gen & 1];
    atomic_store_explicit(&js->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&js->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&js->n_tasks, n_tasks, memory_order_relaxed);
    atomic_store(&p->finished, 0);
    atomic_store(&p->ticket, gen << 32); /* publishes the slot */
    /* a sleeper is woken once per sleep: a worker still waking from an
     * earlier broadcast sees this generation when it gets there (it waits
     * on the generation, not on a signal) */
    const int woke = atomic_load(&p->sleepers) > 0 && !atomic_exchange(&p->signalled, 1);
    if (woke) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    const long t_woken = woke ? now_ns() : t_start;
    const int mine = drain(p, gen);
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
    if (p->stats) {
        p->st_last_end = t_end;
        p->st_par++;
        p->st_tasks += n_tasks;
        p->st_caller_tasks += mine;
        p->st_wait_ns += t_end - t_drained;
        if (woke) {
            p->st_woke++;
            p->st_woke_ns += t_woken - t_start;
        }
        p->st_par_ns += t_end - t_start;
    }
    /* the workers ran n_tasks - mine tasks; at the caller's own pace in this
     * region that is what they saved it (all of the region if it ran none) */
    const long saved = mine > 0 ? (long)((double)(t_drained - t_woken) * (n_tasks - mine) / mine) : t_end - t_start;
    pool_account(p, t_end, t_end - t_drained, saved);
}
