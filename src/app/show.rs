//! `hairpin stats`, `hairpin show …` and `hairpin reload`: clients of a
//! running switch's control socket. Tables for people, `--json` for
//! scripts, `--watch SECS` to refresh with per-second rates.

use crate::telemetry::DEFAULT_SOCKET;
use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Options every client command shares.
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// The switch's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub control_socket: PathBuf,
    /// Print the replies as JSON (one object per line and refresh).
    #[arg(long)]
    pub json: bool,
    /// Refresh every SECS seconds, with per-second rates of the counters.
    #[arg(long, value_name = "SECS")]
    pub watch: Option<f64>,
    /// With --watch: stop after N refreshes (default: until interrupted).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// What `hairpin show` shows.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq, Hash)]
pub enum What {
    /// Per port: link, rx/tx frames and bytes, TX-full drops, device counters.
    Ports,
    /// Per worker: busy vs idle cycles, frames per burst, cycles per frame.
    Cores,
    /// Drops by reason.
    Drops,
    /// FDB entries with their age.
    Fdb,
    /// VSIs: MAC, VLAN, UUID, port, policy, meter.
    Vsi,
    /// ACL rule hits.
    Acl,
    /// Meter colour counts.
    Meters,
    /// Egress queues per port and class.
    Queues,
    /// Live captures (`hairpin capture`) in progress.
    Captures,
}

impl What {
    fn cmd(self) -> &'static str {
        match self {
            What::Ports => "ports",
            What::Cores => "cores",
            What::Drops => "drops",
            What::Fdb => "fdb",
            What::Vsi => "vsi",
            What::Acl => "acl",
            What::Meters => "meters",
            What::Queues => "queues",
            What::Captures => "capture.list",
        }
    }
}

/// FDB filters of `hairpin show fdb`.
#[derive(Args, Debug, Clone, Default)]
pub struct FdbFilter {
    /// Only entries behind this port.
    #[arg(long)]
    pub port: Option<String>,
    /// Only entries in this VLAN.
    #[arg(long)]
    pub vlan: Option<u16>,
    /// Only this MAC.
    #[arg(long)]
    pub mac: Option<String>,
}

/// Reply timeout of the socket.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One connection to a control socket.
pub(crate) struct Conn {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Conn {
    /// Connect (10 s timeouts).
    pub(crate) fn open(p: &Path) -> Result<Conn, String> {
        let s = UnixStream::connect(p).map_err(|e| {
            format!(
                "control socket {}: {e} (is `hairpin run` running? --control-socket PATH)",
                p.display()
            )
        })?;
        s.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
        Ok(Conn { r, w: s })
    }
    /// One request; its `data`, or its `error` as Err.
    pub(crate) fn ask(&mut self, req: &Value) -> Result<Value, String> {
        let mut line = req.to_string();
        line.push('\n');
        self.w
            .write_all(line.as_bytes())
            .map_err(|e| format!("control socket: {e}"))?;
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(0) => return Err("control socket: the switch closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("control socket: {e}")),
        }
        let v: Value =
            serde_json::from_str(&l).map_err(|e| format!("control socket: bad reply ({e})"))?;
        if v["ok"] == true {
            Ok(v["data"].clone())
        } else {
            Err(v["error"].as_str().unwrap_or("error").to_string())
        }
    }
}

/// One column: header, field, and whether it is a counter (gets a rate).
struct Col(&'static str, &'static str, bool);

/// Table rows: (key, fields).
type Rows = Vec<(String, Map<String, Value>)>;

/// Rows of a reply: (key, fields), and the columns to print.
fn rows(what: What, d: &Value) -> (Rows, Vec<Col>) {
    let arr = |v: &Value, key: &str| -> Rows {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_object())
                    .map(|o| (fmt(&o[key]), o.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let named = |v: &Value, key: &str| -> Rows {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, x)| {
                        let mut o = x.as_object().cloned().unwrap_or_default();
                        o.insert(key.into(), k.clone().into());
                        (k.clone(), o)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    match what {
        What::Ports => (
            arr(d, "name")
                .into_iter()
                .map(|(k, mut o)| {
                    // The reasons this port dropped for (zero counts left out).
                    let nz: Vec<String> = o
                        .get("drops")
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                                .map(|(k, v)| format!("{k}={}", fmt(v)))
                                .collect()
                        })
                        .unwrap_or_default();
                    let nz = if nz.is_empty() {
                        Value::Null
                    } else {
                        Value::String(nz.join(","))
                    };
                    o.insert("drop_reasons".into(), nz);
                    (k, o)
                })
                .collect(),
            vec![
                Col("port", "name", false),
                Col("link", "link_up", false),
                Col("rx_frames", "rx_frames", true),
                Col("rx_bytes", "rx_bytes", true),
                Col("tx_frames", "tx_frames", true),
                Col("tx_bytes", "tx_bytes", true),
                Col("tx_full", "tx_full", true),
                Col("cap_drop_rx", "capture_dropped_rx", true),
                Col("cap_drop_tx", "capture_dropped_tx", true),
                Col("drops", "drops_total", true),
                Col("drop_reasons", "drop_reasons", false),
                Col("backend", "backend", false),
            ],
        ),
        What::Cores => (
            arr(d, "worker"),
            vec![
                Col("worker", "worker", false),
                Col("core", "core", false),
                Col("rx_frames", "rx_frames", true),
                Col("tx_frames", "tx_frames", true),
                Col("drops", "drops", true),
                Col("busy_cycles", "busy_cycles", true),
                Col("idle_cycles", "idle_cycles", true),
                Col("busy_share", "busy_share", false),
                Col("frames/burst", "frames_per_burst", false),
                Col("cycles/frame", "cycles_per_frame", false),
            ],
        ),
        What::Drops => {
            let mut r: Rows = d["by_reason"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            let mut o = Map::new();
                            o.insert("reason".into(), k.clone().into());
                            o.insert("frames".into(), v.clone());
                            (k.clone(), o)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut o = Map::new();
            o.insert("reason".into(), "total".into());
            o.insert("frames".into(), d["total"].clone());
            r.push(("total".into(), o));
            (
                r,
                vec![
                    Col("reason", "reason", false),
                    Col("frames", "frames", true),
                ],
            )
        }
        What::Fdb => (
            d["entries"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_object())
                        .map(|o| (format!("{}/{}", fmt(&o["mac"]), fmt(&o["vlan"])), o.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            vec![
                Col("mac", "mac", false),
                Col("vlan", "vlan", false),
                Col("port", "port", false),
                Col("static", "static", false),
                Col("age_ms", "age_ms", false),
            ],
        ),
        What::Vsi => (
            arr(&d["vsis"], "name"),
            vec![
                Col("name", "name", false),
                Col("mac", "mac", false),
                Col("vlan", "vlan", false),
                Col("uuid", "uuid", false),
                Col("port", "port", false),
                Col("policy", "policy", false),
                Col("meter", "meter", false),
                Col("state", "state", false),
            ],
        ),
        What::Acl => (
            named(d, "rule"),
            vec![
                Col("rule", "rule", false),
                Col("packets", "packets", true),
                Col("bytes", "bytes", true),
            ],
        ),
        What::Meters => (
            named(d, "meter"),
            vec![
                Col("meter", "meter", false),
                Col("green", "green", true),
                Col("yellow", "yellow", true),
                Col("red", "red", true),
            ],
        ),
        What::Queues => {
            let mut r = Vec::new();
            if let Some(m) = d.as_object() {
                for (port, classes) in m {
                    for c in classes.as_array().into_iter().flatten() {
                        if let Some(o) = c.as_object() {
                            let mut o = o.clone();
                            o.insert("port".into(), port.clone().into());
                            r.push((format!("{port}/{}", fmt(&o["class"])), o));
                        }
                    }
                }
            }
            (
                r,
                vec![
                    Col("port", "port", false),
                    Col("class", "class", false),
                    Col("depth", "depth", false),
                    Col("enqueued", "enqueued", true),
                    Col("dequeued", "dequeued", true),
                    Col("bytes", "bytes", true),
                    Col("tail_drops", "tail_drops", true),
                    Col("drained", "drained", true),
                ],
            )
        }
        What::Captures => (
            arr(d, "id"),
            vec![
                Col("id", "id", false),
                Col("port", "port", false),
                Col("dir", "dir", false),
                Col("frames", "frames", true),
                Col("bytes", "bytes", true),
                Col("capture_dropped", "capture_dropped", true),
                Col("path", "path", false),
            ],
        ),
    }
}

fn fmt(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "up" } else { "down" }.into(),
        Value::Number(n) => match n.as_u64() {
            Some(u) => u.to_string(),
            None => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
        },
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", fmt(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// Previous sample of one table: key → counter values, and when.
type Prev = (Instant, HashMap<String, Map<String, Value>>);

/// Per-second rates of the counter columns since `prev`, by row key.
fn rates(
    rs: &[(String, Map<String, Value>)],
    cols: &[Col],
    prev: Option<&Prev>,
    now: Instant,
) -> HashMap<String, Map<String, Value>> {
    let mut out = HashMap::new();
    let Some((t0, p)) = prev else {
        return out;
    };
    let dt = now.duration_since(*t0).as_secs_f64().max(1e-6);
    for (k, o) in rs {
        let Some(po) = p.get(k) else { continue };
        let mut m = Map::new();
        for c in cols.iter().filter(|c| c.2) {
            if let (Some(a), Some(b)) = (
                o.get(c.1).and_then(Value::as_u64),
                po.get(c.1).and_then(Value::as_u64),
            ) {
                m.insert(c.1.into(), json!(a.saturating_sub(b) as f64 / dt));
            }
        }
        out.insert(k.clone(), m);
    }
    out
}

/// Render a table (with a `/s` column after each counter when rates are known).
fn table(
    title: &str,
    rs: &[(String, Map<String, Value>)],
    cols: &[Col],
    rt: &HashMap<String, Map<String, Value>>,
) -> String {
    let with_rates = !rt.is_empty();
    let mut head: Vec<String> = Vec::new();
    for c in cols {
        head.push(c.0.to_string());
        if with_rates && c.2 {
            head.push(format!("{}/s", c.0));
        }
    }
    let mut lines: Vec<Vec<String>> = vec![head];
    for (k, o) in rs {
        let mut l = Vec::new();
        for c in cols {
            l.push(fmt(o.get(c.1).unwrap_or(&Value::Null)));
            if with_rates && c.2 {
                let r = rt.get(k).and_then(|m| m.get(c.1)).and_then(Value::as_f64);
                l.push(r.map(|r| format!("{r:.1}")).unwrap_or_else(|| "-".into()));
            }
        }
        lines.push(l);
    }
    let n = lines[0].len();
    let w: Vec<usize> = (0..n)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = format!("== {title}\n");
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = w[i])
                }
            })
            .collect();
        s += cells.join("  ").trim_end();
        s.push('\n');
    }
    s
}

/// `hairpin stats` (ports, cores, drops) and `hairpin show WHAT`.
pub fn show(whats: &[What], filter: &FdbFilter, o: &ClientOpts) -> Result<ExitCode, String> {
    if let Some(w) = o.watch {
        if !(w > 0.0 && w.is_finite()) {
            return Err(format!("--watch {w}: want a positive number of seconds"));
        }
    } else if o.count.is_some() {
        return Err("--count needs --watch".into());
    }
    let mut conn = Conn::open(&o.control_socket)?;
    let mut prev: HashMap<What, Prev> = HashMap::new();
    let tty = std::io::stdout().is_terminal();
    let mut n = 0u64;
    loop {
        let mut text = String::new();
        let mut json_out = Map::new();
        for &what in whats {
            let mut req = json!({"cmd": what.cmd()});
            if what == What::Fdb {
                if let Some(p) = &filter.port {
                    req["port"] = p.clone().into();
                }
                if let Some(v) = filter.vlan {
                    req["vlan"] = v.into();
                }
                if let Some(m) = &filter.mac {
                    req["mac"] = m.clone().into();
                }
            }
            let d = conn.ask(&req)?;
            let now = Instant::now();
            let (rs, cols) = rows(what, &d);
            let rt = rates(&rs, &cols, prev.get(&what), now);
            if o.json {
                let mut e = Map::new();
                e.insert("data".into(), d.clone());
                if o.watch.is_some() {
                    e.insert(
                        "rates".into(),
                        Value::Object(rt.clone().into_iter().map(|(k, v)| (k, v.into())).collect()),
                    );
                }
                json_out.insert(what.cmd().into(), e.into());
            } else {
                text += &table(what.cmd(), &rs, &cols, &rt);
                text.push('\n');
            }
            prev.insert(what, (now, rs.into_iter().collect()));
        }
        let mut out = std::io::stdout().lock();
        if o.json {
            let v = if whats.len() == 1 && o.watch.is_none() {
                json_out[whats[0].cmd()]["data"].clone()
            } else {
                Value::Object(json_out)
            };
            let _ = writeln!(out, "{v}");
        } else {
            if o.watch.is_some() && tty {
                let _ = write!(out, "\x1b[2J\x1b[H");
            }
            let _ = write!(out, "{text}");
        }
        let _ = out.flush();
        n += 1;
        match (o.watch, o.count) {
            (None, _) => break,
            (Some(_), Some(c)) if n >= c => break,
            (Some(w), _) => std::thread::sleep(Duration::from_secs_f64(w)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `hairpin reload`: as SIGHUP; exit 1 with the reason when refused.
pub fn reload(o: &ClientOpts) -> Result<ExitCode, String> {
    let mut conn = Conn::open(&o.control_socket)?;
    let d = conn.ask(&json!({"cmd": "reload"}))?;
    if o.json {
        println!("{d}");
    } else {
        println!("reloaded: snapshot generation {}", fmt(&d["generation"]));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_tables() {
        let d0 = json!([{"name": "hv1", "link_up": true, "rx_frames": 100, "rx_bytes": 6400,
            "tx_frames": 0, "tx_bytes": 0, "tx_full": 0, "backend": null}]);
        let d1 = json!([{"name": "hv1", "link_up": true, "rx_frames": 300, "rx_bytes": 19200,
            "tx_frames": 0, "tx_bytes": 0, "tx_full": 0, "backend": null}]);
        let t0 = Instant::now();
        let (r0, cols) = rows(What::Ports, &d0);
        let prev: Prev = (t0, r0.into_iter().collect());
        let (r1, cols1) = rows(What::Ports, &d1);
        let rt = rates(&r1, &cols1, Some(&prev), t0 + Duration::from_secs(2));
        assert_eq!(rt["hv1"]["rx_frames"], 100.0);
        assert_eq!(rt["hv1"]["rx_bytes"], 6400.0);
        let t = table("ports", &r1, &cols, &rt);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "== ports");
        assert!(
            lines[1].starts_with("port  link  rx_frames  rx_frames/s"),
            "{t}"
        );
        assert!(lines[2].starts_with("hv1   up    300        100.0"), "{t}");
        // No rates without a previous sample.
        let t = table("ports", &r1, &cols, &HashMap::new());
        assert!(!t.contains("/s"));
    }

    #[test]
    fn drops_and_queues_rows() {
        let d = json!({"total": 3, "by_reason": {"runt": 1, "acl_deny": 2}});
        let (r, _) = rows(What::Drops, &d);
        let keys: Vec<&str> = r.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(keys, ["acl_deny", "runt", "total"]);
        assert_eq!(r[2].1["frames"], 3);
        let q = json!({"core": [{"class": 0, "depth": 1, "dequeued": 5}]});
        let (r, _) = rows(What::Queues, &q);
        assert_eq!(r[0].0, "core/0");
        assert_eq!(r[0].1["port"], "core");
    }
}
