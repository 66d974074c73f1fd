#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

/* The header is a Python dict literal: {'descr': '<f4', 'fortran_order':
 * False, 'shape': (2, 3), }. It is read as one: keys are quoted strings at
 * the top level, values a quoted string, True/False or a tuple of integers;
 * anything else is refused. So 'descr' inside another value is never taken
 * for the key. Fills the three values (pointers into hdr, NUL-terminated in
 * place); 0, or -1 with a message. */
typedef struct npy_dict {
    char *descr, *fortran, *shape;
} npy_dict;

static char *skip_ws(char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static int parse_dict(char *p, npy_dict *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    p = skip_ws(p);
    if (*p++ != '{')
        return fail(err, errlen, "npy: header is not a dict");
    for (int n = 0; n < 64; n++) {
        p = skip_ws(p);
        if (*p == '}')
            break;
        const char q = *p;
        if (q != '\'' && q != '"')
            return fail(err, errlen, "npy: header dict key is not a quoted string");
        char *key = ++p;
        while (*p && *p != q)
            p++;
        if (!*p)
            return fail(err, errlen, "npy: header dict key is not closed");
        *p++ = '\0';
        p = skip_ws(p);
        if (*p++ != ':')
            return fail(err, errlen, "npy: header dict key without ':'");
        p = skip_ws(p);
        char *val = p;
        if (*p == '\'' || *p == '"') {
            const char vq = *p++;
            val = p;
            while (*p && *p != vq)
                p++;
            if (!*p)
                return fail(err, errlen, "npy: header dict value is not closed");
            *p++ = '\0';
        } else if (*p == '(') {
            p++;
            while (*p && *p != ')' && *p != '(')
                p++;
            if (*p != ')')
                return fail(err, errlen, "npy: header shape is not closed");
            p++;
        } else if (!strncmp(p, "True", 4) || !strncmp(p, "False", 5))
            p += *p == 'T' ? 4 : 5;
        else
            return fail(err, errlen, "npy: header dict value is not a string, a bool or a tuple");
        const char end = *p;
        *p = '\0';
        char **slot = !strcmp(key, "descr") ? &d->descr : !strcmp(key, "fortran_order") ? &d->fortran
                      : !strcmp(key, "shape") ? &d->shape : NULL;
        if (slot && *slot)
            return fail(err, errlen, "npy: header dict repeats a key");
        if (slot)
            *slot = val;
        *p = end;
        p = skip_ws(p);
        if (*p == ',')
            p++;
        else if (*p != '}')
            return fail(err, errlen, "npy: header dict entries must be separated by ','");
    }
    if (!d->descr || !d->fortran || !d->shape)
        return fail(err, errlen, "npy: header lacks 'descr', 'fortran_order' or 'shape'");
    return 0;
}

int npy_parse(const unsigned char *buf, size_t size, npy_array *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return fail(err, errlen, "npy: not a .npy file (bad magic)");
    const int major = buf[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12)
            return fail(err, errlen, "npy: truncated header");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hstart = 12;
    } else
        return fail(err, errlen, "npy: unsupported format version");
    if (hlen > 65536 || hlen > size - hstart)
        return fail(err, errlen, "npy: header length exceeds the file");
    char hdr[65537];
    memcpy(hdr, buf + hstart, hlen);
    hdr[hlen] = '\0';
    if (memchr(hdr, 0, hlen))
        return fail(err, errlen, "npy: NUL byte in header");
    npy_dict d;
    if (parse_dict(hdr, &d, err, errlen))
        return -1;
    if (strcmp(d.descr, "<f4") != 0 && strcmp(d.descr, "=f4") != 0)
        return fail(err, errlen, "npy: only little-endian float32 ('<f4') arrays are supported");
    if (strncmp(d.fortran, "False", 5) != 0)
        return fail(err, errlen, "npy: only C-order arrays are supported");
    const char *sh = d.shape;
    if (*sh != '(')
        return fail(err, errlen, "npy: header has no shape");
    sh++;
    size_t count = 1;
    int rank = 0;
    for (;;) {
        while (*sh == ' ' || *sh == ',')
            sh++;
        if (*sh == ')')
            break;
        if (*sh < '0' || *sh > '9')
            return fail(err, errlen, "npy: malformed shape");
        if (rank == NPY_MAX_RANK)
            return fail(err, errlen, "npy: more than 8 dimensions");
        errno = 0;
        char *end;
        unsigned long long d = strtoull(sh, &end, 10);
        if (errno || d > (1ull << 40))
            return fail(err, errlen, "npy: dimension too large");
        if (d && count > SIZE_MAX / 4 / d)
            return fail(err, errlen, "npy: shape product overflows");
        count *= (size_t)d;
        out->shape[rank++] = (int64_t)d;
        sh = end;
    }
    const size_t data_off = hstart + hlen;
    if (count > cli_lim.input_bytes / 4) {
        snprintf(err, errlen, "npy: the array is %.0f MB; the limit is %.0f MB (%s)", (double)count * 4 / (1 << 20),
                 cli_mb(cli_lim.input_bytes), CLI_INPUT_FLAG);
        return -1;
    }
    if (count > (size - data_off) / 4)
        return fail(err, errlen, "npy: file is shorter than its shape says");
    out->rank = rank;
    out->count = count;
    out->data = malloc(count ? count * 4 : 4);
    if (!out->data)
        return fail(err, errlen, "npy: out of memory");
    memcpy(out->data, buf + data_off, count * 4);
    return 0;
}

int npy_load(const char *path, npy_array *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t size;
    /* the header (at most 64 KB) and the data: the data's budget decides */
    if (cli_read_file(path, ".npy array", cli_lim.input_bytes + 65536 + 12, CLI_INPUT_FLAG, &buf, &size, err, errlen))
        return -1;
    int rc = npy_parse(buf, size, out, err, errlen);
    free(buf);
    return rc;
}

int npy_save(const char *path, const float *data, const int64_t *shape, int rank, char *err, size_t errlen)
{
    char dict[256], shp[160] = "";
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        char d[32];
        snprintf(d, sizeof d, "%lld%s", (long long)shape[i], rank == 1 ? "," : (i + 1 < rank ? ", " : ""));
        strncat(shp, d, sizeof shp - strlen(shp) - 1);
        count *= (size_t)shape[i];
    }
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shp);
    /* pad so that magic + 2 + 2 + header is a multiple of 64, ending in \n */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        return -1;
    }
    const size_t hlen = (size_t)n + pad + 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xFF),
                             (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(data, 4, count, f) == count;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        snprintf(err, errlen, "error writing '%s'", path);
        return -1;
    }
    return 0;
}

void npy_free(npy_array *a)
{
    free(a->data);
    a->data = NULL;
}
