//! Per-core exact-match flow cache in front of the ACL classifier.
//!
//! The classifier ([`super::acl::Classifier`]) probes several hash tables per
//! frame; its cost grows with the number of distinct field combinations in a
//! policy. Traffic is made of flows, so most frames repeat a key seen a few
//! microseconds earlier. Like Open vSwitch's exact-match cache, each worker
//! keeps a small 4-way set-associative table from (policy, direction, packed
//! key) to the classifier's answer. A hit costs one hash and one 64-byte
//! compare; a miss runs the classifier and stores its answer.
//!
//! Correctness does not depend on the hash: an entry is used only when the
//! whole packed key (every field a rule can match) and the (policy,
//! direction) tag are equal, and the classifier is a pure function of those
//! within one policy snapshot. The pipeline empties the cache whenever it
//! takes a new snapshot, so an answer never outlives the rules that gave it.
//! Nothing is allocated after [`FlowCache::new`]; a full set evicts a
//! pseudo-random way.
//!
//! In front of it, for the common IPv4
//! TCP/UDP frame, the pipeline keeps an [`IngressCache`] keyed by (ingress
//! port, [`FlowKey`]) whose entry holds everything the sender's side of the
//! policy decides for that flow — the sender's VSI, the from-vm verdict, the
//! class and rewrites, the hit counter and the meters — in the same cache
//! line as its key, so a hit is one line read and no further lookup.

use super::acl::{Classifier, FlowKey, PackedKey};

/// Entries a cache has unless the config says otherwise (`switch.flow_cache`).
pub const DEFAULT_ENTRIES: usize = 8192;
/// Largest accepted size.
pub const MAX_ENTRIES: usize = 1 << 20;

/// The stored answer for "no rule matched".
pub const NO_MATCH: u32 = u32::MAX;
/// Ways per set: the four tags of a set share one cache line.
const WAYS: usize = 4;

/// Set index, tag and mixed hash of a key whose hash is `kh` in context
/// `ctx`: the tag holds the context in its high half and high hash bits | 1
/// (never 0, the empty way) in its low half.
#[inline(always)]
fn place(kh: u64, ctx: u32, set_mask: usize) -> (usize, u64, u64) {
    let h = kh ^ u64::from(ctx).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let si = (h >> 16) as usize & set_mask;
    (si, u64::from(ctx) << 32 | (h >> 32) | 1, h)
}

/// Sets of `ways` for a cache of `entries` (rounded up to a power of two,
/// at least one set; 0 = off).
fn set_count(entries: usize, ways: usize) -> usize {
    if entries == 0 {
        0
    } else {
        entries.clamp(ways, MAX_ENTRIES).next_power_of_two() / ways
    }
}

/// Tag of one entry: 16 bytes, four to a cache line.
#[derive(Clone, Copy, Default)]
struct Tag {
    /// Context (a rule set) in the high half, high hash bits | 1 in the low
    /// half; 0: empty way.
    id: u64,
    /// The stored answer ([`NO_MATCH`] for none).
    answer: u32,
}

#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Set([Tag; WAYS]);

/// The cache of one worker core. Not shared: no atomics, no locks.
pub struct FlowCache {
    sets: Box<[Set]>,
    /// The full key of every way, `WAYS` per set.
    keys: Box<[PackedKey]>,
    set_mask: usize,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
}

impl FlowCache {
    /// A cache of `entries` (rounded up to a power of two, at least one set
    /// of four); 0 turns caching off.
    pub fn new(entries: usize) -> FlowCache {
        let sets = set_count(entries, WAYS);
        FlowCache {
            sets: vec![Set::default(); sets].into_boxed_slice(),
            keys: vec![PackedKey::default(); sets * WAYS].into_boxed_slice(),
            set_mask: sets.saturating_sub(1),
            hits: 0,
            misses: 0,
        }
    }

    /// Entries (0 when off).
    pub fn capacity(&self) -> usize {
        self.keys.len()
    }

    /// Forget every answer (a new policy snapshot). Counters are kept.
    pub fn clear(&mut self) {
        self.sets.fill(Set::default());
    }

    #[inline(always)]
    fn place(&self, ctx: u32, k: &PackedKey) -> (usize, u64, u64) {
        place(k.hash(), ctx, self.set_mask)
    }

    /// The answer stored for `k` in context `ctx`, counting a hit or a
    /// miss. Always a miss when the cache is off.
    #[inline(always)]
    fn get(&mut self, ctx: u32, k: &PackedKey) -> Option<u32> {
        if self.sets.is_empty() {
            return None;
        }
        let (si, id, _) = self.place(ctx, k);
        let set = &self.sets[si];
        let keys = &self.keys[si * WAYS..si * WAYS + WAYS];
        for (t, key) in set.0.iter().zip(keys) {
            if t.id == id && key.same(k) {
                self.hits += 1;
                return Some(t.answer);
            }
        }
        self.misses += 1;
        None
    }

    /// Remember `answer` for `k` in context `ctx`: an empty way if the
    /// set has one, else a pseudo-random victim (no LRU bookkeeping on hits,
    /// and no pathological cycle for k > ways flows). A no-op when off.
    #[cold]
    #[inline(never)]
    fn put(&mut self, ctx: u32, k: &PackedKey, answer: u32) {
        if self.sets.is_empty() {
            return;
        }
        let (si, id, h) = self.place(ctx, k);
        let set = &mut self.sets[si];
        let w = set
            .0
            .iter()
            .position(|t| t.id == 0)
            .unwrap_or((self.misses ^ (h >> 8)) as usize & (WAYS - 1));
        set.0[w] = Tag { id, answer };
        self.keys[si * WAYS + w] = *k;
    }

    /// The first rule of `c` that matches `k`, as [`Classifier::classify_packed`]
    /// gives it; `policy` and `dir` (0 from-vm, 1 to-vm) name the rule set.
    #[inline(always)]
    pub fn classify(&mut self, c: &Classifier, policy: u32, dir: u8, k: &PackedKey) -> Option<u32> {
        // policy < 2^31 (a snapshot has far fewer policies), so the context is never 0.
        let rule_set = ((policy << 1) | u32::from(dir & 1)) + 1;
        match self.get(rule_set, k) {
            Some(a) => (a != NO_MATCH).then_some(a),
            None => self.miss(c, rule_set, k),
        }
    }

    /// Run the classifier and remember its answer.
    #[cold]
    #[inline(never)]
    fn miss(&mut self, c: &Classifier, rule_set: u32, k: &PackedKey) -> Option<u32> {
        let r = c.classify_packed(k);
        self.put(rule_set, k, r.unwrap_or(NO_MATCH));
        r
    }
}

/// What the sender's side of the policy decided for one ingress flow,
/// resolved when the flow was first seen (see [`IngressCache`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngressHit {
    /// The sending VSI's index, or [`super::NONE`]: not a VM's traffic (an
    /// unguarded port), nothing to apply.
    pub vsi: u32,
    /// The classifier's answer for the sender's from-vm rules ([`NO_MATCH`]:
    /// the default, or no from-vm rules).
    pub answer: u32,
    /// Hit counter of that rule or default ([`IngressHit::ACL`] only).
    pub hit: u32,
    /// The matching rule's meter instance, or [`super::NONE`].
    pub rule_meter: u32,
    /// The VSI's own meter instance, or [`super::NONE`].
    pub vsi_meter: u32,
    /// Traffic class (the rule's, else the policy's default).
    pub class: u8,
    /// PCP to write on egress (0xff: keep).
    pub pcp: u8,
    /// DSCP to write (0xff: keep).
    pub dscp: u8,
    /// [`IngressHit::ACL`], [`IngressHit::PERMIT`], [`IngressHit::SLOW`].
    pub flags: u8,
}

impl IngressHit {
    /// The answer for a sender that is not a VM (an unguarded port).
    pub fn not_a_vm() -> IngressHit {
        IngressHit {
            vsi: super::NONE,
            answer: NO_MATCH,
            rule_meter: super::NONE,
            vsi_meter: super::NONE,
            pcp: 0xff,
            dscp: 0xff,
            ..Default::default()
        }
    }

    /// The VSI has a policy with from-vm rules: count `hit`, obey `PERMIT`.
    pub const ACL: u8 = 1;
    /// The from-vm verdict is permit.
    pub const PERMIT: u8 = 2;
    /// Resolve again from the snapshot on every hit (the rule has a named
    /// counter): only `vsi` and `answer` are to be used.
    pub const SLOW: u8 = 4;
    /// The VSI has a policy (its class applies).
    pub const POLICY: u8 = 8;
}

/// One way of the ingress cache: key, tag and answer in one cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Slot {
    key: FlowKey,
    /// Ingress context in the high half, high hash bits | 1 in the low
    /// half; 0: empty.
    id: u64,
    val: IngressHit,
}

/// Ways per set of the ingress cache (adjacent cache lines, probed in order;
/// a flow takes the first empty way, so most hits read one line).
const INGRESS_WAYS: usize = 4;

/// Per-core exact-match cache from (ingress port, [`FlowKey`]) to what the
/// sender's side of the policy decided ([`IngressHit`]). Like
/// [`FlowCache`], an answer is used only when the whole key and the port
/// match, the pipeline empties it at every new snapshot, and nothing is
/// allocated after [`IngressCache::new`].
pub struct IngressCache {
    slots: Box<[Slot]>,
    set_mask: usize,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
}

impl IngressCache {
    /// A cache of `entries` (rounded up to a power of two, at least one set);
    /// 0 turns caching off.
    pub fn new(entries: usize) -> IngressCache {
        let sets = set_count(entries, INGRESS_WAYS);
        IngressCache {
            slots: vec![Slot::default(); sets * INGRESS_WAYS].into_boxed_slice(),
            set_mask: sets.saturating_sub(1),
            hits: 0,
            misses: 0,
        }
    }

    /// Entries (0 when off).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Forget every answer (a new policy snapshot). Counters are kept.
    pub fn clear(&mut self) {
        self.slots.fill(Slot::default());
    }

    #[inline(always)]
    fn place(&self, ctx: u32, k: &FlowKey) -> (usize, u64, u64) {
        let (si, id, h) = place(k.hash(), ctx, self.set_mask);
        (si * INGRESS_WAYS, id, h)
    }

    /// The answer stored for `k` arriving in context `ctx` (the ingress
    /// port + 1), counting a hit or a miss. Always a miss when off (not
    /// counted).
    #[inline(always)]
    pub fn get(&mut self, ctx: u32, k: &FlowKey) -> Option<&IngressHit> {
        if self.slots.is_empty() {
            return None;
        }
        let i = self.find(ctx, k);
        match i {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        i.map(|i| &self.slots[i].val)
    }

    /// As [`IngressCache::get`], counting nothing.
    #[inline(always)]
    pub fn peek(&self, ctx: u32, k: &FlowKey) -> Option<&IngressHit> {
        self.find(ctx, k).map(|i| &self.slots[i].val)
    }

    #[inline(always)]
    fn find(&self, ctx: u32, k: &FlowKey) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let (first, id, _) = self.place(ctx, k);
        (first..first + INGRESS_WAYS).find(|&i| {
            let s = &self.slots[i];
            s.id == id && s.key.same(k)
        })
    }

    /// Remember `val` for `k` in context `ctx`: an empty way if the set has
    /// one, else a pseudo-random victim. A no-op when off.
    #[cold]
    #[inline(never)]
    pub fn put(&mut self, ctx: u32, k: &FlowKey, val: IngressHit) {
        if self.slots.is_empty() {
            return;
        }
        let (first, id, h) = self.place(ctx, k);
        let set = &mut self.slots[first..first + INGRESS_WAYS];
        let w = set
            .iter()
            .position(|s| s.id == 0)
            .unwrap_or((self.misses ^ (h >> 8)) as usize & (INGRESS_WAYS - 1));
        set[w] = Slot { key: *k, id, val };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::acl::{bench_rules, AclKey, Rule};

    #[test]
    fn answers_equal_the_classifier_hit_or_miss() {
        let (rules, keys) = bench_rules(200, 7);
        let c = Classifier::build(&rules);
        // A small cache: many evictions and set conflicts.
        let mut fc = FlowCache::new(64);
        for round in 0..3 {
            for k in keys.iter().take(500) {
                let p = PackedKey::from(k);
                // The second lookup of a key right after the first always hits.
                for _ in 0..2 {
                    assert_eq!(fc.classify(&c, 3, 0, &p), c.classify(k), "round {round}");
                }
            }
        }
        assert!(
            fc.hits >= 1500 && fc.misses > 0,
            "{} {}",
            fc.hits,
            fc.misses
        );
        assert_eq!(fc.hits + fc.misses, 3000);
    }

    #[test]
    fn repeated_keys_hit_and_clear_forgets() {
        let (rules, keys) = bench_rules(50, 1);
        let c = Classifier::build(&rules);
        let mut fc = FlowCache::new(DEFAULT_ENTRIES);
        let p = PackedKey::from(&keys[0]);
        let first = fc.classify(&c, 0, 0, &p);
        assert_eq!((fc.hits, fc.misses), (0, 1));
        assert_eq!(fc.classify(&c, 0, 0, &p), first);
        assert_eq!((fc.hits, fc.misses), (1, 1));
        fc.clear();
        assert_eq!(fc.classify(&c, 0, 0, &p), first);
        assert_eq!((fc.hits, fc.misses), (1, 2));
    }

    #[test]
    fn policy_and_direction_are_part_of_the_key() {
        // Policy 0 denies everything (rule 0 matches), policy 1 has no rules.
        let deny_all = Classifier::build(&[Rule::default()]);
        let empty = Classifier::build(&[]);
        let mut fc = FlowCache::new(16);
        let p = PackedKey::from(&AclKey::default());
        assert_eq!(fc.classify(&deny_all, 0, 0, &p), Some(0));
        assert_eq!(fc.classify(&empty, 1, 0, &p), None);
        assert_eq!(fc.classify(&empty, 0, 1, &p), None);
        assert_eq!(fc.classify(&deny_all, 0, 0, &p), Some(0));
        assert_eq!(fc.hits, 1);
    }

    fn flow(i: u64) -> FlowKey {
        FlowKey::from_words([i, i * 7 + 1, i * 13 + 2, 0x0045_0011])
    }

    #[test]
    fn ingress_entries_are_per_port_and_exact() {
        assert_eq!(std::mem::size_of::<Slot>(), 64, "one cache line per way");
        let mut c = IngressCache::new(64);
        assert_eq!(c.capacity(), 64);
        let v = |i: u32| IngressHit {
            vsi: i,
            answer: i + 1,
            ..Default::default()
        };
        for i in 0..20 {
            c.put(1, &flow(i), v(i as u32));
        }
        // The last few puts always survive (a set holds four); what is found is exact.
        for i in 0..20u64 {
            match c.get(1, &flow(i)) {
                Some(h) => assert_eq!(*h, v(i as u32)),
                None => assert!(i < 16, "flow {i} was just stored"),
            }
            assert!(c.get(2, &flow(i)).is_none(), "another port never hits");
        }
        assert!(c.hits >= 2);
        // Many flows in a small cache: never a wrong answer.
        for i in 0..5000u64 {
            c.put(1 + (i % 3) as u32, &flow(i), v(i as u32));
            if let Some(h) = c.get(1 + (i % 3) as u32, &flow(i)) {
                assert_eq!(h.vsi, i as u32);
            }
            if let Some(h) = c.get(1, &flow(i / 2)) {
                assert_eq!(h.vsi, (i / 2) as u32);
            }
        }
        c.clear();
        assert!(c.get(1, &flow(4999)).is_none());
        let mut off = IngressCache::new(0);
        off.put(1, &flow(1), v(1));
        assert!(off.get(1, &flow(1)).is_none());
        assert_eq!((off.hits, off.misses, off.capacity()), (0, 0, 0));
    }

    #[test]
    fn off_runs_the_classifier_every_time() {
        let (rules, keys) = bench_rules(20, 3);
        let c = Classifier::build(&rules);
        let mut fc = FlowCache::new(0);
        assert_eq!(fc.capacity(), 0);
        for k in keys.iter().take(10) {
            assert_eq!(fc.classify(&c, 0, 0, &PackedKey::from(k)), c.classify(k));
        }
        assert_eq!((fc.hits, fc.misses), (0, 0));
    }
}
