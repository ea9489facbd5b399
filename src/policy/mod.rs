//! Central policy, compiled: the VSI table, per-VM ACLs in both directions,
//! QoS class, marking and meter references.
//!
//! [`PolicySet::compile`] turns a validated config into an immutable value
//! that is part of the switch snapshot ([`crate::pipeline::Model`]); the
//! control thread builds a new one off the fast path and swaps the whole
//! snapshot in, so a worker sees either the old policy or the new one for a
//! burst, never a mix.

pub mod acl;
pub mod flow;

use crate::config::policy::{compile_rule, Direction, Verdict};
use crate::config::{parse_uuid, Config};
use crate::macvid::MacVidMap;
use crate::types::{Mac, PortId};
use acl::Classifier;

/// What a matching rule (or a direction's default) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleAction {
    /// Permit (true) or deny.
    pub permit: bool,
    /// Traffic class for egress scheduling.
    pub class: Option<u8>,
    /// New 802.1Q PCP.
    pub set_pcp: Option<u8>,
    /// New IP DSCP.
    pub set_dscp: Option<u8>,
    /// Meter index (into [`PolicySet::meter_names`]).
    pub meter: Option<u32>,
    /// Named counter index (into [`PolicySet::counter_names`]).
    pub counter: Option<u32>,
    /// Index into the per-rule hit counters ([`PolicySet::hit_names`]).
    pub hit: u32,
}

/// One direction of a policy.
pub struct DirPolicy {
    /// The compiled rules.
    pub classifier: Classifier,
    /// Action of rule i.
    pub actions: Vec<RuleAction>,
    /// Action when no rule matches.
    pub default: RuleAction,
    /// Indices of the rules in the config's rule list (for naming).
    pub cfg_index: Vec<usize>,
}

impl DirPolicy {
    /// What this direction does with `key`: the first matching rule's action
    /// and that rule's index in the config's rule list, or the default's
    /// action and `None`. Asks `flows` first (`policy`, `dir`: 0 from-vm, 1
    /// to-vm, name the rule set in the cache).
    #[inline(always)]
    pub fn decide(
        &self,
        flows: &mut flow::FlowCache,
        policy: u32,
        dir: u8,
        key: &acl::PackedKey,
    ) -> (&RuleAction, Option<usize>) {
        let r = flows.classify(&self.classifier, policy, dir, key);
        self.action(r.unwrap_or(flow::NO_MATCH))
    }

    /// The action for a classifier answer ([`flow::NO_MATCH`]: the default),
    /// with the rule's index in the config's rule list.
    #[inline(always)]
    pub fn action(&self, answer: u32) -> (&RuleAction, Option<usize>) {
        match self.actions.get(answer as usize) {
            Some(a) => (a, Some(self.cfg_index[answer as usize])),
            None => (&self.default, None),
        }
    }

    /// Nothing to check: no rules and a permitting default without side effects.
    pub fn is_noop(&self) -> bool {
        self.actions.is_empty() && self.default.permit && self.default.counter.is_none()
    }
}

/// A named policy.
pub struct Policy {
    /// Name.
    pub name: String,
    /// Rules for frames the VM sends.
    pub from: DirPolicy,
    /// Rules for frames delivered to the VM.
    pub to: DirPolicy,
    /// Meter on everything the VM sends (one instance per VSI).
    pub meter: Option<u32>,
    /// Default traffic class.
    pub class: u8,
}

/// A VM (VSI) known to the bridge.
#[derive(Clone, Debug)]
pub struct Vsi {
    /// Name.
    pub name: String,
    /// From the config or associated at run time (the `vsi` command's `state`).
    pub origin: crate::config::VsiOrigin,
    /// Port it is behind.
    pub port: PortId,
    /// MAC.
    pub mac: Mac,
    /// VLAN.
    pub vid: u16,
    /// VSI instance id.
    pub uuid: Option<[u8; 16]>,
    /// Policy index.
    pub policy: Option<u32>,
    /// Per-VSI meter instance index (into [`PolicySet::meter_instances`]), from the VM's or its policy's meter.
    pub meter: Option<u32>,
}

/// No meter / no policy in a [`VsiFast`].
pub const NONE: u32 = u32::MAX;

/// The fast path's view of a VSI, stored in the (MAC, VID) map itself so
/// that the anti-spoofing check, the policy choice and the meter are one
/// cache line away from the frame's addresses (the full [`Vsi`] record is
/// only read by `trace` and the control plane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VsiFast {
    /// Index into [`PolicySet::vsis`].
    pub idx: u32,
    /// Per-VSI meter instance, or [`NONE`].
    pub meter: u32,
    /// Policy index, or [`NONE`].
    pub policy: u32,
    /// Port the VSI is behind.
    pub port: PortId,
    /// The policy's from-vm direction has rules or side effects ([`DirPolicy::is_noop`] is false).
    pub from_acl: bool,
    /// The policy's to-vm direction has rules or side effects.
    pub to_acl: bool,
    /// The policy's default traffic class (0 without a policy).
    pub class: u8,
}

impl Default for VsiFast {
    fn default() -> Self {
        VsiFast {
            idx: NONE,
            meter: NONE,
            policy: NONE,
            port: PortId(0),
            from_acl: false,
            to_acl: false,
            class: 0,
        }
    }
}

/// Everything policy, compiled.
#[derive(Default)]
pub struct PolicySet {
    /// VSIs.
    pub vsis: Vec<Vsi>,
    /// The fast-path record of each VSI, by VSI index.
    pub fast: Vec<VsiFast>,
    /// (MAC, VID) → the VSI's fast-path record (a copy of `fast[idx]`).
    pub index: MacVidMap<VsiFast>,
    /// Ports where only VSIs may send.
    pub guard_mask: u64,
    /// Ports behind which some VSI has from-vm rules (the pipeline's
    /// per-port flow cache answers VSI and rule together there).
    pub from_acl_mask: u64,
    /// Policies.
    pub policies: Vec<Policy>,
    /// (port, VID) → index into `port_vlan_lists`: the VSIs behind a port in a VLAN,
    /// for judging multicast copies.
    pub port_vlan_index: MacVidMap,
    /// VSI lists referenced by `port_vlan_index`.
    pub port_vlan_lists: Vec<Vec<u32>>,
    /// Name of each hit counter: `policy.NAME.from-vm.rule[i]` / `...default`.
    pub hit_names: Vec<String>,
    /// Named counters from rules' `counter`.
    pub counter_names: Vec<String>,
    /// Meter configs referenced (by name).
    pub meter_names: Vec<String>,
    /// Meter instances: (meter config index, owner description). Rule meters have one
    /// instance shared by every frame that matches; VSI meters one per VSI.
    pub meter_instances: Vec<(u32, String)>,
    /// Rule meter → instance index (rules' `meter` refers to the meter config; this maps config → instance).
    pub rule_meter_instance: Vec<u32>,
    /// The shared token buckets, one per meter instance (workers lease from them).
    pub meters: Vec<std::sync::Arc<crate::qos::meter::SharedMeter>>,
    /// Per meter instance: PCP that marks a frame yellow on arrival (colour-aware meters).
    pub meter_yellow_pcp: Vec<Option<u8>>,
    /// True when any VSI has a policy or a meter, or any port guards sources.
    pub active: bool,
    /// True when some VSI's policy has a to-vm direction that is not a no-op
    /// (without one the receiver side of the policy has nothing to check).
    pub any_to_acl: bool,
}

impl PolicySet {
    /// Compile from a validated config.
    pub fn compile(c: &Config) -> Result<PolicySet, String> {
        let mut s = PolicySet::default();
        let meter_names: Vec<String> = c.meter.keys().cloned().collect();
        let meter_idx = |n: &str| meter_names.iter().position(|m| m == n).map(|i| i as u32);
        // One shared instance per meter config for rule meters.
        for (i, n) in meter_names.iter().enumerate() {
            s.rule_meter_instance.push(i as u32);
            s.meter_instances
                .push((i as u32, format!("meter.{n} (rules)")));
        }
        let mut counters: Vec<String> = Vec::new();
        let mut counter_idx = |n: &str| -> u32 {
            match counters.iter().position(|x| x == n) {
                Some(i) => i as u32,
                None => {
                    counters.push(n.to_string());
                    (counters.len() - 1) as u32
                }
            }
        };
        for (name, p) in &c.policy {
            let mut dirs = Vec::new();
            for (dir, dname) in [(Direction::FromVm, "from-vm"), (Direction::ToVm, "to-vm")] {
                let mut rules = Vec::new();
                let mut actions = Vec::new();
                let mut cfg_index = Vec::new();
                for (i, r) in p
                    .rule
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.direction == dir)
                {
                    let rule = compile_rule(r)
                        .map_err(|(k, why)| format!("policy.{name}.rule[{i}].{k}: {why}"))?;
                    rules.push(rule);
                    cfg_index.push(i);
                    s.hit_names
                        .push(format!("policy.{name}.rule[{i}] ({dname})"));
                    actions.push(RuleAction {
                        permit: r.action == Verdict::Permit,
                        class: r.class,
                        set_pcp: r.set_pcp,
                        set_dscp: r.set_dscp,
                        meter: r.meter.as_deref().and_then(meter_idx),
                        counter: r.counter.as_deref().map(&mut counter_idx),
                        hit: (s.hit_names.len() - 1) as u32,
                    });
                }
                s.hit_names.push(format!("policy.{name}.default ({dname})"));
                let default = RuleAction {
                    permit: p.default == Verdict::Permit,
                    class: None,
                    set_pcp: None,
                    set_dscp: None,
                    meter: None,
                    counter: None,
                    hit: (s.hit_names.len() - 1) as u32,
                };
                dirs.push(DirPolicy {
                    classifier: Classifier::build(&rules),
                    actions,
                    default,
                    cfg_index,
                });
            }
            let to = dirs.pop().expect("two directions");
            let from = dirs.pop().expect("two directions");
            s.policies.push(Policy {
                name: name.clone(),
                from,
                to,
                meter: p.meter.as_deref().and_then(meter_idx),
                class: p.class.unwrap_or(0),
            });
        }
        let mut entries = Vec::new();
        let mut port_vlan: std::collections::BTreeMap<(u16, u16), Vec<u32>> = Default::default();
        for v in &c.vm {
            let port = c
                .port_index(&v.port)
                .ok_or_else(|| format!("vm {}: no port {}", v.name, v.port))?;
            let policy = v
                .policy
                .as_deref()
                .and_then(|p| c.policy.keys().position(|k| k == p))
                .map(|i| i as u32);
            let meter_cfg = v
                .meter
                .as_deref()
                .and_then(meter_idx)
                .or_else(|| policy.and_then(|p| s.policies[p as usize].meter));
            let meter = meter_cfg.map(|m| {
                s.meter_instances.push((m, format!("vm {}", v.name)));
                (s.meter_instances.len() - 1) as u32
            });
            let idx = s.vsis.len() as u32;
            s.vsis.push(Vsi {
                name: v.name.clone(),
                port: PortId(port as u16),
                mac: v.mac,
                vid: v.vlan,
                uuid: v.uuid.as_deref().map(parse_uuid).transpose()?,
                policy,
                meter,
                origin: v.origin,
            });
            let pol = policy.map(|p| &s.policies[p as usize]);
            let fast = VsiFast {
                idx,
                meter: meter.unwrap_or(NONE),
                policy: policy.unwrap_or(NONE),
                port: PortId(port as u16),
                from_acl: pol.is_some_and(|p| !p.from.is_noop()),
                to_acl: pol.is_some_and(|p| !p.to.is_noop()),
                class: pol.map_or(0, |p| p.class),
            };
            if fast.from_acl {
                s.from_acl_mask |= 1 << port;
            }
            s.fast.push(fast);
            entries.push((v.mac.to_u64(), v.vlan, fast));
            port_vlan
                .entry((port as u16, v.vlan))
                .or_default()
                .push(idx);
            if c.port[port].source_guard {
                s.guard_mask |= 1 << port;
            }
        }
        for (cfg_idx, _) in &s.meter_instances {
            let name = &meter_names[*cfg_idx as usize];
            let m = &c.meter[name];
            let mc = meter_config(m).map_err(|e| format!("meter.{name}: {e}"))?;
            let sm = crate::qos::meter::SharedMeter::new(mc, 0)
                .map_err(|e| format!("meter.{name}.{e}"))?;
            s.meters.push(std::sync::Arc::new(sm));
            s.meter_yellow_pcp
                .push(if m.color_aware { m.remark_pcp } else { None });
        }
        s.index = MacVidMap::build(&entries);
        let mut pv = Vec::new();
        for ((port, vid), list) in port_vlan {
            pv.push((port as u64, vid, s.port_vlan_lists.len() as u32));
            s.port_vlan_lists.push(list);
        }
        s.port_vlan_index = MacVidMap::build(&pv);
        s.counter_names = counters;
        s.meter_names = meter_names;
        s.any_to_acl = s.fast.iter().any(|f| f.to_acl);
        s.active = s.guard_mask != 0
            || s.vsis
                .iter()
                .any(|v| v.policy.is_some() || v.meter.is_some());
        Ok(s)
    }

    /// The VSI with this (MAC, VID), if any.
    #[inline(always)]
    pub fn vsi(&self, mac: u64, vid: u16) -> Option<u32> {
        self.index.get(mac, vid).map(|f| f.idx)
    }

    /// The fast-path record of the VSI with this (MAC, VID), if any.
    #[inline(always)]
    pub fn vsi_fast(&self, mac: u64, vid: u16) -> Option<&VsiFast> {
        self.index.get_ref(mac, vid)
    }

    /// What the sender's side of the policy decides for VSI `v` sending a
    /// frame whose from-vm classifier answer is `answer` ([`flow::NO_MATCH`]:
    /// the default), resolved once for the ingress cache: class, rewrites
    /// (0xff: keep), verdict, hit counter and meters, as the pipeline's
    /// full path applies them. A rule with a named counter is marked
    /// [`flow::IngressHit::SLOW`].
    pub fn resolve_ingress(&self, v: &VsiFast, answer: u32) -> flow::IngressHit {
        use flow::IngressHit as H;
        let mut h = H {
            vsi: v.idx,
            answer,
            hit: 0,
            rule_meter: NONE,
            vsi_meter: v.meter,
            class: 0,
            pcp: 0xff,
            dscp: 0xff,
            flags: 0,
        };
        let Some(p) = self.policies.get(v.policy as usize) else {
            return h;
        };
        h.flags |= H::POLICY;
        h.class = v.class;
        if v.from_acl {
            let (a, _) = p.from.action(answer);
            h.flags |= H::ACL;
            if a.permit {
                h.flags |= H::PERMIT;
            }
            if let Some(c) = a.class {
                h.class = c;
            }
            h.pcp = a.set_pcp.unwrap_or(0xff);
            h.dscp = a.set_dscp.unwrap_or(0xff);
            h.hit = a.hit;
            if let Some(m) = a.meter {
                h.rule_meter = self.rule_meter_instance[m as usize];
            }
            if a.counter.is_some() {
                h.flags |= H::SLOW;
            }
        }
        h
    }
}

/// The qos meter configuration for a `[meter.NAME]` (rates from bits/s to bytes/s).
pub fn meter_config(
    m: &crate::config::policy::MeterCfg,
) -> Result<crate::qos::meter::MeterConfig, String> {
    use crate::config::policy::{parse_rate, ColorAction, MeterKind as K};
    use crate::qos::meter::{Action, ColorMode, MeterConfig};
    let cir = parse_rate(&m.cir)? / 8;
    let mut mc = match m.kind {
        K::Srtcm => MeterConfig::srtcm(cir, m.cbs, m.ebs.unwrap_or(0)),
        K::Trtcm => {
            let pir = parse_rate(m.pir.as_ref().ok_or("trtcm needs pir")?)? / 8;
            MeterConfig::trtcm(cir, m.cbs, pir, m.pbs.ok_or("trtcm needs pbs")?)
        }
    };
    if m.color_aware {
        mc = mc.mode(ColorMode::Aware);
    }
    let act = |a: ColorAction| match a {
        ColorAction::Transmit => Action::Transmit,
        ColorAction::Drop => Action::Drop,
        ColorAction::Remark => Action::Remark {
            pcp: m.remark_pcp,
            dscp: m.remark_dscp,
        },
    };
    mc.green = act(m.green);
    mc.yellow = act(m.yellow);
    mc.red = act(m.red);
    mc.validate()?;
    Ok(mc)
}

/// The scheduler configuration for a `[port.egress]`, its shaping rate split over `workers`.
pub fn sched_config(
    g: &crate::config::policy::EgressCfg,
    workers: usize,
) -> Result<crate::qos::sched::SchedConfig, String> {
    use crate::qos::sched::{SchedConfig, Shaper, CLASSES};
    let strict_from = (CLASSES as u8).saturating_sub(g.strict);
    let mut quantum = [1518u32; CLASSES];
    for (i, w) in g.weights.iter().enumerate() {
        quantum[i] = 1518 * w;
    }
    let shaper = match &g.shape {
        Some(r) => {
            let rate = (crate::config::policy::parse_rate(r)? / 8 / workers.max(1) as u64)
                .max(crate::qos::sched::MIN_RATE);
            // Burst: 1 ms at the rate, at least two full-size frames.
            Some(Shaper {
                rate,
                burst: (rate / 1000).max(2 * 1518),
            })
        }
        None => None,
    };
    let c = SchedConfig {
        strict_from,
        quantum,
        depth: [g.depth as u32; CLASSES],
        shaper,
    };
    c.validate()?;
    Ok(c)
}
