//! A lean WebSocket client: a raw `TcpStream`, a hand-written RFC 6455
//! opening handshake, then `fastwebsockets` in the client role (masked
//! writes, automatic pong and close replies). No hyper, no per-connection
//! task beyond the caller's own, and the handshake response is consumed with
//! `peek` + an exact read so any frame the server sends right behind its
//! `101` (seed 001's `connection` ack) stays in the socket for the frame reader.
//! Per connection this costs one 8 KiB read buffer inside `fastwebsockets`.

use std::io;
use std::time::Duration;

use base64::Engine;
use fastwebsockets::{Role, WebSocket};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::target::Target;

/// The RFC 6455 GUID appended to the key for `Sec-WebSocket-Accept`.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest handshake response head accepted.
const MAX_HEAD: usize = 4096;

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
) -> Result<WebSocket<TcpStream>, ConnectError> {
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

    let mut ws = WebSocket::after_handshake(stream, Role::Client);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    ws.set_max_message_size(16 << 20);
    Ok(ws)
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
}
