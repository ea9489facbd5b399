//! The one-pass known-unicast path (`Pipeline::known_unicast`) against the
//! staged pipeline: for any config and any frames, the same frames leave by
//! the same ports in the same order, and every counter and FDB entry ends
//! the same, whichever path a burst took.

use hairpin::config::Config;
use hairpin::harness::Harness;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

const MACS: [[u8; 6]; 4] = [
    [0x02, 0, 0, 0, 0, 1],
    [0x02, 0, 0, 0, 0, 2],
    [0x02, 0, 0, 0, 0, 3],
    [0x02, 0, 0, 0, 0, 4],
];

#[derive(Clone, Debug)]
struct PortSpec {
    trunk: bool,
    pvid: Option<u16>,
    rr: bool,
    learning: bool,
    isolated: bool,
    locked: bool,
    state: &'static str,
    egress: bool,
}

/// A policy `p` with from-vm rules (deny UDP 53; permit UDP 1000–2000
/// with PCP, DSCP and class rewrites) for the VMs among `MACS`.
#[derive(Clone, Debug)]
struct PolicySpec {
    default_permit: bool,
    /// A meter on the policy (the cache answer then meters: staged).
    meter: bool,
    /// A named counter on the permit rule.
    counter: bool,
    /// A to-vm rule (every burst staged: the receiver's side is judged there).
    to_vm: bool,
    /// Which of `MACS` are VMs with the policy, behind their home port.
    vms: [bool; 4],
}

#[derive(Clone, Debug)]
struct Setup {
    veb: bool,
    own_mac: bool,
    mtu: usize,
    vm: bool,
    ports: Vec<PortSpec>,
    policy: Option<PolicySpec>,
}

impl Setup {
    fn toml(&self) -> String {
        let mut t = format!(
            "[switch]\nworkers = [0]\nrole = \"{}\"\nmtu = {}\n",
            if self.veb { "edge-veb" } else { "bridge" },
            self.mtu
        );
        if self.own_mac {
            // MACS[3]: frames to it are punted, frames from it are not learned.
            t += "mac = \"02:00:00:00:00:04\"\n";
        }
        t += "[switch.fdb]\naging_s = 2\n";
        for (i, p) in self.ports.iter().enumerate() {
            t += &format!("[[port]]\nname = \"p{i}\"\n");
            if p.trunk {
                t += "mode = \"trunk\"\nvlans = [10, 20]\n";
            }
            if let Some(v) = p.pvid {
                t += &format!("pvid = {v}\n");
            }
            t += &format!(
                "reflective_relay = {}\nlearning = {}\nisolated = {}\nlocked = {}\nstate = \"{}\"\n",
                p.rr && !self.veb,
                p.learning, p.isolated, p.locked, p.state
            );
            if self.veb && i == 0 {
                t += "uplink = true\n";
            }
            if p.egress {
                t += "egress = { strict = 2 }\n";
            }
        }
        let vlan_of = |p: &PortSpec| if p.trunk { 10 } else { p.pvid.unwrap_or(10) };
        if let Some(pol) = &self.policy {
            t += &format!(
                "[policy.p]\ndefault = \"{}\"\n",
                if pol.default_permit { "permit" } else { "deny" }
            );
            if pol.meter {
                t += "meter = \"m\"\n";
            }
            t += "[[policy.p.rule]]\naction = \"deny\"\nproto = \"udp\"\ndst_port = \"53\"\n";
            t += "[[policy.p.rule]]\naction = \"permit\"\nproto = \"udp\"\ndst_port = \"1000-2000\"\nset_pcp = 5\nset_dscp = 10\nclass = 3\n";
            if pol.counter {
                t += "counter = \"c\"\n";
            }
            if pol.to_vm {
                t += "[[policy.p.rule]]\ndirection = \"to-vm\"\naction = \"permit\"\nproto = \"udp\"\n";
            }
            if pol.meter {
                t += "[meter.m]\ntype = \"srtcm\"\ncir = \"100G\"\ncbs = 1000000\nebs = 1000000\n";
            }
            // (No VMs behind an edge's uplink.)
            let vm = |i: usize| pol.vms[i] && !(self.veb && i % 3 == 0);
            for (i, mac) in MACS.iter().enumerate().filter(|(i, _)| vm(*i)) {
                let home = i % 3;
                t += &format!(
                    "[[vm]]\nname = \"vm{i}\"\nmac = \"{}\"\nvlan = {}\nport = \"p{home}\"\npolicy = \"p\"\n",
                    hairpin::types::Mac(*mac),
                    vlan_of(&self.ports[home])
                );
            }
        } else if self.vm {
            // A static entry: MACS[0] behind p1 (lets p1 send when locked).
            let vlan = vlan_of(&self.ports[1]);
            t += &format!(
                "[[vm]]\nname = \"s\"\nmac = \"02:00:00:00:00:01\"\nvlan = {vlan}\nport = \"p1\"\n"
            );
        }
        t
    }
}

fn port_spec() -> impl Strategy<Value = PortSpec> {
    (
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(10u16)), Just(Some(20u16))],
        any::<bool>(),
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        prop_oneof![
            8 => Just("forwarding"),
            1 => Just("learning"),
            1 => Just("blocking"),
        ],
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(trunk, pvid, rr, learning, isolated, locked, state, egress)| PortSpec {
                trunk,
                // An access port always has a VLAN.
                pvid: if trunk { pvid } else { pvid.or(Some(10)) },
                rr,
                learning,
                isolated,
                locked,
                state,
                egress,
            },
        )
}

fn policy_spec() -> impl Strategy<Value = PolicySpec> {
    (
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
        prop::array::uniform4(prop::bool::weighted(0.85)),
    )
        .prop_map(|(default_permit, meter, counter, to_vm, vms)| PolicySpec {
            default_permit,
            meter,
            counter,
            to_vm,
            vms,
        })
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.2),
        prop_oneof![4 => Just(1500usize), 1 => Just(100usize)],
        prop::bool::weighted(0.3),
        prop::collection::vec(port_spec(), 3),
        prop::option::weighted(0.4, policy_spec()),
    )
        .prop_map(|(veb, own_mac, mtu, vm, ports, policy)| Setup {
            veb,
            own_mac,
            mtu,
            vm,
            ports,
            policy,
        })
}

/// One frame, mostly plain unicast among `MACS`, sometimes anything else
/// the ingress stage has a rule for.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let addr = prop_oneof![
        12 => (0..4usize).prop_map(|i| MACS[i]),
        1 => Just([0xff; 6]),
        1 => Just([0x01, 0x80, 0xc2, 0, 0, 0x0e]),
        1 => Just([0x01, 0x00, 0x5e, 0, 0, 1]),
        1 => Just([0; 6]),
    ];
    let tag = prop_oneof![
        6 => Just(Vec::new()),
        6 => (prop_oneof![Just(10u16), Just(20), Just(30), Just(0), Just(4095)], 0..8u16)
            .prop_map(|(vid, pcp)| {
                let tci = pcp << 13 | vid;
                vec![0x81, 0, (tci >> 8) as u8, tci as u8]
            }),
        1 => Just(vec![0x88, 0xa8, 0, 10, 0x81, 0, 0, 10]),
        1 => Just(vec![0x81, 0, 0, 10, 0x81, 0, 0, 20]),
    ];
    let ethertype = prop_oneof![8 => Just(0x0800u16), 1 => Just(0x88cc), 1 => Just(0x8940)];
    let payload = prop_oneof![Just(2usize), Just(46), Just(46), Just(120)];
    let cut = prop_oneof![8 => Just(None), 1 => (0..20usize).prop_map(Some)];
    (
        addr.clone(),
        addr,
        tag,
        ethertype,
        payload,
        cut,
        any::<u8>(),
    )
        .prop_map(|(dst, src, tag, et, payload, cut, fill)| {
            let mut f = Vec::new();
            f.extend_from_slice(&dst);
            f.extend_from_slice(&src);
            f.extend_from_slice(&tag);
            f.extend_from_slice(&et.to_be_bytes());
            f.extend(std::iter::repeat(fill).take(payload));
            if let Some(n) = cut {
                f.truncate(n);
            }
            f
        })
}

/// A burst of plain unicast from the MACs homed on `port` (MACS[i] on port
/// i % 3) to any of `MACS`, all untagged or all tagged in VLAN 10 or 20:
/// the bursts the one-pass path is for, once their addresses are known.
fn plain_burst(port: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    let home: Vec<usize> = (0..4).filter(|i| i % 3 == port).collect();
    // Sometimes a source from anywhere: a move, or (not learning) a VM's
    // own frame reflected back up an edge's uplink.
    let src = prop_oneof![3 => prop::sample::select(home), 1 => 0..4usize];
    (
        prop_oneof![2 => Just(None), 2 => Just(Some(10u16)), 1 => Just(Some(20u16))],
        // One to three flows (source, destination, PCP, UDP port: denied,
        // permitted with rewrites, the default), interleaved.
        prop::collection::vec(
            (
                src,
                0..4usize,
                0..8u16,
                prop_oneof![1 => Just(53u16), 3 => Just(1500), 1 => Just(8080)],
            ),
            1..4,
        ),
        // Each frame: its flow, and 60 or 134 bytes untagged (the small MTU
        // is 100). Tagged, one flow's frames of both sizes have the same
        // first 18 bytes, so a one-flow burst can hold a frame too long.
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop_oneof![6 => Just(46usize), 1 => Just(120)],
            ),
            1..40,
        ),
    )
        .prop_map(|(vid, flows, picks)| {
            picks
                .into_iter()
                .map(|(k, payload)| {
                    let (s, d, pcp, port) = *k.get(&flows);
                    udp_frame(d, s, vid.map(|v| pcp << 13 | v), port, payload)
                })
                .collect()
        })
}

/// `MACS[s]` → `MACS[d]`, IPv4 10.0.0.s → 10.0.0.d, UDP 12345 → `port`,
/// tagged with `tci` if any; `payload` bytes after the Ethernet header.
fn udp_frame(d: usize, s: usize, tci: Option<u16>, port: u16, payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MACS[d]);
    f.extend_from_slice(&MACS[s]);
    if let Some(tci) = tci {
        f.extend_from_slice(&[0x81, 0, (tci >> 8) as u8, tci as u8]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = (payload as u16).to_be_bytes();
    f.extend_from_slice(&[0x45, 0, ip_len[0], ip_len[1], 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, s as u8, 10, 0, 0, d as u8]);
    let udp_len = (payload as u16 - 20).to_be_bytes();
    f.extend_from_slice(&[0x30, 0x39]);
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&[udp_len[0], udp_len[1], 0, 0]);
    f.extend(std::iter::repeat(s as u8).take(payload - 28));
    f
}

/// (ingress port, one burst, ms to advance the clock first): bursts of
/// plain unicast (each sent 1 to 3 times in a row: the first one learns),
/// or of anything.
fn steps() -> impl Strategy<Value = Vec<(usize, Vec<Vec<u8>>, u64)>> {
    let step = (0..3usize).prop_flat_map(|port| {
        (
            Just(port),
            prop_oneof![
                3 => (plain_burst(port), 1..4usize),
                2 => (prop::collection::vec(frame(), 1..40), Just(1usize)),
            ],
            prop_oneof![6 => Just(0u64), 1 => Just(700), 1 => Just(2500)],
        )
    });
    prop::collection::vec(step, 1..20).prop_map(|v| {
        v.into_iter()
            .flat_map(|(port, (burst, times), advance)| {
                (0..times).map(move |k| (port, burst.clone(), if k == 0 { advance } else { 0 }))
            })
            .collect()
    })
}

/// Runs `steps` through the switch of `s` with the one-pass path on or off;
/// returns what each step sent, the counters, the FDB, the bursts that took
/// the one-pass path, how many of those were one flow and how many went to
/// one port's staging whole, and the header memo's counts.
fn run(
    s: &Setup,
    steps: &[(usize, Vec<Vec<u8>>, u64)],
    fast: bool,
) -> (Vec<String>, u64, u64, u64, (u64, u64, u64)) {
    let mut h = Harness::new(Config::parse(&s.toml()).expect("config"), true).expect("harness");
    h.set_fast_path(fast);
    let mut seen = Vec::new();
    let mut now = 0;
    for (port, frames, advance) in steps {
        now += advance;
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        h.run(*port, &refs, *advance);
        seen.push(format!("{:?}", h.take_output()));
    }
    h.check().expect("no leak, counters balance");
    seen.push(format!("{:?}", h.counters()));
    seen.push(format!("{:?}", h.pipeline().port_ctr));
    seen.push(format!("{:?}", h.rule_hits()));
    seen.push(format!("{:?}", h.pipeline().meter_counts()));
    let mut fdb: Vec<String> = h
        .switch()
        .fdb
        .dump(now)
        .iter()
        .map(|r| format!("{} {} {} {}", r.mac, r.vid, r.port, r.is_static))
        .collect();
    fdb.sort();
    seen.push(fdb.join(", "));
    let p = h.pipeline();
    (
        seen,
        p.fast_bursts,
        p.one_flow_bursts,
        p.whole_bursts,
        p.memo_counts(),
    )
}

#[test]
fn one_pass_and_staged_pipelines_agree() {
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 600,
        ..RunnerConfig::default()
    });
    let took = std::cell::Cell::new(0u64);
    let mixed = std::cell::Cell::new(0u64);
    let took_policy = std::cell::Cell::new(0u64);
    let one_flow = std::cell::Cell::new(0u64);
    let one_flow_policy = std::cell::Cell::new(0u64);
    let whole = std::cell::Cell::new(0u64);
    let memo_hits = std::cell::Cell::new(0u64);
    let memo_stale = std::cell::Cell::new(0u64);
    let memo_hits_policy = std::cell::Cell::new(0u64);
    runner
        .run(&(setup(), steps()), |(s, steps)| {
            let (staged, none, _, _, _) = run(&s, &steps, false);
            prop_assert_eq!(none, 0, "fast path off, yet a burst took it");
            let (fast, n, one, w, (hits, stale, _)) = run(&s, &steps, true);
            prop_assert_eq!(&fast, &staged, "config:\n{}", s.toml());
            took.set(took.get() + n);
            whole.set(whole.get() + w);
            memo_hits.set(memo_hits.get() + hits);
            memo_stale.set(memo_stale.get() + stale);
            one_flow.set(one_flow.get() + one);
            if s.policy.as_ref().is_some_and(|p| p.vms.iter().any(|&v| v)) {
                took_policy.set(took_policy.get() + n);
                one_flow_policy.set(one_flow_policy.get() + one);
                memo_hits_policy.set(memo_hits_policy.get() + hits);
            }
            if n > 0 && (n as usize) < steps.len() {
                mixed.set(mixed.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "one-pass bursts {} ({} with a policy, {} of one flow, {} of one flow with a policy, {} moved whole), cases with both kinds {}, memo answers used {} ({} with a policy), found stale {}",
        took.get(),
        took_policy.get(),
        one_flow.get(),
        one_flow_policy.get(),
        whole.get(),
        mixed.get(),
        memo_hits.get(),
        memo_hits_policy.get(),
        memo_stale.get()
    );
    // The comparison means something only if the one-pass path ran, and
    // ran next to staged bursts of the same switch.
    assert!(took.get() > 100, "one-pass bursts: {}", took.get());
    assert!(mixed.get() > 10, "cases with both kinds: {}", mixed.get());
    assert!(took_policy.get() > 0, "no one-pass burst with a policy");
    assert!(one_flow.get() > 10, "one-flow bursts: {}", one_flow.get());
    assert!(one_flow_policy.get() > 0, "no one-flow burst with a policy");
    // Whole moves, and bursts of the one-pass path that were not moved whole
    // (another port per frame, a tag to push or pop, a rewrite, a scheduler).
    assert!(whole.get() > 10, "bursts moved whole: {}", whole.get());
    assert!(
        took.get() > whole.get() + 10,
        "every one-pass burst moved whole"
    );
    // The header memo answered, and refused answers an FDB write or the
    // clock had overtaken (the runs move sources and let entries age).
    assert!(
        memo_hits.get() > 100,
        "memo answers used: {}",
        memo_hits.get()
    );
    assert!(
        memo_stale.get() > 0,
        "memo answers found stale: {}",
        memo_stale.get()
    );
    // With policy the memo also answers for the ingress cache.
    assert!(
        memo_hits_policy.get() > 10,
        "memo answers used with a policy: {}",
        memo_hits_policy.get()
    );
}

#[test]
fn a_one_flow_burst_takes_frame_zeros_decision_but_each_frame_is_length_checked() {
    for fast in [true, false] {
        let mut h = hairpin_bridge(fast);
        let (a, b) = (MACS[0], MACS[1]);
        h.run(0, &[&plain([0xff; 6], a)], 0);
        h.run(0, &[&plain([0xff; 6], b)], 0);
        h.take_output();
        // 32 frames A → B with the same first 18 bytes, two lengths: one flow.
        let f = plain(b, a);
        let mut long = f.clone();
        long.resize(1400, 0xab);
        let burst: Vec<&[u8]> = (0..32)
            .map(|i| if i % 5 == 3 { &long[..] } else { &f[..] })
            .collect();
        assert_eq!(h.run(0, &burst, 0), 32);
        let out = h.take_output();
        assert_eq!(out.len(), 32);
        assert!(out.iter().zip(&burst).all(|((p, d), f)| *p == 0 && d == f));
        assert_eq!(h.pipeline().fast_bursts, u64::from(fast));
        assert_eq!(h.pipeline().one_flow_bursts, u64::from(fast));
        assert_eq!(
            h.pipeline().port_ctr[0].rx_bytes,
            2 * 60 + 26 * 60 + 6 * 1400
        );
        // The same with one frame longer than the MTU (1518): that frame
        // must not take frame 0's decision, so the burst is staged, which
        // drops it as oversize and forwards the rest.
        let mut huge = f.clone();
        huge.resize(1600, 0xab);
        let burst: Vec<&[u8]> = (0..32)
            .map(|i| if i == 17 { &huge[..] } else { &f[..] })
            .collect();
        assert_eq!(h.run(0, &burst, 0), 31);
        assert_eq!(h.take_output().len(), 31);
        assert_eq!(h.pipeline().fast_bursts, u64::from(fast));
        assert_eq!(
            h.counters().drops[hairpin::stats::DropReason::Oversize as usize],
            1
        );
        // A burst of two flows is not one flow.
        let g = plain(a, b);
        let burst: Vec<&[u8]> = (0..32)
            .map(|i| if i == 31 { &g[..] } else { &f[..] })
            .collect();
        assert_eq!(h.run(0, &burst, 0), 32);
        assert_eq!(h.pipeline().fast_bursts, 2 * u64::from(fast));
        assert_eq!(h.pipeline().one_flow_bursts, u64::from(fast));
        h.check().unwrap();
    }
}

#[test]
fn a_tagged_frame_whose_inner_ethertype_differs_is_another_flow() {
    // Trunk port 0 in VLAN 10 with reflective relay; A and B behind it.
    let toml = "[switch]\nworkers = [0]\n[[port]]\nname = \"a\"\nmode = \"trunk\"\nvlans = [10]\n\
                reflective_relay = true\n[[port]]\nname = \"b\"\npvid = 10\n";
    let tagged = |dst: [u8; 6], src: [u8; 6], inner: [u8; 2]| {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x81, 0x00, 0x00, 10]);
        f.extend_from_slice(&inner);
        f.extend_from_slice(&[0xab; 46]);
        f
    };
    let mut outs = Vec::new();
    for fast in [true, false] {
        let mut h = Harness::new(Config::parse(toml).unwrap(), true).unwrap();
        h.set_fast_path(fast);
        let (a, b) = (MACS[0], MACS[1]);
        h.run(0, &[&tagged([0xff; 6], a, [0x08, 0])], 0);
        h.run(0, &[&tagged([0xff; 6], b, [0x08, 0])], 0);
        h.take_output();
        let f = tagged(b, a, [0x08, 0]);
        assert_eq!(h.run(0, &vec![&f[..]; 32], 0), 32);
        assert_eq!(h.pipeline().one_flow_bursts, u64::from(fast));
        // Same addresses and tag; frame 9 carries a second tag (inner
        // ethertype 0x8100), which the one pass never takes: staged.
        let q = tagged(b, a, [0x81, 0]);
        let burst: Vec<&[u8]> = (0..32)
            .map(|i| if i == 9 { &q[..] } else { &f[..] })
            .collect();
        h.run(0, &burst, 0);
        assert_eq!(h.pipeline().fast_bursts, u64::from(fast));
        assert_eq!(h.pipeline().one_flow_bursts, u64::from(fast));
        h.check().unwrap();
        outs.push(format!("{:?} {:?}", h.take_output(), h.counters()));
    }
    assert_eq!(outs[0], outs[1]);
}

/// Port `a` (`port_a`: its VLAN lines; reflective relay) with VMs x and y
/// (`MACS` 0 and 1, VLAN 10) of policy `p` behind it, port `b` an access
/// port of VLAN 10. `p` permits by default and denies UDP 53 before `rules`.
fn vms_behind_a(port_a: &str, rules: &str) -> String {
    format!(
        "[switch]\nworkers = [0]\n[[port]]\nname = \"a\"\n{port_a}reflective_relay = true\n\
         [[port]]\nname = \"b\"\npvid = 10\n[policy.p]\ndefault = \"permit\"\n\
         [[policy.p.rule]]\naction = \"deny\"\nproto = \"udp\"\ndst_port = \"53\"\n{rules}\
         [[vm]]\nname = \"x\"\nmac = \"{}\"\nvlan = 10\nport = \"a\"\npolicy = \"p\"\n\
         [[vm]]\nname = \"y\"\nmac = \"{}\"\nvlan = 10\nport = \"a\"\npolicy = \"p\"\n",
        hairpin::types::Mac(MACS[0]),
        hairpin::types::Mac(MACS[1])
    )
}

#[test]
fn with_a_policy_an_s_tag_is_not_the_c_tag_the_memo_knows() {
    // With policy the memo's key is the flow key with the raw tag: the same
    // TCI behind another TPID is another key, and the one pass leaves the
    // S-tagged frame to the stages.
    let toml = vms_behind_a("mode = \"trunk\"\nvlans = [10]\n", "");
    let mut outs = Vec::new();
    for fast in [true, false] {
        let mut h = Harness::new(Config::parse(&toml).unwrap(), true).unwrap();
        h.set_fast_path(fast);
        let mut bcast = udp_frame(0, 0, Some(10), 1500, 46);
        for s in [0, 1] {
            bcast[..6].copy_from_slice(&[0xff; 6]);
            bcast[6..12].copy_from_slice(&MACS[s]);
            h.run(0, &[&bcast], 0);
        }
        h.take_output();
        let c = udp_frame(1, 0, Some(10), 1500, 46);
        assert_eq!(h.run(0, &vec![&c[..]; 32], 0), 32);
        assert_eq!(h.run(0, &vec![&c[..]; 32], 0), 32);
        assert_eq!(h.pipeline().fast_bursts, 2 * u64::from(fast));
        let mut s_tag = c.clone();
        s_tag[12..14].copy_from_slice(&[0x88, 0xa8]);
        h.run(0, &vec![&s_tag[..]; 32], 0);
        assert_eq!(h.pipeline().fast_bursts, 2 * u64::from(fast));
        h.check().unwrap();
        outs.push(format!("{:?} {:?}", h.take_output(), h.counters()));
    }
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn bursts_a_cached_policy_permits_take_one_pass_with_its_rewrites() {
    let toml = vms_behind_a(
        "pvid = 10\n",
        "[[policy.p.rule]]\naction = \"permit\"\nproto = \"udp\"\ndst_port = \"1000-2000\"\nset_dscp = 10\n",
    );
    let mut outs = Vec::new();
    for fast in [true, false] {
        let mut h = Harness::new(Config::parse(&toml).unwrap(), true).unwrap();
        h.set_fast_path(fast);
        // x and y learned (broadcasts: staged).
        h.run(
            0,
            &[&plain([0xff; 6], MACS[0]), &plain([0xff; 6], MACS[1])],
            0,
        );
        h.take_output();
        let ok = udp_frame(1, 0, None, 1500, 46);
        let burst: Vec<&[u8]> = vec![&ok; 32];
        // First burst: the one pass resolves the flow and stores it in the
        // ingress cache (a miss; the broadcasts above missed the
        // classifier's cache twice); second: the cache answers.
        assert_eq!(h.run(0, &burst, 0), 32);
        assert_eq!(h.pipeline().fast_bursts, u64::from(fast));
        assert_eq!(
            (h.counters().flow_cache_hits, h.counters().flow_cache_misses),
            (31, 3)
        );
        assert_eq!(h.run(0, &burst, 0), 32);
        assert_eq!(h.pipeline().fast_bursts, 2 * u64::from(fast));
        assert_eq!(
            (h.counters().flow_cache_hits, h.counters().flow_cache_misses),
            (63, 3)
        );
        // 32 frames of one flow: frame 0 decided, the others take its answer.
        assert_eq!(h.pipeline().one_flow_bursts, 2 * u64::from(fast));
        let out = h.take_output();
        assert_eq!(out.len(), 64);
        // DSCP 10 written (TOS byte 40), out of the ingress port.
        assert!(out.iter().all(|(p, f)| *p == 0 && f[15] == 40), "{out:?}");
        // A denied flow: staged, every frame dropped and counted; the one
        // pass resolved it first, and the stages do not count frame 0's
        // lookup again.
        let denied = udp_frame(1, 0, None, 53, 46);
        assert_eq!(h.run(0, &vec![denied.as_slice(); 32], 0), 0);
        assert_eq!(h.run(0, &vec![denied.as_slice(); 32], 0), 0);
        assert_eq!(h.pipeline().fast_bursts, 2 * u64::from(fast));
        assert_eq!(
            (h.counters().flow_cache_hits, h.counters().flow_cache_misses),
            (126, 4)
        );
        assert_eq!(
            h.counters().drops[hairpin::stats::DropReason::AclDeny as usize],
            64
        );
        h.check().unwrap();
        outs.push(format!(
            "{:?} {:?} {:?}",
            h.counters(),
            h.pipeline().port_ctr,
            h.rule_hits()
        ));
    }
    assert_eq!(outs[0], outs[1]);
}

/// Two access ports in VLAN 10, reflective relay on port 0.
fn hairpin_bridge(fast: bool) -> Harness {
    let toml = "[switch]\nworkers = [0]\n[[port]]\nname = \"a\"\npvid = 10\nreflective_relay = true\n[[port]]\nname = \"b\"\npvid = 10\n";
    let mut h = Harness::new(Config::parse(toml).unwrap(), true).unwrap();
    h.set_fast_path(fast);
    h
}

fn plain(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0xab; 46]);
    f
}

#[test]
fn known_unicast_bursts_take_one_pass_and_others_do_not() {
    for fast in [true, false] {
        let mut h = hairpin_bridge(fast);
        let (a, b) = (MACS[0], MACS[1]);
        // Learning bursts (broadcasts, then a first frame from an unknown source): staged.
        h.run(0, &[&plain([0xff; 6], a)], 0);
        h.run(0, &[&plain([0xff; 6], b)], 0);
        assert_eq!(h.pipeline().fast_bursts, 0);
        h.take_output();
        // A and B both behind port 0: a burst of A → B hairpins out of port 0.
        let f = plain(b, a);
        let burst: Vec<&[u8]> = vec![&f; 32];
        assert_eq!(h.run(0, &burst, 0), 32);
        let out = h.take_output();
        assert!(out.iter().all(|(p, d)| *p == 0 && d == &f), "{out:?}");
        // The two broadcasts were reflected too.
        assert_eq!(h.counters().reflected, 2 + 32);
        assert_eq!(h.pipeline().fast_bursts, u64::from(fast));
        // One unknown destination in the burst: the whole burst is staged.
        // The unknown frame floods to both ports (reflective relay on port
        // 0); port 0's frames leave first, in order.
        let u = plain(MACS[2], a);
        let mixed: Vec<&[u8]> = vec![&f, &u, &f];
        assert_eq!(h.run(0, &mixed, 0), 4);
        let out: Vec<(usize, u8)> = h
            .take_output()
            .into_iter()
            .map(|(p, d)| (p, d[5]))
            .collect();
        assert_eq!(out, vec![(0, 2), (0, 3), (0, 2), (1, 3)]);
        assert_eq!(h.pipeline().fast_bursts, u64::from(fast));
        h.check().unwrap();
    }
}

/// The one pass remembers what a frame's first 18 bytes decided (the header
/// memo); a remembered answer must end when the FDB's own answer would: at
/// the source's re-stamp time, at the destination's ageing, and at any write.
#[test]
fn a_remembered_decision_ends_with_the_fdb_answer_it_came_from() {
    let toml = "[switch]\nworkers = [0]\n[switch.fdb]\naging_s = 3\n[[port]]\nname = \"a\"\npvid = 10\nreflective_relay = true\n[[port]]\nname = \"b\"\npvid = 10\n";
    let mut h = Harness::new(Config::parse(toml).unwrap(), true).unwrap();
    let (a, b) = (MACS[0], MACS[1]);
    let seen = |h: &Harness, mac: [u8; 6], now: u64| {
        h.switch()
            .fdb
            .dump(now)
            .iter()
            .find(|r| r.mac.0 == mac)
            .map(|r| r.seen_ms)
    };
    // A on port 0, B on port 1, both seen at t = 1000.
    h.run(0, &[&plain([0xff; 6], a)], 1000);
    h.run(1, &[&plain([0xff; 6], b)], 0);
    h.take_output();
    let f = plain(b, a);
    let burst: Vec<&[u8]> = vec![&f, &f, &f];
    // Decided once, then remembered.
    for _ in 0..2 {
        assert_eq!(h.run(0, &burst, 0), 3);
        assert!(h.take_output().iter().all(|(p, _)| *p == 1));
    }
    let fast = h.pipeline().fast_bursts;
    assert_eq!(fast, 2);
    let (hits, _, _) = h.pipeline().memo_counts();
    assert!(hits >= 1, "memo hits {hits}");
    // 1.5 s later A is due for re-stamping (every second): the burst needs
    // the learning stage, memo or not.
    assert_eq!(h.run(0, &burst, 1500), 3);
    assert_eq!(
        h.pipeline().fast_bursts,
        fast,
        "a stale source took the one pass"
    );
    assert_eq!(seen(&h, a, 2500), Some(2500));
    // Remembered again (A re-stamped at 2500) ...
    assert_eq!(h.run(0, &burst, 0), 3);
    assert_eq!(h.pipeline().fast_bursts, fast + 1);
    h.take_output();
    // ... until B, last seen at 1000, ages out at 4000 (aging 3 s): A's
    // frames to B are unknown unicast then, flooded by the stages. (A is
    // fresh: re-stamped at 3500.)
    assert_eq!(h.run(0, &burst, 1000), 3);
    assert_eq!(h.run(0, &burst, 0), 3);
    let fast = h.pipeline().fast_bursts;
    h.take_output();
    assert_eq!(
        h.run(0, &burst, 501),
        6,
        "flooded to both ports (reflective relay on a)"
    );
    assert_eq!(seen(&h, b, 4001), None);
    assert_eq!(h.pipeline().fast_bursts, fast);
    // B is back, now on port 0: an FDB write; A's frames hairpin.
    h.run(0, &[&plain([0xff; 6], b)], 0);
    h.take_output();
    assert_eq!(h.run(0, &burst, 0), 3);
    assert!(h.take_output().iter().all(|(p, _)| *p == 0));
    assert_eq!(h.pipeline().fast_bursts, fast + 1);
    h.check().unwrap();
}

/// A source's re-stamp only makes its entry's times later: the memo's
/// answers for other flows still stand after it (each answer already ends
/// at its own source's re-stamp time). Sources re-stamped at different
/// times, as in a running network, would otherwise void every remembered
/// answer once for each source every second.
#[test]
fn a_re_stamp_leaves_other_flows_remembered() {
    let toml = "[switch]\nworkers = [0]\n[[port]]\nname = \"a\"\npvid = 10\nreflective_relay = true\n[[port]]\nname = \"b\"\npvid = 10\n";
    let mut h = Harness::new(Config::parse(toml).unwrap(), true).unwrap();
    let (a, b, c, d) = (MACS[0], MACS[1], MACS[2], MACS[3]);
    // A seen at t = 1000, C at t = 1600, both on port 0; B and D on port 1.
    h.run(0, &[&plain([0xff; 6], a)], 1000);
    h.run(1, &[&plain([0xff; 6], b)], 0);
    h.run(1, &[&plain([0xff; 6], d)], 0);
    h.run(0, &[&plain([0xff; 6], c)], 600);
    h.take_output();
    let (fa, fc) = (plain(b, a), plain(d, c));
    let (from_a, from_c): (Vec<&[u8]>, Vec<&[u8]>) = (vec![&fa, &fa], vec![&fc, &fc]);
    // Both flows decided (a burst of one flow is decided once), then
    // remembered.
    assert_eq!(h.run(0, &from_a, 0), 2);
    assert_eq!(h.run(0, &from_c, 0), 2);
    let (hits, _, again) = h.pipeline().memo_counts();
    assert_eq!(h.run(0, &from_a, 0), 2);
    assert_eq!(h.run(0, &from_c, 0), 2);
    let (hits_then, _, again_then) = h.pipeline().memo_counts();
    assert_eq!(
        (hits_then, again_then),
        (hits + 2, again),
        "both remembered"
    );
    let (hits, again) = (hits_then, again_then);
    // At t = 2100 A is due: its burst goes through learning, which
    // re-stamps A (a write to the FDB, but only of A's time).
    assert_eq!(h.run(0, &from_a, 500), 2);
    assert_eq!(
        h.switch()
            .fdb
            .lookup(hairpin::types::Mac(a), hairpin::types::Vid(10), 2100)
            .unwrap()
            .seen_ms,
        2100
    );
    // C's answer (C is fresh until 2600) still stands.
    let fast = h.pipeline().fast_bursts;
    assert_eq!(h.run(0, &from_c, 0), 2);
    assert_eq!(h.pipeline().fast_bursts, fast + 1);
    let (hits_after, _, again_after) = h.pipeline().memo_counts();
    assert_eq!(hits_after, hits + 1, "C's answer was used");
    assert_eq!(again_after, again + 1, "only A's burst was decided again");
    assert!(h.take_output().iter().all(|(p, _)| *p == 1));
    h.check().unwrap();
}
