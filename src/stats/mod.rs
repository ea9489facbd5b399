//! Drop reasons and per-core counters.
//!
//! One list (`drop_reasons!`) drives the enum, the names printed by `hairpin
//! stats`/`replay`, and `docs/counters.md`. Counters are plain `u64` owned by
//! one worker; every few hundred loops the worker publishes them into its
//! [`SharedCounters`] slots with relaxed stores, and readers sum the cores.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! drop_reasons {
    ($( #[doc = $doc:literal] $v:ident = $name:literal ),* $(,)?) => {
        /// Why a frame was dropped. Every drop in the switch has exactly one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $( #[doc = $doc] $v ),* }
        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$v),*];
            /// Number of reasons (size of the counter array).
            pub const N: usize = Self::ALL.len();
            /// Stable snake_case name used in counters, JSON and docs.
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$v => $name),* }
            }
            /// One-line description (the doc comment).
            pub fn describe(self) -> &'static str {
                match self { $(DropReason::$v => $doc.trim_start()),* }
            }
        }
    };
}

drop_reasons! {
    /// Frame shorter than an Ethernet header (14 bytes).
    Runt = "runt",
    /// Frame longer than the switch MTU (plus 4 bytes per VLAN tag).
    Oversize = "oversize",
    /// Source MAC is a group address or all zeros: it can never be learned.
    BadSrcMac = "bad_src_mac",
    /// Malformed VLAN tag (truncated tag, VID 4095).
    BadVlan = "bad_vlan",
    /// VLAN not in the ingress port's member set, or untagged frame on a trunk without a native VLAN.
    VlanIngress = "vlan_ingress",
    /// IEEE 802.3x pause frame (01-80-C2-00-00-01): never forwarded.
    Pause = "pause",
    /// Control frame for the control plane, but its queue was full.
    PuntFull = "punt_full",
    /// Ingress port is not forwarding (STP blocking, learning or disabled).
    PortState = "port_state",
    /// Known unicast whose destination is behind the ingress port, which has no reflective relay (802.1D rule).
    HairpinOff = "hairpin_off",
    /// Flooded frame with no eligible egress port.
    FloodEmpty = "flood_empty",
    /// Edge: unicast from the uplink to a MAC that is no VM behind this edge.
    NoVm = "no_vm",
    /// Edge: frame is a reflected copy of a local VM's own frame (not delivered back, not learned).
    Reflected = "reflected",
    /// Source port and destination port are both isolated.
    Isolated = "isolated",
    /// Egress queue full: the port did not accept the frame.
    TxFull = "tx_full",
    /// No buffer in the pool for a flood copy.
    NoBuf = "no_buf",
    /// Source MAC sent on a port other than its static (or locked) entry's port.
    StaticMove = "static_move",
}

/// Per-core counters: written by one worker only.
#[derive(Clone, Debug, Default)]
#[repr(align(64))]
pub struct CoreCounters {
    /// Frames received.
    pub rx_pkts: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted (accepted by the egress port).
    pub tx_pkts: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Drops by reason, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::N],
    /// Frames handed to the control plane.
    pub punted: u64,
    /// Extra copies made for flooding (a flood to k ports makes k-1 copies).
    pub flood_copies: u64,
    /// Frames sent back out their ingress port (reflective relay).
    pub reflected: u64,
    /// New FDB entries learned.
    pub fdb_learned: u64,
    /// FDB entries moved to another port (station moves).
    pub fdb_moves: u64,
    /// Sources not learned because the FDB or the port's learning limit was full.
    pub fdb_learn_refused: u64,
    /// Non-empty RX polls.
    pub bursts: u64,
    /// Empty RX polls.
    pub empty_polls: u64,
    /// TSC cycles spent on polls that found frames.
    pub busy_cycles: u64,
    /// TSC cycles spent on empty polls (and back-off sleeps).
    pub idle_cycles: u64,
}

impl CoreCounters {
    /// Count one drop.
    #[inline(always)]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }
    /// Sum of all drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
    /// Add another core's counters into this one.
    pub fn add(&mut self, o: &CoreCounters) {
        let mut a = self.to_array();
        for (x, y) in a.iter_mut().zip(o.to_array()) {
            *x += y;
        }
        *self = Self::from_array(&a);
    }
    /// Names of the scalar counters, in `to_array` order after the drops.
    pub const SCALARS: &'static [&'static str] = &[
        "rx_pkts",
        "rx_bytes",
        "tx_pkts",
        "tx_bytes",
        "punted",
        "flood_copies",
        "reflected",
        "fdb_learned",
        "fdb_moves",
        "fdb_learn_refused",
        "bursts",
        "empty_polls",
        "busy_cycles",
        "idle_cycles",
    ];
    /// Number of u64 slots: scalars then drops.
    pub const SLOTS: usize = Self::SCALARS.len() + DropReason::N;

    /// Flatten into scalars followed by drops.
    pub fn to_array(&self) -> [u64; Self::SLOTS] {
        let mut a = [0u64; Self::SLOTS];
        let s = [
            self.rx_pkts,
            self.rx_bytes,
            self.tx_pkts,
            self.tx_bytes,
            self.punted,
            self.flood_copies,
            self.reflected,
            self.fdb_learned,
            self.fdb_moves,
            self.fdb_learn_refused,
            self.bursts,
            self.empty_polls,
            self.busy_cycles,
            self.idle_cycles,
        ];
        a[..s.len()].copy_from_slice(&s);
        a[s.len()..].copy_from_slice(&self.drops);
        a
    }
    /// Inverse of `to_array`.
    pub fn from_array(a: &[u64; Self::SLOTS]) -> Self {
        let n = Self::SCALARS.len();
        let mut drops = [0u64; DropReason::N];
        drops.copy_from_slice(&a[n..]);
        CoreCounters {
            rx_pkts: a[0],
            rx_bytes: a[1],
            tx_pkts: a[2],
            tx_bytes: a[3],
            punted: a[4],
            flood_copies: a[5],
            reflected: a[6],
            fdb_learned: a[7],
            fdb_moves: a[8],
            fdb_learn_refused: a[9],
            bursts: a[10],
            empty_polls: a[11],
            busy_cycles: a[12],
            idle_cycles: a[13],
            drops,
        }
    }
    /// JSON object: scalars, then `drops` as `{name: count}` (all reasons, zeros included).
    pub fn to_json(&self) -> serde_json::Value {
        let a = self.to_array();
        let mut m = serde_json::Map::new();
        for (i, n) in Self::SCALARS.iter().enumerate() {
            m.insert((*n).into(), a[i].into());
        }
        let mut d = serde_json::Map::new();
        for r in DropReason::ALL {
            d.insert(r.name().into(), self.drops[*r as usize].into());
        }
        m.insert("drops".into(), d.into());
        m.insert("drops_total".into(), self.total_drops().into());
        serde_json::Value::Object(m)
    }
}

/// Per-port counters kept by each core (rx on the ports it polls, tx on every port).
#[derive(Clone, Copy, Debug, Default)]
pub struct PortCounters {
    /// Frames received on the port.
    pub rx_pkts: u64,
    /// Bytes received on the port.
    pub rx_bytes: u64,
    /// Frames the port accepted for transmission.
    pub tx_pkts: u64,
    /// Bytes the port accepted for transmission.
    pub tx_bytes: u64,
    /// Frames the port refused (TX queue full).
    pub tx_full: u64,
}

impl PortCounters {
    /// Add another set into this one.
    pub fn add(&mut self, o: &PortCounters) {
        self.rx_pkts += o.rx_pkts;
        self.rx_bytes += o.rx_bytes;
        self.tx_pkts += o.tx_pkts;
        self.tx_bytes += o.tx_bytes;
        self.tx_full += o.tx_full;
    }
    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "rx_pkts": self.rx_pkts, "rx_bytes": self.rx_bytes,
            "tx_pkts": self.tx_pkts, "tx_bytes": self.tx_bytes, "tx_full": self.tx_full,
        })
    }
}

/// A core's published counters: the worker stores, anyone loads.
pub struct SharedCounters {
    core: Vec<AtomicU64>,
    ports: Vec<[AtomicU64; 5]>,
}

impl SharedCounters {
    /// Slots for a core that sees `nports` ports.
    pub fn new(nports: usize) -> Self {
        SharedCounters {
            core: (0..CoreCounters::SLOTS).map(|_| AtomicU64::new(0)).collect(),
            ports: (0..nports).map(|_| Default::default()).collect(),
        }
    }
    /// Single writer: copy the worker's counters in (relaxed stores, no RMW).
    pub fn publish(&self, c: &CoreCounters, ports: &[PortCounters]) {
        for (slot, v) in self.core.iter().zip(c.to_array()) {
            slot.store(v, Ordering::Relaxed);
        }
        for (slot, p) in self.ports.iter().zip(ports) {
            let v = [p.rx_pkts, p.rx_bytes, p.tx_pkts, p.tx_bytes, p.tx_full];
            for (s, x) in slot.iter().zip(v) {
                s.store(x, Ordering::Relaxed);
            }
        }
    }
    /// Read the last published core counters.
    pub fn load(&self) -> CoreCounters {
        let mut a = [0u64; CoreCounters::SLOTS];
        for (x, s) in a.iter_mut().zip(&self.core) {
            *x = s.load(Ordering::Relaxed);
        }
        CoreCounters::from_array(&a)
    }
    /// Read the last published port counters.
    pub fn load_ports(&self) -> Vec<PortCounters> {
        self.ports
            .iter()
            .map(|s| {
                let v: Vec<u64> = s.iter().map(|x| x.load(Ordering::Relaxed)).collect();
                PortCounters {
                    rx_pkts: v[0],
                    rx_bytes: v[1],
                    tx_pkts: v[2],
                    tx_bytes: v[3],
                    tx_full: v[4],
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in DropReason::ALL {
            assert!(seen.insert(r.name()), "duplicate {}", r.name());
            assert!(r.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(!r.describe().is_empty());
        }
    }

    #[test]
    fn array_round_trip_and_publish() {
        let mut c = CoreCounters { rx_pkts: 7, idle_cycles: 9, ..Default::default() };
        c.drop(DropReason::TxFull);
        c.drop(DropReason::TxFull);
        assert_eq!(CoreCounters::from_array(&c.to_array()).to_array(), c.to_array());
        let s = SharedCounters::new(2);
        let p = [PortCounters { tx_full: 3, ..Default::default() }; 2];
        s.publish(&c, &p);
        let l = s.load();
        assert_eq!(l.drops[DropReason::TxFull as usize], 2);
        assert_eq!(l.rx_pkts, 7);
        assert_eq!(s.load_ports()[1].tx_full, 3);
        let j = c.to_json();
        assert_eq!(j["drops"]["tx_full"], 2);
        assert_eq!(j["drops_total"], 2);
    }
}
