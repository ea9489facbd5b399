//! `hairpin compare`: the same VMs and traffic through (a) a VEPA edge and a
//! hairpin bridge with reflective relay, and (b) a VEB edge switching locally.
//!
//! Both topologies are those of the comparison harness
//! ([`crate::pktgen::topo`]), on in-memory ring ports, every switch on one
//! worker core; the `hairpin pktgen` engine (its own core) sends one UDP
//! stream from every VM to the next and receives them, with sequence
//! numbers and timestamps. The engine runs closed loop (a bounded number of
//! frames on the way per stream, [`crate::pktgen::engine::EngineCfg::window`],
//! lowered for many VMs per edge by [`effective_window`]), so no queue
//! overflows and the delivered rate is the loss-free rate of the topology.
//! Figures are measured, never derived: offered = frames the VMs
//! handed to the edge, delivered = distinct frames the destination VMs
//! received; uplink frames and reflections come from the switches' counters.
//!
//! More than 63 VMs are spread over several edges behind the one bridge,
//! streams staying inside an edge ([`topo::edge_blocks`]); uplink frames are
//! then summed over the edges and cycles per frame aggregated per role
//! ([`topo::cycles_by_role`]).

use crate::pktgen::rx::{Latency, LatencySummary};
use crate::pktgen::topo::{self, Topology};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

/// Options.
#[derive(Clone, Debug)]
pub struct CompareOpts {
    /// VMs (2..=[`topo::MAX_VMS`]; more than 63 on several edges).
    pub vms: u32,
    /// Seconds measured per topology (after a warm-up of [`WARMUP_S`]).
    pub seconds: f64,
    /// Frame size (bytes with FCS, or `imix`).
    pub size: String,
    /// Frames on the way per stream, at most (closed loop); lowered by
    /// [`effective_window`] so one edge's streams cannot overflow a ring.
    pub window: u64,
    /// Core for the switches.
    pub switch_core: Option<usize>,
}

/// Seconds of traffic before the measurement (the switches learn the VMs).
pub const WARMUP_S: f64 = 0.3;

impl Default for CompareOpts {
    fn default() -> Self {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        CompareOpts {
            vms: 4,
            seconds: 3.0,
            size: "64".into(),
            window: 128,
            switch_core: Some(if n > 1 { 1 } else { 0 }),
        }
    }
}

/// The closed loop's frames on the way per stream: `o.window`, but at most
/// what lets every stream of the largest edge have that many frames on the
/// way at once within one ring ([`topo::RING_DEPTH`]): an edge's streams
/// all cross its uplink under hairpin. 128 (the default) up to 32 VMs per
/// edge; 95 for 128 VMs (43 per edge); at least 1.
pub fn effective_window(o: &CompareOpts) -> u64 {
    let per_edge = topo::edge_blocks(o.vms.clamp(2, topo::MAX_VMS))
        .iter()
        .map(|b| (b.end() + 1 - b.start()) as u64)
        .max()
        .unwrap_or(1);
    o.window.min(topo::RING_DEPTH as u64 / per_edge).max(1)
}

/// Results of one topology.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TopoResult {
    /// Topology name.
    pub topology: String,
    /// Seconds measured.
    pub seconds: f64,
    /// Frames the VMs handed to the edge (all streams).
    pub offered: u64,
    /// Frames the edge's full VM-port rings did not take (counted in `offered`).
    pub refused: u64,
    /// Distinct frames the destination VMs received.
    pub delivered: u64,
    /// Offered and not delivered.
    pub lost: u64,
    /// Frames received more than once.
    pub duplicates: u64,
    /// Frames received after a later one of their stream.
    pub reordered: u64,
    /// Frames received by a VM other than their destination (must be 0).
    pub wrong_port: u64,
    /// Frames without a signature at the VMs (e.g. floods of other traffic).
    pub foreign: u64,
    /// Offered frames per second (millions).
    pub offered_mpps: f64,
    /// Delivered frames per second (millions).
    pub delivered_mpps: f64,
    /// Frames crossing the edges' uplinks (both directions, summed over the edges).
    pub uplink_frames: u64,
    /// Frames reflected by the bridge (sent back out their ingress port).
    pub reflected: u64,
    /// Busy cycles per frame received, per switch role ([`topo::cycles_by_role`]).
    pub cycles_per_frame: BTreeMap<String, f64>,
    /// Drops by reason, summed over the switches.
    pub drops: BTreeMap<String, u64>,
    /// One-way latency VM to VM over all streams.
    pub latency: Option<LatencySummary>,
    /// Interrupted (Ctrl-C): the figures cover part of the run.
    pub partial: bool,
}

/// Run both topologies; `stop` (SIGINT) cuts a run short (results marked partial).
pub fn compare(o: &CompareOpts, stop: &AtomicBool) -> Result<Vec<TopoResult>, String> {
    let mut out = Vec::new();
    for t in [Topology::Hairpin, Topology::Local] {
        let r = run_topology(o, t, stop)?;
        let partial = r.partial;
        out.push(r);
        if partial {
            break;
        }
    }
    Ok(out)
}

fn run_topology(o: &CompareOpts, t: Topology, stop: &AtomicBool) -> Result<TopoResult, String> {
    let core = o.switch_core.unwrap_or(0);
    let mut rig = topo::build(t, o.vms.clamp(2, topo::MAX_VMS), &o.size, 0, core, "10G")?;
    rig.engine.set_window(Some(effective_window(o)));
    let (r, sw) = std::thread::scope(|sc| {
        sc.spawn(|| {
            crate::pktgen::pin_generator(&[core]);
            rig.engine.set_duration(Some(WARMUP_S));
            let _ = rig.trial(stop);
            rig.engine.set_duration(Some(o.seconds));
            rig.trial(stop)
        })
        .join()
    })
    .map_err(|_| "the generator thread panicked".to_string())?;
    rig.finish();
    let mut drops = BTreeMap::new();
    for s in &sw {
        for (k, v) in &s.drops {
            *drops.entry(k.clone()).or_insert(0) += v;
        }
    }
    let mut lat: Option<Latency> = None;
    for h in r.hists.iter().flatten() {
        match &mut lat {
            None => lat = Some(h.clone()),
            Some(a) => {
                a.merge(h);
            }
        }
    }
    let sum = |f: fn(&crate::pktgen::engine::StreamResult) -> u64| r.streams.iter().map(f).sum();
    Ok(TopoResult {
        topology: match t {
            Topology::Hairpin => "hairpin (VEPA edge + bridge, reflective relay)",
            _ => "local switching (VEB edge)",
        }
        .into(),
        seconds: r.seconds,
        offered: r.offered,
        refused: sum(|s| s.refused),
        delivered: r.received,
        lost: r.lost,
        duplicates: sum(|s| s.duplicates),
        reordered: sum(|s| s.reordered),
        wrong_port: sum(|s| s.wrong_port),
        foreign: r.foreign,
        offered_mpps: r.offered as f64 / r.seconds / 1e6,
        delivered_mpps: r.received as f64 / r.seconds / 1e6,
        uplink_frames: topo::uplink_frames(&sw),
        reflected: sw.iter().map(|s| s.reflected).sum(),
        cycles_per_frame: topo::cycles_by_role(&sw),
        drops,
        latency: lat.and_then(|l| l.summary()),
        partial: r.partial,
    })
}

fn ns(v: u64) -> String {
    if v >= 1_000_000 {
        format!("{:.2} ms", v as f64 / 1e6)
    } else if v >= 1_000 {
        format!("{:.1} µs", v as f64 / 1e3)
    } else {
        format!("{v} ns")
    }
}

/// The table `hairpin compare` prints.
pub fn print(o: &CompareOpts, rs: &[TopoResult]) {
    let edges = topo::edge_blocks(o.vms.clamp(2, topo::MAX_VMS)).len();
    println!(
        "hairpin compare: {} VMs in VLAN 10{}, one UDP stream per VM to the next, {} B frames, {:.1} s per topology",
        o.vms,
        if edges > 1 {
            format!(" on {edges} edges (streams stay inside an edge)")
        } else {
            String::new()
        },
        o.size,
        o.seconds
    );
    println!(
        "switch core {:?}; generator: hairpin pktgen, closed loop ({} frames on the way per stream); ring ports in memory\n",
        o.switch_core,
        effective_window(o)
    );
    for r in rs {
        println!(
            "== {}{}",
            r.topology,
            if r.partial {
                " (PARTIAL: interrupted)"
            } else {
                ""
            }
        );
        println!("  offered           {:>12} frames", r.offered);
        println!(
            "  delivered         {:>12} frames ({:.4}%; lost {}, duplicated {}, reordered {})",
            r.delivered,
            100.0 * r.delivered as f64 / r.offered.max(1) as f64,
            r.lost,
            r.duplicates,
            r.reordered
        );
        println!("  offered rate      {:>12.3} Mpps", r.offered_mpps);
        println!("  delivered rate    {:>12.3} Mpps", r.delivered_mpps);
        println!(
            "  uplink frames     {:>12} (both directions)",
            r.uplink_frames
        );
        println!(
            "  reflected         {:>12} (sent back out their ingress port)",
            r.reflected
        );
        println!(
            "  wrong VM          {:>12} (delivered to a VM not their destination; must be 0)",
            r.wrong_port
        );
        if let Some(l) = &r.latency {
            println!(
                "  latency           {:>12} p50, {} p99, {} max (one way, VM to VM)",
                ns(l.p50_ns),
                ns(l.p99_ns),
                ns(l.max_ns)
            );
        }
        for (role, c) in &r.cycles_per_frame {
            println!("  cycles/frame      {c:>12.1} ({role})");
        }
        if r.drops.is_empty() {
            println!("  drops             {:>12}", 0);
        } else {
            for (k, v) in &r.drops {
                println!("  drop {:<13}{:>12}", k, v);
            }
        }
        println!();
    }
    if let [a, b] = rs {
        println!(
            "hairpin / local: delivered rate {:.2}x, uplink frames per delivered frame {:.2} vs {:.2}",
            a.delivered_mpps / b.delivered_mpps.max(1e-9),
            a.uplink_frames as f64 / a.delivered.max(1) as f64,
            b.uplink_frames as f64 / b.delivered.max(1) as f64
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_an_edges_streams_within_a_ring() {
        let w = |vms: u32| {
            effective_window(&CompareOpts {
                vms,
                ..CompareOpts::default()
            })
        };
        assert_eq!(w(4), 128);
        assert_eq!(w(32), 128);
        assert_eq!(w(60), 68);
        assert_eq!(w(128), 95);
        assert_eq!(w(256), 78);
        for vms in 2..=topo::MAX_VMS {
            let per_edge = topo::edge_blocks(vms)
                .iter()
                .map(|b| (b.end() + 1 - b.start()) as u64)
                .max()
                .unwrap();
            assert!(w(vms) * per_edge <= topo::RING_DEPTH as u64, "{vms} VMs");
        }
    }

    #[test]
    fn both_topologies_deliver_everything_closed_loop() {
        let o = CompareOpts {
            vms: 3,
            seconds: 0.2,
            ..CompareOpts::default()
        };
        let rs = compare(&o, &AtomicBool::new(false)).unwrap();
        assert_eq!(rs.len(), 2);
        for r in &rs {
            assert!(!r.partial);
            assert!(r.offered > 0, "{r:?}");
            assert_eq!(r.refused, 0, "closed loop: no ring overflows: {r:?}");
            assert_eq!(r.delivered, r.offered, "{r:?}");
            assert_eq!(r.lost + r.duplicates + r.wrong_port, 0, "{r:?}");
            assert!(r.drops.is_empty(), "{r:?}");
            assert!(r.latency.is_some());
        }
        // Hairpin: every frame goes up the uplink and is reflected back down.
        let (h, l) = (&rs[0], &rs[1]);
        // (Counters are published every few hundred worker loops: allow 0.5 %.)
        let near = |a: u64, b: u64| a.abs_diff(b) * 200 <= b;
        assert!(near(h.uplink_frames, 2 * h.delivered), "{h:?}");
        assert!(near(h.reflected, h.delivered), "{h:?}");
        assert_eq!(l.uplink_frames, 0, "{l:?}");
        assert_eq!(l.reflected, 0);
        assert_eq!(h.cycles_per_frame.len(), 2, "edge and bridge");
        assert_eq!(l.cycles_per_frame.len(), 1);
    }
}
