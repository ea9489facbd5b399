//! Drive every view and [`parse_frame`] over arbitrary bytes, checking the
//! invariants [`FrameInfo`] promises. Shared by the fuzz target
//! (`fuzz/fuzz_targets/parse.rs`) and the property tests, so a view added
//! here is fuzzed everywhere. Panics only when an invariant is broken.

use super::frame::{parse_frame, FrameInfo, L3Kind, MAX_TAGS};
use super::{arp::Arp, ecp::Ecp, eth::Eth, ipv4::Ipv4, ipv6::Ipv6, lldp::Lldp, vlan::Vlan};
use super::{Icmp, Icmpv6, Tcp, Udp};

/// Run `parse_frame` and every view (at offset 0 and at the offsets the frame
/// summary found) over `b`; returns a value derived from what was read so the
/// work is not optimised away.
pub fn exercise(b: &[u8]) -> u64 {
    let mut acc = 0u64;
    if let Ok(f) = parse_frame(b) {
        check(&f, b);
        acc ^= u64::from(f.l3_offset);
        acc ^= views(&b[usize::from(f.l3_offset)..]);
        if let Some(o) = f.ip.and_then(|i| i.l4_offset) {
            acc ^= views(b.get(usize::from(o)..).unwrap_or(&[]));
        }
    }
    acc ^ views(b) ^ b.get(14..).map_or(0, views)
}

/// The invariants of a successful [`parse_frame`].
fn check(f: &FrameInfo, b: &[u8]) {
    assert!(b.len() >= 14);
    assert!(usize::from(f.n_tags) <= MAX_TAGS);
    assert_eq!(usize::from(f.l3_offset), 14 + 4 * usize::from(f.n_tags));
    assert!(usize::from(f.l3_offset) <= b.len());
    assert!(!f.extra_tags || f.n_tags as usize == MAX_TAGS);
    assert_eq!(f.vlan_tags().len(), usize::from(f.n_tags));
    if f.arp.is_some() {
        assert_eq!(f.l3, L3Kind::Arp);
    }
    if let Some(ip) = f.ip {
        assert!(matches!(f.l3, L3Kind::Ipv4 | L3Kind::Ipv6));
        if let Some(o) = ip.l4_offset {
            assert!(ip.proto.is_some());
            assert!(ip.frag.is_first);
            assert!(usize::from(o) <= b.len());
        }
        assert!(ip.frag.is_first || ip.frag.is_fragment);
    }
    if f.l4.is_some() {
        assert!(f.ip.and_then(|i| i.l4_offset).is_some());
    }
}

fn views(b: &[u8]) -> u64 {
    let mut acc = 0u64;
    if let Ok(e) = Eth::parse(b) {
        acc += e.dst().to_u64()
            ^ e.src().to_u64()
            ^ u64::from(e.ethertype())
            ^ e.payload().len() as u64;
    }
    if let Ok(v) = Vlan::parse(b) {
        acc +=
            u64::from(v.pcp()) + u64::from(v.dei()) + u64::from(v.vid()) + u64::from(v.ethertype());
        acc += v.payload().len() as u64;
    }
    if let Ok(a) = Arp::parse(b) {
        acc += u64::from(a.htype())
            + u64::from(a.ptype())
            + u64::from(a.oper())
            + a.header_len() as u64;
        acc += (a.sha().len() + a.spa().len() + a.tha().len() + a.tpa().len()) as u64;
        acc += a.sender_mac().map_or(0, |m| m.to_u64())
            + a.target_ip().map_or(0, |i| u64::from(u32::from(i)));
    }
    if let Ok(p) = Ipv4::parse(b) {
        acc += u64::from(p.compute_checksum())
            + u64::from(p.verify_checksum())
            + u64::from(p.frag_offset());
        acc += (p.options().len() + p.payload().len()) as u64
            + u64::from(u32::from(p.src()) ^ u32::from(p.dst()));
        acc +=
            u64::from(p.dscp()) + u64::from(p.ecn()) + u64::from(p.ttl()) + u64::from(p.protocol());
        acc += u64::from(p.is_fragment()) + u64::from(p.ident()) + u64::from(p.total_len());
    }
    if let Ok(p) = Ipv6::parse(b) {
        let c = p.ext_chain();
        assert!(c.offset <= p.end().max(super::ipv6::HDR_LEN));
        acc += u64::from(c.proto)
            + c.offset as u64
            + u64::from(c.count)
            + c.frag.map_or(0, |f| u64::from(f.offset));
        acc += u64::from(p.flow_label()) + u64::from(p.dscp()) + p.payload().len() as u64;
        acc += u64::from(p.src().octets()[15] ^ p.dst().octets()[0]) + u64::from(p.hop_limit());
    }
    if let Ok(t) = Tcp::parse(b) {
        acc += u64::from(t.src_port())
            + u64::from(t.dst_port())
            + u64::from(t.flags())
            + u64::from(t.seq());
        acc += (t.options().len() + t.payload().len()) as u64
            + u64::from(t.ack())
            + u64::from(t.window());
    }
    if let Ok(u) = Udp::parse(b) {
        acc += u64::from(u.src_port())
            + u64::from(u.dst_port())
            + u.payload().len() as u64
            + u64::from(u.checksum());
    }
    if let Ok(i) = Icmp::parse(b) {
        acc += u64::from(i.msg_type())
            + u64::from(i.code())
            + u64::from(i.rest())
            + i.payload().len() as u64;
    }
    if let Ok(i) = Icmpv6::parse(b) {
        acc += u64::from(i.echo_ident()) + u64::from(i.echo_seq()) + u64::from(i.checksum());
    }
    if let Ok(l) = Lldp::parse(b) {
        for t in l.tlvs() {
            match t {
                Ok(t) => {
                    acc += u64::from(t.ty)
                        + t.value.len() as u64
                        + t.org().map_or(0, |o| u64::from(o.1))
                }
                Err(_) => acc += 1,
            }
        }
        acc += l.ttl().map_or(0, u64::from) + l.chassis_id().map_or(0, |c| c.len() as u64);
        acc += u64::from(l.is_well_formed()) + l.port_id().map_or(0, |c| c.len() as u64);
    }
    if let Ok(e) = Ecp::parse(b) {
        acc += u64::from(e.version())
            + u64::from(u8::from(e.op()))
            + u64::from(u16::from(e.subtype()));
        acc += u64::from(e.sequence()) + e.payload().len() as u64;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FrameBuilder;

    #[test]
    fn exercise_built_frames_and_prefixes() {
        let b = FrameBuilder::new().vlan(3).payload_len(30);
        let frames = [
            b.udp4([1, 2, 3, 4].into(), [5, 6, 7, 8].into(), 1, 2),
            b.lldp(b"p", 1),
            b.ecp(crate::wire::ecp::Op::Ack, crate::wire::ecp::Subtype::Vdp, 1),
            b.clone().ipv6_ext(0).fragment(0, true).udp6(
                "::1".parse().unwrap(),
                "::2".parse().unwrap(),
                1,
                2,
            ),
        ];
        for f in &frames {
            for n in 0..=f.len() {
                exercise(&f[..n]);
            }
        }
    }
}
