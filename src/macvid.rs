//! A read-only (MAC, VID) → index map for the fast path: open addressing,
//! built once per snapshot, one or two cache lines per lookup, no hashing
//! library. Used for the VSI table, the VSIs of each (port, VLAN) and the
//! registered multicast groups.

/// Immutable map from (MAC, VID) to an index.
#[derive(Clone, Debug, Default)]
pub struct MacVidMap {
    keys: Box<[u64]>,
    vals: Box<[u32]>,
    mask: usize,
}

#[inline(always)]
fn key(mac: u64, vid: u16) -> u64 {
    (1 << 63) | ((vid as u64 & 0xfff) << 48) | (mac & 0xffff_ffff_ffff)
}

impl MacVidMap {
    /// Build from (mac, vid, value) triples (later duplicates win).
    pub fn build(entries: &[(u64, u16, u32)]) -> MacVidMap {
        let cap = (entries.len() * 2).next_power_of_two().max(8);
        let mut keys = vec![0u64; cap].into_boxed_slice();
        let mut vals = vec![0u32; cap].into_boxed_slice();
        let mask = cap - 1;
        for &(m, v, x) in entries {
            let k = key(m, v);
            let mut i = Self::slot(k, mask);
            while keys[i] != 0 && keys[i] != k {
                i = (i + 1) & mask;
            }
            keys[i] = k;
            vals[i] = x;
        }
        MacVidMap { keys, vals, mask }
    }

    #[inline(always)]
    fn slot(k: u64, mask: usize) -> usize {
        (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
    }

    /// Look up.
    #[inline(always)]
    pub fn get(&self, mac: u64, vid: u16) -> Option<u32> {
        if self.keys.is_empty() {
            return None;
        }
        let k = key(mac, vid);
        let mut i = Self::slot(k, self.mask);
        loop {
            let s = self.keys[i];
            if s == k {
                return Some(self.vals[i]);
            }
            if s == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn lookups() {
        let e: Vec<(u64, u16, u32)> = (0..1000)
            .map(|i| (0x0200_0000_0000 + i, (i % 7) as u16 + 1, i as u32))
            .collect();
        let m = MacVidMap::build(&e);
        for &(mac, vid, x) in &e {
            assert_eq!(m.get(mac, vid), Some(x));
            assert_eq!(m.get(mac, vid + 100), None);
        }
        assert_eq!(MacVidMap::default().get(1, 1), None);
    }
}
