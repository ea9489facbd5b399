//! Run-time VM commands of the EVB station role (`hairpin vm associate |
//! deassociate | migrate`, the control socket's `vm.*` commands).
//!
//! The telemetry thread sends a [`VmRequest`] through a bounded channel
//! ([`channel`], [`VM_QUEUE`] deep) to the control thread, never to a worker.
//! The control thread checks it against its config (errors name the field),
//! sends the VDP request on the station uplink and answers once the bridge's
//! reply arrives (status, the VLAN in force), or with an error when the
//! bridge refuses or the station gives up (its reply wait).

use crate::config::evb::VsiCfg;
use serde_json::Value;
use std::sync::mpsc::{Receiver, Sender, SyncSender};

/// Requests the control thread holds before the telemetry side gets "queue full".
pub const VM_QUEUE: usize = 16;

/// What to do with a VM.
#[derive(Clone, Debug)]
pub enum VmOp {
    /// Associate a VM (a new one, or the same name again with new settings).
    Associate(VsiCfg),
    /// De-associate the VM of this name.
    Deassociate {
        /// VM name.
        name: String,
    },
    /// Move the VM to another VM port: Associate with the M (migrating) hint
    /// bit set; its edge state moves to `to_port`.
    Migrate {
        /// VM name.
        name: String,
        /// The VM port it now sits behind.
        to_port: String,
    },
}

/// One request and where its answer goes: `Ok(data)` or an error message
/// naming the field at fault.
pub struct VmRequest {
    /// The operation.
    pub op: VmOp,
    /// The answer.
    pub reply: Sender<Result<Value, String>>,
}

/// The bounded channel from the telemetry thread to the control thread.
pub fn channel() -> (SyncSender<VmRequest>, Receiver<VmRequest>) {
    std::sync::mpsc::sync_channel(VM_QUEUE)
}

/// What a pending request waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Await {
    /// The bridge's Associate acknowledgement (associate, migrate).
    Assoc,
    /// The bridge's De-Associate acknowledgement.
    DeAssoc,
}

/// A request sent on the wire, waiting for the bridge.
pub(crate) struct Pending {
    pub uuid: [u8; 16],
    pub name: String,
    pub port: String,
    pub what: Await,
    pub migrated_from: Option<String>,
    pub reply: Sender<Result<Value, String>>,
}

use super::station::{EndReason, StationEvent};
use super::thread::ControlThread;
use super::Nanos;
use crate::types::PortId;
use crate::wire::vdp::{AssocRepr, FilterEntry, FilterFormat, Mode, Status, VsiId};
use serde_json::json;

impl ControlThread {
    /// Check that `port` (the value of request field `field`) is a VM port.
    fn vm_port(&self, field: &str, port: &str) -> Result<(), String> {
        let base = self.applier.base();
        match base.port_index(port) {
            None => Err(format!("{field}: no port {port:?} in the config")),
            Some(i) if base.port[i].uplink => Err(format!(
                "{field}: {port:?} is the uplink, not a VM port (VMs sit behind VM ports)"
            )),
            Some(_) => Ok(()),
        }
    }

    /// Drain the `vm.*` commands; true when the edge VMs may have changed.
    pub(super) fn vm_commands(&mut self, now: Nanos, out: &mut Vec<(PortId, Vec<u8>)>) -> bool {
        let Some(rx) = &self.vm_rx else {
            return false;
        };
        let reqs: Vec<VmRequest> = rx.try_iter().collect();
        let any = !reqs.is_empty();
        for r in reqs {
            if let Err(e) = self.vm_command(now, &r, out) {
                let _ = r.reply.send(Err(e));
            }
        }
        any
    }

    /// Send the VDP request for `r` (the answer follows the bridge's reply),
    /// or answer at once.
    fn vm_command(
        &mut self,
        now: Nanos,
        r: &VmRequest,
        out: &mut Vec<(PortId, Vec<u8>)>,
    ) -> Result<(), String> {
        let sp = self.plane.station_port().ok_or(
            "this instance is not in the EVB station role (no uplink with evb = \"station\")",
        )?;
        let t = self.plane.evb(sp).map(|e| e.timers()).unwrap_or_default();
        let find = |vsis: &[(VsiCfg, [u8; 16])], name: &str| {
            vsis.iter()
                .position(|(v, _)| v.name == name)
                .ok_or_else(|| format!("name: no VM {name:?} on this edge"))
        };
        match &r.op {
            VmOp::Associate(v) => {
                if v.name.is_empty() {
                    return Err("name: empty".into());
                }
                self.vm_port("port", &v.port)?;
                let uuid = crate::config::parse_uuid(&v.uuid).map_err(|e| format!("uuid: {e}"))?;
                if uuid == [0; 16] {
                    return Err("uuid: the zero UUID is not a VSI instance id".into());
                }
                if let Some((o, _)) = self
                    .vsis
                    .iter()
                    .find(|(o, u)| *u == uuid && o.name != v.name)
                {
                    return Err(format!("uuid: already the VSI of VM {:?}", o.name));
                }
                match self.vsis.iter().position(|(o, _)| o.name == v.name) {
                    Some(i) => {
                        self.vsis[i] = (v.clone(), uuid);
                        self.retry[i] = now + t.keepalive();
                    }
                    None => {
                        self.vsis.push((v.clone(), uuid));
                        self.retry.push(now + t.keepalive());
                    }
                }
                let req = assoc(v, uuid, Status(0), v.vlan);
                let _ = self.plane.station_request(now, sp, [0; 16], req, out);
                self.wait(uuid, &v.name, &v.port, Await::Assoc, None, r);
            }
            VmOp::Migrate { name, to_port } => {
                let i = find(&self.vsis, name)?;
                self.vm_port("to_port", to_port)?;
                let (v, uuid) = self.vsis[i].clone();
                if v.port == *to_port {
                    return Err(format!(
                        "to_port: VM {name:?} is already behind {to_port:?}"
                    ));
                }
                // Keep the VLAN in force (the bridge assigned it) across the move.
                let vid = self
                    .plane
                    .station(sp)
                    .and_then(|s| s.get(&VsiId::uuid(uuid)))
                    .and_then(|s| s.filters.first().map(|f| f.vid))
                    .unwrap_or(v.vlan);
                let mut moved = v.clone();
                moved.port = to_port.clone();
                self.vsis[i].0 = moved.clone();
                self.retry[i] = now + t.keepalive();
                let req = assoc(&moved, uuid, Status(Status::M), vid);
                let _ = self.plane.station_request(now, sp, [0; 16], req, out);
                self.wait(uuid, name, to_port, Await::Assoc, Some(v.port), r);
            }
            VmOp::Deassociate { name } => {
                let i = find(&self.vsis, name)?;
                let (v, uuid) = self.vsis.remove(i);
                self.retry.remove(i);
                let id = VsiId::uuid(uuid);
                let held = self.plane.station(sp).and_then(|s| s.get(&id)).cloned();
                match held {
                    Some(h) => {
                        let mut req = h.request.clone();
                        req.mode = Mode::DeAssoc;
                        req.status = Status(0);
                        let _ = self.plane.station_request(now, sp, [0; 16], req, out);
                        self.wait(uuid, name, &v.port, Await::DeAssoc, None, r);
                    }
                    None => {
                        let _ = r.reply.send(Ok(json!({
                            "name": name, "status": "deassociated", "port": v.port,
                            "bridge": "was not associated",
                        })));
                    }
                }
            }
        }
        Ok(())
    }

    fn wait(
        &mut self,
        uuid: [u8; 16],
        name: &str,
        port: &str,
        what: Await,
        migrated_from: Option<String>,
        r: &VmRequest,
    ) {
        // A newer request for the same VSI supersedes the older one.
        for p in self.pending.iter().filter(|p| p.uuid == uuid) {
            let _ = p.reply.send(Err(format!(
                "name: a newer request for VM {name:?} replaced this one"
            )));
        }
        self.pending.retain(|p| p.uuid != uuid);
        self.pending.push(Pending {
            uuid,
            name: name.to_string(),
            port: port.to_string(),
            what,
            migrated_from,
            reply: r.reply.clone(),
        });
    }

    /// Answer the pending requests the station's events settle; true when
    /// the edge's VM list changed (a refused VM dropped, a refused move undone).
    pub(super) fn answer_pending(&mut self, ev: &[(PortId, StationEvent)]) -> bool {
        let mut changed = false;
        for (_, e) in ev {
            let id = match e {
                StationEvent::Acked { vsiid, .. }
                | StationEvent::Kept { vsiid, .. }
                | StationEvent::Ended { vsiid, .. } => vsiid.bytes,
            };
            let Some(k) = self.pending.iter().position(|p| p.uuid == id) else {
                continue;
            };
            let p = &self.pending[k];
            let answer = match (e, p.what) {
                (StationEvent::Acked { mode, filters, .. }, Await::Assoc)
                    if *mode == Mode::Assoc =>
                {
                    let f = filters.first();
                    Ok(json!({
                        "name": p.name,
                        "status": "associated",
                        "port": p.port,
                        "vlan": f.map(|f| f.vid),
                        "pcp": f.filter(|f| f.ps).map(|f| f.pcp),
                        "migrated_from": p.migrated_from,
                    }))
                }
                (StationEvent::Acked { .. }, _) => continue,
                (
                    StationEvent::Ended {
                        why: EndReason::DeAssociated,
                        ..
                    },
                    Await::DeAssoc,
                ) => Ok(json!({"name": p.name, "status": "deassociated", "port": p.port})),
                (StationEvent::Kept { reason, .. }, _) => Err(format!(
                    "name: the bridge refused VM {:?} ({reason:?}); the previous association stays",
                    p.name
                )),
                (StationEvent::Ended { why, .. }, _) => Err(format!(
                    "name: VM {:?} ended: {}",
                    p.name,
                    match why {
                        EndReason::Refused(s) =>
                            format!("the bridge refused it ({:?})", s.reason()),
                        EndReason::NoReply =>
                            "no reply from the bridge in the station's wait".into(),
                        EndReason::BridgeDeAssociated => "the bridge de-associated it".into(),
                        EndReason::DeAssociated => "de-associated".into(),
                    }
                )),
            };
            let p = self.pending.remove(k);
            let kept = matches!(e, StationEvent::Kept { .. });
            if kept {
                // The bridge kept the previous association: a refused move
                // leaves the VM where it was.
                if let (Some(old), Some(i)) = (
                    &p.migrated_from,
                    self.vsis.iter().position(|(_, u)| *u == p.uuid),
                ) {
                    self.vsis[i].0.port = old.clone();
                    changed = true;
                }
            } else if answer.is_err() && p.what == Await::Assoc {
                // A refused or unanswered VM is not announced again.
                if let Some(i) = self.vsis.iter().position(|(_, u)| *u == p.uuid) {
                    self.vsis.remove(i);
                    self.retry.remove(i);
                    changed = true;
                }
            }
            let _ = p.reply.send(answer);
        }
        changed
    }
}

fn assoc(v: &VsiCfg, uuid: [u8; 16], status: Status, vid: u16) -> AssocRepr {
    AssocRepr {
        mode: Mode::Assoc,
        status,
        type_id: v.type_id,
        version: v.type_version,
        vsiid: VsiId::uuid(uuid),
        filter_format: FilterFormat::MacVid,
        filters: vec![FilterEntry::mac_vid(v.mac, vid)],
    }
}
