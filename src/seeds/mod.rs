//! One folder per seed protocol: its face, everything a client of that
//! seed sees (the session state machine of its WebSocket, its HTTP
//! endpoints, its status endpoint). What rooms need of a seed, its
//! encoder, stays in `crate::dialect`, below the rooms; what feeds it, in
//! `crate::sources`. A new seed is one folder here, its catalog rows and
//! its encoder.

pub mod seed000;
pub mod seed001;
pub mod seed002;
pub mod seed003;
pub mod seed004;
