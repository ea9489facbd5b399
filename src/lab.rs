//! `hairpin lab`: VMs as network namespaces behind a hypervisor edge and a
//! hairpin bridge, all on veth pairs on this machine (root only).
//!
//! ```text
//!  hp-vm1 [hp-eth0 10.77.0.1] ─veth─ hp-vm1 ┐
//!  hp-vm2 [hp-eth0 10.77.0.2] ─veth─ hp-vm2 ├ hp-hv: edge  hp-up ─veth─ hp-swhv ┐ hp-sw: bridge
//!  …                                        ┘                                   │ (reflective relay on hv)
//!                                      hp-out [hp-eth0 10.77.0.254] ─veth─ hp-swout ┘
//! ```
//!
//! - `--mode vepa` / `veb`: the edge is a hairpin `edge-vepa` / `edge-veb`
//!   instance on AF_PACKET ports in namespace `hp-hv`; VMs are untagged on
//!   their veths, the edge tags VLAN 10 toward the bridge.
//! - `--mode macvtap`: no edge instance; each VM's interface is a kernel
//!   macvlan in `vepa` mode on `hp-up` (what libvirt's macvtap `vepa` does),
//!   untagged up to the bridge.
//!
//! The bridge (namespace `hp-sw`) has port `hv` toward the hypervisor (with
//! `reflective_relay`) and port `out` toward namespace `hp-out`. Every VM is a
//! `[[vm]]` of the bridge on `hv`, so source guard and per-VM policies and
//! meters apply there. Instances are `hairpin run` child processes (own
//! process group), pinned, with `idle_sleep_us` on; their generated configs,
//! logs (`NAME.log`: stderr, `NAME.json`: the final counters) and the state
//! file live in [`state_dir`] (`/run/hairpin-lab`, or `$HAIRPIN_LAB_DIR`).
//!
//! Everything the lab creates is named `hp-…`; `lab down` removes every lab
//! namespace (`hp-vmN`, `hp-hv`, `hp-sw`, `hp-out`), every root-namespace
//! link named `hp-…`, every process inside those namespaces and every
//! instance whose command line names the state dir — also after a crash, and
//! doing nothing when nothing is left.
//!
//! `--mode qbg --edges N`: N hairpin `edge-vepa` instances (`hp-hv1..N`)
//! whose uplinks run EVB as stations, each on its own EVB port `hvE` of the
//! bridge, which has a `[[vsi_type]]` (VLAN [`QBG_VLAN`], `lab.vsi_policy`).
//! VMs have one interface per edge; [`vm_start`], [`vm_stop`] and
//! [`vm_migrate`] associate them through the edges' control sockets and move
//! their address. `$HAIRPIN_LAB_PREFIX` ([`prefix`]) renames everything.
//!
//! `--config F` is a TOML file with an optional `[lab]` table (see
//! [`LabOpts`]) and `[policy.*]` / `[meter.*]` tables copied into the
//! bridge's config.

use crate::config::Config;
use crate::port::afxdp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Name prefix of everything the lab creates (unless `$HAIRPIN_LAB_PREFIX`
/// names another, see [`prefix`]).
pub const PREFIX: &str = "hp-";

/// The name prefix in use: `$HAIRPIN_LAB_PREFIX` when it is 2 to 5 lowercase
/// letters followed by `-` (e.g. `hpv-`, so a test lab does not collide with
/// a lab on `hp-`), else [`PREFIX`].
pub fn prefix() -> String {
    match std::env::var("HAIRPIN_LAB_PREFIX") {
        Ok(p) if valid_prefix(&p) => p,
        _ => PREFIX.to_string(),
    }
}

fn valid_prefix(p: &str) -> bool {
    p.strip_suffix('-')
        .is_some_and(|r| (2..=5).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_lowercase()))
}

/// `name` with the lab's [`prefix`].
pub fn pn(name: &str) -> String {
    format!("{}{name}", prefix())
}
/// The VMs' subnet (first three octets); VM k is `.k`, the outside host `.254`.
pub const SUBNET: &str = "10.77.0";
/// The VLAN the edge puts the VMs in.
pub const VLAN: u16 = 10;
/// Most VMs `lab up` builds.
pub const MAX_VMS: u32 = 200;
/// `rx_ring` of the bridge's AF_XDP ports unless `lab.rx_ring` says otherwise
/// (16 ms at 0.5 Mpps; 20 MiB of UMEM per port).
pub const BRIDGE_AFXDP_RX_RING: usize = 8192;
/// Most edges of `--mode qbg`.
pub const MAX_EDGES: u32 = 4;
/// `--mode qbg`: the VLAN the bridge's VSI type assigns (and the outside host's).
pub const QBG_VLAN: u16 = 100;
/// `--mode qbg`: the VSI type id (version 1) every VM announces.
pub const QBG_TYPE: u32 = 5;

/// How the hypervisor edge is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// hairpin edge-vepa: everything goes up to the bridge, which reflects it.
    Vepa,
    /// hairpin edge-veb: local switching between VMs on the edge.
    Veb,
    /// The kernel's macvlan in VEPA mode on the uplink (libvirt macvtap `vepa`).
    Macvtap,
    /// 802.1Qbg: `--edges N` hairpin edges in the EVB station role, each on
    /// its own bridge port (`evb = "bridge"`, `[[vsi_type]]`); VMs get their
    /// VLAN and policy from the bridge with `lab vm start|stop|migrate`.
    Qbg,
}

impl Mode {
    /// Parse `vepa | veb | macvtap`.
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "vepa" => Ok(Mode::Vepa),
            "veb" => Ok(Mode::Veb),
            "macvtap" => Ok(Mode::Macvtap),
            "qbg" => Ok(Mode::Qbg),
            _ => Err(format!("--mode: {s:?} is not vepa, veb, macvtap or qbg")),
        }
    }
    /// The name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Vepa => "vepa",
            Mode::Veb => "veb",
            Mode::Macvtap => "macvtap",
            Mode::Qbg => "qbg",
        }
    }
}

/// Per-VM settings in the bridge (`[lab.vm.vmK]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmOpts {
    /// A `[policy.NAME]` of the same file for this VM.
    pub policy: Option<String>,
    /// A `[meter.NAME]` of the same file for everything this VM sends.
    pub meter: Option<String>,
}

/// The `[lab]` table of `--config F`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabOpts {
    /// Reflective relay on the bridge's port toward the hypervisor (default:
    /// on, except in `veb` mode, where the edge switches locally and a
    /// reflected flood would reach the VMs twice).
    #[serde(default)]
    pub reflective_relay: Option<bool>,
    /// `switch.idle_sleep_us` of both instances (default 50).
    #[serde(default = "d_idle")]
    pub idle_sleep_us: u64,
    /// `switch.idle_spin_us` of both instances (default: the switch's).
    #[serde(default = "d_idle_spin")]
    pub idle_spin_us: u64,
    /// Core of the edge's worker (default 0).
    #[serde(default)]
    pub edge_core: Option<usize>,
    /// Core of the bridge's worker (default 1, or 0 on a one-core machine).
    #[serde(default)]
    pub bridge_core: Option<usize>,
    /// Cores of the bridge's workers, one socket per port each joined by
    /// `PACKET_FANOUT` (overrides `bridge_core`).
    #[serde(default)]
    pub bridge_workers: Option<Vec<usize>>,
    /// IP MTU of every lab link (default 1500; up to 9000 for jumbo frames);
    /// the instances get `switch.mtu` = this + 14.
    #[serde(default)]
    pub mtu: Option<usize>,
    /// Port backend of both instances: `afxdp` or `afpacket`. Unset: AF_XDP
    /// where it can carry the lab (one bridge worker and `switch.mtu` within
    /// [`afxdp::MAX_MTU`]), AF_PACKET otherwise (see [`LabOpts::backend`]).
    #[serde(default)]
    pub backend: Option<String>,
    /// `rx_ring` of every port of the instances (default: the backend's).
    #[serde(default)]
    pub rx_ring: Option<usize>,
    /// `xdp_mode` of every AF_XDP port (default `generic`: see
    /// [`LabOpts::port_lines`]).
    #[serde(default)]
    pub xdp_mode: Option<crate::config::XdpMode>,
    /// Per-VM settings, by VM name (`vm1`, `vm2`, …).
    #[serde(default)]
    pub vm: BTreeMap<String, VmOpts>,
    /// `--mode qbg`: the `[policy.NAME]` of the bridge's VSI type (the
    /// policy every VM gets with its VLAN).
    #[serde(default)]
    pub vsi_policy: Option<String>,
}

fn d_idle() -> u64 {
    50
}

fn d_idle_spin() -> u64 {
    crate::config::DEFAULT_IDLE_SPIN_US
}

impl LabOpts {
    /// The links' IP MTU.
    pub fn link_mtu(&self) -> usize {
        self.mtu.unwrap_or(1500)
    }
    /// `switch.mtu` of the instances: the largest untagged frame on the links.
    pub fn switch_mtu(&self) -> usize {
        self.link_mtu() + 14
    }
    /// The port backend of the instances: `lab.backend` when set, otherwise
    /// `afxdp` — it lost no frame on the lab's veths where AF_PACKET's RX
    /// rings overflow, and its RTT is lower (docs/performance.md) — unless
    /// the lab needs what only AF_PACKET does here: frames above
    /// [`afxdp::MAX_MTU`] (no multi-buffer) or several bridge workers on one
    /// veth (`PACKET_FANOUT`; a veth has one RX queue).
    pub fn backend(&self) -> &str {
        match &self.backend {
            Some(b) => b,
            None if self.switch_mtu() > afxdp::MAX_MTU || self.bridge_worker_count() > 1 => {
                "afpacket"
            }
            None => "afxdp",
        }
    }
    /// The per-port lines of every generated port: `rx_ring` when set, and
    /// on AF_XDP `xdp_mode`, `generic` unless `lab.xdp_mode` says otherwise.
    /// On veth, native XDP converts each frame the sender transmits into an
    /// XDP buffer (a second copy) in the sender's softirq, on the sender's
    /// core: the generic hook copies once into the UMEM from the skb, and a
    /// trafgen sender offered 0.71 instead of 0.55–0.62 Mpps through the
    /// bridge (docs/performance.md).
    fn port_lines(&self, rx_ring: Option<usize>) -> String {
        let mut s = rx_ring
            .map(|n| format!("rx_ring = {n}\n"))
            .unwrap_or_default();
        if self.backend() == "afxdp" {
            let m = self.xdp_mode.unwrap_or(crate::config::XdpMode::Generic);
            s += &format!("xdp_mode = \"{}\"\n", m.name());
        }
        s
    }
    /// The edge's ports.
    fn edge_port_lines(&self) -> String {
        self.port_lines(self.rx_ring)
    }
    /// The bridge's ports: as the edge's, but on AF_XDP without
    /// `lab.rx_ring` [`BRIDGE_AFXDP_RX_RING`] frames: the bridge carries
    /// every VM's traffic, and on a 2-core machine its worker shares its core
    /// with the kernel's softirq work (ksoftirqd) for milliseconds at a time,
    /// longer than the default ring holds at 0.5 Mpps.
    fn bridge_port_lines(&self) -> String {
        match self.rx_ring {
            None if self.backend() == "afxdp" => self.port_lines(Some(BRIDGE_AFXDP_RX_RING)),
            r => self.port_lines(r),
        }
    }
    fn bridge_worker_count(&self) -> usize {
        self.bridge_workers.as_ref().map_or(1, Vec::len)
    }
    /// `lab.backend`, `lab.rx_ring` and `lab.xdp_mode` against the rest of
    /// `[lab]`: an error naming the key.
    pub fn check_port_opts(&self) -> Result<(), String> {
        self.check_backend()?;
        if let Some(n) = self.rx_ring {
            crate::config::check_rx_ring(self.backend(), n)
                .map_err(|why| format!("lab.rx_ring: {why} (the ports are {})", self.backend()))?;
        }
        if self.xdp_mode.is_some() && self.backend() != "afxdp" {
            return Err(format!(
                "lab.xdp_mode: only for AF_XDP ports, and this lab's are {}",
                self.backend()
            ));
        }
        Ok(())
    }
    fn check_backend(&self) -> Result<(), String> {
        match self.backend() {
            "afpacket" => Ok(()),
            "afxdp" if self.switch_mtu() > afxdp::MAX_MTU => Err(format!(
                "lab.backend: afxdp carries frames up to {} bytes, lab.mtu {} needs {} (use afpacket)",
                afxdp::MAX_MTU,
                self.link_mtu(),
                self.switch_mtu()
            )),
            "afxdp" if self.bridge_worker_count() > 1 => Err(format!(
                "lab.backend: afxdp binds one socket per RX queue and a lab veth has one, so lab.bridge_workers ({} cores) needs afpacket",
                self.bridge_worker_count()
            )),
            "afxdp" => Ok(()),
            other => Err(format!(
                "lab.backend: \"{other}\" is not a lab backend (afxdp or afpacket)"
            )),
        }
    }
}

impl Default for LabOpts {
    fn default() -> Self {
        LabOpts {
            reflective_relay: None,
            idle_sleep_us: d_idle(),
            idle_spin_us: d_idle_spin(),
            edge_core: None,
            bridge_core: None,
            bridge_workers: None,
            mtu: None,
            backend: None,
            rx_ring: None,
            xdp_mode: None,
            vm: BTreeMap::new(),
            vsi_policy: None,
        }
    }
}

/// One hairpin instance of the lab.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceState {
    /// `edge` or `bridge`.
    pub name: String,
    /// The namespace it runs in.
    pub netns: String,
    /// Its generated config.
    pub config: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
    /// Its stdout (the final counters as JSON).
    pub out: PathBuf,
    /// Process id (0 when not running).
    pub pid: u32,
}

/// What `lab up` built (`state.json` in the state dir).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// Edge mode.
    pub mode: Mode,
    /// Number of VMs.
    pub vms: u32,
    /// The hairpin binary the instances run.
    pub exe: PathBuf,
    /// The instances (edge first when there is one, then the bridge).
    pub instances: Vec<InstanceState>,
    /// `--mode qbg`: number of edges.
    #[serde(default)]
    pub edges: u32,
    /// `--mode qbg`: the edge each started VM sits behind (`vmK` → edge).
    #[serde(default)]
    pub placed: BTreeMap<String, u32>,
}

/// The lab's directory: `$HAIRPIN_LAB_DIR` or `/run/hairpin-lab`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("HAIRPIN_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/hairpin-lab"))
}

fn state_file() -> PathBuf {
    state_dir().join("state.json")
}

/// VM k's MAC address.
pub fn vm_mac(k: u32) -> String {
    format!("02:77:00:00:{:02x}:{:02x}", k >> 8, k & 0xff)
}
/// VM k's IPv4 address.
pub fn vm_ip(k: u32) -> String {
    format!("{SUBNET}.{k}")
}
/// The outside host's IPv4 address.
pub fn outside_ip() -> String {
    format!("{SUBNET}.254")
}
/// The outside host's MAC address.
pub const OUTSIDE_MAC: &str = "02:77:00:00:00:fe";

/// Run a command; its stdout, or an error with the command line and stderr.
fn cmd(args: &[&str]) -> Result<String, String> {
    let o = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !o.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn ip(args: &[&str]) -> Result<String, String> {
    let mut v = vec!["ip"];
    v.extend_from_slice(args);
    cmd(&v)
}

/// True for the names the lab gives its namespaces: `hp-vmN`, `hp-hv`,
/// `hp-sw`, `hp-out`. Other `hp-` namespaces (e.g. the kernel topology of
/// `perf/lab-vs-kernel.sh`) are not the lab's.
pub fn is_lab_netns(n: &str) -> bool {
    let Some(r) = n.strip_prefix(prefix().as_str()) else {
        return false;
    };
    let num = |k: &str| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit());
    matches!(r, "hv" | "sw" | "out")
        || r.strip_prefix("hv").is_some_and(num)
        || r.strip_prefix("vm")
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
}

/// The lab's namespaces that exist now ([`is_lab_netns`]).
pub fn lab_namespaces() -> Vec<String> {
    let out = ip(&["netns", "list"]).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| is_lab_netns(n))
        .map(str::to_string)
        .collect()
}

/// Links in the root namespace whose name starts with [`PREFIX`].
pub fn lab_root_links() -> Vec<String> {
    let out = ip(&["-o", "link", "show"]).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(&prefix()))
        .collect()
}

/// Processes whose command line names the lab's state dir (hairpin instances
/// started by `lab up`, also those a lost state file no longer lists).
pub fn lab_processes() -> Vec<u32> {
    let dir = state_dir();
    let needle = format!("{}/", dir.display());
    let me = std::process::id();
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || !alive(pid) {
            continue;
        }
        let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
        let is_run = args.iter().any(|a| *a == b"run");
        let names_dir = args
            .iter()
            .any(|a| String::from_utf8_lossy(a).starts_with(&needle));
        if is_run && names_dir {
            v.push(pid);
        }
    }
    v
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .map(|(_, r)| !r.starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Send `sig` (e.g. "TERM", "KILL") to `pid`; false if it could not be sent.
fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// SIGTERM, then SIGKILL after `grace`; waits until the process is gone (bounded).
fn stop_pid(pid: u32, grace: Duration) {
    if !alive(pid) {
        return;
    }
    signal(pid, "TERM");
    let t0 = Instant::now();
    while alive(pid) && t0.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        signal(pid, "KILL");
        let t1 = Instant::now();
        while alive(pid) && t1.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Read the state file, if a lab is up.
pub fn load_state() -> Option<State> {
    let s = std::fs::read_to_string(state_file()).ok()?;
    serde_json::from_str(&s).ok()
}

fn save_state(st: &State) -> Result<(), String> {
    let p = state_file();
    std::fs::write(&p, serde_json::to_string_pretty(st).unwrap())
        .map_err(|e| format!("{}: {e}", p.display()))
}

fn need_root() -> Result<(), String> {
    if !crate::port::afpacket::is_root() {
        return Err("hairpin lab needs root (network namespaces, veth, AF_PACKET)".into());
    }
    Ok(())
}

/// Parse `--config F`: the `[lab]` table and the policy/meter tables for the bridge.
pub fn parse_lab_config(text: &str) -> Result<(LabOpts, toml::Table), String> {
    let mut t: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    let lab = match t.remove("lab") {
        Some(v) => {
            let s = toml::to_string(&v).map_err(|e| e.to_string())?;
            let de = toml::Deserializer::new(&s);
            serde_path_to_error::deserialize::<_, LabOpts>(de).map_err(|e| {
                let p = e.path().to_string();
                format!("lab.{p}: {}", e.inner().message())
            })?
        }
        None => LabOpts::default(),
    };
    for k in t.keys() {
        if k != "policy" && k != "meter" {
            return Err(format!(
                "{k}: only [lab], [policy.*] and [meter.*] belong in a lab config"
            ));
        }
    }
    Ok((lab, t))
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The edge instance's config (vepa/veb modes).
pub fn edge_config(mode: Mode, vms: u32, o: &LabOpts) -> String {
    let role = if mode == Mode::Veb {
        "edge-veb"
    } else {
        "edge-vepa"
    };
    let core = o.edge_core.unwrap_or(0);
    let be = o.backend();
    let rr = o.edge_port_lines();
    let mut s = format!(
        "# generated by hairpin lab up --mode {}\n[switch]\nrole = \"{role}\"\nworkers = [{core}]\nidle_sleep_us = {}\nidle_spin_us = {}\npool_size = 4096\nmtu = {}\n\n",
        mode.name(),
        o.idle_sleep_us,
        o.idle_spin_us,
        o.switch_mtu()
    );
    for k in 1..=vms {
        s += &format!(
            "[[port]]\nname = \"vm{k}\"\nbackend = \"{be}:{}\"\n{rr}mode = \"access\"\npvid = {VLAN}\n\n",
            pn(&format!("vm{k}"))
        );
    }
    s += &format!("[[port]]\nname = \"uplink\"\nbackend = \"{be}:{}\"\n{rr}mode = \"trunk\"\nvlans = [{VLAN}]\nuplink = true\n\n", pn("up"));
    for k in 1..=vms {
        s += &format!(
            "[[vm]]\nname = \"vm{k}\"\nmac = \"{}\"\nvlan = {VLAN}\nport = \"vm{k}\"\n\n",
            vm_mac(k)
        );
    }
    s
}

/// The bridge instance's config, with the policies and meters of `extra`.
pub fn bridge_config(
    mode: Mode,
    vms: u32,
    o: &LabOpts,
    extra: &toml::Table,
) -> Result<String, String> {
    let core = o.bridge_core.unwrap_or(if cores() > 1 { 1 } else { 0 });
    let workers = match &o.bridge_workers {
        Some(w) => w
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        None => core.to_string(),
    };
    let be = o.backend();
    let rr = o.bridge_port_lines();
    let hv = if mode == Mode::Macvtap {
        format!("mode = \"access\"\npvid = {VLAN}")
    } else {
        format!("mode = \"trunk\"\nvlans = [{VLAN}]")
    };
    let mut s = format!(
        "[switch]\nrole = \"bridge\"\nworkers = [{workers}]\nidle_sleep_us = {}\nidle_spin_us = {}\npool_size = 4096\nmtu = {}\n\n\
         [[port]]\nname = \"hv\"\nbackend = \"{be}:{}\"\n{rr}{hv}\nreflective_relay = {}\n\n\
         [[port]]\nname = \"out\"\nbackend = \"{be}:{}\"\n{rr}mode = \"access\"\npvid = {VLAN}\n\n",
        o.idle_sleep_us,
        o.idle_spin_us,
        o.switch_mtu(),
        pn("swhv"),
        o.reflective_relay.unwrap_or(mode != Mode::Veb),
        pn("swout")
    );
    for name in o.vm.keys() {
        let ok = name
            .strip_prefix("vm")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|k| (1..=vms).contains(&k));
        if !ok {
            return Err(format!("lab.vm.{name}: no such VM (vm1..vm{vms})"));
        }
    }
    for k in 1..=vms {
        s += &format!(
            "[[vm]]\nname = \"vm{k}\"\nmac = \"{}\"\nvlan = {VLAN}\nport = \"hv\"\n",
            vm_mac(k)
        );
        if let Some(v) = o.vm.get(&format!("vm{k}")) {
            if let Some(p) = &v.policy {
                s += &format!("policy = {}\n", toml::Value::String(p.clone()));
            }
            if let Some(m) = &v.meter {
                s += &format!("meter = {}\n", toml::Value::String(m.clone()));
            }
        }
        s += "\n";
    }
    if !extra.is_empty() {
        s += &toml::to_string(extra).map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "# generated by hairpin lab up --mode {}\n{s}",
        mode.name()
    ))
}

/// Options of `lab up`.
#[derive(Clone, Debug)]
pub struct UpArgs {
    /// Number of VMs (1..=200).
    pub vms: u32,
    /// Edge mode.
    pub mode: Mode,
    /// A lab config (`[lab]`, `[policy.*]`, `[meter.*]`).
    pub config: Option<PathBuf>,
    /// The hairpin binary the instances run (default: this one).
    pub exe: Option<PathBuf>,
    /// `--mode qbg`: number of edges (1..=4); 1 in the other modes.
    pub edges: u32,
}

/// Turn off checksum and segmentation offloads: AF_PACKET must see finished,
/// MTU-sized frames. Features a device lacks are skipped.
fn prep(ns: &str, dev: &str, mtu: usize) -> Result<(), String> {
    ip(&["-n", ns, "link", "set", dev, "mtu", &mtu.to_string()])?;
    no_offload(ns, dev);
    Ok(())
}

fn no_offload(ns: &str, dev: &str) {
    for f in [
        &["tx", "off"][..],
        &["tso", "off", "gso", "off", "gro", "off"][..],
    ] {
        let mut a = vec!["netns", "exec", ns, "ethtool", "-K", dev];
        a.extend_from_slice(f);
        let _ = ip(&a);
    }
}

fn add_ns(ns: &str) -> Result<(), String> {
    ip(&["netns", "add", ns])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    // No IPv6: no router/neighbour solicitations or MLD reports disturbing counts.
    for k in ["all", "default"] {
        ip(&[
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{k}.disable_ipv6=1"),
        ])?;
    }
    Ok(())
}

/// An end host: interface `hp-eth0` in `ns` gets `mac`, `addr`/24 and goes up.
fn host_addr(ns: &str, mac: &str, addr: &str, mtu: usize) -> Result<(), String> {
    ip(&["-n", ns, "link", "set", &pn("eth0"), "address", mac])?;
    ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{addr}/24"),
        "dev",
        &pn("eth0"),
    ])?;
    prep(ns, &pn("eth0"), mtu)?;
    ip(&["-n", ns, "link", "set", &pn("eth0"), "up"])?;
    Ok(())
}

fn build_topology(mode: Mode, vms: u32, edges: u32, mtu: usize) -> Result<(), String> {
    if mode == Mode::Qbg {
        return build_qbg(vms, edges, mtu);
    }
    for ns in [pn("hv"), pn("sw"), pn("out")] {
        add_ns(&ns)?;
    }
    for k in 1..=vms {
        add_ns(&pn(&format!("vm{k}")))?;
    }
    ip(&[
        "-n",
        &pn("hv"),
        "link",
        "add",
        &pn("up"),
        "type",
        "veth",
        "peer",
        "name",
        &pn("swhv"),
        "netns",
        &pn("sw"),
    ])?;
    ip(&[
        "-n",
        &pn("sw"),
        "link",
        "add",
        &pn("swout"),
        "type",
        "veth",
        "peer",
        "name",
        &pn("eth0"),
        "netns",
        &pn("out"),
    ])?;
    for (ns, dev) in [
        (pn("hv"), pn("up")),
        (pn("sw"), pn("swhv")),
        (pn("sw"), pn("swout")),
    ] {
        prep(&ns, &dev, mtu)?;
        ip(&["-n", &ns, "link", "set", &dev, "up"])?;
    }
    host_addr(&pn("out"), OUTSIDE_MAC, &outside_ip(), mtu)?;
    for k in 1..=vms {
        let vns = pn(&format!("vm{k}"));
        match mode {
            Mode::Vepa | Mode::Veb | Mode::Qbg => {
                let hv = pn(&format!("vm{k}"));
                ip(&[
                    "-n",
                    &pn("hv"),
                    "link",
                    "add",
                    &hv,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &pn("eth0"),
                    "netns",
                    &vns,
                ])?;
                prep(&pn("hv"), &hv, mtu)?;
                ip(&["-n", &pn("hv"), "link", "set", &hv, "up"])?;
            }
            Mode::Macvtap => {
                let mv = pn(&format!("mv{k}"));
                ip(&[
                    "-n",
                    &pn("hv"),
                    "link",
                    "add",
                    &mv,
                    "link",
                    &pn("up"),
                    "type",
                    "macvlan",
                    "mode",
                    "vepa",
                ])?;
                ip(&["-n", &pn("hv"), "link", "set", &mv, "netns", &vns])?;
                ip(&["-n", &vns, "link", "set", &mv, "name", &pn("eth0")])?;
            }
        }
        host_addr(&vns, &vm_mac(k), &vm_ip(k), mtu)?;
    }
    Ok(())
}

/// Wait (at most 5 s) until every `hp-` link of the lab's namespaces is
/// operationally up: the kernel reports carrier through linkwatch up to a
/// second after `ip link set up`, and the AF_PACKET ports drop frames
/// (`tx_link_down`) while it has not.
fn wait_links_up() -> Result<(), String> {
    let t0 = Instant::now();
    loop {
        let mut down = Vec::new();
        for ns in lab_namespaces() {
            let out = ip(&["-n", &ns, "-br", "link", "show"]).unwrap_or_default();
            for l in out.lines() {
                let mut w = l.split_whitespace();
                let (Some(dev), Some(state)) = (w.next(), w.next()) else {
                    continue;
                };
                let dev = dev.split('@').next().unwrap_or(dev);
                if dev.starts_with(&prefix()) && state != "UP" {
                    down.push(format!("{ns}/{dev} {state}"));
                }
            }
        }
        if down.is_empty() {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(5) {
            return Err(format!("links did not come up: {}", down.join(", ")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start instance `i` of the state (its config is written already); waits until it runs.
fn spawn(st: &mut State, i: usize) -> Result<(), String> {
    let inst = &mut st.instances[i];
    let log =
        std::fs::File::create(&inst.log).map_err(|e| format!("{}: {e}", inst.log.display()))?;
    let out =
        std::fs::File::create(&inst.out).map_err(|e| format!("{}: {e}", inst.out.display()))?;
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &inst.netns])
        .arg(&st.exe)
        .arg("run")
        .arg("--config")
        .arg(&inst.config)
        .arg("--control-socket")
        .arg(socket(&inst.name))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(log);
    {
        use std::os::unix::process::CommandExt;
        c.process_group(0);
    }
    let child = c
        .spawn()
        .map_err(|e| format!("starting the {} instance: {e}", inst.name))?;
    inst.pid = child.id();
    // `ip netns exec` execs hairpin in place: same pid. The child is not
    // waited for here; `lab down` (or init, once we exit) reaps it.
    drop(child);
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(&inst.log).unwrap_or_default();
        if text.contains("hairpin: running") {
            return Ok(());
        }
        if !alive(inst.pid) || t0.elapsed() > Duration::from_secs(15) {
            let pid = inst.pid;
            inst.pid = 0;
            stop_pid(pid, Duration::from_secs(1));
            let text = std::fs::read_to_string(&inst.log).unwrap_or_default();
            return Err(format!(
                "the {} instance did not start (log {}): {}",
                inst.name,
                inst.log.display(),
                text.trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `hairpin lab up`: build the topology and start the instances. On any
/// failure everything built so far is removed again.
pub fn up(a: &UpArgs) -> Result<State, String> {
    need_root()?;
    if !(1..=MAX_VMS).contains(&a.vms) {
        return Err(format!("--vms: {} is out of range 1..={MAX_VMS}", a.vms));
    }
    let (opts, extra) = match &a.config {
        Some(p) => {
            let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            parse_lab_config(&t).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => (LabOpts::default(), toml::Table::new()),
    };
    if !(576..=9000).contains(&opts.link_mtu()) {
        return Err(format!(
            "lab.mtu: {} is out of range 576..=9000",
            opts.link_mtu()
        ));
    }
    opts.check_port_opts()?;
    if a.mode == Mode::Qbg && !(1..=MAX_EDGES).contains(&a.edges) {
        return Err(format!(
            "--edges: {} is out of range 1..={MAX_EDGES}",
            a.edges
        ));
    }
    // A hairpin edge has a port per VM plus its uplink.
    let edge_max = crate::types::MAX_PORTS as u32 - 1;
    if a.mode != Mode::Macvtap && a.vms > edge_max {
        return Err(format!(
            "--vms: {} is more than a hairpin edge has ports for in --mode {} (at most {edge_max}: a port per VM plus the uplink; --mode macvtap, whose edge is the kernel's, takes up to {MAX_VMS})",
            a.vms,
            a.mode.name()
        ));
    }
    if a.mode != Mode::Qbg && a.edges != 1 {
        return Err("--edges: more than one edge needs --mode qbg".into());
    }
    if load_state().is_some() || !lab_namespaces().is_empty() {
        return Err("a lab is up already (or left over): run `hairpin lab down` first".into());
    }
    let dir = state_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut st = State {
        mode: a.mode,
        vms: a.vms,
        exe: match &a.exe {
            Some(e) => e.clone(),
            None => std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?,
        },
        instances: Vec::new(),
        edges: a.edges,
        placed: BTreeMap::new(),
    };
    let mut configs = Vec::new();
    if a.mode == Mode::Qbg {
        for e in 1..=a.edges {
            configs.push((
                format!("edge{e}"),
                pn(&format!("hv{e}")),
                qbg_edge_config(e, a.vms, &opts),
            ));
        }
        configs.push((
            "bridge".into(),
            pn("sw"),
            qbg_bridge_config(a.edges, &opts, &extra)?,
        ));
    } else {
        if a.mode != Mode::Macvtap {
            configs.push(("edge".into(), pn("hv"), edge_config(a.mode, a.vms, &opts)));
        }
        configs.push((
            "bridge".into(),
            pn("sw"),
            bridge_config(a.mode, a.vms, &opts, &extra)?,
        ));
    }
    for (name, ns, text) in &configs {
        Config::parse(text).map_err(|e| format!("generated {name} config: {e}"))?;
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg, text).map_err(|e| format!("{}: {e}", cfg.display()))?;
        st.instances.push(InstanceState {
            name: name.to_string(),
            netns: ns.to_string(),
            config: cfg,
            log: dir.join(format!("{name}.log")),
            out: dir.join(format!("{name}.json")),
            pid: 0,
        });
    }
    let r = (|| {
        build_topology(a.mode, a.vms, a.edges, opts.link_mtu())?;
        wait_links_up()?;
        save_state(&st)?;
        for i in 0..st.instances.len() {
            let r = spawn(&mut st, i);
            save_state(&st)?;
            r?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        let _ = down();
        return Err(e);
    }
    Ok(st)
}

/// What `lab down` removed.
#[derive(Debug, Default, Serialize)]
pub struct DownReport {
    /// Processes stopped (instances and anything left in the namespaces).
    pub processes: Vec<u32>,
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// Root-namespace links deleted.
    pub links: Vec<String>,
}

/// `hairpin lab down`: stop the instances, kill what runs in the lab's
/// namespaces, delete the namespaces and `hp-` links. Idempotent.
pub fn down() -> Result<DownReport, String> {
    need_root()?;
    let mut rep = DownReport::default();
    let mut pids: Vec<u32> = load_state()
        .map(|s| {
            s.instances
                .iter()
                .map(|i| i.pid)
                .filter(|p| *p != 0)
                .collect()
        })
        .unwrap_or_default();
    // Only pids that still are lab instances (a recycled pid is left alone).
    let ours = lab_processes();
    pids.retain(|p| ours.contains(p));
    for p in ours {
        if !pids.contains(&p) {
            pids.push(p);
        }
    }
    for &p in &pids {
        stop_pid(p, Duration::from_secs(3));
    }
    rep.processes.extend(pids);
    for ns in lab_namespaces() {
        if let Ok(out) = ip(&["netns", "pids", &ns]) {
            for p in out.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
                stop_pid(p, Duration::from_millis(500));
                rep.processes.push(p);
            }
        }
        ip(&["netns", "del", &ns])?;
        rep.namespaces.push(ns);
    }
    for l in lab_root_links() {
        // Deleting one end of a veth removes its peer too; ignore "already gone".
        let _ = ip(&["link", "del", &l]);
        rep.links.push(l);
    }
    let _ = std::fs::remove_file(state_file());
    Ok(rep)
}

/// Stop and start one instance (`edge` or `bridge`) from its config; a
/// crashed (dead) instance is just started.
pub fn restart(name: &str) -> Result<u32, String> {
    need_root()?;
    let mut st = load_state().ok_or("no lab is up (hairpin lab up first)")?;
    let i = st
        .instances
        .iter()
        .position(|x| x.name == name)
        .ok_or_else(|| {
            let names: Vec<_> = st.instances.iter().map(|x| x.name.as_str()).collect();
            format!(
                "{name:?} is not an instance of this lab ({})",
                names.join(", ")
            )
        })?;
    let pid = st.instances[i].pid;
    if pid != 0 && lab_processes().contains(&pid) {
        stop_pid(pid, Duration::from_secs(3));
    }
    st.instances[i].pid = 0;
    let r = spawn(&mut st, i);
    save_state(&st)?;
    r?;
    Ok(st.instances[i].pid)
}

/// `hairpin lab status` as JSON: the state, whether each instance runs, the namespaces.
pub fn status_json() -> serde_json::Value {
    let st = load_state();
    let insts: Vec<_> = st
        .iter()
        .flat_map(|s| s.instances.iter())
        .map(|i| {
            serde_json::json!({
                "name": i.name, "netns": i.netns, "pid": i.pid,
                "running": i.pid != 0 && alive(i.pid),
                "config": i.config, "log": i.log, "counters": i.out,
            })
        })
        .collect();
    serde_json::json!({
        "up": st.is_some(),
        "mode": st.as_ref().map(|s| s.mode.name()),
        "vms": st.as_ref().map(|s| s.vms),
        "dir": state_dir(),
        "instances": insts,
        "namespaces": lab_namespaces(),
        "root_links": lab_root_links(),
        "stray_processes": lab_processes().into_iter()
            .filter(|p| !st.iter().flat_map(|s| s.instances.iter()).any(|i| i.pid == *p))
            .collect::<Vec<_>>(),
    })
}

/// `hairpin lab status` as text.
pub fn status_text() -> String {
    let j = status_json();
    let mut s = String::new();
    if j["up"].as_bool() == Some(true) {
        s += &format!(
            "lab up: mode {}, {} VMs ({SUBNET}.1..{}, outside {}), dir {}\n",
            j["mode"].as_str().unwrap_or("?"),
            j["vms"],
            j["vms"],
            outside_ip(),
            state_dir().display()
        );
    } else {
        s += "no lab is up\n";
    }
    for i in j["instances"].as_array().into_iter().flatten() {
        s += &format!(
            "  {:<7} ns {:<6} pid {:<7} {:<8} config {}  log {}\n",
            i["name"].as_str().unwrap_or(""),
            i["netns"].as_str().unwrap_or(""),
            i["pid"],
            if i["running"].as_bool() == Some(true) {
                "running"
            } else {
                "STOPPED"
            },
            i["config"].as_str().unwrap_or(""),
            i["log"].as_str().unwrap_or("")
        );
    }
    let list = |k: &str| {
        j[k].as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.to_string().trim_matches('"').to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    s += &format!("  namespaces: {}\n", list("namespaces"));
    let links = list("root_links");
    if !links.is_empty() {
        s += &format!("  root-namespace links: {links}\n");
    }
    let stray = list("stray_processes");
    if !stray.is_empty() {
        s += &format!("  stray instances (lab down removes them): {stray}\n");
    }
    s
}

/// An instance's control socket (in the state dir).
pub fn socket(instance: &str) -> PathBuf {
    state_dir().join(format!("{instance}.sock"))
}

/// `--mode qbg`: the VSI instance id of VM `k`.
pub fn vm_uuid(k: u32) -> String {
    format!("6ba7b810-9dad-11d1-80b4-0077000000{:02x}", k & 0xff)
}

/// `--mode qbg`: edge `e`'s config: an `edge-vepa` whose uplink runs EVB
/// as the station; VM ports without a VLAN until the bridge assigns one.
pub fn qbg_edge_config(e: u32, vms: u32, o: &LabOpts) -> String {
    let core = o.edge_core.unwrap_or(0);
    let be = o.backend();
    let rr = o.edge_port_lines();
    let mut s = format!(
        "# generated by hairpin lab up --mode qbg (edge {e})\n[switch]\nrole = \"edge-vepa\"\nworkers = [{core}]\nidle_sleep_us = {}\nidle_spin_us = {}\npool_size = 4096\nmtu = {}\n\n",
        o.idle_sleep_us,
        o.idle_spin_us,
        o.switch_mtu()
    );
    for k in 1..=vms {
        s += &format!(
            "[[port]]\nname = \"vm{k}\"\nbackend = \"{be}:{}\"\n{rr}mode = \"access\"\n\n",
            pn(&format!("vm{k}"))
        );
    }
    s += &format!(
        "[[port]]\nname = \"uplink\"\nbackend = \"{be}:{}\"\n{rr}mode = \"trunk\"\nvlans = []\nuplink = true\nevb = \"station\"\n",
        pn("up")
    );
    s
}

/// `--mode qbg`: the bridge: ports `hv1..hvN` (EVB bridge role, reflective
/// relay negotiated), `out` in [`QBG_VLAN`], VSI type [`QBG_TYPE`] with
/// `lab.vsi_policy`, and the policies and meters of `extra`.
pub fn qbg_bridge_config(edges: u32, o: &LabOpts, extra: &toml::Table) -> Result<String, String> {
    let core = o.bridge_core.unwrap_or(if cores() > 1 { 1 } else { 0 });
    let be = o.backend();
    let rr = o.bridge_port_lines();
    if !o.vm.is_empty() {
        return Err("lab.vm: --mode qbg takes the VMs' policy from the VSI type (lab.vsi_policy), not per VM".into());
    }
    let mut s = format!(
        "# generated by hairpin lab up --mode qbg\n[switch]\nrole = \"bridge\"\nworkers = [{core}]\nidle_sleep_us = {}\nidle_spin_us = {}\npool_size = 4096\nmtu = {}\n\n",
        o.idle_sleep_us,
        o.idle_spin_us,
        o.switch_mtu()
    );
    for e in 1..=edges {
        s += &format!(
            "[[port]]\nname = \"hv{e}\"\nbackend = \"{be}:{}\"\n{rr}mode = \"trunk\"\nvlans = []\nevb = \"bridge\"\nreflective_relay = \"negotiate\"\n\n",
            pn(&format!("swhv{e}"))
        );
    }
    s += &format!(
        "[[port]]\nname = \"out\"\nbackend = \"{be}:{}\"\n{rr}mode = \"access\"\npvid = {QBG_VLAN}\n\n\
         [[vsi_type]]\nid = {QBG_TYPE}\nversion = 1\nvlan = {QBG_VLAN}\n",
        pn("swout")
    );
    if let Some(p) = &o.vsi_policy {
        s += &format!("policy = {}\n", toml::Value::String(p.clone()));
    }
    s += "\n";
    if !extra.is_empty() {
        s += &toml::to_string(extra).map_err(|e| e.to_string())?;
    }
    Ok(s)
}

/// `--mode qbg` topology: edge `e` in namespace `hvE` with its uplink to the
/// bridge's `swhvE`; every VM has one interface per edge (`eth0` to edge 1,
/// `eth1` to edge 2, …), all up with the VM's MAC; the VM's address sits on
/// the interface of the edge it runs behind (set by `lab vm start|migrate`).
fn build_qbg(vms: u32, edges: u32, mtu: usize) -> Result<(), String> {
    add_ns(&pn("sw"))?;
    add_ns(&pn("out"))?;
    for e in 1..=edges {
        let hv = pn(&format!("hv{e}"));
        add_ns(&hv)?;
        let sw = pn(&format!("swhv{e}"));
        ip(&[
            "-n",
            &hv,
            "link",
            "add",
            &pn("up"),
            "type",
            "veth",
            "peer",
            "name",
            &sw,
            "netns",
            &pn("sw"),
        ])?;
        for (ns, dev) in [(hv.clone(), pn("up")), (pn("sw"), sw)] {
            prep(&ns, &dev, mtu)?;
            ip(&["-n", &ns, "link", "set", &dev, "up"])?;
        }
    }
    ip(&[
        "-n",
        &pn("sw"),
        "link",
        "add",
        &pn("swout"),
        "type",
        "veth",
        "peer",
        "name",
        &pn("eth0"),
        "netns",
        &pn("out"),
    ])?;
    prep(&pn("sw"), &pn("swout"), mtu)?;
    ip(&["-n", &pn("sw"), "link", "set", &pn("swout"), "up"])?;
    host_addr(&pn("out"), OUTSIDE_MAC, &outside_ip(), mtu)?;
    for k in 1..=vms {
        let vns = pn(&format!("vm{k}"));
        add_ns(&vns)?;
        for e in 1..=edges {
            let (hv, port, eth) = (pn(&format!("hv{e}")), pn(&format!("vm{k}")), vm_eth(e));
            ip(&[
                "-n", &hv, "link", "add", &port, "type", "veth", "peer", "name", &eth, "netns",
                &vns,
            ])?;
            prep(&hv, &port, mtu)?;
            ip(&["-n", &hv, "link", "set", &port, "up"])?;
            ip(&["-n", &vns, "link", "set", &eth, "address", &vm_mac(k)])?;
            prep(&vns, &eth, mtu)?;
            ip(&["-n", &vns, "link", "set", &eth, "up"])?;
        }
    }
    Ok(())
}

/// `--mode qbg`: the VM's interface toward edge `e`.
pub fn vm_eth(e: u32) -> String {
    pn(&format!("eth{}", e - 1))
}

/// What `lab vm start|stop|migrate` did.
#[derive(Debug, Serialize)]
pub struct VmReport {
    /// The VM.
    pub vm: String,
    /// The edge it now runs behind (None: stopped).
    pub edge: Option<u32>,
    /// The edge's answer(s) (`vm.associate` / `vm.deassociate` data).
    pub replies: Vec<serde_json::Value>,
}

fn qbg_state(name: &str) -> Result<(State, u32), String> {
    need_root()?;
    let st = load_state().ok_or("no lab is up (hairpin lab up --mode qbg first)")?;
    if st.mode != Mode::Qbg {
        return Err(format!(
            "lab vm needs a lab in --mode qbg (this one is {})",
            st.mode.name()
        ));
    }
    let k = name
        .strip_prefix("vm")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|k| (1..=st.vms).contains(k))
        .ok_or_else(|| format!("NAME: {name:?} is not a VM of this lab (vm1..vm{})", st.vms))?;
    Ok((st, k))
}

fn edge_ask(e: u32, req: serde_json::Value) -> Result<serde_json::Value, String> {
    let mut c = crate::app::show::Conn::open(&socket(&format!("edge{e}")))?;
    c.ask(&req).map_err(|m| format!("edge{e}: {m}"))
}

fn associate(e: u32, k: u32) -> Result<serde_json::Value, String> {
    edge_ask(
        e,
        serde_json::json!({"cmd": "vm.associate", "name": format!("vm{k}"), "mac": vm_mac(k),
            "port": format!("vm{k}"), "type_id": QBG_TYPE, "type_version": 1, "uuid": vm_uuid(k)}),
    )
}

fn deassociate(e: u32, k: u32) -> Result<serde_json::Value, String> {
    edge_ask(
        e,
        serde_json::json!({"cmd": "vm.deassociate", "name": format!("vm{k}")}),
    )
}

fn vm_addr(k: u32, e: u32, add: bool) -> Result<(), String> {
    let a = format!("{}/24", vm_ip(k));
    let ns = pn(&format!("vm{k}"));
    ip(&[
        "-n",
        &ns,
        "addr",
        if add { "add" } else { "del" },
        &a,
        "dev",
        &vm_eth(e),
    ])?;
    Ok(())
}

/// `lab vm start NAME [--edge E]`: associate the VM on edge `E` (default 1;
/// the bridge answers with its VLAN and installs its policy), then give the
/// VM its address on the interface toward that edge.
pub fn vm_start(name: &str, edge: Option<u32>) -> Result<VmReport, String> {
    let (mut st, k) = qbg_state(name)?;
    if let Some(e) = st.placed.get(name) {
        return Err(format!("NAME: {name} runs already (behind edge{e})"));
    }
    let e = edge.unwrap_or(1);
    if !(1..=st.edges).contains(&e) {
        return Err(format!(
            "--edge: {e} is not an edge of this lab (1..={})",
            st.edges
        ));
    }
    let r = associate(e, k)?;
    vm_addr(k, e, true)?;
    st.placed.insert(name.to_string(), e);
    save_state(&st)?;
    Ok(VmReport {
        vm: name.into(),
        edge: Some(e),
        replies: vec![r],
    })
}

/// `lab vm stop NAME`: remove the VM's address, de-associate it.
pub fn vm_stop(name: &str) -> Result<VmReport, String> {
    let (mut st, k) = qbg_state(name)?;
    let e = *st
        .placed
        .get(name)
        .ok_or_else(|| format!("NAME: {name} is not running (lab vm start {name})"))?;
    vm_addr(k, e, false)?;
    let r = deassociate(e, k)?;
    st.placed.remove(name);
    save_state(&st)?;
    Ok(VmReport {
        vm: name.into(),
        edge: None,
        replies: vec![r],
    })
}

/// `lab vm migrate NAME --to E`: associate on edge `E` (the bridge moves the
/// VSI to that edge's port with its VLAN and policy), move the VM's address
/// to the interface toward `E`, then de-associate on the old edge.
pub fn vm_migrate(name: &str, to: u32) -> Result<VmReport, String> {
    let (mut st, k) = qbg_state(name)?;
    let from = *st
        .placed
        .get(name)
        .ok_or_else(|| format!("NAME: {name} is not running (lab vm start {name})"))?;
    if !(1..=st.edges).contains(&to) {
        return Err(format!(
            "--to: {to} is not an edge of this lab (1..={})",
            st.edges
        ));
    }
    if to == from {
        return Err(format!("--to: {name} runs behind edge{to} already"));
    }
    let a = associate(to, k)?;
    vm_addr(k, from, false)?;
    vm_addr(k, to, true)?;
    st.placed.insert(name.to_string(), to);
    save_state(&st)?;
    let d = deassociate(from, k)?;
    Ok(VmReport {
        vm: name.into(),
        edge: Some(to),
        replies: vec![a, d],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::XdpMode;

    #[test]
    fn generated_configs_validate() {
        let o = LabOpts::default();
        for m in [Mode::Vepa, Mode::Veb] {
            let c = Config::parse(&edge_config(m, 3, &o)).expect("edge config");
            assert_eq!(c.port.len(), 4);
            assert_eq!(c.port[3].backend, "afxdp:hp-up");
        }
        for m in [Mode::Vepa, Mode::Veb, Mode::Macvtap] {
            let c = Config::parse(&bridge_config(m, 3, &o, &toml::Table::new()).unwrap())
                .expect("bridge config");
            assert_eq!(c.port[0].reflective_relay.static_on(), m != Mode::Veb);
            assert_eq!(c.vm.len(), 3);
        }
    }

    #[test]
    fn the_backend_is_afxdp_unless_the_lab_needs_afpacket() {
        let lab = |t: &str| parse_lab_config(t).unwrap().0;
        assert_eq!(LabOpts::default().backend(), "afxdp");
        assert_eq!(lab("[lab]\nmtu = 1886\n").backend(), "afxdp");
        assert_eq!(lab("[lab]\nmtu = 1887\n").backend(), "afpacket");
        assert_eq!(lab("[lab]\nmtu = 9000\n").backend(), "afpacket");
        assert_eq!(
            lab("[lab]\nbridge_workers = [0, 1]\n").backend(),
            "afpacket"
        );
        assert_eq!(lab("[lab]\nbridge_workers = [1]\n").backend(), "afxdp");
        assert_eq!(lab("[lab]\nbackend = \"afpacket\"\n").backend(), "afpacket");
        for t in [
            "[lab]\nmtu = 1500\n",
            "[lab]\nmtu = 9000\n",
            "[lab]\nbridge_workers = [0, 1]\n",
            "[lab]\nbackend = \"afpacket\"\nmtu = 9000\n",
        ] {
            assert_eq!(lab(t).check_port_opts(), Ok(()), "{t}");
        }
        for (t, want) in [
            (
                "[lab]\nbackend = \"afxdp\"\nmtu = 9000\n",
                "lab.backend: afxdp carries frames up to 1900",
            ),
            (
                "[lab]\nbackend = \"afxdp\"\nbridge_workers = [0, 1]\n",
                "lab.backend: afxdp binds one socket per RX queue and a lab veth has one, so lab.bridge_workers (2 cores) needs afpacket",
            ),
            (
                "[lab]\nbackend = \"dpdk\"\n",
                "lab.backend: \"dpdk\" is not a lab backend",
            ),
            (
                "[lab]\nrx_ring = 3000\n",
                "lab.rx_ring: 3000: afxdp needs a power of two in 64..=16384 (the ports are afxdp)",
            ),
            (
                "[lab]\nmtu = 9000\nrx_ring = 10\n",
                "lab.rx_ring: 10 is out of range 64..=65536 (the ports are afpacket)",
            ),
            (
                "[lab]\nmtu = 9000\nxdp_mode = \"native\"\n",
                "lab.xdp_mode: only for AF_XDP ports, and this lab's are afpacket",
            ),
        ] {
            let e = lab(t).check_port_opts().unwrap_err();
            assert!(e.starts_with(want), "{t}: {e}");
        }
        let o = lab("[lab]\nmtu = 9000\n");
        let c = Config::parse(&edge_config(Mode::Vepa, 2, &o)).unwrap();
        assert_eq!(c.port[2].backend, "afpacket:hp-up");
        let o = lab("[lab]\nrx_ring = 8192\n");
        let c = Config::parse(&bridge_config(Mode::Macvtap, 2, &o, &toml::Table::new()).unwrap())
            .unwrap();
        assert!(c.port.iter().all(|p| p.rx_ring == Some(8192)));
        let o = LabOpts::default();
        let c = Config::parse(&edge_config(Mode::Vepa, 2, &o)).unwrap();
        assert!(c.port.iter().all(|p| p.rx_ring.is_none()));
        assert!(c.port.iter().all(|p| p.xdp_mode == XdpMode::Generic));
        let c = Config::parse(&edge_config(
            Mode::Vepa,
            2,
            &lab("[lab]\nxdp_mode = \"native\"\n"),
        ))
        .unwrap();
        assert!(c.port.iter().all(|p| p.xdp_mode == XdpMode::Native));
        let c =
            Config::parse(&bridge_config(Mode::Vepa, 2, &o, &toml::Table::new()).unwrap()).unwrap();
        assert!(c
            .port
            .iter()
            .all(|p| p.rx_ring == Some(BRIDGE_AFXDP_RX_RING)));
        let o = lab("[lab]\nmtu = 9000\n");
        let c =
            Config::parse(&bridge_config(Mode::Vepa, 2, &o, &toml::Table::new()).unwrap()).unwrap();
        assert!(
            c.port.iter().all(|p| p.rx_ring.is_none()),
            "afpacket keeps its default"
        );
    }

    #[test]
    fn qbg_configs_validate() {
        let (o, extra) =
            parse_lab_config("[lab]\nvsi_policy = 'web'\n[policy.web]\ndefault = 'permit'\n")
                .unwrap();
        for e in 1..=2 {
            let c = Config::parse(&qbg_edge_config(e, 3, &o)).expect("edge config");
            assert_eq!(c.port.len(), 4);
            assert!(c.port[3].uplink);
            assert!(c.vsi.is_empty(), "VMs come with `lab vm start`");
        }
        let c = Config::parse(&qbg_bridge_config(2, &o, &extra).unwrap()).expect("bridge");
        let names: Vec<_> = c.port.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["hv1", "hv2", "out"]);
        assert_eq!(c.vsi_type.len(), 1);
        assert_eq!(c.vsi_type[0].vlan, Some(QBG_VLAN));
        assert_eq!(c.vsi_type[0].policy.as_deref(), Some("web"));
        let (o, extra) = parse_lab_config("[lab.vm.vm1]\npolicy = 'p'\n").unwrap();
        let e = qbg_bridge_config(2, &o, &extra).unwrap_err();
        assert!(e.starts_with("lab.vm"), "{e}");
        assert!(valid_prefix("hpv-") && !valid_prefix("hp") && !valid_prefix("HPV-"));
        assert!(!valid_prefix("a-") && !valid_prefix("toolong-") && !valid_prefix("h1-"));
        assert_ne!(vm_uuid(1), vm_uuid(2));
        assert!(crate::config::parse_uuid(&vm_uuid(200)).is_ok());
    }

    #[test]
    fn lab_config_policies_and_errors() {
        let (o, extra) = parse_lab_config(
            "[lab]\nreflective_relay = false\n[lab.vm.vm1]\nmeter = 'm'\npolicy = 'p'\n\
             [meter.m]\ntype='srtcm'\ncir='10M'\ncbs=20000\n\
             [policy.p]\ndefault='permit'\n[[policy.p.rule]]\ndst_ip='10.77.0.2'\naction='deny'\n",
        )
        .unwrap();
        assert_eq!(o.reflective_relay, Some(false));
        let text = bridge_config(Mode::Macvtap, 2, &o, &extra).unwrap();
        let c = Config::parse(&text).expect("valid");
        assert!(!c.port[0].reflective_relay.static_on());
        assert_eq!(c.vm[0].meter.as_deref(), Some("m"));
        assert_eq!(c.vm[0].policy.as_deref(), Some("p"));
        let e = parse_lab_config("[lab]\nrelay = true\n").unwrap_err();
        assert!(e.starts_with("lab.relay"), "{e}");
        let e = parse_lab_config("[switch]\nmtu = 9000\n").unwrap_err();
        assert!(e.starts_with("switch:"), "{e}");
        let (o, extra) = parse_lab_config("[lab]\nbridge_workers = [0, 1]\n").unwrap();
        let c = Config::parse(&bridge_config(Mode::Vepa, 2, &o, &extra).unwrap()).unwrap();
        assert_eq!(c.switch.workers, vec![0, 1]);
        let (o, extra) = parse_lab_config("[lab.vm.vm9]\nmeter = 'm'\n").unwrap();
        let e = bridge_config(Mode::Vepa, 2, &o, &extra).unwrap_err();
        assert!(e.contains("lab.vm.vm9"), "{e}");
    }

    #[test]
    fn addresses() {
        assert_eq!(vm_mac(1), "02:77:00:00:00:01");
        assert_eq!(vm_mac(200), "02:77:00:00:00:c8");
        assert_eq!(vm_ip(7), "10.77.0.7");
        assert_eq!(Mode::parse("macvtap").unwrap(), Mode::Macvtap);
        assert!(Mode::parse("bridge").is_err());
        assert!(is_lab_netns("hp-vm12") && is_lab_netns("hp-sw") && is_lab_netns("hp-out"));
        assert!(is_lab_netns("hp-hv2") && !is_lab_netns("hp-hvx"));
        assert!(!is_lab_netns("hp-vm") && !is_lab_netns("hp-khv") && !is_lab_netns("hpd-vm1"));
    }
}
