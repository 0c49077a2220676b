//! A seed 000 connection (`/ws/modeldata-stream`): the modeldata stream,
//! unchanged.
//!
//! A connection auto-joins its feed's room (`modeldata`, or one per distinct
//! option set) and gets the room's snapshot at once: the latest
//! `initial_modeldata` (first five groups). Every interval the feed publishes
//! one `modeldata_update` (all groups), sent byte for byte as the feed
//! encoded it (`crate::dialect::seed000`), plus `modeldata_status` when the
//! source degrades or recovers. Any client message gets an `echo` reply.
//!
//! The session holds a lease on its feed: the feed's broadcast starts with
//! the first connection and stops when the last one leaves (seed 000).

use std::sync::Arc;

use bytes::Bytes;

use crate::close_code::CloseCode;
use crate::dialect::{DialectKind, DialectSession, Greeting, JoinError, Link, MessageKind};
use crate::frame;
use crate::protocol::modeldata::Echo;
use crate::protocol::time;
use crate::sources::modeldata::{FeedLease, FeedOptions, ModelData};
use crate::telemetry::metrics;

/// One seed 000 connection's state.
#[derive(Debug)]
pub struct Seed000Session {
    /// The node's modeldata service, to lease the feed on open.
    modeldata: Arc<ModelData>,
    /// This connection's (validated) options.
    options: FeedOptions,
    /// Keeps the feed broadcasting while this connection is open.
    lease: Option<FeedLease>,
}

impl Seed000Session {
    /// A session for already validated options.
    pub fn new(modeldata: Arc<ModelData>, options: FeedOptions) -> Self {
        Seed000Session {
            modeldata,
            options,
            lease: None,
        }
    }
}

/// An `error` frame (rate limiting, unjoinable feed); counts one error.
fn error_frame(message: &str) -> Bytes {
    metrics().error();
    frame::json(&serde_json::json!({
        "type": "error",
        "message": message,
        "timestamp": time::now(),
    }))
}

impl DialectSession for Seed000Session {
    const KIND: DialectKind = DialectKind::Seed000;

    fn on_open(&mut self, link: &mut impl Link) {
        // Join first, then lease: a feed that is just starting publishes its
        // first snapshot into a room that already has this member.
        // Greeted with the room's snapshot: the latest `initial_modeldata`
        // (and the source status while it is degraded).
        let greet: Greeting = Box::new(|retained| retained.snapshot.to_vec());
        match link.join(self.options.room(), greet) {
            Ok(_) => self.lease = Some(self.modeldata.attach(&self.options)),
            Err(e) => {
                link.send(error_frame(&e.to_string()));
                link.close(match e {
                    JoinError::Forbidden(_) => CloseCode::Forbidden,
                    _ => CloseCode::InternalError,
                });
            }
        }
    }

    fn on_message(&mut self, link: &mut impl Link, _kind: MessageKind, payload: &mut [u8]) {
        let text = String::from_utf8_lossy(payload);
        link.send(frame::json(&Echo {
            r#type: "echo",
            message: &text,
            timestamp: time::now(),
        }));
    }

    fn rate_limited(&mut self, limit_per_sec: u32) -> Bytes {
        error_frame(&format!(
            "Rate limit exceeded: at most {limit_per_sec} messages per second"
        ))
    }
}
