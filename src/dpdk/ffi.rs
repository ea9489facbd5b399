//! Safe API over the generated bindings and the C shim.
//!
//! Ownership rules: an [`MbufPool`] owns its mempool and memzone (freed on
//! drop, after every port using it was closed); a slot handed out as a
//! [`PktBuf`] is owned by that handle until a burst call gives it to DPDK
//! (`tx_from`, `Ring::put_from`) or back to the pool; an [`Mbuf`] owns one
//! mbuf and frees it on drop.

use super::sys;
use crate::buf::{Burst, MemMode, PktBuf, Pool, PoolError, SlotSource};
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_int};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// DPDK version hairpin was built against (`pkg-config --modversion libdpdk`).
pub const VERSION: &str = env!("HAIRPIN_DPDK_VERSION");

/// An ethdev port number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortId(pub u16);

/// A queue number on an ethdev port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueueId(pub u16);

/// A failed DPDK call: which call, the errno and `rte_strerror`'s text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkError {
    /// The call (or step) that failed.
    pub call: String,
    /// Positive errno value.
    pub errno: i32,
    /// `rte_strerror(errno)`.
    pub text: String,
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (errno {})", self.call, self.text, self.errno)
    }
}
impl std::error::Error for DpdkError {}

/// `rte_strerror` text for a (positive or negative) errno.
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local string.
    unsafe {
        let p = sys::rte_strerror(errno.abs());
        if p.is_null() {
            return format!("error {errno}");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

fn err(call: impl Into<String>, errno: i32) -> DpdkError {
    DpdkError {
        call: call.into(),
        errno: errno.abs(),
        text: strerror(errno),
    }
}

/// The current `rte_errno`.
fn errno() -> i32 {
    // SAFETY: reads a per-thread int.
    unsafe { sys::hp_errno() }
}

fn check(call: &str, r: c_int) -> Result<c_int, DpdkError> {
    if r < 0 {
        Err(err(call, r))
    } else {
        Ok(r)
    }
}

fn cstring(what: &str, s: &str) -> Result<CString, DpdkError> {
    CString::new(s).map_err(|_| DpdkError {
        call: what.into(),
        errno: libc::EINVAL,
        text: format!("{s:?} contains a NUL byte"),
    })
}

// ---------------------------------------------------------------- EAL -----

enum EalState {
    Down,
    Up(Vec<String>),
    Failed(DpdkError),
    Cleaned,
}

static EAL: Mutex<EalState> = Mutex::new(EalState::Down);

/// Start the EAL with `args` (the program name is added in front). The EAL
/// starts once per process: later calls return `Ok` if it is up (whatever
/// their arguments) and the first error if it failed.
pub fn eal_init(args: &[String]) -> Result<(), DpdkError> {
    eal_init_sparing(args, &[])
}

/// As [`eal_init`], with the EAL's control threads (interrupt handling,
/// multi-process, telemetry) kept off `worker_cpus`, hairpin's polling cores.
///
/// The EAL places those threads on the CPUs the calling thread may use that
/// are not lcores (`-l`), or on the main lcore's CPU if none is left. With
/// `-l 0` on a machine whose workers poll the other CPUs, that puts them on
/// the workers' CPUs, where they preempt a worker whenever they wake. So the
/// calling thread's CPU set during the EAL's start leaves out `worker_cpus`
/// (when any CPU is left; if none is, a warning says so). Without `-l`/`-c`
/// the EAL takes its lcores from that set too, so none is a worker's CPU.
pub fn eal_init_sparing(args: &[String], worker_cpus: &[usize]) -> Result<(), DpdkError> {
    let mut st = EAL.lock().unwrap_or_else(|p| p.into_inner());
    match &*st {
        EalState::Up(_) => return Ok(()),
        EalState::Failed(e) => return Err(e.clone()),
        EalState::Cleaned => {
            return Err(DpdkError {
                call: "rte_eal_init".into(),
                errno: libc::EALREADY,
                text: "the EAL was already cleaned up in this process and cannot start again"
                    .into(),
            })
        }
        EalState::Down => {}
    }
    let mut owned = vec![cstring("rte_eal_init", "hairpin")?];
    for a in args {
        owned.push(cstring("rte_eal_init", a)?);
    }
    // The EAL may keep pointers into argv: the strings live for the process.
    let owned: &'static mut [CString] = Box::leak(owned.into_boxed_slice());
    let argv: &'static mut [*mut c_char] = Box::leak(
        owned
            .iter()
            .map(|s| s.as_ptr() as *mut c_char)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    // The EAL pins the calling thread to its main lcore; hairpin pins its
    // own workers, so the caller gets its CPU set back afterwards.
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    let mut cpus: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer of the given size.
    let have =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut cpus) }
            == 0;
    if have && !worker_cpus.is_empty() {
        let mut ctrl = cpus;
        for &c in worker_cpus
            .iter()
            .filter(|&&c| c < libc::CPU_SETSIZE as usize)
        {
            // SAFETY: c is below CPU_SETSIZE, the set's size.
            unsafe { libc::CPU_CLR(c, &mut ctrl) };
        }
        // SAFETY: ctrl is a valid set of the given size.
        let spared = unsafe { libc::CPU_COUNT(&ctrl) } > 0
            && unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &ctrl) }
                == 0;
        if !spared {
            tracing::warn!(
                "every CPU hairpin may use polls (workers {worker_cpus:?}): the DPDK \
                 control threads (interrupts, telemetry) share a CPU with a worker"
            );
        }
    }
    // SAFETY: argc/argv describe valid NUL-terminated strings that outlive the call.
    let r = unsafe { sys::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
    if have {
        // SAFETY: the set read above.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &cpus) };
    }
    if r < 0 {
        let en = errno();
        // A failed start leaves its runtime files (config, fbarray_*); remove
        // them so nothing stays behind.
        // SAFETY: returns a pointer to the EAL's static runtime path.
        let dir = unsafe {
            let p = sys::rte_eal_get_runtime_dir();
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        if let Some(d) = dir.filter(|d| d.contains("/dpdk/")) {
            let _ = std::fs::remove_dir_all(d);
        }
        let mut e = err("rte_eal_init", en);
        e.text = format!(
            "{} (EAL arguments {:?}; the EAL log above has the details)",
            e.text, args
        );
        *st = EalState::Failed(e.clone());
        return Err(e);
    }
    *st = EalState::Up(args.to_vec());
    Ok(())
}

/// True while the EAL is up.
pub fn eal_up() -> bool {
    matches!(
        *EAL.lock().unwrap_or_else(|p| p.into_inner()),
        EalState::Up(_)
    )
}

/// The arguments the EAL was started with (None if it is not up).
pub fn eal_args() -> Option<Vec<String>> {
    match &*EAL.lock().unwrap_or_else(|p| p.into_inner()) {
        EalState::Up(a) => Some(a.clone()),
        _ => None,
    }
}

/// `rte_eal_cleanup`: releases hugepage files, devices and EAL threads. Call
/// after every port was closed and every [`MbufPool`] dropped; the EAL cannot
/// start again in this process. A no-op if it is not up.
pub fn eal_cleanup() -> Result<(), DpdkError> {
    let mut st = EAL.lock().unwrap_or_else(|p| p.into_inner());
    if !matches!(*st, EalState::Up(_)) {
        return Ok(());
    }
    // SAFETY: returns a pointer to the EAL's static runtime path.
    let dir = unsafe {
        let p = sys::rte_eal_get_runtime_dir();
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    // SAFETY: the EAL is up; the caller closed ports and freed pools.
    let r = unsafe { sys::rte_eal_cleanup() };
    *st = EalState::Cleaned;
    check("rte_eal_cleanup", r)?;
    // The primary process's runtime files (config, fbarray_*) stay after
    // cleanup; nothing else uses this file prefix once we are gone.
    if let Some(d) = dir.filter(|d| !d.is_empty()) {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(())
}

/// True if the EAL got hugepage memory (false with `--no-huge`).
pub fn has_hugepages() -> bool {
    // SAFETY: plain query.
    unsafe { sys::rte_eal_has_hugepages() != 0 }
}

/// The NUMA socket of the calling thread.
pub fn socket_id() -> i32 {
    // SAFETY: plain query.
    unsafe { sys::rte_socket_id() as i32 }
}

/// Give the calling thread an lcore id if it has none (so mempool per-core
/// caches work on hairpin's own worker threads).
pub fn register_thread() {
    // SAFETY: plain call; failure leaves the thread without a cache, which is correct.
    unsafe { sys::hp_thread_register() }
}

/// The calling thread's lcore id (`u32::MAX` = none).
pub fn lcore_id() -> u32 {
    // SAFETY: plain query.
    unsafe { sys::hp_lcore_id() }
}

// -------------------------------------------------------------- ports -----

/// The ethdev named `name` (a PCI address like `0000:03:00.0`, or a vdev name).
pub fn port_by_name(name: &str) -> Option<PortId> {
    let c = CString::new(name).ok()?;
    let mut id = 0u16;
    // SAFETY: valid C string and out pointer.
    let r = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
    (r == 0).then_some(PortId(id))
}

/// The name of ethdev `p` (what `dpdk:NAME` matches).
pub fn port_name(p: PortId) -> Option<String> {
    let mut buf = [0 as c_char; 64];
    // SAFETY: buffer of RTE_ETH_NAME_MAX_LEN (64) bytes.
    let r = unsafe { sys::rte_eth_dev_get_name_by_port(p.0, buf.as_mut_ptr()) };
    // SAFETY: NUL-terminated on success.
    (r == 0).then(|| {
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    })
}

/// Ethdevs that exist now (`rte_eth_dev_count_avail`).
pub fn port_count() -> u16 {
    // SAFETY: plain query.
    unsafe { sys::rte_eth_dev_count_avail() }
}

/// Find or create the device `devargs` (`0000:03:00.0`,
/// `net_af_packet0,iface=veth0`, ...) and return its ethdev.
pub fn ensure_device(devargs: &str) -> Result<PortId, DpdkError> {
    let name = devargs.split(',').next().unwrap_or("");
    if let Some(p) = port_by_name(name) {
        return Ok(p);
    }
    let c = cstring("rte_dev_probe", devargs)?;
    // SAFETY: valid C string.
    let r = unsafe { sys::rte_dev_probe(c.as_ptr()) };
    if r < 0 {
        let mut e = err("rte_dev_probe", r);
        e.text = format!(
            "{}: no such device or driver ({devargs:?}; a PCI device must be bound to vfio-pci, see ./hugepage-setup --bind)",
            e.text
        );
        return Err(e);
    }
    port_by_name(name).ok_or_else(|| DpdkError {
        call: "rte_eth_dev_get_port_by_name".into(),
        errno: libc::ENODEV,
        text: format!("{devargs:?} was probed but is not an ethdev"),
    })
}

/// What a device offers.
#[derive(Clone, Debug)]
pub struct PortInfo {
    /// Driver name (`net_ring`, `net_ixgbe`, ...).
    pub driver: String,
    /// NUMA socket (-1 = any).
    pub socket: i32,
    /// Queue limits.
    pub max_rx_queues: u16,
    /// Queue limits.
    pub max_tx_queues: u16,
    /// MTU limits (L3 bytes).
    pub min_mtu: u16,
    /// MTU limits (L3 bytes).
    pub max_mtu: u16,
    /// Largest frame the device receives (L2 with CRC).
    pub max_rx_pktlen: u32,
    /// Descriptor limits.
    pub rx_desc_max: u16,
    /// Descriptor limits.
    pub tx_desc_max: u16,
    /// RSS hash functions the device supports (`RTE_ETH_RSS_*` bits).
    pub rss_offloads: u64,
}

/// `rte_eth_dev_info_get`.
pub fn port_info(p: PortId) -> Result<PortInfo, DpdkError> {
    let mut i = sys::hp_port_info::default();
    // SAFETY: valid out pointer.
    check("rte_eth_dev_info_get", unsafe {
        sys::hp_port_info(p.0, &mut i)
    })?;
    // SAFETY: the shim NUL-terminates `driver`.
    let driver = unsafe { CStr::from_ptr(i.driver.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Ok(PortInfo {
        driver,
        socket: i.socket,
        max_rx_queues: i.max_rx_queues,
        max_tx_queues: i.max_tx_queues,
        min_mtu: i.min_mtu,
        max_mtu: i.max_mtu,
        max_rx_pktlen: i.max_rx_pktlen,
        rx_desc_max: i.rx_desc_max,
        tx_desc_max: i.tx_desc_max,
        rss_offloads: i.rss_offloads,
    })
}

/// Port settings for [`port_setup`].
#[derive(Clone, Debug)]
pub struct PortSetup {
    /// RX and TX queues (one per worker).
    pub queues: u16,
    /// RX descriptors per queue.
    pub rx_desc: u16,
    /// TX descriptors per queue.
    pub tx_desc: u16,
    /// L3 MTU.
    pub mtu: u16,
    /// RSS on MAC/IP fields when queues > 1 and the device has it.
    pub rss: bool,
    /// Promiscuous mode.
    pub promiscuous: bool,
}

/// Configure a stopped port: queues (RX over `pool`'s mempool of NUMA
/// socket `socket`, else its first), descriptors, MTU, RSS, promiscuous
/// mode. Returns the RSS hash functions enabled (0 = none).
pub fn port_setup(
    p: PortId,
    s: &PortSetup,
    pool: &MbufPool,
    socket: i32,
) -> Result<u64, DpdkError> {
    let mut hf = 0u64;
    let mut step: *const c_char = std::ptr::null();
    // SAFETY: the mempool pointer is live (pool borrowed); out pointers valid.
    let r = unsafe {
        sys::hp_port_setup(
            p.0,
            s.queues,
            s.rx_desc,
            s.tx_desc,
            s.mtu,
            pool.part_for(socket).mp.as_ptr(),
            s.rss as c_int,
            s.promiscuous as c_int,
            &mut hf,
            &mut step,
        )
    };
    if r < 0 {
        // SAFETY: the shim sets step to a static string literal.
        let call = unsafe { CStr::from_ptr(step) }
            .to_string_lossy()
            .into_owned();
        return Err(err(call, r));
    }
    Ok(hf)
}

/// `rte_eth_dev_start`.
pub fn port_start(p: PortId) -> Result<(), DpdkError> {
    // SAFETY: plain call on a port id.
    check("rte_eth_dev_start", unsafe { sys::rte_eth_dev_start(p.0) }).map(|_| ())
}

/// `rte_eth_dev_stop` then `rte_eth_dev_close` (frees the queues' mbufs).
pub fn port_close(p: PortId) -> Result<(), DpdkError> {
    // SAFETY: plain calls on a port id.
    unsafe {
        let r = sys::rte_eth_dev_stop(p.0);
        let c = sys::rte_eth_dev_close(p.0);
        check("rte_eth_dev_stop", r)?;
        check("rte_eth_dev_close", c)?;
    }
    Ok(())
}

/// Link state now: `Some(speed Mb/s)` when up, `None` when down.
pub fn link(p: PortId) -> Result<Option<u32>, DpdkError> {
    let mut speed = 0u32;
    // SAFETY: valid out pointer.
    let r = check("rte_eth_link_get_nowait", unsafe {
        sys::hp_link(p.0, &mut speed)
    })?;
    Ok((r == 1).then_some(speed))
}

/// Counters of `rte_eth_stats_get` (sums over queues).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EthStats {
    /// Frames received.
    pub ipackets: u64,
    /// Frames sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Frames the device dropped because the RX queue was full.
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// RX mbuf allocation failures (mempool empty).
    pub rx_nombuf: u64,
}

/// `rte_eth_stats_get`.
pub fn stats(p: PortId) -> Result<EthStats, DpdkError> {
    let mut s = sys::rte_eth_stats::default();
    // SAFETY: valid out pointer.
    check("rte_eth_stats_get", unsafe {
        sys::rte_eth_stats_get(p.0, &mut s)
    })?;
    Ok(EthStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    })
}

// ---------------------------------------------------------- mbuf pool -----

/// The slot <-> mbuf mapping (copied into every queue; the pool outlives them).
#[derive(Clone, Copy)]
struct Slots(sys::hp_slots);
// SAFETY: the mapping is plain addresses into memory that lives as long as the
// MbufPool, which every holder keeps alive through an `Arc<Pool>`.
unsafe impl Send for Slots {}
unsafe impl Sync for Slots {}

/// One mempool of an [`MbufPool`]: its own memzone, on one NUMA socket.
struct Part {
    mp: NonNull<sys::rte_mempool>,
    mz: *const sys::rte_memzone,
    socket: i32,
    n: u32,
}

/// One or more pktmbuf mempools (one per NUMA socket), each over one
/// IOVA-contiguous memzone, in one slot space: every mempool's objects have
/// the same stride and their data rooms sit at addresses congruent modulo
/// it, so slot `i` is the mbuf whose data room is at `base + i * stride`
/// whichever mempool it belongs to, and a [`Pool`] made with
/// [`MbufPool::into_pool`] hands out `PktBuf`s that are the mbufs' own data
/// (no copy on RX or TX). An mbuf goes back to its own mempool when freed
/// (`rte_pktmbuf_free` reads `mbuf->pool`), wherever it was transmitted.
pub struct MbufPool {
    parts: Vec<Part>,
    slots: Slots,
}

// SAFETY: rte_mempool get/put are multi-producer/multi-consumer safe.
unsafe impl Send for MbufPool {}
unsafe impl Sync for MbufPool {}

/// Most mempools one [`MbufPool`] joins (NUMA sockets with dpdk ports).
pub const MAX_SOCKET_POOLS: usize = 8; // HP_MAX_SEGS in shim.h

/// Join per-mempool slot mappings (same stride, congruent bases) into one:
/// the lowest base, `n` up to the highest slot, one segment per mempool.
/// `None` when they do not fit one slot space (u32 slot numbers).
fn join_slots(parts: &[sys::hp_slots]) -> Option<sys::hp_slots> {
    let first = *parts.first()?;
    if parts.len() > MAX_SOCKET_POOLS || parts.len() > first.seg_lo.len() {
        return None;
    }
    let base = parts.iter().map(|p| p.base as usize).min()?;
    let mut out = first;
    out.base = base as *mut c_char;
    out.nseg = parts.len() as u32;
    let mut top = 0usize;
    for (k, p) in parts.iter().enumerate() {
        let d = p.base as usize - base;
        if p.stride != first.stride
            || p.hdr != first.hdr
            || p.room != first.room
            || d % first.stride != 0
        {
            return None;
        }
        let lo = d / first.stride;
        let hi = lo.checked_add(p.n as usize)?;
        if hi > u32::MAX as usize {
            return None;
        }
        out.seg_lo[k] = lo as u32;
        out.seg_hi[k] = hi as u32;
        top = top.max(hi);
    }
    out.n = top as u32;
    Some(out)
}

impl MbufPool {
    /// `n` mbufs with `data_room` bytes each (headroom included) on `socket`,
    /// with a per-lcore cache of `cache`.
    pub fn create(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<MbufPool, DpdkError> {
        Self::create_per_socket(name, &[(socket, n)], cache, data_room)
    }

    /// One mempool per `(socket, mbufs)` entry (named `NAME` for the first,
    /// `NAME_K` for the others), each with a per-lcore cache of `cache`, all
    /// in one slot space. On failure nothing is left allocated; the error
    /// names the socket when there are several.
    pub fn create_per_socket(
        name: &str,
        sizes: &[(i32, u32)],
        cache: u32,
        data_room: u16,
    ) -> Result<MbufPool, DpdkError> {
        if sizes.is_empty() || sizes.len() > MAX_SOCKET_POOLS {
            return Err(err(
                format!(
                    "mempools for {} NUMA sockets (1..={MAX_SOCKET_POOLS})",
                    sizes.len()
                ),
                libc::EINVAL,
            ));
        }
        let mut parts: Vec<Part> = Vec::new();
        let mut maps: Vec<sys::hp_slots> = Vec::new();
        // Frees what was made so far (the Part list is not an MbufPool yet).
        let undo = |parts: &[Part]| {
            for p in parts {
                // SAFETY: made by hp_pool_create below, not used by anything else yet.
                unsafe { sys::hp_pool_free(p.mp.as_ptr(), p.mz) }
            }
        };
        for (k, &(socket, n)) in sizes.iter().enumerate() {
            let nm = if k == 0 {
                name.to_string()
            } else {
                format!("{name}_{k}")
            };
            let c = match cstring("rte_mempool_create_empty", &nm) {
                Ok(c) => c,
                Err(e) => {
                    undo(&parts);
                    return Err(e);
                }
            };
            let mut sl = sys::hp_slots::default();
            let mut mz: *const sys::rte_memzone = std::ptr::null();
            let mut step: *const c_char = std::ptr::null();
            let align = maps
                .first()
                .map_or(std::ptr::null(), |m| m.base as *const c_char);
            // SAFETY: valid pointers; `align` is the live first mempool's base;
            // the shim frees everything it made on failure.
            let mp = unsafe {
                sys::hp_pool_create(
                    c.as_ptr(),
                    n,
                    cache,
                    data_room,
                    socket,
                    align,
                    &mut sl,
                    &mut mz,
                    &mut step,
                )
            };
            match NonNull::new(mp) {
                Some(mp) => {
                    parts.push(Part { mp, mz, socket, n });
                    maps.push(sl);
                }
                None => {
                    let e = errno();
                    // SAFETY: step is a static string literal set by the shim.
                    let call = unsafe { CStr::from_ptr(step) }
                        .to_string_lossy()
                        .into_owned();
                    undo(&parts);
                    let call = if sizes.len() > 1 {
                        format!("{call} (the mempool of NUMA socket {socket})")
                    } else {
                        call
                    };
                    return Err(err(call, e));
                }
            }
        }
        let Some(joined) = join_slots(&maps) else {
            undo(&parts);
            return Err(err(
                "joining the per-socket mempools into one slot space (their memzones are too far apart)",
                libc::ERANGE,
            ));
        };
        Ok(MbufPool {
            parts,
            slots: Slots(if maps.len() == 1 {
                // One mempool: every slot below n is its own (no segment check).
                sys::hp_slots { nseg: 0, ..maps[0] }
            } else {
                joined
            }),
        })
    }

    /// Mbufs in the pool (all its mempools).
    pub fn size(&self) -> u32 {
        self.parts.iter().map(|p| p.n).sum()
    }

    /// Free mbufs (rings plus per-lcore caches of all its mempools).
    pub fn avail(&self) -> u32 {
        self.parts
            .iter()
            // SAFETY: live mempools.
            .map(|p| unsafe { sys::rte_mempool_avail_count(p.mp.as_ptr()) })
            .sum()
    }

    /// (NUMA socket, mbufs, free mbufs) of each mempool, in creation order.
    pub fn sockets(&self) -> Vec<(i32, u32, u32)> {
        self.parts
            .iter()
            // SAFETY: live mempools.
            .map(|p| {
                (p.socket, p.n, unsafe {
                    sys::rte_mempool_avail_count(p.mp.as_ptr())
                })
            })
            .collect()
    }

    /// The mempool for `socket`: its own, else the first.
    fn part_for(&self, socket: i32) -> &Part {
        self.parts
            .iter()
            .find(|p| p.socket == socket)
            .unwrap_or(&self.parts[0])
    }

    /// Allocate one mbuf (`rte_pktmbuf_alloc`): from the calling thread's
    /// socket's mempool when there are several, else (or when it is empty)
    /// from any.
    pub fn alloc(&self) -> Option<Mbuf> {
        let mut idx = 0u32;
        let first = if self.parts.len() > 1 {
            self.part_for(socket_id())
        } else {
            &self.parts[0]
        };
        let order =
            std::iter::once(first).chain(self.parts.iter().filter(|p| !std::ptr::eq(*p, first)));
        for p in order {
            // SAFETY: live mempool; the mapping covers all of its mbufs.
            if unsafe { sys::hp_slot_get(p.mp.as_ptr(), &self.slots.0, &mut idx) } == 0 {
                return Some(Mbuf {
                    idx,
                    slots: self.slots,
                });
            }
        }
        None
    }

    /// Make the hairpin [`Pool`] over this mempool. Fails if DPDK's mbuf
    /// headroom is not hairpin's [`HEADROOM`](crate::buf::HEADROOM).
    pub fn into_pool(self) -> Result<Pool, PoolError> {
        // SAFETY: plain constant.
        let hr = unsafe { sys::hp_pktmbuf_headroom() } as usize;
        if hr != crate::buf::HEADROOM {
            return Err(PoolError::BadSize(format!(
                "DPDK's RTE_PKTMBUF_HEADROOM is {hr}, hairpin needs {}",
                crate::buf::HEADROOM
            )));
        }
        let s = self.slots.0;
        let mode = if has_hugepages() {
            MemMode::Hugepages
        } else {
            MemMode::Plain
        };
        // SAFETY: slot i is mbuf i's data room inside the memzone, which the
        // MbufPool (moved into the Pool as its source) keeps until the Pool drops.
        unsafe {
            Pool::with_source(
                s.base as *mut u8,
                s.stride,
                s.room as usize,
                s.n as usize,
                mode,
                Box::new(self),
            )
        }
    }

    /// The mbuf pool behind a hairpin pool, if it has one.
    pub fn of(pool: &Pool) -> Option<&MbufPool> {
        pool.source()?.as_any().downcast_ref::<MbufPool>()
    }
}

impl SlotSource for MbufPool {
    #[inline]
    fn get(&self) -> Option<u32> {
        self.alloc().map(Mbuf::into_slot)
    }
    fn get_bulk(&self, out: &mut [u32]) -> usize {
        let mp = if self.parts.len() > 1 {
            self.part_for(socket_id()).mp
        } else {
            self.parts[0].mp
        };
        let mut done = 0;
        while done < out.len() {
            let k = (out.len() - done).min(64);
            // SAFETY: live mempool; `out[done..done + k]` is writable.
            let g = unsafe {
                sys::hp_slot_get_bulk(
                    mp.as_ptr(),
                    &self.slots.0,
                    out[done..].as_mut_ptr(),
                    k as u32,
                )
            } as usize;
            if g == 0 {
                // All-or-nothing failed: take what is left one by one.
                while done < out.len() {
                    match self.get() {
                        Some(i) => out[done] = i,
                        None => return done,
                    }
                    done += 1;
                }
                return done;
            }
            done += g;
        }
        done
    }
    #[inline]
    fn put(&self, idx: u32) {
        // SAFETY: idx came from this pool (Pool checks idx < n in debug builds).
        unsafe { sys::hp_slot_put(&self.slots.0, idx) }
    }
    #[inline]
    fn put_bulk(&self, idx: &[u32]) {
        // SAFETY: as put; rte_pktmbuf_free_bulk underneath.
        unsafe { sys::hp_slot_put_bulk(&self.slots.0, idx.as_ptr(), idx.len() as u32) }
    }
    fn available(&self) -> usize {
        self.avail() as usize
    }
    fn size(&self) -> usize {
        MbufPool::size(self) as usize
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Drop for MbufPool {
    fn drop(&mut self) {
        for p in &self.parts {
            // SAFETY: we own both; every port using the pool was closed first.
            unsafe { sys::hp_pool_free(p.mp.as_ptr(), p.mz) }
        }
    }
}

/// One mbuf of an [`MbufPool`], owned: not `Clone`, freed on drop.
pub struct Mbuf {
    idx: u32,
    slots: Slots,
}

impl Mbuf {
    /// Hand the mbuf to hairpin as a `PktBuf` (its slot; empty frame).
    pub fn into_slot(self) -> u32 {
        let i = self.idx;
        std::mem::forget(self);
        i
    }
    /// Slot index.
    pub fn index(&self) -> u32 {
        self.idx
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own this mbuf.
        unsafe { sys::hp_slot_put(&self.slots.0, self.idx) }
    }
}

// ---------------------------------------------------------- burst I/O -----

const MAX_BURST: usize = 256;

// `PktBuf` is `repr(C)` with `struct hp_buf`'s fields in its order (shim.c
// checks hp_buf's offsets; the test `a_burst_is_the_shims_frame_array` the
// fields' correspondence).
const _: () = assert!(std::mem::size_of::<PktBuf>() == std::mem::size_of::<sys::hp_buf>());

/// `out`'s free space (at most [`MAX_BURST`]) as the shim's frame array.
fn spare_bufs(out: &mut Burst) -> (*mut sys::hp_buf, usize) {
    let spare = out.spare();
    (spare.as_mut_ptr().cast(), spare.len().min(MAX_BURST))
}

/// The front of `frames` (at most [`MAX_BURST`]) as the shim's frame array.
fn front_bufs(frames: &Burst) -> (*const sys::hp_buf, usize) {
    let f = frames.as_slice();
    (f.as_ptr().cast(), f.len().min(MAX_BURST))
}

/// One RX/TX queue pair of a started port, in `PktBuf` terms.
pub struct EthQueue {
    port: PortId,
    q: QueueId,
    slots: Slots,
    unusable: u64,
    _pool: Arc<Pool>,
}

impl EthQueue {
    /// Queue `q` of port `p`, whose RX queue was set up over `pool`'s mbufs.
    pub fn new(p: PortId, q: QueueId, pool: Arc<Pool>) -> Option<EthQueue> {
        let slots = MbufPool::of(&pool)?.slots;
        Some(EthQueue {
            port: p,
            q,
            slots,
            unusable: 0,
            _pool: pool,
        })
    }

    /// `rte_eth_rx_burst` into `out`'s free space. Chained (multi-segment)
    /// mbufs and mbufs of another pool are freed and counted in
    /// [`EthQueue::unusable`].
    #[inline]
    pub fn rx_into(&mut self, out: &mut Burst) -> usize {
        let (buf, room) = spare_bufs(out);
        if room == 0 {
            return 0;
        }
        // SAFETY: buf has room writable entries; the port was started over this pool.
        let n = unsafe {
            sys::hp_rx(
                self.port.0,
                self.q.0,
                &self.slots.0,
                buf,
                room as u16,
                &mut self.unusable,
            )
        } as usize;
        // SAFETY: hp_rx wrote n entries, each the one handle of its mbuf.
        unsafe { out.commit(n) };
        n
    }

    /// `rte_eth_tx_burst` from the front of `frames`; the frames taken belong
    /// to DPDK now (it frees them after sending). Returns how many.
    #[inline]
    pub fn tx_from(&mut self, frames: &mut Burst) -> usize {
        let (buf, n) = front_bufs(frames);
        if n == 0 {
            return 0;
        }
        // SAFETY: the handles are unique owners of these slots of this pool.
        let sent =
            unsafe { sys::hp_tx(self.port.0, self.q.0, &self.slots.0, buf, n as u16) } as usize;
        frames.consume_front(sent).for_each(drop);
        sent
    }

    /// Chained or foreign mbufs received and dropped so far (`rx_unusable_dropped`).
    pub fn unusable(&self) -> u64 {
        self.unusable
    }
}

// --------------------------------------------------------------- rings -----

/// The far side of an in-process ring ethdev (`rte_eth_from_rings`): what a
/// test or a generator puts into `to_port` the port receives; what the port
/// transmits comes out of `from_port`.
pub struct RingDev {
    name: String,
    to_port: Vec<NonNull<sys::rte_ring>>,
    from_port: Vec<NonNull<sys::rte_ring>>,
}

// SAFETY: each ring is single-producer/single-consumer; a RingDev is used by
// one thread at a time (it is not Sync), the port's queue by another.
unsafe impl Send for RingDev {}

static RING_SEQ: AtomicU64 = AtomicU64::new(0);

impl RingDev {
    /// Create the ethdev `name` with `queues` RX/TX ring pairs of `depth`
    /// (a power of two) on the calling thread's socket. Frames move in and
    /// out with [`RingDev::put_from`] / [`RingDev::get_into`] against the
    /// pool made by [`MbufPool::into_pool`]; [`RingDev::drain`] empties the
    /// rings before the device goes.
    pub fn create(name: &str, queues: u16, depth: u32) -> Result<RingDev, DpdkError> {
        let seq = RING_SEQ.fetch_add(1, Ordering::Relaxed);
        // SAFETY: plain constant.
        let flags = unsafe { sys::hp_ring_flags_spsc() };
        let mk = |dir: &str, q: u16| -> Result<NonNull<sys::rte_ring>, DpdkError> {
            let n = cstring("rte_ring_create", &format!("hp{seq}{dir}{q}"))?;
            // SAFETY: valid name; socket -1 = any.
            let r = unsafe { sys::rte_ring_create(n.as_ptr(), depth, -1, flags) };
            NonNull::new(r).ok_or_else(|| err("rte_ring_create", errno()))
        };
        let mut rx = Vec::new();
        let mut tx = Vec::new();
        let made = (|| {
            for q in 0..queues {
                rx.push(mk("r", q)?);
                tx.push(mk("t", q)?);
            }
            Ok(())
        })();
        let free_all = |v: &[NonNull<sys::rte_ring>]| {
            for r in v {
                // SAFETY: rings we created, not yet used by a port.
                unsafe { sys::rte_ring_free(r.as_ptr()) }
            }
        };
        if let Err(e) = made {
            free_all(&rx);
            free_all(&tx);
            return Err(e);
        }
        let c = cstring("rte_eth_from_rings", name)?;
        let rxp: Vec<*mut sys::rte_ring> = rx.iter().map(|r| r.as_ptr()).collect();
        let txp: Vec<*mut sys::rte_ring> = tx.iter().map(|r| r.as_ptr()).collect();
        // SAFETY: valid arrays of live rings.
        let r = unsafe {
            sys::rte_eth_from_rings(
                c.as_ptr(),
                rxp.as_ptr(),
                queues as u32,
                txp.as_ptr(),
                queues as u32,
                socket_id().max(0) as u32,
            )
        };
        if r < 0 {
            free_all(&rx);
            free_all(&tx);
            return Err(err("rte_eth_from_rings", errno()));
        }
        // The ring driver names the ethdev `net_ring_NAME`.
        let name = port_name(PortId(r as u16)).unwrap_or_else(|| name.to_string());
        Ok(RingDev {
            name,
            to_port: rx,
            from_port: tx,
        })
    }

    /// The ethdev name, `net_ring_` + the name given to [`RingDev::create`]
    /// (use it as `backend = "dpdk:net_ring_NAME"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Put frames from the front of `frames` on queue `q`'s RX ring (the port
    /// receives them). Returns how many were taken.
    pub fn put_from(&mut self, q: usize, frames: &mut Burst, pool: &Pool) -> usize {
        let Some(mp) = MbufPool::of(pool) else {
            return 0;
        };
        let (buf, n) = front_bufs(frames);
        if n == 0 {
            return 0;
        }
        // SAFETY: unique handles of this pool's slots; live ring.
        let k = unsafe { sys::hp_ring_put(self.to_port[q].as_ptr(), &mp.slots.0, buf, n as u32) }
            as usize;
        frames.consume_front(k).for_each(drop);
        k
    }

    /// Take what the port transmitted on queue `q` into `out`'s free space.
    pub fn get_into(&mut self, q: usize, out: &mut Burst, pool: &Pool) -> usize {
        let Some(mp) = MbufPool::of(pool) else {
            return 0;
        };
        let (buf, room) = spare_bufs(out);
        if room == 0 {
            return 0;
        }
        // SAFETY: buf has room writable entries; live ring of this pool's mbufs.
        let n =
            unsafe { sys::hp_ring_get(self.from_port[q].as_ptr(), &mp.slots.0, buf, room as u32) }
                as usize;
        // SAFETY: hp_ring_get wrote n entries, each the one handle of its mbuf.
        unsafe { out.commit(n) };
        n
    }

    /// Frames waiting in queue `q`'s RX ring (not yet received by the port).
    pub fn pending(&self, q: usize) -> usize {
        // SAFETY: live ring.
        unsafe { sys::hp_ring_count(self.to_port[q].as_ptr()) as usize }
    }
}

impl RingDev {
    /// Give every frame still in the rings (either direction) back to `pool`.
    /// Returns how many there were.
    pub fn drain(&mut self, pool: &Pool) -> usize {
        let Some(mp) = MbufPool::of(pool) else {
            return 0;
        };
        let mut b = Burst::new(MAX_BURST);
        let mut total = 0;
        for r in self.to_port.iter().chain(&self.from_port) {
            loop {
                let (buf, room) = spare_bufs(&mut b);
                // SAFETY: buf has room writable entries; live ring of this pool's mbufs.
                let n =
                    unsafe { sys::hp_ring_get(r.as_ptr(), &mp.slots.0, buf, room as u32) } as usize;
                if n == 0 {
                    break;
                }
                total += n;
                // SAFETY: hp_ring_get wrote n entries, each the one handle of its mbuf.
                unsafe { b.commit(n) };
                for x in b.drain() {
                    pool.free(x);
                }
            }
        }
        total
    }
}

impl Drop for RingDev {
    fn drop(&mut self) {
        // The rings belong to us (rte_eth_from_rings attaches, it does not
        // take them); free them only once no ethdev uses them any more.
        if port_by_name(&self.name).is_some() {
            return;
        }
        for r in self.to_port.iter().chain(&self.from_port) {
            // SAFETY: rings we created; the port that used them is closed.
            unsafe { sys::rte_ring_free(r.as_ptr()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_the_shims_frame_array() {
        let mut b = Burst::new(4);
        let f = PktBuf {
            idx: 0x0102_0304,
            off: 0x0506,
            len: 0x0708,
            ts: 0x1122_3344_5566_7788,
        };
        b.push(f).unwrap();
        let (p, n) = front_bufs(&b);
        assert_eq!(n, 1);
        // SAFETY: p points at the burst's one frame.
        let h = unsafe { p.read() };
        assert_eq!(
            (h.idx, h.off, h.len, h.ts),
            (0x0102_0304, 0x0506, 0x0708, 0x1122_3344_5566_7788)
        );
        let (p, room) = spare_bufs(&mut b);
        assert_eq!(room, 3);
        // SAFETY: p has 3 writable entries; written as the shim writes them.
        unsafe {
            p.write(sys::hp_buf {
                idx: 9,
                off: 128,
                len: 60,
                ts: 0,
            });
            b.commit(1);
        }
        let got: Vec<(u32, u16, u16, u64)> = b
            .as_slice()
            .iter()
            .map(|f| (f.idx, f.off, f.len, f.ts))
            .collect();
        assert_eq!(
            got,
            [
                (0x0102_0304, 0x0506, 0x0708, 0x1122_3344_5566_7788),
                (9, 128, 60, 0)
            ]
        );
    }

    fn part(base: usize, n: u32) -> sys::hp_slots {
        sys::hp_slots {
            base: base as *mut c_char,
            stride: 2432,
            hdr: 128,
            magic: ((1u128 << 64) / 2432) as u64 + 1,
            n,
            room: 2176,
            ..Default::default()
        }
    }

    #[test]
    fn joined_slot_space_has_one_segment_per_mempool() {
        let a = part(0x10_0000_0000 + 5 * 2432, 300);
        // Below the first one, congruent modulo the stride.
        let b = part(0x10_0000_0000 - 1000 * 2432 + 5 * 2432, 200);
        let j = join_slots(&[a, b]).unwrap();
        assert_eq!(j.base, b.base, "the lowest base");
        assert_eq!(j.nseg, 2);
        assert_eq!((j.seg_lo[0], j.seg_hi[0]), (1000, 1300));
        assert_eq!((j.seg_lo[1], j.seg_hi[1]), (0, 200));
        assert_eq!(j.n, 1300);
        assert_eq!(
            (j.stride, j.hdr, j.room, j.magic),
            (a.stride, a.hdr, a.room, a.magic)
        );
        // Not congruent, another stride, or too far apart for u32 slot numbers: refused.
        assert!(join_slots(&[a, part(a.base as usize + 2432 * 400 + 64, 10)]).is_none());
        assert!(join_slots(&[a, sys::hp_slots { stride: 2496, ..b }]).is_none());
        assert!(join_slots(&[a, part(a.base as usize + 2432 * (u32::MAX as usize), 10)]).is_none());
        assert!(join_slots(&[]).is_none());
        assert!(join_slots(&vec![a; MAX_SOCKET_POOLS + 1]).is_none());
        assert_eq!(join_slots(&[a]).unwrap().n, 300);
    }
}
