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

#define EEX_VERSION_STRING "0.1.0"
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

/* Short stable name of a status ("EEX_ERR_CHECKSUM"). */
const char *eex_status_name(eex_status status);

/* The message of the last failed call on this thread ("" if none). */
const char *eex_last_error(void);

/* ---- models --------------------------------------------------------------- */

typedef struct eex_model eex_model;

/* Maps, validates and binds a model file. Weights stay in the read-only map;
 * kernels' packed copies are made here, once. */
eex_status eex_model_open(const char *path, eex_model **out);

/* The same from a caller-owned buffer that must outlive the model (used by the
 * fuzzers and by tests that build files in memory). */
eex_status eex_model_open_buffer(const void *data, size_t size, eex_model **out);

void eex_model_close(eex_model *model);

int eex_model_input_count(const eex_model *model);
int eex_model_output_count(const eex_model *model);
const char *eex_model_input_name(const eex_model *model, int index);
const char *eex_model_output_name(const eex_model *model, int index);

/* Logical NCHW shape of input or output `index` at batch 1 (dims[0] = 1).
 * Returns the rank, or -1 for a bad index. */
int eex_model_input_shape(const eex_model *model, int index, int64_t dims[EEX_MAX_RANK]);
int eex_model_output_shape(const eex_model *model, int index, int64_t dims[EEX_MAX_RANK]);

/* Metadata from the file, NULL / 0 when absent. */
const char *eex_model_name(const eex_model *model);
int eex_model_label_count(const eex_model *model);
const char *eex_model_label(const eex_model *model, int index);
/* Fills up to `cap` per-channel values; returns how many the file holds. */
int eex_model_mean(const eex_model *model, float *mean, int cap);
int eex_model_std(const eex_model *model, float *std, int cap);

/* Model statistics, as reported by `eex info`. */
typedef struct eex_model_stats {
    int nodes;             /* executable nodes */
    int64_t params;        /* constant elements */
    int64_t macs;          /* multiply-accumulates for one image */
    uint64_t file_bytes;
} eex_model_stats;
void eex_model_get_stats(const eex_model *model, eex_model_stats *stats);

/* Node count by op: writes up to `cap` (name, count) pairs, returns how many ops exist. */
int eex_model_op_histogram(const eex_model *model, const char **names, int *counts, int cap);

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
eex_status eex_session_new(const eex_model *model, const eex_session_opts *opts, eex_session **out);
void eex_session_free(eex_session *session);

/* Bytes of the activation arena (for the planned batch). */
size_t eex_session_arena_bytes(const eex_session *session);

/* Copies input `index` in from logical NCHW floats. shape[0] is the batch and
 * may differ from the planned one (the arena is re-planned, which allocates);
 * the other dims must match the model. `rank` is the number of dims. */
eex_status eex_session_set_input(eex_session *session, int index, const float *data,
                                 const int64_t *shape, int rank);

eex_status eex_session_run(eex_session *session);

/* Copies output `index` out as logical NCHW floats into dst (cap floats).
 * Writes its shape and rank when those pointers are not NULL. */
eex_status eex_session_output(const eex_session *session, int index, float *dst, size_t cap,
                              int64_t shape[EEX_MAX_RANK], int *rank);

/* Per-node timing of the last run (filled only when enabled). */
eex_status eex_session_enable_profiling(eex_session *session, int on);
int eex_session_node_count(const eex_session *session);
typedef struct eex_node_info {
    const char *name;
    const char *op;
    int64_t out_shape[4];  /* logical NCHW */
    int out_rank;
    int64_t macs;          /* multiply-accumulates at the current batch */
    int64_t bytes;         /* bytes read + written by the node */
    double ms;             /* duration in the last profiled run */
} eex_node_info;
eex_status eex_session_node_info(const eex_session *session, int index, eex_node_info *info);

#ifdef __cplusplus
}
#endif
#endif /* EEX_H */
