//! Putting a switch together from a config: pool, model, FDB, ports, workers.

use crate::buf::{MemMode, Pool};
use crate::config::{Config, Hugepages};
use crate::pipeline::{Model, Pipeline, Switch};
use crate::port::ring::{channel, Consumer, RingPort};
use crate::port::Port;
use crate::stats::{CoreCounters, PortCounters, SharedCounters};
use crate::util::Clock;
use crate::worker::{self, Task, WorkerCfg};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Create the buffer pool a config asks for.
pub fn make_pool(cfg: &Config, extra: usize) -> Result<Arc<Pool>, String> {
    // dpdk ports: the pool is the DPDK mbuf mempool (zero copy; starts the EAL).
    #[cfg(feature = "dpdk")]
    if crate::port::dpdk::wanted(cfg) {
        return crate::port::dpdk::make_pool(cfg, extra);
    }
    let mode = match cfg.switch.hugepages {
        Hugepages::Auto => None,
        Hugepages::On => Some(MemMode::Hugepages),
        Hugepages::Off => Some(MemMode::Plain),
    };
    Pool::with_mode(cfg.switch.pool_size + extra, cfg.switch.mtu + 8, mode)
        .map(Arc::new)
        .map_err(|e| format!("switch.pool_size: {e}"))
}

/// After a run: stop every port's device (dpdk ports close and give back the
/// mbufs their descriptors hold), then, with the `dpdk` feature, shut the
/// EAL down once nothing uses it. Call after the workers joined and before
/// checking the pool level.
pub fn stop_ports(ports: &mut [Box<dyn Port>]) {
    for p in ports.iter_mut() {
        p.stop();
    }
}

/// Shut down process-wide backend state (the DPDK EAL) after the instance
/// and the pool were dropped. A no-op without dpdk ports.
pub fn shutdown_backends() -> Result<(), String> {
    #[cfg(feature = "dpdk")]
    crate::port::dpdk::shutdown()?;
    Ok(())
}

/// Open port `i` of `cfg` on its backend: ring ports get a fresh cable (the
/// far end is returned for a generator, a test or another switch), pcap
/// ports open their files, afpacket/afxdp/dpdk ports their device (a dpdk
/// port needs `pool` from [`make_pool`], which started the EAL). One queue
/// per worker of `cfg`.
pub fn open_port(
    cfg: &Config,
    i: usize,
    pool: &Arc<Pool>,
) -> Result<(Box<dyn Port>, Option<RingPort>), String> {
    let nq = cfg.switch.workers.len();
    let p = &cfg.port[i];
    match p.backend.as_str() {
        "ring" => {
            let (a, b) = RingPort::pair(&p.name, nq, cfg.switch.ring_depth);
            Ok((Box::new(a), Some(b)))
        }
        "pcap" => {
            let (pin, pout) = (
                p.pcap_in.as_deref().map(|f| cfg.resolve(f)),
                p.pcap_out.as_deref().map(|f| cfg.resolve(f)),
            );
            let port = crate::port::pcap::PcapPort::open(
                &p.name,
                pool.clone(),
                pin.as_deref(),
                pout.as_deref(),
            )
            .map_err(|e| format!("port[{i}].backend: {e}"))?;
            if nq != 1 {
                return Err(format!(
                    "port[{i}].backend: a pcap port has one queue; use one worker"
                ));
            }
            Ok((Box::new(port), None))
        }
        #[cfg(feature = "dpdk")]
        b if b.starts_with("dpdk:") => {
            let port = crate::port::dpdk::DpdkPort::open(i, &b[5..], cfg, pool.clone())?;
            Ok((Box::new(port), None))
        }
        #[cfg(target_os = "linux")]
        b if b.starts_with("afpacket:") => {
            let port = crate::port::afpacket::AfPacketPort::open_ring(
                &p.name,
                &b["afpacket:".len()..],
                nq,
                pool.clone(),
                p.rx_ring,
            )
            .map_err(|e| format!("port[{i}].backend (port {:?}): {e}", p.name))?;
            Ok((Box::new(port), None))
        }
        #[cfg(target_os = "linux")]
        b if b.starts_with("afxdp:") => {
            let port = crate::port::afxdp::AfXdpPort::open_ring(
                &p.name,
                &b["afxdp:".len()..],
                nq,
                pool.clone(),
                p.rx_ring.unwrap_or(crate::port::afxdp::DEFAULT_RX_RING),
                p.xdp_mode,
            )
            .map_err(|e| format!("port[{i}].backend (port {:?}): {e}", p.name))?;
            Ok((Box::new(port), None))
        }
        b => Err(format!(
            "port[{i}].backend: {b:?} is not available in this build"
        )),
    }
}

/// The settings that no reload changes (role, workers, burst, MTU, pool,
/// FDB, flow cache): an error naming the first that differs.
fn fixed_settings(old: &Config, new: &Config) -> Result<(), String> {
    let same = |what: &str, a: String, b: String| {
        if a != b {
            Err(format!(
                "switch.{what} changed ({a} → {b}): restart hairpin to apply"
            ))
        } else {
            Ok(())
        }
    };
    same(
        "role",
        old.switch.role.name().into(),
        new.switch.role.name().into(),
    )?;
    same(
        "workers",
        format!("{:?}", old.switch.workers),
        format!("{:?}", new.switch.workers),
    )?;
    same(
        "burst",
        old.switch.burst.to_string(),
        new.switch.burst.to_string(),
    )?;
    same(
        "mtu",
        old.switch.mtu.to_string(),
        new.switch.mtu.to_string(),
    )?;
    same(
        "pool_size",
        old.switch.pool_size.to_string(),
        new.switch.pool_size.to_string(),
    )?;
    same(
        "fdb",
        format!("{:?}", old.switch.fdb),
        format!("{:?}", new.switch.fdb),
    )?;
    same(
        "flow_cache",
        old.switch.flow_cache.to_string(),
        new.switch.flow_cache.to_string(),
    )?;
    Ok(())
}

/// A switch instance that is built but not yet running.
pub struct Instance {
    /// The config it came from.
    pub cfg: Config,
    /// Shared parts (model, FDB, pool).
    pub switch: Switch,
    /// The switch's ports, by port id.
    pub ports: Vec<Box<dyn Port>>,
    /// For ring ports: the far end of the cable (for a generator, a test or another switch).
    pub peers: Vec<Option<RingPort>>,
    /// Live captures (`capture.*` on the control socket); one ring per worker.
    pub capture: Arc<crate::capture::CaptureHub>,
}

impl Instance {
    /// Build from a validated config; ring ports get fresh cables, pcap ports open their files.
    pub fn new(cfg: Config, pool: Arc<Pool>) -> Result<Instance, String> {
        let mut ports: Vec<Box<dyn Port>> = Vec::new();
        let mut peers = Vec::new();
        for i in 0..cfg.port.len() {
            let (port, peer) = open_port(&cfg, i, &pool)?;
            ports.push(port);
            peers.push(peer);
        }
        Self::with_ports(cfg, pool, ports, peers)
    }

    /// Build with ports made by the caller (e.g. cables shared with another instance).
    pub fn with_ports(
        cfg: Config,
        pool: Arc<Pool>,
        ports: Vec<Box<dyn Port>>,
        peers: Vec<Option<RingPort>>,
    ) -> Result<Instance, String> {
        let model = Model::from_config(&cfg)?;
        let fdb = Arc::new(model.new_fdb(&cfg));
        let capture = crate::capture::CaptureHub::new(
            &cfg.switch.workers,
            cfg.telemetry.capture_queue,
            pool.max_frame() + 8,
        );
        Ok(Instance {
            capture,
            switch: Switch::new(model, fdb, pool),
            cfg,
            ports,
            peers,
        })
    }

    /// Apply a new config to the running switch: policies, VSIs, VLANs and
    /// port options take effect for the next burst of every worker (the whole
    /// snapshot at once). Changes that cannot be applied live — the role,
    /// the worker list, the burst size, the MTU or the pool — are refused
    /// with the reason, and the running config stays; so are ports added,
    /// removed, renamed or on another backend, which need the workers
    /// stopped ([`Instance::prepare_ports`]). Returns the new snapshot generation.
    pub fn reload(&mut self, new: Config) -> Result<u64, String> {
        let model = self.stage_reload(new)?;
        Ok(self.switch.cell.store(model))
    }

    /// Everything [`Instance::reload`] does except publishing the snapshot:
    /// the checks, the FDB changes and the new `cfg`; returns the snapshot
    /// to publish. With an 802.1Qbg control thread the caller hands the new
    /// config to it instead (`control::thread::Rebase`), and it publishes
    /// the snapshot with its negotiated RR and VDP VSIs on top — so there is
    /// no moment in which VDP-installed VLANs are missing.
    pub fn stage_reload(&mut self, new: Config) -> Result<Model, String> {
        let old = &self.cfg;
        let ports = |c: &Config| {
            c.port
                .iter()
                .map(|p| (p.name.clone(), p.backend.clone()))
                .collect::<Vec<_>>()
        };
        if ports(old) != ports(&new) {
            return Err("ports were added, removed, renamed or moved to another backend: restart hairpin to apply".into());
        }
        fixed_settings(old, &new)?;
        let model = Model::from_config(&new)?;
        // Static entries follow the VM list; ports whose VLANs changed forget what they learned.
        let fdb = &self.switch.fdb;
        let key = |v: &crate::config::VmCfg| (v.mac, v.vlan, v.port.clone());
        let new_vms: Vec<_> = new.vm.iter().map(key).collect();
        let old_vms: Vec<_> = old.vm.iter().map(key).collect();
        for (mac, vid, _) in old_vms.iter().filter(|k| !new_vms.contains(k)) {
            fdb.remove(*mac, crate::types::Vid(*vid));
        }
        for (i, p) in new.port.iter().enumerate() {
            if Config::port_vlans(p) != Config::port_vlans(&old.port[i])
                || p.mode != old.port[i].mode
            {
                fdb.flush_port(crate::types::PortId(i as u16));
            }
        }
        for (mac, vid, port) in new_vms.iter().filter(|k| !old_vms.contains(k)) {
            let pi = new.port_index(port).expect("validated");
            if !fdb.insert_static(
                *mac,
                crate::types::Vid(*vid),
                crate::types::PortId(pi as u16),
            ) {
                return Err(format!("FDB full: cannot install VM {mac} VLAN {vid}"));
            }
        }
        self.cfg = new;
        Ok(model)
    }

    /// First half of a reload that adds or removes ports (see
    /// [`Instance::apply_ports`]), done while the workers still run: checks
    /// the new config as [`Instance::stage_reload`] does — except that ports
    /// may be added, removed or reordered; a port kept by name keeps its
    /// backend — and opens the added ports. Any error (a port that cannot be
    /// opened, a fixed setting changed) refuses the change and leaves the
    /// instance as it was.
    pub fn prepare_ports(&self, new: Config) -> Result<PortChange, String> {
        fixed_settings(&self.cfg, &new)?;
        let mut slots = Vec::new();
        for (i, p) in new.port.iter().enumerate() {
            match self.cfg.port.iter().position(|o| o.name == p.name) {
                Some(o) if self.cfg.port[o].backend != p.backend => {
                    return Err(format!(
                        "port[{i}].backend: port {} moved from {:?} to {:?}: remove it in one reload and add it in the next, or restart hairpin",
                        p.name, self.cfg.port[o].backend, p.backend
                    ))
                }
                Some(o) => slots.push(Slot::Kept(o)),
                None => {
                    let (port, peer) = open_port(&new, i, &self.switch.pool)?;
                    slots.push(Slot::New(port, peer));
                }
            }
        }
        let model = Model::from_config(&new)?;
        Ok(PortChange {
            cfg: new,
            model,
            slots,
        })
    }

    /// Second half of a port change, with the workers stopped and joined
    /// (`tasks`: worker `q`'s task at index `q`, after [`worker::run`]
    /// drained, flushed and released it). Kept ports keep their objects,
    /// queues and counters (core counters and per-port counters carry over;
    /// ACL hits carry over by name; meters and egress queues start afresh);
    /// removed ports are stopped and closed, the frames waiting in their RX
    /// queues freed (they were never accepted). The FDB: every entry, learned
    /// or static, of a removed port or of a port whose id changed is flushed;
    /// learned entries of kept ports whose VLANs or mode changed too; then the
    /// VMs' static entries are installed at their (new) port ids. Returns
    /// the new tasks and punt consumers, worker by worker, to start again.
    /// The tasks punt to one queue per worker: an 802.1Qbg control thread's
    /// per-port punt queues are not rebuilt (`hairpin run` refuses port
    /// changes when it runs one).
    pub fn apply_ports(
        &mut self,
        ch: PortChange,
        tasks: Vec<Task>,
    ) -> Result<Vec<(Task, Consumer)>, String> {
        let old_cfg = std::mem::replace(&mut self.cfg, ch.cfg);
        let mut old_ports: Vec<Option<Box<dyn Port>>> = std::mem::take(&mut self.ports)
            .into_iter()
            .map(Some)
            .collect();
        let mut old_peers = std::mem::take(&mut self.peers);
        let kept: Vec<Option<usize>> = ch
            .slots
            .iter()
            .map(|s| match s {
                Slot::Kept(o) => Some(*o),
                Slot::New(..) => None,
            })
            .collect();
        for s in ch.slots {
            match s {
                Slot::Kept(o) => {
                    self.ports.push(old_ports[o].take().expect("kept once"));
                    self.peers.push(old_peers[o].take());
                }
                Slot::New(p, peer) => {
                    self.ports.push(p);
                    self.peers.push(peer);
                }
            }
        }
        let pool = self.switch.pool.clone();
        let mut rx = crate::buf::Burst::new(64);
        let mut free_rx = |q: &mut Box<dyn crate::port::PortQueue>| {
            while q.rx_burst(&mut rx) > 0 {
                for b in rx.drain() {
                    pool.free(b);
                }
            }
        };
        // FDB: entries of removed ports and of ports that change id go.
        let fdb = &self.switch.fdb;
        let new_id = |o: usize| kept.iter().position(|k| *k == Some(o));
        for o in 0..old_cfg.port.len() {
            if new_id(o) != Some(o) {
                fdb.flush_port_all(crate::types::PortId(o as u16));
            }
        }
        for (n, k) in kept.iter().enumerate() {
            if let Some(o) = *k {
                let (a, b) = (&old_cfg.port[o], &self.cfg.port[n]);
                if Config::port_vlans(a) != Config::port_vlans(b) || a.mode != b.mode {
                    fdb.flush_port(crate::types::PortId(n as u16));
                }
            }
        }
        let key = |v: &crate::config::VmCfg| (v.mac, v.vlan, v.port.clone());
        let new_vms: Vec<_> = self.cfg.vm.iter().map(key).collect();
        for (mac, vid, _) in old_cfg.vm.iter().map(key).filter(|k| !new_vms.contains(k)) {
            fdb.remove(mac, crate::types::Vid(vid));
        }
        let mut fdb_full = None;
        for (mac, vid, port) in &new_vms {
            let pi = self.cfg.port_index(port).expect("validated");
            if !fdb.insert_static(
                *mac,
                crate::types::Vid(*vid),
                crate::types::PortId(pi as u16),
            ) {
                fdb_full = Some(format!("FDB full: cannot install VM {mac} VLAN {vid}"));
            }
        }
        self.switch.cell.store(ch.model);
        self.switch.model = self.switch.cell.load();
        let mut out = Vec::new();
        for (q, mut old) in tasks.into_iter().enumerate() {
            let mut old_q: Vec<Option<Box<dyn crate::port::PortQueue>>> =
                old.queues.drain(..).map(Some).collect();
            let (ptx, punt) = channel(self.cfg.switch.punt_queue);
            let mut queues = Vec::new();
            for (n, k) in kept.iter().enumerate() {
                let qu = match *k {
                    Some(o) => old_q[o].take().expect("kept once"),
                    None => self.ports[n]
                        .take_queue(q)
                        .ok_or_else(|| format!("port {}: no queue {q}", self.ports[n].name()))?,
                };
                queues.push(qu);
            }
            let mut task = Task {
                pipe: Pipeline::new(&self.switch, Some(ptx)),
                queues,
                shared: Arc::new(SharedCounters::new(self.ports.len())),
            };
            for (n, k) in kept.iter().enumerate() {
                if let Some(o) = *k {
                    task.pipe.port_ctr[n] = old.pipe.port_ctr[o];
                }
            }
            for q in old_q.iter_mut().flatten() {
                free_rx(q);
            }
            old.pipe.release();
            task.pipe.ctr = old.pipe.ctr.clone();
            task.pipe.hits_before = old.pipe.rule_hits();
            task.shared.publish(&task.pipe.ctr, &task.pipe.port_ctr);
            out.push((task, punt));
        }
        // Removed ports: stop the devices; ring cables give their frames back.
        for p in old_ports.iter_mut().flatten() {
            p.stop();
        }
        for peer in old_peers.iter_mut().flatten() {
            for q in 0..self.cfg.switch.workers.len() {
                if let Some(mut rq) = peer.take(q) {
                    while let Some(b) = rq.rx_one() {
                        pool.free(b);
                    }
                }
            }
        }
        match fdb_full {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The task for worker `q`: its queue on every port, a pipeline, counter slots,
    /// and the consumer end of its punt queue.
    pub fn task(&mut self, q: usize) -> Result<(Task, Consumer), String> {
        let (ptx, prx) = channel(self.cfg.switch.punt_queue);
        let mut queues = Vec::new();
        for p in &mut self.ports {
            queues.push(
                p.take_queue(q)
                    .ok_or_else(|| format!("port {}: no queue {q}", p.name()))?,
            );
        }
        let mut pipe = Pipeline::new(&self.switch, Some(ptx));
        pipe.set_capture(self.capture.tap(q));
        let shared = Arc::new(SharedCounters::new(self.ports.len()));
        Ok((
            Task {
                pipe,
                queues,
                shared,
            },
            prx,
        ))
    }
}

/// A port change checked and opened by [`Instance::prepare_ports`], to apply
/// with [`Instance::apply_ports`] (dropping it closes the ports it opened).
pub struct PortChange {
    cfg: Config,
    model: Model,
    slots: Vec<Slot>,
}

impl PortChange {
    /// Names of the ports it adds.
    pub fn added(&self) -> Vec<String> {
        self.slots
            .iter()
            .zip(&self.cfg.port)
            .filter(|(s, _)| matches!(s, Slot::New(..)))
            .map(|(_, p)| p.name.clone())
            .collect()
    }
}

/// A port of the new config: kept (its old id) or opened for the change.
enum Slot {
    Kept(usize),
    New(Box<dyn Port>, Option<RingPort>),
}

/// Workers started by [`start`].
pub struct Running {
    handles: Vec<JoinHandle<Vec<Task>>>,
    /// Published counters of each task, worker by worker.
    pub shared: Vec<Vec<Arc<SharedCounters>>>,
}

/// Final counters after a stop.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// Sum over cores.
    pub core: CoreCounters,
    /// Per core.
    pub per_core: Vec<CoreCounters>,
    /// Per port, summed over cores.
    pub ports: Vec<PortCounters>,
}

/// Start one thread per entry of `workers` (each a list of tasks), pinned as configured.
pub fn start(
    workers: Vec<(WorkerCfg, Vec<Task>)>,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> Result<Running, String> {
    let mut handles = Vec::new();
    let mut shared = Vec::new();
    for (i, (wc, mut tasks)) in workers.into_iter().enumerate() {
        shared.push(tasks.iter().map(|t| t.shared.clone()).collect());
        let stop_w = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let h = std::thread::Builder::new()
            .name(format!("hp-worker{i}"))
            .spawn(move || {
                if let Some(c) = wc.core {
                    if let Err(e) = worker::pin(c) {
                        let _ = ready_tx.send(Err(e));
                        return tasks;
                    }
                }
                let _ = ready_tx.send(Ok(()));
                worker::run(&mut tasks, &wc, &clock, &stop_w);
                tasks
            })
            .map_err(|e| format!("cannot start worker {i}: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => handles.push(h),
            Ok(Err(e)) => {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                let _ = h.join();
                for h in handles {
                    let _ = h.join();
                }
                return Err(format!("switch.workers[{i}]: {e}"));
            }
            Err(_) => return Err(format!("worker {i} died at start")),
        }
    }
    Ok(Running { handles, shared })
}

impl Running {
    /// Wait for the workers (after `stop` was set); returns their tasks.
    pub fn join(self) -> Vec<Vec<Task>> {
        self.handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    }
}

/// Sum counters of tasks (one switch instance: the same task index on each worker).
pub fn totals<'a>(tasks: impl Iterator<Item = &'a Task>) -> Totals {
    let mut t = Totals::default();
    for task in tasks {
        t.core.add(&task.pipe.ctr);
        t.per_core.push(task.pipe.ctr.clone());
        if t.ports.len() < task.pipe.port_ctr.len() {
            t.ports
                .resize(task.pipe.port_ctr.len(), PortCounters::default());
        }
        for (a, b) in t.ports.iter_mut().zip(&task.pipe.port_ctr) {
            a.add(b);
        }
    }
    t
}
