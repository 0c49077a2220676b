//! A session's writer: drains the outbox and writes what is queued, up to
//! [`MAX_BATCH`] frames per vectored write. When the socket is idle a frame is written at once; frames
//! that arrive while a write is in flight are coalesced into the next one, so
//! batching grows with load without adding latency at low rates. Frames are
//! already encoded and framed (shared `Bytes`); the writer only moves them.
//!
//! For a direct outbox the node's [`crate::delivery::flusher::Flusher`] writes while
//! the socket keeps up; this writer takes over when it does not (and always
//! writes the close frame), through a [`SharedSocket`].

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;

use crate::close_code::CloseCode;
use crate::delivery::outbox::{Drain, Outbox};
use crate::frame;
use crate::telemetry::metrics;

pub use crate::delivery::outbox::MAX_BATCH;

/// The socket's write half as shared by the session's writer and the
/// flusher (whichever owns the outbox writes; see [`crate::delivery::outbox`]).
#[derive(Debug, Clone)]
pub struct SharedSocket(pub Arc<OwnedWriteHalf>);

impl AsyncWrite for SharedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let stream = (*self.0).as_ref();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            // A WouldBlock clears the readiness, so the next poll registers the waker.
            match stream.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream: &tokio::net::TcpStream = (*self.0).as_ref();
        Poll::Ready(socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write))
    }
}

/// How the writer stopped.
#[derive(Debug)]
pub enum WriterEnd {
    /// The close frame was written and the write side shut down.
    Closed(CloseCode),
    /// The session was abandoned; nothing more was written.
    Finished,
    /// Writing failed (peer reset, broken pipe).
    Failed(io::Error),
    /// The peer accepted no bytes for the stall timeout.
    Stalled,
}

/// Writes `batch` fully, then clears it. Slices are rebuilt inside each poll,
/// so no `IoSlice` array lives in the session's future between polls.
async fn write_batch<W: AsyncWrite + Unpin>(
    io: &mut W,
    batch: &mut Vec<Bytes>,
    stall: Duration,
) -> Result<(), WriterEnd> {
    let frames = batch.len();
    let bytes: usize = batch.iter().map(Bytes::len).sum();
    let mut start = 0;
    while start < batch.len() {
        let pending = &batch[start..];
        let mut write = |cx: &mut Context<'_>| {
            let mut slices = [IoSlice::new(&[]); MAX_BATCH];
            let n = pending.len().min(MAX_BATCH);
            for (slice, frame) in slices.iter_mut().zip(pending) {
                *slice = IoSlice::new(frame);
            }
            Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n])
        };
        // One attempt without a timer: a socket with room takes the batch at
        // once. Only a full socket waits, with the stall timeout, boxed so
        // the timer does not sit in every idle session's future.
        let result = match poll_fn(|cx| Poll::Ready(write(cx))).await {
            Poll::Ready(result) => result,
            Poll::Pending => match Box::pin(tokio::time::timeout(stall, poll_fn(write))).await {
                Ok(result) => result,
                Err(_) => return Err(WriterEnd::Stalled),
            },
        };
        let mut written = match result {
            Err(e) => return Err(WriterEnd::Failed(e)),
            Ok(0) => return Err(WriterEnd::Failed(io::ErrorKind::WriteZero.into())),
            Ok(n) => n,
        };
        while written > 0 {
            let head = &mut batch[start];
            if written >= head.len() {
                written -= head.len();
                start += 1;
            } else {
                head.advance(written);
                written = 0;
            }
        }
    }
    // A TLS stream may keep the tail of what it accepted in its record
    // buffer when the socket filled up: push it out now, not with the next
    // batch. A plain socket's flush is a no-op that is ready at once.
    let flushed = match poll_fn(|cx| Poll::Ready(Pin::new(&mut *io).poll_flush(cx))).await {
        Poll::Ready(result) => result,
        Poll::Pending => match Box::pin(tokio::time::timeout(stall, io.flush())).await {
            Ok(result) => result,
            Err(_) => return Err(WriterEnd::Stalled),
        },
    };
    if let Err(e) = flushed {
        return Err(WriterEnd::Failed(e));
    }
    batch.clear();
    metrics().wrote(frames, bytes);
    Ok(())
}

/// Runs until the outbox closes or is abandoned, or the socket fails.
pub async fn run<W: AsyncWrite + Unpin>(outbox: &Outbox, io: &mut W, stall: Duration) -> WriterEnd {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        match outbox.drain_into(&mut batch, MAX_BATCH) {
            Drain::Frames => {
                if let Err(end) = write_batch(io, &mut batch, stall).await {
                    outbox.abandon();
                    return end;
                }
            }
            Drain::Idle => outbox.ready().await,
            Drain::Close(code) => {
                batch.push(frame::close(code));
                if let Err(end) = write_batch(io, &mut batch, stall).await {
                    return end;
                }
                let _ = io.shutdown().await;
                return WriterEnd::Closed(code);
            }
            Drain::Finished => return WriterEnd::Finished,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::outbox::Delivery;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn queued_frames_then_close_frame_reach_the_socket() {
        let outbox = Outbox::new(16);
        outbox.push(&frame::text(b"a"), Delivery::Ordered);
        outbox.push(&frame::text(b"bc"), Delivery::Ordered);
        outbox.close(CloseCode::GoingAway);
        let (mut client, mut server) = tokio::io::duplex(64);
        let end = run(&outbox, &mut server, Duration::from_secs(5)).await;
        assert!(matches!(end, WriterEnd::Closed(CloseCode::GoingAway)));
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let mut expected = Vec::new();
        expected.extend_from_slice(&frame::text(b"a"));
        expected.extend_from_slice(&frame::text(b"bc"));
        expected.extend_from_slice(&frame::close(CloseCode::GoingAway));
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_buffering_stream_is_flushed_after_each_batch() {
        // Like a TLS stream, a BufWriter keeps what it accepted until flushed.
        let outbox = Arc::new(Outbox::new(16));
        let (mut client, server) = tokio::io::duplex(4096);
        let writer = {
            let outbox = Arc::clone(&outbox);
            tokio::spawn(async move {
                let mut io = tokio::io::BufWriter::new(server);
                run(&outbox, &mut io, Duration::from_secs(5)).await
            })
        };
        outbox.push(&frame::text(b"now"), Delivery::Ordered);
        let expected = frame::text(b"now");
        let mut got = vec![0; expected.len()];
        // The outbox stays open: only the flush can deliver the frame.
        tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut got))
            .await
            .expect("the frame was left in the stream's buffer")
            .unwrap();
        assert_eq!(got, expected);
        outbox.close(CloseCode::Normal);
        assert!(matches!(writer.await.unwrap(), WriterEnd::Closed(_)));
    }

    #[tokio::test]
    async fn partial_writes_resume_where_they_stopped() {
        let outbox = Outbox::new(64);
        let big = frame::text(&[b'x'; 1000]);
        for _ in 0..40 {
            outbox.push(&big, Delivery::Ordered);
        }
        outbox.close(CloseCode::Normal);
        // A 7-byte pipe forces many partial writes.
        let (mut client, mut server) = tokio::io::duplex(7);
        let writer =
            tokio::spawn(async move { run(&outbox, &mut server, Duration::from_secs(5)).await });
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert!(matches!(writer.await.unwrap(), WriterEnd::Closed(_)));
        assert_eq!(
            got.len(),
            40 * big.len() + frame::close(CloseCode::Normal).len()
        );
    }
}
