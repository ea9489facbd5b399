//! The buffer pool: one mapped region, a lock-free free list, per-core caches.
#![allow(unsafe_code)]

use super::{PktBuf, HEADROOM};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Buffers moved between a [`PoolCache`] and the shared free list at once.
pub const CACHE_BATCH: usize = 64;

/// How the pool's memory is backed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemMode {
    /// Explicit hugetlbfs pages (`MAP_HUGETLB`).
    Hugepages,
    /// Transparent huge pages requested with `madvise(MADV_HUGEPAGE)`.
    Thp,
    /// Ordinary 4 KiB pages.
    Plain,
}

impl MemMode {
    /// Name as printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            MemMode::Hugepages => "hugepages",
            MemMode::Thp => "thp",
            MemMode::Plain => "4k",
        }
    }
}

/// Errors creating a pool.
#[derive(Debug)]
pub enum PoolError {
    /// The requested size is zero or too large.
    BadSize(String),
    /// `mmap` failed.
    Map(std::io::Error),
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::BadSize(s) => write!(f, "bad pool size: {s}"),
            PoolError::Map(e) => write!(f, "cannot map buffer memory: {e}"),
        }
    }
}
impl std::error::Error for PoolError {}

/// Bounded MPMC queue of slot indices (D. Vyukov's array queue).
struct FreeList {
    cells: Box<[Cell]>,
    mask: usize,
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
}

struct Cell {
    seq: AtomicUsize,
    val: UnsafeCell<u32>,
}

#[repr(align(64))]
struct CachePadded<T>(T);

unsafe impl Sync for FreeList {}
unsafe impl Send for FreeList {}

impl FreeList {
    fn new(cap: usize) -> Self {
        let cap = cap.next_power_of_two().max(2);
        let cells = (0..cap)
            .map(|i| Cell {
                seq: AtomicUsize::new(i),
                val: UnsafeCell::new(0),
            })
            .collect();
        FreeList {
            cells,
            mask: cap - 1,
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
        }
    }
    fn push(&self, v: u32) -> bool {
        let mut pos = self.tail.0.load(Ordering::Relaxed);
        loop {
            let cell = &self.cells[pos & self.mask];
            let seq = cell.seq.load(Ordering::Acquire);
            let dif = seq as isize - pos as isize;
            if dif == 0 {
                match self.tail.0.compare_exchange_weak(
                    pos,
                    pos + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS gives this thread the cell until seq is bumped.
                        unsafe { *cell.val.get() = v };
                        cell.seq.store(pos + 1, Ordering::Release);
                        return true;
                    }
                    Err(p) => pos = p,
                }
            } else if dif < 0 {
                // The cell has not been released yet. The list is full only if
                // `cap` indices are in it; otherwise a pop has claimed this cell
                // and is about to release it (the list never holds more than
                // `n <= cap` indices, so failing here would lose a buffer).
                // (A stale `pos` behind `head` makes the difference negative: retry.)
                let head = self.head.0.load(Ordering::Acquire);
                if pos.wrapping_sub(head) as isize > self.mask as isize {
                    return false;
                }
                std::hint::spin_loop();
                pos = self.tail.0.load(Ordering::Relaxed);
            } else {
                pos = self.tail.0.load(Ordering::Relaxed);
            }
        }
    }
    fn pop(&self) -> Option<u32> {
        let mut pos = self.head.0.load(Ordering::Relaxed);
        loop {
            let cell = &self.cells[pos & self.mask];
            let seq = cell.seq.load(Ordering::Acquire);
            let dif = seq as isize - (pos + 1) as isize;
            if dif == 0 {
                match self.head.0.compare_exchange_weak(
                    pos,
                    pos + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: as in push; the producer's Release store published the value.
                        let v = unsafe { *cell.val.get() };
                        cell.seq.store(pos + self.mask + 1, Ordering::Release);
                        return Some(v);
                    }
                    Err(p) => pos = p,
                }
            } else if dif < 0 {
                // The cell is not published yet. The list is empty only if no
                // push has claimed it; otherwise a push is between its claim and
                // its publish: wait for it rather than report an empty pool
                // (which would be a spurious `no_buf`).
                let tail = self.tail.0.load(Ordering::Acquire);
                if tail == pos || (tail.wrapping_sub(pos) as isize) < 0 {
                    return None;
                }
                std::hint::spin_loop();
                pos = self.head.0.load(Ordering::Relaxed);
            } else {
                pos = self.head.0.load(Ordering::Relaxed);
            }
        }
    }
}

/// Slots whose memory and free list belong to another allocator (the DPDK
/// mempool, `src/dpdk/`): the pool then hands out and takes back slots
/// through it instead of its own free list, so a slot and the allocator's
/// buffer are the same memory and no frame is ever copied between them.
pub trait SlotSource: Send + Sync + 'static {
    /// Take one slot (its frame empty); `None` when exhausted.
    fn get(&self) -> Option<u32>;
    /// Take up to `out.len()` slots at once; returns how many were written.
    fn get_bulk(&self, out: &mut [u32]) -> usize {
        let mut n = 0;
        for o in out.iter_mut() {
            match self.get() {
                Some(i) => *o = i,
                None => break,
            }
            n += 1;
        }
        n
    }
    /// Give one slot back.
    fn put(&self, idx: u32);
    /// Give several slots back at once.
    fn put_bulk(&self, idx: &[u32]);
    /// Free slots (including any the allocator caches per core).
    fn available(&self) -> usize;
    /// Slots the allocator has in all (free or not): the pool's capacity.
    fn size(&self) -> usize;
    /// For downcasting to the concrete allocator.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A fixed pool of frame buffers.
pub struct Pool {
    base: *mut u8,
    map_len: usize,
    /// Distance between slots.
    slot: usize,
    /// Usable bytes from a slot's start (headroom + frame); `slot` for own memory.
    room: usize,
    ext: Option<Box<dyn SlotSource>>,
    n: u32,
    free: FreeList,
    /// Buffers currently in the shared free list (approximate while others run).
    avail: AtomicUsize,
    mode: MemMode,
}

// SAFETY: slots are only written through unique `PktBuf` handles; the pool's own
// state is atomic.
unsafe impl Send for Pool {}
unsafe impl Sync for Pool {}

const HUGE_2M: usize = 2 << 20;

impl Pool {
    /// A pool of `n` buffers, each holding frames up to `max_frame` bytes,
    /// trying hugepages, then THP, then plain pages.
    pub fn new(n: usize, max_frame: usize) -> Result<Self, PoolError> {
        Self::with_mode(n, max_frame, None)
    }

    /// Like `new`, but forcing a memory mode (`None` = best available).
    pub fn with_mode(n: usize, max_frame: usize, mode: Option<MemMode>) -> Result<Self, PoolError> {
        if n == 0 || n > (u32::MAX as usize) {
            return Err(PoolError::BadSize(format!("{n} buffers")));
        }
        if max_frame == 0 || max_frame > 65535 - HEADROOM - 64 {
            return Err(PoolError::BadSize(format!("max frame {max_frame} bytes")));
        }
        // Slot = headroom + frame + room for two pushed tags, rounded to a cache line.
        let slot = (HEADROOM + max_frame + 8).next_multiple_of(64);
        let bytes = slot
            .checked_mul(n)
            .ok_or_else(|| PoolError::BadSize(format!("{n} x {slot} bytes")))?;
        let (base, map_len, got) = map_region(bytes, mode)?;
        let free = FreeList::new(n);
        for i in 0..n as u32 {
            free.push(i);
        }
        Ok(Pool {
            base,
            map_len,
            slot,
            room: slot,
            ext: None,
            n: n as u32,
            free,
            avail: AtomicUsize::new(n),
            mode: got,
        })
    }

    /// A pool over memory and a free list owned by `src` (see [`SlotSource`]):
    /// slot `i` is `room` bytes at `base + i * stride`; frames start [`HEADROOM`]
    /// bytes into it. Slot numbers are below `n`; `src` may leave some of them
    /// out (several memory regions in one slot space: the gaps are never
    /// handed out), and [`Pool::capacity`] is `src.size()`.
    ///
    /// # Safety
    /// Every slot `src` hands out (`i < n`, `base + i * stride .. + room`) must
    /// stay valid, readable and writable while the pool lives (`src` is
    /// dropped after the pool's last use), and only the holder of a slot
    /// handed out by `src` writes it.
    pub unsafe fn with_source(
        base: *mut u8,
        stride: usize,
        room: usize,
        n: usize,
        mode: MemMode,
        src: Box<dyn SlotSource>,
    ) -> Result<Self, PoolError> {
        if n == 0 || n > (u32::MAX as usize) {
            return Err(PoolError::BadSize(format!("{n} buffers")));
        }
        if room > stride || !(HEADROOM + 64 + 8..=65535).contains(&room) {
            return Err(PoolError::BadSize(format!(
                "slot room {room} bytes in a stride of {stride}"
            )));
        }
        Ok(Pool {
            base,
            map_len: 0,
            slot: stride,
            room,
            ext: Some(src),
            n: n as u32,
            free: FreeList::new(2),
            avail: AtomicUsize::new(0),
            mode,
        })
    }

    /// The allocator behind a pool made by [`Pool::with_source`].
    pub fn source(&self) -> Option<&dyn SlotSource> {
        self.ext.as_deref()
    }

    /// Memory backing actually obtained.
    pub fn mem_mode(&self) -> MemMode {
        self.mode
    }
    /// Total buffers.
    pub fn capacity(&self) -> usize {
        match &self.ext {
            Some(x) => x.size(),
            None => self.n as usize,
        }
    }
    /// Largest frame a buffer holds (without pushing tags).
    pub fn max_frame(&self) -> usize {
        self.room - HEADROOM - 8
    }
    /// Buffers in the shared free list (not counting those parked in caches).
    pub fn available(&self) -> usize {
        if let Some(x) = &self.ext {
            return x.available();
        }
        self.avail.load(Ordering::Relaxed)
    }

    /// Take one buffer from the shared list (empty frame, default headroom).
    pub fn alloc(&self) -> Option<PktBuf> {
        if let Some(x) = &self.ext {
            return x.get().map(|idx| PktBuf {
                idx,
                off: HEADROOM as u16,
                len: 0,
                ts: 0,
            });
        }
        let idx = self.free.pop()?;
        self.avail.fetch_sub(1, Ordering::Relaxed);
        Some(PktBuf {
            idx,
            off: HEADROOM as u16,
            len: 0,
            ts: 0,
        })
    }

    /// Return a buffer to the shared list.
    pub fn free(&self, b: PktBuf) {
        debug_assert!(b.idx < self.n);
        if let Some(x) = &self.ext {
            x.put(b.idx);
            return;
        }
        let ok = self.free.push(b.idx);
        debug_assert!(ok, "free list overflow: buffer freed twice?");
        self.avail.fetch_add(1, Ordering::Relaxed);
    }

    /// Append up to `n` fresh buffers to `v` (one bulk call for an external
    /// allocator). Returns how many were added.
    pub fn alloc_batch(&self, v: &mut Vec<PktBuf>, n: usize) -> usize {
        if let Some(x) = &self.ext {
            let mut idx = [0u32; CACHE_BATCH];
            let mut got = 0;
            while got < n {
                let k = (n - got).min(CACHE_BATCH);
                let g = x.get_bulk(&mut idx[..k]);
                v.extend(idx[..g].iter().map(|&i| PktBuf {
                    idx: i,
                    off: HEADROOM as u16,
                    len: 0,
                    ts: 0,
                }));
                got += g;
                if g < k {
                    break;
                }
            }
            return got;
        }
        let mut got = 0;
        while got < n {
            match self.alloc() {
                Some(b) => v.push(b),
                None => break,
            }
            got += 1;
        }
        got
    }

    /// Return up to `n` buffers from the end of `v` (one bulk call for an external allocator).
    pub fn free_batch(&self, v: &mut Vec<PktBuf>, n: usize) {
        let n = n.min(v.len());
        if let Some(x) = &self.ext {
            let mut idx = [0u32; CACHE_BATCH];
            let mut left = n;
            while left > 0 {
                let k = left.min(CACHE_BATCH);
                for (slot, b) in idx.iter_mut().zip(v.drain(v.len() - k..)) {
                    *slot = b.idx;
                }
                x.put_bulk(&idx[..k]);
                left -= k;
            }
            return;
        }
        for b in v.drain(v.len() - n..) {
            self.free(b);
        }
    }

    #[inline(always)]
    fn slot_ptr(&self, idx: u32) -> *mut u8 {
        assert!(idx < self.n, "buffer index out of range");
        // SAFETY: idx < n, so the slot lies inside the mapping.
        unsafe { self.base.add(idx as usize * self.slot) }
    }

    /// The frame bytes.
    #[inline(always)]
    pub fn data<'a>(&'a self, b: &'a PktBuf) -> &'a [u8] {
        // SAFETY: off+len <= slot is kept by every mutator below.
        unsafe {
            std::slice::from_raw_parts(self.slot_ptr(b.idx).add(b.off as usize), b.len as usize)
        }
    }

    /// The frame bytes, writable. The handle is unique, so no one else writes this slot.
    #[inline(always)]
    pub fn data_mut<'a>(&'a self, b: &'a mut PktBuf) -> &'a mut [u8] {
        // SAFETY: as `data`; `&mut PktBuf` is the only handle to this slot.
        unsafe {
            std::slice::from_raw_parts_mut(self.slot_ptr(b.idx).add(b.off as usize), b.len as usize)
        }
    }

    /// Set the frame length (keeping the offset). Returns false if it does not fit.
    #[inline(always)]
    pub fn set_len(&self, b: &mut PktBuf, len: usize) -> bool {
        if b.off as usize + len > self.room {
            return false;
        }
        b.len = len as u16;
        true
    }

    /// Replace the frame contents with `bytes`, resetting the headroom. False if too long.
    #[inline]
    pub fn fill(&self, b: &mut PktBuf, bytes: &[u8]) -> bool {
        b.off = HEADROOM as u16;
        if !self.set_len(b, bytes.len()) {
            return false;
        }
        self.data_mut(b).copy_from_slice(bytes);
        true
    }

    /// Insert 4 bytes after the two MAC addresses (a VLAN tag), using headroom:
    /// only the 12 address bytes move. False if the frame is shorter than 12
    /// bytes or the headroom is used up.
    #[inline]
    pub fn push_tag(&self, b: &mut PktBuf, tpid: u16, tci: u16) -> bool {
        if b.off < 4 || b.len < 12 {
            return false;
        }
        let p = self.slot_ptr(b.idx);
        let off = b.off as usize;
        // SAFETY: off-4 .. off+len lies within the slot; copy handles overlap.
        unsafe {
            std::ptr::copy(p.add(off), p.add(off - 4), 12);
            let t = p.add(off + 8);
            t.copy_from_nonoverlapping(tpid.to_be_bytes().as_ptr(), 2);
            t.add(2)
                .copy_from_nonoverlapping(tci.to_be_bytes().as_ptr(), 2);
        }
        b.off -= 4;
        b.len += 4;
        true
    }

    /// Remove the 4 bytes after the MAC addresses (the outer tag). False if
    /// the frame is shorter than 16 bytes.
    #[inline]
    pub fn pop_tag(&self, b: &mut PktBuf) -> bool {
        if b.len < 16 {
            return false;
        }
        let p = self.slot_ptr(b.idx);
        let off = b.off as usize;
        // SAFETY: off .. off+16 lies within the slot; copy handles overlap.
        unsafe { std::ptr::copy(p.add(off), p.add(off + 4), 12) };
        b.off += 4;
        b.len -= 4;
        true
    }

    /// Make `dst` a copy of `src` (frame bytes and timestamp), default headroom.
    #[inline]
    pub fn copy_into(&self, src: &PktBuf, dst: &mut PktBuf) {
        dst.ts = src.ts;
        dst.off = HEADROOM as u16;
        dst.len = src.len;
        let s = self.data(src).as_ptr();
        // SAFETY: dst is a different slot (unique handles); both ranges are in bounds.
        unsafe {
            std::ptr::copy_nonoverlapping(s, self.slot_ptr(dst.idx).add(HEADROOM), src.len as usize)
        };
    }

    /// A new buffer holding a copy of `b`'s frame and timestamp.
    #[inline]
    pub fn clone_buf(&self, b: &PktBuf) -> Option<PktBuf> {
        let mut c = self.alloc()?;
        c.ts = b.ts;
        c.len = b.len;
        let src = self.data(b).as_ptr();
        // SAFETY: c is a fresh slot, distinct from b's; both ranges are in bounds.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src,
                self.slot_ptr(c.idx).add(c.off as usize),
                b.len as usize,
            )
        };
        Some(c)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if self.ext.is_some() {
            return; // the source owns the memory (dropped after this)
        }
        // SAFETY: base/map_len came from mmap in map_region.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.map_len) };
    }
}

fn map_region(bytes: usize, want: Option<MemMode>) -> Result<(*mut u8, usize, MemMode), PoolError> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
    if matches!(want, None | Some(MemMode::Hugepages)) {
        let len = bytes.next_multiple_of(HUGE_2M);
        // SAFETY: anonymous mapping, no fd; checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                flags | libc::MAP_HUGETLB,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            return Ok((p as *mut u8, len, MemMode::Hugepages));
        }
        if want == Some(MemMode::Hugepages) {
            return Err(PoolError::Map(std::io::Error::last_os_error()));
        }
    }
    let len = bytes.next_multiple_of(HUGE_2M);
    // Map without populating first so THP can back it, then touch every page.
    // SAFETY: anonymous mapping; checked for MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(PoolError::Map(std::io::Error::last_os_error()));
    }
    let mut mode = MemMode::Plain;
    if want != Some(MemMode::Plain) {
        // SAFETY: p..p+len is our mapping.
        if unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) } == 0 {
            mode = MemMode::Thp;
        }
    } else {
        // SAFETY: as above; ask for no THP so the plain mode is really plain.
        unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
    }
    // Pre-fault now, not on the hot path.
    let base = p as *mut u8;
    for off in (0..len).step_by(4096) {
        // SAFETY: within the mapping.
        unsafe { base.add(off).write_volatile(0) };
    }
    Ok((base, len, mode))
}

/// A core-local stash of free buffers in front of a shared [`Pool`].
/// Allocates and frees in batches of [`CACHE_BATCH`] against the shared list.
pub struct PoolCache {
    stash: Vec<PktBuf>,
}

impl PoolCache {
    /// An empty cache (capacity allocated once).
    pub fn new() -> Self {
        PoolCache {
            stash: Vec::with_capacity(CACHE_BATCH * 2),
        }
    }
    /// Take a buffer, refilling from the pool when empty.
    #[inline]
    pub fn alloc(&mut self, pool: &Pool) -> Option<PktBuf> {
        if self.stash.is_empty() {
            pool.alloc_batch(&mut self.stash, CACHE_BATCH);
        }
        let mut b = self.stash.pop()?;
        b.off = HEADROOM as u16;
        b.len = 0;
        Some(b)
    }
    /// Park a buffer, spilling a batch back to the pool when full.
    #[inline]
    pub fn free(&mut self, pool: &Pool, b: PktBuf) {
        if self.stash.len() == self.stash.capacity() {
            pool.free_batch(&mut self.stash, CACHE_BATCH);
        }
        self.stash.push(b);
    }
    /// Return everything to the pool (on stop).
    pub fn flush(&mut self, pool: &Pool) {
        let n = self.stash.len();
        pool.free_batch(&mut self.stash, n);
    }
    /// Buffers parked here.
    pub fn len(&self) -> usize {
        self.stash.len()
    }
    /// True when nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.stash.is_empty()
    }
}

impl Default for PoolCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_all() {
        let p = Pool::new(100, 1518).unwrap();
        let mut v = Vec::new();
        while let Some(b) = p.alloc() {
            v.push(b);
        }
        assert_eq!(v.len(), 100);
        assert_eq!(p.available(), 0);
        let mut idx: Vec<u32> = v.iter().map(|b| b.idx).collect();
        idx.sort();
        idx.dedup();
        assert_eq!(idx.len(), 100, "every slot handed out once");
        for b in v {
            p.free(b);
        }
        assert_eq!(p.available(), 100);
    }

    #[test]
    fn push_pop_tag_moves_only_addresses() {
        let p = Pool::new(4, 1518).unwrap();
        let mut b = p.alloc().unwrap();
        let frame: Vec<u8> = (0..60u8).collect();
        assert!(p.fill(&mut b, &frame));
        let off = b.headroom();
        assert!(p.push_tag(&mut b, 0x8100, 0x200a));
        assert_eq!(b.headroom(), off - 4);
        let d = p.data(&b);
        assert_eq!(d.len(), 64);
        assert_eq!(&d[..12], &frame[..12]);
        assert_eq!(&d[12..16], &[0x81, 0x00, 0x20, 0x0a]);
        assert_eq!(&d[16..], &frame[12..]);
        assert!(p.pop_tag(&mut b));
        assert_eq!(p.data(&b), &frame[..]);
        assert_eq!(b.headroom(), off);
        p.free(b);
    }

    #[test]
    fn headroom_exhaustion_and_short_frames_refused() {
        let p = Pool::new(2, 256).unwrap();
        let mut b = p.alloc().unwrap();
        assert!(p.fill(&mut b, &[0u8; 20]));
        for _ in 0..HEADROOM / 4 {
            assert!(p.push_tag(&mut b, 0x8100, 1));
        }
        assert!(!p.push_tag(&mut b, 0x8100, 1), "no headroom left");
        let mut s = p.alloc().unwrap();
        assert!(p.fill(&mut s, &[0u8; 14]));
        assert!(!p.pop_tag(&mut s));
        assert!(!p.fill(&mut s, &vec![0u8; 5000]));
        p.free(b);
        p.free(s);
    }

    #[test]
    fn clone_copies_bytes_and_ts() {
        let p = Pool::new(4, 1518).unwrap();
        let mut a = p.alloc().unwrap();
        p.fill(&mut a, b"abcdefghijklmnopq");
        a.ts = 42;
        let c = p.clone_buf(&a).unwrap();
        assert_ne!(a.idx, c.idx);
        assert_eq!(p.data(&c), b"abcdefghijklmnopq");
        assert_eq!(c.ts, 42);
        p.free(a);
        p.free(c);
    }

    #[test]
    fn cache_round_trip_and_concurrency() {
        let p = std::sync::Arc::new(Pool::new(1024, 1518).unwrap());
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let mut c = PoolCache::new();
                    let mut held = Vec::new();
                    for i in 0..20000 {
                        if i % 3 != 2 {
                            if let Some(b) = c.alloc(&p) {
                                held.push(b);
                            }
                        } else if let Some(b) = held.pop() {
                            c.free(&p, b);
                        }
                        if held.len() > 100 {
                            for b in held.drain(..) {
                                c.free(&p, b);
                            }
                        }
                    }
                    for b in held {
                        c.free(&p, b);
                    }
                    c.flush(&p);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(p.available(), 1024);
    }

    #[test]
    fn forced_modes() {
        let p = Pool::with_mode(8, 1518, Some(MemMode::Plain)).unwrap();
        assert_eq!(p.mem_mode(), MemMode::Plain);
        assert!(Pool::new(0, 1518).is_err());
        assert!(Pool::new(1, 70000).is_err());
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;
    use std::sync::Mutex;

    /// A stand-in for the DPDK mempool: its own memory and free list.
    struct Fake {
        mem: Box<[u8]>,
        free: Mutex<Vec<u32>>,
        bulk_calls: AtomicUsize,
        n: usize,
    }
    impl SlotSource for Fake {
        fn get(&self) -> Option<u32> {
            self.free.lock().unwrap().pop()
        }
        fn put(&self, idx: u32) {
            self.free.lock().unwrap().push(idx);
        }
        fn put_bulk(&self, idx: &[u32]) {
            self.bulk_calls.fetch_add(1, Ordering::Relaxed);
            self.free.lock().unwrap().extend_from_slice(idx);
        }
        fn available(&self) -> usize {
            self.free.lock().unwrap().len()
        }
        fn size(&self) -> usize {
            self.n
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    #[test]
    fn pool_over_a_source_uses_its_memory_and_free_list() {
        const N: usize = 200;
        const STRIDE: usize = 2368;
        const ROOM: usize = 2176;
        let mut fake = Box::new(Fake {
            mem: vec![0u8; N * STRIDE].into_boxed_slice(),
            free: Mutex::new((0..N as u32).rev().collect()),
            bulk_calls: AtomicUsize::new(0),
            n: N,
        });
        let base = fake.mem.as_mut_ptr();
        // SAFETY: the memory lives in the source, which the pool owns.
        let p = unsafe { Pool::with_source(base, STRIDE, ROOM, N, MemMode::Plain, fake) }.unwrap();
        assert_eq!((p.capacity(), p.available()), (N, N));
        assert_eq!(p.max_frame(), ROOM - HEADROOM - 8);
        let mut b = p.alloc().unwrap();
        assert_eq!(b.index(), 0);
        assert!(p.fill(&mut b, &[7u8; 60]));
        assert!(!p.set_len(&mut b, ROOM), "room, not stride, bounds a frame");
        assert!(p.push_tag(&mut b, 0x8100, 10));
        // Slot 0's frame is at base + HEADROOM - 4 of the source's memory.
        let src = p.source().unwrap().as_any().downcast_ref::<Fake>().unwrap();
        assert_eq!(
            &src.mem[HEADROOM - 4 + 12..HEADROOM + 12],
            &[0x81, 0, 0, 10]
        );
        assert_eq!(p.available(), N - 1);
        p.free(b);
        assert_eq!(p.available(), N);
        // A core cache spills to the source in bulk.
        let mut c = PoolCache::new();
        let held: Vec<_> = (0..150).map(|_| c.alloc(&p).unwrap()).collect();
        for x in held {
            c.free(&p, x);
        }
        c.flush(&p);
        assert_eq!(p.available(), N);
        assert!(src.bulk_calls.load(Ordering::Relaxed) >= 2);
    }

    #[test]
    fn source_room_must_fit_the_stride() {
        let fake = Box::new(Fake {
            mem: vec![0u8; 4096].into_boxed_slice(),
            free: Mutex::new(vec![0]),
            bulk_calls: AtomicUsize::new(0),
            n: 1,
        });
        let base = std::ptr::null_mut();
        // SAFETY: refused before any use of the memory.
        assert!(unsafe { Pool::with_source(base, 1024, 2048, 1, MemMode::Plain, fake) }.is_err());
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;

    #[test]
    fn free_never_fails_while_another_core_allocates() {
        // A nearly full free list: one thread's push lands on the cell another
        // thread's pop has claimed but not yet released. That is not a full
        // list (it holds at most n indices), so the push must not fail.
        let pool = std::sync::Arc::new(Pool::new(4, 64).unwrap());
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let p = pool.clone();
                std::thread::spawn(move || {
                    for _ in 0..200_000 {
                        if let Some(b) = p.alloc() {
                            p.free(b);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(pool.available(), 4);
        let mut all = Vec::new();
        while let Some(b) = pool.alloc() {
            all.push(b);
        }
        assert_eq!(all.len(), 4, "every index is still in the free list");
        for b in all {
            pool.free(b);
        }
    }
}
