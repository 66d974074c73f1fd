/* libFuzzer target: the .npy reader. */
#include <stdint.h>

#include "../../tools/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    npy_array a;
    if (npy_parse(data, size, &a, err, sizeof err) == 0)
        npy_free(&a);
    return 0;
}
