/* Every fast-kernel table this CPU runs (scalar, AVX2, AVX-512 on x86;
 * NEON runs under qemu through tests/arm) against the reference kernels,
 * over randomized shapes: the checks of kernels/selfcheck.c, which `eex
 * selftest` also runs. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../kernels/selfcheck.h"

static void check_all_tables(int check, int iters)
{
    char msg[512];
    for (int isa = 0; isa < EEX_ISA_COUNT; isa++) {
        const eex_kernel_table *kt = eex_kernels_for((eex_isa)isa);
        if (!kt)
            continue; /* not on this CPU or this build */
        const int r = eex_selfcheck_kernel(kt, check, iters, 1, msg, sizeof msg);
        cr_assert(r == 0, "%s %s: %s", kt->name, eex_selfcheck_name(check), msg);
    }
}

Test(simd, tables_exist_and_best_is_usable)
{
    const eex_kernel_table *best = eex_kernels_best();
    cr_assert_not_null(best);
    cr_assert_not_null(eex_kernels_for(EEX_ISA_SCALAR));
    cr_assert(best->vl >= 1 && best->mr >= 1 && best->nr % best->vl == 0);
    cr_assert_eq(eex_kernels_for(best->isa), best);
}

/* A check that cannot fail proves nothing: a table whose kernel is wrong
 * must be caught. The scalar table with its max pool swapped for the
 * average pool (same shapes, same reads) is wrong on almost every shape. */
Test(simd, a_wrong_kernel_is_caught)
{
    eex_kernel_table bad = *eex_kernels_for(EEX_ISA_SCALAR);
    bad.maxpool_f32 = bad.avgpool_f32;
    char msg[512];
    cr_assert_eq(eex_selfcheck_kernel(&bad, EEX_SELFCHECK_MAXPOOL, 20, 1, msg, sizeof msg), 1);
    cr_assert(strstr(msg, "max diff") != NULL, "%s", msg);
    cr_assert_eq(eex_selfcheck_kernel(&bad, EEX_SELFCHECK_COUNT, 1, 1, msg, sizeof msg), -1);
}

/* The public face of the same checks (eex selftest): every ISA eex_kernel_isas
 * lists, by name; the default ISA is among them; an unknown name is refused. */
Test(simd, public_selfcheck_by_isa_name)
{
    const char *isas[8];
    const int n = eex_kernel_isas(isas, 8);
    cr_assert(n >= 1 && n <= 8);
    int has_default = 0;
    char msg[512];
    for (int i = 0; i < n; i++) {
        has_default |= !strcmp(isas[i], eex_kernel_isa());
        for (int c = 0; c < eex_selfcheck_count(); c++)
            cr_assert_eq(eex_selfcheck(isas[i], c, 3, 1, msg, sizeof msg), 0, "%s %s: %s", isas[i],
                         eex_selfcheck_name(c), msg);
    }
    cr_assert(has_default, "eex_kernel_isa() %s is not listed", eex_kernel_isa());
    cr_assert_str_eq(isas[0], "scalar");
    cr_assert_eq(eex_selfcheck("no-such-isa", 0, 1, 1, msg, sizeof msg), -1);
    cr_assert_eq(eex_selfcheck("scalar", eex_selfcheck_count(), 1, 1, msg, sizeof msg), -1);
    cr_assert_str_eq(eex_selfcheck_name(-1), "?");
}

Test(simd, conv_gemm_random_shapes) { check_all_tables(EEX_SELFCHECK_CONV_GEMM, 120); }
Test(simd, dense_random_shapes) { check_all_tables(EEX_SELFCHECK_DENSE, 60); }
Test(simd, dense_half_random_shapes) { check_all_tables(EEX_SELFCHECK_DENSE_HALF, 60); }
Test(simd, dwconv3x3_s1_random_shapes) { check_all_tables(EEX_SELFCHECK_DWCONV3X3_S1, 150); }
Test(simd, dwconv3x3_s2_random_shapes) { check_all_tables(EEX_SELFCHECK_DWCONV3X3_S2, 150); }
Test(simd, dwconv5x5_s1_random_shapes) { check_all_tables(EEX_SELFCHECK_DWCONV5X5_S1, 100); }
Test(simd, dwconv5x5_s2_random_shapes) { check_all_tables(EEX_SELFCHECK_DWCONV5X5_S2, 100); }
Test(simd, dwconv_any_random_shapes) { check_all_tables(EEX_SELFCHECK_DWCONV, 100); }
Test(simd, maxpool_random_shapes) { check_all_tables(EEX_SELFCHECK_MAXPOOL, 100); }
Test(simd, avgpool_random_shapes) { check_all_tables(EEX_SELFCHECK_AVGPOOL, 100); }
Test(simd, gap_random_shapes) { check_all_tables(EEX_SELFCHECK_GAP, 60); }
Test(simd, binary_random_shapes) { check_all_tables(EEX_SELFCHECK_BINARY, 100); }
Test(simd, unary_random_shapes) { check_all_tables(EEX_SELFCHECK_UNARY, 300); }
Test(simd, layernorm_random_shapes) { check_all_tables(EEX_SELFCHECK_LAYERNORM, 100); }
Test(simd, exp_family_random_values) { check_all_tables(EEX_SELFCHECK_EXP_FAMILY, 300); }
/* depthwise + pointwise in strips (kernels/dw_pw.c): the bytes of the two kernels apart */
Test(simd, dw_pw_strips_random_shapes) { check_all_tables(EEX_SELFCHECK_DW_PW, 150); }
