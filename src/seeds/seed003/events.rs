//! `POST /api/ws/stream/backtest/{id}/events`: an existing seed 003 engine
//! publishes its own messages (`progress`, `trade`, `equity`, `metrics`,
//! `complete`, `error`, each `{"type","timestamp"?,"data":{…}}`) into the
//! run's stream, unchanged: viewers get them exactly as they get an
//! embedded run's, with the same replay. One message or an array of up to
//! 1,000. The first event registers the run (ids are unique across both
//! seeds); progress must never go back nor pass 100; the terminal event
//! ends the run and nothing may follow it (409). Messages before a refused
//! one are published; none after it.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::Value;

use crate::app::App;
use crate::catalog::RoomName;
use crate::http::backtest::{
    bad_message, bad_run_id, messages, produce_refused, publish_all, run_id,
};
use crate::http::response::{self, HttpError, HttpResponse};
use crate::protocol::{Envelope, Event, Neutral, time};
use crate::sources::backtest::{Origin, ProducedStep};

/// The seed's message types.
const TYPES: [&str; 6] = [
    "progress", "trade", "equity", "metrics", "complete", "error",
];

fn check(
    index: usize,
    message: Value,
    room: &RoomName,
    now: &str,
) -> Result<(ProducedStep, Event), HttpError> {
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .filter(|k| TYPES.contains(k))
        .ok_or_else(|| {
            bad_message(
                index,
                "type",
                format!("expected one of {}", TYPES.join(", ")),
            )
        })?;
    let data = message
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| bad_message(index, "data", "expected an object"))?;
    let step = match kind {
        "progress" => {
            let progress = data
                .get("progress")
                .and_then(Value::as_f64)
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| {
                    bad_message(index, "data.progress", "expected a number in [0, 100]")
                })?;
            ProducedStep::Event {
                progress: Some(progress),
            }
        }
        "complete" | "error" => ProducedStep::End {
            completed: kind == "complete",
            data: Value::Object(data.clone()),
        },
        _ => ProducedStep::Event { progress: None },
    };
    let json = serde_json::to_vec(&message).expect("a JSON value serialises");
    let event = Neutral::parse(room.clone(), &json, Envelope::Stamped, now).map_err(|e| {
        let field = if matches!(e, crate::protocol::NeutralError::BadTimestamp) {
            "timestamp"
        } else {
            "data"
        };
        bad_message(index, field, e.to_string())
    })?;
    Ok((step, Event::Neutral(event)))
}

/// `POST /api/ws/stream/backtest/{id}/events`.
pub async fn publish(app: &App, req: Request<Incoming>, segment: &str) -> HttpResponse {
    let id = match run_id(segment) {
        Ok(id) => id,
        Err(e) => return bad_run_id(e),
    };
    let room = RoomName::backtest(&id).expect("run_id checked the id");
    let body = match response::read_body(req, &app.config.http).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let messages = match messages(&body) {
        Ok(messages) => messages,
        Err(e) => return e.into_response(),
    };
    let now = time::now();
    let mut checked = Vec::with_capacity(messages.len());
    for (index, message) in messages.into_iter().enumerate() {
        match check(index, message, &room, &now) {
            Ok(c) => checked.push(c),
            Err(e) => return e.into_response(),
        }
    }
    let mut events = Vec::with_capacity(checked.len());
    for (index, (step, event)) in checked.into_iter().enumerate() {
        if let Err(e) = app
            .backtests
            .produce(&id, Origin::Seed003, step, true)
            .await
        {
            let published = publish_all(app, &events).await;
            if published.status() != StatusCode::OK {
                return published;
            }
            return produce_refused(index, events.len(), e);
        }
        events.push(event);
    }
    publish_all(app, &events).await
}
