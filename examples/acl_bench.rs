//! ACL classifier benchmark on the rte_acl-style rule sets
//! (`hairpin::policy::acl::bench_rules`, same distribution as
//! `perf-peers/06-rte-acl.sh`).
//!
//! `cargo run --release --example acl_bench -- 100 1000 10000`
//!
//! Per rule count: build time (median of 5), memory, tables, and TSC
//! cycles/frame for `Classifier::classify` over the 65,536-key trace (median,
//! min, max of 7 runs of 100 passes), and for `linear` at up to 1,000 rules.
//! Also checks `classify == linear` on the trace (all keys up to 1,000 rules,
//! the first 4,096 above).
use hairpin::policy::acl::{bench_rules, linear, AclKey, Classifier, Rule};
use hairpin::util::tsc;
use std::hint::black_box;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn cycles<F: Fn(&AclKey) -> Option<u32>>(trace: &[AclKey], passes: usize, f: F) -> f64 {
    let mut acc = 0u64;
    let t0 = tsc();
    for _ in 0..passes {
        for k in trace {
            acc = acc.wrapping_add(u64::from(f(black_box(k)).unwrap_or(7)));
        }
    }
    let dt = tsc() - t0;
    black_box(acc);
    dt as f64 / (passes * trace.len()) as f64
}

fn main() {
    let ns: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("rule counts"))
        .collect();
    let ns = if ns.is_empty() {
        vec![100, 1000, 10000]
    } else {
        ns
    };
    for n in ns {
        let (rules, trace): (Vec<Rule>, Vec<AclKey>) = bench_rules(n, 42);
        let mut bt = Vec::new();
        let mut c = Classifier::build(&rules);
        for _ in 0..5 {
            let t = Instant::now();
            c = black_box(Classifier::build(black_box(&rules)));
            bt.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (bmed, _, _) = median(bt);
        let check = if n <= 1000 { trace.len() } else { 4096 };
        let bad = trace[..check]
            .iter()
            .filter(|k| c.classify(k) != linear(&rules, k))
            .count();
        assert_eq!(bad, 0, "classify != linear on {bad} keys");
        let runs: Vec<f64> = (0..7)
            .map(|_| cycles(&trace, 100, |k| c.classify(k)))
            .collect();
        let (cm, cmin, cmax) = median(runs);
        let lin = if n <= 1000 {
            let passes = (20_000 / n).max(1);
            let runs: Vec<f64> = (0..3)
                .map(|_| cycles(&trace, passes, |k| linear(&rules, k)))
                .collect();
            format!("{:.0}", median(runs).0)
        } else {
            "-".into()
        };
        println!(
            "rules={n:<6} build={bmed:7.2} ms  mem={:8.1} KiB  tables={}  classify cycles/frame med={cm:6.1} (min {cmin:.1} max {cmax:.1})  linear={lin}",
            c.memory_bytes() as f64 / 1024.0,
            c.tables(),
        );
    }
}
