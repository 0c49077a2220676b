//! `POST /websocket/broadcast/{signal,trade_executed,portfolio_update}`: an
//! external trading system publishes seed 004's own messages into the
//! streams the paper account feeds (run it with `ROOMCAST_PAPER_TRADING=false`
//! to be their only producer). The body is the message the seed's Python
//! service would `broadcast` (its `type` optional, implied by the path),
//! or an array of up to 1,000; each is relayed as sent, with `timestamp`
//! filled in when missing. A signal or execution goes to `s004:<channel>`
//! and to its symbol's room, a portfolio to `s004:portfolio`.
//!
//! Each message is checked before anything is published: 400 for
//! malformed JSON, 422 naming the field (`[i].symbol` in an array) for a
//! missing or mistyped member; 503 when the bus refuses (what went out
//! before is reported in `published`) or seed 004's streams are disabled.
//! Internal, like seed 001's broadcast endpoints: API keys come with the
//! authentication work.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use crate::app::App;
use crate::catalog::{RoomName, normalize_ticker};
use crate::http::response::{self, HttpError, HttpResponse};
use crate::protocol::json::{self, Members};
use crate::protocol::{Envelope, Event, Neutral, time};
use crate::sources::backtest::external::MAX_MESSAGES;
use crate::sources::trading::health::Stream;
use crate::sources::trading::live;

/// The message kinds an external system publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `signal`.
    Signal,
    /// `trade_executed`.
    TradeExecuted,
    /// `portfolio_update`.
    PortfolioUpdate,
}

impl Kind {
    /// The kind a path's last segment names.
    pub fn from_path(segment: &str) -> Option<Self> {
        match segment {
            "signal" => Some(Kind::Signal),
            "trade_executed" => Some(Kind::TradeExecuted),
            "portfolio_update" => Some(Kind::PortfolioUpdate),
            _ => None,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Kind::Signal => "signal",
            Kind::TradeExecuted => "trade_executed",
            Kind::PortfolioUpdate => "portfolio_update",
        }
    }

    fn stream(self) -> Stream {
        match self {
            Kind::Signal => Stream::Signals,
            Kind::TradeExecuted => Stream::Trades,
            Kind::PortfolioUpdate => Stream::Portfolio,
        }
    }
}

/// A refused message: the field at fault and why.
#[derive(Debug)]
struct Refusal(&'static str, String);

/// `POST /websocket/broadcast/{kind}`.
pub async fn publish(app: &App, req: Request<Incoming>, kind: Kind) -> HttpResponse {
    if !app.trading.settings.enabled {
        return response::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "WebSocket streaming is disabled",
        );
    }
    let body = match response::read_body(req, &app.config.http).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return HttpError::BadJson(e.to_string()).into_response();
    }
    let trimmed = body.trim_ascii();
    let (items, in_array) = if trimmed.starts_with(b"[") {
        (json::elements(trimmed).unwrap_or_default(), true)
    } else {
        (vec![trimmed], false)
    };
    if items.is_empty() || items.len() > MAX_MESSAGES {
        return HttpError::field(
            "(body)",
            format!("expected 1 to {MAX_MESSAGES} messages, got {}", items.len()),
        )
        .into_response();
    }
    let now = time::now();
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match check(item, kind, &now) {
            Ok(checked) => events.push(checked),
            Err(Refusal(field, message)) => {
                let field = if in_array {
                    format!("[{i}].{field}")
                } else {
                    field.to_string()
                };
                return HttpError::field(&field, message).into_response();
            }
        }
    }
    let stream = kind.stream();
    let mut last = None;
    for (published, checked) in events.into_iter().enumerate() {
        let batches = checked
            .seed004
            .into_iter()
            .map(|event| vec![Event::Neutral(event)])
            .chain(checked.seed003);
        for batch in batches {
            match app.publisher.publish_batch(&batch).await {
                Ok(report) => {
                    last.get_or_insert(report);
                }
                Err(e) => {
                    app.trading.health.failed(stream);
                    return response::json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &json!({ "error": e.to_string(), "published": published }),
                    );
                }
            }
        }
        app.trading.health.published(stream);
    }
    let report = last.unwrap_or_default();
    let all = match kind {
        Kind::Signal => RoomName::s004_signals(None),
        Kind::TradeExecuted => RoomName::s004_trades(None),
        Kind::PortfolioUpdate => Ok(RoomName::s004_portfolio()),
    }
    .expect("the all rooms are valid");
    response::json(
        StatusCode::OK,
        &json!({
            "status": "success",
            "room": all.as_str(),
            "seq": report.seq,
            "recipients": report.recipients,
            "published": items.len(),
        }),
    )
}

/// Checks one message and builds its events: the "all" room's first.
/// One checked message: its seed 004 events (the "all" room's first), and
/// seed 003's view of it as batches, one room each.
#[derive(Debug)]
struct Checked {
    seed004: Vec<Neutral>,
    seed003: Vec<Vec<Event>>,
}

fn check(item: &[u8], kind: Kind, now: &str) -> Result<Checked, Refusal> {
    let members = Members::parse(item).map_err(|e| Refusal("(message)", e.0))?;
    let value = |name: &str| -> Option<Value> {
        members
            .get(name)
            .and_then(|raw| serde_json::from_slice(raw).ok())
    };
    let with_type;
    let message = match value("type") {
        None => {
            // The path implies the type: put it first, as the seed does.
            let rest = item[1..].trim_ascii_start();
            let separator: &[u8] = if rest.starts_with(b"}") { b"" } else { b"," };
            with_type = [
                format!(r#"{{"type":"{}""#, kind.type_name()).as_bytes(),
                separator,
                rest,
            ]
            .concat();
            &with_type[..]
        }
        Some(Value::String(t)) if t == kind.type_name() => item,
        Some(_) => {
            return Err(Refusal(
                "type",
                format!("must be '{}' on this path", kind.type_name()),
            ));
        }
    };
    let side = |name: &'static str| match value(name) {
        Some(Value::String(s)) if s == "BUY" || s == "SELL" => Ok(()),
        _ => Err(Refusal(name, "must be \"BUY\" or \"SELL\"".into())),
    };
    let number = |name: &'static str, required: bool| match value(name) {
        Some(Value::Number(_)) => Ok(()),
        None if !required => Ok(()),
        _ => Err(Refusal(name, "must be a number".into())),
    };
    let symbol = || -> Result<String, Refusal> {
        match value("symbol") {
            Some(Value::String(s)) => {
                normalize_ticker(&s).map_err(|e| Refusal("symbol", e.to_string()))
            }
            _ => Err(Refusal("symbol", "must be a ticker string".into())),
        }
    };
    let mut traded = None;
    let (all, one) = match kind {
        Kind::Signal => {
            side("signal_type")?;
            number("price", true)?;
            number("quantity", false)?;
            number("confidence", false)?;
            let symbol = symbol()?;
            (
                RoomName::s004_signals(None),
                Some(RoomName::s004_signals(Some(&symbol))),
            )
        }
        Kind::TradeExecuted => {
            side("side")?;
            number("quantity", true)?;
            number("price", true)?;
            let symbol = symbol()?;
            let rooms = (
                RoomName::s004_trades(None),
                Some(RoomName::s004_trades(Some(&symbol))),
            );
            traded = Some(symbol);
            rooms
        }
        Kind::PortfolioUpdate => {
            match value("data") {
                Some(Value::Object(data))
                    if data.get("positions").is_some_and(Value::is_object) => {}
                _ => {
                    return Err(Refusal(
                        "data",
                        "must be an object with a 'positions' object".into(),
                    ));
                }
            }
            (Ok(RoomName::s004_portfolio()), None)
        }
    };
    let all = all.expect("the all rooms are valid");
    let event = Neutral::parse(all, message, Envelope::Flat, now).map_err(|e| match e {
        crate::protocol::NeutralError::BadTimestamp => Refusal("timestamp", e.to_string()),
        other => Refusal("(message)", other.to_string()),
    })?;
    let mut seed004 = vec![event];
    if let Some(Ok(room)) = one {
        let copy = seed004[0].in_room(room);
        seed004.push(copy);
    }
    let parsed: Value = serde_json::from_slice(message).unwrap_or_default();
    let seed003 = match (kind, traded) {
        (Kind::TradeExecuted, Some(symbol)) => live::external::order(&parsed, &symbol, now)
            .into_iter()
            .map(|event| vec![Event::Neutral(event)])
            .collect(),
        (Kind::PortfolioUpdate, _) => live::external::portfolio(&parsed, now),
        _ => Vec::new(),
    };
    Ok(Checked { seed004, seed003 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    fn flat(event: &Neutral) -> String {
        String::from_utf8(frame::payload(&event.frame(Envelope::Flat)).to_vec()).unwrap()
    }

    #[test]
    fn a_message_is_relayed_as_sent_with_its_type_implied_by_the_path() {
        let now = "2026-01-01T00:00:00.000Z";
        let events = check(
            br#"{"signal_type":"BUY","symbol":"aapl","price":150.25,"quantity":10,"confidence":0.85}"#,
            Kind::Signal,
            now,
        )
        .unwrap()
        .seed004;
        assert_eq!(
            flat(&events[0]),
            r#"{"type":"signal","signal_type":"BUY","symbol":"aapl","price":150.25,"quantity":10,"confidence":0.85,"timestamp":"2026-01-01T00:00:00.000Z"}"#
        );
        assert_eq!(events[1].room().as_str(), "s004:signals:AAPL");
        let sent = r#"{"type":"portfolio_update","channel":"portfolio","timestamp":"2024-12-19T12:00:00Z","data":{"positions":{},"total_pnl":0,"position_count":0}}"#;
        let checked = check(sent.as_bytes(), Kind::PortfolioUpdate, now).unwrap();
        assert_eq!(checked.seed004.len(), 1);
        let framed: Value = serde_json::from_str(&flat(&checked.seed004[0])).unwrap();
        assert_eq!(framed, serde_json::from_str::<Value>(sent).unwrap());
    }

    fn stamped(event: &Event) -> Value {
        let Event::Neutral(event) = event else {
            panic!("{event:?}")
        };
        serde_json::from_slice(&frame::payload(event.canonical_frame())).unwrap()
    }

    #[test]
    fn seed_003_sees_an_external_execution_as_an_order_and_a_portfolio_as_positions_and_pnl() {
        let now = "2026-01-01T00:00:00.000Z";
        let trade = br#"{"symbol":"aapl","side":"SELL","quantity":10,"price":150.25}"#;
        let checked = check(trade, Kind::TradeExecuted, now).unwrap();
        let rooms: Vec<String> = checked
            .seed003
            .iter()
            .map(|batch| crate::protocol::batch_room(batch).unwrap().to_string())
            .collect();
        assert_eq!(rooms, ["s003:live", "s003:live:AAPL"]);
        let order = stamped(&checked.seed003[0][0]);
        assert_eq!(order["type"], "order");
        assert_eq!(
            order["data"],
            serde_json::json!({"order_id":null,"position_id":null,"symbol":"AAPL","side":"sell",
                "type":"market","quantity":10,"price":150.25,"status":"filled",
                "filled_quantity":10,"average_fill_price":150.25})
        );
        let portfolio = br#"{"data":{"positions":{"AAPL":{"symbol":"AAPL","quantity":10,"average_price":150.25,"market_price":151.5,"unrealized_pnl":12.5,"unrealized_pnl_pct":0.83}},"total_pnl":20.0,"position_count":1}}"#;
        let checked = check(portfolio, Kind::PortfolioUpdate, now).unwrap();
        let rooms: Vec<String> = checked
            .seed003
            .iter()
            .map(|batch| crate::protocol::batch_room(batch).unwrap().to_string())
            .collect();
        assert_eq!(rooms, ["s003:live", "s003:live:AAPL", "s003:account"]);
        let position = stamped(&checked.seed003[0][0]);
        assert_eq!(position["data"]["event"], "modify");
        assert_eq!(position["data"]["entry_price"], 150.25);
        assert_eq!(position["data"]["unrealized_pnl_percent"], 0.83);
        assert_eq!(position["data"]["opened_at"], Value::Null);
        let Event::Neutral(last) = &checked.seed003[0][0] else {
            unreachable!()
        };
        assert_eq!(last.snapshot().map(<[_]>::len), Some(1), "the whole book");
        let pnl = stamped(&checked.seed003[2][0]);
        assert_eq!(
            pnl["data"],
            serde_json::json!({"realized_pnl":7.5,"unrealized_pnl":12.5,"total_pnl":20.0,
                "daily_pnl":null,"equity":null,"balance":null})
        );
    }

    #[test]
    fn each_bad_member_is_named() {
        let now = "t";
        let field = |json: &str, kind| check(json.as_bytes(), kind, now).unwrap_err().0;
        assert_eq!(
            field(
                r#"{"signal_type":"HOLD","symbol":"A","price":1}"#,
                Kind::Signal
            ),
            "signal_type"
        );
        assert_eq!(
            field(
                r#"{"signal_type":"BUY","symbol":"A B","price":1}"#,
                Kind::Signal
            ),
            "symbol"
        );
        assert_eq!(
            field(
                r#"{"signal_type":"BUY","symbol":"A","price":"1"}"#,
                Kind::Signal
            ),
            "price"
        );
        assert_eq!(
            field(
                r#"{"type":"signal","side":"BUY","symbol":"A","quantity":1,"price":1}"#,
                Kind::TradeExecuted
            ),
            "type"
        );
        assert_eq!(
            field(
                r#"{"side":"BUY","symbol":"A","price":1}"#,
                Kind::TradeExecuted
            ),
            "quantity"
        );
        assert_eq!(field(r#"{"data":{}}"#, Kind::PortfolioUpdate), "data");
        assert_eq!(
            field(
                r#"{"signal_type":"BUY","symbol":"A","price":1,"timestamp":"soon"}"#,
                Kind::Signal
            ),
            "timestamp"
        );
        assert_eq!(field(r#"[1]"#, Kind::Signal), "(message)");
    }
}
