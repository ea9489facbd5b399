//! `hairpin compare`: the same VMs and traffic through (a) a VEPA edge and a
//! hairpin bridge with reflective relay, and (b) a VEB edge switching locally.
//!
//! Both topologies run on in-memory ring ports. The generator (its own core)
//! sends VM-to-VM unicast plus one broadcast in 16 from every VM, and counts
//! what each VM receives; the switches run on one worker core. Figures are
//! measured, never derived: offered = frames the edge accepted from the VMs,
//! delivered = frames the VMs received.

use crate::buf::{Burst, Pool, PoolCache};
use crate::config::Config;
use crate::gen::{udp_frame, vm_mac};
use crate::port::ring::{RingPort, RingQueue};
use crate::port::Port;
use crate::runtime::{self, Instance, Totals};
use crate::stats::DropReason;
use crate::util::Clock;
use crate::worker::{self, WorkerCfg};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options.
#[derive(Clone, Debug)]
pub struct CompareOpts {
    /// VMs behind the edge.
    pub vms: u32,
    /// Seconds per topology.
    pub seconds: f64,
    /// One frame in `bcast_every` is a broadcast (0 = none).
    pub bcast_every: u32,
    /// Core for the switches.
    pub switch_core: Option<usize>,
    /// Core for the generator.
    pub gen_core: Option<usize>,
}

impl Default for CompareOpts {
    fn default() -> Self {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        CompareOpts {
            vms: 4,
            seconds: 3.0,
            bcast_every: 16,
            switch_core: (n > 1).then_some(1),
            gen_core: Some(0),
        }
    }
}

/// Results of one topology.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TopoResult {
    /// Topology name.
    pub topology: String,
    /// Seconds measured.
    pub seconds: f64,
    /// Unicast frames the VMs sent (accepted by the edge).
    pub offered_unicast: u64,
    /// Broadcast frames the VMs sent.
    pub offered_broadcast: u64,
    /// Deliveries expected: each unicast once, each broadcast to every other VM.
    pub expected: u64,
    /// Frames received by VMs.
    pub delivered: u64,
    /// Frames a VM received that it had sent itself (must be 0).
    pub self_echo: u64,
    /// Offered frames per second (millions).
    pub offered_mpps: f64,
    /// Delivered frames per second (millions).
    pub delivered_mpps: f64,
    /// Frames crossing the edge's uplink (both directions).
    pub uplink_frames: u64,
    /// Frames reflected by the bridge (sent back out their ingress port).
    pub reflected: u64,
    /// Drops by reason, summed over the switches.
    pub drops: BTreeMap<String, u64>,
    /// Frames still queued when the run stopped (neither delivered nor dropped).
    pub in_flight_at_stop: u64,
}

fn edge_cfg(role: &str, vms: u32, core: usize) -> Config {
    let mut s = format!(
        "[switch]\nrole = \"{role}\"\nworkers = [{core}]\npool_size = 64\n[switch.fdb]\ncapacity = 4096\nper_port_limit = 4096\n"
    );
    for v in 0..vms {
        s += &format!(
            "[[port]]\nname = \"vm{}\"\nmode = \"access\"\npvid = 10\n",
            v + 1
        );
    }
    s += "[[port]]\nname = \"uplink\"\nmode = \"trunk\"\nvlans = [10]\nuplink = true\n";
    for v in 0..vms {
        s += &format!(
            "[[vm]]\nname = \"vm{n}\"\nmac = \"{}\"\nvlan = 10\nport = \"vm{n}\"\n",
            vm_mac(v + 1),
            n = v + 1
        );
    }
    Config::parse(&s).expect("built-in edge config")
}

fn bridge_cfg(core: usize) -> Config {
    let s = format!(
        "[switch]\nrole = \"bridge\"\nworkers = [{core}]\npool_size = 64\n[[port]]\nname = \"hv1\"\nmode = \"trunk\"\nvlans = [10]\nreflective_relay = true\n[[port]]\nname = \"outside\"\nmode = \"trunk\"\nvlans = [10]\n"
    );
    Config::parse(&s).expect("built-in bridge config")
}

/// Run both topologies.
pub fn compare(o: &CompareOpts) -> Result<Vec<TopoResult>, String> {
    Ok(vec![run_topology(o, true)?, run_topology(o, false)?])
}

fn run_topology(o: &CompareOpts, vepa: bool) -> Result<TopoResult, String> {
    let n = o.vms.clamp(2, 60);
    let core = o.switch_core.unwrap_or(0);
    let pool = Arc::new(Pool::new(32768, 1526).map_err(|e| e.to_string())?);
    let depth = 1024;
    let ecfg = edge_cfg(if vepa { "edge-vepa" } else { "edge-veb" }, n, core);
    let uplink_idx = n as usize;

    // Edge ports: VM cables (peers = the VMs) and the uplink cable.
    let mut eports: Vec<Box<dyn Port>> = Vec::new();
    let mut vm_peers: Vec<RingQueue> = Vec::new();
    for v in 0..n {
        let (a, mut b) = RingPort::pair(&format!("vm{}", v + 1), 1, depth);
        eports.push(Box::new(a));
        vm_peers.push(b.take(0).ok_or("queue")?);
    }
    let (up_edge, mut up_far) = RingPort::pair("uplink", 1, depth);
    eports.push(Box::new(up_edge));
    let mut sinks: Vec<RingQueue> = Vec::new();
    let mut instances = Vec::new();
    let mut edge = Instance::with_ports(ecfg, pool.clone(), eports, vec![])?;
    let (etask, _epunt) = edge.task(0)?;
    let mut tasks = vec![etask];
    if vepa {
        // The far end of the uplink is the bridge's port hv1; its other port leads outside.
        let (out_a, mut out_b) = RingPort::pair("outside", 1, depth);
        let bports: Vec<Box<dyn Port>> = vec![Box::new(up_far), Box::new(out_a)];
        let mut br = Instance::with_ports(bridge_cfg(core), pool.clone(), bports, vec![])?;
        let (btask, _bpunt) = br.task(0)?;
        tasks.push(btask);
        sinks.push(out_b.take(0).ok_or("queue")?);
        instances.push(br);
    } else {
        // Local switching: the uplink leads straight outside.
        sinks.push(up_far.take(0).ok_or("queue")?);
    }
    let edge_shared = tasks[0].shared.clone();
    let bridge_shared = tasks.get(1).map(|t| t.shared.clone());

    let stop = Arc::new(AtomicBool::new(false));
    let wc = WorkerCfg {
        core: o.switch_core,
        burst: 32,
        idle_sleep_us: 0,
    };
    let running = runtime::start(vec![(wc, tasks)], Clock::new(), stop.clone())?;

    // Templates: [src][dst] unicast, [src][n] broadcast. VM i has MAC vm_mac(i+1).
    let mut tpl: Vec<Vec<Vec<u8>>> = Vec::new();
    for s in 0..n {
        let mut row = Vec::new();
        for d in 0..n {
            row.push(udp_frame(vm_mac(d + 1), vm_mac(s + 1), None, 0));
        }
        row.push(udp_frame(
            crate::types::Mac::BROADCAST,
            vm_mac(s + 1),
            None,
            0,
        ));
        tpl.push(row);
    }

    let gp = pool.clone();
    let gen_core = o.gen_core;
    let bevery = o.bcast_every;
    let secs = o.seconds;
    let (es, bs) = (edge_shared.clone(), bridge_shared.clone());
    let up_of = move |p: &[crate::stats::PortCounters]| {
        p.get(uplink_idx)
            .map(|x| x.rx_pkts + x.tx_pkts)
            .unwrap_or(0)
    };
    let gen = std::thread::spawn(move || {
        if let Some(c) = gen_core {
            let _ = worker::pin(c);
        }
        let mut cache = PoolCache::new();
        let mut b = Burst::new(32);
        let mut rx = Burst::new(64);
        let (mut uni, mut bc, mut got, mut echo) = (0u64, 0u64, 0u64, 0u64);
        let mut k: u64 = 0;
        // Closed loop: at most WINDOW deliveries outstanding, so no queue overflows
        // by construction and the rate found is the loss-free rate of the topology.
        const WINDOW: u64 = 512;
        let mut owed: u64 = 0; // deliveries expected and not yet seen
        let mut last_progress = Instant::now();
        let mut window: Option<(Instant, [u64; 6])> = None;
        let sample = || {
            (
                up_of(&es.load_ports()),
                bs.as_ref().map(|b| b.load().reflected).unwrap_or(0),
            )
        };
        let t_start = Instant::now();
        let result;
        // Runs until its measurement window is complete (see the end of the loop).
        loop {
            for s in 0..n as usize {
                if owed > WINDOW {
                    if last_progress.elapsed() > Duration::from_millis(20) {
                        owed = 0; // frames were dropped (the switch counted why): start a new window
                    }
                    break;
                }
                // One burst of 16 frames from VM s.
                let mut nb = 0;
                for _ in 0..16 {
                    k += 1;
                    let is_b = bevery > 0 && k % bevery as u64 == 0;
                    let d = if is_b {
                        n as usize
                    } else {
                        let x = (s + 1 + (k as usize % (n as usize - 1))) % n as usize;
                        debug_assert_ne!(x, s);
                        x
                    };
                    let Some(mut f) = cache.alloc(&gp) else { break };
                    gp.fill(&mut f, &tpl[s][d]);
                    let _ = b.push(f);
                    nb += is_b as u64;
                }
                let len = b.len() as u64;
                let sent = vm_peers[s].tx(&mut b) as u64;
                // Only frames accepted count; broadcasts are at the end of a burst rarely
                // refused — count exactly by checking what is left.
                let left_b = b
                    .as_slice()
                    .iter()
                    .filter(|f| gp.data(f)[0] == 0xff)
                    .count() as u64;
                bc += nb - left_b;
                uni += sent - (nb - left_b);
                owed += (sent - (nb - left_b)) + (nb - left_b) * (n as u64 - 1);
                debug_assert_eq!(sent + b.len() as u64, len);
                for f in b.drain() {
                    cache.free(&gp, f);
                }
            }
            for (v, q) in vm_peers.iter_mut().enumerate() {
                while q.rx(&mut rx) > 0 {
                    last_progress = Instant::now();
                    for f in rx.drain() {
                        got += 1;
                        owed = owed.saturating_sub(1);
                        if gp.data(&f)[6..12] == vm_mac(v as u32 + 1).0 {
                            echo += 1;
                        }
                        cache.free(&gp, f);
                    }
                }
            }
            for q in sinks.iter_mut() {
                while q.rx(&mut rx) > 0 {
                    for f in rx.drain() {
                        cache.free(&gp, f);
                    }
                }
            }
            // Measurement window: after 0.3 s of warm-up, for `secs` seconds.
            let el = t_start.elapsed().as_secs_f64();
            match window {
                None if el >= 0.3 => {
                    let (u, r) = sample();
                    window = Some((Instant::now(), [uni, bc, got, echo, u, r]))
                }
                Some((t0, c0)) if t0.elapsed().as_secs_f64() >= secs => {
                    let (u, r) = sample();
                    let c = [uni, bc, got, echo, u, r];
                    let mut d = [0u64; 6];
                    for i in 0..6 {
                        d[i] = c[i] - c0[i];
                    }
                    result = Some((t0.elapsed().as_secs_f64(), d));
                    break;
                }
                _ => {}
            }
        }
        // Drain what is still on the way so every buffer returns to the pool.
        let t_drain = Instant::now();
        while t_drain.elapsed() < Duration::from_millis(200) {
            for q in vm_peers.iter_mut().chain(sinks.iter_mut()) {
                while q.rx(&mut rx) > 0 {
                    for f in rx.drain() {
                        cache.free(&gp, f);
                    }
                }
            }
        }
        cache.flush(&gp);
        (result, vm_peers, sinks)
    });
    let (res, mut vm_peers, mut sinks) = gen.join().map_err(|_| "generator panicked")?;
    stop.store(true, Ordering::Relaxed);
    let tasks = running.join();
    let mut drops: BTreeMap<String, u64> = BTreeMap::new();
    let all: Totals = runtime::totals(tasks.iter().flatten());
    for r in DropReason::ALL {
        let v = all.core.drops[*r as usize];
        if v > 0 {
            drops.insert(r.name().into(), v);
        }
    }
    let mut left = 0u64;
    for q in vm_peers.iter_mut().chain(sinks.iter_mut()) {
        while let Some(f) = q.rx_one() {
            left += 1;
            pool.free(f);
        }
    }
    drop(tasks);
    drop(instances);
    let (secs, c) = res.ok_or("run ended before the measurement window")?;
    Ok(TopoResult {
        topology: if vepa {
            "hairpin (VEPA edge + bridge, reflective relay)"
        } else {
            "local switching (VEB edge)"
        }
        .into(),
        seconds: secs,
        offered_unicast: c[0],
        offered_broadcast: c[1],
        expected: c[0] + c[1] * (n as u64 - 1),
        delivered: c[2],
        self_echo: c[3],
        offered_mpps: (c[0] + c[1]) as f64 / secs / 1e6,
        delivered_mpps: c[2] as f64 / secs / 1e6,
        uplink_frames: c[4],
        reflected: c[5],
        drops,
        in_flight_at_stop: left,
    })
}
