//! IPv6 fixed header (RFC 8200) and the extension-header chain walk.

use super::{be16, be32, put16, Error};
use std::net::Ipv6Addr;

/// Length of the fixed header.
pub const HDR_LEN: usize = 40;
/// Most extension headers [`Ipv6::ext_chain`] walks before giving up.
pub const MAX_EXT_HEADERS: usize = 8;

/// Next-header numbers of the extension headers the walk understands.
pub mod ext {
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header (8 bytes).
    pub const FRAGMENT: u8 = 44;
    /// Authentication header (length in 4-byte units, minus 2).
    pub const AH: u8 = 51;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
    /// No next header.
    pub const NO_NEXT: u8 = 59;

    /// True for the extension headers the walk steps over.
    pub const fn is_ext(nh: u8) -> bool {
        matches!(nh, HOP_BY_HOP | ROUTING | FRAGMENT | AH | DEST_OPTS)
    }
}

/// Contents of an IPv6 fragment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// Fragment offset in 8-byte units.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// How the extension-header walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChainEnd {
    /// Reached a header that is not an extension header (the upper layer, or
    /// No Next Header), or the fragment header of a non-first fragment.
    Done,
    /// An extension header was cut short by the end of the packet.
    Truncated,
    /// More than [`MAX_EXT_HEADERS`] extension headers.
    TooLong,
}

/// Result of walking the extension headers after the fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExtChain {
    /// With [`ChainEnd::Done`]: the upper-layer protocol. Otherwise the
    /// next-header value of the header that could not be stepped over.
    pub proto: u8,
    /// Offset from the start of the IPv6 header of the header named by `proto`.
    pub offset: usize,
    /// Extension headers stepped over.
    pub count: u8,
    /// The fragment header, if one was stepped over.
    pub frag: Option<Fragment>,
    /// How the walk ended.
    pub end: ChainEnd,
}

/// Zero-copy view of an IPv6 header.
///
/// `parse` checks 40 bytes and version 6. As with IPv4 the buffer may be
/// shorter (truncated) or longer (padding) than the payload length says; the
/// payload and the chain walk are clipped to both. A payload length of 0
/// (jumbogram) means "to the end of the buffer".
#[derive(Clone, Copy, Debug)]
pub struct Ipv6<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Ipv6<B> {
    /// Wrap `b`; see the type docs. No getter can panic afterwards.
    pub fn parse(b: B) -> Result<Self, Error> {
        let s = b.as_ref();
        if s.len() < HDR_LEN {
            return Err(Error::Truncated);
        }
        if s[0] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        Ok(Ipv6 { b })
    }
    fn s(&self) -> &[u8] {
        self.b.as_ref()
    }
    /// Version (always 6 after `parse`).
    pub fn version(&self) -> u8 {
        self.s()[0] >> 4
    }
    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        ((be16(self.s(), 0) >> 4) & 0xff) as u8
    }
    /// DSCP (upper 6 bits of the traffic class).
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }
    /// ECN (lower 2 bits of the traffic class).
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 3
    }
    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        be32(self.s(), 0) & 0x000f_ffff
    }
    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        be16(self.s(), 4)
    }
    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.s()[6]
    }
    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.s()[7]
    }
    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        addr(&self.s()[8..24])
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        addr(&self.s()[24..40])
    }
    /// End of the packet in the buffer: `min(40 + payload length, buffer
    /// length)`, or the buffer length when the payload length is 0.
    pub fn end(&self) -> usize {
        let n = self.s().len();
        match self.payload_len() {
            0 => n,
            l => (HDR_LEN + usize::from(l)).min(n),
        }
    }
    /// Everything after the fixed header (extension headers included), clipped.
    pub fn payload(&self) -> &[u8] {
        &self.s()[HDR_LEN..self.end()]
    }
    /// Walk the extension headers (hop-by-hop, routing, fragment, destination
    /// options, AH), at most [`MAX_EXT_HEADERS`] of them. Stops at the first
    /// other next-header value, or after the fragment header of a non-first
    /// fragment (what follows is not a header).
    pub fn ext_chain(&self) -> ExtChain {
        let s = &self.s()[..self.end()];
        let mut c = ExtChain {
            proto: self.next_header(),
            offset: HDR_LEN,
            count: 0,
            frag: None,
            end: ChainEnd::Done,
        };
        while ext::is_ext(c.proto) {
            if usize::from(c.count) == MAX_EXT_HEADERS {
                c.end = ChainEnd::TooLong;
                return c;
            }
            let o = c.offset;
            if s.len() < o + 8 {
                c.end = ChainEnd::Truncated;
                return c;
            }
            let len = match c.proto {
                ext::FRAGMENT => 8,
                ext::AH => (usize::from(s[o + 1]) + 2) * 4,
                _ => (usize::from(s[o + 1]) + 1) * 8,
            };
            if s.len() < o + len {
                c.end = ChainEnd::Truncated;
                return c;
            }
            let is_frag = c.proto == ext::FRAGMENT;
            c.proto = s[o];
            c.offset = o + len;
            c.count += 1;
            if is_frag {
                let w = be16(s, o + 2);
                let f = Fragment {
                    offset: w >> 3,
                    more: w & 1 != 0,
                    ident: be32(s, o + 4),
                };
                c.frag = Some(f);
                if f.offset != 0 {
                    return c;
                }
            }
        }
        c
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ipv6Addr::from(a)
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Ipv6<B> {
    /// Set the traffic class, keeping version and flow label.
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = be16(self.s(), 0);
        put16(self.b.as_mut(), 0, (w & 0xf00f) | (u16::from(tc) << 4));
    }
    /// Set the DSCP, keeping ECN.
    pub fn set_dscp(&mut self, dscp: u8) {
        let tc = self.traffic_class();
        self.set_traffic_class((dscp << 2) | (tc & 3));
    }
    /// Set the payload length.
    pub fn set_payload_len(&mut self, l: u16) {
        put16(self.b.as_mut(), 4, l);
    }
    /// Set the next header.
    pub fn set_next_header(&mut self, nh: u8) {
        self.b.as_mut()[6] = nh;
    }
    /// Set the hop limit.
    pub fn set_hop_limit(&mut self, h: u8) {
        self.b.as_mut()[7] = h;
    }
    /// Set the source address.
    pub fn set_src(&mut self, a: Ipv6Addr) {
        self.b.as_mut()[8..24].copy_from_slice(&a.octets());
    }
    /// Set the destination address.
    pub fn set_dst(&mut self, a: Ipv6Addr) {
        self.b.as_mut()[24..40].copy_from_slice(&a.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // TC 0xb8 (DSCP 46), flow 0x12345, hop-by-hop (8) -> fragment (8, offset 0,
    // M) -> UDP (8 bytes), fe80::1 -> ff02::1.
    static PKT: [u8; 64] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x18, 0x00, 0x40, //
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
        44, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop, next fragment, PadN
        17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, // fragment: offset 0, M, ident
        0x04, 0x00, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // UDP
    ];

    #[test]
    fn get() {
        let p = Ipv6::parse(&PKT[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!((p.traffic_class(), p.dscp(), p.ecn()), (0xb8, 46, 0));
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (24, 0, 64)
        );
        assert_eq!(p.src(), "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst(), "ff02::1".parse::<Ipv6Addr>().unwrap());
        let c = p.ext_chain();
        assert_eq!(c.end, ChainEnd::Done);
        assert_eq!((c.proto, c.offset, c.count), (17, 56, 2));
        assert_eq!(
            c.frag,
            Some(Fragment {
                offset: 0,
                more: true,
                ident: 0xdeadbeef
            })
        );
    }

    #[test]
    fn non_first_fragment_stops() {
        let mut b = PKT;
        b[50] = 0x00;
        b[51] = 0x08; // offset 1, no M
        b[48] = 0; // next header says hop-by-hop: must not be walked
        let c = Ipv6::parse(&b[..]).unwrap().ext_chain();
        assert_eq!(c.end, ChainEnd::Done);
        assert_eq!((c.proto, c.offset), (0, 56));
        assert_eq!(c.frag.unwrap().offset, 1);
    }

    #[test]
    fn set() {
        let mut b = PKT;
        let mut p = Ipv6::parse(&mut b[..]).unwrap();
        p.set_dscp(10);
        p.set_hop_limit(1);
        p.set_next_header(17);
        p.set_payload_len(8);
        p.set_src(Ipv6Addr::LOCALHOST);
        p.set_dst(Ipv6Addr::UNSPECIFIED);
        assert_eq!((p.dscp(), p.flow_label(), p.version()), (10, 0x12345, 6));
        assert_eq!(p.ext_chain().proto, 17);
        assert_eq!(p.src(), Ipv6Addr::LOCALHOST);
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    fn truncated() {
        assert_eq!(Ipv6::parse(&PKT[..39]).unwrap_err(), Error::Truncated);
        let c = Ipv6::parse(&PKT[..52]).unwrap().ext_chain();
        assert_eq!(
            (c.end, c.proto, c.offset, c.count),
            (ChainEnd::Truncated, 44, 48, 1)
        );
        let mut b = PKT;
        b[0] = 0x4b;
        assert_eq!(Ipv6::parse(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn overlong_and_too_long_chain() {
        let mut b = [0u8; 40 + 8 * 12 + 20];
        b[..40].copy_from_slice(&PKT[..40]);
        b[4..6].copy_from_slice(&0u16.to_be_bytes()); // jumbo: to the end
        b[6] = 60;
        for i in 0..12 {
            b[40 + 8 * i] = 60; // destination options, len 0, all chained
        }
        let p = Ipv6::parse(&b[..]).unwrap();
        assert_eq!(p.payload().len(), b.len() - 40);
        let c = p.ext_chain();
        assert_eq!((c.end, c.count), (ChainEnd::TooLong, MAX_EXT_HEADERS as u8));
        // Padding after a short payload is not walked.
        let mut pad = [0u8; 100];
        pad[..64].copy_from_slice(&PKT);
        assert_eq!(Ipv6::parse(&pad[..]).unwrap().payload().len(), 24);
    }

    #[test]
    fn ah_length() {
        let mut b = [0u8; 40 + 16 + 8];
        b[..40].copy_from_slice(&PKT[..40]);
        b[4..6].copy_from_slice(&24u16.to_be_bytes());
        b[6] = ext::AH;
        b[40] = 6;
        b[41] = 2; // (2 + 2) * 4 = 16 bytes
        let c = Ipv6::parse(&b[..]).unwrap().ext_chain();
        assert_eq!((c.proto, c.offset, c.end), (6, 56, ChainEnd::Done));
    }
}
