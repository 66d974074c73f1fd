/* delayrelay: a packet-level delay line between two interfaces (test
 * tooling for bench/netem/path.sh, not part of the library).
 *
 *   delayrelay IF_A IF_B DELAY_A_TO_B_MS DELAY_B_TO_A_MS [LATER_A_TO_B LATER_B_TO_A]
 *
 * With the last two, SIGUSR1 switches to those delays (a path that changes
 * mid-run: frames already queued keep their times, new ones get the new
 * delay).
 * tc netem is not available on the kernels we run on, so the one-way delays
 * of the paper's network paths come from here: every frame that arrives on
 * IF_A leaves on IF_B DELAY_A_TO_B_MS later, and the other way round. It
 * works on whole Ethernet frames (AF_PACKET), so TCP between the two ends
 * sees the real round-trip time (slow start, ACK clocking, idle restart),
 * which a relay of byte streams would hide. PACKET_VNET_HDR carries the
 * offload metadata (GSO, partial checksums) of veth frames across, so the
 * frames need no rewriting. The rate limits are tbf qdiscs on the ends.
 * Runs until SIGTERM/SIGINT. */
#define _GNU_SOURCE 1  /* ppoll */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_VNET_HDR
#define PACKET_VNET_HDR 15
#endif
#define VNET_HDR 10        /* struct virtio_net_hdr */
#define MAX_FRAME (VNET_HDR + 65536 + 64)
#define MAX_QUEUED 65536   /* per direction; beyond that a frame is dropped (a full router queue) */

typedef struct pkt {
    double due;
    size_t len;
    unsigned char *data;
} pkt;

typedef struct line {
    int in, out;           /* sockets */
    double delay;
    pkt *q;
    size_t head, n;
    unsigned long long sent, dropped;
} line;

static volatile sig_atomic_t stop, switched;
static void on_sig(int s) { (void)s, stop = 1; }
static void on_usr1(int s) { (void)s, switched = 1; }

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int open_if(const char *name)
{
    const int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) {
        perror("socket(AF_PACKET)");
        exit(1);
    }
    const int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) {
        perror("PACKET_VNET_HDR");
        exit(1);
    }
    struct sockaddr_ll a = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)if_nametoindex(name)};
    if (!a.sll_ifindex || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "delayrelay: cannot bind to %s: %s\n", name, strerror(errno));
        exit(1);
    }
    return fd;
}

/* Takes every frame waiting on l->in into the queue. */
static void take(line *l, unsigned char *buf)
{
    for (;;) {
        struct sockaddr_ll from;
        socklen_t fl = sizeof from;
        const ssize_t r = recvfrom(l->in, buf, MAX_FRAME, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (r <= 0)
            return;
        if (from.sll_pkttype == PACKET_OUTGOING)
            continue;  /* our own transmissions on this interface */
        if (l->n == MAX_QUEUED) {
            l->dropped++;
            continue;
        }
        pkt *p = &l->q[(l->head + l->n) % MAX_QUEUED];
        p->data = malloc((size_t)r);
        if (!p->data) {
            l->dropped++;
            continue;
        }
        memcpy(p->data, buf, (size_t)r);
        p->len = (size_t)r;
        p->due = now_ms() + l->delay;
        l->n++;
    }
}

/* Sends every frame whose time has come; returns ms to the next one (or 1000). */
static double release(line *l)
{
    const double t = now_ms();
    while (l->n) {
        pkt *p = &l->q[l->head];
        if (p->due > t)
            return p->due - t;
        if (send(l->out, p->data, p->len, 0) < 0)
            l->dropped++;
        else
            l->sent++;
        free(p->data);
        l->head = (l->head + 1) % MAX_QUEUED;
        l->n--;
    }
    return 1000.0;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: delayrelay IF_A IF_B DELAY_A_TO_B_MS DELAY_B_TO_A_MS [LATER_A_TO_B LATER_B_TO_A]\n");
        return 2;
    }
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);  /* no SA_RESTART: ppoll returns EINTR */
    const int a = open_if(argv[1]), b = open_if(argv[2]);
    line ab = {.in = a, .out = b, .delay = atof(argv[3]), .q = calloc(MAX_QUEUED, sizeof(pkt))};
    line ba = {.in = b, .out = a, .delay = atof(argv[4]), .q = calloc(MAX_QUEUED, sizeof(pkt))};
    unsigned char *buf = malloc(MAX_FRAME);
    if (!ab.q || !ba.q || !buf)
        return 1;
    fprintf(stderr, "delayrelay: %s -> %s %.2f ms, %s -> %s %.2f ms\n", argv[1], argv[2], ab.delay, argv[2], argv[1],
            ba.delay);
    while (!stop) {
        if (switched == 1 && argc == 7) {
            switched = 2;
            ab.delay = atof(argv[5]), ba.delay = atof(argv[6]);
            fprintf(stderr, "delayrelay: now %.2f / %.2f ms\n", ab.delay, ba.delay);
        }
        const double w1 = release(&ab), w2 = release(&ba);
        double w = w1 < w2 ? w1 : w2;
        struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
        /* ppoll: a timeout in nanoseconds keeps the delay accurate well below 1 ms */
        const struct timespec ts = {.tv_sec = (time_t)(w / 1e3), .tv_nsec = (long)((w - (double)(time_t)(w / 1e3) * 1e3) * 1e6)};
        const int r = ppoll(p, 2, &ts, NULL);
        if (r < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN)
            take(&ab, buf);
        if (p[1].revents & POLLIN)
            take(&ba, buf);
    }
    fprintf(stderr, "delayrelay: %llu/%llu frames relayed, %llu/%llu dropped\n", ab.sent, ba.sent, ab.dropped, ba.dropped);
    return 0;
}
