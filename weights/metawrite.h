/* Writing a copy of an .eex file with some metadata changed (eex calibrate:
 * new temperatures, thresholds). Only META is re-encoded; the tensor table,
 * graph and data are copied byte for byte (tensor offsets are relative to
 * data_off), the header and CRC recomputed. */
#ifndef EEX_METAWRITE_H
#define EEX_METAWRITE_H

#include "eexfile.h"

typedef struct eex_meta_set {
    const char *key;
    eex_vtype type;        /* EEX_V_F64 or EEX_V_F64S */
    double f;
    const double *fs;
    uint32_t count;
} eex_meta_set;

/* Keys in `set` replace those of the same name (or are appended). */
eex_status eex_file_write_meta(const eex_file *f, const eex_meta_set *set, int n_set, const char *path);

#endif
