//! Placeholder for the classifier (replaced by the acl branch on merge).
#![allow(missing_docs)]

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prefix {
    pub v6: bool,
    pub addr: u128,
    pub len: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub src_mac: Option<(u64, u64)>,
    pub dst_mac: Option<(u64, u64)>,
    pub vlan: Option<u16>,
    pub pcp: Option<u8>,
    pub ethertype: Option<u16>,
    pub src_ip: Option<Prefix>,
    pub dst_ip: Option<Prefix>,
    pub proto: Option<u8>,
    pub dscp: Option<u8>,
    pub src_port: Option<(u16, u16)>,
    pub dst_port: Option<(u16, u16)>,
    pub tcp_flags: Option<(u8, u8)>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub fragment: Option<bool>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IpVer {
    #[default]
    None,
    V4,
    V6,
}
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Frag {
    #[default]
    NotFragment,
    First,
    Later,
}
pub const HAS_PROTO: u8 = 1;
pub const HAS_PORTS: u8 = 2;
pub const HAS_TCP_FLAGS: u8 = 4;
pub const HAS_ICMP: u8 = 8;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AclKey {
    pub src_mac: u64,
    pub dst_mac: u64,
    pub vlan: u16,
    pub pcp: u8,
    pub ethertype: u16,
    pub ip: IpVer,
    pub src_ip: u128,
    pub dst_ip: u128,
    pub proto: u8,
    pub dscp: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub frag: Frag,
    pub has: u8,
}

impl AclKey {
    pub fn from_frame(frame: &[u8], vlan: u16, pcp: u8) -> AclKey {
        use crate::wire::frame::{parse_frame, L4Info};
        let mut k = AclKey {
            vlan,
            pcp,
            ..Default::default()
        };
        let Ok(f) = parse_frame(frame) else { return k };
        k.src_mac = f.src.to_u64();
        k.dst_mac = f.dst.to_u64();
        k.ethertype = f.ethertype;
        if let Some(ip) = f.ip {
            match (ip.src, ip.dst) {
                (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) => {
                    k.ip = IpVer::V4;
                    k.src_ip = u32::from(a) as u128;
                    k.dst_ip = u32::from(b) as u128;
                }
                (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) => {
                    k.ip = IpVer::V6;
                    k.src_ip = u128::from(a);
                    k.dst_ip = u128::from(b);
                }
                _ => {}
            }
            k.dscp = ip.dscp;
            if let Some(p) = ip.proto {
                k.proto = p;
                k.has |= HAS_PROTO;
            }
            k.frag = if !ip.frag.is_fragment {
                Frag::NotFragment
            } else if ip.frag.is_first {
                Frag::First
            } else {
                Frag::Later
            };
        }
        match f.l4 {
            Some(L4Info::Tcp {
                src_port,
                dst_port,
                flags,
            }) => {
                k.src_port = src_port;
                k.dst_port = dst_port;
                k.tcp_flags = flags as u8;
                k.has |= HAS_PORTS | HAS_TCP_FLAGS;
            }
            Some(L4Info::Udp { src_port, dst_port }) => {
                k.src_port = src_port;
                k.dst_port = dst_port;
                k.has |= HAS_PORTS;
            }
            Some(L4Info::Icmp { ty, code }) | Some(L4Info::Icmpv6 { ty, code }) => {
                k.icmp_type = ty;
                k.icmp_code = code;
                k.has |= HAS_ICMP;
            }
            _ => {}
        }
        k
    }
}

impl Rule {
    pub fn matches(&self, k: &AclKey) -> bool {
        let pfx = |p: &Prefix, a: u128| {
            let ok_ver = if p.v6 {
                k.ip == IpVer::V6
            } else {
                k.ip == IpVer::V4
            };
            let max = if p.v6 { 128 } else { 32 };
            ok_ver
                && (p.len == 0 || (a >> (max - p.len as u32)) == (p.addr >> (max - p.len as u32)))
        };
        self.src_mac.is_none_or(|(v, m)| k.src_mac & m == v)
            && self.dst_mac.is_none_or(|(v, m)| k.dst_mac & m == v)
            && self.vlan.is_none_or(|v| k.vlan == v)
            && self.pcp.is_none_or(|v| k.pcp == v)
            && self.ethertype.is_none_or(|v| k.ethertype == v)
            && self.src_ip.as_ref().is_none_or(|p| pfx(p, k.src_ip))
            && self.dst_ip.as_ref().is_none_or(|p| pfx(p, k.dst_ip))
            && self
                .proto
                .is_none_or(|v| k.has & HAS_PROTO != 0 && k.proto == v)
            && self.dscp.is_none_or(|v| k.ip != IpVer::None && k.dscp == v)
            && self
                .src_port
                .is_none_or(|(a, b)| k.has & HAS_PORTS != 0 && (a..=b).contains(&k.src_port))
            && self
                .dst_port
                .is_none_or(|(a, b)| k.has & HAS_PORTS != 0 && (a..=b).contains(&k.dst_port))
            && self
                .tcp_flags
                .is_none_or(|(v, m)| k.has & HAS_TCP_FLAGS != 0 && k.tcp_flags & m == v)
            && self
                .icmp_type
                .is_none_or(|v| k.has & HAS_ICMP != 0 && k.icmp_type == v)
            && self
                .icmp_code
                .is_none_or(|v| k.has & HAS_ICMP != 0 && k.icmp_code == v)
            && self
                .fragment
                .is_none_or(|f| k.ip != IpVer::None && f == (k.frag != Frag::NotFragment))
    }
}

pub fn linear(rules: &[Rule], k: &AclKey) -> Option<u32> {
    rules.iter().position(|r| r.matches(k)).map(|i| i as u32)
}

pub struct Classifier {
    rules: Vec<Rule>,
}
impl Classifier {
    pub fn build(rules: &[Rule]) -> Classifier {
        Classifier {
            rules: rules.to_vec(),
        }
    }
    pub fn classify(&self, k: &AclKey) -> Option<u32> {
        linear(&self.rules, k)
    }
    pub fn len(&self) -> usize {
        self.rules.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
    pub fn memory_bytes(&self) -> usize {
        self.rules.len() * std::mem::size_of::<Rule>()
    }
}
