//! `hairpin run` on pcap ports: the binary reads hv1's input file, forwards,
//! writes each port's output file, and reports the counters and pool level.

use hairpin::pcap::{PcapReader, PcapWriter};
use hairpin::types::Mac;
use hairpin::wire::build::FrameBuilder;
use std::process::Command;

#[test]
fn run_forwards_pcap_input_and_exits_clean() {
    let dir = std::env::temp_dir().join(format!("hairpin-run-pcap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configs/pcap-bridge.toml"
    ))
    .unwrap();
    std::fs::write(dir.join("bridge.toml"), cfg).unwrap();
    let a = Mac([2, 0, 0, 0, 0, 1]);
    let b = Mac([2, 0, 0, 0, 0, 2]);
    let mut w = PcapWriter::create(dir.join("hv1-in.pcap")).unwrap();
    // B speaks first (learned on hv1), then A→B is hairpinned back out hv1.
    let f1 = FrameBuilder::new().src(b).dst(Mac::BROADCAST).udp4(
        [10, 0, 0, 2].into(),
        [10, 0, 0, 255].into(),
        1,
        2,
    );
    let f2 =
        FrameBuilder::new()
            .src(a)
            .dst(b)
            .udp4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 1, 2);
    w.write(1_000_000_000, &f1).unwrap();
    w.write(1_001_000_000, &f2).unwrap();
    w.flush().unwrap();
    drop(w);
    let out = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .args(["run", "--config"])
        .arg(dir.join("bridge.toml"))
        .args(["--seconds", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["pool"]["available"], j["pool"]["capacity"]);
    assert_eq!(j["counters"]["rx_pkts"], 2);
    assert_eq!(j["counters"]["reflected"], 2, "{j}");
    let read = |name: &str| -> Vec<Vec<u8>> {
        PcapReader::open(dir.join(name))
            .unwrap()
            .map(|r| r.unwrap().1)
            .collect()
    };
    // hv1: the broadcast reflected, then A→B hairpinned; core: the broadcast only.
    assert_eq!(read("hv1-out.pcap"), vec![f1.clone(), f2]);
    assert_eq!(read("core-out.pcap"), vec![f1]);
    let _ = std::fs::remove_dir_all(&dir);
}
