//! The dpdk backend with the EAL in `--no-huge` mode (machines without
//! hugepages). One test function: the EAL starts once per process.
#![cfg(feature = "dpdk")]

mod dpdk_common;

#[test]
fn dpdk_no_huge() {
    let prefix = format!("hpd-nohuge{}", std::process::id());
    let _guard = dpdk_common::RuntimeDirGuard(prefix.clone());
    hairpin::dpdk::eal_init(&dpdk_common::eal_args(&prefix, false)).expect("EAL --no-huge");
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
