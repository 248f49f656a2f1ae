//! The engine: typed events in, per-server state and aggregates out.
//!
//! One engine serves every mode. [`Engine::ingest_line`] is the whole path
//! for one line (syslog header, HAProxy message, aggregates); health events
//! come back to the caller, which applies them in order with
//! [`Engine::apply_health`] once their event time is known. Sequentially
//! (live) that is immediate; `analyze` runs `ingest_line` on worker threads
//! and applies the health events of each chunk in input order on one thread.
//!
//! Invariants: event time only (see [`Clock`]); request aggregates are
//! mergeable (see `stats`); health state has a single owner.

pub mod breakdown;
pub mod clocks;
pub(crate) mod counts;
pub mod diagnose;
pub mod holes;
pub(crate) mod order;
pub mod percentiles;
pub mod rollup;
pub mod select;
pub(crate) mod state;
pub(crate) mod stats;
pub mod tally;
pub mod touched;

use std::sync::Arc;

use crate::envelope;
use crate::haproxy::{self, HealthEvent, Message, Request};
use crate::model::{BackendView, StateEvent};
use crate::patterns::PatternSet;
use crate::syslog::{self, Stamp};
use crate::time::{Millis, YearResolver, Zone};
use order::{Origin, Output, Pushed};

pub use state::{HealthTracker, Label, Transition};
pub use stats::{Aggregates, ServerKey, Stats};
pub use touched::Reader;

/// Lines longer than this are counted as oversized and skipped.
pub const MAX_LINE: usize = 64 * 1024;

pub use crate::patterns::Glob;

/// Which events the reports consider.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub backend: Option<Glob>,
    pub server: Option<Glob>,
    pub host: Option<Glob>,
}

impl Filter {
    pub fn in_time(&self, t: Millis) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    pub fn selects(&self, host: &str, backend: &str, server: Option<&str>) -> bool {
        self.host.as_ref().is_none_or(|g| g.matches(host))
            && self.backend.as_ref().is_none_or(|g| g.matches(backend))
            && match (&self.server, server) {
                (Some(g), Some(s)) => g.matches(s),
                (Some(_), None) => true, // backend-level events stay visible
                (None, _) => true,
            }
    }
}

/// What was read, for the input summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counters {
    pub lines: u64,
    pub requests: u64,
    pub health_events: u64,
    pub other: u64,
    pub unparsed: u64,
    pub oversized: u64,
    /// Runs of NUL bytes read where lines should be (see
    /// `Engine::odd_line`): a file copytruncated under a writer that does
    /// not append, or blocks a crash left zeroed. Not lines.
    pub nul_runs: u64,
    /// Health lines with no time of their own and nothing before them in
    /// their input to date them: applied in arrival order (analyze) or at
    /// their receive time (listen), see [`Clock`].
    pub untimed: u64,
    /// Health messages received twice (same host, text and event time).
    pub duplicates: u64,
    /// Health messages older than the reorder window allowed.
    pub late: u64,
    /// Of those, state lines older than a state already applied to their
    /// server: kept out of the state (and so of the store and the alerts).
    pub stale: u64,
    /// Lines dated past the bound (`--max-skew`): quarantined, not applied.
    pub skewed: u64,
    /// Request lines of a transaction written before its end (HAProxy
    /// 3.1's `log-steps`: [`haproxy::Request::is_earlier_step`]): not
    /// requests. In the JSON only when there are some.
    #[serde(skip_serializing_if = "is_zero")]
    pub log_steps: u64,
    /// Lines of servers or hosts past the cap (`--max-servers`,
    /// `--max-hosts`): counted, not kept.
    pub dropped_servers: u64,
    pub dropped_hosts: u64,
    /// Per `other` pattern, by index in the pattern set (reports name them).
    #[serde(skip)]
    pub other_kinds: Vec<u64>,
    /// Lines not understood that name a frontend with a format of its own,
    /// by the index of that format in the pattern set (reports name the
    /// frontend): lines that do not fit their frontend's format.
    #[serde(skip)]
    pub unparsed_by_format: Vec<u64>,
    /// Messages the journal or rsyslog says it dropped to its rate limit
    /// (their notices are in the input, see [`syslog::rate_limited`]), by
    /// daemon ([`syslog::Limiter::name`]) and what the notice names: lines
    /// that never reached any log. The notice itself is counted in `other`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub rate_limited: RateLimited,
}

/// The runs of NUL bytes in `line` (see `Engine::odd_line`).
fn nul_runs(line: &[u8]) -> u64 {
    let (mut runs, mut rest) = (0, line);
    while let Some(at) = memchr::memchr(0, rest) {
        runs += 1;
        let run = rest[at..].iter().position(|&c| c != 0);
        rest = run.map_or(&[][..], |n| &rest[at + n..]);
    }
    runs
}

/// For `#[serde(skip_serializing_if)]`: a count left out while it is 0
/// (the engine's and the report's).
pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The pieces of `line` between runs of NUL bytes, blank ones left out.
/// Streamed: a hostile line of NULs and bytes in turn holds millions.
fn between_nuls(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&c| c == 0)
        .filter(|p| !p.iter().all(|c| c.is_ascii_whitespace()))
}

/// `v[i] += 1`, growing `v`: a pattern set read again (SIGHUP) may have
/// more entries than the one the counters began with.
fn bump(v: &mut Vec<u64>, i: usize) {
    if v.len() <= i {
        v.resize(i + 1, 0);
    }
    v[i] += 1;
}

/// [`Counters::rate_limited`]: daemon -> what its notices name -> count.
pub type RateLimited =
    std::collections::BTreeMap<&'static str, std::collections::BTreeMap<String, u64>>;

/// The most sources a daemon's [`Counters::rate_limited`] names one by one
/// (the rest are `(others)`): a hostile input's notices must not grow it
/// forever.
const RATE_LIMITED_SOURCES: usize = 64;

impl Counters {
    /// Counts an other message, under the kind of pattern `idx`.
    fn other_of(&mut self, idx: usize) {
        self.other += 1;
        bump(&mut self.other_kinds, idx);
    }

    /// Adds a rate-limit notice's count under its daemon and what it names.
    fn rate_limited_by(&mut self, by: &'static str, from: &str, n: u64) {
        let sources = self.rate_limited.entry(by).or_default();
        let from = if sources.len() + 1 >= RATE_LIMITED_SOURCES && !sources.contains_key(from) {
            "(others)"
        } else {
            from
        };
        let c = sources.entry(from.to_string()).or_insert(0);
        *c = c.saturating_add(n);
    }

    pub fn merge(&mut self, o: &Counters) {
        self.lines += o.lines;
        self.requests += o.requests;
        self.health_events += o.health_events;
        self.other += o.other;
        self.unparsed += o.unparsed;
        self.oversized += o.oversized;
        self.nul_runs += o.nul_runs;
        self.untimed += o.untimed;
        self.duplicates += o.duplicates;
        self.late += o.late;
        self.stale += o.stale;
        self.skewed += o.skewed;
        self.log_steps += o.log_steps;
        self.dropped_servers += o.dropped_servers;
        self.dropped_hosts += o.dropped_hosts;
        if self.other_kinds.len() < o.other_kinds.len() {
            self.other_kinds.resize(o.other_kinds.len(), 0);
        }
        for (a, b) in self.other_kinds.iter_mut().zip(&o.other_kinds) {
            *a += b;
        }
        if self.unparsed_by_format.len() < o.unparsed_by_format.len() {
            self.unparsed_by_format
                .resize(o.unparsed_by_format.len(), 0);
        }
        for (a, b) in self
            .unparsed_by_format
            .iter_mut()
            .zip(&o.unparsed_by_format)
        {
            *a += b;
        }
        for (by, sources) in &o.rate_limited {
            for (from, n) in sources {
                self.rate_limited_by(by, from, *n);
            }
        }
    }
}

/// Turns a frame's timestamp into event time.
///
/// RFC 3164 has no year ([`YearResolver`]): each host's year comes from
/// that host's own dated lines (its request lines), else from the reference
/// (`--year`, the file's modification time, the receive time), never from
/// another host, whose clock or forged dates must not move this one's.
/// HAProxy's stderr lines have no time at all: live, they take their receive
/// time ([`Clock::received`]); read from a file, the time of the last event
/// before them in their input, or with none yet an arrival order
/// ([`crate::time::UNTIMED`]), never an invented time.
#[derive(Clone, Debug)]
pub struct Clock {
    /// The reference, for a host with no dated line yet.
    pub years: YearResolver,
    hosts: rustc_hash::FxHashMap<Box<[u8]>, YearResolver>,
    pub last: Option<Millis>,
    /// The zone of dates without an offset (`--tz`).
    pub zone: Zone,
    /// `listen`: when the lines being read were received.
    pub received: Option<Millis>,
    /// Events given an arrival order so far (carried across inputs).
    pub untimed: u64,
}

/// Hosts whose year is followed apart; past this, new hosts use the
/// reference (a flood of invented host names costs no memory).
const CLOCK_HOSTS: usize = 10_000;

impl Clock {
    pub fn new(years: YearResolver) -> Clock {
        Clock {
            years,
            hosts: Default::default(),
            last: None,
            zone: Zone::utc(),
            received: None,
            untimed: 0,
        }
    }

    pub fn with_zone(mut self, zone: Zone) -> Clock {
        self.zone = zone;
        self
    }

    /// `host`'s year resolver: a copy of the reference the first time the
    /// host is seen, while there is room; `None` past [`CLOCK_HOSTS`].
    fn host_years(&mut self, host: &[u8]) -> Option<&mut YearResolver> {
        if !self.hosts.contains_key(host) {
            if self.hosts.len() >= CLOCK_HOSTS {
                return None;
            }
            self.hosts.insert(host.into(), self.years.clone());
        }
        self.hosts.get_mut(host)
    }

    /// A request line of `host` accepted at `t` and written at `written`:
    /// the host's year goes by the date it carries, and an undated line
    /// after it borrows the time it was written. Not its accept date: a
    /// tunnel's or a long download's line is written when it ends, maybe
    /// hours after it began, and the line after it is of that moment.
    pub fn observe(&mut self, host: &[u8], t: Millis, written: Millis) {
        self.last = Some(written);
        if let Some(y) = self.host_years(host) {
            y.observe(t);
        }
    }

    pub fn resolve(&mut self, host: &[u8], stamp: Stamp) -> Millis {
        let t = match stamp {
            Stamp::Full(t) => t,
            Stamp::NoYear(d) => {
                let local = match self.host_years(host) {
                    Some(y) => y.resolve(d),
                    None => self.years.clone().resolve(d),
                };
                self.zone.to_utc(local)
            }
            Stamp::Local(t) => self.zone.to_utc(t),
            Stamp::None => match (self.received, self.last) {
                (Some(r), _) => r,
                (None, Some(l)) => l,
                (None, None) => {
                    // An order, not a time: not a reference for the next
                    // line either.
                    self.untimed += 1;
                    return crate::time::untimed(self.untimed);
                }
            },
        };
        self.last = Some(t);
        t
    }

    /// Was a line of `stamp` timed by its arrival ([`Clock::resolve`] gave
    /// it the receive time or an order), not by a line's date?
    pub fn arrival_timed(&self, stamp: Stamp, at: Millis) -> bool {
        matches!(stamp, Stamp::None) && (self.received.is_some() || crate::time::is_untimed(at))
    }
}

/// HAProxy writes the accept date in its host's local time, without a zone.
/// When the syslog header has a real zone (RFC 5424, RFC 3339), the two tell
/// the host's UTC offset: the line is emitted at accept + Ta (Tt for TCP), so
/// `accept - (header - Ta)` is the offset, rounded to 15 minutes (clock skew
/// and relay delay stay well below that). Subtracting it puts requests and
/// health events on the same, true UTC clock.
fn local_offset(r: &Request, header: Millis) -> Millis {
    const Q: Millis = 15 * 60_000;
    let delta = r.accept + emitted_after(r) - header;
    if delta.abs() < Q / 2 {
        0
    } else {
        (delta as f64 / Q as f64).round() as Millis * Q
    }
}

/// How long after its accept date a request line is written: Ta (Tt for
/// TCP, whose line is written at the end of the session).
fn emitted_after(r: &Request) -> Millis {
    match r.mode {
        haproxy::Mode::Tcp => r.timer(haproxy::Timer::Tt),
        _ => r.timer(haproxy::Timer::Ta),
    }
    .max(0) as Millis
}

/// How [`Engine::read_header`] reads a request line in a native format.
trait ReadRequest: Copy {
    fn read(self, msg: &[u8]) -> Option<haproxy::Request<'_>>;
}

/// The whole line.
#[derive(Clone, Copy)]
struct Whole;

impl ReadRequest for Whole {
    #[inline(always)]
    fn read(self, msg: &[u8]) -> Option<haproxy::Request<'_>> {
        haproxy::request::parse(msg)
    }
}

/// Up to the status when the selection turns it down; a line with no
/// status yet is read whole all the same, to its termination state: it may
/// be an earlier step of a transaction, which is no request at all
/// ([`haproxy::Request::is_earlier_step`]).
impl ReadRequest for select::StatusGate {
    #[inline(always)]
    fn read(self, msg: &[u8]) -> Option<haproxy::Request<'_>> {
        haproxy::request::parse_gated(msg, |s| s <= 0 || self.admits(s))
    }
}

/// A health event whose time is not known yet.
#[derive(Debug)]
pub struct PendingHealth {
    pub host: String,
    pub stamp: Stamp,
    /// Identifies the message (host and text) for duplicate suppression.
    pub fingerprint: u64,
    /// Which of HAProxy's outputs wrote it, to know its copy from the other.
    pub origin: Origin,
    pub event: Box<HealthEvent>,
    /// The line itself: stored if it is quarantined (skewed) or held by
    /// the reorder window at a live commit.
    pub line: Box<[u8]>,
}

/// A health event in the reorder window: its host, the event, its line.
pub type Held = (String, Box<HealthEvent>, Box<[u8]>);

/// What the rules read of a backend: see [`BackendView`].
fn view(health: &HealthTracker, host: &str, backend: &str) -> BackendView {
    let b = health
        .backends
        .get(&(host.to_string(), backend.to_string()));
    BackendView {
        active: b.and_then(|b| b.active),
        no_server: b
            .and_then(|b| b.no_server.last())
            .is_some_and(|p| p.end.is_none()),
    }
}

/// One health event into a state machine, and what it did into `events`
/// (when the caller observes): the real state, or a preview's scratch copy.
fn apply_to(
    health: &mut HealthTracker,
    events: Option<&mut Vec<StateEvent>>,
    filter: &Filter,
    host: &str,
    at: Millis,
    ev: &HealthEvent,
) {
    if filter.until.is_some_and(|u| at >= u) {
        return;
    }
    let in_window = filter.in_time(at);
    let before = health.transitions.len();
    health.apply(host, at, ev, in_window);
    if let Some(out) = events {
        let after = view(health, host, &ev.backend);
        for t in &health.transitions[before..] {
            out.push(StateEvent::Transition(Box::new(t.clone()), after));
        }
        if let (true, Some(server)) = (in_window, &ev.server) {
            let key = ServerKey {
                host: host.to_string(),
                backend: ev.backend.clone(),
                server: server.clone(),
            };
            if let Some(st) = health.servers.get(&key) {
                out.push(StateEvent::Heard {
                    label: st.label(),
                    host: key.host,
                    backend: key.backend,
                    server: key.server,
                    at,
                });
            }
        }
        if in_window && ev.class == crate::patterns::Class::Backend {
            out.push(StateEvent::Backend {
                host: host.to_string(),
                backend: ev.backend.clone(),
                at,
                view: after,
            });
        }
    }
}

/// Where a health message came from: the console's copy
/// (`[WARNING]  (8) : Server ...`) or the log's, its host, and its text as
/// both write it: without the console's prefix, and without the quotes
/// the console alone puts around a name (`backend 'be' has no server
/// available!`).
fn origin(h: &syslog::Header, stamp: Stamp) -> Origin {
    use std::hash::Hasher;
    let (output, text, pid) = match haproxy::strip_stderr_prefix(h.msg) {
        Some((_, pid, text)) => (Output::Console, text, pid),
        None => (Output::Log, h.msg, h.pid),
    };
    let mut hasher = rustc_hash::FxHasher::default();
    // Byte by byte: the hasher's words would differ with the cuts.
    for &c in haproxy::trim_message(text).iter().filter(|&&c| c != b'\'') {
        hasher.write_u8(c);
    }
    Origin {
        output,
        text: hasher.finish(),
        host: host_key(h.host.unwrap_or_default()),
        pid,
        timed: !matches!(stamp, Stamp::None),
        counted_untimed: false,
        // Known once the console's host is settled (`submit_health`).
        subject: None,
    }
}

/// A host as [`Origin`] compares it; `None` for a line that names none.
fn host_key(host: &[u8]) -> Option<u64> {
    use std::hash::BuildHasher;
    (!host.is_empty()).then(|| rustc_hash::FxBuildHasher.hash_one(host))
}

/// What a health message is about, for [`order::Reorder::push_about`]:
/// its host, backend and server (none for a backend's own message).
fn subject(host: &str, backend: &str, server: Option<&str>) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    for part in [host, backend, server.unwrap_or("")] {
        h.write(part.as_bytes());
        h.write_u8(0xff);
    }
    h.write_u8(server.is_some() as u8);
    h.finish()
}

fn fingerprint(host: &[u8], msg: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(host);
    h.write_u8(0xff);
    h.write(msg);
    h.finish()
}

#[derive(Debug)]
pub struct Engine {
    pub patterns: Arc<PatternSet>,
    pub filter: Filter,
    pub counters: Counters,
    pub aggregates: Aggregates,
    pub health: HealthTracker,
    /// First and last event time considered (the analysed window).
    pub first: Option<Millis>,
    pub last: Option<Millis>,
    /// Accept date of the last request read, in input order.
    pub last_request: Option<Millis>,
    /// When that request's line was written (accept + Ta, Tt for TCP):
    /// the time an undated line after it borrows ([`Clock::observe`]).
    pub last_written: Option<Millis>,
    pub unparsed_samples: Vec<String>,
    pub sample_limit: usize,
    /// The syslog headers of the last lines, read again for free.
    headers: syslog::Recent,
    /// Record per-minute rollups (a store will take them).
    pub rollups: bool,
    /// Count requests per server (the SERVERS table, JSON's `servers`,
    /// rollups). Off only where the report shows a `--by`, `--percentiles`
    /// or `--accept-holes` table alone and nothing is stored: a line then
    /// costs its parse and that table (halog's `-st` does no more), not
    /// the server lookup and five histograms as well.
    pub server_stats: bool,
    /// Record buckets finer than a minute too (a timeline's short window).
    pub fine: Option<rollup::Fine>,
    /// `analyze --by`: requests also counted by status, termination or
    /// cookie codes.
    pub breakdown: Option<breakdown::Breakdown>,
    /// `analyze --percentiles`: halog's `-pct` timer table.
    pub percentiles: Option<percentiles::Percentiles>,
    /// `analyze --accept-holes`: halog's `-ad`/`-ac`.
    pub holes: Option<holes::Holes>,
    /// `analyze`'s request filters (halog's input filters): lines they
    /// do not select are counted there and nowhere else.
    pub select: Option<select::Select>,
    /// Health events waiting for their reorder window.
    pub order: order::Reorder<Held>,
    /// Record what health did, for the alert rules (`--alerts`, `listen`):
    /// [`Engine::events`].
    pub observe: bool,
    /// What health did since the caller last took them, in order.
    pub events: Vec<StateEvent>,
    /// Live: work out a state line's consequences as it arrives, before the
    /// reorder window lets it into the state (see `Engine::preview`).
    pub preview: bool,
    /// Lines dated after this are not applied (`--max-skew` past the
    /// receive time live, past the file's modification time offline): a
    /// forged or badly skewed date must not pin a state in the future.
    /// While it is set, neither are lines dated before [`EARLIEST`].
    pub max_time: Option<Millis>,
    /// The skewed lines, as far as kept (the first [`SKEWED_KEPT`] since the
    /// caller last took them; all are counted).
    pub skewed: Vec<Skewed>,
    /// The host each HAProxy process's log lines name, by pid, for its
    /// console messages, which name none (see [`Engine::console_host`]).
    console_hosts: rustc_hash::FxHashMap<u32, String>,
    /// The host of the last request line (its year anchors that host's
    /// RFC 3164 dates).
    pub last_request_host: LastHost,
    /// Moves with every line taken and every health event applied: a
    /// writer that sees it unchanged knows no row changed.
    pub generation: u64,
    /// How many servers and hosts are kept (see [`Cap`]).
    pub cap: Cap,
    /// The zone of accept dates whose line has no zoned header (`--tz`).
    pub zone: Zone,
    /// The parts of a line a container runtime cut up (CRI's `P`, a
    /// json-file record without its newline), waiting for its last part;
    /// and which runtime's form they came in.
    parts: Vec<u8>,
    parts_kind: Option<envelope::Kind>,
    /// The hosts and dates of the lines read since the last
    /// [`Engine::fold_arrivals`]: each load balancer's clock offset.
    pub arrivals: clocks::Arrivals,
    /// Each load balancer's clock, as measured.
    pub clocks: clocks::HostClocks,
    /// When the last line dated without a zone was written, as read (a
    /// request's accept date + Ta, an RFC 3164 health line): `listen`
    /// compares it with the receive time to spot a zone left unset.
    pub unzoned: Option<Millis>,
}

/// How many distinct servers and load balancers the engine keeps: names
/// past these are counted (`Counters::dropped_servers`,
/// `dropped_hosts`), never kept, so a flood of invented names costs no
/// memory and no rows.
#[derive(Debug, Clone)]
pub struct Cap {
    pub max_servers: usize,
    pub max_hosts: usize,
    hosts: rustc_hash::FxHashSet<Box<[u8]>>,
}

impl Cap {
    pub fn new(max_servers: usize, max_hosts: usize) -> Cap {
        Cap {
            max_servers,
            max_hosts,
            hosts: Default::default(),
        }
    }

    /// Whether a new server (`servers` known so far) of `host` may be
    /// kept; counts it in `c` if not.
    fn admit(&mut self, servers: usize, host: &[u8], c: &mut Counters) -> bool {
        let new_host = !self.hosts.contains(host);
        if new_host && self.hosts.len() >= self.max_hosts {
            c.dropped_hosts += 1;
            return false;
        }
        if servers >= self.max_servers {
            c.dropped_servers += 1;
            return false;
        }
        if new_host {
            self.hosts.insert(host.into());
        }
        true
    }
}

impl Default for Cap {
    fn default() -> Cap {
        Cap::new(100_000, 10_000)
    }
}

/// 2000-01-01T00:00:00Z. HAProxy 1.0 is of 2001: a line dated before
/// this comes from a clock never set (a load balancer booted without one,
/// at 1970-01-01, before NTP) or a corrupted date (year 0000), and would
/// otherwise open the report's window decades early and time a server's
/// state across them.
pub const EARLIEST: Millis = 946_684_800_000;

/// A line quarantined for its date (see [`Engine::max_time`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Skewed {
    pub host: String,
    pub at: Millis,
    /// What the bound was when it came ([`EARLIEST`] for a line before it).
    pub bound: Millis,
    pub line: String,
}

/// The host of the last request line, written for nearly every line of a
/// log where several load balancers alternate. Kept inline and on cache
/// lines of its own: as a separate few-byte allocation, two `analyze`
/// workers' copies were served 32 bytes apart (glibc handed both workers
/// chunks of the main thread's arena), and the false sharing cost a third
/// of `analyze`'s speed on two cores, depending on the build's layout.
#[repr(align(128))]
pub struct LastHost {
    len: usize,
    inline: [u8; 120],
    /// A host longer than `inline` (syslog allows 255 bytes; rare).
    long: Vec<u8>,
}

impl std::fmt::Debug for LastHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.get()))
    }
}

impl Default for LastHost {
    fn default() -> Self {
        LastHost {
            len: 0,
            inline: [0; 120],
            long: Vec::new(),
        }
    }
}

impl LastHost {
    #[inline]
    pub fn get(&self) -> &[u8] {
        match self.inline.get(..self.len) {
            Some(h) => h,
            None => &self.long,
        }
    }

    /// Every request line sets it, and lines of several load balancers
    /// interleave in one file (`hapwatch-gen`'s two alternate): a name of
    /// up to 16 bytes is copied in two overlapping moves, where
    /// `copy_from_slice` of a length known only at run time called memcpy
    /// (that call and the compare before it: 32 instructions of a request
    /// line's ~2,400).
    #[inline]
    pub fn set(&mut self, host: &[u8]) {
        if crate::bytes::copy_short(&mut self.inline, host) {
            self.len = host.len();
            return;
        }
        if crate::bytes::same(self.get(), host) {
            return;
        }
        self.len = host.len();
        match self.inline.get_mut(..host.len()) {
            Some(h) => h.copy_from_slice(host),
            None => {
                self.long.clear();
                self.long.extend_from_slice(host);
            }
        }
    }
}

/// Skewed lines kept between two takes (all are counted).
pub const SKEWED_KEPT: usize = 100;

/// HAProxy processes whose host is remembered for their console messages:
/// a few per reload kept in one stream.
const CONSOLE_PIDS: usize = 256;

impl Engine {
    pub fn new(patterns: Arc<PatternSet>, filter: Filter) -> Engine {
        let other_kinds = vec![0; patterns.patterns.len()];
        Engine {
            health: HealthTracker {
                window_start: filter.since,
                ..Default::default()
            },
            patterns,
            filter,
            counters: Counters {
                other_kinds,
                ..Default::default()
            },
            aggregates: Aggregates::default(),
            first: None,
            last: None,
            last_request: None,
            last_written: None,
            unparsed_samples: Vec::new(),
            sample_limit: 0,
            headers: Default::default(),
            rollups: false,
            server_stats: true,
            fine: None,
            breakdown: None,
            percentiles: None,
            holes: None,
            select: None,
            order: order::Reorder::new(order::DEFAULT_WINDOW_MS),
            observe: false,
            events: Vec::new(),
            preview: false,
            max_time: None,
            skewed: Vec::new(),
            console_hosts: Default::default(),
            last_request_host: LastHost::default(),
            generation: 0,
            cap: Cap::default(),
            zone: Zone::utc(),
            parts: Vec::new(),
            parts_kind: None,
            arrivals: Default::default(),
            clocks: Default::default(),
            unzoned: None,
        }
    }

    /// Widens the analysed window to include `t`, and the health window
    /// with it, so that state implied before a server's first message is
    /// counted from the start of the window.
    pub fn see(&mut self, t: Millis) {
        self.see_written(t);
        self.see_accepted(t);
    }

    /// Widens the analysed window (the report's) to include `t`.
    #[inline]
    pub fn see_accepted(&mut self, t: Millis) {
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
    }

    /// Where the health window opens so far (see [`Engine::see_written`]).
    pub fn written_from(&self) -> Option<Millis> {
        self.health.window_start
    }

    /// Opens the health window at `t`, when a line was written: a state
    /// implied before a server's first message is counted from the first
    /// line the log has, not from the accept date of a session that began
    /// before it (a tunnel's line, written when it closes, is dated when
    /// it opened, maybe weeks before the log's first line).
    #[inline]
    pub fn see_written(&mut self, t: Millis) {
        // Without --since the window opens at the earliest event; a health
        // line may precede the first request of its chunk.
        self.health.window_start = Some(match self.health.window_start {
            Some(w) if self.filter.since.is_some() => w,
            Some(w) => w.min(t),
            None => t,
        });
    }

    /// One line through syslog and HAProxy parsing. Requests, other and
    /// unparsed messages are accounted here; a health event is returned for
    /// the caller to time and apply in order.
    pub fn ingest_line(&mut self, line: &[u8]) -> Option<PendingHealth> {
        self.generation += 1;
        if line.len() > MAX_LINE || line.first() == Some(&0) {
            return self.odd_line(line);
        }
        if line.iter().all(|c| c.is_ascii_whitespace()) {
            return None;
        }
        self.counters.lines += 1;
        if let Some(env) = envelope::peel(line) {
            return self.ingest_enveloped(line, env);
        }
        if !self.parts.is_empty() {
            return self.ingest_enveloped(line, envelope::open(line));
        }
        // Most lines have no envelope: their header as it always was. Looked
        // inside where it lies: `look_inside`'s header returned by value was
        // a copy of it, whose eight-byte load of the PRI's two bytes (stored
        // one by one a few instructions before) the CPU cannot forward from
        // its pending stores; that one load had a fifth of this function's
        // samples (2.6% of a one-thread run's).
        let mut h = self.headers.parse(line);
        envelope::look_inside_in_place(&mut h);
        self.ingest_header(line, h)
    }

    /// A line longer than [`MAX_LINE`], or one with NUL bytes in it.
    ///
    /// Neither HAProxy nor a syslog daemon writes a NUL: a run of them is
    /// a hole, where a file was copytruncated under a writer that does not
    /// append (HAProxy's stdout redirected with `>` goes on writing at its
    /// old offset, and the file reads as NULs up to there), or where a
    /// crash left blocks zeroed. Whatever its length, a run is not part of
    /// the line after it: the last piece between runs is read as the line
    /// (a run longer than a reader's buffer reaches here as its last part,
    /// see `input::Chunker` and `--follow`) and, when it is understood, the
    /// pieces before it are what a hole cut off, each counted unparsed.
    /// When it is not, the runs were no hole in a log but bytes of a line
    /// hapwatch does not read: one line, counted as such. A NUL-terminated
    /// message (a sender that ends frames with NUL and LF) is read as its
    /// message. The runs are counted either way.
    #[cold]
    fn odd_line(&mut self, line: &[u8]) -> Option<PendingHealth> {
        if memchr::memchr(0, line).is_none() {
            self.counters.lines += 1;
            self.counters.oversized += 1;
            return None;
        }
        let runs = nul_runs(line);
        let (pieces, last) = between_nuls(line).fold((0, None), |(n, _), p| (n + 1, Some(p)));
        let Some(last) = last else {
            // NULs alone: a hole, no line.
            self.counters.nul_runs += runs;
            return None;
        };
        let (before, samples) = (self.counters.clone(), self.unparsed_samples.len());
        let health = self.ingest_line(last);
        let read = health.is_some()
            || (self.counters.unparsed == before.unparsed
                && self.counters.oversized == before.oversized);
        if !read {
            self.counters = before;
            self.unparsed_samples.truncate(samples);
            self.counters.lines += 1;
            self.counters.nul_runs += runs;
            match line.len() > MAX_LINE {
                true => self.counters.oversized += 1,
                false => self.not_understood(line),
            }
            return None;
        }
        self.counters.nul_runs += runs;
        for cut_off in between_nuls(line).take(pieces - 1) {
            self.counters.lines += 1;
            match cut_off.len() > MAX_LINE {
                true => self.counters.oversized += 1,
                false => self.unparsed(cut_off),
            }
        }
        health
    }

    /// A line a container runtime or journald wrapped.
    #[cold]
    fn ingest_enveloped(&mut self, line: &[u8], env: envelope::Envelope) -> Option<PendingHealth> {
        if env.partial || !self.parts.is_empty() {
            return self.join_partial(line, env);
        }
        let h = envelope::header(&env);
        self.ingest_header(line, h)
    }

    /// CRI splits a line longer than its buffer (16 KiB) into `P` parts
    /// ended by an `F` line, Docker's json-file into records of a full
    /// 16 KiB buffer without a newline but the last: the parts are kept until the
    /// whole line is there (bounded by [`MAX_LINE`]); a part followed by a
    /// line of another form is counted unparsed.
    #[cold]
    fn join_partial(&mut self, line: &[u8], env: envelope::Envelope) -> Option<PendingHealth> {
        let splits = matches!(env.kind, envelope::Kind::Cri | envelope::Kind::DockerJson);
        if !self.parts.is_empty() && (!splits || self.parts_kind != Some(env.kind)) {
            // The parts before never got their last part.
            self.parts.clear();
            self.counters.unparsed += 1;
            if !env.partial {
                self.parts_kind = None;
                let h = envelope::header(&env);
                return self.ingest_header(line, h);
            }
        }
        self.parts_kind = Some(env.kind);
        self.parts.extend_from_slice(&env.inner);
        if self.parts.len() > MAX_LINE {
            self.parts.clear();
            self.counters.oversized += 1;
            return None;
        }
        if env.partial {
            return None;
        }
        self.parts_kind = None;
        let joined = std::mem::take(&mut self.parts);
        let whole = envelope::Envelope {
            partial: false,
            inner: std::borrow::Cow::Borrowed(&joined),
            ..env
        };
        let h = envelope::header(&whole);
        self.ingest_header(&joined, h)
    }

    /// One line whose envelope and syslog header are read.
    #[inline(always)]
    fn ingest_header(&mut self, line: &[u8], h: syslog::Header) -> Option<PendingHealth> {
        match self.select.as_ref().and_then(select::Select::status_gate) {
            Some(gate) => self.ingest_gated(line, h, gate),
            None => self.read_header(line, h, Whole),
        }
    }

    /// `--errors`/`--status` alone: a line turned down is read no further
    /// than its status. A copy of its own, so that the whole line's path
    /// stays as it was (two parsers in one function slowed every run by a
    /// tenth, in the line splitter's loads).
    #[inline(never)]
    fn ingest_gated(
        &mut self,
        line: &[u8],
        h: syslog::Header,
        gate: select::StatusGate,
    ) -> Option<PendingHealth> {
        self.read_header(line, h, gate)
    }

    #[inline(always)]
    fn read_header(
        &mut self,
        line: &[u8],
        h: syslog::Header,
        how: impl ReadRequest,
    ) -> Option<PendingHealth> {
        // Most lines: a request in a built-in format, read where the parser
        // put it (wrapped in a `Message` by `classify`, it was copied, a
        // memcpy a line). Anything else, `classify` reads from the start.
        let mut msg = if self.patterns.prefixed {
            haproxy::classify(&self.patterns, h.msg)
        } else {
            let mut parsed = how.read(h.msg);
            match &mut parsed {
                Some(r) if !haproxy::overridden(&self.patterns, r) => {
                    self.request_line::<true>(line, &h, r);
                    return None;
                }
                // The format declared for its frontend reads it.
                Some(r) => Message::Request(haproxy::own_format(&self.patterns, h.msg, *r)),
                None => haproxy::classify(&self.patterns, h.msg),
            }
        };
        match &mut msg {
            // By reference: a request is a few hundred bytes, and moving it
            // out of the message was a memmove a line.
            Message::Request(r) => {
                self.request_line::<false>(line, &h, r);
                None
            }
            _ => self.other_message(line, h, msg),
        }
    }

    /// `BUILT_IN`: `r` was read by the built-in formats' parser, whose
    /// lines never name their step (`%OG`): the test of a step is the
    /// status and termination alone, on the path of nearly every line.
    #[inline(always)]
    fn request_line<const BUILT_IN: bool>(
        &mut self,
        line: &[u8],
        h: &syslog::Header,
        r: &mut Request,
    ) {
        if r.backend == b"-" && self.internal_client(h.msg) {
            return;
        }
        let step = match BUILT_IN {
            true => r.is_unfinished_step(),
            false => r.is_earlier_step(),
        };
        if step {
            return self.earlier_step();
        }
        if r.accept == haproxy::logformat::UNDATED {
            // A log-format without a date: the header's time.
            match self.header_time(h.stamp) {
                Some(t) => r.accept = t,
                None => {
                    self.counters.unparsed += 1;
                    return;
                }
            }
        } else if !r.zoned {
            match h.stamp {
                Stamp::Full(t) => r.accept -= local_offset(r, t),
                _ => {
                    if !self.zone.is_utc() {
                        r.accept = self.zone.to_utc(r.accept);
                    }
                    self.unzoned = Some(r.accept + emitted_after(r));
                }
            }
        }
        self.counters.requests += 1;
        // The syslog header names the load balancer. Not `%H`:
        // HAProxy's health lines never carry it, and a server's
        // requests and health must meet under one key.
        let host = h.host.unwrap_or_default();
        if self.dated_out(r.accept) {
            self.quarantine(host, r.accept, line);
            return;
        }
        self.arrivals.note(host, r.accept + emitted_after(r));
        self.on_request(host, r);
    }

    /// A line written before its transaction ended (`log-steps`): no
    /// request. Out of line: few logs have one.
    #[cold]
    fn earlier_step(&mut self) {
        self.counters.log_steps += 1;
    }

    /// A request line of HAProxy's own HTTP client (`<OCSP-UPDATE> -/-`),
    /// which reaches no backend server: counted under the `other` pattern
    /// that reads it, if one does (`internal_client`); else a request.
    #[cold]
    fn internal_client(&mut self, msg: &[u8]) -> bool {
        match self.patterns.find(haproxy::trim_message(msg)) {
            Some((idx, None)) => {
                self.counters.other_of(idx);
                true
            }
            _ => false,
        }
    }

    /// A message that is not a request line: health, other, unparsed.
    fn other_message(
        &mut self,
        line: &[u8],
        h: syslog::Header,
        msg: Message,
    ) -> Option<PendingHealth> {
        match msg {
            Message::Request(_) => unreachable!("ingest_header reads requests"),
            Message::Health(event) => {
                if event.class == crate::patterns::Class::Process {
                    // Timed and kept like a health event, counted as what
                    // `analyze` has always called it: other messages.
                    self.counters.other += 1;
                    let p = &self.patterns.patterns;
                    if let Some(i) = p.iter().position(|p| p.name == event.pattern) {
                        bump(&mut self.counters.other_kinds, i);
                    }
                } else {
                    self.counters.health_events += 1;
                }
                let host = h.host.unwrap_or_default();
                let stamp = match h.stamp {
                    Stamp::None => haproxy::stderr_time(h.msg).map_or(Stamp::None, Stamp::NoYear),
                    s => s,
                };
                Some(PendingHealth {
                    host: String::from_utf8_lossy(host).into_owned(),
                    stamp,
                    fingerprint: fingerprint(host, h.msg),
                    origin: origin(&h, stamp),
                    event,
                    line: line.into(),
                })
            }
            Message::Other(idx) => {
                self.counters.other_of(idx);
                None
            }
            Message::Unparsed => {
                if let Some((n, inner)) = syslog::repeated(h.msg) {
                    return self.repeated(line, h, n, inner);
                }
                if let Some((by, from, n)) = syslog::rate_limited(&h) {
                    self.counters.other += 1;
                    let from = String::from_utf8_lossy(from);
                    self.counters.rate_limited_by(by.name(), &from, n);
                    return None;
                }
                // NULs after the line's first byte: a crash's hole after
                // the piece of a line it cut off?
                if memchr::memchr(0, line).is_some() {
                    self.counters.lines = self.counters.lines.saturating_sub(1);
                    return self.odd_line(line);
                }
                // `TIME host msg`: read again with the host out of the
                // message (never twice: the header read again has a host).
                if let Some(h) = syslog::host_in_message(&h) {
                    return self.read_header(line, h, Whole);
                }
                self.not_understood(line);
                None
            }
        }
    }

    /// rsyslog's summary of a run of identical messages (see
    /// [`syslog::repeated`]), read as the message come `n` times under the
    /// summary's header: a request is counted `n` times (a log-format with
    /// no date or port repeats itself at every request); a health or other
    /// message once (its repetitions change no state); a message not
    /// understood once, as the one line it is.
    #[cold]
    fn repeated(
        &mut self,
        line: &[u8],
        h: syslog::Header,
        n: u64,
        inner: &[u8],
    ) -> Option<PendingHealth> {
        let h = syslog::Header { msg: inner, ..h };
        let requests = self.counters.requests;
        let health = self.read_header(line, h, Whole);
        if self.counters.requests > requests {
            for _ in 1..n {
                self.read_header(line, h, Whole);
            }
        }
        health
    }

    /// The time of a syslog header, on UTC, for a line that has no other:
    /// a header without a year takes the year of the latest event.
    /// `None` (the line counted unparsed) when nothing dates it.
    #[cold]
    fn header_time(&mut self, stamp: Stamp) -> Option<Millis> {
        match stamp {
            Stamp::Full(t) => Some(t),
            Stamp::Local(t) => Some(self.zone.to_utc(t)),
            Stamp::NoYear(d) => {
                // The latest event's year, else that of the file's last
                // write (or of the receive time, live).
                let near = self.last.or(self.max_time)?;
                let year = crate::time::civil_from_days(near.div_euclid(86_400_000)).0;
                Some(self.zone.to_utc(d.with_year(year)))
            }
            Stamp::None => None,
        }
    }

    #[inline]
    /// Servers known (by their requests or their health, most are both).
    pub fn server_count(&self) -> usize {
        self.health.servers.len().max(self.aggregates.servers.len())
    }

    /// Whether a health event's server (or backend) is known or may be
    /// kept under the [`Cap`].
    fn health_admits(&mut self, host: &str, ev: &HealthEvent) -> bool {
        if ev.class == crate::patterns::Class::Process {
            return true; // a row, no state per name
        }
        let known = match &ev.server {
            Some(server) if ev.class != crate::patterns::Class::Backend => {
                self.health.servers.contains_key(&ServerKey {
                    host: host.to_string(),
                    backend: ev.backend.clone(),
                    server: server.clone(),
                })
            }
            _ => self
                .health
                .backends
                .contains_key(&(host.to_string(), ev.backend.clone())),
        };
        known
            || self.cap.admit(
                self.health.servers.len().max(self.health.backends.len()),
                host.as_bytes(),
                &mut self.counters,
            )
    }

    /// Whether a line dated `at` is quarantined: past [`Engine::max_time`],
    /// or, while that bound is kept, before [`EARLIEST`] (an arrival order
    /// for a line with no time, [`crate::time::UNTIMED`], is no date).
    #[inline(always)]
    fn dated_out(&self, at: Millis) -> bool {
        self.max_time
            .is_some_and(|m| at > m || (at < EARLIEST && !crate::time::is_untimed(at)))
    }

    /// A line [`Engine::dated_out`]: counted, kept (bounded) for
    /// `status --skewed`, not applied.
    #[cold]
    fn quarantine(&mut self, host: &[u8], at: Millis, line: &[u8]) {
        self.counters.skewed += 1;
        if self.skewed.len() < SKEWED_KEPT {
            self.skewed.push(Skewed {
                host: String::from_utf8_lossy(host).into_owned(),
                at,
                bound: if at < EARLIEST {
                    EARLIEST
                } else {
                    self.max_time.unwrap_or(at)
                },
                line: String::from_utf8_lossy(line).into_owned(),
            });
        }
    }

    pub fn on_request(&mut self, host: &[u8], r: &Request) {
        let written = r.accept.saturating_add(emitted_after(r));
        self.last_request = Some(r.accept);
        self.last_written = Some(written);
        self.last_request_host.set(host);
        if !self.filter.in_time(r.accept) {
            return;
        }
        self.see_accepted(r.accept);
        self.see_written(written);
        if let Some(s) = &mut self.select {
            if !s.admits(r) {
                return;
            }
        }
        // The tables first: they count every selected request, whatever
        // the server cap says of its server (they bound their own memory),
        // so that they read the same with or without per-server counts.
        if self.breakdown.is_some() || self.percentiles.is_some() || self.holes.is_some() {
            self.add_to_tables(host, r);
        }
        if !self.server_stats {
            return;
        }
        let idx = match self.aggregates.position(host, r.backend, r.server) {
            (Some(i), _) => i,
            (None, h) => {
                if !self
                    .cap
                    .admit(self.aggregates.servers.len(), host, &mut self.counters)
                {
                    return;
                }
                self.aggregates.insert(h, host, r.backend, r.server)
            }
        };
        if let Some(fine) = &mut self.fine {
            fine.add(host, r);
        }
        let stats = self.aggregates.at(idx);
        if self.rollups {
            stats.add_with_minute(r);
        } else {
            stats.add(r);
        }
    }

    /// The `--by`, `--percentiles` and `--accept-holes` tables.
    fn add_to_tables(&mut self, host: &[u8], r: &Request) {
        // The report's --host/--backend/--server apply to them too.
        let f = &self.filter;
        let selected = (f.host.is_none() && f.backend.is_none() && f.server.is_none())
            || f.selects(
                &String::from_utf8_lossy(host),
                &String::from_utf8_lossy(r.backend),
                Some(&String::from_utf8_lossy(r.server)),
            );
        if selected {
            if let Some(b) = &mut self.breakdown {
                b.add(r);
            }
            if let Some(p) = &mut self.percentiles {
                p.add(r);
            }
            if let Some(h) = &mut self.holes {
                h.add(r.accept);
            }
        }
    }

    /// Queues a timed health event in the reorder window and applies those
    /// whose window has passed. A duplicate is counted and dropped.
    pub fn submit_health(&mut self, at: Millis, mut p: PendingHealth) {
        self.console_host(&mut p);
        if self.dated_out(at) {
            self.quarantine(p.host.as_bytes(), at, &p.line);
            return;
        }
        // A line dated by its arrival says nothing of its host's clock.
        if !matches!(p.stamp, Stamp::None) {
            self.arrivals.note(p.host.as_bytes(), at);
        }
        let ev = &p.event;
        p.origin.subject = Some(subject(&p.host, &ev.backend, ev.server.as_deref()));
        let states =
            ev.class == crate::patterns::Class::Backend || ev.op.is_some() || ev.admin.is_some();
        let key =
            (self.preview && states && self.observe).then(|| (p.host.clone(), ev.backend.clone()));
        let pushed = self.order.push_from(
            at,
            p.fingerprint,
            (p.origin, !self.preview),
            (p.host, p.event, p.line),
        );
        if let Pushed::InsteadOf {
            counted_untimed: true,
        } = pushed
        {
            self.counters.untimed -= 1;
        }
        if pushed != Pushed::Duplicate {
            self.release_ready();
            if let Some((host, backend)) = key {
                self.preview(&host, &backend);
            }
        }
    }

    /// HAProxy's console names no host while the log lines of the same
    /// process may (`log stderr format rfc3164` writes `localhost`): a
    /// console message goes under the host its process's log lines named
    /// last, by pid, so that one whose log line never comes (a `log` line
    /// that keeps only some levels) is still that host's.
    fn console_host(&mut self, p: &mut PendingHealth) {
        let Some(pid) = p.origin.pid else { return };
        match p.origin.output {
            Output::Log if !p.host.is_empty() => {
                let known = self.console_hosts.get(&pid) == Some(&p.host);
                let room = self.console_hosts.len() < CONSOLE_PIDS;
                if !known && (room || self.console_hosts.contains_key(&pid)) {
                    self.console_hosts.insert(pid, p.host.clone());
                }
            }
            Output::Console if p.host.is_empty() => {
                if let Some(host) = self.console_hosts.get(&pid) {
                    p.origin.host = host_key(host.as_bytes());
                    p.host = host.clone();
                }
            }
            _ => {}
        }
    }

    /// The page must not wait for the reorder window: a state line is
    /// final about its own time (no line logged before it can undo "is
    /// DOWN" at its time), so live what it does is worked out at once on a
    /// scratch copy of its backend (the applied state plus every event of
    /// that backend still held, in event-time order) and handed on as a
    /// [`StateEvent::Preview`]. When the window lets the same events into
    /// the real state, the alert rules recognise what they announced ahead
    /// and do not announce it twice.
    fn preview(&mut self, host: &str, backend: &str) {
        let held: Vec<(Millis, &HealthEvent)> = self
            .order
            .held()
            .into_iter()
            .filter(|(_, (h, ev, _))| h == host && ev.backend == backend)
            .map(|(at, (_, ev, _))| (at, &**ev))
            .collect();
        if held.is_empty() {
            return;
        }
        let mut scratch = HealthTracker {
            window_start: self.health.window_start,
            stored_slack: self.health.stored_slack,
            ..Default::default()
        };
        // The backend's servers are one run of the map (keys sort by host,
        // backend, server): no walk over every server for each line.
        let first = ServerKey {
            host: host.to_string(),
            backend: backend.to_string(),
            server: String::new(),
        };
        for (k, st) in self
            .health
            .servers
            .range(first..)
            .take_while(|(k, _)| k.host == host && k.backend == backend)
        {
            scratch.servers.insert(k.clone(), st.clone());
        }
        let bk = (host.to_string(), backend.to_string());
        if let Some(b) = self.health.backends.get(&bk) {
            scratch.backends.insert(bk, b.clone());
        }
        let mut events = Vec::new();
        for (at, ev) in held {
            apply_to(&mut scratch, Some(&mut events), &self.filter, host, at, ev);
        }
        self.events.push(StateEvent::Preview {
            host: host.to_string(),
            backend: backend.to_string(),
            events,
        });
    }

    /// Tells the reorder window how far event time has come (from request
    /// lines: health events are rare, requests keep the window moving).
    pub fn advance(&mut self, t: Millis) {
        self.order.advance(t);
        self.release_ready();
    }

    fn release_ready(&mut self) {
        while let Some((at, (host, ev, _))) = self.order.pop_ready() {
            self.apply_health(&host, at, &ev);
        }
        self.settle_previews();
    }

    /// Live: applies, in event-time order, the queued events up to the
    /// newest one that arrived at least `wait` ago (wall clock).
    pub fn release_waited(&mut self, wait: std::time::Duration) {
        if let Some(t) = self.order.waited(wait) {
            while let Some((at, (host, ev, _))) = self.order.pop_until(t) {
                self.apply_health(&host, at, &ev);
            }
            self.settle_previews();
        }
    }

    /// Applies every queued health event, whatever its window: at the end of
    /// the input, or live when no newer event came for the window's length
    /// of wall time.
    pub fn release_all(&mut self) {
        while let Some((at, (host, ev, _))) = self.order.pop() {
            self.apply_health(&host, at, &ev);
        }
        self.settle_previews();
    }

    /// The lines of the health events the reorder window holds, in the
    /// order it will release them.
    pub fn held_lines(&self) -> Vec<&[u8]> {
        self.order
            .held()
            .into_iter()
            .map(|(_, (_, _, line))| &**line)
            .collect()
    }

    /// The runtime API's state of a server, live (see
    /// [`HealthTracker::reconcile`]). A backend with lines still in the
    /// reorder window is left for the next reading: those lines come
    /// first. True when a transition was recorded.
    #[allow(clippy::too_many_arguments)]
    pub fn reconcile(
        &mut self,
        host: &str,
        at: Millis,
        backend: &str,
        server: &str,
        op: crate::haproxy::Op,
        admin: crate::haproxy::Admin,
        since: Option<Millis>,
    ) -> bool {
        let waiting = self
            .order
            .held()
            .into_iter()
            .any(|(_, (h, ev, _))| h == host && ev.backend == backend);
        if waiting || !self.filter.selects(host, backend, Some(server)) {
            return false;
        }
        self.generation += 1;
        let before = self.health.transitions.len();
        let recorded = self
            .health
            .reconcile(host, at, backend, server, op, admin, since);
        if recorded && self.observe {
            // Announced like any transition: the alert rules and the store
            // take it from the events.
            let after = view(&self.health, host, backend);
            for t in &self.health.transitions[before..] {
                self.events
                    .push(StateEvent::Transition(Box::new(t.clone()), after));
            }
        }
        recorded
    }

    /// Applies a health event at its event time, now (see
    /// [`Engine::submit_health`] for the ordered path).
    pub fn apply_health(&mut self, host: &str, at: Millis, ev: &HealthEvent) {
        self.generation += 1;
        if !self.health_admits(host, ev) {
            return;
        }
        // `in_time` is false past --until too, where `apply_to` stops. An
        // arrival order is not a time: it opens no window.
        if self.filter.in_time(at) && !crate::time::is_untimed(at) {
            self.see(at);
        }
        let events = self.observe.then_some(&mut self.events);
        apply_to(&mut self.health, events, &self.filter, host, at, ev);
    }

    /// After a release: what was announced ahead for times the ordered
    /// path has now passed is to be confirmed or withdrawn.
    fn settle_previews(&mut self) {
        if !self.preview || !self.observe {
            return;
        }
        let (next, released) = self.order.next_and_released();
        if let Some(now) = released {
            self.events.push(StateEvent::Released { next, now });
        }
    }

    /// The sequential path: one line, timed and applied at once.
    pub fn ingest_line_now(&mut self, line: &[u8], clock: &mut Clock) {
        let before = (self.last_request, self.last_written);
        let pending = self.ingest_line(line);
        if (self.last_request, self.last_written) != before {
            if let (Some(t), Some(written)) = (self.last_request, self.last_written) {
                clock.observe(self.last_request_host.get(), t, written);
                self.advance(t);
            }
        }
        if let Some(mut p) = pending {
            let at = self.time_of(&mut p, clock);
            if matches!(p.stamp, Stamp::NoYear(_) | Stamp::Local(_)) {
                self.unzoned = Some(at);
            }
            self.submit_health(at, p)
        }
    }

    /// The event time of a health line ([`Clock::resolve`]), counting the
    /// lines timed by their arrival rather than a date (`untimed`).
    pub fn time_of(&mut self, p: &mut PendingHealth, clock: &mut Clock) -> Millis {
        let at = clock.resolve(p.host.as_bytes(), p.stamp);
        p.origin.counted_untimed = clock.arrival_timed(p.stamp, at);
        self.counters.untimed += p.origin.counted_untimed as u64;
        at
    }

    /// The lines read since the last call (with `extra`, another reader's
    /// share of the same input) measure their hosts' clocks. Returns the
    /// hosts whose offset changed.
    pub fn fold_arrivals(
        &mut self,
        extra: Option<(Vec<clocks::Slot>, Option<Millis>)>,
    ) -> Vec<(String, Millis)> {
        if let Some((slots, _)) = extra {
            self.arrivals.absorb(slots);
        }
        if self.arrivals.is_empty() {
            return Vec::new();
        }
        let (batch, _) = self.arrivals.take();
        self.clocks.fold(batch, &self.arrivals)
    }

    /// Merges a worker's request aggregates and counters.
    pub fn merge_worker(&mut self, w: Engine) {
        self.counters.merge(&w.counters);
        self.aggregates.merge(w.aggregates);
        if let (Some(mine), Some(theirs)) = (&mut self.breakdown, w.breakdown) {
            mine.merge(theirs);
        }
        if let (Some(mine), Some(theirs)) = (&mut self.percentiles, &w.percentiles) {
            mine.merge(theirs);
        }
        if let (Some(mine), Some(theirs)) = (&mut self.holes, w.holes) {
            mine.merge(theirs);
        }
        if let (Some(mine), Some(theirs)) = (&mut self.select, &w.select) {
            mine.merge(theirs);
        }
        self.generation += 1;
        for t in [w.first, w.last].into_iter().flatten() {
            self.see_accepted(t);
        }
        if let Some(t) = w.health.window_start {
            self.see_written(t);
        }
    }

    /// The end of a piece of input (a chunk, a file): a line a container runtime
    /// cut into parts whose last part never came is counted unparsed
    /// (each part was counted a line), not kept to be joined with whatever
    /// is read next, and not dropped.
    pub fn end_of_input(&mut self) {
        self.parts_kind = None;
        if self.parts.is_empty() {
            return;
        }
        let parts = std::mem::take(&mut self.parts);
        self.unparsed(&parts);
    }

    /// A whole line not understood: [`Engine::unparsed`], and under the
    /// frontend it names if that frontend has a format of its own.
    fn not_understood(&mut self, line: &[u8]) {
        if let Some(i) = self.patterns.frontend_format_named_in(line) {
            bump(&mut self.counters.unparsed_by_format, i);
        }
        self.unparsed(line);
    }

    /// A line not understood: counted, and kept as a sample while there is
    /// room (`--show-unparsed`).
    fn unparsed(&mut self, line: &[u8]) {
        self.counters.unparsed += 1;
        if self.unparsed_samples.len() < self.sample_limit {
            self.unparsed_samples
                .push(String::from_utf8_lossy(line).into_owned());
        }
    }

    /// Closes the window: call once, after the last event.
    pub fn finish(&mut self) {
        self.end_of_input();
        self.release_all();
        self.counters.duplicates = self.order.duplicates;
        self.counters.late = self.order.late;
        self.counters.stale = self.health.stale;
        self.aggregates.flush();
        let end = match (self.filter.until, self.last) {
            (Some(u), Some(l)) => l.min(u),
            (_, l) => l.unwrap_or(0),
        };
        self.health.finish(end);
    }

    pub fn window(&self) -> (Option<Millis>, Option<Millis>) {
        (
            self.filter.since.or(self.first),
            match (self.filter.until, self.last) {
                (Some(u), Some(l)) => Some(l.min(u)),
                (_, l) => l,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_host_keeps_any_name_whole() {
        let mut h = LastHost::default();
        assert_eq!(h.get(), b"");
        h.set(b"lb1");
        assert_eq!(h.get(), b"lb1");
        let long = "l".repeat(255);
        h.set(long.as_bytes());
        assert_eq!(h.get(), long.as_bytes());
        h.set(b"lb2");
        assert_eq!(h.get(), b"lb2");
        // Every length after a longer and a shorter name: the short copy
        // (up to 16 bytes), the inline one and the long buffer take over
        // from each other.
        for n in 0..=130 {
            let name: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            for before in [long.as_bytes(), b"x".as_slice(), &[b'y'; 40][..]] {
                h.set(before);
                h.set(&name);
                assert_eq!(h.get(), &name[..], "{n} bytes after {}", before.len());
            }
        }
        // Its own cache lines: no other thread's data beside it.
        assert_eq!(std::mem::align_of::<LastHost>(), 128);
        assert_eq!(std::mem::size_of::<LastHost>() % 128, 0);
    }

    fn accept_of(line: &str) -> String {
        let p = Arc::new(PatternSet::builtin());
        let mut e = Engine::new(p, Filter::default());
        e.ingest_line(line.as_bytes());
        crate::time::format_rfc3339_ms(e.last_request.unwrap())
    }

    #[test]
    fn accept_date_is_put_in_utc_from_a_zoned_header() {
        // A host at UTC+1: the accept date says 16:21, the header 15:21Z.
        assert_eq!(
            accept_of("<134>1 2026-11-24T15:21:15.250000+00:00 - haproxy 1 - - 127.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s 0/0/0/10/20 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""),
            "2026-11-24T15:21:15.230Z"
        );
        // UTC-5:30 from rsyslog's file format.
        assert_eq!(
            accept_of("2026-11-24T10:51:15+00:00 lb1 haproxy[1]: 127.0.0.1:1 [24/Nov/2026:05:21:15.000] fe be/s 0/0/0/10/20 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""),
            "2026-11-24T10:51:15.000Z"
        );
        // A UTC host and a 10-minute TCP session: no offset.
        assert_eq!(
            accept_of("<134>1 2026-11-24T16:31:15.300Z - haproxy 1 - - 127.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s 0/1/600000 10 -- 1/1/0/0/0 0/0"),
            "2026-11-24T16:21:15.230Z"
        );
        // No zone in the header (RFC 3164): both clocks are the host's.
        assert_eq!(
            accept_of("<134>Nov 24 15:21:15 haproxy[1]: 127.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s 0/0/0/10/20 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""),
            "2026-11-24T16:21:15.230Z"
        );
    }

    /// HAProxy's own HTTP client (an OCSP update here) logs its requests
    /// in httplog's format with `-/-` for backend and server: other
    /// messages, not a backend `-` with a server `-`; a server named `-`
    /// in a real backend is still one.
    #[test]
    fn haproxys_own_http_client_is_no_backend() {
        let mut e = Engine::new(Arc::new(PatternSet::builtin()), Filter::default());
        for line in [
            "<134>Dec  6 10:00:00 lb1 haproxy[8]: -:- [06/Dec/2026:10:00:00.000] <OCSP-UPDATE> -/- 2/0/-1/-1/3 503 217 - - SC-- 0/0/0/0/3 0/0 \"POST /ocsp HTTP/1.1\"",
            "<134>Dec  6 10:00:00 lb1 haproxy[8]: -:- [06/Dec/2026:10:00:00.000] <HTTPCLIENT> -/- 0/0/1/20/21 200 1402 - - ---- 0/0/0/0/0 0/0 \"GET https://api.example.com/v1 HTTP/1.1\" 0/0000000000000000/0/0/0 api.example.com/TLSv1.3/TLS_AES_256_GCM_SHA384",
            "<133>Dec  6 10:00:00 lb1 haproxy[8]: <OCSP-UPDATE> /etc/haproxy/ssl/site.pem 1 \"Update successful\" 0 1",
            "<134>Dec  6 10:00:01 lb1 haproxy[8]: 10.0.0.1:5000 [06/Dec/2026:10:00:01.000] fe be/- 0/0/1/2/3 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
        ] {
            assert!(e.ingest_line(line.as_bytes()).is_none(), "{line}");
        }
        let c = &e.counters;
        assert_eq!((c.requests, c.other, c.unparsed), (1, 3, 0));
        let kinds: Vec<(&str, u64)> = (c.other_kinds.iter().enumerate())
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (e.patterns.patterns[i].name.as_str(), *n))
            .collect();
        assert_eq!(kinds, [("internal_client", 2), ("ocsp_update", 1)]);
        let servers: Vec<(&str, &str)> = (e.aggregates.servers.iter())
            .map(|(k, _)| (k.backend.as_str(), k.server.as_str()))
            .collect();
        assert_eq!(servers, [("be", "-")]);
    }

    /// A file template that writes the host but no tag (`%TIMESTAMP%
    /// %HOSTNAME% %msg%`): its requests and health events are read under
    /// their host, as the same lines with a tag are.
    #[test]
    fn a_dated_line_with_a_host_and_no_tag_is_read_under_its_host() {
        let mut e = Engine::new(Arc::new(PatternSet::builtin()), Filter::default());
        let req = "2026-11-24T10:00:01+00:00 lb1 10.0.1.2:5000 [24/Nov/2026:10:00:01.000] fe be/s1 0/0/1/2/3 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"";
        assert!(e.ingest_line(req.as_bytes()).is_none());
        let down = "2026-11-24T10:00:04+00:00 lb1 Server be/s1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
        let health = e.ingest_line(down.as_bytes()).expect("a health event");
        assert_eq!(health.host, "lb1");
        // HAProxy's own `iso` format (no host) still reads as it did, and
        // a line no reading understands is counted once.
        let iso = "2026-11-24T10:00:02.123456+00:00 10.0.1.2:5000 [24/Nov/2026:10:00:02.000] fe be/s1 0/0/1/2/3 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"";
        e.ingest_line(iso.as_bytes());
        e.ingest_line(b"2026-11-24T10:00:05+00:00 lb1 no HAProxy message here");
        let c = &e.counters;
        assert_eq!((c.requests, c.health_events, c.unparsed), (2, 1, 1));
        let servers: Vec<(&str, &str, u64)> = e
            .aggregates
            .servers
            .iter()
            .map(|(k, s)| (k.host.as_str(), k.server.as_str(), s.counts.requests))
            .collect();
        assert_eq!(servers, [("lb1", "s1", 1), ("", "s1", 1)]);
    }

    /// What each line with NULs counts as (`Engine::odd_line`): a hole
    /// before a line, a crash's cut-off piece and the line after it, a
    /// NUL-terminated message, a hole alone; and bytes with NULs that are
    /// no log at all, one line not understood.
    #[test]
    fn runs_of_nul_bytes_are_holes_only_before_a_line_that_reads() {
        let down = "<129>Nov 24 16:21:15 lb1 haproxy[1]: Server be/s1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
        let req = "<134>Nov 24 16:21:15 lb1 haproxy[1]: 127.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s1 0/0/0/10/20 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"";
        let counts = |line: Vec<u8>| {
            let mut e = Engine::new(Arc::new(PatternSet::builtin()), Filter::default());
            let health = e.ingest_line(&line).is_some();
            let c = &e.counters;
            (health, c.lines, c.requests, c.unparsed, c.nul_runs)
        };
        let with = |parts: &[&[u8]]| parts.concat();
        let zeros = [0u8; 300];
        // A hole, then a health line: the line, read (and handed back).
        assert_eq!(counts(with(&[&zeros, down.as_bytes()])), (true, 1, 0, 0, 1));
        // A crash: the piece it cut off, NULs, the line written after it.
        assert_eq!(
            counts(with(&[&req.as_bytes()[..50], &zeros, req.as_bytes()])),
            (false, 2, 1, 1, 1)
        );
        // A message ended by a NUL (and two runs).
        assert_eq!(
            counts(with(&[b"\0", req.as_bytes(), b"\0\0"])),
            (false, 1, 1, 0, 2)
        );
        // Nothing but NULs (and blanks): no line.
        assert_eq!(counts(with(&[&zeros, b" ", &zeros])), (false, 0, 0, 0, 2));
        // Bytes with NULs that read as nothing: one line not understood.
        assert_eq!(
            counts(with(&[b"\xff garbage", &zeros, b"more garbage"])),
            (false, 1, 0, 1, 1)
        );
        assert_eq!(counts(with(&[&zeros, b"garbage"])), (false, 1, 0, 1, 1));
    }

    #[test]
    fn globs() {
        assert!(Glob::new("be_*").matches("be_app"));
        assert!(Glob::new("*app*").matches("be_app_2"));
        assert!(!Glob::new("be_*").matches("fe_app"));
        assert!(Glob::new("srv1").matches("srv1"));
        assert!(!Glob::new("srv1").matches("srv10"));
        assert!(Glob::new("-").matches(""));
        assert!(Glob::new("a*b*c").matches("axxbyyc"));
        assert!(!Glob::new("a*b*c").matches("acb"));
    }
}
