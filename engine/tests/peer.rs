//! Cross-checked against a peer: backtesting.py (the Python `backtesting`
//! package) runs its own SMA crossover example on its bundled GOOG bars
//! (`tests/peer/sma_cross.py`); the engine runs the same rule on the same
//! bars, configured to that library's conventions (fills at the next open,
//! the whole balance per trade in whole shares, 0.2 % commission per side,
//! reversals on the opposite cross, no stop, open trades closed at the last
//! bar's open). Every trade must match (direction, entry and exit bars and
//! prices), and the final equity be within 0.1 %.
//!
//! Needs `python3` with `backtesting` (tests/run.sh installs it).

use std::process::Command;

use engine::Bar;
use engine::run::{Account, FinalFill, Run, Sizing};
use engine::strategy::{Direction, SmaCross};

#[test]
fn the_sma_crossover_trades_exactly_as_backtesting_py_does() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer/sma_cross.py");
    let output = Command::new("python3")
        .arg(script)
        .output()
        .expect("python3 runs (tests/run.sh installs it with the backtesting package)");
    assert!(
        output.status.success(),
        "backtesting.py failed (pip install backtesting): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let peer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let bars: Vec<Bar> = peer["bars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let f = |i: usize| b[i].as_f64().unwrap();
            Bar {
                time: b[0].as_i64().unwrap(),
                open: f(1),
                high: f(2),
                low: f(3),
                close: f(4),
                volume: f(5),
            }
        })
        .collect();
    assert_eq!(bars.len(), 2_148);
    let strategy = SmaCross {
        fast: 10,
        slow: 20,
        stop_atr: None,
        targets_r: vec![],
    };
    let account = Account {
        initial_balance: 10_000.0,
        commission: 0.002,
        sizing: Sizing::Equity(1.0),
        lot: 1.0,
        final_fill: FinalFill::LastOpen,
    };
    let mut run = Run::new(bars, strategy, account);
    run.finish();

    let theirs = peer["trades"].as_array().unwrap();
    let ours = run.trades();
    assert_eq!(ours.len(), theirs.len(), "trade count");
    for (n, (mine, peer)) in ours.iter().zip(theirs).enumerate() {
        let size = peer["size"].as_i64().unwrap();
        let direction = if size > 0 {
            Direction::Long
        } else {
            Direction::Short
        };
        let got = (
            mine.position.entry.direction,
            mine.position.quantity as i64,
            mine.position.entry_index,
            mine.exit_index,
            mine.position.entry_price,
            mine.exit_price,
        );
        let want = (
            direction,
            size.abs(),
            peer["entry_bar"].as_u64().unwrap() as usize,
            peer["exit_bar"].as_u64().unwrap() as usize,
            peer["entry_price"].as_f64().unwrap(),
            peer["exit_price"].as_f64().unwrap(),
        );
        assert_eq!(got, want, "trade {n}");
        let pnl = peer["pnl"].as_f64().unwrap();
        assert!(
            (mine.pnl - pnl).abs() < 1e-6 * pnl.abs().max(1.0),
            "trade {n} pnl {} vs {pnl}",
            mine.pnl
        );
    }
    let final_equity = peer["final_equity"].as_f64().unwrap();
    let ours = *run.equity_curve().last().unwrap();
    assert!(
        (ours / final_equity - 1.0).abs() < 0.001,
        "final equity {ours} vs backtesting.py's {final_equity}"
    );
}
