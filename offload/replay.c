/* The server's memory of recent request tags: refuses a tagged INFER frame
 * seen before on any connection, within a window of the last N such frames
 * (docs/protocol.md, "Replays"). A tag is an HMAC output, so its first bytes
 * are already a uniform hash; 16 of its 32 bytes are kept (a collision
 * between two honest requests needs about 2^64 of them). A ring holds the
 * entries in arrival order; buckets chain them for lookup, and the oldest
 * entry is unlinked when the ring overwrites it. Not thread-safe: the
 * server serialises calls with its own lock. */
#include <stdlib.h>
#include <string.h>

#include "offload.h"

struct eexw_replay {
    uint32_t n, next, used;        /* capacity, next ring slot, slots filled */
    uint32_t mask;                 /* buckets - 1 (a power of two >= 2n) */
    uint8_t (*tag)[EEXW_REPLAY_BYTES];
    int32_t *link;                 /* per slot: next slot in its bucket, -1 ends */
    int32_t *bucket;               /* per bucket: first slot, -1 empty */
};

static uint32_t bucket_of(const eexw_replay *r, const uint8_t *tag)
{
    return eexw_u32(tag) & r->mask;
}

eexw_replay *eexw_replay_new(uint32_t n)
{
    if (n < 1 || n > EEXW_REPLAY_MAX)
        return NULL;
    eexw_replay *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    uint32_t b = 2;
    while (b < 2 * n)
        b *= 2;
    r->n = n, r->mask = b - 1;
    r->tag = malloc((size_t)n * sizeof *r->tag);
    r->link = malloc((size_t)n * sizeof *r->link);
    r->bucket = malloc((size_t)b * sizeof *r->bucket);
    if (!r->tag || !r->link || !r->bucket) {
        eexw_replay_free(r);
        return NULL;
    }
    memset(r->bucket, 0xff, (size_t)b * sizeof *r->bucket);
    return r;
}

void eexw_replay_free(eexw_replay *r)
{
    if (!r)
        return;
    free(r->tag), free(r->link), free(r->bucket);
    free(r);
}

int eexw_replay_seen(eexw_replay *r, const uint8_t tag[EEXW_TAG])
{
    const uint32_t b = bucket_of(r, tag);
    for (int32_t i = r->bucket[b]; i >= 0; i = r->link[i])
        if (!memcmp(r->tag[i], tag, EEXW_REPLAY_BYTES))
            return 1;
    const uint32_t slot = r->next;
    if (r->used == r->n) {  /* unlink the oldest entry, which this slot holds */
        int32_t *p = &r->bucket[bucket_of(r, r->tag[slot])];
        while (*p >= 0 && *p != (int32_t)slot)
            p = &r->link[*p];
        if (*p == (int32_t)slot)
            *p = r->link[slot];
    } else
        r->used++;
    memcpy(r->tag[slot], tag, EEXW_REPLAY_BYTES);
    r->link[slot] = r->bucket[b];
    r->bucket[b] = (int32_t)slot;
    r->next = slot + 1 == r->n ? 0 : slot + 1;
    return 0;
}
