//! The fast path does not touch the heap once warm: a counting global
//! allocator around ≥10,000 bursts of mixed traffic (hairpin, floods,
//! broadcast, tag push/pop, several drop reasons, punts), with the peers
//! reading back and recycling every frame.
//!
//! Counting is per thread (a `const` thread-local flag, which itself never
//! allocates), so other tests running in parallel do not disturb it.
#![allow(unsafe_code)]

use hairpin::buf::{Burst, Pool};
use hairpin::config::Config;
use hairpin::pipeline::NoTrace;
use hairpin::port::ring::{Consumer, RingQueue};
use hairpin::runtime::Instance;
use hairpin::stats::DropReason;
use hairpin::types::{Mac, PortId};
use hairpin::util::Clock;
use hairpin::wire::build::FrameBuilder;
use hairpin::worker::{poll_once, Task};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNT_HERE.with(|c| c.get()) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNT_HERE.with(|c| c.set(true));
    f();
    COUNT_HERE.with(|c| c.set(false));
    ALLOCS.load(Ordering::Relaxed) - before
}

/// p0 has reflective relay; p0..p2 access VLAN 10, t trunk 10+20 (native none).
const CFG: &str = r#"
[switch]
workers = [0]
mac = "02:aa:00:00:00:01"
burst = 32
punt_queue = 64
[[port]]
name = "p0"
pvid = 10
reflective_relay = true
[[port]]
name = "p1"
pvid = 10
[[port]]
name = "t"
mode = "trunk"
vlans = [10, 20]
"#;

fn m(i: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, i])
}

struct Rig {
    _inst: Instance,
    task: Task,
    punt: Consumer,
    peers: Vec<RingQueue>,
    pool: Arc<Pool>,
    /// (ingress port, frames) sent every round.
    traffic: Vec<(u16, Vec<Vec<u8>>)>,
    burst: Burst,
}

impl Rig {
    fn new() -> Rig {
        let pool = Arc::new(Pool::new(4096, 2048).unwrap());
        let mut inst = Instance::new(Config::parse(CFG).unwrap(), pool.clone()).unwrap();
        let (task, punt) = inst.task(0).unwrap();
        let peers = inst
            .peers
            .iter_mut()
            .map(|p| p.as_mut().unwrap().take(0).unwrap())
            .collect();
        let f = |s: u8, d: Mac| FrameBuilder::new().src(m(s)).dst(d).payload_len(64).raw();
        let ft = |s: u8, d: Mac, vid: u16| {
            FrameBuilder::new()
                .src(m(s))
                .dst(d)
                .vlan(vid)
                .payload_len(64)
                .raw()
        };
        // Stations: 1, 2 behind p0; 3 behind p1; 4 behind t (VLAN 10).
        let traffic = vec![
            (
                0,
                vec![
                    f(1, m(2)),                                     // hairpin: known, back out p0
                    f(2, m(1)),                                     // hairpin
                    f(1, m(3)),                                     // known unicast → p1
                    f(1, m(4)),                                     // known unicast → t (tag push)
                    f(1, Mac::BROADCAST), // broadcast: copies, tag push on t
                    f(2, m(0x77)),        // unknown unicast: flood incl. p0 (rr)
                    f(1, Mac([0x01, 0, 0x5e, 0, 0, 9])), // unregistered multicast
                    f(1, Mac([0x02, 0xaa, 0, 0, 0, 1])), // to the switch: punt
                    FrameBuilder::new().src(m(1)).lldp(b"p0", 120), // punt
                ],
            ),
            (
                1,
                vec![
                    f(3, m(1)),                // → p0
                    f(3, Mac::BROADCAST),      // flood
                    f(5, m(3)), // 5 appears on p1 too: dest 3 behind p1, no rr: hairpin_off
                    f(3, m(4))[..10].to_vec(), // runt
                    FrameBuilder::new()
                        .src(Mac([1, 0, 0, 0, 0, 1]))
                        .dst(m(1))
                        .raw(), // bad_src_mac
                    FrameBuilder::new()
                        .src(m(3))
                        .dst(Mac([0x01, 0x80, 0xc2, 0, 0, 1]))
                        .raw(), // pause
                ],
            ),
            (
                2,
                vec![
                    ft(4, m(1), 10),           // tagged → untagged egress on p0 (tag pop)
                    ft(4, m(3), 10),           // → p1, tag pop
                    ft(4, Mac::BROADCAST, 10), // flood, tag pop on copies
                    ft(4, Mac::BROADCAST, 20), // VLAN 20 has only t: flood_empty
                    ft(4, m(1), 30),           // vlan_ingress
                    ft(4, m(1), 4095),         // bad_vlan
                    f(4, m(1)),                // untagged on trunk without native VLAN
                ],
            ),
        ];
        Rig {
            _inst: inst,
            task,
            punt,
            peers,
            pool,
            traffic,
            burst: Burst::new(32),
        }
    }

    fn fill(&mut self, frames_of: usize) {
        let (_, frames) = &self.traffic[frames_of];
        for f in frames {
            let mut b = self.pool.alloc().expect("pool");
            assert!(self.pool.fill(&mut b, f));
            self.burst.push(b).unwrap();
        }
    }

    /// Peers read everything back and return it to the pool; the control plane drains punts.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        for p in self.peers.iter_mut() {
            while let Some(b) = p.rx_one() {
                n += 1;
                self.pool.free(b);
            }
        }
        while let Some(b) = self.punt.pop() {
            self.pool.free(b);
        }
        n
    }

    /// One round through `Pipeline::process` directly.
    fn round_direct(&mut self, now: u64) -> usize {
        for i in 0..self.traffic.len() {
            self.fill(i);
            let inp = PortId(self.traffic[i].0);
            self.task.pipe.process(
                inp,
                &mut self.burst,
                now,
                &mut self.task.queues,
                &mut NoTrace,
            );
            assert!(self.burst.is_empty());
        }
        self.drain()
    }

    /// One round through the worker's `poll_once`: frames enter through the peers' TX.
    fn round_worker(&mut self, clock: &Clock) -> usize {
        for i in 0..self.traffic.len() {
            let port = self.traffic[i].0 as usize;
            for f in &self.traffic[i].1 {
                let mut b = self.pool.alloc().expect("pool");
                assert!(self.pool.fill(&mut b, f));
                assert!(self.peers[port].tx_one(b).is_ok());
            }
        }
        let mut got = 0;
        while got < self.traffic.iter().map(|t| t.1.len()).sum::<usize>() {
            got += poll_once(&mut self.task, &mut self.burst, clock);
        }
        self.drain()
    }
}

fn check_mix(r: &Rig) {
    let c = &r.task.pipe.ctr;
    for d in [
        DropReason::HairpinOff,
        DropReason::Runt,
        DropReason::BadSrcMac,
        DropReason::Pause,
        DropReason::FloodEmpty,
        DropReason::VlanIngress,
        DropReason::BadVlan,
    ] {
        assert!(c.drops[d as usize] > 0, "the mix exercises {}", d.name());
    }
    assert!(c.reflected > 0 && c.flood_copies > 0 && c.punted > 0 && c.tx_pkts > 0);
    assert_eq!(c.drops[DropReason::TxFull as usize], 0);
    assert_eq!(c.drops[DropReason::NoBuf as usize], 0);
}

#[test]
fn counting_allocator_sees_allocations() {
    let n = allocations_in(|| {
        let v = std::hint::black_box(vec![1u8; 3]);
        drop(v);
    });
    assert_eq!(n, 1);
}

#[test]
fn pipeline_steady_state_does_not_allocate() {
    let mut r = Rig::new();
    for now in 0..200 {
        r.round_direct(now);
    }
    let (c0, mut out) = (r.task.pipe.ctr.clone(), 0);
    let n = allocations_in(|| {
        // 3 bursts a round; the clock runs over several refresh windows.
        for i in 0..3400u64 {
            out += r.round_direct(200 + i);
        }
    });
    let c = &r.task.pipe.ctr;
    assert!(c.rx_pkts - c0.rx_pkts >= 3400 * 20, "≥10,000 bursts ran");
    assert!(out >= 3400 * 10, "peers read frames back: {out}");
    check_mix(&r);
    assert_eq!(n, 0, "{n} heap allocations in the steady state");
    r.task.pipe.release();
    r.drain();
    assert_eq!(r.pool.available(), r.pool.capacity());
}

#[test]
fn worker_poll_steady_state_does_not_allocate() {
    let mut r = Rig::new();
    let clock = Clock::new();
    for _ in 0..200 {
        r.round_worker(&clock);
    }
    let b0 = r.task.pipe.ctr.bursts;
    let n = allocations_in(|| {
        for _ in 0..3400 {
            r.round_worker(&clock);
        }
    });
    assert!(r.task.pipe.ctr.bursts - b0 >= 10_000, "≥10,000 bursts ran");
    check_mix(&r);
    assert_eq!(n, 0, "{n} heap allocations in the worker loop");
    r.task.pipe.release();
    r.drain();
    assert_eq!(r.pool.available(), r.pool.capacity());
}

#[test]
fn policy_path_does_not_allocate() {
    use hairpin::harness::Harness;
    // Guarded ports, ACLs in both directions, a meter with remark, PCP/DSCP
    // rewrites and 8-class egress on hv1: the whole policy path.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configs/policy-isolated-tenants.toml"
    );
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("reflective_relay = true\n", "reflective_relay = true\negress = { strict = 2, weights = [1, 2, 3, 4, 5, 6] }\n")
        + "[[policy.tenant-a.rule]]\naction = \"permit\"\nproto = \"udp\"\nset_dscp = 46\nclass = 7\n";
    let mut h = Harness::new(Config::parse(&text).unwrap(), false).unwrap();
    let a = Mac([2, 0, 0, 0, 0x30, 1]);
    let b = Mac([2, 0, 0, 0, 0x30, 2]);
    let gw = Mac([2, 0, 0, 0, 0, 0xfe]);
    let u = |s: Mac, d: Mac| {
        FrameBuilder::new().src(s).dst(d).vlan(30).udp4(
            [10, 3, 0, 1].into(),
            [10, 3, 0, 2].into(),
            1,
            2,
        )
    };
    let from_vms: Vec<Vec<u8>> = vec![
        u(a, gw),
        u(a, b),
        u(b, a),
        u(b, gw),
        u(a, Mac::BROADCAST),
        u(m(9), gw),
    ];
    let from_gw: Vec<Vec<u8>> = vec![FrameBuilder::new().src(gw).dst(a).udp4(
        [10, 3, 0, 254].into(),
        [10, 3, 0, 1].into(),
        1,
        2,
    )];
    let vm_refs: Vec<&[u8]> = from_vms.iter().map(|f| f.as_slice()).collect();
    let gw_refs: Vec<&[u8]> = from_gw.iter().map(|f| f.as_slice()).collect();
    for _ in 0..100 {
        h.run(1, &gw_refs, 1);
        h.run(0, &vm_refs, 1);
    }
    let n = allocations_in(|| {
        for _ in 0..2000 {
            h.run(1, &gw_refs, 1);
            h.run(0, &vm_refs, 1);
        }
    });
    let c = h.counters();
    for d in [DropReason::AclDeny, DropReason::Spoofed] {
        assert!(c.drops[d as usize] > 0, "the mix exercises {}", d.name());
    }
    assert!(c.tx_pkts > 4000);
    assert_eq!(n, 0, "{n} heap allocations on the policy path");
    h.check().unwrap();
}

#[test]
fn policy_counter_publication_does_not_allocate() {
    use hairpin::harness::Harness;
    use hairpin::stats::policy::PolicySlot;
    // Rule hits, a VM meter and 8-class egress: what a worker copies into its
    // PolicySlot every POLICY_PUBLISH_EVERY loops.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configs/policy-isolated-tenants.toml"
    );
    let text = std::fs::read_to_string(path).unwrap().replace(
        "reflective_relay = true\n",
        "reflective_relay = true\negress = { strict = 2 }\n",
    );
    let mut h = Harness::new(Config::parse(&text).unwrap(), false).unwrap();
    let a = Mac([2, 0, 0, 0, 0x30, 1]);
    let b = Mac([2, 0, 0, 0, 0x30, 2]);
    let f = FrameBuilder::new().src(a).dst(b).vlan(30).udp4(
        [10, 3, 0, 1].into(),
        [10, 3, 0, 2].into(),
        1,
        2,
    );
    let slot = PolicySlot::default();
    h.run(0, &[&f], 1);
    assert!(slot.publish(h.pipeline().policy_view()));
    let n = allocations_in(|| {
        for _ in 0..500 {
            h.run(0, &[&f], 1);
            assert!(slot.publish(h.pipeline().policy_view()));
        }
    });
    assert_eq!(n, 0, "{n} heap allocations publishing policy counters");
    let p = slot.read();
    assert_eq!(p.rule_hits(), h.rule_hits());
    assert!(p.rule_hits().values().any(|v| v[0] >= 501));
    assert_eq!(p.meter_counts(), h.pipeline().meter_counts());
    assert_eq!(p.queue_stats(), h.pipeline().queue_stats());
    assert!(!p.queue_stats().is_empty());
}
