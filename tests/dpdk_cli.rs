//! `hairpin run` on dpdk ports as a real process: EAL arguments after `--`,
//! counters with rte_eth_stats, clean exit; and the bad-input exits (EAL
//! arguments that fail, no hugepages), each a non-zero exit with the cause
//! and no runtime files left behind.
#![cfg(feature = "dpdk")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hpd-cli-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn null_cfg(d: &Path) -> PathBuf {
    let p = d.join("null.toml");
    std::fs::write(
        &p,
        "[switch]\nrole = \"bridge\"\nworkers = [0]\nidle_sleep_us = 100\npool_size = 4096\n\
         [dpdk]\nrx_desc = 256\ntx_desc = 256\neal_args = [\"--no-pci\", \"-l\", \"0\"]\n\
         [[port]]\nname = \"n0\"\nbackend = \"dpdk:net_null0\"\n\
         [[port]]\nname = \"n1\"\nbackend = \"dpdk:net_null1\"\n",
    )
    .unwrap();
    p
}

fn run(cfg: &Path, eal: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .args(["run", "--config"])
        .arg(cfg)
        .args(["--seconds", "0.3", "--"])
        .args(eal)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn runtime_dir_gone(prefix: &str) -> bool {
    ["/var/run/dpdk", "/run/dpdk"]
        .iter()
        .all(|d| !Path::new(d).join(prefix).exists())
}

#[test]
fn run_with_eal_args_after_dashdash() {
    let d = dir("run_with_eal");
    let cfg = null_cfg(&d);
    let prefix = format!("hpd-cli-ok{}", std::process::id());
    let (code, out, err) = run(
        &cfg,
        &["--no-huge", "-m", "256", &format!("--file-prefix={prefix}")],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let eth = &v["ports"]["n0"]["backend"]["eth"];
    assert!(eth["ipackets"].as_u64().unwrap() > 0, "{v}");
    assert!(eth.get("imissed").is_some() && eth.get("rx_nombuf").is_some());
    assert_eq!(
        v["pool"]["available"], v["pool"]["capacity"],
        "no leaked mbufs"
    );
    assert!(
        v["counters"]["drops"]["bad_src_mac"].as_u64().unwrap() > 0,
        "net_null's zeroed frames are dropped for their source: {v}"
    );
    assert!(runtime_dir_gone(&prefix), "EAL runtime dir left behind");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn bad_eal_args_fail_clearly() {
    let d = dir("bad_eal_args");
    let cfg = null_cfg(&d);
    let prefix = format!("hpd-cli-bad{}", std::process::id());
    let (code, _, err) = run(
        &cfg,
        &[
            "--no-huge",
            &format!("--file-prefix={prefix}"),
            "--no-such-eal-option",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("dpdk.eal_args: the DPDK EAL did not start: rte_eal_init:"),
        "{err}"
    );
    assert!(err.contains("--no-such-eal-option"), "{err}");
    assert!(runtime_dir_gone(&prefix));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn no_hugepages_fails_clearly() {
    // A --huge-dir that is no hugetlbfs mount: the EAL finds no hugepages.
    let d = dir("no_hugepages");
    let cfg = null_cfg(&d);
    let empty = d.join("not-hugetlbfs");
    std::fs::create_dir_all(&empty).unwrap();
    let prefix = format!("hpd-cli-nohp{}", std::process::id());
    let (code, _, err) = run(
        &cfg,
        &[
            &format!("--huge-dir={}", empty.display()),
            "-m",
            "64",
            &format!("--file-prefix={prefix}"),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rte_eal_init"), "{err}");
    assert!(err.to_lowercase().contains("hugepage"), "{err}");
    assert!(runtime_dir_gone(&prefix));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn eal_args_need_a_dpdk_port() {
    let d = dir("eal_args_nee");
    let p = d.join("ring.toml");
    std::fs::write(&p, "[switch]\nworkers = [0]\n[[port]]\nname = \"r\"\n").unwrap();
    let (code, _, err) = run(&p, &["--no-huge"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("need a port with backend = \"dpdk:DEVICE\""),
        "{err}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// `hairpin bench dpdk-ring-fwd` forwards on its ring ethdev in both memory
/// modes. On hugepages its EAL runs IOVA-as-VA, so the pool's one zone does
/// not need physically adjacent 2 MiB pages (after hours of uptime they
/// rarely are, and the bench then failed with ENOMEM).
#[test]
fn bench_dpdk_ring_fwd_in_both_memory_modes() {
    let free: u64 =
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
    let mut modes = vec!["4k"];
    if free >= 256 {
        modes.push("huge");
    } else {
        println!("huge mode skipped: {free} free 2 MiB hugepages, need 256 (./hugepage-setup)");
    }
    for mem in modes {
        let o = Command::new(env!("CARGO_BIN_EXE_hairpin"))
            .args([
                "bench",
                "dpdk-ring-fwd",
                "--seconds",
                "0.3",
                "--mem",
                mem,
                "--json",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "--mem {mem}: {err}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v["mpps"].as_f64().unwrap() > 0.0, "--mem {mem}: {v}");
        assert_eq!(v["drops"].as_f64(), Some(0.0), "--mem {mem}: {v}");
    }
}
