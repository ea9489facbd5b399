//! Clocks: the TSC for cycle counts, a millisecond switch clock.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

/// Read the time-stamp counter (cycles). Falls back to nanoseconds off x86_64.
#[inline(always)]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions on x86_64.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<Instant> = OnceLock::new();
        T0.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// TSC ticks per second, measured once over `ms` milliseconds.
pub fn tsc_hz(ms: u64) -> f64 {
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(Duration::from_millis(ms));
    let (c1, dt) = (tsc(), t0.elapsed());
    (c1.wrapping_sub(c0)) as f64 / dt.as_secs_f64()
}

/// The switch clock: milliseconds since the switch started.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// Start now.
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
        }
    }
    /// Nanoseconds since start.
    #[inline(always)]
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    /// Milliseconds since start.
    #[inline(always)]
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
