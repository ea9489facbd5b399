//! Small shared newtypes: MAC addresses, port ids, VLAN ids.

use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    /// 00:00:00:00:00:00.
    pub const ZERO: Mac = Mac([0; 6]);
    /// From the first 6 bytes of a slice (caller checked the length).
    #[inline(always)]
    pub fn from_slice(b: &[u8]) -> Mac {
        Mac([b[0], b[1], b[2], b[3], b[4], b[5]])
    }
    /// Group (multicast or broadcast) address: I/G bit set.
    #[inline(always)]
    pub fn is_group(&self) -> bool {
        self.0[0] & 1 == 1
    }
    /// All ones.
    #[inline(always)]
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }
    /// All zeros.
    #[inline(always)]
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
    /// As a u64 (big-endian, top 16 bits zero).
    #[inline(always)]
    pub fn to_u64(&self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }
    /// From the low 48 bits of a u64.
    #[inline(always)]
    pub fn from_u64(v: u64) -> Mac {
        let b = v.to_be_bytes();
        Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}
impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(format!(
                "{s:?} is not a MAC address (want six hex bytes like 02:00:00:00:00:01)"
            ));
        }
        let mut m = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || p.len() > 2 {
                return Err(format!(
                    "{s:?} is not a MAC address (byte {} is {p:?})",
                    i + 1
                ));
            }
            m[i] = u8::from_str_radix(p, 16)
                .map_err(|_| format!("{s:?} is not a MAC address (byte {} is {p:?})", i + 1))?;
        }
        Ok(Mac(m))
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Index of a port in the switch (config order). At most [`MAX_PORTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PortId(pub u16);

/// Ports per switch instance (flood sets are 64-bit masks).
pub const MAX_PORTS: usize = 64;

/// A 12-bit VLAN id (1..=4094 for a member VLAN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Vid(pub u16);

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn mac_parse_print() {
        let m: Mac = "02:00:0A:ff:00:01".parse().unwrap();
        assert_eq!(m.to_string(), "02:00:0a:ff:00:01");
        assert_eq!(Mac::from_u64(m.to_u64()), m);
        assert!("02:00:00:00:00".parse::<Mac>().is_err());
        assert!("02:00:00:00:00:zz".parse::<Mac>().is_err());
        assert!("02:00:00:00:00:123".parse::<Mac>().is_err());
        assert!("01:00:5e:00:00:01".parse::<Mac>().unwrap().is_group());
        assert!(Mac::BROADCAST.is_broadcast());
    }
}
