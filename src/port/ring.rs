//! In-process ports on lock-free single-producer single-consumer rings.
//!
//! [`Ring`] moves [`PktBuf`] handles (never bytes) between two cores. A
//! [`RingPort`] is one side of a virtual cable: what the switch transmits on
//! queue `q` appears on the peer's RX queue `q` and vice versa. The peer
//! (a generator, a test, another switch instance) holds the [`RingPort`]
//! returned beside it by [`RingPort::pair`].
#![allow(unsafe_code)]

use super::{Port, PortQueue};
use crate::buf::{Burst, PktBuf};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[repr(align(64))]
struct Padded(AtomicUsize);

/// Bounded SPSC ring of frame handles.
pub struct Ring {
    slots: Box<[UnsafeCell<MaybeUninit<PktBuf>>]>,
    mask: usize,
    head: Padded,    // next slot to read (consumer writes)
    tail: Padded,    // next slot to write (producer writes)
    refused: Padded, // handles the producer could not put in: ring full (producer writes)
}

// SAFETY: the producer only writes slots in [tail, head+cap), the consumer only
// reads slots in [head, tail); index publication uses Release/Acquire.
unsafe impl Sync for Ring {}
unsafe impl Send for Ring {}

impl Ring {
    /// A ring with room for `cap` (rounded up to a power of two) handles.
    pub fn new(cap: usize) -> Arc<Ring> {
        let cap = cap.next_power_of_two().max(2);
        Arc::new(Ring {
            slots: (0..cap)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            mask: cap - 1,
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            refused: Padded(AtomicUsize::new(0)),
        })
    }
    /// Handles refused so far because the ring was full (a snapshot).
    pub fn refused(&self) -> u64 {
        self.refused.0.load(Ordering::Relaxed) as u64
    }
    /// Capacity.
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }
    /// Handles currently queued (a snapshot).
    pub fn len(&self) -> usize {
        self.tail
            .0
            .load(Ordering::Acquire)
            .wrapping_sub(self.head.0.load(Ordering::Acquire))
    }
    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // Handles still queued are dropped with the ring (their buffers are
        // not returned to a pool: whoever owns the pool must drain first).
        let (h, t) = (*self.head.0.get_mut(), *self.tail.0.get_mut());
        let mut i = h;
        while i != t {
            // SAFETY: slots in [head, tail) are initialised.
            unsafe { (*self.slots[i & self.mask].get()).assume_init_drop() };
            i = i.wrapping_add(1);
        }
    }
}

/// The producer end of a ring (single owner).
pub struct Producer {
    r: Arc<Ring>,
    tail: usize,
    head_cache: usize,
}

/// The consumer end of a ring (single owner).
pub struct Consumer {
    r: Arc<Ring>,
    head: usize,
    tail_cache: usize,
}

/// Create a ring of `cap` handles and its two ends.
pub fn channel(cap: usize) -> (Producer, Consumer) {
    let r = Ring::new(cap);
    (
        Producer {
            r: r.clone(),
            tail: 0,
            head_cache: 0,
        },
        Consumer {
            r,
            head: 0,
            tail_cache: 0,
        },
    )
}

impl Producer {
    /// Move frames from the front of `b` into the ring; returns how many.
    #[inline]
    pub fn enqueue(&mut self, b: &mut Burst) -> usize {
        let cap = self.r.mask + 1;
        let mut free = cap - self.tail.wrapping_sub(self.head_cache);
        if free < b.len() {
            self.head_cache = self.r.head.0.load(Ordering::Acquire);
            free = cap - self.tail.wrapping_sub(self.head_cache);
        }
        let n = free.min(b.len());
        if n < b.len() {
            self.refuse(b.len() - n);
        }
        if n == 0 {
            return 0;
        }
        for (i, f) in b.consume_front(n).enumerate() {
            let s = &self.r.slots[self.tail.wrapping_add(i) & self.r.mask];
            // SAFETY: slot is free (outside [head, tail)) and only we write it.
            unsafe { (*s.get()).write(f) };
        }
        self.tail = self.tail.wrapping_add(n);
        self.r.tail.0.store(self.tail, Ordering::Release);
        n
    }
    /// Move one frame in; gives it back when the ring is full.
    #[inline]
    pub fn push(&mut self, f: PktBuf) -> Result<(), PktBuf> {
        let cap = self.r.mask + 1;
        if self.tail.wrapping_sub(self.head_cache) == cap {
            self.head_cache = self.r.head.0.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_cache) == cap {
                self.refuse(1);
                return Err(f);
            }
        }
        let s = &self.r.slots[self.tail & self.r.mask];
        // SAFETY: as in enqueue.
        unsafe { (*s.get()).write(f) };
        self.tail = self.tail.wrapping_add(1);
        self.r.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }
    /// The ring.
    pub fn ring(&self) -> &Arc<Ring> {
        &self.r
    }
    /// Count `n` handles refused (only the producer writes the counter).
    #[cold]
    fn refuse(&self, n: usize) {
        let r = &self.r.refused.0;
        r.store(r.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
}

impl Consumer {
    /// Move up to `out.space()` frames from the ring into `out`; returns how many.
    #[inline]
    pub fn dequeue(&mut self, out: &mut Burst) -> usize {
        let want = out.space();
        let mut avail = self.tail_cache.wrapping_sub(self.head);
        if avail < want {
            self.tail_cache = self.r.tail.0.load(Ordering::Acquire);
            avail = self.tail_cache.wrapping_sub(self.head);
        }
        let n = avail.min(want);
        for i in 0..n {
            let s = &self.r.slots[self.head.wrapping_add(i) & self.r.mask];
            // SAFETY: slot is in [head, tail): initialised, and only we read it.
            let f = unsafe { (*s.get()).assume_init_read() };
            // Cannot fail: n <= space.
            let _ = out.push(f);
        }
        if n > 0 {
            self.head = self.head.wrapping_add(n);
            self.r.head.0.store(self.head, Ordering::Release);
        }
        n
    }
    /// Take one frame.
    #[inline]
    pub fn pop(&mut self) -> Option<PktBuf> {
        if self.tail_cache == self.head {
            self.tail_cache = self.r.tail.0.load(Ordering::Acquire);
            if self.tail_cache == self.head {
                return None;
            }
        }
        let s = &self.r.slots[self.head & self.r.mask];
        // SAFETY: as in dequeue.
        let f = unsafe { (*s.get()).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        self.r.head.0.store(self.head, Ordering::Release);
        Some(f)
    }
    /// The ring.
    pub fn ring(&self) -> &Arc<Ring> {
        &self.r
    }
}

/// One queue pair of a ring port.
pub struct RingQueue {
    rx: Consumer,
    tx: Producer,
}

impl RingQueue {
    /// Receive into `out` (also available without the trait object).
    #[inline]
    pub fn rx(&mut self, out: &mut Burst) -> usize {
        self.rx.dequeue(out)
    }
    /// Transmit from `b`.
    #[inline]
    pub fn tx(&mut self, b: &mut Burst) -> usize {
        self.tx.enqueue(b)
    }
    /// Transmit one frame.
    #[inline]
    pub fn tx_one(&mut self, f: PktBuf) -> Result<(), PktBuf> {
        self.tx.push(f)
    }
    /// Receive one frame.
    #[inline]
    pub fn rx_one(&mut self) -> Option<PktBuf> {
        self.rx.pop()
    }
    /// Frames waiting on this queue's RX ring.
    pub fn rx_pending(&self) -> usize {
        self.rx.ring().len()
    }
}

impl PortQueue for RingQueue {
    #[inline]
    fn rx_burst(&mut self, out: &mut Burst) -> usize {
        self.rx.dequeue(out)
    }
    #[inline]
    fn tx_burst(&mut self, frames: &mut Burst) -> usize {
        self.tx.enqueue(frames)
    }
}

/// A port whose queues are rings; one end of a virtual cable.
pub struct RingPort {
    name: String,
    queues: Vec<Option<RingQueue>>,
    /// The RX ring of every queue (kept after the queues were taken, for
    /// the frames the far end could not put in: [`Port::backend_stats`]).
    rx_rings: Vec<Arc<Ring>>,
}

impl RingPort {
    /// A cable with `queues` queue pairs of `depth` handles each direction.
    /// Returns (the switch side named `name`, the peer side).
    pub fn pair(name: &str, queues: usize, depth: usize) -> (RingPort, RingPort) {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..queues.max(1) {
            let (atx, brx) = channel(depth);
            let (btx, arx) = channel(depth);
            a.push(Some(RingQueue { rx: arx, tx: atx }));
            b.push(Some(RingQueue { rx: brx, tx: btx }));
        }
        let rings = |q: &[Option<RingQueue>]| {
            q.iter()
                .flatten()
                .map(|x| x.rx.ring().clone())
                .collect::<Vec<_>>()
        };
        let (ra, rb) = (rings(&a), rings(&b));
        (
            RingPort {
                name: name.to_string(),
                queues: a,
                rx_rings: ra,
            },
            RingPort {
                name: format!("{name}.peer"),
                queues: b,
                rx_rings: rb,
            },
        )
    }
    /// Take queue `q` as the concrete type (peers use this, no dynamic dispatch).
    pub fn take(&mut self, q: usize) -> Option<RingQueue> {
        self.queues.get_mut(q)?.take()
    }
}

impl Port for RingPort {
    fn name(&self) -> &str {
        &self.name
    }
    fn queues(&self) -> usize {
        self.queues.len()
    }
    fn take_queue(&mut self, q: usize) -> Option<Box<dyn PortQueue>> {
        self.take(q).map(|x| Box::new(x) as Box<dyn PortQueue>)
    }
    /// `rx_refused`: frames the far end offered while this side's RX rings
    /// were full (the worker did not keep up), summed over queues — what a
    /// NIC counts as `imissed`.
    fn backend_stats(&self) -> Option<serde_json::Value> {
        let n: u64 = self.rx_rings.iter().map(|r| r.refused()).sum();
        Some(serde_json::json!({ "rx_refused": n }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::Pool;

    #[test]
    fn full_ring_refuses_without_blocking() {
        let pool = Pool::new(64, 128).unwrap();
        let (mut p, mut c) = channel(8);
        let mut b = Burst::new(32);
        for _ in 0..12 {
            b.push(pool.alloc().unwrap()).unwrap();
        }
        assert_eq!(p.enqueue(&mut b), 8);
        assert_eq!(b.len(), 4, "the rest stays with the caller");
        let mut out = Burst::new(32);
        assert_eq!(c.dequeue(&mut out), 8);
        assert_eq!(p.enqueue(&mut b), 4);
        assert_eq!(c.dequeue(&mut out), 4);
        for f in out.drain().chain(b.drain()) {
            pool.free(f);
        }
        assert_eq!(pool.available(), 64);
    }

    #[test]
    fn a_full_rx_ring_counts_what_it_refused() {
        let pool = Pool::new(64, 128).unwrap();
        let (mut sw, mut peer) = RingPort::pair("p", 1, 8);
        let mut q = peer.take(0).unwrap();
        let mut b = Burst::new(32);
        for _ in 0..12 {
            b.push(pool.alloc().unwrap()).unwrap();
        }
        assert_eq!(q.tx(&mut b), 8);
        let one = b.pop().unwrap();
        assert!(q.tx_one(one).is_err_and(|f| {
            pool.free(f);
            true
        }));
        assert_eq!(sw.backend_stats().unwrap()["rx_refused"], 4 + 1);
        assert_eq!(peer.backend_stats().unwrap()["rx_refused"], 0);
        let mut s = sw.take(0).unwrap();
        let mut out = Burst::new(32);
        assert_eq!(s.rx(&mut out), 8);
        for f in out.drain().chain(b.drain()) {
            pool.free(f);
        }
        assert_eq!(pool.available(), 64);
    }

    #[test]
    fn order_kept_across_threads() {
        let pool = Arc::new(Pool::new(256, 128).unwrap());
        let (mut p, mut c) = channel(64);
        let n = 200_000u64;
        let pl = pool.clone();
        let prod = std::thread::spawn(move || {
            let mut b = Burst::new(16);
            let mut seq = 0u64;
            while seq < n {
                while b.space() > 0 && seq < n {
                    match pl.alloc() {
                        Some(mut f) => {
                            f.ts = seq;
                            seq += 1;
                            b.push(f).unwrap();
                        }
                        None => break,
                    }
                }
                p.enqueue(&mut b);
            }
            while !b.is_empty() {
                p.enqueue(&mut b);
            }
        });
        let mut expect = 0u64;
        let mut out = Burst::new(32);
        while expect < n {
            c.dequeue(&mut out);
            for f in out.drain() {
                assert_eq!(f.ts, expect);
                expect += 1;
                pool.free(f);
            }
        }
        prod.join().unwrap();
        assert_eq!(pool.available(), 256);
    }

    #[test]
    fn pair_is_crossed() {
        let pool = Pool::new(8, 128).unwrap();
        let (mut sw, mut peer) = RingPort::pair("p", 2, 16);
        let mut q1 = sw.take_queue(1).unwrap();
        assert!(sw.take_queue(1).is_none(), "a queue is taken once");
        let mut pq1 = peer.take(1).unwrap();
        pq1.tx_one(pool.alloc().unwrap()).unwrap();
        let mut b = Burst::new(4);
        assert_eq!(q1.rx_burst(&mut b), 1);
        assert_eq!(q1.tx_burst(&mut b), 1);
        let f = pq1.rx_one().unwrap();
        pool.free(f);
    }
}
