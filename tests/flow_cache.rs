//! The per-core ACL flow cache never changes a verdict: the same traffic
//! gives the same egress bytes and counters with the cache on and off, and a
//! policy reload that moves a flow to another rule is honoured from the next
//! frame on (the cache is emptied with the old snapshot).

use hairpin::config::Config;
use hairpin::harness::Harness;
use hairpin::types::Mac;
use hairpin::wire::build::FrameBuilder;
use std::net::Ipv4Addr;

const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);
const C: Mac = Mac([2, 0, 0, 0, 0, 0xc]);

fn config(flow_cache: usize, sender_rules: &str) -> Config {
    Config::parse(&toml(flow_cache, sender_rules)).unwrap()
}

fn toml(flow_cache: usize, sender_rules: &str) -> String {
    format!(
        r#"
[switch]
workers = [0]
flow_cache = {flow_cache}
[[port]]
name = "hv1"
mode = "access"
pvid = 10
reflective_relay = true
[[port]]
name = "hv2"
mode = "access"
pvid = 10
[policy.sender]
default = "deny"
{sender_rules}
[policy.receiver]
default = "permit"
[[policy.receiver.rule]]
direction = "to-vm"
action = "deny"
proto = "udp"
dst_port = "5000-5099"
[[policy.receiver.rule]]
direction = "to-vm"
action = "permit"
proto = "tcp"
set_dscp = 10
[[vm]]
name = "a"
mac = "{A}"
vlan = 10
port = "hv1"
policy = "sender"
[[vm]]
name = "b"
mac = "{B}"
vlan = 10
port = "hv1"
policy = "receiver"
[[vm]]
name = "c"
mac = "{C}"
vlan = 10
port = "hv2"
policy = "receiver"
"#
    )
}

const MIXED: &str = r#"
[[policy.sender.rule]]
action = "deny"
proto = "udp"
src_port = "7000-7999"
[[policy.sender.rule]]
action = "permit"
proto = "udp"
set_pcp = 3
[[policy.sender.rule]]
action = "permit"
proto = "tcp"
dst_port = "1-1023"
"#;

/// A's frames to B (hairpinned) and C (other port), repeating flows, plus broadcasts.
fn traffic() -> Vec<Vec<u8>> {
    let (sa, da) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let mut v = Vec::new();
    for round in 0..6u16 {
        for k in 0..40u16 {
            let dst = if k % 3 == 0 { C } else { B };
            let fb = FrameBuilder::new().src(A).dst(dst);
            let sport = [1000, 7100, 7999, 8000][(k % 4) as usize];
            let dport = [80, 5050, 5100, 2000, 443][(k % 5) as usize];
            v.push(if (k + round) % 2 == 0 {
                fb.udp4(sa, da, sport, dport)
            } else {
                fb.tcp4(sa, da, sport, dport, 0x02)
            });
        }
        v.push(
            FrameBuilder::new()
                .src(A)
                .dst(Mac([0xff; 6]))
                .udp4(sa, da, 1000, 5050),
        );
    }
    v
}

fn run(flow_cache: usize) -> (Vec<(usize, Vec<u8>)>, hairpin::stats::CoreCounters) {
    let mut h = Harness::new(config(flow_cache, MIXED), true).unwrap();
    let frames = traffic();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    // Learn B and C first, so unicast is known.
    let hello_b = FrameBuilder::new().src(B).dst(A).tcp4(
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 1),
        1,
        2,
        0x10,
    );
    let hello_c = FrameBuilder::new().src(C).dst(A).tcp4(
        Ipv4Addr::new(10, 0, 0, 3),
        Ipv4Addr::new(10, 0, 0, 1),
        1,
        2,
        0x10,
    );
    h.run(0, &[&hello_b], 1);
    h.run(1, &[&hello_c], 1);
    h.take_output();
    for c in refs.chunks(7) {
        h.run(0, c, 1);
    }
    let out = h.take_output();
    let ctr = h.counters().clone();
    h.check().unwrap();
    (out, ctr)
}

#[test]
fn cache_on_and_off_give_the_same_frames_and_counters() {
    let (out_on, on) = run(64);
    let (out_off, off) = run(0);
    assert!(!out_on.is_empty());
    assert_eq!(out_on, out_off);
    assert_eq!(on.drops, off.drops);
    assert_eq!(on.tx_pkts, off.tx_pkts);
    assert!(on.drops[hairpin::stats::DropReason::AclDeny as usize] > 0);
    // Repeated flows are answered by the cache; with it off nothing is counted.
    assert!(on.flow_cache_hits > 0, "{on:?}");
    assert!(on.flow_cache_misses > 0);
    assert_eq!((off.flow_cache_hits, off.flow_cache_misses), (0, 0));
}

/// Every kind of sender-side action: deny, class, PCP and DSCP rewrites, a
/// named counter, a rule meter and the VM's own meter (which remarks yellow
/// and drops red at these rates).
const FULL: &str = r#"meter = "vmrate"
[[policy.sender.rule]]
action = "deny"
proto = "udp"
src_port = "7000-7999"
[[policy.sender.rule]]
action = "permit"
proto = "udp"
dst_port = "5000-5099"
class = 6
set_dscp = 46
counter = "voice"
meter = "voice"
[[policy.sender.rule]]
action = "permit"
proto = "udp"
set_pcp = 3
set_dscp = 18
class = 2
[[policy.sender.rule]]
action = "permit"
proto = "tcp"
dst_port = "1-1023"
set_dscp = 10
meter = "voice"
[meter.vmrate]
type = "srtcm"
cir = "200k"
cbs = 3000
ebs = 3000
yellow = "remark"
remark_pcp = 1
remark_dscp = 8
[meter.voice]
type = "srtcm"
cir = "100k"
cbs = 1500
"#;

#[test]
fn every_sender_action_is_the_same_with_the_cache_on_and_off() {
    let run = |flow_cache: usize| {
        // hv1 schedules by class, so a wrong class shows as another order.
        let t = toml(flow_cache, FULL).replacen(
            "reflective_relay = true\n",
            "reflective_relay = true\negress = { strict = 8 }\n",
            1,
        );
        let mut h = Harness::new(Config::parse(&t).unwrap(), true).unwrap();
        let frames = traffic();
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        for c in refs.chunks(5) {
            h.run(0, c, 1);
        }
        let out = h.take_output();
        let ctr = h.counters().clone();
        let hits = h.rule_hits();
        let meters = h.pipeline().meter_counts();
        h.check().unwrap();
        (out, ctr, hits, meters)
    };
    let (out_on, on, hits_on, meters_on) = run(8192);
    let (out_off, off, hits_off, meters_off) = run(0);
    assert_eq!(out_on, out_off);
    assert_eq!(on.drops, off.drops);
    assert_eq!(hits_on, hits_off);
    assert_eq!(meters_on, meters_off);
    // The case exercises what it claims: denies, meter drops, every colour, the counter.
    let d = |r: hairpin::stats::DropReason| on.drops[r as usize];
    assert!(d(hairpin::stats::DropReason::AclDeny) > 0, "{on:?}");
    assert!(d(hairpin::stats::DropReason::MeterDrop) > 0, "{on:?}");
    assert!(meters_on.values().any(|c| c[1] > 0), "{meters_on:?}");
    assert!(hits_on["counter.voice"][0] > 0, "{hits_on:?}");
    assert!(on.flow_cache_hits > 0, "{on:?}");
}

#[test]
fn reload_moving_a_flow_to_another_rule_is_honoured_at_once() {
    // Before: rule 0 permits UDP. After: rule 0 denies TCP, rule 1 permits UDP.
    // A stale cached "rule 0" for the UDP flow would deny it after the reload.
    let before = "[[policy.sender.rule]]\naction = \"permit\"\nproto = \"udp\"\n";
    let after = "[[policy.sender.rule]]\naction = \"deny\"\nproto = \"tcp\"\n\
                 [[policy.sender.rule]]\naction = \"permit\"\nproto = \"udp\"\n";
    let mut h = Harness::new(config(8192, before), true).unwrap();
    let flow = FrameBuilder::new().src(A).dst(C).udp4(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 3),
        1000,
        53,
    );
    assert_eq!(h.run(0, &[&flow, &flow, &flow], 1), 3);
    // Two lookups per frame (A's from-vm, C's to-vm on the flood copy to hv2):
    // the first frame misses both, the next two hit.
    assert_eq!(h.counters().flow_cache_misses, 2);
    assert_eq!(h.counters().flow_cache_hits, 4);
    h.reload(config(8192, after)).unwrap();
    assert_eq!(h.run(0, &[&flow, &flow], 1), 2, "{:?}", h.counters());
    assert_eq!(h.counters().total_drops(), 0);
    let hits = h.rule_hits();
    assert_eq!(hits["policy.sender.rule[1] (from-vm)"][0], 2, "{hits:?}");
    assert_eq!(hits["policy.sender.rule[0] (from-vm)"][0], 3, "{hits:?}");
    h.check().unwrap();
}

#[test]
fn flow_cache_size_is_checked_and_cannot_change_live() {
    let e = Config::parse(&toml(1 << 21, MIXED)).unwrap_err();
    assert_eq!(e.path, "switch.flow_cache", "{e}");
    let mut h = Harness::new(config(64, MIXED), false).unwrap();
    let err = h.reload(config(128, MIXED)).unwrap_err();
    assert!(err.contains("switch.flow_cache"), "{err}");
}

#[test]
fn the_ingress_cache_keeps_the_guard_per_port_and_follows_vsi_moves() {
    // A's flow to C, cached on hv1; the same bytes on hv2 are a spoof there.
    let rules = "[[policy.sender.rule]]\naction = \"permit\"\nproto = \"udp\"\n";
    let flow = FrameBuilder::new().src(A).dst(C).udp4(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 3),
        1000,
        53,
    );
    let spoofed = hairpin::stats::DropReason::Spoofed as usize;
    // A VM with from-vm rules on hv2 too, so both ports use the ingress cache.
    let e = "[[vm]]\nname = \"e\"\nmac = \"02:00:00:00:00:0e\"\nvlan = 10\nport = \"hv2\"\npolicy = \"sender\"\n";
    let before = toml(8192, rules) + e;
    let mut h = Harness::new(Config::parse(&before).unwrap(), true).unwrap();
    assert_eq!(h.run(0, &[&flow, &flow, &flow], 1), 3);
    assert!(h.counters().flow_cache_hits >= 2, "{:?}", h.counters());
    assert_eq!(h.run(1, &[&flow, &flow], 1), 0);
    assert_eq!(h.counters().drops[spoofed], 2);
    // VM a moves to hv2 (as a VDP association would): the old port's cached
    // answer must not outlive the snapshot.
    let moved = before.replacen(
        "name = \"a\"\nmac = \"02:00:00:00:00:0a\"\nvlan = 10\nport = \"hv1\"",
        "name = \"a\"\nmac = \"02:00:00:00:00:0a\"\nvlan = 10\nport = \"hv2\"",
        1,
    );
    assert_ne!(moved, before, "the VM entry was not found");
    h.reload(Config::parse(&moved).unwrap()).unwrap();
    assert_eq!(h.run(0, &[&flow, &flow], 1), 0);
    assert_eq!(h.counters().drops[spoofed], 4);
    // From its new port A reaches B (on hv1); the hairpin to C is not the point here.
    let to_b = FrameBuilder::new().src(A).dst(B).udp4(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        1000,
        53,
    );
    assert_eq!(h.run(1, &[&to_b, &to_b], 1), 2, "{:?}", h.counters());
    h.check().unwrap();
}

#[test]
fn the_ingress_cache_remembers_non_vm_senders_only_until_a_reload() {
    // An unguarded trunk: frames from an unknown MAC meet no sender policy;
    // once that MAC becomes a VM with a deny-all policy, they are denied.
    let d = Mac([2, 0, 0, 0, 0, 0xd]);
    let base = toml(8192, "").replace(
        "name = \"hv2\"\nmode = \"access\"\npvid = 10\n",
        "name = \"hv2\"\nmode = \"access\"\npvid = 10\nsource_guard = false\n",
    );
    assert!(base.contains("source_guard = false"));
    let flow = FrameBuilder::new().src(d).dst(B).udp4(
        Ipv4Addr::new(10, 0, 0, 4),
        Ipv4Addr::new(10, 0, 0, 2),
        1000,
        53,
    );
    let mut h = Harness::new(Config::parse(&base).unwrap(), true).unwrap();
    assert_eq!(h.run(1, &[&flow, &flow, &flow], 1), 3, "{:?}", h.counters());
    let with_d = format!(
        "{base}[[vm]]\nname = \"d\"\nmac = \"{d}\"\nvlan = 10\nport = \"hv2\"\npolicy = \"sender\"\n"
    );
    h.reload(Config::parse(&with_d).unwrap()).unwrap();
    assert_eq!(h.run(1, &[&flow, &flow], 1), 0);
    assert_eq!(
        h.counters().drops[hairpin::stats::DropReason::AclDeny as usize],
        2,
        "{:?}",
        h.counters()
    );
    h.check().unwrap();
}
