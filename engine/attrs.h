/* Typed, checked access to a node's attributes. Every getter names the node
 * and attribute in its error; eex_attrs_only rejects keys an op does not know,
 * so a file cannot carry an attribute that is silently ignored. */
#ifndef EEX_ATTRS_H
#define EEX_ATTRS_H

#include "../weights/eexfile.h"
#include "eex.h"

/* Fails unless every attribute key is in the NULL-terminated `allowed` list. */
eex_status eex_attrs_only(const eex_fnode *node, const char *const *allowed);
/* `n` ints into out; absent -> defaults (may be NULL when required). */
eex_status eex_attr_ints(const eex_fnode *node, const char *key, int n, const int *defaults, int *out);
eex_status eex_attr_int(const eex_fnode *node, const char *key, int def, int *out);
eex_status eex_attr_float(const eex_fnode *node, const char *key, double def, float *out);
/* String; absent -> def. */
eex_status eex_attr_str(const eex_fnode *node, const char *key, const char *def, const char **out);

#endif
