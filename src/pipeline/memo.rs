//! The one pass's header memo: per pipeline (one per worker), what
//! [`super::Pipeline::known_unicast`] decided from a frame's ingress port
//! and first 18 bytes (addresses, tag, inner ethertype) — VLAN, PCP, the
//! egress port — together with the FDB's write count ([`Fdb::epoch`])
//! taken before the decision read the FDB, and the time the source and
//! destination entries it read stop being fresh and live. An answer is
//! used only while the FDB has not been written since and that time has
//! not come, so it is the answer the FDB would give now. The snapshot's
//! part (port VLANs, reflective relay, isolation, the switch's MAC) is
//! cleared with the snapshot ([`Memo::clear`] on refresh). What depends on
//! more than the 18 bytes (the length against the MTU, policy) is checked
//! per frame.
//!
//! Two-way sets, [`SETS`] of them: a new answer takes way 0 and moves the
//! old one to way 1.

#[cfg(doc)]
use crate::fdb::Fdb;

/// Sets in the memo (two answers each): room for a few thousand flows.
pub const SETS: usize = 4096;

/// What the 18 bytes decided.
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
    /// Egress port.
    pub port: u16,
}

/// One answer, on a cache line of its own.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Slot {
    h: (u64, u64, u16),
    /// Ingress port + 1 (0: empty).
    ctx: u16,
    head: Head,
    until_ms: u64,
    epoch: u64,
}

/// See the module docs.
pub struct Memo {
    sets: Box<[[Slot; 2]]>,
    /// Answers used.
    pub hits: u64,
    /// Answers found but no longer standing (the FDB was written, or their
    /// time came): decided again.
    pub stale: u64,
    /// Frames decided again (`stale` included).
    pub misses: u64,
}

#[inline(always)]
fn set_of(ctx: u16, h: (u64, u64, u16)) -> usize {
    let x = h.0 ^ h.1.rotate_left(23) ^ (u64::from(h.2) << 40) ^ u64::from(ctx);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & (SETS - 1)
}

impl Memo {
    /// An empty memo.
    pub fn new() -> Memo {
        Memo {
            sets: vec![[Slot::default(); 2]; SETS].into_boxed_slice(),
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

    /// The answer for (ingress port `inp`, first 18 bytes `h`), if there is
    /// one and it still stands at `now_ms` with the FDB at write count `epoch`.
    #[inline(always)]
    pub fn get(&mut self, inp: u16, h: (u64, u64, u16), now_ms: u64, epoch: u64) -> Option<Head> {
        let ctx = inp + 1;
        let set = &self.sets[set_of(ctx, h)];
        for s in set {
            if s.ctx == ctx && s.h == h {
                if now_ms < s.until_ms && s.epoch == epoch {
                    self.hits += 1;
                    return Some(s.head);
                }
                self.stale += 1;
                break;
            }
        }
        self.misses += 1;
        None
    }

    /// Remember `head` for (`inp`, `h`), decided from an FDB read at write
    /// count `epoch` or later, standing until `until_ms` while the count stays.
    #[inline]
    pub fn put(&mut self, inp: u16, h: (u64, u64, u16), head: Head, until_ms: u64, epoch: u64) {
        let ctx = inp + 1;
        let set = &mut self.sets[set_of(ctx, h)];
        let new = Slot {
            h,
            ctx,
            head,
            until_ms,
            epoch,
        };
        // A key is in one way at most: replacing way 0's own answer keeps
        // way 1; otherwise way 0 moves over way 1 (its older answer, or this
        // key's own stale one). Way 1 is empty while way 0 is.
        if !(set[0].ctx == ctx && set[0].h == h) {
            set[1] = set[0];
        }
        set[0] = new;
    }
}

impl Default for Memo {
    fn default() -> Self {
        Memo::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdb::{Fdb, REFRESH_MS};
    use crate::types::{Mac, PortId, Vid};

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
        let h = (1, 2, 3);
        assert_eq!(m.get(0, h, 6, fdb.epoch()), None);
        m.put(0, h, head(1), su.min(du), ep);
        assert_eq!(m.get(0, h, 6, fdb.epoch()), Some(head(1)));
        // Another ingress port, other bytes: not this answer.
        assert_eq!(m.get(1, h, 6, fdb.epoch()), None);
        assert_eq!(m.get(0, (1, 2, 4), 6, fdb.epoch()), None);
        // The source's refresh time comes.
        assert_eq!(m.get(0, h, su - 1, fdb.epoch()), Some(head(1)));
        assert_eq!(m.get(0, h, su, fdb.epoch()), None);
        // Reading writes nothing; a known source learned again neither.
        fdb.lookup_raw(b.to_u64(), 10, 7);
        fdb.learn(a, Vid(10), PortId(0), 7);
        assert_eq!(m.get(0, h, 7, fdb.epoch()), Some(head(1)));
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
            m.put(0, h, head(1), u64::MAX, ep);
            assert_eq!(m.get(0, h, 8, fdb.epoch()), Some(head(1)));
            w();
            assert_eq!(m.get(0, h, 8, fdb.epoch()), None);
        }
        // Time once, a write five times.
        assert_eq!(m.stale, 6);
        // Cleared with the snapshot.
        m.put(0, h, head(2), u64::MAX, fdb.epoch());
        assert_eq!(m.get(0, h, 9, fdb.epoch()), Some(head(2)));
        m.clear();
        assert_eq!(m.get(0, h, 9, fdb.epoch()), None);
    }

    #[test]
    fn an_answer_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
        assert_eq!(std::mem::align_of::<Slot>(), 64);
    }

    #[test]
    fn two_answers_share_a_set_and_a_third_evicts_the_older() {
        let mut m = Memo::new();
        // Three keys of one set.
        let mut keys = Vec::new();
        let target = set_of(1, (0, 0, 0));
        let mut i = 0u64;
        while keys.len() < 3 {
            let h = (i, 0, 0);
            if set_of(1, h) == target {
                keys.push(h);
            }
            i += 1;
        }
        m.put(0, keys[0], head(0), u64::MAX, 0);
        m.put(0, keys[1], head(1), u64::MAX, 0);
        assert_eq!(m.get(0, keys[0], 0, 0), Some(head(0)));
        assert_eq!(m.get(0, keys[1], 0, 0), Some(head(1)));
        // Re-putting an answer keeps the other one.
        m.put(0, keys[1], head(3), u64::MAX, 0);
        assert_eq!(m.get(0, keys[0], 0, 0), Some(head(0)));
        assert_eq!(m.get(0, keys[1], 0, 0), Some(head(3)));
        m.put(0, keys[2], head(2), u64::MAX, 0);
        assert_eq!(m.get(0, keys[2], 0, 0), Some(head(2)));
        assert_eq!(m.get(0, keys[1], 0, 0), Some(head(3)));
        assert_eq!(m.get(0, keys[0], 0, 0), None);
        assert_eq!((m.hits, m.stale, m.misses), (6, 0, 1));
    }
}
