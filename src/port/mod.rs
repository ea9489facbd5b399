//! Ports: one abstraction over every backend.
//!
//! A [`Port`] is opened once per switch; it hands out one [`PortQueue`] per
//! worker (queue `q` of every port belongs to worker `q`), so the fast path
//! never shares a queue between cores. `rx_burst` appends up to the burst's
//! free space; `tx_burst` consumes frames from the front of a burst and
//! returns how many the port accepted — the rest stay in the burst, and the
//! caller frees them and counts `tx_full`. A full TX queue never blocks.

#[cfg(target_os = "linux")]
pub mod afpacket;
#[cfg(target_os = "linux")]
pub mod afxdp;
#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(target_os = "linux")]
mod netlink;
pub mod pcap;
pub mod ring;

use crate::buf::Burst;

/// One worker's RX+TX queue pair on one port.
pub trait PortQueue: Send {
    /// Receive up to `out.space()` frames, appended to `out`. Returns the count.
    fn rx_burst(&mut self, out: &mut Burst) -> usize;
    /// Transmit frames from the front of `frames`; returns how many were taken.
    /// Frames not taken stay in `frames`, in order.
    fn tx_burst(&mut self, frames: &mut Burst) -> usize;
    /// Push out anything buffered (called after each loop's TX stage and at stop).
    fn flush(&mut self) {}
    /// True while the link is up.
    fn link_up(&self) -> bool {
        true
    }
    /// A descriptor that polls readable when RX has frames (a socket), for
    /// an idle worker's back-off; `None` for queues without one.
    fn rx_fd(&self) -> Option<i32> {
        None
    }
}

/// A port of the switch: a factory of per-worker queues.
pub trait Port: Send {
    /// The port's name from the config.
    fn name(&self) -> &str;
    /// Number of queue pairs this port was opened with.
    fn queues(&self) -> usize;
    /// Take queue pair `q` (each may be taken once).
    fn take_queue(&mut self, q: usize) -> Option<Box<dyn PortQueue>>;
    /// The backend's own counters (e.g. `rte_eth_stats` of a dpdk port, the
    /// kernel's ring drops of an afpacket port) as a JSON object, if it has any.
    fn backend_stats(&self) -> Option<serde_json::Value> {
        None
    }
    /// Stop the device after the workers stopped (a dpdk port closes and
    /// returns the mbufs held by its descriptors). Idempotent.
    fn stop(&mut self) {}
}
