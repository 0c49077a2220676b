//! One backtest run: bars in, trades and an equity curve out, one bar per
//! [`Run::step`] so the caller can pace it, pause it, cancel it and publish
//! what each bar did.
//!
//! Fills: a decision taken on a bar's close fills at the next bar's open
//! (no look-ahead). Stops and targets are checked against each bar's low
//! and high; when both are touched in one bar the stop counts first, and a
//! bar that opens beyond a level fills at its open. The first target
//! reached closes the whole position (each trade has one exit); a bar that
//! opens past several targets fills at its open and names the furthest. Commission
//! is a fraction of notional per side; a trade's `pnl` is net of both
//! commissions. A position still open after the last bar is closed at its
//! close.

use crate::bar::Bar;
use crate::strategy::{Decision, Entry, Strategy};

/// How a position is sized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sizing {
    /// Risk this fraction of the balance between entry and stop (capped at
    /// 1× leverage); a position without a stop uses the whole balance.
    Risk(f64),
    /// Put this fraction of the balance into the position.
    Equity(f64),
}

/// A run's account settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Account {
    /// Starting balance.
    pub initial_balance: f64,
    /// Commission per side, as a fraction of notional.
    pub commission: f64,
    /// Position sizing.
    pub sizing: Sizing,
    /// Quantities are whole multiples of this (1 share, 0.0001 BTC, 1,000 units of FX).
    pub lot: f64,
    /// Where a position still open after the last bar is closed.
    pub final_fill: FinalFill,
}

/// Where a position still open after the last bar is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalFill {
    /// At the last bar's close: the run's last known price (roomcast's runs).
    LastClose,
    /// At the last bar's open, as backtesting.py's `finalize_trades` does
    /// (for comparing with it).
    LastOpen,
}

/// Why a trade closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// Its stop-loss.
    StopLoss,
    /// Its stop after the trailing ladder moved it ([`crate::strategy::Entry::trail`]).
    TrailingStop,
    /// Its take-profit level `n` (1-based).
    TakeProfit(usize),
    /// The strategy's exit or reversal.
    Signal,
    /// The backtest ended with the position open.
    EndOfBacktest,
}

impl ExitReason {
    /// `stop_loss`, `trailing_stop`, `take_profit_1`, `signal`, `end_of_backtest`.
    pub fn label(self) -> String {
        match self {
            ExitReason::StopLoss => "stop_loss".into(),
            ExitReason::TrailingStop => "trailing_stop".into(),
            ExitReason::TakeProfit(n) => format!("take_profit_{n}"),
            ExitReason::Signal => "signal".into(),
            ExitReason::EndOfBacktest => "end_of_backtest".into(),
        }
    }
}

/// An open position.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// 1, 2, 3, … in the run.
    pub id: u64,
    /// What was entered.
    pub entry: Entry,
    /// Index of the bar it was filled on.
    pub entry_index: usize,
    /// That bar's open time.
    pub entry_time: i64,
    /// Fill price.
    pub entry_price: f64,
    /// Units held.
    pub quantity: f64,
    /// The stop-loss price, if any: the entry's risk from the fill.
    pub stop: Option<f64>,
    /// Take-profit prices, nearest first.
    pub targets: Vec<f64>,
    /// Ladder levels reached so far (a trailing entry's stop sits one below).
    pub trailed: usize,
    /// Commission paid on entry.
    pub entry_commission: f64,
    /// Best unrealised gain over its bars (currency, ≥ 0): quantity times
    /// the best price excursion, from bar highs (lows when short).
    pub mfe: f64,
    /// Worst unrealised loss over its bars (currency, ≤ 0).
    pub mae: f64,
}

impl Position {
    /// Gain of the position (before commissions) at `price`.
    fn gain_at(&self, price: f64) -> f64 {
        self.entry.direction.sign() * (price - self.entry_price) * self.quantity
    }

    /// The money at risk to the stop, if it has one.
    pub fn risk(&self) -> Option<f64> {
        self.entry
            .risk
            .map(|risk| risk * self.quantity)
            .filter(|r| *r > 0.0)
    }
}

/// A closed trade.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    /// The position as it was when it closed.
    pub position: Position,
    /// Index of the bar it closed on.
    pub exit_index: usize,
    /// Its exit time: the fill's bar open time, or its close for the last bar.
    pub exit_time: i64,
    /// Fill price.
    pub exit_price: f64,
    /// Why.
    pub reason: ExitReason,
    /// Gain net of both commissions.
    pub pnl: f64,
    /// Both commissions.
    pub commission: f64,
}

/// What one bar did.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The bar's index (0-based) in the run.
    pub index: usize,
    /// The bar.
    pub bar: Bar,
    /// Trades that closed on it, in order (a reversal closes then opens).
    pub exits: Vec<Trade>,
    /// A position opened on it.
    pub entry: Option<Position>,
    /// Balance after the bar (realised).
    pub balance: f64,
    /// Equity at the bar's close (balance plus the open position's gain).
    pub equity: f64,
}

/// A run in progress.
pub struct Run<S> {
    /// Every bar of the run.
    bars: Vec<Bar>,
    /// The rule.
    strategy: S,
    /// Account settings.
    account: Account,
    /// The next bar to step.
    next: usize,
    /// Realised balance.
    balance: f64,
    /// The open position.
    position: Option<Position>,
    /// What the last close decided, for this bar's open.
    pending: Decision,
    /// Closed trades, in order.
    trades: Vec<Trade>,
    /// Equity at each bar's close.
    equity: Vec<f64>,
    /// Ids handed out.
    last_id: u64,
}

impl<S: Strategy> Run<S> {
    /// A run of `strategy` over `bars` with `account`.
    pub fn new(bars: Vec<Bar>, strategy: S, account: Account) -> Self {
        Run {
            equity: Vec::with_capacity(bars.len()),
            bars,
            strategy,
            balance: account.initial_balance,
            account,
            next: 0,
            position: None,
            pending: Decision::Hold,
            trades: Vec::new(),
            last_id: 0,
        }
    }

    /// Bars in the run.
    pub fn total_bars(&self) -> usize {
        self.bars.len()
    }

    /// Bars stepped so far.
    pub fn bars_processed(&self) -> usize {
        self.next
    }

    /// Percent of the bars stepped, to one decimal, as the seeds send it:
    /// never 100 before the last bar (at most 99.9), exactly 100.0 after it,
    /// so a progress bar completes only when the run has.
    pub fn progress(&self) -> f64 {
        let total = self.bars.len();
        if self.next >= total {
            return 100.0;
        }
        ((self.next as f64 / total as f64 * 1_000.0).round() / 10.0).min(99.9)
    }

    /// The strategy.
    pub fn strategy(&self) -> &S {
        &self.strategy
    }

    /// Closed trades so far.
    pub fn trades(&self) -> &[Trade] {
        &self.trades
    }

    /// Equity at each stepped bar's close.
    pub fn equity_curve(&self) -> &[f64] {
        &self.equity
    }

    /// The realised balance.
    pub fn balance(&self) -> f64 {
        self.balance
    }

    /// The account settings.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The open time of the last bar stepped, if any.
    pub fn last_bar_time(&self) -> Option<i64> {
        self.next
            .checked_sub(1)
            .and_then(|i| self.bars.get(i))
            .map(|b| b.time)
    }

    /// The open position, if any.
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// Runs the next bar; `None` when every bar has run.
    pub fn step(&mut self) -> Option<Step> {
        let index = self.next;
        let bar = *self.bars.get(index)?;
        self.next += 1;
        let mut exits = Vec::new();
        let mut entry = None;
        match std::mem::replace(&mut self.pending, Decision::Hold) {
            Decision::Hold => {}
            Decision::Exit => {
                exits.extend(self.close(index, bar.time, bar.open, ExitReason::Signal))
            }
            Decision::Enter(e) => {
                if self.position.is_none() {
                    entry = self.open(index, &bar, e);
                }
            }
            Decision::Reverse(e) => {
                exits.extend(self.close(index, bar.time, bar.open, ExitReason::Signal));
                entry = self.open(index, &bar, e);
            }
        }
        exits.extend(self.check_levels(index, &bar));
        let last = index + 1 == self.bars.len();
        if last {
            let price = match self.account.final_fill {
                FinalFill::LastClose => bar.close,
                FinalFill::LastOpen => bar.open,
            };
            exits.extend(self.close(index, bar.time, price, ExitReason::EndOfBacktest));
        }
        let equity = self.balance + self.position.as_ref().map_or(0.0, |p| p.gain_at(bar.close));
        self.equity.push(equity);
        if !last {
            let open = self.position.as_ref().map(|p| p.entry.direction);
            self.pending = self.strategy.decide(&self.bars[..=index], open);
        }
        Some(Step {
            index,
            bar,
            exits,
            entry,
            balance: self.balance,
            equity,
        })
    }

    /// Opens `entry` at `bar`'s open, its stop and targets placed from that
    /// fill, sized by the account; nothing when the size rounds to zero or
    /// a stop would be at or beyond the fill.
    fn open(&mut self, index: usize, bar: &Bar, entry: Entry) -> Option<Position> {
        let price = bar.open;
        let s = entry.direction.sign();
        let stop = entry.risk.map(|risk| price - s * risk);
        if entry
            .risk
            .is_some_and(|risk| risk <= 0.0 || !risk.is_finite())
            || price <= 0.0
        {
            return None;
        }
        let targets = entry
            .risk
            .map(|risk| {
                entry
                    .targets_r
                    .iter()
                    .map(|r| price + s * r * risk)
                    .collect()
            })
            .unwrap_or_default();
        let affordable = self.balance / (price * (1.0 + self.account.commission));
        let wanted = match (self.account.sizing, entry.risk) {
            (Sizing::Risk(fraction), Some(risk)) => self.balance * fraction / risk,
            (Sizing::Risk(_), None) => affordable,
            (Sizing::Equity(fraction), _) => affordable * fraction,
        };
        let lot = self.account.lot;
        let quantity = (wanted.min(affordable) / lot).floor() * lot;
        if quantity.is_nan() || quantity <= 0.0 {
            return None;
        }
        let commission = price * quantity * self.account.commission;
        self.balance -= commission;
        self.last_id += 1;
        let position = Position {
            id: self.last_id,
            entry,
            entry_index: index,
            entry_time: bar.time,
            entry_price: price,
            quantity,
            stop,
            targets,
            trailed: 0,
            entry_commission: commission,
            mfe: 0.0,
            mae: 0.0,
        };
        self.position = Some(position.clone());
        Some(position)
    }

    /// Closes the open position at `price`.
    fn close(&mut self, index: usize, time: i64, price: f64, reason: ExitReason) -> Option<Trade> {
        let mut position = self.position.take()?;
        let gain = position.gain_at(price);
        position.mfe = position.mfe.max(gain);
        position.mae = position.mae.min(gain);
        let exit_commission = price * position.quantity * self.account.commission;
        self.balance += gain - exit_commission;
        let trade = Trade {
            exit_index: index,
            exit_time: time,
            exit_price: price,
            reason,
            pnl: gain - position.entry_commission - exit_commission,
            commission: position.entry_commission + exit_commission,
            position,
        };
        self.trades.push(trade.clone());
        Some(trade)
    }

    /// Checks the open position's stop, then its targets, against `bar`;
    /// otherwise records the bar's extremes as excursions.
    fn check_levels(&mut self, index: usize, bar: &Bar) -> Option<Trade> {
        let position = self.position.as_mut()?;
        let s = position.entry.direction.sign();
        let (adverse, favourable) = if s > 0.0 {
            (bar.low, bar.high)
        } else {
            (bar.high, bar.low)
        };
        // Excursions count every bar the trade lives on, its exit bar included.
        position.mae = position.mae.min(position.gain_at(adverse));
        position.mfe = position.mfe.max(position.gain_at(favourable));
        if let Some(stop) = position.stop
            && s * (adverse - stop) <= 0.0
        {
            // Touched: at the stop, or at the open when the bar opened past it.
            let fill = if s * (bar.open - stop) <= 0.0 {
                bar.open
            } else {
                stop
            };
            let reason = if position.trailed > 0 {
                ExitReason::TrailingStop
            } else {
                ExitReason::StopLoss
            };
            return self.close(index, bar.time, fill, reason);
        }
        let targets = &position.targets;
        // The levels that close the position: all of them, or only the last
        // on a trailing ladder.
        let closing = if position.entry.trail {
            targets.len().saturating_sub(1)
        } else {
            0
        };
        // A bar that opens past closing levels fills at its open, naming the
        // furthest passed; otherwise the first closing level the bar reaches.
        let reached = |price: f64| targets.iter().rposition(|&t| s * (price - t) >= 0.0);
        if let Some(n) = reached(bar.open).filter(|&n| n >= closing) {
            return self.close(index, bar.time, bar.open, ExitReason::TakeProfit(n + 1));
        }
        if let Some(n) = targets[closing.min(targets.len())..]
            .iter()
            .position(|&t| s * (favourable - t) >= 0.0)
        {
            let n = n + closing;
            let fill = targets[n];
            return self.close(index, bar.time, fill, ExitReason::TakeProfit(n + 1));
        }
        // Ladder: the stop follows the highest level reached, one below it
        // (the entry for the first), for the bars after this one.
        if position.entry.trail
            && let Some(n) = reached(favourable)
            && n + 1 > position.trailed
        {
            position.trailed = n + 1;
            position.stop = Some(if n == 0 {
                position.entry_price
            } else {
                targets[n - 1]
            });
        }
        None
    }

    /// Runs every remaining bar.
    pub fn finish(&mut self) {
        while self.step().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enters long on bar `at` (decided on the bar before) with a bracket.
    struct Scripted {
        at: usize,
        risk: Option<f64>,
        targets_r: Vec<f64>,
        trail: bool,
    }

    impl Strategy for Scripted {
        fn id(&self) -> &'static str {
            "scripted"
        }
        fn decide(&mut self, bars: &[Bar], open: Option<Direction>) -> Decision {
            if bars.len() == self.at && open.is_none() {
                Decision::Enter(Entry {
                    direction: Direction::Long,
                    risk: self.risk,
                    targets_r: self.targets_r.clone(),
                    trail: self.trail,
                    confidence: 0.7,
                    rationale: "test".into(),
                })
            } else {
                Decision::Hold
            }
        }
    }

    fn bar(i: i64, open: f64, high: f64, low: f64, close: f64) -> Bar {
        Bar {
            time: i * 60,
            open,
            high,
            low,
            close,
            volume: 1.0,
        }
    }

    fn account(commission: f64) -> Account {
        Account {
            initial_balance: 10_000.0,
            commission,
            sizing: Sizing::Risk(0.01),
            lot: 1.0,
            final_fill: FinalFill::LastClose,
        }
    }

    use crate::strategy::Direction;

    #[test]
    fn an_entry_fills_at_the_next_open_and_a_target_closes_it_whole() {
        let bars = vec![
            bar(0, 100.0, 101.0, 99.0, 100.0),
            bar(1, 100.5, 101.0, 100.0, 100.8),
            bar(2, 100.8, 103.5, 100.6, 103.0),
            bar(3, 103.0, 104.0, 102.0, 103.5),
        ];
        let strategy = Scripted {
            at: 1,
            risk: Some(2.0),
            targets_r: vec![1.25, 2.75],
            trail: false,
        };
        let mut run = Run::new(bars, strategy, account(0.001));
        let first = run.step().unwrap();
        assert!(first.entry.is_none());
        let second = run.step().unwrap();
        let position = second.entry.unwrap();
        assert_eq!(position.entry_price, 100.5);
        // 1 % of 10,000 at risk over a 2.0 stop distance: 50 units.
        assert_eq!(position.quantity, 50.0);
        let third = run.step().unwrap();
        let trade = &third.exits[0];
        assert_eq!(trade.reason, ExitReason::TakeProfit(1));
        assert_eq!(trade.exit_price, 103.0);
        let commission = 0.001 * 50.0 * (100.5 + 103.0);
        assert!((trade.pnl - (2.5 * 50.0 - commission)).abs() < 1e-9);
        assert!((trade.commission - commission).abs() < 1e-9);
        assert!((run.balance() - (10_000.0 + trade.pnl)).abs() < 1e-9);
        assert!(trade.position.mfe >= trade.pnl && trade.position.mae <= 0.0);
        run.finish();
        assert_eq!(run.trades().len(), 1);
        assert_eq!(run.equity_curve().len(), 4);
    }

    #[test]
    fn when_stop_and_target_are_both_touched_the_stop_counts_first() {
        let bars = vec![
            bar(0, 100.0, 100.0, 100.0, 100.0),
            bar(1, 100.0, 110.0, 90.0, 100.0),
        ];
        let strategy = Scripted {
            at: 1,
            risk: Some(5.0),
            targets_r: vec![1.0],
            trail: false,
        };
        let mut run = Run::new(bars, strategy, account(0.0));
        run.finish();
        let trade = &run.trades()[0];
        assert_eq!(
            (trade.reason, trade.exit_price),
            (ExitReason::StopLoss, 95.0)
        );
        // The exit bar's whole range counts as excursion: 90 and 110 on 20 units.
        assert_eq!((trade.position.mae, trade.position.mfe), (-200.0, 200.0));
    }

    #[test]
    fn stop_and_targets_are_placed_from_the_fill_so_an_opening_gap_moves_them() {
        let bars = vec![
            bar(0, 100.0, 100.0, 100.0, 100.0),
            bar(1, 100.0, 100.0, 100.0, 100.0),
            bar(2, 103.0, 103.5, 102.8, 103.2),
            bar(3, 103.2, 103.4, 103.0, 103.1),
        ];
        let strategy = Scripted {
            at: 2,
            risk: Some(2.0),
            targets_r: vec![1.0],
            trail: false,
        };
        let mut run = Run::new(bars, strategy, account(0.0));
        run.step();
        run.step();
        let step = run.step().unwrap();
        let position = step.entry.unwrap();
        // Decided at 100, filled at 103: the bracket is 101 / 105, not 98 / 102,
        // so the gap is not an instant "take profit".
        assert_eq!(
            (position.stop, position.targets.clone()),
            (Some(101.0), vec![105.0])
        );
        assert!(step.exits.is_empty());
    }

    #[test]
    fn a_trailing_ladder_moves_the_stop_up_and_only_the_last_level_closes() {
        let ladder = |bars: Vec<Bar>| {
            let strategy = Scripted {
                at: 1,
                risk: Some(2.0),
                targets_r: vec![1.0, 2.0, 3.0],
                trail: true,
            };
            let mut run = Run::new(bars, strategy, account(0.0));
            run.finish();
            run.trades()[0].clone()
        };
        let start = vec![
            bar(0, 100.0, 100.0, 100.0, 100.0),
            bar(1, 100.0, 100.5, 99.5, 100.0),
        ];
        // 102 reached (stop to the entry), then 104 (stop to 102), then back to 101.5.
        let mut bars = start.clone();
        bars.extend([
            bar(2, 100.5, 102.5, 100.2, 102.0),
            bar(3, 102.0, 104.2, 101.9, 104.0),
            bar(4, 103.0, 103.1, 101.5, 101.8),
            bar(5, 101.8, 101.9, 101.7, 101.8),
        ]);
        let trade = ladder(bars);
        assert_eq!(
            (trade.reason, trade.exit_price),
            (ExitReason::TrailingStop, 102.0)
        );
        assert_eq!(trade.reason.label(), "trailing_stop");
        // Straight to the last level: the whole position closes there.
        let mut bars = start;
        bars.extend([
            bar(2, 100.5, 103.0, 100.2, 102.8),
            bar(3, 103.0, 106.5, 102.9, 106.2),
            bar(4, 106.2, 106.3, 106.0, 106.1),
        ]);
        let trade = ladder(bars);
        assert_eq!(
            (trade.reason, trade.exit_price),
            (ExitReason::TakeProfit(3), 106.0)
        );
    }

    #[test]
    fn progress_reaches_100_only_with_the_last_bar() {
        let bars: Vec<Bar> = (0..2_000).map(|i| bar(i, 1.0, 1.0, 1.0, 1.0)).collect();
        let strategy = Scripted {
            at: usize::MAX,
            risk: None,
            targets_r: vec![],
            trail: false,
        };
        let mut run = Run::new(bars, strategy, account(0.0));
        assert_eq!(run.progress(), 0.0);
        let mut seen = Vec::new();
        while run.step().is_some() {
            seen.push(run.progress());
        }
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(seen[999], 50.0);
        assert_eq!(
            seen[1_998], 99.9,
            "1,999 of 2,000 rounds to 100.0 but is capped"
        );
        assert_eq!(*seen.last().unwrap(), 100.0);
    }

    #[test]
    fn a_bar_opening_past_several_targets_fills_at_its_open_naming_the_furthest() {
        let bars = vec![
            bar(0, 100.0, 100.0, 100.0, 100.0),
            bar(1, 100.0, 100.5, 99.5, 100.0),
            bar(2, 107.0, 108.0, 106.0, 107.5),
        ];
        let strategy = Scripted {
            at: 1,
            risk: Some(2.0),
            targets_r: vec![1.0, 2.0, 5.0],
            trail: false,
        };
        let mut run = Run::new(bars, strategy, account(0.0));
        run.finish();
        let trade = &run.trades()[0];
        assert_eq!(
            (trade.reason, trade.exit_price),
            (ExitReason::TakeProfit(2), 107.0)
        );
        assert_eq!(trade.reason.label(), "take_profit_2");
    }

    #[test]
    fn a_gap_through_the_stop_fills_at_the_open_and_the_last_bar_closes_what_is_open() {
        let bars = vec![
            bar(0, 100.0, 100.0, 100.0, 100.0),
            bar(1, 100.0, 100.5, 99.5, 100.0),
            bar(2, 90.0, 91.0, 89.0, 90.5),
        ];
        let strategy = Scripted {
            at: 1,
            risk: Some(5.0),
            targets_r: vec![],
            trail: false,
        };
        let mut run = Run::new(bars.clone(), strategy, account(0.0));
        run.finish();
        assert_eq!(run.trades()[0].exit_price, 90.0);
        let held = Scripted {
            at: 1,
            risk: None,
            targets_r: vec![],
            trail: false,
        };
        let mut run = Run::new(bars[..2].to_vec(), held, account(0.0));
        run.finish();
        let trade = &run.trades()[0];
        assert_eq!(
            (trade.reason, trade.exit_price),
            (ExitReason::EndOfBacktest, 100.0)
        );
    }

    #[test]
    fn sizes_round_down_to_the_lot_and_never_exceed_the_balance() {
        let bars = vec![
            bar(0, 100.0, 100.0, 100.0, 100.0),
            bar(1, 100.0, 100.0, 100.0, 100.0),
        ];
        let tight = Scripted {
            at: 1,
            risk: Some(0.01),
            targets_r: vec![],
            trail: false,
        };
        let mut run = Run::new(bars.clone(), tight, account(0.0));
        let position = run.step().and(run.step()).unwrap().entry.unwrap();
        // 1 % risk over 0.01 would be 10,000 units: capped at 1× leverage.
        assert_eq!(position.quantity, 100.0);
        let mut lots = account(0.0);
        lots.lot = 30.0;
        let mut run = Run::new(
            bars,
            Scripted {
                at: 1,
                risk: Some(1.0),
                targets_r: vec![],
                trail: false,
            },
            lots,
        );
        let position = run.step().and(run.step()).unwrap().entry.unwrap();
        assert_eq!(position.quantity, 90.0);
    }
}
