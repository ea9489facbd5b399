//! The fuzz target `forward` builds its switches from fuzz/configs/*.toml:
//! they must stay valid, and the seeds must run through them cleanly.

use hairpin::config::Config;
use hairpin::harness::Harness;

#[test]
fn fuzz_configs_build_and_seeds_pass() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz");
    let mut seeds = Vec::new();
    for e in std::fs::read_dir(format!("{dir}/seeds")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) == Some("bin") {
            seeds.push(std::fs::read(p).unwrap());
        }
    }
    assert!(!seeds.is_empty());
    for name in ["bridge", "edge-vepa", "edge-veb"] {
        let text = std::fs::read_to_string(format!("{dir}/configs/{name}.toml")).unwrap();
        let cfg = Config::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut h = Harness::new(cfg, true).unwrap();
        let frames: Vec<&[u8]> = seeds.iter().map(|s| s.as_slice()).collect();
        for port in 0..4 {
            h.run(port, &frames, 500);
            h.check()
                .unwrap_or_else(|e| panic!("{name} port {port}: {e}"));
        }
        assert!(h.counters().rx_pkts >= 4 * seeds.len() as u64);
    }
}
