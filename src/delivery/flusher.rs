//! The node's flusher: writes fan-out frames straight to idle sockets.
//!
//! Without it every member of a fan-out is a task wake-up: the session's
//! writer is scheduled, polled (its reader branch too), drains its outbox and
//! writes. With it, a push to an idle outbox ([`Outbox::direct`]) puts the
//! outbox on this one queue, and one task walks the queue writing each
//! socket with a non-blocking vectored write: one wake-up per fan-out, and
//! per member an outbox lock, a push onto this queue and the system call. Frames that arrive
//! while the flusher has not reached a member yet are coalesced into that
//! member's one write, so batching still grows with load. A socket that
//! cannot take everything (a slow reader, a full send buffer) is handed to
//! its session's writer, which waits for it; the flusher never waits on a
//! socket, so one slow client cannot delay the others.
//!
//! The flusher yields to the scheduler every [`YIELD_EVERY`] sockets, so a
//! fan-out to 15,000 members does not hold the other tasks off for its whole
//! duration. On shutdown it stops taking outboxes and gives the scheduled ones
//! back to their writers (which send the close frames).

use std::os::fd::AsRawFd;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use parking_lot::Mutex;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::delivery::outbox::{FlushTake, MAX_BATCH, Outbox};
use crate::telemetry::metrics;

/// Sockets written between two yields to the scheduler.
pub const YIELD_EVERY: usize = 64;

/// Batches written to one socket per visit before it goes to its writer:
/// a client that is sent more than this in one go is left to its own task.
const MAX_ROUNDS: usize = 8;

/// Outboxes waiting for the flusher, behind its lock.
#[derive(Debug, Default)]
struct Queue {
    /// Scheduled outboxes, in arrival order; the flusher swaps the vector out
    /// whole, so pushes and the walk never contend for long.
    pending: Vec<Arc<Outbox>>,
    /// Set on shutdown: nothing more is taken.
    closed: bool,
}

/// One queue of outboxes with frames for idle sockets, and the task that writes them.
#[derive(Debug, Default)]
pub struct Flusher {
    /// Scheduled outboxes.
    queue: Mutex<Queue>,
    /// Wakes the flusher when the queue goes from empty to non-empty.
    notify: Notify,
}

impl Flusher {
    /// An empty flusher; [`Flusher::run`] must be spawned to drive it.
    pub fn new() -> Arc<Self> {
        Arc::new(Flusher::default())
    }

    /// Queues `outbox` (which the flusher now owns) for writing. False once
    /// the flusher has stopped: the caller gives the outbox to its writer.
    pub fn schedule(&self, outbox: Arc<Outbox>) -> bool {
        let was_empty = {
            let mut queue = self.queue.lock();
            if queue.closed {
                return false;
            }
            queue.pending.push(outbox);
            queue.pending.len() == 1
        };
        if was_empty {
            self.notify.notify_one();
        }
        true
    }

    /// Moves every scheduled outbox into `walking` (empty, reused), to be
    /// written with [`flush`] in order.
    pub fn take_scheduled(&self, walking: &mut Vec<Arc<Outbox>>) {
        debug_assert!(walking.is_empty());
        std::mem::swap(&mut self.queue.lock().pending, walking);
    }

    /// Writes scheduled outboxes until `shutdown` is cancelled, then hands
    /// what is still scheduled to the writers. The same happens if the task is
    /// dropped or a flush panics (see [`Walk`]): no outbox stays the
    /// flusher's with nobody to write it.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut walk = Walk {
            flusher: &self,
            outboxes: Vec::new(),
            next: 0,
        };
        let mut batch: Vec<Bytes> = Vec::with_capacity(MAX_BATCH);
        let mut written = Written::default();
        // Sockets since the last yield, counted across walks: a flusher
        // chasing a fan-out in small walks still yields every YIELD_EVERY.
        let mut since_yield = 0;
        loop {
            walk.outboxes.clear();
            walk.next = 0;
            self.take_scheduled(&mut walk.outboxes);
            if walk.outboxes.is_empty() {
                written.record();
                since_yield = 0;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.notify.notified() => continue,
                }
            }
            while let Some(outbox) = walk.outboxes.get(walk.next) {
                walk.next += 1;
                flush(outbox, &mut batch, &mut written);
                since_yield += 1;
                if since_yield == YIELD_EVERY {
                    since_yield = 0;
                    written.record();
                    tokio::task::yield_now().await;
                }
            }
        }
        // `walk` is dropped here: the queue closes and what is left goes to the writers.
    }
}

/// The flusher's current walk. Dropped when `run` ends, returns, is
/// cancelled or unwinds: it closes the queue and gives every outbox the
/// flusher still owns to its writer (the rest of the walk, from the one
/// being written, and everything scheduled).
struct Walk<'a> {
    /// Whose queue to close.
    flusher: &'a Flusher,
    /// The outboxes taken from the queue, in order.
    outboxes: Vec<Arc<Outbox>>,
    /// Index of the next outbox to write; the one before it is being written.
    next: usize,
}

impl Drop for Walk<'_> {
    fn drop(&mut self) {
        let left = {
            let mut queue = self.flusher.queue.lock();
            queue.closed = true;
            std::mem::take(&mut queue.pending)
        };
        let unfinished = self
            .outboxes
            .get(self.next.saturating_sub(1)..)
            .unwrap_or(&[]);
        for outbox in unfinished.iter().chain(&left) {
            outbox.hand_to_writer();
        }
    }
}

/// What the flusher wrote since it last recorded it: the metrics are updated
/// once per [`YIELD_EVERY`] sockets, not once per socket.
#[derive(Debug, Default)]
pub struct Written {
    /// Socket writes (system calls) that took everything offered.
    pub writes: usize,
    /// Frames they carried.
    pub frames: usize,
    /// Bytes they carried.
    pub bytes: usize,
}

impl Written {
    /// Adds the counts to the node's metrics and starts again from zero.
    pub fn record(&mut self) {
        if self.writes > 0 {
            metrics().wrote_many(self.writes, self.frames, self.bytes);
        }
        *self = Written::default();
    }
}

/// Writes what `outbox` has queued with non-blocking writes, until it is
/// empty (it becomes idle) or the socket takes less than offered (it goes to
/// its writer). `batch` is the flusher's reused buffer, empty between calls;
/// what was written is added to `written`.
pub fn flush(outbox: &Outbox, batch: &mut Vec<Bytes>, written: &mut Written) {
    for _ in 0..MAX_ROUNDS {
        let FlushTake::Frames(socket) = outbox.take_for_flush(batch, MAX_BATCH) else {
            return;
        };
        let bytes: usize = batch.iter().map(Bytes::len).sum();
        let sent = send(socket, batch);
        if sent == bytes {
            written.writes += 1;
            written.frames += batch.len();
            written.bytes += bytes;
            batch.clear();
            continue;
        }
        let before = batch.len();
        let started = skip_written(batch, sent);
        if sent > 0 {
            written.writes += 1;
            written.frames += before - batch.len();
            written.bytes += sent;
        }
        outbox.flushed(batch, started);
        return;
    }
    // A busy socket: its own writer carries on.
    outbox.hand_to_writer();
}

/// One non-blocking send of `batch` (at most [`MAX_BATCH`] frames). Returns
/// the bytes the kernel took; 0 when it took none (`EAGAIN`) or failed: the
/// socket then goes to the session's writer, whose own write fails too
/// (`EPIPE` once the kernel has reported a reset) and ends the session.
///
/// This calls the kernel directly ([`crate::sys::send_nonblocking`]) rather
/// than through tokio's `try_write_vectored`, whose readiness check touches
/// one more cold cache line per socket in a large fan-out (3–4 % of the
/// server's time at 15,000 members, measured with `perf`). Skipping it is
/// safe: tokio's readiness is only a cache, and a writer that trusts a stale
/// "writable" gets `EAGAIN`, clears it and waits as usual.
fn send(socket: &OwnedWriteHalf, batch: &[Bytes]) -> usize {
    crate::sys::send_nonblocking(socket.as_ref().as_raw_fd(), batch)
}

/// Drops the first `written` bytes of `batch` (whole frames, then a prefix of
/// the next); true when that left the first frame started but unfinished.
fn skip_written(batch: &mut Vec<Bytes>, mut written: usize) -> bool {
    let whole = batch
        .iter()
        .take_while(|frame| {
            if written >= frame.len() {
                written -= frame.len();
                true
            } else {
                false
            }
        })
        .count();
    batch.drain(..whole);
    if written > 0 {
        batch[0].advance(written);
    }
    written > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close_code::CloseCode;
    use crate::delivery::outbox::{DEFAULT_CAPACITY, Delivery};
    use crate::delivery::writer::{self, SharedSocket, WriterEnd};
    use crate::frame;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair on 127.0.0.1: the client, and the server's write half
    /// (its read half is dropped: these tests only send).
    async fn connected() -> (TcpStream, Arc<OwnedWriteHalf>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_, write) = server.into_split();
        (client, Arc::new(write))
    }

    /// Frame `i` of a numbered ordered stream, `len` payload bytes.
    fn numbered(i: u32, len: usize) -> Bytes {
        let mut payload = vec![b'.'; len];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        frame::text(&payload)
    }

    #[tokio::test]
    async fn frames_for_an_idle_socket_are_written_without_its_writer() {
        let (mut client, socket) = connected().await;
        let flusher = Flusher::new();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(Arc::clone(&flusher).run(shutdown.clone()));
        let outbox = Outbox::direct(DEFAULT_CAPACITY, socket, Arc::clone(&flusher));
        // No writer runs for this outbox: only the flusher can deliver.
        outbox.push(&frame::text(b"a"), Delivery::Ordered);
        outbox.push(&frame::text(b"bc"), Delivery::Ordered);
        let mut expected = Vec::new();
        expected.extend_from_slice(&frame::text(b"a"));
        expected.extend_from_slice(&frame::text(b"bc"));
        let mut got = vec![0; expected.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expected);
        assert!(outbox.is_empty());
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_full_socket_goes_to_its_writer_and_every_frame_arrives_in_order() {
        let (mut client, socket) = connected().await;
        // Small buffers on both ends: 3 MB cannot fit, whatever the kernel's autotuning.
        let server_side: &TcpStream = (*socket).as_ref();
        socket2::SockRef::from(server_side)
            .set_send_buffer_size(16 * 1024)
            .unwrap();
        socket2::SockRef::from(&client)
            .set_recv_buffer_size(16 * 1024)
            .unwrap();
        let flusher = Flusher::new();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(Arc::clone(&flusher).run(shutdown.clone()));
        let outbox = Outbox::direct(4096, Arc::clone(&socket), Arc::clone(&flusher));
        let writer = {
            let outbox = Arc::clone(&outbox);
            tokio::spawn(async move {
                let mut io = SharedSocket(socket);
                writer::run(&outbox, &mut io, Duration::from_secs(10)).await
            })
        };
        // Far more than the socket buffers hold while the client does not
        // read: the flusher must stop short and hand over mid-frame.
        let frames: Vec<Bytes> = (0..3000).map(|i| numbered(i, 997)).collect();
        for f in &frames {
            outbox.push(f, Delivery::Ordered);
        }
        outbox.close(CloseCode::GoingAway);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let mut expected: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        expected.extend_from_slice(&frame::close(CloseCode::GoingAway));
        assert_eq!(got.len(), expected.len());
        assert!(
            got == expected,
            "bytes differ: frames lost, repeated or interleaved"
        );
        assert!(matches!(
            writer.await.unwrap(),
            WriterEnd::Closed(CloseCode::GoingAway)
        ));
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_frame_written_in_part_is_finished_before_the_close_frame_of_an_overflow() {
        let (_client, socket) = connected().await;
        let flusher = Flusher::new(); // driven by hand below
        let outbox = Outbox::direct(2, socket, Arc::clone(&flusher));
        let first = frame::text(b"first");
        outbox.push(&first, Delivery::Ordered);
        outbox.push(&frame::text(b"second"), Delivery::Ordered);
        let mut walking = Vec::new();
        flusher.take_scheduled(&mut walking);
        assert_eq!(walking.len(), 1);
        // The flusher takes both frames and the socket takes 3 bytes of them.
        let mut batch = Vec::new();
        assert!(matches!(
            outbox.take_for_flush(&mut batch, MAX_BATCH),
            FlushTake::Frames(_)
        ));
        let started = skip_written(&mut batch, 3);
        assert!(!outbox.flushed(&mut batch, started));
        // The client then falls behind on an ordered stream: the queue
        // ("second", back at its front, and "more") is full, so the next
        // push closes with 4008 and discards the queue.
        assert_eq!(outbox.len(), 2, "the started frame and \"second\"");
        outbox.push(&frame::text(b"more"), Delivery::Ordered);
        assert!(matches!(
            outbox.push(&frame::text(b"over"), Delivery::Ordered),
            crate::delivery::outbox::Pushed::Overflowed(_)
        ));
        // The writer finishes the started frame, and only then closes.
        let mut out = Vec::new();
        assert_eq!(
            outbox.drain_into(&mut out, MAX_BATCH),
            crate::delivery::outbox::Drain::Frames
        );
        assert_eq!(out, vec![first.slice(3..)]);
        assert_eq!(
            outbox.drain_into(&mut out, MAX_BATCH),
            crate::delivery::outbox::Drain::Close(CloseCode::SlowConsumer)
        );
    }

    #[tokio::test]
    async fn a_walk_cut_short_gives_every_outbox_it_owns_to_its_writer() {
        let flusher = Flusher::new();
        let mut outboxes = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..3 {
            let (client, socket) = connected().await;
            clients.push(client);
            let outbox = Outbox::direct(DEFAULT_CAPACITY, socket, Arc::clone(&flusher));
            outbox.push(&frame::text(b"x"), Delivery::Ordered);
            outboxes.push(outbox);
        }
        // The walk took all three and was inside the second when it ended
        // (a panic, or the task dropped); a fourth was scheduled meanwhile.
        let mut walk = Walk {
            flusher: &flusher,
            outboxes: Vec::new(),
            next: 2,
        };
        flusher.take_scheduled(&mut walk.outboxes);
        let (client, socket) = connected().await;
        clients.push(client);
        let late = Outbox::direct(DEFAULT_CAPACITY, socket, Arc::clone(&flusher));
        late.push(&frame::text(b"y"), Delivery::Ordered);
        // Say the first was written: it went idle.
        let mut batch = Vec::new();
        assert!(matches!(
            outboxes[0].take_for_flush(&mut batch, MAX_BATCH),
            FlushTake::Frames(_)
        ));
        batch.clear();
        assert!(matches!(
            outboxes[0].take_for_flush(&mut batch, MAX_BATCH),
            FlushTake::Done
        ));
        drop(walk);
        // The second (being written), the third and the late one are the writers' now.
        for outbox in [&outboxes[1], &outboxes[2], &late] {
            assert_eq!(
                outbox.drain_into(&mut batch, MAX_BATCH),
                crate::delivery::outbox::Drain::Frames
            );
        }
        // The queue is closed: a push to an idle outbox goes to its writer.
        outboxes[0].push(&frame::text(b"z"), Delivery::Ordered);
        assert_eq!(
            outboxes[0].drain_into(&mut batch, MAX_BATCH),
            crate::delivery::outbox::Drain::Frames
        );
        let mut none = Vec::new();
        flusher.take_scheduled(&mut none);
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn a_burst_the_flusher_has_not_reached_goes_to_the_writer_not_4008() {
        let (_client, socket) = connected().await;
        let flusher = Flusher::new(); // not running: as if its thread were descheduled
        let outbox = Outbox::direct(2, socket, Arc::clone(&flusher));
        let pushed = |text: &'static [u8]| outbox.push(&frame::text(text), Delivery::Ordered);
        assert_eq!(pushed(b"a"), crate::delivery::outbox::Pushed::Queued);
        assert_eq!(pushed(b"b"), crate::delivery::outbox::Pushed::Queued);
        // Full, but never offered to the socket: the writer takes over.
        assert_eq!(pushed(b"c"), crate::delivery::outbox::Pushed::Queued);
        // The flusher's entry for it is stale now and does nothing.
        let mut walking = Vec::new();
        flusher.take_scheduled(&mut walking);
        let mut batch = Vec::new();
        assert!(matches!(
            walking[0].take_for_flush(&mut batch, MAX_BATCH),
            FlushTake::Done
        ));
        assert!(batch.is_empty());
        // The socket is the writer's, and the policy applies again: a push
        // past capacity before the writer has drained closes with 4008.
        assert!(matches!(
            pushed(b"d"),
            crate::delivery::outbox::Pushed::Overflowed(4)
        ));
        assert_eq!(
            outbox.drain_into(&mut batch, MAX_BATCH),
            crate::delivery::outbox::Drain::Close(CloseCode::SlowConsumer)
        );
    }

    #[tokio::test]
    async fn a_burst_is_delivered_in_order_by_the_writer_that_took_it_over() {
        let (mut client, socket) = connected().await;
        let flusher = Flusher::new(); // never runs
        let outbox = Outbox::direct(2, Arc::clone(&socket), Arc::clone(&flusher));
        for text in [&b"a"[..], b"b", b"c"] {
            outbox.push(&frame::text(text), Delivery::Ordered);
        }
        outbox.close(CloseCode::Normal);
        let mut io = SharedSocket(socket);
        let end = writer::run(&outbox, &mut io, Duration::from_secs(5)).await;
        assert!(matches!(end, WriterEnd::Closed(CloseCode::Normal)));
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let mut expected = Vec::new();
        for text in [&b"a"[..], b"b", b"c"] {
            expected.extend_from_slice(&frame::text(text));
        }
        expected.extend_from_slice(&frame::close(CloseCode::Normal));
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn the_writer_keeps_off_a_socket_the_flusher_owns() {
        let (_client, socket) = connected().await;
        let flusher = Flusher::new(); // not running: scheduled outboxes wait
        let outbox = Outbox::direct(DEFAULT_CAPACITY, socket, Arc::clone(&flusher));
        outbox.push(&frame::text(b"a"), Delivery::Ordered);
        let mut batch = Vec::new();
        assert_eq!(
            outbox.drain_into(&mut batch, MAX_BATCH),
            crate::delivery::outbox::Drain::Idle
        );
        assert!(batch.is_empty());
        assert_eq!(outbox.len(), 1);
    }

    #[tokio::test]
    async fn a_stopped_flusher_gives_scheduled_outboxes_back_to_their_writers() {
        let (mut client, socket) = connected().await;
        let flusher = Flusher::new();
        let outbox = Outbox::direct(DEFAULT_CAPACITY, Arc::clone(&socket), Arc::clone(&flusher));
        outbox.push(&frame::text(b"before"), Delivery::Ordered);
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        Arc::clone(&flusher).run(shutdown).await;
        // Scheduled before the stop, and pushed after it: the writer sends both.
        outbox.push(&frame::text(b"after"), Delivery::Ordered);
        outbox.close(CloseCode::GoingAway);
        let mut io = SharedSocket(socket);
        let end = writer::run(&outbox, &mut io, Duration::from_secs(5)).await;
        assert!(matches!(end, WriterEnd::Closed(CloseCode::GoingAway)));
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let mut expected = Vec::new();
        expected.extend_from_slice(&frame::text(b"before"));
        expected.extend_from_slice(&frame::text(b"after"));
        expected.extend_from_slice(&frame::close(CloseCode::GoingAway));
        assert_eq!(got, expected);
    }

    #[test]
    fn skip_written_keeps_the_unwritten_tail_in_order() {
        let mut batch = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"de"),
            Bytes::from_static(b"fgh"),
        ];
        assert!(skip_written(&mut batch, 4));
        assert_eq!(
            batch,
            vec![Bytes::from_static(b"e"), Bytes::from_static(b"fgh")]
        );
        assert!(!skip_written(&mut batch, 1));
        assert_eq!(batch, vec![Bytes::from_static(b"fgh")]);
        assert!(!skip_written(&mut batch, 0));
        assert_eq!(batch, vec![Bytes::from_static(b"fgh")]);
    }
}
