//! LLDP (802.1AB, ethertype 0x88CC): a minimal LLDPDU view and TLV iteration.
//!
//! A TLV header is 16 bits: type (7 bits) then length (9 bits). VDP (inside
//! ECP) uses the same format, so [`TlvIter`] serves both.

use super::{be16, Error};
use crate::types::Mac;

/// LLDP ethertype.
pub const ETHERTYPE: u16 = super::ethertype::LLDP;
/// Nearest bridge group address (01-80-C2-00-00-0E).
pub const NEAREST_BRIDGE: Mac = Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]);
/// Nearest non-TPMR bridge group address (01-80-C2-00-00-03).
pub const NEAREST_NON_TPMR_BRIDGE: Mac = Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x03]);
/// Nearest customer bridge group address (01-80-C2-00-00-00); EVB TLVs go here.
pub const NEAREST_CUSTOMER_BRIDGE: Mac = Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x00]);

/// TLV types.
pub mod tlv_type {
    /// End of LLDPDU.
    pub const END: u8 = 0;
    /// Chassis ID.
    pub const CHASSIS_ID: u8 = 1;
    /// Port ID.
    pub const PORT_ID: u8 = 2;
    /// Time to live.
    pub const TTL: u8 = 3;
    /// Organizationally specific (OUI + subtype + data; the EVB TLV is one).
    pub const ORG: u8 = 127;
}

/// Encode a TLV header: `type << 9 | len` (type masked to 7 bits, length to 9).
pub const fn tlv_header(ty: u8, len: u16) -> [u8; 2] {
    let w = ((ty as u16 & 0x7f) << 9) | (len & 0x1ff);
    w.to_be_bytes()
}

/// One TLV: its type and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Type (7 bits).
    pub ty: u8,
    /// Value (length given by the 9-bit length field).
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// For an organizationally specific TLV: the OUI and subtype, and the rest.
    pub fn org(&self) -> Option<([u8; 3], u8, &'a [u8])> {
        match self.value {
            [a, b, c, sub, rest @ ..] if self.ty == tlv_type::ORG => {
                Some(([*a, *b, *c], *sub, rest))
            }
            _ => None,
        }
    }
}

/// Iterator over 7+9-bit TLVs. Yields `Ok(tlv)` for each complete TLV; stops
/// (without yielding it) at an End TLV (type 0), or at the end of the buffer.
/// A TLV whose header or value is cut short yields one `Err(Error::Truncated)`
/// and then the iterator ends. Never panics.
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> TlvIter<'a> {
    /// Iterate over the TLVs in `b`.
    pub fn new(b: &'a [u8]) -> Self {
        TlvIter {
            rest: b,
            done: false,
        }
    }
    /// Bytes not yet consumed (after an End TLV: the padding that follows it).
    pub fn remainder(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 2 {
            self.done = true;
            return Some(Err(Error::Truncated));
        }
        let w = be16(self.rest, 0);
        let ty = (w >> 9) as u8;
        let len = usize::from(w & 0x1ff);
        if ty == tlv_type::END {
            self.done = true;
            self.rest = &self.rest[2..];
            return None;
        }
        if self.rest.len() < 2 + len {
            self.done = true;
            return Some(Err(Error::Truncated));
        }
        let value = &self.rest[2..2 + len];
        self.rest = &self.rest[2 + len..];
        Some(Ok(Tlv { ty, value }))
    }
}

/// Minimal LLDPDU view (the bytes after the ethertype). `parse` only checks
/// that one TLV header (2 bytes) is present; the TLVs themselves are checked
/// as they are iterated.
#[derive(Clone, Copy, Debug)]
pub struct Lldp<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Lldp<B> {
    /// Wrap `b`; fails with [`Error::Truncated`] below 2 bytes.
    pub fn parse(b: B) -> Result<Self, Error> {
        if b.as_ref().len() < 2 {
            return Err(Error::Truncated);
        }
        Ok(Lldp { b })
    }
    /// Iterate over the TLVs.
    pub fn tlvs(&self) -> TlvIter<'_> {
        TlvIter::new(self.b.as_ref())
    }
    fn first(&self, ty: u8) -> Option<&[u8]> {
        self.tlvs()
            .map_while(Result::ok)
            .find(|t| t.ty == ty)
            .map(|t| t.value)
    }
    /// Value of the Chassis ID TLV (subtype byte first), if present.
    pub fn chassis_id(&self) -> Option<&[u8]> {
        self.first(tlv_type::CHASSIS_ID)
    }
    /// Value of the Port ID TLV (subtype byte first), if present.
    pub fn port_id(&self) -> Option<&[u8]> {
        self.first(tlv_type::PORT_ID)
    }
    /// Time to live in seconds, if a well-formed TTL TLV is present.
    pub fn ttl(&self) -> Option<u16> {
        match self.first(tlv_type::TTL)? {
            [a, b] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }
    /// True when the TLVs parse to an End TLV (or the end of the buffer)
    /// and the first three are Chassis ID, Port ID and TTL, as 802.1AB requires.
    pub fn is_well_formed(&self) -> bool {
        let mut n = 0;
        for (i, t) in self.tlvs().enumerate() {
            let Ok(t) = t else { return false };
            if i < 3 && usize::from(t.ty) != i + 1 {
                return false;
            }
            n += 1;
        }
        n >= 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Chassis ID (MAC subtype 4), Port ID (local "p1"), TTL 120, EVB TLV, End, padding.
    static PDU: [u8; 38] = [
        0x02, 0x07, 4, 0x02, 0, 0, 0, 0, 1, // chassis
        0x04, 0x03, 7, b'p', b'1', // port
        0x06, 0x02, 0x00, 0x78, // ttl
        0xfe, 0x09, 0x00, 0x80, 0xc2, 0x0d, 0x02, 0x00, 0x00, 0x40, 0x00, // EVB
        0x00, 0x00, // end
        0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn get() {
        let l = Lldp::parse(&PDU[..]).unwrap();
        assert_eq!(l.chassis_id(), Some(&[4, 2, 0, 0, 0, 0, 1][..]));
        assert_eq!(l.port_id(), Some(&b"\x07p1"[..]));
        assert_eq!(l.ttl(), Some(120));
        assert!(l.is_well_formed());
        let tlvs: Vec<_> = l.tlvs().collect::<Result<_, _>>().unwrap();
        assert_eq!(tlvs.len(), 4);
        let (oui, sub, rest) = tlvs[3].org().unwrap();
        assert_eq!((oui, sub, rest.len()), ([0x00, 0x80, 0xc2], 0x0d, 5));
        assert!(tlvs[0].org().is_none());
        let mut it = l.tlvs();
        for _ in it.by_ref() {}
        assert_eq!(it.remainder().len(), 7);
    }

    #[test]
    fn header_encoding() {
        assert_eq!(tlv_header(127, 9), [0xfe, 0x09]);
        assert_eq!(tlv_header(3, 0x1ff), [0x07, 0xff]);
    }

    #[test]
    fn truncated() {
        assert_eq!(Lldp::parse(&PDU[..1]).unwrap_err(), Error::Truncated);
        let l = Lldp::parse(&PDU[..12]).unwrap(); // port ID value cut
        let v: Vec<_> = l.tlvs().collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], Err(Error::Truncated));
        assert!(!l.is_well_formed());
        assert_eq!(l.ttl(), None);
        let odd = Lldp::parse(&PDU[..10]).unwrap(); // one byte of the port header
        assert_eq!(odd.tlvs().last(), Some(Err(Error::Truncated)));
    }

    #[test]
    fn overlong_no_end() {
        // Max-length TLV (511 bytes) and no End TLV: iteration ends at the buffer end.
        let mut b = vec![0u8; 2 + 511];
        b[..2].copy_from_slice(&tlv_header(127, 511));
        let l = Lldp::parse(&b[..]).unwrap();
        let v: Vec<_> = l.tlvs().collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].unwrap().value.len(), 511);
        assert!(!l.is_well_formed());
    }
}
