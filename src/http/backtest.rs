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
use crate::sources::backtest::external::{self, ExternalError, Target};
use crate::sources::backtest::{ControlError, ProducerError, RequestError, StartError};

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

/// A producer endpoint's whole request: reads the body (one message or an
/// array of up to 1,000) and publishes it to `target` through the run
/// registry (`sources::backtest::external`). `200
/// {"status":"success","room","seq","recipients","published"}`; 400 for a
/// body that is not JSON; 422 naming `[i].field` for a malformed message
/// (nothing published); 409 (lifecycle) or 422 (progress going back) naming
/// `[i]` for a refused one, with how many before it were `published`; 503
/// when the registry is full or the bus failed.
pub async fn produce(app: &App, req: Request<Incoming>, target: Target) -> HttpResponse {
    let body = match response::read_body(req, &app.config.http).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => return HttpError::BadJson(e.to_string()).into_response(),
    };
    let messages = match external::messages(value) {
        Ok(messages) => messages,
        Err(e) => return HttpError::field(&e.field, e.message).into_response(),
    };
    match app.backtests.publish_external(&target, messages).await {
        Ok(published) => response::json(
            StatusCode::OK,
            &json!({
                "status": "success",
                "room": published.room.as_ref().map(|r| r.as_str()),
                "seq": published.seq,
                "recipients": published.recipients,
                "published": published.count,
            }),
        ),
        Err(ExternalError::Message(e)) => HttpError::field(&e.field, e.message).into_response(),
        Err(ExternalError::Refused {
            index,
            published,
            error,
        }) => {
            let status = match error {
                ProducerError::Backwards { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                ProducerError::Full | ProducerError::Unavailable(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::CONFLICT,
            };
            response::json(
                status,
                &json!({ "error": error.to_string(), "field": format!("[{index}]"), "published": published }),
            )
        }
        Err(ExternalError::Bus(e)) => {
            response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
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
