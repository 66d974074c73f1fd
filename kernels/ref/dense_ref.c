#include "../kernels.h"

void eex_dense_ref(int n, int k, int m, const float *x, const float *w, const float *bias,
                   const eex_act_params *act, float *y)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            double acc = bias ? bias[j] : 0.0;
            for (int t = 0; t < k; t++)
                acc += (double)x[(int64_t)i * k + t] * w[(int64_t)j * k + t];
            y[(int64_t)i * m + j] = eex_act_apply((float)acc, act);
        }
}
