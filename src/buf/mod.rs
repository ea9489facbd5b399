//! Frame buffers: [`PktBuf`] handles into a fixed [`Pool`], and [`Burst`].
//!
//! The pool is one memory region of equal slots allocated at start — backed by
//! explicit 2 MiB hugepages (`MAP_HUGETLB`) when the machine has them reserved,
//! else by transparent huge pages (`madvise(MADV_HUGEPAGE)`), else plain pages.
//! Every slot starts with [`HEADROOM`] bytes so a VLAN tag can be pushed in
//! front of the frame without moving the payload (only the 12 address bytes
//! move). A `PktBuf` is an 16-byte owned handle (slot index, data offset,
//! length, timestamp); it is not `Clone`, so exactly one owner can write the
//! slot. Handles move between cores through rings; the free list is a bounded
//! lock-free MPMC queue, fronted by per-core [`PoolCache`]s so a worker touches
//! the shared list once per [`CACHE_BATCH`] buffers, never per frame.

mod pool;
pub use pool::{MemMode, Pool, PoolCache, PoolError, SlotSource, CACHE_BATCH};

/// Bytes reserved in front of each frame (room for pushed tags).
pub const HEADROOM: usize = 128;

/// Owned handle to one pool slot holding one frame.
///
/// `repr(C)`: the DPDK backend's C shim reads and writes bursts of these in
/// place (`struct hp_buf` in `src/dpdk/shim.h`, the same fields in the same
/// order).
#[derive(Debug, PartialEq, Eq)]
#[repr(C)]
pub struct PktBuf {
    pub(crate) idx: u32,
    pub(crate) off: u16,
    pub(crate) len: u16,
    /// Timestamp in nanoseconds (the switch clock when received; pcap time in replay).
    pub ts: u64,
}

impl PktBuf {
    /// Frame length in bytes.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len as usize
    }
    /// True for a zero-length frame.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Slot index in its pool (stable identity, for tests and tracing).
    pub fn index(&self) -> u32 {
        self.idx
    }
    /// Bytes of headroom in front of the frame.
    pub fn headroom(&self) -> usize {
        self.off as usize
    }
}

/// Up to `cap` frames moved together through the pipeline. Allocated once
/// (capacity fixed at creation); pushing and draining never allocates.
#[derive(Debug)]
pub struct Burst {
    v: Vec<PktBuf>,
}

impl Burst {
    /// A burst that holds up to `cap` frames.
    pub fn new(cap: usize) -> Self {
        Burst {
            v: Vec::with_capacity(cap),
        }
    }
    /// Frames in the burst.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.v.len()
    }
    /// True when empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }
    /// Fixed capacity.
    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.v.capacity()
    }
    /// Free room.
    #[inline(always)]
    pub fn space(&self) -> usize {
        self.v.capacity() - self.v.len()
    }
    /// The free space, for a writer that fills it in place (the DPDK
    /// backend's C shim); [`Burst::commit`] then appends what it wrote.
    #[cfg(feature = "dpdk")]
    #[inline(always)]
    pub(crate) fn spare(&mut self) -> &mut [std::mem::MaybeUninit<PktBuf>] {
        self.v.spare_capacity_mut()
    }
    /// Append the first `n` entries of [`Burst::spare`].
    ///
    /// # Safety
    /// They were written, each with a valid handle (the one owner of its slot).
    #[cfg(feature = "dpdk")]
    #[allow(unsafe_code)]
    #[inline(always)]
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(n <= self.space());
        // SAFETY: the caller wrote the first n spare entries.
        unsafe { self.v.set_len(self.v.len() + n) }
    }
    /// Append a frame. Returns it back when full.
    #[inline(always)]
    pub fn push(&mut self, b: PktBuf) -> Result<(), PktBuf> {
        if self.v.len() == self.v.capacity() {
            return Err(b);
        }
        self.v.push(b);
        Ok(())
    }
    /// Remove and return the last frame.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<PktBuf> {
        self.v.pop()
    }
    /// The frames.
    #[inline(always)]
    pub fn as_slice(&self) -> &[PktBuf] {
        &self.v
    }
    /// The frames, mutable.
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [PktBuf] {
        &mut self.v
    }
    /// Remove and yield every frame, in order.
    #[inline(always)]
    pub fn drain(&mut self) -> std::vec::Drain<'_, PktBuf> {
        self.v.drain(..)
    }
    /// Move every frame of `other` to the end, in order, when they all fit;
    /// false (nothing moved) when they do not.
    pub fn append(&mut self, other: &mut Burst) -> bool {
        if other.len() > self.space() {
            return false;
        }
        self.v.append(&mut other.v);
        true
    }
    /// Remove the first `n` frames (they were consumed by a port), keeping the rest in order.
    #[inline(always)]
    pub fn consume_front(&mut self, n: usize) -> std::vec::Drain<'_, PktBuf> {
        self.v.drain(..n)
    }
}
