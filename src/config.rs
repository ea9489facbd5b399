//! The TOML configuration: types, loading, validation.
//!
//! Every error names the key path (`port[2].pvid`) and the reason. Nothing is
//! started from a config that did not validate completely. Every key is
//! documented in `docs/config.md`.

pub mod dpdk;
pub mod evb;
pub mod log;
pub mod policy;
pub mod telemetry;

use crate::types::{Mac, MAX_PORTS};
use evb::{EvbCfg, EvbPortCfg, RrCfg, VsiCfg, VsiTypeCfg};
use policy::{EgressCfg, MeterCfg, PolicyCfg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// A configuration error: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path, e.g. `port[1].vlans[0]` (empty when the file itself is the problem).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}
impl std::error::Error for ConfigError {}

/// Shorthand for building a [`ConfigError`].
fn e(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::new(path, reason)
}

/// Role of the switch instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Learning VLAN-aware bridge with per-port reflective relay.
    #[default]
    Bridge,
    /// Hypervisor edge in VEPA mode.
    EdgeVepa,
    /// Hypervisor edge in VEB mode (local switching).
    EdgeVeb,
}

impl Role {
    /// Config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Role::Bridge => "bridge",
            Role::EdgeVepa => "edge-vepa",
            Role::EdgeVeb => "edge-veb",
        }
    }
}

/// Port VLAN mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PortMode {
    /// One VLAN (`pvid`), untagged on the wire.
    #[default]
    Access,
    /// Several VLANs (`vlans`), tagged on the wire; `pvid` (optional) is the native VLAN, untagged.
    Trunk,
}

/// Spanning-tree-style port state (set statically).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PortState {
    /// Learns and forwards.
    #[default]
    Forwarding,
    /// Learns, does not forward.
    Learning,
    /// Neither learns nor forwards (control frames still punted).
    Blocking,
    /// Administratively down: nothing in or out.
    Disabled,
}

/// How a VM port of an `edge-vepa` switch treats its siblings (Linux macvlan modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum VmMode {
    /// Everything goes up the uplink; reflected floods come back to siblings, never to the sender.
    #[default]
    Vepa,
    /// Switches locally to other bridge-mode ports; floods also go up the uplink.
    Bridge,
    /// Never talks to siblings, not even through the adjacent bridge's reflection.
    Private,
}

/// `hugepages` setting for the buffer pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Hugepages {
    /// Hugepages if reserved, else transparent huge pages, else 4 KiB pages.
    #[default]
    Auto,
    /// Hugepages or fail.
    On,
    /// Plain 4 KiB pages.
    Off,
}

fn d_role() -> Role {
    Role::Bridge
}
fn d_workers() -> Vec<usize> {
    vec![1]
}
fn d_burst() -> usize {
    32
}
fn d_mtu() -> usize {
    1518
}
fn d_true() -> bool {
    true
}
/// Default `switch.idle_spin_us`.
pub const DEFAULT_IDLE_SPIN_US: u64 = 200;
fn d_idle_spin() -> u64 {
    DEFAULT_IDLE_SPIN_US
}
fn d_pool() -> usize {
    16384
}
fn d_ring_depth() -> usize {
    1024
}
fn d_punt() -> usize {
    256
}
fn d_flow_cache() -> usize {
    crate::policy::flow::DEFAULT_ENTRIES
}
/// Largest `rx_ring` of an afxdp port (32 MiB of UMEM per queue); here
/// because `port::afxdp` exists only on Linux.
pub const AFXDP_MAX_RX_RING: usize = 16384;

fn d_backend() -> String {
    "ring".into()
}

/// `[switch]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchCfg {
    /// bridge | edge-vepa | edge-veb.
    #[serde(default = "d_role")]
    pub role: Role,
    /// CPU cores for the pinned poll loops (one worker each).
    #[serde(default = "d_workers")]
    pub workers: Vec<usize>,
    /// Frames per RX burst (1..=256).
    #[serde(default = "d_burst")]
    pub burst: usize,
    /// Largest untagged frame in bytes, Ethernet header included, FCS excluded (64..=9216).
    #[serde(default = "d_mtu")]
    pub mtu: usize,
    /// The switch's own MAC: frames to it are delivered to the control plane, never forwarded.
    #[serde(default)]
    pub mac: Option<Mac>,
    /// After 64 empty polls in a row, sleep this long (0 = never sleep: pure poll mode).
    #[serde(default)]
    pub idle_sleep_us: u64,
    /// With `idle_sleep_us` set: keep polling without sleep for this long
    /// after the last received frame (a reply that follows a request is then
    /// handled by a worker that is still awake).
    #[serde(default = "d_idle_spin")]
    pub idle_spin_us: u64,
    /// Buffers in the pool.
    #[serde(default = "d_pool")]
    pub pool_size: usize,
    /// Ring backend queue depth (frames).
    #[serde(default = "d_ring_depth")]
    pub ring_depth: usize,
    /// Control-plane punt queue depth (frames).
    #[serde(default = "d_punt")]
    pub punt_queue: usize,
    /// Entries of each worker's exact-match flow cache in front of the ACL classifier (0 = off).
    #[serde(default = "d_flow_cache")]
    pub flow_cache: usize,
    /// Hugepage use for the pool: auto | on | off.
    #[serde(default)]
    pub hugepages: Hugepages,
    /// `[switch.fdb]`.
    #[serde(default)]
    pub fdb: FdbCfg,
}

impl Default for SwitchCfg {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

fn d_cap() -> usize {
    65536
}
fn d_aging() -> u64 {
    300
}
fn d_limit() -> usize {
    4096
}

/// `[switch.fdb]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FdbCfg {
    /// Most entries in the table (static and learned).
    #[serde(default = "d_cap")]
    pub capacity: usize,
    /// Seconds after which an unrefreshed learned entry is gone (0 = never).
    #[serde(default = "d_aging")]
    pub aging_s: u64,
    /// Most learned entries per port.
    #[serde(default = "d_limit")]
    pub per_port_limit: usize,
}

impl Default for FdbCfg {
    fn default() -> Self {
        FdbCfg {
            capacity: d_cap(),
            aging_s: d_aging(),
            per_port_limit: d_limit(),
        }
    }
}

/// `[[port]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortCfg {
    /// Unique name.
    pub name: String,
    /// ring | pcap | afpacket:IFNAME | afxdp:IFNAME.
    #[serde(default = "d_backend")]
    pub backend: String,
    /// pcap backend: file to read frames from (`run` only; `replay` takes `--in`).
    #[serde(default)]
    pub pcap_in: Option<String>,
    /// pcap backend: file to write transmitted frames to.
    #[serde(default)]
    pub pcap_out: Option<String>,
    /// afpacket/afxdp: frames the kernel can hold per RX queue before the
    /// worker reads them (default: afxdp 2048, afpacket 2 MiB of slots).
    #[serde(default)]
    pub rx_ring: Option<usize>,
    /// afxdp: how the XDP program is attached: auto | native | generic.
    #[serde(default)]
    pub xdp_mode: XdpMode,
    /// access | trunk.
    #[serde(default)]
    pub mode: PortMode,
    /// Trunk: allowed VLANs.
    #[serde(default)]
    pub vlans: Vec<u16>,
    /// Access: the port's VLAN (default 1). Trunk: the native (untagged) VLAN, if any.
    #[serde(default)]
    pub pvid: Option<u16>,
    /// May a frame leave by the port it came in on (802.1Qbg reflective relay)?
    /// `true`, `false`, or `"negotiate"` (follows EVB negotiation; needs `evb = "bridge"`).
    #[serde(default)]
    pub reflective_relay: RrCfg,
    /// 802.1Qbg EVB role of this port: off | bridge | station.
    #[serde(default)]
    pub evb: EvbPortCfg,
    /// Edge roles: this is the uplink to the adjacent bridge.
    #[serde(default)]
    pub uplink: bool,
    /// Learn source addresses seen on this port.
    #[serde(default = "d_true")]
    pub learning: bool,
    /// Flood unknown unicast out of this port.
    #[serde(default = "d_true")]
    pub flood_unknown: bool,
    /// Flood unregistered multicast out of this port.
    #[serde(default = "d_true")]
    pub flood_multicast: bool,
    /// Flood broadcast out of this port.
    #[serde(default = "d_true")]
    pub flood_broadcast: bool,
    /// Isolated: never forwards to another isolated port.
    #[serde(default)]
    pub isolated: bool,
    /// Locked: only sources with a static entry on this port may send (others dropped, never learned).
    #[serde(default)]
    pub locked: bool,
    /// forwarding | learning | blocking | disabled.
    #[serde(default)]
    pub state: PortState,
    /// Registered multicast leaves this port as unicast copies to the group's hosts on it.
    #[serde(default)]
    pub multicast_to_unicast: bool,
    /// edge-vepa VM ports: vepa | bridge | private.
    #[serde(default)]
    pub vm_mode: VmMode,
    /// On a port with VMs, only their (MAC, VLAN) may send (anti-spoofing). Off for trunks to other switches.
    #[serde(default = "d_true")]
    pub source_guard: bool,
    /// `[port.egress]`: 8 traffic classes with strict priority and DRR, shaping, queue limits.
    #[serde(default)]
    pub egress: Option<EgressCfg>,
}

/// Why `rx_ring = n` does not fit a port of `backend` (`afxdp:IF`,
/// `afpacket:IF`, or another backend, which has no kernel ring).
pub fn check_rx_ring(backend: &str, n: usize) -> Result<(), String> {
    if backend.starts_with("afxdp") {
        if !n.is_power_of_two() || !(64..=AFXDP_MAX_RX_RING).contains(&n) {
            return Err(format!(
                "{n}: afxdp needs a power of two in 64..={AFXDP_MAX_RX_RING}"
            ));
        }
    } else if backend.starts_with("afpacket") {
        if !(64..=65536).contains(&n) {
            return Err(format!("{n} is out of range 64..=65536"));
        }
    } else {
        return Err("only for backend = \"afpacket:IF\" or \"afxdp:IF\"".into());
    }
    Ok(())
}

/// `port.xdp_mode`: where an afxdp port's XDP program runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// In the driver where it has XDP, else generic.
    #[default]
    Auto,
    /// In the driver only (an error where the driver has no XDP).
    Native,
    /// On the kernel's skb path (SKB mode), for any interface.
    Generic,
}

impl XdpMode {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

/// `[[vm]]`: a VM behind a port (edge roles), or a static FDB entry (bridge).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VmCfg {
    /// Name (unique).
    pub name: String,
    /// The VM's MAC.
    pub mac: Mac,
    /// Its VLAN.
    pub vlan: u16,
    /// The port it sits behind.
    pub port: String,
    /// Its policy (`[policy.NAME]`): ACL rules, QoS class, meter.
    #[serde(default)]
    pub policy: Option<String>,
    /// VSI instance id (UUID, as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
    #[serde(default)]
    pub uuid: Option<String>,
    /// Meter for everything this VM sends (`[meter.NAME]`), on top of its policy's.
    #[serde(default)]
    pub meter: Option<String>,
    /// How the VM got into the table: from the config file, or installed at
    /// run time by the 802.1Qbg control plane (never read from a file).
    #[serde(skip)]
    pub origin: VsiOrigin,
}

/// How a VSI got into the VSI table (its association state as the
/// `vsi` control-socket command shows it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum VsiOrigin {
    /// A `[[vm]]` of the config file: always present, no association.
    #[default]
    Static,
    /// Associated by a station over VDP (bridge role): present while the
    /// association lasts (pre-associations reserve, they install nothing).
    VdpAssociated,
    /// A VM of this edge that the adjacent bridge associated over VDP.
    BridgeAssociated,
}

impl VsiOrigin {
    /// The name in `vsi` replies and tables.
    pub fn name(self) -> &'static str {
        match self {
            VsiOrigin::Static => "static",
            VsiOrigin::VdpAssociated => "associated",
            VsiOrigin::BridgeAssociated => "associated-by-bridge",
        }
    }
}

/// Parse a UUID `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hyphens optional).
pub fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let h: String = s.chars().filter(|c| *c != '-').collect();
    if h.len() != 32 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{s:?} is not a UUID (32 hex digits, e.g. 6ba7b810-9dad-11d1-80b4-00c04fd430c8)"
        ));
    }
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    if u == [0; 16] {
        return Err("the all-zero UUID is not a valid VSI instance id".into());
    }
    Ok(u)
}

/// A receiver of a registered group, known by MAC (for multicast-to-unicast ports).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MdbHost {
    /// Port the host is behind.
    pub port: String,
    /// Host MAC.
    pub mac: Mac,
}

/// `[[mdb]]`: a registered multicast group.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MdbCfg {
    /// Group MAC (I/G bit set).
    pub group: Mac,
    /// VLAN.
    pub vlan: u16,
    /// Member ports.
    pub ports: Vec<String>,
    /// Receivers by MAC (used on ports with `multicast_to_unicast`).
    #[serde(default)]
    pub hosts: Vec<MdbHost>,
}

/// The whole file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[switch]`.
    #[serde(default)]
    pub switch: SwitchCfg,
    /// `[[port]]`.
    #[serde(default)]
    pub port: Vec<PortCfg>,
    /// `[[vm]]`.
    #[serde(default)]
    pub vm: Vec<VmCfg>,
    /// `[[mdb]]`.
    #[serde(default)]
    pub mdb: Vec<MdbCfg>,
    /// `[policy.NAME]`.
    #[serde(default)]
    pub policy: BTreeMap<String, PolicyCfg>,
    /// `[meter.NAME]`.
    #[serde(default)]
    pub meter: BTreeMap<String, MeterCfg>,
    /// `[dpdk]`: EAL and ethdev settings for `dpdk:` ports.
    #[serde(default)]
    pub dpdk: dpdk::DpdkCfg,
    /// `[evb]`: 802.1Qbg timers, group ids, punt rate, VSI type file.
    #[serde(default)]
    pub evb: EvbCfg,
    /// `[[vsi_type]]`: VSI types for the default policy store.
    #[serde(default)]
    pub vsi_type: Vec<VsiTypeCfg>,
    /// `[[vsi]]`: VSIs an edge announces to its bridge (EVB station role).
    #[serde(default)]
    pub vsi: Vec<VsiCfg>,
    /// `[telemetry]`: control socket and Prometheus endpoint of `hairpin run`.
    #[serde(default)]
    pub telemetry: telemetry::TelemetryCfg,
    /// `[log]`: log level of `hairpin run`.
    #[serde(default)]
    pub log: log::LogCfg,
    /// Directory relative file names (pcap_in, pcap_out) are taken from: the config file's.
    #[serde(skip)]
    pub base_dir: Option<std::path::PathBuf>,
}

impl Config {
    fn validate_policy(&self) -> Result<(), ConfigError> {
        use policy::{parse_rate, ColorAction, MeterKind};
        for (name, m) in &self.meter {
            let at = |k: &str| format!("meter.{name}.{k}");
            let cir = parse_rate(&m.cir).map_err(|r| e(at("cir"), r))?;
            if m.cbs < 64 || m.cbs > 1 << 32 {
                return Err(e(
                    at("cbs"),
                    format!("{} bytes is out of range 64..=4294967296", m.cbs),
                ));
            }
            if cir < 8_000 {
                return Err(e(at("cir"), format!("{cir} bit/s is below 8 kbit/s")));
            }
            match m.kind {
                MeterKind::Srtcm => {
                    if m.pir.is_some() || m.pbs.is_some() {
                        return Err(e(at("pir"), "pir/pbs are for type = \"trtcm\""));
                    }
                    if m.ebs.unwrap_or(0) > 1 << 32 {
                        return Err(e(at("ebs"), "more than 4294967296 bytes"));
                    }
                }
                MeterKind::Trtcm => {
                    let Some(pir) = &m.pir else {
                        return Err(e(at("pir"), "trtcm needs pir (peak rate)"));
                    };
                    let pir = parse_rate(pir).map_err(|r| e(at("pir"), r))?;
                    if pir < cir {
                        return Err(e(
                            at("pir"),
                            format!("{pir} bit/s is below cir ({cir} bit/s)"),
                        ));
                    }
                    let pbs = m
                        .pbs
                        .ok_or_else(|| e(at("pbs"), "trtcm needs pbs (peak burst, bytes)"))?;
                    if !(64..=1 << 32).contains(&pbs) {
                        return Err(e(
                            at("pbs"),
                            format!("{pbs} bytes is out of range 64..=4294967296"),
                        ));
                    }
                    if m.ebs.is_some() {
                        return Err(e(at("ebs"), "ebs is for type = \"srtcm\""));
                    }
                }
            }
            crate::policy::meter_config(m).map_err(|r| e(format!("meter.{name}"), r))?;
            let remark = [m.green, m.yellow, m.red].contains(&ColorAction::Remark);
            if remark && m.remark_pcp.is_none() && m.remark_dscp.is_none() {
                return Err(e(
                    at("remark_dscp"),
                    "an action is \"remark\" but neither remark_pcp nor remark_dscp is set",
                ));
            }
            if m.remark_pcp.is_some_and(|p| p > 7) {
                return Err(e(at("remark_pcp"), "out of range 0..=7"));
            }
            if m.remark_dscp.is_some_and(|d| d > 63) {
                return Err(e(at("remark_dscp"), "out of range 0..=63"));
            }
        }
        for (name, p) in &self.policy {
            if name.is_empty() || name.len() > 64 {
                return Err(e(
                    format!("policy.{name}"),
                    "policy names are 1-64 characters",
                ));
            }
            if let Some(c) = p.class {
                if c > 7 {
                    return Err(e(
                        format!("policy.{name}.class"),
                        format!("{c} is out of range 0..=7"),
                    ));
                }
            }
            if let Some(m) = &p.meter {
                if !self.meter.contains_key(m) {
                    return Err(e(format!("policy.{name}.meter"), format!("no [meter.{m}]")));
                }
            }
            if p.rule.len() > 100_000 {
                return Err(e(format!("policy.{name}.rule"), "more than 100000 rules"));
            }
            for (i, r) in p.rule.iter().enumerate() {
                policy::compile_rule(r)
                    .map_err(|(k, why)| e(format!("policy.{name}.rule[{i}].{k}"), why))?;
                if let Some(m) = &r.meter {
                    if !self.meter.contains_key(m) {
                        return Err(e(
                            format!("policy.{name}.rule[{i}].meter"),
                            format!("no [meter.{m}]"),
                        ));
                    }
                }
                if let Some(c) = &r.counter {
                    if c.is_empty() || c.len() > 64 {
                        return Err(e(
                            format!("policy.{name}.rule[{i}].counter"),
                            "counter names are 1-64 characters",
                        ));
                    }
                }
            }
        }
        let mut uuids = HashMap::new();
        for (i, v) in self.vm.iter().enumerate() {
            if let Some(p) = &v.policy {
                if !self.policy.contains_key(p) {
                    return Err(e(format!("vm[{i}].policy"), format!("no [policy.{p}]")));
                }
            }
            if let Some(m) = &v.meter {
                if !self.meter.contains_key(m) {
                    return Err(e(format!("vm[{i}].meter"), format!("no [meter.{m}]")));
                }
            }
            if let Some(u) = &v.uuid {
                let id = parse_uuid(u).map_err(|r| e(format!("vm[{i}].uuid"), r))?;
                if let Some(j) = uuids.insert(id, i) {
                    return Err(e(
                        format!("vm[{i}].uuid"),
                        format!("{u} already belongs to vm[{j}]"),
                    ));
                }
            }
        }
        for (i, p) in self.port.iter().enumerate() {
            if let Some(g) = &p.egress {
                let at = |k: &str| format!("port[{i}].egress.{k}");
                if g.strict > 8 {
                    return Err(e(
                        at("strict"),
                        format!("{} is more than the 8 classes", g.strict),
                    ));
                }
                let drr = 8 - g.strict as usize;
                if !g.weights.is_empty() && g.weights.len() != drr {
                    return Err(e(
                        at("weights"),
                        format!(
                            "{} weights for {drr} non-strict classes (0..={})",
                            g.weights.len(),
                            drr.max(1) - 1
                        ),
                    ));
                }
                if let Some(k) = g.weights.iter().position(|w| *w == 0 || *w > 1000) {
                    return Err(e(
                        format!("port[{i}].egress.weights[{k}]"),
                        "weights are 1..=1000",
                    ));
                }
                if !(1..=65536).contains(&g.depth) {
                    return Err(e(
                        at("depth"),
                        format!("{} is out of range 1..=65536 frames", g.depth),
                    ));
                }
                if let Some(r) = &g.shape {
                    let bps = parse_rate(r).map_err(|why| e(at("shape"), why))?;
                    if bps < 64_000 {
                        return Err(e(at("shape"), format!("{bps} bit/s is below 64 kbit/s")));
                    }
                }
                crate::policy::sched_config(g, self.switch.workers.len())
                    .map_err(|r| e(format!("port[{i}].egress"), r))?;
            }
        }
        Ok(())
    }

    /// Read and validate a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
        let mut c = Self::parse(&text)?;
        c.base_dir = path.parent().map(|p| p.to_path_buf());
        c.validate_evb()?; // again: evb.vsi_type_file is relative to the config file
        Ok(c)
    }

    /// A file name from the config, relative to the config file's directory.
    pub fn resolve(&self, name: &str) -> std::path::PathBuf {
        match &self.base_dir {
            Some(d) if !Path::new(name).is_absolute() => d.join(name),
            _ => std::path::PathBuf::from(name),
        }
    }

    /// Parse and validate TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = inner.message().to_string();
            let at = inner
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            ConfigError::new(
                if path == "." { String::new() } else { path },
                format!("{msg}{at}"),
            )
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Index of the port named `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.port.iter().position(|p| p.name == name)
    }

    /// VLANs a port is a member of.
    pub fn port_vlans(p: &PortCfg) -> Vec<u16> {
        match p.mode {
            PortMode::Access => vec![p.pvid.unwrap_or(1)],
            PortMode::Trunk => {
                let mut v = p.vlans.clone();
                if let Some(n) = p.pvid {
                    if !v.contains(&n) {
                        v.push(n);
                    }
                }
                v
            }
        }
    }

    /// Check everything that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.switch;
        if s.workers.is_empty() {
            return Err(e("switch.workers", "needs at least one core"));
        }
        // Cores beyond this machine are refused when pinning (`run`), not here,
        // so a config stays valid on the machine it is written for.
        let mut seen = HashSet::new();
        for (i, &c) in s.workers.iter().enumerate() {
            if c >= 1024 {
                return Err(e(
                    format!("switch.workers[{i}]"),
                    format!("core {c} is not a CPU number"),
                ));
            }
            if !seen.insert(c) {
                return Err(e(
                    format!("switch.workers[{i}]"),
                    format!("core {c} listed twice"),
                ));
            }
        }
        if !(1..=256).contains(&s.burst) {
            return Err(e(
                "switch.burst",
                format!("{} is out of range 1..=256", s.burst),
            ));
        }
        if !(64..=9216).contains(&s.mtu) {
            return Err(e(
                "switch.mtu",
                format!("{} is out of range 64..=9216 bytes", s.mtu),
            ));
        }
        if let Some(m) = s.mac {
            if m.is_group() || m.is_zero() {
                return Err(e("switch.mac", format!("{m} is a group or zero address")));
            }
        }
        if s.idle_sleep_us > 1_000_000 {
            return Err(e("switch.idle_sleep_us", "more than one second"));
        }
        if s.idle_spin_us > 1_000_000 {
            return Err(e("switch.idle_spin_us", "more than one second"));
        }
        if !(64..=(1 << 24)).contains(&s.pool_size) {
            return Err(e(
                "switch.pool_size",
                format!("{} is out of range 64..=16777216", s.pool_size),
            ));
        }
        if !(2..=(1 << 20)).contains(&s.ring_depth) {
            return Err(e(
                "switch.ring_depth",
                format!("{} is out of range 2..=1048576", s.ring_depth),
            ));
        }
        if !(1..=(1 << 16)).contains(&s.punt_queue) {
            return Err(e(
                "switch.punt_queue",
                format!("{} is out of range 1..=65536", s.punt_queue),
            ));
        }
        if s.flow_cache > crate::policy::flow::MAX_ENTRIES {
            return Err(e(
                "switch.flow_cache",
                format!(
                    "{} is out of range 0..={}",
                    s.flow_cache,
                    crate::policy::flow::MAX_ENTRIES
                ),
            ));
        }
        let f = &s.fdb;
        if !(1..=(1 << 24)).contains(&f.capacity) {
            return Err(e(
                "switch.fdb.capacity",
                format!("{} is out of range 1..=16777216", f.capacity),
            ));
        }
        if f.per_port_limit == 0 || f.per_port_limit > f.capacity {
            return Err(e(
                "switch.fdb.per_port_limit",
                format!(
                    "{} must be between 1 and switch.fdb.capacity ({})",
                    f.per_port_limit, f.capacity
                ),
            ));
        }
        if f.aging_s > 1_000_000 {
            return Err(e(
                "switch.fdb.aging_s",
                format!("{} is more than 1000000 seconds", f.aging_s),
            ));
        }

        if self.port.is_empty() {
            return Err(e("port", "no [[port]] defined"));
        }
        if self.port.len() > MAX_PORTS {
            return Err(e(
                "port",
                format!("{} ports; at most {MAX_PORTS}", self.port.len()),
            ));
        }
        let mut names = HashMap::new();
        for (i, p) in self.port.iter().enumerate() {
            let at = |k: &str| format!("port[{i}].{k}");
            if p.name.is_empty() || p.name.len() > 64 || p.name.contains(['/', '=', ' ']) {
                return Err(e(
                    at("name"),
                    format!("{:?}: 1-64 characters, no '/', '=' or space", p.name),
                ));
            }
            if let Some(j) = names.insert(p.name.as_str(), i) {
                return Err(e(
                    at("name"),
                    format!("{:?} already used by port[{j}]", p.name),
                ));
            }
            match p.backend.as_str() {
                "ring" => {}
                "pcap" => {
                    if p.pcap_in.is_none() && p.pcap_out.is_none() {
                        return Err(e(at("backend"), "pcap needs pcap_in and/or pcap_out"));
                    }
                }
                b if cfg!(feature = "dpdk") && b.starts_with("dpdk:") => {
                    dpdk::check_device(&b[5..]).map_err(|r| e(at("backend"), r))?;
                }
                b if b.starts_with("afpacket:") || b.starts_with("afxdp:") => {
                    let (kind, ifname) = b.split_once(':').unwrap_or((b, ""));
                    if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', ' ', ':']) {
                        return Err(e(
                            at("backend"),
                            format!("{b:?}: {kind}:IFNAME needs an interface name of 1-15 characters, no '/', ':' or space"),
                        ));
                    }
                }
                b => {
                    let known = b.split(':').next().unwrap_or("");
                    let why = if ["afpacket", "afxdp", "dpdk"].contains(&known) {
                        format!("{b:?}: the {known} backend is not in this build")
                    } else {
                        format!(
                            "{b:?} is not a backend (ring | pcap | afpacket:IFNAME | afxdp:IFNAME)"
                        )
                    };
                    return Err(e(at("backend"), why));
                }
            }
            if let Some(n) = p.rx_ring {
                check_rx_ring(&p.backend, n).map_err(|why| e(at("rx_ring"), why))?;
            }
            if p.xdp_mode != XdpMode::Auto && !p.backend.starts_with("afxdp:") {
                return Err(e(at("xdp_mode"), "only for backend = \"afxdp:IF\""));
            }
            if p.backend != "pcap" && (p.pcap_in.is_some() || p.pcap_out.is_some()) {
                return Err(e(at("pcap_in"), "only for backend = \"pcap\""));
            }
            let vid_ok = |v: u16| (1..=4094).contains(&v);
            if let Some(v) = p.pvid {
                if !vid_ok(v) {
                    return Err(e(at("pvid"), format!("{v} is out of range 1..=4094")));
                }
            }
            match p.mode {
                PortMode::Access => {
                    if !p.vlans.is_empty() {
                        return Err(e(
                            at("vlans"),
                            "an access port has one VLAN: set pvid, not vlans",
                        ));
                    }
                }
                PortMode::Trunk => {
                    let mut vs = HashSet::new();
                    for (k, &v) in p.vlans.iter().enumerate() {
                        if !vid_ok(v) {
                            return Err(e(
                                format!("port[{i}].vlans[{k}]"),
                                format!("{v} is out of range 1..=4094"),
                            ));
                        }
                        if !vs.insert(v) {
                            return Err(e(
                                format!("port[{i}].vlans[{k}]"),
                                format!("VLAN {v} listed twice"),
                            ));
                        }
                    }
                    if p.vlans.is_empty() && p.pvid.is_none() && p.evb == EvbPortCfg::Off {
                        return Err(e(
                            at("vlans"),
                            "a trunk needs at least one VLAN (vlans or pvid)",
                        ));
                    }
                }
            }
            if p.uplink && s.role == Role::Bridge {
                return Err(e(
                    at("uplink"),
                    "only edge roles (edge-vepa, edge-veb) have an uplink",
                ));
            }
            if p.vm_mode != VmMode::Vepa && (s.role != Role::EdgeVepa || p.uplink) {
                return Err(e(
                    at("vm_mode"),
                    "only VM ports of an edge-vepa switch have a vm_mode",
                ));
            }
            if p.reflective_relay.is_set() && s.role != Role::Bridge {
                return Err(e(
                    at("reflective_relay"),
                    format!(
                        "reflective relay is the adjacent bridge's job; role is {}",
                        s.role.name()
                    ),
                ));
            }
        }
        if s.role != Role::Bridge {
            let ups: Vec<usize> = (0..self.port.len())
                .filter(|&i| self.port[i].uplink)
                .collect();
            if ups.len() != 1 {
                return Err(e(
                    "port",
                    format!(
                        "role {} needs exactly one port with uplink = true (found {})",
                        s.role.name(),
                        ups.len()
                    ),
                ));
            }
        }

        let mut vm_names = HashMap::new();
        let mut vm_keys = HashMap::new();
        for (i, v) in self.vm.iter().enumerate() {
            let at = |k: &str| format!("vm[{i}].{k}");
            if let Some(j) = vm_names.insert(v.name.as_str(), i) {
                return Err(e(
                    at("name"),
                    format!("{:?} already used by vm[{j}]", v.name),
                ));
            }
            if v.mac.is_group() || v.mac.is_zero() {
                return Err(e(
                    at("mac"),
                    format!("{} is a group or zero address", v.mac),
                ));
            }
            if !(1..=4094).contains(&v.vlan) {
                return Err(e(
                    at("vlan"),
                    format!("{} is out of range 1..=4094", v.vlan),
                ));
            }
            let Some(pi) = self.port_index(&v.port) else {
                return Err(e(at("port"), format!("no port named {:?}", v.port)));
            };
            let p = &self.port[pi];
            if !Self::port_vlans(p).contains(&v.vlan) {
                return Err(e(
                    at("vlan"),
                    format!("VLAN {} is not a VLAN of port {:?}", v.vlan, p.name),
                ));
            }
            if s.role != Role::Bridge && p.uplink {
                return Err(e(
                    at("port"),
                    format!("{:?} is the uplink; VMs sit behind VM ports", v.port),
                ));
            }
            if let Some(j) = vm_keys.insert((v.mac, v.vlan), i) {
                return Err(e(
                    at("mac"),
                    format!("{} in VLAN {} already belongs to vm[{j}]", v.mac, v.vlan),
                ));
            }
        }
        if self.vm.len() > f.capacity {
            return Err(e(
                "vm",
                format!(
                    "{} VMs do not fit switch.fdb.capacity {}",
                    self.vm.len(),
                    f.capacity
                ),
            ));
        }

        let mut groups = HashSet::new();
        for (i, m) in self.mdb.iter().enumerate() {
            let at = |k: &str| format!("mdb[{i}].{k}");
            if s.role != Role::Bridge {
                return Err(e(
                    format!("mdb[{i}]"),
                    "multicast groups are for the bridge role",
                ));
            }
            if !m.group.is_group() || m.group.is_broadcast() {
                return Err(e(
                    at("group"),
                    format!("{} is not a multicast address", m.group),
                ));
            }
            if !(1..=4094).contains(&m.vlan) {
                return Err(e(
                    at("vlan"),
                    format!("{} is out of range 1..=4094", m.vlan),
                ));
            }
            if !groups.insert((m.group, m.vlan)) {
                return Err(e(
                    at("group"),
                    format!("{} in VLAN {} defined twice", m.group, m.vlan),
                ));
            }
            for (k, pn) in m.ports.iter().enumerate() {
                match self.port_index(pn) {
                    None => {
                        return Err(e(
                            format!("mdb[{i}].ports[{k}]"),
                            format!("no port named {pn:?}"),
                        ))
                    }
                    Some(pi) if !Self::port_vlans(&self.port[pi]).contains(&m.vlan) => {
                        return Err(e(
                            format!("mdb[{i}].ports[{k}]"),
                            format!("port {pn:?} is not in VLAN {}", m.vlan),
                        ))
                    }
                    _ => {}
                }
            }
            for (k, h) in m.hosts.iter().enumerate() {
                if !m.ports.contains(&h.port) {
                    return Err(e(
                        format!("mdb[{i}].hosts[{k}].port"),
                        format!("{:?} is not one of this group's ports", h.port),
                    ));
                }
                if h.mac.is_group() || h.mac.is_zero() {
                    return Err(e(
                        format!("mdb[{i}].hosts[{k}].mac"),
                        format!("{} is a group or zero address", h.mac),
                    ));
                }
            }
        }
        self.dpdk.check().map_err(|(k, r)| e(k, r))?;
        self.telemetry.check().map_err(|(k, r)| e(k, r))?;
        self.log.check().map_err(|(k, r)| e(k, r))?;
        self.validate_policy()?;
        self.validate_evb()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[switch]
role = "bridge"
[[port]]
name = "hv1"
mode = "trunk"
vlans = [10, 20]
reflective_relay = true
[[port]]
name = "x"
pvid = 10
"#;

    fn err(extra: &str) -> ConfigError {
        Config::parse(&format!("{BASE}{extra}")).unwrap_err()
    }

    #[test]
    fn minimal_ok_with_defaults() {
        let c = Config::parse(BASE).unwrap();
        assert_eq!(c.switch.burst, 32);
        assert_eq!(c.switch.fdb.capacity, 65536);
        assert_eq!(c.port[1].mode, PortMode::Access);
        assert!(c.port[0].learning);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse("[switch]\nburst = 0\n[[port]]\nname='a'\n").unwrap_err();
        assert_eq!(e.path, "switch.burst");
        let e = Config::parse("[switch]\nrole = 'hub'\n").unwrap_err();
        assert_eq!(e.path, "switch.role");
        let e = Config::parse("[[port]]\nname='a'\nmdoe='trunk'\n").unwrap_err();
        assert_eq!(e.path, "port[0].mdoe");
        assert!(e.reason.contains("mdoe"), "{e}");
        let e = err("[[vm]]\nname='a'\nmac='02:00:00:00:00:01'\nvlan=30\nport='hv1'\n");
        assert_eq!(e.path, "vm[0].vlan");
        let e = err("[[vm]]\nname='a'\nmac='01:00:00:00:00:01'\nvlan=10\nport='hv1'\n");
        assert_eq!(e.path, "vm[0].mac");
        let e = err("[[vm]]\nname='a'\nmac='02:00:00:00:00:01'\nvlan=10\nport='nope'\n");
        assert_eq!(e.path, "vm[0].port");
        let e = err("[[port]]\nname='hv1'\n");
        assert_eq!(e.path, "port[2].name");
        let e = err("[[port]]\nname='t'\nmode='trunk'\nvlans=[10,4095]\n");
        assert_eq!(e.path, "port[2].vlans[1]");
        let e = err("[[port]]\nname='t'\nbackend='tap:eth0'\n");
        assert_eq!(e.path, "port[2].backend");
        for (port, why) in [
            (
                "backend='afxdp:v0'\nrx_ring=3000",
                "3000: afxdp needs a power of two in 64..=16384",
            ),
            (
                "backend='afxdp:v0'\nrx_ring=32768",
                "32768: afxdp needs a power of two",
            ),
            (
                "backend='afpacket:v0'\nrx_ring=10",
                "10 is out of range 64..=65536",
            ),
            (
                "rx_ring=4096",
                "only for backend = \"afpacket:IF\" or \"afxdp:IF\"",
            ),
        ] {
            let e = Config::parse(&format!("[[port]]\nname='a'\n{port}\n")).unwrap_err();
            assert_eq!(e.path, "port[0].rx_ring", "{port}");
            assert!(e.reason.starts_with(why), "{port}: {e}");
        }
        for port in [
            "backend='afxdp:v0'\nrx_ring=8192",
            "backend='afpacket:v0'\nrx_ring=3000",
        ] {
            let c = Config::parse(&format!("[[port]]\nname='a'\n{port}\n")).unwrap();
            assert!(c.port[0].rx_ring.is_some(), "{port}");
        }
        let e = Config::parse("[switch]\nmtu = 'big'\n").unwrap_err();
        assert_eq!(e.path, "switch.mtu");
        assert!(e.reason.contains("line 2"), "{e}");
        let e = Config::parse("[switch]\nidle_spin_us = 2000000\n").unwrap_err();
        assert_eq!(e.path, "switch.idle_spin_us");
        assert_eq!(
            Config::parse("[[port]]\nname = 'a'\n")
                .unwrap()
                .switch
                .idle_spin_us,
            DEFAULT_IDLE_SPIN_US
        );
    }

    #[test]
    fn edge_needs_one_uplink() {
        let e = Config::parse("[switch]\nrole='edge-vepa'\n[[port]]\nname='a'\n").unwrap_err();
        assert_eq!(e.path, "port");
        let e = Config::parse(
            "[switch]\nrole='edge-vepa'\n[[port]]\nname='a'\nuplink=true\nreflective_relay=true\n",
        )
        .unwrap_err();
        assert_eq!(e.path, "port[0].reflective_relay");
    }
}
