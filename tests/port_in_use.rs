//! Bad input for `afpacket:IF` / `afxdp:IF` ports with real `hairpin run`
//! processes on veths in a private namespace (`hpl-iu`, links `hpl-*`):
//! an interface enslaved to a kernel bridge or under a macvlan is refused, a
//! second instance on the same interface is refused (naming the holder's
//! pid), the lock goes with the first instance even when it is SIGKILLed, and
//! promiscuous mode is restored after SIGKILL and after a clean exit; a
//! missing interface and a run without root give clear errors naming the
//! port. Root only (else "skipped: not root"); takes a few seconds.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "hpl-iu";

fn ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().expect("run ip")
}

fn ipn(args: &[&str]) {
    let mut a = vec!["-n", NS];
    a.extend(args);
    let o = ip(&a);
    assert!(
        o.status.success(),
        "ip {a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Deletes the namespace (and with it every link made here) and kills the
/// instances this test started, by pid.
struct Guard {
    children: Vec<Child>,
    files: Vec<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = ip(&["netns", "del", NS]);
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn config(g: &mut Guard, tag: &str, a: &str, b: &str) -> String {
    let p = std::env::temp_dir().join(format!("hpl-iu-{}-{tag}.toml", std::process::id()));
    let s = format!(
        "[switch]\nrole = \"bridge\"\nworkers = [0]\nidle_sleep_us = 100\npool_size = 2048\n\n\
         [[port]]\nname = \"left\"\nbackend = \"{a}\"\nmode = \"access\"\npvid = 10\n\n\
         [[port]]\nname = \"right\"\nbackend = \"{b}\"\nmode = \"access\"\npvid = 10\n"
    );
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(s.as_bytes()))
        .unwrap();
    g.files.push(p.clone());
    p.display().to_string()
}

fn run_cmd(prefix: &[&str], cfg: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", NS])
        .args(prefix)
        .arg(env!("CARGO_BIN_EXE_hairpin"))
        .args(["run", "--config", cfg])
        .stdin(Stdio::null());
    c
}

/// A run that must fail at start: its stderr (bounded: a run that starts is killed).
fn run_fails(prefix: &[&str], cfg: &str) -> String {
    let mut c = run_cmd(prefix, cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = c.kill();
            let _ = c.wait();
            panic!("hairpin run with {cfg} started instead of failing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = c.wait_with_output().unwrap();
    assert!(!o.status.success(), "refused runs exit non-zero");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn promiscuity(dev: &str) -> String {
    let o = ip(&["-d", "-n", NS, "-o", "link", "show", dev]);
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.split_whitespace()
        .skip_while(|w| *w != "promiscuity")
        .nth(1)
        .unwrap_or("?")
        .to_string()
}

fn wait_promiscuity(dev: &str, want: &str) {
    let t0 = Instant::now();
    while promiscuity(dev) != want {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{dev}: promiscuity {} (want {want})",
            promiscuity(dev)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn interface_in_use_missing_and_not_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: not root (needs network namespaces and AF_PACKET)");
        return;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        println!("skipped: ip(8) not installed");
        return;
    }
    let _ = ip(&["netns", "del", NS]);
    let mut g = Guard {
        children: Vec::new(),
        files: Vec::new(),
    };
    let o = ip(&["netns", "add", NS]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ipn(&[
        "link", "add", "hpl-a0", "type", "veth", "peer", "name", "hpl-a1",
    ]);
    ipn(&[
        "link", "add", "hpl-b0", "type", "veth", "peer", "name", "hpl-b1",
    ]);
    ipn(&["link", "add", "hpl-br", "type", "bridge"]);
    for d in ["hpl-a0", "hpl-a1", "hpl-b0", "hpl-b1", "hpl-br"] {
        ipn(&["link", "set", d, "up"]);
    }
    let cfg = config(&mut g, "ab", "afpacket:hpl-a0", "afpacket:hpl-b0");

    // Enslaved to a kernel bridge: refused, naming the port, the interface and the bridge.
    ipn(&["link", "set", "hpl-b0", "master", "hpl-br"]);
    let e = run_fails(&[], &cfg);
    assert!(
        e.contains("port[1].backend (port \"right\"): afpacket:hpl-b0:"),
        "{e}"
    );
    assert!(e.contains("enslaved to bridge \"hpl-br\""), "{e}");
    ipn(&["link", "set", "hpl-b0", "nomaster"]);
    // A macvlan stacked on it: refused too (for afxdp as well).
    ipn(&["link", "add", "hpl-mv", "link", "hpl-b0", "type", "macvlan"]);
    let e = run_fails(&[], &cfg);
    assert!(e.contains("macvlan device \"hpl-mv\""), "{e}");
    let xcfg = config(&mut g, "xb", "afxdp:hpl-b1", "afxdp:hpl-b0");
    let e = run_fails(&[], &xcfg);
    assert!(
        e.contains("(port \"right\"): afxdp:hpl-b0:") && e.contains("macvlan"),
        "{e}"
    );
    ipn(&["link", "del", "hpl-mv"]);
    assert_eq!(
        promiscuity("hpl-a0"),
        "0",
        "refused runs leave nothing behind"
    );

    // A missing interface names the port and the interface.
    let mcfg = config(&mut g, "missing", "afpacket:hpl-a0", "afpacket:hpl-none");
    let e = run_fails(&[], &mcfg);
    assert!(
        e.contains("(port \"right\"): afpacket:hpl-none: no interface"),
        "{e}"
    );

    // Not root: a clear error naming the port.
    let e = run_fails(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        &cfg,
    );
    assert!(
        e.contains("(port \"left\"): afpacket:hpl-a0:") && e.contains("needs root"),
        "{e}"
    );

    // First instance holds both interfaces (promiscuous while it runs).
    let first = run_cmd(&[], &cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id();
    g.children.push(first);
    wait_promiscuity("hpl-a0", "1");
    wait_promiscuity("hpl-b0", "1");
    // A second instance, with either backend, is refused and told who holds it.
    let e = run_fails(&[], &cfg);
    assert!(e.contains("(port \"left\"): afpacket:hpl-a0:"), "{e}");
    assert!(
        e.contains(&format!("in use by another hairpin port by pid {pid}")),
        "{e}"
    );
    let xcfg = config(&mut g, "xa", "afxdp:hpl-a0", "afxdp:hpl-a1");
    let e = run_fails(&[], &xcfg);
    assert!(
        e.contains("(port \"left\"): afxdp:hpl-a0:") && e.contains("in use"),
        "{e}"
    );

    // SIGKILL: the kernel drops the lock and the promiscuous membership.
    let first = g.children.last_mut().unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    wait_promiscuity("hpl-a0", "0");
    wait_promiscuity("hpl-b0", "0");
    let second = run_cmd(&[], &cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    g.children.push(second);
    wait_promiscuity("hpl-a0", "1");
    // A clean stop (SIGTERM, once the signal handlers are in: "running") restores it too.
    let second = g.children.last_mut().unwrap();
    let mut err = std::io::BufReader::new(second.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains("hairpin: running") {
        let mut l = String::new();
        if err.read_line(&mut l).unwrap() == 0 {
            panic!("second instance ended: {log}");
        }
        log += &l;
    }
    // SAFETY: kill on the pid of our own child.
    assert_eq!(unsafe { libc::kill(second.id() as i32, libc::SIGTERM) }, 0);
    let _ = err.read_to_string(&mut log);
    let st = second.wait().unwrap();
    assert!(st.success(), "clean stop: {log}");
    assert_eq!(promiscuity("hpl-a0"), "0");
    assert_eq!(promiscuity("hpl-b0"), "0");
}
