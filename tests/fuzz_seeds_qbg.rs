//! Seeds for the 802.1Qbg fuzz targets (`fuzz/seeds/{lldp_evb,ecp,vdp}/`):
//! regenerate with `HAIRPIN_WRITE_SEEDS=1 cargo test --test fuzz_seeds_qbg`.
//! Every run checks the committed seeds match, are accepted by the parsers
//! they seed (so the fuzzer starts deep), and survive the fuzz functions.

use hairpin::control::lldp::{self, LldpRx};
use hairpin::types::Mac;
use hairpin::wire::evb::{EvbMode, EvbRepr, RrStat};
use hairpin::wire::vdp::{
    emit_pdu, AssocRepr, FilterEntry, FilterFormat, Mode, OrgRepr, Pdu, Status, VsiId,
};
use std::path::PathBuf;

fn evb(bridge: bool) -> EvbRepr {
    EvbRepr {
        bgid: false,
        rrcap: true,
        rrctr: false,
        sgid: false,
        rrreq: !bridge,
        rrstat: RrStat::NotEnabled,
        r: if bridge { 0 } else { 3 },
        rte: if bridge { 0 } else { 8 },
        mode: if bridge {
            EvbMode::Bridge
        } else {
            EvbMode::Station
        },
        rol_rwd: false,
        rwd: if bridge { 0 } else { 8 },
        rol_rka: false,
        rka: if bridge { 0 } else { 8 },
    }
}

fn assoc(mode: Mode, f: FilterFormat) -> AssocRepr {
    let mac = Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    AssocRepr {
        mode,
        status: Status(0),
        type_id: 5,
        version: 1,
        vsiid: VsiId::uuid([
            0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4,
            0x30, 0xc8,
        ]),
        filter_format: f,
        filters: vec![FilterEntry {
            group: if f.has_group() { 9 } else { 0 },
            mac: if f.has_mac() { mac } else { Mac::ZERO },
            ..FilterEntry::mac_vid(Mac::ZERO, 0)
        }],
    }
}

fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let m = Mac([2, 0, 0, 0, 0, 1]);
    let golden = emit_pdu(&[0; 16], &[assoc(Mode::Assoc, FilterFormat::MacVid)]).unwrap();
    let mut mixed = emit_pdu(
        &[0; 16],
        &[
            assoc(Mode::PreAssoc, FilterFormat::Vid),
            assoc(Mode::PreAssocRr, FilterFormat::GroupVid),
            assoc(Mode::DeAssoc, FilterFormat::GroupMacVid),
        ],
    )
    .unwrap();
    OrgRepr {
        oui: [0, 0x80, 0xc2],
        data: vec![1, 2],
    }
    .emit(&mut mixed)
    .unwrap();
    let mut ecp = vec![0x10, 0x01, 0x12, 0x24];
    ecp.extend_from_slice(&golden);
    let mut ecp_run = ecp.clone();
    for extra in [
        &[0xee][..],
        &ecp,
        &[0xee, 0x14, 0x01, 0x12, 0x24, 0xee, 0x20, 0x01, 0, 1],
    ] {
        ecp_run.extend_from_slice(extra);
    }
    vec![
        (
            "lldp_evb",
            "bridge_offer",
            lldp::build(m, m, "p1", 120, &evb(true)),
        ),
        (
            "lldp_evb",
            "station_answer",
            lldp::build(m, m, "eth0", 120, &evb(false)),
        ),
        ("ecp", "request", ecp),
        ("ecp", "request_dup_ack_badver", ecp_run),
        ("vdp", "assoc_macvid_uuid", golden),
        ("vdp", "all_modes_formats_org", mixed),
    ]
}

#[test]
fn qbg_seeds_match_and_parse() {
    let write = std::env::var_os("HAIRPIN_WRITE_SEEDS").is_some();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for (target, name, bytes) in seeds() {
        let dir = root.join(target);
        let p = dir.join(format!("{name}.bin"));
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&p, &bytes).unwrap();
        }
        let on_disk = std::fs::read(&p).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with HAIRPIN_WRITE_SEEDS=1)",
                p.display()
            )
        });
        assert_eq!(on_disk, bytes, "{target}/{name}: regenerate");
        match target {
            "lldp_evb" => {
                assert!(matches!(
                    lldp::read(&bytes),
                    LldpRx::Evb { evb: Some(_), .. }
                ));
                hairpin::control::fuzz::lldp_evb(&bytes);
            }
            "ecp" => {
                assert!(hairpin::control::fuzz::ecp(&bytes) >= 1);
            }
            _ => {
                assert!(Pdu::parse(&bytes).unwrap().tlvs().count() >= 1);
                hairpin::control::fuzz::vdp(&bytes);
            }
        }
    }
}
