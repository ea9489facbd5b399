//! The `dpdk` backend (cargo feature `dpdk`): `backend = "dpdk:DEVICE"`.
//!
//! `DEVICE` is a PCI address bound to vfio-pci (`dpdk:0000:03:00.0`), a vdev
//! with its arguments (`dpdk:net_af_packet0,iface=veth0`, `dpdk:net_null0`),
//! or the name of an ethdev the process made itself (a `RingDev` in tests
//! and `hairpin bench`). All `unsafe` is in `crate::dpdk`; this file is safe.
//!
//! Zero copy: [`make_pool`] starts the EAL and builds hairpin's [`Pool`] over
//! one DPDK mempool per NUMA socket with dpdk ports, whose mbufs all sit at
//! one fixed stride in one slot space, so slot `i` *is* an mbuf's data room
//! (each port's RX queues take mbufs from its socket's mempool). RX turns mbufs into `PktBuf`s (index, data offset,
//! length), the pipeline edits the bytes in place (VLAN push/pop use the
//! mbuf headroom), TX turns them back; drops return mbufs to the mempool in
//! bulk (`rte_pktmbuf_free_bulk`, through the per-core `PoolCache`).

use crate::buf::{Burst, Pool, HEADROOM};
use crate::config::{dpdk::device, Config};
use crate::dpdk::{self as ffi, EthQueue, MbufPool, PortId, PortSetup, QueueId};
use crate::port::{Port, PortQueue};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// True if the config has a `dpdk:` port.
pub fn wanted(cfg: &Config) -> bool {
    cfg.port.iter().any(|p| device(&p.backend).is_some())
}

/// Mbufs one NUMA socket's mempool needs at least: every descriptor of
/// every queue of its `ports` filled, its per-core caches (any worker may
/// free into any socket's mempool), and the bursts in flight: one per worker
/// and dpdk port (`all_ports`, since its frames are staged toward any port).
fn mbufs_needed_for(cfg: &Config, ports: usize, all_ports: usize) -> usize {
    let nq = cfg.switch.workers.len();
    let d = &cfg.dpdk;
    let cache = (d.mempool_cache as usize * 3).div_ceil(2);
    ports * nq * (d.rx_desc as usize + d.tx_desc as usize)
        + (nq + 1) * cache
        + nq * (all_ports + 1) * cfg.switch.burst
        + nq * crate::buf::CACHE_BATCH * 2
}

/// Mbufs a config needs at least when all its dpdk ports are on one socket.
pub fn mbufs_needed(cfg: &Config) -> usize {
    let ports = cfg
        .port
        .iter()
        .filter(|p| device(&p.backend).is_some())
        .count();
    mbufs_needed_for(cfg, ports, ports)
}

/// One mempool per NUMA socket that has dpdk ports: `(socket, mbufs)` in the
/// order the sockets first appear in `port_sockets` (one entry per dpdk
/// port). Each gets what its ports need ([`mbufs_needed_for`]) plus a share
/// of the rest of `total` (`switch.pool_size` + extra) in proportion to its
/// ports. Fails, naming `switch.pool_size`, when `total` does not cover every
/// socket's need.
pub fn socket_pool_sizes(
    cfg: &Config,
    port_sockets: &[i32],
    total: usize,
) -> Result<Vec<(i32, usize)>, String> {
    let mut per: Vec<(i32, usize)> = Vec::new();
    for &s in port_sockets {
        match per.iter_mut().find(|(x, _)| *x == s) {
            Some(e) => e.1 += 1,
            None => per.push((s, 1)),
        }
    }
    let all = port_sockets.len();
    let needs: Vec<usize> = per
        .iter()
        .map(|&(_, k)| mbufs_needed_for(cfg, k, all))
        .collect();
    let need: usize = needs.iter().sum();
    if total < need {
        let split = if per.len() > 1 {
            format!(
                " ({})",
                per.iter()
                    .zip(&needs)
                    .map(|(&(s, k), n)| format!("socket {s}: {k} ports, {n}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        } else {
            String::new()
        };
        return Err(format!(
            "switch.pool_size: {total} mbufs cannot fill the DPDK queues: at least {need} are needed{split} \
             (dpdk ports × {} queues × ({} RX + {} TX descriptors) + per-core caches and bursts, per NUMA socket); \
             raise switch.pool_size or lower dpdk.rx_desc/tx_desc",
            cfg.switch.workers.len(),
            cfg.dpdk.rx_desc,
            cfg.dpdk.tx_desc
        ));
    }
    let spare = total - need;
    let mut out: Vec<(i32, usize)> = per
        .iter()
        .zip(&needs)
        .map(|(&(s, k), &n)| (s, n + spare * k / all.max(1)))
        .collect();
    // What the proportional split rounded away goes to the first socket.
    let given: usize = out.iter().map(|e| e.1).sum();
    if let Some(f) = out.first_mut() {
        f.1 += total - given;
    }
    Ok(out)
}

/// NUMA node of CPU `core` (sysfs), if the kernel says.
fn cpu_node(core: usize) -> Option<i32> {
    let dir = std::fs::read_dir(format!("/sys/devices/system/cpu/cpu{core}")).ok()?;
    dir.flatten().find_map(|e| {
        e.file_name()
            .to_str()?
            .strip_prefix("node")?
            .parse::<i32>()
            .ok()
    })
}

/// The socket a port's queues and buffers go on: the device's, or — when it
/// has none (`SOCKET_ID_ANY`, vdevs) — the first worker core's, else 0.
fn port_socket(cfg: &Config, dev_socket: i32) -> i32 {
    if dev_socket >= 0 {
        return dev_socket;
    }
    cfg.switch
        .workers
        .first()
        .and_then(|&c| cpu_node(c))
        .unwrap_or(0)
}

/// Bytes of mbuf data room for the config's MTU (headroom included).
fn data_room(cfg: &Config) -> usize {
    HEADROOM + (cfg.switch.mtu + 8).max(2048)
}

/// Start the EAL (`[dpdk] eal_args`, its control threads kept off the
/// `switch.workers` cores), find or create every `dpdk:` device
/// and build the switch's pool over one mbuf mempool per NUMA socket that
/// has dpdk ports ([`socket_pool_sizes`] splits `switch.pool_size + extra`),
/// all in one slot space: a frame received on a port of one socket may be
/// sent on a port of another as it is (DPDK transmits mbufs of any pool), and
/// when it is freed it goes back to its own socket's mempool.
pub fn make_pool(cfg: &Config, extra: usize) -> Result<Arc<Pool>, String> {
    ffi::eal_init_sparing(&cfg.dpdk.eal_args, &cfg.switch.workers)
        .map_err(|e| format!("dpdk.eal_args: the DPDK EAL did not start: {e}"))?;
    let mut sockets = Vec::new();
    for (i, p) in cfg.port.iter().enumerate() {
        if let Some(dev) = device(&p.backend) {
            let id = ffi::ensure_device(dev).map_err(|e| format!("port[{i}].backend: {e}"))?;
            let info = ffi::port_info(id).map_err(|e| format!("port[{i}].backend: {e}"))?;
            sockets.push(port_socket(cfg, info.socket));
        }
    }
    if sockets.is_empty() {
        sockets.push(port_socket(cfg, -1));
    }
    let n = cfg.switch.pool_size + extra;
    let sizes = socket_pool_sizes(cfg, &sockets, n)?;
    if sizes.len() > ffi::MAX_SOCKET_POOLS {
        return Err(format!(
            "dpdk ports on {} NUMA sockets: hairpin makes mempools for at most {}",
            sizes.len(),
            ffi::MAX_SOCKET_POOLS
        ));
    }
    let room = data_room(cfg);
    let smallest = sizes.iter().map(|e| e.1).min().unwrap_or(n);
    let cache = cfg.dpdk.mempool_cache.min((smallest / 2) as u32);
    let where_ = sizes
        .iter()
        .map(|(s, k)| format!("{k} on NUMA socket {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    if sizes.len() > 1 {
        tracing::info!("mbuf mempools: {where_}");
    }
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let sz: Vec<(i32, u32)> = sizes.iter().map(|&(s, k)| (s, k as u32)).collect();
    let mp = MbufPool::create_per_socket(
        &format!(
            "hairpin{}_s{}",
            SEQ.fetch_add(1, Ordering::Relaxed),
            sizes[0].0
        ),
        &sz,
        cache,
        room as u16,
    )
    .map_err(|e| {
        format!(
            "switch.pool_size: cannot create the mbuf pool ({where_}; {room} bytes each{}): {e}",
            if ffi::has_hugepages() {
                ""
            } else {
                ", no hugepages: EAL memory is what -m/--socket-mem gave it"
            }
        ) + if ffi::has_hugepages() && e.call.contains("IOVA-contiguous") && e.errno == libc::ENOMEM
        {
            // The pool is one IOVA-contiguous zone (docs/architecture.md): in
            // IOVA-as-PA mode that needs physically contiguous 2 MiB pages.
            "; the pool needs IOVA-contiguous memory: run the EAL with --iova-mode=va \
             (vfio-pci with an IOMMU; in [dpdk] eal_args or after --), or reserve 1 GiB hugepages"
        } else {
            ""
        }
    })?;
    mp.into_pool()
        .map(Arc::new)
        .map_err(|e| format!("switch.pool_size: {e}"))
}

/// Shut the EAL down (`rte_eal_cleanup`) once every dpdk port and the pool are gone.
pub fn shutdown() -> Result<(), String> {
    ffi::eal_cleanup().map_err(|e| e.to_string())
}

/// A started ethdev used as a switch port.
pub struct DpdkPort {
    name: String,
    dev: String,
    id: PortId,
    nq: usize,
    taken: Vec<bool>,
    pool: Arc<Pool>,
    unusable: Arc<AtomicU64>,
    rss_hf: u64,
    driver: String,
    socket: i32,
    open: bool,
}

impl DpdkPort {
    /// Configure and start `dev` as port `index` of `cfg`: one RX and TX queue
    /// per worker over `pool`'s mbufs, descriptors, MTU, RSS, promiscuous mode,
    /// then wait for the link (`dpdk.link_wait_ms`). On error the port is
    /// closed again.
    pub fn open(index: usize, dev: &str, cfg: &Config, pool: Arc<Pool>) -> Result<Self, String> {
        let at = |e: String| format!("port[{index}].backend: dpdk:{dev}: {e}");
        let mp = MbufPool::of(&pool).ok_or_else(|| {
            at("the buffer pool is not a DPDK mbuf pool (build it with runtime::make_pool)".into())
        })?;
        if !ffi::eal_up() {
            return Err(at("the DPDK EAL is not running".into()));
        }
        let id = ffi::ensure_device(dev).map_err(|e| at(e.to_string()))?;
        let info = ffi::port_info(id).map_err(|e| at(e.to_string()))?;
        let nq = cfg.switch.workers.len();
        let maxq = info.max_rx_queues.min(info.max_tx_queues) as usize;
        if nq > maxq {
            return Err(format!(
                "switch.workers: {nq} workers need {nq} queues on port[{index}] (dpdk:{dev}), the {} device has {maxq}",
                info.driver
            ));
        }
        let d = &cfg.dpdk;
        for (k, want, max) in [
            ("rx_desc", d.rx_desc, info.rx_desc_max),
            ("tx_desc", d.tx_desc, info.tx_desc_max),
        ] {
            if max > 0 && want > max {
                return Err(format!(
                    "dpdk.{k}: {want} descriptors, port[{index}] (dpdk:{dev}, {}) takes at most {max}",
                    info.driver
                ));
            }
        }
        // switch.mtu counts the Ethernet header; the ethdev MTU is L3, and the
        // device adds header + CRC (18 bytes) to check it against its largest frame.
        let want = (cfg.switch.mtu - 14) as u32;
        let dev_max = (info.max_mtu as u32).min(info.max_rx_pktlen.saturating_sub(18).max(64));
        if want < info.min_mtu as u32 {
            return Err(format!(
                "switch.mtu: {} bytes (L3 MTU {want}) is below the minimum {} of port[{index}] (dpdk:{dev}, {})",
                cfg.switch.mtu, info.min_mtu, info.driver
            ));
        }
        let mtu = if info.max_mtu > 0 && want > dev_max {
            tracing::warn!(
                port = index,
                "port[{index}] (dpdk:{dev}, {}) takes an MTU up to {dev_max}; switch.mtu {} asks {want}: using {dev_max}",
                info.driver, cfg.switch.mtu
            );
            dev_max as u16
        } else {
            want as u16
        };
        let setup = PortSetup {
            queues: nq as u16,
            rx_desc: d.rx_desc,
            tx_desc: d.tx_desc,
            mtu,
            rss: d.rss,
            promiscuous: d.promiscuous,
        };
        let fail = |e: String| {
            let _ = ffi::port_close(id);
            at(e)
        };
        let socket = port_socket(cfg, info.socket);
        let rss_hf = ffi::port_setup(id, &setup, mp, socket).map_err(|e| fail(e.to_string()))?;
        ffi::port_start(id).map_err(|e| fail(e.to_string()))?;
        if d.link_wait_ms > 0 {
            let t0 = Instant::now();
            loop {
                match ffi::link(id) {
                    Ok(Some(_)) => break,
                    Ok(None) => {}
                    Err(e) => return Err(fail(e.to_string())),
                }
                if t0.elapsed() >= Duration::from_millis(d.link_wait_ms) {
                    return Err(fail(format!(
                        "link did not come up within {} ms (dpdk.link_wait_ms): check the cable, the peer and the interface state",
                        d.link_wait_ms
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let name = cfg.port[index].name.clone();
        Ok(DpdkPort {
            name,
            dev: dev.to_string(),
            id,
            nq,
            taken: vec![false; nq],
            pool,
            unusable: Arc::new(AtomicU64::new(0)),
            rss_hf,
            driver: info.driver,
            socket,
            open: true,
        })
    }

    /// The ethdev id.
    pub fn port_id(&self) -> PortId {
        self.id
    }

    /// `rte_eth_stats` of the device.
    pub fn eth_stats(&self) -> Result<ffi::EthStats, String> {
        ffi::stats(self.id).map_err(|e| e.to_string())
    }
}

impl Port for DpdkPort {
    fn name(&self) -> &str {
        &self.name
    }
    fn queues(&self) -> usize {
        self.nq
    }
    fn take_queue(&mut self, q: usize) -> Option<Box<dyn PortQueue>> {
        if q >= self.nq || self.taken[q] || !self.open {
            return None;
        }
        self.taken[q] = true;
        let eq = EthQueue::new(self.id, QueueId(q as u16), self.pool.clone())?;
        Some(Box::new(DpdkQueue {
            q: eq,
            port: self.id,
            registered: false,
            seen_unusable: 0,
            unusable: self.unusable.clone(),
        }))
    }
    fn backend_stats(&self) -> Option<serde_json::Value> {
        let mut v = serde_json::json!({
            "device": self.dev,
            "driver": self.driver,
            "port_id": self.id.0,
            "rss_hf": format!("{:#x}", self.rss_hf),
            "numa_socket": self.socket,
            "rx_unusable_dropped": self.unusable.load(Ordering::Relaxed),
        });
        match ffi::stats(self.id) {
            Ok(s) => v["eth"] = serde_json::to_value(s).unwrap_or_default(),
            Err(e) => v["eth_error"] = serde_json::Value::String(e.to_string()),
        }
        Some(v)
    }
    fn stop(&mut self) {
        if self.open {
            self.open = false;
            if let Err(e) = ffi::port_close(self.id) {
                tracing::warn!(port = %self.name, "port {} (dpdk:{}): close: {e}", self.name, self.dev);
            }
        }
    }
}

impl Drop for DpdkPort {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One worker's queue pair on a [`DpdkPort`].
struct DpdkQueue {
    q: EthQueue,
    port: PortId,
    registered: bool,
    seen_unusable: u64,
    unusable: Arc<AtomicU64>,
}

impl PortQueue for DpdkQueue {
    #[inline]
    fn rx_burst(&mut self, out: &mut Burst) -> usize {
        if !self.registered {
            // First call on the worker thread: give it an lcore id for mempool caches.
            ffi::register_thread();
            self.registered = true;
        }
        let n = self.q.rx_into(out);
        let u = self.q.unusable();
        if u != self.seen_unusable {
            self.unusable
                .fetch_add(u - self.seen_unusable, Ordering::Relaxed);
            self.seen_unusable = u;
        }
        n
    }
    #[inline]
    fn tx_burst(&mut self, frames: &mut Burst) -> usize {
        self.q.tx_from(frames)
    }
    fn link_up(&self) -> bool {
        matches!(ffi::link(self.port), Ok(Some(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(workers: &str) -> Config {
        Config::parse(&format!(
            "[switch]\nrole = \"bridge\"\nworkers = [{workers}]\nburst = 32\npool_size = 16384\n\
             [dpdk]\nrx_desc = 512\ntx_desc = 256\nmempool_cache = 128\n\
             [[port]]\nname = \"a\"\nbackend = \"dpdk:net_null0\"\n\
             [[port]]\nname = \"b\"\nbackend = \"dpdk:net_null1\"\n\
             [[port]]\nname = \"c\"\nbackend = \"dpdk:net_null2\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn one_socket_is_the_old_single_pool() {
        let c = cfg("0, 1");
        let need = mbufs_needed(&c);
        // 3 ports × 2 queues × 768 descriptors, 3 caches of 192, 2 × 4 bursts, 2 × 2 batches.
        assert_eq!(
            need,
            3 * 2 * 768 + 3 * 192 + 2 * 4 * 32 + 2 * crate::buf::CACHE_BATCH * 2
        );
        assert_eq!(
            socket_pool_sizes(&c, &[0, 0, 0], 20000).unwrap(),
            vec![(0, 20000)]
        );
        let e = socket_pool_sizes(&c, &[0, 0, 0], need - 1).unwrap_err();
        assert!(
            e.starts_with(&format!("switch.pool_size: {} mbufs cannot fill", need - 1)),
            "{e}"
        );
        assert!(
            !e.contains("socket 0:"),
            "no per-socket split for one socket: {e}"
        );
        assert_eq!(
            socket_pool_sizes(&c, &[0, 0, 0], need).unwrap(),
            vec![(0, need)]
        );
    }

    #[test]
    fn sockets_get_their_ports_need_and_a_share_of_the_rest() {
        let c = cfg("0");
        // Ports a and c on socket 1, b on socket 0; sockets in order of first appearance.
        let need1 = mbufs_needed_for(&c, 2, 3);
        let need0 = mbufs_needed_for(&c, 1, 3);
        assert_eq!(
            need1 - need0,
            768,
            "one more port: one more queue's descriptors"
        );
        let total = need0 + need1 + 3001;
        let s = socket_pool_sizes(&c, &[1, 0, 1], total).unwrap();
        assert_eq!(s, vec![(1, need1 + 2000 + 1), (0, need0 + 1000)]);
        assert_eq!(
            s.iter().map(|x| x.1).sum::<usize>(),
            total,
            "all of pool_size is used"
        );
        // Each socket pays its own caches and bursts: more than one socket's worth.
        assert!(need0 + need1 > mbufs_needed(&c));
        let e = socket_pool_sizes(&c, &[1, 0, 1], need0 + need1 - 1).unwrap_err();
        assert!(
            e.contains(&format!(
                "at least {} are needed (socket 1: 2 ports, {need1}; socket 0: 1 ports, {need0})",
                need0 + need1
            )),
            "{e}"
        );
    }

    #[test]
    fn ports_without_a_socket_go_to_the_workers_node() {
        let c = cfg("0");
        assert_eq!(port_socket(&c, 3), 3, "the device's own socket");
        let node0 = cpu_node(0).unwrap_or(0);
        assert_eq!(
            port_socket(&c, -1),
            node0,
            "SOCKET_ID_ANY: worker core 0's node"
        );
        if std::path::Path::new("/sys/devices/system/cpu/cpu0/node0").exists() {
            assert_eq!(cpu_node(0), Some(0));
        }
        assert_eq!(cpu_node(1 << 20), None, "no such CPU");
    }
}
