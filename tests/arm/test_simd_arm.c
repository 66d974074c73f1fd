/* The randomized kernel checks of kernels/selfcheck.c as a plain program,
 * for the AArch64 build that runs under qemu-aarch64 (`make test-arm`),
 * where Criterion is not available. Checks every table the CPU runs (NEON
 * and scalar) and ends with "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>

#include "../../kernels/selfcheck.h"

int main(int argc, char **argv)
{
    const int iters = argc > 1 ? atoi(argv[1]) : 60;
    int passed = 0, failed = 0;
    char msg[512];
    for (int isa = 0; isa < EEX_ISA_COUNT; isa++) {
        const eex_kernel_table *kt = eex_kernels_for((eex_isa)isa);
        if (!kt)
            continue;
        for (int c = 0; c < EEX_SELFCHECK_COUNT; c++) {
            if (eex_selfcheck_kernel(kt, c, iters, 1, msg, sizeof msg)) {
                failed++;
                printf("FAIL  %s %s: %s\n", kt->name, eex_selfcheck_name(c), msg);
            } else {
                passed++;
                printf("ok    %s %s (%d random cases)\n", kt->name, eex_selfcheck_name(c), iters);
            }
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
