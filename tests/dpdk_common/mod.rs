//! Scenarios shared by the EAL test binaries (one binary per EAL mode: the
//! EAL starts once per process). Frames go through real DPDK ethdevs:
//! `rte_eth_from_rings` ports fed by the test, `net_null` vdevs.
#![allow(dead_code)]

use hairpin::buf::{Burst, Pool};
use hairpin::config::Config;
use hairpin::dpdk::{self, RingDev};
use hairpin::gen::{udp_frame, vm_mac};
use hairpin::runtime::{self, Instance};
use hairpin::util::Clock;
use hairpin::worker::WorkerCfg;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Generous bound against hangs (nothing is timed).
pub const BOUND: Duration = Duration::from_secs(20);

/// EAL arguments for a test process: private file prefix, no PCI scan, one lcore.
pub fn eal_args(prefix: &str, huge: bool) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-l".into(),
        "0".into(),
        "--no-pci".into(),
        format!("--file-prefix={prefix}"),
        "--log-level=lib.eal:warning".into(),
    ];
    if huge {
        a.extend([
            "-m".into(),
            "128".into(),
            "--huge-unlink".into(),
            "--iova-mode=va".into(),
        ]);
    } else {
        a.extend(["--no-huge".into(), "-m".into(), "256".into()]);
    }
    a
}

/// Removes the EAL runtime dir of `prefix` if a failed test never reached
/// [`teardown`] (so a panic leaves nothing behind either).
pub struct RuntimeDirGuard(pub String);

impl Drop for RuntimeDirGuard {
    fn drop(&mut self) {
        for d in ["/var/run/dpdk", "/run/dpdk"] {
            let _ = std::fs::remove_dir_all(std::path::Path::new(d).join(&self.0));
        }
    }
}

/// Free 2 MiB hugepages on this machine.
pub fn free_hugepages() -> u64 {
    std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A running single-worker switch over dpdk ports.
pub struct Sw {
    pub pool: Arc<Pool>,
    pub inst: Instance,
    running: Option<runtime::Running>,
    stop: Arc<AtomicBool>,
    punt: hairpin::port::ring::Consumer,
}

impl Sw {
    pub fn start(cfg: &str) -> Result<Sw, String> {
        let cfg = Config::parse(cfg).map_err(|e| e.to_string())?;
        let pool = runtime::make_pool(&cfg, 0)?;
        assert_eq!(pool.available(), pool.capacity(), "fresh pool is full");
        let mut inst = Instance::new(cfg, pool.clone())?;
        let (task, punt) = inst.task(0)?;
        let stop = Arc::new(AtomicBool::new(false));
        let running = runtime::start(
            vec![(
                WorkerCfg {
                    core: None,
                    burst: 32,
                    idle_sleep_us: 50,
                    idle_spin_us: 0,
                },
                vec![task],
            )],
            Clock::new(),
            stop.clone(),
        )?;
        Ok(Sw {
            pool,
            inst,
            running: Some(running),
            stop,
            punt,
        })
    }

    /// Stop the worker, close the ports; returns (core counters JSON, backend stats per port).
    pub fn finish(mut self) -> (Value, Vec<Value>) {
        self.stop.store(true, Ordering::Relaxed);
        let tasks = self.running.take().unwrap().join();
        while let Some(b) = self.punt.pop() {
            self.pool.free(b);
        }
        let t = runtime::totals(tasks.iter().flatten());
        let stats = self
            .inst
            .ports
            .iter()
            .filter_map(|p| p.backend_stats())
            .collect();
        drop(tasks);
        runtime::stop_ports(&mut self.inst.ports);
        (t.core.to_json(), stats)
    }
}

fn bytes(pool: &Pool, b: &hairpin::buf::PktBuf) -> Vec<u8> {
    pool.data(b).to_vec()
}

fn frame_in(pool: &Pool, f: &[u8]) -> hairpin::buf::PktBuf {
    let mut b = pool.alloc().expect("pool has room");
    assert!(pool.fill(&mut b, f));
    b
}

/// Collect what `dev` transmits until `n` frames came or the bound passed.
fn collect(dev: &mut RingDev, pool: &Pool, n: usize) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut b = Burst::new(32);
    let t0 = Instant::now();
    while out.len() < n && t0.elapsed() < BOUND {
        if dev.get_into(0, &mut b, pool) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for x in b.drain() {
            out.push((x.index(), bytes(pool, &x)));
            pool.free(x);
        }
    }
    out
}

fn put(dev: &mut RingDev, pool: &Pool, frames: &[Vec<u8>]) -> Vec<u32> {
    let mut b = Burst::new(32);
    let mut idx = Vec::new();
    for f in frames {
        let x = frame_in(pool, f);
        idx.push(x.index());
        b.push(x).unwrap();
    }
    assert_eq!(dev.put_from(0, &mut b, pool), frames.len());
    idx
}

fn untag(f: &[u8]) -> Vec<u8> {
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&f[16..]);
    v
}

/// Bridge with a reflective-relay trunk `hv` (VMs A and B, VLAN 10; A's
/// policy denies UDP to port 9999) and an access port `acc` (VLAN 10), both
/// ring ethdevs. Checks: VLAN push (acc → hv), VLAN pop (hv → acc), hairpin
/// reflection A → B out of hv in the very mbuf that came in (zero copy), a
/// broadcast flooded to both (one copy from the mbuf pool), the ACL deny
/// counted, rte_eth_stats next to hairpin's counters, and the mempool level
/// after stop.
pub fn ring_forwarding(tag: &str) {
    let mut hv = RingDev::create(&format!("hv{tag}"), 1, 1024).expect("ring ethdev hv");
    let mut acc = RingDev::create(&format!("acc{tag}"), 1, 1024).expect("ring ethdev acc");
    let (hv_name, acc_name) = (hv.name().to_string(), acc.name().to_string());
    assert_eq!(hv_name, format!("net_ring_hv{tag}"));
    let (a, b, x) = (vm_mac(1), vm_mac(2), vm_mac(3));
    let cfg = format!(
        r#"
[switch]
role = "bridge"
workers = [0]
pool_size = 4096
[dpdk]
rx_desc = 256
tx_desc = 256
link_wait_ms = 2000
[[port]]
name = "hv"
backend = "dpdk:{hv_name}"
mode = "trunk"
vlans = [10]
reflective_relay = true
[[port]]
name = "acc"
backend = "dpdk:{acc_name}"
pvid = 10
[[vm]]
name = "a"
mac = "{a}"
vlan = 10
port = "hv"
policy = "noudp9999"
[[vm]]
name = "b"
mac = "{b}"
vlan = 10
port = "hv"
[policy.noudp9999]
default = "permit"
[[policy.noudp9999.rule]]
action = "deny"
proto = "udp"
dst_port = "9999"
"#
    );
    let sw = Sw::start(&cfg).expect("switch over ring ethdevs");
    let pool = sw.pool.clone();
    let cap = pool.capacity();

    // X (behind acc) talks first: out of hv tagged VLAN 10 (push), X learned.
    let x_to_a = udp_frame(a, x, None, 1);
    put(&mut acc, &pool, std::slice::from_ref(&x_to_a));
    let got = collect(&mut hv, &pool, 1);
    assert_eq!(got.len(), 1, "X→A left hv");
    assert_eq!(untag(&got[0].1), x_to_a);
    assert_eq!(
        &got[0].1[12..16],
        &[0x81, 0x00, 0x00, 0x0a],
        "tagged VID 10"
    );

    // A → B on hv: reflected out of hv (hairpin), unchanged, in the same mbuf.
    let a_to_b = udp_frame(b, a, Some(10), 2);
    // A → X: out of acc untagged (pop).
    let a_to_x = udp_frame(x, a, Some(10), 3);
    // A → B, UDP to 9999: denied by A's policy.
    let mut denied = udp_frame(b, a, Some(10), 4);
    denied[40..42].copy_from_slice(&9999u16.to_be_bytes());
    let idx = put(&mut hv, &pool, &[a_to_b.clone(), a_to_x.clone(), denied]);
    let back = collect(&mut hv, &pool, 1);
    let out_acc = collect(&mut acc, &pool, 1);
    assert_eq!(back.len(), 1, "A→B reflected");
    assert_eq!(back[0].1, a_to_b);
    assert_eq!(
        back[0].0, idx[0],
        "the reflected frame is the mbuf that came in"
    );
    assert_eq!(out_acc.len(), 1, "A→X left acc");
    assert_eq!(out_acc[0].1, untag(&a_to_x), "untagged on the access port");

    // A broadcast from A: back out of hv (reflective relay) and out of acc
    // untagged; one of the two is a copy made from the mbuf pool.
    let bcast = udp_frame(hairpin::types::Mac::BROADCAST, a, Some(10), 5);
    put(&mut hv, &pool, std::slice::from_ref(&bcast));
    let b_hv = collect(&mut hv, &pool, 1);
    let b_acc = collect(&mut acc, &pool, 1);
    assert_eq!(b_hv.len(), 1, "broadcast reflected on hv");
    assert_eq!(b_hv[0].1, bcast);
    assert_eq!(b_acc.len(), 1, "broadcast on acc");
    assert_eq!(b_acc[0].1, untag(&bcast));

    let (ctr, stats) = sw.finish();
    assert_eq!(ctr["drops"]["acl_deny"], 1, "{ctr}");
    assert_eq!(
        ctr["reflected"], 2,
        "A→B and the broadcast's own copy: {ctr}"
    );
    assert_eq!(ctr["rx_pkts"], 5);
    assert_eq!(ctr["tx_pkts"], 5);
    assert_eq!(ctr["flood_copies"], 1, "{ctr}");
    assert_eq!(stats.len(), 2);
    assert_eq!(stats[0]["eth"]["ipackets"], 4, "{}", stats[0]);
    assert_eq!(stats[0]["eth"]["opackets"], 3, "{}", stats[0]);
    assert_eq!(stats[1]["eth"]["ipackets"], 1);
    assert_eq!(stats[1]["eth"]["opackets"], 2);
    assert_eq!(stats[0]["eth"]["rx_nombuf"], 0);
    assert_eq!(
        hv.drain(&pool) + acc.drain(&pool),
        0,
        "nothing left in the rings"
    );
    assert_eq!(pool.available(), cap, "every mbuf is back in the mempool");
}

/// Two net_null vdevs (zeroed frames, which a bridge drops for their
/// all-zero source): received through DPDK, dropped by reason, mbufs back.
pub fn null_ports(tag: &str) {
    let cfg = format!(
        r#"
[switch]
role = "bridge"
workers = [0]
pool_size = 4096
[dpdk]
rx_desc = 256
tx_desc = 256
[[port]]
name = "n0"
backend = "dpdk:net_null_a{tag}"
[[port]]
name = "n1"
backend = "dpdk:net_null_b{tag}"
"#
    );
    let sw = Sw::start(&cfg).expect("switch over net_null");
    let pool = sw.pool.clone();
    let t0 = Instant::now();
    while sw.inst.ports[0]
        .backend_stats()
        .map(|v| v["eth"]["ipackets"].as_u64().unwrap_or(0))
        .unwrap_or(0)
        < 1000
        && t0.elapsed() < BOUND
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (ctr, stats) = sw.finish();
    let rx = ctr["rx_pkts"].as_u64().unwrap();
    assert!(rx >= 1000, "{ctr}");
    assert_eq!(
        ctr["drops_total"].as_u64().unwrap(),
        rx,
        "all dropped: {ctr}"
    );
    assert_eq!(ctr["drops"]["bad_src_mac"].as_u64().unwrap(), rx);
    assert_eq!(stats[0]["driver"], "net_null");
    assert_eq!(pool.available(), pool.capacity(), "no leaked mbufs");
}

/// Bad input with the EAL up: each fails with an error naming the key and
/// the cause, and leaves no ethdev or mempool behind.
pub fn bad_input(tag: &str) {
    let ports0 = dpdk::port_count();
    let base = |dev: &str, pool: usize, desc: u16| {
        format!(
            "[switch]\nworkers = [0]\npool_size = {pool}\n[dpdk]\nrx_desc = {desc}\ntx_desc = {desc}\n[[port]]\nname = \"p\"\nbackend = \"dpdk:{dev}\"\n"
        )
    };
    let err = |c: &str| match Sw::start(c) {
        Ok(_) => panic!("expected an error for {c}"),
        Err(e) => e,
    };
    let e = err(&base(&format!("net_bogus{tag}"), 4096, 256));
    assert!(e.starts_with("port[0].backend: rte_dev_probe:"), "{e}");
    let e = err(&base("0000:7f:1f.7", 4096, 256));
    assert!(
        e.contains("port[0].backend") && e.contains("0000:7f:1f.7"),
        "{e}"
    );
    let e = err(&base(&format!("net_null_small{tag}"), 256, 1024));
    assert!(
        e.starts_with("switch.pool_size: 256 mbufs cannot fill the DPDK queues"),
        "{e}"
    );
    // More mbufs than the EAL has memory for (-m 256 / 128).
    let e = err(&base(&format!("net_null_big{tag}"), 4_000_000, 256));
    assert!(
        e.starts_with("switch.pool_size: cannot create the mbuf pool"),
        "{e}"
    );
    // A link that never comes up: a vhost-user port nobody connects to.
    let sock = std::env::temp_dir().join(format!("hpd-vhost-{}-{tag}.sock", std::process::id()));
    let mut c = base(
        &format!("net_vhost_hpd{tag},iface={}", sock.display()),
        4096,
        256,
    );
    c = c.replace("[dpdk]\n", "[dpdk]\nlink_wait_ms = 300\n");
    let e = err(&c);
    assert!(
        e.starts_with(&format!("port[0].backend: dpdk:net_vhost_hpd{tag}")),
        "{e}"
    );
    assert!(
        e.contains("link did not come up within 300 ms (dpdk.link_wait_ms)"),
        "{e}"
    );
    assert!(
        dpdk::port_by_name(&format!("net_vhost_hpd{tag}")).is_none(),
        "the port was closed"
    );
    assert!(!sock.exists(), "vhost socket left behind");
    // The small/big cases probed a net_null vdev before failing: that device
    // exists (probing is idempotent), but no port was configured or started.
    assert!(dpdk::port_count() <= ports0 + 2);
    // A pool that is not an mbuf pool cannot carry a dpdk port.
    let cfg = Config::parse(&base(&format!("net_null_small{tag}"), 4096, 256)).unwrap();
    let plain = Arc::new(Pool::new(4096, 2048).unwrap());
    let e = match Instance::new(cfg, plain) {
        Ok(_) => panic!("a plain pool was accepted"),
        Err(e) => e,
    };
    assert!(e.contains("not a DPDK mbuf pool"), "{e}");
}

/// Shut the EAL down; the runtime directory goes with it.
pub fn teardown(prefix: &str) {
    assert!(dpdk::eal_up());
    dpdk::eal_cleanup().expect("rte_eal_cleanup");
    assert!(!dpdk::eal_up());
    for d in ["/var/run/dpdk", "/run/dpdk"] {
        assert!(
            !std::path::Path::new(d).join(prefix).exists(),
            "runtime dir {d}/{prefix} left behind"
        );
    }
    let e = dpdk::eal_init(&[]).unwrap_err();
    assert!(e.text.contains("cannot start again"), "{e}");
}

/// An `Mbuf` owns one mbuf and gives it back on drop; `into_slot` hands it
/// to hairpin's pool instead (freed there).
pub fn mbuf_ownership(tag: &str) {
    let mp = dpdk::MbufPool::create(&format!("hpd_own{tag}"), 256, 0, 2176, -1).expect("mempool");
    assert_eq!((mp.size(), mp.avail()), (256, 256));
    let m = mp.alloc().expect("one mbuf");
    let i = m.index();
    assert!(i < 256);
    assert_eq!(mp.avail(), 255);
    drop(m);
    assert_eq!(mp.avail(), 256, "drop freed it");
    let pool = mp.into_pool().expect("pool over the mempool");
    let b = pool.alloc().unwrap();
    assert_eq!(pool.available(), 255);
    pool.free(b);
    assert_eq!(pool.available(), 256);
    // Too big for the EAL's memory: the error names the failing step.
    let e = match dpdk::MbufPool::create(&format!("hpd_big{tag}"), 4_000_000, 0, 2176, -1) {
        Ok(_) => panic!("a 9 GB mempool was created"),
        Err(e) => e,
    };
    assert!(
        e.call.contains("rte_mempool") || e.call.contains("memzone"),
        "{e}"
    );
}

/// One mempool per NUMA socket in one slot space (two mempools here, on
/// socket 0 and on SOCKET_ID_ANY, as a one-node machine can): the pool's
/// capacity is their sum, every mbuf of both is a distinct writable slot,
/// frames of either mempool pass through a ring ethdev's RX (set up over
/// the first) and TX as they are, and each mbuf goes back to its own mempool.
pub fn socket_pools(tag: &str) {
    let mp = dpdk::MbufPool::create_per_socket(
        &format!("hpd_sock{tag}"),
        &[(0, 300), (-1, 200)],
        0,
        2176,
    )
    .expect("two mempools");
    assert_eq!((mp.size(), mp.avail()), (500, 500));
    assert_eq!(mp.sockets(), vec![(0, 300, 300), (-1, 200, 200)]);
    let pool = Arc::new(mp.into_pool().expect("pool over both"));
    assert_eq!((pool.capacity(), pool.available()), (500, 500));
    let mut all = Vec::new();
    while let Some(mut b) = pool.alloc() {
        let k = all.len() as u32;
        assert!(pool.fill(&mut b, &[k.to_le_bytes(), [0xab; 4]].concat().repeat(8)));
        all.push(b);
    }
    assert_eq!(all.len(), 500, "both mempools hand out all their mbufs");
    let mut idx: Vec<u32> = all.iter().map(|b| b.index()).collect();
    idx.sort_unstable();
    idx.dedup();
    assert_eq!(idx.len(), 500, "distinct slots");
    for (k, b) in all.iter().enumerate() {
        assert_eq!(
            &pool.data(b)[..4],
            &(k as u32).to_le_bytes(),
            "slots do not overlap"
        );
    }
    let sockets = |p: &Pool| dpdk::MbufPool::of(p).unwrap().sockets();
    assert_eq!(sockets(&pool), vec![(0, 300, 0), (-1, 200, 0)]);
    // Through a ring ethdev: RX over the socket-0 mempool takes mbufs of both.
    let mut dev = RingDev::create(&format!("sock{tag}"), 1, 1024).expect("ring ethdev");
    let id = dpdk::ensure_device(dev.name()).expect("the ring port");
    let setup = dpdk::PortSetup {
        queues: 1,
        rx_desc: 64,
        tx_desc: 64,
        mtu: 1500,
        rss: false,
        promiscuous: false,
    };
    dpdk::port_setup(id, &setup, dpdk::MbufPool::of(&pool).unwrap(), 0).expect("setup");
    dpdk::port_start(id).expect("start");
    let mut q = dpdk::EthQueue::new(id, dpdk::QueueId(0), pool.clone()).expect("queue");
    let want: Vec<(u32, Vec<u8>)> = all.iter().map(|b| (b.index(), bytes(&pool, b))).collect();
    let mut got = Vec::new();
    let mut left = all.into_iter();
    let mut b = Burst::new(32);
    let t0 = Instant::now();
    while got.len() < want.len() && t0.elapsed() < BOUND {
        for x in left.by_ref().take(32 - b.len()) {
            b.push(x).unwrap();
        }
        dev.put_from(0, &mut b, &pool);
        let mut rx = Burst::new(32);
        q.rx_into(&mut rx);
        let n = rx.len();
        assert_eq!(q.tx_from(&mut rx), n, "TX of mbufs of either mempool");
        let mut out = Burst::new(32);
        dev.get_into(0, &mut out, &pool);
        for x in out.drain() {
            got.push((x.index(), bytes(&pool, &x)));
            pool.free(x);
        }
    }
    assert_eq!(
        q.unusable(),
        0,
        "no mbuf of the joined mempools was refused"
    );
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want, "every frame came through in its own mbuf");
    dpdk::port_close(id).expect("close");
    dev.drain(&pool);
    assert_eq!(
        sockets(&pool),
        vec![(0, 300, 300), (-1, 200, 200)],
        "each mbuf back in its own mempool"
    );
}
