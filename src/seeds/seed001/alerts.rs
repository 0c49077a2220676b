//! User price alerts over HTTP: `POST /api/alerts` arms one (ticker,
//! `above`/`below`/`breakout`, trigger price), `GET /api/alerts` lists them,
//! `DELETE /api/alerts/{id}` disarms one. Triggers are published to the
//! `alerts` room as seed 001 `alert_trigger` messages.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use crate::alerts::{AlertKind, AlertsError};
use crate::app::App;
use crate::catalog::normalize_ticker;
use crate::http::response::{self, HttpError, HttpResponse};
use crate::telemetry::{Limit, metrics};

/// A validated `POST /api/alerts` body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewAlert {
    /// The ticker, normalised.
    pub ticker: String,
    /// When it fires.
    pub alert_type: AlertKind,
    /// The price it fires at: any finite number (prices can be zero or negative).
    pub trigger_price: f64,
    /// Whose alert it is (seed 001's user id rules).
    pub user_id: Option<String>,
}

/// Parses and validates a `POST /api/alerts` body, without I/O.
pub fn parse_new_alert(body: &[u8]) -> Result<NewAlert, HttpError> {
    let mut alert: NewAlert = response::parse_json(body)?;
    alert.ticker = normalize_ticker(&alert.ticker).map_err(|e| HttpError::field("ticker", e))?;
    if !alert.trigger_price.is_finite() {
        return Err(HttpError::field(
            "trigger_price",
            "'trigger_price' must be a finite number",
        ));
    }
    if let Some(user) = &alert.user_id {
        super::session::validate_user_id(user).map_err(|e| HttpError::field("user_id", e))?;
    }
    Ok(alert)
}

/// `POST /api/alerts`.
pub async fn create(app: &App, req: Request<Incoming>) -> HttpResponse {
    let parsed = match response::read_body(req, &app.config.http).await {
        Ok(body) => parse_new_alert(&body),
        Err(e) => Err(e),
    };
    let alert = match parsed {
        Ok(alert) => alert,
        Err(e) => return e.into_response(),
    };
    match app
        .publisher
        .alerts()
        .add(
            alert.ticker,
            alert.alert_type,
            alert.trigger_price,
            alert.user_id,
        )
        .await
    {
        Ok(alert) => response::json(
            StatusCode::CREATED,
            &serde_json::json!({ "status": "created", "alert": alert }),
        ),
        Err(AlertsError::Alerts(e)) => {
            metrics().limit_hit(Limit::Alerts);
            response::error(StatusCode::TOO_MANY_REQUESTS, &e.to_string())
        }
        Err(AlertsError::Bus(e)) => {
            response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

/// `GET /api/alerts`: every armed alert (in a fleet, every node's).
pub async fn list(app: &App) -> HttpResponse {
    match app.publisher.alerts().list().await {
        Ok(alerts) => response::json(
            StatusCode::OK,
            &serde_json::json!({ "count": alerts.len(), "alerts": alerts }),
        ),
        Err(e) => response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `DELETE /api/alerts/{id}`.
pub async fn delete(app: &App, id: &str) -> HttpResponse {
    let Ok(id) = id.parse::<u64>() else {
        return response::error(
            StatusCode::BAD_REQUEST,
            "alert id must be a positive integer",
        );
    };
    match app.publisher.alerts().remove(id).await {
        Ok(true) => response::json(
            StatusCode::OK,
            &serde_json::json!({ "status": "deleted", "id": id }),
        ),
        Ok(false) => response::error(StatusCode::NOT_FOUND, &format!("no alert with id {id}")),
        Err(e) => response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
