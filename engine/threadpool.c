#include "threadpool.h"

#include <pthread.h>
#include <stdlib.h>

struct eex_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* the current job; generation changes once per eex_pool_run */
    eex_task_fn fn;
    void *arg;
    int n_tasks, next_task, pending;
    unsigned long generation;
    int stop;
};

/* Takes tasks until none are left; returns with the lock held. */
static void drain(eex_pool *p)
{
    while (p->next_task < p->n_tasks) {
        const int t = p->next_task++;
        pthread_mutex_unlock(&p->mu);
        p->fn(p->arg, t, p->n_tasks);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_broadcast(&p->done);
    }
}

static void *worker(void *arg)
{
    eex_pool *p = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        drain(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
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
    pthread_cond_init(&p->done, NULL);
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
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->threads - 1; i++)
        pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p);
}

int eex_pool_threads(const eex_pool *p) { return p ? p->threads : 1; }

void eex_pool_run(eex_pool *p, int n_tasks, eex_task_fn fn, void *arg)
{
    if (n_tasks <= 0)
        return;
    if (!p || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(arg, t, n_tasks);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    p->next_task = 0;
    p->pending = n_tasks;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    drain(p);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
