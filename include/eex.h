/* eex: an inference engine for early-exit neural networks.
 *
 * The one public header. Objects are opaque handles; every fallible call
 * returns an eex_status, and the calling thread's last error message (what
 * failed and where) is available from eex_last_error(). The library never
 * exits or aborts on bad input.
 *
 * Typical use:
 *   eex_model *m;   eex_model_open("net.eex", &m);
 *   eex_session *s; eex_session_new(m, NULL, &s);
 *   eex_session_set_input(s, 0, nchw_floats, shape);
 *   eex_session_run(s);
 *   eex_session_output(s, 0, out, out_cap, out_shape, &out_rank);
 *   eex_session_free(s); eex_model_close(m);
 */
#ifndef EEX_H
#define EEX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; eex_version() says the library's. The shared
 * library's SONAME is libeex.so.EEX_VERSION_MAJOR. */
#define EEX_VERSION_MAJOR 0
#define EEX_VERSION_MINOR 2
#define EEX_VERSION_PATCH 0
#define EEX_VERSION_STRING "0.2.0"

/* Marks the library's public functions: the library is built with
 * -fvisibility=hidden, so these and only these are exported from libeex.so. */
#if defined(__GNUC__) || defined(__clang__)
#define EEX_API __attribute__((visibility("default")))
#else
#define EEX_API
#endif
#define EEX_MAX_RANK 8

typedef enum eex_status {
    EEX_OK = 0,
    EEX_ERR_ARGUMENT,     /* a bad argument from the caller */
    EEX_ERR_IO,           /* a file could not be opened, read or mapped */
    EEX_ERR_NOMEM,        /* an allocation failed */
    EEX_ERR_MAGIC,        /* not an .eex file */
    EEX_ERR_VERSION,      /* a format version this build does not know */
    EEX_ERR_TRUNCATED,    /* a section ends before its contents do */
    EEX_ERR_BOUNDS,       /* an offset or size points outside the file or section */
    EEX_ERR_OVERFLOW,     /* a count or shape product overflows */
    EEX_ERR_ALIGNMENT,    /* data not aligned as the format requires */
    EEX_ERR_CHECKSUM,     /* the CRC-32 does not match the contents */
    EEX_ERR_DUPLICATE,    /* a name defined twice */
    EEX_ERR_UNKNOWN_OP,   /* an op this build does not implement */
    EEX_ERR_FORMAT,       /* any other malformed field */
    EEX_ERR_GRAPH,        /* the graph is inconsistent (undefined input, bad arity) */
    EEX_ERR_SHAPE,        /* shapes that do not fit together */
    EEX_ERR_UNSUPPORTED,  /* legal, but not supported by this build */
    EEX_ERR_NUMERIC,      /* NaN or Inf where a number was needed */
    EEX_ERR_NOT_FOUND,    /* a name (input, output, expert) that does not exist */
    EEX_ERR_STATE,        /* a call made out of order (e.g. output before run) */
    EEX_STATUS_COUNT
} eex_status;

/* The library's version, "MAJOR.MINOR.PATCH" (EEX_VERSION_STRING of the build). */
EEX_API const char *eex_version(void);

/* Short stable name of a status ("EEX_ERR_CHECKSUM"). */
EEX_API const char *eex_status_name(eex_status status);

/* The message of the last failed call on this thread ("" if none). */
EEX_API const char *eex_last_error(void);

/* ---- models --------------------------------------------------------------- */

typedef struct eex_model eex_model;

/* Maps, validates and binds a model file. Weights stay in the read-only map;
 * kernels' packed copies are made here, once. */
EEX_API eex_status eex_model_open(const char *path, eex_model **out);

/* The same from a caller-owned buffer that must outlive the model (used by the
 * fuzzers and by tests that build files in memory). */
EEX_API eex_status eex_model_open_buffer(const void *data, size_t size, eex_model **out);

EEX_API void eex_model_close(eex_model *model);

EEX_API int eex_model_input_count(const eex_model *model);
EEX_API int eex_model_output_count(const eex_model *model);
EEX_API const char *eex_model_input_name(const eex_model *model, int index);
EEX_API const char *eex_model_output_name(const eex_model *model, int index);

/* Logical NCHW shape of input or output `index` at batch 1 (dims[0] = 1).
 * Returns the rank, or -1 for a bad index. */
EEX_API int eex_model_input_shape(const eex_model *model, int index, int64_t dims[EEX_MAX_RANK]);
EEX_API int eex_model_output_shape(const eex_model *model, int index, int64_t dims[EEX_MAX_RANK]);

/* Metadata from the file, NULL / 0 when absent. */
EEX_API const char *eex_model_name(const eex_model *model);
EEX_API int eex_model_label_count(const eex_model *model);
EEX_API const char *eex_model_label(const eex_model *model, int index);
/* Fills up to `cap` per-channel values; returns how many the file holds. */
EEX_API int eex_model_mean(const eex_model *model, float *mean, int cap);
EEX_API int eex_model_std(const eex_model *model, float *std, int cap);

/* Model statistics, as reported by `eex info`. */
typedef struct eex_model_stats {
    int nodes;             /* executable nodes */
    int64_t params;        /* constant elements */
    int64_t macs;          /* multiply-accumulates for one image */
    uint64_t file_bytes;
} eex_model_stats;
EEX_API void eex_model_get_stats(const eex_model *model, eex_model_stats *stats);

/* Node count by op: writes up to `cap` (name, count) pairs, returns how many ops exist. */
EEX_API int eex_model_op_histogram(const eex_model *model, const char **names, int *counts, int cap);

/* ---- sessions --------------------------------------------------------------- */

typedef struct eex_session eex_session;

typedef enum eex_kernels {
    EEX_KERNELS_AUTO = 0,  /* the fastest this CPU supports */
    EEX_KERNELS_REF = 1    /* the scalar reference kernels (ground truth) */
} eex_kernels;

typedef struct eex_session_opts {
    int batch;             /* images per run the arena is planned for (0 = 1) */
    int threads;           /* worker threads (0 = 1) */
    eex_kernels kernels;
} eex_session_opts;

/* A session owns one activation arena planned from tensor lifetimes; running
 * it allocates nothing. Sessions are independent: one per thread. */
EEX_API eex_status eex_session_new(const eex_model *model, const eex_session_opts *opts, eex_session **out);
EEX_API void eex_session_free(eex_session *session);

/* Bytes of the activation arena (for the planned batch). */
EEX_API size_t eex_session_arena_bytes(const eex_session *session);
/* The largest arena a session may plan, for every session of the process
 * (default: no limit). A model that plans more is refused before anything
 * is allocated: EEX_ERR_NOMEM, with a message naming both sizes and, when
 * given, how to raise the limit (`hint`, e.g. "--max-arena-mb"; a static
 * string). Set it before sessions are made. */
EEX_API void eex_set_arena_limit(size_t bytes, const char *hint);

/* Copies input `index` in from logical NCHW floats. shape[0] is the batch and
 * may differ from the planned one (the arena is re-planned, which allocates);
 * the other dims must match the model. `rank` is the number of dims. */
EEX_API eex_status eex_session_set_input(eex_session *session, int index, const float *data,
                                 const int64_t *shape, int rank);

EEX_API eex_status eex_session_run(eex_session *session);

/* Copies output `index` out as logical NCHW floats into dst (cap floats).
 * Writes its shape and rank when those pointers are not NULL. */
EEX_API eex_status eex_session_output(const eex_session *session, int index, float *dst, size_t cap,
                              int64_t shape[EEX_MAX_RANK], int *rank);

/* Per-node timing of the last run (filled only when enabled). */
EEX_API eex_status eex_session_enable_profiling(eex_session *session, int on);
EEX_API int eex_session_node_count(const eex_session *session);
typedef struct eex_node_info {
    const char *name;
    const char *op;
    int64_t out_shape[4];  /* logical NCHW */
    int out_rank;
    int64_t macs;          /* multiply-accumulates at the current batch */
    int64_t bytes;         /* bytes read + written by the node */
    double ms;             /* duration in the last profiled run */
    /* role in an early-exit model (all 0 in a plain one) */
    int stage;             /* k >= 1: backbone node first needed by exit k (E + 1: the final classifier) */
    int head_exit;         /* k >= 1: node of exit k's head (E + 1: a final classifier) */
    unsigned head_experts; /* bit e: the node belongs to expert set e's head */
    int detector;          /* 1: a node of the distortion detector */
    const char *kernel;    /* the kernel it runs with: conv "winograd_f4x4", "gemm_1x1", "gemm_indirect",
                              "dw3x3_s1", ...; dense "gemm", "gemv_f16", "sgemm_blas"; "ref"; else
                              "fast", "copy" or "ref" (docs/performance.md) */
} eex_node_info;
EEX_API eex_status eex_session_node_info(const eex_session *session, int index, eex_node_info *info);


/* ---- images ------------------------------------------------------------------ */

/* Sets the model's image input (and, for models with a distortion detector,
 * its input: the spectrum, plus the grayscale image as a second channel when
 * the detector takes two; docs/distortions.md) from 8-bit pixels, HWC, row-major, 1 or 3 channels:
 * converted to the model's channel count, resized (bilinear, half-pixel
 * centres), scaled to 0..1 and normalised with the file's mean/std. Batch 1. */
EEX_API eex_status eex_session_set_image(eex_session *session, const uint8_t *pixels, int height, int width,
                                 int channels);

/* The same preprocessing into caller buffers, for batching: `image` gets the
 * image input ([C,H,W] floats of the model's image input), `detector` (may be
 * NULL; ignored for models without a detector) the detector's input. */
EEX_API eex_status eex_model_preprocess(const eex_model *model, const uint8_t *pixels, int height, int width, int channels,
                                float *image, float *detector);
/* Index of the image input and of the detector input (-1 when none). */
EEX_API int eex_model_image_input(const eex_model *model);
EEX_API int eex_model_detector_input(const eex_model *model);

/* ---- early exits ------------------------------------------------------------- */

#define EEX_MAX_EXITS 16
#define EEX_MAX_CLASSES_DET 16

/* Side exits E (0 for a plain model); the final classifier is exit E + 1. */
EEX_API int eex_model_exit_count(const eex_model *model);
EEX_API int eex_model_class_count(const eex_model *model);
EEX_API int eex_model_expert_count(const eex_model *model);
EEX_API const char *eex_model_expert_name(const eex_model *model, int index);
/* Index of an expert set by name, or EEX_ERR_NOT_FOUND naming the known ones. */
EEX_API eex_status eex_model_find_expert(const eex_model *model, const char *name, int *index);
/* Temperature of exit k (1-based; E + 1 = final) in an expert set, or 0 for bad indices. */
EEX_API float eex_model_temperature(const eex_model *model, int exit, int expert);
EEX_API int eex_model_has_detector(const eex_model *model);
EEX_API int eex_model_detector_class_count(const eex_model *model);
EEX_API const char *eex_model_detector_class(const eex_model *model, int index);
/* Default p_tar stored in the file, or a negative value. */
EEX_API float eex_model_default_threshold(const eex_model *model);
/* Per-exit thresholds stored in the file (`ee.thresholds`, E or E + 1 values):
 * copies up to `cap` and returns how many the file holds (0 when absent). */
EEX_API int eex_model_default_thresholds(const eex_model *model, float *thresholds, int cap);
/* Writes a copy of the model file with new temperatures (temps[(exit - 1) * X + e]
 * for exits 1..E + 1 and expert sets e of X, each > 0) and, when thresholds is
 * not NULL, `ee.thresholds` (n_thresholds = E or E + 1 values in [0, 1]). The
 * weights and graph are copied byte for byte. */
EEX_API eex_status eex_model_save_calibrated(const eex_model *model, const float *temps, const float *thresholds,
                                     int n_thresholds, const char *path);
/* Cut points: where the edge may hand over to the cloud. */
EEX_API int eex_model_cut_count(const eex_model *model);
EEX_API const char *eex_model_cut_name(const eex_model *model, int index);
EEX_API int eex_model_cut_shape(const eex_model *model, int index, int64_t dims[EEX_MAX_RANK]);
/* The last exit computed on the edge before cut `index` (0 when none). */
EEX_API int eex_model_cut_exit(const eex_model *model, int index);

typedef enum eex_metric {
    EEX_METRIC_MAXPROB = 0,  /* confidence = max softmax(logits / T) */
    EEX_METRIC_ENTROPY = 1   /* confidence = 1 - H(softmax(logits / T)) / ln(classes) */
} eex_metric;

#define EEX_EXPERT_AUTO (-1)  /* let the distortion detector choose */
#define EEX_NO_CUT (-1)

typedef struct eex_policy {
    float threshold;   /* p_tar: an exit answers when its confidence > threshold */
    eex_metric metric;
    int expert;        /* expert set index, or EEX_EXPERT_AUTO */
    int cut;           /* EEX_NO_CUT: run to the end here; else stop at cut `cut`
                          when no exit before it answered (the cloud finishes) */
    int force_exit;    /* 0: the threshold decides; k >= 1: answer at exit k whatever
                          the confidences (latency measurements) */
    /* Per-exit thresholds (optional): NULL, or n_thresholds values, one per
       classifier in order (exit 1 .. exit E, then optionally the final);
       a classifier without an entry uses `threshold`. Zero-initialised
       policies keep the single threshold. */
    const float *thresholds;
    int n_thresholds;
    int adaptive;      /* 1: the session's bandit (eex_session_set_adaptive) picks
                          p_tar per detected distortion; the thresholds above are ignored */
} eex_policy;

/* Threshold the policy applies to classifier k (0-based; E = the final). */
EEX_API float eex_policy_threshold(const eex_policy *policy, int k);

typedef enum eex_where {
    EEX_WHERE_EDGE = 0,   /* an exit answered */
    EEX_WHERE_LOCAL,      /* no exit answered; the rest of the network ran here */
    EEX_WHERE_CUT,        /* no exit answered; stopped at the cut (ship the cut tensor) */
    EEX_WHERE_CLOUD,      /* answered by a cloud server (set by the offload client) */
    EEX_WHERE_DEGRADED    /* the cloud failed; the best local exit answered */
} eex_where;

typedef struct eex_exit_result {
    eex_where where;
    int exit;                 /* 1-based exit that answered; E + 1 for the final; 0 none yet */
    int cls;                  /* answer (the best local exit's when where == CUT) */
    float confidence;
    int expert;               /* expert set used */
    int detector_class;       /* -1 when the detector did not run */
    int n_detector_classes;
    float detector_probs[EEX_MAX_CLASSES_DET];
    int n_computed;           /* exits computed, in order (the final counts) */
    float confidences[EEX_MAX_EXITS + 1];
    int predictions[EEX_MAX_EXITS + 1];
    double stage_ms[EEX_MAX_EXITS + 2];   /* per exit: its stage + head; last: detector */
    int cut;                  /* the cut index when where == CUT, else -1 */
    int nodes_executed;
} eex_exit_result;

/* (a) Runs with a policy on the image set by eex_session_set_image or
 * eex_session_set_input (batch 1): detector (if expert is AUTO), then stage
 * by stage, stopping at the first exit whose calibrated confidence is
 * strictly above the threshold; nothing past it is computed. With no exit
 * firing and no cut, the rest of the network and the final classifier run;
 * if that is not above the threshold either, the most confident classifier
 * computed answers. NaN or Inf logits give EEX_ERR_NUMERIC. */
EEX_API eex_status eex_session_run_policy(eex_session *session, const eex_policy *policy, eex_exit_result *result);

/* (b) Runs everything (all exits of all experts, finals, detector) for the
 * whole batch; then read any exit's calibrated probabilities. */
EEX_API eex_status eex_session_run_all(eex_session *session);
/* probs: batch x classes floats of exit k (1-based; E + 1 = final) of an expert. */
EEX_API eex_status eex_session_exit_probs(const eex_session *session, int exit, int expert, float *probs, size_t cap);
/* Calibrated confidence (the policy's metric) and argmax class of exit k for
 * every image of the batch: conf and cls hold batch entries. */
EEX_API eex_status eex_session_exit_confidence(const eex_session *session, int exit, int expert, eex_metric metric,
                                       float *conf, int *cls, size_t cap);
/* Raw logits (before the temperature) of exit k of an expert: batch x classes. */
EEX_API eex_status eex_session_exit_logits(const eex_session *session, int exit, int expert, float *logits, size_t cap);
/* probs: batch x detector classes. */
EEX_API eex_status eex_session_detector_probs(const eex_session *session, float *probs, size_t cap);

/* (c) The tensor at cut `cut` after a run that reached it (EEX_WHERE_CUT or
 * a full run), copied out as logical NCHW floats. */
EEX_API eex_status eex_session_cut_tensor(const eex_session *session, int cut, float *dst, size_t cap,
                                  int64_t shape[EEX_MAX_RANK], int *rank);
/* (d) The cloud half: sets the cut tensor (NCHW, batch 1) and runs the rest
 * of the network with the expert's final classifier; the result holds its
 * answer and confidence (where = LOCAL, exit = E + 1). */
EEX_API eex_status eex_session_resume(eex_session *session, int cut, const float *data, const int64_t *shape, int rank,
                              int expert, eex_metric metric, eex_exit_result *result);

/* The exit rule (branches/exit_rule.c), the one every path uses: classifiers
 * 0..n-1 in network order (side exits, then the final one); the first whose
 * confidence passes its threshold (strictly above it) answers, else the most
 * confident, the earliest on a tie. thresholds[k] per classifier (NULL: none
 * passes). Returns the answering index (-1 when n < 1); *passed (may be NULL)
 * tells whether it passed its threshold. NaN never passes. */
EEX_API int eex_exit_passes(float confidence, float threshold);
EEX_API int eex_exit_choose(const float *confidences, const float *thresholds, int n, int *passed);

/* Confidence of one logits vector: softmax(logits / temperature), then the
 * metric. Writes the argmax class. EEX_ERR_NUMERIC for NaN/Inf logits or a
 * non-positive temperature. */
EEX_API eex_status eex_confidence(const float *logits, int n, float temperature, eex_metric metric, float *confidence,
                          int *cls);

/* ---- adaptive p_tar (AdaEE-like UCB; docs/thresholds.md) ----------------------
 * Per context (the detector's class; 0 without a detector) a UCB1 bandit
 * picks p_tar among candidate thresholds. The reward needs no label: 0 when
 * an edge exit answers; max(0, C_final - C_edge) - o when the image is
 * offloaded (C_edge: the confidence of the last exit the edge computed;
 * a degraded answer gains nothing: -o). */

#define EEX_ADAPTIVE_MAX_ARMS 32
typedef struct eex_adaptive_opts {
    const float *candidates;  /* candidate p_tar values, 1..EEX_ADAPTIVE_MAX_ARMS */
    int n_candidates;
    double offload_cost;      /* o: what an offload costs, in confidence units */
    double exploration;       /* c in mean + c * sqrt(ln n / n_arm); 0 = sqrt(2) */
} eex_adaptive_opts;

/* Gives the session a bandit (NULL opts: removes it); runs with
 * policy.adaptive = 1 then use it and learn from each answer. */
EEX_API eex_status eex_session_set_adaptive(eex_session *session, const eex_adaptive_opts *opts);
/* Forgets everything the session's bandit learnt. */
EEX_API void eex_session_reset_adaptive(eex_session *session);

/* The bandit alone, for callers that decide from recorded confidences. */
typedef struct eex_bandit eex_bandit;
EEX_API eex_status eex_bandit_new(const eex_adaptive_opts *opts, int n_contexts, eex_bandit **out);
EEX_API void eex_bandit_free(eex_bandit *bandit);
EEX_API void eex_bandit_reset(eex_bandit *bandit);
/* The arm to play in `context` (out-of-range contexts use 0): an arm not yet
 * played there (lowest index first), else the highest upper confidence bound. */
EEX_API int eex_bandit_choose(eex_bandit *bandit, int context);
EEX_API float eex_bandit_threshold(const eex_bandit *bandit, int arm);
EEX_API void eex_bandit_update(eex_bandit *bandit, int context, int arm, double reward);
/* Plays of an arm in a context (for reports and tests). */
EEX_API long eex_bandit_plays(const eex_bandit *bandit, int context, int arm);
/* The reward above: conf[last_edge] (-1: no edge exit) and conf[final]. */
EEX_API double eex_adaptive_reward(const float *confidences, int last_edge, int final_index, int offloaded,
                           double offload_cost);

/* Nodes executed by the last run of any kind (for tests and profiling). */
EEX_API int eex_session_nodes_executed(const eex_session *session);

/* ---- distortions and the detector's spectrum (docs/distortions.md) -------------- */

/* splitmix64: advances *state and returns the next 64-bit value. */
EEX_API uint64_t eex_splitmix64(uint64_t *state);
/* Additive Gaussian noise, sigma on the 0..255 scale, clipped; HWC uint8. */
EEX_API eex_status eex_noise_u8(const uint8_t *src, uint8_t *dst, int height, int width, int channels, double sigma,
                        uint64_t seed);
/* Gaussian blur, kernel 2*ceil(2 sigma)+1, zero border; HWC uint8. */
EEX_API eex_status eex_blur_u8(const uint8_t *src, uint8_t *dst, int height, int width, int channels, double sigma);
/* fftshift(20 ln |DFT2(gray)|) clipped to 0..255 and truncated; out is height x width
 * (at most 4096 x 4096; the DFT costs height * width * (height + width)). */
EEX_API eex_status eex_spectrum_u8(const uint8_t *src, int height, int width, int channels, uint8_t *out);
/* The detector's spectrum image: an image whose longer side exceeds
 * EEX_SPECTRUM_MAX_SIDE is first resized (eex_resize_u8) so that side is
 * EEX_SPECTRUM_MAX_SIDE, then eex_spectrum_u8. out holds *out_h x *out_w
 * (eex_spectrum_size tells them beforehand). */
#define EEX_SPECTRUM_MAX_SIDE 256
EEX_API void eex_spectrum_size(int height, int width, int *out_h, int *out_w);
EEX_API eex_status eex_detector_spectrum_u8(const uint8_t *src, int height, int width, int channels, uint8_t *out,
                                    int *out_h, int *out_w);
/* Bilinear resize (half-pixel centres) of an HWC uint8 image to oh x ow,
 * every channel, rounded to the nearest uint8 (floor(v + 0.5)). */
EEX_API void eex_resize_u8(const uint8_t *src, int height, int width, int channels, int oh, int ow, uint8_t *out);
/* Bilinear resize (half-pixel centres) of one channel of an HWC uint8 image
 * into a float plane of oh x ow, with out = (v / 255 - mean) / std. */
EEX_API void eex_resize_channel(const uint8_t *src, int height, int width, int channels, int channel, int oh, int ow,
                        float mean, float std, float *out);

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

/* The path as the edge sees it from its own requests: RTT (rtt_ms when
 * given: the request's PING, eex_cloud_client_probe_rtt_ms, or the kernel's
 * RTT; else the reply time less the cloud's time and the transfer) and
 * throughput (bytes over what is left of the reply time after RTT and the
 * cloud's time), both smoothed. */
typedef struct eex_path_est {
    double rtt_ms, mbit;      /* 0 until the first sample */
    int samples;
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
#endif /* EEX_H */
