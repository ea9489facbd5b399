//! VDP, bridge role: the switch-wide VSI table and the per-VSI state machine
//! of qbg.md §2 (lldpad `vdp22br.c` / `vdp22sm.c`, with a real VSI manager).
//!
//! - A VSI is keyed by (port, manager id, type id, version, VSIID). Its filter
//!   format and entries are part of it: a later request for the same key with
//!   other filter data is ignored (counted).
//! - New VSI or a new mode → PROCESS: the [`PolicyStore`] is asked; success
//!   → reply with status 0x40 (VID 0 entries carry the assigned VID, and
//!   PS+PCP when the type assigns a PCP), failure → De-Associate reply with
//!   the reason (HARD when permanent) for a new VSI, or a reply in the
//!   requested mode with KEEP + reason for an established one (old state
//!   stays). A store that answers "pending" past 10 µs × 2^RWD: KEEP for an
//!   established VSI, a De-Associate (reason 3) otherwise.
//! - Same mode again → keep-alive: ACK, timer restarted, nothing reprovisioned.
//! - No keep-alive for 1.5 × (2^RKA + (2R+1) × 2^RTE) × 10 µs → an unsolicited
//!   De-Associate (status 0x00) is sent and the VSI is deleted.
//! - De-Associate of a known VSI removes it; of an unknown VSI → a bare ACK.
//! - Pre-Associate checks the type (no forwarding, nothing reserved);
//!   Pre-Associate-RR also reserves the VLAN; Associate installs.
//! - Migration: the same VSI associated on another port is installed there;
//!   for each (MAC, VID) the newest association wins, so the old port's record
//!   forwards nothing and is released by its De-Associate or keep-alive expiry.
//! - M/S hints in requests are accepted (and not echoed as errors).

use super::store::{Lookup, PolicyStore, VlanSpec, VsiType};
use super::{Nanos, Timers};
use crate::types::{Mac, PortId};
use crate::wire::vdp::{
    emit_echo, emit_manager_id, Assoc, AssocRepr, FilterEntry, FilterFormat, Mode, Pdu, PduError,
    Reason, Status, VdpTlv, VsiId, MANAGER_ID_LEN,
};
use std::collections::BTreeMap;

/// What the bridge needs to know about the port a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortParams {
    /// Timers in force (EVB-negotiated).
    pub timers: Timers,
    /// Group-id filter formats allowed (BGID and SGID both set).
    pub group_ok: bool,
}

/// A VSI's identity on one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VsiKey {
    /// Port the VSI was announced on.
    pub port: PortId,
    /// VSI manager id.
    pub manager: [u8; MANAGER_ID_LEN],
    /// Type id.
    pub type_id: u32,
    /// Type version.
    pub version: u8,
    /// Instance id.
    pub vsiid: VsiId,
}

#[derive(Clone, Debug)]
struct Pending {
    request: AssocRepr,
    deadline: Nanos,
}

/// One VSI in the bridge's table.
#[derive(Clone, Debug)]
pub struct VsiRecord {
    /// Key.
    pub key: VsiKey,
    /// Established mode (None while a new VSI is being processed).
    pub mode: Option<Mode>,
    /// The filters as requested (VID 0 = "assign").
    pub requested: Vec<FilterEntry>,
    /// Filter format.
    pub filter_format: FilterFormat,
    /// The filters in force (assigned VIDs and PCP filled in).
    pub filters: Vec<FilterEntry>,
    /// The type, once the store answered.
    pub vsi_type: Option<VsiType>,
    /// Keep-alive deadline.
    pub expires: Nanos,
    /// Association order (newest association of a MAC/VID wins).
    pub assoc_seq: u64,
    pending: Option<Pending>,
}

/// A VSI installed in the data path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Installed {
    /// Port.
    pub port: PortId,
    /// MAC (zero for VID-only filters: VLAN membership, no FDB entry or binding).
    pub mac: Mac,
    /// VLAN.
    pub vid: u16,
    /// Policy name.
    pub policy: Option<String>,
    /// VSIID.
    pub vsiid: VsiId,
    /// Type id.
    pub type_id: u32,
}

/// VDP bridge counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VdpCounters {
    /// PDUs received.
    pub rx_pdus: u64,
    /// PDUs dropped: first TLV not a Manager ID.
    pub drop_no_manager_id: u64,
    /// PDUs dropped: Manager ID not 16 bytes.
    pub drop_bad_manager_id: u64,
    /// PDUs dropped: two Manager IDs.
    pub drop_two_manager_ids: u64,
    /// PDUs dropped: a TLV overruns the PDU.
    pub drop_overlong: u64,
    /// Association TLVs received.
    pub requests: u64,
    /// Organizational TLVs skipped.
    pub org_tlvs: u64,
    /// Responses (b6 set) received by the bridge (ignored).
    pub stray_responses: u64,
    /// Requests that did not parse (answered with reason 1 or 5).
    pub invalid: u64,
    /// Association TLVs shorter than their 25-byte fixed part (dropped: no answer can echo them).
    pub truncated: u64,
    /// Keep-alives.
    pub keepalives: u64,
    /// Successful (pre-)associations.
    pub accepted: u64,
    /// Rejections.
    pub rejected: u64,
    /// De-associations of known VSIs.
    pub deassociated: u64,
    /// De-associations of unknown VSIs (bare ACK).
    pub unknown_deassoc: u64,
    /// Keep-alive expiries (unsolicited De-Associate sent).
    pub expired: u64,
    /// Store answers that did not come within the resource wait.
    pub store_timeouts: u64,
    /// New VSIs refused because the port holds `max_vsis_per_port` already.
    pub table_full: u64,
    /// Requests for a known VSI with other filter data (ignored).
    pub filter_mismatch: u64,
    /// Requests ignored while the VSI was being processed.
    pub busy: u64,
}

/// A ULPDU to send on a port (ECP carries it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Port.
    pub port: PortId,
    /// VDP ULPDU (Manager ID + TLVs).
    pub ulpdu: Vec<u8>,
}

/// VSIs per port when no limit is given ([`VdpBridge::with_limit`]).
pub const DEFAULT_MAX_VSIS_PER_PORT: usize = 4096;

/// The bridge's VDP state.
pub struct VdpBridge {
    vsis: BTreeMap<VsiKey, VsiRecord>,
    seq: u64,
    max_per_port: usize,
    /// Counters.
    pub ctr: VdpCounters,
}

impl Default for VdpBridge {
    fn default() -> Self {
        Self::new()
    }
}

enum Outcome {
    Ok(Vec<FilterEntry>, VsiType),
    Fail { reason: Reason, hard: bool },
    Pending,
}

impl VdpBridge {
    /// An empty table with the default per-port limit.
    pub fn new() -> VdpBridge {
        Self::with_limit(DEFAULT_MAX_VSIS_PER_PORT)
    }

    /// An empty table taking at most `max_per_port` VSIs per port; a new VSI
    /// beyond it is refused with reason 2 (insufficient resources).
    pub fn with_limit(max_per_port: usize) -> VdpBridge {
        VdpBridge {
            vsis: BTreeMap::new(),
            seq: 0,
            max_per_port,
            ctr: VdpCounters::default(),
        }
    }

    /// The VSI table.
    pub fn vsis(&self) -> impl Iterator<Item = &VsiRecord> {
        self.vsis.values()
    }

    /// What the data path should have: for each (MAC, VID) of an associated
    /// VSI, the newest association; VID-only filters as (zero MAC, VID).
    pub fn installed(&self) -> Vec<Installed> {
        // (None, MAC, VID) for MAC filters; (Some(port), zero, VID) for VID-only ones.
        let mut best: BTreeMap<(Option<PortId>, Mac, u16), (u64, Installed)> = BTreeMap::new();
        for r in self.vsis.values() {
            if r.mode != Some(Mode::Assoc) {
                continue;
            }
            for f in &r.filters {
                let i = Installed {
                    port: r.key.port,
                    mac: f.mac,
                    vid: f.vid,
                    policy: r.vsi_type.as_ref().and_then(|t| t.policy.clone()),
                    vsiid: r.key.vsiid,
                    type_id: r.key.type_id,
                };
                let k = if f.mac == Mac::ZERO {
                    (Some(r.key.port), f.mac, f.vid)
                } else {
                    (None, f.mac, f.vid)
                };
                match best.get(&k) {
                    Some((s, _)) if *s > r.assoc_seq => {}
                    _ => {
                        best.insert(k, (r.assoc_seq, i));
                    }
                }
            }
        }
        best.into_values().map(|(_, i)| i).collect()
    }

    /// A VDP ULPDU received (from ECP) on `port`. Replies are appended to
    /// `out`; returns true when [`VdpBridge::installed`] may have changed.
    pub fn rx(
        &mut self,
        now: Nanos,
        port: PortId,
        p: PortParams,
        ulpdu: &[u8],
        store: &mut dyn PolicyStore,
        out: &mut Vec<Reply>,
    ) -> bool {
        self.ctr.rx_pdus += 1;
        let pdu = match Pdu::parse(ulpdu) {
            Ok(pdu) => pdu,
            Err(e) => {
                match e {
                    PduError::NoManagerId => self.ctr.drop_no_manager_id += 1,
                    PduError::BadManagerId => self.ctr.drop_bad_manager_id += 1,
                    PduError::TwoManagerIds => self.ctr.drop_two_manager_ids += 1,
                    PduError::Overlong => self.ctr.drop_overlong += 1,
                }
                return false;
            }
        };
        let mut tlvs = Vec::new();
        let mut changed = false;
        for t in pdu.tlvs() {
            match t {
                VdpTlv::Org(_) => self.ctr.org_tlvs += 1,
                VdpTlv::Assoc(mode, value) => {
                    self.ctr.requests += 1;
                    changed |=
                        self.request(now, port, p, &pdu.manager, mode, value, store, &mut tlvs);
                }
            }
        }
        if !tlvs.is_empty() {
            push_replies(port, &pdu.manager, tlvs, out);
        }
        changed
    }

    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        now: Nanos,
        port: PortId,
        p: PortParams,
        manager: &[u8; MANAGER_ID_LEN],
        mode: Mode,
        value: &[u8],
        store: &mut dyn PolicyStore,
        tlvs: &mut Vec<Vec<u8>>,
    ) -> bool {
        if Assoc::parse(value).is_ok_and(|a| a.status().is_response()) {
            self.ctr.stray_responses += 1;
            return false;
        }
        if Assoc::parse(value).is_err() {
            // Shorter than the fixed part: nothing to echo an answer with.
            self.ctr.truncated += 1;
            return false;
        }
        let req = match AssocRepr::parse(mode, value) {
            Ok(r) => r,
            Err(reason) => {
                self.ctr.invalid += 1;
                let mut b = Vec::new();
                let st = if mode == Mode::DeAssoc {
                    Status::response(false, false, reason)
                } else {
                    Status::response(false, true, reason)
                };
                emit_echo(Mode::DeAssoc, value, st, &mut b);
                tlvs.push(b);
                return false;
            }
        };
        let key = VsiKey {
            port,
            manager: *manager,
            type_id: req.type_id,
            version: req.version,
            vsiid: req.vsiid,
        };
        if mode == Mode::DeAssoc {
            return match self.vsis.remove(&key) {
                Some(r) => {
                    self.ctr.deassociated += 1;
                    tlvs.push(reply_tlv(&r, Mode::DeAssoc, Status::ok()));
                    r.mode == Some(Mode::Assoc)
                }
                None => {
                    self.ctr.unknown_deassoc += 1;
                    let mut b = Vec::new();
                    emit_echo(Mode::DeAssoc, value, Status::ok(), &mut b);
                    tlvs.push(b);
                    false
                }
            };
        }
        if let Some(r) = self.vsis.get_mut(&key) {
            // A station may repeat its request as sent (VID 0 = "assign") or,
            // as lldpad does, with the filters the bridge answered (assigned
            // VID, PS/PCP): both are the same VSI.
            let same = r.requested == req.filters || r.filters == req.filters;
            if r.filter_format != req.filter_format || !same {
                self.ctr.filter_mismatch += 1;
                return false;
            }
            if r.pending.is_some() {
                self.ctr.busy += 1;
                return false;
            }
            if r.mode == Some(mode) {
                self.ctr.keepalives += 1;
                r.expires = now + p.timers.bridge_keepalive_timeout();
                tlvs.push(reply_tlv(r, mode, Status::ok()));
                return false;
            }
        } else {
            if self.vsis.keys().filter(|k| k.port == port).count() >= self.max_per_port {
                self.ctr.table_full += 1;
                let mut b = Vec::new();
                emit_echo(
                    Mode::DeAssoc,
                    value,
                    Status::response(false, false, Reason::InsufficientResources),
                    &mut b,
                );
                tlvs.push(b);
                return false;
            }
            self.vsis.insert(
                key,
                VsiRecord {
                    key,
                    mode: None,
                    requested: req.filters.clone(),
                    filter_format: req.filter_format,
                    filters: req.filters.clone(),
                    vsi_type: None,
                    expires: now + p.timers.bridge_keepalive_timeout(),
                    assoc_seq: 0,
                    pending: None,
                },
            );
        }
        self.process(now, key, p, req, store, tlvs)
    }

    fn process(
        &mut self,
        now: Nanos,
        key: VsiKey,
        p: PortParams,
        req: AssocRepr,
        store: &mut dyn PolicyStore,
        tlvs: &mut Vec<Vec<u8>>,
    ) -> bool {
        let outcome = match store.lookup(now, req.type_id, req.version) {
            Lookup::Found(t) => self.check(&key, &req, &t, p),
            Lookup::Unknown => Outcome::Fail {
                reason: Reason::InsufficientResources,
                hard: true,
            },
            Lookup::Unreachable => Outcome::Fail {
                reason: Reason::UnreachableManager,
                hard: false,
            },
            Lookup::Pending => Outcome::Pending,
        };
        let rec = self.vsis.get_mut(&key).expect("inserted by caller");
        match outcome {
            Outcome::Pending => {
                let deadline = rec
                    .pending
                    .as_ref()
                    .map_or(now + p.timers.resource_wait(), |x| x.deadline);
                rec.pending = Some(Pending {
                    request: req,
                    deadline,
                });
                false
            }
            Outcome::Ok(filters, t) => {
                self.ctr.accepted += 1;
                let was = rec.mode;
                rec.pending = None;
                rec.mode = Some(req.mode);
                rec.filters = filters;
                rec.vsi_type = Some(t);
                rec.expires = now + p.timers.bridge_keepalive_timeout();
                if req.mode == Mode::Assoc && was != Some(Mode::Assoc) {
                    self.seq += 1;
                    rec.assoc_seq = self.seq;
                }
                tlvs.push(reply_tlv(rec, req.mode, Status::ok()));
                was == Some(Mode::Assoc) || req.mode == Mode::Assoc
            }
            Outcome::Fail { reason, hard } => {
                self.ctr.rejected += 1;
                rec.pending = None;
                match rec.mode {
                    Some(_) => {
                        rec.expires = now + p.timers.bridge_keepalive_timeout();
                        let mut shown = rec.clone();
                        shown.filters = req.filters.clone();
                        tlvs.push(reply_tlv(
                            &shown,
                            req.mode,
                            Status::response(true, hard, reason),
                        ));
                    }
                    None => {
                        let r = self.vsis.remove(&key).expect("present");
                        tlvs.push(reply_tlv(
                            &r,
                            Mode::DeAssoc,
                            Status::response(false, hard, reason),
                        ));
                    }
                }
                false
            }
        }
    }

    /// Check a request against its type and allocate VLANs.
    fn check(&self, key: &VsiKey, req: &AssocRepr, t: &VsiType, p: PortParams) -> Outcome {
        let fail = |reason, hard| Outcome::Fail { reason, hard };
        if req.filter_format.has_group() && !p.group_ok {
            return fail(Reason::InvalidFormat, true);
        }
        let reserve = matches!(req.mode, Mode::Assoc | Mode::PreAssocRr);
        let mut out = Vec::with_capacity(req.filters.len());
        for f in &req.filters {
            let mut g = *f;
            if f.vid == 0 {
                if reserve {
                    match self.allocate(key, t) {
                        Some(v) => g.vid = v,
                        None => return fail(Reason::InsufficientResources, false),
                    }
                }
            } else if !t.vlan.allows(f.vid) {
                return fail(Reason::InvalidFilter, true);
            }
            if let (Some(pcp), true) = (t.pcp, g.vid != 0) {
                g.ps = true;
                g.pcp = pcp;
            }
            if f.mac != Mac::ZERO && g.vid != 0 && self.claimed_by_other(key, f.mac, g.vid) {
                return fail(Reason::InvalidFilter, false);
            }
            out.push(g);
        }
        Outcome::Ok(out, t.clone())
    }

    /// Another VSI (different instance id) already holds this MAC/VID.
    fn claimed_by_other(&self, key: &VsiKey, mac: Mac, vid: u16) -> bool {
        self.vsis.values().any(|r| {
            r.key.vsiid != key.vsiid
                && r.mode.is_some()
                && r.filters.iter().any(|f| f.mac == mac && f.vid == vid)
        })
    }

    /// The VLAN for a VID-0 entry: the fixed VLAN; for a pool, the VLAN the
    /// same instance already holds elsewhere (migration keeps it), else the
    /// lowest VLAN of the pool no other VSI reserved.
    fn allocate(&self, key: &VsiKey, t: &VsiType) -> Option<u16> {
        match t.vlan {
            VlanSpec::Fixed(v) => Some(v),
            VlanSpec::Pool(lo, hi) => {
                let holds = |r: &VsiRecord| {
                    matches!(r.mode, Some(Mode::Assoc | Mode::PreAssocRr))
                        && r.vsi_type.as_ref().is_some_and(|x| x.vlan == t.vlan)
                };
                let mine = self
                    .vsis
                    .values()
                    .find(|r| r.key.vsiid == key.vsiid && r.key.port != key.port && holds(r));
                if let Some(v) =
                    mine.and_then(|r| r.filters.iter().map(|f| f.vid).find(|v| *v != 0))
                {
                    return Some(v);
                }
                if let Some(v) = self
                    .vsis
                    .get(key)
                    .filter(|r| holds(r))
                    .and_then(|r| r.filters.iter().map(|f| f.vid).find(|v| *v != 0))
                {
                    return Some(v);
                }
                let used: std::collections::HashSet<u16> = self
                    .vsis
                    .values()
                    .filter(|r| r.key.vsiid != key.vsiid && holds(r))
                    .flat_map(|r| r.filters.iter().map(|f| f.vid))
                    .collect();
                (lo..=hi).find(|v| !used.contains(v))
            }
        }
    }

    /// Timers: store answers that were pending, store timeouts, keep-alive
    /// expiry. `params` gives each port's parameters. Returns true when
    /// [`VdpBridge::installed`] may have changed.
    pub fn tick(
        &mut self,
        now: Nanos,
        params: &dyn Fn(PortId) -> PortParams,
        store: &mut dyn PolicyStore,
        out: &mut Vec<Reply>,
    ) -> bool {
        let mut changed = false;
        let pending: Vec<VsiKey> = self
            .vsis
            .values()
            .filter(|r| r.pending.is_some())
            .map(|r| r.key)
            .collect();
        for key in pending {
            let p = params(key.port);
            let Some(rec) = self.vsis.get(&key) else {
                continue;
            };
            let pend = rec.pending.clone().expect("filtered");
            let mut tlvs = Vec::new();
            if now >= pend.deadline {
                self.ctr.store_timeouts += 1;
                let rec = self.vsis.get_mut(&key).expect("present");
                rec.pending = None;
                match rec.mode {
                    Some(_) => {
                        rec.expires = now + p.timers.bridge_keepalive_timeout();
                        tlvs.push(reply_tlv(
                            rec,
                            pend.request.mode,
                            Status::response(true, false, Reason::UnreachableManager),
                        ));
                    }
                    None => {
                        let r = self.vsis.remove(&key).expect("present");
                        tlvs.push(reply_tlv(
                            &r,
                            Mode::DeAssoc,
                            Status::response(false, false, Reason::UnreachableManager),
                        ));
                    }
                }
            } else {
                changed |= self.process(now, key, p, pend.request, store, &mut tlvs);
            }
            if !tlvs.is_empty() {
                push_replies(key.port, &key.manager, tlvs, out);
            }
        }
        let expired: Vec<VsiKey> = self
            .vsis
            .values()
            .filter(|r| r.pending.is_none() && now >= r.expires)
            .map(|r| r.key)
            .collect();
        for key in expired {
            let r = self.vsis.remove(&key).expect("present");
            self.ctr.expired += 1;
            changed |= r.mode == Some(Mode::Assoc);
            if r.mode.is_some() {
                push_replies(
                    key.port,
                    &key.manager,
                    vec![reply_tlv(&r, Mode::DeAssoc, Status(0))],
                    out,
                );
            }
        }
        changed
    }

    /// The earliest time [`VdpBridge::tick`] has something to do.
    pub fn deadline(&self) -> Option<Nanos> {
        self.vsis
            .values()
            .map(|r| {
                r.pending
                    .as_ref()
                    .map_or(r.expires, |p| p.deadline.min(r.expires))
            })
            .min()
    }
}

/// An association TLV for record `r` in `mode` with `status`, its filters in force.
fn reply_tlv(r: &VsiRecord, mode: Mode, status: Status) -> Vec<u8> {
    let repr = AssocRepr {
        mode,
        status,
        type_id: r.key.type_id,
        version: r.key.version,
        vsiid: r.key.vsiid,
        filter_format: r.filter_format,
        filters: r.filters.clone(),
    };
    let mut b = Vec::new();
    if repr.emit(&mut b).is_err() {
        // Cannot happen for a record built from a parsed request (same size);
        // answer with the fixed part only rather than nothing.
        b.clear();
        let mut short = repr;
        short.filters.truncate(1);
        let _ = short.emit(&mut b);
    }
    b
}

/// Most TLV bytes per reply ULPDU (an ECP frame carries ≤ 1500 bytes).
const MAX_ULPDU: usize = 1400;

fn push_replies(
    port: PortId,
    manager: &[u8; MANAGER_ID_LEN],
    tlvs: Vec<Vec<u8>>,
    out: &mut Vec<Reply>,
) {
    let mut cur = Vec::new();
    for t in tlvs {
        if !cur.is_empty() && cur.len() + t.len() > MAX_ULPDU {
            out.push(Reply {
                port,
                ulpdu: std::mem::take(&mut cur),
            });
        }
        if cur.is_empty() {
            emit_manager_id(manager, &mut cur);
        }
        cur.extend_from_slice(&t);
    }
    if !cur.is_empty() {
        out.push(Reply { port, ulpdu: cur });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::store::StaticStore;
    use crate::wire::vdp::emit_pdu;

    #[test]
    fn assoc_then_keepalive_then_deassoc() {
        let cfg = crate::config::evb::VsiTypeCfg {
            id: 5,
            version: 1,
            vlan: Some(100),
            vlan_pool: None,
            policy: None,
            pcp: None,
        };
        let mut store = StaticStore::new(&[cfg], "test").unwrap();
        let mut b = VdpBridge::new();
        let p = PortParams {
            timers: Timers::default(),
            group_ok: false,
        };
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let req = AssocRepr {
            mode: Mode::Assoc,
            status: Status(0),
            type_id: 5,
            version: 1,
            vsiid: VsiId::mac(mac),
            filter_format: FilterFormat::MacVid,
            filters: vec![FilterEntry::mac_vid(mac, 0)],
        };
        let pdu = emit_pdu(&[0; 16], std::slice::from_ref(&req)).unwrap();
        let mut out = Vec::new();
        assert!(b.rx(0, PortId(0), p, &pdu, &mut store, &mut out));
        assert_eq!(out.len(), 1);
        let reply = Pdu::parse(&out[0].ulpdu).unwrap();
        let VdpTlv::Assoc(Mode::Assoc, v) = reply.tlvs().next().unwrap() else {
            panic!()
        };
        let r = AssocRepr::parse(Mode::Assoc, v).unwrap();
        assert_eq!(r.status, Status::ok());
        assert_eq!(r.filters[0].vid, 100);
        assert_eq!(b.installed().len(), 1);
        out.clear();
        assert!(!b.rx(1, PortId(0), p, &pdu, &mut store, &mut out));
        assert_eq!(b.ctr.keepalives, 1);
        let de = emit_pdu(
            &[0; 16],
            &[AssocRepr {
                mode: Mode::DeAssoc,
                ..req
            }],
        )
        .unwrap();
        assert!(b.rx(2, PortId(0), p, &de, &mut store, &mut out));
        assert!(b.installed().is_empty());
        assert_eq!(b.deadline(), None);
    }

    /// lldpad's keep-alive carries the VID the bridge assigned, not the VID
    /// 0 it asked with: still a keep-alive (found by tests/lldpad_interop.rs,
    /// where the VSI expired instead). Another VID stays a mismatch.
    #[test]
    fn keepalive_with_the_assigned_vid() {
        let cfg = crate::config::evb::VsiTypeCfg {
            id: 5,
            version: 1,
            vlan: None,
            vlan_pool: Some("100-101".into()),
            policy: None,
            pcp: Some(4),
        };
        let mut store = StaticStore::new(&[cfg], "test").unwrap();
        let mut b = VdpBridge::new();
        let p = PortParams {
            timers: Timers::default(),
            group_ok: false,
        };
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let req = AssocRepr {
            mode: Mode::Assoc,
            status: Status(0),
            type_id: 5,
            version: 1,
            vsiid: VsiId::mac(mac),
            filter_format: FilterFormat::MacVid,
            filters: vec![FilterEntry::mac_vid(mac, 0)],
        };
        let pdu = emit_pdu(&[0; 16], std::slice::from_ref(&req)).unwrap();
        let mut out = Vec::new();
        assert!(b.rx(0, PortId(0), p, &pdu, &mut store, &mut out));
        let reply = Pdu::parse(&out[0].ulpdu).unwrap();
        let VdpTlv::Assoc(Mode::Assoc, v) = reply.tlvs().next().unwrap() else {
            panic!()
        };
        let granted = AssocRepr::parse(Mode::Assoc, v).unwrap();
        assert_eq!(granted.status, Status::ok());
        assert_eq!(granted.filters[0].vid, 100);
        assert_ne!(granted.filters, req.filters);
        // The keep-alive as lldpad sends it: the answer's filters, status 0.
        let ka = AssocRepr {
            status: Status(0),
            ..granted.clone()
        };
        let ka_pdu = emit_pdu(&[0; 16], std::slice::from_ref(&ka)).unwrap();
        out.clear();
        let t = Timers::default().bridge_keepalive_timeout();
        assert!(!b.rx(t / 2, PortId(0), p, &ka_pdu, &mut store, &mut out));
        assert_eq!((b.ctr.keepalives, b.ctr.filter_mismatch), (1, 0));
        assert_eq!(out.len(), 1, "a keep-alive is answered");
        // The timer restarted: alive past the first deadline.
        assert_eq!(b.deadline(), Some(t / 2 + t));
        // The same VSI with a VID it was not given is still a mismatch.
        let mut other = ka.clone();
        other.filters[0].vid = 101;
        let o_pdu = emit_pdu(&[0; 16], std::slice::from_ref(&other)).unwrap();
        out.clear();
        assert!(!b.rx(t, PortId(0), p, &o_pdu, &mut store, &mut out));
        assert_eq!((b.ctr.keepalives, b.ctr.filter_mismatch), (1, 1));
        assert!(out.is_empty());
        assert_eq!(b.installed().len(), 1);
    }
}
