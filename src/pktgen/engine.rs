//! The generator and receiver loop over [`PortQueue`]s.
//!
//! One thread runs both: each pass sends the frames every stream's
//! [`Pacer`] says are due (at most one burst per stream), then receives
//! whatever arrived on the ports the streams end on. The engine only sees
//! [`PortQueue`]s, so any backend plugs in: ring peers in process today; an
//! AF_PACKET or DPDK queue opened on the far side of the device under test
//! is passed the same way (its frames must come from the same [`Pool`], or
//! be copied into it by the backend's `rx_burst`, as every backend does).

use super::rx::{Latency, LatencySummary, SeqTracker};
use super::sig;
use super::stream::{Rate, Stream, FCS, WIRE_OVERHEAD};
use crate::buf::{Burst, Pool, PoolCache, HEADROOM};
use crate::port::PortQueue;
use crate::util::tsc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Seconds without a free buffer after which a run stops (see [`StreamResult::error`]).
pub const STARVED_S: f64 = 2.0;

/// What a run reports to its progress hook, every [`TICK_S`] seconds.
#[derive(Clone, Copy, Debug)]
pub struct Tick {
    /// Seconds since the run started sending.
    pub elapsed_s: f64,
    /// The run's length, if it has one.
    pub duration_s: Option<f64>,
    /// Frames received per second since the last tick (millions).
    pub rx_mpps: f64,
    /// Frames offered and not (yet) received so far (in flight or lost).
    pub lost: u64,
}

/// Called with a [`Tick`] while a run sends (see [`Engine::set_progress`]).
pub type ProgressHook = Box<dyn FnMut(Tick) + Send>;

/// Seconds between progress ticks.
pub const TICK_S: f64 = 0.5;

/// The generator's queues, each with its (port index, queue number).
pub type GenQueues = Vec<((usize, usize), Box<dyn PortQueue>)>;

/// How one run goes.
#[derive(Clone, Debug)]
pub struct EngineCfg {
    /// Largest burst per stream per pass.
    pub burst: usize,
    /// Write TSC timestamps and record latency.
    pub timestamps: bool,
    /// Seconds to send (streams with a count stop when it is reached).
    pub duration: Option<f64>,
    /// Line rate in bit/s for `%` rates.
    pub line_bps: f64,
    /// TSC ticks per second.
    pub hz: f64,
    /// After sending, wait at most this long for frames still on the way.
    pub drain_ms: u64,
    /// Closed loop: a stream sends only while fewer than this many of its
    /// frames are on the way (offered, not refused, not yet received), so no
    /// queue of the device overflows and the rate found is its loss-free
    /// rate. A stream waits until a whole burst fits the window. Frames the
    /// device dropped are written off after
    /// [`WINDOW_STALL_MS`] without progress. None = open loop (paced only).
    pub window: Option<u64>,
}

/// Milliseconds without a received frame after which a closed-loop stream
/// writes off what it still waits for (the device dropped it and counted why).
pub const WINDOW_STALL_MS: u64 = 100;

/// Frames per second a stream aims at (None = as fast as possible).
pub fn target_pps(s: &Stream, line_bps: f64) -> Option<f64> {
    match s.rate {
        Rate::Max => None,
        Rate::Pps(p) => Some(p),
        Rate::Percent(p) => {
            Some(p / 100.0 * line_bps / ((s.mean_size + WIRE_OVERHEAD as f64) * 8.0))
        }
    }
}

/// Frames per second that fill `line_bps` with frames of `mean_size` bytes (with FCS).
pub fn line_pps(mean_size: f64, line_bps: f64) -> f64 {
    line_bps / ((mean_size + WIRE_OVERHEAD as f64) * 8.0)
}

/// Results of one stream.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StreamResult {
    /// Stream id (the index of its definition).
    pub id: u16,
    /// Name.
    pub name: String,
    /// Sending VM.
    pub src: String,
    /// Receiving VM.
    pub dst: String,
    /// Frame size label.
    pub size: String,
    /// Rate aimed at (frames/s), None = as fast as possible.
    pub target_pps: Option<f64>,
    /// Frames offered to the device under test (including `refused`).
    pub offered: u64,
    /// Of those, frames the device's ingress queue refused (it was full): lost at ingress.
    pub refused: u64,
    /// Distinct frames received.
    pub received: u64,
    /// offered − received.
    pub lost: u64,
    /// lost / offered, percent.
    pub loss_pct: f64,
    /// Frames received more than once (extra copies).
    pub duplicates: u64,
    /// Frames that arrived after a later one.
    pub reordered: u64,
    /// Frames of this stream that arrived on another port than the destination VM's.
    pub wrong_port: u64,
    /// Offered rate, Mpps.
    pub offered_mpps: f64,
    /// Received rate, Mpps.
    pub received_mpps: f64,
    /// Offered load on the wire (with FCS, preamble and gap), Gbit/s.
    pub offered_gbps: f64,
    /// Received load on the wire, Gbit/s.
    pub received_gbps: f64,
    /// Times the sender fell behind the schedule (see `Pacer`).
    pub pacer_slips: u64,
    /// One-way latency (None without timestamps or without frames).
    pub latency: Option<LatencySummary>,
    /// Set when the stream's result cannot be trusted (e.g. nothing arrived).
    pub error: Option<String>,
}

/// Results of one run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    /// True when the run was interrupted (Ctrl-C) before it was complete.
    pub partial: bool,
    /// Seconds spent sending.
    pub seconds: f64,
    /// Timestamps were written and latency recorded.
    pub timestamps: bool,
    /// TSC frequency, GHz.
    pub tsc_ghz: f64,
    /// Per stream.
    pub streams: Vec<StreamResult>,
    /// Sum of `offered`.
    pub offered: u64,
    /// Sum of `received`.
    pub received: u64,
    /// Sum of `lost`.
    pub lost: u64,
    /// Frames received without a signature of this run (e.g. floods of other traffic).
    pub foreign: u64,
    /// Times the pool had no buffer for a frame (the frame was not built; not offered).
    pub pool_empty: u64,
    /// Latency histograms per stream, for plots (not serialised).
    #[serde(skip)]
    pub hists: Vec<Option<Latency>>,
}

impl RunResult {
    /// Errors of streams, one line each.
    pub fn errors(&self) -> Vec<String> {
        self.streams
            .iter()
            .filter_map(|s| {
                s.error
                    .as_ref()
                    .map(|e| format!("stream {:?}: {e}", s.name))
            })
            .collect()
    }
}

struct StreamState {
    pacer: super::pace::Pacer,
    next_seq: u64,
    offered: u64,
    refused: u64,
    tx_bytes: u64,
    done: bool,
    seq: SeqTracker,
    rx_bytes: u64,
    wrong_port: u64,
    lat: Latency,
    txq: usize,
    rxq: usize,
    /// Closed loop: frames given up on (dropped by the device).
    written_off: u64,
}

/// The generator/receiver.
pub struct Engine {
    streams: Vec<Stream>,
    /// Queues by (port index, queue number).
    queues: GenQueues,
    queue_of: Vec<usize>,
    pool: Arc<Pool>,
    cfg: EngineCfg,
    progress: Option<ProgressHook>,
}

impl Engine {
    /// An engine for `streams`; stream `i` is sent on queue `queue_of[i]` of
    /// its TX port and expected on the same queue number of its RX port.
    /// `queues` must hold every (port, queue) the streams use.
    pub fn new(
        streams: Vec<Stream>,
        queues: GenQueues,
        queue_of: Vec<usize>,
        pool: Arc<Pool>,
        cfg: EngineCfg,
    ) -> Result<Engine, String> {
        for (i, s) in streams.iter().enumerate() {
            let q = queue_of.get(i).copied().unwrap_or(0);
            for (what, p) in [("src", s.tx_port), ("dst", s.rx_port)] {
                if !queues.iter().any(|(k, _)| *k == (p, q)) {
                    return Err(format!(
                        "stream[{i}].{what}: no generator queue on port {p} queue {q}"
                    ));
                }
            }
        }
        Ok(Engine {
            streams,
            queues,
            queue_of,
            pool,
            cfg,
            progress: None,
        })
    }

    /// Report progress while runs send (None: silent, the default).
    pub fn set_progress(&mut self, hook: Option<ProgressHook>) {
        self.progress = hook;
    }

    /// Give the queues back (e.g. to drain them).
    pub fn into_queues(self) -> GenQueues {
        self.queues
    }

    /// The streams.
    pub fn streams(&self) -> &[Stream] {
        &self.streams
    }

    /// Replace every stream's rate (RFC 2544 trials).
    pub fn set_rates(&mut self, pps: &[Option<f64>]) {
        for (s, p) in self.streams.iter_mut().zip(pps) {
            s.rate = match p {
                Some(x) => Rate::Pps(*x),
                None => Rate::Max,
            };
        }
    }

    /// The line rate `%` rates refer to (bit/s).
    pub fn line_bps(&self) -> f64 {
        self.cfg.line_bps
    }

    /// Set the run length (seconds) for the next run.
    pub fn set_duration(&mut self, secs: Option<f64>) {
        self.cfg.duration = secs;
    }

    /// Closed loop (see [`EngineCfg::window`]) for the next run.
    pub fn set_window(&mut self, frames: Option<u64>) {
        self.cfg.window = frames;
    }

    /// Set per-stream frame counts for the next run.
    pub fn set_counts(&mut self, n: Option<u64>) {
        for s in self.streams.iter_mut() {
            s.count = n;
        }
    }

    /// Send and receive until the duration ends (or every counted stream is
    /// done), then wait for frames still on the way; `stop` interrupts (the
    /// result is then `partial`).
    pub fn run(&mut self, stop: &AtomicBool) -> RunResult {
        let hz = self.cfg.hz;
        let ns_per_tick = 1e9 / hz;
        let burst = self.cfg.burst.max(1);
        let t0 = tsc();
        let end = self
            .cfg
            .duration
            .map(|d| t0.saturating_add((d * hz) as u64))
            .unwrap_or(u64::MAX);
        let idx = |qs: &GenQueues, k: (usize, usize)| {
            qs.iter()
                .position(|(x, _)| *x == k)
                .expect("checked in new")
        };
        let mut st: Vec<StreamState> = self
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let q = self.queue_of.get(i).copied().unwrap_or(0);
                StreamState {
                    pacer: super::pace::Pacer::new(target_pps(s, self.cfg.line_bps), hz, burst, t0),
                    next_seq: 0,
                    offered: 0,
                    refused: 0,
                    tx_bytes: 0,
                    done: false,
                    seq: SeqTracker::default(),
                    rx_bytes: 0,
                    wrong_port: 0,
                    lat: Latency::in_units(ns_per_tick),
                    txq: idx(&self.queues, (s.tx_port, q)),
                    rxq: idx(&self.queues, (s.rx_port, q)),
                    written_off: 0,
                }
            })
            .collect();
        // Receive queues, each once.
        let mut rxqs: Vec<usize> = st.iter().map(|s| s.rxq).collect();
        rxqs.sort_unstable();
        rxqs.dedup();
        let pool = self.pool.clone();
        let mut cache = PoolCache::new();
        let mut out = Burst::new(burst);
        let mut rxb = Burst::new(64);
        let (mut foreign, mut pool_empty) = (0u64, 0u64);
        let mut interrupted = false;
        let mut send_end = t0;
        // Last tick a frame could be built: a pool that stays empty (frames
        // held in queues) ends the run instead of spinning forever.
        let mut empty_since: Option<u64> = None;
        let mut starved = false;
        let nstreams = self.streams.len();
        let ts_on = self.cfg.timestamps;
        let window = self.cfg.window;
        let stall_ticks = (WINDOW_STALL_MS as f64 * hz / 1e3) as u64;
        let mut last_rx = t0;
        let tick = (TICK_S * hz) as u64;
        let (mut next_tick, mut tick_at, mut rx_at_tick) = (t0.saturating_add(tick), t0, 0u64);

        let mut receive =
            |queues: &mut GenQueues, st: &mut Vec<StreamState>, cache: &mut PoolCache| -> u64 {
                let mut got = 0u64;
                for &qi in &rxqs {
                    let port = queues[qi].0 .0;
                    loop {
                        let n = queues[qi].1.rx_burst(&mut rxb);
                        if n == 0 {
                            break;
                        }
                        got += n as u64;
                        let now = tsc();
                        for f in rxb.drain() {
                            let d = pool.data(&f);
                            match sig::read(d) {
                                Some(s) if (s.stream as usize) < nstreams => {
                                    let x = &mut st[s.stream as usize];
                                    let before = x.seq.received;
                                    x.seq.record(s.seq);
                                    if x.seq.received > before {
                                        x.rx_bytes += (d.len() + FCS) as u64;
                                        if ts_on {
                                            x.lat.record(sig::elapsed(s.ts, now));
                                        }
                                    }
                                    if self.streams[s.stream as usize].rx_port != port {
                                        x.wrong_port += 1;
                                    }
                                }
                                _ => foreign += 1,
                            }
                            cache.free(&pool, f);
                        }
                        if n < rxb.capacity() {
                            break;
                        }
                    }
                }
                got
            };

        // Send phase.
        loop {
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            let now = tsc();
            if now >= end || st.iter().all(|s| s.done) {
                break;
            }
            if empty_since.is_some_and(|t| now.wrapping_sub(t) > (STARVED_S * hz) as u64) {
                starved = true;
                break;
            }
            for (i, s) in self.streams.iter().enumerate() {
                let x = &mut st[i];
                if x.done {
                    continue;
                }
                let mut n = x.pacer.due(now);
                if let Some(c) = s.count {
                    n = n.min((c - x.next_seq) as usize);
                }
                if let Some(w) = window {
                    let on_way =
                        (x.offered - x.refused).saturating_sub(x.seq.received + x.written_off);
                    // Wait for room for a whole burst: no trickle of tiny bursts.
                    if on_way + (burst as u64).min(w) > w {
                        if now.wrapping_sub(last_rx) > stall_ticks {
                            x.written_off += on_way;
                        }
                        continue;
                    }
                    n = n.min((w - on_way) as usize);
                }
                if n == 0 {
                    continue;
                }
                let ts = if ts_on { tsc() } else { 0 };
                let mut bytes = 0u64;
                for _ in 0..n {
                    let Some(mut b) = cache.alloc(&pool) else {
                        pool_empty += 1;
                        empty_since.get_or_insert(now);
                        break;
                    };
                    let k = x.next_seq + out.len() as u64;
                    let t = s.template_of(k);
                    let len = s.template_len(t);
                    b.off = HEADROOM as u16;
                    pool.set_len(&mut b, len);
                    s.build_from(t, k, ts, pool.data_mut(&mut b));
                    bytes += (len + FCS) as u64;
                    let _ = out.push(b);
                }
                let built = out.len();
                if built == 0 {
                    continue;
                }
                empty_since = None;
                let q = &mut self.queues[x.txq].1;
                let took = q.tx_burst(&mut out);
                q.flush();
                // Refused frames were offered: the device's ingress queue was full.
                x.refused += (built - took) as u64;
                for f in out.drain() {
                    cache.free(&pool, f);
                }
                x.next_seq += built as u64;
                x.offered += built as u64;
                x.tx_bytes += bytes;
                x.pacer.sent(built);
                if s.count.is_some_and(|c| x.next_seq >= c) {
                    x.done = true;
                }
            }
            send_end = tsc();
            if receive(&mut self.queues, &mut st, &mut cache) > 0 {
                last_rx = tsc();
            }
            if let Some(p) = self.progress.as_mut() {
                if send_end >= next_tick {
                    let rx: u64 = st.iter().map(|x| x.seq.received).sum();
                    let off: u64 = st.iter().map(|x| x.offered).sum();
                    p(Tick {
                        elapsed_s: send_end.wrapping_sub(t0) as f64 / hz,
                        duration_s: self.cfg.duration,
                        rx_mpps: (rx - rx_at_tick) as f64 * hz
                            / send_end.wrapping_sub(tick_at).max(1) as f64
                            / 1e6,
                        lost: off.saturating_sub(rx),
                    });
                    (rx_at_tick, tick_at) = (rx, send_end);
                    next_tick = send_end.saturating_add(tick);
                }
            }
        }
        // Drain: until everything offered arrived or nothing arrives for a while.
        let drain_ticks = (self.cfg.drain_ms as f64 * hz / 1e3) as u64;
        let mut last = tsc();
        loop {
            let got = receive(&mut self.queues, &mut st, &mut cache);
            let now = tsc();
            if got > 0 {
                last = now;
            }
            let all_in = st.iter().all(|x| x.seq.received >= x.offered - x.refused);
            if all_in || now.wrapping_sub(last) > drain_ticks {
                break;
            }
            if stop.load(Ordering::Relaxed) && now.wrapping_sub(last) > drain_ticks / 4 {
                interrupted = true;
                break;
            }
        }
        cache.flush(&pool);
        let secs = (send_end.wrapping_sub(t0) as f64 / hz).max(1e-9);
        let mut streams = Vec::new();
        let mut hists = Vec::new();
        for (s, x) in self.streams.iter().zip(st) {
            let lost = x.seq.lost(x.offered);
            let error = if starved && !x.done {
                Some(format!(
                    "stopped: no free buffer for {STARVED_S} s (frames held in queues); raise switch.pool_size"
                ))
            } else if x.offered > 0 && x.seq.received == 0 {
                Some(format!(
                    "the receiver on {:?} saw none of the {} frames sent by {:?} (see the switch's drop counters)",
                    s.dst_vm, x.offered, s.src_vm
                ))
            } else if x.offered == 0 && !interrupted {
                Some("no frame was sent (pool empty or zero duration)".into())
            } else {
                None
            };
            let lat = ts_on.then_some(x.lat);
            streams.push(StreamResult {
                id: s.id,
                name: s.name.clone(),
                src: s.src_vm.clone(),
                dst: s.dst_vm.clone(),
                size: s.size_label.clone(),
                target_pps: target_pps(s, self.cfg.line_bps),
                offered: x.offered,
                refused: x.refused,
                received: x.seq.received,
                lost,
                loss_pct: 100.0 * lost as f64 / x.offered.max(1) as f64,
                duplicates: x.seq.duplicates,
                reordered: x.seq.reordered,
                wrong_port: x.wrong_port,
                offered_mpps: x.offered as f64 / secs / 1e6,
                received_mpps: x.seq.received as f64 / secs / 1e6,
                offered_gbps: (x.tx_bytes + x.offered * WIRE_OVERHEAD) as f64 * 8.0 / secs / 1e9,
                received_gbps: (x.rx_bytes + x.seq.received * WIRE_OVERHEAD) as f64 * 8.0
                    / secs
                    / 1e9,
                pacer_slips: x.pacer.slips(),
                latency: lat.as_ref().and_then(|l| l.summary()),
                error,
            });
            hists.push(lat);
        }
        RunResult {
            partial: interrupted,
            seconds: secs,
            timestamps: ts_on,
            tsc_ghz: hz / 1e9,
            offered: streams.iter().map(|s| s.offered).sum(),
            received: streams.iter().map(|s| s.received).sum(),
            lost: streams.iter().map(|s| s.lost).sum(),
            streams,
            foreign,
            pool_empty,
            hists,
        }
    }
}
