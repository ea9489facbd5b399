//! `[telemetry]`: the control socket and the Prometheus endpoint of `hairpin run`.

use serde::{Deserialize, Serialize};

/// Default path of the control socket.
pub const DEFAULT_SOCKET: &str = "/run/hairpin/hairpin.sock";

/// `[telemetry]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryCfg {
    /// Path of the Unix control socket (`hairpin run --control-socket` overrides
    /// it). When neither is given, [`DEFAULT_SOCKET`] is tried and a failure to
    /// serve it is only a warning; a path that was asked for must work.
    #[serde(default)]
    pub control_socket: Option<String>,
    /// Group (name or numeric gid) that owns the socket; mode is 0660 either way.
    #[serde(default)]
    pub socket_group: Option<String>,
    /// `ADDR:PORT` for the Prometheus text endpoint (off when absent).
    #[serde(default)]
    pub prometheus: Option<String>,
    /// A client that sends nothing, or does not read its replies, for this
    /// long is disconnected (milliseconds).
    #[serde(default = "d_timeout")]
    pub client_timeout_ms: u64,
    /// Frames each worker's capture ring holds (`hairpin capture`): copies
    /// beyond it are dropped and counted `capture_dropped`. Allocated at the
    /// first capture, `capture_queue` × the largest frame per worker.
    #[serde(default = "d_capture_queue")]
    pub capture_queue: usize,
}

fn d_timeout() -> u64 {
    5000
}

fn d_capture_queue() -> usize {
    1024
}

impl Default for TelemetryCfg {
    fn default() -> Self {
        TelemetryCfg {
            control_socket: None,
            socket_group: None,
            prometheus: None,
            client_timeout_ms: d_timeout(),
            capture_queue: d_capture_queue(),
        }
    }
}

impl TelemetryCfg {
    /// Check the values; errors are `(key, reason)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let k = |s: &str| format!("telemetry.{s}");
        if self.control_socket.as_deref() == Some("") {
            return Err((k("control_socket"), "must not be empty".into()));
        }
        if let Some(p) = &self.prometheus {
            p.parse::<std::net::SocketAddr>().map_err(|e| {
                (
                    k("prometheus"),
                    format!("{p:?} is not ADDR:PORT (e.g. \"127.0.0.1:9550\"): {e}"),
                )
            })?;
        }
        if let Some(g) = &self.socket_group {
            if g.is_empty() {
                return Err((k("socket_group"), "must not be empty".into()));
            }
        }
        if !(10..=3_600_000).contains(&self.client_timeout_ms) {
            return Err((
                k("client_timeout_ms"),
                format!("{} is outside 10..=3600000", self.client_timeout_ms),
            ));
        }
        if !(1..=1 << 20).contains(&self.capture_queue) {
            return Err((
                k("capture_queue"),
                format!("{} is outside 1..=1048576", self.capture_queue),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn err(extra: &str) -> String {
        let s = format!("[switch]\nworkers = [0]\n[[port]]\nname = \"a\"\n[telemetry]\n{extra}\n");
        Config::parse(&s).unwrap_err().to_string()
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = err("prometheus = \"localhost\"");
        assert!(
            e.contains("telemetry.prometheus") && e.contains("ADDR:PORT"),
            "{e}"
        );
        let e = err("control_socket = \"\"");
        assert!(e.contains("telemetry.control_socket"), "{e}");
        let e = err("socket_group = \"\"");
        assert!(e.contains("telemetry.socket_group"), "{e}");
        let e = err("client_timeout_ms = 1");
        assert!(e.contains("telemetry.client_timeout_ms"), "{e}");
        let e = err("capture_queue = 0");
        assert!(e.contains("telemetry.capture_queue"), "{e}");
        let e = err("sokcet = 1");
        assert!(e.contains("sokcet"), "{e}");
    }

    #[test]
    fn defaults_and_values() {
        let c = Config::parse("[switch]\nworkers = [0]\n[[port]]\nname = \"a\"\n").unwrap();
        assert_eq!(c.telemetry, Default::default());
        assert_eq!(c.telemetry.client_timeout_ms, 5000);
        let c = Config::parse(
            "[switch]\nworkers = [0]\n[[port]]\nname = \"a\"\n[telemetry]\ncontrol_socket = \"x.sock\"\nsocket_group = \"adm\"\nprometheus = \"[::1]:9550\"\n",
        )
        .unwrap();
        assert_eq!(c.telemetry.control_socket.as_deref(), Some("x.sock"));
        assert_eq!(c.telemetry.prometheus.as_deref(), Some("[::1]:9550"));
    }
}
