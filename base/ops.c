#include "ops.h"

#include <string.h>

static const char *const op_names[EEX_OP_COUNT] = {
    [EEX_OP_INVALID] = "invalid",
    [EEX_OP_CONV] = "conv",
    [EEX_OP_DENSE] = "dense",
    [EEX_OP_ADD] = "add",
    [EEX_OP_MUL] = "mul",
    [EEX_OP_RELU] = "relu",
    [EEX_OP_CLIP] = "clip",
    [EEX_OP_SIGMOID] = "sigmoid",
    [EEX_OP_HARDSIGMOID] = "hardsigmoid",
    [EEX_OP_HARDSWISH] = "hardswish",
    [EEX_OP_MAXPOOL] = "maxpool",
    [EEX_OP_AVGPOOL] = "avgpool",
    [EEX_OP_GLOBALAVGPOOL] = "globalavgpool",
    [EEX_OP_FLATTEN] = "flatten",
    [EEX_OP_CONCAT] = "concat",
    [EEX_OP_SOFTMAX] = "softmax",
    [EEX_OP_SUB] = "sub",
    [EEX_OP_DIV] = "div",
    [EEX_OP_MAX] = "max",
    [EEX_OP_MIN] = "min",
    [EEX_OP_PRELU] = "prelu",
    [EEX_OP_TANH] = "tanh",
    [EEX_OP_LEAKYRELU] = "leakyrelu",
    [EEX_OP_ELU] = "elu",
    [EEX_OP_ERF] = "erf",
    [EEX_OP_GELU] = "gelu",
    [EEX_OP_ABS] = "abs",
    [EEX_OP_NEG] = "neg",
    [EEX_OP_EXP] = "exp",
    [EEX_OP_SQRT] = "sqrt",
    [EEX_OP_PAD] = "pad",
    [EEX_OP_SLICE] = "slice",
    [EEX_OP_SHUFFLE] = "shuffle",
    [EEX_OP_RESHAPE] = "reshape",
    [EEX_OP_LAYERNORM] = "layernorm",
    [EEX_OP_GLOBALMAXPOOL] = "globalmaxpool",
    [EEX_OP_LRN] = "lrn",
    [EEX_OP_SILU] = "silu",
};

eex_op eex_op_from_name(const char *name)
{
    for (int i = 1; i < EEX_OP_COUNT; i++)
        if (strcmp(name, op_names[i]) == 0)
            return (eex_op)i;
    return EEX_OP_INVALID;
}

const char *eex_op_name(eex_op op)
{
    if ((unsigned)op >= EEX_OP_COUNT)
        return "invalid";
    return op_names[op];
}
