/* A bump allocator for objects that live and die together (a parsed file,
 * a bound graph). One free releases everything, so error paths cannot leak. */
#ifndef EEX_ARENA_H
#define EEX_ARENA_H

#include <stddef.h>

typedef struct eex_arena_block eex_arena_block;
typedef struct eex_arena {
    eex_arena_block *head;
} eex_arena;

/* Zeroed, 16-byte aligned memory, or NULL when out of memory or n is absurd. */
void *eex_arena_alloc(eex_arena *arena, size_t n);
/* Like calloc: checks count * size for overflow. */
void *eex_arena_array(eex_arena *arena, size_t count, size_t size);
char *eex_arena_strndup(eex_arena *arena, const char *s, size_t n);
void eex_arena_free(eex_arena *arena);

#endif
