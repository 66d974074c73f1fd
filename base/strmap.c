#include "strmap.h"

#include <stdint.h>
#include <string.h>

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

int eex_strmap_init(eex_strmap *m, eex_arena *arena, size_t max_items)
{
    size_t cap = 16;
    while (cap < max_items * 2) {
        if (cap > SIZE_MAX / 4)
            return 0;
        cap *= 2;
    }
    m->keys = eex_arena_array(arena, cap, sizeof *m->keys);
    m->vals = eex_arena_array(arena, cap, sizeof *m->vals);
    m->cap = cap;
    m->len = 0;
    return m->keys && m->vals;
}

int eex_strmap_put(eex_strmap *m, const char *key, int val)
{
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0)
            return 0;
        i = (i + 1) & (m->cap - 1);
    }
    if ((m->len + 1) * 2 > m->cap)
        return -1;  /* more keys than init was told: refuse rather than fill */
    m->keys[i] = key;
    m->vals[i] = val;
    m->len++;
    return 1;
}

int eex_strmap_get(const eex_strmap *m, const char *key)
{
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}
