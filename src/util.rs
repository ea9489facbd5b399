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

/// Timer slack of a worker that sleeps in its idle back-off, in nanoseconds.
pub const IDLE_TIMER_SLACK_NS: u64 = 1_000;

/// Make the calling thread's sleeps end on time: Linux lets a normal thread's
/// timers fire up to 50 µs late (its timer slack) to batch wake-ups, which
/// would double a 50 µs idle back-off and put it on every round trip through
/// an idle worker. Sets the slack to [`IDLE_TIMER_SLACK_NS`]; returns the
/// slack now in effect (`None` off Linux or when the kernel refuses).
pub fn precise_sleeps() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_TIMERSLACK / PR_GET_TIMERSLACK take plain integers and
        // only change the calling thread.
        unsafe {
            libc::prctl(
                libc::PR_SET_TIMERSLACK,
                IDLE_TIMER_SLACK_NS as libc::c_ulong,
                0,
                0,
                0,
            );
            let r = libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0);
            (r >= 0).then_some(r as u64)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// An idle worker's back-off: wait up to `timeout` for one of `fds` (the RX
/// sockets of its queues) to become readable, so a frame that arrives during
/// the back-off is handled at once instead of after the rest of the sleep.
/// With no descriptor (in-memory ports) it sleeps for `timeout`.
pub fn idle_wait(fds: &mut [IdleFd], timeout: std::time::Duration) {
    #[cfg(target_os = "linux")]
    if !fds.is_empty() {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd
        // (IdleFd is a transparent wrapper) of the given length; `ts` lives
        // across the call; a null signal mask leaves the mask unchanged. The
        // descriptors belong to queues the caller owns, open for its lifetime.
        unsafe {
            libc::ppoll(
                fds.as_mut_ptr().cast::<libc::pollfd>(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            );
        }
        return;
    }
    let _ = fds;
    std::thread::sleep(timeout);
}

/// One descriptor [`idle_wait`] watches for input.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct IdleFd(
    #[cfg(target_os = "linux")] libc::pollfd,
    #[cfg(not(target_os = "linux"))] i32,
);

impl IdleFd {
    /// Watch `fd` for input.
    pub fn new(fd: i32) -> IdleFd {
        #[cfg(target_os = "linux")]
        {
            IdleFd(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            IdleFd(fd)
        }
    }
}

/// Ask the CPU to bring the cache line at `r` into L1 ahead of its use: a
/// hint, with no effect on what the program computes. A no-op off x86_64.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only hints the cache hierarchy; it never faults,
    // and `r` is a valid reference anyway.
    #[allow(unused_unsafe)]
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// TSC ticks per second, measured once over `ms` milliseconds.
pub fn tsc_hz(ms: u64) -> f64 {
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(Duration::from_millis(ms));
    let (c1, dt) = (tsc(), t0.elapsed());
    (c1.wrapping_sub(c0)) as f64 / dt.as_secs_f64()
}

/// Nanoseconds per TSC tick, measured once per process (20 ms) against the
/// monotonic clock.
fn ns_per_tick() -> f64 {
    static NS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *NS.get_or_init(|| {
        let hz = tsc_hz(20);
        if hz.is_finite() && hz > 1e6 {
            1e9 / hz
        } else {
            1.0
        }
    })
}

/// The switch clock: time since the switch started, read from the TSC (one
/// instruction, no system call) and scaled by a once-per-process calibration.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    tsc0: u64,
    ns_per_tick: f64,
}

impl Clock {
    /// Start now.
    pub fn new() -> Self {
        let ns_per_tick = ns_per_tick();
        Clock {
            tsc0: tsc(),
            ns_per_tick,
        }
    }
    /// Nanoseconds since start at TSC reading `t` (a value of [`tsc`] taken after `new`).
    #[inline(always)]
    pub fn ns_at(&self, t: u64) -> u64 {
        (t.wrapping_sub(self.tsc0) as f64 * self.ns_per_tick) as u64
    }
    /// Nanoseconds since start.
    #[inline(always)]
    pub fn now_ns(&self) -> u64 {
        self.ns_at(tsc())
    }
    /// Milliseconds since start.
    #[inline(always)]
    pub fn now_ms(&self) -> u64 {
        self.now_ns() / 1_000_000
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The calling thread's timer slack (tests).
#[cfg(all(test, target_os = "linux"))]
fn precise_sleeps_probe() -> i32 {
    // SAFETY: PR_GET_TIMERSLACK reads the calling thread's slack.
    unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) }
}

/// The calling thread's CPU set, to return to (Linux; elsewhere a no-op).
pub struct Affinity(#[cfg(target_os = "linux")] Option<libc::cpu_set_t>);

impl Affinity {
    /// The CPU set of the calling thread now.
    pub fn current() -> Affinity {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: sched_getaffinity(2) on the calling thread fills a zeroed cpu_set_t.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            let r = unsafe {
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
            };
            Affinity((r == 0).then_some(set))
        }
        #[cfg(not(target_os = "linux"))]
        Affinity()
    }
    /// Put the calling thread back on that set.
    pub fn restore(&self) {
        #[cfg(target_os = "linux")]
        if let Some(set) = &self.0 {
            // SAFETY: sched_setaffinity(2) on the calling thread with a set it had.
            unsafe {
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
            }
        }
    }
}

#[cfg(test)]
mod idle_tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[cfg(target_os = "linux")]
    #[test]
    fn idle_wait_ends_on_input_and_at_its_timeout() {
        use std::os::fd::AsRawFd;
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let mut fds = [IdleFd::new(b.as_raw_fd())];
        // Nothing to read: the wait ends at its timeout.
        let t = Instant::now();
        idle_wait(&mut fds, Duration::from_millis(20));
        assert!(
            t.elapsed() >= Duration::from_millis(15),
            "{:?}",
            t.elapsed()
        );
        // Input pending: the wait ends long before a 10 s timeout.
        a.send(b"x").unwrap();
        let t = Instant::now();
        idle_wait(&mut fds, Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn idle_wait_without_descriptors_sleeps() {
        let t = Instant::now();
        idle_wait(&mut [], Duration::from_millis(20));
        assert!(
            t.elapsed() >= Duration::from_millis(15),
            "{:?}",
            t.elapsed()
        );
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn precise_sleeps_sets_this_threads_slack_only() {
        let main_before = super::precise_sleeps_probe();
        let got = std::thread::spawn(super::precise_sleeps).join().unwrap();
        assert_eq!(got, Some(super::IDLE_TIMER_SLACK_NS));
        assert_eq!(
            super::precise_sleeps_probe(),
            main_before,
            "other threads keep theirs"
        );
    }

    use super::*;
    #[test]
    fn clock_follows_wall_time() {
        let c = Clock::new();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        let (a, b) = (c.now_ns() as f64, t0.elapsed().as_nanos() as f64);
        assert!((a - b).abs() < 0.2 * b + 2e6, "clock {a} ns vs wall {b} ns");
    }
}
