//! Who else uses a Linux interface: one `RTM_GETLINK` dump over rtnetlink,
//! in the calling thread's network namespace (sysfs would show the namespace
//! it was mounted in, not the one a port's thread entered).
//!
//! An interface is in use by the kernel when it is enslaved (`IFLA_MASTER`:
//! a bridge, bond, team, Open vSwitch or VRF consumes its frames) or when a
//! macvlan/macvtap/ipvlan/ipvtap device sits on it (that device's receive
//! handler claims the frames). An XDP program already attached
//! (`IFLA_XDP_ATTACHED`) matters to `afxdp`, which attaches its own.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_LINK_NETNSID: u16 = 37;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_PROG_ID: u16 = 4;
/// Kinds of upper device that take over the lower device's receive path.
const CLAIMING_UPPERS: [&str; 4] = ["macvlan", "macvtap", "ipvlan", "ipvtap"];

/// One link as the dump describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Link {
    pub index: u32,
    pub name: String,
    pub kind: String,
    /// `IFLA_LINK` when it refers to this namespace.
    pub lower: Option<u32>,
    pub master: Option<u32>,
    /// `IFLA_XDP_ATTACHED` mode (0 = none) and the program id.
    pub xdp: (u8, u32),
}

/// How an interface is used by others, as far as a port cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// (name, kind) of the master device.
    pub master: Option<(String, String)>,
    /// (name, kind) of upper devices that claim the receive path.
    pub uppers: Vec<(String, String)>,
    /// Id of an attached XDP program.
    pub xdp_prog: Option<u32>,
}

impl Usage {
    /// Why the kernel owns the interface, if it does (for both backends).
    pub fn kernel_owner(&self, ifname: &str) -> Option<String> {
        if let Some((m, kind)) = &self.master {
            let kind = if kind.is_empty() { "device" } else { kind };
            return Some(format!(
                "interface {ifname:?} is in use: enslaved to {kind} {m:?} (free it with `ip link set {ifname} nomaster`)"
            ));
        }
        if let Some((u, kind)) = self.uppers.first() {
            return Some(format!(
                "interface {ifname:?} is in use: {kind} device {u:?} is stacked on it (delete it with `ip link del {u}`)"
            ));
        }
        None
    }
}

fn attrs(mut b: &[u8], mut f: impl FnMut(u16, &[u8])) {
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return;
        }
        f(ty, &b[4..len]);
        b = &b[((len + 3) & !3).min(b.len())..];
    }
}

fn u32_of(v: &[u8]) -> Option<u32> {
    v.get(..4)
        .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
}

fn str_of(v: &[u8]) -> String {
    let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// Parse one `RTM_NEWLINK` payload (after the netlink header).
pub(crate) fn parse_link(p: &[u8]) -> Option<Link> {
    if p.len() < 16 {
        return None;
    }
    let mut l = Link {
        index: u32::from_ne_bytes([p[4], p[5], p[6], p[7]]),
        ..Link::default()
    };
    let mut other_ns = false;
    attrs(&p[16..], |ty, v| match ty {
        IFLA_IFNAME => l.name = str_of(v),
        IFLA_LINK => l.lower = u32_of(v),
        IFLA_LINK_NETNSID => other_ns = true,
        IFLA_MASTER => l.master = u32_of(v).filter(|&m| m != 0),
        IFLA_LINKINFO => attrs(v, |t, v| {
            if t == IFLA_INFO_KIND {
                l.kind = str_of(v);
            }
        }),
        IFLA_XDP => attrs(v, |t, v| match t {
            IFLA_XDP_ATTACHED => l.xdp.0 = v.first().copied().unwrap_or(0),
            IFLA_XDP_PROG_ID => l.xdp.1 = u32_of(v).unwrap_or(0),
            _ => {}
        }),
        _ => {}
    });
    if other_ns {
        l.lower = None;
    }
    Some(l)
}

/// What `links` say about the interface `ifindex`.
pub(crate) fn usage_of(links: &[Link], ifindex: u32) -> Usage {
    let by_index = |i: u32| links.iter().find(|l| l.index == i);
    let mut u = Usage::default();
    if let Some(me) = by_index(ifindex) {
        u.master = me.master.map(|m| match by_index(m) {
            Some(l) => (l.name.clone(), l.kind.clone()),
            None => (format!("ifindex {m}"), String::new()),
        });
        if me.xdp.0 != 0 {
            u.xdp_prog = Some(me.xdp.1);
        }
    }
    u.uppers = links
        .iter()
        .filter(|l| l.lower == Some(ifindex) && CLAIMING_UPPERS.contains(&l.kind.as_str()))
        .map(|l| (l.name.clone(), l.kind.clone()))
        .collect();
    u
}

/// Every link of the calling thread's network namespace.
pub(crate) fn dump_links() -> Result<Vec<Link>, String> {
    let err = |what: &str| format!("rtnetlink {what}: {}", std::io::Error::last_os_error());
    // SAFETY: plain socket call.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(err("socket"));
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = [0u8; 32];
    req[0..4].copy_from_slice(&32u32.to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // ifinfomsg: family AF_UNSPEC, everything else zero.
    // SAFETY: req is a valid buffer of the length given; the kernel is the peer (no address).
    if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(err("send"));
    }
    let mut links = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err("recv"));
        }
        let mut b = &buf[..n as usize];
        if b.is_empty() {
            return Err("rtnetlink: the dump ended early".into());
        }
        while b.len() >= 16 {
            let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
            let ty = u16::from_ne_bytes([b[4], b[5]]);
            if len < 16 || len > b.len() {
                return Err("rtnetlink: a malformed reply".into());
            }
            match ty {
                NLMSG_DONE => return Ok(links),
                NLMSG_ERROR => {
                    let code = b
                        .get(16..20)
                        .map(|x| i32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
                        .unwrap_or(0);
                    if code != 0 {
                        return Err(format!(
                            "rtnetlink link dump: {}",
                            std::io::Error::from_raw_os_error(-code)
                        ));
                    }
                }
                RTM_NEWLINK => links.extend(parse_link(&b[16..len])),
                _ => {}
            }
            b = &b[((len + 3) & !3).min(b.len())..];
        }
    }
}

/// How others use the interface `ifindex` in the calling thread's namespace.
pub(crate) fn usage(ifindex: u32) -> Result<Usage, String> {
    Ok(usage_of(&dump_links()?, ifindex))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, v: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend(((4 + v.len()) as u16).to_ne_bytes());
        a.extend(ty.to_ne_bytes());
        a.extend(v);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn link_msg(index: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        p[4..8].copy_from_slice(&index.to_ne_bytes());
        for a in attrs {
            p.extend(a);
        }
        p
    }

    #[test]
    fn parses_master_kind_lower_and_xdp() {
        let info = attr(IFLA_LINKINFO | 0x8000, &attr(IFLA_INFO_KIND, b"macvlan\0"));
        let xdp = attr(
            IFLA_XDP | 0x8000,
            &[
                attr(IFLA_XDP_ATTACHED, &[1]),
                attr(IFLA_XDP_PROG_ID, &42u32.to_ne_bytes()),
            ]
            .concat(),
        );
        let m = link_msg(
            7,
            &[
                attr(IFLA_IFNAME, b"mv0\0"),
                attr(IFLA_LINK, &3u32.to_ne_bytes()),
                attr(IFLA_MASTER, &9u32.to_ne_bytes()),
                info,
                xdp,
            ],
        );
        let l = parse_link(&m).unwrap();
        assert_eq!(l.index, 7);
        assert_eq!(l.name, "mv0");
        assert_eq!(l.kind, "macvlan");
        assert_eq!(l.lower, Some(3));
        assert_eq!(l.master, Some(9));
        assert_eq!(l.xdp, (1, 42));
        // A lower link in another namespace (a veth peer) is not a lower here.
        let m = link_msg(
            8,
            &[
                attr(IFLA_LINK, &3u32.to_ne_bytes()),
                attr(IFLA_LINK_NETNSID, &0u32.to_ne_bytes()),
            ],
        );
        assert_eq!(parse_link(&m).unwrap().lower, None);
        // Truncated attributes stop the parse without panicking.
        let mut m = link_msg(9, &[attr(IFLA_IFNAME, b"x\0")]);
        m[16] = 200;
        assert_eq!(parse_link(&m).unwrap().name, "");
        assert!(parse_link(&[0u8; 8]).is_none());
    }

    #[test]
    fn usage_names_master_uppers_and_xdp() {
        let l = |index, name: &str, kind: &str, lower, master| Link {
            index,
            name: name.into(),
            kind: kind.into(),
            lower,
            master,
            xdp: (0, 0),
        };
        let mut links = vec![
            l(1, "br0", "bridge", None, None),
            l(2, "eth1", "veth", Some(5), Some(1)),
            l(3, "eth2", "veth", None, None),
            l(4, "mv0", "macvlan", Some(3), None),
            l(6, "vl10", "vlan", Some(3), None),
        ];
        let u = usage_of(&links, 2);
        assert_eq!(u.master, Some(("br0".into(), "bridge".into())));
        let why = u.kernel_owner("eth1").unwrap();
        assert!(why.contains("enslaved to bridge \"br0\""), "{why}");
        let u = usage_of(&links, 3);
        assert_eq!(u.master, None);
        assert_eq!(
            u.uppers,
            vec![("mv0".into(), "macvlan".into())],
            "vlan does not claim"
        );
        assert!(u
            .kernel_owner("eth2")
            .unwrap()
            .contains("macvlan device \"mv0\""));
        links[2].xdp = (2, 17);
        assert_eq!(usage_of(&links, 3).xdp_prog, Some(17));
        assert_eq!(usage_of(&links, 6), Usage::default());
        assert_eq!(usage_of(&links, 6).kernel_owner("vl10"), None);
    }

    #[test]
    fn dump_sees_loopback() {
        let links = dump_links().expect("rtnetlink works unprivileged");
        assert!(
            links.iter().any(|l| l.name == "lo" && l.index == 1),
            "{links:?}"
        );
    }
}
