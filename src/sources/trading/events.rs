//! Seed 004's trading messages as neutral events: `signal`,
//! `trade_executed`, `portfolio_update` and `price_update`, their `data`
//! written from structs in the seed's member order. On `/ws` they go out
//! flat (`{"type",…members…,"timestamp"}`, `Envelope::Flat`); the
//! portfolio's members are `channel` and `data`, as in the seed. Each
//! signal and execution goes to its channel's "all" room and to its
//! symbol's room, one encode shared by both.

use serde::Serialize;

use crate::catalog::RoomName;
use crate::protocol::Neutral;
use crate::protocol::json::round;
use crate::protocol::market::number;
use engine::paper::{Fill, Portfolio, Signal};

/// A `signal`'s members.
#[derive(Debug, Serialize)]
struct SignalData<'a> {
    signal_type: &'static str,
    symbol: &'a str,
    price: f64,
    #[serde(serialize_with = "number")]
    quantity: f64,
    confidence: f64,
}

/// A `trade_executed`'s members.
#[derive(Debug, Serialize)]
struct TradeData<'a> {
    symbol: &'a str,
    side: &'static str,
    #[serde(serialize_with = "number")]
    quantity: f64,
    price: f64,
}

/// One position in a `portfolio_update`.
#[derive(Debug, Serialize)]
struct PositionData<'a> {
    symbol: &'a str,
    #[serde(serialize_with = "number")]
    quantity: f64,
    average_price: f64,
    market_price: f64,
    unrealized_pnl: f64,
    unrealized_pnl_pct: f64,
}

/// A `portfolio_update`'s `data`.
#[derive(Debug, Serialize)]
struct PortfolioData<'a> {
    positions: std::collections::BTreeMap<&'a str, PositionData<'a>>,
    total_pnl: f64,
    position_count: usize,
}

/// A `portfolio_update`'s members besides `type` and `timestamp`.
#[derive(Debug, Serialize)]
struct PortfolioMessage<'a> {
    channel: &'static str,
    data: PortfolioData<'a>,
}

/// The `signal` for `signal`, at `timestamp`, in its symbol's room and
/// in the "all" room.
pub fn signal(signal: &Signal, timestamp: &str) -> [Neutral; 2] {
    let data = SignalData {
        signal_type: signal.side.label(),
        symbol: &signal.symbol,
        price: signal.price,
        quantity: round(signal.quantity, 4),
        confidence: signal.confidence,
    };
    both(
        RoomName::s004_signals(None),
        RoomName::s004_signals(Some(&signal.symbol)),
        "signal",
        timestamp,
        &data,
    )
}

/// The `trade_executed` for `fill`, in its symbol's room and in the
/// "all" room.
pub fn trade_executed(fill: &Fill, timestamp: &str) -> [Neutral; 2] {
    let data = TradeData {
        symbol: &fill.position.symbol,
        side: fill.side.label(),
        quantity: round(fill.quantity, 4),
        price: fill.price,
    };
    both(
        RoomName::s004_trades(None),
        RoomName::s004_trades(Some(&fill.position.symbol)),
        "trade_executed",
        timestamp,
        &data,
    )
}

/// The `portfolio_update` of `portfolio`.
pub fn portfolio_update(portfolio: &Portfolio<'_>, timestamp: &str) -> Neutral {
    let positions = portfolio
        .positions
        .values()
        .map(|p| {
            (
                p.symbol.as_str(),
                PositionData {
                    symbol: &p.symbol,
                    quantity: round(p.quantity, 4),
                    average_price: round(p.average_price, 4),
                    market_price: p.market_price,
                    unrealized_pnl: round(p.unrealized_pnl(), 2),
                    unrealized_pnl_pct: round(p.unrealized_pnl_pct(), 2),
                },
            )
        })
        .collect();
    let message = PortfolioMessage {
        channel: "portfolio",
        data: PortfolioData {
            positions,
            total_pnl: round(portfolio.total_pnl, 2),
            position_count: portfolio.positions.len(),
        },
    };
    Neutral::new(
        RoomName::s004_portfolio(),
        "portfolio_update",
        timestamp,
        &message,
    )
    .expect("a trading room and a plain type")
}

/// A `price_update` batch of `data` (`{"symbols":{…}}`) for `room`.
pub fn price_update(room: RoomName, timestamp: &str, data: &[u8]) -> Neutral {
    Neutral::from_data_json(room, "price_update", timestamp, data)
        .expect("a trading room, a plain type, an object")
}

/// One event in two rooms: encoded once, the second shares the bytes.
fn both(
    all: Result<RoomName, crate::catalog::CatalogError>,
    symbol: Result<RoomName, crate::catalog::CatalogError>,
    kind: &str,
    timestamp: &str,
    data: &impl Serialize,
) -> [Neutral; 2] {
    let all = all.expect("the all room is always valid");
    // The account trades only normalised tickers; a symbol room is valid.
    let symbol = symbol.expect("the account's symbols are tickers");
    let event = Neutral::new(all, kind, timestamp, data).expect("a trading room and a plain type");
    let copy = event.in_room(symbol);
    [event, copy]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;
    use crate::protocol::Envelope;
    use engine::paper::{AccountState, PaperAccount, PaperSettings, Side};

    fn flat(event: &Neutral) -> serde_json::Value {
        serde_json::from_slice(&frame::payload(&event.frame(Envelope::Flat))).unwrap()
    }

    #[test]
    fn messages_read_as_the_seeds_examples() {
        let ts = "2024-12-19T12:00:00.000Z";
        let [all, one] = signal(
            &Signal {
                symbol: "AAPL".into(),
                side: Side::Buy,
                price: 150.25,
                quantity: 10.0,
                confidence: 0.85,
            },
            ts,
        );
        assert_eq!(
            flat(&all),
            serde_json::json!({"type":"signal","signal_type":"BUY","symbol":"AAPL","price":150.25,
                "quantity":10,"confidence":0.85,"timestamp":ts})
        );
        assert_eq!(one.room().as_str(), "s004:signals:AAPL");
        assert_eq!(one.canonical_frame(), all.canonical_frame(), "one encode");
        let mut account = PaperAccount::new(PaperSettings::default(), AccountState::new(1e5, 0));
        account.on_tick("AAPL", 100.0, false, 0);
        account.on_tick("AAPL", 99.0, false, 1);
        let (_, fill) = account.on_tick("AAPL", 101.0, false, 2).unwrap();
        let [trade, _] = trade_executed(&fill.unwrap(), ts);
        assert_eq!(
            flat(&trade),
            serde_json::json!({"type":"trade_executed","symbol":"AAPL","side":"BUY","quantity":99,
                "price":101.0,"timestamp":ts})
        );
        account.on_tick("AAPL", 102.0, false, 3);
        let portfolio = flat(&portfolio_update(&account.portfolio(), ts));
        assert_eq!(portfolio["channel"], "portfolio");
        assert_eq!(portfolio["data"]["position_count"], 1);
        assert_eq!(portfolio["data"]["total_pnl"], 99.0);
        assert_eq!(
            portfolio["data"]["positions"]["AAPL"],
            serde_json::json!({"symbol":"AAPL","quantity":99,"average_price":101.0,
                "market_price":102.0,"unrealized_pnl":99.0,"unrealized_pnl_pct":0.99})
        );
    }
}
