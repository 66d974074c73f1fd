#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct eex_arena_block {
    eex_arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

enum { BLOCK_MIN = 64 * 1024 };

void *eex_arena_alloc(eex_arena *arena, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + 15) & ~(size_t)15;
    eex_arena_block *b = arena->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > BLOCK_MIN ? n : BLOCK_MIN;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = arena->head;
        arena->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void *eex_arena_array(eex_arena *arena, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / 2 / size)
        return NULL;
    return eex_arena_alloc(arena, count * size);
}

char *eex_arena_strndup(eex_arena *arena, const char *s, size_t n)
{
    char *d = eex_arena_alloc(arena, n + 1);
    if (d)
        memcpy(d, s, n);
    return d;
}

void eex_arena_free(eex_arena *arena)
{
    eex_arena_block *b = arena->head;
    while (b) {
        eex_arena_block *next = b->next;
        free(b);
        b = next;
    }
    arena->head = NULL;
}
