#!/usr/bin/env python3
"""Server memory pinned by unfinished HTTP request heads (slow-header attack).

Opens N connections to a running roomcast, sends each BYTES of header lines
without ever ending the head, waits a second, and reports the server's RSS
growth (from /proc/PID/status) and how many of the connections the server
still holds open. Loopback only.

    python3 bench/partial_headers.py --port 8788 --pid $(pgrep -f target/release/roomcast) -n 200 --bytes 360000
"""
import argparse
import json
import socket
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def still_open(sock):
    """True while the server has neither closed nor reset the connection
    (whatever it answered first)."""
    while True:
        try:
            if sock.recv(65536) == b"":
                return False
        except BlockingIOError:
            return True
        except OSError:
            return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("-n", type=int, default=200)
    p.add_argument("--bytes", type=int, default=360_000)
    args = p.parse_args()
    before = rss_kib(args.pid)
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(args.bytes // 1012)
    )
    socks = []
    for _ in range(args.n):
        s = socket.create_connection(("127.0.0.1", args.port))
        s.setblocking(False)
        try:
            s.send(head)
        except OSError:
            pass
        socks.append(s)
    time.sleep(1.0)
    after = rss_kib(args.pid)
    print(json.dumps({
        "connections": args.n,
        "bytes_each": len(head),
        "rss_growth_mb": round((after - before) / 1024, 1),
        "still_open": sum(still_open(s) for s in socks),
    }))


if __name__ == "__main__":
    main()
