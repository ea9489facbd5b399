//! Reloads that add or remove ports, in the library: `prepare_ports` while
//! the workers run (a port that cannot be opened refuses the change), then
//! stop, `apply_ports`, start again. Kept ports keep their queues, cables and
//! counters; the FDB follows the new port ids. Nothing is timed; bounds only
//! guard against hangs.

use hairpin::buf::{Burst, Pool};
use hairpin::config::Config;
use hairpin::port::ring::RingQueue;
use hairpin::runtime::{self, Instance, Running};
use hairpin::types::Mac;
use hairpin::util::Clock;
use hairpin::wire::build::FrameBuilder;
use hairpin::worker::{Task, WorkerCfg};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);
const L: Mac = Mac([2, 0, 0, 0, 0, 0x1b]);

fn cfg(ports: &[&str], vm_b: bool, extra: &str) -> Config {
    let mut s = String::from(
        "[switch]\nworkers = [0]\nidle_sleep_us = 50\npool_size = 512\nhugepages = \"off\"\n",
    );
    for p in ports {
        s += &format!("[[port]]\nname = \"{p}\"\npvid = 10\nsource_guard = false\n");
    }
    s += extra;
    if vm_b {
        s += &format!("[[vm]]\nname = \"vb\"\nmac = \"{B}\"\nvlan = 10\nport = \"b\"\n");
    }
    Config::parse(&s).unwrap_or_else(|e| panic!("{e}\n{s}"))
}

fn start(tasks: Vec<Task>, stop: &Arc<AtomicBool>) -> Running {
    let wc = WorkerCfg {
        core: None,
        burst: 32,
        idle_sleep_us: 50,
    };
    let w = tasks.into_iter().map(|t| (wc.clone(), vec![t])).collect();
    runtime::start(w, Clock::new(), stop.clone()).unwrap()
}

fn send(pool: &Pool, q: &mut RingQueue, src: Mac, dst: Mac, n: usize) {
    let f = FrameBuilder::new().src(src).dst(dst).raw();
    for _ in 0..n {
        let mut b = pool.alloc().expect("buffer");
        assert!(pool.fill(&mut b, &f));
        q.tx_one(b).map_err(|_| "ring full").unwrap();
    }
}

/// Read what arrives on `q` until `n` frames came (then check nothing more
/// comes for a moment): the frames' destination MACs.
fn recv(pool: &Pool, q: &mut RingQueue, n: usize) -> Vec<Mac> {
    let mut got = Vec::new();
    let mut b = Burst::new(64);
    let t0 = Instant::now();
    while got.len() < n && t0.elapsed() < Duration::from_secs(20) {
        if q.rx(&mut b) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for x in b.drain() {
            got.push(Mac(pool.data(&x)[..6].try_into().unwrap()));
            pool.free(x);
        }
    }
    std::thread::sleep(Duration::from_millis(20));
    while let Some(x) = q.rx_one() {
        got.push(Mac(pool.data(&x)[..6].try_into().unwrap()));
        pool.free(x);
    }
    assert_eq!(got.len(), n, "frames received");
    got
}

fn stop_join(stop: &Arc<AtomicBool>, r: Running) -> Vec<Task> {
    stop.store(true, Ordering::Relaxed);
    let t = r.join().into_iter().flatten().collect();
    stop.store(false, Ordering::Relaxed);
    t
}

#[test]
fn ports_added_and_removed_while_running() {
    let pool = Arc::new(Pool::new(512, 2048).unwrap());
    let mut inst = Instance::new(cfg(&["a", "b"], true, ""), pool.clone()).unwrap();
    let mut qa = inst.peers[0].take().unwrap().take(0).unwrap();
    let mut qb = inst.peers[1].take().unwrap().take(0).unwrap();
    let (task, _punt) = inst.task(0).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let running = start(vec![task], &stop);

    // a → broadcast reaches b; L is learned on b.
    send(&pool, &mut qa, A, Mac::BROADCAST, 10);
    recv(&pool, &mut qb, 10);
    send(&pool, &mut qb, L, A, 5);
    recv(&pool, &mut qa, 5);

    // Add c in front of b (b's id changes 1 → 2).
    let ch = inst
        .prepare_ports(cfg(&["a", "c", "b"], true, ""))
        .expect("add c");
    assert_eq!(ch.added(), ["c"]);
    let tasks = stop_join(&stop, running);
    let tasks: Vec<Task> = inst
        .apply_ports(ch, tasks)
        .unwrap()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        inst.ports.iter().map(|p| p.name()).collect::<Vec<_>>(),
        ["a", "c", "b"]
    );
    let mut qc = inst.peers[1].take().unwrap().take(0).unwrap();
    // Kept counters continue: a received 10, b 5 so far.
    assert_eq!(tasks[0].pipe.port_ctr[0].rx_pkts, 10);
    assert_eq!(tasks[0].pipe.port_ctr[2].rx_pkts, 5);
    // FDB: b's learned entry went with its old id; the VM's static entry is at b's new id; A (on a, id kept) stays.
    let rows = inst.switch.fdb.dump(0);
    assert!(!rows.iter().any(|r| r.mac == L), "{rows:?}");
    let vb = rows.iter().find(|r| r.mac == B).expect("static VM entry");
    assert!(vb.is_static && vb.port == 2);
    assert!(rows.iter().any(|r| r.mac == A && r.port == 0));
    let running = start(tasks, &stop);
    // Floods reach the new port and the moved one (same cable as before); unicast to the VM only b.
    send(&pool, &mut qa, A, Mac::BROADCAST, 10);
    recv(&pool, &mut qc, 10);
    recv(&pool, &mut qb, 10);
    send(&pool, &mut qa, A, B, 7);
    assert_eq!(recv(&pool, &mut qb, 7), vec![B; 7]);
    recv(&pool, &mut qc, 0);
    send(&pool, &mut qc, Mac([2, 0, 0, 0, 0, 0xc]), A, 3);
    recv(&pool, &mut qa, 3);

    // A port that cannot be opened: refused with the reason, nothing changes, traffic flows.
    let bad = cfg(
        &["a", "c", "b"],
        true,
        "[[port]]\nname = \"d\"\npvid = 10\nbackend = \"pcap\"\npcap_in = \"/nonexistent/hairpin-in.pcap\"\n",
    );
    let e = inst.prepare_ports(bad).err().expect("refused");
    assert!(e.contains("port[3].backend"), "{e}");
    assert_eq!(inst.cfg.port.len(), 3);
    send(&pool, &mut qa, A, B, 4);
    recv(&pool, &mut qb, 4);
    // A kept port may not change backend in the same reload.
    let mut moved = cfg(&["a", "c", "b"], true, "");
    moved.port[1].backend = "pcap".into();
    let e = inst.prepare_ports(moved).err().expect("refused");
    assert!(e.contains("port[1].backend") && e.contains("moved"), "{e}");
    // Fixed settings stay refused.
    let mut w = cfg(&["a", "c"], false, "");
    w.switch.burst += 1;
    assert!(inst
        .prepare_ports(w)
        .err()
        .expect("refused")
        .contains("switch.burst"));

    // Remove b (and its VM): its entries go, a and c still forward.
    let ch = inst.prepare_ports(cfg(&["a", "c"], false, "")).unwrap();
    let tasks = stop_join(&stop, running);
    let tasks: Vec<Task> = inst
        .apply_ports(ch, tasks)
        .unwrap()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let rows = inst.switch.fdb.dump(0);
    assert!(!rows.iter().any(|r| r.mac == B), "{rows:?}");
    assert!(rows.iter().all(|r| r.port < 2), "{rows:?}");
    assert_eq!(tasks[0].pipe.port_ctr[0].rx_pkts, 10 + 10 + 7 + 4);
    assert_eq!(tasks[0].pipe.port_ctr[1].rx_pkts, 3);
    let running = start(tasks, &stop);
    send(&pool, &mut qa, A, B, 6); // B unknown now: flooded to c
    assert_eq!(recv(&pool, &mut qc, 6), vec![B; 6]);
    recv(&pool, &mut qb, 0);

    // Every frame accounted for over the changes; every buffer back.
    let tasks = stop_join(&stop, running);
    let t = runtime::totals(tasks.iter());
    let c = &t.core;
    assert_eq!(c.rx_pkts, 10 + 5 + 10 + 7 + 3 + 4 + 6);
    assert_eq!(
        c.rx_pkts + c.flood_copies,
        c.tx_pkts + c.punted + c.total_drops(),
        "{c:?}"
    );
    assert_eq!(c.total_drops(), 0, "{c:?}");
    drop(tasks);
    runtime::stop_ports(&mut inst.ports);
    drop(qb);
    assert_eq!(pool.available(), pool.capacity());
}
