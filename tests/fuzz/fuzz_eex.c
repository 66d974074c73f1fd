/* libFuzzer target: the .eex reader and graph binding on arbitrary bytes.
 * A file that opens is also run once, so binding bugs that only show at
 * execution (shapes, planner) are reached too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eex.h"

/* A few bytes can declare a huge input: the arena is capped as the CLI caps
 * it (--max-arena-mb), tighter, so that a planned arena is refused, not
 * allocated (tests/fuzz/corpus/fuzz_eex/arena-8GB.eex). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    eex_set_arena_limit((size_t)256 << 20, "fuzz_eex");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eex_model *m;
    if (eex_model_open_buffer(data, size, &m) != EEX_OK)
        return 0;
    eex_session *s;
    if (eex_session_new(m, NULL, &s) == EEX_OK) {
        int64_t d[EEX_MAX_RANK];
        const int rank = eex_model_input_shape(m, 0, d);
        size_t n = 1;
        for (int i = 0; i < rank; i++)
            n *= (size_t)d[i];
        if (n <= (1u << 22)) {
            float *x = calloc(n, sizeof(float));
            int ok = x != NULL;
            for (int i = 0; ok && i < eex_model_input_count(m); i++) {
                const int r = eex_model_input_shape(m, i, d);
                size_t k = 1;
                for (int j = 0; j < r; j++)
                    k *= (size_t)d[j];
                ok = k <= n && eex_session_set_input(s, i, x, d, r) == EEX_OK;
            }
            if (ok)
                eex_session_run(s);
            free(x);
        }
        eex_session_free(s);
    }
    eex_model_close(m);
    return 0;
}
