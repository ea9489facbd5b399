//! The control socket: a Unix stream socket speaking newline-delimited JSON.
//!
//! One accept thread (pinned off the worker cores) hands each client to a
//! thread of its own (inheriting that affinity), at most [`MAX_CLIENTS`] at
//! once; a client beyond that gets an error reply and is closed. A client is
//! disconnected when it sends nothing for the client timeout, when a reply
//! cannot be written within it (a client that never reads), or after a
//! request longer than [`MAX_REQUEST`](super::MAX_REQUEST) (error reply
//! first). Every blocking call has a timeout, so no thread can get stuck and
//! all of them notice the stop flag within [`POLL`].

use super::{error_reply, View, MAX_REQUEST};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Clients served at once.
pub const MAX_CLIENTS: usize = 16;
/// How often blocked threads look at the stop flag.
pub const POLL: Duration = Duration::from_millis(100);

/// Settings of the control socket.
#[derive(Clone, Debug)]
pub struct SocketOpts {
    /// Where to bind.
    pub path: PathBuf,
    /// Group owning the socket (name or gid).
    pub group: Option<String>,
    /// Idle / write timeout per client.
    pub client_timeout: Duration,
    /// Worker cores: the threads avoid them.
    pub worker_cores: Vec<usize>,
}

/// A running control socket; the socket file is removed when the thread ends.
pub struct SocketServer {
    handle: JoinHandle<()>,
}

impl SocketServer {
    /// Wait for the accept thread (after the stop flag was set).
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

/// Resolve a group name (from /etc/group) or a numeric gid.
pub fn resolve_group(g: &str) -> Result<u32, String> {
    if let Ok(n) = g.parse::<u32>() {
        return Ok(n);
    }
    let text = std::fs::read_to_string("/etc/group")
        .map_err(|e| format!("telemetry.socket_group: cannot read /etc/group: {e}"))?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let gid = f.nth(1)?.parse::<u32>().ok()?;
            (name == g).then_some(gid)
        })
        .next()
        .ok_or_else(|| format!("telemetry.socket_group: no group {g:?} in /etc/group"))
}

fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, String> {
    let p = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("control socket {p}: {e}"))?;
    }
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if !md.file_type().is_socket() {
            return Err(format!(
                "control socket {p}: exists and is not a socket; not removing it"
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "control socket {p}: another process is serving it (a second hairpin?)"
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("control socket {p}: stale: {e}"))?;
    }
    let l = UnixListener::bind(path).map_err(|e| format!("control socket {p}: {e}"))?;
    let setup = || -> Result<(), String> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(|e| format!("control socket {p}: chmod 0660: {e}"))?;
        if let Some(g) = group {
            let gid = resolve_group(g)?;
            std::os::unix::fs::chown(path, None, Some(gid))
                .map_err(|e| format!("control socket {p}: chown to group {g}: {e}"))?;
        }
        l.set_nonblocking(true)
            .map_err(|e| format!("control socket {p}: {e}"))
    };
    if let Err(e) = setup() {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(l)
}

/// Bind the socket and start serving `view` until `stop` is set.
pub fn serve(
    view: Arc<View>,
    opts: SocketOpts,
    stop: Arc<AtomicBool>,
) -> Result<SocketServer, String> {
    let l = bind(&opts.path, opts.group.as_deref())?;
    let handle = std::thread::Builder::new()
        .name("hp-ctlsock".into())
        .spawn(move || {
            pin_or_warn(&opts.worker_cores, "control socket");
            accept_loop(&l, &view, &opts, &stop);
            let _ = std::fs::remove_file(&opts.path);
        })
        .map_err(|e| format!("control socket: cannot start its thread: {e}"))?;
    Ok(SocketServer { handle })
}

pub(super) fn pin_or_warn(workers: &[usize], what: &str) {
    if super::pin_off_workers(workers).is_none() {
        tracing::warn!(
            thread = what,
            "{what}: every core runs a worker; its thread is not pinned"
        );
    }
}

fn accept_loop(l: &UnixListener, view: &Arc<View>, opts: &SocketOpts, stop: &Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut clients: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((mut s, _)) => {
                let _ = s.set_nonblocking(false);
                let _ = s.set_write_timeout(Some(opts.client_timeout));
                if active.load(Ordering::Relaxed) >= MAX_CLIENTS {
                    crate::logging::warn_limited(
                        "control socket busy",
                        format_args!(
                            "control socket: {MAX_CLIENTS} clients already; a new one is refused"
                        ),
                    );
                    let r = error_reply(format!("busy: {MAX_CLIENTS} clients already"));
                    let _ = writeln!(s, "{r}");
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (v, a, st, t) = (
                    view.clone(),
                    active.clone(),
                    stop.clone(),
                    opts.client_timeout,
                );
                let h = std::thread::Builder::new()
                    .name("hp-ctlclient".into())
                    .spawn(move || {
                        client(s, &v, t, &st);
                        a.fetch_sub(1, Ordering::Relaxed);
                    });
                match h {
                    Ok(h) => clients.push(h),
                    Err(_) => {
                        active.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                clients.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                crate::logging::warn_limited(
                    "control socket accept",
                    format_args!("control socket: accept: {e}"),
                );
                std::thread::sleep(POLL);
            }
        }
    }
    for h in clients {
        let _ = h.join();
    }
}

/// Captures a client started: stopped (file closed) when the client goes,
/// however it goes.
struct Owned<'a> {
    view: &'a View,
    ids: Vec<u64>,
}

impl Drop for Owned<'_> {
    fn drop(&mut self) {
        for &id in &self.ids {
            self.view.capture_abandoned(id);
        }
    }
}

/// Serve one client until it closes, times out, or misbehaves.
fn client(mut s: UnixStream, view: &View, timeout: Duration, stop: &AtomicBool) {
    let _ = s.set_read_timeout(Some(POLL.min(timeout)));
    let mut owned = Owned {
        view,
        ids: Vec::new(),
    };
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Answer every complete line already buffered.
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line[..nl]);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let reply = view.answer_line(line);
            if reply["ok"] == true && reply["cmd"] == "capture.start" {
                owned.ids.extend(reply["data"]["id"].as_u64());
            }
            let mut out = reply.to_string();
            out.push('\n');
            if let Err(e) = s.write_all(out.as_bytes()) {
                crate::logging::warn_limited(
                    "control socket client write",
                    format_args!(
                        "control socket: a client does not read its replies ({e}); disconnected"
                    ),
                );
                return; // never reads (write timeout) or gone
            }
            last = Instant::now();
        }
        if buf.len() > MAX_REQUEST {
            crate::logging::warn_limited(
                "control socket oversize",
                format_args!("control socket: a request longer than {MAX_REQUEST} bytes; client disconnected"),
            );
            let r = error_reply(format!(
                "request longer than {MAX_REQUEST} bytes; closing the connection"
            ));
            let _ = writeln!(s, "{r}");
            return;
        }
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                last = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                if last.elapsed() >= timeout {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_name_or_number() {
        assert_eq!(resolve_group("4242").unwrap(), 4242);
        if let Ok(text) = std::fs::read_to_string("/etc/group") {
            if let Some(l) = text.lines().find(|l| l.starts_with("root:")) {
                let gid: u32 = l.split(':').nth(2).unwrap().parse().unwrap();
                assert_eq!(resolve_group("root").unwrap(), gid);
            }
        }
        let e = resolve_group("no-such-group-hp").unwrap_err();
        assert!(
            e.contains("telemetry.socket_group") && e.contains("no-such-group-hp"),
            "{e}"
        );
    }

    #[test]
    fn refuses_a_path_that_is_not_a_socket() {
        let dir = std::env::temp_dir().join(format!("hp-srv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("plain");
        std::fs::write(&f, b"keep me").unwrap();
        let e = bind(&f, None).unwrap_err();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&f).unwrap(), b"keep me");
        // A stale socket (nobody listening) is replaced; the group is applied.
        let s = dir.join("s.sock");
        drop(UnixListener::bind(&s).unwrap());
        let gid = std::fs::metadata(&dir)
            .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
            .unwrap();
        let l = bind(&s, Some(&gid.to_string())).unwrap();
        let md = std::fs::metadata(&s).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o660);
        assert_eq!(std::os::unix::fs::MetadataExt::gid(&md), gid);
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
