//! Conformance matrix (docs: /work/shared/qbg.md §4), rows 1–26: the
//! bridge role with reflective relay. Setup as in the matrix: ports P1
//! (station S1 with VMs A and B), P2 (host X), P3 (station S2 with VM C), VLAN
//! 10, reflective relay on P1 unless a row says otherwise. Every test replays
//! pcaps through the real pipeline and checks the exact bytes leaving every
//! port plus the counters and the FDB.

mod common;

use common::*;
use hairpin::stats::DropReason;

/// `[[vm]]` table: in the bridge role a static FDB entry.
fn vm(name: &str, mac: hairpin::types::Mac, vlan: u16, port: &str) -> String {
    format!("[[vm]]\nname = \"{name}\"\nmac = \"{mac}\"\nvlan = {vlan}\nport = \"{port}\"\n")
}

/// Row 1: "A→B unicast, B learned on P1 → out P1 only."
#[test]
fn row_01_known_unicast_reflected() {
    let learn_b = fr(B, BC, 1);
    let f = fr(A, B, 2);
    let o = run(
        &cfg_rr(),
        &seq(vec![("p1", learn_b.clone()), ("p1", f.clone())]),
    );
    o.assert_egress(&[
        ("p1", vec![learn_b.clone(), f]),
        ("p2", vec![learn_b.clone()]),
        ("p3", vec![learn_b]),
    ]);
    // The broadcast and the unicast both went back out P1.
    assert_eq!(o.ctr("reflected"), 2);
    assert_eq!(o.fdb_at(B, 10), Some(("p1".into(), false)));
    o.assert_drops(&[]);
}

/// Row 2: "Row 1 with RR off → nothing sent."
#[test]
fn row_02_known_unicast_rr_off_dropped() {
    let learn_b = fr(B, BC, 1);
    let f = fr(A, B, 2);
    let o = run(
        &cfg3("", "", "", "", ""),
        &seq(vec![("p1", learn_b.clone()), ("p1", f)]),
    );
    o.assert_egress(&[("p2", vec![learn_b.clone()]), ("p3", vec![learn_b])]);
    assert_eq!(o.ctr("reflected"), 0);
    o.assert_drops(&[(DropReason::HairpinOff, 1)]);
}

/// Row 3: "A→X, X on P2 → out P2 only; no copy to P1."
#[test]
fn row_03_unicast_to_other_port() {
    let learn_x = fr(X, BC, 1);
    let f = fr(A, X, 2);
    let o = run(
        &cfg_rr(),
        &seq(vec![("p2", learn_x.clone()), ("p1", f.clone())]),
    );
    o.assert_egress(&[
        ("p1", vec![learn_x.clone()]),
        ("p2", vec![f]),
        ("p3", vec![learn_x]),
    ]);
    assert_eq!(o.ctr("reflected"), 0);
    o.assert_drops(&[]);
}

/// Row 4: "A→unknown MAC, RR on → P1, P2, P3."
#[test]
fn row_04_unknown_unicast_flood_rr_on() {
    let f = fr(A, D, 1);
    let o = run(&cfg_rr(), &seq(vec![("p1", f.clone())]));
    o.assert_egress(&[
        ("p1", vec![f.clone()]),
        ("p2", vec![f.clone()]),
        ("p3", vec![f]),
    ]);
    assert_eq!(o.ctr("reflected"), 1);
    assert_eq!(o.ctr("flood_copies"), 2);
    o.assert_drops(&[]);
}

/// Row 5: "Row 4 with RR off → P2, P3 only."
#[test]
fn row_05_unknown_unicast_flood_rr_off() {
    let f = fr(A, D, 1);
    let o = run(&cfg3("", "", "", "", ""), &seq(vec![("p1", f.clone())]));
    o.assert_egress(&[("p2", vec![f.clone()]), ("p3", vec![f])]);
    assert_eq!(o.ctr("reflected"), 0);
    o.assert_drops(&[]);
}

/// Row 6: "A broadcast, RR on → P1, P2, P3 (+ CPU port if any)." (No CPU port
/// in replay: `punted` stays 0.)
#[test]
fn row_06_broadcast_rr_on() {
    let f = fr(A, BC, 1);
    let o = run(&cfg_rr(), &seq(vec![("p1", f.clone())]));
    o.assert_egress(&[
        ("p1", vec![f.clone()]),
        ("p2", vec![f.clone()]),
        ("p3", vec![f]),
    ]);
    assert_eq!(o.ctr("reflected"), 1);
    assert_eq!(o.ctr("punted"), 0);
    o.assert_drops(&[]);
}

/// Row 7: "Unregistered multicast from A, RR on → every port whose mcast-flood
/// is on, P1 included." P3 has `flood_multicast = false`; a broadcast still
/// reaches it (the flag is for multicast only).
#[test]
fn row_07_unregistered_multicast_honours_mcast_flood() {
    let m = fr(A, MC, 1);
    let b = fr(A, BC, 2);
    let o = run(
        &cfg3(
            "",
            "reflective_relay = true",
            "",
            "flood_multicast = false",
            "",
        ),
        &seq(vec![("p1", m.clone()), ("p1", b.clone())]),
    );
    o.assert_egress(&[
        ("p1", vec![m.clone(), b.clone()]),
        ("p2", vec![m, b.clone()]),
        ("p3", vec![b]),
    ]);
    assert_eq!(o.ctr("reflected"), 2);
    o.assert_drops(&[]);
}

/// Row 8: "Registered group (members P1, P2) from A → P1 and P2; not P3."
#[test]
fn row_08_registered_group_to_members() {
    let g = hairpin::types::Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0x08]);
    let mdb = format!("[[mdb]]\ngroup = \"{g}\"\nvlan = 10\nports = [\"p1\", \"p2\"]\n");
    let f = fr(A, g, 1);
    let o = run(
        &cfg3("", "reflective_relay = true", "", "", &mdb),
        &seq(vec![("p1", f.clone())]),
    );
    o.assert_egress(&[("p1", vec![f.clone()]), ("p2", vec![f])]);
    assert_eq!(o.ctr("reflected"), 1);
    o.assert_drops(&[]);
}

/// Row 9: "Multicast-to-unicast port: the copy for a receiver whose MAC equals
/// the source is not sent back on P1." P1 has `multicast_to_unicast = true`;
/// the group's hosts on P1 are A and B: B gets a unicast copy (destination
/// rewritten to B), A (the sender) gets none; P2 (a plain member) gets the
/// multicast frame.
#[test]
fn row_09_mcast_to_unicast_no_copy_to_sender() {
    let g = hairpin::types::Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0x09]);
    let mdb = format!(
        "[[mdb]]\ngroup = \"{g}\"\nvlan = 10\nports = [\"p1\", \"p2\"]\n\
         hosts = [{{ port = \"p1\", mac = \"{A}\" }}, {{ port = \"p1\", mac = \"{B}\" }}]\n"
    );
    let f = fr(A, g, 1);
    let o = run(
        &cfg3(
            "",
            "reflective_relay = true\nmulticast_to_unicast = true",
            "",
            "",
            &mdb,
        ),
        &seq(vec![("p1", f.clone())]),
    );
    o.assert_egress(&[("p1", vec![with_dst(&f, B)]), ("p2", vec![f])]);
    assert!(
        o.port("p1").iter().all(|c| c[..6] != A.0),
        "a copy went back to the sender A"
    );
    o.assert_drops(&[]);
}

/// Row 10: "Frames to 01-80-C2-00-00-00/-03/-0E arriving on P1 → punted to the
/// control plane, never relayed or reflected." Also LLDP (0x88CC) and ECP
/// (0x8940) by ethertype, addressed to B (a static entry on P1) and to
/// broadcast: punted, not reflected.
#[test]
fn row_10_reserved_and_control_frames_punted() {
    let ll = |last: u8| hairpin::types::Mac([0x01, 0x80, 0xc2, 0, 0, last]);
    let frames = vec![
        ("p1", fr(A, ll(0x00), 1)),
        ("p1", fr(A, ll(0x03), 2)),
        ("p1", fr(A, ll(0x0e), 3)),
        (
            "p1",
            hairpin::wire::FrameBuilder::new()
                .src(A)
                .dst(B)
                .ethertype(0x88cc)
                .payload(&[4; 16])
                .raw(),
        ),
        (
            "p1",
            hairpin::wire::FrameBuilder::new()
                .src(A)
                .dst(BC)
                .ethertype(0x8940)
                .payload(&[5; 16])
                .raw(),
        ),
    ];
    let o = run(
        &cfg3("", "reflective_relay = true", "", "", &vm("b", B, 10, "p1")),
        &seq(frames),
    );
    o.assert_egress(&[]);
    assert_eq!(o.ctr("punted"), 5);
    assert_eq!(o.ctr("reflected"), 0);
    o.assert_drops(&[]);
}

/// Row 11: "Pause frame to 01-80-C2-00-00-01 → dropped."
#[test]
fn row_11_pause_dropped() {
    let pause = hairpin::wire::FrameBuilder::new()
        .src(A)
        .dst(hairpin::types::Mac([0x01, 0x80, 0xc2, 0, 0, 0x01]))
        .ethertype(0x8808)
        .payload(&[0x00, 0x01, 0xff, 0xff])
        .raw();
    let o = run(&cfg_rr(), &seq(vec![("p1", pause)]));
    o.assert_egress(&[]);
    assert_eq!(o.ctr("punted"), 0);
    o.assert_drops(&[(DropReason::Pause, 1)]);
}

/// Row 12: "P1 with unknown-unicast flooding off → row 4 gives P2, P3 only."
/// (`flood_unknown = false`; broadcast is still flooded to P1.)
#[test]
fn row_12_flood_unknown_off() {
    let f = fr(A, D, 1);
    let b = fr(A, BC, 2);
    let o = run(
        &cfg3(
            "",
            "reflective_relay = true\nflood_unknown = false",
            "",
            "",
            "",
        ),
        &seq(vec![("p1", f.clone()), ("p1", b.clone())]),
    );
    o.assert_egress(&[
        ("p1", vec![b.clone()]),
        ("p2", vec![f.clone(), b.clone()]),
        ("p3", vec![f, b]),
    ]);
    assert_eq!(o.ctr("reflected"), 1);
    o.assert_drops(&[]);
}

/// Row 13: "P1 isolated + RR → no reflection to P1 (both ends isolated)."
/// A hairpin's two ends are the same port, so P1 alone isolated already
/// blocks reflection; with P1 and P2 both isolated, floods reach P3 only.
#[test]
fn row_13_isolated_no_reflection() {
    let to_b = fr(A, B, 1);
    let unk = fr(A, D, 2);
    let bc = fr(A, BC, 3);
    let events = seq(vec![
        ("p1", to_b.clone()),
        ("p1", unk.clone()),
        ("p1", bc.clone()),
    ]);
    let static_b = vm("b", B, 10, "p1");

    // Only P1 isolated.
    let o = run(
        &cfg3(
            "",
            "reflective_relay = true\nisolated = true\nsource_guard = false",
            "",
            "",
            &static_b,
        ),
        &events,
    );
    o.assert_egress(&[
        ("p2", vec![unk.clone(), bc.clone()]),
        ("p3", vec![unk.clone(), bc.clone()]),
    ]);
    assert_eq!(o.ctr("reflected"), 0);
    o.assert_drops(&[(DropReason::Isolated, 1)]);

    // P1 and P2 isolated.
    let o = run(
        &cfg3(
            "",
            "reflective_relay = true\nisolated = true\nsource_guard = false",
            "isolated = true",
            "",
            &static_b,
        ),
        &events,
    );
    o.assert_egress(&[("p3", vec![unk, bc])]);
    assert_eq!(o.ctr("reflected"), 0);
    o.assert_drops(&[(DropReason::Isolated, 1)]);
}

/// Row 14: "P1 in blocking/learning state → nothing reflected or forwarded."
/// Blocking: nothing learned either. Learning: the source is learned, but a
/// frame towards it from P2 is not sent to P1.
#[test]
fn row_14_blocking_and_learning_state() {
    let a_bc = fr(A, BC, 1);
    let a_unk = fr(A, D, 2);
    let x_bc = fr(X, BC, 3);
    let x_to_a = fr(X, A, 4);
    let events = seq(vec![
        ("p1", a_bc),
        ("p1", a_unk),
        ("p2", x_bc.clone()),
        ("p2", x_to_a.clone()),
    ]);

    let o = run(
        &cfg3(
            "",
            "reflective_relay = true\nstate = \"blocking\"",
            "",
            "",
            "",
        ),
        &events,
    );
    // X→A: A unknown, flooded to P3 only.
    o.assert_egress(&[("p3", vec![x_bc.clone(), x_to_a.clone()])]);
    assert_eq!(o.ctr("reflected"), 0);
    assert_eq!(o.fdb(), vec![row(X, 10, "p2", false)]);
    o.assert_drops(&[(DropReason::PortState, 2)]);

    let o = run(
        &cfg3(
            "",
            "reflective_relay = true\nstate = \"learning\"",
            "",
            "",
            "",
        ),
        &events,
    );
    // X→A: A is known on P1, which does not forward: dropped.
    o.assert_egress(&[("p3", vec![x_bc])]);
    assert_eq!(o.ctr("reflected"), 0);
    assert_eq!(
        o.fdb(),
        vec![row(A, 10, "p1", false), row(X, 10, "p2", false)]
    );
    o.assert_drops(&[(DropReason::PortState, 3)]);
}

/// Row 15: "A→SW's own MAC → delivered locally, not reflected."
#[test]
fn row_15_own_mac_punted_not_reflected() {
    let f = fr(A, SW, 1);
    let o = run(
        &cfg3(
            &format!("mac = \"{SW}\""),
            "reflective_relay = true",
            "",
            "",
            "",
        ),
        &seq(vec![("p1", f)]),
    );
    o.assert_egress(&[]);
    assert_eq!(o.ctr("punted"), 1);
    assert_eq!(o.ctr("reflected"), 0);
    o.assert_drops(&[]);
}

const TRUNK_P1: &str = r#"
[switch]
role = "bridge"
[[port]]
name = "p1"
mode = "trunk"
vlans = [10, 20]
reflective_relay = true
[[port]]
name = "p2"
pvid = 10
[[port]]
name = "p3"
mode = "trunk"
vlans = [10]
"#;

/// Row 16: "P1 trunk {10,20}: tagged VID 10 A→B → back out P1 tagged VID 10."
/// (Also: B's learning broadcast leaves access P2 untagged and trunk P3 tagged.)
#[test]
fn row_16_trunk_reflected_tagged() {
    let learn_b = frv(B, BC, 10, 1);
    let f = frv(A, B, 10, 2);
    let o = run(
        TRUNK_P1,
        &seq(vec![("p1", learn_b.clone()), ("p1", f.clone())]),
    );
    o.assert_egress(&[
        ("p1", vec![learn_b.clone(), f]),
        ("p2", vec![untagged(&learn_b)]),
        ("p3", vec![learn_b]),
    ]);
    for e in o.port("p1") {
        assert_eq!(wire_vid(&e), Some(10));
    }
    assert_eq!(wire_vid(&o.port("p2")[0]), None);
    assert_eq!(o.ctr("reflected"), 2);
    o.assert_drops(&[]);
}

/// Row 17: "P1 untagged PVID 10: untagged A→B → back out P1 untagged."
#[test]
fn row_17_access_reflected_untagged() {
    let learn_b = fr(B, BC, 1);
    let f = fr(A, B, 2);
    let o = run(
        &cfg3(
            "",
            "reflective_relay = true",
            "mode = \"trunk\"\nvlans = [10]\npvid = 20",
            "",
            "",
        )
        // p2: trunk with VLAN 10 tagged (native VLAN 20, unused here)
        .replace("name = \"p2\"\npvid = 10\n", "name = \"p2\"\n"),
        &seq(vec![("p1", learn_b.clone()), ("p1", f.clone())]),
    );
    o.assert_egress(&[
        ("p1", vec![learn_b.clone(), f]),
        ("p2", vec![tagged(&learn_b, 10)]),
        ("p3", vec![learn_b]),
    ]);
    for e in o.port("p1") {
        assert_eq!(wire_vid(&e), None);
    }
    assert_eq!(o.ctr("reflected"), 2);
    o.assert_drops(&[]);
}

/// Row 18: "VID 30 not in P1's member set → dropped at ingress, no reflection."
#[test]
fn row_18_vid_not_member_dropped() {
    let cfg = format!("{TRUNK_P1}{}", vm("b", B, 10, "p1"));
    let o = run(
        &cfg,
        &seq(vec![
            ("p1", frv(A, BC, 30, 1)),
            ("p1", frv(A, B, 30, 2)),
            // untagged on a trunk without a native VLAN
            ("p1", fr(A, B, 3)),
        ]),
    );
    o.assert_egress(&[]);
    assert_eq!(o.ctr("reflected"), 0);
    assert_eq!(o.fdb(), vec![row(B, 10, "p1", true)]);
    o.assert_drops(&[(DropReason::VlanIngress, 3)]);
}

/// Row 19: "A (VID 10) → B's MAC, known only in VID 20 → flooded in VID 10 only."
#[test]
fn row_19_lookup_per_vlan() {
    let cfg = r#"
[switch]
role = "bridge"
[[port]]
name = "p1"
mode = "trunk"
vlans = [10, 20]
reflective_relay = true
[[port]]
name = "p2"
mode = "trunk"
vlans = [10, 20]
[[port]]
name = "p3"
pvid = 20
"#;
    let learn_b = frv(B, BC, 20, 1);
    let f = frv(A, B, 10, 2);
    let o = run(cfg, &seq(vec![("p2", learn_b.clone()), ("p1", f.clone())]));
    o.assert_egress(&[
        ("p1", vec![learn_b.clone(), f.clone()]),
        ("p2", vec![f]),
        ("p3", vec![untagged(&learn_b)]),
    ]);
    assert_eq!(wire_vid(&o.port("p1")[1]), Some(10));
    assert_eq!(
        o.fdb(),
        vec![row(A, 10, "p1", false), row(B, 20, "p2", false)]
    );
    assert_eq!(o.ctr("reflected"), 1);
    o.assert_drops(&[]);
}

/// Row 20: "After row 1: FDB A@P1 unchanged, no move event."
#[test]
fn row_20_hairpin_does_not_move_source() {
    let a_bc = fr(A, BC, 1);
    let b_bc = fr(B, BC, 2);
    let f = fr(A, B, 3);
    let o = run(
        &cfg_rr(),
        &seq(vec![
            ("p1", a_bc.clone()),
            ("p1", b_bc.clone()),
            ("p1", f.clone()),
        ]),
    );
    o.assert_egress(&[
        ("p1", vec![a_bc.clone(), b_bc.clone(), f]),
        ("p2", vec![a_bc.clone(), b_bc.clone()]),
        ("p3", vec![a_bc, b_bc]),
    ]);
    assert_eq!(
        o.fdb(),
        vec![row(A, 10, "p1", false), row(B, 10, "p1", false)]
    );
    assert_eq!(o.ctr("fdb_moves"), 0);
    assert_eq!(o.ctr("fdb_learned"), 2);
    o.assert_drops(&[]);
}

/// Row 21: "Frame on P2 with source A (dynamic entry on P1) → A moves to P2;
/// with a static/sticky entry → no move." (Static entry = `[[vm]]`.)
#[test]
fn row_21_station_move_dynamic_vs_static() {
    let a_bc = fr(A, BC, 1);
    let a_from_p2 = fr(A, D, 2);
    let c_to_a = fr(C, A, 3);

    // Dynamic: A moves to P2, then C→A goes to P2 only.
    let o = run(
        &cfg_rr(),
        &seq(vec![
            ("p1", a_bc.clone()),
            ("p2", a_from_p2.clone()),
            ("p3", c_to_a.clone()),
        ]),
    );
    o.assert_egress(&[
        ("p1", vec![a_bc.clone(), a_from_p2.clone()]),
        ("p2", vec![a_bc.clone(), c_to_a.clone()]),
        ("p3", vec![a_bc, a_from_p2.clone()]),
    ]);
    assert_eq!(o.fdb_at(A, 10), Some(("p2".into(), false)));
    assert_eq!(o.ctr("fdb_moves"), 1);
    o.assert_drops(&[]);

    // Static on P1: no move, C→A still goes to P1.
    let o = run(
        &cfg3("", "reflective_relay = true", "", "", &vm("a", A, 10, "p1")),
        &seq(vec![("p2", a_from_p2.clone()), ("p3", c_to_a.clone())]),
    );
    o.assert_egress(&[
        ("p1", vec![a_from_p2.clone(), c_to_a]),
        ("p3", vec![a_from_p2]),
    ]);
    assert_eq!(o.fdb_at(A, 10), Some(("p1".into(), true)));
    assert_eq!(o.ctr("fdb_moves"), 0);
    assert_eq!(o.ctr("fdb_learn_refused"), 1);
    o.assert_drops(&[]);
}

/// Row 22: "Frame whose source equals SW's local MAC → not learned or moved."
#[test]
fn row_22_own_mac_source_not_learned() {
    let f = fr(SW, D, 1);
    let x_to_sw = fr(X, SW, 2);
    let o = run(
        &cfg3(
            &format!("mac = \"{SW}\""),
            "reflective_relay = true",
            "",
            "",
            "",
        ),
        &seq(vec![("p1", f.clone()), ("p2", x_to_sw)]),
    );
    let sw = SW.to_string();
    assert!(
        o.fdb().iter().all(|(m, ..)| *m != sw),
        "switch MAC learned: {:?}",
        o.fdb()
    );
    // Forwarded like any frame (as Linux does), just not learned; the frame
    // to SW's MAC afterwards is punted, not sent towards P1.
    o.assert_egress(&[
        ("p1", vec![f.clone()]),
        ("p2", vec![f.clone()]),
        ("p3", vec![f]),
    ]);
    assert_eq!(o.ctr("punted"), 1);
    assert_eq!(o.ctr("fdb_moves"), 0);
    o.assert_drops(&[]);
}

/// Row 23: "Locked port P1: source MAC not associated → dropped, no learning;
/// source whose entry is on P3 → dropped, no roam." (`locked = true`;
/// associations are `[[vm]]` static entries: A on P1, C on P3.)
#[test]
fn row_23_locked_port() {
    let extra = format!("{}{}", vm("a", A, 10, "p1"), vm("c", C, 10, "p3"));
    let ok = fr(A, BC, 3);
    let o = run(
        &cfg3(
            "",
            "reflective_relay = true\nlocked = true\nsource_guard = false",
            "",
            "",
            &extra,
        ),
        &seq(vec![
            ("p1", fr(D, BC, 1)),
            ("p1", fr(C, BC, 2)),
            ("p1", ok.clone()),
        ]),
    );
    o.assert_egress(&[
        ("p1", vec![ok.clone()]),
        ("p2", vec![ok.clone()]),
        ("p3", vec![ok]),
    ]);
    assert_eq!(
        o.fdb(),
        vec![row(A, 10, "p1", true), row(C, 10, "p3", true)]
    );
    assert_eq!(o.ctr("fdb_moves"), 0);
    assert_eq!(o.ctr("fdb_learned"), 0);
    o.assert_drops(&[(DropReason::Locked, 2)]);
}

/// Row 24: "Per-VSI ACL "deny A→B": the hairpinned frame is dropped, while
/// A→X still passes." A's policy denies frames to B's MAC (from-vm rule,
/// default permit); B sits behind the same port P1, X behind P2.
#[test]
fn row_24_acl_deny_hairpinned() {
    let extra = format!(
        "[policy.a]\ndefault = \"permit\"\n[[policy.a.rule]]\naction = \"deny\"\ndst_mac = \"{B}\"\n{}{}{}",
        vm("a", A, 10, "p1").replace("port = \"p1\"\n", "port = \"p1\"\npolicy = \"a\"\n"),
        vm("b", B, 10, "p1"),
        vm("x", X, 10, "p2")
    );
    let to_b = fr(A, B, 1);
    let to_x = fr(A, X, 2);
    let o = run(
        &cfg3("", "reflective_relay = true", "", "", &extra),
        &seq(vec![("p1", to_b), ("p1", to_x.clone())]),
    );
    o.assert_egress(&[("p2", vec![to_x])]);
    assert_eq!(o.ctr("reflected"), 0);
    o.assert_drops(&[(DropReason::AclDeny, 1)]);
}

/// Row 25: "Per-VSI rate limit on A counts hairpinned and uplink traffic
/// together." A's meter (srTCM, CBS 64 bytes, red dropped) admits one
/// 60-byte frame in the same instant; A sends one hairpinned frame (to B,
/// same port) and then one to X (other port) 1 µs later: the second is red.
#[test]
fn row_25_rate_limit_counts_hairpin_and_uplink() {
    let extra = format!(
        "[meter.a]\ntype = \"srtcm\"\ncir = 8000\ncbs = 64\n{}{}{}",
        vm("a", A, 10, "p1").replace("port = \"p1\"\n", "port = \"p1\"\nmeter = \"a\"\n"),
        vm("b", B, 10, "p1"),
        vm("x", X, 10, "p2")
    );
    let to_b = fr(A, B, 1);
    let to_x = fr(A, X, 2);
    let o = run(
        &cfg3("", "reflective_relay = true", "", "", &extra),
        &[(T0, "p1", to_b.clone()), (T0 + 1, "p1", to_x)],
    );
    o.assert_egress(&[("p1", vec![to_b])]);
    o.assert_drops(&[(DropReason::MeterDrop, 1)]);
    let m = &o.json["meters"]["vm a"];
    assert_eq!(
        (m["green"].as_u64(), m["red"].as_u64()),
        (Some(1), Some(1)),
        "{m}"
    );
}

/// Row 26: "OpenFlow-style rule "output to port N" where N is the ingress port
/// → dropped; "output in_port" → reflected." Mapped onto this switch: a
/// static entry (`[[vm]]` B on P1) points the destination at the ingress
/// port. With RR off the frame is dropped (`hairpin_off`) like OpenFlow's
/// `output:<in_port>`; with RR on it is reflected like `output:in_port`.
#[test]
fn row_26_output_to_ingress_port() {
    let f = fr(A, B, 1);
    let static_b = vm("b", B, 10, "p1");

    // source_guard off: A is no VM of P1 (only B is declared there).
    let o = run(
        &cfg3("", "source_guard = false", "", "", &static_b),
        &seq(vec![("p1", f.clone())]),
    );
    o.assert_egress(&[]);
    assert_eq!(o.ctr("reflected"), 0);
    o.assert_drops(&[(DropReason::HairpinOff, 1)]);

    let o = run(
        &cfg3(
            "",
            "reflective_relay = true\nsource_guard = false",
            "",
            "",
            &static_b,
        ),
        &seq(vec![("p1", f.clone())]),
    );
    o.assert_egress(&[("p1", vec![f])]);
    assert_eq!(o.ctr("reflected"), 1);
    o.assert_drops(&[]);
}
