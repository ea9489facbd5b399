//! Shared pieces of the overload and soak tests (tests/overload.rs,
//! tests/soak.rs): a switch on in-process ring ports with the pktgen engine
//! on the far ends of its VM ports, a control socket served from the same
//! process, a querier that times its answers, and counter checks.
#![allow(dead_code)]

use hairpin::buf::Pool;
use hairpin::config::Config;
use hairpin::pktgen::engine::{Engine, EngineCfg, RunResult};
use hairpin::pktgen::stream::{self, parse_stream_flag, PktgenFile};
use hairpin::pktgen::{self, SwitchStats};
use hairpin::port::ring::Consumer;
use hairpin::runtime::{self, Instance, Running};
use hairpin::stats::{CoreCounters, PortCounters, SharedCounters};
use hairpin::telemetry::{server, View, WorkerView};
use hairpin::util::Clock;
use hairpin::worker::{Task, WorkerCfg};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The tests of one binary run one at a time: each pins a busy-polling
/// worker to the same core, and two of them there would halve each other.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The highest core: the switch worker goes there, the generator below it.
pub fn last_core() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        - 1
}

/// A switch built from a config, not yet running, with the generator's
/// engine attached to the far ends of the streams' ports.
pub struct Built {
    pub cfg: Config,
    pub inst: Instance,
    pub pool: Arc<Pool>,
    pub engine: Engine,
    /// One worker with one task (queue 0 of every port).
    pub workers: Vec<(WorkerCfg, Vec<Task>)>,
    /// Published counters of each worker.
    pub shared: Vec<Arc<SharedCounters>>,
    /// Punt queues of `Instance::task` (drained at the end).
    pub punts: Vec<Consumer>,
}

/// Build the switch of `toml` on ring ports with `streams` (pktgen
/// `--stream` syntax) on the far ends; every stream on queue 0, no
/// timestamps, `secs` seconds per run.
pub fn build(toml: &str, streams: &[&str], secs: f64) -> Built {
    let cfg = Config::parse(toml).unwrap();
    let file = PktgenFile {
        stream: streams
            .iter()
            .map(|s| parse_stream_flag(s).unwrap())
            .collect(),
        ..Default::default()
    };
    let pool = runtime::make_pool(&cfg, 0).unwrap();
    let compiled = stream::compile(&file.stream, &cfg, pool.max_frame()).unwrap();
    let mut inst = Instance::new(cfg.clone(), pool.clone()).unwrap();
    let queue_of = vec![0; compiled.len()];
    let queues = pktgen::take_queues(&mut inst, &compiled, &queue_of, &file.stream, &cfg).unwrap();
    let mut workers = Vec::new();
    let mut shared = Vec::new();
    let mut punts = Vec::new();
    for (q, &core) in cfg.switch.workers.iter().enumerate() {
        let (task, punt) = inst.task(q).unwrap();
        shared.push(task.shared.clone());
        punts.push(punt);
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
        burst: 32,
        timestamps: false,
        duration: Some(secs),
        line_bps: stream::parse_bps("100G").unwrap(),
        hz: pktgen::tsc_hz(),
        drain_ms: 1000,
        window: None,
    };
    let engine = Engine::new(compiled, queues, queue_of, pool.clone(), ecfg).unwrap();
    Built {
        cfg,
        inst,
        pool,
        engine,
        workers,
        shared,
        punts,
    }
}

/// Published counters summed over workers (cores, ports).
pub fn snapshot(shared: &[Arc<SharedCounters>]) -> (CoreCounters, Vec<PortCounters>) {
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

/// Name of the generator's thread in [`trial`].
pub const GEN_THREAD: &str = "hps-gen";

/// One engine run on the generator's own thread (pinned off the worker
/// cores), with the switch's counters over the run.
pub fn trial(
    engine: &mut Engine,
    cfg: &Config,
    shared: &[Arc<SharedCounters>],
) -> (RunResult, SwitchStats) {
    let before = snapshot(shared);
    let workers = cfg.switch.workers.clone();
    let stop = AtomicBool::new(false);
    let r = std::thread::scope(|sc| {
        std::thread::Builder::new()
            .name(GEN_THREAD.into())
            .spawn_scoped(sc, || {
                pktgen::pin_generator(&workers);
                engine.run(&stop)
            })
            .unwrap()
            .join()
            .expect("generator thread")
    });
    // Counters are published every 256 worker loops: let them settle.
    std::thread::sleep(Duration::from_millis(20));
    let s = pktgen::switch_stats(cfg, &before, &snapshot(shared));
    (r, s)
}

/// The delivered rate of a saturating run of the streams at `rates`
/// (frames/s per stream, None = as fast as possible) for `secs`: frames/s
/// received by the generator. The capacity the other runs of a test are
/// scaled to.
pub fn capacity(
    engine: &mut Engine,
    cfg: &Config,
    shared: &[Arc<SharedCounters>],
    rates: &[Option<f64>],
    secs: f64,
) -> f64 {
    let r = saturate(engine, cfg, shared, rates, secs);
    r.received as f64 / r.seconds
}

/// The saturating run of [`capacity`], whole.
pub fn saturate(
    engine: &mut Engine,
    cfg: &Config,
    shared: &[Arc<SharedCounters>],
    rates: &[Option<f64>],
    secs: f64,
) -> RunResult {
    engine.set_rates(rates);
    engine.set_duration(Some(secs));
    let (r, _) = trial(engine, cfg, shared);
    assert!(
        r.received > 0,
        "the saturating run delivered nothing: {r:?}"
    );
    r
}

/// Frames the far ends offered while the switch's RX rings were full, by
/// the ring ports' own count (`rx_refused`), summed over ports.
pub fn rx_refused(inst: &Instance) -> u64 {
    inst.ports
        .iter()
        .filter_map(|p| p.backend_stats())
        .filter_map(|v| v["rx_refused"].as_u64())
        .sum()
}

/// Watches a worker's published poll count every 2 ms and keeps the
/// longest time it did not move: how long the worker was off its core (it
/// publishes every 256 loops, well under a millisecond when it runs).
pub struct Stalls {
    stop: Arc<AtomicBool>,
    h: std::thread::JoinHandle<Duration>,
}

impl Stalls {
    pub fn start(shared: &[Arc<SharedCounters>]) -> Stalls {
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sh) = (stop.clone(), shared.to_vec());
        let h = std::thread::spawn(move || {
            let polls = || {
                let c = snapshot(&sh).0;
                c.empty_polls + c.bursts
            };
            let (mut last, mut since, mut worst) = (polls(), Instant::now(), Duration::ZERO);
            while !st.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(2));
                let p = polls();
                if p != last {
                    last = p;
                    since = Instant::now();
                } else {
                    worst = worst.max(since.elapsed());
                }
            }
            worst
        });
        Stalls { stop, h }
    }
    /// Stop; the longest stall.
    pub fn finish(self) -> Duration {
        self.stop.store(true, Ordering::Relaxed);
        self.h.join().expect("stall watcher")
    }
}

/// A control socket served from this process for `inst`'s workers.
pub struct Socket {
    pub path: PathBuf,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    srv: Option<server::SocketServer>,
    /// Keeps the host-job channel open (no job is answered: tests only
    /// ask for commands the telemetry threads answer themselves).
    _host: mpsc::Receiver<hairpin::telemetry::HostJob>,
}

impl Socket {
    pub fn serve(
        tag: &str,
        inst: &Instance,
        shared: &[Arc<SharedCounters>],
        clock: Clock,
    ) -> Socket {
        let (host, host_rx) = mpsc::channel();
        let view = Arc::new(View {
            ports: inst.ports.iter().map(|p| p.name().to_string()).collect(),
            workers: shared
                .iter()
                .zip(&inst.cfg.switch.workers)
                .map(|(s, &c)| WorkerView {
                    core: Some(c),
                    shared: s.clone(),
                })
                .collect(),
            fdb: inst.switch.fdb.clone(),
            cell: inst.switch.cell.clone(),
            clock,
            host: Mutex::new(host),
            started: Instant::now(),
            vm: None,
            capture: None,
        });
        let dir = std::env::temp_dir().join(format!("hps-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let srv = server::serve(
            view,
            server::SocketOpts {
                path: path.clone(),
                group: None,
                client_timeout: Duration::from_secs(5),
                worker_cores: inst.cfg.switch.workers.clone(),
            },
            stop.clone(),
        )
        .unwrap();
        Socket {
            path,
            dir,
            stop,
            srv: Some(srv),
            _host: host_rx,
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = self.srv.take() {
            s.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A control-socket client.
pub struct Client {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Client {
    pub fn connect(p: &std::path::Path) -> Client {
        let s = UnixStream::connect(p).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }
    /// Send a request, return the reply's `data` (panics on an error reply).
    pub fn ok(&mut self, req: Value) -> Value {
        writeln!(self.w, "{req}").unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ok"], true, "{req} → {v}");
        v["data"].clone()
    }
}

/// Queries the control socket (`drops`, `cores`, `queues` in turn, one every
/// `gap`) on its own thread until stopped; returns each answer's latency.
pub struct Querier {
    stop: Arc<AtomicBool>,
    h: std::thread::JoinHandle<Vec<Duration>>,
}

impl Querier {
    pub fn start(path: &std::path::Path, gap: Duration) -> Querier {
        let stop = Arc::new(AtomicBool::new(false));
        let (st, p) = (stop.clone(), path.to_path_buf());
        let h = std::thread::spawn(move || {
            let mut c = Client::connect(&p);
            let mut lat = Vec::new();
            let cmds = ["drops", "cores", "queues"];
            let mut i = 0;
            while !st.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let d = c.ok(json!({"cmd": cmds[i % cmds.len()]}));
                lat.push(t0.elapsed());
                assert!(!d.is_null());
                i += 1;
                std::thread::sleep(gap);
            }
            lat
        });
        Querier { stop, h }
    }
    /// Stop; the latencies, sorted.
    pub fn finish(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        let mut v = self.h.join().expect("querier panicked");
        v.sort();
        v
    }
}

/// The `q`-quantile (0..=1) of sorted latencies.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    assert!(!sorted.is_empty());
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Every core's counters add up: each frame received is transmitted,
/// dropped (with a reason) or punted; flood copies are extra transmissions.
pub fn assert_consistent(per_core: &[CoreCounters]) {
    for (i, c) in per_core.iter().enumerate() {
        assert_eq!(
            c.rx_pkts + c.flood_copies,
            c.tx_pkts + c.total_drops() + c.punted,
            "core {i}: rx + flood copies != tx + drops + punted: {}",
            c.to_json()
        );
    }
}

/// Stop the workers, drain every ring and punt queue back into the pool,
/// and check that no buffer is missing. Returns the final counters.
pub fn finish(
    running: Running,
    stop: &AtomicBool,
    engine: Engine,
    mut inst: Instance,
    mut punts: Vec<Consumer>,
    pool: &Arc<Pool>,
) -> runtime::Totals {
    stop.store(true, Ordering::Relaxed);
    let tasks = running.join();
    let t = runtime::totals(tasks.iter().flatten());
    drop(tasks);
    pktgen::drain_into_pool(engine.into_queues(), pool);
    for p in punts.iter_mut() {
        while let Some(b) = p.pop() {
            pool.free(b);
        }
    }
    for peer in inst.peers.iter_mut().flatten() {
        if let Some(mut q) = peer.take(0) {
            while let Some(b) = q.rx_one() {
                pool.free(b);
            }
        }
    }
    runtime::stop_ports(&mut inst.ports);
    assert_eq!(
        pool.available(),
        pool.capacity(),
        "buffers not returned to the pool"
    );
    t
}

/// Drops by reason of a run as (reason, count), non-zero only.
pub fn drops(s: &SwitchStats) -> Vec<(String, u64)> {
    s.drops.iter().map(|(k, v)| (k.clone(), *v)).collect()
}
