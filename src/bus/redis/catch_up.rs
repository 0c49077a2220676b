//! Catching a room up from its Redis stream: loading a room's recent
//! history when it gains its first local member, delivering each event from
//! the subscriber in `seq` order, and filling a gap from the stream before
//! the event past it (or delivering with the loss counted when the stream no
//! longer holds it).

use bytes::Bytes;
use redis::AsyncCommands;
use redis::streams::StreamRangeReply;

use super::{CATCH_UP_PAGE, RedisBus, with_timeout};
use crate::bus::BusError;
use crate::catalog::{GreetingPolicy, RoomName};
use crate::frame;
use crate::protocol::Event;
use crate::rooms::{Head, Remote};
use crate::telemetry::metrics;

impl RedisBus {
    /// Reads the room's stream after `after` (exclusive), at most `count` entries:
    /// `(seq, epoch, json)` in order.
    async fn read_stream(
        &self,
        room: &RoomName,
        after: u64,
        count: usize,
    ) -> Result<Vec<StreamEntry>, BusError> {
        let mut conn = self.commands.clone();
        let reply: redis::RedisResult<StreamRangeReply> = with_timeout(conn.xrange_count(
            self.key("h", room.as_str()),
            format!("({after}-0"),
            "+",
            count,
        ))
        .await;
        Ok(stream_entries(self.command_result(reply)?))
    }

    /// The room's current epoch in Redis (`None`: unknown or no lineage yet).
    pub(super) async fn epoch_of(&self, room: &RoomName) -> Option<u64> {
        let mut conn = self.commands.clone();
        let epoch: redis::RedisResult<Option<u64>> =
            with_timeout(conn.get(self.key("epoch", room.as_str()))).await;
        epoch.ok().flatten()
    }

    /// Gives a room that is loading its recent history from the stream, so
    /// the members waiting for it are greeted (seed 001's `history`, a run's
    /// replay) and admitted. If the stream cannot be read the room starts
    /// empty: members are not kept waiting on Redis.
    ///
    /// The head and the newest page are read atomically; a longer history (a
    /// whole run) is read in further pages of [`CATCH_UP_PAGE`], each bounded
    /// by the command timeout (older entries never change, only go). Each
    /// entry is decoded as its room's family reads it: history keeps the
    /// canonical JSON (not a neutral event's bus form), and the newest event
    /// that carries a snapshot sets the room's.
    pub(super) async fn preload(&self, room: &RoomName) {
        let Some(local) = self.rooms.get(room) else {
            return;
        };
        if !local.is_loading() {
            return;
        }
        // What the room retains, and the latest entry of a snapshot room.
        let count = match room.policy().greeting {
            GreetingPolicy::Snapshot => 1,
            GreetingPolicy::History => self.rooms.history_size_of(room),
        };
        let (mut newest_first, head) = match self.read_head(room, count.min(CATCH_UP_PAGE)).await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(room = %room, error = %e, "could not load the room's history; starting it empty");
                local.preload(Vec::new(), Head::Unknown);
                return;
            }
        };
        while newest_first.len() < count
            && newest_first.len() % CATCH_UP_PAGE == 0
            && let Some(&(oldest, _)) = newest_first.last()
        {
            let page = (count - newest_first.len()).min(CATCH_UP_PAGE);
            match self.read_before(room, oldest, page).await {
                Ok(older) if older.is_empty() => break,
                Ok(older) => newest_first.extend(older),
                Err(e) => {
                    tracing::warn!(room = %room, error = %e, loaded = newest_first.len(), "could not load the rest of the room's history; greeting with what was read");
                    break;
                }
            }
        }
        newest_first.truncate(count);
        let mut entries = Vec::with_capacity(newest_first.len());
        let mut snapshot = None;
        for (seq, body) in newest_first.into_iter().rev() {
            let decoded = body.and_then(|(epoch, json)| {
                Event::from_wire(room, &json).map(|(event, canonical)| (epoch, event, canonical))
            });
            let Some((epoch, event, canonical)) = decoded else {
                tracing::warn!(room = %room, seq, "undecodable event in the room's stream; not replayed");
                continue;
            };
            if let Some(frames) = event.snapshot() {
                snapshot = Some(frames.to_vec());
            }
            entries.push((seq, epoch, frame::payload(&canonical)));
        }
        if let Some(snapshot) = snapshot {
            local.set_snapshot(snapshot);
        }
        local.preload(entries, head);
    }

    /// The room's head (`seq`, epoch) and its newest `count` stream entries
    /// (newest first), read atomically.
    async fn read_head(
        &self,
        room: &RoomName,
        count: usize,
    ) -> Result<(Vec<StreamEntry>, Head), BusError> {
        let mut conn = self.commands.clone();
        let reply: redis::RedisResult<(Option<u64>, Option<u64>, StreamRangeReply)> = with_timeout(
            redis::pipe()
                .atomic()
                .get(self.key("seq", room.as_str()))
                .get(self.key("epoch", room.as_str()))
                // `COUNT 0` means "all" to some Redis versions: ask for one
                // and keep none.
                .xrevrange_count(self.key("h", room.as_str()), "+", "-", count.max(1))
                .query_async(&mut conn),
        )
        .await;
        let (seq, epoch, tail) = self.command_result(reply)?;
        let mut entries = stream_entries(tail);
        entries.truncate(count);
        let head = match (epoch, seq) {
            (Some(epoch), Some(seq)) => Head::Known { epoch, seq },
            _ => Head::Empty,
        };
        Ok((entries, head))
    }

    /// At most `count` stream entries before `seq` (exclusive), newest first.
    async fn read_before(
        &self,
        room: &RoomName,
        seq: u64,
        count: usize,
    ) -> Result<Vec<StreamEntry>, BusError> {
        let mut conn = self.commands.clone();
        let reply: redis::RedisResult<StreamRangeReply> = with_timeout(conn.xrevrange_count(
            self.key("h", room.as_str()),
            format!("({seq}-0"),
            "-",
            count,
        ))
        .await;
        Ok(stream_entries(self.command_result(reply)?))
    }

    /// Delivers one event received from Redis into its local room, pulling any
    /// events it missed from the stream first.
    pub(super) async fn handle_event(&self, room: &RoomName, seq: u64, epoch: u64, json: &[u8]) {
        let Some((event, canonical)) = Event::from_wire(room, json) else {
            tracing::warn!(room = %room, "undecodable event on the bus; skipped");
            metrics().error();
            return;
        };
        if !event.room().eq(room) {
            tracing::warn!(room = %room, "event published on another room's channel; skipped");
            return;
        }
        if let Some(Remote::Gap { last }) =
            self.rooms.deliver(&event, &canonical, seq, epoch, false)
        {
            match self.head_seq(room).await {
                // A seq Redis never issued would block the room: refuse it.
                Ok(head) if seq > head => {
                    tracing::warn!(room = %room, seq, head, "bus message beyond the room's head; skipped");
                    metrics().error();
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(room = %room, error = %e, "could not check the room's head")
                }
            }
            if let Err(e) = self.fill_gap(room, last, Some(seq)).await {
                tracing::warn!(room = %room, error = %e, "could not read the room's stream to fill a gap");
                metrics().bus_gaps.increment(1);
            }
            self.rooms.deliver(&event, &canonical, seq, epoch, true);
        }
    }

    /// Delivers a batch received from Redis (consecutive events from
    /// `first`) into its local room as one unit when it follows the room's
    /// copy; otherwise, or when an event of it is undecodable, event by
    /// event, with gaps filled as for single events.
    pub(super) async fn handle_batch(
        &self,
        room: &RoomName,
        first: u64,
        epoch: u64,
        jsons: &[&[u8]],
    ) {
        let decoded: Option<Vec<(Event, Bytes)>> = jsons
            .iter()
            .map(|json| Event::from_wire(room, json).filter(|(event, _)| event.room() == *room))
            .collect();
        if let Some(decoded) = &decoded {
            let events: Vec<(&Event, &Bytes)> = decoded.iter().map(|(e, f)| (e, f)).collect();
            if self
                .rooms
                .deliver_batch(room, &events, first, epoch)
                .is_some()
            {
                return;
            }
        }
        for (json, seq) in jsons.iter().zip(first..) {
            self.handle_event(room, seq, epoch, json).await;
        }
    }

    /// Delivers the room's events after `last` and before `before` (all of
    /// them when `before` is `None`) from its stream; what the stream no
    /// longer holds, or holds undecodable, is counted as a gap.
    pub(super) async fn fill_gap(
        &self,
        room: &RoomName,
        mut last: u64,
        before: Option<u64>,
    ) -> Result<(), BusError> {
        loop {
            let entries = self.read_stream(room, last, CATCH_UP_PAGE).await?;
            let full = entries.len() == CATCH_UP_PAGE;
            for (seq, body) in entries {
                if before.is_some_and(|b| seq >= b) {
                    return Ok(());
                }
                let event = body.as_ref().and_then(|(epoch, json)| {
                    Event::from_wire(room, json)
                        .map(|(event, canonical)| (event, *epoch, canonical))
                });
                let Some((event, epoch, canonical)) = event else {
                    metrics().bus_gaps.increment(1);
                    tracing::warn!(room = %room, seq, "undecodable event in the room's stream; skipped");
                    last = seq;
                    continue;
                };
                let accept = seq > last + 1;
                if accept {
                    metrics().bus_gaps.increment(1);
                    tracing::warn!(room = %room, from = last + 1, to = seq - 1, "events lost from the bus (trimmed from the stream)");
                }
                self.rooms.deliver(&event, &canonical, seq, epoch, accept);
                last = seq;
            }
            if !full {
                if let Some(b) = before
                    && b > last + 1
                {
                    metrics().bus_gaps.increment(1);
                    tracing::warn!(room = %room, from = last + 1, to = b - 1, "events lost from the bus (not in the stream)");
                }
                return Ok(());
            }
        }
    }

    /// The room's last `seq` in Redis.
    async fn head_seq(&self, room: &RoomName) -> Result<u64, BusError> {
        let mut conn = self.commands.clone();
        let seq: redis::RedisResult<Option<u64>> =
            with_timeout(conn.get(self.key("seq", room.as_str()))).await;
        Ok(self.command_result(seq)?.unwrap_or(0))
    }
}

/// One stream entry: its `seq` (from the id) and, when well-formed, its
/// epoch and JSON.
type StreamEntry = (u64, Option<(u64, Bytes)>);

/// The entries of a stream reply, in its order; ids that are not `<seq>-0`
/// are skipped (not roomcast's).
fn stream_entries(reply: StreamRangeReply) -> Vec<StreamEntry> {
    reply
        .ids
        .into_iter()
        .filter_map(|entry| {
            let seq = entry.id.split('-').next()?.parse().ok()?;
            let body = (|| {
                let epoch: u64 = entry.get::<String>("e")?.parse().ok()?;
                let data: Vec<u8> = entry.get("d")?;
                Some((epoch, Bytes::from(data)))
            })();
            Some((seq, body))
        })
        .collect()
}
