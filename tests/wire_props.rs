//! Property tests for `hairpin::wire`: no panics on arbitrary bytes, and
//! FrameBuilder → parse_frame round trips.

use hairpin::types::Mac;
use hairpin::wire::l4::ip_proto;
use hairpin::wire::{fuzz, parse_frame, Error, FrameBuilder, L3Kind, L4Info, Tci};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn mac() -> impl Strategy<Value = Mac> {
    any::<[u8; 6]>().prop_map(Mac)
}

fn tags() -> impl Strategy<Value = Vec<(u16, u16)>> {
    prop::collection::vec(
        (prop_oneof![Just(0x8100u16), Just(0x88a8u16)], any::<u16>()),
        0..=2,
    )
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Udp,
    Tcp(u16),
    Icmp(u8, u8),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Udp),
        (0u16..0x200).prop_map(Kind::Tcp),
        (any::<u8>(), any::<u8>()).prop_map(|(t, c)| Kind::Icmp(t, c)),
    ]
}

/// IPv6 extension headers the builder can emit.
fn exts() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0u8), Just(43u8), Just(51u8), Just(60u8)],
        0..=3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..2000)) {
        fuzz::exercise(&b);
        match parse_frame(&b) {
            Err(Error::Runt) => prop_assert!(b.len() < 14),
            Err(Error::TruncatedVlan) => {}
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
            Ok(_) => {}
        }
    }

    /// Frames that look like real ones (a valid Ethernet/VLAN/IP prefix, then
    /// noise) reach the deeper parsers far more often than random bytes.
    #[test]
    fn mutated_frames_never_panic(
        v6 in any::<bool>(),
        k in kind(),
        ext in exts(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let b = FrameBuilder::new().vlan(7).payload_len(20);
        let b = ext.iter().fold(b, |b, &e| b.ipv6_ext(e));
        let mut f = build(&b, v6, k, [10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        for (i, x) in flips {
            let i = i.index(f.len());
            f[i] = x;
        }
        let n = cut.index(f.len() + 1);
        fuzz::exercise(&f[..n]);
    }

    #[test]
    fn build_parse_round_trip(
        dst in mac(), src in mac(), tags in tags(),
        v6 in any::<bool>(), k in kind(), ext in exts(),
        sip in any::<[u8; 16]>(), dip in any::<[u8; 16]>(),
        sport in any::<u16>(), dport in any::<u16>(),
        dscp in 0u8..64, ttl in any::<u8>(), plen in 0usize..300, pad in any::<bool>(),
    ) {
        let mut b = FrameBuilder::new().dst(dst).src(src).dscp(dscp).ttl(ttl).payload_len(plen);
        for &(tpid, tci) in &tags {
            b = b.tag(tpid, Tci(tci));
        }
        if !pad {
            b = b.no_pad();
        }
        if v6 {
            for &e in &ext {
                b = b.ipv6_ext(e);
            }
        }
        let f = build(&b, v6, k, sip, dip, sport, dport);
        let i = parse_frame(&f).unwrap();
        prop_assert_eq!(i.dst, dst);
        prop_assert_eq!(i.src, src);
        prop_assert_eq!(usize::from(i.n_tags), tags.len());
        for (t, &(tpid, tci)) in i.vlan_tags().iter().zip(&tags) {
            prop_assert_eq!((t.tpid, t.tci), (tpid, Tci(tci)));
        }
        prop_assert_eq!(usize::from(i.l3_offset), 14 + 4 * tags.len());
        prop_assert!(!i.incomplete);
        prop_assert_eq!(i.l3, if v6 { L3Kind::Ipv6 } else { L3Kind::Ipv4 });
        let ip = i.ip.unwrap();
        let (s, d) = addrs(v6, sip, dip);
        prop_assert_eq!((ip.src, ip.dst), (s, d));
        prop_assert_eq!((ip.dscp, ip.ttl), (dscp, ttl));
        prop_assert!(!ip.frag.is_fragment && ip.frag.is_first);
        let want = match k {
            Kind::Udp => (ip_proto::UDP, L4Info::Udp { src_port: sport, dst_port: dport }),
            Kind::Tcp(fl) => (ip_proto::TCP, L4Info::Tcp { src_port: sport, dst_port: dport, flags: fl }),
            Kind::Icmp(ty, code) if v6 => (ip_proto::ICMPV6, L4Info::Icmpv6 { ty, code }),
            Kind::Icmp(ty, code) => (ip_proto::ICMP, L4Info::Icmp { ty, code }),
        };
        prop_assert_eq!(ip.proto, Some(want.0));
        prop_assert_eq!(i.l4, Some(want.1));
        prop_assert!(usize::from(ip.l4_offset.unwrap()) < f.len());
        if pad {
            prop_assert!(f.len() >= 60);
        }
    }
}

fn addrs(v6: bool, s: [u8; 16], d: [u8; 16]) -> (IpAddr, IpAddr) {
    if v6 {
        (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into())
    } else {
        let f = |a: [u8; 16]| IpAddr::from(Ipv4Addr::new(a[0], a[1], a[2], a[3]));
        (f(s), f(d))
    }
}

fn build<const N: usize>(
    b: &FrameBuilder,
    v6: bool,
    k: Kind,
    s: [u8; N],
    d: [u8; N],
    sp: u16,
    dp: u16,
) -> Vec<u8> {
    let mut s16 = [0u8; 16];
    let mut d16 = [0u8; 16];
    s16[..N].copy_from_slice(&s);
    d16[..N].copy_from_slice(&d);
    let (s4, d4) = (
        Ipv4Addr::new(s16[0], s16[1], s16[2], s16[3]),
        Ipv4Addr::new(d16[0], d16[1], d16[2], d16[3]),
    );
    let (s6, d6) = (Ipv6Addr::from(s16), Ipv6Addr::from(d16));
    match (v6, k) {
        (false, Kind::Udp) => b.udp4(s4, d4, sp, dp),
        (false, Kind::Tcp(f)) => b.tcp4(s4, d4, sp, dp, f),
        (false, Kind::Icmp(t, c)) => b.icmp4(s4, d4, t, c, 0),
        (true, Kind::Udp) => b.udp6(s6, d6, sp, dp),
        (true, Kind::Tcp(f)) => b.tcp6(s6, d6, sp, dp, f),
        (true, Kind::Icmp(t, c)) => b.icmp6(s6, d6, t, c, 0),
    }
}
