#!/usr/bin/python3
"""Where an offloaded request's time goes: joins bench/offload/adapt's --log
(edge timestamps, eex_cloud_client_last_timing) with `eex serve --log`
(recv_at, queue_ms, compute_ms, handoff_ms) on request id; both clocks are
CLOCK_MONOTONIC of one machine.

    timeline.py EDGE.jsonl[,EDGE2.jsonl...] SERVE.jsonl RTT_MS MBIT [--skip N] [--json]

(several edge logs against one server log: pooled)

Prints the medians of each step, the wire bound (RTT + bytes / bandwidth +
the reply's server_ms) and the offload time against it, and the residual
steps: edge send -> server frame complete less one-way delay and
serialisation (the request's transit beyond the path), the server's run
done -> edge reply read less one-way delay (the reply's transit, the
hand-off to the I/O thread when it writes the reply, the edge's wake-up);
medians, and means and 90th percentiles of the steps that have tails."""
import json
import statistics as st
import sys


def main():
    a = [x for x in sys.argv[1:] if not x.startswith("--")]
    skip = int(sys.argv[sys.argv.index("--skip") + 1]) if "--skip" in sys.argv else 3
    if "--skip" in sys.argv:
        a.remove(str(skip))
    edge_f, srv_f, rtt, mbit = a[0], a[1], float(a[2]), float(a[3])
    srv = {}
    for line in open(srv_f):
        r = json.loads(line)
        if r.get("compute_ms"):
            srv[r["id"]] = r
    rows = []
    lines = [line for f in edge_f.split(",") for line in open(f)]
    for line in lines:
        e = json.loads(line)
        if e["i"] < skip or e["id"] not in srv:
            continue
        s = srv[e["id"]]
        t0 = e["t_start"]
        ser = e["bytes"] * 8 / (mbit * 1000)
        computed = s["recv_at"] + s["queue_ms"] + s["compute_ms"] - t0
        rows.append({
            "offload": e["offload_ms"], "bound": rtt + ser + e["server_ms"], "ping": e["ping_ms"],
            "encode": e["encoded"], "write": e["sent"] - e["encoded"],
            "req_transit": s["recv_at"] - t0 - e["sent"], "req_extra": s["recv_at"] - t0 - e["sent"] - rtt / 2 - ser,
            "queue": s["queue_ms"], "compute": s["compute_ms"], "handoff": s["handoff_ms"],
            "server_ms": e["server_ms"],
            "bound_encode": rtt + ser + e["server_ms"] + e["encoded"],
            # from the worker's run end: with the I/O thread writing the reply
            # (before) the hand-off is in it, with the worker writing it not
            "reply_transit": e["reply_head"] - computed, "reply_extra": e["reply_head"] - computed - rtt / 2,
            # the offload time beyond this request's own PING RTT, transfer and server time
            "beyond_ping": e["offload_ms"] - e["ping_ms"] - ser - e["server_ms"],
            "decode": e["done"] - e["reply_head"],
        })
    med = {k: st.median(r[k] for r in rows) for k in rows[0]}
    med["ratio"] = st.median(r["offload"] / r["bound"] for r in rows)
    # the edge's encoding (codec + pack, in the offload time) counted in the bound
    med["ratio_encode"] = st.median(r["offload"] / r["bound_encode"] for r in rows)
    med["n"] = len(rows)
    for k in ("offload", "handoff", "queue", "req_extra", "reply_extra", "beyond_ping", "ping"):
        med["mean_" + k] = st.mean(r[k] for r in rows)
        med["p90_" + k] = sorted(r[k] for r in rows)[int(0.9 * (len(rows) - 1))]
    if "--json" in sys.argv:
        print(json.dumps(med))
        return
    for k, v in med.items():
        print(f"{k:14s} {v:8.3f}")


if __name__ == "__main__":
    main()
