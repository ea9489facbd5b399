//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use std::net::{Ipv4Addr, Ipv6Addr};

/// One's-complement sum of `data` as big-endian 16-bit words (odd tail padded
/// with zero), not folded. Add several sums with `wrapping_add`, then [`fold`].
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    while acc > 0xffff_ffff {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// Fold a 32-bit sum to 16 bits (end-around carry), not complemented.
pub fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Add two partial sums with end-around carry.
pub fn combine(a: u32, b: u32) -> u32 {
    let (s, c) = a.overflowing_add(b);
    s + u32::from(c)
}

/// The checksum to store: complement of the folded sum of `data`.
pub fn internet(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Partial sum of the IPv4 pseudo-header (RFC 793/768).
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let mut s = sum(&src.octets());
    s = combine(s, sum(&dst.octets()));
    combine(s, u32::from(proto) + u32::from(len))
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1).
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: u32) -> u32 {
    let mut s = sum(&src.octets());
    s = combine(s, sum(&dst.octets()));
    s = combine(s, (len >> 16) + (len & 0xffff));
    combine(s, u32::from(proto))
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered
/// data changed from `old` to `new`.
pub fn update(csum: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!csum) + u32::from(!old) + u32::from(new);
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1071 §3 example.
    static DATA: [u8; 8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];

    #[test]
    fn rfc1071_example() {
        assert_eq!(fold(sum(&DATA)), 0xddf2);
        assert_eq!(internet(&DATA), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_matches_full() {
        let mut d = DATA;
        let c = internet(&d);
        d[2] = 0x12;
        d[3] = 0x34;
        assert_eq!(update(c, 0xf203, 0x1234), internet(&d));
    }
}
