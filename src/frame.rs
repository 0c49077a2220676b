//! Server-to-client WebSocket frames, encoded once and shared. Server frames
//! are unmasked (RFC 6455 §5.1), so the bytes of a frame are identical for
//! every recipient: a room encodes an event into one [`Bytes`] holding header
//! and payload together, and every member's outbox queues a clone of it (a
//! reference-count increment, no copy). Payloads are serialised straight into
//! the frame's buffer behind reserved header room, so framing costs no copy.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::close_code::CloseCode;

/// The largest header a server frame needs: 2 bytes plus an 8-byte length.
const MAX_HEADER: usize = 10;

const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Writes a frame header for `len` payload bytes into the last bytes of
/// `buf[..MAX_HEADER]` and returns where the frame starts.
fn place_header(buf: &mut [u8], opcode: u8, len: usize) -> usize {
    let first = 0x80 | opcode; // FIN + opcode, never masked.
    let (start, header_len) = if len < 126 {
        (MAX_HEADER - 2, 2)
    } else if len <= u16::MAX as usize {
        (MAX_HEADER - 4, 4)
    } else {
        (0, 10)
    };
    buf[start] = first;
    match header_len {
        2 => buf[start + 1] = len as u8,
        4 => {
            buf[start + 1] = 126;
            buf[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            buf[start + 1] = 127;
            buf[start + 2..start + 10].copy_from_slice(&(len as u64).to_be_bytes());
        }
    }
    start
}

/// Builds a text frame whose payload is written by `write` into the buffer.
/// The payload is produced in place: no intermediate copy.
pub fn text_with<E>(
    size_hint: usize,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<Bytes, E> {
    let mut buf = Vec::with_capacity(MAX_HEADER + size_hint);
    buf.resize(MAX_HEADER, 0);
    write(&mut buf)?;
    let len = buf.len() - MAX_HEADER;
    let start = place_header(&mut buf, OP_TEXT, len);
    Ok(Bytes::from(buf).slice(start..))
}

/// Serialises `value` as JSON into a text frame.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Bytes {
    // Serialising our own message types into a Vec cannot fail: they hold no
    // maps with non-string keys and no failing Serialize impls.
    text_with(256, |buf| serde_json::to_writer(buf, value))
        .expect("serialising a server message to JSON cannot fail")
}

/// The payload of a frame built by this module (its bytes after the header),
/// sharing the frame's memory.
pub fn payload(frame: &Bytes) -> Bytes {
    let header = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        Some(_) => 2,
        None => return Bytes::new(),
    };
    frame.slice(header.min(frame.len())..)
}

/// A text frame around an already-encoded payload (one copy of the payload).
pub fn text(payload: &[u8]) -> Bytes {
    control_or_data(OP_TEXT, payload)
}

/// A binary frame around `payload` (one copy of the payload).
pub fn binary(payload: &[u8]) -> Bytes {
    control_or_data(OP_BINARY, payload)
}

/// A close frame with the code and reason from [`CloseCode`].
pub fn close(code: CloseCode) -> Bytes {
    let reason = code.reason().as_bytes();
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.code().to_be_bytes());
    payload.extend_from_slice(reason);
    control_or_data(OP_CLOSE, &payload)
}

/// A ping frame; the server pings idle sessions to elicit a pong.
pub fn ping(payload: &[u8]) -> Bytes {
    control_or_data(OP_PING, payload)
}

/// A pong frame echoing a client's ping payload.
pub fn pong(payload: &[u8]) -> Bytes {
    control_or_data(OP_PONG, payload)
}

fn control_or_data(opcode: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(MAX_HEADER + payload.len());
    buf.put_bytes(0, MAX_HEADER);
    let start = place_header(&mut buf, opcode, payload.len());
    buf.put_slice(payload);
    buf.freeze().slice(start..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_frame_has_two_byte_header() {
        let f = text(b"hello");
        assert_eq!(&f[..], b"\x81\x05hello");
    }

    #[test]
    fn medium_text_frame_uses_16_bit_length() {
        let payload = vec![b'a'; 300];
        let f = text(&payload);
        assert_eq!(&f[..4], &[0x81, 126, 0x01, 0x2c]);
        assert_eq!(f.len(), 304);
    }

    #[test]
    fn large_text_frame_uses_64_bit_length() {
        let payload = vec![b'a'; 70_000];
        let f = text(&payload);
        assert_eq!(f[0], 0x81);
        assert_eq!(f[1], 127);
        assert_eq!(u64::from_be_bytes(f[2..10].try_into().unwrap()), 70_000);
        assert_eq!(f.len(), 70_010);
    }

    #[test]
    fn json_frame_is_serialised_in_place() {
        let f = json(&serde_json::json!({"type": "pong"}));
        assert_eq!(&f[2..], br#"{"type":"pong"}"#);
        assert_eq!(f[1] as usize, f.len() - 2);
    }

    #[test]
    fn payload_is_a_view_after_the_header() {
        for len in [5, 300, 70_000] {
            let body = vec![b'x'; len];
            assert_eq!(payload(&text(&body)), Bytes::from(body));
        }
    }

    #[test]
    fn close_frame_carries_code_and_reason() {
        let f = close(CloseCode::SlowConsumer);
        assert_eq!(f[0], 0x88);
        assert_eq!(u16::from_be_bytes([f[2], f[3]]), 4008);
        assert_eq!(&f[4..], CloseCode::SlowConsumer.reason().as_bytes());
    }
}
