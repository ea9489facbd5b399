//! File ports: RX replays a pcap file, TX records to a pcap file.
//!
//! A [`PcapPort`] has one queue pair. RX reads records from the input file
//! into buffers from the port's [`Pool`], with the record's capture time in
//! [`PktBuf::ts`]; a record longer than a pool buffer is skipped and counted
//! (`rx_skipped_long`). When the file ends (or cannot be read further), RX
//! returns 0 and [`PcapPort::eof`] turns true. TX writes every frame, with its
//! `ts`, to the output file (nanosecond pcap) and frees the buffer: a pcap
//! port never refuses a frame. A port opened without an output accepts and
//! frees frames (`tx_discarded`); one without an input is at EOF from the start.
//!
//! Counters live in a shared block so they stay readable from the port after
//! its queue moved to a worker; the queue publishes them once per burst.

use super::{Port, PortQueue};
use crate::buf::{Burst, PktBuf, Pool};
use crate::pcap::{PcapError, PcapReader, PcapWriter};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A snapshot of a pcap port's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcapCounters {
    /// Frames received (read from the input file and handed to the switch).
    pub rx_pkts: u64,
    /// Bytes in those frames.
    pub rx_bytes: u64,
    /// Records skipped because they do not fit a pool buffer.
    pub rx_skipped_long: u64,
    /// Frames written to the output file.
    pub tx_pkts: u64,
    /// Bytes in those frames (as given; the file cuts frames over 65535 bytes).
    pub tx_bytes: u64,
    /// Frames accepted and freed because the port has no output file.
    pub tx_discarded: u64,
    /// Frames that could not be written (I/O error); freed, not retried.
    pub tx_errors: u64,
}

/// Counters and state shared by the port and its queue.
#[derive(Default)]
struct Shared {
    rx_pkts: AtomicU64,
    rx_bytes: AtomicU64,
    rx_skipped_long: AtomicU64,
    tx_pkts: AtomicU64,
    tx_bytes: AtomicU64,
    tx_discarded: AtomicU64,
    tx_errors: AtomicU64,
    eof: AtomicBool,
    /// The first read or write error, as text.
    error: Mutex<Option<String>>,
}

impl Shared {
    fn set_error(&self, e: String) {
        let mut g = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(e);
        }
    }
    fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn counters(&self) -> PcapCounters {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PcapCounters {
            rx_pkts: l(&self.rx_pkts),
            rx_bytes: l(&self.rx_bytes),
            rx_skipped_long: l(&self.rx_skipped_long),
            tx_pkts: l(&self.tx_pkts),
            tx_bytes: l(&self.tx_bytes),
            tx_discarded: l(&self.tx_discarded),
            tx_errors: l(&self.tx_errors),
        }
    }
}

/// The single queue pair of a [`PcapPort`].
pub struct PcapQueue {
    pool: Arc<Pool>,
    input: Option<PcapReader<File>>,
    output: Option<PcapWriter<File>>,
    /// Counters owned by this queue, published to `shared` once per burst.
    c: PcapCounters,
    shared: Arc<Shared>,
}

impl PcapQueue {
    /// True once the input is exhausted (or unreadable, or absent).
    pub fn eof(&self) -> bool {
        self.input.is_none()
    }

    /// This queue's counters.
    pub fn counters(&self) -> PcapCounters {
        self.c
    }

    fn publish(&self) {
        let s = &*self.shared;
        let c = &self.c;
        s.rx_pkts.store(c.rx_pkts, Ordering::Relaxed);
        s.rx_bytes.store(c.rx_bytes, Ordering::Relaxed);
        s.rx_skipped_long
            .store(c.rx_skipped_long, Ordering::Relaxed);
        s.tx_pkts.store(c.tx_pkts, Ordering::Relaxed);
        s.tx_bytes.store(c.tx_bytes, Ordering::Relaxed);
        s.tx_discarded.store(c.tx_discarded, Ordering::Relaxed);
        s.tx_errors.store(c.tx_errors, Ordering::Relaxed);
    }

    fn end_input(&mut self, err: Option<PcapError>) {
        if let Some(e) = err {
            self.shared.set_error(format!("input: {e}"));
        }
        self.input = None;
        self.shared.eof.store(true, Ordering::Release);
    }

    /// Read the next record that fits into `buf`. False at the end of input.
    fn read_into(&mut self, buf: &mut PktBuf) -> bool {
        loop {
            let Some(r) = self.input.as_mut() else {
                return false;
            };
            match r.next_record() {
                Ok(Some(rec)) => {
                    if rec.data.len() <= self.pool.max_frame() && self.pool.fill(buf, rec.data) {
                        buf.ts = rec.ts_ns;
                        return true;
                    }
                    self.c.rx_skipped_long += 1;
                }
                Ok(None) => {
                    self.end_input(None);
                    return false;
                }
                Err(e) => {
                    self.end_input(Some(e));
                    return false;
                }
            }
        }
    }
}

impl PortQueue for PcapQueue {
    fn rx_burst(&mut self, out: &mut Burst) -> usize {
        if self.input.is_none() {
            return 0;
        }
        let mut n = 0;
        while out.space() > 0 {
            // Take a buffer first: when the pool is empty the next record
            // stays in the file for a later call.
            let Some(mut b) = self.pool.alloc() else {
                break;
            };
            if !self.read_into(&mut b) {
                self.pool.free(b);
                break;
            }
            self.c.rx_pkts += 1;
            self.c.rx_bytes += b.len() as u64;
            // Cannot fail: space was checked.
            let _ = out.push(b);
            n += 1;
        }
        self.publish();
        n
    }

    fn tx_burst(&mut self, frames: &mut Burst) -> usize {
        let n = frames.len();
        for f in frames.drain() {
            match self.output.as_mut() {
                Some(w) => match w.write(f.ts, self.pool.data(&f)) {
                    Ok(()) => {
                        self.c.tx_pkts += 1;
                        self.c.tx_bytes += f.len() as u64;
                    }
                    Err(e) => {
                        self.c.tx_errors += 1;
                        self.shared.set_error(format!("output: {e}"));
                    }
                },
                None => self.c.tx_discarded += 1,
            }
            self.pool.free(f);
        }
        self.publish();
        n
    }

    fn flush(&mut self) {
        if let Some(w) = self.output.as_mut() {
            if let Err(e) = w.flush() {
                self.shared.set_error(format!("output: {e}"));
            }
        }
    }
}

impl Drop for PcapQueue {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A port backed by pcap files (one queue pair).
pub struct PcapPort {
    name: String,
    queue: Option<PcapQueue>,
    shared: Arc<Shared>,
}

impl PcapPort {
    /// Open a port named `name`: RX replays `input`, TX records to `output`
    /// (created or truncated). Either may be `None`. Errors name the file, and
    /// for a bad input header the byte offset and what is wrong.
    pub fn open(
        name: &str,
        pool: Arc<Pool>,
        input: Option<&Path>,
        output: Option<&Path>,
    ) -> Result<Self, PcapError> {
        let reader = input
            .map(PcapReader::open)
            .transpose()
            .map_err(|e| with_path(e, input.unwrap_or(Path::new(""))))?;
        let writer = output
            .map(PcapWriter::create)
            .transpose()
            .map_err(|e| with_path(e, output.unwrap_or(Path::new(""))))?;
        let shared = Arc::new(Shared::default());
        shared.eof.store(reader.is_none(), Ordering::Release);
        Ok(PcapPort {
            name: name.to_string(),
            queue: Some(PcapQueue {
                pool,
                input: reader,
                output: writer,
                c: PcapCounters::default(),
                shared: shared.clone(),
            }),
            shared,
        })
    }

    /// True once the input file is exhausted (or unreadable, or absent):
    /// RX will return no more frames.
    pub fn eof(&self) -> bool {
        self.shared.eof.load(Ordering::Acquire)
    }

    /// The counters, as last published by the queue (after each burst).
    pub fn counters(&self) -> PcapCounters {
        self.shared.counters()
    }

    /// The first read or write error, if any (a read error also ends the input).
    pub fn error(&self) -> Option<String> {
        self.shared.error()
    }

    /// Take the queue as the concrete type (once).
    pub fn take(&mut self) -> Option<PcapQueue> {
        self.queue.take()
    }
}

/// Put the path into a format or I/O error from a file's header.
fn with_path(e: PcapError, path: &Path) -> PcapError {
    match e {
        PcapError::Format { offset, reason } => PcapError::Format {
            offset,
            reason: format!("{}: {reason}", path.display()),
        },
        PcapError::Io { offset, source } => PcapError::Io {
            offset,
            source: std::io::Error::new(source.kind(), format!("{}: {source}", path.display())),
        },
        open => open,
    }
}

impl Port for PcapPort {
    fn name(&self) -> &str {
        &self.name
    }
    fn queues(&self) -> usize {
        1
    }
    fn take_queue(&mut self, q: usize) -> Option<Box<dyn PortQueue>> {
        if q != 0 {
            return None;
        }
        self.take().map(|x| Box::new(x) as Box<dyn PortQueue>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A unique path in the temp dir, removed on drop.
    struct TempPath(PathBuf);
    impl TempPath {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::AtomicUsize;
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!(
                "hairpin-pcapport-{}-{tag}-{n}.pcap",
                std::process::id()
            ));
            TempPath(p)
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn frame(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|k| (i + k) as u8).collect()
    }

    fn write_file(p: &Path, frames: &[(u64, Vec<u8>)]) {
        let mut w = PcapWriter::create(p).unwrap();
        for (ts, d) in frames {
            w.write(*ts, d).unwrap();
        }
        w.flush().unwrap();
    }

    #[test]
    fn replay_and_record_round_trip() {
        let inp = TempPath::new("in");
        let out = TempPath::new("out");
        // 70 frames, two of them too long for the pool's 256-byte buffers.
        let mut frames: Vec<(u64, Vec<u8>)> = (0..70)
            .map(|i| (1_000_000_000 + i as u64 * 1_000, frame(i, 60 + i)))
            .collect();
        frames[10].1 = frame(10, 1000);
        frames[50].1 = frame(50, 1500);
        write_file(&inp.0, &frames);

        let pool = Arc::new(Pool::new(64, 256).unwrap());
        let mut port = PcapPort::open("p0", pool.clone(), Some(&inp.0), Some(&out.0)).unwrap();
        assert_eq!(port.name(), "p0");
        assert_eq!(port.queues(), 1);
        assert!(port.take_queue(1).is_none());
        let mut q = port.take_queue(0).unwrap();
        assert!(port.take_queue(0).is_none(), "a queue is taken once");
        assert!(!port.eof());

        let mut b = Burst::new(32);
        let mut seen = 0;
        loop {
            let n = q.rx_burst(&mut b);
            if n == 0 {
                break;
            }
            assert!(n <= 32);
            assert_eq!(q.tx_burst(&mut b), n, "a pcap port takes every frame");
            assert!(b.is_empty());
            seen += n;
        }
        assert_eq!(seen, 68);
        assert!(port.eof());
        assert_eq!(q.rx_burst(&mut b), 0, "stays at EOF");
        q.flush();
        assert_eq!(pool.available(), 64, "every buffer went back");
        let c = port.counters();
        assert_eq!(c.rx_pkts, 68);
        assert_eq!(c.rx_skipped_long, 2);
        assert_eq!(c.tx_pkts, 68);
        assert_eq!((c.tx_discarded, c.tx_errors), (0, 0));
        let want: Vec<_> = frames
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 10 && *i != 50)
            .map(|(_, f)| f.clone())
            .collect();
        assert_eq!(
            c.rx_bytes,
            want.iter().map(|f| f.1.len() as u64).sum::<u64>()
        );
        drop(q);
        let got: Vec<_> = PcapReader::open(&out.0)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, want, "frames and timestamps survive the trip");
        assert_eq!(port.error(), None);
    }

    #[test]
    fn rx_waits_for_buffers_without_losing_frames() {
        let inp = TempPath::new("nobuf");
        let frames: Vec<_> = (0..10).map(|i| (i as u64, frame(i, 64))).collect();
        write_file(&inp.0, &frames);
        let pool = Arc::new(Pool::new(4, 128).unwrap());
        let mut port = PcapPort::open("p", pool.clone(), Some(&inp.0), None).unwrap();
        let mut q = port.take().unwrap();
        let mut b = Burst::new(32);
        let mut ts = Vec::new();
        loop {
            let n = q.rx_burst(&mut b);
            if n == 0 && q.eof() {
                break;
            }
            assert!(n <= 4, "limited by the pool");
            ts.extend(b.as_slice().iter().map(|f| f.ts));
            assert_eq!(q.tx_burst(&mut b), n);
        }
        assert_eq!(ts, (0..10).collect::<Vec<u64>>());
        let c = port.counters();
        assert_eq!((c.rx_pkts, c.tx_discarded, c.tx_pkts), (10, 10, 0));
        assert_eq!(pool.available(), 4);
    }

    #[test]
    fn no_input_is_eof_and_output_only_records() {
        let out = TempPath::new("txonly");
        let pool = Arc::new(Pool::new(8, 128).unwrap());
        let mut port = PcapPort::open("t", pool.clone(), None, Some(&out.0)).unwrap();
        assert!(port.eof());
        let mut q = port.take().unwrap();
        let mut b = Burst::new(8);
        assert_eq!(q.rx_burst(&mut b), 0);
        let mut f = pool.alloc().unwrap();
        assert!(pool.fill(&mut f, &[0xab; 42]));
        f.ts = 7_000_000_123;
        b.push(f).unwrap();
        assert_eq!(q.tx_burst(&mut b), 1);
        drop(q); // flushes
        let got: Vec<_> = PcapReader::open(&out.0)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, vec![(7_000_000_123, vec![0xab; 42])]);
        assert_eq!(pool.available(), 8);
    }

    #[test]
    fn bad_input_names_file_and_offset() {
        let inp = TempPath::new("bad");
        std::fs::write(&inp.0, b"this is not a pcap file at all").unwrap();
        let pool = Arc::new(Pool::new(8, 128).unwrap());
        let e = PcapPort::open("x", pool.clone(), Some(&inp.0), None)
            .err()
            .unwrap();
        let s = e.to_string();
        assert!(
            s.contains("byte 0") && s.contains("hairpin-pcapport"),
            "{s}"
        );
        let missing = Path::new("/nonexistent/in.pcap");
        let e = PcapPort::open("x", pool, Some(missing), None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/in.pcap"));
    }

    #[test]
    fn truncated_input_ends_with_error_after_good_frames() {
        let inp = TempPath::new("trunc");
        write_file(&inp.0, &[(1, frame(0, 60)), (2, frame(1, 60))]);
        let len = std::fs::metadata(&inp.0).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&inp.0)
            .unwrap();
        f.set_len(len - 10).unwrap();
        let pool = Arc::new(Pool::new(8, 128).unwrap());
        let mut port = PcapPort::open("x", pool.clone(), Some(&inp.0), None).unwrap();
        let mut q = port.take().unwrap();
        let mut b = Burst::new(8);
        assert_eq!(q.rx_burst(&mut b), 1);
        assert!(port.eof());
        let err = port.error().unwrap();
        assert!(
            err.contains("truncated") && err.contains("byte 116"),
            "{err}"
        );
        q.tx_burst(&mut b);
        assert_eq!(pool.available(), 8);
    }
}
