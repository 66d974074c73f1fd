/* Every fast-kernel table this CPU runs (scalar, AVX2, AVX-512 on x86;
 * NEON runs under qemu through tests/arm) against the reference kernels,
 * over randomized shapes: see simd_cases.h. */
#include <criterion/criterion.h>

#include "simd_cases.h"

static void check_table(eex_isa isa, int (*check)(const eex_kernel_table *, char *, size_t), int iters)
{
    const eex_kernel_table *kt = eex_kernels_for(isa);
    if (!kt)
        return; /* not on this CPU or this build */
    char msg[512];
    for (int it = 0; it < iters; it++)
        cr_assert(check(kt, msg, sizeof msg) == 0, "%s", msg);
}

#define FOR_EACH_ISA(check, iters)                                                                                   \
    for (int isa = 0; isa < EEX_ISA_COUNT; isa++)                                                                    \
    check_table((eex_isa)isa, check, iters)

static int it_counter;
static int conv_gemm_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_conv_gemm(kt, it_counter++, msg, cap); }
static int dense_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_dense(kt, msg, cap); }
static int dense_half_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_dense_half(kt, msg, cap); }
static int dw_s1_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_dwconv(kt, 0, msg, cap); }
static int dw_s2_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_dwconv(kt, 1, msg, cap); }
static int dw5_s1_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_dwconv(kt, 3, msg, cap); }
static int dw5_s2_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_dwconv(kt, 4, msg, cap); }
static int dw_any_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_dwconv(kt, 2, msg, cap); }
static int maxpool_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_pool(kt, 1, msg, cap); }
static int avgpool_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_pool(kt, 0, msg, cap); }
static int gap_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_gap(kt, msg, cap); }
static int binary_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_binary(kt, msg, cap); }
static int unary_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_unary(kt, msg, cap); }
static int layernorm_case(const eex_kernel_table *kt, char *msg, size_t cap) { return sc_layernorm(kt, msg, cap); }

Test(simd, tables_exist_and_best_is_usable)
{
    const eex_kernel_table *best = eex_kernels_best();
    cr_assert_not_null(best);
    cr_assert_not_null(eex_kernels_for(EEX_ISA_SCALAR));
    cr_assert(best->vl >= 1 && best->mr >= 1 && best->nr % best->vl == 0);
    cr_assert_eq(eex_kernels_for(best->isa), best);
}

Test(simd, conv_gemm_random_shapes) { FOR_EACH_ISA(conv_gemm_case, 120); }
Test(simd, dense_random_shapes) { FOR_EACH_ISA(dense_case, 60); }
Test(simd, dense_half_random_shapes) { FOR_EACH_ISA(dense_half_case, 60); }
Test(simd, dwconv3x3_s1_random_shapes) { FOR_EACH_ISA(dw_s1_case, 150); }
Test(simd, dwconv3x3_s2_random_shapes) { FOR_EACH_ISA(dw_s2_case, 150); }
Test(simd, dwconv5x5_s1_random_shapes) { FOR_EACH_ISA(dw5_s1_case, 100); }
Test(simd, dwconv5x5_s2_random_shapes) { FOR_EACH_ISA(dw5_s2_case, 100); }
Test(simd, dwconv_any_random_shapes) { FOR_EACH_ISA(dw_any_case, 100); }
Test(simd, maxpool_random_shapes) { FOR_EACH_ISA(maxpool_case, 100); }
Test(simd, avgpool_random_shapes) { FOR_EACH_ISA(avgpool_case, 100); }
Test(simd, gap_random_shapes) { FOR_EACH_ISA(gap_case, 60); }
Test(simd, binary_random_shapes) { FOR_EACH_ISA(binary_case, 100); }
Test(simd, unary_random_shapes) { FOR_EACH_ISA(unary_case, 300); }
Test(simd, layernorm_random_shapes) { FOR_EACH_ISA(layernorm_case, 100); }
