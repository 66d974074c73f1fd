/* The cloud server's insides, shared by its three files: server.c (the I/O
 * thread: listener, accept, the connection state machine, timeouts),
 * server_work.c (the workers: the job queue, batching, checking and
 * answering requests) and server_setup.c (making, configuring, reloading and
 * freeing a server). */
#ifndef EEX_SERVER_INT_H
#define EEX_SERVER_INT_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "offload.h"

enum { C_FREE = 0, C_READ, C_WORK, C_WRITE };

typedef struct conn {
    int fd, state;
    uint8_t hdr[EEXW_HEADER];
    size_t hgot;
    eexw_header h;
    uint8_t *buf;                  /* the whole frame: header, body, CRC */
    size_t cap, need, got;
    double frame_start, idle_since, write_start, done_at;
    double taken_at, computed_at;  /* a worker took the frame; its run ended (the log's breakdown) */
    uint8_t *out;                  /* the reply frame */
    size_t out_cap, out_len, out_off;
    int close_after;
    int key_cut, key_expert;       /* batching key, read from the body by the I/O thread */
    uint64_t last_id;              /* highest authenticated request id on this connection */
    uint8_t req_tag[EEXW_TAG];     /* the request's tag (zeros until read): replies are bound to it */
    int has_id;
    uint64_t frames;               /* frames completed: 0 = the first byte is still awaited */
    int family;                    /* the peer's address, for the per-address cap */
    uint8_t addr[16];
    char peer[64];
    /* the log line of the request in flight */
    int type, cut, expert, dtype, error, exit, cls;
    float confidence;
    double ms;
    char reason[EEXW_MAX_REASON + 1];
} conn;

typedef struct worker {
    struct eex_server *srv;
    pthread_t tid;
    eex_session *s;                /* batch 1 (= bs[0]) */
    eex_session *bs[9];            /* bs[k]: planned for batch 2^k, made on first use */
    float *x;                      /* decoded cut tensors, one per batch member */
    uint8_t *raw;                  /* unpacked payload */
    int *ci;                       /* the batch: conn indices */
    eex_metric *metric;
    float *threshold;
    eex_cloud_answer *ans;
    eex_status *each;
} worker;

struct eex_server {
    const eex_model *m;
    eex_server_opts o;
    uint8_t digest[EEX_DIGEST_BYTES];
    char digest_hex[2 * EEX_DIGEST_BYTES + 1];
    int lfd, port;
    int wake[2];                   /* self-pipe: stop and finished jobs */
    atomic_int stopping;           /* lock-free: set from a signal handler */
    int has_key;
    eexw_key key;
    eexw_replay *replay;           /* recent INFER tags, across connections (with a key) */
    pthread_mutex_t replay_mu;
    int max_batch, max_wait_us;
    int max_per_addr;
    int *cut_cap;                  /* per cut: the largest run worth making (see run_cap) */
    size_t max_body, max_elems;
    conn *conns;
    struct pollfd *pfd;
    int *pmap;                     /* pollfd index -> conn index */
    int n_workers;
    worker *workers;
    pthread_mutex_t mu;            /* the two queues and stats */
    pthread_cond_t cv;
    int *jobs, jobs_n;             /* FIFO of conn indices waiting for a worker */
    int *done, done_n;             /* conn indices whose reply is ready */
    int idle;                      /* workers waiting for jobs */
    int busy;                      /* workers holding jobs (taken, not yet done) */
    int swapping;                  /* a model swap is waiting for busy == 0: take no jobs */
    pthread_cond_t cv_idle;        /* busy fell to 0 */
    atomic_int reload;             /* set by eex_server_reload (a signal handler) */
    eex_server_reloader reloader;
    int quit;
    eex_server_stats stats;
    eex_server_xstats xstats;
};

/* server_work.c */
/* The worker thread (arg: its worker). */
void *eex_srv_worker_main(void *arg);
/* Room for n bytes of reply in c->out: 0, or -1 when memory is short. */
int eex_srv_reserve_out(conn *c, size_t n);
/* Builds an error frame in c->out (falls back to closing when memory is short). */
void eex_srv_put_error(eex_server *s, conn *c, uint64_t id, int code, const char *reason);
/* A tag and a fresh request id, when the server has a key: 0 or the error
 * code, with the reason. */
int eex_srv_authenticate(eex_server *s, conn *c, char *reason, size_t cap);
/* Counts a frame refused for its tag (EEX_WIRE_ERR_AUTH) or as a replay. */
void eex_srv_count_refused(eex_server *s, int code);

/* server_setup.c */
/* A model swap asked for by eex_server_reload, on the I/O thread. */
void eex_srv_do_reload(eex_server *s);

#endif
