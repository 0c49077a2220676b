//! User price alerts over HTTP: `POST /api/alerts` arms one (ticker,
//! `above`/`below`/`breakout`, trigger price), `GET /api/alerts` lists them,
//! `DELETE /api/alerts/{id}` disarms one. Triggers are published to the
//! `alerts` room as seed 001 `alert_trigger` messages.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::response::{self, HttpResponse};
use crate::app::App;
use crate::protocol::normalize_ticker;
use crate::sources::alerts::AlertKind;
use crate::telemetry::{Limit, metrics};

#[derive(Debug, Deserialize)]
struct NewAlert {
    ticker: String,
    alert_type: AlertKind,
    trigger_price: f64,
    user_id: Option<String>,
}

/// `POST /api/alerts`.
pub async fn create(app: &App, req: Request<Incoming>) -> HttpResponse {
    let body: NewAlert = match response::read_json(req, &app.config.http).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let ticker = match normalize_ticker(&body.ticker) {
        Ok(t) => t,
        Err(e) => return response::HttpError::field("ticker", e).into_response(),
    };
    if !(body.trigger_price.is_finite() && body.trigger_price > 0.0) {
        return response::HttpError::field(
            "trigger_price",
            "'trigger_price' must be a positive number",
        )
        .into_response();
    }
    if let Some(user) = &body.user_id
        && let Err(e) = crate::dialect::seed001::validate_user_id(user)
    {
        return response::HttpError::field("user_id", e).into_response();
    }
    match app
        .alerts
        .add(ticker, body.alert_type, body.trigger_price, body.user_id)
    {
        Ok(alert) => response::json(
            StatusCode::CREATED,
            &serde_json::json!({ "status": "created", "alert": alert }),
        ),
        Err(e) => {
            metrics().limit_hit(Limit::Alerts);
            response::error(StatusCode::TOO_MANY_REQUESTS, &e.to_string())
        }
    }
}

/// `GET /api/alerts`.
pub fn list(app: &App) -> HttpResponse {
    let alerts = app.alerts.list();
    response::json(
        StatusCode::OK,
        &serde_json::json!({ "count": alerts.len(), "alerts": alerts }),
    )
}

/// `DELETE /api/alerts/{id}`.
pub fn delete(app: &App, id: &str) -> HttpResponse {
    let Ok(id) = id.parse::<u64>() else {
        return response::error(
            StatusCode::BAD_REQUEST,
            "alert id must be a positive integer",
        );
    };
    if app.alerts.remove(id) {
        response::json(
            StatusCode::OK,
            &serde_json::json!({ "status": "deleted", "id": id }),
        )
    } else {
        response::error(StatusCode::NOT_FOUND, &format!("no alert with id {id}"))
    }
}
