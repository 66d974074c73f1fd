/* The split planner's cost model and the edge's path estimate
 * (include/eex.h, "split planner"; docs/architecture.md, "Choosing the cut").
 * Pure arithmetic: the numbers come from the caller (`eex plan` measures
 * them or reads profiles; the auto mode of the edge updates them from its
 * own requests). */
#include "eex.h"

double eex_plan_request_ms(const eex_plan_costs *k, int cut, int wire, const eex_path_model *p)
{
    if (!k || !p || cut < 0 || cut >= k->cuts || wire < 1 || wire > EEX_WIRE_COUNT || !(p->mbit > 0))
        return -1.0;
    const double xfer = k->bytes[cut][wire] * 8.0 / (p->mbit * 1000.0);  /* Mbit/s = 1000 bits per ms */
    return k->edge_ms[cut] + k->codec_ms[cut][wire] + p->rtt_ms + xfer + k->cloud_ms[cut];
}

double eex_plan_expected_ms(const eex_plan_costs *k, int cut, int wire, const eex_path_model *p)
{
    const double req = eex_plan_request_ms(k, cut, wire, p);
    if (req < 0)
        return req;
    double early = 0.0, share = 0.0;
    const int e = k->cut_exit[cut];
    for (int x = 1; x <= k->exits && x <= EEX_MAX_EXITS; x++) {
        if (x > e)
            break;  /* exits after the cut are the cloud's: those images offload */
        early += k->exit_share[x] * k->exit_ms[x];
        share += k->exit_share[x];
    }
    if (share > 1.0)
        share = 1.0;
    return early + (1.0 - share) * req;
}

double eex_plan_best(const eex_plan_costs *k, const eex_path_model *p, unsigned wire_mask, int *cut, int *wire)
{
    double best = -1.0;
    if (!k)
        return best;
    for (int c = 0; c < k->cuts && c < EEX_PLAN_MAX_CUTS; c++)
        for (int w = 1; w <= EEX_WIRE_COUNT; w++) {
            if (!(wire_mask >> w & 1u) || !(k->bytes[c][w] > 0))
                continue;
            const double t = eex_plan_expected_ms(k, c, w, p);
            if (t >= 0 && (best < 0 || t < best)) {
                best = t;
                if (cut)
                    *cut = c;
                if (wire)
                    *wire = w;
            }
        }
    return best;
}

/* Exponentially weighted: 1/4 of each new sample (for the RTT, of the
 * median of the last three), so a changed path is followed within a few
 * requests and one outlier moves little (the RTT: not at all; on the shared
 * 2-core test machine one request's PING now and then took 50 ms on a 10 ms
 * path, and moved the estimate past 20 ms). */
#define GAIN 0.25

void eex_path_est_update(eex_path_est *e, const eex_offload_info *i, double rtt_ms)
{
    if (!e || !i || !i->offloaded || i->degraded || !(i->offload_ms > 0))
        return;
    const double net = i->offload_ms - (i->server_ms > 0 ? i->server_ms : 0.0);
    const double bytes = (double)(i->bytes_sent + i->bytes_received);
    double rtt = rtt_ms;
    if (!(rtt > 0) && i->connects)
        return;  /* the handshake is in the reply time, and no probe: nothing to learn */
    if (!(rtt > 0)) {  /* no probe: the reply time less the transfer at the current estimate */
        rtt = net - (e->mbit > 0 ? bytes * 8.0 / (e->mbit * 1000.0) : 0.0);
        rtt = rtt < 0.01 ? 0.01 : rtt;
    }
    /* what the bytes took beyond one round trip; floored so one fast reply
     * cannot claim an unbounded rate */
    double xfer = net - rtt;
    const double floor_ms = bytes * 8.0 / (10000.0 * 1000.0);  /* 10 Gbit/s */
    xfer = xfer < floor_ms ? floor_ms : xfer;
    const double mbit = bytes * 8.0 / (xfer * 1000.0);
    /* a request that opened its connection also paid the handshake, and its
     * PING met a server still accepting: it teaches nothing (its RTT is kept
     * for the log until the first real sample replaces it) */
    if (i->connects) {
        if (!e->samples)
            e->rtt_ms = rtt;
        return;
    }
    /* the median of this sample and the two before it (while there are
     * fewer, the sample itself) */
    double med = rtt;
    if (e->samples >= 2) {
        const double a = e->last_rtt[0], b = e->last_rtt[1];
        const double lo = a < b ? a : b, hi = a < b ? b : a;
        med = rtt < lo ? lo : rtt > hi ? hi : rtt;
    }
    e->last_rtt[0] = e->last_rtt[1];
    e->last_rtt[1] = rtt;
    e->rtt_ms = e->samples ? e->rtt_ms + GAIN * (med - e->rtt_ms) : rtt;
    e->samples++;
    if (!(e->mbit > 0))
        e->mbit = mbit;
    else {  /* rates average as times: the time per byte is what adds up */
        const double inv = 1.0 / e->mbit + GAIN * (1.0 / mbit - 1.0 / e->mbit);
        e->mbit = 1.0 / inv;
    }
}

void eex_autoplan_init(eex_autoplan *a, const eex_plan_costs *k, unsigned wires)
{
    if (!a || !k)
        return;
    a->costs = *k;
    for (int c = 0; c < EEX_PLAN_MAX_CUTS; c++)
        a->cloud_base[c] = k->cloud_ms[c];
    a->cloud_extra = 0.0;
    a->path = (eex_path_est){0};
    a->wires = wires;
    a->cut = -1, a->wire = 0;
    a->predicted_ms = 0;
    a->changes = 0;
}

/* a new choice must be predicted at least 1% (and 0.2 ms) faster: estimates
 * jitter, and a plan that flaps costs more than it gains */
#define SWITCH 0.99
#define MIN_GAIN 0.2

void eex_autoplan_choose(eex_autoplan *a, int *cut, int *wire)
{
    if (!a)
        return;
    const eex_path_model p = {.rtt_ms = a->path.samples ? a->path.rtt_ms : 0.0,
                              .mbit = a->path.samples && a->path.mbit > 0 ? a->path.mbit : 100.0};
    int c = 0, w = EEX_WIRE_F32;
    const double best = eex_plan_best(&a->costs, &p, a->wires, &c, &w);
    if (best >= 0) {
        const double cur = a->cut >= 0 ? eex_plan_expected_ms(&a->costs, a->cut, a->wire, &p) : -1;
        const double margin = (1.0 - SWITCH) * cur > MIN_GAIN ? (1.0 - SWITCH) * cur : MIN_GAIN;
        if (a->cut < 0 || cur < 0 || best < cur - margin) {
            if (a->cut >= 0 && (c != a->cut || w != a->wire))
                a->changes++;
            a->cut = c, a->wire = w;
        }
        a->predicted_ms = eex_plan_request_ms(&a->costs, a->cut, a->wire, &p);
    }
    if (cut)
        *cut = a->cut < 0 ? 0 : a->cut;
    if (wire)
        *wire = a->wire ? a->wire : EEX_WIRE_F32;
}

void eex_autoplan_update(eex_autoplan *a, int cut, int wire, const eex_offload_info *i, double rtt_ms)
{
    if (!a || !i || cut < 0 || cut >= a->costs.cuts || wire < 1 || wire > EEX_WIRE_COUNT)
        return;
    if (!i->offloaded || i->degraded)
        return;
    eex_plan_costs *k = &a->costs;
    /* the edge's own encoding is in offload_ms: not the path's */
    eex_offload_info j = *i;
    j.offload_ms -= 0.5 * k->codec_ms[cut][wire];
    eex_path_est_update(&a->path, &j, rtt_ms);
    if (i->server_ms > 0) {
        a->cloud_extra += GAIN * (i->server_ms - a->cloud_base[cut] - a->cloud_extra);
        for (int c = 0; c < k->cuts; c++)
            k->cloud_ms[c] = a->cloud_base[c] + a->cloud_extra;
    }
    if (i->bytes_sent > 0)
        k->bytes[cut][wire] += GAIN * ((double)i->bytes_sent - k->bytes[cut][wire]);
}
