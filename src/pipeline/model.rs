//! The compiled, immutable view of a config that the fast path reads.

use crate::config::{Config, PortMode, PortState, Role, VmMode};
use crate::fdb::Fdb;
use crate::policy::PolicySet;
use crate::types::{Mac, PortId, Vid, MAX_PORTS};
use std::collections::HashMap;

/// 4096-bit VLAN set.
#[derive(Clone)]
pub struct VlanSet(Box<[u64; 64]>);

impl VlanSet {
    /// Empty set.
    pub fn new() -> Self {
        VlanSet(Box::new([0; 64]))
    }
    /// Add a VID.
    pub fn insert(&mut self, v: u16) {
        self.0[(v as usize >> 6) & 63] |= 1 << (v & 63);
    }
    /// Membership.
    #[inline(always)]
    pub fn contains(&self, v: u16) -> bool {
        self.0[(v as usize >> 6) & 63] >> (v & 63) & 1 == 1
    }
}

impl Default for VlanSet {
    fn default() -> Self {
        Self::new()
    }
}

/// One port, compiled.
#[derive(Clone)]
pub struct PortInfo {
    /// Name.
    pub name: String,
    /// Access or trunk.
    pub mode: PortMode,
    /// VID given to untagged/priority-tagged frames (0 = such frames are dropped).
    pub pvid: u16,
    /// VID that leaves untagged (access VLAN or trunk native VLAN; 0 = none).
    pub untagged_vid: u16,
    /// Member VLANs.
    pub vlans: VlanSet,
    /// Reflective relay.
    pub rr: bool,
    /// Edge uplink.
    pub uplink: bool,
    /// Learn sources.
    pub learning: bool,
    /// Locked port.
    pub locked: bool,
    /// Port state.
    pub state: PortState,
    /// Multicast-to-unicast on egress.
    pub m2u: bool,
    /// edge-vepa VM mode.
    pub vm_mode: VmMode,
    /// Egress scheduler (8 classes), if configured.
    pub egress: Option<crate::qos::sched::SchedConfig>,
}

/// A registered multicast group.
#[derive(Clone, Debug, Default)]
pub struct Group {
    /// Member ports.
    pub ports: u64,
    /// Receivers by MAC (port, mac) for multicast-to-unicast ports.
    pub hosts: Vec<(PortId, u64)>,
}

/// Everything the pipeline reads about the switch's configuration.
pub struct Model {
    /// Role.
    pub role: Role,
    /// Ports by index.
    pub ports: Vec<PortInfo>,
    /// Largest untagged frame.
    pub mtu: usize,
    /// The switch's own MAC (u64), or u64::MAX when none.
    pub own_mac: u64,
    /// Ports that are members of each VLAN.
    pub vlan_ports: Box<[u64; 4096]>,
    /// Ports in forwarding state.
    pub fwd_mask: u64,
    /// Ports that flood unknown unicast.
    pub unknown_mask: u64,
    /// Ports that flood unregistered multicast.
    pub mcast_mask: u64,
    /// Ports that flood broadcast.
    pub bcast_mask: u64,
    /// Isolated ports.
    pub isolated_mask: u64,
    /// Ports with reflective relay.
    pub rr_mask: u64,
    /// Edge: the uplink port.
    pub uplink: Option<PortId>,
    /// Edge-vepa VM ports by VM mode.
    pub vepa_mask: u64,
    /// Edge-vepa bridge-mode VM ports.
    pub bridge_mode_mask: u64,
    /// Registered groups.
    pub groups: Vec<Group>,
    /// (group MAC, VID) → index into `groups`.
    pub group_index: crate::macvid::MacVidMap,
    /// VMs by (MAC, VID) → port (edge roles; also static entries in the FDB).
    pub vms: HashMap<(u64, u16), PortId>,
    /// Burst size.
    pub burst: usize,
    /// Entries of each worker's flow cache in front of the ACL classifier (0 = off).
    pub flow_cache: usize,
    /// Milliseconds of FDB ageing.
    pub aging_ms: u64,
    /// VSIs, ACLs, QoS references.
    pub policy: PolicySet,
    /// Snapshot generation (0 for the first; each reload +1).
    pub gen: u64,
}

impl Model {
    /// Compile a validated config.
    pub fn from_config(c: &Config) -> Result<Model, String> {
        let mut ports = Vec::new();
        let mut vlan_ports = Box::new([0u64; 4096]);
        let (mut fwd, mut unk, mut mc, mut bc, mut iso, mut rr, mut vepa, mut brm) =
            (0, 0, 0, 0, 0, 0, 0, 0);
        let mut uplink = None;
        for (i, p) in c.port.iter().enumerate() {
            let bit = 1u64 << i;
            let mut vlans = VlanSet::new();
            for v in Config::port_vlans(p) {
                vlans.insert(v);
                vlan_ports[v as usize] |= bit;
            }
            let (pvid, untagged_vid) = match p.mode {
                PortMode::Access => (p.pvid.unwrap_or(1), p.pvid.unwrap_or(1)),
                PortMode::Trunk => (p.pvid.unwrap_or(0), p.pvid.unwrap_or(0)),
            };
            if p.state == PortState::Forwarding {
                fwd |= bit;
            }
            if p.flood_unknown {
                unk |= bit;
            }
            if p.flood_multicast {
                mc |= bit;
            }
            if p.flood_broadcast {
                bc |= bit;
            }
            if p.isolated {
                iso |= bit;
            }
            if p.reflective_relay.static_on() {
                rr |= bit;
            }
            if p.uplink {
                uplink = Some(PortId(i as u16));
            } else if c.switch.role == Role::EdgeVepa {
                match p.vm_mode {
                    VmMode::Vepa => vepa |= bit,
                    VmMode::Bridge => brm |= bit,
                    VmMode::Private => {}
                }
            }
            ports.push(PortInfo {
                name: p.name.clone(),
                mode: p.mode,
                pvid,
                untagged_vid,
                vlans,
                rr: p.reflective_relay.static_on(),
                uplink: p.uplink,
                learning: p.learning && c.switch.role != Role::EdgeVepa,
                locked: p.locked,
                state: p.state,
                m2u: p.multicast_to_unicast,
                vm_mode: p.vm_mode,
                egress: match &p.egress {
                    Some(g) => Some(
                        crate::policy::sched_config(g, c.switch.workers.len())
                            .map_err(|e| format!("port[{i}].egress: {e}"))?,
                    ),
                    None => None,
                },
            });
        }
        let (mut groups, mut gidx) = (Vec::new(), Vec::new());
        for g in &c.mdb {
            let mut e = Group::default();
            for pn in &g.ports {
                if let Some(i) = c.port_index(pn) {
                    e.ports |= 1 << i;
                }
            }
            for h in &g.hosts {
                if let Some(i) = c.port_index(&h.port) {
                    e.hosts.push((PortId(i as u16), h.mac.to_u64()));
                }
            }
            gidx.push((g.group.to_u64(), g.vlan, groups.len() as u32));
            groups.push(e);
        }
        let mut vms = HashMap::new();
        for v in &c.vm {
            if let Some(i) = c.port_index(&v.port) {
                vms.insert((v.mac.to_u64(), v.vlan), PortId(i as u16));
            }
        }
        debug_assert!(ports.len() <= MAX_PORTS);
        let policy = PolicySet::compile(c)?;
        Ok(Model {
            role: c.switch.role,
            ports,
            mtu: c.switch.mtu,
            own_mac: c.switch.mac.map(|m| m.to_u64()).unwrap_or(u64::MAX),
            vlan_ports,
            fwd_mask: fwd,
            unknown_mask: unk,
            mcast_mask: mc,
            bcast_mask: bc,
            isolated_mask: iso,
            rr_mask: rr,
            uplink,
            vepa_mask: vepa,
            bridge_mode_mask: brm,
            groups,
            group_index: crate::macvid::MacVidMap::build(&gidx),
            vms,
            burst: c.switch.burst,
            flow_cache: c.switch.flow_cache,
            aging_ms: c.switch.fdb.aging_s * 1000,
            policy,
            gen: 0,
        })
    }

    /// A new FDB for this model, with the VMs installed as static entries.
    pub fn new_fdb(&self, c: &Config) -> Fdb {
        let f = Fdb::new(
            c.switch.fdb.capacity,
            c.switch.fdb.per_port_limit,
            self.aging_ms,
        );
        for (&(mac, vid), &port) in &self.vms {
            f.insert_static(Mac::from_u64(mac), Vid(vid), port);
        }
        f
    }

    /// The registered group (group MAC, VID), if any.
    #[inline(always)]
    pub fn group(&self, mac: u64, vid: u16) -> Option<&Group> {
        self.group_index
            .get(mac, vid)
            .map(|i| &self.groups[i as usize])
    }

    /// Port index by name.
    pub fn port_id(&self, name: &str) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .map(|i| PortId(i as u16))
    }
}

/// Where the current snapshot lives: the control thread stores a new one, a
/// worker checks the generation (one relaxed load) before each burst and
/// clones the `Arc` only when it changed. The old snapshot is freed when the
/// last worker lets go of it.
pub struct SnapshotCell {
    gen: std::sync::atomic::AtomicU64,
    cur: std::sync::Mutex<std::sync::Arc<Model>>,
}

impl SnapshotCell {
    /// A cell holding `m`.
    pub fn new(m: std::sync::Arc<Model>) -> Self {
        SnapshotCell {
            gen: std::sync::atomic::AtomicU64::new(m.gen),
            cur: std::sync::Mutex::new(m),
        }
    }
    /// Current generation.
    #[inline(always)]
    pub fn generation(&self) -> u64 {
        self.gen.load(std::sync::atomic::Ordering::Acquire)
    }
    /// The current snapshot.
    pub fn load(&self) -> std::sync::Arc<Model> {
        self.cur.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Publish a new snapshot; it gets the next generation number.
    pub fn store(&self, mut m: Model) -> u64 {
        let mut g = self.cur.lock().unwrap_or_else(|p| p.into_inner());
        m.gen = g.gen + 1;
        let gen = m.gen;
        *g = std::sync::Arc::new(m);
        self.gen.store(gen, std::sync::atomic::Ordering::Release);
        gen
    }
}
