//! Publication of the per-core policy counters (ACL rule hits, meter colours,
//! egress queues) for the control socket and Prometheus.
//!
//! These counters live in each worker's [`Pipeline`](crate::pipeline::Pipeline)
//! as plain arrays indexed by the current snapshot. Every
//! [`POLICY_PUBLISH_EVERY`](crate::worker::POLICY_PUBLISH_EVERY) poll loops
//! (never per frame) the worker copies them into its [`PolicySlot`]: a
//! `try_lock` (one compare-and-swap, skipped when a reader holds the slot —
//! the worker never waits), then `copy`s into vectors whose capacity is
//! already there, so a steady-state publication allocates nothing. Only when
//! the worker moved to a new snapshot does it clone the `Arc` of the
//! snapshot (the names) and the maps of earlier snapshots' totals. Readers
//! also only `try_lock` (retrying after a short sleep), so nobody ever parks
//! on the mutex and an unlock never needs a wake-up system call.

use crate::pipeline::{Model, PolicyView};
use crate::qos::sched::ClassStats;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

/// What one worker last published.
#[derive(Clone, Default)]
pub struct Published {
    /// The snapshot the arrays are indexed by (None before the first publication).
    pub model: Option<Arc<Model>>,
    /// Rule hits (packets, bytes) by `model.policy.hit_names`.
    pub hits: Vec<[u64; 2]>,
    /// Named counters by `model.policy.counter_names`.
    pub named: Vec<[u64; 2]>,
    /// Totals of earlier snapshots, by name.
    pub hits_before: BTreeMap<String, [u64; 2]>,
    /// Meter colour counts of earlier snapshots, by meter instance name.
    pub meter_before: BTreeMap<String, [u64; 3]>,
    /// Frames per colour (green, yellow, red) by meter instance.
    pub meters: Vec<[u64; 3]>,
    /// Egress class counters by port (None: the port has no scheduler).
    pub queues: Vec<Option<[ClassStats; 8]>>,
}

impl Published {
    /// Rule hits by name (`policy.P.from-vm.rule[i]`, `counter.NAME`, …), as
    /// [`Pipeline::rule_hits`](crate::pipeline::Pipeline::rule_hits) gives them.
    pub fn rule_hits(&self) -> BTreeMap<String, [u64; 2]> {
        let mut m = self.hits_before.clone();
        if let Some(model) = &self.model {
            for (name, h) in model.policy.hit_names.iter().zip(&self.hits) {
                let e = m.entry(name.clone()).or_insert([0, 0]);
                e[0] += h[0];
                e[1] += h[1];
            }
            for (name, h) in model.policy.counter_names.iter().zip(&self.named) {
                let e = m.entry(format!("counter.{name}")).or_insert([0, 0]);
                e[0] += h[0];
                e[1] += h[1];
            }
        }
        m
    }
    /// Meter colour counts by meter instance name.
    pub fn meter_counts(&self) -> BTreeMap<String, [u64; 3]> {
        let mut m = self.meter_before.clone();
        if let Some(model) = &self.model {
            for (inst, c) in model.policy.meter_instances.iter().zip(&self.meters) {
                let e = m.entry(inst.1.clone()).or_insert([0; 3]);
                for (x, y) in e.iter_mut().zip(c) {
                    *x += y;
                }
            }
        }
        m
    }
    /// Egress class counters by port name (ports with a scheduler only).
    pub fn queue_stats(&self) -> Vec<(String, [ClassStats; 8])> {
        let Some(model) = &self.model else {
            return Vec::new();
        };
        self.queues
            .iter()
            .enumerate()
            .filter_map(|(p, q)| {
                q.map(|q| {
                    let name = model.ports.get(p).map(|x| x.name.clone());
                    (name.unwrap_or_else(|| format!("port{p}")), q)
                })
            })
            .collect()
    }
}

/// One worker's published policy counters.
#[derive(Default)]
pub struct PolicySlot {
    inner: Mutex<Published>,
}

impl PolicySlot {
    /// Worker side: copy `v` in. Returns false (and does nothing) when a
    /// reader holds the slot; the next publication catches up.
    pub fn publish(&self, v: PolicyView<'_>) -> bool {
        let mut g = match self.inner.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        let fresh = g.model.as_ref().map_or(true, |m| !Arc::ptr_eq(m, v.model));
        if fresh {
            g.model = Some(v.model.clone());
            g.hits_before.clone_from(v.hits_before);
            g.meter_before.clone_from(v.meter_before);
        }
        g.hits.clear();
        g.hits.extend_from_slice(v.hits);
        g.named.clear();
        g.named.extend_from_slice(v.named);
        g.meters.clear();
        g.meters.extend(v.meters.iter().map(|m| m.stats().pkts));
        g.queues.clear();
        g.queues
            .extend(v.sched.iter().map(|s| s.as_ref().map(|s| s.all_stats())));
        true
    }

    /// Reader side: a copy of the last publication (waits only for a worker's
    /// copy in progress, by retrying; never parks the worker).
    pub fn read(&self) -> Published {
        loop {
            match self.inner.try_lock() {
                Ok(g) => return g.clone(),
                Err(TryLockError::Poisoned(p)) => return p.into_inner().clone(),
                Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_micros(20)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::harness::Harness;
    use crate::types::Mac;
    use crate::wire::build::FrameBuilder;

    const CFG: &str = r#"
[switch]
workers = [0]
[[port]]
name = "hv1"
reflective_relay = true
pvid = 10
[[port]]
name = "core"
pvid = 10
[port.egress]
strict = 2
[policy.p]
default = "permit"
[[policy.p.rule]]
action = "deny"
proto = "udp"
dst_port = "9"
[[vm]]
name = "v"
mac = "02:00:00:00:00:01"
vlan = 10
port = "hv1"
policy = "p"
"#;

    fn frame(dport: u16) -> Vec<u8> {
        FrameBuilder::new()
            .src(Mac([2, 0, 0, 0, 0, 1]))
            .dst(Mac::BROADCAST)
            .udp4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 1, dport)
    }

    #[test]
    fn worker_skips_instead_of_waiting_and_reloads_keep_totals() {
        let mut h = Harness::new(Config::parse(CFG).unwrap(), false).unwrap();
        let slot = PolicySlot::default();
        assert!(slot.read().model.is_none());
        assert!(slot.read().rule_hits().is_empty());
        h.run(0, &[&frame(9), &frame(53)], 1);
        {
            // A reader holding the slot: the worker's publication is skipped, not blocked.
            let _g = slot.inner.lock().unwrap();
            assert!(!slot.publish(h.pipeline().policy_view()));
        }
        assert!(slot.read().model.is_none());
        assert!(slot.publish(h.pipeline().policy_view()));
        let p = slot.read();
        assert_eq!(p.rule_hits(), h.rule_hits());
        assert_eq!(p.rule_hits()["policy.p.rule[0] (from-vm)"][0], 1);
        assert_eq!(p.queue_stats()[0].0, "core");
        assert_eq!(
            p.queue_stats()[0].1.iter().map(|c| c.dequeued).sum::<u64>(),
            1
        );
        // New snapshot: the old one's hits stay, by name.
        let text = CFG.replace("dst_port = \"9\"", "dst_port = \"7\"");
        assert_eq!(h.reload(Config::parse(&text).unwrap()).unwrap(), 1);
        h.run(0, &[&frame(7)], 1);
        assert!(slot.publish(h.pipeline().policy_view()));
        let p = slot.read();
        assert_eq!(p.model.as_ref().unwrap().gen, 1);
        assert_eq!(p.rule_hits(), h.rule_hits());
        assert_eq!(p.rule_hits()["policy.p.rule[0] (from-vm)"][0], 2);
    }
}
