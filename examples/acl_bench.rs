//! ACL classifier benchmark on the rte_acl-style rule sets
//! (`hairpin::policy::acl::bench_rules`, same distribution as
//! `perf-peers/06-rte-acl.sh`).
//!
//! `cargo run --release --example acl_bench -- 100 1000 10000`
//!
//! Per rule count: build time (median of 5), memory, tables, and TSC
//! cycles/frame for `Classifier::classify` over the 65,536-key trace (median,
//! min, max of 7 runs of 100 passes), and for `linear` at up to 1,000 rules.
//! Also checks `classify == linear` on the whole trace.
//!
//! Then the same for a "mixed" family (`mixed N`): rules over MACs with
//! masks, VLAN, ethertype, IPv4 and IPv6 prefixes, ICMP type, DSCP and TCP
//! flags, with keys derived from the rules or random.
use hairpin::policy::acl::{
    bench_rules, linear, AclKey, Classifier, Frag, IpVer, Prefix, Rng, Rule, HAS_ETH, HAS_ICMP,
    HAS_PORTS, HAS_PROTO, HAS_TCP_FLAGS,
};
use hairpin::util::tsc;
use std::hint::black_box;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn cycles<F: Fn(&AclKey) -> Option<u32>>(trace: &[AclKey], passes: usize, f: F) -> f64 {
    let mut acc = 0u64;
    let t0 = tsc();
    for _ in 0..passes {
        for k in trace {
            acc = acc.wrapping_add(u64::from(f(black_box(k)).unwrap_or(7)));
        }
    }
    let dt = tsc() - t0;
    black_box(acc);
    dt as f64 / (passes * trace.len()) as f64
}

/// Mixed rules: each field set with some probability from small pools, so
/// rules overlap; a catch-all last. Keys: even ones copy a random rule's
/// fields, odd ones random.
fn mixed_rules(n: usize, seed: u64) -> (Vec<Rule>, Vec<AclKey>) {
    let mut g = Rng(seed);
    let mut rules = Vec::with_capacity(n);
    for _ in 0..n.saturating_sub(1) {
        let mut r = Rule::default();
        let v6 = g.chance(0.4);
        let pfx = |g: &mut Rng| {
            let (w, lens): (u8, &[u8]) = if v6 {
                (128, &[32, 48, 64, 64, 128])
            } else {
                (32, &[8, 16, 24, 32])
            };
            let len = lens[g.below(lens.len() as u64) as usize];
            let a = (u128::from(g.next_u64()) << 64 | u128::from(g.next_u64())) >> (128 - w);
            Prefix { v6, addr: a, len }
        };
        if g.chance(0.3) {
            r.dst_mac = Some((
                0x0200_0000_0000 | g.below(4096),
                [0xffff_ffff_ffff, 0xffff_ffff_f000][g.below(2) as usize],
            ));
        }
        if g.chance(0.2) {
            r.src_mac = Some((0x0200_0000_0000 | g.below(4096), 0xffff_ffff_ffff));
        }
        if g.chance(0.4) {
            r.vlan = Some(1 + g.below(64) as u16);
        }
        if g.chance(0.5) {
            r.src_ip = Some(pfx(&mut g));
        }
        if g.chance(0.6) {
            r.dst_ip = Some(pfx(&mut g));
        }
        if r.src_ip.is_none() && r.dst_ip.is_none() && g.chance(0.5) {
            r.ethertype = Some([0x0800, 0x86dd, 0x0806, 0x88cc][g.below(4) as usize]);
        }
        match g.below(4) {
            0 => {
                r.proto = Some(if v6 { 58 } else { 1 });
                r.icmp_type = Some([0, 8, 128, 135][g.below(4) as usize]);
            }
            1 => {
                r.proto = Some(6);
                r.dst_port = Some((g.below(1024) as u16, 1023));
                if g.chance(0.3) {
                    r.tcp_flags = Some((0x02, 0x12));
                }
            }
            2 => {
                r.proto = Some(17);
                r.dst_port = Some(if g.chance(0.5) {
                    (53, 53)
                } else {
                    (1024, 65535)
                });
            }
            _ => {
                if g.chance(0.3) {
                    r.dscp = Some(46);
                }
            }
        }
        rules.push(r);
    }
    if n > 0 {
        rules.push(Rule::default());
    }
    let mut trace = Vec::with_capacity(65536);
    for i in 0..65536 {
        let mut k = AclKey {
            has: HAS_ETH,
            vlan: 1 + g.below(64) as u16,
            dst_mac: 0x0200_0000_0000 | g.below(4096),
            src_mac: 0x0200_0000_0000 | g.below(4096),
            ethertype: 0x0800,
            ip: IpVer::V4,
            src_ip: u128::from(g.next_u64() as u32),
            dst_ip: u128::from(g.next_u64() as u32),
            proto: 17,
            src_port: g.below(65536) as u16,
            dst_port: [53, 80, 443, 5000][g.below(4) as usize],
            ..Default::default()
        };
        k.has |= HAS_PROTO | HAS_PORTS;
        if i % 2 == 0 && n > 1 {
            let r = &rules[g.below(n as u64 - 1) as usize];
            if let Some((v, _)) = r.dst_mac {
                k.dst_mac = v;
            }
            if let Some((v, _)) = r.src_mac {
                k.src_mac = v;
            }
            if let Some(v) = r.vlan {
                k.vlan = v;
            }
            for (p, dst) in [(r.src_ip, false), (r.dst_ip, true)] {
                if let Some(p) = p {
                    k.ip = if p.v6 { IpVer::V6 } else { IpVer::V4 };
                    k.ethertype = if p.v6 { 0x86dd } else { 0x0800 };
                    if dst {
                        k.dst_ip = p.addr;
                    } else {
                        k.src_ip = p.addr;
                    }
                }
            }
            if let Some(e) = r.ethertype {
                k.ethertype = e;
            }
            if let Some(p) = r.proto {
                k.proto = p;
                k.has = HAS_ETH | HAS_PROTO;
                match p {
                    6 => k.has |= HAS_PORTS | HAS_TCP_FLAGS,
                    17 => k.has |= HAS_PORTS,
                    _ => k.has |= HAS_ICMP,
                }
            }
            if let Some(t) = r.icmp_type {
                k.icmp_type = t;
            }
            if let Some((lo, _)) = r.dst_port {
                k.dst_port = lo;
            }
            if let Some((v, _)) = r.tcp_flags {
                k.tcp_flags = v;
            }
            if let Some(d) = r.dscp {
                k.dscp = d;
            }
        }
        k.frag = Frag::NotFragment;
        trace.push(k);
    }
    (rules, trace)
}

/// Cycles per `AclKey::from_frame` on IPv4 TCP/UDP frames built from the
/// 5-tuple trace.
fn from_frame_cost() {
    use hairpin::wire::FrameBuilder;
    use std::net::Ipv4Addr;
    let (_, trace) = bench_rules(1000, 42);
    let frames: Vec<Vec<u8>> = trace[..4096]
        .iter()
        .map(|k| {
            let (s, d) = (
                Ipv4Addr::from(k.src_ip as u32),
                Ipv4Addr::from(k.dst_ip as u32),
            );
            let b = FrameBuilder::new();
            if k.proto == 6 {
                b.tcp4(s, d, k.src_port, k.dst_port, 0x10)
            } else {
                b.udp4(s, d, k.src_port, k.dst_port)
            }
        })
        .collect();
    let runs: Vec<f64> = (0..7)
        .map(|_| {
            let mut acc = 0u64;
            let t0 = tsc();
            for _ in 0..200 {
                for f in &frames {
                    acc = acc.wrapping_add(AclKey::from_frame(black_box(f), 1, 0).dst_ip as u64);
                }
            }
            black_box(acc);
            (tsc() - t0) as f64 / (200 * frames.len()) as f64
        })
        .collect();
    println!(
        "from_frame (IPv4 TCP/UDP) cycles/frame med={:.1}",
        median(runs).0
    );
}

fn main() {
    let mut mixed = false;
    let mut ns = Vec::new();
    for a in std::env::args().skip(1) {
        if a == "mixed" {
            mixed = true;
        } else {
            ns.push(a.parse::<usize>().expect("rule counts or `mixed`"));
        }
    }
    if ns.is_empty() {
        ns = vec![100, 1000, 10000];
    }
    from_frame_cost();
    for n in ns {
        let (rules, trace): (Vec<Rule>, Vec<AclKey>) = if mixed {
            mixed_rules(n, 42)
        } else {
            bench_rules(n, 42)
        };
        let mut bt = Vec::new();
        let mut c = Classifier::build(&rules);
        for _ in 0..5 {
            let t = Instant::now();
            c = black_box(Classifier::build(black_box(&rules)));
            bt.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (bmed, _, _) = median(bt);
        let bad = trace
            .iter()
            .filter(|k| c.classify(k) != linear(&rules, k))
            .count();
        assert_eq!(bad, 0, "classify != linear on {bad} keys");
        let runs: Vec<f64> = (0..7)
            .map(|_| cycles(&trace, 100, |k| c.classify(k)))
            .collect();
        let (cm, cmin, cmax) = median(runs);
        let lin = if n <= 1000 {
            let passes = (20_000 / n).max(1);
            let runs: Vec<f64> = (0..3)
                .map(|_| cycles(&trace, passes, |k| linear(&rules, k)))
                .collect();
            format!("{:.0}", median(runs).0)
        } else {
            "-".into()
        };
        println!(
            "{}rules={n:<6} build={bmed:7.2} ms  mem={:8.1} KiB  tables={}  classify cycles/frame med={cm:6.1} (min {cmin:.1} max {cmax:.1})  linear={lin}",
            if mixed { "mixed " } else { "" },
            c.memory_bytes() as f64 / 1024.0,
            c.tables(),
        );
        if std::env::var_os("ACL_SUMMARY").is_some() {
            print!("{}", c.summary());
        }
    }
}
