//! A read-only (MAC, VID) → value map for the fast path: open addressing,
//! built once per snapshot, no hashing library. Key and value sit side by
//! side in one slot, so a hit reads one cache line (two only when a probe
//! run crosses a line). Used for the VSI table (the value is the VSI's
//! compact fast-path record), the VSIs of each (port, VLAN) and the
//! registered multicast groups.

/// Immutable map from (MAC, VID) to a small `Copy` value (default: an index).
#[derive(Clone, Debug)]
pub struct MacVidMap<V: Copy = u32> {
    slots: Box<[(u64, V)]>,
    mask: usize,
}

impl<V: Copy> Default for MacVidMap<V> {
    fn default() -> Self {
        MacVidMap {
            slots: Box::new([]),
            mask: 0,
        }
    }
}

#[inline(always)]
fn key(mac: u64, vid: u16) -> u64 {
    (1 << 63) | ((vid as u64 & 0xfff) << 48) | (mac & 0xffff_ffff_ffff)
}

impl<V: Copy + Default> MacVidMap<V> {
    /// Build from (mac, vid, value) triples (later duplicates win).
    pub fn build(entries: &[(u64, u16, V)]) -> MacVidMap<V> {
        let cap = (entries.len() * 2).next_power_of_two().max(8);
        let mut slots = vec![(0u64, V::default()); cap].into_boxed_slice();
        let mask = cap - 1;
        for &(m, v, x) in entries {
            let k = key(m, v);
            let mut i = slot(k, mask);
            while slots[i].0 != 0 && slots[i].0 != k {
                i = (i + 1) & mask;
            }
            slots[i] = (k, x);
        }
        MacVidMap { slots, mask }
    }
}

#[inline(always)]
fn slot(k: u64, mask: usize) -> usize {
    (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

impl<V: Copy> MacVidMap<V> {
    /// Look up.
    #[inline(always)]
    pub fn get(&self, mac: u64, vid: u16) -> Option<V> {
        self.get_ref(mac, vid).copied()
    }

    /// Look up, without copying the value out.
    #[inline(always)]
    pub fn get_ref(&self, mac: u64, vid: u16) -> Option<&V> {
        if self.slots.is_empty() {
            return None;
        }
        let k = key(mac, vid);
        let mut i = slot(k, self.mask);
        loop {
            let s = &self.slots[i];
            if s.0 == k {
                return Some(&s.1);
            }
            if s.0 == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Entries stored.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.0 != 0).count()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        assert_eq!(m.len(), 1000);
        assert_eq!(MacVidMap::<u32>::default().get(1, 1), None);
    }

    #[test]
    fn later_duplicates_win_and_values_are_records() {
        #[derive(Clone, Copy, Default, Debug, PartialEq)]
        struct R {
            a: u16,
            b: u32,
        }
        let m = MacVidMap::build(&[(5, 1, R { a: 1, b: 2 }), (5, 1, R { a: 3, b: 4 })]);
        assert_eq!(m.get(5, 1), Some(R { a: 3, b: 4 }));
        assert_eq!(m.len(), 1);
        assert_eq!(m.get(5, 2), None);
    }
}
