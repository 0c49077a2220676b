//! Seed 004's settings, a section of [`crate::Config`]: whether its
//! streams run (`WEBSOCKET_ENABLED`), how often prices and the portfolio
//! go out, how a bare `/ws` tells a seed 004 client from a seed 002 one,
//! how many distinct price sets a node serves, and the embedded paper
//! account. The seed's own variable names are kept.

use clap::{ArgAction, ValueEnum};

use crate::config_error::{ConfigError, check_range, check_secs, invalid};
use crate::seconds::Seconds;

/// How `/ws` decides whether a connection is a seed 004 client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WsProtocol {
    /// Hold window: auto-subscribe unless a seed 002 `action` comes first
    /// (at once with `?client_id=`).
    Auto,
    /// Never auto-subscribe (a seed 002 deployment).
    Seed002,
    /// Auto-subscribe every connection at once.
    Seed004,
}

/// Settings of seed 004's streams and the paper account.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct TradingSettings {
    /// Seed 004's streams on `/ws` and their producers (seed 002's topics
    /// on `/ws` are unaffected).
    #[arg(long = "websocket-enabled", env = "WEBSOCKET_ENABLED", default_value_t = true, action = ArgAction::Set)]
    pub enabled: bool,

    /// Seconds between `price_update` batches.
    #[arg(
        long = "price-update-interval",
        env = "WEBSOCKET_PRICE_UPDATE_INTERVAL",
        default_value_t = Seconds::from_secs(3)
    )]
    pub price_interval: Seconds,

    /// Seconds between `portfolio_update`s.
    #[arg(
        long = "portfolio-update-interval",
        env = "WEBSOCKET_PORTFOLIO_UPDATE_INTERVAL",
        default_value_t = Seconds::from_secs(5)
    )]
    pub portfolio_interval: Seconds,

    /// How `/ws` tells seed 004 clients (which may send nothing) from
    /// seed 002 ones: `auto`, `seed002` or `seed004`.
    #[arg(long = "ws-protocol", env = "ROOMCAST_WS_PROTOCOL", value_enum, default_value_t = WsProtocol::Auto)]
    pub ws_protocol: WsProtocol,

    /// Seconds a bare `/ws` waits for a seed 002 `action` before
    /// auto-subscribing to seed 004's streams (0 = at once).
    #[arg(
        long = "ws-auto-subscribe-delay",
        env = "ROOMCAST_WS_AUTO_SUBSCRIBE_DELAY",
        default_value_t = 0.5
    )]
    pub auto_subscribe_delay: f64,

    /// Distinct narrowed price symbol sets served at once on this node.
    #[arg(
        long = "ws-max-price-feeds",
        env = "ROOMCAST_WS_MAX_PRICE_FEEDS",
        default_value_t = 256
    )]
    pub max_price_feeds: usize,

    /// Run the embedded paper-trading account (signals, executions,
    /// portfolio); off when an external system publishes them.
    #[arg(long = "paper-trading", env = "ROOMCAST_PAPER_TRADING", default_value_t = true, action = ArgAction::Set)]
    pub paper_trading: bool,

    /// The paper account's starting cash.
    #[arg(
        long = "paper-cash",
        env = "ROOMCAST_PAPER_CASH",
        default_value_t = 100_000.0
    )]
    pub paper_cash: f64,

    /// The paper account's worth of one BUY.
    #[arg(
        long = "paper-trade-notional",
        env = "ROOMCAST_PAPER_TRADE_NOTIONAL",
        default_value_t = 10_000.0
    )]
    pub paper_trade_notional: f64,

    /// Build seed 003's market data (candles, patterns, structure,
    /// confluence) from every symbol's ticks.
    #[arg(long = "market-data", env = "ROOMCAST_MARKET_DATA", default_value_t = true, action = ArgAction::Set)]
    pub market_data: bool,

    /// Candle timeframes of seed 003's market-data stream (comma-separated).
    #[arg(
        long = "market-data-timeframes",
        env = "ROOMCAST_MARKET_DATA_TIMEFRAMES",
        default_value = "1M,5M,15M,1H,4H"
    )]
    pub market_data_timeframes: String,
}

impl Default for TradingSettings {
    /// The documented defaults.
    fn default() -> Self {
        TradingSettings {
            enabled: true,
            price_interval: Seconds::from_secs(3),
            portfolio_interval: Seconds::from_secs(5),
            ws_protocol: WsProtocol::Auto,
            auto_subscribe_delay: 0.5,
            max_price_feeds: 256,
            paper_trading: true,
            paper_cash: 100_000.0,
            paper_trade_notional: 10_000.0,
            market_data: true,
            market_data_timeframes: "1M,5M,15M,1H,4H".into(),
        }
    }
}

impl TradingSettings {
    /// Rejects values the streams cannot run with, naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_secs("WEBSOCKET_PRICE_UPDATE_INTERVAL", self.price_interval.get())?;
        check_secs(
            "WEBSOCKET_PORTFOLIO_UPDATE_INTERVAL",
            self.portfolio_interval.get(),
        )?;
        if !(self.auto_subscribe_delay.is_finite()
            && (0.0..=60.0).contains(&self.auto_subscribe_delay))
        {
            return Err(invalid(
                "ROOMCAST_WS_AUTO_SUBSCRIBE_DELAY",
                format!(
                    "{} is not a number of seconds in [0, 60]",
                    self.auto_subscribe_delay
                ),
            ));
        }
        check_range(
            "ROOMCAST_WS_MAX_PRICE_FEEDS",
            self.max_price_feeds,
            0,
            100_000,
        )?;
        engine::chart::parse_timeframes(&self.market_data_timeframes)
            .map_err(|e| invalid("ROOMCAST_MARKET_DATA_TIMEFRAMES", e))?;
        for (name, value) in [
            ("ROOMCAST_PAPER_CASH", self.paper_cash),
            ("ROOMCAST_PAPER_TRADE_NOTIONAL", self.paper_trade_notional),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= 1e15) {
                return Err(invalid(name, format!("{value} is not a positive amount")));
            }
        }
        Ok(())
    }

    /// The hold window of a bare `/ws`.
    pub fn auto_subscribe_delay(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.auto_subscribe_delay)
    }

    /// Seed 003's candle timeframes (validated).
    pub fn timeframes(&self) -> Vec<engine::Timeframe> {
        engine::chart::parse_timeframes(&self.market_data_timeframes)
            .expect("validated at start-up")
    }

    /// The paper account's settings.
    pub fn paper(&self) -> engine::paper::PaperSettings {
        engine::paper::PaperSettings {
            cash: self.paper_cash,
            notional: self.paper_trade_notional,
            ..engine::paper::PaperSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_the_variable() {
        let mut s = TradingSettings::default();
        s.validate().unwrap();
        s.auto_subscribe_delay = -1.0;
        assert_eq!(
            s.validate().unwrap_err().name,
            "ROOMCAST_WS_AUTO_SUBSCRIBE_DELAY"
        );
        s.auto_subscribe_delay = 0.0;
        s.validate().unwrap();
        s.paper_cash = 0.0;
        assert_eq!(s.validate().unwrap_err().name, "ROOMCAST_PAPER_CASH");
    }
}
