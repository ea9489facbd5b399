//! Micro-benchmark of the QoS building blocks at 64-byte frames, one core.
//!
//! `cargo run --release --example qos_bench [-- frames]`
//!
//! Prints the best of five runs in ns/frame (and TSC cycles/frame) for: the meter (srTCM and trTCM,
//! under and over the rate), remarking (PCP + IPv4 DSCP with checksum update),
//! and the 8-class scheduler (enqueue + dequeue in bursts of 32, with and
//! without the port shaper). Time is simulated, so the meter and shaper see
//! the frame rate of a busy 100 Gbit/s port regardless of the host.

use hairpin::buf::{Burst, Pool};
use hairpin::qos::mark;
use hairpin::qos::meter::{Color, MeterCache, MeterConfig, SharedMeter};
use hairpin::qos::sched::{Sched, SchedConfig, Shaper};
use hairpin::util::{tsc, tsc_hz};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

/// 64-byte frames at 100 Gbit/s: 84 bytes on the wire = 6.72 ns each.
const FRAME_NS: u64 = 7;

struct Row {
    name: &'static str,
    ns: f64,
    cycles: f64,
}

/// Best of five runs of `frames` frames each, after a warm-up.
fn run(name: &'static str, frames: u64, mut f: impl FnMut(u64) -> u64) -> Row {
    black_box(f(frames / 10));
    let mut best = Row {
        name,
        ns: f64::MAX,
        cycles: f64::MAX,
    };
    for _ in 0..5 {
        let (t0, c0) = (Instant::now(), tsc());
        black_box(f(frames));
        let (c1, dt) = (tsc(), t0.elapsed());
        best.ns = best.ns.min(dt.as_nanos() as f64 / frames as f64);
        best.cycles = best.cycles.min(c1.wrapping_sub(c0) as f64 / frames as f64);
    }
    best
}

fn meter_loop(cfg: MeterConfig, frames: u64) -> u64 {
    let sh = Arc::new(SharedMeter::new(cfg, 0).expect("meter config"));
    let mut m = MeterCache::new(sh);
    let mut acc = 0u64;
    for i in 0..frames {
        let c = m.meter(black_box(i * FRAME_NS), black_box(64), Color::Green);
        acc += c as u64;
    }
    acc
}

fn main() {
    let frames: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let hz = tsc_hz(100);
    let mut rows = Vec::new();

    // Offered: 64 B every 7 ns ≈ 9.1 GB/s.
    rows.push(run("meter srTCM, under rate (all green)", frames, |n| {
        meter_loop(MeterConfig::srtcm(12_500_000_000, 1 << 20, 1 << 20), n)
    }));
    rows.push(run("meter srTCM, 2x over rate", frames, |n| {
        meter_loop(MeterConfig::srtcm(4_500_000_000, 1 << 20, 1 << 20), n)
    }));
    rows.push(run("meter trTCM, green/yellow/red mix", frames, |n| {
        meter_loop(
            MeterConfig::trtcm(3_000_000_000, 1 << 20, 6_000_000_000, 1 << 20),
            n,
        )
    }));

    // A tagged IPv4 64-byte frame.
    let mut frame = [0u8; 64];
    frame[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    frame[14..16].copy_from_slice(&10u16.to_be_bytes());
    frame[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
    frame[18] = 0x45;
    frame[20..22].copy_from_slice(&46u16.to_be_bytes());
    frame[26] = 64;
    frame[27] = 17;
    let c = hairpin::wire::checksum::internet(&frame[18..38]);
    frame[28..30].copy_from_slice(&c.to_be_bytes());
    rows.push(run("mark PCP + IPv4 DSCP (RFC 1624)", frames, |n| {
        let mut ok = 0;
        for i in 0..n {
            let f = black_box(&mut frame);
            ok += u64::from(mark::set_pcp(f, (i & 7) as u8));
            ok += u64::from(mark::set_dscp(f, 18, (i & 63) as u8));
        }
        ok
    }));

    let pool = Pool::new(1024, 2048).expect("pool");
    for shaped in [false, true] {
        let cfg = SchedConfig {
            shaper: shaped.then_some(Shaper {
                rate: 12_500_000_000,
                burst: 1 << 20,
            }),
            ..SchedConfig::default()
        };
        let mut s = Sched::new(cfg, 0).expect("sched config");
        let mut burst = Burst::new(32);
        for _ in 0..32 {
            let mut b = pool.alloc().expect("buffer");
            pool.set_len(&mut b, 64);
            burst.push(b).expect("room");
        }
        let name = if shaped {
            "sched enqueue+dequeue, 8 classes, shaped"
        } else {
            "sched enqueue+dequeue, 8 classes"
        };
        let mut clock = 0u64; // simulated time keeps running across runs
        rows.push(run(name, frames, |n| {
            let mut sent = 0u64;
            let mut i = 0u64;
            while i < n {
                for (k, b) in burst.drain().enumerate() {
                    // Spread over all classes: 6-7 strict, 0-5 DRR.
                    if let Err(d) = s.enqueue(((i + k as u64) & 7) as u8, b, 64) {
                        pool.free(d.0);
                    }
                }
                i += 32;
                clock += 32 * FRAME_NS;
                sent += s.dequeue_burst(clock, &mut burst, 32) as u64;
            }
            sent
        }));
        s.drain(|b| pool.free(b));
        for b in burst.drain() {
            pool.free(b);
        }
    }

    println!("{frames} frames of 64 bytes, TSC {:.2} GHz", hz / 1e9);
    println!(
        "{:<44} {:>9} {:>13}",
        "operation", "ns/frame", "cycles/frame"
    );
    for r in &rows {
        println!("{:<44} {:>9.2} {:>13.1}", r.name, r.ns, r.cycles);
    }
    let meter = rows[1].ns;
    let sched = rows[4].ns;
    println!(
        "meter (2x over) + sched: {:.2} ns/frame; + mark: {:.2} ns/frame",
        meter + sched,
        meter + sched + rows[3].ns
    );
}
