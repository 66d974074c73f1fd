/* The Winograd checks of tests/unit/winograd_cases.h as a plain program for
 * the AArch64 build under qemu-aarch64 (`make test-arm`): every table the
 * CPU runs (NEON and scalar); ends with "N passed, N failed". */
#include "../unit/winograd_cases.h"

int main(int argc, char **argv)
{
    const int iters = argc > 1 ? atoi(argv[1]) : 40;
    int passed = 0, failed = 0;
    char msg[600];
    for (int isa = 0; isa < EEX_ISA_COUNT; isa++) {
        const eex_kernel_table *kt = eex_kernels_for((eex_isa)isa);
        if (!kt)
            continue;
        int bad = 0;
        for (int it = 0; it < iters && !bad; it++)
            bad = sc_winograd(kt, it, msg, sizeof msg);
        if (bad) {
            failed++;
            printf("FAIL  %s winograd43: %s\n", kt->name, msg);
        } else {
            passed++;
            printf("ok    %s winograd43 (%d random cases, worst error %.2f of the bound)\n", kt->name, iters,
                   wc_worst);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
