//! `hairpin lab --mode qbg --edges 2` and `hairpin lab vm start|stop|migrate`
//! end to end: two hairpin edges in the EVB station role, each on its own
//! port of a hairpin bridge (`evb = "bridge"`, a `[[vsi_type]]` with policy
//! `web`). A VM gets its VLAN and policy from the bridge, moves to the other
//! edge and keeps them: ping to the outside host still works and the ACL
//! still denies ICMP to VM2 (its deny counter grows).
//!
//! Root only (else "skipped: <why>"). The lab runs with
//! `HAIRPIN_LAB_PREFIX=hpv-` and its own `HAIRPIN_LAB_DIR`, so it never
//! touches the `hp-` namespaces of `hairpin lab` or tests/lab_e2e.rs; the
//! guard runs `lab down` for that prefix, also when an assertion fails.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const HAIRPIN: &str = env!("CARGO_BIN_EXE_hairpin");
const PREFIX: &str = "hpv-";

struct Guard {
    dir: PathBuf,
}

impl Guard {
    fn hp(&self, args: &[&str]) -> Output {
        Command::new(HAIRPIN)
            .args(args)
            .env("HAIRPIN_LAB_PREFIX", PREFIX)
            .env("HAIRPIN_LAB_DIR", &self.dir)
            .output()
            .expect("run hairpin")
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.hp(args);
        let t = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "hairpin {args:?}: {t}\n{}", self.logs());
        t
    }
    fn logs(&self) -> String {
        let mut s = String::new();
        for n in ["edge1", "edge2", "bridge"] {
            let t = std::fs::read_to_string(self.dir.join(format!("{n}.log"))).unwrap_or_default();
            let l: Vec<_> = t.lines().collect();
            s += &format!(
                "== {n}.log\n{}\n",
                l[l.len().saturating_sub(15)..].join("\n")
            );
        }
        s
    }
    /// `show vsi` of the bridge.
    fn bridge_vsis(&self) -> Vec<Value> {
        let sock = self.dir.join("bridge.sock");
        let o = self.ok(&[
            "show",
            "vsi",
            "--json",
            "--control-socket",
            sock.to_str().unwrap(),
        ]);
        let v: Value = serde_json::from_str(o.lines().last().unwrap()).unwrap();
        let t = if v.get("vsi").is_some() {
            &v["vsi"]
        } else {
            &v
        };
        t["vsis"].as_array().cloned().unwrap_or_default()
    }
    fn acl_json(&self) -> String {
        let sock = self.dir.join("bridge.sock");
        self.ok(&[
            "show",
            "acl",
            "--json",
            "--control-socket",
            sock.to_str().unwrap(),
        ])
    }
    /// Wait (workers publish rule hits every few thousand polls, at most 5 s)
    /// until the packets of `rule` exceed `n`; the new count.
    fn acl_above(&self, rule: &str, n: u64) -> u64 {
        let t0 = Instant::now();
        loop {
            let c = self.acl(rule);
            if c > n {
                return c;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{rule} did not count past {n}: {}",
                self.acl_json()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    /// Packets of the bridge's ACL rules whose name starts with `rule`.
    fn acl(&self, rule: &str) -> u64 {
        let sock = self.dir.join("bridge.sock");
        let o = self.ok(&[
            "show",
            "acl",
            "--json",
            "--control-socket",
            sock.to_str().unwrap(),
        ]);
        let v: Value = serde_json::from_str(o.lines().last().unwrap()).unwrap();
        let t = if v.get("acl").is_some() {
            &v["acl"]
        } else {
            &v
        };
        t.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(rule))
            .map(|(_, c)| c["packets"].as_u64().unwrap_or(0))
            .sum()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.hp(&["lab", "down"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ping(ns: &str, ip: &str, n: u32) -> u32 {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n", "-q", "-c"])
        .arg(n.to_string())
        .args(["-i", "0.2", "-W", "1", ip])
        .output()
        .expect("ping");
    let s = String::from_utf8_lossy(&o.stdout);
    s.split(',')
        .find_map(|p| p.trim().strip_suffix(" received"))
        .and_then(|x| x.trim().parse().ok())
        .unwrap_or(0)
}

/// Ping until one reply comes (the first frames may meet a cold FDB/ARP), at most `secs`.
fn reachable(ns: &str, ip: &str, secs: u64) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if ping(ns, ip, 1) == 1 {
            return true;
        }
    }
    false
}

#[test]
fn vm_gets_its_policy_from_the_bridge_and_keeps_it_across_edges() {
    if !hairpin::port::afpacket::is_root() {
        println!("skipped: not root (network namespaces and AF_PACKET need it)");
        return;
    }
    for t in ["ip", "ping", "sysctl"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            println!("skipped: {t} not found");
            return;
        }
    }
    let g = Guard {
        dir: std::env::temp_dir().join(format!("hpv-lab-{}", std::process::id())),
    };
    std::fs::create_dir_all(&g.dir).unwrap();
    let _ = g.hp(&["lab", "down"]); // a killed earlier run
    let cfg = g.dir.join("lab.toml");
    std::fs::write(
        &cfg,
        "[lab]\nvsi_policy = \"web\"\n\n[policy.web]\ndefault = \"permit\"\n\
         [[policy.web.rule]]\naction = \"deny\"\nproto = \"icmp\"\ndst_ip = \"10.77.0.2\"\n",
    )
    .unwrap();
    let cfgs = cfg.to_str().unwrap().to_string();
    g.ok(&[
        "lab", "up", "--mode", "qbg", "--edges", "2", "--vms", "2", "--config", &cfgs,
    ]);
    // Start both VMs behind edge 1; the edge's EVB exchange with the bridge
    // may still be under way, so the first start is retried a few times.
    let t0 = Instant::now();
    loop {
        let o = g.hp(&["lab", "vm", "start", "vm1"]);
        if o.status.success() {
            let t = String::from_utf8_lossy(&o.stdout);
            assert!(t.contains("vm1 runs behind edge1, VLAN 100"), "{t}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "vm1 did not start: {}{}",
            String::from_utf8_lossy(&o.stderr),
            g.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    g.ok(&["lab", "vm", "start", "vm2"]);
    let e = g.hp(&["lab", "vm", "start", "vm1"]);
    assert!(!e.status.success(), "started twice");
    // The bridge has vm1 on hv1 in VLAN 100 with policy web.
    let v = g.bridge_vsis();
    let vm1 = v
        .iter()
        .find(|x| x["mac"] == hairpin::lab::vm_mac(1))
        .unwrap_or_else(|| panic!("vm1 not on the bridge: {v:?}"));
    assert_eq!(
        (&vm1["port"], &vm1["vlan"], &vm1["policy"]),
        (&Value::from("hv1"), &Value::from(100), &Value::from("web")),
        "{vm1}"
    );
    // Traffic: the outside host (VLAN 100 on the bridge) answers; ICMP to vm2 is denied.
    assert!(
        reachable("hpv-vm1", "10.77.0.254", 10),
        "vm1 -> outside\n{}",
        g.logs()
    );
    let denied0 = g.acl("policy.web.rule[0]");
    assert_eq!(ping("hpv-vm1", "10.77.0.2", 2), 0, "ICMP to vm2 is denied");
    let denied1 = g.acl_above("policy.web.rule[0]", denied0);
    // Migrate vm1 to edge 2: the bridge moves it to hv2, same VLAN and policy.
    let t = g.ok(&["lab", "vm", "migrate", "vm1", "--to", "2"]);
    assert!(t.contains("vm1 runs behind edge2, VLAN 100"), "{t}");
    let v = g.bridge_vsis();
    let vm1 = v
        .iter()
        .find(|x| x["mac"] == hairpin::lab::vm_mac(1))
        .unwrap_or_else(|| panic!("vm1 not on the bridge: {v:?}"));
    assert_eq!(
        (&vm1["port"], &vm1["vlan"], &vm1["policy"]),
        (&Value::from("hv2"), &Value::from(100), &Value::from("web")),
        "{vm1}"
    );
    assert!(
        reachable("hpv-vm1", "10.77.0.254", 10),
        "vm1 -> outside after the move\n{}",
        g.logs()
    );
    assert_eq!(
        ping("hpv-vm1", "10.77.0.2", 2),
        0,
        "still denied after the move"
    );
    g.acl_above("policy.web.rule[0]", denied1);
    // Stop: gone from the bridge.
    g.ok(&["lab", "vm", "stop", "vm1"]);
    let v = g.bridge_vsis();
    assert!(
        v.iter().all(|x| x["mac"] != hairpin::lab::vm_mac(1)),
        "vm1 still on the bridge: {v:?}"
    );
    let e = g.hp(&["lab", "vm", "migrate", "vm1", "--to", "1"]);
    assert!(!e.status.success(), "a stopped VM does not migrate");
}
