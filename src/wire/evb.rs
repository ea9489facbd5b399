//! The 802.1Qbg-2012 EVB TLV (LLDP organizationally specific TLV, OUI
//! 00-80-C2, subtype 0x0D), sent only on the nearest-customer-bridge agent
//! (01-80-C2-00-00-00).
//!
//! ```text
//! TLV header FE 09 (type 127, length 9)
//! 0-2 OUI 00 80 C2 | 3 subtype 0D
//! 4 bridge status : b2 BGID | b1 RRCAP | b0 RRCTR            (b7-3 reserved)
//! 5 station status: b3 SGID | b2 RRREQ | b1-0 RRSTAT          (b7-4 reserved)
//! 6 b7-5 R (max ECP retries) | b4-0 RTE (ECP ack timer exponent)
//! 7 b7-6 EVB mode (0 none, 1 bridge, 2 station) | b5 ROL | b4-0 RWD
//! 8 b7-6 reserved | b5 ROL | b4-0 RKA
//! ```
//! Timer exponents count in units of 10 µs × 2^exp.

use super::lldp::{tlv_header, tlv_type, Tlv};
use super::Error;

/// The IEEE 802.1 OUI.
pub const OUI_8021: [u8; 3] = [0x00, 0x80, 0xc2];
/// Subtype of the EVB TLV.
pub const SUBTYPE: u8 = 0x0d;
/// Length of the TLV value (OUI, subtype, five bytes).
pub const VALUE_LEN: usize = 9;
/// Length of the whole TLV with its 2-byte header.
pub const TLV_LEN: usize = 2 + VALUE_LEN;

mod field {
    pub const BRIDGE: usize = 4;
    pub const STATION: usize = 5;
    pub const R_RTE: usize = 6;
    pub const MODE_RWD: usize = 7;
    pub const RKA: usize = 8;
}

/// Station's view of reflective relay (RRSTAT, 2 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RrStat {
    /// 0: the bridge did not enable reflective relay.
    NotEnabled,
    /// 1: the bridge enabled reflective relay.
    Enabled,
    /// 3: no bridge TLV heard yet (unknown).
    Unknown,
    /// 2: reserved value, kept as received.
    Reserved,
}

impl From<u8> for RrStat {
    fn from(v: u8) -> RrStat {
        match v & 3 {
            0 => RrStat::NotEnabled,
            1 => RrStat::Enabled,
            2 => RrStat::Reserved,
            _ => RrStat::Unknown,
        }
    }
}

impl From<RrStat> for u8 {
    fn from(s: RrStat) -> u8 {
        match s {
            RrStat::NotEnabled => 0,
            RrStat::Enabled => 1,
            RrStat::Reserved => 2,
            RrStat::Unknown => 3,
        }
    }
}

/// EVB mode of the sender (2 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EvbMode {
    /// 0: not set.
    None,
    /// 1: EVB bridge.
    Bridge,
    /// 2: EVB station.
    Station,
    /// 3: reserved value, kept as received.
    Reserved,
}

impl From<u8> for EvbMode {
    fn from(v: u8) -> EvbMode {
        match v & 3 {
            0 => EvbMode::None,
            1 => EvbMode::Bridge,
            2 => EvbMode::Station,
            _ => EvbMode::Reserved,
        }
    }
}

impl From<EvbMode> for u8 {
    fn from(m: EvbMode) -> u8 {
        match m {
            EvbMode::None => 0,
            EvbMode::Bridge => 1,
            EvbMode::Station => 2,
            EvbMode::Reserved => 3,
        }
    }
}

/// Zero-copy view of an EVB TLV *value* (the 9 bytes after the TLV header).
/// `parse` checks the length (exactly 9), the OUI and the subtype; no getter
/// can panic afterwards.
#[derive(Clone, Copy, Debug)]
pub struct Evb<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Evb<B> {
    /// Wrap a TLV value. [`Error::Truncated`] below 9 bytes, [`Error::Malformed`]
    /// for a longer value or another OUI/subtype.
    pub fn parse(b: B) -> Result<Self, Error> {
        let s = b.as_ref();
        if s.len() < VALUE_LEN {
            return Err(Error::Truncated);
        }
        if s.len() > VALUE_LEN || s[..3] != OUI_8021 || s[3] != SUBTYPE {
            return Err(Error::Malformed);
        }
        Ok(Evb { b })
    }
    fn at(&self, i: usize) -> u8 {
        self.b.as_ref()[i]
    }
    /// Bridge status byte.
    pub fn bridge_status(&self) -> u8 {
        self.at(field::BRIDGE)
    }
    /// Station status byte.
    pub fn station_status(&self) -> u8 {
        self.at(field::STATION)
    }
    /// BGID: the bridge supports group ids.
    pub fn bgid(&self) -> bool {
        self.bridge_status() & 4 != 0
    }
    /// RRCAP: the bridge can do reflective relay.
    pub fn rrcap(&self) -> bool {
        self.bridge_status() & 2 != 0
    }
    /// RRCTR: the bridge has turned reflective relay on.
    pub fn rrctr(&self) -> bool {
        self.bridge_status() & 1 != 0
    }
    /// SGID: the station supports group ids.
    pub fn sgid(&self) -> bool {
        self.station_status() & 8 != 0
    }
    /// RRREQ: the station asks for reflective relay.
    pub fn rrreq(&self) -> bool {
        self.station_status() & 4 != 0
    }
    /// RRSTAT: the station's view of reflective relay.
    pub fn rrstat(&self) -> RrStat {
        RrStat::from(self.station_status())
    }
    /// R: maximum ECP retransmissions (0-7).
    pub fn r(&self) -> u8 {
        self.at(field::R_RTE) >> 5
    }
    /// RTE: ECP retransmission timer exponent (0-31).
    pub fn rte(&self) -> u8 {
        self.at(field::R_RTE) & 0x1f
    }
    /// EVB mode of the sender.
    pub fn mode(&self) -> EvbMode {
        EvbMode::from(self.at(field::MODE_RWD) >> 6)
    }
    /// ROL flag of RWD: the value is the peer's.
    pub fn rol_rwd(&self) -> bool {
        self.at(field::MODE_RWD) & 0x20 != 0
    }
    /// RWD: resource wait delay exponent (0-31).
    pub fn rwd(&self) -> u8 {
        self.at(field::MODE_RWD) & 0x1f
    }
    /// ROL flag of RKA: the value is the peer's.
    pub fn rol_rka(&self) -> bool {
        self.at(field::RKA) & 0x20 != 0
    }
    /// RKA: keep-alive exponent (0-31).
    pub fn rka(&self) -> u8 {
        self.at(field::RKA) & 0x1f
    }
}

/// An EVB TLV, owned. Reserved bits are emitted as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EvbRepr {
    /// Bridge supports group ids.
    pub bgid: bool,
    /// Bridge is capable of reflective relay.
    pub rrcap: bool,
    /// Bridge has reflective relay on.
    pub rrctr: bool,
    /// Station supports group ids.
    pub sgid: bool,
    /// Station requests reflective relay.
    pub rrreq: bool,
    /// Station's reflective relay status.
    pub rrstat: RrStat,
    /// Max ECP retries (3 bits).
    pub r: u8,
    /// ECP retransmission exponent (5 bits).
    pub rte: u8,
    /// Sender's EVB mode.
    pub mode: EvbMode,
    /// RWD came from the peer.
    pub rol_rwd: bool,
    /// Resource wait delay exponent (5 bits).
    pub rwd: u8,
    /// RKA came from the peer.
    pub rol_rka: bool,
    /// Keep-alive exponent (5 bits).
    pub rka: u8,
}

impl EvbRepr {
    /// Read a view into an owned value.
    pub fn parse<B: AsRef<[u8]>>(v: &Evb<B>) -> EvbRepr {
        EvbRepr {
            bgid: v.bgid(),
            rrcap: v.rrcap(),
            rrctr: v.rrctr(),
            sgid: v.sgid(),
            rrreq: v.rrreq(),
            rrstat: v.rrstat(),
            r: v.r(),
            rte: v.rte(),
            mode: v.mode(),
            rol_rwd: v.rol_rwd(),
            rwd: v.rwd(),
            rol_rka: v.rol_rka(),
            rka: v.rka(),
        }
    }

    /// The EVB TLV among LLDP TLVs: `Some(Ok)` for a well-formed one,
    /// `Some(Err)` for a TLV with the EVB OUI/subtype but a bad length, `None`
    /// when there is none.
    pub fn from_tlv(t: &Tlv<'_>) -> Option<Result<EvbRepr, Error>> {
        let (oui, sub, _) = t.org()?;
        if oui != OUI_8021 || sub != SUBTYPE {
            return None;
        }
        Some(Evb::parse(t.value).map(|v| EvbRepr::parse(&v)))
    }

    /// The 9 value bytes.
    pub fn value(&self) -> [u8; VALUE_LEN] {
        let b = |x: bool, s: u8| u8::from(x) << s;
        [
            OUI_8021[0],
            OUI_8021[1],
            OUI_8021[2],
            SUBTYPE,
            b(self.bgid, 2) | b(self.rrcap, 1) | b(self.rrctr, 0),
            b(self.sgid, 3) | b(self.rrreq, 2) | u8::from(self.rrstat),
            (self.r & 7) << 5 | (self.rte & 0x1f),
            u8::from(self.mode) << 6 | b(self.rol_rwd, 5) | (self.rwd & 0x1f),
            b(self.rol_rka, 5) | (self.rka & 0x1f),
        ]
    }

    /// Write the whole TLV (header `FE 09` + value) into `out[..11]`.
    /// Returns the bytes written, or [`Error::Truncated`] when `out` is short.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let o = out.get_mut(..TLV_LEN).ok_or(Error::Truncated)?;
        o[..2].copy_from_slice(&tlv_header(tlv_type::ORG, VALUE_LEN as u16));
        o[2..].copy_from_slice(&self.value());
        Ok(TLV_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::lldp::TlvIter;

    // lldpad test/qbg22 vectors.
    static BRIDGE_OFFER: [u8; 11] = [
        0xfe, 0x09, 0x00, 0x80, 0xc2, 0x0d, 0x02, 0x00, 0x00, 0x40, 0x00,
    ];
    static STATION_ANSWER: [u8; 11] = [
        0xfe, 0x09, 0x00, 0x80, 0xc2, 0x0d, 0x02, 0x04, 0x68, 0x88, 0x08,
    ];

    fn view(b: &[u8]) -> EvbRepr {
        EvbRepr::parse(&Evb::parse(&b[2..]).unwrap())
    }

    #[test]
    fn get_bridge_offer() {
        let r = view(&BRIDGE_OFFER);
        assert!(r.rrcap && !r.rrctr && !r.bgid);
        assert!(!r.rrreq && !r.sgid);
        assert_eq!(r.rrstat, RrStat::NotEnabled);
        assert_eq!((r.r, r.rte, r.rwd, r.rka), (0, 0, 0, 0));
        assert_eq!(r.mode, EvbMode::Bridge);
        assert!(!r.rol_rwd && !r.rol_rka);
    }

    #[test]
    fn get_station_answer() {
        let r = view(&STATION_ANSWER);
        assert!(r.rrcap && r.rrreq);
        assert_eq!(r.rrstat, RrStat::NotEnabled);
        assert_eq!((r.r, r.rte), (3, 8));
        assert_eq!(r.mode, EvbMode::Station);
        assert_eq!((r.rwd, r.rka), (8, 8));
    }

    #[test]
    fn emit_round_trip() {
        for v in [&BRIDGE_OFFER, &STATION_ANSWER] {
            let mut out = [0u8; 11];
            assert_eq!(view(v).emit(&mut out), Ok(11));
            assert_eq!(&out, v);
        }
        // Every field set.
        let r = EvbRepr {
            bgid: true,
            rrcap: true,
            rrctr: true,
            sgid: true,
            rrreq: true,
            rrstat: RrStat::Unknown,
            r: 7,
            rte: 31,
            mode: EvbMode::Station,
            rol_rwd: true,
            rwd: 31,
            rol_rka: true,
            rka: 31,
        };
        let mut out = [0u8; 11];
        r.emit(&mut out).unwrap();
        assert_eq!(&out[6..], &[0x07, 0x0f, 0xff, 0xbf, 0x3f]);
        assert_eq!(view(&out), r);
        // Bridge confirm `03 04`, station reports `03 05`.
        let confirm = EvbRepr {
            rrctr: true,
            ..view(&STATION_ANSWER)
        };
        assert_eq!(&confirm.value()[4..6], &[0x03, 0x04]);
    }

    #[test]
    fn from_tlv_finds_evb() {
        let mut pdu = BRIDGE_OFFER.to_vec();
        pdu.extend_from_slice(&[0xfe, 0x04, 0x00, 0x12, 0x0f, 0x01, 0, 0]);
        let tlvs: Vec<_> = TlvIter::new(&pdu).map(Result::unwrap).collect();
        assert_eq!(tlvs.len(), 2);
        assert_eq!(
            EvbRepr::from_tlv(&tlvs[0]).unwrap().unwrap(),
            view(&BRIDGE_OFFER)
        );
        assert!(EvbRepr::from_tlv(&tlvs[1]).is_none());
    }

    #[test]
    fn truncated_and_overlong() {
        assert_eq!(
            Evb::parse(&BRIDGE_OFFER[2..10]).unwrap_err(),
            Error::Truncated
        );
        let mut long = BRIDGE_OFFER.to_vec();
        long.push(0);
        assert_eq!(Evb::parse(&long[2..]).unwrap_err(), Error::Malformed);
        let mut bad = BRIDGE_OFFER;
        bad[5] = 0x0e;
        assert_eq!(Evb::parse(&bad[2..]).unwrap_err(), Error::Malformed);
        // An EVB TLV with a wrong length is reported, not ignored.
        let short = [0xfe, 0x05, 0x00, 0x80, 0xc2, 0x0d, 0x02];
        let t = TlvIter::new(&short).next().unwrap().unwrap();
        assert_eq!(EvbRepr::from_tlv(&t), Some(Err(Error::Truncated)));
        let mut out = [0u8; 10];
        assert_eq!(view(&BRIDGE_OFFER).emit(&mut out), Err(Error::Truncated));
    }

    #[test]
    fn reserved_values_kept() {
        assert_eq!(RrStat::from(2), RrStat::Reserved);
        assert_eq!(u8::from(RrStat::Reserved), 2);
        assert_eq!(EvbMode::from(3), EvbMode::Reserved);
        assert_eq!(u8::from(EvbMode::Reserved), 3);
    }
}
