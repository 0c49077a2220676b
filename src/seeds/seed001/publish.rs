//! Seed 001's publish endpoints, `POST /api/ws/broadcast/{price,pattern,alert,market_status}`:
//! validate the seed's body, build the typed event and publish it through the
//! app's pipeline. Invalid bodies get 400/413/422 with a JSON error naming the
//! field; nothing is published for them. What a publisher sends is relayed as
//! sent: strings (timestamps included) byte for byte once validated, numbers
//! as the same value; only the ticker, a routing key, is normalised, and only
//! fields the server fills in (a missing `timestamp`, `message` or ratio) use
//! roomcast's own formats.

use chrono::{DateTime, Datelike, Utc};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use crate::app::App;
use crate::catalog::normalize_ticker;
use crate::http::limits::HttpLimits;
use crate::http::response::{self, HttpError, HttpResponse};
use crate::protocol::{AlertTrigger, Event, MarketStatus, PatternAlert, PriceUpdate, time};

/// `POST /api/ws/broadcast/price`: the seed names the open `open_price`; the
/// published `price_update` carries it as `open`.
#[derive(Debug, Deserialize)]
struct PriceBody {
    ticker: String,
    price: f64,
    #[serde(default)]
    change: f64,
    #[serde(default)]
    change_percent: f64,
    #[serde(default)]
    volume: f64,
    high: Option<f64>,
    low: Option<f64>,
    #[serde(alias = "open")]
    open_price: Option<f64>,
    timestamp: Option<String>,
}

/// `POST /api/ws/broadcast/pattern`.
#[derive(Debug, Deserialize)]
struct PatternBody {
    ticker: String,
    pattern_type: String,
    score: f64,
    entry_price: f64,
    stop_price: f64,
    target_price: f64,
    risk_reward_ratio: Option<f64>,
    message: Option<String>,
    timestamp: Option<String>,
}

/// `POST /api/ws/broadcast/alert`.
#[derive(Debug, Deserialize)]
struct AlertBody {
    ticker: String,
    alert_type: String,
    trigger_price: f64,
    current_price: f64,
    message: Option<String>,
    timestamp: Option<String>,
}

/// `POST /api/ws/broadcast/market_status`.
#[derive(Debug, Deserialize)]
struct MarketStatusBody {
    status: String,
    next_open: Option<String>,
    next_close: Option<String>,
    timestamp: Option<String>,
}

type Invalid = HttpError;

fn ticker(raw: &str) -> Result<String, Invalid> {
    normalize_ticker(raw).map_err(|e| HttpError::field("ticker", e))
}

fn non_negative(field: &str, value: f64) -> Result<f64, Invalid> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(HttpError::field(
            field,
            format!("'{field}' must be zero or positive"),
        ))
    }
}

fn finite(field: &str, value: f64) -> Result<f64, Invalid> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(HttpError::field(
            field,
            format!("'{field}' must be a finite number"),
        ))
    }
}

/// A short label (`pattern_type`, `status`): not blank, at most `max` bytes;
/// relayed as sent.
fn label(field: &str, value: String, max: usize) -> Result<String, Invalid> {
    if value.trim().is_empty() || value.len() > max {
        return Err(HttpError::field(
            field,
            format!("'{field}' must be 1 to {max} characters, not blank"),
        ));
    }
    Ok(value)
}

fn text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, Invalid> {
    match value {
        Some(v) if v.len() > max => Err(HttpError::field(
            field,
            format!("'{field}' must be at most {max} characters"),
        )),
        other => Ok(other),
    }
}

/// An RFC 3339 timestamp, relayed as sent once it is valid. The instant must
/// fall in the years 0000–9999 in UTC: RFC 3339 has four-digit years, so an
/// offset may not carry it beyond them.
fn instant(field: &str, value: Option<String>) -> Result<Option<String>, Invalid> {
    value
        .map(|raw| {
            DateTime::parse_from_rfc3339(&raw)
                .ok()
                .map(|t| t.with_timezone(&Utc))
                .filter(|t| (0..=9999).contains(&t.year()))
                .map(|_| raw.clone())
                .ok_or_else(|| {
                    HttpError::field(
                        field,
                        format!(
                            "'{field}' must be an RFC 3339 timestamp in the years 0000-9999 UTC, e.g. 2025-11-18T10:30:00Z"
                        ),
                    )
                })
        })
        .transpose()
}

fn timestamp(value: Option<String>) -> Result<String, Invalid> {
    Ok(instant("timestamp", value)?.unwrap_or_else(time::now))
}

/// Prices may be any finite number: markets have printed zero and negative
/// prices (WTI crude settled at -37.63 on 2020-04-20).
fn price_event(b: PriceBody) -> Result<Event, Invalid> {
    let price = finite("price", b.price)?;
    let high = finite("high", b.high.unwrap_or(price))?;
    let low = finite("low", b.low.unwrap_or(price))?;
    if low > high {
        return Err(HttpError::field("low", "'low' must not exceed 'high'"));
    }
    Ok(Event::from(PriceUpdate {
        ticker: ticker(&b.ticker)?,
        price,
        change: finite("change", b.change)?,
        change_percent: finite("change_percent", b.change_percent)?,
        volume: non_negative("volume", b.volume)?,
        high,
        low,
        open: finite("open_price", b.open_price.unwrap_or(price))?,
        timestamp: timestamp(b.timestamp)?,
    }))
}

fn pattern_event(b: PatternBody) -> Result<Event, Invalid> {
    let entry = finite("entry_price", b.entry_price)?;
    let stop = finite("stop_price", b.stop_price)?;
    let target = finite("target_price", b.target_price)?;
    let rr = match b.risk_reward_ratio {
        Some(rr) => finite("risk_reward_ratio", rr)?,
        None if entry != stop => {
            let rr = ((target - entry) / (entry - stop) * 100.0).round() / 100.0;
            // Extreme prices overflow the ratio; JSON has no infinity.
            finite("risk_reward_ratio", rr).map_err(|_| {
                HttpError::field(
                    "risk_reward_ratio",
                    "'risk_reward_ratio' computed from these prices is not a finite number; send it",
                )
            })?
        }
        None => 0.0,
    };
    let ticker = ticker(&b.ticker)?;
    let pattern_type = label("pattern_type", b.pattern_type, 64)?;
    let message = text("message", b.message, 1024)?
        .unwrap_or_else(|| format!("{pattern_type} pattern detected on {ticker}"));
    Ok(Event::from(PatternAlert {
        score: finite("score", b.score)?,
        entry_price: entry,
        stop_price: stop,
        target_price: target,
        risk_reward_ratio: rr,
        message,
        timestamp: timestamp(b.timestamp)?,
        ticker,
        pattern_type,
    }))
}

fn alert_event(b: AlertBody) -> Result<Event, Invalid> {
    let ticker = ticker(&b.ticker)?;
    let alert_type = label("alert_type", b.alert_type, 64)?;
    let trigger = finite("trigger_price", b.trigger_price)?;
    let current = finite("current_price", b.current_price)?;
    let message = text("message", b.message, 1024)?.unwrap_or_else(|| {
        format!("{ticker} {alert_type} at ${current:.2} (target: ${trigger:.2})")
    });
    Ok(Event::from(AlertTrigger {
        ticker,
        alert_type,
        trigger_price: trigger,
        current_price: current,
        message,
        timestamp: timestamp(b.timestamp)?,
    }))
}

fn market_status_event(b: MarketStatusBody) -> Result<Event, Invalid> {
    Ok(Event::from(MarketStatus {
        status: label("status", b.status, 32)?,
        next_open: instant("next_open", b.next_open)?,
        next_close: instant("next_close", b.next_close)?,
        timestamp: timestamp(b.timestamp)?,
    }))
}

/// Which seed 001 broadcast endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    Price,
    Pattern,
    Alert,
    MarketStatus,
}

impl Broadcast {
    /// The endpoint for a path suffix after `/api/ws/broadcast/`.
    pub fn from_path(suffix: &str) -> Option<Self> {
        match suffix {
            "price" => Some(Broadcast::Price),
            "pattern" => Some(Broadcast::Pattern),
            "alert" => Some(Broadcast::Alert),
            "market_status" => Some(Broadcast::MarketStatus),
            _ => None,
        }
    }
}

/// Parses and validates a broadcast body into the event it publishes:
/// everything [`broadcast`] does before publishing, without I/O.
pub fn parse_event(kind: Broadcast, body: &[u8]) -> Result<Event, HttpError> {
    match kind {
        Broadcast::Price => price_event(response::parse_json(body)?),
        Broadcast::Pattern => pattern_event(response::parse_json(body)?),
        Broadcast::Alert => alert_event(response::parse_json(body)?),
        Broadcast::MarketStatus => market_status_event(response::parse_json(body)?),
    }
}

async fn event_from(
    kind: Broadcast,
    req: Request<Incoming>,
    limits: &HttpLimits,
) -> Result<Event, Invalid> {
    parse_event(kind, &response::read_body(req, limits).await?)
}

/// Handles one broadcast request.
pub async fn broadcast(app: &App, kind: Broadcast, req: Request<Incoming>) -> HttpResponse {
    let event = match event_from(kind, req, &app.config.http).await {
        Ok(event) => event,
        Err(e) => return e.into_response(),
    };
    let room = event.room();
    match app.publisher.publish(event).await {
        Ok(outcome) => {
            let report = outcome.report;
            let mut body = serde_json::json!({
                "status": "success",
                "room": room.as_str(),
                "seq": report.seq,
                "recipients": report.recipients,
            });
            if let Some(alerts) = outcome.alerts {
                body["alerts"] = serde_json::json!(alerts);
            }
            response::json(StatusCode::OK, &body)
        }
        Err(e) => response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_field(kind: Broadcast, body: &str) -> String {
        match parse_event(kind, body.as_bytes()) {
            Err(HttpError::Field { field, .. }) => field,
            other => panic!("{body}: expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn a_risk_reward_ratio_that_overflows_is_refused() {
        let body = r#"{"ticker":"AAPL","pattern_type":"VCP","score":1,"entry_price":1,"stop_price":0.5,"target_price":1e308}"#;
        assert_eq!(refused_field(Broadcast::Pattern, body), "risk_reward_ratio");
        // Sent explicitly, the same prices are fine.
        let sent = body.replace('}', r#","risk_reward_ratio":3}"#);
        assert!(parse_event(Broadcast::Pattern, sent.as_bytes()).is_ok());
    }

    fn published(kind: Broadcast, body: &str) -> serde_json::Value {
        let event = parse_event(kind, body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e:?}"));
        serde_json::from_slice(&crate::frame::payload(&event.canonical_frame())).unwrap()
    }

    #[test]
    fn any_finite_price_is_accepted_and_low_may_not_exceed_high() {
        let wti = published(
            Broadcast::Price,
            r#"{"ticker":"CL=F","price":-37.63,"high":0,"low":-40.32,"open_price":17.73}"#,
        );
        assert_eq!(wti["price"], -37.63);
        assert_eq!(wti["low"], -40.32);
        assert_eq!(
            published(Broadcast::Price, r#"{"ticker":"X","price":0.0}"#)["price"],
            0.0
        );
        assert_eq!(
            refused_field(
                Broadcast::Price,
                r#"{"ticker":"X","price":1,"high":1,"low":2}"#
            ),
            "low"
        );
        let alert = published(
            Broadcast::Alert,
            r#"{"ticker":"X","alert_type":"below","trigger_price":0,"current_price":-1}"#,
        );
        assert_eq!(alert["current_price"], -1.0);
        assert!(parse_event(Broadcast::Price, br#"{"ticker":"X","price":1e999}"#).is_err());
        assert!(parse_event(Broadcast::Price, br#"{"ticker":"X","price":"1"}"#).is_err());
    }

    #[test]
    fn publisher_strings_and_timestamps_are_relayed_as_sent() {
        let status = published(
            Broadcast::MarketStatus,
            r#"{"status":" open ","next_close":"2025-11-18T21:00:00Z","next_open":"2025-11-19T09:30:00-05:00","timestamp":"2025-11-18T14:30:00.5+00:00"}"#,
        );
        assert_eq!(status["status"], " open ");
        assert_eq!(status["next_close"], "2025-11-18T21:00:00Z");
        assert_eq!(status["next_open"], "2025-11-19T09:30:00-05:00");
        assert_eq!(status["timestamp"], "2025-11-18T14:30:00.5+00:00");
        let pattern = published(
            Broadcast::Pattern,
            r#"{"ticker":"aapl","pattern_type":"Cup & Handle ","score":8.5,"entry_price":1,"stop_price":0.5,"target_price":2,"message":" spaced "}"#,
        );
        assert_eq!(pattern["pattern_type"], "Cup & Handle ");
        assert_eq!(pattern["message"], " spaced ");
        // The ticker is a routing key: normalised.
        assert_eq!(pattern["ticker"], "AAPL");
        // A timestamp the server fills in is its own format.
        let price = published(Broadcast::Price, r#"{"ticker":"X","price":1}"#);
        assert!(
            price["timestamp"].as_str().unwrap().ends_with('Z'),
            "{price}"
        );
        assert_eq!(
            refused_field(Broadcast::MarketStatus, r#"{"status":"   "}"#),
            "status"
        );
    }

    #[test]
    fn timestamps_beyond_four_digit_years_are_refused() {
        for ts in ["9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00+00:01"] {
            let body = format!(r#"{{"ticker":"AAPL","price":1,"timestamp":"{ts}"}}"#);
            assert_eq!(refused_field(Broadcast::Price, &body), "timestamp", "{ts}");
        }
        let body = r#"{"status":"open","next_close":"9999-12-31T23:59:59Z"}"#;
        assert!(parse_event(Broadcast::MarketStatus, body.as_bytes()).is_ok());
    }
}
