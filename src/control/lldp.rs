//! The nearest-customer-bridge LLDP agent that carries the EVB TLV: frame
//! building, the transmit timer and reading a received LLDPDU.
//!
//! Only LLDPDUs sent to 01-80-C2-00-00-00 feed EVB; an EVB TLV in an LLDPDU
//! for another agent (e.g. the nearest bridge, 01-80-C2-00-00-0E) is ignored,
//! as lldpad's `evb22_rchange` does.

use super::Nanos;
use crate::types::Mac;
use crate::wire::evb::{EvbRepr, TLV_LEN as EVB_TLV_LEN};
use crate::wire::lldp::{tlv_header, tlv_type, Lldp, NEAREST_CUSTOMER_BRIDGE};
use crate::wire::{ethertype, Eth};

/// Seconds between LLDPDUs (802.1AB msgTxInterval default).
pub const TX_INTERVAL_S: u64 = 30;
/// TTL multiplier (msgTxHold): TTL = interval × hold.
pub const TX_HOLD: u64 = 4;
/// Frames sent at 1 s spacing after a change (fast start).
pub const TX_FAST: u8 = 3;

/// What a received LLDP frame means for EVB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LldpRx {
    /// An LLDPDU of the nearest-customer-bridge agent: its EVB TLV (if any) and TTL.
    Evb {
        /// The EVB TLV, when present and well formed.
        evb: Option<EvbRepr>,
        /// TTL in seconds.
        ttl: u16,
    },
    /// An LLDPDU for another agent (its EVB TLV, if any, is ignored).
    OtherAgent,
    /// Not a well-formed LLDPDU (counted, dropped), or an EVB TLV with a bad length.
    Malformed,
}

/// Read a whole Ethernet frame (untagged) carrying LLDP.
pub fn read(frame: &[u8]) -> LldpRx {
    let Ok(eth) = Eth::parse(frame) else {
        return LldpRx::Malformed;
    };
    if eth.ethertype() != ethertype::LLDP {
        return LldpRx::Malformed;
    }
    let Ok(l) = Lldp::parse(eth.payload()) else {
        return LldpRx::Malformed;
    };
    if !l.is_well_formed() {
        return LldpRx::Malformed;
    }
    if eth.dst() != NEAREST_CUSTOMER_BRIDGE {
        return LldpRx::OtherAgent;
    }
    let ttl = l.ttl().unwrap_or(0);
    let mut evb = None;
    for t in l.tlvs().map_while(Result::ok) {
        match EvbRepr::from_tlv(&t) {
            Some(Ok(r)) => evb = Some(r),
            Some(Err(_)) => return LldpRx::Malformed,
            None => {}
        }
    }
    LldpRx::Evb { evb, ttl }
}

/// Build an LLDPDU frame: Chassis ID (MAC), Port ID (interface name), TTL,
/// the EVB TLV, End; padded to 60 bytes.
pub fn build(src: Mac, chassis: Mac, port_name: &str, ttl: u16, evb: &EvbRepr) -> Vec<u8> {
    let name = &port_name.as_bytes()[..port_name.len().min(255)];
    let mut f = Vec::with_capacity(64 + name.len());
    f.extend_from_slice(&NEAREST_CUSTOMER_BRIDGE.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype::LLDP.to_be_bytes());
    f.extend_from_slice(&tlv_header(tlv_type::CHASSIS_ID, 7));
    f.push(4); // MAC address subtype
    f.extend_from_slice(&chassis.0);
    f.extend_from_slice(&tlv_header(tlv_type::PORT_ID, 1 + name.len() as u16));
    f.push(5); // interface name subtype
    f.extend_from_slice(name);
    f.extend_from_slice(&tlv_header(tlv_type::TTL, 2));
    f.extend_from_slice(&ttl.to_be_bytes());
    let at = f.len();
    f.resize(at + EVB_TLV_LEN, 0);
    let _ = evb.emit(&mut f[at..]);
    f.extend_from_slice(&tlv_header(tlv_type::END, 0));
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// The transmit side of the agent: when to send the next LLDPDU.
#[derive(Clone, Debug)]
pub struct LldpTx {
    next: Nanos,
    fast: u8,
    /// LLDPDUs sent.
    pub sent: u64,
}

impl Default for LldpTx {
    fn default() -> Self {
        Self::new()
    }
}

impl LldpTx {
    /// Send at once, then fast, then every [`TX_INTERVAL_S`].
    pub fn new() -> LldpTx {
        LldpTx {
            next: 0,
            fast: TX_FAST,
            sent: 0,
        }
    }
    /// Something we advertise changed: send now and a few more at 1 s.
    pub fn changed(&mut self, now: Nanos) {
        self.next = now;
        self.fast = TX_FAST;
    }
    /// True when an LLDPDU is due at `now`; moves the timer on.
    pub fn due(&mut self, now: Nanos) -> bool {
        if now < self.next {
            return false;
        }
        let step = if self.fast > 0 {
            self.fast -= 1;
            1
        } else {
            TX_INTERVAL_S
        };
        self.next = now + step * 1_000_000_000;
        self.sent += 1;
        true
    }
    /// When the next LLDPDU is due.
    pub fn deadline(&self) -> Nanos {
        self.next
    }
    /// The TTL to advertise.
    pub fn ttl() -> u16 {
        (TX_INTERVAL_S * TX_HOLD) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::evb::{EvbMode, RrStat};

    fn evb() -> EvbRepr {
        EvbRepr {
            bgid: false,
            rrcap: true,
            rrctr: false,
            sgid: false,
            rrreq: false,
            rrstat: RrStat::NotEnabled,
            r: 0,
            rte: 0,
            mode: EvbMode::Bridge,
            rol_rwd: false,
            rwd: 0,
            rol_rka: false,
            rka: 0,
        }
    }

    #[test]
    fn build_and_read() {
        let m = Mac([2, 0, 0, 0, 0, 1]);
        let f = build(m, m, "hv1", 120, &evb());
        assert_eq!(f.len(), 60);
        assert_eq!(
            read(&f),
            LldpRx::Evb {
                evb: Some(evb()),
                ttl: 120
            }
        );
        // The same LLDPDU to the nearest bridge address: EVB ignored.
        let mut g = f.clone();
        g[5] = 0x0e;
        assert_eq!(read(&g), LldpRx::OtherAgent);
        // Not well formed: TTL TLV missing (cut before it).
        assert_eq!(read(&f[..14 + 9]), LldpRx::Malformed);
        assert_eq!(read(&f[..10]), LldpRx::Malformed);
        // Bad EVB length.
        let mut h = f.clone();
        let at = 14 + 9 + 6 + 4;
        assert_eq!(&h[at..at + 2], &[0xfe, 0x09]);
        h[at + 1] = 0x08;
        h.insert(at + 2 + 8, 0); // keep the TLV chain aligned: End after
        assert_eq!(read(&h), LldpRx::Malformed);
    }

    #[test]
    fn tx_timer() {
        let mut t = LldpTx::new();
        assert!(t.due(0));
        assert!(!t.due(999_999_999));
        assert!(t.due(1_000_000_000));
        assert!(t.due(2_000_000_000));
        assert!(!t.due(3_000_000_000 - 1));
        assert!(t.due(3_000_000_000));
        assert_eq!(t.deadline(), 33_000_000_000);
        t.changed(5_000_000_000);
        assert!(t.due(5_000_000_000));
        assert_eq!(t.sent, 5);
        assert_eq!(LldpTx::ttl(), 120);
    }
}
