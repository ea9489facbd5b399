//! What the telemetry publication costs a worker.
//!
//! `cargo run --release --example telemetry_cost [-- RULES...]`
//!
//! For a policy of N rules (plus a meter per VM and 8-class egress on the
//! port), times one `SharedCounters::publish` (every 256 loops) and one
//! `PolicySlot::publish` (every 4096 loops) — best of five runs of 20,000
//! calls — and prints the cost amortised over the poll loops between them.

use hairpin::config::Config;
use hairpin::harness::Harness;
use hairpin::stats::policy::PolicySlot;
use hairpin::stats::SharedCounters;
use hairpin::types::Mac;
use hairpin::wire::build::FrameBuilder;
use hairpin::worker::{POLICY_PUBLISH_EVERY, PUBLISH_EVERY};
use std::hint::black_box;
use std::time::Instant;

fn config(rules: usize) -> String {
    let mut s = String::from(
        "[switch]\nworkers = [0]\n[[port]]\nname = \"hv1\"\npvid = 10\nreflective_relay = true\n\
         [port.egress]\nstrict = 2\n[[port]]\nname = \"core\"\npvid = 10\n\
         [meter.m]\ntype = \"srtcm\"\ncir = \"10G\"\ncbs = 1000000\n\
         [policy.p]\ndefault = \"permit\"\nmeter = \"m\"\n",
    );
    for i in 0..rules {
        s += &format!(
            "[[policy.p.rule]]\naction = \"deny\"\nproto = \"udp\"\ndst_port = \"{}\"\n",
            i + 1
        );
    }
    s += "[[vm]]\nname = \"v\"\nmac = \"02:00:00:00:00:01\"\nvlan = 10\nport = \"hv1\"\npolicy = \"p\"\n";
    s
}

fn best_ns(calls: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..calls / 10 {
        f();
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        for _ in 0..calls {
            f();
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / calls as f64);
    }
    best
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("RULES: a number"))
        .collect();
    let rules = if args.is_empty() {
        vec![0, 100, 1000, 10000]
    } else {
        args
    };
    println!(
        "| rules | SharedCounters::publish ns | per loop (/{PUBLISH_EVERY}) | PolicySlot::publish ns | per loop (/{POLICY_PUBLISH_EVERY}) |"
    );
    println!("|---|---|---|---|---|");
    for n in rules {
        let mut h = Harness::new(Config::parse(&config(n)).unwrap(), false).unwrap();
        let f = FrameBuilder::new()
            .src(Mac([2, 0, 0, 0, 0, 1]))
            .dst(Mac::BROADCAST)
            .udp4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 1, 60000);
        h.run(0, &[&f], 1);
        let shared = SharedCounters::new(2);
        let slot = PolicySlot::default();
        let p = h.pipeline();
        let c = best_ns(20_000, || {
            shared.publish(black_box(&p.ctr), black_box(&p.port_ctr))
        });
        let s = best_ns(20_000, || {
            black_box(slot.publish(black_box(p.policy_view())));
        });
        println!(
            "| {n} | {c:.0} | {:.2} | {s:.0} | {:.2} |",
            c / PUBLISH_EVERY as f64,
            s / POLICY_PUBLISH_EVERY as f64
        );
    }
}
