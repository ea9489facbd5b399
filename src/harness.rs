//! An in-process switch for fuzzing and tests: frames in, frames out, no threads.
//!
//! [`Harness`] builds a switch once (any role) on capture ports and runs
//! bursts of raw frames through the real pipeline, checking after every burst
//! that no buffer leaked and that the counters balance
//! (`rx + copies = tx + punted + drops`).

use crate::buf::Burst;
use crate::config::Config;
use crate::pipeline::{NoTrace, Pipeline};
use crate::port::PortQueue;
use crate::runtime::{make_pool, Instance};
use crate::types::PortId;
use std::sync::{Arc, Mutex};

/// Frames sent by capture queues: (port index, bytes).
pub(crate) type Sink = Arc<Mutex<Vec<(usize, Vec<u8>)>>>;

/// A TX queue that records frames (when asked) and frees them (also used by `trace`).
pub(crate) struct Capture {
    pub(crate) port: usize,
    pub(crate) keep: bool,
    pub(crate) out: Sink,
    pub(crate) pool: Arc<crate::buf::Pool>,
}

impl PortQueue for Capture {
    fn rx_burst(&mut self, _: &mut Burst) -> usize {
        0
    }
    fn tx_burst(&mut self, frames: &mut Burst) -> usize {
        let n = frames.len();
        let mut o = self.out.lock().unwrap_or_else(|p| p.into_inner());
        for f in frames.drain() {
            if self.keep {
                o.push((self.port, self.pool.data(&f).to_vec()));
            }
            self.pool.free(f);
        }
        n
    }
}

/// The switch of a config, driven by hand.
pub struct Harness {
    inst: Instance,
    pipe: Pipeline,
    tx: Vec<Box<dyn PortQueue>>,
    out: Sink,
    burst: Burst,
    now_ms: u64,
}

impl Harness {
    /// Build from a config (workers and backends are ignored). `keep` records egress frames.
    pub fn new(mut cfg: Config, keep: bool) -> Result<Harness, String> {
        cfg.switch.workers = vec![0];
        let pool = make_pool(&cfg, 0)?;
        let out: Sink = Arc::new(Mutex::new(Vec::new()));
        let n = cfg.port.len();
        let burst = Burst::new(cfg.switch.burst);
        let inst = Instance::with_ports(cfg, pool.clone(), vec![], vec![])?;
        let tx = (0..n)
            .map(|i| {
                Box::new(Capture {
                    port: i,
                    keep,
                    out: out.clone(),
                    pool: pool.clone(),
                }) as Box<dyn PortQueue>
            })
            .collect();
        let pipe = Pipeline::new(&inst.switch, None);
        Ok(Harness {
            inst,
            pipe,
            tx,
            out,
            burst,
            now_ms: 0,
        })
    }

    /// Run frames arriving on port `port` (modulo the port count), in bursts.
    /// Frames longer than a buffer are cut to fit. Returns frames sent.
    pub fn run(&mut self, port: usize, frames: &[&[u8]], advance_ms: u64) -> usize {
        let pool = self.inst.switch.pool.clone();
        let p = PortId((port % self.tx.len()) as u16);
        self.now_ms += advance_ms;
        let before = self.pipe.ctr.tx_pkts;
        for chunk in frames.chunks(self.burst.capacity()) {
            for f in chunk {
                let Some(mut b) = pool.alloc() else { break };
                let n = f.len().min(pool.max_frame());
                pool.fill(&mut b, &f[..n]);
                let _ = self.burst.push(b);
            }
            self.pipe
                .process(p, &mut self.burst, self.now_ms, &mut self.tx, &mut NoTrace);
        }
        self.pipe.flush(&mut self.tx);
        (self.pipe.ctr.tx_pkts - before) as usize
    }

    /// Check the invariants: every buffer back (after releasing caches) and counters balanced.
    pub fn check(&mut self) -> Result<(), String> {
        self.pipe.release();
        let pool = &self.inst.switch.pool;
        if pool.available() != pool.capacity() {
            return Err(format!(
                "{} buffers leaked",
                pool.capacity() - pool.available()
            ));
        }
        let c = &self.pipe.ctr;
        if c.rx_pkts + c.flood_copies != c.tx_pkts + c.punted + c.total_drops() {
            return Err(format!(
                "counters do not balance: rx {} + copies {} != tx {} + punted {} + drops {}",
                c.rx_pkts,
                c.flood_copies,
                c.tx_pkts,
                c.punted,
                c.total_drops()
            ));
        }
        Ok(())
    }

    /// Frames sent so far (port index, bytes), when recording.
    pub fn take_output(&mut self) -> Vec<(usize, Vec<u8>)> {
        std::mem::take(&mut *self.out.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The pipeline's counters.
    pub fn counters(&self) -> &crate::stats::CoreCounters {
        &self.pipe.ctr
    }

    /// Let plain known-unicast bursts take the one-pass path (on by default;
    /// see `Pipeline::set_fast_path`).
    pub fn set_fast_path(&mut self, on: bool) {
        self.pipe.set_fast_path(on);
    }

    /// The switch (model, FDB, pool).
    pub fn switch(&self) -> &crate::pipeline::Switch {
        &self.inst.switch
    }

    /// Publish a new snapshot from `cfg` (as SIGHUP does); the next burst uses it.
    pub fn reload(&mut self, mut cfg: Config) -> Result<u64, String> {
        cfg.switch.workers = vec![0];
        self.inst.reload(cfg)
    }

    /// The pipeline (its counters and [`Pipeline::policy_view`]).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipe
    }

    /// Rule hits so far by name (see [`Pipeline::rule_hits`]).
    pub fn rule_hits(&self) -> std::collections::BTreeMap<String, [u64; 2]> {
        self.pipe.rule_hits()
    }
}
