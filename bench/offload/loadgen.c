/* loadgen: many edge clients against one `eex serve`, for the load and
 * failure tests and the offload experiment (test tooling, not the library).
 *
 *   loadgen MODEL.eex --cloud HOST:PORT [--clients N] [--requests R]
 *           [--interval-ms I] [--deadline-ms D] [--wire f32|f16|i8]
 *           [--threshold T] [--cut C] [--send-only] [--log FILE.jsonl]
 *           [--key FILE] [--retry-ms MS]
 *
 * Each client thread has its own session and client (one connection) and
 * runs R requests over a pool of seeded random images: the real edge path
 * (eex_session_run_offload), or with --send-only precomputed cut tensors
 * (eex_cloud_client_send: the server's own throughput). Every answer is
 * checked: a cloud answer against a local full run of the same image, a
 * degraded one against the edge's most confident exit; with --send-only,
 * the cloud's classifiers against eex_offload_resume of the same decoded
 * tensor here, bit for bit (so batching on the server must not change a
 * bit). With --interval-ms request r of each client starts at r * I ms (a
 * paced timeline for the kill test). The clock starts when every client is
 * ready. Prints one JSON summary line: answered, lost (no answer at all),
 * wrong, cloud, degraded, retries (requests sent again on a new
 * connection), throughput, latency percentiles. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../offload/offload.h"
#include "eex.h"

#define POOL 32

typedef struct opts {
    const char *model, *host, *log, *key;
    int port, clients, requests, interval_ms, deadline_ms, cut, send_only, retry_ms;
    eex_wire wire;
    float threshold;
} opts;

typedef struct sample {
    int where;        /* EEX_WHERE_* */
    int cls, ok;
    double start_ms, ms;
    char reason[96];
} sample;

typedef struct pool_img {
    uint8_t *px;
    int want_full, want_degraded;   /* local full run; most confident edge exit */
    int needs_cloud;
    float *tensor;                  /* cut tensor (send-only) */
    int64_t shape[EEX_MAX_RANK];
    int rank, expert;
    eex_cloud_answer want_cloud;    /* eex_offload_resume of the tensor as the wire carries it */
} pool_img;

static opts O;
static eex_model *M;
static pool_img P[POOL];
static int H, W, Cn;
static double T0;
static uint8_t KEY[EEX_KEY_MAX];
static size_t KEY_LEN;
static pthread_barrier_t READY;
static uint64_t RETRIES;
static pthread_mutex_t RETRIES_MU = PTHREAD_MUTEX_INITIALIZER;

/* The cloud's classifiers equal the local ones, bit for bit. */
static int same_answer(const eex_cloud_answer *a, const eex_cloud_answer *b)
{
    if (a->n != b->n || a->first_exit != b->first_exit || a->exit != b->exit || a->cls != b->cls)
        return 0;
    return !memcmp(a->classes, b->classes, sizeof(int) * (size_t)a->n) &&
           !memcmp(a->confidences, b->confidences, sizeof(float) * (size_t)a->n);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_until(double t)
{
    const double d = t - now_ms();
    if (d <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)(d / 1e3), .tv_nsec = (long)(fmod(d, 1e3) * 1e6)};
    nanosleep(&ts, NULL);
}

static int die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, eex_last_error());
    return 1;
}

typedef struct client_arg {
    int id;
    sample *out;
} client_arg;

static void *client_main(void *arg)
{
    client_arg *a = arg;
    eex_session *s;
    eex_cloud_client *c;
    eex_cloud_opts co = {.wire = O.wire, .deadline_ms = O.deadline_ms, .retry_ms = O.retry_ms};
    if (eex_session_new(M, NULL, &s) || eex_cloud_client_new(M, O.host, O.port, &co, &c) ||
        (KEY_LEN && eex_cloud_client_set_key(c, KEY, KEY_LEN))) {
        die("client");
        exit(1);
    }
    pthread_barrier_wait(&READY);
    if (a->id == 0)
        T0 = now_ms();
    pthread_barrier_wait(&READY);
    /* a model without a detector has no automatic expert: its first set */
    const eex_policy p = {.threshold = O.threshold, .metric = EEX_METRIC_MAXPROB,
                          .expert = eex_model_has_detector(M) ? EEX_EXPERT_AUTO : 0, .cut = O.cut};
    for (int r = 0; r < O.requests; r++) {
        sample *x = &a->out[r];
        const pool_img *img = &P[(a->id * 7 + r) % POOL];
        if (O.interval_ms)
            sleep_until(T0 + (double)r * O.interval_ms);
        x->start_ms = now_ms() - T0;
        eex_offload_info info;
        if (O.send_only) {
            eex_cloud_answer ans;
            const eex_status st = eex_cloud_client_send(c, O.cut, img->expert, EEX_METRIC_MAXPROB, O.threshold,
                                                        img->tensor, img->shape, img->rank, &ans, &info);
            /* no local fallback here: a failure is an error, not a degraded answer */
            x->where = st ? -1 : EEX_WHERE_CLOUD;
            x->cls = st ? -1 : ans.cls;
            x->ok = !st && same_answer(&ans, &img->want_cloud);
        } else {
            eex_exit_result res;
            eex_session_set_image(s, img->px, H, W, Cn);
            if (eex_session_run_offload(s, c, &p, &res, &info)) {
                x->where = -1;
                x->ok = 0;
                snprintf(x->reason, sizeof x->reason, "%.95s", eex_last_error());
                x->ms = now_ms() - T0 - x->start_ms;
                continue;
            }
            x->where = res.where;
            x->cls = res.cls;
            x->ok = res.where == EEX_WHERE_DEGRADED ? res.cls == img->want_degraded : res.cls == img->want_full;
        }
        x->ms = info.total_ms;
        snprintf(x->reason, sizeof x->reason, "%.95s", info.reason);
    }
    pthread_mutex_lock(&RETRIES_MU);
    RETRIES += eex_cloud_client_retries(c);
    pthread_mutex_unlock(&RETRIES_MU);
    eex_cloud_client_free(c);
    eex_session_free(s);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, long n, double q)
{
    if (!n)
        return 0;
    const double pos = q * (double)(n - 1);
    const long lo = (long)pos;
    const double f = pos - (double)lo;
    return lo + 1 < n ? v[lo] * (1 - f) + v[lo + 1] * f : v[lo];
}

int main(int argc, char **argv)
{
    O = (opts){.clients = 1, .requests = 100, .wire = EEX_WIRE_F32, .threshold = 1.0f, .cut = -1, .deadline_ms = 5000};
    const char *cloud = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--cloud") && v)
            cloud = argv[++i];
        else if (!strcmp(a, "--clients") && v)
            O.clients = atoi(argv[++i]);
        else if (!strcmp(a, "--requests") && v)
            O.requests = atoi(argv[++i]);
        else if (!strcmp(a, "--interval-ms") && v)
            O.interval_ms = atoi(argv[++i]);
        else if (!strcmp(a, "--deadline-ms") && v)
            O.deadline_ms = atoi(argv[++i]);
        else if (!strcmp(a, "--threshold") && v)
            O.threshold = (float)atof(argv[++i]);
        else if (!strcmp(a, "--cut") && v)
            O.cut = atoi(argv[++i]);
        else if (!strcmp(a, "--log") && v)
            O.log = argv[++i];
        else if (!strcmp(a, "--key") && v)
            O.key = argv[++i];
        else if (!strcmp(a, "--retry-ms") && v)
            O.retry_ms = atoi(argv[++i]);
        else if (!strcmp(a, "--send-only"))
            O.send_only = 1;
        else if (!strcmp(a, "--wire") && v) {
            const char *w = argv[++i];
            O.wire = !strcmp(w, "f16") ? EEX_WIRE_F16 : !strcmp(w, "i8") ? EEX_WIRE_I8 : EEX_WIRE_F32;
        } else if (a[0] != '-' && !O.model)
            O.model = a;
        else {
            fprintf(stderr, "loadgen: bad argument '%s'\n", a);
            return 2;
        }
    }
    static char host[256];
    const char *colon = cloud ? strrchr(cloud, ':') : NULL;
    if (!O.model || !colon || O.clients < 1 || O.requests < 1) {
        fprintf(stderr, "usage: loadgen MODEL.eex --cloud HOST:PORT [--clients N] [--requests R] ...\n");
        return 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - cloud), cloud);
    O.host = host;
    O.port = atoi(colon + 1);
    if (eex_model_open(O.model, &M))
        return die(O.model);
    if (O.key && eex_key_read(O.key, KEY, sizeof KEY, &KEY_LEN))
        return die("key");
    if (O.cut < 0)
        O.cut = eex_model_cut_count(M) - 1;
    int64_t d[EEX_MAX_RANK];
    eex_model_input_shape(M, eex_model_image_input(M), d);
    Cn = (int)d[1], H = (int)d[2], W = (int)d[3];
    eex_session *s;
    if (eex_session_new(M, NULL, &s))
        return die("session");
    /* the pool: seeded random images with their expected answers */
    uint64_t seed = 42;
    int need_cloud = 0;
    for (int i = 0; i < POOL; i++) {
        pool_img *img = &P[i];
        img->px = malloc((size_t)H * W * Cn);
        for (size_t k = 0; k < (size_t)H * W * Cn; k++)
            img->px[k] = (uint8_t)(eex_splitmix64(&seed) >> 56);
        eex_exit_result r;
        eex_policy p = {.threshold = O.threshold, .metric = EEX_METRIC_MAXPROB, .expert = EEX_EXPERT_AUTO, .cut = EEX_NO_CUT};
        if (!eex_model_has_detector(M))
            p.expert = 0;
        if (eex_session_set_image(s, img->px, H, W, Cn) || eex_session_run_policy(s, &p, &r))
            return die("local run");
        img->want_full = r.cls;
        p.cut = O.cut;
        if (eex_session_run_policy(s, &p, &r))
            return die("edge run");
        img->want_degraded = r.cls;
        img->needs_cloud = r.where == EEX_WHERE_CUT;
        img->expert = r.expert;
        need_cloud += img->needs_cloud;
        if (img->needs_cloud) {
            img->rank = eex_model_cut_shape(M, O.cut, img->shape);
            size_t n = 1;
            for (int k = 0; k < img->rank; k++)
                n *= (size_t)img->shape[k];
            img->tensor = malloc(n * sizeof(float));
            if (eex_session_cut_tensor(s, O.cut, img->tensor, n, NULL, NULL))
                return die("cut tensor");
            /* what the cloud must answer: the tensor through the wire codec, then resumed */
            const int dtype = O.wire == EEX_WIRE_F16 ? EEXW_F16 : O.wire == EEX_WIRE_I8 ? EEXW_I8 : EEXW_F32;
            uint8_t *enc = malloc(n * 4);
            float *dec = malloc(n * sizeof(float)), scale;
            int32_t zp;
            if (eexw_encode(img->tensor, n, dtype, enc, &scale, &zp))
                return die("encode");
            eexw_decode(enc, n, dtype, scale, zp, dec);
            eex_session *rs;
            if (eex_session_new(M, NULL, &rs) ||
                eex_offload_resume(rs, O.cut, dec, img->shape, img->rank, img->expert, EEX_METRIC_MAXPROB, O.threshold,
                                   &img->want_cloud))
                return die("local resume");
            eex_session_free(rs);
            free(enc), free(dec);
        }
    }
    eex_session_free(s);
    if (O.send_only && need_cloud < POOL) {
        fprintf(stderr, "loadgen: --send-only needs every pool image to offload: use --threshold 1\n");
        return 2;
    }
    pthread_t *tid = calloc((size_t)O.clients, sizeof *tid);
    client_arg *args = calloc((size_t)O.clients, sizeof *args);
    for (int i = 0; i < O.clients; i++) {
        args[i].id = i;
        args[i].out = calloc((size_t)O.requests, sizeof(sample));
    }
    pthread_barrier_init(&READY, NULL, (unsigned)O.clients);
    for (int i = 0; i < O.clients; i++)
        pthread_create(&tid[i], NULL, client_main, &args[i]);
    for (int i = 0; i < O.clients; i++)
        pthread_join(tid[i], NULL);
    const double wall = now_ms() - T0;
    const long N = (long)O.clients * O.requests;
    double *lat = malloc(sizeof(double) * (size_t)N);
    long answered = 0, ok = 0, cloud_n = 0, degraded = 0, edge = 0, lost = 0, wrong = 0;
    double over = -1e9;
    FILE *lf = O.log ? fopen(O.log, "w") : NULL;
    for (int i = 0; i < O.clients; i++)
        for (int r = 0; r < O.requests; r++) {
            const sample *x = &args[i].out[r];
            lat[answered] = x->ms;
            answered += x->where >= 0;
            lost += x->where < 0;
            ok += x->ok;
            wrong += x->where >= 0 && !x->ok;
            cloud_n += x->where == EEX_WHERE_CLOUD;
            degraded += x->where == EEX_WHERE_DEGRADED;
            edge += x->where == EEX_WHERE_EDGE;
            if (x->ms - O.deadline_ms > over)
                over = x->ms - O.deadline_ms;
            if (lf) {
                static const char *const wn[] = {"edge", "local", "cut", "cloud", "degraded"};
                fprintf(lf, "{\"client\": %d, \"i\": %d, \"start_ms\": %.3f, \"ms\": %.3f, \"where\": \"%s\", \"class\": %d, \"ok\": %d, \"reason\": \"",
                        i, r, x->start_ms, x->ms, x->where >= 0 && x->where < 5 ? wn[x->where] : "error", x->cls, x->ok);
                for (const char *c = x->reason; *c; c++)
                    fputc(*c == '"' || *c == '\\' ? '\'' : *c, lf);
                fputs("\"}\n", lf);
            }
        }
    if (lf)
        fclose(lf);
    qsort(lat, (size_t)answered, sizeof *lat, cmp_d);
    printf("{\"clients\": %d, \"requests\": %ld, \"answered\": %ld, \"correct\": %ld, \"lost\": %ld, \"wrong\": %ld, "
           "\"cloud\": %ld, \"degraded\": %ld, \"retries\": %llu, "
           "\"edge\": %ld, \"pool_offloading\": %d, \"wall_s\": %.3f, \"throughput_rps\": %.1f, "
           "\"latency_ms\": {\"median\": %.3f, \"p95\": %.3f, \"p99\": %.3f, \"max\": %.3f}, \"max_over_deadline_ms\": %.3f}\n",
           O.clients, N, answered, ok, lost, wrong, cloud_n, degraded, (unsigned long long)RETRIES, edge, need_cloud, wall / 1e3, (double)N / (wall / 1e3),
           pct(lat, answered, 0.5), pct(lat, answered, 0.95), pct(lat, answered, 0.99),
           answered ? lat[answered - 1] : 0.0, over);
    for (int i = 0; i < O.clients; i++)
        free(args[i].out);
    free(args), free(tid), free(lat);
    for (int i = 0; i < POOL; i++)
        free(P[i].px), free(P[i].tensor);
    pthread_barrier_destroy(&READY);
    eex_model_close(M);
    return 0;
}
