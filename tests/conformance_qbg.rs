//! Conformance matrix (qbg.md §4), rows 34–58: the 802.1Qbg control plane.
//! The bridge runs as in production (data path on ring ports, control thread
//! stepped on simulated time); the station is played with hand-built frames
//! so every field can be chosen, and the bridge's answers are read off the
//! wire. Setup: P1 and P3 EVB bridge ports, P2 a plain trunk (VLAN 100).

mod qbg_lab;

use hairpin::config::Config;
use hairpin::control::ecp::Ecp;
use hairpin::control::evb::{Evb, EvbLocal, EvbRole};
use hairpin::control::lldp::{self, LldpRx};
use hairpin::control::store::{Lookup, PolicyStore, StaticStore, VlanSpec, VsiType};
use hairpin::control::{Nanos, Timers};
use hairpin::types::Mac;
use hairpin::wire::ecp::{Ecp as EcpView, Op};
use hairpin::wire::evb::{EvbMode, EvbRepr, RrStat};
use hairpin::wire::vdp::{
    emit_manager_id, emit_pdu, AssocRepr, FilterEntry, FilterFormat, Mode, Reason, Status, VsiId,
};
use qbg_lab::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const NEG: &str = "reflective_relay = \"negotiate\"";
const STATION_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);

/// A station played by hand on lab port `port`.
struct Hand {
    port: usize,
    seq: u16,
}

fn station_tlv(rrreq: bool, sgid: bool, t: Timers) -> EvbRepr {
    EvbRepr {
        bgid: false,
        rrcap: false,
        rrctr: false,
        sgid,
        rrreq,
        rrstat: RrStat::Unknown,
        r: t.r,
        rte: t.rte,
        mode: EvbMode::Station,
        rol_rwd: false,
        rwd: t.rwd,
        rol_rka: false,
        rka: t.rka,
    }
}

fn lldpad_timers() -> Timers {
    Timers {
        r: 3,
        rte: 8,
        rwd: 20,
        rka: 20,
    }
}

impl Hand {
    fn new(port: usize) -> Hand {
        Hand { port, seq: 0 }
    }

    /// Send an LLDPDU with `evb` (TTL `ttl`) to `dst`; returns the bridge's
    /// last EVB TLV on this port after the step, if it sent one.
    fn lldp_to(
        &mut self,
        lab: &mut Lab,
        now: Nanos,
        evb: EvbRepr,
        ttl: u16,
        dst: u8,
    ) -> Option<EvbRepr> {
        let mut f = lldp::build(STATION_MAC, STATION_MAC, "eth0", ttl, &evb);
        f[5] = dst;
        lab.send(self.port, &f);
        lab.step(now);
        last_evb(&lab.recv(self.port))
    }

    fn lldp(&mut self, lab: &mut Lab, now: Nanos, evb: EvbRepr, ttl: u16) -> Option<EvbRepr> {
        self.lldp_to(lab, now, evb, ttl, 0x00)
    }

    /// Ask for RR with lldpad's timers and return the bridge's answer.
    fn negotiate(&mut self, lab: &mut Lab, now: Nanos) -> EvbRepr {
        self.lldp(lab, now, station_tlv(true, false, lldpad_timers()), 120)
            .expect("the bridge answers at once")
    }

    /// Send one ECP request carrying `ulpdu`; ACK whatever the bridge sends;
    /// return every frame the bridge sent on this port.
    fn ecp(&mut self, lab: &mut Lab, now: Nanos, ulpdu: &[u8]) -> Vec<Vec<u8>> {
        self.seq = self.seq.wrapping_add(1).max(1);
        lab.send(self.port, &ecp_frame(self.seq, ulpdu));
        self.settle(lab, now)
    }

    /// Step, ACKing the bridge's ECP requests, until it is quiet.
    fn settle(&mut self, lab: &mut Lab, now: Nanos) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        for _ in 0..10 {
            lab.step(now);
            let got = lab.recv(self.port);
            if got.is_empty() {
                break;
            }
            for f in &got {
                if f[12..14] == [0x89, 0x40]
                    && EcpView::parse(&f[14..]).unwrap().op() == Op::Request
                {
                    let seq = EcpView::parse(&f[14..]).unwrap().sequence();
                    let mut ack = ecp_frame(seq, &[]);
                    ack[14] = 0x14;
                    lab.send(self.port, &ack);
                }
            }
            all.extend(got);
        }
        all
    }

    /// Send VDP TLVs (manager id zero) and return the bridge's association TLVs.
    fn vdp(&mut self, lab: &mut Lab, now: Nanos, tlvs: &[AssocRepr]) -> Vec<AssocRepr> {
        vdp_tlvs(&self.ecp(lab, now, &emit_pdu(&[0; 16], tlvs).unwrap()))
    }
}

fn last_evb(frames: &[Vec<u8>]) -> Option<EvbRepr> {
    frames.iter().rev().find_map(|f| match lldp::read(f) {
        LldpRx::Evb { evb, .. } => evb,
        _ => None,
    })
}

/// ECP headers (op, seq) among frames.
fn ecp_headers(frames: &[Vec<u8>]) -> Vec<[u8; 4]> {
    frames
        .iter()
        .filter(|f| f[12..14] == [0x89, 0x40])
        .map(|f| [f[14], f[15], f[16], f[17]])
        .collect()
}

fn lab() -> Lab {
    Lab::new(&bridge_cfg(NEG, ""))
}

/// Lab where P1 negotiated RR and VM `mac` is associated (type 5 → VLAN 100).
fn with_vsi(mac: Mac, uuid: [u8; 16]) -> (Lab, Hand) {
    let mut lab = lab();
    let mut h = Hand::new(0);
    h.negotiate(&mut lab, S);
    let r = h.vdp(&mut lab, S, &[req(Mode::Assoc, 5, uuid, mac, 100)]);
    assert_eq!(r[0].status, Status::ok());
    (lab, h)
}

/// Row 34: "Station TLV with RRREQ=1, SW has RRCAP → SW sends RRCTR=1 and enables hairpin on that port."
#[test]
fn row_34_rrreq_with_rrcap_sets_rrctr_and_hairpin() {
    let mut lab = Lab::new(&bridge_cfg(&format!("{NEG}\nvlans = [10]"), ""));
    let mut h = Hand::new(0);
    lab.step(0);
    let offer = last_evb(&lab.recv(0)).expect("the bridge advertises at start");
    assert!(offer.rrcap && !offer.rrctr);
    let b = Mac([2, 0, 0, 0, 0, 0xb]);
    let a = Mac([2, 0, 0, 0, 0, 0xa]);
    // Before: B learned on P1, A→B dropped (RR off).
    lab.send(0, &frame(b, Mac::BROADCAST, 10, 1));
    lab.send(0, &frame(a, b, 10, 2));
    lab.step(0);
    assert!(data(lab.recv(0)).is_empty());
    let ans = h.negotiate(&mut lab, S);
    assert!(ans.rrcap && ans.rrctr, "RRCTR=1");
    assert!(lab.rr(0), "reflective relay on in the snapshot");
    let f = frame(a, b, 10, 3);
    lab.send(0, &f);
    lab.step(S);
    assert_eq!(data(lab.recv(0)), vec![f], "the frame hairpins");
}

/// Row 35: "RRCAP=0 while RRREQ=1 → RRCTR=0 and RR stays off."
#[test]
fn row_35_no_rrcap_no_rrctr() {
    let mut lab = Lab::new(&bridge_cfg("reflective_relay = false", ""));
    let ans = Hand::new(0).negotiate(&mut lab, S);
    assert!(!ans.rrcap && !ans.rrctr);
    assert!(ans.rrreq, "the station status is echoed");
    assert!(!lab.rr(0));
}

/// Row 36: "RRREQ=0 while RRCAP=1 → RRCTR=0."
#[test]
fn row_36_no_rrreq_no_rrctr() {
    let mut lab = lab();
    let ans = Hand::new(0)
        .lldp(&mut lab, S, station_tlv(false, false, lldpad_timers()), 120)
        .unwrap();
    assert!(ans.rrcap && !ans.rrctr);
    assert!(!lab.rr(0));
}

/// Row 37: "Station later clears RRREQ, or SW clears RRCAP → RRCTR=0 and reflection stops."
#[test]
fn row_37_rrreq_cleared_stops_reflection() {
    let mut lab = Lab::new(&bridge_cfg(&format!("{NEG}\nvlans = [10]"), ""));
    let mut h = Hand::new(0);
    assert!(h.negotiate(&mut lab, S).rrctr);
    let (a, b) = (Mac([2, 0, 0, 0, 0, 0xa]), Mac([2, 0, 0, 0, 0, 0xb]));
    lab.send(0, &frame(b, Mac::BROADCAST, 10, 1));
    lab.step(S);
    lab.recv(0);
    let ans = h
        .lldp(
            &mut lab,
            2 * S,
            station_tlv(false, false, lldpad_timers()),
            120,
        )
        .unwrap();
    assert!(!ans.rrctr);
    assert!(!lab.rr(0));
    lab.send(0, &frame(a, b, 10, 2));
    lab.step(2 * S);
    assert!(data(lab.recv(0)).is_empty(), "reflection stopped");
    assert_eq!(lab.ctr("drops")["hairpin_off"].as_u64(), Some(1));
    // SW clears RRCAP (the EVB state machine on its own).
    let mut e = Evb::new(EvbLocal {
        role: EvbRole::Bridge,
        rr: true,
        gid: false,
        timers: lldpad_timers(),
    });
    e.rx(0, Some(station_tlv(true, false, lldpad_timers())), 120);
    assert!(e.tlv().rrctr);
    e.set_rr(false);
    assert!(!e.tlv().rrctr && !e.tlv().rrcap && !e.rr_on());
}

/// Row 38: "Peer RTE/R/RWD/RKA higher or lower than local → SW uses the max of each; ROL flags set."
#[test]
fn row_38_timers_take_the_max_with_rol() {
    let mut lab = Lab::new(&bridge_cfg(NEG, "r = 3\nrte = 8\nrwd = 20\nrka = 20\n"));
    let peer = Timers {
        r: 5,
        rte: 4,
        rwd: 25,
        rka: 10,
    };
    let ans = Hand::new(0)
        .lldp(&mut lab, S, station_tlv(true, false, peer), 120)
        .unwrap();
    assert_eq!((ans.r, ans.rte, ans.rwd, ans.rka), (5, 8, 25, 20));
    assert!(ans.rol_rwd, "RWD came from the peer");
    assert!(!ans.rol_rka, "RKA is the bridge's own");
    let t = lab
        .ctl
        .plane
        .evb(hairpin::types::PortId(0))
        .unwrap()
        .timers();
    assert_eq!(
        t,
        Timers {
            r: 5,
            rte: 8,
            rwd: 25,
            rka: 20
        }
    );
    // Lower peer values: the local ones stay, no ROL.
    let low = Timers {
        r: 0,
        rte: 0,
        rwd: 0,
        rka: 0,
    };
    let ans = Hand::new(0).lldp(&mut lab, 2 * S, station_tlv(true, false, low), 120);
    let ans = ans.unwrap_or_else(|| {
        lab.step(3 * S);
        last_evb(&lab.recv(0)).unwrap()
    });
    assert_eq!((ans.r, ans.rte, ans.rwd, ans.rka), (3, 8, 20, 20));
    assert!(!ans.rol_rwd && !ans.rol_rka);
}

fn group_req() -> AssocRepr {
    AssocRepr {
        mode: Mode::Assoc,
        status: Status(0),
        type_id: 5,
        version: 1,
        vsiid: VsiId::uuid(UUID_A),
        filter_format: FilterFormat::GroupMacVid,
        filters: vec![FilterEntry {
            group: 77,
            ..FilterEntry::mac_vid(A, 100)
        }],
    }
}

/// Row 39: "BGID and SGID both set → group formats accepted; only one set → group-format VDP rejected."
#[test]
fn row_39_group_formats_need_bgid_and_sgid() {
    for (bgid, sgid, ok) in [
        (true, true, true),
        (true, false, false),
        (false, true, false),
    ] {
        let evb = if bgid { "group_ids = true" } else { "" };
        let mut lab = Lab::new(&bridge_cfg(NEG, evb));
        let mut h = Hand::new(0);
        let ans = h
            .lldp(&mut lab, S, station_tlv(true, sgid, lldpad_timers()), 120)
            .unwrap();
        assert_eq!(ans.bgid, bgid);
        let r = h.vdp(&mut lab, S, &[group_req()]);
        if ok {
            assert_eq!((r[0].mode, r[0].status), (Mode::Assoc, Status::ok()));
            assert_eq!(lab.vsis().len(), 1);
        } else {
            assert_eq!(r[0].mode, Mode::DeAssoc, "bgid {bgid} sgid {sgid}");
            assert_eq!(r[0].status.reason(), Reason::InvalidFormat);
            assert!(lab.vsis().is_empty());
        }
    }
}

/// Row 40: "EVB TLV arriving in an LLDPDU to 01-80-C2-00-00-0E → ignored."
#[test]
fn row_40_evb_tlv_to_nearest_bridge_ignored() {
    let mut lab = lab();
    let mut h = Hand::new(0);
    lab.step(0);
    lab.recv(0);
    let ans = h.lldp_to(
        &mut lab,
        S,
        station_tlv(true, false, lldpad_timers()),
        120,
        0x0e,
    );
    if let Some(a) = ans {
        assert!(
            !a.rrctr && !a.rrreq,
            "the station's request was not taken: {a:?}"
        );
    }
    assert!(!lab.rr(0));
    assert_eq!(lab.ctl.plane.ctr.lldp_other_agent, 1);
    assert!(lab
        .ctl
        .plane
        .evb(hairpin::types::PortId(0))
        .unwrap()
        .remote()
        .is_none());
}

/// Row 41: "LLDP TTL=0 or aged out → remote EVB info cleared, RRCTR=0, RR off."
#[test]
fn row_41_ttl_zero_or_aged_out_turns_rr_off() {
    let mut lab = lab();
    let mut h = Hand::new(0);
    assert!(h.negotiate(&mut lab, S).rrctr);
    let ans = h
        .lldp(
            &mut lab,
            2 * S,
            station_tlv(true, false, lldpad_timers()),
            0,
        )
        .unwrap();
    assert!(!ans.rrctr && !lab.rr(0), "TTL 0");
    // Aged out: TTL 2 s, nothing more from the station.
    assert!(
        h.lldp(
            &mut lab,
            3 * S,
            station_tlv(true, false, lldpad_timers()),
            2
        )
        .unwrap()
        .rrctr
    );
    assert!(lab.rr(0));
    lab.step(5 * S - 1);
    assert!(lab.rr(0));
    lab.step(5 * S);
    assert!(!lab.rr(0), "aged out");
    assert!(!last_evb(&lab.recv(0)).unwrap().rrctr);
    // Link down clears too.
    let mut e = Evb::new(EvbLocal {
        role: EvbRole::Bridge,
        rr: true,
        gid: false,
        timers: lldpad_timers(),
    });
    e.rx(0, Some(station_tlv(true, false, lldpad_timers())), 120);
    e.link_down();
    assert!(!e.rr_on());
}

/// Row 42: "ECP request `10 01 12 24` → one ACK `14 01 12 24` to the sender; payload passed to VDP once."
#[test]
fn row_42_ecp_request_acked_once() {
    let mut lab = lab();
    Hand::new(0).negotiate(&mut lab, S);
    let mut ulpdu = Vec::new();
    emit_manager_id(&[0; 16], &mut ulpdu);
    let mut f = ecp_frame(0x1224, &ulpdu);
    f[14..18].copy_from_slice(&[0x10, 0x01, 0x12, 0x24]);
    lab.send(0, &f);
    lab.step(S);
    let out = lab.recv(0);
    assert_eq!(ecp_headers(&out), vec![[0x14, 0x01, 0x12, 0x24]]);
    assert_eq!(out[0][..6], [0x01, 0x80, 0xc2, 0, 0, 0]);
    assert_eq!(lab.ctl.plane.bridge().ctr.rx_pdus, 1);
}

/// Row 43: "Same seq received 3 times → 3 ACKs, 1 delivery."
#[test]
fn row_43_duplicates_acked_delivered_once() {
    let mut lab = lab();
    Hand::new(0).negotiate(&mut lab, S);
    let mut ulpdu = Vec::new();
    emit_manager_id(&[0; 16], &mut ulpdu);
    for _ in 0..3 {
        lab.send(0, &ecp_frame(7, &ulpdu));
    }
    lab.step(S);
    let acks = ecp_headers(&lab.recv(0));
    assert_eq!(acks, vec![[0x14, 0x01, 0, 7]; 3]);
    assert_eq!(lab.ctl.plane.bridge().ctr.rx_pdus, 1);
    let e = lab.ctl.plane.ecp(hairpin::types::PortId(0)).unwrap();
    assert_eq!(e.ctr.rx_duplicates, 2);
}

/// Row 44: "Version ≠1 or unknown subtype → dropped, no ACK."
#[test]
fn row_44_bad_version_or_subtype_not_acked() {
    let mut lab = lab();
    Hand::new(0).negotiate(&mut lab, S);
    let mut v2 = ecp_frame(1, &[]);
    v2[14] = 0x20; // version 2
    let mut sub = ecp_frame(2, &[]);
    sub[15] = 0x02; // PE-CSP
    lab.send(0, &v2);
    lab.send(0, &sub);
    lab.step(S);
    assert!(ecp_headers(&lab.recv(0)).is_empty());
    let e = lab.ctl.plane.ecp(hairpin::types::PortId(0)).unwrap();
    assert_eq!((e.ctr.rx_bad_version, e.ctr.rx_bad_subtype), (1, 1));
    assert_eq!(lab.ctl.plane.bridge().ctr.rx_pdus, 0);
}

/// Row 45: "No ACK received → retransmit after 10 µs·2^RTE, at most R times; next PDU is seq+1; seq 0 never used."
#[test]
fn row_45_retransmit_r_times_then_next_seq() {
    let mut lab = lab();
    Hand::new(0).negotiate(&mut lab, S);
    let t = lab
        .ctl
        .plane
        .evb(hairpin::types::PortId(0))
        .unwrap()
        .timers();
    let ack_to = t.ack_timeout();
    assert_eq!(ack_to, 2_560_000);
    // A De-Associate of an unknown VSI: the bridge replies and we never ACK.
    let pdu = emit_pdu(&[0; 16], &[req(Mode::DeAssoc, 5, UUID_A, A, 100)]).unwrap();
    lab.send(0, &ecp_frame(1, &pdu));
    lab.step(S);
    let first: Vec<_> = ecp_headers(&lab.recv(0));
    assert_eq!(first, vec![[0x14, 0x01, 0, 1], [0x10, 0x01, 0, 1]]);
    let mut now = S;
    lab.step(now + ack_to - 1);
    assert!(lab.recv(0).is_empty(), "not before the ACK timer");
    for i in 1..=t.r {
        now += ack_to;
        lab.step(now);
        assert_eq!(
            ecp_headers(&lab.recv(0)),
            vec![[0x10, 0x01, 0, 1]],
            "retransmission {i}"
        );
    }
    now += ack_to;
    lab.step(now);
    assert!(lab.recv(0).is_empty(), "no more than R retransmissions");
    let e = lab.ctl.plane.ecp(hairpin::types::PortId(0)).unwrap();
    assert_eq!((e.ctr.retransmits, e.ctr.tx_errors), (u64::from(t.r), 1));
    // The next PDU is seq + 1.
    lab.send(0, &ecp_frame(2, &pdu));
    lab.step(now);
    assert_eq!(
        ecp_headers(&lab.recv(0)),
        vec![[0x14, 0x01, 0, 2], [0x10, 0x01, 0, 2]]
    );
    // Sequence numbers wrap past 0 (the ECP machine on its own).
    let mut e = Ecp::new();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..65537u32 {
        e.send(vec![]);
        out.clear();
        e.poll(0, t, &mut out);
        let seq = u16::from_be_bytes([out[0][2], out[0][3]]);
        seen.push(seq);
        let mut ack = out[0][..4].to_vec();
        ack[0] = 0x14;
        e.rx(&ack, &mut Vec::new());
    }
    assert!(!seen.contains(&0), "seq 0 never used");
    assert_eq!(seen[65534], 65535);
    assert_eq!(seen[65535], 1, "wraps to 1");
}

/// Row 46: "Link down/up → first PDU accepted whatever its seq."
#[test]
fn row_46_first_pdu_after_link_down_accepted() {
    let mut e = Ecp::new();
    let mut out = Vec::new();
    let req = [0x10, 0x01, 0x00, 0x05, 0xaa];
    assert_eq!(e.rx(&req, &mut out), Some(&[0xaa][..]));
    assert_eq!(e.rx(&req, &mut out), None, "duplicate");
    e.link_down();
    assert_eq!(e.rx(&req, &mut out), Some(&[0xaa][..]), "new after restart");
    assert_eq!(out.len(), 3, "every request ACKed");
    // Through the switch: link down turns RR off at once, link up restarts.
    let mut lab = lab();
    let mut h = Hand::new(0);
    h.negotiate(&mut lab, S);
    let p = hairpin::types::PortId(0);
    let fx = lab.ctl.plane.link(S, p, false);
    assert!(fx.rr_changed);
    assert_eq!(lab.ctl.plane.rr()[0], Some(false));
    lab.ctl.plane.link(S, p, true);
    let mut ulpdu = Vec::new();
    emit_manager_id(&[0; 16], &mut ulpdu);
    lab.send(0, &ecp_frame(9, &ulpdu));
    lab.step(S);
    lab.send(0, &ecp_frame(9, &ulpdu));
    lab.step(S);
    assert_eq!(lab.ctl.plane.bridge().ctr.rx_pdus, 1);
}

/// Row 47: "ECPDU whose first TLV is not a Manager ID, or has two Manager IDs, or an overlong TLV → whole PDU dropped."
#[test]
fn row_47_bad_pdu_structure_drops_whole_pdu() {
    let mut lab = lab();
    let mut h = Hand::new(0);
    h.negotiate(&mut lab, S);
    let good = emit_pdu(&[0; 16], &[req(Mode::Assoc, 5, UUID_A, A, 100)]).unwrap();
    let no_mgr = good[18..].to_vec();
    let mut two = good[..18].to_vec();
    two.extend_from_slice(&good);
    let mut overlong = good.clone();
    overlong[19] += 1; // the Associate claims one byte more than the PDU holds
    overlong.truncate(good.len());
    for bad in [&no_mgr, &two, &overlong] {
        let out = h.ecp(&mut lab, S, bad);
        assert!(vdp_tlvs(&out).is_empty(), "no VDP answer");
        assert_eq!(ecp_headers(&out).len(), 1, "ECP still ACKs");
    }
    let c = lab.ctl.plane.bridge().ctr;
    assert_eq!(
        (
            c.drop_no_manager_id,
            c.drop_two_manager_ids,
            c.drop_overlong
        ),
        (1, 1, 1)
    );
    assert!(lab.vsis().is_empty());
}

/// Row 48: "Associate (new VSI, MAC/VID) → Associate reply with status 0x40, fields echoed; VLAN/ACL/QoS/static FDB installed."
#[test]
fn row_48_associate_installs_everything() {
    let mut lab = lab();
    let mut h = Hand::new(0);
    h.negotiate(&mut lab, S);
    // A was learned (dynamically) on P2 before: the association must flush that.
    lab.send(1, &frame(A, Mac::BROADCAST, 100, 9));
    lab.step(S);
    assert_eq!(lab.fdb(A, 100), Some((1, false)));
    let rq = req(Mode::Assoc, 7, UUID_A, A, 100);
    let r = h.vdp(&mut lab, S, std::slice::from_ref(&rq));
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0],
        AssocRepr {
            status: Status(0x40),
            ..rq
        },
        "fields echoed"
    );
    let v = lab.vsis();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].1, v[0].2, v[0].3), (0, A, 100));
    assert_eq!(
        v[0].4.as_deref(),
        Some("deny-all"),
        "ACL/QoS policy attached"
    );
    assert!(lab.port_has_vlan(0, 100), "VLAN membership");
    assert_eq!(lab.fdb(A, 100), Some((0, true)), "static FDB entry");
    // The policy acts: deny-all drops A's frames.
    lab.send(0, &frame(A, X, 100, 1));
    lab.step(S);
    assert!(data(lab.recv(1)).is_empty());
    assert_eq!(lab.ctr("drops")["acl_deny"].as_u64(), Some(1));
}

/// Row 49: "Associate with VID 0 → reply carries the assigned VID (and PS+PCP when QoS is assigned)."
#[test]
fn row_49_vid_zero_gets_assigned_vid_and_pcp() {
    let mut lab = lab();
    let mut h = Hand::new(0);
    h.negotiate(&mut lab, S);
    let r = h.vdp(&mut lab, S, &[req(Mode::Assoc, 5, UUID_A, A, 0)]);
    assert_eq!(r[0].filters[0].vid, 100);
    assert!(!r[0].filters[0].ps, "type 5 assigns no PCP");
    let r = h.vdp(&mut lab, S, &[req(Mode::Assoc, 6, UUID_B, B, 0)]);
    let f = r[0].filters[0];
    assert_eq!((f.vid, f.ps, f.pcp), (200, true, 5));
    assert_eq!(r[0].status, Status::ok());
    assert!(lab.port_has_vlan(0, 200));
}

/// Row 50: "Pre-Assoc → ACK with no forwarding yet; Pre-Assoc-RR → resources reserved; then Associate → forwarding on."
#[test]
fn row_50_preassoc_then_assoc() {
    let mut lab = lab();
    let mut h = Hand::new(0);
    h.negotiate(&mut lab, S);
    let r = h.vdp(&mut lab, S, &[req(Mode::PreAssoc, 5, UUID_A, A, 100)]);
    assert_eq!((r[0].mode, r[0].status), (Mode::PreAssoc, Status::ok()));
    assert!(
        lab.vsis().is_empty() && lab.fdb(A, 100).is_none(),
        "no forwarding yet"
    );
    // Pre-Assoc-RR reserves a pool VLAN: another VSI gets the next one.
    let r = h.vdp(&mut lab, S, &[req(Mode::PreAssocRr, 6, UUID_B, B, 0)]);
    assert_eq!((r[0].mode, r[0].filters[0].vid), (Mode::PreAssocRr, 200));
    let c = Mac([0x52, 0x54, 0, 0, 0, 0x0c]);
    let mut uuid_c = UUID_B;
    uuid_c[15] = 0xca;
    let r = h.vdp(&mut lab, S, &[req(Mode::Assoc, 6, uuid_c, c, 0)]);
    assert_eq!(r[0].filters[0].vid, 201, "200 is reserved");
    // Pool exhausted: a third VSI of type 6 gets reason 2 (not hard).
    let mut uuid_d = UUID_B;
    uuid_d[15] = 0xd0;
    let r = h.vdp(&mut lab, S, &[req(Mode::Assoc, 6, uuid_d, X, 0)]);
    assert_eq!(r[0].mode, Mode::DeAssoc);
    assert_eq!(
        r[0].status,
        Status::response(false, false, Reason::InsufficientResources)
    );
    // Associate after Pre-Assoc: forwarding on.
    let r = h.vdp(&mut lab, S, &[req(Mode::Assoc, 5, UUID_A, A, 100)]);
    assert_eq!((r[0].mode, r[0].status), (Mode::Assoc, Status::ok()));
    assert_eq!(lab.fdb(A, 100), Some((0, true)));
    lab.send(0, &frame(A, X, 100, 1));
    lab.step(S);
    assert_eq!(data(lab.recv(1)).len(), 1);
}

/// Row 51: "De-Assoc of a known VSI → De-Assoc ACK; policy and FDB removed. De-Assoc of an unknown VSI → bare ACK."
#[test]
fn row_51_deassoc_known_and_unknown() {
    let (mut lab, mut h) = with_vsi(A, UUID_A);
    let r = h.vdp(&mut lab, S, &[req(Mode::DeAssoc, 5, UUID_A, A, 100)]);
    assert_eq!((r[0].mode, r[0].status), (Mode::DeAssoc, Status::ok()));
    assert!(lab.vsis().is_empty() && lab.fdb(A, 100).is_none());
    let unknown = req(Mode::DeAssoc, 5, UUID_B, B, 100);
    let r = h.vdp(&mut lab, S, std::slice::from_ref(&unknown));
    assert_eq!(
        r,
        vec![AssocRepr {
            status: Status::ok(),
            ..unknown
        }]
    );
    assert_eq!(lab.ctl.plane.bridge().ctr.unknown_deassoc, 1);
}

/// Row 52: "Repeated same-mode TLV (keep-alive) → ACK and timer restart; no re-provisioning."
#[test]
fn row_52_keepalive_restarts_timer_without_reprovisioning() {
    let (mut lab, mut h) = with_vsi(A, UUID_A);
    let gen = lab.inst.switch.cell.generation();
    let exp0 = lab.ctl.plane.bridge().vsis().next().unwrap().expires;
    let r = h.vdp(&mut lab, 5 * S, &[req(Mode::Assoc, 5, UUID_A, A, 100)]);
    assert_eq!(r[0].status, Status::ok());
    let exp1 = lab.ctl.plane.bridge().vsis().next().unwrap().expires;
    assert_eq!(exp1 - exp0, 4 * S, "timer restarted");
    assert_eq!(lab.inst.switch.cell.generation(), gen, "no new snapshot");
    assert_eq!(lab.ctl.plane.bridge().ctr.keepalives, 1);
}

/// Row 53: "No keep-alive for 1.5·(2^RKA+(2R+1)·2^RTE)·10 µs → unsolicited De-Assoc (status 0x00) sent and VSI deleted."
#[test]
fn row_53_keepalive_expiry_unsolicited_deassoc() {
    let (mut lab, mut h) = with_vsi(A, UUID_A);
    let limit = lldpad_timers().bridge_keepalive_timeout();
    assert_eq!(limit, 15_755_520_000);
    h.settle(&mut lab, S + limit - 1);
    assert_eq!(lab.vsis().len(), 1);
    lab.step(S + limit);
    let r = vdp_tlvs(&lab.recv(0));
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].mode, r[0].status), (Mode::DeAssoc, Status(0x00)));
    assert_eq!(r[0].vsiid, VsiId::uuid(UUID_A));
    assert!(lab.vsis().is_empty() && lab.fdb(A, 100).is_none());
}

/// A store that answers "pending" while `silent` is set.
struct Silent {
    inner: StaticStore,
    silent: Arc<AtomicBool>,
    fail: Arc<AtomicBool>,
}

impl PolicyStore for Silent {
    fn lookup(&mut self, now: Nanos, id: u32, version: u8) -> Lookup {
        if self.fail.load(Ordering::Relaxed) {
            return Lookup::Unreachable;
        }
        if self.silent.load(Ordering::Relaxed) {
            return Lookup::Pending;
        }
        self.inner.lookup(now, id, version)
    }
    fn describe(&self) -> String {
        "test store".into()
    }
}

fn silent_lab() -> (Lab, Arc<AtomicBool>, Arc<AtomicBool>) {
    let cfg = bridge_cfg(NEG, "");
    let c = Config::parse(&cfg).unwrap();
    let silent = Arc::new(AtomicBool::new(false));
    let fail = Arc::new(AtomicBool::new(false));
    let store = Silent {
        inner: StaticStore::from_config(&c).unwrap(),
        silent: silent.clone(),
        fail: fail.clone(),
    };
    (Lab::with_store(&cfg, Box::new(store)), silent, fail)
}

/// Row 54: "VSI manager silent for 2^RWD·10 µs: VSI already associated → reply with KEEP bit; otherwise De-Assoc."
#[test]
fn row_54_manager_timeout_keep_or_deassoc() {
    let (mut lab, silent, _) = silent_lab();
    let mut h = Hand::new(0);
    h.negotiate(&mut lab, S);
    let rwd = lldpad_timers().resource_wait();
    // Associated VSI, then a mode change while the manager is silent.
    assert_eq!(
        h.vdp(&mut lab, S, &[req(Mode::Assoc, 5, UUID_A, A, 100)])[0].status,
        Status::ok()
    );
    silent.store(true, Ordering::Relaxed);
    assert!(h
        .vdp(&mut lab, S, &[req(Mode::PreAssocRr, 5, UUID_A, A, 100)])
        .is_empty());
    assert!(
        vdp_tlvs(&h.settle(&mut lab, S + rwd - 1)).is_empty(),
        "still waiting"
    );
    let r = vdp_tlvs(&h.settle(&mut lab, S + rwd));
    assert_eq!(r[0].mode, Mode::PreAssocRr);
    assert!(r[0].status.keep(), "KEEP: previous state stays");
    assert_eq!(lab.vsis().len(), 1, "still associated");
    // New VSI while silent → De-Assoc.
    assert!(h
        .vdp(&mut lab, 2 * S, &[req(Mode::Assoc, 5, UUID_B, B, 100)])
        .is_empty());
    let r = vdp_tlvs(&h.settle(&mut lab, 2 * S + rwd));
    assert_eq!(r[0].mode, Mode::DeAssoc);
    assert!(!r[0].status.keep());
    assert_eq!(r[0].status.reason(), Reason::UnreachableManager);
    assert_eq!(lab.ctl.plane.bridge().ctr.store_timeouts, 2);
    // A late answer within the wait completes normally.
    let mut uuid_c = UUID_B;
    uuid_c[15] = 0xcc;
    let c = Mac([0x52, 0x54, 0, 0, 0, 0x0c]);
    assert!(h
        .vdp(&mut lab, 3 * S, &[req(Mode::Assoc, 5, uuid_c, c, 100)])
        .is_empty());
    silent.store(false, Ordering::Relaxed);
    let r = vdp_tlvs(&h.settle(&mut lab, 3 * S + 1));
    assert_eq!((r[0].mode, r[0].status), (Mode::Assoc, Status::ok()));
}

/// Row 55: "Policy fetch fails → De-Assoc with reason 2 (add HARD 0x10 if permanent); Keep failure → KEEP 0x20 + reason."
#[test]
fn row_55_policy_fetch_failure_reasons() {
    let (mut lab, _, fail) = silent_lab();
    let mut h = Hand::new(0);
    h.negotiate(&mut lab, S);
    // Unknown type: permanent.
    let r = h.vdp(&mut lab, S, &[req(Mode::Assoc, 42, UUID_A, A, 100)]);
    assert_eq!((r[0].mode, r[0].status), (Mode::DeAssoc, Status(0x52)));
    // Keep failure: established VSI, store unreachable on a mode change.
    assert_eq!(
        h.vdp(&mut lab, S, &[req(Mode::Assoc, 5, UUID_A, A, 100)])[0].status,
        Status::ok()
    );
    fail.store(true, Ordering::Relaxed);
    let r = h.vdp(&mut lab, S, &[req(Mode::PreAssoc, 5, UUID_A, A, 100)]);
    assert_eq!(r[0].mode, Mode::PreAssoc);
    assert_eq!(r[0].status, Status(0x40 | 0x20 | 3));
    assert_eq!(lab.vsis().len(), 1, "nothing half-removed");
    // New VSI while unreachable: De-Assoc, reason 3, not hard.
    let r = h.vdp(&mut lab, S, &[req(Mode::Assoc, 5, UUID_B, B, 100)]);
    assert_eq!((r[0].mode, r[0].status), (Mode::DeAssoc, Status(0x43)));
}

/// Row 56: "Bad VSIID or filter format → reason 1; bad VID/MAC/group → reason 5."
#[test]
fn row_56_invalid_requests_reason_codes() {
    let mut lab = lab();
    let mut h = Hand::new(0);
    h.negotiate(&mut lab, S);
    let enc = |r: &AssocRepr| {
        let mut b = Vec::new();
        r.emit(&mut b).unwrap();
        b
    };
    let base = req(Mode::Assoc, 5, UUID_A, A, 100);
    let mut cases: Vec<(Vec<u8>, Reason)> = Vec::new();
    let mut t = enc(&base);
    t[2 + 5] = 9; // VSIID format 9
    cases.push((t, Reason::InvalidFormat));
    cases.push((
        enc(&AssocRepr {
            vsiid: VsiId::uuid([0; 16]),
            ..base.clone()
        }),
        Reason::InvalidFormat,
    ));
    let mut t = enc(&base);
    t[2 + 22] = 9; // filter format 9
    cases.push((t, Reason::InvalidFormat));
    let mut bad_vid = base.clone();
    bad_vid.filters[0].vid = 4095;
    cases.push((enc(&bad_vid), Reason::InvalidFilter));
    let mut bad_mac = base.clone();
    bad_mac.filters[0].mac = Mac([0x01, 0, 0x5e, 0, 0, 1]);
    cases.push((enc(&bad_mac), Reason::InvalidFilter));
    let mut wrong_vlan = base.clone();
    wrong_vlan.filters[0].vid = 300; // not the type's VLAN
    cases.push((enc(&wrong_vlan), Reason::InvalidFilter));
    for (tlv, reason) in cases {
        let mut pdu = Vec::new();
        emit_manager_id(&[0; 16], &mut pdu);
        pdu.extend_from_slice(&tlv);
        let out = h.ecp(&mut lab, S, &pdu);
        let r: Vec<_> = out
            .iter()
            .filter(|f| f[12..14] == [0x89, 0x40] && f[14] == 0x10)
            .collect();
        assert_eq!(r.len(), 1, "one answer for {reason:?}");
        let st = r[0][14 + 4 + 18 + 2];
        assert_eq!(st & 0x40, 0x40, "a response");
        assert_eq!(
            hairpin::wire::vdp::Reason::from(st),
            reason,
            "status {st:#x}"
        );
        assert_eq!(r[0][14 + 4 + 18] >> 1, 4, "answered with a De-Associate");
    }
    assert!(lab.vsis().is_empty());
}

/// Row 57: "Associate of VSIID V on P3 while V is associated on P1 → P3 provisioned; P1's FDB for V's MAC/VID flushed; P1's state released on De-Assoc or keep-alive expiry."
#[test]
fn row_57_migration_moves_and_releases() {
    let (mut lab, mut h1) = with_vsi(A, UUID_A);
    let mut h3 = Hand::new(2);
    h3.negotiate(&mut lab, S);
    assert_eq!(lab.fdb(A, 100), Some((0, true)));
    let r = h3.vdp(&mut lab, 2 * S, &[req(Mode::Assoc, 5, UUID_A, A, 100)]);
    assert_eq!(r[0].status, Status::ok());
    assert_eq!(
        lab.fdb(A, 100),
        Some((2, true)),
        "P1's entry flushed, P3's installed"
    );
    let v: Vec<_> = lab.vsis().into_iter().map(|v| v.1).collect();
    assert_eq!(v, vec![2], "policy keyed to the new port");
    assert!(lab.port_has_vlan(2, 100) && !lab.port_has_vlan(0, 100));
    // X → A goes to P3 now.
    let f = frame(X, A, 100, 5);
    lab.send(1, &f);
    lab.step(2 * S);
    assert_eq!(data(lab.recv(2)), vec![f]);
    assert!(data(lab.recv(0)).is_empty());
    // P1's record is released by keep-alive expiry (P1's station crashed),
    // while P3 keeps sending keep-alives.
    let limit = lldpad_timers().bridge_keepalive_timeout();
    let mid = S + limit / 2 + S;
    assert_eq!(
        h3.vdp(&mut lab, mid, &[req(Mode::Assoc, 5, UUID_A, A, 100)])[0].status,
        Status::ok()
    );
    lab.step(S + limit);
    let r = vdp_tlvs(&lab.recv(0));
    assert_eq!(
        (r[0].mode, r[0].status),
        (Mode::DeAssoc, Status(0)),
        "P1 released"
    );
    assert!(vdp_tlvs(&lab.recv(2)).is_empty());
    assert_eq!(lab.fdb(A, 100), Some((2, true)), "P3 untouched");
    let _ = &mut h1;
}

/// Row 58: "M/S hint bits in requests are accepted, and the reply does not treat them as errors."
#[test]
fn row_58_ms_hints_accepted() {
    let mut lab = lab();
    let mut h = Hand::new(0);
    h.negotiate(&mut lab, S);
    for (m, s) in [(true, false), (false, true), (true, true)] {
        let mut r = req(Mode::Assoc, 5, UUID_A, A, 100);
        r.status = Status::request(m, s);
        let rep = h.vdp(&mut lab, S, &[r]);
        assert_eq!(rep[0].status, Status::ok(), "M {m} S {s}");
    }
    assert_eq!(lab.vsis().len(), 1);
    // The store types used above are what the config says.
    let c = Config::parse(&bridge_cfg(NEG, "")).unwrap();
    let mut st = StaticStore::from_config(&c).unwrap();
    assert_eq!(
        st.lookup(0, 6, 1),
        Lookup::Found(VsiType {
            id: 6,
            version: 1,
            vlan: VlanSpec::Pool(200, 201),
            policy: None,
            pcp: Some(5)
        })
    );
}
