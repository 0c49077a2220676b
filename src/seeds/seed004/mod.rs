//! Seed 004's face: the trading stream on `/ws` (shared with seed 002;
//! the session is `crate::seeds::seed002::session`, this seed's channels
//! are [`channels`]), `GET /websocket/status` ([`status`]), and the
//! producer endpoints an external trading system publishes through
//! (`POST /websocket/broadcast/{signal,trade_executed,portfolio_update}`,
//! [`broadcast`]). Its producers are `crate::sources::trading`; its frames
//! are flat neutral events (`crate::dialect::ws_root`).

pub mod broadcast;
pub mod channels;
pub mod status;
