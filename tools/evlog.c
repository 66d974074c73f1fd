/* A small recursive-descent JSON reader, enough for one object per line:
 * it validates the whole line (strings with escapes, numbers, nested
 * arrays and objects) and keeps the log's known keys. */
#include "evlog.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jp {
    const char *s, *p;
    char *err;
    size_t errlen;
} jp;

static int fail(jp *j, const char *what)
{
    if (!j->err[0])
        snprintf(j->err, j->errlen, "%s at column %ld", what, (long)(j->p - j->s) + 1);
    return -1;
}

static void ws(jp *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\r')
        j->p++;
}

/* A string into buf (cap bytes, truncated; NULL: skipped). */
static int string(jp *j, char *buf, size_t cap)
{
    if (*j->p != '"')
        return fail(j, "expected a string");
    j->p++;
    size_t n = 0;
    for (;;) {
        const unsigned char c = (unsigned char)*j->p;
        if (!c)
            return fail(j, "unterminated string");
        if (c < 0x20)
            return fail(j, "control character in a string");
        j->p++;
        if (c == '"')
            break;
        char out = (char)c;
        if (c == '\\') {
            const char e = *j->p++;
            if (e == 'u') {
                for (int i = 0; i < 4; i++, j->p++)
                    if (!strchr("0123456789abcdefABCDEF", *j->p) || !*j->p)
                        return fail(j, "bad \\u escape");
                out = '?';
            } else if (e && strchr("\"\\/bfnrt", e))
                out = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'b' || e == 'f' || e == 'r' ? ' ' : e;
            else
                return fail(j, "bad escape in a string");
        }
        if (buf && n + 1 < cap)
            buf[n++] = out;
    }
    if (buf && cap)
        buf[n] = 0;
    return 0;
}

static int number(jp *j, double *v)
{
    const char *q = j->p;
    if (*q == '-')
        q++;
    if (!(*q >= '0' && *q <= '9'))
        return fail(j, "expected a value");
    char *end;
    errno = 0;
    *v = strtod(j->p, &end);
    if (end == j->p || errno == ERANGE || !isfinite(*v))
        return fail(j, "bad number");
    j->p = end;
    return 0;
}

static int value(jp *j, int depth);

static int skip_container(jp *j, int depth, char close)
{
    j->p++;
    ws(j);
    if (*j->p == close) {
        j->p++;
        return 0;
    }
    for (;;) {
        ws(j);
        if (close == '}') {
            if (string(j, NULL, 0))
                return -1;
            ws(j);
            if (*j->p++ != ':')
                return j->p--, fail(j, "expected ':'");
            ws(j);
        }
        if (value(j, depth + 1))
            return -1;
        ws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p == close) {
            j->p++;
            return 0;
        }
        return fail(j, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int value(jp *j, int depth)
{
    if (depth > 32)
        return fail(j, "nested too deep");
    ws(j);
    double v;
    switch (*j->p) {
    case '{': return skip_container(j, depth, '}');
    case '[': return skip_container(j, depth, ']');
    case '"': return string(j, NULL, 0);
    case 't': if (!strncmp(j->p, "true", 4)) { j->p += 4; return 0; } break;
    case 'f': if (!strncmp(j->p, "false", 5)) { j->p += 5; return 0; } break;
    case 'n': if (!strncmp(j->p, "null", 4)) { j->p += 4; return 0; } break;
    default: return number(j, &v);
    }
    return fail(j, "expected a value");
}

/* [n, n, ...] of at most cap numbers; *count gets how many. */
static int num_array(jp *j, double *out, int cap, int *count)
{
    if (*j->p != '[')
        return fail(j, "expected an array");
    j->p++;
    *count = 0;
    ws(j);
    if (*j->p == ']') {
        j->p++;
        return 0;
    }
    for (;;) {
        ws(j);
        double v;
        if (number(j, &v))
            return -1;
        if (*count == cap)
            return fail(j, "array too long");
        out[(*count)++] = v;
        ws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p == ']') {
            j->p++;
            return 0;
        }
        return fail(j, "expected ',' or ']'");
    }
}

enum { HAVE_LABEL = 1, HAVE_CONF = 2, HAVE_PRED = 4 };

/* What one line fills in, for the member callbacks. */
typedef struct line_ctx {
    evlog *log;
    evlog_rec *r;
    int have, nconf, npred;
} line_ctx;

typedef int (*member_fn)(jp *j, const char *key, line_ctx *c);

/* An object {"key": value, ...} at j->p: member(key) reads each value
 * (`not_obj`: the error when there is no '{'). */
static int object(jp *j, const char *not_obj, member_fn member, line_ctx *c)
{
    if (*j->p != '{')
        return fail(j, not_obj);
    j->p++;
    ws(j);
    if (*j->p == '}')
        return j->p++, 0;
    for (;;) {
        char key[64];
        ws(j);
        if (string(j, key, sizeof key))
            return -1;
        ws(j);
        if (*j->p != ':')
            return fail(j, "expected ':'");
        j->p++;
        ws(j);
        if (member(j, key, c))
            return -1;
        ws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p == '}')
            return j->p++, 0;
        return fail(j, "expected ',' or '}'");
    }
}

/* The index of `name` (its first width - 1 bytes) among the *n names of a
 * table of rows `width` bytes wide, added when new; -1 when max are there. */
static int name_index(char *names, size_t width, int *n, int max, const char *name)
{
    int i = 0;
    while (i < *n && strncmp(names + (size_t)i * width, name, width - 1))
        i++;
    if (i == *n) {
        if (i == max)
            return -1;
        snprintf(names + (size_t)i * width, width, "%s", name);
        (*n)++;
    }
    return i;
}

/* A member of "answer" {"SETTING": class, ...}: under the setting's index in log->settings. */
static int answer(jp *j, const char *key, line_ctx *c)
{
    double v;
    if (number(j, &v))
        return -1;
    if (v != floor(v) || v < 0 || v > 1e6)
        return fail(j, "an answer that is not a class index");
    evlog *log = c->log;
    const int t = name_index(log->settings[0], sizeof log->settings[0], &log->n_settings, EVLOG_MAX_SETTINGS, key);
    if (t < 0)
        return fail(j, "too many threshold settings");
    c->r->answer[t] = (int)v;
    return 0;
}

/* A member of the line's object: the known keys are kept, the others only validated. */
static int member(jp *j, const char *key, line_ctx *c)
{
    double a[EEX_MAX_EXITS + 2];
    double v;
    if (!strcmp(key, "label") || !strcmp(key, "index")) {
        if (number(j, &v))
            return -1;
        if (v != floor(v) || v < 0 || v > 1e15)
            return fail(j, "expected a non-negative integer");
        if (key[0] == 'l') {
            if (v > 1e6)
                return fail(j, "label out of range");
            c->r->label = (int)v, c->have |= HAVE_LABEL;
        } else
            c->r->index = (long)v;
    } else if (!strcmp(key, "confidences") || !strcmp(key, "predictions")) {
        int n = 0;
        if (num_array(j, a, EEX_MAX_EXITS + 1, &n))
            return -1;
        for (int k = 0; k < n; k++) {
            if (key[0] == 'c') {
                if (!(a[k] >= -1e-6 && a[k] <= 1 + 1e-6))
                    return fail(j, "a confidence outside [0, 1]");
                c->r->conf[k] = (float)a[k];
            } else {
                if (a[k] != floor(a[k]) || a[k] < 0 || a[k] > 1e6)
                    return fail(j, "a prediction that is not a class index");
                c->r->pred[k] = (int)a[k];
            }
        }
        if (key[0] == 'c')
            c->nconf = n, c->have |= HAVE_CONF;
        else
            c->npred = n, c->have |= HAVE_PRED;
    } else if (!strcmp(key, "answer")) {
        return object(j, "expected an object", answer, c);
    } else if (!strcmp(key, "detector")) {
        char name[32];
        if (!strncmp(j->p, "null", 4))
            j->p += 4, c->r->context = -1;
        else {
            if (string(j, name, sizeof name))
                return -1;
            evlog *log = c->log;
            const int d = name_index(log->contexts[0], sizeof log->contexts[0], &log->n_contexts,
                                     EEX_MAX_CLASSES_DET, name);
            if (d < 0)
                return fail(j, "too many detector classes");
            c->r->context = d;
        }
    } else
        return value(j, 1);
    return 0;
}

static int line(jp *j, line_ctx *c)
{
    ws(j);
    if (object(j, "expected '{' (one JSON object per line)", member, c))
        return -1;
    ws(j);
    if (*j->p && *j->p != '\n')
        return fail(j, "text after the object");
    return 0;
}

int evlog_read(const char *path, int need_labels, evlog *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->exits = -1;
    err[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t cap = 0, rcap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while (!rc && (len = getline(&buf, &cap, f)) >= 0) {
        lineno++;
        if (len == 0 || (len == 1 && buf[0] == '\n'))
            continue;  /* blank lines are allowed */
        char what[200] = "";
        if ((size_t)out->n == rcap) {
            rcap = rcap ? rcap * 2 : 1024;
            evlog_rec *nr = realloc(out->r, rcap * sizeof *nr);
            if (!nr) {
                snprintf(err, errlen, "%s:%ld: out of memory", path, lineno);
                rc = -1;
                break;
            }
            out->r = nr;
        }
        evlog_rec *r = &out->r[out->n];
        memset(r, 0, sizeof *r);
        r->label = -1, r->context = -1, r->index = out->n;
        for (int t = 0; t < EVLOG_MAX_SETTINGS; t++)
            r->answer[t] = -1;
        jp j = {.s = buf, .p = buf, .err = what, .errlen = sizeof what};
        line_ctx c = {.log = out, .r = r};
        if (strlen(buf) != (size_t)len)
            snprintf(what, sizeof what, "a NUL byte in the line");
        else if (line(&j, &c))
            ; /* `what` says why */
        else if (!(c.have & HAVE_CONF) || !(c.have & HAVE_PRED))
            snprintf(what, sizeof what, "missing \"%s\"", c.have & HAVE_CONF ? "predictions" : "confidences");
        else if (need_labels && !(c.have & HAVE_LABEL))
            snprintf(what, sizeof what, "missing \"label\"");
        else if (c.nconf != c.npred || c.nconf < 2)
            snprintf(what, sizeof what, "%d confidences and %d predictions (need the same count, at least 2)", c.nconf,
                     c.npred);
        else if (out->exits >= 0 && c.nconf != out->exits + 1)
            snprintf(what, sizeof what, "%d confidences, earlier lines have %d", c.nconf, out->exits + 1);
        if (what[0]) {
            snprintf(err, errlen, "%s:%ld: %s", path, lineno, what);
            rc = -1;
            break;
        }
        out->exits = c.nconf - 1;
        out->n++;
    }
    if (!rc && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    }
    if (!rc && !out->n) {
        snprintf(err, errlen, "%s: no records", path);
        rc = -1;
    }
    free(buf);
    fclose(f);
    if (rc)
        evlog_free(out);
    return rc;
}

void evlog_free(evlog *log)
{
    free(log->r);
    log->r = NULL;
    log->n = 0;
}
