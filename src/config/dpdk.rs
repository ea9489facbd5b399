//! `[dpdk]`: EAL arguments and ethdev settings for `backend = "dpdk:DEVICE"` ports.
//!
//! The section parses in every build so a config stays valid everywhere; a
//! `dpdk:` port is refused by validation when the `dpdk` feature is not built in.

use serde::{Deserialize, Serialize};

fn d_desc() -> u16 {
    1024
}
fn d_link_wait() -> u64 {
    5000
}
fn d_cache() -> u32 {
    256
}
fn d_true() -> bool {
    true
}

/// `[dpdk]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DpdkCfg {
    /// EAL arguments (`-l`, `--no-huge`, `-a`, `--vdev`, `--file-prefix`, ...);
    /// `hairpin run --config F -- ARGS` appends to these.
    #[serde(default)]
    pub eal_args: Vec<String>,
    /// RX descriptors per queue (32..=16384; the device may round it).
    #[serde(default = "d_desc")]
    pub rx_desc: u16,
    /// TX descriptors per queue (32..=16384; the device may round it).
    #[serde(default = "d_desc")]
    pub tx_desc: u16,
    /// How long to wait for each port's link after start, in ms (0 = do not wait).
    #[serde(default = "d_link_wait")]
    pub link_wait_ms: u64,
    /// Put every port in promiscuous mode (a switch port must see every address).
    #[serde(default = "d_true")]
    pub promiscuous: bool,
    /// With several workers, spread RX over the queues by RSS on the MAC/IP fields
    /// (where the device supports it).
    #[serde(default = "d_true")]
    pub rss: bool,
    /// Per-core mbuf cache of the mempool (0..=512).
    #[serde(default = "d_cache")]
    pub mempool_cache: u32,
}

impl Default for DpdkCfg {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

impl DpdkCfg {
    /// Check ranges; `Err((key, reason))` names the key under `dpdk.`.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (k, v) in [("rx_desc", self.rx_desc), ("tx_desc", self.tx_desc)] {
            if !(32..=16384).contains(&v) {
                return Err((
                    format!("dpdk.{k}"),
                    format!("{v} is out of range 32..=16384"),
                ));
            }
        }
        if self.mempool_cache > 512 {
            return Err((
                "dpdk.mempool_cache".into(),
                format!("{} is more than 512", self.mempool_cache),
            ));
        }
        if self.link_wait_ms > 600_000 {
            return Err(("dpdk.link_wait_ms".into(), "more than 10 minutes".into()));
        }
        for (i, a) in self.eal_args.iter().enumerate() {
            if a.contains('\0') {
                return Err((format!("dpdk.eal_args[{i}]"), "contains a NUL byte".into()));
            }
        }
        Ok(())
    }
}

/// The device part of `dpdk:DEVICE`: a PCI address (`0000:03:00.0`) or a
/// vdev with its arguments (`net_af_packet0,iface=veth0`). `None` if the
/// backend is not a dpdk one.
pub fn device(backend: &str) -> Option<&str> {
    backend.strip_prefix("dpdk:")
}

/// Check the device string of a `dpdk:` backend.
pub fn check_device(dev: &str) -> Result<(), String> {
    let name = dev.split(',').next().unwrap_or("");
    if name.is_empty() {
        return Err(format!(
            "\"dpdk:{dev}\": name a device: dpdk:PCI-ADDRESS (dpdk:0000:03:00.0) or dpdk:VDEV[,ARGS] (dpdk:net_ring0)"
        ));
    }
    if dev.contains(['\0', ' ']) {
        return Err(format!("\"dpdk:{dev}\": no spaces or NUL bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_ranges() {
        let d = DpdkCfg::default();
        assert_eq!((d.rx_desc, d.tx_desc, d.link_wait_ms), (1024, 1024, 5000));
        assert!(d.check().is_ok());
        let bad = DpdkCfg {
            rx_desc: 8,
            ..DpdkCfg::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "dpdk.rx_desc");
        let bad = DpdkCfg {
            mempool_cache: 1000,
            ..DpdkCfg::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "dpdk.mempool_cache");
    }

    const PORT: &str = "[[port]]\nname = \"p\"\nbackend = \"dpdk:net_ring0\"\n";

    #[cfg(not(feature = "dpdk"))]
    #[test]
    fn dpdk_backend_not_in_this_build() {
        let e = crate::config::Config::parse(PORT).unwrap_err();
        assert_eq!(e.path, "port[0].backend");
        assert!(e.reason.contains("not in this build"), "{e}");
    }

    #[cfg(feature = "dpdk")]
    #[test]
    fn dpdk_backend_accepted() {
        crate::config::Config::parse(PORT).unwrap();
        let e = crate::config::Config::parse(&PORT.replace("net_ring0", "")).unwrap_err();
        assert_eq!(e.path, "port[0].backend");
        let e = crate::config::Config::parse(&format!("{PORT}[dpdk]\ntx_desc = 1\n")).unwrap_err();
        assert_eq!(e.path, "dpdk.tx_desc");
    }

    #[test]
    fn device_strings() {
        assert_eq!(device("dpdk:net_ring0"), Some("net_ring0"));
        assert_eq!(device("ring"), None);
        assert!(check_device("0000:03:00.0").is_ok());
        assert!(check_device("net_af_packet0,iface=veth0").is_ok());
        assert!(check_device("").is_err());
        assert!(check_device(",iface=x").is_err());
    }
}
