//! Stream definitions (TOML `[[stream]]` tables or `--stream k=v,...` flags),
//! their validation against a switch config, and per-frame building.
//!
//! A compiled [`Stream`] holds one template frame per distinct size (the
//! signature bytes zero, checksums valid). Building frame `k` copies the
//! template for its size, writes the fields its ranges vary and the
//! signature, and patches the IPv4 header and L4 checksums incrementally
//! (RFC 1624) — no full checksum pass per frame.

use super::sig::{self, Signature, SIG_LEN};
use crate::config::{Config, PortMode};
use crate::types::Mac;
use crate::wire::build::FrameBuilder;
use crate::wire::vlan::Tci;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Smallest and largest frame size on the wire (with the 4-byte FCS).
pub const SIZE_RANGE: (u32, u32) = (64, 9000);
/// Bytes of FCS counted in a frame size but not built (ports carry frames without FCS).
pub const FCS: usize = 4;
/// Bytes of preamble, start delimiter and inter-frame gap per frame on the wire.
pub const WIRE_OVERHEAD: u64 = 20;
/// The IMIX pattern: 7 × 64, 4 × 594, 1 × 1518 bytes, interleaved.
pub const IMIX: [u32; 12] = [64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 594, 64];
/// Distinct sizes a size range may produce (one template each).
pub const MAX_SIZES: usize = 64;

/// A frame size: a number of bytes (with FCS) or `"imix"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SizeSpec {
    /// Bytes on the wire including the FCS.
    Bytes(u32),
    /// `"imix"` (or a number written as a string).
    Name(String),
}

impl Default for SizeSpec {
    fn default() -> Self {
        SizeSpec::Bytes(64)
    }
}

/// A value in a range bound: a number or an address / numeric string.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Val {
    /// A number.
    N(u64),
    /// An address or a number as text.
    S(String),
}

/// A field range as pktgen-dpdk's `range`: the value starts at `start`
/// (default `min`), grows by `inc` per frame and wraps from past `max` to `min`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RangeTable {
    /// First value (default `min`).
    #[serde(default)]
    pub start: Option<Val>,
    /// Smallest value.
    pub min: Val,
    /// Largest value.
    pub max: Val,
    /// Step per frame (default 1).
    #[serde(default = "one")]
    pub inc: u64,
}

fn one() -> u64 {
    1
}

/// A range: a table, or the short text form `"MIN-MAX"` / `"MIN-MAX/INC"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RangeIn {
    /// `{ min = .., max = .., inc = .., start = .. }`.
    Table(RangeTable),
    /// `"1000-1999"` or `"10.0.0.1-10.0.0.254/2"`.
    Text(String),
}

/// The fields a stream may vary per frame.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    /// Source IP (IPv4, or IPv6 varying at most the low 32 bits).
    #[serde(default)]
    pub src_ip: Option<RangeIn>,
    /// Destination IP.
    #[serde(default)]
    pub dst_ip: Option<RangeIn>,
    /// Source L4 port.
    #[serde(default)]
    pub src_port: Option<RangeIn>,
    /// Destination L4 port.
    #[serde(default)]
    pub dst_port: Option<RangeIn>,
    /// VLAN ID (every value must be a VLAN of the ports and VMs involved).
    #[serde(default)]
    pub vlan: Option<RangeIn>,
    /// Frame size (at most [`MAX_SIZES`] distinct values).
    #[serde(default)]
    pub size: Option<RangeIn>,
}

/// IP version of a stream.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpVer {
    /// IPv4.
    #[default]
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// L4 protocol of a stream.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum L4 {
    /// UDP.
    #[default]
    Udp,
    /// TCP (ACK segments).
    Tcp,
}

/// One `[[stream]]`: traffic from one VM to another.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// Name in results (default `SRC->DST`).
    #[serde(default)]
    pub name: Option<String>,
    /// Sending VM (a `[[vm]]` name of the switch config).
    pub src: String,
    /// Receiving VM.
    pub dst: String,
    /// 802.1Q VID to tag with (trunk ports only; default: the VM's VLAN,
    /// untagged when that is the port's native VLAN).
    #[serde(default)]
    pub vlan: Option<u16>,
    /// 802.1p priority in the tag (0..=7).
    #[serde(default)]
    pub pcp: u8,
    /// `ipv4` or `ipv6`.
    #[serde(default)]
    pub ip: IpVer,
    /// `udp` or `tcp`.
    #[serde(default)]
    pub proto: L4,
    /// Source address (default 10.0.0.<src VM index+1> or fd00::<index+1>).
    #[serde(default)]
    pub src_ip: Option<String>,
    /// Destination address (default from the destination VM's index).
    #[serde(default)]
    pub dst_ip: Option<String>,
    /// Source L4 port (default 1024).
    #[serde(default = "d_port")]
    pub src_port: u16,
    /// Destination L4 port (default 1024).
    #[serde(default = "d_port")]
    pub dst_port: u16,
    /// Frame size with FCS, 64..=9000, or `"imix"`.
    #[serde(default)]
    pub size: SizeSpec,
    /// `"max"` (default), `"N pps"`/`"N kpps"`/`"N Mpps"`, a plain number of
    /// frames per second, or `"P%"` of the line rate.
    #[serde(default)]
    pub rate: Option<Val>,
    /// Frames to send (default: until the run's duration ends).
    #[serde(default)]
    pub count: Option<u64>,
    /// Fields varied per frame.
    #[serde(default)]
    pub range: RangeSpec,
}

fn d_port() -> u16 {
    1024
}

/// The run-wide part of a pktgen file: `[pktgen]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Seconds to send (default 2; a stream with `count` stops earlier).
    #[serde(default)]
    pub duration: Option<f64>,
    /// Frames per stream (overrides `duration` for streams without `count`).
    #[serde(default)]
    pub count: Option<u64>,
    /// Largest burst handed to a port at once (1..=256).
    #[serde(default = "d_burst")]
    pub burst: usize,
    /// Line rate that `%` rates refer to, e.g. `"10G"`, `"25G"`, `"1000M"`.
    #[serde(default = "d_line")]
    pub line_rate: String,
    /// Write a TSC timestamp into each frame and record latency (default true).
    #[serde(default = "d_true")]
    pub timestamps: bool,
}

fn d_burst() -> usize {
    32
}
fn d_line() -> String {
    "10G".into()
}
fn d_true() -> bool {
    true
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            duration: None,
            count: None,
            burst: d_burst(),
            line_rate: d_line(),
            timestamps: true,
        }
    }
}

/// A pktgen file: `[pktgen]` and `[[stream]]`s.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PktgenFile {
    /// Run settings.
    #[serde(default)]
    pub pktgen: RunSpec,
    /// Streams.
    #[serde(default)]
    pub stream: Vec<StreamSpec>,
}

impl PktgenFile {
    /// Parse TOML; errors name the key.
    pub fn parse(text: &str) -> Result<PktgenFile, String> {
        let de = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let p = e.path().to_string();
            format!("{p}: {}", e.into_inner().message().trim())
        })
    }
}

/// Parse one `--stream` flag: `key=value` pairs separated by commas, the
/// same keys as a `[[stream]]` table; ranges as `range.src_port=1000-1999`.
pub fn parse_stream_flag(s: &str) -> Result<StreamSpec, String> {
    let mut top = toml::Table::new();
    let mut range = toml::Table::new();
    for (i, kv) in s.split(',').filter(|x| !x.trim().is_empty()).enumerate() {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--stream item {i} {kv:?}: want KEY=VALUE"))?;
        let (k, v) = (k.trim(), v.trim());
        let val = match v.parse::<i64>() {
            Ok(n) if k != "rate" || !v.is_empty() => toml::Value::Integer(n),
            _ => toml::Value::String(v.to_string()),
        };
        match k.strip_prefix("range.") {
            Some(f) => {
                range.insert(f.to_string(), toml::Value::String(v.to_string()));
            }
            None => {
                top.insert(k.to_string(), val);
            }
        }
    }
    if !range.is_empty() {
        top.insert("range".into(), toml::Value::Table(range));
    }
    let text = toml::to_string(&top).map_err(|e| format!("--stream: {e}"))?;
    let de = toml::Deserializer::new(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let p = e.path().to_string();
        format!("--stream {p}: {}", e.into_inner().message().trim())
    })
}

/// Parse a bit rate such as `10G`, `25G`, `100M`, `1.5G`, `10000000000`.
pub fn parse_bps(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches("bps").trim_end_matches("bit/s");
    let (num, mul) = match t.chars().last() {
        Some('G' | 'g') => (&t[..t.len() - 1], 1e9),
        Some('M' | 'm') => (&t[..t.len() - 1], 1e6),
        Some('K' | 'k') => (&t[..t.len() - 1], 1e3),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a bit rate (e.g. \"10G\")"))?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("{s:?}: a bit rate must be positive"));
    }
    Ok(v * mul)
}

/// A rate after parsing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// As fast as the generator can.
    Max,
    /// Frames per second.
    Pps(f64),
    /// Percent of the line rate.
    Percent(f64),
}

/// Parse a stream `rate`.
pub fn parse_rate(v: Option<&Val>) -> Result<Rate, String> {
    let s = match v {
        None => return Ok(Rate::Max),
        Some(Val::N(n)) if *n > 0 => return Ok(Rate::Pps(*n as f64)),
        Some(Val::N(_)) => return Err("a rate must be positive".into()),
        Some(Val::S(s)) => s.trim().to_string(),
    };
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    let bad = || format!("{s:?}: want \"max\", \"N pps\", \"N kpps\", \"N Mpps\" or \"P%\"");
    if let Some(p) = s.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(format!("{s:?}: a percentage must be in (0, 100]"));
        }
        return Ok(Rate::Percent(p));
    }
    let low = s.to_ascii_lowercase();
    let (num, mul) = if let Some(n) = low.strip_suffix("mpps") {
        (n, 1e6)
    } else if let Some(n) = low.strip_suffix("kpps") {
        (n, 1e3)
    } else if let Some(n) = low.strip_suffix("pps") {
        (n, 1.0)
    } else {
        (low.as_str(), 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("{s:?}: a rate must be positive"));
    }
    Ok(Rate::Pps(v * mul))
}

/// A compiled range over integers (addresses as u128).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldRange {
    /// Smallest value.
    pub min: u128,
    /// Step.
    pub inc: u128,
    /// Values in the cycle.
    pub n: u64,
    /// Index of the first value.
    pub start_idx: u64,
}

impl FieldRange {
    /// Value for frame `k`.
    #[inline]
    pub fn at(&self, k: u64) -> u128 {
        let idx = (self.start_idx + k % self.n) % self.n;
        self.min + idx as u128 * self.inc
    }
    /// Every value of the cycle, in order from `min`.
    pub fn values(&self) -> impl Iterator<Item = u128> + '_ {
        (0..self.n).map(move |i| self.min + i as u128 * self.inc)
    }
}

fn num_val(v: &Val) -> Result<u128, String> {
    match v {
        Val::N(n) => Ok(*n as u128),
        Val::S(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<u128>() {
                return Ok(n);
            }
            match s.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => Ok(u32::from(a) as u128),
                Ok(IpAddr::V6(a)) => Ok(u128::from(a)),
                Err(_) => Err(format!("{s:?} is neither a number nor an IP address")),
            }
        }
    }
}

/// Compile a range; `limit` is the largest value the field holds.
pub fn compile_range(r: &RangeIn, limit: u128) -> Result<FieldRange, String> {
    let (start, min, max, inc) = match r {
        RangeIn::Table(t) => (
            t.start.as_ref().map(num_val).transpose()?,
            num_val(&t.min)?,
            num_val(&t.max)?,
            t.inc as u128,
        ),
        RangeIn::Text(s) => {
            let (span, inc) = match s.split_once('/') {
                Some((a, b)) => (
                    a,
                    b.trim()
                        .parse::<u128>()
                        .map_err(|_| format!("{s:?}: the step after '/' must be a number"))?,
                ),
                None => (s.as_str(), 1),
            };
            // IPv6 addresses contain no '-', so the last '-' splits MIN-MAX.
            let (a, b) = span
                .rsplit_once('-')
                .ok_or_else(|| format!("{s:?}: want MIN-MAX or MIN-MAX/INC"))?;
            (
                None,
                num_val(&Val::S(a.into()))?,
                num_val(&Val::S(b.into()))?,
                inc,
            )
        }
    };
    if inc == 0 {
        return Err("inc must be at least 1".into());
    }
    if min > max {
        return Err(format!("min {min} is above max {max}"));
    }
    if max > limit {
        return Err(format!(
            "max {max} does not fit the field (at most {limit})"
        ));
    }
    let n = (max - min) / inc + 1;
    if n > u32::MAX as u128 {
        return Err(format!("{n} values: at most {} per range", u32::MAX));
    }
    let start = start.unwrap_or(min);
    if start < min || start > max || (start - min) % inc != 0 {
        return Err(format!(
            "start {start} is not one of the range's values (min {min}, max {max}, inc {inc})"
        ));
    }
    Ok(FieldRange {
        min,
        inc,
        n: n as u64,
        start_idx: ((start - min) / inc) as u64,
    })
}

/// Where the fields sit in a built frame (offsets from the frame start).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Layout {
    /// Offset of the TCI of the 802.1Q tag, if tagged.
    pub tci: Option<usize>,
    /// Offset of the IP header.
    pub ip: usize,
    /// Offset of the L4 header.
    pub l4: usize,
    /// Offset of the L4 checksum.
    pub l4_csum: usize,
    /// Offset of the source address (4 or 16 bytes; the destination follows).
    pub src_ip: usize,
    /// Address length (4 or 16).
    pub ip_len: usize,
}

/// One template: the frame bytes for one size.
#[derive(Clone, Debug)]
pub struct Template {
    /// Size on the wire (with FCS).
    pub size: u32,
    /// Frame bytes (without FCS), signature zeroed.
    pub bytes: Vec<u8>,
}

/// A stream validated against a switch config, ready to generate frames.
#[derive(Clone, Debug)]
pub struct Stream {
    /// Index in the run (carried in every frame's signature).
    pub id: u16,
    /// Name.
    pub name: String,
    /// Sending VM name.
    pub src_vm: String,
    /// Receiving VM name.
    pub dst_vm: String,
    /// Port index the generator sends on.
    pub tx_port: usize,
    /// Port index the receiver expects the frames on.
    pub rx_port: usize,
    /// Size label (`"64"`, `"imix"`, `"64-1518"`).
    pub size_label: String,
    /// Templates, one per distinct size.
    pub templates: Vec<Template>,
    /// Template index per frame of the size cycle (`k % len`), used for IMIX and fixed sizes.
    pub size_cycle: Vec<u8>,
    /// A size range: template `size_range.at(k)` index (overrides `size_cycle`).
    pub size_range: Option<FieldRange>,
    /// Minimum size of the size range, to map values to templates.
    size_min: u32,
    /// Field layout (the same for every template of the stream).
    pub layout: Layout,
    /// IP version.
    pub ip: IpVer,
    /// L4 protocol.
    pub proto: L4,
    /// Rate.
    pub rate: Rate,
    /// Frames to send (None = until the duration ends).
    pub count: Option<u64>,
    /// Per-frame source IP values.
    pub r_src_ip: Option<FieldRange>,
    /// Per-frame destination IP values.
    pub r_dst_ip: Option<FieldRange>,
    /// Per-frame source ports.
    pub r_src_port: Option<FieldRange>,
    /// Per-frame destination ports.
    pub r_dst_port: Option<FieldRange>,
    /// Per-frame VIDs (PCP kept).
    pub r_vlan: Option<FieldRange>,
    /// Mean size on the wire (with FCS) over the size cycle.
    pub mean_size: f64,
}

fn headers_len(tagged: bool, ip: IpVer, l4: L4) -> usize {
    14 + if tagged { 4 } else { 0 }
        + match ip {
            IpVer::Ipv4 => 20,
            IpVer::Ipv6 => 40,
        }
        + match l4 {
            L4::Udp => 8,
            L4::Tcp => 20,
        }
}

/// Smallest frame size (with FCS) that holds the headers and the signature.
pub fn min_size(tagged: bool, ip: IpVer, l4: L4) -> u32 {
    (headers_len(tagged, ip, l4) + SIG_LEN + FCS).max(SIZE_RANGE.0 as usize) as u32
}

/// Frames (without FCS) larger than this do not fit the pool's buffers.
fn check_size(field: &str, size: u32, min: u32, max_frame: usize) -> Result<(), String> {
    if !(SIZE_RANGE.0..=SIZE_RANGE.1).contains(&size) {
        return Err(format!(
            "{field}: {size} is outside {}..={}",
            SIZE_RANGE.0, SIZE_RANGE.1
        ));
    }
    if size < min {
        return Err(format!(
            "{field}: {size} bytes is below the headers plus the {SIG_LEN}-byte signature and FCS: at least {min} for this stream"
        ));
    }
    if size as usize - FCS > max_frame {
        return Err(format!(
            "{field}: {size} bytes does not fit the switch's buffers ({} bytes with FCS; raise switch.mtu)",
            max_frame + FCS
        ));
    }
    Ok(())
}

fn default_ip(ver: IpVer, idx: usize) -> IpAddr {
    let i = idx as u32 + 1;
    match ver {
        IpVer::Ipv4 => IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i & 0x00ff_ffff))),
        IpVer::Ipv6 => IpAddr::V6(Ipv6Addr::from(
            0xfd00_0000_0000_0000_0000_0000_0000_0000u128 | i as u128,
        )),
    }
}

fn parse_ip(field: &str, s: &str, ver: IpVer) -> Result<IpAddr, String> {
    let a: IpAddr = s
        .trim()
        .parse()
        .map_err(|_| format!("{field}: {s:?} is not an IP address"))?;
    match (ver, a) {
        (IpVer::Ipv4, IpAddr::V4(_)) | (IpVer::Ipv6, IpAddr::V6(_)) => Ok(a),
        _ => Err(
            format!("{field}: {s:?} is not an {ver:?} address (stream ip = {ver:?})")
                .to_lowercase(),
        ),
    }
}

/// Validate `specs` against the switch config and build the streams.
/// `max_frame` is the pool's largest frame (bytes without FCS); `line_bps`
/// turns `%` rates into frames per second.
pub fn compile(
    specs: &[StreamSpec],
    cfg: &Config,
    max_frame: usize,
) -> Result<Vec<Stream>, String> {
    if specs.is_empty() {
        return Err("stream: no streams defined (add [[stream]] tables or --stream flags)".into());
    }
    if specs.len() > u16::MAX as usize {
        return Err(format!(
            "stream: {} streams, at most {}",
            specs.len(),
            u16::MAX
        ));
    }
    let known = || {
        cfg.vm
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let f = |k: &str| format!("stream[{i}].{k}");
        let vm_of = |k: &str, name: &str| {
            cfg.vm
                .iter()
                .enumerate()
                .find(|(_, v)| v.name == name)
                .ok_or_else(|| {
                    format!(
                        "{}: unknown VM {name:?} (the config has: {})",
                        f(k),
                        known()
                    )
                })
        };
        let (si, svm) = vm_of("src", &s.src)?;
        let (di, dvm) = vm_of("dst", &s.dst)?;
        if si == di {
            return Err(format!("{}: a stream from {:?} to itself", f("dst"), s.dst));
        }
        if svm.vlan != dvm.vlan {
            return Err(format!(
                "{}: VM {:?} is in VLAN {}, but {:?} is in VLAN {}: no frame would arrive",
                f("dst"),
                dvm.name,
                dvm.vlan,
                svm.name,
                svm.vlan
            ));
        }
        let tx_port = cfg.port_index(&svm.port).expect("validated config");
        let rx_port = cfg.port_index(&dvm.port).expect("validated config");
        let pc = &cfg.port[tx_port];
        // The VID on the wire at the sender: None = untagged.
        let vids: Vec<u16> = match &s.range.vlan {
            Some(r) => compile_range(r, 4094)
                .map_err(|e| format!("{}: {e}", f("range.vlan")))?
                .values()
                .map(|v| v as u16)
                .collect(),
            None => vec![s.vlan.unwrap_or(svm.vlan)],
        };
        let mut tagged = false;
        for &vid in &vids {
            let key = if s.range.vlan.is_some() {
                f("range.vlan")
            } else {
                f("vlan")
            };
            if !(1..=4094).contains(&vid) {
                return Err(format!("{key}: {vid} is outside 1..=4094"));
            }
            if vid != svm.vlan {
                return Err(format!(
                    "{key}: VM {:?} is in VLAN {}, not {vid}",
                    svm.name, svm.vlan
                ));
            }
            match pc.mode {
                PortMode::Access if s.vlan.is_some() || s.range.vlan.is_some() => {
                    return Err(format!(
                        "{key}: VM {:?} is on access port {:?}, which is untagged: remove the VLAN",
                        svm.name, pc.name
                    ))
                }
                PortMode::Access => {}
                PortMode::Trunk => {
                    let native = pc.pvid == Some(vid) && s.vlan.is_none() && s.range.vlan.is_none();
                    if !native {
                        if !Config::port_vlans(pc).contains(&vid) {
                            return Err(format!(
                                "{key}: VLAN {vid} is not allowed on trunk port {:?}",
                                pc.name
                            ));
                        }
                        tagged = true;
                    }
                }
            }
        }
        if s.pcp > 7 {
            return Err(format!("{}: {} is outside 0..=7", f("pcp"), s.pcp));
        }
        if s.pcp > 0 && !tagged {
            return Err(format!(
                "{}: a priority needs a VLAN tag, and frames from {:?} on port {:?} are untagged",
                f("pcp"),
                svm.name,
                pc.name
            ));
        }
        let src_ip = match &s.src_ip {
            Some(a) => parse_ip(&f("src_ip"), a, s.ip)?,
            None => default_ip(s.ip, si),
        };
        let dst_ip = match &s.dst_ip {
            Some(a) => parse_ip(&f("dst_ip"), a, s.ip)?,
            None => default_ip(s.ip, di),
        };
        let ip_limit = match s.ip {
            IpVer::Ipv4 => u32::MAX as u128,
            IpVer::Ipv6 => u128::MAX,
        };
        let rng = |k: &str, r: &Option<RangeIn>, lim: u128| {
            r.as_ref()
                .map(|r| compile_range(r, lim).map_err(|e| format!("{}: {e}", f(k))))
                .transpose()
        };
        let r_src_ip = rng("range.src_ip", &s.range.src_ip, ip_limit)?;
        let r_dst_ip = rng("range.dst_ip", &s.range.dst_ip, ip_limit)?;
        let r_src_port = rng("range.src_port", &s.range.src_port, 65535)?;
        let r_dst_port = rng("range.dst_port", &s.range.dst_port, 65535)?;
        let r_size = rng("range.size", &s.range.size, SIZE_RANGE.1 as u128)?;
        let r_vlan = if s.range.vlan.is_some() && tagged {
            rng("range.vlan", &s.range.vlan, 4094)?
        } else {
            None
        };
        let min = min_size(tagged, s.ip, s.proto);
        // Sizes: the cycle of templates.
        let (sizes, size_cycle, size_label): (Vec<u32>, Vec<u8>, String) = if let Some(r) = &r_size
        {
            if r.n as usize > MAX_SIZES {
                return Err(format!(
                    "{}: {} distinct sizes, at most {MAX_SIZES} (raise inc)",
                    f("range.size"),
                    r.n
                ));
            }
            let v: Vec<u32> = r.values().map(|x| x as u32).collect();
            for &z in &v {
                check_size(&f("range.size"), z, min, max_frame)?;
            }
            let label = format!("{}-{}", v[0], v[v.len() - 1]);
            (v, vec![], label)
        } else {
            match &s.size {
                SizeSpec::Bytes(n) => (vec![*n], vec![0], n.to_string()),
                SizeSpec::Name(t) if t.eq_ignore_ascii_case("imix") => (
                    vec![64, 594, 1518],
                    IMIX.iter()
                        .map(|z| [64, 594, 1518].iter().position(|x| x == z).unwrap() as u8)
                        .collect(),
                    "imix".into(),
                ),
                SizeSpec::Name(t) => match t.trim().parse::<u32>() {
                    Ok(n) => (vec![n], vec![0], n.to_string()),
                    Err(_) => {
                        return Err(format!(
                            "{}: {t:?}: want a number of bytes (64..=9000) or \"imix\"",
                            f("size")
                        ))
                    }
                },
            }
        };
        for &z in &sizes {
            check_size(&f("size"), z, min, max_frame)?;
        }
        let rate = parse_rate(s.rate.as_ref()).map_err(|e| format!("{}: {e}", f("rate")))?;
        if s.count == Some(0) {
            return Err(format!("{}: must be at least 1", f("count")));
        }
        // Templates.
        let mut templates = Vec::new();
        let mut layout = Layout::default();
        let vid0 = vids[0];
        for &z in &sizes {
            let hdr = headers_len(tagged, s.ip, s.proto);
            let pay = z as usize - FCS - hdr;
            let mut fb = FrameBuilder::new()
                .src(svm.mac)
                .dst(dvm.mac)
                .no_pad()
                .payload(&vec![0u8; pay]);
            if tagged {
                fb = fb.tag(0x8100, Tci::new(s.pcp, false, vid0));
            }
            let bytes = match (s.ip, s.proto, src_ip, dst_ip) {
                (IpVer::Ipv4, L4::Udp, IpAddr::V4(a), IpAddr::V4(b)) => {
                    fb.udp4(a, b, s.src_port, s.dst_port)
                }
                (IpVer::Ipv4, L4::Tcp, IpAddr::V4(a), IpAddr::V4(b)) => {
                    fb.tcp4(a, b, s.src_port, s.dst_port, 0x10)
                }
                (IpVer::Ipv6, L4::Udp, IpAddr::V6(a), IpAddr::V6(b)) => {
                    fb.udp6(a, b, s.src_port, s.dst_port)
                }
                (IpVer::Ipv6, L4::Tcp, IpAddr::V6(a), IpAddr::V6(b)) => {
                    fb.tcp6(a, b, s.src_port, s.dst_port, 0x10)
                }
                _ => unreachable!("addresses were parsed for the stream's IP version"),
            };
            debug_assert_eq!(bytes.len(), z as usize - FCS);
            let l2 = if tagged { 18 } else { 14 };
            let l4 = l2 + if s.ip == IpVer::Ipv4 { 20 } else { 40 };
            layout = Layout {
                tci: tagged.then_some(14),
                ip: l2,
                l4,
                l4_csum: l4 + if s.proto == L4::Udp { 6 } else { 16 },
                src_ip: l2 + if s.ip == IpVer::Ipv4 { 12 } else { 8 },
                ip_len: if s.ip == IpVer::Ipv4 { 4 } else { 16 },
            };
            templates.push(Template { size: z, bytes });
        }
        let mean_size = match &r_size {
            Some(_) => sizes.iter().map(|&z| z as f64).sum::<f64>() / sizes.len() as f64,
            None => {
                size_cycle
                    .iter()
                    .map(|&t| sizes[t as usize] as f64)
                    .sum::<f64>()
                    / size_cycle.len() as f64
            }
        };
        out.push(Stream {
            id: i as u16,
            name: s
                .name
                .clone()
                .unwrap_or_else(|| format!("{}->{}", svm.name, dvm.name)),
            src_vm: svm.name.clone(),
            dst_vm: dvm.name.clone(),
            tx_port,
            rx_port,
            size_label,
            templates,
            size_cycle,
            size_min: r_size.as_ref().map(|r| r.min as u32).unwrap_or(0),
            size_range: r_size,
            layout,
            ip: s.ip,
            proto: s.proto,
            rate,
            count: s.count,
            r_src_ip,
            r_dst_ip,
            r_src_port,
            r_dst_port,
            r_vlan,
            mean_size,
        });
    }
    Ok(out)
}

/// Add `new - old` of the bytes at `off` (byte parity relative to `base`)
/// to the folded, uncomplemented one's-complement sum `acc`.
#[inline]
fn delta(acc: &mut u32, off: usize, base: usize, old: &[u8], new: &[u8]) {
    for (j, (&o, &n)) in old.iter().zip(new).enumerate() {
        let hi = (off + j) % 2 == base % 2;
        let (wo, wn) = if hi {
            ((o as u32) << 8, (n as u32) << 8)
        } else {
            (o as u32, n as u32)
        };
        *acc += (!wo & 0xffff) + wn;
    }
}

/// The signature's contribution to a one's-complement sum, folded to 16
/// bits: its seven big-endian words, byte-swapped when the signature starts
/// at an odd offset of the checksummed data (a byte-swapped sum is the sum
/// of the byte-swapped words, RFC 1071 §2(B)).
#[inline(always)]
fn sig_sum(sb: &[u8; SIG_LEN], odd: bool) -> u32 {
    let mut sum = 0u32;
    for w in sb.chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    let s = fold16(sum);
    u32::from(if odd { s.swap_bytes() } else { s })
}

#[inline]
fn fold16(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

impl Stream {
    /// Template index for frame `k`.
    #[inline]
    pub fn template_of(&self, k: u64) -> usize {
        match &self.size_range {
            Some(r) => {
                let z = r.at(k) as u32;
                ((z - self.size_min) as u128 / r.inc) as usize
            }
            // One size (the common case): no division per frame.
            None if self.size_cycle.len() == 1 => self.size_cycle[0] as usize,
            None => self.size_cycle[(k % self.size_cycle.len() as u64) as usize] as usize,
        }
    }

    /// Length of frame `k` when built from template `t` (see [`Stream::build_from`]).
    #[inline]
    pub fn template_len(&self, t: usize) -> usize {
        self.templates[t].bytes.len()
    }

    /// True when frames vary other than in size.
    pub fn has_field_ranges(&self) -> bool {
        self.r_src_ip.is_some()
            || self.r_dst_ip.is_some()
            || self.r_src_port.is_some()
            || self.r_dst_port.is_some()
            || self.r_vlan.is_some()
    }

    /// Write frame `k` into `buf` (at least the template's length; returns the
    /// frame length): the template for its size, the varied fields, and the
    /// signature with sequence number `k` and timestamp `ts` (TSC ticks).
    #[inline]
    pub fn build(&self, k: u64, ts: u64, buf: &mut [u8]) -> usize {
        self.build_from(self.template_of(k), k, ts, buf)
    }

    /// As [`Stream::build`], with frame `k`'s template index `t` (from
    /// [`Stream::template_of`]) already known.
    #[inline]
    pub fn build_from(&self, t: usize, k: u64, ts: u64, buf: &mut [u8]) -> usize {
        let t = &self.templates[t];
        let n = t.bytes.len();
        buf[..n].copy_from_slice(&t.bytes);
        let f = &mut buf[..n];
        let lay = self.layout;
        let mut l4 = !u16::from_be_bytes([f[lay.l4_csum], f[lay.l4_csum + 1]]) as u32;
        if self.has_field_ranges() {
            let mut ip4 = !u16::from_be_bytes([f[lay.ip + 10], f[lay.ip + 11]]) as u32;
            let v4 = self.ip == IpVer::Ipv4;
            let mut put = |f: &mut [u8], off: usize, new: &[u8], in_ip4_hdr: bool, in_l4: bool| {
                let mut old = [0u8; 16];
                old[..new.len()].copy_from_slice(&f[off..off + new.len()]);
                if in_l4 {
                    delta(&mut l4, off, lay.l4, &old[..new.len()], new);
                }
                if in_ip4_hdr {
                    delta(&mut ip4, off, lay.ip, &old[..new.len()], new);
                }
                f[off..off + new.len()].copy_from_slice(new);
            };
            for (r, off) in [
                (&self.r_src_ip, lay.src_ip),
                (&self.r_dst_ip, lay.src_ip + lay.ip_len),
            ] {
                if let Some(r) = r {
                    let v = r.at(k);
                    if v4 {
                        put(f, off, &(v as u32).to_be_bytes(), true, true);
                    } else {
                        put(f, off, &v.to_be_bytes(), false, true);
                    }
                }
            }
            if let Some(r) = &self.r_src_port {
                put(f, lay.l4, &(r.at(k) as u16).to_be_bytes(), false, true);
            }
            if let Some(r) = &self.r_dst_port {
                put(f, lay.l4 + 2, &(r.at(k) as u16).to_be_bytes(), false, true);
            }
            if let (Some(r), Some(tci)) = (&self.r_vlan, lay.tci) {
                let old = u16::from_be_bytes([f[tci], f[tci + 1]]);
                let v = (old & 0xf000) | (r.at(k) as u16 & 0x0fff);
                f[tci..tci + 2].copy_from_slice(&v.to_be_bytes());
            }
            if v4 {
                let c = !fold16(ip4);
                f[lay.ip + 10..lay.ip + 12].copy_from_slice(&c.to_be_bytes());
            }
        }
        let so = n - SIG_LEN;
        let s = Signature {
            stream: self.id,
            seq: k as u32,
            ts,
        };
        let mut sb = [0u8; SIG_LEN];
        sig::write(&mut sb, &s);
        // The template's signature bytes are zero: add the new words.
        l4 += sig_sum(&sb, (so - lay.l4) % 2 == 1);
        f[so..].copy_from_slice(&sb);
        let mut c = !fold16(l4);
        if c == 0 && self.proto == L4::Udp {
            c = 0xffff; // 0 means "no checksum" in UDP
        }
        f[lay.l4_csum..lay.l4_csum + 2].copy_from_slice(&c.to_be_bytes());
        n
    }
}

/// MAC of a stream's sender as configured (for tests and messages).
pub fn vm_mac(cfg: &Config, name: &str) -> Option<Mac> {
    cfg.vm.iter().find(|v| v.name == name).map(|v| v.mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    const CFG: &str = r#"
[switch]
role = "bridge"
workers = [0]
[[port]]
name = "p1"
mode = "access"
pvid = 10
[[port]]
name = "p2"
mode = "access"
pvid = 10
[[port]]
name = "t1"
mode = "trunk"
vlans = [10, 20]
[[vm]]
name = "a"
mac = "02:00:00:00:00:01"
vlan = 10
port = "p1"
[[vm]]
name = "b"
mac = "02:00:00:00:00:02"
vlan = 10
port = "p2"
[[vm]]
name = "c"
mac = "02:00:00:00:00:03"
vlan = 10
port = "t1"
[[vm]]
name = "d"
mac = "02:00:00:00:00:04"
vlan = 20
port = "t1"
"#;

    fn cfg() -> Config {
        Config::parse(CFG).unwrap()
    }

    fn one(flag: &str) -> Result<Stream, String> {
        let s = parse_stream_flag(flag)?;
        compile(&[s], &cfg(), 9100).map(|mut v| v.remove(0))
    }

    fn frame(s: &Stream, k: u64) -> Vec<u8> {
        let mut b = vec![0u8; 9100];
        let n = s.build(k, 0x1122_3344_5566, &mut b);
        b.truncate(n);
        b
    }

    /// IPv4 header and L4 checksums of a built frame verify.
    fn checksums_ok(s: &Stream, f: &[u8]) -> bool {
        let l = s.layout;
        let l4 = &f[l.l4..];
        let proto = if s.proto == L4::Udp { 17 } else { 6 };
        let pseudo = match s.ip {
            IpVer::Ipv4 => {
                if checksum::internet(&f[l.ip..l.ip + 20]) != 0 {
                    return false;
                }
                let a: [u8; 4] = f[l.src_ip..l.src_ip + 4].try_into().unwrap();
                let b: [u8; 4] = f[l.src_ip + 4..l.src_ip + 8].try_into().unwrap();
                checksum::pseudo_v4(a.into(), b.into(), proto, l4.len() as u16)
            }
            IpVer::Ipv6 => {
                let a: [u8; 16] = f[l.src_ip..l.src_ip + 16].try_into().unwrap();
                let b: [u8; 16] = f[l.src_ip + 16..l.src_ip + 32].try_into().unwrap();
                checksum::pseudo_v6(a.into(), b.into(), proto, l4.len() as u32)
            }
        };
        checksum::fold(checksum::combine(pseudo, checksum::sum(l4))) == 0xffff
    }

    #[test]
    fn frame_sizes_match_and_frames_parse() {
        for (flag, size) in [
            ("src=a,dst=b,size=64", 64),
            ("src=a,dst=b,size=65", 65),
            ("src=a,dst=b,size=1518", 1518),
            ("src=a,dst=b,size=9000", 9000),
            ("src=c,dst=a,size=64,vlan=10,pcp=5", 64),
            ("src=a,dst=b,size=80,ip=ipv6", 80),
            ("src=a,dst=b,size=128,proto=tcp", 128),
            ("src=c,dst=a,size=99,ip=ipv6,proto=tcp,vlan=10", 99),
        ] {
            let s = one(flag).unwrap();
            let f = frame(&s, 7);
            assert_eq!(f.len() + FCS, size, "{flag}");
            let info = crate::wire::parse_frame(&f).unwrap_or_else(|e| panic!("{flag}: {e:?}"));
            assert_eq!(info.ports(), Some((1024, 1024)), "{flag}");
            assert!(checksums_ok(&s, &f), "{flag}");
            let sg = sig::read(&f).unwrap();
            assert_eq!((sg.stream, sg.seq, sg.ts), (0, 7, 0x1122_3344_5566));
        }
        let s = one("src=c,dst=a,vlan=10,pcp=5").unwrap();
        let f = frame(&s, 0);
        assert_eq!(&f[12..16], &[0x81, 0x00, 0xa0, 0x0a], "PCP 5, VID 10");
    }

    #[test]
    fn imix_is_7_4_1() {
        let s = one("src=a,dst=b,size=imix").unwrap();
        let mut n = std::collections::BTreeMap::new();
        for k in 0..1200 {
            *n.entry(frame(&s, k).len() + FCS).or_insert(0) += 1;
        }
        assert_eq!(
            n.into_iter().collect::<Vec<_>>(),
            vec![(64, 700), (594, 400), (1518, 100)]
        );
        assert!((s.mean_size - (7.0 * 64.0 + 4.0 * 594.0 + 1518.0) / 12.0).abs() < 1e-9);
    }

    #[test]
    fn ranges_vary_fields_per_frame_with_valid_checksums() {
        let s = one(
            "src=c,dst=a,vlan=10,range.src_port=1000-1003,range.dst_ip=10.0.0.250-10.0.1.2/3,range.size=64-70/2",
        )
        .unwrap();
        let mut ports = vec![];
        for k in 0..9u64 {
            let f = frame(&s, k);
            assert!(checksums_ok(&s, &f), "frame {k}");
            let info = crate::wire::parse_frame(&f).unwrap();
            ports.push(info.ports().unwrap().0);
            assert_eq!(f.len() + FCS, [64, 66, 68, 70][k as usize % 4]);
            let l = s.layout;
            let dst = u32::from_be_bytes(f[l.src_ip + 4..l.src_ip + 8].try_into().unwrap());
            // 10.0.0.250, .253, 10.0.1.0 (=.256), then wrap.
            let want = [0x0a0000fa, 0x0a0000fd, 0x0a000100][k as usize % 3];
            assert_eq!(dst, want, "frame {k}");
        }
        assert_eq!(
            ports,
            vec![1000, 1001, 1002, 1003, 1000, 1001, 1002, 1003, 1000]
        );
        // Table form with a start value; IPv6 source range.
        let mut sp = parse_stream_flag("src=a,dst=b,ip=ipv6,size=128").unwrap();
        sp.range.src_ip = Some(RangeIn::Table(RangeTable {
            start: Some(Val::S("fd00::5".into())),
            min: Val::S("fd00::1".into()),
            max: Val::S("fd00::6".into()),
            inc: 1,
        }));
        let s = compile(&[sp], &cfg(), 9100).unwrap().remove(0);
        let got: Vec<u8> = (0..3)
            .map(|k| {
                let f = frame(&s, k);
                assert!(checksums_ok(&s, &f));
                f[s.layout.src_ip + 15]
            })
            .collect();
        assert_eq!(got, vec![5, 6, 1]);
    }

    #[test]
    fn bad_streams_name_the_field() {
        let e = |flag: &str| one(flag).unwrap_err();
        assert!(
            e("src=a,dst=zz").starts_with("stream[0].dst: unknown VM \"zz\""),
            "{}",
            e("src=a,dst=zz")
        );
        assert!(e("src=a,dst=b,vlan=10")
            .contains("stream[0].vlan: VM \"a\" is on access port \"p1\", which is untagged"));
        assert!(e("src=a,dst=b,size=63").starts_with("stream[0].size: 63 is outside"));
        assert!(e("src=a,dst=b,size=64,proto=tcp")
            .starts_with("stream[0].size: 64 bytes is below the headers"));
        assert!(e("src=a,dst=b,size=64,ip=ipv6").contains("at least 80"));
        assert!(e("src=a,dst=d").starts_with("stream[0].dst: VM \"d\" is in VLAN 20"));
        assert!(
            e("src=c,dst=a,vlan=30").starts_with("stream[0].vlan: VM \"c\" is in VLAN 10, not 30")
        );
        assert!(e("src=a,dst=b,pcp=3").starts_with("stream[0].pcp: a priority needs a VLAN tag"));
        assert!(e("src=a,dst=b,rate=fast").starts_with("stream[0].rate:"));
        assert!(e("src=a,dst=b,range.src_port=5-1")
            .starts_with("stream[0].range.src_port: min 5 is above max 1"));
        assert!(e("src=a,dst=b,range.size=64-1518").contains("distinct sizes"));
        assert!(e("src=a,dst=b,src_ip=fd00::1").starts_with("stream[0].src_ip:"));
        let s = parse_stream_flag("src=a,dst=b,size=9000").unwrap();
        assert!(compile(&[s], &cfg(), 1526)
            .unwrap_err()
            .contains("raise switch.mtu"));
        assert!(parse_stream_flag("src=a,dst=b,colour=red")
            .unwrap_err()
            .contains("colour"));
    }

    #[test]
    fn rates_parse() {
        let r = |s: &str| parse_rate(Some(&Val::S(s.into())));
        assert_eq!(r("max"), Ok(Rate::Max));
        assert_eq!(r("1.5Mpps"), Ok(Rate::Pps(1.5e6)));
        assert_eq!(r("200 kpps"), Ok(Rate::Pps(2e5)));
        assert_eq!(r("50%"), Ok(Rate::Percent(50.0)));
        assert!(r("150%").is_err());
        assert_eq!(parse_rate(Some(&Val::N(1000))), Ok(Rate::Pps(1000.0)));
        assert_eq!(parse_bps("10G"), Ok(1e10));
        assert_eq!(parse_bps("100M"), Ok(1e8));
    }
}
