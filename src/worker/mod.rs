//! The pinned poll loop.
//!
//! A worker owns its [`Task`]s (one per switch instance it serves; normally
//! one) and polls queue `q` of every port of each, burst by burst. Counters
//! are plain fields of the pipeline, published to [`SharedCounters`] every
//! [`PUBLISH_EVERY`] loops. With `idle_sleep_us` set, a worker that found
//! nothing in 64 passes in a row, and no frame for `idle_spin_us`, sleeps
//! that long (for lab and CI machines with few cores); by default it polls
//! without pause. When every queue it polls is a socket (AF_PACKET,
//! AF_XDP), the sleep is a wait on those sockets that ends as soon as one
//! has a frame.

use crate::buf::Burst;
use crate::pipeline::{NoTrace, Pipeline};
use crate::port::PortQueue;
use crate::stats::SharedCounters;
use crate::types::PortId;
use crate::util::{idle_wait, tsc, Clock, IdleFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Loops between counter publications.
pub const PUBLISH_EVERY: u64 = 256;
/// Loops between publications of the policy counters (ACL hits, meters,
/// queues) into [`SharedCounters::policy`]: a multiple of [`PUBLISH_EVERY`].
pub const POLICY_PUBLISH_EVERY: u64 = PUBLISH_EVERY * 16;
/// Empty passes before an idle worker may sleep.
pub const IDLE_PASSES: u32 = 64;

/// One switch instance as seen by one worker.
pub struct Task {
    /// The pipeline (owns this core's counters).
    pub pipe: Pipeline,
    /// This worker's queue on every port, indexed by port id.
    pub queues: Vec<Box<dyn PortQueue>>,
    /// Where counters are published.
    pub shared: Arc<SharedCounters>,
}

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerCfg {
    /// Core to pin to (None = not pinned).
    pub core: Option<usize>,
    /// Frames per RX burst.
    pub burst: usize,
    /// Sleep after a run of empty passes (0 = never).
    pub idle_sleep_us: u64,
    /// With `idle_sleep_us`: no sleep until this long after the last frame
    /// (empty passes in that time yield the core instead).
    pub idle_spin_us: u64,
}

/// Pin the calling thread to `core`. Errors if the core does not exist.
pub fn pin(core: usize) -> Result<(), String> {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    match ids.into_iter().find(|c| c.id == core) {
        Some(c) if core_affinity::set_for_current(c) => Ok(()),
        Some(_) => Err(format!("cannot pin to core {core}")),
        None => Err(format!("core {core} does not exist on this machine")),
    }
}

/// Poll until `stop` is set, then drain what is still queued on RX (bounded),
/// flush TX and give every cached buffer back to the pool.
pub fn run(tasks: &mut [Task], cfg: &WorkerCfg, clock: &Clock, stop: &AtomicBool) {
    if cfg.idle_sleep_us > 0 {
        // The back-off sleeps are short; without this they end up to 50 µs late.
        let _ = crate::util::precise_sleeps();
    }
    let mut burst = Burst::new(cfg.burst.max(1));
    // The back-off waits on the queues' RX sockets where every queue has one;
    // a queue without (in-memory rings) is only polled after the sleep.
    let all_fds: Option<Vec<IdleFd>> = tasks
        .iter()
        .flat_map(|t| t.queues.iter().map(|q| q.rx_fd().map(IdleFd::new)))
        .collect();
    let mut fds = all_fds.unwrap_or_default();
    let spin_ns = cfg.idle_spin_us.saturating_mul(1000);
    let mut last_rx_ns = clock.now_ns();
    let mut loops: u64 = 0;
    let mut empty_run: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut got = 0;
        for t in tasks.iter_mut() {
            got += poll_once(t, &mut burst, clock);
            if t.pipe.has_backlog() {
                t.pipe.service(clock.now_ns(), &mut t.queues);
            }
        }
        loops += 1;
        if loops % PUBLISH_EVERY == 0 {
            let policy = loops % POLICY_PUBLISH_EVERY == 0;
            for t in tasks.iter() {
                t.shared.publish(&t.pipe.ctr, &t.pipe.port_ctr);
                if policy {
                    t.shared.policy.publish(t.pipe.policy_view());
                }
            }
        }
        if got == 0 {
            empty_run += 1;
            if may_sleep(cfg, empty_run, last_rx_ns, spin_ns, || clock.now_ns()) {
                let t0 = tsc();
                idle_wait(&mut fds, Duration::from_micros(cfg.idle_sleep_us));
                if let Some(t) = tasks.first_mut() {
                    t.pipe.ctr.idle_cycles += tsc().wrapping_sub(t0);
                }
            } else if cfg.idle_sleep_us > 0 && empty_run >= IDLE_PASSES {
                // Spinning after a frame: stay runnable, but let another
                // poller pinned to this core (an edge and a bridge on one
                // core in the lab) have it.
                std::thread::yield_now();
            }
        } else {
            empty_run = 0;
            if cfg.idle_sleep_us > 0 {
                last_rx_ns = clock.now_ns();
            }
        }
    }
    // Graceful stop: forward what already arrived, within a bound.
    for _ in 0..64 {
        let mut got = 0;
        for t in tasks.iter_mut() {
            got += poll_once(t, &mut burst, clock);
        }
        if got == 0 {
            break;
        }
    }
    // Shaped egress queues get a bounded time to drain.
    let t_end = clock.now_ns() + 100_000_000;
    while tasks.iter().any(|t| t.pipe.has_backlog()) && clock.now_ns() < t_end {
        for t in tasks.iter_mut() {
            t.pipe.service(clock.now_ns(), &mut t.queues);
        }
    }
    for t in tasks.iter_mut() {
        t.pipe.flush(&mut t.queues);
        for q in t.queues.iter_mut() {
            q.flush();
        }
        t.pipe.release();
        t.shared.publish(&t.pipe.ctr, &t.pipe.port_ctr);
        while !t.shared.policy.publish(t.pipe.policy_view()) {
            std::thread::yield_now();
        }
    }
}

/// The back-off rule: sleeping is on, `IDLE_PASSES` passes in a row found
/// nothing, and the last frame came at least `spin_ns` ago (`now` is read
/// only when the first two hold).
#[inline]
fn may_sleep(
    cfg: &WorkerCfg,
    empty_run: u32,
    last_rx_ns: u64,
    spin_ns: u64,
    now: impl FnOnce() -> u64,
) -> bool {
    cfg.idle_sleep_us > 0 && empty_run >= IDLE_PASSES && now().saturating_sub(last_rx_ns) >= spin_ns
}

/// One pass over every port of a task. Returns frames received.
#[inline]
pub fn poll_once(t: &mut Task, burst: &mut Burst, clock: &Clock) -> usize {
    let mut got = 0;
    for p in 0..t.queues.len() {
        let t0 = tsc();
        let n = t.queues[p].rx_burst(burst);
        if n == 0 {
            t.pipe.ctr.empty_polls += 1;
            t.pipe.ctr.idle_cycles += tsc().wrapping_sub(t0);
            continue;
        }
        got += n;
        t.pipe.ctr.bursts += 1;
        let now = clock.ns_at(t0);
        t.pipe
            .process_at(PortId(p as u16), burst, now, &mut t.queues, &mut NoTrace);
        t.pipe.ctr.busy_cycles += tsc().wrapping_sub(t0);
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(sleep: u64, spin: u64) -> WorkerCfg {
        WorkerCfg {
            core: None,
            burst: 32,
            idle_sleep_us: sleep,
            idle_spin_us: spin,
        }
    }

    #[test]
    fn back_off_waits_for_empty_passes_and_the_spin_time() {
        let c = cfg(50, 200);
        let spin = 200_000;
        // Pure polling never sleeps.
        assert!(!may_sleep(&cfg(0, 200), u32::MAX, 0, spin, || u64::MAX));
        // Too few empty passes: no sleep, and the clock is not read.
        assert!(!may_sleep(&c, IDLE_PASSES - 1, 0, spin, || panic!(
            "clock read"
        )));
        // Enough passes, but a frame came 199 µs ago: keep polling.
        assert!(!may_sleep(&c, IDLE_PASSES, 1_000_000, spin, || 1_199_000));
        assert!(may_sleep(&c, IDLE_PASSES, 1_000_000, spin, || 1_200_000));
        // Without a spin time the passes alone decide.
        assert!(may_sleep(&cfg(50, 0), IDLE_PASSES, 5, 0, || 5));
    }
}
