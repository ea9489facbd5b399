//! `hairpin pktgen --attach` on real ports: AF_PACKET and AF_XDP on a veth
//! pair (the generator on both ends), through a `hairpin run` bridge with
//! reflective relay on AF_PACKET, and on a DPDK `net_ring` vdev in
//! `--no-huge` mode (feature `dpdk`). Every run is a bounded stream; the
//! checks: received = sent, no loss, duplicates or reordering, and a
//! non-empty latency histogram per stream. The veth tests need root (else
//! "skipped: not root"); interfaces are named `hpg-*` and removed after.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: plain query.
    unsafe { libc::geteuid() == 0 }
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hpg-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A veth pair `a` <-> `b` in the root namespace, up, without IPv6 (no
/// router solicitations on the wire); deleted on drop.
struct Veth(String);

impl Veth {
    fn new(a: &str, b: &str) -> Veth {
        let _ = Command::new("ip")
            .args(["link", "del", a])
            .stderr(Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["link", "add", a, "type", "veth", "peer", "name", b])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip link add {a} type veth peer name {b}");
        let v = Veth(a.to_string());
        for i in [a, b] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{i}/disable_ipv6"), "1");
            assert!(Command::new("ip")
                .args(["link", "set", i, "up"])
                .status()
                .unwrap()
                .success());
        }
        v
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// Stops a child process we started (SIGTERM, then waits) if it is still held.
struct StopChild<'a>(&'a mut Option<std::process::Child>);

impl Drop for StopChild<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

const TWO_PORTS: &str = r#"
[switch]
role = "bridge"
workers = [0]
[[port]]
name = "hv1"
mode = "trunk"
vlans = [10]
[[port]]
name = "hv2"
mode = "access"
pvid = 10
[[vm]]
name = "a"
mac = "02:00:00:00:00:01"
vlan = 10
port = "hv1"
[[vm]]
name = "b"
mac = "02:00:00:00:00:02"
vlan = 10
port = "hv2"
"#;

fn pktgen(args: &[&str]) -> (i32, serde_json::Value, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .arg("pktgen")
        .args(args)
        .args(["--json", "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "pktgen output is not JSON ({e}): {}\n{err}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    (o.status.code().unwrap_or(-1), v, err)
}

/// Every stream: `count` sent, all received once and in order, latency recorded.
fn assert_clean(v: &serde_json::Value, streams: usize, count: u64) {
    let ss = v["streams"].as_array().expect("streams");
    assert_eq!(ss.len(), streams, "{v}");
    assert_eq!(v["partial"], false, "{v}");
    for s in ss {
        assert_eq!(s["offered"].as_u64(), Some(count), "{s}");
        assert_eq!(s["refused"].as_u64(), Some(0), "{s}");
        assert_eq!(s["received"].as_u64(), Some(count), "{s}");
        assert_eq!(s["lost"].as_u64(), Some(0), "{s}");
        assert_eq!(s["duplicates"].as_u64(), Some(0), "{s}");
        assert_eq!(s["reordered"].as_u64(), Some(0), "{s}");
        assert_eq!(s["wrong_port"].as_u64(), Some(0), "{s}");
        let l = &s["latency"];
        assert_eq!(l["samples"].as_u64(), Some(count), "latency histogram: {s}");
        let (min, max) = (l["min_ns"].as_u64().unwrap(), l["max_ns"].as_u64().unwrap());
        assert!(min > 0 && min <= max, "{s}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn veth_to_veth_afpacket_and_afxdp() {
    if !is_root() {
        eprintln!("skipped: not root (veth pairs and AF_PACKET/AF_XDP sockets need root)");
        return;
    }
    let d = tmp("veth");
    let cfg = write(&d, "dut.toml", TWO_PORTS);
    let (a, b) = (
        format!("hpg-a{}", std::process::id()),
        format!("hpg-b{}", std::process::id()),
    );
    let _veth = Veth::new(&a, &b);
    for backend in ["afpacket", "afxdp"] {
        let (at1, at2) = (format!("hv1={backend}:{a}"), format!("hv2={backend}:{b}"));
        let (code, v, err) = pktgen(&[
            "--config",
            cfg.to_str().unwrap(),
            "--attach",
            &at1,
            "--attach",
            &at2,
            // Tagged a->b (hv1 is a trunk), untagged IMIX b->a.
            "--stream",
            "src=a,dst=b,pcp=3",
            "--stream",
            "src=b,dst=a,size=imix",
            "--count",
            "3000",
            "--rate",
            "30kpps",
        ]);
        assert_eq!(code, 0, "{backend}: {err}\n{v}");
        assert!(v.get("switch").is_none(), "no switch in process: {v}");
        assert_clean(&v, 2, 3000);
    }
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn through_hairpin_run_with_reflective_relay() {
    if !is_root() {
        eprintln!("skipped: not root (veth pairs and AF_PACKET sockets need root)");
        return;
    }
    let d = tmp("rr");
    let (h, g) = (
        format!("hpg-h{}", std::process::id()),
        format!("hpg-g{}", std::process::id()),
    );
    let _veth = Veth::new(&h, &g);
    // One bridge port with reflective relay; both VMs behind it.
    let br = format!(
        "[switch]\nrole = \"bridge\"\nworkers = [0]\nidle_sleep_us = 20\n\
         [[port]]\nname = \"hv1\"\nbackend = \"afpacket:{h}\"\nmode = \"trunk\"\nvlans = [10]\nreflective_relay = true\n\
         [[vm]]\nname = \"a\"\nmac = \"02:00:00:00:00:01\"\nvlan = 10\nport = \"hv1\"\n\
         [[vm]]\nname = \"b\"\nmac = \"02:00:00:00:00:02\"\nvlan = 10\nport = \"hv1\"\n"
    );
    let cfg = write(&d, "br.toml", &br);
    let sock = d.join("ctl.sock");
    let mut run = Some(
        Command::new(env!("CARGO_BIN_EXE_hairpin"))
            .args(["run", "--config"])
            .arg(&cfg)
            .args(["--seconds", "20", "--control-socket"])
            .arg(&sock)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Whatever fails below, the bridge process is stopped (by its pid).
    let guard = StopChild(&mut run);
    // The control socket appears once the workers run.
    let t0 = Instant::now();
    while !sock.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let at = format!("hv1=afpacket:{g}");
    let cfgs = cfg.to_str().unwrap();
    // The bridge's port is up once a probe comes back whole.
    let t0 = Instant::now();
    loop {
        let (_, v, _) = pktgen(&[
            "--config",
            cfgs,
            "--attach",
            &at,
            "--stream",
            "src=a,dst=b",
            "--count",
            "10",
            "--rate",
            "1kpps",
        ]);
        if v["received"].as_u64() == Some(10) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the bridge never reflected a probe: {v}"
        );
    }
    // Bounded and paced well below what the bridge's AF_PACKET ring absorbs
    // while its worker is descheduled on a busy machine.
    let r = pktgen(&[
        "--config",
        cfgs,
        "--attach",
        &at,
        "--stream",
        "src=a,dst=b",
        "--stream",
        "src=b,dst=a,size=512",
        "--count",
        "2000",
        "--rate",
        "10kpps",
    ]);
    let child = guard.0.take().unwrap();
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let (code, v, err) = r;
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "hairpin run output ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(code, 0, "{err}\n{v}");
    if v["lost"].as_u64() != Some(0) {
        eprintln!("the bridge's counters: {}", s["counters"]);
    }
    assert_clean(&v, 2, 2000);
    assert!(
        s["counters"]["reflected"].as_u64().unwrap() >= 4010,
        "the bridge reflected every frame: {}",
        s["counters"]
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// A `net_ring` vdev loops what it sends back to its RX queue: both VMs
/// on the attached port, EAL in `--no-huge` mode, in a subprocess (one EAL
/// per process).
#[cfg(feature = "dpdk")]
#[test]
fn dpdk_net_ring_no_huge() {
    let d = tmp("dpdk");
    let cfg = write(
        &d,
        "ring.toml",
        "[switch]\nrole = \"bridge\"\nworkers = [0]\npool_size = 4096\n\
         [dpdk]\nrx_desc = 256\ntx_desc = 256\n\
         [[port]]\nname = \"hv1\"\nmode = \"trunk\"\nvlans = [10]\n\
         [[vm]]\nname = \"a\"\nmac = \"02:00:00:00:00:01\"\nvlan = 10\nport = \"hv1\"\n\
         [[vm]]\nname = \"b\"\nmac = \"02:00:00:00:00:02\"\nvlan = 10\nport = \"hv1\"\n",
    );
    let prefix = format!("--file-prefix=hpg-pktgen{}", std::process::id());
    let (code, v, err) = pktgen(&[
        "--config",
        cfg.to_str().unwrap(),
        "--attach",
        "hv1=dpdk:net_ring0",
        "--eal=--no-huge",
        "--eal=-m",
        "--eal=256",
        "--eal=--no-pci",
        "--eal=-l",
        "--eal=0",
        &format!("--eal={prefix}"),
        "--stream",
        "src=a,dst=b,pcp=1",
        "--stream",
        "src=b,dst=a,size=1518",
        "--count",
        "5000",
        "--rate",
        "100kpps",
    ]);
    assert_eq!(code, 0, "{err}\n{v}");
    assert_clean(&v, 2, 5000);
    for r in ["/var/run/dpdk", "/run/dpdk"] {
        let p = Path::new(r).join(prefix.trim_start_matches("--file-prefix="));
        assert!(!p.exists(), "EAL runtime dir left behind: {}", p.display());
    }
    std::fs::remove_dir_all(d).unwrap();
}
