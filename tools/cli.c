#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

const char *cli_file_kind(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFREG: return "a regular file";
    default: return "not a regular file";
    }
}

int cli_read_file(const char *path, const char *what, size_t max, const char *flag, unsigned char **buf,
                  size_t *size, char *err, size_t errlen)
{
    *buf = NULL;
    *size = 0;
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "cannot stat %s '%s': %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s '%s' is %s, not a regular file", what, path, cli_file_kind(sb.st_mode));
        close(fd);
        return -1;
    }
    const size_t n = (size_t)sb.st_size;
    if ((uint64_t)sb.st_size > (uint64_t)max) {
        snprintf(err, errlen, "%s '%s' is %.1f MB; the limit is %.0f MB (%s)", what, path, (double)sb.st_size / 1e6,
                 (double)max / (1 << 20), flag ? flag : "fixed");
        close(fd);
        return -1;
    }
    unsigned char *b = malloc(n ? n : 1);
    if (!b) {
        snprintf(err, errlen, "%s '%s': out of memory for %zu bytes", what, path, n);
        close(fd);
        return -1;
    }
    size_t got = 0;
    for (;;) {  /* one byte past the size: a file that grew is refused too */
        const size_t want = got < n ? n - got : 1;
        unsigned char extra;
        const ssize_t r = read(fd, got < n ? b + got : &extra, want);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s '%s': %s", what, path, strerror(errno));
            break;
        }
        if (r == 0 && got == n) {
            close(fd);
            *buf = b;
            *size = n;
            return 0;
        }
        if (r == 0 || got == n) {
            snprintf(err, errlen, "%s '%s' changed size while it was read (%zu bytes, then %s)", what, path, n,
                     r == 0 ? "fewer" : "more");
            break;
        }
        got += (size_t)r;
    }
    free(b);
    close(fd);
    return -1;
}
