//! Stopping gives every buffer back: in the library (`runtime::start`, stop
//! flag, join) and in the real binary (`hairpin run` on SIGTERM / SIGINT).
//! Bounds are generous and only guard against hangs; nothing is timed.

use hairpin::buf::{Burst, Pool};
use hairpin::config::Config;
use hairpin::port::ring::RingQueue;
use hairpin::runtime::{self, Instance};
use hairpin::types::Mac;
use hairpin::util::Clock;
use hairpin::wire::build::FrameBuilder;
use hairpin::worker::WorkerCfg;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(20);

const CFG: &str = r#"
[switch]
workers = [0]
idle_sleep_us = 100
pool_size = 1024
ring_depth = 64
punt_queue = 8
hugepages = "off"
[[port]]
name = "a"
reflective_relay = true
[[port]]
name = "b"
[[port]]
name = "c"
"#;

fn m(i: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, i])
}

#[test]
fn library_stop_returns_every_buffer() {
    let cfg = Config::parse(CFG).unwrap();
    let pool = Arc::new(Pool::new(1024, 2048).unwrap());
    let mut inst = Instance::new(cfg, pool.clone()).unwrap();
    let (task, mut punt) = inst.task(0).unwrap();
    let mut peers: Vec<RingQueue> = inst
        .peers
        .iter_mut()
        .map(|p| p.as_mut().unwrap().take(0).unwrap())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let running = runtime::start(
        vec![(
            WorkerCfg {
                core: None,
                burst: 32,
                idle_sleep_us: 100,
                idle_spin_us: 0,
            },
            vec![task],
        )],
        Clock::new(),
        stop.clone(),
    )
    .unwrap();

    // Generator: unicast (incl. hairpin on a), broadcast, unknown, the odd LLDP; reads everything back.
    let frames: Vec<(usize, Vec<u8>)> = vec![
        (0, FrameBuilder::new().src(m(1)).dst(m(2)).raw()),
        (0, FrameBuilder::new().src(m(2)).dst(m(1)).raw()),
        (1, FrameBuilder::new().src(m(3)).dst(m(1)).raw()),
        (2, FrameBuilder::new().src(m(4)).dst(Mac::BROADCAST).raw()),
        (1, FrameBuilder::new().src(m(3)).dst(m(0x99)).raw()),
        (2, FrameBuilder::new().src(m(4)).lldp(b"c", 120)),
    ];
    let gen_stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (gs, rx, gp) = (gen_stop.clone(), received.clone(), pool.clone());
    let gen = std::thread::spawn(move || {
        let mut out = Burst::new(32);
        while !gs.load(Ordering::Relaxed) {
            for (p, f) in &frames {
                if let Some(mut b) = gp.alloc() {
                    assert!(gp.fill(&mut b, f));
                    if let Err(b) = peers[*p].tx_one(b) {
                        gp.free(b);
                    }
                }
            }
            for q in peers.iter_mut() {
                q.rx(&mut out);
                rx.fetch_add(out.len() as u64, Ordering::Relaxed);
                for b in out.drain() {
                    gp.free(b);
                }
            }
            std::thread::yield_now();
        }
        peers
    });

    // Let traffic flow (the control plane drains punts meanwhile), then stop
    // the switch while the generator is still sending.
    let t0 = Instant::now();
    while received.load(Ordering::Relaxed) < 20_000 {
        assert!(t0.elapsed() < BOUND, "switch forwarded too little");
        while let Some(b) = punt.pop() {
            pool.free(b);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let mut tasks = running.join();
    gen_stop.store(true, Ordering::Relaxed);
    let mut peers = gen.join().unwrap();

    // What is still in flight: frames the switch sent the peers, punts, and
    // frames the generator queued after the worker's final drain.
    for q in peers.iter_mut() {
        while let Some(b) = q.rx_one() {
            pool.free(b);
        }
    }
    while let Some(b) = punt.pop() {
        pool.free(b);
    }
    let mut left = Burst::new(64);
    for t in tasks.iter_mut().flatten() {
        for q in t.queues.iter_mut() {
            while q.rx_burst(&mut left) > 0 {
                for b in left.drain() {
                    pool.free(b);
                }
            }
        }
    }
    let t = runtime::totals(tasks.iter().flatten());
    assert!(t.core.tx_pkts > 0 && t.core.reflected > 0 && t.core.flood_copies > 0);
    assert_eq!(
        pool.available(),
        pool.capacity(),
        "buffers leaked by the stop"
    );
}

/// A temporary config file, removed on drop.
struct TmpCfg(std::path::PathBuf);
impl Drop for TmpCfg {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run_and_signal(sig: libc::c_int, tag: &str) {
    let path = std::env::temp_dir().join(format!(
        "hairpin-stop-clean-{}-{tag}.toml",
        std::process::id()
    ));
    std::fs::write(&path, CFG).unwrap();
    let _tmp = TmpCfg(path.clone());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;

    // Wait for the start line on stderr (collect the rest for failure messages).
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let mut seen = Vec::new();
    let started = loop {
        match lines.recv_timeout(BOUND) {
            Ok(l) => {
                let ok = l.starts_with("hairpin: running");
                seen.push(l);
                if ok {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    if !started {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no start line on stderr; got {seen:?}");
    }

    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hairpin run did not exit within {BOUND:?} of signal {sig}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_thread.join().unwrap();
    err_thread.join().unwrap();
    seen.extend(lines.try_iter());
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}; stderr {seen:?}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"));
    let cap = j["pool"]["capacity"].as_u64().expect("pool.capacity");
    assert_eq!(cap, 1024);
    assert_eq!(j["pool"]["available"].as_u64(), Some(cap), "{out}");
}

#[test]
fn binary_stops_clean_on_sigterm() {
    run_and_signal(libc::SIGTERM, "term");
}

#[test]
fn binary_stops_clean_on_sigint() {
    run_and_signal(libc::SIGINT, "int");
}
