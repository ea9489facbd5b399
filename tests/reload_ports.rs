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
        idle_spin_us: 0,
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

mod run {
    //! The same through `hairpin run` and its control socket, on pcap ports.
    use super::*;
    use hairpin::pcap::{PcapReader, PcapWriter};
    use serde_json::{json, Value};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::Path;
    use std::process::{Command, Stdio};

    fn port(name: &str, extra: &str) -> String {
        format!("[[port]]\nname = \"{name}\"\nbackend = \"pcap\"\n{extra}")
    }

    fn write_cfg(dir: &Path, ports: &[String]) {
        let s = String::from(
            "[switch]\nworkers = [0]\nidle_sleep_us = 100\npool_size = 256\nhugepages = \"off\"\n[telemetry]\ncontrol_socket = \"ctl.sock\"\n",
        ) + &ports.concat();
        std::fs::write(dir.join("hairpin.toml"), s).unwrap();
    }

    fn pcap_in(path: &Path, src: Mac, n: usize) {
        let mut w = PcapWriter::create(path).unwrap();
        let f = FrameBuilder::new().src(src).dst(Mac::BROADCAST).raw();
        for _ in 0..n {
            w.write(1_000_000_000, &f).unwrap();
        }
        w.flush().unwrap();
    }

    fn ask(sock: &Path, req: Value) -> Value {
        let mut s = UnixStream::connect(sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        writeln!(s, "{req}").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Ask `ports` until `f` holds (the socket may be restarting after a port change).
    fn ports_until(sock: &Path, f: impl Fn(&Value) -> bool) -> Value {
        let t0 = Instant::now();
        let mut last = Value::Null;
        loop {
            if let Ok(mut s) = UnixStream::connect(sock) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = writeln!(s, "{}", json!({"cmd": "ports"}));
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if v["ok"] == true && f(&v["data"]) {
                            return v["data"].clone();
                        }
                        last = v;
                    }
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "ports never matched; last reply {last}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn get<'a>(ports: &'a Value, name: &str) -> &'a Value {
        ports
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no port {name}: {ports}"))
    }

    #[test]
    fn hairpin_run_adds_and_removes_ports_on_reload() {
        let dir = std::env::temp_dir().join(format!("hairpin-reload-ports-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        pcap_in(&dir.join("in1.pcap"), A, 10);
        pcap_in(&dir.join("in2.pcap"), B, 5);
        let in1 = port("in1", "pcap_in = \"in1.pcap\"\n");
        let out1 = port("out1", "pcap_out = \"out1.pcap\"\n");
        let in2 = port("in2", "pcap_in = \"in2.pcap\"\n");
        let out2 = port("out2", "pcap_out = \"out2.pcap\"\n");
        write_cfg(&dir, &[in1.clone(), out1.clone()]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_hairpin"))
            .args(["run", "--config"])
            .arg(dir.join("hairpin.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let out_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let mut stderr = child.stderr.take().unwrap();
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let sock = dir.join("ctl.sock");
        let p = ports_until(&sock, |p| get(p, "out1")["tx_frames"] == 10);
        assert_eq!(p.as_array().unwrap().len(), 2);

        // Add in2 (5 more broadcasts) and out2: traffic flows through both; counters continue.
        write_cfg(
            &dir,
            &[in1.clone(), in2.clone(), out1.clone(), out2.clone()],
        );
        let r = ask(&sock, json!({"cmd": "reload"}));
        assert_eq!(r["ok"], true, "{r}");
        let p = ports_until(&sock, |p| {
            p.as_array().unwrap().len() == 4 && get(p, "out2")["tx_frames"] == 5
        });
        assert_eq!(get(&p, "in1")["rx_frames"], 10, "{p}");
        assert_eq!(get(&p, "in2")["rx_frames"], 5, "{p}");
        assert_eq!(get(&p, "out1")["tx_frames"], 15, "{p}");

        // A port that cannot be opened: refused with the reason; nothing changes.
        let bad = port("in3", "pcap_in = \"missing.pcap\"\n");
        write_cfg(
            &dir,
            &[in1.clone(), in2.clone(), out1.clone(), out2.clone(), bad],
        );
        let r = ask(&sock, json!({"cmd": "reload"}));
        assert_eq!(r["ok"], false, "{r}");
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains("refused") && e.contains("port[4].backend"),
            "{e}"
        );
        let p = ask(&sock, json!({"cmd": "ports"}));
        assert_eq!(p["data"].as_array().unwrap().len(), 4, "{p}");

        // Remove out2 (and in2) with SIGHUP: out1 keeps its count and its file.
        write_cfg(&dir, &[in1.clone(), out1.clone()]);
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
        let p = ports_until(&sock, |p| p.as_array().unwrap().len() == 2);
        assert_eq!(get(&p, "out1")["tx_frames"], 15, "{p}");
        assert_eq!(get(&p, "in1")["rx_frames"], 10, "{p}");

        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = out_thread.join().unwrap();
        let err = err_thread.join().unwrap();
        assert_eq!(status.code(), Some(0), "{err}");
        assert!(err.contains("workers restarted"), "{err}");
        let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(j["pool"]["available"], j["pool"]["capacity"], "{out}");
        let c = &j["counters"];
        let n = |v: &Value| v.as_u64().unwrap();
        assert_eq!(n(&c["rx_pkts"]), 15, "{out}");
        assert_eq!(
            n(&c["rx_pkts"]) + n(&c["flood_copies"]),
            n(&c["tx_pkts"]) + n(&c["punted"]) + n(&c["drops_total"]),
            "{out}"
        );
        assert_eq!(n(&j["ports"]["out1"]["tx_pkts"]), 15, "{out}");
        // out1 was never reopened: its file holds all 15 frames; out2's its 5.
        let count = |f: &str| PcapReader::open(dir.join(f)).unwrap().count();
        assert_eq!(count("out1.pcap"), 15);
        assert_eq!(count("out2.pcap"), 5);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// With an 802.1Qbg control thread (a port with `evb`), a port change is
    /// refused with the reason; a policy-only change still applies.
    #[test]
    fn port_change_with_a_qbg_control_thread_is_refused() {
        let dir = std::env::temp_dir().join(format!("hairpin-reload-qbg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let base = "[switch]\nworkers = [0]\nidle_sleep_us = 100\npool_size = 256\nhugepages = \"off\"\n[telemetry]\ncontrol_socket = \"ctl.sock\"\n[[port]]\nname = \"up\"\nmode = \"trunk\"\nvlans = [10]\nevb = \"bridge\"\n[[port]]\nname = \"p2\"\npvid = 10\n";
        let cfg = dir.join("hairpin.toml");
        std::fs::write(&cfg, base).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hairpin"))
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sock = dir.join("ctl.sock");
        ports_until(&sock, |p| p.as_array().unwrap().len() == 2);
        std::fs::write(&cfg, format!("{base}[[port]]\nname = \"p3\"\npvid = 10\n")).unwrap();
        let r = ask(&sock, json!({"cmd": "reload"}));
        assert_eq!(r["ok"], false, "{r}");
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains("802.1Qbg control thread") && e.contains("restart"),
            "{e}"
        );
        assert_eq!(
            ask(&sock, json!({"cmd": "ports"}))["data"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        // Same ports, a new policy: applied.
        std::fs::write(&cfg, format!("{base}[policy.x]\ndefault = \"permit\"\n")).unwrap();
        let r = ask(&sock, json!({"cmd": "reload"}));
        assert_eq!(r["ok"], true, "{r}");
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
