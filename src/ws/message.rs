//! Turns client data frames into complete messages (RFC 6455 §5.4): a
//! fragmented message is reassembled up to the message-size limit, and text
//! is checked as UTF-8 fragment by fragment, so invalid text fails at the
//! fragment that breaks it, not after the whole message has been buffered.
//! Fragmentation errors (a new data frame inside a message, a continuation
//! outside one) are protocol errors. Control frames never reach here.

use super::reader::{Frame, OpCode};
use crate::close_code::CloseCode;
use crate::dialect::MessageKind;

/// A fragmented message being reassembled.
#[derive(Debug)]
struct Partial {
    /// Text or binary, from the first fragment.
    kind: MessageKind,
    /// The payload so far.
    payload: Vec<u8>,
    /// Bytes of `payload` known to be valid UTF-8 (text only); what follows
    /// is at most an incomplete character cut by a fragment boundary.
    valid_up_to: usize,
}

/// Reassembles one connection's messages.
#[derive(Debug)]
pub struct MessageAssembler {
    /// Largest message, in bytes, across all its fragments.
    max_size: usize,
    /// The message in progress, if a non-final fragment has arrived; boxed
    /// because fragmented client messages are rare and this sits in every
    /// session's future.
    partial: Option<Box<Partial>>,
}

/// How far `bytes` is valid UTF-8: `Ok(n)` when the first `n` bytes are
/// valid and the rest (if any) is an incomplete character that more bytes
/// could finish; `Err` when it can never become valid.
fn utf8_prefix(bytes: &[u8]) -> Result<usize, ()> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(bytes.len()),
        Err(e) if e.error_len().is_none() => Ok(e.valid_up_to()),
        Err(_) => Err(()),
    }
}

impl MessageAssembler {
    /// An assembler refusing messages over `max_size` bytes.
    pub fn new(max_size: usize) -> Self {
        MessageAssembler {
            max_size,
            partial: None,
        }
    }

    /// Takes one data frame (text, binary or continuation). Returns the
    /// complete message when `frame` ends one, `None` while one is still
    /// arriving, or the close code the frame earns.
    pub fn push(&mut self, frame: Frame) -> Result<Option<(MessageKind, Vec<u8>)>, CloseCode> {
        let kind = match frame.opcode {
            OpCode::Text => MessageKind::Text,
            OpCode::Binary => MessageKind::Binary,
            OpCode::Continuation => return self.push_continuation(frame),
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                unreachable!("control frames are handled by the session")
            }
        };
        if self.partial.is_some() {
            // A new message may not start before the last one ended.
            return Err(CloseCode::ProtocolError);
        }
        if frame.fin {
            if kind == MessageKind::Text && std::str::from_utf8(&frame.payload).is_err() {
                return Err(CloseCode::InvalidPayload);
            }
            return Ok(Some((kind, frame.payload)));
        }
        let valid_up_to = match kind {
            MessageKind::Text => {
                utf8_prefix(&frame.payload).map_err(|()| CloseCode::InvalidPayload)?
            }
            MessageKind::Binary => frame.payload.len(),
        };
        self.partial = Some(Box::new(Partial {
            kind,
            payload: frame.payload,
            valid_up_to,
        }));
        Ok(None)
    }

    fn push_continuation(
        &mut self,
        frame: Frame,
    ) -> Result<Option<(MessageKind, Vec<u8>)>, CloseCode> {
        let Some(partial) = self.partial.as_mut() else {
            return Err(CloseCode::ProtocolError);
        };
        if partial.payload.len() + frame.payload.len() > self.max_size {
            return Err(CloseCode::MessageTooBig);
        }
        partial.payload.extend_from_slice(&frame.payload);
        if partial.kind == MessageKind::Text {
            let checked = partial.valid_up_to;
            let valid =
                utf8_prefix(&partial.payload[checked..]).map_err(|()| CloseCode::InvalidPayload)?;
            partial.valid_up_to = checked + valid;
        }
        if !frame.fin {
            return Ok(None);
        }
        let partial = self.partial.take().expect("checked above");
        if partial.kind == MessageKind::Text && partial.valid_up_to != partial.payload.len() {
            // The message ended inside a character.
            return Err(CloseCode::InvalidPayload);
        }
        Ok(Some((partial.kind, partial.payload)))
    }

    /// Bytes held by a message in progress (memory accounting, tests).
    pub fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.payload.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Frame {
        Frame {
            fin,
            opcode,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn single_frames_are_whole_messages() {
        let mut a = MessageAssembler::new(100);
        assert_eq!(
            a.push(frame(true, OpCode::Text, b"hi")),
            Ok(Some((MessageKind::Text, b"hi".to_vec())))
        );
        assert_eq!(
            a.push(frame(true, OpCode::Binary, &[0xff])),
            Ok(Some((MessageKind::Binary, vec![0xff])))
        );
    }

    #[test]
    fn a_character_split_across_fragments_is_valid() {
        let euro = "€".as_bytes(); // 3 bytes
        let mut a = MessageAssembler::new(100);
        assert_eq!(a.push(frame(false, OpCode::Text, &euro[..1])), Ok(None));
        assert_eq!(
            a.push(frame(false, OpCode::Continuation, &euro[1..2])),
            Ok(None)
        );
        assert_eq!(
            a.push(frame(true, OpCode::Continuation, &euro[2..])),
            Ok(Some((MessageKind::Text, euro.to_vec())))
        );
    }

    #[test]
    fn invalid_text_fails_at_the_fragment_that_breaks_it() {
        let mut a = MessageAssembler::new(100);
        assert_eq!(a.push(frame(false, OpCode::Text, b"ok")), Ok(None));
        // 0xC0 can never start a valid sequence: fail now, not at the end.
        assert_eq!(
            a.push(frame(false, OpCode::Continuation, &[0xc0, 0x80])),
            Err(CloseCode::InvalidPayload)
        );
        let mut a = MessageAssembler::new(100);
        assert_eq!(
            a.push(frame(false, OpCode::Text, &[0xff])),
            Err(CloseCode::InvalidPayload)
        );
    }

    #[test]
    fn a_message_ending_inside_a_character_is_invalid() {
        let mut a = MessageAssembler::new(100);
        assert_eq!(a.push(frame(false, OpCode::Text, b"a")), Ok(None));
        assert_eq!(
            a.push(frame(true, OpCode::Continuation, &"€".as_bytes()[..2])),
            Err(CloseCode::InvalidPayload)
        );
    }

    #[test]
    fn fragmentation_errors_are_protocol_errors() {
        let mut a = MessageAssembler::new(100);
        assert_eq!(
            a.push(frame(true, OpCode::Continuation, b"x")),
            Err(CloseCode::ProtocolError)
        );
        assert_eq!(a.push(frame(false, OpCode::Binary, b"x")), Ok(None));
        assert_eq!(
            a.push(frame(true, OpCode::Text, b"y")),
            Err(CloseCode::ProtocolError)
        );
    }

    #[test]
    fn the_size_limit_counts_every_fragment() {
        let mut a = MessageAssembler::new(10);
        assert_eq!(a.push(frame(false, OpCode::Binary, &[0; 6])), Ok(None));
        assert!(a.buffered() >= 6);
        assert_eq!(
            a.push(frame(true, OpCode::Continuation, &[0; 5])),
            Err(CloseCode::MessageTooBig)
        );
    }
}
