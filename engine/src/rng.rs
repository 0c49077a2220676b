//! Counter-based randomness for generated data: every draw is a pure
//! function of a key and an index (SplitMix64), so any stretch of a series
//! can be generated without generating what comes before it, and the output
//! never changes with a dependency's version.

/// One SplitMix64 step: a well-mixed 64-bit value of `x`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A key for `text` under `seed` (FNV-1a over the bytes, then mixed).
pub fn key(seed: u64, text: &str) -> u64 {
    let mut hash = 0xCBF2_9CE4_8422_2325u64 ^ seed;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix(hash)
}

/// A uniform draw in [0, 1) for `(key, index)`.
pub fn uniform(key: u64, index: u64) -> f64 {
    (mix(key ^ mix(index)) >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal draw for `(key, index)` (Box–Muller on two uniforms).
pub fn normal(key: u64, index: u64) -> f64 {
    let u1 = uniform(key, index.wrapping_mul(2)).max(f64::MIN_POSITIVE);
    let u2 = uniform(key, index.wrapping_mul(2).wrapping_add(1));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_pure_functions_of_key_and_index() {
        let k = key(7, "EURUSD");
        assert_eq!(uniform(k, 42), uniform(k, 42));
        assert_ne!(uniform(k, 42), uniform(k, 43));
        assert_ne!(key(7, "EURUSD"), key(8, "EURUSD"));
        assert_ne!(key(7, "EURUSD"), key(7, "GBPUSD"));
    }

    #[test]
    fn normal_draws_have_the_moments_of_a_standard_normal() {
        let k = key(1, "x");
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|i| normal(k, i)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        assert!(draws.iter().all(|d| d.is_finite()));
    }
}
