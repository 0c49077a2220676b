#!/usr/bin/env python3
"""Server RSS per idle subscribed seed 001 connection.

Opens N WebSocket connections to a running roomcast (200 at a time), subscribes
each to ticker AAPL (waiting for the confirmation and history), waits a second,
and reports (RSS after - RSS before) / N from /proc/PID/status. Loopback only.

    ulimit -n $(ulimit -Hn)
    python3 bench/idle_memory.py --port 8766 --pid $(pgrep -f target/release/roomcast) -n 15000

Needs `pip install websockets`. The Rust load generator's `idle` scenario
(loadtest/) measures the same thing at higher connection rates.
"""
import argparse
import asyncio
import json
import resource

import websockets


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def subscriber(url):
    ws = await websockets.connect(url, ping_interval=None, max_queue=None)
    await ws.recv()  # connection ack
    await ws.send(json.dumps({"type": "subscribe", "channel": "ticker", "ticker": "AAPL"}))
    await ws.recv()  # subscription
    await ws.recv()  # history
    return ws


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("-n", type=int, default=2000)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = f"ws://127.0.0.1:{args.port}/api/ws"
    before = rss_kib(args.pid)
    conns = []
    for start in range(0, args.n, 200):
        batch = range(start, min(args.n, start + 200))
        conns += await asyncio.gather(*[subscriber(url) for _ in batch])
    await asyncio.sleep(1)
    after = rss_kib(args.pid)
    print(json.dumps({"connections": args.n, "rss_before_kib": before, "rss_after_kib": after,
                      "kib_per_connection": round((after - before) / args.n, 2)}))
    await asyncio.gather(*[c.close() for c in conns])


asyncio.run(main())
