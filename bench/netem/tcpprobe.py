#!/usr/bin/python3
"""A bare TCP request/reply probe for the emulated paths (test tooling): how
long a frame of SIZE bytes and a 100-byte reply take, with a chosen
congestion control, to tell TCP's share of an offload's time from eex's.

    tcpprobe.py server PORT
    tcpprobe.py client HOST PORT SIZE N GAP_MS [CC]

The client sends N frames (a 4-byte length, then SIZE bytes) on one
connection, GAP_MS apart, with TCP_NODELAY and, when CC is given, that
congestion control set before connect (after connect a pacing module's
pacing would stay on). Prints the first request's time and the median, min
and max of the others, in ms.
"""
import socket
import statistics
import struct
import sys
import time


def serve(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(8)
    while True:
        c, _ = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                h = b""
                while len(h) < 4:
                    d = c.recv(4 - len(h))
                    if not d:
                        raise EOFError
                    h += d
                n, got = struct.unpack("<I", h)[0], 0
                while got < n:
                    d = c.recv(min(65536, n - got))
                    if not d:
                        raise EOFError
                    got += len(d)
                c.sendall(b"x" * 100)
        except (EOFError, ConnectionError):
            c.close()


def client(host, port, size, n, gap, cc):
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if cc:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
    s.connect((host, port))
    msg = struct.pack("<I", size) + b"y" * size
    ts = []
    for _ in range(n):
        t = time.monotonic()
        s.sendall(msg)
        got = 0
        while got < 100:
            got += len(s.recv(100 - got))
        ts.append((time.monotonic() - t) * 1e3)
        time.sleep(gap / 1e3)
    rest = ts[1:] or ts
    print(f"{size} bytes, {cc or 'system cc'}, gap {gap:g} ms: first {ts[0]:.1f} median {statistics.median(rest):.1f} "
          f"min {min(rest):.1f} max {max(rest):.1f}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["server"] and len(a) == 2:
        serve(int(a[1]))
    elif a[:1] == ["client"] and len(a) in (6, 7):
        client(a[1], int(a[2]), int(a[3]), int(a[4]), float(a[5]), a[6] if len(a) == 7 else "")
    else:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
