/* Lossless packing of a tensor payload: the bytes of each element are split
 * into planes (byte b of every element together), and the most significant
 * plane, which holds the sign and exponent and so repeats a handful of
 * values, is entropy-coded with an adaptive binary range coder (an order-0
 * bit-tree model per byte, 11-bit probabilities). The other planes are
 * close to random and go raw. A plane goes raw whenever coding would not
 * make it smaller. Saves about a fifth of an f16 payload and more of an
 * int8 one (docs/protocol.md, "Payload packing").
 *
 * The decoder is written for hostile input: it reads only inside its
 * plane's bytes (past them it reads zeros) and always produces exactly
 * elems bytes per plane. */
#include <string.h>

#include "offload.h"

#define PROB_BITS 11
#define PROB_ONE (1u << PROB_BITS)
#define MOVE 5
#define TOP (1u << 24)

typedef struct enc {
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    uint64_t cache_size;
    uint8_t *out;
    size_t n, cap;
    int overflow;
} enc;

static void put_byte(enc *e, uint8_t b)
{
    if (e->n < e->cap)
        e->out[e->n++] = b;
    else
        e->overflow = 1;
}

static void shift_low(enc *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        uint8_t carry = (uint8_t)(e->low >> 32), temp = e->cache;
        do {
            put_byte(e, (uint8_t)(temp + carry));
            temp = 0xFF;
        } while (--e->cache_size != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->cache_size++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

static void enc_bit(enc *e, uint16_t *p, int bit)
{
    const uint32_t bound = (e->range >> PROB_BITS) * *p;
    if (!bit) {
        e->range = bound;
        *p = (uint16_t)(*p + ((PROB_ONE - *p) >> MOVE));
    } else {
        e->low += bound;
        e->range -= bound;
        *p = (uint16_t)(*p - (*p >> MOVE));
    }
    while (e->range < TOP) {
        e->range <<= 8;
        shift_low(e);
    }
}

typedef struct dec {
    uint32_t range, code;
    const uint8_t *in;
    size_t n, pos;
} dec;

static uint8_t next_byte(dec *d) { return d->pos < d->n ? d->in[d->pos++] : 0; }

static int dec_bit(dec *d, uint16_t *p)
{
    const uint32_t bound = (d->range >> PROB_BITS) * *p;
    int bit;
    if (d->code < bound) {
        d->range = bound;
        *p = (uint16_t)(*p + ((PROB_ONE - *p) >> MOVE));
        bit = 0;
    } else {
        d->code -= bound;
        d->range -= bound;
        *p = (uint16_t)(*p - (*p >> MOVE));
        bit = 1;
    }
    while (d->range < TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | next_byte(d);
    }
    return bit;
}

static void init_probs(uint16_t *p)
{
    for (int i = 0; i < 256; i++)
        p[i] = PROB_ONE / 2;
}

/* Codes plane `b` of the elements into out (at most cap bytes); returns the
 * coded size, or 0 when it would not fit (the caller then sends it raw). */
static size_t code_plane(const uint8_t *raw, size_t elems, size_t size, size_t b, uint8_t *out, size_t cap)
{
    uint16_t probs[256];
    init_probs(probs);
    enc e = {.range = 0xFFFFFFFFu, .cache_size = 1, .out = out, .cap = cap};
    for (size_t i = 0; i < elems && !e.overflow; i++) {
        const unsigned v = raw[i * size + b];
        unsigned m = 1;
        for (int k = 7; k >= 0; k--) {
            const int bit = (v >> k) & 1;
            enc_bit(&e, &probs[m], bit);
            m = (m << 1) | (unsigned)bit;
        }
    }
    for (int i = 0; i < 5; i++)
        shift_low(&e);
    return e.overflow ? 0 : e.n;
}

size_t eexw_pack_bound(size_t elems, size_t size) { return size * (5 + elems); }

size_t eexw_pack(const uint8_t *raw, size_t elems, size_t size, uint8_t *dst)
{
    size_t n = 0;
    for (size_t b = 0; b < size; b++) {
        size_t coded = 0;
        if (b == size - 1 && elems >= 16)  /* the sign/exponent plane */
            coded = code_plane(raw, elems, size, b, dst + n + 5, elems > 8 ? elems - 8 : 0);
        if (coded) {
            dst[n] = 1;
            eexw_put_u32(dst + n + 1, (uint32_t)coded);
            n += 5 + coded;
        } else {
            dst[n++] = 0;
            for (size_t i = 0; i < elems; i++)
                dst[n++] = raw[i * size + b];
        }
    }
    return n;
}

int eexw_unpack(const uint8_t *src, size_t len, size_t elems, size_t size, uint8_t *raw)
{
    size_t pos = 0;
    for (size_t b = 0; b < size; b++) {
        if (pos >= len)
            return -1;
        const uint8_t mode = src[pos++];
        if (mode == 0) {
            if (len - pos < elems)
                return -1;
            for (size_t i = 0; i < elems; i++)
                raw[i * size + b] = src[pos + i];
            pos += elems;
        } else if (mode == 1) {
            if (len - pos < 4)
                return -1;
            const uint32_t n = eexw_u32(src + pos);
            pos += 4;
            if (n < 5 || n > len - pos)
                return -1;
            dec d = {.range = 0xFFFFFFFFu, .in = src + pos, .n = n};
            for (int i = 0; i < 5; i++)
                d.code = (d.code << 8) | next_byte(&d);
            uint16_t probs[256];
            init_probs(probs);
            for (size_t i = 0; i < elems; i++) {
                unsigned m = 1;
                for (int k = 0; k < 8; k++)
                    m = (m << 1) | (unsigned)dec_bit(&d, &probs[m]);
                raw[i * size + b] = (uint8_t)(m - 256);
            }
            pos += n;
        } else
            return -1;
    }
    return pos == len ? 0 : -1;
}
