//! Client-message benchmarks: the cost of handling one inbound seed 001
//! message, which bounds how much a chatty or hostile client can make a node
//! spend on its read path. `seed001_on_message` times
//! `Seed001Session::on_message` — parse in place with simd-json, dispatch,
//! and build the reply frame — for a ticker subscribe, a ping, an unknown
//! type and malformed JSON. The `Link` is a stub: `send` drops the frame,
//! `join` runs the greeting closure on an empty history (so the subscribe's
//! `subscription` and `history` frames are built, as a real join would) and
//! reports a new join; no room registry or outbox is involved. Because
//! simd-json parses in place, each iteration first copies the message
//! (≤ 55 bytes) into a reused buffer; that copy is inside the timed region.
//! `parse_subscribe` compares the raw parsers on the same subscribe message:
//! `simd_json::to_borrowed_value` (including the same copy; what `on_message`
//! calls), the same with simd-json's scratch `Buffers` reused across calls
//! (`to_borrowed_value_with_buffers`), and
//! `serde_json::from_slice::<serde_json::Value>` (which needs no copy).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use roomcast::catalog::RoomName;
use roomcast::close_code::CloseCode;
use roomcast::dialect::{DialectSession, Greeting, JoinError, Joined, Link, MessageKind, Retained};
use roomcast::seeds::seed001::Seed001Session;

const SUBSCRIBE_TICKER: &[u8] = br#"{"type":"subscribe","channel":"ticker","ticker":"AAPL"}"#;
const PING: &[u8] = br#"{"type":"ping"}"#;
const UNKNOWN_TYPE: &[u8] = br#"{"type":"get_quote","ticker":"AAPL"}"#;
const MALFORMED_JSON: &[u8] = br#"{"type":"subscribe","channel":"ticker","ticker":"AAPL""#;

/// A link that does nothing beyond what the dialect needs to finish its work.
struct StubLink;

impl Link for StubLink {
    fn send(&mut self, frame: Bytes) {
        black_box(frame);
    }

    fn join(&mut self, room: RoomName, greet: Greeting) -> Result<Joined, JoinError> {
        black_box(room);
        let empty = std::collections::VecDeque::new();
        black_box(greet(&Retained {
            epoch: 1,
            seq: 0,
            entries: &empty,
            snapshot: &[],
        }));
        Ok(Joined::New)
    }

    fn leave(&mut self, room: &RoomName) -> bool {
        black_box(room);
        true
    }

    fn close(&mut self, code: CloseCode) {
        black_box(code);
    }
    fn set_timer(&mut self, _after: Option<std::time::Duration>) {}
}

fn on_message(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_messages/seed001_on_message");
    group.throughput(Throughput::Elements(1));
    for (name, message) in [
        ("subscribe_ticker", SUBSCRIBE_TICKER),
        ("ping", PING),
        ("unknown_type", UNKNOWN_TYPE),
        ("malformed_json", MALFORMED_JSON),
    ] {
        let mut session = Seed001Session::new(Some("bench"));
        let mut link = StubLink;
        let mut buf = message.to_vec();
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.copy_from_slice(message);
                session.on_message(&mut link, MessageKind::Text, black_box(&mut buf));
            });
        });
    }
    group.finish();
}

fn parse_subscribe(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_messages/parse_subscribe");
    group.throughput(Throughput::Elements(1));
    let mut buf = SUBSCRIBE_TICKER.to_vec();
    group.bench_function("simd_json_borrowed_value", |b| {
        b.iter(|| {
            buf.copy_from_slice(SUBSCRIBE_TICKER);
            let value = simd_json::to_borrowed_value(black_box(&mut buf)).expect("valid JSON");
            black_box(&value);
        });
    });
    let mut buffers = simd_json::Buffers::new(SUBSCRIBE_TICKER.len());
    group.bench_function("simd_json_borrowed_value_reused_buffers", |b| {
        b.iter(|| {
            buf.copy_from_slice(SUBSCRIBE_TICKER);
            let value =
                simd_json::to_borrowed_value_with_buffers(black_box(&mut buf), &mut buffers)
                    .expect("valid JSON");
            black_box(&value);
        });
    });
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            let value: serde_json::Value =
                serde_json::from_slice(black_box(SUBSCRIBE_TICKER)).expect("valid JSON");
            black_box(value)
        });
    });
    group.finish();
}

criterion_group!(benches, on_message, parse_subscribe);
criterion_main!(benches);
