#!/usr/bin/env python3
"""Times each WebSocket opening handshake of a paced series of new
connections, one at a time, and prints the slowest with their index and
start time: a stall in the server's accept path shows as a few connections
that took milliseconds while the rest took a tenth of one.

    python3 bench/connect_probe.py --port 8000 -n 1000 --rate 2000

Each connection sends the RFC 6455 upgrade request for `--path` and waits
for the end of the response head; connections are kept open until the end,
so the server's descriptor count grows as it would under a real ramp.
Loopback only.
"""

import argparse
import socket
import time

REQUEST = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-n", type=int, default=1000, help="connections [1000]")
    parser.add_argument("--rate", type=float, default=2000, help="connections per second [2000]")
    parser.add_argument("--path", default="/api/ws", help="WebSocket path [/api/ws]")
    parser.add_argument("--show", type=int, default=10, help="slowest to print [10]")
    args = parser.parse_args()

    request = REQUEST.format(path=args.path).encode()
    held = []
    times = []  # (ms, index, seconds since start)
    start = time.perf_counter()
    for i in range(args.n):
        t0 = time.perf_counter()
        conn = socket.create_connection(("127.0.0.1", args.port))
        conn.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                raise SystemExit(f"connection {i}: closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"connection {i}: {head.splitlines()[0]!r}")
        times.append(((time.perf_counter() - t0) * 1000, i, t0 - start))
        held.append(conn)
        while time.perf_counter() - start < (i + 1) / args.rate:
            pass
    ordered = sorted(t[0] for t in times)
    print(
        f"{args.n} handshakes: median {ordered[len(ordered) // 2]:.3f} ms, "
        f"p99 {ordered[int(len(ordered) * 0.99) - 1]:.3f} ms, max {ordered[-1]:.3f} ms"
    )
    print("slowest:", ", ".join(f"{ms:.2f} ms (#{i} at {at:.3f} s)" for ms, i, at in sorted(times, reverse=True)[: args.show]))
    for conn in held:
        conn.close()


if __name__ == "__main__":
    main()
