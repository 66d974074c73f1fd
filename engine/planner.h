/* The activation memory planner: places every value of the graph in one
 * arena so that values whose lifetimes overlap never share bytes. */
#ifndef EEX_PLANNER_H
#define EEX_PLANNER_H

#include <stddef.h>
#include <stdint.h>

typedef struct eex_plan_item {
    size_t bytes;
    int first, last;   /* node indices: produced at `first`, last read at `last` (inclusive) */
    size_t offset;     /* out: byte offset in the arena, a multiple of 64 */
} eex_plan_item;

/* Greedy placement, largest first, each at the lowest offset that fits
 * beside the already-placed items whose lifetimes overlap. Returns the arena
 * size, or 0 with *ok = 0 when out of memory. */
size_t eex_plan(eex_plan_item *items, int n, int *ok);

#endif
