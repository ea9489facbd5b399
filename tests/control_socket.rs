//! The control socket and the Prometheus endpoint of a real `hairpin run` on
//! pcap ports: every command is queried and checked against the frames the
//! pcap inputs sent; bad requests and misbehaving clients get errors or are
//! disconnected while other clients keep being answered.
//! Bounds are generous and only guard against hangs; nothing is timed.

use hairpin::pcap::{PcapReader, PcapWriter};
use hairpin::types::Mac;
use hairpin::wire::build::FrameBuilder;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod sock_common;
use sock_common::{serve_socket, start_worker, Client, RingGen, BOUND};

const WEB1: Mac = Mac([2, 0, 0, 0, 0x10, 1]);
const DB1: Mac = Mac([2, 0, 0, 0, 0x20, 1]);
const OUTSIDE: Mac = Mac([2, 0, 0, 0, 0, 0x77]);
const UNKNOWN: Mac = Mac([2, 0, 0, 0, 0, 0x55]);

/// The test config with another burst size: a reload must refuse it.
fn burst_changed() -> String {
    cfg("hv1", true).replace("idle_sleep_us = 100", "idle_sleep_us = 100\nburst = 7")
}

fn cfg(hv1_name: &str, db_policy: bool) -> String {
    format!(
        r#"
[switch]
role = "bridge"
workers = [0]
idle_sleep_us = 100

[telemetry]
control_socket = "ctl.sock"
prometheus = "127.0.0.1:0"
client_timeout_ms = 2000

[[port]]
name = "{hv1_name}"
backend = "pcap"
pcap_in = "hv1-in.pcap"
pcap_out = "hv1-out.pcap"
mode = "access"
pvid = 10
reflective_relay = true

[[port]]
name = "core"
backend = "pcap"
pcap_in = "core-in.pcap"
pcap_out = "core-out.pcap"
mode = "access"
pvid = 10
[port.egress]
strict = 2

[meter.m]
type = "srtcm"
cir = "1G"
cbs = 1000000

[policy.nodiscard]
default = "permit"
[[policy.nodiscard.rule]]
action = "deny"
proto = "udp"
dst_port = "9"
counter = "discard"

[[vm]]
name = "web1"
mac = "{WEB1}"
vlan = 10
port = "{hv1_name}"
meter = "m"
uuid = "6ba7b810-9dad-11d1-80b4-00c04fd43001"

[[vm]]
name = "db1"
mac = "{DB1}"
vlan = 10
port = "{hv1_name}"
{}
"#,
        if db_policy {
            "policy = \"nodiscard\""
        } else {
            ""
        }
    )
}

fn udp(src: Mac, dst: Mac, dport: u16) -> Vec<u8> {
    FrameBuilder::new().src(src).dst(dst).udp4(
        [10, 0, 0, 1].into(),
        [10, 0, 0, 2].into(),
        1000,
        dport,
    )
}

/// A `hairpin run` child; SIGTERM and wait on drop.
struct Run {
    child: Child,
    dir: PathBuf,
    prom: String,
    _lines: mpsc::Receiver<String>,
}

impl Run {
    fn start(tag: &str, extra: &[&str]) -> Run {
        let dir =
            std::env::temp_dir().join(format!("hairpin-ctlsock-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hs.toml"), cfg("hv1", true)).unwrap();
        let mut w = PcapWriter::create(dir.join("hv1-in.pcap")).unwrap();
        let hv1_frames = [
            udp(WEB1, Mac::BROADCAST, 53),
            udp(WEB1, Mac::BROADCAST, 53),
            udp(DB1, UNKNOWN, 9),
            udp(DB1, UNKNOWN, 9),
            udp(DB1, Mac::BROADCAST, 53),
            vec![0x02; 10], // runt
        ];
        for (i, f) in hv1_frames.iter().enumerate() {
            w.write(1_000_000_000 + i as u64 * 1000, f).unwrap();
        }
        w.flush().unwrap();
        let mut w = PcapWriter::create(dir.join("core-in.pcap")).unwrap();
        w.write(1_000_000_000, &udp(OUTSIDE, Mac::BROADCAST, 53))
            .unwrap();
        w.flush().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hairpin"))
            .args(["run", "--config"])
            .arg(dir.join("hs.toml"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut seen = Vec::new();
        let mut prom = None;
        loop {
            match lines.recv_timeout(BOUND) {
                Ok(l) => {
                    if let Some(a) = l.strip_prefix("hairpin: prometheus endpoint http://") {
                        prom = Some(a.trim_end_matches("/metrics").to_string());
                    }
                    let done = l.starts_with("hairpin: running");
                    seen.push(l);
                    if done {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("no start line; stderr {seen:?}");
                }
            }
        }
        Run {
            child,
            prom: prom.unwrap_or_else(|| panic!("no prometheus line in {seen:?}")),
            dir,
            _lines: lines,
        }
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("ctl.sock")
    }

    /// SIGTERM, then the exit status and stdout.
    fn stop(&mut self) -> (Option<i32>, String) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) },
            0
        );
        let t0 = Instant::now();
        let st = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(t0.elapsed() < BOUND, "hairpin run did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (st.code(), out)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn port<'a>(ports: &'a Value, name: &str) -> &'a Value {
    ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name} in {ports}"))
}

fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn every_command_matches_what_was_sent() {
    let run = Run::start("cmds", &[]);
    let md = std::fs::metadata(run.sock()).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o660);
    let mut c = Client::connect(&run.sock());

    // ports: 6 frames in on hv1, 1 on core.
    let ports = c.until(json!({"cmd": "ports"}), |p| {
        port(p, "hv1")["rx_frames"] == 6 && port(p, "core")["rx_frames"] == 1
    });
    let hv1 = port(&ports, "hv1");
    let core = port(&ports, "core");
    assert_eq!(hv1["link_up"], true);
    let hv1_bytes: usize = 5 * udp(WEB1, UNKNOWN, 9).len() + 10;
    assert_eq!(hv1["rx_bytes"], hv1_bytes);
    // Floods of the three permitted broadcasts go out core; OUTSIDE's broadcast
    // and the three reflected ones go out hv1.
    let core_tx = c.until(json!({"cmd": "ports"}), |p| {
        port(p, "core")["tx_frames"] == 3
    });
    assert_eq!(port(&core_tx, "hv1")["tx_frames"], 4);
    assert_eq!(core["tx_full"], 0);

    // drops: two denied by db1's rule, one runt.
    let d = c.ok(json!({"cmd": "drops"}));
    assert_eq!(d["by_reason"]["acl_deny"], 2, "{d}");
    assert_eq!(d["by_reason"]["runt"], 1, "{d}");
    assert_eq!(d["total"], 3, "{d}");
    // ... charged to the port they arrived on, hv1; summed over ports as the drops command.
    let ports = c.until(json!({"cmd": "ports"}), |p| {
        port(p, "hv1")["drops_total"] == 3
    });
    let hv1 = port(&ports, "hv1");
    assert_eq!(hv1["drops"]["acl_deny"], 2, "{hv1}");
    assert_eq!(hv1["drops"]["runt"], 1, "{hv1}");
    assert_eq!(port(&ports, "core")["drops_total"], 0);
    for (r, n) in d["by_reason"].as_object().unwrap() {
        let sum: u64 = ports
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["drops"][r].as_u64().unwrap())
            .sum();
        assert_eq!(sum, n.as_u64().unwrap(), "{r}: ports {ports} vs drops {d}");
    }

    // cores: one worker on core 0 that received the 7 frames.
    let cores = c.ok(json!({"cmd": "cores"}));
    let w = &cores[0];
    assert_eq!(cores.as_array().unwrap().len(), 1);
    assert_eq!(w["core"], 0);
    assert_eq!(w["rx_frames"], 7);
    assert_eq!(w["drops"], 3);
    let bursts = w["bursts"].as_u64().unwrap();
    assert!((1..=7).contains(&bursts), "{w}");
    // (Floats compared to 1e-12 relative: the JSON round trip may move the last bit.)
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    assert!(
        close(w["frames_per_burst"].as_f64().unwrap(), 7.0 / bursts as f64),
        "{w}"
    );
    let busy = w["busy_cycles"].as_f64().unwrap();
    assert!(busy > 0.0);
    assert!(
        close(w["cycles_per_frame"].as_f64().unwrap(), busy / 7.0),
        "{w}"
    );

    // fdb: web1 and db1 static on hv1, OUTSIDE learned on core.
    let all = c.ok(json!({"cmd": "fdb"}));
    assert_eq!(all["matched"], 3, "{all}");
    let on_core = c.ok(json!({"cmd": "fdb", "port": "core"}));
    let e = &on_core["entries"];
    assert_eq!(e.as_array().unwrap().len(), 1, "{on_core}");
    assert_eq!(e[0]["mac"], OUTSIDE.to_string());
    assert_eq!(e[0]["vlan"], 10);
    assert_eq!(e[0]["static"], false);
    assert!(e[0]["age_ms"].is_u64(), "{on_core}");
    let w1 = c.ok(json!({"cmd": "fdb", "mac": WEB1.to_string()}));
    assert_eq!(w1["entries"][0]["port"], "hv1");
    assert_eq!(w1["entries"][0]["static"], true);
    assert_eq!(w1["entries"][0]["age_ms"], Value::Null);
    assert_eq!(c.ok(json!({"cmd": "fdb", "vlan": 10}))["matched"], 3);
    assert_eq!(c.ok(json!({"cmd": "fdb", "vlan": 20}))["matched"], 0);
    let lim = c.ok(json!({"cmd": "fdb", "limit": 1}));
    assert_eq!(lim["truncated"], true);
    assert_eq!(lim["entries"].as_array().unwrap().len(), 1);
    for bad in [
        json!({"cmd": "fdb", "port": "nope"}),
        json!({"cmd": "fdb", "vlan": 5000}),
        json!({"cmd": "fdb", "mac": "zz"}),
    ] {
        let r = c.raw(&bad.to_string());
        assert_eq!(r["ok"], false, "{bad} → {r}");
        assert!(r["error"].as_str().unwrap().starts_with("fdb:"), "{r}");
    }

    // vsi: both VMs, from the snapshot.
    let v = c.ok(json!({"cmd": "vsi"}));
    assert_eq!(v["generation"], 0);
    let vs = v["vsis"].as_array().unwrap();
    assert_eq!(vs.len(), 2);
    let web = vs.iter().find(|x| x["name"] == "web1").unwrap();
    assert_eq!(web["mac"], WEB1.to_string());
    assert_eq!(web["vlan"], 10);
    assert_eq!(web["port"], "hv1");
    assert_eq!(web["uuid"], "6ba7b810-9dad-11d1-80b4-00c04fd43001");
    assert_eq!(web["policy"], Value::Null);
    assert_eq!(web["meter"], "vm web1");
    assert_eq!(web["state"], "static");
    let db = vs.iter().find(|x| x["name"] == "db1").unwrap();
    assert_eq!(db["policy"], "nodiscard");
    assert_eq!(db["uuid"], Value::Null);

    // acl: db1's deny rule hit twice (also under its counter), its default once.
    let frame_len = udp(DB1, UNKNOWN, 9).len() as u64;
    let acl = c.until(json!({"cmd": "acl"}), |a| {
        a["policy.nodiscard.rule[0] (from-vm)"]["packets"] == 2
    });
    assert_eq!(
        acl["policy.nodiscard.rule[0] (from-vm)"]["bytes"],
        2 * frame_len
    );
    assert_eq!(acl["counter.discard"]["packets"], 2, "{acl}");
    assert_eq!(
        acl["policy.nodiscard.default (from-vm)"]["packets"], 1,
        "{acl}"
    );

    // meters: web1's two frames, all green.
    let m = c.until(json!({"cmd": "meters"}), |m| m["vm web1"]["green"] == 2);
    assert_eq!(m["vm web1"]["yellow"], 0);
    assert_eq!(m["vm web1"]["red"], 0);

    // queues: core's classes sent what the port sent; nothing queued now.
    let q = c.until(json!({"cmd": "queues"}), |q| {
        q["core"].as_array().is_some_and(|cl| {
            cl.iter()
                .map(|x| x["dequeued"].as_u64().unwrap())
                .sum::<u64>()
                == 3
        })
    });
    let classes = q["core"].as_array().unwrap();
    assert_eq!(classes.len(), 8);
    assert!(classes
        .iter()
        .all(|x| x["depth"] == 0 && x["tail_drops"] == 0));
    assert!(q.get("hv1").is_none(), "hv1 has no scheduler: {q}");

    // Prometheus: the same counters.
    let (head, body) = http_get(&run.prom, "/metrics");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert_eq!(
        metric(&body, "hairpin_port_rx_frames_total{port=\"hv1\"}"),
        Some(6.0)
    );
    assert_eq!(
        metric(&body, "hairpin_port_tx_frames_total{port=\"core\"}"),
        Some(3.0)
    );
    assert_eq!(
        metric(&body, "hairpin_drops_total{reason=\"acl_deny\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric(&body, "hairpin_drops_total{reason=\"runt\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&body, "hairpin_drops_total{reason=\"tx_full\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &body,
            "hairpin_port_drops_total{port=\"hv1\",reason=\"acl_deny\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &body,
            "hairpin_port_drops_total{port=\"core\",reason=\"runt\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &body,
            "hairpin_core_rx_frames_total{worker=\"0\",core=\"0\"}"
        ),
        Some(7.0)
    );
    assert_eq!(metric(&body, "hairpin_fdb_entries"), Some(3.0));
    assert_eq!(
        metric(
            &body,
            "hairpin_acl_rule_hits_total{rule=\"counter.discard\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &body,
            "hairpin_meter_frames_total{meter=\"vm web1\",color=\"green\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(&body, "hairpin_queue_depth{port=\"core\",class=\"0\"}"),
        Some(0.0)
    );
    for l in body.lines().filter(|l| !l.starts_with('#')) {
        let (series, v) = l.rsplit_once(' ').unwrap();
        assert!(series.starts_with("hairpin_"), "{l}");
        v.parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value in {l:?}"));
    }
    let (head, _) = http_get(&run.prom, "/nope");
    assert!(head.starts_with("HTTP/1.0 404"), "{head}");

    // reload: a change that cannot be applied live (the burst size) is
    // refused with the reason; a policy change applies.
    std::fs::write(run.dir.join("hs.toml"), burst_changed()).unwrap();
    let r = c.raw(r#"{"cmd":"reload"}"#);
    assert_eq!(r["ok"], false, "{r}");
    let why = r["error"].as_str().unwrap();
    assert!(
        why.contains("refused") && why.contains("switch.burst"),
        "{why}"
    );
    assert_eq!(c.ok(json!({"cmd": "vsi"}))["generation"], 0);
    std::fs::write(run.dir.join("hs.toml"), cfg("hv1", false)).unwrap();
    assert_eq!(c.ok(json!({"cmd": "reload"}))["generation"], 1);
    let v = c.ok(json!({"cmd": "vsi"}));
    assert_eq!(v["generation"], 1);
    let db = v["vsis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "db1")
        .cloned()
        .unwrap();
    assert_eq!(db["policy"], Value::Null);

    let mut run = run;
    let (code, out) = run.stop();
    assert_eq!(code, Some(0), "{out}");
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["counters"]["rx_pkts"], 7);
    assert!(!run.sock().exists(), "the socket file is removed at exit");
    let n = PcapReader::open(run.dir.join("core-out.pcap"))
        .unwrap()
        .count();
    assert_eq!(n, 3);
}

#[test]
fn bad_requests_and_bad_clients_never_stick() {
    let mut run = Run::start("bad", &[]);
    let mut c = Client::connect(&run.sock());
    for (req, want) in [
        ("{not json", "malformed JSON"),
        ("[1,2]", "JSON object"),
        (r#"{"cmd": 7}"#, "\"cmd\""),
        (r#"{"nocmd": 1}"#, "\"cmd\""),
        (r#"{"cmd": "frobnicate"}"#, "unknown command"),
    ] {
        let r = c.raw(req);
        assert_eq!(r["ok"], false, "{req} → {r}");
        assert!(r["error"].as_str().unwrap().contains(want), "{req} → {r}");
    }
    // The connection still works after errors.
    c.ok(json!({"cmd": "drops"}));

    // Oversize: more than 64 KiB without a newline → an error, then closed.
    let mut big = UnixStream::connect(run.sock()).unwrap();
    big.set_read_timeout(Some(BOUND)).unwrap();
    big.write_all(&vec![b'x'; 70 * 1024]).unwrap();
    let mut rd = BufReader::new(big);
    let mut r = String::new();
    rd.read_line(&mut r).unwrap();
    let first: Value = serde_json::from_str(&r).unwrap();
    assert_eq!(first["ok"], false);
    assert!(
        first["error"].as_str().unwrap().contains("65536"),
        "{first}"
    );
    // Closed after the error (EOF, or a reset for the bytes it never read).
    r.clear();
    assert!(matches!(rd.read_line(&mut r), Ok(0) | Err(_)), "{r}");

    // A client that sends requests and never reads is cut off once its
    // replies cannot be written (client_timeout_ms = 2000), while others are served.
    let mut deaf = UnixStream::connect(run.sock()).unwrap();
    deaf.set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let req = b"{\"cmd\":\"drops\"}\n".repeat(1000);
    let mut sent = 0usize;
    let t0 = Instant::now();
    while t0.elapsed() < BOUND {
        match deaf.write_all(&req) {
            Ok(()) => sent += 1000,
            Err(_) => break, // the server stopped reading or closed
        }
        c.ok(json!({"cmd": "ports"}));
    }
    assert!(
        t0.elapsed() < BOUND,
        "the server read {sent} requests without a stop"
    );
    // Its socket is closed by the server: reading drains what was written, then EOF.
    // (How many replies made it into the socket buffers before the cut
    // depends on the machine's load, so only the cut itself is checked.)
    deaf.set_read_timeout(Some(BOUND)).unwrap();
    let mut replies = 0usize;
    let mut rd = BufReader::new(deaf);
    let mut l = String::new();
    let t_read = Instant::now();
    let closed = loop {
        l.clear();
        match rd.read_line(&mut l) {
            Ok(0) => break true,
            Err(e) => {
                break e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
            }
            Ok(_) => replies += 1,
        }
    };
    assert!(
        closed && t_read.elapsed() < BOUND,
        "the deaf client was not cut off ({replies} replies to {sent} requests)"
    );
    assert!(replies <= sent, "{replies} replies to {sent} requests");
    // A client that connects and sends nothing is closed after the timeout.
    let mut idle = UnixStream::connect(run.sock()).unwrap();
    idle.set_read_timeout(Some(BOUND)).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(idle.read(&mut b).unwrap_or(0), 0);
    // And the switch still answers.
    let mut c2 = Client::connect(&run.sock());
    assert_eq!(c2.ok(json!({"cmd": "drops"}))["by_reason"]["runt"], 1);
    let (code, out) = run.stop();
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn cli_socket_path_overrides_and_must_work() {
    // --control-socket beats the config's path.
    let dir = std::env::temp_dir().join(format!("hairpin-ctlsock-{}-cli", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let alt = dir.join("alt.sock");
    let mut run = Run::start("override", &["--control-socket", alt.to_str().unwrap()]);
    assert!(!run.sock().exists());
    let mut c = Client::connect(&alt);
    c.ok(json!({"cmd": "cores"}));
    // A second switch on the same socket is refused, and the first keeps it.
    let second = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .args(["run", "--config"])
        .arg(run.dir.join("hs.toml"))
        .args(["--seconds", "1", "--control-socket"])
        .arg(&alt)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another process is serving it"), "{err}");
    c.ok(json!({"cmd": "cores"}));
    let (code, _) = run.stop();
    assert_eq!(code, Some(0));
    // A path that cannot be created is an error naming it.
    std::fs::write(dir.join("file"), b"").unwrap();
    let bad = dir.join("file").join("x.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .args(["run", "--config"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/configs/bridge.toml"
        ))
        .args(["--seconds", "1", "--control-socket"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&*bad.to_string_lossy()), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn cli(args: &[&str], sock: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .args(args)
        .arg("--control-socket")
        .arg(sock)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn stats_and_show_commands() {
    let mut run = Run::start("cli", &[]);
    let sock = run.sock();
    let mut c = Client::connect(&sock);
    c.until(json!({"cmd": "ports"}), |p| {
        port(p, "hv1")["rx_frames"] == 6
    });
    c.until(json!({"cmd": "acl"}), |a| {
        a.as_object().is_some_and(|m| !m.is_empty())
    });

    // --json gives the socket's data.
    let (code, out, err) = cli(&["show", "drops", "--json"], &sock);
    assert_eq!(code, Some(0), "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d, c.ok(json!({"cmd": "drops"})));
    assert_eq!(d["by_reason"]["acl_deny"], 2);

    // Tables: one row per entry, filters passed through.
    let (code, out, err) = cli(&["show", "fdb", "--port", "core"], &sock);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "== fdb");
    assert!(lines[1].starts_with("mac"), "{out}");
    assert!(lines[2].starts_with(&OUTSIDE.to_string()), "{out}");
    assert!(lines[2].contains(" core "), "{out}");
    assert_eq!(lines.iter().filter(|l| !l.is_empty()).count(), 3, "{out}");

    let (code, out, _) = cli(&["stats"], &sock);
    assert_eq!(code, Some(0));
    for t in ["== ports", "== cores", "== drops"] {
        assert!(out.contains(t), "{out}");
    }
    let hv1 = out.lines().find(|l| l.starts_with("hv1 ")).unwrap();
    let cells: Vec<&str> = hv1.split_whitespace().collect();
    assert_eq!(cells[..3], ["hv1", "up", "6"], "{hv1}");
    assert!(cells.contains(&"acl_deny=2,runt=1"), "{hv1}");
    assert!(out
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["runt", "1"]));

    for (what, needle) in [
        ("vsi", "6ba7b810-9dad-11d1-80b4-00c04fd43001"),
        ("acl", "counter.discard"),
        ("meters", "vm web1"),
        ("queues", "core"),
        ("cores", "frames/burst"),
    ] {
        let (code, out, err) = cli(&["show", what], &sock);
        assert_eq!(code, Some(0), "{what}: {err}");
        assert!(out.contains(needle), "{what}: {out}");
    }

    // --watch with --count: N refreshes, rates from the second on (all 0/s: the inputs are done).
    let (code, out, err) = cli(
        &["show", "ports", "--json", "--watch", "0.2", "--count", "2"],
        &sock,
    );
    assert_eq!(code, Some(0), "{err}");
    let samples: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0]["ports"]["rates"], json!({}));
    assert_eq!(samples[1]["ports"]["rates"]["hv1"]["rx_frames"], 0.0);
    let (code, out, _) = cli(&["show", "drops", "--watch", "0.1", "--count", "2"], &sock);
    assert_eq!(code, Some(0));
    assert_eq!(out.matches("== drops").count(), 2);
    assert!(out.contains("frames/s"), "{out}");

    // Errors: filters on the wrong table, --count without --watch, refused reload, no switch.
    let (code, _, err) = cli(&["show", "vsi", "--vlan", "10"], &sock);
    assert_eq!(code, Some(1));
    assert!(err.contains("show fdb"), "{err}");
    let (code, _, err) = cli(&["show", "ports", "--count", "2"], &sock);
    assert_eq!(code, Some(1));
    assert!(err.contains("--watch"), "{err}");
    std::fs::write(run.dir.join("hs.toml"), burst_changed()).unwrap();
    let (code, _, err) = cli(&["reload"], &sock);
    assert_eq!(code, Some(1));
    assert!(err.contains("refused"), "{err}");
    std::fs::write(run.dir.join("hs.toml"), cfg("hv1", true)).unwrap();
    let (code, out, err) = cli(&["reload"], &sock);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("generation 1"), "{out}");
    let (code, _, err) = cli(&["stats"], &run.dir.join("none.sock"));
    assert_eq!(code, Some(1));
    assert!(err.contains("none.sock"), "{err}");
    let (code, _) = run.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn prometheus_refuses_what_it_does_not_serve() {
    let mut run = Run::start("prom", &[]);
    let ask = |req: &[u8]| {
        let mut s = std::net::TcpStream::connect(&run.prom).unwrap();
        s.set_read_timeout(Some(BOUND)).unwrap();
        let _ = s.write_all(req);
        let mut r = Vec::new();
        let _ = s.read_to_end(&mut r);
        String::from_utf8_lossy(&r).into_owned()
    };
    assert!(ask(b"POST /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 405"));
    let mut huge = b"GET /metrics HTTP/1.0\r\nX: ".to_vec();
    huge.extend(vec![b'a'; 10_000]);
    assert!(ask(&huge).starts_with("HTTP/1.0 431"));
    // A scraper that connects and says nothing is dropped after the timeout; scrapes go on.
    let idle = std::net::TcpStream::connect(&run.prom).unwrap();
    let r = ask(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(r.starts_with("HTTP/1.0 200"), "{r}");
    assert!(r.contains("# TYPE hairpin_drops_total counter"), "{r}");
    drop(idle);
    let (code, _) = run.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn metric_names_are_documented() {
    use hairpin::buf::Pool;
    use hairpin::config::Config;
    use hairpin::runtime::Instance;
    use hairpin::stats::SharedCounters;
    use hairpin::telemetry::{prom, View, WorkerView};
    use std::sync::{Arc, Mutex};
    let cfg = Config::parse(
        "[switch]\nworkers = [0]\npool_size = 64\nhugepages = \"off\"\n[[port]]\nname = \"a\"\n[[port]]\nname = \"b\"\n",
    )
    .unwrap();
    let pool = Arc::new(Pool::new(64, 2048).unwrap());
    let inst = Instance::new(cfg, pool).unwrap();
    let (host, _) = mpsc::channel();
    let view = View {
        ports: vec!["a".into(), "b".into()],
        workers: vec![WorkerView {
            core: Some(0),
            shared: Arc::new(SharedCounters::new(2)),
        }],
        fdb: inst.switch.fdb.clone(),
        cell: inst.switch.cell.clone(),
        clock: hairpin::util::Clock::new(),
        host: Mutex::new(host),
        started: Instant::now(),
        vm: None,
        capture: None,
    };
    let text = prom::render(&view);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    let mut n = 0;
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap();
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} is not in docs/operations.md"
            );
            n += 1;
        }
    }
    assert!(n > 30, "{n} families");
    // Without published counters every port and reason is still there, at 0.
    assert_eq!(
        metric(&text, "hairpin_port_rx_frames_total{port=\"b\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "hairpin_drops_total{reason=\"queue_full\"}"),
        Some(0.0)
    );
    // Every command of the socket is documented too.
    for c in hairpin::telemetry::COMMANDS {
        assert!(
            doc.contains(&format!("| `{c}` |")),
            "command {c} is not in docs/operations.md"
        );
    }
}

#[test]
fn queries_while_forwarding_in_the_library_runtime() {
    use hairpin::buf::Pool;
    use hairpin::config::Config;
    use hairpin::port::ring::RingQueue;
    use hairpin::runtime::{self, Instance};
    use hairpin::telemetry::{View, WorkerView};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    const N: u64 = 50_000;
    let cfg = Config::parse(
        "[switch]\nworkers = [0]\nidle_sleep_us = 100\npool_size = 2048\nring_depth = 256\nhugepages = \"off\"\n\
         [[port]]\nname = \"a\"\n[[port]]\nname = \"b\"\n",
    )
    .unwrap();
    let pool = Arc::new(Pool::new(2048, 2048).unwrap());
    let mut inst = Instance::new(cfg, pool.clone()).unwrap();
    let (task, _punt) = inst.task(0).unwrap();
    let peers: Vec<RingQueue> = inst
        .peers
        .iter_mut()
        .map(|p| p.as_mut().unwrap().take(0).unwrap())
        .collect();
    let (host, _) = mpsc::channel();
    let view = Arc::new(View {
        ports: vec!["a".into(), "b".into()],
        workers: vec![WorkerView {
            core: None,
            shared: task.shared.clone(),
        }],
        fdb: inst.switch.fdb.clone(),
        cell: inst.switch.cell.clone(),
        clock: hairpin::util::Clock::new(),
        host: Mutex::new(host),
        started: Instant::now(),
        vm: None,
        capture: None,
    });
    let dir = std::env::temp_dir().join(format!("hairpin-ctlsock-{}-lib", std::process::id()));
    let (sock, tstop, srv) = serve_socket(&dir, view);
    let (stop, running) = start_worker(task, hairpin::util::Clock::new());

    // Queries of every command, as fast as they are answered, while frames flow.
    let qstop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let (qs, qa, qsock) = (qstop.clone(), answered.clone(), sock.clone());
    let querier = std::thread::spawn(move || {
        let mut c = Client::connect(&qsock);
        let mut last = 0u64;
        while !qs.load(Ordering::Relaxed) {
            for cmd in [
                "ports", "cores", "drops", "fdb", "vsi", "acl", "meters", "queues",
            ] {
                let d = c.ok(json!({"cmd": cmd}));
                if cmd == "ports" {
                    let rx = port(&d, "a")["rx_frames"].as_u64().unwrap();
                    assert!(rx >= last, "rx_frames went back from {last} to {rx}");
                    last = rx;
                }
                qa.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    // B speaks once (learned), then N unicast frames A → B.
    let (a, b) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
    let first = udp(b, Mac::BROADCAST, 53);
    let uni = udp(a, b, 53);
    let mut g = RingGen::new(peers, pool.clone());
    g.send(1, &first);
    let t0 = Instant::now();
    while g.got[0] < 1 {
        assert!(t0.elapsed() < BOUND);
        g.drain();
    }
    for _ in 0..N {
        g.send(0, &uni);
    }
    // Wait until the socket shows every frame in, and each one out or dropped.
    let mut c = Client::connect(&sock);
    let t0 = Instant::now();
    let (ports, drops) = loop {
        g.drain();
        let p = c.ok(json!({"cmd": "ports"}));
        let d = c.ok(json!({"cmd": "drops"}));
        let tx_b = port(&p, "b")["tx_frames"].as_u64().unwrap();
        if port(&p, "a")["rx_frames"] == N && tx_b + d["total"].as_u64().unwrap() == N {
            break (p, d);
        }
        assert!(
            t0.elapsed() < BOUND,
            "socket never showed all frames: {p} {d}"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    qstop.store(true, Ordering::Relaxed);
    querier.join().unwrap();
    assert!(
        answered.load(Ordering::Relaxed) >= 8,
        "the querier was answered"
    );
    stop.store(true, Ordering::Relaxed);
    let tasks = running.join();
    let t = runtime::totals(tasks.iter().flatten());
    // What the socket said is what the worker counted.
    assert_eq!(t.ports[0].rx_pkts, N);
    assert_eq!(
        t.ports[1].tx_pkts,
        port(&ports, "b")["tx_frames"].as_u64().unwrap()
    );
    assert_eq!(t.core.total_drops(), drops["total"].as_u64().unwrap());
    assert_eq!(
        t.core.tx_pkts + t.core.total_drops(),
        t.core.rx_pkts + t.core.flood_copies
    );
    let fdb = c.ok(json!({"cmd": "fdb", "mac": b.to_string()}));
    assert_eq!(fdb["entries"][0]["port"], "b");
    tstop.store(true, Ordering::Relaxed);
    srv.join();
    assert!(!sock.exists());
    g.drain();
    drop(tasks);
    let _ = std::fs::remove_dir_all(&dir);
}

/// CPUs a thread may run on, from /proc (`Cpus_allowed_list`, e.g. "1-3,5").
fn allowed_cpus(status: &str) -> Vec<usize> {
    let l = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    let mut v = Vec::new();
    for part in l.split(',') {
        match part.split_once('-') {
            Some((a, b)) => v.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap()),
            None => v.push(part.parse().unwrap()),
        }
    }
    v
}

#[test]
fn telemetry_threads_avoid_the_worker_core() {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if cores.len() < 2 || !cores.iter().any(|c| c.id == 0) {
        println!("skipped: needs core 0 and at least one other core");
        return;
    }
    let mut run = Run::start("pin", &[]);
    let mut c = Client::connect(&run.sock()); // a client thread exists while connected
    let pid = run.child.id();
    let names = [
        "hp-worker0",
        "hp-ctlsock",
        "hp-ctlclient",
        "hp-prometheus",
        "hairpin",
    ];
    let mut seen = std::collections::BTreeMap::new();
    let t0 = Instant::now();
    while !names.iter().all(|n| seen.contains_key(*n)) && t0.elapsed() < BOUND {
        c.ok(json!({"cmd": "drops"})); // keeps the client's thread alive
        for e in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let p = e.unwrap().path();
            let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            let Ok(status) = std::fs::read_to_string(p.join("status")) else {
                continue;
            };
            seen.insert(name.trim().to_string(), allowed_cpus(&status));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen["hp-worker0"], vec![0], "{seen:?}");
    // The telemetry threads and the run thread (which answers their device-counter
    // and reload jobs).
    for t in ["hp-ctlsock", "hp-ctlclient", "hp-prometheus", "hairpin"] {
        let cpus = seen
            .get(t)
            .unwrap_or_else(|| panic!("no thread {t} in {seen:?}"));
        assert!(
            !cpus.contains(&0),
            "{t} may run on the worker core: {cpus:?}"
        );
    }
    let (code, _) = run.stop();
    assert_eq!(code, Some(0));
}
