//! First-match packet classifier: [`Rule`]s, the per-frame [`AclKey`], the
//! plain [`linear`] reference and the compiled [`Classifier`].
//!
//! # Matching semantics
//!
//! A [`Rule`] matches a key when **every field it sets** matches; a rule that
//! sets nothing matches every frame. The result of a rule list is the index of
//! the first matching rule ([`linear`] is the definition, [`Classifier`] gives
//! the same answer faster). Per field:
//!
//! | rule field | matches when |
//! |---|---|
//! | `src_mac`, `dst_mac` `(v, m)` | the frame has an Ethernet header ([`HAS_ETH`]) and `mac & m == v & m` on the low 48 bits |
//! | `vlan`, `pcp` | equal to the VLAN / PCP the switch classified the frame into (always present) |
//! | `ethertype` | [`HAS_ETH`] and equal to the innermost ethertype (after at most two tags) |
//! | `src_ip`, `dst_ip` [`Prefix`] | the frame has an IP header of the prefix's version (a V4 prefix never matches IPv6 and vice versa) and the first `len` bits are equal (`len` is clamped to 32 / 128; address bits past `len` are ignored) |
//! | `proto` | [`HAS_PROTO`] (IPv4: always with the header; IPv6: the extension chain was walked to its end) and equal |
//! | `dscp` | an IP header is present and equal |
//! | `src_port`, `dst_port` `(lo, hi)` | [`HAS_PORTS`] (a whole TCP/UDP header of a non-fragment or first fragment) and `lo <= port <= hi`; `lo > hi` never matches |
//! | `tcp_flags` `(v, m)` | [`HAS_TCP_FLAGS`] (a whole TCP header) and `flags & m == v & m` (the low 8 flag bits, CWR..FIN) |
//! | `icmp_type`, `icmp_code` | [`HAS_ICMP`] (protocol 1 or 58 with the 8-byte header whole) and equal |
//! | `fragment` | an IP header is present; `Some(true)`: first or later fragment, `Some(false)`: not a fragment |
//!
//! So a frame never matches a rule on a field it does not carry: a rule with
//! `dst_port` does not match a later fragment, a non-IP frame or a truncated
//! TCP header, and a rule with `proto` needs an IP header. A rule whose own
//! fields contradict each other (a V4 source and a V6 destination prefix, an
//! empty port range) never matches anything.
//!
//! # Algorithm: tuple-space search with merged tuples
//!
//! The compiled [`Classifier`] is a tuple-space search in the style of
//! TupleMerge (Daly, Bhargavan & Torng). Every rule is turned into
//! masked-equality tests over eight 64-bit words of a packed key (addresses,
//! ports/protocol/ethertype/PCP, MACs/VLAN, DSCP/ICMP/TCP flags and "field
//! present" bits) plus two port ranges, so verifying one rule against a frame
//! is 8 AND/XOR/OR and two compares, without branches.
//!
//! Rules are grouped into a few *tables*. A table has a *tuple*: a prefix
//! length per dimension (IP version, source and destination address, source
//! and destination port — the common prefix of `lo` and `hi` —, protocol,
//! ethertype, VLAN, destination and source MAC — the leading ones of the
//! mask). A rule may live in any table whose tuple is no longer than its own
//! in every dimension: every frame the rule matches then agrees with the rule
//! on the table's key bits, so the frame's masked key hashes to the bucket that
//! holds the rule. A table is an open-addressing hash of masked key →
//! a contiguous run of rules in priority order (at most [`BUCKET`] per bucket).
//!
//! Lookup packs the key once, then visits tables in order of their best (lowest)
//! rule index: hash the masked key, probe, verify the bucket's rules in order
//! until one matches. A table whose best rule is not better than the match
//! found so far is skipped, and so are the rest (they are sorted). The cost is
//! (tables probed) × (hash + one or two cache misses + a few verifications),
//! independent of the number of rules as long as the number of tables and the
//! bucket sizes stay small.
//!
//! The build is greedy and offline: among candidate tuples (each remaining
//! rule's tuple rounded down — addresses and MAC prefixes to a multiple of 8
//! bits, ports to 0, 8 or 16 —, plus the component-wise minimum), it takes the
//! one that places the most remaining rules when every bucket keeps at most
//! [`BUCKET`] rules, makes that table, and repeats with the rules left over. At
//! most [`MAX_TABLES`] tables are made; the last one takes all remaining rules
//! with unbounded buckets (correct, just slower for pathological sets). For the
//! rte_acl-style benchmark set (random /16–/32 prefixes, port ranges, TCP/UDP,
//! a catch-all last) this gives two tables: one keyed on the first 16 bits of
//! both addresses plus the protocol holding every rule but the catch-all, and
//! the catch-all's. Build time is
//! O(candidates × rules) per table — a few milliseconds for 10,000 rules.
//!
//! Costs and limits: the per-frame cost grows with the number of tables, not
//! rules; rule sets whose rules share their keyable bits (e.g. many rules that
//! differ only in DSCP or TCP flags) end up in long buckets scanned linearly;
//! memory is 144 bytes per rule plus 8-byte hash slots (2–4 per bucket). Rules are not
//! replicated (each lives in exactly one bucket), so memory is linear, unlike
//! decision trees or rte_acl's DFA. Ranges cost nothing extra but a wide range
//! contributes few key bits. The structure is immutable; a new rule set means
//! a new build (the control thread publishes a new snapshot).
//!
//! Measured (`cargo run --release --example acl_bench`, one core, EPYC at
//! 2.45 GHz TSC, medians of runs on a shared machine): on the rte_acl-style
//! sets 53 / 64 / 76–80 cycles per frame at 100 / 1,000 / 10,000 rules, build
//! 0.06 / 0.6 / 7 ms, 1.6 MiB at 10,000 rules. DPDK `rte_acl` scalar
//! (`perf-peers/06-rte-acl.sh`, same distribution) measured 126 / 180 cycles
//! at 1,000 / 10,000 rules in the same session (109 / 169 on a quiet machine).
//! These figures exclude building the key: [`AclKey::from_frame`] costs about
//! 10 more cycles on an IPv4 TCP/UDP frame.
//!
//! Weak spot: rule sets that mix many different field combinations
//! (`acl_bench mixed`: MAC/VLAN/ethertype/IPv4/IPv6/ICMP/DSCP rules, most of
//! them broad) need many tables — 7 / 13 / 24 at 100 / 1,000 / 10,000 rules —
//! and cost about 220 / 400 / 740 cycles per frame, no better than [`linear`]
//! at 1,000 rules when most frames hit an early broad rule. Coarser candidate
//! tuples, growing bucket limits, ICMP type / DSCP as extra key dimensions
//! (more tables: 480 cycles at 1,000), one uncapped wildcard table and a
//! per-table pre-check of the bits all its rules share (+6 cycles on the
//! 5-tuple sets) did not help; partitioning rules by the
//! set of fields they use, or a small decision tree over the leftovers, are
//! the next things to try. Also tried and dropped: a compact per-table rule
//! layout (only the 32-bit key halves a table tests, one cache line per rule,
//! half the memory) was 10–15 cycles slower at these sizes.

use std::collections::HashMap;

/// [`AclKey::has`]: the Ethernet header and its VLAN tags are whole (MACs and
/// ethertype are valid).
pub const HAS_ETH: u8 = 1 << 0;
/// [`AclKey::has`]: the IP protocol is known.
pub const HAS_PROTO: u8 = 1 << 1;
/// [`AclKey::has`]: TCP/UDP ports were read.
pub const HAS_PORTS: u8 = 1 << 2;
/// [`AclKey::has`]: TCP flags were read.
pub const HAS_TCP_FLAGS: u8 = 1 << 3;
/// [`AclKey::has`]: ICMP/ICMPv6 type and code were read.
pub const HAS_ICMP: u8 = 1 << 4;

/// IP version of a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpVer {
    /// No (whole) IP header.
    #[default]
    None,
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Fragmentation state of an IP packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Frag {
    /// Not a fragment (or no IP header).
    #[default]
    NotFragment,
    /// Fragment with offset 0 (carries the L4 header).
    First,
    /// Fragment with a non-zero offset.
    Later,
}

/// Fields of one frame that rules can match. Built once per frame by
/// [`AclKey::from_frame`] (or [`AclKey::from_info`]).
///
/// Fields the frame does not carry are zero and their presence bit in `has`
/// (or `ip`) is clear; rules never match on absent fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AclKey {
    /// Source MAC, low 48 bits.
    pub src_mac: u64,
    /// Destination MAC, low 48 bits.
    pub dst_mac: u64,
    /// VLAN the switch classified the frame into.
    pub vlan: u16,
    /// Priority the switch classified the frame into.
    pub pcp: u8,
    /// Innermost ethertype (after at most two VLAN tags).
    pub ethertype: u16,
    /// IP version, `None` if there is no whole IP header.
    pub ip: IpVer,
    /// Source address (IPv4: in the low 32 bits).
    pub src_ip: u128,
    /// Destination address (IPv4: in the low 32 bits).
    pub dst_ip: u128,
    /// IP protocol (after IPv6 extension headers).
    pub proto: u8,
    /// DSCP.
    pub dscp: u8,
    /// TCP/UDP source port.
    pub src_port: u16,
    /// TCP/UDP destination port.
    pub dst_port: u16,
    /// TCP flags (low 8 bits: CWR ECE URG ACK PSH RST SYN FIN).
    pub tcp_flags: u8,
    /// ICMP/ICMPv6 type.
    pub icmp_type: u8,
    /// ICMP/ICMPv6 code.
    pub icmp_code: u8,
    /// Fragmentation state.
    pub frag: Frag,
    /// Presence bits: [`HAS_ETH`], [`HAS_PROTO`], [`HAS_PORTS`], [`HAS_TCP_FLAGS`], [`HAS_ICMP`].
    pub has: u8,
}

#[inline(always)]
fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

#[inline(always)]
fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

#[inline(always)]
fn be64(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_be_bytes(w)
}

#[inline(always)]
fn be48(b: &[u8], i: usize) -> u64 {
    u64::from_be_bytes([0, 0, b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5]])
}

#[inline(always)]
fn be128(b: &[u8], i: usize) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[i..i + 16]);
    u128::from_be_bytes(a)
}

impl AclKey {
    /// Extract the key from raw frame bytes; `vlan`/`pcp` are what the switch
    /// classified the frame into (always present). Never panics, allocates
    /// nothing, and gives the same key as [`AclKey::from_info`] on
    /// [`parse_frame`](crate::wire::parse_frame)'s result. Presence rules:
    ///
    /// - Ethernet ([`HAS_ETH`], MACs, `ethertype`): at least 14 bytes and every
    ///   VLAN tag (TPID 0x8100/0x88a8, at most two) whole. Otherwise only
    ///   `vlan`/`pcp` are set. A third TPID is the ethertype (no L3).
    /// - `ip`, addresses, `dscp`, `frag`: ethertype 0x0800 with a valid header
    ///   (version 4, IHL ≥ 5, total length ≥ header length, options included in
    ///   the frame), or 0x86dd with version 6 and the 40-byte header in the frame.
    /// - [`HAS_PROTO`]: IPv4 always; IPv6 when the extension chain (hop-by-hop,
    ///   routing, fragment, destination options, AH; at most 8) was walked to its
    ///   end within the packet. `frag` records an IPv6 fragment header seen on
    ///   the way even if the walk is then cut short.
    /// - L4, only with a known protocol and not for a later fragment, the header
    ///   whole before `min(end of frame, end given by the IP length)`:
    ///   TCP (20 bytes and data offset × 4 ≥ 20) sets [`HAS_PORTS`] and
    ///   [`HAS_TCP_FLAGS`]; UDP (8 bytes) sets [`HAS_PORTS`]; protocol 1 or 58
    ///   (8 bytes) sets [`HAS_ICMP`].
    #[inline]
    pub fn from_frame(frame: &[u8], vlan: u16, pcp: u8) -> AclKey {
        Self::extract(frame, vlan, pcp)
    }

    /// [`AclKey::from_frame`], always inlined (so [`PackedKey::from_frame`]
    /// never materialises the unpacked struct).
    #[inline(always)]
    fn extract(frame: &[u8], vlan: u16, pcp: u8) -> AclKey {
        let mut k = AclKey {
            vlan,
            pcp,
            ..AclKey::default()
        };
        let f = frame;
        if f.len() < 14 {
            return k;
        }
        let mut et = be16(f, 12);
        let mut off = 14;
        let mut tags = 0;
        while (et == 0x8100 || et == 0x88a8) && tags < 2 {
            if f.len() < off + 4 {
                return k;
            }
            et = be16(f, off + 2);
            off += 4;
            tags += 1;
        }
        k.dst_mac = be48(f, 0);
        k.src_mac = be48(f, 6);
        k.ethertype = et;
        k.has = HAS_ETH;
        let l3 = &f[off..];
        match et {
            0x0800 => k.ipv4(l3),
            0x86dd => k.ipv6(l3),
            _ => {}
        }
        k
    }

    #[inline(always)]
    fn ipv4(&mut self, s: &[u8]) {
        if s.len() < 20 {
            return;
        }
        let hl = usize::from(s[0] & 0x0f) * 4;
        let tl = usize::from(be16(s, 2));
        if s[0] >> 4 != 4 || hl < 20 || tl < hl || s.len() < hl {
            return;
        }
        self.ip = IpVer::V4;
        self.src_ip = u128::from(be32(s, 12));
        self.dst_ip = u128::from(be32(s, 16));
        self.dscp = s[1] >> 2;
        self.proto = s[9];
        self.has |= HAS_PROTO;
        let fo = be16(s, 6);
        let offset = fo & 0x1fff;
        self.frag = if offset != 0 {
            Frag::Later
        } else if fo & 0x2000 != 0 {
            Frag::First
        } else {
            Frag::NotFragment
        };
        if offset == 0 {
            let end = tl.min(s.len());
            self.l4(s[9], &s[hl..end]);
        }
    }

    #[inline(always)]
    fn ipv6(&mut self, s: &[u8]) {
        if s.len() < 40 || s[0] >> 4 != 6 {
            return;
        }
        self.ip = IpVer::V6;
        self.src_ip = be128(s, 8);
        self.dst_ip = be128(s, 24);
        self.dscp = ((be16(s, 0) >> 4) as u8) >> 2;
        let pl = usize::from(be16(s, 4));
        let end = if pl == 0 {
            s.len()
        } else {
            (40 + pl).min(s.len())
        };
        let s = &s[..end];
        let mut nh = s[6];
        let mut o = 40;
        let mut count = 0;
        while matches!(nh, 0 | 43 | 44 | 51 | 60) {
            if count == 8 || s.len() < o + 8 {
                return;
            }
            let len = match nh {
                44 => 8,
                51 => (usize::from(s[o + 1]) + 2) * 4,
                _ => (usize::from(s[o + 1]) + 1) * 8,
            };
            if s.len() < o + len {
                return;
            }
            let is_frag = nh == 44;
            nh = s[o];
            if is_frag {
                if be16(s, o + 2) >> 3 != 0 {
                    self.frag = Frag::Later;
                    self.proto = nh;
                    self.has |= HAS_PROTO;
                    return;
                }
                self.frag = Frag::First;
            }
            o += len;
            count += 1;
        }
        self.proto = nh;
        self.has |= HAS_PROTO;
        self.l4(nh, &s[o..]);
    }

    #[inline(always)]
    fn l4(&mut self, proto: u8, s: &[u8]) {
        match proto {
            6 if s.len() >= 20 => {
                let hl = usize::from(s[12] >> 4) * 4;
                if hl >= 20 && s.len() >= hl {
                    self.src_port = be16(s, 0);
                    self.dst_port = be16(s, 2);
                    self.tcp_flags = s[13];
                    self.has |= HAS_PORTS | HAS_TCP_FLAGS;
                }
            }
            17 if s.len() >= 8 => {
                self.src_port = be16(s, 0);
                self.dst_port = be16(s, 2);
                self.has |= HAS_PORTS;
            }
            1 | 58 if s.len() >= 8 => {
                self.icmp_type = s[0];
                self.icmp_code = s[1];
                self.has |= HAS_ICMP;
            }
            _ => {}
        }
    }

    /// The key from a [`FrameInfo`](crate::wire::FrameInfo) the pipeline
    /// already made (same result as [`AclKey::from_frame`] on the same bytes).
    pub fn from_info(fi: &crate::wire::FrameInfo, vlan: u16, pcp: u8) -> AclKey {
        use crate::wire::L4Info;
        use std::net::IpAddr;
        let mut k = AclKey {
            vlan,
            pcp,
            src_mac: fi.src.to_u64(),
            dst_mac: fi.dst.to_u64(),
            ethertype: fi.ethertype,
            has: HAS_ETH,
            ..AclKey::default()
        };
        if let Some(ip) = fi.ip {
            let a = |x: IpAddr| match x {
                IpAddr::V4(v) => u128::from(u32::from(v)),
                IpAddr::V6(v) => u128::from(v),
            };
            k.ip = if ip.src.is_ipv4() {
                IpVer::V4
            } else {
                IpVer::V6
            };
            k.src_ip = a(ip.src);
            k.dst_ip = a(ip.dst);
            k.dscp = ip.dscp;
            if let Some(p) = ip.proto {
                k.proto = p;
                k.has |= HAS_PROTO;
            }
            k.frag = match (ip.frag.is_fragment, ip.frag.is_first) {
                (false, _) => Frag::NotFragment,
                (true, true) => Frag::First,
                (true, false) => Frag::Later,
            };
        }
        match fi.l4 {
            Some(L4Info::Tcp {
                src_port,
                dst_port,
                flags,
            }) => {
                (k.src_port, k.dst_port, k.tcp_flags) = (src_port, dst_port, flags as u8);
                k.has |= HAS_PORTS | HAS_TCP_FLAGS;
            }
            Some(L4Info::Udp { src_port, dst_port }) => {
                (k.src_port, k.dst_port) = (src_port, dst_port);
                k.has |= HAS_PORTS;
            }
            Some(L4Info::Icmp { ty, code }) | Some(L4Info::Icmpv6 { ty, code }) => {
                (k.icmp_type, k.icmp_code) = (ty, code);
                k.has |= HAS_ICMP;
            }
            None => {}
        }
        k
    }
}

/// An address prefix. A V4 prefix (address in the low 32 bits) matches only
/// IPv4 frames, a V6 prefix only IPv6 frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Address; bits past `len` are ignored.
    pub addr: u128,
    /// Prefix length, clamped to 32 (V4) or 128 (V6).
    pub len: u8,
}

impl Prefix {
    /// Bits of the address that count, clamped length.
    fn bits(&self) -> (u32, u128) {
        let w = if self.v6 { 128 } else { 32 };
        let l = u32::from(self.len).min(w);
        let m = if l == 0 {
            0
        } else {
            (!0u128 << (128 - l)) >> (128 - w)
        };
        (l, m)
    }
    /// Does the key's address (of version `ip`) fall in the prefix?
    pub fn matches(&self, ip: IpVer, addr: u128) -> bool {
        let (_, m) = self.bits();
        let ok_ver = if self.v6 {
            ip == IpVer::V6
        } else {
            ip == IpVer::V4
        };
        ok_ver && (addr ^ self.addr) & m == 0
    }
}

/// One ACL rule: the fields it sets must all match (see the module docs).
/// `Rule::default()` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// Source MAC (value, mask), low 48 bits.
    pub src_mac: Option<(u64, u64)>,
    /// Destination MAC (value, mask), low 48 bits.
    pub dst_mac: Option<(u64, u64)>,
    /// VLAN.
    pub vlan: Option<u16>,
    /// PCP.
    pub pcp: Option<u8>,
    /// Innermost ethertype.
    pub ethertype: Option<u16>,
    /// Source address prefix.
    pub src_ip: Option<Prefix>,
    /// Destination address prefix.
    pub dst_ip: Option<Prefix>,
    /// IP protocol.
    pub proto: Option<u8>,
    /// DSCP.
    pub dscp: Option<u8>,
    /// Source port range, inclusive.
    pub src_port: Option<(u16, u16)>,
    /// Destination port range, inclusive.
    pub dst_port: Option<(u16, u16)>,
    /// TCP flags (value, mask).
    pub tcp_flags: Option<(u8, u8)>,
    /// ICMP/ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP/ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// `Some(true)`: first or later fragments only; `Some(false)`: non-fragments only.
    pub fragment: Option<bool>,
}

const MAC48: u64 = (1 << 48) - 1;

impl Rule {
    /// Does the rule match the key? The definition of the semantics.
    pub fn matches(&self, k: &AclKey) -> bool {
        let eth = k.has & HAS_ETH != 0;
        let ip = k.ip != IpVer::None;
        let has = |b: u8| k.has & b != 0;
        let mac = |r: Option<(u64, u64)>, x: u64| match r {
            None => true,
            Some((v, m)) => eth && (x ^ v) & m & MAC48 == 0,
        };
        let eq = |r: Option<u8>, present: bool, x: u8| r.map_or(true, |v| present && v == x);
        let range = |r: Option<(u16, u16)>, x: u16| {
            r.map_or(true, |(lo, hi)| has(HAS_PORTS) && lo <= x && x <= hi)
        };
        mac(self.src_mac, k.src_mac)
            && mac(self.dst_mac, k.dst_mac)
            && self.vlan.map_or(true, |v| v == k.vlan)
            && self.pcp.map_or(true, |v| v == k.pcp)
            && self.ethertype.map_or(true, |v| eth && v == k.ethertype)
            && self.src_ip.map_or(true, |p| p.matches(k.ip, k.src_ip))
            && self.dst_ip.map_or(true, |p| p.matches(k.ip, k.dst_ip))
            && eq(self.proto, has(HAS_PROTO), k.proto)
            && eq(self.dscp, ip, k.dscp)
            && range(self.src_port, k.src_port)
            && range(self.dst_port, k.dst_port)
            && self.tcp_flags.map_or(true, |(v, m)| {
                has(HAS_TCP_FLAGS) && (k.tcp_flags ^ v) & m == 0
            })
            && eq(self.icmp_type, has(HAS_ICMP), k.icmp_type)
            && eq(self.icmp_code, has(HAS_ICMP), k.icmp_code)
            && self
                .fragment
                .map_or(true, |f| ip && (k.frag != Frag::NotFragment) == f)
    }
}

/// Index of the first rule that matches `k` (the reference classifier).
pub fn linear(rules: &[Rule], k: &AclKey) -> Option<u32> {
    rules.iter().position(|r| r.matches(k)).map(|i| i as u32)
}

// ---------------------------------------------------------------------------
// Packed key: eight words; every rule is masked equality on them plus two
// port ranges.
//
// w0, w1: source address (high, low 64 bits; IPv4 in the low 32 bits of w1)
// w2, w3: destination address
// w4: sport << 48 | dport << 32 | proto << 24 | ethertype << 8 | pcp
// w5: dst_mac << 16 | vlan
// w6: src_mac << 16 | dscp << 8 | icmp_type
// w7: icmp_code << 56 | tcp_flags << 48 | flag bits (has & 0x1f, F_IP, F_V4, F_V6, F_FRAG)

const W: usize = 8;
type Words = [u64; W];

/// An [`AclKey`] in the classifier's packed form: eight words, one cache
/// line. The pipeline builds it straight from the frame bytes
/// ([`PackedKey::from_frame`]) and classifies it in both directions without
/// unpacking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(align(64))]
pub struct PackedKey(Words);

impl PackedKey {
    /// The packed key of [`AclKey::from_frame`]`(frame, vlan, pcp)`.
    ///
    /// The common case — an untagged or singly tagged IPv4 frame with a
    /// 20-byte header, not a fragment, carrying a whole TCP or UDP header —
    /// is packed straight from the bytes; everything else goes through the
    /// general extraction. Both give the same words (a property test checks).
    #[inline]
    pub fn from_frame(frame: &[u8], vlan: u16, pcp: u8) -> PackedKey {
        match Self::fast_ipv4(frame, vlan, pcp) {
            Some(k) => k,
            None => PackedKey(pack(&AclKey::extract(frame, vlan, pcp))),
        }
    }

    /// A 64-bit hash of every word (for [`super::flow::FlowCache`]); the
    /// high bits are the best mixed.
    #[inline(always)]
    pub fn hash(&self) -> u64 {
        hash_words(&self.0)
    }

    /// Equality without a call to `memcmp` (eight XORs folded).
    #[inline(always)]
    pub fn same(&self, o: &PackedKey) -> bool {
        let mut acc = 0;
        for (a, b) in self.0.iter().zip(&o.0) {
            acc |= a ^ b;
        }
        acc == 0
    }

    /// IPv4 + TCP/UDP without options or fragmentation, at most one tag.
    #[inline(always)]
    fn fast_ipv4(f: &[u8], vlan: u16, pcp: u8) -> Option<PackedKey> {
        FlowKey::from_frame(f, vlan, pcp).map(|k| k.packed())
    }
}

/// The exact-match key of a frame that the fast IPv4 path packs: an
/// untagged or singly tagged IPv4 frame with a 20-byte header, not a
/// fragment, carrying a whole TCP or UDP header. Four words instead of
/// [`PackedKey`]'s eight, loaded with few instructions, and injective on
/// every field a rule can match ([`FlowKey::packed`] rebuilds the packed
/// key from it; a property test checks it equals the general path's).
///
/// w0: dst_mac << 16 | vlan; w1: src_mac << 16 | TOS << 8 | proto; w2:
/// source IPv4 << 32 | destination IPv4; w3: sport << 48 | dport << 32 |
/// TCP flags (0 for UDP) << 8 | pcp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(align(32))]
pub struct FlowKey([u64; 4]);

impl FlowKey {
    /// The shortest frame [`FlowKey::from_frame`] takes a key from:
    /// Ethernet + IPv4 (20) + UDP (8).
    pub const MIN_FRAME: usize = 42;

    /// The key of `frame` (classified VID `vlan`, priority `pcp`), or `None`
    /// when the frame is not one the fast path takes.
    #[inline(always)]
    pub fn from_frame(f: &[u8], vlan: u16, pcp: u8) -> Option<FlowKey> {
        if f.len() < Self::MIN_FRAME {
            return None;
        }
        let mut et = be16(f, 12);
        let mut off = 14;
        if et == 0x8100 || et == 0x88a8 {
            et = be16(f, 16);
            off = 18;
        }
        if et != 0x0800 || f.len() < off + 28 || f[off] != 0x45 {
            return None;
        }
        let ip = &f[off..];
        let tl = usize::from(be16(ip, 2));
        let fo = be16(ip, 6);
        let proto = ip[9];
        // L4 bytes the IP length and the frame both cover.
        let l4_len = tl.min(ip.len()).checked_sub(20)?;
        let l4 = &ip[20..];
        let flags = match proto {
            6 if l4_len >= 20 && l4[12] >> 4 >= 5 && usize::from(l4[12] >> 4) * 4 <= l4_len => {
                l4[13]
            }
            17 if l4_len >= 8 => 0,
            _ => return None,
        };
        if fo & 0x3fff != 0 {
            return None; // a fragment: the general path sets `frag`
        }
        // f.len() >= 42: both 8-byte loads are inside the frame.
        let dst = be64(f, 0) >> 16;
        let src = be64(f, 6) >> 16;
        Some(FlowKey([
            dst << 16 | u64::from(vlan),
            src << 16 | u64::from(ip[1]) << 8 | u64::from(proto),
            be64(ip, 12),
            u64::from(be32(l4, 0)) << 32 | u64::from(flags) << 8 | u64::from(pcp),
        ]))
    }

    /// A 64-bit hash of the four words (the high bits are the best mixed).
    #[inline(always)]
    pub fn hash(&self) -> u64 {
        hash_words(&self.0)
    }

    /// The four words (the one pass's flow memo keys a frame by them, taken
    /// with the raw tag in place of VID and PCP).
    #[inline(always)]
    pub fn words(&self) -> [u64; 4] {
        self.0
    }

    /// This key with VID `vlan` and PCP `pcp` in place of the ones it was
    /// taken with.
    #[inline(always)]
    pub fn with_tag(&self, vlan: u16, pcp: u8) -> FlowKey {
        let [w0, w1, w2, w3] = self.0;
        FlowKey([
            w0 & !0xffff | u64::from(vlan),
            w1,
            w2,
            w3 & !0xff | u64::from(pcp),
        ])
    }

    /// A key made of four given words ([`FlowKey::words`] of a key).
    #[inline(always)]
    pub fn from_words(w: [u64; 4]) -> FlowKey {
        FlowKey(w)
    }

    /// Equality of all four words, without a call to `memcmp`.
    #[inline(always)]
    pub fn same(&self, o: &FlowKey) -> bool {
        ((self.0[0] ^ o.0[0]) | (self.0[1] ^ o.0[1]) | (self.0[2] ^ o.0[2]) | (self.0[3] ^ o.0[3]))
            == 0
    }

    /// The packed classifier key of the frame this key came from.
    #[inline]
    pub fn packed(&self) -> PackedKey {
        let [w0, w1, w2, w3] = self.0;
        let proto = w1 & 0xff;
        let has = if proto == 6 {
            HAS_ETH | HAS_PROTO | HAS_PORTS | HAS_TCP_FLAGS
        } else {
            HAS_ETH | HAS_PROTO | HAS_PORTS
        };
        PackedKey([
            0,
            w2 >> 32,
            0,
            w2 & 0xffff_ffff,
            (w3 >> 32) << 32 | proto << 24 | 0x0800 << 8 | (w3 & 0xff),
            w0,
            (w1 >> 16) << 16 | (w1 >> 10 & 0x3f) << 8,
            (w3 >> 8 & 0xff) << 48 | u64::from(has) | F_IP | F_V4,
        ])
    }
}

impl From<&AclKey> for PackedKey {
    fn from(k: &AclKey) -> PackedKey {
        PackedKey(pack(k))
    }
}

const F_IP: u64 = 1 << 5;
const F_V4: u64 = 1 << 6;
const F_V6: u64 = 1 << 7;
const F_FRAG: u64 = 1 << 8;
const F_ETH: u64 = HAS_ETH as u64;

#[inline(always)]
fn pack(k: &AclKey) -> Words {
    let ipf = match k.ip {
        IpVer::None => 0,
        IpVer::V4 => F_IP | F_V4,
        IpVer::V6 => F_IP | F_V6,
    };
    let fr = if k.frag == Frag::NotFragment {
        0
    } else {
        F_FRAG
    };
    [
        (k.src_ip >> 64) as u64,
        k.src_ip as u64,
        (k.dst_ip >> 64) as u64,
        k.dst_ip as u64,
        u64::from(k.src_port) << 48
            | u64::from(k.dst_port) << 32
            | u64::from(k.proto) << 24
            | u64::from(k.ethertype) << 8
            | u64::from(k.pcp),
        k.dst_mac << 16 | u64::from(k.vlan),
        k.src_mac << 16 | u64::from(k.dscp) << 8 | u64::from(k.icmp_type),
        u64::from(k.icmp_code) << 56
            | u64::from(k.tcp_flags) << 48
            | u64::from(k.has & 0x1f)
            | ipf
            | fr,
    ]
}

/// A compiled rule: `(w & m) == v` on every word, ports in range.
#[derive(Clone, Copy, Debug)]
struct CRule {
    m: Words,
    v: Words,
    /// Source port: low end and span (`hi - lo`).
    sp: (u16, u16),
    /// Destination port: low end and span.
    dp: (u16, u16),
    id: u32,
    /// Last rule of its bucket.
    last: bool,
}

impl CRule {
    #[inline(always)]
    fn hit(&self, w: &Words) -> bool {
        let mut acc = 0;
        for ((w, m), v) in w.iter().zip(&self.m).zip(&self.v) {
            acc |= (w & m) ^ v;
        }
        let sp = (w[4] >> 48) as u16;
        let dp = (w[4] >> 32) as u16;
        acc == 0
            && sp.wrapping_sub(self.sp.0) <= self.sp.1
            && dp.wrapping_sub(self.dp.0) <= self.dp.1
    }
}

/// Dimensions of a tuple.
const T_VER: usize = 0; // 0 any, 4, 6
const T_SIP: usize = 1;
const T_DIP: usize = 2;
const T_SP: usize = 3;
const T_DP: usize = 4;
const T_PROTO: usize = 5; // 0 or 8
const T_ETYPE: usize = 6; // 0 or 16
const T_VLAN: usize = 7; // 0 or 16
const T_DMAC: usize = 8; // 0..=48
const T_SMAC: usize = 9; // 0..=48
const NT: usize = 10;
type Tuple = [u8; NT];

/// A rule ready for placement.
struct Compiled {
    c: CRule,
    t: Tuple,
    /// Values of all keyable bits (rule values plus the ports' common prefix).
    key: Words,
}

struct Builder {
    m: Words,
    v: Words,
    dead: bool,
}

impl Builder {
    fn add(&mut self, i: usize, m: u64, v: u64) {
        let v = v & m;
        if (self.m[i] & m) & (self.v[i] ^ v) != 0 {
            self.dead = true;
        }
        self.m[i] |= m;
        self.v[i] |= v;
    }
    fn prefix(&mut self, hi: usize, p: &Prefix) {
        let (_, m) = p.bits();
        let a = p.addr & m;
        self.add(hi, (m >> 64) as u64, (a >> 64) as u64);
        self.add(hi + 1, m as u64, a as u64);
        let ver = if p.v6 { F_V6 } else { F_V4 };
        self.add(7, F_V4 | F_V6 | F_IP, ver | F_IP);
    }
}

fn common_prefix16(lo: u16, hi: u16) -> u8 {
    (lo ^ hi).leading_zeros() as u8
}

fn compile(id: u32, r: &Rule) -> Option<Compiled> {
    let mut b = Builder {
        m: [0; W],
        v: [0; W],
        dead: false,
    };
    let mut t: Tuple = [0; NT];
    let mut key_ports = 0u64;
    let mut port_mask = 0u64;
    if let Some((v, m)) = r.src_mac {
        let m = m & MAC48;
        b.add(6, m << 16, v << 16);
        b.add(7, F_ETH, F_ETH);
        t[T_SMAC] = ((m << 16).leading_ones() as u8).min(48);
    }
    if let Some((v, m)) = r.dst_mac {
        let m = m & MAC48;
        b.add(5, m << 16, v << 16);
        b.add(7, F_ETH, F_ETH);
        t[T_DMAC] = ((m << 16).leading_ones() as u8).min(48);
    }
    if let Some(v) = r.vlan {
        b.add(5, 0xffff, u64::from(v));
        t[T_VLAN] = 16;
    }
    if let Some(v) = r.pcp {
        b.add(4, 0xff, u64::from(v));
    }
    if let Some(v) = r.ethertype {
        b.add(4, 0xffff << 8, u64::from(v) << 8);
        b.add(7, F_ETH, F_ETH);
        t[T_ETYPE] = 16;
    }
    let mut ver = 0u8;
    for (p, word, dim) in [(r.src_ip, 0, T_SIP), (r.dst_ip, 2, T_DIP)] {
        if let Some(p) = p {
            b.prefix(word, &p);
            let (l, _) = p.bits();
            t[dim] = l as u8;
            let pv = if p.v6 { 6 } else { 4 };
            if ver != 0 && ver != pv {
                b.dead = true;
            }
            ver = pv;
        }
    }
    t[T_VER] = ver;
    if let Some(v) = r.proto {
        b.add(4, 0xff << 24, u64::from(v) << 24);
        b.add(7, HAS_PROTO as u64, HAS_PROTO as u64);
        t[T_PROTO] = 8;
    }
    if let Some(v) = r.dscp {
        b.add(6, 0xff << 8, u64::from(v) << 8);
        b.add(7, F_IP, F_IP);
    }
    let mut sp = (0u16, u16::MAX);
    let mut dp = (0u16, u16::MAX);
    for (rg, shift, dim, out) in [
        (r.src_port, 48, T_SP, &mut sp),
        (r.dst_port, 32, T_DP, &mut dp),
    ] {
        if let Some((lo, hi)) = rg {
            if lo > hi {
                b.dead = true;
                continue;
            }
            b.add(7, HAS_PORTS as u64, HAS_PORTS as u64);
            *out = (lo, hi - lo);
            let l = common_prefix16(lo, hi);
            t[dim] = l;
            let pm = if l == 0 {
                0
            } else {
                u64::from(!0u16 << (16 - l))
            };
            port_mask |= pm << shift;
            key_ports |= (u64::from(lo) & pm) << shift;
        }
    }
    if let Some((v, m)) = r.tcp_flags {
        b.add(7, u64::from(m) << 48, u64::from(v) << 48);
        b.add(7, HAS_TCP_FLAGS as u64, HAS_TCP_FLAGS as u64);
    }
    if let Some(v) = r.icmp_type {
        b.add(6, 0xff, u64::from(v));
        b.add(7, HAS_ICMP as u64, HAS_ICMP as u64);
    }
    if let Some(v) = r.icmp_code {
        b.add(7, 0xff << 56, u64::from(v) << 56);
        b.add(7, HAS_ICMP as u64, HAS_ICMP as u64);
    }
    if let Some(f) = r.fragment {
        b.add(7, F_IP | F_FRAG, F_IP | if f { F_FRAG } else { 0 });
    }
    if b.dead {
        return None;
    }
    let mut key = b.v;
    key[4] = (key[4] & !port_mask) | key_ports;
    Some(Compiled {
        c: CRule {
            m: b.m,
            v: b.v,
            sp,
            dp,
            id,
            last: false,
        },
        t,
        key,
    })
}

/// Key mask of a tuple.
fn tuple_mask(t: &Tuple) -> Words {
    let mut m = [0u64; W];
    let pfx = |l: u8, w: u32| -> u128 {
        let l = u32::from(l).min(w);
        if l == 0 {
            0
        } else {
            (!0u128 << (128 - l)) >> (128 - w)
        }
    };
    if t[T_VER] != 0 {
        let w = if t[T_VER] == 6 { 128 } else { 32 };
        let s = pfx(t[T_SIP], w);
        let d = pfx(t[T_DIP], w);
        m[0] = (s >> 64) as u64;
        m[1] = s as u64;
        m[2] = (d >> 64) as u64;
        m[3] = d as u64;
        m[7] |= F_V4 | F_V6;
    }
    let p16 = |l: u8| pfx(l, 16) as u64;
    m[4] |= p16(t[T_SP]) << 48 | p16(t[T_DP]) << 32;
    if t[T_PROTO] != 0 {
        m[4] |= 0xff << 24;
    }
    if t[T_ETYPE] != 0 {
        m[4] |= 0xffff << 8;
    }
    if t[T_VLAN] != 0 {
        m[5] |= 0xffff;
    }
    m[5] |= (pfx(t[T_DMAC], 48) as u64) << 16;
    m[6] |= (pfx(t[T_SMAC], 48) as u64) << 16;
    m
}

/// Can a rule with tuple `r` live in a table with tuple `t`?
fn fits(t: &Tuple, r: &Tuple) -> bool {
    (t[T_VER] == 0 || t[T_VER] == r[T_VER]) && (1..NT).all(|i| t[i] <= r[i])
}

/// The tuple rounded down, a candidate for a table.
fn relax(r: &Tuple) -> Tuple {
    let mut t = *r;
    let down8 = |x: u8| x & !7;
    t[T_SIP] = down8(t[T_SIP]);
    t[T_DIP] = down8(t[T_DIP]);
    for d in [T_SP, T_DP] {
        if t[d] != 16 {
            t[d] = down8(t[d]);
        }
    }
    t[T_DMAC] = down8(t[T_DMAC]);
    t[T_SMAC] = down8(t[T_SMAC]);
    t
}

/// Component-wise minimum of the tuples of `rules`.
fn min_tuple(comp: &[Compiled], rules: &[usize]) -> Tuple {
    let mut it = rules.iter().map(|&i| comp[i].t);
    let mut m = match it.next() {
        Some(t) => t,
        None => return [0; NT],
    };
    for t in it {
        if m[T_VER] != t[T_VER] {
            m[T_VER] = 0;
        }
        for i in 1..NT {
            m[i] = m[i].min(t[i]);
        }
    }
    if m[T_VER] == 0 {
        m[T_SIP] = 0;
        m[T_DIP] = 0;
    }
    m
}

const HK: [u64; W] = [
    0x9e37_79b9_7f4a_7c15,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
    0x85eb_ca77_c2b2_ae63,
    0x27d4_eb2f_1656_67c5,
    0xff51_afd7_ed55_8ccd,
    0xc4ce_b9fe_1a85_ec53,
    0x94d0_49bb_1331_11eb,
];

/// Hash of up to eight words for the flow caches ([`PackedKey::hash`],
/// [`FlowKey::hash`]): one multiply per word, summed, then one 128-bit
/// multiply; the high bits are the best mixed.
#[inline(always)]
fn hash_words(w: &[u64]) -> u64 {
    let mut h = 0u64;
    for (w, k) in w.iter().zip(HK) {
        h = h.wrapping_add(w.wrapping_mul(k));
    }
    let p = u128::from(h ^ (h >> 29)) * 0x9fb2_1c65_1e98_df25_u128;
    (p as u64) ^ ((p >> 64) as u64)
}

/// Hash of the masked key: eight independent multiplies, summed, then one
/// 128-bit multiply to mix high and low bits. Collisions only cost time
/// (every candidate rule is verified in full).
#[inline(always)]
fn hash(w: &Words, m: &Words) -> u64 {
    let mut h = 0u64;
    for (i, (w, m)) in w.iter().zip(m).enumerate() {
        h = h.wrapping_add(((w & m) ^ (w & m) >> 29).wrapping_mul(HK[i]));
    }
    let p = u128::from(h) * 0x9fb2_1c65_1e98_df25_u128;
    (p as u64) ^ ((p >> 64) as u64)
}

/// Slot tag of a hash (never 0: 0 marks an empty slot). Buckets are grouped
/// by tag and the home slot is taken from the tag, so keys whose hashes differ
/// but whose tags are equal share one (merged, still fully verified) bucket.
#[inline(always)]
fn tag(h: u64) -> u32 {
    ((h >> 32) as u32) | 1
}

/// Home slot of a tag.
#[inline(always)]
fn home(t: u32, slot_mask: usize) -> usize {
    (t >> 1) as usize & slot_mask
}

/// Most rules a bucket keeps (except in the last table).
pub const BUCKET: usize = 8;
/// Most tables a [`Classifier`] makes.
pub const MAX_TABLES: usize = 24;
/// Candidate tuples whose coverage is counted / whose placement is simulated per table.
const CAND_COVER: usize = 64;
const CAND_SIM: usize = 8;

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// [`tag`] of the bucket's hash, 0 if empty.
    tag: u32,
    /// Index of the bucket's first rule (the last has `CRule::last`).
    start: u32,
}

#[derive(Clone, Debug)]
struct Table {
    mask: Words,
    /// Mask all zero: one bucket, no hashing.
    wild: bool,
    min_id: u32,
    slot_mask: usize,
    slots: Vec<Slot>,
    rules: Vec<CRule>,
}

impl Table {
    #[inline(always)]
    fn lookup(&self, w: &Words, best: &mut u32) {
        if self.wild {
            return self.scan(0, w, best);
        }
        let h = hash(w, &self.mask);
        let t = tag(h);
        let mut i = home(t, self.slot_mask);
        loop {
            let s = self.slots[i];
            if s.tag == t {
                return self.scan(s.start as usize, w, best);
            }
            if s.tag == 0 {
                return;
            }
            i = (i + 1) & self.slot_mask;
        }
    }

    /// Verify the bucket starting at `start` in priority order.
    #[inline(always)]
    fn scan(&self, start: usize, w: &Words, best: &mut u32) {
        for r in &self.rules[start..] {
            if r.id >= *best {
                return;
            }
            if r.hit(w) {
                *best = r.id;
                return;
            }
            if r.last {
                return;
            }
        }
    }
}

/// The compiled classifier: immutable, `Send + Sync`; see the module docs.
#[derive(Clone, Debug)]
pub struct Classifier {
    tables: Vec<Table>,
    n_rules: usize,
}

/// Group the fitting rules of `rest` (in priority order) into buckets of at
/// most `cap`; returns (buckets by tag in first-seen order, left over).
fn place(
    comp: &[Compiled],
    rest: &[usize],
    t: &Tuple,
    cap: usize,
) -> (Vec<(u32, Vec<usize>)>, Vec<usize>) {
    let mask = tuple_mask(t);
    let mut index: HashMap<u32, usize> = HashMap::new();
    let mut buckets: Vec<(u32, Vec<usize>)> = Vec::new();
    let mut left = Vec::new();
    for &i in rest {
        if !fits(t, &comp[i].t) {
            left.push(i);
            continue;
        }
        let h = tag(hash(&comp[i].key, &mask));
        let b = *index.entry(h).or_insert_with(|| {
            buckets.push((h, Vec::new()));
            buckets.len() - 1
        });
        if buckets[b].1.len() < cap {
            buckets[b].1.push(i);
        } else {
            left.push(i);
        }
    }
    (buckets, left)
}

/// Pick the tuple of the next table.
fn choose(comp: &[Compiled], rest: &[usize]) -> Tuple {
    let mut freq: HashMap<Tuple, usize> = HashMap::new();
    for &i in rest {
        *freq.entry(relax(&comp[i].t)).or_default() += 1;
    }
    let mut cands: Vec<(Tuple, usize)> = freq.into_iter().collect();
    cands.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    cands.truncate(CAND_COVER);
    let mut cands: Vec<Tuple> = cands.into_iter().map(|c| c.0).collect();
    cands.push(min_tuple(comp, rest));
    let mut cov: Vec<(usize, Tuple)> = cands
        .iter()
        .map(|t| (rest.iter().filter(|&&i| fits(t, &comp[i].t)).count(), *t))
        .collect();
    cov.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    cov.truncate(CAND_SIM);
    let mut best = (0usize, cov[0].1);
    for (_, t) in cov {
        let mask = tuple_mask(&t);
        let mut count: HashMap<u32, usize> = HashMap::new();
        let mut placed = 0;
        for &i in rest {
            if fits(&t, &comp[i].t) {
                let c = count.entry(tag(hash(&comp[i].key, &mask))).or_default();
                if *c < BUCKET {
                    *c += 1;
                    placed += 1;
                }
            }
        }
        if placed > best.0 {
            best = (placed, t);
        }
    }
    best.1
}

impl Classifier {
    /// Compile `rules` (first match wins; index = position in `rules`).
    pub fn build(rules: &[Rule]) -> Classifier {
        let comp: Vec<Compiled> = rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| compile(i as u32, r))
            .collect();
        let mut rest: Vec<usize> = (0..comp.len()).collect();
        let mut tables = Vec::new();
        while !rest.is_empty() {
            let last = tables.len() + 1 == MAX_TABLES;
            let (t, cap) = if last {
                (min_tuple(&comp, &rest), usize::MAX)
            } else {
                (choose(&comp, &rest), BUCKET)
            };
            let (buckets, left) = place(&comp, &rest, &t, cap);
            debug_assert!(!buckets.is_empty());
            let nslots = (buckets.len() * 2).next_power_of_two().max(2);
            let mut slots = vec![Slot::default(); nslots];
            let mut crules = Vec::with_capacity(rest.len() - left.len());
            for (h, list) in &buckets {
                let mut i = home(*h, nslots - 1);
                while slots[i].tag != 0 {
                    i = (i + 1) & (nslots - 1);
                }
                slots[i] = Slot {
                    tag: *h,
                    start: crules.len() as u32,
                };
                crules.extend(list.iter().map(|&j| comp[j].c));
                if let Some(r) = crules.last_mut() {
                    r.last = true;
                }
            }
            let mask = tuple_mask(&t);
            tables.push(Table {
                mask,
                wild: mask == [0; W] && buckets.len() == 1,
                min_id: crules.iter().map(|r| r.id).min().unwrap_or(u32::MAX),
                slot_mask: nslots - 1,
                slots,
                rules: crules,
            });
            rest = left;
        }
        tables.sort_by_key(|t| t.min_id);
        Classifier {
            tables,
            n_rules: rules.len(),
        }
    }

    /// Index of the first rule that matches `k` (same as [`linear`]).
    #[inline]
    pub fn classify(&self, k: &AclKey) -> Option<u32> {
        self.classify_packed(&PackedKey(pack(k)))
    }

    /// [`Classifier::classify`] on a key already packed.
    #[inline]
    pub fn classify_packed(&self, k: &PackedKey) -> Option<u32> {
        let w = &k.0;
        let mut best = u32::MAX;
        for t in &self.tables {
            if t.min_id >= best {
                break;
            }
            t.lookup(w, &mut best);
        }
        (best != u32::MAX).then_some(best)
    }

    /// Heap bytes used by the compiled tables.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .tables
                .iter()
                .map(|t| {
                    std::mem::size_of::<Table>()
                        + t.slots.capacity() * std::mem::size_of::<Slot>()
                        + t.rules.capacity() * std::mem::size_of::<CRule>()
                })
                .sum::<usize>()
    }

    /// Number of rules given to [`Classifier::build`].
    pub fn len(&self) -> usize {
        self.n_rules
    }

    /// No rules.
    pub fn is_empty(&self) -> bool {
        self.n_rules == 0
    }

    /// Number of hash tables (diagnostics: the per-frame cost grows with it).
    pub fn tables(&self) -> usize {
        self.tables.len()
    }

    /// One line per table, in probe order: best rule index, rules, buckets,
    /// longest bucket and the key mask (diagnostics).
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            let buckets = t.slots.iter().filter(|s| s.tag != 0).count().max(1);
            let mut longest = 0;
            let mut run = 0;
            for r in &t.rules {
                run += 1;
                if r.last {
                    longest = longest.max(run);
                    run = 0;
                }
            }
            out += &format!(
                "min_id={:<6} rules={:<6} buckets={:<6} longest={:<4} mask={:016x?}\n",
                t.min_id,
                t.rules.len(),
                buckets,
                longest,
                t.mask
            );
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Benchmark rule sets.

/// Small deterministic PRNG (splitmix64) for [`bench_rules`].
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The rte_acl-style benchmark (same distribution as
/// `perf-peers/06-rte-acl.sh`): `n - 1` IPv4 5-tuple rules — random source and
/// destination prefixes of /16, /20, /24, /24, /28, /32, /32; source port a
/// range of 1..5000 ports 30 % of the time else 0–65535; destination port exact
/// 70 % else 1024–65535; protocol TCP or UDP — then a catch-all. The trace has
/// 65,536 keys: even ones built to hit a random rule (random host bits, ports
/// within its ranges), odd ones random.
pub fn bench_rules(n: usize, seed: u64) -> (Vec<Rule>, Vec<AclKey>) {
    let mut r = Rng(seed);
    let mut rules = Vec::with_capacity(n);
    let pfx = |r: &mut Rng| {
        let l = [16u8, 20, 24, 24, 28, 32, 32][r.below(7) as usize];
        let a = (r.next_u64() as u32) & (u32::MAX << (32 - l));
        Prefix {
            v6: false,
            addr: u128::from(a),
            len: l,
        }
    };
    for _ in 0..n.saturating_sub(1) {
        let s = pfx(&mut r);
        let d = pfx(&mut r);
        let sp = if r.chance(0.3) {
            let lo = r.below(60000) as u16;
            (lo, lo + r.range(1, 4999) as u16)
        } else {
            (0, 65535)
        };
        let dp = if r.chance(0.7) {
            let p = r.range(1, 65534) as u16;
            (p, p)
        } else {
            (1024, 65535)
        };
        let proto = if r.below(2) == 0 { 6 } else { 17 };
        rules.push(Rule {
            src_ip: Some(s),
            dst_ip: Some(d),
            src_port: Some(sp),
            dst_port: Some(dp),
            proto: Some(proto),
            ..Rule::default()
        });
    }
    if n > 0 {
        rules.push(Rule::default());
    }
    let real = n.saturating_sub(1);
    let mut trace = Vec::with_capacity(65536);
    for i in 0..65536 {
        let (s, d, sp, dp, proto) = if real > 0 && i % 2 == 0 {
            let x = &rules[r.below(real as u64) as usize];
            let host = |p: Prefix, r: &mut Rng| {
                let a = p.addr as u32;
                if p.len < 32 {
                    a | (r.next_u64() as u32 & (u32::MAX >> p.len))
                } else {
                    a
                }
            };
            let (sp, dp) = (
                x.src_port.unwrap_or((0, 65535)),
                x.dst_port.unwrap_or((0, 65535)),
            );
            let s = host(x.src_ip.unwrap_or_default(), &mut r);
            let d = host(x.dst_ip.unwrap_or_default(), &mut r);
            (
                s,
                d,
                r.range(u64::from(sp.0), u64::from(sp.1)) as u16,
                r.range(u64::from(dp.0), u64::from(dp.1)) as u16,
                x.proto.unwrap_or(6),
            )
        } else {
            (
                r.next_u64() as u32,
                r.next_u64() as u32,
                r.below(65536) as u16,
                r.below(65536) as u16,
                if r.below(2) == 0 { 6 } else { 17 },
            )
        };
        let tcp = if proto == 6 { HAS_TCP_FLAGS } else { 0 };
        trace.push(AclKey {
            ethertype: 0x0800,
            ip: IpVer::V4,
            src_ip: u128::from(s),
            dst_ip: u128::from(d),
            proto,
            src_port: sp,
            dst_port: dp,
            has: HAS_ETH | HAS_PROTO | HAS_PORTS | tcp,
            ..AclKey::default()
        });
    }
    (rules, trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Mac;
    use crate::wire::l4::tcp_flags;
    use crate::wire::{parse_frame, FrameBuilder};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A4: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
    const B4: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 9);

    fn a6(last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)
    }

    /// Key from bytes; also checks it equals the `parse_frame` route.
    fn key(f: &[u8]) -> AclKey {
        let k = AclKey::from_frame(f, 10, 3);
        let r = match parse_frame(f) {
            Ok(fi) => AclKey::from_info(&fi, 10, 3),
            Err(_) => AclKey {
                vlan: 10,
                pcp: 3,
                ..AclKey::default()
            },
        };
        assert_eq!(k, r, "from_frame != from_info for {f:02x?}");
        k
    }

    /// Does the single rule match? Checks classifier == linear too.
    fn hit(r: Rule, k: &AclKey) -> bool {
        let rules = [r];
        let l = linear(&rules, k);
        assert_eq!(Classifier::build(&rules).classify(k), l);
        l == Some(0)
    }

    fn v4(addr: Ipv4Addr, len: u8) -> Prefix {
        Prefix {
            v6: false,
            addr: u128::from(u32::from(addr)),
            len,
        }
    }

    fn v6(addr: Ipv6Addr, len: u8) -> Prefix {
        Prefix {
            v6: true,
            addr: u128::from(addr),
            len,
        }
    }

    fn tcp4() -> Vec<u8> {
        FrameBuilder::new()
            .dscp(46)
            .tcp4(A4, B4, 1234, 80, tcp_flags::SYN | tcp_flags::ACK)
    }

    #[test]
    fn key_tcp4() {
        let k = key(&tcp4());
        assert_eq!(k.ip, IpVer::V4);
        assert_eq!(k.src_ip, u128::from(u32::from(A4)));
        assert_eq!(k.dst_ip, u128::from(u32::from(B4)));
        assert_eq!((k.proto, k.dscp, k.src_port, k.dst_port), (6, 46, 1234, 80));
        assert_eq!(k.tcp_flags, 0x12);
        assert_eq!(k.has, HAS_ETH | HAS_PROTO | HAS_PORTS | HAS_TCP_FLAGS);
        assert_eq!(
            (k.ethertype, k.vlan, k.pcp, k.frag),
            (0x0800, 10, 3, Frag::NotFragment)
        );
    }

    #[test]
    fn fields_l2() {
        let f = FrameBuilder::new()
            .src(Mac([2, 0, 0, 0, 0, 0x11]))
            .dst(Mac([0x33, 0x33, 0, 0, 0, 1]))
            .vlan(10)
            .udp4(A4, B4, 1, 2);
        let k = key(&f);
        assert_eq!(k.src_mac, 0x0200_0000_0011);
        assert_eq!(k.dst_mac, 0x3333_0000_0001);
        let r = |f: fn(&mut Rule)| {
            let mut r = Rule::default();
            f(&mut r);
            r
        };
        assert!(hit(r(|r| r.src_mac = Some((0x0200_0000_0011, MAC48))), &k));
        assert!(!hit(r(|r| r.src_mac = Some((0x0200_0000_0012, MAC48))), &k));
        // Multicast bit only.
        assert!(hit(
            r(|r| r.dst_mac = Some((0x0100_0000_0000, 0x0100_0000_0000))),
            &k
        ));
        assert!(!hit(
            r(|r| r.src_mac = Some((0x0100_0000_0000, 0x0100_0000_0000))),
            &k
        ));
        // Mask bits above 48 are ignored; mask 0 matches any frame with Ethernet.
        assert!(hit(
            r(|r| r.src_mac = Some((0xffff_0200_0000_0011, !0))),
            &k
        ));
        assert!(hit(r(|r| r.dst_mac = Some((0, 0))), &k));
        assert!(hit(r(|r| r.vlan = Some(10)), &k));
        assert!(!hit(r(|r| r.vlan = Some(11)), &k));
        assert!(hit(r(|r| r.pcp = Some(3)), &k));
        assert!(!hit(r(|r| r.pcp = Some(0)), &k));
        // Innermost ethertype, after the tag.
        assert!(hit(r(|r| r.ethertype = Some(0x0800)), &k));
        assert!(!hit(r(|r| r.ethertype = Some(0x8100)), &k));
        // Runt: only vlan/pcp are there.
        let k = key(&f[..13]);
        assert!(hit(r(|r| r.vlan = Some(10)), &k));
        assert!(!hit(r(|r| r.dst_mac = Some((0, 0))), &k));
        assert!(!hit(r(|r| r.ethertype = Some(0)), &k));
        // Tag cut short: same.
        let k = key(&f[..16]);
        assert_eq!(k.has, 0);
        assert!(!hit(r(|r| r.src_mac = Some((0, 0))), &k));
    }

    #[test]
    fn fields_l3_l4() {
        let k = key(&tcp4());
        let base = Rule::default();
        let with = |f: &dyn Fn(&mut Rule)| {
            let mut r = base.clone();
            f(&mut r);
            r
        };
        assert!(hit(
            with(&|r| r.src_ip = Some(v4(Ipv4Addr::new(10, 1, 0, 0), 16))),
            &k
        ));
        assert!(!hit(
            with(&|r| r.src_ip = Some(v4(Ipv4Addr::new(10, 2, 0, 0), 16))),
            &k
        ));
        assert!(hit(with(&|r| r.dst_ip = Some(v4(B4, 32))), &k));
        // Bits past the length are ignored; length clamped to 32.
        assert!(hit(
            with(&|r| r.dst_ip = Some(v4(Ipv4Addr::new(192, 168, 127, 255), 17))),
            &k
        ));
        assert!(hit(with(&|r| r.dst_ip = Some(v4(B4, 200))), &k));
        assert!(hit(
            with(&|r| r.dst_ip = Some(v4(Ipv4Addr::UNSPECIFIED, 0))),
            &k
        ));
        // A V6 prefix never matches IPv4, even ::/0.
        assert!(!hit(
            with(&|r| r.dst_ip = Some(v6(Ipv6Addr::UNSPECIFIED, 0))),
            &k
        ));
        assert!(hit(with(&|r| r.proto = Some(6)), &k));
        assert!(!hit(with(&|r| r.proto = Some(17)), &k));
        assert!(hit(with(&|r| r.dscp = Some(46)), &k));
        assert!(!hit(with(&|r| r.dscp = Some(0)), &k));
        assert!(hit(with(&|r| r.src_port = Some((1234, 1234))), &k));
        assert!(hit(with(&|r| r.src_port = Some((1000, 2000))), &k));
        assert!(hit(with(&|r| r.src_port = Some((0, 65535))), &k));
        assert!(!hit(with(&|r| r.src_port = Some((1235, 65535))), &k));
        assert!(hit(with(&|r| r.dst_port = Some((80, 80))), &k));
        assert!(!hit(with(&|r| r.dst_port = Some((81, 80))), &k)); // empty range
        assert!(!hit(with(&|r| r.dst_port = Some((0, 79))), &k));
        assert!(hit(with(&|r| r.tcp_flags = Some((0x02, 0x02))), &k)); // SYN set
        assert!(!hit(with(&|r| r.tcp_flags = Some((0x02, 0x12))), &k)); // SYN without ACK
        assert!(hit(with(&|r| r.tcp_flags = Some((0xff, 0))), &k));
        assert!(!hit(with(&|r| r.icmp_type = Some(0)), &k)); // not ICMP
        assert!(hit(with(&|r| r.fragment = Some(false)), &k));
        assert!(!hit(with(&|r| r.fragment = Some(true)), &k));
        // Contradictory rule: V4 source, V6 destination.
        assert!(!hit(
            with(&|r| {
                r.src_ip = Some(v4(A4, 0));
                r.dst_ip = Some(v6(a6(0), 0));
            }),
            &k
        ));
        // Combined.
        assert!(hit(
            with(&|r| {
                r.src_ip = Some(v4(A4, 24));
                r.dst_ip = Some(v4(B4, 20));
                r.proto = Some(6);
                r.src_port = Some((1024, 65535));
                r.dst_port = Some((80, 80));
                r.ethertype = Some(0x0800);
            }),
            &k
        ));
    }

    #[test]
    fn udp_icmp_non_ip() {
        let k = key(&FrameBuilder::new().udp4(A4, B4, 53, 5353));
        assert_eq!(k.has, HAS_ETH | HAS_PROTO | HAS_PORTS);
        let r = |f: fn(&mut Rule)| {
            let mut r = Rule::default();
            f(&mut r);
            r
        };
        assert!(hit(r(|r| r.dst_port = Some((5353, 5353))), &k));
        assert!(!hit(r(|r| r.tcp_flags = Some((0, 0))), &k)); // UDP has no flags
        let k = key(&FrameBuilder::new().icmp4(A4, B4, 3, 4, 0));
        assert_eq!(
            (k.has, k.icmp_type, k.icmp_code),
            (HAS_ETH | HAS_PROTO | HAS_ICMP, 3, 4)
        );
        assert!(hit(r(|r| r.icmp_type = Some(3)), &k));
        assert!(hit(r(|r| r.icmp_code = Some(4)), &k));
        assert!(!hit(r(|r| r.icmp_code = Some(0)), &k));
        assert!(!hit(r(|r| r.src_port = Some((0, 65535))), &k));
        let k = key(&FrameBuilder::new().icmp6(a6(1), a6(2), 135, 0, 0));
        assert_eq!((k.ip, k.proto, k.icmp_type), (IpVer::V6, 58, 135));
        assert!(hit(r(|r| r.icmp_type = Some(135)), &k));
        // Non-IP: proto, dscp, fragment, prefixes never match.
        let k = key(&FrameBuilder::new().ethertype(0x88b5).payload_len(50).raw());
        assert_eq!((k.ip, k.has, k.ethertype), (IpVer::None, HAS_ETH, 0x88b5));
        assert!(!hit(r(|r| r.proto = Some(0)), &k));
        assert!(!hit(r(|r| r.dscp = Some(0)), &k));
        assert!(!hit(r(|r| r.fragment = Some(false)), &k));
        assert!(!hit(r(|r| r.src_ip = Some(Prefix::default())), &k));
        assert!(hit(r(|r| r.ethertype = Some(0x88b5)), &k));
    }

    #[test]
    fn truncated() {
        let f = tcp4();
        let l3 = 14;
        let dport = Rule {
            dst_port: Some((80, 80)),
            ..Rule::default()
        };
        let proto = Rule {
            proto: Some(6),
            ..Rule::default()
        };
        // Whole TCP header (20 bytes) ends at 14 + 20 + 20.
        let k = key(&f[..l3 + 40]);
        assert!(hit(dport.clone(), &k));
        // One byte short: ports and flags absent, IP still there.
        let k = key(&f[..l3 + 39]);
        assert_eq!((k.ip, k.has), (IpVer::V4, HAS_ETH | HAS_PROTO));
        assert!(!hit(dport.clone(), &k));
        assert!(hit(proto.clone(), &k));
        // IP header cut: no IP at all.
        let k = key(&f[..l3 + 19]);
        assert_eq!((k.ip, k.has, k.src_ip), (IpVer::None, HAS_ETH, 0));
        assert!(!hit(proto, &k));
        // Every prefix is safe and agrees with parse_frame.
        for n in 0..f.len() {
            key(&f[..n]);
        }
        // IPv4 total length shorter than header + TCP: padding is not L4.
        let mut g = f.clone();
        g[l3 + 3] = 20;
        assert_eq!(key(&g).has, HAS_ETH | HAS_PROTO);
        // TCP data offset < 5: malformed, no ports.
        let mut g = f.clone();
        g[l3 + 20 + 12] = 0x40;
        assert_eq!(key(&g).has, HAS_ETH | HAS_PROTO);
    }

    #[test]
    fn ipv6_ext_headers() {
        use crate::wire::ipv6::ext;
        let f = FrameBuilder::new()
            .ipv6_ext(ext::HOP_BY_HOP)
            .ipv6_ext(ext::ROUTING)
            .ipv6_ext(ext::AH)
            .ipv6_ext(ext::DEST_OPTS)
            .tcp6(a6(1), a6(2), 4000, 443, tcp_flags::ACK);
        let k = key(&f);
        assert_eq!(
            (k.ip, k.proto, k.src_port, k.dst_port),
            (IpVer::V6, 6, 4000, 443)
        );
        assert_eq!(k.has, HAS_ETH | HAS_PROTO | HAS_PORTS | HAS_TCP_FLAGS);
        let r = Rule {
            src_ip: Some(v6(a6(0), 64)),
            dst_ip: Some(v6(a6(2), 128)),
            proto: Some(6),
            dst_port: Some((443, 443)),
            ..Rule::default()
        };
        assert!(hit(r.clone(), &k));
        assert!(!hit(
            Rule {
                src_ip: Some(v4(Ipv4Addr::UNSPECIFIED, 0)),
                ..Rule::default()
            },
            &k
        ));
        // Chain cut inside an extension header: no protocol, no ports.
        let hdrs = 14 + 40 + 8 + 8 + 12 + 8;
        let k = key(&f[..hdrs - 1]);
        assert_eq!((k.ip, k.has), (IpVer::V6, HAS_ETH));
        assert!(!hit(r.clone(), &k));
        assert!(hit(
            Rule {
                dst_ip: Some(v6(a6(2), 128)),
                ..Rule::default()
            },
            &k
        ));
        for n in 0..f.len() {
            key(&f[..n]);
        }
        // Nine extension headers: too long, protocol unknown.
        let mut b = FrameBuilder::new();
        for _ in 0..9 {
            b = b.ipv6_ext(ext::DEST_OPTS);
        }
        let k = key(&b.udp6(a6(1), a6(2), 1, 2));
        assert_eq!((k.ip, k.has), (IpVer::V6, HAS_ETH));
    }

    #[test]
    fn fragments() {
        let first = key(&FrameBuilder::new().fragment(0, true).udp4(A4, B4, 7, 9));
        let later = key(&FrameBuilder::new().fragment(100, false).udp4(A4, B4, 7, 9));
        let whole = key(&FrameBuilder::new().udp4(A4, B4, 7, 9));
        assert_eq!(
            (first.frag, later.frag, whole.frag),
            (Frag::First, Frag::Later, Frag::NotFragment)
        );
        assert_eq!(later.has, HAS_ETH | HAS_PROTO);
        let frag = |f| Rule {
            fragment: Some(f),
            ..Rule::default()
        };
        let port = Rule {
            dst_port: Some((9, 9)),
            ..Rule::default()
        };
        assert!(hit(frag(true), &first) && hit(frag(true), &later) && !hit(frag(true), &whole));
        assert!(!hit(frag(false), &first) && !hit(frag(false), &later) && hit(frag(false), &whole));
        assert!(hit(port.clone(), &first) && !hit(port.clone(), &later));
        // IPv6 fragment header.
        let f6 = key(&FrameBuilder::new()
            .fragment(0, true)
            .udp6(a6(1), a6(2), 7, 9));
        let l6 = key(&FrameBuilder::new()
            .fragment(8, true)
            .udp6(a6(1), a6(2), 7, 9));
        assert_eq!((f6.frag, f6.proto, f6.dst_port), (Frag::First, 17, 9));
        assert_eq!(
            (l6.frag, l6.proto, l6.has),
            (Frag::Later, 17, HAS_ETH | HAS_PROTO)
        );
        assert!(hit(port.clone(), &f6) && !hit(port, &l6));
        assert!(hit(frag(true), &l6));
    }

    #[test]
    fn empty_and_first_match() {
        let k = key(&tcp4());
        let c = Classifier::build(&[]);
        assert_eq!((c.classify(&k), c.len(), c.is_empty()), (None, 0, true));
        assert_eq!(linear(&[], &k), None);
        let wide = Rule {
            src_ip: Some(v4(Ipv4Addr::new(10, 0, 0, 0), 8)),
            ..Rule::default()
        };
        let narrow = Rule {
            src_ip: Some(v4(A4, 32)),
            dst_port: Some((80, 80)),
            ..Rule::default()
        };
        let other = Rule {
            proto: Some(17),
            ..Rule::default()
        };
        for (rules, want) in [
            (vec![wide.clone(), narrow.clone(), Rule::default()], Some(0)),
            (vec![narrow.clone(), wide.clone(), Rule::default()], Some(0)),
            (vec![other.clone(), narrow.clone(), wide.clone()], Some(1)),
            (vec![other.clone(), other.clone(), Rule::default()], Some(2)),
            (vec![other.clone()], None),
        ] {
            let c = Classifier::build(&rules);
            assert_eq!(c.len(), rules.len());
            assert_eq!(linear(&rules, &k), want);
            assert_eq!(c.classify(&k), want);
        }
        // Many identical rules (one long bucket) and duplicates.
        let mut rules = vec![other; 500];
        rules.push(narrow);
        assert_eq!(Classifier::build(&rules).classify(&k), Some(500));
    }

    #[test]
    fn bench_set_agrees() {
        for n in [1, 2, 50, 300] {
            let (rules, trace) = bench_rules(n, 7);
            assert_eq!(rules.len(), n);
            let c = Classifier::build(&rules);
            for k in &trace[..2000] {
                assert_eq!(c.classify(k), linear(&rules, k));
            }
        }
        let (rules, trace) = bench_rules(300, 7);
        let hits = trace
            .iter()
            .step_by(2)
            .filter(|k| linear(&rules, k) != Some(299))
            .count();
        assert!(hits > 30000, "even keys should hit a real rule: {hits}");
    }

    #[test]
    fn send_sync() {
        fn ok<T: Send + Sync>() {}
        ok::<Classifier>();
    }
}
