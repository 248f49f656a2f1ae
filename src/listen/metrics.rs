//! `/metrics`: Prometheus/OpenMetrics text (prometheus-client's encoder,
//! served by axum).
//!
//! Two kinds of figures. What the receiver did is counted with atomics by
//! the tasks that do it ([`Listener`], [`Shared`]). What hapwatch derives
//! is published by the engine thread after each commit: its counters (a
//! [`Snapshot`]) and, per server, the [`Series`] (state, requests by status
//! class, latency histograms) of the servers that changed since the last
//! publication ([`Publisher`]), kept in a registry a scrape encodes. A
//! scrape never waits for the engine, nor the engine for a scrape.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Counters of one listener (`udp://127.0.0.1:5514`, ...).
#[derive(Debug, Default)]
pub struct Listener {
    pub name: String,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    pub oversized: AtomicU64,
    pub malformed: AtomicU64,
    /// Frames cut short by the end of their connection.
    pub partial: AtomicU64,
    /// Datagrams or frames dropped because the engine was behind (UDP only:
    /// TCP waits instead).
    pub app_drops: AtomicU64,
    /// Kernel receive-queue drops of this socket (UDP, from /proc/net/udp).
    pub kernel_drops: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_idle_closed: AtomicU64,
    /// Connections closed to give their slot to a new one (they had not
    /// sent a whole frame).
    pub connections_reclaimed: AtomicU64,
    /// Sources outside `--allow`.
    pub denied: AtomicU64,
    /// TLS connections closed before their handshake ended (no or a bad
    /// client certificate, not TLS, too slow).
    pub tls_handshakes_failed: AtomicU64,
    /// A journal source's journalctl started again after it ended.
    pub restarts: AtomicU64,
    /// Messages not understood (a subset of `messages`), and the first of
    /// them, for the warning said once when most of a source is.
    pub unparsed: AtomicU64,
    pub first_unparsed: Mutex<Option<String>>,
    pub said_unparsed: std::sync::atomic::AtomicBool,
    /// Health messages with no time of their own, dated by their arrival
    /// (said once).
    pub untimed: AtomicU64,
    pub said_untimed: std::sync::atomic::AtomicBool,
    /// Where the bytes received went, each in exactly one:
    /// `bytes` = processed + oversized + malformed + partial + denied +
    /// dropped (framing goes with its frame).
    pub bytes_to: ByteOutcomes,
}

/// Bytes received by what became of them (`hapwatch_bytes_total`).
#[derive(Debug, Default)]
pub struct ByteOutcomes {
    /// Queued for the engine as messages (and stray separators).
    pub processed: AtomicU64,
    pub oversized: AtomicU64,
    /// Lines with an impossible octet count (queued as lines all the same).
    pub malformed: AtomicU64,
    pub partial: AtomicU64,
    pub denied: AtomicU64,
    /// Datagrams the full queue could not take, or frames read when the
    /// engine had stopped.
    pub dropped: AtomicU64,
}

impl ByteOutcomes {
    pub fn rows(&self) -> [(&'static str, u64); 6] {
        [
            ("processed", self.processed.load(Relaxed)),
            ("oversized", self.oversized.load(Relaxed)),
            ("malformed", self.malformed.load(Relaxed)),
            ("partial", self.partial.load(Relaxed)),
            ("denied", self.denied.load(Relaxed)),
            ("dropped", self.dropped.load(Relaxed)),
        ]
    }
}

/// The engine's counters, as of the last publication.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub parse_unparsed: u64,
    pub parse_oversized: u64,
    /// See `Counters::nul_runs`.
    pub nul_runs: u64,
    pub duplicates: u64,
    pub late: u64,
    pub stale: u64,
    pub skewed: u64,
    /// See `Counters::log_steps`.
    pub log_steps: u64,
    pub dropped_servers: u64,
    pub dropped_hosts: u64,
    /// Alert events announced ahead of the reorder window, and those of
    /// them the ordered state did not confirm (withdrawn).
    pub alert_previews: u64,
    pub alert_previews_unconfirmed: u64,
    pub lines: u64,
    /// Transitions recorded from the runtime API (`--haproxy-socket`).
    pub reconciled: u64,
    /// Messages the journal or rsyslog said it dropped to its rate limit
    /// (`Counters::rate_limited`).
    pub rate_limited: crate::engine::RateLimited,
    /// The newest event time read: an ongoing DOWN counts up to it.
    pub event_now: Option<crate::time::Millis>,
    /// Each host's measured clock offset, seconds (`engine::clocks`).
    pub clock_offsets: Arc<Vec<(String, f64)>>,
}

/// One server's series, as its last update left them.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its state as HAProxy's stats page names it (`UNKNOWN` when only
    /// requests were seen).
    pub state: &'static str,
    /// Requests by status class (other, 1xx..5xx), once it had one.
    pub requests: Option<[u64; 6]>,
    /// Its [`TIMERS`], once they have values.
    pub timers: [Option<Histogram>; 3],
    /// With `--haproxy-config`: whether the configuration declares it.
    pub configured: Option<bool>,
    /// Time DOWN in periods that ended, and since when it is DOWN now.
    pub downtime_ms: i64,
    pub down_since: Option<crate::time::Millis>,
    /// Its last health check as HAProxy's exporter names it.
    pub check: Option<CheckSeries>,
}

/// A server's last health check (a check line, or the reason of a state
/// line), as HAProxy's exporter shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSeries {
    /// One of [`CHECK_STATUSES`].
    pub status: &'static str,
    /// The HTTP status of a layer 7 check.
    pub code: Option<i32>,
    pub duration_seconds: Option<f64>,
}

/// HAProxy's check statuses (`check_statuses[]` in src/check.c: short
/// name, then the description its logs write as the reason), those the
/// exporter's `haproxy_server_check_status` lists (a check that ended).
pub const CHECK_STATUSES: [(&str, &str); 16] = [
    ("HANA", "Health analyze"),
    ("SOCKERR", "Socket error"),
    ("L4OK", "Layer4 check passed"),
    ("L4TOUT", "Layer4 timeout"),
    ("L4CON", "Layer4 connection problem"),
    ("L6OK", "Layer6 check passed"),
    ("L6TOUT", "Layer6 timeout"),
    ("L6RSP", "Layer6 invalid response"),
    ("L7TOUT", "Layer7 timeout"),
    ("L7RSP", "Layer7 invalid response"),
    ("L7OK", "Layer7 check passed"),
    ("L7OKC", "Layer7 check conditionally passed"),
    ("L7STS", "Layer7 wrong status"),
    ("PROCERR", "External check error"),
    ("PROCTOUT", "External check timeout"),
    ("PROCOK", "External check passed"),
];

impl CheckSeries {
    /// The health check `c` as the exporter shows it; `None` for an agent
    /// check (the exporter's `agent_status`, not this) or a reason HAProxy
    /// does not write.
    pub fn of(c: &crate::haproxy::CheckDetails) -> Option<CheckSeries> {
        if c.agent {
            return None;
        }
        let reason = c.reason.as_deref()?;
        let status = CHECK_STATUSES
            .iter()
            .find(|(_, desc)| reason.starts_with(desc))?
            .0;
        Some(CheckSeries {
            status,
            code: c.code,
            duration_seconds: c.duration_ms.map(|d| d as f64 / 1000.0),
        })
    }
}

/// The timers exported, with their label values.
pub const TIMERS: [(crate::haproxy::Timer, &str); 3] = [
    (crate::haproxy::Timer::Tw, "Tw"),
    (crate::haproxy::Timer::Tr, "Tr"),
    (crate::haproxy::Timer::Tt, "Tt"),
];

/// One timer of one server as a Prometheus histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Requests in each bucket of [`BUCKETS`] (not cumulated: the encoder
    /// cumulates), then those above the last bound (`+Inf`).
    pub buckets: [u64; BUCKETS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl Series {
    /// What `/metrics` shows of a server: its health state if it has one,
    /// its request totals if it has them.
    pub fn of(
        health: Option<&crate::engine::state::ServerState>,
        stats: Option<&crate::engine::Stats>,
    ) -> Series {
        Series {
            state: health.map_or("UNKNOWN", |st| st.label().as_str()),
            requests: stats.map(|s| s.counts.status),
            timers: TIMERS.map(|(t, _)| stats.and_then(|s| s.timer(t)).map(|t| histogram(&t))),
            configured: None,
            downtime_ms: health.map_or(0, |st| {
                st.time_in
                    .get(&crate::model::Label::Down)
                    .copied()
                    .unwrap_or(0)
            }),
            down_since: health
                .filter(|st| st.label() == crate::model::Label::Down)
                .and_then(|st| st.since)
                .filter(|&t| !crate::time::is_untimed(t)),
            check: health
                .and_then(|st| st.last_check.as_ref())
                .and_then(CheckSeries::of),
        }
    }
}

/// The per-server series: updated by the engine thread after each commit,
/// for the servers that changed since the last update only; read whole by
/// a scrape. A scrape costs what the text weighs, the engine costs what
/// changed: neither rebuilds the other's work (with 100,000 servers a
/// rebuild took a second of the engine thread).
#[derive(Debug, Default)]
pub struct Publisher {
    /// The first update reads every server (those loaded at start too);
    /// later ones read the servers the engine lists as touched.
    following: bool,
    /// Updates the scrape's registry could not take yet (a scrape was
    /// reading it): the engine never waits for a scrape.
    pending: rustc_hash::FxHashMap<crate::model::ServerKey, Series>,
    /// Series updated by the last publication (with those a scrape kept
    /// waiting).
    pub updated: usize,
    /// The servers `--haproxy-config` declares: listed for every host as
    /// soon as the host logs anything (in the state HAProxy starts them
    /// in), and each series marked declared or not.
    inventory: Option<Arc<crate::inventory::Inventory>>,
    /// Hosts whose declared servers are listed.
    hosts: std::collections::HashSet<String>,
    /// The hosts' clock offsets as last shown, and the engine's version of
    /// them then: rebuilt only when one changed.
    clocks: (u64, Arc<Vec<(String, f64)>>),
}

impl Publisher {
    /// Each host's measured clock offset, in seconds.
    pub fn clock_offsets(
        &mut self,
        c: &crate::engine::clocks::HostClocks,
    ) -> Arc<Vec<(String, f64)>> {
        if self.clocks.0 != c.version {
            let offsets = c
                .hosts
                .iter()
                .filter_map(|(h, c)| c.offset.map(|o| (h.clone(), o as f64 / 1000.0)))
                .collect();
            self.clocks = (c.version, Arc::new(offsets));
        }
        self.clocks.1.clone()
    }

    /// Sets (or replaces, at SIGHUP) the configuration's servers: every
    /// host is listed again at the next publication.
    pub fn set_inventory(&mut self, inv: Option<Arc<crate::inventory::Inventory>>) {
        self.inventory = inv;
        self.hosts.clear();
        self.following = false;
    }

    /// `s` set against the configuration, if there is one.
    fn mark(&self, k: &crate::model::ServerKey, mut s: Series) -> Series {
        let Some(m) = self
            .inventory
            .as_ref()
            .and_then(|inv| inv.mark(&k.backend, &k.server))
        else {
            return s;
        };
        s.configured = Some(m.declared.is_some());
        if let (Some(c), "UNKNOWN") = (m.declared, s.state) {
            s.state = c.initial().0.as_str();
        }
        s
    }

    /// Publishes the engine's counters and the series of the servers that
    /// changed since the last call.
    pub fn publish(
        &mut self,
        engine: &mut crate::engine::Engine,
        counters: Snapshot,
        shared: &Shared,
    ) {
        use crate::engine::Reader;
        // Straight into the registry when no scrape is reading it and no
        // older update waits: a server's key is then copied only when it
        // is new there (a copy of every changed server's three names at
        // every publication was a tenth of the engine thread's time with
        // 10,000 busy servers). The configuration's marks go by `pending`.
        let mut registry = match (&self.inventory, self.pending.is_empty()) {
            (None, true) => shared.series.try_lock().ok(),
            _ => None,
        };
        let mut direct = 0;
        let mut put =
            |pending: &mut rustc_hash::FxHashMap<_, _>, k: &crate::model::ServerKey, s: Series| {
                let Some(r) = registry.as_deref_mut() else {
                    pending.insert(k.clone(), s);
                    return;
                };
                direct += 1;
                match r.get_mut(k) {
                    Some(old) => *old = s,
                    None => drop(r.insert(k.clone(), s)),
                }
            };
        if !self.following {
            self.following = true;
            engine.health.touched.follow(Reader::Metrics);
            engine.aggregates.touched.follow(Reader::Metrics);
            for (k, st) in &engine.health.servers {
                let series = Series::of(Some(st), engine.aggregates.find(k));
                put(&mut self.pending, k, series);
            }
            // A server with a health state is published above, its
            // requests with it: once per publication, as `pending` counted.
            for (k, stats) in &engine.aggregates.servers {
                if !engine.health.servers.contains_key(k) {
                    put(&mut self.pending, k, Series::of(None, Some(stats)));
                }
            }
        } else {
            let health = engine.health.take_touched(Reader::Metrics);
            for k in &health {
                let series = Series::of(engine.health.servers.get(k), engine.aggregates.find(k));
                put(&mut self.pending, k, series);
            }
            let health: rustc_hash::FxHashSet<_> = health.iter().collect();
            for i in engine.aggregates.take_touched(Reader::Metrics) {
                let (k, stats) = &engine.aggregates.servers[i];
                if !health.contains(k) {
                    let series = Series::of(engine.health.servers.get(k), Some(stats));
                    put(&mut self.pending, k, series);
                }
            }
        }
        let direct = registry.take().map(|_| direct);
        if let Some(inv) = self.inventory.clone() {
            let keys: Vec<crate::model::ServerKey> = self.pending.keys().cloned().collect();
            for k in keys {
                let series = self.pending.remove(&k).expect("listed");
                let series = self.mark(&k, series);
                self.pending.insert(k.clone(), series);
                if self.hosts.insert(k.host.clone()) {
                    // A new host: the servers it has not logged yet.
                    for c in inv.servers() {
                        let key = crate::model::ServerKey {
                            host: k.host.clone(),
                            backend: c.backend.clone(),
                            server: c.server.clone(),
                        };
                        if !self.pending.contains_key(&key)
                            && !engine.health.servers.contains_key(&key)
                            && engine.aggregates.find(&key).is_none()
                        {
                            let series = self.mark(&key, Series::of(None, None));
                            self.pending.insert(key, series);
                        }
                    }
                }
            }
        }
        self.updated = direct.unwrap_or(self.pending.len());
        if !self.pending.is_empty() {
            if let Ok(mut series) = shared.series.try_lock() {
                series.extend(self.pending.drain());
            }
        }
        *shared.snapshot.lock().expect("snapshot lock") = counters;
        shared.published.fetch_add(1, Relaxed);
    }
}

/// Everything a scrape reads.
#[derive(Debug, Default)]
pub struct Shared {
    pub listeners: Vec<Arc<Listener>>,
    pub queue_depth: AtomicU64,
    pub queue_capacity: AtomicU64,
    /// Last database commit, microseconds, and how many.
    pub db_batch_us: AtomicU64,
    pub db_batches: AtomicU64,
    pub db_errors: AtomicU64,
    /// `--haproxy-socket`: readings of `show servers state`, and those
    /// that failed.
    pub runtime_api_reads: AtomicU64,
    pub runtime_api_errors: AtomicU64,
    /// Rows (server-minutes, transitions, alert events) waiting for a
    /// commit the database refused.
    pub db_unstored: AtomicU64,
    pub snapshot: Mutex<Snapshot>,
    /// Every server's series (see [`Publisher`]), in the order they are
    /// shown.
    pub series: Mutex<std::collections::BTreeMap<crate::model::ServerKey, Series>>,
    /// A scrape is waiting for a fresh publication (the engine publishes
    /// after each commit, and when asked).
    pub wanted: std::sync::atomic::AtomicBool,
    /// Snapshots published so far (a scrape waits for the next one).
    pub published: AtomicU64,
    /// The whole-hour offset by which a sender's dates without a zone sit
    /// from the receive time (0: none seen): `--tz` unset or wrong.
    pub zone_suspect_seconds: std::sync::atomic::AtomicI64,
    /// What the courier's tries came to, by sink.
    pub deliveries: Arc<crate::delivery::Outcomes>,
}

/// HAProxy's stats page states, all exported so that a state that is not
/// current reads 0 (Prometheus alert rules need the series to exist).
pub const STATES: [&str; 6] = ["UP", "DOWN", "STOPPING", "MAINT", "DRAIN", "UNKNOWN"];

/// Messages of a source after which it is judged (fewer say too little).
const JUDGED_AFTER: u64 = 20;

impl Listener {
    /// One of its messages was not understood.
    pub fn unparsed_line(&self, line: &[u8]) {
        self.unparsed.fetch_add(1, Relaxed);
        let mut first = self.first_unparsed.lock().expect("first_unparsed lock");
        if first.is_none() {
            *first = Some(String::from_utf8_lossy(&line[..line.len().min(300)]).into_owned());
        }
    }

    /// `n` of its health messages had no time of their own (HAProxy's
    /// stderr since 2.3) and were dated by their receive time: counted, and
    /// said once on stderr.
    pub fn untimed_lines(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.untimed.fetch_add(n, Relaxed);
        if !self.said_untimed.swap(true, Relaxed) {
            crate::say!(
                "hapwatch: {}: health messages with no time of their own (HAProxy's stderr, \
                 `docker logs` without -t) are dated by their receive time \
                 (hapwatch_messages_untimed_total); a `log` target or the runtime's \
                 timestamps give HAProxy's own times",
                self.name
            );
        }
    }

    /// Says once, on stderr, when more than half of a source's messages
    /// were not understood: with one of them and the form it is nearest.
    pub fn say_if_mostly_unparsed(&self) {
        let (seen, bad) = (self.messages.load(Relaxed), self.unparsed.load(Relaxed));
        if seen < JUDGED_AFTER || bad * 2 <= seen || self.said_unparsed.swap(true, Relaxed) {
            return;
        }
        let line = self
            .first_unparsed
            .lock()
            .expect("first_unparsed lock")
            .clone()
            .unwrap_or_default();
        crate::say!(
            "hapwatch: {}: {bad} of the first {seen} messages not understood \
             (hapwatch_messages_unparsed_total), e.g.:\n    {line}\n  nearest known form: {}",
            self.name,
            crate::engine::diagnose::nearest_form(line.as_bytes())
        );
    }
}

#[derive(Debug)]
struct Collector(Arc<Shared>);

/// A label value as the exposition format needs it: backslash, double
/// quote and newline escaped. prometheus-client writes values as given, and
/// names come from the network: one datagram naming a backend `be"q` made
/// the whole scrape unreadable, and a server named `s",evil="1` added a
/// label.
#[derive(Debug)]
struct Escaped<S>(S);

impl<S: AsRef<str>> prometheus_client::encoding::EncodeLabelValue for Escaped<S> {
    fn encode(&self, enc: &mut prometheus_client::encoding::LabelValueEncoder) -> std::fmt::Result {
        use std::fmt::Write;
        let mut rest = self.0.as_ref();
        while let Some(i) = rest.find(['\\', '"', '\n']) {
            enc.write_str(&rest[..i])?;
            enc.write_str(match rest.as_bytes()[i] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[i + 1..];
        }
        enc.write_str(rest)
    }
}

/// A server's labels and one more, borrowed (a scrape of 100,000 servers
/// allocates none).
fn labels<'a>(
    k: &'a crate::model::ServerKey,
    last: (&'static str, &'a str),
) -> [(&'static str, Escaped<&'a str>); 4] {
    [
        ("host", Escaped(k.host.as_str())),
        ("backend", Escaped(k.backend.as_str())),
        ("server", Escaped(k.server.as_str())),
        (last.0, Escaped(last.1)),
    ]
}

/// A server's labels with the HAProxy exporter's name for its backend
/// (`proxy`).
fn proxy_labels<'a>(
    k: &'a crate::model::ServerKey,
    last: Option<(&'static str, &'a str)>,
) -> Vec<(&'static str, Escaped<&'a str>)> {
    let mut l = vec![
        ("host", Escaped(k.host.as_str())),
        ("proxy", Escaped(k.backend.as_str())),
        ("server", Escaped(k.server.as_str())),
    ];
    if let Some((n, v)) = last {
        l.push((n, Escaped(v)));
    }
    l
}

/// The states of the HAProxy exporter's `haproxy_server_status`.
const EXPORTER_STATES: [&str; 5] = ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"];

/// A server's state in the exporter's words (STOPPING is NOLB there). One
/// that gets requests and has no health line yet is UP: HAProxy sends
/// none to a server it holds DOWN, and a server without `check` is UP for
/// it (the fleet rules count it so too). `<NOSRV>` is no server.
fn exporter_state(k: &crate::model::ServerKey, v: &Series) -> Option<&'static str> {
    if crate::inventory::is_placeholder(&k.server) {
        return None;
    }
    Some(match v.state {
        "UNKNOWN" if v.requests.is_some() => "UP",
        "UP" => "UP",
        "DOWN" => "DOWN",
        "STOPPING" => "NOLB",
        "MAINT" => "MAINT",
        "DRAIN" => "DRAIN",
        _ => return None,
    })
}

/// A server's labels alone.
fn labels3(k: &crate::model::ServerKey) -> [(&'static str, Escaped<&str>); 3] {
    [
        ("host", Escaped(k.host.as_str())),
        ("backend", Escaped(k.backend.as_str())),
        ("server", Escaped(k.server.as_str())),
    ]
}

/// Label pairs with their values escaped.
fn escaped(labels: Vec<(&'static str, String)>) -> Vec<(&'static str, Escaped<String>)> {
    labels.into_iter().map(|(k, v)| (k, Escaped(v))).collect()
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Vec<(&'static str, String)>, u64)>,
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(m.encode_family(&escaped(labels))?)?;
    }
    Ok(())
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Vec<(&'static str, String)>, i64)>,
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(v).encode(m.encode_family(&escaped(labels))?)?;
    }
    Ok(())
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.0;
        let per = |f: fn(&Listener) -> &AtomicU64| {
            s.listeners
                .iter()
                .map(move |l| (vec![("listener", l.name.clone())], f(l).load(Relaxed)))
                .collect::<Vec<_>>()
        };
        counter(
            &mut enc,
            "hapwatch_messages_received",
            "Frames received",
            per(|l| &l.messages),
        )?;
        counter(
            &mut enc,
            "hapwatch_bytes_received",
            "Bytes received",
            per(|l| &l.bytes),
        )?;
        counter(
            &mut enc,
            "hapwatch_journal_restarts",
            "journalctl children started again after they ended (--journal, --journal-dir)",
            s.listeners
                .iter()
                .filter(|l| l.name.starts_with("journal"))
                .map(|l| (vec![("listener", l.name.clone())], l.restarts.load(Relaxed)))
                .collect::<Vec<_>>(),
        )?;
        counter(
            &mut enc,
            "hapwatch_messages_unparsed",
            "Messages received and not understood (HAProxy lines in a form hapwatch \
             does not read, or not HAProxy's)",
            per(|l| &l.unparsed),
        )?;
        counter(
            &mut enc,
            "hapwatch_messages_untimed",
            "Health messages with no time of their own (HAProxy's stderr), dated by \
             their receive time",
            per(|l| &l.untimed),
        )?;
        counter(
            &mut enc,
            "hapwatch_bytes",
            "Bytes received by what became of them, each byte in one outcome \
             (processed, oversized, malformed, partial, denied, dropped); they add up to \
             hapwatch_bytes_received",
            s.listeners.iter().flat_map(|l| {
                l.bytes_to
                    .rows()
                    .map(|(o, v)| (vec![("listener", l.name.clone()), ("outcome", o.into())], v))
            }),
        )?;
        counter(
            &mut enc,
            "hapwatch_frames_oversized",
            "Frames over --max-frame, dropped",
            per(|l| &l.oversized),
        )?;
        counter(
            &mut enc,
            "hapwatch_frames_malformed",
            "Frames with an octet count no frame can have, read as a line",
            per(|l| &l.malformed),
        )?;
        counter(
            &mut enc,
            "hapwatch_frames_partial",
            "Frames cut short by the end of their connection (closed, idle, shutdown), dropped",
            per(|l| &l.partial),
        )?;
        counter(
            &mut enc,
            "hapwatch_udp_app_drops",
            "Datagrams dropped because the engine was behind",
            per(|l| &l.app_drops),
        )?;
        counter(
            &mut enc,
            "hapwatch_udp_kernel_drops",
            "Datagrams the kernel dropped (receive buffer full)",
            per(|l| &l.kernel_drops),
        )?;
        counter(
            &mut enc,
            "hapwatch_tcp_connections",
            "TCP connections accepted",
            per(|l| &l.connections_total),
        )?;
        counter(
            &mut enc,
            "hapwatch_tcp_connections_refused",
            "TCP connections refused (--max-connections)",
            per(|l| &l.connections_refused),
        )?;
        counter(
            &mut enc,
            "hapwatch_tcp_connections_idle_closed",
            "TCP connections closed after --idle-timeout",
            per(|l| &l.connections_idle_closed),
        )?;
        counter(
            &mut enc,
            "hapwatch_tcp_connections_reclaimed",
            "TCP connections closed to give their slot to a new one (no whole frame sent yet)",
            per(|l| &l.connections_reclaimed),
        )?;
        counter(
            &mut enc,
            "hapwatch_tls_handshakes_failed",
            "TLS connections closed before their handshake ended (no or an untrusted client \
             certificate, not TLS, slower than --first-frame-timeout)",
            per(|l| &l.tls_handshakes_failed),
        )?;
        counter(
            &mut enc,
            "hapwatch_sources_denied",
            "Messages or connections from outside --allow",
            per(|l| &l.denied),
        )?;
        gauge(
            &mut enc,
            "hapwatch_tcp_connections_open",
            "TCP connections open",
            per(|l| &l.connections_open)
                .into_iter()
                .map(|(l, v)| (l, v as i64)),
        )?;
        gauge(
            &mut enc,
            "hapwatch_unzoned_offset_suspected_seconds",
            "Whole hours by which dates written without a zone sit from the receive time \
             (0: none): the HAProxy host's zone, to give with --tz",
            [(vec![], s.zone_suspect_seconds.load(Relaxed))],
        )?;
        gauge(
            &mut enc,
            "hapwatch_queue_depth",
            "Frames waiting for the engine",
            [(vec![], s.queue_depth.load(Relaxed) as i64)],
        )?;
        gauge(
            &mut enc,
            "hapwatch_queue_capacity",
            "Frames the queue holds",
            [(vec![], s.queue_capacity.load(Relaxed) as i64)],
        )?;
        {
            // Base units: seconds (the commit is timed in microseconds).
            let mut m = enc.encode_descriptor(
                "hapwatch_db_batch_seconds",
                "Duration of the last database commit",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(s.db_batch_us.load(Relaxed) as f64 / 1e6)
                .encode(m.encode_family(&escaped(Vec::new()))?)?;
        }
        counter(
            &mut enc,
            "hapwatch_db_batches",
            "Database commits",
            [(vec![], s.db_batches.load(Relaxed))],
        )?;
        counter(
            &mut enc,
            "hapwatch_runtime_api_reads",
            "Readings of `show servers state` from --haproxy-socket",
            [(vec![], s.runtime_api_reads.load(Relaxed))],
        )?;
        counter(
            &mut enc,
            "hapwatch_runtime_api_errors",
            "Readings of --haproxy-socket that failed",
            [(vec![], s.runtime_api_errors.load(Relaxed))],
        )?;
        counter(
            &mut enc,
            "hapwatch_reconciled",
            "Transitions recorded because the runtime API or a SIGHUP dump showed a state no line told (lost datagrams)",
            [(vec![], s.snapshot.lock().expect("snapshot lock").reconciled)],
        )?;
        counter(
            &mut enc,
            "hapwatch_db_errors",
            "Database commits that failed",
            [(vec![], s.db_errors.load(Relaxed))],
        )?;
        gauge(
            &mut enc,
            "hapwatch_db_unstored_rows",
            "Server-minutes, transitions and alert events waiting for a commit the database refused",
            [(vec![], s.db_unstored.load(Relaxed) as i64)],
        )?;

        let snap = s.snapshot.lock().expect("snapshot lock").clone();
        counter(
            &mut enc,
            "hapwatch_lines",
            "Messages parsed",
            [(vec![], snap.lines)],
        )?;
        counter(
            &mut enc,
            "hapwatch_parse_failures",
            "Messages not understood, by kind",
            [
                (vec![("kind", "unparsed".to_string())], snap.parse_unparsed),
                (
                    vec![("kind", "oversized".to_string())],
                    snap.parse_oversized,
                ),
            ],
        )?;
        counter(
            &mut enc,
            "hapwatch_nul_runs",
            "Runs of NUL bytes read where lines should be (a file copytruncated under a writer that does not append, or zeroed by a crash): skipped, the line after each read",
            [(vec![], snap.nul_runs)],
        )?;
        counter(
            &mut enc,
            "hapwatch_upstream_rate_limited",
            "Messages the journal or rsyslog said it dropped to its rate limit before any log kept them, by daemon and what its notice names",
            snap.rate_limited.iter().flat_map(|(by, sources)| {
                sources
                    .iter()
                    .map(|(from, n)| (vec![("by", by.to_string()), ("from", from.clone())], *n))
            }),
        )?;
        counter(
            &mut enc,
            "hapwatch_health_duplicates",
            "Health messages received twice, applied once",
            [(vec![], snap.duplicates)],
        )?;
        counter(
            &mut enc,
            "hapwatch_health_late",
            "Health messages older than the reorder window",
            [(vec![], snap.late)],
        )?;
        counter(
            &mut enc,
            "hapwatch_health_stale",
            "State lines older than a state already applied to their server (not applied)",
            [(vec![], snap.stale)],
        )?;
        counter(
            &mut enc,
            "hapwatch_series_dropped",
            "Lines of servers or hosts past --max-servers / --max-hosts (counted, not kept)",
            [
                (vec![("kind", "server".to_string())], snap.dropped_servers),
                (vec![("kind", "host".to_string())], snap.dropped_hosts),
            ],
        )?;
        counter(
            &mut enc,
            "hapwatch_lines_skewed",
            "Lines dated more than --max-skew after their receive time (quarantined, not applied)",
            [(vec![], snap.skewed)],
        )?;
        counter(
            &mut enc,
            "hapwatch_lines_log_steps",
            "Request lines written before their transaction ended (HAProxy's log-steps): not requests",
            [(vec![], snap.log_steps)],
        )?;
        counter(
            &mut enc,
            "hapwatch_alert_previews",
            "Alert events announced as their line arrived, ahead of the reorder window",
            [(vec![], snap.alert_previews)],
        )?;
        counter(
            &mut enc,
            "hapwatch_alert_previews_unconfirmed",
            "Alert events announced ahead that the event-time order did not confirm",
            [(vec![], snap.alert_previews_unconfirmed)],
        )?;
        counter(
            &mut enc,
            "hapwatch_alert_deliveries",
            "Alert deliveries tried, by sink and outcome (delivered; failed and retried; failed for good, dead-lettered)",
            s.deliveries.snapshot().into_iter().flat_map(|(sink, c)| {
                crate::delivery::OUTCOMES
                    .iter()
                    .zip(c)
                    .map(move |(o, n)| (vec![("sink", sink.clone()), ("outcome", o.to_string())], n))
            }),
        )?;
        let mut m = enc.encode_descriptor(
            "hapwatch_host_clock_offset_seconds",
            "How far a load balancer's dates run ahead of their receive time (negative: behind), from its fastest line of the last minute or two",
            None,
            MetricType::Gauge,
        )?;
        for (host, o) in snap.clock_offsets.iter() {
            ConstGauge::new(*o).encode(m.encode_family(&[("host", Escaped(host.as_str()))])?)?;
        }
        gauge(
            &mut enc,
            "hapwatch_build_info",
            "1, labelled with the version of hapwatch that serves these metrics",
            [(vec![("version", env!("CARGO_PKG_VERSION").to_string())], 1)],
        )?;
        // Every server's series, read under the registry's lock: the
        // engine does not wait for it (it keeps its updates for later).
        let series = s.series.lock().expect("series lock");
        let mut m = enc.encode_descriptor(
            "hapwatch_server_state",
            "1 for the server's current state (as HAProxy's stats page shows it)",
            None,
            MetricType::Gauge,
        )?;
        for (k, v) in series.iter() {
            for st in STATES {
                ConstGauge::new((st == v.state) as i64)
                    .encode(m.encode_family(&labels(k, ("state", st)))?)?;
            }
        }
        // The same in the HAProxy exporter's terms (`haproxy_server_status`
        // of HAProxy's own promex: label `proxy`, states DOWN, UP, MAINT,
        // DRAIN, NOLB), so that queries written for it read hapwatch; a
        // server with neither a health line nor a request has none.
        let mut m = enc.encode_descriptor(
            "hapwatch_server_status",
            "1 for the server's current state, labels and values as HAProxy's Prometheus exporter writes them (proxy; DOWN, UP, MAINT, DRAIN, NOLB)",
            None,
            MetricType::Gauge,
        )?;
        for (k, v) in series.iter() {
            let Some(now) = exporter_state(k, v) else {
                continue;
            };
            for st in EXPORTER_STATES {
                ConstGauge::new((st == now) as i64)
                    .encode(m.encode_family(&proxy_labels(k, Some(("state", st))))?)?;
            }
        }
        // A backend, as the exporter's `haproxy_backend_status`: UP while
        // one of its servers is UP, else DOWN ("no server available").
        let mut backends: std::collections::BTreeMap<(&str, &str), bool> = Default::default();
        for (k, v) in series.iter() {
            let Some(now) = exporter_state(k, v) else {
                continue;
            };
            *backends
                .entry((k.host.as_str(), k.backend.as_str()))
                .or_default() |= now == "UP";
        }
        let mut m = enc.encode_descriptor(
            "hapwatch_backend_status",
            "1 for the backend's current state as HAProxy's Prometheus exporter writes it (UP while a server is UP, else DOWN)",
            None,
            MetricType::Gauge,
        )?;
        for ((host, backend), up) in backends {
            for (st, on) in [("UP", up), ("DOWN", !up)] {
                ConstGauge::new(on as i64).encode(m.encode_family(&[
                    ("host", Escaped(host)),
                    ("proxy", Escaped(backend)),
                    ("state", Escaped(st)),
                ])?)?;
            }
        }
        // Downtime as the exporter's `haproxy_server_downtime_seconds_total`:
        // time DOWN, an ongoing DOWN up to the newest event time.
        let mut m = enc.encode_descriptor(
            "hapwatch_server_downtime_seconds",
            "Time the server spent DOWN (event time, an ongoing DOWN up to the newest line), as HAProxy's exporter's haproxy_server_downtime_seconds_total",
            None,
            MetricType::Counter,
        )?;
        for (k, v) in series.iter() {
            if v.state == "UNKNOWN" {
                continue;
            }
            let ongoing = match (v.down_since, snap.event_now) {
                (Some(since), Some(now)) => (now - since).max(0),
                _ => 0,
            };
            ConstCounter::new((v.downtime_ms + ongoing) as f64 / 1000.0)
                .encode(m.encode_family(&proxy_labels(k, None))?)?;
        }
        // The last health check, in the exporter's terms
        // (`haproxy_server_check_status`, `_check_code`,
        // `_check_duration_seconds`).
        let mut m = enc.encode_descriptor(
            "hapwatch_server_check_status",
            "1 for the status of the server's last health check logged, as HAProxy's exporter's haproxy_server_check_status (state: L4OK, L4CON, L7STS, ...)",
            None,
            MetricType::Gauge,
        )?;
        for (k, v) in series.iter() {
            let Some(c) = &v.check else { continue };
            for (st, _) in CHECK_STATUSES {
                ConstGauge::new((st == c.status) as i64)
                    .encode(m.encode_family(&proxy_labels(k, Some(("state", st))))?)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "hapwatch_server_check_code",
            "HTTP status of the server's last layer 7 health check logged (0 when it had none)",
            None,
            MetricType::Gauge,
        )?;
        for (k, v) in series.iter() {
            let Some(c) = &v.check else { continue };
            ConstGauge::new(c.code.unwrap_or(0) as i64)
                .encode(m.encode_family(&proxy_labels(k, None))?)?;
        }
        let mut m = enc.encode_descriptor(
            "hapwatch_server_check_duration_seconds",
            "Duration of the server's last health check logged",
            None,
            MetricType::Gauge,
        )?;
        for (k, v) in series.iter() {
            let Some(d) = v.check.as_ref().and_then(|c| c.duration_seconds) else {
                continue;
            };
            ConstGauge::new(d).encode(m.encode_family(&proxy_labels(k, None))?)?;
        }
        if series.values().any(|v| v.configured.is_some()) {
            let mut m = enc.encode_descriptor(
                "hapwatch_server_configured",
                "1 if --haproxy-config declares the server, 0 if it logs without being declared",
                None,
                MetricType::Gauge,
            )?;
            for (k, v) in series.iter() {
                let Some(c) = v.configured else { continue };
                ConstGauge::new(c as i64).encode(m.encode_family(&labels3(k))?)?;
            }
        }
        const CLASSES: [&str; 6] = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];
        let mut m = enc.encode_descriptor(
            "hapwatch_requests",
            "Requests logged, by server and status class",
            None,
            MetricType::Counter,
        )?;
        for (k, v) in series.iter() {
            let Some(by) = &v.requests else { continue };
            for (c, n) in CLASSES.iter().zip(by) {
                ConstCounter::new(*n).encode(m.encode_family(&labels(k, ("class", c)))?)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "hapwatch_request_seconds",
            "HAProxy timers per server (Tw queue, Tr server response, Tt session)",
            None,
            MetricType::Histogram,
        )?;
        for (k, v) in series.iter() {
            for ((_, name), h) in TIMERS.iter().zip(&v.timers) {
                let Some(h) = h else { continue };
                let mut buckets = [(f64::MAX, 0); BUCKETS.len() + 1];
                for (i, n) in h.buckets.iter().enumerate() {
                    buckets[i] = (BUCKETS.get(i).copied().unwrap_or(f64::MAX), *n);
                }
                m.encode_family(&labels(k, ("timer", name)))?
                    .encode_histogram::<Vec<(String, String)>>(
                        h.sum_seconds,
                        h.count,
                        &buckets,
                        None,
                    )?;
            }
        }
        Ok(())
    }
}

/// Bucket bounds (seconds) of the latency histograms.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One timer as a Prometheus histogram: one pass over the HDR
/// histogram's recorded values. A value counts in the first bucket whose
/// bound its HDR bin starts at or below (the bin's values are equivalent
/// at 2 significant digits, so 5 ms and 5.04 ms are one value).
pub fn histogram(ts: &crate::engine::stats::TimerStats) -> Histogram {
    let bounds = BUCKETS.map(|le| (le * 1000.0) as u64);
    let mut buckets = [0u64; BUCKETS.len() + 1];
    // Values still waiting in the timer's small-value array are read where
    // they are: a flushed copy of each timer was a histogram allocated and
    // freed per timer and server at every publication (with 10,000 busy
    // servers, a fifth of the engine thread's time).
    ts.for_each_held(|low, n| {
        let i = bounds.partition_point(|&b| b < low);
        buckets[i] += n;
    });
    Histogram {
        buckets,
        sum_seconds: ts.sum as f64 / 1000.0,
        count: ts.count(),
    }
}

/// `/metrics` in OpenMetrics text (what prometheus-client writes), whole.
#[cfg(test)]
pub fn render(shared: &Arc<Shared>) -> String {
    let mut out = String::new();
    write(shared, &mut out, true).expect("writing to a String cannot fail");
    out
}

/// Writes `/metrics` to `out`: OpenMetrics text, or (not `openmetrics`)
/// Prometheus' text format, the same samples.
pub fn write(
    shared: &Arc<Shared>,
    out: &mut impl std::fmt::Write,
    openmetrics: bool,
) -> std::fmt::Result {
    use prometheus_client::encoding::text;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Collector(shared.clone())));
    if openmetrics {
        text::encode(out, &registry)
    } else {
        let mut p = super::exposition::PromText::new(out);
        text::encode_registry(&mut p, &registry)?;
        p.finish().map(drop)
    }
}

/// Serves `/metrics` on an already bound listener until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    use super::exposition::{Chunks, IN_FLIGHT};
    use axum::{body::Body, http::header, routing::get, Router};
    let app = Router::new().route(
        "/metrics",
        get(move |headers: axum::http::HeaderMap| {
            let shared = shared.clone();
            // Prometheus asks for OpenMetrics; anything else gets
            // Prometheus' text format.
            let openmetrics = headers
                .get(header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains("application/openmetrics-text"));
            async move {
                // Ask the engine for a fresh publication and wait for it (it
                // looks every 50 ms, and a publication costs what changed
                // since the last), at most 3 s; else serve the last one.
                let before = shared.published.load(Relaxed);
                shared.wanted.store(true, Relaxed);
                for _ in 0..300 {
                    if shared.published.load(Relaxed) != before {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                let content_type = if openmetrics {
                    "application/openmetrics-text; version=1.0.0; charset=utf-8"
                } else {
                    "text/plain; version=0.0.4; charset=utf-8"
                };
                // Encoding 100,000 servers takes a while: not on a thread
                // that serves the runtime's other tasks. The text goes out
                // in chunks as it is encoded (see exposition.rs).
                let (tx, rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
                let rt = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    let mut chunks = Chunks::new(tx, rt);
                    let written = write(&shared, &mut chunks, openmetrics);
                    chunks.finish(written);
                });
                let body = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|piece| (piece, rx))
                });
                (
                    [(header::CONTENT_TYPE, content_type)],
                    Body::from_stream(body),
                )
            }
        }),
    );
    // The body leaves in chunks: without TCP_NODELAY each chunk's short
    // tail waits for the client's delayed ACK (40 ms), and a scrape of
    // 37 MB took 6 s instead of 0.3.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let _ = axum::serve(listener, app).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::{Clock, Engine, Filter};

    fn request(backend: usize, server: usize, tr: u32, status: u16) -> String {
        format!(
            "<134>Nov 24 16:21:15 lb1 haproxy[1]: 127.0.0.1:1 [24/Nov/2026:16:21:15.230] fe \
             be{backend}/s{server} 0/0/0/{tr}/{tr} {status} 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""
        )
    }

    /// One line, applied at once (health events past the reorder window).
    fn feed(e: &mut Engine, line: &[u8]) {
        let mut clock = Clock::new(crate::time::YearResolver::new(2026, None));
        e.ingest_line_now(line, &mut clock);
        e.release_all();
    }

    fn engine() -> Engine {
        Engine::new(
            Arc::new(crate::patterns::PatternSet::builtin()),
            Filter::default(),
        )
    }

    /// The scrape of `engine` by a publisher that never saw it before (it
    /// reads every server).
    fn from_scratch(engine: &mut Engine) -> String {
        let shared = Arc::new(Shared::default());
        Publisher::default().publish(engine, Snapshot::default(), &shared);
        render(&shared)
    }

    /// A server that gets requests and has no health line yet (no `check`,
    /// or checks that never failed: HAProxy logs changes) is UP in the
    /// exporter's series, as HAProxy's own exporter has it and as the fleet
    /// rules count it; its backend is UP through it. Before, it had no
    /// `hapwatch_server_status` at all, and a backend whose one checked
    /// server went DOWN read DOWN ("no server available", the contrib
    /// rule's page) while its other server took every request; and the
    /// contrib fleet rule counted only the hosts with a health line.
    /// `hapwatch_server_state` keeps hapwatch's own `UNKNOWN`.
    #[test]
    fn a_server_that_serves_is_up_in_the_exporter_series() {
        let mut e = engine();
        feed(&mut e, request(1, 1, 5, 200).as_bytes());
        feed(&mut e, request(1, 2, 5, 200).as_bytes());
        feed(
            &mut e,
            b"<129>Nov 24 16:21:16 lb1 haproxy[1]: Server be1/s1 is DOWN, reason: Layer4 \
              connection problem, info: \"Connection refused\", check duration: 0ms. 0 active \
              and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        );
        let text = from_scratch(&mut e);
        let has = |line: &str| text.lines().any(|l| l == line);
        for line in [
            "hapwatch_server_status{host=\"lb1\",proxy=\"be1\",server=\"s2\",state=\"UP\"} 1",
            "hapwatch_server_status{host=\"lb1\",proxy=\"be1\",server=\"s2\",state=\"DOWN\"} 0",
            "hapwatch_server_status{host=\"lb1\",proxy=\"be1\",server=\"s1\",state=\"DOWN\"} 1",
            "hapwatch_backend_status{host=\"lb1\",proxy=\"be1\",state=\"UP\"} 1",
            "hapwatch_backend_status{host=\"lb1\",proxy=\"be1\",state=\"DOWN\"} 0",
            "hapwatch_server_state{host=\"lb1\",backend=\"be1\",server=\"s2\",state=\"UNKNOWN\"} 1",
        ] {
            assert!(has(line), "no {line} in:\n{text}");
        }
    }

    /// The Prometheus text of 2,000 servers (many chunks of the encoder's
    /// text) is their OpenMetrics text read a line at a time: the counter
    /// families named as their samples, no `# EOF`, every sample the same.
    #[test]
    fn the_prometheus_text_is_the_openmetrics_text_line_by_line() {
        let mut e = engine();
        for i in 0..2_000 {
            feed(&mut e, request(i / 100, i % 100, 5, 200).as_bytes());
        }
        let shared = Arc::new(Shared::default());
        Publisher::default().publish(&mut e, Snapshot::default(), &shared);
        let om = render(&shared);
        assert!(
            om.len() > 4 * super::super::exposition::CHUNK,
            "{}",
            om.len()
        );
        let mut want = String::new();
        let mut lines = om.lines().peekable();
        while let Some(line) = lines.next() {
            if line == "# EOF" {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                let counter = format!("# TYPE {name} counter");
                if lines.peek() == Some(&counter.as_str()) && !name.ends_with("_total") {
                    lines.next();
                    want += &format!("# HELP {name}_total{}\n", &rest[name.len()..]);
                    want += &format!("# TYPE {name}_total counter\n");
                    continue;
                }
            }
            want += line;
            want.push('\n');
        }
        let mut prom = String::new();
        write(&shared, &mut prom, false).unwrap();
        assert!(prom.contains("# TYPE hapwatch_requests_total counter\n"));
        assert_eq!(prom, want);
    }

    /// After the first publication, one request among 5,000 servers costs
    /// the update of one series, not of 5,000; and what the scrape shows
    /// is what a publication of every server would show, also when a
    /// scrape held the registry during an update.
    #[test]
    fn a_publication_updates_the_servers_that_changed_and_nothing_else() {
        let mut e = engine();
        for i in 0..5_000 {
            feed(&mut e, request(i / 100, i % 100, 5, 200).as_bytes());
        }
        feed(
            &mut e,
            b"<129>Nov 24 16:21:16 lb1 haproxy[1]: Server be3/s7 is DOWN, reason: Layer4 \
              connection problem, info: \"Connection refused\", check duration: 0ms. 0 active \
              and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        );
        let shared = Shared::default();
        let mut p = Publisher::default();
        p.publish(&mut e, Snapshot::default(), &shared);
        assert_eq!(shared.series.lock().unwrap().len(), 5_000);

        // One more request (a 503 of 2 s) to one server.
        feed(&mut e, request(42, 17, 2_000, 503).as_bytes());
        p.publish(&mut e, Snapshot::default(), &shared);
        assert_eq!(p.updated, 1, "one server changed, one series updated");
        // Nothing changed: nothing updated.
        p.publish(&mut e, Snapshot::default(), &shared);
        assert_eq!(p.updated, 0);

        // A scrape holds the registry while a health event and a request
        // arrive: the engine does not wait, the update lands next time.
        feed(&mut e, b"<133>Nov 24 16:21:20 lb1 haproxy[1]: Server be3/s7 is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.");
        feed(&mut e, request(0, 1, 30, 404).as_bytes());
        {
            let _scrape = shared.series.lock().unwrap();
            p.publish(&mut e, Snapshot::default(), &shared);
        }
        let shared = Arc::new(shared);
        let held = render(&shared);
        assert!(held.contains(
            "hapwatch_server_state{host=\"lb1\",backend=\"be3\",server=\"s7\",state=\"DOWN\"} 1"
        ));
        p.publish(&mut e, Snapshot::default(), &shared);
        assert_eq!(p.updated, 2);
        let text = render(&shared);
        assert!(text.contains(
            "hapwatch_server_state{host=\"lb1\",backend=\"be3\",server=\"s7\",state=\"UP\"} 1"
        ));
        assert!(text.contains(
            "hapwatch_requests_total{host=\"lb1\",backend=\"be42\",server=\"s17\",class=\"5xx\"} 1"
        ));
        assert!(text.contains(
            "hapwatch_request_seconds_bucket{le=\"2.5\",host=\"lb1\",backend=\"be42\",server=\"s17\",timer=\"Tr\"} 2"
        ));
        assert_eq!(text, from_scratch(&mut e), "incremental == from scratch");

        // A health event and a request for the same server: one series
        // updated, holding both.
        feed(&mut e, b"<129>Nov 24 16:21:30 lb1 haproxy[1]: Server be3/s7 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.");
        feed(&mut e, request(3, 7, 30, 503).as_bytes());
        p.publish(&mut e, Snapshot::default(), &shared);
        assert_eq!(p.updated, 1);
        assert_eq!(render(&shared), from_scratch(&mut e));
    }
}
