//! Arbitrary bytes through the 802.1Qbg parsers and state machines, with the
//! invariants they promise. Shared by the fuzz targets (`fuzz/fuzz_targets/
//! lldp_evb.rs`, `ecp.rs`, `vdp.rs`) and the seed tests. Panics only when an
//! invariant is broken; allocation is bounded by the input size.

use super::ecp::Ecp;
use super::evb::{Evb, EvbLocal, EvbRole};
use super::lldp::{self, LldpRx};
use super::store::StaticStore;
use super::vdp::{PortParams, VdpBridge};
use super::Timers;
use crate::config::evb::VsiTypeCfg;
use crate::types::PortId;
use crate::wire::ecp::{Ecp as EcpView, Op, Subtype};
use crate::wire::evb::{Evb as EvbView, EvbRepr};
use crate::wire::lldp::TlvIter;
use crate::wire::vdp::{AssocRepr, Pdu, VdpTlv};

/// An LLDP frame (or bare TLVs): the agent's reader, the EVB view, and EVB
/// negotiation in both roles. EVB values re-encode to the same bytes
/// (reserved bits aside).
pub fn lldp_evb(data: &[u8]) -> u64 {
    let mut acc = 0u64;
    let rx = lldp::read(data);
    if let LldpRx::Evb { evb, ttl } = rx {
        acc += u64::from(ttl);
        for role in [EvbRole::Bridge, EvbRole::Station] {
            let mut e = Evb::new(EvbLocal {
                role,
                rr: true,
                gid: true,
                timers: Timers::default(),
            });
            e.rx(0, evb, ttl);
            let t = e.tlv();
            let l = Timers::default();
            assert!(t.r >= l.r && t.rte >= l.rte && t.rwd >= l.rwd && t.rka >= l.rka);
            if ttl == 0 || evb.is_none() {
                assert!(!e.rr_on());
            }
            acc += u64::from(e.rr_on());
            e.link_down();
            assert!(!e.rr_on());
        }
    }
    for body in [data, data.get(14..).unwrap_or(&[])] {
        for t in TlvIter::new(body).take(512).map_while(Result::ok) {
            if let Some(Ok(r)) = EvbRepr::from_tlv(&t) {
                let mut out = [0u8; 11];
                r.emit(&mut out).expect("11 bytes");
                let again = EvbRepr::parse(&EvbView::parse(&out[2..]).expect("own output"));
                assert_eq!(again, r, "EVB round trip");
                let mask = [0xff, 0xff, 0xff, 0xff, 0x07, 0x0f, 0xff, 0xff, 0x3f];
                for i in 0..9 {
                    assert_eq!(out[2 + i], t.value[i] & mask[i], "EVB byte {i}");
                }
                acc += u64::from(r.rka);
            }
        }
    }
    acc
}

/// ECP PDUs (the input cut into PDUs at every 0x10 0x01 request header):
/// only version-1 VDP requests are ACKed, each exactly once, and a sequence
/// number is passed up at most once in a row.
pub fn ecp(data: &[u8]) -> u64 {
    let mut e = Ecp::new();
    let mut acks = Vec::new();
    let mut acc = 0u64;
    let mut last: Option<u16> = None;
    for pdu in data.split(|b| *b == 0xee).take(256) {
        let before = acks.len();
        let up = e.rx(pdu, &mut acks).is_some();
        let new_acks = acks.len() - before;
        match EcpView::parse(pdu) {
            Ok(v) if v.version() == 1 && v.subtype() == Subtype::Vdp && v.op() == Op::Request => {
                assert_eq!(new_acks, 1);
                let a = &acks[before];
                assert_eq!(a[..], [0x14 | (pdu[0] & 0x03), pdu[1], pdu[2], pdu[3]]);
                if up {
                    assert_ne!(last, Some(v.sequence()), "a duplicate was passed up");
                }
                last = Some(v.sequence());
            }
            _ => {
                assert_eq!(new_acks, 0, "only requests are ACKed");
                assert!(!up);
            }
        }
        acc += u64::from(up);
        let mut out = Vec::new();
        e.poll(acc, Timers::default(), &mut out);
    }
    acc + acks.len() as u64
}

/// A VDP ULPDU: the PDU rules, every association TLV's parse, and the bridge
/// state machine (a static store with one type). What parses re-encodes to
/// itself; every reply the bridge makes is a valid PDU.
pub fn vdp(data: &[u8]) -> u64 {
    let mut acc = 0u64;
    if let Ok(p) = Pdu::parse(data) {
        for t in p.tlvs() {
            if let VdpTlv::Assoc(mode, value) = t {
                if let Ok(r) = AssocRepr::parse(mode, value) {
                    let mut out = Vec::new();
                    r.emit(&mut out).expect("a parsed TLV fits");
                    assert_eq!(&out[2..], value, "association TLV round trip");
                    acc += r.filters.len() as u64;
                }
            }
        }
    }
    let types = [VsiTypeCfg {
        id: 5,
        version: 1,
        vlan: None,
        vlan_pool: Some("100-103".into()),
        policy: None,
        pcp: Some(3),
    }];
    let mut store = StaticStore::new(&types, "fuzz").expect("valid type");
    let mut b = VdpBridge::new();
    let p = PortParams {
        timers: Timers::default(),
        group_ok: true,
    };
    let mut replies = Vec::new();
    for (i, chunk) in [data, data].iter().enumerate() {
        b.rx(
            i as u64,
            PortId(i as u16),
            p,
            chunk,
            &mut store,
            &mut replies,
        );
    }
    b.tick(u64::MAX / 2, &|_| p, &mut store, &mut replies);
    for r in &replies {
        let pdu = Pdu::parse(&r.ulpdu).expect("replies are valid PDUs");
        for t in pdu.tlvs() {
            if let VdpTlv::Assoc(_, v) = t {
                assert!(v.len() >= 25, "a reply carries the fixed part");
                acc += u64::from(v[0]);
            }
        }
    }
    assert_eq!(b.vsis().count(), 0, "everything expired");
    acc + b.installed().len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    // Found by the vdp fuzz target: a zero-length association TLV was answered
    // with a zero-length echo (no status byte).
    static SHORT_ASSOC: [u8; 116] = [
        0x0a, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x1b, 0x00, 0x00, 0x00,
        0x05, 0x01, 0x05, 0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0,
        0x4f, 0xd4, 0x35, 0xc8, 0x01, 0x00, 0x01, 0x00, 0x00, 0x04, 0x1f, 0x00, 0x00, 0x00, 0x05,
        0x01, 0x05, 0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0x11, 0xb4, 0xad, 0x80, 0xd1, 0x00, 0xc0, 0x4f,
        0xd4, 0x30, 0xc8, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x25, 0x00,
        0x00, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x4a, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x10, 0xf8,
        0xff, 0xa9, 0xff, 0x00, 0xfe, 0x05, 0x00, 0x80, 0xc2, 0x01, 0x02,
    ];

    #[test]
    fn short_association_tlv_is_not_answered() {
        vdp(&SHORT_ASSOC);
        let mut pdu = Vec::new();
        crate::wire::vdp::emit_manager_id(&[0; 16], &mut pdu);
        pdu.extend_from_slice(&[0x08, 0x00]); // De-Associate, length 0
        let mut b = VdpBridge::new();
        let mut store = StaticStore::default();
        let p = PortParams {
            timers: Timers::default(),
            group_ok: false,
        };
        let mut out = Vec::new();
        b.rx(0, PortId(0), p, &pdu, &mut store, &mut out);
        assert!(out.is_empty());
        assert_eq!(b.ctr.truncated, 1);
    }

    #[test]
    fn survives_simple_inputs() {
        for d in [
            &[][..],
            &[0u8; 64][..],
            &[0xff; 64][..],
            &[0x10, 0x01, 0, 1, 0xee, 0x10, 0x01, 0, 1][..],
        ] {
            lldp_evb(d);
            ecp(d);
            vdp(d);
        }
        assert_eq!(
            ecp(&[0x10, 0x01, 0, 1, 0xee, 0x10, 0x01, 0, 1, 0xee, 0x10, 0x01, 0, 2]),
            2 + 3
        );
    }
}
