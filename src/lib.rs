//! hairpin: a poll-mode software switch implementing IEEE 802.1Qbg reflective relay.
//!
//! Layers, bottom up:
//! - [`types`], [`wire`]: addresses and zero-copy header views;
//! - [`buf`]: frame buffers and the fixed pool; [`port`]: the `Port` abstraction and backends;
//! - [`fdb`]: the (MAC, VID) forwarding table; [`policy`]: compiled ACLs;
//! - [`pipeline`]: parse → ingress → learn → forward → tx, one burst at a time, for the three roles;
//! - [`worker`]: the pinned poll loop; [`stats`]: drop reasons and counters;
//! - [`qos`]: meters, remarking and the per-port egress scheduler;
//! - [`config`]: the TOML configuration; [`pcap`]: classic pcap files; [`gen`]: the built-in traffic generator;
//! - [`control`]: the 802.1Qbg control plane (LLDP/EVB, ECP, VDP, policy store) and its thread;
//! - [`lab`]: network namespaces, veths and hairpin instances for end-to-end runs;
//! - [`pktgen`]: streams with loss/latency accounting, RFC 2544 methods, the hairpin vs local harness;
//! - [`app`]: the commands behind the `hairpin` binary;
//! - `dpdk` (cargo feature `dpdk`): the only module with `unsafe` DPDK calls, under the `dpdk` port backend.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod bench;
#[cfg(feature = "dpdk")]
pub mod bench_dpdk;
pub mod buf;
pub mod capture;
pub mod compare;
pub mod config;
pub mod control;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod fdb;
pub mod gen;
pub mod harness;
#[cfg(target_os = "linux")]
pub mod lab;
pub mod logging;
pub mod macvid;
pub mod pcap;
pub mod pcapng;
pub mod pipeline;
pub mod pktgen;
pub mod policy;
pub mod port;
pub mod qos;
pub mod replay;
pub mod runtime;
pub mod stats;
pub mod telemetry;
pub mod trace;
pub mod types;
pub mod util;
pub mod wire;
pub mod worker;
