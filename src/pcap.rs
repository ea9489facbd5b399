//! Classic libpcap files: a [`PcapReader`] and a [`PcapWriter`], no external crate.
//!
//! File layout (all fields in the byte order the magic number reveals):
//!
//! ```text
//! global header, 24 bytes:
//!   magic u32 | version_major u16 | version_minor u16 | thiszone i32 |
//!   sigfigs u32 | snaplen u32 | linktype u32
//! then per record, 16 bytes + data:
//!   ts_sec u32 | ts_frac u32 | incl_len u32 | orig_len u32 | data[incl_len]
//! ```
//!
//! `ts_frac` is microseconds for magic `0xa1b2c3d4` and nanoseconds for
//! `0xa1b23c4d`; both byte orders are read. Only Ethernet (linktype 1) is
//! accepted. The reader never panics on bad input and never allocates more
//! than [`MAX_RECORD`] bytes for a record: every malformed file gives a
//! [`PcapError`] naming the byte offset and what is wrong. The writer always
//! writes nanosecond files, little-endian, linktype 1, snaplen [`SNAPLEN`].

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::Path;

/// Magic number of a microsecond-resolution file (as read in the file's own byte order).
pub const MAGIC_US: u32 = 0xa1b2_c3d4;
/// Magic number of a nanosecond-resolution file.
pub const MAGIC_NS: u32 = 0xa1b2_3c4d;
/// The only link type accepted: `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Largest record (`incl_len`) the reader accepts; larger ones are an error.
pub const MAX_RECORD: usize = 262_144;
/// Snapshot length written by [`PcapWriter`]; longer frames are cut to it.
pub const SNAPLEN: u32 = 65_535;
/// Size of the global file header.
pub const FILE_HDR_LEN: usize = 24;
/// Size of a record header.
pub const REC_HDR_LEN: usize = 16;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Errors reading or writing a pcap file.
#[derive(Debug)]
pub enum PcapError {
    /// The file could not be opened or created.
    Open {
        /// The path as given.
        path: String,
        /// The system error.
        source: io::Error,
    },
    /// An I/O error while reading or writing at `offset`.
    Io {
        /// Byte offset in the file where the operation started.
        offset: u64,
        /// The system error.
        source: io::Error,
    },
    /// The bytes at `offset` are not a valid pcap file.
    Format {
        /// Byte offset of the offending header or field.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

impl PcapError {
    fn format(offset: u64, reason: impl Into<String>) -> Self {
        PcapError::Format {
            offset,
            reason: reason.into(),
        }
    }
    /// Byte offset the error refers to (`None` for [`PcapError::Open`]).
    pub fn offset(&self) -> Option<u64> {
        match self {
            PcapError::Open { .. } => None,
            PcapError::Io { offset, .. } | PcapError::Format { offset, .. } => Some(*offset),
        }
    }
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapError::Open { path, source } => write!(f, "cannot open {path}: {source}"),
            PcapError::Io { offset, source } => write!(f, "I/O error at byte {offset}: {source}"),
            PcapError::Format { offset, reason } => {
                write!(f, "bad pcap file at byte {offset}: {reason}")
            }
        }
    }
}

impl std::error::Error for PcapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PcapError::Open { source, .. } | PcapError::Io { source, .. } => Some(source),
            PcapError::Format { .. } => None,
        }
    }
}

/// What the global header of a file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// Timestamps are nanoseconds (`true`) or microseconds.
    pub nanos: bool,
    /// Fields are big-endian.
    pub big_endian: bool,
    /// Format version (major, minor); only major 2 is accepted.
    pub version: (u16, u16),
    /// Snapshot length the capture was taken with (informational).
    pub snaplen: u32,
    /// Link type (always [`LINKTYPE_ETHERNET`] once accepted).
    pub linktype: u32,
}

/// One record, borrowed from the reader's reusable buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Capture time in nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Length of the frame on the wire (may exceed `data.len()` if the capture was cut).
    pub orig_len: u32,
    /// The captured bytes (`incl_len` of them).
    pub data: &'a [u8],
}

/// Reads records from a classic pcap file.
///
/// Use [`next_record`](Self::next_record) to read without allocating per record
/// (the data is borrowed from one buffer that is reused), or iterate to get
/// owned `(ts_ns, Vec<u8>)` pairs.
pub struct PcapReader<R: Read> {
    r: BufReader<R>,
    hdr: FileHeader,
    /// Offset of the next unread byte.
    offset: u64,
    buf: Vec<u8>,
    /// Set after the end of the file or an error: later reads return `Ok(None)`.
    done: bool,
    /// Timestamp and `orig_len` of the record in `buf`.
    last_ts: u64,
    last_orig: u32,
}

impl PcapReader<File> {
    /// Open a file and read its global header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PcapError> {
        let path = path.as_ref();
        let f = File::open(path).map_err(|source| PcapError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(f)
    }
}

/// Read until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8], offset: u64) -> Result<usize, PcapError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(source) => return Err(PcapError::Io { offset, source }),
        }
    }
    Ok(got)
}

impl<R: Read> PcapReader<R> {
    /// Wrap `inner` (buffered internally) and read the 24-byte global header.
    pub fn new(inner: R) -> Result<Self, PcapError> {
        let mut r = BufReader::with_capacity(64 * 1024, inner);
        let mut h = [0u8; FILE_HDR_LEN];
        let got = read_full(&mut r, &mut h, 0)?;
        if got < 4 {
            return Err(PcapError::format(
                0,
                format!("file is {got} bytes long, too short for a pcap magic number"),
            ));
        }
        let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let be = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (nanos, big_endian) = match (le, be) {
            (MAGIC_US, _) => (false, false),
            (MAGIC_NS, _) => (true, false),
            (_, MAGIC_US) => (false, true),
            (_, MAGIC_NS) => (true, true),
            (0x0a0d_0d0a, _) => {
                return Err(PcapError::format(
                    0,
                    "this is a pcapng file; only classic pcap is read \
                     (convert with: editcap -F pcap in.pcapng out.pcap)",
                ))
            }
            (0xa1b2_cd34, _) | (_, 0xa1b2_cd34) => {
                return Err(PcapError::format(
                    0,
                    "modified (Kuznetzov) pcap format is not supported",
                ))
            }
            _ => {
                return Err(PcapError::format(
                    0,
                    format!(
                        "magic number {:02x}{:02x}{:02x}{:02x} is not a pcap magic \
                         (a1b2c3d4 or a1b23c4d in either byte order)",
                        h[0], h[1], h[2], h[3]
                    ),
                ))
            }
        };
        if got < FILE_HDR_LEN {
            return Err(PcapError::format(
                got as u64,
                format!("global header truncated: {got} of {FILE_HDR_LEN} bytes"),
            ));
        }
        let u16_at = |i: usize| {
            let b = [h[i], h[i + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let u32_at = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let version = (u16_at(4), u16_at(6));
        if version.0 != 2 {
            return Err(PcapError::format(
                4,
                format!(
                    "unsupported format version {}.{} (expected 2.x)",
                    version.0, version.1
                ),
            ));
        }
        let snaplen = u32_at(16);
        let linktype = u32_at(20);
        if linktype != LINKTYPE_ETHERNET {
            return Err(PcapError::format(
                20,
                format!(
                    "link type {linktype} is not Ethernet (1); only Ethernet captures are read"
                ),
            ));
        }
        let hdr = FileHeader {
            nanos,
            big_endian,
            version,
            snaplen,
            linktype: LINKTYPE_ETHERNET,
        };
        Ok(PcapReader {
            r,
            hdr,
            offset: FILE_HDR_LEN as u64,
            buf: Vec::new(),
            done: false,
            last_ts: 0,
            last_orig: 0,
        })
    }

    /// The global header.
    pub fn header(&self) -> &FileHeader {
        &self.hdr
    }

    /// Byte offset of the next record header.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn u32_at(&self, b: &[u8; REC_HDR_LEN], i: usize) -> u32 {
        let v = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if self.hdr.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    /// Read the next record. `Ok(None)` at the end of the file (exactly at a
    /// record boundary). After an error, further calls return `Ok(None)`.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, PcapError> {
        if self.done {
            return Ok(None);
        }
        let r = self.read_record();
        if !matches!(r, Ok(true)) {
            self.done = true;
        }
        match r {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(e),
        }
        Ok(Some(Record {
            ts_ns: self.last_ts,
            orig_len: self.last_orig,
            data: &self.buf,
        }))
    }

    /// Skip records until the end, returning how many there were.
    pub fn count_remaining(&mut self) -> Result<u64, PcapError> {
        let mut n = 0;
        while self.next_record()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// Read one record into `buf`/`last_*`; false at a clean end of file.
    fn read_record(&mut self) -> Result<bool, PcapError> {
        let at = self.offset;
        let mut h = [0u8; REC_HDR_LEN];
        let got = read_full(&mut self.r, &mut h, at)?;
        if got == 0 {
            return Ok(false);
        }
        if got < REC_HDR_LEN {
            return Err(PcapError::format(
                at,
                format!("record header truncated: {got} of {REC_HDR_LEN} bytes"),
            ));
        }
        let sec = self.u32_at(&h, 0);
        let frac = self.u32_at(&h, 4);
        let incl = self.u32_at(&h, 8);
        let orig = self.u32_at(&h, 12);
        let (limit, unit) = if self.hdr.nanos {
            (NS_PER_SEC, "nanoseconds")
        } else {
            (1_000_000, "microseconds")
        };
        if u64::from(frac) >= limit {
            return Err(PcapError::format(
                at + 4,
                format!("timestamp fraction {frac} is not below one second in {unit}"),
            ));
        }
        if incl as usize > MAX_RECORD {
            return Err(PcapError::format(
                at + 8,
                format!("record length incl_len {incl} exceeds the limit of {MAX_RECORD} bytes"),
            ));
        }
        let per = if self.hdr.nanos { 1 } else { 1_000 };
        self.last_ts = u64::from(sec) * NS_PER_SEC + u64::from(frac) * per;
        self.last_orig = orig;
        let n = incl as usize;
        self.buf.resize(n, 0);
        let data_at = at + REC_HDR_LEN as u64;
        let got = read_full(&mut self.r, &mut self.buf, data_at)?;
        if got < n {
            return Err(PcapError::format(
                data_at,
                format!("record data truncated: incl_len {n} but only {got} bytes remain"),
            ));
        }
        self.offset = data_at + n as u64;
        Ok(true)
    }
}

impl<R: Read> Iterator for PcapReader<R> {
    type Item = Result<(u64, Vec<u8>), PcapError>;
    /// Owned records; stops after the end of the file or the first error.
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_record() {
            Ok(Some(r)) => Some(Ok((r.ts_ns, r.data.to_vec()))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Writes a nanosecond-resolution pcap file (magic `0xa1b23c4d`, linktype 1,
/// snaplen [`SNAPLEN`], little-endian).
pub struct PcapWriter<W: Write> {
    w: BufWriter<W>,
    offset: u64,
}

impl PcapWriter<File> {
    /// Create (or truncate) a file and write the global header.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, PcapError> {
        let path = path.as_ref();
        let f = File::create(path).map_err(|source| PcapError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(f)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Wrap `inner` (buffered internally) and write the global header.
    pub fn new(inner: W) -> Result<Self, PcapError> {
        let mut w = BufWriter::with_capacity(64 * 1024, inner);
        let mut h = [0u8; FILE_HDR_LEN];
        h[0..4].copy_from_slice(&MAGIC_NS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone = 0, sigfigs = 0
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.write_all(&h)
            .map_err(|source| PcapError::Io { offset: 0, source })?;
        Ok(PcapWriter {
            w,
            offset: FILE_HDR_LEN as u64,
        })
    }

    /// Append one frame captured at `ts_ns` (nanoseconds since the epoch).
    /// Frames longer than [`SNAPLEN`] are cut to it (`orig_len` keeps the full
    /// length). A time past the year 2106 (not representable) is an error.
    pub fn write(&mut self, ts_ns: u64, data: &[u8]) -> Result<(), PcapError> {
        let at = self.offset;
        let sec = u32::try_from(ts_ns / NS_PER_SEC).map_err(|_| {
            PcapError::format(
                at,
                format!("timestamp {ts_ns} ns does not fit a 32-bit seconds field"),
            )
        })?;
        let frac = (ts_ns % NS_PER_SEC) as u32;
        let incl = data.len().min(SNAPLEN as usize);
        let orig = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let mut h = [0u8; REC_HDR_LEN];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig.to_le_bytes());
        self.w
            .write_all(&h)
            .and_then(|_| self.w.write_all(&data[..incl]))
            .map_err(|source| PcapError::Io { offset: at, source })?;
        self.offset = at + (REC_HDR_LEN + incl) as u64;
        Ok(())
    }

    /// Push buffered records to the underlying writer.
    pub fn flush(&mut self) -> Result<(), PcapError> {
        self.w.flush().map_err(|source| PcapError::Io {
            offset: self.offset,
            source,
        })
    }

    /// Bytes written so far (header included).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Flush and return the underlying writer.
    pub fn into_inner(self) -> Result<W, PcapError> {
        let offset = self.offset;
        self.w.into_inner().map_err(|e| PcapError::Io {
            offset,
            source: e.into_error(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Build a file by hand: header fields in the chosen byte order.
    fn hand_file(magic: u32, be: bool, linktype: u32, recs: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
        };
        let w16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
        };
        let mut v = Vec::new();
        w32(&mut v, magic);
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, 65535);
        w32(&mut v, linktype);
        for &(sec, frac, data) in recs {
            w32(&mut v, sec);
            w32(&mut v, frac);
            w32(&mut v, data.len() as u32);
            w32(&mut v, data.len() as u32 + 4);
            v.extend_from_slice(data);
        }
        v
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, PcapError> {
        PcapReader::new(bytes)?.collect()
    }

    fn format_err(bytes: &[u8]) -> (u64, String) {
        let e = match PcapReader::new(bytes) {
            Err(e) => e,
            Ok(r) => r
                .into_iter()
                .find_map(Result::err)
                .expect("an error was expected"),
        };
        match e {
            PcapError::Format { offset, reason } => (offset, reason),
            other => panic!("expected a format error, got {other}"),
        }
    }

    #[test]
    fn round_trip() {
        let frames: Vec<(u64, Vec<u8>)> = vec![
            (1_700_000_000_123_456_789, vec![0xaa; 60]),
            (1_700_000_001_000_000_000, (0..=255).collect()),
            (5, vec![]),
            (
                u64::from(u32::MAX) * NS_PER_SEC + 999_999_999,
                vec![1, 2, 3],
            ),
        ];
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for (ts, d) in &frames {
            w.write(*ts, d).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        assert_eq!(&bytes[0..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(
            *r.header(),
            FileHeader {
                nanos: true,
                big_endian: false,
                version: (2, 4),
                snaplen: SNAPLEN,
                linktype: 1
            }
        );
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(rec.orig_len, 60);
        assert_eq!(read_all(&bytes).unwrap(), frames);
    }

    #[test]
    fn writer_cuts_to_snaplen_and_rejects_far_future() {
        let big = vec![7u8; SNAPLEN as usize + 10];
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(0, &big).unwrap();
        assert!(w.write(u64::MAX, &[1]).is_err());
        let bytes = w.into_inner().unwrap();
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(rec.data.len(), SNAPLEN as usize);
        assert_eq!(rec.orig_len as usize, big.len());
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn both_byte_orders_and_resolutions() {
        let d: &[u8] = &[1, 2, 3, 4];
        for be in [false, true] {
            let us = hand_file(MAGIC_US, be, 1, &[(10, 999_999, d), (11, 0, d)]);
            let r = PcapReader::new(&us[..]).unwrap();
            assert_eq!((r.header().nanos, r.header().big_endian), (false, be));
            let got = read_all(&us).unwrap();
            assert_eq!(got[0], (10_999_999_000, d.to_vec()));
            assert_eq!(got[1].0, 11_000_000_000);

            let ns = hand_file(MAGIC_NS, be, 1, &[(10, 999_999_999, d)]);
            let r = PcapReader::new(&ns[..]).unwrap();
            assert_eq!((r.header().nanos, r.header().big_endian), (true, be));
            assert_eq!(read_all(&ns).unwrap(), vec![(10_999_999_999, d.to_vec())]);
        }
    }

    #[test]
    fn header_only_file_is_empty() {
        let f = hand_file(MAGIC_US, false, 1, &[]);
        let mut r = PcapReader::new(&f[..]).unwrap();
        assert!(r.next_record().unwrap().is_none());
        assert!(r.next_record().unwrap().is_none(), "stays at the end");
        let w = PcapWriter::new(Vec::new()).unwrap().into_inner().unwrap();
        assert_eq!(w.len(), FILE_HDR_LEN);
        assert_eq!(read_all(&w).unwrap(), vec![]);
    }

    #[test]
    fn empty_and_truncated_header() {
        let (off, why) = format_err(&[]);
        assert_eq!(off, 0);
        assert!(why.contains("0 bytes"), "{why}");
        let f = hand_file(MAGIC_NS, false, 1, &[]);
        let (off, why) = format_err(&f[..10]);
        assert_eq!(off, 10);
        assert!(why.contains("global header truncated: 10 of 24"), "{why}");
    }

    #[test]
    fn truncated_record_header_and_data() {
        let f = hand_file(MAGIC_NS, false, 1, &[(1, 0, &[9; 40]), (2, 0, &[8; 40])]);
        // Second record starts at 24 + 16 + 40 = 80.
        let (off, why) = format_err(&f[..80 + 7]);
        assert_eq!(off, 80);
        assert!(why.contains("record header truncated: 7 of 16"), "{why}");
        let (off, why) = format_err(&f[..80 + 16 + 30]);
        assert_eq!(off, 96);
        assert!(
            why.contains("incl_len 40 but only 30 bytes remain"),
            "{why}"
        );
        // The good first record is still delivered before the error.
        let mut r = PcapReader::new(&f[..100]).unwrap();
        assert_eq!(r.next_record().unwrap().unwrap().data, &[9; 40]);
        assert!(r.next_record().is_err());
        assert!(
            r.next_record().unwrap().is_none(),
            "no retry after an error"
        );
    }

    #[test]
    fn bad_magic_pcapng_and_version() {
        let mut f = hand_file(MAGIC_US, false, 1, &[]);
        f[0] = 0x00;
        let (off, why) = format_err(&f);
        assert_eq!(off, 0);
        assert!(why.contains("not a pcap magic"), "{why}");
        let ng = [0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0];
        assert!(format_err(&ng).1.contains("pcapng"));
        let mut f = hand_file(MAGIC_US, false, 1, &[]);
        f[4] = 3;
        let (off, why) = format_err(&f);
        assert_eq!(off, 4);
        assert!(why.contains("version 3.4"), "{why}");
    }

    #[test]
    fn wrong_linktype() {
        let f = hand_file(MAGIC_US, true, 113, &[]);
        let (off, why) = format_err(&f);
        assert_eq!(off, 20);
        assert!(why.contains("link type 113 is not Ethernet"), "{why}");
        let e = PcapReader::new(&f[..]).err().unwrap();
        assert!(e.to_string().contains("byte 20"), "{e}");
    }

    #[test]
    fn oversize_incl_len_is_rejected_without_allocating() {
        let mut f = hand_file(MAGIC_NS, false, 1, &[]);
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(MAX_RECORD as u32 + 1).to_le_bytes());
        f.extend_from_slice(&100u32.to_le_bytes());
        let (off, why) = format_err(&f);
        assert_eq!(off, 24 + 8);
        assert!(why.contains("exceeds the limit"), "{why}");
        // u32::MAX as well.
        f[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(format_err(&f).1.contains("4294967295"));
    }

    #[test]
    fn bad_timestamp_fraction() {
        let f = hand_file(MAGIC_US, false, 1, &[(1, 1_000_000, &[1])]);
        let (off, why) = format_err(&f);
        assert_eq!(off, 28);
        assert!(why.contains("microseconds"), "{why}");
    }

    #[test]
    fn open_missing_file_names_the_path() {
        let e = PcapReader::open("/nonexistent/hairpin-test.pcap")
            .err()
            .unwrap();
        assert!(matches!(e, PcapError::Open { .. }));
        assert!(e.to_string().contains("/nonexistent/hairpin-test.pcap"));
        assert_eq!(e.offset(), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary bytes, with or without a valid header in front: the reader
        /// never panics, and it stops within one record per 16 bytes.
        #[test]
        fn arbitrary_bytes_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            prefix in 0usize..5,
            be in any::<bool>(),
        ) {
            let mut f = match prefix {
                0 => Vec::new(),
                1 => hand_file(MAGIC_US, be, 1, &[]),
                _ => hand_file(MAGIC_NS, be, 1, &[]),
            };
            f.extend_from_slice(&body);
            if let Ok(mut r) = PcapReader::new(&f[..]) {
                let mut n = 0usize;
                while let Ok(Some(rec)) = r.next_record() {
                    prop_assert!(rec.data.len() <= MAX_RECORD);
                    n += 1;
                    prop_assert!(n <= f.len() / REC_HDR_LEN, "more records than bytes allow");
                }
            }
        }

        /// Whatever frames are written come back unchanged.
        #[test]
        fn written_frames_read_back(
            frames in proptest::collection::vec(
                (0u64..(u64::from(u32::MAX) * NS_PER_SEC),
                 proptest::collection::vec(any::<u8>(), 0..300)),
                0..20),
        ) {
            let mut w = PcapWriter::new(Vec::new()).unwrap();
            for (ts, d) in &frames {
                w.write(*ts, d).unwrap();
            }
            let bytes = w.into_inner().unwrap();
            prop_assert_eq!(read_all(&bytes).unwrap(), frames);
        }
    }
}
