//! Proves the fan-out promise of DESIGN.md ("nothing is allocated or
//! serialised per member") by counting heap allocations. A counting global
//! allocator wraps `std::alloc::System` and counts allocations made on the
//! measuring thread only, while a thread-local flag is set, so tests running
//! in parallel on other threads cannot disturb the counts. After a warm-up
//! (history ring full, every outbox queue and writer batch grown to its
//! working size) we measure: publishing one `price_update` to a room of 1,000
//! members allocates exactly as much as publishing it to 10 members — a small
//! per-publish constant (the one encode) — and a writer flushing 1,024 queued
//! frames to a sink allocates exactly as much as one flushing 32. The server's
//! own path is measured too: a publish whose frames the flusher writes to
//! real sockets on 127.0.0.1 allocates the same for 200 members as for 10.
//! Seed 004: a price batch to 1,000 `/ws` members allocates what one to 10
//! does (one flat encode), and a batcher round over 16 symbol sets
//! allocates the same for 160 clients as for 16,000, each set's clients
//! sharing one frame.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use roomcast::catalog::RoomName;
use roomcast::close_code::CloseCode;
use roomcast::delivery::flusher::{self, Flusher};
use roomcast::delivery::outbox::{Delivery, Drain, Outbox};
use roomcast::delivery::writer::{self, WriterEnd};
use roomcast::dialect::DialectKind;
use roomcast::frame;
use roomcast::ids::SessionId;
use roomcast::protocol::{Event, Neutral, PatternAlert, PriceUpdate};
use roomcast::rooms::Room;
use roomcast::sources::trading::events as trading_events;
use roomcast::sources::trading::quotes::{QuoteBook, batch_data};

/// Heap allocations one `Room::publish` of the ~200-byte `price_update` makes
/// whatever the member count: the frame buffer the event is serialised into,
/// and the `Bytes` shared header created when that buffer becomes a
/// reference-counted frame.
const ALLOCATIONS_PER_PUBLISH: u64 = 2;

/// The same for the 257-byte `pattern_alert`: its JSON outgrows the 256-byte
/// size hint `Room::publish` reserves, so the frame buffer grows once more.
const ALLOCATIONS_PER_PUBLISH_OVER_256_BYTES: u64 = 3;

/// Heap allocations of one seed 004 price batch in a batcher round, per
/// distinct symbol set, whatever its clients: the set's symbol list, the
/// batch's `data` buffer (and one growth: an entry outgrows the 64 bytes
/// per symbol reserved), the neutral event (its `type` and `timestamp`
/// strings, its canonical frame and the frame's shared header), and the
/// room's one flat frame for its `/ws` members (buffer and shared header).
const ALLOCATIONS_PER_SET_BATCH: u64 = 1 + 2 + 4 + ALLOCATIONS_PER_PUBLISH;

/// Heap allocations of one `writer::run` from first drain to shutdown,
/// whatever the number of frames flushed: the writer's batch `Vec` (grown once
/// to `MAX_BATCH`) plus [`ALLOCATIONS_PER_CLOSE_FRAME`].
const ALLOCATIONS_PER_WRITER_RUN: u64 = 1 + ALLOCATIONS_PER_CLOSE_FRAME;

/// Heap allocations of `frame::close`, built once when a writer stops: the
/// payload `Vec`, the frame buffer, and the `Bytes` shared header created when
/// the frame is sliced behind its reserved header room.
const ALLOCATIONS_PER_CLOSE_FRAME: u64 = 3;

// ---------------------------------------------------------------------------
// Counting allocator

/// Wraps the system allocator and counts allocations (including zeroed
/// allocations and reallocations) on threads that enabled counting.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn record_allocation() {
    // `try_with`: allocations during thread teardown must not panic.
    let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
    if counting {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record_allocation();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record_allocation();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record_allocation();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many heap allocations it made on this thread.
/// `f`'s result is returned, so it is dropped outside the counted region.
fn allocations_during<R>(f: impl FnOnce() -> R) -> (u64, R) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.with(Cell::get), result)
}

// ---------------------------------------------------------------------------
// Fixtures

/// A realistic seed 001 `price_update` (about 200 bytes of canonical JSON).
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

/// A seed 001 `pattern_alert` (an ordered, non-conflating room).
fn pattern_alert() -> Event {
    Event::from(PatternAlert {
        ticker: "NVDA".into(),
        pattern_type: "VCP".into(),
        score: 8.7,
        entry_price: 142.35,
        stop_price: 136.8,
        target_price: 158.9,
        risk_reward_ratio: 2.98,
        message: "NVDA: VCP breakout above 142.35 on 1.8x volume".into(),
        timestamp: "2025-11-18T14:30:00.123Z".into(),
    })
}

/// A room of `members` sessions of dialect `kind`, each with its own outbox.
fn room_with_members(
    name: RoomName,
    members: usize,
    kind: DialectKind,
) -> (Room, Vec<Arc<Outbox>>) {
    let outboxes: Vec<_> = (0..members)
        .map(|_| Arc::new(Outbox::new(roomcast::delivery::outbox::DEFAULT_CAPACITY)))
        .collect();
    (room_joined_by(name, &outboxes, kind), outboxes)
}

/// A new room that every outbox joined as a `kind` member with no greeting.
fn room_joined_by(name: RoomName, outboxes: &[Arc<Outbox>], kind: DialectKind) -> Room {
    let room = Room::new(name, 100);
    for outbox in outboxes {
        room.join(SessionId::next(), kind, outbox, Box::new(|_| Vec::new()))
            .expect("a new room is not retired");
    }
    room
}

/// Empties every outbox, as the members' writers would.
fn drain_all(outboxes: &[Arc<Outbox>], batch: &mut Vec<Bytes>) {
    for outbox in outboxes {
        while outbox.drain_into(batch, writer::MAX_BATCH) == Drain::Frames {
            batch.clear();
        }
    }
}

/// Publishes more events than the history keeps, draining after each, so the
/// history ring and every outbox queue have reached their working capacity.
fn warm_up(room: &Room, outboxes: &[Arc<Outbox>], event: &Event) {
    let mut batch = Vec::with_capacity(writer::MAX_BATCH);
    for _ in 0..150 {
        room.publish(event);
        drain_all(outboxes, &mut batch);
    }
}

/// Allocations of each of `rounds` single publishes (drained in between, untimed).
fn allocations_per_publish(
    room: &Room,
    outboxes: &[Arc<Outbox>],
    event: &Event,
    rounds: usize,
) -> Vec<u64> {
    let mut batch = Vec::with_capacity(writer::MAX_BATCH);
    (0..rounds)
        .map(|_| {
            let (allocations, report) = allocations_during(|| room.publish(event));
            assert_eq!(report.recipients, outboxes.len());
            assert_eq!(report.conflated + report.overflowed, 0);
            drain_all(outboxes, &mut batch);
            allocations
        })
        .collect()
}

fn assert_publish_cost_is_independent_of_members(
    name: RoomName,
    kind: DialectKind,
    event: &Event,
    expected: u64,
) {
    let (small, small_outboxes) = room_with_members(name.clone(), 10, kind);
    let (large, large_outboxes) = room_with_members(name, 1_000, kind);
    warm_up(&small, &small_outboxes, event);
    warm_up(&large, &large_outboxes, event);

    let for_10 = allocations_per_publish(&small, &small_outboxes, event, 5);
    let for_1000 = allocations_per_publish(&large, &large_outboxes, event, 5);

    assert_eq!(
        for_1000, for_10,
        "publishing to 1,000 members must allocate exactly what publishing to 10 does"
    );
    assert!(
        for_10.iter().all(|&n| n == expected),
        "each publish should allocate {expected} times (the one encode), got {for_10:?}"
    );
    assert!(expected <= 8);
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn the_benchmark_event_is_about_200_bytes() {
    // The same event as `bench/fanout.rs`: 207 bytes of JSON, 4-byte header.
    let frame = price_update().canonical_frame();
    assert_eq!(frame::payload(&frame).len(), 207);
    assert_eq!(frame.len(), 211);
}

#[test]
fn the_ordered_room_event_outgrows_the_publish_size_hint() {
    // Why ALLOCATIONS_PER_PUBLISH_OVER_256_BYTES applies to `pattern_alert`.
    let frame = pattern_alert().canonical_frame();
    assert_eq!(frame::payload(&frame).len(), 257);
}

#[test]
fn publishing_allocates_nothing_per_member() {
    assert_publish_cost_is_independent_of_members(
        RoomName::ticker("BTC-USD"),
        DialectKind::Seed001,
        &price_update(),
        ALLOCATIONS_PER_PUBLISH,
    );
}

#[test]
fn publishing_to_an_ordered_room_allocates_nothing_per_member() {
    assert_publish_cost_is_independent_of_members(
        RoomName::patterns(),
        DialectKind::Seed001,
        &pattern_alert(),
        ALLOCATIONS_PER_PUBLISH_OVER_256_BYTES,
    );
}

#[test]
fn publishing_a_neutral_event_allocates_nothing_per_member() {
    // A backtest run's event, encoded by its producer: the room's one
    // encode is the native `message` frame around it.
    let run = RoomName::backtest("bt-alloc").unwrap();
    let data = serde_json::json!({"backtest_id": "bt-alloc", "progress": 45.2});
    let event = Event::from(
        Neutral::new(run.clone(), "progress", "2026-01-01T00:00:00.000Z", &data).unwrap(),
    );
    assert_publish_cost_is_independent_of_members(
        run,
        DialectKind::Native,
        &event,
        ALLOCATIONS_PER_PUBLISH,
    );
}

#[test]
fn a_backtest_runs_seed003_viewers_cost_no_allocation_at_all() {
    // Seed 003's frame is the event's canonical frame, made by its producer:
    // the room shares it with every viewer and keeps a slice of it.
    let run = RoomName::backtest("bt-viewers").unwrap();
    let data = serde_json::json!({"backtest_id": "bt-viewers", "progress": 45.2});
    let event = Event::from(
        Neutral::new(run.clone(), "progress", "2026-01-01T00:00:00.000Z", &data).unwrap(),
    );
    assert_publish_cost_is_independent_of_members(run, DialectKind::Seed003, &event, 0);
}

#[test]
fn a_seed002_topics_subscribers_cost_one_envelope_per_event() {
    // `{type,data}` is sliced out of the canonical JSON once per publish:
    // one frame buffer and its shared header, whatever the subscribers.
    let topic = RoomName::topic("backtest").unwrap();
    let data = serde_json::json!({"backtest_id": "bt", "progress": 45.2, "timestamp": "2026-01-01T00:00:00.000Z"});
    let event = Event::from(
        Neutral::new(
            topic.clone(),
            "backtest_progress",
            "2026-01-01T00:00:00.000Z",
            &data,
        )
        .unwrap(),
    );
    assert_publish_cost_is_independent_of_members(
        topic,
        DialectKind::Ws,
        &event,
        ALLOCATIONS_PER_PUBLISH,
    );
}

#[test]
fn a_seed004_price_batch_costs_one_flat_encode_whatever_the_members() {
    // Seed 004's "all symbols" batch, as the price batcher publishes it:
    // `/ws` members get it flat, encoded once per publish (the frame
    // buffer and its shared header), for 10 members as for 1,000.
    let room = RoomName::s004_prices(None).unwrap();
    let book = quote_book();
    let data = batch_data(&book.batch_entries(), None).unwrap();
    let event = Event::from(trading_events::price_update(
        room.clone(),
        "2026-12-02T05:00:00.000Z",
        &data,
    ));
    assert_publish_cost_is_independent_of_members(
        room,
        DialectKind::Ws,
        &event,
        ALLOCATIONS_PER_PUBLISH,
    );
}

/// The simulator's nine symbols, each with a quote.
fn quote_book() -> QuoteBook {
    let book = QuoteBook::new();
    for (i, ticker) in [
        "AAPL", "MSFT", "TSLA", "NVDA", "AMZN", "GOOGL", "META", "BTC-USD", "ETH-USD",
    ]
    .into_iter()
    .enumerate()
    {
        book.record(&PriceUpdate {
            ticker: ticker.into(),
            price: 100.0 + i as f64,
            change: 0.5,
            change_percent: 0.5,
            volume: 1_000_000.0,
            high: 101.0 + i as f64,
            low: 99.0 + i as f64,
            open: 100.0,
            timestamp: "2026-12-02T05:00:00.000Z".into(),
        });
    }
    book
}

/// Sixteen distinct narrowed sets: the nine symbols alone, then seven pairs.
fn sixteen_sets() -> Vec<RoomName> {
    let symbols = [
        "AAPL", "AMZN", "BTC-USD", "ETH-USD", "GOOGL", "META", "MSFT", "NVDA", "TSLA",
    ];
    let mut sets: Vec<Vec<String>> = symbols.iter().map(|s| vec![s.to_string()]).collect();
    sets.extend(
        symbols[1..8]
            .iter()
            .map(|s| vec!["AAPL".to_string(), s.to_string()]),
    );
    sets.iter()
        .map(|set| RoomName::s004_prices(Some(set.as_slice())).unwrap())
        .collect()
}

/// One price batcher round (`PriceBatcher::publish_sets`): every set's
/// batch assembled from the round's entries and published into its room.
fn batch_round(entries: &BTreeMap<String, Vec<u8>>, rooms: &[Room], now: &str) {
    for room in rooms {
        let symbols = room.name().symbols();
        let narrowed = (!symbols.is_empty()).then_some(&symbols[..]);
        let data = batch_data(entries, narrowed).unwrap();
        let event = trading_events::price_update(room.name().clone(), now, &data);
        let report = room.publish(&Event::from(event));
        assert_eq!(report.recipients, room.member_count());
    }
}

#[test]
fn a_price_round_over_16_sets_costs_the_same_for_160_as_for_16000_clients() {
    // `members` `/ws` clients spread over the 16 sets (client i on set i
    // mod 16). A round allocates per set (its batch, its neutral event,
    // its one flat frame), never per client: the same count for 160 and
    // for 16,000 clients, and every client of a set gets the same bytes.
    let book = quote_book();
    let entries = book.batch_entries();
    let sets = sixteen_sets();
    let round = |members: usize| -> (Vec<u64>, Vec<Vec<Arc<Outbox>>>) {
        let outboxes: Vec<Vec<Arc<Outbox>>> = (0..sets.len())
            .map(|set| {
                (0..members)
                    .filter(|i| i % sets.len() == set)
                    .map(|_| Arc::new(Outbox::new(roomcast::delivery::outbox::DEFAULT_CAPACITY)))
                    .collect()
            })
            .collect();
        let rooms: Vec<Room> = sets
            .iter()
            .zip(&outboxes)
            .map(|(name, members)| room_joined_by(name.clone(), members, DialectKind::Ws))
            .collect();
        let mut batch = Vec::with_capacity(writer::MAX_BATCH);
        let drain = |batch: &mut Vec<Bytes>| {
            for members in &outboxes {
                drain_all(members, batch);
            }
        };
        for _ in 0..150 {
            batch_round(&entries, &rooms, "2026-12-02T05:00:00.000Z");
            drain(&mut batch);
        }
        let counts = (0..5)
            .map(|_| {
                let (allocations, ()) = allocations_during(|| {
                    batch_round(&entries, &rooms, "2026-12-02T05:00:03.000Z")
                });
                drain(&mut batch);
                allocations
            })
            .collect();
        // One more round, kept: what each client would be sent.
        batch_round(&entries, &rooms, "2026-12-02T05:00:06.000Z");
        (counts, outboxes)
    };
    let (for_160, _) = round(160);
    let (for_16000, outboxes) = round(16_000);
    assert_eq!(
        for_16000, for_160,
        "a round to 16,000 clients must allocate exactly what one to 160 does"
    );
    assert!(
        for_160.iter().all(|&n| n == 16 * ALLOCATIONS_PER_SET_BATCH),
        "a round should allocate {ALLOCATIONS_PER_SET_BATCH} per set, got {for_160:?} for 16 sets"
    );
    // One allocation of bytes per set, shared by every client of the set.
    let mut frames = Vec::new();
    let mut distinct = Vec::new();
    for members in &outboxes {
        let first = frames.len();
        for outbox in members {
            assert_eq!(outbox.drain_into(&mut frames, 1), Drain::Frames);
        }
        let set_frames = &frames[first..];
        assert_eq!(set_frames.len(), 1_000);
        assert!(
            set_frames
                .windows(2)
                .all(|w| w[0].as_ptr() == w[1].as_ptr())
        );
        distinct.push(set_frames[0].as_ptr());
    }
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 16, "one encode per distinct symbol set");
}

#[test]
fn every_member_receives_the_same_allocation() {
    let (room, outboxes) =
        room_with_members(RoomName::ticker("BTC-USD"), 1_000, DialectKind::Seed001);
    room.publish(&price_update());
    let mut frames = Vec::new();
    for outbox in &outboxes {
        assert_eq!(outbox.drain_into(&mut frames, 1), Drain::Frames);
    }
    assert!(frames.windows(2).all(|w| w[0].as_ptr() == w[1].as_ptr()));
}

#[test]
fn draining_into_a_reused_batch_allocates_nothing() {
    let outbox = Outbox::new(roomcast::delivery::outbox::DEFAULT_CAPACITY);
    let frames = frames_of_200_bytes(1_024);
    let mut batch = Vec::with_capacity(writer::MAX_BATCH);
    for round in 0..3 {
        for f in &frames {
            outbox.push(f, Delivery::Ordered);
        }
        let (allocations, drained) = allocations_during(|| {
            let mut drained = 0;
            while outbox.drain_into(&mut batch, writer::MAX_BATCH) == Drain::Frames {
                drained += batch.len();
                batch.clear();
            }
            drained
        });
        assert_eq!(drained, frames.len());
        assert_eq!(allocations, 0, "round {round}");
    }
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

/// Allocations of one `writer::run` flushing `frames` (then a close frame) to a sink.
fn writer_run_allocations(rt: &tokio::runtime::Runtime, frames: &[Bytes]) -> u64 {
    let outbox = Outbox::new(roomcast::delivery::outbox::DEFAULT_CAPACITY);
    for f in frames {
        assert_eq!(
            outbox.push(f, Delivery::Ordered),
            roomcast::delivery::outbox::Pushed::Queued
        );
    }
    // `run` returns once the outbox is closed and flushed.
    outbox.close(CloseCode::Normal);
    let mut sink = tokio::io::sink();
    let (allocations, end) =
        allocations_during(|| rt.block_on(writer::run(&outbox, &mut sink, Duration::from_secs(5))));
    assert!(matches!(end, WriterEnd::Closed(CloseCode::Normal)));
    allocations
}

#[test]
fn writer_flush_allocates_nothing_per_frame() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let few = frames_of_200_bytes(32);
    let many = frames_of_200_bytes(1_024);
    // Warm-up: metric handles, runtime context, timer.
    for _ in 0..3 {
        writer_run_allocations(&rt, &many);
    }

    let (close_frame, _) = allocations_during(|| frame::close(CloseCode::Normal));
    assert_eq!(close_frame, ALLOCATIONS_PER_CLOSE_FRAME);

    let for_32: Vec<u64> = (0..3).map(|_| writer_run_allocations(&rt, &few)).collect();
    let for_1024: Vec<u64> = (0..3).map(|_| writer_run_allocations(&rt, &many)).collect();

    assert_eq!(
        for_1024, for_32,
        "flushing 1,024 frames (32 vectored writes) must allocate what flushing 32 (one write) does"
    );
    assert!(
        for_32.iter().all(|&n| n == ALLOCATIONS_PER_WRITER_RUN),
        "each writer run should allocate {ALLOCATIONS_PER_WRITER_RUN} times, got {for_32:?}"
    );
}

/// A room of `members` seed 001 members whose outboxes are direct, each with
/// a real socket pair on 127.0.0.1, written by `flusher`. Returns the room,
/// the outboxes and the clients (blocking std sockets, read by the test).
fn room_with_socket_members(
    rt: &tokio::runtime::Runtime,
    flusher: &Arc<Flusher>,
    members: usize,
) -> (Room, Vec<Arc<Outbox>>, Vec<std::net::TcpStream>) {
    let (outboxes, clients) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut outboxes = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..members {
            let client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            let (_, write) = server.into_split();
            // The first write must find the socket's writable readiness set.
            write.as_ref().writable().await.unwrap();
            outboxes.push(Outbox::direct(
                roomcast::delivery::outbox::DEFAULT_CAPACITY,
                Arc::new(write),
                Arc::clone(flusher),
            ));
            let client = client.into_std().unwrap();
            client.set_nonblocking(false).unwrap();
            clients.push(client);
        }
        (outboxes, clients)
    });
    let room = room_joined_by(RoomName::ticker("BTC-USD"), &outboxes, DialectKind::Seed001);
    (room, outboxes, clients)
}

/// One publish and the flusher's walk over the members it scheduled; returns
/// the sockets written.
fn publish_and_flush(
    room: &Room,
    flusher: &Flusher,
    event: &Event,
    walking: &mut Vec<Arc<Outbox>>,
    batch: &mut Vec<Bytes>,
) -> usize {
    room.publish(event);
    flusher.take_scheduled(walking);
    let scheduled = walking.len();
    let mut written = flusher::Written::default();
    for outbox in walking.drain(..) {
        flusher::flush(&outbox, batch, &mut written);
    }
    assert_eq!(written.writes, scheduled, "one write per scheduled socket");
    written.record();
    scheduled
}

/// Reads one `frame_len`-byte frame from every client, as the subscribers would.
fn read_one_frame_each(clients: &mut [std::net::TcpStream], frame_len: usize) {
    use std::io::Read;
    let mut buf = vec![0; frame_len];
    for client in clients {
        client.read_exact(&mut buf).unwrap();
    }
}

#[test]
fn flushing_a_fan_out_to_real_sockets_allocates_nothing_per_member() {
    // One worker, so the sockets' readiness events are processed in the background.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let flusher = Flusher::new();
    let event = price_update();
    let frame_len = event.canonical_frame().len();
    let mut walking = Vec::new();
    let mut batch = Vec::with_capacity(writer::MAX_BATCH);
    let mut measure = |members: usize| -> Vec<u64> {
        let (room, outboxes, mut clients) = room_with_socket_members(&rt, &flusher, members);
        for _ in 0..150 {
            let written = publish_and_flush(&room, &flusher, &event, &mut walking, &mut batch);
            assert_eq!(written, members, "every idle member is scheduled once");
            read_one_frame_each(&mut clients, frame_len);
        }
        let counts = (0..5)
            .map(|_| {
                let (allocations, written) = allocations_during(|| {
                    publish_and_flush(&room, &flusher, &event, &mut walking, &mut batch)
                });
                assert_eq!(written, members);
                read_one_frame_each(&mut clients, frame_len);
                allocations
            })
            .collect();
        assert!(
            outboxes.iter().all(|o| o.is_empty()),
            "the flusher wrote every frame itself"
        );
        counts
    };
    let for_10 = measure(10);
    let for_200 = measure(200);
    assert_eq!(
        for_200, for_10,
        "a flushed publish to 200 sockets must allocate what one to 10 does"
    );
    assert!(
        for_10.iter().all(|&n| n == ALLOCATIONS_PER_PUBLISH),
        "publish + flush should allocate {ALLOCATIONS_PER_PUBLISH} times (the one encode), got {for_10:?}"
    );
}
