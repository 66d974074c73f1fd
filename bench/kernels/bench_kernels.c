/* Kernel micro-benchmarks: every conv shape of MobileNetV2-224 (batch 1)
 * through the fast kernels of this CPU, on one thread, in GFLOP/s, beside
 * OpenBLAS sgemm (one thread) on a 1024^3 product measured in the same run,
 * interleaved with the shapes so that machine noise falls on both alike.
 * For each pointwise conv the same product through cblas_sgemm is timed
 * too. Writes a JSON report (--out) and prints a table.
 *
 *   bench_kernels [--out FILE] [--min-ms T]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../kernels/conv_fast.h"
#include "../../kernels/dispatch.h"
#include "../../kernels/gemm.h"

#ifndef EEX_NO_BLAS
#include <cblas.h>
#endif

typedef struct shape {
    const char *kind; /* "stem", "1x1", "dw3x3_s1", "dw3x3_s2", "dense" */
    int h, w, cin, cout, stride, count;
} shape;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Best of 15 samples, each averaging enough calls to last min_ms: on a
 * shared machine the fastest sample is the one least disturbed by other
 * processes, so the minimum is the stable statistic for a kernel (the
 * model benchmarks report medians). */
#define SAMPLES 15
static double time_ms(void (*fn)(void *), void *arg, double min_ms)
{
    fn(arg);
    int reps = 1;
    for (;;) {
        const double t0 = now_ms();
        for (int i = 0; i < reps; i++)
            fn(arg);
        const double dt = now_ms() - t0;
        if (dt >= min_ms || reps > (1 << 20))
            break;
        reps *= 2;
    }
    double s[SAMPLES];
    for (int k = 0; k < SAMPLES; k++) {
        const double t0 = now_ms();
        for (int i = 0; i < reps; i++)
            fn(arg);
        s[k] = (now_ms() - t0) / reps;
    }
    qsort(s, SAMPLES, sizeof *s, cmp_d);
    return s[0];
}

static float *randf(size_t n)
{
    float *a = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
    uint32_t r = 12345;
    for (size_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        a[i] = (float)(r >> 8) / (float)(1 << 24) - 0.5f;
    }
    return a;
}

typedef struct conv_arg {
    const eex_kernel_table *kt;
    eex_conv_shape cs;
    const float *x, *w, *bias, *zeros;
    eex_act_params act;
    float *y;
    int dw;
    int64_t pixels;
    int panels;
} conv_arg;

static void run_conv(void *p)
{
    conv_arg *a = p;
    if (a->dw) {
        (a->cs.sh == 1 ? a->kt->dwconv3x3_s1_f32 : a->kt->dwconv3x3_s2_f32)(&a->cs, a->x, a->w, a->bias, &a->act,
                                                                            a->y, 0, (int64_t)a->cs.n * a->cs.oh);
    } else
        a->kt->conv_gemm_f32(&a->cs, a->x, a->w, &a->act, a->y, 0, a->pixels, 0, a->panels, a->zeros);
}

#ifndef EEX_NO_BLAS
typedef struct blas_arg {
    int m, n, k;
    const float *a, *b, *bias;
    float *c;
    eex_act_params act;
    int epilogue;
} blas_arg;

static void run_blas(void *p)
{
    blas_arg *a = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->m, a->n, a->k, 1.0f, a->a, a->k, a->b, a->n, 0.0f, a->c,
                a->n);
    if (a->epilogue)
        eex_bias_act(a->m, a->n, a->n, a->bias, &a->act, a->c);
}

static double sgemm_1024(double min_ms)
{
    const int n = 1024;
    blas_arg a = {.m = n, .n = n, .k = n, .a = randf((size_t)n * n), .b = randf((size_t)n * n),
                  .c = malloc(sizeof(float) * n * n)};
    const double ms = time_ms(run_blas, &a, min_ms);
    free((void *)a.a), free((void *)a.b), free(a.c);
    return 2.0 * n * n * n / (ms * 1e6);
}
#endif

/* MobileNetV2-224: stem, then (expansion t, channels c, repeats n, stride s). */
static int mobilenet_v2_shapes(shape *out)
{
    static const int cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    int n = 0, h = 112, cin = 32;
    out[n++] = (shape){"stem", 224, 224, 3, 32, 2, 1};
    for (int b = 0; b < 7; b++)
        for (int r = 0; r < cfg[b][2]; r++) {
            const int t = cfg[b][0], c = cfg[b][1], s = r == 0 ? cfg[b][3] : 1, hid = cin * t;
            if (t != 1)
                out[n++] = (shape){"1x1", h, h, cin, hid, 1, 1};
            out[n++] = (shape){s == 1 ? "dw3x3_s1" : "dw3x3_s2", h, h, hid, hid, s, 1};
            h = (h + s - 1) / s;
            out[n++] = (shape){"1x1", h, h, hid, c, 1, 1};
            cin = c;
        }
    out[n++] = (shape){"1x1", 7, 7, 320, 1280, 1, 1};
    out[n++] = (shape){"dense", 1, 1, 1280, 1000, 1, 1};
    /* merge repeats of one shape */
    int m = 0;
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < m && !(out[j].kind == out[i].kind && out[j].h == out[i].h && out[j].cin == out[i].cin &&
                          out[j].cout == out[i].cout && out[j].stride == out[i].stride))
            j++;
        if (j < m)
            out[j].count++;
        else
            out[m++] = out[i];
    }
    return m;
}

int main(int argc, char **argv)
{
    const char *out_path = NULL;
    double min_ms = 2.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out_path = argv[++i];
        else if (!strcmp(argv[i], "--min-ms") && i + 1 < argc)
            min_ms = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_kernels [--out FILE] [--min-ms T]\n");
            return 2;
        }
    }
    const eex_kernel_table *kt = eex_kernels_best();
    shape sh[64];
    const int ns = mobilenet_v2_shapes(sh);
    double gemm_ref[3] = {0, 0, 0};
#ifndef EEX_NO_BLAS
    openblas_set_num_threads(1); /* one core against one core */
    gemm_ref[0] = sgemm_1024(min_ms);
#endif
    /* the built-in kernel on the same 1024^3 product, as a 1x1 conv */
    double builtin_1024;
    {
        const int n = 1024;
        float *w = randf((size_t)n * n), *pk = malloc(sizeof(float) * (size_t)eex_pack_gemm_floats(n, n, 1, 1, 1, kt->nr));
        eex_pack_gemm_weights(w, NULL, n, n, 1, 1, 1, kt->nr, pk);
        conv_arg a = {.kt = kt, .cs = {.n = 1, .ih = 32, .iw = 32, .ic = n, .oh = 32, .ow = 32, .oc = n, .kh = 1, .kw = 1,
                                       .sh = 1, .sw = 1, .dh = 1, .dw = 1, .group = 1},
                      .x = randf((size_t)n * n), .w = pk, .y = malloc(sizeof(float) * n * n), .pixels = n,
                      .panels = (n + kt->nr - 1) / kt->nr};
        builtin_1024 = 2.0 * n * n * n / (time_ms(run_conv, &a, min_ms) * 1e6);
        free(w), free(pk), free((void *)a.x), free(a.y);
    }
    double ms[64], blas_ms[64];
    for (int i = 0; i < ns; i++) {
        const shape *s = &sh[i];
        const int dw = s->kind[0] == 'd' && s->kind[1] == 'w';
        const int k = !strcmp(s->kind, "stem") || dw ? 3 : 1, pad = k / 2;
        const int oh = (s->h + 2 * pad - k) / s->stride + 1;
        conv_arg a = {.kt = kt, .dw = dw};
        a.cs = (eex_conv_shape){.n = 1, .ih = s->h, .iw = s->w, .ic = s->cin, .oh = oh, .ow = oh, .oc = s->cout,
                                .kh = k, .kw = k, .sh = s->stride, .sw = s->stride, .pt = pad, .pl = pad, .dh = 1,
                                .dw = 1, .group = dw ? s->cin : 1};
        a.act = (eex_act_params){.act = EEX_ACT_CLIP, .lo = 0.0f, .hi = 6.0f};
        float *w = randf((size_t)s->cout * (dw ? 1 : s->cin) * k * k);
        float *bias = randf((size_t)s->cout);
        float *x = randf((size_t)s->h * s->w * s->cin), *pk;
        if (dw) {
            pk = malloc(sizeof(float) * (size_t)s->cout * 9);
            for (int c = 0; c < s->cout; c++)
                for (int t = 0; t < 9; t++)
                    pk[(size_t)t * s->cout + c] = w[(size_t)c * 9 + t];
        } else {
            pk = malloc(sizeof(float) * (size_t)eex_pack_gemm_floats(s->cout, s->cin, k, k, 1, kt->nr));
            eex_pack_gemm_weights(w, bias, s->cout, s->cin, k, k, 1, kt->nr, pk);
        }
        float *zeros = calloc((size_t)k * s->cin, sizeof(float));
        a.x = x, a.w = pk, a.bias = bias, a.zeros = zeros;
        a.y = malloc(sizeof(float) * (size_t)oh * oh * s->cout);
        a.pixels = (int64_t)oh * oh;
        a.panels = (s->cout + kt->nr - 1) / kt->nr;
        ms[i] = time_ms(run_conv, &a, min_ms);
        blas_ms[i] = 0;
#ifndef EEX_NO_BLAS
        if (!strcmp(s->kind, "1x1") || !strcmp(s->kind, "dense")) {
            float *wkn = malloc(sizeof(float) * (size_t)s->cin * s->cout);
            for (int o = 0; o < s->cout; o++)
                for (int c = 0; c < s->cin; c++)
                    wkn[(size_t)c * s->cout + o] = w[(size_t)o * s->cin + c];
            blas_arg b = {.m = oh * oh, .n = s->cout, .k = s->cin, .a = x, .b = wkn, .bias = bias, .c = a.y,
                          .act = a.act, .epilogue = 1};
            blas_ms[i] = time_ms(run_blas, &b, min_ms);
            free(wkn);
        }
        if (i == ns / 2)
            gemm_ref[1] = sgemm_1024(min_ms);
#endif
        free(w), free(bias), free(x), free(pk), free(zeros), free(a.y);
    }
#ifndef EEX_NO_BLAS
    gemm_ref[2] = sgemm_1024(min_ms);
    qsort(gemm_ref, 3, sizeof *gemm_ref, cmp_d);
#endif
    const double sgemm = gemm_ref[1];
    /* FLOP-weighted: total FLOPs of the pointwise convs over their total time */
    double pw_flops = 0, pw_ms = 0, pw_blas_ms = 0;
    printf("MobileNetV2-224 conv shapes, kernels %s (1 thread), gemm backend %s\n\n", kt->name, eex_gemm_backend());
    printf("  %-9s %-16s %5s %10s %9s %13s\n", "kind", "HxW cin->cout", "count", "ms", "GFLOP/s", "OpenBLAS GF/s");
    FILE *f = out_path ? fopen(out_path, "w") : NULL;
    if (out_path && !f) {
        fprintf(stderr, "bench_kernels: cannot write %s\n", out_path);
        return 1;
    }
    if (f)
        fprintf(f, "{\"isa\": \"%s\", \"gemm\": \"%s\", \"threads\": 1, \"shapes\": [", kt->name, eex_gemm_backend());
    for (int i = 0; i < ns; i++) {
        const shape *s = &sh[i];
        const int dw = s->kind[0] == 'd' && s->kind[1] == 'w';
        const int k = !strcmp(s->kind, "stem") || dw ? 3 : 1;
        const int oh = (s->h + 2 * (k / 2) - k) / s->stride + 1;
        const double macs = (double)oh * oh * s->cout * (dw ? 1 : s->cin) * k * k;
        const double gf = 2 * macs / (ms[i] * 1e6), bgf = blas_ms[i] > 0 ? 2 * macs / (blas_ms[i] * 1e6) : 0;
        if (!strcmp(s->kind, "1x1")) {
            pw_flops += 2 * macs * s->count, pw_ms += ms[i] * s->count, pw_blas_ms += blas_ms[i] * s->count;
        }
        char dims[40];
        snprintf(dims, sizeof dims, "%dx%d %d->%d", s->h, s->w, s->cin, s->cout);
        printf("  %-9s %-16s %5d %10.4f %9.2f %13.2f\n", s->kind, dims, s->count, ms[i], gf, bgf);
        if (f)
            fprintf(f, "%s\n  {\"kind\": \"%s\", \"h\": %d, \"w\": %d, \"cin\": %d, \"cout\": %d, \"stride\": %d, "
                       "\"count\": %d, \"ms\": %.5f, \"gflops\": %.3f, \"openblas_gflops\": %.3f}",
                    i ? "," : "", s->kind, s->h, s->w, s->cin, s->cout, s->stride, s->count, ms[i], gf, bgf);
    }
    const double pw = pw_flops / (pw_ms * 1e6);
    printf("\n1x1 convs, FLOP-weighted: %.2f GFLOP/s", pw);
    if (pw_blas_ms > 0)
        printf(" (the same products through OpenBLAS sgemm + epilogue: %.2f GFLOP/s)", pw_flops / (pw_blas_ms * 1e6));
    printf("\nbuilt-in GEMM kernel 1024^3: %.2f GFLOP/s\n", builtin_1024);
    if (sgemm > 0)
        printf("OpenBLAS sgemm 1024^3 (1 thread, median of 3 spread over the run): %.2f GFLOP/s\n"
               "1x1 convs / sgemm 1024^3: %.1f%%\n", sgemm, 100.0 * pw / sgemm);
    if (f) {
        fprintf(f, "],\n \"pointwise_gflops\": %.3f, \"pointwise_openblas_gflops\": %.3f, \"builtin_1024_gflops\": %.3f, "
                   "\"openblas_sgemm_1024_gflops\": %.3f, \"pointwise_over_sgemm\": %.4f}\n",
                pw, pw_blas_ms > 0 ? pw_flops / (pw_blas_ms * 1e6) : 0.0, builtin_1024, sgemm,
                sgemm > 0 ? pw / sgemm : 0.0);
        fclose(f);
    }
    return 0;
}
