#include "planner.h"

#include <stdlib.h>

static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

static int by_size_desc(const void *a, const void *b, void *items)
{
    const eex_plan_item *it = items;
    const size_t sa = it[*(const int *)a].bytes, sb = it[*(const int *)b].bytes;
    if (sa != sb)
        return sa < sb ? 1 : -1;
    return *(const int *)a - *(const int *)b;  /* stable: same sizes in graph order */
}

/* insertion sort with a context (qsort_r is not C11); n is a few hundred */
static void sort_indices(int *idx, int n, eex_plan_item *items)
{
    for (int i = 1; i < n; i++) {
        int v = idx[i], j = i - 1;
        while (j >= 0 && by_size_desc(&idx[j], &v, items) > 0) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = v;
    }
}

static int overlaps(const eex_plan_item *a, const eex_plan_item *b)
{
    return a->first <= b->last && b->first <= a->last;
}

size_t eex_plan(eex_plan_item *items, int n, int *ok)
{
    *ok = 1;
    if (n <= 0)
        return 0;
    int *order = malloc(sizeof(int) * (size_t)n);
    int *placed = malloc(sizeof(int) * (size_t)n);
    if (!order || !placed) {
        free(order);
        free(placed);
        *ok = 0;
        return 0;
    }
    for (int i = 0; i < n; i++)
        order[i] = i;
    sort_indices(order, n, items);
    size_t total = 0;
    int n_placed = 0;
    for (int oi = 0; oi < n; oi++) {
        eex_plan_item *it = &items[order[oi]];
        const size_t need = align64(it->bytes);
        /* Try offset 0 and the end of each conflicting item; take the lowest
         * candidate that collides with no conflicting item. */
        size_t best = SIZE_MAX;
        for (int c = -1; c < n_placed; c++) {
            size_t cand = 0;
            if (c >= 0) {
                const eex_plan_item *p = &items[placed[c]];
                if (!overlaps(p, it))
                    continue;
                cand = p->offset + align64(p->bytes);
            }
            if (cand >= best)
                continue;
            int fits = 1;
            for (int k = 0; k < n_placed && fits; k++) {
                const eex_plan_item *p = &items[placed[k]];
                if (overlaps(p, it) && cand < p->offset + align64(p->bytes) && p->offset < cand + need)
                    fits = 0;
            }
            if (fits)
                best = cand;
        }
        it->offset = best;
        if (best + need > total)
            total = best + need;
        placed[n_placed++] = order[oi];
    }
    free(order);
    free(placed);
    return total;
}
