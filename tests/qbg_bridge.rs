//! 802.1Qbg end to end on ring ports: a hairpin bridge (data path + control
//! thread, stepped on simulated time) against hairpin station control planes
//! on the cable peers. EVB turns reflective relay on in the data path, VDP
//! installs VSIs with their policy and VLAN, keep-alive expiry and migration
//! clean up.

mod qbg_lab;

use hairpin::control::station::StationEvent;
use hairpin::types::PortId;
use hairpin::wire::vdp::{Mode, Reason, Status};
use qbg_lab::*;

const RR: &str = "reflective_relay = \"negotiate\"";

#[test]
fn evb_negotiation_turns_reflective_relay_on_in_the_data_path() {
    let mut lab = Lab::new(&bridge_cfg(RR, ""));
    let mut st = Station::new("", 0);
    lab.step(0);
    assert!(!lab.rr(0), "negotiate: off until the station asks");
    let seen = exchange(&mut lab, &mut [&mut st], S);
    assert!(lab.rr(0), "RRREQ from the station turned RR on");
    assert!(!lab.rr(2), "P3 has no station");
    assert!(
        st.plane.evb(PortId(0)).unwrap().rr_on(),
        "station saw RRCTR"
    );
    assert!(seen[0].iter().any(|f| f[12..14] == [0x88, 0xcc]));

    // VMs A and B on P1 get VLAN 100 (VID 0 → assigned), then A→B reflects.
    st.request(&mut lab, S, req(Mode::Assoc, 5, UUID_A, A, 0));
    st.request(&mut lab, S, req(Mode::Assoc, 5, UUID_B, B, 0));
    exchange(&mut lab, &mut [&mut st], S);
    let ev = st.plane.take_events();
    assert_eq!(ev.len(), 2, "{ev:?}");
    for (_, e) in &ev {
        let StationEvent::Acked { filters, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(filters[0].vid, 100, "the bridge assigned VLAN 100");
    }
    assert!(lab.port_has_vlan(0, 100));
    let f = frame(A, B, 100, 1);
    lab.send(0, &f);
    lab.step(S);
    assert_eq!(data(lab.recv(0)), vec![f], "hairpin turn on P1");
    assert!(data(lab.recv(1)).is_empty());
    assert_eq!(lab.ctr("reflected"), serde_json::json!(1));
}

#[test]
fn vdp_assoc_installs_the_vsi_and_deassoc_removes_it() {
    let mut lab = Lab::new(&bridge_cfg(RR, ""));
    let mut st = Station::new("", 0);
    exchange(&mut lab, &mut [&mut st], S);
    st.request(&mut lab, S, req(Mode::Assoc, 5, UUID_A, A, 100));
    let seen = exchange(&mut lab, &mut [&mut st], S);
    let r = vdp_tlvs(&seen[0]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, Status(0x40));
    assert_eq!(r[0].mode, Mode::Assoc);
    assert_eq!(r[0].filters[0].vid, 100);
    let v = lab.vsis();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].1, v[0].2, v[0].3), (0, A, 100));
    assert_eq!(v[0].4.as_deref(), Some("web"));
    assert_eq!(lab.fdb(A, 100), Some((0, true)), "static FDB entry");
    // Forwarding works: X on P2 reaches A on P1, A reaches X.
    let to_a = frame(X, A, 100, 2);
    lab.send(1, &to_a);
    lab.step(S);
    let from_a = frame(A, X, 100, 3);
    lab.send(0, &from_a);
    lab.step(S);
    assert_eq!(data(lab.recv(0)), vec![to_a]);
    assert_eq!(data(lab.recv(1)), vec![from_a]);
    // Anti-spoofing: B (not associated) may not send on P1.
    lab.send(0, &frame(B, X, 100, 4));
    lab.step(S);
    assert!(data(lab.recv(1)).is_empty());
    assert_eq!(lab.ctr("drops")["spoofed"].as_u64(), Some(1));

    st.request(&mut lab, 2 * S, req(Mode::DeAssoc, 5, UUID_A, A, 100));
    let seen = exchange(&mut lab, &mut [&mut st], 2 * S);
    let r = vdp_tlvs(&seen[0]);
    assert_eq!((r[0].mode, r[0].status), (Mode::DeAssoc, Status(0x40)));
    assert!(lab.vsis().is_empty());
    assert_eq!(lab.fdb(A, 100), None);
    assert!(!lab.port_has_vlan(0, 100), "VLAN left with its last VSI");
}

#[test]
fn keepalives_hold_and_their_absence_expires_the_vsi() {
    let mut lab = Lab::new(&bridge_cfg(RR, "rka = 10\nrte = 4\n"));
    let mut st = Station::new("rka = 10\nrte = 4\n", 0);
    exchange(&mut lab, &mut [&mut st], S);
    st.request(&mut lab, S, req(Mode::Assoc, 5, UUID_A, A, 0));
    exchange(&mut lab, &mut [&mut st], S);
    assert_eq!(lab.vsis().len(), 1);
    // RKA 10: keep-alive every 10.24 ms; bridge timeout 1.5 × (1024 + 7 × 16) × 10 µs = 17.04 ms.
    let mut now = S;
    for _ in 0..20 {
        now += 5_000_000;
        exchange(&mut lab, &mut [&mut st], now);
    }
    assert_eq!(lab.vsis().len(), 1, "keep-alives kept it");
    assert!(lab.ctl.plane.bridge().ctr.keepalives >= 5);
    // The station goes silent: the VSI lives until exactly the timeout after the last keep-alive.
    let exp = lab.ctl.plane.bridge().vsis().next().unwrap().expires;
    assert!(exp > now && exp <= now + 17_040_000, "{exp} vs {now}");
    lab.step(exp - 1);
    assert_eq!(lab.vsis().len(), 1);
    lab.recv(0);
    lab.step(exp);
    let out = lab.recv(0);
    let r = vdp_tlvs(&out);
    assert_eq!(r.len(), 1, "one unsolicited De-Associate");
    assert_eq!((r[0].mode, r[0].status), (Mode::DeAssoc, Status(0x00)));
    assert!(lab.vsis().is_empty());
    assert_eq!(lab.fdb(A, 100), None);
    assert_eq!(lab.ctl.plane.bridge().ctr.expired, 1);
}

#[test]
fn migration_to_a_second_port_moves_the_vsi() {
    let mut lab = Lab::new(&bridge_cfg(RR, ""));
    let mut s1 = Station::new("", 0);
    let mut s3 = Station::new("", 2);
    exchange(&mut lab, &mut [&mut s1, &mut s3], S);
    assert!(lab.rr(0) && lab.rr(2));
    s1.request(&mut lab, S, req(Mode::Assoc, 6, UUID_A, A, 0));
    s1.request(&mut lab, S, req(Mode::Assoc, 5, UUID_B, B, 100));
    exchange(&mut lab, &mut [&mut s1, &mut s3], S);
    let StationEvent::Acked { filters, .. } = &s1.plane.take_events()[0].1 else {
        panic!()
    };
    let vid = filters[0].vid;
    assert_eq!(vid, 200, "first VLAN of the pool");
    assert!(
        filters[0].ps && filters[0].pcp == 5,
        "PCP assigned by the type"
    );
    assert_eq!(lab.fdb(A, vid), Some((0, true)));
    // Pre-Associate at the destination: nothing moves yet.
    s3.request(&mut lab, 2 * S, req(Mode::PreAssoc, 6, UUID_A, A, 0));
    exchange(&mut lab, &mut [&mut s1, &mut s3], 2 * S);
    assert_eq!(lab.fdb(A, vid), Some((0, true)));
    // Associate at the destination (M hint set): the VSI moves, keeping its VLAN.
    let mut r = req(Mode::Assoc, 6, UUID_A, A, 0);
    r.status = Status::request(true, false);
    s3.request(&mut lab, 2 * S, r);
    let seen = exchange(&mut lab, &mut [&mut s1, &mut s3], 2 * S);
    let rep = vdp_tlvs(&seen[1]);
    let last = rep.last().unwrap();
    assert_eq!(last.status, Status(0x40), "M hint accepted");
    assert_eq!(last.filters[0].vid, vid, "same VLAN after the move");
    assert_eq!(lab.fdb(A, vid), Some((2, true)), "FDB points at P3");
    let on: Vec<_> = lab.vsis().into_iter().filter(|v| v.2 == A).collect();
    assert_eq!(on.len(), 1);
    assert_eq!(on[0].1, 2, "installed on P3 only");
    assert!(lab.port_has_vlan(2, vid));
    // A frame from A still arriving on P1 is dropped, not roamed.
    lab.send(0, &frame(A, B, vid, 9));
    lab.step(2 * S);
    assert!(data(lab.recv(0)).is_empty() && data(lab.recv(2)).is_empty());
    assert_eq!(lab.fdb(A, vid), Some((2, true)));
    // The source's De-Associate releases P1's record without touching P3.
    let mut d = req(Mode::DeAssoc, 6, UUID_A, A, 0);
    d.status = Status::request(false, true);
    s1.request(&mut lab, 3 * S, d);
    exchange(&mut lab, &mut [&mut s1, &mut s3], 3 * S);
    assert_eq!(lab.fdb(A, vid), Some((2, true)));
    assert!(!lab.port_has_vlan(0, vid), "VLAN left P1");
    assert!(lab.port_has_vlan(0, 100), "B still holds VLAN 100 on P1");
    let recs: Vec<_> = lab
        .ctl
        .plane
        .bridge()
        .vsis()
        .filter(|v| v.key.vsiid.bytes == UUID_A)
        .map(|v| v.key.port.0)
        .collect();
    assert_eq!(recs, vec![2]);
}

#[test]
fn unknown_type_is_refused_and_nothing_installed() {
    let mut lab = Lab::new(&bridge_cfg(RR, ""));
    let mut st = Station::new("", 0);
    exchange(&mut lab, &mut [&mut st], S);
    st.request(&mut lab, S, req(Mode::Assoc, 99, UUID_A, A, 0));
    let seen = exchange(&mut lab, &mut [&mut st], S);
    let r = vdp_tlvs(&seen[0]);
    assert_eq!(r[0].mode, Mode::DeAssoc);
    assert!(r[0].status.hard());
    assert_eq!(r[0].status.reason(), Reason::InsufficientResources);
    assert!(lab.vsis().is_empty());
    assert!(st.plane.station(PortId(0)).unwrap().vsis().next().is_none());
}

#[test]
fn punted_frames_are_rate_limited_and_counted() {
    let mut lab = Lab::new(&bridge_cfg(RR, "punt_rate = 10"));
    let st = Station::new("", 0);
    let mut out = Vec::new();
    let mut probe = st.plane;
    probe.tick(0, &mut out);
    let lldpdu = out.pop().unwrap().1;
    for _ in 0..30 {
        lab.send(0, &lldpdu);
    }
    lab.step(S);
    let c = lab.ctl.plane.ctr;
    assert_eq!(c.rx_frames, 30);
    assert_eq!(c.rate_limited, 20, "a bucket of one second at 10/s");
    assert_eq!(c.lldp_rx, 10);
    // A second later the bucket is full again.
    lab.send(0, &lldpdu);
    lab.step(2 * S);
    assert_eq!(lab.ctl.plane.ctr.lldp_rx, 11);
}

#[test]
fn control_tx_ring_and_punt_queue_full_are_counted() {
    let cfg = bridge_cfg(RR, "");
    let c = hairpin::config::Config::parse(&cfg).unwrap();
    let store = hairpin::control::store::StaticStore::from_config(&c).unwrap();
    let mut lab = Lab::with_depth(&cfg, Box::new(store), 2);
    let mut ulpdu = Vec::new();
    hairpin::wire::vdp::emit_manager_id(&[0; 16], &mut ulpdu);
    for seq in 1..=5 {
        lab.send(0, &ecp_frame(seq, &ulpdu));
    }
    lab.step(S);
    // The punt queue (two deep) took two of the five requests: three counted drops.
    assert_eq!(lab.ctr("drops")["punt_full"].as_u64(), Some(3));
    // P1 had its LLDPDU and two ACKs to send through a ring of two; P3 its LLDPDU.
    assert_eq!(lab.recv(0).len(), 2);
    assert_eq!(lab.recv(2).len(), 1);
    let t = lab.ctl.ctr;
    assert_eq!((t.tx_frames, t.tx_full), (3, 1), "{t:?}");
    // The next step sends again: the ring was drained by the worker.
    let mut ulpdu2 = Vec::new();
    hairpin::wire::vdp::emit_manager_id(&[0; 16], &mut ulpdu2);
    lab.send(0, &ecp_frame(6, &ulpdu2));
    lab.step(S);
    assert_eq!(lab.recv(0).len(), 1, "the ACK for seq 6");
}

#[test]
fn hairpin_station_gets_its_vm_vlan_from_hairpin_bridge() {
    let mut edge = Lab::new(&edge_cfg(5, 0));
    let mut br = Lab::new(&bridge_cfg(RR, ""));
    cable(&mut edge, 0, &mut br, 0, S);
    assert!(br.rr(0), "the edge asked for reflective relay");
    // The bridge installed A with type 5's VLAN and policy ...
    let v = br.vsis();
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0].1, v[0].2, v[0].3, v[0].4.as_deref()),
        (0, A, 100, Some("web"))
    );
    // ... and the edge applied the VLAN it was given to A's port and the uplink.
    let e = edge.vsis();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].0.as_str(), e[0].1, e[0].2, e[0].3), ("a", 1, A, 100));
    let m = edge.inst.switch.cell.load();
    assert_eq!(m.ports[1].pvid, 100);
    assert!(m.ports[0].vlans.contains(100));
    // A's untagged frame leaves the edge tagged 100 and reaches X behind P2.
    let mut f = frame(A, X, 100, 7);
    f.drain(12..16); // untagged on the VM port
    f.resize(60, 0);
    edge.send(1, &f);
    let (up, _) = cable(&mut edge, 0, &mut br, 0, S);
    assert_eq!(up.len(), 1);
    assert_eq!(&up[0][12..16], &[0x81, 0x00, 0x00, 100]);
    assert_eq!(data(br.recv(1)).len(), 1);
    // Keep-alives keep both sides associated over time, and an acknowledged
    // keep-alive changes nothing on the edge: no new snapshot.
    let snapshots = edge.ctl.applier.applied;
    let ka = hairpin::control::Timers::default().keepalive();
    for k in 1..=3 {
        cable(&mut edge, 0, &mut br, 0, S + k * ka);
    }
    assert_eq!(br.vsis().len(), 1);
    assert!(br.ctl.plane.bridge().ctr.keepalives >= 3);
    assert_eq!(edge.vsis().len(), 1);
    assert_eq!(
        edge.ctl.applier.applied, snapshots,
        "keep-alives republished"
    );
}

#[test]
fn hairpin_station_waits_for_the_bridge_evb_tlv_before_vdp() {
    let mut edge = Lab::new(&edge_cfg(5, 0));
    edge.step(S);
    let ecp = |fs: &[Vec<u8>]| fs.iter().filter(|f| f[12..14] == [0x89, 0x40]).count();
    let sent = edge.recv(0);
    assert!(!sent.is_empty(), "LLDP goes out");
    assert_eq!(ecp(&sent), 0, "no VDP before the bridge was heard");
    let ka = hairpin::control::Timers::default().keepalive();
    edge.step(S + 2 * ka);
    assert_eq!(ecp(&edge.recv(0)), 0);
    // The bridge appears: the Associate goes out with its first answer.
    let mut br = Lab::new(&bridge_cfg(RR, ""));
    cable(&mut edge, 0, &mut br, 0, S + 2 * ka);
    assert_eq!(br.vsis().len(), 1);
    assert_eq!(edge.vsis().len(), 1);
}

#[test]
fn hairpin_station_refused_installs_nothing_and_retries() {
    let mut edge = Lab::new(&edge_cfg(99, 0));
    let mut br = Lab::new(&bridge_cfg(RR, ""));
    cable(&mut edge, 0, &mut br, 0, S);
    assert!(br.vsis().is_empty() && edge.vsis().is_empty());
    assert_eq!(br.ctl.plane.bridge().ctr.rejected, 1);
    // One keep-alive period later the edge asks again (and is refused again).
    let ka = hairpin::control::Timers::default().keepalive();
    cable(&mut edge, 0, &mut br, 0, S + ka);
    assert_eq!(br.ctl.plane.bridge().ctr.rejected, 2);
}

#[test]
fn config_reload_keeps_vdp_vsis_and_takes_new_types() {
    let mut lab = Lab::new(&bridge_cfg(RR, ""));
    let mut st = Station::new("", 0);
    exchange(&mut lab, &mut [&mut st], S);
    st.request(&mut lab, S, req(Mode::Assoc, 5, UUID_A, A, 0));
    exchange(&mut lab, &mut [&mut st], S);
    assert_eq!(lab.vsis().len(), 1);
    // SIGHUP: the new config has one more VSI type.
    let new = bridge_cfg(RR, "") + "[[vsi_type]]\nid = 8\nversion = 1\nvlan = 100\n";
    let c = hairpin::config::Config::parse(&new).unwrap();
    lab.inst.reload(c.clone()).unwrap();
    assert!(
        lab.vsis().is_empty(),
        "the plain reload knows nothing of VDP"
    );
    lab.ctl.rebase_handle().rebase(c);
    lab.step(S);
    assert_eq!(lab.vsis().len(), 1, "the control thread put its VSIs back");
    assert!(lab.rr(0), "and the negotiated RR");
    st.request(&mut lab, S, req(Mode::Assoc, 8, UUID_B, B, 0));
    exchange(&mut lab, &mut [&mut st], S);
    assert_eq!(lab.vsis().len(), 2, "type 8 comes from the reloaded config");
}

/// What `hairpin run` does on SIGHUP with a control thread: the new config is
/// staged (checked, FDB updated) but not published, so the VDP VSIs stay in
/// the data path until the control thread publishes the new snapshot with
/// them on top — at no moment are they missing.
#[test]
fn staged_reload_never_drops_the_vdp_vsis() {
    let mut lab = Lab::new(&bridge_cfg(RR, ""));
    let mut st = Station::new("", 0);
    exchange(&mut lab, &mut [&mut st], S);
    st.request(&mut lab, S, req(Mode::Assoc, 5, UUID_A, A, 0));
    exchange(&mut lab, &mut [&mut st], S);
    assert_eq!(lab.vsis().len(), 1);
    let gen = lab.inst.switch.cell.generation();
    let new = bridge_cfg(RR, "") + "[[vsi_type]]\nid = 8\nversion = 1\nvlan = 100\n";
    let c = hairpin::config::Config::parse(&new).unwrap();
    lab.inst.stage_reload(c.clone()).unwrap();
    assert_eq!(
        lab.inst.switch.cell.generation(),
        gen,
        "nothing published yet"
    );
    assert_eq!(lab.vsis().len(), 1, "the old snapshot, VSI included, stays");
    lab.ctl.rebase_handle().rebase(c);
    lab.step(S);
    assert!(lab.inst.switch.cell.generation() > gen);
    assert_eq!(lab.vsis().len(), 1, "the new snapshot carries the VSI");
    assert!(lab.rr(0));
    st.request(&mut lab, S, req(Mode::Assoc, 8, UUID_B, B, 0));
    exchange(&mut lab, &mut [&mut st], S);
    assert_eq!(lab.vsis().len(), 2, "type 8 comes from the staged config");
}

#[test]
fn vsi_table_is_bounded_per_port() {
    let mut lab = Lab::new(&bridge_cfg(RR, "max_vsis_per_port = 2"));
    let mut st = Station::new("", 0);
    exchange(&mut lab, &mut [&mut st], S);
    for k in 0..3u8 {
        let mut u = UUID_A;
        u[15] = k + 1;
        let mut mac = A;
        mac.0[5] = 0x40 + k;
        st.request(&mut lab, S, req(Mode::PreAssoc, 5, u, mac, 100));
    }
    let seen = exchange(&mut lab, &mut [&mut st], S);
    let r = vdp_tlvs(&seen[0]);
    assert_eq!(r.len(), 3);
    assert_eq!(r.iter().filter(|t| t.status == Status::ok()).count(), 2);
    let refused: Vec<_> = r.iter().filter(|t| t.mode == Mode::DeAssoc).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].status.reason(), Reason::InsufficientResources);
    assert!(!refused[0].status.hard());
    assert_eq!(lab.ctl.plane.bridge().ctr.table_full, 1);
    assert_eq!(lab.ctl.plane.bridge().vsis().count(), 2);
}
