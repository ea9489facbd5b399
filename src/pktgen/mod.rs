//! `hairpin pktgen`: streams between VMs, paced on the TSC, with sequence
//! numbers and timestamps; per-stream loss, duplicates, reordering and
//! latency percentiles; RFC 2544 methods on top.
//!
//! - [`stream`]: definitions (TOML / `--stream`), validation against a switch
//!   config, per-frame building (sizes, IMIX, ranges);
//! - [`sig`]: the 14-byte signature every frame ends with;
//! - [`pace`]: rate control; [`rx`]: receiver accounting and latency;
//! - [`engine`]: the TX/RX loop over [`crate::port::PortQueue`]s;
//! - [`rfc2544`]: throughput, latency, frame loss, back-to-back;
//! - [`topo`]: the comparison topologies (VEPA + hairpin bridge, VEB, VEB + ACLs);
//! - [`report`]: the Markdown report and SVG plots of a harness run.
//!
//! [`run_switch`] builds a switch from a config on in-process ring ports and
//! puts the generator on the far ends of the VM ports' cables.

pub mod attach;
pub mod engine;
pub mod export;
pub mod pace;
pub mod report;
pub mod rfc2544;
pub mod rx;
pub mod sig;
pub mod stream;
pub mod topo;

use crate::config::Config;
use crate::runtime::{self, Instance};
use crate::stats::{CoreCounters, DropReason, PortCounters, SharedCounters};
use crate::util::Clock;
use crate::worker::{self, WorkerCfg};
use engine::{Engine, EngineCfg, GenQueues, RunResult};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use stream::{PktgenFile, Stream};

/// Counters of one switch over a run.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SwitchStats {
    /// Role (bridge, edge-vepa, edge-veb).
    pub role: String,
    /// Frames the switch received.
    pub rx_frames: u64,
    /// Frames it transmitted.
    pub tx_frames: u64,
    /// Busy TSC cycles (non-empty polls) per received frame.
    pub cycles_per_frame: f64,
    /// Drops by reason (non-zero only).
    pub drops: BTreeMap<String, u64>,
    /// Frames received + transmitted per port.
    pub port_frames: BTreeMap<String, u64>,
    /// Frames sent back out their ingress port (reflective relay).
    pub reflected: u64,
}

/// Counters of one switch between two snapshots of its published counters.
pub fn switch_stats(
    cfg: &Config,
    before: &(CoreCounters, Vec<PortCounters>),
    after: &(CoreCounters, Vec<PortCounters>),
) -> SwitchStats {
    let (a, b) = (before.0.to_array(), after.0.to_array());
    let mut d = [0u64; CoreCounters::SLOTS];
    for i in 0..d.len() {
        d[i] = b[i].wrapping_sub(a[i]);
    }
    let c = CoreCounters::from_array(&d);
    let drops = DropReason::ALL
        .iter()
        .filter(|r| c.drops[**r as usize] > 0)
        .map(|r| (r.name().to_string(), c.drops[*r as usize]))
        .collect();
    let zero = PortCounters::default();
    SwitchStats {
        role: cfg.switch.role.name().into(),
        rx_frames: c.rx_pkts,
        tx_frames: c.tx_pkts,
        cycles_per_frame: c.busy_cycles as f64 / c.rx_pkts.max(1) as f64,
        drops,
        port_frames: cfg
            .port
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let x = after.1.get(i).unwrap_or(&zero);
                let y = before.1.get(i).unwrap_or(&zero);
                (
                    p.name.clone(),
                    (x.rx_pkts + x.tx_pkts).wrapping_sub(y.rx_pkts + y.tx_pkts),
                )
            })
            .collect(),
        reflected: c.reflected,
    }
}

/// Published counters of one switch (summed over its workers' tasks).
fn snapshot(shared: &[Arc<SharedCounters>]) -> (CoreCounters, Vec<PortCounters>) {
    let mut c = CoreCounters::default();
    let mut p: Vec<PortCounters> = Vec::new();
    for s in shared {
        c.add(&s.load());
        let ps = s.load_ports();
        if p.len() < ps.len() {
            p.resize(ps.len(), PortCounters::default());
        }
        for (a, b) in p.iter_mut().zip(&ps) {
            a.add(b);
        }
    }
    (c, p)
}

/// Running switches with the generator attached: trials run one after the
/// other on the calling thread, the switches keep running (and learning)
/// between them.
pub struct Rig {
    /// The generator/receiver.
    pub engine: Engine,
    running: Option<runtime::Running>,
    sw_stop: Arc<AtomicBool>,
    pool: Arc<crate::buf::Pool>,
    /// Each switch's config and its published counters.
    switches: Vec<(Config, Vec<Arc<SharedCounters>>)>,
    _instances: Vec<Instance>,
    /// The generator's own devices (attached ports), stopped at the end.
    ports: Vec<Box<dyn crate::port::Port>>,
}

impl Rig {
    /// Start `workers` (tasks of the switches in `switches`, by switch) and
    /// attach `engine`. `instances` are kept alive for the run.
    pub fn start(
        engine: Engine,
        workers: Vec<(WorkerCfg, Vec<crate::worker::Task>)>,
        switches: Vec<(Config, Vec<Arc<SharedCounters>>)>,
        instances: Vec<Instance>,
        pool: Arc<crate::buf::Pool>,
    ) -> Result<Rig, String> {
        let sw_stop = Arc::new(AtomicBool::new(false));
        let running = runtime::start(workers, Clock::new(), sw_stop.clone())?;
        Ok(Rig {
            engine,
            running: Some(running),
            sw_stop,
            pool,
            switches,
            _instances: instances,
            ports: Vec::new(),
        })
    }

    /// One trial with the engine's current rates and length; returns the
    /// generator's figures and each switch's counters over the trial.
    pub fn trial(&mut self, stop: &AtomicBool) -> (RunResult, Vec<SwitchStats>) {
        let before: Vec<_> = self.switches.iter().map(|(_, s)| snapshot(s)).collect();
        let r = self.engine.run(stop);
        // Counters are published every few hundred worker loops: let them settle.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let stats = self
            .switches
            .iter()
            .zip(&before)
            .map(|((c, s), b)| switch_stats(c, b, &snapshot(s)))
            .collect();
        (r, stats)
    }

    /// Stop the switches and return every buffer to the pool.
    pub fn finish(mut self) {
        self.sw_stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.running.take() {
            drop(r.join());
        }
        let Rig {
            engine,
            pool,
            mut ports,
            ..
        } = self;
        drain_into_pool(engine.into_queues(), &pool);
        runtime::stop_ports(&mut ports);
    }
}

/// Build the switch of `cfg` on ring ports with the streams of `file` on
/// the far ends of the VM ports' cables.
pub fn rig_for_config(cfg: Config, file: &PktgenFile) -> Result<Rig, String> {
    let pool = runtime::make_pool(&cfg, 16384)?;
    let streams = stream::compile(&file.stream, &cfg, pool.max_frame())?;
    let mut inst = Instance::new(cfg.clone(), pool.clone())?;
    let nq = cfg.switch.workers.len();
    let queue_of: Vec<usize> = (0..streams.len()).map(|i| i % nq).collect();
    let queues = take_queues(&mut inst, &streams, &queue_of, &file.stream, &cfg)?;
    let mut workers = Vec::new();
    let mut shared = Vec::new();
    for (q, &core) in cfg.switch.workers.iter().enumerate() {
        let (task, _punt) = inst.task(q)?;
        shared.push(task.shared.clone());
        workers.push((
            WorkerCfg {
                core: Some(core),
                burst: cfg.switch.burst,
                idle_sleep_us: cfg.switch.idle_sleep_us,
                idle_spin_us: cfg.switch.idle_spin_us,
            },
            vec![task],
        ));
    }
    let ecfg = EngineCfg {
        burst: file.pktgen.burst,
        timestamps: file.pktgen.timestamps,
        duration: file.pktgen.duration,
        line_bps: stream::parse_bps(&file.pktgen.line_rate)?,
        hz: tsc_hz(),
        drain_ms: 100,
        window: None,
    };
    let engine = Engine::new(streams, queues, queue_of, pool.clone(), ecfg)?;
    Rig::start(engine, workers, vec![(cfg, shared)], vec![inst], pool)
}

/// Pin the calling thread to a core the switch workers do not use, if there is one.
pub fn pin_generator(workers: &[usize]) {
    if let Some(c) = gen_core(workers) {
        let _ = worker::pin(c);
    }
}

/// A pktgen run on a switch, with the switch's counters.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SwitchRun {
    /// The generator's results.
    #[serde(flatten)]
    pub run: RunResult,
    /// The switch's counters over the run (none when the device under
    /// test runs outside this process, `--attach`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<SwitchStats>,
}

/// Settings for [`run_switch`] from the command line (override the file's `[pktgen]`).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Seconds to send.
    pub duration: Option<f64>,
    /// Frames per stream.
    pub count: Option<u64>,
    /// Rate for every stream.
    pub rate: Option<stream::Val>,
    /// Frame size for every stream.
    pub size: Option<stream::SizeSpec>,
    /// Disable timestamps.
    pub no_timestamps: bool,
}

/// Apply the overrides and the file's defaults to the streams.
pub fn prepare(file: &mut PktgenFile, o: &Overrides) -> Result<(), String> {
    if let Some(d) = o.duration {
        file.pktgen.duration = Some(d);
    }
    if let Some(c) = o.count {
        file.pktgen.count = Some(c);
        if o.duration.is_none() {
            file.pktgen.duration = None;
        }
    }
    if o.no_timestamps {
        file.pktgen.timestamps = false;
    }
    if !(1..=256).contains(&file.pktgen.burst) {
        return Err(format!(
            "pktgen.burst: {} is outside 1..=256",
            file.pktgen.burst
        ));
    }
    if let Some(d) = file.pktgen.duration {
        if !(d > 0.0 && d <= 86400.0) {
            return Err(format!(
                "pktgen.duration: {d} is outside (0, 86400] seconds"
            ));
        }
    }
    stream::parse_bps(&file.pktgen.line_rate).map_err(|e| format!("pktgen.line_rate: {e}"))?;
    for s in file.stream.iter_mut() {
        if let Some(r) = &o.rate {
            s.rate = Some(r.clone());
        }
        if let Some(z) = &o.size {
            s.size = z.clone();
        }
        if s.count.is_none() {
            s.count = file.pktgen.count;
        }
    }
    if file.pktgen.duration.is_none() && file.stream.iter().any(|s| s.count.is_none()) {
        file.pktgen.duration = Some(2.0);
    }
    Ok(())
}

/// A core for the generator: one the switch workers do not use, if any.
pub fn gen_core(workers: &[usize]) -> Option<usize> {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (0..n).find(|c| !workers.contains(c))
}

/// Build the switch of `cfg` on ring ports, run the streams of `file`
/// through it from the far ends of the VM ports, stop it, and return both
/// sides' figures. `stop` (set by SIGINT) interrupts: the result is then partial.
pub fn run_switch(
    cfg: Config,
    file: &PktgenFile,
    stop: Arc<AtomicBool>,
) -> Result<SwitchRun, String> {
    let workers = cfg.switch.workers.clone();
    run_rig(rig_for_config(cfg, file)?, Some(&workers), &stop)
}

/// One run of `rig` on a generator thread (pinned off `workers` if given),
/// then finish it.
pub fn run_rig(
    mut rig: Rig,
    workers: Option<&[usize]>,
    stop: &AtomicBool,
) -> Result<SwitchRun, String> {
    let (run, sw) = std::thread::scope(|sc| {
        sc.spawn(|| {
            if let Some(w) = workers {
                pin_generator(w);
            }
            rig.trial(stop)
        })
        .join()
    })
    .map_err(|_| "the generator thread panicked".to_string())?;
    rig.finish();
    Ok(SwitchRun {
        run,
        switch: sw.into_iter().next(),
    })
}

/// Take the peer queues the streams use from a ring-port instance.
pub fn take_queues(
    inst: &mut Instance,
    streams: &[Stream],
    queue_of: &[usize],
    specs: &[stream::StreamSpec],
    cfg: &Config,
) -> Result<GenQueues, String> {
    let mut queues: GenQueues = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        let q = queue_of[i];
        for (what, p, vm) in [
            ("src", s.tx_port, &specs[i].src),
            ("dst", s.rx_port, &specs[i].dst),
        ] {
            if queues.iter().any(|(k, _)| *k == (p, q)) {
                continue;
            }
            let peer = inst.peers.get_mut(p).and_then(|x| x.as_mut()).ok_or_else(|| {
                format!(
                    "stream[{i}].{what}: VM {vm:?} is on port {:?} (backend {:?}); pktgen drives ring ports in process",
                    cfg.port[p].name, cfg.port[p].backend
                )
            })?;
            let rq = peer.take(q).ok_or_else(|| {
                format!(
                    "stream[{i}].{what}: port {:?} has no queue {q}",
                    cfg.port[p].name
                )
            })?;
            queues.push(((p, q), Box::new(rq)));
        }
    }
    Ok(queues)
}

/// Receive what is still queued for the generator and free it.
pub fn drain_into_pool(mut qs: GenQueues, pool: &crate::buf::Pool) {
    let mut b = crate::buf::Burst::new(64);
    for (_, q) in qs.iter_mut() {
        while q.rx_burst(&mut b) > 0 {
            for f in b.drain() {
                pool.free(f);
            }
        }
    }
}

/// TSC ticks per second (measured once per process).
pub fn tsc_hz() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| crate::util::tsc_hz(50))
}

/// A stop flag set by SIGINT and SIGTERM.
pub fn interrupt_flag() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    Ok(stop)
}
