//! The forwarding database: (MAC, VID) → port.
//!
//! A bucketed hash table sized at start (no allocation afterwards). Each key
//! hashes to two buckets of [`WAYS`] slots; a key lives in one of them
//! ("two-choice" hashing keeps the table usable up to high load without
//! rehashing). Reads are lock-free: each bucket carries a sequence counter
//! (a seqlock) that a reader checks before and after; writers — learning,
//! refresh, static install, ageing — lock the key's buckets by making the
//! counter odd. Learning a source already known on the same port, and seen
//! within the last [`REFRESH_MS`], writes nothing, so the steady state is
//! read-only and scales across cores. Every locked write but a re-stamp
//! also adds one to the table's write count ([`Fdb::epoch`]), so a reader
//! can keep an answer (the one pass's memos do) for as long as the count
//! stays and the entry's own time has not come. A re-stamp (a live source
//! seen again on its port, its time moved forward) only makes the entry's
//! times later, so an answer kept with the earlier times still holds; with
//! a thousand sources, each re-stamped once a second, counting it would
//! void every kept answer a thousand times a second.
//!
//! Limits: a global `capacity` (static + learned) and a per-port limit on
//! learned entries. When either is reached new sources are simply not learned
//! (their frames are still forwarded, flooded when unknown), so a VM sending
//! from a million MACs cannot evict anyone else's entry. Entries age lazily —
//! a lookup ignores an entry older than `aging` — and [`Fdb::age`] reclaims
//! their slots.

use crate::types::{Mac, PortId, Vid, MAX_PORTS};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Slots per bucket.
pub const WAYS: usize = 7;
/// A known source is re-stamped at most this often (milliseconds).
pub const REFRESH_MS: u64 = 1000;

const VALID: u64 = 1 << 63;
const F_STATIC: u64 = 1 << 16;
/// Always set in a stored value, so a value is never 0 (0 = absent).
const V_SET: u64 = 1 << 17;
const TIME_SHIFT: u32 = 24;

/// Key of an entry: MAC and VLAN packed.
#[inline(always)]
pub fn key(mac: Mac, vid: Vid) -> u64 {
    VALID | ((vid.0 as u64 & 0xfff) << 48) | mac.to_u64()
}

#[inline(always)]
fn key_u64(mac: u64, vid: u16) -> u64 {
    VALID | ((vid as u64 & 0xfff) << 48) | mac
}

#[inline(always)]
fn val(port: PortId, stat: bool, now_ms: u64) -> u64 {
    V_SET | (port.0 as u64) | if stat { F_STATIC } else { 0 } | (now_ms << TIME_SHIFT)
}

#[repr(C, align(64))]
struct Bucket {
    seq: AtomicU32,
    _pad: u32,
    keys: [AtomicU64; WAYS],
    vals: [AtomicU64; WAYS],
    _pad2: u64,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            seq: AtomicU32::new(0),
            _pad: 0,
            keys: Default::default(),
            vals: Default::default(),
            _pad2: 0,
        }
    }
    #[inline(always)]
    fn lock(&self) {
        loop {
            let s = self.seq.load(Ordering::Relaxed);
            if s & 1 == 0
                && self
                    .seq
                    .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            std::hint::spin_loop();
        }
    }
    #[inline(always)]
    fn unlock(&self) {
        self.seq.fetch_add(1, Ordering::Release);
    }
    /// Lock-free read of the value for `k` (0 if absent).
    #[inline(always)]
    fn read(&self, k: u64) -> u64 {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let mut v = 0;
            for i in 0..WAYS {
                if self.keys[i].load(Ordering::Relaxed) == k {
                    v = self.vals[i].load(Ordering::Relaxed);
                    break;
                }
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return v;
            }
        }
    }
    /// Slot of `k` (caller holds the lock).
    #[inline(always)]
    fn find(&self, k: u64) -> Option<usize> {
        (0..WAYS).find(|&i| self.keys[i].load(Ordering::Relaxed) == k)
    }
    #[inline(always)]
    fn free_slot(&self) -> Option<usize> {
        (0..WAYS).find(|&i| self.keys[i].load(Ordering::Relaxed) == 0)
    }
}

/// What learning a source did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learn {
    /// Known on this port and fresh: nothing written.
    Known,
    /// Known on this port: timestamp refreshed.
    Refreshed,
    /// New entry.
    New,
    /// Moved from another port (station move).
    Moved(PortId),
    /// A static entry points elsewhere: not moved.
    Static(PortId),
    /// Not learned: the table is at capacity.
    Full,
    /// Not learned: the port is at its learning limit.
    PortLimit,
}

/// Result of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Port the address is behind.
    pub port: PortId,
    /// Static (configured or installed by the control plane): never ages or moves.
    pub is_static: bool,
    /// Last time seen (milliseconds on the switch clock).
    pub seen_ms: u64,
}

/// One row of a table dump.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// MAC.
    pub mac: Mac,
    /// VLAN.
    pub vid: u16,
    /// Port index.
    pub port: u16,
    /// Static entry.
    pub is_static: bool,
    /// Last seen (ms).
    pub seen_ms: u64,
}

/// A counter on a cache line of its own.
#[repr(align(64))]
struct Epoch(AtomicU64);

/// The table.
pub struct Fdb {
    buckets: Box<[Bucket]>,
    /// Counts the writes: every locked write to a bucket adds one before
    /// the bucket is unlocked ([`Fdb::epoch`]).
    epoch: Epoch,
    mask: usize,
    capacity: usize,
    per_port_limit: usize,
    aging_ms: u64,
    /// `aging_ms`, or `u64::MAX` with ageing off: one compare in [`Fdb::live`].
    live_ms: u64,
    /// [`Fdb::refresh_ms`], computed once.
    refresh_ms: u64,
    count: AtomicUsize,
    learned: Box<[AtomicUsize]>,
}

impl Fdb {
    /// A table for `capacity` entries, `per_port_limit` learned entries per
    /// port, ageing after `aging_ms` (0 = never).
    pub fn new(capacity: usize, per_port_limit: usize, aging_ms: u64) -> Fdb {
        let nb = (capacity * 2).div_ceil(WAYS).next_power_of_two().max(2);
        Fdb {
            buckets: (0..nb).map(|_| Bucket::new()).collect(),
            epoch: Epoch(AtomicU64::new(0)),
            mask: nb - 1,
            capacity,
            per_port_limit,
            aging_ms,
            live_ms: if aging_ms == 0 { u64::MAX } else { aging_ms },
            refresh_ms: if aging_ms == 0 {
                REFRESH_MS
            } else {
                REFRESH_MS.min(aging_ms)
            },
            count: AtomicUsize::new(0),
            learned: (0..MAX_PORTS).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    #[inline(always)]
    fn buckets_of(&self, k: u64) -> (usize, usize) {
        let h = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let b1 = (h >> 40) as usize & self.mask;
        let b2 = (h >> 16) as usize & self.mask;
        (b1, b2)
    }

    #[inline(always)]
    fn live(&self, v: u64, now_ms: u64) -> bool {
        v & F_STATIC != 0 || now_ms.saturating_sub(v >> TIME_SHIFT) <= self.live_ms
    }

    /// How long a known source goes without being re-stamped: [`REFRESH_MS`],
    /// or the ageing time when that is shorter. With ageing off (0) entries
    /// never expire, so the full [`REFRESH_MS`] applies.
    #[inline(always)]
    fn refresh_ms(&self) -> u64 {
        self.refresh_ms
    }

    /// Look up (MAC, VID). Entries older than the ageing time are not returned.
    #[inline(always)]
    pub fn lookup_raw(&self, mac: u64, vid: u16, now_ms: u64) -> Option<Entry> {
        let k = key_u64(mac, vid);
        let (b1, b2) = self.buckets_of(k);
        let v = self.value(k, b1, b2);
        if v == 0 || !self.live(v, now_ms) {
            return None;
        }
        Some(Entry {
            port: PortId(v as u16),
            is_static: v & F_STATIC != 0,
            seen_ms: v >> TIME_SHIFT,
        })
    }

    /// The write count: while it has not changed, neither has any answer of
    /// the table except by time (an entry ageing out, a source due to be
    /// re-stamped; a re-stamp itself only makes those times later, and
    /// does not count). A reader that takes it before reading can keep what it
    /// read for as long as the count stays the same.
    #[inline(always)]
    pub fn epoch(&self) -> u64 {
        self.epoch.0.load(Ordering::Acquire)
    }

    /// As [`Fdb::lookup_raw`], with the time (ms) from which the entry no
    /// longer counts as live unless rewritten (`u64::MAX`: static or no
    /// ageing).
    #[inline(always)]
    pub fn lookup_until(&self, mac: u64, vid: u16, now_ms: u64) -> Option<(Entry, u64)> {
        let e = self.lookup_raw(mac, vid, now_ms)?;
        let until = if e.is_static {
            u64::MAX
        } else {
            e.seen_ms.saturating_add(self.live_ms).saturating_add(1)
        };
        Some((e, until))
    }

    /// Look up (MAC, VID).
    pub fn lookup(&self, mac: Mac, vid: Vid, now_ms: u64) -> Option<Entry> {
        self.lookup_raw(mac.to_u64(), vid.0, now_ms)
    }

    fn lock2(&self, b1: usize, b2: usize) {
        let (lo, hi) = if b1 <= b2 { (b1, b2) } else { (b2, b1) };
        self.buckets[lo].lock();
        if hi != lo {
            self.buckets[hi].lock();
        }
    }
    fn unlock2(&self, b1: usize, b2: usize) {
        self.epoch.0.fetch_add(1, Ordering::Release);
        self.unlock2_restamped(b1, b2);
    }
    /// [`Fdb::unlock2`] after a re-stamp: the write count stays.
    fn unlock2_restamped(&self, b1: usize, b2: usize) {
        self.buckets[b1].unlock();
        if b2 != b1 {
            self.buckets[b2].unlock();
        }
    }
    /// (bucket, slot) of k, caller holds both locks.
    fn locate(&self, k: u64, b1: usize, b2: usize) -> Option<(usize, usize)> {
        if let Some(i) = self.buckets[b1].find(k) {
            return Some((b1, i));
        }
        self.buckets[b2].find(k).map(|i| (b2, i))
    }

    fn remove_slot(&self, b: usize, i: usize) {
        let v = self.buckets[b].vals[i].load(Ordering::Relaxed);
        self.buckets[b].keys[i].store(0, Ordering::Relaxed);
        self.buckets[b].vals[i].store(0, Ordering::Relaxed);
        self.count.fetch_sub(1, Ordering::Relaxed);
        if v & F_STATIC == 0 {
            self.learned[(v as u16) as usize].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The stored value of `k` (0: absent), lock-free.
    #[inline(always)]
    fn value(&self, k: u64, b1: usize, b2: usize) -> u64 {
        let v = self.buckets[b1].read(k);
        if v == 0 && b2 != b1 {
            return self.buckets[b2].read(k);
        }
        v
    }

    /// Stored value `v` says: known on `port` and fresh, nothing to write.
    #[inline(always)]
    fn known_here(&self, v: u64, port: PortId, now_ms: u64) -> bool {
        v != 0
            && (v as u16) == port.0
            && (v & F_STATIC != 0 || now_ms.saturating_sub(v >> TIME_SHIFT) < self.refresh_ms())
    }

    /// Whether [`Fdb::learn_raw`] would answer [`Learn::Known`] (known on
    /// `port` and fresh: no write). Reads only.
    #[inline(always)]
    pub fn is_known_raw(&self, mac: u64, vid: u16, port: PortId, now_ms: u64) -> bool {
        self.known_until(mac, vid, port, now_ms).is_some()
    }

    /// As [`Fdb::is_known_raw`]; when known, the time (ms) from which it no
    /// longer is unless rewritten (`u64::MAX`: static).
    #[inline(always)]
    pub fn known_until(&self, mac: u64, vid: u16, port: PortId, now_ms: u64) -> Option<u64> {
        let k = key_u64(mac, vid);
        let (b1, b2) = self.buckets_of(k);
        let v = self.value(k, b1, b2);
        if !self.known_here(v, port, now_ms) {
            return None;
        }
        Some(if v & F_STATIC != 0 {
            u64::MAX
        } else {
            (v >> TIME_SHIFT).saturating_add(self.refresh_ms())
        })
    }

    /// Learn that `mac` in `vid` is behind `port`.
    #[inline(always)]
    pub fn learn_raw(&self, mac: u64, vid: u16, port: PortId, now_ms: u64) -> Learn {
        let k = key_u64(mac, vid);
        let (b1, b2) = self.buckets_of(k);
        // Fast path: known here and fresh → no write at all.
        let v = self.value(k, b1, b2);
        if self.known_here(v, port, now_ms) {
            return Learn::Known;
        }
        if v != 0 && v & F_STATIC != 0 {
            return Learn::Static(PortId(v as u16));
        }
        self.learn_slow(k, b1, b2, port, now_ms)
    }

    #[inline(never)]
    fn learn_slow(&self, k: u64, b1: usize, b2: usize, port: PortId, now_ms: u64) -> Learn {
        self.lock2(b1, b2);
        // Only the entry's time moved forward (see the module docs).
        let mut restamp = false;
        let r = match self.locate(k, b1, b2) {
            Some((b, i)) => {
                let old = self.buckets[b].vals[i].load(Ordering::Relaxed);
                let old_port = PortId(old as u16);
                if old & F_STATIC != 0 {
                    if old_port == port {
                        Learn::Known
                    } else {
                        Learn::Static(old_port)
                    }
                } else if old_port == port {
                    self.buckets[b].vals[i].store(val(port, false, now_ms), Ordering::Relaxed);
                    if self.live(old, now_ms) {
                        restamp = now_ms >= old >> TIME_SHIFT;
                        Learn::Refreshed
                    } else {
                        Learn::New
                    }
                } else if self.learned[port.0 as usize].load(Ordering::Relaxed)
                    >= self.per_port_limit
                {
                    // The new port is full: the stale mapping goes (it is wrong now), nothing is learned.
                    self.remove_slot(b, i);
                    Learn::PortLimit
                } else {
                    self.learned[old_port.0 as usize].fetch_sub(1, Ordering::Relaxed);
                    self.learned[port.0 as usize].fetch_add(1, Ordering::Relaxed);
                    self.buckets[b].vals[i].store(val(port, false, now_ms), Ordering::Relaxed);
                    if self.live(old, now_ms) {
                        Learn::Moved(old_port)
                    } else {
                        Learn::New
                    }
                }
            }
            None => {
                if self.learned[port.0 as usize].load(Ordering::Relaxed) >= self.per_port_limit {
                    Learn::PortLimit
                } else if self.count.load(Ordering::Relaxed) >= self.capacity {
                    Learn::Full
                } else {
                    match self.insert_locked(k, b1, b2, val(port, false, now_ms), now_ms) {
                        true => {
                            self.learned[port.0 as usize].fetch_add(1, Ordering::Relaxed);
                            Learn::New
                        }
                        false => Learn::Full,
                    }
                }
            }
        };
        if restamp {
            self.unlock2_restamped(b1, b2);
        } else {
            self.unlock2(b1, b2);
        }
        r
    }

    /// Insert into a free slot of b1 or b2, evicting an aged-out dynamic entry if both are full.
    fn insert_locked(&self, k: u64, b1: usize, b2: usize, v: u64, now_ms: u64) -> bool {
        let slot = self.buckets[b1]
            .free_slot()
            .map(|i| (b1, i))
            .or_else(|| self.buckets[b2].free_slot().map(|i| (b2, i)))
            .or_else(|| {
                for b in [b1, b2] {
                    for i in 0..WAYS {
                        let ov = self.buckets[b].vals[i].load(Ordering::Relaxed);
                        if !self.live(ov, now_ms) {
                            self.remove_slot(b, i);
                            return Some((b, i));
                        }
                    }
                }
                None
            });
        let Some((b, i)) = slot else { return false };
        self.buckets[b].vals[i].store(v, Ordering::Relaxed);
        self.buckets[b].keys[i].store(k, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Learn (typed form of [`Fdb::learn_raw`]).
    pub fn learn(&self, mac: Mac, vid: Vid, port: PortId, now_ms: u64) -> Learn {
        self.learn_raw(mac.to_u64(), vid.0, port, now_ms)
    }

    /// Install a static entry (replacing any entry for the key). False if the table is full.
    pub fn insert_static(&self, mac: Mac, vid: Vid, port: PortId) -> bool {
        let k = key(mac, vid);
        let (b1, b2) = self.buckets_of(k);
        self.lock2(b1, b2);
        if let Some((b, i)) = self.locate(k, b1, b2) {
            self.remove_slot(b, i);
        }
        let ok = self.count.load(Ordering::Relaxed) < self.capacity
            && self.insert_locked(k, b1, b2, val(port, true, 0), 0);
        self.unlock2(b1, b2);
        ok
    }

    /// Remove the entry for (MAC, VID). True if there was one.
    pub fn remove(&self, mac: Mac, vid: Vid) -> bool {
        let k = key(mac, vid);
        let (b1, b2) = self.buckets_of(k);
        self.lock2(b1, b2);
        let found = self.locate(k, b1, b2);
        if let Some((b, i)) = found {
            self.remove_slot(b, i);
        }
        self.unlock2(b1, b2);
        found.is_some()
    }

    fn sweep(&self, mut doomed: impl FnMut(u64, u64) -> bool) -> usize {
        let mut n = 0;
        for (bi, b) in self.buckets.iter().enumerate() {
            let any = (0..WAYS).any(|i| {
                let k = b.keys[i].load(Ordering::Relaxed);
                k != 0 && doomed(k, b.vals[i].load(Ordering::Relaxed))
            });
            if !any {
                continue;
            }
            b.lock();
            for i in 0..WAYS {
                let k = b.keys[i].load(Ordering::Relaxed);
                if k != 0 && doomed(k, b.vals[i].load(Ordering::Relaxed)) {
                    self.remove_slot(bi, i);
                    n += 1;
                }
            }
            self.epoch.0.fetch_add(1, Ordering::Release);
            b.unlock();
        }
        n
    }

    /// Remove learned entries older than the ageing time. Returns how many.
    pub fn age(&self, now_ms: u64) -> usize {
        if self.aging_ms == 0 {
            return 0;
        }
        self.sweep(|_, v| !self.live(v, now_ms))
    }

    /// Remove learned entries on `port` (link down, VM moved). Returns how many.
    pub fn flush_port(&self, port: PortId) -> usize {
        self.sweep(|_, v| v & F_STATIC == 0 && v as u16 == port.0)
    }

    /// Remove every entry (static too) on `port`.
    pub fn flush_port_all(&self, port: PortId) -> usize {
        self.sweep(|_, v| v as u16 == port.0)
    }

    /// Entries in the table (aged-out ones not yet reclaimed included).
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Learned entries on a port.
    pub fn learned_on(&self, port: PortId) -> usize {
        self.learned[port.0 as usize].load(Ordering::Relaxed)
    }
    /// Configured capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Visit every live entry without taking a bucket lock (a seqlock read
    /// per bucket, retried when a writer was in it): for telemetry readers,
    /// which must never hold up a worker's learning. Unordered.
    pub fn for_each_live(&self, now_ms: u64, mut f: impl FnMut(Row)) {
        for b in self.buckets.iter() {
            let (keys, vals) = loop {
                let s1 = b.seq.load(Ordering::Acquire);
                if s1 & 1 == 1 {
                    std::hint::spin_loop();
                    continue;
                }
                let keys: [u64; WAYS] = std::array::from_fn(|i| b.keys[i].load(Ordering::Relaxed));
                let vals: [u64; WAYS] = std::array::from_fn(|i| b.vals[i].load(Ordering::Relaxed));
                fence(Ordering::Acquire);
                if b.seq.load(Ordering::Relaxed) == s1 {
                    break (keys, vals);
                }
            };
            for (k, v) in keys.into_iter().zip(vals) {
                if k != 0 && v != 0 && self.live(v, now_ms) {
                    f(Row {
                        mac: Mac::from_u64(k & 0xffff_ffff_ffff),
                        vid: ((k >> 48) & 0xfff) as u16,
                        port: v as u16,
                        is_static: v & F_STATIC != 0,
                        seen_ms: v >> TIME_SHIFT,
                    });
                }
            }
        }
    }

    /// Every live entry (allocates: control plane and tools only).
    pub fn dump(&self, now_ms: u64) -> Vec<Row> {
        let mut out = Vec::new();
        for b in self.buckets.iter() {
            b.lock();
            for i in 0..WAYS {
                let k = b.keys[i].load(Ordering::Relaxed);
                let v = b.vals[i].load(Ordering::Relaxed);
                if k != 0 && self.live(v, now_ms) {
                    out.push(Row {
                        mac: Mac::from_u64(k & 0xffff_ffff_ffff),
                        vid: ((k >> 48) & 0xfff) as u16,
                        port: v as u16,
                        is_static: v & F_STATIC != 0,
                        seen_ms: v >> TIME_SHIFT,
                    });
                }
            }
            b.unlock();
        }
        out.sort_by_key(|r| (r.vid, r.mac));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_each_live_matches_dump() {
        let f = Fdb::new(64, 64, 1000);
        for i in 1..20u64 {
            assert_eq!(
                f.learn(m(i), Vid(10), PortId((i % 3) as u16), 5),
                Learn::New
            );
        }
        assert!(f.insert_static(m(99), Vid(20), PortId(1)));
        let mut rows = Vec::new();
        f.for_each_live(5, |r| rows.push(r));
        rows.sort_by_key(|r| (r.vid, r.mac));
        assert_eq!(rows, f.dump(5));
        assert_eq!(rows.len(), 20);
        // Aged entries are skipped; the static one stays.
        let mut n = 0;
        f.for_each_live(5000, |r| {
            assert!(r.is_static);
            n += 1
        });
        assert_eq!(n, 1);
    }

    fn m(i: u64) -> Mac {
        Mac::from_u64(0x0200_0000_0000 | i)
    }

    #[test]
    fn learn_lookup_refresh_move() {
        let f = Fdb::new(1000, 100, 10_000);
        assert_eq!(f.learn(m(1), Vid(10), PortId(1), 0), Learn::New);
        assert_eq!(f.learn(m(1), Vid(10), PortId(1), 10), Learn::Known);
        assert_eq!(f.learn(m(1), Vid(10), PortId(1), 5000), Learn::Refreshed);
        assert_eq!(f.lookup(m(1), Vid(10), 5000).unwrap().port, PortId(1));
        assert!(f.lookup(m(1), Vid(20), 5000).is_none(), "keyed by VID too");
        assert_eq!(
            f.learn(m(1), Vid(10), PortId(2), 6000),
            Learn::Moved(PortId(1))
        );
        assert_eq!(f.learned_on(PortId(1)), 0);
        assert_eq!(f.learned_on(PortId(2)), 1);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn a_restamp_keeps_the_write_count_other_writes_advance_it() {
        let f = Fdb::new(1000, 100, 10_000);
        let ep = f.epoch();
        assert_eq!(f.learn(m(1), Vid(10), PortId(1), 0), Learn::New);
        assert_ne!(f.epoch(), ep, "a new entry counts");
        let ep = f.epoch();
        let until = f.known_until(m(1).to_u64(), 10, PortId(1), 10).unwrap();
        assert_eq!(f.learn(m(1), Vid(10), PortId(1), 5000), Learn::Refreshed);
        assert_eq!(f.epoch(), ep, "a re-stamp does not count");
        // It only made the entry's times later.
        assert!(f.known_until(m(1).to_u64(), 10, PortId(1), 5000).unwrap() > until);
        // A re-stamp taken back in time (a worker whose clock is behind
        // another's) counts, as does an entry revived after ageing out.
        let later = 9000;
        assert_eq!(f.learn(m(1), Vid(10), PortId(1), later), Learn::Refreshed);
        let b = f.buckets_of(key(m(1), Vid(10)));
        f.lock2(b.0, b.1);
        let (bi, i) = f.locate(key(m(1), Vid(10)), b.0, b.1).unwrap();
        f.buckets[bi].vals[i].store(val(PortId(1), false, later + 5000), Ordering::Relaxed);
        f.unlock2(b.0, b.1);
        let ep = f.epoch();
        assert_eq!(
            f.learn_slow(key(m(1), Vid(10)), b.0, b.1, PortId(1), later + 1000),
            Learn::Refreshed
        );
        assert_ne!(f.epoch(), ep, "a time moved back counts");
        let ep = f.epoch();
        assert_eq!(f.learn(m(1), Vid(10), PortId(1), 100_000), Learn::New);
        assert_ne!(f.epoch(), ep, "a revived entry counts");
        let ep = f.epoch();
        assert_eq!(
            f.learn(m(1), Vid(10), PortId(2), 100_001),
            Learn::Moved(PortId(1))
        );
        assert_ne!(f.epoch(), ep, "a move counts");
    }

    #[test]
    fn no_ageing_keeps_the_steady_state_read_only() {
        // aging 0 = entries never expire: a known source seen again within
        // REFRESH_MS must not be re-stamped (no write, no bucket lock).
        let f = Fdb::new(1000, 100, 0);
        assert_eq!(f.learn(m(1), Vid(1), PortId(1), 0), Learn::New);
        assert_eq!(f.learn(m(1), Vid(1), PortId(1), 5), Learn::Known);
        assert_eq!(
            f.learn(m(1), Vid(1), PortId(1), REFRESH_MS - 1),
            Learn::Known
        );
        assert_eq!(
            f.learn(m(1), Vid(1), PortId(1), REFRESH_MS),
            Learn::Refreshed
        );
        assert_eq!(
            f.lookup(m(1), Vid(1), u64::from(u32::MAX)).unwrap().seen_ms,
            REFRESH_MS
        );
    }

    #[test]
    fn ageing_is_lazy_and_sweep_reclaims() {
        let f = Fdb::new(1000, 100, 1000);
        f.learn(m(1), Vid(1), PortId(0), 0);
        assert!(f.lookup(m(1), Vid(1), 1000).is_some());
        assert!(f.lookup(m(1), Vid(1), 1001).is_none());
        assert_eq!(f.len(), 1);
        assert_eq!(f.age(1001), 1);
        assert_eq!(f.len(), 0);
        assert_eq!(f.learned_on(PortId(0)), 0);
        // Re-learning an aged entry on another port is a new entry, not a move.
        f.learn(m(2), Vid(1), PortId(0), 0);
        assert_eq!(f.learn(m(2), Vid(1), PortId(3), 5000), Learn::New);
    }

    #[test]
    fn static_never_moves_or_ages() {
        let f = Fdb::new(100, 10, 1000);
        assert!(f.insert_static(m(5), Vid(10), PortId(2)));
        assert_eq!(
            f.learn(m(5), Vid(10), PortId(3), 50),
            Learn::Static(PortId(2))
        );
        assert_eq!(f.learn(m(5), Vid(10), PortId(2), 50), Learn::Known);
        assert_eq!(f.lookup(m(5), Vid(10), 1_000_000).unwrap().port, PortId(2));
        assert_eq!(f.age(1_000_000), 0);
        assert_eq!(
            f.learned_on(PortId(2)),
            0,
            "static entries do not count against the port limit"
        );
        assert!(f.remove(m(5), Vid(10)));
        assert!(f.is_empty());
    }

    #[test]
    fn limits_refuse_without_evicting() {
        let f = Fdb::new(50, 10, 0);
        for i in 0..10 {
            assert_eq!(f.learn(m(i), Vid(1), PortId(1), 0), Learn::New);
        }
        assert_eq!(f.learn(m(100), Vid(1), PortId(1), 0), Learn::PortLimit);
        for i in 0..10 {
            assert!(f.lookup(m(i), Vid(1), 0).is_some(), "old entries survive");
        }
        for p in 2..6u16 {
            for i in 0..10 {
                f.learn(m(1000 * p as u64 + i), Vid(1), PortId(p), 0);
            }
        }
        assert_eq!(f.len(), 50);
        assert_eq!(f.learn(m(99999), Vid(1), PortId(7), 0), Learn::Full);
        assert_eq!(f.len(), 50);
    }

    #[test]
    fn flush_port_keeps_static() {
        let f = Fdb::new(100, 100, 0);
        f.insert_static(m(1), Vid(1), PortId(1));
        f.learn(m(2), Vid(1), PortId(1), 0);
        f.learn(m(3), Vid(1), PortId(2), 0);
        assert_eq!(f.flush_port(PortId(1)), 1);
        assert!(f.lookup(m(1), Vid(1), 0).is_some());
        assert!(f.lookup(m(3), Vid(1), 0).is_some());
        assert_eq!(f.dump(0).len(), 2);
    }

    #[test]
    fn concurrent_learners_never_duplicate() {
        let f = std::sync::Arc::new(Fdb::new(4096, 4096, 0));
        let hs: Vec<_> = (0..4u16)
            .map(|t| {
                let f = f.clone();
                std::thread::spawn(move || {
                    for round in 0..20 {
                        for i in 0..2000 {
                            f.learn(m(i), Vid(1), PortId((t + round) % 4), round as u64 * 2000);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(f.len(), 2000);
        assert_eq!(f.dump(100_000).len(), 2000);
        let total: usize = (0..4).map(|p| f.learned_on(PortId(p))).sum();
        assert_eq!(total, 2000, "per-port counts stay consistent");
    }
}
