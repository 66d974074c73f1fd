/* eex selftest: does the engine compute correctly on this machine? Every
 * fast kernel table the CPU runs against the reference kernels on random
 * shapes (kernels/selfcheck.c), then a tiny model embedded in the binary
 * against PyTorch's output for it, with the reference kernels and with the
 * fast ones on 1 and 3 threads. Needs no file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "selftest_model.h"

static const char help[] =
    "usage: eex selftest [--iters N] [--seed S] [--quiet]\n"
    "\n"
    "Checks that eex computes correctly on this machine before you trust its\n"
    "speed: every fast kernel of every ISA table this CPU runs (e.g. neon and\n"
    "scalar on AArch64; avx512, avx2 and scalar on x86-64) against its scalar\n"
    "reference twin on N random shapes each (odd channel counts, strides,\n"
    "padding, dilation, groups, activations, work split as the threads split\n"
    "it), then a tiny model built into the binary (every kernel kind, batch 2)\n"
    "against PyTorch's output for it: with the reference kernels on 1 thread\n"
    "and the fast kernels on 1 and 3 threads. Prints one line per check, the\n"
    "ISA the engine picks here, and the totals.\n"
    "\n"
    "options:\n"
    "  --iters N   random shapes per kernel check (default 30)\n"
    "  --seed S    seed for the shapes (default 1; the same seed draws the same\n"
    "              shapes on every machine)\n"
    "  --quiet     print only failures and the summary line\n"
    "\n"
    "exit status: 0 every check passed, 1 a check failed, 2 bad arguments.\n"
    "EEX_ISA=avx2|scalar|... caps the ISA the fast kernels use, as for bench.\n";

/* Relative to the largest expected logit: float32 against a float64 run */
#define MODEL_TOL 1e-4f

static const char *arch_name(void)
{
#if defined(__aarch64__)
    return "aarch64";
#elif defined(__x86_64__)
    return "x86-64";
#else
    return "other";
#endif
}

/* Runs the embedded model once; 0 pass, 1 mismatch or failure (msg). */
static int model_check(eex_kernels kernels, int threads, char *msg, size_t cap)
{
    eex_model *m = NULL;
    eex_session *s = NULL;
    eex_status st = eex_model_open_buffer(selftest_model, selftest_model_size, &m);
    eex_session_opts so = {.batch = SELFTEST_BATCH, .threads = threads, .kernels = kernels};
    const int64_t shape[4] = {SELFTEST_BATCH, SELFTEST_C, SELFTEST_HW, SELFTEST_HW};
    float got[SELFTEST_BATCH * SELFTEST_CLASSES];
    int64_t oshape[EEX_MAX_RANK];
    int orank = 0;
    if (!st)
        st = eex_session_new(m, &so, &s);
    if (!st)
        st = eex_session_set_input(s, 0, selftest_input, shape, 4);
    if (!st)
        st = eex_session_run(s);
    if (!st)
        st = eex_session_output(s, 0, got, sizeof got / sizeof got[0], oshape, &orank);
    int bad = 0;
    if (st) {
        snprintf(msg, cap, "%s: %s", eex_status_name(st), eex_last_error());
        bad = 1;
    } else if (orank != 2 || oshape[0] != SELFTEST_BATCH || oshape[1] != SELFTEST_CLASSES) {
        snprintf(msg, cap, "output has rank %d, not [%d, %d]", orank, SELFTEST_BATCH, SELFTEST_CLASSES);
        bad = 1;
    } else {
        float md = 0.0f, scale = 1.0f;
        int at = 0, argmax_ok = 1;
        for (int i = 0; i < SELFTEST_BATCH * SELFTEST_CLASSES; i++) {
            const float d = fabsf(got[i] - selftest_expected[i]);
            if (!(d <= md))
                md = d, at = i;
            scale = fmaxf(scale, fabsf(selftest_expected[i]));
        }
        for (int b = 0; b < SELFTEST_BATCH; b++) {
            int ag = 0, aw = 0;
            for (int k = 1; k < SELFTEST_CLASSES; k++) {
                ag = got[b * SELFTEST_CLASSES + k] > got[b * SELFTEST_CLASSES + ag] ? k : ag;
                aw = selftest_expected[b * SELFTEST_CLASSES + k] > selftest_expected[b * SELFTEST_CLASSES + aw] ? k : aw;
            }
            argmax_ok &= ag == aw;
        }
        bad = !(md <= MODEL_TOL * scale) || !argmax_ok;
        snprintf(msg, cap, "max diff %.3g at %d (got %.6g, want %.6g, tolerance %.3g)%s", md, at, got[at],
                 selftest_expected[at], MODEL_TOL * scale, argmax_ok ? "" : ", classes differ");
    }
    eex_session_free(s);
    eex_model_close(m);
    return bad;
}

int cmd_selftest(int argc, char **argv)
{
    int iters = 30, quiet = 0;
    long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--iters") && i + 1 < argc) {
            if ((iters = cli_parse_int(argv[++i], 1, 100000)) < 0)
                return cli_usage("selftest", "--iters takes an integer in [1, 100000], not '%s'", argv[i]);
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            char *end;
            seed = strtoll(argv[++i], &end, 10);
            if (*end || !*argv[i] || seed < 0)
                return cli_usage("selftest", "--seed takes a non-negative integer, not '%s'", argv[i]);
        } else if (!strcmp(a, "--quiet"))
            quiet = 1;
        else
            return cli_usage("selftest", "unexpected argument '%s'", a);
    }

    const char *best = eex_kernel_isa();
    const char *isas[16];
    const int n_isas = eex_kernel_isas(isas, 16);
    printf("eex %s selftest on %s: kernel tables", EEX_VERSION_STRING, arch_name());
    for (int i = 0; i < n_isas && i < 16; i++)
        printf(" %s", isas[i]);
    printf("; isa %s (used by default), gemm %s\n", best, eex_gemm_backend());

    int passed = 0, failed = 0;
    char msg[512];
    for (int i = 0; i < n_isas && i < 16; i++) {
        for (int c = 0; c < eex_selfcheck_count(); c++) {
            const int r = eex_selfcheck(isas[i], c, iters, (uint64_t)seed, msg, sizeof msg);
            if (r) {
                failed++;
                printf("FAIL  %-7s %-16s %s\n", isas[i], eex_selfcheck_name(c), msg);
            } else {
                passed++;
                if (!quiet)
                    printf("ok    %-7s %-16s %d random shapes\n", isas[i], eex_selfcheck_name(c), iters);
            }
        }
    }
    static const struct {
        eex_kernels kernels;
        int threads;
    } runs[] = {{EEX_KERNELS_REF, 1}, {EEX_KERNELS_AUTO, 1}, {EEX_KERNELS_AUTO, 3}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        const int bad = model_check(runs[i].kernels, runs[i].threads, msg, sizeof msg);
        char what[64];
        snprintf(what, sizeof what, "%s, %d thread%s", runs[i].kernels == EEX_KERNELS_REF ? "ref" : best,
                 runs[i].threads, runs[i].threads == 1 ? "" : "s");
        if (bad)
            failed++;
        else
            passed++;
        if (bad || !quiet)
            printf("%s  model   %-16s %s\n", bad ? "FAIL" : "ok  ", what, msg);
    }
    printf("selftest: %d passed, %d failed (isa %s)\n", passed, failed, best);
    return failed ? CLI_FAIL : CLI_OK;
}
