/* Winograd F(4x4, 3x3) on the SIMD layer (kernels/winograd.h has the
 * algorithm, layouts and the scalar twin). Included by simd_kernels.h after
 * the GEMM micro-kernel, which runs the 36 per-position products.
 *
 * Per block of tiles: (1) input transform, channels in vectors:
 * V[xi][t][ic] = (B^T d B)[xi] of tile t; (2) for each xi, M[xi][t][oc] =
 * V[xi] U[xi], one register-blocked GEMM over the block's tiles and the
 * packed panels of U[xi]; (3) output transform Y = A^T M A + bias,
 * activation, stored inside the output (tiles past the edge are cut). */
#include "winograd.h"

/* B^T applied to six vectors d[0], d[k], ... d[5k] */
#define WINO_BT(d, k, r)                                                                                       \
    do {                                                                                                       \
        const vf d0 = (d)[0], d1 = (d)[k], d2 = (d)[2 * (k)], d3 = (d)[3 * (k)], d4 = (d)[4 * (k)],            \
                 d5 = (d)[5 * (k)];                                                                            \
        const vf four = v_set1(4.0f), five = v_set1(5.0f), two = v_set1(2.0f);                                 \
        const vf a = v_sub(d4, d2), b = v_sub(d3, d1);          /* d4 - d2, d3 - d1 */                          \
        const vf c = v_fma(four, v_sub(v_zero(), d2), d4);      /* d4 - 4 d2 */                                 \
        const vf e = v_fma(four, v_sub(v_zero(), d1), d3);      /* d3 - 4 d1 */                                 \
        (r)[0] = v_fma(four, d0, v_fma(five, v_sub(v_zero(), d2), d4));                                         \
        (r)[1] = v_add(c, e);                                                                                  \
        (r)[2] = v_sub(c, e);                                                                                  \
        (r)[3] = v_fma(two, b, a);                                                                             \
        (r)[4] = v_sub(a, v_mul(two, b));                                                                      \
        (r)[5] = v_fma(four, d1, v_fma(five, v_sub(v_zero(), d3), d5));                                         \
    } while (0)

/* A^T applied to six vectors m[0], m[k], ... m[5k] */
#define WINO_AT(m, k, r)                                                                                       \
    do {                                                                                                       \
        const vf m0 = (m)[0], m1 = (m)[k], m2 = (m)[2 * (k)], m3 = (m)[3 * (k)], m4 = (m)[4 * (k)],            \
                 m5 = (m)[5 * (k)];                                                                            \
        const vf p12 = v_add(m1, m2), q12 = v_sub(m1, m2), p34 = v_add(m3, m4), q34 = v_sub(m3, m4);           \
        (r)[0] = v_add(v_add(m0, p12), p34);                                                                   \
        (r)[1] = v_fma(v_set1(2.0f), q34, q12);                                                                \
        (r)[2] = v_fma(v_set1(4.0f), p34, p12);                                                                \
        (r)[3] = v_add(v_fma(v_set1(8.0f), q34, q12), m5);                                                     \
    } while (0)

/* Tile t of the conv: its image and the input coordinates of its corner. */
static AINLINE void wino_tile_pos(const eex_conv_shape *s, int64_t t, int64_t *n, int *y0, int *x0)
{
    const int th = (s->oh + 3) / 4, tw = (s->ow + 3) / 4;
    const int64_t per = (int64_t)th * tw, r = t % per;
    *n = t / per;
    *y0 = (int)(r / tw) * 4;
    *x0 = (int)(r % tw) * 4;
}

static void wino_input(const eex_conv_shape *s, const float *x, int64_t t, float *v, int64_t xi_stride)
{
    int64_t n;
    int oy, ox;
    wino_tile_pos(s, t, &n, &oy, &ox);
    const int C = s->ic, iy0 = oy - s->pt, ix0 = ox - s->pl;
    const float *rows[36];
    int inside = 1;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            const int iy = iy0 + i, ix = ix0 + j;
            const int ok = iy >= 0 && iy < s->ih && ix >= 0 && ix < s->iw;
            rows[i * 6 + j] = ok ? x + ((n * s->ih + iy) * s->iw + ix) * C : NULL;
            inside &= ok;
        }
    for (int c0 = 0; c0 < C; c0 += VL) {
        const int nt = C - c0 < VL ? C - c0 : VL;
        vf d[36], tt[36], r[6];
        if (inside && nt == VL) {
            UNROLL for (int k = 0; k < 36; k++) d[k] = v_load(rows[k] + c0);
        } else
            for (int k = 0; k < 36; k++)
                d[k] = !rows[k] ? v_zero() : nt == VL ? v_load(rows[k] + c0) : v_loadn(rows[k] + c0, nt);
        /* columns: tt[i][j] = sum_k BT[i][k] d[k][j] */
        UNROLL for (int j = 0; j < 6; j++)
        {
            WINO_BT(d + j, 6, r);
            UNROLL for (int i = 0; i < 6; i++) tt[i * 6 + j] = r[i];
        }
        /* rows: V[i][l] = sum_k tt[i][k] BT[l][k] */
        UNROLL for (int i = 0; i < 6; i++)
        {
            WINO_BT(tt + i * 6, 1, r);
            UNROLL for (int l = 0; l < 6; l++)
            {
                float *dst = v + (int64_t)(i * 6 + l) * xi_stride + c0;
                if (nt == VL)
                    v_store(dst, r[l]);
                else
                    v_storen(dst, r[l], nt);
            }
        }
    }
}

static void wino_output(const eex_conv_shape *s, const float *m, int64_t xi_stride, int64_t t, const float *bias,
                        const vact *act, float *y, int ch0, int ch1)
{
    int64_t n;
    int oy, ox;
    wino_tile_pos(s, t, &n, &oy, &ox);
    const int C = s->oc;
    const int rows = s->oh - oy < 4 ? s->oh - oy : 4, cols = s->ow - ox < 4 ? s->ow - ox : 4;
    float *yt = y + ((n * s->oh + oy) * s->ow + ox) * C;
    for (int c0 = ch0; c0 < ch1; c0 += VL) {
        const int nt = C - c0 < VL ? C - c0 : VL;
        vf mm[36], t2[24], r[4];
        UNROLL for (int k = 0; k < 36; k++) mm[k] = v_load(m + k * xi_stride + c0); /* rows are padded to VL */
        UNROLL for (int l = 0; l < 6; l++)
        {
            WINO_AT(mm + l, 6, r);
            UNROLL for (int i = 0; i < 4; i++) t2[i * 6 + l] = r[i];
        }
        const vf b = !bias ? v_zero() : nt == VL ? v_load(bias + c0) : v_loadn(bias + c0, nt);
        for (int i = 0; i < rows; i++) {
            WINO_AT(t2 + i * 6, 1, r);
            for (int j = 0; j < cols; j++) {
                float *dst = yt + ((int64_t)i * s->ow + j) * C + c0;
                const vf o = vact_apply(v_add(r[j], b), act);
                if (nt == VL)
                    v_store(dst, o);
                else
                    v_storen(dst, o, nt);
            }
        }
    }
}

/* Tiles [t0, t1), output panels [j0, j1) (of GEMM_NR channels); scratch
 * holds eex_wino_scratch_floats(ic, oc, GEMM_ALIGN) floats. A panel range
 * still transforms the tiles' whole input (every output channel reads all
 * of it): splitting by panels reads only those panels' share of the 36
 * transformed weight matrices, which a split by tiles reads in full per
 * task (9.4 MB for a 256 -> 256 conv). */
void FN(winograd43_f32)(const eex_conv_shape *s, const float *x, const float *u_packed, const float *bias,
                        const eex_act_params *act, float *y, int64_t t0, int64_t t1, int j0, int j1,
                        float *scratch)
{
    const int ic = s->ic, oc = s->oc, block = eex_wino_block(ic, GEMM_ALIGN);
    /* the products' rows are padded to whole vectors so the output
     * transform loads full vectors */
    const int ocp = (oc + VL - 1) / VL * VL;
    const int panels = (oc + GEMM_NR - 1) / GEMM_NR;
    const int64_t per_xi = eex_pack_gemm_floats(oc, ic, 1, 1, 1, GEMM_NR);
    const int64_t panel = eex_gemm_panel_floats(GEMM_NR, 1, ic);
    const vact va = vact_make(act);
    const vact none = {.lo = v_set1(-INFINITY), .hi = v_set1(INFINITY), .kind = VACT_CLAMP};
    float *V = scratch, *M = scratch + (int64_t)EEX_WINO_XI * block * ic;
    for (int64_t tb = t0; tb < t1; tb += block) {
        const int nb = t1 - tb < block ? (int)(t1 - tb) : block;
        const int64_t vs = (int64_t)nb * ic, ms = (int64_t)nb * ocp; /* per-xi strides */
        for (int t = 0; t < nb; t++)
            wino_input(s, x, tb + t, V + (int64_t)t * ic, vs);
        for (int xi = 0; xi < EEX_WINO_XI; xi++) {
            const float *vx = V + xi * vs;
            float *mx = M + xi * ms;
            const int jend = j1 < panels ? j1 : panels;
            for (int jp = j0; jp < jend; jp++) {
                const int ncols = oc - jp * GEMM_NR < GEMM_NR ? oc - jp * GEMM_NR : GEMM_NR;
                const int nv = (ncols + VL - 1) / VL, nlast = ncols - (nv - 1) * VL;
                const float *w = u_packed + xi * per_xi + jp * panel;
                /* with few tiles each panel serves a few tile rows and its
                 * first waited for it from memory: prefetch the next one
                 * (this xi's next panel of the range, or the next xi's first).
                 * Up to 4 tile rows only: ResNet-18's 14x14 convs (3 rows)
                 * took 0.82-0.84x the time at 1 thread; with 5 rows (its 56x56
                 * convs at 2 threads) the prefetches evicted the block's
                 * transformed input from L2 and took 1.1-1.2x. */
                const float *nextw = jp + 1 < jend ? w + panel
                                     : xi + 1 < EEX_WINO_XI ? u_packed + (xi + 1) * per_xi + j0 * panel : NULL;
                const int sh = nextw ? panel_prefetch_shift((nb + GEMM_MR - 1) / GEMM_MR, 4) : -1;
                const int64_t slice = sh >= 0 ? (panel * (int64_t)sizeof(float)) >> sh : 0;
                for (int t = 0; t < nb; t += GEMM_MR) {
                    const int mrv = nb - t < GEMM_MR ? nb - t : GEMM_MR;
                    const float *ptrs[GEMM_MR];
                    for (int i = 0; i < GEMM_MR; i++)
                        ptrs[i] = vx + (int64_t)(t + (i < mrv ? i : 0)) * ic;
                    gemm_tile_next(mrv == 1 ? 1 : GEMM_MR, nv, 1, ic, ptrs, GEMM_MR, w, w + GEMM_NR, 1, 1, &none,
                                   mx + (int64_t)t * ocp + jp * GEMM_NR, ocp, mrv, nlast, (const char *)nextw, sh,
                                   slice, t / GEMM_MR);
                }
            }
        }
        const int ch0 = j0 * GEMM_NR, ch1 = j1 * GEMM_NR < oc ? j1 * GEMM_NR : oc;
        for (int t = 0; t < nb; t++)
            wino_output(s, M + (int64_t)t * ocp, ms, tb + t, bias, &va, y, ch0, ch1);
    }
}
