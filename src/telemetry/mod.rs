//! Live telemetry of a running switch: the control socket (newline-delimited
//! JSON over a Unix socket, [`server`]) and the Prometheus text endpoint
//! ([`prom`]). See `docs/operations.md` for the protocol and metric names.
//!
//! Everything here runs on threads of its own, pinned off the worker cores
//! ([`pin_off_workers`]). It only reads what workers already publish — the
//! [`SharedCounters`] of each worker (every
//! [`PUBLISH_EVERY`](crate::worker::PUBLISH_EVERY) loops), their
//! [`PolicySlot`](crate::stats::policy::PolicySlot)s, the FDB (lock-free
//! [`Fdb::for_each_live`]) and the current snapshot ([`SnapshotCell`]) — so a
//! query never touches a worker. What only the thread that owns the
//! [`Instance`](crate::runtime::Instance) can do (device counters of the
//! ports, a reload) is asked of it with a [`HostJob`].

pub mod prom;
pub mod server;

use crate::fdb::Fdb;
use crate::pipeline::SnapshotCell;
use crate::stats::{CoreCounters, DropReason, PortCounters, SharedCounters};
use crate::types::Mac;
use crate::util::Clock;
use serde_json::{json, Map, Value};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default control socket path.
pub use crate::config::telemetry::DEFAULT_SOCKET;

/// Largest request line (bytes, without the newline).
pub const MAX_REQUEST: usize = 64 * 1024;
/// How long a query waits for the instance's thread ([`HostJob`]).
pub const HOST_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands of the control socket.
pub const COMMANDS: &[&str] = &[
    "ports",
    "cores",
    "drops",
    "fdb",
    "vsi",
    "acl",
    "meters",
    "queues",
    "reload",
    "vm.associate",
    "vm.deassociate",
    "vm.migrate",
    "capture.start",
    "capture.stop",
    "capture.status",
    "capture.list",
];

/// Work for the thread that owns the instance (it polls for jobs between its
/// other duties and answers on the enclosed channel).
pub enum HostJob {
    /// `Port::backend_stats` of every port, by port id.
    BackendStats(Sender<Vec<Option<Value>>>),
    /// Reload the config file, as SIGHUP does: the new snapshot generation, or why not.
    Reload(Sender<Result<u64, String>>),
}

/// One worker as telemetry sees it.
pub struct WorkerView {
    /// The core it is pinned to.
    pub core: Option<usize>,
    /// Its published counters.
    pub shared: Arc<SharedCounters>,
}

/// What the telemetry threads read.
pub struct View {
    /// Port names by port id.
    pub ports: Vec<String>,
    /// Every worker.
    pub workers: Vec<WorkerView>,
    /// The FDB.
    pub fdb: Arc<Fdb>,
    /// The current policy snapshot.
    pub cell: Arc<SnapshotCell>,
    /// The switch clock (FDB ages).
    pub clock: Clock,
    /// Jobs for the instance's thread.
    pub host: Mutex<Sender<HostJob>>,
    /// When the switch started.
    pub started: Instant,
    /// `vm.*` commands go to the 802.1Qbg control thread here (None: no
    /// control thread in this instance).
    pub vm: Option<Mutex<std::sync::mpsc::SyncSender<crate::control::vm::VmRequest>>>,
    /// Live captures (`capture.*` commands; None: this instance cannot capture).
    pub capture: Option<Arc<crate::capture::CaptureHub>>,
}

/// Pin the calling thread to the lowest core that runs no worker. Returns
/// that core, or None (thread left unpinned) when every core has a worker.
pub fn pin_off_workers(workers: &[usize]) -> Option<usize> {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    let c = ids.into_iter().find(|c| !workers.contains(&c.id))?;
    core_affinity::set_for_current(c).then_some(c.id)
}

/// A `{"ok": false, "error": …}` reply.
pub fn error_reply(msg: impl Into<String>) -> Value {
    json!({"ok": false, "error": msg.into()})
}

impl View {
    /// Counters of every worker (last publication).
    pub fn core_counters(&self) -> Vec<CoreCounters> {
        self.workers.iter().map(|w| w.shared.load()).collect()
    }

    /// Port counters summed over workers, by port id.
    pub fn port_counters(&self) -> Vec<PortCounters> {
        let mut t = vec![PortCounters::default(); self.ports.len()];
        for w in &self.workers {
            for (a, b) in t.iter_mut().zip(w.shared.load_ports()) {
                a.add(&b);
            }
        }
        t
    }

    /// Ask the instance's thread for the ports' device counters (None per
    /// port when it does not answer within [`HOST_TIMEOUT`]).
    pub fn backend_stats(&self) -> Vec<Option<Value>> {
        let (tx, rx) = channel();
        let sent = self
            .host
            .lock()
            .map(|h| h.send(HostJob::BackendStats(tx)).is_ok())
            .unwrap_or(false);
        let got = if sent {
            rx.recv_timeout(HOST_TIMEOUT).ok()
        } else {
            None
        };
        got.unwrap_or_else(|| vec![None; self.ports.len()])
    }

    /// Answer one request line; always a JSON object with `ok`.
    pub fn answer_line(&self, line: &str) -> Value {
        let req: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return error_reply(format!("malformed JSON: {e}")),
        };
        match self.answer(&req) {
            Ok(data) => json!({"ok": true, "cmd": req["cmd"], "data": data}),
            Err(e) => error_reply(e),
        }
    }

    /// Answer a parsed request `{"cmd": NAME, …arguments}`.
    pub fn answer(&self, req: &Value) -> Result<Value, String> {
        let obj = req
            .as_object()
            .ok_or("a request is a JSON object such as {\"cmd\":\"ports\"}")?;
        let cmd = obj
            .get("cmd")
            .and_then(Value::as_str)
            .ok_or("request field \"cmd\" (a string) is missing")?;
        match cmd {
            "ports" => Ok(self.ports_json()),
            "cores" => Ok(self.cores_json()),
            "drops" => Ok(self.drops_json()),
            "fdb" => self.fdb_json(obj),
            "vsi" => Ok(self.vsi_json()),
            "acl" => Ok(self.acl_json()),
            "meters" => Ok(self.meters_json()),
            "queues" => Ok(self.queues_json()),
            "reload" => self.reload(),
            "vm.associate" | "vm.deassociate" | "vm.migrate" => {
                self.vm(cmd, obj).map_err(|e| format!("{cmd}: {e}"))
            }
            "capture.start" | "capture.stop" | "capture.status" | "capture.list" => {
                self.capture(cmd, obj).map_err(|e| format!("{cmd}: {e}"))
            }
            _ => Err(format!(
                "unknown command {cmd:?}; commands: {}",
                COMMANDS.join(", ")
            )),
        }
    }

    fn ports_json(&self) -> Value {
        let pc = self.port_counters();
        let be = self.backend_stats();
        let mut out = Vec::new();
        for (i, name) in self.ports.iter().enumerate() {
            let c = pc[i];
            let b = be.get(i).cloned().flatten();
            let link = b
                .as_ref()
                .and_then(|b| b.get("link_up"))
                .and_then(Value::as_bool)
                .unwrap_or(true);
            out.push(json!({
                "name": name,
                "link_up": link,
                "rx_frames": c.rx_pkts,
                "rx_bytes": c.rx_bytes,
                "tx_frames": c.tx_pkts,
                "tx_bytes": c.tx_bytes,
                "tx_full": c.tx_full,
                "capture_dropped_rx": self.capture_dropped(i)[0],
                "capture_dropped_tx": self.capture_dropped(i)[1],
                "drops_total": c.total_drops(),
                "drops": c.drops_json(),
                "backend": b,
            }));
        }
        Value::Array(out)
    }

    fn cores_json(&self) -> Value {
        let mut out = Vec::new();
        for (i, (w, c)) in self.workers.iter().zip(self.core_counters()).enumerate() {
            let cycles = c.busy_cycles + c.idle_cycles;
            out.push(json!({
                "worker": i,
                "core": w.core,
                "rx_frames": c.rx_pkts,
                "tx_frames": c.tx_pkts,
                "drops": c.total_drops(),
                "punted": c.punted,
                "bursts": c.bursts,
                "empty_polls": c.empty_polls,
                "busy_cycles": c.busy_cycles,
                "idle_cycles": c.idle_cycles,
                "busy_share": if cycles == 0 { 0.0 } else { c.busy_cycles as f64 / cycles as f64 },
                "frames_per_burst": if c.bursts == 0 { 0.0 } else { c.rx_pkts as f64 / c.bursts as f64 },
                "cycles_per_frame": if c.rx_pkts == 0 { 0.0 } else { c.busy_cycles as f64 / c.rx_pkts as f64 },
                "flow_cache_hits": c.flow_cache_hits,
                "flow_cache_misses": c.flow_cache_misses,
            }));
        }
        Value::Array(out)
    }

    /// Drops by reason summed over workers (every reason, zeros included).
    pub fn drops(&self) -> [u64; DropReason::N] {
        let mut d = [0u64; DropReason::N];
        for c in self.core_counters() {
            for (a, b) in d.iter_mut().zip(c.drops) {
                *a += b;
            }
        }
        d
    }

    fn drops_json(&self) -> Value {
        let d = self.drops();
        let mut m = Map::new();
        for r in DropReason::ALL {
            m.insert(r.name().into(), d[*r as usize].into());
        }
        json!({"total": d.iter().sum::<u64>(), "by_reason": m})
    }

    fn fdb_json(&self, obj: &Map<String, Value>) -> Result<Value, String> {
        let port = match obj.get("port") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(
                self.ports
                    .iter()
                    .position(|n| n == p)
                    .ok_or_else(|| format!("fdb: port {p:?} does not exist"))?
                    as u16,
            ),
            Some(_) => return Err("fdb: \"port\" is a port name (string)".into()),
        };
        let vlan = match obj.get("vlan") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|v| (1..=4094).contains(v))
                    .ok_or("fdb: \"vlan\" is a number in 1..=4094")? as u16,
            ),
        };
        let mac = match obj.get("mac") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(
                m.parse::<Mac>()
                    .map_err(|e| format!("fdb: \"mac\" {m:?}: {e}"))?,
            ),
            Some(_) => return Err("fdb: \"mac\" is a string such as \"02:00:00:00:00:01\"".into()),
        };
        let limit = match obj.get("limit") {
            None | Some(Value::Null) => 100_000,
            Some(v) => v.as_u64().ok_or("fdb: \"limit\" is a number")? as usize,
        };
        let now = self.clock.now_ms();
        let mut rows = Vec::new();
        let mut matched = 0usize;
        self.fdb.for_each_live(now, |r| {
            if port.is_some_and(|p| p != r.port)
                || vlan.is_some_and(|v| v != r.vid)
                || mac.is_some_and(|m| m != r.mac)
            {
                return;
            }
            matched += 1;
            if rows.len() < limit {
                rows.push(r);
            }
        });
        rows.sort_by_key(|r| (r.vid, r.mac));
        let entries: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "mac": r.mac.to_string(),
                    "vlan": r.vid,
                    "port": self.ports.get(r.port as usize).cloned().unwrap_or_else(|| format!("port{}", r.port)),
                    "static": r.is_static,
                    "age_ms": if r.is_static { Value::Null } else { now.saturating_sub(r.seen_ms).into() },
                })
            })
            .collect();
        Ok(json!({
            "entries": entries,
            "matched": matched,
            "total": self.fdb.len(),
            "capacity": self.fdb.capacity(),
            "truncated": matched > entries.len(),
        }))
    }

    fn vsi_json(&self) -> Value {
        let m = self.cell.load();
        let p = &m.policy;
        let out: Vec<Value> = p
            .vsis
            .iter()
            .map(|v| {
                json!({
                    "name": v.name,
                    "mac": v.mac.to_string(),
                    "vlan": v.vid,
                    "uuid": v.uuid.map(|u| format_uuid(&u)),
                    "port": self.ports.get(v.port.0 as usize),
                    "policy": v.policy.and_then(|i| p.policies.get(i as usize)).map(|x| x.name.clone()),
                    "meter": v.meter.and_then(|i| p.meter_instances.get(i as usize)).map(|x| x.1.clone()),
                    "state": v.origin.name(),
                })
            })
            .collect();
        json!({"generation": m.gen, "vsis": out})
    }

    fn published(&self) -> Vec<crate::stats::policy::Published> {
        self.workers
            .iter()
            .map(|w| w.shared.policy.read())
            .collect()
    }

    /// ACL rule hits (packets, bytes) by rule name, summed over workers.
    pub fn rule_hits(&self) -> std::collections::BTreeMap<String, [u64; 2]> {
        let mut t = std::collections::BTreeMap::new();
        for p in self.published() {
            for (k, v) in p.rule_hits() {
                let e: &mut [u64; 2] = t.entry(k).or_default();
                e[0] += v[0];
                e[1] += v[1];
            }
        }
        t
    }

    /// Meter colour counts (green, yellow, red) by meter instance, summed over workers.
    pub fn meter_counts(&self) -> std::collections::BTreeMap<String, [u64; 3]> {
        let mut t = std::collections::BTreeMap::new();
        for p in self.published() {
            for (k, v) in p.meter_counts() {
                let e: &mut [u64; 3] = t.entry(k).or_default();
                for (a, b) in e.iter_mut().zip(v) {
                    *a += b;
                }
            }
        }
        t
    }

    /// Egress class counters by port, summed over workers (depths too).
    pub fn queue_stats(&self) -> Vec<(String, [crate::qos::sched::ClassStats; 8])> {
        let mut t: Vec<(String, [crate::qos::sched::ClassStats; 8])> = Vec::new();
        for p in self.published() {
            for (name, q) in p.queue_stats() {
                let i = match t.iter().position(|x| x.0 == name) {
                    Some(i) => i,
                    None => {
                        t.push((name, Default::default()));
                        t.len() - 1
                    }
                };
                for (a, b) in t[i].1.iter_mut().zip(q) {
                    a.enqueued += b.enqueued;
                    a.dequeued += b.dequeued;
                    a.bytes += b.bytes;
                    a.tail_drops += b.tail_drops;
                    a.drop_bytes += b.drop_bytes;
                    a.drained += b.drained;
                    a.depth += b.depth;
                }
            }
        }
        t
    }

    fn acl_json(&self) -> Value {
        let m: Map<String, Value> = self
            .rule_hits()
            .into_iter()
            .map(|(k, v)| (k, json!({"packets": v[0], "bytes": v[1]})))
            .collect();
        Value::Object(m)
    }

    fn meters_json(&self) -> Value {
        let m: Map<String, Value> = self
            .meter_counts()
            .into_iter()
            .map(|(k, v)| (k, json!({"green": v[0], "yellow": v[1], "red": v[2]})))
            .collect();
        Value::Object(m)
    }

    fn queues_json(&self) -> Value {
        let m: Map<String, Value> = self
            .queue_stats()
            .into_iter()
            .map(|(port, q)| {
                let classes: Vec<Value> = q
                    .iter()
                    .enumerate()
                    .map(|(c, s)| {
                        json!({
                            "class": c,
                            "depth": s.depth,
                            "enqueued": s.enqueued,
                            "dequeued": s.dequeued,
                            "bytes": s.bytes,
                            "tail_drops": s.tail_drops,
                            "drop_bytes": s.drop_bytes,
                            "drained": s.drained,
                        })
                    })
                    .collect();
                (port, Value::Array(classes))
            })
            .collect();
        Value::Object(m)
    }

    fn reload(&self) -> Result<Value, String> {
        let (tx, rx) = channel();
        self.host
            .lock()
            .map_err(|_| "reload: the switch is shutting down".to_string())?
            .send(HostJob::Reload(tx))
            .map_err(|_| "reload: the switch is shutting down".to_string())?;
        match rx.recv_timeout(HOST_TIMEOUT) {
            Ok(Ok(gen)) => Ok(json!({"generation": gen})),
            Ok(Err(why)) => Err(format!("reload refused, the running config stays: {why}")),
            Err(_) => Err("reload: the switch did not answer in time".into()),
        }
    }
}

impl View {
    /// Capture copies dropped (ring full) on port `i`, [rx, tx], since the start.
    pub fn capture_dropped(&self, i: usize) -> [u64; 2] {
        self.capture
            .as_ref()
            .map(|h| h.dropped(i))
            .unwrap_or([0; 2])
    }

    /// A `capture.*` command (see [`crate::capture::CaptureHub`]).
    fn capture(&self, cmd: &str, obj: &Map<String, Value>) -> Result<Value, String> {
        let hub = self
            .capture
            .as_ref()
            .ok_or("this instance has no capture support")?;
        let id = || {
            obj.get("id")
                .and_then(Value::as_u64)
                .ok_or("\"id\" (the number capture.start returned) is missing")
        };
        match cmd {
            "capture.start" => hub.start(&self.ports, &self.clock, obj),
            "capture.stop" => hub.stop(id()?),
            "capture.status" => hub.status(id()?),
            _ => Ok(hub.list()),
        }
    }

    /// Stop capture `id` if it still runs (its client went away).
    pub fn capture_abandoned(&self, id: u64) {
        if let Some(h) = &self.capture {
            let _ = h.stop(id);
        }
    }

    /// A `vm.*` command: checked here (fields), then handed to the control
    /// thread, whose answer (after the bridge's reply) is returned.
    fn vm(&self, cmd: &str, obj: &Map<String, Value>) -> Result<Value, String> {
        use crate::control::vm::{VmOp, VmRequest};
        let s = |k: &str| -> Result<String, String> {
            obj.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("\"{k}\" (a string) is missing"))
        };
        let n = |k: &str, max: u64, def: Option<u64>| -> Result<u64, String> {
            match obj.get(k) {
                None | Some(Value::Null) => {
                    def.ok_or_else(|| format!("\"{k}\" (a number) is missing"))
                }
                Some(v) => v
                    .as_u64()
                    .filter(|&x| x <= max)
                    .ok_or_else(|| format!("\"{k}\" is a number in 0..={max}")),
            }
        };
        let op = match cmd {
            "vm.associate" => {
                let mac = s("mac")?;
                let mac = mac
                    .parse::<Mac>()
                    .map_err(|e| format!("\"mac\" {mac:?}: {e}"))?;
                if mac.is_group() || mac.is_zero() {
                    return Err(format!("\"mac\" {mac}: a VM has a unicast, non-zero MAC"));
                }
                let vlan = n("vlan", 4094, Some(0))? as u16;
                VmOp::Associate(crate::config::evb::VsiCfg {
                    name: s("name")?,
                    mac,
                    port: s("port")?,
                    type_id: n("type_id", 0xff_ffff, None)? as u32,
                    type_version: n("type_version", 255, None)? as u8,
                    uuid: s("uuid")?,
                    vlan,
                })
            }
            "vm.deassociate" => VmOp::Deassociate { name: s("name")? },
            _ => VmOp::Migrate {
                name: s("name")?,
                to_port: s("to_port")?,
            },
        };
        let (tx, rx) = channel();
        let q = self.vm.as_ref().ok_or(
            "this instance runs no 802.1Qbg control thread (no uplink with evb = \"station\")",
        )?;
        q.lock()
            .map_err(|_| "the switch is shutting down".to_string())?
            .try_send(VmRequest { op, reply: tx })
            .map_err(|e| match e {
                std::sync::mpsc::TrySendError::Full(_) => {
                    "the control thread's queue is full; try again".to_string()
                }
                std::sync::mpsc::TrySendError::Disconnected(_) => {
                    "the switch is shutting down".to_string()
                }
            })?;
        match rx.recv_timeout(HOST_TIMEOUT) {
            Ok(r) => r,
            Err(_) => Err("no answer from the bridge in time (timeout)".into()),
        }
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
