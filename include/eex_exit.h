/* eex: early exits. Part of the public API; <eex.h> includes it.
 *
 * The exit structure of a model (exits, expert sets, temperatures, cut
 * points), the policy runs, the exit rule and confidence, the adaptive
 * p_tar bandit and the distortion detector's front end (branches/, engine/ee_run.c). */
/* eex.h first, outside the guard: it includes this header back, after the core. */
#include "eex.h"

#ifndef EEX_EXIT_H
#define EEX_EXIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

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
/* The probabilities of one logits vector: probs = softmax(logits / temperature),
 * computed in double and shifted by the largest logit, as eex_confidence and
 * eex_session_exit_probs compute them. probs may be logits (in place).
 * EEX_ERR_NUMERIC for NaN/Inf logits or a non-positive temperature. */
EEX_API eex_status eex_softmax(const float *logits, int n, float temperature, float *probs);

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

#ifdef __cplusplus
}
#endif
#endif /* EEX_EXIT_H */
