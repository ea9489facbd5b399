//! A deterministic 802.1Qbg lab for tests: a hairpin bridge on ring ports
//! with its control thread stepped by hand on simulated time, and hairpin
//! station control planes playing the hypervisors on the ring peers.
#![allow(dead_code)]

use hairpin::buf::{Burst, Pool};
use hairpin::config::Config;
use hairpin::control::plane::ControlPlane;
use hairpin::control::store::{PolicyStore, StaticStore};
use hairpin::control::thread::{attach, ControlThread};
use hairpin::control::Nanos;
use hairpin::port::ring::RingQueue;
use hairpin::runtime::Instance;
use hairpin::types::{Mac, PortId};
use hairpin::util::Clock;
use hairpin::wire::vdp::{AssocRepr, FilterEntry, FilterFormat, Mode, Status, VsiId};
use hairpin::worker::{poll_once, Task};
use std::sync::Arc;

/// VM A (on station S1 behind P1).
pub const A: Mac = Mac([0x52, 0x54, 0, 0, 0, 0x0a]);
/// VM B (on S1 too).
pub const B: Mac = Mac([0x52, 0x54, 0, 0, 0, 0x0b]);
/// Host X (behind P2).
pub const X: Mac = Mac([0x52, 0x54, 0, 0, 0, 0x58]);
/// A's instance id.
pub const UUID_A: [u8; 16] = [
    0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
];
/// B's instance id.
pub const UUID_B: [u8; 16] = [
    0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc9,
];
/// One second.
pub const S: Nanos = 1_000_000_000;

/// The bridge: P1 and P3 are EVB bridge ports (VLANs arrive with VDP), P2 a
/// plain trunk in VLAN 100. Type 5/1 → VLAN 100 with policy "web"; type 6/1 →
/// a pool 200-201 with PCP 5; type 7/1 → VLAN 100 with policy "deny-all".
pub fn bridge_cfg(p1_extra: &str, evb: &str) -> String {
    let p1_vlans = if p1_extra.contains("vlans") {
        ""
    } else {
        "vlans = []"
    };
    format!(
        r#"
[switch]
workers = [0]
pool_size = 2048
[evb]
{evb}
[policy.web]
default = "permit"
[policy.deny-all]
default = "deny"
[[port]]
name = "p1"
mode = "trunk"
{p1_vlans}
evb = "bridge"
{p1_extra}
[[port]]
name = "p2"
mode = "trunk"
vlans = [100]
[[port]]
name = "p3"
mode = "trunk"
vlans = []
evb = "bridge"
reflective_relay = "negotiate"
[[vsi_type]]
id = 5
version = 1
vlan = 100
policy = "web"
[[vsi_type]]
id = 6
version = 1
vlan_pool = "200-201"
pcp = 5
[[vsi_type]]
id = 7
version = 1
vlan = 100
policy = "deny-all"
"#
    )
}

/// A station (edge-vepa with an EVB station uplink).
pub fn station_cfg(evb: &str) -> String {
    format!(
        r#"
[switch]
role = "edge-vepa"
workers = [0]
[evb]
{evb}
[[port]]
name = "up"
uplink = true
mode = "trunk"
vlans = [100]
evb = "station"
[[port]]
name = "vm"
mode = "access"
pvid = 100
"#
    )
}

/// The bridge under test with its control thread and the far ends of its cables.
pub struct Lab {
    pub pool: Arc<Pool>,
    pub inst: Instance,
    pub task: Task,
    pub ctl: ControlThread,
    pub peers: Vec<RingQueue>,
    burst: Burst,
    clock: Clock,
}

impl Lab {
    /// Build from a config with the config's static store.
    pub fn new(cfg: &str) -> Lab {
        let c = Config::parse(cfg).expect("bridge config");
        let store = StaticStore::from_config(&c).expect("store");
        Self::with_store(cfg, Box::new(store))
    }

    /// Build with a given store.
    pub fn with_store(cfg: &str, store: Box<dyn PolicyStore>) -> Lab {
        Self::with_depth(cfg, store, 64)
    }

    /// Build with a given store and control queue depth.
    pub fn with_depth(cfg: &str, store: Box<dyn PolicyStore>, depth: usize) -> Lab {
        let c = Config::parse(cfg).expect("bridge config");
        let pool = Arc::new(Pool::new(2048, 1600).unwrap());
        let mut inst = Instance::new(c.clone(), pool.clone()).unwrap();
        let peers = inst
            .peers
            .iter_mut()
            .map(|p| p.take().unwrap().take(0).unwrap())
            .collect();
        let (mut task, _punt) = inst.task(0).unwrap();
        let wiring = attach(&mut [&mut task], &pool, depth);
        let ctl = ControlThread::new(&c, &inst.switch, wiring, store);
        Lab {
            pool,
            inst,
            task,
            ctl,
            peers,
            burst: Burst::new(32),
            clock: Clock::new(),
        }
    }

    fn poll(&mut self) {
        for _ in 0..4 {
            poll_once(&mut self.task, &mut self.burst, &self.clock);
        }
    }

    /// Run the data path, then the control thread at `now`, then the data
    /// path again (so control frames go out).
    pub fn step(&mut self, now: Nanos) {
        self.poll();
        self.ctl.step(now);
        self.poll();
    }

    /// A frame arrives on port `p`.
    pub fn send(&mut self, p: usize, f: &[u8]) {
        let mut b = self.pool.alloc().unwrap();
        assert!(self.pool.fill(&mut b, f));
        self.peers[p].tx_one(b).expect("ring room");
    }

    /// Frames that left port `p` since the last call.
    pub fn recv(&mut self, p: usize) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        while let Some(b) = self.peers[p].rx_one() {
            v.push(self.pool.data(&b).to_vec());
            self.pool.free(b);
        }
        v
    }

    /// Reflective relay on port `p` in the current data-path snapshot.
    pub fn rr(&self, p: usize) -> bool {
        self.inst.switch.cell.load().ports[p].rr
    }

    /// The VSIs of the current snapshot: (name, port, MAC, VLAN, policy name).
    pub fn vsis(&self) -> Vec<(String, u16, Mac, u16, Option<String>)> {
        let m = self.inst.switch.cell.load();
        m.policy
            .vsis
            .iter()
            .map(|v| {
                (
                    v.name.clone(),
                    v.port.0,
                    v.mac,
                    v.vid,
                    v.policy.map(|i| m.policy.policies[i as usize].name.clone()),
                )
            })
            .collect()
    }

    /// Is VLAN `vid` a member VLAN of port `p` in the current snapshot?
    pub fn port_has_vlan(&self, p: usize, vid: u16) -> bool {
        self.inst.switch.cell.load().ports[p].vlans.contains(vid)
    }

    /// The FDB entry for (mac, vid): (port, static).
    pub fn fdb(&self, mac: Mac, vid: u16) -> Option<(u16, bool)> {
        self.inst
            .switch
            .fdb
            .lookup(mac, hairpin::types::Vid(vid), self.clock.now_ms())
            .map(|e| (e.port.0, e.is_static))
    }

    /// A core counter by JSON name (a number or a nested object).
    pub fn ctr(&self, name: &str) -> serde_json::Value {
        self.task.pipe.ctr.to_json()[name].clone()
    }
}

/// A station control plane on ring peer `port` of the lab.
pub struct Station {
    pub plane: ControlPlane,
    pub port: usize,
}

impl Station {
    /// A station with `[evb]` settings `evb` on lab port `port`.
    pub fn new(evb: &str, port: usize) -> Station {
        let c = Config::parse(&station_cfg(evb)).expect("station config");
        Station {
            plane: ControlPlane::new(&c, Box::new(StaticStore::default())),
            port,
        }
    }

    /// Ask for `req` (manager id all zero).
    pub fn request(&mut self, lab: &mut Lab, now: Nanos, req: AssocRepr) {
        let mut out = Vec::new();
        self.plane
            .station_request(now, PortId(0), [0; 16], req, &mut out)
            .expect("station request");
        for (_, f) in out {
            lab.send(self.port, &f);
        }
    }
}

/// Let the bridge and the stations talk at `now` until nothing moves.
/// Returns the frames the bridge sent to each station (for inspection).
pub fn exchange(lab: &mut Lab, st: &mut [&mut Station], now: Nanos) -> Vec<Vec<Vec<u8>>> {
    let mut seen = vec![Vec::new(); st.len()];
    for _ in 0..20 {
        let mut moved = false;
        for s in st.iter_mut() {
            let mut out = Vec::new();
            s.plane.tick(now, &mut out);
            for (_, f) in out {
                lab.send(s.port, &f);
                moved = true;
            }
        }
        lab.step(now);
        for (k, s) in st.iter_mut().enumerate() {
            for f in lab.recv(s.port) {
                let ctl = f[..6] == [0x01, 0x80, 0xc2, 0, 0, 0];
                if ctl {
                    let mut out = Vec::new();
                    s.plane.rx(now, PortId(0), &f, &mut out);
                    for (_, g) in out {
                        lab.send(s.port, &g);
                    }
                    seen[k].push(f);
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    seen
}

/// An Associate (or other mode) for a MAC/VID VSI with a UUID id.
pub fn req(mode: Mode, type_id: u32, uuid: [u8; 16], mac: Mac, vid: u16) -> AssocRepr {
    AssocRepr {
        mode,
        status: Status(0),
        type_id,
        version: 1,
        vsiid: VsiId::uuid(uuid),
        filter_format: FilterFormat::MacVid,
        filters: vec![FilterEntry::mac_vid(mac, vid)],
    }
}

/// An 802.1Q-tagged frame src → dst in `vid` with a marker byte.
pub fn frame(src: Mac, dst: Mac, vid: u16, id: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(60, 0);
    f[59] = id;
    f
}

/// Frames in `fs` that are not control frames.
pub fn data(fs: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    fs.into_iter()
        .filter(|f| f[..5] != [0x01, 0x80, 0xc2, 0, 0])
        .collect()
}

/// The association TLVs in the ECP requests among `frames` (the bridge's
/// replies and unsolicited De-Associates), parsed.
pub fn vdp_tlvs(frames: &[Vec<u8>]) -> Vec<AssocRepr> {
    use hairpin::wire::ecp::{Ecp, Op};
    use hairpin::wire::vdp::{Pdu, VdpTlv};
    let mut v = Vec::new();
    for f in frames {
        if f.len() < 18 || f[12..14] != [0x89, 0x40] {
            continue;
        }
        let Ok(e) = Ecp::parse(&f[14..]) else {
            continue;
        };
        if e.op() != Op::Request {
            continue;
        }
        let Ok(p) = Pdu::parse(e.payload()) else {
            continue;
        };
        for t in p.tlvs() {
            if let VdpTlv::Assoc(m, val) = t {
                v.push(AssocRepr::parse(m, val).expect("the bridge sends valid TLVs"));
            }
        }
    }
    v
}

/// ECP frame (Ethernet header + ECP header + ULPDU) as a station would send it, seq `seq`.
pub fn ecp_frame(seq: u16, ulpdu: &[u8]) -> Vec<u8> {
    let mut f = vec![
        0x01, 0x80, 0xc2, 0, 0, 0, 0x02, 0, 0, 0, 0, 0x01, 0x89, 0x40,
    ];
    f.extend_from_slice(&[0x10, 0x01]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(ulpdu);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// Two labs joined by a cable between `a`'s port `ap` and `b`'s port `bp`:
/// step both at `now` and carry frames across until nothing moves. Returns
/// the data (non-control) frames that crossed, a → b and b → a.
pub fn cable(
    a: &mut Lab,
    ap: usize,
    b: &mut Lab,
    bp: usize,
    now: Nanos,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut ab, mut ba) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        a.step(now);
        let fa = a.recv(ap);
        for f in &fa {
            b.send(bp, f);
        }
        b.step(now);
        let fb = b.recv(bp);
        for f in &fb {
            a.send(ap, f);
        }
        if fa.is_empty() && fb.is_empty() {
            break;
        }
        ab.extend(data(fa));
        ba.extend(data(fb));
    }
    (ab, ba)
}

/// An edge-vepa station whose uplink (port 0) runs EVB as the station and
/// announces VM A (behind access port `vm1`, VSI type `type_id`) with `vlan`.
pub fn edge_cfg(type_id: u32, vlan: u16) -> String {
    format!(
        r#"
[switch]
role = "edge-vepa"
workers = [0]
pool_size = 2048
[[port]]
name = "up"
uplink = true
mode = "trunk"
vlans = []
evb = "station"
[[port]]
name = "vm1"
mode = "access"
[[vsi]]
name = "a"
mac = "{A}"
port = "vm1"
type_id = {type_id}
type_version = 1
uuid = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
vlan = {vlan}
"#
    )
}
