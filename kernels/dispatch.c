/* Choosing the kernel table from the CPU's features, and the weight packing
 * the GEMM kernels read. */
#include "dispatch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const isa_names[EEX_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

const char *eex_isa_name(eex_isa isa) { return isa >= 0 && isa < EEX_ISA_COUNT ? isa_names[isa] : "?"; }

eex_isa eex_isa_from_name(const char *name)
{
    int i = 0;
    while (i < EEX_ISA_COUNT && !(name && !strcmp(name, isa_names[i])))
        i++;
    return (eex_isa)i;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
/* F16C (the AVX2 table's float16 loads): CPUID.1:ECX bit 29; GCC 12's
 * __builtin_cpu_supports does not know it. Every AVX2 CPU so far has it. */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1u);
}
#endif

static int cpu_has(eex_isa isa)
{
    switch (isa) {
    case EEX_ISA_SCALAR: return 1;
#if defined(__x86_64__) && defined(__GNUC__)
    /* __builtin_cpu_supports also checks that the OS saves the registers (XCR0) */
    case EEX_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case EEX_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
#endif
#if defined(__aarch64__)
    case EEX_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

const eex_kernel_table *eex_kernels_for(eex_isa isa)
{
    if (!cpu_has(isa))
        return NULL;
    switch (isa) {
    case EEX_ISA_SCALAR: return &eex_kernel_table_scalar;
#if defined(__x86_64__)
    case EEX_ISA_AVX2: return &eex_kernel_table_avx2;
    case EEX_ISA_AVX512: return &eex_kernel_table_avx512;
#endif
#if defined(__aarch64__)
    case EEX_ISA_NEON: return &eex_kernel_table_neon;
#endif
    default: return NULL;
    }
}

static const eex_kernel_table *best;

static void choose(void)
{
    static const eex_isa order[] = {EEX_ISA_AVX512, EEX_ISA_AVX2, EEX_ISA_NEON, EEX_ISA_SCALAR};
    /* EEX_ISA caps the choice so one binary can measure every ISA */
    const char *cap = getenv("EEX_ISA");
    int allowed = cap == NULL || !*cap;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!allowed && !strcmp(cap, isa_names[order[i]]))
            allowed = 1;
        const eex_kernel_table *t = allowed ? eex_kernels_for(order[i]) : NULL;
        if (t) {
            best = t;
            return;
        }
    }
    best = &eex_kernel_table_scalar;
}

const eex_kernel_table *eex_kernels_best(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, choose);
    return best;
}

const char *eex_kernel_isa(void) { return eex_kernels_best()->name; }

int eex_kernel_isas(const char **names, int cap)
{
    int n = 0;
    for (int isa = 0; isa < EEX_ISA_COUNT; isa++)
        if (eex_kernels_for((eex_isa)isa)) {
            if (names && n < cap)
                names[n] = isa_names[isa];
            n++;
        }
    return n;
}

int64_t eex_pack_gemm_floats(int oc, int icg, int kh, int kw, int group, int nr)
{
    const int ocg = oc / group;
    const int64_t panels = (int64_t)group * ((ocg + nr - 1) / nr);
    return panels * eex_gemm_panel_floats(nr, kh * kw, icg);
}

void eex_pack_gemm_weights(const float *w, const float *bias, int oc, int icg, int kh, int kw, int group, int nr,
                           float *dst)
{
    const int ocg = oc / group, taps = kh * kw, ppg = (ocg + nr - 1) / nr;
    const int64_t panel = eex_gemm_panel_floats(nr, taps, icg);
    memset(dst, 0, sizeof(float) * (size_t)eex_pack_gemm_floats(oc, icg, kh, kw, group, nr));
    for (int g = 0; g < group; g++)
        for (int j = 0; j < ppg; j++) {
            float *p = dst + ((int64_t)g * ppg + j) * panel;
            for (int o = 0; o < nr && j * nr + o < ocg; o++) {
                const int co = g * ocg + j * nr + o;
                if (bias)
                    p[o] = bias[co];
                for (int t = 0; t < taps; t++)
                    for (int ci = 0; ci < icg; ci++)
                        p[nr + ((int64_t)t * icg + ci) * nr + o] = w[((int64_t)co * icg + ci) * taps + t];
            }
        }
}

void eex_pack_dense_half(const uint16_t *w_mk, const float *bias, int k, int m, int nr, uint16_t *dst,
                         float *dst_bias)
{
    const int panels = (m + nr - 1) / nr;
    for (int j = 0; j < panels; j++)
        for (int o = 0; o < nr; o++) {
            const int col = j * nr + o;
            dst_bias[j * nr + o] = col < m && bias ? bias[col] : 0.0f;
            for (int i = 0; i < k; i++) {
                uint16_t h = 0; /* +0.0 past the last output */
                if (col < m)
                    memcpy(&h, w_mk + (size_t)col * k + i, sizeof h);
                dst[((size_t)j * k + i) * nr + o] = h;
            }
        }
}
