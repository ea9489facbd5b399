//! Conformance matrix (docs: /work/shared/qbg.md §4), rows 27–33: the
//! hypervisor edge roles. VM ports are access ports in VLAN 10 (untagged),
//! the uplink is a trunk carrying VLAN 10 tagged; VMs A, B, C are `[[vm]]`
//! entries behind ports `vm_a`, `vm_b`, `vm_c`; X is an external host.

mod common;

use common::*;
use hairpin::stats::DropReason;

/// An `edge-vepa` switch with VM ports in the given `vm_mode`s (a, b, c).
fn vepa(a: &str, b: &str, c: &str) -> String {
    format!(
        r#"
[switch]
role = "edge-vepa"
[[port]]
name = "up"
mode = "trunk"
vlans = [10]
uplink = true
[[port]]
name = "vm_a"
pvid = 10
vm_mode = "{a}"
[[port]]
name = "vm_b"
pvid = 10
vm_mode = "{b}"
[[port]]
name = "vm_c"
pvid = 10
vm_mode = "{c}"
[[vm]]
name = "a"
mac = "{A}"
vlan = 10
port = "vm_a"
[[vm]]
name = "b"
mac = "{B}"
vlan = 10
port = "vm_b"
[[vm]]
name = "c"
mac = "{C}"
vlan = 10
port = "vm_c"
"#
    )
}

fn all_vepa() -> String {
    vepa("vepa", "vepa", "vepa")
}

/// Row 27: "VEPA edge: A→B leaves on the uplink only; nothing delivered locally."
/// (A's broadcast too goes to the uplink only.)
#[test]
fn row_27_vepa_sends_everything_up() {
    let f = fr(A, B, 1);
    let b = fr(A, BC, 2);
    let o = run(
        &all_vepa(),
        &seq(vec![("vm_a", f.clone()), ("vm_a", b.clone())]),
    );
    o.assert_egress(&[("up", vec![tagged(&f, 10), tagged(&b, 10)])]);
    assert_eq!(o.ctr("reflected"), 0);
    o.assert_drops(&[]);
}

/// Row 28: "Edge: reflected unicast to B arrives on the uplink → delivered to B only."
#[test]
fn row_28_reflected_unicast_to_b_only() {
    let f = frv(A, B, 10, 1);
    let o = run(&all_vepa(), &seq(vec![("up", f.clone())]));
    o.assert_egress(&[("vm_b", vec![untagged(&f)])]);
    assert_eq!(wire_vid(&o.port("vm_b")[0]), None);
    o.assert_drops(&[]);
}

/// Row 29: "Edge: reflected broadcast with source A (VEPA) → to every
/// VEPA/bridge port except A." B is VEPA, C bridge-mode.
#[test]
fn row_29_reflected_broadcast_from_vepa_not_to_sender() {
    let f = frv(A, BC, 10, 1);
    let o = run(
        &vepa("vepa", "vepa", "bridge"),
        &seq(vec![("up", f.clone())]),
    );
    o.assert_egress(&[("vm_b", vec![untagged(&f)]), ("vm_c", vec![untagged(&f)])]);
    o.assert_drops(&[]);
}

/// Row 30: "Edge: reflected broadcast from a bridge-mode port → to VEPA ports
/// only." A and C are bridge-mode, B VEPA. On the way out A's broadcast went
/// to the uplink and, locally, to bridge-mode C; the reflected copy then
/// goes to B only.
#[test]
fn row_30_reflected_broadcast_from_bridge_mode() {
    let f = fr(A, BC, 1);
    let o = run(
        &vepa("bridge", "vepa", "bridge"),
        &seq(vec![("vm_a", f.clone()), ("up", tagged(&f, 10))]),
    );
    o.assert_egress(&[
        ("up", vec![tagged(&f, 10)]),
        ("vm_b", vec![f.clone()]),
        ("vm_c", vec![f]),
    ]);
    o.assert_drops(&[]);
}

/// Row 31: "Edge: reflected broadcast from a private-mode port → never to
/// siblings." A is private: its reflected broadcast and a reflected unicast
/// A→B are both dropped (`reflected`); nothing reaches B, C or A.
#[test]
fn row_31_private_mode_never_to_siblings() {
    let bc = fr(A, BC, 1);
    let uc = fr(A, B, 2);
    let o = run(
        &vepa("private", "vepa", "bridge"),
        &seq(vec![
            ("vm_a", bc.clone()),
            ("vm_a", uc.clone()),
            ("up", tagged(&bc, 10)),
            ("up", tagged(&uc, 10)),
        ]),
    );
    o.assert_egress(&[("up", vec![tagged(&bc, 10), tagged(&uc, 10)])]);
    o.assert_drops(&[(DropReason::Reflected, 2)]);
}

/// Row 32: "Edge: broadcast from external X → to every local port." Every
/// VM mode receives it, private included.
#[test]
fn row_32_external_broadcast_to_every_vm() {
    let f = frv(X, BC, 10, 1);
    let o = run(
        &vepa("vepa", "bridge", "private"),
        &seq(vec![("up", f.clone())]),
    );
    let u = untagged(&f);
    o.assert_egress(&[
        ("vm_a", vec![u.clone()]),
        ("vm_b", vec![u.clone()]),
        ("vm_c", vec![u]),
    ]);
    o.assert_drops(&[]);
}

/// Row 33: "VEB mode behind an RR uplink: a reflected copy of A's broadcast
/// must not relearn A on the uplink, and A must not receive it." Role
/// `edge-veb` (learning): A's broadcast is switched locally to B and sent up;
/// the adjacent bridge reflects it; the copy is dropped (`reflected`), A
/// stays on `vm_a` in the FDB, and B does not get a second copy.
#[test]
fn row_33_veb_drops_reflected_copy() {
    let cfg = r#"
[switch]
role = "edge-veb"
[[port]]
name = "up"
mode = "trunk"
vlans = [10]
uplink = true
[[port]]
name = "vm_a"
pvid = 10
[[port]]
name = "vm_b"
pvid = 10
"#;
    let f = fr(A, BC, 1);
    let o = run(cfg, &seq(vec![("vm_a", f.clone()), ("up", tagged(&f, 10))]));
    o.assert_egress(&[("up", vec![tagged(&f, 10)]), ("vm_b", vec![f])]);
    assert_eq!(o.fdb(), vec![row(A, 10, "vm_a", false)]);
    assert_eq!(o.ctr("fdb_moves"), 0);
    o.assert_drops(&[(DropReason::Reflected, 1)]);
}
