//! `hairpin bench`: measured scenarios (figures go to docs/performance.md).

use crate::buf::{Burst, MemMode, Pool};
use crate::config::Config;
use crate::gen::{udp_frame, vm_mac};
use crate::runtime::{self, Instance};
use crate::stats::CoreCounters;
use crate::util::{tsc_hz, Clock};
use crate::worker::{self, WorkerCfg};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options common to bench scenarios.
#[derive(Clone, Debug)]
pub struct BenchOpts {
    /// Measurement window.
    pub seconds: f64,
    /// Learned MACs the traffic cycles through.
    pub macs: u32,
    /// Burst size.
    pub burst: usize,
    /// Core for the switch worker.
    pub switch_core: Option<usize>,
    /// Core for the generator.
    pub gen_core: Option<usize>,
    /// Memory mode for the pool (None = best available).
    pub mem: Option<MemMode>,
    /// Frames kept in flight by the generator.
    pub inflight: usize,
    /// ACL rules in every VM's from-vm policy (0 = no policy at all).
    pub rules: usize,
    /// A meter on every VM and 8-class egress scheduling on the port.
    pub qos: bool,
    /// Every MAC a VM (anti-spoofing on the port) even without rules or QoS:
    /// the baseline `qos` is compared with.
    pub vms: bool,
    /// Entries of the worker's ACL flow cache (0 = off).
    pub flow_cache: usize,
    /// Each frame this many times in a row (1: every frame a different
    /// flow; the burst size: bursts of one flow, as from a single-stream
    /// generator).
    pub repeat: usize,
}

impl Default for BenchOpts {
    fn default() -> Self {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        BenchOpts {
            seconds: 5.0,
            macs: 1000,
            burst: 32,
            switch_core: (n > 1).then_some(1),
            gen_core: (n > 1).then_some(0),
            mem: None,
            inflight: 1536,
            rules: 0,
            qos: false,
            vms: false,
            flow_cache: crate::policy::flow::DEFAULT_ENTRIES,
            repeat: 1,
        }
    }
}

/// Result of one bench run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    /// Scenario name.
    pub scenario: String,
    /// Seconds measured.
    pub seconds: f64,
    /// Frames the generator put on the switch's RX ring in the window.
    pub offered: u64,
    /// Frames the switch forwarded (came back to the generator) in the window.
    pub forwarded: u64,
    /// Forwarded frames per second, millions.
    pub mpps: f64,
    /// Nanoseconds per forwarded frame (1 / rate).
    pub ns_per_frame: f64,
    /// TSC cycles on the switch core per forwarded frame (busy + idle polling).
    pub cycles_per_frame: f64,
    /// Share of the switch core's cycles spent on non-empty polls.
    pub busy_share: f64,
    /// Frames per non-empty RX poll on the switch core: below the burst size
    /// when the generator, not the switch, sets the pace.
    pub frames_per_burst: f64,
    /// Drops counted by the switch in the window.
    pub drops: u64,
    /// The same drops by reason (non-zero reasons only).
    pub drops_by_reason: std::collections::BTreeMap<String, u64>,
    /// Pool memory mode.
    pub mem: String,
    /// FDB entries at the end.
    pub fdb_entries: usize,
    /// TSC frequency used for cycle figures (GHz).
    pub tsc_ghz: f64,
    /// ACL rules per policy.
    pub rules: usize,
    /// Meters and egress scheduling on.
    pub qos: bool,
    /// Every MAC a VM (`--vms`), whatever the rules.
    pub vms: bool,
    /// Time to compile the policy snapshot (ms).
    pub snapshot_build_ms: f64,
    /// Entries of the ACL flow cache (0 = off).
    pub flow_cache: usize,
    /// Share of ACL lookups in the window answered by the flow cache.
    pub flow_cache_hit_rate: f64,
    /// Each frame this many times in a row (`--repeat`).
    pub repeat: usize,
    /// Distinct flows (source and destination MAC) among the frames in flight.
    pub flows: usize,
}

/// The policy part of the bench config: `n` rules of the rte_acl-style set
/// (random IPv4 prefixes, port ranges, TCP/UDP, a catch-all last), every rule
/// permits; with `qos` a meter per VM (far above the offered rate: all green)
/// and 8 egress classes on the port. Returns the TOML to append and the
/// 5-tuples the frames carry (half hit a random rule, half random).
pub fn policy_toml(n: usize, qos: bool, macs: u32) -> (String, Vec<crate::policy::acl::AclKey>) {
    use crate::policy::acl::bench_rules;
    use std::fmt::Write;
    let mut s = String::new();
    let (rules, keys) = bench_rules(n.max(1), 42);
    let _ = writeln!(s, "[policy.bench]\ndefault = \"permit\"");
    if qos {
        let _ = writeln!(s, "meter = \"vm\"\n[meter.vm]\ntype = \"srtcm\"\ncir = \"100G\"\ncbs = 1000000\nebs = 1000000");
    }
    let ip = |p: &crate::policy::acl::Prefix| {
        format!("{}/{}", std::net::Ipv4Addr::from(p.addr as u32), p.len)
    };
    for r in rules.iter().take(n) {
        let _ = writeln!(s, "[[policy.bench.rule]]\naction = \"permit\"");
        if let Some(p) = &r.src_ip {
            let _ = writeln!(s, "src_ip = \"{}\"", ip(p));
        }
        if let Some(p) = &r.dst_ip {
            let _ = writeln!(s, "dst_ip = \"{}\"", ip(p));
        }
        if let Some(p) = r.proto {
            let _ = writeln!(s, "proto = {p}");
        }
        if let Some((a, b)) = r.src_port {
            let _ = writeln!(s, "src_port = \"{a}-{b}\"");
        }
        if let Some((a, b)) = r.dst_port {
            let _ = writeln!(s, "dst_port = \"{a}-{b}\"");
        }
    }
    for k in 0..macs {
        let _ = writeln!(
            s,
            "[[vm]]\nname = \"vm{k}\"\nmac = \"{}\"\nvlan = 10\nport = \"hv1\"\npolicy = \"bench\"",
            vm_mac(k)
        );
    }
    (s, keys)
}

/// An IPv4 TCP (ACK) or UDP frame from `src` to `dst` carrying the 5-tuple of `key`.
pub fn tuple_frame(
    src: crate::types::Mac,
    dst: crate::types::Mac,
    key: &crate::policy::acl::AclKey,
) -> Vec<u8> {
    let fb = crate::wire::build::FrameBuilder::new().src(src).dst(dst);
    let (sa, da) = (
        std::net::Ipv4Addr::from(key.src_ip as u32),
        std::net::Ipv4Addr::from(key.dst_ip as u32),
    );
    if key.proto == 6 {
        fb.tcp4(sa, da, key.src_port, key.dst_port, 0x10)
    } else {
        fb.udp4(sa, da, key.src_port, key.dst_port)
    }
}

/// Share of ACL lookups in `w` (a counter delta) answered by the flow cache.
pub fn hit_rate(w: &CoreCounters) -> f64 {
    let n = w.flow_cache_hits + w.flow_cache_misses;
    if n > 0 {
        w.flow_cache_hits as f64 / n as f64
    } else {
        0.0
    }
}

/// One core, ring port, 64-byte frames hairpinned among `macs` learned MACs.
pub fn hairpin_fwd(o: &BenchOpts) -> Result<BenchResult, String> {
    let mut toml = format!(
        r#"
[switch]
role = "bridge"
workers = [{}]
burst = {}
pool_size = {}
ring_depth = 2048
flow_cache = {}
[switch.fdb]
capacity = 65536
per_port_limit = 65536
[[port]]
name = "hv1"
mode = "access"
pvid = 10
reflective_relay = true
"#,
        o.switch_core.unwrap_or(0),
        o.burst,
        o.inflight + 8192,
        o.flow_cache
    );
    let keys = add_policy(&mut toml, o);
    let cfg = Config::parse(&toml).map_err(|e| e.to_string())?;
    let t_build = Instant::now();
    crate::pipeline::Model::from_config(&cfg)?;
    let snapshot_build_ms = t_build.elapsed().as_secs_f64() * 1e3;
    let pool = Arc::new(
        Pool::with_mode(cfg.switch.pool_size, cfg.switch.mtu + 8, o.mem)
            .map_err(|e| e.to_string())?,
    );
    let mut inst = Instance::new(cfg, pool.clone())?;
    let mut peer = inst.peers[0]
        .take()
        .and_then(|mut p| p.take(0))
        .ok_or("no peer")?;
    let (task, _punt) = inst.task(0)?;
    let shared = task.shared.clone();
    let fdb = inst.switch.fdb.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let gen_stop = Arc::new(AtomicBool::new(false));
    let offered = Arc::new(AtomicU64::new(0));
    let forwarded = Arc::new(AtomicU64::new(0));

    let frames = inflight_frames(&pool, o, &keys)?;

    let wc = WorkerCfg {
        core: o.switch_core,
        burst: o.burst,
        idle_sleep_us: 0,
        idle_spin_us: 0,
    };
    let clock = Clock::new();
    let running = runtime::start(vec![(wc, vec![task])], clock, stop.clone())?;

    let (gs, of, fw) = (gen_stop.clone(), offered.clone(), forwarded.clone());
    let gen_core = o.gen_core;
    let burst_n = o.burst;
    let gen = std::thread::spawn(move || {
        if let Some(c) = gen_core {
            let _ = worker::pin(c);
        }
        let mut out = Burst::new(burst_n * 2);
        let mut back = Burst::new(burst_n);
        let mut pending = frames.into_iter();
        let (mut n_off, mut n_fwd) = (0u64, 0u64);
        let mut it = 0u64;
        // Frames go out in MAC order first (the learning pass), then every
        // frame that comes back is sent again unchanged.
        while !gs.load(Ordering::Relaxed) {
            while out.len() < burst_n {
                match pending.next() {
                    Some(b) => {
                        let _ = out.push(b);
                    }
                    None => break,
                }
            }
            n_off += peer.tx(&mut out) as u64;
            if out.len() <= burst_n {
                let got = peer.rx(&mut back);
                n_fwd += got as u64;
                for b in back.drain() {
                    // Room is guaranteed: out holds at most burst_n frames here.
                    out.push(b).expect("room in out");
                }
            }
            it += 1;
            if it % 64 == 0 {
                of.store(n_off, Ordering::Relaxed);
                fw.store(n_fwd, Ordering::Relaxed);
            }
        }
        of.store(n_off, Ordering::Relaxed);
        fw.store(n_fwd, Ordering::Relaxed);
        // Hand everything back for the pool check.
        let mut rest: Vec<_> = out.drain().collect();
        rest.extend(pending);
        while let Some(b) = peer.rx_one() {
            rest.push(b);
        }
        (rest, peer)
    });

    std::thread::sleep(Duration::from_millis(500)); // warm-up: learning, caches
    let snap = |s: &crate::stats::SharedCounters| s.load();
    let (o0, f0, c0, t0) = (
        offered.load(Ordering::Relaxed),
        forwarded.load(Ordering::Relaxed),
        snap(&shared),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    let (o1, f1, c1, dt) = (
        offered.load(Ordering::Relaxed),
        forwarded.load(Ordering::Relaxed),
        snap(&shared),
        t0.elapsed(),
    );
    gen_stop.store(true, Ordering::Relaxed);
    let (rest, mut peer) = gen.join().map_err(|_| "generator panicked")?;
    stop.store(true, Ordering::Relaxed);
    let tasks = running.join();
    for b in rest {
        pool.free(b);
    }
    while let Some(b) = peer.rx_one() {
        pool.free(b);
    }
    drop(tasks);

    Ok(result(
        "hairpin-fwd",
        o,
        Window {
            secs: dt.as_secs_f64(),
            offered: o1 - o0,
            forwarded: f1 - f0,
            before: &c0,
            after: &c1,
        },
        pool.mem_mode().name(),
        fdb.len(),
        snapshot_build_ms,
    ))
}

/// Add the `--rules`/`--qos`/`--vms` part to a bench config (`egress` on
/// the port with reflective relay, the policy and the VMs); returns the
/// 5-tuples the frames should carry (empty without rules).
pub fn add_policy(toml: &mut String, o: &BenchOpts) -> Vec<crate::policy::acl::AclKey> {
    if o.rules == 0 && !o.qos && !o.vms {
        return Vec::new();
    }
    if o.qos {
        *toml = toml.replace(
            "reflective_relay = true\n",
            "reflective_relay = true\negress = { strict = 2 }\n",
        );
    }
    let (t, keys) = policy_toml(o.rules, o.qos, o.macs.max(2));
    *toml += &t;
    keys
}

/// How many frames the generator keeps in flight (`inflight`, or one per MAC
/// when there are more MACs).
pub fn in_flight(o: &BenchOpts) -> usize {
    o.inflight.max(o.macs.max(2) as usize)
}

/// Distinct flows (source and destination MAC) among the frames in flight.
pub fn flows(o: &BenchOpts) -> usize {
    in_flight(o)
        .div_ceil(o.repeat.max(1))
        .min(o.macs.max(2) as usize)
}

/// The frames the generator keeps in flight ([`in_flight`] of them): with
/// j = k / `repeat`, frame k goes from MAC j to MAC j+7 (mod macs), carrying
/// `keys[j]`'s 5-tuple when there are keys. They hold [`flows`] flows.
pub fn inflight_frames(
    pool: &Pool,
    o: &BenchOpts,
    keys: &[crate::policy::acl::AclKey],
) -> Result<Vec<crate::buf::PktBuf>, String> {
    let macs = o.macs.max(2);
    let mut frames = Vec::with_capacity(o.inflight);
    let repeat = o.repeat.max(1);
    for k in 0..in_flight(o) {
        let j = k / repeat;
        let s = (j as u32) % macs;
        let d = (s + 7) % macs;
        let Some(mut b) = pool.alloc() else {
            for f in frames {
                pool.free(f);
            }
            return Err("switch.pool_size: too small for the frames in flight".into());
        };
        let bytes = match keys.get(j % keys.len().max(1)) {
            Some(key) => tuple_frame(vm_mac(s), vm_mac(d), key),
            None => udp_frame(vm_mac(d), vm_mac(s), None, j as u32),
        };
        pool.fill(&mut b, &bytes);
        frames.push(b);
    }
    Ok(frames)
}

/// What a bench saw in its measurement window.
pub struct Window<'a> {
    /// Seconds measured.
    pub secs: f64,
    /// Frames offered in the window.
    pub offered: u64,
    /// Frames that came back in the window.
    pub forwarded: u64,
    /// The switch core's counters at the start and the end of the window.
    pub before: &'a CoreCounters,
    /// See `before`.
    pub after: &'a CoreCounters,
}

/// The result of one bench run from its measurement window.
pub fn result(
    scenario: &str,
    o: &BenchOpts,
    win: Window<'_>,
    mem: &str,
    fdb_entries: usize,
    snapshot_build_ms: f64,
) -> BenchResult {
    let hz = tsc_hz(50);
    let (x, y) = (win.before.to_array(), win.after.to_array());
    let mut r = [0u64; CoreCounters::SLOTS];
    for i in 0..r.len() {
        r[i] = y[i].wrapping_sub(x[i]);
    }
    let w = CoreCounters::from_array(&r);
    let (secs, fwd) = (win.secs, win.forwarded);
    let cyc = (w.busy_cycles + w.idle_cycles) as f64;
    BenchResult {
        scenario: scenario.into(),
        seconds: secs,
        offered: win.offered,
        forwarded: fwd,
        mpps: fwd as f64 / secs / 1e6,
        ns_per_frame: secs * 1e9 / fwd.max(1) as f64,
        cycles_per_frame: if w.tx_pkts > 0 {
            cyc / w.tx_pkts as f64
        } else {
            f64::NAN
        },
        busy_share: if cyc > 0.0 {
            w.busy_cycles as f64 / cyc
        } else {
            0.0
        },
        frames_per_burst: w.rx_pkts as f64 / w.bursts.max(1) as f64,
        drops: w.total_drops(),
        drops_by_reason: crate::stats::DropReason::ALL
            .iter()
            .filter(|r| w.drops[**r as usize] > 0)
            .map(|r| (r.name().to_string(), w.drops[*r as usize]))
            .collect(),
        mem: mem.into(),
        fdb_entries,
        tsc_ghz: hz / 1e9,
        rules: o.rules,
        qos: o.qos,
        vms: o.vms || o.rules > 0 || o.qos,
        snapshot_build_ms,
        flow_cache: o.flow_cache,
        flow_cache_hit_rate: hit_rate(&w),
        repeat: o.repeat.max(1),
        flows: flows(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--repeat R`: each frame R times in a row, so bursts of R frames are
    /// one flow; fewer flows in flight.
    #[test]
    fn repeat_sends_each_frame_that_many_times_in_a_row() {
        let pool = Pool::with_mode(4096, 2048, Some(MemMode::Plain)).unwrap();
        for (repeat, want_flows) in [(1, 1000), (32, 48), (256, 6)] {
            let o = BenchOpts {
                repeat,
                ..BenchOpts::default()
            };
            assert_eq!(flows(&o), want_flows);
            let frames = inflight_frames(&pool, &o, &[]).unwrap();
            assert_eq!(frames.len(), 1536);
            let head = |i: usize| pool.data(&frames[i])[..18].to_vec();
            let mut distinct = std::collections::HashSet::new();
            for i in 0..frames.len() {
                distinct.insert(pool.data(&frames[i])[..12].to_vec());
                if i % repeat != 0 {
                    assert_eq!(pool.data(&frames[i]), pool.data(&frames[i - 1]));
                } else if i > 0 {
                    assert_ne!(head(i), head(i - 1));
                }
            }
            assert_eq!(distinct.len(), want_flows);
            for f in frames {
                pool.free(f);
            }
        }
    }

    /// The bench's policy permits every frame it generates (or the bench measures drops).
    #[test]
    fn bench_policy_permits_its_frames() {
        for (n, qos) in [(1, false), (100, false), (100, true)] {
            let (t, keys) = policy_toml(n, qos, 4);
            let base = "[switch]\nworkers = [0]\n[[port]]\nname = \"hv1\"\nmode = \"access\"\npvid = 10\nreflective_relay = true\n";
            let base = if qos {
                base.replace(
                    "reflective_relay = true\n",
                    "reflective_relay = true\negress = { strict = 2 }\n",
                )
            } else {
                base.to_string()
            };
            let cfg = Config::parse(&(base + &t)).unwrap();
            let mut h = crate::harness::Harness::new(cfg, false).unwrap();
            let frames: Vec<Vec<u8>> = keys
                .iter()
                .take(64)
                .enumerate()
                .map(|(k, key)| tuple_frame(vm_mac(k as u32 % 4), vm_mac((k as u32 + 1) % 4), key))
                .collect();
            let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
            h.run(0, &refs, 1);
            assert_eq!(
                h.counters().total_drops(),
                0,
                "n={n} qos={qos}: {}",
                h.counters().to_json()
            );
            assert_eq!(h.counters().tx_pkts, 64 + h.counters().flood_copies);
        }
    }
}
