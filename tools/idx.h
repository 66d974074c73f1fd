/* IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed:
 * unsigned-byte arrays of 1 to 4 dimensions. */
#ifndef EEX_IDX_H
#define EEX_IDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct idx_array {
    int ndim;
    int dims[4];
    size_t count;
    uint8_t *data;  /* malloc'd; free with idx_free */
} idx_array;

/* Parses an uncompressed IDX image in memory (ubyte only). 0, or -1 with err. */
int idx_parse(const uint8_t *buf, size_t size, idx_array *out, char *err, size_t errlen);
/* gzip member -> malloc'd bytes, checking the CRC-32 and length. 0, or -1 with err. */
int idx_gunzip(const uint8_t *buf, size_t size, uint8_t **out, size_t *out_size, char *err, size_t errlen);
/* Reads a file, gunzipping it when it starts with the gzip magic. */
int idx_load(const char *path, idx_array *out, char *err, size_t errlen);
void idx_free(idx_array *a);

#endif
