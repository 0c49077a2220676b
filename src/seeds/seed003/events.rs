//! `POST /api/ws/stream/backtest/{id}/events`: an existing seed 003 engine
//! publishes its own messages (`progress`, `trade`, `equity`, `metrics`,
//! `complete`, `error`, each `{"type","timestamp"?,"data":{…}}`) into the
//! run's stream, unchanged: viewers get them exactly as they get an
//! embedded run's, with the same replay. One message or an array of up to
//! 1,000. The first event registers the run (ids are unique across both
//! seeds); progress must never go back nor pass 100; the terminal event
//! ends the run and nothing may follow it (409). Messages before a refused
//! one are published; none after it (`crate::http::backtest::produce`).

use hyper::Request;
use hyper::body::Incoming;
use serde_json::Value;

use crate::app::App;
use crate::catalog::RoomName;
use crate::http::backtest::{
    Produced, bad_message, bad_run_id, produce, progress_of, run_id, type_of,
};
use crate::http::response::{HttpError, HttpResponse};
use crate::protocol::{Envelope, Event, Neutral, NeutralError};
use crate::sources::backtest::{Origin, ProducedStep};

/// The seed's message types.
const TYPES: [&str; 6] = [
    "progress", "trade", "equity", "metrics", "complete", "error",
];

/// Checks message `index` of run `id`; `now` stamps one without a timestamp.
fn check(
    index: usize,
    message: Value,
    id: &str,
    room: &RoomName,
    now: &str,
) -> Result<Produced, HttpError> {
    let kind = type_of(index, &message, &TYPES)?;
    let data = message
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| bad_message(index, "data", "expected an object"))?;
    let step = match kind {
        "progress" => ProducedStep::Event {
            progress: Some(progress_of(index, data)?),
        },
        "complete" | "error" => ProducedStep::End {
            completed: kind == "complete",
            data: Value::Object(data.clone()),
        },
        _ => ProducedStep::Event { progress: None },
    };
    let json = serde_json::to_vec(&message).expect("a JSON value serialises");
    let event = Neutral::parse(room.clone(), &json, Envelope::Stamped, now).map_err(|e| {
        let field = match e {
            NeutralError::BadTimestamp => "timestamp",
            _ => "data",
        };
        bad_message(index, field, e.to_string())
    })?;
    Ok(Produced {
        id: id.to_string(),
        step,
        event: Event::Neutral(event),
    })
}

/// `POST /api/ws/stream/backtest/{id}/events`.
pub async fn publish(app: &App, req: Request<Incoming>, segment: &str) -> HttpResponse {
    let id = match run_id(segment) {
        Ok(id) => id,
        Err(e) => return bad_run_id(e),
    };
    let room = RoomName::backtest(&id).expect("run_id checked the id");
    produce(app, req, Origin::Seed003, true, |index, message, now| {
        check(index, message, &id, &room, now)
    })
    .await
}
