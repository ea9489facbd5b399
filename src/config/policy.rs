//! Policy configuration: `[policy.NAME]` with `[[policy.NAME.rule]]`, `[meter.NAME]`,
//! and per-port `[port.egress]`. Parsing of match fields lives here so every
//! error names its key path.

use crate::policy::acl::{Prefix, Rule};
use crate::types::Mac;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// permit | deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Let the frame through.
    Permit,
    /// Drop it (`acl_deny`).
    Deny,
}

/// Which frames a rule is for, seen from the VM that owns the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Frames the VM sends.
    #[default]
    FromVm,
    /// Frames delivered to the VM.
    ToVm,
}

/// A number given as a TOML integer or a string (`"tcp"`, `"0x0800"`, `"80-90"`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NumOrStr {
    /// An integer.
    Num(i64),
    /// A string.
    Str(String),
}

/// `[[policy.NAME.rule]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCfg {
    /// from-vm (default) or to-vm.
    #[serde(default)]
    pub direction: Direction,
    /// permit | deny.
    pub action: Verdict,
    /// With permit: traffic class 0..=7 for egress scheduling (7 highest).
    #[serde(default)]
    pub class: Option<u8>,
    /// With permit: rewrite the 802.1Q PCP (0..=7).
    #[serde(default)]
    pub set_pcp: Option<u8>,
    /// With permit: rewrite the IP DSCP (0..=63).
    #[serde(default)]
    pub set_dscp: Option<u8>,
    /// With permit: also count hits under this name (several rules may share one).
    #[serde(default)]
    pub counter: Option<String>,
    /// With permit: meter the matching frames with this `[meter.NAME]`.
    #[serde(default)]
    pub meter: Option<String>,
    /// Source MAC, `"02:00:00:00:00:01"` or `"MAC/MASK"`.
    #[serde(default)]
    pub src_mac: Option<String>,
    /// Destination MAC, as `src_mac`.
    #[serde(default)]
    pub dst_mac: Option<String>,
    /// VLAN id.
    #[serde(default)]
    pub vlan: Option<u16>,
    /// 802.1Q priority (0..=7).
    #[serde(default)]
    pub pcp: Option<u8>,
    /// Ethertype (number, `"0x86dd"`, or `ipv4`/`ipv6`/`arp`).
    #[serde(default)]
    pub ethertype: Option<NumOrStr>,
    /// Source prefix (`"10.0.0.0/24"`, `"2001:db8::/32"`, or an address).
    #[serde(default)]
    pub src_ip: Option<String>,
    /// Destination prefix.
    #[serde(default)]
    pub dst_ip: Option<String>,
    /// IP protocol: number or `tcp`/`udp`/`icmp`/`icmpv6`/`gre`/`esp`/`ah`/`sctp`.
    #[serde(default)]
    pub proto: Option<NumOrStr>,
    /// DSCP (0..=63).
    #[serde(default)]
    pub dscp: Option<u8>,
    /// Source port `"N"` or `"A-B"`.
    #[serde(default)]
    pub src_port: Option<NumOrStr>,
    /// Destination port `"N"` or `"A-B"`.
    #[serde(default)]
    pub dst_port: Option<NumOrStr>,
    /// TCP flags: `"syn,!ack"` (listed flags must be set, `!` ones clear) or `"0xVALUE/0xMASK"`.
    #[serde(default)]
    pub tcp_flags: Option<String>,
    /// ICMP/ICMPv6 type.
    #[serde(default)]
    pub icmp_type: Option<u8>,
    /// ICMP/ICMPv6 code.
    #[serde(default)]
    pub icmp_code: Option<u8>,
    /// true: fragments only; false: non-fragments only.
    #[serde(default)]
    pub fragment: Option<bool>,
}

/// `[policy.NAME]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyCfg {
    /// What a frame gets when no rule of its direction matches (required: an explicit default).
    pub default: Verdict,
    /// Traffic class of permitted frames no rule classed (default 0).
    #[serde(default)]
    pub class: Option<u8>,
    /// Meter all traffic each VM with this policy sends (one meter instance per VM).
    #[serde(default)]
    pub meter: Option<String>,
    /// Ordered rules, first match wins (per direction).
    #[serde(default)]
    pub rule: Vec<RuleCfg>,
}

/// srtcm | trtcm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeterKind {
    /// RFC 2697 single-rate three-colour marker.
    Srtcm,
    /// RFC 2698 two-rate three-colour marker.
    Trtcm,
}

/// What happens to a frame of a colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColorAction {
    /// Send it on.
    Transmit,
    /// Rewrite PCP/DSCP (`remark_pcp`, `remark_dscp`) and send it on.
    Remark,
    /// Drop it (`meter_drop`).
    Drop,
}

fn d_transmit() -> ColorAction {
    ColorAction::Transmit
}
fn d_drop() -> ColorAction {
    ColorAction::Drop
}

/// `[meter.NAME]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MeterCfg {
    /// srtcm | trtcm.
    #[serde(rename = "type")]
    pub kind: MeterKind,
    /// Committed information rate, bits per second: a number or `"10M"`, `"1.5G"`, `"500k"`.
    pub cir: NumOrStr,
    /// Committed burst size, bytes.
    pub cbs: u64,
    /// srtcm: excess burst size, bytes (default 0).
    #[serde(default)]
    pub ebs: Option<u64>,
    /// trtcm: peak information rate, bits per second.
    #[serde(default)]
    pub pir: Option<NumOrStr>,
    /// trtcm: peak burst size, bytes.
    #[serde(default)]
    pub pbs: Option<u64>,
    /// Colour-aware: a frame's incoming colour (from its PCP: `yellow_pcp`) can only get worse.
    #[serde(default)]
    pub color_aware: bool,
    /// Action for green frames.
    #[serde(default = "d_transmit")]
    pub green: ColorAction,
    /// Action for yellow frames.
    #[serde(default = "d_transmit")]
    pub yellow: ColorAction,
    /// Action for red frames.
    #[serde(default = "d_drop")]
    pub red: ColorAction,
    /// PCP written by `remark`.
    #[serde(default)]
    pub remark_pcp: Option<u8>,
    /// DSCP written by `remark`.
    #[serde(default)]
    pub remark_dscp: Option<u8>,
}

fn d_strict() -> u8 {
    2
}
fn d_depth() -> usize {
    256
}

/// `[port.egress]`: the port's 8 traffic classes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EgressCfg {
    /// How many of the top classes (7, 6, …) are served by strict priority.
    #[serde(default = "d_strict")]
    pub strict: u8,
    /// Deficit-round-robin weights of the other classes, class 0 first (default all 1).
    #[serde(default)]
    pub weights: Vec<u32>,
    /// Port shaping rate, bits per second (default: none).
    #[serde(default)]
    pub shape: Option<NumOrStr>,
    /// Frames each class queue holds before tail drop.
    #[serde(default = "d_depth")]
    pub depth: usize,
}

/// A rate in bits/s from `10000000`, `"10M"`, `"10Mbit"`, `"1.5G"`, `"500k"`.
pub fn parse_rate(v: &NumOrStr) -> Result<u64, String> {
    let s = match v {
        NumOrStr::Num(n) if *n > 0 => return Ok(*n as u64),
        NumOrStr::Num(n) => return Err(format!("{n} is not a positive rate")),
        NumOrStr::Str(s) => s.trim().to_ascii_lowercase(),
    };
    let t = s
        .trim_end_matches("bit/s")
        .trim_end_matches("bps")
        .trim_end_matches("bit");
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1e3),
        Some('m') => (&t[..t.len() - 1], 1e6),
        Some('g') => (&t[..t.len() - 1], 1e9),
        Some('t') => (&t[..t.len() - 1], 1e12),
        _ => (t, 1.0),
    };
    let x: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a rate (e.g. 10M, 1.5G, 500k)"))?;
    let r = x * mul;
    if !(1.0..1e13).contains(&r) {
        return Err(format!("{s:?} is out of range (1 bit/s .. 10 Tbit/s)"));
    }
    Ok(r as u64)
}

fn parse_range(v: &NumOrStr) -> Result<(u16, u16), String> {
    let s = match v {
        NumOrStr::Num(n) => {
            return u16::try_from(*n)
                .map(|p| (p, p))
                .map_err(|_| format!("{n} is not a port"))
        }
        NumOrStr::Str(s) => s.trim(),
    };
    let p = |x: &str| {
        x.trim()
            .parse::<u16>()
            .map_err(|_| format!("{x:?} is not a port (0..=65535)"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (p(a)?, p(b)?);
            if a > b {
                return Err(format!(
                    "{s:?} is an empty range (start > end): the rule could never match"
                ));
            }
            Ok((a, b))
        }
        None => p(s).map(|x| (x, x)),
    }
}

fn parse_proto(v: &NumOrStr) -> Result<u8, String> {
    match v {
        NumOrStr::Num(n) => {
            u8::try_from(*n).map_err(|_| format!("{n} is not an IP protocol (0..=255)"))
        }
        NumOrStr::Str(s) => match s.to_ascii_lowercase().as_str() {
            "icmp" => Ok(1),
            "tcp" => Ok(6),
            "udp" => Ok(17),
            "gre" => Ok(47),
            "esp" => Ok(50),
            "ah" => Ok(51),
            "icmpv6" | "ipv6-icmp" => Ok(58),
            "sctp" => Ok(132),
            x => x
                .parse::<u8>()
                .map_err(|_| format!("{s:?} is not a protocol name or number")),
        },
    }
}

fn parse_ethertype(v: &NumOrStr) -> Result<u16, String> {
    match v {
        NumOrStr::Num(n) => u16::try_from(*n).map_err(|_| format!("{n} is not an ethertype")),
        NumOrStr::Str(s) => {
            let l = s.to_ascii_lowercase();
            match l.as_str() {
                "ipv4" | "ip" => Ok(0x0800),
                "ipv6" => Ok(0x86dd),
                "arp" => Ok(0x0806),
                "lldp" => Ok(0x88cc),
                _ => {
                    let r = match l.strip_prefix("0x") {
                        Some(h) => u16::from_str_radix(h, 16),
                        None => l.parse::<u16>(),
                    };
                    r.map_err(|_| {
                        format!("{s:?} is not an ethertype (number, 0xHEX, ipv4, ipv6, arp)")
                    })
                }
            }
        }
    }
}

fn parse_prefix(s: &str) -> Result<Prefix, String> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not an IPv4 or IPv6 address"))?;
    let (v6, addr, max) = match ip {
        IpAddr::V4(x) => (false, u32::from(x) as u128, 32u8),
        IpAddr::V6(x) => (true, u128::from(x), 128u8),
    };
    let len = match l {
        Some(l) => l
            .trim()
            .parse::<u8>()
            .map_err(|_| format!("prefix length {l:?} is not a number"))?,
        None => max,
    };
    if len > max {
        return Err(format!("prefix length {len} is longer than the address ({max} bits): the rule could never match"));
    }
    let mask: u128 = if len == 0 {
        0
    } else {
        (!0u128 >> (128 - max as u32)) & !((1u128 << (max - len)) - 1)
    };
    if addr & !mask != 0 {
        return Err(format!("{s:?} has host bits set beyond /{len}"));
    }
    Ok(Prefix { v6, addr, len })
}

fn parse_mac_mask(s: &str) -> Result<(u64, u64), String> {
    let (m, k) = match s.split_once('/') {
        Some((m, k)) => (m, Some(k)),
        None => (s, None),
    };
    let mac: Mac = m.trim().parse()?;
    let mask = match k {
        Some(k) => k.trim().parse::<Mac>()?.to_u64(),
        None => 0xffff_ffff_ffff,
    };
    Ok((mac.to_u64() & mask, mask))
}

fn parse_tcp_flags(s: &str) -> Result<(u8, u8), String> {
    let t = s.trim().to_ascii_lowercase();
    if let Some((v, m)) = t.split_once('/') {
        let h = |x: &str| u8::from_str_radix(x.trim().trim_start_matches("0x"), 16);
        let (v, m) = (h(v), h(m));
        return match (v, m) {
            (Ok(v), Ok(m)) if v & !m == 0 => Ok((v, m)),
            (Ok(_), Ok(_)) => Err(format!("{s:?}: value has bits outside the mask")),
            _ => Err(format!("{s:?} is not VALUE/MASK in hex")),
        };
    }
    let (mut v, mut m) = (0u8, 0u8);
    for f in t.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (neg, name) = match f.strip_prefix('!') {
            Some(n) => (true, n),
            None => (false, f),
        };
        let bit = match name {
            "fin" => 0x01,
            "syn" => 0x02,
            "rst" => 0x04,
            "psh" => 0x08,
            "ack" => 0x10,
            "urg" => 0x20,
            "ece" => 0x40,
            "cwr" => 0x80,
            _ => {
                return Err(format!(
                    "{name:?} is not a TCP flag (fin syn rst psh ack urg ece cwr)"
                ))
            }
        };
        if m & bit != 0 {
            return Err(format!("flag {name:?} given twice"));
        }
        m |= bit;
        if !neg {
            v |= bit;
        }
    }
    if m == 0 {
        return Err(format!("{s:?}: no flags"));
    }
    Ok((v, m))
}

/// Compile one rule's match fields; errors are `(key, reason)`.
pub fn compile_rule(r: &RuleCfg) -> Result<Rule, (&'static str, String)> {
    let mut out = Rule::default();
    if let Some(s) = &r.src_mac {
        out.src_mac = Some(parse_mac_mask(s).map_err(|e| ("src_mac", e))?);
    }
    if let Some(s) = &r.dst_mac {
        out.dst_mac = Some(parse_mac_mask(s).map_err(|e| ("dst_mac", e))?);
    }
    if let Some(v) = r.vlan {
        if !(1..=4094).contains(&v) {
            return Err(("vlan", format!("{v} is out of range 1..=4094")));
        }
        out.vlan = Some(v);
    }
    if let Some(p) = r.pcp {
        if p > 7 {
            return Err(("pcp", format!("{p} is out of range 0..=7")));
        }
        out.pcp = Some(p);
    }
    if let Some(e) = &r.ethertype {
        out.ethertype = Some(parse_ethertype(e).map_err(|e| ("ethertype", e))?);
    }
    if let Some(s) = &r.src_ip {
        out.src_ip = Some(parse_prefix(s).map_err(|e| ("src_ip", e))?);
    }
    if let Some(s) = &r.dst_ip {
        out.dst_ip = Some(parse_prefix(s).map_err(|e| ("dst_ip", e))?);
    }
    if let (Some(a), Some(b)) = (&out.src_ip, &out.dst_ip) {
        if a.v6 != b.v6 {
            return Err((
                "dst_ip",
                "src_ip and dst_ip are of different IP versions: the rule could never match".into(),
            ));
        }
    }
    if let Some(p) = &r.proto {
        out.proto = Some(parse_proto(p).map_err(|e| ("proto", e))?);
    }
    if let Some(d) = r.dscp {
        if d > 63 {
            return Err(("dscp", format!("{d} is out of range 0..=63")));
        }
        out.dscp = Some(d);
    }
    let l4ok = |p: Option<u8>| matches!(p, None | Some(6) | Some(17) | Some(132));
    if let Some(p) = &r.src_port {
        if !l4ok(out.proto) {
            return Err(("src_port", "ports need proto tcp, udp or sctp".into()));
        }
        out.src_port = Some(parse_range(p).map_err(|e| ("src_port", e))?);
    }
    if let Some(p) = &r.dst_port {
        if !l4ok(out.proto) {
            return Err(("dst_port", "ports need proto tcp, udp or sctp".into()));
        }
        out.dst_port = Some(parse_range(p).map_err(|e| ("dst_port", e))?);
    }
    if let Some(f) = &r.tcp_flags {
        if !matches!(out.proto, None | Some(6)) {
            return Err(("tcp_flags", "tcp_flags need proto tcp".into()));
        }
        out.tcp_flags = Some(parse_tcp_flags(f).map_err(|e| ("tcp_flags", e))?);
    }
    if r.icmp_type.is_some() || r.icmp_code.is_some() {
        if !matches!(out.proto, None | Some(1) | Some(58)) {
            return Err((
                "icmp_type",
                "icmp_type/icmp_code need proto icmp or icmpv6".into(),
            ));
        }
        out.icmp_type = r.icmp_type;
        out.icmp_code = r.icmp_code;
    }
    if r.fragment == Some(true)
        && (out.src_port.is_some() || out.dst_port.is_some() || out.tcp_flags.is_some())
    {
        return Err((
            "fragment",
            "fragment = true with L4 fields: later fragments carry no L4 header, so only first fragments could match; match them without `fragment`".into(),
        ));
    }
    out.fragment = r.fragment;
    if r.action == Verdict::Deny
        && (r.class.is_some() || r.set_pcp.is_some() || r.set_dscp.is_some() || r.meter.is_some())
    {
        return Err((
            "action",
            "class, set_pcp, set_dscp and meter go with action = \"permit\"".into(),
        ));
    }
    if let Some(c) = r.class {
        if c > 7 {
            return Err(("class", format!("{c} is out of range 0..=7")));
        }
    }
    if let Some(p) = r.set_pcp {
        if p > 7 {
            return Err(("set_pcp", format!("{p} is out of range 0..=7")));
        }
    }
    if let Some(d) = r.set_dscp {
        if d > 63 {
            return Err(("set_dscp", format!("{d} is out of range 0..=63")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(
            parse_rate(&NumOrStr::Str("10M".into())).unwrap(),
            10_000_000
        );
        assert_eq!(
            parse_rate(&NumOrStr::Str("1.5G".into())).unwrap(),
            1_500_000_000
        );
        assert_eq!(
            parse_rate(&NumOrStr::Str("500kbit".into())).unwrap(),
            500_000
        );
        assert_eq!(parse_rate(&NumOrStr::Num(64000)).unwrap(), 64000);
        assert!(parse_rate(&NumOrStr::Num(0)).is_err());
        assert!(parse_rate(&NumOrStr::Str("fast".into())).is_err());
        assert!(parse_rate(&NumOrStr::Str("0.1".into())).is_err());
    }

    #[test]
    fn match_fields() {
        assert_eq!(parse_range(&NumOrStr::Str("80".into())).unwrap(), (80, 80));
        assert_eq!(
            parse_range(&NumOrStr::Str("1000-2000".into())).unwrap(),
            (1000, 2000)
        );
        assert!(parse_range(&NumOrStr::Str("2000-1000".into()))
            .unwrap_err()
            .contains("empty"));
        assert!(parse_range(&NumOrStr::Num(70000)).is_err());
        assert_eq!(parse_proto(&NumOrStr::Str("tcp".into())).unwrap(), 6);
        assert_eq!(
            parse_ethertype(&NumOrStr::Str("0x86DD".into())).unwrap(),
            0x86dd
        );
        let p = parse_prefix("10.0.0.0/24").unwrap();
        assert_eq!((p.v6, p.addr, p.len), (false, 0x0a00_0000, 24));
        assert!(parse_prefix("10.0.0.0/33")
            .unwrap_err()
            .contains("never match"));
        assert!(parse_prefix("10.0.0.1/24")
            .unwrap_err()
            .contains("host bits"));
        assert_eq!(parse_prefix("2001:db8::/32").unwrap().len, 32);
        assert_eq!(parse_tcp_flags("syn,!ack").unwrap(), (0x02, 0x12));
        assert_eq!(parse_tcp_flags("0x02/0x12").unwrap(), (0x02, 0x12));
        assert!(parse_tcp_flags("syn,bogus").is_err());
        assert_eq!(
            parse_mac_mask("02:00:00:00:00:01/ff:ff:ff:00:00:00")
                .unwrap()
                .1,
            0xffff_ff00_0000
        );
    }
}
