//! Delivery: the last stage of the data path, from a room's fan-out to the
//! socket. Each session has one bounded [`outbox::Outbox`] that rooms push
//! shared frames into (conflating or closing a slow consumer, as the room's
//! policy says); the node's one [`flusher::Flusher`] writes idle sockets
//! straight from their outboxes, and a session's [`writer`] takes over when
//! its socket is full (and always writes the close frame).

pub mod flusher;
pub mod outbox;
pub mod writer;
