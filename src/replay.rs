//! `hairpin replay`: the real pipeline on pcap input, deterministic.
//!
//! Frames from every input file are taken in timestamp order (ties in the
//! order the inputs were given) and grouped into bursts: consecutive frames
//! from the same port within the same millisecond, at most `burst` of them.
//! The switch clock is the pcap time relative to the first frame, so learning
//! and ageing depend on the capture only. Every port's egress goes to `OUT/PORT.pcap` (written even
//! when empty), each frame with the timestamp of the frame it came from.

use crate::buf::Burst;
use crate::config::Config;
use crate::pcap::PcapReader;
use crate::pipeline::{NoTrace, Pipeline};
use crate::port::pcap::PcapPort;
use crate::port::{Port, PortQueue};
use crate::runtime::{make_pool, Instance};
use crate::stats::DropReason;
use crate::types::PortId;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Run `inputs` (port name, pcap file) through the switch of `cfg`; write egress to `out_dir`.
/// Returns the counters as JSON.
pub fn replay(
    cfg: Config,
    inputs: &[(String, PathBuf)],
    out_dir: &Path,
    burst: usize,
) -> Result<serde_json::Value, String> {
    if !(1..=256).contains(&burst) {
        return Err(format!("--burst: {burst} is out of range 1..=256"));
    }
    let mut cfg = cfg;
    cfg.switch.burst = burst;
    cfg.switch.workers = vec![0];
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("--out-dir {}: {e}", out_dir.display()))?;
    let mut readers: Vec<(PortId, PathBuf, PcapReader<File>)> = Vec::new();
    for (i, (port, file)) in inputs.iter().enumerate() {
        let Some(pi) = cfg.port_index(port) else {
            return Err(format!("--in[{i}]: no port named {port:?} in the config"));
        };
        let r =
            PcapReader::open(file).map_err(|e| format!("--in {port}={}: {e}", file.display()))?;
        readers.push((PortId(pi as u16), file.clone(), r));
    }
    let pool = make_pool(&cfg, 0)?;
    let mut ports: Vec<Box<dyn Port>> = Vec::new();
    for p in &cfg.port {
        let path = out_dir.join(format!("{}.pcap", p.name));
        let port = PcapPort::open(&p.name, pool.clone(), None, Some(&path))
            .map_err(|e| format!("--out-dir: {}: {e}", path.display()))?;
        ports.push(Box::new(port));
    }
    let mut inst = Instance::with_ports(cfg, pool.clone(), ports, vec![])?;
    let mut tx: Vec<Box<dyn PortQueue>> = inst
        .ports
        .iter_mut()
        .map(|p| p.take_queue(0).expect("queue 0"))
        .collect();
    let mut pipe = Pipeline::new(&inst.switch, None);

    // Peeked record of each input: (ts, bytes).
    let mut heads: Vec<Option<(u64, Vec<u8>)>> = Vec::with_capacity(readers.len());
    let read_next =
        |r: &mut PcapReader<File>, path: &Path| -> Result<Option<(u64, Vec<u8>)>, String> {
            match r.next_record() {
                Ok(Some(rec)) => Ok(Some((rec.ts_ns, rec.data.to_vec()))),
                Ok(None) => Ok(None),
                Err(e) => Err(format!("{}: {e}", path.display())),
            }
        };
    for (_, path, r) in readers.iter_mut() {
        heads.push(read_next(r, path)?);
    }
    let mut b = Burst::new(burst);
    let mut cur: Option<PortId> = None;
    let mut now_ms = 0u64;
    let mut now_ns = 0u64;
    // The switch clock starts at the first frame (pcap times are epoch-based),
    // so every stored time is small and ageing depends on the capture only.
    let mut t0: Option<u64> = None;
    let mut last_sweep = 0u64;
    let mut frames = 0u64;
    loop {
        // Next frame: smallest timestamp, ties to the earlier input.
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|(ts, _)| (*ts, i)))
            .min();
        let Some((ts, i)) = next else { break };
        let port = readers[i].0;
        let base = *t0.get_or_insert(ts);
        let ts_ms = ts.saturating_sub(base) / 1_000_000;
        // A burst is consecutive frames of one port within the same millisecond.
        if cur != Some(port) || b.len() == burst || ts_ms != now_ms {
            if let Some(p) = cur {
                pipe.process_at(p, &mut b, now_ns, &mut tx, &mut NoTrace);
            }
            cur = Some(port);
            now_ms = ts_ms;
            now_ns = ts.saturating_sub(base);
            pipe.service(now_ns, &mut tx);
            if now_ms >= last_sweep + 1000 {
                inst.switch.fdb.age(now_ms);
                last_sweep = now_ms;
            }
        }
        let (_, bytes) = heads[i].take().expect("peeked");
        frames += 1;
        if bytes.len() > pool.max_frame() {
            pipe.count_rx_drop(port, bytes.len(), DropReason::Oversize);
        } else {
            let mut f = pool
                .alloc()
                .ok_or("buffer pool exhausted (raise switch.pool_size)")?;
            pool.fill(&mut f, &bytes);
            f.ts = ts;
            b.push(f).expect("burst has room");
        }
        let (_, path, r) = &mut readers[i];
        heads[i] = read_next(r, path)?;
    }
    if let Some(p) = cur {
        pipe.process_at(p, &mut b, now_ns, &mut tx, &mut NoTrace);
    }
    // Shaped egress queues drain on the capture's clock, one millisecond at a time.
    for _ in 0..3_600_000 {
        if !pipe.has_backlog() {
            break;
        }
        now_ns += 1_000_000;
        pipe.service(now_ns, &mut tx);
    }
    pipe.flush(&mut tx);
    for q in tx.iter_mut() {
        q.flush();
    }
    pipe.release();
    drop(tx);
    let mut port_json = serde_json::Map::new();
    for (i, p) in inst.ports.iter().enumerate() {
        port_json.insert(p.name().to_string(), pipe.port_ctr[i].to_json());
    }
    let fdb = inst.switch.fdb.dump(now_ms);
    let hits: serde_json::Map<String, serde_json::Value> = pipe
        .rule_hits()
        .into_iter()
        .map(|(k, v)| (k, serde_json::json!({"packets": v[0], "bytes": v[1]})))
        .collect();
    let meters: serde_json::Map<String, serde_json::Value> = pipe
        .meter_counts()
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                serde_json::json!({"green": v[0], "yellow": v[1], "red": v[2]}),
            )
        })
        .collect();
    let queues: serde_json::Map<String, serde_json::Value> = pipe
        .queue_stats()
        .into_iter()
        .map(|(port, cs)| {
            let v: Vec<_> = cs
                .iter()
                .map(|c| serde_json::json!({"dequeued": c.dequeued, "bytes": c.bytes, "tail_drops": c.tail_drops, "depth": c.depth}))
                .collect();
            (port, serde_json::Value::Array(v))
        })
        .collect();
    Ok(serde_json::json!({
        "frames_in": frames,
        "meters": meters,
        "queues": queues,
        "counters": pipe.ctr.to_json(),
        "rule_hits": hits,
        "ports": port_json,
        "fdb": fdb.iter().map(|r| serde_json::json!({
            "mac": r.mac.to_string(), "vlan": r.vid,
            "port": inst.switch.model.ports[r.port as usize].name, "static": r.is_static,
        })).collect::<Vec<_>>(),
        "pool": { "capacity": pool.capacity(), "available": pool.available() },
    }))
}
