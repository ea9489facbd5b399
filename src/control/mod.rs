//! The 802.1Qbg control plane: LLDP with the EVB TLV, ECP, VDP (bridge and
//! station roles), the policy store, and the control thread that ties them
//! to the running switch.
//!
//! Everything except [`thread`] is pure, deterministic logic: each state
//! machine is driven by explicit `now` timestamps (nanoseconds on any
//! monotonic clock) and returns the frames it wants sent, so tests run on
//! simulated time. No worker ever runs this code; the control thread calls
//! it with the punted frames and on timer ticks.
//!
//! | module | what |
//! |---|---|
//! | [`evb`] | EVB negotiation (RRCAP/RRREQ/RRCTR/RRSTAT, timer maxima, group ids, peer loss) |
//! | [`lldp`] | the nearest-customer-bridge LLDP agent that carries the EVB TLV (TX timer, TTL ageing) |
//! | [`ecp`] | ECP stop-and-wait transport (sequence numbers, ACK, retransmission, duplicates) |
//! | [`vdp`] | VDP bridge role: the VSI table, association state machine, keep-alives, migration |
//! | [`station`] | VDP station role: requests, keep-alives, giving up, the assigned VLAN |
//! | [`store`] | the [`store::PolicyStore`] trait and the config/file-backed store |
//! | [`plane`] | one switch's control plane: frames in, frames and data-path effects out |
//! | [`apply`] | turning negotiated RR and VSI associations into a new snapshot + FDB changes |
//! | [`thread`] | the control thread: punt queues in, control TX queues out |
//! | [`vm`] | run-time VM commands of the station role (`hairpin vm …`) |
//! | [`fuzz`] | arbitrary bytes through the parsers and state machines (fuzz targets) |

pub mod apply;
pub mod ecp;
pub mod evb;
pub mod fuzz;
pub mod lldp;
pub mod plane;
pub mod station;
pub mod store;
pub mod thread;
pub mod vdp;
pub mod vm;

/// Nanoseconds on the control thread's monotonic clock.
pub type Nanos = u64;

/// The 802.1Qbg time unit for an exponent: 10 µs × 2^exp, in nanoseconds
/// (exponents above 31 are treated as 31).
pub const fn unit(exp: u8) -> Nanos {
    let e = if exp > 31 { 31 } else { exp };
    10_000u64 << e
}

/// The timer values in force on a port (negotiated by EVB, or the local
/// defaults before that).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timers {
    /// Maximum ECP retransmissions.
    pub r: u8,
    /// ECP retransmission exponent.
    pub rte: u8,
    /// Resource wait delay exponent.
    pub rwd: u8,
    /// Keep-alive exponent.
    pub rka: u8,
}

impl Default for Timers {
    /// lldpad's defaults: R 3, RTE 8 (2.56 ms), RWD 20, RKA 20 (≈10.5 s).
    fn default() -> Self {
        Timers {
            r: 3,
            rte: 8,
            rwd: 20,
            rka: 20,
        }
    }
}

impl Timers {
    /// ECP acknowledgement timeout: 10 µs × 2^RTE.
    pub fn ack_timeout(&self) -> Nanos {
        unit(self.rte)
    }
    /// Bridge resource wait: 10 µs × 2^RWD.
    pub fn resource_wait(&self) -> Nanos {
        unit(self.rwd)
    }
    /// Station keep-alive interval: 10 µs × 2^RKA.
    pub fn keepalive(&self) -> Nanos {
        unit(self.rka)
    }
    /// Bridge keep-alive timeout: 1.5 × (2^RKA + (2R+1) × 2^RTE) × 10 µs.
    pub fn bridge_keepalive_timeout(&self) -> Nanos {
        let t = unit(self.rka) + (2 * u64::from(self.r) + 1) * unit(self.rte);
        t + t / 2
    }
    /// Station reply wait: 1.5 × (2^RWD + (2R+1) × 2^RTE) × 10 µs.
    pub fn station_reply_wait(&self) -> Nanos {
        let t = unit(self.rwd) + (2 * u64::from(self.r) + 1) * unit(self.rte);
        t + t / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_formulas() {
        assert_eq!(unit(0), 10_000);
        assert_eq!(unit(8), 2_560_000);
        assert_eq!(unit(40), unit(31));
        let t = Timers::default();
        // 1.5 × (2^20 + 7 × 2^8) × 10 µs ≈ 15.76 s (qbg.md §2).
        assert_eq!(t.bridge_keepalive_timeout(), 15_755_520_000);
        assert_eq!(t.station_reply_wait(), 15_755_520_000);
        assert_eq!(t.keepalive(), 10_485_760_000);
        assert_eq!(t.ack_timeout(), 2_560_000);
        assert_eq!(t.resource_wait(), 10_485_760_000);
    }
}
