/* eex: the partition executor (offload/): wire codecs, the edge's client,
 * the cloud's server, shared keys and the split planner. Part of the public
 * API; <eex.h> includes it. */
/* eex.h first, outside the guard: it includes this header back, after the core. */
#include "eex.h"

#ifndef EEX_OFFLOAD_API_H
#define EEX_OFFLOAD_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- partition executor ------------------------------------------------------ */
/* The edge ships the cut tensor to an `eex serve` cloud running the same file,
 * which finishes the network; when the cloud is unreachable, too slow or
 * answers an error, the edge answers locally, marked degraded. Wire protocol:
 * docs/protocol.md; design: docs/architecture.md, "Partition executor". */

#define EEX_DIGEST_BYTES 32

/* SHA-256 of a buffer. */
EEX_API void eex_sha256(const void *data, size_t size, uint8_t digest[EEX_DIGEST_BYTES]);
/* SHA-256 of the model file's bytes: edge and cloud must hold the same file. */
EEX_API eex_status eex_model_digest(const eex_model *model, uint8_t digest[EEX_DIGEST_BYTES]);

/* How the cut tensor travels. */
typedef enum eex_wire {
    EEX_WIRE_F32 = 1,  /* exact */
    EEX_WIRE_F16 = 2,  /* IEEE binary16, round to nearest even, saturating at +-65504 */
    EEX_WIRE_I8 = 3,   /* int8 with a per-tensor scale and zero point (min/max, asymmetric) */
    EEX_WIRE_Q4 = 4    /* 4 bits with a binary16 minimum and step per channel */
} eex_wire;

/* The edge's client: one TCP connection, reused across requests, opened
 * lazily and re-opened on a later request after any failure. Not
 * thread-safe: one client per edge thread. */
typedef struct eex_cloud_client eex_cloud_client;

typedef struct eex_cloud_opts {
    eex_wire wire;       /* 0 = EEX_WIRE_F32 */
    int deadline_ms;     /* per request, from the start of eex_session_run_offload (or of
                            eex_cloud_client_send); 0 = 5000 */
    int retry_ms;        /* after a failure, requests within this window do not try the
                            cloud (they degrade at once); doubles on each further failure
                            up to 8x. 0 = 200; -1 = always try */
} eex_cloud_opts;

/* host: a name or an address; the model is the edge's copy (its digest goes
 * into every request). No connection is made here. */
EEX_API eex_status eex_cloud_client_new(const eex_model *model, const char *host, int port, const eex_cloud_opts *opts,
                                eex_cloud_client **out);
EEX_API void eex_cloud_client_free(eex_cloud_client *client);

/* What one offloaded request did (filled by eex_session_run_offload and
 * eex_cloud_client_send). */
typedef struct eex_offload_info {
    int offloaded;            /* 1: the edge stopped at the cut and the cloud was asked (or skipped) */
    int degraded;             /* 1: the answer is local because the cloud failed */
    char reason[192];         /* why it degraded ("" otherwise) */
    uint64_t request_id;
    size_t bytes_sent;        /* request frame, header to CRC */
    size_t bytes_received;    /* reply frame */
    size_t payload_bytes;     /* the encoded tensor alone */
    int connects;             /* connections this request opened (0: reused) */
    double edge_ms;           /* the edge's policy run (detector, exits, stages to the cut) */
    double offload_ms;        /* tensor ready -> answer: encode, network, cloud, decode */
    double total_ms;          /* the whole call */
    double server_ms;         /* the cloud's own time, from its reply */
} eex_offload_info;

/* The cloud's answer to one cut tensor: every classifier after the cut (side
 * exits the edge did not host, then the final), each calibrated with the
 * request's metric, and the one the paper's rule picks among them. */
typedef struct eex_cloud_answer {
    int exit;                 /* the cloud's choice among its classifiers (1-based; E + 1 final) */
    int cls;
    float confidence;
    int n;                    /* classifiers reported, exits first_exit .. first_exit + n - 1 */
    int first_exit;
    int classes[EEX_MAX_EXITS + 1];
    float confidences[EEX_MAX_EXITS + 1];
    double server_ms;
} eex_cloud_answer;

/* Sends one cut tensor (NCHW floats, batch 1) and waits for the answer,
 * within the client's deadline counted from this call. EEX_ERR_IO for
 * network failures and timeouts, EEX_ERR_FORMAT for a malformed reply,
 * EEX_ERR_STATE while the retry window is open, EEX_ERR_NOT_FOUND /
 * EEX_ERR_ARGUMENT / EEX_ERR_NUMERIC for an error frame (digest, request,
 * numbers); info->reason says which. */
EEX_API eex_status eex_cloud_client_send(eex_cloud_client *client, int cut, int expert, eex_metric metric, float threshold,
                                 const float *tensor, const int64_t *shape, int rank, eex_cloud_answer *answer,
                                 eex_offload_info *info);

/* The edge half: eex_session_run_policy with policy->cut (EEX_NO_CUT picks
 * the last cut point); when no edge exit answers, sends the cut tensor and
 * applies the exit rule to the cloud's classifiers and the local exits, so
 * the answer equals a local full run (where = CLOUD). When the cloud fails
 * the call still succeeds: where = DEGRADED, the most confident local exit
 * answers (or, when no exit precedes the cut, the rest of the network runs
 * here), and info->reason says why; result->cut keeps the cut used. Errors
 * are only those of the local run. */
EEX_API eex_status eex_session_run_offload(eex_session *session, eex_cloud_client *client, const eex_policy *policy,
                                   eex_exit_result *result, eex_offload_info *info);

/* The cloud: `eex serve`. One I/O thread (poll) and a pool of workers, each
 * with its own session over the shared read-only model. */
typedef struct eex_server eex_server;

/* The error codes of an ERROR frame (docs/protocol.md), as the server sends
 * them and eex_server_log_rec.error reports them. */
typedef enum eex_wire_error {
    EEX_WIRE_ERR_MALFORMED = 1,  /* bad magic or an unreadable header: closes */
    EEX_WIRE_ERR_VERSION = 2,    /* another protocol version: closes */
    EEX_WIRE_ERR_TOO_LARGE = 3,  /* body length over the receiver's limit: closes */
    EEX_WIRE_ERR_CRC = 4,        /* CRC mismatch: closes */
    EEX_WIRE_ERR_DIGEST = 5,     /* another model file: stays open */
    EEX_WIRE_ERR_REQUEST = 6,    /* bad cut, expert, metric, dtype, shape or payload size: stays open */
    EEX_WIRE_ERR_TIMEOUT = 7,    /* the frame did not arrive in time: closes */
    EEX_WIRE_ERR_SHUTDOWN = 8,   /* the server is draining: closes */
    EEX_WIRE_ERR_NUMERIC = 9,    /* the tensor gave non-finite logits: stays open */
    EEX_WIRE_ERR_TYPE = 10,      /* a frame type the server does not take: closes */
    EEX_WIRE_ERR_INTERNAL = 11,  /* anything else on the server: stays open */
    EEX_WIRE_ERR_AUTH = 12,      /* missing or wrong HMAC tag (or a tag and no key): closes */
    EEX_WIRE_ERR_REPLAY = 13     /* a request id not above the last one on this connection: closes */
} eex_wire_error;

/* One line of the request log, handed to the log callback (called from the
 * server's I/O thread, one call at a time). */
typedef struct eex_server_log_rec {
    double unix_time;
    uint64_t request_id;
    const char *peer;         /* "ADDR:PORT" */
    int type;                 /* request frame type (docs/protocol.md), 0 when unreadable */
    int cut, expert;          /* -1 when unknown */
    const char *dtype;        /* "f32", "f16", "i8" or "" */
    size_t bytes_in, bytes_out;
    double ms;                /* frame received -> reply queued */
    int error;                /* 0, or the error code sent (docs/protocol.md) */
    const char *reason;       /* "" or the error frame's reason */
    int exit, cls;            /* the cloud's choice (0, -1 on error) */
    float confidence;
    /* where the time went (monotonic ms, eex_now_ms; the I/O thread's
     * clock readings): frame complete -> a worker took it -> its run done ->
     * the reply queued for writing (the log call) */
    double recv_at;           /* the frame's last byte seen by the I/O thread */
    double queue_ms;          /* recv_at -> a worker took it */
    double compute_ms;        /* the worker's run (decode, layers, reply built) */
    double handoff_ms;        /* run done -> the I/O thread queued the reply */
} eex_server_log_rec;
typedef void (*eex_server_log_fn)(void *user, const eex_server_log_rec *rec);

typedef struct eex_server_opts {
    const char *host;         /* address to bind; NULL = "127.0.0.1" */
    int port;                 /* 0 = a free port (see eex_server_port) */
    int threads;              /* worker sessions; 0 = 1 */
    int max_conns;            /* 0 = 256; more are refused at accept */
    int frame_timeout_ms;     /* a frame must arrive whole within this from its first byte; 0 = 5000 */
    int idle_timeout_ms;      /* a connection between frames is closed after this; 0 = 60000 */
    int write_timeout_ms;     /* a reply must be taken within this; 0 = 5000 */
    int drain_timeout_ms;     /* after stop, longest wait for requests in flight; 0 = 10000 */
    eex_server_log_fn log;    /* optional */
    void *log_user;
} eex_server_opts;

typedef struct eex_server_stats {
    uint64_t connections;     /* accepted */
    uint64_t refused;         /* over max_conns */
    uint64_t requests;        /* answered with a result */
    uint64_t errors;          /* error frames sent */
    uint64_t closed_bad;      /* connections closed for a bad frame or a timeout */
    int open;                 /* connections open now */
} eex_server_stats;

/* Binds and listens; the model must outlive the server. */
EEX_API eex_status eex_server_new(const eex_model *model, const eex_server_opts *opts, eex_server **out);
/* The bound port. */
EEX_API int eex_server_port(const eex_server *server);
/* Serves until eex_server_stop; then stops accepting, finishes the requests
 * in flight (within drain_timeout_ms), closes every connection, returns. */
EEX_API eex_status eex_server_run(eex_server *server);
/* Async-signal-safe: may be called from a signal handler or another thread. */
EEX_API void eex_server_stop(eex_server *server);
EEX_API void eex_server_get_stats(const eex_server *server, eex_server_stats *stats);
EEX_API void eex_server_free(eex_server *server);

/* ---- shared keys, batching, more counters --------------------------------------
 * Setters rather than new fields, so eex_server_opts and eex_cloud_opts keep
 * their layout (docs/protocol.md, Authentication; docs/results/load.md). */

/* Reads a shared key file (offload/keyfile.c): its bytes, all of them, are the key.
 * It must hold 16..4096 bytes and must not be readable or writable by
 * others (mode o-rwx), else EEX_ERR_ARGUMENT / EEX_ERR_IO with a message. */
#define EEX_KEY_MIN 16
#define EEX_KEY_MAX 4096
EEX_API eex_status eex_key_read(const char *path, uint8_t *key, size_t cap, size_t *len);

/* With a key, every frame the server takes must carry a valid HMAC-SHA256
 * tag (else error `auth`, closed, counted and logged), request ids on a
 * connection must increase (else error `replay`), and every frame it sends
 * is tagged. Call before eex_server_run. len: EEX_KEY_MIN..EEX_KEY_MAX. */
EEX_API eex_status eex_server_set_key(eex_server *server, const void *key, size_t len);
/* Batching: a worker takes up to max_batch waiting requests for the same cut
 * and expert and finishes them in one run (1 = off, the default; at most
 * 256). With max_wait_us > 0 a worker that found fewer waits that long for
 * more. Call before eex_server_run. */
EEX_API eex_status eex_server_set_batch(eex_server *server, int max_batch, int max_wait_us);
typedef struct eex_server_xstats {
    uint64_t auth_rejected;   /* frames refused for a missing or wrong tag */
    uint64_t replays;         /* frames refused for a replayed request id */
    uint64_t runs;            /* runs of the remaining layers */
    uint64_t batched;         /* requests answered by runs of more than one */
    int max_batch;            /* the largest run */
    uint64_t evicted;         /* idle connections closed to make room for a new one */
    uint64_t refused_addr;    /* connections refused: their address had max_per_addr open */
    uint64_t reloads;         /* models swapped in by eex_server_reload */
} eex_server_xstats;
EEX_API void eex_server_get_xstats(const eex_server *server, eex_server_xstats *xstats);
/* With a key, the server also refuses (error `replay`) an INFER frame whose
 * tag it saw on any connection among the last `window` tagged INFER frames
 * it accepted (default EEX_REPLAY_WINDOW; 1..16777216; 16 bytes each).
 * Call after eex_server_set_key, before eex_server_run. */
#define EEX_REPLAY_WINDOW 262144
EEX_API eex_status eex_server_set_replay_window(eex_server *server, int window);
/* At most max_per_addr open connections from one IP address (default
 * max_conns / 2; more are closed at accept). Behind a load balancer every
 * connection comes from its address: raise it to max_conns there. When the
 * table is full, a new connection takes the slot of the connection idle
 * longest (one that never sent a frame first) instead of being refused.
 * Call before eex_server_run. */
EEX_API eex_status eex_server_set_conn_limit(eex_server *server, int max_per_addr);
/* Model reload without a restart (`eex serve` on SIGHUP). After
 * eex_server_reload (async-signal-safe), the server's I/O thread calls
 * open(user): a new model (it must have cut points), or NULL to keep serving
 * the old one. The server then lets the batches in flight finish, swaps
 * model, digest and worker sessions while no worker computes (frames keep
 * arriving and wait), and calls done(user, old, EEX_OK) once nothing uses
 * the old model; when the new one cannot be served, done(user, new, status)
 * (eex_last_error() says why) and the old one stays. Frames received before
 * the swap are answered by the new model (an edge with the old file gets
 * error `digest` and degrades). */
typedef struct eex_server_reloader {
    const eex_model *(*open)(void *user);
    void (*done)(void *user, const eex_model *unused, eex_status status);
    void *user;
} eex_server_reloader;
EEX_API eex_status eex_server_set_reloader(eex_server *server, const eex_server_reloader *reloader);
EEX_API void eex_server_reload(eex_server *server);

/* The edge's key: requests are tagged, replies must be (else the request
 * fails as a malformed reply and the edge degrades). */
EEX_API eex_status eex_cloud_client_set_key(eex_cloud_client *client, const void *key, size_t len);
/* Requests this client sent a second time on a new connection after the
 * first connection failed (see eex_cloud_client_send). */
EEX_API uint64_t eex_cloud_client_retries(const eex_cloud_client *client);
/* TCP congestion control for the client's connections, set on each socket
 * before it connects. The default, "cubic" then "reno" when cubic is not
 * allowed, does not pace: with BBR (or any pacing) an application-limited
 * connection paces each request frame at about 2 x cwnd / RTT, which added
 * 44 ms to a 13.4 KB frame on a 180 ms RTT path (docs/results/offload.md,
 * "Where the time went"). NULL or "" keeps the system's default. A name the
 * kernel refuses is skipped silently (the connection still works). */
EEX_API eex_status eex_cloud_client_set_tcp_cc(eex_cloud_client *client, const char *name);
/* The congestion control of the client's current (or last) connection, ""
 * before the first. */
EEX_API const char *eex_cloud_client_tcp_cc(const eex_cloud_client *client);
/* The wire codec of the next request (the auto mode changes it per request). */
EEX_API eex_status eex_cloud_client_set_wire(eex_cloud_client *client, eex_wire wire);
/* With on, a PING frame goes just ahead of each request on the same
 * connection (docs/protocol.md, PING / PONG); its PONG, answered by the
 * server's I/O thread before the request is read, times the round trip of
 * that request: eex_cloud_client_probe_rtt_ms, 0 when the last request had
 * none. 28 more bytes each way (60 with a key). */
EEX_API eex_status eex_cloud_client_set_probe(eex_cloud_client *client, int on);
EEX_API double eex_cloud_client_probe_rtt_ms(const eex_cloud_client *client);
/* The kernel's smoothed RTT of the current connection (TCP_INFO), ms; 0 when
 * there is none. */
EEX_API double eex_cloud_client_tcp_rtt_ms(const eex_cloud_client *client);
/* Where the client's last request spent its time: monotonic ms (eex_now_ms,
 * the clock `eex serve --log` writes recv_at with, so the two can be joined
 * on one machine), 0 for a point not reached. */
typedef struct eex_cloud_timing {
    double start;             /* eex_cloud_client_send entered (the cut tensor ready) */
    double encoded;           /* the frame built: codec + pack */
    double sent;              /* its last byte handed to the kernel */
    double pong;              /* the PING's PONG read (0 without the probe) */
    double reply_head;        /* the reply's header read */
    double reply;             /* the whole reply read */
    double done;              /* the reply checked and decoded */
} eex_cloud_timing;
EEX_API void eex_cloud_client_last_timing(const eex_cloud_client *client, eex_cloud_timing *timing);

/* ---- split planner (offload/plan.c) -------------------------------------------
 * Latency of an offloaded request at cut c with wire w over a path:
 *   edge_ms[c] + codec_ms[c][w] + rtt + bytes[c][w] * 8 / bandwidth + cloud_ms[c]
 * With exit shares (the fraction of images that exit at each side exit when
 * every exit is on the edge), an image whose exit is before the cut costs
 * exit_ms[k] and the others the offloaded request: the expected latency. */
#define EEX_PLAN_MAX_CUTS 16
#define EEX_WIRE_COUNT 4      /* wire ids 1..EEX_WIRE_COUNT */
typedef struct eex_plan_costs {
    int cuts;
    int cut_exit[EEX_PLAN_MAX_CUTS];                      /* eex_model_cut_exit */
    double edge_ms[EEX_PLAN_MAX_CUTS];                    /* edge run of an offloaded image to cut c */
    double cloud_ms[EEX_PLAN_MAX_CUTS];                   /* the cloud's time for the rest */
    double bytes[EEX_PLAN_MAX_CUTS][EEX_WIRE_COUNT + 1];  /* request frame bytes, [c][wire] */
    double codec_ms[EEX_PLAN_MAX_CUTS][EEX_WIRE_COUNT + 1];
    int exits;                                            /* side exits E */
    double exit_share[EEX_MAX_EXITS + 1];                 /* [k], k = 1..E; all 0: every image offloads */
    double exit_ms[EEX_MAX_EXITS + 1];                    /* edge time of an image answered at exit k */
} eex_plan_costs;
typedef struct eex_path_model {
    double rtt_ms;
    double mbit;              /* bandwidth, Mbit/s */
} eex_path_model;
/* The offloaded request's latency, and the expected latency over the exit shares. */
EEX_API double eex_plan_request_ms(const eex_plan_costs *k, int cut, int wire, const eex_path_model *p);
EEX_API double eex_plan_expected_ms(const eex_plan_costs *k, int cut, int wire, const eex_path_model *p);
/* The cut and wire of least expected latency among the wires in wire_mask
 * (bit w for wire id w); returns that latency, or -1 when nothing is allowed. */
EEX_API double eex_plan_best(const eex_plan_costs *k, const eex_path_model *p, unsigned wire_mask, int *cut, int *wire);
/* Measures the costs here (offload/plan_measure.c): medians of `runs` runs on
 * seeded random inputs of the edge to each cut and to each exit, of the rest
 * of the network from each cut (as the cloud runs it), and per wire the frame
 * bytes and the codec's time (encode + pack + unpack + decode). exit_share is
 * left 0. */
EEX_API eex_status eex_plan_measure(const eex_model *model, int runs, eex_plan_costs *costs);
/* The same with idle_ms of sleep before every timed run, edge and cloud: a
 * deployment runs one image and then waits a round trip, and a run after an
 * idle gap is slower than one of a back-to-back loop (MobileNetV2-EE-224 to
 * its cut 2 on one thread of a Zen 3: 9.4 against 7.0 ms after a 10-100 ms
 * gap; docs/results/offload.md, "Where to cut"). eex_plan_measure is idle_ms 0. */
EEX_API eex_status eex_plan_measure_idle(const eex_model *model, int runs, double idle_ms, eex_plan_costs *costs);

/* The path as the edge sees it from its own requests: RTT (rtt_ms when
 * given: the request's PING, eex_cloud_client_probe_rtt_ms, or the kernel's
 * RTT; else the reply time less the cloud's time and the transfer) and
 * throughput (bytes over what is left of the reply time after RTT and the
 * cloud's time), both smoothed. The RTT is smoothed from the median of the
 * last three samples, so one late reply (the edge preempted for a moment)
 * moves it not at all, and a changed path after its second request. */
typedef struct eex_path_est {
    double rtt_ms, mbit;      /* 0 until the first sample */
    int samples;
    double last_rtt[2];       /* the two RTT samples before the newest */
} eex_path_est;
EEX_API void eex_path_est_update(eex_path_est *e, const eex_offload_info *info, double rtt_ms);

/* The edge's automatic cut and codec (offload/plan.c): costs measured at
 * start (eex_plan_measure), then kept current from the edge's own requests:
 * the path estimate, the cloud's time beyond the measured one (its own
 * queueing and I/O, added to every cut alike, so a cut not yet tried is
 * not favoured; a cloud of another speed is a --cloud-profile's scale) and
 * the frame bytes per cut and codec, smoothed. eex_autoplan_choose re-plans
 * with them before each request and moves to a new cut + codec when it is
 * predicted at least 1% and 0.2 ms faster than the current one (no
 * flapping on noise).
 * Before the first reply the path is taken as 0 ms / 100 Mbit/s. */
typedef struct eex_autoplan {
    eex_plan_costs costs;     /* as planned now: cloud_ms = base + cloud_extra */
    double cloud_base[EEX_PLAN_MAX_CUTS];  /* the measured (or profile-scaled) cloud times */
    double cloud_extra;       /* the cloud's replies beyond them (queueing, I/O; 0 until the first) */
    eex_path_est path;
    unsigned wires;           /* bit w: wire id w may be chosen */
    int cut, wire;            /* the current choice (-1, 0 before the first) */
    double predicted_ms;      /* its predicted request latency on the estimated path */
    int changes;              /* how many times the choice moved */
} eex_autoplan;
EEX_API void eex_autoplan_init(eex_autoplan *a, const eex_plan_costs *costs, unsigned wires);
EEX_API void eex_autoplan_choose(eex_autoplan *a, int *cut, int *wire);
EEX_API void eex_autoplan_update(eex_autoplan *a, int cut, int wire, const eex_offload_info *info, double rtt_ms);

/* One request in the automatic mode (offload/autocut.c), as `eex run` and
 * `eex eval` with --cut auto / --wire auto do it:
 *   eex_autoplan_next(a, client, &step);     choose; set the client's wire and
 *                                            its PING probe (on); step->cut to run
 *   ... eex_session_run_offload with policy.cut = step.cut ...
 *   eex_autoplan_done(a, client, &step, &info);  the PING's (else the kernel's)
 *                                            RTT and the reply update the plan
 * A caller with a fixed cut may overwrite step.cut between the two (the
 * estimate still learns from the request); a fixed wire is a one-bit mask in
 * eex_autoplan_init. step keeps what the per-request log wants. */
typedef struct eex_autoplan_step {
    int cut, wire;            /* the request's cut and wire id */
    eex_path_est path;        /* the path estimate the choice was made on */
    double predicted_ms;      /* its predicted request latency on that path */
    double probe_rtt_ms;      /* after done: the request's PING round trip (0: none) */
    double tcp_rtt_ms;        /* after done: the kernel's smoothed RTT (0: no connection) */
} eex_autoplan_step;
EEX_API eex_status eex_autoplan_next(eex_autoplan *a, eex_cloud_client *client, eex_autoplan_step *step);
/* Does nothing to the plan for a request that was not offloaded. */
EEX_API void eex_autoplan_done(eex_autoplan *a, const eex_cloud_client *client, eex_autoplan_step *step,
                               const eex_offload_info *info);
/* "f32", "f16", "i8", "q4" for wire ids 1..EEX_WIRE_COUNT, else "?". */
EEX_API const char *eex_wire_name(int wire);

#ifdef __cplusplus
}
#endif
#endif /* EEX_OFFLOAD_API_H */
