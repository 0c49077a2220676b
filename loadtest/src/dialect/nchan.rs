//! nchan (the nginx pub/sub module), for comparison runs. A subscriber just
//! opens a WebSocket on `/sub/<room>` — nothing to send, nothing to wait for
//! (the subscription exists once the handshake completes). A publisher POSTs
//! a body to `/pub/<room>` and every subscriber receives that body verbatim
//! as a text frame, so the same seed-shaped JSON with the scheduled time in
//! `volume` is published and scanned exactly as for roomcast.

use super::seed001::write_price_body;
use super::{Classified, Dialect};
use crate::scan::FieldScanner;

/// The nchan dialect.
pub struct Nchan {
    /// Finds the scheduled time (`"volume":`) in the raw published body.
    scanner: FieldScanner,
}

impl Nchan {
    /// The dialect (stateless apart from its scanner).
    pub fn new() -> Self {
        Nchan {
            scanner: FieldScanner::new(br#""volume":"#),
        }
    }
}

impl Dialect for Nchan {
    fn name(&self) -> &'static str {
        "nchan"
    }

    fn ws_path(&self, rooms: &[String]) -> String {
        // One channel per connection; nchan multiplexing (`/sub/a,b`) needs
        // extra config, and every scenario here joins one room per connection.
        format!(
            "/sub/{}",
            rooms.first().map(String::as_str).unwrap_or("LT0")
        )
    }

    fn subscribe_messages(&self, _rooms: &[String]) -> Vec<String> {
        Vec::new()
    }

    fn confirmations(&self, _rooms: usize) -> usize {
        0
    }

    fn classify(&self, payload: &[u8]) -> Classified {
        match self.scanner.scan(payload) {
            Some(ts) => Classified::Event(ts),
            None => Classified::Other,
        }
    }

    fn publish_path(&self, room: &str) -> String {
        format!("/pub/{room}")
    }

    fn write_publish_body(&self, room: &str, seq: u64, scheduled_us: u64, out: &mut Vec<u8>) {
        write_price_body(room, seq, scheduled_us, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_body_is_the_delivered_event() {
        let d = Nchan::new();
        let mut body = Vec::new();
        d.write_publish_body("LT1", 3, 987_654, &mut body);
        assert_eq!(d.classify(&body), Classified::Event(987_654));
        assert_eq!(d.ws_path(&["LT1".into()]), "/sub/LT1");
        assert_eq!(d.publish_path("LT1"), "/pub/LT1");
        assert!(d.subscribe_messages(&["LT1".into()]).is_empty());
    }
}
