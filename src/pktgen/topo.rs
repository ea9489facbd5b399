//! The comparison harness: what does moving policy to the bridge cost,
//! against local switching in the hypervisor?
//!
//! Topologies, all on in-process ring ports, every switch task on one
//! worker core and the generator on another:
//! - `hairpin`: a VEPA edge and a bridge whose port `hv1` has reflective
//!   relay; the ACLs (if any) are on the bridge;
//! - `local`: a VEB edge switching VM-to-VM locally, no ACLs;
//! - `local-acl`: the VEB edge with the same ACLs on its VMs.
//!
//! Every VM `i` sends one UDP stream to VM `i+1` (the last VM to the first)
//! carrying a 5-tuple of the rule set (see [`crate::bench::policy_toml`];
//! every rule permits), or without rules from address 10.0.0.0 + `i` to
//! 10.0.0.0 + `i+1`. Per
//! point (topology × frame size × rule count): the zero-loss throughput
//! (RFC 2544 binary search), the latency at 90 % of it, busy cycles per
//! frame per switch role, and the frames the edges' uplinks carried per
//! delivered frame. Each point runs `repeats` times; the median is
//! reported with the spread ((max − min) / median), flagged above 10 %.
//!
//! More VMs than one switch has ports for (a switch has at most 64 ports,
//! one of them the uplink: [`VMS_PER_EDGE`] VMs) are spread over several
//! hypervisor edges, as several servers behind one bridge: see
//! [`edge_blocks`] for the split. Each edge has its own `uplink`; under
//! `hairpin` edge `k`'s uplink is cabled to bridge port `hv{k}` (each with
//! reflective relay). Streams stay inside an edge: VM `i` sends to the next
//! VM of its own edge (the last VM of an edge to the first of the same
//! edge), so `local` is still pure local switching and under `hairpin`
//! every frame is reflected by its edge's bridge port. With up to 63 VMs
//! there is one edge and the topology is the single-edge one above.

use super::engine::{Engine, EngineCfg};
use super::rfc2544::{self, Params, Progress};
use super::rx::LatencySummary;
use super::stream;
use super::{Rig, SwitchStats};
use crate::buf::Pool;
use crate::config::Config;
use crate::gen::vm_mac;
use crate::port::ring::RingPort;
use crate::port::Port;
use crate::runtime::Instance;
use crate::types::MAX_PORTS;
use crate::worker::WorkerCfg;
use clap::Args;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A topology of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// VEPA edge + hairpin bridge with reflective relay (ACLs on the bridge).
    Hairpin,
    /// VEB edge, local switching, no ACLs.
    Local,
    /// VEB edge with the ACLs at the edge.
    LocalAcl,
}

impl Topology {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Topology::Hairpin => "hairpin",
            Topology::Local => "local",
            Topology::LocalAcl => "local-acl",
        }
    }
    /// All three.
    pub const ALL: [Topology; 3] = [Topology::Hairpin, Topology::Local, Topology::LocalAcl];
}

/// `hairpin pktgen harness` options.
#[derive(Args, Debug, Clone)]
pub struct HarnessArgs {
    /// A smoke run in seconds: 64 B and IMIX, 0 and 100 rules, 2 repeats, short trials.
    #[arg(long)]
    pub quick: bool,
    /// Frame sizes (with FCS) and/or imix.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "64,128,256,512,1024,1518,imix"
    )]
    pub sizes: Vec<String>,
    /// ACL rule counts.
    #[arg(long, value_delimiter = ',', default_value = "0,100,1000")]
    pub rules: Vec<usize>,
    /// VMs (2..=256); more than 63 are spread evenly over several edges.
    #[arg(long, default_value_t = 4)]
    pub vms: u32,
    /// Runs per point.
    #[arg(long, default_value_t = 3)]
    pub repeats: u32,
    /// Seconds per trial.
    #[arg(long, default_value_t = 0.5)]
    pub trial: f64,
    /// Throughput search resolution, percent of line rate.
    #[arg(long, default_value_t = 1.0)]
    pub resolution: f64,
    /// Loss a passing trial may have, percent (RFC 2544: 0).
    #[arg(long, default_value_t = 0.0)]
    pub tolerance: f64,
    /// Line rate the loads refer to.
    #[arg(long, default_value = "10G")]
    pub line_rate: String,
    /// VM-count sweep (64 B, 0 rules, hairpin and local; 2..=256 VMs), e.g. 2,16,60,128,256.
    #[arg(long, value_delimiter = ',')]
    pub vm_sweep: Vec<u32>,
    /// Rule-count sweep (64 B, hairpin and local-acl), e.g. 1,10,100,1000,10000.
    #[arg(long, value_delimiter = ',')]
    pub rule_sweep: Vec<usize>,
    /// Core for the switches (default 1 on a machine with 2+ cores).
    #[arg(long)]
    pub switch_core: Option<usize>,
    /// Write results.json, report.md and the SVG plots here.
    #[arg(long)]
    pub out_dir: Option<std::path::PathBuf>,
    /// The command line to record in the report (the script passes its own).
    #[arg(long, default_value = "")]
    pub command: String,
    /// The commit to record in the report.
    #[arg(long, default_value = "")]
    pub commit: String,
    /// A note for the report (e.g. the machine's load while measuring).
    #[arg(long, default_value = "")]
    pub note: String,
    /// Do not measure: rewrite the report and plots from this results.json (with --out-dir).
    #[arg(long)]
    pub from: Option<std::path::PathBuf>,
}

/// One run of one point.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PointRun {
    /// Zero-loss throughput, Mpps (received).
    pub mpps: f64,
    /// The same on the wire, Gbit/s.
    pub gbps: f64,
    /// Percent of line rate.
    pub load_pct: f64,
    /// The generator, not the switches, was the limit.
    pub generator_limited: bool,
    /// Latency at 90 % of the throughput.
    pub latency: Option<LatencySummary>,
    /// CDF of that latency (ns, share).
    pub latency_cdf: Vec<(u64, f64)>,
    /// Busy cycles per frame received, per role (several edges: see [`cycles_by_role`]).
    pub cycles_per_frame: BTreeMap<String, f64>,
    /// Frames the edges' uplinks carried (both directions, summed over the
    /// edges) per frame delivered.
    pub uplink_per_frame: f64,
    /// Trials of the search.
    pub trials: usize,
}

/// One point: median over the runs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Topology.
    pub topology: Topology,
    /// Frame size label.
    pub size: String,
    /// Mean frame size (with FCS).
    pub mean_size: f64,
    /// ACL rules.
    pub rules: usize,
    /// VMs.
    pub vms: u32,
    /// Median throughput, Mpps.
    pub mpps: f64,
    /// Median throughput, Gbit/s.
    pub gbps: f64,
    /// (max − min) / median of the throughput, percent.
    pub spread_pct: f64,
    /// Spread above 10 %.
    pub flagged: bool,
    /// Any run was generator-limited.
    pub generator_limited: bool,
    /// The run whose throughput is the median.
    pub median_run: PointRun,
    /// Every run.
    pub runs: Vec<PointRun>,
}

/// The whole harness result.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HarnessResult {
    /// UTC date.
    pub date: String,
    /// Commit measured.
    pub commit: String,
    /// Command.
    pub command: String,
    /// Line rate.
    pub line_rate: String,
    /// Trial seconds.
    pub trial_s: f64,
    /// Loss a passing trial may have, percent.
    pub tolerance_pct: f64,
    /// Repeats per point.
    pub repeats: u32,
    /// Machine: cores and CPU model.
    pub machine: String,
    /// Matrix points.
    pub points: Vec<Point>,
    /// VM-count sweep points.
    pub vm_sweep: Vec<Point>,
    /// Rule-count sweep points.
    pub rule_sweep: Vec<Point>,
    /// Note recorded with the run.
    #[serde(default)]
    pub note: String,
    /// Interrupted.
    pub partial: bool,
}

/// Depth of every ring in the topologies (as a NIC's 4096-descriptor rings):
/// it absorbs a few milliseconds of a descheduled core at 1 Mpps.
pub const RING_DEPTH: usize = 4096;

/// Most VMs one edge hosts: a switch has at most [`MAX_PORTS`] ports, and
/// one of an edge's ports is its uplink.
pub const VMS_PER_EDGE: u32 = MAX_PORTS as u32 - 1;

/// Most VMs a harness topology has (`--vms`, `--vm-sweep`, `hairpin compare --vms`).
pub const MAX_VMS: u32 = 256;

/// The VMs (numbered from 1) of each hypervisor edge for `vms` VMs:
/// `ceil(vms / 63)` edges, each a contiguous block, spread evenly (block
/// sizes differ by at most one, the larger blocks first): 63 VMs → one
/// edge, 64 → 32 + 32, 128 → 43 + 43 + 42, 256 → 52 + 51 + 51 + 51 + 51.
/// Empty for 0 VMs.
pub fn edge_blocks(vms: u32) -> Vec<RangeInclusive<u32>> {
    let edges = vms.div_ceil(VMS_PER_EDGE);
    if edges == 0 {
        return vec![];
    }
    let (base, extra) = (vms / edges, vms % edges);
    let mut first = 1;
    (0..edges)
        .map(|k| {
            let n = base + u32::from(k < extra);
            let block = first..=first + n - 1;
            first += n;
            block
        })
        .collect()
}

/// The VM that VM `v` of `block` sends to: the next VM of the same edge,
/// the last one wrapping to the first.
fn next_in_block(v: u32, block: &RangeInclusive<u32>) -> u32 {
    if v >= *block.end() {
        *block.start()
    } else {
        v + 1
    }
}

fn edge_toml(veb: bool, block: RangeInclusive<u32>, core: usize, policy: bool) -> String {
    let mut s = format!(
        "[switch]\nrole = \"{}\"\nworkers = [{core}]\nring_depth = {RING_DEPTH}\n[switch.fdb]\ncapacity = 4096\nper_port_limit = 4096\n",
        if veb { "edge-veb" } else { "edge-vepa" }
    );
    for v in block.clone() {
        s += &format!("[[port]]\nname = \"vm{v}\"\nmode = \"access\"\npvid = 10\n");
    }
    s += "[[port]]\nname = \"uplink\"\nmode = \"trunk\"\nvlans = [10]\nuplink = true\n";
    for v in block {
        s += &format!(
            "[[vm]]\nname = \"vm{v}\"\nmac = \"{}\"\nvlan = 10\nport = \"vm{v}\"\n{}",
            vm_mac(v),
            if policy { "policy = \"bench\"\n" } else { "" }
        );
    }
    s
}

fn bridge_toml(blocks: &[RangeInclusive<u32>], core: usize, policy: bool) -> String {
    let mut s =
        format!("[switch]\nrole = \"bridge\"\nworkers = [{core}]\nring_depth = {RING_DEPTH}\n");
    for k in 1..=blocks.len() {
        s += &format!(
            "[[port]]\nname = \"hv{k}\"\nmode = \"trunk\"\nvlans = [10]\nreflective_relay = true\n"
        );
    }
    s += "[[port]]\nname = \"outside\"\nmode = \"trunk\"\nvlans = [10]\n";
    for (k, block) in blocks.iter().enumerate() {
        for v in block.clone() {
            s += &format!(
                "[[vm]]\nname = \"vm{v}\"\nmac = \"{}\"\nvlan = 10\nport = \"hv{}\"\n{}",
                vm_mac(v),
                k + 1,
                if policy { "policy = \"bench\"\n" } else { "" }
            );
        }
    }
    s
}

/// Frames the edges' `uplink` ports carried (received + transmitted),
/// summed over every switch that has such a port (the edges; the bridge's
/// ports are `hv1..` and `outside`).
pub fn uplink_frames(switches: &[SwitchStats]) -> u64 {
    switches
        .iter()
        .filter_map(|s| s.port_frames.get("uplink"))
        .sum()
}

/// Busy cycles per received frame, per role. Several switches of one role
/// (the edges of a topology with more than [`VMS_PER_EDGE`] VMs) count as
/// one: their busy cycles summed over their received frames summed (the
/// mean weighted by frames received), which is what one switch doing all
/// their work would show. With one switch per role these are its figures.
pub fn cycles_by_role(switches: &[SwitchStats]) -> BTreeMap<String, f64> {
    let mut by_role: BTreeMap<&str, Vec<&SwitchStats>> = BTreeMap::new();
    for s in switches {
        by_role.entry(&s.role).or_default().push(s);
    }
    by_role
        .into_iter()
        .map(|(role, v)| {
            let c = match v[..] {
                [one] => one.cycles_per_frame,
                _ => {
                    // `cycles_per_frame` is busy cycles / max(rx_frames, 1).
                    let busy: f64 = v
                        .iter()
                        .map(|s| s.cycles_per_frame * s.rx_frames.max(1) as f64)
                        .sum();
                    let rx: u64 = v.iter().map(|s| s.rx_frames).sum();
                    busy / rx.max(1) as f64
                }
            };
            (role.to_string(), c)
        })
        .collect()
}

/// Start one switch of a topology on `ports` and add its worker task, its
/// counters and its instance to the rig's lists.
fn add_switch(
    cfg: Config,
    pool: &Arc<Pool>,
    ports: Vec<Box<dyn Port>>,
    switches: &mut Vec<(Config, Vec<Arc<crate::stats::SharedCounters>>)>,
    tasks: &mut Vec<crate::worker::Task>,
    instances: &mut Vec<Instance>,
) -> Result<(), String> {
    let mut inst = Instance::with_ports(cfg.clone(), pool.clone(), ports, vec![])?;
    let (task, _) = inst.task(0)?;
    switches.push((cfg, vec![task.shared.clone()]));
    tasks.push(task);
    instances.push(inst);
    Ok(())
}

/// Build a topology with its streams (one per VM, VM i → the next VM of
/// its edge, see the [module docs](self)) and start it. `vms` is clamped
/// to 2..=[`MAX_VMS`]; more than [`VMS_PER_EDGE`] are spread over several
/// edges ([`edge_blocks`]). The generator has one queue per VM: port index
/// `i - 1` is VM `i`'s cable, whichever edge it is on.
pub fn build(
    topo: Topology,
    vms: u32,
    size: &str,
    rules: usize,
    core: usize,
    line_rate: &str,
) -> Result<Rig, String> {
    let vms = vms.clamp(2, MAX_VMS);
    let blocks = edge_blocks(vms);
    let edges = blocks.len();
    let (policy, keys) = if rules > 0 {
        let (t, k) = crate::bench::policy_toml(rules, false, 0);
        (t, k)
    } else {
        (String::new(), vec![])
    };
    let acl_edge = topo == Topology::LocalAcl && rules > 0;
    let acl_bridge = topo == Topology::Hairpin && rules > 0;
    let which = |k: usize| {
        if edges > 1 {
            format!(" (edge {} of {edges})", k + 1)
        } else {
            String::new()
        }
    };
    let mut ecfgs = Vec::with_capacity(edges);
    for (k, b) in blocks.iter().enumerate() {
        let c = Config::parse(
            &(edge_toml(topo != Topology::Hairpin, b.clone(), core, acl_edge)
                + if acl_edge { &policy } else { "" }),
        )
        .map_err(|e| format!("built-in edge config{}: {e}", which(k)))?;
        ecfgs.push(c);
    }
    // Room for a full ring of frames per VM (its TX ring into the edge)
    // and per edge two (both directions of its uplink).
    let pool = Arc::new(
        Pool::new(
            16384 + RING_DEPTH * (vms as usize + 2 * edges),
            ecfgs[0].switch.mtu + 8,
        )
        .map_err(|e| e.to_string())?,
    );
    // Streams carry UDP 5-tuples of the rule set.
    let udp: Vec<_> = keys.iter().filter(|k| k.proto == 17).collect();
    // Each edge's streams are compiled against its own config (MACs, ports,
    // VLANs); the generator numbers its queues by VM (port index i - 1 is
    // VM i), so each stream's ports and id are renumbered to the whole
    // topology's: stream v - 1 is VM v's.
    let mut streams = Vec::with_capacity(vms as usize);
    for (k, (b, ecfg)) in blocks.iter().zip(&ecfgs).enumerate() {
        let mut specs = Vec::new();
        let mut ends = Vec::new();
        for v in b.clone() {
            let d = next_in_block(v, b);
            let mut f = format!("src=vm{v},dst=vm{d},size={size}");
            if let Some(key) = udp.get(v as usize % udp.len().max(1)) {
                f += &format!(
                    ",src_ip={},dst_ip={},src_port={},dst_port={}",
                    std::net::Ipv4Addr::from(key.src_ip as u32),
                    std::net::Ipv4Addr::from(key.dst_ip as u32),
                    key.src_port,
                    key.dst_port
                );
            } else {
                // VM v is 10.0.0.0 + v across the edges (what compile
                // picks by position in a one-edge config).
                f += &format!(
                    ",src_ip={},dst_ip={}",
                    std::net::Ipv4Addr::from(0x0a00_0000 | v),
                    std::net::Ipv4Addr::from(0x0a00_0000 | d)
                );
            }
            specs.push(stream::parse_stream_flag(&f)?);
            ends.push((v, d));
        }
        let compiled = stream::compile(&specs, ecfg, pool.max_frame())
            .map_err(|e| format!("built-in streams{}: {e}", which(k)))?;
        for (mut s, (v, d)) in compiled.into_iter().zip(ends) {
            s.id = (v - 1) as u16;
            s.tx_port = (v - 1) as usize;
            s.rx_port = (d - 1) as usize;
            streams.push(s);
        }
    }
    let depth = ecfgs[0].switch.ring_depth;
    let mut queues: super::engine::GenQueues = Vec::new();
    let mut switches = Vec::new();
    let mut tasks = Vec::new();
    let mut instances = Vec::new();
    let mut uplinks_far = Vec::new();
    for (b, ecfg) in blocks.iter().zip(ecfgs) {
        let mut eports: Vec<Box<dyn Port>> = Vec::new();
        for v in b.clone() {
            let (a, mut g) = RingPort::pair(&format!("vm{v}"), 1, depth);
            eports.push(Box::new(a));
            queues.push((
                ((v - 1) as usize, 0),
                Box::new(g.take(0).ok_or("ring queue")?),
            ));
        }
        let (up_edge, up_far) = RingPort::pair("uplink", 1, depth);
        eports.push(Box::new(up_edge));
        add_switch(
            ecfg,
            &pool,
            eports,
            &mut switches,
            &mut tasks,
            &mut instances,
        )?;
        uplinks_far.push(up_far);
    }
    let mut far_ends = Vec::new();
    if topo == Topology::Hairpin {
        let bcfg = Config::parse(
            &(bridge_toml(&blocks, core, acl_bridge) + if acl_bridge { &policy } else { "" }),
        )
        .map_err(|e| format!("built-in bridge config: {e}"))?;
        let (out_a, out_b) = RingPort::pair("outside", 1, depth);
        // Bridge port hv{k} is edge k's uplink cable.
        let mut bports: Vec<Box<dyn Port>> = Vec::new();
        for up in uplinks_far {
            bports.push(Box::new(up));
        }
        bports.push(Box::new(out_a));
        add_switch(
            bcfg,
            &pool,
            bports,
            &mut switches,
            &mut tasks,
            &mut instances,
        )?;
        far_ends.push(out_b);
    } else {
        far_ends.extend(uplinks_far);
    }
    let n = streams.len();
    let engine = Engine::new(
        streams,
        queues,
        vec![0; n],
        pool.clone(),
        EngineCfg {
            burst: 32,
            timestamps: true,
            duration: Some(1.0),
            line_bps: stream::parse_bps(line_rate).map_err(|e| format!("--line-rate: {e}"))?,
            hz: super::tsc_hz(),
            drain_ms: 50,
            window: None,
        },
    )?;
    let wc = WorkerCfg {
        core: Some(core),
        burst: 32,
        idle_sleep_us: 0,
        idle_spin_us: 0,
    };
    let _ = far_ends; // the far end of the uplink / outside: nobody sends there
    Rig::start(engine, vec![(wc, tasks)], switches, instances, pool)
}

fn one_run(rig: &mut Rig, p: &Params, stop: &AtomicBool) -> (PointRun, bool) {
    let t = rfc2544::throughput(rig, p, stop, &Progress::off());
    let mut partial = t.partial;
    let (lat, cdf) = if t.load_pct > 0.0 && !partial {
        let l = rfc2544::latency(rig, t.load_pct / 100.0 * 0.9, p, stop, &Progress::off());
        partial |= l.partial;
        (l.all, l.cdf)
    } else {
        (None, vec![])
    };
    let received: u64 = t
        .trials
        .iter()
        .filter(|x| x.pass)
        .max_by(|a, b| a.load_pct.total_cmp(&b.load_pct))
        .map(|x| x.received)
        .unwrap_or(0);
    let uplink = uplink_frames(&t.switches);
    (
        PointRun {
            mpps: t.mpps,
            gbps: t.gbps,
            load_pct: t.load_pct,
            generator_limited: t.generator_limited,
            latency: lat,
            latency_cdf: cdf,
            cycles_per_frame: cycles_by_role(&t.switches),
            uplink_per_frame: uplink as f64 / received.max(1) as f64,
            trials: t.trials.len(),
        },
        partial,
    )
}

/// Measure one point `repeats` times (a fresh topology each time).
#[allow(clippy::too_many_arguments)]
pub fn point(
    topo: Topology,
    vms: u32,
    size: &str,
    rules: usize,
    repeats: u32,
    p: &Params,
    core: usize,
    line_rate: &str,
    stop: &AtomicBool,
    pr: &Progress,
) -> Result<(Point, bool), String> {
    let mut runs = Vec::new();
    let mut partial = false;
    let mut mean_size = 0.0;
    for _ in 0..repeats.max(1) {
        let mut rig = build(topo, vms, size, rules, core, line_rate)?;
        rig.engine.set_progress(pr.engine_hook());
        mean_size = rig.engine.streams()[0].mean_size;
        // The generator gets its own core; the workers were started before it was pinned.
        let (r, part) = std::thread::scope(|sc| {
            sc.spawn(|| {
                super::pin_generator(&[core]);
                one_run(&mut rig, p, stop)
            })
            .join()
        })
        .map_err(|_| "the generator thread panicked".to_string())?;
        rig.finish();
        runs.push(r);
        partial |= part;
        if part {
            break;
        }
    }
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| runs[a].mpps.total_cmp(&runs[b].mpps));
    let med = runs[order[order.len() / 2]].clone();
    let (lo, hi) = (runs[order[0]].mpps, runs[order[order.len() - 1]].mpps);
    let spread_pct = if med.mpps > 0.0 {
        100.0 * (hi - lo) / med.mpps
    } else {
        0.0
    };
    Ok((
        Point {
            topology: topo,
            size: size.to_string(),
            mean_size,
            rules,
            vms,
            mpps: med.mpps,
            gbps: med.gbps,
            spread_pct,
            flagged: spread_pct > 10.0,
            generator_limited: runs.iter().any(|r| r.generator_limited),
            median_run: med,
            runs,
        },
        partial,
    ))
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{n} cores, {model}")
}

/// Run the harness.
pub fn harness(a: &HarnessArgs, quiet: bool, stop: &AtomicBool) -> Result<HarnessResult, String> {
    let mut a = a.clone();
    if a.quick {
        a.sizes = vec!["64".into(), "imix".into()];
        a.rules = vec![0, 100];
        a.repeats = a.repeats.min(2);
        a.trial = a.trial.min(0.05);
        a.resolution = a.resolution.max(5.0);
    }
    if !(a.trial > 0.0 && a.trial <= 60.0) {
        return Err("--trial: between 0 and 60 seconds".into());
    }
    if !(0.0..=100.0).contains(&a.tolerance) {
        return Err("--tolerance: a loss percentage in 0..=100".into());
    }
    if !(2..=MAX_VMS).contains(&a.vms) {
        return Err(format!("--vms: between 2 and {MAX_VMS}"));
    }
    if let Some(v) = a.vm_sweep.iter().find(|v| !(2..=MAX_VMS).contains(*v)) {
        return Err(format!("--vm-sweep: {v} VMs; between 2 and {MAX_VMS}"));
    }
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let core = a.switch_core.unwrap_or(if n > 1 { 1 } else { 0 });
    let p = Params {
        trial_s: a.trial,
        resolution_pct: a.resolution,
        loss_tolerance_pct: a.tolerance,
        max_trials: if a.quick { 6 } else { 12 },
        ..Params::default()
    };
    let mut jobs: Vec<(u8, Topology, u32, String, usize)> = Vec::new();
    for size in &a.sizes {
        for &r in &a.rules {
            for t in Topology::ALL {
                // local has no ACLs; local-acl without rules is local.
                if (t == Topology::Local && r > 0) || (t == Topology::LocalAcl && r == 0) {
                    continue;
                }
                jobs.push((0, t, a.vms, size.clone(), r));
            }
        }
    }
    for &v in &a.vm_sweep {
        for t in [Topology::Hairpin, Topology::Local] {
            jobs.push((1, t, v, "64".into(), 0));
        }
    }
    for &r in &a.rule_sweep {
        for t in [Topology::Hairpin, Topology::LocalAcl] {
            jobs.push((2, t, a.vms, "64".into(), r));
        }
    }
    let pr = Progress::new(quiet);
    let mut out: [Vec<Point>; 3] = Default::default();
    let mut partial = false;
    let total = jobs.len() as u32;
    for (i, (kind, t, vms, size, r)) in jobs.into_iter().enumerate() {
        pr.text(&format!(
            "[harness] point {}/{total}: {} {size} B, {r} rules, {vms} VMs, {} repeats",
            i + 1,
            t.name(),
            a.repeats
        ));
        let (pt, part) = point(
            t,
            vms,
            &size,
            r,
            a.repeats,
            &p,
            core,
            &a.line_rate,
            stop,
            &pr,
        )?;
        out[kind as usize].push(pt);
        if part {
            partial = true;
            break;
        }
    }
    pr.done();
    let [points, vm_sweep, rule_sweep] = out;
    Ok(HarnessResult {
        date: crate::app::utc_now(),
        commit: a.commit.clone(),
        command: a.command.clone(),
        line_rate: a.line_rate.clone(),
        trial_s: a.trial,
        tolerance_pct: a.tolerance,
        repeats: a.repeats,
        machine: machine(),
        points,
        vm_sweep,
        rule_sweep,
        note: a.note.clone(),
        partial,
    })
}

/// `hairpin pktgen harness`: run, print, write the report.
pub fn harness_main(
    a: &HarnessArgs,
    quiet: bool,
    json: bool,
    out: Option<&Path>,
) -> Result<ExitCode, String> {
    let stop = super::interrupt_flag()?;
    let r = match &a.from {
        Some(f) => {
            let t =
                std::fs::read_to_string(f).map_err(|e| format!("--from {}: {e}", f.display()))?;
            let mut r: HarnessResult =
                serde_json::from_str(&t).map_err(|e| format!("--from {}: {e}", f.display()))?;
            if !a.note.is_empty() {
                r.note = a.note.clone();
            }
            r
        }
        None => harness(a, quiet, &stop)?,
    };
    let text = serde_json::to_string_pretty(&r).expect("serialisable");
    if let Some(p) = out {
        std::fs::write(p, &text).map_err(|e| format!("--out {}: {e}", p.display()))?;
    }
    if let Some(d) = &a.out_dir {
        super::report::write(&r, d)?;
    }
    if json {
        println!("{text}");
    } else {
        print!("{}", super::report::table(&r));
    }
    Ok(if r.partial {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// Result of [`generator_alone`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GenAlone {
    /// Frame size.
    pub size: String,
    /// Timestamps written (and latency recorded when receiving).
    pub timestamps: bool,
    /// The receiver ran on the generator's core (else a sink thread freed the frames).
    pub same_core_rx: bool,
    /// Frames sent per second, millions.
    pub tx_mpps: f64,
    /// Frames received and accounted per second, millions (same-core mode).
    pub rx_mpps: f64,
    /// Seconds.
    pub seconds: f64,
}

/// The generator alone, ring port to ring port, unpaced: with `same_core_rx`
/// the engine also receives and accounts every frame on its own core; else
/// a sink thread on `sink_core` takes the frames off the ring and frees them.
pub fn generator_alone(
    size: &str,
    secs: f64,
    timestamps: bool,
    same_core_rx: bool,
    gen_core: Option<usize>,
    sink_core: Option<usize>,
) -> Result<GenAlone, String> {
    let cfg = Config::parse(
        "[switch]\nworkers = [0]\n[[port]]\nname = \"tx\"\nmode = \"access\"\npvid = 10\n[[port]]\nname = \"rx\"\nmode = \"access\"\npvid = 10\n[[vm]]\nname = \"a\"\nmac = \"02:00:00:00:00:01\"\nvlan = 10\nport = \"tx\"\n[[vm]]\nname = \"b\"\nmac = \"02:00:00:00:00:02\"\nvlan = 10\nport = \"rx\"\n",
    )
    .map_err(|e| e.to_string())?;
    let pool = Arc::new(Pool::new(65536, cfg.switch.mtu + 8).map_err(|e| e.to_string())?);
    let spec = stream::parse_stream_flag(&format!("src=a,dst=b,size={size}"))?;
    let streams = stream::compile(&[spec], &cfg, pool.max_frame())?;
    // One cable: the generator sends on one end; the frames appear on the other.
    let (mut near, mut far) = RingPort::pair("loop", 1, 4096);
    let txq = far.take(0).ok_or("ring queue")?;
    let mut rxq = near.take(0).ok_or("ring queue")?;
    let stop_sink = Arc::new(AtomicBool::new(false));
    let mut queues: super::engine::GenQueues = vec![((0, 0), Box::new(txq))];
    let mut sink = None;
    if same_core_rx {
        queues.push(((1, 0), Box::new(rxq)));
    } else {
        // An empty queue stands for the RX port: the sink thread takes the frames.
        let (mut x, _y) = RingPort::pair("none", 1, 2);
        queues.push(((1, 0), Box::new(x.take(0).ok_or("ring queue")?)));
        let (p, s) = (pool.clone(), stop_sink.clone());
        sink = Some(std::thread::spawn(move || {
            if let Some(c) = sink_core {
                let _ = crate::worker::pin(c);
            }
            let mut cache = crate::buf::PoolCache::new();
            let mut b = crate::buf::Burst::new(64);
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                rxq.rx(&mut b);
                for f in b.drain() {
                    cache.free(&p, f);
                }
            }
            while rxq.rx(&mut b) > 0 {
                for f in b.drain() {
                    cache.free(&p, f);
                }
            }
            cache.flush(&p);
        }));
    }
    let mut eng = Engine::new(
        streams,
        queues,
        vec![0],
        pool.clone(),
        EngineCfg {
            burst: 32,
            timestamps,
            duration: Some(secs),
            line_bps: 1e11,
            hz: super::tsc_hz(),
            drain_ms: 20,
            window: None,
        },
    )?;
    let never = AtomicBool::new(false);
    let r = std::thread::scope(|sc| {
        sc.spawn(|| {
            if let Some(c) = gen_core {
                let _ = crate::worker::pin(c);
            }
            eng.run(&never)
        })
        .join()
    })
    .map_err(|_| "the generator thread panicked".to_string())?;
    stop_sink.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(h) = sink {
        let _ = h.join();
    }
    super::drain_into_pool(eng.into_queues(), &pool);
    Ok(GenAlone {
        size: size.into(),
        timestamps,
        same_core_rx,
        tx_mpps: r.offered as f64 / r.seconds / 1e6,
        rx_mpps: r.received as f64 / r.seconds / 1e6,
        seconds: r.seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(vms: u32) -> Vec<u32> {
        edge_blocks(vms)
            .iter()
            .map(|b| b.end() + 1 - b.start())
            .collect()
    }

    #[test]
    fn vms_are_split_evenly_over_edges_of_at_most_63() {
        assert_eq!(edge_blocks(2), vec![1..=2]);
        assert_eq!(edge_blocks(63), vec![1..=63]);
        assert_eq!(edge_blocks(64), vec![1..=32, 33..=64]);
        assert_eq!(edge_blocks(126), vec![1..=63, 64..=126]);
        assert_eq!(sizes(127), vec![43, 42, 42]);
        assert_eq!(sizes(128), vec![43, 43, 42]);
        assert_eq!(sizes(256), vec![52, 51, 51, 51, 51]);
        assert!(edge_blocks(0).is_empty());
        for n in 1..=MAX_VMS {
            let b = edge_blocks(n);
            assert_eq!(b.len() as u32, n.div_ceil(63), "{n} VMs");
            // Contiguous, in order, covering 1..=n.
            let mut next = 1;
            for r in &b {
                assert_eq!(*r.start(), next, "{n} VMs: {b:?}");
                assert!(r.end() >= r.start(), "{n} VMs: {b:?}");
                next = r.end() + 1;
            }
            assert_eq!(next, n + 1, "{n} VMs: {b:?}");
            let z = sizes(n);
            let (lo, hi) = (*z.iter().min().unwrap(), *z.iter().max().unwrap());
            assert!(hi <= VMS_PER_EDGE && hi - lo <= 1, "{n} VMs: {z:?}");
            // Streams stay inside an edge: every edge with 2+ VMs has no self-stream.
            if n >= 2 {
                assert!(lo >= 2, "{n} VMs: {z:?}");
            }
        }
    }

    #[test]
    fn streams_wrap_inside_their_edge() {
        let b = 33..=64;
        assert_eq!(next_in_block(33, &b), 34);
        assert_eq!(next_in_block(63, &b), 64);
        assert_eq!(next_in_block(64, &b), 33);
    }

    #[test]
    fn edge_and_bridge_configs_for_256_vms() {
        let blocks = edge_blocks(256);
        for (k, b) in blocks.iter().enumerate() {
            let c = Config::parse(&edge_toml(false, b.clone(), 0, false))
                .unwrap_or_else(|e| panic!("edge {}: {e}", k + 1));
            let names: Vec<&str> = c.port.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names.len() as u32, b.end() - b.start() + 2);
            assert_eq!(names[0], format!("vm{}", b.start()));
            assert_eq!(names[names.len() - 1], "uplink");
            assert_eq!(c.vm.len() as u32, b.end() - b.start() + 1);
        }
        // One edge holds at most 63 VMs: 64 in one config is refused.
        let e = Config::parse(&edge_toml(true, 1..=64, 0, false)).unwrap_err();
        assert!(e.to_string().contains("ports; at most 64"), "{e}");
        let br = Config::parse(&bridge_toml(&blocks, 0, false)).unwrap();
        let names: Vec<&str> = br.port.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["hv1", "hv2", "hv3", "hv4", "hv5", "outside"]);
        for p in &br.port[..5] {
            assert!(p.reflective_relay.static_on(), "{}", p.name);
            assert_eq!(Config::port_vlans(p), vec![10], "{}", p.name);
        }
        assert!(!br.port[5].reflective_relay.is_set());
        assert_eq!(br.vm.len(), 256);
        for (k, b) in blocks.iter().enumerate() {
            for v in b.clone() {
                let vm = &br.vm[v as usize - 1];
                assert_eq!(vm.name, format!("vm{v}"));
                assert_eq!(vm.port, format!("hv{}", k + 1), "vm{v}");
            }
        }
    }

    fn stats(role: &str, rx: u64, cpf: f64, uplink: Option<u64>) -> SwitchStats {
        SwitchStats {
            role: role.into(),
            rx_frames: rx,
            cycles_per_frame: cpf,
            port_frames: uplink
                .map(|u| [("vm1".to_string(), 7), ("uplink".to_string(), u)].into())
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn edges_aggregate_uplink_frames_and_cycles_by_role() {
        let sw = [
            stats("edge-vepa", 100, 200.0, Some(200)),
            stats("edge-vepa", 300, 100.0, Some(600)),
            stats("bridge", 400, 150.0, None),
        ];
        assert_eq!(uplink_frames(&sw), 800);
        let c = cycles_by_role(&sw);
        assert_eq!(c.len(), 2, "{c:?}");
        // (100 * 200 + 300 * 100) / (100 + 300)
        assert_eq!(c["edge-vepa"], 125.0);
        assert_eq!(c["bridge"], 150.0);
        // One switch per role: its own figure.
        let one = cycles_by_role(&sw[..1]);
        assert_eq!(one["edge-vepa"], 200.0);
        assert_eq!(uplink_frames(&sw[2..]), 0);
    }

    #[test]
    fn harness_refuses_vm_counts_outside_2_to_256() {
        let args = |vms: u32, sweep: Vec<u32>| HarnessArgs {
            quick: false,
            sizes: vec!["64".into()],
            rules: vec![0],
            vms,
            repeats: 1,
            trial: 0.05,
            resolution: 10.0,
            tolerance: 0.0,
            line_rate: "10G".into(),
            vm_sweep: sweep,
            rule_sweep: vec![],
            switch_core: Some(0),
            out_dir: None,
            command: String::new(),
            commit: String::new(),
            note: String::new(),
            from: None,
        };
        let stop = AtomicBool::new(false);
        let e = harness(&args(257, vec![]), true, &stop).unwrap_err();
        assert_eq!(e, "--vms: between 2 and 256");
        let e = harness(&args(4, vec![2, 300]), true, &stop).unwrap_err();
        assert_eq!(e, "--vm-sweep: 300 VMs; between 2 and 256");
        let e = harness(&args(4, vec![1]), true, &stop).unwrap_err();
        assert_eq!(e, "--vm-sweep: 1 VMs; between 2 and 256");
    }
}
