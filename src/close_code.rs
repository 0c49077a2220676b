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
    /// 1007: a text frame was not valid UTF-8.
    InvalidPayload,
    /// 1009: a client frame or reassembled message exceeded the configured maximum size.
    MessageTooBig,
    /// 1011: an internal error on the server ended the session.
    InternalError,
    /// 4000: the client sent nothing (no message, no pong) for the heartbeat timeout.
    IdleTimeout,
    /// 4008: the client did not read fast enough; its bounded outbox overflowed on an
    /// ordered (non-conflating) stream, so it is closed rather than silently skipped.
    SlowConsumer,
    /// 4029: the client kept sending past the hard message-rate limit.
    RateLimited,
}

impl CloseCode {
    /// The numeric code sent in the close frame.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::InvalidPayload => 1007,
            CloseCode::MessageTooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::IdleTimeout => 4000,
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
            CloseCode::MessageTooBig => "message too big",
            CloseCode::InternalError => "internal server error",
            CloseCode::IdleTimeout => "heartbeat timeout: no message or pong received",
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
            CloseCode::MessageTooBig => "message_too_big",
            CloseCode::InternalError => "internal_error",
            CloseCode::IdleTimeout => "idle_timeout",
            CloseCode::SlowConsumer => "slow_consumer",
            CloseCode::RateLimited => "rate_limited",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_in_a_control_frame() {
        for code in [
            CloseCode::Normal,
            CloseCode::GoingAway,
            CloseCode::ProtocolError,
            CloseCode::InvalidPayload,
            CloseCode::MessageTooBig,
            CloseCode::InternalError,
            CloseCode::IdleTimeout,
            CloseCode::SlowConsumer,
            CloseCode::RateLimited,
        ] {
            assert!(code.reason().len() <= 123, "{code:?}");
        }
    }
}
