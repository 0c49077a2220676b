//! Fan-out benchmarks: the cost of the data path from a published event to
//! bytes handed to the socket, which is what bounds how many members one node
//! can feed. `room_publish` times `Room::publish` of a realistic ~200-byte
//! seed 001 `price_update` (encode once, then queue the same `Bytes` to every
//! member's outbox) for rooms of 1, 100 and 10,000 members; `rooms_publish`
//! adds the registry lookup and metrics of `Rooms::publish`; `encode` is the
//! serialisation alone, so per-member cost can be read off the difference;
//! `timing_overhead` is the cost of the per-publish clock reads themselves.
//! Only the publish is timed: after each publish the outboxes are drained (as
//! the members' writers would) outside the timed region, so queues never fill
//! and nothing is conflated. Throughput is in elements = members delivered.
//! `writer_flush` times `ws::writer::run` draining an outbox of 32 or 1,024
//! queued 200-byte frames in vectored writes into `tokio::io::sink()` on a
//! current-thread runtime (the outbox is closed after queuing, so the timed
//! region also includes building and writing one close frame); queuing the
//! frames is not timed. Throughput is in elements = frames flushed.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use roomcast::catalog::RoomName;
use roomcast::close_code::CloseCode;
use roomcast::delivery::outbox::{DEFAULT_CAPACITY, Delivery, Drain, Outbox, Pushed};
use roomcast::delivery::writer::{self, WriterEnd};
use roomcast::dialect::DialectKind;
use roomcast::frame;
use roomcast::ids::SessionId;
use roomcast::protocol::{Event, PriceUpdate};
use roomcast::rooms::limits::RoomLimits;
use roomcast::rooms::{Room, Rooms};

/// Room sizes benchmarked.
const MEMBERS: [usize; 3] = [1, 100, 10_000];

/// Outbox sizes (queued frames) the writer flushes.
const QUEUED_FRAMES: [usize; 2] = [32, 1_024];

/// A realistic seed 001 `price_update`: 207 bytes of canonical JSON, a
/// 211-byte frame (checked in `tests/zero_alloc.rs`).
fn price_update() -> Event {
    Event::from(PriceUpdate {
        ticker: "BTC-USD".into(),
        price: 97_234.17,
        change: -1_523.42,
        change_percent: -1.54,
        volume: 38_211_456_789.0,
        high: 99_102.55,
        low: 96_870.03,
        open: 98_757.59,
        timestamp: "2025-11-18T14:30:00.123Z".into(),
    })
}

fn new_outbox() -> Arc<Outbox> {
    Arc::new(Outbox::new(DEFAULT_CAPACITY))
}

/// Empties every outbox, as the members' writers would; reuses `batch`.
fn drain_all(outboxes: &[Arc<Outbox>], batch: &mut Vec<Bytes>) {
    for outbox in outboxes {
        while outbox.drain_into(batch, writer::MAX_BATCH) == Drain::Frames {
            batch.clear();
        }
    }
}

/// Times `publish` once per iteration; drains after each one, untimed.
fn time_publishes(
    iters: u64,
    outboxes: &[Arc<Outbox>],
    mut publish: impl FnMut() -> usize,
) -> Duration {
    let mut batch = Vec::with_capacity(writer::MAX_BATCH);
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        let recipients = publish();
        timed += started.elapsed();
        debug_assert_eq!(recipients, outboxes.len());
        black_box(recipients);
        drain_all(outboxes, &mut batch);
    }
    timed
}

fn encode(c: &mut Criterion) {
    let event = price_update();
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode", |b| {
        b.iter(|| black_box(&event).canonical_frame());
    });
    group.finish();
}

fn room_publish(c: &mut Criterion) {
    let event = price_update();
    let mut group = c.benchmark_group("fanout/room_publish");
    for members in MEMBERS {
        let room = Room::new(RoomName::ticker("BTC-USD"), 100);
        let outboxes: Vec<_> = (0..members).map(|_| new_outbox()).collect();
        for outbox in &outboxes {
            room.join(
                SessionId::next(),
                DialectKind::Seed001,
                outbox,
                Box::new(|_| Vec::new()),
            )
            .expect("a new room is not retired");
        }
        group.throughput(Throughput::Elements(members as u64));
        group.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, _| {
            b.iter_custom(|iters| {
                time_publishes(iters, &outboxes, || {
                    room.publish(black_box(&event)).recipients
                })
            });
        });
    }
    group.finish();
}

fn rooms_publish(c: &mut Criterion) {
    let event = price_update();
    let mut group = c.benchmark_group("fanout/rooms_publish");
    for members in [1, 10_000] {
        let rooms = Rooms::new(&RoomLimits::new(100, 16));
        let name = event.room();
        let outboxes: Vec<_> = (0..members).map(|_| new_outbox()).collect();
        for outbox in &outboxes {
            rooms
                .join(
                    &name,
                    SessionId::next(),
                    DialectKind::Seed001,
                    outbox,
                    Box::new(|_| Vec::new()),
                )
                .expect("room cap not reached");
        }
        group.throughput(Throughput::Elements(members as u64));
        group.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, _| {
            b.iter_custom(|iters| {
                time_publishes(iters, &outboxes, || {
                    rooms
                        .publish(black_box(&event))
                        .expect("room exists")
                        .recipients
                })
            });
        });
    }
    group.finish();
}

/// `n` distinct 200-byte text frames (196-byte payload, 4-byte header).
fn frames_of_200_bytes(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            let frame = frame::text(&[b'a' + (i % 26) as u8; 196]);
            assert_eq!(frame.len(), 200);
            frame
        })
        .collect()
}

fn writer_flush(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let stall = Duration::from_secs(5);
    let mut group = c.benchmark_group("fanout/writer_flush");
    for n in QUEUED_FRAMES {
        let frames = frames_of_200_bytes(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    // Untimed: a fresh outbox (a closed one cannot reopen) with n frames queued.
                    let outbox = Outbox::new(DEFAULT_CAPACITY);
                    for f in &frames {
                        let pushed = outbox.push(f, Delivery::Ordered);
                        debug_assert_eq!(pushed, Pushed::Queued);
                    }
                    outbox.close(CloseCode::Normal);
                    let mut sink = tokio::io::sink();
                    let (elapsed, end) = rt.block_on(async {
                        let started = Instant::now();
                        let end = writer::run(&outbox, &mut sink, stall).await;
                        (started.elapsed(), end)
                    });
                    assert!(matches!(end, WriterEnd::Closed(CloseCode::Normal)));
                    timed += elapsed;
                }
                timed
            });
        });
    }
    group.finish();
}

/// What `time_publishes` itself costs per iteration (two clock reads and a
/// drain of no outboxes): the floor under every `room_publish` figure.
fn timing_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group.bench_function("timing_overhead", |b| {
        b.iter_custom(|iters| time_publishes(iters, &[], || 0));
    });
    group.finish();
}

criterion_group!(
    benches,
    timing_overhead,
    encode,
    room_publish,
    rooms_publish,
    writer_flush
);
criterion_main!(benches);
