//! Helpers shared by the tests that build network namespaces and run
//! commands in them (tests/lldpad_interop.rs, tests/vm_station.rs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where `name` is on PATH or in the usual system directories.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// A command's stdout and stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run `args` in namespace `ns`.
pub fn in_ns(ns: &str, args: &[&str]) -> Output {
    Command::new(tool("ip").expect("ip (iproute2)"))
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("ip netns exec {ns} {args:?}: {e}"))
}

/// Run `args` in `ns`; panic with the output when it fails; the output.
pub fn ok(ns: &str, args: &[&str]) -> String {
    let o = in_ns(ns, args);
    assert!(o.status.success(), "{args:?} in {ns}: {}", text(&o));
    text(&o)
}

/// `ip ARGS` in this namespace; panic with the output when it fails.
pub fn ip(args: &[&str]) {
    let o = Command::new(tool("ip").expect("ip (iproute2)"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "ip {args:?}: {}", text(&o));
}

/// Poll `f` every 50 ms until it returns Some or `secs` pass.
pub fn poll<T>(secs: f64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
