//! Whole runs on generated data: deterministic, consistent books, and
//! strategies that both win and lose across regimes.

use engine::calendar::{Calendar, parse_date};
use engine::data::Generator;
use engine::metrics::{self, cents};
use engine::run::{Account, FinalFill, Run, Sizing};
use engine::strategy::{Breakout, SmaCross, Strategy};
use engine::{Bar, Timeframe};

fn eurusd_2023() -> Vec<Bar> {
    Generator { seed: 2024 }.bars(
        "EURUSD",
        Timeframe::H1,
        parse_date("2023-01-01").unwrap(),
        parse_date("2024-01-01").unwrap(),
    )
}

fn account() -> Account {
    Account {
        initial_balance: 10_000.0,
        commission: 0.0004,
        sizing: Sizing::Risk(0.01),
        lot: 1_000.0,
        final_fill: FinalFill::LastClose,
    }
}

fn run<S: Strategy>(bars: Vec<Bar>, strategy: S) -> Run<S> {
    let mut run = Run::new(bars, strategy, account());
    run.finish();
    run
}

#[test]
fn the_same_request_gives_the_same_trades_to_the_bit() {
    let a = run(eurusd_2023(), SmaCross::default());
    let b = run(eurusd_2023(), SmaCross::default());
    assert_eq!(a.trades(), b.trades());
    assert_eq!(a.equity_curve(), b.equity_curve());
}

#[test]
fn the_books_balance_and_every_trade_is_well_formed() {
    for trades in [
        run(eurusd_2023(), SmaCross::default()).trades().to_vec(),
        run(eurusd_2023(), Breakout::default()).trades().to_vec(),
    ] {
        assert!(trades.len() > 20, "{} trades", trades.len());
        for pair in trades.windows(2) {
            assert!(pair[0].exit_index <= pair[1].position.entry_index);
        }
        for t in &trades {
            assert!(t.exit_index >= t.position.entry_index);
            assert!(t.position.quantity > 0.0 && t.position.quantity % 1_000.0 == 0.0);
            // The excursions bracket the gain the trade closed with.
            let gross = t.pnl + t.commission;
            assert!(t.position.mfe >= 0.0 && t.position.mfe + 1e-9 >= gross);
            assert!(t.position.mae <= 0.0 && t.position.mae - 1e-9 <= gross);
            assert!(t.pnl.is_finite() && t.commission > 0.0);
        }
    }
    // Final balance = start + every trade's net pnl (nothing is open at the end).
    let r = run(eurusd_2023(), SmaCross::default());
    let net: f64 = r.trades().iter().map(|t| t.pnl).sum();
    assert!((r.balance() - (10_000.0 + net)).abs() < 1e-6);
    assert_eq!(*r.equity_curve().last().unwrap(), r.balance());
}

#[test]
fn strategies_both_win_and_lose_and_the_metrics_are_finite() {
    let bars_per_year = Calendar::Fx.bars_per_year(Timeframe::H1);
    for (name, r) in [
        ("sma", {
            let r = run(eurusd_2023(), SmaCross::default());
            (r.trades().to_vec(), r.equity_curve().to_vec())
        }),
        ("breakout", {
            let r = run(eurusd_2023(), Breakout::default());
            (r.trades().to_vec(), r.equity_curve().to_vec())
        }),
    ]
    .map(|(n, (t, e))| (n, metrics::compute(&t, &e, 10_000.0, bars_per_year)))
    {
        assert!(r.winning_trades > 0 && r.losing_trades > 0, "{name}: {r:?}");
        assert_eq!(r.winning_trades + r.losing_trades, r.total_trades);
        for figure in [
            r.win_rate,
            r.profit_factor.unwrap_or(0.0),
            r.total_return,
            r.max_drawdown,
            r.sharpe_ratio,
            r.average_win,
            r.average_loss,
            r.total_commissions,
        ] {
            assert!(figure.is_finite(), "{name}: {r:?}");
        }
        assert!(
            r.max_drawdown < 0.0 && r.max_drawdown > -1.0,
            "{name}: {r:?}"
        );
    }
}

#[test]
fn spiced_filters_the_crossover_so_it_trades_less_and_differently_than_vanilla() {
    let vanilla = run(eurusd_2023(), engine::strategy::by_id("vanilla").unwrap());
    let spiced = run(eurusd_2023(), engine::strategy::by_id("spiced").unwrap());
    let (v, s) = (vanilla.trades().len(), spiced.trades().len());
    assert!(s > 0 && s < v, "spiced {s} trades, vanilla {v}");
    assert_ne!(vanilla.balance(), spiced.balance());
    assert_eq!(spiced.strategy().id(), "spiced");
    assert!(engine::strategy::by_id("strategy42").is_none());
}

#[test]
fn the_full_variants_trail_their_stops_and_end_differently() {
    let plain = run(eurusd_2023(), engine::strategy::by_id("spiced").unwrap());
    let full = run(
        eurusd_2023(),
        engine::strategy::by_id("spiced_full").unwrap(),
    );
    assert_ne!(plain.balance(), full.balance());
    assert!(
        full.trades()
            .iter()
            .any(|t| t.reason.label() == "trailing_stop")
    );
    let vanilla_full = run(
        eurusd_2023(),
        engine::strategy::by_id("vanilla_full").unwrap(),
    );
    assert_eq!(vanilla_full.strategy().id(), "vanilla_full");
    assert_ne!(vanilla_full.balance(), full.balance());
}

#[test]
fn winners_counted_by_the_metrics_are_the_trades_whose_sent_pnl_is_positive() {
    let r = run(eurusd_2023(), SmaCross::default());
    let m = metrics::compute(r.trades(), r.equity_curve(), 10_000.0, 6_240.0);
    let sent_positive = r.trades().iter().filter(|t| cents(t.pnl) > 0.0).count();
    assert_eq!(m.winning_trades, sent_positive);
}

#[test]
fn seed_003s_strategy1_trades_with_its_higher_timeframes_and_finite_metrics() {
    let bars = Generator { seed: 2024 }.bars(
        "BTC-USD",
        Timeframe::M15,
        parse_date("2024-01-01").unwrap(),
        parse_date("2024-04-01").unwrap(),
    );
    let mut account = account();
    account.lot = 0.0001;
    let mut first = Run::new(
        bars.clone(),
        engine::strategy::by_id("strategy1").unwrap(),
        account,
    );
    first.finish();
    let mut again = Run::new(bars, engine::strategy::by_id("strategy1").unwrap(), account);
    again.finish();
    assert_eq!(first.trades(), again.trades());
    let trades = first.trades();
    assert!(trades.len() >= 5, "{} trades", trades.len());
    assert!(
        trades
            .iter()
            .all(|t| t.position.entry.rationale.starts_with("HTF "))
    );
    let m = metrics::compute(
        trades,
        first.equity_curve(),
        10_000.0,
        Calendar::Crypto.bars_per_year(Timeframe::M15),
    );
    assert!(m.sharpe_ratio.is_finite() && m.max_drawdown <= 0.0 && m.total_return.is_finite());
}
