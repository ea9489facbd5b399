//! VDP, station role: hairpin as the hypervisor edge announcing its VMs.
//!
//! - [`VdpStation::request`] sends a (Pre-)Associate or De-Associate for a VSI.
//!   Mode rules: Pre-Associate may not follow Associate; Associate may
//!   follow anything; De-Associate needs a known VSI.
//! - The station waits 1.5 × (2^RWD + (2R+1) × 2^RTE) × 10 µs for the
//!   bridge's reply and gives up (the VSI ends) when none comes, on a reply
//!   with an error (without KEEP), or on a De-Associate from the bridge.
//! - Once established it resends its TLV every 10 µs × 2^RKA (keep-alive).
//! - The reply's filters are the ones in force: a VID-0 request learns the
//!   VLAN (and PCP) the bridge assigned.

use super::{Nanos, Timers};
use crate::wire::vdp::{
    emit_pdu, AssocRepr, FilterEntry, Mode, Pdu, Reason, Status, VdpTlv, VsiId, MANAGER_ID_LEN,
};
use std::collections::BTreeMap;

/// Where a station VSI stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StationState {
    /// Request sent, waiting for the reply until `deadline`.
    Waiting {
        /// Give up at.
        deadline: Nanos,
    },
    /// Acknowledged; next keep-alive at `next`.
    Established {
        /// Next keep-alive.
        next: Nanos,
    },
}

/// One VSI the station announces.
#[derive(Clone, Debug)]
pub struct StationVsi {
    /// Manager id.
    pub manager: [u8; MANAGER_ID_LEN],
    /// The request (mode = the mode asked for).
    pub request: AssocRepr,
    /// The mode the bridge last acknowledged.
    pub acked: Option<Mode>,
    /// The filters in force (from the last successful reply).
    pub filters: Vec<FilterEntry>,
    /// State.
    pub state: StationState,
}

/// What happened to a station VSI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StationEvent {
    /// The bridge acknowledged `mode`; `filters` are in force (assigned VIDs).
    Acked {
        /// VSIID.
        vsiid: VsiId,
        /// Mode.
        mode: Mode,
        /// Filters in force.
        filters: Vec<FilterEntry>,
    },
    /// The bridge refused with KEEP: the previous state stays.
    Kept {
        /// VSIID.
        vsiid: VsiId,
        /// Reason.
        reason: Reason,
    },
    /// The VSI ended: refused, de-associated (by us or the bridge), or no reply.
    Ended {
        /// VSIID.
        vsiid: VsiId,
        /// Why.
        why: EndReason,
    },
}

/// Why a station VSI ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Our De-Associate was acknowledged.
    DeAssociated,
    /// The bridge refused (status with this reason, HARD or not).
    Refused(Status),
    /// The bridge sent an unsolicited De-Associate.
    BridgeDeAssociated,
    /// No reply within the station's wait.
    NoReply,
}

/// Station counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StationCounters {
    /// Requests sent (keep-alives included).
    pub tx_requests: u64,
    /// Replies matched to a VSI.
    pub rx_replies: u64,
    /// TLVs for no VSI of ours, or PDUs that did not parse.
    pub rx_ignored: u64,
    /// VSIs given up for lack of a reply.
    pub timeouts: u64,
}

/// Request refused locally (mode rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Pre-Associate after Associate.
    PreAssocAfterAssoc,
    /// De-Associate of a VSI the station does not know.
    UnknownVsi,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RequestError::PreAssocAfterAssoc => "pre-associate may not follow associate",
            RequestError::UnknownVsi => "de-associate needs an existing VSI",
        })
    }
}

/// The station side of one port.
#[derive(Default)]
pub struct VdpStation {
    vsis: BTreeMap<VsiId, StationVsi>,
    /// Counters.
    pub ctr: StationCounters,
}

impl VdpStation {
    /// No VSIs.
    pub fn new() -> VdpStation {
        VdpStation::default()
    }

    /// The VSIs.
    pub fn vsis(&self) -> impl Iterator<Item = &StationVsi> {
        self.vsis.values()
    }

    /// One VSI.
    pub fn get(&self, id: &VsiId) -> Option<&StationVsi> {
        self.vsis.get(id)
    }

    /// Ask the bridge for `req.mode` on a VSI; the ULPDU to send is appended to `out`.
    pub fn request(
        &mut self,
        now: Nanos,
        t: Timers,
        manager: [u8; MANAGER_ID_LEN],
        req: AssocRepr,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), RequestError> {
        let known = self.vsis.get(&req.vsiid);
        match (req.mode, known) {
            (Mode::DeAssoc, None) => return Err(RequestError::UnknownVsi),
            (Mode::PreAssoc | Mode::PreAssocRr, Some(v)) if v.acked == Some(Mode::Assoc) => {
                return Err(RequestError::PreAssocAfterAssoc)
            }
            _ => {}
        }
        let (acked, filters) = known
            .map(|v| (v.acked, v.filters.clone()))
            .unwrap_or((None, req.filters.clone()));
        let mut req = req;
        if let Some(k) = known {
            // Keep the VID the bridge assigned when the same filters are asked again.
            if req.mode == Mode::DeAssoc {
                req.filters = k.filters.clone();
            }
        }
        let v = StationVsi {
            manager,
            request: req,
            acked,
            filters,
            state: StationState::Waiting {
                deadline: now + t.station_reply_wait(),
            },
        };
        self.send(&v, out);
        self.vsis.insert(v.request.vsiid, v);
        Ok(())
    }

    fn send(&mut self, v: &StationVsi, out: &mut Vec<Vec<u8>>) {
        let mut r = v.request.clone();
        r.status = Status(r.status.0 & (Status::M | Status::S));
        if let Ok(p) = emit_pdu(&v.manager, &[r]) {
            self.ctr.tx_requests += 1;
            out.push(p);
        }
    }

    /// A VDP ULPDU from the bridge. Events are appended to `ev`.
    pub fn rx(&mut self, now: Nanos, t: Timers, ulpdu: &[u8], ev: &mut Vec<StationEvent>) {
        let Ok(pdu) = Pdu::parse(ulpdu) else {
            self.ctr.rx_ignored += 1;
            return;
        };
        for tlv in pdu.tlvs() {
            let VdpTlv::Assoc(mode, value) = tlv else {
                continue;
            };
            let Ok(r) = AssocRepr::parse(mode, value) else {
                self.ctr.rx_ignored += 1;
                continue;
            };
            let Some(v) = self.vsis.get_mut(&r.vsiid) else {
                self.ctr.rx_ignored += 1;
                continue;
            };
            if r.type_id != v.request.type_id || r.version != v.request.version {
                self.ctr.rx_ignored += 1;
                continue;
            }
            self.ctr.rx_replies += 1;
            let id = r.vsiid;
            if !r.status.is_response() {
                if mode == Mode::DeAssoc {
                    self.vsis.remove(&id);
                    ev.push(StationEvent::Ended {
                        vsiid: id,
                        why: EndReason::BridgeDeAssociated,
                    });
                } else {
                    self.ctr.rx_ignored += 1;
                }
                continue;
            }
            let st = r.status;
            if st.reason() == Reason::Success && mode == v.request.mode {
                if mode == Mode::DeAssoc {
                    self.vsis.remove(&id);
                    ev.push(StationEvent::Ended {
                        vsiid: id,
                        why: EndReason::DeAssociated,
                    });
                    continue;
                }
                v.acked = Some(mode);
                v.filters = r.filters.clone();
                v.state = StationState::Established {
                    next: now + t.keepalive(),
                };
                ev.push(StationEvent::Acked {
                    vsiid: id,
                    mode,
                    filters: r.filters,
                });
            } else if st.keep() && v.acked.is_some() {
                v.request.mode = v.acked.expect("checked");
                v.state = StationState::Established {
                    next: now + t.keepalive(),
                };
                ev.push(StationEvent::Kept {
                    vsiid: id,
                    reason: st.reason(),
                });
            } else {
                self.vsis.remove(&id);
                ev.push(StationEvent::Ended {
                    vsiid: id,
                    why: if mode == Mode::DeAssoc && st.reason() == Reason::Success {
                        EndReason::BridgeDeAssociated
                    } else {
                        EndReason::Refused(st)
                    },
                });
            }
        }
    }

    /// Timers: keep-alives due, replies that did not come. ULPDUs to send are
    /// appended to `out`, events to `ev`.
    pub fn tick(
        &mut self,
        now: Nanos,
        t: Timers,
        out: &mut Vec<Vec<u8>>,
        ev: &mut Vec<StationEvent>,
    ) {
        let ids: Vec<VsiId> = self.vsis.keys().copied().collect();
        for id in ids {
            let v = self.vsis.get(&id).expect("listed").clone();
            match v.state {
                StationState::Waiting { deadline } if now >= deadline => {
                    self.vsis.remove(&id);
                    self.ctr.timeouts += 1;
                    ev.push(StationEvent::Ended {
                        vsiid: id,
                        why: EndReason::NoReply,
                    });
                }
                StationState::Established { next } if now >= next => {
                    self.send(&v, out);
                    if let Some(x) = self.vsis.get_mut(&id) {
                        x.state = StationState::Waiting {
                            deadline: now + t.station_reply_wait(),
                        };
                    }
                }
                _ => {}
            }
        }
    }

    /// The earliest time [`VdpStation::tick`] has something to do.
    pub fn deadline(&self) -> Option<Nanos> {
        self.vsis
            .values()
            .map(|v| match v.state {
                StationState::Waiting { deadline } => deadline,
                StationState::Established { next } => next,
            })
            .min()
    }
}
