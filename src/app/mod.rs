//! The commands of the `hairpin` binary.

use crate::bench::{self, BenchOpts};
use crate::buf::MemMode;
use crate::config::Config;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// hairpin: a poll-mode 802.1Qbg reflective-relay switch.
#[derive(Parser, Debug)]
#[command(name = "hairpin", version, about)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the switch: pinned poll-mode workers until SIGINT/SIGTERM.
    Run {
        /// The TOML config.
        #[arg(long)]
        config: PathBuf,
        /// Stop by itself after this many seconds (default: run until a signal).
        #[arg(long)]
        seconds: Option<f64>,
        /// After `--`: DPDK EAL arguments, appended to `[dpdk] eal_args`.
        #[arg(last = true, value_name = "EAL_ARGS")]
        eal: Vec<String>,
        /// Serve the control socket here (default: `[telemetry] control_socket`,
        /// else /run/hairpin/hairpin.sock).
        #[arg(long, value_name = "PATH")]
        control_socket: Option<PathBuf>,
    },
    /// A running switch's ports, cores and drops (over its control socket).
    Stats {
        #[command(flatten)]
        opts: show::ClientOpts,
    },
    /// One table of a running switch (over its control socket).
    Show {
        /// What to show.
        #[arg(value_enum)]
        what: show::What,
        #[command(flatten)]
        filter: show::FdbFilter,
        #[command(flatten)]
        opts: show::ClientOpts,
    },
    /// Reload a running switch's config file (as SIGHUP); refused changes exit 1 with the reason.
    Reload {
        #[command(flatten)]
        opts: show::ClientOpts,
    },
    /// Run the pipeline on pcap input; egress to OUT/PORT.pcap, counters as JSON on stdout.
    Replay {
        /// The TOML config (port backends are ignored).
        #[arg(long)]
        config: PathBuf,
        /// Input: PORT=FILE.pcap (repeatable).
        #[arg(long = "in", value_name = "PORT=FILE", required = true)]
        inputs: Vec<String>,
        /// Directory for the egress pcaps.
        #[arg(long)]
        out_dir: PathBuf,
        /// Frames per burst (1 = strictly one at a time).
        #[arg(long, default_value_t = 32)]
        burst: usize,
    },
    /// One frame through the pipeline, every stage's decision printed.
    Trace {
        /// The TOML config.
        #[arg(long)]
        config: PathBuf,
        /// Ingress port.
        #[arg(long)]
        port: String,
        /// The frame, in hex.
        #[arg(long)]
        frame: String,
        /// Pre-learn an FDB entry: PORT=MAC[@VID] (repeatable).
        #[arg(long)]
        learn: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Built-in demo: hairpin (VEPA + reflective relay) vs local switching (VEB) on in-memory ports.
    Compare {
        /// Seconds to measure each topology.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// VMs (2..=256); more than 63 are spread evenly over several edges behind the bridge.
        #[arg(long, default_value_t = 4)]
        vms: u32,
        /// Frame size in bytes with FCS (64..=9000) or imix.
        #[arg(long, default_value = "64")]
        size: String,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Traffic generator: streams between VMs with loss, reordering and latency
    /// per stream; RFC 2544 methods; the hairpin vs local switching harness.
    Pktgen(Box<pktgen::PktgenArgs>),
    /// Validate a config file; errors name the key and the reason.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Print the counter reference (docs/counters.md).
    Counters,
    /// VMs of an edge in the EVB station role: associate, deassociate, migrate (over its control socket).
    Vm {
        #[command(subcommand)]
        cmd: vm::VmCmd,
    },
    /// Copy frames of a running switch's port into a pcapng file (over its control socket).
    Capture(capture::CaptureArgs),
    /// Network-namespace lab: VMs, a hypervisor edge and a hairpin bridge on veth (root only).
    Lab {
        #[command(subcommand)]
        cmd: lab::LabCmd,
    },
    /// Run a measured benchmark scenario.
    Bench {
        /// Scenario.
        #[arg(value_enum)]
        scenario: Scenario,
        /// Seconds to measure (after a 0.5 s warm-up).
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Learned MACs the traffic cycles through.
        #[arg(long, default_value_t = 1000)]
        macs: u32,
        /// Frames per burst.
        #[arg(long, default_value_t = 32)]
        burst: usize,
        /// Pool memory: auto (hugepages if reserved, else THP), huge, thp, 4k.
        #[arg(long, value_enum, default_value_t = Mem::Auto)]
        mem: Mem,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// ACL rules in every VM's policy (rte_acl-style set; 0 = no policy).
        #[arg(long, default_value_t = 0)]
        rules: usize,
        /// Meter every VM and schedule 8 egress classes on the port.
        #[arg(long)]
        qos: bool,
        /// Every MAC a VM with a permit-all policy (anti-spoofing, no rules,
        /// no QoS): the baseline `--qos` is measured against.
        #[arg(long)]
        vms: bool,
        /// Entries of the worker's ACL flow cache (`switch.flow_cache`; 0 = off:
        /// every frame runs the classifier).
        #[arg(long, default_value_t = crate::policy::flow::DEFAULT_ENTRIES)]
        flow_cache: usize,
        /// Each frame this many times in a row (1..=256): 1, every frame
        /// another flow; the burst size, bursts of one flow (a single-stream
        /// generator).
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// After `--` (dpdk scenarios): EAL arguments instead of the defaults.
        #[arg(last = true, value_name = "EAL_ARGS")]
        eal: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    /// One worker, ring port, 64-byte hairpin unicast among learned MACs.
    HairpinFwd,
    /// The same through a DPDK ring ethdev and the mbuf mempool (feature `dpdk`).
    #[cfg(feature = "dpdk")]
    DpdkRingFwd,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Mem {
    Auto,
    Huge,
    Thp,
    #[value(name = "4k")]
    Plain,
}

mod capture;
mod lab;
mod pktgen;
mod run;
pub mod show;
pub use pktgen::utc_now;
pub mod vm;

fn load(path: &std::path::Path) -> Result<Config, String> {
    Config::load(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Entry point; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hairpin: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.cmd {
        Cmd::Run {
            config,
            seconds,
            eal,
            control_socket,
        } => run::run(&config, seconds, &eal, control_socket.as_deref()),
        Cmd::Lab { cmd } => lab::run(cmd),
        Cmd::Vm { cmd } => vm::run(cmd),
        Cmd::Capture(a) => capture::run(&a),
        Cmd::Stats { opts } => show::show(
            &[show::What::Ports, show::What::Cores, show::What::Drops],
            &show::FdbFilter::default(),
            &opts,
        ),
        Cmd::Show { what, filter, opts } => {
            if what != show::What::Fdb
                && (filter.port.is_some() || filter.vlan.is_some() || filter.mac.is_some())
            {
                return Err("--port, --vlan and --mac filter `show fdb` only".into());
            }
            show::show(&[what], &filter, &opts)
        }
        Cmd::Reload { opts } => show::reload(&opts),
        Cmd::Pktgen(a) => pktgen::main(*a),
        Cmd::Counters => {
            print!("{}", crate::stats::counters_markdown());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Replay {
            config,
            inputs,
            out_dir,
            burst,
        } => {
            let cfg = load(&config)?;
            let mut ins = Vec::new();
            for (i, s) in inputs.iter().enumerate() {
                let (p, f) = s
                    .split_once('=')
                    .ok_or_else(|| format!("--in[{i}] {s:?}: want PORT=FILE.pcap"))?;
                ins.push((p.to_string(), PathBuf::from(f)));
            }
            let j = crate::replay::replay(cfg, &ins, &out_dir, burst)?;
            println!("{}", serde_json::to_string_pretty(&j).unwrap());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Trace {
            config,
            port,
            frame,
            learn,
            json,
        } => {
            let cfg = load(&config)?;
            let bytes = crate::trace::parse_hex(&frame)?;
            let learn = learn
                .iter()
                .map(|s| crate::trace::parse_learn(s))
                .collect::<Result<Vec<_>, _>>()?;
            let r = crate::trace::trace(cfg, &port, &bytes, &learn)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap());
            } else {
                println!("frame: {} bytes in on {port}", bytes.len());
                for (stage, msg) in &r.steps {
                    println!("  {stage:<8} {msg}");
                }
                if r.punted {
                    println!("result: to the control plane");
                } else if let Some(d) = &r.dropped {
                    if r.egress.is_empty() {
                        println!("result: dropped ({d})");
                    } else {
                        println!("result: partly dropped ({d})");
                    }
                }
                for (p, d) in &r.egress {
                    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
                    println!("egress {p} ({} bytes): {hex}", d.len());
                }
                if r.egress.is_empty() && r.dropped.is_none() && !r.punted {
                    println!("result: no egress");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare {
            seconds,
            vms,
            size,
            json,
        } => {
            if !(0.1..=3600.0).contains(&seconds) {
                return Err("--seconds: between 0.1 and 3600".into());
            }
            if !(2..=crate::pktgen::topo::MAX_VMS).contains(&vms) {
                return Err(format!(
                    "--vms: between 2 and {}",
                    crate::pktgen::topo::MAX_VMS
                ));
            }
            let o = crate::compare::CompareOpts {
                vms,
                seconds,
                size,
                ..Default::default()
            };
            let stop = crate::pktgen::interrupt_flag()?;
            let rs = crate::compare::compare(&o, &stop)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rs).unwrap());
            } else {
                crate::compare::print(&o, &rs);
            }
            Ok(if rs.iter().any(|r| r.partial) {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::CheckConfig { file } => match Config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok ({} role, {} ports, {} VMs, {} workers)",
                    file.display(),
                    c.switch.role.name(),
                    c.port.len(),
                    c.vm.len(),
                    c.switch.workers.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                Ok(ExitCode::from(2))
            }
        },
        Cmd::Bench {
            scenario,
            seconds,
            macs,
            burst,
            mem,
            json,
            rules,
            qos,
            vms,
            flow_cache,
            repeat,
            eal,
        } => {
            if flow_cache > crate::policy::flow::MAX_ENTRIES {
                return Err(format!(
                    "--flow-cache: at most {}",
                    crate::policy::flow::MAX_ENTRIES
                ));
            }
            if rules > 100_000 {
                return Err("--rules: at most 100000".into());
            }
            if !(0.1..=3600.0).contains(&seconds) {
                return Err("--seconds: between 0.1 and 3600".into());
            }
            if !(1..=256).contains(&burst) {
                return Err("--burst: between 1 and 256".into());
            }
            if !(1..=256).contains(&repeat) {
                return Err("--repeat: between 1 and 256".into());
            }
            let o = BenchOpts {
                seconds,
                macs: macs.max(2),
                burst,
                mem: match mem {
                    Mem::Auto => None,
                    Mem::Huge => Some(MemMode::Hugepages),
                    Mem::Thp => Some(MemMode::Thp),
                    Mem::Plain => Some(MemMode::Plain),
                },
                rules,
                qos,
                vms,
                flow_cache,
                repeat,
                ..BenchOpts::default()
            };
            let r = match scenario {
                Scenario::HairpinFwd => {
                    if !eal.is_empty() {
                        return Err("EAL arguments after -- are for the dpdk scenarios".into());
                    }
                    bench::hairpin_fwd(&o)?
                }
                #[cfg(feature = "dpdk")]
                Scenario::DpdkRingFwd => {
                    let eal = if eal.is_empty() {
                        crate::bench_dpdk::default_eal_args(o.mem)
                    } else {
                        eal
                    };
                    crate::bench_dpdk::dpdk_ring_fwd(&o, &eal)?
                }
            };
            if json {
                println!("{}", serde_json::to_string(&r).unwrap());
            } else {
                println!("scenario        {}", r.scenario);
                let extra = if r.vms {
                    format!(" (snapshot built in {:.1} ms)", r.snapshot_build_ms)
                } else {
                    String::new()
                };
                let q = if r.qos {
                    ", meters + 8-class egress"
                } else {
                    ""
                };
                if r.vms {
                    println!("policy          {} rules per VM{q}{extra}", r.rules);
                } else {
                    println!("policy          none (no VMs)");
                }
                println!("memory          {}", r.mem);
                println!(
                    "traffic         {} flows, each frame {} time(s) in a row",
                    r.flows, r.repeat
                );
                println!("seconds         {:.2}", r.seconds);
                println!("offered         {}", r.offered);
                println!("forwarded       {}", r.forwarded);
                println!("Mpps            {:.2}", r.mpps);
                println!("ns/frame        {:.2}", r.ns_per_frame);
                println!(
                    "cycles/frame    {:.1} (switch core, TSC {:.2} GHz, busy {:.0}%)",
                    r.cycles_per_frame,
                    r.tsc_ghz,
                    r.busy_share * 100.0
                );
                println!("frames/burst    {:.1} (of {})", r.frames_per_burst, o.burst);
                if r.rules > 0 {
                    println!(
                        "flow cache      {} entries, {:.1}% of ACL lookups hit",
                        r.flow_cache,
                        r.flow_cache_hit_rate * 100.0
                    );
                }
                println!("drops           {} {:?}", r.drops, r.drops_by_reason);
                println!("fdb entries     {}", r.fdb_entries);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
