//! Fuzzes the seed 001 dialect (`/api/ws`): a `Seed001Session` is opened on
//! a recording link and fed the client messages of the input (separated by
//! 0xFF; see `roomcast_fuzz::split_messages`). Invariants:
//!
//! * every frame it sends is one valid server text frame holding a JSON
//!   object with a string `type` the seed defines for server messages;
//! * every client message gets at least one reply (bad input gets an
//!   `error`; the connection stays open: the dialect never closes it);
//! * it only joins rooms a client may name (`ticker:<normalised symbol>`,
//!   `patterns`, `alerts`, `market_status`: what the native dialect's room
//!   parser accepts too), and a ticker confirmation names the room's ticker;
//! * a `history` reply holds the retained messages, oldest first;
//! * a message gets the `Invalid JSON` error exactly when it is not JSON, as
//!   `roomcast_fuzz::is_json` decides from RFC 8259 (numbers finite as
//!   `f64`, nesting at most 1024 deep: simd-json's limit); an integer beyond
//!   64 bits is JSON (finding 8, fixed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use roomcast::dialect::DialectSession;
use roomcast::native::parse_room;
use roomcast::seeds::seed001::Seed001Session;
use roomcast_fuzz::{
    LinkAction, RecordingLink, assert_server_json_frame, check_json_verdict, deliver_message,
    message_type, split_messages,
};

/// Server message types a seed 001 client can get in reply to its own
/// messages (`price_update`: the market status greeting replays the latest
/// retained message, and the recording link retains price updates).
const REPLY_TYPES: [&str; 5] = ["subscription", "history", "pong", "error", "price_update"];

fuzz_target!(|data: &[u8]| {
    let mut session = Seed001Session::new(None);
    let mut link = RecordingLink::new();
    session.on_open(&mut link);
    let [LinkAction::Sent(ack)] = &link.actions[..] else {
        panic!("on_open did more than send the ack: {:?}", link.actions);
    };
    let ack = assert_server_json_frame(ack);
    assert_eq!(message_type(&ack), "connection");
    assert_eq!(ack["status"], "connected");

    for (kind, message) in split_messages(data) {
        link.clear_actions();
        deliver_message(&mut session, &mut link, kind, message);
        check_reply(&link.actions);
        check_json_verdict(message, invalid_json(&link.actions).as_deref());
    }
});

/// The reason, when the reply is the one "Invalid JSON" error.
fn invalid_json(actions: &[LinkAction]) -> Option<String> {
    let [LinkAction::Sent(frame)] = actions else {
        return None;
    };
    let reply = assert_server_json_frame(frame);
    let message = reply["message"].as_str()?;
    message
        .starts_with("Invalid JSON")
        .then(|| message.to_string())
}

fn check_reply(actions: &[LinkAction]) {
    let mut replies = 0;
    let mut joined_ticker: Option<String> = None;
    for action in actions {
        match action {
            LinkAction::Sent(frame) => {
                replies += 1;
                let reply = assert_server_json_frame(frame);
                let kind = message_type(&reply);
                assert!(REPLY_TYPES.contains(&kind), "unexpected reply type {kind}");
                if kind == "history" {
                    let messages = reply["messages"]
                        .as_array()
                        .expect("history messages are an array");
                    let prices: Vec<_> = messages.iter().map(|m| m["price"].clone()).collect();
                    assert_eq!(
                        prices,
                        [5.25, 6.25, 7.25, 8.25, 9.25],
                        "history is not the retained messages, oldest first"
                    );
                    assert_eq!(reply["ticker"].as_str(), joined_ticker.as_deref());
                }
                if kind == "subscription"
                    && reply["action"] == "subscribed"
                    && let Some(ticker) = &joined_ticker
                {
                    assert_eq!(reply["ticker"].as_str(), Some(ticker.as_str()));
                }
            }
            LinkAction::Joined(room)
            | LinkAction::AlreadyJoined(room)
            | LinkAction::Refused(room) => {
                assert_eq!(
                    parse_room(room.as_str()).as_ref(),
                    Ok(room),
                    "joined a room no client may name"
                );
                joined_ticker = room.ticker_symbol().map(str::to_string);
            }
            LinkAction::Left(room, _) => {
                assert_eq!(
                    parse_room(room.as_str()).as_ref(),
                    Ok(room),
                    "left a room no client may name"
                );
            }
            LinkAction::Closed(code) => panic!("seed 001 closed the connection with {code:?}"),
        }
    }
    assert!(replies > 0, "a client message got no reply");
}
