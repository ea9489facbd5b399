//! `hairpin capture` against running switches: frames forwarded on ring
//! ports (library runtime, control socket in process, the real CLI binary)
//! come out of `tshark -r` with the lengths, counts and directions that were
//! sent; a tiny capture queue drops copies (counted) without touching
//! forwarding; bad requests against a real `hairpin run` get errors and leave
//! it running. Bounds only guard against hangs; nothing is timed.

use hairpin::buf::Pool;
use hairpin::config::Config;
use hairpin::runtime::{self, Instance, Running};
use hairpin::telemetry::{server, View, WorkerView};
use hairpin::types::Mac;
use hairpin::wire::build::FrameBuilder;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

mod sock_common;
use sock_common::{serve_socket, start_worker, Client, RingGen, BOUND};
const A: Mac = Mac([2, 0, 0, 0, 0, 1]);
const B: Mac = Mac([2, 0, 0, 0, 0, 2]);

fn tshark() -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipped: tshark is not installed (apt-get install tshark)");
    }
    ok
}

/// `tshark -r FILE`: (frame.len, direction flag 1 = in / 2 = out, interface name) per frame.
fn read_back(f: &Path) -> Vec<(usize, u32, String)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(f)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.len",
            "-e",
            "frame.packet_flags_direction",
            "-e",
            "frame.interface_name",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        f.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let dir = f[1];
            let dir = dir
                .strip_prefix("0x")
                .map(|h| u32::from_str_radix(h, 16).unwrap())
                .unwrap_or_else(|| dir.parse().unwrap());
            (f[0].parse().unwrap(), dir, f[2].to_string())
        })
        .collect()
}

fn udp(src: Mac, dst: Mac, payload: usize) -> Vec<u8> {
    FrameBuilder::new()
        .src(src)
        .dst(dst)
        .payload(&vec![0x5a; payload])
        .udp4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 1000, 53)
}

/// A switch on two ring ports `a`, `b` in this process, its control socket
/// served, and the far ends of the cables.
struct Lib {
    dir: PathBuf,
    sock: PathBuf,
    view: Arc<View>,
    stop: Arc<AtomicBool>,
    tstop: Arc<AtomicBool>,
    srv: Option<server::SocketServer>,
    running: Option<Running>,
    g: RingGen,
}

impl Lib {
    fn start(tag: &str, capture_queue: usize) -> Lib {
        let cfg = Config::parse(&format!(
            "[switch]\nworkers = [0]\nidle_sleep_us = 100\npool_size = 4096\nring_depth = 256\nhugepages = \"off\"\n\
             [telemetry]\ncapture_queue = {capture_queue}\n[[port]]\nname = \"a\"\n[[port]]\nname = \"b\"\n"
        ))
        .unwrap();
        let pool = Arc::new(Pool::new(4096, 2048).unwrap());
        let mut inst = Instance::new(cfg, pool.clone()).unwrap();
        let (task, _punt) = inst.task(0).unwrap();
        let peers = inst
            .peers
            .iter_mut()
            .map(|p| p.as_mut().unwrap().take(0).unwrap())
            .collect();
        let (host, _) = mpsc::channel();
        let clock = hairpin::util::Clock::new();
        let view = Arc::new(View {
            ports: vec!["a".into(), "b".into()],
            workers: vec![WorkerView {
                core: None,
                shared: task.shared.clone(),
            }],
            fdb: inst.switch.fdb.clone(),
            cell: inst.switch.cell.clone(),
            clock,
            host: Mutex::new(host),
            started: Instant::now(),
            vm: None,
            capture: Some(inst.capture.clone()),
        });
        let dir =
            std::env::temp_dir().join(format!("hairpin-capture-{}-{tag}", std::process::id()));
        let (sock, tstop, srv) = serve_socket(&dir, view.clone());
        let (stop, running) = start_worker(task, clock);
        Lib {
            dir,
            sock,
            view,
            stop,
            tstop,
            srv: Some(srv),
            running: Some(running),
            g: RingGen::new(peers, pool),
        }
    }

    fn drain(&mut self) {
        self.g.drain();
    }

    fn send(&mut self, p: usize, f: &[u8]) {
        self.g.send(p, f);
    }

    /// Drain until port `p`'s far end got `n` frames in all.
    fn wait_got(&mut self, p: usize, n: u64) {
        let t0 = Instant::now();
        while self.g.got[p] < n {
            assert!(
                t0.elapsed() < BOUND,
                "port {p}: got {} of {n}; drops {:?} ports {:?}",
                self.g.got[p],
                self.view.drops(),
                self.view.port_counters()
            );
            self.drain();
            std::thread::yield_now();
        }
    }

    /// B speaks once so the switch learns it (a floods it to a).
    fn learn_b(&mut self) {
        self.send(1, &udp(B, Mac::BROADCAST, 20));
        self.wait_got(0, 1);
    }

    /// Stop the workers and the socket; final totals.
    fn finish(&mut self) -> runtime::Totals {
        self.stop.store(true, Ordering::Relaxed);
        let tasks = self.running.take().unwrap().join();
        let t = runtime::totals(tasks.iter().flatten());
        self.tstop.store(true, Ordering::Relaxed);
        self.srv.take().unwrap().join();
        self.drain();
        drop(tasks);
        t
    }
}

impl Drop for Lib {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.finish();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_output(mut c: Child) -> Output {
    let t0 = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if t0.elapsed() > BOUND {
            let _ = c.kill();
            panic!("hairpin capture did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    c.wait_with_output().unwrap()
}

#[test]
fn captured_frames_match_what_was_sent_in_both_directions() {
    if !tshark() {
        return;
    }
    let mut s = Lib::start("both", 1024);
    s.learn_b();
    // a → b (tx on b) in 10 sizes, b → a (rx on b) in 5.
    let to_b: Vec<Vec<u8>> = (0..10).map(|i| udp(A, B, 30 + i * 37)).collect();
    let from_b: Vec<Vec<u8>> = (0..5).map(|i| udp(B, A, 100 + i * 11)).collect();
    let file = s.dir.join("b.pcapng");
    let n = to_b.len() + from_b.len();
    let cli = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .args(["capture", "--port", "b", "--dir", "both", "--count"])
        .arg(n.to_string())
        .arg("-w")
        .arg(&file)
        .arg("--control-socket")
        .arg(&s.sock)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = Client::connect(&s.sock);
    c.until(json!({"cmd": "capture.list"}), |d| {
        d.as_array().is_some_and(|a| a.len() == 1)
    });
    for (i, x) in to_b.iter().enumerate() {
        s.send(0, x);
        if let Some(y) = from_b.get(i) {
            s.send(1, y);
        }
    }
    s.wait_got(1, to_b.len() as u64);
    s.wait_got(0, 1 + from_b.len() as u64);
    let out = wait_output(cli);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "capture failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{n} frames")) && stdout.contains("0 copies dropped"),
        "{stdout}"
    );
    // The CLI's disconnect left no capture behind.
    assert_eq!(c.ok(json!({"cmd": "capture.list"})), json!([]));
    let rows = read_back(&file);
    assert_eq!(rows.len(), n, "{rows:?}");
    let mut tx: Vec<usize> = rows.iter().filter(|r| r.1 == 2).map(|r| r.0).collect();
    let mut rx: Vec<usize> = rows.iter().filter(|r| r.1 == 1).map(|r| r.0).collect();
    let mut want_tx: Vec<usize> = to_b.iter().map(Vec::len).collect();
    let mut want_rx: Vec<usize> = from_b.iter().map(Vec::len).collect();
    tx.sort_unstable();
    rx.sort_unstable();
    want_tx.sort_unstable();
    want_rx.sort_unstable();
    assert_eq!(tx, want_tx);
    assert_eq!(rx, want_rx);
    assert!(rows.iter().all(|r| r.2 == "b"), "{rows:?}");
    let t = s.finish();
    assert_eq!(t.ports[1].tx_pkts, to_b.len() as u64);
    assert_eq!(t.ports[1].rx_pkts, 1 + from_b.len() as u64);
}

#[test]
fn snaplen_cuts_frames_and_keeps_their_length() {
    if !tshark() {
        return;
    }
    let mut s = Lib::start("snap", 1024);
    s.learn_b();
    let file = s.dir.join("snap.pcapng");
    let mut c = Client::connect(&s.sock);
    let st = c.ok(
        json!({"cmd": "capture.start", "port": "a", "dir": "rx", "snaplen": 64,
                         "path": file.display().to_string()}),
    );
    let id = st["id"].as_u64().unwrap();
    for i in 0..20 {
        s.send(0, &udp(A, B, 200 + i));
    }
    s.wait_got(1, 20);
    c.until(json!({"cmd": "capture.status", "id": id}), |d| {
        d["frames"] == 20
    });
    let fin = c.ok(json!({"cmd": "capture.stop", "id": id}));
    assert_eq!(fin["capture_dropped"], 0);
    let want_bytes: u64 = (0..20).map(|i| udp(A, B, 200 + i).len() as u64).sum();
    assert_eq!(fin["bytes"], want_bytes);
    // frame.len is the length on the wire; caplen is 64.
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(["-T", "fields", "-e", "frame.len", "-e", "frame.cap_len"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<(u64, u64)> = text
        .lines()
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r.1 == 64), "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.0).sum::<u64>(), want_bytes);
}

#[test]
fn a_tiny_capture_queue_drops_copies_never_frames() {
    let mut s = Lib::start("overflow", 4);
    s.learn_b();
    let file = s.dir.join("over.pcapng");
    let mut c = Client::connect(&s.sock);
    let st = c.ok(json!({"cmd": "capture.start", "port": "b", "dir": "tx",
                         "path": file.display().to_string()}));
    let id = st["id"].as_u64().unwrap();
    const N: u64 = 20_000;
    let f = udp(A, B, 20);
    // In rounds of 128 frames (half a ring), each read back before the next,
    // so b's ring never refuses a frame: forwarding loses nothing, while the
    // 4-copy capture queue overflows within every round.
    for round in 0..N / 128 + 1 {
        let k = (N - round * 128).min(128);
        for _ in 0..k {
            s.send(0, &f);
        }
        s.wait_got(1, round * 128 + k);
    }
    // Every frame sent on b is either in the file or counted as a dropped copy.
    let d = c.until(json!({"cmd": "capture.status", "id": id}), |d| {
        d["frames"].as_u64().unwrap() + d["capture_dropped"].as_u64().unwrap() == N
    });
    let dropped = d["capture_dropped"].as_u64().unwrap();
    assert!(dropped > 0, "a 4-frame queue kept up with {N} frames: {d}");
    assert_eq!(d["capture_dropped_tx"].as_u64().unwrap(), dropped);
    let fin = c.ok(json!({"cmd": "capture.stop", "id": id}));
    let frames = fin["frames"].as_u64().unwrap();
    assert_eq!(frames + fin["capture_dropped"].as_u64().unwrap(), N);
    // The drop count is in `ports` and in the Prometheus text, too.
    let ports = c.ok(json!({"cmd": "ports"}));
    assert_eq!(ports[1]["capture_dropped_tx"], dropped);
    assert_eq!(ports[1]["capture_dropped_rx"], 0);
    let text = hairpin::telemetry::prom::render(&s.view);
    assert!(
        text.contains(&format!(
            "hairpin_capture_dropped_total{{port=\"b\",dir=\"tx\"}} {dropped}\n"
        )),
        "{text}"
    );
    // Forwarding was not touched: every frame went out, nothing dropped.
    let t = s.finish();
    assert_eq!(t.ports[0].rx_pkts, N);
    assert_eq!(t.ports[1].tx_pkts, N);
    assert_eq!(t.core.total_drops(), 0);
    assert_eq!(s.g.got[1], N);
    if tshark() {
        assert_eq!(read_back(&file).len() as u64, frames);
    }
}

/// A `hairpin run` on a pcap port; SIGTERM and wait on drop.
struct Run {
    child: Child,
    dir: PathBuf,
}

impl Run {
    fn start() -> Run {
        let dir = std::env::temp_dir().join(format!("hairpin-capture-{}-run", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("s.toml"),
            "[switch]\nworkers = [0]\nidle_sleep_us = 100\n[telemetry]\ncontrol_socket = \"ctl.sock\"\n\
             [[port]]\nname = \"p0\"\nbackend = \"pcap\"\npcap_out = \"p0-out.pcap\"\n",
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hairpin"))
            .args(["run", "--config"])
            .arg(dir.join("s.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        loop {
            match rx.recv_timeout(BOUND) {
                Ok(l) if l.contains("running") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!("hairpin run did not start");
                }
            }
        }
        Run { child, dir }
    }
    fn sock(&self) -> PathBuf {
        self.dir.join("ctl.sock")
    }
    fn capture(&self, args: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_hairpin"))
            .arg("capture")
            .args(args)
            .arg("--control-socket")
            .arg(self.sock())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn bad_captures_get_errors_and_the_switch_keeps_running() {
    let mut r = Run::start();
    let f = r.dir.join("x.pcapng").display().to_string();
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).to_string();
    // Unknown port.
    let o = wait_output(r.capture(&["--port", "nope", "-w", &f]));
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("\"nope\"") && err(&o).contains("p0"),
        "{}",
        err(&o)
    );
    // Bad direction: refused by the CLI.
    let o = wait_output(r.capture(&["--port", "p0", "--dir", "up", "-w", &f]));
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    // A file that cannot be written: the path and the OS error.
    let bad = r.dir.join("no-such-dir").join("x.pcapng");
    let o = wait_output(r.capture(&["--port", "p0", "-w", &bad.display().to_string()]));
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains(&bad.display().to_string()) && err(&o).contains("No such file"),
        "{}",
        err(&o)
    );
    // A second capture of a port is refused while the first runs.
    let mut c = Client::connect(&r.sock());
    let first = c.ok(json!({"cmd": "capture.start", "port": "p0", "path": f}));
    let o = wait_output(r.capture(&["--port", "p0", "-w", &format!("{f}.2")]));
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("already being captured"), "{}", err(&o));
    // Malformed requests.
    for (req, want) in [
        (json!({"cmd": "capture.start", "port": "p0"}), "\"path\""),
        (json!({"cmd": "capture.stop"}), "\"id\""),
        (json!({"cmd": "capture.stop", "id": 999}), "no capture 999"),
        (
            json!({"cmd": "capture.start", "port": "p0", "path": "rel.pcapng"}),
            "absolute",
        ),
    ] {
        let rep = c.ask(req.clone());
        assert_eq!(rep["ok"], false, "{req} → {rep}");
        assert!(rep["error"].as_str().unwrap().contains(want), "{rep}");
    }
    // The client that started it goes away: the capture stops.
    drop(c);
    let mut c = Client::connect(&r.sock());
    c.until(json!({"cmd": "capture.list"}), |d| d == &json!([]));
    assert!(first["id"].as_u64().is_some());
    // Ctrl-C on the CLI stops and closes the file.
    let g = r.dir.join("int.pcapng");
    let cli = r.capture(&["--port", "p0", "-w", &g.display().to_string()]);
    c.until(json!({"cmd": "capture.list"}), |d| {
        d.as_array().is_some_and(|a| a.len() == 1)
    });
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(cli.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let o = wait_output(cli);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 frames"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let bytes = std::fs::read(&g).unwrap();
    assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "a pcapng section");
    if tshark() {
        assert!(read_back(&g).is_empty());
    }
    // Still answering, and it stops cleanly.
    assert!(c.ok(json!({"cmd": "ports"})).is_array());
    drop(c);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let t0 = Instant::now();
    let st = loop {
        if let Some(s) = r.child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < BOUND, "hairpin run did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st.code(), Some(0));
}
