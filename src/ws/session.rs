//! One WebSocket session: the reader loop and the writer of one connection,
//! driven by one task, over a dialect.
//!
//! The reader parses client frames ([`super::reader`]), checks close frames,
//! answers pings through the outbox (within the control-frame budget),
//! reassembles messages ([`super::message`]), applies the message rate limit
//! ([`crate::throttle`]) and hands complete messages to the dialect. The
//! writer ([`crate::delivery::writer`]) drains the outbox into vectored
//! writes on the connection, a plain socket or a TLS stream
//! ([`super::stream`]). When either side ends, the other is given a short grace period
//! (the close handshake) and the session leaves every room it joined.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::io::AsyncRead;

use super::message::MessageAssembler;
use super::reader::{FrameReader, OpCode, ReadError};
use super::sessions::{Permit, SessionHandle};
use super::stream::SessionStream;
use crate::app::App;
use crate::auth::{AuthError, Identity};
use crate::catalog::RoomName;
use crate::close_code::{CloseCode, check_client_close};
use crate::delivery::outbox::{Delivery, Outbox, Pushed};
use crate::delivery::writer::{self, WriterEnd};
use crate::dialect::{DialectKind, DialectSession, Greeting, JoinError, Joined, Link, Resume};
use crate::frame;
use crate::ids::SessionId;
use crate::rooms::Room;
use crate::telemetry::{Limit, metrics};
use crate::throttle::{Draw, Throttle, Verdict};

/// Time allowed for the other side of the close handshake once one side ended.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A session's view of the node, given to its dialect as a [`Link`].
struct SessionLink {
    /// Rooms and configuration.
    app: Arc<App>,
    /// This session.
    id: SessionId,
    /// This session's dialect (its member table in rooms).
    kind: DialectKind,
    /// This session's outbox.
    outbox: Arc<Outbox>,
    /// Rooms joined, so they can be left on close; small, so a Vec.
    rooms: Vec<Arc<Room>>,
    /// When the dialect's one-shot timer runs out ([`Link::set_timer`]);
    /// the reader races it against the next frame.
    timer: Option<tokio::time::Instant>,
    /// Who the connection is: its user and the rooms its token grants,
    /// checked on every join.
    identity: Identity,
    /// When the token expires: the reader closes the session with 4001 then,
    /// unless an in-band refresh moved it.
    expires: Option<tokio::time::Instant>,
}

impl Link for SessionLink {
    fn send(&mut self, frame: Bytes) {
        if let Pushed::Overflowed(dropped) = self.outbox.push(&frame, Delivery::Ordered) {
            metrics().frames_dropped.increment(dropped as u64);
            metrics().closed(CloseCode::SlowConsumer);
        }
    }

    fn join(&mut self, room: RoomName, greet: Greeting) -> Result<Joined, JoinError> {
        self.join_from(room, None, greet)
    }

    fn join_resuming(
        &mut self,
        room: RoomName,
        resume: Resume,
        greet: Greeting,
    ) -> Result<Joined, JoinError> {
        self.join_from(room, Some(resume), greet)
    }

    fn leave(&mut self, room: &RoomName) -> bool {
        let Some(i) = self.rooms.iter().position(|r| r.name() == room) else {
            return false;
        };
        let room = self.rooms.swap_remove(i);
        self.app.rooms.leave(&room, self.id, self.kind)
    }

    fn close(&mut self, code: CloseCode) {
        self.outbox.close(code);
    }

    fn free_subscriptions(&self) -> usize {
        self.app
            .config
            .ws
            .max_subscriptions
            .saturating_sub(self.rooms.len())
    }

    fn set_timer(&mut self, after: Option<Duration>) {
        self.timer = after.map(|after| tokio::time::Instant::now() + after);
    }

    fn refresh_token(&mut self, token: &str) -> Result<Option<SystemTime>, AuthError> {
        let identity = self.app.auth.verify(token)?;
        if identity.user != self.identity.user {
            return Err(AuthError::OtherUser);
        }
        self.expires = deadline(&identity);
        let expires_at = identity.expires_at;
        self.identity = identity;
        Ok(expires_at)
    }
}

/// When `identity`'s token runs out, on the session's clock.
fn deadline(identity: &Identity) -> Option<tokio::time::Instant> {
    identity
        .expires_in()
        .map(|left| tokio::time::Instant::now() + left)
}

impl SessionLink {
    /// The link of session `id` (of dialect `kind`, connected as
    /// `identity`), queuing to `outbox`.
    fn new(
        app: Arc<App>,
        id: SessionId,
        kind: DialectKind,
        outbox: Arc<Outbox>,
        identity: Identity,
    ) -> Self {
        SessionLink {
            app,
            id,
            kind,
            outbox,
            rooms: Vec::new(),
            timer: None,
            expires: deadline(&identity),
            identity,
        }
    }

    fn join_from(
        &mut self,
        room: RoomName,
        resume: Option<Resume>,
        greet: Greeting,
    ) -> Result<Joined, JoinError> {
        if self.rooms.iter().any(|r| *r.name() == room) {
            return Ok(Joined::Already);
        }
        if !self.identity.grant.allows(room.as_str()) {
            return Err(JoinError::Forbidden(room.to_string()));
        }
        let max = self.app.config.ws.max_subscriptions;
        if self.rooms.len() >= max {
            metrics().limit_hit(Limit::Subscriptions);
            return Err(JoinError::TooManySubscriptions(max));
        }
        let (room, joined) =
            self.app
                .rooms
                .join_resuming(&room, self.id, self.kind, &self.outbox, resume, greet)?;
        if joined == Joined::New {
            self.rooms.push(room);
        }
        Ok(joined)
    }

    fn leave_all(&mut self) {
        for room in self.rooms.drain(..) {
            self.app.rooms.leave(&room, self.id, self.kind);
        }
    }
}

/// How the reader stopped.
#[derive(Debug)]
enum ReadEnd {
    /// The client sent a valid close frame: answer it.
    ClientClosed,
    /// The server closes with this code after what is queued.
    Close(CloseCode),
    /// The connection is gone (EOF, reset): nothing more can be written.
    Gone,
}

fn classify(error: ReadError) -> ReadEnd {
    match error {
        ReadError::TooLarge(_) => {
            metrics().limit_hit(Limit::MessageSize);
            ReadEnd::Close(CloseCode::MessageTooBig)
        }
        ReadError::Protocol(_) => ReadEnd::Close(CloseCode::ProtocolError),
        ReadError::Timeout(_) => {
            metrics().limit_hit(Limit::MessageTimeout);
            ReadEnd::Close(CloseCode::MessageTimeout)
        }
        ReadError::Eof | ReadError::Io(_) => ReadEnd::Gone,
    }
}

/// Settings the reader needs, copied out of the config once.
struct ReadLimits {
    /// Sustained client messages per second (for the error text).
    rate: u32,
}

async fn read_loop<D: DialectSession, R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    dialect: &mut D,
    link: &mut SessionLink,
    handle: &SessionHandle,
    throttle: &mut Throttle,
    assembler: &mut MessageAssembler,
    limits: &ReadLimits,
) -> ReadEnd {
    loop {
        // The earlier of the dialect's timer and the token's expiry.
        let next = match (link.timer, link.expires) {
            (Some(t), Some(e)) => Some(t.min(e)),
            (t, e) => t.or(e),
        };
        let read = match next {
            None => reader.read_frame().await,
            Some(at) => {
                // Our frame reader is cancel-safe (what it read stays in its
                // buffer), so it may race the timer. The sleep is boxed so
                // that sessions without a timer do not carry one.
                let timer = Box::pin(tokio::time::sleep_until(at));
                tokio::select! {
                    read = reader.read_frame() => read,
                    () = timer => {
                        if link.expires.is_some_and(|e| e <= tokio::time::Instant::now()) {
                            return ReadEnd::Close(CloseCode::TokenExpired);
                        }
                        link.timer = None;
                        dialect.on_timer(link);
                        continue;
                    }
                }
            }
        };
        let frame = match read {
            Ok(frame) => frame,
            Err(e) => return classify(e),
        };
        link.app.sessions.touch(handle);
        match frame.opcode {
            OpCode::Close => {
                return match check_client_close(&frame.payload) {
                    Ok(()) => ReadEnd::ClientClosed,
                    Err(code) => ReadEnd::Close(code),
                };
            }
            OpCode::Ping | OpCode::Pong => {
                match throttle.check(Draw::Control, Instant::now()) {
                    Verdict::Allow if frame.opcode == OpCode::Ping => {
                        link.send(frame::pong(&frame.payload))
                    }
                    Verdict::Allow => {}
                    Verdict::Reject => metrics().limit_hit(Limit::ControlRate),
                    Verdict::Close => return ReadEnd::Close(CloseCode::RateLimited),
                }
                continue;
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {}
        }
        let (kind, mut payload) = match assembler.push(frame) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(code) => {
                if code == CloseCode::MessageTooBig {
                    metrics().limit_hit(Limit::MessageSize);
                }
                return ReadEnd::Close(code);
            }
        };
        metrics().client_message();
        match throttle.check(Draw::Message, Instant::now()) {
            Verdict::Allow => {}
            Verdict::Reject => {
                metrics().limit_hit(Limit::MessageRate);
                link.send(dialect.rate_limited(limits.rate));
                continue;
            }
            Verdict::Close => return ReadEnd::Close(CloseCode::RateLimited),
        }
        dialect.on_message(link, kind, &mut payload);
    }
}

/// Runs one upgraded connection to completion.
pub async fn run<D: DialectSession, S: SessionStream>(
    app: Arc<App>,
    stream: S,
    read_ahead: Bytes,
    mut dialect: D,
    _permit: Permit,
    identity: Identity,
) {
    let id = SessionId::next();
    let config = &app.config;
    let (read_half, mut write_half, outbox) = stream.open(config.ws.outbox_capacity, &app.flusher);
    let handle = app.sessions.insert(id, Arc::clone(&outbox), D::KIND);
    // Upgraded after the drain began: close at once, like every other session.
    if app.shutdown.is_cancelled() {
        outbox.close(CloseCode::GoingAway);
    }
    let m = metrics();
    m.connections.increment(1.0);
    m.connections_accepted.increment(1);
    m.totals
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(session = %id, dialect = D::KIND.label(), "session open");

    let mut frames = FrameReader::new(
        read_half,
        &read_ahead,
        config.ws.max_message_size,
        config.ws.message_timeout.get(),
    );
    // `read_ahead` is a view into hyper's whole read buffer: drop it now
    // (the reader copied the rare pipelined bytes) so that buffer is freed.
    drop(read_ahead);

    let mut link = SessionLink::new(Arc::clone(&app), id, D::KIND, Arc::clone(&outbox), identity);
    let mut throttle = Throttle::new(
        config.ws.client_msg_rate,
        config.ws.client_msg_burst,
        config.ws.client_msg_hard_limit,
        Instant::now(),
    );
    let mut assembler = MessageAssembler::new(config.ws.max_message_size);
    let limits = ReadLimits {
        rate: config.ws.client_msg_rate,
    };
    let stall = config.ws.heartbeat_timeout.get();
    dialect.on_open(&mut link);

    {
        let mut writer = pin!(writer::run(&outbox, &mut write_half, stall));
        let mut reader = pin!(read_loop(
            &mut frames,
            &mut dialect,
            &mut link,
            &handle,
            &mut throttle,
            &mut assembler,
            &limits
        ));
        // Both futures are driven by this task. Only when one side has ended
        // is the other abandoned, and the reader is dropped only when the
        // socket is being closed, never to be read again.
        tokio::select! {
            end = &mut reader => {
                let code = match end {
                    ReadEnd::ClientClosed => Some(CloseCode::Normal),
                    ReadEnd::Close(code) => Some(code),
                    ReadEnd::Gone => None,
                };
                match code {
                    Some(code) => {
                        if outbox.is_open() {
                            metrics().closed(code);
                        }
                        outbox.close(code);
                        let _ = tokio::time::timeout(CLOSE_GRACE, &mut writer).await;
                    }
                    None => outbox.abandon(),
                }
                tracing::debug!(session = %id, ?end, "session reader ended");
            }
            end = &mut writer => {
                match &end {
                    WriterEnd::Closed(_) => {
                        // Wait briefly for the client's close reply.
                        let _ = tokio::time::timeout(CLOSE_GRACE, &mut reader).await;
                    }
                    WriterEnd::Stalled => metrics().error(),
                    WriterEnd::Failed(_) | WriterEnd::Finished => {}
                }
                tracing::debug!(session = %id, ?end, "session writer ended");
            }
        }
    }

    link.leave_all();
    outbox.abandon();
    app.sessions.remove(id);
    metrics().connections.decrement(1.0);
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::Config;
    use crate::delivery::outbox::Drain;
    use crate::dialect::MessageKind;

    /// A dialect that arms its timer on open and on `arm`, disarms it on
    /// `disarm`, and reports each firing.
    struct Alarm {
        fired: usize,
    }

    impl DialectSession for Alarm {
        const KIND: DialectKind = DialectKind::Echo;

        fn on_open(&mut self, link: &mut impl Link) {
            link.set_timer(Some(Duration::from_secs(30)));
        }

        fn on_message(&mut self, link: &mut impl Link, _kind: MessageKind, payload: &mut [u8]) {
            match &payload[..] {
                b"arm" => link.set_timer(Some(Duration::from_secs(5))),
                b"disarm" => link.set_timer(None),
                _ => link.send(frame::text(b"message")),
            }
        }

        fn rate_limited(&mut self, _limit_per_sec: u32) -> Bytes {
            frame::text(b"slow down")
        }

        fn on_timer(&mut self, link: &mut impl Link) {
            self.fired += 1;
            link.send(frame::text(format!("fired {}", self.fired).as_bytes()));
        }
    }

    /// A masked client text frame.
    fn client_text(text: &[u8]) -> Vec<u8> {
        let mut out = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
        out.extend_from_slice(text);
        out
    }

    /// Runs the reader over `script` (client frames, then EOF) with time
    /// paused, so timers fire as soon as the session would otherwise wait;
    /// returns the payloads the session queued, in order.
    async fn session_output(script: &[&[u8]]) -> Vec<String> {
        let app = App::new(Config::default()).unwrap();
        let (mut client, server) = tokio::io::duplex(4096);
        let id = SessionId::next();
        let outbox = Arc::new(Outbox::new(64));
        let handle = app
            .sessions
            .insert(id, Arc::clone(&outbox), DialectKind::Echo);
        let mut link = SessionLink::new(
            Arc::clone(&app),
            id,
            DialectKind::Echo,
            Arc::clone(&outbox),
            Identity::anonymous(),
        );
        let mut dialect = Alarm { fired: 0 };
        dialect.on_open(&mut link);
        let mut reader = FrameReader::new(server, &[], 1024, Duration::from_secs(60));
        let mut throttle = Throttle::new(100, 100, 1000, Instant::now());
        let mut assembler = MessageAssembler::new(1024);
        let limits = ReadLimits { rate: 100 };
        let script: Vec<Vec<u8>> = script.iter().map(|t| client_text(t)).collect();
        let client_side = async move {
            for frame in script {
                client.write_all(&frame).await.unwrap();
                // Let the session read it before the next one (paused time
                // advances only once everything is idle).
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(client);
        };
        let (end, ()) = tokio::join!(
            read_loop(
                &mut reader,
                &mut dialect,
                &mut link,
                &handle,
                &mut throttle,
                &mut assembler,
                &limits
            ),
            client_side,
        );
        assert!(matches!(end, ReadEnd::Gone), "{end:?}");
        let mut frames = Vec::new();
        while outbox.drain_into(&mut frames, 64) == Drain::Frames {}
        frames
            .iter()
            .map(|f| String::from_utf8(frame::payload(f).to_vec()).unwrap())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_armed_timer_fires_once_while_the_client_is_silent() {
        assert_eq!(session_output(&[]).await, ["fired 1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn messages_do_not_disturb_the_timer_and_rearming_replaces_it() {
        let output = session_output(&[b"hello", b"arm"]).await;
        // `arm` (at 1 s) replaced the 30 s timer with one at 6 s: one firing.
        assert_eq!(output, ["message", "fired 1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_disarmed_timer_never_fires() {
        assert_eq!(session_output(&[b"disarm"]).await, Vec::<String>::new());
    }
}
