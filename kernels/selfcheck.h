/* The fast kernels checked against their kernels/ref twins at run time, on
 * randomized shapes: odd channel counts (vector tails), strides, padding on
 * every side, dilation, groups, every fused activation, and work split into
 * random slices as the thread pool splits it. The unit tests run these on
 * every table the CPU runs (tests/unit/test_simd.c), and so does `eex
 * selftest` on whatever machine it is copied to (an ARM board, say). */
#ifndef EEX_SELFCHECK_H
#define EEX_SELFCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"
#include "eex.h"  /* the public entries: eex_selfcheck_count, eex_selfcheck_name, eex_selfcheck */

/* The kernel checks, by index 0 .. EEX_SELFCHECK_COUNT-1. */
enum {
    EEX_SELFCHECK_CONV_GEMM,
    EEX_SELFCHECK_DENSE,
    EEX_SELFCHECK_DENSE_HALF,
    EEX_SELFCHECK_DWCONV3X3_S1,
    EEX_SELFCHECK_DWCONV3X3_S2,
    EEX_SELFCHECK_DWCONV5X5_S1,
    EEX_SELFCHECK_DWCONV5X5_S2,
    EEX_SELFCHECK_DWCONV,
    EEX_SELFCHECK_MAXPOOL,
    EEX_SELFCHECK_AVGPOOL,
    EEX_SELFCHECK_GAP,
    EEX_SELFCHECK_BINARY,
    EEX_SELFCHECK_UNARY,
    EEX_SELFCHECK_LAYERNORM,
    EEX_SELFCHECK_EXP_FAMILY, /* sigmoid, silu and the silu epilogue, ulp by ulp, to +-FLT_MAX */
    EEX_SELFCHECK_DW_PW,      /* depthwise + pointwise in strips (dw_pw.c) against the two apart */
    EEX_SELFCHECK_COUNT
};

/* Runs `iters` random cases of one check on table kt, shapes drawn from
 * `seed` (the same seed gives the same shapes on every machine). Returns 0
 * when every case matched the reference within its tolerance, 1 on the
 * first mismatch (msg says which shape, where and by how much), -1 when
 * memory ran out or `check` is not one (msg says so). Allocates per case and
 * frees before returning; never exits. */
/* The public eex_selfcheck(isa, ...) is this on eex_kernels_for(isa). */
int eex_selfcheck_kernel(const eex_kernel_table *kt, int check, int iters, uint64_t seed, char *msg, size_t cap);

#endif
