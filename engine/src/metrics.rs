//! A run's results, computed once from its trades and equity curve; each
//! seed renders them in its own units (percent or fraction). Every figure is
//! finite: a ratio whose denominator is zero has a documented value instead
//! of NaN or infinity (`profit_factor` is `None`, sent as `null`, when
//! something won and nothing lost).

use crate::run::Trade;

/// The results of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Closed trades.
    pub total_trades: usize,
    /// Trades whose `pnl`, rounded to cents as sent, is above zero.
    pub winning_trades: usize,
    /// The others (breakeven counts as losing).
    pub losing_trades: usize,
    /// `winning_trades / total_trades` (0 without trades).
    pub win_rate: f64,
    /// Gross profit over gross loss: 0 when nothing won, `None` when
    /// something won and nothing lost (unbounded).
    pub profit_factor: Option<f64>,
    /// Final equity over the initial balance, minus one (a fraction).
    pub total_return: f64,
    /// Largest fall of equity from a peak, as a negative fraction (0 if none).
    pub max_drawdown: f64,
    /// Annualised Sharpe ratio of per-bar equity returns (risk-free rate 0).
    pub sharpe_ratio: f64,
    /// Mean R multiple (pnl ÷ the trade's initial risk to its stop) of the
    /// winners; trades without a stop have no R and are left out; 0 when
    /// there are none.
    pub average_win: f64,
    /// The same for the losers (≤ 0).
    pub average_loss: f64,
    /// The best winner, in R multiples (0 when there is none).
    pub largest_win: f64,
    /// The worst loser, in R multiples (0 when there is none).
    pub largest_loss: f64,
    /// Every commission paid.
    pub total_commissions: f64,
    /// Equity at the end.
    pub final_equity: f64,
}

/// `value` rounded to cents, as `pnl` is sent.
pub fn cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Computes the metrics of `trades` and `equity` (equity at each bar's
/// close) for a run that started with `initial`; `bars_per_year`
/// annualises the Sharpe ratio.
pub fn compute(trades: &[Trade], equity: &[f64], initial: f64, bars_per_year: f64) -> Metrics {
    let (wins, losses): (Vec<&Trade>, Vec<&Trade>) =
        trades.iter().partition(|t| cents(t.pnl) > 0.0);
    // Sums of the pnl as sent, so a +0.004 "loser" cannot make the loss negative.
    let gross_win: f64 = wins.iter().map(|t| cents(t.pnl)).sum();
    let gross_loss: f64 = -losses.iter().map(|t| cents(t.pnl)).sum::<f64>();
    let r_multiples = |ts: &[&Trade]| -> Vec<f64> {
        ts.iter()
            .filter_map(|t| Some(finite(cents(t.pnl) / t.position.risk()?)))
            .collect()
    };
    let (win_r, loss_r) = (r_multiples(&wins), r_multiples(&losses));
    let mean = |rs: &[f64]| ratio(rs.iter().sum(), rs.len() as f64);
    let profit_factor = if gross_loss > 0.0 {
        Some(finite(gross_win / gross_loss))
    } else if gross_win > 0.0 {
        None
    } else {
        Some(0.0)
    };
    let final_equity = equity.last().copied().unwrap_or(initial);
    Metrics {
        total_trades: trades.len(),
        winning_trades: wins.len(),
        losing_trades: losses.len(),
        win_rate: ratio(wins.len() as f64, trades.len() as f64),
        profit_factor,
        total_return: finite(ratio(final_equity, initial) - 1.0),
        max_drawdown: max_drawdown(equity, initial),
        sharpe_ratio: sharpe(equity, initial, bars_per_year),
        average_win: mean(&win_r),
        average_loss: mean(&loss_r),
        largest_win: win_r.iter().copied().fold(0.0, f64::max),
        largest_loss: loss_r.iter().copied().fold(0.0, f64::min),
        total_commissions: trades.iter().map(|t| t.commission).sum(),
        final_equity,
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { finite(a / b) }
}

fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// The current drawdown at each point of `equity` is `equity / peak − 1`;
/// the largest is returned (≤ 0).
pub fn max_drawdown(equity: &[f64], initial: f64) -> f64 {
    let mut peak = initial;
    let mut worst: f64 = 0.0;
    for &e in equity {
        peak = peak.max(e);
        worst = worst.min(drawdown(e, peak));
    }
    worst
}

/// `equity / peak − 1` (≤ 0; 0 when the peak is not positive).
pub fn drawdown(equity: f64, peak: f64) -> f64 {
    if peak > 0.0 {
        finite((equity / peak - 1.0).min(0.0))
    } else {
        0.0
    }
}

/// Mean over standard deviation of per-bar returns, times √bars_per_year.
fn sharpe(equity: &[f64], initial: f64, bars_per_year: f64) -> f64 {
    let mut previous = initial;
    let returns: Vec<f64> = equity
        .iter()
        .map(|&e| {
            let r = ratio(e - previous, previous);
            previous = e;
            r
        })
        .collect();
    if returns.len() < 2 {
        return 0.0;
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let variance = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    finite(ratio(mean, variance.sqrt()) * bars_per_year.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{ExitReason, Position};
    use crate::strategy::{Direction, Entry};

    /// A trade of one unit bought at 1.0 with its stop at 0.5 (risk 0.5).
    fn trade(pnl: f64) -> Trade {
        Trade {
            position: Position {
                id: 1,
                entry: Entry {
                    direction: Direction::Long,
                    risk: Some(0.5),
                    targets_r: vec![],
                    trail: false,
                    confidence: 0.5,
                    rationale: String::new(),
                },
                entry_index: 0,
                entry_time: 0,
                entry_price: 1.0,
                quantity: 1.0,
                stop: Some(0.5),
                targets: vec![],
                trailed: 0,
                entry_commission: 0.5,
                mfe: 0.0,
                mae: 0.0,
            },
            exit_index: 1,
            exit_time: 60,
            exit_price: 1.0,
            reason: ExitReason::Signal,
            pnl,
            commission: 1.0,
        }
    }

    #[test]
    fn winners_are_counted_on_the_rounded_pnl_and_breakeven_loses() {
        let trades = [trade(10.0), trade(0.004), trade(-5.0), trade(0.006)];
        let m = compute(&trades, &[10_005.0], 10_000.0, 252.0);
        assert_eq!(
            (m.total_trades, m.winning_trades, m.losing_trades),
            (4, 2, 2)
        );
        assert_eq!(m.win_rate, 0.5);
        // On the pnl as sent: wins 10.00 + 0.01, losses 0.00 + 5.00.
        assert!((m.profit_factor.unwrap() - 10.01 / 5.0).abs() < 1e-12);
        // In R multiples of the 0.5 risk.
        assert_eq!((m.largest_win, m.largest_loss), (20.0, -10.0));
        assert!((m.average_win - (20.0 + 0.02) / 2.0).abs() < 1e-12);
        assert_eq!(m.total_commissions, 4.0);
        assert!((m.total_return - 0.0005).abs() < 1e-12);
    }

    #[test]
    fn empty_and_one_sided_runs_give_finite_figures() {
        let none = compute(&[], &[], 10_000.0, 252.0);
        assert_eq!(
            (none.win_rate, none.profit_factor, none.sharpe_ratio),
            (0.0, Some(0.0), 0.0)
        );
        assert_eq!(none.final_equity, 10_000.0);
        let only_wins = compute(&[trade(3.0)], &[10_003.0], 10_000.0, 252.0);
        assert_eq!(only_wins.profit_factor, None);
        // Tiny positive pnls sent as 0.00 are losses, and never a negative loss.
        let dust = compute(&[trade(0.004), trade(0.003)], &[10_000.0], 10_000.0, 252.0);
        assert_eq!((dust.losing_trades, dust.profit_factor), (2, Some(0.0)));
        assert_eq!(dust.average_loss, 0.0);
        // A flat curve has no deviation: Sharpe 0, not NaN.
        let flat = compute(&[], &[100.0, 100.0, 100.0], 100.0, 252.0);
        assert_eq!(flat.sharpe_ratio, 0.0);
        let broke = compute(&[], &[0.0, 0.0], 0.0, 252.0);
        assert!(broke.total_return.is_finite() && broke.max_drawdown.is_finite());
    }

    #[test]
    fn drawdown_is_measured_from_the_running_peak() {
        assert!((max_drawdown(&[110.0, 99.0, 120.0, 108.0], 100.0) + 0.1).abs() < 1e-12);
        assert_eq!(max_drawdown(&[101.0, 102.0], 100.0), 0.0);
    }
}
