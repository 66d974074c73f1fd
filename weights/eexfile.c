#include "eexfile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/ops.h"
#include "../base/status.h"
#include "../base/strmap.h"
#include "../base/crc32.h"

/* A read cursor over one section. Every read checks the remaining length first,
 * so a short section is EEX_ERR_TRUNCATED naming the section and the field. */
typedef struct cursor {
    const unsigned char *p, *end;
    const char *section;
    eex_arena *arena;
} cursor;

static eex_status truncated(const cursor *c, const char *what)
{
    return eex_fail(EEX_ERR_TRUNCATED, "weights: %s section ends inside %s", c->section, what);
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static eex_status rd_u8(cursor *c, const char *what, unsigned *v)
{
    if (c->end - c->p < 1)
        return truncated(c, what);
    *v = *c->p++;
    return EEX_OK;
}

static eex_status rd_u32(cursor *c, const char *what, uint32_t *v)
{
    if (c->end - c->p < 4)
        return truncated(c, what);
    *v = le32(c->p);
    c->p += 4;
    return EEX_OK;
}

static eex_status rd_u64(cursor *c, const char *what, uint64_t *v)
{
    if (c->end - c->p < 8)
        return truncated(c, what);
    *v = le64(c->p);
    c->p += 8;
    return EEX_OK;
}

static eex_status rd_string(cursor *c, const char *what, const char **out)
{
    uint32_t n = 0;
    eex_status st = rd_u32(c, what, &n);
    if (st)
        return st;
    if (n > EEX_FILE_MAX_STRING)
        return eex_fail(EEX_ERR_FORMAT, "weights: %s: %s has length %u (max %u)", c->section, what,
                        n, EEX_FILE_MAX_STRING);
    if ((uint64_t)(c->end - c->p) < n)
        return truncated(c, what);
    if (memchr(c->p, 0, n))
        return eex_fail(EEX_ERR_FORMAT, "weights: %s: %s contains a NUL byte", c->section, what);
    char *s = eex_arena_strndup(c->arena, (const char *)c->p, n);
    if (!s)
        return eex_fail(EEX_ERR_NOMEM, "weights: out of memory reading %s", what);
    c->p += n;
    *out = s;
    return EEX_OK;
}

/* Reads an array count and checks that `count` elements of at least
 * `min_elem` bytes can still fit in the section, before anything is allocated. */
static eex_status rd_count(cursor *c, const char *what, uint32_t max, size_t min_elem, uint32_t *n)
{
    eex_status st = rd_u32(c, what, n);
    if (st)
        return st;
    if (*n > max)
        return eex_fail(EEX_ERR_FORMAT, "weights: %s: %s count %u exceeds the limit %u", c->section,
                        what, *n, max);
    if ((uint64_t)*n * min_elem > (uint64_t)(c->end - c->p))
        return truncated(c, what);
    return EEX_OK;
}

static eex_status rd_value(cursor *c, eex_kv *kv)
{
    unsigned type = 0;
    eex_status st = rd_u8(c, kv->key, &type);
    if (st)
        return st;
    kv->type = (eex_vtype)type;
    kv->count = 1;
    switch (type) {
    case EEX_V_I64: {
        uint64_t v = 0;
        if ((st = rd_u64(c, kv->key, &v)))
            return st;
        kv->i = (int64_t)v;
        return EEX_OK;
    }
    case EEX_V_F64: {
        uint64_t v = 0;
        if ((st = rd_u64(c, kv->key, &v)))
            return st;
        memcpy(&kv->f, &v, sizeof v);
        return EEX_OK;
    }
    case EEX_V_STR:
        return rd_string(c, kv->key, &kv->s);
    case EEX_V_I64S:
    case EEX_V_F64S: {
        uint32_t n = 0;
        if ((st = rd_count(c, kv->key, EEX_FILE_MAX_ARRAY, 8, &n)))
            return st;
        kv->count = n;
        uint64_t *a = eex_arena_array(c->arena, n ? n : 1, 8);
        if (!a)
            return eex_fail(EEX_ERR_NOMEM, "weights: out of memory reading '%s'", kv->key);
        for (uint32_t i = 0; i < n; i++) {
            a[i] = le64(c->p);
            c->p += 8;
        }
        if (type == EEX_V_I64S)
            kv->is = (const int64_t *)a;
        else
            kv->fs = (const double *)a;
        return EEX_OK;
    }
    case EEX_V_STRS: {
        uint32_t n = 0;
        if ((st = rd_count(c, kv->key, EEX_FILE_MAX_ARRAY, 4, &n)))
            return st;
        kv->count = n;
        const char **a = eex_arena_array(c->arena, n ? n : 1, sizeof *a);
        if (!a)
            return eex_fail(EEX_ERR_NOMEM, "weights: out of memory reading '%s'", kv->key);
        for (uint32_t i = 0; i < n; i++)
            if ((st = rd_string(c, kv->key, &a[i])))
                return st;
        kv->ss = a;
        return EEX_OK;
    }
    default:
        return eex_fail(EEX_ERR_FORMAT, "weights: %s: key '%s' has unknown value type %u",
                        c->section, kv->key, type);
    }
}

static eex_status rd_kvlist(cursor *c, const char *what, eex_kvlist *list)
{
    uint32_t n = 0;
    /* smallest entry: 4-byte key length + 1-byte type + 8-byte value */
    eex_status st = rd_count(c, what, EEX_FILE_MAX_ARRAY, 13, &n);
    if (st)
        return st;
    eex_kv *items = eex_arena_array(c->arena, n ? n : 1, sizeof *items);
    eex_strmap seen;
    if (!items || !eex_strmap_init(&seen, c->arena, n))
        return eex_fail(EEX_ERR_NOMEM, "weights: out of memory reading %s", what);
    for (uint32_t i = 0; i < n; i++) {
        if ((st = rd_string(c, "key", &items[i].key)))
            return st;
        if (eex_strmap_put(&seen, items[i].key, (int)i) != 1)
            return eex_fail(EEX_ERR_DUPLICATE, "weights: %s: key '%s' appears twice in %s",
                            c->section, items[i].key, what);
        if ((st = rd_value(c, &items[i])))
            return st;
    }
    list->count = n;
    list->items = items;
    return EEX_OK;
}

static eex_status section_done(const cursor *c)
{
    if (c->p != c->end)
        return eex_fail(EEX_ERR_FORMAT, "weights: %s section has %td bytes left over", c->section,
                        c->end - c->p);
    return EEX_OK;
}

/* ---- header ---------------------------------------------------------------- */

typedef struct section {
    const char *name;
    uint64_t off, size;
} section;

static eex_status check_header(const unsigned char *b, size_t size, section sec[4])
{
    if (size < 8 || memcmp(b, EEX_FILE_MAGIC, 8) != 0)
        return eex_fail(EEX_ERR_MAGIC, "weights: not an .eex file (magic is not '%s')",
                        EEX_FILE_MAGIC);
    if (size < EEX_FILE_HEADER_SIZE)
        return eex_fail(EEX_ERR_TRUNCATED, "weights: file is %zu bytes, shorter than the %u-byte header",
                        size, EEX_FILE_HEADER_SIZE);
    uint32_t version = le32(b + 8);
    if (version > EEX_FILE_VERSION)
        return eex_fail(EEX_ERR_VERSION,
                        "weights: file version %u is newer than this build reads (%u)", version,
                        EEX_FILE_VERSION);
    if (version == 0)
        return eex_fail(EEX_ERR_VERSION, "weights: file version 0 is not a valid version");
    if (le32(b + 12) != EEX_FILE_HEADER_SIZE)
        return eex_fail(EEX_ERR_FORMAT, "weights: header_size is %u, expected %u", le32(b + 12),
                        EEX_FILE_HEADER_SIZE);
    uint64_t file_size = le64(b + 16);
    if (file_size != size)
        return eex_fail(file_size > size ? EEX_ERR_TRUNCATED : EEX_ERR_FORMAT,
                        "weights: header file_size is %llu but the file has %zu bytes",
                        (unsigned long long)file_size, size);
    if (le32(b + 92) != 0)
        return eex_fail(EEX_ERR_FORMAT, "weights: header reserved field is not zero");
    static const char *const names[4] = {"meta", "tensors", "graph", "data"};
    uint64_t prev_end = EEX_FILE_HEADER_SIZE;
    for (int i = 0; i < 4; i++) {
        sec[i].name = names[i];
        sec[i].off = le64(b + 24 + 16 * i);
        sec[i].size = le64(b + 32 + 16 * i);
        if (sec[i].off < prev_end || sec[i].off > size || sec[i].size > size - sec[i].off)
            return eex_fail(EEX_ERR_BOUNDS,
                            "weights: %s section [%llu, +%llu) lies outside the file (%zu bytes) "
                            "or overlaps the one before",
                            names[i], (unsigned long long)sec[i].off,
                            (unsigned long long)sec[i].size, size);
        prev_end = sec[i].off + sec[i].size;
    }
    if (sec[3].off % EEX_FILE_ALIGN)
        return eex_fail(EEX_ERR_ALIGNMENT, "weights: data_off %llu is not a multiple of %u",
                        (unsigned long long)sec[3].off, EEX_FILE_ALIGN);
    if (sec[3].off + sec[3].size != size)
        return eex_fail(EEX_ERR_FORMAT, "weights: data section does not end at the end of the file");
    uint32_t want = le32(b + 88);
    uint32_t got = eex_crc32(0, b + EEX_FILE_HEADER_SIZE, size - EEX_FILE_HEADER_SIZE);
    if (want != got)
        return eex_fail(EEX_ERR_CHECKSUM, "weights: checksum mismatch (header says %08x, contents give %08x)",
                        want, got);
    return EEX_OK;
}

/* ---- tensors --------------------------------------------------------------- */

static eex_status read_tensors(cursor *c, const section *data, const unsigned char *base,
                               eex_file *f)
{
    uint32_t n = 0;
    /* smallest entry: name length + dtype + ndim + offset + nbytes */
    eex_status st = rd_count(c, "tensor count", EEX_FILE_MAX_ARRAY, 4 + 1 + 1 + 16, &n);
    if (st)
        return st;
    f->tensors = eex_arena_array(&f->arena, n ? n : 1, sizeof *f->tensors);
    if (!f->tensors)
        return eex_fail(EEX_ERR_NOMEM, "weights: out of memory for %u tensors", n);
    for (uint32_t i = 0; i < n; i++) {
        eex_ftensor *t = &f->tensors[i];
        unsigned dtype = 0, ndim = 0;
        if ((st = rd_string(c, "tensor name", &t->name)) || (st = rd_u8(c, "tensor dtype", &dtype)) ||
            (st = rd_u8(c, "tensor ndim", &ndim)))
            return st;
        if (!t->name[0])
            return eex_fail(EEX_ERR_FORMAT, "weights: tensor %u has an empty name", i);
        if (dtype != EEX_DTYPE_F32 && dtype != EEX_DTYPE_F16)
            return eex_fail(EEX_ERR_FORMAT, "weights: tensor '%s' has unknown dtype %u", t->name, dtype);
        if (ndim > EEX_MAX_RANK)
            return eex_fail(EEX_ERR_FORMAT, "weights: tensor '%s' has %u dims (max %d)", t->name, ndim,
                            EEX_MAX_RANK);
        t->dtype = (int)dtype;
        t->ndim = (int)ndim;
        uint64_t elems = 1;
        for (unsigned d = 0; d < ndim; d++) {
            if ((st = rd_u64(c, "tensor dims", &t->dims[d])))
                return st;
            if (t->dims[d] == 0)
                return eex_fail(EEX_ERR_SHAPE, "weights: tensor '%s' dim %u is 0", t->name, d);
            if (elems > UINT64_MAX / t->dims[d])
                return eex_fail(EEX_ERR_OVERFLOW, "weights: tensor '%s' shape product overflows",
                                t->name);
            elems *= t->dims[d];
        }
        if (elems > UINT64_MAX / 4)
            return eex_fail(EEX_ERR_OVERFLOW, "weights: tensor '%s' byte size overflows", t->name);
        t->elems = elems;
        if ((st = rd_u64(c, "tensor offset", &t->offset)) || (st = rd_u64(c, "tensor nbytes", &t->nbytes)))
            return st;
        const unsigned esize = dtype == EEX_DTYPE_F16 ? 2 : 4;
        if (t->nbytes != elems * esize)
            return eex_fail(EEX_ERR_FORMAT, "weights: tensor '%s' nbytes %llu != %llu elements x %u",
                            t->name, (unsigned long long)t->nbytes, (unsigned long long)elems, esize);
        if (t->offset % EEX_FILE_ALIGN)
            return eex_fail(EEX_ERR_ALIGNMENT, "weights: tensor '%s' offset %llu is not %u-byte aligned",
                            t->name, (unsigned long long)t->offset, EEX_FILE_ALIGN);
        if (t->offset > data->size || t->nbytes > data->size - t->offset)
            return eex_fail(EEX_ERR_BOUNDS,
                            "weights: tensor '%s' [%llu, +%llu) extends past the end of the data section (%llu bytes)",
                            t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                            (unsigned long long)data->size);
        t->data = base + data->off + t->offset;
        t->half = dtype == EEX_DTYPE_F16 ? t->data : NULL;
    }
    f->n_tensors = n;
    return section_done(c);
}

/* ---- graph ----------------------------------------------------------------- */

static eex_status rd_names(cursor *c, const char *what, unsigned n, const char *const **out)
{
    const char **a = eex_arena_array(c->arena, n ? n : 1, sizeof *a);
    if (!a)
        return eex_fail(EEX_ERR_NOMEM, "weights: out of memory reading %s", what);
    for (unsigned i = 0; i < n; i++) {
        eex_status st = rd_string(c, what, &a[i]);
        if (st)
            return st;
    }
    *out = a;
    return EEX_OK;
}

static eex_status read_graph(cursor *c, eex_file *f)
{
    eex_status st;
    uint32_t n = 0;
    if ((st = rd_count(c, "input count", 64, 5, &n)))
        return st;
    f->inputs = eex_arena_array(&f->arena, n ? n : 1, sizeof *f->inputs);
    if (!f->inputs)
        return eex_fail(EEX_ERR_NOMEM, "weights: out of memory for graph inputs");
    for (uint32_t i = 0; i < n; i++) {
        eex_finput *in = &f->inputs[i];
        unsigned ndim = 0;
        if ((st = rd_string(c, "input name", &in->name)) || (st = rd_u8(c, "input ndim", &ndim)))
            return st;
        if (ndim < 1 || ndim > EEX_MAX_RANK)
            return eex_fail(EEX_ERR_FORMAT, "weights: graph input '%s' has %u dims", in->name, ndim);
        in->ndim = (int)ndim;
        for (unsigned d = 0; d < ndim; d++) {
            uint64_t v = 0;
            if ((st = rd_u64(c, "input dims", &v)))
                return st;
            in->dims[d] = (int64_t)v;
            if (in->dims[d] < 1 || in->dims[d] > (1 << 24))
                return eex_fail(EEX_ERR_SHAPE, "weights: graph input '%s' dim %u is %lld", in->name,
                                d, (long long)in->dims[d]);
        }
    }
    f->n_inputs = n;

    if ((st = rd_count(c, "output count", 64, 4, &n)))
        return st;
    const char *const *outs;
    if ((st = rd_names(c, "output name", n, &outs)))
        return st;
    f->outputs = (const char **)outs;
    f->n_outputs = n;

    /* smallest node: op + name + n_in + n_out + empty attribute list */
    if ((st = rd_count(c, "node count", EEX_FILE_MAX_ARRAY, 4 + 4 + 1 + 1 + 4, &n)))
        return st;
    f->nodes = eex_arena_array(&f->arena, n ? n : 1, sizeof *f->nodes);
    if (!f->nodes)
        return eex_fail(EEX_ERR_NOMEM, "weights: out of memory for %u nodes", n);
    for (uint32_t i = 0; i < n; i++) {
        eex_fnode *nd = &f->nodes[i];
        unsigned nin = 0, nout = 0;
        if ((st = rd_string(c, "node op", &nd->op)) || (st = rd_string(c, "node name", &nd->name)))
            return st;
        if (eex_op_from_name(nd->op) == EEX_OP_INVALID)
            return eex_fail(EEX_ERR_UNKNOWN_OP, "weights: node '%s' has unknown op '%s'", nd->name,
                            nd->op);
        if ((st = rd_u8(c, "node input count", &nin)) || (st = rd_names(c, "node input", nin, &nd->in)) ||
            (st = rd_u8(c, "node output count", &nout)) ||
            (st = rd_names(c, "node output", nout, &nd->out)) ||
            (st = rd_kvlist(c, "node attributes", &nd->attrs)))
            return st;
        nd->n_in = (int)nin;
        nd->n_out = (int)nout;
    }
    f->n_nodes = n;
    return section_done(c);
}

/* Names: tensors and graph values share one namespace; every value is
 * produced once and used only after it is produced (topological order). */
static eex_status check_names(eex_file *f)
{
    size_t total = (size_t)f->n_tensors + f->n_inputs;
    for (uint32_t i = 0; i < f->n_nodes; i++)
        total += (size_t)f->nodes[i].n_out;
    eex_strmap names;
    if (!eex_strmap_init(&names, &f->arena, total))
        return eex_fail(EEX_ERR_NOMEM, "weights: out of memory checking names");
    for (uint32_t i = 0; i < f->n_tensors; i++)
        if (eex_strmap_put(&names, f->tensors[i].name, 0) != 1)
            return eex_fail(EEX_ERR_DUPLICATE, "weights: duplicate tensor name '%s'", f->tensors[i].name);
    for (uint32_t i = 0; i < f->n_inputs; i++)
        if (eex_strmap_put(&names, f->inputs[i].name, 0) != 1)
            return eex_fail(EEX_ERR_DUPLICATE, "weights: graph input name '%s' is already defined",
                            f->inputs[i].name);
    for (uint32_t i = 0; i < f->n_nodes; i++) {
        const eex_fnode *nd = &f->nodes[i];
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k][0] && eex_strmap_get(&names, nd->in[k]) < 0)
                return eex_fail(EEX_ERR_GRAPH,
                                "weights: node '%s' input '%s' is not defined before the node", nd->name,
                                nd->in[k]);
        for (int k = 0; k < nd->n_out; k++) {
            if (!nd->out[k][0])
                return eex_fail(EEX_ERR_GRAPH, "weights: node '%s' has an empty output name", nd->name);
            if (eex_strmap_put(&names, nd->out[k], 0) != 1)
                return eex_fail(EEX_ERR_DUPLICATE, "weights: value '%s' (output of node '%s') is already defined",
                                nd->out[k], nd->name);
        }
    }
    for (uint32_t i = 0; i < f->n_outputs; i++)
        if (eex_strmap_get(&names, f->outputs[i]) < 0)
            return eex_fail(EEX_ERR_GRAPH, "weights: graph output '%s' is never produced", f->outputs[i]);
    return EEX_OK;
}

static eex_status parse(const unsigned char *b, size_t size, eex_file *f)
{
    section sec[4];
    eex_status st = check_header(b, size, sec);
    if (st)
        return st;
    cursor c = {b + sec[0].off, b + sec[0].off + sec[0].size, "meta", &f->arena};
    if ((st = rd_kvlist(&c, "metadata", &f->meta)) || (st = section_done(&c)))
        return st;
    c = (cursor){b + sec[1].off, b + sec[1].off + sec[1].size, "tensors", &f->arena};
    if ((st = read_tensors(&c, &sec[3], b, f)))
        return st;
    c = (cursor){b + sec[2].off, b + sec[2].off + sec[2].size, "graph", &f->arena};
    if ((st = read_graph(&c, f)))
        return st;
    if (f->n_inputs == 0 || f->n_outputs == 0)
        return eex_fail(EEX_ERR_GRAPH, "weights: graph has %u inputs and %u outputs (needs at least one of each)",
                        f->n_inputs, f->n_outputs);
    return check_names(f);
}

eex_status eex_file_parse(const void *buf, size_t size, eex_file *f)
{
    memset(f, 0, sizeof *f);
    if (!buf && size)
        return eex_fail(EEX_ERR_ARGUMENT, "weights: NULL buffer");
    f->base = buf;
    f->size = size;
    eex_status st = parse(buf, size, f);
    if (st)
        eex_arena_free(&f->arena);
    return st;
}

eex_status eex_file_open(const char *path, eex_file *f)
{
    memset(f, 0, sizeof *f);
    /* O_NONBLOCK: a FIFO or a device must not block the open; fstat refuses it */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return eex_fail(EEX_ERR_IO, "weights: cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return eex_fail(EEX_ERR_IO, "weights: '%s' is not a regular file (%s)", path,
                        S_ISDIR(sb.st_mode) ? "a directory" : S_ISFIFO(sb.st_mode) ? "a FIFO"
                        : S_ISCHR(sb.st_mode) ? "a character device" : "not a file");
    }
    size_t size = (size_t)sb.st_size;
    if (size == 0) {
        close(fd);
        return eex_fail(EEX_ERR_MAGIC, "weights: '%s' is empty", path);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return eex_fail(EEX_ERR_IO, "weights: cannot map '%s': %s", path, strerror(errno));
    eex_status st = eex_file_parse(map, size, f);
    if (st) {
        munmap(map, size);
        return st;
    }
    f->map = map;
    return EEX_OK;
}

void eex_file_close(eex_file *f)
{
    if (!f)
        return;
    eex_arena_free(&f->arena);
    if (f->map)
        munmap(f->map, f->size);
    memset(f, 0, sizeof *f);
}

const eex_kv *eex_kv_get(const eex_kvlist *list, const char *key)
{
    for (uint32_t i = 0; i < list->count; i++)
        if (strcmp(list->items[i].key, key) == 0)
            return &list->items[i];
    return NULL;
}

const eex_kv *eex_kv_find(const eex_kvlist *list, const char *key, eex_vtype type)
{
    const eex_kv *kv = eex_kv_get(list, key);
    return kv && kv->type == type ? kv : NULL;
}
