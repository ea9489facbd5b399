//! Per-port egress scheduler: 8 traffic classes, strict priority over deficit
//! round robin, a port shaper and counted tail drop.
//!
//! * Classes are 0..=7, 7 the highest. Classes `>= strict_from` are served in
//!   strict priority, highest first; while any of them has a frame, no lower
//!   class sends. The classes below share what is left by deficit round robin
//!   (Shreedhar & Varghese): each visit adds the class's quantum (bytes) to its
//!   deficit and sends head frames while they fit; an emptied class loses its
//!   deficit. Long-run shares are proportional to the quanta. A quantum of at
//!   least the largest frame keeps each pick O(1); smaller ones still work.
//! * The optional shaper is a token bucket in bytes (rate bytes/s, burst
//!   bytes). A frame may start while the bucket is not negative and then takes
//!   its length, so the bucket can go at most one frame below zero: no frame
//!   size can ever stall the port, and the long-run rate is exact (tokens are
//!   kept in byte-nanoseconds, no rounding). At most `burst + one frame`
//!   leaves back to back.
//! * Each class has a fixed-capacity ring allocated at construction; a frame
//!   arriving at a full class is refused ([`Dropped`] hands its buffer back)
//!   and counted as a tail drop. Nothing allocates per frame.
//!
//! Frames are [`PktBuf`] handles with the length to account (normally the
//! frame length; add preamble and inter-frame gap to shape line rate).
//! Time is passed in as nanoseconds.

use crate::buf::{Burst, PktBuf};

/// Number of traffic classes.
pub const CLASSES: usize = 8;
/// Smallest accepted DRR quantum, bytes.
pub const MIN_QUANTUM: u32 = 64;
/// Largest accepted DRR quantum, bytes.
pub const MAX_QUANTUM: u32 = 1 << 20;
/// Largest accepted per-class queue depth, frames.
pub const MAX_DEPTH: u32 = 1 << 16;
/// Lowest accepted shaper rate, bytes/s (8 kbit/s).
pub const MIN_RATE: u64 = 1_000;
/// Highest accepted shaper rate, bytes/s (1 Tbit/s).
pub const MAX_RATE: u64 = 125_000_000_000;
/// Largest accepted shaper burst, bytes (1 GiB).
pub const MAX_BURST: u64 = 1 << 30;

const NS: u64 = 1_000_000_000;

/// Port shaper parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shaper {
    /// Rate, bytes per second.
    pub rate: u64,
    /// Bucket size, bytes (at least one frame is recommended).
    pub burst: u64,
}

/// Scheduler configuration for one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchedConfig {
    /// Classes `>= strict_from` are strict priority; 8 means none, 0 means all.
    pub strict_from: u8,
    /// DRR quantum per class, bytes (ignored for strict classes).
    pub quantum: [u32; CLASSES],
    /// Queue depth limit per class, frames (also the ring capacity).
    pub depth: [u32; CLASSES],
    /// Port shaper; `None` sends as fast as the caller dequeues.
    pub shaper: Option<Shaper>,
}

impl Default for SchedConfig {
    /// Classes 6 and 7 strict, equal 1518-byte quanta, 512 frames per class, no shaper.
    fn default() -> Self {
        SchedConfig {
            strict_from: 6,
            quantum: [1518; CLASSES],
            depth: [512; CLASSES],
            shaper: None,
        }
    }
}

impl SchedConfig {
    /// Check the parameters; the error names the field (`strict_from`,
    /// `quantum[2]`, `depth[0]`, `shaper.rate`, `shaper.burst`).
    pub fn validate(&self) -> Result<(), String> {
        if usize::from(self.strict_from) > CLASSES {
            return Err(format!("strict_from: {} is not in 0..=8", self.strict_from));
        }
        for c in 0..usize::from(self.strict_from) {
            let q = self.quantum[c];
            if !(MIN_QUANTUM..=MAX_QUANTUM).contains(&q) {
                return Err(format!(
                    "quantum[{c}]: {q} bytes is not in {MIN_QUANTUM}..={MAX_QUANTUM}"
                ));
            }
        }
        for (c, &d) in self.depth.iter().enumerate() {
            if d == 0 || d > MAX_DEPTH {
                return Err(format!("depth[{c}]: {d} frames is not in 1..={MAX_DEPTH}"));
            }
        }
        if let Some(s) = self.shaper {
            if !(MIN_RATE..=MAX_RATE).contains(&s.rate) {
                return Err(format!(
                    "shaper.rate: {} bytes/s is not in {MIN_RATE}..={MAX_RATE}",
                    s.rate
                ));
            }
            if s.burst == 0 || s.burst > MAX_BURST {
                return Err(format!(
                    "shaper.burst: {} bytes is not in 1..={MAX_BURST}",
                    s.burst
                ));
            }
        }
        Ok(())
    }
}

/// A frame refused by [`Sched::enqueue`] (class queue full); the caller frees
/// the buffer. Already counted as a tail drop.
#[derive(Debug, PartialEq, Eq)]
pub struct Dropped(pub PktBuf);

/// Counters for one class.
///
/// `enqueued` is not counted per frame: it is derived as
/// `dequeued + depth + drained`, which is exact because every accepted frame
/// is sent, still queued, or removed by [`Sched::drain`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Frames accepted.
    pub enqueued: u64,
    /// Frames sent.
    pub dequeued: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Frames refused because the class was at its depth limit.
    pub tail_drops: u64,
    /// Bytes refused.
    pub drop_bytes: u64,
    /// Frames removed unsent by [`Sched::drain`].
    pub drained: u64,
    /// Frames queued now.
    pub depth: u64,
}

/// Fixed-capacity FIFO of frames: power-of-two slots, free-running indices.
#[derive(Debug)]
struct Ring {
    /// Empty slots hold a placeholder handle (slot index `u32::MAX`), never handed out.
    bufs: Box<[PktBuf]>,
    lens: Box<[u32]>,
    mask: u32,
    /// Next slot to send.
    head: u32,
    /// Next free slot.
    tail: u32,
}

impl Ring {
    fn new(depth: u32) -> Self {
        let cap = depth.next_power_of_two() as usize;
        Ring {
            bufs: (0..cap).map(|_| Self::placeholder()).collect(),
            lens: vec![0; cap].into_boxed_slice(),
            mask: cap as u32 - 1,
            head: 0,
            tail: 0,
        }
    }
    #[inline(always)]
    fn placeholder() -> PktBuf {
        PktBuf {
            idx: u32::MAX,
            off: 0,
            len: 0,
            ts: 0,
        }
    }
    #[inline(always)]
    fn len(&self) -> u32 {
        self.tail.wrapping_sub(self.head)
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.tail == self.head
    }
    /// Caller checked `len() < limit <= capacity`.
    #[inline(always)]
    fn push(&mut self, buf: PktBuf, len: u32) {
        let i = (self.tail & self.mask) as usize;
        if let (Some(b), Some(l)) = (self.bufs.get_mut(i), self.lens.get_mut(i)) {
            *b = buf;
            *l = len;
            self.tail = self.tail.wrapping_add(1);
        }
    }
    #[inline(always)]
    fn front_len(&self) -> Option<u32> {
        if self.is_empty() {
            return None;
        }
        self.lens.get((self.head & self.mask) as usize).copied()
    }
    #[inline(always)]
    fn pop(&mut self) -> Option<PktBuf> {
        if self.is_empty() {
            return None;
        }
        let slot = self.bufs.get_mut((self.head & self.mask) as usize)?;
        let b = std::mem::replace(slot, Self::placeholder());
        self.head = self.head.wrapping_add(1);
        Some(b)
    }
}

/// Per-class counters kept by the scheduler (enqueued is derived).
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    dequeued: u64,
    bytes: u64,
    tail_drops: u64,
    drop_bytes: u64,
    drained: u64,
}

#[derive(Debug)]
struct ShaperState {
    rate: u64,
    /// Bucket size in byte-nanoseconds per second (bytes × 1e9).
    cap: i64,
    /// Tokens in bytes × 1e9; may go one frame negative.
    tokens: i64,
    last: u64,
}

impl ShaperState {
    #[inline]
    fn refill(&mut self, now: u64) {
        let dt = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        let add = u128::from(dt) * u128::from(self.rate);
        let room = (self.cap - self.tokens) as u128; // tokens <= cap always
        self.tokens += add.min(room) as i64;
    }
}

/// The egress scheduler of one port. Owned by the core that transmits on it.
#[derive(Debug)]
pub struct Sched {
    q: [Ring; CLASSES],
    limit: [u32; CLASSES],
    quantum: [u64; CLASSES],
    deficit: [u64; CLASSES],
    /// Bit c set when class c has frames (valid during a dequeue).
    nonempty: u8,
    /// Bits of the strict classes.
    strict: u8,
    /// DRR: class being visited, and whether its quantum is still to be added.
    cur: u8,
    fresh: bool,
    shaper: Option<ShaperState>,
    stats: [Counts; CLASSES],
    cfg: SchedConfig,
}

impl Sched {
    /// Validate `cfg` and allocate every ring; the shaper bucket starts full at `now_ns`.
    pub fn new(cfg: SchedConfig, now_ns: u64) -> Result<Self, String> {
        cfg.validate()?;
        let strict = if cfg.strict_from >= 8 {
            0
        } else {
            0xffu8 << cfg.strict_from
        };
        Ok(Sched {
            q: std::array::from_fn(|c| Ring::new(cfg.depth[c])),
            limit: cfg.depth,
            quantum: cfg.quantum.map(u64::from),
            deficit: [0; CLASSES],
            nonempty: 0,
            strict,
            cur: 0,
            fresh: true,
            shaper: cfg.shaper.map(|s| {
                let cap = (s.burst * NS) as i64;
                ShaperState {
                    rate: s.rate,
                    cap,
                    tokens: cap,
                    last: now_ns,
                }
            }),
            stats: [Counts::default(); CLASSES],
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SchedConfig {
        &self.cfg
    }

    /// Queue `buf` (accounted as `len` bytes) in `class` (0..=7; higher values
    /// are taken as 7). At the class's depth limit the frame is refused,
    /// counted, and handed back.
    #[inline]
    pub fn enqueue(&mut self, class: u8, buf: PktBuf, len: u32) -> Result<(), Dropped> {
        let c = usize::from(class.min(7));
        let q = &mut self.q[c];
        if q.len() >= self.limit[c] {
            let st = &mut self.stats[c];
            st.tail_drops += 1;
            st.drop_bytes += u64::from(len);
            return Err(Dropped(buf));
        }
        q.push(buf, len);
        Ok(())
    }

    /// Account `frames` frames of `bytes` bytes of `class` that went to the
    /// port without being queued (the scheduler without a shaper and empty,
    /// all of that class, within its depth: a flush would have sent exactly
    /// them, in that order): the counters and the DRR state
    /// end as a dequeue of exactly those frames from an empty scheduler
    /// would leave them.
    #[inline]
    pub fn credit_direct(&mut self, class: u8, frames: u64, bytes: u64) {
        let c = usize::from(class.min(7));
        let st = &mut self.stats[c];
        st.dequeued += frames;
        st.bytes += bytes;
        if self.strict & (1 << c) == 0 {
            // A DRR class served until empty: the pointer stays on it, its
            // deficit is spent, the next visit starts with a fresh quantum.
            self.cur = c as u8;
            self.deficit[c] = 0;
            self.fresh = true;
        }
    }

    /// Send up to `max` frames (and no more than `out` has room for) into `out`,
    /// as the priorities, weights and shaper allow at `now_ns`. Returns the count.
    #[inline]
    pub fn dequeue_burst(&mut self, now_ns: u64, out: &mut Burst, max: usize) -> usize {
        let max = max.min(out.space());
        self.dequeue_with(now_ns, max, |b| {
            // Cannot fail: at most `space()` frames are produced.
            let r = out.push(b);
            debug_assert!(r.is_ok());
        })
    }

    /// Like [`dequeue_burst`](Self::dequeue_burst), handing each frame to `f`
    /// in send order.
    #[inline]
    pub fn dequeue_with(&mut self, now_ns: u64, max: usize, mut f: impl FnMut(PktBuf)) -> usize {
        // Recomputed here rather than kept by `enqueue`: one pass over 8
        // rings per burst instead of a read-modify-write per frame.
        let mut ne = 0u8;
        for (c, q) in self.q.iter().enumerate() {
            ne |= u8::from(!q.is_empty()) << c;
        }
        self.nonempty = ne;
        if ne == 0 || max == 0 {
            return 0;
        }
        // Shaper tokens as a local; without a shaper a budget no burst can spend.
        let mut tokens = match &mut self.shaper {
            Some(s) => {
                s.refill(now_ns);
                s.tokens
            }
            None => i64::MAX,
        };
        let mut n = 0;
        // Each pass serves one class for as long as it may send (a run).
        while n < max && tokens >= 0 {
            let Some(c) = self.pick() else { break };
            let drr = self.strict & (1 << c) == 0;
            let mut deficit = if drr { self.deficit[c] } else { u64::MAX };
            let q = &mut self.q[c];
            let (mut k, mut bytes) = (0u64, 0u64);
            let mut blocked = false;
            while n < max && tokens >= 0 {
                let Some(len) = q.front_len() else { break };
                let len = u64::from(len);
                if len > deficit {
                    blocked = true;
                    break;
                }
                let Some(b) = q.pop() else { break };
                deficit -= len;
                tokens -= (len * NS) as i64;
                bytes += len;
                k += 1;
                n += 1;
                f(b);
            }
            let st = &mut self.stats[c];
            st.dequeued += k;
            st.bytes += bytes;
            let empty = q.is_empty();
            if empty {
                self.nonempty &= !(1 << c);
            }
            if drr {
                self.deficit[c] = if empty { 0 } else { deficit };
                if empty || blocked {
                    self.advance();
                }
            }
        }
        if let Some(s) = &mut self.shaper {
            s.tokens = tokens;
        }
        n
    }

    /// The class whose head frame goes next; for DRR classes the deficit
    /// already covers it (picking again without sending is harmless).
    #[inline]
    fn pick(&mut self) -> Option<usize> {
        let s = self.nonempty & self.strict;
        if s != 0 {
            return Some(7 - s.leading_zeros() as usize);
        }
        let m = self.nonempty & !self.strict;
        if m == 0 {
            return None;
        }
        if m & (1 << self.cur) == 0 {
            self.advance();
        }
        loop {
            let c = usize::from(self.cur);
            if self.fresh {
                self.deficit[c] += self.quantum[c];
                self.fresh = false;
            }
            let head = self.q[c].front_len().map_or(0, u64::from);
            if head <= self.deficit[c] {
                return Some(c);
            }
            self.advance();
        }
    }

    /// Move the DRR pointer to the next non-empty DRR class after `cur` (cyclic).
    #[inline]
    fn advance(&mut self) {
        let m = self.nonempty & !self.strict;
        if m == 0 {
            self.fresh = true;
            return;
        }
        let above = u16::from(m) & !((2u16 << self.cur) - 1);
        self.cur = if above != 0 {
            above.trailing_zeros() as u8
        } else {
            m.trailing_zeros() as u8
        };
        self.fresh = true;
    }

    /// Frames queued in `class` (0..=7).
    pub fn depth(&self, class: u8) -> usize {
        self.q[usize::from(class.min(7))].len() as usize
    }

    /// Frames queued in all classes.
    pub fn len(&self) -> usize {
        self.q.iter().map(|q| q.len() as usize).sum()
    }

    /// True when no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.q.iter().all(Ring::is_empty)
    }

    /// Counters of `class` (0..=7).
    pub fn stats(&self, class: u8) -> ClassStats {
        let c = usize::from(class.min(7));
        let k = &self.stats[c];
        let depth = u64::from(self.q[c].len());
        ClassStats {
            enqueued: k.dequeued + depth + k.drained,
            dequeued: k.dequeued,
            bytes: k.bytes,
            tail_drops: k.tail_drops,
            drop_bytes: k.drop_bytes,
            drained: k.drained,
            depth,
        }
    }

    /// Counters of all classes, indexed by class.
    pub fn all_stats(&self) -> [ClassStats; CLASSES] {
        std::array::from_fn(|c| self.stats(c as u8))
    }

    /// Remove every queued frame (highest class first) and hand it to `f`,
    /// e.g. to free it when the port goes down. Not counted as sent.
    pub fn drain(&mut self, mut f: impl FnMut(PktBuf)) -> usize {
        let mut n = 0;
        for c in (0..CLASSES).rev() {
            while let Some(b) = self.q[c].pop() {
                self.stats[c].drained += 1;
                f(b);
                n += 1;
            }
            self.deficit[c] = 0;
        }
        self.nonempty = 0;
        self.fresh = true;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(idx: u32, len: u16) -> PktBuf {
        PktBuf {
            idx,
            off: 0,
            len,
            ts: 0,
        }
    }

    /// Frame sizes from the crate's deterministic generator.
    struct Rng(crate::policy::acl::Rng);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0.next_u64()
        }
        fn size(&mut self) -> u16 {
            64 + (self.next() % 1455) as u16
        }
    }

    fn cfg(strict_from: u8) -> SchedConfig {
        SchedConfig {
            strict_from,
            quantum: [1518; CLASSES],
            depth: [4096; CLASSES],
            shaper: None,
        }
    }

    fn classes_of(s: &mut Sched, now: u64, max: usize, idx_class: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        s.dequeue_with(now, max, |b| v.push(idx_class[b.index() as usize]));
        v
    }

    #[test]
    fn validate_names_fields() {
        let e = |c: SchedConfig| c.validate().unwrap_err();
        let mut c = cfg(6);
        c.strict_from = 9;
        assert!(e(c).starts_with("strict_from:"));
        let mut c = cfg(6);
        c.quantum[2] = 0;
        assert!(e(c).starts_with("quantum[2]:"));
        c.quantum[2] = MAX_QUANTUM + 1;
        assert!(e(c).starts_with("quantum[2]:"));
        let mut c = cfg(6);
        c.quantum[7] = 0; // strict class: quantum unused
        c.validate().unwrap();
        c.depth[5] = 0;
        assert!(e(c).starts_with("depth[5]:"));
        let mut c = cfg(6);
        c.shaper = Some(Shaper { rate: 0, burst: 1 });
        assert!(e(c).starts_with("shaper.rate:"));
        c.shaper = Some(Shaper {
            rate: 1_000_000,
            burst: 0,
        });
        assert!(e(c).starts_with("shaper.burst:"));
        assert!(Sched::new(c, 0).is_err());
        SchedConfig::default().validate().unwrap();
    }

    #[test]
    fn strict_starves_only_while_busy() {
        let mut s = Sched::new(cfg(6), 0).unwrap();
        let mut class = Vec::new();
        let mut i = 0u32;
        let mut put = |s: &mut Sched, c: u8, n: usize, class: &mut Vec<u8>| {
            for _ in 0..n {
                s.enqueue(c, buf(i, 100), 100).unwrap();
                class.push(c);
                i += 1;
            }
        };
        put(&mut s, 0, 10, &mut class);
        put(&mut s, 3, 10, &mut class);
        put(&mut s, 6, 5, &mut class);
        put(&mut s, 7, 5, &mut class);
        let got = classes_of(&mut s, 0, 12, &class);
        assert_eq!(got[..10], [7, 7, 7, 7, 7, 6, 6, 6, 6, 6]);
        assert!(got[10..].iter().all(|&c| c == 0 || c == 3));
        // A new strict frame goes ahead of the backlog at once.
        put(&mut s, 6, 1, &mut class);
        assert_eq!(classes_of(&mut s, 0, 1, &class), [6]);
        let rest = classes_of(&mut s, 0, 100, &class);
        assert_eq!(rest.len(), 18);
        assert!(s.is_empty());
    }

    #[test]
    fn all_strict_and_no_strict() {
        let mut s = Sched::new(cfg(0), 0).unwrap();
        for c in 0..8u8 {
            s.enqueue(c, buf(u32::from(c), 64), 64).unwrap();
        }
        let class: Vec<u8> = (0..8).collect();
        assert_eq!(classes_of(&mut s, 0, 8, &class), [7, 6, 5, 4, 3, 2, 1, 0]);
        let mut s = Sched::new(cfg(8), 0).unwrap();
        for c in 0..8u8 {
            s.enqueue(c, buf(u32::from(c), 64), 64).unwrap();
        }
        let mut got = classes_of(&mut s, 0, 8, &class);
        got.sort();
        assert_eq!(got, class);
    }

    /// Keep every DRR class backlogged with mixed sizes; byte shares follow the quanta.
    #[test]
    fn drr_shares_by_weight() {
        let quanta = [500u32, 1000, 1500, 3000, 4500, 9000];
        let mut c = cfg(6);
        c.quantum[..6].copy_from_slice(&quanta);
        c.depth = [64; CLASSES];
        let mut s = Sched::new(c, 0).unwrap();
        let mut rng = Rng(crate::policy::acl::Rng(99));
        let mut class_of = Vec::new();
        let mut bytes = [0u64; 6];
        let mut next = 0u32;
        let mut out = Burst::new(32);
        let mut free: Vec<u32> = Vec::new();
        for round in 0..40_000 {
            for cl in 0..6u8 {
                while s.depth(cl) < 32 {
                    let len = rng.size();
                    let idx = free.pop().unwrap_or_else(|| {
                        next += 1;
                        class_of.push(0);
                        next - 1
                    });
                    class_of[idx as usize] = cl;
                    s.enqueue(cl, buf(idx, len), u32::from(len)).unwrap();
                }
            }
            s.dequeue_burst(round, &mut out, 32);
            for b in out.drain() {
                let cl = class_of[b.index() as usize];
                if round >= 1000 {
                    bytes[cl as usize] += b.len() as u64;
                }
                free.push(b.index());
            }
        }
        let total: u64 = bytes.iter().sum();
        let qsum: u32 = quanta.iter().sum();
        for k in 0..6 {
            let share = bytes[k] as f64 / total as f64;
            let want = f64::from(quanta[k]) / f64::from(qsum);
            eprintln!("class {k}: share {share:.4} want {want:.4}");
            assert!(
                (share - want).abs() <= want * 0.05,
                "class {k}: {share} vs {want}"
            );
        }
    }

    /// A backlogged port shaped to 1 Gbit/s, polled every microsecond.
    #[test]
    fn shaper_holds_rate() {
        for (rate, burst) in [
            (125_000_000u64, 16_000u64),
            (1_000_000, 3_000),
            (12_500_000_000, 100_000),
        ] {
            let mut c = cfg(6);
            c.shaper = Some(Shaper { rate, burst });
            c.depth = [256; CLASSES];
            let mut s = Sched::new(c, 0).unwrap();
            let mut rng = Rng(crate::policy::acl::Rng(5));
            let mut out = Burst::new(64);
            let mut sent = 0u64;
            let secs = 2u64;
            let step = 1_000u64;
            let mut idx = 0u32;
            let mut now = 0;
            while now < secs * NS {
                for cl in [0u8, 3, 7] {
                    while s.depth(cl) < 64 {
                        let len = rng.size();
                        s.enqueue(cl, buf(idx, len), u32::from(len)).unwrap();
                        idx = idx.wrapping_add(1);
                    }
                }
                s.dequeue_burst(now, &mut out, 64);
                sent += out.drain().map(|b| b.len() as u64).sum::<u64>();
                now += step;
            }
            let want = (rate * secs + burst) as f64;
            let err = (sent as f64 - want) / want;
            eprintln!(
                "shaper {rate} B/s: sent {sent} want {want} err {:+.4}%",
                err * 100.0
            );
            assert!(err.abs() <= 0.02, "rate {rate}: err {err}");
        }
    }

    #[test]
    fn shaper_burst_then_blocks_until_refilled() {
        let mut c = cfg(8);
        c.shaper = Some(Shaper {
            rate: 1_000_000, // 1 byte/µs
            burst: 1000,
        });
        let mut s = Sched::new(c, 0).unwrap();
        for i in 0..10 {
            s.enqueue(0, buf(i, 400), 400).unwrap();
        }
        let mut out = Burst::new(32);
        // 1000 tokens: 400, 400, 400 (goes to -200), then blocked.
        assert_eq!(s.dequeue_burst(0, &mut out, 32), 3);
        assert_eq!(s.dequeue_burst(199_000, &mut out, 32), 0);
        assert_eq!(s.dequeue_burst(200_000, &mut out, 32), 1);
        assert_eq!(s.dequeue_burst(200_000, &mut out, 32), 0);
        assert_eq!(s.dequeue_burst(600_000, &mut out, 32), 1);
    }

    #[test]
    fn tail_drop_counted() {
        let mut c = cfg(6);
        c.depth[2] = 4;
        let mut s = Sched::new(c, 0).unwrap();
        let mut dropped = Vec::new();
        for i in 0..10 {
            if let Err(Dropped(b)) = s.enqueue(2, buf(i, 100), 100) {
                dropped.push(b.index());
            }
        }
        assert_eq!(dropped, [4, 5, 6, 7, 8, 9]);
        let st = s.stats(2);
        assert_eq!(
            (st.enqueued, st.tail_drops, st.depth, st.drop_bytes),
            (4, 6, 4, 600)
        );
        assert_eq!(s.depth(2), 4);
        let mut out = Burst::new(8);
        assert_eq!(s.dequeue_burst(0, &mut out, 8), 4);
        assert_eq!(s.stats(2).dequeued, 4);
        assert_eq!(s.stats(2).bytes, 400);
        // Room again; class 200 is taken as 7.
        s.enqueue(2, buf(10, 100), 100).unwrap();
        s.enqueue(200, buf(11, 100), 100).unwrap();
        assert_eq!(s.depth(7), 1);
    }

    #[test]
    fn burst_space_respected_and_no_realloc() {
        let mut c = cfg(6);
        c.depth = [16; CLASSES];
        let mut s = Sched::new(c, 0).unwrap();
        let caps: Vec<usize> = s.q.iter().map(|q| q.bufs.len()).collect();
        for i in 0..200 {
            let _ = s.enqueue((i % 8) as u8, buf(i, 64), 64);
        }
        let mut out = Burst::new(5);
        out.push(buf(999, 64)).unwrap();
        assert_eq!(s.dequeue_burst(0, &mut out, 100), 4);
        assert_eq!(out.len(), 5);
        let caps2: Vec<usize> = s.q.iter().map(|q| q.bufs.len()).collect();
        assert_eq!(caps, caps2);
    }

    /// Random enqueue/dequeue with a shaper: every handle comes out exactly once,
    /// or was refused and returned; counters agree.
    #[test]
    fn nothing_lost() {
        let mut c = cfg(5);
        c.depth = [1, 3, 8, 16, 32, 8, 4, 2];
        c.quantum = [64, 100, 1518, 3000, 200, 0, 0, 0];
        c.shaper = Some(Shaper {
            rate: 50_000_000,
            burst: 5_000,
        });
        let mut s = Sched::new(c, 0).unwrap();
        let mut rng = Rng(crate::policy::acl::Rng(31337));
        let n = 200_000u32;
        let mut seen = vec![0u8; n as usize];
        let mut out = Burst::new(32);
        let mut now = 0u64;
        let mut i = 0u32;
        while i < n {
            for _ in 0..rng.next() % 40 {
                if i == n {
                    break;
                }
                let len = rng.size();
                if let Err(Dropped(b)) =
                    s.enqueue((rng.next() % 8) as u8, buf(i, len), u32::from(len))
                {
                    seen[b.index() as usize] += 1;
                }
                i += 1;
            }
            now += rng.next() % 20_000;
            s.dequeue_burst(now, &mut out, (rng.next() % 33) as usize);
            for b in out.drain() {
                seen[b.index() as usize] += 1;
            }
        }
        let left = s.len();
        s.drain(|b| seen[b.index() as usize] += 1);
        assert!(s.is_empty());
        assert!(seen.iter().all(|&x| x == 1));
        let st = s.all_stats();
        let enq: u64 = st.iter().map(|x| x.enqueued).sum();
        let deq: u64 = st.iter().map(|x| x.dequeued).sum();
        let drops: u64 = st.iter().map(|x| x.tail_drops).sum();
        assert_eq!(enq + drops, u64::from(n));
        assert_eq!(deq + left as u64, enq);
        assert!(drops > 0 && deq > 0);
    }
}
