//! Which rows of a series become the points on the wire. Pure functions, shared
//! by every store: [`even_positions`] is seed 000's intent (exactly N points
//! evenly spread by row position, first and latest always included), and
//! [`lttb`] is Largest-Triangle-Three-Buckets, the shape-preserving sampler a
//! connection can ask for with `?sampler=lttb`.

/// How many times more rows than points the LTTB sampler looks at when a series
/// is longer than that: it runs over an even preselection of
/// `points × LTTB_OVERSAMPLE` rows, keeping the database work bounded.
pub const LTTB_OVERSAMPLE: usize = 8;

/// `min(n, points)` row positions in `0..n`, strictly increasing, evenly spread:
/// position `k` is `round(k · (n−1) / (m−1))`, so the first (0) and the latest
/// (n−1) rows are always included.
pub fn even_positions(n: u64, points: usize) -> Vec<u64> {
    let m = (points as u64).min(n);
    match m {
        0 => Vec::new(),
        1 => vec![n - 1],
        _ => {
            let (span, steps) = ((n - 1) as u128, (m - 1) as u128);
            (0..m as u128)
                .map(|k| ((2 * k * span + steps) / (2 * steps)) as u64)
                .collect()
        }
    }
}

/// Largest-Triangle-Three-Buckets over `(x, y)`: the indices of `threshold`
/// points that best keep the series' visual shape, always including the first
/// and the last. Non-finite `y` values count as 0 for the area computation.
pub fn lttb(x: &[f64], y: &[f64], threshold: usize) -> Vec<usize> {
    let n = x.len().min(y.len());
    if threshold >= n || threshold < 3 {
        return if threshold >= n {
            (0..n).collect()
        } else {
            even_positions(n as u64, threshold)
                .into_iter()
                .map(|p| p as usize)
                .collect()
        };
    }
    let yv = |i: usize| if y[i].is_finite() { y[i] } else { 0.0 };
    let mut picked = Vec::with_capacity(threshold);
    picked.push(0);
    // Buckets over the inner points 1..n-1.
    let every = (n - 2) as f64 / (threshold - 2) as f64;
    let mut a = 0usize;
    for bucket in 0..threshold - 2 {
        let start = (bucket as f64 * every) as usize + 1;
        let end = (((bucket + 1) as f64 * every) as usize + 1).min(n - 1);
        // The average of the next bucket (or the last point).
        let (next_start, next_end) = (
            end,
            ((((bucket + 2) as f64) * every) as usize + 1).min(n - 1),
        );
        let (avg_x, avg_y) = if next_start < next_end {
            let len = (next_end - next_start) as f64;
            let sx: f64 = x[next_start..next_end].iter().sum();
            let sy: f64 = (next_start..next_end).map(yv).sum();
            (sx / len, sy / len)
        } else {
            (x[n - 1], yv(n - 1))
        };
        let (ax, ay) = (x[a], yv(a));
        let mut best = start;
        let mut best_area = -1.0;
        let stop = end.max(start + 1).min(n - 1);
        for (i, &xi) in x.iter().enumerate().take(stop).skip(start) {
            let area = ((ax - avg_x) * (yv(i) - ay) - (ax - xi) * (avg_y - ay)).abs();
            if area > best_area {
                best_area = area;
                best = i;
            }
        }
        picked.push(best);
        a = best;
    }
    picked.push(n - 1);
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_positions_include_first_and_last_and_are_strictly_increasing() {
        for n in [2u64, 3, 499, 500, 501, 1000, 10_000_000] {
            let p = even_positions(n, 500);
            assert_eq!(p.len() as u64, n.min(500), "n={n}");
            assert_eq!(p[0], 0);
            assert_eq!(*p.last().unwrap(), n - 1);
            assert!(p.windows(2).all(|w| w[0] < w[1]), "n={n}");
        }
    }

    #[test]
    fn even_positions_are_evenly_spread() {
        let p = even_positions(1001, 11);
        assert_eq!(p, [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
        let p = even_positions(10_000_000, 500);
        let gaps: Vec<u64> = p.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g == 20_040 || g == 20_041), "{gaps:?}");
    }

    #[test]
    fn small_groups_keep_every_row() {
        assert_eq!(even_positions(3, 500), [0, 1, 2]);
        assert_eq!(even_positions(1, 500), [0]);
        assert!(even_positions(0, 500).is_empty());
        assert_eq!(even_positions(10, 1), [9]);
    }

    #[test]
    fn lttb_keeps_a_spike_that_even_spread_misses() {
        let n = 1000;
        let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let mut y = vec![1.0; n];
        y[503] = 50.0;
        let picked = lttb(&x, &y, 20);
        assert_eq!(picked.len(), 20);
        assert_eq!(picked[0], 0);
        assert_eq!(*picked.last().unwrap(), n - 1);
        assert!(picked.contains(&503), "{picked:?}");
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
        let even = even_positions(n as u64, 20);
        assert!(!even.contains(&503));
    }

    #[test]
    fn lttb_on_short_series_keeps_everything() {
        assert_eq!(lttb(&[1.0, 2.0], &[1.0, 2.0], 500), [0, 1]);
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(lttb(&x, &x, 2), [0, 9]);
    }

    #[test]
    fn lttb_ignores_non_finite_values() {
        let x: Vec<f64> = (0..100).map(f64::from).collect();
        let mut y: Vec<f64> = x.iter().map(|v| v.sin()).collect();
        y[40] = f64::NAN;
        let picked = lttb(&x, &y, 10);
        assert_eq!(picked.len(), 10);
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
    }
}
