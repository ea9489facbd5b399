//! The fuzz seed corpus (`fuzz/seeds/*.bin`): regenerate it with
//! `HAIRPIN_WRITE_SEEDS=1 cargo test --test fuzz_seeds`; every run checks the
//! committed seeds still parse as the frames they were built as.

use hairpin::types::Mac;
use hairpin::wire::ecp::{Op, Subtype};
use hairpin::wire::ipv6::ext;
use hairpin::wire::l4::tcp_flags;
use hairpin::wire::{parse_frame, FrameBuilder, L3Kind, Tci};
use std::path::PathBuf;

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let b = FrameBuilder::new()
        .src(Mac([2, 0, 0, 0, 0, 0x0a]))
        .dst(Mac([2, 0, 0, 0, 0, 0x0b]));
    let (a4, b4) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
    let (a6, b6) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    vec![
        ("arp_request", FrameBuilder::new().arp_request(a4, b4)),
        (
            "udp4_vlan",
            b.clone().vlan(10).payload_len(18).udp4(a4, b4, 1000, 53),
        ),
        (
            "tcp4_qinq_opts",
            b.clone()
                .tag(0x88a8, Tci::new(5, false, 100))
                .vlan(20)
                .ipv4_options(&[1, 1, 1, 0])
                .tcp4(a4, b4, 40000, 443, tcp_flags::SYN),
        ),
        (
            "icmp4_frag",
            b.clone().fragment(0, true).icmp4_echo(a4, b4, false, 1, 1),
        ),
        (
            "udp6_ext_frag",
            b.clone()
                .ipv6_ext(ext::HOP_BY_HOP)
                .ipv6_ext(ext::DEST_OPTS)
                .fragment(0, true)
                .udp6(a6, b6, 546, 547),
        ),
        (
            "tcp6_ah",
            b.clone()
                .ipv6_ext(ext::AH)
                .tcp6(a6, b6, 22, 50000, tcp_flags::ACK | tcp_flags::PSH),
        ),
        ("icmp6_ns", b.clone().icmp6(a6, b6, 135, 0, 0)),
        (
            "lldp_evb",
            b.clone()
                .payload(&[
                    0xfe, 0x09, 0x00, 0x80, 0xc2, 0x0d, 0x02, 0x00, 0x00, 0x40, 0x00,
                ])
                .lldp(b"eth0", 120),
        ),
        (
            "ecp_vdp",
            b.clone()
                .payload(&[0x0a, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
                .ecp(Op::Request, Subtype::Vdp, 0x1224),
        ),
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds")
}

#[test]
fn seeds_match_builder() {
    let write = std::env::var_os("HAIRPIN_WRITE_SEEDS").is_some();
    for (name, frame) in seeds() {
        let p = dir().join(format!("{name}.bin"));
        if write {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&p, &frame).unwrap();
        }
        let on_disk = std::fs::read(&p).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with HAIRPIN_WRITE_SEEDS=1)",
                p.display()
            )
        });
        assert_eq!(
            on_disk, frame,
            "{name}: seed differs from the builder; regenerate"
        );
        let i = parse_frame(&frame).unwrap();
        assert!(!i.incomplete, "{name}");
        assert!(i.l3 != L3Kind::Other, "{name}");
        hairpin::wire::fuzz::exercise(&frame);
    }
}
