//! VDP (802.1Qbg-2012 VSI Discovery and Configuration Protocol): the TLVs an
//! ECP PDU carries.
//!
//! The ULPDU is a run of 7+9-bit TLVs ([`super::lldp::TlvIter`]): 0 End,
//! 1 Pre-Associate, 2 Pre-Associate with resource reservation, 3 Associate,
//! 4 De-Associate, 5 VSI Manager ID (16 bytes), 127 organizationally defined
//! (OUI + data). Association TLV value (length 25 + n × entry size):
//! ```text
//! 0      status   1-3 VSI type id (24b)   4 type version   5 VSIID format
//! 6-21   VSIID (16 B)   22 filter format   23-24 entry count
//! 25..   entries: VID 2 | MAC/VID 6+2 | GroupID/VID 4+2 | GroupID/MAC/VID 4+6+2
//! VID word: b15 PS | b14-12 PCP | b11-0 VID (0 = "bridge assigns")
//! ```
//! Status byte: requests b6=0, b5 S (suspended / migrating from), b4 M
//! (migrating to); responses b6=1, b5 KEEP, b4 HARD, b3-0 reason.
//!
//! PDU rules ([`Pdu::parse`]): the first TLV is exactly one Manager ID, a
//! second Manager ID or a TLV overrunning the PDU drops the whole PDU,
//! unknown TLV types are skipped, zero padding reads as End.

use super::lldp::{tlv_header, TlvIter};
use super::{be16, Error};
use crate::types::Mac;

/// VDP TLV types.
pub mod tlv_type {
    /// End (zero padding reads as End too).
    pub const END: u8 = 0;
    /// Pre-Associate.
    pub const PRE_ASSOC: u8 = 1;
    /// Pre-Associate with resource reservation.
    pub const PRE_ASSOC_RR: u8 = 2;
    /// Associate.
    pub const ASSOC: u8 = 3;
    /// De-Associate.
    pub const DEASSOC: u8 = 4;
    /// VSI Manager ID.
    pub const MANAGER_ID: u8 = 5;
    /// Organizationally defined TLV.
    pub const ORG: u8 = 127;
}

/// Length of a Manager ID value.
pub const MANAGER_ID_LEN: usize = 16;
/// Length of an association TLV value without filter entries.
pub const ASSOC_FIXED_LEN: usize = 25;
/// Largest TLV value (9-bit length).
pub const MAX_VALUE_LEN: usize = 511;

/// The mode of an association TLV (its TLV type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Pre-Associate: check the profile, no forwarding.
    PreAssoc,
    /// Pre-Associate with resource reservation.
    PreAssocRr,
    /// Associate: install and forward.
    Assoc,
    /// De-Associate: remove.
    DeAssoc,
}

impl Mode {
    /// The mode of TLV type `t`, if it is an association TLV.
    pub fn from_type(t: u8) -> Option<Mode> {
        match t {
            tlv_type::PRE_ASSOC => Some(Mode::PreAssoc),
            tlv_type::PRE_ASSOC_RR => Some(Mode::PreAssocRr),
            tlv_type::ASSOC => Some(Mode::Assoc),
            tlv_type::DEASSOC => Some(Mode::DeAssoc),
            _ => None,
        }
    }
    /// Its TLV type.
    pub fn tlv_type(self) -> u8 {
        match self {
            Mode::PreAssoc => tlv_type::PRE_ASSOC,
            Mode::PreAssocRr => tlv_type::PRE_ASSOC_RR,
            Mode::Assoc => tlv_type::ASSOC,
            Mode::DeAssoc => tlv_type::DEASSOC,
        }
    }
    /// Short name (`preassoc`, `preassoc-rr`, `assoc`, `deassoc`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::PreAssoc => "preassoc",
            Mode::PreAssocRr => "preassoc-rr",
            Mode::Assoc => "assoc",
            Mode::DeAssoc => "deassoc",
        }
    }
}

/// Reason code (status bits 3-0 of a response).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// 0: success.
    Success,
    /// 1: invalid format (VSIID or filter format, lengths).
    InvalidFormat,
    /// 2: insufficient resources.
    InsufficientResources,
    /// 3: unable to contact the VSI manager.
    UnreachableManager,
    /// 4: other failure.
    Other,
    /// 5: invalid VID, GroupID or MAC address.
    InvalidFilter,
    /// Any other 4-bit value.
    Unknown(u8),
}

impl From<u8> for Reason {
    fn from(v: u8) -> Reason {
        match v & 0xf {
            0 => Reason::Success,
            1 => Reason::InvalidFormat,
            2 => Reason::InsufficientResources,
            3 => Reason::UnreachableManager,
            4 => Reason::Other,
            5 => Reason::InvalidFilter,
            x => Reason::Unknown(x),
        }
    }
}

impl From<Reason> for u8 {
    fn from(r: Reason) -> u8 {
        match r {
            Reason::Success => 0,
            Reason::InvalidFormat => 1,
            Reason::InsufficientResources => 2,
            Reason::UnreachableManager => 3,
            Reason::Other => 4,
            Reason::InvalidFilter => 5,
            Reason::Unknown(x) => x & 0xf,
        }
    }
}

/// The status byte of an association TLV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status(pub u8);

impl Status {
    /// Response bit (b6).
    pub const ACK: u8 = 0x40;
    /// Response: previous state kept (b5).
    pub const KEEP: u8 = 0x20;
    /// Response: hard (permanent) error (b4).
    pub const HARD: u8 = 0x10;
    /// Request: suspended / migrating from (b5).
    pub const S: u8 = 0x20;
    /// Request: migrating to (b4).
    pub const M: u8 = 0x10;

    /// A request status with the M/S hints.
    pub fn request(migrate_to: bool, suspended: bool) -> Status {
        Status(u8::from(migrate_to) << 4 | u8::from(suspended) << 5)
    }
    /// A response status.
    pub fn response(keep: bool, hard: bool, reason: Reason) -> Status {
        Status(Self::ACK | u8::from(keep) << 5 | u8::from(hard) << 4 | u8::from(reason))
    }
    /// A successful response (0x40).
    pub fn ok() -> Status {
        Status(Self::ACK)
    }
    /// b6: this is a response.
    pub fn is_response(self) -> bool {
        self.0 & Self::ACK != 0
    }
    /// Response KEEP bit.
    pub fn keep(self) -> bool {
        self.is_response() && self.0 & Self::KEEP != 0
    }
    /// Response HARD bit.
    pub fn hard(self) -> bool {
        self.is_response() && self.0 & Self::HARD != 0
    }
    /// Response reason code.
    pub fn reason(self) -> Reason {
        Reason::from(self.0)
    }
    /// Request M hint (migrating to this port).
    pub fn migrate_to(self) -> bool {
        !self.is_response() && self.0 & Self::M != 0
    }
    /// Request S hint (suspended / migrating away).
    pub fn suspended(self) -> bool {
        !self.is_response() && self.0 & Self::S != 0
    }
}

/// VSIID format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VsiIdFormat {
    /// 1: IPv4 address (as an IPv4-mapped IPv6 address).
    Ipv4,
    /// 2: IPv6 address.
    Ipv6,
    /// 3: MAC address (10 zero bytes then the MAC).
    Mac,
    /// 4: locally defined.
    Local,
    /// 5: UUID (non-zero).
    Uuid,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for VsiIdFormat {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Ipv4,
            2 => Self::Ipv6,
            3 => Self::Mac,
            4 => Self::Local,
            5 => Self::Uuid,
            x => Self::Unknown(x),
        }
    }
}

impl From<VsiIdFormat> for u8 {
    fn from(f: VsiIdFormat) -> u8 {
        match f {
            VsiIdFormat::Ipv4 => 1,
            VsiIdFormat::Ipv6 => 2,
            VsiIdFormat::Mac => 3,
            VsiIdFormat::Local => 4,
            VsiIdFormat::Uuid => 5,
            VsiIdFormat::Unknown(x) => x,
        }
    }
}

/// A VSI instance id: its format and its 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VsiId {
    /// Format.
    pub format: VsiIdFormat,
    /// The 16 bytes as on the wire.
    pub bytes: [u8; 16],
}

impl VsiId {
    /// A UUID VSIID.
    pub fn uuid(u: [u8; 16]) -> VsiId {
        VsiId {
            format: VsiIdFormat::Uuid,
            bytes: u,
        }
    }
    /// A MAC VSIID (10 zero bytes, then the MAC).
    pub fn mac(m: Mac) -> VsiId {
        let mut bytes = [0u8; 16];
        bytes[10..].copy_from_slice(&m.0);
        VsiId {
            format: VsiIdFormat::Mac,
            bytes,
        }
    }
    /// An IPv4 VSIID (IPv4-mapped: 10 zero bytes, FF FF, the address).
    pub fn ipv4(a: [u8; 4]) -> VsiId {
        let mut bytes = [0u8; 16];
        bytes[10] = 0xff;
        bytes[11] = 0xff;
        bytes[12..].copy_from_slice(&a);
        VsiId {
            format: VsiIdFormat::Ipv4,
            bytes,
        }
    }
    /// An IPv6 VSIID.
    pub fn ipv6(a: [u8; 16]) -> VsiId {
        VsiId {
            format: VsiIdFormat::Ipv6,
            bytes: a,
        }
    }
    /// A locally defined VSIID.
    pub fn local(b: [u8; 16]) -> VsiId {
        VsiId {
            format: VsiIdFormat::Local,
            bytes: b,
        }
    }
    /// Check the bytes against the format: `Err(InvalidFormat)` for an unknown
    /// format, a zero UUID/IPv6/local id, an IPv4 id not in mapped form, a MAC
    /// id with non-zero leading bytes or a zero/group MAC.
    pub fn validate(&self) -> Result<(), Reason> {
        let b = &self.bytes;
        let ok = match self.format {
            VsiIdFormat::Ipv4 => b[..10] == [0; 10] && b[10..12] == [0xff, 0xff],
            VsiIdFormat::Mac => {
                let m = Mac::from_slice(&b[10..]);
                b[..10] == [0; 10] && !m.is_zero() && !m.is_group()
            }
            VsiIdFormat::Ipv6 | VsiIdFormat::Local | VsiIdFormat::Uuid => *b != [0; 16],
            VsiIdFormat::Unknown(_) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(Reason::InvalidFormat)
        }
    }
}

/// Filter info format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FilterFormat {
    /// 1: VID.
    Vid,
    /// 2: MAC/VID.
    MacVid,
    /// 3: GroupID/VID.
    GroupVid,
    /// 4: GroupID/MAC/VID.
    GroupMacVid,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for FilterFormat {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Vid,
            2 => Self::MacVid,
            3 => Self::GroupVid,
            4 => Self::GroupMacVid,
            x => Self::Unknown(x),
        }
    }
}

impl From<FilterFormat> for u8 {
    fn from(f: FilterFormat) -> u8 {
        match f {
            FilterFormat::Vid => 1,
            FilterFormat::MacVid => 2,
            FilterFormat::GroupVid => 3,
            FilterFormat::GroupMacVid => 4,
            FilterFormat::Unknown(x) => x,
        }
    }
}

impl FilterFormat {
    /// Bytes per entry (None for an unknown format).
    pub fn entry_len(self) -> Option<usize> {
        match self {
            Self::Vid => Some(2),
            Self::MacVid => Some(8),
            Self::GroupVid => Some(6),
            Self::GroupMacVid => Some(12),
            Self::Unknown(_) => None,
        }
    }
    /// Entries carry a MAC.
    pub fn has_mac(self) -> bool {
        matches!(self, Self::MacVid | Self::GroupMacVid)
    }
    /// Entries carry a group id.
    pub fn has_group(self) -> bool {
        matches!(self, Self::GroupVid | Self::GroupMacVid)
    }
}

/// One filter entry. Fields a format does not carry are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilterEntry {
    /// Group id (GroupID formats).
    pub group: u32,
    /// MAC (MAC formats).
    pub mac: Mac,
    /// PS: the PCP is significant.
    pub ps: bool,
    /// PCP (3 bits).
    pub pcp: u8,
    /// VID (12 bits; 0 = the bridge assigns it).
    pub vid: u16,
}

impl FilterEntry {
    /// A MAC/VID entry without priority.
    pub fn mac_vid(mac: Mac, vid: u16) -> FilterEntry {
        FilterEntry {
            group: 0,
            mac,
            ps: false,
            pcp: 0,
            vid,
        }
    }
    /// The VID word: PS | PCP | VID.
    pub fn vid_word(&self) -> u16 {
        u16::from(self.ps) << 15 | u16::from(self.pcp & 7) << 12 | (self.vid & 0xfff)
    }
    fn read(f: FilterFormat, b: &[u8]) -> FilterEntry {
        let mut e = FilterEntry::mac_vid(Mac::ZERO, 0);
        let mut i = 0;
        if f.has_group() {
            e.group = super::be32(b, 0);
            i = 4;
        }
        if f.has_mac() {
            e.mac = Mac::from_slice(&b[i..i + 6]);
            i += 6;
        }
        let w = be16(b, i);
        e.ps = w & 0x8000 != 0;
        e.pcp = ((w >> 12) & 7) as u8;
        e.vid = w & 0xfff;
        e
    }
    fn write(&self, f: FilterFormat, out: &mut Vec<u8>) {
        if f.has_group() {
            out.extend_from_slice(&self.group.to_be_bytes());
        }
        if f.has_mac() {
            out.extend_from_slice(&self.mac.0);
        }
        out.extend_from_slice(&self.vid_word().to_be_bytes());
    }
    /// Check the values: VID 0 or 1..=4094, MAC unicast and non-zero, group id
    /// non-zero; `Err(InvalidFilter)` otherwise.
    pub fn validate(&self, f: FilterFormat) -> Result<(), Reason> {
        let bad_mac = f.has_mac() && (self.mac.is_zero() || self.mac.is_group());
        let bad_group = f.has_group() && self.group == 0;
        if self.vid == 0xfff || bad_mac || bad_group {
            Err(Reason::InvalidFilter)
        } else {
            Ok(())
        }
    }
}

/// Zero-copy view of an association TLV value (Pre-Associate, Pre-Associate-RR,
/// Associate, De-Associate). `parse` checks the 25-byte fixed part; the
/// entries are checked by [`Assoc::entries_ok`] (and [`AssocRepr::parse`]).
#[derive(Clone, Copy, Debug)]
pub struct Assoc<B> {
    b: B,
}

impl<B: AsRef<[u8]>> Assoc<B> {
    /// Wrap a value; [`Error::Truncated`] below 25 bytes.
    pub fn parse(b: B) -> Result<Self, Error> {
        if b.as_ref().len() < ASSOC_FIXED_LEN {
            return Err(Error::Truncated);
        }
        Ok(Assoc { b })
    }
    fn s(&self) -> &[u8] {
        self.b.as_ref()
    }
    /// Status byte.
    pub fn status(&self) -> Status {
        Status(self.s()[0])
    }
    /// VSI type id (24 bits).
    pub fn type_id(&self) -> u32 {
        u32::from_be_bytes([0, self.s()[1], self.s()[2], self.s()[3]])
    }
    /// VSI type version.
    pub fn type_version(&self) -> u8 {
        self.s()[4]
    }
    /// VSIID.
    pub fn vsiid(&self) -> VsiId {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&self.s()[6..22]);
        VsiId {
            format: VsiIdFormat::from(self.s()[5]),
            bytes,
        }
    }
    /// Filter format.
    pub fn filter_format(&self) -> FilterFormat {
        FilterFormat::from(self.s()[22])
    }
    /// Number of entries announced.
    pub fn entry_count(&self) -> u16 {
        be16(self.s(), 23)
    }
    /// The entry bytes.
    pub fn entries_raw(&self) -> &[u8] {
        &self.s()[ASSOC_FIXED_LEN..]
    }
    /// True when the format is known and the value holds exactly the announced entries.
    pub fn entries_ok(&self) -> bool {
        match self.filter_format().entry_len() {
            Some(l) => self.entries_raw().len() == l * usize::from(self.entry_count()),
            None => false,
        }
    }
    /// Entry `i` (None when out of range or the format is unknown).
    pub fn entry(&self, i: usize) -> Option<FilterEntry> {
        let f = self.filter_format();
        let l = f.entry_len()?;
        let b = self.entries_raw().get(i * l..(i + 1) * l)?;
        Some(FilterEntry::read(f, b))
    }
}

/// An association TLV, owned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AssocRepr {
    /// Mode (the TLV type).
    pub mode: Mode,
    /// Status byte.
    pub status: Status,
    /// VSI type id (24 bits).
    pub type_id: u32,
    /// VSI type version.
    pub version: u8,
    /// VSI instance id.
    pub vsiid: VsiId,
    /// Filter format.
    pub filter_format: FilterFormat,
    /// Filter entries.
    pub filters: Vec<FilterEntry>,
}

impl AssocRepr {
    /// Parse and validate a TLV value. Errors are the reason code a bridge
    /// answers with: [`Reason::InvalidFormat`] for a short value, an unknown
    /// VSIID or filter format, a bad VSIID, no entries, an entry count that
    /// does not match the length, or a VID-format request with VID 0 among
    /// several entries; [`Reason::InvalidFilter`] for a bad VID, MAC or group.
    pub fn parse(mode: Mode, value: &[u8]) -> Result<AssocRepr, Reason> {
        let v = Assoc::parse(value).map_err(|_| Reason::InvalidFormat)?;
        v.vsiid().validate()?;
        let f = v.filter_format();
        if !v.entries_ok() || v.entry_count() == 0 {
            return Err(Reason::InvalidFormat);
        }
        let filters: Vec<FilterEntry> = (0..usize::from(v.entry_count()))
            .filter_map(|i| v.entry(i))
            .collect();
        for e in &filters {
            e.validate(f)?;
        }
        if f == FilterFormat::Vid && filters.len() > 1 && filters.iter().any(|e| e.vid == 0) {
            return Err(Reason::InvalidFormat);
        }
        Ok(AssocRepr {
            mode,
            status: v.status(),
            type_id: v.type_id(),
            version: v.type_version(),
            vsiid: v.vsiid(),
            filter_format: f,
            filters,
        })
    }

    /// Value length on the wire.
    pub fn value_len(&self) -> usize {
        ASSOC_FIXED_LEN + self.filter_format.entry_len().unwrap_or(0) * self.filters.len()
    }

    /// Append the TLV (header + value) to `out`. [`Error::Malformed`] when the
    /// value would not fit the 9-bit length or the filter format is unknown.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let len = self.value_len();
        if len > MAX_VALUE_LEN || self.filter_format.entry_len().is_none() {
            return Err(Error::Malformed);
        }
        out.extend_from_slice(&tlv_header(self.mode.tlv_type(), len as u16));
        out.push(self.status.0);
        out.extend_from_slice(&self.type_id.to_be_bytes()[1..]);
        out.push(self.version);
        out.push(self.vsiid.format.into());
        out.extend_from_slice(&self.vsiid.bytes);
        out.push(self.filter_format.into());
        out.extend_from_slice(&(self.filters.len() as u16).to_be_bytes());
        for e in &self.filters {
            e.write(self.filter_format, out);
        }
        Ok(())
    }
}

/// Append an association TLV of `mode` that echoes the raw `value` of a
/// request with its status byte replaced (for answering a request that did
/// not parse). Values over 511 bytes cannot come from the wire; they are cut.
pub fn emit_echo(mode: Mode, value: &[u8], status: Status, out: &mut Vec<u8>) {
    let v = &value[..value.len().min(MAX_VALUE_LEN)];
    out.extend_from_slice(&tlv_header(mode.tlv_type(), v.len() as u16));
    let start = out.len();
    out.extend_from_slice(v);
    if let Some(s) = out.get_mut(start) {
        *s = status.0;
    }
}

/// Append a Manager ID TLV.
pub fn emit_manager_id(id: &[u8; MANAGER_ID_LEN], out: &mut Vec<u8>) {
    out.extend_from_slice(&tlv_header(tlv_type::MANAGER_ID, MANAGER_ID_LEN as u16));
    out.extend_from_slice(id);
}

/// An organizationally defined VDP TLV, owned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrgRepr {
    /// OUI.
    pub oui: [u8; 3],
    /// Data after the OUI.
    pub data: Vec<u8>,
}

impl OrgRepr {
    /// Parse a value (at least the 3-byte OUI).
    pub fn parse(value: &[u8]) -> Result<OrgRepr, Error> {
        match value {
            [a, b, c, rest @ ..] => Ok(OrgRepr {
                oui: [*a, *b, *c],
                data: rest.to_vec(),
            }),
            _ => Err(Error::Truncated),
        }
    }
    /// Append the TLV; [`Error::Malformed`] when the data is too long.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let len = 3 + self.data.len();
        if len > MAX_VALUE_LEN {
            return Err(Error::Malformed);
        }
        out.extend_from_slice(&tlv_header(tlv_type::ORG, len as u16));
        out.extend_from_slice(&self.oui);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// Why a whole VDP PDU was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PduError {
    /// The first TLV is not a Manager ID (or the PDU is empty).
    NoManagerId,
    /// The Manager ID value is not 16 bytes.
    BadManagerId,
    /// A second Manager ID.
    TwoManagerIds,
    /// A TLV header or value runs past the end of the PDU.
    Overlong,
}

impl PduError {
    /// Stable counter name.
    pub fn name(self) -> &'static str {
        match self {
            PduError::NoManagerId => "vdp_no_manager_id",
            PduError::BadManagerId => "vdp_bad_manager_id",
            PduError::TwoManagerIds => "vdp_two_manager_ids",
            PduError::Overlong => "vdp_overlong_tlv",
        }
    }
}

/// One TLV after the Manager ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VdpTlv<'a> {
    /// An association TLV of some mode: its raw value (see [`AssocRepr::parse`]).
    Assoc(Mode, &'a [u8]),
    /// An organizationally defined TLV: its raw value.
    Org(&'a [u8]),
}

/// A checked VDP PDU (ECP ULPDU): the Manager ID and the TLVs that follow.
#[derive(Clone, Copy, Debug)]
pub struct Pdu<'a> {
    /// VSI Manager ID (all zero = the default manager).
    pub manager: [u8; MANAGER_ID_LEN],
    rest: &'a [u8],
}

impl<'a> Pdu<'a> {
    /// Check the PDU-level rules over `b` (the whole ULPDU, padding included).
    pub fn parse(b: &'a [u8]) -> Result<Pdu<'a>, PduError> {
        let mut it = TlvIter::new(b);
        let first = match it.next() {
            Some(Ok(t)) if t.ty == tlv_type::MANAGER_ID => t,
            Some(Err(_)) => return Err(PduError::Overlong),
            _ => return Err(PduError::NoManagerId),
        };
        if first.value.len() != MANAGER_ID_LEN {
            return Err(PduError::BadManagerId);
        }
        let rest = it.clone();
        for t in it {
            match t {
                Err(_) => return Err(PduError::Overlong),
                Ok(t) if t.ty == tlv_type::MANAGER_ID => return Err(PduError::TwoManagerIds),
                Ok(_) => {}
            }
        }
        let mut manager = [0u8; MANAGER_ID_LEN];
        manager.copy_from_slice(first.value);
        Ok(Pdu {
            manager,
            rest: rest.remainder(),
        })
    }

    /// The association and organizational TLVs in order (unknown types skipped).
    pub fn tlvs(&self) -> impl Iterator<Item = VdpTlv<'a>> + 'a {
        TlvIter::new(self.rest)
            .map_while(Result::ok)
            .filter_map(|t| match Mode::from_type(t.ty) {
                Some(m) => Some(VdpTlv::Assoc(m, t.value)),
                None if t.ty == tlv_type::ORG => Some(VdpTlv::Org(t.value)),
                None => None,
            })
    }
}

/// Build a PDU: the Manager ID, then `tlvs` in order.
pub fn emit_pdu(manager: &[u8; MANAGER_ID_LEN], tlvs: &[AssocRepr]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(18 + tlvs.iter().map(|t| 2 + t.value_len()).sum::<usize>());
    emit_manager_id(manager, &mut out);
    for t in tlvs {
        t.emit(&mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = Mac([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const UUID: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];

    // Manager ID (IPv4 192.168.1.1 mapped), Associate: type 5 version 1,
    // UUID VSIID, MAC/VID filter with one entry (VID 100, no PCP).
    static ASSOC_PDU: [u8; 53] = [
        0x0a, 0x10, // Manager ID, 16
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 1, // manager
        0x06, 0x21, // Associate, 33
        0x00, // status
        0x00, 0x00, 0x05, 0x01, // type id 5, version 1
        0x05, // UUID
        0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8, // VSIID
        0x02, 0x00, 0x01, // MAC/VID, one entry
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x00, 0x64, // MAC, VID 100
    ];

    fn assoc() -> AssocRepr {
        AssocRepr {
            mode: Mode::Assoc,
            status: Status(0),
            type_id: 5,
            version: 1,
            vsiid: VsiId::uuid(UUID),
            filter_format: FilterFormat::MacVid,
            filters: vec![FilterEntry::mac_vid(MAC, 100)],
        }
    }

    fn mgr() -> [u8; 16] {
        let mut m = [0u8; 16];
        m[10..].copy_from_slice(&[0xff, 0xff, 192, 168, 1, 1]);
        m
    }

    #[test]
    fn parse_golden_pdu() {
        let p = Pdu::parse(&ASSOC_PDU).unwrap();
        assert_eq!(p.manager, mgr());
        let t: Vec<_> = p.tlvs().collect();
        assert_eq!(t.len(), 1);
        let VdpTlv::Assoc(Mode::Assoc, v) = t[0] else {
            panic!("not an association TLV: {:?}", t[0])
        };
        let view = Assoc::parse(v).unwrap();
        assert_eq!(view.type_id(), 5);
        assert_eq!(view.type_version(), 1);
        assert_eq!(view.entry_count(), 1);
        assert!(view.entries_ok());
        assert_eq!(view.entry(1), None);
        assert_eq!(AssocRepr::parse(Mode::Assoc, v).unwrap(), assoc());
    }

    #[test]
    fn emit_golden_pdu() {
        assert_eq!(emit_pdu(&mgr(), &[assoc()]).unwrap(), ASSOC_PDU);
        assert_eq!(&ASSOC_PDU[18..20], &[0x06, 0x21]);
    }

    #[test]
    fn every_mode_and_format_round_trips() {
        let vsiids = [
            VsiId::ipv4([10, 0, 0, 1]),
            VsiId::ipv6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            VsiId::mac(MAC),
            VsiId::local([7; 16]),
            VsiId::uuid(UUID),
        ];
        let entry = FilterEntry {
            group: 0x0102_0304,
            mac: MAC,
            ps: true,
            pcp: 5,
            vid: 4094,
        };
        let formats = [
            FilterFormat::Vid,
            FilterFormat::MacVid,
            FilterFormat::GroupVid,
            FilterFormat::GroupMacVid,
        ];
        for mode in [Mode::PreAssoc, Mode::PreAssocRr, Mode::Assoc, Mode::DeAssoc] {
            assert_eq!(Mode::from_type(mode.tlv_type()), Some(mode));
            for v in vsiids {
                for f in formats {
                    let e = FilterEntry {
                        group: if f.has_group() { entry.group } else { 0 },
                        mac: if f.has_mac() { entry.mac } else { Mac::ZERO },
                        ..entry
                    };
                    let r = AssocRepr {
                        mode,
                        status: Status::request(true, false),
                        type_id: 0xab_cdef,
                        version: 9,
                        vsiid: v,
                        filter_format: f,
                        filters: vec![e, e],
                    };
                    let mut out = Vec::new();
                    r.emit(&mut out).unwrap();
                    assert_eq!(out.len(), 2 + 25 + 2 * f.entry_len().unwrap());
                    assert_eq!(AssocRepr::parse(mode, &out[2..]), Ok(r));
                }
            }
        }
        assert_eq!(entry.vid_word(), 0xdffe);
    }

    #[test]
    fn status_bits() {
        let s = Status::response(true, true, Reason::InsufficientResources);
        assert_eq!(s.0, 0x72);
        assert!(s.is_response() && s.keep() && s.hard());
        assert_eq!(s.reason(), Reason::InsufficientResources);
        assert!(!s.migrate_to() && !s.suspended());
        assert_eq!(Status::ok().0, 0x40);
        let r = Status::request(true, true);
        assert_eq!(r.0, 0x30);
        assert!(r.migrate_to() && r.suspended() && !r.keep() && !r.hard());
        for (code, reason) in [
            (0, Reason::Success),
            (1, Reason::InvalidFormat),
            (2, Reason::InsufficientResources),
            (3, Reason::UnreachableManager),
            (4, Reason::Other),
            (5, Reason::InvalidFilter),
            (9, Reason::Unknown(9)),
        ] {
            assert_eq!(Reason::from(code), reason);
            assert_eq!(u8::from(reason), code);
        }
    }

    #[test]
    fn invalid_contents_give_reason_codes() {
        let mut r = assoc();
        let enc = |r: &AssocRepr| {
            let mut o = Vec::new();
            r.emit(&mut o).unwrap();
            o
        };
        r.vsiid = VsiId::uuid([0; 16]);
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &enc(&r)[2..]),
            Err(Reason::InvalidFormat)
        );
        let mut r = assoc();
        r.vsiid.format = VsiIdFormat::Unknown(9);
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &enc(&r)[2..]),
            Err(Reason::InvalidFormat)
        );
        let mut r = assoc();
        r.vsiid = VsiId::mac(Mac::BROADCAST);
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &enc(&r)[2..]),
            Err(Reason::InvalidFormat)
        );
        let mut b = enc(&ipv4_case());
        b[2 + 6] = 1; // IPv4 id not in mapped form
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &b[2..]),
            Err(Reason::InvalidFormat)
        );
        let mut r = assoc();
        r.filters[0].vid = 4095;
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &enc(&r)[2..]),
            Err(Reason::InvalidFilter)
        );
        let mut r = assoc();
        r.filters[0].mac = Mac([1, 0, 0x5e, 0, 0, 1]);
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &enc(&r)[2..]),
            Err(Reason::InvalidFilter)
        );
        let mut r = assoc();
        r.filter_format = FilterFormat::GroupVid;
        r.filters[0] = FilterEntry {
            group: 0,
            mac: Mac::ZERO,
            ..r.filters[0]
        };
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &enc(&r)[2..]),
            Err(Reason::InvalidFilter)
        );
        let mut r = assoc();
        r.filters.clear();
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &enc(&r)[2..]),
            Err(Reason::InvalidFormat)
        );
        // VID format: VID 0 only as the single entry.
        let mut r = assoc();
        r.filter_format = FilterFormat::Vid;
        r.filters = vec![FilterEntry::mac_vid(Mac::ZERO, 0)];
        assert!(AssocRepr::parse(Mode::Assoc, &enc(&r)[2..]).is_ok());
        r.filters.push(FilterEntry::mac_vid(Mac::ZERO, 10));
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &enc(&r)[2..]),
            Err(Reason::InvalidFormat)
        );
        // Unknown filter format, and entry count not matching the length.
        let mut b = ASSOC_PDU[20..].to_vec();
        b[22] = 9;
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &b),
            Err(Reason::InvalidFormat)
        );
        let mut b = ASSOC_PDU[20..].to_vec();
        b[24] = 2;
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &b),
            Err(Reason::InvalidFormat)
        );
        // Short value.
        assert_eq!(
            AssocRepr::parse(Mode::Assoc, &ASSOC_PDU[20..44]),
            Err(Reason::InvalidFormat)
        );
        assert_eq!(
            Assoc::parse(&ASSOC_PDU[20..44]).unwrap_err(),
            Error::Truncated
        );
    }

    fn ipv4_case() -> AssocRepr {
        AssocRepr {
            vsiid: VsiId::ipv4([10, 1, 2, 3]),
            ..assoc()
        }
    }

    #[test]
    fn pdu_rules() {
        // First TLV not a Manager ID.
        assert_eq!(
            Pdu::parse(&ASSOC_PDU[18..]).unwrap_err(),
            PduError::NoManagerId
        );
        assert_eq!(Pdu::parse(&[]).unwrap_err(), PduError::NoManagerId);
        assert_eq!(Pdu::parse(&[0; 10]).unwrap_err(), PduError::NoManagerId);
        // Two Manager IDs.
        let mut two = ASSOC_PDU[..18].to_vec();
        two.extend_from_slice(&ASSOC_PDU);
        assert_eq!(Pdu::parse(&two).unwrap_err(), PduError::TwoManagerIds);
        // Overlong TLV: the Associate claims one byte more than is there.
        let mut long = ASSOC_PDU;
        long[19] = 0x22;
        assert_eq!(Pdu::parse(&long).unwrap_err(), PduError::Overlong);
        assert_eq!(
            Pdu::parse(&ASSOC_PDU[..52]).unwrap_err(),
            PduError::Overlong
        );
        assert_eq!(
            Pdu::parse(&ASSOC_PDU[..10]).unwrap_err(),
            PduError::Overlong
        );
        // Manager ID of the wrong size.
        let bad = [0x0a, 0x01, 0x00];
        assert_eq!(Pdu::parse(&bad).unwrap_err(), PduError::BadManagerId);
        // Unknown TLVs skipped; zero padding is End (a second Manager ID after it is not seen).
        let mut p = ASSOC_PDU[..18].to_vec();
        p.extend_from_slice(&[0x0c, 0x02, 0xaa, 0xbb]); // type 6, unknown
        p.extend_from_slice(&ASSOC_PDU[18..]);
        p.extend_from_slice(&[0xfe, 0x04, 0x00, 0x80, 0xc2, 0x01]); // org
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&ASSOC_PDU[..18]);
        let pdu = Pdu::parse(&p).unwrap();
        let t: Vec<_> = pdu.tlvs().collect();
        assert_eq!(t.len(), 2);
        assert!(matches!(t[0], VdpTlv::Assoc(Mode::Assoc, _)));
        let VdpTlv::Org(v) = t[1] else {
            panic!("{:?}", t[1])
        };
        assert_eq!(
            OrgRepr::parse(v).unwrap(),
            OrgRepr {
                oui: [0, 0x80, 0xc2],
                data: vec![1]
            }
        );
        for e in [
            PduError::NoManagerId,
            PduError::BadManagerId,
            PduError::TwoManagerIds,
            PduError::Overlong,
        ] {
            assert!(e.name().starts_with("vdp_"));
        }
    }

    #[test]
    fn org_and_echo() {
        let o = OrgRepr {
            oui: [1, 2, 3],
            data: vec![4, 5],
        };
        let mut out = Vec::new();
        o.emit(&mut out).unwrap();
        assert_eq!(out, [0xfe, 0x05, 1, 2, 3, 4, 5]);
        assert_eq!(OrgRepr::parse(&[1, 2]).unwrap_err(), Error::Truncated);
        let big = OrgRepr {
            oui: [0; 3],
            data: vec![0; 509],
        };
        assert_eq!(big.emit(&mut out), Err(Error::Malformed));
        let mut e = Vec::new();
        emit_echo(Mode::DeAssoc, &ASSOC_PDU[20..], Status::ok(), &mut e);
        assert_eq!(&e[..3], &[0x08, 0x21, 0x40]);
        assert_eq!(&e[3..], &ASSOC_PDU[21..]);
        // Too many entries for the 9-bit length.
        let mut r = assoc();
        r.filters = vec![FilterEntry::mac_vid(MAC, 1); 61];
        assert_eq!(r.emit(&mut out), Err(Error::Malformed));
    }
}
