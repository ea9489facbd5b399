//! `hairpin replay` itself: determinism (clock, burst size, input
//! interleaving), output files, counted drops, errors, and the binary's CLI.

mod common;

use common::*;
use hairpin::stats::DropReason;
use hairpin::wire::FrameBuilder;
use std::process::Command;

/// Ageing follows the capture clock: with `aging_s = 10`, A learned at t=0 is
/// still known at t=5 s (unicast to P1) and gone at t=20 s (flooded).
#[test]
fn ageing_is_deterministic() {
    let cfg = cfg3(
        "[switch.fdb]\naging_s = 10",
        "reflective_relay = true",
        "",
        "",
        "",
    );
    let learn_a = fr(A, BC, 1);
    let at5 = fr(X, A, 2);
    let at20 = fr(C, A, 3);
    let o = run(
        &cfg,
        &[
            (T0, "p1", learn_a.clone()),
            (T0 + 5 * SEC, "p2", at5.clone()),
            (T0 + 20 * SEC, "p3", at20.clone()),
        ],
    );
    o.assert_egress(&[
        ("p1", vec![learn_a.clone(), at5, at20.clone()]),
        ("p2", vec![learn_a.clone(), at20]),
        ("p3", vec![learn_a]),
    ]);
    // At the end (t=20 s) A (t=0) and X (t=5 s) have aged out; C is fresh.
    assert_eq!(o.fdb(), vec![row(C, 10, "p3", false)]);
    o.assert_drops(&[]);
}

/// Same as [`ageing_is_deterministic`], but the t=5 s and t=20 s frames come
/// in back to back on the same port, so replay may put them in one burst.
/// The frame at t=20 s must still see the t=20 s clock, not t=5 s.
#[test]
fn ageing_within_one_burst() {
    let cfg = cfg3(
        "[switch.fdb]\naging_s = 10",
        "reflective_relay = true",
        "",
        "",
        "",
    );
    let learn_a = fr(A, BC, 1);
    let at5 = fr(X, A, 2);
    let at20 = fr(X, A, 3);
    let o = run(
        &cfg,
        &[
            (T0, "p1", learn_a.clone()),
            (T0 + 5 * SEC, "p2", at5.clone()),
            (T0 + 20 * SEC, "p2", at20.clone()),
        ],
    );
    o.assert_egress(&[
        ("p1", vec![learn_a.clone(), at5, at20.clone()]),
        ("p2", vec![learn_a.clone()]),
        ("p3", vec![learn_a, at20]),
    ]);
}

/// Real captures carry Unix-epoch timestamps (~1.7e9 s). Learning must work
/// with them: B learned on P1, then A→B goes out P1 only.
#[test]
fn epoch_timestamps_learn() {
    let epoch = 1_700_000_000 * SEC;
    let learn_b = fr(B, BC, 1);
    let f = fr(A, B, 2);
    let o = run(
        &cfg_rr(),
        &[
            (epoch, "p1", learn_b.clone()),
            (epoch + MS, "p2", fr(X, BC, 3)),
            (epoch + 2 * MS, "p1", f.clone()),
        ],
    );
    assert_eq!(o.fdb_at(B, 10), Some(("p1".into(), false)));
    assert_eq!(o.port("p2").len(), 1, "A→B was flooded to P2");
    assert_eq!(o.port("p1").last(), Some(&f));
}

/// A deterministic mixed capture on three ports: unicast (known, unknown,
/// to stations first heard later), broadcast, multicast, a station that
/// roams between P2 and P3, control frames, runts.
fn mixed_capture() -> Vec<Ev> {
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let m = |i: u8| hairpin::types::Mac([0x02, 0, 0, 0, 1, i]);
    let roamer = m(0xee);
    let p1: Vec<_> = (0..8).map(m).collect();
    let p2: Vec<_> = (8..12).map(m).chain([roamer]).collect();
    let p3: Vec<_> = (12..16).map(m).chain([roamer]).collect();
    let ports: [(&str, &[hairpin::types::Mac]); 3] = [("p1", &p1), ("p2", &p2), ("p3", &p3)];
    let mut dsts: Vec<_> = (0..18).map(m).collect();
    dsts.extend([roamer, BC, MC]);
    let mut ev = Vec::new();
    let mut ts = T0;
    for i in 0..300u32 {
        let r = next();
        // Runs of several frames from one port, so bursts hold more than one frame.
        let (p, srcs) = ports[((r >> 8) % 3) as usize];
        for k in 0..(1 + (r % 6)) {
            let r2 = next();
            let src = srcs[(r2 % srcs.len() as u64) as usize];
            let dst = dsts[((r2 >> 16) % dsts.len() as u64) as usize];
            let id = (i * 7 + k as u32) as u8;
            let f = match (r2 >> 32) % 20 {
                0 => FrameBuilder::new()
                    .src(src)
                    .dst(dst)
                    .ethertype(0x88cc)
                    .payload(&[id; 8])
                    .raw(),
                1 => vec![id; 9],
                _ => FrameBuilder::new()
                    .src(src)
                    .dst(dst)
                    .payload(&[id; 12])
                    .ip_ident(i as u16)
                    .raw(),
            };
            ts += MS;
            ev.push((ts, p, f));
        }
    }
    ev
}

/// The burst size is a performance knob only: `--burst 1` and `--burst 32`
/// write the same frames to every port and count the same.
#[test]
fn burst_size_does_not_change_output() {
    let cfg = cfg3(
        "",
        "reflective_relay = true",
        "",
        "flood_multicast = false",
        "",
    );
    let ev = mixed_capture();
    let one = run_burst(&cfg, &ev, 1);
    let many = run_burst(&cfg, &ev, 32);
    assert!(one.egress.values().map(Vec::len).sum::<usize>() > 300);
    for (p, frames) in &one.egress {
        let other = &many.egress[p];
        assert_eq!(frames.len(), other.len(), "port {p}: frame count");
        for (i, (a, b)) in frames.iter().zip(other).enumerate() {
            assert_eq!(a, b, "port {p}: frame {i} (ts, bytes) differs");
        }
    }
    assert_eq!(one.json["counters"], many.json["counters"]);
    assert_eq!(one.fdb(), many.fdb());
}

/// Frames from two inputs are taken in timestamp order: X (on P2) is learned
/// from its frame at t=2 ms before A's frame to X at t=3 ms (on P1) is
/// forwarded, and P3 receives the floods in time order.
#[test]
fn inputs_interleaved_by_timestamp() {
    let a_bc = fr(A, BC, 1);
    let x_bc = fr(X, BC, 2);
    let a_x = fr(A, X, 3);
    let a_bc2 = fr(A, BC, 4);
    let o = run(
        &cfg_rr(),
        &[
            (T0 + MS, "p1", a_bc.clone()),
            (T0 + 3 * MS, "p1", a_x.clone()),
            (T0 + 4 * MS, "p1", a_bc2.clone()),
            (T0 + 2 * MS, "p2", x_bc.clone()),
        ],
    );
    o.assert_egress(&[
        ("p1", vec![a_bc.clone(), x_bc.clone(), a_bc2.clone()]),
        ("p2", vec![a_bc.clone(), a_x, a_bc2.clone()]),
        ("p3", vec![a_bc.clone(), x_bc.clone(), a_bc2.clone()]),
    ]);
    let ts: Vec<u64> = o.egress["p3"].iter().map(|(t, _)| *t).collect();
    assert_eq!(ts, vec![T0 + MS, T0 + 2 * MS, T0 + 4 * MS]);
}

/// Every port gets an output file, an empty (header-only) pcap when nothing
/// left it.
#[test]
fn silent_port_gets_empty_pcap() {
    let cfg = format!("{}[[port]]\nname = \"p4\"\npvid = 99\n", cfg_rr());
    let f = fr(A, BC, 1);
    let o = run(&cfg, &seq(vec![("p1", f.clone())]));
    let path = o.dir.join("out").join("p4.pcap");
    assert_eq!(std::fs::metadata(&path).expect("p4.pcap exists").len(), 24);
    assert!(read_pcap(&path).is_empty());
    o.assert_egress(&[
        ("p1", vec![f.clone()]),
        ("p2", vec![f.clone()]),
        ("p3", vec![f]),
    ]);
}

/// Runts, oversize frames, group and zero source addresses are dropped and
/// counted by reason; frames at exactly the MTU (plus 4 per tag) pass.
#[test]
fn bad_frames_counted() {
    let cfg = cfg3("", "", "", "", "");
    let sized = |n: usize| {
        FrameBuilder::new()
            .src(A)
            .dst(D)
            .frame_size(n)
            .no_pad()
            .raw()
    };
    let sized_tagged = |n: usize| {
        FrameBuilder::new()
            .src(A)
            .dst(D)
            .vlan(10)
            .frame_size(n)
            .no_pad()
            .raw()
    };
    let ok = sized(1518);
    let ok_tagged = sized_tagged(1522);
    assert_eq!((ok.len(), ok_tagged.len()), (1518, 1522));
    let o = run(
        &cfg,
        &seq(vec![
            ("p1", vec![0x02; 13]),
            ("p1", sized(1519)),
            ("p1", sized_tagged(1523)),
            ("p1", sized(20_000)),
            ("p1", fr(MC, D, 1)),
            ("p1", fr(hairpin::types::Mac::ZERO, D, 2)),
            ("p1", ok.clone()),
            ("p1", ok_tagged.clone()),
        ]),
    );
    // The tagged frame is classified to VLAN 10 and leaves the access ports untagged.
    let ok_untagged = untagged(&ok_tagged);
    o.assert_egress(&[
        ("p2", vec![ok.clone(), ok_untagged.clone()]),
        ("p3", vec![ok, ok_untagged]),
    ]);
    o.assert_drops(&[
        (DropReason::Runt, 1),
        (DropReason::Oversize, 3),
        (DropReason::BadSrcMac, 2),
    ]);
    assert_eq!(o.json["frames_in"], 8);
    assert!(o.fdb().iter().all(|(m, ..)| *m == A.to_string()));
}

/// Ethertypes the switch does not know are bridged like any other frame.
#[test]
fn unknown_ethertype_forwarded() {
    let learn_x = fr(X, BC, 1);
    let f1 = FrameBuilder::new()
        .src(A)
        .dst(X)
        .ethertype(0x1234)
        .payload(&[7; 20])
        .raw();
    let f2 = FrameBuilder::new()
        .src(A)
        .dst(BC)
        .ethertype(0xfff0)
        .payload(&[8; 20])
        .raw();
    let o = run(
        &cfg_rr(),
        &seq(vec![
            ("p2", learn_x.clone()),
            ("p1", f1.clone()),
            ("p1", f2.clone()),
        ]),
    );
    o.assert_egress(&[
        ("p1", vec![learn_x.clone(), f2.clone()]),
        ("p2", vec![f1, f2.clone()]),
        ("p3", vec![learn_x, f2]),
    ]);
    o.assert_drops(&[]);
}

/// An input that is not a pcap file is an error naming the file; so is a
/// record cut short after a valid header.
#[test]
fn garbage_input_is_error_naming_file() {
    let dir = tmpdir("garbage");
    let bad = dir.join("garbage-input.pcap");
    std::fs::write(&bad, b"this is not a capture file, just some text\n").unwrap();
    let cfg = hairpin::config::Config::parse(&cfg_rr()).unwrap();
    let err = hairpin::replay::replay(
        cfg.clone(),
        &[("p1".into(), bad.clone())],
        &dir.join("out"),
        32,
    )
    .expect_err("garbage accepted");
    assert!(err.contains("garbage-input.pcap"), "{err}");

    let cut = dir.join("cut-record.pcap");
    write_pcap(&cut, &[(T0, fr(A, BC, 1))]);
    let mut bytes = std::fs::read(&cut).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&cut, bytes).unwrap();
    let err = hairpin::replay::replay(cfg, &[("p1".into(), cut)], &dir.join("out2"), 32)
        .expect_err("truncated record accepted");
    assert!(err.contains("cut-record.pcap"), "{err}");
}

/// The `hairpin replay` command: reads the config and pcaps, writes the
/// egress pcaps, prints the counters as JSON on stdout.
#[test]
fn binary_replay_prints_json() {
    let dir = tmpdir("binary");
    let cfg = dir.join("switch.toml");
    std::fs::write(&cfg, cfg_rr()).unwrap();
    let f = fr(A, D, 1);
    let input = dir.join("p1-in.pcap");
    write_pcap(&input, &[(T0, f.clone())]);
    let out_dir = dir.join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .arg("replay")
        .arg("--config")
        .arg(&cfg)
        .arg("--in")
        .arg(format!("p1={}", input.display()))
        .arg("--out-dir")
        .arg(&out_dir)
        .arg("--burst")
        .arg("4")
        .output()
        .expect("run hairpin");
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(j["frames_in"], 1);
    assert_eq!(j["counters"]["reflected"], 1);
    assert_eq!(j["counters"]["drops_total"], 0);
    assert_eq!(j["fdb"][0]["mac"], A.to_string());
    assert_eq!(j["fdb"][0]["port"], "p1");
    for p in ["p1", "p2", "p3"] {
        let got = read_pcap(&out_dir.join(format!("{p}.pcap")));
        assert_eq!(got, vec![(T0, f.clone())], "port {p}");
    }
}

/// `hairpin check-config` fails (non-zero exit) on a bad config and names the key.
#[test]
fn check_config_names_bad_key() {
    let dir = tmpdir("checkcfg");
    let check = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_hairpin"))
            .arg("check-config")
            .arg(&path)
            .output()
            .expect("run hairpin")
    };
    let good = check("good.toml", &cfg_rr());
    assert!(good.status.success(), "{:?}", good);

    let bad = check("bad.toml", "[[port]]\nname = \"a\"\npvid = 5000\n");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("port[0].pvid"), "{err}");

    let typo = check(
        "typo.toml",
        "[[port]]\nname = \"a\"\n[[port]]\nname = \"b\"\nreflectiv_relay = true\n",
    );
    assert!(!typo.status.success());
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(err.contains("port[1].reflectiv_relay"), "{err}");
}

/// Learning follows frame order inside a burst too. (1) A→B arrives before
/// B's first frame, so it is flooded (B unknown) whatever the burst size.
/// (2) A is on P1; X→A then A's first frame from P2 arrive back to back on
/// P2: X→A must go to P1 (where A was), not be dropped as a hairpin to P2.
#[test]
fn learning_follows_frame_order_within_burst() {
    let a_b = fr(A, B, 1);
    let b_bc = fr(B, BC, 2);
    let ev = seq(vec![("p1", a_b.clone()), ("p1", b_bc.clone())]);
    for burst in [1, 32] {
        let o = run_burst(&cfg_rr(), &ev, burst);
        o.assert_egress(&[
            ("p1", vec![a_b.clone(), b_bc.clone()]),
            ("p2", vec![a_b.clone(), b_bc.clone()]),
            ("p3", vec![a_b.clone(), b_bc.clone()]),
        ]);
    }

    let a_bc = fr(A, BC, 3);
    let x_a = fr(X, A, 4);
    let a_moved = fr(A, D, 5);
    let ev = seq(vec![
        ("p1", a_bc.clone()),
        ("p2", x_a.clone()),
        ("p2", a_moved.clone()),
    ]);
    for burst in [1, 32] {
        let o = run_burst(&cfg_rr(), &ev, burst);
        o.assert_egress(&[
            ("p1", vec![a_bc.clone(), x_a.clone(), a_moved.clone()]),
            ("p2", vec![a_bc.clone()]),
            ("p3", vec![a_bc.clone(), a_moved.clone()]),
        ]);
        o.assert_drops(&[]);
        assert_eq!(o.fdb_at(A, 10), Some(("p2".into(), false)));
    }
}
