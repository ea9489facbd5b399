//! The learn stage within one burst: a source the burst has already left
//! known on its port is not learned again, and a destination looked up since
//! the last FDB write of the burst takes the same answer. Each frame must
//! still see what the frames before it in the burst learned, moved or
//! refreshed, exactly as when every frame goes to the FDB.

use hairpin::config::Config;
use hairpin::harness::Harness;
use hairpin::types::Mac;
use hairpin::wire::build::FrameBuilder;

const X: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const Y: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);
const Z: Mac = Mac([0x02, 0, 0, 0, 0, 0x03]);
const BCAST: Mac = Mac([0xff; 6]);

/// Two access ports in VLAN 10 ("a" = 0, "b" = 1), reflective relay off.
fn bridge(extra_fdb: &str) -> Harness {
    let toml = format!(
        r#"
[switch]
workers = [0]
[switch.fdb]
{extra_fdb}
[[port]]
name = "a"
pvid = 10
[[port]]
name = "b"
pvid = 10
"#
    );
    Harness::new(Config::parse(&toml).expect("config"), true).expect("harness")
}

fn frame(src: Mac, dst: Mac, tag: u8) -> Vec<u8> {
    FrameBuilder::new()
        .src(src)
        .dst(dst)
        .payload(&[tag; 8])
        .raw()
}

/// Runs `frames` as one burst on port `port`; returns (egress port, tag) in order.
fn burst(h: &mut Harness, port: usize, frames: &[Vec<u8>], advance_ms: u64) -> Vec<(usize, u8)> {
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    h.run(port, &refs, advance_ms);
    h.take_output()
        .into_iter()
        .map(|(p, b)| (p, b[14]))
        .collect()
}

#[test]
fn a_source_learned_mid_burst_is_the_destination_of_the_frames_after_it() {
    let mut h = bridge("");
    // 1, 2: Y unknown → flooded to b. 3: Y learned on a (a broadcast: no
    // destination lookup in between). 4: Y is now on a, as X → hairpin_off,
    // not flooded with the answer frames 1 and 2 got.
    let out = burst(
        &mut h,
        0,
        &[
            frame(X, Y, 1),
            frame(X, Y, 2),
            frame(Y, BCAST, 3),
            frame(X, Y, 4),
        ],
        0,
    );
    assert_eq!(out, vec![(1, 1), (1, 2), (1, 3)]);
    let c = h.counters();
    assert_eq!(c.fdb_learned, 2, "X and Y, each once");
    assert_eq!(c.drops[hairpin::stats::DropReason::HairpinOff as usize], 1);
    h.check().expect("balanced");
}

#[test]
fn a_move_mid_burst_redirects_the_frames_after_it() {
    let mut h = bridge("");
    // Y behind b.
    assert_eq!(burst(&mut h, 1, &[frame(Y, Z, 0)], 0), vec![(0, 0)]);
    // 1: X learned on a, Y on b → b. 2: Y moves to a (a broadcast, flooded
    // to b). 3, 4: Y now on a → hairpin_off.
    let out = burst(
        &mut h,
        0,
        &[
            frame(X, Y, 1),
            frame(Y, BCAST, 2),
            frame(X, Y, 3),
            frame(X, Y, 4),
        ],
        0,
    );
    assert_eq!(out, vec![(1, 1), (1, 2)]);
    let c = h.counters();
    assert_eq!(c.fdb_moves, 1);
    assert_eq!(c.drops[hairpin::stats::DropReason::HairpinOff as usize], 2);
    h.check().expect("balanced");
}

#[test]
fn a_stale_destination_relearned_mid_burst_is_known_after_it() {
    let mut h = bridge("aging_s = 1");
    // Y behind b, then 2 s later (aged out, not yet swept) a burst from a.
    assert_eq!(burst(&mut h, 1, &[frame(Y, Z, 0)], 0), vec![(0, 0)]);
    // 1: Y stale → flooded to b. 2: Y learned again, on a (a broadcast).
    // 3: Y known on a → hairpin_off.
    let out = burst(
        &mut h,
        0,
        &[frame(X, Y, 1), frame(Y, BCAST, 2), frame(X, Y, 3)],
        2000,
    );
    assert_eq!(out, vec![(1, 1), (1, 2)]);
    assert_eq!(
        h.counters().drops[hairpin::stats::DropReason::HairpinOff as usize],
        1
    );
    h.check().expect("balanced");
}

#[test]
fn a_refused_source_is_counted_for_every_frame() {
    let mut h = bridge("per_port_limit = 1");
    assert_eq!(burst(&mut h, 0, &[frame(X, Y, 0)], 0), vec![(1, 0)]);
    // Port a is at its limit: Z is refused once per frame, as without the
    // burst's memory of sources, and every frame is still flooded.
    let out = burst(
        &mut h,
        0,
        &[frame(Z, Y, 1), frame(Z, Y, 2), frame(Z, Y, 3)],
        0,
    );
    assert_eq!(out, vec![(1, 1), (1, 2), (1, 3)]);
    let c = h.counters();
    assert_eq!(c.fdb_learned, 1);
    assert_eq!(c.fdb_learn_refused, 3);
    h.check().expect("balanced");
}
