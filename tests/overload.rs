//! Overload (issue 8, item 7): twice the capacity of a shaped port with
//! three traffic classes, a MAC flood against the FDB's limits, and a
//! control-frame flood against the punt rate limit. Every test measures what
//! the switch can do first and scales its offered load to that, so a busy
//! machine changes the figures, not the verdict.

mod stress;

use hairpin::buf::{Burst, Pool};
use hairpin::config::Config;
use hairpin::port::ring::RingQueue;
use hairpin::runtime::{self, Instance};
use hairpin::types::{Mac, PortId, Vid};
use hairpin::util::Clock;
use hairpin::worker::WorkerCfg;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stress::*;

/// The control socket must answer within this (the issue's bound).
const ANSWER_BOUND: Duration = Duration::from_millis(100);
/// What `shape = "1.2M"` carries of 250-byte frames, frames/s. (A low
/// rate on purpose: the worker's shaper bucket, at least two 1518-byte
/// frames, then covers 20 ms, so a worker briefly descheduled on a busy
/// machine does not lose the port's capacity.)
const NOMINAL: f64 = 1.2e6 / (250.0 * 8.0);

/// Three senders on hv1 (classes 7, 1 and 0 by their policies) and a
/// receiver on hv2, whose egress is shaped: strict priority for classes 7
/// and 6, DRR for the rest with weight 3 for class 1 and 1 for class 0.
fn shaped_cfg() -> String {
    format!(
        r#"
[switch]
role = "bridge"
workers = [{}]
pool_size = 16384
ring_depth = 4096
[policy.gold]
default = "permit"
class = 7
[policy.silver]
default = "permit"
class = 1
[policy.bronze]
default = "permit"
class = 0
[[port]]
name = "hv1"
mode = "access"
pvid = 10
[[port]]
name = "hv2"
mode = "access"
pvid = 10
egress = {{ strict = 2, weights = [1, 3, 1, 1, 1, 1], shape = "1.2M", depth = 128 }}
[[vm]]
name = "g"
mac = "02:00:00:00:00:01"
vlan = 10
port = "hv1"
policy = "gold"
[[vm]]
name = "s"
mac = "02:00:00:00:00:02"
vlan = 10
port = "hv1"
policy = "silver"
[[vm]]
name = "b"
mac = "02:00:00:00:00:03"
vlan = 10
port = "hv1"
policy = "bronze"
[[vm]]
name = "d"
mac = "02:00:00:00:00:04"
vlan = 10
port = "hv2"
"#,
        last_core()
    )
}

/// Offer twice what hv2 can carry: it keeps carrying its capacity, the
/// excess is counted (`queue_full`), the strict class gets everything it
/// sent, the DRR classes share the rest 3:1, and the control socket keeps
/// answering within 100 ms.
#[test]
fn twice_the_capacity_keeps_forwarding_and_shares() {
    let _one = serial();
    let streams = [
        "name=gold,src=g,dst=d,size=250",
        "name=silver,src=s,dst=d,size=250",
        "name=bronze,src=b,dst=d,size=250",
    ];
    let Built {
        cfg,
        inst,
        pool,
        mut engine,
        workers,
        shared,
        punts,
    } = build(&shaped_cfg(), &streams, 1.0);
    let clock = Clock::new();
    let sock = Socket::serve("overload", &inst, &shared, clock);
    let stop = Arc::new(AtomicBool::new(false));
    let running = runtime::start(workers, clock, stop.clone()).unwrap();

    // The capacity: hv2 saturated (1.5 times the nominal rate offered,
    // paced, so that the worker's core is as busy as in the overload run
    // below). What hv2 transmits is measured in the middle of the run, away
    // from the start and from the queues draining at the end.
    let w = Window::start(&sock.path, &shared, 0.5, 1.8);
    let _ = capacity(&mut engine, &cfg, &shared, &[Some(NOMINAL / 2.0); 3], 2.0);
    let cap = w.finish().tx_rate;
    assert!(
        cap > 0.3 * NOMINAL && cap < NOMINAL * 1.05,
        "capacity {cap} frames/s"
    );

    // Twice that: 10 % of the offer in class 7, 45 % each in classes 1 and 0.
    engine.set_rates(&[Some(0.2 * cap), Some(0.9 * cap), Some(0.9 * cap)]);
    engine.set_duration(Some(2.5));
    let q = Querier::start(&sock.path, Duration::from_millis(5));
    let w = Window::start(&sock.path, &shared, 0.5, 2.2);
    let stalls = Stalls::start(&shared);
    let (r, sw) = trial(&mut engine, &cfg, &shared);
    let stalled = stalls.finish();
    let win = w.finish();
    let lat = q.finish();
    let (gold, silver, bronze) = (&r.streams[0], &r.streams[1], &r.streams[2]);
    let offered_rate = r.offered as f64 / r.seconds;
    let delivered = win.tx_rate;
    eprintln!(
        "capacity {cap:.0}/s; offered {offered_rate:.0}/s, delivered {delivered:.0}/s; \
         gold {}/{} silver {}/{} bronze {}/{}; sent by class in the window {:?}; drops {:?}; \
         socket: {} answers, p50 {:?} p99 {:?} max {:?}; worker off its core for up to {stalled:?}",
        gold.received,
        gold.offered,
        silver.received,
        silver.offered,
        bronze.received,
        bronze.offered,
        win.dequeued,
        sw.drops,
        lat.len(),
        quantile(&lat, 0.5),
        quantile(&lat, 0.99),
        lat.last().unwrap()
    );
    assert!(
        offered_rate > 1.6 * cap,
        "the generator offered {offered_rate}/s, not twice {cap}/s"
    );
    // Deep rings: nothing was refused at the switch's ingress; every frame
    // not delivered is a tail drop of the egress queues, counted as such.
    assert_eq!(r.streams.iter().map(|s| s.refused).sum::<u64>(), 0);
    assert_eq!(r.foreign, 0);
    assert_eq!(drops(&sw), vec![("queue_full".to_string(), r.lost)]);
    assert!(r.lost as f64 > 0.3 * r.offered as f64, "{r:?}");
    assert!(delivered < NOMINAL * 1.05, "delivered {delivered}/s");
    // A worker taken off its core by other jobs for longer than the strict
    // class's queue lasts (128 frames at 20 % of the capacity: a second)
    // drops that class too; that is the machine, not the scheduler: said,
    // and the share checks are left out of that run.
    if stalled > Duration::from_millis(250) {
        eprintln!(
            "overload: the worker was off its core for {stalled:?} (busy machine): rate and share checks skipped"
        );
    } else {
        // Forwarding at capacity, not collapsing under the excess.
        assert!(
            delivered > 0.8 * cap && delivered < 1.2 * cap,
            "delivered {delivered}/s at capacity {cap}/s"
        );
        // The strict class keeps its share: all of it.
        assert_eq!(gold.lost, 0, "class 7 lost frames: {gold:?}");
        // The DRR classes share what is left by their weights (3:1), while
        // both are backlogged (the window).
        let ratio = win.dequeued[1] as f64 / win.dequeued[0].max(1) as f64;
        assert!(
            (2.5..=3.5).contains(&ratio),
            "class 1 / class 0 = {ratio} (weights 3:1)"
        );
    }
    // The control socket answered throughout. The bound is the issue's; on
    // a machine shared with other jobs one answer may wait for a core, so
    // the 99th percentile of the answers is what must stay within it.
    assert!(lat.len() >= 100, "only {} answers", lat.len());
    assert!(
        quantile(&lat, 0.99) < ANSWER_BOUND,
        "p99 of {} answers: {:?}",
        lat.len(),
        quantile(&lat, 0.99)
    );
    // The socket says what the run said.
    let mut c = Client::connect(&sock.path);
    let d = c.ok(json!({"cmd": "drops"}));
    assert!(d["by_reason"]["queue_full"].as_u64().unwrap() >= r.lost);
    let qs = c.ok(json!({"cmd": "queues"}));
    assert!(qs.get("hv2").is_some(), "{qs}");
    drop(c);
    drop(sock);
    let t = finish(running, &stop, engine, inst, punts, &pool);
    assert_consistent(&t.per_core);
}

/// What hv2 (port 1) did between two moments of a run: frames/s it
/// transmitted (the worker's counters) and frames each class sent (the
/// control socket's `queues`).
struct WindowResult {
    tx_rate: f64,
    /// Frames dequeued by class 0..=7.
    dequeued: [u64; 8],
}

struct Window(std::thread::JoinHandle<WindowResult>);

impl Window {
    fn start(
        sock: &std::path::Path,
        shared: &[Arc<hairpin::stats::SharedCounters>],
        from: f64,
        to: f64,
    ) -> Window {
        let (sock, shared) = (sock.to_path_buf(), shared.to_vec());
        Window(std::thread::spawn(move || {
            let mut c = Client::connect(&sock);
            let classes = |c: &mut Client| {
                let q = c.ok(json!({"cmd": "queues"}));
                let mut d = [0u64; 8];
                for x in q["hv2"].as_array().expect("hv2 has egress queues") {
                    d[x["class"].as_u64().unwrap() as usize] = x["dequeued"].as_u64().unwrap();
                }
                d
            };
            std::thread::sleep(Duration::from_secs_f64(from));
            let (t0, p0, d0) = (Instant::now(), snapshot(&shared).1[1], classes(&mut c));
            std::thread::sleep(Duration::from_secs_f64(to - from));
            let (dt, p1, d1) = (
                t0.elapsed().as_secs_f64(),
                snapshot(&shared).1[1],
                classes(&mut c),
            );
            WindowResult {
                tx_rate: (p1.tx_pkts - p0.tx_pkts) as f64 / dt,
                dequeued: std::array::from_fn(|i| d1[i] - d0[i]),
            }
        }))
    }
    fn finish(self) -> WindowResult {
        self.0.join().expect("window thread")
    }
}

/// The far ends of ring cables, driven from the test thread.
struct Gen {
    peers: Vec<RingQueue>,
    pool: Arc<Pool>,
    out: Burst,
    back: Burst,
    /// Frames received per port.
    got: Vec<u64>,
    /// Frames sent (all ports).
    sent: u64,
}

/// Frames the test's generator keeps in flight (below the rings' 1024).
const WINDOW: u64 = 512;

impl Gen {
    fn new(inst: &mut Instance, pool: &Arc<Pool>) -> Gen {
        let peers: Vec<RingQueue> = inst
            .peers
            .iter_mut()
            .map(|p| p.as_mut().unwrap().take(0).unwrap())
            .collect();
        let n = peers.len();
        Gen {
            peers,
            pool: pool.clone(),
            out: Burst::new(32),
            back: Burst::new(64),
            got: vec![0; n],
            sent: 0,
        }
    }
    fn drain(&mut self) {
        for (i, q) in self.peers.iter_mut().enumerate() {
            while q.rx(&mut self.back) > 0 {
                self.got[i] += self.back.len() as u64;
                for f in self.back.drain() {
                    self.pool.free(f);
                }
            }
        }
    }
    /// Send `n` frames into port `p`: frame `k` is `make(k)` written over a
    /// copy of `template`. Waits (draining) while the ring is full.
    fn send(&mut self, p: usize, template: &[u8], n: u64, make: impl Fn(u64, &mut [u8])) {
        let t0 = Instant::now();
        let mut k = 0;
        while k < n || !self.out.is_empty() {
            // At most WINDOW frames in flight: a receiver that fell behind
            // (this thread descheduled) never sees more than its ring holds.
            while k < n
                && self.out.space() > 0
                && self.sent + k - self.got.iter().sum::<u64>().min(self.sent + k) < WINDOW
            {
                let Some(mut b) = self.pool.alloc() else {
                    break;
                };
                assert!(self.pool.fill(&mut b, template));
                make(k, self.pool.data_mut(&mut b));
                self.out.push(b).unwrap();
                k += 1;
            }
            // The receivers read as they go, like VMs (a full TX ring of
            // the switch would drop: `tx_full`).
            if self.peers[p].tx(&mut self.out) == 0 {
                std::thread::yield_now();
            }
            self.drain();
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "port {p} stopped taking frames"
            );
        }
        self.sent += n;
    }
    /// Drain until the switch's counters show every received frame handled.
    fn settle(&mut self, shared: &[Arc<hairpin::stats::SharedCounters>], rx: u64) {
        let t0 = Instant::now();
        loop {
            self.drain();
            let (c, _) = snapshot(shared);
            if c.rx_pkts >= rx
                && c.tx_pkts + c.total_drops() + c.punted >= c.rx_pkts + c.flood_copies
            {
                std::thread::sleep(Duration::from_millis(20));
                self.drain();
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the switch never settled: {}",
                c.to_json()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The cores this process's thread `name` may run on
/// (`Cpus_allowed_list` in its status), None when there is no such thread.
fn allowed_cpus(name: &str) -> Option<Vec<usize>> {
    for t in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        if std::fs::read_to_string(t.path().join("comm")).ok()?.trim() != name {
            continue;
        }
        let st = std::fs::read_to_string(t.path().join("status")).ok()?;
        let list = st
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
        let mut v = Vec::new();
        for part in list.trim().split(',') {
            match part.split_once('-') {
                Some((a, b)) => v.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
                None => v.push(part.parse().ok()?),
            }
        }
        return Some(v);
    }
    None
}

fn mac(b: [u8; 6]) -> Mac {
    Mac(b)
}

/// A VM sends from a million source MACs: its port learns up to its limit,
/// the table stops at its capacity, nothing anyone else learned is evicted,
/// the other VMs keep talking as known unicast (no flooding), and the
/// refused learns are counted.
#[test]
fn a_million_source_macs_respect_the_fdb_limits() {
    let _one = serial();
    const FLOOD: u64 = 1_000_000;
    const SECOND: u64 = 20_000;
    let toml = format!(
        r#"
[switch]
role = "bridge"
workers = [{}]
pool_size = 4096
ring_depth = 1024
[switch.fdb]
capacity = 4096
per_port_limit = 2048
[[port]]
name = "hv1"
mode = "access"
pvid = 10
[[port]]
name = "hv2"
mode = "access"
pvid = 10
[[port]]
name = "hv3"
mode = "access"
pvid = 10
[[port]]
name = "hv4"
mode = "access"
pvid = 10
"#,
        last_core()
    );
    let cfg = Config::parse(&toml).unwrap();
    let pool = runtime::make_pool(&cfg, 0).unwrap();
    let mut inst = Instance::new(cfg.clone(), pool.clone()).unwrap();
    let mut g = Gen::new(&mut inst, &pool);
    let (task, punt) = inst.task(0).unwrap();
    let shared = vec![task.shared.clone()];
    let fdb = inst.switch.fdb.clone();
    let clock = Clock::new();
    let sock = Socket::serve("macflood", &inst, &shared, clock);
    let stop = Arc::new(AtomicBool::new(false));
    let wc = WorkerCfg {
        core: Some(last_core()),
        burst: 32,
        idle_sleep_us: 0,
        idle_spin_us: 0,
    };
    let running = runtime::start(vec![(wc, vec![task])], clock, stop.clone()).unwrap();

    // z (behind hv1, the flooder's own port), x (hv3) and y (hv4) speak first.
    let (z, x, y) = (
        mac([2, 0, 0, 0, 0, 0x1a]),
        mac([2, 0, 0, 0, 0, 0x3a]),
        mac([2, 0, 0, 0, 0, 0x4a]),
    );
    for (p, m) in [(0, z), (2, x), (3, y)] {
        g.send(
            p,
            &hairpin::gen::udp_frame(Mac::BROADCAST, m, None, 0),
            1,
            |_, _| {},
        );
    }
    g.settle(&shared, 3);
    for (m, p) in [(z, 0), (x, 2), (y, 3)] {
        assert_eq!(
            fdb.lookup(m, Vid(10), clock.now_ms()).map(|e| e.port),
            Some(PortId(p))
        );
    }
    let before = snapshot(&shared).0;

    // The flood: a million distinct sources on hv1, then 20000 on hv2, all
    // to x (known unicast). Source k is 06:xx:xx:xx:xx:xx (locally
    // administered, unicast), distinct per port.
    let t0 = Instant::now();
    let to_x = hairpin::gen::udp_frame(x, z, None, 0);
    let src = |port: u8| {
        move |k: u64, f: &mut [u8]| {
            f[6] = 0x06;
            f[7] = port;
            f[8..12].copy_from_slice(&(k as u32).to_be_bytes());
        }
    };
    g.send(0, &to_x, FLOOD, src(1));
    g.send(1, &to_x, SECOND, src(2));
    g.settle(&shared, 3 + FLOOD + SECOND);
    let flood_secs = t0.elapsed().as_secs_f64();
    let after = snapshot(&shared).0;

    // The limits: hv1 stops at its per-port limit (z included), the table
    // at its capacity, so hv2 gets what is left.
    let cap = fdb.capacity();
    assert_eq!(cap, 4096);
    assert_eq!(fdb.len(), cap, "the table is full, never over");
    assert_eq!(fdb.learned_on(PortId(0)), 2048);
    assert_eq!(fdb.learned_on(PortId(1)), cap - 2048 - 2);
    // Never evicted: the entries learned before the flood are still there.
    for (m, p) in [(z, 0), (x, 2), (y, 3)] {
        assert_eq!(
            fdb.lookup(m, Vid(10), clock.now_ms()).map(|e| e.port),
            Some(PortId(p)),
            "{m} was evicted"
        );
    }
    // Counted: every source not learned.
    let learned = (2048 - 1) + (cap as u64 - 2048 - 2);
    assert_eq!(after.fdb_learned - before.fdb_learned, learned);
    assert_eq!(
        after.fdb_learn_refused - before.fdb_learn_refused,
        FLOOD + SECOND - learned
    );
    // The flood itself went to x as known unicast.
    assert_eq!(after.flood_copies, before.flood_copies);
    assert_eq!(
        g.got[2],
        FLOOD + SECOND + 2,
        "x got the flood frames (and two broadcasts): {}",
        after.to_json()
    );

    // Other VMs keep forwarding as known unicast: x ↔ y and z → y arrive on
    // their port only, with no flood copy.
    let got0 = g.got.clone();
    g.send(2, &hairpin::gen::udp_frame(y, x, None, 0), 1000, |_, _| {});
    g.send(3, &hairpin::gen::udp_frame(x, y, None, 0), 1000, |_, _| {});
    g.send(0, &hairpin::gen::udp_frame(y, z, None, 0), 1000, |_, _| {});
    g.settle(&shared, 3 + FLOOD + SECOND + 3000);
    let end = snapshot(&shared).0;
    assert_eq!(
        end.flood_copies, before.flood_copies,
        "known unicast was flooded"
    );
    let delta: Vec<u64> = g.got.iter().zip(&got0).map(|(a, b)| a - b).collect();
    assert_eq!(delta, vec![0, 0, 1000, 2000]);
    assert_eq!(end.total_drops(), 0, "{}", end.to_json());

    // The control socket shows the full table.
    let mut c = Client::connect(&sock.path);
    let f = c.ok(json!({"cmd": "fdb", "port": "hv3"}));
    assert_eq!(f["total"], cap);
    assert_eq!(f["capacity"], cap);
    assert_eq!(f["matched"], 1);
    assert_eq!(f["entries"][0]["mac"], x.to_string());
    let cores = c.ok(json!({"cmd": "cores"}));
    eprintln!(
        "{} frames of the flood in {flood_secs:.1} s; cores: {cores}",
        FLOOD + SECOND
    );
    drop(c);
    drop(sock);

    stop.store(true, Ordering::Relaxed);
    let tasks = running.join();
    let t = runtime::totals(tasks.iter().flatten());
    assert_consistent(&t.per_core);
    drop(tasks);
    g.drain();
    drop(punt);
    drop(g);
    assert_eq!(pool.available(), pool.capacity());
}

/// LLDP and ECP frames flooded into an EVB port while data flows between
/// two others: the control thread takes at most `evb.punt_rate` of them per
/// second (the rest counted as `rate_limited`, or `punt_full` when its
/// queue is full), and the data traffic is delivered as without the flood.
#[test]
fn a_control_frame_flood_is_rate_limited_and_data_unaffected() {
    let _one = serial();
    const PUNT_RATE: u64 = 200;
    let toml = format!(
        r#"
[switch]
role = "bridge"
workers = [{}]
pool_size = 16384
ring_depth = 4096
punt_queue = 256
[evb]
punt_rate = {PUNT_RATE}
[[port]]
name = "hv1"
mode = "access"
pvid = 10
[[port]]
name = "hv2"
mode = "access"
pvid = 10
[[port]]
name = "ctl"
mode = "trunk"
vlans = []
evb = "bridge"
[[vm]]
name = "a"
mac = "02:00:00:00:00:01"
vlan = 10
port = "hv1"
[[vm]]
name = "c"
mac = "02:00:00:00:00:03"
vlan = 10
port = "hv2"
"#,
        last_core()
    );
    let Built {
        cfg,
        mut inst,
        pool,
        mut engine,
        mut workers,
        shared,
        punts,
    } = build(&toml, &["src=a,dst=c,size=64", "src=c,dst=a,size=64"], 1.5);
    let ctl_thread = hairpin::control::thread::prepare(&inst, &mut workers, &pool)
        .unwrap()
        .expect("an EVB port");
    let mut ctl_q = inst.peers[2].as_mut().unwrap().take(0).unwrap();
    let clock = Clock::new();
    let stop = Arc::new(AtomicBool::new(false));
    let running = runtime::start(workers, clock, stop.clone()).unwrap();
    let t_ctl = Instant::now();
    let ctl_thread = ctl_thread.spawn(clock, stop.clone()).unwrap();
    // The control thread keeps off the worker's core (a flood keeps it busy).
    if last_core() > 0 {
        let t0 = Instant::now();
        loop {
            let cpus = allowed_cpus("hp-control");
            if cpus.as_ref().is_some_and(|c| !c.contains(&last_core())) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "the control thread may run on the worker's core: {cpus:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    // Capacity of the data path, then a baseline at 40 % of it.
    let cap = capacity(&mut engine, &cfg, &shared, &[None, None], 1.0);
    let rate = 0.2 * cap;
    engine.set_rates(&[Some(rate), Some(rate)]);
    engine.set_duration(Some(1.5));
    let (base, base_sw) = trial(&mut engine, &cfg, &shared);

    // The same with a flood of control frames at 30 % of the capacity
    // (far above the punt rate), LLDP and ECP in turn, from the ctl port's
    // far end; on the generator's core, not the worker's.
    let flood_rate = 0.3 * cap;
    let lldp = {
        let mut f = vec![
            0x01, 0x80, 0xc2, 0, 0, 0x0e, 0x02, 0, 0, 0, 0, 0x99, 0x88, 0xcc,
        ];
        f.resize(60, 0);
        f
    };
    let ecp = {
        let mut f = vec![
            0x01, 0x80, 0xc2, 0, 0, 0, 0x02, 0, 0, 0, 0, 0x99, 0x89, 0x40, 0x10, 0x01,
        ];
        f.resize(60, 0);
        f
    };
    let fstop = Arc::new(AtomicBool::new(false));
    let (fs, fpool, gen_workers) = (fstop.clone(), pool.clone(), cfg.switch.workers.clone());
    let flooder = std::thread::spawn(move || {
        hairpin::pktgen::pin_generator(&gen_workers);
        let t0 = Instant::now();
        let (mut sent, mut back) = (0u64, Burst::new(64));
        while !fs.load(Ordering::Relaxed) {
            // Paced in 1 ms steps.
            let due = (t0.elapsed().as_secs_f64() * flood_rate) as u64;
            while sent < due {
                let Some(mut b) = fpool.alloc() else { break };
                let f = if sent % 2 == 0 { &lldp } else { &ecp };
                assert!(fpool.fill(&mut b, f));
                match ctl_q.tx_one(b) {
                    Ok(()) => sent += 1,
                    Err(b) => {
                        fpool.free(b);
                        break;
                    }
                }
            }
            // What the bridge sends on ctl (its own LLDP) is read and freed.
            while ctl_q.rx(&mut back) > 0 {
                for f in back.drain() {
                    fpool.free(f);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        (sent, ctl_q)
    });
    std::thread::sleep(Duration::from_millis(100));
    let (flood, flood_sw) = trial(&mut engine, &cfg, &shared);
    fstop.store(true, Ordering::Relaxed);
    let (sent, mut ctl_q) = flooder.join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let ran = t_ctl.elapsed().as_secs_f64();
    let mut ctl_thread = ctl_thread.join().unwrap();
    ctl_thread.drain_punts();
    let summary = ctl_thread.summary();
    let plane = &summary["plane"];
    eprintln!(
        "capacity {cap:.0}/s; data at {:.0}/s: baseline {}/{} drops {:?}, with the flood {}/{} drops {:?}; \
         {sent} control frames sent at {flood_rate:.0}/s; plane {plane}",
        2.0 * rate,
        base.received,
        base.offered,
        base_sw.drops,
        flood.received,
        flood.offered,
        flood_sw.drops
    );

    // Data unaffected: with and without the flood every data frame offered
    // is delivered. (The generator paces the same rate both times; on a
    // busy machine it may slip and offer less in one run — counted in
    // `pacer_slips` — so the comparison is delivered vs offered, per run.)
    for r in [&base, &flood] {
        assert_eq!(r.lost, 0, "{:?}", r.streams);
        assert_eq!(r.received, r.offered);
        assert!(r.errors().is_empty(), "{:?}", r.errors());
        assert!(
            r.offered as f64 >= 0.2 * 2.0 * rate * 1.5,
            "the generator offered only {} frames",
            r.offered
        );
    }
    assert!(base_sw.drops.is_empty(), "{:?}", base_sw.drops);
    // The only drops with the flood are control frames the punt queue could not take.
    assert!(
        flood_sw.drops.keys().all(|k| k == "punt_full"),
        "{:?}",
        flood_sw.drops
    );
    // Rate limited: the control plane handled at most punt_rate per second
    // (plus one second of burst); everything else is counted.
    assert!(
        sent as f64 > 0.5 * flood_rate * 1.5,
        "only {sent} control frames sent"
    );
    let rx = plane["rx_frames"].as_u64().unwrap();
    let limited = plane["rate_limited"].as_u64().unwrap();
    let handled = rx - limited;
    assert!(
        handled as f64 <= PUNT_RATE as f64 * (ran + 1.0),
        "{handled} control frames handled in {ran:.1} s at {PUNT_RATE}/s"
    );
    assert!(limited > 0, "nothing rate limited: {plane}");
    drop(ctl_thread);

    let t = {
        // Frames the bridge sent on ctl after the flooder stopped.
        let mut back = Burst::new(64);
        while ctl_q.rx(&mut back) > 0 {
            for f in back.drain() {
                pool.free(f);
            }
        }
        finish(running, &stop, engine, inst, punts, &pool)
    };
    assert_consistent(&t.per_core);
    // Every control frame sent was punted or counted as punt_full.
    let ctl_port = &t.ports[2];
    assert_eq!(ctl_port.rx_pkts, sent);
    let punt_full = t.core.drops[hairpin::stats::DropReason::PuntFull as usize];
    assert_eq!(t.core.punted + punt_full, sent, "{}", t.core.to_json());
    assert!(rx <= t.core.punted);
}
