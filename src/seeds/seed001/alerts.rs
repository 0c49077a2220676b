//! User price alerts over HTTP: `POST /api/alerts` arms one (ticker,
//! `above`/`below`/`breakout`, trigger price; 429 past the total or the
//! per-user cap), `GET /api/alerts[?limit=N&offset=M]` lists them a page at a
//! time, `DELETE /api/alerts/{id}` disarms one. Triggers are published to the
//! `alerts` room as seed 001 `alert_trigger` messages.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use crate::alerts::{AlertKind, AlertsError};
use crate::app::App;
use crate::catalog::normalize_ticker;
use crate::http::response::{self, HttpError, HttpResponse};
use crate::telemetry::{Limit, metrics};

/// Alerts on a page of `GET /api/alerts` without `?limit=`: the whole book
/// of a node at the default per-user cap many times over.
pub const DEFAULT_PAGE: usize = 1_000;

/// The largest `?limit=` accepted.
pub const MAX_PAGE: usize = 10_000;

/// The page `GET /api/alerts` asks for: `?limit=` (1 to [`MAX_PAGE`],
/// default [`DEFAULT_PAGE`]) and `?offset=` (default 0); a bad value is a
/// 422 naming the parameter.
pub fn parse_page<B>(req: &Request<B>) -> Result<(usize, usize), HttpError> {
    let number =
        |name: &str, default: usize, min: usize, max: usize| match response::query_param(req, name)
        {
            None => Ok(default),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    HttpError::field(
                        name,
                        format!("'{name}' must be an integer from {min} to {max}"),
                    )
                }),
        };
    let limit = number("limit", DEFAULT_PAGE, 1, MAX_PAGE)?;
    let offset = number("offset", 0, 0, usize::MAX)?;
    Ok((limit, offset))
}

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

/// `GET /api/alerts[?limit=N&offset=M]`: a page of the armed alerts (in a
/// fleet, every node's) by id: `count` on this page, `total` armed,
/// `next_offset` for the next page (`null` on the last).
pub async fn list(app: &App, req: Request<Incoming>) -> HttpResponse {
    let (limit, offset) = match parse_page(&req) {
        Ok(page) => page,
        Err(e) => return e.into_response(),
    };
    match app.publisher.alerts().page(offset, limit).await {
        Ok(page) => {
            let end = offset.saturating_add(page.alerts.len());
            let next = (end < page.total).then_some(end);
            response::json(
                StatusCode::OK,
                &serde_json::json!({
                    "count": page.alerts.len(),
                    "total": page.total,
                    "offset": offset,
                    "limit": limit,
                    "next_offset": next,
                    "alerts": page.alerts,
                }),
            )
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn page(query: &str) -> Result<(usize, usize), HttpError> {
        let req = Request::get(format!("/api/alerts{query}"))
            .body(())
            .unwrap();
        parse_page(&req)
    }

    #[test]
    fn pages_default_to_the_first_thousand_and_bad_values_name_the_parameter() {
        assert_eq!(page("").unwrap(), (DEFAULT_PAGE, 0));
        assert_eq!(page("?limit=5&offset=10").unwrap(), (5, 10));
        for (query, name) in [
            ("?limit=0", "limit"),
            ("?limit=10001", "limit"),
            ("?limit=ten", "limit"),
            ("?offset=-1", "offset"),
            ("?limit=5&offset=x", "offset"),
        ] {
            match page(query) {
                Err(HttpError::Field { field, .. }) => assert_eq!(field, name, "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }
}
