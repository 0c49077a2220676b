//! `POST /api/v1/backtest/events[?topic=backtest]`: an existing seed 002
//! engine publishes its own messages (`backtest_start`,
//! `backtest_progress`, `log_entry`, `backtest_complete`,
//! `backtest_error`, each `{"type","data":{…,"backtest_id"}}`) into a
//! topic, unchanged: a Python producer swaps `manager.broadcast(message,
//! topic)` for this POST of the same dict (one, or an array of up to
//! 1,000). A missing `data.timestamp` is filled in. The run registry keeps
//! the lifecycle honest: `backtest_start` registers the run (ids are unique
//! across both seeds), the terminal event ends it, and anything of a run
//! before its start or after its end is refused (409). Messages before a
//! refused one are published; none after it (`crate::http::backtest::produce`).

use hyper::Request;
use hyper::body::Incoming;
use serde_json::Value;

use crate::app::App;
use crate::catalog::RoomName;
use crate::http::backtest::{Produced, bad_message, produce, progress_of, type_of};
use crate::http::response::{self, HttpError, HttpResponse};
use crate::protocol::{Envelope, Event, Neutral};
use crate::sources::backtest::{Origin, ProducedStep};

/// The seed's message types.
const TYPES: [&str; 5] = [
    "backtest_start",
    "backtest_progress",
    "log_entry",
    "backtest_complete",
    "backtest_error",
];

/// Checks message `index` for `room`; `now` fills a missing `data.timestamp`.
fn check(
    index: usize,
    mut message: Value,
    room: &RoomName,
    now: &str,
) -> Result<Produced, HttpError> {
    let kind = type_of(index, &message, &TYPES)?.to_string();
    let data = message
        .get_mut("data")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| bad_message(index, "data", "expected an object"))?;
    let id = data
        .get("backtest_id")
        .and_then(Value::as_str)
        .filter(|id| RoomName::backtest(id).is_ok())
        .ok_or_else(|| {
            bad_message(
                index,
                "data.backtest_id",
                "expected 1-128 characters of letters, digits, '_', '.', ':' or '-'",
            )
        })?
        .to_string();
    match data.get("timestamp") {
        None => {
            data.insert("timestamp".into(), Value::String(now.to_string()));
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(bad_message(index, "data.timestamp", "expected a string")),
    }
    let step = match kind.as_str() {
        "backtest_start" => ProducedStep::Start,
        "backtest_progress" => ProducedStep::Event {
            progress: Some(progress_of(index, data)?),
        },
        "backtest_complete" | "backtest_error" => ProducedStep::End {
            completed: kind == "backtest_complete",
            data: Value::Object(data.clone()),
        },
        _ => ProducedStep::Event { progress: None },
    };
    let json = serde_json::to_vec(&message).expect("a JSON value serialises");
    let event = Neutral::parse(room.clone(), &json, Envelope::Data, now)
        .map_err(|e| bad_message(index, "data", e.to_string()))?;
    Ok(Produced {
        id,
        step,
        event: Event::Neutral(event),
    })
}

/// `POST /api/v1/backtest/events`.
pub async fn publish(app: &App, req: Request<Incoming>) -> HttpResponse {
    let topic = response::query_param(&req, "topic").unwrap_or_else(|| "backtest".into());
    let room = match RoomName::topic(&topic) {
        Ok(room) => room,
        Err(e) => return HttpError::field("topic", e.to_string()).into_response(),
    };
    produce(app, req, Origin::Seed002, false, |index, message, now| {
        check(index, message, &room, now)
    })
    .await
}
