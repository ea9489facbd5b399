//! `hairpin vm associate|deassociate|migrate` end to end: two `hairpin run`
//! processes over a veth pair between two network namespaces (`hpv-` names),
//! an edge whose uplink has `evb = "station"` and a bridge with
//! `evb = "bridge"` and a `[[vsi_type]]`. The VMs are announced at run time
//! over the edge's control socket (the CLI), and checked over both control
//! sockets (`hairpin show vsi --json`).
//!
//! Needs root (namespaces, AF_PACKET); prints "skipped: <why>" and passes
//! otherwise. Processes are killed by PID and the namespaces removed by a
//! Drop guard, also when an assertion fails.

mod ns_common;
use ns_common::{ip, ok, poll, tool};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const HAIRPIN: &str = env!("CARGO_BIN_EXE_hairpin");
const VM: &str = "02:00:00:00:03:0a";
const UUID: &str = "6ba7b810-9dad-11d1-80b4-00c04fd430e0";

/// Two namespaces joined by a veth, a hairpin in each; all gone on drop.
struct Lab {
    dir: PathBuf,
    ns: Vec<String>,
    procs: Vec<Child>,
}

impl Lab {
    /// Namespaces `ns` (any left from a killed run are removed first).
    fn new(tag: &str, ns: &[&str]) -> Lab {
        for n in ns {
            let _ = Command::new(tool("ip").unwrap())
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
        let dir = std::env::temp_dir().join(format!("hpv-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            dir,
            ns: ns.iter().map(|n| n.to_string()).collect(),
            procs: Vec::new(),
        };
        for n in ns {
            ip(&["netns", "add", n]);
            ok(n, &["ip", "link", "set", "lo", "up"]);
            ok(n, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            ok(
                n,
                &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            );
        }
        lab
    }

    /// A veth `ia` (in `a`) – `ib` (in `b`), both up.
    fn veth(&self, a: &str, ia: &str, b: &str, ib: &str) {
        ip(&[
            "link", "add", ia, "netns", a, "type", "veth", "peer", "name", ib, "netns", b,
        ]);
        ok(a, &["ip", "link", "set", ia, "up"]);
        ok(b, &["ip", "link", "set", ib, "up"]);
    }

    /// `hairpin run` in `ns` with `cfg`; returns its control socket path.
    fn hairpin(&mut self, ns: &str, cfg: &str) -> PathBuf {
        let path = self.dir.join(format!("{ns}.toml"));
        let sock = self.dir.join(format!("{ns}.sock"));
        std::fs::write(&path, cfg).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("{ns}.log"))).unwrap();
        let child = Command::new(tool("ip").unwrap())
            .args(["netns", "exec", ns, HAIRPIN, "run", "--config"])
            .arg(&path)
            .arg("--control-socket")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hairpin");
        self.procs.push(child);
        let up = poll(10.0, || {
            std::os::unix::net::UnixStream::connect(&sock)
                .ok()
                .map(|_| ())
        });
        assert!(up.is_some(), "no control socket: {}", self.log(ns));
        sock
    }

    fn log(&self, ns: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{ns}.log"))).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in self.procs.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.ns {
            let _ = Command::new(tool("ip").unwrap())
                .args(["netns", "del", n])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `hairpin ARGS --control-socket SOCK --json`: Ok(reply) or Err(stderr).
fn cli(sock: &Path, args: &[&str]) -> Result<Value, String> {
    let o = Command::new(HAIRPIN)
        .args(args)
        .arg("--control-socket")
        .arg(sock)
        .arg("--json")
        .output()
        .unwrap();
    if o.status.success() {
        let s = String::from_utf8_lossy(&o.stdout);
        let line = s.lines().last().unwrap_or_default();
        Ok(serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {s}")))
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// The VSI table (`show vsi`) of the switch at `sock`.
fn vsis(sock: &Path) -> Vec<Value> {
    let v = cli(sock, &["show", "vsi"]).expect("show vsi");
    // One reply object per table: {"vsi": {...}} or the table itself.
    let t = if v.get("vsi").is_some() {
        &v["vsi"]
    } else {
        &v
    };
    t["vsis"].as_array().cloned().unwrap_or_default()
}

/// A bridge whose port `hv` is on `ifname` and, when given, port `hv2` on `ifname2`.
fn bridge_cfg(ifname: &str, ifname2: Option<&str>) -> String {
    let second = ifname2.map_or(String::new(), |i| {
        format!(
            "[[port]]\nname = \"hv2\"\nbackend = \"afpacket:{i}\"\nmode = \"trunk\"\nvlans = []\nevb = \"bridge\"\nreflective_relay = \"negotiate\"\n"
        )
    });
    format!(
        r#"
[switch]
role = "bridge"
workers = [0]
mac = "02:aa:00:00:00:01"
idle_sleep_us = 50
pool_size = 2048

[evb]
r = 3
rte = 10
rwd = 15
rka = 17

[policy.web]
default = "deny"
[[policy.web.rule]]
action = "permit"
ethertype = "arp"

[[port]]
name = "hv"
backend = "afpacket:{ifname}"
mode = "trunk"
vlans = []
evb = "bridge"
reflective_relay = "negotiate"

[[vsi_type]]
id = 5
version = 1
vlan = 100
policy = "web"
"#
    ) + &second
}

fn edge_cfg(ifname: &str) -> String {
    format!(
        r#"
[switch]
role = "edge-vepa"
workers = [0]
idle_sleep_us = 50
pool_size = 2048

[evb]
r = 3
rte = 10
rwd = 15
rka = 17

[[port]]
name = "up"
backend = "afpacket:{ifname}"
uplink = true
mode = "trunk"
vlans = []
evb = "station"

[[port]]
name = "vm1"
backend = "ring"
mode = "access"

[[port]]
name = "vm2"
backend = "ring"
mode = "access"
"#
    )
}

#[test]
fn vm_associate_migrate_deassociate_between_two_hairpins() {
    if !hairpin::port::afpacket::is_root() {
        println!("skipped: not root (network namespaces and AF_PACKET need it)");
        return;
    }
    if tool("ip").is_none() || tool("sysctl").is_none() {
        println!("skipped: ip (iproute2) or sysctl (procps) not found");
        return;
    }
    let (en, bn) = ("hpv-edge", "hpv-br");
    let mut lab = Lab::new("vm", &[en, bn]);
    lab.veth(en, "hpv-e0", bn, "hpv-b0");
    let bs = lab.hairpin(bn, &bridge_cfg("hpv-b0", None));
    let es = lab.hairpin(en, &edge_cfg("hpv-e0"));
    let assoc = |name: &str, port: &str, mac: &str| {
        cli(
            &es,
            &[
                "vm",
                "associate",
                name,
                "--mac",
                mac,
                "--port",
                port,
                "--type-id",
                "5",
                "--uuid",
                UUID,
            ],
        )
    };
    // Bad input: each error names the field.
    for (port, mac, field) in [
        ("nope", VM, "port"),
        ("up", VM, "port"),
        ("vm1", "02:00:00:00:03", "mac"),
        ("vm1", "01:00:5e:00:00:01", "mac"),
    ] {
        let e = assoc("a", port, mac).unwrap_err();
        assert!(
            e.contains(&format!("vm.associate: {field}")) || e.contains(&format!("\"{field}\"")),
            "{e}"
        );
    }
    let e = cli(&es, &["vm", "deassociate", "ghost"]).unwrap_err();
    assert!(e.contains("name: no VM \"ghost\""), "{e}");
    let e = cli(&es, &["vm", "migrate", "ghost", "--to", "vm2"]).unwrap_err();
    assert!(e.contains("name: no VM \"ghost\""), "{e}");
    let e = cli(
        &bs,
        &[
            "vm",
            "associate",
            "a",
            "--mac",
            VM,
            "--port",
            "hv",
            "--type-id",
            "5",
            "--uuid",
            UUID,
        ],
    )
    .unwrap_err();
    assert!(e.contains("not in the EVB station role"), "{e}");
    // Associate (VID 0): the bridge installs the VM with type 5's VLAN and
    // policy; the answer carries the VLAN it assigned, and the edge applies it.
    // (Retried while the bridge's EVB TLV is not yet in: no reply then.)
    let r = poll(15.0, || assoc("a", "vm1", VM).ok()).unwrap_or_else(|| {
        panic!(
            "no association: {}\n{}",
            lab.log(en),
            assoc("a", "vm1", VM).unwrap_err()
        )
    });
    assert_eq!(
        (&r["name"], &r["status"], &r["port"], &r["vlan"]),
        (
            &Value::from("a"),
            &Value::from("associated"),
            &Value::from("vm1"),
            &Value::from(100)
        ),
        "{r}"
    );
    let b = poll(5.0, || vsis(&bs).into_iter().next()).expect("VM on the bridge");
    assert_eq!(
        (
            &b["mac"],
            &b["vlan"],
            &b["uuid"],
            &b["port"],
            &b["policy"],
            &b["state"]
        ),
        (
            &Value::from(VM),
            &Value::from(100),
            &Value::from(UUID),
            &Value::from("hv"),
            &Value::from("web"),
            &Value::from("associated")
        ),
        "{b}"
    );
    let e = vsis(&es);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (&e[0]["mac"], &e[0]["vlan"], &e[0]["port"], &e[0]["state"]),
        (
            &Value::from(VM),
            &Value::from(100),
            &Value::from("vm1"),
            &Value::from("associated-by-bridge")
        ),
        "{e:?}"
    );
    // A VSI type the bridge's store does not know: refused, nothing installed.
    let e = cli(
        &es,
        &[
            "vm",
            "associate",
            "b",
            "--mac",
            "02:00:00:00:03:0b",
            "--port",
            "vm2",
            "--type-id",
            "9",
            "--uuid",
            "6ba7b810-9dad-11d1-80b4-00c04fd430e1",
        ],
    )
    .unwrap_err();
    assert!(
        e.contains("name: VM \"b\" ended: the bridge refused it"),
        "{e}"
    );
    assert_eq!(vsis(&es).len(), 1, "{:?}", vsis(&es));
    assert_eq!(vsis(&bs).len(), 1, "{:?}", vsis(&bs));
    let e = cli(&es, &["vm", "deassociate", "b"]).unwrap_err();
    assert!(
        e.contains("name: no VM \"b\""),
        "refused VMs are dropped: {e}"
    );
    // Migrate to vm2 (Associate with the M bit): same VLAN and policy, the
    // edge state moves from vm1 to vm2.
    let e = cli(&es, &["vm", "migrate", "a", "--to", "vm1"]).unwrap_err();
    assert!(
        e.contains("to_port: VM \"a\" is already behind \"vm1\""),
        "{e}"
    );
    let r = cli(&es, &["vm", "migrate", "a", "--to", "vm2"]).expect("migrate");
    assert_eq!(
        (&r["status"], &r["port"], &r["vlan"], &r["migrated_from"]),
        (
            &Value::from("associated"),
            &Value::from("vm2"),
            &Value::from(100),
            &Value::from("vm1")
        ),
        "{r}"
    );
    let e = vsis(&es);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (&e[0]["port"], &e[0]["vlan"]),
        (&Value::from("vm2"), &Value::from(100))
    );
    let b = vsis(&bs);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(
        (&b[0]["mac"], &b[0]["policy"]),
        (&Value::from(VM), &Value::from("web"))
    );
    // Back to vm1, with the CLI's text output.
    let o = Command::new(HAIRPIN)
        .args(["vm", "migrate", "a", "--to", "vm1", "--control-socket"])
        .arg(&es)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "a: associated on vm1, VLAN 100 (from vm2)",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(vsis(&es)[0]["port"], "vm1");
    // De-associate: gone on both sides.
    let r = cli(&es, &["vm", "deassociate", "a"]).expect("deassociate");
    assert_eq!(r["status"], "deassociated", "{r}");
    assert!(
        poll(5.0, || vsis(&bs).is_empty().then_some(())).is_some(),
        "still on the bridge: {:?}",
        vsis(&bs)
    );
    assert!(vsis(&es).is_empty(), "{:?}", vsis(&es));
    let e = cli(&es, &["vm", "deassociate", "a"]).unwrap_err();
    assert!(e.contains("name: no VM \"a\""), "{e}");
}

/// Migration between two edges on two bridge ports: associate on the new
/// edge, then de-associate on the old one; the bridge's VSI moves from `hv`
/// to `hv2` with its VLAN and policy, and the old edge's De-Associate does
/// not remove it.
#[test]
fn vm_moves_between_two_edges() {
    if !hairpin::port::afpacket::is_root() {
        println!("skipped: not root (network namespaces and AF_PACKET need it)");
        return;
    }
    if tool("ip").is_none() || tool("sysctl").is_none() {
        println!("skipped: ip (iproute2) or sysctl (procps) not found");
        return;
    }
    let (e1, e2, bn) = ("hpv-edge1", "hpv-edge2", "hpv-br2");
    let mut lab = Lab::new("mig", &[e1, e2, bn]);
    lab.veth(e1, "hpv-e1", bn, "hpv-b1");
    lab.veth(e2, "hpv-e2", bn, "hpv-b2");
    let bs = lab.hairpin(bn, &bridge_cfg("hpv-b1", Some("hpv-b2")));
    let s1 = lab.hairpin(e1, &edge_cfg("hpv-e1"));
    let s2 = lab.hairpin(e2, &edge_cfg("hpv-e2"));
    let assoc = |sock: &Path| {
        cli(
            sock,
            &[
                "vm",
                "associate",
                "a",
                "--mac",
                VM,
                "--port",
                "vm1",
                "--type-id",
                "5",
                "--uuid",
                UUID,
            ],
        )
    };
    let r = poll(15.0, || assoc(&s1).ok())
        .unwrap_or_else(|| panic!("no association on edge 1: {}", assoc(&s1).unwrap_err()));
    assert_eq!(r["vlan"], 100, "{r}");
    let on = |port: &str| {
        poll(5.0, || {
            let v = vsis(&bs);
            (v.len() == 1 && v[0]["port"] == port).then(|| v[0].clone())
        })
        .unwrap_or_else(|| panic!("VM not (only) on {port}: {:?}", vsis(&bs)))
    };
    let b = on("hv");
    assert_eq!(
        (&b["vlan"], &b["policy"]),
        (&Value::from(100), &Value::from("web"))
    );
    // The VM starts on edge 2: the bridge moves its VSI to hv2.
    let r = poll(15.0, || assoc(&s2).ok())
        .unwrap_or_else(|| panic!("no association on edge 2: {}", assoc(&s2).unwrap_err()));
    assert_eq!(
        (&r["status"], &r["vlan"]),
        (&Value::from("associated"), &Value::from(100)),
        "{r}"
    );
    let b = on("hv2");
    assert_eq!(
        (&b["mac"], &b["vlan"], &b["uuid"], &b["policy"]),
        (
            &Value::from(VM),
            &Value::from(100),
            &Value::from(UUID),
            &Value::from("web")
        ),
        "{b}"
    );
    // The old edge lets it go; the VSI stays on hv2.
    let r = cli(&s1, &["vm", "deassociate", "a"]);
    assert_eq!(
        r.as_ref().map(|v| v["status"].clone()),
        Ok(Value::from("deassociated")),
        "{r:?}"
    );
    assert!(vsis(&s1).is_empty(), "{:?}", vsis(&s1));
    std::thread::sleep(Duration::from_millis(300));
    let b = on("hv2");
    assert_eq!(b["policy"], "web", "{b} (old edge's deassociate: {r:?})");
    assert_eq!(vsis(&s2).len(), 1, "{:?}", vsis(&s2));
}
