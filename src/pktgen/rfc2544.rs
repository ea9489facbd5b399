//! RFC 2544-style methods on a [`Rig`]: throughput (binary search for the
//! highest rate within the loss tolerance), latency at a fraction of that
//! throughput, frame-loss rate against offered load, back-to-back bursts.
//!
//! Offered load is a fraction of one line of `pktgen.line_rate`, shared
//! equally by the streams (each stream gets `load × line_pps(its mean size)
//! / streams`). A trial whose generator could not reach 99 % of the load it
//! aimed at is marked `generator_limited`: the device was not the limit.

use super::engine::{line_pps, RunResult};
use super::rx::LatencySummary;
use super::{Rig, SwitchStats};
use std::io::{IsTerminal, Write};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Settings shared by the methods.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Params {
    /// Seconds per trial.
    pub trial_s: f64,
    /// Largest loss (percent of offered frames) a trial may have and still pass.
    pub loss_tolerance_pct: f64,
    /// The search stops when the pass/fail bounds are this close (percent of line rate).
    pub resolution_pct: f64,
    /// At most this many trials per search.
    pub max_trials: u32,
    /// Latency: load as a fraction of the measured throughput.
    pub latency_fraction: f64,
    /// Repetitions of latency and back-to-back trials.
    pub repeat: u32,
    /// Frame loss: loads to try, percent of line rate, highest first.
    pub loss_steps_pct: Vec<f64>,
    /// Back-to-back: longest burst tried (frames per stream).
    pub max_burst: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            trial_s: 1.0,
            loss_tolerance_pct: 0.0,
            resolution_pct: 0.5,
            max_trials: 16,
            latency_fraction: 0.9,
            repeat: 1,
            loss_steps_pct: (1..=10).rev().map(|i| i as f64 * 10.0).collect(),
            max_burst: 1 << 16,
        }
    }
}

/// Progress lines on a terminal (stderr), nothing otherwise: what runs
/// (method, trial, load, trials left) and, while a trial runs, the rate
/// received now and the elapsed time (see [`Progress::engine_hook`]).
pub struct Progress {
    on: bool,
    t0: Instant,
    what: Arc<Mutex<String>>,
}

impl Progress {
    /// Shown when not `quiet` and stderr (where it goes) is a terminal.
    pub fn new(quiet: bool) -> Progress {
        Self::with(!quiet && std::io::stderr().is_terminal())
    }
    /// A silent one.
    pub fn off() -> Progress {
        Self::with(false)
    }
    fn with(on: bool) -> Progress {
        Progress {
            on,
            t0: Instant::now(),
            what: Arc::new(Mutex::new(String::new())),
        }
    }
    /// True if lines are shown.
    pub fn is_on(&self) -> bool {
        self.on
    }
    /// One update: method, trial, current load, the last measured rate (0 =
    /// none yet), trials left (upper bound).
    pub fn update(&self, method: &str, trial: u32, load_pct: f64, mpps: f64, left: u32) {
        let rate = if mpps > 0.0 {
            format!(" ({mpps:.3} Mpps)")
        } else {
            String::new()
        };
        self.text(&format!(
            "[{method}] trial {trial}: {load_pct:.2}% of line{rate}, ≤{left} trials left"
        ));
    }
    /// Show `what` as the current step.
    pub fn text(&self, what: &str) {
        if self.on {
            *self.what.lock().unwrap_or_else(|p| p.into_inner()) = what.to_string();
            print_line(what, None, self.t0);
        }
    }
    /// For [`super::engine::Engine::set_progress`]: refreshes the line with
    /// the rate received now and the run's elapsed time (None when off).
    pub fn engine_hook(&self) -> Option<super::engine::ProgressHook> {
        if !self.on {
            return None;
        }
        let (what, t0) = (self.what.clone(), self.t0);
        Some(Box::new(move |t: super::engine::Tick| {
            let w = what.lock().unwrap_or_else(|p| p.into_inner()).clone();
            print_line(&w, Some(&t), t0);
        }))
    }
    /// End the progress line.
    pub fn done(&self) {
        if self.on {
            eprintln!();
        }
    }
}

fn print_line(what: &str, t: Option<&super::engine::Tick>, t0: Instant) {
    let mut e = std::io::stderr();
    let run = match t {
        Some(t) => format!(
            " | now {:.3} Mpps received, {} not (yet) received, run {:.1}{} s",
            t.rx_mpps,
            t.lost,
            t.elapsed_s,
            t.duration_s
                .map(|d| format!(" of {d:.1}"))
                .unwrap_or_default()
        ),
        None => String::new(),
    };
    let _ = write!(
        e,
        "\r\x1b[K{what}{run}, elapsed {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let _ = e.flush();
}

/// One trial's summary.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Trial {
    /// Load aimed at, percent of line rate.
    pub load_pct: f64,
    /// Frames per second aimed at (all streams).
    pub target_pps: f64,
    /// Frames offered.
    pub offered: u64,
    /// Frames received.
    pub received: u64,
    /// Loss, percent.
    pub loss_pct: f64,
    /// Offered rate reached, Mpps.
    pub offered_mpps: f64,
    /// Received rate, Mpps.
    pub received_mpps: f64,
    /// Received load on the wire, Gbit/s.
    pub received_gbps: f64,
    /// Within the loss tolerance.
    pub pass: bool,
    /// The generator reached less than 99 % of the target.
    pub generator_limited: bool,
    /// Interrupted.
    pub partial: bool,
}

fn mean_sizes(rig: &Rig) -> Vec<f64> {
    rig.engine.streams().iter().map(|s| s.mean_size).collect()
}

/// Run one trial at `load` (fraction of line rate) for `secs` seconds.
pub fn trial_at(
    rig: &mut Rig,
    load: f64,
    secs: f64,
    tol_pct: f64,
    stop: &AtomicBool,
) -> (Trial, RunResult, Vec<SwitchStats>) {
    let line = rig.engine_line_bps();
    let sizes = mean_sizes(rig);
    let n = sizes.len() as f64;
    let rates: Vec<Option<f64>> = sizes
        .iter()
        .map(|&m| Some(load * line_pps(m, line) / n))
        .collect();
    let target: f64 = rates.iter().flatten().sum();
    rig.engine.set_rates(&rates);
    rig.engine.set_counts(None);
    rig.engine.set_duration(Some(secs));
    let (r, sw) = rig.trial(stop);
    let t = summarize(load, target, &r, tol_pct);
    (t, r, sw)
}

fn summarize(load: f64, target: f64, r: &RunResult, tol_pct: f64) -> Trial {
    let loss_pct = 100.0 * r.lost as f64 / r.offered.max(1) as f64;
    let offered_mpps = r.offered as f64 / r.seconds / 1e6;
    Trial {
        load_pct: load * 100.0,
        target_pps: target,
        offered: r.offered,
        received: r.received,
        loss_pct,
        offered_mpps,
        received_mpps: r.received as f64 / r.seconds / 1e6,
        received_gbps: r.streams.iter().map(|s| s.received_gbps).sum(),
        pass: r.offered > 0 && loss_pct <= tol_pct && !r.partial,
        generator_limited: target.is_finite() && offered_mpps * 1e6 < 0.99 * target,
        partial: r.partial,
    }
}

/// Result of the throughput search.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Throughput {
    /// Highest passing load, percent of line rate (0 if none passed).
    pub load_pct: f64,
    /// Frames per second received at that load (all streams).
    pub mpps: f64,
    /// Received load on the wire at that load, Gbit/s.
    pub gbps: f64,
    /// The passing trial was limited by the generator, not the device.
    pub generator_limited: bool,
    /// Every trial, in order.
    pub trials: Vec<Trial>,
    /// Switch counters of the best passing trial.
    pub switches: Vec<SwitchStats>,
    /// Interrupted.
    pub partial: bool,
}

/// Binary search for the highest load with loss within the tolerance.
pub fn throughput(rig: &mut Rig, p: &Params, stop: &AtomicBool, pr: &Progress) -> Throughput {
    search(p, pr, |load| {
        let (t, _r, sw) = trial_at(rig, load, p.trial_s, p.loss_tolerance_pct, stop);
        (t, sw)
    })
}

/// The throughput search over any trial function (`load` → verdict).
pub fn search(
    p: &Params,
    pr: &Progress,
    mut trial: impl FnMut(f64) -> (Trial, Vec<SwitchStats>),
) -> Throughput {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    let mut trials = Vec::new();
    let mut best: Option<(Trial, Vec<SwitchStats>)> = None;
    let mut load = 1.0;
    let mut partial = false;
    for i in 0..p.max_trials {
        let left = ((hi - lo) / (p.resolution_pct / 100.0))
            .log2()
            .ceil()
            .max(0.0) as u32;
        pr.update(
            "throughput",
            i + 1,
            load * 100.0,
            0.0,
            left.min(p.max_trials - i),
        );
        let (t, sw) = trial(load);
        partial |= t.partial;
        let pass = t.pass;
        if pass {
            lo = load;
            if best.as_ref().map_or(true, |(b, _)| b.load_pct < t.load_pct) {
                best = Some((t.clone(), sw));
            }
        } else {
            hi = load;
        }
        trials.push(t);
        if partial || (pass && load >= 1.0) || hi - lo <= p.resolution_pct / 100.0 {
            break;
        }
        load = (lo + hi) / 2.0;
    }
    pr.done();
    let (load_pct, mpps, gbps, gl, switches) = match best {
        Some((t, sw)) => (
            t.load_pct,
            t.received_mpps,
            t.received_gbps,
            t.generator_limited,
            sw,
        ),
        None => (0.0, 0.0, 0.0, false, vec![]),
    };
    Throughput {
        load_pct,
        mpps,
        gbps,
        generator_limited: gl,
        trials,
        switches,
        partial,
    }
}

/// Latency at a load.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LatencyResult {
    /// Load, percent of line rate.
    pub load_pct: f64,
    /// Per repetition: per stream latency (None for a stream without samples).
    pub runs: Vec<Vec<Option<LatencySummary>>>,
    /// Trials.
    pub trials: Vec<Trial>,
    /// Merged histogram over every stream and repetition.
    pub all: Option<LatencySummary>,
    /// CDF points (ns, share) of the merged histogram, for plots.
    pub cdf: Vec<(u64, f64)>,
    /// Interrupted.
    pub partial: bool,
}

/// Latency at `load` (fraction of line rate), `p.repeat` times.
pub fn latency(
    rig: &mut Rig,
    load: f64,
    p: &Params,
    stop: &AtomicBool,
    pr: &Progress,
) -> LatencyResult {
    let mut all: Option<super::rx::Latency> = None;
    let mut runs = Vec::new();
    let mut trials = Vec::new();
    let mut partial = false;
    for i in 0..p.repeat.max(1) {
        pr.update("latency", i + 1, load * 100.0, 0.0, p.repeat - i);
        let (t, r, _) = trial_at(rig, load, p.trial_s, f64::INFINITY, stop);
        for h in r.hists.iter().flatten() {
            match &mut all {
                Some(a) => {
                    a.merge(h);
                }
                None => all = Some(h.clone()),
            }
        }
        runs.push(r.streams.iter().map(|s| s.latency.clone()).collect());
        partial |= t.partial;
        trials.push(t);
        if partial {
            break;
        }
    }
    pr.done();
    LatencyResult {
        load_pct: load * 100.0,
        runs,
        trials,
        all: all.as_ref().and_then(|a| a.summary()),
        cdf: all.as_ref().map(|a| a.cdf(100)).unwrap_or_default(),
        partial,
    }
}

/// Frame loss against offered load.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LossCurve {
    /// Trials, highest load first.
    pub trials: Vec<Trial>,
    /// Interrupted.
    pub partial: bool,
}

/// Loss at each load of `p.loss_steps_pct`; stops after two loss-free loads in a row.
pub fn frame_loss(rig: &mut Rig, p: &Params, stop: &AtomicBool, pr: &Progress) -> LossCurve {
    let mut trials: Vec<Trial> = Vec::new();
    let mut clean = 0;
    let mut partial = false;
    for (i, &l) in p.loss_steps_pct.iter().enumerate() {
        pr.update(
            "frame-loss",
            i as u32 + 1,
            l,
            0.0,
            (p.loss_steps_pct.len() - i) as u32,
        );
        let (t, _, _) = trial_at(rig, l / 100.0, p.trial_s, p.loss_tolerance_pct, stop);
        partial |= t.partial;
        clean = if t.loss_pct == 0.0 { clean + 1 } else { 0 };
        trials.push(t);
        if partial || clean >= 2 {
            break;
        }
    }
    pr.done();
    LossCurve { trials, partial }
}

/// Back-to-back: the longest burst at line rate without loss.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BackToBack {
    /// Longest loss-free burst per repetition (frames per stream).
    pub bursts: Vec<u64>,
    /// Their mean.
    pub mean_burst: f64,
    /// Every trial: (burst length, frames lost).
    pub trials: Vec<(u64, u64)>,
    /// Every trial's generator reached line rate (else the bursts were not back-to-back).
    pub line_rate_reached: bool,
    /// Interrupted.
    pub partial: bool,
}

/// Binary search on the burst length, bursts sent at line rate, `p.repeat` times.
pub fn back_to_back(rig: &mut Rig, p: &Params, stop: &AtomicBool, pr: &Progress) -> BackToBack {
    let line = rig.engine_line_bps();
    let sizes = mean_sizes(rig);
    let n = sizes.len() as f64;
    let rates: Vec<Option<f64>> = sizes.iter().map(|&m| Some(line_pps(m, line) / n)).collect();
    let target: f64 = rates.iter().flatten().sum();
    rig.engine.set_rates(&rates);
    rig.engine.set_duration(None);
    burst_search(p, pr, |len| {
        rig.engine.set_counts(Some(len));
        let (r, _) = rig.trial(stop);
        let reached = (r.offered as f64 / r.seconds) >= 0.99 * target;
        (r.lost, reached, r.partial)
    })
}

/// The back-to-back search over any trial function (`burst` → lost, line rate reached, interrupted).
pub fn burst_search(
    p: &Params,
    pr: &Progress,
    mut trial: impl FnMut(u64) -> (u64, bool, bool),
) -> BackToBack {
    let (mut bursts, mut trials) = (Vec::new(), Vec::new());
    let mut reached = true;
    let mut partial = false;
    let mut k = 0;
    'rep: for _ in 0..p.repeat.max(1) {
        let (mut lo, mut hi) = (0u64, p.max_burst.max(1));
        let mut len = hi;
        loop {
            k += 1;
            pr.update(
                "back-to-back",
                k,
                100.0,
                0.0,
                64 - (hi - lo).leading_zeros(),
            );
            let (lost, ok, part) = trial(len);
            if part {
                partial = true;
                break 'rep;
            }
            reached &= ok;
            trials.push((len, lost));
            if lost == 0 {
                lo = len;
            } else {
                hi = len - 1;
            }
            if lo >= hi {
                break;
            }
            len = (lo + hi).div_ceil(2);
        }
        bursts.push(lo);
    }
    pr.done();
    let mean_burst = bursts.iter().sum::<u64>() as f64 / bursts.len().max(1) as f64;
    BackToBack {
        bursts,
        mean_burst,
        trials,
        line_rate_reached: reached,
        partial,
    }
}

impl Rig {
    /// The line rate `%` loads refer to.
    pub fn engine_line_bps(&self) -> f64 {
        self.engine.line_bps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lost: u64, offered: u64, secs: f64, partial: bool) -> RunResult {
        RunResult {
            partial,
            seconds: secs,
            timestamps: true,
            tsc_ghz: 1.0,
            streams: vec![],
            offered,
            received: offered - lost,
            lost,
            foreign: 0,
            pool_empty: 0,
            hists: vec![],
        }
    }

    /// A simulated device that loses frames above 37.3 % of line rate.
    #[test]
    fn throughput_search_converges_on_a_simulated_device() {
        let p = Params {
            resolution_pct: 0.5,
            max_trials: 20,
            ..Params::default()
        };
        let mut loads = vec![];
        let t = search(&p, &Progress::off(), |load| {
            loads.push(load);
            let offered = 1_000_000u64;
            let lost = if load > 0.373 { 10 } else { 0 };
            let mut r = run(lost, offered, 1.0, false);
            r.received = offered - lost;
            (summarize(load, offered as f64, &r, 0.0), vec![])
        });
        assert_eq!(loads[0], 1.0, "starts at line rate");
        assert!(
            t.load_pct <= 37.3 && t.load_pct > 37.3 - 0.5,
            "{}",
            t.load_pct
        );
        assert!(t.trials.len() <= 9, "{} trials", t.trials.len());
        assert!(!t.partial);
        // A device that passes at line rate needs one trial.
        let t = search(&p, &Progress::off(), |load| {
            (
                summarize(load, 1e6, &run(0, 1_000_000, 1.0, false), 0.0),
                vec![],
            )
        });
        assert_eq!((t.trials.len(), t.load_pct), (1, 100.0));
        // Nothing passes: 0 %.
        let t = search(&p, &Progress::off(), |load| {
            (
                summarize(load, 1e6, &run(5, 1_000_000, 1.0, false), 0.0),
                vec![],
            )
        });
        assert_eq!(t.load_pct, 0.0);
    }

    /// A simulated device with a 3000-frame buffer: bursts longer than that lose frames.
    #[test]
    fn burst_search_finds_the_buffer_of_a_simulated_device() {
        let p = Params {
            max_burst: 1 << 16,
            repeat: 2,
            ..Params::default()
        };
        let b = burst_search(&p, &Progress::off(), |len| {
            (len.saturating_sub(3000), true, false)
        });
        assert_eq!(b.bursts, vec![3000, 3000]);
        assert_eq!(b.mean_burst, 3000.0);
        assert!(b.trials.len() <= 2 * 17, "{}", b.trials.len());
        assert!(b.line_rate_reached && !b.partial);
        // Interrupted on the third trial: partial, no burst length claimed.
        let mut n = 0;
        let b = burst_search(&p, &Progress::off(), |_| {
            n += 1;
            (1, true, n == 3)
        });
        assert!(b.partial);
    }

    #[test]
    fn trial_verdicts() {
        // 1 Mpps aimed at, 1 M offered in 1 s, none lost: pass.
        let t = summarize(0.5, 1e6, &run(0, 1_000_000, 1.0, false), 0.0);
        assert!(t.pass && !t.generator_limited);
        assert_eq!(t.load_pct, 50.0);
        // One frame lost with zero tolerance: fail; within 0.01 %: pass.
        assert!(!summarize(0.5, 1e6, &run(1, 1_000_000, 1.0, false), 0.0).pass);
        assert!(summarize(0.5, 1e6, &run(1, 1_000_000, 1.0, false), 0.01).pass);
        // Only 0.9 M reached of 1 M aimed: generator limited.
        assert!(summarize(0.5, 1e6, &run(0, 900_000, 1.0, false), 0.0).generator_limited);
        // An interrupted trial never passes.
        assert!(!summarize(0.5, 1e6, &run(0, 1_000_000, 1.0, true), 0.0).pass);
    }
}
