//! The backtest engine against its peer, backtesting.py, in the same run:
//! the SMA crossover (10/20, reversing, the whole balance, no commission, a
//! balance so large the account never runs dry: every cross trades) on
//! 1,000,000 generated one-minute bars of BTC-USD, unpaced. The engine's
//! time is the best of several runs; backtesting.py's (`bench/backtest_peer.py`,
//! `Backtest.run()` only, data already loaded) the best of `PEER_RUNS`
//! (default 1: it takes about a minute). Prints both, the ratio, and both
//! trade counts (they must agree). Needs python3 with `backtesting`.
//!
//!     cargo bench --bench engine
//!     BARS=100000 PEER_RUNS=3 cargo bench --bench engine

use std::hint::black_box;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use engine::calendar::parse_date;
use engine::data::Generator;
use engine::run::{Account, FinalFill, Run, Sizing};
use engine::strategy::SmaCross;
use engine::{Bar, Timeframe};

fn main() {
    let bars_wanted: usize = env_or("BARS", 1_000_000);
    let peer_runs: usize = env_or("PEER_RUNS", 1);
    let started = Instant::now();
    // BTC-USD trades around the clock: a day is 1,440 one-minute bars.
    let from = parse_date("2022-01-01").expect("a date");
    let days = bars_wanted.div_ceil(1_440) as i64;
    let mut bars =
        Generator { seed: 2024 }.bars("BTC-USD", Timeframe::M1, from, from + days * 86_400);
    bars.truncate(bars_wanted);
    println!("generated {} bars in {:.2?}", bars.len(), started.elapsed());

    let (ours, trades) = best_engine_run(&bars, 5);
    println!(
        "roomcast engine: {:.2?} ({:.1} ns/bar), {trades} trades",
        ours,
        ours.as_nanos() as f64 / bars.len() as f64
    );

    let csv = write_csv(&bars);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/backtest_peer.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(csv.path())
        .arg(peer_runs.to_string())
        .output()
        .expect("python3 runs");
    if !output.status.success() {
        eprintln!(
            "backtesting.py failed (pip install backtesting): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::process::exit(1);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace();
    let theirs: f64 = fields.next().and_then(|s| s.parse().ok()).expect("seconds");
    let their_trades: usize = fields.next().and_then(|s| s.parse().ok()).expect("trades");
    println!("backtesting.py:  {theirs:.2} s, {their_trades} trades");
    println!("ratio: {:.0}x", theirs / ours.as_secs_f64());
    if their_trades != trades {
        eprintln!("trade counts differ: {trades} vs {their_trades}");
        std::process::exit(1);
    }
}

/// The best of `runs` engine runs over `bars`, with its trade count.
fn best_engine_run(bars: &[Bar], runs: usize) -> (Duration, usize) {
    let account = Account {
        initial_balance: 1_000_000_000_000.0,
        commission: 0.0,
        sizing: Sizing::Equity(1.0),
        lot: 1.0,
        final_fill: FinalFill::LastOpen,
    };
    let mut best = Duration::MAX;
    let mut trades = 0;
    for _ in 0..runs {
        let strategy = SmaCross {
            fast: 10,
            slow: 20,
            stop_atr: None,
            targets_r: vec![],
        };
        let bars = bars.to_vec();
        let started = Instant::now();
        let mut run = Run::new(bars, strategy, account);
        run.finish();
        best = best.min(started.elapsed());
        trades = black_box(run.trades().len());
    }
    (best, trades)
}

/// The bars as the peer reads them, in a temporary file.
fn write_csv(bars: &[Bar]) -> TempCsv {
    let path = std::env::temp_dir().join(format!("roomcast-bench-bars-{}.csv", std::process::id()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("temp file"));
    writeln!(out, "timestamp,open,high,low,close,volume").expect("write");
    for b in bars {
        // Shortest round-trip formatting: the peer reads the same f64s.
        writeln!(
            out,
            "{},{:?},{:?},{:?},{:?},{:?}",
            b.time, b.open, b.high, b.low, b.close, b.volume
        )
        .expect("write");
    }
    out.flush().expect("flush");
    TempCsv(path)
}

/// A file removed when dropped.
struct TempCsv(std::path::PathBuf);

impl TempCsv {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempCsv {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
