#include "budget.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cli_limits cli_lim = {.input_bytes = (size_t)64 << 20, .arena_bytes = (size_t)1024 << 20};

double cli_mb(size_t bytes) { return (double)bytes / (1 << 20); }

static int parse_mb(const char *s, size_t *out)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end;
    const long v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > 1048576)
        return -1;
    *out = (size_t)v << 20;
    return 0;
}

int cli_take_limits(int *argc, char **argv, int first, char *err, size_t errlen)
{
    int k = first;
    for (int i = first; i < *argc; i++) {
        size_t *dst = !strcmp(argv[i], CLI_INPUT_FLAG)   ? &cli_lim.input_bytes
                      : !strcmp(argv[i], CLI_ARENA_FLAG) ? &cli_lim.arena_bytes
                                                         : NULL;
        if (!dst) {
            argv[k++] = argv[i];
            continue;
        }
        if (i + 1 >= *argc || parse_mb(argv[i + 1], dst)) {
            snprintf(err, errlen, "%s takes a size in MB, 1..1048576, not '%s'", argv[i],
                     i + 1 < *argc ? argv[i + 1] : "");
            return -1;
        }
        i++;
    }
    argv[k] = NULL;
    *argc = k;
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
        snprintf(err, errlen, "%s '%s' is %.1f MB; the limit is %.0f MB (%s)", what, path, cli_mb(n), cli_mb(max),
                 flag ? flag : "fixed");
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
        unsigned char extra;
        const ssize_t r = read(fd, got < n ? b + got : &extra, got < n ? n - got : 1);
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
