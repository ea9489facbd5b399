//! EVB negotiation over the EVB TLV (qbg.md §2, as lldpad's `bridge_tlv`,
//! `station_tlv` and `common_tlv` do it).
//!
//! - Bridge: RRCTR = received RRREQ ∧ own RRCAP; the station status byte is echoed.
//! - Station: RRSTAT = 3 until a bridge TLV was heard, then 1 if RRCTR, else 0;
//!   the bridge status byte is echoed.
//! - R, RTE, RWD, RKA each take max(local, received); ROL is set on RWD/RKA
//!   when the value came from the peer.
//! - Group-id filter formats are allowed only when BGID and SGID are both set.
//! - The peer's information goes away on TTL expiry, an LLDPDU with TTL 0, an
//!   LLDPDU without an EVB TLV, or link down: reflective relay is off at once.

use super::{Nanos, Timers};
use crate::wire::evb::{EvbMode, EvbRepr, RrStat};

/// Which end of the link this port is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EvbRole {
    /// The adjacent bridge (hairpin as the reflective-relay bridge).
    Bridge,
    /// The station (hairpin as the hypervisor edge).
    Station,
}

/// Local EVB settings of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvbLocal {
    /// Role.
    pub role: EvbRole,
    /// Bridge: reflective relay capable (RRCAP). Station: ask for it (RRREQ).
    pub rr: bool,
    /// Group ids supported (BGID for a bridge, SGID for a station).
    pub gid: bool,
    /// Local timer values (the negotiation takes the max with the peer's).
    pub timers: Timers,
}

/// The EVB state of one port.
#[derive(Clone, Debug)]
pub struct Evb {
    local: EvbLocal,
    remote: Option<(EvbRepr, Nanos)>,
    /// Count of EVB TLVs received with a bad length.
    pub bad_tlvs: u64,
}

impl Evb {
    /// A port with no peer yet.
    pub fn new(local: EvbLocal) -> Evb {
        Evb {
            local,
            remote: None,
            bad_tlvs: 0,
        }
    }
    /// The local settings.
    pub fn local(&self) -> &EvbLocal {
        &self.local
    }
    /// Change the local capability/request (e.g. the bridge clears RRCAP).
    pub fn set_rr(&mut self, rr: bool) {
        self.local.rr = rr;
    }
    /// The peer's last EVB TLV, if it is still valid.
    pub fn remote(&self) -> Option<&EvbRepr> {
        self.remote.as_ref().map(|(r, _)| r)
    }

    /// An LLDPDU from the peer on the nearest-customer-bridge agent: its EVB
    /// TLV (None when it carries none) and its TTL in seconds. TTL 0 or no EVB
    /// TLV clears the peer. Returns true when the negotiated state changed.
    pub fn rx(&mut self, now: Nanos, evb: Option<EvbRepr>, ttl_s: u16) -> bool {
        let before = self.state();
        match evb {
            Some(r) if ttl_s > 0 => {
                self.remote = Some((r, now + u64::from(ttl_s) * 1_000_000_000));
            }
            _ => self.remote = None,
        }
        before != self.state()
    }

    /// Age the peer's information. Returns true when it expired now.
    pub fn tick(&mut self, now: Nanos) -> bool {
        match self.remote {
            Some((_, exp)) if now >= exp => {
                self.remote = None;
                true
            }
            _ => false,
        }
    }

    /// When the peer's information expires, if there is any.
    pub fn deadline(&self) -> Option<Nanos> {
        self.remote.map(|(_, e)| e)
    }

    /// Link down: forget the peer.
    pub fn link_down(&mut self) {
        self.remote = None;
    }

    /// Is reflective relay on for this port? Bridge: the RRCTR it sends.
    /// Station: the RRCTR the bridge sent.
    pub fn rr_on(&self) -> bool {
        match (self.local.role, self.remote()) {
            (EvbRole::Bridge, Some(r)) => r.rrreq && self.local.rr,
            (EvbRole::Station, Some(r)) => r.rrctr,
            _ => false,
        }
    }

    /// May group-id filter formats be used (BGID and SGID both set)?
    pub fn group_ok(&self) -> bool {
        match (self.local.role, self.remote()) {
            (EvbRole::Bridge, Some(r)) => self.local.gid && r.sgid,
            (EvbRole::Station, Some(r)) => self.local.gid && r.bgid,
            _ => false,
        }
    }

    /// The timers in force: max(local, peer) of each (local ones without a peer).
    pub fn timers(&self) -> Timers {
        let l = self.local.timers;
        match self.remote() {
            Some(r) => Timers {
                r: l.r.max(r.r),
                rte: l.rte.max(r.rte),
                rwd: l.rwd.max(r.rwd),
                rka: l.rka.max(r.rka),
            },
            None => l,
        }
    }

    /// (rr on, group ok, timers): what changes are reported on.
    pub fn state(&self) -> (bool, bool, Timers) {
        (self.rr_on(), self.group_ok(), self.timers())
    }

    /// The EVB TLV to send now.
    pub fn tlv(&self) -> EvbRepr {
        let l = self.local;
        let t = self.timers();
        let rem = self.remote();
        let from_peer = |mine: u8, theirs: Option<u8>| theirs.is_some_and(|x| x > mine);
        let mut out = EvbRepr {
            bgid: false,
            rrcap: false,
            rrctr: false,
            sgid: false,
            rrreq: false,
            rrstat: RrStat::NotEnabled,
            r: t.r,
            rte: t.rte,
            mode: EvbMode::None,
            rol_rwd: from_peer(l.timers.rwd, rem.map(|r| r.rwd)),
            rwd: t.rwd,
            rol_rka: from_peer(l.timers.rka, rem.map(|r| r.rka)),
            rka: t.rka,
        };
        match l.role {
            EvbRole::Bridge => {
                out.mode = EvbMode::Bridge;
                out.bgid = l.gid;
                out.rrcap = l.rr;
                out.rrctr = self.rr_on();
                if let Some(r) = rem {
                    out.sgid = r.sgid;
                    out.rrreq = r.rrreq;
                    out.rrstat = r.rrstat;
                }
            }
            EvbRole::Station => {
                out.mode = EvbMode::Station;
                out.sgid = l.gid;
                out.rrreq = l.rr;
                match rem {
                    Some(r) => {
                        out.bgid = r.bgid;
                        out.rrcap = r.rrcap;
                        out.rrctr = r.rrctr;
                        out.rrstat = if r.rrctr {
                            RrStat::Enabled
                        } else {
                            RrStat::NotEnabled
                        };
                    }
                    None => out.rrstat = RrStat::Unknown,
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::evb::Evb as EvbView;

    fn parse(b: &[u8]) -> EvbRepr {
        EvbRepr::parse(&EvbView::parse(&b[2..]).unwrap())
    }

    fn zero() -> Timers {
        Timers {
            r: 0,
            rte: 0,
            rwd: 0,
            rka: 0,
        }
    }

    #[test]
    fn lldpad_vectors_bridge_and_station() {
        // Bridge with RRCAP and zero timers offers `02 00 00 40 00`.
        let mut br = Evb::new(EvbLocal {
            role: EvbRole::Bridge,
            rr: true,
            gid: false,
            timers: zero(),
        });
        let mut out = [0u8; 11];
        br.tlv().emit(&mut out).unwrap();
        assert_eq!(
            out,
            [0xfe, 0x09, 0x00, 0x80, 0xc2, 0x0d, 0x02, 0x00, 0x00, 0x40, 0x00]
        );
        // Station with R 3, RTE 8, RWD 8, RKA 8 before hearing the bridge: RRSTAT 3.
        let mut st = Evb::new(EvbLocal {
            role: EvbRole::Station,
            rr: true,
            gid: false,
            timers: Timers {
                r: 3,
                rte: 8,
                rwd: 8,
                rka: 8,
            },
        });
        assert_eq!(st.tlv().rrstat, RrStat::Unknown);
        st.rx(0, Some(parse(&out)), 120);
        st.tlv().emit(&mut out).unwrap();
        assert_eq!(&out[6..], &[0x02, 0x04, 0x68, 0x88, 0x08]);
        // Bridge confirms `03 04`.
        assert!(br.rx(0, Some(parse(&out)), 120));
        assert!(br.rr_on());
        br.tlv().emit(&mut out).unwrap();
        assert_eq!(&out[6..8], &[0x03, 0x04]);
        // The bridge took the station's larger timers and says so with ROL.
        let t = br.tlv();
        assert_eq!((t.r, t.rte, t.rwd, t.rka), (3, 8, 8, 8));
        assert!(t.rol_rwd && t.rol_rka);
        // Station reports `03 05`.
        st.rx(0, Some(parse(&out)), 120);
        st.tlv().emit(&mut out).unwrap();
        assert_eq!(&out[6..8], &[0x03, 0x05]);
        assert!(st.rr_on());
        assert!(!st.tlv().rol_rwd, "the station's own values are the max");
    }

    #[test]
    fn peer_loss() {
        let mut br = Evb::new(EvbLocal {
            role: EvbRole::Bridge,
            rr: true,
            gid: true,
            timers: Timers::default(),
        });
        let req = EvbRepr {
            rrreq: true,
            sgid: true,
            ..br.tlv()
        };
        br.rx(0, Some(req), 2);
        assert!(br.rr_on() && br.group_ok());
        assert_eq!(br.deadline(), Some(2_000_000_000));
        assert!(!br.tick(1_999_999_999));
        assert!(br.tick(2_000_000_000));
        assert!(!br.rr_on() && !br.group_ok());
        br.rx(0, Some(req), 2);
        assert!(br.rx(1, Some(req), 0), "TTL 0 clears");
        assert!(!br.rr_on());
        br.rx(0, Some(req), 2);
        assert!(br.rx(1, None, 120), "no EVB TLV clears");
        br.rx(0, Some(req), 2);
        br.link_down();
        assert!(!br.rr_on() && br.remote().is_none());
    }
}
