//! The one pass's header memo: per pipeline (one per worker), what
//! [`super::Pipeline::known_unicast`] decided for a frame from its ingress
//! port and its key — VLAN, PCP, the egress port and, with policy, the
//! sender's side of it — together with the FDB's write count
//! ([`Fdb::epoch`]) taken before the decision read the FDB, and the time
//! the source and destination entries it read stop being fresh and live.
//! An answer is used only while the FDB has not been written since (a
//! re-stamp is not counted as a write: it only makes those times later)
//! and that time has not come, so it is the answer the FDB would give now.
//! It is kept as the one pass hands it on ([`Answer`]). The
//! snapshot's part (port VLANs, reflective relay, isolation, the switch's
//! MAC, the policy) is cleared with the snapshot ([`Memo::clear`] on
//! refresh, which empties the ingress cache too). What depends on more than
//! the key (the length against the MTU) is checked per frame.
//!
//! The key ([`MemoKey`]) is a frame's first 18 bytes (addresses, tag,
//! inner ethertype, [`Head18`]) without policy, and with policy the frame's
//! flow key ([`FlowKey`]: the addresses, 5-tuple, DSCP, TCP flags) taken
//! with the frame's raw tag instead of the classified VID and PCP
//! ([`FlowWords`]): everything both decisions read. So with policy one
//! lookup answers what the header and the ingress cache would. A pipeline
//! has one memo of each kind and uses the one its snapshot needs.
//!
//! Two-way sets, [`MemoKey::SETS`] of them: a new answer takes way 0 and
//! moves the old one to way 1.

#[cfg(doc)]
use crate::fdb::Fdb;
#[cfg(doc)]
use crate::policy::acl::FlowKey;

/// A memo's key: see the module docs.
pub trait MemoKey: Copy + Default {
    /// Sets in a memo of these keys (two answers each, a power of two).
    const SETS: usize;
    /// The key's set among [`MemoKey::SETS`] for ingress context `ctx`.
    fn set(&self, ctx: u8) -> usize;
    /// Key equality.
    fn same(&self, o: &Self) -> bool;
}

/// A frame's first 18 bytes as three words (the memo's key without policy).
pub type Head18 = (u64, u64, u16);

/// A [`FlowKey`]'s four words (the memo's key with policy).
pub type FlowWords = [u64; 4];

impl MemoKey for Head18 {
    /// Room for a few thousand flows in 512 KiB.
    const SETS: usize = 4096;

    #[inline(always)]
    fn set(&self, ctx: u8) -> usize {
        // Short: the set's address is on the way to the slot's load.
        let x = self.0 ^ self.1.rotate_left(23) ^ u64::from(self.2) << 40 ^ u64::from(ctx);
        (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & (Self::SETS - 1)
    }

    #[inline(always)]
    fn same(&self, o: &Self) -> bool {
        self == o
    }
}

impl MemoKey for FlowWords {
    /// Room for a few thousand flows in 1 MiB: a flow key per direction
    /// and 5-tuple, more keys than headers.
    const SETS: usize = 8192;

    #[inline(always)]
    fn set(&self, ctx: u8) -> usize {
        let k = self;
        // Every word informative (addresses, IPs, ports): fold the high
        // bits down before the multiply keeps only its high half.
        let x = k[0] ^ k[1].rotate_left(23) ^ k[2].rotate_left(43) ^ k[3].rotate_left(11);
        let x = x ^ x >> 29 ^ u64::from(ctx);
        (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & (Self::SETS - 1)
    }

    /// Without a call to `memcmp`.
    #[inline(always)]
    fn same(&self, o: &Self) -> bool {
        ((self[0] ^ o[0]) | (self[1] ^ o[1]) | (self[2] ^ o[2]) | (self[3] ^ o[3])) == 0
    }
}

/// What the header decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// Classified VLAN.
    pub vid: u16,
    /// Outer tag's PCP (0 untagged).
    pub pcp: u8,
    /// The frame has an 802.1Q tag.
    pub tagged: bool,
    /// The egress port sends this VLAN untagged.
    pub untag: bool,
    /// Egress port (below [`crate::types::MAX_PORTS`]).
    pub port: u16,
}

/// What the sender's side of the policy decided for a flow it permits
/// without a meter (as [`crate::policy::flow::IngressHit`] resolves it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Side {
    /// The rule hit counter to count, or `u32::MAX`: none.
    pub hit: u32,
    /// Traffic class.
    pub class: u8,
    /// PCP to write on egress (0xff: keep).
    pub pcp: u8,
    /// DSCP to write (0xff: keep).
    pub dscp: u8,
}

impl Side {
    /// No policy: no VSI, no rule, class 0, nothing rewritten.
    pub const NONE: Side = Side {
        hit: u32::MAX,
        class: 0,
        pcp: 0xff,
        dscp: 0xff,
    };
}

impl Default for Side {
    fn default() -> Self {
        Side::NONE
    }
}

/// A remembered decision as the one pass hands it on: the frame's tag, its
/// egress port, class and rewrites, the rule hit to count. Kept packed in
/// three 32-bit words as the slot holds it, so an answer is a few whole
/// moves: with one field per byte, the copy was split field by field
/// through the stack, and the overlapping pieces of that copy stalled
/// every frame's load.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Answer {
    /// From the low end: VID (2 bytes), PCP, tagged.
    tag: u32,
    /// From the low end: egress port, class, PCP to write, DSCP to write.
    out: u32,
    hit: u32,
}

impl Answer {
    /// The answer of no frame: VID 0 untagged to port 0, class 0, nothing
    /// to rewrite, no rule hit.
    pub const NONE: Answer = Answer::pack(0, 0, false, 0, [0, 0xff, 0xff], u32::MAX);

    /// The fields in their places; `fix` is class, PCP and DSCP to write.
    #[inline(always)]
    const fn pack(vid: u16, pcp: u8, tagged: bool, port: u8, fix: [u8; 3], hit: u32) -> Answer {
        let [class, set_pcp, set_dscp] = fix;
        Answer {
            tag: vid as u32 | (pcp as u32) << 16 | (tagged as u32) << 24,
            out: port as u32
                | (class as u32) << 8
                | (set_pcp as u32) << 16
                | (set_dscp as u32) << 24,
            hit,
        }
    }

    /// The answer of a header and a sender side, and whether egress leaves
    /// the frame as it came (as `egress` decides: untagged in and out, or
    /// tagged in and out, its TCI rewritten from its own PCP and VID, the
    /// same bytes; no DSCP to write, no PCP to write on a tagged exit).
    #[inline(always)]
    pub fn of(head: Head, side: Side) -> (Answer, bool) {
        let plain =
            head.tagged != head.untag && side.dscp == 0xff && (side.pcp == 0xff || head.untag);
        let fix = [side.class, side.pcp, side.dscp];
        let a = Answer::pack(
            head.vid,
            head.pcp,
            head.tagged,
            head.port as u8,
            fix,
            side.hit,
        );
        (a, plain)
    }

    /// Classified VLAN.
    #[inline(always)]
    pub fn vid(&self) -> u16 {
        self.tag as u16
    }

    /// Outer tag's PCP (0 untagged).
    #[inline(always)]
    pub fn pcp(&self) -> u8 {
        (self.tag >> 16) as u8
    }

    /// The frame has an 802.1Q tag.
    #[inline(always)]
    pub fn tagged(&self) -> bool {
        self.tag >> 24 != 0
    }

    /// Egress port (below [`crate::types::MAX_PORTS`]).
    #[inline(always)]
    pub fn port(&self) -> u8 {
        self.out as u8
    }

    /// Traffic class.
    #[inline(always)]
    pub fn class(&self) -> u8 {
        (self.out >> 8) as u8
    }

    /// PCP to write on egress (0xff: keep).
    #[inline(always)]
    pub fn set_pcp(&self) -> u8 {
        (self.out >> 16) as u8
    }

    /// DSCP to write (0xff: keep).
    #[inline(always)]
    pub fn set_dscp(&self) -> u8 {
        (self.out >> 24) as u8
    }

    /// The rule hit counter to count, or `u32::MAX`: none.
    #[inline(always)]
    pub fn hit(&self) -> u32 {
        self.hit
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("vid", &self.vid())
            .field("pcp", &self.pcp())
            .field("tagged", &self.tagged())
            .field("port", &self.port())
            .field("class", &self.class())
            .field("set_pcp", &self.set_pcp())
            .field("set_dscp", &self.set_dscp())
            .field("hit", &self.hit())
            .finish()
    }
}

/// One answer, on a cache line of its own.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Slot<K> {
    k: K,
    until_ms: u64,
    epoch: u64,
    answer: Answer,
    /// Ingress port + 1 (0: empty).
    ctx: u8,
    /// Egress leaves the frame as it came ([`Answer::of`]).
    plain: bool,
}

/// See the module docs.
pub struct Memo<K> {
    sets: Box<[[Slot<K>; 2]]>,
    /// Answers used.
    pub hits: u64,
    /// Answers found but no longer standing (the FDB was written, or their
    /// time came): decided again.
    pub stale: u64,
    /// Frames decided again (`stale` included).
    pub misses: u64,
}

impl<K: MemoKey> Memo<K> {
    /// An empty memo.
    pub fn new() -> Memo<K> {
        Memo {
            sets: vec![[Slot::default(); 2]; K::SETS].into_boxed_slice(),
            hits: 0,
            stale: 0,
            misses: 0,
        }
    }

    /// Forget every answer (the snapshot changed).
    pub fn clear(&mut self) {
        for s in self.sets.iter_mut() {
            *s = [Slot::default(); 2];
        }
    }

    /// The set of (ingress port `inp`, key `k`), for [`Memo::get_in`] and
    /// [`Memo::put_in`], with both its lines asked for ahead of them.
    #[inline(always)]
    pub fn locate(&self, inp: u16, k: &K) -> usize {
        let si = k.set(inp as u8 + 1);
        let set = &self.sets[si];
        crate::util::prefetch(&set[0]);
        crate::util::prefetch(&set[1]);
        si
    }

    /// The answer for (ingress port `inp`, key `k`), if there is one and it
    /// still stands at `now_ms` with the FDB at write count `epoch`, and
    /// whether egress leaves the frame as it came ([`Answer::of`]).
    #[cfg(test)]
    pub fn get(&mut self, inp: u16, k: &K, now_ms: u64, epoch: u64) -> Option<(Answer, bool)> {
        self.get_in(k.set(inp as u8 + 1), inp, k, now_ms, epoch)
            .map(|(a, plain)| (*a, plain))
    }

    /// [`Memo::get`] in set `si` ([`Memo::locate`] of `inp` and `k`), the
    /// answer where it lies (copied whole by the caller).
    #[inline(always)]
    pub fn get_in(
        &mut self,
        si: usize,
        inp: u16,
        k: &K,
        now_ms: u64,
        epoch: u64,
    ) -> Option<(&Answer, bool)> {
        let ctx = inp as u8 + 1;
        debug_assert_eq!(si, k.set(ctx));
        let set = &self.sets[si];
        for s in set {
            if s.ctx == ctx && s.k.same(k) {
                if now_ms < s.until_ms && s.epoch == epoch {
                    self.hits += 1;
                    return Some((&s.answer, s.plain));
                }
                self.stale += 1;
                break;
            }
        }
        self.misses += 1;
        None
    }

    /// Remember `head` and `side` for (`inp`, `k`), decided from an FDB read
    /// at write count `epoch` or later, standing until `until_ms` while the
    /// count stays.
    #[cfg(test)]
    pub fn put(&mut self, inp: u16, k: &K, head: Head, side: Side, until_ms: u64, epoch: u64) {
        let si = k.set(inp as u8 + 1);
        self.put_in(si, inp, k, head, side, until_ms, epoch);
    }

    /// [`Memo::put`] in set `si` ([`Memo::locate`] of `inp` and `k`).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn put_in(
        &mut self,
        si: usize,
        inp: u16,
        k: &K,
        head: Head,
        side: Side,
        until_ms: u64,
        epoch: u64,
    ) {
        debug_assert!(usize::from(inp) < crate::types::MAX_PORTS);
        debug_assert!(usize::from(head.port) < crate::types::MAX_PORTS && head.pcp < 8);
        let ctx = inp as u8 + 1;
        debug_assert_eq!(si, k.set(ctx));
        let set = &mut self.sets[si];
        let (answer, plain) = Answer::of(head, side);
        let new = Slot {
            k: *k,
            until_ms,
            epoch,
            answer,
            ctx,
            plain,
        };
        // A key is in one way at most: replacing way 0's own answer keeps
        // way 1; otherwise way 0 moves over way 1 (its older answer, or this
        // key's own stale one). Way 1 is empty while way 0 is.
        if !(set[0].ctx == ctx && set[0].k.same(k)) {
            set[1] = set[0];
        }
        set[0] = new;
    }
}

impl<K: MemoKey> Default for Memo<K> {
    fn default() -> Self {
        Memo::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdb::{Fdb, REFRESH_MS};
    use crate::types::{Mac, PortId, Vid};

    /// What the memo gives for an answer put with `head(port)` and no policy.
    fn ans(port: u16) -> Option<(Answer, bool)> {
        Some(Answer::of(head(port), Side::NONE))
    }

    fn head(port: u16) -> Head {
        Head {
            vid: 10,
            port,
            ..Head::default()
        }
    }

    #[test]
    fn an_answer_stands_until_its_time_or_an_fdb_write() {
        let fdb = Fdb::new(1024, 1024, 300_000);
        let (a, b) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        fdb.learn(a, Vid(10), PortId(0), 5);
        fdb.learn(b, Vid(10), PortId(1), 5);
        let ep = fdb.epoch();
        let su = fdb.known_until(a.to_u64(), 10, PortId(0), 6).unwrap();
        let (e, du) = fdb.lookup_until(b.to_u64(), 10, 6).unwrap();
        assert_eq!(e.port, PortId(1));
        assert_eq!(su, 5 + REFRESH_MS);
        assert_eq!(du, 5 + 300_000 + 1);
        // Exactly when the FDB's own answers change by time.
        assert!(fdb.is_known_raw(a.to_u64(), 10, PortId(0), su - 1));
        assert!(!fdb.is_known_raw(a.to_u64(), 10, PortId(0), su));
        assert!(fdb.lookup_raw(b.to_u64(), 10, du - 1).is_some());
        assert!(fdb.lookup_raw(b.to_u64(), 10, du).is_none());
        let mut m = Memo::new();
        let h = [1, 2, 3, 0];
        assert_eq!(m.get(0, &h, 6, fdb.epoch()), None);
        m.put(0, &h, head(1), Side::NONE, su.min(du), ep);
        assert_eq!(m.get(0, &h, 6, fdb.epoch()), ans(1));
        // Another ingress port, other bytes: not this answer.
        assert_eq!(m.get(1, &h, 6, fdb.epoch()), None);
        assert_eq!(m.get(0, &[1, 2, 4, 0], 6, fdb.epoch()), None);
        // The source's refresh time comes.
        assert_eq!(m.get(0, &h, su - 1, fdb.epoch()), ans(1));
        assert_eq!(m.get(0, &h, su, fdb.epoch()), None);
        // Reading writes nothing; a known source learned again neither.
        fdb.lookup_raw(b.to_u64(), 10, 7);
        fdb.learn(a, Vid(10), PortId(0), 7);
        assert_eq!(m.get(0, &h, 7, fdb.epoch()), ans(1));
        // Every write counts: a move, a static entry, a removal, ageing, a flush.
        let writes: [&dyn Fn(); 5] = [
            &|| {
                assert_eq!(
                    fdb.learn(b, Vid(10), PortId(2), 8),
                    crate::fdb::Learn::Moved(PortId(1))
                )
            },
            &|| assert!(fdb.insert_static(Mac([2, 0, 0, 0, 0, 3]), Vid(10), PortId(1))),
            &|| assert!(fdb.remove(Mac([2, 0, 0, 0, 0, 3]), Vid(10))),
            &|| assert_eq!(fdb.age(400_000), 2),
            &|| {
                fdb.learn(a, Vid(10), PortId(0), 400_000);
                let ep = fdb.epoch();
                assert_eq!(fdb.flush_port(PortId(0)), 1);
                assert_ne!(fdb.epoch(), ep);
            },
        ];
        for w in writes {
            let ep = fdb.epoch();
            m.put(0, &h, head(1), Side::NONE, u64::MAX, ep);
            assert_eq!(m.get(0, &h, 8, fdb.epoch()), ans(1));
            w();
            assert_eq!(m.get(0, &h, 8, fdb.epoch()), None);
        }
        // Time once, a write five times.
        assert_eq!(m.stale, 6);
        // Cleared with the snapshot.
        m.put(0, &h, head(2), Side::NONE, u64::MAX, fdb.epoch());
        assert_eq!(m.get(0, &h, 9, fdb.epoch()), ans(2));
        m.clear();
        assert_eq!(m.get(0, &h, 9, fdb.epoch()), None);
    }

    #[test]
    fn an_answer_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Slot<FlowWords>>(), 64);
        assert_eq!(std::mem::size_of::<Slot<Head18>>(), 64);
        assert_eq!(std::mem::align_of::<Slot<Head18>>(), 64);
    }

    #[test]
    fn an_answer_comes_back_as_it_was_put() {
        let mut m = Memo::new();
        let k = [7, 8, 9, 10];
        for (head, side, want) in [
            (
                Head {
                    vid: 4094,
                    pcp: 7,
                    tagged: true,
                    untag: false,
                    port: 63,
                },
                Side {
                    hit: 3,
                    class: 7,
                    pcp: 5,
                    dscp: 63,
                },
                (Answer::pack(4094, 7, true, 63, [7, 5, 63], 3), false),
            ),
            (
                Head {
                    vid: 1,
                    pcp: 0,
                    tagged: false,
                    untag: true,
                    port: 0,
                },
                Side::NONE,
                (
                    Answer::pack(1, 0, false, 0, [0, 0xff, 0xff], u32::MAX),
                    true,
                ),
            ),
        ] {
            m.put(63, &k, head, side, 100, 1);
            assert_eq!(m.get(63, &k, 99, 1), Some(want));
            let (a, _) = want;
            let fields = (a.vid(), a.pcp(), a.tagged(), a.port());
            assert_eq!(fields, (head.vid, head.pcp, head.tagged, head.port as u8));
            let fields = (a.class(), a.set_pcp(), a.set_dscp(), a.hit());
            assert_eq!(fields, (side.class, side.pcp, side.dscp, side.hit));
            assert_eq!(m.get(62, &k, 99, 1), None, "another ingress port");
        }
    }

    #[test]
    fn egress_leaves_a_frame_as_it_came_only_when_it_changes_nothing() {
        let h = |tagged, untag| Head {
            vid: 10,
            pcp: 3,
            tagged,
            untag,
            port: 1,
        };
        let keep = Side::NONE;
        let rewrite = |pcp, dscp| Side {
            pcp,
            dscp,
            ..Side::NONE
        };
        // Untagged in and out, tagged in and out: as it came.
        assert!(Answer::of(h(false, true), keep).1);
        assert!(Answer::of(h(true, false), keep).1);
        // A tag to push or to pop.
        assert!(!Answer::of(h(false, false), keep).1);
        assert!(!Answer::of(h(true, true), keep).1);
        // A DSCP to write, always; a PCP to write, on a tagged exit only.
        assert!(!Answer::of(h(false, true), rewrite(0xff, 46)).1);
        assert!(!Answer::of(h(true, false), rewrite(5, 0xff)).1);
        assert!(Answer::of(h(false, true), rewrite(5, 0xff)).1);
    }

    #[test]
    fn two_answers_share_a_set_and_a_third_evicts_the_older() {
        let mut m = Memo::new();
        // Three keys of one set.
        let mut keys = Vec::new();
        let target = [0u64; 4].set(1);
        let mut i = 0u64;
        while keys.len() < 3 {
            let h = [i, 0, 0, 0];
            if h.set(1) == target {
                keys.push(h);
            }
            i += 1;
        }
        m.put(0, &keys[0], head(0), Side::NONE, u64::MAX, 0);
        m.put(0, &keys[1], head(1), Side::NONE, u64::MAX, 0);
        assert_eq!(m.get(0, &keys[0], 0, 0), ans(0));
        assert_eq!(m.get(0, &keys[1], 0, 0), ans(1));
        // Re-putting an answer keeps the other one.
        m.put(0, &keys[1], head(3), Side::NONE, u64::MAX, 0);
        assert_eq!(m.get(0, &keys[0], 0, 0), ans(0));
        assert_eq!(m.get(0, &keys[1], 0, 0), ans(3));
        m.put(0, &keys[2], head(2), Side::NONE, u64::MAX, 0);
        assert_eq!(m.get(0, &keys[2], 0, 0), ans(2));
        assert_eq!(m.get(0, &keys[1], 0, 0), ans(3));
        assert_eq!(m.get(0, &keys[0], 0, 0), None);
        assert_eq!((m.hits, m.stale, m.misses), (6, 0, 1));
    }
}
