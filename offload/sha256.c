/* SHA-256 (FIPS 180-4), the model digest of the wire protocol: edge and cloud
 * must run byte-identical .eex files, and a cryptographic hash makes an
 * accidental match of two different files impossible in practice (a CRC-32
 * would collide among a few tens of thousands of files). Written from the
 * standard; tests/offload/test_offload.c checks the published vectors.
 * Incremental (init/update/final) for the HMAC of the frames (hmac.c). */
#include <string.h>

#include "../engine/session.h"
#include "../base/status.h"
#include "offload.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

/* One 64-byte block into the state h[8]. */
static void compress(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        const uint32_t t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void eex_sha256_init(eex_sha256_ctx *c)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof c->h);
    c->len = 0;
    c->n = 0;
}

void eex_sha256_update(eex_sha256_ctx *c, const void *data, size_t size)
{
    const unsigned char *p = data;
    c->len += size;
    if (c->n) {  /* fill the pending block first */
        const size_t k = 64 - c->n < size ? 64 - c->n : size;
        memcpy(c->buf + c->n, p, k);
        c->n += k, p += k, size -= k;
        if (c->n < 64)
            return;
        compress(c->h, c->buf);
        c->n = 0;
    }
    for (; size >= 64; p += 64, size -= 64)
        compress(c->h, p);
    memcpy(c->buf, p, size);
    c->n = size;
}

void eex_sha256_final(eex_sha256_ctx *c, uint8_t digest[EEX_DIGEST_BYTES])
{
    /* the tail, 0x80, zeros, and the bit length in the last 8 bytes */
    unsigned char last[128] = {0};
    const size_t n = c->n;
    memcpy(last, c->buf, n);
    last[n] = 0x80;
    const size_t blocks = n + 9 <= 64 ? 1 : 2;
    const uint64_t bits = c->len * 8u;
    for (int i = 0; i < 8; i++)
        last[blocks * 64 - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t b = 0; b < blocks; b++)
        compress(c->h, last + 64 * b);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(c->h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void eex_sha256(const void *data, size_t size, uint8_t digest[EEX_DIGEST_BYTES])
{
    eex_sha256_ctx c;
    eex_sha256_init(&c);
    eex_sha256_update(&c, data, size);
    eex_sha256_final(&c, digest);
}

eex_status eex_model_digest(const eex_model *m, uint8_t digest[EEX_DIGEST_BYTES])
{
    if (!m || !digest)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_model_digest: NULL argument");
    eex_sha256(m->file.base, m->file.size, digest);
    return EEX_OK;
}
