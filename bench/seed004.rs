//! Seed 004 price batches: what a batcher round costs the server before any
//! socket is written, and how that splits between the once-per-set work and
//! the per-client enqueue. The event is the batch the embedded simulator's
//! nine symbols make (`{"type":"price_update","symbols":{…9…},"timestamp"}`,
//! about 1.2 KB flat; a single-symbol set's batch about 0.26 KB).
//!
//! * `seed004/batch_entries`: the quote book's entries, encoded once per
//!   round and shared by every set's batch.
//! * `seed004/set_batch/{all,one,pair}`: one set's own work, whatever its
//!   clients: its symbol list, its `data` assembled from the entries, its
//!   neutral event, and the one flat frame its `/ws` clients share.
//! * `seed004/round_publish/{sets}`: a whole round as the price batcher
//!   runs it (entries, then per set: batch, event, `Room::publish`) to
//!   15,000 `/ws` members spread over 1 or 16 sets (client i on set i mod
//!   K). Only the round is timed; the outboxes are drained afterwards,
//!   untimed, as the flusher would. Throughput is in elements = clients.
//!
//! On this path the member count only adds the enqueue (an outbox push per
//! client); the encode is per set. The socket writes that follow are not
//! here: `bench/RESULTS.md` ("Seed 004: 15,000 trading clients") measures
//! the whole round, writes included, with the load generator.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use roomcast::catalog::RoomName;
use roomcast::delivery::outbox::{DEFAULT_CAPACITY, Drain, Outbox};
use roomcast::delivery::writer;
use roomcast::dialect::DialectKind;
use roomcast::ids::SessionId;
use roomcast::protocol::{Envelope, Event, PriceUpdate};
use roomcast::rooms::Room;
use roomcast::sources::trading::events::price_update;
use roomcast::sources::trading::quotes::{QuoteBook, batch_data};

/// The embedded simulator's symbols.
const SYMBOLS: [&str; 9] = [
    "AAPL", "AMZN", "BTC-USD", "ETH-USD", "GOOGL", "META", "MSFT", "NVDA", "TSLA",
];

/// Clients in a round.
const CLIENTS: usize = 15_000;

/// A round's timestamp.
const NOW: &str = "2026-12-02T05:00:00.000Z";

/// A quote for each of the simulator's symbols.
fn quote_book() -> QuoteBook {
    let book = QuoteBook::new();
    for (i, ticker) in SYMBOLS.into_iter().enumerate() {
        book.record(&PriceUpdate {
            ticker: ticker.into(),
            price: 187.31 + i as f64 * 13.7,
            change: 1.27,
            change_percent: 0.68,
            volume: 41_236_544.0,
            high: 189.02 + i as f64 * 13.7,
            low: 185.9 + i as f64 * 13.7,
            open: 186.04 + i as f64 * 13.7,
            timestamp: NOW.into(),
        });
    }
    book
}

/// `k` distinct sets: all symbols for 1, otherwise the nine single symbols
/// then pairs with AAPL (what `loadtest trading --sets k` subscribes).
fn sets(k: usize) -> Vec<RoomName> {
    if k == 1 {
        return vec![RoomName::s004_prices(None).expect("the all room")];
    }
    let mut sets: Vec<Vec<String>> = SYMBOLS.iter().map(|s| vec![s.to_string()]).collect();
    sets.extend(
        SYMBOLS[1..]
            .iter()
            .map(|s| vec!["AAPL".to_string(), s.to_string()]),
    );
    sets.truncate(k);
    sets.iter()
        .map(|set| RoomName::s004_prices(Some(set.as_slice())).expect("a valid set"))
        .collect()
}

/// One set's batch, as `PriceBatcher::publish_sets` builds it.
fn set_event(entries: &BTreeMap<String, Vec<u8>>, room: &RoomName) -> Event {
    let symbols = room.symbols();
    let narrowed = (!symbols.is_empty()).then_some(&symbols[..]);
    let data = batch_data(entries, narrowed).expect("every symbol is quoted");
    Event::from(price_update(room.clone(), NOW, &data))
}

fn batch_entries(c: &mut Criterion) {
    let book = quote_book();
    let mut group = c.benchmark_group("seed004");
    group.throughput(Throughput::Elements(1));
    group.bench_function("batch_entries", |b| {
        b.iter(|| black_box(&book).batch_entries());
    });
    group.finish();
}

fn set_batch(c: &mut Criterion) {
    let entries = quote_book().batch_entries();
    let mut group = c.benchmark_group("seed004/set_batch");
    group.throughput(Throughput::Elements(1));
    let cases = [
        ("all", RoomName::s004_prices(None).expect("the all room")),
        ("one", sets(16)[0].clone()),
        ("pair", sets(16)[9].clone()),
    ];
    for (label, room) in cases {
        group.bench_function(label, |b| {
            b.iter(|| {
                let event = set_event(&entries, black_box(&room));
                let Event::Neutral(neutral) = &event else {
                    unreachable!("a price batch is a neutral event")
                };
                neutral.frame(Envelope::Flat)
            });
        });
    }
    group.finish();
}

/// Empties every outbox, as the flusher would; reuses `batch`.
fn drain_all(outboxes: &[Arc<Outbox>], batch: &mut Vec<Bytes>) {
    for outbox in outboxes {
        while outbox.drain_into(batch, writer::MAX_BATCH) == Drain::Frames {
            batch.clear();
        }
    }
}

fn round_publish(c: &mut Criterion) {
    let book = quote_book();
    let mut group = c.benchmark_group("seed004/round_publish");
    group.throughput(Throughput::Elements(CLIENTS as u64));
    for k in [1, 16] {
        let names = sets(k);
        let outboxes: Vec<Arc<Outbox>> = (0..CLIENTS)
            .map(|_| Arc::new(Outbox::new(DEFAULT_CAPACITY)))
            .collect();
        let rooms: Vec<Room> = names
            .iter()
            .enumerate()
            .map(|(set, name)| {
                let room = Room::new(name.clone(), 1);
                for outbox in outboxes.iter().skip(set).step_by(k) {
                    room.join(
                        SessionId::next(),
                        DialectKind::Ws,
                        outbox,
                        Box::new(|_| Vec::new()),
                    )
                    .expect("a new room is not retired");
                }
                room
            })
            .collect();
        group.bench_with_input(BenchmarkId::new("sets", k), &k, |b, _| {
            b.iter_custom(|iters| {
                let mut batch = Vec::with_capacity(writer::MAX_BATCH);
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let entries = book.batch_entries();
                    let mut recipients = 0;
                    for room in &rooms {
                        let event = set_event(&entries, room.name());
                        recipients += room.publish(&event).recipients;
                    }
                    timed += started.elapsed();
                    debug_assert_eq!(recipients, CLIENTS);
                    black_box(recipients);
                    drain_all(&outboxes, &mut batch);
                }
                timed
            });
        });
    }
    group.finish();
}

criterion_group!(benches, batch_entries, set_batch, round_publish);
criterion_main!(benches);
