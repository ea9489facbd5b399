//! The `dpdk` backend (cargo feature `dpdk`): `backend = "dpdk:DEVICE"`.
//!
//! `DEVICE` is a PCI address bound to vfio-pci (`dpdk:0000:03:00.0`), a vdev
//! with its arguments (`dpdk:net_af_packet0,iface=veth0`, `dpdk:net_null0`),
//! or the name of an ethdev the process made itself (a `RingDev` in tests
//! and `hairpin bench`). All `unsafe` is in `crate::dpdk`; this file is safe.
//!
//! Zero copy: [`make_pool`] starts the EAL and builds hairpin's [`Pool`] over
//! one DPDK mempool whose mbufs sit at a fixed stride, so slot `i` *is* mbuf
//! `i`'s data room. RX turns mbufs into `PktBuf`s (index, data offset,
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

/// Mbufs a config needs at least: every descriptor of every queue filled,
/// plus per-core mempool caches and one burst in flight per worker and port.
pub fn mbufs_needed(cfg: &Config) -> usize {
    let ports = cfg
        .port
        .iter()
        .filter(|p| device(&p.backend).is_some())
        .count();
    let nq = cfg.switch.workers.len();
    let d = &cfg.dpdk;
    let cache = (d.mempool_cache as usize * 3).div_ceil(2);
    ports * nq * (d.rx_desc as usize + d.tx_desc as usize)
        + (nq + 1) * cache
        + nq * (ports + 1) * cfg.switch.burst
        + nq * crate::buf::CACHE_BATCH * 2
}

/// Bytes of mbuf data room for the config's MTU (headroom included).
fn data_room(cfg: &Config) -> usize {
    HEADROOM + (cfg.switch.mtu + 8).max(2048)
}

/// Start the EAL (`[dpdk] eal_args`), find or create every `dpdk:` device
/// and build the switch's pool over one mbuf mempool of `switch.pool_size +
/// extra` mbufs on the NUMA socket of the first dpdk port.
pub fn make_pool(cfg: &Config, extra: usize) -> Result<Arc<Pool>, String> {
    ffi::eal_init(&cfg.dpdk.eal_args)
        .map_err(|e| format!("dpdk.eal_args: the DPDK EAL did not start: {e}"))?;
    let mut socket = None;
    for (i, p) in cfg.port.iter().enumerate() {
        if let Some(dev) = device(&p.backend) {
            let id = ffi::ensure_device(dev).map_err(|e| format!("port[{i}].backend: {e}"))?;
            let info = ffi::port_info(id).map_err(|e| format!("port[{i}].backend: {e}"))?;
            match socket {
                None => socket = Some(info.socket),
                Some(s) if s != info.socket && info.socket >= 0 && s >= 0 => tracing::warn!(
                    port = i,
                    "port[{i}] ({dev}) is on NUMA socket {}, the mbuf pool on socket {s}: its frames cross sockets",
                    info.socket
                ),
                Some(_) => {}
            }
        }
    }
    let socket = match socket {
        Some(s) if s >= 0 => s,
        _ => ffi::socket_id(),
    };
    let n = cfg.switch.pool_size + extra;
    let need = mbufs_needed(cfg);
    if n < need {
        return Err(format!(
            "switch.pool_size: {n} mbufs cannot fill the DPDK queues: at least {need} are needed \
             (dpdk ports × {} queues × ({} RX + {} TX descriptors) + per-core caches and bursts); \
             raise switch.pool_size or lower dpdk.rx_desc/tx_desc",
            cfg.switch.workers.len(),
            cfg.dpdk.rx_desc,
            cfg.dpdk.tx_desc
        ));
    }
    let room = data_room(cfg);
    let cache = cfg.dpdk.mempool_cache.min((n / 2) as u32);
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mp = MbufPool::create(
        &format!("hairpin{}_s{socket}", SEQ.fetch_add(1, Ordering::Relaxed)),
        n as u32,
        cache,
        room as u16,
        socket,
    )
    .map_err(|e| {
        format!(
            "switch.pool_size: cannot create the mbuf pool ({n} mbufs of {room} bytes on NUMA socket {socket}{}): {e}",
            if ffi::has_hugepages() { "" } else { ", no hugepages: EAL memory is what -m/--socket-mem gave it" }
        ) + if ffi::has_hugepages() && e.call.contains("IOVA-contiguous") && e.errno == libc::ENOMEM {
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
        let rss_hf = ffi::port_setup(id, &setup, mp).map_err(|e| fail(e.to_string()))?;
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
