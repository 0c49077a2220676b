//! A lean WebSocket client: a raw `TcpStream`, a hand-written RFC 6455
//! opening handshake, and the client's own framing ([`WsClient`]): masked
//! writes, unmasked server frames parsed straight out of one read buffer.
//! The handshake response is consumed with `peek` + an exact read so any
//! frame the server sends right behind its `101` (seed 001's `connection`
//! ack) stays in the socket for the frame reader.
//!
//! The reader is built for the receiving end of a fan-out: one `read` may
//! bring many frames, and [`WsClient::take_frames`] hands every complete one to
//! the caller from the buffer (no copy, no allocation), so the caller reads
//! the clock once per `read`, not once per frame. Pings are answered and a
//! server's close is echoed, as a browser would. Per connection this costs one
//! read buffer ([`READ_BUF`], grown only for a larger frame).

use std::io;
use std::time::Duration;

use base64::Engine;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::target::Target;

/// The RFC 6455 GUID appended to the key for `Sec-WebSocket-Accept`.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest handshake response head accepted.
const MAX_HEAD: usize = 4096;

/// Initial read buffer per connection: a few dozen ~200-byte frames per `read`.
pub const READ_BUF: usize = 8 * 1024;

/// Largest server frame accepted (a modeldata snapshot is a few MB).
const MAX_FRAME: usize = 16 << 20;

/// Why a connection could not be opened; [`ConnectError::reason`] is the
/// report's key, so causes are counted, not just failures.
#[derive(Debug)]
pub enum ConnectError {
    /// TCP connect failed (refused, no ports left, …).
    Connect(io::Error),
    /// Reading or writing the handshake failed.
    Io(io::Error),
    /// The server answered with this HTTP status instead of 101 (503 at its connection cap).
    Status(u16),
    /// The server closed before completing the handshake.
    Eof,
    /// The response was not a valid handshake (bad status line, accept key, too long).
    Protocol(&'static str),
}

impl ConnectError {
    /// A short, stable reason for counting.
    pub fn reason(&self) -> String {
        match self {
            ConnectError::Connect(e) => format!("connect: {}", kind(e)),
            ConnectError::Io(e) => format!("handshake io: {}", kind(e)),
            ConnectError::Status(s) => format!("http {s}"),
            ConnectError::Eof => "eof during handshake".to_string(),
            ConnectError::Protocol(p) => format!("bad handshake: {p}"),
        }
    }
}

fn kind(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => "no free local port (EADDRNOTAVAIL)".to_string(),
        Some(libc::EMFILE) | Some(libc::ENFILE) => "too many open files".to_string(),
        _ => format!("{:?}", e.kind()),
    }
}

/// A random-looking 16-byte key, base64: different per connection as the RFC
/// asks (a server may not check, but should not see identical keys).
fn new_key() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    let state = RandomState::new();
    let a = state.hash_one(1u8);
    let b = state.hash_one(2u8);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `Sec-WebSocket-Accept` value a server must answer to `key`.
pub fn accept_for(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Status code of a response head, and whether its `Sec-WebSocket-Accept` is `accept`.
fn check_head(head: &[u8], accept: &str) -> Result<(), ConnectError> {
    let text = std::str::from_utf8(head).map_err(|_| ConnectError::Protocol("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or(ConnectError::Protocol("status line"))?;
    if status != 101 {
        return Err(ConnectError::Status(status));
    }
    let ok = lines.any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("sec-websocket-accept") && value.trim() == accept
        })
    });
    if ok {
        Ok(())
    } else {
        Err(ConnectError::Protocol("Sec-WebSocket-Accept"))
    }
}

/// Opens a WebSocket to `target` at `path`. `rcvbuf` shrinks the socket's
/// receive buffer (set before connecting so the window is small from the
/// start): slow consumers use it so the server's side backs up quickly.
pub async fn connect(
    target: &Target,
    path: &str,
    rcvbuf: Option<u32>,
) -> Result<WsClient, ConnectError> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(ConnectError::Connect)?;
    if let Some(size) = rcvbuf {
        socket
            .set_recv_buffer_size(size)
            .map_err(ConnectError::Connect)?;
    }
    let mut stream = socket
        .connect(target.addr)
        .await
        .map_err(ConnectError::Connect)?;
    stream.set_nodelay(true).map_err(ConnectError::Io)?;

    let key = new_key();
    let request = format!(
        "GET {prefix}{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        prefix = target.prefix,
        host = target.host_header,
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(ConnectError::Io)?;

    // Peek until the head is complete, then consume exactly the head.
    let mut buf = [0u8; MAX_HEAD];
    let head_len = loop {
        let n = stream.peek(&mut buf).await.map_err(ConnectError::Io)?;
        if n == 0 {
            return Err(ConnectError::Eof);
        }
        if let Some(i) = memchr::memmem::find(&buf[..n], b"\r\n\r\n") {
            break i + 4;
        }
        if n == buf.len() {
            return Err(ConnectError::Protocol("response head too long"));
        }
        // A partial head (rare: it is one small segment): let more arrive.
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    stream
        .read_exact(&mut buf[..head_len])
        .await
        .map_err(ConnectError::Io)?;
    check_head(&buf[..head_len], &accept_for(&key))?;

    Ok(WsClient {
        stream,
        buf: Vec::new(),
        start: 0,
        closed: false,
        replies: Vec::new(),
    })
}

/// A frame's opcode (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

/// One complete server frame, borrowed from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// What it carries.
    pub opcode: OpCode,
    /// Its payload (servers do not mask).
    pub payload: &'a [u8],
}

/// Why reading stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The server closed the TCP connection.
    Eof,
    /// Reading or answering failed.
    Io(io::Error),
    /// The server broke the framing rules (reason given).
    Protocol(&'static str),
}

impl ReadError {
    /// A short, stable reason for counting.
    pub fn reason(&self) -> String {
        match self {
            ReadError::Eof => "eof".to_string(),
            ReadError::Io(e) => format!("io: {}", kind(e)),
            ReadError::Protocol(p) => format!("ws: {p}"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// A connected WebSocket client.
#[derive(Debug)]
pub struct WsClient {
    /// The socket.
    stream: TcpStream,
    /// Bytes read and not yet handed out; `start` marks the first unconsumed.
    buf: Vec<u8>,
    /// Offset of the first byte of `buf` not yet consumed.
    start: usize,
    /// We sent a close frame: a server close is its reply, not echoed again.
    closed: bool,
    /// Pongs and a close echo waiting to be written (usually empty).
    replies: Vec<u8>,
}

/// A parsed header: opcode, header length, payload length.
fn parse_header(b: &[u8]) -> Result<Option<(OpCode, usize, usize)>, ReadError> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[0] & 0x80 == 0 || b[0] & 0x0F == 0 {
        return Err(ReadError::Protocol("fragmented frame"));
    }
    if b[0] & 0x70 != 0 {
        return Err(ReadError::Protocol("reserved bits set"));
    }
    let opcode = match b[0] & 0x0F {
        0x1 => OpCode::Text,
        0x2 => OpCode::Binary,
        0x8 => OpCode::Close,
        0x9 => OpCode::Ping,
        0xA => OpCode::Pong,
        _ => return Err(ReadError::Protocol("unknown opcode")),
    };
    if b[1] & 0x80 != 0 {
        return Err(ReadError::Protocol("masked server frame"));
    }
    let (header, len) = match b[1] & 0x7F {
        126 if b.len() >= 4 => (4, usize::from(u16::from_be_bytes([b[2], b[3]]))),
        127 if b.len() >= 10 => {
            let len = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
            (10, usize::try_from(len).unwrap_or(usize::MAX))
        }
        126 | 127 => return Ok(None),
        n => (2, usize::from(n)),
    };
    if len > MAX_FRAME {
        return Err(ReadError::Protocol("frame too large"));
    }
    Ok(Some((opcode, header, len)))
}

/// A masked client frame (the mask need not be secret for a load generator).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x9e];
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
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
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
    out
}

impl WsClient {
    /// Sends one text message.
    pub async fn send_text(&mut self, payload: &[u8]) -> io::Result<()> {
        self.stream.write_all(&client_frame(0x1, payload)).await
    }

    /// Sends a close frame with `code`; the server's close that follows is its reply.
    pub async fn send_close(&mut self, code: u16) -> io::Result<()> {
        self.closed = true;
        self.stream
            .write_all(&client_frame(0x8, &code.to_be_bytes()))
            .await
    }

    /// Waits until at least one more read has arrived, unless a whole frame
    /// is already buffered. Cancel-safe: all state lives in `self`.
    pub async fn read_more(&mut self) -> Result<(), ReadError> {
        if !self.frame_buffered()? {
            self.fill().await?;
        }
        Ok(())
    }

    /// Hands every complete buffered frame to `each`, in order, without
    /// waiting. Ping answers and the echo of a server's close (unless we
    /// closed first) are queued for [`WsClient::send_replies`]; a close frame
    /// ends the batch.
    pub fn take_frames(&mut self, mut each: impl FnMut(Frame<'_>)) -> Result<(), ReadError> {
        while let Some((opcode, header, len)) = parse_header(&self.buf[self.start..])? {
            let begin = self.start + header;
            if self.buf.len() < begin + len {
                break;
            }
            let payload = &self.buf[begin..begin + len];
            match opcode {
                OpCode::Ping => self.replies.extend(client_frame(0xA, payload)),
                OpCode::Close if !self.closed => {
                    self.closed = true;
                    self.replies.extend(client_frame(0x8, &[]));
                }
                _ => {}
            }
            each(Frame { opcode, payload });
            self.start = begin + len;
            if opcode == OpCode::Close {
                break;
            }
        }
        Ok(())
    }

    /// Writes the replies [`WsClient::take_frames`] queued (pongs, a close echo).
    pub async fn send_replies(&mut self) -> io::Result<()> {
        if self.replies.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.replies).await;
        self.replies.clear();
        result
    }

    /// Reads until one whole frame is buffered, then returns it as an owned
    /// copy (for the join, slow-consumer and churn paths; the steady-state
    /// subscriber uses [`WsClient::take_frames`]). Pings are answered and
    /// skipped.
    pub async fn next_frame(&mut self) -> Result<(OpCode, Vec<u8>), ReadError> {
        loop {
            if let Some((opcode, header, len)) = parse_header(&self.buf[self.start..])? {
                let begin = self.start + header;
                if self.buf.len() >= begin + len {
                    let payload = self.buf[begin..begin + len].to_vec();
                    self.start = begin + len;
                    match opcode {
                        OpCode::Ping => {
                            self.stream.write_all(&client_frame(0xA, &payload)).await?;
                            continue;
                        }
                        OpCode::Close if !self.closed => {
                            self.closed = true;
                            let _ = self.stream.write_all(&client_frame(0x8, &[])).await;
                        }
                        _ => {}
                    }
                    return Ok((opcode, payload));
                }
            }
            self.fill().await?;
        }
    }

    /// Whether a whole frame is buffered at the front.
    fn frame_buffered(&self) -> Result<bool, ReadError> {
        Ok(parse_header(&self.buf[self.start..])?
            .is_some_and(|(_, header, len)| self.buf.len() - self.start >= header + len))
    }

    /// One `read` into the buffer's free space: compacted when the free tail
    /// runs low, grown when the frame at the front needs more.
    async fn fill(&mut self) -> Result<(), ReadError> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        if self.start > 0 && self.buf.capacity() - self.buf.len() < READ_BUF / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let front = match parse_header(&self.buf[self.start..])? {
            Some((_, header, len)) => header + len,
            None => 0,
        };
        let buffered = self.buf.len() - self.start;
        let additional = if self.buf.capacity() == 0 {
            READ_BUF
        } else {
            (READ_BUF / 2).max(front.saturating_sub(buffered))
        };
        self.buf.reserve(additional);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(ReadError::Eof);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(new_key().len(), 24);
        assert_ne!(new_key(), new_key());
    }

    #[test]
    fn response_heads_are_checked() {
        let accept = accept_for("dGhlIHNhbXBsZSBub25jZQ==");
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
        );
        assert!(check_head(ok.as_bytes(), &accept).is_ok());
        assert!(matches!(
            check_head(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", &accept),
            Err(ConnectError::Status(503))
        ));
        assert!(matches!(
            check_head(
                b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\n\r\n",
                &accept
            ),
            Err(ConnectError::Protocol(_))
        ));
        assert!(check_head(b"garbage\r\n\r\n", &accept).is_err());
    }

    #[test]
    fn server_frame_headers_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_header(&[0x81, 5]).unwrap(),
            Some((OpCode::Text, 2, 5))
        );
        assert_eq!(
            parse_header(&[0x82, 126, 1, 0]).unwrap(),
            Some((OpCode::Binary, 4, 256))
        );
        assert_eq!(parse_header(&[0x81, 126, 1]).unwrap(), None);
        assert_eq!(parse_header(&[0x81]).unwrap(), None);
        assert!(parse_header(&[0x01, 5]).is_err(), "fragment");
        assert!(parse_header(&[0x81, 0x85]).is_err(), "masked");
        assert!(parse_header(&[0x83, 0]).is_err(), "opcode 3");
    }

    #[tokio::test]
    async fn frames_split_across_reads_arrive_whole_and_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut bytes = Vec::new();
            for i in 0..50u8 {
                bytes.extend_from_slice(&[0x81, 3, b'm', b'0' + i / 10, b'0' + i % 10]);
            }
            bytes.extend_from_slice(&[0x81, 126, 0x03, 0xE8]);
            bytes.extend(std::iter::repeat_n(b'x', 1000));
            bytes.extend_from_slice(&[0x89, 1, b'p']);
            bytes.extend_from_slice(&[0x88, 2, 0x03, 0xE8]);
            // Odd-sized pieces, so headers and payloads straddle reads.
            for piece in bytes.chunks(7) {
                s.write_all(piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            let mut replies = Vec::new();
            s.read_to_end(&mut replies).await.unwrap();
            replies
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut ws = WsClient {
            stream,
            buf: Vec::new(),
            start: 0,
            closed: false,
            replies: Vec::new(),
        };
        let mut got: Vec<(OpCode, Vec<u8>)> = Vec::new();
        while got.last().is_none_or(|(op, _)| *op != OpCode::Close) {
            ws.read_more().await.unwrap();
            ws.take_frames(|f| got.push((f.opcode, f.payload.to_vec())))
                .unwrap();
            ws.send_replies().await.unwrap();
        }
        drop(ws);
        assert_eq!(got.len(), 53);
        for (i, (op, payload)) in got[..50].iter().enumerate() {
            assert_eq!(*op, OpCode::Text);
            assert_eq!(payload, format!("m{i:02}").as_bytes());
        }
        assert_eq!(got[50], (OpCode::Text, vec![b'x'; 1000]));
        assert_eq!(got[51], (OpCode::Ping, b"p".to_vec()));
        assert_eq!(got[52], (OpCode::Close, vec![0x03, 0xE8]));
        // The ping was answered with a masked pong, and the close echoed.
        let replies = server.await.unwrap();
        assert_eq!(
            replies,
            [client_frame(0xA, b"p"), client_frame(0x8, &[])].concat()
        );
    }
}
