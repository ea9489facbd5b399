//! Transport headers: TCP, UDP, ICMP, ICMPv6.

use super::{be16, be32, put16, put32, Error};

/// IP protocol numbers the switch looks at.
pub mod ip_proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// TCP flag bits as returned by [`Tcp::flags`] (NS is bit 8).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE.
    pub const ECE: u16 = 0x040;
    /// CWR.
    pub const CWR: u16 = 0x080;
    /// NS (ECN nonce, obsolete).
    pub const NS: u16 = 0x100;
}

/// Length of a TCP header without options.
pub const TCP_MIN_HDR_LEN: usize = 20;
/// Length of a UDP header.
pub const UDP_HDR_LEN: usize = 8;
/// Length of an ICMP / ICMPv6 header (type, code, checksum, 4 bytes of rest).
pub const ICMP_HDR_LEN: usize = 8;

/// Zero-copy view of a TCP header.
///
/// `parse` checks 20 bytes, data offset ≥ 5 and the whole header (options
/// included) present.
#[derive(Clone, Copy, Debug)]
pub struct Tcp<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Tcp<B> {
    /// Wrap `b`; see the type docs. No getter can panic afterwards.
    pub fn parse(b: B) -> Result<Self, Error> {
        let s = b.as_ref();
        if s.len() < TCP_MIN_HDR_LEN {
            return Err(Error::Truncated);
        }
        let hl = usize::from(s[12] >> 4) * 4;
        if hl < TCP_MIN_HDR_LEN {
            return Err(Error::Malformed);
        }
        if s.len() < hl {
            return Err(Error::Truncated);
        }
        Ok(Tcp { b })
    }
    fn s(&self) -> &[u8] {
        self.b.as_ref()
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.s(), 0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.s(), 2)
    }
    /// Sequence number.
    pub fn seq(&self) -> u32 {
        be32(self.s(), 4)
    }
    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        be32(self.s(), 8)
    }
    /// Data offset in 32-bit words (5..=15).
    pub fn data_offset(&self) -> u8 {
        self.s()[12] >> 4
    }
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }
    /// The nine flag bits ([`tcp_flags`]).
    pub fn flags(&self) -> u16 {
        be16(self.s(), 12) & 0x01ff
    }
    /// Window.
    pub fn window(&self) -> u16 {
        be16(self.s(), 14)
    }
    /// Checksum as stored.
    pub fn checksum(&self) -> u16 {
        be16(self.s(), 16)
    }
    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        be16(self.s(), 18)
    }
    /// Option bytes.
    pub fn options(&self) -> &[u8] {
        &self.s()[TCP_MIN_HDR_LEN..self.header_len()]
    }
    /// Bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.s()[self.header_len()..]
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Tcp<B> {
    /// Set the source port.
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.b.as_mut(), 0, p);
    }
    /// Set the destination port.
    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.b.as_mut(), 2, p);
    }
    /// Set the sequence number.
    pub fn set_seq(&mut self, v: u32) {
        put32(self.b.as_mut(), 4, v);
    }
    /// Set the acknowledgement number.
    pub fn set_ack(&mut self, v: u32) {
        put32(self.b.as_mut(), 8, v);
    }
    /// Set the nine flag bits, keeping the data offset.
    pub fn set_flags(&mut self, f: u16) {
        let w = be16(self.s(), 12);
        put16(self.b.as_mut(), 12, (w & 0xf000) | (f & 0x01ff));
    }
    /// Set the window.
    pub fn set_window(&mut self, w: u16) {
        put16(self.b.as_mut(), 14, w);
    }
    /// Store a checksum.
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.b.as_mut(), 16, c);
    }
}

/// Zero-copy view of a UDP header. `parse` checks 8 bytes.
#[derive(Clone, Copy, Debug)]
pub struct Udp<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Udp<B> {
    /// Wrap `b`; fails with [`Error::Truncated`] below 8 bytes.
    pub fn parse(b: B) -> Result<Self, Error> {
        if b.as_ref().len() < UDP_HDR_LEN {
            return Err(Error::Truncated);
        }
        Ok(Udp { b })
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.b.as_ref(), 0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.b.as_ref(), 2)
    }
    /// Length field (header + payload).
    pub fn len(&self) -> u16 {
        be16(self.b.as_ref(), 4)
    }
    /// Length field below the header length (malformed, or "empty").
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= UDP_HDR_LEN
    }
    /// Checksum as stored (0 = none, IPv4 only).
    pub fn checksum(&self) -> u16 {
        be16(self.b.as_ref(), 6)
    }
    /// Payload, clipped to the length field and the buffer.
    pub fn payload(&self) -> &[u8] {
        let s = self.b.as_ref();
        let end = usize::from(self.len()).clamp(UDP_HDR_LEN, s.len());
        &s[UDP_HDR_LEN..end]
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Udp<B> {
    /// Set the source port.
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.b.as_mut(), 0, p);
    }
    /// Set the destination port.
    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.b.as_mut(), 2, p);
    }
    /// Set the length field.
    pub fn set_len(&mut self, l: u16) {
        put16(self.b.as_mut(), 4, l);
    }
    /// Store a checksum.
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.b.as_mut(), 6, c);
    }
}

macro_rules! icmp_view {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        ///
        /// `parse` checks 8 bytes (type, code, checksum, 4 bytes of rest of header).
        #[derive(Clone, Copy, Debug)]
        pub struct $name<B> {
            b: B,
        }

        impl<B: AsRef<[u8]>> $name<B> {
            /// Wrap `b`; fails with [`Error::Truncated`] below 8 bytes.
            pub fn parse(b: B) -> Result<Self, Error> {
                if b.as_ref().len() < ICMP_HDR_LEN {
                    return Err(Error::Truncated);
                }
                Ok($name { b })
            }
            /// Message type.
            pub fn msg_type(&self) -> u8 {
                self.b.as_ref()[0]
            }
            /// Message code.
            pub fn code(&self) -> u8 {
                self.b.as_ref()[1]
            }
            /// Checksum as stored.
            pub fn checksum(&self) -> u16 {
                be16(self.b.as_ref(), 2)
            }
            /// The 4 bytes after the checksum, as one word.
            pub fn rest(&self) -> u32 {
                be32(self.b.as_ref(), 4)
            }
            /// Echo identifier (first half of the rest of header).
            pub fn echo_ident(&self) -> u16 {
                be16(self.b.as_ref(), 4)
            }
            /// Echo sequence number (second half of the rest of header).
            pub fn echo_seq(&self) -> u16 {
                be16(self.b.as_ref(), 6)
            }
            /// Bytes after the 8-byte header.
            pub fn payload(&self) -> &[u8] {
                &self.b.as_ref()[ICMP_HDR_LEN..]
            }
        }

        impl<B: AsRef<[u8]> + AsMut<[u8]>> $name<B> {
            /// Set the type.
            pub fn set_msg_type(&mut self, t: u8) {
                self.b.as_mut()[0] = t;
            }
            /// Set the code.
            pub fn set_code(&mut self, c: u8) {
                self.b.as_mut()[1] = c;
            }
            /// Store a checksum.
            pub fn set_checksum(&mut self, c: u16) {
                put16(self.b.as_mut(), 2, c);
            }
            /// Set the rest-of-header word.
            pub fn set_rest(&mut self, v: u32) {
                put32(self.b.as_mut(), 4, v);
            }
        }
    };
}

icmp_view! {
    /// Zero-copy view of an ICMP (v4) header.
    Icmp
}
icmp_view! {
    /// Zero-copy view of an ICMPv6 header.
    Icmpv6
}

/// ICMP types used by the builder and tests.
pub mod icmp_type {
    /// ICMP echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// ICMP echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// ICMPv6 echo request.
    pub const V6_ECHO_REQUEST: u8 = 128;
    /// ICMPv6 echo reply.
    pub const V6_ECHO_REPLY: u8 = 129;
    /// ICMPv6 neighbour solicitation.
    pub const V6_NEIGHBOR_SOLICIT: u8 = 135;
    /// ICMPv6 neighbour advertisement.
    pub const V6_NEIGHBOR_ADVERT: u8 = 136;
}

#[cfg(test)]
mod tests {
    use super::*;

    // 1234 -> 80, seq 1, ack 2, data offset 6 (one MSS option), SYN|ACK, NS.
    static TCP: [u8; 26] = [
        0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, 0x61, 0x12, 0xff, 0xff, 0xab, 0xcd, 0,
        0, //
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x99, 0x98,
    ];
    static UDP: [u8; 12] = [0x00, 0x44, 0x00, 0x43, 0x00, 0x0a, 0x12, 0x34, 1, 2, 3, 4];
    static ICMP: [u8; 10] = [8, 0, 0xf7, 0xfe, 0x00, 0x01, 0x00, 0x02, 0xaa, 0xbb];

    #[test]
    fn tcp_get_set() {
        let t = Tcp::parse(&TCP[..]).unwrap();
        assert_eq!(
            (t.src_port(), t.dst_port(), t.seq(), t.ack()),
            (1234, 80, 1, 2)
        );
        assert_eq!((t.data_offset(), t.header_len()), (6, 24));
        assert_eq!(t.flags(), tcp_flags::SYN | tcp_flags::ACK | tcp_flags::NS);
        assert_eq!((t.window(), t.checksum(), t.urgent()), (0xffff, 0xabcd, 0));
        assert_eq!(t.options(), &[2, 4, 5, 0xb4]);
        assert_eq!(t.payload(), &[0x99, 0x98]);
        let mut b = TCP;
        let mut t = Tcp::parse(&mut b[..]).unwrap();
        t.set_src_port(1);
        t.set_dst_port(2);
        t.set_seq(3);
        t.set_ack(4);
        t.set_flags(tcp_flags::RST | 0xfe00);
        t.set_window(5);
        t.set_checksum(6);
        assert_eq!((t.src_port(), t.dst_port(), t.seq(), t.ack()), (1, 2, 3, 4));
        assert_eq!(
            (t.flags(), t.data_offset(), t.window(), t.checksum()),
            (tcp_flags::RST, 6, 5, 6)
        );
    }

    #[test]
    fn tcp_truncated_malformed() {
        assert_eq!(Tcp::parse(&TCP[..19]).unwrap_err(), Error::Truncated);
        assert_eq!(Tcp::parse(&TCP[..22]).unwrap_err(), Error::Truncated);
        let mut b = TCP;
        b[12] = 0x40;
        assert_eq!(Tcp::parse(&b[..]).unwrap_err(), Error::Malformed);
        b[12] = 0xf0; // 60-byte header in a 26-byte buffer
        assert_eq!(Tcp::parse(&b[..]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn udp_get_set() {
        let u = Udp::parse(&UDP[..]).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.len(), u.checksum()),
            (68, 67, 10, 0x1234)
        );
        assert_eq!(u.payload(), &[1, 2]); // clipped to the length field
        assert!(!u.is_empty());
        let mut b = UDP;
        let mut u = Udp::parse(&mut b[..]).unwrap();
        u.set_src_port(53);
        u.set_dst_port(5353);
        u.set_len(200); // longer than the buffer: payload clipped to it
        u.set_checksum(0);
        assert_eq!((u.src_port(), u.dst_port(), u.checksum()), (53, 5353, 0));
        assert_eq!(u.payload().len(), 4);
        u.set_len(3); // below the header: empty payload, no panic
        assert!(u.payload().is_empty() && u.is_empty());
        assert_eq!(Udp::parse(&UDP[..7]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn icmp_get_set() {
        let i = Icmp::parse(&ICMP[..]).unwrap();
        assert_eq!(
            (i.msg_type(), i.code(), i.checksum()),
            (icmp_type::ECHO_REQUEST, 0, 0xf7fe)
        );
        assert_eq!(
            (i.echo_ident(), i.echo_seq(), i.rest()),
            (1, 2, 0x0001_0002)
        );
        assert_eq!(i.payload(), &[0xaa, 0xbb]);
        let mut b = ICMP;
        let mut i = Icmpv6::parse(&mut b[..]).unwrap();
        i.set_msg_type(icmp_type::V6_NEIGHBOR_SOLICIT);
        i.set_code(1);
        i.set_checksum(2);
        i.set_rest(3);
        assert_eq!(
            (i.msg_type(), i.code(), i.checksum(), i.rest()),
            (135, 1, 2, 3)
        );
        assert_eq!(Icmp::parse(&ICMP[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(Icmpv6::parse(&ICMP[..4]).unwrap_err(), Error::Truncated);
    }
}
