/* The bound graph: what eex_model holds after a file is validated. Values are
 * activations (graph inputs and node outputs); constants point into the file.
 * Shapes are logical NCHW per image; memory is NHWC. */
#ifndef EEX_GRAPH_H
#define EEX_GRAPH_H

#include <stdint.h>

#include "../kernels/kernels.h"
#include "../weights/eexfile.h"
#include "../base/arena.h"
#include "eex.h"
#include "../base/ops.h"

typedef struct eex_value {
    const char *name;
    int rank;              /* logical rank: 1 ([N]), 2 ([N,C]), 3 ([N,C,W]) or 4 ([N,C,H,W]) */
    int c, h, w;           /* per-image dims; rank 3 has h = 1, rank 2 h = w = 1, rank 1 c = h = w = 1 */
    int producer;          /* node index, -1 for a graph input */
    int last_use;          /* last node that reads it (graph outputs: n_nodes) */
} eex_value;

typedef enum eex_operand_kind { EEX_OPND_NONE = 0, EEX_OPND_VALUE, EEX_OPND_CONST } eex_operand_kind;

typedef struct eex_operand {
    eex_operand_kind kind;
    int index;             /* into values or into the file's tensors */
} eex_operand;

/* DenseNet-121 concatenates up to 25 values at once (docs/format.md: concat) */
#define EEX_NODE_MAX_INPUTS 64

/* How a fast conv is executed; chosen at load from the shape. */
typedef enum eex_conv_algo {
    EEX_CONV_GEMM_1X1 = 0, /* pointwise, stride 1, no padding: one GEMM */
    EEX_CONV_DEPTHWISE,    /* group == in == out channels */
    EEX_CONV_IM2COL,       /* everything else: the indirect GEMM over the NHWC input */
    EEX_CONV_WINOGRAD      /* 3x3 stride 1, one group: Winograd F(4x4, 3x3) (kernels/winograd.h) */
} eex_conv_algo;

typedef struct eex_node {
    eex_op op;
    const char *name;
    int n_in;
    eex_operand in[EEX_NODE_MAX_INPUTS];
    int out;               /* value index */
    /* attributes, parsed and checked at load */
    int kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, group, ceil_mode, count_include_pad;
    eex_act_params act;
    float p0, p1;          /* clip min/max, hardsigmoid alpha/beta, leakyrelu/elu alpha,
                              pad value, layernorm epsilon, lrn alpha/beta */
    float p2;              /* lrn bias */
    int binop;             /* add/mul/sub/div/max/min/prelu: the eex_binop after any swap */
    int axis, start, step; /* slice (output count is the output dim); shuffle groups in `group`; lrn size in kh */
    eex_bcast bcast;       /* add/mul: how the second operand is indexed */
    int swap;              /* add/mul: operands swapped so the full one is first */
    /* derived */
    int64_t macs;          /* per image */
    eex_conv_algo algo;
    float *packed;         /* fast-kernel weight layout, or NULL */
    uint16_t *packed_half; /* dense with float16 weights: [panels][K][nr] float16 panels */
    float *packed_half_bias; /* and their bias, [panels * nr], zero-padded */
    int64_t scratch_floats;/* per-image scratch the fast kernel needs */
    int pw_next;           /* depthwise conv whose output only the next node, a pointwise
                              conv, reads: the pair may run as one (exec.c, eex_exec_fuses) */
    /* early-exit role (engine/ee_bind.c); see eex_node_info */
    int ee_stage, ee_head_exit, ee_detector;
    unsigned ee_head_experts;
    const float *zeros;    /* kw*ic zeros a padded GEMM conv reads for taps in the padding */
} eex_node;

/* A set of node indices in graph (topological) order. */
typedef struct eex_nodeset {
    int n;
    int *idx;
} eex_nodeset;

/* The early-exit structure named by the ee.* metadata (docs/format.md),
 * resolved to values and node sets at load. Exit index k is 0-based here;
 * k == n_exits is the final classifier. */
typedef struct eex_ee {
    int n_exits;               /* side exits E */
    int n_experts;
    const char *const *experts;
    int n_classes;
    int image_input;           /* index into model inputs */
    int *attach;               /* [E + 1] value read by exit k (k = E: final) */
    int *logits;               /* [(E + 1) * n_experts] value of exit k, expert e */
    float *temperature;        /* same shape */
    eex_nodeset *stage;        /* [E + 1] backbone nodes first needed for attach[k] */
    eex_nodeset *head;         /* [(E + 1) * n_experts] head nodes from attach[k] to logits */
    int detector_input;        /* index into model inputs, -1 without detector */
    int det_logits;            /* value, -1 without detector */
    int n_det_classes;
    const char *const *det_classes;
    int *det_expert;           /* [n_det_classes] expert index each class selects */
    int det_h, det_w;
    eex_nodeset detector;
    int n_cuts;
    int *cut_value;            /* [n_cuts] */
    int *cut_exit;             /* [n_cuts] exits (count) whose attach is computed before the cut */
    eex_nodeset *to_cut;       /* [n_cuts] backbone nodes needed for the cut value */
    eex_nodeset *after_cut;    /* [n_cuts * n_experts] nodes from the cut to expert e's final logits */
    float threshold;           /* default p_tar, < 0 when absent */
    float thresholds[EEX_MAX_EXITS + 1]; /* ee.thresholds: per-exit default p_tar */
    int n_thresholds;          /* 0 when absent, else E or E + 1 */
} eex_ee;

struct eex_model {
    eex_file file;
    eex_arena arena;       /* owns the bound graph below */
    int n_values;
    eex_value *values;
    int n_nodes;
    eex_node *nodes;
    int n_inputs, n_outputs;
    int *inputs, *outputs; /* value indices */
    int64_t params, macs;
    const char *name;
    int n_labels;
    const char *const *labels;
    int n_mean, n_std;
    const double *mean, *std;
    eex_ee ee;                 /* n_exits == 0 and no detector for a plain model */
    int has_ee;
};

static inline int64_t eex_value_elems(const eex_value *v) { return (int64_t)v->c * v->h * v->w; }

/* The logical NCHW dims of a value for `batch` images; returns the rank. */
static inline int eex_value_dims(const eex_value *v, int64_t batch, int64_t dims[4])
{
    dims[0] = batch;
    switch (v->rank) {
    case 1: return 1;
    case 2: dims[1] = v->c; return 2;
    case 3: dims[1] = v->c, dims[2] = v->w; return 3;
    default: dims[1] = v->c, dims[2] = v->h, dims[3] = v->w; return 4;
    }
}

/* Binds a parsed file: resolves names, parses attributes, infers shapes,
 * computes lifetimes and MACs, and packs weights for the fast kernels. */
eex_status eex_graph_bind(eex_model *m);

/* Reads the ee.* metadata, when present, into m->ee (after eex_graph_bind). */
eex_status eex_ee_bind(eex_model *m);

/* Pointer to a constant operand's floats. */
static inline const float *eex_const_data(const eex_model *m, eex_operand o)
{
    return (const float *)m->file.tensors[o.index].data;
}

#endif
