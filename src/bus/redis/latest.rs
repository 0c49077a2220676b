//! Reading a fleet's rooms sideways, for producers that sample them rather
//! than subscribe: the newest event of every room whose name starts with a
//! prefix (every ticker's last price, for seed 004's price batches), and a
//! registry of rooms some node wants produced (the narrowed price sets its
//! connections hold), each entry expiring unless renewed.

use std::time::Duration;

use bytes::Bytes;
use redis::streams::StreamRangeReply;

use super::{RedisBus, with_timeout};
use crate::bus::BusError;
use crate::catalog::RoomName;

/// Keys one `SCAN` call asks for.
const SCAN_COUNT: usize = 1_000;

impl RedisBus {
    /// The newest event (canonical JSON) of every room whose name starts
    /// with `prefix` and whose stream exists: one `SCAN` pass, then one
    /// pipelined `XREVRANGE … COUNT 1` per room.
    pub async fn latest_events(&self, prefix: &str) -> Result<Vec<(RoomName, Bytes)>, BusError> {
        let mut conn = self.commands();
        let stream_prefix = self.key("h", "");
        let pattern = format!("{stream_prefix}{prefix}*");
        let mut cursor = 0u64;
        let mut rooms = Vec::new();
        loop {
            let reply: redis::RedisResult<(u64, Vec<String>)> = with_timeout(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(&mut conn),
            )
            .await;
            let (next, keys) = self.command_result(reply)?;
            rooms.extend(
                keys.iter()
                    .filter_map(|key| RoomName::from_wire(key.strip_prefix(&stream_prefix)?)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for room in &rooms {
            pipe.xrevrange_count(self.key("h", room.as_str()), "+", "-", 1);
        }
        let reply: redis::RedisResult<Vec<StreamRangeReply>> =
            with_timeout(pipe.query_async(&mut conn)).await;
        let replies = self.command_result(reply)?;
        Ok(rooms
            .into_iter()
            .zip(replies)
            .filter_map(|(room, reply)| {
                let entry = reply.ids.into_iter().next()?;
                let data: Vec<u8> = entry.get("d")?;
                Some((room, Bytes::from(data)))
            })
            .collect())
    }

    /// Whether `room` has a stream in Redis (a fleet node published to it
    /// within the key TTL).
    pub async fn has_stream(&self, room: &RoomName) -> Result<bool, BusError> {
        let mut conn = self.commands();
        let reply: redis::RedisResult<bool> = with_timeout(
            redis::cmd("EXISTS")
                .arg(self.key("h", room.as_str()))
                .query_async(&mut conn),
        )
        .await;
        self.command_result(reply)
    }

    /// Marks `rooms` wanted in the registry `name` for `ttl` from now.
    pub async fn want_rooms(
        &self,
        name: &str,
        rooms: &[RoomName],
        ttl: Duration,
    ) -> Result<(), BusError> {
        if rooms.is_empty() {
            return Ok(());
        }
        let until = now_ms() + ttl.as_millis() as i64;
        let members: Vec<(i64, &str)> = rooms.iter().map(|r| (until, r.as_str())).collect();
        let mut conn = self.commands();
        let key = self.key("want", name);
        let reply: redis::RedisResult<()> = with_timeout(
            redis::pipe()
                .zadd_multiple(&key, &members)
                .ignore()
                .expire(&key, (ttl.as_secs() as i64).max(1) * 2)
                .ignore()
                .query_async(&mut conn),
        )
        .await;
        self.command_result(reply)
    }

    /// The rooms some node still wants in the registry `name` (expired
    /// entries are dropped).
    pub async fn wanted_rooms(&self, name: &str) -> Result<Vec<RoomName>, BusError> {
        let mut conn = self.commands();
        let key = self.key("want", name);
        let now = now_ms();
        let reply: redis::RedisResult<(Vec<String>,)> = with_timeout(
            redis::pipe()
                .zrembyscore(&key, "-inf", now)
                .ignore()
                .zrange(&key, 0, -1)
                .query_async(&mut conn),
        )
        .await;
        let (names,) = self.command_result(reply)?;
        Ok(names
            .iter()
            .filter_map(|n| RoomName::from_wire(n))
            .collect())
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
