//! Zero-copy header views, a one-pass frame summary and a frame builder.
//!
//! Every view wraps a buffer `B: AsRef<[u8]>` (setters need `B: AsMut<[u8]>`
//! too). `parse` checks the length (and the few fields that decide the header
//! length) once; after it succeeds no getter can panic, whatever the bytes are.
//!
//! | module | view | header |
//! |---|---|---|
//! | [`eth`] | [`Eth`] | Ethernet II: dst, src, ethertype |
//! | [`vlan`] | [`Vlan`], [`Tci`] | 802.1Q (0x8100) / 802.1ad (0x88a8) tag: TCI + inner ethertype |
//! | [`arp`] | [`Arp`] | ARP (any hardware/protocol lengths) |
//! | [`ipv4`] | [`Ipv4`] | IPv4 with options, fragments, header checksum |
//! | [`ipv6`] | [`Ipv6`], [`ExtChain`] | IPv6 fixed header and the extension-header walk |
//! | [`l4`] | [`Tcp`], [`Udp`], [`Icmp`], [`Icmpv6`] | transport headers |
//! | [`lldp`] | [`Lldp`], [`TlvIter`] | LLDPDU (0x88CC) and its 7+9-bit TLVs (also used by VDP) |
//! | [`ecp`] | [`Ecp`] | 802.1Qbg ECP header (0x8940) |
//! | [`evb`] | [`evb::Evb`], [`evb::EvbRepr`] | 802.1Qbg EVB TLV (LLDP, OUI 00-80-C2 subtype 0x0D) |
//! | [`vdp`] | [`vdp::Pdu`], [`vdp::Assoc`], [`vdp::AssocRepr`] | 802.1Qbg VDP TLVs (the ECP payload) |
//!
//! [`frame::parse_frame`] walks a whole frame once and returns a small `Copy`
//! [`FrameInfo`] for the pipeline and the ACLs. [`build::FrameBuilder`] makes
//! valid frames for tests, the generator and fuzz seeds (it allocates; it is
//! not for the fast path). [`checksum`] has the Internet checksum helpers;
//! [`fuzz::exercise`] drives all of the above over arbitrary bytes (fuzz
//! target and property tests).

pub mod arp;
pub mod build;
pub mod checksum;
pub mod ecp;
pub mod eth;
pub mod evb;
pub mod frame;
pub mod fuzz;
pub mod ipv4;
pub mod ipv6;
pub mod l4;
pub mod lldp;
pub mod vdp;
pub mod vlan;

pub use arp::Arp;
pub use build::FrameBuilder;
pub use ecp::Ecp;
pub use eth::{ethertype, Eth};
pub use frame::{parse_frame, ArpInfo, FragInfo, FrameInfo, IpInfo, L3Kind, L4Info, VlanTag};
pub use ipv4::Ipv4;
pub use ipv6::{ExtChain, Ipv6};
pub use l4::{ip_proto, Icmp, Icmpv6, Tcp, Udp};
pub use lldp::{Lldp, Tlv, TlvIter};
pub use vlan::{Tci, Vlan};

use crate::stats::DropReason;

/// Why a header view or a frame could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// Frame shorter than an Ethernet header (14 bytes).
    Runt,
    /// A VLAN tag (TPID 0x8100 or 0x88a8) is cut short: fewer than 4 bytes follow the TPID.
    TruncatedVlan,
    /// The buffer is shorter than the header (including the length its own fields announce).
    Truncated,
    /// A field that decides the header layout is impossible (wrong IP version,
    /// IPv4 IHL below 5 or total length below the header, TCP data offset below 5).
    Malformed,
}

impl Error {
    /// The drop reason the switch counts when a frame fails to parse:
    /// [`DropReason::BadVlan`] for a cut VLAN tag, [`DropReason::Runt`] otherwise.
    pub const fn drop_reason(self) -> DropReason {
        match self {
            Error::TruncatedVlan => DropReason::BadVlan,
            Error::Runt | Error::Truncated | Error::Malformed => DropReason::Runt,
        }
    }
}

impl From<Error> for DropReason {
    fn from(e: Error) -> DropReason {
        e.drop_reason()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Runt => "frame shorter than an Ethernet header",
            Error::TruncatedVlan => "VLAN tag cut short",
            Error::Truncated => "header cut short",
            Error::Malformed => "malformed header",
        })
    }
}

impl std::error::Error for Error {}

/// Big-endian u16 at `b[i..i + 2]` (caller checked the length).
#[inline(always)]
pub(crate) fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

/// Big-endian u32 at `b[i..i + 4]` (caller checked the length).
#[inline(always)]
pub(crate) fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Store a big-endian u16 at `b[i..i + 2]` (caller checked the length).
#[inline(always)]
pub(crate) fn put16(b: &mut [u8], i: usize, v: u16) {
    b[i..i + 2].copy_from_slice(&v.to_be_bytes());
}

/// Store a big-endian u32 at `b[i..i + 4]` (caller checked the length).
#[inline(always)]
pub(crate) fn put32(b: &mut [u8], i: usize, v: u32) {
    b[i..i + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_maps_to_drop_reason() {
        assert_eq!(DropReason::from(Error::Runt), DropReason::Runt);
        assert_eq!(DropReason::from(Error::TruncatedVlan), DropReason::BadVlan);
        assert_eq!(Error::Truncated.drop_reason(), DropReason::Runt);
        assert!(!Error::Malformed.to_string().is_empty());
    }
}
