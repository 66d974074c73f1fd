/* Exit confidence: temperature scaling, the two metrics, and bad logits. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "eex.h"

Test(confidence, maxprob_is_the_largest_softmax_probability)
{
    const float z[3] = {2.0f, 1.0f, 0.0f};
    float c;
    int cls;
    cr_assert_eq(eex_confidence(z, 3, 1.0f, EEX_METRIC_MAXPROB, &c, &cls), EEX_OK);
    const double want = exp(2.0) / (exp(2.0) + exp(1.0) + 1.0);
    cr_assert_float_eq(c, want, 1e-6);
    cr_assert_eq(cls, 0);
}

Test(confidence, temperature_divides_the_logits)
{
    const float z[3] = {2.0f, 1.0f, 0.0f};
    float c1, c2, c_half;
    cr_assert_eq(eex_confidence(z, 3, 2.0f, EEX_METRIC_MAXPROB, &c2, NULL), EEX_OK);
    const float zh[3] = {1.0f, 0.5f, 0.0f};
    cr_assert_eq(eex_confidence(zh, 3, 1.0f, EEX_METRIC_MAXPROB, &c_half, NULL), EEX_OK);
    cr_assert_float_eq(c2, c_half, 1e-7, "T = 2 must equal halving the logits");
    cr_assert_eq(eex_confidence(z, 3, 1.0f, EEX_METRIC_MAXPROB, &c1, NULL), EEX_OK);
    cr_assert(c2 < c1, "a higher temperature lowers confidence");
}

Test(confidence, entropy_metric)
{
    const float flat[4] = {0, 0, 0, 0}, sharp[4] = {100, 0, 0, 0};
    float c;
    cr_assert_eq(eex_confidence(flat, 4, 1.0f, EEX_METRIC_ENTROPY, &c, NULL), EEX_OK);
    cr_assert_float_eq(c, 0.0f, 1e-6, "uniform distribution: no confidence");
    cr_assert_eq(eex_confidence(sharp, 4, 1.0f, EEX_METRIC_ENTROPY, &c, NULL), EEX_OK);
    cr_assert_float_eq(c, 1.0f, 1e-6, "one-hot: full confidence");
    const float z[2] = {1.0f, 0.0f};
    cr_assert_eq(eex_confidence(z, 2, 1.0f, EEX_METRIC_ENTROPY, &c, NULL), EEX_OK);
    const double p = 1.0 / (1.0 + exp(-1.0)), h = -(p * log(p) + (1 - p) * log(1 - p));
    cr_assert_float_eq(c, 1.0 - h / log(2.0), 1e-6);
}

Test(confidence, nan_and_inf_logits_are_errors)
{
    float c;
    const float with_nan[3] = {1.0f, NAN, 0.0f}, with_inf[3] = {INFINITY, 0.0f, 0.0f};
    cr_assert_eq(eex_confidence(with_nan, 3, 1.0f, EEX_METRIC_MAXPROB, &c, NULL), EEX_ERR_NUMERIC);
    cr_assert(strstr(eex_last_error(), "NaN"), "%s", eex_last_error());
    cr_assert_eq(eex_confidence(with_inf, 3, 1.0f, EEX_METRIC_MAXPROB, &c, NULL), EEX_ERR_NUMERIC);
    cr_assert(strstr(eex_last_error(), "infinite"), "%s", eex_last_error());
    const float ok[2] = {0, 1};
    cr_assert_eq(eex_confidence(ok, 2, 0.0f, EEX_METRIC_MAXPROB, &c, NULL), EEX_ERR_NUMERIC, "T = 0");
    cr_assert_eq(eex_confidence(ok, 2, NAN, EEX_METRIC_MAXPROB, &c, NULL), EEX_ERR_NUMERIC, "T = NaN");
    cr_assert_eq(eex_confidence(ok, 2, 1.0f, (eex_metric)7, &c, NULL), EEX_ERR_ARGUMENT);
}

/* eex_softmax is the softmax eex_confidence scores: its largest probability
 * is the maxprob confidence bit for bit, in place or not. */
Test(confidence, softmax_is_the_one_confidence_uses)
{
    const float z[5] = {1.5f, -0.25f, 3.0f, 0.0f, 2.75f};
    float p[5], q[5], c;
    int cls;
    cr_assert_eq(eex_softmax(z, 5, 1.7f, p), EEX_OK);
    cr_assert_eq(eex_confidence(z, 5, 1.7f, EEX_METRIC_MAXPROB, &c, &cls), EEX_OK);
    cr_assert_eq(cls, 2);
    cr_assert_eq(memcmp(&p[2], &c, sizeof c), 0, "max probability %.9g, confidence %.9g", (double)p[2], (double)c);
    double sum = 0.0;
    for (int i = 0; i < 5; i++)
        sum += p[i];
    cr_assert_float_eq(sum, 1.0, 1e-6);
    memcpy(q, z, sizeof q);
    cr_assert_eq(eex_softmax(q, 5, 1.7f, q), EEX_OK);
    cr_assert_eq(memcmp(p, q, sizeof p), 0, "in place must give the same probabilities");
    const float bad[2] = {0.0f, NAN};
    cr_assert_eq(eex_softmax(bad, 2, 1.0f, p), EEX_ERR_NUMERIC);
    cr_assert_eq(eex_softmax(z, 5, 0.0f, p), EEX_ERR_NUMERIC);
    cr_assert_eq(eex_softmax(NULL, 5, 1.0f, p), EEX_ERR_ARGUMENT);
}
