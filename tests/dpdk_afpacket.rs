//! The dpdk backend on `net_af_packet` over a veth pair whose far end sits in
//! a network namespace made here (`hpd-*`): a frame sent from the namespace
//! is reflected by hairpin through the DPDK ethdev and arrives back.
//! (net_af_packet reports its link up whatever the veth's carrier, so the
//! link-wait error is tested on a net_vhost port in `dpdk_common::bad_input`.)
//! Needs root (namespaces, veth); prints "skipped" otherwise.
#![cfg(feature = "dpdk")]

mod dpdk_common;

use hairpin::gen::{udp_frame, vm_mac};
use std::process::Command;
use std::time::{Duration, Instant};

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Namespace and veth pairs, removed on drop (also after a failed assert).
struct Lab {
    ns: String,
    links: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = Command::new("ip")
                .args(["link", "del", l])
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// Send `frame` from `iface` inside namespace `ns` and wait for a frame
/// equal to `expect` to arrive there (not our own outgoing copy).
#[allow(unsafe_code)]
fn send_and_wait(ns: &str, iface: &str, frame: Vec<u8>, expect: Vec<u8>) -> bool {
    let ns = ns.to_string();
    let iface = std::ffi::CString::new(iface).unwrap();
    std::thread::spawn(move || unsafe {
        // setns affects this thread only.
        let path = std::ffi::CString::new(format!("/var/run/netns/{ns}")).unwrap();
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
        assert!(fd >= 0, "open netns");
        assert_eq!(libc::setns(fd, libc::CLONE_NEWNET), 0, "setns");
        libc::close(fd);
        let s = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            (libc::ETH_P_ALL as u16).to_be() as i32,
        );
        assert!(s >= 0, "packet socket");
        let ifindex = libc::if_nametoindex(iface.as_ptr());
        assert!(ifindex > 0, "ifindex");
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        let sl = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        assert_eq!(
            libc::bind(s, &sll as *const _ as *const libc::sockaddr, sl),
            0
        );
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        libc::setsockopt(
            s,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let t0 = Instant::now();
        let mut found = false;
        let mut last_send = None::<Instant>;
        while !found && t0.elapsed() < Duration::from_secs(10) {
            if last_send.map_or(true, |t| t.elapsed() > Duration::from_secs(1)) {
                libc::send(s, frame.as_ptr() as *const libc::c_void, frame.len(), 0);
                last_send = Some(Instant::now());
            }
            let mut buf = [0u8; 2048];
            let mut from: libc::sockaddr_ll = std::mem::zeroed();
            let mut fl = sl;
            let n = libc::recvfrom(
                s,
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
                &mut from as *mut _ as *mut libc::sockaddr,
                &mut fl,
            );
            if n > 0 && from.sll_pkttype != libc::PACKET_OUTGOING {
                found = buf[..n as usize] == expect[..];
            }
        }
        libc::close(s);
        found
    })
    .join()
    .unwrap()
}

#[test]
fn dpdk_af_packet_veth() {
    if !is_root() {
        println!("skipped: needs root for network namespaces and veth pairs");
        return;
    }
    let n = std::process::id() % 100_000;
    let lab = Lab {
        ns: format!("hpd-ns{n}"),
        links: vec![format!("hpd-a{n}")],
    };
    let (a, b) = (format!("hpd-a{n}"), format!("hpd-b{n}"));
    assert!(ip(&["netns", "add", &lab.ns]), "ip netns add");
    assert!(ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]));
    assert!(ip(&["link", "set", &b, "netns", &lab.ns]));
    assert!(ip(&["link", "set", &a, "up"]));
    assert!(ip(&["-n", &lab.ns, "link", "set", &b, "up"]));

    let prefix = format!("hpd-afp{}", std::process::id());
    let _guard = dpdk_common::RuntimeDirGuard(prefix.clone());
    hairpin::dpdk::eal_init(&dpdk_common::eal_args(&prefix, false)).expect("EAL");

    let (ma, mb) = (vm_mac(1), vm_mac(2));
    let cfg = format!(
        r#"
[switch]
role = "bridge"
workers = [0]
pool_size = 4096
[dpdk]
rx_desc = 256
tx_desc = 256
[[port]]
name = "hv"
backend = "dpdk:net_af_packet_hpda{n},iface={a}"
reflective_relay = true
[[vm]]
name = "a"
mac = "{ma}"
vlan = 1
port = "hv"
[[vm]]
name = "b"
mac = "{mb}"
vlan = 1
port = "hv"
"#
    );
    let sw = dpdk_common::Sw::start(&cfg).expect("switch on net_af_packet");
    let pool = sw.pool.clone();
    let f = udp_frame(mb, ma, None, 7);
    assert!(
        send_and_wait(&lab.ns, &b, f.clone(), f),
        "A→B sent into {a} came back reflected"
    );
    let (ctr, stats) = sw.finish();
    assert!(ctr["reflected"].as_u64().unwrap() >= 1, "{ctr}");
    assert!(
        stats[0]["eth"]["opackets"].as_u64().unwrap() >= 1,
        "{}",
        stats[0]
    );
    assert_eq!(stats[0]["driver"], "net_af_packet");
    assert_eq!(pool.available(), pool.capacity(), "no leaked mbufs");
    drop(pool);
    dpdk_common::teardown(&prefix);
    drop(lab);
    assert!(!std::path::Path::new(&format!("/var/run/netns/hpd-ns{n}")).exists());
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
