#include "split.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* DIR/<stem>-<kind>-idxN-ubyte, with or without .gz */
static int load_idx(const char *cmd, const char *dir, const char *stem, const char *kind, idx_array *a)
{
    char path[4096], err[1024];
    const char *suffix = !strcmp(kind, "images") ? "idx3-ubyte" : "idx1-ubyte";
    snprintf(path, sizeof path, "%s/%s-%s-%s", dir, stem, kind, suffix);
    if (access(path, F_OK) != 0) {
        snprintf(path, sizeof path, "%s/%s-%s-%s.gz", dir, stem, kind, suffix);
        if (access(path, F_OK) != 0) {
            /* The one dataset whose package we know: say how to install it. */
            const int fmnist = strstr(dir, "fashion-mnist") != NULL;
            return cli_error(cmd, "%s/%s-%s-%s[.gz]: no such file%s", dir, stem, kind, suffix,
                             fmnist ? " (Fashion-MNIST is Debian's dataset-fashion-mnist: "
                                      "make deps, or apt-get install dataset-fashion-mnist)"
                                    : "");
        }
    }
    if (idx_load(path, a, err, sizeof err))
        return cli_error(cmd, "%s: %s", path, err);
    return 0;
}

/* Reads strictly increasing indices below n ('#' lines are comments). */
static int read_index(const char *cmd, const char *path, long n, long **out, long *count)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cli_error(cmd, "--val-index: cannot open '%s': %s", path, strerror(errno));
    char line[256];
    long cap = 0, m = 0, lineno = 0;
    long *v = NULL;
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *end;
        errno = 0;
        const long x = strtol(line, &end, 10);
        if (end == line || (*end && *end != '\n') || errno || x < 0 || x >= n || (m && x <= v[m - 1])) {
            rc = cli_error(cmd, "%s:%ld: expected an image index below %ld, above the previous one", path, lineno, n);
            break;
        }
        if (m == cap) {
            cap = cap ? cap * 2 : 4096;
            long *nv = realloc(v, sizeof *v * (size_t)cap);
            if (!nv) {
                rc = cli_error(cmd, "out of memory");
                break;
            }
            v = nv;
        }
        v[m++] = x;
    }
    fclose(f);
    if (!rc && !m)
        rc = cli_error(cmd, "%s: no indices", path);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v, *count = m;
    return 0;
}

/* Keeps rows idx[0..m) of a (first dimension). */
static int select_rows(idx_array *a, const long *idx, long m)
{
    const size_t row = a->count / (size_t)a->dims[0];
    uint8_t *d = malloc(row * (size_t)m);
    if (!d)
        return -1;
    for (long i = 0; i < m; i++)
        memcpy(d + row * (size_t)i, a->data + row * (size_t)idx[i], row);
    free(a->data);
    a->data = d;
    a->dims[0] = (int)m;
    a->count = row * (size_t)m;
    return 0;
}

int split_load(const char *cmd, const char *dir, const char *split, const char *val_index, idx_array *images,
               idx_array *labels)
{
    const int val = !strcmp(split, "val");
    const char *stem = !strcmp(split, "test") ? "t10k" : "train";
    memset(images, 0, sizeof *images);
    if (labels)
        memset(labels, 0, sizeof *labels);
    if (val && !val_index)
        return cli_usage(cmd, "--split val needs --val-index FILE (models/fmnist-val-index.txt for Fashion-MNIST)");
    if (load_idx(cmd, dir, stem, "images", images))
        return CLI_FAIL;
    if (labels && load_idx(cmd, dir, stem, "labels", labels)) {
        idx_free(images);
        return CLI_FAIL;
    }
    if (images->ndim != 3 || (labels && (labels->ndim != 1 || labels->dims[0] != images->dims[0]))) {
        idx_free(images);
        if (labels)
            idx_free(labels);
        return cli_error(cmd, "dataset: expected N images of HxW%s", labels ? " and N labels" : "");
    }
    if (!val)
        return 0;
    long *idx, m;
    int rc = read_index(cmd, val_index, images->dims[0], &idx, &m);
    if (!rc && (select_rows(images, idx, m) || (labels && select_rows(labels, idx, m))))
        rc = cli_error(cmd, "out of memory");
    if (!rc)
        free(idx);
    if (rc) {
        idx_free(images);
        if (labels)
            idx_free(labels);
    }
    return rc;
}
