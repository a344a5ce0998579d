//! The compact latency histogram kept with every rollup minute, so that chart buckets wider
//! than a minute can merge minutes and still estimate percentiles.
//!
//! Buckets are log-spaced, eight per doubling: bucket 0 holds latencies below 1 ms, bucket
//! `i ≥ 1` holds `[2^((i-1)/8), 2^(i/8))` ms, the last bucket [`MAX_BUCKET`] also holding everything above ≈ 8.5 hours.
//! A percentile read from the histogram is the geometric middle of its bucket, clamped to the
//! exact minimum and maximum, so it is within about ±4.4 % of the exact value (or, below
//! 1 ms, within the exact range). Stored as JSON `[[bucket, count], …]`, non-empty buckets
//! only, ascending.

use std::collections::BTreeMap;

/// Buckets per doubling of latency.
const PER_DOUBLING: f64 = 8.0;
/// The last bucket; larger latencies are counted in it.
pub(super) const MAX_BUCKET: u16 = 200;

/// Latency counts by log-spaced bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Histogram {
    counts: BTreeMap<u16, i64>,
}

impl Histogram {
    /// The bucket of a latency in milliseconds (non-finite or negative values count as 0).
    pub(super) fn bucket(ms: f64) -> u16 {
        if ms.is_nan() || ms < 1.0 {
            return 0;
        }
        let i = 1.0 + (ms.log2() * PER_DOUBLING).floor();
        if i >= f64::from(MAX_BUCKET) {
            MAX_BUCKET
        } else {
            i as u16
        }
    }

    /// The value reported for a bucket: the geometric middle of its range (0.5 ms for 0).
    pub(super) fn representative(bucket: u16) -> f64 {
        if bucket == 0 {
            0.5
        } else {
            ((f64::from(bucket) - 0.5) / PER_DOUBLING).exp2()
        }
    }

    /// Counts one latency.
    pub(super) fn add(&mut self, ms: f64) {
        *self.counts.entry(Self::bucket(ms)).or_insert(0) += 1;
    }

    /// Adds every count of `other`.
    pub(super) fn merge(&mut self, other: &Histogram) {
        for (b, c) in &other.counts {
            *self.counts.entry(*b).or_insert(0) += c;
        }
    }

    /// Number of latencies counted.
    pub(super) fn count(&self) -> i64 {
        self.counts.values().sum()
    }

    /// Nearest-rank estimate of quantile `q` (0..=1), clamped to `[min, max]`.
    pub(super) fn quantile(&self, q: f64, min: f64, max: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = rank(q, n);
        let mut seen = 0;
        for (b, c) in &self.counts {
            seen += c;
            if seen >= rank {
                return Some(Self::representative(*b).clamp(min.min(max), max.max(min)));
            }
        }
        Some(max)
    }

    /// The JSON form stored in `rollups.hist`.
    pub(super) fn to_json(&self) -> String {
        let pairs: Vec<(u16, i64)> = self.counts.iter().map(|(b, c)| (*b, *c)).collect();
        serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_string())
    }

    /// Parses the stored JSON form.
    pub(super) fn from_json(s: &str) -> Result<Histogram, String> {
        let pairs: Vec<(u16, i64)> = serde_json::from_str(s).map_err(|e| e.to_string())?;
        let mut h = Histogram::default();
        for (b, c) in pairs {
            if b > MAX_BUCKET || c < 0 {
                return Err(format!("bucket {b} with count {c} out of range"));
            }
            *h.counts.entry(b).or_insert(0) += c;
        }
        Ok(h)
    }
}

/// The 1-based nearest rank of quantile `q` among `n` values.
fn rank(q: f64, n: i64) -> i64 {
    ((q * n as f64).ceil() as i64).clamp(1, n)
}

/// Exact nearest-rank quantile of ascending `sorted` values.
pub(super) fn exact_quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let r = rank(q, sorted.len() as i64);
    sorted.get((r - 1) as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log_spaced() {
        assert_eq!(Histogram::bucket(0.0), 0);
        assert_eq!(Histogram::bucket(-3.0), 0);
        assert_eq!(Histogram::bucket(f64::NAN), 0);
        assert_eq!(Histogram::bucket(1.0), 1);
        assert_eq!(Histogram::bucket(2.0), 9);
        assert_eq!(Histogram::bucket(f64::INFINITY), MAX_BUCKET);
        for v in [1.0, 3.7, 42.0, 250.0, 999.9, 30_000.0] {
            let r = Histogram::representative(Histogram::bucket(v));
            assert!((r - v).abs() / v < 0.045, "{v} -> {r}");
        }
    }

    #[test]
    fn quantiles_merge_and_round_trip() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for v in 1..=50 {
            a.add(f64::from(v));
        }
        for v in 51..=100 {
            b.add(f64::from(v));
        }
        a.merge(&b);
        assert_eq!(a.count(), 100);
        let p50 = a.quantile(0.5, 1.0, 100.0).unwrap();
        assert!((p50 - 50.0).abs() / 50.0 < 0.045, "{p50}");
        let p99 = a.quantile(0.99, 1.0, 100.0).unwrap();
        assert!((p99 - 99.0).abs() / 99.0 < 0.045, "{p99}");
        let p100 = a.quantile(1.0, 1.0, 100.0).unwrap();
        assert!(p100 <= 100.0 && p100 > 95.0, "{p100}");
        assert_eq!(a.quantile(0.0, 7.0, 7.0), Some(7.0));
        let back = Histogram::from_json(&a.to_json()).unwrap();
        assert_eq!(back, a);
        assert!(Histogram::from_json("{").is_err());
        assert!(Histogram::from_json("[[999,1]]").is_err());
        assert_eq!(Histogram::default().quantile(0.5, 0.0, 0.0), None);
    }

    #[test]
    fn exact_quantiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(exact_quantile(&v, 0.5), Some(50.0));
        assert_eq!(exact_quantile(&v, 0.95), Some(95.0));
        assert_eq!(exact_quantile(&v, 0.99), Some(99.0));
        assert_eq!(exact_quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(exact_quantile(&[], 0.5), None);
    }
}
