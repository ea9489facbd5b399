//! AF_PACKET ports on Linux interfaces: `backend = "afpacket:IFNAME"`.
//!
//! Each queue is one `AF_PACKET` socket bound to the interface with a
//! memory-mapped `TPACKET_V2` RX ring and TX ring (one mapping). TPACKET_V2
//! rather than V3: a V3 RX block is handed to user space only when it is full
//! or its retire timer (milliseconds) fires, which would put milliseconds on
//! every ping; a V2 slot is visible as soon as the kernel wrote it.
//!
//! - RX polls slot status words in the ring — no syscall per frame, never a
//!   blocking call — and copies each frame into a pool buffer (the kernel
//!   strips a VLAN tag into the slot header; it is put back in front of the
//!   payload). Frames this host sent out of the interface (`PACKET_OUTGOING`)
//!   are ignored (`PACKET_IGNORE_OUTGOING`, and checked per slot), so nothing
//!   hairpin transmits comes back in.
//! - TX copies frames into free TX slots and kicks the kernel with one
//!   non-blocking `sendto()` per burst, bypassing the qdisc
//!   (`PACKET_QDISC_BYPASS`). A full TX ring refuses the rest of the burst
//!   (the caller counts `tx_full`); nothing blocks.
//! - Several workers: one socket per queue, joined in one `PACKET_FANOUT`
//!   group (flow hash) per port, so each flow lands on one worker.
//! - Promiscuous mode is requested per socket (`PACKET_ADD_MEMBERSHIP`,
//!   `PACKET_MR_PROMISC`): the kernel counts it per socket and drops it when
//!   the socket closes, so the interface is restored even after a crash.
//! - Link state comes from the interface flags (`IFF_UP` and `IFF_RUNNING`,
//!   read every 10 ms): while the link is down, frames to transmit are freed
//!   and counted (`tx_link_down`); RX simply finds nothing; both resume when
//!   the link comes back.
//! - Frame sizes: the ring slots hold the pool's largest frame (the switch
//!   MTU plus two tags), so jumbo frames work up to `switch.mtu`. A received
//!   frame that does not fit is dropped (`rx_too_long`); a frame longer than
//!   the interface's MTU allows (MTU + 14 + one tag) is not sent
//!   (`tx_oversize`). Frames the kernel dropped because the RX ring was full
//!   are read from `PACKET_STATISTICS` (`rx_ring_drops`).
//! - An interface can be opened by one hairpin port at a time: an advisory
//!   lock in `/run/hairpin/` (released by the kernel when the process exits,
//!   crash or SIGKILL included) makes a second open fail with "in use" and the
//!   holder's pid. An interface the kernel owns — enslaved to a bridge, bond,
//!   team or Open vSwitch (`IFLA_MASTER`), or under a macvlan/ipvlan device —
//!   is refused too (read over rtnetlink in the port thread's namespace).
//!
//! Interfaces that feed hairpin should have TX checksum offload and
//! segmentation offloads off (`ethtool -K IF tx off tso off gso off`): a
//! veth otherwise hands over frames with unfinished checksums and 64 KiB
//! segments. `hairpin lab` does this for its links.
#![allow(unsafe_code)]

use super::{Port, PortQueue};
use crate::buf::{Burst, Pool, PoolCache};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a queue re-reads the interface flags, MTU and kernel drop count.
pub const LINK_CHECK: Duration = Duration::from_millis(10);
/// Offset of the frame data in a TX slot (the aligned `tpacket2_hdr`).
const TX_DATA_OFF: usize = 32;
/// Bytes of an Ethernet header plus one VLAN tag (what the kernel allows above the MTU).
const L2_OVER_MTU: usize = 14 + 4;

/// A snapshot of an AF_PACKET port's counters (summed over its queues).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AfPacketCounters {
    /// Frames received and handed to the switch.
    pub rx_pkts: u64,
    /// Bytes in those frames (VLAN tag included).
    pub rx_bytes: u64,
    /// Frames dropped on RX: longer than a ring slot or a pool buffer.
    pub rx_too_long: u64,
    /// Frames dropped on RX: no free pool buffer.
    pub rx_no_buffer: u64,
    /// Frames the kernel dropped because this socket's RX ring was full.
    pub rx_ring_drops: u64,
    /// Frames the host itself sent out of the interface, seen and ignored.
    pub rx_outgoing_ignored: u64,
    /// Frames put on the TX ring.
    pub tx_pkts: u64,
    /// Bytes in those frames.
    pub tx_bytes: u64,
    /// Frames dropped on TX because the link was down.
    pub tx_link_down: u64,
    /// Frames dropped on TX: longer than the interface MTU (+ header and one tag) allows.
    pub tx_oversize: u64,
    /// TX errors: frames the kernel refused (malformed) plus failed `sendto()` kicks.
    pub tx_errors: u64,
}

impl AfPacketCounters {
    fn add(&mut self, o: &AfPacketCounters) {
        self.rx_pkts += o.rx_pkts;
        self.rx_bytes += o.rx_bytes;
        self.rx_too_long += o.rx_too_long;
        self.rx_no_buffer += o.rx_no_buffer;
        self.rx_ring_drops += o.rx_ring_drops;
        self.rx_outgoing_ignored += o.rx_outgoing_ignored;
        self.tx_pkts += o.tx_pkts;
        self.tx_bytes += o.tx_bytes;
        self.tx_link_down += o.tx_link_down;
        self.tx_oversize += o.tx_oversize;
        self.tx_errors += o.tx_errors;
    }
    /// The counters as (name, value) pairs, in a fixed order.
    pub fn pairs(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("rx_pkts", self.rx_pkts),
            ("rx_bytes", self.rx_bytes),
            ("rx_too_long", self.rx_too_long),
            ("rx_no_buffer", self.rx_no_buffer),
            ("rx_ring_drops", self.rx_ring_drops),
            ("rx_outgoing_ignored", self.rx_outgoing_ignored),
            ("tx_pkts", self.tx_pkts),
            ("tx_bytes", self.tx_bytes),
            ("tx_link_down", self.tx_link_down),
            ("tx_oversize", self.tx_oversize),
            ("tx_errors", self.tx_errors),
        ]
    }
}

/// One queue's published counters and link state.
#[derive(Default)]
struct Shared {
    c: [AtomicU64; 11],
    link_up: AtomicBool,
}

impl Shared {
    fn store(&self, c: &AfPacketCounters) {
        for (slot, (_, v)) in self.c.iter().zip(c.pairs()) {
            slot.store(v, Ordering::Relaxed);
        }
    }
    fn load(&self) -> AfPacketCounters {
        let l = |i: usize| self.c[i].load(Ordering::Relaxed);
        AfPacketCounters {
            rx_pkts: l(0),
            rx_bytes: l(1),
            rx_too_long: l(2),
            rx_no_buffer: l(3),
            rx_ring_drops: l(4),
            rx_outgoing_ignored: l(5),
            tx_pkts: l(6),
            tx_bytes: l(7),
            tx_link_down: l(8),
            tx_oversize: l(9),
            tx_errors: l(10),
        }
    }
}

/// Why an AF_PACKET port could not be opened.
#[derive(Debug)]
pub struct OpenError(String);

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpenError {}

impl OpenError {
    pub(crate) fn new(s: String) -> Self {
        OpenError(s)
    }
}

/// Check an interface name and look it up: (C name, ifindex).
pub(crate) fn if_index(ifname: &str) -> Result<(CString, u32), String> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains(['/', ' ']) {
        return Err(format!(
            "{ifname:?} is not an interface name (1-{} characters, no '/' or space)",
            libc::IFNAMSIZ - 1
        ));
    }
    let cname = CString::new(ifname).map_err(|_| "interface name has a NUL byte".to_string())?;
    // SAFETY: a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(format!("no interface {ifname:?} in this network namespace"));
    }
    Ok((cname, ifindex))
}

/// (link up, MTU) of an interface, through any socket `fd`: up means
/// `IFF_UP` and `IFF_RUNNING`; an interface that cannot be queried is down.
pub(crate) fn link_state(fd: RawFd, name: &CString) -> (bool, Option<usize>) {
    let up = match if_flags(fd, name) {
        Ok(f) => f & libc::IFF_UP != 0 && f & libc::IFF_RUNNING != 0,
        Err(_) => false,
    };
    (up, if_mtu(fd, name).ok())
}

/// An AF_PACKET socket that receives nothing and holds the interface in
/// promiscuous mode until it is closed (by us or by the kernel at exit).
pub(crate) fn promisc_socket(ifindex: u32) -> Result<OwnedFd, String> {
    // SAFETY: plain socket call; protocol 0 receives nothing.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(os_err("opening an AF_PACKET socket"));
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: packet_mreq is plain data.
    let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mr.mr_ifindex = ifindex as i32;
    mr.mr_type = libc::PACKET_MR_PROMISC as u16;
    if setopt(
        fd.as_raw_fd(),
        libc::SOL_PACKET,
        libc::PACKET_ADD_MEMBERSHIP,
        &mr,
    ) != 0
    {
        return Err(os_err("promiscuous mode (PACKET_ADD_MEMBERSHIP)"));
    }
    Ok(fd)
}

/// Geometry of one mapped ring.
#[derive(Clone, Copy, Debug)]
struct Ring {
    /// Offset of the ring in the mapping.
    off: usize,
    frame_size: usize,
    frames: usize,
}

/// One worker's socket on the interface.
pub struct AfPacketQueue {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    rx: Ring,
    tx: Ring,
    rx_idx: usize,
    tx_idx: usize,
    /// Frames marked SEND_REQUEST since the last successful kick.
    tx_pending: usize,
    /// Largest frame the TX ring slot and the interface MTU allow.
    tx_max: usize,
    ifname: CString,
    pool: Arc<Pool>,
    cache: PoolCache,
    link_up: bool,
    last_check: Instant,
    polls: u32,
    tx_calls: u32,
    c: AfPacketCounters,
    shared: Arc<Shared>,
}

// SAFETY: the mapping is owned by this queue alone (one socket, one mapping);
// it is only touched through `&mut self`.
unsafe impl Send for AfPacketQueue {}

impl AfPacketQueue {
    #[inline(always)]
    fn slot(&self, r: &Ring, i: usize) -> *mut u8 {
        // SAFETY: i < r.frames, and the ring lies inside the mapping.
        unsafe { self.map.add(r.off + i * r.frame_size) }
    }

    #[inline(always)]
    fn status(p: *mut u8) -> &'static std::sync::atomic::AtomicU32 {
        // SAFETY: every slot starts with the 4-byte aligned tp_status word,
        // shared with the kernel; atomics give the needed ordering. The
        // reference does not outlive the mapping (used within one call).
        unsafe { &*(p as *const std::sync::atomic::AtomicU32) }
    }

    /// This queue's counters.
    pub fn counters(&self) -> AfPacketCounters {
        self.c
    }

    fn publish(&self) {
        self.shared.store(&self.c);
    }

    /// Re-read the interface flags, MTU and the kernel's RX drop count when
    /// `LINK_CHECK` has passed since the last time (or `force`).
    fn check_link(&mut self, force: bool) {
        if !force && self.last_check.elapsed() < LINK_CHECK {
            return;
        }
        self.last_check = Instant::now();
        let fd = self.fd.as_raw_fd();
        let (up, mtu) = link_state(fd, &self.ifname);
        self.link_up = up;
        self.shared.link_up.store(up, Ordering::Relaxed);
        if let Some(mtu) = mtu {
            self.tx_max = (mtu + L2_OVER_MTU).min(self.tx.frame_size - TX_DATA_OFF);
        }
        self.c.rx_ring_drops += ring_drops(fd);
        self.publish();
    }

    /// Kick the kernel to send what is marked. Errors other than "try again" count.
    fn kick(&mut self) {
        if self.tx_pending == 0 {
            return;
        }
        // SAFETY: a zero-length sendto on our own socket; the kernel reads the TX ring.
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
            self.tx_pending = 0;
            return;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR) => {}
            _ => {
                // The frames stay marked and go with the next successful kick.
                self.c.tx_errors += 1;
                self.check_link(true);
            }
        }
    }
}

impl PortQueue for AfPacketQueue {
    fn rx_fd(&self) -> Option<i32> {
        Some(self.fd.as_raw_fd())
    }
    fn rx_burst(&mut self, out: &mut Burst) -> usize {
        self.polls = self.polls.wrapping_add(1);
        if self.polls % 256 == 0 {
            self.check_link(false);
        }
        let rx = self.rx;
        let mut n = 0;
        while out.space() > 0 {
            let p = self.slot(&rx, self.rx_idx);
            let st = Self::status(p);
            let status = st.load(Ordering::Acquire);
            if status & libc::TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the kernel handed the slot to us (TP_STATUS_USER); it
            // holds a tpacket2_hdr, then a sockaddr_ll, then the frame at tp_mac.
            let (hdr, pkttype) = unsafe {
                let h = std::ptr::read_volatile(p as *const libc::tpacket2_hdr);
                let sll = p.add(TX_DATA_OFF) as *const libc::sockaddr_ll;
                (
                    h,
                    std::ptr::read_volatile(std::ptr::addr_of!((*sll).sll_pkttype)),
                )
            };
            let tagged = status & libc::TP_STATUS_VLAN_VALID != 0;
            let want = hdr.tp_snaplen as usize + if tagged { 4 } else { 0 };
            if pkttype == libc::PACKET_OUTGOING {
                self.c.rx_outgoing_ignored += 1;
            } else if hdr.tp_snaplen < hdr.tp_len
                || want > self.pool.max_frame()
                || (hdr.tp_mac as usize + hdr.tp_snaplen as usize) > rx.frame_size
            {
                self.c.rx_too_long += 1;
            } else if let Some(mut b) = self.cache.alloc(&self.pool) {
                // SAFETY: tp_mac + tp_snaplen lies inside the slot (checked above).
                let data = unsafe {
                    std::slice::from_raw_parts(p.add(hdr.tp_mac as usize), hdr.tp_snaplen as usize)
                };
                let ok = self.pool.fill(&mut b, data)
                    && (!tagged || {
                        let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0
                            && hdr.tp_vlan_tpid != 0
                        {
                            hdr.tp_vlan_tpid
                        } else {
                            0x8100
                        };
                        self.pool.push_tag(&mut b, tpid, hdr.tp_vlan_tci)
                    });
                if ok {
                    self.c.rx_pkts += 1;
                    self.c.rx_bytes += b.len() as u64;
                    // Cannot fail: space was checked.
                    let _ = out.push(b);
                    n += 1;
                } else {
                    self.c.rx_too_long += 1;
                    self.cache.free(&self.pool, b);
                }
            } else {
                self.c.rx_no_buffer += 1;
            }
            st.store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.rx_idx += 1;
            if self.rx_idx == rx.frames {
                self.rx_idx = 0;
            }
        }
        if n > 0 {
            self.publish();
        }
        n
    }

    fn tx_burst(&mut self, frames: &mut Burst) -> usize {
        if frames.is_empty() {
            return 0;
        }
        // The link state is refreshed by rx_burst (every 256 polls) and by a
        // failed kick; here only every 64th burst, so a busy TX path does not
        // read the clock per burst.
        self.tx_calls = self.tx_calls.wrapping_add(1);
        if self.tx_calls % 64 == 0 {
            self.check_link(false);
        }
        let total = frames.len();
        if !self.link_up {
            for f in frames.drain() {
                self.c.tx_link_down += 1;
                self.cache.free(&self.pool, f);
            }
            self.publish();
            return total;
        }
        let tx = self.tx;
        let mut taken = 0;
        let mut idx = self.tx_idx;
        for f in frames.as_slice() {
            let p = self.slot(&tx, idx);
            let st = Self::status(p);
            let s = st.load(Ordering::Acquire);
            if s == libc::TP_STATUS_WRONG_FORMAT {
                self.c.tx_errors += 1;
            } else if s != libc::TP_STATUS_AVAILABLE {
                break; // ring full: the rest stays with the caller
            }
            taken += 1;
            let len = f.len();
            if len > self.tx_max {
                self.c.tx_oversize += 1;
                if s == libc::TP_STATUS_WRONG_FORMAT {
                    st.store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
                }
                continue;
            }
            let data = self.pool.data(f);
            // SAFETY: the slot is ours (AVAILABLE); len <= frame_size - TX_DATA_OFF.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), p.add(TX_DATA_OFF), len);
                let h = p as *mut libc::tpacket2_hdr;
                std::ptr::write_volatile(std::ptr::addr_of_mut!((*h).tp_len), len as u32);
            }
            st.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
            self.c.tx_pkts += 1;
            self.c.tx_bytes += len as u64;
            self.tx_pending += 1;
            idx += 1;
            if idx == tx.frames {
                idx = 0;
            }
        }
        self.tx_idx = idx;
        for f in frames.consume_front(taken) {
            self.cache.free(&self.pool, f);
        }
        self.kick();
        self.publish();
        taken
    }

    fn flush(&mut self) {
        if self.link_up {
            self.kick();
        }
        self.publish();
    }

    fn link_up(&self) -> bool {
        self.link_up
    }
}

impl Drop for AfPacketQueue {
    fn drop(&mut self) {
        self.cache.flush(&self.pool);
        // SAFETY: the mapping was created by mmap with this length and is not used after this.
        unsafe { libc::munmap(self.map as *mut libc::c_void, self.map_len) };
    }
}

/// A port on a Linux interface through AF_PACKET sockets (one per queue).
pub struct AfPacketPort {
    name: String,
    ifname: String,
    queues: Vec<Option<AfPacketQueue>>,
    shared: Vec<Arc<Shared>>,
    mtu: usize,
    _lock: File,
}

impl AfPacketPort {
    /// Open `queues` sockets on interface `ifname` (in the calling thread's
    /// network namespace) for the port `name`, ring slots sized for the pool's
    /// largest frame. Errors say which interface and why: missing, in use, or
    /// not permitted (needs root / CAP_NET_RAW).
    pub fn open(
        name: &str,
        ifname: &str,
        queues: usize,
        pool: Arc<Pool>,
    ) -> Result<AfPacketPort, OpenError> {
        Self::open_ring(name, ifname, queues, pool, None)
    }

    /// As [`AfPacketPort::open`], with an RX ring of at least `rx_ring`
    /// frames per socket (`port.rx_ring`, rounded up to whole ring blocks;
    /// `None`: 2 MiB of slots, at least 256).
    pub fn open_ring(
        name: &str,
        ifname: &str,
        queues: usize,
        pool: Arc<Pool>,
        rx_ring: Option<usize>,
    ) -> Result<AfPacketPort, OpenError> {
        let what = format!("afpacket:{ifname}");
        let err = |why: String| OpenError(format!("{what}: {why}"));
        let (cname, ifindex) = if_index(ifname).map_err(err)?;
        let lock = lock_interface(ifname).map_err(err)?;
        if let Some(why) = super::netlink::usage(ifindex)
            .map_err(err)?
            .kernel_owner(ifname)
        {
            return Err(err(why));
        }
        let max_frame = pool.max_frame();
        let frame_size = (max_frame + 128).next_power_of_two().max(2048);
        let block = frame_size.max(1 << 16);
        let rx_blocks = match rx_ring {
            Some(n) => (n * frame_size).div_ceil(block).max(1),
            None => ((2usize << 20).max(256 * frame_size)) / block,
        };
        let tx_blocks = ((1usize << 20).max(128 * frame_size)) / block;
        let mut qs = Vec::new();
        let mut shared = Vec::new();
        let mut fanout_id: Option<u32> = None;
        let nq = queues.max(1);
        let mut mtu = 0;
        for q in 0..nq {
            let sh = Arc::new(Shared::default());
            let fd = open_socket(
                ifindex,
                frame_size,
                block,
                rx_blocks,
                tx_blocks,
                if nq > 1 { Some(&mut fanout_id) } else { None },
            )
            .map_err(|e| err(format!("queue {q}: {e}")))?;
            let (map, map_len) = fd.1;
            let rx = Ring {
                off: 0,
                frame_size,
                frames: rx_blocks * (block / frame_size),
            };
            let tx = Ring {
                off: rx_blocks * block,
                frame_size,
                frames: tx_blocks * (block / frame_size),
            };
            let raw = fd.0.as_raw_fd();
            mtu = if_mtu(raw, &cname).unwrap_or(1500);
            let mut queue = AfPacketQueue {
                fd: fd.0,
                map,
                map_len,
                rx,
                tx,
                rx_idx: 0,
                tx_idx: 0,
                tx_pending: 0,
                // Until the interface MTU is read: what a slot holds.
                tx_max: frame_size - TX_DATA_OFF,
                ifname: cname.clone(),
                pool: pool.clone(),
                cache: PoolCache::new(),
                link_up: false,
                last_check: Instant::now(),
                polls: 0,
                tx_calls: 0,
                c: AfPacketCounters::default(),
                shared: sh.clone(),
            };
            queue.check_link(true);
            qs.push(Some(queue));
            shared.push(sh);
        }
        Ok(AfPacketPort {
            name: name.to_string(),
            ifname: ifname.to_string(),
            queues: qs,
            shared,
            mtu,
            _lock: lock,
        })
    }

    /// The interface.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface MTU when the port was opened (IP MTU, without the Ethernet header).
    pub fn if_mtu(&self) -> usize {
        self.mtu
    }

    /// Counters summed over the queues (as last published, after each burst).
    pub fn counters(&self) -> AfPacketCounters {
        let mut c = AfPacketCounters::default();
        for s in &self.shared {
            c.add(&s.load());
        }
        c
    }

    /// The link state as last seen by queue 0.
    pub fn link_up(&self) -> bool {
        self.shared
            .first()
            .is_some_and(|s| s.link_up.load(Ordering::Relaxed))
    }

    /// Take queue `q` as the concrete type (once).
    pub fn take(&mut self, q: usize) -> Option<AfPacketQueue> {
        self.queues.get_mut(q)?.take()
    }
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }
    fn queues(&self) -> usize {
        self.queues.len()
    }
    fn take_queue(&mut self, q: usize) -> Option<Box<dyn PortQueue>> {
        self.take(q).map(|x| Box::new(x) as Box<dyn PortQueue>)
    }
    fn backend_stats(&self) -> Option<serde_json::Value> {
        let mut m: serde_json::Map<String, serde_json::Value> = self
            .counters()
            .pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        m.insert("link_up".into(), u64::from(self.link_up()).into());
        Some(m.into())
    }
}

fn os_err(what: &str) -> String {
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            format!("{what}: needs root (CAP_NET_RAW): {e}")
        }
        _ => format!("{what}: {e}"),
    }
}

fn setopt<T>(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: &T) -> libc::c_int {
    // SAFETY: v points to a live T of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    }
}

type Mapped = (OwnedFd, (*mut u8, usize));

/// One socket with its rings mapped, bound to `ifindex`, promiscuous, and
/// (with `fanout`) in the port's fanout group.
fn open_socket(
    ifindex: libc::c_uint,
    frame_size: usize,
    block: usize,
    rx_blocks: usize,
    tx_blocks: usize,
    fanout: Option<&mut Option<u32>>,
) -> Result<Mapped, String> {
    // Protocol 0: nothing is received before the rings exist and the bind below.
    // SAFETY: plain socket call.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(os_err("opening an AF_PACKET socket"));
    }
    // SAFETY: raw is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let s = fd.as_raw_fd();
    let one: libc::c_int = 1;
    let v2 = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
    if setopt(s, libc::SOL_PACKET, libc::PACKET_VERSION, &v2) != 0 {
        return Err(os_err("PACKET_VERSION TPACKET_V2"));
    }
    if setopt(s, libc::SOL_PACKET, libc::PACKET_LOSS, &one) != 0 {
        return Err(os_err("PACKET_LOSS"));
    }
    if setopt(s, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one) != 0 {
        return Err(os_err("PACKET_QDISC_BYPASS"));
    }
    // Older kernels lack it; the per-slot PACKET_OUTGOING check still applies.
    let _ = setopt(s, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one);
    let req = |blocks: usize| libc::tpacket_req {
        tp_block_size: block as u32,
        tp_block_nr: blocks as u32,
        tp_frame_size: frame_size as u32,
        tp_frame_nr: (blocks * (block / frame_size)) as u32,
    };
    if setopt(s, libc::SOL_PACKET, libc::PACKET_RX_RING, &req(rx_blocks)) != 0 {
        return Err(os_err("PACKET_RX_RING"));
    }
    if setopt(s, libc::SOL_PACKET, libc::PACKET_TX_RING, &req(tx_blocks)) != 0 {
        return Err(os_err("PACKET_TX_RING"));
    }
    let len = (rx_blocks + tx_blocks) * block;
    // SAFETY: mapping the socket's rings, as the packet(7) ABI prescribes.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
            s,
            0,
        )
    };
    let map = if map == libc::MAP_FAILED {
        // MAP_LOCKED can fail on a low RLIMIT_MEMLOCK: retry without it.
        // SAFETY: as above.
        let m = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                s,
                0,
            )
        };
        if m == libc::MAP_FAILED {
            return Err(os_err("mapping the packet rings"));
        }
        m
    } else {
        map
    };
    let unmap = |m: *mut libc::c_void| {
        // SAFETY: m was mapped above with len.
        unsafe { libc::munmap(m, len) };
    };
    // SAFETY: sockaddr_ll is plain data; zero is a valid start.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a valid sockaddr_ll of the size given.
    let r = unsafe {
        libc::bind(
            s,
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        let e = os_err("bind");
        unmap(map);
        return Err(e);
    }
    if let Some(id) = fanout {
        let kind = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG;
        let arg: u32 = match *id {
            Some(g) => g | (kind << 16),
            None => (kind | libc::PACKET_FANOUT_FLAG_UNIQUEID) << 16,
        };
        if setopt(s, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg) != 0 {
            let e = os_err("PACKET_FANOUT");
            unmap(map);
            return Err(e);
        }
        if id.is_none() {
            let mut got: u32 = 0;
            let mut l = std::mem::size_of::<u32>() as libc::socklen_t;
            // SAFETY: got and l are valid for the kernel to write.
            let r = unsafe {
                libc::getsockopt(
                    s,
                    libc::SOL_PACKET,
                    libc::PACKET_FANOUT,
                    &mut got as *mut u32 as *mut libc::c_void,
                    &mut l,
                )
            };
            if r != 0 {
                let e = os_err("reading the PACKET_FANOUT group");
                unmap(map);
                return Err(e);
            }
            *id = Some(got & 0xffff);
        }
    }
    // SAFETY: packet_mreq is plain data.
    let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mr.mr_ifindex = ifindex as i32;
    mr.mr_type = libc::PACKET_MR_PROMISC as u16;
    if setopt(s, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr) != 0 {
        let e = os_err("promiscuous mode (PACKET_ADD_MEMBERSHIP)");
        unmap(map);
        return Err(e);
    }
    Ok((fd, (map as *mut u8, len)))
}

fn ifreq(name: &CString) -> libc::ifreq {
    // SAFETY: ifreq is plain data; zero is valid.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    r
}

fn if_flags(fd: RawFd, name: &CString) -> io::Result<libc::c_int> {
    let mut r = ifreq(name);
    // SAFETY: SIOCGIFFLAGS fills the union's flags of our ifreq.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel wrote the flags member.
    Ok(unsafe { r.ifr_ifru.ifru_flags } as libc::c_int & 0xffff)
}

fn if_mtu(fd: RawFd, name: &CString) -> io::Result<usize> {
    let mut r = ifreq(name);
    // SAFETY: SIOCGIFMTU fills the union's mtu of our ifreq.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel wrote the mtu member.
    Ok(unsafe { r.ifr_ifru.ifru_mtu }.max(0) as usize)
}

/// Frames the kernel dropped for this socket since the last call (the kernel resets the count).
fn ring_drops(fd: RawFd) -> u64 {
    let st = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    getsockopt_into(fd, libc::SOL_PACKET, libc::PACKET_STATISTICS, st)
        .map_or(0, |st| st.tp_drops as u64)
}

/// `getsockopt(fd, level, opt)` into a plain-data `T` that starts as `init`
/// (a kernel that knows a shorter `T` leaves the rest as it was); None when
/// the kernel refuses.
pub(super) fn getsockopt_into<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    init: T,
) -> Option<T> {
    let mut v = init;
    let mut l = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: v and l are valid for the kernel to write, l bytes at most, and
    // T is plain data (any bytes the kernel writes are a valid T).
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            opt,
            &mut v as *mut T as *mut libc::c_void,
            &mut l,
        )
    };
    (r == 0).then_some(v)
}

/// The advisory lock that makes an interface one port's: `/run/hairpin/afpacket-NETNS-IF.lock`.
pub(crate) fn lock_interface(ifname: &str) -> Result<File, String> {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::metadata("/proc/thread-self/ns/net")
        .or_else(|_| std::fs::metadata("/proc/self/ns/net"))
        .map(|m| m.ino())
        .unwrap_or(0);
    let dir = Path::new("/run/hairpin");
    let dir = if std::fs::create_dir_all(dir).is_ok() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!("afpacket-{ns}-{ifname}.lock"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                " (needs root)"
            } else {
                ""
            };
            format!("lock file {}: {e}{hint}", path.display())
        })?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let holder = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .map(|p| format!(" by pid {p}"))
            .unwrap_or_default();
        return Err(format!(
            "interface {ifname:?} is in use by another hairpin port{holder} (lock {} is held)",
            path.display()
        ));
    }
    // The holder's pid, for the message above (the lock itself is the flock).
    let _ = f.set_len(0);
    let _ = (&f).write_all(format!("{}\n", std::process::id()).as_bytes());
    Ok(f)
}

/// Move the calling thread into the network namespace `name` (`/run/netns/NAME`,
/// as made by `ip netns add`) or the one at a path. Other threads are not affected:
/// sockets the thread opens afterwards live in that namespace.
pub fn enter_netns(name: &str) -> io::Result<()> {
    let path = if name.contains('/') {
        std::path::PathBuf::from(name)
    } else {
        Path::new("/run/netns").join(name)
    };
    let f = File::open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    // SAFETY: setns on a namespace descriptor we hold open.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True when the process may open AF_PACKET sockets (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interface_is_named() {
        let pool = Arc::new(Pool::new(64, 1600).unwrap());
        let e = AfPacketPort::open("p", "hp-nonexistent", 1, pool.clone())
            .err()
            .expect("no such interface");
        assert!(e.to_string().contains("afpacket:hp-nonexistent"), "{e}");
        assert!(e.to_string().contains("no interface"), "{e}");
        let e = AfPacketPort::open("p", "a/b", 1, pool)
            .err()
            .expect("bad name");
        assert!(e.to_string().contains("not an interface name"), "{e}");
    }

    #[test]
    fn loopback_in_use_and_not_root() {
        let pool = Arc::new(Pool::new(256, 1600).unwrap());
        if !is_root() {
            let e = AfPacketPort::open("p", "lo", 1, pool)
                .err()
                .expect("needs root");
            assert!(e.to_string().contains("needs root"), "{e}");
            return;
        }
        // Own namespace so the lock and promiscuous mode never touch the host's lo.
        let t = std::thread::spawn(move || {
            // SAFETY: unshare of the calling thread's network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return;
            }
            let a = AfPacketPort::open("p", "lo", 2, pool.clone()).expect("open lo");
            assert_eq!(a.queues(), 2);
            assert!(!a.link_up(), "lo starts down in a new namespace");
            let e = AfPacketPort::open("q", "lo", 1, pool.clone())
                .err()
                .expect("second open");
            assert!(e.to_string().contains("in use"), "{e}");
            drop(a);
            let b = AfPacketPort::open("q", "lo", 1, pool).expect("free again after close");
            drop(b);
        });
        t.join().unwrap();
    }
}
