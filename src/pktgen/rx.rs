//! Receiver accounting: per stream, received, duplicates, reordering, loss
//! and one-way latency.

use hdrhistogram::Histogram;

/// Sequence numbers remembered for duplicate detection.
pub const WINDOW: u64 = 1 << 16;

/// Tracks the sequence numbers of one stream.
///
/// A frame whose sequence number is below the highest seen so far counts as
/// reordered (RFC 4737's "reordered" — it arrived after a later one); one
/// already seen within the last [`WINDOW`] numbers counts as a duplicate
/// (and not as received); one older than the window is counted as
/// reordered and received (it cannot be checked). 32-bit sequence numbers
/// in frames are extended to 64 bits around the highest seen.
#[derive(Clone, Debug)]
pub struct SeqTracker {
    highest: Option<u64>,
    bits: Vec<u64>,
    /// Distinct frames received.
    pub received: u64,
    /// Frames received again.
    pub duplicates: u64,
    /// Frames that arrived after one with a higher sequence number.
    pub reordered: u64,
    /// Frames too old for the duplicate window (counted as received and reordered).
    pub beyond_window: u64,
}

impl Default for SeqTracker {
    fn default() -> Self {
        SeqTracker {
            highest: None,
            bits: vec![0; (WINDOW / 64) as usize],
            received: 0,
            duplicates: 0,
            reordered: 0,
            beyond_window: 0,
        }
    }
}

impl SeqTracker {
    #[inline]
    fn bit(&mut self, s: u64) -> (usize, u64) {
        let i = (s % WINDOW) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    /// Account one frame with 32-bit sequence number `seq32`.
    #[inline]
    pub fn record(&mut self, seq32: u32) {
        let Some(h) = self.highest else {
            self.highest = Some(seq32 as u64);
            let (w, m) = self.bit(seq32 as u64);
            self.bits[w] |= m;
            self.received += 1;
            return;
        };
        let d = seq32.wrapping_sub(h as u32) as i32 as i64;
        let s = h as i64 + d;
        if s < 0 {
            self.received += 1;
            self.reordered += 1;
            self.beyond_window += 1;
            return;
        }
        let s = s as u64;
        if s > h {
            // Forget the window slots the new highest reuses.
            if s - h >= WINDOW {
                self.bits.iter_mut().for_each(|b| *b = 0);
            } else {
                for x in h + 1..s {
                    let (w, m) = self.bit(x);
                    self.bits[w] &= !m;
                }
            }
            let (w, m) = self.bit(s);
            self.bits[w] |= m;
            self.highest = Some(s);
            self.received += 1;
        } else if h - s >= WINDOW {
            self.received += 1;
            self.reordered += 1;
            self.beyond_window += 1;
        } else {
            let (w, m) = self.bit(s);
            if self.bits[w] & m != 0 {
                self.duplicates += 1;
            } else {
                self.bits[w] |= m;
                self.received += 1;
                if s < h {
                    self.reordered += 1;
                }
            }
        }
    }

    /// Frames lost of `sent`: sent minus distinct frames received.
    pub fn lost(&self, sent: u64) -> u64 {
        sent.saturating_sub(self.received)
    }
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    /// Samples recorded.
    pub samples: u64,
    /// Minimum.
    pub min_ns: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Maximum.
    pub max_ns: u64,
}

/// One-way latency of a stream in an HDR histogram (3 significant digits).
///
/// Samples are recorded in clock ticks (the receiver's hot path does no
/// float conversion) and scaled to nanoseconds when read. The default
/// records nanoseconds (1 ns … 100 s).
#[derive(Clone, Debug)]
pub struct Latency {
    /// The histogram (in ticks of `ns_per_unit` nanoseconds).
    pub hist: Histogram<u64>,
    /// Nanoseconds per recorded unit.
    pub ns_per_unit: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::in_units(1.0)
    }
}

impl Latency {
    /// A histogram of samples in units of `ns_per_unit` ns, up to 100 s.
    pub fn in_units(ns_per_unit: f64) -> Latency {
        let ns_per_unit = if ns_per_unit > 0.0 && ns_per_unit.is_finite() {
            ns_per_unit
        } else {
            1.0
        };
        let max = ((100e9 / ns_per_unit) as u64).max(1000);
        Latency {
            hist: Histogram::new_with_bounds(1, max, 3).expect("bounds above 2"),
            ns_per_unit,
        }
    }
    /// Record one sample in units (values outside the bounds are clamped).
    #[inline]
    pub fn record(&mut self, units: u64) {
        self.hist.saturating_record(units.max(1));
    }
    /// Add another histogram of the same unit (false if the units differ).
    pub fn merge(&mut self, o: &Latency) -> bool {
        if (o.ns_per_unit - self.ns_per_unit).abs() > 1e-12 * self.ns_per_unit {
            return false;
        }
        self.hist.add(&o.hist).is_ok()
    }
    #[inline]
    fn ns(&self, v: u64) -> u64 {
        (v as f64 * self.ns_per_unit).round() as u64
    }
    /// Percentiles in ns, or None without samples.
    pub fn summary(&self) -> Option<LatencySummary> {
        let h = &self.hist;
        if h.is_empty() {
            return None;
        }
        Some(LatencySummary {
            samples: h.len(),
            min_ns: self.ns(h.min()),
            mean_ns: h.mean() * self.ns_per_unit,
            p50_ns: self.ns(h.value_at_quantile(0.5)),
            p90_ns: self.ns(h.value_at_quantile(0.9)),
            p99_ns: self.ns(h.value_at_quantile(0.99)),
            p999_ns: self.ns(h.value_at_quantile(0.999)),
            max_ns: self.ns(h.max()),
        })
    }
    /// Points of the CDF: (latency ns, share of samples at or below), for plots.
    pub fn cdf(&self, points: usize) -> Vec<(u64, f64)> {
        if self.hist.is_empty() {
            return vec![];
        }
        (0..=points)
            .map(|i| {
                let q = i as f64 / points as f64;
                (self.ns(self.hist.value_at_quantile(q)), q)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(seqs: &[u32]) -> SeqTracker {
        let mut t = SeqTracker::default();
        for &s in seqs {
            t.record(s);
        }
        t
    }

    #[test]
    fn in_order_has_no_loss_dup_or_reorder() {
        let t = feed(&(0..1000).collect::<Vec<_>>());
        assert_eq!(
            (t.received, t.duplicates, t.reordered, t.lost(1000)),
            (1000, 0, 0, 0)
        );
    }

    #[test]
    fn loss_duplicates_and_reordering_are_told_apart() {
        // 0..10 sent; 3 lost, 5 duplicated, 7 and 8 swapped.
        let t = feed(&[0, 1, 2, 4, 5, 5, 6, 8, 7, 9]);
        assert_eq!(t.received, 9);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.reordered, 1, "7 arrived after 8");
        assert_eq!(t.lost(10), 1);
        // A late frame filling a gap is reordered, not a duplicate.
        let t = feed(&[0, 2, 1, 1]);
        assert_eq!((t.received, t.reordered, t.duplicates), (3, 1, 1));
    }

    #[test]
    fn sequence_numbers_wrap_at_32_bits() {
        let start = u32::MAX - 5;
        let seqs: Vec<u32> = (0..12u32).map(|i| start.wrapping_add(i)).collect();
        let t = feed(&seqs);
        assert_eq!((t.received, t.duplicates, t.reordered), (12, 0, 0));
    }

    #[test]
    fn window_slots_are_reused_without_false_duplicates() {
        let mut t = SeqTracker::default();
        for s in 0..(3 * WINDOW as u32) {
            t.record(s);
        }
        assert_eq!(t.duplicates, 0);
        // A jump beyond the window, then an old number far behind.
        t.record(10 * WINDOW as u32);
        t.record(5);
        assert_eq!(t.beyond_window, 1);
        assert_eq!(t.duplicates, 0);
        assert_eq!(t.received, 3 * WINDOW + 2);
    }

    #[test]
    fn latency_percentiles() {
        let mut l = Latency::default();
        assert!(l.summary().is_none());
        for v in 1..=1000u64 {
            l.record(v * 100);
        }
        let s = l.summary().unwrap();
        assert_eq!(s.samples, 1000);
        assert_eq!(s.min_ns, 100);
        assert!((s.p50_ns as i64 - 50_000).abs() <= 50, "{}", s.p50_ns);
        assert!((s.p99_ns as i64 - 99_000).abs() <= 100, "{}", s.p99_ns);
        assert!((s.max_ns as i64 - 100_000).abs() <= 100);
        let c = l.cdf(10);
        assert_eq!(c.len(), 11);
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0));
        // The same samples in 0.4 ns ticks (2.5 GHz) read back in ns.
        let mut t = Latency::in_units(0.4);
        for v in 1..=1000u64 {
            t.record(v * 250);
        }
        let st = t.summary().unwrap();
        assert_eq!(st.min_ns, 100);
        assert!((st.p50_ns as i64 - 50_000).abs() <= 50, "{}", st.p50_ns);
        assert!((st.mean_ns - s.mean_ns).abs() < 0.01 * s.mean_ns);
        assert!(!t.merge(&l), "different units do not merge");
        let mut t2 = Latency::in_units(0.4);
        assert!(t2.merge(&t));
        assert_eq!(t2.summary().unwrap().samples, 1000);
    }
}
