//! `hairpin pktgen export`: the TRex profile's embedded frames are the
//! frames `hairpin pktgen` builds for the same streams, its field-engine
//! variables are the streams' ranges; the pktgen-dpdk script's range and
//! sequence values are the streams' fields. The generated files parse
//! (`python3` / `luac -p`, skipped with the reason when missing), and the
//! committed perf/pktgen-hairpin.lua and perf/trex-hairpin.py are the
//! current export of perf/bare-metal-streams.toml.

use hairpin::config::Config;
use hairpin::pktgen::stream::{self, FieldRange, PktgenFile, Stream};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const CFG: &str = r#"
[switch]
role = "bridge"
workers = [0]
[[port]]
name = "hv1"
mode = "access"
pvid = 10
reflective_relay = true
[[port]]
name = "hv2"
mode = "trunk"
vlans = [10, 11, 12]
[[port]]
name = "hv3"
mode = "trunk"
vlans = [10]
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
[[vm]]
name = "d"
mac = "02:00:00:00:00:04"
vlan = 10
port = "hv3"
"#;

/// One stream per sending port: pktgen-dpdk range mode needs that.
const STREAMS: &str = r#"
[pktgen]
line_rate = "10G"
duration = 5

[[stream]]
name = "a-b"
src = "a"
dst = "b"
size = 128
rate = "1Mpps"
[stream.range]
src_port = "1000-1999/3"
dst_ip = { min = "10.0.1.1", max = "10.0.1.200", inc = 2, start = "10.0.1.11" }
size = "64-512/64"

[[stream]]
name = "c-a v6"
src = "c"
dst = "a"
vlan = 10
pcp = 6
ip = "ipv6"
proto = "tcp"
size = 256
rate = "20%"
count = 1000
[stream.range]
src_ip = "fd00::10-fd00::40/16"

[[stream]]
name = "d-b imix"
src = "d"
dst = "b"
pcp = 2
vlan = 10
size = "imix"
"#;

fn hp(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hairpin"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hpg-export-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn export(cfg: &Path, streams: &Path, format: &str) -> String {
    let (ok, out, err) = hp(&[
        "pktgen",
        "export",
        "--format",
        format,
        "--config",
        cfg.to_str().unwrap(),
        "--streams",
        streams.to_str().unwrap(),
    ]);
    assert!(ok, "export {format}: {err}");
    out
}

fn compiled(cfg: &str, streams: &str) -> Vec<Stream> {
    let cfg = Config::parse(cfg).unwrap();
    let f = PktgenFile::parse(streams).unwrap();
    stream::compile(&f.stream, &cfg, cfg.switch.mtu + 8).unwrap()
}

fn last(r: &FieldRange) -> u128 {
    r.min + (r.n as u128 - 1) * r.inc
}

#[test]
fn trex_profile_carries_hairpins_frames_and_ranges() {
    let d = tmp("trex");
    let (cfg, sf) = (d.join("cfg.toml"), d.join("streams.toml"));
    std::fs::write(&cfg, CFG).unwrap();
    std::fs::write(&sf, STREAMS).unwrap();
    let py = export(&cfg, &sf, "trex");
    let json = py
        .split_once("json.loads(r\"\"\"")
        .and_then(|(_, r)| r.split_once("\"\"\")"))
        .expect("the profile embeds its streams as JSON")
        .0;
    let data: serde_json::Value = serde_json::from_str(json).unwrap();
    let streams = compiled(CFG, STREAMS);
    let data = data.as_array().unwrap();
    assert_eq!(data.len(), streams.len());
    for (s, d) in streams.iter().zip(data) {
        assert_eq!(d["name"], s.name.as_str());
        let tpls = d["templates"].as_array().unwrap();
        assert_eq!(tpls.len(), s.templates.len(), "one TRex stream per size");
        let vars = d["vars"].as_array().unwrap();
        for t in tpls {
            let k = t["frame"].as_u64().unwrap();
            let size = t["size"].as_u64().unwrap() as usize;
            let mut want = vec![0u8; size - 4];
            assert_eq!(s.build(k, 0, &mut want), size - 4);
            let hex: String = want.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(t["bytes"], hex.as_str(), "{}: frame {k}", s.name);
            assert_eq!(
                t["init"].as_array().unwrap().len(),
                vars.len(),
                "an initial value per variable"
            );
        }
        // Variables: the stream's ranges at the fields' offsets.
        let by: BTreeMap<&str, &serde_json::Value> = vars
            .iter()
            .map(|v| (v["name"].as_str().unwrap(), v))
            .collect();
        let l = s.layout;
        let v6 = l.ip_len == 16;
        for (name, r, off, size) in [
            (
                "src_ip",
                &s.r_src_ip,
                l.src_ip + if v6 { 8 } else { 0 },
                if v6 { 8 } else { 4 },
            ),
            (
                "dst_ip",
                &s.r_dst_ip,
                l.src_ip + l.ip_len + if v6 { 8 } else { 0 },
                if v6 { 8 } else { 4 },
            ),
            ("src_port", &s.r_src_port, l.l4, 2),
            ("dst_port", &s.r_dst_port, l.l4 + 2, 2),
        ] {
            match r {
                None => assert!(!by.contains_key(name), "{}: {name}", s.name),
                Some(r) => {
                    let v = by[name];
                    let low = |x: u128| (x & u64::MAX as u128) as u64;
                    assert_eq!(v["offset"].as_u64(), Some(off as u64), "{name}");
                    assert_eq!(v["size"].as_u64(), Some(size as u64), "{name}");
                    assert_eq!(v["min"].as_u64(), Some(low(r.min)), "{name}");
                    assert_eq!(v["max"].as_u64(), Some(low(last(r))), "{name}");
                    assert_eq!(v["step"].as_u64(), Some(r.inc as u64), "{name}");
                }
            }
        }
    }
    // The first stream's variables start at frame k's values (dst_ip from its `start`).
    let s0 = &streams[0];
    let t0 = &data[0]["templates"][0];
    let k = t0["frame"].as_u64().unwrap();
    let init: Vec<u64> = t0["init"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(
        init,
        vec![
            s0.r_dst_ip.as_ref().unwrap().at(k) as u64,
            s0.r_src_port.as_ref().unwrap().at(k) as u64
        ]
    );
    // Shares of the rate: 1 Mpps over 8 sizes; IMIX 7:4:1 of line rate.
    for t in data[0]["templates"].as_array().unwrap() {
        assert_eq!(t["pps"].as_f64(), Some(125_000.0));
    }
    let pct: Vec<f64> = data[2]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["percentage"].as_f64().unwrap())
        .collect();
    assert!((pct.iter().sum::<f64>() - 100.0).abs() < 1e-9, "{pct:?}");
    assert_eq!(data[1]["templates"][0]["count"].as_u64(), Some(1000));
    python_parses(&py, &d);
    std::fs::remove_dir_all(d).unwrap();
}

fn python_parses(py: &str, d: &Path) {
    let p = d.join("profile.py");
    std::fs::write(&p, py).unwrap();
    match Command::new("python3")
        .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
        .arg(&p)
        .output()
    {
        Ok(o) => assert!(
            o.status.success(),
            "python3 cannot parse the profile: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("skipped the Python syntax check: no python3"),
    }
}

fn lua_parses(lua: &str, d: &Path) {
    let p = d.join("script.lua");
    std::fs::write(&p, lua).unwrap();
    match Command::new("luac").arg("-p").arg(&p).output() {
        Ok(o) => assert!(
            o.status.success(),
            "luac -p: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("skipped the Lua syntax check: no luac (Debian package lua5.4)"),
    }
}

/// `pktgen.range.FIELD("PORT", "WHAT", VALUE)` lines by (port, field, what).
fn range_calls(lua: &str) -> BTreeMap<(String, String, String), String> {
    let mut m = BTreeMap::new();
    for l in lua.lines() {
        let Some(rest) = l.strip_prefix("pktgen.range.") else {
            continue;
        };
        let (field, args) = rest.split_once('(').unwrap();
        let args = args.strip_suffix(')').unwrap();
        let parts: Vec<String> = args
            .splitn(3, ", ")
            .map(|x| x.trim_matches('"').to_string())
            .collect();
        m.insert(
            (parts[0].clone(), field.to_string(), parts[1].clone()),
            parts[2].clone(),
        );
    }
    m
}

#[test]
fn pktgen_script_sets_the_streams_fields() {
    let d = tmp("lua");
    let (cfg, sf) = (d.join("cfg.toml"), d.join("streams.toml"));
    std::fs::write(&cfg, CFG).unwrap();
    std::fs::write(&sf, STREAMS).unwrap();
    let lua = export(&cfg, &sf, "pktgen-lua");
    let streams = compiled(CFG, STREAMS);
    let rc = range_calls(&lua);
    let get = |p: &str, f: &str, w: &str| {
        rc.get(&(p.into(), f.into(), w.into()))
            .unwrap_or_else(|| panic!("no pktgen.range.{f}(\"{p}\", \"{w}\", ...) in\n{lua}"))
            .clone()
    };
    let ip4 = |v: u128| std::net::Ipv4Addr::from(v as u32).to_string();
    let ip6 = |v: u128| std::net::Ipv6Addr::from(v).to_string();
    // Port 0 (hv1): a-b, range mode.
    let s = &streams[0];
    assert_eq!(get("0", "src_mac", "start"), "02:00:00:00:00:01");
    assert_eq!(get("0", "dst_mac", "start"), "02:00:00:00:00:02");
    let r = s.r_src_port.as_ref().unwrap();
    assert_eq!(get("0", "src_port", "start"), r.at(0).to_string());
    assert_eq!(get("0", "src_port", "inc"), r.inc.to_string());
    assert_eq!(get("0", "src_port", "min"), r.min.to_string());
    assert_eq!(get("0", "src_port", "max"), last(r).to_string());
    let r = s.r_dst_ip.as_ref().unwrap();
    assert_eq!(get("0", "dst_ip", "start"), ip4(r.at(0)));
    assert_eq!(get("0", "dst_ip", "start"), "10.0.1.11");
    assert_eq!(get("0", "dst_ip", "inc"), ip4(r.inc));
    assert_eq!(get("0", "dst_ip", "max"), ip4(last(r)));
    assert_eq!(get("0", "src_ip", "inc"), "0.0.0.0");
    let r = s.size_range.as_ref().unwrap();
    assert_eq!(get("0", "pkt_size", "min"), r.min.to_string());
    assert_eq!(get("0", "pkt_size", "max"), last(r).to_string());
    assert_eq!(get("0", "pkt_size", "inc"), "64");
    assert!(lua.contains("pktgen.vlan(\"0\", \"off\")"));
    // 1 Mpps of 64..512-byte frames on 10G.
    let pct = 100.0 * 1e6 * (s.mean_size + 20.0) * 8.0 / 10e9;
    assert!(
        lua.contains(&format!("pktgen.set(\"0\", \"rate\", {pct:.4})")),
        "{lua}"
    );
    // Port 1 (hv2): c-a, IPv6/TCP, tagged VLAN 10 priority 6.
    let s = &streams[1];
    assert!(lua.contains("pktgen.set_type(\"1\", \"ipv6\")"));
    assert!(lua.contains("pktgen.set_proto(\"1\", \"tcp\")"));
    let r = s.r_src_ip.as_ref().unwrap();
    assert_eq!(get("1", "src_ip", "min"), ip6(r.min));
    assert_eq!(get("1", "src_ip", "inc"), ip6(r.inc));
    assert_eq!(get("1", "src_ip", "max"), ip6(last(r)));
    assert_eq!(get("1", "vlan_id", "start"), "10");
    assert_eq!(get("1", "cos", "start"), "6");
    assert!(lua.contains("pktgen.vlan(\"1\", \"on\")"));
    assert!(lua.contains("pktgen.set(\"1\", \"count\", 1000)"));
    assert!(lua.contains("pktgen.set(\"1\", \"rate\", 20.0000)"));
    // Port 2 (hv3): d-b IMIX as 12 sequence packets in hairpin's order.
    let sizes: Vec<u32> = lua
        .lines()
        .filter(|l| l.starts_with("pktgen.seqTable(") && l.contains(", \"2\", "))
        .map(|l| {
            assert!(l.contains("eth_src_addr = \"02:00:00:00:00:04\""), "{l}");
            assert!(l.contains("vlanid = 10, cos = 2"), "{l}");
            l.split("pktSize = ")
                .nth(1)
                .unwrap()
                .trim_end_matches(" })")
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(sizes, stream::IMIX.to_vec());
    assert!(lua.contains("pktgen.set(\"2\", \"seqCnt\", 12)"));
    lua_parses(&lua, &d);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn committed_bare_metal_scripts_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = root.join("docs/configs/pktgen-bridge.toml");
    let sf = root.join("perf/bare-metal-streams.toml");
    for (format, file) in [
        ("pktgen-lua", "perf/pktgen-hairpin.lua"),
        ("trex", "perf/trex-hairpin.py"),
    ] {
        let want = export(&cfg, &sf, format);
        let have = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            have == want,
            "{file} is not the export of perf/bare-metal-streams.toml: regenerate it (docs/bare-metal.md)"
        );
    }
}

#[test]
fn export_errors_name_the_stream() {
    let d = tmp("bad");
    let (cfg, sf) = (d.join("cfg.toml"), d.join("streams.toml"));
    std::fs::write(&cfg, CFG).unwrap();
    // Two streams from hv1, one with a range: pktgen-dpdk cannot send that.
    std::fs::write(
        &sf,
        "[[stream]]\nsrc = \"a\"\ndst = \"b\"\n[stream.range]\nsrc_port = \"1-5\"\n\
         [[stream]]\nsrc = \"b\"\ndst = \"a\"\n",
    )
    .unwrap();
    let (ok, _, err) = hp(&[
        "pktgen",
        "export",
        "--format",
        "pktgen-lua",
        "--config",
        cfg.to_str().unwrap(),
        "--streams",
        sf.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("stream[0].range: pktgen-dpdk varies fields only"),
        "{err}"
    );
    // TRex takes it.
    let py = export(&cfg, &sf, "trex");
    assert!(py.contains("\"name\": \"src_port\""));
    std::fs::remove_dir_all(d).unwrap();
}
