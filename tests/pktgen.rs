//! `hairpin pktgen` end to end on ring ports: accounting, errors, Ctrl-C,
//! and the comparison harness in a smoke configuration.

use hairpin::config::Config;
use hairpin::pktgen::stream::{parse_stream_flag, PktgenFile};
use hairpin::pktgen::topo::{self, HarnessArgs, Topology};
use hairpin::pktgen::{self, Overrides};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn last_core() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        - 1
}

fn bridge(extra: &str) -> String {
    format!(
        r#"
[switch]
role = "bridge"
workers = [{}]
[[port]]
name = "hv1"
mode = "access"
pvid = 10
reflective_relay = true
[[port]]
name = "hv2"
mode = "trunk"
vlans = [10]
{extra}
[[vm]]
name = "a"
mac = "02:00:00:00:00:01"
vlan = 10
port = "hv1"
[[vm]]
name = "b"
mac = "02:00:00:00:00:02"
vlan = 10
port = "hv1"
[[vm]]
name = "c"
mac = "02:00:00:00:00:03"
vlan = 10
port = "hv2"
"#,
        last_core()
    )
}

fn file(streams: &[&str], count: u64, rate: &str) -> PktgenFile {
    let mut f = PktgenFile {
        stream: streams
            .iter()
            .map(|s| parse_stream_flag(s).unwrap())
            .collect(),
        ..Default::default()
    };
    pktgen::prepare(
        &mut f,
        &Overrides {
            count: Some(count),
            rate: Some(hairpin::pktgen::stream::Val::S(rate.into())),
            ..Default::default()
        },
    )
    .unwrap();
    f
}

#[test]
fn every_frame_is_received_or_its_loss_counted() {
    let cfg = Config::parse(&bridge("")).unwrap();
    let f = file(
        &[
            "src=a,dst=b,size=imix",
            "src=c,dst=a,vlan=10,pcp=3,range.src_port=1000-1099",
            "src=a,dst=c,ip=ipv6,proto=tcp,size=128",
        ],
        2000,
        "20kpps",
    );
    let r = pktgen::run_switch(cfg, &f, Arc::new(AtomicBool::new(false))).unwrap();
    assert!(!r.run.partial);
    assert_eq!(r.run.foreign, 0);
    assert!(r.run.errors().is_empty(), "{:?}", r.run.errors());
    let switch_drops: u64 = r.switch.as_ref().unwrap().drops.values().sum();
    let refused: u64 = r.run.streams.iter().map(|s| s.refused).sum();
    for s in &r.run.streams {
        assert_eq!(s.offered, 2000, "{}", s.name);
        assert_eq!(s.received + s.lost, s.offered, "{}", s.name);
        assert_eq!((s.duplicates, s.wrong_port), (0, 0), "{}", s.name);
        let l = s.latency.as_ref().expect("latency recorded");
        assert_eq!(l.samples, s.received);
        assert!(l.min_ns <= l.p50_ns && l.p50_ns <= l.p99_ns && l.p99_ns <= l.max_ns);
    }
    // Every frame not received was refused at the switch's ingress or dropped with a reason.
    assert_eq!(
        r.run.lost,
        refused + switch_drops,
        "drops {:?}",
        r.switch.as_ref().unwrap().drops
    );
    assert_eq!(
        r.switch.as_ref().unwrap().rx_frames,
        r.run.offered - refused
    );
}

#[test]
fn a_receiver_that_sees_nothing_is_an_error() {
    let cfg = Config::parse(
        &bridge("[policy.none]\ndefault = \"deny\"\n")
            .replace("port = \"hv2\"\n", "port = \"hv2\"\npolicy = \"none\"\n"),
    )
    .unwrap();
    let f = file(&["src=a,dst=c", "src=a,dst=b"], 200, "10kpps");
    let r = pktgen::run_switch(cfg, &f, Arc::new(AtomicBool::new(false))).unwrap();
    let e = r.run.errors();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("stream \"a->c\": the receiver on \"c\" saw none of the 200 frames"),
        "{e:?}"
    );
    assert_eq!(r.run.streams[1].received, 200);
    assert!(r.switch.as_ref().unwrap().drops.values().sum::<u64>() >= 200);
}

#[test]
fn streams_that_cannot_run_name_the_field() {
    let cfg = Config::parse(&bridge("")).unwrap();
    let bad = |s: &str| {
        let f = PktgenFile {
            stream: vec![parse_stream_flag(s).unwrap()],
            ..Default::default()
        };
        pktgen::run_switch(cfg.clone(), &f, Arc::new(AtomicBool::new(false)))
            .err()
            .unwrap()
    };
    assert!(bad("src=a,dst=nobody").starts_with("stream[0].dst: unknown VM \"nobody\""));
    assert!(bad("src=a,dst=b,vlan=10")
        .starts_with("stream[0].vlan: VM \"a\" is on access port \"hv1\""));
    assert!(bad("src=a,dst=b,size=60").starts_with("stream[0].size: 60 is outside 64..=9000"));
    // A pcap port cannot be driven in process.
    let dir = std::env::temp_dir().join(format!("hp-pktgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = bridge("").replace(
        "name = \"hv2\"\n",
        &format!(
            "name = \"hv2\"\nbackend = \"pcap\"\npcap_out = \"{}\"\n",
            dir.join("o.pcap").display()
        ),
    );
    let cfg = Config::parse(&text).unwrap();
    let f = PktgenFile {
        stream: vec![parse_stream_flag("src=a,dst=c").unwrap()],
        ..Default::default()
    };
    let e = pktgen::run_switch(cfg, &f, Arc::new(AtomicBool::new(false)))
        .err()
        .unwrap();
    assert!(
        e.starts_with("stream[0].dst: VM \"c\" is on port \"hv2\" (backend \"pcap\")"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_keeps_partial_results() {
    let dir = std::env::temp_dir().join(format!("hp-pktgen-int-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfgp = dir.join("bridge.toml");
    std::fs::write(&cfgp, bridge("")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .args(["pktgen", "--config"])
        .arg(&cfgp)
        .args(["--duration", "60", "--rate", "5kpps", "--json", "--quiet"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let rc = send_sigint(child.id());
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "interrupted runs exit 130");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["partial"], true);
    assert!(j["offered"].as_u64().unwrap() > 0);
    assert!(j["seconds"].as_f64().unwrap() < 30.0);
    let _ = std::fs::remove_dir_all(&dir);
}

fn send_sigint(pid: u32) -> i32 {
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .map(|s| if s.success() { 0 } else { 1 })
        .unwrap_or(1)
}

#[test]
fn harness_smoke_shows_the_uplink_doubling() {
    let a = HarnessArgs {
        quick: false,
        sizes: vec!["64".into()],
        rules: vec![0, 10],
        vms: 2,
        repeats: 1,
        trial: 0.05,
        resolution: 10.0,
        tolerance: 0.0,
        line_rate: "50M".into(),
        vm_sweep: vec![],
        rule_sweep: vec![],
        switch_core: Some(last_core()),
        out_dir: None,
        command: "test".into(),
        commit: "test".into(),
        note: String::new(),
        from: None,
    };
    let r = topo::harness(&a, true, &AtomicBool::new(false)).unwrap();
    let names: Vec<_> = r.points.iter().map(|p| (p.topology, p.rules)).collect();
    assert_eq!(
        names,
        vec![
            (Topology::Hairpin, 0),
            (Topology::Local, 0),
            (Topology::Hairpin, 10),
            (Topology::LocalAcl, 10)
        ]
    );
    assert!(
        r.points.iter().any(|p| p.mpps > 0.0),
        "some load passed at 50 Mbit/s: {:?}",
        r.points
    );
    for p in &r.points {
        let run = &p.median_run;
        if p.mpps == 0.0 {
            continue; // no load passed on a very busy machine: nothing to check
        }
        match p.topology {
            Topology::Hairpin => {
                assert!((run.uplink_per_frame - 2.0).abs() < 0.05, "{run:?}");
                assert!(run.cycles_per_frame.contains_key("bridge"));
                assert!(run.cycles_per_frame.contains_key("edge-vepa"));
            }
            _ => {
                assert_eq!(run.uplink_per_frame, 0.0, "{run:?}");
                assert!(run.cycles_per_frame.contains_key("edge-veb"));
            }
        }
        assert!(run.latency.is_some());
    }
    let dir = std::env::temp_dir().join(format!("hp-harness-{}", std::process::id()));
    hairpin::pktgen::report::write(&r, &dir).unwrap();
    for f in [
        "report.md",
        "results.json",
        "throughput.svg",
        "latency-cdf.svg",
        "rules.svg",
    ] {
        let t = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(!t.is_empty(), "{f}");
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| hairpin | 64 | 10 | 2 |"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn harness_topologies_with_128_vms_use_three_edges_and_keep_streams_inside_them() {
    let core = last_core();
    let blocks = topo::edge_blocks(128);
    assert_eq!(blocks.len(), 3);
    let edge_of = |vm: &str| {
        let v: u32 = vm.strip_prefix("vm").unwrap().parse().unwrap();
        blocks.iter().position(|b| b.contains(&v)).unwrap()
    };
    for t in [Topology::Hairpin, Topology::Local] {
        let mut rig = topo::build(t, 128, "64", 0, core, "10G").unwrap();
        let n = rig.engine.streams().len();
        assert_eq!(n, 128);
        for (i, s) in rig.engine.streams().iter().enumerate() {
            assert_eq!(s.id as usize, i);
            assert_eq!(s.src_vm, format!("vm{}", i + 1));
            assert_eq!(edge_of(&s.src_vm), edge_of(&s.dst_vm), "{}", s.name);
        }
        // 50 frames per stream: at most 43 * 50 frames cross an uplink, fewer
        // than a ring holds (4096), so no ring can overflow.
        rig.engine.set_rates(&vec![Some(1000.0); n]);
        rig.engine.set_counts(Some(50));
        rig.engine.set_duration(None);
        let (r, sw) = std::thread::scope(|sc| {
            sc.spawn(|| {
                pktgen::pin_generator(&[core]);
                rig.trial(&AtomicBool::new(false))
            })
            .join()
            .unwrap()
        });
        rig.finish();
        assert!(!r.partial);
        assert!(r.errors().is_empty(), "{}: {:?}", t.name(), r.errors());
        for s in &r.streams {
            assert_eq!(s.offered, 50, "{} {}", t.name(), s.name);
            assert_eq!(s.received, 50, "{} {}: {s:?}", t.name(), s.name);
            assert_eq!(
                (s.wrong_port, s.duplicates),
                (0, 0),
                "{} {}",
                t.name(),
                s.name
            );
        }
        assert_eq!(r.foreign, 0);
        let up = topo::uplink_frames(&sw);
        let per = up as f64 / r.received.max(1) as f64;
        let cyc = topo::cycles_by_role(&sw);
        let reflected: u64 = sw.iter().map(|s| s.reflected).sum();
        match t {
            Topology::Hairpin => {
                assert_eq!(sw.len(), 4, "three edges and the bridge");
                // Every edge's uplink carried its own edge's frames, up and back.
                for (k, b) in blocks.iter().enumerate() {
                    let vms = (b.end() - b.start() + 1) as u64;
                    assert_eq!(sw[k].port_frames["uplink"], 2 * 50 * vms, "edge {}", k + 1);
                }
                assert_eq!(format!("{per:.2}"), "2.00", "{sw:?}");
                assert_eq!(up, 2 * r.received);
                assert_eq!(reflected, r.received);
                let keys: Vec<_> = cyc.keys().map(String::as_str).collect();
                assert_eq!(keys, ["bridge", "edge-vepa"]);
            }
            _ => {
                assert_eq!(sw.len(), 3, "three edges");
                assert_eq!(format!("{per:.2}"), "0.00");
                assert_eq!(up, 0, "{sw:?}");
                assert_eq!(reflected, 0);
                let keys: Vec<_> = cyc.keys().map(String::as_str).collect();
                assert_eq!(keys, ["edge-veb"]);
            }
        }
        assert!(cyc.values().all(|c| *c > 0.0), "{cyc:?}");
    }
}

#[test]
fn the_example_streams_file_compiles_against_the_example_config() {
    let root = env!("CARGO_MANIFEST_DIR");
    let cfg = Config::load(std::path::Path::new(&format!(
        "{root}/docs/configs/pktgen-bridge.toml"
    )))
    .unwrap();
    let f = PktgenFile::parse(
        &std::fs::read_to_string(format!("{root}/perf/pktgen-streams.toml")).unwrap(),
    )
    .unwrap();
    let s = hairpin::pktgen::stream::compile(&f.stream, &cfg, 1526).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[1].size_label, "imix");
    assert_eq!(f.pktgen.duration, Some(3.0));
    assert!(PktgenFile::parse("[pktgen]\nburst = \"x\"\n")
        .unwrap_err()
        .starts_with("pktgen.burst:"));
}

#[test]
fn a_pool_that_stays_empty_ends_the_run_with_an_error() {
    use hairpin::buf::Pool;
    use hairpin::pktgen::engine::{Engine, EngineCfg, GenQueues};
    use hairpin::port::ring::RingPort;
    let cfg = Config::parse(&bridge("")).unwrap();
    let pool = Arc::new(Pool::new(64, 1526).unwrap());
    let mut spec = parse_stream_flag("src=a,dst=c").unwrap();
    spec.count = Some(1000);
    let streams = hairpin::pktgen::stream::compile(&[spec], &cfg, pool.max_frame()).unwrap();
    // Nobody reads the far end: the 64 buffers end up in the ring and stay there.
    let (mut near, mut far) = RingPort::pair("x", 1, 4096);
    let (mut n2, _f2) = RingPort::pair("y", 1, 16);
    let qs: GenQueues = vec![
        ((0, 0), Box::new(far.take(0).unwrap())),
        ((1, 0), Box::new(n2.take(0).unwrap())),
    ];
    let mut e = Engine::new(
        streams,
        qs,
        vec![0],
        pool.clone(),
        EngineCfg {
            burst: 32,
            timestamps: true,
            duration: None,
            line_bps: 1e10,
            hz: pktgen::tsc_hz(),
            drain_ms: 10,
            window: None,
        },
    )
    .unwrap();
    let r = e.run(&AtomicBool::new(false));
    assert_eq!(r.offered, 64);
    assert!(r.pool_empty > 0);
    let err = r.streams[0].error.as_deref().unwrap();
    assert!(err.contains("raise switch.pool_size"), "{err}");
    let mut b = hairpin::buf::Burst::new(64);
    let mut q = near.take(0).unwrap();
    assert_eq!(q.rx(&mut b), 64);
    for f in b.drain() {
        pool.free(f);
    }
}
