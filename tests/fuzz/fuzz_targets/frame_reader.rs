//! Fuzzes `roomcast::ws::reader::FrameReader`, the parser of client
//! WebSocket frames, two ways (picked by the input's first byte):
//!
//! * raw bytes: the stream is split into read-ahead and socket bytes and
//!   read in chunks of a fuzzed size under a fuzzed size limit; every frame
//!   returned must respect the limit, control frames must be final and at
//!   most 125 bytes, and the whole outcome (frames, then the error that ends
//!   the stream) must equal what an independent RFC 6455 decoder written
//!   here says (which also refuses non-minimal lengths and 64-bit lengths
//!   with the top bit set); and the reader never holds more than twice the
//!   bytes it was given plus 16 KiB (a header announcing a large frame does
//!   not make it reserve the announced length: `fill` reserves at most
//!   16 KiB ahead of the bytes that arrived);
//! * round trip: structured frames (arbitrary fin, opcode, payload and
//!   mask) are masked-encoded, read back in chunks, and must come back
//!   identical, followed by a clean end of stream, with the reader holding
//!   no buffer once the last frame was returned.
//!
//! The reader's per-message deadline is an hour: over an always-ready
//! reader it never fires (a `Timeout` is reported as a failure).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

use roomcast::ws::reader::{Frame, FrameReader, OpCode, ReadError};
use roomcast_fuzz::{ChunkedReader, block_on, encode_client_frame};

/// Size limits the raw mode reads under: around every length-class boundary.
const SIZE_LIMITS: [usize; 9] = [0, 1, 125, 126, 127, 1000, 65_535, 65_536, 1 << 20];

/// Most frames one input is read as (keeps each run short).
const MAX_FRAMES: usize = 64;

/// Most the reader reserves ahead of bytes that have not arrived
/// (`MAX_READ_AHEAD` in src/ws/reader.rs). Its buffer grows by doubling, so
/// it may hold up to twice what it was given plus this.
const MAX_READ_AHEAD: usize = 16 * 1024;

/// The reader's message deadline: never reached over an always-ready reader.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(3600);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        raw_bytes(rest);
    } else {
        round_trip(rest);
    }
});

/// What reading a whole stream gave: its frames, then how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Frame>,
    end: End,
}

/// How reading a stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The stream ended (between frames or inside one).
    Eof,
    /// A frame's declared payload exceeds the limit.
    TooLarge(u64),
    /// A frame breaks RFC 6455 (the reader's reason).
    Protocol(&'static str),
    /// More than [`MAX_FRAMES`] frames were read; reading stopped.
    Enough,
}

fn raw_bytes(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(limit), Ok(chunk), Ok(read_ahead)) = (
        u.choose(&SIZE_LIMITS),
        u.int_in_range(1..=64usize),
        u.int_in_range(0..=32usize),
    ) else {
        return;
    };
    let stream = u.take_rest();
    let read_ahead = read_ahead.min(stream.len());
    let (ahead, socket) = stream.split_at(read_ahead);

    let mut reader = FrameReader::new(
        ChunkedReader::new(socket, chunk),
        ahead,
        *limit,
        MESSAGE_TIMEOUT,
    );
    let got = read_stream(&mut reader);
    for frame in &got.frames {
        assert!(
            frame.payload.len() <= *limit,
            "a {}-byte frame passed a {limit}-byte limit",
            frame.payload.len()
        );
        if frame.opcode.is_control() {
            assert!(frame.fin, "a fragmented control frame was returned");
            assert!(frame.payload.len() <= 125, "a control frame over 125 bytes");
        }
    }
    assert_eq!(
        got,
        reference_decode(stream, *limit),
        "FrameReader disagrees with the reference decoder"
    );
    let bound = 2 * (stream.len() + MAX_READ_AHEAD);
    assert!(
        reader.buffered_capacity() <= bound,
        "the reader holds {} bytes after {} arrived (at most {bound})",
        reader.buffered_capacity(),
        stream.len()
    );
}

/// Reads frames until the stream ends or fails.
fn read_stream(reader: &mut FrameReader<ChunkedReader<'_>>) -> Outcome {
    let mut frames = Vec::new();
    let end = loop {
        if frames.len() == MAX_FRAMES {
            break End::Enough;
        }
        match block_on(reader.read_frame()) {
            Ok(frame) => frames.push(frame),
            Err(ReadError::Eof) => break End::Eof,
            Err(ReadError::TooLarge(n)) => break End::TooLarge(n),
            Err(ReadError::Protocol(why)) => break End::Protocol(why),
            Err(ReadError::Io(e)) => panic!("a slice reader cannot fail: {e}"),
            Err(ReadError::Timeout(t)) => panic!("timed out ({t:?}) over an always-ready reader"),
        }
    };
    Outcome { frames, end }
}

/// RFC 6455 §5.2 decoding of a complete client stream, written from the
/// RFC (not from the reader), checking in the order the reader documents:
/// the first two bytes (reserved bits, opcode, mask bit), then the length
/// (its encoding, control frames, then the size limit), before any payload
/// byte is needed.
fn reference_decode(mut stream: &[u8], limit: usize) -> Outcome {
    let mut frames = Vec::new();
    let end = loop {
        if frames.len() == MAX_FRAMES {
            break End::Enough;
        }
        let [b0, b1, ..] = *stream else {
            break End::Eof;
        };
        if b0 & 0x70 != 0 {
            break End::Protocol("reserved bits set without an extension");
        }
        let opcode = match b0 & 0x0F {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => break End::Protocol("unknown opcode"),
        };
        if b1 & 0x80 == 0 {
            break End::Protocol("client frames must be masked");
        }
        let fin = b0 & 0x80 != 0;
        let extended = match b1 & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + extended + 4;
        if stream.len() < header_len {
            break End::Eof;
        }
        let len = match extended {
            0 => u64::from(b1 & 0x7F),
            2 => u64::from(u16::from_be_bytes([stream[2], stream[3]])),
            _ => u64::from_be_bytes(stream[2..10].try_into().expect("8 bytes")),
        };
        if extended == 8 && len >> 63 != 0 {
            break End::Protocol("64-bit payload length with its top bit set");
        }
        let shortest_extension = match len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        if extended != shortest_extension {
            break End::Protocol("payload length not minimally encoded");
        }
        if opcode.is_control() && !fin {
            break End::Protocol("fragmented control frame");
        }
        if opcode.is_control() && len > 125 {
            break End::Protocol("control frame longer than 125 bytes");
        }
        if len > limit as u64 {
            break End::TooLarge(len);
        }
        let len = len as usize;
        if stream.len() < header_len + len {
            break End::Eof;
        }
        let mask = &stream[header_len - 4..header_len];
        let payload = stream[header_len..header_len + len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        frames.push(Frame {
            fin,
            opcode,
            payload,
        });
        stream = &stream[header_len + len..];
    };
    Outcome { frames, end }
}

/// A frame a client may legitimately send.
#[derive(Debug, Arbitrary)]
struct ClientFrame {
    fin: bool,
    opcode: ClientOpCode,
    payload: Vec<u8>,
    mask: [u8; 4],
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum ClientOpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl ClientOpCode {
    fn bits_and_opcode(self) -> (u8, OpCode) {
        match self {
            ClientOpCode::Continuation => (0x0, OpCode::Continuation),
            ClientOpCode::Text => (0x1, OpCode::Text),
            ClientOpCode::Binary => (0x2, OpCode::Binary),
            ClientOpCode::Close => (0x8, OpCode::Close),
            ClientOpCode::Ping => (0x9, OpCode::Ping),
            ClientOpCode::Pong => (0xA, OpCode::Pong),
        }
    }
}

/// Structured frames to write and read back.
#[derive(Debug, Arbitrary)]
struct RoundTrip {
    /// Bytes per read, less one.
    chunk: u8,
    /// Frames in stream order.
    frames: Vec<ClientFrame>,
}

fn round_trip(data: &[u8]) {
    let Ok(input) = RoundTrip::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for frame in input.frames.iter().take(MAX_FRAMES) {
        let (bits, opcode) = frame.opcode.bits_and_opcode();
        let mut payload = frame.payload.clone();
        // Control frames are final and short (§5.5); others are free.
        let fin = if opcode.is_control() {
            payload.truncate(125);
            true
        } else {
            frame.fin
        };
        stream.extend(encode_client_frame(fin, bits, &payload, frame.mask));
        expected.push(Frame {
            fin,
            opcode,
            payload,
        });
    }
    let limit = expected.iter().map(|f| f.payload.len()).max().unwrap_or(0);
    let chunk = usize::from(input.chunk) + 1;
    let mut reader = FrameReader::new(
        ChunkedReader::new(&stream, chunk),
        &[],
        limit,
        MESSAGE_TIMEOUT,
    );
    for (i, want) in expected.iter().enumerate() {
        match block_on(reader.read_frame()) {
            Ok(got) => assert_eq!(&got, want, "frame {i} changed on its round trip"),
            Err(e) => panic!("frame {i} of a valid stream was refused: {e}"),
        }
    }
    assert_eq!(
        reader.buffered_capacity(),
        0,
        "the reader holds a buffer after the last frame"
    );
    assert!(
        matches!(block_on(reader.read_frame()), Err(ReadError::Eof)),
        "a valid stream did not end cleanly after its last frame"
    );
}
