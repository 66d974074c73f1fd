#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "eex %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}

int cli_status(const char *cmd, eex_status st)
{
    fprintf(stderr, "eex %s: %s (%s)\n", cmd, eex_last_error(), eex_status_name(st));
    return CLI_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "eex %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'eex %s --help'.\n", cmd);
    return CLI_USAGE;
}

const char *cli_parse_split(const char *cmd, const char *s)
{
    if (!strcmp(s, "test") || !strcmp(s, "train") || !strcmp(s, "val"))
        return s;
    cli_usage(cmd, "--split takes 'test', 'train' or 'val', not '%s'", s);
    return NULL;
}

int cli_parse_int(const char *s, int lo, int hi)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    return (int)v;
}

int cli_parse_float(const char *s, double lo, double hi, double *out)
{
    if (!s || !*s || *s == ' ')
        return -1;
    errno = 0;
    char *end;
    const double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    char *end;
    const unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > UINT64_MAX)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

const char *cli_printable(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    if (!cap)
        return "";
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && n + 1 < cap; p++) {
        if (*p < 0x20 || *p == 0x7f)
            buf[n++] = '?';
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)  /* C1 controls in UTF-8 (CSI is 0xc2 0x9b) */
            buf[n++] = '?', p++;
        else
            buf[n++] = (char)*p;
    }
    buf[n] = '\0';
    return buf;
}

double cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int cli_cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cli_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cli_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int cli_parse_metric(const char *s, eex_metric *out)
{
    if (!strcmp(s, "maxprob"))
        *out = EEX_METRIC_MAXPROB;
    else if (!strcmp(s, "entropy"))
        *out = EEX_METRIC_ENTROPY;
    else
        return -1;
    return 0;
}

int cli_parse_kernels(const char *s, eex_kernels *out)
{
    if (!strcmp(s, "ref"))
        *out = EEX_KERNELS_REF;
    else if (!strcmp(s, "auto"))
        *out = EEX_KERNELS_AUTO;
    else
        return -1;
    return 0;
}
