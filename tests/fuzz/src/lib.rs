//! Helpers shared by roomcast's fuzz targets (`fuzz_targets/*.rs`): a
//! recording [`Link`] that dialect sessions act through, a checker that a
//! byte string is one valid server text frame carrying JSON, the masked
//! client-frame encoder the round-trip target reads back, and a poller for
//! futures over always-ready readers (no runtime needed).
//!
//! Every check here panics with a message naming the broken invariant, so
//! libFuzzer reports it as a crash and saves the input.

use std::collections::VecDeque;
use std::future::Future;
use std::task::{Context, Poll};

use bytes::Bytes;
use roomcast::catalog::RoomName;
use roomcast::close_code::CloseCode;
use roomcast::dialect::{
    DialectSession, Greeting, JoinError, Joined, Link, MessageKind, Resume, Retained,
};

/// Splits one fuzz input into the client messages of a session: JSON text
/// never contains the byte 0xFF (it is not UTF-8), so corpus files hold
/// several messages separated by it and the fuzzer can find multi-message
/// sequences (subscribe, then subscribe again, then unsubscribe, ...).
pub const MESSAGE_SEPARATOR: u8 = 0xFF;

/// Most client messages one input is split into (keeps each run short).
pub const MAX_MESSAGES_PER_INPUT: usize = 32;

/// A message starting with this byte is sent as binary without it, so the
/// fuzzer can also send valid JSON (or text) in a binary message.
pub const BINARY_MARKER: u8 = 0xFE;

/// The client messages in one fuzz input, each with the kind the session
/// machinery would hand it over as: text must be valid UTF-8 (the session
/// closes with 1007 otherwise), so other bytes come as binary, and so does
/// a message that starts with [`BINARY_MARKER`] (without that byte).
pub fn split_messages(data: &[u8]) -> impl Iterator<Item = (MessageKind, &[u8])> {
    data.split(|b| *b == MESSAGE_SEPARATOR)
        .take(MAX_MESSAGES_PER_INPUT)
        .map(|message| match message.split_first() {
            Some((&BINARY_MARKER, rest)) => (MessageKind::Binary, rest),
            _ if std::str::from_utf8(message).is_ok() => (MessageKind::Text, message),
            _ => (MessageKind::Binary, message),
        })
}

/// Hands one complete client message to a dialect session, as the session
/// machinery does after reassembly. The only call of
/// [`DialectSession::on_message`] in the fuzz crate, so a change of its
/// signature is adapted here alone.
pub fn deliver_message<D: DialectSession>(
    session: &mut D,
    link: &mut RecordingLink,
    kind: MessageKind,
    message: &[u8],
) {
    let mut payload = message.to_vec();
    session.on_message(link, kind, &mut payload);
}

/// Subscriptions a [`RecordingLink`] accepts before refusing with
/// [`JoinError::TooManySubscriptions`] (small, so the fuzzer reaches the cap).
pub const RECORDING_LINK_MAX_SUBSCRIPTIONS: usize = 8;

/// The epoch of the history a [`RecordingLink`] greets joiners with.
pub const RECORDED_EPOCH: u64 = 7;

/// What a dialect did through a [`RecordingLink`], in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAction {
    /// A frame queued to the session (greeting frames included, in place).
    Sent(Bytes),
    /// A new join of this room.
    Joined(RoomName),
    /// A join of a room the session was already in.
    AlreadyJoined(RoomName),
    /// A join refused at the subscription cap.
    Refused(RoomName),
    /// A leave; whether the session was a member.
    Left(RoomName, bool),
    /// The session asked to be closed.
    Closed(CloseCode),
}

/// A [`Link`] that records every action and accepts joins (up to
/// [`RECORDING_LINK_MAX_SUBSCRIPTIONS`]), greeting each new member from a
/// fixed history: events with `seq` 5 to 9 of epoch [`RECORDED_EPOCH`], so
/// resume requests land before, inside and after what is retained.
#[derive(Debug)]
pub struct RecordingLink {
    /// Everything the dialect did, oldest first.
    pub actions: Vec<LinkAction>,
    /// Rooms currently joined.
    pub rooms: Vec<RoomName>,
    /// The retained `(seq, canonical JSON)` every joiner is greeted from.
    history: VecDeque<(u64, Bytes)>,
}

impl Default for RecordingLink {
    fn default() -> Self {
        RecordingLink::new()
    }
}

impl RecordingLink {
    /// A link with no rooms joined and the fixed history.
    pub fn new() -> Self {
        let history = (5..=9u64)
            .map(|seq| {
                let json = format!(
                    r#"{{"type":"price_update","ticker":"AAPL","price":{seq}.25,"change":0,"change_percent":0,"volume":100,"high":{seq}.5,"low":{seq},"open":{seq},"timestamp":"2025-11-18T10:30:00.000Z"}}"#
                );
                (seq, Bytes::from(json))
            })
            .collect();
        RecordingLink {
            actions: Vec::new(),
            rooms: Vec::new(),
            history,
        }
    }

    /// The frames sent so far, in order.
    pub fn sent_frames(&self) -> impl Iterator<Item = &Bytes> {
        self.actions.iter().filter_map(|a| match a {
            LinkAction::Sent(frame) => Some(frame),
            _ => None,
        })
    }

    /// Forgets the recorded actions (rooms joined stay joined).
    pub fn clear_actions(&mut self) {
        self.actions.clear();
    }

    fn greet(&mut self, greet: Greeting) {
        let retained = Retained {
            epoch: RECORDED_EPOCH,
            seq: self.history.back().map_or(0, |(seq, _)| *seq),
            entries: &self.history,
            snapshot: &[],
        };
        let frames = greet(&retained);
        self.actions
            .extend(frames.into_iter().map(LinkAction::Sent));
    }
}

impl Link for RecordingLink {
    fn send(&mut self, frame: Bytes) {
        self.actions.push(LinkAction::Sent(frame));
    }

    fn join(&mut self, room: RoomName, greet: Greeting) -> Result<Joined, JoinError> {
        if self.rooms.contains(&room) {
            self.actions.push(LinkAction::AlreadyJoined(room));
            return Ok(Joined::Already);
        }
        if self.rooms.len() >= RECORDING_LINK_MAX_SUBSCRIPTIONS {
            self.actions.push(LinkAction::Refused(room));
            return Err(JoinError::TooManySubscriptions(
                RECORDING_LINK_MAX_SUBSCRIPTIONS,
            ));
        }
        self.rooms.push(room.clone());
        self.actions.push(LinkAction::Joined(room));
        self.greet(greet);
        Ok(Joined::New)
    }

    fn join_resuming(
        &mut self,
        room: RoomName,
        _resume: Resume,
        greet: Greeting,
    ) -> Result<Joined, JoinError> {
        self.join(room, greet)
    }

    fn leave(&mut self, room: &RoomName) -> bool {
        let was = match self.rooms.iter().position(|r| r == room) {
            Some(i) => {
                self.rooms.swap_remove(i);
                true
            }
            None => false,
        };
        self.actions.push(LinkAction::Left(room.clone(), was));
        was
    }

    fn close(&mut self, code: CloseCode) {
        self.actions.push(LinkAction::Closed(code));
    }
    fn set_timer(&mut self, _after: Option<std::time::Duration>) {}
}

/// Checks that `frame` is exactly one server text frame as RFC 6455 §5.2
/// requires (FIN set, no reserved bits, text opcode, unmasked, the shortest
/// length encoding, the length matching the bytes) whose payload is valid
/// JSON; returns the parsed payload.
pub fn assert_server_json_frame(frame: &[u8]) -> serde_json::Value {
    assert!(frame.len() >= 2, "server frame shorter than its header");
    assert_eq!(frame[0], 0x81, "server frame is not FIN + text");
    assert_eq!(frame[1] & 0x80, 0, "server frame is masked");
    let (header, len) = match frame[1] & 0x7F {
        126 => {
            assert!(frame.len() >= 4, "server frame's 16-bit length is cut off");
            let len = u16::from_be_bytes([frame[2], frame[3]]) as usize;
            assert!(len >= 126, "16-bit length used for {len} bytes");
            (4, len)
        }
        127 => {
            assert!(frame.len() >= 10, "server frame's 64-bit length is cut off");
            let len = u64::from_be_bytes(frame[2..10].try_into().expect("8 bytes"));
            assert!(
                len > u64::from(u16::MAX),
                "64-bit length used for {len} bytes"
            );
            (
                10,
                usize::try_from(len).expect("frame length fits in usize"),
            )
        }
        n => (2, usize::from(n)),
    };
    assert_eq!(
        frame.len(),
        header + len,
        "server frame's length field disagrees with its size"
    );
    let payload = &frame[header..];
    assert!(
        std::str::from_utf8(payload).is_ok(),
        "server text frame is not UTF-8"
    );
    match serde_json::from_slice(payload) {
        Ok(value) => value,
        Err(e) => panic!(
            "server text frame is not JSON ({e}): {}",
            String::from_utf8_lossy(payload)
        ),
    }
}

/// Checks that a server message is a JSON object with a string `type`;
/// returns the type.
pub fn message_type(message: &serde_json::Value) -> &str {
    message
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("server message without a string 'type': {message}"))
}

/// Encodes one masked client frame (RFC 6455 §5.2), its length in the
/// shortest form, as the RFC requires.
pub fn encode_client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0F));
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

/// Runs a future to completion on this thread's current-thread runtime
/// (built once per thread, with timers: the frame reader arms a deadline
/// while a message is arriving).
pub fn block_on<F: Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// An [`tokio::io::AsyncRead`] over a byte slice that hands out at most
/// `chunk` bytes per read and is always ready: exercises a reader's partial
/// reads without a runtime or a pipe.
#[derive(Debug)]
pub struct ChunkedReader<'a> {
    /// What is left to read.
    rest: &'a [u8],
    /// Most bytes one read returns (at least 1).
    chunk: usize,
}

impl<'a> ChunkedReader<'a> {
    /// A reader over `bytes`, `chunk` bytes (at least 1) at a time.
    pub fn new(bytes: &'a [u8], chunk: usize) -> Self {
        ChunkedReader {
            rest: bytes,
            chunk: chunk.max(1),
        }
    }
}

impl tokio::io::AsyncRead for ChunkedReader<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.rest.len().min(self.chunk).min(buf.remaining());
        let (now, later) = self.rest.split_at(n);
        buf.put_slice(now);
        self.rest = later;
        Poll::Ready(Ok(()))
    }
}

/// Parses `bytes` as one JSON value, like `serde_json::from_slice`, but
/// gives `None` when an object anywhere in it repeats a key, as well as
/// when it is not JSON. A `serde_json::Value` keeps the last of repeated
/// keys, while simd-json's objects (what the dialects read) may keep
/// either, so a model of a dialect built on a `Value` is only exact for
/// JSON without them.
pub fn json_without_duplicate_keys(bytes: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice::<UniqueKeys>(bytes)
        .ok()
        .map(|unique| unique.0)
}

/// A JSON value whose objects have no repeated keys.
struct UniqueKeys(serde_json::Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(UniqueKeysVisitor)
            .map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON without repeated keys")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let UniqueKeys(value) = map.next_value()?;
            if object.insert(key, value).is_some() {
                return Err(serde::de::Error::custom("repeated key"));
            }
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// Deepest nesting of arrays and objects the dialects read: simd-json's
/// `DEFAULT_MAX_DEPTH` (a message nested deeper gets `invalid_json`, though
/// RFC 8259 §9 would call it JSON with an implementation limit).
pub const DIALECT_MAX_DEPTH: usize = 1024;

/// Deepest nesting of arrays and objects `parse_json` reads in an HTTP
/// body: serde_json's recursion limit (128) lets 127 levels through.
pub const HTTP_MAX_DEPTH: usize = 127;

/// Whether `bytes` is one JSON text (RFC 8259), decided here from the
/// grammar, independently of serde_json and simd-json: UTF-8; one value
/// between optional whitespace (space, tab, LF, CR); strings without raw
/// control characters, with only the RFC's escapes, and with every `\u`
/// surrogate escape in a high-low pair (a lone surrogate is no Unicode
/// text); numbers in the RFC's form that round to a finite `f64` (the
/// range limit every JSON library here has: `1e400` is not read); arrays
/// and objects nested at most `max_depth` deep (the parser's limit).
pub fn is_json(bytes: &[u8], max_depth: usize) -> bool {
    if std::str::from_utf8(bytes).is_err() {
        return false;
    }
    let mut check = JsonCheck {
        text: bytes,
        at: 0,
        max_depth,
    };
    check.whitespace();
    check.value(0).is_some() && {
        check.whitespace();
        check.at == bytes.len()
    }
}

/// A recursive-descent reader of the JSON grammar (`None`: not JSON).
struct JsonCheck<'a> {
    /// The whole text (valid UTF-8).
    text: &'a [u8],
    /// The next byte to read.
    at: usize,
    /// Most arrays and objects one value may be nested in.
    max_depth: usize,
}

impl JsonCheck<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// Consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        self.at += usize::from(next);
        next
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A value inside `depth` arrays and objects.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' | b'[' if depth >= self.max_depth => None,
            b'{' => {
                self.at += 1;
                self.whitespace();
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.whitespace();
                    self.string()?;
                    self.whitespace();
                    self.expect(b':')?;
                    self.whitespace();
                    self.value(depth + 1)?;
                    self.whitespace();
                    if self.eat(b'}') {
                        return Some(());
                    }
                    self.expect(b',')?;
                }
            }
            b'[' => {
                self.at += 1;
                self.whitespace();
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.whitespace();
                    self.value(depth + 1)?;
                    self.whitespace();
                    if self.eat(b']') {
                        return Some(());
                    }
                    self.expect(b',')?;
                }
            }
            b'"' => self.string(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.text[self.at..]
            .starts_with(word)
            .then(|| self.at += word.len())
    }

    /// Consumes decimal digits; how many.
    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, finite as
    /// an `f64` (Rust's parse rounds correctly, as both parsers do).
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _sign = self.eat(b'+') || self.eat(b'-');
            if self.digits() == 0 {
                return None;
            }
        }
        let number = std::str::from_utf8(&self.text[start..self.at]).ok()?;
        number
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(drop)
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Option<u32> {
        let hex = self.text.get(self.at..self.at + 4)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    }

    fn string(&mut self) -> Option<()> {
        const HIGH: std::ops::Range<u32> = 0xD800..0xDC00;
        const LOW: std::ops::Range<u32> = 0xDC00..0xE000;
        self.expect(b'"')?;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                0..0x20 => return None,
                b'\\' => {
                    self.at += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => {
                            self.at += 1;
                            let unit = self.hex4()?;
                            if LOW.contains(&unit) {
                                return None;
                            }
                            if HIGH.contains(&unit) {
                                self.expect(b'\\')?;
                                self.expect(b'u')?;
                                LOW.contains(&self.hex4()?).then_some(())?;
                            }
                        }
                        _ => return None,
                    }
                }
                _ => self.at += 1,
            }
        }
    }
}

/// Checks a dialect's verdict on whether a client message is JSON: the
/// dialect answered "not JSON" (`refusal`: its reason) exactly when
/// [`is_json`] (with [`DIALECT_MAX_DEPTH`]) says it is not; `refusal` is
/// `None` when the dialect read the message.
pub fn check_json_verdict(message: &[u8], refusal: Option<&str>) {
    match (refusal, is_json(message, DIALECT_MAX_DEPTH)) {
        (Some(why), true) => panic!("a JSON message was refused as not JSON: {why}"),
        (None, false) => panic!("a message that is not JSON was read as JSON"),
        _ => {}
    }
}
