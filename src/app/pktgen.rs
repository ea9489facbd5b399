//! `hairpin pktgen`: the generator, RFC 2544 methods and the comparison harness.

use crate::config::Config;
use crate::pktgen::rfc2544::{self, Params, Progress};
use crate::pktgen::stream::{self, PktgenFile, SizeSpec, StreamSpec, Val};
use crate::pktgen::{self as pg, Overrides};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `hairpin pktgen`.
#[derive(Args, Debug)]
pub struct PktgenArgs {
    #[command(subcommand)]
    method: Option<Method>,
    /// The switch config. Without --attach the switch is built in process on
    /// ring ports; with --attach it is the device under test's config.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Drive port PORT of the config from outside through BACKEND
    /// (afpacket:IF, afxdp:IF or dpdk:DEV: the far end of PORT's cable); the
    /// switch is not built in process. Repeatable; every port a stream uses
    /// must be attached.
    #[arg(long, global = true, value_name = "PORT=BACKEND")]
    attach: Vec<String>,
    /// A DPDK EAL argument for dpdk: attachments, appended to `[dpdk] eal_args`. Repeatable.
    #[arg(long, global = true, value_name = "ARG", allow_hyphen_values = true)]
    eal: Vec<String>,
    /// A TOML file with `[pktgen]` and `[[stream]]` tables.
    #[arg(long, global = true)]
    streams: Option<PathBuf>,
    /// A stream as KEY=VALUE,... (keys of `[[stream]]`; ranges as range.FIELD=MIN-MAX[/INC]). Repeatable.
    /// Without any stream, every VM sends to the next VM of its VLAN.
    #[arg(long = "stream", global = true, value_name = "K=V,...")]
    stream: Vec<String>,
    /// Seconds to send (default 2, or the file's `pktgen.duration`).
    #[arg(long, global = true)]
    duration: Option<f64>,
    /// Frames per stream.
    #[arg(long, global = true)]
    count: Option<u64>,
    /// Rate of every stream: max, N pps, N kpps, N Mpps, or P% of the line rate.
    #[arg(long, global = true)]
    rate: Option<String>,
    /// Frame size of every stream (64..9000 with FCS) or imix.
    #[arg(long, global = true)]
    size: Option<String>,
    /// Line rate for % rates (e.g. 10G).
    #[arg(long, global = true)]
    line_rate: Option<String>,
    /// Do not write timestamps (no latency figures).
    #[arg(long, global = true)]
    no_timestamps: bool,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    /// No progress output.
    #[arg(long, global = true)]
    quiet: bool,
    /// Also write the JSON result to this file.
    #[arg(long, global = true)]
    out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Method {
    /// RFC 2544-style methods on the switch of --config.
    Rfc2544 {
        /// Which method.
        #[arg(value_enum)]
        test: Test,
        /// Seconds per trial.
        #[arg(long, default_value_t = 1.0)]
        trial: f64,
        /// Loss a passing trial may have, percent.
        #[arg(long, default_value_t = 0.0)]
        tolerance: f64,
        /// Throughput search resolution, percent of line rate.
        #[arg(long, default_value_t = 0.5)]
        resolution: f64,
        /// Most trials per search.
        #[arg(long, default_value_t = 16)]
        max_trials: u32,
        /// Latency: load as a fraction of the measured throughput.
        #[arg(long, default_value_t = 0.9)]
        fraction: f64,
        /// Repetitions of latency and back-to-back trials.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Back-to-back: longest burst tried, frames per stream.
        #[arg(long, default_value_t = 65536)]
        max_burst: u64,
    },
    /// The hairpin vs local switching comparison (see docs/performance.md).
    Harness(Box<crate::pktgen::topo::HarnessArgs>),
    /// Write the streams as a pktgen-dpdk Lua script or a TRex STL profile
    /// (the same frames, for bare metal; see docs/bare-metal.md).
    Export {
        /// What to write.
        #[arg(long, value_enum)]
        format: crate::pktgen::export::Format,
        /// The file to write (default: stdout).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// The generator alone, ring port to ring port, unpaced (no switch).
    GenAlone {
        /// Seconds.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Receive and account every frame on the generator's core too
        /// (default: a sink thread on another core frees them).
        #[arg(long)]
        same_core: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Test {
    /// Highest rate within the loss tolerance (binary search).
    Throughput,
    /// Latency at --fraction of the throughput.
    Latency,
    /// Frame loss at 100 %, 90 %, ... of line rate.
    FrameLoss,
    /// Longest loss-free burst at line rate.
    BackToBack,
    /// All four.
    All,
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, s) = (t.div_euclid(86400), t.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Streams when none are given: every VM to the next VM of its VLAN (in config order).
pub fn default_streams(cfg: &Config) -> Vec<StreamSpec> {
    let mut out = Vec::new();
    for (i, v) in cfg.vm.iter().enumerate() {
        let same: Vec<_> = cfg.vm.iter().filter(|w| w.vlan == v.vlan).collect();
        if same.len() < 2 {
            continue;
        }
        let pos = same.iter().position(|w| w.name == v.name).unwrap_or(0);
        let next = same[(pos + 1) % same.len()];
        let _ = i;
        out.push(StreamSpec {
            src: v.name.clone(),
            dst: next.name.clone(),
            ..stream::parse_stream_flag(&format!("src={},dst={}", v.name, next.name))
                .expect("built-in stream")
        });
    }
    out
}

fn load_file(a: &PktgenArgs, cfg: &Config) -> Result<PktgenFile, String> {
    let mut file = match &a.streams {
        Some(p) => {
            let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            PktgenFile::parse(&t).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => PktgenFile::default(),
    };
    for s in &a.stream {
        file.stream.push(stream::parse_stream_flag(s)?);
    }
    if file.stream.is_empty() {
        file.stream = default_streams(cfg);
        if file.stream.is_empty() {
            return Err("stream: none given and the config has no two VMs in one VLAN".into());
        }
    }
    if let Some(l) = &a.line_rate {
        file.pktgen.line_rate = l.clone();
    }
    let o = Overrides {
        duration: a.duration,
        count: a.count,
        rate: a.rate.as_ref().map(|r| Val::S(r.clone())),
        size: a.size.as_ref().map(|z| match z.parse::<u32>() {
            Ok(n) => SizeSpec::Bytes(n),
            Err(_) => SizeSpec::Name(z.clone()),
        }),
        no_timestamps: a.no_timestamps,
    };
    pg::prepare(&mut file, &o)?;
    Ok(file)
}

fn emit(a: &PktgenArgs, v: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).expect("serialisable");
    if let Some(p) = &a.out {
        std::fs::write(p, &text).map_err(|e| format!("--out {}: {e}", p.display()))?;
    }
    if a.json {
        println!("{text}");
    }
    Ok(())
}

fn fmt_ns(v: u64) -> String {
    if v >= 1_000_000 {
        format!("{:.2} ms", v as f64 / 1e6)
    } else if v >= 1_000 {
        format!("{:.1} µs", v as f64 / 1e3)
    } else {
        format!("{v} ns")
    }
}

fn print_run(r: &pg::SwitchRun) {
    let run = &r.run;
    println!(
        "hairpin pktgen: {} streams, {:.2} s{}",
        run.streams.len(),
        run.seconds,
        if run.partial {
            " (PARTIAL: interrupted)"
        } else {
            ""
        }
    );
    println!(
        "{:<20} {:>6} {:>12} {:>12} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "stream",
        "size",
        "offered",
        "received",
        "loss %",
        "dup",
        "reord",
        "Mpps",
        "min",
        "p50",
        "p99",
        "max"
    );
    for s in &run.streams {
        let l = s.latency.as_ref();
        let f = |g: fn(&crate::pktgen::rx::LatencySummary) -> u64| {
            l.map(|x| fmt_ns(g(x))).unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<20} {:>6} {:>12} {:>12} {:>10.4} {:>8} {:>8} {:>9.3} {:>9} {:>9} {:>9} {:>9}",
            s.name,
            s.size,
            s.offered,
            s.received,
            s.loss_pct,
            s.duplicates,
            s.reordered,
            s.received_mpps,
            f(|x| x.min_ns),
            f(|x| x.p50_ns),
            f(|x| x.p99_ns),
            f(|x| x.max_ns)
        );
    }
    print!(
        "total: offered {}, received {}, lost {}, foreign {}",
        run.offered, run.received, run.lost, run.foreign
    );
    match &r.switch {
        Some(sw) => println!(
            "; switch ({}): {:.1} busy cycles/frame, drops {:?}",
            sw.role, sw.cycles_per_frame, sw.drops
        ),
        None => println!("; device under test outside this process"),
    }
    for e in run.errors() {
        println!("error: {e}");
    }
}

/// Run `hairpin pktgen`.
pub fn main(a: PktgenArgs) -> Result<ExitCode, String> {
    if let Some(Method::Harness(h)) = &a.method {
        return crate::pktgen::topo::harness_main(h, a.quiet, a.json, a.out.as_deref());
    }
    if let Some(Method::GenAlone { seconds, same_core }) = &a.method {
        if !(*seconds > 0.0 && *seconds <= 600.0) {
            return Err("--seconds: between 0 and 600".into());
        }
        let size = a.size.clone().unwrap_or_else(|| "64".into());
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (g, k) = (Some(0), (n > 1).then_some(1));
        let r = crate::pktgen::topo::generator_alone(
            &size,
            *seconds,
            !a.no_timestamps,
            *same_core,
            g,
            k,
        )?;
        if !a.json {
            println!(
                "generator alone, {} B, timestamps {}, receiver {}: TX {:.2} Mpps{} over {:.2} s",
                r.size,
                if r.timestamps { "on" } else { "off" },
                if r.same_core_rx {
                    "on the same core"
                } else {
                    "a sink thread on core 1"
                },
                r.tx_mpps,
                if r.same_core_rx {
                    format!(", RX {:.2} Mpps", r.rx_mpps)
                } else {
                    String::new()
                },
                r.seconds
            );
        }
        emit(&a, &serde_json::to_value(&r).expect("serialisable"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let path = a
        .config
        .as_ref()
        .ok_or("--config: the switch to measure is required")?;
    let cfg = Config::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = load_file(&a, &cfg)?;
    if let Some(Method::Export { format, output }) = &a.method {
        return export(&cfg, &file, *format, output.as_deref());
    }
    let attach = a
        .attach
        .iter()
        .map(|s| pg::attach::parse_attach(s))
        .collect::<Result<Vec<_>, _>>()?;
    if attach.is_empty() && !a.eal.is_empty() {
        return Err("--eal: EAL arguments need an --attach PORT=dpdk:DEV".into());
    }
    let stop = pg::interrupt_flag()?;
    // The generator's rig: the switch in process, or the attached ports.
    let workers = cfg.switch.workers.clone();
    let make_rig = |cfg: Config| -> Result<pg::Rig, String> {
        if attach.is_empty() {
            pg::rig_for_config(cfg, &file)
        } else {
            pg::attach::rig_attached(&cfg, &file, &attach, &a.eal)
        }
    };
    let pin = attach.is_empty().then_some(workers.as_slice());
    let code = run_method(&a, cfg, &file, path, make_rig, pin, &stop);
    // dpdk attachments: the EAL goes down once ports and pool are gone.
    crate::runtime::shutdown_backends()?;
    code
}

fn run_method(
    a: &PktgenArgs,
    cfg: Config,
    file: &PktgenFile,
    path: &std::path::Path,
    make_rig: impl Fn(Config) -> Result<pg::Rig, String>,
    pin: Option<&[usize]>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<ExitCode, String> {
    match &a.method {
        None => {
            let mut rig = make_rig(cfg)?;
            let pr = Progress::new(a.quiet);
            pr.text(&format!("[pktgen] {} streams", rig.engine.streams().len()));
            rig.engine.set_progress(pr.engine_hook());
            let r = pg::run_rig(rig, pin, stop);
            pr.done();
            let r = r?;
            if !a.json {
                print_run(&r);
            }
            emit(a, &serde_json::to_value(&r).expect("serialisable"))?;
            Ok(if r.run.partial {
                ExitCode::from(130)
            } else if !r.run.errors().is_empty() {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            })
        }
        Some(Method::Rfc2544 {
            test,
            trial,
            tolerance,
            resolution,
            max_trials,
            fraction,
            repeat,
            max_burst,
        }) => {
            if !(*trial > 0.0 && *trial <= 600.0) {
                return Err("--trial: between 0 and 600 seconds".into());
            }
            if !(0.0..=100.0).contains(tolerance) {
                return Err("--tolerance: a loss percentage in 0..=100".into());
            }
            if !(*resolution > 0.0 && *resolution <= 50.0) {
                return Err("--resolution: a percentage in (0, 50]".into());
            }
            if !(*fraction > 0.0 && *fraction <= 1.0) {
                return Err("--fraction: in (0, 1]".into());
            }
            let p = Params {
                trial_s: *trial,
                loss_tolerance_pct: *tolerance,
                resolution_pct: *resolution,
                max_trials: (*max_trials).max(1),
                latency_fraction: *fraction,
                repeat: (*repeat).max(1),
                max_burst: (*max_burst).max(1),
                ..Params::default()
            };
            let pr = Progress::new(a.quiet);
            let mut rig = make_rig(cfg)?;
            rig.engine.set_progress(pr.engine_hook());
            let mut out = serde_json::Map::new();
            let partial = std::thread::scope(|sc| {
                sc.spawn(|| {
                    if let Some(w) = pin {
                        pg::pin_generator(w);
                    }
                    let mut partial = false;
                    let mut tput = None;
                    if matches!(test, Test::Throughput | Test::Latency | Test::All) {
                        let t = rfc2544::throughput(&mut rig, &p, stop, &pr);
                        partial |= t.partial;
                        tput = Some(t.load_pct / 100.0);
                        out.insert("throughput".into(), serde_json::to_value(&t).unwrap());
                    }
                    if !partial && matches!(test, Test::Latency | Test::All) {
                        let load = (tput.unwrap_or(0.0) * p.latency_fraction).max(1e-4);
                        let l = rfc2544::latency(&mut rig, load, &p, stop, &pr);
                        partial |= l.partial;
                        out.insert("latency".into(), serde_json::to_value(&l).unwrap());
                    }
                    if !partial && matches!(test, Test::FrameLoss | Test::All) {
                        let l = rfc2544::frame_loss(&mut rig, &p, stop, &pr);
                        partial |= l.partial;
                        out.insert("frame_loss".into(), serde_json::to_value(&l).unwrap());
                    }
                    if !partial && matches!(test, Test::BackToBack | Test::All) {
                        let b = rfc2544::back_to_back(&mut rig, &p, stop, &pr);
                        partial |= b.partial;
                        out.insert("back_to_back".into(), serde_json::to_value(&b).unwrap());
                    }
                    partial
                })
                .join()
            })
            .map_err(|_| "the generator thread panicked".to_string())?;
            rig.finish();
            let doc = serde_json::json!({
                "method": "rfc2544",
                "date": utc_now(),
                "config": path.display().to_string(),
                "line_rate": file.pktgen.line_rate,
                "params": p,
                "partial": partial,
                "results": out,
            });
            if !a.json {
                print_rfc2544(&doc);
            }
            emit(a, &doc)?;
            Ok(if partial {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            })
        }
        Some(Method::Harness(_) | Method::GenAlone { .. } | Method::Export { .. }) => {
            unreachable!("handled above")
        }
    }
}

fn export(
    cfg: &Config,
    file: &PktgenFile,
    format: crate::pktgen::export::Format,
    output: Option<&std::path::Path>,
) -> Result<ExitCode, String> {
    use crate::pktgen::export::{self as ex, Format};
    let streams = ex::compile(cfg, file)?;
    let text = match format {
        Format::PktgenLua => ex::pktgen_lua(cfg, file, &streams)?,
        Format::Trex => ex::trex(cfg, file, &streams)?,
    };
    match output {
        Some(p) => std::fs::write(p, text).map_err(|e| format!("-o {}: {e}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_rfc2544(doc: &serde_json::Value) {
    let r = &doc["results"];
    println!(
        "RFC 2544 on {} (line rate {}){}",
        doc["config"].as_str().unwrap_or(""),
        doc["line_rate"].as_str().unwrap_or(""),
        if doc["partial"] == true {
            " PARTIAL: interrupted"
        } else {
            ""
        }
    );
    if let Some(t) = r.get("throughput") {
        println!(
            "throughput     {:.2}% of line = {:.3} Mpps, {:.3} Gbit/s{} ({} trials)",
            t["load_pct"].as_f64().unwrap_or(0.0),
            t["mpps"].as_f64().unwrap_or(0.0),
            t["gbps"].as_f64().unwrap_or(0.0),
            if t["generator_limited"] == true {
                " [generator-limited]"
            } else {
                ""
            },
            t["trials"].as_array().map(|x| x.len()).unwrap_or(0)
        );
    }
    if let Some(l) = r.get("latency") {
        let a = &l["all"];
        let g = |k: &str| a[k].as_u64().map(fmt_ns).unwrap_or_else(|| "-".into());
        println!(
            "latency        at {:.2}% of line: min {} p50 {} p90 {} p99 {} p99.9 {} max {}",
            l["load_pct"].as_f64().unwrap_or(0.0),
            g("min_ns"),
            g("p50_ns"),
            g("p90_ns"),
            g("p99_ns"),
            g("p999_ns"),
            g("max_ns")
        );
    }
    if let Some(l) = r.get("frame_loss") {
        for t in l["trials"].as_array().into_iter().flatten() {
            println!(
                "frame loss     at {:>6.2}% of line: {:.4}% lost",
                t["load_pct"].as_f64().unwrap_or(0.0),
                t["loss_pct"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(b) = r.get("back_to_back") {
        println!(
            "back-to-back   longest loss-free burst {:.0} frames per stream{}",
            b["mean_burst"].as_f64().unwrap_or(0.0),
            if b["line_rate_reached"] == false {
                " [line rate not reached by the generator]"
            } else {
                ""
            }
        );
    }
}
