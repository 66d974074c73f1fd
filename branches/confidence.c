/* Exit confidence: temperature-scaled softmax (kernels/ref/eltwise_ref.c's
 * eex_softmax_sum, the one softmax), then max probability or normalised
 * entropy. The exit rule compares it strictly: conf > p_tar. */
#include <math.h>

#include "../base/status.h"
#include "../kernels/kernels.h"
#include "eex.h"

/* The checks eex_confidence and eex_softmax share; writes the argmax class. */
static eex_status check_logits(const char *what, const float *logits, int n, float temperature, const void *out,
                               int *best)
{
    if (!logits || n < 1 || !out)
        return eex_fail(EEX_ERR_ARGUMENT, "%s: no logits", what);
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return eex_fail(EEX_ERR_NUMERIC, "%s: temperature %g is not a positive number", what, (double)temperature);
    *best = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(logits[i]))
            return eex_fail(EEX_ERR_NUMERIC, "%s: logit %d is %s", what, i, isnan(logits[i]) ? "NaN" : "infinite");
        if (logits[i] > logits[*best])
            *best = i;
    }
    return EEX_OK;
}

eex_status eex_confidence(const float *logits, int n, float temperature, eex_metric metric, float *confidence,
                          int *cls)
{
    int best;
    const eex_status st = check_logits("confidence", logits, n, temperature, confidence, &best);
    if (st)
        return st;
    float mx;
    const double sum = eex_softmax_sum(logits, n, temperature, &mx);
    if (metric == EEX_METRIC_ENTROPY) {
        double h = 0.0;
        for (int i = 0; i < n; i++) {
            const double p = eex_softmax_term(logits[i], mx, temperature) / sum;
            if (p > 0.0)
                h -= p * log(p);
        }
        *confidence = n > 1 ? (float)(1.0 - h / log((double)n)) : 1.0f;
    } else if (metric == EEX_METRIC_MAXPROB) {
        *confidence = (float)(1.0 / sum);  /* the largest term is exp(0) = 1 */
    } else
        return eex_fail(EEX_ERR_ARGUMENT, "confidence: unknown metric %d", (int)metric);
    if (cls)
        *cls = best;
    return EEX_OK;
}

eex_status eex_softmax(const float *logits, int n, float temperature, float *probs)
{
    int best;
    const eex_status st = check_logits("softmax", logits, n, temperature, probs, &best);
    if (st)
        return st;
    eex_softmax_row(logits, n, temperature, probs);
    return EEX_OK;
}
