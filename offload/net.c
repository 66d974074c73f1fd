/* The clock and the socket helpers of the edge client and the cloud server:
 * CLOCK_MONOTONIC in milliseconds, non-blocking sockets with TCP_NODELAY,
 * the congestion control both ends default to, the server's listening
 * socket, and the client's send, receive and connect loops, each a poll()
 * bounded by an absolute deadline. Here so that client.c and server.c keep
 * only their protocol and state. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../base/status.h"
#include "offload.h"

double eex_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int eex_set_nonblock(int fd)
{
    const int fl = fcntl(fd, F_GETFL, 0);
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

int eex_sock_prepare(int fd)
{
    if (eex_set_nonblock(fd))
        return -1;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  /* small frames go at once */
    return 0;
}

void eex_sock_default_cc(int fd)
{
    if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5) < 0)
        setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4);
}

void eex_sock_cc_name(int fd, char *name, size_t cap)
{
    char got[16] = "";
    socklen_t gl = sizeof got - 1;
    if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, got, &gl) < 0)
        gl = 0;
    got[gl < sizeof got ? gl : sizeof got - 1] = 0;
    snprintf(name, cap, "%s", got);
}

double eex_sock_rtt_ms(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return 0.0;
    return ti.tcpi_rtt / 1000.0;
}

eex_status eex_listen(const char *host, int port, int *fd, int *bound)
{
    *fd = -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    const int gai = getaddrinfo(host, ps, &hints, &res);
    if (gai || !res)
        return eex_fail(EEX_ERR_ARGUMENT, "serve: cannot resolve '%s': %s", host, gai ? gai_strerror(gai) : "no address");
    eex_status st = EEX_OK;
    *fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (*fd >= 0) {
        setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* accepted connections inherit it: a pacing congestion control
         * (BBR) held a RESULT behind the PONG sent just before it by PONG
         * bytes / its app-limited pacing rate (5 ms on a 10 ms path);
         * docs/results/offload.md */
        eex_sock_default_cc(*fd);
    }
    if (*fd < 0 || bind(*fd, res->ai_addr, res->ai_addrlen) < 0 || listen(*fd, 128) < 0)
        st = eex_fail(EEX_ERR_IO, "serve: cannot listen on %s:%d: %s", host, port, strerror(errno));
    freeaddrinfo(res);
    if (st)
        return st;
    eex_set_nonblock(*fd);
    struct sockaddr_storage a;
    socklen_t al = sizeof a;
    getsockname(*fd, (struct sockaddr *)&a, &al);
    *bound = ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port : ((struct sockaddr_in *)&a)->sin_port);
    return EEX_OK;
}

/* Milliseconds left to the deadline for poll(): at least 0, rounded up. */
static int left_ms(double deadline)
{
    const double l = deadline - eex_now_ms();
    return l <= 0 ? 0 : l > 1e9 ? 1000000000 : (int)ceil(l);
}

int eex_connect_by(int fd, const struct sockaddr *addr, socklen_t len, double deadline)
{
    if (connect(fd, addr, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r;
    do
        r = poll(&p, 1, left_ms(deadline));
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 1;
    int err = 0;
    socklen_t el = sizeof err;
    if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
        errno = r < 0 ? errno : err ? err : errno;
        return -1;
    }
    return 0;
}

int eex_send_all(int fd, const uint8_t *p, size_t n, double deadline)
{
    while (n) {
        const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w, n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd q = {.fd = fd, .events = POLLOUT};
            if (poll(&q, 1, left_ms(deadline)) == 0)
                return 1;
            continue;
        }
        if (w == 0)
            errno = 0;
        return -1;
    }
    return 0;
}

int eex_recv_all(int fd, uint8_t *p, size_t n, double deadline, size_t *got)
{
    while (n) {
        const ssize_t r = recv(fd, p, n, 0);
        if (r > 0) {
            p += r, n -= (size_t)r, *got += (size_t)r;
            continue;
        }
        if (r == 0) {
            errno = 0;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd q = {.fd = fd, .events = POLLIN};
            if (poll(&q, 1, left_ms(deadline)) == 0)
                return 1;
            continue;
        }
        return -1;
    }
    return 0;
}
