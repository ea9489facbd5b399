//! An empty, unshaped egress scheduler lets a burst's frames of one class go
//! straight to the port (no queue round trip); that must never be visible.
//! The same traffic — single-class bursts, mixed classes, strict and DRR
//! classes, more frames of a class than its depth, flood copies — goes
//! through a port scheduled without a shaper (the bypass applies) and the
//! same port with a shaper far above the offered rate (every frame is
//! queued and dequeued): the frames out, their order, the per-class queue
//! counters and the drops must be equal.

use hairpin::config::Config;
use hairpin::harness::Harness;
use hairpin::types::Mac;
use hairpin::wire::build::FrameBuilder;
use std::net::Ipv4Addr;

const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);
const C: Mac = Mac([2, 0, 0, 0, 0, 0xc]);

fn config(shape: &str) -> Config {
    Config::parse(&format!(
        r#"
[switch]
workers = [0]
[[port]]
name = "hv1"
mode = "access"
pvid = 10
reflective_relay = true
egress = {{ strict = 2, weights = [1, 2, 1, 3, 1, 1], depth = 6{shape} }}
[[port]]
name = "hv2"
mode = "access"
pvid = 10
egress = {{ strict = 1, depth = 3{shape} }}
[policy.classes]
default = "permit"
[[policy.classes.rule]]
action = "permit"
proto = "udp"
dst_port = "7000"
class = 7
[[policy.classes.rule]]
action = "permit"
proto = "udp"
dst_port = "3000"
class = 3
[[policy.classes.rule]]
action = "permit"
proto = "udp"
dst_port = "1000"
class = 1
[[vm]]
name = "a"
mac = "{A}"
vlan = 10
port = "hv1"
policy = "classes"
[[vm]]
name = "b"
mac = "{B}"
vlan = 10
port = "hv1"
[[vm]]
name = "c"
mac = "{C}"
vlan = 10
port = "hv2"
"#
    ))
    .unwrap()
}

fn frame(dst: Mac, dport: u16, k: u16) -> Vec<u8> {
    FrameBuilder::new().src(A).dst(dst).udp4(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        k,
        dport,
    )
}

/// Bursts of A's frames (hairpinned to B, to C on hv2, or flooded), each a
/// different mix of classes and sizes.
fn bursts() -> Vec<Vec<Vec<u8>>> {
    let ports = [7000u16, 3000, 1000, 5];
    let mut out = Vec::new();
    let mut k = 0u16;
    let mut next = |dst: Mac, dport: u16| {
        k += 1;
        frame(dst, dport, k)
    };
    // One class per burst, below and above the class depth.
    for &d in &ports {
        out.push((0..4).map(|_| next(B, d)).collect());
        out.push((0..9).map(|_| next(B, d)).collect());
    }
    // Mixed classes: the later class first, the earlier one after a run.
    out.push(vec![next(B, 5), next(B, 5), next(B, 7000), next(B, 5)]);
    out.push(vec![
        next(B, 1000),
        next(B, 3000),
        next(B, 1000),
        next(B, 7000),
    ]);
    out.push((0..12).map(|i| next(B, ports[i % 4])).collect());
    // Both ports, and floods (one copy per port, each judged on its own).
    out.push(
        (0..10)
            .map(|i| next(if i % 2 == 0 { B } else { C }, 3000))
            .collect(),
    );
    out.push((0..8).map(|i| next(Mac([0xff; 6]), ports[i % 2])).collect());
    out.push((0..32).map(|i| next(C, ports[(i / 8) % 4])).collect());
    out
}

type Run = (
    Vec<(usize, Vec<u8>)>,
    Vec<(String, [hairpin::qos::sched::ClassStats; 8])>,
    hairpin::stats::CoreCounters,
);

fn run(shape: &str) -> Run {
    let mut h = Harness::new(config(shape), true).unwrap();
    // B and C are learned first, so their unicast is known.
    let hello = |m: Mac| {
        FrameBuilder::new().src(m).dst(A).udp4(
            Ipv4Addr::new(10, 0, 0, 9),
            Ipv4Addr::new(10, 0, 0, 1),
            1,
            2,
        )
    };
    h.run(0, &[&hello(B)], 1);
    h.run(1, &[&hello(C)], 1);
    h.take_output();
    for b in bursts() {
        let refs: Vec<&[u8]> = b.iter().map(|f| f.as_slice()).collect();
        h.run(0, &refs, 1);
    }
    let out = h.take_output();
    let q = h.pipeline().queue_stats();
    let ctr = h.counters().clone();
    h.check().unwrap();
    (out, q, ctr)
}

#[test]
fn skipping_an_empty_unshaped_scheduler_is_invisible() {
    let (out_direct, q_direct, c_direct) = run("");
    let (out_queued, q_queued, c_queued) = run(", shape = \"1T\"");
    assert_eq!(out_direct.len(), out_queued.len());
    for (i, (a, b)) in out_direct.iter().zip(&out_queued).enumerate() {
        assert_eq!(a, b, "frame {i} out differs");
    }
    assert_eq!(q_direct, q_queued);
    assert_eq!(c_direct.drops, c_queued.drops);
    assert_eq!(c_direct.tx_pkts, c_queued.tx_pkts);
    // The traffic exercises what it claims: every class used on hv1, tail
    // drops at the depth, and frames sent on both ports.
    let hv1 = &q_direct.iter().find(|(n, _)| n == "hv1").unwrap().1;
    for c in [0, 1, 3, 7] {
        assert!(hv1[c].dequeued > 0, "class {c}: {hv1:?}");
    }
    assert!(hv1.iter().any(|s| s.tail_drops > 0), "{hv1:?}");
    let hv2 = &q_direct.iter().find(|(n, _)| n == "hv2").unwrap().1;
    assert!(hv2.iter().any(|s| s.dequeued > 0), "{hv2:?}");
    assert!(
        c_direct.drops[hairpin::stats::DropReason::QueueFull as usize] > 0,
        "{c_direct:?}"
    );
}
