//! The built-in traffic generator of `hairpin bench` (its frames recirculate; `hairpin pktgen` is the measuring generator).
//!
//! It builds template frames once and, per frame, only copies a template into
//! a pool buffer (or recirculates frames that came back), so it costs little
//! next to the switch it drives.

use crate::types::Mac;

/// MAC of VM/host number `i` (locally administered unicast 02:00:xx:xx:xx:xx).
pub fn vm_mac(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([0x02, 0x00, b[0], b[1], b[2], b[3]])
}

/// A minimal 60-byte IPv4/UDP frame (64 on the wire with FCS), optionally 802.1Q-tagged.
pub fn udp_frame(dst: Mac, src: Mac, vlan: Option<u16>, seq: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_start = f.len();
    let total_len: u16 = 20 + 8 + 18;
    f.extend_from_slice(&[
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f[ip_start + 2..ip_start + 4].copy_from_slice(&total_len.to_be_bytes());
    let mut sum: u32 = 0;
    for c in f[ip_start..ip_start + 20].chunks(2) {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    f[ip_start + 10..ip_start + 12].copy_from_slice(&ck.to_be_bytes());
    f.extend_from_slice(&[0x30, 0x39, 0x30, 0x3a, 0, 26, 0, 0]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(f.len() + 14, 0);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn frame_sizes() {
        assert_eq!(udp_frame(vm_mac(1), vm_mac(2), None, 0).len(), 60);
        assert_eq!(udp_frame(vm_mac(1), vm_mac(2), Some(10), 0).len(), 64);
        assert_eq!(vm_mac(258).to_string(), "02:00:00:00:01:02");
    }
}
