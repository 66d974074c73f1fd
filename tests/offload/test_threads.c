/* The server and its clients in one process, for the thread sanitizer (and
 * every other build): a server thread (I/O thread + 2 workers, batching,
 * a key), 8 client threads each with its own eex_cloud_client sending cut
 * tensors of two cuts, a thread reading the statistics all along, and
 * eex_server_stop from the main thread, first after the load, then with
 * clients still sending. Every answer must equal eex_offload_resume of the
 * same tensor here, bit for bit.
 *
 * Not a Criterion test: Criterion cannot start under ThreadSanitizer
 * (github.com/Snaipe/Criterion/issues/274). Exit status 0 when all passed.
 *
 *   EEX_TEST_MODEL=build/ee/tiny.eex test_threads */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../offload/offload.h"
#include "eex.h"

#define CLIENTS 8
#define REQUESTS 150
#define POOL 6

static eex_model *M;
static eex_server *S;
static int CUTS[2];
static float *T[2][POOL];
static int64_t SHAPE[2][EEX_MAX_RANK];
static int RANK[2];
static eex_cloud_answer WANT[2][POOL];
static const char KEY[] = "tsan-test-key-0123456789abcdef";
static atomic_int failures, answered, io_failures, stop_watch;

#define FAIL(...) (fprintf(stderr, "FAIL  " __VA_ARGS__), fputc('\n', stderr), atomic_fetch_add(&failures, 1))

static void *serve_main(void *arg)
{
    (void)arg;
    if (eex_server_run(S))
        FAIL("eex_server_run: %s", eex_last_error());
    return NULL;
}

static void *watch_main(void *arg)
{
    (void)arg;
    uint64_t last = 0;
    while (!atomic_load(&stop_watch)) {
        eex_server_stats st;
        eex_server_xstats xs;
        eex_server_get_stats(S, &st);
        eex_server_get_xstats(S, &xs);
        if (st.requests < last)
            FAIL("stats went back: %llu after %llu", (unsigned long long)st.requests, (unsigned long long)last);
        last = st.requests;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

typedef struct client_arg {
    int id, requests, tolerate_io;
} client_arg;

static void *client_main(void *arg)
{
    const client_arg *a = arg;
    eex_cloud_client *c;
    eex_cloud_opts o = {.deadline_ms = 20000, .retry_ms = -1};
    if (eex_cloud_client_new(M, "127.0.0.1", eex_server_port(S), &o, &c) ||
        eex_cloud_client_set_key(c, KEY, sizeof KEY - 1)) {
        FAIL("client %d: %s", a->id, eex_last_error());
        return NULL;
    }
    for (int r = 0; r < a->requests; r++) {
        const int k = (a->id + r) % 2, i = (a->id * 3 + r) % POOL;
        eex_cloud_answer ans;
        eex_offload_info info;
        const eex_status st = eex_cloud_client_send(c, CUTS[k], 0, EEX_METRIC_MAXPROB, 0.5f, T[k][i], SHAPE[k], RANK[k],
                                                    &ans, &info);
        if (st) {
            if (a->tolerate_io && (st == EEX_ERR_IO || st == EEX_ERR_STATE)) {
                atomic_fetch_add(&io_failures, 1);
                break;  /* the server is going away */
            }
            FAIL("client %d request %d: %s", a->id, r, info.reason);
            continue;
        }
        const eex_cloud_answer *w = &WANT[k][i];
        if (ans.n != w->n || ans.exit != w->exit || ans.cls != w->cls ||
            memcmp(ans.confidences, w->confidences, sizeof(float) * (size_t)w->n) ||
            memcmp(ans.classes, w->classes, sizeof(int) * (size_t)w->n))
            FAIL("client %d request %d: the answer differs from a local resume", a->id, r);
        atomic_fetch_add(&answered, 1);
    }
    eex_cloud_client_free(c);
    return NULL;
}

static int start_server(void)
{
    eex_server_opts so = {.threads = 2, .max_conns = 64};
    if (eex_server_new(M, &so, &S) || eex_server_set_batch(S, 8, 200) || eex_server_set_key(S, KEY, sizeof KEY - 1)) {
        FAIL("server: %s", eex_last_error());
        return -1;
    }
    return 0;
}

static void run_clients(int requests, int tolerate_io, int stop_after_ms)
{
    pthread_t srv, watch, cl[CLIENTS];
    client_arg args[CLIENTS];
    atomic_store(&stop_watch, 0);
    pthread_create(&srv, NULL, serve_main, NULL);
    pthread_create(&watch, NULL, watch_main, NULL);
    for (int i = 0; i < CLIENTS; i++) {
        args[i] = (client_arg){.id = i, .requests = requests, .tolerate_io = tolerate_io};
        pthread_create(&cl[i], NULL, client_main, &args[i]);
    }
    if (stop_after_ms) {  /* stop while the clients are still sending */
        struct timespec ts = {stop_after_ms / 1000, (long)(stop_after_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        eex_server_stop(S);
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(cl[i], NULL);
    if (!stop_after_ms)
        eex_server_stop(S);
    pthread_join(srv, NULL);
    atomic_store(&stop_watch, 1);
    pthread_join(watch, NULL);
}

int main(void)
{
    const char *path = getenv("EEX_TEST_MODEL");
    if (!path || eex_model_open(path, &M)) {
        fprintf(stderr, "test_threads: set EEX_TEST_MODEL to an early-exit .eex: %s\n", path ? eex_last_error() : "");
        return 2;
    }
    CUTS[0] = 0, CUTS[1] = eex_model_cut_count(M) - 1;
    eex_session *s;
    eex_session_new(M, NULL, &s);
    uint64_t seed = 77;
    for (int k = 0; k < 2; k++) {
        RANK[k] = eex_model_cut_shape(M, CUTS[k], SHAPE[k]);
        size_t n = 1;
        for (int d = 0; d < RANK[k]; d++)
            n *= (size_t)SHAPE[k][d];
        for (int i = 0; i < POOL; i++) {
            T[k][i] = malloc(n * sizeof(float));
            for (size_t e = 0; e < n; e++)
                T[k][i][e] = (float)((double)(eex_splitmix64(&seed) >> 11) / 9007199254740992.0 * 3.0 - 0.5);
            if (eex_offload_resume(s, CUTS[k], T[k][i], SHAPE[k], RANK[k], 0, EEX_METRIC_MAXPROB, 0.5f, &WANT[k][i]))
                FAIL("local resume: %s", eex_last_error());
        }
    }
    eex_session_free(s);

    /* 1. the whole load, then stop */
    if (start_server())
        return 1;
    run_clients(REQUESTS, 0, 0);
    eex_server_stats st;
    eex_server_xstats xs;
    eex_server_get_stats(S, &st);
    eex_server_get_xstats(S, &xs);
    if ((int)st.requests != CLIENTS * REQUESTS || atomic_load(&answered) != CLIENTS * REQUESTS)
        FAIL("%llu requests answered by the server, %d by the clients; want %d", (unsigned long long)st.requests,
             atomic_load(&answered), CLIENTS * REQUESTS);
    if (xs.auth_rejected || xs.replays || st.errors)
        FAIL("unexpected refusals: auth %llu replay %llu errors %llu", (unsigned long long)xs.auth_rejected,
             (unsigned long long)xs.replays, (unsigned long long)st.errors);
    printf("ok    %d clients x %d requests on 2 cuts, batching with a key: all answered bit for bit "
           "(%llu runs, %llu requests in batches, largest %d)\n",
           CLIENTS, REQUESTS, (unsigned long long)xs.runs, (unsigned long long)xs.batched, xs.max_batch);
    eex_server_free(S);

    /* 2. stop while clients are sending: every request answered right or failed cleanly */
    atomic_store(&answered, 0);
    if (start_server())
        return 1;
    run_clients(100000, 1, 300);
    printf("ok    eex_server_stop from another thread mid-load: %d answered, %d failed cleanly, server returned\n",
           atomic_load(&answered), atomic_load(&io_failures));
    eex_server_free(S);

    for (int k = 0; k < 2; k++)
        for (int i = 0; i < POOL; i++)
            free(T[k][i]);
    eex_model_close(M);
    if (atomic_load(&failures)) {
        fprintf(stderr, "test_threads: %d failures\n", atomic_load(&failures));
        return 1;
    }
    return 0;
}
