/* `eex bench --exits`: the latency to each exit of an early-exit model. */
#ifndef EEX_BENCH_EXITS_H
#define EEX_BENCH_EXITS_H

#include "eex.h"

/* Sets every input of the session to fixed pseudo-random values (batch). */
eex_status bench_random_inputs(const eex_model *m, eex_session *s, int batch);

int bench_exits(const char *model_path, const eex_model *m, eex_session *s, int expert, int runs, int warmup,
                int threads, int json);

#endif
