//! Live packet capture of a running switch (`hairpin capture`, the
//! `capture.*` commands of the control socket) into pcapng files.
//!
//! Fast path: each worker's [`Pipeline`](crate::pipeline::Pipeline) holds a
//! [`Tap`]. Once per received burst (and once per port flush on TX) it reads
//! one atomic bit mask; while no capture runs on that port and direction
//! that is all it does. While one runs, it copies each frame (up to the
//! capture's snap length) with a timestamp, the port and the direction into
//! its own preallocated single-producer ring ([`Ring`], one per worker,
//! allocated when the first capture starts, never on a worker). A full ring
//! drops the copy and counts it (`capture_dropped`, per port and direction);
//! the frame itself is forwarded as always. No lock, no allocation, no
//! system call on a worker.
//!
//! TX copies are staged before the port's `tx_burst` and published only for
//! the frames the port took (it takes them from the front), so a tx capture
//! shows what was sent, not frames refused as `tx_full`.
//!
//! A capture thread (`hp-capture`, off the worker cores, running while any
//! capture does) drains the rings every millisecond and writes each record
//! to the file of the capture of its port ([`crate::pcapng`]).
//!
//! `unsafe`: the ring's slots (single producer, single consumer).
#![allow(unsafe_code)]

use crate::buf::{PktBuf, Pool};
use crate::pcapng::{PcapngWriter, FLAG_INBOUND, FLAG_OUTBOUND};
use crate::util::Clock;
use serde_json::{json, Map, Value};
use std::cell::UnsafeCell;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// Largest number of ports a capture can address (the masks are 64 bits).
pub const MAX_PORTS: usize = 64;
/// Direction index: received on the port.
pub const RX: usize = 0;
/// Direction index: sent on the port.
pub const TX: usize = 1;
/// How often the capture thread drains the rings.
pub const DRAIN_EVERY: Duration = Duration::from_millis(1);
/// Largest snap length.
pub const MAX_SNAPLEN: u32 = 65535;

/// Header of one captured copy.
#[derive(Clone, Copy, Default)]
struct Meta {
    ts_ns: u64,
    orig: u32,
    len: u32,
    port: u16,
    dir: u8,
}

#[repr(align(64))]
struct Padded(AtomicUsize);

/// One worker's ring of captured copies: fixed slots of `slot` bytes, one
/// producer (the worker), one consumer (the capture thread, under the hub's
/// lock).
pub struct Ring {
    cap: usize,
    slot: usize,
    meta: Box<[UnsafeCell<Meta>]>,
    data: Box<[UnsafeCell<u8>]>,
    /// Next record the consumer reads.
    head: Padded,
    /// Next record the producer writes (published with Release).
    tail: Padded,
    /// Copies dropped because the ring was full, by `port * 2 + dir`; written by the producer only.
    dropped: Box<[AtomicU64]>,
}

// SAFETY: slots in [head, tail) are only read by the consumer, slots outside
// only written by the single producer; the Release store of `tail` /
// Acquire load orders the slot contents (and the same for `head`).
unsafe impl Sync for Ring {}
// SAFETY: as above; the raw cells hold plain data.
unsafe impl Send for Ring {}

impl Ring {
    fn new(cap: usize, slot: usize) -> Ring {
        Ring {
            cap,
            slot,
            meta: (0..cap).map(|_| UnsafeCell::new(Meta::default())).collect(),
            data: (0..cap * slot).map(|_| UnsafeCell::new(0)).collect(),
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            dropped: (0..MAX_PORTS * 2).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Free slots, as the producer sees them.
    #[inline]
    fn room(&self) -> usize {
        let tail = self.tail.0.load(Ordering::Relaxed);
        self.cap - tail.wrapping_sub(self.head.0.load(Ordering::Acquire))
    }

    /// Producer: write record `tail + k` (not yet visible). `k < room()`.
    #[inline]
    fn stage(&self, k: usize, m: Meta, bytes: &[u8]) {
        let i = self.tail.0.load(Ordering::Relaxed).wrapping_add(k) % self.cap;
        let n = bytes.len().min(self.slot);
        // SAFETY: slot i is outside [head, tail) (k < room), so the consumer
        // does not touch it; only this producer writes it.
        unsafe {
            *self.meta[i].get() = Meta { len: n as u32, ..m };
            let dst = UnsafeCell::raw_get(self.data.as_ptr().add(i * self.slot));
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n);
        }
    }

    /// Producer: make the first `k` staged records visible.
    #[inline]
    fn publish(&self, k: usize) {
        if k > 0 {
            let t = self.tail.0.load(Ordering::Relaxed);
            self.tail.0.store(t.wrapping_add(k), Ordering::Release);
        }
    }

    /// Producer: count `n` copies that found no room.
    #[inline]
    fn count_dropped(&self, port: usize, dir: usize, n: usize) {
        if n > 0 {
            let c = &self.dropped[port * 2 + dir];
            c.store(c.load(Ordering::Relaxed) + n as u64, Ordering::Relaxed);
        }
    }

    /// Consumer: hand every visible record to `f`, then free the slots.
    fn drain(&self, mut f: impl FnMut(&Meta, &[u8])) {
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Acquire);
        let mut h = head;
        while h != tail {
            let i = h % self.cap;
            // SAFETY: h is in [head, tail): published by the producer, which
            // does not write it again before `head` moves past it.
            let (m, bytes) = unsafe {
                let m = *self.meta[i].get();
                let p = UnsafeCell::raw_get(self.data.as_ptr().add(i * self.slot));
                (m, std::slice::from_raw_parts(p, m.len as usize))
            };
            f(&m, bytes);
            h = h.wrapping_add(1);
        }
        self.head.0.store(tail, Ordering::Release);
    }
}

/// A capture in progress.
struct Session {
    id: u64,
    port: usize,
    port_name: String,
    dirs: [bool; 2],
    snaplen: u32,
    count: u64,
    path: PathBuf,
    w: Option<PcapngWriter<BufWriter<File>>>,
    iface: [u32; 2],
    /// Add to the switch clock to get ns since the Unix epoch.
    epoch_ns: u64,
    frames: u64,
    bytes: u64,
    dropped_at_start: [u64; 2],
    done: bool,
    error: Option<String>,
}

struct State {
    sessions: Vec<Session>,
    next_id: u64,
    drainer: bool,
}

/// Capture state of one switch instance: the masks workers read, the rings,
/// the captures in progress.
pub struct CaptureHub {
    masks: [AtomicU64; 2],
    rings: Box<[OnceLock<Ring>]>,
    /// Records per ring.
    queue: usize,
    /// Bytes per record (the largest frame the pool holds).
    slot: usize,
    /// The worker cores (the capture thread avoids them).
    cores: Vec<usize>,
    state: Mutex<State>,
}

/// A worker's end of the hub.
pub struct Tap {
    hub: Arc<CaptureHub>,
    worker: usize,
}

impl CaptureHub {
    /// A hub for one worker per entry of `cores` (the core each is pinned
    /// to), whose rings (allocated at the first capture) hold `queue` copies
    /// of up to `slot` bytes each.
    pub fn new(cores: &[usize], queue: usize, slot: usize) -> Arc<CaptureHub> {
        Arc::new(CaptureHub {
            masks: [AtomicU64::new(0), AtomicU64::new(0)],
            rings: cores.iter().map(|_| OnceLock::new()).collect(),
            queue: queue.max(1),
            slot: slot.max(1),
            cores: cores.to_vec(),
            state: Mutex::new(State {
                sessions: Vec::new(),
                next_id: 1,
                drainer: false,
            }),
        })
    }

    /// Worker `w`'s tap (None when the hub has no ring for it).
    pub fn tap(self: &Arc<Self>, w: usize) -> Option<Tap> {
        (w < self.rings.len()).then(|| Tap {
            hub: self.clone(),
            worker: w,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Copies dropped (ring full) on `port`, [rx, tx], summed over workers, since the start.
    pub fn dropped(&self, port: usize) -> [u64; 2] {
        let mut d = [0; 2];
        if port >= MAX_PORTS {
            return d;
        }
        for r in self.rings.iter().filter_map(OnceLock::get) {
            for (dir, x) in d.iter_mut().enumerate() {
                *x += r.dropped[port * 2 + dir].load(Ordering::Relaxed);
            }
        }
        d
    }

    fn set_mask(&self, port: usize, dirs: [bool; 2], on: bool) {
        for (dir, &want) in dirs.iter().enumerate() {
            if want {
                if on {
                    self.masks[dir].fetch_or(1 << port, Ordering::Release);
                } else {
                    self.masks[dir].fetch_and(!(1 << port), Ordering::Release);
                }
            }
        }
    }

    /// `capture.start`: `port` (name, resolved against `ports`), `dir`
    /// (rx|tx|both, default both), `snaplen` (default 65535), `count` (0 or
    /// absent: until stopped), `path` (the pcapng file to create, written by
    /// the switch process).
    pub fn start(
        self: &Arc<Self>,
        ports: &[String],
        clock: &Clock,
        obj: &Map<String, Value>,
    ) -> Result<Value, String> {
        let name = obj
            .get("port")
            .and_then(Value::as_str)
            .ok_or("\"port\" (a port name) is missing")?;
        let port = ports
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("port {name:?} does not exist; ports: {}", ports.join(", ")))?;
        if port >= MAX_PORTS {
            return Err(format!(
                "port {name:?}: only the first {MAX_PORTS} ports can be captured"
            ));
        }
        let dirs = match obj.get("dir") {
            None | Some(Value::Null) => [true, true],
            Some(v) => parse_dir(v.as_str().unwrap_or(""))
                .ok_or_else(|| format!("\"dir\" is \"rx\", \"tx\" or \"both\", not {v}"))?,
        };
        let num = |k: &str, def: u64, max: u64| -> Result<u64, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(def),
                Some(v) => v
                    .as_u64()
                    .filter(|&x| x <= max)
                    .ok_or_else(|| format!("\"{k}\" is a number in 0..={max}, not {v}")),
            }
        };
        let snaplen = num("snaplen", MAX_SNAPLEN as u64, MAX_SNAPLEN as u64)? as u32;
        if snaplen == 0 {
            return Err("\"snaplen\" is a number in 1..=65535, not 0".into());
        }
        let count = num("count", 0, u64::MAX)?;
        let path = PathBuf::from(
            obj.get("path")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .ok_or("\"path\" (the pcapng file to write) is missing")?,
        );
        if path.is_relative() {
            return Err(format!(
                "\"path\" {}: give an absolute path (the switch writes the file; its working directory is not yours)",
                path.display()
            ));
        }
        let mut st = self.lock();
        if let Some(s) = st.sessions.iter().find(|s| s.port == port) {
            return Err(format!(
                "port {name:?} is already being captured (capture {} to {}); stop it first",
                s.id,
                s.path.display()
            ));
        }
        let open = || -> std::io::Result<(PcapngWriter<BufWriter<File>>, [u32; 2])> {
            let f = File::create(&path)?;
            let mut w = PcapngWriter::new(
                BufWriter::with_capacity(1 << 16, f),
                concat!("hairpin ", env!("CARGO_PKG_VERSION")),
            )?;
            let mut iface = [0; 2];
            for (dir, what) in [(RX, "received"), (TX, "sent")] {
                if dirs[dir] {
                    iface[dir] = w.interface(
                        name,
                        &format!("hairpin port {name}, frames {what}"),
                        snaplen,
                    )?;
                }
            }
            w.flush()?;
            Ok((w, iface))
        };
        let (w, iface) = open().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        for r in self.rings.iter() {
            r.get_or_init(|| Ring::new(self.queue, self.slot));
        }
        // Copies left over from a capture that just stopped are not this one's.
        self.drain_locked(&mut st);
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let id = st.next_id;
        st.next_id += 1;
        st.sessions.push(Session {
            id,
            port,
            port_name: name.to_string(),
            dirs,
            snaplen,
            count,
            path,
            w: Some(w),
            iface,
            epoch_ns: wall.saturating_sub(clock.now_ns()),
            frames: 0,
            bytes: 0,
            dropped_at_start: self.dropped(port),
            done: false,
            error: None,
        });
        self.set_mask(port, dirs, true);
        let s = st.sessions.last().expect("just pushed");
        let reply = self.session_json(s);
        if !st.drainer {
            let hub = self.clone();
            let spawned = std::thread::Builder::new()
                .name("hp-capture".into())
                .spawn(move || hub.drain_loop());
            match spawned {
                Ok(_) => st.drainer = true,
                Err(e) => {
                    let s = st.sessions.pop().expect("just pushed");
                    self.set_mask(s.port, s.dirs, false);
                    return Err(format!("cannot start the capture thread: {e}"));
                }
            }
        }
        Ok(reply)
    }

    /// `capture.stop` `{id}`: stop, write what is queued, close the file; the final figures.
    pub fn stop(&self, id: u64) -> Result<Value, String> {
        let mut st = self.lock();
        let i = st
            .sessions
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| format!("no capture {id} (already stopped?)"))?;
        let (port, dirs) = (st.sessions[i].port, st.sessions[i].dirs);
        self.set_mask(port, dirs, false);
        self.drain_locked(&mut st);
        let mut s = st.sessions.remove(i);
        if let Some(w) = s.w.take() {
            if let Err(e) = w.into_inner() {
                s.error
                    .get_or_insert(format!("cannot write {}: {e}", s.path.display()));
            }
        }
        s.done = true;
        Ok(self.session_json(&s))
    }

    /// Stop every capture in progress (a reload that adds or removes ports
    /// renumbers them): each file gets what was queued and is closed. The
    /// number stopped.
    pub fn stop_all(&self) -> usize {
        let ids: Vec<u64> = self.lock().sessions.iter().map(|s| s.id).collect();
        ids.iter().filter(|&&id| self.stop(id).is_ok()).count()
    }

    /// `capture.status` `{id}`: the figures so far.
    pub fn status(&self, id: u64) -> Result<Value, String> {
        let mut st = self.lock();
        self.drain_locked(&mut st);
        st.sessions
            .iter()
            .find(|s| s.id == id)
            .map(|s| self.session_json(s))
            .ok_or_else(|| format!("no capture {id} (already stopped?)"))
    }

    /// `capture.list`: every capture in progress.
    pub fn list(&self) -> Value {
        let st = self.lock();
        Value::Array(st.sessions.iter().map(|s| self.session_json(s)).collect())
    }

    fn session_json(&self, s: &Session) -> Value {
        let now = self.dropped(s.port);
        let dropped = |d: usize| now[d].saturating_sub(s.dropped_at_start[d]);
        let dir = match s.dirs {
            [true, true] => "both",
            [true, false] => "rx",
            _ => "tx",
        };
        json!({
            "id": s.id,
            "port": s.port_name,
            "dir": dir,
            "snaplen": s.snaplen,
            "count": s.count,
            "path": s.path.display().to_string(),
            "frames": s.frames,
            "bytes": s.bytes,
            "capture_dropped": dropped(RX) + dropped(TX),
            "capture_dropped_rx": dropped(RX),
            "capture_dropped_tx": dropped(TX),
            "done": s.done,
            "error": s.error,
        })
    }

    fn drain_loop(self: Arc<Self>) {
        crate::telemetry::pin_off_workers(&self.cores);
        loop {
            {
                let mut st = self.lock();
                if st.sessions.is_empty() {
                    st.drainer = false;
                    return;
                }
                self.drain_locked(&mut st);
            }
            std::thread::sleep(DRAIN_EVERY);
        }
    }

    /// Move every queued copy into its capture's file (copies for ports
    /// nobody captures any more are discarded).
    fn drain_locked(&self, st: &mut State) {
        let mut wrote = false;
        for r in self.rings.iter().filter_map(OnceLock::get) {
            r.drain(|m, bytes| {
                let Some(s) = st
                    .sessions
                    .iter_mut()
                    .find(|s| s.port == m.port as usize && !s.done)
                else {
                    return;
                };
                let dir = m.dir as usize;
                if !s.dirs[dir] {
                    return;
                }
                let Some(w) = s.w.as_mut() else { return };
                let keep = &bytes[..bytes.len().min(s.snaplen as usize)];
                let flags = if dir == RX {
                    FLAG_INBOUND
                } else {
                    FLAG_OUTBOUND
                };
                match w.packet(s.iface[dir], s.epoch_ns + m.ts_ns, m.orig, keep, flags) {
                    Ok(()) => {
                        s.frames += 1;
                        s.bytes += m.orig as u64;
                        wrote = true;
                    }
                    Err(e) => {
                        s.error = Some(format!("cannot write {}: {e}", s.path.display()));
                        s.done = true;
                    }
                }
                if s.count > 0 && s.frames >= s.count {
                    s.done = true;
                }
                if s.done {
                    self.set_mask(s.port, s.dirs, false);
                }
            });
        }
        if wrote {
            for s in st.sessions.iter_mut() {
                if let Some(w) = s.w.as_mut() {
                    if let Err(e) = w.flush() {
                        s.error = Some(format!("cannot write {}: {e}", s.path.display()));
                        s.done = true;
                        self.set_mask(s.port, s.dirs, false);
                    }
                }
            }
        }
    }
}

/// `rx`, `tx` or `both` as [rx, tx].
pub fn parse_dir(s: &str) -> Option<[bool; 2]> {
    match s {
        "rx" => Some([true, false]),
        "tx" => Some([false, true]),
        "both" => Some([true, true]),
        _ => None,
    }
}

impl Tap {
    /// True while frames of direction `dir` on `port` are captured: one
    /// relaxed atomic load (call once per burst).
    #[inline(always)]
    pub fn on(&self, dir: usize, port: usize) -> bool {
        port < MAX_PORTS && self.hub.masks[dir].load(Ordering::Relaxed) >> port & 1 != 0
    }

    /// Copy a received burst (call only when [`Tap::on`]).
    #[cold]
    #[inline(never)]
    pub fn copy_rx(&self, port: usize, frames: &[PktBuf], pool: &Pool, now_ns: u64) {
        let k = self.stage(RX, port, frames, pool, now_ns);
        if let Some(r) = self.hub.rings[self.worker].get() {
            r.publish(k);
        }
    }

    /// Stage copies of frames about to be sent (call only when
    /// [`Tap::on`]); then [`Tap::commit_tx`] with what the port took.
    #[cold]
    #[inline(never)]
    pub fn stage_tx(&self, port: usize, frames: &[PktBuf], pool: &Pool, now_ns: u64) -> usize {
        self.stage(TX, port, frames, pool, now_ns)
    }

    /// Publish the copies of the first `sent` frames of the `staged` ones;
    /// sent frames that got no copy are counted dropped.
    #[inline]
    pub fn commit_tx(&self, port: usize, staged: usize, sent: usize) {
        if let Some(r) = self.hub.rings[self.worker].get() {
            r.publish(staged.min(sent));
            r.count_dropped(port, TX, sent.saturating_sub(staged));
        }
    }

    fn stage(&self, dir: usize, port: usize, frames: &[PktBuf], pool: &Pool, now_ns: u64) -> usize {
        let Some(r) = self.hub.rings[self.worker].get() else {
            return 0;
        };
        let n = frames.len().min(r.room());
        for (k, b) in frames[..n].iter().enumerate() {
            let m = Meta {
                ts_ns: now_ns,
                orig: b.len() as u32,
                len: 0,
                port: port as u16,
                dir: dir as u8,
            };
            r.stage(k, m, pool.data(b));
        }
        if dir == RX {
            r.count_dropped(port, dir, frames.len() - n);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_order_publishes_only_what_was_committed_and_counts_drops() {
        let r = Ring::new(4, 8);
        assert_eq!(r.room(), 4);
        let m = |p: u16| Meta {
            ts_ns: p as u64,
            orig: 100,
            len: 0,
            port: p,
            dir: 1,
        };
        for k in 0..3 {
            r.stage(k, m(k as u16), &[k as u8; 20]);
        }
        // Nothing visible before publish.
        let mut seen = Vec::new();
        r.drain(|m, b| seen.push((m.port, b.to_vec())));
        assert!(seen.is_empty());
        r.publish(2);
        assert_eq!(r.room(), 2);
        r.drain(|m, b| seen.push((m.port, b.to_vec())));
        // Cut to the slot size; the third staged copy was never published.
        assert_eq!(seen, vec![(0, vec![0; 8]), (1, vec![1; 8])]);
        assert_eq!(r.room(), 4);
        // Wrap around.
        for round in 0..3u16 {
            for k in 0..4 {
                r.stage(k, m(round * 4 + k as u16), &[7; 3]);
            }
            r.publish(4);
            assert_eq!(r.room(), 0);
            let mut got = Vec::new();
            r.drain(|m, b| got.push((m.port, b.len())));
            let want: Vec<(u16, usize)> = (0..4).map(|k| (round * 4 + k, 3)).collect();
            assert_eq!(got, want);
        }
        r.count_dropped(3, TX, 5);
        r.count_dropped(3, TX, 0);
        assert_eq!(r.dropped[3 * 2 + TX].load(Ordering::Relaxed), 5);
    }

    #[test]
    fn directions() {
        assert_eq!(parse_dir("rx"), Some([true, false]));
        assert_eq!(parse_dir("tx"), Some([false, true]));
        assert_eq!(parse_dir("both"), Some([true, true]));
        assert_eq!(parse_dir("in"), None);
    }

    #[test]
    fn start_checks_its_arguments_and_refuses_a_second_capture_of_a_port() {
        let hub = CaptureHub::new(&[0], 8, 64);
        let ports = vec!["a".to_string(), "b".to_string()];
        let clock = Clock::new();
        let dir = std::env::temp_dir().join(format!("hp-capture-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.pcapng");
        let req = |v: Value| v.as_object().unwrap().clone();
        let path = f.display().to_string();
        let e = hub
            .start(&ports, &clock, &req(json!({"port": "x", "path": path})))
            .unwrap_err();
        assert!(e.contains("\"x\"") && e.contains("a, b"), "{e}");
        let e = hub
            .start(
                &ports,
                &clock,
                &req(json!({"port": "a", "dir": "up", "path": path})),
            )
            .unwrap_err();
        assert!(e.contains("\"dir\""), "{e}");
        let e = hub
            .start(
                &ports,
                &clock,
                &req(json!({"port": "a", "snaplen": 0, "path": path})),
            )
            .unwrap_err();
        assert!(e.contains("snaplen"), "{e}");
        let e = hub
            .start(
                &ports,
                &clock,
                &req(json!({"port": "a", "path": "rel.pcapng"})),
            )
            .unwrap_err();
        assert!(e.contains("absolute"), "{e}");
        let bad = dir.join("no-such-dir").join("x.pcapng");
        let e = hub
            .start(
                &ports,
                &clock,
                &req(json!({"port": "a", "path": bad.display().to_string()})),
            )
            .unwrap_err();
        assert!(
            e.contains(&bad.display().to_string()) && e.contains("No such file"),
            "{e}"
        );
        let ok = hub
            .start(
                &ports,
                &clock,
                &req(json!({"port": "a", "dir": "rx", "path": path})),
            )
            .unwrap();
        let id = ok["id"].as_u64().unwrap();
        let tap = hub.tap(0).unwrap();
        assert!(tap.on(RX, 0) && !tap.on(TX, 0) && !tap.on(RX, 1));
        let e = hub
            .start(&ports, &clock, &req(json!({"port": "a", "path": path})))
            .unwrap_err();
        assert!(e.contains("already being captured"), "{e}");
        assert_eq!(hub.list().as_array().unwrap().len(), 1);
        let fin = hub.stop(id).unwrap();
        assert_eq!(fin["frames"], 0);
        assert!(!tap.on(RX, 0));
        assert!(hub.stop(id).unwrap_err().contains("no capture"));
        assert!(hub.tap(1).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
