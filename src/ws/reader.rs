//! Reads client-to-server WebSocket frames (RFC 6455 §5) off a session's read
//! half. Client frames are small and rare next to the server's fan-out, so the
//! reader holds no buffer while a connection is idle: bytes are buffered only
//! while a frame is arriving and the buffer is released once it is consumed.
//! (A general-purpose reader such as fastwebsockets' keeps an 8 KiB buffer per
//! connection for its lifetime — most of an idle subscriber's memory.)
//!
//! The reader checks what a server must: frames are masked, reserved bits are
//! zero (roomcast negotiates no extensions), opcodes are known, control frames
//! are unfragmented and at most 125 bytes, lengths use their minimal encoding
//! and a 64-bit length has its top bit clear, and no frame exceeds the
//! configured maximum — which is checked from the header, before the payload
//! is read. Reassembly of fragmented messages and UTF-8 checks of text are
//! left to [`super::message`], which knows the limit across fragments.
//!
//! A message must arrive within the message timeout of its first byte (all
//! its fragments, and the control frames between them): a client that starts
//! a frame and stalls would otherwise pin its buffer until the heartbeat.
//! Between messages the reader holds no buffer and no timer.
//!
//! `read_frame` is cancel-safe: all progress lives in `self`, so dropping the
//! future between polls loses nothing.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Largest frame header: 2 bytes, 8-byte extended length, 4-byte mask.
const MAX_HEADER: usize = 14;

/// Smallest read: enough for a typical client message in one system call.
const MIN_READ: usize = 512;

/// Most buffer reserved ahead of bytes that have not arrived: a header that
/// announces 64 KiB and stalls pins this much, not the announced length.
/// The buffer still grows by doubling, so a large message costs a handful
/// of reallocations.
const MAX_READ_AHEAD: usize = 16 * 1024;

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// One unmasked client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Last fragment of its message.
    pub fin: bool,
    /// What the frame carries.
    pub opcode: OpCode,
    /// Unmasked payload, owned (the reader keeps no reference to it).
    pub payload: Vec<u8>,
}

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer closed the connection (cleanly between frames, or mid-frame).
    #[error("connection closed by peer")]
    Eof,
    /// Reading the socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The frame's payload exceeds the maximum message size.
    #[error("frame of {0} bytes exceeds the maximum message size")]
    TooLarge(u64),
    /// The frame breaks RFC 6455 (reason given).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A message was still incomplete when its time ran out.
    #[error("message not completed within {0:?} of its first byte")]
    Timeout(Duration),
}

/// Parsed header of the frame at the front of the buffer.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: OpCode,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
}

/// Reads frames from `io`, buffering only while a frame is in flight.
#[derive(Debug)]
pub struct FrameReader<R> {
    /// The socket's read half.
    io: R,
    /// Bytes read but not yet returned as a frame; empty (no allocation) between frames.
    buf: Vec<u8>,
    /// Largest accepted payload in bytes.
    max_payload: usize,
    /// Time a message may take from its first byte to its last.
    message_timeout: Duration,
    /// When the message in flight must be complete; `None` between messages,
    /// so an idle connection arms no timer.
    deadline: Option<Instant>,
    /// A fragmented data message has started and its final fragment has not
    /// arrived: the deadline keeps running across its frames.
    in_message: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader that starts with `read_ahead` (bytes already read past the
    /// handshake), refusing payloads over `max_payload` bytes and messages
    /// that take longer than `message_timeout` to arrive.
    pub fn new(io: R, read_ahead: &[u8], max_payload: usize, message_timeout: Duration) -> Self {
        FrameReader {
            io,
            buf: read_ahead.to_vec(),
            max_payload,
            message_timeout,
            deadline: None,
            in_message: false,
        }
    }

    /// Parses the header at the front of the buffer, or `None` if incomplete.
    fn parse_header(&self) -> Result<Option<Header>, ReadError> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        if b[0] & 0x70 != 0 {
            return Err(ReadError::Protocol(
                "reserved bits set without an extension",
            ));
        }
        let opcode = OpCode::from_bits(b[0] & 0x0F).ok_or(ReadError::Protocol("unknown opcode"))?;
        let fin = b[0] & 0x80 != 0;
        if b[1] & 0x80 == 0 {
            return Err(ReadError::Protocol("client frames must be masked"));
        }
        let (len_bytes, short) = match b[1] & 0x7F {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let header_len = 2 + len_bytes + 4;
        if b.len() < header_len {
            return Ok(None);
        }
        let len = match short {
            Some(n) => n,
            None if len_bytes == 2 => u64::from(u16::from_be_bytes([b[2], b[3]])),
            None => u64::from_be_bytes(b[2..10].try_into().expect("8 bytes checked above")),
        };
        // RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be
        // 0, and the minimal number of bytes MUST be used.
        if len_bytes == 8 && len >> 63 != 0 {
            return Err(ReadError::Protocol(
                "64-bit payload length with its top bit set",
            ));
        }
        if (len_bytes == 2 && len < 126) || (len_bytes == 8 && len <= u64::from(u16::MAX)) {
            return Err(ReadError::Protocol("payload length not minimally encoded"));
        }
        if opcode.is_control() {
            if !fin {
                return Err(ReadError::Protocol("fragmented control frame"));
            }
            if len > 125 {
                return Err(ReadError::Protocol("control frame longer than 125 bytes"));
            }
        }
        if len > self.max_payload as u64 {
            return Err(ReadError::TooLarge(len));
        }
        let m = header_len - 4;
        Ok(Some(Header {
            fin,
            opcode,
            mask: [b[m], b[m + 1], b[m + 2], b[m + 3]],
            header_len,
            payload_len: len as usize,
        }))
    }

    /// Reads more bytes, reserving at least `want` bytes of room. Between
    /// messages it waits without a timer; once a message has begun, no
    /// longer than its deadline.
    async fn fill(&mut self, want: usize) -> Result<(), ReadError> {
        if self.deadline.is_none() && (self.in_message || !self.buf.is_empty()) {
            self.deadline = Some(Instant::now() + self.message_timeout);
        }
        self.buf.reserve(want.max(MIN_READ));
        let read = match self.deadline {
            None => self.io.read_buf(&mut self.buf).await?,
            Some(deadline) => {
                // Boxed: a timer is large, and only a message split across
                // reads needs one; unboxed it would sit in every idle
                // session's future.
                let read = tokio::time::timeout_at(deadline, self.io.read_buf(&mut self.buf));
                match Box::pin(read).await {
                    Ok(read) => read?,
                    Err(_) => return Err(ReadError::Timeout(self.message_timeout)),
                }
            }
        };
        if read == 0 {
            return Err(ReadError::Eof);
        }
        if self.deadline.is_none() {
            // The first bytes of a message: its clock starts now.
            self.deadline = Some(Instant::now() + self.message_timeout);
        }
        Ok(())
    }

    /// Reads the next frame.
    pub async fn read_frame(&mut self) -> Result<Frame, ReadError> {
        let header = loop {
            if let Some(header) = self.parse_header()? {
                break header;
            }
            self.fill(MAX_HEADER - self.buf.len().min(MAX_HEADER))
                .await?;
        };
        let total = header.header_len + header.payload_len;
        while self.buf.len() < total {
            let missing = total - self.buf.len();
            self.fill(missing.min(MAX_READ_AHEAD)).await?;
        }
        let mut payload = self.buf[header.header_len..total].to_vec();
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= header.mask[i & 3];
        }
        if self.buf.len() == total {
            // Idle again: hold no memory until the next frame.
            self.buf = Vec::new();
        } else {
            self.buf.drain(..total);
        }
        match header.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => self.in_message = !header.fin,
            // Control frames may come between fragments; they neither start
            // nor end a message.
            OpCode::Close | OpCode::Ping | OpCode::Pong => {}
        }
        if !self.in_message {
            // Pipelined bytes of the next message start its clock afresh.
            self.deadline = None;
        }
        Ok(Frame {
            fin: header.fin,
            opcode: header.opcode,
            payload,
        })
    }

    /// Bytes held by the reader (for tests and memory accounting).
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A masked client frame.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    async fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<Frame, String>> {
        let (mut client, server) = tokio::io::duplex(7); // tiny pipe: many partial reads
        // The write may fail once the reader stops early and drops its end.
        let writer = tokio::spawn(async move {
            let _ = client.write_all(&bytes).await;
        });
        let mut reader = FrameReader::new(server, &[], max, Duration::from_secs(10));
        let mut out = Vec::new();
        loop {
            match reader.read_frame().await {
                Ok(f) => out.push(Ok(f)),
                Err(ReadError::Eof) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        drop(reader);
        writer.await.unwrap();
        out
    }

    #[tokio::test]
    async fn reads_masked_frames_of_every_length_class() {
        let mut bytes = Vec::new();
        for len in [0, 5, 125, 126, 300, 70_000] {
            bytes.extend(client_frame(true, 0x1, &vec![b'a'; len]));
        }
        let frames = read_all(bytes, 100_000).await;
        let lens: Vec<_> = frames
            .iter()
            .map(|f| f.as_ref().unwrap().payload.len())
            .collect();
        assert_eq!(lens, vec![0, 5, 125, 126, 300, 70_000]);
        assert!(
            frames
                .iter()
                .all(|f| f.as_ref().unwrap().payload.iter().all(|b| *b == b'a'))
        );
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_from_its_header() {
        let frames = read_all(client_frame(true, 0x1, &[b'x'; 2000]), 1024).await;
        assert_eq!(
            frames,
            vec![Err(
                "frame of 2000 bytes exceeds the maximum message size".into()
            )]
        );
    }

    #[tokio::test]
    async fn protocol_violations_are_named() {
        let mut unmasked = client_frame(true, 0x1, b"hi");
        unmasked[1] &= 0x7F;
        let mut rsv = client_frame(true, 0x1, b"hi");
        rsv[0] |= 0x40;
        for (bytes, expect) in [
            (unmasked, "masked"),
            (rsv, "reserved bits"),
            (client_frame(true, 0x3, b"hi"), "unknown opcode"),
            (client_frame(false, 0x9, b"hi"), "fragmented control"),
            (client_frame(true, 0x9, &[0; 126]), "125 bytes"),
        ] {
            let frames = read_all(bytes, 1024).await;
            let err = frames[0].as_ref().unwrap_err();
            assert!(err.contains(expect), "{err}");
        }
    }

    #[tokio::test]
    async fn lengths_must_be_minimal_and_fit_63_bits() {
        // "hi" with a 16-bit length, and with a 64-bit length.
        let mut long16 = vec![0x81, 0x80 | 126, 0, 2, 0, 0, 0, 0];
        long16.extend_from_slice(b"hi");
        let mut long64 = vec![0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0];
        long64.extend_from_slice(b"hi");
        // 300 bytes announced with 64 bits: still fits 16.
        let mut medium64 = vec![0x82, 0x80 | 127];
        medium64.extend_from_slice(&300u64.to_be_bytes());
        medium64.extend_from_slice(&[0; 4]);
        let mut top_bit = vec![0x82, 0x80 | 127];
        top_bit.extend_from_slice(&(1u64 << 63 | 5).to_be_bytes());
        top_bit.extend_from_slice(&[0; 4]);
        for (bytes, expect) in [
            (long16, "minimally"),
            (long64, "minimally"),
            (medium64, "minimally"),
            (top_bit, "top bit"),
        ] {
            let frames = read_all(bytes, 1 << 20).await;
            let err = frames[0].as_ref().unwrap_err();
            assert!(err.contains(expect), "{err}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_frame_times_out_but_an_idle_reader_waits_forever() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut reader = FrameReader::new(server, &[], 1024, Duration::from_secs(5));
        // Idle: no deadline however long nothing arrives.
        let idle = tokio::time::timeout(Duration::from_secs(3600), reader.read_frame()).await;
        assert!(idle.is_err(), "an idle reader must keep waiting");
        // Half a frame, then silence.
        let frame = client_frame(true, 0x1, b"hello");
        client.write_all(&frame[..4]).await.unwrap();
        let err = reader.read_frame().await.unwrap_err();
        assert!(matches!(err, ReadError::Timeout(_)), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fragmented_message_shares_one_deadline_across_its_frames() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut reader = FrameReader::new(server, &[], 1024, Duration::from_secs(5));
        client
            .write_all(&client_frame(false, 0x1, b"he"))
            .await
            .unwrap();
        assert!(!reader.read_frame().await.unwrap().fin);
        // Each frame comes quickly, but the message never ends.
        let pinger = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if client
                    .write_all(&client_frame(true, 0x9, b""))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        let mut pings = 0;
        let err = loop {
            match reader.read_frame().await {
                Ok(frame) => {
                    assert_eq!(frame.opcode, OpCode::Ping);
                    pings += 1;
                }
                Err(e) => break e,
            }
        };
        assert!(matches!(err, ReadError::Timeout(_)), "{err}");
        assert!(pings < 10, "the deadline ran from the message's first byte");
        pinger.abort();
    }

    #[tokio::test]
    async fn fragments_and_control_frames_come_through_in_order() {
        let mut bytes = client_frame(false, 0x1, b"he");
        bytes.extend(client_frame(true, 0x9, b"p"));
        bytes.extend(client_frame(true, 0x0, b"llo"));
        let frames: Vec<_> = read_all(bytes, 1024)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(frames[0].opcode, OpCode::Text);
        assert!(!frames[0].fin);
        assert_eq!(frames[1].opcode, OpCode::Ping);
        assert_eq!(frames[2].opcode, OpCode::Continuation);
        assert_eq!(frames[2].payload, b"llo");
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_announced_length_does_not_reserve_its_size_up_front() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut reader = FrameReader::new(server, &[], 1 << 20, Duration::from_secs(10));
        let frame = client_frame(true, 0x2, &vec![1; 1 << 20]);
        // The header and a few bytes of a 1 MiB frame.
        client.write_all(&frame[..20]).await.unwrap();
        let pending = tokio::time::timeout(Duration::from_millis(50), reader.read_frame()).await;
        assert!(pending.is_err(), "the frame is incomplete");
        assert!(
            reader.buffered_capacity() <= 2 * MAX_READ_AHEAD,
            "{}",
            reader.buffered_capacity()
        );
        client.write_all(&frame[20..]).await.unwrap();
        assert_eq!(reader.read_frame().await.unwrap().payload.len(), 1 << 20);
    }

    #[tokio::test]
    async fn idle_reader_holds_no_buffer_and_read_ahead_is_used() {
        let first = client_frame(true, 0x1, b"early");
        let (_client, server) = tokio::io::duplex(64);
        let mut reader = FrameReader::new(server, &first, 1024, Duration::from_secs(10));
        let frame = reader.read_frame().await.unwrap();
        assert_eq!(frame.payload, b"early");
        assert_eq!(reader.buffered_capacity(), 0);
    }
}
