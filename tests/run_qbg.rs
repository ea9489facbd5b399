//! `hairpin run` with EVB ports: the control thread starts, publishes its
//! first snapshot, advertises EVB out of the EVB ports, and everything is
//! back in the pool at exit.

use std::process::Command;

#[test]
fn run_with_evb_ports_starts_the_control_thread() {
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configs/qbg-bridge.toml");
    let text = std::fs::read_to_string(cfg)
        .unwrap()
        .replace("workers = [1]", "workers = [0]");
    let dir = std::env::temp_dir().join(format!("hairpin-run-qbg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("qbg.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .args(["run", "--config"])
        .arg(&path)
        .args(["--seconds", "0.5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let q = &j["qbg"];
    assert!(q["snapshots"].as_u64().unwrap() >= 1, "{q}");
    assert_eq!(q["rr"], serde_json::json!([false, false, null]));
    // What the data path runs: RR per port name, the (empty) VSI table.
    assert_eq!(
        q["data_path"]["rr"],
        serde_json::json!({"hv1": false, "hv2": false, "core": false})
    );
    assert_eq!(q["data_path"]["vsis"], serde_json::json!([]));
    // The same state on stderr at each published snapshot.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().any(|l| l.starts_with("hairpin: qbg: {")),
        "{err}"
    );
    assert!(q["store"].as_str().unwrap().contains("2 VSI types"), "{q}");
    // One LLDPDU at start on each EVB port (nobody answers on the ring cables).
    assert!(q["thread"]["tx_frames"].as_u64().unwrap() >= 2, "{q}");
    assert_eq!(j["pool"]["available"], j["pool"]["capacity"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
