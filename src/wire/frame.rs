//! One-pass frame summary: [`parse_frame`] → [`FrameInfo`].
//!
//! # Truncation rules
//!
//! Only two things make [`parse_frame`] fail:
//! - fewer than 14 bytes: [`Error::Runt`];
//! - a TPID 0x8100 or 0x88a8 (first or second tag) with fewer than 4 bytes
//!   after it: [`Error::TruncatedVlan`].
//!
//! Everything above the tags is best effort. A layer is either present in full
//! (its `Option` is `Some`) or absent (`None`); nothing is ever half filled.
//! When a layer is absent because its header was cut short or is malformed,
//! [`FrameInfo::incomplete`] is set, so an ACL can drop or punt such frames;
//! when it is absent because it legitimately is not there (non-IP frame,
//! unknown IP protocol, non-first fragment, non-Ethernet/IPv4 ARP) the flag
//! is not set. In detail:
//!
//! | field | present when |
//! |---|---|
//! | `dst`, `src`, `ethertype`, `l3_offset`, `l3` | always (the L3 bytes may be missing) |
//! | `tags[..n_tags]` | always; at most 2 tags are read, a 3rd TPID sets `extra_tags` and becomes `ethertype` with `l3 = Other` |
//! | `arp` | ARP with the whole 28-byte Ethernet/IPv4 body (htype 1, ptype 0x0800, hlen 6, plen 4) |
//! | `ip` | IPv4: version 4, IHL ≥ 5, total length ≥ header length and the whole header incl. options in the frame. IPv6: version 6 and the 40-byte fixed header in the frame |
//! | `ip.proto` | IPv4: always. IPv6: when the extension chain was walked to its end (not cut short, at most 8 extension headers); else `None` and `incomplete` |
//! | `ip.frag` | always with `ip` (from the IPv4 flags/offset or the IPv6 fragment header) |
//! | `ip.l4_offset` | `ip.proto` is known and the packet is not a non-first fragment (the L4 bytes may be missing) |
//! | `l4` | `ip.l4_offset` is set, the protocol is TCP/UDP/ICMP/ICMPv6 and its header is whole within the IP packet: TCP 20 bytes and data offset × 4 (options included), UDP 8, ICMP/ICMPv6 8 |
//!
//! "Within the IP packet" means before `min(end of frame, end given by the IP
//! length field)`: Ethernet padding is never read as L4 header. The frame may
//! be shorter than the IP length says (the payload is cut): that alone does
//! not set `incomplete`. LLDP (< 2 bytes) and ECP (< 4 bytes) bodies that are
//! cut short also set `incomplete`.

use super::arp::Arp;
use super::eth::{ethertype, HDR_LEN as ETH_LEN};
use super::ipv4::Ipv4;
use super::ipv6::{ChainEnd, Ipv6};
use super::l4::{ip_proto, Icmp, Icmpv6, Tcp, Udp};
use super::vlan::{is_tpid, Tci};
use super::{be16, ecp, lldp, Error};
use crate::types::Mac;
use std::net::{IpAddr, Ipv4Addr};

/// Most VLAN tags recorded in a [`FrameInfo`].
pub const MAX_TAGS: usize = 2;

/// A VLAN tag as found in the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// 0x8100 or 0x88a8.
    pub tpid: u16,
    /// Tag control information.
    pub tci: Tci,
}

/// What the (innermost) ethertype says the L3 payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L3Kind {
    /// 0x0806.
    Arp,
    /// 0x0800.
    Ipv4,
    /// 0x86dd.
    Ipv6,
    /// 0x88cc.
    Lldp,
    /// 0x8940.
    Ecp,
    /// Anything else (see [`FrameInfo::ethertype`]).
    Other,
}

/// Ethernet/IPv4 ARP fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpInfo {
    /// Operation (1 request, 2 reply).
    pub op: u16,
    /// Sender MAC.
    pub sha: Mac,
    /// Sender IPv4 address.
    pub spa: Ipv4Addr,
    /// Target MAC.
    pub tha: Mac,
    /// Target IPv4 address.
    pub tpa: Ipv4Addr,
}

/// Fragmentation state of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FragInfo {
    /// Part of a fragmented datagram (IPv4 MF or offset ≠ 0; IPv6: a fragment header is present).
    pub is_fragment: bool,
    /// Offset 0: the fragment that carries the L4 header (also true when not fragmented).
    pub is_first: bool,
    /// More fragments follow.
    pub more: bool,
    /// Fragment offset in 8-byte units.
    pub offset: u16,
}

/// IPv4 or IPv6 fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers); see the module docs for when it is `None`.
    pub proto: Option<u8>,
    /// DSCP.
    pub dscp: u8,
    /// ECN.
    pub ecn: u8,
    /// TTL / hop limit.
    pub ttl: u8,
    /// Fragmentation.
    pub frag: FragInfo,
    /// Offset of the L4 header from the start of the frame.
    pub l4_offset: Option<u16>,
}

/// Transport header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L4Info {
    /// TCP.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Nine flag bits ([`super::l4::tcp_flags`]).
        flags: u16,
    },
    /// UDP.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// ICMP.
    Icmp {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
    /// ICMPv6.
    Icmpv6 {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
}

impl L4Info {
    /// (source, destination) ports for TCP and UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match *self {
            L4Info::Tcp {
                src_port, dst_port, ..
            }
            | L4Info::Udp { src_port, dst_port } => Some((src_port, dst_port)),
            _ => None,
        }
    }
}

/// Summary of one frame, made by [`parse_frame`]. See the module docs for
/// exactly which fields are present when the frame is cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameInfo {
    /// Destination MAC.
    pub dst: Mac,
    /// Source MAC.
    pub src: Mac,
    /// VLAN tags, outermost first; only `tags[..n_tags]` are meaningful.
    pub tags: [VlanTag; MAX_TAGS],
    /// Number of VLAN tags read (0..=2).
    pub n_tags: u8,
    /// A third TPID followed the two tags (not parsed; it is `ethertype`).
    pub extra_tags: bool,
    /// Innermost ethertype.
    pub ethertype: u16,
    /// Offset of the L3 header: 14 + 4 × `n_tags`.
    pub l3_offset: u16,
    /// What `ethertype` says L3 is.
    pub l3: L3Kind,
    /// ARP fields.
    pub arp: Option<ArpInfo>,
    /// IP fields.
    pub ip: Option<IpInfo>,
    /// Transport fields.
    pub l4: Option<L4Info>,
    /// A header the frame announces is cut short or malformed (see the module docs).
    pub incomplete: bool,
}

impl FrameInfo {
    /// The VLAN tags found, outermost first.
    pub fn vlan_tags(&self) -> &[VlanTag] {
        &self.tags[..usize::from(self.n_tags).min(MAX_TAGS)]
    }
    /// The outermost tag, if any.
    pub fn outer_tag(&self) -> Option<VlanTag> {
        self.vlan_tags().first().copied()
    }
    /// IP protocol, if known.
    pub fn ip_proto(&self) -> Option<u8> {
        self.ip.and_then(|i| i.proto)
    }
    /// TCP/UDP ports, if parsed.
    pub fn ports(&self) -> Option<(u16, u16)> {
        self.l4.and_then(|l| l.ports())
    }
}

/// Parse a whole frame in one pass. Fails only on a runt (< 14 bytes) or a
/// VLAN tag cut short; everything else is recorded as present or absent
/// (see the module docs). Never panics.
pub fn parse_frame(b: &[u8]) -> Result<FrameInfo, Error> {
    if b.len() < ETH_LEN {
        return Err(Error::Runt);
    }
    let mut fi = FrameInfo {
        dst: Mac::from_slice(&b[0..6]),
        src: Mac::from_slice(&b[6..12]),
        tags: [VlanTag::default(); MAX_TAGS],
        n_tags: 0,
        extra_tags: false,
        ethertype: be16(b, 12),
        l3_offset: ETH_LEN as u16,
        l3: L3Kind::Other,
        arp: None,
        ip: None,
        l4: None,
        incomplete: false,
    };
    let mut off = ETH_LEN;
    while is_tpid(fi.ethertype) {
        if usize::from(fi.n_tags) == MAX_TAGS {
            fi.extra_tags = true;
            break;
        }
        if b.len() < off + 4 {
            return Err(Error::TruncatedVlan);
        }
        fi.tags[usize::from(fi.n_tags)] = VlanTag {
            tpid: fi.ethertype,
            tci: Tci(be16(b, off)),
        };
        fi.n_tags += 1;
        fi.ethertype = be16(b, off + 2);
        off += 4;
    }
    fi.l3_offset = off as u16;
    let l3 = &b[off..];
    if fi.extra_tags {
        return Ok(fi);
    }
    match fi.ethertype {
        ethertype::ARP => {
            fi.l3 = L3Kind::Arp;
            match Arp::parse(l3) {
                Ok(a) => {
                    if let (Some(sha), Some(spa), Some(tha), Some(tpa)) =
                        (a.sender_mac(), a.sender_ip(), a.target_mac(), a.target_ip())
                    {
                        fi.arp = Some(ArpInfo {
                            op: a.oper(),
                            sha,
                            spa,
                            tha,
                            tpa,
                        });
                    }
                }
                Err(_) => fi.incomplete = true,
            }
        }
        ethertype::IPV4 => {
            fi.l3 = L3Kind::Ipv4;
            match Ipv4::parse(l3) {
                Ok(p) => ipv4(&mut fi, off, &p),
                Err(_) => fi.incomplete = true,
            }
        }
        ethertype::IPV6 => {
            fi.l3 = L3Kind::Ipv6;
            match Ipv6::parse(l3) {
                Ok(p) => ipv6(&mut fi, off, &p),
                Err(_) => fi.incomplete = true,
            }
        }
        lldp::ETHERTYPE => {
            fi.l3 = L3Kind::Lldp;
            fi.incomplete = lldp::Lldp::parse(l3).is_err();
        }
        ecp::ETHERTYPE => {
            fi.l3 = L3Kind::Ecp;
            fi.incomplete = ecp::Ecp::parse(l3).is_err();
        }
        _ => {}
    }
    Ok(fi)
}

fn ipv4(fi: &mut FrameInfo, off: usize, p: &Ipv4<&[u8]>) {
    let frag = FragInfo {
        is_fragment: p.is_fragment(),
        is_first: p.frag_offset() == 0,
        more: p.more_frags(),
        offset: p.frag_offset(),
    };
    let proto = p.protocol();
    let mut ip = IpInfo {
        src: p.src().into(),
        dst: p.dst().into(),
        proto: Some(proto),
        dscp: p.dscp(),
        ecn: p.ecn(),
        ttl: p.ttl(),
        frag,
        l4_offset: None,
    };
    if frag.is_first {
        ip.l4_offset = Some((off + p.header_len()) as u16);
        l4(fi, proto, p.payload());
    }
    fi.ip = Some(ip);
}

fn ipv6(fi: &mut FrameInfo, off: usize, p: &Ipv6<&[u8]>) {
    let c = p.ext_chain();
    let frag = match c.frag {
        Some(f) => FragInfo {
            is_fragment: true,
            is_first: f.offset == 0,
            more: f.more,
            offset: f.offset,
        },
        None => FragInfo {
            is_fragment: false,
            is_first: true,
            more: false,
            offset: 0,
        },
    };
    let mut ip = IpInfo {
        src: p.src().into(),
        dst: p.dst().into(),
        proto: None,
        dscp: p.dscp(),
        ecn: p.ecn(),
        ttl: p.hop_limit(),
        frag,
        l4_offset: None,
    };
    if c.end == ChainEnd::Done {
        ip.proto = Some(c.proto);
        if frag.is_first {
            ip.l4_offset = Some((off + c.offset) as u16);
            // c.offset <= p.end() by construction of the walk.
            let s = p.payload();
            l4(
                fi,
                c.proto,
                s.get(c.offset - super::ipv6::HDR_LEN..).unwrap_or(&[]),
            );
        }
    } else {
        fi.incomplete = true;
    }
    fi.ip = Some(ip);
}

fn l4(fi: &mut FrameInfo, proto: u8, s: &[u8]) {
    let r = match proto {
        ip_proto::TCP => Tcp::parse(s).map(|t| L4Info::Tcp {
            src_port: t.src_port(),
            dst_port: t.dst_port(),
            flags: t.flags(),
        }),
        ip_proto::UDP => Udp::parse(s).map(|u| L4Info::Udp {
            src_port: u.src_port(),
            dst_port: u.dst_port(),
        }),
        ip_proto::ICMP => Icmp::parse(s).map(|i| L4Info::Icmp {
            ty: i.msg_type(),
            code: i.code(),
        }),
        ip_proto::ICMPV6 => Icmpv6::parse(s).map(|i| L4Info::Icmpv6 {
            ty: i.msg_type(),
            code: i.code(),
        }),
        _ => return,
    };
    match r {
        Ok(l) => fi.l4 = Some(l),
        Err(_) => fi.incomplete = true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::l4::tcp_flags;

    // S-tag 100 + C-tag 10, IPv4 (checksum not checked), TCP 1234 -> 80 SYN,
    // then 4 bytes of Ethernet padding.
    static QINQ_TCP: [u8; 66] = [
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, //
        0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x20, 0x0a, 0x08, 0x00, //
        0x45, 0x28, 0x00, 0x28, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, //
        0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, //
        0xee, 0xee, 0xee, 0xee,
    ];

    #[test]
    fn qinq_tcp() {
        let f = parse_frame(&QINQ_TCP).unwrap();
        assert_eq!(f.dst, Mac([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.src, Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            f.vlan_tags(),
            &[
                VlanTag {
                    tpid: 0x88a8,
                    tci: Tci::new(0, false, 100)
                },
                VlanTag {
                    tpid: 0x8100,
                    tci: Tci::new(1, false, 10)
                },
            ]
        );
        assert_eq!((f.ethertype, f.l3_offset, f.l3), (0x0800, 22, L3Kind::Ipv4));
        let ip = f.ip.unwrap();
        assert_eq!(ip.src, IpAddr::from([10, 0, 0, 1]));
        assert_eq!(
            (ip.proto, ip.dscp, ip.ttl, ip.l4_offset),
            (Some(6), 10, 64, Some(42))
        );
        assert!(!ip.frag.is_fragment && ip.frag.is_first);
        assert_eq!(
            f.l4,
            Some(L4Info::Tcp {
                src_port: 1234,
                dst_port: 80,
                flags: tcp_flags::SYN
            })
        );
        assert_eq!(f.ports(), Some((1234, 80)));
        assert!(!f.incomplete && !f.extra_tags);
    }

    #[test]
    fn runt_and_cut_tag() {
        assert_eq!(parse_frame(&QINQ_TCP[..13]), Err(Error::Runt));
        assert_eq!(parse_frame(&QINQ_TCP[..17]), Err(Error::TruncatedVlan));
        assert_eq!(parse_frame(&QINQ_TCP[..21]), Err(Error::TruncatedVlan));
        // Both tags whole, no L3 byte at all: fine, L3 absent.
        let f = parse_frame(&QINQ_TCP[..22]).unwrap();
        assert_eq!(
            (f.n_tags, f.l3, f.ip, f.incomplete),
            (2, L3Kind::Ipv4, None, true)
        );
    }

    #[test]
    fn truncated_l4_keeps_l3() {
        let f = parse_frame(&QINQ_TCP[..60]).unwrap();
        assert!(f.ip.is_some() && f.l4.is_none() && f.incomplete);
        assert_eq!(f.ip.unwrap().l4_offset, Some(42));
    }

    #[test]
    fn third_tag() {
        let mut b = [0u8; 30];
        b[12..14].copy_from_slice(&[0x81, 0x00]);
        b[16..18].copy_from_slice(&[0x81, 0x00]);
        b[20..22].copy_from_slice(&[0x88, 0xa8]);
        let f = parse_frame(&b).unwrap();
        assert!(f.extra_tags);
        assert_eq!(
            (f.n_tags, f.ethertype, f.l3, f.l3_offset),
            (2, 0x88a8, L3Kind::Other, 22)
        );
        // Third tag cut short is not an error (it is not read).
        assert!(parse_frame(&b[..22]).unwrap().extra_tags);
    }

    #[test]
    fn ipv4_non_first_fragment() {
        let mut b = QINQ_TCP;
        b[28] = 0x00;
        b[29] = 0x10; // offset 16
        let f = parse_frame(&b).unwrap();
        let ip = f.ip.unwrap();
        assert!(ip.frag.is_fragment && !ip.frag.is_first);
        assert_eq!(
            (ip.frag.offset, ip.proto, ip.l4_offset, f.l4),
            (16, Some(6), None, None)
        );
        assert!(!f.incomplete);
    }

    #[test]
    fn ipv4_padding_not_read_as_l4() {
        // Total length says 20 (no payload), frame carries padding.
        let mut b = QINQ_TCP;
        b[25] = 20;
        let f = parse_frame(&b).unwrap();
        assert!(f.ip.is_some() && f.l4.is_none() && f.incomplete);
    }

    #[test]
    fn malformed_ipv4() {
        let mut b = QINQ_TCP;
        b[22] = 0x44;
        let f = parse_frame(&b).unwrap();
        assert!(f.ip.is_none() && f.incomplete);
    }

    #[test]
    fn other_ethertype_and_small_bodies() {
        let mut b = [0u8; 60];
        b[12..14].copy_from_slice(&[0x88, 0xb5]);
        let f = parse_frame(&b).unwrap();
        assert_eq!((f.l3, f.incomplete), (L3Kind::Other, false));
        b[12..14].copy_from_slice(&[0x89, 0x40]);
        assert_eq!(parse_frame(&b).unwrap().l3, L3Kind::Ecp);
        assert!(parse_frame(&b[..17]).unwrap().incomplete);
        b[12..14].copy_from_slice(&[0x88, 0xcc]);
        assert_eq!(parse_frame(&b).unwrap().l3, L3Kind::Lldp);
        assert!(parse_frame(&b[..15]).unwrap().incomplete);
        b[12..14].copy_from_slice(&[0x08, 0x06]);
        let f = parse_frame(&b).unwrap(); // htype 0: ARP but not Ethernet/IPv4
        assert_eq!((f.l3, f.arp, f.incomplete), (L3Kind::Arp, None, false));
        assert!(parse_frame(&b[..20]).unwrap().incomplete);
    }
}

#[cfg(test)]
mod size {
    #[test]
    fn frame_info_is_small() {
        let n = std::mem::size_of::<super::FrameInfo>();
        assert!(n <= 128, "FrameInfo grew to {n} bytes");
    }
}
