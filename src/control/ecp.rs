//! ECP (802.1Qbg-2012 clause 43): the acknowledged stop-and-wait transport
//! under VDP, one instance per port (qbg.md §2, lldpad `ecp22.c`).
//!
//! - Sending: one PDU outstanding. Without an ACK within 10 µs × 2^RTE it is
//!   sent again, at most R times; then an error is counted and the next PDU
//!   goes. Sequence numbers go up by one per new PDU and skip 0.
//! - Receiving: every request is ACKed; a request whose sequence number equals
//!   the last accepted one is a duplicate (ACKed again, not passed up); the
//!   first request after (re)start is always new.
//! - Version ≠ 1, an unknown subtype or op: dropped without ACK (counted).
//! - Link down resets both sides (queued PDUs are discarded, counted).

use super::{Nanos, Timers};
use crate::wire::ecp::{Ecp as EcpView, Op, Subtype, HDR_LEN, VERSION};
use std::collections::VecDeque;

/// PDUs waiting behind the outstanding one, per port.
pub const TX_QUEUE: usize = 64;

/// ECP counters of one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EcpCounters {
    /// New requests sent (first transmissions).
    pub tx_pdus: u64,
    /// Retransmissions.
    pub retransmits: u64,
    /// PDUs given up on after R retransmissions.
    pub tx_errors: u64,
    /// PDUs refused because the send queue was full.
    pub tx_queue_full: u64,
    /// PDUs discarded by a link-down reset.
    pub tx_flushed: u64,
    /// ACKs received for the outstanding PDU.
    pub rx_acks: u64,
    /// ACKs that matched nothing outstanding.
    pub rx_stray_acks: u64,
    /// Requests passed up.
    pub rx_delivered: u64,
    /// Duplicate requests (ACKed, not passed up).
    pub rx_duplicates: u64,
    /// ACKs sent.
    pub tx_acks: u64,
    /// Dropped: version ≠ 1.
    pub rx_bad_version: u64,
    /// Dropped: subtype other than VDP.
    pub rx_bad_subtype: u64,
    /// Dropped: unknown op, or shorter than the header.
    pub rx_malformed: u64,
}

#[derive(Clone, Debug)]
struct Outstanding {
    seq: u16,
    pdu: Vec<u8>,
    deadline: Nanos,
    retries: u8,
}

/// One port's ECP state.
#[derive(Clone, Debug, Default)]
pub struct Ecp {
    last_seq: u16,
    outstanding: Option<Outstanding>,
    queue: VecDeque<Vec<u8>>,
    last_rx: Option<u16>,
    /// Counters.
    pub ctr: EcpCounters,
}

/// The ECP header for (op, seq) with version 1 and subtype VDP.
pub fn header(op: Op, seq: u16) -> [u8; HDR_LEN] {
    let mut h = [0u8; HDR_LEN];
    let mut v = EcpView::parse(&mut h[..]).expect("4 bytes");
    v.set_header(VERSION, op, Subtype::Vdp);
    v.set_sequence(seq);
    h
}

impl Ecp {
    /// Fresh state (also the state after a link-down reset).
    pub fn new() -> Ecp {
        Ecp::default()
    }

    /// Queue a VDP ULPDU for sending. False (counted) when the queue is full.
    pub fn send(&mut self, ulpdu: Vec<u8>) -> bool {
        if self.queue.len() >= TX_QUEUE {
            self.ctr.tx_queue_full += 1;
            return false;
        }
        self.queue.push_back(ulpdu);
        true
    }

    /// True when nothing is outstanding or queued.
    pub fn idle(&self) -> bool {
        self.outstanding.is_none() && self.queue.is_empty()
    }

    /// A received ECP PDU (the bytes after the ethertype). ACKs to send are
    /// appended to `out` (whole ECP PDUs); returns the ULPDU when it is new.
    pub fn rx<'a>(&mut self, pdu: &'a [u8], out: &mut Vec<Vec<u8>>) -> Option<&'a [u8]> {
        let Ok(e) = EcpView::parse(pdu) else {
            self.ctr.rx_malformed += 1;
            return None;
        };
        if e.version() != VERSION {
            self.ctr.rx_bad_version += 1;
            return None;
        }
        if e.subtype() != Subtype::Vdp {
            self.ctr.rx_bad_subtype += 1;
            return None;
        }
        let seq = e.sequence();
        match e.op() {
            Op::Request => {
                out.push(header(Op::Ack, seq).to_vec());
                self.ctr.tx_acks += 1;
                if self.last_rx == Some(seq) {
                    self.ctr.rx_duplicates += 1;
                    return None;
                }
                self.last_rx = Some(seq);
                self.ctr.rx_delivered += 1;
                Some(&pdu[HDR_LEN..])
            }
            Op::Ack => {
                match &self.outstanding {
                    Some(o) if o.seq == seq => {
                        self.outstanding = None;
                        self.ctr.rx_acks += 1;
                    }
                    _ => self.ctr.rx_stray_acks += 1,
                }
                None
            }
            Op::Unknown(_) => {
                self.ctr.rx_malformed += 1;
                None
            }
        }
    }

    /// Run the send side at `now`: retransmit or give up on the outstanding
    /// PDU when its timer ran out, start the next queued one when idle.
    /// PDUs to send are appended to `out`.
    pub fn poll(&mut self, now: Nanos, t: Timers, out: &mut Vec<Vec<u8>>) {
        if let Some(o) = &mut self.outstanding {
            if now < o.deadline {
                return;
            }
            if o.retries < t.r {
                o.retries += 1;
                o.deadline = now + t.ack_timeout();
                self.ctr.retransmits += 1;
                out.push(o.pdu.clone());
                return;
            }
            self.ctr.tx_errors += 1;
            self.outstanding = None;
        }
        if let Some(u) = self.queue.pop_front() {
            self.last_seq = match self.last_seq.wrapping_add(1) {
                0 => 1,
                s => s,
            };
            let mut pdu = header(Op::Request, self.last_seq).to_vec();
            pdu.extend_from_slice(&u);
            out.push(pdu.clone());
            self.ctr.tx_pdus += 1;
            self.outstanding = Some(Outstanding {
                seq: self.last_seq,
                pdu,
                deadline: now + t.ack_timeout(),
                retries: 0,
            });
        }
    }

    /// When [`Ecp::poll`] has something to do next (None: nothing pending).
    pub fn deadline(&self) -> Option<Nanos> {
        match &self.outstanding {
            Some(o) => Some(o.deadline),
            None if !self.queue.is_empty() => Some(0),
            None => None,
        }
    }

    /// The sequence number of the last new PDU sent.
    pub fn last_seq(&self) -> u16 {
        self.last_seq
    }

    /// Link down: both state machines restart; queued PDUs are dropped (counted).
    pub fn link_down(&mut self) {
        self.ctr.tx_flushed += self.queue.len() as u64 + u64::from(self.outstanding.is_some());
        self.queue.clear();
        self.outstanding = None;
        self.last_rx = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Timers {
        Timers {
            r: 3,
            rte: 8,
            rwd: 20,
            rka: 20,
        }
    }

    #[test]
    fn header_vector() {
        assert_eq!(header(Op::Request, 0x1224), [0x10, 0x01, 0x12, 0x24]);
        assert_eq!(header(Op::Ack, 0x1224), [0x14, 0x01, 0x12, 0x24]);
    }

    #[test]
    fn ack_stops_retransmission() {
        let mut e = Ecp::new();
        let mut out = Vec::new();
        assert!(e.send(vec![1, 2]));
        e.poll(0, t(), &mut out);
        assert_eq!(out, vec![vec![0x10, 0x01, 0x00, 0x01, 1, 2]]);
        out.clear();
        e.poll(t().ack_timeout() - 1, t(), &mut out);
        assert!(out.is_empty());
        assert!(e.rx(&[0x14, 0x01, 0x00, 0x01], &mut out).is_none());
        assert!(out.is_empty(), "an ACK is not answered");
        assert_eq!(e.ctr.rx_acks, 1);
        assert!(e.idle());
        e.poll(10 * t().ack_timeout(), t(), &mut out);
        assert!(out.is_empty());
        assert!(e.rx(&[0x14, 0x01, 0x00, 0x01], &mut out).is_none());
        assert_eq!(e.ctr.rx_stray_acks, 1);
    }

    #[test]
    fn queue_full_counted() {
        let mut e = Ecp::new();
        for _ in 0..TX_QUEUE {
            assert!(e.send(vec![]));
        }
        assert!(!e.send(vec![]));
        assert_eq!(e.ctr.tx_queue_full, 1);
        e.link_down();
        assert_eq!(e.ctr.tx_flushed, TX_QUEUE as u64);
        assert!(e.idle());
        assert_eq!(e.deadline(), None);
    }
}
