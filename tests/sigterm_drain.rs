//! SIGTERM under traffic drains: `hairpin run` on pcap ports whose input is a
//! FIFO the test keeps writing to, stopped by SIGTERM while frames flow. Every
//! frame the switch received is accounted for (transmitted, punted or
//! dropped by reason), every transmitted frame is in the output files, and
//! the pool is whole. Nothing is timed; bounds only guard against hangs.

use hairpin::pcap::{PcapReader, PcapWriter};
use hairpin::types::Mac;
use hairpin::wire::build::FrameBuilder;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(30);

const CFG: &str = r#"
[switch]
workers = [0]
idle_sleep_us = 100
pool_size = 1024
hugepages = "off"
[telemetry]
control_socket = "ctl.sock"
[[port]]
name = "in"
backend = "pcap"
pcap_in = "in.fifo"
[[port]]
name = "out1"
backend = "pcap"
pcap_out = "out1.pcap"
[[port]]
name = "out2"
backend = "pcap"
pcap_out = "out2.pcap"
"#;

/// The input cycles through: a broadcast (flooded to out1 and out2), a runt
/// (dropped `runt`), an unknown unicast (flooded too).
fn pattern() -> [Vec<u8>; 3] {
    let a = Mac([0x02, 0, 0, 0, 0, 0x0a]);
    let b = Mac([0x02, 0, 0, 0, 0, 0x0b]);
    [
        FrameBuilder::new().src(a).dst(Mac::BROADCAST).raw(),
        FrameBuilder::new().src(a).dst(b).raw()[..10].to_vec(),
        FrameBuilder::new().src(a).dst(b).raw(),
    ]
}

#[test]
fn sigterm_under_traffic_accounts_for_every_frame() {
    let dir = std::env::temp_dir().join(format!("hairpin-sigterm-drain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("hairpin.toml");
    std::fs::write(&cfg, CFG).unwrap();
    let fifo = dir.join("in.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");

    // Writer: frames into the FIFO until told to stop or the switch closes it
    // (EPIPE: the switch exited). Opening blocks until the switch opens it.
    let stop_w = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let (sw, wn, wpath) = (stop_w.clone(), written.clone(), fifo.clone());
    let writer = std::thread::spawn(move || {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&wpath)
            .unwrap();
        let Ok(mut w) = PcapWriter::new(f) else {
            return;
        };
        let frames = pattern();
        let mut i = 0usize;
        while !sw.load(Ordering::Relaxed) {
            if w.write(1_000_000_000, &frames[i % 3]).is_err() {
                return;
            }
            i += 1;
            wn.store(i as u64, Ordering::Relaxed);
            if i % 64 == 0 && w.flush().is_err() {
                return;
            }
        }
        let _ = w.flush();
    });

    let mut child = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
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
    let t0 = Instant::now();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("hairpin: running"))
    {
        match lines.recv_timeout(BOUND) {
            Ok(l) => seen.push(l),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no start line on stderr; got {seen:?}");
            }
        }
    }
    // Traffic is flowing: wait until a good part of it was written (the
    // switch reads as fast as the FIFO fills), then SIGTERM mid-stream.
    while written.load(Ordering::Relaxed) < 20_000 && t0.elapsed() < BOUND {
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > BOUND * 2 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hairpin run did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop_w.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let out = out_thread.join().unwrap();
    err_thread.join().unwrap();
    seen.extend(lines.try_iter());
    assert_eq!(status.code(), Some(0), "exit {status}; stderr {seen:?}");
    let j: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"));

    // The pool is whole.
    assert_eq!(j["pool"]["available"], j["pool"]["capacity"], "{out}");
    // Every received frame: transmitted (once per copy), punted or dropped by reason.
    let c = &j["counters"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"));
    let rx = n(&c["rx_pkts"]);
    assert!(rx > 0, "{out}");
    assert_eq!(
        rx + n(&c["flood_copies"]),
        n(&c["tx_pkts"]) + n(&c["punted"]) + n(&c["drops_total"]),
        "{out}"
    );
    assert_eq!(n(&j["ports"]["in"]["rx_pkts"]), rx);
    // In order from one port: `rx` frames of the 3-frame cycle.
    let (k, rem) = (rx / 3, rx % 3);
    let forwarded = 2 * k + u64::from(rem > 0);
    let runts = k + u64::from(rem == 2);
    assert_eq!(n(&c["drops"]["runt"]), runts, "{out}");
    assert_eq!(n(&c["drops_total"]), runts, "{out}");
    assert_eq!(n(&j["ports"]["in"]["drops"]["runt"]), runts, "{out}");
    // Each output port transmitted every forwarded frame, and its file holds them all.
    let frames = pattern();
    for p in ["out1", "out2"] {
        assert_eq!(n(&j["ports"][p]["tx_pkts"]), forwarded, "{p}: {out}");
        let r = PcapReader::open(dir.join(format!("{p}.pcap"))).unwrap();
        let mut got = 0u64;
        for (i, rec) in r.enumerate() {
            let rec = rec.unwrap();
            let want = if i % 2 == 0 { &frames[0] } else { &frames[2] };
            assert_eq!(&rec.1[..], &want[..], "{p}: record {i}");
            got += 1;
        }
        assert_eq!(got, forwarded, "{p}.pcap holds every transmitted frame");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
