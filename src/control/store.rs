//! The policy store: VSI type id + version → VLAN (or VLAN pool), policy
//! name, PCP. The VDP bridge asks it for every new association.
//!
//! [`PolicyStore`] is a trait so a network-wide store can replace the default
//! one (see `docs/qbg.md`, "Policy store"). A store may answer
//! [`Lookup::Pending`] (a remote fetch in flight); the bridge asks again on
//! every tick until the resource-wait delay (10 µs × 2^RWD) runs out.

use super::Nanos;
use crate::config::evb::{parse_pool, VsiTypeCfg};
use crate::config::Config;
use std::collections::BTreeMap;

/// Which VLAN(s) a VSI type puts its VSIs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VlanSpec {
    /// Every VSI of the type is in this VLAN.
    Fixed(u16),
    /// Each VSI gets a free VLAN of this inclusive range.
    Pool(u16, u16),
}

impl VlanSpec {
    /// Is `vid` a VLAN this type may use?
    pub fn allows(&self, vid: u16) -> bool {
        match *self {
            VlanSpec::Fixed(v) => v == vid,
            VlanSpec::Pool(lo, hi) => (lo..=hi).contains(&vid),
        }
    }
}

/// A VSI type as the store describes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VsiType {
    /// Type id (24 bits).
    pub id: u32,
    /// Version.
    pub version: u8,
    /// VLAN or pool.
    pub vlan: VlanSpec,
    /// Policy name (`[policy.NAME]`), if any.
    pub policy: Option<String>,
    /// PCP to return to the station, if the type assigns one.
    pub pcp: Option<u8>,
}

impl VsiType {
    /// From a validated `[[vsi_type]]`.
    pub fn from_cfg(t: &VsiTypeCfg) -> Result<VsiType, String> {
        let vlan = match (&t.vlan, &t.vlan_pool) {
            (Some(v), None) => VlanSpec::Fixed(*v),
            (None, Some(p)) => {
                let (lo, hi) = parse_pool(p)?;
                VlanSpec::Pool(lo, hi)
            }
            _ => return Err("needs exactly one of vlan, vlan_pool".into()),
        };
        Ok(VsiType {
            id: t.id,
            version: t.version,
            vlan,
            policy: t.policy.clone(),
            pcp: t.pcp,
        })
    }
}

/// The store's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The type.
    Found(VsiType),
    /// No such type id/version (a permanent failure).
    Unknown,
    /// The store cannot be reached (a transient failure).
    Unreachable,
    /// Not known yet: ask again later.
    Pending,
}

/// Where VSI types come from.
pub trait PolicyStore: Send {
    /// Look a type up at time `now`.
    fn lookup(&mut self, now: Nanos, id: u32, version: u8) -> Lookup;
    /// One line for logs and `hairpin stats`.
    fn describe(&self) -> String;
}

/// The default store: the types of the config (`[[vsi_type]]`) or of the file
/// it names (`evb.vsi_type_file`), read once.
#[derive(Clone, Debug, Default)]
pub struct StaticStore {
    types: BTreeMap<(u32, u8), VsiType>,
    source: String,
}

impl StaticStore {
    /// From validated type configs.
    pub fn new(types: &[VsiTypeCfg], source: &str) -> Result<StaticStore, String> {
        let mut m = BTreeMap::new();
        for (i, t) in types.iter().enumerate() {
            let v = VsiType::from_cfg(t).map_err(|r| format!("vsi_type[{i}]: {r}"))?;
            m.insert((v.id, v.version), v);
        }
        Ok(StaticStore {
            types: m,
            source: source.into(),
        })
    }
    /// The store a validated config describes.
    pub fn from_config(c: &Config) -> Result<StaticStore, String> {
        let types = c.vsi_types().map_err(|e| e.to_string())?;
        let src = match &c.evb.vsi_type_file {
            Some(f) => format!("file {f}"),
            None => "config [[vsi_type]]".into(),
        };
        Self::new(&types, &src)
    }
    /// Number of types.
    pub fn len(&self) -> usize {
        self.types.len()
    }
    /// True when no type is defined.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

impl PolicyStore for StaticStore {
    fn lookup(&mut self, _now: Nanos, id: u32, version: u8) -> Lookup {
        match self.types.get(&(id, version)) {
            Some(t) => Lookup::Found(t.clone()),
            None => Lookup::Unknown,
        }
    }
    fn describe(&self) -> String {
        format!(
            "static store, {} VSI types from {}",
            self.len(),
            self.source
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_store_lookup() {
        let c = Config::parse(
            "[switch]\nworkers=[0]\n[policy.web]\ndefault='permit'\n[[port]]\nname='a'\nmode='trunk'\nvlans=[1]\n[[vsi_type]]\nid=5\nversion=1\nvlan=100\npolicy='web'\n[[vsi_type]]\nid=5\nversion=2\nvlan_pool='200-210'\npcp=3\n",
        )
        .unwrap();
        let mut s = StaticStore::from_config(&c).unwrap();
        assert_eq!(s.len(), 2);
        match s.lookup(0, 5, 1) {
            Lookup::Found(t) => {
                assert_eq!(t.vlan, VlanSpec::Fixed(100));
                assert_eq!(t.policy.as_deref(), Some("web"));
                assert!(t.vlan.allows(100) && !t.vlan.allows(101));
            }
            other => panic!("{other:?}"),
        }
        match s.lookup(0, 5, 2) {
            Lookup::Found(t) => {
                assert_eq!(t.vlan, VlanSpec::Pool(200, 210));
                assert_eq!(t.pcp, Some(3));
                assert!(t.vlan.allows(210) && !t.vlan.allows(211));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.lookup(0, 6, 1), Lookup::Unknown);
        assert!(s.describe().contains("2 VSI types"));
    }
}
