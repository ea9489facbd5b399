//! Shared helpers for the conformance tests: build frames, write them as
//! per-port input pcaps in a fresh temp dir, run `hairpin::replay::replay`,
//! and read every port's egress pcap back.
#![allow(dead_code)]

use hairpin::config::Config;
use hairpin::pcap::{PcapReader, PcapWriter};
use hairpin::stats::DropReason;
use hairpin::types::Mac;
use hairpin::wire::FrameBuilder;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// VM A (station S1 behind P1 in the matrix).
pub const A: Mac = Mac([0x02, 0, 0, 0, 0, 0x0a]);
/// VM B (station S1 behind P1).
pub const B: Mac = Mac([0x02, 0, 0, 0, 0, 0x0b]);
/// VM C (station S2 behind P3).
pub const C: Mac = Mac([0x02, 0, 0, 0, 0, 0x0c]);
/// A MAC nobody has sent from.
pub const D: Mac = Mac([0x02, 0, 0, 0, 0, 0x0d]);
/// Host X behind P2.
pub const X: Mac = Mac([0x02, 0, 0, 0, 0, 0x58]);
/// The switch's own MAC (set as `[switch] mac` where a test needs it).
pub const SW: Mac = Mac([0x02, 0xaa, 0, 0, 0, 0x01]);
/// Broadcast.
pub const BC: Mac = Mac::BROADCAST;
/// An IPv4 multicast MAC (224.1.2.3).
pub const MC: Mac = Mac([0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]);

/// One millisecond in pcap nanoseconds.
pub const MS: u64 = 1_000_000;
/// One second in pcap nanoseconds.
pub const SEC: u64 = 1_000_000_000;
/// Base timestamp of generated captures: 1 s after the epoch. (Real-world
/// epoch timestamps trip a replay/FDB clock bug; see
/// `replay::epoch_timestamps_learn` in tests/replay.rs.)
pub const T0: u64 = SEC;

/// Frames with their timestamps (ns).
pub type Timed = Vec<(u64, Vec<u8>)>;

/// An untagged frame `src` → `dst`; `id` goes into the payload so every frame is distinct.
pub fn fr(src: Mac, dst: Mac, id: u8) -> Vec<u8> {
    FrameBuilder::new()
        .src(src)
        .dst(dst)
        .payload(&[id; 16])
        .raw()
}

/// An 802.1Q-tagged frame (VID `vid`, PCP 0) `src` → `dst`.
pub fn frv(src: Mac, dst: Mac, vid: u16, id: u8) -> Vec<u8> {
    FrameBuilder::new()
        .src(src)
        .dst(dst)
        .vlan(vid)
        .payload(&[id; 16])
        .raw()
}

/// `f` (untagged) with an 802.1Q tag for `vid` inserted after the MACs: what a trunk sends.
pub fn tagged(f: &[u8], vid: u16) -> Vec<u8> {
    assert_ne!(u16::from_be_bytes([f[12], f[13]]), 0x8100, "already tagged");
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&[0x81, 0x00]);
    v.extend_from_slice(&(vid & 0xfff).to_be_bytes());
    v.extend_from_slice(&f[12..]);
    v
}

/// `f` (tagged) with its outer tag removed: what an access port sends.
pub fn untagged(f: &[u8]) -> Vec<u8> {
    assert_eq!(u16::from_be_bytes([f[12], f[13]]), 0x8100, "not tagged");
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&f[16..]);
    v
}

/// `f` with its destination MAC replaced (multicast-to-unicast copies).
pub fn with_dst(f: &[u8], dst: Mac) -> Vec<u8> {
    let mut v = f.to_vec();
    v[..6].copy_from_slice(&dst.0);
    v
}

/// VLAN of a frame on the wire: `Some(vid)` when 802.1Q-tagged, `None` when untagged.
pub fn wire_vid(f: &[u8]) -> Option<u16> {
    (u16::from_be_bytes([f[12], f[13]]) == 0x8100)
        .then(|| u16::from_be_bytes([f[14], f[15]]) & 0xfff)
}

/// One input frame: (pcap timestamp ns, ingress port, bytes).
pub type Ev = (u64, &'static str, Vec<u8>);

/// Frames in the given order, 1 ms apart, starting at [`T0`].
pub fn seq(frames: Vec<(&'static str, Vec<u8>)>) -> Vec<Ev> {
    frames
        .into_iter()
        .enumerate()
        .map(|(i, (p, f))| (T0 + (i as u64 + 1) * MS, p, f))
        .collect()
}

/// A fresh, empty directory under cargo's per-target test temp dir.
pub fn tmpdir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "conf-{}-{n}-{}",
        std::process::id(),
        tag.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Write `frames` (ts ns, bytes) as a pcap file.
pub fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let mut w = PcapWriter::create(path).expect("create pcap");
    for (ts, f) in frames {
        w.write(*ts, f).expect("write pcap");
    }
    w.flush().expect("flush pcap");
}

/// Every record of a pcap file.
pub fn read_pcap(path: &Path) -> Vec<(u64, Vec<u8>)> {
    PcapReader::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Result of one replay.
pub struct Out {
    /// Where the inputs and outputs are.
    pub dir: PathBuf,
    /// The counters JSON `replay` returned.
    pub json: Value,
    /// Egress per port name: (timestamp, bytes) in the order written.
    pub egress: BTreeMap<String, Vec<(u64, Vec<u8>)>>,
}

/// Write one pcap per input port into a fresh dir; returns the dir and `--in` list.
pub fn write_inputs(tag: &str, events: &[Ev]) -> (PathBuf, Vec<(String, PathBuf)>) {
    let dir = tmpdir(tag);
    let mut per_port: Vec<(&str, Timed)> = Vec::new();
    for (ts, p, f) in events {
        match per_port.iter_mut().find(|(q, _)| q == p) {
            Some((_, v)) => v.push((*ts, f.clone())),
            None => per_port.push((p, vec![(*ts, f.clone())])),
        }
    }
    let mut inputs = Vec::new();
    for (p, frames) in &per_port {
        let path = dir.join(format!("in-{p}.pcap"));
        write_pcap(&path, frames);
        inputs.push((p.to_string(), path));
    }
    (dir, inputs)
}

/// Replay `events` through the switch of `cfg` with burst size `burst`.
pub fn try_run_burst(cfg: &str, events: &[Ev], burst: usize) -> Result<Out, String> {
    let config = Config::parse(cfg).map_err(|e| format!("config: {e}"))?;
    let names: Vec<String> = config.port.iter().map(|p| p.name.clone()).collect();
    let (dir, inputs) = write_inputs("run", events);
    let out_dir = dir.join("out");
    let json = hairpin::replay::replay(config, &inputs, &out_dir, burst)?;
    let egress = names
        .into_iter()
        .map(|n| {
            let f = read_pcap(&out_dir.join(format!("{n}.pcap")));
            (n, f)
        })
        .collect();
    Ok(Out { dir, json, egress })
}

/// Replay with burst 32 (the CLI default); panics on error.
pub fn run(cfg: &str, events: &[Ev]) -> Out {
    run_burst(cfg, events, 32)
}

/// Replay with the given burst size; panics on error.
pub fn run_burst(cfg: &str, events: &[Ev], burst: usize) -> Out {
    try_run_burst(cfg, events, burst).unwrap_or_else(|e| panic!("replay failed: {e}"))
}

impl Out {
    /// Bytes of every frame that left `port`, in order.
    pub fn port(&self, port: &str) -> Vec<Vec<u8>> {
        self.egress
            .get(port)
            .unwrap_or_else(|| panic!("no port {port:?}"))
            .iter()
            .map(|(_, f)| f.clone())
            .collect()
    }

    /// Assert the egress of every port: the listed ports sent exactly these
    /// frames in this order, every other port sent nothing.
    #[track_caller]
    pub fn assert_egress(&self, expect: &[(&str, Vec<Vec<u8>>)]) {
        for (p, _) in expect {
            assert!(self.egress.contains_key(*p), "no port {p:?} in the config");
        }
        for name in self.egress.keys() {
            let want: Vec<Vec<u8>> = expect
                .iter()
                .find(|(p, _)| p == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let got = self.port(name);
            assert!(
                got == want,
                "egress of port {name:?} differs\n got: {}\nwant: {}\ncounters: {}",
                hexes(&got),
                hexes(&want),
                self.json["counters"]
            );
        }
    }

    /// A core counter by name (`reflected`, `punted`, `fdb_moves`, ...).
    pub fn ctr(&self, name: &str) -> u64 {
        self.json["counters"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name:?} in {}", self.json["counters"]))
    }

    /// Drops counted for `r`.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.json["counters"]["drops"][r.name()]
            .as_u64()
            .unwrap_or_else(|| panic!("no drop reason {:?}", r.name()))
    }

    /// Total drops.
    pub fn drops_total(&self) -> u64 {
        self.json["counters"]["drops_total"].as_u64().unwrap()
    }

    /// Assert the only drops are `n` of `r` (n = 0: no drops at all).
    #[track_caller]
    pub fn assert_drops(&self, expect: &[(DropReason, u64)]) {
        let mut total = 0;
        for (r, n) in expect {
            assert_eq!(
                self.drops(*r),
                *n,
                "drops[{}] in {}",
                r.name(),
                self.json["counters"]["drops"]
            );
            total += n;
        }
        assert_eq!(
            self.drops_total(),
            total,
            "unexpected drops: {}",
            self.json["counters"]["drops"]
        );
    }

    /// The FDB as (mac, vlan, port, static), sorted.
    pub fn fdb(&self) -> Vec<(String, u16, String, bool)> {
        let mut v: Vec<_> = self.json["fdb"]
            .as_array()
            .expect("fdb array")
            .iter()
            .map(|e| {
                (
                    e["mac"].as_str().unwrap().to_string(),
                    e["vlan"].as_u64().unwrap() as u16,
                    e["port"].as_str().unwrap().to_string(),
                    e["static"].as_bool().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Where (mac, vlan) is in the FDB: (port, static).
    pub fn fdb_at(&self, mac: Mac, vlan: u16) -> Option<(String, bool)> {
        let m = mac.to_string();
        self.fdb()
            .into_iter()
            .find(|(a, v, _, _)| *a == m && *v == vlan)
            .map(|(_, _, p, s)| (p, s))
    }
}

/// Frames as hex, one per line (for failure messages).
pub fn hexes(fs: &[Vec<u8>]) -> String {
    if fs.is_empty() {
        return "(none)".into();
    }
    fs.iter()
        .map(|f| {
            let h: String = f.iter().map(|b| format!("{b:02x}")).collect();
            format!("\n  [{}] {h}", f.len())
        })
        .collect()
}

/// An FDB row for comparison with [`Out::fdb`].
pub fn row(mac: Mac, vlan: u16, port: &str, is_static: bool) -> (String, u16, String, bool) {
    (mac.to_string(), vlan, port.to_string(), is_static)
}

/// The matrix topology: P1 (station S1: A, B), P2 (host X), P3 (station S2: C),
/// all access ports in VLAN 10; `p1` holds extra keys for P1 (e.g.
/// `reflective_relay = true`), `extra` is appended (more tables).
pub fn cfg3(switch: &str, p1: &str, p2: &str, p3: &str, extra: &str) -> String {
    format!(
        "[switch]\nrole = \"bridge\"\n{switch}\n\
         [[port]]\nname = \"p1\"\npvid = 10\n{p1}\n\
         [[port]]\nname = \"p2\"\npvid = 10\n{p2}\n\
         [[port]]\nname = \"p3\"\npvid = 10\n{p3}\n{extra}"
    )
}

/// P1 with reflective relay on, P2 and P3 plain: the matrix's default setup.
pub fn cfg_rr() -> String {
    cfg3("", "reflective_relay = true", "", "", "")
}
