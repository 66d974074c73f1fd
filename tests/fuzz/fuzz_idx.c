/* libFuzzer target: IDX parsing and the gzip wrapper around it. */
#include <stdint.h>
#include <stdlib.h>

#include "../../tools/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    idx_array a;
    if (idx_parse(data, size, &a, err, sizeof err) == 0)
        idx_free(&a);
    uint8_t *raw;
    size_t n;
    if (idx_gunzip(data, size, &raw, &n, err, sizeof err) == 0) {
        if (idx_parse(raw, n, &a, err, sizeof err) == 0)
            idx_free(&a);
        free(raw);
    }
    return 0;
}
