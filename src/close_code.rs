//! Every WebSocket close code roomcast sends, in one place. Sessions and the
//! outbox name a [`CloseCode`]; only here is it mapped to the number on the
//! wire and the reason text. The table is repeated in `docs/close-codes.md`.

/// Why the server closes a WebSocket session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the client asked to close, or the session ended normally.
    Normal,
    /// 1001: the server is shutting down (drain); reconnect elsewhere.
    GoingAway,
    /// 1002: the client broke the WebSocket protocol (bad opcode, bad fragmentation, reserved bits).
    ProtocolError,
    /// 1007: a text message (or a close reason) was not valid UTF-8.
    InvalidPayload,
    /// 1008: a message was still incomplete when the message timeout ran out.
    MessageTimeout,
    /// 1009: a client frame or reassembled message exceeded the configured maximum size.
    MessageTooBig,
    /// 1011: an internal error on the server ended the session.
    InternalError,
    /// 4000: the client sent nothing (no message, no pong) for the heartbeat timeout.
    IdleTimeout,
    /// 4001: the connection's token expired and was not refreshed in time.
    TokenExpired,
    /// 4003: the room the connection names is outside its token's grant; the
    /// dialect sent an error first.
    Forbidden,
    /// 4004: the stream the connection names (e.g. a backtest id in its path)
    /// does not exist or has expired; the dialect sent an error first.
    UnknownStream,
    /// 4008: the client did not read fast enough; its bounded outbox overflowed on an
    /// ordered (non-conflating) stream, so it is closed rather than silently skipped.
    SlowConsumer,
    /// 4029: the client kept sending past the hard message-rate limit.
    RateLimited,
}

impl CloseCode {
    /// Every close code, in declaration order (so `code as usize` indexes
    /// it): `/metrics` lists each one's close counter from the start.
    pub const ALL: [CloseCode; 13] = [
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::ProtocolError,
        CloseCode::InvalidPayload,
        CloseCode::MessageTimeout,
        CloseCode::MessageTooBig,
        CloseCode::InternalError,
        CloseCode::IdleTimeout,
        CloseCode::TokenExpired,
        CloseCode::Forbidden,
        CloseCode::UnknownStream,
        CloseCode::SlowConsumer,
        CloseCode::RateLimited,
    ];

    /// The numeric code sent in the close frame.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::InvalidPayload => 1007,
            CloseCode::MessageTimeout => 1008,
            CloseCode::MessageTooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::IdleTimeout => 4000,
            CloseCode::TokenExpired => 4001,
            CloseCode::Forbidden => 4003,
            CloseCode::UnknownStream => 4004,
            CloseCode::SlowConsumer => 4008,
            CloseCode::RateLimited => 4029,
        }
    }

    /// The reason text sent with the code (at most 123 bytes, as the protocol requires).
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal closure",
            CloseCode::GoingAway => "server shutting down, reconnect",
            CloseCode::ProtocolError => "websocket protocol error",
            CloseCode::InvalidPayload => "invalid utf-8 in text frame",
            CloseCode::MessageTimeout => "message not completed in time",
            CloseCode::MessageTooBig => "message too big",
            CloseCode::InternalError => "internal server error",
            CloseCode::IdleTimeout => "heartbeat timeout: no message or pong received",
            CloseCode::TokenExpired => "token expired",
            CloseCode::Forbidden => "not permitted by the token",
            CloseCode::UnknownStream => "unknown stream",
            CloseCode::SlowConsumer => "slow consumer: outbound queue overflowed",
            CloseCode::RateLimited => "rate limit exceeded",
        }
    }

    /// A short label for metrics (bounded label set).
    pub fn label(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal",
            CloseCode::GoingAway => "going_away",
            CloseCode::ProtocolError => "protocol_error",
            CloseCode::InvalidPayload => "invalid_payload",
            CloseCode::MessageTimeout => "message_timeout",
            CloseCode::MessageTooBig => "message_too_big",
            CloseCode::InternalError => "internal_error",
            CloseCode::IdleTimeout => "idle_timeout",
            CloseCode::TokenExpired => "token_expired",
            CloseCode::Forbidden => "forbidden",
            CloseCode::UnknownStream => "unknown_stream",
            CloseCode::SlowConsumer => "slow_consumer",
            CloseCode::RateLimited => "rate_limited",
        }
    }
}

/// Checks a client's close frame payload (RFC 6455 §5.5.1, §7.4): empty, or
/// a status code a peer may send followed by a UTF-8 reason. The error is the
/// code to answer with instead of echoing a normal close.
pub fn check_client_close(payload: &[u8]) -> Result<(), CloseCode> {
    let (code, reason) = match payload {
        [] => return Ok(()),
        [_] => return Err(CloseCode::ProtocolError),
        [hi, lo, reason @ ..] => (u16::from_be_bytes([*hi, *lo]), reason),
    };
    // 1004–1006 and 1015 are reserved and must never be sent; below 1000 and
    // 1016–2999 are unassigned; 5000 and up do not exist.
    let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !sendable {
        return Err(CloseCode::ProtocolError);
    }
    if std::str::from_utf8(reason).is_err() {
        return Err(CloseCode::InvalidPayload);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_code_at_its_own_index() {
        for (i, code) in CloseCode::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i, "{code:?}");
        }
        // A new variant must be added to ALL: this match then fails to compile
        // until it is counted here too.
        let counted = |code: CloseCode| match code {
            CloseCode::Normal
            | CloseCode::GoingAway
            | CloseCode::ProtocolError
            | CloseCode::InvalidPayload
            | CloseCode::MessageTimeout
            | CloseCode::MessageTooBig
            | CloseCode::InternalError
            | CloseCode::IdleTimeout
            | CloseCode::TokenExpired
            | CloseCode::Forbidden
            | CloseCode::UnknownStream
            | CloseCode::SlowConsumer
            | CloseCode::RateLimited => 13,
        };
        assert_eq!(CloseCode::ALL.len(), counted(CloseCode::Normal));
    }

    fn close(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        payload
    }

    #[test]
    fn client_close_codes_are_checked() {
        assert_eq!(check_client_close(&[]), Ok(()));
        assert_eq!(check_client_close(&[3]), Err(CloseCode::ProtocolError));
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1011, 1012, 1014, 3000, 3999, 4000, 4999,
        ] {
            assert_eq!(check_client_close(&close(ok, b"bye")), Ok(()), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert_eq!(
                check_client_close(&close(bad, b"")),
                Err(CloseCode::ProtocolError),
                "{bad}"
            );
        }
        assert_eq!(
            check_client_close(&close(1000, &[0xce, 0xba, 0xe1, 0xbd])),
            Err(CloseCode::InvalidPayload)
        );
    }

    #[test]
    fn reasons_fit_in_a_control_frame() {
        for code in CloseCode::ALL {
            assert!(code.reason().len() <= 123, "{code:?}");
        }
    }
}
