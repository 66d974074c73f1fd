#include "metawrite.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/status.h"
#include "../base/crc32.h"

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_u8(buf *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void put_u32(buf *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(b, c, 4);
}
static void put_u64(buf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_f64(buf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put_u64(b, v);
}
static void put_str(buf *b, const char *s)
{
    const size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

static void put_kv(buf *b, const eex_kv *kv)
{
    put_str(b, kv->key);
    put_u8(b, kv->type);
    switch (kv->type) {
    case EEX_V_I64: put_u64(b, (uint64_t)kv->i); break;
    case EEX_V_F64: put_f64(b, kv->f); break;
    case EEX_V_STR: put_str(b, kv->s); break;
    case EEX_V_I64S:
        put_u32(b, kv->count);
        for (uint32_t i = 0; i < kv->count; i++)
            put_u64(b, (uint64_t)kv->is[i]);
        break;
    case EEX_V_F64S:
        put_u32(b, kv->count);
        for (uint32_t i = 0; i < kv->count; i++)
            put_f64(b, kv->fs[i]);
        break;
    case EEX_V_STRS:
        put_u32(b, kv->count);
        for (uint32_t i = 0; i < kv->count; i++)
            put_str(b, kv->ss[i]);
        break;
    }
}

static void put_set(buf *b, const eex_meta_set *s)
{
    eex_kv kv = {.key = s->key, .type = s->type, .f = s->f, .fs = s->fs, .count = s->count};
    put_kv(b, &kv);
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

eex_status eex_file_write_meta(const eex_file *f, const eex_meta_set *set, int n_set, const char *path)
{
    if (!f || !path || (n_set && !set))
        return eex_fail(EEX_ERR_ARGUMENT, "eex_file_write_meta: NULL argument");
    for (int i = 0; i < n_set; i++)
        if (set[i].type != EEX_V_F64 && set[i].type != EEX_V_F64S)
            return eex_fail(EEX_ERR_ARGUMENT, "eex_file_write_meta: '%s' must be f64 or f64 array", set[i].key);
    const unsigned char *base = f->base;
    const uint64_t t_off = le64(base + 40), t_size = le64(base + 48), g_off = le64(base + 56), g_size = le64(base + 64),
                   d_off = le64(base + 72), d_size = le64(base + 80);
    buf b = {0};
    unsigned char header[EEX_FILE_HEADER_SIZE] = {0};
    put(&b, header, sizeof header);
    /* META: the file's keys in order, replaced where set names them, then the new ones */
    uint32_t count = f->meta.count;
    for (int i = 0; i < n_set; i++)
        count += !eex_kv_get(&f->meta, set[i].key);
    const uint64_t meta_off = b.n;
    put_u32(&b, count);
    for (uint32_t k = 0; k < f->meta.count; k++) {
        const eex_kv *kv = &f->meta.items[k];
        int j = 0;
        while (j < n_set && strcmp(set[j].key, kv->key))
            j++;
        if (j < n_set)
            put_set(&b, &set[j]);
        else
            put_kv(&b, kv);
    }
    for (int i = 0; i < n_set; i++)
        if (!eex_kv_get(&f->meta, set[i].key))
            put_set(&b, &set[i]);
    const uint64_t meta_size = b.n - meta_off, new_t_off = b.n;
    put(&b, base + t_off, (size_t)t_size);
    const uint64_t new_g_off = b.n;
    put(&b, base + g_off, (size_t)g_size);
    while (b.n % EEX_FILE_ALIGN)
        put_u8(&b, 0);
    const uint64_t new_d_off = b.n;
    put(&b, base + d_off, (size_t)d_size);
    if (b.oom) {
        free(b.p);
        return eex_fail(EEX_ERR_NOMEM, "write: out of memory");
    }
    unsigned char *h = b.p;
    memcpy(h, base, 16);  /* magic, version, header_size */
    const uint64_t fields[9] = {b.n, meta_off, meta_size, new_t_off, t_size, new_g_off, g_size, new_d_off, d_size};
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < 8; j++)
            h[16 + 8 * i + j] = (unsigned char)(fields[i] >> (8 * j));
    const uint32_t crc = eex_crc32(0, b.p + EEX_FILE_HEADER_SIZE, b.n - EEX_FILE_HEADER_SIZE);
    for (int j = 0; j < 4; j++)
        h[88 + j] = (unsigned char)(crc >> (8 * j)), h[92 + j] = 0;
    FILE *out = fopen(path, "wb");
    eex_status st = EEX_OK;
    if (!out)
        st = eex_fail(EEX_ERR_IO, "write: cannot open '%s': %s", path, strerror(errno));
    else {
        const size_t w = fwrite(b.p, 1, b.n, out);
        if (fclose(out) != 0 || w != b.n)
            st = eex_fail(EEX_ERR_IO, "write: error writing '%s'", path);
    }
    free(b.p);
    return st;
}
