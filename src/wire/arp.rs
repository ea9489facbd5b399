//! ARP (RFC 826) for any hardware/protocol address lengths.

use super::{be16, put16, Error};
use crate::types::Mac;
use std::net::Ipv4Addr;

/// Fixed part: htype, ptype, hlen, plen, oper.
pub const FIXED_LEN: usize = 8;
/// Length of an Ethernet/IPv4 ARP packet.
pub const ETH_IPV4_LEN: usize = 28;
/// Operation: request.
pub const OP_REQUEST: u16 = 1;
/// Operation: reply.
pub const OP_REPLY: u16 = 2;
/// Hardware type Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// Zero-copy view of an ARP packet.
#[derive(Clone, Copy, Debug)]
pub struct Arp<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Arp<B> {
    /// Wrap `b`; fails with [`Error::Truncated`] unless the fixed part and
    /// both address pairs (`8 + 2·hlen + 2·plen` bytes) are present.
    pub fn parse(b: B) -> Result<Self, Error> {
        let s = b.as_ref();
        if s.len() < FIXED_LEN {
            return Err(Error::Truncated);
        }
        let need = FIXED_LEN + 2 * (usize::from(s[4]) + usize::from(s[5]));
        if s.len() < need {
            return Err(Error::Truncated);
        }
        Ok(Arp { b })
    }
    fn hlen_us(&self) -> usize {
        usize::from(self.b.as_ref()[4])
    }
    fn plen_us(&self) -> usize {
        usize::from(self.b.as_ref()[5])
    }
    /// Hardware type (1 = Ethernet).
    pub fn htype(&self) -> u16 {
        be16(self.b.as_ref(), 0)
    }
    /// Protocol type (an ethertype, 0x0800 for IPv4).
    pub fn ptype(&self) -> u16 {
        be16(self.b.as_ref(), 2)
    }
    /// Hardware address length.
    pub fn hlen(&self) -> u8 {
        self.b.as_ref()[4]
    }
    /// Protocol address length.
    pub fn plen(&self) -> u8 {
        self.b.as_ref()[5]
    }
    /// Operation ([`OP_REQUEST`], [`OP_REPLY`], ...).
    pub fn oper(&self) -> u16 {
        be16(self.b.as_ref(), 6)
    }
    /// Header length: `8 + 2·hlen + 2·plen`.
    pub fn header_len(&self) -> usize {
        FIXED_LEN + 2 * (self.hlen_us() + self.plen_us())
    }
    /// Sender hardware address bytes.
    pub fn sha(&self) -> &[u8] {
        let o = FIXED_LEN;
        &self.b.as_ref()[o..o + self.hlen_us()]
    }
    /// Sender protocol address bytes.
    pub fn spa(&self) -> &[u8] {
        let o = FIXED_LEN + self.hlen_us();
        &self.b.as_ref()[o..o + self.plen_us()]
    }
    /// Target hardware address bytes.
    pub fn tha(&self) -> &[u8] {
        let o = FIXED_LEN + self.hlen_us() + self.plen_us();
        &self.b.as_ref()[o..o + self.hlen_us()]
    }
    /// Target protocol address bytes.
    pub fn tpa(&self) -> &[u8] {
        let o = FIXED_LEN + 2 * self.hlen_us() + self.plen_us();
        &self.b.as_ref()[o..o + self.plen_us()]
    }
    /// Ethernet hardware and IPv4 protocol addresses (htype 1, ptype 0x0800, 6/4).
    pub fn is_eth_ipv4(&self) -> bool {
        self.htype() == HTYPE_ETHERNET
            && self.ptype() == super::ethertype::IPV4
            && self.hlen() == 6
            && self.plen() == 4
    }
    /// Sender MAC, for Ethernet/IPv4 ARP only.
    pub fn sender_mac(&self) -> Option<Mac> {
        self.is_eth_ipv4().then(|| Mac::from_slice(self.sha()))
    }
    /// Sender IPv4 address, for Ethernet/IPv4 ARP only.
    pub fn sender_ip(&self) -> Option<Ipv4Addr> {
        self.is_eth_ipv4().then(|| ip4(self.spa()))
    }
    /// Target MAC, for Ethernet/IPv4 ARP only.
    pub fn target_mac(&self) -> Option<Mac> {
        self.is_eth_ipv4().then(|| Mac::from_slice(self.tha()))
    }
    /// Target IPv4 address, for Ethernet/IPv4 ARP only.
    pub fn target_ip(&self) -> Option<Ipv4Addr> {
        self.is_eth_ipv4().then(|| ip4(self.tpa()))
    }
}

fn ip4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Arp<B> {
    /// Set the operation.
    pub fn set_oper(&mut self, op: u16) {
        put16(self.b.as_mut(), 6, op);
    }
    /// Mutable sender hardware address.
    pub fn sha_mut(&mut self) -> &mut [u8] {
        let (o, h) = (FIXED_LEN, self.hlen_us());
        &mut self.b.as_mut()[o..o + h]
    }
    /// Mutable sender protocol address.
    pub fn spa_mut(&mut self) -> &mut [u8] {
        let (h, p) = (self.hlen_us(), self.plen_us());
        let o = FIXED_LEN + h;
        &mut self.b.as_mut()[o..o + p]
    }
    /// Mutable target hardware address.
    pub fn tha_mut(&mut self) -> &mut [u8] {
        let (h, p) = (self.hlen_us(), self.plen_us());
        let o = FIXED_LEN + h + p;
        &mut self.b.as_mut()[o..o + h]
    }
    /// Mutable target protocol address.
    pub fn tpa_mut(&mut self) -> &mut [u8] {
        let (h, p) = (self.hlen_us(), self.plen_us());
        let o = FIXED_LEN + 2 * h + p;
        &mut self.b.as_mut()[o..o + p]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static REQ: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, //
        0x02, 0, 0, 0, 0, 1, 10, 0, 0, 1, // sender
        0, 0, 0, 0, 0, 0, 10, 0, 0, 2, // target
    ];

    #[test]
    fn get() {
        let a = Arp::parse(&REQ[..]).unwrap();
        assert!(a.is_eth_ipv4());
        assert_eq!(a.oper(), OP_REQUEST);
        assert_eq!(a.header_len(), ETH_IPV4_LEN);
        assert_eq!(a.sender_mac(), Some(Mac([2, 0, 0, 0, 0, 1])));
        assert_eq!(a.sender_ip(), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(a.target_mac(), Some(Mac::ZERO));
        assert_eq!(a.target_ip(), Some(Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[test]
    fn set() {
        let mut b = REQ;
        let mut a = Arp::parse(&mut b[..]).unwrap();
        a.set_oper(OP_REPLY);
        a.tha_mut().copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        a.tpa_mut().copy_from_slice(&[10, 0, 0, 1]);
        a.sha_mut()[5] = 9;
        a.spa_mut()[3] = 2;
        assert_eq!(a.oper(), OP_REPLY);
        assert_eq!(a.target_mac(), Some(Mac([2, 0, 0, 0, 0, 2])));
        assert_eq!(a.sender_ip(), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(b[13], 9);
    }

    #[test]
    fn truncated() {
        assert_eq!(Arp::parse(&REQ[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(Arp::parse(&REQ[..27]).unwrap_err(), Error::Truncated);
        // Huge address lengths must not read past the buffer.
        let mut b = REQ;
        b[4] = 255;
        assert_eq!(Arp::parse(&b[..]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn overlong_and_odd_lengths() {
        let mut big = [0u8; 60];
        big[..28].copy_from_slice(&REQ);
        assert_eq!(Arp::parse(&big[..]).unwrap().tpa(), &[10, 0, 0, 2]);
        // hlen 0 / plen 0: valid, empty addresses, not Ethernet/IPv4.
        let z = [0u8, 1, 8, 0, 0, 0, 0, 1];
        let a = Arp::parse(&z[..]).unwrap();
        assert!(a.sha().is_empty() && a.tpa().is_empty());
        assert_eq!(a.sender_ip(), None);
    }
}
