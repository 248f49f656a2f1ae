//! Reports: one data model ([`Report`]) built from the engine, and printers
//! over it (table, JSON, CSV), so the formats never disagree.
//!
//! The JSON form is a documented contract (README, "JSON output"): fields
//! may be added, none renamed or removed.

pub mod csv;
pub mod fleet;
pub mod store;
pub mod table;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::state::{BackendState, Label, ServerState, Transition};
use crate::engine::stats::{termination_str, ServerKey, Stats};
use crate::engine::{is_zero, Counters, Engine, Filter};
use crate::haproxy::Timer;
use crate::inventory::Inventory;
use crate::time::{format_rfc3339_ms, is_untimed, Millis};

#[derive(Serialize, Debug, Clone)]
pub struct InputSummary {
    /// lines, requests, health_events, other, unparsed, oversized, untimed
    #[serde(flatten)]
    pub counts: Counters,
    /// `other` messages by pattern name.
    pub other_kinds: BTreeMap<String, u64>,
    /// Lines not understood that name a frontend with a format of its own
    /// (they do not fit it), by frontend.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unparsed_by_frontend: BTreeMap<String, u64>,
    /// Inputs that could not be read, with the reason.
    pub errors: Vec<String>,
    /// Files resumed where an earlier `--db` run stopped (byte offset).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<Resumed>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Resumed {
    pub file: String,
    pub offset: u64,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct TimerSummary {
    pub count: u64,
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
    pub mean: Option<f64>,
}

#[allow(non_snake_case)]
#[derive(Serialize, Debug, Clone, Default)]
pub struct Timers {
    pub TR: TimerSummary,
    pub Tw: TimerSummary,
    pub Tc: TimerSummary,
    pub Tr: TimerSummary,
    pub Ta: TimerSummary,
    pub Tt: TimerSummary,
}

impl Timers {
    pub fn get(&self, t: Timer) -> &TimerSummary {
        match t {
            Timer::TR => &self.TR,
            Timer::Tw => &self.Tw,
            Timer::Tc => &self.Tc,
            Timer::Tr => &self.Tr,
            Timer::Ta => &self.Ta,
            Timer::Tt => &self.Tt,
        }
    }
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct StatusClasses {
    #[serde(rename = "1xx")]
    pub c1: u64,
    #[serde(rename = "2xx")]
    pub c2: u64,
    #[serde(rename = "3xx")]
    pub c3: u64,
    #[serde(rename = "4xx")]
    pub c4: u64,
    #[serde(rename = "5xx")]
    pub c5: u64,
    pub other: u64,
}

/// Request aggregates, the same for a server and a backend.
#[derive(Serialize, Debug, Clone, Default)]
pub struct Traffic {
    pub requests: u64,
    pub status: StatusClasses,
    /// 5xx responses and server-side termination states (`S...`, `s...`).
    pub errors: u64,
    pub error_rate: f64,
    pub bytes: u64,
    pub retries: u64,
    pub redispatches: u64,
    pub srv_queue_max: u32,
    pub backend_queue_max: u32,
    pub timers_ms: Timers,
    pub termination: BTreeMap<String, u64>,
}

impl Traffic {
    fn from_stats(s: &Stats) -> Traffic {
        let t = |timer: Timer| match s.timer(timer) {
            Some(ts) if ts.count() > 0 => TimerSummary {
                count: ts.count(),
                // A histogram quantile is the top of its bucket: never
                // report one above the exact maximum.
                p50: Some(ts.quantile(0.50).min(ts.max)),
                p90: Some(ts.quantile(0.90).min(ts.max)),
                p99: Some(ts.quantile(0.99).min(ts.max)),
                max: Some(ts.max),
                mean: Some((ts.mean() * 100.0).round() / 100.0),
            },
            _ => TimerSummary::default(),
        };
        Traffic {
            requests: s.counts.requests,
            status: StatusClasses {
                c1: s.counts.status[1],
                c2: s.counts.status[2],
                c3: s.counts.status[3],
                c4: s.counts.status[4],
                c5: s.counts.status[5],
                other: s.counts.status[0],
            },
            errors: s.counts.errors,
            error_rate: if s.counts.requests > 0 {
                (s.counts.errors as f64 / s.counts.requests as f64 * 1e4).round() / 1e4
            } else {
                0.0
            },
            bytes: s.counts.bytes,
            retries: s.counts.retries,
            redispatches: s.counts.redispatches,
            srv_queue_max: s.counts.srv_queue_max,
            backend_queue_max: s.counts.backend_queue_max,
            timers_ms: Timers {
                TR: t(Timer::TR),
                Tw: t(Timer::Tw),
                Tc: t(Timer::Tc),
                Tr: t(Timer::Tr),
                Ta: t(Timer::Ta),
                Tt: t(Timer::Tt),
            },
            termination: s
                .counts
                .termination
                .iter()
                .map(|(c, n)| (termination_str(c), *n))
                .collect(),
        }
    }
}

#[derive(Serialize, Debug, Clone)]
pub struct ServerReport {
    pub host: String,
    pub backend: String,
    pub server: String,
    pub backup: bool,
    #[serde(flatten)]
    pub traffic: Traffic,
    pub state: Label,
    /// When the current state began (RFC 3339), if a message said so.
    pub since: Option<String>,
    pub last_cause: Option<String>,
    /// Last health check progress, e.g. `1/2 UP`.
    pub check: Option<String>,
    /// Time in each state within the window; `null` when a state began or
    /// ended on a line with no time (durations unknown, not invented).
    pub down_seconds: Option<f64>,
    pub maint_seconds: Option<f64>,
    pub drain_seconds: Option<f64>,
    pub transitions: u64,
    /// With `--haproxy-config`: `configured`, `no event yet` (declared,
    /// never logged) or `not in the configuration`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<&'static str>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Period {
    pub start: String,
    /// Absent while still going on at the end of the window.
    pub end: Option<String>,
    /// `null` when an end came from a line with no time.
    pub seconds: Option<f64>,
}

#[derive(Serialize, Debug, Clone)]
pub struct BackendReport {
    pub host: String,
    pub backend: String,
    #[serde(flatten)]
    pub traffic: Traffic,
    pub servers: usize,
    /// Active and backup servers online, as the last state message said.
    pub active: Option<u32>,
    pub backups: Option<u32>,
    /// `null` when a period's length is unknown (see [`Period`]).
    pub no_server_seconds: Option<f64>,
    pub no_server_periods: Vec<Period>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Window {
    pub start: Option<String>,
    pub end: Option<String>,
    pub seconds: f64,
}

#[derive(Serialize, Debug, Clone)]
pub struct Report {
    pub input: InputSummary,
    pub window: Window,
    pub servers: Vec<ServerReport>,
    pub backends: Vec<BackendReport>,
    pub transitions: Vec<Transition>,
    /// With `--alerts`: every alert event, firing and resolved, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Vec<crate::alerts::Alert>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unparsed_samples: Vec<String>,
    /// With `--by`: requests by that key instead of by server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<ByReport>,
    /// With `--percentiles`: halog's `-pct` table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentiles: Option<PercentileReport>,
    /// With `--accept-holes`: halog's `-ad`/`-ac` gaps in accepts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_holes: Option<HolesReport>,
    /// With request filters: how many request lines they selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected: Option<Selected>,
}

/// `--percentiles`: per row, the requests it covers and each timer's value
/// (ms) under which they fall (see `engine::percentiles`).
#[derive(Serialize, Debug, Clone)]
pub struct PercentileReport {
    /// Requests counted (HTTP lines with five known timers).
    pub counted: u64,
    /// HTTP lines with a -1 timer (halog's errors) and TCP lines: apart.
    pub errors: u64,
    pub tcp: u64,
    pub rows: Vec<PercentileRow>,
}

#[derive(Serialize, Debug, Clone)]
pub struct PercentileRow {
    pub pct: f64,
    pub requests: u64,
    #[serde(rename = "TR")]
    pub tr_req: i64,
    #[serde(rename = "Tc")]
    pub tc: i64,
    #[serde(rename = "Tr")]
    pub tr: i64,
    #[serde(rename = "Td")]
    pub td: i64,
    #[serde(rename = "Tw")]
    pub tw: i64,
}

/// `--accept-holes`: gaps of at least `min_gap_ms` between accepting
/// milliseconds, followed by at least `min_accepts` accepts.
#[derive(Serialize, Debug, Clone)]
pub struct HolesReport {
    pub min_gap_ms: Millis,
    pub min_accepts: u32,
    pub holes: Vec<HoleRow>,
}

#[derive(Serialize, Debug, Clone)]
pub struct HoleRow {
    /// When accepts resumed (RFC 3339, ms). Kept as a number until
    /// written: a gap of a millisecond or two lists millions of rows.
    #[serde(serialize_with = "rfc3339_ms")]
    pub at: Millis,
    pub gap_ms: Millis,
    pub accepts: u32,
}

/// halog's input filters: request lines selected, not selected, and
/// without a field a filter reads (not selected either).
#[derive(Serialize, Debug, Clone, Copy)]
pub struct Selected {
    pub selected: u64,
    pub rejected: u64,
    pub missing_field: u64,
}

/// `analyze --by`: requests by one key, most first.
#[derive(Serialize, Debug, Clone)]
pub struct ByReport {
    /// `status`, `termination`, `cookie`, `url` or `client`.
    pub key: &'static str,
    pub rows: Vec<ByRow>,
    /// Requests without that key: TCP lines (no status, no cookie, no
    /// URL), a format without `%ST` or `%tsc`.
    pub without: u64,
    /// URLs and clients: how the rows are ordered, how many distinct keys
    /// there are (the rows are the first `--top` of them), and requests of
    /// keys past the bound kept (not in any row).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct: Option<usize>,
    #[serde(skip_serializing_if = "is_zero")]
    pub overflow: u64,
    /// More URLs or clients than the table keeps (32 MiB): the rows are
    /// a Space-Saving summary and a key in no row had at most this many
    /// requests (`overflow` counts the requests of the keys dropped).
    #[serde(skip_serializing_if = "is_zero")]
    pub floor: u64,
}

fn rfc3339_ms<S: serde::Serializer>(t: &Millis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_ms(*t))
}

#[derive(Serialize, Debug, Clone)]
pub struct ByRow {
    /// The key as the log writes it (`503`, `SC`, `NI`, `/api/users`,
    /// `10.0.0.1`).
    pub value: String,
    pub requests: u64,
    pub errors: u64,
    pub bytes: u64,
    /// URLs and clients, halog's `-u*`/`-ic` columns: time (Tr for a URL,
    /// TR for a client, Ta when that is -1) in total and on average, the
    /// same over requests without error, bytes on average.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub times: Option<ByTimes>,
    /// A URL or client kept only after the table was full: up to this
    /// many of its requests (before it was kept) are not in its figures.
    #[serde(skip_serializing_if = "is_zero")]
    pub uncounted: u64,
}

#[derive(Serialize, Debug, Clone, Copy)]
pub struct ByTimes {
    pub time_total_ms: u64,
    pub time_avg_ms: u64,
    pub ok_time_total_ms: u64,
    pub ok_time_avg_ms: u64,
    pub bytes_avg: u64,
}

impl ByReport {
    fn of(b: &crate::engine::breakdown::Breakdown) -> ByReport {
        if b.by.named() {
            let (rows, distinct) = b.named_rows();
            return ByReport {
                key: b.by.name(),
                rows: rows
                    .into_iter()
                    .map(|(value, n)| ByRow {
                        value,
                        requests: n.requests,
                        errors: n.errors,
                        bytes: n.bytes,
                        times: Some(ByTimes {
                            time_total_ms: n.time,
                            time_avg_ms: n.time_avg(),
                            ok_time_total_ms: n.time_ok,
                            ok_time_avg_ms: n.time_ok_avg(),
                            bytes_avg: n.bytes_avg(),
                        }),
                        uncounted: n.uncounted,
                    })
                    .collect(),
                without: b.without,
                sort: Some(b.sort.name()),
                distinct: Some(distinct),
                overflow: b.overflow,
                floor: b.floor,
            };
        }
        ByReport {
            key: b.by.name(),
            rows: b
                .rows()
                .into_iter()
                .map(|(value, r)| ByRow {
                    value,
                    requests: r.requests,
                    errors: r.errors,
                    bytes: r.bytes,
                    times: None,
                    uncounted: 0,
                })
                .collect(),
            without: b.without,
            sort: None,
            distinct: None,
            overflow: b.overflow,
            floor: 0,
        }
    }
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn period(start: Millis, end: Option<Millis>, w: (Millis, Millis)) -> Period {
    let (s, e) = (start.max(w.0), end.unwrap_or(w.1).min(w.1));
    let untimed = [start, end.unwrap_or(w.1)].into_iter().any(is_untimed);
    Period {
        start: format_rfc3339_ms(start),
        end: end.map(format_rfc3339_ms),
        seconds: (!untimed).then(|| secs((e - s).max(0))),
    }
}

impl Report {
    /// The report of a finished run. Takes the engine, the report being
    /// its last reader: each server's figures are dropped as its row is
    /// made, so that 100,000 servers are not held twice, as figures and as
    /// rows, at the peak.
    pub fn build(mut engine: Engine, errors: &[String]) -> Report {
        let figures = std::mem::take(&mut engine.aggregates.servers);
        let engine = &engine;
        let f = &engine.filter;
        let (ws, we) = engine.window();
        let w = (ws.unwrap_or(0), we.unwrap_or(0));
        let mut servers: BTreeMap<ServerKey, (Option<Stats>, Option<&ServerState>)> =
            BTreeMap::new();
        for (k, s) in figures {
            servers.entry(k).or_default().0 = Some(s);
        }
        for (k, st) in &engine.health.servers {
            // A state an earlier run stored and no line of this one met,
            // begun after this log ends (an older log read afterwards):
            // not this log's.
            if st.stored && st.since.zip(we).is_some_and(|(since, end)| since > end) {
                continue;
            }
            match servers.get_mut(k) {
                Some(e) => e.1 = Some(st),
                None => {
                    servers.insert(k.clone(), (None, Some(st)));
                }
            }
        }
        let mut backends: BTreeMap<(String, String), (Stats, usize, Option<&BackendState>)> =
            BTreeMap::new();
        for (k, b) in &engine.health.backends {
            backends.entry(k.clone()).or_default().2 = Some(b);
        }
        // Sized once: grown by doubling, the rows' vector had room for
        // 131,072 rows for 100,000 servers.
        let selected = servers
            .keys()
            .filter(|k| f.selects(&k.host, &k.backend, Some(&k.server)))
            .count();
        let mut server_reports = Vec::with_capacity(selected);
        for (k, (stats, st)) in servers {
            let b = backends
                .entry((k.host.clone(), k.backend.clone()))
                .or_default();
            if let Some(s) = &stats {
                b.0.merge(s);
            }
            // `<NOSRV>`'s requests are the backend's, but it is no server.
            b.1 += !crate::inventory::is_placeholder(&k.server) as usize;
            if !f.selects(&k.host, &k.backend, Some(&k.server)) {
                continue;
            }
            let time = |l: Label| match st {
                Some(s) if s.times_unknown => None,
                _ => Some(secs(
                    st.and_then(|s| s.time_in.get(&l).copied()).unwrap_or(0),
                )),
            };
            server_reports.push(ServerReport {
                traffic: stats.as_ref().map(Traffic::from_stats).unwrap_or_default(),
                host: k.host,
                backend: k.backend,
                server: k.server,
                backup: st.is_some_and(|s| s.backup),
                state: st.map_or(Label::Unknown, |s| s.label()),
                since: st
                    .and_then(|s| s.since)
                    .and_then(crate::time::format_if_timed),
                last_cause: st.and_then(|s| s.last_cause.clone()),
                check: st.and_then(|s| s.last_check.as_ref()).and_then(|c| {
                    let (x, y) = c.health?;
                    Some(format!(
                        "{x}/{y} {}",
                        c.check_state.as_deref().unwrap_or("")
                    ))
                }),
                down_seconds: time(Label::Down),
                maint_seconds: time(Label::Maint),
                drain_seconds: time(Label::Drain),
                transitions: st.map_or(0, |s| s.transitions),
                inventory: None,
            });
        }
        let backend_reports = backends
            .iter()
            .filter(|((h, b), _)| f.selects(h, b, None))
            .map(|((host, backend), (stats, n, st))| {
                let periods: Vec<Period> = st
                    .map(|s| {
                        s.no_server
                            .iter()
                            .filter(|p| {
                                is_untimed(p.start)
                                    || p.end.is_none_or(|e| e > w.0) && p.start <= w.1
                            })
                            .map(|p| period(p.start, p.end, w))
                            .collect()
                    })
                    .unwrap_or_default();
                BackendReport {
                    host: host.clone(),
                    backend: backend.clone(),
                    traffic: Traffic::from_stats(stats),
                    servers: *n,
                    active: st.and_then(|s| s.active),
                    backups: st.and_then(|s| s.backups),
                    // Folded from +0.0: an empty f64 sum is -0.0, which
                    // JSON would carry as "-0.0".
                    no_server_seconds: periods
                        .iter()
                        .try_fold(0.0, |a, p| p.seconds.map(|s| a + s)),

                    no_server_periods: periods,
                }
            })
            .collect();
        let transitions = engine
            .health
            .transitions
            .iter()
            .filter(|t| f.selects(&t.host, &t.backend, Some(&t.server)))
            .cloned()
            .collect();
        let c = &engine.counters;
        Report {
            input: InputSummary {
                counts: c.clone(),
                unparsed_by_frontend: c
                    .unparsed_by_format
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .filter_map(|(i, n)| {
                        let f = engine.patterns.formats.get(i)?;
                        Some((f.frontend.as_ref()?.as_str().to_string(), *n))
                    })
                    .fold(BTreeMap::new(), |mut m, (k, n)| {
                        *m.entry(k).or_insert(0) += n;
                        m
                    }),
                other_kinds: c
                    .other_kinds
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| (engine.patterns.patterns[i].name.clone(), *n))
                    .collect(),
                errors: errors.to_vec(),
                resumed: Vec::new(),
            },
            window: Window {
                start: ws.map(format_rfc3339_ms),
                end: we.map(format_rfc3339_ms),
                seconds: secs((w.1 - w.0).max(0)),
            },
            servers: server_reports,
            backends: backend_reports,
            transitions,
            alerts: None,
            unparsed_samples: engine.unparsed_samples.clone(),
            by: engine.breakdown.as_ref().map(ByReport::of),
            percentiles: engine.percentiles.as_ref().map(|p| PercentileReport {
                counted: p.counted,
                errors: p.errors,
                tcp: p.tcp,
                rows: p
                    .rows()
                    .into_iter()
                    .map(|r| PercentileRow {
                        pct: r.pct,
                        requests: r.requests,
                        tr_req: r.values[0],
                        tc: r.values[1],
                        tr: r.values[2],
                        td: r.values[3],
                        tw: r.values[4],
                    })
                    .collect(),
            }),
            accept_holes: engine.holes.as_ref().map(|h| HolesReport {
                min_gap_ms: h.min_gap,
                min_accepts: h.min_accepts,
                holes: h
                    .holes()
                    .into_iter()
                    .map(|x| HoleRow {
                        at: x.at,
                        gap_ms: x.gap_ms,
                        accepts: x.accepts,
                    })
                    .collect(),
            }),
            selected: engine.select.as_ref().map(|s| Selected {
                selected: s.selected,
                rejected: s.rejected,
                missing_field: s.missing,
            }),
        }
    }

    /// Sets the report against the configuration's servers: every
    /// declared server is listed for every host in the report (`-` when
    /// none), those never logged as `no event yet` in the state HAProxy
    /// starts them in; logged servers not declared are marked. Returns
    /// the `be/srv` names of those.
    pub fn inventory(&mut self, inv: &Inventory, f: &Filter) -> Vec<String> {
        use crate::inventory::{NOT_CONFIGURED, NO_EVENT_YET};
        let unknown = inv.unknown(
            self.servers
                .iter()
                .map(|s| (s.backend.as_str(), s.server.as_str())),
        );
        let hosts = crate::inventory::hosts(
            self.servers
                .iter()
                .map(|s| s.host.as_str())
                .chain(self.backends.iter().map(|b| b.host.as_str())),
        );
        let mut seen = std::collections::HashSet::new();
        for s in &mut self.servers {
            seen.insert((s.host.clone(), s.backend.clone(), s.server.clone()));
            let Some(m) = inv.mark(&s.backend, &s.server) else {
                continue;
            };
            s.inventory = Some(m.inventory);
            let Some(c) = m.declared else { continue };
            s.backup |= c.backup;
            // Requests alone say nothing of the state: the configuration
            // says where HAProxy started it.
            if s.state == Label::Unknown && s.since.is_none() {
                let (label, why) = c.initial();
                s.state = label;
                s.last_cause.get_or_insert(why);
            }
        }
        let missing: Vec<ServerReport> = inv
            .missing(&hosts, &seen, |h, b, s| f.selects(h, b, Some(s)))
            .into_iter()
            .map(|(h, c)| {
                let (state, why) = c.initial();
                ServerReport {
                    host: h.to_string(),
                    backend: c.backend.clone(),
                    server: c.server.clone(),
                    backup: c.backup,
                    traffic: Traffic::default(),
                    state,
                    since: None,
                    last_cause: Some(why),
                    check: None,
                    down_seconds: Some(0.0),
                    maint_seconds: Some(0.0),
                    drain_seconds: Some(0.0),
                    transitions: 0,
                    inventory: Some(NO_EVENT_YET),
                }
            })
            .collect();
        self.servers.extend(missing);
        for h in &hosts {
            for (b, n) in inv.backends() {
                match self
                    .backends
                    .iter_mut()
                    .find(|x| x.host == *h && x.backend == b)
                {
                    // Declared ones, and those that log without being declared.
                    Some(x) => {
                        x.servers = n + self
                            .servers
                            .iter()
                            .filter(|s| s.host == *h && s.backend == b)
                            .filter(|s| s.inventory == Some(NOT_CONFIGURED))
                            .count()
                    }
                    None if f.selects(h, b, None) => self.backends.push(BackendReport {
                        host: h.clone(),
                        backend: b.to_string(),
                        traffic: Traffic::default(),
                        servers: n,
                        active: None,
                        backups: None,
                        no_server_seconds: Some(0.0),
                        no_server_periods: Vec::new(),
                    }),
                    None => {}
                }
            }
        }
        self.servers.sort_by(|a, b| {
            (&a.host, &a.backend, &a.server).cmp(&(&b.host, &b.backend, &b.server))
        });
        self.backends
            .sort_by(|a, b| (&a.host, &a.backend).cmp(&(&b.host, &b.backend)));
        unknown
    }

    /// The report as pretty JSON and a newline, written as it is
    /// serialized (an error is the writer's: a closed pipe).
    pub fn write_json(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, self)?;
        w.write_all(b"\n")
    }
}

/// `hapwatch patterns`: every pattern in use with its class and file, and
/// whether its sample matches it and no other; and how many do not.
pub fn patterns_table(set: &crate::patterns::PatternSet) -> (String, usize) {
    let mut bad = 0;
    let mut text = String::new();
    for p in &set.patterns {
        let hits = set.all_matches(p.sample.as_bytes());
        let ok = hits == [p.name.as_str()];
        bad += !ok as usize;
        text.push_str(&format!(
            "{:<24} {:<8} {:<36} {}\n",
            p.name,
            format!("{:?}", p.class).to_lowercase(),
            p.source,
            if ok {
                "sample ok".to_string()
            } else {
                format!("SAMPLE MATCHES {hits:?}")
            }
        ));
    }
    (text, bad)
}
