//! Frame builder for tests, the traffic generator and fuzz seeds.
//!
//! Allocates a `Vec<u8>` per frame: not for the fast path. Lengths and
//! checksums (IPv4 header, TCP, UDP, ICMP, ICMPv6) are filled in; frames are
//! zero-padded to 60 bytes (no FCS) unless [`FrameBuilder::no_pad`] is used.
//!
//! ```
//! use hairpin::types::Mac;
//! use hairpin::wire::{parse_frame, FrameBuilder};
//! let f = FrameBuilder::new()
//!     .src(Mac([2, 0, 0, 0, 0, 1]))
//!     .vlan(10)
//!     .udp4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 1000, 53);
//! let info = parse_frame(&f).unwrap();
//! assert_eq!(info.ports(), Some((1000, 53)));
//! ```

use super::arp;
use super::ecp::{self, Op, Subtype};
use super::eth::{ethertype, MIN_FRAME};
use super::ipv6::ext;
use super::l4::{icmp_type, ip_proto};
use super::lldp::{self, tlv_header, tlv_type};
use super::vlan::Tci;
use super::{checksum, frame::VlanTag};
use crate::types::Mac;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Default source MAC of built frames.
pub const DEFAULT_SRC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
/// Default destination MAC of built unicast frames.
pub const DEFAULT_DST: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);

/// Builds Ethernet frames with chained setters, then one of the constructors
/// (`raw`, `arp_request`, `udp4`, `tcp6`, `lldp`, `ecp`, ...) emits the bytes.
/// Constructors take `&self`, so one builder can emit many frames.
#[derive(Clone, Debug)]
pub struct FrameBuilder {
    dst: Option<Mac>,
    src: Mac,
    tags: Vec<VlanTag>,
    ethertype: u16,
    payload: Vec<u8>,
    frame_size: Option<usize>,
    min_size: usize,
    ttl: u8,
    dscp: u8,
    ecn: u8,
    ident: u16,
    dont_frag: bool,
    frag: Option<(u16, bool)>,
    ipv4_options: Vec<u8>,
    ipv6_ext: Vec<u8>,
    tcp_seq: u32,
    tcp_ack: u32,
}

impl Default for FrameBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBuilder {
    /// Defaults: src [`DEFAULT_SRC`], dst per constructor ([`DEFAULT_DST`],
    /// broadcast for ARP requests, the group address for LLDP/ECP), no tags,
    /// empty payload, TTL 64, DSCP 0, padded to 60 bytes.
    pub fn new() -> Self {
        FrameBuilder {
            dst: None,
            src: DEFAULT_SRC,
            tags: Vec::new(),
            ethertype: 0x88b5, // local experimental
            payload: Vec::new(),
            frame_size: None,
            min_size: MIN_FRAME,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: false,
            frag: None,
            ipv4_options: Vec::new(),
            ipv6_ext: Vec::new(),
            tcp_seq: 1,
            tcp_ack: 0,
        }
    }
    /// Destination MAC.
    pub fn dst(mut self, m: Mac) -> Self {
        self.dst = Some(m);
        self
    }
    /// Source MAC.
    pub fn src(mut self, m: Mac) -> Self {
        self.src = m;
        self
    }
    /// Push an 802.1Q (0x8100) tag with this VID, PCP 0 (tags go outermost first).
    pub fn vlan(self, vid: u16) -> Self {
        self.tag(ethertype::VLAN, Tci::new(0, false, vid))
    }
    /// Push a tag with any TPID and TCI (e.g. 0x88a8 for a QinQ S-tag).
    pub fn tag(mut self, tpid: u16, tci: Tci) -> Self {
        self.tags.push(VlanTag { tpid, tci });
        self
    }
    /// Ethertype used by [`FrameBuilder::raw`].
    pub fn ethertype(mut self, t: u16) -> Self {
        self.ethertype = t;
        self
    }
    /// Payload bytes (L4 payload for IP constructors, ULPDU for ECP, extra
    /// TLVs for LLDP, L3 bytes for `raw`; ignored by ARP).
    pub fn payload(mut self, p: &[u8]) -> Self {
        self.payload = p.to_vec();
        self
    }
    /// A payload of `n` bytes counting up from 0 (wrapping).
    pub fn payload_len(mut self, n: usize) -> Self {
        self.payload = (0..n).map(|i| i as u8).collect();
        self
    }
    /// Grow the payload so the whole frame is `n` bytes (no FCS). Frames whose
    /// headers already exceed `n` are not shrunk. For ARP it pads instead.
    pub fn frame_size(mut self, n: usize) -> Self {
        self.frame_size = Some(n);
        self
    }
    /// Zero-pad frames to at least `n` bytes (default 60).
    pub fn min_size(mut self, n: usize) -> Self {
        self.min_size = n;
        self
    }
    /// Do not pad short frames.
    pub fn no_pad(self) -> Self {
        self.min_size(0)
    }
    /// IPv4 TTL / IPv6 hop limit.
    pub fn ttl(mut self, t: u8) -> Self {
        self.ttl = t;
        self
    }
    /// DSCP (6 bits).
    pub fn dscp(mut self, d: u8) -> Self {
        self.dscp = d & 0x3f;
        self
    }
    /// ECN (2 bits).
    pub fn ecn(mut self, e: u8) -> Self {
        self.ecn = e & 3;
        self
    }
    /// IPv4 identification / IPv6 fragment identification.
    pub fn ip_ident(mut self, id: u16) -> Self {
        self.ident = id;
        self
    }
    /// IPv4 don't-fragment flag.
    pub fn dont_frag(mut self, df: bool) -> Self {
        self.dont_frag = df;
        self
    }
    /// Mark the packet as a fragment: offset in 8-byte units and the
    /// more-fragments flag. IPv6 gets a fragment header after any other
    /// extension headers. The L4 header is still written (it is just bytes in
    /// a non-first fragment).
    pub fn fragment(mut self, offset: u16, more: bool) -> Self {
        self.frag = Some((offset & 0x1fff, more));
        self
    }
    /// IPv4 option bytes (zero-padded to a multiple of 4, at most 40 bytes).
    pub fn ipv4_options(mut self, o: &[u8]) -> Self {
        let mut v = o[..o.len().min(40)].to_vec();
        v.resize(v.len().div_ceil(4) * 4, 0);
        self.ipv4_options = v;
        self
    }
    /// Add an empty 8-byte IPv6 extension header: [`ext::HOP_BY_HOP`],
    /// [`ext::ROUTING`], [`ext::DEST_OPTS`] or [`ext::AH`] (12 bytes). Use
    /// [`FrameBuilder::fragment`] for a fragment header.
    pub fn ipv6_ext(mut self, nh: u8) -> Self {
        self.ipv6_ext.push(nh);
        self
    }
    /// TCP sequence and acknowledgement numbers (default 1, 0).
    pub fn tcp_seq_ack(mut self, seq: u32, ack: u32) -> Self {
        self.tcp_seq = seq;
        self.tcp_ack = ack;
        self
    }

    // ---- constructors ----

    /// Ethernet header, tags, the [`FrameBuilder::ethertype`] and the payload.
    pub fn raw(&self) -> Vec<u8> {
        self.finish(DEFAULT_DST, self.ethertype, |p| p.to_vec())
    }
    /// ARP request (Ethernet/IPv4) from the source MAC: who has `tpa`? Tell `spa`.
    /// Broadcast unless a destination was set.
    pub fn arp_request(&self, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
        let a = self.arp(arp::OP_REQUEST, spa, Mac::ZERO, tpa);
        self.finish_fixed(Mac::BROADCAST, ethertype::ARP, a)
    }
    /// ARP reply from the source MAC: `spa` is at src, to `tha`/`tpa`.
    /// Sent to `tha` unless a destination was set.
    pub fn arp_reply(&self, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
        let a = self.arp(arp::OP_REPLY, spa, tha, tpa);
        self.finish_fixed(tha, ethertype::ARP, a)
    }
    /// IPv4 packet with any protocol; the payload is the IP payload.
    pub fn ipv4(&self, src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Vec<u8> {
        self.finish(DEFAULT_DST, ethertype::IPV4, |p| {
            self.ip4(src, dst, proto, p.to_vec())
        })
    }
    /// IPv4/UDP.
    pub fn udp4(&self, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
        self.finish(DEFAULT_DST, ethertype::IPV4, |p| {
            let mut u = udp(sport, dport, p);
            let len = u.len() as u16;
            fill_l4_csum(
                &mut u,
                6,
                checksum::pseudo_v4(src, dst, ip_proto::UDP, len),
                true,
            );
            self.ip4(src, dst, ip_proto::UDP, u)
        })
    }
    /// IPv4/TCP with these flags ([`super::l4::tcp_flags`]).
    pub fn tcp4(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sport: u16,
        dport: u16,
        flags: u16,
    ) -> Vec<u8> {
        self.finish(DEFAULT_DST, ethertype::IPV4, |p| {
            let mut t = self.tcp(sport, dport, flags, p);
            let len = t.len() as u16;
            fill_l4_csum(
                &mut t,
                16,
                checksum::pseudo_v4(src, dst, ip_proto::TCP, len),
                false,
            );
            self.ip4(src, dst, ip_proto::TCP, t)
        })
    }
    /// IPv4/ICMP echo request (or reply) with this identifier and sequence.
    pub fn icmp4_echo(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        reply: bool,
        ident: u16,
        seq: u16,
    ) -> Vec<u8> {
        let ty = if reply {
            icmp_type::ECHO_REPLY
        } else {
            icmp_type::ECHO_REQUEST
        };
        self.icmp4(src, dst, ty, 0, (u32::from(ident) << 16) | u32::from(seq))
    }
    /// IPv4/ICMP with any type, code and rest-of-header word.
    pub fn icmp4(&self, src: Ipv4Addr, dst: Ipv4Addr, ty: u8, code: u8, rest: u32) -> Vec<u8> {
        self.finish(DEFAULT_DST, ethertype::IPV4, |p| {
            let mut i = icmp(ty, code, rest, p);
            fill_l4_csum(&mut i, 2, 0, false);
            self.ip4(src, dst, ip_proto::ICMP, i)
        })
    }
    /// IPv6 packet with any upper-layer protocol; the payload is the upper-layer bytes.
    pub fn ipv6(&self, src: Ipv6Addr, dst: Ipv6Addr, proto: u8) -> Vec<u8> {
        self.finish(DEFAULT_DST, ethertype::IPV6, |p| {
            self.ip6(src, dst, proto, p.to_vec())
        })
    }
    /// IPv6/UDP.
    pub fn udp6(&self, src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
        self.finish(DEFAULT_DST, ethertype::IPV6, |p| {
            let mut u = udp(sport, dport, p);
            let len = u.len() as u32;
            fill_l4_csum(
                &mut u,
                6,
                checksum::pseudo_v6(src, dst, ip_proto::UDP, len),
                true,
            );
            self.ip6(src, dst, ip_proto::UDP, u)
        })
    }
    /// IPv6/TCP with these flags.
    pub fn tcp6(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        sport: u16,
        dport: u16,
        flags: u16,
    ) -> Vec<u8> {
        self.finish(DEFAULT_DST, ethertype::IPV6, |p| {
            let mut t = self.tcp(sport, dport, flags, p);
            let len = t.len() as u32;
            fill_l4_csum(
                &mut t,
                16,
                checksum::pseudo_v6(src, dst, ip_proto::TCP, len),
                false,
            );
            self.ip6(src, dst, ip_proto::TCP, t)
        })
    }
    /// IPv6/ICMPv6 with any type, code and rest-of-header word.
    pub fn icmp6(&self, src: Ipv6Addr, dst: Ipv6Addr, ty: u8, code: u8, rest: u32) -> Vec<u8> {
        self.finish(DEFAULT_DST, ethertype::IPV6, |p| {
            let mut i = icmp(ty, code, rest, p);
            let len = i.len() as u32;
            fill_l4_csum(
                &mut i,
                2,
                checksum::pseudo_v6(src, dst, ip_proto::ICMPV6, len),
                false,
            );
            self.ip6(src, dst, ip_proto::ICMPV6, i)
        })
    }
    /// IPv6/ICMPv6 echo request (or reply).
    pub fn icmp6_echo(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        reply: bool,
        ident: u16,
        seq: u16,
    ) -> Vec<u8> {
        let ty = if reply {
            icmp_type::V6_ECHO_REPLY
        } else {
            icmp_type::V6_ECHO_REQUEST
        };
        self.icmp6(src, dst, ty, 0, (u32::from(ident) << 16) | u32::from(seq))
    }
    /// Minimal LLDPDU to the nearest-bridge address (unless a destination was
    /// set): Chassis ID (MAC subtype, the source MAC), Port ID (locally
    /// assigned subtype, `port_id`), TTL, the payload as extra TLVs, End.
    pub fn lldp(&self, port_id: &[u8], ttl: u16) -> Vec<u8> {
        self.finish(lldp::NEAREST_BRIDGE, ethertype::LLDP, |p| {
            let port_id = &port_id[..port_id.len().min(255)];
            let mut v = Vec::new();
            v.extend_from_slice(&tlv_header(tlv_type::CHASSIS_ID, 7));
            v.push(4);
            v.extend_from_slice(&self.src.0);
            v.extend_from_slice(&tlv_header(tlv_type::PORT_ID, 1 + port_id.len() as u16));
            v.push(7);
            v.extend_from_slice(port_id);
            v.extend_from_slice(&tlv_header(tlv_type::TTL, 2));
            v.extend_from_slice(&ttl.to_be_bytes());
            v.extend_from_slice(p);
            v.extend_from_slice(&tlv_header(tlv_type::END, 0));
            v
        })
    }
    /// ECP PDU (version 1) to 01-80-C2-00-00-00 (unless a destination was
    /// set); the payload is the ULPDU.
    pub fn ecp(&self, op: Op, subtype: Subtype, seq: u16) -> Vec<u8> {
        self.finish(ecp::DST, ethertype::ECP, |p| {
            let mut v = vec![0u8; ecp::HDR_LEN];
            let mut e = ecp::Ecp::parse(&mut v[..]).expect("4 bytes");
            e.set_header(ecp::VERSION, op, subtype);
            e.set_sequence(seq);
            v.extend_from_slice(p);
            v
        })
    }

    // ---- helpers ----

    fn arp(&self, op: u16, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
        let mut a = Vec::with_capacity(arp::ETH_IPV4_LEN);
        a.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        a.extend_from_slice(&op.to_be_bytes());
        a.extend_from_slice(&self.src.0);
        a.extend_from_slice(&spa.octets());
        a.extend_from_slice(&tha.0);
        a.extend_from_slice(&tpa.octets());
        a
    }

    fn l2(&self, default_dst: Mac, et: u16) -> Vec<u8> {
        let mut f = Vec::with_capacity(128);
        f.extend_from_slice(&self.dst.unwrap_or(default_dst).0);
        f.extend_from_slice(&self.src.0);
        for t in &self.tags {
            f.extend_from_slice(&t.tpid.to_be_bytes());
            f.extend_from_slice(&t.tci.0.to_be_bytes());
        }
        f.extend_from_slice(&et.to_be_bytes());
        f
    }

    fn pad(&self, mut f: Vec<u8>) -> Vec<u8> {
        let n = self.min_size.max(self.frame_size.unwrap_or(0));
        if f.len() < n {
            f.resize(n, 0);
        }
        f
    }

    /// L2 header + a body that does not carry the payload; `frame_size` pads.
    fn finish_fixed(&self, default_dst: Mac, et: u16, body: Vec<u8>) -> Vec<u8> {
        let mut f = self.l2(default_dst, et);
        f.extend_from_slice(&body);
        self.pad(f)
    }

    /// L2 header + `body(payload)`; with `frame_size`, the payload is grown
    /// (counting bytes) so the frame reaches it.
    fn finish(&self, default_dst: Mac, et: u16, body: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let mut f = self.l2(default_dst, et);
        let mut b = body(&self.payload);
        if let Some(n) = self.frame_size {
            let have = f.len() + b.len();
            if have < n {
                let mut p = self.payload.clone();
                let start = p.len();
                p.extend((start..start + (n - have)).map(|i| i as u8));
                b = body(&p);
            }
        }
        f.extend_from_slice(&b);
        self.pad(f)
    }

    fn ip4(&self, src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: Vec<u8>) -> Vec<u8> {
        let hl = 20 + self.ipv4_options.len();
        let total = (hl + l4.len()).min(usize::from(u16::MAX)) as u16;
        let mut h = vec![0u8; hl];
        h[0] = 0x40 | (hl / 4) as u8;
        h[1] = (self.dscp << 2) | self.ecn;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&self.ident.to_be_bytes());
        let (off, mf) = self.frag.unwrap_or((0, false));
        let w = (if self.dont_frag { 0x4000 } else { 0 }) | (if mf { 0x2000 } else { 0 }) | off;
        h[6..8].copy_from_slice(&w.to_be_bytes());
        h[8] = self.ttl;
        h[9] = proto;
        h[12..16].copy_from_slice(&src.octets());
        h[16..20].copy_from_slice(&dst.octets());
        h[20..].copy_from_slice(&self.ipv4_options);
        let c = checksum::internet(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(&l4);
        h
    }

    fn ip6(&self, src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4: Vec<u8>) -> Vec<u8> {
        // Extension headers, each naming the next.
        let mut kinds: Vec<u8> = self.ipv6_ext.clone();
        if self.frag.is_some() {
            kinds.push(ext::FRAGMENT);
        }
        let mut exts = Vec::new();
        for (i, &k) in kinds.iter().enumerate() {
            let next = kinds.get(i + 1).copied().unwrap_or(proto);
            match k {
                ext::FRAGMENT => {
                    let (off, m) = self.frag.unwrap_or((0, false));
                    exts.extend_from_slice(&[next, 0]);
                    exts.extend_from_slice(&((off << 3) | u16::from(m)).to_be_bytes());
                    exts.extend_from_slice(&u32::from(self.ident).to_be_bytes());
                }
                ext::AH => exts.extend_from_slice(&[next, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                // Hop-by-hop / dest opts: PadN with 4 zero bytes; routing: type 0, segments left 0.
                _ => exts.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]),
            }
        }
        let first = kinds.first().copied().unwrap_or(proto);
        let plen = (exts.len() + l4.len()).min(usize::from(u16::MAX)) as u16;
        let mut h = Vec::with_capacity(40 + usize::from(plen));
        let tc = (self.dscp << 2) | self.ecn;
        h.extend_from_slice(&(0x6000_0000u32 | (u32::from(tc) << 20)).to_be_bytes());
        h.extend_from_slice(&plen.to_be_bytes());
        h.push(first);
        h.push(self.ttl);
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        h.extend_from_slice(&exts);
        h.extend_from_slice(&l4);
        h
    }

    fn tcp(&self, sport: u16, dport: u16, flags: u16, p: &[u8]) -> Vec<u8> {
        let mut t = Vec::with_capacity(20 + p.len());
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&self.tcp_seq.to_be_bytes());
        t.extend_from_slice(&self.tcp_ack.to_be_bytes());
        t.extend_from_slice(&(0x5000 | (flags & 0x1ff)).to_be_bytes());
        t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(p);
        t
    }
}

fn udp(sport: u16, dport: u16, p: &[u8]) -> Vec<u8> {
    let len = (8 + p.len()).min(usize::from(u16::MAX)) as u16;
    let mut u = Vec::with_capacity(8 + p.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(p);
    u
}

fn icmp(ty: u8, code: u8, rest: u32, p: &[u8]) -> Vec<u8> {
    let mut i = vec![ty, code, 0, 0];
    i.extend_from_slice(&rest.to_be_bytes());
    i.extend_from_slice(p);
    i
}

/// Store the checksum of `seg` (plus the pseudo-header sum) at `at`. UDP
/// sends a computed 0 as 0xffff.
fn fill_l4_csum(seg: &mut [u8], at: usize, pseudo: u32, is_udp: bool) {
    let mut c = !checksum::fold(checksum::combine(pseudo, checksum::sum(seg)));
    if is_udp && c == 0 {
        c = 0xffff;
    }
    seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::{parse_frame, L3Kind, L4Info};
    use crate::wire::ipv4::Ipv4;
    use crate::wire::l4::tcp_flags;
    use crate::wire::lldp::Lldp;
    use std::net::IpAddr;

    const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn a6() -> Ipv6Addr {
        "2001:db8::1".parse().unwrap()
    }
    fn b6() -> Ipv6Addr {
        "2001:db8::2".parse().unwrap()
    }

    /// Verify an L4 checksum over the pseudo-header.
    fn l4_ok(pseudo: u32, seg: &[u8]) -> bool {
        checksum::fold(checksum::combine(pseudo, checksum::sum(seg))) == 0xffff
    }

    #[test]
    fn arp_request_and_reply() {
        let f = FrameBuilder::new().arp_request(A4, B4);
        assert_eq!(f.len(), 60);
        let i = parse_frame(&f).unwrap();
        assert!(i.dst.is_broadcast());
        let a = i.arp.unwrap();
        assert_eq!((a.op, a.sha, a.spa, a.tpa), (1, DEFAULT_SRC, A4, B4));
        let r = FrameBuilder::new()
            .src(DEFAULT_DST)
            .arp_reply(B4, DEFAULT_SRC, A4);
        let i = parse_frame(&r).unwrap();
        assert_eq!(i.dst, DEFAULT_SRC);
        assert_eq!(i.arp.unwrap().op, 2);
    }

    #[test]
    fn udp4_checksums_and_padding() {
        let f = FrameBuilder::new().payload(b"hi").udp4(A4, B4, 1, 2);
        assert_eq!(f.len(), 60);
        let ip = Ipv4::parse(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.total_len(), 20 + 8 + 2);
        assert!(l4_ok(checksum::pseudo_v4(A4, B4, 17, 10), ip.payload()));
        let f = FrameBuilder::new()
            .no_pad()
            .payload(b"hi")
            .udp4(A4, B4, 1, 2);
        assert_eq!(f.len(), 14 + 30);
    }

    #[test]
    fn frame_size_grows_payload() {
        let f = FrameBuilder::new()
            .vlan(5)
            .frame_size(1518)
            .tcp4(A4, B4, 1, 2, tcp_flags::ACK);
        assert_eq!(f.len(), 1518);
        let ip = Ipv4::parse(&f[18..]).unwrap();
        assert_eq!(usize::from(ip.total_len()), 1500);
        assert!(l4_ok(checksum::pseudo_v4(A4, B4, 6, 1480), ip.payload()));
        let f = FrameBuilder::new().frame_size(100).arp_request(A4, B4);
        assert_eq!(f.len(), 100);
    }

    #[test]
    fn ipv4_options_and_fragment() {
        let f = FrameBuilder::new()
            .ipv4_options(&[1, 1, 1])
            .fragment(0, true)
            .udp4(A4, B4, 7, 9);
        let i = parse_frame(&f).unwrap();
        let ip = i.ip.unwrap();
        assert_eq!(ip.l4_offset, Some(14 + 24));
        assert!(ip.frag.is_fragment && ip.frag.is_first && ip.frag.more);
        assert_eq!(i.ports(), Some((7, 9)));
        assert!(Ipv4::parse(&f[14..]).unwrap().verify_checksum());
        let f = FrameBuilder::new().fragment(3, false).udp4(A4, B4, 7, 9);
        let i = parse_frame(&f).unwrap();
        assert!(!i.ip.unwrap().frag.is_first && i.l4.is_none() && !i.incomplete);
    }

    #[test]
    fn icmp_both() {
        let f = FrameBuilder::new().icmp4_echo(A4, B4, false, 1, 2);
        let i = parse_frame(&f).unwrap();
        assert_eq!(i.l4, Some(L4Info::Icmp { ty: 8, code: 0 }));
        assert_eq!(checksum::fold(checksum::sum(&f[34..34 + 8])), 0xffff);
        let f = FrameBuilder::new().icmp6_echo(a6(), b6(), true, 1, 2);
        let i = parse_frame(&f).unwrap();
        assert_eq!(i.l4, Some(L4Info::Icmpv6 { ty: 129, code: 0 }));
        assert!(l4_ok(checksum::pseudo_v6(a6(), b6(), 58, 8), &f[54..62]));
    }

    #[test]
    fn ipv6_ext_chain_and_fragment() {
        let f = FrameBuilder::new()
            .ipv6_ext(ext::HOP_BY_HOP)
            .ipv6_ext(ext::ROUTING)
            .ipv6_ext(ext::AH)
            .ipv6_ext(ext::DEST_OPTS)
            .fragment(0, true)
            .dscp(46)
            .tcp6(a6(), b6(), 443, 5555, tcp_flags::FIN);
        let i = parse_frame(&f).unwrap();
        let ip = i.ip.unwrap();
        assert_eq!(ip.src, IpAddr::V6(a6()));
        assert_eq!(
            (ip.proto, ip.dscp, ip.l4_offset),
            (Some(6), 46, Some(14 + 40 + 8 + 8 + 12 + 8 + 8))
        );
        assert!(ip.frag.is_fragment && ip.frag.is_first);
        assert_eq!(
            i.l4,
            Some(L4Info::Tcp {
                src_port: 443,
                dst_port: 5555,
                flags: tcp_flags::FIN
            })
        );
        let plain = FrameBuilder::new().udp6(a6(), b6(), 1, 2);
        assert!(l4_ok(
            checksum::pseudo_v6(a6(), b6(), 17, 8),
            &plain[54..62]
        ));
    }

    #[test]
    fn lldp_and_ecp() {
        let f = FrameBuilder::new().lldp(b"eth0", 120);
        let i = parse_frame(&f).unwrap();
        assert_eq!((i.l3, i.dst), (L3Kind::Lldp, lldp::NEAREST_BRIDGE));
        let l = Lldp::parse(&f[14..]).unwrap();
        assert!(l.is_well_formed());
        assert_eq!(l.ttl(), Some(120));
        assert_eq!(l.port_id(), Some(&b"\x07eth0"[..]));
        let f = FrameBuilder::new()
            .payload(&[1, 2, 3])
            .ecp(Op::Request, Subtype::Vdp, 0x1224);
        let i = parse_frame(&f).unwrap();
        assert_eq!((i.l3, i.dst), (L3Kind::Ecp, ecp::DST));
        assert_eq!(&f[14..21], &[0x10, 0x01, 0x12, 0x24, 1, 2, 3]);
    }

    #[test]
    fn raw_and_qinq() {
        let f = FrameBuilder::new()
            .tag(ethertype::QINQ, Tci::new(3, true, 100))
            .vlan(10)
            .ethertype(0x1234)
            .payload(&[9; 4])
            .raw();
        let i = parse_frame(&f).unwrap();
        assert_eq!(i.n_tags, 2);
        assert_eq!(i.tags[0].tci, Tci::new(3, true, 100));
        assert_eq!((i.ethertype, i.l3_offset), (0x1234, 22));
        assert_eq!(&f[22..26], &[9; 4]);
    }
}
