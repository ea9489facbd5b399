//! The policy examples in docs/configs/ do what docs/config.md says they do.

use hairpin::config::Config;
use hairpin::harness::Harness;
use hairpin::stats::DropReason;
use hairpin::types::Mac;
use hairpin::wire::build::FrameBuilder;
use std::net::Ipv4Addr;

fn load(name: &str) -> Harness {
    let p = format!("{}/docs/configs/{name}", env!("CARGO_MANIFEST_DIR"));
    Harness::new(Config::load(std::path::Path::new(&p)).unwrap(), true).unwrap()
}

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

const WEB: &str = "02:00:00:00:10:01";
const DB: &str = "02:00:00:00:20:01";
const SYN: u16 = 0x02;
const ACK: u16 = 0x10;

fn tcp(
    src: &str,
    dst: &str,
    sip: [u8; 4],
    dip: [u8; 4],
    sport: u16,
    dport: u16,
    flags: u16,
) -> Vec<u8> {
    FrameBuilder::new()
        .src(mac(src))
        .dst(mac(dst))
        .vlan(10)
        .tcp4(sip.into(), dip.into(), sport, dport, flags)
}

/// Sends one frame on `port`; returns (egress frames, drops by reason after).
fn one(h: &mut Harness, port: usize, f: &[u8]) -> Vec<(usize, Vec<u8>)> {
    h.run(port, &[f], 1);
    h.take_output()
}

#[test]
fn web_reaches_db_on_5432_marked_af21_and_nothing_else() {
    let mut h = load("policy-tiers.toml");
    // web1 (10.0.10.5) → db1 (10.0.20.7):5432, both behind hv1: hairpinned, DSCP 18.
    let f = tcp(WEB, DB, [10, 0, 10, 5], [10, 0, 20, 7], 40000, 5432, SYN);
    let out = one(&mut h, 0, &f);
    assert_eq!(out.len(), 1, "one copy, back out hv1");
    assert_eq!(out[0].0, 0);
    let ip = &out[0].1[18..];
    assert_eq!(ip[1] >> 2, 18, "DSCP rewritten to AF21");
    // Header checksum still valid after the rewrite.
    let sum: u32 = ip[..20]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff);
    // The reply from db1 passes both policies.
    let r = tcp(
        DB,
        WEB,
        [10, 0, 20, 7],
        [10, 0, 10, 5],
        5432,
        40000,
        SYN | ACK,
    );
    assert_eq!(one(&mut h, 0, &r).len(), 1);
    // web1 → db1:22 is denied by web's from-vm default; db1 → web1:22 by web's to-vm default.
    let before = h.counters().drops[DropReason::AclDeny as usize];
    assert!(one(
        &mut h,
        0,
        &tcp(WEB, DB, [10, 0, 10, 5], [10, 0, 20, 7], 40001, 22, SYN)
    )
    .is_empty());
    assert!(one(
        &mut h,
        0,
        &tcp(DB, WEB, [10, 0, 20, 7], [10, 0, 10, 5], 40002, 22, SYN)
    )
    .is_empty());
    assert_eq!(h.counters().drops[DropReason::AclDeny as usize], before + 2);
    h.check().unwrap();
}

#[test]
fn tenants_cannot_reach_each_other_but_reach_the_gateway() {
    let mut h = load("policy-isolated-tenants.toml");
    let a = "02:00:00:00:30:01";
    let b = "02:00:00:00:30:02";
    let gw = "02:00:00:00:00:fe";
    let f = |s: &str, d: &str| {
        FrameBuilder::new().src(mac(s)).dst(mac(d)).vlan(30).udp4(
            Ipv4Addr::new(10, 3, 0, 1),
            Ipv4Addr::new(10, 3, 0, 2),
            1,
            2,
        )
    };
    // The gateway is learned on gw first (untagged there).
    let g = FrameBuilder::new().src(mac(gw)).dst(mac(a)).udp4(
        Ipv4Addr::new(10, 3, 0, 254),
        Ipv4Addr::new(10, 3, 0, 1),
        1,
        2,
    );
    assert_eq!(one(&mut h, 1, &g).len(), 1, "gateway → a1 delivered");
    assert!(
        one(&mut h, 0, &f(a, b)).is_empty(),
        "a1 → b1 denied by a's from-vm rule"
    );
    assert!(
        one(&mut h, 0, &f(b, a)).is_empty(),
        "b1 → a1 denied by b's rule (and a's to-vm rule)"
    );
    let out = one(&mut h, 0, &f(a, gw));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 1, "a1 → gateway on port gw");
    assert_eq!(h.counters().drops[DropReason::AclDeny as usize], 2);
    // Broadcast from a1: goes to the gateway, and is reflected to hv1 only for
    // receivers that permit it — b1's policy permits by default, but a1's
    // to-b1 rule is a unicast rule, so the copy to hv1 goes (b1 judges by its own rules).
    let bc = FrameBuilder::new()
        .src(mac(a))
        .dst(Mac::BROADCAST)
        .vlan(30)
        .arp_request(Ipv4Addr::new(10, 3, 0, 1), Ipv4Addr::new(10, 3, 0, 9));
    let out = one(&mut h, 0, &bc);
    assert_eq!(
        out.iter().filter(|(p, _)| *p == 1).count(),
        1,
        "broadcast reaches the gateway"
    );
    h.check().unwrap();
}
