/* Winograd F(4x4, 3x3): the weight transform and packing done at load, and
 * the per-thread scratch of the fast kernels (kernels/simd_winograd.h). */
#include "winograd.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"

/* G (6x3) for the points 0, 1, -1, 2, -2 and infinity */
static const double wino_G[6][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1},
};

static void transform_one(const float *g, float *u, int64_t stride)
{
    double t[6][3];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++)
            t[i][j] = wino_G[i][0] * g[0 * 3 + j] + wino_G[i][1] * g[1 * 3 + j] + wino_G[i][2] * g[2 * 3 + j];
    for (int i = 0; i < 6; i++)
        for (int l = 0; l < 6; l++)
            u[(int64_t)(i * 6 + l) * stride] =
                (float)(t[i][0] * wino_G[l][0] + t[i][1] * wino_G[l][1] + t[i][2] * wino_G[l][2]);
}

void eex_wino_transform_weights(const float *w, int oc, int ic, float *u)
{
    const int64_t plane = (int64_t)oc * ic;
    for (int o = 0; o < oc; o++)
        for (int c = 0; c < ic; c++)
            transform_one(w + ((int64_t)o * ic + c) * 9, u + (int64_t)o * ic + c, plane);
}

int64_t eex_wino_pack_floats(int oc, int ic, int nr) { return EEX_WINO_XI * eex_pack_gemm_floats(oc, ic, 1, 1, 1, nr); }

void eex_wino_pack_weights(const float *w, int oc, int ic, int nr, float *dst)
{
    const int64_t plane = (int64_t)oc * ic, per = eex_pack_gemm_floats(oc, ic, 1, 1, 1, nr);
    float *u = malloc(sizeof(float) * (size_t)(EEX_WINO_XI * plane));
    if (!u) { /* no buffer: transform one weight at a time straight into the panels */
        memset(dst, 0, sizeof(float) * (size_t)(EEX_WINO_XI * per));
        float one[EEX_WINO_XI];
        for (int o = 0; o < oc; o++)
            for (int c = 0; c < ic; c++) {
                transform_one(w + ((int64_t)o * ic + c) * 9, one, 1);
                for (int xi = 0; xi < EEX_WINO_XI; xi++)
                    dst[xi * per + (int64_t)(o / nr) * eex_gemm_panel_floats(nr, 1, ic) + nr + (int64_t)c * nr +
                        o % nr] = one[xi];
            }
        return;
    }
    eex_wino_transform_weights(w, oc, ic, u);
    /* u[xi] is [oc][ic]: the [oc][icg][1][1] weights of a 1x1 conv */
    for (int xi = 0; xi < EEX_WINO_XI; xi++)
        eex_pack_gemm_weights(u + xi * plane, NULL, oc, ic, 1, 1, 1, nr, dst + xi * per);
    free(u);
}

/* ---- per-thread scratch ---- */

typedef struct scratch {
    float *p;
    int64_t floats;
} scratch;

static pthread_key_t scratch_key;
static int scratch_key_ok;

static void scratch_free(void *v)
{
    scratch *s = v;
    free(s->p);
    free(s);
}

static void scratch_init(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0; }

float *eex_wino_scratch(int64_t floats)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, scratch_init);
    if (!scratch_key_ok || floats <= 0)
        return NULL;
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->floats < floats) {
        /* 64-byte aligned, so the transforms' rows start on cache lines */
        void *p = NULL;
        if (posix_memalign(&p, 64, sizeof(float) * (size_t)floats) != 0)
            return NULL;
        free(s->p);
        s->p = p;
        s->floats = floats;
    }
    return s->p;
}
