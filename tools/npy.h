/* Minimal .npy (NumPy format 1.0/2.0) reader and writer for little-endian
 * float32 C-order arrays: what `eex run --input/--output` exchanges with Python. */
#ifndef EEX_NPY_H
#define EEX_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_RANK 8

typedef struct npy_array {
    int rank;
    int64_t shape[NPY_MAX_RANK];
    size_t count;
    float *data;  /* malloc'd; free with npy_free */
} npy_array;

/* Parses a .npy image in memory. Returns 0 on success, or -1 with a message in err. */
int npy_parse(const unsigned char *buf, size_t size, npy_array *out, char *err, size_t errlen);
int npy_load(const char *path, npy_array *out, char *err, size_t errlen);
int npy_save(const char *path, const float *data, const int64_t *shape, int rank, char *err, size_t errlen);
void npy_free(npy_array *a);

#endif
