//! The dpdk backend with the EAL in `--no-huge` mode (machines without
//! hugepages). One test function: the EAL starts once per process.
#![cfg(feature = "dpdk")]

mod dpdk_common;

#[test]
fn dpdk_no_huge() {
    let prefix = format!("hpd-nohuge{}", std::process::id());
    let _guard = dpdk_common::RuntimeDirGuard(prefix.clone());
    // Start it as `hairpin run` does, sparing a worker CPU (the last one
    // this thread may use, when there are two or more).
    let allowed = cpus_allowed("thread-self");
    let worker: Vec<usize> = allowed.iter().copied().skip(1).last().into_iter().collect();
    let before = tasks();
    hairpin::dpdk::eal_init_sparing(&dpdk_common::eal_args(&prefix, false), &worker)
        .expect("EAL --no-huge");
    let eal_threads: Vec<String> = tasks().difference(&before).cloned().collect();
    assert!(!eal_threads.is_empty(), "the EAL starts control threads");
    for t in &eal_threads {
        let on = cpus_allowed(&format!("self/task/{t}"));
        let name = std::fs::read_to_string(format!("/proc/self/task/{t}/comm")).unwrap();
        assert!(
            !on.is_empty() && worker.iter().all(|w| !on.contains(w)),
            "EAL thread {} may run on {on:?}, which has worker CPU {worker:?}",
            name.trim()
        );
    }
    assert_eq!(
        cpus_allowed("thread-self"),
        allowed,
        "the caller's CPU set is given back"
    );
    assert!(!hairpin::dpdk::has_hugepages());
    dpdk_common::ring_forwarding("n1");
    dpdk_common::null_ports("n1");
    dpdk_common::mbuf_ownership("n1");
    dpdk_common::socket_pools("n1");
    dpdk_common::bad_input("n1");
    // The same scenario again in the same EAL: ports, pools and names are reusable.
    dpdk_common::ring_forwarding("n2");
    dpdk_common::teardown(&prefix);
}

/// Thread ids of this process.
fn tasks() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The CPUs `/proc/{what}/status` allows ("0-3,6" → [0, 1, 2, 3, 6]).
fn cpus_allowed(what: &str) -> Vec<usize> {
    let st = std::fs::read_to_string(format!("/proc/{what}/status")).unwrap();
    let list = st
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap());
    }
    cpus
}
