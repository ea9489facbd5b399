//! The generator on real ports: `--attach PORT=BACKEND`.
//!
//! The switch config describes the device under test (a `hairpin run` in
//! another process or namespace, a kernel bridge, a NIC looped back); the
//! generator does not build it. Each attached port of that config is
//! reached through `BACKEND` — `afpacket:IF`, `afxdp:IF` or `dpdk:DEV`, the
//! far end of the port's cable — opened with the same [`Port`] code as
//! `hairpin run` uses, one queue per port. Streams are compiled against the
//! config as usual (MACs, VLANs, tags of the VM ports), so the frames on the
//! wire are those of an in-process run.

use super::engine::{Engine, EngineCfg, GenQueues};
use super::stream::{self, PktgenFile};
use super::Rig;
use crate::config::Config;
use crate::port::Port;
use crate::runtime;

/// One `--attach PORT=BACKEND`.
#[derive(Clone, Debug, PartialEq)]
pub struct Attach {
    /// A port of the config (the device under test's side).
    pub port: String,
    /// How the generator reaches it: `afpacket:IF`, `afxdp:IF` or `dpdk:DEV`.
    pub backend: String,
}

/// Backends a generator can attach through.
pub const BACKENDS: [&str; 3] = ["afpacket:", "afxdp:", "dpdk:"];

/// Parse `PORT=BACKEND`.
pub fn parse_attach(s: &str) -> Result<Attach, String> {
    let (p, b) = s
        .split_once('=')
        .ok_or_else(|| format!("--attach {s:?}: want PORT=BACKEND (e.g. hv1=afpacket:veth1)"))?;
    let (port, backend) = (p.trim().to_string(), b.trim().to_string());
    if port.is_empty() {
        return Err(format!("--attach {s:?}: the port name is empty"));
    }
    let ok = BACKENDS
        .iter()
        .any(|k| backend.len() > k.len() && backend.starts_with(k));
    if !ok {
        return Err(format!(
            "--attach {s:?}: backend {backend:?} is not one of afpacket:IF, afxdp:IF, dpdk:DEV"
        ));
    }
    Ok(Attach { port, backend })
}

/// The generator's own config: the device under test's `cfg` with every
/// attached port on its attach backend, every other port on a ring (never
/// opened), one worker (one queue per port), and `eal` appended to
/// `[dpdk] eal_args`.
pub fn generator_config(cfg: &Config, attach: &[Attach], eal: &[String]) -> Result<Config, String> {
    let mut g = cfg.clone();
    for p in g.port.iter_mut() {
        p.backend = "ring".into();
    }
    for (k, a) in attach.iter().enumerate() {
        let i = cfg.port_index(&a.port).ok_or_else(|| {
            format!(
                "--attach {}: the config has no port {:?} (it has: {})",
                a.port,
                a.port,
                cfg.port
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        if attach[..k].iter().any(|b| b.port == a.port) {
            return Err(format!("--attach {}: port attached twice", a.port));
        }
        g.port[i].backend = a.backend.clone();
    }
    g.switch.workers = vec![0];
    if !eal.is_empty() {
        if !attach.iter().any(|a| a.backend.starts_with("dpdk:")) {
            return Err(format!(
                "--eal {eal:?}: EAL arguments need an --attach PORT=dpdk:DEV"
            ));
        }
        g.dpdk.eal_args.extend(eal.iter().cloned());
    }
    Ok(g)
}

/// A generator on the attached ports of `cfg`'s device under test (no
/// switch in process). Every port a stream starts or ends on must be attached.
pub fn rig_attached(
    cfg: &Config,
    file: &PktgenFile,
    attach: &[Attach],
    eal: &[String],
) -> Result<Rig, String> {
    let g = generator_config(cfg, attach, eal)?;
    // Validate the streams before opening devices (and starting the EAL).
    let streams = stream::compile(&file.stream, cfg, cfg.switch.mtu + 8)?;
    let attached = |p: usize| attach.iter().any(|a| a.port == cfg.port[p].name);
    for (i, s) in streams.iter().enumerate() {
        for (what, p, vm) in [("src", s.tx_port, &s.src_vm), ("dst", s.rx_port, &s.dst_vm)] {
            if !attached(p) {
                return Err(format!(
                    "stream[{i}].{what}: VM {vm:?} is on port {:?}, which has no --attach {}=BACKEND",
                    cfg.port[p].name, cfg.port[p].name
                ));
            }
        }
    }
    let pool = runtime::make_pool(&g, 16384)?;
    let streams = stream::compile(&file.stream, cfg, pool.max_frame())?;
    let mut ports: Vec<Box<dyn Port>> = Vec::new();
    let mut queues: GenQueues = Vec::new();
    for (i, p) in g.port.iter().enumerate() {
        if p.backend == "ring" {
            continue;
        }
        let (mut port, _) = runtime::open_port(&g, i, &pool)?;
        let q = port
            .take_queue(0)
            .ok_or_else(|| format!("--attach {}: {} has no queue 0", p.name, p.backend))?;
        queues.push(((i, 0), q));
        ports.push(port);
    }
    let n = streams.len();
    let ecfg = EngineCfg {
        burst: file.pktgen.burst,
        timestamps: file.pktgen.timestamps,
        duration: file.pktgen.duration,
        line_bps: stream::parse_bps(&file.pktgen.line_rate)?,
        hz: super::tsc_hz(),
        drain_ms: 200,
        window: None,
    };
    let engine = Engine::new(streams, queues, vec![0; n], pool.clone(), ecfg)?;
    let mut rig = Rig::start(engine, vec![], vec![], vec![], pool)?;
    rig.ports = ports;
    Ok(rig)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
[switch]
role = "bridge"
workers = [0, 1]
[[port]]
name = "hv1"
mode = "trunk"
vlans = [10]
[[port]]
name = "hv2"
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
port = "hv2"
"#;

    #[test]
    fn parse_and_errors() {
        assert_eq!(
            parse_attach("hv1=afpacket:veth0").unwrap(),
            Attach {
                port: "hv1".into(),
                backend: "afpacket:veth0".into()
            }
        );
        assert!(parse_attach("hv1").unwrap_err().contains("PORT=BACKEND"));
        assert!(parse_attach("hv1=ring").unwrap_err().contains("not one of"));
        assert!(parse_attach("hv1=afpacket:")
            .unwrap_err()
            .contains("not one of"));
        assert!(parse_attach("=dpdk:net_null0")
            .unwrap_err()
            .contains("empty"));
    }

    #[test]
    fn generator_config_replaces_backends() {
        let cfg = Config::parse(CFG).unwrap();
        let a = [parse_attach("hv2=afxdp:x0").unwrap()];
        let g = generator_config(&cfg, &a, &[]).unwrap();
        assert_eq!(g.port[0].backend, "ring");
        assert_eq!(g.port[1].backend, "afxdp:x0");
        assert_eq!(g.switch.workers, vec![0]);
        let e =
            generator_config(&cfg, &[parse_attach("nope=afpacket:x").unwrap()], &[]).unwrap_err();
        assert!(
            e.contains("no port \"nope\"") && e.contains("hv1, hv2"),
            "{e}"
        );
        let e = generator_config(&cfg, &[a[0].clone(), a[0].clone()], &[]).unwrap_err();
        assert!(e.contains("attached twice"), "{e}");
        let e = generator_config(&cfg, &a, &["--no-huge".into()]).unwrap_err();
        assert!(e.contains("need an --attach PORT=dpdk:DEV"), "{e}");
    }

    #[test]
    fn every_stream_port_must_be_attached() {
        let cfg = Config::parse(CFG).unwrap();
        let mut f = PktgenFile::default();
        f.stream
            .push(stream::parse_stream_flag("src=a,dst=b,count=10").unwrap());
        let e = match rig_attached(&cfg, &f, &[parse_attach("hv1=afpacket:lo").unwrap()], &[]) {
            Err(e) => e,
            Ok(_) => panic!("a stream ends on a port that is not attached"),
        };
        assert!(
            e.contains("stream[0].dst") && e.contains("no --attach hv2=BACKEND"),
            "{e}"
        );
    }
}
