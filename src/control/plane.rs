//! One switch's control plane: punted frames in, frames to send and
//! data-path effects out. Pure logic on explicit time; [`super::thread`]
//! runs it on the control thread, tests run it on simulated time.
//!
//! Per port: the LLDP agent with the EVB TLV, ECP, and (station ports) the
//! VDP station. Switch-wide: the VDP bridge's VSI table and the policy store.
//! Punted frames are rate limited per port (`evb.punt_rate` per second,
//! one second of burst); the excess is counted and dropped.

use super::ecp::Ecp;
use super::evb::{Evb, EvbLocal, EvbRole};
use super::lldp::{self, LldpRx, LldpTx};
use super::station::{RequestError, StationEvent, VdpStation};
use super::store::PolicyStore;
use super::vdp::{Installed, PortParams, Reply, VdpBridge};
use super::{Nanos, Timers};
use crate::config::evb::{EvbPortCfg, RrCfg};
use crate::config::Config;
use crate::types::{Mac, PortId};
use crate::wire::vdp::{AssocRepr, FilterEntry, Mode, VsiId};
use crate::wire::{ecp, ethertype, Eth};

/// What changed in the data path's inputs after a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Some port's negotiated reflective relay changed.
    pub rr_changed: bool,
    /// The set of installed VSIs may have changed.
    pub vsis_changed: bool,
}

impl Effects {
    fn or(&mut self, o: Effects) {
        self.rr_changed |= o.rr_changed;
        self.vsis_changed |= o.vsis_changed;
    }
    /// True when the data path needs a new snapshot.
    pub fn any(&self) -> bool {
        self.rr_changed || self.vsis_changed
    }
}

/// Control-plane counters (switch-wide).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlaneCounters {
    /// Frames received from the punt queues.
    pub rx_frames: u64,
    /// Dropped by the per-port punt rate limit.
    pub rate_limited: u64,
    /// LLDPDUs that are not well formed (or carry a bad EVB TLV).
    pub lldp_malformed: u64,
    /// LLDPDUs for another agent (their EVB TLV is ignored).
    pub lldp_other_agent: u64,
    /// LLDPDUs fed to EVB.
    pub lldp_rx: u64,
    /// Control frames for nothing we run (STP, VLAN-tagged control frames, ECP on a non-EVB port, ...).
    pub ignored: u64,
    /// Frames handed to the data path for sending.
    pub tx_frames: u64,
}

struct PortCtl {
    name: String,
    role: Option<EvbRole>,
    rr_cfg: RrCfg,
    evb: Option<Evb>,
    lldp: LldpTx,
    ecp: Ecp,
    station: VdpStation,
    link_up: bool,
    tokens: f64,
    last_refill: Nanos,
}

/// The control plane of one switch instance.
pub struct ControlPlane {
    ports: Vec<PortCtl>,
    bridge: VdpBridge,
    store: Box<dyn PolicyStore>,
    mac: Mac,
    rate: f64,
    events: Vec<(PortId, StationEvent)>,
    /// Counters.
    pub ctr: PlaneCounters,
}

/// Default chassis MAC when `switch.mac` is not set (locally administered).
pub const DEFAULT_MAC: Mac = Mac([0x02, 0x68, 0x70, 0x00, 0x00, 0x00]);

impl ControlPlane {
    /// From a validated config and a store.
    pub fn new(cfg: &Config, store: Box<dyn PolicyStore>) -> ControlPlane {
        let timers = Timers {
            r: cfg.evb.r,
            rte: cfg.evb.rte,
            rwd: cfg.evb.rwd,
            rka: cfg.evb.rka,
        };
        let ports = cfg
            .port
            .iter()
            .map(|p| {
                let role = match p.evb {
                    EvbPortCfg::Off => None,
                    EvbPortCfg::Bridge => Some(EvbRole::Bridge),
                    EvbPortCfg::Station => Some(EvbRole::Station),
                };
                PortCtl {
                    name: p.name.clone(),
                    role,
                    rr_cfg: p.reflective_relay,
                    evb: role.map(|role| {
                        Evb::new(EvbLocal {
                            role,
                            rr: match role {
                                EvbRole::Bridge => p.reflective_relay.is_set(),
                                EvbRole::Station => true,
                            },
                            gid: cfg.evb.group_ids,
                            timers,
                        })
                    }),
                    lldp: LldpTx::new(),
                    ecp: Ecp::new(),
                    station: VdpStation::new(),
                    link_up: true,
                    tokens: f64::from(cfg.evb.punt_rate),
                    last_refill: 0,
                }
            })
            .collect();
        ControlPlane {
            ports,
            bridge: VdpBridge::with_limit(cfg.evb.max_vsis_per_port),
            store,
            mac: cfg.switch.mac.unwrap_or(DEFAULT_MAC),
            rate: f64::from(cfg.evb.punt_rate),
            events: Vec::new(),
            ctr: PlaneCounters::default(),
        }
    }

    /// The source MAC of control frames on port `i`.
    pub fn port_mac(&self, i: usize) -> Mac {
        let mut m = self.mac.0;
        m[4] ^= (i >> 8) as u8;
        m[5] ^= i as u8;
        Mac(m)
    }

    /// The VDP bridge (VSI table and counters).
    pub fn bridge(&self) -> &VdpBridge {
        &self.bridge
    }

    /// The EVB state of a port (None when `evb = "off"`).
    pub fn evb(&self, p: PortId) -> Option<&Evb> {
        self.ports
            .get(usize::from(p.0))
            .and_then(|x| x.evb.as_ref())
    }

    /// The ECP state of a port.
    pub fn ecp(&self, p: PortId) -> Option<&Ecp> {
        self.ports.get(usize::from(p.0)).map(|x| &x.ecp)
    }

    /// The VDP station of a port.
    pub fn station(&self, p: PortId) -> Option<&VdpStation> {
        self.ports.get(usize::from(p.0)).map(|x| &x.station)
    }

    /// Replace the policy store (config reload). VSIs already installed stay.
    pub fn set_store(&mut self, store: Box<dyn PolicyStore>) {
        self.store = store;
    }

    /// The policy store's description.
    pub fn store(&self) -> String {
        self.store.describe()
    }

    /// Per port: the reflective relay the data path should have where it is
    /// negotiated (`reflective_relay = "negotiate"`), None elsewhere.
    pub fn rr(&self) -> Vec<Option<bool>> {
        self.ports
            .iter()
            .map(|p| match (p.rr_cfg, &p.evb) {
                (RrCfg::Negotiate, Some(e)) => Some(p.link_up && e.rr_on()),
                _ => None,
            })
            .collect()
    }

    /// The VSIs to install in the data path.
    pub fn installed(&self) -> Vec<Installed> {
        self.bridge.installed()
    }

    /// The first port in the station role, if any.
    pub fn station_port(&self) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| p.role == Some(EvbRole::Station))
            .map(|i| PortId(i as u16))
    }

    /// Station VSIs the bridge acknowledged in Associate mode, with the
    /// filters in force (the VLAN it assigned).
    pub fn station_associated(&self) -> Vec<(VsiId, Vec<FilterEntry>)> {
        self.ports
            .iter()
            .flat_map(|p| p.station.vsis())
            .filter(|v| v.acked == Some(Mode::Assoc))
            .map(|v| (v.request.vsiid, v.filters.clone()))
            .collect()
    }

    /// Station events since the last call.
    pub fn take_events(&mut self) -> Vec<(PortId, StationEvent)> {
        std::mem::take(&mut self.events)
    }

    fn params(&self, p: PortId) -> PortParams {
        match self
            .ports
            .get(usize::from(p.0))
            .and_then(|x| x.evb.as_ref())
        {
            Some(e) => PortParams {
                timers: e.timers(),
                group_ok: e.group_ok(),
            },
            None => PortParams {
                timers: Timers::default(),
                group_ok: false,
            },
        }
    }

    fn timers(&self, i: usize) -> Timers {
        self.params(PortId(i as u16)).timers
    }

    /// Ask the bridge for a VSI from a station port (hairpin as the edge).
    pub fn station_request(
        &mut self,
        now: Nanos,
        port: PortId,
        manager: [u8; 16],
        req: AssocRepr,
        out: &mut Vec<(PortId, Vec<u8>)>,
    ) -> Result<(), RequestError> {
        let i = usize::from(port.0);
        let t = self.timers(i);
        let mut ulpdus = Vec::new();
        self.ports[i]
            .station
            .request(now, t, manager, req, &mut ulpdus)?;
        for u in ulpdus {
            self.ports[i].ecp.send(u);
        }
        self.flush_ecp(now, i, out);
        Ok(())
    }

    fn refill(&mut self, i: usize, now: Nanos) -> bool {
        let p = &mut self.ports[i];
        let dt = now.saturating_sub(p.last_refill) as f64 / 1e9;
        p.last_refill = now;
        p.tokens = (p.tokens + dt * self.rate).min(self.rate);
        if p.tokens >= 1.0 {
            p.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A punted frame from port `port`. Frames to send go to `out`.
    pub fn rx(
        &mut self,
        now: Nanos,
        port: PortId,
        frame: &[u8],
        out: &mut Vec<(PortId, Vec<u8>)>,
    ) -> Effects {
        self.ctr.rx_frames += 1;
        let i = usize::from(port.0);
        let mut fx = Effects::default();
        if i >= self.ports.len() {
            self.ctr.ignored += 1;
            return fx;
        }
        if !self.refill(i, now) {
            self.ctr.rate_limited += 1;
            return fx;
        }
        let Ok(eth) = Eth::parse(frame) else {
            self.ctr.ignored += 1;
            return fx;
        };
        if self.ports[i].evb.is_none() {
            self.ctr.ignored += 1;
            return fx;
        }
        match eth.ethertype() {
            ethertype::LLDP => match lldp::read(frame) {
                LldpRx::Evb { evb, ttl } => {
                    self.ctr.lldp_rx += 1;
                    let p = &mut self.ports[i];
                    let e = p.evb.as_mut().expect("checked");
                    if e.rx(now, evb, ttl) {
                        p.lldp.changed(now);
                        fx.rr_changed = true;
                    }
                    self.flush_lldp(now, i, out);
                }
                LldpRx::OtherAgent => self.ctr.lldp_other_agent += 1,
                LldpRx::Malformed => self.ctr.lldp_malformed += 1,
            },
            ethertype::ECP if eth.dst() == ecp::DST => {
                let mut acks = Vec::new();
                let up = self.ports[i]
                    .ecp
                    .rx(eth.payload(), &mut acks)
                    .map(|u| u.to_vec());
                for a in acks {
                    self.emit_ecp(i, &a, out);
                }
                if let Some(u) = up {
                    fx.or(self.vdp_in(now, i, &u, out));
                }
                self.flush_ecp(now, i, out);
            }
            _ => self.ctr.ignored += 1,
        }
        fx
    }

    fn vdp_in(
        &mut self,
        now: Nanos,
        i: usize,
        ulpdu: &[u8],
        out: &mut Vec<(PortId, Vec<u8>)>,
    ) -> Effects {
        let port = PortId(i as u16);
        let mut fx = Effects::default();
        match self.ports[i].role {
            Some(EvbRole::Bridge) => {
                let p = self.params(port);
                let mut replies = Vec::new();
                fx.vsis_changed =
                    self.bridge
                        .rx(now, port, p, ulpdu, self.store.as_mut(), &mut replies);
                self.send_replies(now, replies, out);
            }
            Some(EvbRole::Station) => {
                let t = self.timers(i);
                let mut ev = Vec::new();
                self.ports[i].station.rx(now, t, ulpdu, &mut ev);
                self.events.extend(ev.into_iter().map(|e| (port, e)));
            }
            None => self.ctr.ignored += 1,
        }
        fx
    }

    fn send_replies(&mut self, now: Nanos, replies: Vec<Reply>, out: &mut Vec<(PortId, Vec<u8>)>) {
        let mut touched = Vec::new();
        for r in replies {
            let i = usize::from(r.port.0);
            if let Some(p) = self.ports.get_mut(i) {
                p.ecp.send(r.ulpdu);
                touched.push(i);
            }
        }
        touched.dedup();
        for i in touched {
            self.flush_ecp(now, i, out);
        }
    }

    fn emit_ecp(&mut self, i: usize, pdu: &[u8], out: &mut Vec<(PortId, Vec<u8>)>) {
        let mut f = Vec::with_capacity(64.max(14 + pdu.len()));
        f.extend_from_slice(&ecp::DST.0);
        f.extend_from_slice(&self.port_mac(i).0);
        f.extend_from_slice(&ethertype::ECP.to_be_bytes());
        f.extend_from_slice(pdu);
        if f.len() < 60 {
            f.resize(60, 0);
        }
        self.ctr.tx_frames += 1;
        out.push((PortId(i as u16), f));
    }

    fn flush_ecp(&mut self, now: Nanos, i: usize, out: &mut Vec<(PortId, Vec<u8>)>) {
        if !self.ports[i].link_up {
            return;
        }
        let t = self.timers(i);
        let mut pdus = Vec::new();
        self.ports[i].ecp.poll(now, t, &mut pdus);
        for p in pdus {
            self.emit_ecp(i, &p, out);
        }
    }

    fn flush_lldp(&mut self, now: Nanos, i: usize, out: &mut Vec<(PortId, Vec<u8>)>) {
        let src = self.port_mac(i);
        let p = &mut self.ports[i];
        let Some(e) = &p.evb else { return };
        if p.link_up && p.lldp.due(now) {
            let f = lldp::build(src, self.mac, &p.name, LldpTx::ttl(), &e.tlv());
            self.ctr.tx_frames += 1;
            out.push((PortId(i as u16), f));
        }
    }

    /// Timers of every port and of the VDP bridge at `now`.
    pub fn tick(&mut self, now: Nanos, out: &mut Vec<(PortId, Vec<u8>)>) -> Effects {
        let mut fx = Effects::default();
        for i in 0..self.ports.len() {
            if self.ports[i].evb.is_none() {
                continue;
            }
            let p = &mut self.ports[i];
            if p.evb.as_mut().expect("checked").tick(now) {
                fx.rr_changed = true;
                p.lldp.changed(now);
            }
            self.flush_lldp(now, i, out);
            if self.ports[i].role == Some(EvbRole::Station) {
                let t = self.timers(i);
                let (mut ulpdus, mut ev) = (Vec::new(), Vec::new());
                self.ports[i].station.tick(now, t, &mut ulpdus, &mut ev);
                for u in ulpdus {
                    self.ports[i].ecp.send(u);
                }
                self.events
                    .extend(ev.into_iter().map(|e| (PortId(i as u16), e)));
            }
            self.flush_ecp(now, i, out);
        }
        let params: Vec<PortParams> = (0..self.ports.len())
            .map(|i| self.params(PortId(i as u16)))
            .collect();
        let default = PortParams {
            timers: Timers::default(),
            group_ok: false,
        };
        let mut replies = Vec::new();
        fx.vsis_changed |= self.bridge.tick(
            now,
            &|p: PortId| params.get(usize::from(p.0)).copied().unwrap_or(default),
            self.store.as_mut(),
            &mut replies,
        );
        self.send_replies(now, replies, out);
        fx
    }

    /// Link state of a port changed. Down: EVB forgets the peer (RR off at
    /// once), ECP resets; VSIs stay until their keep-alive expires.
    pub fn link(&mut self, now: Nanos, port: PortId, up: bool) -> Effects {
        let mut fx = Effects::default();
        let Some(p) = self.ports.get_mut(usize::from(port.0)) else {
            return fx;
        };
        if p.link_up == up {
            return fx;
        }
        p.link_up = up;
        if let Some(e) = &mut p.evb {
            if !up {
                e.link_down();
                p.ecp.link_down();
            } else {
                p.lldp.changed(now);
            }
            fx.rr_changed = true;
        }
        fx
    }

    /// The earliest time [`ControlPlane::tick`] has work.
    pub fn deadline(&self) -> Option<Nanos> {
        let mut d = self.bridge.deadline();
        let mut m = |x: Option<Nanos>| {
            if let Some(x) = x {
                d = Some(d.map_or(x, |y: Nanos| y.min(x)));
            }
        };
        for p in &self.ports {
            if p.evb.is_none() {
                continue;
            }
            m(Some(p.lldp.deadline()));
            m(p.evb.as_ref().and_then(|e| e.deadline()));
            m(p.ecp.deadline());
            m(p.station.deadline());
        }
        d
    }

    /// Number of ports.
    pub fn ports(&self) -> usize {
        self.ports.len()
    }
}
