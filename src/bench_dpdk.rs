//! `hairpin bench dpdk-ring-fwd` (cargo feature `dpdk`): the `hairpin-fwd`
//! scenario with the switch's port a DPDK ethdev (`rte_eth_from_rings`) and
//! the pool the DPDK mbuf mempool, so the figure includes the ethdev layer
//! (rx/tx burst through the PMD, mbuf <-> slot conversion) that the `ring`
//! backend does not have. A generator thread on the other core keeps
//! `inflight` frames circulating through the ring pair.

use crate::bench::{add_policy, inflight_frames, result, BenchOpts, BenchResult, Window};
use crate::buf::{Burst, MemMode};
use crate::config::Config;
use crate::dpdk::{self, RingDev};
use crate::runtime::{self, Instance};
use crate::util::Clock;
use crate::worker::{self, WorkerCfg};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default EAL arguments for the bench: main lcore only (hairpin pins its own
/// switch and generator threads), no PCI scan, a private file prefix; 512 MiB
/// of hugepages when `mem` asks for them (or, with `None`, when at least 256
/// 2 MiB pages are free), else `--no-huge`. On hugepages the EAL runs in
/// IOVA-as-VA mode: the bench's ports are in-process ring ethdevs (no DMA),
/// and the pool's one IOVA-contiguous zone (architecture.md) then never
/// depends on 2 MiB pages happening to be physically adjacent.
pub fn default_eal_args(mem: Option<MemMode>) -> Vec<String> {
    let free: u64 =
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
    let huge = match mem {
        Some(MemMode::Hugepages) => true,
        None => free >= 256,
        Some(_) => false,
    };
    let mut a: Vec<String> = ["-l", "0", "--no-pci", "--log-level=lib.eal:warning"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(format!("--file-prefix=hpbench{}", std::process::id()));
    if huge {
        a.extend(
            ["-m", "512", "--huge-unlink", "--iova-mode=va"]
                .iter()
                .map(|s| s.to_string()),
        );
    } else {
        a.extend(["--no-huge", "-m", "512"].iter().map(|s| s.to_string()));
    }
    a
}

/// One switch core, one ring ethdev, 64-byte frames hairpinned among `macs`
/// learned MACs (as `hairpin-fwd`); `eal` starts the EAL (shut down at the end).
pub fn dpdk_ring_fwd(o: &BenchOpts, eal: &[String]) -> Result<BenchResult, String> {
    let switch_core: Vec<usize> = o.switch_core.into_iter().collect();
    dpdk::eal_init_sparing(eal, &switch_core).map_err(|e| format!("EAL: {e}"))?;
    let r = run(o);
    dpdk::eal_cleanup().map_err(|e| e.to_string())?;
    r
}

fn run(o: &BenchOpts) -> Result<BenchResult, String> {
    let mut dev = RingDev::create("hpbench", 1, 4096).map_err(|e| e.to_string())?;
    let mut toml = format!(
        r#"
[switch]
role = "bridge"
workers = [{}]
burst = {}
pool_size = {}
flow_cache = {}
[switch.fdb]
capacity = 65536
per_port_limit = 65536
[dpdk]
rx_desc = 512
tx_desc = 512
[[port]]
name = "hv1"
backend = "dpdk:{}"
mode = "access"
pvid = 10
reflective_relay = true
"#,
        o.switch_core.unwrap_or(0),
        o.burst,
        o.inflight + 8192,
        o.flow_cache,
        dev.name()
    );
    let keys = add_policy(&mut toml, o);
    let cfg = Config::parse(&toml).map_err(|e| e.to_string())?;
    let t_build = Instant::now();
    crate::pipeline::Model::from_config(&cfg)?;
    let snapshot_build_ms = t_build.elapsed().as_secs_f64() * 1e3;
    let pool = runtime::make_pool(&cfg, 0)?;
    let mut inst = Instance::new(cfg, pool.clone())?;
    let (task, _punt) = inst.task(0)?;
    let shared = task.shared.clone();
    let fdb = inst.switch.fdb.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let gen_stop = Arc::new(AtomicBool::new(false));
    let offered = Arc::new(AtomicU64::new(0));
    let forwarded = Arc::new(AtomicU64::new(0));

    let frames = inflight_frames(&pool, o, &keys)?;

    let wc = WorkerCfg {
        core: o.switch_core,
        burst: o.burst,
        idle_sleep_us: 0,
        idle_spin_us: 0,
    };
    let running = runtime::start(vec![(wc, vec![task])], Clock::new(), stop.clone())?;
    let (gs, of, fw) = (gen_stop.clone(), offered.clone(), forwarded.clone());
    let (gen_core, burst_n, gp) = (o.gen_core, o.burst, pool.clone());
    let gen = std::thread::spawn(move || {
        if let Some(c) = gen_core {
            let _ = worker::pin(c);
        }
        let mut out = Burst::new(burst_n * 2);
        let mut back = Burst::new(burst_n);
        let mut pending = frames.into_iter();
        let (mut n_off, mut n_fwd, mut it) = (0u64, 0u64, 0u64);
        while !gs.load(Ordering::Relaxed) {
            while out.len() < burst_n {
                match pending.next() {
                    Some(b) => {
                        let _ = out.push(b);
                    }
                    None => break,
                }
            }
            n_off += dev.put_from(0, &mut out, &gp) as u64;
            if out.len() <= burst_n {
                let got = dev.get_into(0, &mut back, &gp);
                n_fwd += got as u64;
                for b in back.drain() {
                    out.push(b).expect("room in out");
                }
            }
            it += 1;
            if it % 64 == 0 {
                of.store(n_off, Ordering::Relaxed);
                fw.store(n_fwd, Ordering::Relaxed);
            }
        }
        of.store(n_off, Ordering::Relaxed);
        fw.store(n_fwd, Ordering::Relaxed);
        let mut rest: Vec<_> = out.drain().collect();
        rest.extend(pending);
        (rest, dev)
    });

    std::thread::sleep(Duration::from_millis(500));
    let (o0, f0, c0, t0) = (
        offered.load(Ordering::Relaxed),
        forwarded.load(Ordering::Relaxed),
        shared.load(),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    let (o1, f1, c1, dt) = (
        offered.load(Ordering::Relaxed),
        forwarded.load(Ordering::Relaxed),
        shared.load(),
        t0.elapsed(),
    );
    gen_stop.store(true, Ordering::Relaxed);
    let (rest, mut dev) = gen.join().map_err(|_| "generator panicked")?;
    stop.store(true, Ordering::Relaxed);
    let tasks = running.join();
    for b in rest {
        pool.free(b);
    }
    drop(tasks);
    runtime::stop_ports(&mut inst.ports);
    dev.drain(&pool);
    if pool.available() != pool.capacity() {
        return Err(format!(
            "{} mbufs not returned to the mempool",
            pool.capacity() - pool.available()
        ));
    }

    let mem = pool.mem_mode().name().to_string();
    drop(inst);
    drop(pool);
    drop(dev);
    Ok(result(
        "dpdk-ring-fwd",
        o,
        Window {
            secs: dt.as_secs_f64(),
            offered: o1 - o0,
            forwarded: f1 - f0,
            before: &c0,
            after: &c1,
        },
        &mem,
        fdb.len(),
        snapshot_build_ms,
    ))
}
