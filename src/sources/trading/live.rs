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
    position_id: String,
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
    opened_at: String,
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
    order_id: String,
    position_id: String,
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
    realized_pnl: f64,
    unrealized_pnl: f64,
    total_pnl: f64,
    daily_pnl: f64,
    equity: f64,
    balance: f64,
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
        position_id: position_id(p.position_id),
        symbol: &p.symbol,
        direction: "long",
        quantity: round(p.quantity, 4),
        entry_price: round(p.average_price, 4),
        current_price: p.market_price,
        stop_loss: None,
        take_profit_levels: [],
        unrealized_pnl: closed.unwrap_or_else(|| round(p.unrealized_pnl(), 2)),
        unrealized_pnl_percent: closed.unwrap_or_else(|| round(p.unrealized_pnl_pct(), 2)),
        opened_at: at(p.opened_at_ms),
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
            order_id: format!("ord_{}", fill.order_id),
            position_id: position_id(fill.position.position_id),
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
            realized_pnl: round(portfolio.realized_pnl, 2),
            unrealized_pnl: round(portfolio.unrealized_pnl, 2),
            total_pnl: round(portfolio.total_pnl, 2),
            daily_pnl: round(portfolio.daily_pnl, 2),
            equity: round(portfolio.equity, 2),
            balance: round(portfolio.balance, 2),
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
