/* The .eex file reader: parses and validates a whole file (docs/format.md)
 * into plain structs. Nothing here trusts the file: every count, offset, size
 * and name is checked before use, and each failure names the field. */
#ifndef EEX_EEXFILE_H
#define EEX_EEXFILE_H

#include <stddef.h>
#include <stdint.h>

#include "../base/arena.h"
#include "eex.h"

#define EEX_FILE_MAGIC "EEXMODEL"
#define EEX_FILE_VERSION 1u
#define EEX_FILE_HEADER_SIZE 96u
#define EEX_FILE_ALIGN 64u
#define EEX_FILE_MAX_STRING 65535u
#define EEX_FILE_MAX_ARRAY 1048576u

typedef enum eex_vtype {
    EEX_V_I64 = 1,
    EEX_V_F64 = 2,
    EEX_V_STR = 3,
    EEX_V_I64S = 4,
    EEX_V_F64S = 5,
    EEX_V_STRS = 6
} eex_vtype;

typedef struct eex_kv {
    const char *key;
    eex_vtype type;
    uint32_t count;        /* elements for arrays, 1 otherwise */
    int64_t i;
    double f;
    const char *s;
    const int64_t *is;
    const double *fs;
    const char *const *ss;
} eex_kv;

typedef struct eex_kvlist {
    uint32_t count;
    const eex_kv *items;
} eex_kvlist;

enum { EEX_DTYPE_F32 = 1, EEX_DTYPE_F16 = 2 };

typedef struct eex_ftensor {
    const char *name;
    int dtype;             /* EEX_DTYPE_F32 or EEX_DTYPE_F16 */
    int ndim;
    uint64_t dims[EEX_MAX_RANK];
    uint64_t elems;
    uint64_t offset, nbytes;
    const void *data;      /* inside the mapped file; float32 (a float16 tensor's
                              converted copy once the model is open) */
    const uint16_t *half;  /* float16 tensors: the file's values */
} eex_ftensor;

typedef struct eex_finput {
    const char *name;
    int ndim;
    int64_t dims[EEX_MAX_RANK];
} eex_finput;

typedef struct eex_fnode {
    const char *op;
    const char *name;
    int n_in, n_out;
    const char *const *in;  /* "" marks an absent optional input */
    const char *const *out;
    eex_kvlist attrs;
} eex_fnode;

typedef struct eex_file {
    eex_arena arena;       /* owns every string and array below */
    const unsigned char *base;
    size_t size;
    void *map;             /* non-NULL when eex_file_open mapped the file */
    eex_kvlist meta;
    uint32_t n_tensors;
    eex_ftensor *tensors;
    uint32_t n_inputs;
    eex_finput *inputs;
    uint32_t n_outputs;
    const char **outputs;
    uint32_t n_nodes;
    eex_fnode *nodes;
} eex_file;

/* Parses a file image held in memory; buf must outlive f. */
eex_status eex_file_parse(const void *buf, size_t size, eex_file *f);
/* Maps the file read-only and parses it. */
eex_status eex_file_open(const char *path, eex_file *f);
void eex_file_close(eex_file *f);

/* Lookups in a kv list; NULL when the key is absent or has another type. */
const eex_kv *eex_kv_find(const eex_kvlist *list, const char *key, eex_vtype type);
const eex_kv *eex_kv_get(const eex_kvlist *list, const char *key);

#endif
