/* The randomized kernel checks of tests/unit/simd_cases.h as a plain
 * program, for the AArch64 build that runs under qemu-aarch64 (`make
 * test-arm`), where Criterion is not available. Checks every table the CPU
 * runs (NEON and scalar) and ends with "N passed, N failed". */
#include "../unit/simd_cases.h"

int main(int argc, char **argv)
{
    const int iters = argc > 1 ? atoi(argv[1]) : 60;
    static const char *const names[] = {"conv_gemm", "dense",   "dwconv3x3_s1", "dwconv3x3_s2", "dwconv",
                                        "maxpool",   "avgpool", "gap",          "binary",       "unary",
                                        "dwconv5x5_s1", "dwconv5x5_s2", "dense_half", "layernorm"};
    int passed = 0, failed = 0;
    char msg[512];
    for (int isa = 0; isa < EEX_ISA_COUNT; isa++) {
        const eex_kernel_table *kt = eex_kernels_for((eex_isa)isa);
        if (!kt)
            continue;
        for (int c = 0; c < 14; c++) {
            int bad = 0;
            for (int it = 0; it < iters && !bad; it++) {
                switch (c) {
                case 0: bad = sc_conv_gemm(kt, it, msg, sizeof msg); break;
                case 1: bad = sc_dense(kt, msg, sizeof msg); break;
                case 2: bad = sc_dwconv(kt, 0, msg, sizeof msg); break;
                case 3: bad = sc_dwconv(kt, 1, msg, sizeof msg); break;
                case 4: bad = sc_dwconv(kt, 2, msg, sizeof msg); break;
                case 5: bad = sc_pool(kt, 1, msg, sizeof msg); break;
                case 6: bad = sc_pool(kt, 0, msg, sizeof msg); break;
                case 7: bad = sc_gap(kt, msg, sizeof msg); break;
                case 8: bad = sc_binary(kt, msg, sizeof msg); break;
                case 10: bad = sc_dwconv(kt, 3, msg, sizeof msg); break;
                case 11: bad = sc_dwconv(kt, 4, msg, sizeof msg); break;
                case 12: bad = sc_dense_half(kt, msg, sizeof msg); break;
                case 13: bad = sc_layernorm(kt, msg, sizeof msg); break;
                default: bad = sc_unary(kt, msg, sizeof msg); break;
                }
            }
            if (bad) {
                failed++;
                printf("FAIL  %s %s: %s\n", kt->name, names[c], msg);
            } else {
                passed++;
                printf("ok    %s %s (%d random cases)\n", kt->name, names[c], iters);
            }
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
