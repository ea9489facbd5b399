//! A pcap port replays a checked-in capture (microsecond, big-endian, built
//! outside this crate) and records what it transmits as a nanosecond pcap.

use hairpin::buf::{Burst, Pool};
use hairpin::pcap::PcapReader;
use hairpin::port::pcap::PcapPort;
use hairpin::port::{Port, PortQueue};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const INPUT: &str = "tests/data/three-frames-us-be.pcap";
const TS: [u64; 3] = [
    1_700_000_000_000_001_000,
    1_700_000_000_999_999_000,
    1_700_000_001_500_000_000,
];

fn out_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("hairpin-it-{}-{tag}.pcap", std::process::id()))
}

#[test]
fn checked_in_capture_is_read() {
    let mut r = PcapReader::open(INPUT).unwrap();
    assert!(!r.header().nanos && r.header().big_endian);
    let mut lens = Vec::new();
    let mut ts = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        lens.push(rec.data.len());
        ts.push(rec.ts_ns);
    }
    assert_eq!(lens, [60, 68, 1514]);
    assert_eq!(ts, TS);
}

#[test]
fn replay_through_a_pcap_port_and_record() {
    let out = out_path("replay");
    let pool = Arc::new(Pool::new(32, 1518).unwrap());
    let mut port = PcapPort::open("up", pool.clone(), Some(Path::new(INPUT)), Some(&out)).unwrap();
    let mut q = port.take_queue(0).unwrap();
    let mut b = Burst::new(32);
    assert_eq!(q.rx_burst(&mut b), 3);
    assert_eq!(b.as_slice().iter().map(|f| f.ts).collect::<Vec<_>>(), TS);
    assert_eq!(
        pool.data(&b.as_slice()[1])[12..14],
        [0x81, 0x00],
        "the tagged frame"
    );
    assert_eq!(q.rx_burst(&mut b), 0);
    assert!(port.eof());
    assert_eq!(q.tx_burst(&mut b), 3);
    drop(q);
    assert_eq!(pool.available(), 32);

    let want: Vec<_> = PcapReader::open(INPUT)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let got: Vec<_> = PcapReader::open(&out)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(got, want);
}

#[test]
fn small_buffers_skip_the_long_frame() {
    let pool = Arc::new(Pool::new(8, 128).unwrap());
    let mut port = PcapPort::open("up", pool.clone(), Some(Path::new(INPUT)), None).unwrap();
    let mut q = port.take().unwrap();
    let mut b = Burst::new(8);
    assert_eq!(q.rx_burst(&mut b), 2);
    let c = port.counters();
    assert_eq!((c.rx_pkts, c.rx_bytes, c.rx_skipped_long), (2, 128, 1));
    assert_eq!(q.tx_burst(&mut b), 2);
    assert_eq!(port.counters().tx_discarded, 2);
}
