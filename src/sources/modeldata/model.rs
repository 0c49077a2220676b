//! Simulated AI trading models: each one's account value follows a random walk
//! with drift, and every row carries consistent return, PnL, cumulative fees
//! and trade count. The embedded store's rows and the `seed-modeldata`
//! command's generated data both come from here, so demos, tests and
//! benchmarks look like the real thing.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::protocol::modeldata::Point;

/// Every model starts with this account value.
pub const STARTING_CAPITAL: f64 = 100_000.0;

/// Model names, as in seed 000's example (`AI_Model_Alpha`, …).
pub const MODEL_NAMES: [&str; 12] = [
    "AI_Model_Alpha",
    "AI_Model_Beta",
    "AI_Model_Gamma",
    "AI_Model_Delta",
    "AI_Model_Epsilon",
    "AI_Model_Zeta",
    "AI_Model_Eta",
    "AI_Model_Theta",
    "AI_Model_Iota",
    "AI_Model_Kappa",
    "AI_Model_Lambda",
    "AI_Model_Mu",
];

/// The name of model `i` (`AI_Model_Alpha`…, then `AI_Model_13`, …).
pub fn model_name(i: usize) -> String {
    MODEL_NAMES
        .get(i)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("AI_Model_{}", i + 1))
}

/// One model's account over time.
#[derive(Debug)]
pub struct ModelWalk {
    /// Current account value.
    account_value: f64,
    /// Mean log return per row (this model's edge, positive or negative).
    drift: f64,
    /// Standard deviation of the log return per row.
    volatility: f64,
    /// Probability that a row records a trade.
    trade_rate: f64,
    /// Fees paid so far.
    fees: f64,
    /// Trades made so far.
    trades: i64,
    /// The model's own random stream.
    rng: SmallRng,
}

impl ModelWalk {
    /// Model number `index`, reproducible from `seed`.
    pub fn new(index: usize, seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9e37_79b9));
        ModelWalk {
            account_value: STARTING_CAPITAL,
            drift: rng.random_range(-0.000_02..0.000_04),
            volatility: rng.random_range(0.000_5..0.002),
            trade_rate: rng.random_range(0.1..0.6),
            fees: 0.0,
            trades: 0,
            rng,
        }
    }

    /// The next row, stamped `created_at` (epoch µs) with id `id`.
    pub fn next(&mut self, id: i64, created_at: i64) -> Point {
        // Box–Muller: one standard normal draw.
        let (u1, u2): (f64, f64) = (self.rng.random_range(f64::EPSILON..1.0), self.rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        if self.rng.random_bool(self.trade_rate) {
            self.trades += 1;
            let fee = (self.account_value * 0.000_1).max(1.0);
            self.fees += fee;
            self.account_value -= fee;
        }
        self.account_value *= (self.drift + self.volatility * z).exp();
        let round = |v: f64| (v * 100.0).round() / 100.0;
        Point {
            id,
            account_value: Some(round(self.account_value)),
            return_value: Some(((self.account_value / STARTING_CAPITAL - 1.0) * 1e6).round() / 1e6),
            total_pnl: Some(round(self.account_value - STARTING_CAPITAL)),
            fees: Some(round(self.fees)),
            trades: Some(self.trades),
            created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_consistent_and_reproducible() {
        let mut a = ModelWalk::new(0, 7);
        let mut b = ModelWalk::new(0, 7);
        let mut fees = 0.0;
        let mut trades = 0;
        for i in 0..1000 {
            let p = a.next(i, i * 1_000_000);
            assert_eq!(p, b.next(i, i * 1_000_000));
            let av = p.account_value.unwrap();
            assert!((p.total_pnl.unwrap() - (av - STARTING_CAPITAL)).abs() < 0.02);
            assert!((p.return_value.unwrap() - (av / STARTING_CAPITAL - 1.0)).abs() < 1e-5);
            assert!(p.fees.unwrap() >= fees && p.trades.unwrap() >= trades);
            fees = p.fees.unwrap();
            trades = p.trades.unwrap();
        }
        assert!(trades > 0);
        assert_ne!(
            ModelWalk::new(1, 7).next(0, 0).account_value,
            ModelWalk::new(2, 7).next(0, 0).account_value
        );
    }

    #[test]
    fn names_follow_the_seed_example_then_number() {
        assert_eq!(model_name(0), "AI_Model_Alpha");
        assert_eq!(model_name(12), "AI_Model_13");
    }
}
