//! What a WebSocket session runs over once hyper hands the connection back:
//! a plain TCP socket or a TLS stream ([`crate::tls`]). Each kind says how it
//! splits into the reader's half and the writer's half, and who writes it.
//! A plain socket gets a direct outbox: the node's flusher writes fan-out
//! frames straight into it while it keeps up. A TLS stream cannot be written
//! by the flusher (every record is encrypted under the connection's state,
//! which the session owns), so its outbox is written by the session's own
//! writer alone: one wake-up of the session task per fan-out instead of a
//! share of the flusher's batch (`docs/tls.md`).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio_rustls::server::TlsStream;

use crate::delivery::flusher::Flusher;
use crate::delivery::outbox::Outbox;
use crate::delivery::writer::SharedSocket;

/// A connection a session can run over.
pub trait SessionStream: Send + 'static {
    /// The half the session's frame reader reads.
    type Read: AsyncRead + Unpin + Send;
    /// The half the session's writer writes.
    type Write: AsyncWrite + Unpin + Send;

    /// Splits the connection, with an outbox of `capacity` frames that the
    /// right writers drain.
    fn open(
        self,
        capacity: usize,
        flusher: &Arc<Flusher>,
    ) -> (Self::Read, Self::Write, Arc<Outbox>);
}

impl SessionStream for TcpStream {
    type Read = OwnedReadHalf;
    type Write = SharedSocket;

    fn open(
        self,
        capacity: usize,
        flusher: &Arc<Flusher>,
    ) -> (Self::Read, Self::Write, Arc<Outbox>) {
        // Frames are small and latency matters more than segment count; the
        // writer already coalesces queued frames into one write.
        let _ = self.set_nodelay(true);
        let (read_half, write_half) = self.into_split();
        let write_half = Arc::new(write_half);
        let outbox = Outbox::direct(capacity, Arc::clone(&write_half), Arc::clone(flusher));
        (read_half, SharedSocket(write_half), outbox)
    }
}

impl SessionStream for TlsStream<TcpStream> {
    type Read = ReadHalf<Self>;
    type Write = WriteHalf<Self>;

    fn open(self, capacity: usize, _: &Arc<Flusher>) -> (Self::Read, Self::Write, Arc<Outbox>) {
        let _ = self.get_ref().0.set_nodelay(true);
        let (read_half, write_half) = tokio::io::split(self);
        (read_half, write_half, Arc::new(Outbox::new(capacity)))
    }
}
