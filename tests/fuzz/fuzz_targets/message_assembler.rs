//! Fuzzes `roomcast::ws::message::MessageAssembler`, which turns client data
//! frames into messages (RFC 6455 §5.4): structured sequences of text,
//! binary and continuation frames (each at most the size limit, as the frame
//! reader guarantees) are pushed until the first refusal, and every answer
//! must equal that of a reassembly model written here from the RFC:
//!
//! * a text or binary frame inside a fragmented message, or a continuation
//!   outside one, is a protocol error (1002);
//! * a message whose fragments add up to more than the limit is too big
//!   (1009), refused at the fragment that crosses it;
//! * text that can no longer become UTF-8 is invalid (1007), refused at the
//!   fragment that breaks it, and so is text that ends inside a character;
//! * otherwise the final fragment yields the whole message with the first
//!   fragment's kind.
//!
//! Also: a text message handed over is valid UTF-8, and nothing stays
//! buffered once a message is complete.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use roomcast::close_code::CloseCode;
use roomcast::dialect::MessageKind;
use roomcast::ws::message::MessageAssembler;
use roomcast::ws::reader::{Frame, OpCode};

/// Message size limits the assembler runs with.
const SIZE_LIMITS: [usize; 6] = [0, 1, 3, 8, 64, 1024];

/// A data frame as the reader hands it over.
#[derive(Debug, Arbitrary)]
struct DataFrame {
    fin: bool,
    opcode: DataOpCode,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
enum DataOpCode {
    Text,
    Binary,
    Continuation,
}

#[derive(Debug, Arbitrary)]
struct Input {
    limit: u8,
    frames: Vec<DataFrame>,
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let limit = SIZE_LIMITS[usize::from(input.limit) % SIZE_LIMITS.len()];
    let mut assembler = MessageAssembler::new(limit);
    let mut model = Reassembly::default();
    for (i, frame) in input.frames.into_iter().enumerate() {
        let mut payload = frame.payload;
        payload.truncate(limit); // the reader refuses larger frames
        let want = model.push(frame.fin, frame.opcode, &payload, limit);
        let got = assembler.push(Frame {
            fin: frame.fin,
            opcode: match frame.opcode {
                DataOpCode::Text => OpCode::Text,
                DataOpCode::Binary => OpCode::Binary,
                DataOpCode::Continuation => OpCode::Continuation,
            },
            payload,
        });
        assert_eq!(got, want, "frame {i}: assembler and model disagree");
        match got {
            Err(_) => return, // the session closes
            Ok(Some((kind, message))) => {
                assert!(message.len() <= limit, "a message over the limit");
                if kind == MessageKind::Text {
                    assert!(std::str::from_utf8(&message).is_ok(), "text is not UTF-8");
                }
                assert_eq!(assembler.buffered(), 0, "a buffer kept after a message");
            }
            Ok(None) => {}
        }
    }
});

/// RFC 6455 §5.4 reassembly, one frame at a time.
#[derive(Debug, Default)]
struct Reassembly {
    /// The message in progress: its kind and bytes so far.
    partial: Option<(MessageKind, Vec<u8>)>,
}

/// Whether `bytes` is UTF-8, or UTF-8 cut inside its last character.
fn may_become_utf8(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

impl Reassembly {
    fn push(
        &mut self,
        fin: bool,
        opcode: DataOpCode,
        payload: &[u8],
        limit: usize,
    ) -> Result<Option<(MessageKind, Vec<u8>)>, CloseCode> {
        let (kind, bytes) = match (opcode, self.partial.take()) {
            (DataOpCode::Continuation, None) => return Err(CloseCode::ProtocolError),
            (DataOpCode::Text | DataOpCode::Binary, Some(_)) => {
                return Err(CloseCode::ProtocolError);
            }
            (DataOpCode::Continuation, Some((kind, mut bytes))) => {
                if bytes.len() + payload.len() > limit {
                    return Err(CloseCode::MessageTooBig);
                }
                bytes.extend_from_slice(payload);
                (kind, bytes)
            }
            (DataOpCode::Text, None) => (MessageKind::Text, payload.to_vec()),
            (DataOpCode::Binary, None) => (MessageKind::Binary, payload.to_vec()),
        };
        if kind == MessageKind::Text {
            let valid = if fin {
                std::str::from_utf8(&bytes).is_ok()
            } else {
                may_become_utf8(&bytes)
            };
            if !valid {
                return Err(CloseCode::InvalidPayload);
            }
        }
        if fin {
            Ok(Some((kind, bytes)))
        } else {
            self.partial = Some((kind, bytes));
            Ok(None)
        }
    }
}
