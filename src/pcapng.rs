//! A small pcapng writer (the format Wireshark and tshark read natively),
//! for `hairpin capture`.
//!
//! One section: a Section Header Block, then one Interface Description Block
//! per captured port and direction (link type Ethernet, `if_tsresol` = 9, so
//! timestamps are nanoseconds since the Unix epoch), then Enhanced Packet
//! Blocks whose `epb_flags` carry the direction (inbound / outbound).
//! Everything is little-endian (the byte-order magic says so); every block and
//! every option is padded to 32 bits as the format requires.

use std::io::{self, Write};

/// Block type of a Section Header Block.
pub const SHB: u32 = 0x0A0D_0D0A;
/// Block type of an Interface Description Block.
pub const IDB: u32 = 1;
/// Block type of an Enhanced Packet Block.
pub const EPB: u32 = 6;
/// Byte-order magic of the SHB.
pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// Link type Ethernet.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// `epb_flags` direction: received.
pub const FLAG_INBOUND: u32 = 1;
/// `epb_flags` direction: sent.
pub const FLAG_OUTBOUND: u32 = 2;

const OPT_END: u16 = 0;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_DESCRIPTION: u16 = 3;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_EPB_FLAGS: u16 = 2;

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// Append one option (code, length, value, padding) to `b`.
fn option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    let len = value.len().min(u16::MAX as usize);
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(len as u16).to_le_bytes());
    b.extend_from_slice(&value[..len]);
    b.resize(b.len() + pad4(len), 0);
}

fn end_of_options(b: &mut Vec<u8>) {
    b.extend_from_slice(&OPT_END.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
}

/// Writes one pcapng section to `W`.
pub struct PcapngWriter<W: Write> {
    w: W,
    interfaces: u32,
    /// Reused for every block (grows to the largest one, then stays).
    buf: Vec<u8>,
}

impl<W: Write> PcapngWriter<W> {
    /// Start a section (writes the Section Header Block); `app` goes into `shb_userappl`.
    pub fn new(mut w: W, app: &str) -> io::Result<Self> {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes()); // major
        body.extend_from_slice(&0u16.to_le_bytes()); // minor
        body.extend_from_slice(&(-1i64).to_le_bytes()); // section length: not given
        option(&mut body, OPT_SHB_USERAPPL, app.as_bytes());
        end_of_options(&mut body);
        write_block(&mut w, SHB, &body)?;
        Ok(PcapngWriter {
            w,
            interfaces: 0,
            buf: Vec::with_capacity(2048),
        })
    }

    /// Describe an Ethernet interface; returns its id for [`PcapngWriter::packet`].
    pub fn interface(&mut self, name: &str, description: &str, snaplen: u32) -> io::Result<u32> {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&snaplen.to_le_bytes());
        option(&mut body, OPT_IF_NAME, name.as_bytes());
        if !description.is_empty() {
            option(&mut body, OPT_IF_DESCRIPTION, description.as_bytes());
        }
        option(&mut body, OPT_IF_TSRESOL, &[9]);
        end_of_options(&mut body);
        write_block(&mut self.w, IDB, &body)?;
        self.interfaces += 1;
        Ok(self.interfaces - 1)
    }

    /// One frame: `data` is what was kept (at most the snap length), `orig_len`
    /// the length on the wire, `ts_ns` nanoseconds since the Unix epoch,
    /// `flags` the `epb_flags` value (0: no option written).
    pub fn packet(
        &mut self,
        iface: u32,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        flags: u32,
    ) -> io::Result<()> {
        if iface >= self.interfaces {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pcapng: interface {iface} was not described"),
            ));
        }
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&iface.to_le_bytes());
        b.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        b.resize(b.len() + pad4(data.len()), 0);
        if flags != 0 {
            option(b, OPT_EPB_FLAGS, &flags.to_le_bytes());
            end_of_options(b);
        }
        write_block(&mut self.w, EPB, &self.buf)
    }

    /// Flush the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// The underlying writer (flushed).
    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// type, total length, body (a multiple of 4 bytes), total length.
fn write_block<W: Write>(w: &mut W, ty: u32, body: &[u8]) -> io::Result<()> {
    debug_assert_eq!(body.len() % 4, 0);
    let total = (body.len() + 12) as u32;
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&ty.to_le_bytes());
    head[4..].copy_from_slice(&total.to_le_bytes());
    w.write_all(&head)?;
    w.write_all(body)?;
    w.write_all(&total.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16le(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32le(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Split a file into (type, body) blocks, checking both length fields and alignment.
    fn blocks(f: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < f.len() {
            let ty = u32le(f, at);
            let len = u32le(f, at + 4) as usize;
            assert_eq!(len % 4, 0, "block at {at} not 32-bit aligned");
            assert!(
                len >= 12 && at + len <= f.len(),
                "block at {at}: bad length {len}"
            );
            assert_eq!(
                u32le(f, at + len - 4),
                len as u32,
                "trailing length at {at}"
            );
            out.push((ty, f[at + 8..at + len - 4].to_vec()));
            at += len;
        }
        assert_eq!(at, f.len());
        out
    }

    /// Options from `at` to the end of `body`: (code, value).
    fn options(body: &[u8], mut at: usize) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        while at < body.len() {
            let (code, len) = (u16le(body, at), u16le(body, at + 2) as usize);
            if code == 0 {
                assert_eq!(len, 0);
                assert_eq!(at + 4, body.len(), "opt_endofopt is last");
                break;
            }
            out.push((code, body[at + 4..at + 4 + len].to_vec()));
            at += 4 + len + pad4(len);
        }
        out
    }

    #[test]
    fn blocks_parse_back() {
        let mut w = PcapngWriter::new(Vec::new(), "hairpin test").unwrap();
        let rx = w.interface("p0", "p0 received", 96).unwrap();
        let tx = w.interface("p0", "p0 sent", 96).unwrap();
        assert_eq!((rx, tx), (0, 1));
        let frames: [&[u8]; 4] = [&[1; 60], &[2; 61], &[3; 62], &[4; 63]];
        for (i, f) in frames.iter().enumerate() {
            let (iface, flags) = if i % 2 == 0 {
                (rx, FLAG_INBOUND)
            } else {
                (tx, FLAG_OUTBOUND)
            };
            w.packet(iface, 0x1_2345_6789 + i as u64, 1500, f, flags)
                .unwrap();
        }
        w.packet(rx, 7, 0, &[9; 5], 0).unwrap();
        let f = w.into_inner().unwrap();
        let b = blocks(&f);
        assert_eq!(b.len(), 1 + 2 + 5);
        // SHB
        assert_eq!(b[0].0, SHB);
        assert_eq!(u32le(&b[0].1, 0), BYTE_ORDER_MAGIC);
        assert_eq!((u16le(&b[0].1, 4), u16le(&b[0].1, 6)), (1, 0));
        assert_eq!(&b[0].1[8..16], &(-1i64).to_le_bytes());
        assert_eq!(
            options(&b[0].1, 16),
            vec![(OPT_SHB_USERAPPL, b"hairpin test".to_vec())]
        );
        // IDBs
        for (blk, desc) in b[1..3].iter().zip(["p0 received", "p0 sent"]) {
            assert_eq!(blk.0, IDB);
            assert_eq!(u16le(&blk.1, 0), LINKTYPE_ETHERNET);
            assert_eq!(u32le(&blk.1, 4), 96);
            assert_eq!(
                options(&blk.1, 8),
                vec![
                    (OPT_IF_NAME, b"p0".to_vec()),
                    (OPT_IF_DESCRIPTION, desc.as_bytes().to_vec()),
                    (OPT_IF_TSRESOL, vec![9]),
                ]
            );
        }
        // EPBs: every data length pads to 4, flags follow.
        for (i, (ty, body)) in b[3..7].iter().enumerate() {
            assert_eq!(*ty, EPB);
            assert_eq!(u32le(body, 0), (i % 2) as u32);
            let ts = (u32le(body, 4) as u64) << 32 | u32le(body, 8) as u64;
            assert_eq!(ts, 0x1_2345_6789 + i as u64);
            let cap = u32le(body, 12) as usize;
            assert_eq!(cap, 60 + i);
            assert_eq!(u32le(body, 16), 1500);
            assert_eq!(&body[20..20 + cap], frames[i]);
            let opts = options(body, 20 + cap + pad4(cap));
            let want = if i % 2 == 0 {
                FLAG_INBOUND
            } else {
                FLAG_OUTBOUND
            };
            assert_eq!(opts, vec![(OPT_EPB_FLAGS, want.to_le_bytes().to_vec())]);
        }
        // No flags: no options at all; orig_len never below the kept length.
        let last = &b[7].1;
        assert_eq!(u32le(last, 12), 5);
        assert_eq!(u32le(last, 16), 5);
        assert_eq!(last.len(), 20 + 8);
    }

    #[test]
    fn a_packet_needs_a_described_interface() {
        let mut w = PcapngWriter::new(Vec::new(), "x").unwrap();
        let e = w.packet(0, 0, 1, &[0], 0).unwrap_err();
        assert!(e.to_string().contains("interface 0"), "{e}");
        w.interface("a", "", 65535).unwrap();
        w.packet(0, 0, 1, &[0], 0).unwrap();
        let f = w.into_inner().unwrap();
        let b = blocks(&f);
        // An empty description is left out.
        assert_eq!(
            options(&b[1].1, 8),
            vec![(OPT_IF_NAME, b"a".to_vec()), (OPT_IF_TSRESOL, vec![9])]
        );
    }
}
