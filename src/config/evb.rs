//! 802.1Qbg configuration: per-port `evb` and `reflective_relay`, the
//! switch-wide `[evb]` table (timers, group ids, punt rate, the VSI type
//! file) and `[[vsi_type]]` (the default policy store's contents).

use super::{e, Config, ConfigError, PortMode, Role};
// A relative `vsi_type_file` is checked by `Config::load`, once the config's directory is known.
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `reflective_relay = true | false | "negotiate"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RrCfg {
    /// Off (`false`, the default).
    #[default]
    Off,
    /// Always on (`true`).
    On,
    /// On while EVB negotiation says so (RRREQ from the station, RRCTR sent).
    Negotiate,
}

impl RrCfg {
    /// True when the data path reflects on this port from the start (`true`).
    pub fn static_on(self) -> bool {
        self == RrCfg::On
    }
    /// True unless `false`.
    pub fn is_set(self) -> bool {
        self != RrCfg::Off
    }
}

impl<'de> Deserialize<'de> for RrCfg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            B(bool),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::B(true) => Ok(RrCfg::On),
            Raw::B(false) => Ok(RrCfg::Off),
            Raw::S(s) if s == "negotiate" => Ok(RrCfg::Negotiate),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "{s:?}: expected true, false or \"negotiate\""
            ))),
        }
    }
}

impl Serialize for RrCfg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RrCfg::Off => s.serialize_bool(false),
            RrCfg::On => s.serialize_bool(true),
            RrCfg::Negotiate => s.serialize_str("negotiate"),
        }
    }
}

/// `evb = "bridge" | "station" | "off"` on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EvbPortCfg {
    /// No EVB on this port (the default).
    #[default]
    Off,
    /// hairpin is the EVB bridge on this port: advertises RRCAP, answers VDP.
    Bridge,
    /// hairpin is the EVB station on this port (edge roles): requests RR, sends VDP.
    Station,
}

fn d_r() -> u8 {
    3
}
fn d_rte() -> u8 {
    8
}
fn d_rwd() -> u8 {
    20
}
fn d_rka() -> u8 {
    20
}
fn d_punt_rate() -> u32 {
    1000
}
fn d_max_vsis() -> usize {
    4096
}

/// `[evb]`: switch-wide 802.1Qbg settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvbCfg {
    /// Maximum ECP retransmissions R (0-7).
    #[serde(default = "d_r")]
    pub r: u8,
    /// ECP retransmission exponent RTE (0-31): 10 µs × 2^RTE.
    #[serde(default = "d_rte")]
    pub rte: u8,
    /// Resource wait delay exponent RWD (0-31).
    #[serde(default = "d_rwd")]
    pub rwd: u8,
    /// Keep-alive exponent RKA (0-31).
    #[serde(default = "d_rka")]
    pub rka: u8,
    /// Support group-id filter formats (BGID / SGID).
    #[serde(default)]
    pub group_ids: bool,
    /// Punted control frames accepted per port per second (more are dropped, counted).
    #[serde(default = "d_punt_rate")]
    pub punt_rate: u32,
    /// Most VSIs the bridge keeps per port (beyond: refused with reason 2).
    #[serde(default = "d_max_vsis")]
    pub max_vsis_per_port: usize,
    /// A TOML (`[[vsi_type]]` tables) or JSON (`{"vsi_type": [...]}`) file of VSI
    /// types, used instead of the config's own `[[vsi_type]]`.
    #[serde(default)]
    pub vsi_type_file: Option<String>,
}

impl Default for EvbCfg {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

/// `[[vsi_type]]`: what a VSI of this type id and version gets.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VsiTypeCfg {
    /// VSI type id (24 bits).
    pub id: u32,
    /// VSI type version (0-255).
    pub version: u8,
    /// The VLAN the VSI is put in (a request with VID 0 gets it back).
    #[serde(default)]
    pub vlan: Option<u16>,
    /// Or a pool `"LO-HI"`: each VSI gets its own free VLAN from it.
    #[serde(default)]
    pub vlan_pool: Option<String>,
    /// The `[policy.NAME]` applied to the VSI's traffic (ACL, class, meter).
    #[serde(default)]
    pub policy: Option<String>,
    /// PCP returned to the station (with PS set) in the filter's VID word.
    #[serde(default)]
    pub pcp: Option<u8>,
}

/// `[[vsi]]`: a VSI (VM) this edge announces to the adjacent bridge with VDP
/// (EVB station role). Once the bridge acknowledges it, the VM is installed on
/// its port with the VLAN the bridge answered.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VsiCfg {
    /// Name (unique).
    pub name: String,
    /// The VM's MAC.
    pub mac: crate::types::Mac,
    /// The VM port it sits behind.
    pub port: String,
    /// VSI type id (24 bits) the bridge looks up.
    pub type_id: u32,
    /// VSI type version.
    pub type_version: u8,
    /// VSI instance id (UUID).
    pub uuid: String,
    /// VLAN to ask for; 0 (the default) lets the bridge assign it.
    #[serde(default)]
    pub vlan: u16,
}

/// The file named by `evb.vsi_type_file`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VsiTypeFile {
    /// The types.
    #[serde(default)]
    pub vsi_type: Vec<VsiTypeCfg>,
}

/// Parse `"LO-HI"` into an inclusive VLAN range within 1..=4094.
pub fn parse_pool(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{s:?} is not a VLAN range \"LO-HI\" within 1-4094");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = a.trim().parse().map_err(|_| bad())?;
    let hi: u16 = b.trim().parse().map_err(|_| bad())?;
    if lo == 0 || hi > 4094 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// Read and validate a VSI type file (TOML, or JSON when the name ends in `.json`).
pub fn load_type_file(path: &std::path::Path) -> Result<Vec<VsiTypeCfg>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let f: VsiTypeFile = if path.extension().is_some_and(|x| x == "json") {
        serde_json::from_str(&text).map_err(|err| format!("{}: {err}", path.display()))?
    } else {
        toml::from_str(&text).map_err(|err| format!("{}: {err}", path.display()))?
    };
    Ok(f.vsi_type)
}

impl Config {
    /// The VSI types of the default store: the file's when `evb.vsi_type_file`
    /// is set, the config's `[[vsi_type]]` otherwise.
    pub fn vsi_types(&self) -> Result<Vec<VsiTypeCfg>, ConfigError> {
        match &self.evb.vsi_type_file {
            Some(f) => load_type_file(&self.resolve(f)).map_err(|r| e("evb.vsi_type_file", r)),
            None => Ok(self.vsi_type.clone()),
        }
    }

    /// Check one list of VSI types; `at` names the key prefix.
    pub fn check_vsi_types(&self, types: &[VsiTypeCfg], at: &str) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashMap::new();
        for (i, t) in types.iter().enumerate() {
            let k = |f: &str| format!("{at}[{i}].{f}");
            if t.id >= 1 << 24 {
                return Err(e(k("id"), format!("{} does not fit 24 bits", t.id)));
            }
            if let Some(j) = seen.insert((t.id, t.version), i) {
                return Err(e(
                    k("id"),
                    format!(
                        "type {} version {} already defined by {at}[{j}]",
                        t.id, t.version
                    ),
                ));
            }
            match (&t.vlan, &t.vlan_pool) {
                (Some(_), Some(_)) => {
                    return Err(e(k("vlan_pool"), "set vlan or vlan_pool, not both"))
                }
                (None, None) => return Err(e(k("vlan"), "needs vlan or vlan_pool")),
                (Some(v), None) if !(1..=4094).contains(v) => {
                    return Err(e(k("vlan"), format!("{v} is out of range 1..=4094")))
                }
                (None, Some(p)) => {
                    parse_pool(p).map_err(|r| e(k("vlan_pool"), r))?;
                }
                _ => {}
            }
            if let Some(p) = &t.policy {
                if !self.policy.contains_key(p) {
                    return Err(e(k("policy"), format!("no [policy.{p}]")));
                }
            }
            if let Some(p) = t.pcp {
                if p > 7 {
                    return Err(e(k("pcp"), format!("{p} is out of range 0..=7")));
                }
            }
        }
        Ok(())
    }

    fn validate_vsis(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashMap::new();
        let station = self.port.iter().any(|p| p.evb == EvbPortCfg::Station);
        for (i, v) in self.vsi.iter().enumerate() {
            let at = |k: &str| format!("vsi[{i}].{k}");
            if !station {
                return Err(e(
                    format!("vsi[{i}]"),
                    "[[vsi]] needs an edge uplink with evb = \"station\"",
                ));
            }
            if let Some(j) = names.insert(v.name.as_str(), i) {
                return Err(e(
                    at("name"),
                    format!("{:?} already used by vsi[{j}]", v.name),
                ));
            }
            if v.mac.is_group() || v.mac.is_zero() {
                return Err(e(
                    at("mac"),
                    format!("{} is a group or zero address", v.mac),
                ));
            }
            match self.port_index(&v.port) {
                None => return Err(e(at("port"), format!("no port named {:?}", v.port))),
                Some(pi) if self.port[pi].uplink => {
                    return Err(e(
                        at("port"),
                        format!("{:?} is the uplink; VMs sit behind VM ports", v.port),
                    ))
                }
                _ => {}
            }
            if v.type_id >= 1 << 24 {
                return Err(e(
                    at("type_id"),
                    format!("{} does not fit 24 bits", v.type_id),
                ));
            }
            super::parse_uuid(&v.uuid).map_err(|r| e(at("uuid"), r))?;
            if v.vlan > 4094 {
                return Err(e(
                    at("vlan"),
                    format!(
                        "{} is out of range 0..=4094 (0 = assigned by the bridge)",
                        v.vlan
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Check `[evb]`, `[[vsi_type]]`, `[[vsi]]` and the ports' `evb` / `reflective_relay`.
    pub fn validate_evb(&self) -> Result<(), ConfigError> {
        let v = &self.evb;
        if v.r > 7 {
            return Err(e("evb.r", format!("{} is out of range 0..=7", v.r)));
        }
        for (k, x) in [("rte", v.rte), ("rwd", v.rwd), ("rka", v.rka)] {
            if x > 31 {
                return Err(e(format!("evb.{k}"), format!("{x} is out of range 0..=31")));
            }
        }
        if !(1..=1 << 20).contains(&v.max_vsis_per_port) {
            return Err(e(
                "evb.max_vsis_per_port",
                format!("{} is out of range 1..=1048576", v.max_vsis_per_port),
            ));
        }
        if v.punt_rate == 0 {
            return Err(e("evb.punt_rate", "must be at least 1 frame per second"));
        }
        if v.vsi_type_file.is_some() && !self.vsi_type.is_empty() {
            return Err(e(
                "vsi_type",
                "VSI types come from evb.vsi_type_file; remove [[vsi_type]] or the file",
            ));
        }
        self.check_vsi_types(&self.vsi_type, "vsi_type")?;
        let file_known = v
            .vsi_type_file
            .as_deref()
            .is_some_and(|f| self.base_dir.is_some() || std::path::Path::new(f).is_absolute());
        if file_known {
            let types = self.vsi_types()?;
            self.check_vsi_types(&types, "evb.vsi_type_file: vsi_type")?;
        }
        for (i, p) in self.port.iter().enumerate() {
            let at = |k: &str| format!("port[{i}].{k}");
            match p.evb {
                EvbPortCfg::Bridge => {
                    if self.switch.role != Role::Bridge {
                        return Err(e(at("evb"), "evb = \"bridge\" needs role = \"bridge\""));
                    }
                    if p.mode != PortMode::Trunk {
                        return Err(e(
                            at("mode"),
                            "an EVB bridge port is a trunk (VLANs arrive with VDP associations)",
                        ));
                    }
                }
                EvbPortCfg::Station => {
                    if self.switch.role == Role::Bridge || !p.uplink {
                        return Err(e(
                            at("evb"),
                            "evb = \"station\" is for the uplink of an edge role",
                        ));
                    }
                }
                EvbPortCfg::Off => {}
            }
            if p.reflective_relay == RrCfg::Negotiate && p.evb != EvbPortCfg::Bridge {
                return Err(e(
                    at("reflective_relay"),
                    "\"negotiate\" needs evb = \"bridge\" on the port",
                ));
            }
        }
        self.validate_vsis()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[switch]\nworkers=[0]\n[policy.web]\ndefault='permit'\n[[port]]\nname='hv1'\nmode='trunk'\nvlans=[]\nevb='bridge'\nreflective_relay='negotiate'\n";

    #[test]
    fn issue_example_parses() {
        let c = Config::parse(&format!(
            "{BASE}[[vsi_type]]\nid=5\nversion=1\nvlan=100\npolicy='web'\n[[vsi_type]]\nid=6\nversion=1\nvlan_pool='200-299'\npcp=5\n"
        ))
        .unwrap();
        assert_eq!(c.port[0].evb, EvbPortCfg::Bridge);
        assert_eq!(c.port[0].reflective_relay, RrCfg::Negotiate);
        assert!(!c.port[0].reflective_relay.static_on());
        assert_eq!(c.vsi_types().unwrap().len(), 2);
        assert_eq!(c.evb.rka, 20);
        let s = toml::to_string(&c).unwrap();
        assert!(s.contains("reflective_relay = \"negotiate\""), "{s}");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[evb]\nr=8\n", "evb.r"),
            ("[evb]\nrka=32\n", "evb.rka"),
            ("[evb]\npunt_rate=0\n", "evb.punt_rate"),
            ("[evb]\nmax_vsis_per_port=0\n", "evb.max_vsis_per_port"),
            (
                "[[vsi_type]]\nid=16777216\nversion=1\nvlan=1\n",
                "vsi_type[0].id",
            ),
            ("[[vsi_type]]\nid=1\nversion=1\n", "vsi_type[0].vlan"),
            (
                "[[vsi_type]]\nid=1\nversion=1\nvlan=4095\n",
                "vsi_type[0].vlan",
            ),
            (
                "[[vsi_type]]\nid=1\nversion=1\nvlan=1\nvlan_pool='1-2'\n",
                "vsi_type[0].vlan_pool",
            ),
            (
                "[[vsi_type]]\nid=1\nversion=1\nvlan_pool='9-2'\n",
                "vsi_type[0].vlan_pool",
            ),
            (
                "[[vsi_type]]\nid=1\nversion=1\nvlan=1\npolicy='nope'\n",
                "vsi_type[0].policy",
            ),
            (
                "[[vsi_type]]\nid=1\nversion=1\nvlan=1\npcp=8\n",
                "vsi_type[0].pcp",
            ),
            (
                "[[vsi_type]]\nid=1\nversion=1\nvlan=1\n[[vsi_type]]\nid=1\nversion=1\nvlan=2\n",
                "vsi_type[1].id",
            ),
            (
                "[evb]\nvsi_type_file='/nonexistent/types.toml'\n",
                "evb.vsi_type_file",
            ),
            (
                "[[port]]\nname='x'\nmode='trunk'\nvlans=[1]\nreflective_relay='negotiate'\n",
                "port[1].reflective_relay",
            ),
            (
                "[[port]]\nname='x'\nmode='access'\nevb='bridge'\n",
                "port[1].mode",
            ),
            (
                "[[port]]\nname='x'\nmode='trunk'\nvlans=[1]\nevb='station'\n",
                "port[1].evb",
            ),
            (
                "[[port]]\nname='x'\nmode='trunk'\nvlans=[1]\nreflective_relay='maybe'\n",
                "port[1].reflective_relay",
            ),
        ];
        for (extra, key) in cases {
            let err = Config::parse(&format!("{BASE}{extra}")).unwrap_err();
            assert_eq!(err.path, key, "{extra}: {err}");
        }
    }

    #[test]
    fn vsi_table_errors_name_the_key() {
        let edge = "[switch]\nrole='edge-vepa'\nworkers=[0]\n[[port]]\nname='up'\nuplink=true\nmode='trunk'\nvlans=[]\nevb='station'\n[[port]]\nname='vm1'\n";
        let ok = "[[vsi]]\nname='a'\nmac='02:00:00:00:00:01'\nport='vm1'\ntype_id=5\ntype_version=1\nuuid='6ba7b810-9dad-11d1-80b4-00c04fd430c8'\n";
        let c = Config::parse(&format!("{edge}{ok}")).unwrap();
        assert_eq!(c.vsi[0].vlan, 0);
        let cases = [
            (ok.replace("port='vm1'", "port='up'"), "vsi[0].port"),
            (ok.replace("port='vm1'", "port='nope'"), "vsi[0].port"),
            (
                ok.replace("02:00:00:00:00:01", "01:00:00:00:00:01"),
                "vsi[0].mac",
            ),
            (
                ok.replace("type_id=5", "type_id=16777216"),
                "vsi[0].type_id",
            ),
            (ok.replace("6ba7b810", "zz"), "vsi[0].uuid"),
            (format!("{ok}vlan=4095\n"), "vsi[0].vlan"),
            (format!("{ok}{ok}"), "vsi[1].name"),
        ];
        for (extra, key) in cases {
            let err = Config::parse(&format!("{edge}{extra}")).unwrap_err();
            assert_eq!(err.path, key, "{extra}: {err}");
        }
        let err = Config::parse(&format!("{BASE}{ok}")).unwrap_err();
        assert_eq!(err.path, "vsi[0]", "{err}");
    }

    #[test]
    fn type_file_toml_and_json() {
        let dir = std::env::temp_dir().join(format!("hairpin-vsi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = dir.join("types.toml");
        std::fs::write(&t, "[[vsi_type]]\nid=5\nversion=1\nvlan=100\n").unwrap();
        let j = dir.join("types.json");
        std::fs::write(
            &j,
            r#"{"vsi_type":[{"id":7,"version":2,"vlan_pool":"10-20","policy":"web"}]}"#,
        )
        .unwrap();
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"vsi_type":[{"id":7}]}"#).unwrap();
        let broken = dir.join("broken.toml");
        std::fs::write(&broken, "[[vsi_type]]\nid=5\nversion=1\nvlan=5000\n").unwrap();
        let cfg = |f: &std::path::Path| {
            Config::parse(&format!("{BASE}[evb]\nvsi_type_file='{}'\n", f.display()))
        };
        assert_eq!(cfg(&t).unwrap().vsi_types().unwrap()[0].vlan, Some(100));
        assert_eq!(cfg(&j).unwrap().vsi_types().unwrap()[0].id, 7);
        assert_eq!(cfg(&bad).unwrap_err().path, "evb.vsi_type_file");
        let e = cfg(&broken).unwrap_err();
        assert_eq!(e.path, "evb.vsi_type_file: vsi_type[0].vlan", "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pools() {
        assert_eq!(parse_pool("100-199"), Ok((100, 199)));
        assert_eq!(parse_pool("5 - 5"), Ok((5, 5)));
        for b in ["", "1", "0-5", "5-4095", "a-b", "9-2"] {
            assert!(parse_pool(b).is_err(), "{b}");
        }
    }
}
