#include "conv_fast.h"

void eex_bias_act(int64_t rows, int n, int ldc, const float *bias, const eex_act_params *act, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        float *row = y + r * ldc;
        if (bias)
            for (int j = 0; j < n; j++)
                row[j] += bias[j];
        if (act->act != EEX_ACT_NONE)
            for (int j = 0; j < n; j++)
                row[j] = eex_act_apply(row[j], act);
    }
}
