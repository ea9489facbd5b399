//! ECP (802.1Qbg-2012 Edge Control Protocol, ethertype 0x8940) header view.
//!
//! ```text
//! 0-1  b15-12 version (1) | b11-10 op (0 request, 1 ACK) | b9-0 subtype (1 VDP, 2 PE-CSP)
//! 2-3  sequence number; then the ULPDU (VDP TLVs, see [`super::lldp::TlvIter`])
//! ```

use super::{be16, put16, Error};
use crate::types::Mac;

/// ECP ethertype.
pub const ETHERTYPE: u16 = super::ethertype::ECP;
/// ECP destination (nearest customer bridge, 01-80-C2-00-00-00).
pub const DST: Mac = Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x00]);
/// Header length.
pub const HDR_LEN: usize = 4;
/// The only ECP version defined.
pub const VERSION: u8 = 1;

/// ECP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// ECP request (carries a ULPDU).
    Request,
    /// ECP acknowledgement.
    Ack,
    /// Any other 2-bit value.
    Unknown(u8),
}

impl From<u8> for Op {
    fn from(v: u8) -> Op {
        match v & 3 {
            0 => Op::Request,
            1 => Op::Ack,
            x => Op::Unknown(x),
        }
    }
}
impl From<Op> for u8 {
    fn from(o: Op) -> u8 {
        match o {
            Op::Request => 0,
            Op::Ack => 1,
            Op::Unknown(x) => x & 3,
        }
    }
}

/// ECP upper-layer subtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subtype {
    /// VDP.
    Vdp,
    /// Port extender control and status (802.1BR).
    PeCsp,
    /// Any other 10-bit value.
    Unknown(u16),
}

impl From<u16> for Subtype {
    fn from(v: u16) -> Subtype {
        match v & 0x3ff {
            1 => Subtype::Vdp,
            2 => Subtype::PeCsp,
            x => Subtype::Unknown(x),
        }
    }
}
impl From<Subtype> for u16 {
    fn from(s: Subtype) -> u16 {
        match s {
            Subtype::Vdp => 1,
            Subtype::PeCsp => 2,
            Subtype::Unknown(x) => x & 0x3ff,
        }
    }
}

/// Zero-copy view of an ECP header and its ULPDU. `parse` checks 4 bytes;
/// version and subtype are not checked (the ECP state machine drops them).
#[derive(Clone, Copy, Debug)]
pub struct Ecp<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Ecp<B> {
    /// Wrap `b`; fails with [`Error::Truncated`] below 4 bytes.
    pub fn parse(b: B) -> Result<Self, Error> {
        if b.as_ref().len() < HDR_LEN {
            return Err(Error::Truncated);
        }
        Ok(Ecp { b })
    }
    fn w(&self) -> u16 {
        be16(self.b.as_ref(), 0)
    }
    /// Version (4 bits).
    pub fn version(&self) -> u8 {
        (self.w() >> 12) as u8
    }
    /// Operation (2 bits).
    pub fn op(&self) -> Op {
        Op::from((self.w() >> 10) as u8)
    }
    /// Subtype (10 bits).
    pub fn subtype(&self) -> Subtype {
        Subtype::from(self.w())
    }
    /// Sequence number.
    pub fn sequence(&self) -> u16 {
        be16(self.b.as_ref(), 2)
    }
    /// The ULPDU (may include the zero padding of a short frame).
    pub fn payload(&self) -> &[u8] {
        &self.b.as_ref()[HDR_LEN..]
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Ecp<B> {
    /// Set version, op and subtype at once.
    pub fn set_header(&mut self, version: u8, op: Op, subtype: Subtype) {
        let w =
            (u16::from(version & 0xf) << 12) | (u16::from(u8::from(op)) << 10) | u16::from(subtype);
        put16(self.b.as_mut(), 0, w);
    }
    /// Set the op, keeping version and subtype.
    pub fn set_op(&mut self, op: Op) {
        let (v, s) = (self.version(), self.subtype());
        self.set_header(v, op, s);
    }
    /// Set the sequence number.
    pub fn set_sequence(&mut self, s: u16) {
        put16(self.b.as_mut(), 2, s);
    }
    /// Mutable ULPDU.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.b.as_mut()[HDR_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // lldpad vector: request 10 01 12 24 -> ACK 14 01 12 24.
    static REQ: [u8; 6] = [0x10, 0x01, 0x12, 0x24, 0xaa, 0xbb];

    #[test]
    fn get() {
        let e = Ecp::parse(&REQ[..]).unwrap();
        assert_eq!(
            (e.version(), e.op(), e.subtype()),
            (1, Op::Request, Subtype::Vdp)
        );
        assert_eq!(e.sequence(), 0x1224);
        assert_eq!(e.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn set_ack() {
        let mut b = REQ;
        let mut e = Ecp::parse(&mut b[..]).unwrap();
        e.set_op(Op::Ack);
        assert_eq!(&b[..4], &[0x14, 0x01, 0x12, 0x24]);
        let mut e = Ecp::parse(&mut b[..]).unwrap();
        e.set_header(2, Op::Unknown(3), Subtype::Unknown(0x3ff));
        e.set_sequence(7);
        e.payload_mut()[0] = 0;
        assert_eq!(
            (e.version(), e.op(), e.subtype(), e.sequence()),
            (2, Op::Unknown(3), Subtype::Unknown(0x3ff), 7)
        );
        assert_eq!(Subtype::from(2), Subtype::PeCsp);
        assert_eq!(b[4], 0);
    }

    #[test]
    fn truncated_and_overlong() {
        assert_eq!(Ecp::parse(&REQ[..3]).unwrap_err(), Error::Truncated);
        assert!(Ecp::parse(&REQ[..4]).unwrap().payload().is_empty());
        let big = [0u8; 1500];
        assert_eq!(Ecp::parse(&big[..]).unwrap().payload().len(), 1496);
    }
}
