//! Turning control-plane results into the data path: a new snapshot and FDB
//! changes.
//!
//! The snapshot is compiled from the base config with an overlay: ports with
//! `reflective_relay = "negotiate"` get the negotiated state; each installed
//! VSI becomes a `[[vm]]` (VSI table entry, policy, anti-spoofing binding
//! through `source_guard`, static FDB entry) and its VLAN is added to the
//! port's VLANs (so a VLAN leaves the port with its last VSI). Then the FDB
//! follows: entries of VSIs that went are removed; a VSI that appeared (or
//! moved) first has every entry for its MAC/VID removed — whatever port it
//! points at — and then gets its static entry on its port.
//!
//! The new snapshot is stored before the FDB changes, so once the association
//! is answered no frame of the VM is forwarded under another port's policy.

use super::vdp::Installed;
use crate::config::evb::RrCfg;
use crate::config::{Config, PortMode, VmCfg};
use crate::fdb::Fdb;
use crate::pipeline::model::SnapshotCell;
use crate::pipeline::Model;
use crate::types::{PortId, Vid};
use crate::wire::vdp::VsiIdFormat;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Format a UUID as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The name an installed VSI gets in the VSI table.
pub fn vsi_name(base: &Config, i: &Installed) -> String {
    let port = base
        .port
        .get(usize::from(i.port.0))
        .map_or("?", |p| p.name.as_str());
    format!("vdp:{port}:{}:{}", i.mac, i.vid)
}

/// A VM of this edge that the bridge associated (station role), with the
/// VLAN it answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeVm {
    /// Name (from `[[vsi]]`).
    pub name: String,
    /// MAC.
    pub mac: crate::types::Mac,
    /// VM port index.
    pub port: PortId,
    /// VLAN in force.
    pub vid: u16,
    /// Instance id.
    pub uuid: [u8; 16],
}

/// The base config with the overlay. VSIs whose (MAC, VID) is already a
/// `[[vm]]` of the base config are left out (the static one wins). `edge`:
/// the VMs an edge's bridge associated; each becomes a `[[vm]]` on its port
/// in its VLAN (an access port takes the VLAN as its `pvid`), and the VLAN
/// is added to the uplink.
pub fn overlay(
    base: &Config,
    rr: &[Option<bool>],
    installed: &[Installed],
    edge: &[EdgeVm],
) -> Config {
    let mut c = base.clone();
    let taken: BTreeSet<_> = base.vm.iter().map(|v| (v.mac, v.vlan)).collect();
    for v in edge {
        if v.vid == 0 || taken.contains(&(v.mac, v.vid)) {
            continue;
        }
        let Some(p) = c.port.get_mut(usize::from(v.port.0)) else {
            continue;
        };
        match p.mode {
            PortMode::Access => p.pvid = Some(v.vid),
            PortMode::Trunk => {
                if !Config::port_vlans(p).contains(&v.vid) {
                    p.vlans.push(v.vid);
                }
            }
        }
        let port = p.name.clone();
        for u in c.port.iter_mut().filter(|u| u.uplink) {
            if !Config::port_vlans(u).contains(&v.vid) {
                u.vlans.push(v.vid);
            }
        }
        c.vm.push(VmCfg {
            name: v.name.clone(),
            mac: v.mac,
            vlan: v.vid,
            port,
            policy: None,
            uuid: Some(format_uuid(&v.uuid)),
            meter: None,
            origin: crate::config::VsiOrigin::BridgeAssociated,
        });
    }
    for (i, p) in c.port.iter_mut().enumerate() {
        if let Some(Some(on)) = rr.get(i) {
            p.reflective_relay = if *on { RrCfg::On } else { RrCfg::Off };
        }
    }
    for i in installed {
        let Some(p) = c.port.get_mut(usize::from(i.port.0)) else {
            continue;
        };
        if p.mode == PortMode::Trunk && !Config::port_vlans(p).contains(&i.vid) {
            p.vlans.push(i.vid);
        }
        if i.mac.is_zero() || taken.contains(&(i.mac, i.vid)) {
            continue;
        }
        let port = p.name.clone();
        c.vm.push(VmCfg {
            name: vsi_name(base, i),
            mac: i.mac,
            vlan: i.vid,
            port,
            policy: i.policy.clone(),
            uuid: (i.vsiid.format == VsiIdFormat::Uuid).then(|| format_uuid(&i.vsiid.bytes)),
            meter: None,
            origin: crate::config::VsiOrigin::VdpAssociated,
        });
    }
    c
}

/// Applies control-plane results to one switch's snapshot cell and FDB.
pub struct Applier {
    base: Config,
    cell: Arc<SnapshotCell>,
    fdb: Arc<Fdb>,
    last: Vec<Installed>,
    /// Snapshots published.
    pub applied: u64,
    /// Overlays that did not compile (the previous snapshot stays).
    pub failed: u64,
    /// Static FDB entries that did not fit.
    pub fdb_full: u64,
}

impl Applier {
    /// For the switch whose snapshot lives in `cell`, built from `base`.
    pub fn new(base: Config, cell: Arc<SnapshotCell>, fdb: Arc<Fdb>) -> Applier {
        Applier {
            base,
            cell,
            fdb,
            last: Vec::new(),
            applied: 0,
            failed: 0,
            fdb_full: 0,
        }
    }

    /// A new base config (after a reload); the next [`Applier::apply`] uses it.
    pub fn set_base(&mut self, base: Config) {
        self.base = base;
    }

    /// The config the overlay starts from.
    pub fn base(&self) -> &Config {
        &self.base
    }

    /// What the data path runs now, as JSON: the snapshot generation,
    /// reflective relay per port name, and the VSI table (name, port, MAC,
    /// VLAN, UUID, policy name). `hairpin run` prints it on every change.
    pub fn state(&self) -> serde_json::Value {
        let m = self.cell.load();
        let port = |p: PortId| {
            m.ports
                .get(usize::from(p.0))
                .map_or_else(|| p.0.to_string(), |x| x.name.clone())
        };
        let rr: serde_json::Map<_, _> = m
            .ports
            .iter()
            .map(|p| (p.name.clone(), serde_json::Value::Bool(p.rr)))
            .collect();
        let vsis: Vec<_> = m
            .policy
            .vsis
            .iter()
            .map(|v| {
                serde_json::json!({
                    "name": v.name,
                    "port": port(v.port),
                    "mac": v.mac.to_string(),
                    "vid": v.vid,
                    "uuid": v.uuid.as_ref().map(format_uuid),
                    "policy": v.policy.and_then(|i| m.policy.policies.get(i as usize)).map(|p| p.name.clone()),
                })
            })
            .collect();
        serde_json::json!({ "generation": self.cell.generation(), "rr": rr, "vsis": vsis })
    }

    /// Publish the snapshot for (`rr`, `installed`); returns its generation.
    pub fn apply(
        &mut self,
        rr: &[Option<bool>],
        installed: &[Installed],
        edge: &[EdgeVm],
    ) -> Result<u64, String> {
        let cfg = overlay(&self.base, rr, installed, edge);
        // Edge VMs get static FDB entries like bridge VSIs.
        let mut all = installed.to_vec();
        all.extend(edge.iter().filter(|v| v.vid != 0).map(|v| Installed {
            port: v.port,
            mac: v.mac,
            vid: v.vid,
            policy: None,
            vsiid: crate::wire::vdp::VsiId::uuid(v.uuid),
            type_id: 0,
        }));
        let installed = &all[..];
        let model = match Model::from_config(&cfg) {
            Ok(m) => m,
            Err(e) => {
                self.failed += 1;
                return Err(e);
            }
        };
        let gen = self.cell.store(model);
        let key = |i: &Installed| (i.mac, i.vid, i.port);
        let now: BTreeSet<_> = installed
            .iter()
            .filter(|i| !i.mac.is_zero())
            .map(key)
            .collect();
        let before: BTreeSet<_> = self
            .last
            .iter()
            .filter(|i| !i.mac.is_zero())
            .map(key)
            .collect();
        let static_vms: BTreeSet<_> = self.base.vm.iter().map(|v| (v.mac, v.vlan)).collect();
        for (mac, vid, _) in before.difference(&now) {
            if !static_vms.contains(&(*mac, *vid))
                && !now.iter().any(|(m, v, _)| m == mac && v == vid)
            {
                self.fdb.remove(*mac, Vid(*vid));
            }
        }
        for (mac, vid, port) in now.difference(&before) {
            if static_vms.contains(&(*mac, *vid)) {
                continue;
            }
            self.fdb.remove(*mac, Vid(*vid));
            if !self.fdb.insert_static(*mac, Vid(*vid), PortId(port.0)) {
                self.fdb_full += 1;
            }
        }
        self.last = installed.to_vec();
        self.applied += 1;
        Ok(gen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_format() {
        let u = [
            0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4,
            0x30, 0xc8,
        ];
        assert_eq!(format_uuid(&u), "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
        assert_eq!(crate::config::parse_uuid(&format_uuid(&u)).unwrap(), u);
    }
}
