//! The dpdk backend with the EAL on hugepages (`-m 128 --huge-unlink`).
//! Skipped (and passing) when no 2 MiB hugepages are free: `./hugepage-setup`
//! reserves them (scripts/test-all does as root).
#![cfg(feature = "dpdk")]

mod dpdk_common;

#[test]
fn dpdk_hugepages() {
    let free = dpdk_common::free_hugepages();
    if free < 96 {
        println!("skipped: {free} free 2 MiB hugepages, need 96 (run ./hugepage-setup as root)");
        return;
    }
    let prefix = format!("hpd-huge{}", std::process::id());
    let _guard = dpdk_common::RuntimeDirGuard(prefix.clone());
    hairpin::dpdk::eal_init(&dpdk_common::eal_args(&prefix, true)).expect("EAL on hugepages");
    assert!(hairpin::dpdk::has_hugepages());
    dpdk_common::ring_forwarding("h1");
    dpdk_common::null_ports("h1");
    dpdk_common::socket_pools("h1");
    dpdk_common::bad_input("h1");
    dpdk_common::teardown(&prefix);
    // Other processes may take free pages meanwhile (shared machine), so
    // check this process instead: no hugepage mapping is left.
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let huge = smaps
        .lines()
        .filter(|l| l.starts_with("KernelPageSize:") && !l.contains(" 4 kB"))
        .count();
    assert_eq!(huge, 0, "hugepage mappings left after rte_eal_cleanup");
}
