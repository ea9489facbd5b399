//! Remarking in place: 802.1Q PCP, IPv4 DSCP (RFC 1624 checksum update), IPv6 traffic class.
//!
//! Every function works on the frame bytes as they are in the buffer, is
//! given the L3 offset where it needs one (the pipeline's parse already knows
//! it), checks lengths first and returns `false` — leaving the frame untouched
//! — when the frame is too short, of the wrong kind, or the value is out of
//! range. None of them panics, whatever the bytes are. ECN bits are kept.

use crate::wire::checksum;
use crate::wire::vlan::is_tpid;

/// Offset of the first TPID in an Ethernet frame.
const TPID_OFF: usize = 12;

/// Rewrite the PCP of the 802.1Q/802.1ad tag at byte `tag_off` (the TPID's
/// offset; 12 for the outer tag), keeping DEI and VID. False if the frame
/// has no tag there, is too short, or `pcp > 7`.
#[inline]
pub fn set_pcp_at(frame: &mut [u8], tag_off: usize, pcp: u8) -> bool {
    if pcp > 7 {
        return false;
    }
    let Some(tag) = tag_off
        .checked_add(4)
        .and_then(|end| frame.get_mut(tag_off..end))
    else {
        return false;
    };
    if !is_tpid(u16::from_be_bytes([tag[0], tag[1]])) {
        return false;
    }
    tag[2] = (tag[2] & 0x1f) | (pcp << 5);
    true
}

/// Rewrite the PCP of the outer VLAN tag (TPID at offset 12). See [`set_pcp_at`].
#[inline]
pub fn set_pcp(frame: &mut [u8], pcp: u8) -> bool {
    set_pcp_at(frame, TPID_OFF, pcp)
}

/// Set the DSCP of the IPv4 header at `l3`, keeping ECN, and update the
/// header checksum incrementally (RFC 1624 eqn. 3). False if the bytes at
/// `l3` are not a complete IPv4 header (version 4, IHL ≥ 5, all IHL words
/// present) or `dscp > 63`.
#[inline]
pub fn set_dscp_ipv4(frame: &mut [u8], l3: usize, dscp: u8) -> bool {
    if dscp > 63 {
        return false;
    }
    let Some(h) = frame.get_mut(l3..) else {
        return false;
    };
    if h.len() < 20 || h[0] >> 4 != 4 {
        return false;
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 || h.len() < ihl {
        return false;
    }
    let tos = (dscp << 2) | (h[1] & 0x03);
    if tos == h[1] {
        return true;
    }
    let old = u16::from_be_bytes([h[0], h[1]]);
    let new = u16::from_be_bytes([h[0], tos]);
    let sum = u16::from_be_bytes([h[10], h[11]]);
    h[1] = tos;
    h[10..12].copy_from_slice(&checksum::update(sum, old, new).to_be_bytes());
    true
}

/// Set the DSCP (upper six bits of the traffic class) of the IPv6 header at
/// `l3`, keeping ECN. IPv6 has no header checksum and the transport
/// pseudo-header does not cover the traffic class, so nothing else changes.
/// False if fewer than 40 bytes follow `l3`, the version is not 6, or `dscp > 63`.
#[inline]
pub fn set_dscp_ipv6(frame: &mut [u8], l3: usize, dscp: u8) -> bool {
    if dscp > 63 {
        return false;
    }
    let Some(h) = frame.get_mut(l3..) else {
        return false;
    };
    if h.len() < 40 || h[0] >> 4 != 6 {
        return false;
    }
    // Traffic class = low nibble of byte 0 : high nibble of byte 1.
    let ecn = (h[1] >> 4) & 0x03;
    let tc = (dscp << 2) | ecn;
    h[0] = (h[0] & 0xf0) | (tc >> 4);
    h[1] = (h[1] & 0x0f) | (tc << 4);
    true
}

/// Set the DSCP of the IP header at `l3`, IPv4 or IPv6 by its version nibble.
#[inline]
pub fn set_dscp(frame: &mut [u8], l3: usize, dscp: u8) -> bool {
    match frame.get(l3).map(|b| b >> 4) {
        Some(4) => set_dscp_ipv4(frame, l3, dscp),
        Some(6) => set_dscp_ipv6(frame, l3, dscp),
        _ => false,
    }
}

/// Apply a meter's remark action: `pcp` to the outer tag, `dscp` to the IP
/// header at `l3` (`None` when the frame has no IP header). Each requested
/// rewrite that cannot be applied is skipped; returns true only if all were applied.
#[inline]
pub fn remark(frame: &mut [u8], l3: Option<usize>, pcp: Option<u8>, dscp: Option<u8>) -> bool {
    let mut ok = true;
    if let Some(p) = pcp {
        ok &= set_pcp(frame, p);
    }
    if let Some(d) = dscp {
        ok &= l3.is_some_and(|l3| set_dscp(frame, l3, d));
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A tagged IPv4/UDP frame: 14 + 4 + 20 (+ options) + 8.
    fn v4_frame(tos: u8, opts: usize, seed: u8) -> Vec<u8> {
        let mut f = vec![0u8; 18];
        f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&0xa00au16.to_be_bytes()); // PCP 5, DEI 0, VID 10
        f[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
        let ihl = 5 + opts / 4;
        let mut ip = vec![0u8; ihl * 4];
        ip[0] = 0x40 | ihl as u8;
        ip[1] = tos;
        ip[2..4].copy_from_slice(&((ihl * 4 + 8) as u16).to_be_bytes());
        ip[4] = seed;
        ip[5] = seed.wrapping_mul(31);
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, seed, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, seed, 2]);
        for (i, b) in ip[20..].iter_mut().enumerate() {
            *b = seed.wrapping_add(i as u8);
        }
        let c = checksum::internet(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0u8; 8]);
        f
    }

    fn v4_ok(f: &[u8], l3: usize) -> bool {
        let ihl = usize::from(f[l3] & 0x0f) * 4;
        let mut h = f[l3..l3 + ihl].to_vec();
        let stored = u16::from_be_bytes([h[10], h[11]]);
        h[10] = 0;
        h[11] = 0;
        checksum::internet(&h) == stored && checksum::internet(&f[l3..l3 + ihl]) == 0
    }

    #[test]
    fn pcp_rewrite_keeps_dei_vid() {
        let mut f = v4_frame(0, 0, 1);
        f[14] |= 0x10; // DEI
        assert!(set_pcp(&mut f, 3));
        assert_eq!(u16::from_be_bytes([f[14], f[15]]), (3 << 13) | 0x1000 | 10);
        assert!(!set_pcp(&mut f, 8));
        // Untagged: the ethertype is not a TPID.
        let mut u = f.clone();
        u[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert!(!set_pcp(&mut u, 1));
        // Inner tag of a QinQ frame.
        let mut q = f.clone();
        q[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
        q.splice(16..16, [0x81, 0x00, 0x00, 0x14]);
        assert!(set_pcp_at(&mut q, 16, 6));
        assert_eq!(q[18] >> 5, 6);
        assert!(set_pcp(&mut q, 1));
        assert_eq!(q[14] >> 5, 1);
    }

    #[test]
    fn short_frames_return_false() {
        let full = v4_frame(0, 0, 3);
        for n in 0..full.len() {
            let mut f = full[..n].to_vec();
            assert_eq!(set_pcp(&mut f, 1), n >= 16);
            assert_eq!(set_dscp_ipv4(&mut f, 18, 46), n >= 38);
            assert!(!set_dscp_ipv6(&mut f, 18, 46));
            assert!(!set_dscp(&mut f, usize::MAX, 46));
            assert!(!set_pcp_at(&mut f, usize::MAX - 1, 1));
        }
        let mut v6 = vec![0x60u8; 40];
        assert!(set_dscp_ipv6(&mut v6, 0, 10));
        assert!(!set_dscp_ipv6(&mut v6[..39], 0, 10));
        // IHL that claims options beyond the end, and IHL < 5.
        let mut f = full.clone();
        f.resize(60, 0);
        f[18] = 0x4f; // 60-byte header, 42 bytes present
        assert!(!set_dscp_ipv4(&mut f, 18, 1));
        f[18] = 0x44;
        assert!(!set_dscp_ipv4(&mut f, 18, 1));
    }

    #[test]
    fn ipv4_dscp_and_checksum() {
        let mut f = v4_frame(0b0000_0011, 0, 9); // ECN CE
        assert!(v4_ok(&f, 18));
        assert!(set_dscp(&mut f, 18, 46)); // EF
        assert_eq!(f[19], (46 << 2) | 3);
        assert!(v4_ok(&f, 18));
        assert!(!set_dscp_ipv4(&mut f, 18, 64));
        assert!(remark(&mut f, Some(18), Some(7), Some(0)));
        assert_eq!((f[14] >> 5, f[19]), (7, 3));
        assert!(v4_ok(&f, 18));
        assert!(!remark(&mut f, None, None, Some(1)));
    }

    #[test]
    fn ipv6_traffic_class() {
        let mut h = [0u8; 40];
        h[0] = 0x6a; // TC high nibble 0xa
        h[1] = 0xb5; // TC low nibble 0xb (ECN 3), flow label 0x5....
        h[2] = 0x12;
        h[3] = 0x34;
        assert!(set_dscp(&mut h, 0, 0x15));
        let tc = ((h[0] & 0x0f) << 4) | (h[1] >> 4);
        assert_eq!(tc, (0x15 << 2) | 3);
        assert_eq!((h[0] >> 4, h[1] & 0x0f, h[2], h[3]), (6, 5, 0x12, 0x34));
    }

    proptest! {
        #[test]
        fn ipv4_incremental_equals_full(tos: u8, dscp in 0u8..64, opts in 0usize..11, seed: u8,
                                        ttl: u8, len: u16) {
            let mut f = v4_frame(tos, opts * 4, seed);
            f[18 + 8] = ttl;
            f[18 + 2..18 + 4].copy_from_slice(&len.to_be_bytes());
            let ihl = 20 + opts * 4;
            f[28] = 0; f[29] = 0;
            let c = checksum::internet(&f[18..18 + ihl]);
            f[28..30].copy_from_slice(&c.to_be_bytes());
            prop_assert!(set_dscp_ipv4(&mut f, 18, dscp));
            prop_assert_eq!(f[19] >> 2, dscp);
            prop_assert_eq!(f[19] & 3, tos & 3);
            prop_assert!(v4_ok(&f, 18));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80), l3 in 0usize..90,
                        v: u8) {
            let mut b = bytes.clone();
            let _ = set_pcp(&mut b, v);
            let _ = set_pcp_at(&mut b, l3, v);
            let _ = set_dscp(&mut b, l3, v);
            let _ = set_dscp_ipv4(&mut b, l3, v);
            let _ = set_dscp_ipv6(&mut b, l3, v);
            let _ = remark(&mut b, Some(l3), Some(v), Some(v));
        }
    }
}
