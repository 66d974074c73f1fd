/* Load-time weight packing: each fast kernel gets its weights once, in the
 * layout it streams best, so no inference re-arranges a weight. */
#ifndef EEX_PACK_H
#define EEX_PACK_H

#include "eex.h"

struct eex_model;
eex_status eex_pack_weights(struct eex_model *m);
/* Marks the depthwise -> pointwise pairs the executor may run as one
 * (eex_node.pw_next); once the node order is final. */
void eex_mark_dw_pw_pairs(struct eex_model *m);

#endif
