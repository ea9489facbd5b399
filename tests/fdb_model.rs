//! `Fdb` against a plain `HashMap` reference model, over random operation
//! sequences, with a small table so the capacity and per-port limits are hit.
//!
//! The model states the documented semantics directly:
//! - an entry older than the ageing time is invisible to lookups (lazy
//!   ageing) but keeps its slot and its per-port count until `age`, `remove`,
//!   `flush_port` or a re-learn of the same key reclaims it;
//! - static entries never move and never age, count against `capacity` but
//!   not against the per-port learning limit;
//! - learning refused at capacity (`Full`) or at the port's limit
//!   (`PortLimit`) never evicts another entry;
//! - a station move onto a port at its limit removes the stale mapping and
//!   learns nothing (`PortLimit`);
//! - a known source on the same port within the refresh window is `Known`
//!   (nothing written), later `Refreshed`; re-learning an aged-out entry is
//!   `New`, never `Moved`/`Refreshed`.
//!
//! Capacity stays at most `WAYS` (7): then a key's candidate buckets always
//! have a free slot below capacity, so the table's placement (two-choice
//! hashing, eviction of aged-out entries from full buckets) cannot show.

use hairpin::fdb::{Entry, Fdb, Learn, REFRESH_MS, WAYS};
use hairpin::types::{Mac, PortId, Vid};
use proptest::prelude::*;
use std::collections::HashMap;

const PORTS: u16 = 4;
const MACS: u64 = 6;
const VIDS: [u16; 2] = [10, 20];

fn mac(i: u64) -> Mac {
    Mac::from_u64(0x0200_0000_0000 | i)
}

#[derive(Clone, Copy, Debug)]
struct MEntry {
    port: u16,
    stat: bool,
    seen: u64,
}

struct Model {
    map: HashMap<(u64, u16), MEntry>,
    capacity: usize,
    limit: usize,
    aging: u64,
}

impl Model {
    fn live(&self, e: &MEntry, now: u64) -> bool {
        e.stat || self.aging == 0 || now.saturating_sub(e.seen) <= self.aging
    }
    /// Learned (dynamic) entries on a port, aged-out ones not yet reclaimed included.
    fn learned_on(&self, p: u16) -> usize {
        self.map.values().filter(|e| !e.stat && e.port == p).count()
    }
    fn refresh_window(&self) -> u64 {
        if self.aging == 0 {
            REFRESH_MS
        } else {
            REFRESH_MS.min(self.aging)
        }
    }
    fn learn(&mut self, k: (u64, u16), port: u16, now: u64) -> Learn {
        let limit_hit = self.learned_on(port) >= self.limit;
        match self.map.get(&k).copied() {
            Some(e) if e.stat => {
                if e.port == port {
                    Learn::Known
                } else {
                    Learn::Static(PortId(e.port))
                }
            }
            Some(e) if e.port == port => {
                if now.saturating_sub(e.seen) < self.refresh_window() {
                    return Learn::Known;
                }
                let was_live = self.live(&e, now);
                self.map.get_mut(&k).unwrap().seen = now;
                if was_live {
                    Learn::Refreshed
                } else {
                    Learn::New
                }
            }
            Some(e) => {
                if limit_hit {
                    self.map.remove(&k);
                    return Learn::PortLimit;
                }
                let was_live = self.live(&e, now);
                self.map.insert(
                    k,
                    MEntry {
                        port,
                        stat: false,
                        seen: now,
                    },
                );
                if was_live {
                    Learn::Moved(PortId(e.port))
                } else {
                    Learn::New
                }
            }
            None => {
                if limit_hit {
                    Learn::PortLimit
                } else if self.map.len() >= self.capacity {
                    Learn::Full
                } else {
                    self.map.insert(
                        k,
                        MEntry {
                            port,
                            stat: false,
                            seen: now,
                        },
                    );
                    Learn::New
                }
            }
        }
    }
    fn lookup(&self, k: (u64, u16), now: u64) -> Option<Entry> {
        self.map
            .get(&k)
            .filter(|e| self.live(e, now))
            .map(|e| Entry {
                port: PortId(e.port),
                is_static: e.stat,
                seen_ms: e.seen,
            })
    }
    fn insert_static(&mut self, k: (u64, u16), port: u16) -> bool {
        self.map.remove(&k);
        if self.map.len() >= self.capacity {
            return false;
        }
        self.map.insert(
            k,
            MEntry {
                port,
                stat: true,
                seen: 0,
            },
        );
        true
    }
    fn remove_where(&mut self, f: impl Fn(&MEntry) -> bool) -> usize {
        let before = self.map.len();
        self.map.retain(|_, e| !f(e));
        before - self.map.len()
    }
    fn age(&mut self, now: u64) -> usize {
        if self.aging == 0 {
            return 0;
        }
        let aging = self.aging;
        self.remove_where(|e| !e.stat && now.saturating_sub(e.seen) > aging)
    }
    /// Live entries as (vid, mac, port, static, seen), in dump order.
    fn dump(&self, now: u64) -> Vec<(u16, u64, u16, bool, u64)> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .filter(|(_, e)| self.live(e, now))
            .map(|(&(m, vid), e)| (vid, m, e.port, e.stat, e.seen))
            .collect();
        v.sort();
        v
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Advance the clock by this many ms, then learn.
    Learn {
        dt: u64,
        mac: u64,
        vid: u16,
        port: u16,
    },
    Lookup {
        dt: u64,
        mac: u64,
        vid: u16,
    },
    Static {
        mac: u64,
        vid: u16,
        port: u16,
    },
    Remove {
        mac: u64,
        vid: u16,
    },
    Age {
        dt: u64,
    },
    Flush {
        port: u16,
    },
}

fn dt() -> impl Strategy<Value = u64> {
    // Mostly small steps (inside the refresh window), sometimes beyond the ageing time.
    prop_oneof![4 => 0u64..300, 2 => 300u64..1500, 1 => 1500u64..5000]
}

fn op() -> impl Strategy<Value = Op> {
    let m = 0..MACS;
    let v = prop::sample::select(VIDS.to_vec());
    let p = 0..PORTS;
    prop_oneof![
        8 => (dt(), m.clone(), v.clone(), p.clone())
            .prop_map(|(dt, mac, vid, port)| Op::Learn { dt, mac, vid, port }),
        4 => (dt(), m.clone(), v.clone()).prop_map(|(dt, mac, vid)| Op::Lookup { dt, mac, vid }),
        1 => (m.clone(), v.clone(), p.clone()).prop_map(|(mac, vid, port)| Op::Static { mac, vid, port }),
        1 => (m, v).prop_map(|(mac, vid)| Op::Remove { mac, vid }),
        1 => dt().prop_map(|dt| Op::Age { dt }),
        1 => p.prop_map(|port| Op::Flush { port }),
    ]
}

fn params() -> impl Strategy<Value = (usize, usize, u64)> {
    (
        2usize..=WAYS,
        prop::sample::select(vec![0u64, 500, 1000, 3000]),
    )
        .prop_flat_map(|(cap, aging)| (Just(cap), 1usize..=cap.min(4), Just(aging)))
}

fn check_counts(f: &Fdb, m: &Model, step: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(f.len(), m.map.len(), "len after step {}", step);
    for p in 0..PORTS {
        prop_assert_eq!(
            f.learned_on(PortId(p)),
            m.learned_on(p),
            "learned_on({}) after step {}",
            p,
            step
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fdb_matches_model((capacity, limit, aging) in params(), ops in prop::collection::vec(op(), 1..120)) {
        let f = Fdb::new(capacity, limit, aging);
        let mut m = Model { map: HashMap::new(), capacity, limit, aging };
        let mut now = 0u64;
        for (i, o) in ops.iter().enumerate() {
            match *o {
                Op::Learn { dt, mac: mi, vid, port } => {
                    now += dt;
                    let got = f.learn(mac(mi), Vid(vid), PortId(port), now);
                    let want = m.learn((mac(mi).to_u64(), vid), port, now);
                    prop_assert_eq!(got, want, "step {}: {:?} at {}", i, o, now);
                }
                Op::Lookup { dt, mac: mi, vid } => {
                    now += dt;
                    let got = f.lookup(mac(mi), Vid(vid), now);
                    let want = m.lookup((mac(mi).to_u64(), vid), now);
                    prop_assert_eq!(got, want, "step {}: {:?} at {}", i, o, now);
                }
                Op::Static { mac: mi, vid, port } => {
                    let got = f.insert_static(mac(mi), Vid(vid), PortId(port));
                    let want = m.insert_static((mac(mi).to_u64(), vid), port);
                    prop_assert_eq!(got, want, "step {}: {:?}", i, o);
                }
                Op::Remove { mac: mi, vid } => {
                    let got = f.remove(mac(mi), Vid(vid));
                    let want = m.map.remove(&(mac(mi).to_u64(), vid)).is_some();
                    prop_assert_eq!(got, want, "step {}: {:?}", i, o);
                }
                Op::Age { dt } => {
                    now += dt;
                    prop_assert_eq!(f.age(now), m.age(now), "step {}: {:?} at {}", i, o, now);
                }
                Op::Flush { port } => {
                    let got = f.flush_port(PortId(port));
                    let want = m.remove_where(|e| !e.stat && e.port == port);
                    prop_assert_eq!(got, want, "step {}: {:?}", i, o);
                }
            }
            check_counts(&f, &m, i)?;
        }
        // Every key, at the end and well after everything learned has aged.
        for later in [now, now + 10_000] {
            for mi in 0..MACS {
                for &vid in &VIDS {
                    prop_assert_eq!(
                        f.lookup(mac(mi), Vid(vid), later),
                        m.lookup((mac(mi).to_u64(), vid), later)
                    );
                }
            }
            let dump: Vec<_> = f
                .dump(later)
                .into_iter()
                .map(|r| (r.vid, r.mac.to_u64(), r.port, r.is_static, r.seen_ms))
                .collect();
            prop_assert_eq!(dump, m.dump(later));
        }
    }
}

/// The limits, pinned: a port at its limit refuses new sources and a move
/// onto it drops the stale mapping; the rest of the table is untouched.
#[test]
fn move_onto_full_port_forgets_the_old_port() {
    let f = Fdb::new(WAYS, 1, 0);
    assert_eq!(f.learn(mac(1), Vid(10), PortId(1), 0), Learn::New);
    assert_eq!(f.learn(mac(2), Vid(10), PortId(2), 0), Learn::New);
    assert_eq!(f.learn(mac(1), Vid(10), PortId(2), 5), Learn::PortLimit);
    assert_eq!(f.lookup(mac(1), Vid(10), 5), None, "stale mapping removed");
    assert_eq!(f.lookup(mac(2), Vid(10), 5).unwrap().port, PortId(2));
    assert_eq!(f.learned_on(PortId(1)), 0);
    assert_eq!(f.learned_on(PortId(2)), 1);
}
