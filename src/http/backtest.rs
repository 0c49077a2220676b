//! The HTTP side of backtest runs both seeds share: a run id from a path,
//! the answers to a refused start, cancel (`DELETE`), and a run's status
//! (`GET`). The seeds' own start endpoints (`crate::seeds::seed002`,
//! `crate::seeds::seed003`) read their bodies and call these.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;

use crate::app::App;
use crate::catalog::{CatalogError, RoomName};
use crate::http::response::{self, HttpError, HttpResponse};
use crate::sources::backtest::{ControlError, RequestError, StartError};

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
        StartError::QueueFull | StartError::ShuttingDown => {
            response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

/// `DELETE …/{id}`: 202 while the run is pending or running (it ends with
/// "Backtest cancelled" for every watcher), 409 once it has ended, 404 for
/// an unknown id.
pub fn cancel(app: &Arc<App>, segment: &str) -> HttpResponse {
    let id = match run_id(segment) {
        Ok(id) => id,
        Err(e) => return bad_run_id(e),
    };
    match app.backtests.cancel(&id) {
        Ok(()) => response::json(
            StatusCode::ACCEPTED,
            &json!({ "backtest_id": id, "status": "cancelling" }),
        ),
        Err(e @ ControlError::NotFound) => response::error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e @ ControlError::Finished) => response::error(StatusCode::CONFLICT, &e.to_string()),
    }
}

/// `GET …/{id}`: `{backtest_id, status, progress, result?, error?}`, so a
/// UI that missed the live events can recover the outcome.
pub fn status(app: &Arc<App>, segment: &str) -> HttpResponse {
    let id = match run_id(segment) {
        Ok(id) => id,
        Err(e) => return bad_run_id(e),
    };
    let Some(run) = app.backtests.get(&id) else {
        return response::error(StatusCode::NOT_FOUND, "backtest not found");
    };
    let state = run.state();
    let mut body = json!({
        "backtest_id": id,
        "status": state.status.label(),
        "progress": state.progress,
        "origin": run.origin.label(),
    });
    if let Some(result) = state.result {
        body["result"] = result;
    }
    if let Some(error) = state.error {
        body["error"] = error;
    }
    response::json(StatusCode::OK, &body)
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
