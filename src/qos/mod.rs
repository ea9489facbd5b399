//! Quality of service building blocks: meters, markers and the egress scheduler.
//!
//! Each module is pure and self-contained; the pipeline wires them in. Time is
//! always passed in explicitly as nanoseconds (`now_ns: u64`, any monotonic
//! origin), so the same code runs on the switch clock and on simulated time in
//! tests. Nothing here allocates per frame or sleeps.
//!
//! - [`meter`]: RFC 2697 srTCM and RFC 2698 trTCM, colour-blind or
//!   colour-aware, with per-colour [`meter::Action`]s. One [`meter::SharedMeter`]
//!   holds the rate; each worker core meters from its own
//!   [`meter::MeterCache`], which leases tokens from the shared buckets in
//!   chunks, so there is no shared atomic per frame.
//! - [`mark`]: rewrite the 802.1Q PCP, the IPv4 DSCP (RFC 1624 incremental
//!   header checksum) and the IPv6 traffic class in place.
//! - [`sched`]: per-port egress with 8 traffic classes: strict priority on
//!   top, deficit round robin below, a port shaper and counted tail drop.

pub mod mark;
pub mod meter;
pub mod sched;
