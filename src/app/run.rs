//! `hairpin run`: the switch until SIGINT/SIGTERM; SIGHUP reloads the config.

use crate::config::Config;
use crate::runtime::{self, make_pool, Instance};
use crate::util::Clock;
use crate::worker::WorkerCfg;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run a config until a signal (or `seconds`). Prints the final counters as JSON.
/// `eal` (after `--` on the command line) is appended to `[dpdk] eal_args`.
pub fn run(path: &Path, seconds: Option<f64>, eal: &[String]) -> Result<ExitCode, String> {
    let mut cfg = Config::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !eal.is_empty() {
        if !cfg.port.iter().any(|p| p.backend.starts_with("dpdk:")) {
            return Err(format!(
                "EAL arguments after -- ({eal:?}) need a port with backend = \"dpdk:DEVICE\""
            ));
        }
        cfg.dpdk.eal_args.extend(eal.iter().cloned());
    }
    let pool = make_pool(&cfg, 0)?;
    let workers = cfg.switch.workers.clone();
    let (burst, idle) = (cfg.switch.burst, cfg.switch.idle_sleep_us);
    let mut inst = Instance::new(cfg, pool.clone())?;
    let mut wl = Vec::new();
    let mut punts = Vec::new();
    for (q, &core) in workers.iter().enumerate() {
        let (task, punt) = inst.task(q)?;
        punts.push(punt);
        wl.push((
            WorkerCfg {
                core: Some(core),
                burst,
                idle_sleep_us: idle,
            },
            vec![task],
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| format!("cannot install signal handler: {e}"))?;
    let clock = Clock::new();
    // 802.1Qbg: a control thread when any port runs EVB.
    let mut control = crate::control::thread::prepare(&inst, &mut wl, &pool)?;
    if let Some(c) = control.as_mut() {
        c.log_state = true;
    }
    let rebase = control.as_ref().map(|c| c.rebase_handle());
    let running = runtime::start(wl, clock, stop.clone())?;
    let control = control.map(|c| c.spawn(clock, stop.clone())).transpose()?;
    eprintln!(
        "hairpin: running {} ({} ports, {} workers on cores {:?}, pool {} buffers on {}); SIGINT/SIGTERM stops, SIGHUP reloads",
        inst.cfg.switch.role.name(),
        inst.ports.len(),
        workers.len(),
        workers,
        pool.capacity(),
        pool.mem_mode().name()
    );
    // The control thread: drain punted frames (the 802.1Qbg control plane consumes them).
    let t0 = Instant::now();
    let mut punted = 0u64;
    let mut last_sweep = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if hup.swap(false, Ordering::Relaxed) {
            match Config::load(path).and_then(|c| {
                inst.reload(c).map_err(|r| crate::config::ConfigError {
                    path: String::new(),
                    reason: r,
                })
            }) {
                Ok(gen) => {
                    eprintln!(
                        "hairpin: SIGHUP: {} reloaded (snapshot generation {gen})",
                        path.display()
                    );
                    if let Some(r) = &rebase {
                        r.rebase(inst.cfg.clone());
                    }
                }
                Err(e) => {
                    eprintln!("hairpin: SIGHUP: reload refused, the running config stays: {e}")
                }
            }
        }
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            inst.switch.fdb.age(clock.now_ms());
            last_sweep = Instant::now();
        }
        let mut any = false;
        for p in punts.iter_mut() {
            while let Some(b) = p.pop() {
                punted += 1;
                any = true;
                pool.free(b);
            }
        }
        if let Some(s) = seconds {
            if t0.elapsed().as_secs_f64() >= s {
                stop.store(true, Ordering::Relaxed);
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let tasks = running.join();
    let control = match control {
        Some(h) => {
            let mut c = h.join().map_err(|_| "the control thread panicked")?;
            c.drain_punts();
            Some(c.summary())
        }
        None => None,
    };
    for p in punts.iter_mut() {
        while let Some(b) = p.pop() {
            punted += 1;
            pool.free(b);
        }
    }
    // Frames still sitting in ring cables (no peer reads them in `run`) go back to the pool.
    for peer in inst.peers.iter_mut().flatten() {
        for q in 0..workers.len() {
            if let Some(mut rq) = peer.take(q) {
                while let Some(b) = rq.rx_one() {
                    pool.free(b);
                }
            }
        }
    }
    let t = runtime::totals(tasks.iter().flatten());
    // Device counters (rte_eth_stats of dpdk ports, ring drops and link of
    // afpacket ports) go next to hairpin's own as `ports.NAME.backend`; then
    // the devices stop, so the mbufs their descriptors hold return before the
    // pool check.
    let mut ports = serde_json::Map::new();
    for (i, p) in inst.ports.iter().enumerate() {
        let mut j = t.ports.get(i).copied().unwrap_or_default().to_json();
        if let Some(v) = p.backend_stats() {
            j["backend"] = v;
        }
        ports.insert(p.name().to_string(), j);
    }
    runtime::stop_ports(&mut inst.ports);
    drop(tasks);
    let out = serde_json::json!({
        "counters": t.core.to_json(),
        "per_core": t.per_core.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
        "ports": ports,
        "control_frames": punted,
        "qbg": control,
        "fdb_entries": inst.switch.fdb.len(),
        "pool": { "capacity": pool.capacity(), "available": pool.available() },
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
    let leaked = pool.capacity() - pool.available();
    drop(inst);
    drop(pool);
    runtime::shutdown_backends()?;
    if leaked != 0 {
        eprintln!("hairpin: {leaked} buffers not returned to the pool");
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}
