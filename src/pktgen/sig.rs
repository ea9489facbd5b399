//! The signature at the end of every generated frame.
//!
//! 14 bytes, big-endian: magic `0x4870` (2), stream id (2), sequence number
//! (low 32 bits, 4), TSC timestamp (low 48 bits, 6). It sits in the last
//! bytes of the L4 payload, so the receiver finds it from the frame's end
//! whatever tags the switches pushed or popped on the way.

/// Bytes of the signature.
pub const SIG_LEN: usize = 14;
/// The first two bytes.
pub const MAGIC: u16 = 0x4870;
/// Timestamps keep this many low bits of the TSC.
pub const TS_BITS: u32 = 48;
/// Mask of [`TS_BITS`].
pub const TS_MASK: u64 = (1 << TS_BITS) - 1;

/// A decoded signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Stream id.
    pub stream: u16,
    /// Sequence number modulo 2^32.
    pub seq: u32,
    /// TSC at transmission modulo 2^48 (0 when timestamps are off).
    pub ts: u64,
}

/// Write `s` into `out` (exactly [`SIG_LEN`] bytes).
#[inline(always)]
pub fn write(out: &mut [u8; SIG_LEN], s: &Signature) {
    out[0..2].copy_from_slice(&MAGIC.to_be_bytes());
    out[2..4].copy_from_slice(&s.stream.to_be_bytes());
    out[4..8].copy_from_slice(&s.seq.to_be_bytes());
    out[8..14].copy_from_slice(&(s.ts & TS_MASK).to_be_bytes()[2..8]);
}

/// Read the signature at the end of `frame`, if it carries one.
#[inline(always)]
pub fn read(frame: &[u8]) -> Option<Signature> {
    if frame.len() < SIG_LEN {
        return None;
    }
    let b = &frame[frame.len() - SIG_LEN..];
    if u16::from_be_bytes([b[0], b[1]]) != MAGIC {
        return None;
    }
    let mut ts = [0u8; 8];
    ts[2..8].copy_from_slice(&b[8..14]);
    Some(Signature {
        stream: u16::from_be_bytes([b[2], b[3]]),
        seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ts: u64::from_be_bytes(ts),
    })
}

/// Ticks from a 48-bit timestamp `sent` to the TSC reading `now`.
#[inline(always)]
pub fn elapsed(sent: u64, now: u64) -> u64 {
    (now & TS_MASK).wrapping_sub(sent) & TS_MASK
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn signature_round_trip_and_wrap() {
        let s = Signature {
            stream: 513,
            seq: 0xdead_beef,
            ts: 0x1234_5678_9abc,
        };
        let mut b = [0u8; SIG_LEN];
        write(&mut b, &s);
        let mut f = vec![0xaa; 40];
        f.extend_from_slice(&b);
        assert_eq!(read(&f), Some(s));
        f[40] ^= 1;
        assert_eq!(read(&f), None, "a wrong magic is not ours");
        assert_eq!(elapsed(TS_MASK - 1, 3 | (5 << 48)), 5, "48-bit wrap");
    }
}
