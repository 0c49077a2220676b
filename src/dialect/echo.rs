//! The conformance echo endpoint `/v1/echo`: every complete message comes
//! back unchanged, text as text and binary as binary. It exists so that the
//! Autobahn|Testsuite cases can drive the production frame reader, message
//! assembler, close handling, writer and limits (see `docs/conformance.md`);
//! it joins no room and is served only with `ROOMCAST_ECHO=true`.

use bytes::Bytes;

use super::{DialectKind, DialectSession, Link, MessageKind};
use crate::frame;

/// One echo connection; it keeps no state.
#[derive(Debug, Default)]
pub struct EchoSession;

impl DialectSession for EchoSession {
    const KIND: DialectKind = DialectKind::Echo;

    fn on_open(&mut self, _link: &mut impl Link) {}

    fn on_message(&mut self, link: &mut impl Link, kind: MessageKind, payload: &mut [u8]) {
        link.send(match kind {
            MessageKind::Text => frame::text(payload),
            MessageKind::Binary => frame::binary(payload),
        });
    }

    fn rate_limited(&mut self, limit_per_sec: u32) -> Bytes {
        frame::json(&serde_json::json!({
            "error": format!("rate limit exceeded: at most {limit_per_sec} messages per second"),
        }))
    }
}
