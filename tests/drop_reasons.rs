//! One test per drop reason: build the situation, check that exactly that
//! counter rises (and no other drop counter moves). `every_reason_has_a_test`
//! keeps the list in step with `DropReason::ALL`.

use hairpin::buf::{Burst, Pool};
use hairpin::config::Config;
use hairpin::pipeline::{NoTrace, Pipeline};
use hairpin::port::ring::{channel, Consumer, RingQueue};
use hairpin::runtime::Instance;
use hairpin::stats::DropReason;
use hairpin::types::{Mac, PortId};
use hairpin::wire::build::FrameBuilder;
use hairpin::worker::Task;
use std::sync::Arc;

/// Reasons with a dedicated test below.
const COVERED: &[DropReason] = &[
    DropReason::Runt,
    DropReason::Oversize,
    DropReason::BadSrcMac,
    DropReason::BadVlan,
    DropReason::VlanIngress,
    DropReason::Pause,
    DropReason::PuntFull,
    DropReason::PortState,
    DropReason::HairpinOff,
    DropReason::FloodEmpty,
    DropReason::NoVm,
    DropReason::Reflected,
    DropReason::Isolated,
    DropReason::TxFull,
    DropReason::NoBuf,
    DropReason::Locked,
    DropReason::Spoofed,
    DropReason::AclDeny,
    DropReason::MeterDrop,
    DropReason::QueueFull,
];

const A: Mac = Mac([0x02, 0, 0, 0, 0, 0x0a]);
const B: Mac = Mac([0x02, 0, 0, 0, 0, 0x0b]);
const C: Mac = Mac([0x02, 0, 0, 0, 0, 0x0c]);

/// Three access ports in VLAN 10, one trunk (10, 20).
const BRIDGE: &str = r#"
[switch]
workers = [0]
mac = "02:aa:00:00:00:01"
[[port]]
name = "p0"
pvid = 10
[[port]]
name = "p1"
pvid = 10
[[port]]
name = "p2"
pvid = 10
[[port]]
name = "t"
mode = "trunk"
vlans = [10, 20]
"#;

fn cfg(toml: &str) -> Config {
    Config::parse(toml).unwrap_or_else(|e| panic!("config: {e}\n{toml}"))
}

fn frame(src: Mac, dst: Mac) -> Vec<u8> {
    FrameBuilder::new().src(src).dst(dst).raw()
}

/// A switch on ring ports with its pipeline driven directly on this thread.
struct Harness {
    inst: Instance,
    task: Task,
    punt: Consumer,
    /// Peer ends of the cables (kept so TX rings stay connected).
    _peers: Vec<RingQueue>,
    pool: Arc<Pool>,
}

impl Harness {
    fn new(toml: &str) -> Harness {
        Self::with_pool(toml, Arc::new(Pool::new(512, 2048).unwrap()))
    }
    fn with_pool(toml: &str, pool: Arc<Pool>) -> Harness {
        let mut inst = Instance::new(cfg(toml), pool.clone()).unwrap();
        let (task, punt) = inst.task(0).unwrap();
        let peers = inst
            .peers
            .iter_mut()
            .map(|p| p.as_mut().unwrap().take(0).unwrap())
            .collect();
        Harness {
            inst,
            task,
            punt,
            _peers: peers,
            pool,
        }
    }
    fn burst(&self, frames: &[Vec<u8>]) -> Burst {
        let mut b = Burst::new(frames.len());
        for f in frames {
            let mut x = self.pool.alloc().expect("test pool has a buffer");
            assert!(self.pool.fill(&mut x, f));
            b.push(x).unwrap();
        }
        b
    }
    fn send(&mut self, port: u16, frames: &[Vec<u8>]) {
        let mut b = self.burst(frames);
        self.task
            .pipe
            .process(PortId(port), &mut b, 1, &mut self.task.queues, &mut NoTrace);
        self.check_port_drops();
    }
    /// Every drop is charged to exactly one port: the ports' drops summed
    /// equal the core's, reason by reason.
    fn check_port_drops(&self) {
        let mut sum = vec![0u64; DropReason::N];
        for pc in &self.task.pipe.port_ctr {
            for (a, b) in sum.iter_mut().zip(pc.drops) {
                *a += b;
            }
        }
        assert_eq!(sum, self.drops(), "per-port drops vs the core's");
    }
    /// Drops of `r` charged to port `p`.
    fn port_drops(&self, p: usize, r: DropReason) -> u64 {
        self.task.pipe.port_ctr[p].drops[r as usize]
    }
    fn drops(&self) -> Vec<u64> {
        self.task.pipe.ctr.drops.to_vec()
    }
}

/// `after - before` is exactly `n` drops of `r`, nothing else.
fn assert_only(before: &[u64], after: &[u64], r: DropReason, n: u64) {
    for &x in DropReason::ALL {
        let d = after[x as usize] - before[x as usize];
        let want = if x == r { n } else { 0 };
        assert_eq!(
            d,
            want,
            "{}: {d} drops, expected {want} (testing {})",
            x.name(),
            r.name()
        );
    }
}

/// Send `frames` on `port` of a fresh switch and check they are all dropped for `r`.
fn expect_drop(toml: &str, port: u16, frames: &[Vec<u8>], r: DropReason) {
    let mut h = Harness::new(toml);
    let before = h.drops();
    h.send(port, frames);
    assert_only(&before, &h.drops(), r, frames.len() as u64);
    // Charged to the ingress port (these tests send to no full queue).
    assert_eq!(h.port_drops(port as usize, r), frames.len() as u64);
}

/// `hairpin trace` names the same reason for a single frame.
fn expect_trace_drop(
    toml: &str,
    port: &str,
    f: &[u8],
    learn: &[(&str, Mac, Option<u16>)],
    r: DropReason,
) {
    let learn: Vec<_> = learn
        .iter()
        .map(|(p, m, v)| (p.to_string(), *m, *v))
        .collect();
    let t = hairpin::trace::trace(cfg(toml), port, f, &learn).unwrap();
    assert_eq!(t.dropped.as_deref(), Some(r.name()), "{:#?}", t.steps);
    assert!(t.egress.is_empty());
}

#[test]
fn runt() {
    let f = frame(A, B)[..13].to_vec();
    expect_drop(BRIDGE, 0, &[f.clone(), vec![0u8; 1]], DropReason::Runt);
    expect_trace_drop(BRIDGE, "p0", &f, &[], DropReason::Runt);
}

#[test]
fn oversize() {
    // Default MTU 1518: one byte more untagged, and 1523 with one tag.
    let f = FrameBuilder::new().src(A).dst(B).frame_size(1519).raw();
    assert_eq!(f.len(), 1519);
    let t = FrameBuilder::new()
        .src(A)
        .dst(B)
        .vlan(10)
        .frame_size(1523)
        .raw();
    expect_drop(BRIDGE, 0, std::slice::from_ref(&f), DropReason::Oversize);
    expect_drop(BRIDGE, 3, &[t], DropReason::Oversize);
    // At the limit it passes.
    let ok = FrameBuilder::new().src(A).dst(B).frame_size(1518).raw();
    let mut h = Harness::new(BRIDGE);
    h.send(0, &[ok]);
    assert_eq!(h.task.pipe.ctr.total_drops(), 0);
}

#[test]
fn bad_src_mac() {
    let group = Mac([0x01, 0, 0x5e, 0, 0, 1]);
    let zero = Mac([0; 6]);
    expect_drop(
        BRIDGE,
        0,
        &[frame(group, B), frame(zero, B), frame(Mac::BROADCAST, B)],
        DropReason::BadSrcMac,
    );
}

#[test]
fn bad_vlan() {
    let vid4095 = FrameBuilder::new().src(A).dst(B).vlan(4095).raw();
    let mut cut = frame(A, B)[..16].to_vec();
    cut[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    let mut inner_cut = FrameBuilder::new().src(A).dst(B).vlan(10).raw()[..20].to_vec();
    inner_cut[16..18].copy_from_slice(&0x8100u16.to_be_bytes());
    expect_drop(BRIDGE, 3, &[vid4095, cut, inner_cut], DropReason::BadVlan);
}

#[test]
fn vlan_ingress() {
    // VID 30 is not a member of the trunk; untagged on a trunk with no native VLAN;
    // tagged VID 20 on an access port of VLAN 10.
    let v30 = FrameBuilder::new().src(A).dst(B).vlan(30).raw();
    let untagged = frame(A, B);
    let v20 = FrameBuilder::new().src(A).dst(B).vlan(20).raw();
    expect_drop(BRIDGE, 3, &[v30, untagged.clone()], DropReason::VlanIngress);
    expect_drop(BRIDGE, 0, &[v20], DropReason::VlanIngress);
    expect_trace_drop(BRIDGE, "t", &untagged, &[], DropReason::VlanIngress);
}

#[test]
fn pause() {
    let f = FrameBuilder::new()
        .src(A)
        .dst(Mac([0x01, 0x80, 0xc2, 0, 0, 0x01]))
        .ethertype(0x8808)
        .raw();
    expect_drop(BRIDGE, 0, std::slice::from_ref(&f), DropReason::Pause);
    expect_trace_drop(BRIDGE, "p0", &f, &[], DropReason::Pause);
}

#[test]
fn punt_full() {
    let toml = BRIDGE.replace("workers = [0]", "workers = [0]\npunt_queue = 1");
    let mut h = Harness::new(&toml);
    let depth = h.punt.ring().capacity();
    let lldp = FrameBuilder::new().src(A).lldp(b"eth0", 120);
    let before = h.drops();
    h.send(0, &vec![lldp.clone(); depth + 2]);
    assert_only(&before, &h.drops(), DropReason::PuntFull, 2);
    assert_eq!(h.task.pipe.ctr.punted, depth as u64);

    // The same with a pipeline built by hand on a ring of depth 1.
    let (ptx, _prx) = channel(1);
    let depth = ptx.ring().capacity();
    let mut pipe = Pipeline::new(&h.inst.switch, Some(ptx));
    let mut b = h.burst(&vec![lldp; depth + 1]);
    pipe.process(PortId(0), &mut b, 1, &mut h.task.queues, &mut NoTrace);
    assert_eq!(pipe.ctr.drops[DropReason::PuntFull as usize], 1);
    assert_eq!(pipe.ctr.total_drops(), 1);
}

#[test]
fn port_state() {
    for state in ["blocking", "learning", "disabled"] {
        let toml = BRIDGE.replacen(
            "name = \"p0\"\n",
            &format!("name = \"p0\"\nstate = \"{state}\"\n"),
            1,
        );
        expect_drop(&toml, 0, &[frame(A, B)], DropReason::PortState);
    }
    // Known destination behind a port that is not forwarding.
    let toml = BRIDGE.replacen(
        "name = \"p1\"\n",
        "name = \"p1\"\nstate = \"learning\"\n",
        1,
    );
    expect_trace_drop(
        &toml,
        "p0",
        &frame(A, B),
        &[("p1", B, None)],
        DropReason::PortState,
    );
}

#[test]
fn hairpin_off() {
    // B is behind p0, the ingress port, which has no reflective relay.
    expect_trace_drop(
        BRIDGE,
        "p0",
        &frame(A, B),
        &[("p0", B, None)],
        DropReason::HairpinOff,
    );
    let mut h = Harness::new(BRIDGE);
    h.send(0, &[frame(B, A)]); // learn B on p0
    let before = h.drops();
    h.send(0, &[frame(A, B), frame(C, B)]);
    assert_only(&before, &h.drops(), DropReason::HairpinOff, 2);
    // With reflective relay the same frame goes back out p0.
    let rr = BRIDGE.replacen(
        "name = \"p0\"\n",
        "name = \"p0\"\nreflective_relay = true\n",
        1,
    );
    let t = hairpin::trace::trace(cfg(&rr), "p0", &frame(A, B), &[("p0".into(), B, None)]).unwrap();
    assert_eq!(t.dropped, None);
    assert_eq!(t.egress.len(), 1);
    assert_eq!(t.egress[0].0, "p0");
}

#[test]
fn flood_empty() {
    // VLAN 20 has one member (the trunk): a broadcast in it has nowhere to go.
    let f = FrameBuilder::new()
        .src(A)
        .dst(Mac::BROADCAST)
        .vlan(20)
        .raw();
    expect_drop(BRIDGE, 3, std::slice::from_ref(&f), DropReason::FloodEmpty);
    expect_trace_drop(BRIDGE, "t", &f, &[], DropReason::FloodEmpty);
}

const EDGE_VEPA: &str = r#"
[switch]
role = "edge-vepa"
workers = [0]
[[port]]
name = "up"
mode = "trunk"
vlans = [10]
uplink = true
[[port]]
name = "vm1"
pvid = 10
[[port]]
name = "vm2"
pvid = 10
[[vm]]
name = "a"
mac = "02:00:00:00:00:0a"
vlan = 10
port = "vm1"
"#;

#[test]
fn no_vm() {
    // From the uplink to a MAC that is no VM here.
    let f = FrameBuilder::new().src(C).dst(B).vlan(10).raw();
    expect_drop(EDGE_VEPA, 0, std::slice::from_ref(&f), DropReason::NoVm);
    expect_trace_drop(EDGE_VEPA, "up", &f, &[], DropReason::NoVm);
    // To the VM that is here, it is delivered.
    let mut h = Harness::new(EDGE_VEPA);
    h.send(0, &[FrameBuilder::new().src(C).dst(A).vlan(10).raw()]);
    assert_eq!(h.task.pipe.ctr.total_drops(), 0);
}

#[test]
fn reflected() {
    // edge-veb: a copy of VM a's own frame coming back on the uplink.
    let veb = EDGE_VEPA.replace("edge-vepa", "edge-veb");
    let f = FrameBuilder::new()
        .src(A)
        .dst(Mac::BROADCAST)
        .vlan(10)
        .raw();
    expect_drop(&veb, 0, std::slice::from_ref(&f), DropReason::Reflected);
    // edge-vepa: a private-mode VM gets no sibling traffic, even reflected.
    let private = EDGE_VEPA.replacen(
        "name = \"vm2\"\n",
        "name = \"vm2\"\nvm_mode = \"private\"\n",
        1,
    )
        + "[[vm]]\nname = \"b\"\nmac = \"02:00:00:00:00:0b\"\nvlan = 10\nport = \"vm2\"\n";
    let g = FrameBuilder::new().src(A).dst(B).vlan(10).raw();
    expect_drop(&private, 0, std::slice::from_ref(&g), DropReason::Reflected);
    expect_trace_drop(&private, "up", &g, &[], DropReason::Reflected);
}

#[test]
fn isolated() {
    let toml = r#"
[switch]
workers = [0]
[[port]]
name = "i1"
isolated = true
[[port]]
name = "i2"
isolated = true
"#;
    expect_drop(
        toml,
        0,
        &[frame(A, Mac::BROADCAST), frame(A, B)],
        DropReason::Isolated,
    );
    expect_trace_drop(
        toml,
        "i1",
        &frame(A, B),
        &[("i2", B, None)],
        DropReason::Isolated,
    );
}

#[test]
fn tx_full() {
    // p1's peer never reads; its ring holds `depth` frames, the rest are refused.
    let toml = BRIDGE.replace("workers = [0]", "workers = [0]\nring_depth = 2");
    let mut h = Harness::new(&toml);
    h.send(1, &[frame(B, A)]); // learn B on p1 (the flood goes to the other ports)
    let before = h.drops();
    let tx_before = h.task.pipe.ctr.tx_pkts;
    h.send(0, &vec![frame(A, B); 5]);
    assert_only(&before, &h.drops(), DropReason::TxFull, 3);
    assert_eq!(h.task.pipe.ctr.tx_pkts - tx_before, 2);
    assert_eq!(h.task.pipe.port_ctr[1].tx_full, 3);
    // tx_full is charged to the egress port whose queue was full.
    assert_eq!(h.port_drops(1, DropReason::TxFull), 3);
    assert_eq!(h.port_drops(0, DropReason::TxFull), 0);
}

#[test]
fn no_buf() {
    // One buffer in the whole pool: the frame itself. Its flood to three
    // ports needs two copies, and there is no buffer for them.
    let pool = Arc::new(Pool::new(1, 2048).unwrap());
    let mut h = Harness::with_pool(BRIDGE, pool.clone());
    let before = h.drops();
    h.send(0, &[frame(A, Mac::BROADCAST)]);
    assert_only(&before, &h.drops(), DropReason::NoBuf, 2);
    assert_eq!(h.task.pipe.ctr.tx_pkts, 1, "the original still goes out");
}

#[test]
fn locked() {
    // source_guard off: with the VM on p0, anti-spoofing would drop C first (as `spoofed`).
    let toml = BRIDGE.replacen(
        "name = \"p0\"\n",
        "name = \"p0\"\nlocked = true\nsource_guard = false\n",
        1,
    ) + "[[vm]]\nname = \"a\"\nmac = \"02:00:00:00:00:0a\"\nvlan = 10\nport = \"p0\"\n";
    // C has no static entry on p0; A has one (and passes).
    expect_drop(&toml, 0, &[frame(C, B)], DropReason::Locked);
    expect_trace_drop(&toml, "p0", &frame(C, B), &[], DropReason::Locked);
    let mut h = Harness::new(&toml);
    h.send(0, &[frame(A, B)]);
    assert_eq!(h.task.pipe.ctr.total_drops(), 0);
    // A learned source does not unlock the port.
    let mut h = Harness::new(&toml);
    h.inst
        .switch
        .fdb
        .learn(C, hairpin::types::Vid(10), PortId(0), 0);
    let before = h.drops();
    h.send(0, &[frame(C, B)]);
    assert_only(&before, &h.drops(), DropReason::Locked, 1);
}

/// Policy: VM A on p0 (guarded); a frame from another source on p0 is spoofed.
const POLICY: &str = r#"
[switch]
workers = [0]
[[port]]
name = "p0"
pvid = 10
[[port]]
name = "p1"
pvid = 10
[policy.closed]
default = "deny"
[[policy.closed.rule]]
action = "permit"
dst_mac = "02:00:00:00:00:0c"
[[vm]]
name = "a"
mac = "02:00:00:00:00:0a"
vlan = 10
port = "p0"
policy = "closed"
"#;

#[test]
fn spoofed() {
    // B is not a VM of p0: anti-spoofing drops it; A itself passes (to C: permitted).
    expect_drop(POLICY, 0, &[frame(B, C)], DropReason::Spoofed);
    expect_trace_drop(POLICY, "p0", &frame(B, C), &[], DropReason::Spoofed);
    let mut h = Harness::new(POLICY);
    h.send(0, &[frame(A, C)]);
    assert_eq!(h.task.pipe.ctr.total_drops(), 0);
}

#[test]
fn acl_deny() {
    // A's policy permits only frames to C; A→B meets the deny default.
    expect_drop(POLICY, 0, &[frame(A, B)], DropReason::AclDeny);
    expect_trace_drop(POLICY, "p0", &frame(A, B), &[], DropReason::AclDeny);
}

#[test]
fn meter_drop() {
    // VM A's meter holds one 60-byte frame (CBS 64, red dropped): the second of a burst is red.
    let toml = POLICY.replace("policy = \"closed\"", "policy = \"closed\"\nmeter = \"m\"")
        + "[meter.m]\ntype = \"srtcm\"\ncir = 8000\ncbs = 64\n";
    let mut h = Harness::new(&toml);
    let before = h.drops();
    h.send(0, &[frame(A, C), frame(A, C)]);
    assert_only(&before, &h.drops(), DropReason::MeterDrop, 1);
}

#[test]
fn queue_full() {
    // p1's class queues hold one frame and the port is shaped: a burst of
    // three to p1 keeps one queued, the other two are tail-dropped.
    let toml = BRIDGE.replacen(
        "name = \"p1\"\npvid = 10\n",
        "name = \"p1\"\npvid = 10\negress = { depth = 1, shape = \"64k\" }\n",
        1,
    );
    let mut h = Harness::new(&toml);
    // Teach the switch where B is.
    h.send(1, &[frame(B, A)]);
    let before = h.drops();
    h.send(0, &[frame(A, B), frame(A, B), frame(A, B)]);
    assert_only(&before, &h.drops(), DropReason::QueueFull, 2);
    assert_eq!(h.port_drops(1, DropReason::QueueFull), 2);
    // At stop whatever p1's scheduler still holds is freed and counted there too.
    h.task.pipe.release();
    h.check_port_drops();
    assert_eq!(
        h.port_drops(1, DropReason::QueueFull),
        h.task.pipe.ctr.drops[DropReason::QueueFull as usize]
    );
}

#[test]
fn port_drops_on_mixed_traffic() {
    // One switch, traffic on every port mixing forwarded frames and several
    // drop reasons: each port's reasons are its own, and they sum to the core's.
    let toml = BRIDGE.replace("workers = [0]", "workers = [0]\nring_depth = 4");
    let mut h = Harness::new(&toml);
    h.send(1, &[frame(B, A)]); // B on p1
    let runt = frame(A, B)[..10].to_vec();
    let pause = FrameBuilder::new()
        .src(A)
        .dst(Mac([0x01, 0x80, 0xc2, 0, 0, 0x01]))
        .raw();
    let bad_src = frame(Mac::BROADCAST, B);
    for _ in 0..3 {
        h.send(0, &[frame(A, B), runt.clone(), frame(A, B)]);
        h.send(2, &[pause.clone(), frame(C, B), bad_src.clone()]);
        h.send(3, std::slice::from_ref(&runt));
    }
    assert_eq!(h.port_drops(0, DropReason::Runt), 3);
    assert_eq!(h.port_drops(3, DropReason::Runt), 3);
    assert_eq!(h.port_drops(2, DropReason::Pause), 3);
    assert_eq!(h.port_drops(2, DropReason::BadSrcMac), 3);
    // p1's ring holds 4 frames: of the 9 sent to B, 5 were refused, on p1.
    assert_eq!(h.port_drops(1, DropReason::TxFull), 5);
    assert_eq!(h.task.pipe.ctr.drops[DropReason::TxFull as usize], 5);
    assert_eq!(h.task.pipe.port_ctr[1].total_drops(), 5);
    assert_eq!(h.task.pipe.ctr.total_drops(), 3 + 3 + 3 + 3 + 5);
}

#[test]
fn every_reason_has_a_test() {
    let mut covered: Vec<_> = COVERED.iter().map(|r| r.name()).collect();
    let mut all: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
    covered.sort();
    all.sort();
    assert_eq!(covered, all, "add a test for each new DropReason");
}
