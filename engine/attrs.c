#include "attrs.h"

#include <math.h>
#include <string.h>

#include "../base/status.h"

eex_status eex_attrs_only(const eex_fnode *node, const char *const *allowed)
{
    for (uint32_t i = 0; i < node->attrs.count; i++) {
        const char *key = node->attrs.items[i].key;
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok)
            return eex_fail(EEX_ERR_FORMAT, "graph: node '%s' (%s) has unknown attribute '%s'",
                            node->name, node->op, key);
    }
    return EEX_OK;
}

eex_status eex_attr_ints(const eex_fnode *node, const char *key, int n, const int *defaults, int *out)
{
    const eex_kv *kv = eex_kv_get(&node->attrs, key);
    if (!kv) {
        if (!defaults)
            return eex_fail(EEX_ERR_FORMAT, "graph: node '%s' (%s) lacks attribute '%s'", node->name,
                            node->op, key);
        memcpy(out, defaults, sizeof(int) * (size_t)n);
        return EEX_OK;
    }
    if (kv->type != EEX_V_I64S || kv->count != (uint32_t)n)
        return eex_fail(EEX_ERR_FORMAT, "graph: node '%s' attribute '%s' must be %d integers",
                        node->name, key, n);
    for (int i = 0; i < n; i++) {
        if (kv->is[i] < 0 || kv->is[i] > 65536)
            return eex_fail(EEX_ERR_FORMAT, "graph: node '%s' attribute '%s'[%d] = %lld is out of range",
                            node->name, key, i, (long long)kv->is[i]);
        out[i] = (int)kv->is[i];
    }
    return EEX_OK;
}

eex_status eex_attr_int(const eex_fnode *node, const char *key, int def, int *out)
{
    const eex_kv *kv = eex_kv_get(&node->attrs, key);
    if (!kv) {
        *out = def;
        return EEX_OK;
    }
    if (kv->type != EEX_V_I64 || kv->i < -65536 || kv->i > 65536)
        return eex_fail(EEX_ERR_FORMAT, "graph: node '%s' attribute '%s' must be a small integer",
                        node->name, key);
    *out = (int)kv->i;
    return EEX_OK;
}

eex_status eex_attr_float(const eex_fnode *node, const char *key, double def, float *out)
{
    const eex_kv *kv = eex_kv_get(&node->attrs, key);
    double v = def;
    if (kv) {
        if (kv->type == EEX_V_F64)
            v = kv->f;
        else if (kv->type == EEX_V_I64)
            v = (double)kv->i;
        else
            return eex_fail(EEX_ERR_FORMAT, "graph: node '%s' attribute '%s' must be a number",
                            node->name, key);
    }
    if (isnan(v))
        return eex_fail(EEX_ERR_NUMERIC, "graph: node '%s' attribute '%s' is NaN", node->name, key);
    *out = (float)v;
    return EEX_OK;
}

eex_status eex_attr_str(const eex_fnode *node, const char *key, const char *def, const char **out)
{
    const eex_kv *kv = eex_kv_get(&node->attrs, key);
    if (!kv) {
        *out = def;
        return EEX_OK;
    }
    if (kv->type != EEX_V_STR)
        return eex_fail(EEX_ERR_FORMAT, "graph: node '%s' attribute '%s' must be a string", node->name,
                        key);
    *out = kv->s;
    return EEX_OK;
}
