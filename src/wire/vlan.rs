//! IEEE 802.1Q (TPID 0x8100) and 802.1ad (TPID 0x88a8) VLAN tags.
//!
//! A tag is 4 bytes: the TPID sits where the ethertype would be, then the TCI.
//! The view [`Vlan`] starts *after* the TPID (at the TCI), as the TPID is the
//! previous header's ethertype; it covers the TCI and the next ethertype, so
//! QinQ is two views in a row.

use super::eth::ethertype;
use super::{be16, put16, Error};

/// Bytes of a [`Vlan`] view: TCI (2) and inner ethertype (2).
pub const HDR_LEN: usize = 4;

/// True for the TPIDs treated as VLAN tags: 0x8100 (C-tag) and 0x88a8 (S-tag).
#[inline(always)]
pub const fn is_tpid(t: u16) -> bool {
    t == ethertype::VLAN || t == ethertype::QINQ
}

/// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Tci(pub u16);

impl Tci {
    /// Build from parts; each is masked to its width.
    pub const fn new(pcp: u8, dei: bool, vid: u16) -> Tci {
        Tci(((pcp as u16 & 7) << 13) | ((dei as u16) << 12) | (vid & 0x0fff))
    }
    /// Priority code point (0-7).
    pub const fn pcp(self) -> u8 {
        (self.0 >> 13) as u8
    }
    /// Drop eligible indicator.
    pub const fn dei(self) -> bool {
        self.0 & 0x1000 != 0
    }
    /// VLAN id (0-4095; 0 = priority tag, 4095 reserved).
    pub const fn vid(self) -> u16 {
        self.0 & 0x0fff
    }
}

/// Zero-copy view of a VLAN tag body: TCI then the encapsulated ethertype.
#[derive(Clone, Copy, Debug)]
pub struct Vlan<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Vlan<B> {
    /// Wrap `b` (starting at the TCI); fails with [`Error::TruncatedVlan`] when
    /// shorter than 4 bytes. No getter can panic afterwards.
    pub fn parse(b: B) -> Result<Self, Error> {
        if b.as_ref().len() < HDR_LEN {
            return Err(Error::TruncatedVlan);
        }
        Ok(Vlan { b })
    }
    /// The whole TCI.
    pub fn tci(&self) -> Tci {
        Tci(be16(self.b.as_ref(), 0))
    }
    /// Priority code point.
    pub fn pcp(&self) -> u8 {
        self.tci().pcp()
    }
    /// Drop eligible indicator.
    pub fn dei(&self) -> bool {
        self.tci().dei()
    }
    /// VLAN id.
    pub fn vid(&self) -> u16 {
        self.tci().vid()
    }
    /// Ethertype of what follows (another TPID for QinQ).
    pub fn ethertype(&self) -> u16 {
        be16(self.b.as_ref(), 2)
    }
    /// Bytes after the tag.
    pub fn payload(&self) -> &[u8] {
        &self.b.as_ref()[HDR_LEN..]
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Vlan<B> {
    /// Set the whole TCI.
    pub fn set_tci(&mut self, t: Tci) {
        put16(self.b.as_mut(), 0, t.0);
    }
    /// Set the PCP, keeping DEI and VID.
    pub fn set_pcp(&mut self, pcp: u8) {
        let t = self.tci();
        self.set_tci(Tci::new(pcp, t.dei(), t.vid()));
    }
    /// Set the DEI, keeping PCP and VID.
    pub fn set_dei(&mut self, dei: bool) {
        let t = self.tci();
        self.set_tci(Tci::new(t.pcp(), dei, t.vid()));
    }
    /// Set the VID, keeping PCP and DEI.
    pub fn set_vid(&mut self, vid: u16) {
        let t = self.tci();
        self.set_tci(Tci::new(t.pcp(), t.dei(), vid));
    }
    /// Set the encapsulated ethertype.
    pub fn set_ethertype(&mut self, t: u16) {
        put16(self.b.as_mut(), 2, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::eth::Eth;

    // QinQ: S-tag VID 100 PCP 5, C-tag VID 10 DEI, then IPv4.
    static QINQ: [u8; 22] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, //
        0x88, 0xa8, 0xa0, 0x64, // S-tag
        0x81, 0x00, 0x10, 0x0a, // C-tag
        0x08, 0x00,
    ];

    #[test]
    fn get_qinq() {
        let e = Eth::parse(&QINQ[..]).unwrap();
        assert!(is_tpid(e.ethertype()));
        let s = Vlan::parse(e.payload()).unwrap();
        assert_eq!((s.pcp(), s.dei(), s.vid()), (5, false, 100));
        assert_eq!(s.ethertype(), ethertype::VLAN);
        let c = Vlan::parse(s.payload()).unwrap();
        assert_eq!((c.pcp(), c.dei(), c.vid()), (0, true, 10));
        assert_eq!(c.ethertype(), ethertype::IPV4);
        assert!(c.payload().is_empty());
    }

    #[test]
    fn set() {
        let mut b = [0u8; 4];
        let mut v = Vlan::parse(&mut b[..]).unwrap();
        v.set_vid(0xfff);
        v.set_pcp(7);
        v.set_dei(true);
        v.set_vid(42);
        v.set_ethertype(ethertype::IPV6);
        assert_eq!(v.tci(), Tci::new(7, true, 42));
        assert_eq!(b, [0xf0, 0x2a, 0x86, 0xdd]);
    }

    #[test]
    fn tci_masks() {
        let t = Tci::new(9, false, 0x1234);
        assert_eq!((t.pcp(), t.dei(), t.vid()), (1, false, 0x234));
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Vlan::parse(&QINQ[14..17]).unwrap_err(),
            Error::TruncatedVlan
        );
    }

    #[test]
    fn overlong() {
        let v = Vlan::parse(&QINQ[14..]).unwrap();
        assert_eq!(v.payload().len(), 4);
    }
}
