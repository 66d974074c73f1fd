/* The cloud's batched run against one image at a time, bit for bit: every
 * cut, every expert, batches of 1..9, 16 and 33, each image with its own
 * metric and threshold, on cut tensors from real edge runs and on random
 * ones. The model is $EEX_TEST_MODEL (tests/ee/make_tiny.py). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../offload/offload.h"
#include "eex.h"

static eex_model *open_model(void)
{
    const char *path = getenv("EEX_TEST_MODEL");
    cr_assert(path, "set EEX_TEST_MODEL to an early-exit .eex (tests/ee/make_tiny.py)");
    eex_model *m;
    cr_assert_eq(eex_model_open(path, &m), EEX_OK, "%s", eex_last_error());
    return m;
}

static size_t cut_elems(const eex_model *m, int cut, int64_t *shape, int *rank)
{
    *rank = eex_model_cut_shape(m, cut, shape);
    size_t n = 1;
    for (int d = 1; d < *rank; d++)
        n *= (size_t)shape[d];
    return n;
}

/* n cut tensors: the first from edge runs on random images, the rest random */
static float *tensors(const eex_model *m, int cut, int n, uint64_t seed)
{
    int64_t shape[EEX_MAX_RANK];
    int rank;
    const size_t e = cut_elems(m, cut, shape, &rank);
    float *x = malloc(sizeof(float) * e * (size_t)n);
    int64_t in[EEX_MAX_RANK];
    eex_model_input_shape(m, eex_model_image_input(m), in);
    const int C = (int)in[1], H = (int)in[2], W = (int)in[3];
    uint8_t *px = malloc((size_t)H * W * C);
    eex_session *s;
    cr_assert_eq(eex_session_new(m, NULL, &s), EEX_OK);
    for (int i = 0; i < n; i++) {
        if (i % 2 == 0) {
            for (size_t k = 0; k < (size_t)H * W * C; k++)
                px[k] = (uint8_t)(eex_splitmix64(&seed) >> 56);
            eex_policy p = {.threshold = 1.0f, .expert = 0, .cut = cut};
            eex_exit_result r;
            cr_assert_eq(eex_session_set_image(s, px, H, W, C), EEX_OK);
            cr_assert_eq(eex_session_run_policy(s, &p, &r), EEX_OK, "%s", eex_last_error());
            cr_assert_eq(eex_session_cut_tensor(s, cut, x + e * (size_t)i, e, NULL, NULL), EEX_OK);
        } else
            for (size_t k = 0; k < e; k++)
                x[e * (size_t)i + k] = (float)((double)(eex_splitmix64(&seed) >> 11) / 9007199254740992.0 * 4.0 - 1.0);
    }
    eex_session_free(s);
    free(px);
    return x;
}

Test(batch, equals_one_at_a_time_bit_for_bit)
{
    eex_model *m = open_model();
    eex_session *one, *many;
    cr_assert_eq(eex_session_new(m, NULL, &one), EEX_OK);
    cr_assert_eq(eex_session_new(m, NULL, &many), EEX_OK);
    static const int sizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 33};
    int checked = 0;
    for (int cut = 0; cut < eex_model_cut_count(m); cut++) {
        int64_t shape[EEX_MAX_RANK];
        int rank;
        const size_t e = cut_elems(m, cut, shape, &rank);
        for (int expert = 0; expert < eex_model_expert_count(m); expert++) {
            float *x = tensors(m, cut, 33, 1000u + (uint64_t)cut * 10 + (uint64_t)expert);
            eex_metric metric[33];
            float thr[33];
            for (int i = 0; i < 33; i++)
                metric[i] = (eex_metric)(i % 3 == 2), thr[i] = i % 4 == 0 ? 1.0f : 0.3f + 0.1f * (float)(i % 5);
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                const int n = sizes[si];
                eex_cloud_answer a[33];
                eex_status each[33];
                cr_assert_eq(eex_offload_resume_batch(many, cut, x, n, expert, metric, thr, a, each), EEX_OK, "%s",
                             eex_last_error());
                for (int i = 0; i < n; i++) {
                    eex_cloud_answer b;
                    shape[0] = 1;
                    const eex_status st =
                        eex_offload_resume(one, cut, x + e * (size_t)i, shape, rank, expert, metric[i], thr[i], &b);
                    cr_assert_eq(each[i], st, "cut %d expert %d batch %d image %d: status", cut, expert, n, i);
                    if (st)
                        continue;
                    cr_assert(a[i].n == b.n && a[i].first_exit == b.first_exit && a[i].exit == b.exit &&
                                  a[i].cls == b.cls,
                              "cut %d expert %d batch %d image %d: choice", cut, expert, n, i);
                    cr_assert(!memcmp(a[i].confidences, b.confidences, sizeof(float) * (size_t)b.n) &&
                                  !memcmp(a[i].classes, b.classes, sizeof(int) * (size_t)b.n),
                              "cut %d expert %d batch %d image %d: confidences differ in some bit", cut, expert, n, i);
                    checked++;
                }
            }
            free(x);
        }
    }
    cr_assert_gt(checked, 100);
    eex_session_free(one);
    eex_session_free(many);
    eex_model_close(m);
}

Test(batch, bad_arguments)
{
    eex_model *m = open_model();
    eex_session *s;
    cr_assert_eq(eex_session_new(m, NULL, &s), EEX_OK);
    float x[1] = {0};
    eex_metric mt = EEX_METRIC_MAXPROB, bad = (eex_metric)7;
    float thr = 0.5f;
    eex_cloud_answer a;
    eex_status each;
    cr_assert_eq(eex_offload_resume_batch(s, 99, x, 1, 0, &mt, &thr, &a, &each), EEX_ERR_ARGUMENT);
    cr_assert_eq(eex_offload_resume_batch(s, 0, x, 1, 99, &mt, &thr, &a, &each), EEX_ERR_ARGUMENT);
    cr_assert_eq(eex_offload_resume_batch(s, 0, x, 0, 0, &mt, &thr, &a, &each), EEX_ERR_ARGUMENT);
    cr_assert_eq(eex_offload_resume_batch(s, 0, x, 1, 0, &bad, &thr, &a, &each), EEX_ERR_ARGUMENT);
    eex_session_free(s);
    eex_model_close(m);
}
