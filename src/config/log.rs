//! `[log]`: what `hairpin run` logs (see [`crate::logging`]).

use serde::{Deserialize, Serialize};

/// `[log]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogCfg {
    /// A level (`error`, `warn`, `info`, `debug`, `trace`, `off`) or a
    /// filter in `RUST_LOG` syntax (`info,hairpin::control=debug`). A
    /// non-empty `RUST_LOG` in the environment wins over it.
    #[serde(default = "d_level")]
    pub level: String,
}

fn d_level() -> String {
    crate::logging::DEFAULT_LEVEL.into()
}

impl Default for LogCfg {
    fn default() -> Self {
        LogCfg { level: d_level() }
    }
}

impl LogCfg {
    /// Check the values; errors are `(key, reason)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        crate::logging::parse_filter(&self.level)
            .map(|_| ())
            .map_err(|e| {
                (
                    "log.level".into(),
                    format!(
                    "{:?}: {e} (a level: error, warn, info, debug, trace, off; or RUST_LOG syntax)",
                    self.level
                ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[switch]\nworkers = [0]\n[[port]]\nname = \"a\"\n";

    #[test]
    fn levels_and_bad_values() {
        let c = Config::parse(BASE).unwrap();
        assert_eq!(c.log.level, "info");
        for ok in ["debug", "off", "warn,hairpin::control=debug"] {
            let c = Config::parse(&format!("{BASE}[log]\nlevel = \"{ok}\"\n")).unwrap();
            assert_eq!(c.log.level, ok);
        }
        let e = Config::parse(&format!("{BASE}[log]\nlevel = \"loud\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.level") && e.contains("loud"), "{e}");
        let e = Config::parse(&format!("{BASE}[log]\nlevle = \"info\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("levle"), "{e}");
    }
}
