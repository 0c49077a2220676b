//! The HTTP side of backtest runs both seeds share: a run id from a path,
//! the answers to a refused start, cancel (`DELETE`), and a run's status
//! (`GET`). The seeds' own start endpoints (`crate::seeds::seed002`,
//! `crate::seeds::seed003`) read their bodies and call these.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use crate::app::App;
use crate::catalog::{CatalogError, RoomName};
use crate::http::response::{self, HttpError, HttpResponse};
use crate::protocol::{Event, time};
use crate::sources::backtest::{
    ControlError, Origin, ProducedStep, ProducerError, RequestError, StartError,
};

/// A run id from a path segment: percent-decoded, then 1–128 of
/// `[A-Za-z0-9_.:-]` (so never a `/`).
pub fn run_id(segment: &str) -> Result<String, CatalogError> {
    let decoded: String = form_urlencoded::parse(format!("id={segment}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    RoomName::backtest(&decoded).map(|_| decoded)
}

/// 400 naming `backtest_id`, for an id [`run_id`] refused.
pub fn bad_run_id(e: CatalogError) -> HttpResponse {
    response::json(
        StatusCode::BAD_REQUEST,
        &json!({ "error": e.to_string(), "field": "backtest_id" }),
    )
}

/// 422 naming the request's bad field.
pub fn refused(e: RequestError) -> HttpResponse {
    HttpError::field(e.field, e.to_string()).into_response()
}

/// 409 for a taken id, 503 for a full queue or a draining node.
pub fn start_refused(e: StartError) -> HttpResponse {
    match e {
        StartError::Duplicate => response::json(
            StatusCode::CONFLICT,
            &json!({ "error": e.to_string(), "field": "backtest_id" }),
        ),
        StartError::QueueFull | StartError::ShuttingDown | StartError::Unavailable(_) => {
            response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

/// `DELETE …/{id}`: 202 while the run is pending or running (it ends with
/// "Backtest cancelled" for every watcher), 409 once it has ended, 404 for
/// an unknown id.
pub async fn cancel(app: &Arc<App>, segment: &str) -> HttpResponse {
    let id = match run_id(segment) {
        Ok(id) => id,
        Err(e) => return bad_run_id(e),
    };
    match app.backtests.cancel(&id).await {
        Ok(()) => response::json(
            StatusCode::ACCEPTED,
            &json!({ "backtest_id": id, "status": "cancelling" }),
        ),
        Err(e @ ControlError::NotFound) => response::error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e @ (ControlError::Finished | ControlError::External)) => {
            response::error(StatusCode::CONFLICT, &e.to_string())
        }
        Err(e @ ControlError::Unavailable(_)) => {
            response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

/// `GET …/{id}`: `{backtest_id, status, progress, result?, error?}`, so a
/// UI that missed the live events can recover the outcome.
pub async fn status(app: &Arc<App>, segment: &str) -> HttpResponse {
    let id = match run_id(segment) {
        Ok(id) => id,
        Err(e) => return bad_run_id(e),
    };
    let run = match app.backtests.lookup(&id).await {
        Ok(Some(run)) => run,
        Ok(None) => return response::error(StatusCode::NOT_FOUND, "backtest not found"),
        Err(e) => return response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let mut body = json!({
        "backtest_id": id,
        "status": run.status,
        "progress": run.progress,
        "origin": run.origin,
    });
    if let Some(result) = run.result {
        body["result"] = result;
    }
    if let Some(error) = run.error {
        body["error"] = error;
    }
    if let Some(node) = run.node {
        body["node"] = json!(node);
    }
    response::json(StatusCode::OK, &body)
}

/// Most messages one producer request may carry.
pub const MAX_MESSAGES: usize = 1_000;

/// A producer's body: one message (a JSON object) or an array of up to
/// [`MAX_MESSAGES`]; 400 for anything else.
fn messages(body: &[u8]) -> Result<Vec<Value>, HttpError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| HttpError::BadJson(e.to_string()))?;
    let messages = match value {
        serde_json::Value::Array(items) => items,
        object @ serde_json::Value::Object(_) => vec![object],
        _ => {
            return Err(HttpError::BadJson(
                "expected a message object or an array of them".into(),
            ));
        }
    };
    if messages.is_empty() || messages.len() > MAX_MESSAGES {
        return Err(HttpError::field(
            "(body)",
            format!(
                "expected 1 to {MAX_MESSAGES} messages, got {}",
                messages.len()
            ),
        ));
    }
    Ok(messages)
}

/// The response to a producer's refused message `index` (which was not
/// published; those before it were): 409 for the run's lifecycle, 422 for
/// a backwards progress, 503 when full.
fn produce_refused(index: usize, published: usize, e: ProducerError) -> HttpResponse {
    let status = match e {
        ProducerError::Backwards { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ProducerError::Full | ProducerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::CONFLICT,
    };
    response::json(
        status,
        &json!({ "error": e.to_string(), "field": format!("[{index}]"), "published": published }),
    )
}

/// A producer's message `index` is malformed: 422 naming `[index].field`.
pub fn bad_message(index: usize, field: &str, message: impl Into<String>) -> HttpError {
    HttpError::field(&format!("[{index}].{field}"), message)
}

/// One producer message, checked: its run, what it does to the run's
/// lifecycle, and the event to publish.
pub struct Produced {
    /// The run's id.
    pub id: String,
    /// Its lifecycle step.
    pub step: ProducedStep,
    /// The event, in its room.
    pub event: Event,
}

/// Message `index`'s `type`, one of `types`; else 422 naming it.
pub fn type_of<'a>(index: usize, message: &'a Value, types: &[&str]) -> Result<&'a str, HttpError> {
    message
        .get("type")
        .and_then(Value::as_str)
        .filter(|k| types.contains(k))
        .ok_or_else(|| {
            bad_message(
                index,
                "type",
                format!("expected one of {}", types.join(", ")),
            )
        })
}

/// A producer's `data.progress`: a number in [0, 100], else 422 naming it.
pub fn progress_of(index: usize, data: &serde_json::Map<String, Value>) -> Result<f64, HttpError> {
    data.get("progress")
        .and_then(Value::as_f64)
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| bad_message(index, "data.progress", "expected a number in [0, 100]"))
}

/// A producer endpoint's whole request: reads the body (one message or an
/// array), checks every message with `check` (a malformed one: 422 naming
/// it, nothing published), applies each to its run's lifecycle in order
/// (`registers`: a first event registers its run), and publishes the
/// accepted ones in one batch. A refused step publishes the messages before
/// it and answers with the refusal.
pub async fn produce(
    app: &App,
    req: Request<Incoming>,
    origin: Origin,
    registers: bool,
    check: impl Fn(usize, Value, &str) -> Result<Produced, HttpError>,
) -> HttpResponse {
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
        match check(index, message, &now) {
            Ok(c) => checked.push(c),
            Err(e) => return e.into_response(),
        }
    }
    let mut events = Vec::with_capacity(checked.len());
    for (index, c) in checked.into_iter().enumerate() {
        if let Err(e) = app
            .backtests
            .produce(&c.id, origin, c.step, registers)
            .await
        {
            let published = publish_all(app, &events).await;
            if published.status() != StatusCode::OK {
                return published;
            }
            return produce_refused(index, events.len(), e);
        }
        events.push(c.event);
    }
    publish_all(app, &events).await
}

/// `200 {"status":"success","room","seq","recipients","published"}` after
/// publishing `events` (one room's) in one batch; 503 when the bus failed.
async fn publish_all(app: &App, events: &[Event]) -> HttpResponse {
    let Some(first) = events.first() else {
        return response::json(
            StatusCode::OK,
            &json!({ "status": "success", "published": 0 }),
        );
    };
    let room = first.room();
    match app.publisher.publish_batch(events).await {
        Ok(report) => response::json(
            StatusCode::OK,
            &json!({
                "status": "success",
                "room": room.as_str(),
                "seq": report.seq,
                "recipients": report.recipients,
                "published": events.len(),
            }),
        ),
        Err(e) => response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_decoded_then_checked() {
        assert_eq!(run_id("backtest_2024").unwrap(), "backtest_2024");
        assert_eq!(run_id("a%3Ab").unwrap(), "a:b");
        assert!(run_id("a%2Fb").is_err());
        assert!(run_id(&"x".repeat(129)).is_err());
        assert!(run_id("a%20b").is_err());
    }
}
