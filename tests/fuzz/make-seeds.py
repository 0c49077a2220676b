#!/usr/bin/env python3
"""Writes the committed seed corpus of roomcast's fuzz targets,
tests/fuzz/corpus/<target>/seed-*: real frames, real handshakes, the seeds'
example messages and bodies (../shared/seeds/000 and 001), the native
protocol's examples (docs/protocol-v1.md) and edge cases. Run it again after
changing it; the files are small and committed, libFuzzer's own corpus
growth is not (see .gitignore).

    python3 tests/fuzz/make-seeds.py
"""

import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# Separates client messages in the dialect targets' inputs; 0xFE before a
# message sends it as binary (tests/fuzz/src/lib.rs).
SEP = b"\xff"
BINARY = b"\xfe"


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, "seed-" + name), "wb") as f:
        f.write(data)


def j(value):
    return json.dumps(value).encode()


def nested(prefix, depth):
    """`prefix` (an object's opening up to a value) closed around arrays
    nested so that the text is `depth` arrays and objects deep."""
    return prefix + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


# Deepest nesting each parser reads (tests/fuzz/src/lib.rs): simd-json's
# limit for the dialects, serde_json's for HTTP bodies.
DIALECT_MAX_DEPTH = 1024
HTTP_MAX_DEPTH = 127


def client_frame(fin, opcode, payload, mask=b"\x12\x34\x56\x78", length=None):
    """A masked client frame; `length` forces a length form ('16' or '64')."""
    out = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if length is None and n < 126:
        out.append(0x80 | n)
    elif length == "16" or (length is None and n <= 0xFFFF):
        out.append(0x80 | 126)
        out += struct.pack(">H", n)
    else:
        out.append(0x80 | 127)
        out += struct.pack(">Q", n)
    out += mask
    out += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(out)


def frame_reader():
    # Raw mode: [even mode byte][limit index][chunk-1][read-ahead] stream.
    # Limit indexes: 5 -> 1000 bytes, 8 -> 1 MiB, 0 -> 0 bytes.
    def raw(name, stream, limit=5, chunk=6, ahead=0):
        write("frame_reader", "raw-" + name, bytes([0, limit, chunk, ahead]) + stream)

    hello = client_frame(True, 0x1, b"hello")
    raw("text-hello", hello)
    raw("text-hello-read-ahead", hello, ahead=4)
    raw("text-hello-byte-by-byte", hello, chunk=0)
    raw("subscribe", client_frame(True, 0x1, j({"type": "subscribe", "channel": "ticker", "ticker": "AAPL"})))
    raw("binary", client_frame(True, 0x2, bytes(range(256)), length="16"), limit=8)
    raw("ping-pong-close", client_frame(True, 0x9, b"p") + client_frame(True, 0xA, b"")
        + client_frame(True, 0x8, struct.pack(">H", 1000) + b"bye"))
    raw("fragmented-with-ping", client_frame(False, 0x1, b"he") + client_frame(True, 0x9, b"")
        + client_frame(False, 0x0, b"ll") + client_frame(True, 0x0, b"o"))
    raw("length-126", client_frame(True, 0x1, b"a" * 126))
    # A 64-bit length (70000 bytes) over the 1000-byte limit: refused from
    # the header, so the file stays small.
    raw("length-64-bit-too-large", client_frame(True, 0x2, b"\0" * 70000)[:14])
    raw("too-large", client_frame(True, 0x1, b"x" * 1001))
    raw("zero-limit", client_frame(True, 0x1, b"x"), limit=0)
    raw("unmasked", b"\x81\x02hi")
    raw("reserved-bit", bytes([0xC1]) + client_frame(True, 0x1, b"hi")[1:])
    raw("unknown-opcode", client_frame(True, 0x3, b"hi"))
    raw("fragmented-ping", client_frame(False, 0x9, b"p"))
    raw("long-ping", client_frame(True, 0x9, b"p" * 126))
    raw("non-minimal-16", client_frame(True, 0x1, b"hi", length="16"))
    raw("non-minimal-64", client_frame(True, 0x1, b"hi" * 100, length="64"))
    raw("top-bit-length", b"\x82\xff" + struct.pack(">Q", (1 << 63) | 5) + b"\0\0\0\0")
    raw("truncated", hello[:-2])
    # Round-trip mode: [odd mode byte] then arbitrary structure.
    write("frame_reader", "round-trip-a", b"\x01\x07" + bytes(range(64)))
    write("frame_reader", "round-trip-b", b"\x01\x00" + b"\x01\x01\x05hello\x12\x34\x56\x78" * 4)


def message_assembler():
    # [limit index] then frames, each [fin: low bit][opcode: 0 text, 1 binary,
    # 2 continuation][payload length][payload] (arbitrary's encoding, roughly:
    # the fuzzer sorts out the rest).
    def frames(name, limit, items):
        out = bytearray([limit])
        for fin, opcode, payload in items:
            out += bytes([1 if fin else 0, opcode, len(payload)]) + payload
        write("message_assembler", name, bytes(out))

    euro = "\u20ac".encode()
    frames("text-split-character", 4, [(False, 0, euro[:1]), (False, 2, euro[1:2]), (True, 2, euro[2:])])
    frames("binary-fragments", 4, [(False, 1, b"ab"), (True, 2, b"\xff\x00")])
    frames("whole-messages", 5, [(True, 0, b"hi"), (True, 1, b"\x80")])
    frames("continuation-first", 4, [(True, 2, b"x")])
    frames("text-inside-message", 4, [(False, 0, b"a"), (True, 0, b"b")])
    frames("too-big", 2, [(False, 1, b"12345678"), (True, 2, b"9")])
    frames("invalid-text", 4, [(False, 0, b"ok"), (True, 2, b"\xc0\x80")])


def handshake():
    def request(name, lines):
        write("handshake", name, "\r\n".join(lines) + "\r\n\r\n")

    rfc = [
        "GET /chat HTTP/1.1",
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Origin: http://example.com",
        "Sec-WebSocket-Protocol: chat, superchat",
        "Sec-WebSocket-Version: 13",
    ]
    request("rfc6455-example", rfc)
    request("browser", [
        "GET /api/ws?user_id=user123 HTTP/1.1",
        "Host: localhost:8000",
        "Connection: keep-alive, Upgrade",
        "Pragma: no-cache",
        "Cache-Control: no-cache",
        "User-Agent: Mozilla/5.0",
        "Upgrade: websocket",
        "Origin: http://localhost:3000",
        "Sec-WebSocket-Version: 13",
        "Accept-Encoding: gzip, deflate, br",
        "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    ])
    request("python-websockets", [
        "GET /ws/modeldata-stream?points=100 HTTP/1.1",
        "Host: 127.0.0.1:8000",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: 9bQuZIN64KrRsqgxuR1CxQ==",
        "Sec-WebSocket-Version: 13",
        "User-Agent: Python/3.11 websockets/12.0",
    ])
    request("http-1.0", [line.replace("HTTP/1.1", "HTTP/1.0") for line in rfc])
    request("no-host", [line for line in rfc if not line.startswith("Host")])
    request("post", ["POST /chat HTTP/1.1"] + rfc[1:])
    request("version-8", [line.replace("Version: 13", "Version: 8") for line in rfc])
    request("two-versions", rfc + ["Sec-WebSocket-Version: 13"])
    request("two-keys", rfc + ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])
    request("key-not-16-bytes", [line.replace("dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAAAA") for line in rfc])
    request("key-trailing-bits", [line.replace("ZQ==", "ZR==") for line in rfc])
    request("no-upgrade-token", [line.replace("Upgrade: websocket", "Upgrade: h2c") for line in rfc])
    request("connection-close", [line.replace("Connection: Upgrade", "Connection: close") for line in rfc])
    request("lowercase-headers", [rfc[0]] + [line.lower() for line in rfc[1:]])
    request("split-connection-headers", rfc + ["Connection: keep-alive", "Upgrade: foo, WebSocket"])


def seed001():
    messages = [
        {"type": "subscribe", "channel": "ticker", "ticker": "AAPL"},
        {"type": "subscribe", "channel": "patterns"},
        {"type": "subscribe", "channel": "alerts"},
        {"type": "subscribe", "channel": "market_status"},
        {"type": "ping"},
        {"type": "unsubscribe", "channel": "ticker", "ticker": "AAPL"},
    ]
    write("seed001_messages", "doc-session", SEP.join(j(m) for m in messages))
    for i, m in enumerate(messages):
        write("seed001_messages", "doc-message-%d" % i, j(m))
    write("seed001_messages", "subscribe-twice", SEP.join([j(messages[0])] * 2))
    write("seed001_messages", "ticker-normalised", j({"type": "subscribe", "channel": "ticker", "ticker": " brk.b "}))
    write("seed001_messages", "many-tickers", SEP.join(
        j({"type": "subscribe", "channel": "ticker", "ticker": t})
        for t in ["AAPL", "MSFT", "TSLA", "^GSPC", "ES=F", "BTC-USD", "BRK.B", "NVDA", "AMD", "GOOG"]))
    for name, text in [
        ("bad-json", b"{not json"),
        ("array", b"[1,2]"),
        ("no-type", j({"channel": "patterns"})),
        ("type-number", j({"type": 7})),
        ("unknown-type", j({"type": "invalid"})),
        ("no-channel", j({"type": "subscribe"})),
        ("unknown-channel", j({"type": "subscribe", "channel": "news"})),
        ("no-ticker", j({"type": "subscribe", "channel": "ticker"})),
        ("bad-ticker", j({"type": "subscribe", "channel": "ticker", "ticker": "A B"})),
        ("unicode-channel", j({"type": "subscribe", "channel": "t\u00e9st\u2603" * 30})),
        ("binary-ping", BINARY + j({"type": "ping"})),
        ("binary-garbage", b"\x80\x81\x00"),
        ("empty", b""),
        # The limits of "JSON": numbers must be finite as f64, nesting at
        # most DIALECT_MAX_DEPTH deep.
        ("number-out-of-range", b'{"type":"ping","x":1e400}'),
        ("nesting-at-limit", nested(b'{"type":"ping","x":', DIALECT_MAX_DEPTH)),
        ("nesting-beyond-limit", nested(b'{"type":"ping","x":', DIALECT_MAX_DEPTH + 1)),
        ("lone-surrogate", b'{"type":"ping","x":"\\ud800"}'),
    ]:
        write("seed001_messages", name, text)


def native():
    messages = [
        {"type": "subscribe", "rooms": ["ticker:AAPL", "patterns",
                                        {"room": "ticker:MSFT", "seq": 41, "epoch": 5735203485316}]},
        {"type": "unsubscribe", "rooms": ["patterns"]},
        {"type": "ping"},
        {"type": "close"},
    ]
    write("native_messages", "doc-session", SEP.join(j(m) for m in messages))
    for i, m in enumerate(messages):
        write("native_messages", "doc-message-%d" % i, j(m))
    # Resume points against the recording link's history (seq 5..9, epoch 7).
    resumes = [{"room": "alerts", "seq": s, "epoch": 7} for s in (0, 2, 4, 5, 6, 9, 12)]
    resumes += [{"room": "patterns", "seq": 3}, {"room": "market_status", "seq": 3, "epoch": 6}]
    write("native_messages", "resumes", SEP.join(
        j({"type": "subscribe", "rooms": [r]}) + SEP + j({"type": "unsubscribe", "rooms": [r["room"]]})
        for r in resumes))
    write("native_messages", "subscription-limit", j({"type": "subscribe", "rooms": [
        "ticker:T%d" % i for i in range(12)]}))
    write("native_messages", "already-subscribed", SEP.join([j({"type": "subscribe", "rooms": ["alerts"]})] * 2))
    for name, value in [
        ("bad-json", b"{"),
        ("not-object", b"42"),
        ("rooms-not-array", j({"type": "subscribe", "rooms": "patterns"})),
        ("too-many-rooms", j({"type": "subscribe", "rooms": ["patterns"] * 101})),
        ("bad-rooms", j({"type": "subscribe", "rooms": [1, {"room": 2}, {"room": "x"}, "ticker:", "modeldata",
                                                         {"room": "alerts", "seq": -1},
                                                         {"room": "alerts", "seq": 1, "epoch": "e"}]})),
        ("unsubscribe-objects", j({"type": "unsubscribe", "rooms": [{"room": "alerts"}, "nope", 3]})),
        ("unknown-type", j({"type": "hello"})),
        ("binary-subscribe", BINARY + j({"type": "subscribe", "rooms": ["alerts"]})),
        ("seq-bounds", j({"type": "subscribe", "rooms": [
            {"room": "alerts", "seq": 2**53 - 1, "epoch": 2**53 - 1},
            {"room": "patterns", "seq": 2**53},
            {"room": "market_status", "seq": 1, "epoch": 2**53}]})),
        ("huge-seq", j({"type": "subscribe", "rooms": [{"room": "alerts", "seq": 18446744073709551615,
                                                         "epoch": 18446744073709551615}]})),
        ("number-out-of-range", b'{"type":"ping","x":1e400}'),
        ("nesting-at-limit", nested(b'{"type":"ping","x":', DIALECT_MAX_DEPTH)),
        ("nesting-beyond-limit", nested(b'{"type":"ping","x":', DIALECT_MAX_DEPTH + 1)),
    ]:
        write("native_messages", name, value)


def seed000():
    write("seed000_messages", "hello", b"hello")
    write("seed000_messages", "json", j({"type": "ping"}))
    write("seed000_messages", "several", SEP.join([b"a", b"", "\u00e9\u2603".encode(), b"\"quoted\" \\ \n"]))
    write("seed000_messages", "binary-invalid-utf8", b"\xc3\x28\xa0\xa1")
    write("seed000_messages", "binary-marked", BINARY + b"text sent as binary")


def publish_bodies():
    price = {"ticker": "AAPL", "price": 150.25, "change": 2.50, "change_percent": 1.69,
             "volume": 75000000, "high": 151.00, "low": 148.50, "open_price": 149.00}
    pattern = {"ticker": "AAPL", "pattern_type": "VCP", "score": 8.5, "entry_price": 150.50,
               "stop_price": 145.00, "target_price": 165.00, "risk_reward_ratio": 2.64,
               "message": "VCP pattern detected with high score", "timestamp": "2025-11-18T10:30:00Z"}
    alert = {"ticker": "AAPL", "alert_type": "breakout", "trigger_price": 150.00, "current_price": 150.25,
             "message": "AAPL breaking out at $150.25 (target: $150.00)", "timestamp": "2025-11-18T10:30:00Z"}
    status = {"status": "open", "next_open": None, "next_close": "2025-11-18T21:00:00Z",
              "timestamp": "2025-11-18T14:30:00Z"}
    new_alert = {"ticker": "AAPL", "alert_type": "above", "trigger_price": 155, "user_id": "user123"}
    shapes = [price, pattern, alert, status, new_alert]
    names = ["price", "pattern", "alert", "market-status", "new-alert"]
    for shape, (name, body) in enumerate(zip(names, shapes)):
        write("publish_bodies", name, bytes([shape]) + j(body))
        write("publish_bodies", name + "-minimal", bytes([shape]) + j({k: body[k] for k in list(body)[:2]}))
        write("publish_bodies", name + "-wrong-type", bytes([shape]) + j({**body, list(body)[1]: "x"}))
    write("publish_bodies", "price-open-alias", b"\x00" + j({"ticker": "aapl", "price": 1, "open": 2}))
    write("publish_bodies", "price-trailing-garbage", b"\x00" + j(price) + b" x")
    write("publish_bodies", "price-unterminated", b"\x00" + j(price)[:-1])
    write("publish_bodies", "new-alert-bad-kind", b"\x04" + j({**new_alert, "alert_type": 3}))
    # A key given twice takes its last value; an ignored field is still
    # checked as JSON; nesting at and beyond serde_json's limit.
    write("publish_bodies", "price-repeated-key", b'\x00{"ticker":"A","price":"x","price":2}')
    write("publish_bodies", "price-lone-surrogate-ignored", b'\x00{"ticker":"A","price":1,"x":"\\udc00"}')
    write("publish_bodies", "price-nesting-at-limit", b"\x00" + nested(b'{"ticker":"A","price":1,"x":', HTTP_MAX_DEPTH))
    write("publish_bodies", "price-nesting-beyond-limit",
          b"\x00" + nested(b'{"ticker":"A","price":1,"x":', HTTP_MAX_DEPTH + 1))
    # Bodies that take the other paths: an array (read positionally), the
    # computed ratio and default messages, timestamps with offsets,
    # fractions and a leap second, serde's tagged form of an alert kind.
    write("publish_bodies", "price-array", b"\x00" + j(["aapl", 1, 0, 0, 0, 2, 0.5, None, None]))
    write("publish_bodies", "pattern-computed", b"\x01" + j(
        {k: v for k, v in pattern.items() if k not in ("risk_reward_ratio", "message", "timestamp")}))
    write("publish_bodies", "alert-default-message", b"\x02" + j(
        {**{k: v for k, v in alert.items() if k != "message"}, "alert_type": "  breakout "}))
    write("publish_bodies", "market-status-offsets", b"\x03" + j(
        {"status": "closed", "next_open": "2025-11-19T09:30:00-05:00",
         "next_close": "2025-06-30T23:59:60.5+00:00", "timestamp": "2025-11-18T14:30:00.123456789+01:00"}))
    write("publish_bodies", "new-alert-tagged-kind", b"\x04" + j({**new_alert, "alert_type": {"below": None}}))
    events = [
        {"type": "price_update", "ticker": "AAPL", "price": 150.25, "change": 2.50, "change_percent": 1.69,
         "volume": 75000000, "high": 151.00, "low": 148.50, "open": 149.00, "timestamp": "2025-11-18T10:30:00Z"},
        {"type": "pattern_alert", **pattern},
        {"type": "alert_trigger", **alert},
        {"type": "market_status", **status},
    ]
    for event in events:
        write("publish_bodies", "event-" + event["type"], b"\x05" + j(event))
    write("publish_bodies", "event-big-volume", b"\x05" + j({**events[0], "volume": 1.5e16, "price": 0.1 + 0.2}))


def room_names_and_queries():
    for name, text in [
        ("ticker-room", "ticker:AAPL"),
        ("ticker-room-lowercase", "ticker: brk.b "),
        ("patterns", "patterns"),
        ("alerts", "alerts"),
        ("market-status", "market_status"),
        ("modeldata", "modeldata"),
        ("ticker-symbols", "^GSPC"),
        ("ticker-too-long", "ABCDEFGHIJKLMNOPQ"),
        ("user-id", "a@b.c-d_e"),
        ("query-points", "points=200&sampler=lttb&from=2025-10-24"),
        ("query-offset", "from=2025-10-24T12:00:00%2B02:00&to=1761300000"),
        ("query-naive", "from=2025-10-24T10:00:00.123456&to=2025-10-25"),
        ("query-defaults", "points=500&sampler=even"),
        ("query-bad", "points=1&pointz=5&from=yesterday"),
        ("query-far-future", "from=300000000000"),
        ("query-year-zero", "from=0000-01-01T00:00:00%2B01:00"),
    ]:
        write("room_names_and_queries", name, text)


def regressions():
    # Every minimised reproducer in crashes-found/ (named <target>-<what>)
    # is also a seed of its target, so each run starts by re-checking the
    # findings (all fixed: crashes-found/README.md).
    found = os.path.join(HERE, "crashes-found")
    targets = sorted(os.listdir(CORPUS), key=len, reverse=True)
    for name in sorted(os.listdir(found)):
        if name == "README.md":
            continue
        target = next((t for t in targets if name.startswith(t + "-")), None)
        if target is None:
            raise SystemExit("crashes-found/%s names no target" % name)
        with open(os.path.join(found, name), "rb") as f:
            write(target, name, f.read())


def main():
    # Only the seed files are ours: anything else libFuzzer put here stays.
    for directory, _, files in os.walk(CORPUS):
        for name in files:
            if name.startswith("seed-"):
                os.remove(os.path.join(directory, name))
    frame_reader()
    message_assembler()
    handshake()
    seed001()
    native()
    seed000()
    publish_bodies()
    room_names_and_queries()
    regressions()


if __name__ == "__main__":
    main()
