/* The op set of the .eex format (docs/format.md, "Ops of v1"). */
#ifndef EEX_OPS_H
#define EEX_OPS_H

typedef enum eex_op {
    EEX_OP_INVALID = 0,
    EEX_OP_CONV,
    EEX_OP_DENSE,
    EEX_OP_ADD,
    EEX_OP_MUL,
    EEX_OP_RELU,
    EEX_OP_CLIP,
    EEX_OP_SIGMOID,
    EEX_OP_HARDSIGMOID,
    EEX_OP_HARDSWISH,
    EEX_OP_MAXPOOL,
    EEX_OP_AVGPOOL,
    EEX_OP_GLOBALAVGPOOL,
    EEX_OP_FLATTEN,
    EEX_OP_CONCAT,
    EEX_OP_SOFTMAX,
    /* added for the torchvision zoo and ONNX's node tests (docs/format.md) */
    EEX_OP_SUB,
    EEX_OP_DIV,
    EEX_OP_MAX,
    EEX_OP_MIN,
    EEX_OP_PRELU,
    EEX_OP_TANH,
    EEX_OP_LEAKYRELU,
    EEX_OP_ELU,
    EEX_OP_ERF,
    EEX_OP_GELU,
    EEX_OP_ABS,
    EEX_OP_NEG,
    EEX_OP_EXP,
    EEX_OP_SQRT,
    EEX_OP_PAD,
    EEX_OP_SLICE,
    EEX_OP_SHUFFLE,
    EEX_OP_RESHAPE,
    EEX_OP_LAYERNORM,
    EEX_OP_GLOBALMAXPOOL,
    EEX_OP_LRN,
    EEX_OP_SILU,  /* x * sigmoid(x) (EfficientNet's SiLU/swish) */
    EEX_OP_COUNT
} eex_op;

/* EEX_OP_INVALID for a name this build does not know. */
eex_op eex_op_from_name(const char *name);
const char *eex_op_name(eex_op op);

/* Activation fused into conv, dense and add. */
typedef enum eex_act {
    EEX_ACT_NONE = 0,
    EEX_ACT_RELU,
    EEX_ACT_CLIP,
    EEX_ACT_HARDSWISH,
    EEX_ACT_SILU  /* x * sigmoid(x); appended: the values above are unchanged */
} eex_act;

#endif
