//! Ethernet II header: destination, source, ethertype.

use super::{be16, put16, Error};
use crate::types::Mac;

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const TYPE: usize = 12;
}

/// Length of the Ethernet II header.
pub const HDR_LEN: usize = 14;
/// Minimum Ethernet frame without FCS (shorter frames are padded to this).
pub const MIN_FRAME: usize = 60;

/// Ethertypes the switch knows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1Q customer VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (S-tag, QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// LLDP (802.1AB).
    pub const LLDP: u16 = 0x88cc;
    /// ECP (802.1Qbg-2012).
    pub const ECP: u16 = 0x8940;
    /// MAC control (802.3x pause).
    pub const MAC_CONTROL: u16 = 0x8808;
}

/// Zero-copy view of an Ethernet II header.
#[derive(Clone, Copy, Debug)]
pub struct Eth<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Eth<B> {
    /// Wrap `b`; fails with [`Error::Runt`] when shorter than [`HDR_LEN`].
    /// No getter can panic afterwards.
    pub fn parse(b: B) -> Result<Self, Error> {
        if b.as_ref().len() < HDR_LEN {
            return Err(Error::Runt);
        }
        Ok(Eth { b })
    }
    /// Destination MAC.
    pub fn dst(&self) -> Mac {
        Mac::from_slice(&self.b.as_ref()[field::DST])
    }
    /// Source MAC.
    pub fn src(&self) -> Mac {
        Mac::from_slice(&self.b.as_ref()[field::SRC])
    }
    /// Ethertype (or the TPID of the first VLAN tag).
    pub fn ethertype(&self) -> u16 {
        be16(self.b.as_ref(), field::TYPE)
    }
    /// Bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.b.as_ref()[HDR_LEN..]
    }
    /// The wrapped buffer.
    pub fn into_inner(self) -> B {
        self.b
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Eth<B> {
    /// Set the destination MAC.
    pub fn set_dst(&mut self, m: Mac) {
        self.b.as_mut()[field::DST].copy_from_slice(&m.0);
    }
    /// Set the source MAC.
    pub fn set_src(&mut self, m: Mac) {
        self.b.as_mut()[field::SRC].copy_from_slice(&m.0);
    }
    /// Set the ethertype.
    pub fn set_ethertype(&mut self, t: u16) {
        put16(self.b.as_mut(), field::TYPE, t);
    }
    /// Mutable bytes after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.b.as_mut()[HDR_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FRAME: [u8; 18] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x08, 0x06, // ARP
        0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn get() {
        let e = Eth::parse(&FRAME[..]).unwrap();
        assert!(e.dst().is_broadcast());
        assert_eq!(e.src(), Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(e.ethertype(), ethertype::ARP);
        assert_eq!(e.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn set() {
        let mut b = FRAME;
        let mut e = Eth::parse(&mut b[..]).unwrap();
        e.set_dst(Mac([1, 2, 3, 4, 5, 6]));
        e.set_src(Mac([7, 8, 9, 10, 11, 12]));
        e.set_ethertype(ethertype::IPV6);
        e.payload_mut()[0] = 0;
        assert_eq!(
            &b[..16],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x86, 0xdd, 0, 0xad]
        );
    }

    #[test]
    fn truncated() {
        assert_eq!(Eth::parse(&FRAME[..13]).unwrap_err(), Error::Runt);
        assert_eq!(Eth::parse(&FRAME[..14]).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn overlong() {
        let mut big = vec![0u8; 9000];
        big[..18].copy_from_slice(&FRAME);
        assert_eq!(Eth::parse(&big[..]).unwrap().payload().len(), 9000 - 14);
    }
}
