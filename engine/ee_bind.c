/* Binding the early-exit structure: the ee.* metadata names values; here they
 * become exits, heads, stages, expert sets, the detector and cut points, all
 * derived from the graph by reachability (docs/format.md, "Early-exit
 * structure").
 *
 * The nodes are also put into execution order: detector, then for each exit
 * its backbone stage followed by every expert's head, then the final stage and
 * heads. The memory planner sees that order, which is what makes partial runs
 * (stop at an exit, stop at a cut, resume from a cut) safe: any run executes
 * a subsequence of it, so no value is overwritten while still needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "../base/status.h"

typedef struct ee_ctx {
    eex_model *m;
    unsigned char *mark;   /* per node scratch */
    int *stack;
} ee_ctx;

static int find_value(const eex_model *m, const char *name)
{
    for (int v = 0; v < m->n_values; v++)
        if (!strcmp(m->values[v].name, name))
            return v;
    return -1;
}

static eex_status value_key(const eex_model *m, const char *key, int required, int *out)
{
    const eex_kv *kv = eex_kv_find(&m->file.meta, key, EEX_V_STR);
    if (!kv) {
        if (required)
            return eex_fail(EEX_ERR_FORMAT, "ee: metadata key '%s' (string) is missing", key);
        *out = -1;
        return EEX_OK;
    }
    if ((*out = find_value(m, kv->s)) < 0)
        return eex_fail(EEX_ERR_GRAPH, "ee: %s names value '%s', which the graph does not compute", key, kv->s);
    return EEX_OK;
}

static eex_status temperature_key(const eex_model *m, const char *key, float *out)
{
    const eex_kv *kv = eex_kv_get(&m->file.meta, key);
    *out = 1.0f;
    if (!kv)
        return EEX_OK;
    if (kv->type != EEX_V_F64 || !isfinite(kv->f) || kv->f <= 0.0)
        return eex_fail(EEX_ERR_FORMAT, "ee: %s must be a positive finite number", key);
    *out = (float)kv->f;
    return EEX_OK;
}

/* Marks (with bit `bit`) every node needed to compute value v. */
static void mark_need(ee_ctx *c, int v, unsigned char bit)
{
    const eex_model *m = c->m;
    int sp = 0;
    c->stack[sp++] = v;
    while (sp) {
        const int p = m->values[c->stack[--sp]].producer;
        if (p < 0 || (c->mark[p] & bit))
            continue;
        c->mark[p] |= bit;
        const eex_node *nd = &m->nodes[p];
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k].kind == EEX_OPND_VALUE)
                c->stack[sp++] = nd->in[k].index;  /* at most n_in pushes per node: bounded below */
    }
}

/* Nodes needed for `want` but not for `have` (have < 0: none). */
static eex_status need_minus(ee_ctx *c, int want, int have, eex_nodeset *set)
{
    eex_model *m = c->m;
    memset(c->mark, 0, (size_t)m->n_nodes);
    mark_need(c, want, 1);
    if (have >= 0)
        mark_need(c, have, 2);
    int n = 0;
    for (int i = 0; i < m->n_nodes; i++)
        n += c->mark[i] == 1;
    set->idx = eex_arena_array(&m->arena, (size_t)(n ? n : 1), sizeof(int));
    if (!set->idx)
        return eex_fail(EEX_ERR_NOMEM, "ee: out of memory");
    set->n = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (c->mark[i] == 1)
            set->idx[set->n++] = i;
    return EEX_OK;
}

static int is_subset_need(ee_ctx *c, int inner, int outer)
{
    memset(c->mark, 0, (size_t)c->m->n_nodes);
    mark_need(c, inner, 1);
    mark_need(c, outer, 2);
    for (int i = 0; i < c->m->n_nodes; i++)
        if (c->mark[i] == 1)
            return 0;
    return 1;
}

/* Every activation a node of `set` reads is made inside the set or is `entry`. */
static int self_contained(const eex_model *m, const eex_nodeset *set, int entry, int *bad_node, int *bad_value)
{
    for (int k = 0; k < set->n; k++) {
        const eex_node *nd = &m->nodes[set->idx[k]];
        for (int j = 0; j < nd->n_in; j++) {
            if (nd->in[j].kind != EEX_OPND_VALUE || nd->in[j].index == entry)
                continue;
            const int p = m->values[nd->in[j].index].producer;
            int inside = 0;
            for (int q = 0; q < set->n && !inside; q++)
                inside = set->idx[q] == p;
            if (!inside) {
                *bad_node = set->idx[k];
                *bad_value = nd->in[j].index;
                return 0;
            }
        }
    }
    return 1;
}

/* ---- execution order ---------------------------------------------------------- */

static void append_need(ee_ctx *c, int v, int *order, int *n, unsigned char *placed)
{
    memset(c->mark, 0, (size_t)c->m->n_nodes);
    mark_need(c, v, 1);
    for (int i = 0; i < c->m->n_nodes; i++)
        if (c->mark[i] && !placed[i]) {
            placed[i] = 1;
            order[(*n)++] = i;
        }
}

static eex_status reorder(ee_ctx *c)
{
    eex_model *m = c->m;
    const eex_ee *ee = &m->ee;
    int *order = malloc(sizeof(int) * (size_t)m->n_nodes);
    unsigned char *placed = calloc((size_t)m->n_nodes, 1);
    eex_node *copy = malloc(sizeof(eex_node) * (size_t)m->n_nodes);
    if (!order || !placed || !copy) {
        free(order), free(placed), free(copy);
        return eex_fail(EEX_ERR_NOMEM, "ee: out of memory ordering nodes");
    }
    int n = 0;
    if (ee->det_logits >= 0)
        append_need(c, ee->det_logits, order, &n, placed);
    for (int k = 0; k <= ee->n_exits; k++) {
        append_need(c, ee->attach[k], order, &n, placed);
        for (int e = 0; e < ee->n_experts; e++)
            append_need(c, ee->logits[k * ee->n_experts + e], order, &n, placed);
    }
    for (int i = 0; i < m->n_nodes; i++)
        if (!placed[i])
            order[n++] = i;
    memcpy(copy, m->nodes, sizeof(eex_node) * (size_t)m->n_nodes);
    for (int i = 0; i < m->n_nodes; i++)
        m->nodes[i] = copy[order[i]];
    /* producers and lifetimes in the new order */
    for (int v = 0; v < m->n_values; v++)
        m->values[v].last_use = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const eex_node *nd = &m->nodes[i];
        m->values[nd->out].producer = i;
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k].kind == EEX_OPND_VALUE)
                m->values[nd->in[k].index].last_use = i;
    }
    for (int i = 0; i < m->n_outputs; i++)
        m->values[m->outputs[i]].last_use = m->n_nodes;
    for (int i = 0; i < m->n_inputs; i++)
        m->values[m->inputs[i]].last_use = m->n_nodes;
    free(order), free(placed), free(copy);
    return EEX_OK;
}

/* ---- metadata ------------------------------------------------------------------- */

static eex_status logits_value(eex_model *m, int v, const char *what)
{
    const eex_value *val = &m->values[v];
    int is_output = 0;
    for (int i = 0; i < m->n_outputs; i++)
        is_output |= m->outputs[i] == v;
    if (!is_output)
        return eex_fail(EEX_ERR_GRAPH, "ee: %s value '%s' must be a graph output", what, val->name);
    if (val->rank != 2)
        return eex_fail(EEX_ERR_SHAPE, "ee: %s value '%s' must be [N, classes]", what, val->name);
    return EEX_OK;
}

static eex_status read_exits(eex_model *m)
{
    eex_ee *ee = &m->ee;
    eex_status st;
    char key[256];
    const eex_kv *kv = eex_kv_find(&m->file.meta, "ee.experts", EEX_V_STRS);
    if (!kv || kv->count < 1 || kv->count > 64)
        return eex_fail(EEX_ERR_FORMAT, "ee: 'ee.experts' must list 1 to 64 expert set names");
    ee->n_experts = (int)kv->count;
    ee->experts = kv->ss;
    for (int a = 0; a < ee->n_experts; a++)
        for (int b = 0; b < a; b++)
            if (!strcmp(ee->experts[a], ee->experts[b]))
                return eex_fail(EEX_ERR_DUPLICATE, "ee: expert set '%s' is listed twice", ee->experts[a]);
    kv = eex_kv_find(&m->file.meta, "ee.exits", EEX_V_I64);
    if (!kv || kv->i < 0 || kv->i >= EEX_MAX_EXITS)
        return eex_fail(EEX_ERR_FORMAT, "ee: 'ee.exits' must be an integer from 0 to %d", EEX_MAX_EXITS - 1);
    ee->n_exits = (int)kv->i;
    const int E = ee->n_exits, X = ee->n_experts;
    ee->attach = eex_arena_array(&m->arena, (size_t)E + 1, sizeof(int));
    ee->logits = eex_arena_array(&m->arena, (size_t)(E + 1) * X, sizeof(int));
    ee->temperature = eex_arena_array(&m->arena, (size_t)(E + 1) * X, sizeof(float));
    if (!ee->attach || !ee->logits || !ee->temperature)
        return eex_fail(EEX_ERR_NOMEM, "ee: out of memory");
    ee->n_classes = -1;
    for (int k = 0; k <= E; k++) {
        char base[32];
        if (k < E)
            snprintf(base, sizeof base, "ee.exit.%d", k + 1);
        else
            snprintf(base, sizeof base, "ee.final");
        snprintf(key, sizeof key, "%s.attach", base);
        if ((st = value_key(m, key, 1, &ee->attach[k])))
            return st;
        for (int e = 0; e < X; e++) {
            int *lv = &ee->logits[k * X + e];
            snprintf(key, sizeof key, "%s.%s.logits", base, ee->experts[e]);
            /* a final classifier may be shared: absent -> the default expert's */
            if ((st = value_key(m, key, k < E || e == 0, lv)))
                return st;
            if (*lv < 0)
                *lv = ee->logits[k * X];
            if ((st = logits_value(m, *lv, key)))
                return st;
            if (ee->n_classes < 0)
                ee->n_classes = m->values[*lv].c;
            if (m->values[*lv].c != ee->n_classes)
                return eex_fail(EEX_ERR_SHAPE, "ee: %s has %d classes, other exits %d", key, m->values[*lv].c,
                                ee->n_classes);
            snprintf(key, sizeof key, "%s.%s.temperature", base, ee->experts[e]);
            if ((st = temperature_key(m, key, &ee->temperature[k * X + e])))
                return st;
        }
    }
    return EEX_OK;
}

static eex_status read_detector(eex_model *m)
{
    eex_ee *ee = &m->ee;
    eex_status st;
    int v;
    ee->detector_input = -1;
    if ((st = value_key(m, "ee.detector.logits", 0, &ee->det_logits)))
        return st;
    if (ee->det_logits < 0)
        return EEX_OK;
    if ((st = logits_value(m, ee->det_logits, "ee.detector.logits")) ||
        (st = value_key(m, "ee.detector.input", 1, &v)))
        return st;
    for (int i = 0; i < m->n_inputs; i++)
        if (m->inputs[i] == v)
            ee->detector_input = i;
    const eex_value *in = &m->values[v];
    /* channel 0: the spectrum; optional channels 1, the grayscale image, and 2, its
     * diagonal residual (docs/distortions.md) */
    if (ee->detector_input < 0 || in->rank != 4 || in->c < 1 || in->c > 3)
        return eex_fail(EEX_ERR_GRAPH, "ee: detector input '%s' must be a graph input [N,C,H,W] with C = 1, 2 or 3",
                        in->name);
    ee->det_h = in->h, ee->det_w = in->w;
    const eex_kv *kv = eex_kv_find(&m->file.meta, "ee.detector.classes", EEX_V_STRS);
    if (!kv || (int)kv->count != m->values[ee->det_logits].c || kv->count > EEX_MAX_CLASSES_DET)
        return eex_fail(EEX_ERR_FORMAT, "ee: 'ee.detector.classes' must name each of the detector's %d classes (max %d)",
                        m->values[ee->det_logits].c, EEX_MAX_CLASSES_DET);
    ee->n_det_classes = (int)kv->count;
    ee->det_classes = kv->ss;
    ee->det_expert = eex_arena_array(&m->arena, kv->count, sizeof(int));
    if (!ee->det_expert)
        return eex_fail(EEX_ERR_NOMEM, "ee: out of memory");
    for (int i = 0; i < ee->n_det_classes; i++) {
        ee->det_expert[i] = -1;
        for (int e = 0; e < ee->n_experts; e++)
            if (!strcmp(ee->det_classes[i], ee->experts[e]))
                ee->det_expert[i] = e;
        if (ee->det_expert[i] < 0)
            return eex_fail(EEX_ERR_GRAPH, "ee: detector class '%s' is not an expert set", ee->det_classes[i]);
    }
    return EEX_OK;
}

static eex_status derive_sets(ee_ctx *c)
{
    eex_model *m = c->m;
    eex_ee *ee = &m->ee;
    const int E = ee->n_exits, X = ee->n_experts;
    eex_status st;
    int bn, bv;
    ee->stage = eex_arena_array(&m->arena, (size_t)E + 1, sizeof(eex_nodeset));
    ee->head = eex_arena_array(&m->arena, (size_t)(E + 1) * X, sizeof(eex_nodeset));
    if (!ee->stage || !ee->head)
        return eex_fail(EEX_ERR_NOMEM, "ee: out of memory");
    for (int k = 0; k <= E; k++) {
        const int prev = k ? ee->attach[k - 1] : -1;
        if (prev >= 0 && !is_subset_need(c, prev, ee->attach[k]))
            return eex_fail(EEX_ERR_GRAPH, "ee: exit %d reads '%s', which does not come after exit %d's '%s' in the backbone",
                            k + 1, m->values[ee->attach[k]].name, k, m->values[prev].name);
        if ((st = need_minus(c, ee->attach[k], prev, &ee->stage[k])))
            return st;
        for (int e = 0; e < X; e++) {
            eex_nodeset *h = &ee->head[k * X + e];
            if ((st = need_minus(c, ee->logits[k * X + e], ee->attach[k], h)))
                return st;
            if (!self_contained(m, h, ee->attach[k], &bn, &bv))
                return eex_fail(EEX_ERR_GRAPH, "ee: head of exit %d (%s) node '%s' reads '%s', which is neither in the head nor its attach value",
                                k + 1, ee->experts[e], m->nodes[bn].name, m->values[bv].name);
        }
    }
    if (ee->det_logits >= 0 && (st = need_minus(c, ee->det_logits, -1, &ee->detector)))
        return st;
    /* each node's role, for profiles (eex bench --exits) */
    for (int k = 0; k <= E; k++) {
        for (int i = 0; i < ee->stage[k].n; i++)
            m->nodes[ee->stage[k].idx[i]].ee_stage = k + 1;
        for (int e = 0; e < X; e++)
            for (int i = 0; i < ee->head[k * X + e].n; i++) {
                eex_node *nd = &m->nodes[ee->head[k * X + e].idx[i]];
                nd->ee_head_exit = k + 1;
                nd->ee_head_experts |= e < 32 ? 1u << e : 0u;
            }
    }
    for (int i = 0; ee->det_logits >= 0 && i < ee->detector.n; i++)
        m->nodes[ee->detector.idx[i]].ee_detector = 1;
    return EEX_OK;
}

static eex_status read_cuts(ee_ctx *c)
{
    eex_model *m = c->m;
    eex_ee *ee = &m->ee;
    const int E = ee->n_exits, X = ee->n_experts;
    const eex_kv *kv = eex_kv_get(&m->file.meta, "ee.cuts");
    if (!kv)
        return EEX_OK;
    if (kv->type != EEX_V_STRS || kv->count > 64)
        return eex_fail(EEX_ERR_FORMAT, "ee: 'ee.cuts' must be a list of at most 64 value names");
    ee->n_cuts = (int)kv->count;
    ee->cut_value = eex_arena_array(&m->arena, kv->count + 1, sizeof(int));
    ee->cut_exit = eex_arena_array(&m->arena, kv->count + 1, sizeof(int));
    ee->to_cut = eex_arena_array(&m->arena, kv->count + 1, sizeof(eex_nodeset));
    ee->after_cut = eex_arena_array(&m->arena, (size_t)(kv->count + 1) * X, sizeof(eex_nodeset));
    if (!ee->cut_value || !ee->cut_exit || !ee->to_cut || !ee->after_cut)
        return eex_fail(EEX_ERR_NOMEM, "ee: out of memory");
    for (int i = 0; i < ee->n_cuts; i++) {
        const int v = find_value(m, kv->ss[i]);
        if (v < 0)
            return eex_fail(EEX_ERR_GRAPH, "ee: cut '%s' is not a value of the graph", kv->ss[i]);
        if (!is_subset_need(c, v, ee->attach[E]))
            return eex_fail(EEX_ERR_GRAPH, "ee: cut '%s' is not on the backbone before the final classifier", kv->ss[i]);
        ee->cut_value[i] = v;
        eex_status st = need_minus(c, v, -1, &ee->to_cut[i]);
        if (st)
            return st;
        ee->cut_exit[i] = 0;
        for (int k = 0; k < E; k++)
            if (is_subset_need(c, ee->attach[k], v))
                ee->cut_exit[i] = k + 1;
        for (int e = 0; e < X; e++) {
            eex_nodeset *rest = &ee->after_cut[i * X + e];
            int bn, bv;
            if ((st = need_minus(c, ee->logits[E * X + e], v, rest)))
                return st;
            if (!self_contained(m, rest, v, &bn, &bv))
                return eex_fail(EEX_ERR_GRAPH,
                                "ee: cut '%s' is not a clean cut: node '%s' after it also reads '%s' from before it",
                                kv->ss[i], m->nodes[bn].name, m->values[bv].name);
        }
    }
    return EEX_OK;
}

eex_status eex_ee_bind(eex_model *m)
{
    eex_ee *ee = &m->ee;
    memset(ee, 0, sizeof *ee);
    ee->det_logits = -1;
    ee->detector_input = -1;
    ee->threshold = -1.0f;
    const eex_kv *ver = eex_kv_get(&m->file.meta, "ee.version");
    if (!ver)
        return EEX_OK;
    if (ver->type != EEX_V_I64 || ver->i != 1)
        return eex_fail(EEX_ERR_VERSION, "ee: ee.version must be 1");
    eex_status st;
    if ((st = read_exits(m)) || (st = read_detector(m)))
        return st;
    const eex_kv *img = eex_kv_find(&m->file.meta, "ee.image_input", EEX_V_STR);
    ee->image_input = 0;
    if (img) {
        ee->image_input = -1;
        for (int i = 0; i < m->n_inputs; i++)
            if (!strcmp(m->values[m->inputs[i]].name, img->s))
                ee->image_input = i;
        if (ee->image_input < 0)
            return eex_fail(EEX_ERR_GRAPH, "ee: image input '%s' is not a graph input", img->s);
    }
    const eex_kv *th = eex_kv_get(&m->file.meta, "ee.threshold");
    if (th) {
        if (th->type != EEX_V_F64 || !(th->f >= 0.0 && th->f <= 1.0))
            return eex_fail(EEX_ERR_FORMAT, "ee: ee.threshold must be a number in [0, 1]");
        ee->threshold = (float)th->f;
    }
    const eex_kv *ths = eex_kv_get(&m->file.meta, "ee.thresholds");
    if (ths) {
        const uint32_t E = (uint32_t)ee->n_exits;
        if (ths->type != EEX_V_F64S || (ths->count != E && ths->count != E + 1))
            return eex_fail(EEX_ERR_FORMAT, "ee: ee.thresholds must be an f64 array of %u or %u values (one per exit)", E,
                            E + 1);
        for (uint32_t k = 0; k < ths->count; k++) {
            if (!(ths->fs[k] >= 0.0 && ths->fs[k] <= 1.0))
                return eex_fail(EEX_ERR_FORMAT, "ee: ee.thresholds[%u] must be a number in [0, 1]", k);
            ee->thresholds[k] = (float)ths->fs[k];
        }
        ee->n_thresholds = (int)ths->count;
    }
    ee_ctx c = {.m = m};
    size_t stack = 1;
    for (int i = 0; i < m->n_nodes; i++)
        stack += (size_t)m->nodes[i].n_in;
    c.mark = calloc((size_t)m->n_nodes + 1, 1);
    c.stack = malloc(sizeof(int) * (stack + (size_t)m->n_values));
    if (!c.mark || !c.stack)
        st = eex_fail(EEX_ERR_NOMEM, "ee: out of memory");
    else if (!(st = reorder(&c)) && !(st = derive_sets(&c)))
        st = read_cuts(&c);
    free(c.mark);
    free(c.stack);
    if (!st)
        m->has_ee = 1;
    return st;
}
