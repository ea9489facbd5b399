//! The fast path: one burst at a time, stage by stage.
//!
//! `parse+ingress` (length, control frames, source check, VLAN
//! classification) → `learn` (FDB update, locked ports, reflected-copy
//! detection on an edge uplink, then the destination lookup, so each frame
//! sees exactly the sources of the frames before it, whatever the burst
//! size) → `forward` (the reflective-relay rule, flood sets; one function
//! per role) → `tx` (flood
//! copies, VLAN tag push/pop per egress port, per-port TX staging). Every
//! stage walks the whole burst before the next runs. A burst of nothing but
//! plain known unicast takes one pass instead (`Pipeline::known_unicast`),
//! with the same outcome frame by frame. Nothing here allocates
//! on the heap, locks, or makes a system call; a dropped frame goes back to
//! the core's pool cache at once with its reason counted.
//!
//! Tracing is a type parameter: [`NoTrace`] compiles every trace call away,
//! [`TraceLog`] records each decision (used by `hairpin trace`), so the
//! trace runs exactly the code the switch runs.

mod memo;
pub mod model;

use crate::buf::{Burst, PktBuf, Pool, PoolCache};
use crate::config::{PortState, Role, VmMode};
use crate::fdb::{Fdb, Learn};
use crate::policy::acl::{FlowKey, PackedKey};
use crate::policy::flow::{FlowCache, IngressCache, IngressHit, NO_MATCH};
use crate::policy::{PolicySet, RuleAction, VsiFast, NONE};
use crate::port::ring::Producer;
use crate::port::PortQueue;
use crate::qos::meter::{Action as MeterAction, Color};
use crate::qos::sched::Dropped;
use crate::stats::{CoreCounters, DropReason, PortCounters};
use crate::types::{Mac, PortId};
pub use model::{Model, PortInfo, SnapshotCell};
use std::sync::Arc;

/// TPID of an 802.1Q C-tag.
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad S-tag.
pub const TPID_8021AD: u16 = 0x88a8;
/// LLDP ethertype.
pub const ETH_LLDP: u16 = 0x88cc;
/// ECP ethertype (802.1Qbg).
pub const ETH_ECP: u16 = 0x8940;

const BCAST: u64 = 0xffff_ffff_ffff;
const GROUP_BIT: u64 = 1 << 40;
/// (MAC, VID) packed for the learn stage's per-burst memory; never equal to
/// a packed key (those have bits 60..64 clear).
const NO_KEY: u64 = u64::MAX;

/// When every frame of `frames` (two or more) has frame 0's first 18
/// bytes — and, with `policy`, frame 0's flow key (a fast IPv4 frame, the
/// same 5-tuple, DSCP and TCP flags) — the bytes of frames 1.. and the
/// longest of them. (The key is taken with VID and PCP 0: they come from
/// the first 18 bytes, which are equal.)
#[inline(never)]
fn one_flow_rest(pool: &Pool, frames: &[PktBuf], policy: bool) -> Option<(u64, usize)> {
    let d0 = pool.data(frames.first()?);
    let h0 = head18(d0)?;
    if frames.len() < 2 {
        return None;
    }
    let k0 = if policy {
        Some(FlowKey::from_frame(d0, 0, 0)?)
    } else {
        None
    };
    let (mut bytes, mut max) = (0u64, 0usize);
    for b in &frames[1..] {
        let d = pool.data(b);
        if head18(d) != Some(h0) {
            return None;
        }
        if let Some(k0) = &k0 {
            if !FlowKey::from_frame(d, 0, 0).is_some_and(|k| k.same(k0)) {
                return None;
            }
        }
        bytes += d.len() as u64;
        max = max.max(d.len());
    }
    Some((bytes, max))
}

/// A frame's first 18 bytes as three words (None when it is shorter).
#[inline(always)]
fn head18(d: &[u8]) -> Option<(u64, u64, u16)> {
    let h = d.get(..18)?;
    Some((
        u64::from_ne_bytes(h[0..8].try_into().ok()?),
        u64::from_ne_bytes(h[8..16].try_into().ok()?),
        u16::from_ne_bytes(h[16..18].try_into().ok()?),
    ))
}

/// The one pass's decision from a frame's first 18 bytes (`d` has at least
/// 18) arriving on `inp`: plain known unicast of a VLAN of the port, from a
/// source known and fresh on `inp` (when it learns) to a live destination
/// on a port that may send it. With the time (ms) the FDB's answers stop
/// standing without a write. None: the frame needs the stages.
#[inline(always)]
fn decide_head(
    m: &Model,
    fdb: &Fdb,
    inp: PortId,
    d: &[u8],
    now_ms: u64,
) -> Option<(memo::Head, u64)> {
    let port = &m.ports[inp.0 as usize];
    let dst = u64::from_be_bytes([0, 0, d[0], d[1], d[2], d[3], d[4], d[5]]);
    let src = u64::from_be_bytes([0, 0, d[6], d[7], d[8], d[9], d[10], d[11]]);
    let et = u16::from_be_bytes([d[12], d[13]]);
    let (vid, pcp, tagged, et) = if et == TPID_8021Q {
        let tci = u16::from_be_bytes([d[14], d[15]]);
        let inner = u16::from_be_bytes([d[16], d[17]]);
        let vid = tci & 0xfff;
        if vid == 0 || vid == 0xfff || inner == TPID_8021Q || inner == TPID_8021AD {
            return None;
        }
        (vid, (tci >> 13) as u8, true, inner)
    } else if et == TPID_8021AD || port.pvid == 0 {
        return None;
    } else {
        (port.pvid, 0, false, et)
    };
    if (dst | src) & GROUP_BIT != 0
        || src == 0
        || dst == m.own_mac
        || src == m.own_mac
        || et == ETH_LLDP
        || et == ETH_ECP
        || !port.vlans.contains(vid)
    {
        return None;
    }
    let until = match port.learning {
        true => fdb.known_until(src, vid, inp, now_ms)?,
        false => u64::MAX,
    };
    let (e, dst_until) = fdb.lookup_until(dst, vid, now_ms)?;
    let p = e.port;
    let inbit = 1u64 << inp.0;
    let mask = (1u64 << p.0) & m.vlan_ports[vid as usize] & m.fwd_mask;
    if (p == inp && m.rr_mask & inbit == 0)
        || mask == 0
        || (m.isolated_mask & inbit != 0 && mask & m.isolated_mask != 0)
    {
        return None;
    }
    let head = memo::Head {
        vid,
        pcp,
        tagged,
        untag: m.ports[p.0 as usize].untagged_vid == vid,
        port: p.0,
    };
    Some((head, until.min(dst_until)))
}

/// The sender's side of a frame the ingress cache has no answer for.
enum Sender<'a> {
    /// The source is no VM of this guarded port: the frame is dropped.
    Spoofed,
    /// Not a VM's traffic (no VM, or a VM's address arriving on another,
    /// unguarded port): nothing to apply.
    NotVm,
    /// VSI `v`'s traffic, with its from-vm classifier answer when the frame
    /// has a flow key.
    Vm(&'a VsiFast, Option<u32>),
}

/// Who sends a frame from `src` on VLAN `vid` arriving on `inp` that the
/// ingress cache had no answer for, resolved from the snapshot, and, when
/// the frame has a flow key `fk`, the answer to store in the cache for its
/// flow (none for a spoofed frame). The classifier runs here, once per flow
/// and snapshot. The stages and the one pass both resolve here, so the
/// cache holds the same answer whichever path met the flow.
#[cold]
#[inline(never)]
fn resolve_sender<'a>(
    pol: &'a PolicySet,
    inp: PortId,
    fk: Option<&FlowKey>,
    src: u64,
    vid: u16,
) -> (Sender<'a>, Option<IngressHit>) {
    let v = match pol.vsi_fast(src, vid) {
        Some(v) if v.port == inp => v,
        _ if pol.guard_mask & (1u64 << inp.0) != 0 => return (Sender::Spoofed, None),
        _ => return (Sender::NotVm, fk.map(|_| IngressHit::not_a_vm())),
    };
    let answer = fk.map(|k| match pol.policies.get(v.policy as usize) {
        Some(p) if v.from_acl => p
            .from
            .classifier
            .classify_packed(&k.packed())
            .unwrap_or(NO_MATCH),
        _ => NO_MATCH,
    });
    (
        Sender::Vm(v, answer),
        answer.map(|a| pol.resolve_ingress(v, a)),
    )
}

// The memo's "no policy" answer is the stages' defaults.
const _: () = assert!(NO_VSI == u32::MAX && NONE == u32::MAX && KEEP == 0xff);

/// The sender's side of the flow `k` (the ingress cache's key) arriving on
/// `inp` from `src` on VLAN `vid`, for the one pass: the ingress cache's
/// answer, counted as the ACL stage counts it (`looked` counts the frame as
/// looked up), or for a flow the cache lacks, resolved and stored there as
/// the ACL stage would. None when the frame needs the stages: a spoofed
/// source, a drop, a meter, a named counter, or no cache.
#[inline(always)]
fn sender_side(
    pol: &PolicySet,
    cache: &mut IngressCache,
    looked: &mut usize,
    inp: PortId,
    k: &FlowKey,
    src: u64,
    vid: u16,
) -> Option<memo::Side> {
    let ctx = u32::from(inp.0) + 1;
    let h = match cache.get(ctx, k).copied() {
        Some(h) => h,
        None if cache.capacity() == 0 => return None,
        None => match resolve_sender(pol, inp, Some(k), src, vid) {
            (_, Some(val)) => {
                cache.put(ctx, k, val);
                val
            }
            _ => {
                // Not taken here: the stages look it up afresh.
                cache.misses -= 1;
                return None;
            }
        },
    };
    *looked += 1;
    let mut side = memo::Side::NONE;
    if h.vsi != NONE {
        if h.flags & IngressHit::SLOW != 0 || h.rule_meter & h.vsi_meter != NONE {
            return None;
        }
        if h.flags & IngressHit::POLICY != 0 {
            side.class = h.class;
        }
        if h.flags & IngressHit::ACL != 0 {
            if h.flags & IngressHit::PERMIT == 0 {
                return None;
            }
            (side.pcp, side.dscp, side.hit) = (h.pcp, h.dscp, h.hit);
        }
    }
    Some(side)
}

#[inline(always)]
fn mac_vid_key(mac: u64, vid: u16) -> u64 {
    mac | u64::from(vid) << 48
}

/// Receives the decisions of a traced run.
pub trait Tracer {
    /// False for the production path: every `note` call is compiled out.
    const ON: bool;
    /// Record one decision about frame `i` of the burst at `stage`.
    fn note(&mut self, i: usize, stage: &'static str, msg: String);
}

/// No tracing (the production path).
pub struct NoTrace;
impl Tracer for NoTrace {
    const ON: bool = false;
    #[inline(always)]
    fn note(&mut self, _: usize, _: &'static str, _: String) {}
}

/// Records every decision.
#[derive(Default, Debug)]
pub struct TraceLog {
    /// (frame index in burst, stage, decision).
    pub events: Vec<(usize, &'static str, String)>,
}
impl Tracer for TraceLog {
    const ON: bool = true;
    fn note(&mut self, i: usize, stage: &'static str, msg: String) {
        self.events.push((i, stage, msg));
    }
}

macro_rules! trace {
    ($t:expr, $i:expr, $stage:literal, $($fmt:tt)*) => {
        if T::ON { $t.note($i, $stage, format!($($fmt)*)); }
    };
}

/// What happens to a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Verdict {
    /// Still being decided.
    #[default]
    Pending,
    /// Dropped.
    Drop(DropReason),
    /// To the control plane.
    Punt,
    /// Out of the ports in the mask.
    Fwd(u64),
}

/// Per-frame scratch state, one per burst slot (reused; never allocated per burst).
#[derive(Clone, Copy)]
struct Meta {
    dst: u64,
    src: u64,
    vid: u16,
    /// Outer 802.1Q tag's PCP (0 when untagged).
    pcp: u8,
    /// The frame carries an outer 802.1Q tag (possibly priority-tagged, VID 0).
    tagged: bool,
    verdict: Verdict,
    /// Flooded or group-addressed (not a single known destination).
    flood: bool,
    /// Sending VSI (u32::MAX: none).
    src_vsi: u32,
    /// `keys[i]` holds this frame's ACL key.
    has_key: bool,
    /// Traffic class (0..=7).
    class: u8,
    /// PCP to write on egress (0xff: keep).
    set_pcp: u8,
    /// DSCP to write (0xff: keep).
    set_dscp: u8,
    /// Bridge roles: where the unicast destination was, looked up right
    /// after this frame's own source was learned (so a later frame of the
    /// same burst cannot change the answer).
    dst_port: Option<PortId>,
}

const NO_VSI: u32 = u32::MAX;
const KEEP: u8 = 0xff;

impl Default for Meta {
    fn default() -> Self {
        Meta {
            dst: 0,
            src: 0,
            vid: 0,
            pcp: 0,
            tagged: false,
            verdict: Verdict::Pending,
            flood: false,
            src_vsi: NO_VSI,
            has_key: false,
            class: 0,
            set_pcp: KEEP,
            set_dscp: KEEP,
            dst_port: None,
        }
    }
}

/// Offset of the L3 header after any 802.1Q/802.1ad tags (None if cut short).
#[inline]
fn l3_offset(d: &[u8]) -> Option<usize> {
    let mut off = 12;
    loop {
        let et = u16::from_be_bytes([*d.get(off)?, *d.get(off + 1)?]);
        if et == TPID_8021Q || et == TPID_8021AD {
            off += 4;
            continue;
        }
        return Some(off);
    }
}

/// Rewrite the DSCP of an IPv4 (checksum updated) or IPv6 header whose
/// ethertype sits at `et_off`. False when the frame is not IP or is too short.
#[inline]
fn set_dscp(d: &mut [u8], et_off: usize, dscp: u8) -> bool {
    matches!(
        (d.get(et_off), d.get(et_off + 1)),
        (Some(0x08), Some(0x00)) | (Some(0x86), Some(0xdd))
    ) && crate::qos::mark::set_dscp(d, et_off + 2, dscp)
}

/// Per port: frames staged past its scheduler without being queued (see
/// [`crate::qos::sched::Sched::credit_direct`]), and how many may be.
#[derive(Clone, Copy, Default)]
struct Direct {
    /// Frames one burst may stage past the empty scheduler ([`bypass_cap`];
    /// 0: never). Set with the scheduler, kept across bursts.
    cap: u32,
    /// Frames staged in this burst (the port's whole TX staging while > 0).
    frames: u32,
    /// Their class.
    class: u8,
}

/// Frames of one class that may pass an empty scheduler of `cfg` in one
/// burst: none with a shaper (or no scheduler), else as many as the
/// smallest class depth and the port's TX staging (`staging`) both hold, so
/// a staged run never exceeds what its queue would have taken.
fn bypass_cap(cfg: Option<&crate::qos::sched::SchedConfig>, staging: usize) -> u32 {
    match cfg {
        Some(c) if c.shaper.is_none() => {
            let depth = c.depth.iter().copied().min().unwrap_or(0);
            depth.min(u32::try_from(staging).unwrap_or(u32::MAX))
        }
        _ => 0,
    }
}

/// What to apply to one egress copy: class and rewrites.
#[derive(Clone, Copy)]
struct Fix {
    class: u8,
    pcp: u8,
    dscp: u8,
}

/// A frame's classified tag, as egress writes it: VID, PCP and whether the
/// frame arrived with an outer 802.1Q tag.
#[derive(Clone, Copy)]
struct Tag {
    vid: u16,
    pcp: u8,
    tagged: bool,
}

impl Meta {
    #[inline(always)]
    fn tag(&self) -> Tag {
        Tag {
            vid: self.vid,
            pcp: self.pcp,
            tagged: self.tagged,
        }
    }
}

/// What [`Pipeline::known_unicast`] decided for one frame: all that
/// [`Pipeline::transmit_known`] and the rule counters need (16 bytes, where
/// a [`Meta`] takes 56): the memo's answer and the frame's length.
#[derive(Clone, Copy)]
struct FastOut {
    ans: memo::Answer,
    len: u32,
}

impl FastOut {
    const NONE: FastOut = FastOut {
        ans: memo::Answer::NONE,
        len: 0,
    };

    #[inline(always)]
    fn tag(&self) -> Tag {
        Tag {
            vid: self.ans.vid(),
            pcp: self.ans.pcp(),
            tagged: self.ans.tagged(),
        }
    }

    #[inline(always)]
    fn fix(&self) -> Fix {
        Fix {
            class: self.ans.class(),
            pcp: self.ans.set_pcp(),
            dscp: self.ans.set_dscp(),
        }
    }
}

/// `rule[i]` or `default`, for traces.
fn rule_name(idx: Option<usize>) -> String {
    match idx {
        Some(r) => format!("rule[{r}]"),
        None => "default".into(),
    }
}

#[inline(always)]
fn count_action(hits: &mut [[u64; 2]], named: &mut [[u64; 2]], a: &RuleAction, len: usize) {
    let h = &mut hits[a.hit as usize];
    h[0] += 1;
    h[1] += len as u64;
    if let Some(c) = a.counter {
        let h = &mut named[c as usize];
        h[0] += 1;
        h[1] += len as u64;
    }
}

/// Meters: the matching rule's, then the VM's own (hairpinned and uplink
/// traffic alike); [`NONE`] entries are skipped. A red frame whose action is
/// drop gets its verdict here.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn police<T: Tracer>(
    pol: &crate::policy::PolicySet,
    meters: &mut [crate::qos::meter::MeterCache],
    me: &mut Meta,
    which: [u32; 2],
    now_ns: u64,
    len: usize,
    t: &mut T,
    i: usize,
) {
    for m in which {
        if m == NONE {
            continue;
        }
        let m = m as usize;
        // Green with local tokens on a colour-blind meter: transmit (a trace
        // takes the full path to name the colour).
        if !T::ON && meters[m].try_green(len as u32) {
            continue;
        }
        let pre = match me.tagged.then(|| pol.meter_yellow_pcp[m]) {
            Some(Some(p)) if me.pcp == p => Color::Yellow,
            _ => Color::Green,
        };
        let (c, act) = meters[m].police(now_ns, len as u32, pre);
        trace!(
            t,
            i,
            "meter",
            "{}: {} → {act:?}",
            pol.meter_instances[m].1,
            c.name()
        );
        match act {
            MeterAction::Transmit => {}
            MeterAction::Remark { pcp, dscp } => {
                if let Some(x) = pcp {
                    me.set_pcp = x;
                }
                if let Some(x) = dscp {
                    me.set_dscp = x;
                }
            }
            MeterAction::Drop => {
                me.verdict = Verdict::Drop(DropReason::MeterDrop);
                return;
            }
        }
    }
}

/// The receiver side of the policy for the copy of frame `i` (state `me`,
/// bytes `frame`) going to port `p`. A unicast copy is judged by its
/// destination VM's to-vm rules (and may get that rule's class and
/// rewrites); a group copy goes out when at least one VM of that port and
/// VLAN (other than the sender) permits it. A copy with no receiver VM meets
/// only the sender's rules. `Err` = denied. The ACL key is built at most once
/// per frame (`me.has_key`).
#[inline]
#[allow(clippy::too_many_arguments)]
fn judge_receiver<T: Tracer>(
    pol: &crate::policy::PolicySet,
    p: usize,
    i: usize,
    me: &mut Meta,
    key: &mut PackedKey,
    flows: &mut FlowCache,
    frame: &[u8],
    hits: &mut [[u64; 2]],
    named: &mut [[u64; 2]],
    t: &mut T,
) -> Result<Option<RuleAction>, ()> {
    let one;
    let unicast = me.dst & GROUP_BIT == 0;
    let receivers: &[u32] = if unicast {
        match pol.vsi_fast(me.dst, me.vid) {
            Some(v) if v.port.0 as usize == p => {
                if v.idx == me.src_vsi || !v.to_acl {
                    // The sender itself (only its rules apply) or a VM that permits everything.
                    return Ok(None);
                }
                one = [v.idx];
                &one
            }
            _ => return Ok(None),
        }
    } else {
        match pol.port_vlan_index.get(p as u64, me.vid) {
            Some(l) => &pol.port_vlan_lists[l as usize],
            None => return Ok(None),
        }
    };
    // No receiver VM other than the sender: only the sender's rules apply.
    let mut any_permit = receivers.iter().all(|&r| r == me.src_vsi);
    for &r in receivers {
        if me.src_vsi == r {
            continue;
        }
        let v = &pol.fast[r as usize];
        if !v.to_acl {
            any_permit = true;
            continue;
        }
        let pp = &pol.policies[v.policy as usize];
        if !me.has_key {
            *key = PackedKey::from_frame(frame, me.vid, me.pcp);
            me.has_key = true;
        }
        let (a, idx) = pp.to.decide(flows, v.policy, 1, key);
        if T::ON {
            let what = rule_name(idx);
            trace!(
                t,
                i,
                "acl",
                "policy {} to-vm ({}): {what} → {}",
                pp.name,
                pol.vsis[r as usize].name,
                if a.permit { "permit" } else { "deny" }
            );
        }
        count_action(hits, named, a, frame.len());
        if a.permit {
            if unicast {
                return Ok(Some(*a));
            }
            any_permit = true;
        }
    }
    if any_permit {
        Ok(None)
    } else {
        Err(())
    }
}

/// The shared parts of one switch instance.
pub struct Switch {
    /// Compiled configuration as it was at start (the current one is in `cell`).
    pub model: Arc<Model>,
    /// The current snapshot; replaced on reload.
    pub cell: Arc<SnapshotCell>,
    /// The FDB (shared by all workers of this switch; survives reloads).
    pub fdb: Arc<Fdb>,
    /// The buffer pool.
    pub pool: Arc<Pool>,
}

impl Switch {
    /// Put the parts together.
    pub fn new(model: Model, fdb: Arc<Fdb>, pool: Arc<Pool>) -> Switch {
        let model = Arc::new(model);
        Switch {
            cell: Arc::new(SnapshotCell::new(model.clone())),
            model,
            fdb,
            pool,
        }
    }
}

/// Borrowed view of one pipeline's policy counters (see [`Pipeline::policy_view`]).
pub struct PolicyView<'a> {
    /// The snapshot the current counters are indexed by.
    pub model: &'a Arc<Model>,
    /// Rule hits (packets, bytes) by `model.policy.hit_names`.
    pub hits: &'a [[u64; 2]],
    /// Named counters by `model.policy.counter_names`.
    pub named: &'a [[u64; 2]],
    /// Hits of earlier snapshots, by name.
    pub hits_before: &'a std::collections::BTreeMap<String, [u64; 2]>,
    /// Meter colour counts of earlier snapshots, by meter instance name.
    pub meter_before: &'a std::collections::BTreeMap<String, [u64; 3]>,
    /// This core's meter leases, by `model.policy.meter_instances`.
    pub meters: &'a [crate::qos::meter::MeterCache],
    /// Egress schedulers by port.
    pub sched: &'a [Option<crate::qos::sched::Sched>],
}

/// One worker's pipeline for one switch instance.
pub struct Pipeline {
    model: Arc<Model>,
    /// This core's leases on the snapshot's meters, by meter instance.
    meters: Vec<crate::qos::meter::MeterCache>,
    /// Per-port egress schedulers (ports with `[port.egress]`).
    sched: Vec<Option<crate::qos::sched::Sched>>,
    /// Ports whose scheduler holds frames.
    backlog: u64,
    /// Per port: frames of one class staged past an empty, unshaped
    /// scheduler in this burst (credited to it at the flush), and the cap.
    direct: Vec<Direct>,
    /// Switch clock of the current burst, ns.
    now_ns: u64,
    cell: Arc<SnapshotCell>,
    keys: Vec<PackedKey>,
    /// This core's exact-match cache of classifier answers (emptied at each new snapshot).
    flows: FlowCache,
    /// (ingress port, frame's [`FlowKey`]) → everything the sender's side of
    /// the policy decides ([`IngressHit`]) for the fast IPv4 frames on ports
    /// with from-vm rules: one cache line instead of the VSI map, the packed
    /// key, `flows` and the rule's action.
    ingress_flows: IngressCache,
    /// Per-rule hits (packets, bytes), indexed by `RuleAction::hit` of the current snapshot.
    pub hits: Vec<[u64; 2]>,
    /// Named counters (packets, bytes), indexed like `PolicySet::counter_names`.
    pub named: Vec<[u64; 2]>,
    /// Hits of earlier snapshots, by name (folded in at each reload).
    pub hits_before: std::collections::BTreeMap<String, [u64; 2]>,
    /// Meter colour counts of earlier snapshots, by meter instance name.
    meter_before: std::collections::BTreeMap<String, [u64; 3]>,
    fdb: Arc<Fdb>,
    pool: Arc<Pool>,
    cache: PoolCache,
    meta: Vec<Meta>,
    txq: Vec<Burst>,
    dirty: u64,
    punt: Option<Producer>,
    /// Per-ingress-port punt queues (the 802.1Qbg control thread's); `punt` for other ports.
    port_punt: Vec<Producer>,
    /// Core counters.
    pub ctr: CoreCounters,
    /// Per-port counters (rx on ports this core polls, tx on all).
    pub port_ctr: Vec<PortCounters>,
    /// Live capture (`hairpin capture`): one mask test per burst while off.
    cap: Option<crate::capture::Tap>,
    /// Ingress port of the burst being processed (drops charged to it).
    cur_in: usize,
    /// Bursts of plain known unicast take [`Pipeline::known_unicast`] (off: every burst is staged).
    fast: bool,
    /// Bursts that took the known-unicast path.
    pub fast_bursts: u64,
    /// Of those, bursts of one flow (every frame took frame 0's decision).
    pub one_flow_bursts: u64,
    /// Of those, bursts that went unchanged to one port, moved to its staging whole.
    pub whole_bursts: u64,
    /// The one pass's decision per frame; its rule hits are counted once
    /// the whole burst has passed.
    fast_out: Vec<FastOut>,
    /// Frames of the current burst whose ingress-cache lookup the one pass
    /// counted before it left the burst to the stages (0 otherwise).
    fast_looked: usize,
    /// The burst that passed [`Pipeline::known_unicast`] is one flow: every
    /// frame takes frame 0's decision (`fast_out[0]`).
    fast_one_flow: bool,
    /// Without policy, the first 18 bytes of each frame the one pass decides.
    memo_keys: Vec<memo::Head18>,
    /// With policy, each such frame's flow memo key.
    flow_keys: Vec<memo::FlowWords>,
    /// Each such frame's set in the memo it uses ([`memo::Memo::locate`]).
    memo_sets: Vec<u32>,
    /// The one pass's answers per (ingress port, first 18 bytes), without
    /// policy.
    memo: memo::Memo<memo::Head18>,
    /// With policy: per (ingress port, flow key with the raw tag), the
    /// header's and the sender side's answers.
    flow_memo: memo::Memo<memo::FlowWords>,
    /// Every frame of the burst that passed [`Pipeline::known_unicast`]
    /// goes to one port and leaves as it came: no tag to push or pop, no
    /// PCP or DSCP to write.
    fast_plain: bool,
}

impl Pipeline {
    /// A pipeline over `sw`; punted frames go to `punt` (or are counted and freed when `None`).
    pub fn new(sw: &Switch, punt: Option<Producer>) -> Pipeline {
        let n = sw.model.ports.len();
        let b = sw.model.burst.max(1);
        let model = sw.cell.load();
        Pipeline {
            meters: model
                .policy
                .meters
                .iter()
                .map(|m| crate::qos::meter::MeterCache::new(m.clone()))
                .collect(),
            sched: model
                .ports
                .iter()
                .map(|p| {
                    p.egress.map(|c| {
                        crate::qos::sched::Sched::new(c, 0).expect("validated egress config")
                    })
                })
                .collect(),
            backlog: 0,
            direct: model
                .ports
                .iter()
                .map(|p| Direct {
                    cap: bypass_cap(p.egress.as_ref(), b * 2),
                    ..Direct::default()
                })
                .collect(),
            now_ns: 0,
            hits: vec![[0; 2]; model.policy.hit_names.len()],
            named: vec![[0; 2]; model.policy.counter_names.len()],
            hits_before: Default::default(),
            meter_before: Default::default(),
            keys: vec![PackedKey::default(); b],
            flows: FlowCache::new(sw.model.flow_cache),
            ingress_flows: IngressCache::new(sw.model.flow_cache),
            cell: sw.cell.clone(),
            model,
            fdb: sw.fdb.clone(),
            pool: sw.pool.clone(),
            cache: PoolCache::new(),
            meta: vec![Meta::default(); b],
            txq: (0..n).map(|_| Burst::new(b * 2)).collect(),
            dirty: 0,
            punt,
            port_punt: Vec::new(),
            ctr: CoreCounters::default(),
            port_ctr: vec![PortCounters::default(); n],
            cap: None,
            cur_in: 0,
            fast: true,
            fast_bursts: 0,
            one_flow_bursts: 0,
            whole_bursts: 0,
            fast_out: vec![FastOut::NONE; b],
            fast_looked: 0,
            fast_one_flow: false,
            memo_keys: vec![(0, 0, 0); b],
            flow_keys: vec![[0; 4]; b],
            memo_sets: vec![0; b],
            memo: memo::Memo::new(),
            flow_memo: memo::Memo::new(),
            fast_plain: false,
        }
    }

    /// The one pass's memos of decisions (both kinds): answers used,
    /// answers found no longer standing (an FDB write, an entry's time),
    /// frames decided again (the stale ones included).
    pub fn memo_counts(&self) -> (u64, u64, u64) {
        let (a, b) = (&self.memo, &self.flow_memo);
        (a.hits + b.hits, a.stale + b.stale, a.misses + b.misses)
    }

    /// Let bursts of plain known unicast take the one-pass path (the
    /// default), or stage every burst (for comparing the two).
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast = on;
    }

    /// Copy frames to live captures through `tap` (see [`crate::capture`]).
    pub fn set_capture(&mut self, tap: Option<crate::capture::Tap>) {
        self.cap = tap;
    }

    /// Punt frames from port `i` to `queues[i]` (so the control thread knows
    /// the ingress port); ports beyond the list keep the queue given to `new`.
    pub fn set_port_punts(&mut self, queues: Vec<Producer>) {
        self.port_punt = queues;
    }

    /// The model in use.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Run one received burst from port `inp` through every stage; frames
    /// leave through `tx` (indexed by port id). `now_ms` is the switch clock.
    #[inline]
    pub fn process<T: Tracer>(
        &mut self,
        inp: PortId,
        burst: &mut Burst,
        now_ms: u64,
        tx: &mut [Box<dyn PortQueue>],
        t: &mut T,
    ) {
        self.process_at(inp, burst, now_ms * 1_000_000, tx, t)
    }

    /// As [`Pipeline::process`], with the clock in nanoseconds (meters and shapers use it).
    #[inline]
    pub fn process_at<T: Tracer>(
        &mut self,
        inp: PortId,
        burst: &mut Burst,
        now_ns: u64,
        tx: &mut [Box<dyn PortQueue>],
        t: &mut T,
    ) {
        self.now_ns = now_ns;
        self.cur_in = inp.0 as usize;
        let now_ms = now_ns / 1_000_000;
        let n = burst.len();
        if n == 0 {
            return;
        }
        debug_assert!(n <= self.meta.len());
        if self.cell.generation() != self.model.gen {
            self.refresh();
        }
        if let Some(c) = &self.cap {
            if c.on(crate::capture::RX, inp.0 as usize) {
                c.copy_rx(inp.0 as usize, burst.as_slice(), &self.pool, now_ns);
            }
        }
        if !T::ON && self.fast && self.known_unicast(inp, burst, now_ms) {
            self.fast_bursts += 1;
            self.one_flow_bursts += u64::from(self.fast_one_flow);
            self.transmit_known(inp, burst, tx, t);
        } else {
            self.ingress(inp, burst, t);
            if self.model.policy.active {
                self.guard_and_acl(inp, burst, t);
            }
            self.learn(inp, n, now_ms, t);
            match self.model.role {
                Role::EdgeVepa => self.forward_vepa(inp, n, t),
                _ => self.forward_bridge(inp, n, t),
            }
            self.transmit(inp, burst, tx, t);
        }
        if self.model.policy.active {
            self.ctr.flow_cache_hits = self.flows.hits + self.ingress_flows.hits;
            self.ctr.flow_cache_misses = self.flows.misses + self.ingress_flows.misses;
        }
    }

    /// Stages 1–3 in one pass for a burst in which every frame is plain
    /// known unicast: a forwarding port that is not locked (nor an edge's
    /// uplink), an untagged or single 802.1Q-tagged frame of a VLAN of the
    /// port, a source already known and fresh on this port (learning would
    /// write nothing) and a destination in the FDB on a port that may send
    /// it. With policy: a port with from-vm rules, no to-vm rules anywhere,
    /// and every frame a fast IPv4 frame whose sender-side answer (from the
    /// ingress cache, or resolved and stored there as the ACL stage would)
    /// permits and meters nothing. Fills `fast_out` (per frame: egress
    /// port, tag, class and rewrites, rule hit, length; `meta` is the
    /// stages' and is not written) and counts the burst received, its rule
    /// hits and its cache lookups. Returns false at the first frame that
    /// needs the stages, having changed nothing they read but the cache
    /// lookups of the
    /// first `fast_looked` frames (counted, and stored when resolved), which
    /// the ACL stage then does not repeat: the burst is staged as usual.
    /// Reads the FDB only, so each frame sees what the stages would have
    /// shown it. A burst whose frames all have frame 0's first 18 bytes
    /// (and, with policy, its flow key) is one flow: frame 0 is decided
    /// (only `fast_out[0]` is filled), the others are only length-checked and
    /// take its decision and its rule. What a frame's 18 bytes decided is
    /// remembered in the header memo (`memo`), also when a later frame
    /// sends the burst to the stages: it is the FDB's answer until the FDB
    /// is written or the answer's time comes. With policy the flow memo
    /// (`flow_memo`) remembers it per flow key instead, with the sender
    /// side, for frames that may take the one pass.
    #[inline]
    fn known_unicast(&mut self, inp: PortId, burst: &Burst, now_ms: u64) -> bool {
        if self.model.policy.active {
            self.known_unicast_as::<true>(inp, burst, now_ms)
        } else {
            self.known_unicast_as::<false>(inp, burst, now_ms)
        }
    }

    /// [`Pipeline::known_unicast`] for a snapshot with (`POLICY`) or
    /// without an active policy: one loop each, no policy test per frame.
    #[inline]
    fn known_unicast_as<const POLICY: bool>(
        &mut self,
        inp: PortId,
        burst: &Burst,
        now_ms: u64,
    ) -> bool {
        self.fast_looked = 0;
        let m = &*self.model;
        let ip = inp.0 as usize;
        let port = &m.ports[ip];
        let pol = &m.policy;
        if (POLICY && (pol.any_to_acl || pol.from_acl_mask & (1u64 << ip) == 0))
            || m.role == Role::EdgeVepa
            || (m.role == Role::EdgeVeb && port.uplink)
            || port.state != PortState::Forwarding
            || port.locked
        {
            return false;
        }
        let fdb = &*self.fdb;
        // Taken before this burst reads the FDB: an answer remembered with
        // it stands while nothing writes the FDB (see `memo`).
        let epoch = fdb.epoch();
        let mut bytes = 0u64;
        let frames = burst.as_slice();
        // A frame's decision here follows from its first 18 bytes (addresses,
        // tag, inner ethertype), its length and, with policy, its flow key
        // (the ingress cache's key). When every frame has frame 0's (one
        // flow, as from a single-stream generator), frame 0 is decided and
        // the others only have their length checked. Traffic of many flows
        // pays one compare a burst.
        let rest = one_flow_rest(&self.pool, frames, POLICY);
        let one_flow = rest.is_some();
        let decide = if one_flow { &frames[..1] } else { frames };
        // The egress ports the frames go to, ANDed (one bit each: zero when
        // two frames go to different ports), and whether egress would leave
        // every frame as it came.
        let (mut same_port, mut plain) = (u64::MAX, true);
        // First every frame's memo key and set, whose lines are asked for
        // here: the lookups below then wait for none of them in turn.
        for (i, b) in decide.iter().enumerate() {
            let d = self.pool.data(b);
            // With policy the key is the flow key taken with the raw tag
            // (TCI, and which TPID), which holds the 18 bytes' part too.
            // Frames without one (too short, not plain IPv4 TCP/UDP) and,
            // without policy, frames shorter than 18 bytes (runts, cut
            // tags) go the staged way.
            self.memo_sets[i] = if POLICY {
                if d.len() < FlowKey::MIN_FRAME {
                    return false;
                }
                let (tci, kind) = match u16::from_be_bytes([d[12], d[13]]) {
                    TPID_8021Q => (u16::from_be_bytes([d[14], d[15]]), 1),
                    TPID_8021AD => (u16::from_be_bytes([d[14], d[15]]), 2),
                    _ => (0, 0),
                };
                let Some(k) = FlowKey::from_frame(d, tci, kind) else {
                    return false;
                };
                let w = k.words();
                self.flow_keys[i] = w;
                self.flow_memo.locate(inp.0, &w)
            } else {
                let Some(h) = head18(d) else {
                    return false;
                };
                self.memo_keys[i] = h;
                self.memo.locate(inp.0, &h)
            } as u32;
        }
        let mtu = m.mtu;
        for (i, b) in decide.iter().enumerate() {
            let len = b.len();
            let si = self.memo_sets[i] as usize;
            // What the key decides, from the memo while its answer stands,
            // else decided (and remembered) by `fast_miss`.
            let got = if POLICY {
                self.flow_memo
                    .get_in(si, inp.0, &self.flow_keys[i], now_ms, epoch)
            } else {
                self.memo
                    .get_in(si, inp.0, &self.memo_keys[i], now_ms, epoch)
            };
            let len32 = len as u32;
            let (port, as_it_came) = match got {
                Some((ans, as_it_came)) => {
                    // Oversize frames are the stages' (dropped before the
                    // ACL stage looks anything up).
                    if len > mtu + if ans.tagged() { 4 } else { 0 } {
                        return false;
                    }
                    // Copied whole from the memo's line.
                    self.fast_out[i] = FastOut {
                        ans: *ans,
                        len: len32,
                    };
                    if POLICY {
                        // The ingress cache's answer, remembered: counted as
                        // its hit, and the stages do not look it up again.
                        self.ingress_flows.hits += 1;
                        self.fast_looked += 1;
                    }
                    (ans.port(), as_it_came)
                }
                None => match self.fast_miss::<POLICY>(i, b, inp, now_ms, epoch) {
                    Some((ans, as_it_came)) => {
                        self.fast_out[i] = FastOut { ans, len: len32 };
                        (ans.port(), as_it_came)
                    }
                    None => return false,
                },
            };
            plain &= as_it_came;
            same_port &= 1u64 << port;
            bytes += len as u64;
        }
        if let Some((rest_bytes, rest_max)) = rest {
            if rest_max > mtu + if self.fast_out[0].ans.tagged() { 4 } else { 0 } {
                return false;
            }
            bytes += rest_bytes;
        }
        self.fast_looked = 0;
        self.fast_one_flow = one_flow;
        self.fast_plain = plain && same_port != 0;
        let n = burst.len();
        if POLICY {
            // One flow: frames 1.. found frame 0's answer.
            self.ingress_flows.hits += (n - decide.len()) as u64;
            for &FastOut { ans, len } in &self.fast_out[..decide.len()] {
                let hit = ans.hit();
                if hit != NONE {
                    let c = &mut self.hits[hit as usize];
                    c[0] += 1;
                    c[1] += u64::from(len);
                }
            }
            // One flow: frames 1.. hit frame 0's rule.
            if let (Some((rest_bytes, _)), hit) = (rest, self.fast_out[0].ans.hit()) {
                if hit != NONE {
                    let c = &mut self.hits[hit as usize];
                    c[0] += n as u64 - 1;
                    c[1] += rest_bytes;
                }
            }
        }
        self.count_rx(ip, n as u64, bytes);
        true
    }

    /// [`Pipeline::known_unicast_as`]'s decision of frame `i` (`b`), which
    /// the memo did not answer: the header from the FDB, the length against
    /// the MTU, with policy the sender side (counted in `fast_looked`), and
    /// the answer remembered. None: the frame needs the stages. Kept out of
    /// line: the loop's registers then serve the memo's answers (about 5
    /// cycles a frame less with policy, `examples/policy_profile`).
    #[inline(never)]
    fn fast_miss<const POLICY: bool>(
        &mut self,
        i: usize,
        b: &PktBuf,
        inp: PortId,
        now_ms: u64,
        epoch: u64,
    ) -> Option<(memo::Answer, bool)> {
        let m = &*self.model;
        let d = self.pool.data(b);
        let si = self.memo_sets[i] as usize;
        let (hd, until) = decide_head(m, &self.fdb, inp, d, now_ms)?;
        // Oversize frames are the stages' (dropped before the ACL stage
        // looks anything up).
        if d.len() > m.mtu + if hd.tagged { 4 } else { 0 } {
            return None;
        }
        if POLICY {
            let fw = &self.flow_keys[i];
            // At least `FlowKey::MIN_FRAME` bytes.
            let src = d[6..12].iter().fold(0, |a, &b| a << 8 | u64::from(b));
            let k = FlowKey::from_words(*fw).with_tag(hd.vid, hd.pcp);
            let cache = &mut self.ingress_flows;
            let side = sender_side(
                &m.policy,
                cache,
                &mut self.fast_looked,
                inp,
                &k,
                src,
                hd.vid,
            )?;
            self.flow_memo.put_in(si, inp.0, fw, hd, side, until, epoch);
            Some(memo::Answer::of(hd, side))
        } else {
            let side = memo::Side::NONE;
            self.memo
                .put_in(si, inp.0, &self.memo_keys[i], hd, side, until, epoch);
            Some(memo::Answer::of(hd, side))
        }
    }

    /// A burst received on port `ip`: core and port counters.
    #[inline(always)]
    fn count_rx(&mut self, ip: usize, frames: u64, bytes: u64) {
        self.ctr.rx_pkts += frames;
        self.ctr.rx_bytes += bytes;
        let pc = &mut self.port_ctr[ip];
        pc.rx_pkts += frames;
        pc.rx_bytes += bytes;
    }

    /// Stage 4 for a burst [`Pipeline::known_unicast`] passed: one egress
    /// port per frame. A burst whose frames all go unchanged to one port
    /// without a scheduler moves to its staging whole, when it fits.
    #[inline]
    fn transmit_known<T: Tracer>(
        &mut self,
        inp: PortId,
        burst: &mut Burst,
        tx: &mut [Box<dyn PortQueue>],
        t: &mut T,
    ) {
        if self.fast_plain {
            // One port, nothing to change: the burst moves to its staging at once.
            let p = usize::from(self.fast_out[0].ans.port());
            let n = burst.len() as u64;
            if self.sched[p].is_none() && self.txq[p].append(burst) {
                if p == inp.0 as usize {
                    self.ctr.reflected += n;
                }
                self.whole_bursts += 1;
                self.dirty |= 1 << p;
                self.flush(tx);
                return;
            }
        }
        let one_flow = self.fast_one_flow;
        for (i, b) in burst.drain().enumerate() {
            let o = self.fast_out[if one_flow { 0 } else { i }];
            let p = usize::from(o.ans.port());
            if p == inp.0 as usize {
                self.ctr.reflected += 1;
            }
            self.egress(p, b, o.tag(), o.fix(), tx, t, i);
        }
        self.flush(tx);
    }

    /// Stage 1: parse the L2 header once, recognise control frames, check the source, classify the VLAN.
    #[inline]
    fn ingress<T: Tracer>(&mut self, inp: PortId, burst: &Burst, t: &mut T) {
        let m = &*self.model;
        let port = &m.ports[inp.0 as usize];
        // Counted once per burst: every frame of it is received, whatever its verdict.
        let frames = burst.len() as u64;
        let mut bytes = 0u64;
        for (i, b) in burst.as_slice().iter().enumerate() {
            let d = self.pool.data(b);
            let len = d.len();
            bytes += len as u64;
            let me = &mut self.meta[i];
            *me = Meta::default();
            if port.state == PortState::Disabled {
                me.verdict = Verdict::Drop(DropReason::PortState);
                trace!(t, i, "ingress", "port {} is disabled", port.name);
                continue;
            }
            if len < 14 {
                me.verdict = Verdict::Drop(DropReason::Runt);
                trace!(
                    t,
                    i,
                    "parse",
                    "{len} bytes: shorter than an Ethernet header"
                );
                continue;
            }
            let dst = u64::from_be_bytes([0, 0, d[0], d[1], d[2], d[3], d[4], d[5]]);
            let src = u64::from_be_bytes([0, 0, d[6], d[7], d[8], d[9], d[10], d[11]]);
            let mut et = u16::from_be_bytes([d[12], d[13]]);
            let mut tags = 0usize;
            me.dst = dst;
            me.src = src;
            if et == TPID_8021Q || et == TPID_8021AD {
                if len < 18 {
                    me.verdict = Verdict::Drop(DropReason::BadVlan);
                    trace!(t, i, "parse", "VLAN tag cut short ({len} bytes)");
                    continue;
                }
                let tci = u16::from_be_bytes([d[14], d[15]]);
                tags = 1;
                if et == TPID_8021Q {
                    me.tagged = true;
                    me.vid = tci & 0xfff;
                    me.pcp = (tci >> 13) as u8;
                    if me.vid == 0xfff {
                        me.verdict = Verdict::Drop(DropReason::BadVlan);
                        trace!(t, i, "parse", "VID 4095 is reserved");
                        continue;
                    }
                }
                et = u16::from_be_bytes([d[16], d[17]]);
                if et == TPID_8021Q || et == TPID_8021AD {
                    if len < 22 {
                        me.verdict = Verdict::Drop(DropReason::BadVlan);
                        trace!(t, i, "parse", "inner VLAN tag cut short ({len} bytes)");
                        continue;
                    }
                    tags = 2;
                    et = u16::from_be_bytes([d[20], d[21]]);
                }
            }
            if len > m.mtu + 4 * tags {
                me.verdict = Verdict::Drop(DropReason::Oversize);
                trace!(
                    t,
                    i,
                    "parse",
                    "{len} bytes > mtu {} (+{} for tags)",
                    m.mtu,
                    4 * tags
                );
                continue;
            }
            if T::ON {
                trace!(
                    t,
                    i,
                    "parse",
                    "dst {} src {} {}ethertype {et:#06x}, {len} bytes",
                    Mac::from_u64(dst),
                    Mac::from_u64(src),
                    if me.tagged {
                        format!("802.1Q vid {} pcp {} ", me.vid, me.pcp)
                    } else {
                        String::new()
                    }
                );
            }
            // Control frames: IEEE reserved group addresses, LLDP, ECP, our own MAC.
            if dst & !0xf == 0x0180_c200_0000 {
                if dst == 0x0180_c200_0001 {
                    me.verdict = Verdict::Drop(DropReason::Pause);
                    trace!(t, i, "ingress", "pause frame: dropped, never forwarded");
                } else {
                    me.verdict = Verdict::Punt;
                    trace!(
                        t,
                        i,
                        "ingress",
                        "reserved address {}: to the control plane",
                        Mac::from_u64(dst)
                    );
                }
                continue;
            }
            if et == ETH_LLDP || et == ETH_ECP {
                me.verdict = Verdict::Punt;
                trace!(
                    t,
                    i,
                    "ingress",
                    "ethertype {et:#06x} (LLDP/ECP): to the control plane"
                );
                continue;
            }
            if dst == m.own_mac {
                me.verdict = Verdict::Punt;
                trace!(
                    t,
                    i,
                    "ingress",
                    "addressed to the switch itself: delivered locally"
                );
                continue;
            }
            if src & GROUP_BIT != 0 || src == 0 {
                me.verdict = Verdict::Drop(DropReason::BadSrcMac);
                trace!(
                    t,
                    i,
                    "ingress",
                    "source {} is a group or zero address",
                    Mac::from_u64(src)
                );
                continue;
            }
            // VLAN classification: tagged frames keep their VID, untagged and priority-tagged get the PVID.
            if !me.tagged || me.vid == 0 {
                if port.pvid == 0 {
                    me.verdict = Verdict::Drop(DropReason::VlanIngress);
                    trace!(
                        t,
                        i,
                        "ingress",
                        "untagged on trunk {} with no native VLAN",
                        port.name
                    );
                    continue;
                }
                me.vid = port.pvid;
            }
            if !port.vlans.contains(me.vid) {
                me.verdict = Verdict::Drop(DropReason::VlanIngress);
                trace!(
                    t,
                    i,
                    "ingress",
                    "VLAN {} is not a VLAN of port {}",
                    me.vid,
                    port.name
                );
                continue;
            }
            if port.state == PortState::Blocking {
                me.verdict = Verdict::Drop(DropReason::PortState);
                trace!(t, i, "ingress", "port {} is blocking", port.name);
                continue;
            }
            trace!(t, i, "ingress", "port {} VLAN {}", port.name, me.vid);
        }
        self.count_rx(inp.0 as usize, frames, bytes);
    }

    /// Take the newest snapshot (between bursts). Hit counters of the old one are kept by name.
    #[cold]
    pub fn refresh(&mut self) {
        let new = self.cell.load();
        for (i, name) in self.model.policy.hit_names.iter().enumerate() {
            let h = self.hits[i];
            let e = self.hits_before.entry(name.clone()).or_insert([0, 0]);
            e[0] += h[0];
            e[1] += h[1];
        }
        for (i, name) in self.model.policy.counter_names.iter().enumerate() {
            let h = self.named[i];
            let e = self
                .hits_before
                .entry(format!("counter.{name}"))
                .or_insert([0, 0]);
            e[0] += h[0];
            e[1] += h[1];
        }
        self.flows.clear();
        self.ingress_flows.clear();
        self.memo.clear();
        self.flow_memo.clear();
        self.hits = vec![[0; 2]; new.policy.hit_names.len()];
        self.named = vec![[0; 2]; new.policy.counter_names.len()];
        for (i, m) in self.meters.iter().enumerate() {
            let st = m.stats();
            let name = self
                .model
                .policy
                .meter_instances
                .get(i)
                .map(|x| x.1.clone())
                .unwrap_or_default();
            let e = self.meter_before.entry(name).or_insert([0; 3]);
            for (x, y) in e.iter_mut().zip(st.pkts) {
                *x += y;
            }
        }
        self.meters = new
            .policy
            .meters
            .iter()
            .map(|m| crate::qos::meter::MeterCache::new(m.clone()))
            .collect();
        for (p, port) in new.ports.iter().enumerate() {
            let old = self.sched[p].as_ref().map(|s| *s.config());
            if old == port.egress {
                continue;
            }
            let mut fresh = port
                .egress
                .map(|c| crate::qos::sched::Sched::new(c, self.now_ns).expect("validated"));
            if let Some(mut s) = self.sched[p].take() {
                // Frames queued under the old settings move to the new queues (class kept as 0: their
                // class is not stored), or go out unscheduled at the next flush.
                let q = &mut self.txq[p];
                let (pool, cache, ctr) = (&self.pool, &mut self.cache, &mut self.ctr);
                let pc = &mut self.port_ctr[p];
                s.drain(|b| match fresh.as_mut() {
                    Some(f) => {
                        let len = b.len() as u32;
                        if let Err(crate::qos::sched::Dropped(b)) = f.enqueue(0, b, len) {
                            ctr.drop(DropReason::QueueFull);
                            pc.drops[DropReason::QueueFull as usize] += 1;
                            cache.free(pool, b);
                        }
                    }
                    None => {
                        if let Err(b) = q.push(b) {
                            ctr.drop(DropReason::TxFull);
                            pc.drops[DropReason::TxFull as usize] += 1;
                            pc.tx_full += 1;
                            cache.free(pool, b);
                        }
                    }
                });
                self.dirty |= 1 << p;
            }
            self.direct[p].cap = bypass_cap(port.egress.as_ref(), self.txq[p].capacity());
            // The bit follows what the (new) scheduler holds.
            if fresh.as_ref().is_some_and(|f| !f.is_empty()) {
                self.backlog |= 1 << p;
            } else {
                self.backlog &= !(1 << p);
            }
            self.sched[p] = fresh;
        }
        self.model = new;
    }

    /// Rule hits so far, by name (current snapshot plus earlier ones).
    pub fn rule_hits(&self) -> std::collections::BTreeMap<String, [u64; 2]> {
        let mut m = self.hits_before.clone();
        for (i, name) in self.model.policy.hit_names.iter().enumerate() {
            let e = m.entry(name.clone()).or_insert([0, 0]);
            e[0] += self.hits[i][0];
            e[1] += self.hits[i][1];
        }
        for (i, name) in self.model.policy.counter_names.iter().enumerate() {
            let e = m.entry(format!("counter.{name}")).or_insert([0, 0]);
            e[0] += self.named[i][0];
            e[1] += self.named[i][1];
        }
        m
    }

    /// Stage 1b (when policy is active): anti-spoofing and the sender's from-vm ACL.
    #[inline]
    fn guard_and_acl<T: Tracer>(&mut self, inp: PortId, burst: &Burst, t: &mut T) {
        let Pipeline {
            model,
            meta,
            keys,
            flows,
            ingress_flows,
            hits,
            named,
            meters,
            pool,
            now_ns,
            fast_looked,
            ..
        } = self;
        let looked = std::mem::take(fast_looked);
        let pol = &model.policy;
        // Fast IPv4 frames on a port with from-vm rules ask the ingress
        // cache first: one probe answers everything the sender's side decides.
        let cached_port = pol.from_acl_mask & (1u64 << inp.0) != 0;
        let ctx = u32::from(inp.0) + 1;
        for (i, b) in burst.as_slice().iter().enumerate() {
            let me = &mut meta[i];
            if me.verdict != Verdict::Pending {
                continue;
            }
            let d = pool.data(b);
            let len = d.len();
            let fk = if cached_port {
                FlowKey::from_frame(d, me.vid, me.pcp)
            } else {
                None
            };
            // The one pass looked up the first `looked` frames already (and
            // stored what it resolved): they are not counted or stored again.
            let hit = match &fk {
                Some(k) if i < looked => ingress_flows.peek(ctx, k).copied(),
                Some(k) => ingress_flows.get(ctx, k).copied(),
                None => None,
            };
            let (v, answer) = match hit {
                Some(h) if h.vsi == NONE => continue, // not a VM's traffic (unguarded port)
                // The resolved answer (a trace explains it from the snapshot instead).
                Some(h) if !T::ON && h.flags & IngressHit::SLOW == 0 => {
                    me.src_vsi = h.vsi;
                    if h.flags & IngressHit::POLICY != 0 {
                        me.class = h.class;
                    }
                    if h.flags & IngressHit::ACL != 0 {
                        me.set_pcp = h.pcp;
                        me.set_dscp = h.dscp;
                        let c = &mut hits[h.hit as usize];
                        c[0] += 1;
                        c[1] += len as u64;
                        if h.flags & IngressHit::PERMIT == 0 {
                            me.verdict = Verdict::Drop(DropReason::AclDeny);
                            continue;
                        }
                    }
                    if h.rule_meter & h.vsi_meter != NONE {
                        police(
                            pol,
                            meters,
                            me,
                            [h.rule_meter, h.vsi_meter],
                            *now_ns,
                            len,
                            t,
                            i,
                        );
                    }
                    continue;
                }
                Some(h) => (&pol.fast[h.vsi as usize], Some(h.answer)),
                None => match resolve_sender(pol, inp, fk.as_ref(), me.src, me.vid) {
                    (who, Some(val)) if i >= looked => {
                        if let Some(k) = &fk {
                            ingress_flows.put(ctx, k, val);
                        }
                        match who {
                            Sender::Vm(v, answer) => (v, answer),
                            _ => continue,
                        }
                    }
                    (Sender::Vm(v, answer), _) => (v, answer),
                    (Sender::NotVm, _) => continue,
                    (Sender::Spoofed, _) => {
                        me.verdict = Verdict::Drop(DropReason::Spoofed);
                        trace!(
                            t,
                            i,
                            "guard",
                            "source {} VLAN {} is no VM of this port",
                            Mac::from_u64(me.src),
                            me.vid
                        );
                        continue;
                    }
                },
            };
            me.src_vsi = v.idx;
            if T::ON {
                let x = &pol.vsis[v.idx as usize];
                trace!(t, i, "guard", "VSI {} ({} VLAN {})", x.name, x.mac, x.vid);
            }
            let mut rule_meter = NONE;
            if v.policy != NONE {
                me.class = v.class;
                if v.from_acl {
                    let p = &pol.policies[v.policy as usize];
                    let (a, idx) = match answer {
                        Some(r) => p.from.action(r),
                        None => {
                            keys[i] = PackedKey::from_frame(d, me.vid, me.pcp);
                            me.has_key = true;
                            p.from.decide(flows, v.policy, 0, &keys[i])
                        }
                    };
                    if let Some(c) = a.class {
                        me.class = c;
                    }
                    if let Some(x) = a.set_pcp {
                        me.set_pcp = x;
                    }
                    if let Some(x) = a.set_dscp {
                        me.set_dscp = x;
                    }
                    if let Some(m) = a.meter {
                        rule_meter = pol.rule_meter_instance[m as usize];
                    }
                    if T::ON {
                        let what = rule_name(idx);
                        trace!(
                            t,
                            i,
                            "acl",
                            "policy {} from-vm: {what} → {}",
                            p.name,
                            if a.permit { "permit" } else { "deny" }
                        );
                    }
                    count_action(hits, named, a, len);
                    if !a.permit {
                        me.verdict = Verdict::Drop(DropReason::AclDeny);
                        continue;
                    }
                }
            }
            if rule_meter & v.meter != NONE {
                police(pol, meters, me, [rule_meter, v.meter], *now_ns, len, t, i);
            }
        }
    }

    /// Stage 2: learn sources.
    #[inline]
    fn learn<T: Tracer>(&mut self, inp: PortId, n: usize, now_ms: u64, t: &mut T) {
        let m = &*self.model;
        let port = &m.ports[inp.0 as usize];
        let veb_uplink = m.role == Role::EdgeVeb && port.uplink;
        // Frames of a burst often repeat addresses (one flow's frames in a
        // row). A source this burst has already left known and fresh on
        // this port is not learned again (it would be `Known`: no write, no
        // counter), and a destination looked up since the last FDB write of
        // this burst takes the same answer (a write by another core, by
        // ageing or by a flush is seen from the next burst on). Keys are
        // (MAC, VID) packed (`NO_KEY`: none yet).
        let mut fresh_src = NO_KEY;
        let mut last_dst = (NO_KEY, None);
        for i in 0..n {
            let me = &mut self.meta[i];
            if me.verdict != Verdict::Pending {
                continue;
            }
            if veb_uplink {
                // A copy of a local VM's own frame reflected by the adjacent bridge:
                // do not relearn the VM on the uplink, do not hand it back.
                if let Some(e) = self.fdb.lookup_raw(me.src, me.vid, now_ms) {
                    if e.port != inp {
                        me.verdict = Verdict::Drop(DropReason::Reflected);
                        trace!(
                            t,
                            i,
                            "learn",
                            "source is local on port {}: reflected copy, dropped",
                            e.port.0
                        );
                        continue;
                    }
                }
            }
            if port.locked {
                match self.fdb.lookup_raw(me.src, me.vid, now_ms) {
                    Some(e) if e.is_static && e.port == inp => {}
                    _ => {
                        me.verdict = Verdict::Drop(DropReason::Locked);
                        trace!(
                            t,
                            i,
                            "learn",
                            "locked port: source has no static entry here"
                        );
                        continue;
                    }
                }
            }
            if port.learning && me.src != m.own_mac {
                let sk = mac_vid_key(me.src, me.vid);
                if sk != fresh_src {
                    // Some(wrote): the source is now known and fresh here,
                    // and whether the FDB changed; None: refused.
                    let learned = match self.fdb.learn_raw(me.src, me.vid, inp, now_ms) {
                        Learn::Known => Some(false),
                        Learn::Refreshed => Some(true),
                        Learn::New => {
                            self.ctr.fdb_learned += 1;
                            Some(true)
                        }
                        Learn::Moved(from) => {
                            self.ctr.fdb_moves += 1;
                            trace!(
                                t,
                                i,
                                "learn",
                                "moved from port {}",
                                m.ports[from.0 as usize].name
                            );
                            Some(true)
                        }
                        r @ (Learn::Static(_) | Learn::Full | Learn::PortLimit) => {
                            self.ctr.fdb_learn_refused += 1;
                            trace!(t, i, "learn", "not learned: {r:?}");
                            None
                        }
                    };
                    if let Some(wrote) = learned {
                        fresh_src = sk;
                        if wrote {
                            last_dst.0 = NO_KEY;
                        }
                    }
                }
                trace!(
                    t,
                    i,
                    "learn",
                    "{} vlan {} @ {}",
                    Mac::from_u64(me.src),
                    me.vid,
                    port.name
                );
            }
            if port.state == PortState::Learning {
                me.verdict = Verdict::Drop(DropReason::PortState);
                trace!(
                    t,
                    i,
                    "learn",
                    "port {} is learning: not forwarding",
                    port.name
                );
                continue;
            }
            // Destination lookup in frame order: it sees the sources of the
            // frames before this one in the burst, not those after it.
            if m.role != Role::EdgeVepa && me.dst & GROUP_BIT == 0 {
                let dk = mac_vid_key(me.dst, me.vid);
                if dk != last_dst.0 {
                    last_dst = (
                        dk,
                        self.fdb.lookup_raw(me.dst, me.vid, now_ms).map(|e| e.port),
                    );
                }
                me.dst_port = last_dst.1;
            }
        }
    }

    /// Stage 3 (bridge, edge-veb): reflective relay rule, flood sets (the
    /// destination was looked up in stage 2).
    #[inline]
    fn forward_bridge<T: Tracer>(&mut self, inp: PortId, n: usize, t: &mut T) {
        let m = &*self.model;
        let inbit = 1u64 << inp.0;
        let rr = m.rr_mask & inbit != 0;
        let iso = m.isolated_mask & inbit != 0;
        for i in 0..n {
            let me = &mut self.meta[i];
            if me.verdict != Verdict::Pending {
                continue;
            }
            let vmask = m.vlan_ports[me.vid as usize] & m.fwd_mask;
            let mut mask;
            if me.dst & GROUP_BIT != 0 {
                me.flood = true;
                if me.dst == BCAST {
                    mask = vmask & m.bcast_mask;
                    trace!(t, i, "forward", "broadcast: flood VLAN {}", me.vid);
                } else if let Some(g) = m.group(me.dst, me.vid) {
                    mask = vmask & g.ports;
                    trace!(
                        t,
                        i,
                        "forward",
                        "registered group: member ports {:#x}",
                        g.ports
                    );
                } else {
                    mask = vmask & m.mcast_mask;
                    trace!(
                        t,
                        i,
                        "forward",
                        "unregistered multicast: flood VLAN {}",
                        me.vid
                    );
                }
            } else {
                match me.dst_port {
                    Some(p) => {
                        if p == inp && !rr {
                            me.verdict = Verdict::Drop(DropReason::HairpinOff);
                            trace!(
                                t,
                                i,
                                "forward",
                                "destination is behind ingress port {} and reflective relay is off",
                                m.ports[p.0 as usize].name
                            );
                            continue;
                        }
                        mask = (1u64 << p.0) & vmask;
                        trace!(
                            t,
                            i,
                            "forward",
                            "known unicast → {}",
                            m.ports[p.0 as usize].name
                        );
                        if mask == 0 {
                            me.verdict = Verdict::Drop(DropReason::PortState);
                            trace!(
                                t,
                                i,
                                "forward",
                                "destination port is not forwarding in this VLAN"
                            );
                            continue;
                        }
                    }
                    None => {
                        me.flood = true;
                        mask = vmask & m.unknown_mask;
                        trace!(t, i, "forward", "unknown unicast: flood VLAN {}", me.vid);
                    }
                }
            }
            if !rr {
                mask &= !inbit;
            }
            if iso {
                let before = mask;
                mask &= !m.isolated_mask;
                if mask == 0 && before != 0 {
                    me.verdict = Verdict::Drop(DropReason::Isolated);
                    trace!(t, i, "forward", "source and destination ports are isolated");
                    continue;
                }
            }
            if mask == 0 {
                me.verdict = Verdict::Drop(DropReason::FloodEmpty);
                trace!(t, i, "forward", "no eligible egress port");
                continue;
            }
            me.verdict = Verdict::Fwd(mask);
        }
    }

    /// Stage 3 (edge-vepa): VM ports send to the uplink; the uplink delivers by destination.
    #[inline]
    fn forward_vepa<T: Tracer>(&mut self, inp: PortId, n: usize, t: &mut T) {
        let m = &*self.model;
        let Some(up) = m.uplink else { return };
        let upbit = 1u64 << up.0;
        let inbit = 1u64 << inp.0;
        let from_vm = inp != up;
        let in_mode = m.ports[inp.0 as usize].vm_mode;
        for i in 0..n {
            let me = &mut self.meta[i];
            if me.verdict != Verdict::Pending {
                continue;
            }
            let vmask = m.vlan_ports[me.vid as usize] & m.fwd_mask;
            let group = me.dst & GROUP_BIT != 0;
            let flood_ok = if me.dst == BCAST {
                m.bcast_mask
            } else if group {
                m.mcast_mask
            } else {
                u64::MAX
            };
            let mask = if from_vm {
                let mut mask = upbit & vmask;
                if in_mode == VmMode::Bridge {
                    if group {
                        me.flood = true;
                        mask |= vmask & m.bridge_mode_mask & flood_ok & !inbit;
                    } else if let Some(p) = self.fdb.lookup_raw(me.dst, me.vid, 0).map(|e| e.port) {
                        if m.bridge_mode_mask & (1 << p.0) != 0 && p != inp {
                            mask = (1 << p.0) & vmask;
                            trace!(t, i, "forward", "bridge-mode sibling: local delivery");
                        }
                    }
                }
                trace!(
                    t,
                    i,
                    "forward",
                    "from a VM: mask {mask:#x} (uplink {})",
                    m.ports[up.0 as usize].name
                );
                mask
            } else {
                let src_port = self.fdb.lookup_raw(me.src, me.vid, 0).map(|e| e.port);
                let src_mode = src_port.map(|p| m.ports[p.0 as usize].vm_mode);
                if !group {
                    match self.fdb.lookup_raw(me.dst, me.vid, 0) {
                        None => {
                            me.verdict = Verdict::Drop(DropReason::NoVm);
                            trace!(
                                t,
                                i,
                                "forward",
                                "no VM {} in VLAN {}",
                                Mac::from_u64(me.dst),
                                me.vid
                            );
                            continue;
                        }
                        Some(e) => {
                            let dmode = m.ports[e.port.0 as usize].vm_mode;
                            if src_port.is_some()
                                && (src_mode == Some(VmMode::Private) || dmode == VmMode::Private)
                            {
                                me.verdict = Verdict::Drop(DropReason::Reflected);
                                trace!(
                                    t,
                                    i,
                                    "forward",
                                    "private-mode VM: no sibling traffic, even reflected"
                                );
                                continue;
                            }
                            trace!(
                                t,
                                i,
                                "forward",
                                "to VM on port {}",
                                m.ports[e.port.0 as usize].name
                            );
                            (1 << e.port.0) & vmask
                        }
                    }
                } else {
                    me.flood = true;
                    let base = vmask & flood_ok & !upbit;
                    let mask = match (src_port, src_mode) {
                        (Some(sp), Some(VmMode::Vepa)) => {
                            base & (m.vepa_mask | m.bridge_mode_mask) & !(1 << sp.0)
                        }
                        (Some(sp), Some(VmMode::Bridge)) => base & m.vepa_mask & !(1 << sp.0),
                        (Some(_), _) => 0,
                        (None, _) => base,
                    };
                    if mask == 0 && src_port.is_some() {
                        me.verdict = Verdict::Drop(DropReason::Reflected);
                        trace!(
                            t,
                            i,
                            "forward",
                            "reflected flood of a local VM: no other receiver"
                        );
                        continue;
                    }
                    trace!(
                        t,
                        i,
                        "forward",
                        "flood from uplink: mask {mask:#x} (source local: {})",
                        src_port.is_some()
                    );
                    mask
                }
            };
            if mask == 0 {
                me.verdict = Verdict::Drop(DropReason::FloodEmpty);
                trace!(t, i, "forward", "no eligible egress port");
                continue;
            }
            me.verdict = Verdict::Fwd(mask);
        }
    }

    /// Stage 4: drops freed and counted, punts queued, copies made, tags fixed, frames staged per port.
    #[inline]
    fn transmit<T: Tracer>(
        &mut self,
        inp: PortId,
        burst: &mut Burst,
        tx: &mut [Box<dyn PortQueue>],
        t: &mut T,
    ) {
        let judge = self.model.policy.active && self.model.policy.any_to_acl;
        let n = burst.len();
        for (i, b) in burst.drain().enumerate().take(n) {
            let me = self.meta[i];
            match me.verdict {
                Verdict::Pending | Verdict::Drop(_) => {
                    let r = match me.verdict {
                        Verdict::Drop(r) => r,
                        _ => DropReason::FloodEmpty,
                    };
                    self.drop_on(inp.0 as usize, r);
                    trace!(t, i, "drop", "{} ({})", r.name(), r.describe());
                    self.cache.free(&self.pool, b);
                }
                Verdict::Punt => match self
                    .port_punt
                    .get_mut(usize::from(inp.0))
                    .or(self.punt.as_mut())
                {
                    Some(p) => match p.push(b) {
                        Ok(()) => self.ctr.punted += 1,
                        Err(b) => {
                            self.drop_on(inp.0 as usize, DropReason::PuntFull);
                            self.cache.free(&self.pool, b);
                        }
                    },
                    None => {
                        self.ctr.punted += 1;
                        trace!(t, i, "punt", "handed to the control plane");
                        self.cache.free(&self.pool, b);
                    }
                },
                Verdict::Fwd(mut mask) => {
                    if mask & (1 << inp.0) != 0 {
                        self.ctr.reflected += 1;
                        trace!(t, i, "tx", "reflective relay: back out ingress port");
                    }
                    let m2u_group = me.flood && me.dst & GROUP_BIT != 0 && me.dst != BCAST;
                    // Every output (a frame staged, or a copy that failed and was
                    // counted as a drop) is one unit; outputs - 1 are copies.
                    let mut outputs = 0u64;
                    let mut orig = Some(b);
                    while mask != 0 {
                        let p = mask.trailing_zeros() as usize;
                        mask &= mask - 1;
                        let Some(src) = orig.as_ref() else { break };
                        let mut fix = Fix {
                            class: me.class,
                            pcp: me.set_pcp,
                            dscp: me.set_dscp,
                        };
                        if judge {
                            match judge_receiver(
                                &self.model.policy,
                                p,
                                i,
                                &mut self.meta[i],
                                &mut self.keys[i],
                                &mut self.flows,
                                self.pool.data(src),
                                &mut self.hits,
                                &mut self.named,
                                t,
                            ) {
                                Err(()) => {
                                    outputs += 1;
                                    self.drop_on(inp.0 as usize, DropReason::AclDeny);
                                    trace!(
                                        t,
                                        i,
                                        "acl",
                                        "copy to {} denied",
                                        self.model.ports[p].name
                                    );
                                    continue;
                                }
                                Ok(Some(a)) => {
                                    fix.class = a.class.unwrap_or(fix.class);
                                    fix.pcp = a.set_pcp.unwrap_or(fix.pcp);
                                    fix.dscp = a.set_dscp.unwrap_or(fix.dscp);
                                }
                                Ok(None) => {}
                            }
                        }
                        if m2u_group && self.model.ports[p].m2u {
                            outputs += self.m2u_copies(p, src, &me, fix, tx, t, i);
                            continue;
                        }
                        outputs += 1;
                        if mask == 0 {
                            let b = orig.take().expect("original frame");
                            self.egress(p, b, me.tag(), fix, tx, t, i);
                            break;
                        }
                        match self.cache.alloc(&self.pool) {
                            Some(mut c) => {
                                self.pool.copy_into(src, &mut c);
                                self.egress(p, c, me.tag(), fix, tx, t, i);
                            }
                            None => {
                                self.drop_on(inp.0 as usize, DropReason::NoBuf);
                                trace!(t, i, "tx", "no buffer for the copy to port {p}");
                            }
                        }
                    }
                    if let Some(b) = orig {
                        // The last egress port was multicast-to-unicast: only copies left.
                        self.cache.free(&self.pool, b);
                    }
                    if outputs == 0 {
                        self.drop_on(inp.0 as usize, DropReason::FloodEmpty);
                        trace!(t, i, "drop", "no receiver left after multicast-to-unicast");
                    } else {
                        self.ctr.flood_copies += outputs - 1;
                    }
                }
            }
        }
        self.flush(tx);
    }

    /// Multicast-to-unicast: one copy per known receiver on port `p`, never back to the sender.
    #[cold]
    #[allow(clippy::too_many_arguments)]
    fn m2u_copies<T: Tracer>(
        &mut self,
        p: usize,
        b: &PktBuf,
        me: &Meta,
        fix: Fix,
        tx: &mut [Box<dyn PortQueue>],
        t: &mut T,
        i: usize,
    ) -> u64 {
        let model = self.model.clone();
        let Some(g) = model.group(me.dst, me.vid) else {
            return 0;
        };
        let mut outputs = 0;
        for &(hp, hmac) in &g.hosts {
            if hp.0 as usize != p {
                continue;
            }
            if hmac == me.src {
                trace!(
                    t,
                    i,
                    "tx",
                    "multicast-to-unicast: not back to the sender {}",
                    Mac::from_u64(hmac)
                );
                continue;
            }
            outputs += 1;
            let Some(mut c) = self.cache.alloc(&self.pool) else {
                self.drop_on(self.cur_in, DropReason::NoBuf);
                continue;
            };
            self.pool.copy_into(b, &mut c);
            self.pool.data_mut(&mut c)[..6].copy_from_slice(&hmac.to_be_bytes()[2..]);
            trace!(
                t,
                i,
                "tx",
                "multicast-to-unicast copy to {}",
                Mac::from_u64(hmac)
            );
            self.egress(p, c, me.tag(), fix, tx, t, i);
        }
        outputs
    }

    /// Fix the VLAN tag for egress port `p` and stage the frame.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn egress<T: Tracer>(
        &mut self,
        p: usize,
        mut b: PktBuf,
        me: Tag,
        fix: Fix,
        tx: &mut [Box<dyn PortQueue>],
        t: &mut T,
        i: usize,
    ) {
        let port = &self.model.ports[p];
        let untag = port.untagged_vid == me.vid;
        let ok = match (me.tagged, untag) {
            (true, true) => self.pool.pop_tag(&mut b),
            (false, false) => {
                self.pool
                    .push_tag(&mut b, TPID_8021Q, ((me.pcp as u16) << 13) | me.vid)
            }
            (true, false) => {
                // Priority-tagged in (VID 0): write the classified VID.
                let d = self.pool.data_mut(&mut b);
                let tci = ((me.pcp as u16) << 13)
                    | (u16::from_be_bytes([d[14], d[15]]) & 0x1000)
                    | me.vid;
                d[14..16].copy_from_slice(&tci.to_be_bytes());
                true
            }
            (false, true) => true,
        };
        if !ok {
            self.drop_on(self.cur_in, DropReason::NoBuf);
            self.cache.free(&self.pool, b);
            return;
        }
        if fix.pcp != KEEP && !untag {
            let d = self.pool.data_mut(&mut b);
            d[14] = (d[14] & 0x1f) | (fix.pcp << 5);
            trace!(t, i, "mark", "PCP → {}", fix.pcp);
        }
        if fix.dscp != KEEP {
            let d = self.pool.data_mut(&mut b);
            let ok = l3_offset(d).is_some_and(|off| set_dscp(d, off, fix.dscp));
            trace!(
                t,
                i,
                "mark",
                "DSCP → {} ({})",
                fix.dscp,
                if ok { "rewritten" } else { "not IP: unchanged" }
            );
        }
        trace!(
            t,
            i,
            "tx",
            "→ {} {}",
            port.name,
            if untag { "untagged" } else { "tagged" }
        );
        if let Some(s) = self.sched[p].as_mut() {
            let len = b.len() as u32;
            let class = fix.class.min(7);
            // `backlog` has the port's bit whenever its scheduler holds frames.
            let d = &mut self.direct[p];
            if d.cap != 0 && self.backlog & (1 << p) == 0 {
                // An empty, unshaped scheduler sends the frames of one class
                // in arrival order at the flush: while every frame for this
                // port in this burst has one class (within its depth), they
                // are staged for the port at once and accounted at the flush.
                // The staging holds only these frames (n of them), and
                // n < cap keeps both it and the class queue from filling.
                let q = &mut self.txq[p];
                let (n, c) = (d.frames, d.class);
                if (n == 0 || c == class) && n < d.cap {
                    let _ = q.push(b);
                    d.frames = n + 1;
                    d.class = class;
                    self.dirty |= 1 << p;
                    trace!(t, i, "queue", "class {} on {}", fix.class, port.name);
                    return;
                }
                // Another class (or the depth or the staging is reached): what
                // was staged goes into its queue first, in order, as if queued.
                if n > 0 {
                    d.frames = 0;
                    for f in q.drain() {
                        let l = f.len() as u32;
                        if let Err(Dropped(f)) = s.enqueue(c, f, l) {
                            // Not reached: at most the class's depth was staged.
                            self.ctr.drop(DropReason::QueueFull);
                            self.port_ctr[p].drops[DropReason::QueueFull as usize] += 1;
                            self.cache.free(&self.pool, f);
                        }
                    }
                    self.backlog |= 1 << p;
                }
            }
            match s.enqueue(fix.class, b, len) {
                Ok(()) => {
                    trace!(t, i, "queue", "class {} on {}", fix.class, port.name);
                    self.backlog |= 1 << p;
                }
                Err(Dropped(b)) => {
                    self.ctr.drop(DropReason::QueueFull);
                    self.port_ctr[p].drops[DropReason::QueueFull as usize] += 1;
                    trace!(
                        t,
                        i,
                        "queue",
                        "class {} queue of {} full: tail drop",
                        fix.class,
                        port.name
                    );
                    self.cache.free(&self.pool, b);
                }
            }
            return;
        }
        let q = &mut self.txq[p];
        if let Err(b) = q.push(b) {
            // Staging full (a large flood): push this port out now, then retry.
            self.flush_port(p, tx);
            if let Err(b) = self.txq[p].push(b) {
                self.drop_on(p, DropReason::TxFull);
                self.port_ctr[p].tx_full += 1;
                self.cache.free(&self.pool, b);
                return;
            }
        }
        self.dirty |= 1 << p;
    }

    fn flush_port(&mut self, p: usize, tx: &mut [Box<dyn PortQueue>]) {
        if let Some(s) = self.sched[p].as_mut() {
            let d = &mut self.direct[p];
            if d.frames > 0 {
                // The staging holds exactly the frames that passed.
                let bytes = self.txq[p].as_slice().iter().map(|b| b.len() as u64).sum();
                s.credit_direct(d.class, u64::from(d.frames), bytes);
                d.frames = 0;
            }
            let q = &mut self.txq[p];
            let room = q.space();
            s.dequeue_burst(self.now_ns, q, room);
            if s.is_empty() {
                self.backlog &= !(1 << p);
            }
        }
        let q = &mut self.txq[p];
        let staged = q.len();
        if staged == 0 {
            return;
        }
        let bytes: u64 = q.as_slice().iter().map(|b| b.len() as u64).sum();
        let cap = match &self.cap {
            Some(c) if c.on(crate::capture::TX, p) => {
                Some((c, c.stage_tx(p, q.as_slice(), &self.pool, self.now_ns)))
            }
            _ => None,
        };
        let sent = tx[p].tx_burst(q);
        if let Some((c, staged)) = cap {
            c.commit_tx(p, staged, sent);
        }
        let mut left_bytes = 0u64;
        let pc = &mut self.port_ctr[p];
        for b in q.drain() {
            left_bytes += b.len() as u64;
            self.ctr.drop(DropReason::TxFull);
            pc.drops[DropReason::TxFull as usize] += 1;
            pc.tx_full += 1;
            self.cache.free(&self.pool, b);
        }
        self.ctr.tx_pkts += sent as u64;
        self.ctr.tx_bytes += bytes - left_bytes;
        pc.tx_pkts += sent as u64;
        pc.tx_bytes += bytes - left_bytes;
    }

    /// Push every staged frame to its port; refused frames are counted `tx_full` and freed.
    #[inline]
    pub fn flush(&mut self, tx: &mut [Box<dyn PortQueue>]) {
        let mut todo = self.dirty | self.backlog;
        self.dirty = 0;
        while todo != 0 {
            let p = todo.trailing_zeros() as usize;
            todo &= todo - 1;
            self.flush_port(p, tx);
        }
    }

    /// Send what the egress schedulers may send now (shaped ports hold frames
    /// across bursts). Called by the worker on every pass; a no-op without backlog.
    #[inline]
    pub fn service(&mut self, now_ns: u64, tx: &mut [Box<dyn PortQueue>]) {
        if self.backlog != 0 {
            self.now_ns = now_ns;
            self.flush(tx);
        }
    }

    /// True when an egress scheduler still holds frames.
    pub fn has_backlog(&self) -> bool {
        self.backlog != 0
    }

    /// Meter colour counts (green, yellow, red frames) by meter instance, this core.
    pub fn meter_counts(&self) -> std::collections::BTreeMap<String, [u64; 3]> {
        let mut m = self.meter_before.clone();
        for (i, c) in self.meters.iter().enumerate() {
            let name = self
                .model
                .policy
                .meter_instances
                .get(i)
                .map(|x| x.1.clone())
                .unwrap_or_default();
            let e = m.entry(name).or_insert([0; 3]);
            for (x, y) in e.iter_mut().zip(c.stats().pkts) {
                *x += y;
            }
        }
        m
    }

    /// Egress queue counters by port name and class, this core.
    pub fn queue_stats(&self) -> Vec<(String, [crate::qos::sched::ClassStats; 8])> {
        self.sched
            .iter()
            .enumerate()
            .filter_map(|(p, s)| {
                s.as_ref()
                    .map(|s| (self.model.ports[p].name.clone(), s.all_stats()))
            })
            .collect()
    }

    /// Telemetry publication hook: this core's policy counters in place (no
    /// copy, no allocation), for [`crate::stats::policy::PolicySlot::publish`].
    pub fn policy_view(&self) -> PolicyView<'_> {
        PolicyView {
            model: &self.model,
            hits: &self.hits,
            named: &self.named,
            hits_before: &self.hits_before,
            meter_before: &self.meter_before,
            meters: &self.meters,
            sched: &self.sched,
        }
    }

    /// Give every cached buffer back to the pool (at stop). Frames still held
    /// by an egress scheduler are freed and counted as `queue_full`.
    pub fn release(&mut self) {
        for (s, pc) in self.sched.iter_mut().zip(self.port_ctr.iter_mut()) {
            let Some(s) = s.as_mut() else { continue };
            let (pool, ctr) = (&self.pool, &mut self.ctr);
            s.drain(|b| {
                ctr.drop(DropReason::QueueFull);
                pc.drops[DropReason::QueueFull as usize] += 1;
                pool.free(b);
            });
        }
        self.backlog = 0;
        for d in &mut self.direct {
            d.frames = 0;
        }
        for q in &mut self.txq {
            for b in q.drain() {
                self.pool.free(b);
            }
        }
        self.cache.flush(&self.pool);
    }

    /// Count a frame that was dropped before it could enter the pipeline
    /// (e.g. longer than a buffer), as received on `p` and dropped for `r`.
    pub fn count_rx_drop(&mut self, p: PortId, len: usize, r: DropReason) {
        self.ctr.rx_pkts += 1;
        self.ctr.rx_bytes += len as u64;
        self.port_ctr[p.0 as usize].rx_pkts += 1;
        self.port_ctr[p.0 as usize].rx_bytes += len as u64;
        self.drop_on(p.0 as usize, r);
    }

    /// Count a drop for the core and for port `p` (see [`PortCounters::drops`]).
    #[inline(always)]
    fn drop_on(&mut self, p: usize, r: DropReason) {
        self.ctr.drop(r);
        self.port_ctr[p].drops[r as usize] += 1;
    }

    /// Free a frame into this core's cache (for callers outside the stages).
    #[inline]
    pub fn free(&mut self, b: PktBuf) {
        self.cache.free(&self.pool, b);
    }
}
