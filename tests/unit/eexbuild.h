/* A tiny in-memory .eex writer for the unit tests, independent of the
 * Python writer so that each side checks the other against docs/format.md.
 * It builds one small valid model and can be told to break it in one way. */
#ifndef EEX_TEST_EEXBUILD_H
#define EEX_TEST_EEXBUILD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/crc32.h"

typedef struct tb_buf {
    unsigned char *p;
    size_t n, cap;
} tb_buf;

static inline void tb_put(tb_buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static inline void tb_u8(tb_buf *b, unsigned v) { unsigned char c = (unsigned char)v; tb_put(b, &c, 1); }
static inline void tb_u32(tb_buf *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    tb_put(b, c, 4);
}
static inline void tb_u64(tb_buf *b, uint64_t v)
{
    tb_u32(b, (uint32_t)v);
    tb_u32(b, (uint32_t)(v >> 32));
}
static inline void tb_str(tb_buf *b, const char *s)
{
    tb_u32(b, (uint32_t)strlen(s));
    tb_put(b, s, strlen(s));
}
static inline void tb_f64(tb_buf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    tb_u64(b, v);
}
static inline void tb_ints(tb_buf *b, const char *key, int n, const int64_t *v)
{
    tb_str(b, key);
    tb_u8(b, 4);
    tb_u32(b, (uint32_t)n);
    for (int i = 0; i < n; i++)
        tb_u64(b, (uint64_t)v[i]);
}

/* What to break; all zero builds a valid file. */
typedef struct tb_opts {
    const char *conv_op;        /* op name of the conv node ("conv") */
    int dup_tensor;             /* name the bias like the weight */
    int overflow_dims;          /* weight dims whose product overflows */
    uint64_t bias_offset_add;   /* added to the bias tensor's offset */
    uint64_t bias_nbytes_add;   /* added to the bias tensor's nbytes */
    int dup_meta_key;
    int extra_meta_bytes;       /* junk after the meta kv list */
    int undefined_input;        /* the pool reads a value never produced */
    int half_bias;              /* store the bias as float16 (dtype 2) */
} tb_opts;

enum { TB_IC = 2, TB_OC = 3, TB_H = 5, TB_W = 5, TB_K = 3 };

/* Header field offsets (docs/format.md). */
enum { TB_VERSION = 8, TB_FILE_SIZE = 16, TB_META_OFF = 24, TB_META_SIZE = 32, TB_TENSORS_OFF = 40,
       TB_TENSORS_SIZE = 48, TB_GRAPH_OFF = 56, TB_GRAPH_SIZE = 64, TB_DATA_OFF = 72, TB_DATA_SIZE = 80,
       TB_CRC = 88 };

static inline uint64_t tb_get64(const unsigned char *p, size_t off)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[off + (size_t)i];
    return v;
}
static inline void tb_set64(unsigned char *p, size_t off, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[off + (size_t)i] = (unsigned char)(v >> (8 * i));
}
static inline void tb_set32(unsigned char *p, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[off + (size_t)i] = (unsigned char)(v >> (8 * i));
}
static inline void tb_fix_crc(unsigned char *p, size_t size)
{
    tb_set32(p, TB_CRC, eex_crc32(0, p + 96, size - 96));
}

/* Deterministic weights so tests can compute expected outputs. */
static inline float tb_weight(int i) { return (float)((i * 37 % 17) - 8) / 16.0f; }

/* conv(x[1,2,5,5], w[3,2,3,3], b[3], pads 1, relu) -> globalavgpool -> flatten -> y[1,3] */
static inline unsigned char *tb_build(const tb_opts *o, size_t *size)
{
    tb_buf meta = {0}, tens = {0}, graph = {0}, data = {0};
    /* META */
    tb_u32(&meta, o->dup_meta_key ? 3 : 2);
    tb_str(&meta, "model.name");
    tb_u8(&meta, 3);
    tb_str(&meta, "tiny");
    tb_str(&meta, "labels");
    tb_u8(&meta, 6);
    tb_u32(&meta, 3);
    tb_str(&meta, "a");
    tb_str(&meta, "b");
    tb_str(&meta, "c");
    if (o->dup_meta_key) {
        tb_str(&meta, "model.name");
        tb_u8(&meta, 3);
        tb_str(&meta, "again");
    }
    for (int i = 0; i < o->extra_meta_bytes; i++)
        tb_u8(&meta, 0);
    /* DATA: weight at 0, bias at the next 64-byte boundary */
    const int wn = TB_OC * TB_IC * TB_K * TB_K;
    for (int i = 0; i < wn; i++) {
        float f = tb_weight(i);
        tb_put(&data, &f, 4);
    }
    while (data.n % 64)
        tb_u8(&data, 0);
    const uint64_t bias_off = data.n;
    for (int i = 0; i < TB_OC; i++) {
        float f = 0.25f * (float)(i - 1);
        /* float16 of -0.25, 0, 0.25: sign, exponent 13, no mantissa */
        const uint16_t h = (uint16_t)(i == 1 ? 0 : (i < 1 ? 0x8000u : 0) | 13u << 10);
        if (o->half_bias)
            tb_put(&data, &h, 2);
        else
            tb_put(&data, &f, 4);
    }
    /* TENSORS */
    tb_u32(&tens, 2);
    tb_str(&tens, "w");
    tb_u8(&tens, 1);
    tb_u8(&tens, 4);
    if (o->overflow_dims) {
        tb_u64(&tens, 1ull << 32);
        tb_u64(&tens, 1ull << 32);
        tb_u64(&tens, 1ull << 32);
        tb_u64(&tens, 3);
    } else {
        tb_u64(&tens, TB_OC);
        tb_u64(&tens, TB_IC);
        tb_u64(&tens, TB_K);
        tb_u64(&tens, TB_K);
    }
    tb_u64(&tens, 0);
    tb_u64(&tens, (uint64_t)wn * 4);
    tb_str(&tens, o->dup_tensor ? "w" : "b");
    tb_u8(&tens, o->half_bias ? 2 : 1);
    tb_u8(&tens, 1);
    tb_u64(&tens, TB_OC);
    tb_u64(&tens, bias_off + o->bias_offset_add);
    tb_u64(&tens, TB_OC * (o->half_bias ? 2 : 4) + o->bias_nbytes_add);
    /* GRAPH */
    tb_u32(&graph, 1);
    tb_str(&graph, "x");
    tb_u8(&graph, 4);
    tb_u64(&graph, 1);
    tb_u64(&graph, TB_IC);
    tb_u64(&graph, TB_H);
    tb_u64(&graph, TB_W);
    tb_u32(&graph, 1);
    tb_str(&graph, "y");
    tb_u32(&graph, 3);
    /* conv */
    tb_str(&graph, o->conv_op ? o->conv_op : "conv");
    tb_str(&graph, "conv1");
    tb_u8(&graph, 3);
    tb_str(&graph, "x");
    tb_str(&graph, "w");
    tb_str(&graph, "b");
    tb_u8(&graph, 1);
    tb_str(&graph, "c1");
    tb_u32(&graph, 2);
    const int64_t pads[4] = {1, 1, 1, 1};
    tb_ints(&graph, "pads", 4, pads);
    tb_str(&graph, "act");
    tb_u8(&graph, 3);
    tb_str(&graph, "relu");
    /* pool */
    tb_str(&graph, "globalavgpool");
    tb_str(&graph, "pool");
    tb_u8(&graph, 1);
    tb_str(&graph, o->undefined_input ? "nowhere" : "c1");
    tb_u8(&graph, 1);
    tb_str(&graph, "p");
    tb_u32(&graph, 0);
    /* flatten */
    tb_str(&graph, "flatten");
    tb_str(&graph, "flat");
    tb_u8(&graph, 1);
    tb_str(&graph, "p");
    tb_u8(&graph, 1);
    tb_str(&graph, "y");
    tb_u32(&graph, 0);
    (void)tb_f64;

    /* assemble */
    tb_buf f = {0};
    unsigned char hdr[96] = {0};
    tb_put(&f, hdr, 96);
    const uint64_t meta_off = f.n;
    tb_put(&f, meta.p, meta.n);
    const uint64_t tens_off = f.n;
    tb_put(&f, tens.p, tens.n);
    const uint64_t graph_off = f.n;
    tb_put(&f, graph.p, graph.n);
    while (f.n % 64)
        tb_u8(&f, 0);
    const uint64_t data_off = f.n;
    tb_put(&f, data.p, data.n);
    memcpy(f.p, "EEXMODEL", 8);
    tb_set32(f.p, TB_VERSION, 1);
    tb_set32(f.p, 12, 96);
    tb_set64(f.p, TB_FILE_SIZE, f.n);
    tb_set64(f.p, TB_META_OFF, meta_off);
    tb_set64(f.p, TB_META_SIZE, meta.n);
    tb_set64(f.p, TB_TENSORS_OFF, tens_off);
    tb_set64(f.p, TB_TENSORS_SIZE, tens.n);
    tb_set64(f.p, TB_GRAPH_OFF, graph_off);
    tb_set64(f.p, TB_GRAPH_SIZE, graph.n);
    tb_set64(f.p, TB_DATA_OFF, data_off);
    tb_set64(f.p, TB_DATA_SIZE, data.n);
    tb_fix_crc(f.p, f.n);
    free(meta.p);
    free(tens.p);
    free(graph.p);
    free(data.p);
    *size = f.n;
    return f.p;
}

#endif
