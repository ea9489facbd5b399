//! IPv4 header (RFC 791): options via IHL, fragments, header checksum.

use super::{be16, checksum, put16, Error};
use std::net::Ipv4Addr;

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTO: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Length of the header without options.
pub const MIN_HDR_LEN: usize = 20;
/// Don't-fragment flag (in the flags/offset word).
pub const FLAG_DF: u16 = 0x4000;
/// More-fragments flag (in the flags/offset word).
pub const FLAG_MF: u16 = 0x2000;

/// Zero-copy view of an IPv4 header.
///
/// `parse` checks: at least 20 bytes, version 4, IHL ≥ 5, the whole header
/// (IHL × 4 bytes, options included) present, and total length ≥ header
/// length. The buffer may be shorter than the total length (a truncated
/// packet) or longer (Ethernet padding): [`Ipv4::payload`] is clipped to both.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Ipv4<B> {
    /// Wrap `b`; see the type docs for the checks. No getter can panic afterwards.
    pub fn parse(b: B) -> Result<Self, Error> {
        let s = b.as_ref();
        if s.len() < MIN_HDR_LEN {
            return Err(Error::Truncated);
        }
        let hl = usize::from(s[0] & 0x0f) * 4;
        if s[0] >> 4 != 4 || hl < MIN_HDR_LEN || usize::from(be16(s, field::LEN)) < hl {
            return Err(Error::Malformed);
        }
        if s.len() < hl {
            return Err(Error::Truncated);
        }
        Ok(Ipv4 { b })
    }
    fn s(&self) -> &[u8] {
        self.b.as_ref()
    }
    /// Version (always 4 after `parse`).
    pub fn version(&self) -> u8 {
        self.s()[field::VER_IHL] >> 4
    }
    /// Internet header length in 32-bit words (5..=15).
    pub fn ihl(&self) -> u8 {
        self.s()[field::VER_IHL] & 0x0f
    }
    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }
    /// DSCP (upper 6 bits of the TOS byte).
    pub fn dscp(&self) -> u8 {
        self.s()[field::TOS] >> 2
    }
    /// ECN (lower 2 bits of the TOS byte).
    pub fn ecn(&self) -> u8 {
        self.s()[field::TOS] & 3
    }
    /// Total length field (header + payload).
    pub fn total_len(&self) -> u16 {
        be16(self.s(), field::LEN)
    }
    /// Identification.
    pub fn ident(&self) -> u16 {
        be16(self.s(), field::IDENT)
    }
    /// Don't fragment.
    pub fn dont_frag(&self) -> bool {
        be16(self.s(), field::FLG_OFF) & FLAG_DF != 0
    }
    /// More fragments.
    pub fn more_frags(&self) -> bool {
        be16(self.s(), field::FLG_OFF) & FLAG_MF != 0
    }
    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        be16(self.s(), field::FLG_OFF) & 0x1fff
    }
    /// Part of a fragmented datagram (MF set or offset non-zero).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.s()[field::TTL]
    }
    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.s()[field::PROTO]
    }
    /// Header checksum as stored.
    pub fn checksum(&self) -> u16 {
        be16(self.s(), field::CHECKSUM)
    }
    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        let s = self.s();
        Ipv4Addr::new(
            s[field::SRC],
            s[field::SRC + 1],
            s[field::SRC + 2],
            s[field::SRC + 3],
        )
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        let s = self.s();
        Ipv4Addr::new(
            s[field::DST],
            s[field::DST + 1],
            s[field::DST + 2],
            s[field::DST + 3],
        )
    }
    /// Option bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.s()[MIN_HDR_LEN..self.header_len()]
    }
    /// Checksum the header should carry (computed with the checksum field as zero).
    pub fn compute_checksum(&self) -> u16 {
        let h = &self.s()[..self.header_len()];
        let s = checksum::combine(
            checksum::sum(&h[..field::CHECKSUM]),
            checksum::sum(&h[field::CHECKSUM + 2..]),
        );
        !checksum::fold(s)
    }
    /// The stored header checksum is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(&self.s()[..self.header_len()])) == 0xffff
    }
    /// End of the datagram in the buffer: `min(total length, buffer length)`.
    pub fn end(&self) -> usize {
        usize::from(self.total_len()).min(self.s().len())
    }
    /// Payload, clipped to the total length and to the buffer.
    pub fn payload(&self) -> &[u8] {
        &self.s()[self.header_len()..self.end()]
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Ipv4<B> {
    fn m(&mut self) -> &mut [u8] {
        self.b.as_mut()
    }
    /// Set the DSCP, keeping ECN (checksum not updated).
    pub fn set_dscp(&mut self, dscp: u8) {
        let t = self.m()[field::TOS];
        self.m()[field::TOS] = (dscp << 2) | (t & 3);
    }
    /// Set the TTL (checksum not updated).
    pub fn set_ttl(&mut self, ttl: u8) {
        self.m()[field::TTL] = ttl;
    }
    /// Set the protocol (checksum not updated).
    pub fn set_protocol(&mut self, p: u8) {
        self.m()[field::PROTO] = p;
    }
    /// Set the identification (checksum not updated).
    pub fn set_ident(&mut self, id: u16) {
        put16(self.m(), field::IDENT, id);
    }
    /// Set the flags and fragment offset (8-byte units; checksum not updated).
    pub fn set_frag(&mut self, df: bool, mf: bool, offset: u16) {
        let v = (if df { FLAG_DF } else { 0 }) | (if mf { FLAG_MF } else { 0 }) | (offset & 0x1fff);
        put16(self.m(), field::FLG_OFF, v);
    }
    /// Set the source address (checksum not updated).
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.m()[field::SRC..field::SRC + 4].copy_from_slice(&a.octets());
    }
    /// Set the destination address (checksum not updated).
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.m()[field::DST..field::DST + 4].copy_from_slice(&a.octets());
    }
    /// Store a checksum.
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.m(), field::CHECKSUM, c);
    }
    /// Recompute and store the header checksum.
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c);
    }
    /// Set the TTL and patch the checksum incrementally (RFC 1624), as a router
    /// decrementing TTL would.
    pub fn update_ttl(&mut self, ttl: u8) {
        let old = be16(self.s(), field::TTL);
        self.set_ttl(ttl);
        let new = be16(self.s(), field::TTL);
        let c = checksum::update(self.checksum(), old, new);
        self.set_checksum(c);
    }
    /// Set the DSCP and patch the checksum incrementally.
    pub fn update_dscp(&mut self, dscp: u8) {
        let old = be16(self.s(), 0);
        self.set_dscp(dscp);
        let new = be16(self.s(), 0);
        let c = checksum::update(self.checksum(), old, new);
        self.set_checksum(c);
    }
    /// Mutable payload (clipped as [`Ipv4::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, e) = (self.header_len(), self.end());
        &mut self.m()[h..e]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // IHL 6 (one 4-byte option: NOP NOP NOP EOL), UDP, 10.0.0.1 -> 10.0.0.2,
    // total length 32, first fragment (MF), DSCP 46.
    static PKT: [u8; 32] = [
        0x46, 0xb8, 0x00, 0x20, 0x12, 0x34, 0x20, 0x00, 0x40, 0x11, 0x00, 0x00, //
        10, 0, 0, 1, 10, 0, 0, 2, //
        0x01, 0x01, 0x01, 0x00, // options
        0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11, 0x22,
    ];

    fn pkt() -> [u8; 32] {
        let mut b = PKT;
        Ipv4::parse(&mut b[..]).unwrap().fill_checksum();
        b
    }

    #[test]
    fn get() {
        let b = pkt();
        let p = Ipv4::parse(&b[..]).unwrap();
        assert_eq!((p.version(), p.ihl(), p.header_len()), (4, 6, 24));
        assert_eq!((p.dscp(), p.ecn()), (46, 0));
        assert_eq!(p.total_len(), 32);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.more_frags() && !p.dont_frag() && p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!((p.ttl(), p.protocol()), (64, 17));
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload().len(), 8);
        assert!(p.verify_checksum());
        assert_eq!(p.checksum(), p.compute_checksum());
    }

    #[test]
    fn set_and_checksum_update() {
        let mut b = pkt();
        let mut p = Ipv4::parse(&mut b[..]).unwrap();
        p.update_ttl(63);
        assert!(p.verify_checksum());
        p.update_dscp(10);
        assert!(p.verify_checksum());
        assert_eq!(p.dscp(), 10);
        p.set_src(Ipv4Addr::new(192, 168, 1, 1));
        p.set_dst(Ipv4Addr::new(192, 168, 1, 2));
        p.set_frag(true, false, 100);
        p.set_ident(7);
        p.set_protocol(6);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.frag_offset(), p.dont_frag(), p.more_frags()),
            (100, true, false)
        );
        assert_eq!((p.ident(), p.protocol()), (7, 6));
        p.payload_mut()[0] = 0;
        assert_eq!(b[24], 0);
    }

    #[test]
    fn truncated() {
        let b = pkt();
        assert_eq!(Ipv4::parse(&b[..19]).unwrap_err(), Error::Truncated);
        // Options cut short.
        assert_eq!(Ipv4::parse(&b[..22]).unwrap_err(), Error::Truncated);
        // Payload cut short: fine, payload clipped.
        assert_eq!(Ipv4::parse(&b[..26]).unwrap().payload().len(), 2);
    }

    #[test]
    fn malformed() {
        let mut b = pkt();
        b[0] = 0x44;
        assert_eq!(Ipv4::parse(&b[..]).unwrap_err(), Error::Malformed);
        b[0] = 0x65;
        assert_eq!(Ipv4::parse(&b[..]).unwrap_err(), Error::Malformed);
        b[0] = 0x46;
        b[3] = 20; // total length below header length
        assert_eq!(Ipv4::parse(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn overlong() {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(&pkt());
        let p = Ipv4::parse(&b[..]).unwrap();
        assert_eq!(p.end(), 32);
        assert_eq!(p.payload(), &PKT[24..]);
    }
}
