//! `/metrics`: Prometheus/OpenMetrics text (prometheus-client's encoder,
//! served by axum).
//!
//! Two kinds of figures. What the receiver did is counted with atomics by
//! the tasks that do it ([`Listener`], [`Shared`]). What hapwatch derives
//! (server states, requests by status class, latency histograms) is a
//! [`Snapshot`] the engine thread publishes after each commit; a scrape
//! never waits for the engine.

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

/// What hapwatch derives, as of the last commit.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// (host, backend, server, state label)
    pub servers: Vec<(String, String, String, &'static str)>,
    /// (host, backend, server) -> requests by class (other, 1xx..5xx)
    pub requests: Vec<([String; 3], [u64; 6])>,
    pub latency: Vec<Latency>,
    pub parse_unparsed: u64,
    pub parse_oversized: u64,
    pub duplicates: u64,
    pub late: u64,
    pub stale: u64,
    pub skewed: u64,
    pub dropped_servers: u64,
    pub dropped_hosts: u64,
    /// Alert events announced ahead of the reorder window, and those of
    /// them the ordered state did not confirm (withdrawn).
    pub alert_previews: u64,
    pub alert_previews_unconfirmed: u64,
    pub lines: u64,
}

/// One timer of one server as a Prometheus histogram.
#[derive(Debug, Clone)]
pub struct Latency {
    /// host, backend, server, timer
    pub labels: [String; 4],
    /// Cumulative: (upper bound in seconds, requests at or below it).
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
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
    /// Rows (server-minutes, transitions, alert events) waiting for a
    /// commit the database refused.
    pub db_unstored: AtomicU64,
    pub snapshot: Mutex<Snapshot>,
    /// A scrape is waiting for a fresh snapshot: with many servers the
    /// engine builds one only when asked (a rebuild costs every series).
    pub wanted: std::sync::atomic::AtomicBool,
    /// Snapshots published so far (a scrape waits for the next one).
    pub published: AtomicU64,
}

/// HAProxy's stats page states, all exported so that a state that is not
/// current reads 0 (Prometheus alert rules need the series to exist).
pub const STATES: [&str; 6] = ["UP", "DOWN", "STOPPING", "MAINT", "DRAIN", "UNKNOWN"];

#[derive(Debug)]
struct Collector(Arc<Shared>);

/// A label value as the exposition format needs it: backslash, double
/// quote and newline escaped. prometheus-client writes values as given, and
/// names come from the network: one datagram naming a backend `be"q` made
/// the whole scrape unreadable, and a server named `s",evil="1` added a
/// label.
#[derive(Debug)]
struct Escaped(String);

impl prometheus_client::encoding::EncodeLabelValue for Escaped {
    fn encode(&self, enc: &mut prometheus_client::encoding::LabelValueEncoder) -> std::fmt::Result {
        use std::fmt::Write;
        let mut rest = self.0.as_str();
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

/// Label pairs with their values escaped.
fn escaped(labels: Vec<(&'static str, String)>) -> Vec<(&'static str, Escaped)> {
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
        gauge(
            &mut enc,
            "hapwatch_db_batch_microseconds",
            "Duration of the last database commit",
            [(vec![], s.db_batch_us.load(Relaxed) as i64)],
        )?;
        counter(
            &mut enc,
            "hapwatch_db_batches",
            "Database commits",
            [(vec![], s.db_batches.load(Relaxed))],
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
        gauge(
            &mut enc,
            "hapwatch_server_state",
            "1 for the server's current state (as HAProxy's stats page shows it)",
            snap.servers.iter().flat_map(|(h, b, srv, state)| {
                STATES.iter().map(move |st| {
                    (
                        vec![
                            ("host", h.clone()),
                            ("backend", b.clone()),
                            ("server", srv.clone()),
                            ("state", st.to_string()),
                        ],
                        (st == state) as i64,
                    )
                })
            }),
        )?;
        const CLASSES: [&str; 6] = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];
        counter(
            &mut enc,
            "hapwatch_requests",
            "Requests logged, by server and status class",
            snap.requests.iter().flat_map(|([h, b, srv], by)| {
                CLASSES.iter().zip(by).map(move |(c, n)| {
                    (
                        vec![
                            ("host", h.clone()),
                            ("backend", b.clone()),
                            ("server", srv.clone()),
                            ("class", c.to_string()),
                        ],
                        *n,
                    )
                })
            }),
        )?;
        let mut m = enc.encode_descriptor(
            "hapwatch_request_seconds",
            "HAProxy timers per server (Tw queue, Tr server response, Tt session)",
            None,
            MetricType::Histogram,
        )?;
        for Latency {
            labels: [h, b, srv, t],
            buckets,
            sum_seconds: sum,
            count,
        } in &snap.latency
        {
            let labels = vec![
                ("host", h.clone()),
                ("backend", b.clone()),
                ("server", srv.clone()),
                ("timer", t.clone()),
            ];
            m.encode_family(&escaped(labels))?
                .encode_histogram::<Vec<(String, String)>>(*sum, *count, buckets, None)?;
        }
        Ok(())
    }
}

/// Bucket bounds (seconds) of the latency histograms.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One timer's buckets as prometheus-client's encoder takes them: the
/// count *in* each bucket (it cumulates them itself), ending with `+Inf`
/// (`f64::MAX`) so that the last bucket equals `_count`.
pub fn buckets(ts: &crate::engine::stats::TimerStats) -> Vec<(f64, u64)> {
    let mut below = 0;
    let mut out: Vec<(f64, u64)> = BUCKETS
        .iter()
        .map(|&le| {
            let upto = ts.hist.count_between(0, (le * 1000.0) as u64);
            let n = upto.saturating_sub(below);
            below = below.max(upto);
            (le, n)
        })
        .collect();
    out.push((f64::MAX, ts.count().saturating_sub(below)));
    out
}

pub fn render(shared: &Arc<Shared>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Collector(shared.clone())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

/// Serves `/metrics` on an already bound listener until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    use axum::{http::header, routing::get, Router};
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let shared = shared.clone();
            async move {
                // Ask the engine for a fresh snapshot and wait for it (it
                // looks every 50 ms; with 100,000 servers building one takes
                // about a second), at most 3 s; else serve the last one.
                let before = shared.published.load(Relaxed);
                shared.wanted.store(true, Relaxed);
                for _ in 0..300 {
                    if shared.published.load(Relaxed) != before {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    render(&shared),
                )
            }
        }),
    );
    let _ = axum::serve(listener, app).await;
}
