//! Properties of the ACL classifier: `Classifier` agrees with `linear` on
//! random overlapping rule sets and on keys built to hit them, keys from
//! random frame bytes included; `AclKey::from_frame` never panics and agrees
//! with `parse_frame` + `AclKey::from_info`.
use hairpin::policy::acl::Rng;
use hairpin::policy::acl::*;
use hairpin::wire::parse_frame;
use proptest::prelude::*;

const MAC48: u64 = (1 << 48) - 1;

fn mac() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0x0200_0000_0001u64),
        Just(0x0200_0000_0002),
        Just(0x3333_0000_0001),
        any::<u64>().prop_map(|x| x & MAC48),
    ]
}

fn mac_mask() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(MAC48),
        Just(0u64),
        Just(0x0100_0000_0000),
        Just(0xffff_ff00_0000),
        Just(0xffff_ffff_fff0),
        any::<u64>(),
    ]
}

fn addr(v6: bool) -> BoxedStrategy<u128> {
    if v6 {
        prop_oneof![
            Just(0x2001_0db8_0000_0000_0000_0000_0000_0000u128),
            Just(0x2001_0db8_0001_0000_0000_0000_0000_0001),
            Just(0xfe80_0000_0000_0000_0000_0000_0000_0001),
            any::<u128>(),
        ]
        .boxed()
    } else {
        prop_oneof![
            Just(0x0a00_0000u128),
            Just(0x0a01_0000),
            Just(0x0a01_0203),
            Just(0xc0a8_0101),
            any::<u32>().prop_map(u128::from),
            // Garbage above bit 32 must be ignored for a V4 prefix.
            any::<u128>(),
        ]
        .boxed()
    }
}

fn prefix() -> impl Strategy<Value = Prefix> {
    any::<bool>().prop_flat_map(|v6| {
        let len = if v6 {
            prop_oneof![0u8..=8, 16u8..=64, 120u8..=130, any::<u8>()].boxed()
        } else {
            prop_oneof![0u8..=8, 8u8..=24, 24u8..=33, any::<u8>()].boxed()
        };
        (addr(v6), len).prop_map(move |(addr, len)| Prefix { v6, addr, len })
    })
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(0u16),
        Just(1),
        Just(80),
        Just(443),
        Just(1023),
        Just(1024),
        Just(65535),
        any::<u16>()
    ]
}

fn range() -> impl Strategy<Value = (u16, u16)> {
    prop_oneof![
        port().prop_map(|p| (p, p)),
        Just((0u16, 65535u16)),
        Just((1024u16, 65535u16)),
        (port(), port()).prop_map(|(a, b)| (a.min(b), a.max(b))),
        (port(), port()), // may be lo > hi: never matches
    ]
}

fn small<T: Clone + std::fmt::Debug + 'static>(v: &[T]) -> impl Strategy<Value = T> {
    prop::sample::select(v.to_vec())
}

fn opt<S: Strategy>(p: f64, s: S) -> impl Strategy<Value = Option<S::Value>> {
    prop::option::weighted(p, s)
}

prop_compose! {
    fn rule()(
        l2 in (opt(0.15, (mac(), mac_mask())), opt(0.15, (mac(), mac_mask())),
               opt(0.15, small(&[1u16, 10, 4094])), opt(0.1, 0u8..8),
               opt(0.15, small(&[0x0800u16, 0x86dd, 0x0806, 0x88b5]))),
        l3 in (opt(0.45, prefix()), opt(0.45, prefix()), opt(0.4, small(&[1u8, 6, 17, 58, 47])),
               opt(0.1, small(&[0u8, 10, 46]))),
        l4 in (opt(0.35, range()), opt(0.4, range()), opt(0.1, (any::<u8>(), small(&[0x02u8, 0x12, 0x3f, 0])))),
        ic in (opt(0.1, small(&[0u8, 3, 8, 128, 135])), opt(0.08, small(&[0u8, 1, 4])), opt(0.1, any::<bool>())),
    ) -> Rule {
        Rule {
            src_mac: l2.0, dst_mac: l2.1, vlan: l2.2, pcp: l2.3, ethertype: l2.4,
            src_ip: l3.0, dst_ip: l3.1, proto: l3.2, dscp: l3.3,
            src_port: l4.0, dst_port: l4.1, tcp_flags: l4.2,
            icmp_type: ic.0, icmp_code: ic.1, fragment: ic.2,
        }
    }
}

fn rules() -> impl Strategy<Value = Vec<Rule>> {
    prop_oneof![
        prop::collection::vec(rule(), 1..40),
        prop::collection::vec(rule(), 1..300),
    ]
}

/// A key that satisfies most fields of `r`; `seed` decides the rest (and
/// sometimes breaks one field, to land next to the rule).
fn key_for(r: &Rule, seed: u64) -> AclKey {
    let mut g = Rng(seed);
    let mut k = random_key(&mut g);
    let keep = |g: &mut Rng| g.below(16) != 0;
    if let Some((v, m)) = r.src_mac {
        if keep(&mut g) {
            k.src_mac = ((v & m) | (k.src_mac & !m)) & MAC48;
            k.has |= HAS_ETH;
        }
    }
    if let Some((v, m)) = r.dst_mac {
        if keep(&mut g) {
            k.dst_mac = ((v & m) | (k.dst_mac & !m)) & MAC48;
            k.has |= HAS_ETH;
        }
    }
    if let Some(v) = r.vlan {
        if keep(&mut g) {
            k.vlan = v;
        }
    }
    if let Some(v) = r.pcp {
        if keep(&mut g) {
            k.pcp = v;
        }
    }
    if let Some(v) = r.ethertype {
        if keep(&mut g) {
            k.ethertype = v;
            k.has |= HAS_ETH;
        }
    }
    for (p, dst) in [(r.src_ip, false), (r.dst_ip, true)] {
        if let Some(p) = p {
            if keep(&mut g) {
                k.ip = if p.v6 { IpVer::V6 } else { IpVer::V4 };
                let w = if p.v6 { 128 } else { 32 };
                let l = u32::from(p.len).min(w);
                let host: u128 = if l == w {
                    0
                } else {
                    (!0u128 >> (128 - w)) >> l
                };
                let rnd = (u128::from(g.next_u64()) << 64) | u128::from(g.next_u64());
                let a = (p.addr & !host) | (rnd & host);
                if dst {
                    k.dst_ip = a;
                } else {
                    k.src_ip = a;
                }
            }
        }
    }
    if let Some(v) = r.proto {
        if keep(&mut g) {
            k.proto = v;
            k.has |= HAS_PROTO;
        }
    }
    if let Some(v) = r.dscp {
        if keep(&mut g) {
            k.dscp = v;
        }
    }
    for (rg, dst) in [(r.src_port, false), (r.dst_port, true)] {
        if let Some((lo, hi)) = rg {
            if keep(&mut g) && lo <= hi {
                let p = match g.below(3) {
                    0 => lo,
                    1 => hi,
                    _ => g.range(u64::from(lo), u64::from(hi)) as u16,
                };
                if dst {
                    k.dst_port = p;
                } else {
                    k.src_port = p;
                }
                k.has |= HAS_PORTS;
            }
        }
    }
    if let Some((v, m)) = r.tcp_flags {
        if keep(&mut g) {
            k.tcp_flags = (v & m) | (k.tcp_flags & !m);
            k.has |= HAS_TCP_FLAGS;
        }
    }
    if let Some(v) = r.icmp_type {
        if keep(&mut g) {
            k.icmp_type = v;
            k.has |= HAS_ICMP;
        }
    }
    if let Some(v) = r.icmp_code {
        if keep(&mut g) {
            k.icmp_code = v;
            k.has |= HAS_ICMP;
        }
    }
    if let Some(f) = r.fragment {
        if keep(&mut g) {
            k.frag = if !f {
                Frag::NotFragment
            } else if g.below(2) == 0 {
                Frag::First
            } else {
                Frag::Later
            };
        }
    }
    if (r.dscp.is_some() || r.fragment.is_some()) && k.ip == IpVer::None && keep(&mut g) {
        k.ip = IpVer::V4;
    }
    k
}

fn random_key(g: &mut Rng) -> AclKey {
    let pick = |g: &mut Rng, v: &[u64]| v[g.below(v.len() as u64) as usize];
    let x: [u64; 5] = [
        g.next_u64(),
        g.next_u64(),
        g.next_u64(),
        g.next_u64(),
        g.next_u64(),
    ];
    AclKey {
        src_mac: pick(g, &[0x0200_0000_0001, 0x3333_0000_0001, x[0] & MAC48]),
        dst_mac: pick(g, &[0x0200_0000_0002, 0x0100_5e00_0001, x[1] & MAC48]),
        vlan: pick(g, &[1, 10, 4094]) as u16,
        pcp: g.below(8) as u8,
        ethertype: pick(g, &[0x0800, 0x86dd, 0x88b5]) as u16,
        ip: [IpVer::None, IpVer::V4, IpVer::V6][g.below(3) as usize],
        src_ip: (u128::from(g.next_u64()) << 64) | u128::from(g.next_u64()),
        dst_ip: u128::from(pick(g, &[0x0a01_0203, 0xc0a8_0101, x[2]])),
        proto: pick(g, &[1, 6, 17, 58]) as u8,
        dscp: pick(g, &[0, 10, 46]) as u8,
        src_port: pick(g, &[0, 80, 1024, 65535, x[3]]) as u16,
        dst_port: pick(g, &[0, 443, 1023, 65535, x[4]]) as u16,
        tcp_flags: g.next_u64() as u8,
        icmp_type: pick(g, &[0, 3, 8, 135]) as u8,
        icmp_code: g.below(5) as u8,
        frag: [Frag::NotFragment, Frag::First, Frag::Later][g.below(3) as usize],
        has: g.next_u64() as u8,
    }
}

/// Frame-like bytes: a valid Ethernet start (sometimes tagged) and an IPv4 or
/// IPv6 version nibble often enough to reach L4, then random bytes.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(any::<u8>(), 0..160),
        small(&[0x0800u16, 0x86dd, 0x8100, 0x88a8, 0x0806, 0x1234]),
        small(&[0x0800u16, 0x86dd, 0x8100]),
        0u8..4,
        small(&[6u8, 17, 1, 58, 0, 44, 43, 51, 60]),
    )
        .prop_map(|(mut b, et, inner, how, nh)| {
            if how == 0 || b.len() < 14 {
                return b; // raw bytes
            }
            b[12..14].copy_from_slice(&et.to_be_bytes());
            let mut l3 = 14;
            if matches!(et, 0x8100 | 0x88a8) && b.len() >= 18 {
                b[16..18].copy_from_slice(&inner.to_be_bytes());
                l3 = 18;
            }
            let t = u16::from_be_bytes([b[l3 - 2], b[l3 - 1]]);
            if b.len() > l3 + 10 {
                if t == 0x0800 {
                    b[l3] = if how == 1 {
                        0x45
                    } else {
                        0x40 | (b[l3] & 0x0f)
                    };
                    if how != 3 {
                        b[l3 + 2] = 0;
                        b[l3 + 3] = 60; // total length
                        b[l3 + 6] &= 0xe0; // often not a later fragment
                    }
                    b[l3 + 9] = nh;
                } else if t == 0x86dd {
                    b[l3] = 0x60;
                    b[l3 + 6] = nh;
                    if how != 3 {
                        b[l3 + 4] = 0;
                    }
                }
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn classify_equals_linear(rules in rules(), seeds in prop::collection::vec(any::<u64>(), 64)) {
        let c = Classifier::build(&rules);
        prop_assert_eq!(c.len(), rules.len());
        let mut g = Rng(seeds[0]);
        for (i, &s) in seeds.iter().enumerate() {
            let r = &rules[(s % rules.len() as u64) as usize];
            let k = if i % 4 == 3 { random_key(&mut g) } else { key_for(r, s) };
            prop_assert_eq!(c.classify(&k), linear(&rules, &k), "key {:?}", k);
        }
    }

    #[test]
    fn classify_equals_linear_on_frames(rules in rules(), frames in prop::collection::vec(frame(), 16), vlan in small(&[1u16, 10]), pcp in 0u8..8) {
        let c = Classifier::build(&rules);
        for f in &frames {
            let k = AclKey::from_frame(f, vlan, pcp);
            prop_assert_eq!(c.classify(&k), linear(&rules, &k));
        }
    }

    #[test]
    fn packed_from_frame_equals_packing_the_key(f in frame(), raw in prop::collection::vec(any::<u8>(), 0..200), vlan in any::<u16>(), pcp in any::<u8>()) {
        for b in [&f, &raw] {
            let k = AclKey::from_frame(b, vlan, pcp);
            prop_assert_eq!(PackedKey::from_frame(b, vlan, pcp), PackedKey::from(&k), "frame {:02x?}", b);
        }
    }

    #[test]
    fn from_frame_never_panics_and_matches_parse_frame(f in frame(), raw in prop::collection::vec(any::<u8>(), 0..200), vlan in any::<u16>(), pcp in any::<u8>()) {
        for b in [&f, &raw] {
            let k = AclKey::from_frame(b, vlan, pcp);
            let r = match parse_frame(b) {
                Ok(fi) => AclKey::from_info(&fi, vlan, pcp),
                Err(_) => AclKey { vlan, pcp, ..AclKey::default() },
            };
            prop_assert_eq!(k, r);
        }
    }
}

#[test]
fn overlapping_bench_like_sets() {
    // Many rules sharing their keyable bits (one long bucket), shadowed rules
    // and duplicates, in front of a bench-style set.
    let (mut rules, trace) = bench_rules(2000, 3);
    let dup = rules[5].clone();
    for i in 0..50 {
        let mut r = dup.clone();
        r.tcp_flags = Some((i as u8, 0xff));
        rules.insert(0, r);
    }
    rules.insert(100, dup);
    let c = Classifier::build(&rules);
    for k in &trace[..4000] {
        assert_eq!(c.classify(k), linear(&rules, k));
    }
}
