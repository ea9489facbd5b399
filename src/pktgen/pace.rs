//! Rate control: a per-stream schedule on the TSC.
//!
//! Frame `n` of a stream is due at `start + n × interval` ticks. At each poll
//! the generator asks [`Pacer::due`] how many frames are due now — never more
//! than the configured burst — and reports what the port took with
//! [`Pacer::sent`]. A generator that fell far behind (descheduled on a busy
//! machine) does not catch up with a long line-rate burst: the schedule is
//! moved forward and the slip is counted in [`Pacer::slips`], so the
//! measured offered rate (frames sent / time) stays honest.

/// The schedule of one stream.
#[derive(Clone, Debug)]
pub struct Pacer {
    interval: f64,
    next: f64,
    burst: usize,
    slips: u64,
}

impl Pacer {
    /// A pacer for `pps` frames per second (None = as fast as possible) with a
    /// clock of `hz` ticks per second, starting at tick `now`.
    pub fn new(pps: Option<f64>, hz: f64, burst: usize, now: u64) -> Pacer {
        Pacer {
            interval: match pps {
                Some(p) if p > 0.0 => hz / p,
                _ => 0.0,
            },
            next: now as f64,
            burst: burst.max(1),
            slips: 0,
        }
    }

    /// Ticks between frames (0 = unpaced).
    pub fn interval(&self) -> f64 {
        self.interval
    }

    /// Frames that may be sent at tick `now`, at most the burst.
    #[inline]
    pub fn due(&mut self, now: u64) -> usize {
        if self.interval == 0.0 {
            return self.burst;
        }
        let now = now as f64;
        if now < self.next {
            return 0;
        }
        let behind = (now - self.next) / self.interval;
        if behind > 4.0 * self.burst as f64 {
            // Too far behind: restart the schedule one burst back.
            self.next = now - (self.burst as f64 - 1.0) * self.interval;
            self.slips += 1;
            return self.burst;
        }
        (behind as usize + 1).min(self.burst)
    }

    /// `n` frames of those due were sent.
    #[inline]
    pub fn sent(&mut self, n: usize) {
        self.next += n as f64 * self.interval;
    }

    /// Times the schedule was moved forward because the sender fell behind.
    pub fn slips(&self) -> u64 {
        self.slips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulated clock: 1 GHz, polls every `step` ticks; counts frames over 1 s.
    fn run(pps: f64, burst: usize, step: u64) -> (u64, usize) {
        let hz = 1e9;
        let mut p = Pacer::new(Some(pps), hz, burst, 0);
        let (mut sent, mut max_burst) = (0u64, 0usize);
        let mut t = 0u64;
        while t < 1_000_000_000 {
            let n = p.due(t);
            max_burst = max_burst.max(n);
            p.sent(n);
            sent += n as u64;
            t += step;
        }
        (sent, max_burst)
    }

    #[test]
    fn pacing_accuracy_on_a_simulated_clock() {
        // Polled much faster than the rate: one frame at a time, exact count.
        let (n, b) = run(1_000_000.0, 32, 100);
        assert!((n as i64 - 1_000_000).abs() <= 1, "{n}");
        assert_eq!(b, 1);
        // Polled slower than the rate: bursts, never above the configured size.
        let (n, b) = run(10_000_000.0, 32, 2_000);
        assert!((n as i64 - 10_000_000).abs() <= 32, "{n}");
        assert_eq!(b, 20, "2 µs between polls at 10 Mpps: 20 frames due");
        let (n, b) = run(10_000_000.0, 8, 600);
        assert!(b <= 8);
        assert!((n as i64 - 10_000_000).abs() <= 8, "{n}");
        // A rate that cannot be met with this burst and poll interval: bursts stay capped.
        let (n, b) = run(100_000_000.0, 16, 1_000);
        assert_eq!(b, 16);
        assert!((n as i64 - 16_000_000).abs() <= 32, "{n}");
    }

    #[test]
    fn a_stall_slips_the_schedule_instead_of_bursting() {
        let mut p = Pacer::new(Some(1e6), 1e9, 32, 0);
        assert_eq!(p.due(0), 1);
        p.sent(1);
        // 10 ms stall: 10 000 frames late.
        let n = p.due(10_000_000);
        assert_eq!(n, 32);
        p.sent(n);
        assert_eq!(p.slips(), 1);
        // Right after, the schedule is back to one frame per µs.
        assert!(p.due(10_000_000) <= 1);
        assert_eq!(p.due(10_000_000 + 1_000), 1);
    }

    #[test]
    fn unpaced_is_always_one_burst() {
        let mut p = Pacer::new(None, 1e9, 24, 5);
        assert_eq!(p.due(0), 24);
        p.sent(24);
        assert_eq!(p.due(0), 24);
    }
}
