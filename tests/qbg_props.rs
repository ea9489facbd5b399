//! Property tests for the 802.1Qbg codecs: every valid association TLV and
//! EVB TLV round trips through emit → parse, and the PDU/fuzz entry points
//! never panic on arbitrary bytes.

use hairpin::types::Mac;
use hairpin::wire::evb::{Evb, EvbRepr};
use hairpin::wire::vdp::{
    emit_pdu, AssocRepr, FilterEntry, FilterFormat, Mode, Pdu, Status, VdpTlv, VsiId,
};
use proptest::prelude::*;

fn unicast() -> impl Strategy<Value = Mac> {
    any::<[u8; 6]>()
        .prop_filter("unicast, not zero", |m| m[0] & 1 == 0 && *m != [0; 6])
        .prop_map(Mac)
}

fn vsiid() -> impl Strategy<Value = VsiId> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(VsiId::ipv4),
        any::<[u8; 16]>()
            .prop_filter("non-zero", |b| *b != [0; 16])
            .prop_map(VsiId::ipv6),
        unicast().prop_map(VsiId::mac),
        any::<[u8; 16]>()
            .prop_filter("non-zero", |b| *b != [0; 16])
            .prop_map(VsiId::local),
        any::<[u8; 16]>()
            .prop_filter("non-zero", |b| *b != [0; 16])
            .prop_map(VsiId::uuid),
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::PreAssoc),
        Just(Mode::PreAssocRr),
        Just(Mode::Assoc),
        Just(Mode::DeAssoc)
    ]
}

fn assoc() -> impl Strategy<Value = AssocRepr> {
    let format = prop_oneof![
        Just(FilterFormat::Vid),
        Just(FilterFormat::MacVid),
        Just(FilterFormat::GroupVid),
        Just(FilterFormat::GroupMacVid)
    ];
    (
        mode(),
        any::<u8>(),
        0u32..1 << 24,
        any::<u8>(),
        vsiid(),
        format,
    )
        .prop_flat_map(|(m, st, id, ver, v, f)| {
            let entry = (1u32.., unicast(), any::<bool>(), 0u8..8, 1u16..4095).prop_map(
                move |(g, mac, ps, pcp, vid)| FilterEntry {
                    group: if f.has_group() { g } else { 0 },
                    mac: if f.has_mac() { mac } else { Mac::ZERO },
                    ps,
                    pcp,
                    vid,
                },
            );
            prop::collection::vec(entry, 1..=20).prop_map(move |filters| AssocRepr {
                mode: m,
                status: Status(st),
                type_id: id,
                version: ver,
                vsiid: v,
                filter_format: f,
                filters,
            })
        })
}

proptest! {
    #[test]
    fn association_tlvs_round_trip(tlvs in prop::collection::vec(assoc(), 1..4), mgr in any::<[u8; 16]>()) {
        let pdu = emit_pdu(&mgr, &tlvs).unwrap();
        let p = Pdu::parse(&pdu).unwrap();
        prop_assert_eq!(p.manager, mgr);
        let back: Vec<AssocRepr> = p
            .tlvs()
            .map(|t| match t {
                VdpTlv::Assoc(m, v) => AssocRepr::parse(m, v).unwrap(),
                VdpTlv::Org(_) => panic!("no org TLV was emitted"),
            })
            .collect();
        prop_assert_eq!(back, tlvs);
    }

    #[test]
    fn evb_tlv_round_trips(b in any::<[u8; 5]>()) {
        let value = [0x00, 0x80, 0xc2, 0x0d, b[0], b[1], b[2], b[3], b[4]];
        let r = EvbRepr::parse(&Evb::parse(&value[..]).unwrap());
        let mut out = [0u8; 11];
        r.emit(&mut out).unwrap();
        let masks = [0x07, 0x0f, 0xff, 0xff, 0x3f];
        for i in 0..5 {
            prop_assert_eq!(out[6 + i], b[i] & masks[i]);
        }
        prop_assert_eq!(u8::from(r.mode), b[3] >> 6);
        prop_assert_eq!(u8::from(r.rrstat), b[1] & 3);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..600)) {
        hairpin::control::fuzz::lldp_evb(&b);
        hairpin::control::fuzz::ecp(&b);
        hairpin::control::fuzz::vdp(&b);
    }
}
