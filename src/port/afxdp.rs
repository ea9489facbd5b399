//! AF_XDP ports on Linux interfaces: `backend = "afxdp:IFNAME"`.
//!
//! Raw system calls only (no libbpf): at open, the port creates an XSKMAP,
//! loads a five-instruction XDP program that redirects every frame of an RX
//! queue to the socket in the map slot of that queue (and passes frames to
//! the kernel stack when no socket is there), and attaches it with a BPF link
//! — native (driver) mode when the interface supports it, else generic (SKB)
//! mode. The link belongs to the port's file descriptor, so the kernel
//! detaches the program when hairpin exits, crash included.
//!
//! Each worker's queue is one XDP socket bound to RX queue `q` of the
//! interface in copy mode (`XDP_COPY`: veth has no zero-copy), with its own
//! UMEM of 4,096 frames of 2 KiB: half circulate through the fill and RX
//! rings, half through the TX and completion rings. RX reads descriptors
//! (no syscall per frame) and copies each frame into a pool buffer; TX copies
//! frames into free UMEM frames and kicks the kernel with one non-blocking
//! `sendto()` per burst. Frames longer than a UMEM frame can hold are not
//! supported (AF_XDP without multi-buffer): `switch.mtu` above 3,000 is
//! refused at open.
//!
//! An interface is refused when it is in use: locked by another hairpin port,
//! owned by the kernel (a bridge, bond, macvlan … — see `afpacket`), or with
//! an XDP program someone else attached (`IFLA_XDP_ATTACHED`, or the attach
//! failing with EBUSY/EEXIST).
//!
//! Promiscuous mode comes from an extra AF_PACKET socket that receives
//! nothing (the kernel drops the membership with it); link state from the
//! interface flags, as for `afpacket` (frames to a down link are counted in
//! `tx_link_down`).
#![allow(unsafe_code)]

use super::afpacket::{link_state, promisc_socket, OpenError};
use super::{Port, PortQueue};
use crate::buf::{Burst, Pool, PoolCache};
pub use crate::config::XdpMode;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const FRAME: usize = 2048;
/// UMEM frames for TX, and the size of the TX and completion rings.
const TX_FRAMES: usize = 2048;
const RING: u32 = TX_FRAMES as u32;
/// Default size of the RX and fill rings (`port.rx_ring`): frames the kernel
/// can hold for a queue before hairpin reads them.
pub const DEFAULT_RX_RING: usize = 2048;
/// Largest `port.rx_ring` (a power of two).
pub const MAX_RX_RING: usize = crate::config::AFXDP_MAX_RX_RING;
/// Largest `switch.mtu` an AF_XDP port accepts (one 2 KiB UMEM frame per packet).
pub const MAX_MTU: usize = 1900;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> libc::c_long {
    // SAFETY: attr is a zero-padded union bpf_attr image of the size given.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) }
}

fn put32(a: &mut [u8; 128], off: usize, v: u32) {
    a[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put64(a: &mut [u8; 128], off: usize, v: u64) {
    a[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

fn fd_of(r: libc::c_long, what: &str) -> Result<OwnedFd, String> {
    if r < 0 {
        let e = std::io::Error::last_os_error();
        let hint = match e.raw_os_error() {
            Some(libc::EPERM) => " (needs root: CAP_BPF and CAP_NET_ADMIN)",
            _ => "",
        };
        return Err(format!("{what}: {e}{hint}"));
    }
    // SAFETY: the kernel returned a fresh descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// The XDP program: `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);`
fn xdp_program(map_fd: RawFd) -> Vec<u64> {
    let insn = |code: u8, dst: u8, src: u8, off: i16, imm: i32| -> u64 {
        let mut b = [0u8; 8];
        b[0] = code;
        b[1] = (src << 4) | (dst & 0xf);
        b[2..4].copy_from_slice(&off.to_ne_bytes());
        b[4..8].copy_from_slice(&imm.to_ne_bytes());
        u64::from_ne_bytes(b)
    };
    vec![
        insn(0x61, 2, 1, 16, 0),     // r2 = *(u32 *)(r1 + 16): rx_queue_index
        insn(0x18, 1, 1, 0, map_fd), // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
        insn(0x00, 0, 0, 0, 0),      //      (second half of ld_imm64)
        insn(0xb7, 3, 0, 0, 2),      // r3 = XDP_PASS: the action when the slot is empty
        insn(0x85, 0, 0, 0, 51),     // call bpf_redirect_map
        insn(0x95, 0, 0, 0, 0),      // exit
    ]
}

/// Create the XSKMAP, load the program, attach it; returns (map, link, mode name).
fn attach(
    ifindex: u32,
    queues: usize,
    want: XdpMode,
) -> Result<(OwnedFd, OwnedFd, &'static str), String> {
    let mut a = [0u8; 128];
    put32(&mut a, 0, BPF_MAP_TYPE_XSKMAP);
    put32(&mut a, 4, 4);
    put32(&mut a, 8, 4);
    put32(&mut a, 12, queues as u32);
    let map = fd_of(bpf(BPF_MAP_CREATE, &mut a), "creating the XSKMAP")?;
    let prog = xdp_program(map.as_raw_fd());
    let license = CString::new("GPL").unwrap();
    let mut a = [0u8; 128];
    put32(&mut a, 0, BPF_PROG_TYPE_XDP);
    put32(&mut a, 4, prog.len() as u32);
    put64(&mut a, 8, prog.as_ptr() as u64);
    put64(&mut a, 16, license.as_ptr() as u64);
    a[48..59].copy_from_slice(b"hairpin_xsk");
    put32(&mut a, 68, BPF_XDP);
    let prog = fd_of(bpf(BPF_PROG_LOAD, &mut a), "loading the XDP program")?;
    let mut last = String::new();
    let mut busy = false;
    let modes: &[(u32, &'static str)] = match want {
        XdpMode::Auto => &[
            (XDP_FLAGS_DRV_MODE, "native"),
            (XDP_FLAGS_SKB_MODE, "generic"),
        ],
        XdpMode::Native => &[(XDP_FLAGS_DRV_MODE, "native")],
        XdpMode::Generic => &[(XDP_FLAGS_SKB_MODE, "generic")],
    };
    for &(flags, mode) in modes {
        let mut a = [0u8; 128];
        put32(&mut a, 0, prog.as_raw_fd() as u32);
        put32(&mut a, 4, ifindex);
        put32(&mut a, 8, BPF_XDP);
        put32(&mut a, 12, flags);
        let r = bpf(BPF_LINK_CREATE, &mut a);
        // EBUSY: a program is attached in this mode; EEXIST: in the other one.
        busy |= r < 0
            && matches!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EBUSY) | Some(libc::EEXIST)
            );
        match fd_of(r, "attaching the XDP program") {
            Ok(link) => return Ok((map, link, mode)),
            Err(e) => last = e,
        }
    }
    if busy {
        return Err(foreign_xdp(&last));
    }
    Err(last)
}

/// The refusal when someone else's XDP program holds the interface.
fn foreign_xdp(detail: &str) -> String {
    format!(
        "the interface is in use: another XDP program is attached ({detail}); \
         detach it (`ip link set dev IF xdp off`, or stop its owner) first"
    )
}

/// One mapped AF_XDP ring (producer/consumer words, descriptors).
struct XRing {
    prod: *const AtomicU32,
    cons: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    mask: u32,
    map: *mut libc::c_void,
    map_len: usize,
}

impl XRing {
    fn map(
        fd: RawFd,
        off: &libc::xdp_ring_offset,
        entry: usize,
        pgoff: u64,
        size: u32,
    ) -> Result<XRing, String> {
        let len = off.desc as usize + size as usize * entry;
        // SAFETY: mapping one of the socket's rings at its documented page offset.
        let m = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if m == libc::MAP_FAILED {
            return Err(format!(
                "mapping an XDP ring: {}",
                std::io::Error::last_os_error()
            ));
        }
        let b = m as *mut u8;
        // SAFETY: the offsets come from XDP_MMAP_OFFSETS and lie in the mapping.
        unsafe {
            Ok(XRing {
                prod: b.add(off.producer as usize) as *const AtomicU32,
                cons: b.add(off.consumer as usize) as *const AtomicU32,
                flags: b.add(off.flags as usize) as *const AtomicU32,
                desc: b.add(off.desc as usize),
                mask: size - 1,
                map: m,
                map_len: len,
            })
        }
    }
    #[inline(always)]
    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, 4-byte aligned, shared with the kernel.
        unsafe { &*self.prod }
    }
    #[inline(always)]
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as prod.
        unsafe { &*self.cons }
    }
    #[inline(always)]
    fn needs_wakeup(&self) -> bool {
        // SAFETY: as prod.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
    #[inline(always)]
    fn addr_slot(&self, i: u32) -> *mut u64 {
        // SAFETY: i is masked; fill and completion entries are u64.
        unsafe { (self.desc as *mut u64).add((i & self.mask) as usize) }
    }
    #[inline(always)]
    fn desc_slot(&self, i: u32) -> *mut libc::xdp_desc {
        // SAFETY: i is masked; RX and TX entries are xdp_desc.
        unsafe { (self.desc as *mut libc::xdp_desc).add((i & self.mask) as usize) }
    }
}

impl Drop for XRing {
    fn drop(&mut self) {
        // SAFETY: unmapping what map() mapped.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// Number of [`AfXdpCounters`] fields.
const NCOUNTERS: usize = 11;

#[derive(Default)]
struct Shared {
    c: [AtomicU64; NCOUNTERS],
    link_up: AtomicBool,
}

/// A snapshot of an AF_XDP port's counters (summed over its queues).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AfXdpCounters {
    /// Frames received and handed to the switch.
    pub rx_pkts: u64,
    /// Bytes in those frames.
    pub rx_bytes: u64,
    /// Frames dropped on RX: longer than a pool buffer.
    pub rx_too_long: u64,
    /// Frames dropped on RX: no free pool buffer.
    pub rx_no_buffer: u64,
    /// Frames put on the TX ring.
    pub tx_pkts: u64,
    /// Bytes in those frames.
    pub tx_bytes: u64,
    /// Frames dropped on TX because the link was down.
    pub tx_link_down: u64,
    /// Frames dropped on TX: longer than a UMEM frame or the interface MTU allows.
    pub tx_oversize: u64,
    /// Failed `sendto()` kicks.
    pub tx_errors: u64,
    /// Frames the kernel could not hand to the socket (`XDP_STATISTICS`:
    /// RX ring full, no fill-ring buffer, invalid descriptors).
    pub rx_ring_drops: u64,
    /// TX descriptors the kernel refused (`XDP_STATISTICS` tx_invalid_descs).
    pub tx_invalid: u64,
}

impl AfXdpCounters {
    fn arr(&self) -> [u64; NCOUNTERS] {
        [
            self.rx_pkts,
            self.rx_bytes,
            self.rx_too_long,
            self.rx_no_buffer,
            self.tx_pkts,
            self.tx_bytes,
            self.tx_link_down,
            self.tx_oversize,
            self.tx_errors,
            self.rx_ring_drops,
            self.tx_invalid,
        ]
    }
    /// The counters as (name, value) pairs, in a fixed order.
    pub fn pairs(&self) -> Vec<(&'static str, u64)> {
        let names = [
            "rx_pkts",
            "rx_bytes",
            "rx_too_long",
            "rx_no_buffer",
            "tx_pkts",
            "tx_bytes",
            "tx_link_down",
            "tx_oversize",
            "tx_errors",
            "rx_ring_drops",
            "tx_invalid",
        ];
        names.into_iter().zip(self.arr()).collect()
    }
}

/// One worker's XDP socket on RX/TX queue `q` of the interface.
pub struct AfXdpQueue {
    fd: OwnedFd,
    /// An AF_PACKET socket for interface ioctls (an XDP socket has none).
    ctl: OwnedFd,
    umem: *mut u8,
    umem_len: usize,
    rx: XRing,
    tx: XRing,
    fill: XRing,
    comp: XRing,
    /// UMEM frames free for TX.
    tx_free: Vec<u64>,
    tx_pending: bool,
    tx_max: usize,
    ifname: CString,
    pool: Arc<Pool>,
    cache: PoolCache,
    link_up: bool,
    last_check: Instant,
    polls: u32,
    c: AfXdpCounters,
    shared: Arc<Shared>,
}

// SAFETY: the socket, its rings and its UMEM belong to this queue alone and
// are only touched through `&mut self`.
unsafe impl Send for AfXdpQueue {}

impl AfXdpQueue {
    fn publish(&self) {
        for (s, v) in self.shared.c.iter().zip(self.c.arr()) {
            s.store(v, Ordering::Relaxed);
        }
        self.shared.link_up.store(self.link_up, Ordering::Relaxed);
    }

    fn check_link(&mut self, force: bool) {
        if !force && self.last_check.elapsed() < super::afpacket::LINK_CHECK {
            return;
        }
        self.last_check = Instant::now();
        let (up, mtu) = link_state(self.ctl.as_raw_fd(), &self.ifname);
        self.link_up = up;
        if let Some(m) = mtu {
            self.tx_max = (m + 18).min(FRAME);
        }
        self.read_kernel_drops();
        self.publish();
    }

    /// The kernel's drop counts for this socket (cumulative since it was opened).
    fn read_kernel_drops(&mut self) {
        if let Some(st) = xdp_statistics(self.fd.as_raw_fd()) {
            self.c.rx_ring_drops = st.rx_dropped + st.rx_ring_full + st.rx_invalid_descs;
            self.c.tx_invalid = st.tx_invalid_descs;
        }
    }

    fn kick(&mut self) {
        // SAFETY: a zero-length sendto on our own socket: "process the TX ring".
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r >= 0 {
            self.tx_pending = false;
            return;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) | Some(libc::EINTR) => {}
            _ => {
                self.tx_pending = false;
                self.c.tx_errors += 1;
            }
        }
    }

    fn reclaim(&mut self) {
        let comp = &self.comp;
        let cons = comp.cons().load(Ordering::Relaxed);
        let prod = comp.prod().load(Ordering::Acquire);
        let n = prod.wrapping_sub(cons);
        for i in 0..n {
            // SAFETY: entries in [cons, prod) were written by the kernel.
            let a = unsafe { std::ptr::read_volatile(comp.addr_slot(cons.wrapping_add(i))) };
            self.tx_free.push(a & !(FRAME as u64 - 1));
        }
        if n > 0 {
            comp.cons().store(prod, Ordering::Release);
        }
    }
}

impl PortQueue for AfXdpQueue {
    fn rx_fd(&self) -> Option<i32> {
        Some(self.fd.as_raw_fd())
    }
    fn rx_burst(&mut self, out: &mut Burst) -> usize {
        self.polls = self.polls.wrapping_add(1);
        if self.polls % 256 == 0 {
            self.check_link(false);
        }
        let cons = self.rx.cons().load(Ordering::Relaxed);
        let prod = self.rx.prod().load(Ordering::Acquire);
        let n = (prod.wrapping_sub(cons) as usize).min(out.space()) as u32;
        if n == 0 {
            if self.polls % 64 == 0 && self.fill.needs_wakeup() {
                // SAFETY: a non-blocking zero-length recvfrom wakes the driver's RX.
                unsafe {
                    libc::recvfrom(
                        self.fd.as_raw_fd(),
                        std::ptr::null_mut(),
                        0,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    )
                };
            }
            return 0;
        }
        let fprod = self.fill.prod().load(Ordering::Relaxed);
        let mut got = 0;
        for i in 0..n {
            // SAFETY: descriptors in [cons, prod) were written by the kernel;
            // addr + len lies inside the UMEM.
            let (d, data) = unsafe {
                let d = std::ptr::read_volatile(self.rx.desc_slot(cons.wrapping_add(i)));
                let p = self.umem.add(d.addr as usize);
                (
                    d,
                    std::slice::from_raw_parts(p, (d.len as usize).min(FRAME)),
                )
            };
            if data.len() > self.pool.max_frame() {
                self.c.rx_too_long += 1;
            } else if let Some(mut b) = self.cache.alloc(&self.pool) {
                self.pool.fill(&mut b, data);
                self.c.rx_pkts += 1;
                self.c.rx_bytes += data.len() as u64;
                let _ = out.push(b);
                got += 1;
            } else {
                self.c.rx_no_buffer += 1;
            }
            // The frame goes straight back to the fill ring (room: it holds every RX frame).
            // SAFETY: fill slot at fprod+i is ours until we publish prod.
            unsafe {
                std::ptr::write_volatile(
                    self.fill.addr_slot(fprod.wrapping_add(i)),
                    d.addr & !(FRAME as u64 - 1),
                )
            };
        }
        self.rx
            .cons()
            .store(cons.wrapping_add(n), Ordering::Release);
        self.fill
            .prod()
            .store(fprod.wrapping_add(n), Ordering::Release);
        self.publish();
        got
    }

    fn tx_burst(&mut self, frames: &mut Burst) -> usize {
        if frames.is_empty() {
            return 0;
        }
        self.check_link(false);
        let total = frames.len();
        if !self.link_up {
            for f in frames.drain() {
                self.c.tx_link_down += 1;
                self.cache.free(&self.pool, f);
            }
            self.publish();
            return total;
        }
        self.reclaim();
        let prod = self.tx.prod().load(Ordering::Relaxed);
        let cons = self.tx.cons().load(Ordering::Acquire);
        let room = RING - prod.wrapping_sub(cons);
        let mut taken = 0usize;
        let mut queued = 0u32;
        for f in frames.as_slice() {
            let len = f.len();
            if len > self.tx_max {
                self.c.tx_oversize += 1;
                taken += 1;
                continue;
            }
            if queued == room {
                break;
            }
            let Some(addr) = self.tx_free.pop() else {
                break;
            };
            let data = self.pool.data(f);
            // SAFETY: addr is a free UMEM frame (ours until the completion ring
            // returns it); the TX slot at prod+queued is ours until we publish.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), self.umem.add(addr as usize), len);
                std::ptr::write_volatile(
                    self.tx.desc_slot(prod.wrapping_add(queued)),
                    libc::xdp_desc {
                        addr,
                        len: len as u32,
                        options: 0,
                    },
                );
            }
            queued += 1;
            taken += 1;
            self.c.tx_pkts += 1;
            self.c.tx_bytes += len as u64;
        }
        if queued > 0 {
            self.tx
                .prod()
                .store(prod.wrapping_add(queued), Ordering::Release);
            self.tx_pending = true;
        }
        for f in frames.consume_front(taken) {
            self.cache.free(&self.pool, f);
        }
        if self.tx_pending {
            self.kick();
        }
        self.publish();
        taken
    }

    fn flush(&mut self) {
        self.reclaim();
        if self.tx_pending && self.link_up {
            self.kick();
        }
        self.publish();
    }

    fn link_up(&self) -> bool {
        self.link_up
    }
}

impl Drop for AfXdpQueue {
    fn drop(&mut self) {
        // The final counters include the kernel's drops up to the close.
        self.read_kernel_drops();
        self.publish();
        self.cache.flush(&self.pool);
        // The rings are unmapped by their own Drop; the socket closes with fd.
        // SAFETY: the UMEM was mapped with this size in open_queue.
        unsafe { libc::munmap(self.umem as *mut libc::c_void, self.umem_len) };
    }
}

/// `XDP_STATISTICS` of an XDP socket (None when the kernel refuses; a kernel
/// before 5.9 fills only the first three fields, the rest stay 0).
fn xdp_statistics(fd: RawFd) -> Option<libc::xdp_statistics> {
    // SAFETY: all-zero is a valid xdp_statistics (plain u64 fields).
    let zero: libc::xdp_statistics = unsafe { std::mem::zeroed() };
    super::afpacket::getsockopt_into(fd, libc::SOL_XDP, libc::XDP_STATISTICS, zero)
}

fn setopt<T>(fd: RawFd, opt: libc::c_int, v: &T) -> Result<(), String> {
    // SAFETY: v points to a live T of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(format!(
            "XDP socket option {opt}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// UMEM bytes of a queue whose RX ring holds `rx_n` frames.
fn umem_len(rx_n: usize) -> usize {
    FRAME * (rx_n + TX_FRAMES)
}

/// One XDP socket on queue `q`: a UMEM of `rx_n` RX frames (all on the fill
/// ring) followed by `TX_FRAMES` TX frames.
fn open_queue(
    ifindex: u32,
    q: u32,
    map: RawFd,
    rx_n: usize,
) -> Result<(OwnedFd, *mut u8, [XRing; 4]), String> {
    // SAFETY: plain socket call.
    let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("opening an AF_XDP socket: {e}"));
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let s = fd.as_raw_fd();
    // SAFETY: an anonymous private mapping for the UMEM.
    let umem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            umem_len(rx_n),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if umem == libc::MAP_FAILED {
        return Err(format!("UMEM: {}", std::io::Error::last_os_error()));
    }
    let unmap = || {
        // SAFETY: unmapping the UMEM mapped above.
        unsafe { libc::munmap(umem, umem_len(rx_n)) };
    };
    let r = (|| {
        let reg = libc::xdp_umem_reg {
            addr: umem as u64,
            len: umem_len(rx_n) as u64,
            chunk_size: FRAME as u32,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setopt(s, libc::XDP_UMEM_REG, &reg)?;
        let rx_size = rx_n as u32;
        for (o, n) in [
            (libc::XDP_UMEM_FILL_RING, rx_size),
            (libc::XDP_UMEM_COMPLETION_RING, RING),
            (libc::XDP_RX_RING, rx_size),
            (libc::XDP_TX_RING, RING),
        ] {
            setopt(s, o, &n)?;
        }
        // SAFETY: plain data, zero is valid.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut l = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: off and l are valid for the kernel to write.
        if unsafe {
            libc::getsockopt(
                s,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                &mut off as *mut _ as *mut libc::c_void,
                &mut l,
            )
        } != 0
        {
            return Err(format!(
                "XDP_MMAP_OFFSETS: {}",
                std::io::Error::last_os_error()
            ));
        }
        let d = std::mem::size_of::<libc::xdp_desc>();
        let rx = XRing::map(s, &off.rx, d, libc::XDP_PGOFF_RX_RING as u64, rx_size)?;
        let tx = XRing::map(s, &off.tx, d, libc::XDP_PGOFF_TX_RING as u32 as u64, RING)?;
        let fill = XRing::map(s, &off.fr, 8, libc::XDP_UMEM_PGOFF_FILL_RING, rx_size)?;
        let comp = XRing::map(s, &off.cr, 8, libc::XDP_UMEM_PGOFF_COMPLETION_RING, RING)?;
        // The RX frames go to the fill ring now.
        for i in 0..rx_size {
            // SAFETY: the fill ring is empty and ours to produce into.
            unsafe { std::ptr::write_volatile(fill.addr_slot(i), i as u64 * FRAME as u64) };
        }
        fill.prod().store(rx_size, Ordering::Release);
        // SAFETY: sockaddr_xdp is plain data.
        let mut sa: libc::sockaddr_xdp = unsafe { std::mem::zeroed() };
        sa.sxdp_family = libc::AF_XDP as u16;
        sa.sxdp_flags = libc::XDP_COPY | libc::XDP_USE_NEED_WAKEUP;
        sa.sxdp_ifindex = ifindex;
        sa.sxdp_queue_id = q;
        // SAFETY: sa is a valid sockaddr_xdp of the size given.
        if unsafe {
            libc::bind(
                s,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        } != 0
        {
            let e = std::io::Error::last_os_error();
            return Err(format!(
                "binding to RX queue {q}: {e} (does the interface have {} queues?)",
                q + 1
            ));
        }
        let mut a = [0u8; 128];
        let key: u32 = q;
        let val: u32 = s as u32;
        put32(&mut a, 0, map as u32);
        put64(&mut a, 8, &key as *const u32 as u64);
        put64(&mut a, 16, &val as *const u32 as u64);
        if bpf(BPF_MAP_UPDATE_ELEM, &mut a) != 0 {
            return Err(format!(
                "adding the socket to the XSKMAP: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok([rx, tx, fill, comp])
    })();
    match r {
        Ok(rings) => Ok((fd, umem as *mut u8, rings)),
        Err(e) => {
            unmap();
            Err(e)
        }
    }
}

/// A port on a Linux interface through AF_XDP sockets (one per queue).
pub struct AfXdpPort {
    name: String,
    queues: Vec<Option<AfXdpQueue>>,
    shared: Vec<Arc<Shared>>,
    mode: &'static str,
    _link: OwnedFd,
    _map: OwnedFd,
    _promisc: OwnedFd,
    _lock: std::fs::File,
}

impl AfXdpPort {
    /// Open `queues` XDP sockets on RX queues 0.. of `ifname` for port
    /// `name`, with RX rings of [`DEFAULT_RX_RING`] frames.
    pub fn open(
        name: &str,
        ifname: &str,
        queues: usize,
        pool: Arc<Pool>,
    ) -> Result<AfXdpPort, OpenError> {
        Self::open_ring(name, ifname, queues, pool, DEFAULT_RX_RING, XdpMode::Auto)
    }

    /// As [`AfXdpPort::open`], with RX and fill rings of `rx_ring` frames (a
    /// power of two, 64..=[`MAX_RX_RING`]; the config checks it) and the XDP
    /// program attached in `mode` (`port.xdp_mode`).
    pub fn open_ring(
        name: &str,
        ifname: &str,
        queues: usize,
        pool: Arc<Pool>,
        rx_ring: usize,
        mode: XdpMode,
    ) -> Result<AfXdpPort, OpenError> {
        let what = format!("afxdp:{ifname}");
        let err = |why: String| OpenError::new(format!("{what}: {why}"));
        let (cname, ifindex) = super::afpacket::if_index(ifname).map_err(err)?;
        if pool.max_frame() > MAX_MTU + 8 {
            return Err(err(format!(
                "switch.mtu above {MAX_MTU} needs AF_XDP multi-buffer, which this backend does not do"
            )));
        }
        let lock = super::afpacket::lock_interface(ifname).map_err(err)?;
        let usage = super::netlink::usage(ifindex).map_err(err)?;
        if let Some(why) = usage.kernel_owner(ifname) {
            return Err(err(why));
        }
        if let Some(id) = usage.xdp_prog {
            return Err(err(foreign_xdp(&format!("program id {id}"))));
        }
        let promisc = promisc_socket(ifindex).map_err(err)?;
        let nq = queues.max(1);
        crate::config::check_rx_ring("afxdp", rx_ring)
            .map_err(|why| err(format!("rx_ring {why}")))?;
        let (map, link, mode) = attach(ifindex, nq, mode).map_err(err)?;
        let mut qs = Vec::new();
        let mut shared = Vec::new();
        for q in 0..nq {
            let (fd, umem, [rx, tx, fill, comp]) =
                open_queue(ifindex, q as u32, map.as_raw_fd(), rx_ring)
                    .map_err(|e| err(format!("queue {q}: {e}")))?;
            let sh = Arc::new(Shared::default());
            let ctl = promisc
                .try_clone()
                .map_err(|e| err(format!("queue {q}: {e}")))?;
            let mut queue = AfXdpQueue {
                fd,
                ctl,
                umem,
                umem_len: umem_len(rx_ring),
                rx,
                tx,
                fill,
                comp,
                tx_free: (rx_ring..rx_ring + TX_FRAMES)
                    .map(|i| (i * FRAME) as u64)
                    .collect(),
                tx_pending: false,
                tx_max: FRAME,
                ifname: cname.clone(),
                pool: pool.clone(),
                cache: PoolCache::new(),
                link_up: false,
                last_check: Instant::now(),
                polls: 0,
                c: AfXdpCounters::default(),
                shared: sh.clone(),
            };
            queue.check_link(true);
            qs.push(Some(queue));
            shared.push(sh);
        }
        Ok(AfXdpPort {
            name: name.to_string(),
            queues: qs,
            shared,
            mode,
            _link: link,
            _map: map,
            _promisc: promisc,
            _lock: lock,
        })
    }

    /// `native` or `generic`: how the XDP program is attached.
    pub fn xdp_mode(&self) -> &'static str {
        self.mode
    }

    /// Counters summed over the queues (as last published, after each burst).
    pub fn counters(&self) -> AfXdpCounters {
        let mut t = [0u64; NCOUNTERS];
        for s in &self.shared {
            for (a, c) in t.iter_mut().zip(s.c.iter()) {
                *a += c.load(Ordering::Relaxed);
            }
        }
        AfXdpCounters {
            rx_pkts: t[0],
            rx_bytes: t[1],
            rx_too_long: t[2],
            rx_no_buffer: t[3],
            tx_pkts: t[4],
            tx_bytes: t[5],
            tx_link_down: t[6],
            tx_oversize: t[7],
            tx_errors: t[8],
            rx_ring_drops: t[9],
            tx_invalid: t[10],
        }
    }
}

impl Port for AfXdpPort {
    fn name(&self) -> &str {
        &self.name
    }
    fn queues(&self) -> usize {
        self.queues.len()
    }
    fn take_queue(&mut self, q: usize) -> Option<Box<dyn PortQueue>> {
        self.queues
            .get_mut(q)?
            .take()
            .map(|x| Box::new(x) as Box<dyn PortQueue>)
    }
    fn backend_stats(&self) -> Option<serde_json::Value> {
        let mut m: serde_json::Map<String, serde_json::Value> = self
            .counters()
            .pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        let up = self
            .shared
            .first()
            .is_some_and(|s| s.link_up.load(Ordering::Relaxed));
        m.insert("link_up".into(), u64::from(up).into());
        m.insert("xdp_native".into(), u64::from(self.mode == "native").into());
        Some(m.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_encoding() {
        let p = xdp_program(7);
        assert_eq!(p.len(), 6);
        let b = p[1].to_ne_bytes();
        assert_eq!(b[0], 0x18, "ld_imm64");
        assert_eq!(b[1], 0x11, "dst r1, src BPF_PSEUDO_MAP_FD");
        assert_eq!(
            i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            7,
            "the map fd"
        );
        let c = p[4].to_ne_bytes();
        assert_eq!((c[0], c[4]), (0x85, 51), "call bpf_redirect_map");
    }

    /// `ip ARGS`/`sysctl ARGS` in the calling thread's network namespace.
    fn sh(cmd: &str, args: &[&str]) {
        let o = std::process::Command::new(cmd).args(args).output().unwrap();
        assert!(o.status.success(), "{cmd} {args:?}: {o:?}");
    }

    #[test]
    fn kernel_rx_drops_are_counted_when_the_socket_is_not_read() {
        if !super::super::afpacket::is_root() {
            eprintln!("skipped: not root (a veth pair and XDP sockets need root)");
            return;
        }
        std::thread::spawn(|| {
            // SAFETY: unshare of the calling thread's network namespace; the
            // `ip` children inherit it, so the veth pair never leaves it.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            sh("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            sh("sysctl", &["-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
            sh(
                "ip",
                &["link", "add", "xa", "type", "veth", "peer", "name", "xb"],
            );
            sh("ip", &["link", "set", "xa", "up"]);
            sh("ip", &["link", "set", "xb", "up"]);
            let pool = Arc::new(Pool::new(512, 1600).unwrap());
            // An RX ring of 512 frames (port.rx_ring), none read meanwhile.
            let ring = 512;
            let mut rx_port = AfXdpPort::open_ring("a", "xa", 1, pool.clone(), ring, XdpMode::Auto)
                .expect("afxdp on xa");
            let mut tx_port =
                super::super::afpacket::AfPacketPort::open("b", "xb", 1, pool.clone())
                    .expect("afpacket on xb");
            let mut rx = rx_port.take_queue(0).unwrap();
            let mut tx = tx_port.take_queue(0).unwrap();
            let sent = 3 * ring as u64;
            let mut frame = [0u8; 60];
            frame[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xa]);
            frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xb]);
            frame[12..14].copy_from_slice(&[0x88, 0xb5]);
            let mut b = Burst::new(32);
            let mut queued = 0u64;
            let t0 = Instant::now();
            while queued < sent && t0.elapsed() < std::time::Duration::from_secs(10) {
                while b.len() < 32 && queued + (b.len() as u64) < sent {
                    let mut f = pool.alloc().unwrap();
                    pool.fill(&mut f, &frame);
                    let _ = b.push(f);
                }
                queued += tx.tx_burst(&mut b) as u64;
                for f in b.drain() {
                    pool.free(f);
                }
                tx.flush();
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            assert_eq!(queued, sent, "all frames queued on xb");
            std::thread::sleep(std::time::Duration::from_millis(200));
            let mut got = 0u64;
            let mut out = Burst::new(32);
            let t0 = Instant::now();
            while t0.elapsed() < std::time::Duration::from_millis(300) {
                got += rx.rx_burst(&mut out) as u64;
                for f in out.drain() {
                    pool.free(f);
                }
            }
            drop(rx);
            let c = rx_port.counters();
            assert_eq!(c.rx_pkts, got);
            assert!(got <= ring as u64, "the RX ring held {got}");
            assert!(got >= ring as u64 - 32, "the RX ring held only {got}");
            assert_eq!(
                got + c.rx_ring_drops,
                sent,
                "every frame is received or counted as a kernel drop: {c:?}"
            );
            assert_eq!(c.rx_no_buffer, 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn open_errors_and_loopback() {
        let pool = Arc::new(Pool::new(256, 1600).unwrap());
        let e = AfXdpPort::open("p", "hp-nonexistent", 1, pool.clone())
            .err()
            .expect("no such interface");
        assert!(
            e.to_string()
                .starts_with("afxdp:hp-nonexistent: no interface"),
            "{e}"
        );
        let big = Arc::new(Pool::new(64, 9000).unwrap());
        let e = AfXdpPort::open("p", "lo", 1, big).err().expect("jumbo");
        assert!(e.to_string().contains("multi-buffer"), "{e}");
        if !super::super::afpacket::is_root() {
            return;
        }
        // A private namespace: the XDP program goes on its own lo, never the host's.
        std::thread::spawn(move || {
            // SAFETY: unshare of the calling thread's network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return;
            }
            let a = AfXdpPort::open("p", "lo", 1, pool.clone()).expect("open lo");
            assert_eq!(a.queues(), 1);
            assert_eq!(a.xdp_mode(), "generic", "lo has no native XDP");
            let e = AfXdpPort::open("q", "lo", 1, pool.clone())
                .err()
                .expect("second open");
            assert!(e.to_string().contains("in use"), "{e}");
            drop(a);
            let b = AfXdpPort::open("q", "lo", 1, pool.clone()).expect("free again after close");
            drop(b);
            // Someone else's XDP program on lo (a link this test holds, no hairpin lock).
            let foreign = attach(1, 1, XdpMode::Auto).expect("attach a program to lo");
            let e = attach(1, 1, XdpMode::Auto)
                .map(|_| ())
                .expect_err("second attach");
            assert!(e.contains("another XDP program is attached"), "{e}");
            let e = AfXdpPort::open("r", "lo", 1, pool.clone())
                .err()
                .expect("foreign program");
            let e = e.to_string();
            assert!(e.starts_with("afxdp:lo: the interface is in use"), "{e}");
            assert!(
                e.contains("another XDP program is attached (program id"),
                "{e}"
            );
            drop(foreign);
            drop(AfXdpPort::open("r", "lo", 1, pool).expect("free once the program is gone"));
        })
        .join()
        .unwrap();
    }
}
