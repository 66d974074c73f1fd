/* A string -> int map (open addressing) allocated in an arena; the keys are
 * borrowed, not copied. Used to find duplicate names and to resolve names. */
#ifndef EEX_STRMAP_H
#define EEX_STRMAP_H

#include "arena.h"

typedef struct eex_strmap {
    const char **keys;
    int *vals;
    size_t cap;  /* a power of two */
    size_t len;
} eex_strmap;

/* Sized for up to `max_items` keys; returns 0 when out of memory. */
int eex_strmap_init(eex_strmap *m, eex_arena *arena, size_t max_items);
/* Returns 1 if inserted, 0 if the key was already present (value unchanged),
 * -1 if the map already holds the max_items it was sized for. */
int eex_strmap_put(eex_strmap *m, const char *key, int val);
/* The value, or -1 when absent. */
int eex_strmap_get(const eex_strmap *m, const char *key);

#endif
