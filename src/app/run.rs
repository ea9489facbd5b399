//! `hairpin run`: the switch until SIGINT/SIGTERM; SIGHUP reloads the config.

use crate::config::Config;
use crate::runtime::{self, make_pool, Instance};
use crate::telemetry::{self, HostJob};
use crate::util::Clock;
use crate::worker::WorkerCfg;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run a config until a signal (or `seconds`). Prints the final counters as JSON.
/// `eal` (after `--` on the command line) is appended to `[dpdk] eal_args`.
/// `control_socket` overrides `[telemetry] control_socket` (see `docs/operations.md`).
pub fn run(
    path: &Path,
    seconds: Option<f64>,
    eal: &[String],
    control_socket: Option<&Path>,
) -> Result<ExitCode, String> {
    let mut cfg = Config::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::logging::apply_config(&cfg.log.level);
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
    let (burst, idle, spin) = (
        cfg.switch.burst,
        cfg.switch.idle_sleep_us,
        cfg.switch.idle_spin_us,
    );
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
                idle_spin_us: spin,
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
    // 802.1Qbg: a control thread when any port runs EVB (it takes over the EVB ports' punts).
    let mut control = crate::control::thread::prepare(&inst, &mut wl, &pool)?;
    if let Some(c) = control.as_mut() {
        c.log_state = true;
    }
    let rebase = control.as_ref().map(|c| c.rebase_handle());
    // `vm.*` commands of the control socket go to the control thread (bounded).
    let vm = control.as_mut().map(|c| {
        let (tx, rx) = crate::control::vm::channel();
        c.set_vm_channel(rx);
        tx
    });
    // Telemetry first: when its socket or address cannot be served, no worker ran.
    let shared: Vec<_> = wl.iter().map(|(_, t)| t[0].shared.clone()).collect();
    let mut faults =
        crate::logging::FaultWatch::new(inst.ports.iter().map(|p| p.name().to_string()).collect());
    let mut watched = shared.clone();
    let (host_tx, host_rx) = std::sync::mpsc::channel();
    let tele_stop = Arc::new(AtomicBool::new(false));
    let mut tele = telemetry_start(
        &inst,
        shared,
        clock,
        host_tx.clone(),
        control_socket,
        vm,
        tele_stop.clone(),
    )?;
    // Workers have their own stop flag: a reload that adds or removes ports
    // stops and restarts them while the rest keeps running.
    let wstop = Arc::new(AtomicBool::new(false));
    let mut running = match runtime::start(wl, clock, wstop.clone()) {
        Ok(r) => r,
        Err(e) => {
            tele_stop.store(true, Ordering::Relaxed);
            tele.join();
            return Err(e);
        }
    };
    let control = control.map(|c| c.spawn(clock, stop.clone())).transpose()?;
    // This thread (punts, FDB ageing, reloads, device counters for telemetry)
    // keeps off the worker cores too; workers restarted by a port change
    // start from the CPU set it had before.
    let cpus = crate::util::Affinity::current();
    telemetry::pin_off_workers(&workers);
    tracing::info!(
        role = inst.cfg.switch.role.name(),
        ports = inst.ports.len(),
        workers = workers.len(),
        pool = pool.capacity(),
        "running {} ({} ports, {} workers on cores {:?}, pool {} buffers on {}); SIGINT/SIGTERM stops, SIGHUP reloads",
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
    let mut change = None;
    while !stop.load(Ordering::Relaxed) {
        if hup.swap(false, Ordering::Relaxed) {
            let _ = reload(path, &mut inst, "SIGHUP", rebase.as_ref(), &mut change);
        }
        while let Ok(job) = host_rx.try_recv() {
            match job {
                HostJob::BackendStats(tx) => {
                    let _ = tx.send(inst.ports.iter().map(|p| p.backend_stats()).collect());
                }
                HostJob::Reload(tx) => {
                    let r = reload(
                        path,
                        &mut inst,
                        "control socket",
                        rebase.as_ref(),
                        &mut change,
                    );
                    let _ = tx.send(r);
                }
            }
            if change.is_some() {
                break;
            }
        }
        if let Some(ch) = change.take() {
            // Ports added or removed: workers stop (draining and flushing as
            // at any stop), the ports change, workers and telemetry restart
            // on the new port set (the reply was sent before).
            wstop.store(true, Ordering::Relaxed);
            let tasks: Vec<_> = running.join().into_iter().flatten().collect();
            wstop.store(false, Ordering::Relaxed);
            for p in punts.iter_mut() {
                while let Some(b) = p.pop() {
                    punted += 1;
                    pool.free(b);
                }
            }
            let added = ch.added();
            let stopped = inst.capture.stop_all();
            if stopped > 0 {
                tracing::warn!(
                    captures = stopped,
                    "ports changed: {stopped} capture(s) in progress stopped, their files closed"
                );
            }
            let new = inst
                .apply_ports(ch, tasks)
                .map_err(|e| format!("reload: applying the port change failed: {e}"))?;
            let mut wl = Vec::new();
            punts.clear();
            for (q, (task, punt)) in new.into_iter().enumerate() {
                punts.push(punt);
                let wc = WorkerCfg {
                    core: Some(workers[q]),
                    burst,
                    idle_sleep_us: idle,
                    idle_spin_us: spin,
                };
                wl.push((wc, vec![task]));
            }
            tele_stop.store(true, Ordering::Relaxed);
            tele.join();
            tele_stop.store(false, Ordering::Relaxed);
            let shared: Vec<_> = wl.iter().map(|(_, t)| t[0].shared.clone()).collect();
            let tele_shared = shared.clone();
            tele = telemetry_start(
                &inst,
                shared,
                clock,
                host_tx.clone(),
                control_socket,
                None,
                tele_stop.clone(),
            )?;
            cpus.restore();
            let r = runtime::start(wl, clock, wstop.clone());
            telemetry::pin_off_workers(&workers);
            running = r?;
            let names: Vec<String> = inst.ports.iter().map(|p| p.name().to_string()).collect();
            tracing::info!("ports now {names:?} (added {added:?}); workers restarted");
            faults = crate::logging::FaultWatch::new(names);
            watched = tele_shared;
        }
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            inst.switch.fdb.age(clock.now_ms());
            let links: Vec<Option<bool>> = inst
                .ports
                .iter()
                .map(|p| p.backend_stats().and_then(|b| b["link_up"].as_bool()))
                .collect();
            faults.check(&watched, &links);
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
    tele_stop.store(true, Ordering::Relaxed);
    tele.join();
    wstop.store(true, Ordering::Relaxed);
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

/// Re-read the config file and apply it (SIGHUP, or `reload` on the socket);
/// the 802.1Qbg control thread, if any, then puts its RR state and VSIs back
/// on top of the new config. A config that adds, removes or reorders ports
/// is checked and its new ports opened here (`Instance::prepare_ports`); the
/// change is left in `change` for the run loop to apply with the workers
/// stopped. With a control thread such a change is refused.
fn reload(
    path: &Path,
    inst: &mut Instance,
    why: &str,
    rebase: Option<&crate::control::thread::Rebase>,
    change: &mut Option<runtime::PortChange>,
) -> Result<u64, String> {
    let now: Vec<_> = inst
        .cfg
        .port
        .iter()
        .map(|p| (p.name.clone(), p.backend.clone()))
        .collect();
    let same_ports = |c: &Config| {
        c.port.len() == now.len()
            && c.port
                .iter()
                .zip(&now)
                .all(|(a, b)| a.name == b.0 && a.backend == b.1)
    };
    let r = Config::load(path)
        .map_err(|e| e.to_string())
        .and_then(|c| match rebase {
            _ if !same_ports(&c) => match rebase {
                Some(_) => Err("ports were added, removed, renamed or moved to another backend: with an 802.1Qbg control thread (a port with evb) that needs a restart of hairpin".into()),
                // Applied by the run loop; its snapshot is the next generation.
                None => inst.prepare_ports(c).map(|ch| {
                    *change = Some(ch);
                    inst.switch.cell.generation() + 1
                }),
            },
            // The control thread publishes the new snapshot with its 802.1Qbg
            // state on top (within a millisecond); until then the old one stays.
            Some(h) => inst.stage_reload(c).map(|_| {
                h.rebase(inst.cfg.clone());
                inst.switch.cell.generation()
            }),
            None => inst.reload(c),
        });
    match &r {
        Ok(gen) => {
            if rebase.is_some() {
                tracing::info!(
                    trigger = why,
                    generation = gen,
                    "{why}: {} reloaded (published by the 802.1Qbg control thread after generation {gen})",
                    path.display()
                );
            } else {
                tracing::info!(
                    trigger = why,
                    generation = gen,
                    "{why}: {} reloaded (snapshot generation {gen})",
                    path.display()
                );
            }
        }
        Err(e) => tracing::warn!(
            trigger = why,
            "{why}: reload refused, the running config stays: {e}"
        ),
    }
    r
}

/// The telemetry threads of a run.
struct Telemetry {
    socket: Option<telemetry::server::SocketServer>,
    prom: Option<telemetry::prom::PromServer>,
}

impl Telemetry {
    fn join(self) {
        if let Some(s) = self.socket {
            s.join();
        }
        if let Some(p) = self.prom {
            p.join();
        }
    }
}

/// Start the control socket and (if configured) the Prometheus endpoint.
/// A socket path given on the command line or in the config (or a
/// `socket_group` for the default path) must work; otherwise the default
/// path is only tried (a warning when it cannot be served).
fn telemetry_start(
    inst: &Instance,
    shared: Vec<Arc<crate::stats::SharedCounters>>,
    clock: Clock,
    host: std::sync::mpsc::Sender<HostJob>,
    cli_socket: Option<&Path>,
    vm: Option<std::sync::mpsc::SyncSender<crate::control::vm::VmRequest>>,
    stop: Arc<AtomicBool>,
) -> Result<Telemetry, String> {
    let t = &inst.cfg.telemetry;
    let cores = inst.cfg.switch.workers.clone();
    let workers = shared
        .into_iter()
        .zip(&cores)
        .map(|(s, &c)| telemetry::WorkerView {
            core: Some(c),
            shared: s,
        })
        .collect();
    let view = Arc::new(telemetry::View {
        ports: inst.ports.iter().map(|p| p.name().to_string()).collect(),
        workers,
        fdb: inst.switch.fdb.clone(),
        cell: inst.switch.cell.clone(),
        clock,
        host: std::sync::Mutex::new(host),
        started: Instant::now(),
        vm: vm.map(std::sync::Mutex::new),
        capture: Some(inst.capture.clone()),
    });
    let (path, explicit) = match (cli_socket, &t.control_socket) {
        (Some(p), _) => (p.to_path_buf(), true),
        (None, Some(p)) => (inst.cfg.resolve(p), true),
        (None, None) => (telemetry::DEFAULT_SOCKET.into(), t.socket_group.is_some()),
    };
    let opts = telemetry::server::SocketOpts {
        path: path.clone(),
        group: t.socket_group.clone(),
        client_timeout: Duration::from_millis(t.client_timeout_ms),
        worker_cores: cores.clone(),
    };
    let socket = match telemetry::server::serve(view.clone(), opts, stop.clone()) {
        Ok(s) => {
            tracing::info!("control socket {}", path.display());
            Some(s)
        }
        Err(e) if !explicit => {
            tracing::warn!("{e}; running without a control socket (set --control-socket or [telemetry] control_socket)");
            None
        }
        Err(e) => return Err(e),
    };
    let prom = match &t.prometheus {
        Some(addr) => match telemetry::prom::serve(view, addr, cores, stop.clone()) {
            Ok(p) => {
                tracing::info!("prometheus endpoint http://{}/metrics", p.addr);
                Some(p)
            }
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                if let Some(s) = socket {
                    s.join();
                }
                return Err(e);
            }
        },
        None => None,
    };
    Ok(Telemetry { socket, prom })
}
