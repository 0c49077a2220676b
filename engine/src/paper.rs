//! The paper-trading account behind seed 004's signals, executions and
//! portfolio (and seed 003's live-trading stream): one cash account, long
//! only, trading live ticks with a per-symbol EMA crossover.
//!
//! The caller feeds it every tick ([`PaperAccount::on_tick`]) with the
//! tick's wall-clock time; it answers with what the tick did: a
//! [`Signal`], and the [`Fill`] that executed it, if any. Everything else
//! is a view ([`PaperAccount::portfolio`], [`PaperAccount::risk`]).
//!
//! * **Signals.** Each symbol has a short and a long EMA of its ticks
//!   (5 and 20 by default), both starting at the first price. When the
//!   short one crosses the long one, the account signals BUY (upward) or
//!   SELL (downward); the crossover's strength (the EMAs' gap relative to
//!   the price) gives the confidence, 0.5–0.99.
//! * **Activity.** A random walk can go a long while without a crossover,
//!   and a dashboard should show the account working within a minute.
//!   When nothing has filled for [`PaperSettings::idle_after_ms`], the
//!   next tick of a symbol trades that symbol's current trend: SELL a held
//!   position whose short EMA is below its long one (or when cash is
//!   short), BUY otherwise.
//! * **Execution.** A BUY fills at once at the signal price for
//!   [`PaperSettings::notional`] worth (whole shares, or 4 decimals for
//!   fractional instruments), while cash lasts; a repeated BUY adds to the
//!   position at its volume-weighted average price. A SELL closes a held
//!   position whole; there are no shorts.
//!
//! The account's state ([`AccountState`]) is plain data, so a fleet can
//! store it and hand it to the next leader; the EMAs are rebuilt from the
//! ticks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The account's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperSettings {
    /// Starting cash.
    pub cash: f64,
    /// Worth of one BUY.
    pub notional: f64,
    /// Ticks of the short EMA.
    pub short_ticks: u32,
    /// Ticks of the long EMA.
    pub long_ticks: u32,
    /// Milliseconds without a fill after which a tick trades its trend.
    pub idle_after_ms: i64,
}

impl Default for PaperSettings {
    fn default() -> Self {
        PaperSettings {
            cash: 100_000.0,
            notional: 10_000.0,
            short_ticks: 5,
            long_ticks: 20,
            idle_after_ms: 20_000,
        }
    }
}

/// BUY or SELL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Opens or adds to a position.
    Buy,
    /// Closes a position.
    Sell,
}

impl Side {
    /// `BUY` or `SELL`, as seed 004 spells it.
    pub fn label(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

/// What a position did on a fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionChange {
    /// A new position.
    Open,
    /// Added to an existing one.
    Modify,
    /// Closed whole.
    Close,
}

/// A trading signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// The instrument.
    pub symbol: String,
    /// Which way.
    pub side: Side,
    /// The tick's price.
    pub price: f64,
    /// The quantity a fill would trade (for a SELL without a position, what
    /// a BUY would).
    pub quantity: f64,
    /// 0.5–0.99: the crossover's strength.
    pub confidence: f64,
}

/// An execution of a signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    /// Sequential order id, from 1.
    pub order_id: u64,
    /// The position it opened, added to or closed.
    pub position: Position,
    /// BUY or SELL.
    pub side: Side,
    /// Quantity traded.
    pub quantity: f64,
    /// Fill price.
    pub price: f64,
    /// What the position did.
    pub change: PositionChange,
    /// For a close: its realised pnl.
    pub realized_pnl: Option<f64>,
}

/// An open position (or, in a closing [`Fill`], the one just closed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Sequential position id, from 1.
    pub position_id: u64,
    /// The instrument.
    pub symbol: String,
    /// Quantity held.
    pub quantity: f64,
    /// Volume-weighted average of the buys.
    pub average_price: f64,
    /// The latest tick.
    pub market_price: f64,
    /// When it opened (ms since the epoch).
    pub opened_at_ms: i64,
}

impl Position {
    /// Unrealised pnl at the market price.
    pub fn unrealized_pnl(&self) -> f64 {
        (self.market_price - self.average_price) * self.quantity
    }

    /// Unrealised pnl in percent of the average price.
    pub fn unrealized_pnl_pct(&self) -> f64 {
        if self.average_price > 0.0 {
            (self.market_price / self.average_price - 1.0) * 100.0
        } else {
            0.0
        }
    }

    /// Worth at the market price.
    pub fn market_value(&self) -> f64 {
        self.market_price * self.quantity
    }
}

/// The account's persistent state: everything but the EMAs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountState {
    /// Cash not in positions.
    pub cash: f64,
    /// Realised pnl since the account opened.
    pub realized_pnl: f64,
    /// Open positions by symbol.
    pub positions: BTreeMap<String, Position>,
    /// The last order id handed out.
    pub last_order_id: u64,
    /// The last position id handed out.
    pub last_position_id: u64,
    /// When the last fill happened (ms), or the account opened.
    pub last_fill_ms: i64,
    /// Highest equity seen (for drawdown).
    pub peak_equity: f64,
    /// Deepest drawdown seen, a negative fraction.
    pub max_drawdown: f64,
    /// Equity at the start of the current UTC day, and that day's number.
    pub day_start_equity: f64,
    /// Days since the epoch of `day_start_equity`.
    pub day: i64,
}

impl AccountState {
    /// A fresh account with `cash`, opened at `now_ms`.
    pub fn new(cash: f64, now_ms: i64) -> Self {
        AccountState {
            cash,
            realized_pnl: 0.0,
            positions: BTreeMap::new(),
            last_order_id: 0,
            last_position_id: 0,
            last_fill_ms: now_ms,
            peak_equity: cash,
            max_drawdown: 0.0,
            day_start_equity: cash,
            day: now_ms.div_euclid(86_400_000),
        }
    }
}

/// One symbol's trend.
#[derive(Debug, Clone, Copy)]
struct Trend {
    /// The short EMA.
    short: f64,
    /// The long EMA.
    long: f64,
    /// Sign of short − long at the last tick: +1, −1 or 0.
    sign: i8,
}

/// The account seen as a portfolio.
#[derive(Debug, Clone, PartialEq)]
pub struct Portfolio<'a> {
    /// Open positions by symbol.
    pub positions: &'a BTreeMap<String, Position>,
    /// Realised plus unrealised pnl.
    pub total_pnl: f64,
    /// Realised pnl.
    pub realized_pnl: f64,
    /// Unrealised pnl.
    pub unrealized_pnl: f64,
    /// Cash plus positions at market.
    pub equity: f64,
    /// Cash.
    pub balance: f64,
    /// Equity change since the UTC day began.
    pub daily_pnl: f64,
}

/// The account's risk figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Risk {
    /// Cash plus positions at market.
    pub equity: f64,
    /// Positions at market.
    pub exposure: f64,
    /// Exposure in percent of equity.
    pub exposure_percent: f64,
    /// Open positions.
    pub open_positions: usize,
    /// Equity below its peak, a negative fraction (0 at the peak).
    pub current_drawdown: f64,
    /// The deepest drawdown seen, a negative fraction.
    pub max_drawdown: f64,
    /// The largest position in percent of equity.
    pub largest_position_percent: f64,
}

/// The paper-trading account: state, settings and trends.
#[derive(Debug, Clone)]
pub struct PaperAccount {
    /// Cash, notional, EMA lengths, the idle rule.
    settings: PaperSettings,
    /// What a fleet stores.
    state: AccountState,
    /// Each symbol's EMAs, rebuilt from the ticks (not stored).
    trends: BTreeMap<String, Trend>,
}

impl PaperAccount {
    /// An account resuming `state` (or fresh, from the settings' cash).
    pub fn new(settings: PaperSettings, state: AccountState) -> Self {
        PaperAccount {
            settings,
            state,
            trends: BTreeMap::new(),
        }
    }

    /// The persistent state.
    pub fn state(&self) -> &AccountState {
        &self.state
    }

    /// Puts back an earlier state (a fill that could not be stored), keeping
    /// the trends.
    pub fn restore(&mut self, state: AccountState) {
        self.state = state;
    }

    /// Feeds one tick of `symbol` at `now_ms`. `fractional`: the instrument
    /// trades in fractions (crypto), else in whole shares. Returns the
    /// signal the tick raised, with its fill when it executed.
    pub fn on_tick(
        &mut self,
        symbol: &str,
        price: f64,
        fractional: bool,
        now_ms: i64,
    ) -> Option<(Signal, Option<Fill>)> {
        if !(price.is_finite() && price > 0.0) {
            return None;
        }
        if let Some(position) = self.state.positions.get_mut(symbol) {
            position.market_price = price;
        }
        self.mark(now_ms);
        let (sign, gap) = self.update_trend(symbol, price)?;
        let crossed = sign.0 != 0 && sign.1 != 0 && sign.0 != sign.1;
        let side = if crossed {
            if sign.1 > 0 { Side::Buy } else { Side::Sell }
        } else if now_ms - self.state.last_fill_ms >= self.settings.idle_after_ms {
            let held = self.state.positions.contains_key(symbol);
            let affordable = self.state.cash >= self.buy_quantity(price, fractional) * price
                && self.buy_quantity(price, fractional) > 0.0;
            if held && (sign.1 < 0 || !affordable) {
                Side::Sell
            } else if affordable {
                Side::Buy
            } else {
                return None;
            }
        } else {
            return None;
        };
        let confidence = 0.5 + 0.49 * (gap / price / 0.002).tanh();
        let quantity = match (side, self.state.positions.get(symbol)) {
            (Side::Sell, Some(position)) => position.quantity,
            _ => self.buy_quantity(price, fractional),
        };
        let signal = Signal {
            symbol: symbol.to_string(),
            side,
            price,
            quantity,
            confidence: (confidence * 100.0).round() / 100.0,
        };
        let fill = self.execute(&signal, now_ms);
        Some((signal, fill))
    }

    /// Updates the symbol's EMAs; returns the sign of short − long before
    /// and after, with the gap's size, or `None` on its first tick.
    fn update_trend(&mut self, symbol: &str, price: f64) -> Option<((i8, i8), f64)> {
        let alpha = |ticks: u32| 2.0 / (f64::from(ticks) + 1.0);
        let (short_alpha, long_alpha) = (
            alpha(self.settings.short_ticks),
            alpha(self.settings.long_ticks),
        );
        let Some(trend) = self.trends.get_mut(symbol) else {
            self.trends.insert(
                symbol.to_string(),
                Trend {
                    short: price,
                    long: price,
                    sign: 0,
                },
            );
            return None;
        };
        trend.short += short_alpha * (price - trend.short);
        trend.long += long_alpha * (price - trend.long);
        let gap = trend.short - trend.long;
        let sign = if gap > 0.0 {
            1
        } else if gap < 0.0 {
            -1
        } else {
            0
        };
        let before = trend.sign;
        if sign != 0 {
            trend.sign = sign;
        }
        Some(((before, sign), gap.abs()))
    }

    fn buy_quantity(&self, price: f64, fractional: bool) -> f64 {
        let raw = self.settings.notional / price;
        if fractional {
            (raw * 10_000.0).floor() / 10_000.0
        } else {
            raw.floor()
        }
    }

    fn execute(&mut self, signal: &Signal, now_ms: i64) -> Option<Fill> {
        let state = &mut self.state;
        let (position, change, realized) = match signal.side {
            Side::Buy => {
                let cost = signal.quantity * signal.price;
                if signal.quantity <= 0.0 || cost > state.cash {
                    return None;
                }
                state.cash -= cost;
                let change = match state.positions.get_mut(&signal.symbol) {
                    Some(position) => {
                        let quantity = position.quantity + signal.quantity;
                        position.average_price =
                            (position.average_price * position.quantity + cost) / quantity;
                        position.quantity = quantity;
                        position.market_price = signal.price;
                        PositionChange::Modify
                    }
                    None => {
                        state.last_position_id += 1;
                        state.positions.insert(
                            signal.symbol.clone(),
                            Position {
                                position_id: state.last_position_id,
                                symbol: signal.symbol.clone(),
                                quantity: signal.quantity,
                                average_price: signal.price,
                                market_price: signal.price,
                                opened_at_ms: now_ms,
                            },
                        );
                        PositionChange::Open
                    }
                };
                (state.positions[&signal.symbol].clone(), change, None)
            }
            Side::Sell => {
                let mut position = state.positions.remove(&signal.symbol)?;
                position.market_price = signal.price;
                let pnl = (signal.price - position.average_price) * position.quantity;
                state.cash += signal.price * position.quantity;
                state.realized_pnl += pnl;
                (position, PositionChange::Close, Some(pnl))
            }
        };
        state.last_order_id += 1;
        state.last_fill_ms = now_ms;
        let fill = Fill {
            order_id: state.last_order_id,
            quantity: match signal.side {
                Side::Buy => signal.quantity,
                Side::Sell => position.quantity,
            },
            position,
            side: signal.side,
            price: signal.price,
            change,
            realized_pnl: realized,
        };
        self.mark(now_ms);
        Some(fill)
    }

    /// Tracks the equity's peak, drawdown and the day's start.
    fn mark(&mut self, now_ms: i64) {
        let equity = self.equity();
        let state = &mut self.state;
        let day = now_ms.div_euclid(86_400_000);
        if day != state.day {
            state.day = day;
            state.day_start_equity = equity;
        }
        state.peak_equity = state.peak_equity.max(equity);
        if state.peak_equity > 0.0 {
            state.max_drawdown = state.max_drawdown.min(equity / state.peak_equity - 1.0);
        }
    }

    fn exposure(&self) -> f64 {
        self.state
            .positions
            .values()
            .map(Position::market_value)
            .sum()
    }

    /// Cash plus positions at market.
    pub fn equity(&self) -> f64 {
        self.state.cash + self.exposure()
    }

    /// The account as a portfolio.
    pub fn portfolio(&self) -> Portfolio<'_> {
        let unrealized: f64 = self
            .state
            .positions
            .values()
            .map(Position::unrealized_pnl)
            .sum();
        let equity = self.equity();
        Portfolio {
            positions: &self.state.positions,
            total_pnl: self.state.realized_pnl + unrealized,
            realized_pnl: self.state.realized_pnl,
            unrealized_pnl: unrealized,
            equity,
            balance: self.state.cash,
            daily_pnl: equity - self.state.day_start_equity,
        }
    }

    /// The account's risk figures.
    pub fn risk(&self) -> Risk {
        let equity = self.equity();
        let exposure = self.exposure();
        let percent = |x: f64| {
            if equity > 0.0 {
                x / equity * 100.0
            } else {
                0.0
            }
        };
        let largest = self
            .state
            .positions
            .values()
            .map(Position::market_value)
            .fold(0.0, f64::max);
        Risk {
            equity,
            exposure,
            exposure_percent: percent(exposure),
            open_positions: self.state.positions.len(),
            current_drawdown: if self.state.peak_equity > 0.0 {
                (equity / self.state.peak_equity - 1.0).min(0.0)
            } else {
                0.0
            },
            max_drawdown: self.state.max_drawdown,
            largest_position_percent: percent(largest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> PaperAccount {
        let settings = PaperSettings::default();
        PaperAccount::new(settings, AccountState::new(settings.cash, 0))
    }

    #[test]
    fn an_upward_cross_buys_whole_shares_and_a_downward_one_closes_the_position() {
        let mut account = account();
        let mut t = 0;
        let mut tick = |account: &mut PaperAccount, price| {
            t += 1000;
            account.on_tick("AAPL", price, false, t)
        };
        assert_eq!(
            tick(&mut account, 100.0),
            None,
            "the first tick seeds the EMAs"
        );
        assert_eq!(tick(&mut account, 99.0), None, "the first sign is no cross");
        let (signal, fill) = tick(&mut account, 110.0).expect("an upward cross");
        assert_eq!(signal.side, Side::Buy);
        assert!((0.5..=0.99).contains(&signal.confidence));
        let fill = fill.expect("cash covers it");
        assert_eq!(fill.quantity, 90.0, "10,000 / 110, whole shares");
        assert_eq!(fill.change, PositionChange::Open);
        assert_eq!(fill.order_id, 1);
        assert_eq!(account.state().cash, 100_000.0 - 90.0 * 110.0);
        let (signal, fill) = loop {
            if let Some(hit) = tick(&mut account, 90.0) {
                break hit;
            }
        };
        assert_eq!(signal.side, Side::Sell);
        let fill = fill.expect("held, so it fills");
        assert_eq!(fill.change, PositionChange::Close);
        assert_eq!(fill.quantity, 90.0);
        assert_eq!(fill.realized_pnl, Some(-1800.0));
        assert!(account.state().positions.is_empty());
        assert_eq!(account.state().cash, 100_000.0 - 1800.0);
        assert_eq!(account.portfolio().total_pnl, -1800.0);
        assert!(account.risk().max_drawdown < 0.0);
    }

    #[test]
    fn a_sell_without_a_position_is_a_signal_without_a_fill_and_crypto_trades_fractions() {
        let mut account = account();
        account.on_tick("BTC-USD", 95_000.0, true, 1);
        account.on_tick("BTC-USD", 96_000.0, true, 2);
        let (signal, fill) = account.on_tick("BTC-USD", 90_000.0, true, 3).unwrap();
        assert_eq!(signal.side, Side::Sell);
        assert_eq!(fill, None);
        let (_, fill) = account.on_tick("BTC-USD", 99_000.0, true, 4).unwrap();
        assert_eq!(
            fill.unwrap().quantity,
            0.101,
            "10,000 / 99,000 to 4 decimals"
        );
    }

    #[test]
    fn a_second_buy_averages_the_price() {
        let mut account = account();
        let mut state = account.state().clone();
        state.positions.insert(
            "A".into(),
            Position {
                position_id: 1,
                symbol: "A".into(),
                quantity: 100.0,
                average_price: 100.0,
                market_price: 100.0,
                opened_at_ms: 0,
            },
        );
        state.last_position_id = 1;
        account = PaperAccount::new(PaperSettings::default(), state);
        account.on_tick("A", 100.0, false, 1);
        account.on_tick("A", 99.0, false, 2);
        let (_, fill) = account.on_tick("A", 125.0, false, 3).unwrap();
        let fill = fill.unwrap();
        assert_eq!(fill.change, PositionChange::Modify);
        assert_eq!(fill.position.quantity, 180.0);
        assert_eq!(
            fill.position.average_price,
            (10_000.0 + 80.0 * 125.0) / 180.0
        );
        assert_eq!(fill.position.position_id, 1);
    }

    /// The activity guarantee: whatever the random walk, with one tick a
    /// second on a few symbols, no 30 s pass without a signal and a fill.
    #[test]
    fn any_random_walk_signals_and_fills_at_least_every_30_seconds() {
        let symbols = ["AAPL", "MSFT", "BTC-USD"];
        for seed in 0..300 {
            let key = crate::rng::key(seed, "paper");
            let mut account = account();
            let mut prices = [190.0, 420.0, 95_000.0];
            let (mut last_signal, mut last_fill) = (0i64, 0i64);
            for second in 1..=1_800i64 {
                let now = second * 1000;
                let i = (second % 3) as usize;
                let step = crate::rng::normal(key, second as u64) * 0.0015;
                prices[i] *= 1.0 + step;
                if let Some((_, fill)) =
                    account.on_tick(symbols[i], prices[i], symbols[i].ends_with("-USD"), now)
                {
                    last_signal = now;
                    if fill.is_some() {
                        last_fill = now;
                    }
                }
                assert!(
                    now - last_signal <= 30_000,
                    "seed {seed}: no signal by {now}"
                );
                assert!(now - last_fill <= 30_000, "seed {seed}: no fill by {now}");
            }
        }
    }

    #[test]
    fn state_round_trips_and_bad_prices_are_ignored() {
        let mut account = account();
        assert_eq!(account.on_tick("A", f64::NAN, false, 1), None);
        assert_eq!(account.on_tick("A", -1.0, false, 1), None);
        assert!(account.trends.is_empty());
        let copy = PaperAccount::new(PaperSettings::default(), account.state().clone());
        assert_eq!(copy.state(), account.state());
    }
}
