/* The fast kernels, written once against the SIMD layer (v_load, v_fma, ...)
 * and compiled once per ISA: a per-ISA file includes its simd_<isa>.h, then
 * this file, and gets functions named eex_<kernel>_f32_<isa> and a table
 * eex_kernel_table_<isa>. Each kernel has a scalar twin in kernels/ref that
 * tests/unit/test_simd.c compares it with.
 *
 * Layout facts every kernel relies on: activations are NHWC float32, so the
 * channel loop is unit-stride and is what gets vectorised; tails (channel
 * counts that are not a multiple of VL) use masked loads and stores. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "dispatch.h"

#define EEX_PASTE_(a, b) a##_##b
#define EEX_PASTE(a, b) EEX_PASTE_(a, b)
#define FN(name) EEX_PASTE(eex_##name, EEX_ISA_SUFFIX)
#define GEMM_NR (GEMM_NV * VL)

#define AINLINE inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

/* ---- fused activation ---------------------------------------------------- */

/* e^x: x = n ln2 + f with n = round(x log2 e), |f| <= ln2 / 2, f = x - n ln2
 * in two steps (Cody and Waite: ln2 = C1 + C2, C1 with few enough bits that
 * n C1 is exact) so that f keeps its relative precision for large |x| (f from
 * (x log2 e - n) ln2 loses up to 12 ulps at |x| ~ 35); e^f from its Taylor
 * series to degree 7 (truncation < 6e-9, 0.1 ulp), 2^n built in the exponent
 * field: a few ulps in all. x is clamped to [-87, 88] so n stays a normal
 * exponent: e^-87 ~ 1.6e-38 stands for 0 and e^88 ~ 1.7e38 for overflow. */
static AINLINE vf v_exp(vf x)
{
    x = v_min(v_max(x, v_set1(-87.0f)), v_set1(88.0f));
    const vf t = v_mul(x, v_set1(1.44269504088896341f));
    /* round to nearest by the 1.5 * 2^23 trick (the default rounding mode) */
    const vf magic = v_set1(12582912.0f);
    const vf n = v_sub(v_add(t, magic), magic);
    vf f = v_fma(n, v_set1(-0.693359375f), x);  /* C1 = 355/512: n C1 and x - n C1 exact */
    f = v_fma(n, v_set1(2.12194440e-4f), f);     /* - n C2, C2 = ln2 - C1 = -2.12194440e-4 */
    vf p = v_set1(1.0f / 5040.0f);
    p = v_fma(p, f, v_set1(1.0f / 720.0f));
    p = v_fma(p, f, v_set1(1.0f / 120.0f));
    p = v_fma(p, f, v_set1(1.0f / 24.0f));
    p = v_fma(p, f, v_set1(1.0f / 6.0f));
    p = v_fma(p, f, v_set1(0.5f));
    p = v_fma(p, f, v_set1(1.0f));
    p = v_fma(p, f, v_set1(1.0f));
    return v_mul(p, v_pow2i(n));
}

/* x * sigmoid(x) = x / (1 + e^-x). v_exp clamps its argument to [-87, 88],
 * so the quotient is finite for every finite x: below x = -88 it is
 * -88 / 1.7e38 ~ -5e-37 (the reference, with expf overflowing to inf, gives
 * -0), above 87 it is x. */
static AINLINE vf v_silu(vf x)
{
    /* the numerator clamped too: -FLT_MAX / e^88 would be -2, not ~0 (a NaN
     * in x comes through v_max) */
    return v_div(v_max(x, v_set1(-88.0f)), v_add(v_set1(1.0f), v_exp(v_sub(v_zero(), x))));
}

/* Every activation but hardswish and silu is a clamp to [lo, hi] (none:
 * +-inf, relu: [0, inf), relu6/clip: [lo, hi]), so the epilogues need one
 * branch for the clamps and one each for the two that compute. */
enum { VACT_CLAMP = 0, VACT_HSWISH, VACT_SILU };
typedef struct vact {
    vf lo, hi;
    int kind; /* VACT_* */
} vact;

static inline vact vact_make(const eex_act_params *a)
{
    float lo = -INFINITY, hi = INFINITY;
    if (a->act == EEX_ACT_RELU)
        lo = 0.0f;
    else if (a->act == EEX_ACT_CLIP)
        lo = a->lo, hi = a->hi;
    const int kind = a->act == EEX_ACT_HARDSWISH ? VACT_HSWISH : a->act == EEX_ACT_SILU ? VACT_SILU : VACT_CLAMP;
    return (vact){.lo = v_set1(lo), .hi = v_set1(hi), .kind = kind};
}

static AINLINE vf vact_apply(vf x, const vact *a)
{
    if (a->kind == VACT_HSWISH) {
        vf t = v_fma(x, v_set1(1.0f / 6.0f), v_set1(0.5f));
        t = v_min(v_max(t, v_zero()), v_set1(1.0f));
        return v_mul(x, t);
    }
    if (a->kind == VACT_SILU)
        return v_silu(x);
    return v_min(v_max(x, a->lo), a->hi);
}

/* ---- GEMM micro-kernel ------------------------------------------------------ */

/* Every panel width uses GEMM_MR-row tiles. Taller tiles for narrow panels
 * (12 or 24 rows x 1 vector instead of 8 x 3 on AVX-512) were measured
 * slower: each row needs its own input pointer, and past ~12 they no longer
 * fit the general-purpose registers (docs/performance.md). Pixel splits and
 * chunks come in multiples of GEMM_ALIGN so tiles stay whole. */
#define GEMM_ALIGN GEMM_MR

/* One mr x (nv*VL) output tile: acc = init + sum over segments s and k < kc
 * of a[s][i][k] * wk[s*kc + k][j], then (last K block only) the activation.
 * A segment is a tap of the kernel window (kc = channels per group) or a
 * whole kernel row: a[s*astride + i] points at the kc input floats output
 * pixel i reads for it (the NHWC input itself, or a zero row for padding), so
 * no im2col copy is made. init is the bias row w[0..GEMM_NR) of the packed
 * panel [GEMM_NR bias][K][GEMM_NR] for the first K block, else the partial
 * sums already in C; wk points at the block's first row of weights. Only rows
 * i < mrv are stored; the others repeat row 0's pointers and cost a little
 * compute in the last tile only. */
static AINLINE void gemm_tile(const int mr, const int nv, const int prefetch, int segs, int kc,
                              const float *const *a, int astride, const float *w, const float *wk, int first,
                              int last, const vact *act, float *c, int64_t ldc, int mrv, int nlast,
                              const char *pf, int pf_sh)
{
    vf acc[GEMM_MR][GEMM_NV];
    if (first) {
        UNROLL for (int j = 0; j < nv; j++)
        {
            const vf b = v_load(w + j * VL);
            UNROLL for (int i = 0; i < mr; i++) acc[i][j] = b;
        }
    } else {
        /* a later K block: continue from the partial sums stored in C */
        UNROLL for (int i = 0; i < mr; i++)
        {
            const float *ci = c + (int64_t)(i < mrv ? i : 0) * ldc;
            UNROLL for (int j = 0; j < nv - 1; j++) acc[i][j] = v_load(ci + j * VL);
            acc[i][nv - 1] = nlast == VL ? v_load(ci + (nv - 1) * VL) : v_loadn(ci + (nv - 1) * VL, nlast);
        }
    }
    w = wk;
    /* one line of the next weight panel per k, counted over all segments
     * (see panel_prefetch_shift): GEMM_NR floats >> pf_sh bytes per k */
    const char *pfk = pf;
    const int64_t pf_step = prefetch ? ((int64_t)GEMM_NR * (int64_t)sizeof(float)) >> pf_sh : 0;
    for (int sg = 0; sg < segs; sg++) {
        /* rows as byte offsets from row 0, so that the loop steps one
         * pointer, not mr of them (~6 fewer scalar instructions per k beside
         * its ~20 vector ones). Rows may point into different buffers (the
         * input, the zero row, the edge copy): the offsets are taken between
         * addresses as integers, not by subtracting the pointers. */
        const float *a0 = a[sg * astride];
        uintptr_t off[GEMM_MR];
        UNROLL for (int i = 0; i < mr; i++) off[i] = (uintptr_t)a[sg * astride + i] - (uintptr_t)a0;
        for (int k = 0; k < kc; k++) {
            vf b[GEMM_NV];
            if (prefetch) {
                __builtin_prefetch(pfk, 0, 2);
                pfk += pf_step;
            }
            UNROLL for (int j = 0; j < nv; j++) b[j] = v_load(w + j * VL);
            UNROLL for (int i = 0; i < mr; i++)
            {
                const vf av = v_set1(*(const float *)((uintptr_t)(a0 + k) + off[i]));
                UNROLL for (int j = 0; j < nv; j++) acc[i][j] = v_fma(av, b[j], acc[i][j]);
            }
            w += GEMM_NR;
        }
    }
    /* a local copy: the stores below cannot alias it; partial sums of a
     * K block that is not the last are stored without the activation */
    const vact none = {.lo = v_set1(-INFINITY), .hi = v_set1(INFINITY), .kind = VACT_CLAMP};
    const vact va = last ? *act : none;
    UNROLL for (int i = 0; i < mr; i++)
    {
        if (i >= mrv)
            break;
        float *ci = c + (int64_t)i * ldc;
        UNROLL for (int j = 0; j < nv - 1; j++) v_store(ci + j * VL, vact_apply(acc[i][j], &va));
        const vf lastv = vact_apply(acc[i][nv - 1], &va);
        if (nlast == VL)
            v_store(ci + (nv - 1) * VL, lastv);
        else
            v_storen(ci + (nv - 1) * VL, lastv, nlast);
    }
}

/* Specialisations: full-height tiles for every panel width, and one-row
 * tiles (a dense layer at batch 1, the odd last pixel) that would otherwise
 * waste a tile's worth of work on a memory-bound product. */
/* Kept out of line: inlined into conv_gemm_f32 (as GCC 12 did when it had
 * one caller) the tile loop ran pointwise convs at half the speed on Zen 3
 * (measured: MobileNetV2's 1x1 convs 0.47-0.61x the time out of line), its
 * accumulators spilled among the caller's live values. */
/* The tile shape by (mr, nv) as compile-time constants, PF = prefetching
 * (see panel_prefetch_shift); the caller's parameters by name. */
#define NV_(n) ((n) < GEMM_NV ? (n) : GEMM_NV)
#define GT_(m, n, PF) gemm_tile(m, NV_(n), PF, segs, kc, a, astride, w, wk, first, last, act, c, ldc, mrv, nlast, pf, pf_sh)
#define GEMM_TILE_SWITCH(PF)                                                                                          \
    do {                                                                                                               \
        if (mr == 1) {                                                                                                 \
            switch (nv) {                                                                                              \
            case 1: GT_(1, 1, PF); return;                                                                             \
            case 2: GT_(1, 2, PF); return;                                                                             \
            case 3: GT_(1, 3, PF); return;                                                                             \
            default: GT_(1, 4, PF); return;                                                                            \
            }                                                                                                          \
        }                                                                                                              \
        switch (nv) {                                                                                                  \
        case 1: GT_(GEMM_MR, 1, PF); return;                                                                           \
        case 2: GT_(GEMM_MR, 2, PF); return;                                                                           \
        case 3: GT_(GEMM_MR, 3, PF); return;                                                                           \
        default: GT_(GEMM_MR, 4, PF); return;                                                                          \
        }                                                                                                              \
    } while (0)

/* GCC's scheduling before register allocation hoists all the row
 * broadcasts of a k step ahead of its FMAs; with NEON's 8 x 3 tile (24
 * accumulators, 3 weight vectors, 8 broadcasts: 35 of 32 registers) that
 * spilled 3 accumulators to the stack every k (4-6 loads and stores beside
 * 24 FMLA). Without it the inner loop keeps everything in registers (38
 * instructions per k instead of 42-44; GCC 12, read from the objdump: speed
 * not measured on an ARM core, qemu only checks results). */
#if defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__)
#define TILE_OPTS __attribute__((noinline, optimize("no-schedule-insns")))
#else
#define TILE_OPTS __attribute__((noinline))
#endif

TILE_OPTS static void gemm_tile_any(int mr, int nv, int segs, int kc, const float *const *a, int astride, const float *w,
                          const float *wk, int first, int last, const vact *act, float *c, int64_t ldc, int mrv,
                          int nlast)
{
    const char *pf = NULL;
    const int pf_sh = 0;
    GEMM_TILE_SWITCH(0);
}

/* The same tiles, prefetching one line of the next panel per k. */
TILE_OPTS static void gemm_tile_pf(int mr, int nv, int segs, int kc, const float *const *a,
                                                  int astride, const float *w, const float *wk, int first, int last,
                                                  const vact *act, float *c, int64_t ldc, int mrv, int nlast,
                                                  const char *pf, int pf_sh)
{
    GEMM_TILE_SWITCH(1);
}
#undef GEMM_TILE_SWITCH
#undef TILE_OPTS
#undef GT_
#undef NV_

/* Pointwise convs on small maps (MobileNetV2's 7x7 tail, a dense layer at
 * batch 1) use each weight panel for only a few tiles, and the first tile
 * of each panel waited for it to come from L3 or memory. So the first
 * 2^sh tiles of a panel each prefetch one slice of the next one: tile t
 * issues one prefetch per k, (GEMM_NR floats >> sh) bytes apart, from
 * offset t * (panel bytes >> sh). Returns sh, or -1 when the panel is used
 * by enough tiles that the hardware prefetcher keeps up. */
#define PREFETCH_MAX_TILES 32
static inline int panel_prefetch_shift(int64_t ntiles, int64_t max_tiles)
{
    if (ntiles < 2 || ntiles > max_tiles)
        return -1;
    int sh = 0;
    while (((int64_t)1 << sh) < ntiles || ((GEMM_NR * (int)sizeof(float)) >> sh) > 64)
        sh++;
    return sh;
}

/* Tile t of a panel: with the prefetching variant while t < 2^sh (sh from
 * panel_prefetch_shift, -1 for none), reading slice t of the next weights. */
static inline void gemm_tile_next(int mr, int nv, int segs, int kc, const float *const *a, int astride,
                                  const float *w, const float *wk, int first, int last, const vact *act, float *c,
                                  int64_t ldc, int mrv, int nlast, const char *next, int sh, int64_t slice, int64_t t)
{
    if (sh >= 0 && t < ((int64_t)1 << sh))
        gemm_tile_pf(mr, nv, segs, kc, a, astride, w, wk, first, last, act, c, ldc, mrv, nlast, next + t * slice, sh);
    else
        gemm_tile_any(mr, nv, segs, kc, a, astride, w, wk, first, last, act, c, ldc, mrv, nlast);
}

#define MAX_TAPS 64

/* Kernels whose tiles would need more than MAX_TAPS segments (more than 64
 * taps that do not group into kernel rows: no conv of the networks eex
 * targets): pixel by pixel, straight from the packed panels. */
static void conv_gemm_slow(const eex_conv_shape *s, const float *x, const float *w_packed, const eex_act_params *act,
                           float *y, int64_t p0, int64_t p1, int j0, int j1)
{
    const int icg = s->ic / s->group, ocg = s->oc / s->group, taps = s->kh * s->kw;
    const int ppg = (ocg + GEMM_NR - 1) / GEMM_NR;
    const int64_t panel = eex_gemm_panel_floats(GEMM_NR, taps, icg);
    const int64_t ohw = (int64_t)s->oh * s->ow;
    for (int64_t p = p0; p < p1; p++) {
        const int64_t n = p / ohw, r = p % ohw;
        const int oy = (int)(r / s->ow), ox = (int)(r % s->ow);
        for (int jp = j0; jp < j1; jp++) {
            const int g = jp / ppg, j = jp % ppg;
            const int ncols = ocg - j * GEMM_NR < GEMM_NR ? ocg - j * GEMM_NR : GEMM_NR;
            const float *w = w_packed + (int64_t)jp * panel + GEMM_NR;
            float acc[GEMM_NR];
            memcpy(acc, w - GEMM_NR, sizeof acc);
            for (int ky = 0; ky < s->kh; ky++)
                for (int kx = 0; kx < s->kw; kx++) {
                    const int iy = oy * s->sh - s->pt + ky * s->dh, ix = ox * s->sw - s->pl + kx * s->dw;
                    const float *wt = w + (int64_t)(ky * s->kw + kx) * icg * GEMM_NR;
                    if (iy < 0 || iy >= s->ih || ix < 0 || ix >= s->iw)
                        continue;
                    const float *src = x + (((n * s->ih + iy) * s->iw + ix) * s->ic) + g * icg;
                    for (int ci = 0; ci < icg; ci++)
                        for (int o = 0; o < GEMM_NR; o++)
                            acc[o] += src[ci] * wt[(int64_t)ci * GEMM_NR + o];
                }
            float *c = y + p * s->oc + g * ocg + j * GEMM_NR;
            for (int o = 0; o < ncols; o++)
                c[o] = eex_act_apply(acc[o], act);
        }
    }
}

/* Long products are split along K into blocks of whole segments of about
 * this many floats, so that a block of the weight panel stays in L2 while
 * every tile of a chunk of pixels uses it; later blocks continue from the
 * partial sums in the output (ResNet's 3x3 convs have K up to 4608). */
#define KC_TARGET 1024

/* Row pointers of one tile: per segment, the input each of its pixels reads
 * (see gemm_tile). Returns the segment length; *segs gets their count. */
/* Floats of the per-tile buffer that holds, for pixels whose window crosses
 * the left or right edge, their kernel rows with the padding filled in, so
 * that such tiles keep one segment per kernel row too (stems: 3 or 7 taps of
 * 3 channels per row, where per-tap segments would be 3 floats long). */
#define EDGE_BUF_FLOATS 4096

static int tile_pointers(const eex_conv_shape *s, const float *x, const float *zeros, int c0, int64_t p, int mrv,
                         int row_segs, float *edge_buf, const float **ptrs, int *segs)
{
    const int rowlen = s->kw * (s->ic / s->group);
    const int edge_rows = row_segs && GEMM_MR * s->kh * rowlen <= EDGE_BUF_FLOATS;
    const int64_t ohw = (int64_t)s->oh * s->ow;
    /* output coordinates of the tile's pixels, stepped without divisions
     * (they would cost as much as a small tile's FMAs) */
    int64_t n0 = p / ohw;
    int oy0 = (int)((p % ohw) / s->ow), ox0 = (int)((p % ohw) % s->ow);
    /* Most tiles: every pixel on one output row, every window inside the
     * input horizontally. Their row pointers are one base per kernel row
     * plus a fixed step; the general loop below, with its per-pixel edge
     * checks, cost a third of an RGB stem's time (K = 27 is few FMAs). */
    if (row_segs && ox0 + mrv <= s->ow) {
        const int ixa = ox0 * s->sw - s->pl, ixb = (ox0 + mrv - 1) * s->sw - s->pl;
        if (ixa >= 0 && ixb + s->kw <= s->iw) {
            const float *xn = x + n0 * s->ih * s->iw * s->ic + c0;
            const int64_t step = (int64_t)s->sw * s->ic;
            for (int ky = 0; ky < s->kh; ky++) {
                const int iy = oy0 * s->sh - s->pt + ky * s->dh;
                const float **row = ptrs + ky * GEMM_MR;
                if (iy < 0 || iy >= s->ih) {
                    for (int i = 0; i < GEMM_MR; i++)
                        row[i] = zeros;
                    continue;
                }
                const float *b = xn + ((int64_t)iy * s->iw + ixa) * s->ic;
                for (int i = 0; i < GEMM_MR; i++)
                    row[i] = b + (i < mrv ? i : 0) * step;
            }
            *segs = s->kh;
            return rowlen;
        }
    }
    int pn[GEMM_MR] = {0}, py[GEMM_MR] = {0}, px[GEMM_MR] = {0};
    int full_rows = row_segs;
    for (int i = 0; i < GEMM_MR; i++) {
        if (i < mrv) {
            pn[i] = (int)n0, py[i] = oy0, px[i] = ox0;
            if (++ox0 == s->ow) {
                ox0 = 0;
                if (++oy0 == s->oh)
                    oy0 = 0, n0++;
            }
        } else
            pn[i] = pn[0], py[i] = py[0], px[i] = px[0];
        const int ix0 = px[i] * s->sw - s->pl;
        full_rows &= edge_rows || (ix0 >= 0 && ix0 + s->kw <= s->iw);
    }
    for (int i = 0; i < GEMM_MR; i++) {
        const int oy = py[i], ox = px[i];
        const float *xn = x + (int64_t)pn[i] * s->ih * s->iw * s->ic + c0;
        for (int ky = 0; ky < s->kh; ky++) {
            const int iy = oy * s->sh - s->pt + ky * s->dh;
            const int yin = iy >= 0 && iy < s->ih;
            if (full_rows) {
                const int ix0 = ox * s->sw - s->pl;
                if (!yin)
                    ptrs[ky * GEMM_MR + i] = zeros;
                else if (ix0 >= 0 && ix0 + s->kw <= s->iw)
                    ptrs[ky * GEMM_MR + i] = xn + ((int64_t)iy * s->iw + ix0) * s->ic;
                else {
                    /* a row crossing the edge: copied with its padding */
                    float *dst = edge_buf + ((int64_t)i * s->kh + ky) * rowlen;
                    const int icg = s->ic / s->group;
                    for (int kx = 0; kx < s->kw; kx++) {
                        const int ix = ix0 + kx;
                        if (ix >= 0 && ix < s->iw)
                            memcpy(dst + kx * icg, xn + ((int64_t)iy * s->iw + ix) * s->ic, sizeof(float) * (size_t)icg);
                        else
                            memset(dst + kx * icg, 0, sizeof(float) * (size_t)icg);
                    }
                    ptrs[ky * GEMM_MR + i] = dst;
                }
                continue;
            }
            for (int kx = 0; kx < s->kw; kx++) {
                const int ix = ox * s->sw - s->pl + kx * s->dw;
                ptrs[(ky * s->kw + kx) * GEMM_MR + i] =
                    yin && ix >= 0 && ix < s->iw ? xn + ((int64_t)iy * s->iw + ix) * s->ic : zeros;
            }
        }
    }
    *segs = full_rows ? s->kh : s->kh * s->kw;
    return full_rows ? s->kw * (s->ic / s->group) : s->ic / s->group;
}

void FN(conv_gemm_f32)(const eex_conv_shape *s, const float *x, const float *w_packed, const eex_act_params *act,
                       float *y, int64_t p0, int64_t p1, int j0, int j1, const float *zeros)
{
    const int icg = s->ic / s->group, ocg = s->oc / s->group, taps = s->kh * s->kw;
    const int ppg = (ocg + GEMM_NR - 1) / GEMM_NR;
    const int64_t panel = eex_gemm_panel_floats(GEMM_NR, taps, icg);
    const int direct = taps == 1 && s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pl == 0 && s->oh == s->ih &&
                       s->ow == s->iw;
    /* With one group and no horizontal dilation, the kw taps of one kernel
     * row are kw*ic contiguous input floats, in the packed K order: one
     * segment per kernel row instead of one per tap (an RGB stem has 3
     * channels per tap), unless that makes segments longer than a K block */
    const int row_segs = s->group == 1 && s->dw == 1 && s->kw * icg <= KC_TARGET;
    const vact va = vact_make(act);
    /* Segments a tile can need: with row segments and edge rows copied into
     * edge_buf (see tile_pointers) one per kernel row, else one per tap. An
     * 11x11 RGB stem (AlexNet's) has 121 taps but 11 rows: counted by taps it
     * went pixel by pixel, at 9 GFLOP/s and 43% of AlexNet-EE's time at batch
     * 64. */
    const int max_segs =
        row_segs && GEMM_MR * s->kh * s->kw * icg <= EDGE_BUF_FLOATS ? s->kh : taps;
    if (!direct && max_segs > MAX_TAPS) {
        conv_gemm_slow(s, x, w_packed, act, y, p0, p1, j0, j1);
        return;
    }
    /* A chunk of pixels is reused across all panels, its input rows for
     * one K block staying in L2 while the panels stream. */
    const int64_t kfl = (int64_t)taps * icg, kblk = kfl < KC_TARGET ? kfl : KC_TARGET;
    int64_t chunk = (65536 / (kblk > 0 ? kblk : 1)) / GEMM_ALIGN * GEMM_ALIGN;
    chunk = chunk < GEMM_ALIGN ? GEMM_ALIGN : chunk > 4096 ? 4096 : chunk;
    const float *ptrs[MAX_TAPS * GEMM_MR];
    float edge_buf[EDGE_BUF_FLOATS];

    /* Short K and few panels (stems: K = 27 or 147; small convs): the
     * weights of every panel fit in L2 together, so each tile's pointers are
     * set up once and used for all its panels, instead of once per panel
     * (with K = 27 that setup cost about as much as the FMAs). Same
     * arithmetic per output either way. */
    if (!direct && s->group == 1 && kfl <= KC_TARGET && (int64_t)(j1 - j0) * panel <= 65536) {
        for (int64_t p = p0; p < p1; p += GEMM_MR) {
            const int mrv = p1 - p < GEMM_MR ? (int)(p1 - p) : GEMM_MR;
            int segs;
            const int kc = tile_pointers(s, x, zeros, 0, p, mrv, row_segs, edge_buf, ptrs, &segs);
            for (int jp = j0; jp < j1; jp++) {
                const int ncols = ocg - jp * GEMM_NR < GEMM_NR ? ocg - jp * GEMM_NR : GEMM_NR;
                const int nv = (ncols + VL - 1) / VL, nlast = ncols - (nv - 1) * VL;
                const float *w = w_packed + (int64_t)jp * panel;
                gemm_tile_any(mrv == 1 ? 1 : GEMM_MR, nv, segs, kc, ptrs, GEMM_MR, w, w + GEMM_NR, 1, 1, &va,
                              y + p * s->oc + jp * GEMM_NR, s->oc, mrv, nlast);
            }
        }
        return;
    }

    /* K blocks prefetch the next one only when this task's panels do not
     * stay in L2 from one chunk of pixels to the next (ResNet's 14x14 and
     * 7x7 convs: 2.4-9.4 MB); where they do (its 56x56 convs: 147 KB) a
     * prefetch cannot help. (Without this rule `make bench` gave ResNet-18
     * 62 ms at 1 thread against 48 earlier that day, not in an A/B; with it,
     * ResNet-18's 3x3 convs took 0.86-0.95x their time at the session's
     * start in alternating runs.) */
    const int prefetch_blocks = (int64_t)(j1 - j0) * panel * (int64_t)sizeof(float) > 512 * 1024;
    for (int64_t pc = p0; pc < p1; pc += chunk) {
        const int64_t pe = pc + chunk < p1 ? pc + chunk : p1;
        for (int jp = j0; jp < j1; jp++) {
            const int g = jp / ppg, j = jp % ppg;
            const int c0 = g * icg;
            const int ncols = ocg - j * GEMM_NR < GEMM_NR ? ocg - j * GEMM_NR : GEMM_NR;
            const int nv = (ncols + VL - 1) / VL, nlast = ncols - (nv - 1) * VL;
            const float *w = w_packed + (int64_t)jp * panel;
            if (direct) {
                const int sh = jp + 1 < j1 ? panel_prefetch_shift((pe - pc + GEMM_MR - 1) / GEMM_MR, PREFETCH_MAX_TILES) : -1;
                const char *next = (const char *)(w + panel);
                const int64_t slice = sh >= 0 ? ((int64_t)panel * (int64_t)sizeof(float)) >> sh : 0;
                int64_t t = 0;
                for (int64_t p = pc; p < pe; p += GEMM_MR, t++) {
                    const int mrv = pe - p < GEMM_MR ? (int)(pe - p) : GEMM_MR;
                    for (int i = 0; i < GEMM_MR; i++)
                        ptrs[i] = x + (p + (i < mrv ? i : 0)) * s->ic + c0;
                    gemm_tile_next(mrv == 1 ? 1 : GEMM_MR, nv, 1, icg, ptrs, GEMM_MR, w, w + GEMM_NR, 1, 1, &va,
                                   y + p * s->oc + g * ocg + j * GEMM_NR, s->oc, mrv, nlast, next, sh, slice, t);
                }
                continue;
            }
            /* K blocks of whole segments. A tile at the left or right edge
             * has per-tap segments (its rows cross the padding), the others
             * per-row ones, so blocks are multiples of a whole kernel row
             * (when rows are segments) and start at the same K offset for
             * every tile. */
            const int64_t unit = row_segs ? (int64_t)s->kw * icg : icg;
            const int64_t block = (KC_TARGET / unit > 0 ? KC_TARGET / unit : 1) * unit;
            for (int64_t k0 = 0; k0 < kfl; k0 += block) {
                const int64_t k1 = k0 + block < kfl ? k0 + block : kfl;
                /* the weights this task reads next follow these in memory:
                 * the panel's next K block, or the next panel's first */
                const int last_chunk = k1 == kfl && jp + 1 == j1;
                const int sh = last_chunk || !prefetch_blocks
                                   ? -1
                                   : panel_prefetch_shift((pe - pc + GEMM_MR - 1) / GEMM_MR, PREFETCH_MAX_TILES);
                const char *next = (const char *)(k1 < kfl ? w + GEMM_NR + k1 * GEMM_NR : w + panel);
                const int64_t slice = sh >= 0 ? ((k1 - k0) * GEMM_NR * (int64_t)sizeof(float)) >> sh : 0;
                int64_t t = 0;
                for (int64_t p = pc; p < pe; p += GEMM_MR, t++) {
                    const int mrv = pe - p < GEMM_MR ? (int)(pe - p) : GEMM_MR;
                    int segs;
                    const int kc = tile_pointers(s, x, zeros, c0, p, mrv, row_segs, edge_buf, ptrs, &segs);
                    const int sb = (int)(k0 / kc), se = (int)(k1 / kc);
                    gemm_tile_next(mrv == 1 ? 1 : GEMM_MR, nv, se - sb, kc, ptrs + (int64_t)sb * GEMM_MR, GEMM_MR, w,
                                   w + GEMM_NR + k0 * GEMM_NR, k0 == 0, k1 == kfl, &va,
                                   y + p * s->oc + g * ocg + j * GEMM_NR, s->oc, mrv, nlast, next, sh, slice, t);
                }
            }
        }
    }
}

/* ---- dense layer with float16 weights ------------------------------------------ */

void FN(dense_half_f32)(int n, int k, int m, const float *x, const uint16_t *w, const float *bias,
                        const eex_act_params *act, float *y, int j0, int j1)
{
    const vact va = vact_make(act);
    for (int jp = j0; jp < j1; jp++) {
        const int ncols = m - jp * GEMM_NR < GEMM_NR ? m - jp * GEMM_NR : GEMM_NR;
        const int nv = (ncols + VL - 1) / VL, nlast = ncols - (nv - 1) * VL;
        const uint16_t *wp = w + (int64_t)jp * k * GEMM_NR;
        for (int i = 0; i < n; i++) {
            vf acc[GEMM_NV];
            UNROLL for (int v = 0; v < GEMM_NV; v++) acc[v] = v_load(bias + jp * GEMM_NR + v * VL);
            const float *xi = x + (int64_t)i * k;
            for (int kk = 0; kk < k; kk++) {
                const vf xv = v_set1(xi[kk]);
                /* panels are zero-padded to GEMM_NR, so whole vectors are safe */
                UNROLL for (int v = 0; v < GEMM_NV; v++)
                    acc[v] = v_fma(xv, v_load_half(wp + (int64_t)kk * GEMM_NR + v * VL), acc[v]);
            }
            float *yi = y + (int64_t)i * m + jp * GEMM_NR;
            for (int v = 0; v < nv - 1; v++)
                v_store(yi + v * VL, vact_apply(acc[v], &va));
            v_storen(yi + (nv - 1) * VL, vact_apply(acc[nv - 1], &va), nlast);
        }
    }
}

/* ---- depthwise convolution ---------------------------------------------------- */

/* One channel block (VL channels, or nt < VL for the tail) of one output row
 * of a 3x3 depthwise conv at stride S. r[3] are the three input rows; a row
 * that falls in the padding points at a valid row and has zero weights, so
 * the inner loops need no vertical checks. Columns whose window crosses the
 * left or right edge take the checked path; the rest run unchecked, several
 * outputs per step so that neighbouring windows share their column loads. */
/* With 16 vector registers (AVX2) the 4-output step's 9 weights, 4
 * accumulators and 6 input columns do not fit: hoisted out of the loop, the
 * weights were spilled and reloaded around every step, stalling it. A
 * compiler barrier per step makes the weights plain loads from the caller's
 * array (L1), 3 per kernel row, which the step has load slots for. */
#if EEX_VREGS < 32
#define DW_RELOAD_WEIGHTS() __asm__ volatile("" ::: "memory")
#else
#define DW_RELOAD_WEIGHTS() ((void)0)
#endif

static AINLINE void dw3x3_block(const int S, const int tail, int nt, const float *r0, const float *r1,
                                const float *r2, int C, int iw, int ow, int pl, const vf *w, vf bv,
                                const vact *act_in, float *out)
{
    const vact act_local = *act_in, *act = &act_local; /* the stores cannot alias a local */
#define LD(p) (tail ? v_loadn((p), nt) : v_load(p))
#define ST(p, v) (tail ? v_storen((p), (v), nt) : v_store((p), (v)))
    /* [ox_lo, ox_hi): the columns whose whole window is inside the row */
    int ox_lo = 0, ox_hi = ow;
    while (ox_lo < ow && ox_lo * S - pl < 0)
        ox_lo++;
    while (ox_hi > ox_lo && (ox_hi - 1) * S - pl + 2 >= iw)
        ox_hi--;
    for (int pass = 0; pass < 2; pass++) {
        /* the checked edge columns: left (pass 0), then right (pass 1) */
        for (int o = pass ? ox_hi : 0; o < (pass ? ow : ox_lo); o++) {
            vf acc = bv;
            for (int kx = 0; kx < 3; kx++) {
                const int ix = o * S - pl + kx;
                if (ix < 0 || ix >= iw)
                    continue;
                acc = v_fma(LD(r0 + (int64_t)ix * C), w[kx], acc);
                acc = v_fma(LD(r1 + (int64_t)ix * C), w[3 + kx], acc);
                acc = v_fma(LD(r2 + (int64_t)ix * C), w[6 + kx], acc);
            }
            ST(out + (int64_t)o * C, vact_apply(acc, act));
        }
        if (pass == 1)
            break;
        int ox = ox_lo;
        const int ox_end = ox_hi;
        if (S == 1) {
            for (; ox + 3 < ox_end; ox += 4) {
                DW_RELOAD_WEIGHTS();
                const int64_t ix = (int64_t)(ox - pl) * C;
                vf a0 = bv, a1 = bv, a2 = bv, a3 = bv;
                const float *rr[3] = {r0, r1, r2};
                UNROLL for (int ky = 0; ky < 3; ky++)
                {
                    const float *q = rr[ky] + ix;
                    const vf x0 = LD(q), x1 = LD(q + C), x2 = LD(q + 2 * C), x3 = LD(q + 3 * C);
                    const vf x4 = LD(q + 4 * C), x5 = LD(q + 5 * C);
                    const vf w0 = w[3 * ky], w1 = w[3 * ky + 1], w2 = w[3 * ky + 2];
                    a0 = v_fma(x0, w0, a0), a1 = v_fma(x1, w0, a1), a2 = v_fma(x2, w0, a2), a3 = v_fma(x3, w0, a3);
                    a0 = v_fma(x1, w1, a0), a1 = v_fma(x2, w1, a1), a2 = v_fma(x3, w1, a2), a3 = v_fma(x4, w1, a3);
                    a0 = v_fma(x2, w2, a0), a1 = v_fma(x3, w2, a1), a2 = v_fma(x4, w2, a2), a3 = v_fma(x5, w2, a3);
                }
                float *q = out + (int64_t)ox * C;
                ST(q, vact_apply(a0, act));
                ST(q + C, vact_apply(a1, act));
                ST(q + 2 * C, vact_apply(a2, act));
                ST(q + 3 * C, vact_apply(a3, act));
            }
        } else {
            for (; ox + 1 < ox_end; ox += 2) {
                DW_RELOAD_WEIGHTS();
                const int64_t ix = (int64_t)(ox * S - pl) * C;
                vf a0 = bv, a1 = bv;
                const float *rr[3] = {r0, r1, r2};
                UNROLL for (int ky = 0; ky < 3; ky++)
                {
                    const float *q = rr[ky] + ix;
                    const vf x0 = LD(q), x1 = LD(q + C), x2 = LD(q + 2 * C), x3 = LD(q + 3 * C), x4 = LD(q + 4 * C);
                    const vf w0 = w[3 * ky], w1 = w[3 * ky + 1], w2 = w[3 * ky + 2];
                    a0 = v_fma(x0, w0, a0), a1 = v_fma(x2, w0, a1);
                    a0 = v_fma(x1, w1, a0), a1 = v_fma(x3, w1, a1);
                    a0 = v_fma(x2, w2, a0), a1 = v_fma(x4, w2, a1);
                }
                float *q = out + (int64_t)ox * C;
                ST(q, vact_apply(a0, act));
                ST(q + C, vact_apply(a1, act));
            }
        }
        for (; ox < ox_end; ox++) {
            const int64_t ix = (int64_t)(ox * S - pl) * C;
            vf acc = bv;
            acc = v_fma(LD(r0 + ix), w[0], acc), acc = v_fma(LD(r0 + ix + C), w[1], acc);
            acc = v_fma(LD(r0 + ix + 2 * C), w[2], acc);
            acc = v_fma(LD(r1 + ix), w[3], acc), acc = v_fma(LD(r1 + ix + C), w[4], acc);
            acc = v_fma(LD(r1 + ix + 2 * C), w[5], acc);
            acc = v_fma(LD(r2 + ix), w[6], acc), acc = v_fma(LD(r2 + ix + C), w[7], acc);
            acc = v_fma(LD(r2 + ix + 2 * C), w[8], acc);
            ST(out + (int64_t)ox * C, vact_apply(acc, act));
        }
    }
#undef LD
#undef ST
}

static AINLINE void dw3x3_rows(const int S, const eex_conv_shape *s, const float *x, const float *w_kc,
                               const float *bias, const eex_act_params *act, float *y, int64_t r0, int64_t r1)
{
    const int C = s->oc;
    const vact va = vact_make(act);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / s->oh;
        const int oy = (int)(r % s->oh);
        const float *xn = x + n * s->ih * s->iw * C;
        float *out = y + r * s->ow * C;
        int valid[3], any = -1;
        for (int ky = 0; ky < 3; ky++) {
            const int iy = oy * S - s->pt + ky;
            valid[ky] = iy >= 0 && iy < s->ih;
            if (valid[ky] && any < 0)
                any = ky;
        }
        const float *rows[3];
        for (int ky = 0; ky < 3; ky++) {
            const int iy = oy * S - s->pt + (valid[ky] ? ky : any);
            rows[ky] = xn + (int64_t)(any < 0 ? 0 : iy) * s->iw * C;
        }
        for (int c0 = 0; c0 < C; c0 += VL) {
            const int nt = C - c0 < VL ? C - c0 : VL;
            vf w[9];
            for (int t = 0; t < 9; t++)
                w[t] = valid[t / 3] ? (nt == VL ? v_load(w_kc + t * C + c0) : v_loadn(w_kc + t * C + c0, nt))
                                    : v_zero();
            const vf bv = !bias ? v_zero() : nt == VL ? v_load(bias + c0) : v_loadn(bias + c0, nt);
            if (nt == VL)
                dw3x3_block(S, 0, VL, rows[0] + c0, rows[1] + c0, rows[2] + c0, C, s->iw, s->ow, s->pl, w, bv, &va,
                            out + c0);
            else
                dw3x3_block(S, 1, nt, rows[0] + c0, rows[1] + c0, rows[2] + c0, C, s->iw, s->ow, s->pl, w, bv, &va,
                            out + c0);
        }
    }
}

void FN(dwconv3x3_s1_f32)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                          const eex_act_params *act, float *y, int64_t r0, int64_t r1)
{
    dw3x3_rows(1, s, x, w_kc, bias, act, y, r0, r1);
}

void FN(dwconv3x3_s2_f32)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                          const eex_act_params *act, float *y, int64_t r0, int64_t r1)
{
    dw3x3_rows(2, s, x, w_kc, bias, act, y, r0, r1);
}

/* The same scheme for a KxK window at stride S (used for 5x5, MobileNetV3's
 * other depthwise size): K input rows, invalid rows given zero weights,
 * checked edge columns, and two outputs per step in the interior sharing
 * their overlapping column loads. */
static AINLINE void dwk_block(const int K, const int S, const int tail, int nt, const float *const *r, int C, int iw,
                              int ow, int pl, const vf *w, vf bv, const vact *act_in, float *out)
{
    const vact act_local = *act_in, *act = &act_local; /* the stores cannot alias a local */
#define LD(p) (tail ? v_loadn((p), nt) : v_load(p))
#define ST(p, v) (tail ? v_storen((p), (v), nt) : v_store((p), (v)))
    int ox_lo = 0, ox_hi = ow;
    while (ox_lo < ow && ox_lo * S - pl < 0)
        ox_lo++;
    while (ox_hi > ox_lo && (ox_hi - 1) * S - pl + K > iw)
        ox_hi--;
    for (int pass = 0; pass < 2; pass++)
        for (int o = pass ? ox_hi : 0; o < (pass ? ow : ox_lo); o++) {
            vf acc = bv;
            for (int kx = 0; kx < K; kx++) {
                const int ix = o * S - pl + kx;
                if (ix < 0 || ix >= iw)
                    continue;
                for (int ky = 0; ky < K; ky++)
                    acc = v_fma(LD(r[ky] + (int64_t)ix * C), w[ky * K + kx], acc);
            }
            ST(out + (int64_t)o * C, vact_apply(acc, act));
        }
    int ox = ox_lo;
    for (; ox + 1 < ox_hi; ox += 2) {
        const int64_t ix = (int64_t)(ox * S - pl) * C;
        vf a0 = bv, a1 = bv;
        UNROLL for (int ky = 0; ky < K; ky++)
        {
            const float *q = r[ky] + ix;
            UNROLL for (int kx = 0; kx < K + S; kx++)
            {
                const vf xv = LD(q + kx * C);
                if (kx < K)
                    a0 = v_fma(xv, w[ky * K + kx], a0);
                if (kx >= S)
                    a1 = v_fma(xv, w[ky * K + kx - S], a1);
            }
        }
        ST(out + (int64_t)ox * C, vact_apply(a0, act));
        ST(out + (int64_t)(ox + 1) * C, vact_apply(a1, act));
    }
    for (; ox < ox_hi; ox++) {
        const int64_t ix = (int64_t)(ox * S - pl) * C;
        vf acc = bv;
        UNROLL for (int ky = 0; ky < K; ky++)
        {
            UNROLL for (int kx = 0; kx < K; kx++) acc = v_fma(LD(r[ky] + ix + kx * C), w[ky * K + kx], acc);
        }
        ST(out + (int64_t)ox * C, vact_apply(acc, act));
    }
#undef LD
#undef ST
}

static AINLINE void dwk_rows(const int K, const int S, const eex_conv_shape *s, const float *x, const float *w_kc,
                             const float *bias, const eex_act_params *act, float *y, int64_t r0, int64_t r1)
{
    const int C = s->oc;
    const vact va = vact_make(act);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / s->oh;
        const int oy = (int)(r % s->oh);
        const float *xn = x + n * s->ih * s->iw * C;
        float *out = y + r * s->ow * C;
        int valid[8], any = -1;
        for (int ky = 0; ky < K; ky++) {
            const int iy = oy * S - s->pt + ky;
            valid[ky] = iy >= 0 && iy < s->ih;
            if (valid[ky] && any < 0)
                any = ky;
        }
        const float *rows[8];
        for (int ky = 0; ky < K; ky++) {
            const int iy = oy * S - s->pt + (valid[ky] ? ky : any);
            rows[ky] = xn + (int64_t)(any < 0 ? 0 : iy) * s->iw * C;
        }
        for (int c0 = 0; c0 < C; c0 += VL) {
            const int nt = C - c0 < VL ? C - c0 : VL;
            vf w[64];
            for (int t = 0; t < K * K; t++)
                w[t] = valid[t / K] ? (nt == VL ? v_load(w_kc + t * C + c0) : v_loadn(w_kc + t * C + c0, nt))
                                    : v_zero();
            const vf bv = !bias ? v_zero() : nt == VL ? v_load(bias + c0) : v_loadn(bias + c0, nt);
            const float *rc[8];
            for (int ky = 0; ky < K; ky++)
                rc[ky] = rows[ky] + c0;
            if (nt == VL)
                dwk_block(K, S, 0, VL, rc, C, s->iw, s->ow, s->pl, w, bv, &va, out + c0);
            else
                dwk_block(K, S, 1, nt, rc, C, s->iw, s->ow, s->pl, w, bv, &va, out + c0);
        }
    }
}

void FN(dwconv5x5_s1_f32)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                          const eex_act_params *act, float *y, int64_t r0, int64_t r1)
{
    dwk_rows(5, 1, s, x, w_kc, bias, act, y, r0, r1);
}

void FN(dwconv5x5_s2_f32)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                          const eex_act_params *act, float *y, int64_t r0, int64_t r1)
{
    dwk_rows(5, 2, s, x, w_kc, bias, act, y, r0, r1);
}

/* Any depthwise conv (kernel size, stride, dilation): per output pixel, the
 * channel blocks accumulate the window's valid taps. */
void FN(dwconv_f32)(const eex_conv_shape *s, const float *x, const float *w_kc, const float *bias,
                    const eex_act_params *act, float *y, int64_t r0, int64_t r1)
{
    const int C = s->oc;
    const vact va = vact_make(act);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / s->oh;
        const int oy = (int)(r % s->oh);
        const float *xn = x + n * s->ih * s->iw * C;
        for (int ox = 0; ox < s->ow; ox++) {
            float *out = y + (r * s->ow + ox) * C;
            for (int c0 = 0; c0 < C; c0 += VL) {
                const int nt = C - c0 < VL ? C - c0 : VL;
                vf acc = !bias ? v_zero() : nt == VL ? v_load(bias + c0) : v_loadn(bias + c0, nt);
                for (int ky = 0; ky < s->kh; ky++) {
                    const int iy = oy * s->sh - s->pt + ky * s->dh;
                    if (iy < 0 || iy >= s->ih)
                        continue;
                    for (int kx = 0; kx < s->kw; kx++) {
                        const int ix = ox * s->sw - s->pl + kx * s->dw;
                        if (ix < 0 || ix >= s->iw)
                            continue;
                        const float *in = xn + ((int64_t)iy * s->iw + ix) * C + c0;
                        const float *wt = w_kc + (int64_t)(ky * s->kw + kx) * C + c0;
                        acc = nt == VL ? v_fma(v_load(in), v_load(wt), acc)
                                       : v_fma(v_loadn(in, nt), v_loadn(wt, nt), acc);
                    }
                }
                acc = vact_apply(acc, &va);
                if (nt == VL)
                    v_store(out + c0, acc);
                else
                    v_storen(out + c0, acc, nt);
            }
        }
    }
}

/* ---- pooling -------------------------------------------------------------------- */

void FN(maxpool_f32)(const eex_pool_shape *s, const float *x, float *y, int64_t r0, int64_t r1)
{
    const int C = s->c;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / s->oh;
        const int oy = (int)(r % s->oh);
        const float *xn = x + n * s->ih * s->iw * C;
        /* the window's rows inside the input, clipped once per row */
        const int y0 = oy * s->sh - s->pt;
        const int ya = y0 < 0 ? 0 : y0, yb = y0 + s->kh > s->ih ? s->ih : y0 + s->kh;
        for (int ox = 0; ox < s->ow; ox++) {
            const int x0 = ox * s->sw - s->pl;
            const int xa = x0 < 0 ? 0 : x0, xb = x0 + s->kw > s->iw ? s->iw : x0 + s->kw;
            float *out = y + (r * s->ow + ox) * C;
            for (int c0 = 0; c0 < C; c0 += VL) {
                const int nt = C - c0 < VL ? C - c0 : VL;
                vf m = v_set1(-FLT_MAX);
                for (int iy = ya; iy < yb; iy++) {
                    const float *in = xn + ((int64_t)iy * s->iw + xa) * C + c0;
                    for (int ix = xa; ix < xb; ix++, in += C)
                        m = v_max(m, nt == VL ? v_load(in) : v_loadn(in, nt));
                }
                if (nt == VL)
                    v_store(out + c0, m);
                else
                    v_storen(out + c0, m, nt);
            }
        }
    }
}

/* The divisor follows eex_avgpool_ref (PyTorch/ONNX semantics). */
void FN(avgpool_f32)(const eex_pool_shape *s, const float *x, float *y, int64_t r0, int64_t r1)
{
    const int C = s->c;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / s->oh;
        const int oy = (int)(r % s->oh);
        const float *xn = x + n * s->ih * s->iw * C;
        for (int ox = 0; ox < s->ow; ox++) {
            const int y0 = oy * s->sh - s->pt, x0 = ox * s->sw - s->pl;
            int y1 = y0 + s->kh, x1 = x0 + s->kw;
            if (y1 > s->ih + s->pb)
                y1 = s->ih + s->pb;
            if (x1 > s->iw + s->pr)
                x1 = s->iw + s->pr;
            const int padded = (y1 - y0) * (x1 - x0);
            const int ya = y0 < 0 ? 0 : y0, xa = x0 < 0 ? 0 : x0;
            const int yb = y1 > s->ih ? s->ih : y1, xb = x1 > s->iw ? s->iw : x1;
            const int valid = (yb - ya) * (xb - xa);
            const int div = s->count_include_pad ? padded : valid;
            const vf scale = v_set1(div > 0 ? 1.0f / (float)div : 0.0f);
            float *out = y + (r * s->ow + ox) * C;
            for (int c0 = 0; c0 < C; c0 += VL) {
                const int nt = C - c0 < VL ? C - c0 : VL;
                vf acc = v_zero();
                for (int iy = ya; iy < yb; iy++)
                    for (int ix = xa; ix < xb; ix++) {
                        const float *in = xn + ((int64_t)iy * s->iw + ix) * C + c0;
                        acc = v_add(acc, nt == VL ? v_load(in) : v_loadn(in, nt));
                    }
                acc = v_mul(acc, scale);
                if (nt == VL)
                    v_store(out + c0, acc);
                else
                    v_storen(out + c0, acc, nt);
            }
        }
    }
}

void FN(gap_f32)(int n, int hw, int c, const float *x, float *y, int c0, int c1)
{
    const vf scale = v_set1(1.0f / (float)hw);
    for (int i = 0; i < n; i++) {
        const float *xi = x + (int64_t)i * hw * c;
        for (int cb = c0; cb < c1; cb += VL) {
            const int nt = c1 - cb < VL ? c1 - cb : VL;
            /* two accumulators halve the add-latency chain */
            vf a0 = v_zero(), a1 = v_zero();
            int p = 0;
            if (nt == VL) {
                for (; p + 1 < hw; p += 2) {
                    a0 = v_add(a0, v_load(xi + (int64_t)p * c + cb));
                    a1 = v_add(a1, v_load(xi + (int64_t)(p + 1) * c + cb));
                }
                for (; p < hw; p++)
                    a0 = v_add(a0, v_load(xi + (int64_t)p * c + cb));
                v_store(y + (int64_t)i * c + cb, v_mul(v_add(a0, a1), scale));
            } else {
                for (; p < hw; p++)
                    a0 = v_add(a0, v_loadn(xi + (int64_t)p * c + cb, nt));
                v_storen(y + (int64_t)i * c + cb, v_mul(a0, scale), nt);
            }
        }
    }
}

/* ---- element-wise ---------------------------------------------------------------- */

/* 1 - erf(|x|) for the erf family, Abramowitz and Stegun 7.1.26 (absolute
 * error < 1.5e-7): t = 1 / (1 + p|x|), poly(t) e^(-x^2). */
static AINLINE vf v_erfc_abs(vf x)
{
    const vf ax = v_max(x, v_sub(v_zero(), x));
    const vf t = v_div(v_set1(1.0f), v_fma(ax, v_set1(0.3275911f), v_set1(1.0f)));
    vf p = v_set1(1.061405429f);
    p = v_fma(p, t, v_set1(-1.453152027f));
    p = v_fma(p, t, v_set1(1.421413741f));
    p = v_fma(p, t, v_set1(-0.284496736f));
    p = v_fma(p, t, v_set1(0.254829592f));
    return v_mul(v_mul(p, t), v_exp(v_mul(v_sub(v_zero(), ax), ax)));
}

static AINLINE vf v_binop(int op, vf a, vf b)
{
    switch (op) {
    case EEX_BIN_MUL: return v_mul(a, b);
    case EEX_BIN_SUB: return v_sub(a, b);
    case EEX_BIN_DIV: return v_div(a, b);
    case EEX_BIN_RSUB: return v_sub(b, a);
    case EEX_BIN_RDIV: return v_div(b, a);
    case EEX_BIN_MAX: return v_max(a, b);
    case EEX_BIN_MIN: return v_min(a, b);
    case EEX_BIN_PRELU: return v_select_neg(a, v_mul(a, b), a);
    default: return v_add(a, b);
    }
}

void FN(binary_f32)(int op, int n, int hw, int c, const float *a, const float *b, eex_bcast mode,
                    const eex_act_params *act, float *y, int64_t p0, int64_t p1)
{
    (void)n;
    const vact va = vact_make(act);
    for (int64_t p = p0; p < p1; p++) {
        const float *ap = a + p * c;
        const float *bp = mode == EEX_BCAST_SAME              ? b + p * c
                          : mode == EEX_BCAST_CHANNEL         ? b
                          : mode == EEX_BCAST_IMAGE_CHANNEL   ? b + (p / hw) * c
                                                              : b;
        float *yp = y + p * c;
        const vf bs = v_set1(b[0]);
        for (int c0 = 0; c0 < c; c0 += VL) {
            const int nt = c - c0 < VL ? c - c0 : VL;
            const vf av = nt == VL ? v_load(ap + c0) : v_loadn(ap + c0, nt);
            const vf bv = mode == EEX_BCAST_SCALAR ? bs : nt == VL ? v_load(bp + c0) : v_loadn(bp + c0, nt);
            const vf r = vact_apply(v_binop(op, av, bv), &va);
            if (nt == VL)
                v_store(yp + c0, r);
            else
                v_storen(yp + c0, r, nt);
        }
    }
}

/* The unary ops computed in full vectors (everything but the clamps). */
static AINLINE vf v_unary(eex_unary op, vf v, vf p0)
{
    switch (op) {
    case EEX_UNARY_SIGMOID: return v_div(v_set1(1.0f), v_add(v_set1(1.0f), v_exp(v_sub(v_zero(), v))));
    case EEX_UNARY_TANH: {
        /* odd: tanh|x| = 1 - 2 / (e^2|x| + 1); below |x| = 1/16 that loses
         * digits to cancellation, so there x - x^3/3 + 2x^5/15 (error < 1e-9) */
        const vf ax = v_max(v_sub(v_zero(), v), v);
        const vf big = v_sub(v_set1(1.0f), v_div(v_set1(2.0f), v_add(v_exp(v_add(ax, ax)), v_set1(1.0f))));
        const vf x2 = v_mul(ax, ax);
        const vf small = v_mul(ax, v_fma(x2, v_fma(x2, v_set1(2.0f / 15.0f), v_set1(-1.0f / 3.0f)), v_set1(1.0f)));
        const vf r = v_select_neg(v_sub(ax, v_set1(0.0625f)), small, big);
        return v_select_neg(v, v_sub(v_zero(), r), r);
    }
    case EEX_UNARY_LEAKYRELU: return v_select_neg(v, v_mul(v, p0), v);
    case EEX_UNARY_ELU: return v_select_neg(v, v_mul(p0, v_sub(v_exp(v), v_set1(1.0f))), v);
    case EEX_UNARY_ERF: {
        const vf r = v_sub(v_set1(1.0f), v_erfc_abs(v));
        return v_select_neg(v, v_sub(v_zero(), r), r);
    }
    case EEX_UNARY_GELU: {
        /* x/2 (1 + erf(x/sqrt2)) = x/2 (2 - q) for x >= 0 and x/2 q below, q = 1 - erf|x/sqrt2| */
        const vf q = v_erfc_abs(v_mul(v, v_set1(0.70710678118654752f)));
        return v_mul(v_mul(v, v_set1(0.5f)), v_select_neg(v, q, v_sub(v_set1(2.0f), q)));
    }
    case EEX_UNARY_ABS: return v_max(v_sub(v_zero(), v), v);
    case EEX_UNARY_NEG: return v_sub(v_zero(), v);
    case EEX_UNARY_EXP: return v_exp(v);
    case EEX_UNARY_SILU: return v_silu(v);
    default: return v;
    }
}

void FN(unary_f32)(eex_unary op, float p0, float p1, const float *x, float *y, int64_t i0, int64_t i1)
{
    if (op == EEX_UNARY_SQRT || op == EEX_UNARY_EXP) {
        /* sqrtf is one exact instruction the compiler vectorises; exp is
         * kept exact too (ONNX's Exp tests compare to the last digits and
         * no model here has Exp on its hot path) */
        for (int64_t i = i0; i < i1; i++)
            y[i] = op == EEX_UNARY_SQRT ? sqrtf(x[i]) : expf(x[i]);
        return;
    }
    if (op >= EEX_UNARY_SIGMOID && op != EEX_UNARY_HARDSIGMOID && op != EEX_UNARY_HARDSWISH) {
        const vf vp0 = v_set1(p0);
        int64_t i = i0;
        for (; i + VL <= i1; i += VL)
            v_store(y + i, v_unary(op, v_load(x + i), vp0));
        if (i < i1)
            v_storen(y + i, v_unary(op, v_loadn(x + i, (int)(i1 - i)), vp0), (int)(i1 - i));
        return;
    }
    eex_act_params ap = {.act = EEX_ACT_NONE};
    vf scale = v_set1(1.0f), shift = v_zero();
    switch (op) {
    case EEX_UNARY_RELU: ap.act = EEX_ACT_RELU; break;
    case EEX_UNARY_CLIP: ap = (eex_act_params){.act = EEX_ACT_CLIP, .lo = p0, .hi = p1}; break;
    case EEX_UNARY_HARDSWISH: ap.act = EEX_ACT_HARDSWISH; break;
    default: /* hardsigmoid: clamp(p0 * v + p1, 0, 1) */
        ap = (eex_act_params){.act = EEX_ACT_CLIP, .lo = 0.0f, .hi = 1.0f};
        scale = v_set1(p0), shift = v_set1(p1);
        break;
    }
    const vact va = vact_make(&ap);
    const int affine = op == EEX_UNARY_HARDSIGMOID;
    int64_t i = i0;
    for (; i + VL <= i1; i += VL) {
        vf v = v_load(x + i);
        if (affine)
            v = v_fma(v, scale, shift);
        v_store(y + i, vact_apply(v, &va));
    }
    if (i < i1) {
        vf v = v_loadn(x + i, (int)(i1 - i));
        if (affine)
            v = v_fma(v, scale, shift);
        v_storen(y + i, vact_apply(v, &va), (int)(i1 - i));
    }
}

/* Layer normalisation over the channels of each pixel (ConvNeXt): mean and
 * variance in two passes over the pixel's contiguous channels (two-pass: the
 * one-pass E[x^2] - E[x]^2 cancels badly when |mean| >> std), the second
 * also summing the deviations, which corrects the rounding of the first
 * pass's mean (the "corrected two-pass" algorithm). */
void FN(layernorm_f32)(int64_t p0, int64_t p1, int c, float eps, const float *scale, const float *bias,
                       const float *x, float *y)
{
    for (int64_t p = p0; p < p1; p++) {
        const float *xp = x + p * c;
        float *yp = y + p * c;
        const int cv = c - c % VL; /* full vectors; the tail is summed one by one */
        vf s = v_zero();
        for (int k = 0; k < cv; k += VL)
            s = v_add(s, v_load(xp + k));
        float sum = v_hsum(s);
        for (int k = cv; k < c; k++)
            sum += xp[k];
        const float mean = sum / (float)c;
        vf q = v_zero(), r = v_zero();
        const vf vm0 = v_set1(mean);
        for (int k = 0; k < cv; k += VL) {
            const vf d = v_sub(v_load(xp + k), vm0);
            r = v_add(r, d);
            q = v_fma(d, d, q);
        }
        float sq = v_hsum(q), sd = v_hsum(r);
        for (int k = cv; k < c; k++) {
            const float d = xp[k] - mean;
            sd += d;
            sq += d * d;
        }
        float var = (sq - sd * sd / (float)c) / (float)c;
        const vf vm = v_set1(mean + sd / (float)c);
        const vf inv = v_set1(1.0f / sqrtf((var > 0.0f ? var : 0.0f) + eps));
        for (int k = 0; k < c; k += VL) {
            const int nt = c - k < VL ? c - k : VL;
            const vf xs = nt == VL ? v_load(xp + k) : v_loadn(xp + k, nt);
            const vf g = nt == VL ? v_load(scale + k) : v_loadn(scale + k, nt);
            const vf bb = bias ? (nt == VL ? v_load(bias + k) : v_loadn(bias + k, nt)) : v_zero();
            const vf r = v_fma(v_mul(v_sub(xs, vm), inv), g, bb);
            if (nt == VL)
                v_store(yp + k, r);
            else
                v_storen(yp + k, r, nt);
        }
    }
}

#include "simd_winograd.h"

const eex_kernel_table EEX_PASTE(eex_kernel_table, EEX_ISA_SUFFIX) = {
    .isa = EEX_ISA_ID,
    .name = EEX_ISA_NAME,
    .vl = VL,
    .mr = GEMM_ALIGN,
    .nr = GEMM_NR,
    .conv_gemm_f32 = FN(conv_gemm_f32),
    .winograd43_f32 = FN(winograd43_f32),
    .dense_half_f32 = FN(dense_half_f32),
    .dwconv3x3_s1_f32 = FN(dwconv3x3_s1_f32),
    .dwconv3x3_s2_f32 = FN(dwconv3x3_s2_f32),
    .dwconv5x5_s1_f32 = FN(dwconv5x5_s1_f32),
    .dwconv5x5_s2_f32 = FN(dwconv5x5_s2_f32),
    .dwconv_f32 = FN(dwconv_f32),
    .maxpool_f32 = FN(maxpool_f32),
    .avgpool_f32 = FN(avgpool_f32),
    .gap_f32 = FN(gap_f32),
    .binary_f32 = FN(binary_f32),
    .unary_f32 = FN(unary_f32),
    .layernorm_f32 = FN(layernorm_f32),
};
