/* Winograd F(4x4, 3x3) of every table this CPU runs against its scalar twin
 * and against direct convolution, on random shapes (winograd_cases.h states
 * and asserts the error bound); NEON runs under qemu via tests/arm. */
#include <criterion/criterion.h>

#include "winograd_cases.h"

Test(winograd, random_shapes_every_isa)
{
    char msg[600];
    for (int isa = 0; isa < EEX_ISA_COUNT; isa++) {
        const eex_kernel_table *kt = eex_kernels_for((eex_isa)isa);
        if (!kt)
            continue;
        for (int it = 0; it < 80; it++)
            cr_assert(sc_winograd(kt, it, msg, sizeof msg) == 0, "%s", msg);
    }
    cr_log_info("worst error: %.2f of the bound", wc_worst);
}

Test(winograd, per_thread_scratch_grows)
{
    float *a = eex_wino_scratch(100);
    cr_assert_not_null(a);
    a[99] = 1.0f;
    float *b = eex_wino_scratch(50);
    cr_assert_eq(a, b);
    float *c = eex_wino_scratch(1 << 20);
    cr_assert_not_null(c);
    c[(1 << 20) - 1] = 2.0f;
}
