//! Fuzzes the seed 000 dialect (`/ws/modeldata-stream`): a `Seed000Session`
//! with the default feed options is opened on a recording link and fed the
//! client messages of the input (separated by 0xFF; see
//! `roomcast_fuzz::split_messages`). Invariants:
//!
//! * opening joins the feed's room (`modeldata`) and sends nothing;
//! * every client message gets exactly one reply, a valid server text frame
//!   holding JSON: an `echo` whose `message` is the client's text exactly
//!   (for binary, its bytes read as UTF-8 with replacement characters), or,
//!   for binary only, an `error`;
//! * the session never joins or leaves a room, nor closes, after opening.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use roomcast::catalog::RoomName;
use roomcast::dialect::{DialectSession, MessageKind};
use roomcast::seeds::seed000::Seed000Session;
use roomcast::sources::modeldata::{FeedOptions, ModelData, ModelDataConfig};
use roomcast_fuzz::{
    LinkAction, RecordingLink, assert_server_json_frame, deliver_message, message_type,
    split_messages,
};

/// The node's modeldata service, shared by every run (no task is spawned:
/// the dialect only leases feeds from it).
fn modeldata() -> Arc<ModelData> {
    static MODELDATA: OnceLock<Arc<ModelData>> = OnceLock::new();
    Arc::clone(MODELDATA.get_or_init(|| {
        ModelData::new(
            ModelDataConfig {
                interval: Duration::from_secs(20),
                max_feeds: 16,
                max_points: 5000,
                lead_ttl: Duration::from_secs(60),
            },
            false,
        )
    }))
}

fuzz_target!(|data: &[u8]| {
    let modeldata = modeldata();
    let mut session = Seed000Session::new(Arc::clone(&modeldata), FeedOptions::default());
    let mut link = RecordingLink::new();
    session.on_open(&mut link);
    assert_eq!(
        link.actions,
        [LinkAction::Joined(RoomName::modeldata(None))],
        "opening did more than join the feed's room"
    );

    for (kind, message) in split_messages(data) {
        link.clear_actions();
        deliver_message(&mut session, &mut link, kind, message);
        let [LinkAction::Sent(frame)] = &link.actions[..] else {
            panic!(
                "a client message did not get exactly one reply: {:?}",
                link.actions
            );
        };
        let reply = assert_server_json_frame(frame);
        match (kind, message_type(&reply)) {
            (MessageKind::Text, "echo") => {
                let text = std::str::from_utf8(message).expect("text messages are UTF-8");
                assert_eq!(reply["message"], text, "the echo is not the client's text");
            }
            (MessageKind::Binary, "echo") => {
                assert_eq!(
                    reply["message"],
                    *String::from_utf8_lossy(message),
                    "the echo is not the client's bytes"
                );
            }
            (MessageKind::Binary, "error") => {}
            (kind, other) => panic!("a {kind:?} message got a {other} reply"),
        }
    }
    drop(session);
    assert_eq!(
        modeldata.connections(),
        0,
        "a closed session kept its feed lease"
    );
});
