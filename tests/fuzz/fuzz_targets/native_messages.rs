//! Fuzzes roomcast's native dialect (`/v1/ws`, protocol v1): a
//! `NativeSession` is opened on a recording link and fed the client
//! messages of the input (separated by 0xFF; see
//! `roomcast_fuzz::split_messages`). The link greets every joiner from a
//! history holding `seq` 5 to 9 of epoch 7, so resume requests fall before,
//! inside and after it. Invariants:
//!
//! * every frame it sends is one valid server text frame holding a JSON
//!   object with a string `type` protocol v1 defines, and every `error` has
//!   one of the documented `code`s;
//! * it only joins rooms `parse_room` accepts, and each new join is greeted
//!   by `subscribed` for that room (epoch 7, seq 9) followed by exactly
//!   `replayed` `message`s of that room: consecutive `seq`s ending at the
//!   latest, each carrying the retained event of its `seq`, starting right
//!   after the reported gap when there is one; `recovered: true` never comes
//!   with a gap, `recovered: false` always with a reason;
//! * the only way it closes a session is the client's `close` (1000);
//! * each entry of a `subscribe` (JSON without repeated keys, at most
//!   `MAX_ROOMS_PER_MESSAGE` entries) gets exactly one answer, in order: a
//!   join of the room `parse_room` makes of its name (new, already joined
//!   or refused at the cap) when the entry is a name, or an object with a
//!   string `room` and no `seq`, or a `seq` (and `epoch`, if any) from 0 to
//!   2^53−1 (what JavaScript's numbers hold); otherwise one `bad_room`
//!   error, naming the 2^53−1 bound when a `seq` or `epoch` is an integer
//!   beyond it (finding 3 of tests/fuzz/crashes-found/, fixed);
//! * a message is answered `invalid_json` exactly when it is not JSON, as
//!   `roomcast_fuzz::is_json` decides from RFC 8259 (numbers finite as
//!   `f64`, nesting at most 1024 deep: simd-json's limit); an integer beyond
//!   64 bits is JSON (finding 8, fixed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use roomcast::close_code::CloseCode;
use roomcast::dialect::DialectSession;
use roomcast::native::{MAX_ROOMS_PER_MESSAGE, NativeSession, PROTOCOL, parse_room};
use roomcast_fuzz::{
    LinkAction, RECORDED_EPOCH, RecordingLink, assert_server_json_frame, check_json_verdict,
    deliver_message, json_without_duplicate_keys, message_type, split_messages,
};
use serde_json::Value;

/// Server message types a native client can get in reply to its own messages.
const REPLY_TYPES: [&str; 5] = ["subscribed", "message", "unsubscribed", "pong", "error"];

/// Documented `error` codes (docs/protocol-v1.md).
const ERROR_CODES: [&str; 7] = [
    "bad_room",
    "already_subscribed",
    "subscription_limit",
    "room_limit",
    "bad_message",
    "invalid_json",
    "unknown_type",
];

/// The latest `seq` the recording link's history holds.
const LATEST_SEQ: u64 = 9;

/// How many events the recording link's history holds (`seq` 5 to 9).
const RETAINED: u64 = 5;

fuzz_target!(|data: &[u8]| {
    let mut session = NativeSession::new("fuzz-node");
    let mut link = RecordingLink::new();
    session.on_open(&mut link);
    let [LinkAction::Sent(welcome)] = &link.actions[..] else {
        panic!("on_open did more than send welcome: {:?}", link.actions);
    };
    let welcome = assert_server_json_frame(welcome);
    assert_eq!(message_type(&welcome), "welcome");
    assert_eq!(welcome["protocol"], PROTOCOL);
    assert_eq!(welcome["node"], "fuzz-node");

    for (kind, message) in split_messages(data) {
        link.clear_actions();
        deliver_message(&mut session, &mut link, kind, message);
        check_reply(&link.actions);
        check_json_verdict(message, invalid_json(&link.actions).as_deref());
        check_subscribe_entries(message, &link.actions);
    }
});

/// The reason, when the reply is the one `invalid_json` error.
fn invalid_json(actions: &[LinkAction]) -> Option<String> {
    let [LinkAction::Sent(frame)] = actions else {
        return None;
    };
    let reply = assert_server_json_frame(frame);
    (reply["code"] == "invalid_json").then(|| reply["message"].to_string())
}

/// The largest `seq` or `epoch` a client may send (2^53 − 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// How the native dialect must answer one `subscribe` entry.
#[derive(Debug)]
enum EntryAnswer {
    /// A join (new, already joined, or refused at the cap) of this room.
    Join(roomcast::catalog::RoomName),
    /// A `bad_room` error; `true` when it must name the 2^53−1 bound.
    BadRoom(bool),
}

/// The answer a `subscribe` entry must get, or `None` when the model cannot
/// tell (a `seq` or `epoch` given as a non-integer number, which simd-json
/// and serde_json may read differently).
fn expected_answer(entry: &Value) -> Option<EntryAnswer> {
    /// Whether a `seq`/`epoch` is in range; `None`: unknown.
    fn in_range(v: &Value) -> Option<Result<(), bool>> {
        match v {
            Value::Number(n) if n.is_u64() => Some(if n.as_u64()? <= MAX_SAFE_INTEGER {
                Ok(())
            } else {
                Err(true)
            }),
            Value::Number(n) if n.is_i64() => Some(Err(false)),
            Value::Number(_) => None,
            _ => Some(Err(false)),
        }
    }
    let name = match entry {
        Value::String(name) => name,
        Value::Object(o) => {
            let Some(Value::String(name)) = o.get("room") else {
                return Some(EntryAnswer::BadRoom(false));
            };
            if let Some(seq) = o.get("seq") {
                if let Err(beyond) = in_range(seq)? {
                    return Some(EntryAnswer::BadRoom(beyond));
                }
                if let Some(epoch) = o.get("epoch")
                    && let Err(beyond) = in_range(epoch)?
                {
                    return Some(EntryAnswer::BadRoom(beyond));
                }
            }
            name
        }
        _ => return Some(EntryAnswer::BadRoom(false)),
    };
    Some(match parse_room(name) {
        Ok(room) => EntryAnswer::Join(room),
        Err(_) => EntryAnswer::BadRoom(false),
    })
}

/// Checks each entry of a `subscribe` got its one answer (run after
/// [`check_reply`], which checked the frames and greetings).
fn check_subscribe_entries(message: &[u8], actions: &[LinkAction]) {
    let Some(value) = json_without_duplicate_keys(message) else {
        return;
    };
    let (Some("subscribe"), Some(Value::Array(entries))) =
        (value["type"].as_str(), value.get("rooms"))
    else {
        return;
    };
    if entries.len() > MAX_ROOMS_PER_MESSAGE || invalid_json(actions).is_some() {
        return; // too many entries for any answer; or checked as not JSON
    }
    let answers = answers(actions);
    assert_eq!(
        answers.len(),
        entries.len(),
        "{} answers to {} subscribe entries: {actions:?}",
        answers.len(),
        entries.len()
    );
    for (entry, answer) in entries.iter().zip(answers) {
        let Some(expected) = expected_answer(entry) else {
            continue;
        };
        match (expected, answer) {
            (
                EntryAnswer::Join(room),
                [
                    LinkAction::Joined(r) | LinkAction::AlreadyJoined(r) | LinkAction::Refused(r),
                    ..,
                ],
            ) => assert_eq!(r, &room, "entry {entry} joined another room"),
            (EntryAnswer::BadRoom(bound), [LinkAction::Sent(frame)]) => {
                let error = assert_server_json_frame(frame);
                assert_eq!(error["code"], "bad_room", "entry {entry}: {error}");
                if bound {
                    let text = error["message"].as_str().unwrap_or_default();
                    assert!(text.contains("2^53-1"), "entry {entry}: {error}");
                }
            }
            (expected, answer) => {
                panic!("entry {entry} answered {answer:?}, expected {expected:?}")
            }
        }
    }
}

/// Splits the actions answering a `subscribe` into one slice per entry: an
/// error; a join and its greeting (`subscribed`, then `replayed` messages);
/// an already-joined or refused join and its error.
fn answers(actions: &[LinkAction]) -> Vec<&[LinkAction]> {
    let mut answers = Vec::new();
    let mut rest = actions;
    while let Some(first) = rest.first() {
        let len = match first {
            LinkAction::Sent(_) => 1,
            LinkAction::Joined(_) => {
                let Some(LinkAction::Sent(subscribed)) = rest.get(1) else {
                    panic!("a join without a greeting: {actions:?}");
                };
                let subscribed = assert_server_json_frame(subscribed);
                let replayed = subscribed["replayed"].as_u64().expect("checked");
                2 + usize::try_from(replayed).expect("small")
            }
            LinkAction::AlreadyJoined(_) | LinkAction::Refused(_) => 2,
            LinkAction::Left(..) | LinkAction::Closed(_) => {
                panic!("a subscribe left or closed: {actions:?}")
            }
        };
        assert!(len <= rest.len(), "an answer cut short: {actions:?}");
        let (answer, after) = rest.split_at(len);
        answers.push(answer);
        rest = after;
    }
    answers
}

fn check_reply(actions: &[LinkAction]) {
    let mut rest = actions;
    while let Some((action, after)) = rest.split_first() {
        rest = after;
        match action {
            LinkAction::Sent(frame) => {
                let reply = assert_server_json_frame(frame);
                let kind = message_type(&reply);
                assert!(REPLY_TYPES.contains(&kind), "unexpected reply type {kind}");
                assert!(
                    kind != "subscribed" && kind != "message",
                    "{kind} outside a join's greeting"
                );
                if kind == "error" {
                    let code = reply["code"].as_str().expect("error without a code");
                    assert!(
                        ERROR_CODES.contains(&code),
                        "undocumented error code {code}"
                    );
                }
            }
            LinkAction::Joined(room) => {
                assert_eq!(parse_room(room.as_str()).as_ref(), Ok(room));
                rest = check_greeting(room.as_str(), rest);
            }
            LinkAction::AlreadyJoined(room) | LinkAction::Refused(room) => {
                assert_eq!(parse_room(room.as_str()).as_ref(), Ok(room));
            }
            LinkAction::Left(room, _) => {
                assert_eq!(parse_room(room.as_str()).as_ref(), Ok(room));
            }
            LinkAction::Closed(code) => {
                assert_eq!(*code, CloseCode::Normal, "closed other than on request");
            }
        }
    }
}

/// Checks the greeting of a new join of `room` at the front of `actions`;
/// returns the actions after it.
fn check_greeting<'a>(room: &str, actions: &'a [LinkAction]) -> &'a [LinkAction] {
    let Some((LinkAction::Sent(frame), mut rest)) = actions.split_first() else {
        panic!("a join of {room} was not greeted: {actions:?}");
    };
    let subscribed = assert_server_json_frame(frame);
    assert_eq!(message_type(&subscribed), "subscribed");
    assert_eq!(subscribed["room"], room);
    assert_eq!(subscribed["epoch"], RECORDED_EPOCH);
    assert_eq!(subscribed["seq"], LATEST_SEQ);
    let replayed = subscribed["replayed"]
        .as_u64()
        .expect("subscribed without a replayed count");
    assert!(
        replayed <= RETAINED,
        "replayed {replayed} of {RETAINED} retained"
    );
    let gap = subscribed.get("gap");
    match subscribed.get("recovered").map(Value::as_bool) {
        None => assert_eq!(replayed, 0, "a plain subscribe replayed messages"),
        Some(Some(true)) => {
            assert!(gap.is_none(), "recovered with a gap");
            assert!(
                subscribed.get("reason").is_none(),
                "recovered with a reason"
            );
        }
        Some(Some(false)) => {
            let reason = subscribed["reason"]
                .as_str()
                .expect("not recovered, no reason");
            assert!(matches!(reason, "trimmed" | "epoch"), "reason {reason}");
            assert_eq!(
                gap.is_some(),
                reason == "trimmed",
                "gap and reason disagree"
            );
        }
        Some(None) => panic!("'recovered' is not a boolean: {subscribed}"),
    }
    let first_seq = LATEST_SEQ + 1 - replayed;
    if let Some(gap) = gap {
        let (from, to) = (gap["from"].as_u64(), gap["to"].as_u64());
        let (Some(from), Some(to)) = (from, to) else {
            panic!("malformed gap {gap}");
        };
        assert!(from <= to, "empty gap {gap}");
        assert_eq!(
            to + 1,
            first_seq,
            "replay does not start right after the gap"
        );
    }
    for seq in first_seq..=LATEST_SEQ {
        let Some((LinkAction::Sent(frame), after)) = rest.split_first() else {
            panic!("{replayed} replayed messages announced, fewer sent");
        };
        rest = after;
        let message = assert_server_json_frame(frame);
        assert_eq!(message_type(&message), "message");
        assert_eq!(message["room"], room);
        assert_eq!(message["seq"], seq, "replay out of order");
        assert_eq!(message["epoch"], RECORDED_EPOCH);
        assert_eq!(
            message["data"]["price"],
            seq as f64 + 0.25,
            "replayed message {seq} carries another event"
        );
    }
    rest
}
