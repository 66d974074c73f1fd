/* The shared key of `--key FILE`: the file's bytes, all of them (a trailing
 * newline is part of the key; both sides read the same file). Refused when
 * too short to be a secret, too long to be a key file, or open to other
 * users: a key others can read authenticates nothing. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/status.h"
#include "offload.h"

eex_status eex_key_read(const char *path, uint8_t *key, size_t cap, size_t *len)
{
    if (!path || !key || !len)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_key_read: NULL argument");
    *len = 0;
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);  /* a FIFO must not block the open */
    if (fd < 0)
        return eex_fail(EEX_ERR_IO, "key '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return eex_fail(EEX_ERR_IO, "key '%s': not a regular file (%s)", path,
                        S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISDIR(st.st_mode) ? "a directory" : "a device or socket");
    }
    if (st.st_mode & S_IRWXO) {
        close(fd);
        return eex_fail(EEX_ERR_ARGUMENT, "key '%s': other users may read or write it (mode %03o); chmod o-rwx it",
                        path, (unsigned)(st.st_mode & 0777));
    }
    size_t n = 0;
    for (;;) {
        uint8_t b[512];
        const ssize_t r = read(fd, b, sizeof b);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            const int e = errno;
            close(fd);
            memset(key, 0, cap);
            return eex_fail(EEX_ERR_IO, "key '%s': %s", path, strerror(e));
        }
        if (r == 0)
            break;
        if (n + (size_t)r > EEX_KEY_MAX || n + (size_t)r > cap) {
            close(fd);
            memset(key, 0, cap);
            memset(b, 0, sizeof b);
            return eex_fail(EEX_ERR_ARGUMENT, "key '%s': longer than %d bytes", path, EEX_KEY_MAX);
        }
        memcpy(key + n, b, (size_t)r);
        memset(b, 0, sizeof b);
        n += (size_t)r;
    }
    close(fd);
    if (n < EEX_KEY_MIN) {
        memset(key, 0, cap);
        return eex_fail(EEX_ERR_ARGUMENT,
                        "key '%s': %zu bytes; a key needs at least %d (head -c 32 /dev/urandom > FILE)", path, n,
                        EEX_KEY_MIN);
    }
    *len = n;
    return EEX_OK;
}
