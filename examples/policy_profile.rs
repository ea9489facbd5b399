//! Single-thread profile target for the policy path: the `hairpin bench
//! --rules N` configuration driven through the real pipeline with the
//! in-process harness (no generator thread), for `valgrind --tool=callgrind`.
//!
//! `cargo run --release --example policy_profile -- RULES [FRAMES] [qos|vms] [flows=N] [repeat=R]`
//! (`qos`: a meter on every VM and 8-class egress, as `hairpin bench --qos`;
//! `vms`: every MAC a VM even with no rules, as `hairpin bench --vms`;
//! `flows=N`: N distinct frames, default 4096; `hairpin bench` keeps 1,536
//! in flight; `repeat=R`: each frame R times in a row, as one flow's frames
//! arrive together in a burst, default 1; `staged`: every burst through the
//! staged pipeline, none through the one-pass known-unicast path; `ms=M`:
//! the clock advances M ms a window, default 0, so sources come due for
//! their re-stamp once a second of it).
//! Prints the minimum and the median cycles per frame over windows of one
//! pass over the 4,096 frames (robust against preemption on a shared machine).

use hairpin::config::Config;
use hairpin::gen::vm_mac;
use hairpin::harness::Harness;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let frames: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let qos = args.iter().skip(3).any(|a| a == "qos");
    let vms = args.iter().skip(3).any(|a| a == "vms");
    let staged = args.iter().skip(3).any(|a| a == "staged");
    let flows: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("flows=").and_then(|n| n.parse().ok()))
        .unwrap_or(4096);
    let ms: u64 = args
        .iter()
        .find_map(|a| a.strip_prefix("ms=").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let repeat: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("repeat=").and_then(|n| n.parse().ok()))
        .unwrap_or(1)
        .max(1);
    let mut base = "[switch]\nworkers = [0]\npool_size = 4096\n[[port]]\nname = \"hv1\"\nmode = \"access\"\npvid = 10\nreflective_relay = true\n".to_string();
    if qos {
        base += "egress = { strict = 2 }\n";
    }
    let (t, keys) = hairpin::bench::policy_toml(n, qos, 1000);
    let toml = if n == 0 && !qos && !vms {
        base.to_string()
    } else {
        base.to_string() + &t
    };
    let mut h = Harness::new(Config::parse(&toml).unwrap(), false).unwrap();
    h.set_fast_path(!staged);
    let built: Vec<Vec<u8>> = (0..flows)
        .map(|k| {
            let (s, d) = (k as u32 % 1000, (k as u32 + 7) % 1000);
            hairpin::bench::tuple_frame(vm_mac(s), vm_mac(d), &keys[k % keys.len()])
        })
        .collect();
    let refs: Vec<&[u8]> = built
        .iter()
        .flat_map(|f| std::iter::repeat(f.as_slice()).take(repeat))
        .collect();
    // Warm up (learning), then the measured part.
    h.run(0, &refs, 1);
    // Windows of one pass over the frames each: the minimum and the median
    // window are robust against preemption on a shared machine.
    let mut win = Vec::new();
    let mut done = 0;
    while done < frames {
        let t0 = hairpin::util::tsc();
        for (i, c) in refs.chunks(32).enumerate() {
            h.run(0, c, if i == 0 { ms } else { 0 });
        }
        win.push((hairpin::util::tsc() - t0) as f64 / refs.len() as f64);
        done += refs.len();
    }
    win.sort_by(f64::total_cmp);
    let (used, stale, again) = h.pipeline().memo_counts();
    println!(
        "{n} rules{}{}: {:.1} cycles/frame min, {:.1} median of {} windows (incl. harness copy-in), drops {}, one-pass bursts {}, memo answers used {used}, stale {stale}, decided again {again}",
        if qos { " + qos" } else { "" },
        if staged { " (staged)" } else { "" },
        win[0],
        win[win.len() / 2],
        win.len(),
        h.counters().total_drops(),
        h.pipeline().fast_bursts
    );
}
