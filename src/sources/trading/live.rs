//! Seed 003's live-trading messages from the paper account, as neutral
//! events in seed 003's envelope (`{"type","timestamp","data"}`): `order`
//! and `position` (`open`, `modify`, `close`) to `s003:live` and to the
//! symbol's `s003:live:<SYM>`, and the account-wide `pnl` and `risk` to
//! `s003:account`. Each position event carries its room's new snapshot
//! (one `position` `open` per open position), and each `risk` the
//! account's (`pnl` and `risk`), so a joiner sees the account at once.
//! Members follow spec §3.4, in its order.

use bytes::Bytes;
use serde::Serialize;

use crate::catalog::RoomName;
use crate::protocol::json::round;
use crate::protocol::market::number;
use crate::protocol::{Neutral, time};
use engine::paper::{Fill, Portfolio, Position, PositionChange, Risk, Side};

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(time::now, time::format)
}

/// A position's id as the stream spells it.
pub fn position_id(id: u64) -> String {
    format!("pos_{id}")
}

/// `position`'s data.
#[derive(Debug, Serialize)]
struct PositionData<'a> {
    event: &'static str,
    position_id: Option<String>,
    symbol: &'a str,
    direction: &'static str,
    #[serde(serialize_with = "number")]
    quantity: f64,
    entry_price: f64,
    current_price: f64,
    stop_loss: Option<f64>,
    take_profit_levels: [f64; 0],
    unrealized_pnl: f64,
    unrealized_pnl_percent: f64,
    opened_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    realized_pnl: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed_at: Option<String>,
}

/// `order`'s data.
#[derive(Debug, Serialize)]
struct OrderData<'a> {
    order_id: Option<String>,
    position_id: Option<String>,
    symbol: &'a str,
    side: &'static str,
    r#type: &'static str,
    #[serde(serialize_with = "number")]
    quantity: f64,
    price: f64,
    status: &'static str,
    #[serde(serialize_with = "number")]
    filled_quantity: f64,
    average_fill_price: f64,
}

/// `risk`'s data.
#[derive(Debug, Serialize)]
struct RiskData {
    equity: f64,
    exposure: f64,
    exposure_percent: f64,
    open_positions: usize,
    current_drawdown: f64,
    max_drawdown: f64,
    largest_position_percent: f64,
}

/// `pnl`'s data.
#[derive(Debug, Serialize)]
struct PnlData {
    realized_pnl: Option<f64>,
    unrealized_pnl: Option<f64>,
    total_pnl: Option<f64>,
    daily_pnl: Option<f64>,
    equity: Option<f64>,
    balance: Option<f64>,
}

/// What a position event says.
#[derive(Debug, Clone, Copy)]
pub enum PositionEvent {
    /// Opened, added to, or marked to market.
    Open,
    /// Added to, or marked to market.
    Modify,
    /// Closed at `exit_price` for `realized_pnl`.
    Close {
        /// The closing fill's price.
        exit_price: f64,
        /// Its realised pnl.
        realized_pnl: f64,
    },
}

fn position_data<'a>(p: &'a Position, event: PositionEvent, timestamp: &str) -> PositionData<'a> {
    let (label, exit_price, realized_pnl, closed_at) = match event {
        PositionEvent::Open => ("open", None, None, None),
        PositionEvent::Modify => ("modify", None, None, None),
        PositionEvent::Close {
            exit_price,
            realized_pnl,
        } => (
            "close",
            Some(exit_price),
            Some(round(realized_pnl, 2)),
            Some(timestamp.to_string()),
        ),
    };
    // A closed position has nothing unrealised.
    let closed = matches!(event, PositionEvent::Close { .. }).then_some(0.0);
    PositionData {
        event: label,
        position_id: Some(position_id(p.position_id)),
        symbol: &p.symbol,
        direction: "long",
        quantity: round(p.quantity, 4),
        entry_price: round(p.average_price, 4),
        current_price: p.market_price,
        stop_loss: None,
        take_profit_levels: [],
        unrealized_pnl: closed.unwrap_or_else(|| round(p.unrealized_pnl(), 2)),
        unrealized_pnl_percent: closed.unwrap_or_else(|| round(p.unrealized_pnl_pct(), 2)),
        opened_at: Some(at(p.opened_at_ms)),
        exit_price,
        realized_pnl,
        closed_at,
    }
}

fn event(room: RoomName, kind: &str, timestamp: &str, data: &impl Serialize) -> Neutral {
    Neutral::new(room, kind, timestamp, data).expect("a trading room and a plain type")
}

/// A `position` event for `room`.
pub fn position(room: RoomName, p: &Position, change: PositionEvent, timestamp: &str) -> Neutral {
    event(
        room,
        "position",
        timestamp,
        &position_data(p, change, timestamp),
    )
}

/// The greeting of a live room: one `position` `open` per open position.
pub fn positions_snapshot<'a>(
    positions: impl IntoIterator<Item = &'a Position>,
    timestamp: &str,
) -> Vec<Bytes> {
    let room = RoomName::s003_live(None).expect("the all room");
    positions
        .into_iter()
        .map(|p| {
            position(room.clone(), p, PositionEvent::Open, timestamp)
                .canonical_frame()
                .clone()
        })
        .collect()
}

/// The `order` of a fill, for `room`.
pub fn order(room: RoomName, fill: &Fill, timestamp: &str) -> Neutral {
    let side = match fill.side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    };
    let quantity = round(fill.quantity, 4);
    event(
        room,
        "order",
        timestamp,
        &OrderData {
            order_id: Some(format!("ord_{}", fill.order_id)),
            position_id: Some(position_id(fill.position.position_id)),
            symbol: &fill.position.symbol,
            side,
            r#type: "market",
            quantity,
            price: fill.price,
            status: "filled",
            filled_quantity: quantity,
            average_fill_price: fill.price,
        },
    )
}

/// What a fill did to its position, as a position event.
pub fn fill_event(fill: &Fill) -> PositionEvent {
    match (fill.change, fill.realized_pnl) {
        (PositionChange::Open, _) => PositionEvent::Open,
        (PositionChange::Modify, _) => PositionEvent::Modify,
        (PositionChange::Close, pnl) => PositionEvent::Close {
            exit_price: fill.price,
            realized_pnl: pnl.unwrap_or_default(),
        },
    }
}

/// The account's `pnl` and `risk`, the latter carrying both as the
/// account room's snapshot.
pub fn account(portfolio: &Portfolio<'_>, risk: &Risk, timestamp: &str) -> [Neutral; 2] {
    let room = RoomName::s003_account();
    let pnl = event(
        room.clone(),
        "pnl",
        timestamp,
        &PnlData {
            realized_pnl: Some(round(portfolio.realized_pnl, 2)),
            unrealized_pnl: Some(round(portfolio.unrealized_pnl, 2)),
            total_pnl: Some(round(portfolio.total_pnl, 2)),
            daily_pnl: Some(round(portfolio.daily_pnl, 2)),
            equity: Some(round(portfolio.equity, 2)),
            balance: Some(round(portfolio.balance, 2)),
        },
    );
    let risk = event(
        room,
        "risk",
        timestamp,
        &RiskData {
            equity: round(risk.equity, 2),
            exposure: round(risk.exposure, 2),
            exposure_percent: round(risk.exposure_percent, 2),
            open_positions: risk.open_positions,
            current_drawdown: round(risk.current_drawdown, 4),
            max_drawdown: round(risk.max_drawdown, 4),
            largest_position_percent: round(risk.largest_position_percent, 2),
        },
    );
    let snapshot = vec![
        pnl.canonical_frame().clone(),
        risk.canonical_frame().clone(),
    ];
    [pnl, risk.with_snapshot(snapshot)]
}

/// Seed 003's view of an external system's seed 004 messages (spec §8: its
/// `POST /websocket/broadcast/*` feed seed 003's live-trading rooms too).
/// Only what the seed 004 message says is carried over; what it does not
/// say (ids, when a position opened, equity and cash) is `null`, never
/// made up.
pub mod external {
    use serde_json::Value;

    use super::*;
    use crate::protocol::Event;

    fn number(message: &Value, key: &str) -> f64 {
        message.get(key).and_then(Value::as_f64).unwrap_or_default()
    }

    /// The `order` of a `trade_executed` (already checked: a ticker
    /// `symbol`, `side` BUY or SELL, numeric `quantity` and `price`), for
    /// the "all" room and the symbol's.
    pub fn order(message: &Value, symbol: &str, timestamp: &str) -> [Neutral; 2] {
        let quantity = number(message, "quantity");
        let price = number(message, "price");
        let text = |key: &str| message.get(key).and_then(Value::as_str).map(str::to_string);
        let side = match message.get("side").and_then(Value::as_str) {
            Some("SELL") => "sell",
            _ => "buy",
        };
        let all = event(
            RoomName::s003_live(None).expect("the all room"),
            "order",
            timestamp,
            &OrderData {
                order_id: text("order_id"),
                position_id: text("position_id"),
                symbol,
                side,
                r#type: "market",
                quantity,
                price,
                status: "filled",
                filled_quantity: quantity,
                average_fill_price: price,
            },
        );
        let one = all.in_room(RoomName::s003_live(Some(symbol)).expect("a checked ticker"));
        [all, one]
    }

    /// The batches a `portfolio_update` (already checked: `data.positions`
    /// an object) publishes: a `position` `modify` per position to the
    /// "all" room (the last carrying the whole book as its snapshot) and to
    /// each symbol's room, then `pnl` to the account room.
    pub fn portfolio(message: &Value, timestamp: &str) -> Vec<Vec<Event>> {
        let data = message.get("data").cloned().unwrap_or_default();
        let positions: Vec<(String, &Value)> = data
            .get("positions")
            .and_then(Value::as_object)
            .map(|book| {
                book.iter()
                    .filter_map(|(key, p)| {
                        let symbol = p.get("symbol").and_then(Value::as_str).unwrap_or(key);
                        Some((crate::catalog::normalize_ticker(symbol).ok()?, p))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let frame = |room: RoomName, symbol: &str, p: &Value, event: &'static str| {
            let quantity = number(p, "quantity");
            super::event(
                room,
                "position",
                timestamp,
                &PositionData {
                    event,
                    position_id: None,
                    symbol,
                    direction: if quantity < 0.0 { "short" } else { "long" },
                    quantity: quantity.abs(),
                    entry_price: number(p, "average_price"),
                    current_price: number(p, "market_price"),
                    stop_loss: None,
                    take_profit_levels: [],
                    unrealized_pnl: number(p, "unrealized_pnl"),
                    unrealized_pnl_percent: number(p, "unrealized_pnl_pct"),
                    opened_at: None,
                    exit_price: None,
                    realized_pnl: None,
                    closed_at: None,
                },
            )
        };
        let all = RoomName::s003_live(None).expect("the all room");
        let book: Vec<Bytes> = positions
            .iter()
            .map(|(symbol, p)| {
                frame(all.clone(), symbol, p, "open")
                    .canonical_frame()
                    .clone()
            })
            .collect();
        let mut batches = Vec::new();
        let mut updates: Vec<Event> = positions
            .iter()
            .map(|(symbol, p)| Event::Neutral(frame(all.clone(), symbol, p, "modify")))
            .collect();
        if let Some(Event::Neutral(last)) = updates.pop() {
            updates.push(Event::Neutral(last.with_snapshot(book)));
            batches.push(updates);
        }
        for (symbol, p) in &positions {
            let room = RoomName::s003_live(Some(symbol)).expect("a normalised ticker");
            let snapshot = vec![
                frame(room.clone(), symbol, p, "open")
                    .canonical_frame()
                    .clone(),
            ];
            batches.push(vec![Event::Neutral(
                frame(room, symbol, p, "modify").with_snapshot(snapshot),
            )]);
        }
        let unrealized: f64 = positions
            .iter()
            .map(|(_, p)| number(p, "unrealized_pnl"))
            .sum();
        let total = data.get("total_pnl").and_then(Value::as_f64);
        let pnl = event(
            RoomName::s003_account(),
            "pnl",
            timestamp,
            &PnlData {
                realized_pnl: total.map(|t| round(t - unrealized, 2)),
                unrealized_pnl: Some(round(unrealized, 2)),
                total_pnl: total,
                daily_pnl: None,
                equity: None,
                balance: None,
            },
        );
        let snapshot = vec![pnl.canonical_frame().clone()];
        batches.push(vec![Event::Neutral(pnl.with_snapshot(snapshot))]);
        batches
    }
}
