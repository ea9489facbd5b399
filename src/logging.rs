//! Structured logs: [`tracing`] events, one line each on stderr, as
//! `hairpin: [warning: |error: |debug: ]MESSAGE key=value …`.
//!
//! The filter comes from `RUST_LOG` when it is set and not empty (the
//! environment wins), else from `[log] level` of the config (`hairpin run`),
//! else [`DEFAULT_LEVEL`]. Nothing logs on the per-frame path: events come
//! from the control, telemetry and `run` threads only. Recurring faults go
//! through [`warn_limited`]: at most one event per key per
//! [`WARN_INTERVAL`], the next one saying how many were suppressed.
//!
//! User-facing errors that end a command are not log events: they stay
//! plain `hairpin: MESSAGE` lines from `main`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{prelude::*, reload, EnvFilter, Registry};

/// Level when neither `RUST_LOG` nor `[log] level` says otherwise.
pub const DEFAULT_LEVEL: &str = "info";
/// Interval of [`warn_limited`].
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// Parse a filter: comma-separated `LEVEL` or `TARGET=LEVEL` directives.
/// Stricter than `EnvFilter` (which takes any word as a target), so a typo
/// such as `"inof"` is an error.
pub fn parse_filter(s: &str) -> Result<EnvFilter, String> {
    if s.trim().is_empty() {
        return Err("empty".into());
    }
    for d in s.split(',').map(str::trim) {
        let level = match d.split_once('=') {
            Some((t, l)) if !t.trim().is_empty() => l.trim(),
            Some(_) => return Err(format!("directive {d:?} has no target before '='")),
            None => d,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!("{level:?} is not a level"));
        }
    }
    EnvFilter::try_new(s).map_err(|e| e.to_string())
}

struct Format;

impl<S, N> FormatEvent<S, N> for Format
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        ev: &Event<'_>,
    ) -> fmt::Result {
        let pre = match *ev.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        write!(w, "hairpin: {pre}")?;
        ctx.field_format().format_fields(w.by_ref(), ev)?;
        writeln!(w)
    }
}

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

fn env_filter() -> Option<Result<EnvFilter, String>> {
    let v = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())?;
    Some(parse_filter(&v).map_err(|e| format!("RUST_LOG {v:?}: {e}")))
}

/// Install the subscriber (once per process; later calls do nothing).
/// Filter: `RUST_LOG`, else [`DEFAULT_LEVEL`].
pub fn init() {
    if FILTER.get().is_some() {
        return;
    }
    let (filter, bad) = match env_filter() {
        Some(Ok(f)) => (f, None),
        Some(Err(e)) => (EnvFilter::new(DEFAULT_LEVEL), Some(e)),
        None => (EnvFilter::new(DEFAULT_LEVEL), None),
    };
    let (layer, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .event_format(Format);
    if Registry::default().with(layer).with(fmt).try_init().is_ok() {
        let _ = FILTER.set(handle);
    }
    if let Some(e) = bad {
        tracing::warn!("{e}; logging at {DEFAULT_LEVEL}");
    }
}

/// Apply `[log] level` (already checked by the config) unless `RUST_LOG`
/// is set, which wins.
pub fn apply_config(level: &str) {
    if env_filter().is_some() {
        return;
    }
    if let (Some(h), Ok(f)) = (FILTER.get(), parse_filter(level)) {
        let _ = h.reload(f);
    }
}

/// At most one event per key per interval; counts the ones it held back.
/// Time is given by the caller (ms on any monotonic clock), so tests drive it.
#[derive(Debug)]
pub struct RateLimit {
    interval_ms: u64,
    keys: HashMap<String, (u64, u64)>,
}

impl RateLimit {
    /// Allow one event per key every `interval`.
    pub fn new(interval: Duration) -> RateLimit {
        RateLimit {
            interval_ms: interval.as_millis() as u64,
            keys: HashMap::new(),
        }
    }

    /// Whether an event for `key` at `now_ms` may be logged: `Some(n)` with
    /// the number suppressed since the last one that was, or `None`
    /// (suppressed and counted).
    pub fn check(&mut self, key: &str, now_ms: u64) -> Option<u64> {
        match self.keys.get_mut(key) {
            Some((last, n)) if now_ms.saturating_sub(*last) < self.interval_ms => {
                *n += 1;
                None
            }
            Some((last, n)) => {
                let held = *n;
                *last = now_ms;
                *n = 0;
                Some(held)
            }
            None => {
                // Bounded: keys come from a fixed set (ports, reasons), but
                // never let a stream of new keys grow the map without end.
                if self.keys.len() >= 4096 {
                    self.keys.clear();
                }
                self.keys.insert(key.to_string(), (now_ms, 0));
                Some(0)
            }
        }
    }
}

fn limiter() -> &'static Mutex<(Instant, RateLimit)> {
    static L: OnceLock<Mutex<(Instant, RateLimit)>> = OnceLock::new();
    L.get_or_init(|| Mutex::new((Instant::now(), RateLimit::new(WARN_INTERVAL))))
}

/// A warning for a recurring fault, at most once per `key` per
/// [`WARN_INTERVAL`]; the event carries `key` and `suppressed` (events held
/// back since the last one) and, when any were, says so.
pub fn warn_limited(key: &str, msg: fmt::Arguments<'_>) {
    let held = {
        let mut g = limiter().lock().unwrap_or_else(|p| p.into_inner());
        let now = g.0.elapsed().as_millis() as u64;
        g.1.check(key, now)
    };
    match held {
        Some(0) => tracing::warn!(key, "{msg}"),
        Some(n) => tracing::warn!(key, suppressed = n, "{msg} ({n} suppressed)"),
        None => {}
    }
}

/// Recurring faults seen in the published counters, checked by the `run`
/// thread about once a second (never by a worker): TX-full drops per port,
/// punts dropped (control-plane queue full), flood copies without a buffer,
/// and link changes. Each goes through [`warn_limited`].
pub struct FaultWatch {
    ports: Vec<String>,
    tx_full: Vec<u64>,
    drops: [u64; crate::stats::DropReason::N],
    link: Vec<Option<bool>>,
}

impl FaultWatch {
    /// Watch ports named `ports` (by port id).
    pub fn new(ports: Vec<String>) -> FaultWatch {
        let n = ports.len();
        FaultWatch {
            ports,
            tx_full: vec![0; n],
            drops: [0; crate::stats::DropReason::N],
            link: vec![None; n],
        }
    }

    /// Compare the counters of every worker (and the links, as the ports'
    /// backends report them) with the last check; warn about what grew or
    /// changed. Returns the faults found, as (key, message).
    pub fn check(
        &mut self,
        workers: &[std::sync::Arc<crate::stats::SharedCounters>],
        links: &[Option<bool>],
    ) -> Vec<(String, String)> {
        use crate::stats::DropReason;
        let mut out = Vec::new();
        let mut tx_full = vec![0u64; self.ports.len()];
        let mut drops = [0u64; DropReason::N];
        for w in workers {
            for (a, p) in tx_full.iter_mut().zip(w.load_ports()) {
                *a += p.tx_full;
            }
            for (a, d) in drops.iter_mut().zip(w.load().drops) {
                *a += d;
            }
        }
        for (i, (&now, was)) in tx_full.iter().zip(self.tx_full.iter_mut()).enumerate() {
            if now > *was {
                let (port, n) = (&self.ports[i], now - *was);
                out.push((
                    format!("tx_full {port}"),
                    format!("port {port}: {n} frames dropped, TX queue full (tx_full)"),
                ));
            }
            *was = now;
        }
        for r in [DropReason::PuntFull, DropReason::NoBuf] {
            let (now, was) = (drops[r as usize], self.drops[r as usize]);
            if now > was {
                out.push((
                    r.name().to_string(),
                    format!(
                        "{} frames dropped: {} ({})",
                        now - was,
                        r.name(),
                        r.describe()
                    ),
                ));
            }
        }
        self.drops = drops;
        for (i, (&now, was)) in links.iter().zip(self.link.iter_mut()).enumerate() {
            if let (Some(n), Some(w)) = (now, *was) {
                if n != w {
                    let port = &self.ports[i];
                    let state = if n { "up" } else { "down" };
                    out.push((format!("link {port}"), format!("port {port}: link {state}")));
                }
            }
            if now.is_some() {
                *was = now;
            }
        }
        for (k, m) in &out {
            warn_limited(k, format_args!("{m}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_watch_reports_growth_and_link_changes_only() {
        use crate::stats::{CoreCounters, DropReason, PortCounters, SharedCounters};
        let w = std::sync::Arc::new(SharedCounters::new(2));
        let ws = std::slice::from_ref(&w);
        let mut f = FaultWatch::new(vec!["a".into(), "b".into()]);
        let keys = |v: Vec<(String, String)>| v.into_iter().map(|x| x.0).collect::<Vec<_>>();
        assert!(f.check(ws, &[Some(true), None]).is_empty());
        let mut c = CoreCounters::default();
        let mut p = vec![PortCounters::default(); 2];
        p[1].tx_full = 3;
        c.drops[DropReason::PuntFull as usize] = 2;
        w.publish(&c, &p);
        let got = f.check(ws, &[Some(false), None]);
        assert!(got[0].1.contains("port b: 3 frames dropped"), "{got:?}");
        assert_eq!(keys(got), ["tx_full b", "punt_full", "link a"]);
        // Nothing new: nothing reported.
        assert!(f.check(ws, &[Some(false), None]).is_empty());
        assert_eq!(keys(f.check(ws, &[Some(true), None])), ["link a"]);
    }

    #[test]
    fn one_event_per_key_per_interval_with_the_suppressed_count() {
        let mut r = RateLimit::new(Duration::from_secs(10));
        assert_eq!(r.check("link p0", 0), Some(0));
        assert_eq!(r.check("link p0", 1), None);
        assert_eq!(r.check("link p0", 9_999), None);
        // Another key is not held back by the first.
        assert_eq!(r.check("tx_full p1", 5), Some(0));
        // The interval passed: allowed, with the two held back.
        assert_eq!(r.check("link p0", 10_000), Some(2));
        assert_eq!(r.check("link p0", 10_001), None);
        // Quiet for long: the next one reports what was held since.
        assert_eq!(r.check("link p0", 60_000), Some(1));
        assert_eq!(r.check("link p0", 70_000), Some(0));
        assert_eq!(r.check("tx_full p1", 6), None);
        assert_eq!(r.check("tx_full p1", 10_005), Some(1));
    }

    #[test]
    fn filters_are_levels_or_target_levels() {
        for ok in [
            "info",
            "WARN",
            "off",
            "info,hairpin::control=debug",
            "hairpin=trace",
        ] {
            assert!(parse_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "inof", "=debug", "info,hairpin=loud"] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
        assert!(parse_filter("inof").unwrap_err().contains("\"inof\""));
    }
}
