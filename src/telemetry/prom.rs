//! The Prometheus endpoint: a tiny HTTP/1.0 responder on `std::net` serving
//! the counters of [`View`] in the text exposition format (version 0.0.4) at
//! `GET /metrics` (and `/`). One thread, pinned off the worker cores; every
//! read and write has a timeout and the request head must arrive within
//! [`IO_TIMEOUT`], so a stalled scraper holds it up at most about twice that.

use super::View;
use crate::stats::{CoreCounters, DropReason};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Read/write timeout per scrape.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest request head accepted.
pub const MAX_HEAD: usize = 8192;

/// A running endpoint.
pub struct PromServer {
    /// The address it is bound to (useful with port 0).
    pub addr: SocketAddr,
    handle: JoinHandle<()>,
}

impl PromServer {
    /// Wait for the thread (after the stop flag was set).
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

/// Bind `addr` and serve until `stop` is set.
pub fn serve(
    view: Arc<View>,
    addr: &str,
    worker_cores: Vec<usize>,
    stop: Arc<AtomicBool>,
) -> Result<PromServer, String> {
    let l = TcpListener::bind(addr).map_err(|e| format!("telemetry.prometheus {addr}: {e}"))?;
    let bound = l
        .local_addr()
        .map_err(|e| format!("telemetry.prometheus {addr}: {e}"))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("telemetry.prometheus {addr}: {e}"))?;
    let handle = std::thread::Builder::new()
        .name("hp-prometheus".into())
        .spawn(move || {
            super::server::pin_or_warn(&worker_cores, "prometheus endpoint");
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => handle(s, &view),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        })
        .map_err(|e| format!("telemetry.prometheus: cannot start its thread: {e}"))?;
    Ok(PromServer {
        addr: bound,
        handle,
    })
}

fn handle(mut s: TcpStream, view: &View) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(_) => return,
        }
        if std::time::Instant::now() >= deadline {
            return; // a head trickling in byte by byte
        }
        if head.len() > MAX_HEAD {
            let _ = respond(
                &mut s,
                "431 Request Header Fields Too Large",
                "request head too large\n",
            );
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut first = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        let _ = respond(&mut s, "405 Method Not Allowed", "only GET\n");
    } else if path != "/metrics" && path != "/" {
        let _ = respond(&mut s, "404 Not Found", "see /metrics\n");
    } else {
        let body = render(view);
        let body = if method == "HEAD" {
            String::new()
        } else {
            body
        };
        let _ = respond(&mut s, "200 OK", &body);
    }
}

fn respond(s: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let ctype = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    write!(
        s,
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

/// Escape a label value (backslash, double quote, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, x)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(x));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }
}

/// Prometheus metric name of a core counter: `rx_pkts` → `hairpin_core_rx_frames_total`.
pub fn core_metric(scalar: &str) -> String {
    format!("hairpin_core_{}_total", scalar.replace("pkts", "frames"))
}

type PortField = fn(&crate::stats::PortCounters) -> u64;
type ClassField = fn(&crate::qos::sched::ClassStats) -> u64;

/// The whole exposition text.
pub fn render(view: &View) -> String {
    let mut o = Out(String::new());
    // Ports.
    let pc = view.port_counters();
    let be = view.backend_stats();
    let port_fams: [(&str, &str, PortField); 5] = [
        (
            "hairpin_port_rx_frames_total",
            "Frames received on the port.",
            |c| c.rx_pkts,
        ),
        (
            "hairpin_port_rx_bytes_total",
            "Bytes received on the port.",
            |c| c.rx_bytes,
        ),
        (
            "hairpin_port_tx_frames_total",
            "Frames the port accepted for transmission.",
            |c| c.tx_pkts,
        ),
        (
            "hairpin_port_tx_bytes_total",
            "Bytes the port accepted for transmission.",
            |c| c.tx_bytes,
        ),
        (
            "hairpin_port_tx_full_total",
            "Frames the port refused, TX queue full.",
            |c| c.tx_full,
        ),
    ];
    for (name, help, f) in port_fams {
        o.family(name, "counter", help);
        for (p, c) in view.ports.iter().zip(&pc) {
            o.sample(name, &[("port", p)], f(c));
        }
    }
    o.family(
        "hairpin_port_drops_total",
        "counter",
        "Dropped frames by port and reason: tx_full and queue_full on the egress port, other reasons on the ingress port.",
    );
    for (p, c) in view.ports.iter().zip(&pc) {
        for r in crate::stats::DropReason::ALL {
            o.sample(
                "hairpin_port_drops_total",
                &[("port", p), ("reason", r.name())],
                c.drops[*r as usize],
            );
        }
    }
    o.family(
        "hairpin_port_link_up",
        "gauge",
        "1 while the port's link is up.",
    );
    for (i, p) in view.ports.iter().enumerate() {
        let up = be
            .get(i)
            .and_then(|b| b.as_ref())
            .and_then(|b| b.get("link_up"))
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        o.sample("hairpin_port_link_up", &[("port", p)], u8::from(up));
    }
    o.family(
        "hairpin_port_backend",
        "untyped",
        "Device counters of the port's backend (DPDK rte_eth_stats, AF_PACKET ring), by name.",
    );
    for (i, p) in view.ports.iter().enumerate() {
        if let Some(serde_json::Value::Object(m)) = be.get(i).and_then(|b| b.as_ref()) {
            for (k, v) in m {
                let x = v.as_u64().map(|x| x as f64).or_else(|| v.as_f64());
                if let Some(x) = x {
                    o.sample("hairpin_port_backend", &[("port", p), ("stat", k)], x);
                }
            }
        }
    }
    o.family(
        "hairpin_capture_dropped_total",
        "counter",
        "Capture copies dropped because the capture queue was full (frames still forwarded).",
    );
    for (i, p) in view.ports.iter().enumerate() {
        let d = view.capture_dropped(i);
        for (dir, v) in [("rx", d[0]), ("tx", d[1])] {
            o.sample(
                "hairpin_capture_dropped_total",
                &[("port", p), ("dir", dir)],
                v,
            );
        }
    }
    // Drops.
    let d = view.drops();
    o.family(
        "hairpin_drops_total",
        "counter",
        "Dropped frames by reason (docs/counters.md).",
    );
    for r in DropReason::ALL {
        o.sample(
            "hairpin_drops_total",
            &[("reason", r.name())],
            d[*r as usize],
        );
    }
    // Cores.
    let cc = view.core_counters();
    let cores: Vec<(String, String)> = view
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            (
                i.to_string(),
                w.core.map(|c| c.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    for (si, (s, help)) in CoreCounters::SCALARS
        .iter()
        .zip(CoreCounters::SCALAR_DOCS)
        .enumerate()
    {
        let name = core_metric(s);
        o.family(&name, "counter", help);
        for ((w, c), ctr) in cores.iter().zip(&cc) {
            o.sample(&name, &[("worker", w), ("core", c)], ctr.to_array()[si]);
        }
    }
    // FDB and snapshot.
    o.family("hairpin_fdb_entries", "gauge", "Live FDB entries.");
    o.sample("hairpin_fdb_entries", &[], view.fdb.len());
    o.family("hairpin_fdb_capacity", "gauge", "FDB capacity.");
    o.sample("hairpin_fdb_capacity", &[], view.fdb.capacity());
    o.family(
        "hairpin_snapshot_generation",
        "gauge",
        "Generation of the policy snapshot in use (each reload +1).",
    );
    o.sample("hairpin_snapshot_generation", &[], view.cell.generation());
    o.family(
        "hairpin_uptime_seconds",
        "gauge",
        "Seconds since the switch started.",
    );
    o.sample(
        "hairpin_uptime_seconds",
        &[],
        view.started.elapsed().as_secs_f64(),
    );
    // Policy.
    let hits = view.rule_hits();
    o.family(
        "hairpin_acl_rule_hits_total",
        "counter",
        "Frames that matched an ACL rule or named counter.",
    );
    for (r, h) in &hits {
        o.sample("hairpin_acl_rule_hits_total", &[("rule", r)], h[0]);
    }
    o.family(
        "hairpin_acl_rule_bytes_total",
        "counter",
        "Bytes of the frames that matched an ACL rule or named counter.",
    );
    for (r, h) in &hits {
        o.sample("hairpin_acl_rule_bytes_total", &[("rule", r)], h[1]);
    }
    o.family(
        "hairpin_meter_frames_total",
        "counter",
        "Frames a meter coloured, by colour.",
    );
    for (m, c) in view.meter_counts() {
        for (i, colour) in ["green", "yellow", "red"].iter().enumerate() {
            o.sample(
                "hairpin_meter_frames_total",
                &[("meter", &m), ("color", colour)],
                c[i],
            );
        }
    }
    let qs = view.queue_stats();
    let qfams: [(&str, &str, &str, ClassField); 6] = [
        (
            "hairpin_queue_depth",
            "gauge",
            "Frames queued in the egress class now.",
            |s| s.depth,
        ),
        (
            "hairpin_queue_enqueued_frames_total",
            "counter",
            "Frames accepted by the egress class.",
            |s| s.enqueued,
        ),
        (
            "hairpin_queue_dequeued_frames_total",
            "counter",
            "Frames sent by the egress class.",
            |s| s.dequeued,
        ),
        (
            "hairpin_queue_dequeued_bytes_total",
            "counter",
            "Bytes sent by the egress class.",
            |s| s.bytes,
        ),
        (
            "hairpin_queue_tail_drops_total",
            "counter",
            "Frames refused at the class's depth limit.",
            |s| s.tail_drops,
        ),
        (
            "hairpin_queue_drained_total",
            "counter",
            "Frames removed unsent (reload or stop).",
            |s| s.drained,
        ),
    ];
    for (name, kind, help, f) in qfams {
        o.family(name, kind, help);
        for (p, q) in &qs {
            for (c, s) in q.iter().enumerate() {
                o.sample(name, &[("port", p), ("class", &c.to_string())], f(s));
            }
        }
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_escaping() {
        assert_eq!(
            label(
                r#"a"b\c
d"#
            ),
            r#"a\"b\\c\nd"#
        );
        assert_eq!(core_metric("rx_pkts"), "hairpin_core_rx_frames_total");
        assert_eq!(core_metric("busy_cycles"), "hairpin_core_busy_cycles_total");
        let mut o = Out(String::new());
        o.sample("m", &[("port", "hv1"), ("class", "3")], 5);
        o.sample("n", &[], 1.5);
        assert_eq!(o.0, "m{port=\"hv1\",class=\"3\"} 5\nn 1.5\n");
    }
}
