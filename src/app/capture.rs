//! `hairpin capture`: frames of a running switch into a pcapng file, over
//! its control socket (`capture.start` / `capture.status` / `capture.stop`,
//! see `docs/operations.md`). The switch process writes the file; this
//! command starts the capture, waits for `--count` frames or Ctrl-C, then
//! stops it (which closes the file) and prints the figures.

use super::show::Conn;
use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the capture's progress is asked for.
const POLL: Duration = Duration::from_millis(100);

/// `hairpin capture`.
#[derive(Args, Debug, Clone)]
pub struct CaptureArgs {
    /// The port to capture.
    #[arg(long)]
    pub port: String,
    /// Which frames: rx (received on the port), tx (sent on it) or both.
    #[arg(long, default_value = "both", value_parser = ["rx", "tx", "both"])]
    pub dir: String,
    /// Stop after N frames (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Keep at most B bytes of each frame.
    #[arg(long, value_name = "B", default_value_t = 65535,
          value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub snaplen: u32,
    /// The pcapng file to write (by the switch process; made absolute here).
    #[arg(short = 'w', long = "write", value_name = "FILE.pcapng")]
    pub file: PathBuf,
    /// The switch's control socket.
    #[arg(long, value_name = "PATH", default_value = crate::telemetry::DEFAULT_SOCKET)]
    pub control_socket: PathBuf,
    /// Print the final figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `hairpin capture`.
pub fn run(a: &CaptureArgs) -> Result<ExitCode, String> {
    let file = if a.file.is_absolute() {
        a.file.clone()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("-w {}: {e}", a.file.display()))?
            .join(&a.file)
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let mut c = Conn::open(&a.control_socket)?;
    let started = c.ask(&json!({
        "cmd": "capture.start",
        "port": a.port,
        "dir": a.dir,
        "snaplen": a.snaplen,
        "count": a.count.unwrap_or(0),
        "path": file.display().to_string(),
    }))?;
    let id = started["id"]
        .as_u64()
        .ok_or("control socket: capture.start gave no id")?;
    eprintln!(
        "hairpin: capturing {} frames of port {} into {}{}; Ctrl-C stops",
        a.dir,
        a.port,
        file.display(),
        a.count.map(|n| format!(" (up to {n})")).unwrap_or_default()
    );
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL);
        let s = c.ask(&json!({"cmd": "capture.status", "id": id}))?;
        if s["done"] == true {
            break;
        }
    }
    let fin = c.ask(&json!({"cmd": "capture.stop", "id": id}))?;
    if a.json {
        println!("{fin}");
    } else {
        println!(
            "{} frames ({} bytes) of port {} written to {}; {} copies dropped (capture queue full)",
            fin["frames"],
            fin["bytes"],
            a.port,
            file.display(),
            fin["capture_dropped"]
        );
    }
    match &fin["error"] {
        Value::String(e) => Err(e.clone()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
