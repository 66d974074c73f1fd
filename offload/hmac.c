/* HMAC-SHA256 (RFC 2104, FIPS 198-1) over the SHA-256 of sha256.c: the tag
 * that authenticates every frame when edge and cloud share a key
 * (docs/protocol.md, "Authentication"). The key's two padded blocks are
 * hashed once, at key set-up, so a tag costs the message's blocks plus two.
 * tests/offload/test_offload.c checks the RFC 4231 vectors; the loopback
 * tests check frames against Python's hmac module. */
#include <string.h>

#include "offload.h"

void eexw_key_init(eexw_key *k, const void *key, size_t len)
{
    uint8_t block[64] = {0}, pad[64];
    if (len > 64)  /* longer keys are hashed first (RFC 2104) */
        eex_sha256(key, len, block);
    else if (len)
        memcpy(block, key, len);
    for (int i = 0; i < 64; i++)
        pad[i] = block[i] ^ 0x36;
    eex_sha256_init(&k->inner);
    eex_sha256_update(&k->inner, pad, 64);
    for (int i = 0; i < 64; i++)
        pad[i] = block[i] ^ 0x5c;
    eex_sha256_init(&k->outer);
    eex_sha256_update(&k->outer, pad, 64);
    memset(block, 0, sizeof block);
    memset(pad, 0, sizeof pad);
}

void eexw_hmac(const eexw_key *k, const void *msg, size_t len, uint8_t tag[EEXW_TAG])
{
    eexw_hmac2(k, msg, len, NULL, 0, tag);
}

void eexw_hmac2(const eexw_key *k, const void *msg, size_t len, const void *more, size_t more_len,
                uint8_t tag[EEXW_TAG])
{
    eex_sha256_ctx c = k->inner;
    uint8_t inner[EEX_DIGEST_BYTES];
    eex_sha256_update(&c, msg, len);
    if (more_len)
        eex_sha256_update(&c, more, more_len);
    eex_sha256_final(&c, inner);
    c = k->outer;
    eex_sha256_update(&c, inner, sizeof inner);
    eex_sha256_final(&c, tag);
}

int eexw_tag_equal(const uint8_t *a, const uint8_t *b)
{
    /* constant time: the position of the first wrong byte must not show */
    volatile uint8_t d = 0;
    for (int i = 0; i < EEXW_TAG; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}
