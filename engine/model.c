/* eex_model: a validated, bound, read-only model. Many sessions may share one. */
#include <stdlib.h>
#include <string.h>

#include "../base/half.h"
#include "graph.h"
#include "pack.h"
#include "../base/status.h"

/* float16 tensors get a float32 copy that everything but the float16 dense
 * kernel reads (the conversion is exact), so the graph checks, the
 * reference kernels and the other packers see one dtype. */
static eex_status widen_half_tensors(eex_model *m)
{
    for (uint32_t i = 0; i < m->file.n_tensors; i++) {
        eex_ftensor *t = &m->file.tensors[i];
        if (!t->half)
            continue;
        float *f = eex_arena_array(&m->arena, (size_t)t->elems, sizeof(float));
        if (!f)
            return eex_fail(EEX_ERR_NOMEM, "model: out of memory widening float16 tensor '%s'", t->name);
        for (uint64_t k = 0; k < t->elems; k++) {
            uint16_t h;
            memcpy(&h, (const unsigned char *)t->half + 2 * k, sizeof h); /* little-endian hosts only, as the rest */
            f[k] = eex_f16_to_f32(h);
        }
        t->data = f;
    }
    return EEX_OK;
}

static eex_status finish_open(eex_model *m, eex_model **out)
{
    eex_status st = widen_half_tensors(m);
    if (!st)
        st = eex_graph_bind(m);
    if (!st)
        st = eex_ee_bind(m);
    if (!st)
        eex_mark_dw_pw_pairs(m);
    if (st) {
        eex_model_close(m);
        return st;
    }
    const eex_kv *kv;
    if ((kv = eex_kv_find(&m->file.meta, "model.name", EEX_V_STR)))
        m->name = kv->s;
    if ((kv = eex_kv_find(&m->file.meta, "labels", EEX_V_STRS)))
        m->n_labels = (int)kv->count, m->labels = kv->ss;
    if ((kv = eex_kv_find(&m->file.meta, "input.mean", EEX_V_F64S)))
        m->n_mean = (int)kv->count, m->mean = kv->fs;
    if ((kv = eex_kv_find(&m->file.meta, "input.std", EEX_V_F64S)))
        m->n_std = (int)kv->count, m->std = kv->fs;
    for (int i = 0; i < m->n_std; i++)
        if (!(m->std[i] > 0.0)) {
            eex_model_close(m);
            return eex_fail(EEX_ERR_FORMAT, "model: input.std[%d] is not positive", i);
        }
    *out = m;
    return EEX_OK;
}

eex_status eex_model_open(const char *path, eex_model **out)
{
    if (!path || !out)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_model_open: NULL argument");
    *out = NULL;
    eex_model *m = calloc(1, sizeof *m);
    if (!m)
        return eex_fail(EEX_ERR_NOMEM, "model: out of memory");
    eex_status st = eex_file_open(path, &m->file);
    if (st) {
        free(m);
        return st;
    }
    return finish_open(m, out);
}

eex_status eex_model_open_buffer(const void *data, size_t size, eex_model **out)
{
    if (!data || !out)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_model_open_buffer: NULL argument");
    *out = NULL;
    eex_model *m = calloc(1, sizeof *m);
    if (!m)
        return eex_fail(EEX_ERR_NOMEM, "model: out of memory");
    eex_status st = eex_file_parse(data, size, &m->file);
    if (st) {
        free(m);
        return st;
    }
    return finish_open(m, out);
}

void eex_model_close(eex_model *m)
{
    if (!m)
        return;
    eex_arena_free(&m->arena);
    eex_file_close(&m->file);
    free(m);
}

int eex_model_input_count(const eex_model *m) { return m ? m->n_inputs : 0; }
int eex_model_output_count(const eex_model *m) { return m ? m->n_outputs : 0; }

const char *eex_model_input_name(const eex_model *m, int i)
{
    return m && i >= 0 && i < m->n_inputs ? m->values[m->inputs[i]].name : NULL;
}

const char *eex_model_output_name(const eex_model *m, int i)
{
    return m && i >= 0 && i < m->n_outputs ? m->values[m->outputs[i]].name : NULL;
}

static int value_shape(const eex_value *v, int64_t dims[EEX_MAX_RANK])
{
    return eex_value_dims(v, 1, dims);
}

int eex_model_input_shape(const eex_model *m, int i, int64_t dims[EEX_MAX_RANK])
{
    if (!m || i < 0 || i >= m->n_inputs)
        return -1;
    return value_shape(&m->values[m->inputs[i]], dims);
}

int eex_model_output_shape(const eex_model *m, int i, int64_t dims[EEX_MAX_RANK])
{
    if (!m || i < 0 || i >= m->n_outputs)
        return -1;
    return value_shape(&m->values[m->outputs[i]], dims);
}

const char *eex_model_name(const eex_model *m) { return m ? m->name : NULL; }
int eex_model_label_count(const eex_model *m) { return m ? m->n_labels : 0; }

const char *eex_model_label(const eex_model *m, int i)
{
    return m && i >= 0 && i < m->n_labels ? m->labels[i] : NULL;
}

static int copy_f64(const double *src, int n, float *dst, int cap)
{
    for (int i = 0; i < n && i < cap; i++)
        dst[i] = (float)src[i];
    return n;
}

int eex_model_mean(const eex_model *m, float *mean, int cap) { return m ? copy_f64(m->mean, m->n_mean, mean, cap) : 0; }
int eex_model_std(const eex_model *m, float *std, int cap) { return m ? copy_f64(m->std, m->n_std, std, cap) : 0; }

void eex_model_get_stats(const eex_model *m, eex_model_stats *s)
{
    memset(s, 0, sizeof *s);
    if (!m)
        return;
    s->nodes = m->n_nodes;
    s->params = m->params;
    s->macs = m->macs;
    s->file_bytes = m->file.size;
}

int eex_model_op_histogram(const eex_model *m, const char **names, int *counts, int cap)
{
    int hist[EEX_OP_COUNT] = {0};
    for (int i = 0; m && i < m->n_nodes; i++)
        hist[m->nodes[i].op]++;
    int k = 0;
    for (int op = 1; op < EEX_OP_COUNT; op++) {
        if (!hist[op])
            continue;
        if (k < cap) {
            names[k] = eex_op_name((eex_op)op);
            counts[k] = hist[op];
        }
        k++;
    }
    return k;
}
