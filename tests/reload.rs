//! Policy reload under traffic: no frame lost, and every frame sees either the
//! old snapshot or the new one — never the sender's rules from one and the
//! receiver's from the other.

use hairpin::buf::{Burst, Pool};
use hairpin::config::Config;
use hairpin::runtime::{self, Instance};
use hairpin::types::Mac;
use hairpin::util::Clock;
use hairpin::wire::build::FrameBuilder;
use hairpin::worker::WorkerCfg;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);

/// A's from-vm rule writes DSCP `d`; B's to-vm rule writes PCP `p`.
fn cfg(d: u8, p: u8) -> Config {
    Config::parse(&format!(
        r#"
[switch]
workers = [0]
idle_sleep_us = 20
[[port]]
name = "p0"
mode = "trunk"
vlans = [10]
[[port]]
name = "p1"
mode = "trunk"
vlans = [10]
[policy.sender]
default = "deny"
[[policy.sender.rule]]
action = "permit"
proto = "udp"
set_dscp = {d}
[policy.receiver]
default = "deny"
[[policy.receiver.rule]]
direction = "to-vm"
action = "permit"
set_pcp = {p}
[[vm]]
name = "a"
mac = "{A}"
vlan = 10
port = "p0"
policy = "sender"
[[vm]]
name = "b"
mac = "{B}"
vlan = 10
port = "p1"
policy = "receiver"
"#
    ))
    .unwrap()
}

#[test]
fn reload_under_traffic_is_atomic_and_lossless() {
    let pool = Arc::new(Pool::new(4096, 1600).unwrap());
    let mut inst = Instance::new(cfg(10, 1), pool.clone()).unwrap();
    let mut p0 = inst.peers[0].take().unwrap().take(0).unwrap();
    let mut p1 = inst.peers[1].take().unwrap().take(0).unwrap();
    let (task, _punt) = inst.task(0).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let wc = WorkerCfg {
        core: None,
        burst: 32,
        idle_sleep_us: 20,
        idle_spin_us: 0,
    };
    let running = runtime::start(vec![(wc, vec![task])], Clock::new(), stop.clone()).unwrap();

    let frame = FrameBuilder::new().src(A).dst(B).vlan(10).udp4(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        1000,
        2000,
    );
    let total = 200_000u64;
    let done = Arc::new(AtomicBool::new(false));
    // Reloader: flip between the two policies as fast as it can while traffic runs.
    let d2 = done.clone();
    let reloader = std::thread::spawn(move || {
        let mut n = 0u64;
        let mut gens = Vec::new();
        while !d2.load(Ordering::Relaxed) {
            let c = if n % 2 == 0 { cfg(20, 2) } else { cfg(10, 1) };
            gens.push(inst.reload(c).expect("reload"));
            n += 1;
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        (n, inst)
    });

    let (mut sent, mut got) = (0u64, 0u64);
    let (mut old, mut new) = (0u64, 0u64);
    let mut out = Burst::new(32);
    let mut back = Burst::new(64);
    while got < total {
        while sent < total && sent - got < 1024 && out.space() > 0 {
            let mut b = pool.alloc().expect("buffer");
            pool.fill(&mut b, &frame);
            out.push(b).unwrap();
            sent += 1;
        }
        p0.tx(&mut out);
        for b in out.drain() {
            // Not accepted this time: give back and resend later.
            pool.free(b);
            sent -= 1;
        }
        p1.rx(&mut back);
        for b in back.drain() {
            let d = pool.data(&b);
            let pcp = d[14] >> 5;
            let dscp = d[19] >> 2;
            match (dscp, pcp) {
                (10, 1) => old += 1,
                (20, 2) => new += 1,
                x => panic!("frame {got} saw a mix of two snapshots: (dscp, pcp) = {x:?}"),
            }
            got += 1;
            pool.free(b);
        }
    }
    done.store(true, Ordering::Relaxed);
    let (reloads, _inst) = reloader.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let tasks = runtime::totals(running.join().iter().flatten());
    assert_eq!(got, total, "every frame sent was received");
    assert_eq!(
        tasks.core.total_drops(),
        0,
        "no drop: {:?}",
        tasks.core.to_json()
    );
    assert!(
        reloads >= 5,
        "only {reloads} reloads happened during the run"
    );
    assert!(
        old > 0 && new > 0,
        "both snapshots carried traffic ({old} old, {new} new)"
    );
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn reload_refuses_what_cannot_change_live() {
    let pool = Arc::new(Pool::new(256, 1600).unwrap());
    let mut inst = Instance::new(cfg(10, 1), pool).unwrap();
    let mut c = cfg(10, 1);
    c.port.pop();
    c.vm.pop();
    let e = inst.reload(c).unwrap_err();
    assert!(e.contains("restart"), "{e}");
    let mut c = cfg(10, 1);
    c.switch.mtu = 9000;
    assert!(inst.reload(c).unwrap_err().contains("switch.mtu"));
    // The running config is unchanged and a valid change still applies.
    assert_eq!(inst.cfg.port.len(), 2);
    assert_eq!(inst.reload(cfg(20, 2)).unwrap(), 1);
}
