//! Arbitrary frames through the whole pipeline of each role (bridge with
//! reflective relay, edge-vepa, edge-veb): no panic, no leaked buffer, and the
//! counters balance after every input (`Harness::check`).
//!
//! Input layout: byte 0 picks the role and ingress port; then records of
//! `[len_hi, len_lo, bytes...]`, each one frame.
#![no_main]

use hairpin::config::Config;
use hairpin::harness::Harness;
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

/// The three switches, one per role (a test in tests/fuzz_configs.rs keeps them valid).
const CONFIGS: [&str; 3] = [
    include_str!("../configs/bridge.toml"),
    include_str!("../configs/edge-vepa.toml"),
    include_str!("../configs/edge-veb.toml"),
];

static SWITCHES: Mutex<Vec<Harness>> = Mutex::new(Vec::new());

fuzz_target!(|data: &[u8]| {
    let mut sw = SWITCHES.lock().unwrap();
    if sw.is_empty() {
        for t in CONFIGS {
            let cfg = Config::parse(t).expect("fuzz config");
            sw.push(Harness::new(cfg, false).expect("harness"));
        }
    }
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let mut frames: Vec<&[u8]> = Vec::new();
    while rest.len() >= 2 && frames.len() < 64 {
        let n = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        frames.push(&rest[2..2 + n]);
        rest = &rest[2 + n..];
    }
    let h = &mut sw[(sel as usize) % 3];
    h.run((sel as usize) >> 2, &frames, (sel & 3) as u64 * 700);
    if let Err(e) = h.check() {
        panic!("{e}");
    }
});
