/* The exit rule: which classifier answers an image. One definition for every
 * path that answers: the local run (engine/ee_run.c), the cloud's resume
 * (offload/resume.c), the edge client combining its exits with the cloud's
 * classifiers (offload/client.c), `eex eval` deciding recorded confidences
 * (tools/eval.c, tools/eval_adaptive.c); train/eval_torch.py mirrors it.
 *
 * Classifiers are in network order (side exits, then the final classifier).
 * The first whose confidence is strictly above its threshold answers; when none
 * is, the most confident answers, the earliest on a tie (the paper's rule: a
 * final answer under p_tar yields to a more confident exit). A NaN confidence
 * never passes a threshold (the engine refuses NaN logits before it gets here). */
#include "eex.h"

int eex_exit_passes(float confidence, float threshold)
{
    return confidence > threshold;
}

int eex_exit_choose(const float *confidences, const float *thresholds, int n, int *passed)
{
    if (passed)
        *passed = 0;
    if (!confidences || n < 1)
        return -1;
    for (int k = 0; thresholds && k < n; k++)
        if (eex_exit_passes(confidences[k], thresholds[k])) {
            if (passed)
                *passed = 1;
            return k;
        }
    int best = 0;
    for (int k = 1; k < n; k++)
        if (confidences[k] > confidences[best])
            best = k;
    return best;
}
