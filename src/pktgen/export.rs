//! `hairpin pktgen export`: the streams of a stream file as a pktgen-dpdk
//! Lua script or a TRex stateless profile, for bare-metal runs
//! (docs/bare-metal.md) whose frames match `hairpin pktgen`'s by
//! construction.
//!
//! Both are written from the compiled [`Stream`]s — the frames hairpin's own
//! `FrameBuilder` made for the switch config — so MACs, VLAN tag and PCP,
//! addresses, ports, sizes and ranges are the same:
//!
//! - **TRex**: each stream's frame bytes (frame `k` of the stream with
//!   timestamp 0, one per frame size) are embedded as hex; ranges become
//!   field-engine variables (`STLVmFlowVar`, inc, the same min/step/last
//!   value and the value of frame `k` as `init_value`) written at the
//!   fields' offsets, with the checksums fixed by `STLVmFixChecksumHw`. IMIX
//!   and size ranges become one TRex stream per size with its share of the
//!   rate.
//! - **pktgen-dpdk**: one pktgen port per switch port the streams are sent
//!   on (in config order). A port with one stream uses range mode
//!   (`pktgen.range.*` start/inc/min/max, a fixed field as start = min =
//!   max, inc 0); a port with several streams, or an IMIX stream, uses
//!   sequence packets (`pktgen.seqTable`, at most 16, no field ranges).
//!
//! What neither carries: hairpin's per-frame sequence number and timestamp
//! (frames keep frame `k`'s signature bytes in TRex, pktgen-dpdk writes its
//! own payload); they measure rates and their own latency.

use super::stream::{self, IpVer, PktgenFile, Rate, Stream, L4, WIRE_OVERHEAD};
use crate::config::Config;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A pktgen-dpdk Lua script.
    PktgenLua,
    /// A TRex stateless (STL) profile in Python.
    Trex,
}

/// Sequence packets per pktgen-dpdk port.
pub const PKTGEN_MAX_SEQ: usize = 16;

fn mac_at(b: &[u8], off: usize) -> String {
    b[off..off + 6]
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ip_text(ip: IpVer, v: u128) -> String {
    match ip {
        IpVer::Ipv4 => Ipv4Addr::from(v as u32).to_string(),
        IpVer::Ipv6 => Ipv6Addr::from(v).to_string(),
    }
}

fn be(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |a, &x| (a << 8) | x as u128)
}

/// A field of frame 0 of `s`, as in its first template.
struct Fields {
    dst_mac: String,
    src_mac: String,
    vid: Option<u16>,
    pcp: u8,
    src_ip: u128,
    dst_ip: u128,
    src_port: u16,
    dst_port: u16,
}

fn fields(s: &Stream) -> Fields {
    let t = &s.templates[0].bytes;
    let l = s.layout;
    let tci = l.tci.map(|o| u16::from_be_bytes([t[o], t[o + 1]]));
    Fields {
        dst_mac: mac_at(t, 0),
        src_mac: mac_at(t, 6),
        vid: tci.map(|x| x & 0x0fff),
        pcp: tci.map(|x| (x >> 13) as u8).unwrap_or(0),
        src_ip: be(&t[l.src_ip..l.src_ip + l.ip_len]),
        dst_ip: be(&t[l.src_ip + l.ip_len..l.src_ip + 2 * l.ip_len]),
        src_port: u16::from_be_bytes([t[l.l4], t[l.l4 + 1]]),
        dst_port: u16::from_be_bytes([t[l.l4 + 2], t[l.l4 + 3]]),
    }
}

/// Frames of `s` per template over one size cycle (IMIX 7:4:1; a size range one each).
fn template_shares(s: &Stream) -> Vec<f64> {
    let n = s.templates.len();
    match &s.size_range {
        Some(_) => vec![1.0 / n as f64; n],
        None => {
            let mut c = vec![0.0; n];
            for &t in &s.size_cycle {
                c[t as usize] += 1.0;
            }
            let tot = s.size_cycle.len() as f64;
            c.iter().map(|x| x / tot).collect()
        }
    }
}

/// The first frame index of `s` that uses template `t`.
fn first_frame_of(s: &Stream, t: usize) -> u64 {
    let period = match &s.size_range {
        Some(r) => r.n,
        None => s.size_cycle.len() as u64,
    };
    (0..period)
        .find(|&k| s.template_of(k) == t)
        .expect("every template is used in the size cycle")
}

/// Compile the file's streams against `cfg` for export.
pub fn compile(cfg: &Config, file: &PktgenFile) -> Result<Vec<Stream>, String> {
    stream::compile(&file.stream, cfg, cfg.switch.mtu + 8)
}

/// The TRex profile for `streams` (compiled against `cfg`).
pub fn trex(cfg: &Config, file: &PktgenFile, streams: &[Stream]) -> Result<String, String> {
    let ports = tx_ports(streams);
    let mut data = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        let f = |k: &str| format!("stream[{i}].{k}");
        let mut vars = Vec::new();
        let l = s.layout;
        let var = |name: &str, r: &stream::FieldRange, off: usize, size: usize, mask: u32| {
            serde_json::json!({
                "name": name,
                "offset": off,
                "size": size,
                "min": r.min as u64,
                "max": (r.min + (r.n as u128 - 1) * r.inc) as u64,
                "step": r.inc as u64,
                "range_start": r.at(0) as u64,
                "mask": mask,
            })
        };
        for (name, r, off) in [
            ("src_ip", &s.r_src_ip, l.src_ip),
            ("dst_ip", &s.r_dst_ip, l.src_ip + l.ip_len),
        ] {
            if let Some(r) = r {
                let last = r.min + (r.n as u128 - 1) * r.inc;
                if s.ip == IpVer::Ipv6 {
                    // TRex variables hold at most 8 bytes: vary the low half.
                    if r.min >> 64 != last >> 64 || r.inc >> 64 != 0 {
                        return Err(format!(
                            "{}: TRex varies at most the low 64 bits of an IPv6 address; this range spans more",
                            f(&format!("range.{name}"))
                        ));
                    }
                    let low = stream::FieldRange {
                        min: r.min & u64::MAX as u128,
                        ..r.clone()
                    };
                    vars.push(var(name, &low, off + 8, 8, 0));
                } else {
                    vars.push(var(name, r, off, 4, 0));
                }
            }
        }
        if let Some(r) = &s.r_src_port {
            vars.push(var("src_port", r, l.l4, 2, 0));
        }
        if let Some(r) = &s.r_dst_port {
            vars.push(var("dst_port", r, l.l4 + 2, 2, 0));
        }
        if let (Some(r), Some(tci)) = (&s.r_vlan, l.tci) {
            vars.push(var("vlan", r, tci, 2, 0x0fff));
        }
        let shares = template_shares(s);
        let mut tpls = Vec::new();
        for (t, tp) in s.templates.iter().enumerate() {
            let k = first_frame_of(s, t);
            let mut buf = vec![0u8; tp.bytes.len()];
            s.build(k, 0, &mut buf);
            // Each variable starts at frame k's value (TRex's init_value).
            let init: Vec<u64> = vars
                .iter()
                .map(|v| {
                    let name = v["name"].as_str().unwrap();
                    let r = match name {
                        "src_ip" => s.r_src_ip.as_ref(),
                        "dst_ip" => s.r_dst_ip.as_ref(),
                        "src_port" => s.r_src_port.as_ref(),
                        "dst_port" => s.r_dst_port.as_ref(),
                        _ => s.r_vlan.as_ref(),
                    }
                    .expect("a variable has its range");
                    let x = r.at(k);
                    if s.ip == IpVer::Ipv6 && name.ends_with("_ip") {
                        (x & u64::MAX as u128) as u64
                    } else {
                        x as u64
                    }
                })
                .collect();
            let share = shares[t];
            // A template's share of the bits on the wire, for % rates.
            let (pps, pct) = match s.rate {
                Rate::Pps(p) => (Some(p * share), None),
                Rate::Max | Rate::Percent(_) => {
                    let p = if let Rate::Percent(p) = s.rate {
                        p
                    } else {
                        100.0
                    };
                    (
                        None,
                        Some(
                            p * share * (tp.size as f64 + WIRE_OVERHEAD as f64)
                                / (s.mean_size + WIRE_OVERHEAD as f64),
                        ),
                    )
                }
            };
            tpls.push(serde_json::json!({
                "size": tp.size,
                "frame": k,
                "bytes": hex(&buf),
                "init": init,
                "pps": pps,
                "percentage": pct,
                "count": s.count.map(|c| ((c as f64) * share).round() as u64),
            }));
        }
        data.push(serde_json::json!({
            "name": s.name,
            "src_vm": s.src_vm,
            "dst_vm": s.dst_vm,
            "switch_port": cfg.port[s.tx_port].name,
            "trex_port": ports.iter().position(|&p| p == s.tx_port).unwrap(),
            "l3": l.ip,
            "l4": l.l4,
            "l4_type": if s.proto == L4::Udp { "udp" } else { "tcp" },
            "vars": vars,
            "templates": tpls,
        }));
    }
    let json = serde_json::to_string_pretty(&data).expect("serialisable");
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# TRex stateless profile written by `hairpin pktgen export --format trex`\n\
         # (docs/bare-metal.md). Do not edit: regenerate from the stream file.\n\
         # Line rate of % rates: {}. TRex ports (cable each to the switch port named):",
        file.pktgen.line_rate
    );
    for (n, p) in ports.iter().enumerate() {
        let _ = writeln!(
            o,
            "#   TRex port {n} -> switch port {:?}",
            cfg.port[*p].name
        );
    }
    let _ = writeln!(
        o,
        "#   trex-console> start -f THIS_FILE -p 0 [1 ...]   (each port gets its own streams)\n\
         # Frames are hairpin's own (frame k of each stream, timestamp 0); ranges are\n\
         # field-engine variables; checksums are fixed by the NIC (STLVmFixChecksumHw).\n\
         import json\n\n\
         from trex_stl_lib.api import (\n    CTRexVmInsFixHwCs,\n    STLPktBuilder,\n    STLScVmRaw,\n    STLStream,\n    STLTXCont,\n    STLTXSingleBurst,\n    STLVmFixChecksumHw,\n    STLVmFlowVar,\n    STLVmWrFlowVar,\n    STLVmWrMaskFlowVar,\n)\n\n\
         STREAMS = json.loads(r\"\"\"\n{json}\n\"\"\")\n"
    );
    o += r#"

def _vm(s, init):
    cmds = []
    for v, start in zip(s["vars"], init):
        cmds.append(STLVmFlowVar(name=v["name"], init_value=start, min_value=v["min"],
                                 max_value=v["max"], size=v["size"], step=v["step"], op="inc"))
        if v["mask"]:
            cmds.append(STLVmWrMaskFlowVar(fv_name=v["name"], pkt_offset=v["offset"],
                                           pkt_cast_size=v["size"], mask=v["mask"]))
        else:
            cmds.append(STLVmWrFlowVar(fv_name=v["name"], pkt_offset=v["offset"]))
    if cmds:
        l4 = CTRexVmInsFixHwCs.L4_TYPE_UDP if s["l4_type"] == "udp" else CTRexVmInsFixHwCs.L4_TYPE_TCP
        cmds.append(STLVmFixChecksumHw(l3_offset=s["l3"], l4_offset=s["l4"], l4_type=l4))
    return STLScVmRaw(cmds)


def _mode(t):
    rate = {"pps": t["pps"]} if t["pps"] is not None else {"percentage": t["percentage"]}
    if t["count"] is not None:
        return STLTXSingleBurst(total_pkts=max(1, t["count"]), **rate)
    return STLTXCont(**rate)


class HairpinStreams(object):
    def get_streams(self, direction=0, port_id=0, **kwargs):
        out = []
        for s in STREAMS:
            if s["trex_port"] != port_id:
                continue
            for t in s["templates"]:
                pkt = STLPktBuilder(pkt_buffer=bytes.fromhex(t["bytes"]), vm=_vm(s, t["init"]))
                out.append(STLStream(name="%s/%d" % (s["name"], t["size"]), packet=pkt, mode=_mode(t)))
        return out


def register():
    return HairpinStreams()
"#;
    Ok(o)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Switch ports the streams are sent on, in config order.
fn tx_ports(streams: &[Stream]) -> Vec<usize> {
    let mut v: Vec<usize> = streams.iter().map(|s| s.tx_port).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Percent of the line rate a stream offers (100 for `max`).
fn pct_of_line(s: &Stream, line_bps: f64) -> f64 {
    match s.rate {
        Rate::Max => 100.0,
        Rate::Percent(p) => p,
        Rate::Pps(p) => 100.0 * p * (s.mean_size + WIRE_OVERHEAD as f64) * 8.0 / line_bps,
    }
}

/// The pktgen-dpdk Lua script for `streams` (compiled against `cfg`).
pub fn pktgen_lua(cfg: &Config, file: &PktgenFile, streams: &[Stream]) -> Result<String, String> {
    let line = stream::parse_bps(&file.pktgen.line_rate)?;
    let ports = tx_ports(streams);
    let secs = file.pktgen.duration.unwrap_or(10.0);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "-- pktgen-dpdk script written by `hairpin pktgen export --format pktgen-lua`\n\
         -- (docs/bare-metal.md). Do not edit: regenerate from the stream file.\n\
         -- Rates are percent of pktgen's port speed; hairpin's line rate was {}.\n\
         -- pktgen ports (cable each to the switch port named):",
        file.pktgen.line_rate
    );
    for (n, p) in ports.iter().enumerate() {
        let names: Vec<_> = streams
            .iter()
            .filter(|s| s.tx_port == *p)
            .map(|s| s.name.as_str())
            .collect();
        let _ = writeln!(
            o,
            "--   pktgen port {n} -> switch port {:?}: {}",
            cfg.port[*p].name,
            names.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "--   pktgen -l 0-{} -n 4 -a PCI... -- -P -m \"...\" -f THIS_FILE\n",
        ports.len()
    );
    let _ = writeln!(o, "local seconds = {secs}\npktgen.screen(\"off\")");
    for (n, &p) in ports.iter().enumerate() {
        let on: Vec<(usize, &Stream)> = streams
            .iter()
            .enumerate()
            .filter(|(_, s)| s.tx_port == p)
            .collect();
        let port = n.to_string();
        let rate: f64 = on.iter().map(|(_, s)| pct_of_line(s, line)).sum();
        let _ = writeln!(o, "\n-- port {port}: switch port {:?}", cfg.port[p].name);
        let imix = |s: &Stream| s.size_range.is_none() && s.templates.len() > 1;
        if on.len() == 1 && !imix(on[0].1) {
            range_mode(&mut o, &port, on[0].1);
        } else {
            seq_mode(&mut o, &port, &on)?;
        }
        let _ = writeln!(
            o,
            "pktgen.set(\"{port}\", \"rate\", {:.4})",
            rate.min(100.0)
        );
        let count: Option<u64> = on.iter().map(|(_, s)| s.count).sum();
        let _ = writeln!(
            o,
            "pktgen.set(\"{port}\", \"count\", {})",
            count.unwrap_or(0)
        );
    }
    let all = (0..ports.len())
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let _ = writeln!(
        o,
        "\npktgen.clr()\npktgen.start(\"{all}\")\npktgen.delay(seconds * 1000)\npktgen.stop(\"{all}\")\npktgen.delay(500)\n\
         for p = 0, {} do\n\
         \x20   local s = pktgen.portStats(tostring(p), \"port\")[p]\n\
         \x20   print(string.format(\"port %d: tx %d rx %d frames in %d s: rx %.3f Mpps\",\n\
         \x20       p, s.opackets, s.ipackets, seconds, s.ipackets / seconds / 1e6))\n\
         end\npktgen.quit()",
        ports.len() - 1
    );
    Ok(o)
}

fn range_call(o: &mut String, port: &str, what: &str, vals: [String; 4]) {
    for (k, v) in ["start", "inc", "min", "max"].iter().zip(vals) {
        let _ = writeln!(o, "pktgen.range.{what}(\"{port}\", \"{k}\", {v})");
    }
}

fn range_mode(o: &mut String, port: &str, s: &Stream) {
    let fl = fields(s);
    let q = |x: String| format!("\"{x}\"");
    let _ = writeln!(
        o,
        "-- stream {:?}: {} -> {}, range mode",
        s.name, s.src_vm, s.dst_vm
    );
    let _ = writeln!(
        o,
        "pktgen.set_type(\"{port}\", \"{}\")\npktgen.set_proto(\"{port}\", \"{}\")",
        if s.ip == IpVer::Ipv4 { "ipv4" } else { "ipv6" },
        if s.proto == L4::Udp { "udp" } else { "tcp" }
    );
    for (what, mac) in [("dst_mac", &fl.dst_mac), ("src_mac", &fl.src_mac)] {
        range_call(
            o,
            port,
            what,
            [
                q(mac.clone()),
                q("00:00:00:00:00:00".into()),
                q(mac.clone()),
                q(mac.clone()),
            ],
        );
    }
    // start, inc, min, max of a field: its range, or the fixed value.
    let span = |r: &Option<stream::FieldRange>, fixed: u128| match r {
        Some(r) => [r.at(0), r.inc, r.min, r.min + (r.n as u128 - 1) * r.inc],
        None => [fixed, 0, fixed, fixed],
    };
    for (what, r, fixed) in [
        ("src_ip", &s.r_src_ip, fl.src_ip),
        ("dst_ip", &s.r_dst_ip, fl.dst_ip),
    ] {
        range_call(o, port, what, span(r, fixed).map(|v| q(ip_text(s.ip, v))));
    }
    for (what, r, fixed) in [
        ("src_port", &s.r_src_port, fl.src_port as u128),
        ("dst_port", &s.r_dst_port, fl.dst_port as u128),
    ] {
        range_call(o, port, what, span(r, fixed).map(|v| v.to_string()));
    }
    let sizes = match &s.size_range {
        Some(r) => [r.at(0), r.inc, r.min, r.min + (r.n as u128 - 1) * r.inc],
        None => {
            let z = s.templates[0].size as u128;
            [z, 0, z, z]
        }
    };
    range_call(o, port, "pkt_size", sizes.map(|v| v.to_string()));
    if let Some(vid) = fl.vid {
        range_call(
            o,
            port,
            "vlan_id",
            span(&s.r_vlan, vid as u128).map(|v| v.to_string()),
        );
        let p = fl.pcp.to_string();
        range_call(o, port, "cos", [p.clone(), "0".into(), p.clone(), p]);
        let _ = writeln!(o, "pktgen.vlan(\"{port}\", \"on\")");
    } else {
        let _ = writeln!(o, "pktgen.vlan(\"{port}\", \"off\")");
    }
    let _ = writeln!(o, "pktgen.set_range(\"{port}\", \"on\")");
}

fn seq_mode(o: &mut String, port: &str, on: &[(usize, &Stream)]) -> Result<(), String> {
    let mut n = 0usize;
    for (i, s) in on {
        if s.has_field_ranges() || s.size_range.is_some() {
            return Err(format!(
                "stream[{i}].range: pktgen-dpdk varies fields only for the single stream of a port (range mode), and port {port} sends {} streams{}",
                on.len(),
                if on.len() == 1 { " (IMIX needs sequence packets)" } else { "" }
            ));
        }
        if s.layout.tci.is_some() && s.ip == IpVer::Ipv6 {
            return Err(format!(
                "stream[{i}].vlan: pktgen-dpdk sequence packets carry a VLAN tag only with IPv4"
            ));
        }
        let fl = fields(s);
        let _ = writeln!(
            o,
            "-- stream {:?}: {} -> {}, sequence packets",
            s.name, s.src_vm, s.dst_vm
        );
        let cycle: Vec<usize> = if s.templates.len() > 1 {
            s.size_cycle.iter().map(|&t| t as usize).collect()
        } else {
            vec![0]
        };
        for t in cycle {
            if n == PKTGEN_MAX_SEQ {
                return Err(format!(
                    "stream[{i}]: pktgen-dpdk holds {PKTGEN_MAX_SEQ} sequence packets per port, and port {port} needs more (an IMIX stream takes 12)"
                ));
            }
            let eth = match (fl.vid.is_some(), s.ip) {
                (true, _) => "vlan",
                (false, IpVer::Ipv4) => "ipv4",
                (false, IpVer::Ipv6) => "ipv6",
            };
            let _ = writeln!(
                o,
                "pktgen.seqTable({n}, \"{port}\", {{ eth_dst_addr = \"{}\", eth_src_addr = \"{}\", ip_dst_addr = \"{}\", ip_src_addr = \"{}/{}\", sport = {}, dport = {}, ethType = \"{eth}\", ipProto = \"{}\", vlanid = {}, cos = {}, pktSize = {} }})",
                fl.dst_mac,
                fl.src_mac,
                ip_text(s.ip, fl.dst_ip),
                ip_text(s.ip, fl.src_ip),
                if s.ip == IpVer::Ipv4 { 32 } else { 128 },
                fl.src_port,
                fl.dst_port,
                if s.proto == L4::Udp { "udp" } else { "tcp" },
                fl.vid.unwrap_or(1),
                fl.pcp,
                s.templates[t].size
            );
            n += 1;
        }
    }
    let _ = writeln!(o, "pktgen.set(\"{port}\", \"seqCnt\", {n})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
[switch]
role = "bridge"
workers = [0]
[[port]]
name = "hv1"
mode = "trunk"
vlans = [10]
[[vm]]
name = "a"
mac = "02:00:00:00:00:01"
vlan = 10
port = "hv1"
[[vm]]
name = "b"
mac = "02:00:00:00:00:02"
vlan = 10
port = "hv1"
[[vm]]
name = "c"
mac = "02:00:00:00:00:03"
vlan = 10
port = "hv1"
"#;

    fn file(streams: &[&str]) -> PktgenFile {
        let mut f = PktgenFile::default();
        for s in streams {
            f.stream.push(stream::parse_stream_flag(s).unwrap());
        }
        f
    }

    #[test]
    fn pktgen_refuses_what_it_cannot_send() {
        let cfg = Config::parse(CFG).unwrap();
        let f = file(&["src=a,dst=b,range.src_port=1-9", "src=b,dst=c"]);
        let s = compile(&cfg, &f).unwrap();
        let e = pktgen_lua(&cfg, &f, &s).unwrap_err();
        assert!(
            e.starts_with("stream[0].range: pktgen-dpdk varies fields only"),
            "{e}"
        );
        let f = file(&["src=a,dst=b,size=imix", "src=b,dst=c,size=imix"]);
        let s = compile(&cfg, &f).unwrap();
        let e = pktgen_lua(&cfg, &f, &s).unwrap_err();
        assert!(e.contains("16 sequence packets"), "{e}");
        let f = file(&[
            "src=a,dst=b,ip=ipv6,size=128,range.src_ip=fd00::ffff:ffff:ffff:fff0-fd00:0:0:1::10/16",
        ]);
        let s = compile(&cfg, &f).unwrap();
        let e = trex(&cfg, &f, &s).unwrap_err();
        assert!(
            e.contains("stream[0].range.src_ip: TRex varies at most the low 64 bits"),
            "{e}"
        );
    }

    #[test]
    fn imix_shares_and_rates() {
        let cfg = Config::parse(CFG).unwrap();
        let f = file(&["src=a,dst=b,size=imix,rate=1200pps"]);
        let s = compile(&cfg, &f).unwrap();
        assert_eq!(
            template_shares(&s[0]),
            vec![7.0 / 12.0, 4.0 / 12.0, 1.0 / 12.0]
        );
        let t = trex(&cfg, &f, &s).unwrap();
        for pps in ["700.0", "400.0", "100.0"] {
            assert!(t.contains(&format!("\"pps\": {pps}")), "{pps}: {t}");
        }
        let l = pktgen_lua(&cfg, &f, &s).unwrap();
        assert!(l.contains("pktgen.set(\"0\", \"seqCnt\", 12)"), "{l}");
    }
}
