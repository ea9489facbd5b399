//! `hairpin trace`: one frame through the real pipeline, every decision shown.

use crate::buf::Burst;
use crate::config::Config;
use crate::harness::{Capture, Sink};
use crate::pipeline::{Pipeline, TraceLog};
use crate::port::{Port, PortQueue};
use crate::runtime::{make_pool, Instance};
use crate::types::{Mac, PortId, Vid};
use std::sync::{Arc, Mutex};

/// Result of a trace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TraceResult {
    /// (stage, decision) in order.
    pub steps: Vec<(String, String)>,
    /// Frames that left: (port name, bytes).
    pub egress: Vec<(String, Vec<u8>)>,
    /// Drop reason, if the frame was dropped.
    pub dropped: Option<String>,
    /// True when the frame went to the control plane.
    pub punted: bool,
}

/// Parse `PORT=MAC[@VID]` (a pre-learned FDB entry for the trace).
pub fn parse_learn(s: &str) -> Result<(String, Mac, Option<u16>), String> {
    let (port, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("--learn {s:?}: want PORT=MAC[@VID]"))?;
    let (mac, vid) = match rest.split_once('@') {
        Some((m, v)) => (
            m,
            Some(
                v.parse::<u16>()
                    .map_err(|_| format!("--learn {s:?}: VID {v:?} is not a number"))?,
            ),
        ),
        None => (rest, None),
    };
    let mac: Mac = mac.parse().map_err(|e| format!("--learn: {e}"))?;
    Ok((port.to_string(), mac, vid))
}

/// Trace `frame` arriving on `port`. `learn` pre-populates the FDB (VID defaults to the port's PVID).
pub fn trace(
    cfg: Config,
    port: &str,
    frame: &[u8],
    learn: &[(String, Mac, Option<u16>)],
) -> Result<TraceResult, String> {
    let mut cfg = cfg;
    cfg.switch.workers = vec![0];
    let inp = cfg
        .port_index(port)
        .ok_or_else(|| format!("--port: no port named {port:?}"))?;
    let pool = make_pool(&cfg, 0)?;
    if frame.len() > pool.max_frame() {
        return Err(format!(
            "--frame: {} bytes is longer than a buffer ({})",
            frame.len(),
            pool.max_frame()
        ));
    }
    let out: Sink = Arc::new(Mutex::new(Vec::new()));
    let nports = cfg.port.len();
    let inst = Instance::with_ports(cfg, pool.clone(), Vec::<Box<dyn Port>>::new(), vec![])?;
    for (p, mac, vid) in learn {
        let pi = inst
            .switch
            .model
            .port_id(p)
            .ok_or_else(|| format!("--learn: no port named {p:?}"))?;
        let v = vid.unwrap_or(inst.switch.model.ports[pi.0 as usize].pvid);
        if !(1..=4094).contains(&v) {
            return Err(format!(
                "--learn {p}={mac}: give a VID (@N) for a trunk without native VLAN"
            ));
        }
        inst.switch.fdb.learn(*mac, Vid(v), pi, 0);
    }
    let mut tx: Vec<Box<dyn PortQueue>> = (0..nports)
        .map(|i| {
            Box::new(Capture {
                port: i,
                keep: true,
                out: out.clone(),
                pool: pool.clone(),
            }) as Box<dyn PortQueue>
        })
        .collect();
    let mut pipe = Pipeline::new(&inst.switch, None);
    let mut b = Burst::new(1);
    let mut f = pool.alloc().ok_or("no buffer")?;
    pool.fill(&mut f, frame);
    b.push(f).map_err(|_| "burst")?;
    let mut log = TraceLog::default();
    pipe.process(PortId(inp as u16), &mut b, 1, &mut tx, &mut log);
    pipe.release();
    let dropped = crate::stats::DropReason::ALL
        .iter()
        .find(|r| pipe.ctr.drops[**r as usize] > 0)
        .map(|r| r.name().to_string());
    let names: Vec<String> = inst
        .switch
        .model
        .ports
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let egress = out
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(p, d)| (names[*p].clone(), d.clone()))
        .collect();
    let mut steps: Vec<(String, String)> = vec![("headers".into(), describe_headers(frame))];
    steps.extend(log.events.into_iter().map(|(_, s, m)| (s.to_string(), m)));
    Ok(TraceResult {
        steps,
        egress,
        dropped,
        punted: pipe.ctr.punted > 0,
    })
}

/// Decode hex (spaces, colons and a leading 0x allowed).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let t: String = s
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if t.len() % 2 != 0 {
        return Err("--frame: odd number of hex digits".into());
    }
    (0..t.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&t[i..i + 2], 16)
                .map_err(|_| format!("--frame: {:?} is not hex", &t[i..i + 2]))
        })
        .collect()
}

/// One line on the L3/L4 headers (what the ACL stage can match on).
pub fn describe_headers(frame: &[u8]) -> String {
    use crate::wire::frame::{parse_frame, L4Info};
    let Ok(f) = parse_frame(frame) else {
        return "not an Ethernet frame".into();
    };
    let mut s = format!("{:?}", f.l3);
    if let Some(ip) = f.ip {
        s += &format!(" {} → {} dscp {} ttl {}", ip.src, ip.dst, ip.dscp, ip.ttl);
        if let Some(p) = ip.proto {
            s += &format!(" proto {p}");
        }
        if ip.frag.is_fragment {
            s += if ip.frag.is_first {
                " (first fragment)"
            } else {
                " (later fragment: no L4 header)"
            };
        }
    }
    match f.l4 {
        Some(L4Info::Tcp {
            src_port,
            dst_port,
            flags,
        }) => s += &format!(" tcp {src_port} → {dst_port} flags {flags:#05x}"),
        Some(L4Info::Udp { src_port, dst_port }) => s += &format!(" udp {src_port} → {dst_port}"),
        Some(L4Info::Icmp { ty, code }) => s += &format!(" icmp type {ty} code {code}"),
        Some(L4Info::Icmpv6 { ty, code }) => s += &format!(" icmpv6 type {ty} code {code}"),
        None => {}
    }
    if f.incomplete {
        s += " (a header is cut short: its fields are absent for matching)";
    }
    s
}
