//! Per-command latency histograms (INFO latencystats, LATENCY HISTOGRAM):
//! log-linear buckets over nanoseconds with two significant digits, the
//! bucket layout of an HDR histogram, so percentiles read as Redis's do.

use crate::state::Counter;

/// Values above this (one second, in ns) count as this.
const MAX_NS: u64 = 1_000_000_000;
/// Sub-buckets per power of two: 2 significant digits need 200, rounded
/// up to a power of two; the upper half is used past the first bucket.
const SUB: u64 = 256;
const HALF: u64 = SUB / 2;
/// Enough buckets to hold MAX_NS (2^30 > 1e9).
const SLOTS: usize = (HALF * (30 - 7) + SUB) as usize;

/// One command's histogram on one thread (single writer).
pub struct Histogram {
    counts: Box<[Counter]>,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: u64 = self.counts.iter().map(Counter::get).sum();
        write!(f, "Histogram({n} samples)")
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..SLOTS).map(|_| Counter::default()).collect(),
        }
    }
}

fn index(ns: u64) -> usize {
    let v = ns.clamp(1, MAX_NS);
    if v < SUB {
        return v as usize;
    }
    let k = 63 - v.leading_zeros() as u64 - 7;
    (k * HALF + (v >> k)) as usize
}

/// The largest value that lands in slot `i`.
fn highest_equivalent(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let k = (i - HALF) / HALF;
    let sub = i - k * HALF;
    (sub << k) + (1 << k) - 1
}

impl Histogram {
    pub fn record(&self, ns: u64) {
        self.counts[index(ns)].add(1);
    }

    pub fn reset(&self) {
        for c in self.counts.iter() {
            c.reset();
        }
    }
}

/// Several threads' histograms of one command, summed.
pub struct Summed {
    counts: Vec<u64>,
    pub total: u64,
}

impl Summed {
    pub fn new() -> Summed {
        Summed {
            counts: vec![0; SLOTS],
            total: 0,
        }
    }

    pub fn add(&mut self, h: &Histogram) {
        for (s, c) in self.counts.iter_mut().zip(h.counts.iter()) {
            let n = c.get();
            *s += n;
            self.total += n;
        }
    }

    /// The value (ns) at percentile `p` (0..=100).
    pub fn percentile(&self, p: f64) -> u64 {
        let want = (((p / 100.0) * self.total as f64) + 0.5) as u64;
        let want = want.max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return highest_equivalent(i);
            }
        }
        0
    }

    /// LATENCY HISTOGRAM's buckets: (upper bound in µs, cumulative count)
    /// at 1024 ns × 2^j, listing only the bounds where the count grew.
    pub fn cumulative_usec(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut level = 1024u64;
        let mut seen = 0;
        let mut slot = 0;
        let mut previous = 0;
        while seen < self.total {
            let last = index(level - 1);
            while slot <= last && slot < SLOTS {
                seen += self.counts[slot];
                slot += 1;
            }
            if seen > previous {
                out.push((highest_equivalent(last) / 1000, seen));
            }
            previous = seen;
            if slot >= SLOTS {
                break;
            }
            level *= 2;
        }
        out
    }
}

impl Default for Summed {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_have_two_significant_digits() {
        // 6000 ns lands in a 32 ns wide slot ending at 6015, as in Redis.
        assert_eq!(highest_equivalent(index(6000)), 6015);
        assert_eq!(highest_equivalent(index(255)), 255);
        assert_eq!(highest_equivalent(index(1023)), 1023);
        for v in [1u64, 300, 5_000, 123_456, 999_999_999] {
            let h = highest_equivalent(index(v));
            assert!(h >= v && (h - v) as f64 <= v as f64 / 100.0, "{v} -> {h}");
        }
        assert!(index(u64::MAX) < SLOTS);
    }

    #[test]
    fn percentiles_and_cumulative_buckets() {
        let h = Histogram::default();
        for _ in 0..99 {
            h.record(2_000);
        }
        h.record(7_000);
        let mut s = Summed::new();
        s.add(&h);
        assert_eq!(s.total, 100);
        assert_eq!(s.percentile(50.0), 2_007);
        assert_eq!(s.percentile(99.9), 7_007);
        assert_eq!(s.cumulative_usec(), vec![(2, 99), (8, 100)]);
    }
}
