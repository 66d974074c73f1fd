/* eex: an inference engine for early-exit neural networks.
 *
 * The public API's core: versions, status, models, sessions, images, the
 * build's kernels. It includes the other two public headers, so
 * #include <eex.h> gives all of it: eex_exit.h (early exits, the exit rule,
 * confidence, the adaptive bandit, the detector's front end) and
 * eex_offload.h (the partition executor). Objects are opaque handles; every
 * fallible call returns an eex_status, and the calling thread's last error
 * message (what failed and where) is available from eex_last_error(). The
 * library never exits or aborts on bad input.
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

/* CRC-32 (IEEE 802.3, reflected: zlib's and gzip's crc32), the checksum of
 * the .eex file's sections and of the wire's frames. Pass 0 to start, the
 * last value to continue. */
EEX_API uint32_t eex_crc32(uint32_t crc, const void *data, size_t n);

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

/* ---- the build's kernels -------------------------------------------------------
 * What `eex info`, `eex bench` and `eex selftest` report about the kernels. */

/* The kernel ISA that sessions with EEX_KERNELS_AUTO use on this CPU:
 * "avx512", "avx2", "neon" or "scalar" (the EEX_ISA environment variable caps
 * the choice, for measurements). */
EEX_API const char *eex_kernel_isa(void);
/* The kernel ISAs this build holds and this CPU runs, in the order scalar,
 * avx2, avx512, neon: writes up to `cap` names, returns how many there are. */
EEX_API int eex_kernel_isas(const char **names, int cap);
/* The GEMM of dense layers and reference convolutions: "openblas", or
 * "builtin" in a BLAS=none build. */
EEX_API const char *eex_gemm_backend(void);

/* The kernel self-check (kernels/selfcheck.c): one ISA's fast kernels against
 * their scalar reference twins on random shapes (odd channel counts, strides,
 * padding, dilation, groups, activations, work split as the threads split
 * it). Checks are numbered 0 .. eex_selfcheck_count() - 1; eex_selfcheck_name
 * says which kernel ("conv_gemm", "dense", ...; "?" for a bad number). */
EEX_API int eex_selfcheck_count(void);
EEX_API const char *eex_selfcheck_name(int check);
/* Runs `iters` random cases of one check on the kernels of `isa` (a name
 * from eex_kernel_isas), shapes drawn from `seed` (the same seed draws the
 * same shapes on every machine). Returns 0 when every case matched the
 * reference within its tolerance, 1 on the first mismatch (msg says which
 * shape, where and by how much), -1 when memory ran out or `isa` or `check`
 * is not one here (msg says so). */
EEX_API int eex_selfcheck(const char *isa, int check, int iters, uint64_t seed, char *msg, size_t cap);

#ifdef __cplusplus
}
#endif

/* The early-exit and partition-executor halves of the API: one #include <eex.h>
 * gives the whole of it. */
#include "eex_exit.h"
#include "eex_offload.h"

#endif /* EEX_H */
