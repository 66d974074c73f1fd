/* Exit confidence: temperature-scaled softmax, then max probability or
 * normalised entropy. The exit rule compares it strictly: conf > p_tar. */
#include <math.h>

#include "../base/status.h"
#include "eex.h"

eex_status eex_confidence(const float *logits, int n, float temperature, eex_metric metric, float *confidence,
                          int *cls)
{
    if (!logits || n < 1 || !confidence)
        return eex_fail(EEX_ERR_ARGUMENT, "confidence: no logits");
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return eex_fail(EEX_ERR_NUMERIC, "confidence: temperature %g is not a positive number", (double)temperature);
    int best = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(logits[i]))
            return eex_fail(EEX_ERR_NUMERIC, "confidence: logit %d is %s", i, isnan(logits[i]) ? "NaN" : "infinite");
        if (logits[i] > logits[best])
            best = i;
    }
    /* softmax(z / T) in double, shifted by the max for stability */
    const double mx = (double)logits[best] / temperature;
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] / temperature - mx);
    if (metric == EEX_METRIC_ENTROPY) {
        double h = 0.0;
        for (int i = 0; i < n; i++) {
            const double p = exp((double)logits[i] / temperature - mx) / sum;
            if (p > 0.0)
                h -= p * log(p);
        }
        *confidence = n > 1 ? (float)(1.0 - h / log((double)n)) : 1.0f;
    } else if (metric == EEX_METRIC_MAXPROB) {
        *confidence = (float)(1.0 / sum);
    } else
        return eex_fail(EEX_ERR_ARGUMENT, "confidence: unknown metric %d", (int)metric);
    if (cls)
        *cls = best;
    return EEX_OK;
}
