//! Helpers shared by the tests that talk to a control socket and feed an
//! in-process switch through ring cables (tests/control_socket.rs,
//! tests/capture.rs).
#![allow(dead_code)]

use hairpin::buf::{Burst, Pool};
use hairpin::port::ring::RingQueue;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long any wait of these helpers may take before the test fails.
pub const BOUND: Duration = Duration::from_secs(30);

/// A control-socket client: newline-delimited JSON requests and replies.
pub struct Client {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Client {
    /// Connect (replies time out after [`BOUND`]).
    pub fn connect(p: &Path) -> Client {
        let s = UnixStream::connect(p).unwrap();
        s.set_read_timeout(Some(BOUND)).unwrap();
        Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }
    /// Send one line as it is; the reply.
    pub fn raw(&mut self, line: &str) -> Value {
        self.w.write_all(line.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("reply not JSON ({e}): {l:?}"))
    }
    /// Send a request; the whole reply.
    pub fn ask(&mut self, req: Value) -> Value {
        self.raw(&req.to_string())
    }
    /// Send a request that must succeed; its `data`.
    pub fn ok(&mut self, req: Value) -> Value {
        let r = self.ask(req.clone());
        assert_eq!(r["ok"], true, "{req} → {r}");
        r["data"].clone()
    }
    /// Ask until `f` holds (published counters lag by a few hundred poll loops).
    pub fn until(&mut self, req: Value, f: impl Fn(&Value) -> bool) -> Value {
        let t0 = Instant::now();
        loop {
            let d = self.ok(req.clone());
            if f(&d) {
                return d;
            }
            assert!(
                t0.elapsed() < BOUND,
                "{req}: condition never held; last {d}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The far ends of ring cables: sends (retrying while the ring is full) and
/// reads everything back, counting per port.
pub struct RingGen {
    /// Far end of each port's cable, by port id.
    pub peers: Vec<RingQueue>,
    /// Where frames are built and freed.
    pub pool: Arc<Pool>,
    /// Frames received back, by port id.
    pub got: Vec<u64>,
    out: Burst,
}

impl RingGen {
    /// Over these cable ends.
    pub fn new(peers: Vec<RingQueue>, pool: Arc<Pool>) -> RingGen {
        RingGen {
            got: vec![0; peers.len()],
            peers,
            pool,
            out: Burst::new(32),
        }
    }
    /// Read what every port sent back (counted, freed).
    pub fn drain(&mut self) {
        for (i, q) in self.peers.iter_mut().enumerate() {
            q.rx(&mut self.out);
            self.got[i] += self.out.len() as u64;
            for x in self.out.drain() {
                self.pool.free(x);
            }
        }
    }
    /// Send `f` into port `p`, draining while its ring is full.
    pub fn send(&mut self, p: usize, f: &[u8]) {
        let t0 = Instant::now();
        loop {
            if let Some(mut b) = self.pool.alloc() {
                assert!(self.pool.fill(&mut b, f));
                match self.peers[p].tx_one(b) {
                    Ok(()) => return,
                    Err(b) => self.pool.free(b),
                }
            }
            assert!(t0.elapsed() < BOUND, "port {p} never took a frame");
            self.drain();
            std::thread::yield_now();
        }
    }
}

/// Serve `view`'s control socket at `dir/s.sock` (a fresh `dir`); the
/// socket's path, its stop flag and the server.
pub fn serve_socket(
    dir: &Path,
    view: Arc<hairpin::telemetry::View>,
) -> (
    std::path::PathBuf,
    Arc<std::sync::atomic::AtomicBool>,
    hairpin::telemetry::server::SocketServer,
) {
    use hairpin::telemetry::server;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let sock = dir.join("s.sock");
    let tstop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let srv = server::serve(
        view,
        server::SocketOpts {
            path: sock.clone(),
            group: None,
            client_timeout: Duration::from_secs(5),
            worker_cores: vec![],
        },
        tstop.clone(),
    )
    .unwrap();
    (sock, tstop, srv)
}

/// One unpinned worker (burst 32, idle back-off 100 µs) running `task`; its
/// stop flag and the running worker.
pub fn start_worker(
    task: hairpin::worker::Task,
    clock: hairpin::util::Clock,
) -> (
    Arc<std::sync::atomic::AtomicBool>,
    hairpin::runtime::Running,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running = hairpin::runtime::start(
        vec![(
            hairpin::worker::WorkerCfg {
                core: None,
                burst: 32,
                idle_sleep_us: 100,
                idle_spin_us: 0,
            },
            vec![task],
        )],
        clock,
        stop.clone(),
    )
    .unwrap();
    (stop, running)
}
