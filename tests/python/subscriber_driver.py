"""Drives roomcast_client.Subscriber for tests/python_subscriber.rs.

argv[1]: the Subscriber's keyword arguments as JSON ({"urls": [...], "rooms": [...], ...}).
Prints every event it yields as one JSON line ({"event": "message", "room", "seq", ...}).
Reads commands as JSON lines on stdin:

* {"cmd": "subscribe", "room", "from_seq"}, {"cmd": "unsubscribe", "room"}: each answered
  with {"event": "done", "cmd"} once the call returned;
* {"cmd": "pause"}: the loop holds the next event instead of printing it, as a busy
  application would; {"cmd": "resume"} lets it go on;
* {"cmd": "pending"}: prints {"event": "pending", "n": sub.pending};
* {"cmd": "close"}: sub.close(), then {"event": "closed"}.

When the iteration ends it prints {"event": "end", "positions": {room: [seq, epoch]}}
(or {"event": "failed", ...} first) and exits 0.
"""

import asyncio
import dataclasses
import json
import sys

from roomcast_client import Subscriber, SubscriberError


def emit(line):
    print(json.dumps(line), flush=True)


async def commands(sub, running):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        command = json.loads(line)
        if command["cmd"] == "subscribe":
            await sub.subscribe(command["room"], from_seq=command.get("from_seq"))
            emit({"event": "done", "cmd": "subscribe"})
        elif command["cmd"] == "unsubscribe":
            await sub.unsubscribe(command["room"])
            emit({"event": "done", "cmd": "unsubscribe"})
        elif command["cmd"] == "pause":
            running.clear()
        elif command["cmd"] == "resume":
            running.set()
        elif command["cmd"] == "pending":
            emit({"event": "pending", "n": sub.pending})
        elif command["cmd"] == "close":
            await sub.close()
            emit({"event": "closed"})


async def main():
    options = json.loads(sys.argv[1])
    sub = Subscriber(**options)
    running = asyncio.Event()
    running.set()
    control = asyncio.ensure_future(commands(sub, running))
    try:
        async with sub:
            async for event in sub:
                await running.wait()
                line = dataclasses.asdict(event)
                line["event"] = type(event).__name__.lower()
                emit(line)
    except SubscriberError as error:
        emit({"event": "failed", "error": str(error), "code": error.code, "status": error.status})
    emit({"event": "end", "positions": {room: list(sub.position(room) or []) for room in sub.rooms}})
    control.cancel()


asyncio.run(main())
