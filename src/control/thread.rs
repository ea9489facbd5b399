//! The control thread: never a worker. It drains the per-port punt queues,
//! runs the [`ControlPlane`], sends its frames out through the data path,
//! and publishes new snapshots.
//!
//! Injection path: worker 0's queue on every port is wrapped in an
//! [`InjectQueue`] with a bounded control TX ring in front. The control thread
//! pushes finished frames into the ring (a full ring: counted, the frame is
//! freed); the worker moves them to the port between bursts (in `rx_burst`
//! and `flush`), so the control thread never touches a port queue and the
//! worker never waits for it. The wrapper also publishes the port's link
//! state for the control thread.

use super::apply::Applier;
use super::plane::{ControlPlane, Effects};
use super::store::PolicyStore;
use super::Nanos;
use crate::buf::{Burst, Pool};
use crate::config::Config;
use crate::pipeline::Switch;
use crate::port::ring::{channel, Consumer, Producer};
use crate::port::PortQueue;
use crate::types::PortId;
use crate::util::Clock;
use crate::worker::Task;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Frames taken from each punt queue per step (the rest wait for the next step).
pub const PUNT_BATCH: usize = 64;

/// A port queue with a control TX ring in front (see the module docs).
pub struct InjectQueue {
    inner: Box<dyn PortQueue>,
    ctl: Consumer,
    held: Burst,
    link: Arc<AtomicBool>,
    pool: Arc<Pool>,
}

impl InjectQueue {
    /// Wrap `inner`; control frames come from `ctl`, link state goes to `link`.
    pub fn new(
        inner: Box<dyn PortQueue>,
        ctl: Consumer,
        link: Arc<AtomicBool>,
        pool: Arc<Pool>,
    ) -> InjectQueue {
        InjectQueue {
            inner,
            ctl,
            held: Burst::new(16),
            link,
            pool,
        }
    }

    #[inline]
    fn drain(&mut self) {
        if self.held.is_empty() {
            if self.ctl.ring().is_empty() {
                return;
            }
            self.ctl.dequeue(&mut self.held);
        }
        self.inner.tx_burst(&mut self.held);
    }
}

impl PortQueue for InjectQueue {
    #[inline]
    fn rx_burst(&mut self, out: &mut Burst) -> usize {
        self.drain();
        let up = self.inner.link_up();
        if self.link.load(Ordering::Relaxed) != up {
            self.link.store(up, Ordering::Relaxed);
        }
        self.inner.rx_burst(out)
    }
    #[inline]
    fn tx_burst(&mut self, frames: &mut Burst) -> usize {
        self.inner.tx_burst(frames)
    }
    fn flush(&mut self) {
        self.drain();
        self.inner.flush();
    }
    fn link_up(&self) -> bool {
        self.inner.link_up()
    }
}

impl Drop for InjectQueue {
    fn drop(&mut self) {
        for b in self.held.drain() {
            self.pool.free(b);
        }
        while let Some(b) = self.ctl.pop() {
            self.pool.free(b);
        }
    }
}

/// The control thread's ends of the queues [`attach`] made.
pub struct Wiring {
    /// Punt queues: (ingress port, consumer), every worker's.
    pub punts: Vec<(PortId, Consumer)>,
    /// Control TX ring per port (into worker 0's queue).
    pub tx: Vec<Producer>,
    /// Link state per port, published by worker 0.
    pub link: Vec<Arc<AtomicBool>>,
}

/// Give every task per-port punt queues of `depth` frames and wrap the first
/// task's port queues with control TX rings of `depth` frames.
pub fn attach(tasks: &mut [&mut Task], pool: &Arc<Pool>, depth: usize) -> Wiring {
    let mut w = Wiring {
        punts: Vec::new(),
        tx: Vec::new(),
        link: Vec::new(),
    };
    for (q, t) in tasks.iter_mut().enumerate() {
        let n = t.queues.len();
        let mut prod = Vec::with_capacity(n);
        for p in 0..n {
            let (tx, rx) = channel(depth);
            prod.push(tx);
            w.punts.push((PortId(p as u16), rx));
        }
        t.pipe.set_port_punts(prod);
        if q == 0 {
            let qs = std::mem::take(&mut t.queues);
            for inner in qs {
                let (tx, rx) = channel(depth);
                let link = Arc::new(AtomicBool::new(inner.link_up()));
                w.tx.push(tx);
                w.link.push(link.clone());
                t.queues
                    .push(Box::new(InjectQueue::new(inner, rx, link, pool.clone())));
            }
        }
    }
    w
}

/// Hands a reloaded config to a running control thread (see
/// [`ControlThread::rebase_handle`]).
#[derive(Clone, Default)]
pub struct Rebase(Arc<std::sync::Mutex<Option<Config>>>);

impl Rebase {
    /// The control thread re-applies its state on top of `cfg` (and takes its
    /// VSI types) at its next step.
    pub fn rebase(&self, cfg: Config) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(cfg);
    }
    fn take(&self) -> Option<Config> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Counters of the control thread itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ThreadCounters {
    /// Control frames dropped: control TX ring full.
    pub tx_full: u64,
    /// Control frames dropped: no buffer in the pool (or too long for one).
    pub tx_no_buf: u64,
    /// Control frames handed to the data path.
    pub tx_frames: u64,
    /// Snapshots that could not be built (previous one kept).
    pub apply_errors: u64,
}

/// The control thread's state: the plane, its queues and the applier.
pub struct ControlThread {
    /// The control plane.
    pub plane: ControlPlane,
    wiring: Wiring,
    pool: Arc<Pool>,
    /// Publishes snapshots.
    pub applier: Applier,
    links: Vec<bool>,
    /// Counters.
    pub ctr: ThreadCounters,
    /// The last error from building a snapshot.
    pub last_error: Option<String>,
    pub(super) vsis: Vec<(crate::config::evb::VsiCfg, [u8; 16])>,
    pub(super) retry: Vec<Nanos>,
    rebase: Rebase,
    /// Print the data path's state ([`Applier::state`]) on stderr, one
    /// `hairpin: qbg: {json}` line per published snapshot (`hairpin run`).
    pub log_state: bool,
    /// The edge VMs of the last published snapshot (station role).
    last_edge: Vec<super::apply::EdgeVm>,
    /// `vm.*` commands from the control socket (station role).
    pub(super) vm_rx: Option<std::sync::mpsc::Receiver<super::vm::VmRequest>>,
    /// `vm.*` requests waiting for the bridge.
    pub(super) pending: Vec<super::vm::Pending>,
    /// The workers' cores: [`ControlThread::run`] pins itself to a core
    /// without a worker (as the telemetry threads), so that a flood of
    /// control frames, which keeps this thread busy, never takes a
    /// worker's core. Empty: left as it is.
    pub worker_cores: Vec<usize>,
}

impl ControlThread {
    /// For switch `sw` built from `cfg`, with the queues of [`attach`].
    pub fn new(
        cfg: &Config,
        sw: &Switch,
        wiring: Wiring,
        store: Box<dyn PolicyStore>,
    ) -> ControlThread {
        let links = wiring
            .link
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .collect();
        ControlThread {
            plane: ControlPlane::new(cfg, store),
            wiring,
            pool: sw.pool.clone(),
            applier: Applier::new(cfg.clone(), sw.cell.clone(), sw.fdb.clone()),
            links,
            ctr: ThreadCounters::default(),
            last_error: None,
            vsis: cfg
                .vsi
                .iter()
                .map(|v| {
                    (
                        v.clone(),
                        crate::config::parse_uuid(&v.uuid).expect("validated"),
                    )
                })
                .collect(),
            retry: vec![0; cfg.vsi.len()],
            rebase: Rebase::default(),
            log_state: false,
            last_edge: Vec::new(),
            vm_rx: None,
            pending: Vec::new(),
            worker_cores: Vec::new(),
        }
    }

    /// Take `vm.*` commands from `rx` (the other end of [`super::vm::channel`]).
    pub fn set_vm_channel(&mut self, rx: std::sync::mpsc::Receiver<super::vm::VmRequest>) {
        self.vm_rx = Some(rx);
    }

    /// A handle to give this thread a reloaded config: the snapshot it
    /// publishes is then the new config plus its overlay, and VSI types come
    /// from the new config. (Ports, `[evb]` timers and `[[vsi]]` stay as at
    /// start; `Instance::reload` refuses port changes.)
    pub fn rebase_handle(&self) -> Rebase {
        self.rebase.clone()
    }

    fn take_rebase(&mut self) -> Effects {
        let Some(cfg) = self.rebase.take() else {
            return Effects::default();
        };
        match super::store::StaticStore::from_config(&cfg) {
            Ok(s) => self.plane.set_store(Box::new(s)),
            Err(e) => self.last_error = Some(e),
        }
        self.applier.set_base(cfg);
        Effects {
            rr_changed: true,
            vsis_changed: true,
        }
    }

    /// Station role: (re)announce each `[[vsi]]` the station does not hold
    /// (once the bridge's EVB TLV is known, and one keep-alive period after
    /// it gave up).
    fn announce(&mut self, now: Nanos, out: &mut Vec<(PortId, Vec<u8>)>) {
        use crate::wire::vdp::{AssocRepr, FilterEntry, FilterFormat, Mode, Status, VsiId};
        let Some(sp) = self.plane.station_port() else {
            return;
        };
        // VDP runs over the EVB exchange: nothing before the bridge's EVB
        // TLV was heard (its timers are not known, and a bridge such as
        // lldpad has no ECP yet, so the request would be lost and asked
        // again only a keep-alive period later).
        if self.plane.evb(sp).and_then(|e| e.remote()).is_none() {
            return;
        }
        let t = self.plane.evb(sp).map(|e| e.timers()).unwrap_or_default();
        for (i, (v, uuid)) in self.vsis.iter().enumerate() {
            let id = VsiId::uuid(*uuid);
            let held = self.plane.station(sp).is_some_and(|s| s.get(&id).is_some());
            if held || now < self.retry[i] {
                continue;
            }
            self.retry[i] = now + t.keepalive();
            let req = AssocRepr {
                mode: Mode::Assoc,
                status: Status(0),
                type_id: v.type_id,
                version: v.type_version,
                vsiid: id,
                filter_format: FilterFormat::MacVid,
                filters: vec![FilterEntry::mac_vid(v.mac, v.vlan)],
            };
            // Cannot fail: Associate may follow anything.
            let _ = self.plane.station_request(now, sp, [0; 16], req, out);
        }
    }

    /// Edge VMs the bridge associated, with their `[[vsi]]` names and ports.
    fn edge_vms(&self) -> Vec<super::apply::EdgeVm> {
        let base = self.applier.base();
        self.plane
            .station_associated()
            .into_iter()
            .filter_map(|(id, filters)| {
                let (v, uuid) = self.vsis.iter().find(|(_, u)| *u == id.bytes)?;
                Some(super::apply::EdgeVm {
                    name: v.name.clone(),
                    mac: v.mac,
                    port: PortId(base.port_index(&v.port)? as u16),
                    vid: filters.first()?.vid,
                    uuid: *uuid,
                })
            })
            .collect()
    }

    fn send(&mut self, frames: Vec<(PortId, Vec<u8>)>) {
        for (p, f) in frames {
            let Some(tx) = self.wiring.tx.get_mut(usize::from(p.0)) else {
                continue;
            };
            let Some(mut b) = self.pool.alloc() else {
                self.ctr.tx_no_buf += 1;
                continue;
            };
            if !self.pool.fill(&mut b, &f) {
                self.pool.free(b);
                self.ctr.tx_no_buf += 1;
                continue;
            }
            match tx.push(b) {
                Ok(()) => self.ctr.tx_frames += 1,
                Err(b) => {
                    self.pool.free(b);
                    self.ctr.tx_full += 1;
                }
            }
        }
    }

    fn publish(&mut self, fx: Effects) {
        if !fx.any() {
            return;
        }
        let (rr, inst, edge) = (self.plane.rr(), self.plane.installed(), self.edge_vms());
        match self.applier.apply(&rr, &inst, &edge) {
            Ok(_) => {
                self.last_edge = edge;
                if self.log_state {
                    tracing::info!("qbg: {}", self.applier.state());
                }
            }
            Err(e) => {
                self.ctr.apply_errors += 1;
                self.last_error = Some(e);
            }
        }
    }

    /// One pass at `now`: link changes, punted frames, timers, frames out,
    /// snapshot if needed. Returns the number of frames handled.
    pub fn step(&mut self, now: Nanos) -> usize {
        let mut fx = self.take_rebase();
        let mut out = Vec::new();
        for i in 0..self.wiring.link.len() {
            let up = self.wiring.link[i].load(Ordering::Relaxed);
            if up != self.links[i] {
                self.links[i] = up;
                fx = merge(fx, self.plane.link(now, PortId(i as u16), up));
            }
        }
        let mut n = 0;
        for k in 0..self.wiring.punts.len() {
            for _ in 0..PUNT_BATCH {
                let (port, c) = &mut self.wiring.punts[k];
                let port = *port;
                let Some(b) = c.pop() else { break };
                n += 1;
                let f = merge(fx, self.plane.rx(now, port, self.pool.data(&b), &mut out));
                fx = f;
                self.pool.free(b);
            }
        }
        fx = merge(fx, self.plane.tick(now, &mut out));
        let cmds = self.vm_commands(now, &mut out);
        self.announce(now, &mut out);
        // Station events: a new snapshot only when the edge VMs changed
        // (not for each keep-alive the bridge acknowledges).
        let ev = self.plane.take_events();
        if (cmds || !ev.is_empty()) && self.edge_vms() != self.last_edge {
            fx.vsis_changed = true;
        }
        self.send(out);
        self.publish(fx);
        // After the snapshot: a `vm.*` answer finds the edge state in force.
        if self.answer_pending(&ev) {
            self.publish(Effects {
                rr_changed: false,
                vsis_changed: true,
            });
        }
        n
    }

    /// Step until `stop`, sleeping up to 1 ms when idle (less when a timer is due).
    pub fn run(mut self, clock: &Clock, stop: &AtomicBool) -> ControlThread {
        if !self.worker_cores.is_empty()
            && crate::telemetry::pin_off_workers(&self.worker_cores).is_none()
        {
            tracing::warn!(
                "802.1Qbg control thread: every core runs a worker; its thread is not pinned"
            );
        }
        // Start from a snapshot that reflects the (still unnegotiated) state.
        self.publish(Effects {
            rr_changed: true,
            vsis_changed: true,
        });
        while !stop.load(Ordering::Relaxed) {
            let now = clock.now_ns();
            if self.step(now) == 0 {
                let wait = self.plane.deadline().map_or(1_000_000, |d| {
                    d.saturating_sub(now).clamp(10_000, 1_000_000)
                });
                std::thread::sleep(Duration::from_nanos(wait));
            }
        }
        self.drain_punts();
        self
    }

    /// Free whatever is still queued for the control plane (after the workers stopped).
    pub fn drain_punts(&mut self) {
        for (_, c) in self.wiring.punts.iter_mut() {
            while let Some(b) = c.pop() {
                self.pool.free(b);
            }
        }
    }

    /// Counters and state as JSON (for `hairpin run`'s final report).
    pub fn summary(&self) -> serde_json::Value {
        let p = &self.plane;
        let ecp: Vec<_> = (0..p.ports())
            .filter_map(|i| p.ecp(PortId(i as u16)).map(|e| e.ctr))
            .collect();
        serde_json::json!({
            "store": p.store(),
            "rr": p.rr(),
            "vsis": p.installed().len(),
            "snapshots": self.applier.applied,
            "data_path": self.applier.state(),
            "plane": p.ctr,
            "thread": self.ctr,
            "vdp": p.bridge().ctr,
            "ecp": ecp,
        })
    }

    /// Start [`ControlThread::run`] on its own thread.
    pub fn spawn(
        self,
        clock: Clock,
        stop: Arc<AtomicBool>,
    ) -> Result<std::thread::JoinHandle<ControlThread>, String> {
        std::thread::Builder::new()
            .name("hp-control".into())
            .spawn(move || self.run(&clock, &stop))
            .map_err(|e| format!("cannot start the control thread: {e}"))
    }
}

/// For `hairpin run`: when a port of `inst` runs EVB, give the tasks of every
/// worker (`wl`, one task each) their control queues and build the control
/// thread with the config's policy store. None when no port runs EVB.
pub fn prepare(
    inst: &crate::runtime::Instance,
    wl: &mut [(crate::worker::WorkerCfg, Vec<Task>)],
    pool: &Arc<Pool>,
) -> Result<Option<ControlThread>, String> {
    use crate::config::evb::EvbPortCfg;
    if inst.cfg.port.iter().all(|p| p.evb == EvbPortCfg::Off) {
        return Ok(None);
    }
    let store = super::store::StaticStore::from_config(&inst.cfg)?;
    let mut tasks: Vec<&mut Task> = wl.iter_mut().flat_map(|(_, t)| t.iter_mut()).collect();
    let wiring = attach(&mut tasks, pool, inst.cfg.switch.punt_queue);
    let mut c = ControlThread::new(&inst.cfg, &inst.switch, wiring, Box::new(store));
    c.worker_cores = inst.cfg.switch.workers.clone();
    Ok(Some(c))
}

fn merge(mut a: Effects, b: Effects) -> Effects {
    a.rr_changed |= b.rr_changed;
    a.vsis_changed |= b.vsis_changed;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port queue whose link can be pulled; counts what it transmits.
    struct Fake {
        up: Arc<AtomicBool>,
        sent: Arc<std::sync::atomic::AtomicUsize>,
        room: usize,
        pool: Arc<Pool>,
    }

    impl PortQueue for Fake {
        fn rx_burst(&mut self, _out: &mut Burst) -> usize {
            0
        }
        fn tx_burst(&mut self, frames: &mut Burst) -> usize {
            let n = frames.len().min(self.room);
            self.room -= n;
            for b in frames.consume_front(n) {
                self.pool.free(b);
            }
            self.sent.fetch_add(n, Ordering::Relaxed);
            n
        }
        fn link_up(&self) -> bool {
            self.up.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn inject_queue_sends_between_bursts_and_publishes_link() {
        let pool = Arc::new(Pool::new(64, 256).unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let link = Arc::new(AtomicBool::new(true));
        let (mut tx, rx) = channel(8);
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let fake = Fake {
            up: up.clone(),
            sent: sent.clone(),
            room: 3,
            pool: pool.clone(),
        };
        let mut q = InjectQueue::new(Box::new(fake), rx, link.clone(), pool.clone());
        for _ in 0..5 {
            let mut b = pool.alloc().unwrap();
            assert!(pool.fill(&mut b, &[0u8; 60]));
            tx.push(b).unwrap();
        }
        let mut burst = Burst::new(4);
        q.rx_burst(&mut burst);
        // The port took three; two wait in the wrapper, none lost.
        assert_eq!(sent.load(Ordering::Relaxed), 3);
        assert_eq!(pool.available(), 64 - 2);
        up.store(false, Ordering::Relaxed);
        q.flush();
        q.rx_burst(&mut burst);
        assert!(!link.load(Ordering::Relaxed), "link state published");
        assert!(!q.link_up());
        drop(q);
        // Dropping the wrapper gives back what it still held.
        assert_eq!(pool.available(), 64);
    }
}
