//! Two- and three-colour token-bucket meters: RFC 2697 srTCM and RFC 2698 trTCM.
//!
//! Rates are in bytes per second, bursts and tokens in bytes, time in
//! nanoseconds passed by the caller. The length metered is whatever the caller
//! passes (normally the frame length without FCS).
//!
//! # Multi-core design
//!
//! A meter is configured once as a [`SharedMeter`] (parameters plus the shared
//! buckets); every worker core meters through its own [`MeterCache`], which it
//! owns and never shares. The per-frame path reads and writes only the cache:
//!
//! * **Shared buckets, one atomic each.** A time-filled bucket (C and the
//!   trTCM P) is a single `AtomicU64` counting bytes *consumed*. Its fill at
//!   `now` is `credit(now) - consumed`, capped at the burst size, with
//!   `credit(now) = burst + ⌊rate × (now - epoch) / 1e9⌋` computed exactly
//!   from the absolute time, so refilling needs no stored timestamp and no
//!   separate refill step, and rounding never accumulates.
//!   When the fill exceeds the burst, a compare-and-swap moves `consumed` up to
//!   the cap; for srTCM the excess is exactly the overflow since the last
//!   update and is added to the E bucket (a plain capped `AtomicU64`), as
//!   RFC 2697 prescribes.
//! * **Leases.** A cache holds local tokens for each bucket. A frame is
//!   metered against the local tokens only; when they run short the cache
//!   takes a *chunk* from the shared bucket with one compare-and-swap.
//!   A chunk is `max(64, min(burst / 64, rate × 100 µs))` bytes
//!   ([`LEASE_NS`], [`LEASE_DIV`]); a frame longer than the chunk takes what it
//!   needs. Tokens are only ever moved, never created, so the cores together
//!   can never exceed what one bucket would have allowed, plus what the leases
//!   hold.
//! * **Back-off.** When a take finds the shared bucket drained (it gets
//!   nothing, or less than a chunk), the cache does not come back on the next
//!   frame: it waits until the bucket can have gathered a chunk again, times
//!   the number of attached caches `N` (so that together the cores visit a
//!   drained bucket about once per chunk, not `N` times), capped at half the
//!   burst (so the bucket cannot overflow while everyone waits). Frames in
//!   between take the next colour from local tokens alone. Under overload a
//!   core therefore touches a shared bucket about `rate / (N × chunk)` times
//!   per second, not once per frame; srTCM's E bucket, which only gains
//!   C's overflow, is not revisited before C can have filled.
//!
//! # Error bound
//!
//! With `N` cores, green bytes over any interval `T` differ from what a single
//! RFC bucket would allow by at most the tokens held in leases at its two
//! ends: `|error| ≤ N × (chunk + max_frame)`, as long as the shared bucket
//! does not overflow while cores back off, which the burst/2 cap prevents.
//! The chunk is at most 100 µs of the rate, so the *rate* error over `T` is at
//! most `N × 100 µs / T` plus one frame per core — 0.08 % over one second with 8 cores, 2 % over 40 ms with
//! 8 cores, whatever the rate — and the extra burst is at most `N / 64` of the
//! configured burst. [`MeterCache::release`] (also run on drop) hands unused
//! tokens back, e.g. when a core goes idle or the configuration changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Lowest accepted rate, bytes/s (8 kbit/s): lower values are taken as a unit mistake.
pub const MIN_RATE: u64 = 1_000;
/// Highest accepted rate, bytes/s (1 Tbit/s).
pub const MAX_RATE: u64 = 125_000_000_000;
/// Smallest accepted committed/peak burst, bytes (one minimum frame).
pub const MIN_BURST: u64 = 64;
/// Largest accepted burst, bytes (1 GiB).
pub const MAX_BURST: u64 = 1 << 30;
/// A lease chunk is at most this much time at the bucket's rate.
pub const LEASE_NS: u64 = 100_000;
/// A lease chunk is at most this fraction of the bucket's burst size.
pub const LEASE_DIV: u64 = 64;
/// Smallest lease chunk, bytes.
pub const MIN_CHUNK: u64 = 64;

/// Packet colour, as in RFC 2697/2698.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Color {
    /// Within the committed rate.
    Green = 0,
    /// Above the committed rate, within the excess burst (srTCM) or peak rate (trTCM).
    Yellow = 1,
    /// Above both.
    Red = 2,
}

impl Color {
    /// All colours, in counter order.
    pub const ALL: [Color; 3] = [Color::Green, Color::Yellow, Color::Red];
    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Color::Green => "green",
            Color::Yellow => "yellow",
            Color::Red => "red",
        }
    }
}

/// What to do with a frame of a given colour. A plain value the pipeline maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Forward unchanged.
    Transmit,
    /// Forward after rewriting the PCP (0..=7) and/or the DSCP (0..=63); `None` keeps the field.
    Remark {
        /// New 802.1Q priority code point, if any.
        pcp: Option<u8>,
        /// New IP DSCP, if any.
        dscp: Option<u8>,
    },
    /// Drop (counted by the caller).
    Drop,
}

/// Which algorithm and its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MeterKind {
    /// RFC 2697 single-rate three-colour marker.
    SrTcm {
        /// Committed information rate, bytes/s.
        cir: u64,
        /// Committed burst size, bytes.
        cbs: u64,
        /// Excess burst size, bytes (0 allowed: no yellow).
        ebs: u64,
    },
    /// RFC 2698 two-rate three-colour marker.
    TrTcm {
        /// Committed information rate, bytes/s.
        cir: u64,
        /// Committed burst size, bytes.
        cbs: u64,
        /// Peak information rate, bytes/s (at least `cir`).
        pir: u64,
        /// Peak burst size, bytes.
        pbs: u64,
    },
}

/// Colour-blind meters ignore the incoming colour; colour-aware ones never improve it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColorMode {
    /// Every frame is metered as if pre-coloured green.
    Blind,
    /// The caller's pre-colour is honoured (RFC 2697/2698 colour-aware mode).
    Aware,
}

/// A meter's full configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MeterConfig {
    /// Algorithm and rates.
    pub kind: MeterKind,
    /// Colour-blind or colour-aware.
    pub mode: ColorMode,
    /// Action for green frames.
    pub green: Action,
    /// Action for yellow frames.
    pub yellow: Action,
    /// Action for red frames.
    pub red: Action,
}

impl MeterConfig {
    /// A colour-blind srTCM that transmits green and yellow and drops red.
    pub fn srtcm(cir: u64, cbs: u64, ebs: u64) -> Self {
        Self::with_kind(MeterKind::SrTcm { cir, cbs, ebs })
    }
    /// A colour-blind trTCM that transmits green and yellow and drops red.
    pub fn trtcm(cir: u64, cbs: u64, pir: u64, pbs: u64) -> Self {
        Self::with_kind(MeterKind::TrTcm { cir, cbs, pir, pbs })
    }
    fn with_kind(kind: MeterKind) -> Self {
        MeterConfig {
            kind,
            mode: ColorMode::Blind,
            green: Action::Transmit,
            yellow: Action::Transmit,
            red: Action::Drop,
        }
    }
    /// The same configuration in another colour mode.
    pub fn mode(mut self, mode: ColorMode) -> Self {
        self.mode = mode;
        self
    }

    /// The action configured for `c`.
    #[inline(always)]
    pub fn action(&self, c: Color) -> Action {
        match c {
            Color::Green => self.green,
            Color::Yellow => self.yellow,
            Color::Red => self.red,
        }
    }

    /// Check the parameters. The error names the offending field
    /// (`cir`, `cbs`, `ebs`, `pir`, `pbs`, `green.pcp`, ...).
    pub fn validate(&self) -> Result<(), String> {
        fn rate(name: &str, v: u64) -> Result<(), String> {
            if v < MIN_RATE {
                return Err(format!(
                    "{name}: rate {v} bytes/s is below the minimum {MIN_RATE} bytes/s"
                ));
            }
            if v > MAX_RATE {
                return Err(format!(
                    "{name}: rate {v} bytes/s is above the maximum {MAX_RATE} bytes/s"
                ));
            }
            Ok(())
        }
        fn burst(name: &str, v: u64, min: u64) -> Result<(), String> {
            if v < min {
                return Err(format!(
                    "{name}: burst {v} bytes is below the minimum {min} bytes"
                ));
            }
            if v > MAX_BURST {
                return Err(format!(
                    "{name}: burst {v} bytes is above the maximum {MAX_BURST} bytes"
                ));
            }
            Ok(())
        }
        match self.kind {
            MeterKind::SrTcm { cir, cbs, ebs } => {
                rate("cir", cir)?;
                burst("cbs", cbs, MIN_BURST)?;
                burst("ebs", ebs, 0)?;
            }
            MeterKind::TrTcm { cir, cbs, pir, pbs } => {
                rate("cir", cir)?;
                burst("cbs", cbs, MIN_BURST)?;
                rate("pir", pir)?;
                if pir < cir {
                    return Err(format!(
                        "pir: peak rate {pir} bytes/s is below the committed rate {cir} bytes/s"
                    ));
                }
                burst("pbs", pbs, MIN_BURST)?;
            }
        }
        for (name, a) in [
            ("green", self.green),
            ("yellow", self.yellow),
            ("red", self.red),
        ] {
            if let Action::Remark { pcp, dscp } = a {
                if let Some(p) = pcp.filter(|&p| p > 7) {
                    return Err(format!("{name}.pcp: {p} is not in 0..=7"));
                }
                if let Some(d) = dscp.filter(|&d| d > 63) {
                    return Err(format!("{name}.dscp: {d} is not in 0..=63"));
                }
            }
        }
        Ok(())
    }
}

const NS: u64 = 1_000_000_000;

#[repr(align(64))]
#[derive(Debug)]
struct Padded(AtomicU64);

/// Lease size for a bucket of `rate` bytes/s and `burst` bytes.
fn chunk_for(rate: u64, burst: u64) -> u64 {
    let by_time = (u128::from(rate) * u128::from(LEASE_NS) / 1_000_000_000) as u64;
    (burst / LEASE_DIV).min(by_time).max(MIN_CHUNK)
}

/// Outcome of a take from a shared bucket.
#[derive(Clone, Copy, Debug, Default)]
struct Take {
    /// Tokens moved to the caller (0 on failure).
    got: u64,
    /// Bytes the bucket overflowed since its last update (srTCM: goes to E).
    overflow: u64,
    /// Fill seen, after capping.
    fill: u64,
    /// srTCM E only: room left in C (E gains nothing until C is full).
    room: u64,
}

/// A token bucket filled by time, shared by all cores: one atomic.
#[derive(Debug)]
struct Bucket {
    consumed: Padded,
    cap: u64,
    epoch: u64,
    /// Rate in bytes/s, and split as `rate_hi × 1e9 + rate_lo`.
    rate: u64,
    rate_hi: u64,
    rate_lo: u64,
    /// Nanoseconds per byte, 32 fractional bits (back-off only).
    ns_per_byte: u64,
}

impl Bucket {
    fn new(rate: u64, cap: u64, now: u64) -> Self {
        Bucket {
            consumed: Padded(AtomicU64::new(0)),
            cap,
            epoch: now,
            rate,
            rate_hi: rate / NS,
            rate_lo: rate % NS,
            ns_per_byte: ((1_000_000_000u128 << 32) / u128::from(rate)) as u64,
        }
    }

    /// Total tokens ever credited by `now` (the initial full bucket included).
    #[inline]
    fn credit(&self, now: u64) -> u64 {
        // floor(dt × rate / 1e9), exactly, in u64: dt = s × 1e9 + r, rate = hi × 1e9 + lo,
        // so dt × rate / 1e9 = s × rate + r × hi + r × lo / 1e9 with r × lo < 1e18.
        let dt = now.saturating_sub(self.epoch);
        let (s, r) = (dt / NS, dt % NS);
        let add = s
            .saturating_mul(self.rate)
            .saturating_add(r * self.rate_hi)
            .saturating_add(r * self.rate_lo / NS);
        self.cap.saturating_add(add)
    }

    /// Nanoseconds for `bytes` tokens to arrive.
    #[inline]
    fn ns_for(&self, bytes: u64) -> u64 {
        ((u128::from(bytes) * u128::from(self.ns_per_byte)) >> 32) as u64
    }

    /// Take between `min` and `max` tokens (all-or-nothing on `min`).
    /// `min == 0` only settles the overflow.
    fn take(&self, now: u64, min: u64, max: u64) -> Take {
        let credit = self.credit(now);
        let mut cons = self.consumed.0.load(Ordering::Relaxed);
        loop {
            let raw = credit.saturating_sub(cons);
            let (base, overflow, fill) = if raw > self.cap {
                (credit - self.cap, raw - self.cap, self.cap)
            } else {
                (cons, 0, raw)
            };
            let got = if fill >= min && min > 0 {
                fill.min(max.max(min))
            } else {
                0
            };
            if got == 0 && overflow == 0 {
                return Take {
                    fill,
                    ..Take::default()
                };
            }
            match self.consumed.0.compare_exchange_weak(
                cons,
                base + got,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Take {
                        got,
                        overflow,
                        fill: fill - got,
                        room: 0,
                    }
                }
                Err(c) => cons = c,
            }
        }
    }

    /// Hand tokens back (they were taken by `take`, so `consumed >= n`).
    fn give_back(&self, n: u64) {
        if n > 0 {
            self.consumed.0.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// The srTCM excess bucket: filled only by the committed bucket's overflow.
#[derive(Debug)]
struct Excess {
    tokens: Padded,
    cap: u64,
}

impl Excess {
    fn add(&self, n: u64) {
        if n == 0 {
            return;
        }
        let cap = self.cap;
        let _ = self
            .tokens
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t < cap).then(|| t.saturating_add(n).min(cap))
            });
    }
    fn take(&self, min: u64, max: u64) -> Take {
        let mut fill = 0;
        let r = self
            .tokens
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                fill = t;
                (t >= min).then(|| t - t.min(max.max(min)))
            });
        match r {
            Ok(t) => {
                let got = t.min(max.max(min));
                Take {
                    got,
                    fill: t - got,
                    ..Take::default()
                }
            }
            Err(_) => Take {
                fill,
                ..Take::default()
            },
        }
    }
}

/// The second bucket: srTCM E (overflow-filled) or trTCM P (PIR-filled).
#[derive(Debug)]
enum Second {
    Excess(Excess),
    Peak(Bucket),
}

/// One configured meter: parameters and the buckets all cores share.
///
/// Put it in an `Arc` and give each worker a [`MeterCache`]; see the
/// [module docs](self) for the leasing scheme and its error bound.
#[derive(Debug)]
pub struct SharedMeter {
    cfg: MeterConfig,
    c: Bucket,
    x: Second,
    chunk_c: u64,
    chunk_x: u64,
    sr: bool,
    /// Caches attached (changed only when a cache is made or dropped).
    caches: Padded,
}

impl SharedMeter {
    /// Validate `cfg` and build the meter with full buckets at `now_ns`.
    pub fn new(cfg: MeterConfig, now_ns: u64) -> Result<Self, String> {
        cfg.validate()?;
        Ok(match cfg.kind {
            MeterKind::SrTcm { cir, cbs, ebs } => SharedMeter {
                cfg,
                c: Bucket::new(cir, cbs, now_ns),
                x: Second::Excess(Excess {
                    tokens: Padded(AtomicU64::new(ebs)),
                    cap: ebs,
                }),
                chunk_c: chunk_for(cir, cbs),
                chunk_x: chunk_for(cir, ebs),
                sr: true,
                caches: Padded(AtomicU64::new(0)),
            },
            MeterKind::TrTcm { cir, cbs, pir, pbs } => SharedMeter {
                cfg,
                c: Bucket::new(cir, cbs, now_ns),
                x: Second::Peak(Bucket::new(pir, pbs, now_ns)),
                chunk_c: chunk_for(cir, cbs),
                chunk_x: chunk_for(pir, pbs),
                sr: false,
                caches: Padded(AtomicU64::new(0)),
            },
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MeterConfig {
        &self.cfg
    }

    /// Lease chunk sizes in bytes: (committed bucket, excess/peak bucket).
    pub fn chunks(&self) -> (u64, u64) {
        (self.chunk_c, self.chunk_x)
    }

    /// Tokens currently in the shared buckets (committed, excess/peak), not
    /// counting what caches hold. For tests and `show` commands.
    pub fn shared_tokens(&self, now_ns: u64) -> (u64, u64) {
        let c = self
            .c
            .credit(now_ns)
            .saturating_sub(self.c.consumed.0.load(Ordering::Relaxed));
        let x = match &self.x {
            Second::Excess(e) => e.tokens.0.load(Ordering::Relaxed),
            Second::Peak(p) => p
                .credit(now_ns)
                .saturating_sub(p.consumed.0.load(Ordering::Relaxed))
                .min(p.cap),
        };
        (c.min(self.c.cap), x)
    }

    /// Take committed tokens; srTCM overflow goes to E.
    fn take_c(&self, now: u64, min: u64) -> Take {
        let t = self.c.take(now, min, self.chunk_c);
        if let Second::Excess(e) = &self.x {
            e.add(t.overflow);
        }
        t
    }

    /// Take excess (srTCM, after settling C's overflow) or peak tokens.
    fn take_x(&self, now: u64, min: u64) -> Take {
        match &self.x {
            Second::Excess(e) => {
                let s = self.c.take(now, 0, 0);
                e.add(s.overflow);
                Take {
                    room: self.c.cap - s.fill,
                    ..e.take(min, self.chunk_x)
                }
            }
            Second::Peak(p) => p.take(now, min, self.chunk_x),
        }
    }

    /// Scale a per-core wait by the number of caches, so that together they
    /// visit a drained bucket about once per chunk, whatever their number;
    /// capped at half the burst so the bucket cannot overflow meanwhile.
    fn spread(&self, bytes: u64, burst: u64) -> u64 {
        let n = self.caches.0.load(Ordering::Relaxed).max(1);
        bytes.saturating_mul(n).min((burst / 2).max(bytes))
    }

    /// Nanoseconds to wait before visiting bucket C again.
    fn backoff_c(&self, bytes: u64) -> u64 {
        self.c.ns_for(self.spread(bytes, self.c.cap))
    }

    /// Nanoseconds to wait before visiting bucket E/P again.
    fn backoff_x(&self, bytes: u64, t: Take) -> u64 {
        match &self.x {
            // E only fills when C overflows: not before C has gathered `room`.
            Second::Excess(e) => self.c.ns_for(self.spread(bytes, e.cap).max(t.room)),
            Second::Peak(p) => p.ns_for(self.spread(bytes, p.cap)),
        }
    }
}

/// Bytes to wait for after a take that did not get a whole chunk: the shared
/// bucket is (nearly) drained, so come back when a chunk can have gathered —
/// never longer than one chunk's time, never zero.
#[inline]
fn backoff_bytes(chunk: u64, need: u64, t: Take) -> u64 {
    if t.got > 0 {
        chunk
    } else {
        // t.fill < need here.
        chunk.saturating_sub(t.fill).max((need - t.fill).min(chunk))
    }
}

/// Per-colour frame and byte counts kept by one cache (plain `u64`, one writer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeterStats {
    /// Frames per colour, indexed by `Color as usize`.
    pub pkts: [u64; 3],
    /// Bytes per colour, indexed by `Color as usize`.
    pub bytes: [u64; 3],
    /// Successful takes from the shared buckets (atomic read-modify-writes).
    pub leases: u64,
    /// Attempts that found the shared bucket short (atomic loads, no write).
    pub misses: u64,
}

/// One core's view of a [`SharedMeter`]: local leased tokens and counters.
///
/// Owned by exactly one worker. Metering a frame touches only this struct
/// unless the local tokens run out (see the [module docs](self)): the
/// tokens, the green frame and byte counts, the algorithm flags and the
/// colour actions (copied from the shared config, so the common case never
/// dereferences the shared meter) sit in the first cache line, so a green
/// frame touches one line; yellow and red counts and the lease state are in
/// the second line of the same 128-byte block.
#[derive(Debug)]
#[repr(C, align(128))]
pub struct MeterCache {
    /// Local committed tokens.
    c: u64,
    /// Local excess (srTCM) / peak (trTCM) tokens.
    x: u64,
    /// Green frames.
    green_pkts: u64,
    /// Green bytes.
    green_bytes: u64,
    sr: bool,
    aware: bool,
    /// Colour-blind and green transmits unchanged: `try_green` may answer.
    blind_tx: bool,
    /// Actions for green, yellow, red (from the shared config).
    actions: [Action; 3],
    /// Yellow and red frames.
    pkts: [u64; 2],
    /// Yellow and red bytes.
    bytes: [u64; 2],
    /// No shared C take before this time.
    c_retry: u64,
    /// No shared E/P take before this time.
    x_retry: u64,
    leases: u64,
    misses: u64,
    shared: Arc<SharedMeter>,
}

impl MeterCache {
    /// A cache with no tokens yet (the first frame takes a lease).
    pub fn new(shared: Arc<SharedMeter>) -> Self {
        let sr = shared.sr;
        let aware = shared.cfg.mode == ColorMode::Aware;
        shared.caches.0.fetch_add(1, Ordering::Relaxed);
        let actions = [
            shared.cfg.action(Color::Green),
            shared.cfg.action(Color::Yellow),
            shared.cfg.action(Color::Red),
        ];
        MeterCache {
            c: 0,
            x: 0,
            sr,
            aware,
            blind_tx: !aware && actions[Color::Green as usize] == Action::Transmit,
            green_pkts: 0,
            green_bytes: 0,
            actions,
            pkts: [0; 2],
            bytes: [0; 2],
            c_retry: 0,
            x_retry: 0,
            leases: 0,
            misses: 0,
            shared,
        }
    }

    /// The shared meter this cache leases from.
    pub fn shared(&self) -> &Arc<SharedMeter> {
        &self.shared
    }

    /// Counters for this core.
    pub fn stats(&self) -> MeterStats {
        MeterStats {
            pkts: [self.green_pkts, self.pkts[0], self.pkts[1]],
            bytes: [self.green_bytes, self.bytes[0], self.bytes[1]],
            leases: self.leases,
            misses: self.misses,
        }
    }

    /// Tokens held locally (committed, excess/peak).
    pub fn held(&self) -> (u64, u64) {
        (self.c, self.x)
    }

    /// Colour a frame of `len` bytes at `now_ns`. `pre` is the incoming colour,
    /// used only in colour-aware mode (pass `Color::Green` when unknown).
    #[inline(always)]
    pub fn meter(&mut self, now_ns: u64, len: u32, pre: Color) -> Color {
        let pre = if self.aware { pre } else { Color::Green };
        let len = u64::from(len);
        let c = if self.sr {
            self.srtcm(now_ns, len, pre)
        } else {
            self.trtcm(now_ns, len, pre)
        };
        if c == Color::Green {
            self.green_pkts += 1;
            self.green_bytes += len;
        } else {
            let k = (c as usize - 1) & 1;
            self.pkts[k] += 1;
            self.bytes[k] += len;
        }
        c
    }

    /// The common case in one test: a colour-blind meter whose green frames
    /// go out unchanged, holding enough local tokens for a green frame of
    /// `len` bytes. Then the frame is counted green, its tokens are taken and
    /// the answer is true (transmit); otherwise nothing changes and the frame
    /// must go through `police`. Same colour as `police` would give.
    #[inline(always)]
    pub fn try_green(&mut self, len: u32) -> bool {
        let len = u64::from(len);
        // srTCM green takes committed tokens only; trTCM green takes both.
        if !(self.blind_tx && self.c >= len && (self.sr || self.x >= len)) {
            return false;
        }
        self.c -= len;
        if !self.sr {
            self.x -= len;
        }
        self.green_pkts += 1;
        self.green_bytes += len;
        true
    }

    /// Colour and look up the configured action in one call.
    #[inline(always)]
    pub fn police(&mut self, now_ns: u64, len: u32, pre: Color) -> (Color, Action) {
        let c = self.meter(now_ns, len, pre);
        (c, self.actions[c as usize])
    }

    #[inline(always)]
    fn srtcm(&mut self, now: u64, len: u64, pre: Color) -> Color {
        if pre == Color::Green && (self.c >= len || self.lease_c(now, len)) {
            self.c -= len;
            return Color::Green;
        }
        if pre != Color::Red && (self.x >= len || self.lease_x(now, len)) {
            self.x -= len;
            return Color::Yellow;
        }
        Color::Red
    }

    #[inline(always)]
    fn trtcm(&mut self, now: u64, len: u64, pre: Color) -> Color {
        if pre == Color::Red || !(self.x >= len || self.lease_x(now, len)) {
            return Color::Red;
        }
        self.x -= len;
        if pre == Color::Green && (self.c >= len || self.lease_c(now, len)) {
            self.c -= len;
            return Color::Green;
        }
        Color::Yellow
    }

    /// Top up the local committed tokens to at least `len`. Slow path.
    #[cold]
    #[inline(never)]
    fn lease_c(&mut self, now: u64, len: u64) -> bool {
        if now < self.c_retry {
            return false;
        }
        let need = len - self.c;
        let chunk = self.shared.chunk_c;
        let t = self.shared.take_c(now, need);
        if t.got < chunk {
            let wait = backoff_bytes(chunk, need, t);
            self.c_retry = now + self.shared.backoff_c(wait).max(1);
        }
        if t.got == 0 {
            self.misses += 1;
            return false;
        }
        self.leases += 1;
        self.c += t.got;
        true
    }

    /// Top up the local excess/peak tokens to at least `len`. Slow path.
    #[cold]
    #[inline(never)]
    fn lease_x(&mut self, now: u64, len: u64) -> bool {
        if now < self.x_retry {
            return false;
        }
        let need = len - self.x;
        let chunk = self.shared.chunk_x;
        let t = self.shared.take_x(now, need);
        if t.got < chunk {
            let wait = backoff_bytes(chunk, need, t);
            self.x_retry = now + self.shared.backoff_x(wait, t).max(1);
        }
        if t.got == 0 {
            self.misses += 1;
            return false;
        }
        self.leases += 1;
        self.x += t.got;
        true
    }

    /// Return the local tokens to the shared buckets (idle core, reconfiguration).
    pub fn release(&mut self) {
        self.shared.c.give_back(self.c);
        match &self.shared.x {
            Second::Excess(e) => e.add(self.x),
            Second::Peak(p) => p.give_back(self.x),
        }
        self.c = 0;
        self.x = 0;
        self.c_retry = 0;
        self.x_retry = 0;
    }
}

impl Drop for MeterCache {
    fn drop(&mut self) {
        self.release();
        self.shared.caches.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_green_frame_touches_one_cache_line() {
        use std::mem::{offset_of, size_of};
        assert_eq!(size_of::<MeterCache>(), 128);
        let hot_end = offset_of!(MeterCache, actions) + size_of::<[Action; 3]>();
        assert!(hot_end <= 64, "tokens, flags, actions: {hot_end} bytes");
        assert!(offset_of!(MeterCache, green_bytes) + 8 <= 64);
        // The counts still come out per colour.
        let mut c = MeterCache::new(shared(MeterConfig::srtcm(1000, 100, 100)));
        let got: Vec<Color> = (0..4).map(|_| c.meter(0, 60, Color::Green)).collect();
        assert_eq!(got, [Color::Green, Color::Yellow, Color::Red, Color::Red]);
        assert_eq!(c.stats().pkts, [1, 1, 2]);
        assert_eq!(c.stats().bytes, [60, 60, 120]);
    }
    /// `try_green` then `police` gives the colours, counters and held tokens
    /// of `police` alone, for both markers, both modes and a green remark
    /// (where it must never answer), over random sizes and times.
    #[test]
    fn try_green_then_police_is_police() {
        let remark = Action::Remark {
            pcp: Some(1),
            dscp: None,
        };
        let mut cfgs = Vec::new();
        for aware in [false, true] {
            for kind in 0..2 {
                let mut c = if kind == 0 {
                    MeterConfig::srtcm(300_000_000, 60_000, 80_000)
                } else {
                    MeterConfig::trtcm(200_000_000, 60_000, 400_000_000, 80_000)
                };
                if aware {
                    c.mode = ColorMode::Aware;
                }
                cfgs.push(c);
            }
        }
        let mut g = MeterConfig::srtcm(300_000_000, 60_000, 80_000);
        g.green = remark;
        cfgs.push(g);
        for cfg in cfgs {
            let (mut a, mut b) = (MeterCache::new(shared(cfg)), MeterCache::new(shared(cfg)));
            let mut rng = Rng(crate::policy::acl::Rng(7));
            let (mut now, mut fast, mut red) = (0u64, 0u32, 0u32);
            for _ in 0..20_000 {
                now += rng.next() % 2_000;
                let len = rng.size();
                let pre = [Color::Green, Color::Yellow, Color::Red][(rng.next() % 3) as usize];
                let got = if a.try_green(len) {
                    fast += 1;
                    (Color::Green, Action::Transmit)
                } else {
                    a.police(now, len, pre)
                };
                assert_eq!(got, b.police(now, len, pre), "{cfg:?} at {now} ns, {len} B");
                red += u32::from(got.0 == Color::Red);
                assert_eq!(a.held(), b.held());
            }
            assert_eq!(a.stats(), b.stats());
            let may = cfg.mode == ColorMode::Blind && cfg.green == Action::Transmit;
            assert_eq!(fast > 0, may, "{cfg:?}: {fast} fast answers");
            assert!(red > 0, "{cfg:?}: the offered load must exceed the meter");
        }
    }

    use std::sync::atomic::AtomicU64;

    const S: u64 = 1_000_000_000;

    fn shared(cfg: MeterConfig) -> Arc<SharedMeter> {
        Arc::new(SharedMeter::new(cfg, 0).unwrap())
    }

    /// Straight RFC 2697/2698 single-bucket reference (exact rational time).
    struct Reference {
        kind: MeterKind,
        aware: bool,
        /// Tokens ×1e9 (byte-nanoseconds per second), so refill is exact.
        c: u128,
        x: u128,
        last: u64,
    }
    impl Reference {
        fn new(cfg: MeterConfig) -> Self {
            let (c, x) = match cfg.kind {
                MeterKind::SrTcm { cbs, ebs, .. } => (cbs, ebs),
                MeterKind::TrTcm { cbs, pbs, .. } => (cbs, pbs),
            };
            Reference {
                kind: cfg.kind,
                aware: cfg.mode == ColorMode::Aware,
                c: u128::from(c) * u128::from(S),
                x: u128::from(x) * u128::from(S),
                last: 0,
            }
        }
        fn meter(&mut self, now: u64, len: u32, pre: Color) -> Color {
            let pre = if self.aware { pre } else { Color::Green };
            let dt = u128::from(now - self.last);
            self.last = now;
            let b = u128::from(len) * u128::from(S);
            match self.kind {
                MeterKind::SrTcm { cir, cbs, ebs } => {
                    let (cbs, ebs) = (
                        u128::from(cbs) * 1_000_000_000,
                        u128::from(ebs) * 1_000_000_000,
                    );
                    self.c += dt * u128::from(cir);
                    if self.c > cbs {
                        self.x = (self.x + self.c - cbs).min(ebs);
                        self.c = cbs;
                    }
                    if pre == Color::Green && self.c >= b {
                        self.c -= b;
                        Color::Green
                    } else if pre != Color::Red && self.x >= b {
                        self.x -= b;
                        Color::Yellow
                    } else {
                        Color::Red
                    }
                }
                MeterKind::TrTcm { cir, cbs, pir, pbs } => {
                    self.c = (self.c + dt * u128::from(cir)).min(u128::from(cbs) * 1_000_000_000);
                    self.x = (self.x + dt * u128::from(pir)).min(u128::from(pbs) * 1_000_000_000);
                    if pre == Color::Red || self.x < b {
                        Color::Red
                    } else if pre == Color::Yellow || self.c < b {
                        self.x -= b;
                        Color::Yellow
                    } else {
                        self.x -= b;
                        self.c -= b;
                        Color::Green
                    }
                }
            }
        }
    }

    /// Frame sizes from the crate's deterministic generator.
    struct Rng(crate::policy::acl::Rng);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0.next_u64()
        }
        fn size(&mut self) -> u32 {
            match self.next() % 4 {
                0 => 64,
                1 => 1518,
                _ => 64 + (self.next() % 1455) as u32,
            }
        }
    }

    /// Offer `load` × CIR with mixed frame sizes for `secs`, round-robin over
    /// `cores` caches in one thread. Returns bytes per colour, total and in the
    /// window from 1 s to the end (rate after the initial bursts).
    fn offer(cfg: MeterConfig, cores: usize, load: f64, secs: u64) -> ([u64; 3], [u64; 3]) {
        let sh = shared(cfg);
        let cir = match cfg.kind {
            MeterKind::SrTcm { cir, .. } | MeterKind::TrTcm { cir, .. } => cir,
        };
        let mut caches: Vec<MeterCache> = (0..cores).map(|_| MeterCache::new(sh.clone())).collect();
        let mut rng = Rng(crate::policy::acl::Rng(0x9e37_79b9_7f4a_7c15));
        let offered = cir as f64 * load; // bytes/s
        let (mut all, mut win) = ([0u64; 3], [0u64; 3]);
        let mut t = 0f64;
        let mut i = 0usize;
        while t < (secs * S) as f64 {
            let len = rng.size();
            let now = t as u64;
            let c = caches[i % cores].meter(now, len, Color::Green);
            all[c as usize] += u64::from(len);
            if now >= S {
                win[c as usize] += u64::from(len);
            }
            t += f64::from(len) * 1e9 / offered;
            i += 1;
        }
        (all, win)
    }

    fn within(got: u64, want: f64, tol: f64) -> bool {
        (got as f64 - want).abs() <= want * tol
    }

    #[test]
    fn validate_names_fields() {
        let e = |c: MeterConfig| c.validate().unwrap_err();
        assert!(e(MeterConfig::srtcm(0, 10_000, 10_000)).starts_with("cir:"));
        assert!(e(MeterConfig::srtcm(MAX_RATE + 1, 10_000, 0)).starts_with("cir:"));
        assert!(e(MeterConfig::srtcm(1_000_000, 0, 10_000)).starts_with("cbs:"));
        assert!(e(MeterConfig::srtcm(1_000_000, 10_000, MAX_BURST + 1)).starts_with("ebs:"));
        assert!(e(MeterConfig::trtcm(1_000_000, 10_000, 0, 10_000)).starts_with("pir:"));
        assert!(e(MeterConfig::trtcm(2_000_000, 10_000, 1_000_000, 10_000)).starts_with("pir:"));
        assert!(e(MeterConfig::trtcm(1_000_000, 10_000, 2_000_000, 1)).starts_with("pbs:"));
        let mut c = MeterConfig::srtcm(1_000_000, 10_000, 0);
        c.yellow = Action::Remark {
            pcp: Some(8),
            dscp: None,
        };
        assert!(e(c).starts_with("yellow.pcp:"));
        c.yellow = Action::Remark {
            pcp: Some(1),
            dscp: Some(64),
        };
        assert!(e(c).starts_with("yellow.dscp:"));
        assert!(SharedMeter::new(MeterConfig::srtcm(1, 1, 1), 0).is_err());
        MeterConfig::srtcm(1_000_000, 10_000, 0).validate().unwrap();
        MeterConfig::trtcm(1_000_000, 10_000, 1_000_000, 64)
            .validate()
            .unwrap();
    }

    #[test]
    fn chunk_sizes() {
        // 1 Gbit/s, 1 MB CBS: min(1 MB / 64, 100 µs × 125 MB/s) = 12 500.
        assert_eq!(chunk_for(125_000_000, 1_000_000), 12_500);
        assert_eq!(chunk_for(125_000_000, 64_000), 1_000);
        assert_eq!(chunk_for(1_000, 64), MIN_CHUNK);
        // Burst ≥ 2 chunks whenever burst ≥ 128.
        for cbs in [128, 1000, 1 << 20] {
            assert!(chunk_for(MAX_RATE, cbs) * 2 <= cbs);
        }
    }

    /// RFC 2697 at a single instant: C then E then red, no refill.
    #[test]
    fn srtcm_rfc_example_no_time() {
        let sh = shared(MeterConfig::srtcm(1_000_000, 1000, 1000));
        let mut m = MeterCache::new(sh);
        let got: Vec<Color> = (0..5).map(|_| m.meter(0, 500, Color::Green)).collect();
        use Color::*;
        assert_eq!(got, [Green, Green, Yellow, Yellow, Red]);
        // 1 ms later C has 1000 bytes again (E stays empty until C is full).
        assert_eq!(m.meter(1_000_000, 1000, Green), Green);
        assert_eq!(m.meter(1_000_000, 64, Green), Red);
        // Then 2 ms of nothing: C refills to 1000 in 1 ms, the next 1 ms overflows into E.
        assert_eq!(
            m.meter(3_000_000, 1000, Yellow),
            Green,
            "colour-blind: pre-colour ignored"
        );
        assert_eq!(m.meter(3_000_000, 1000, Green), Yellow);
        assert_eq!(m.meter(3_000_000, 1, Green), Red);
    }

    /// One core against the reference: identical while leases are whole frames.
    #[test]
    fn single_core_matches_reference_totals() {
        for cfg in [
            MeterConfig::srtcm(1_000_000, 20_000, 30_000),
            MeterConfig::trtcm(1_000_000, 20_000, 3_000_000, 40_000),
            MeterConfig::srtcm(1_000_000, 20_000, 30_000).mode(ColorMode::Aware),
            MeterConfig::trtcm(1_000_000, 20_000, 3_000_000, 40_000).mode(ColorMode::Aware),
        ] {
            let mut r = Reference::new(cfg);
            let mut m = MeterCache::new(shared(cfg));
            let mut rng = Rng(crate::policy::acl::Rng(12345));
            let (mut a, mut b) = ([0u64; 3], [0u64; 3]);
            let mut now = 0;
            for _ in 0..200_000 {
                let len = rng.size();
                let pre = Color::ALL[(rng.next() % 3) as usize];
                now += rng.next() % 600_000; // mean 300 µs → ~2.5 × CIR
                a[r.meter(now, len, pre) as usize] += u64::from(len);
                b[m.meter(now, len, pre) as usize] += u64::from(len);
            }
            for k in 0..3 {
                assert!(
                    within(b[k], a[k] as f64, 0.01),
                    "{cfg:?} colour {k}: ref {a:?} leased {b:?}"
                );
            }
        }
    }

    #[test]
    fn srtcm_green_rate_any_core_count() {
        // 1 Gbit/s committed, 128 KB bursts, offered at 2 × CIR for 3 s.
        let (cir, cbs, ebs) = (125_000_000u64, 128_000u64, 64_000u64);
        for cores in [1, 2, 4, 8] {
            let (all, win) = offer(MeterConfig::srtcm(cir, cbs, ebs), cores, 2.0, 3);
            let want = (cir * 3 + cbs) as f64;
            let err = (all[0] as f64 - want) / want;
            let werr = (win[0] as f64 - (cir * 2) as f64) / (cir * 2) as f64;
            eprintln!("srTCM {cores} cores: green {} want {want} err {:+.4}% window err {:+.4}% yellow {}", all[0], err * 100.0, werr * 100.0, all[1]);
            assert!(err.abs() <= 0.02, "{cores} cores: green error {err}");
            assert!(werr.abs() <= 0.02, "{cores} cores: window error {werr}");
            // E is filled only when C overflows: under steady overload, yellow ≈ EBS.
            assert!(within(all[1], ebs as f64, 0.05), "yellow {}", all[1]);
        }
    }

    /// Small bursts (64-byte chunks), large frames, up to 16 cores.
    #[test]
    fn small_burst_many_cores() {
        for cores in [1, 4, 16] {
            let (cir, cbs) = (1_000_000u64, 3_000u64);
            let (all, win) = offer(MeterConfig::srtcm(cir, cbs, 0), cores, 2.0, 4);
            let want = (cir * 4 + cbs) as f64;
            let err = (all[0] as f64 - want) / want;
            let werr = (win[0] as f64 - (cir * 3) as f64) / (cir * 3) as f64;
            eprintln!(
                "small burst {cores} cores: err {:+.4}% window {:+.4}%",
                err * 100.0,
                werr * 100.0
            );
            assert!(
                err.abs() <= 0.02 && werr.abs() <= 0.02,
                "{cores}: {err} {werr}"
            );
            assert_eq!(all[1], 0);
        }
    }

    #[test]
    fn trtcm_boundaries_any_core_count() {
        let (cir, cbs, pir, pbs) = (10_000_000u64, 50_000u64, 30_000_000u64, 100_000u64);
        for cores in [1, 2, 4, 8] {
            // 4 × CIR offered: green ≈ CIR, yellow ≈ PIR − CIR, red = the rest.
            let (all, win) = offer(MeterConfig::trtcm(cir, cbs, pir, pbs), cores, 4.0, 3);
            let g = (cir * 3 + cbs) as f64;
            let gy = (pir * 3 + pbs) as f64;
            eprintln!(
                "trTCM {cores} cores: {all:?} green err {:+.4}% green+yellow err {:+.4}%",
                (all[0] as f64 - g) / g * 100.0,
                ((all[0] + all[1]) as f64 - gy) / gy * 100.0
            );
            assert!(within(all[0], g, 0.02), "{cores}: green {all:?}");
            assert!(
                within(all[0] + all[1], gy, 0.02),
                "{cores}: green+yellow {all:?}"
            );
            assert!(
                within(win[0], (cir * 2) as f64, 0.02),
                "{cores}: window {win:?}"
            );
            assert!(
                within(win[1], ((pir - cir) * 2) as f64, 0.02),
                "{cores}: window {win:?}"
            );
            // 1.5 × CIR (< PIR): nothing red beyond rounding.
            let (all, _) = offer(MeterConfig::trtcm(cir, cbs, pir, pbs), cores, 1.5, 2);
            assert_eq!(all[2], 0, "{cores}: {all:?}");
            assert!(
                within(all[0], (cir * 2 + cbs) as f64, 0.02),
                "{cores}: {all:?}"
            );
        }
    }

    #[test]
    fn trtcm_rfc_thresholds() {
        use Color::*;
        // Tp = 3000, Tc = 1000 at t = 0.
        let mut m = MeterCache::new(shared(MeterConfig::trtcm(1_000_000, 1000, 2_000_000, 3000)));
        assert_eq!(m.meter(0, 1000, Green), Green); // Tp 2000, Tc 0
        assert_eq!(m.meter(0, 1000, Green), Yellow); // Tp 1000
        assert_eq!(m.meter(0, 1000, Green), Yellow); // Tp 0
        assert_eq!(m.meter(0, 1, Green), Red);
        // 0.5 ms: Tc += 500, Tp += 1000.
        assert_eq!(m.meter(500_000, 500, Green), Green);
        assert_eq!(m.meter(500_000, 500, Green), Yellow);
        assert_eq!(m.meter(500_000, 1, Green), Red);
    }

    #[test]
    fn color_aware_never_improves() {
        for cfg in [
            MeterConfig::srtcm(1_000_000, 100_000, 100_000).mode(ColorMode::Aware),
            MeterConfig::trtcm(1_000_000, 100_000, 2_000_000, 100_000).mode(ColorMode::Aware),
        ] {
            let sh = shared(cfg);
            let mut caches: Vec<MeterCache> = (0..4).map(|_| MeterCache::new(sh.clone())).collect();
            let mut rng = Rng(crate::policy::acl::Rng(7));
            let mut now = 0;
            for i in 0..100_000 {
                let len = rng.size();
                now += rng.next() % 2_000_000;
                let m = &mut caches[i % 4];
                assert_ne!(m.meter(now, len, Color::Yellow), Color::Green, "{cfg:?}");
                assert_eq!(m.meter(now, len, Color::Red), Color::Red, "{cfg:?}");
            }
            // The buckets are nearly full, so green input stays green.
            assert_eq!(caches[0].meter(now, 64, Color::Green), Color::Green);
            // Pre-yellow frames still use E/P: with plenty of tokens they stay yellow.
            let y = caches.iter().map(|c| c.stats().pkts[1]).sum::<u64>();
            assert!(y > 50_000, "{y}");
        }
    }

    #[test]
    fn srtcm_aware_yellow_uses_e_only() {
        let mut m = MeterCache::new(shared(
            MeterConfig::srtcm(1_000_000, 10_000, 2_000).mode(ColorMode::Aware),
        ));
        assert_eq!(m.meter(0, 1000, Color::Yellow), Color::Yellow);
        assert_eq!(m.meter(0, 1000, Color::Yellow), Color::Yellow);
        assert_eq!(m.meter(0, 1000, Color::Yellow), Color::Red); // E empty, C untouched
        assert_eq!(m.meter(0, 10_000, Color::Green), Color::Green); // C still full
    }

    #[test]
    fn release_returns_tokens() {
        let sh = shared(MeterConfig::trtcm(1_000_000, 100_000, 2_000_000, 200_000));
        let mut m = MeterCache::new(sh.clone());
        m.meter(0, 50, Color::Green);
        let held = m.held();
        assert!(held.0 > 0 && held.1 > 0);
        assert_eq!(
            sh.shared_tokens(0),
            (100_000 - 50 - held.0, 200_000 - 50 - held.1)
        );
        drop(m);
        assert_eq!(sh.shared_tokens(0), (100_000 - 50, 200_000 - 50));
    }

    #[test]
    fn leases_not_per_frame() {
        let sh = shared(MeterConfig::srtcm(125_000_000, 1_000_000, 100_000));
        let mut caches: Vec<MeterCache> = (0..8).map(|_| MeterCache::new(sh.clone())).collect();
        let mut now = 0u64;
        let n = 1_000_000u64;
        for i in 0..n {
            // 64-byte frames at 4 × CIR.
            now += 64 * S / (4 * 125_000_000);
            caches[i as usize % 8].meter(now, 64, Color::Green);
        }
        let atomics: u64 = caches
            .iter()
            .map(|c| c.stats().leases + c.stats().misses)
            .sum();
        eprintln!("{n} frames, {atomics} shared-bucket accesses");
        assert!(atomics * 50 < n, "{atomics} shared accesses for {n} frames");
    }

    /// Real threads, many frames: the simulated clock is a shared frame counter.
    #[test]
    fn threads_hold_rate() {
        let (cir, cbs, ebs) = (125_000_000u64, 256_000u64, 64_000u64);
        for cores in [2usize, 4, 8] {
            let sh = shared(MeterConfig::srtcm(cir, cbs, ebs));
            let frames = 2_000_000u64;
            let len = 256u32;
            let dt = u64::from(len) * S / (2 * cir); // 2 × CIR offered
            let next = Arc::new(AtomicU64::new(0));
            let hs: Vec<_> = (0..cores)
                .map(|_| {
                    let (sh, next) = (sh.clone(), next.clone());
                    std::thread::spawn(move || {
                        let mut m = MeterCache::new(sh);
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= frames {
                                break;
                            }
                            m.meter(i * dt, len, Color::Green);
                        }
                        m.stats()
                    })
                })
                .collect();
            let st: Vec<MeterStats> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            let green: u64 = st.iter().map(|s| s.bytes[0]).sum();
            let atomics: u64 = st.iter().map(|s| s.leases + s.misses).sum();
            let t = frames * dt;
            let want = (u128::from(cir) * u128::from(t) / u128::from(S)) as f64 + cbs as f64;
            let err = (green as f64 - want) / want;
            eprintln!(
                "threads {cores}: green {green} want {want} err {:+.4}% shared accesses {atomics}",
                err * 100.0
            );
            assert!(err.abs() <= 0.02, "{cores} threads: error {err}");
            assert!(atomics * 10 < frames);
        }
    }
}
