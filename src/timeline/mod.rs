//! `hapwatch timeline`: the story of an incident, from the database.
//!
//! ```text
//! Store::facts (transitions, check lines, no-server periods, alerts +
//!               deliveries)
//!   -> incidents: DOWN periods, no-server periods and firing alerts,
//!      merged when less than --gap apart                  (find)
//!   -> one window (an incident padded by --pad, or --since/--until)
//!   -> Story: summary, events in time order, per-minute series from the
//!      rollups, per backend and per server                (Story::build)
//!   -> text, Markdown, JSON                               (render.rs)
//! ```
//!
//! Log files are read into a temporary database by the same engine and
//! writer as `analyze --db`, then read back like any database: one reader,
//! so a file, a database `analyze` filled and one `listen` filled tell the
//! same story.

pub mod html;
pub mod job;
pub mod render;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::rollup::{Minute, Rollup};
use crate::store::{Facts, NoServerRow, TransitionRow};
use crate::time::{format_rfc3339_ms, Millis};

/// A period to look at: servers down, a backend without a server, alerts
/// firing, close enough in time to be one story.
#[derive(Clone, Debug, Serialize)]
pub struct Incident {
    /// Its start in UTC, `YYYYMMDD-HHMMSS`: stable while the database keeps
    /// it (a number would shift as old rows are pruned).
    pub id: String,
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub start: Millis,
    /// `None` while it goes on (a server still down, an alert firing).
    #[serde(serialize_with = "opt_time")]
    pub end: Option<Millis>,
    /// `host/backend/server` (host `-` when the line had none).
    pub servers: Vec<String>,
    /// `host/backend`.
    pub backends: Vec<String>,
    pub alerts: Vec<String>,
    /// The worst thing that happened, in words.
    pub worst: String,
}

fn opt_time<S: serde::Serializer>(t: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_rfc3339_ms(*t)),
        None => s.serialize_none(),
    }
}

/// `host/backend/server`, the host `-` when the line had none.
pub fn server_name(host: &str, backend: &str, server: &str) -> String {
    format!(
        "{}/{backend}/{server}",
        if host.is_empty() { "-" } else { host }
    )
}

pub fn backend_name(host: &str, backend: &str) -> String {
    format!("{}/{backend}", if host.is_empty() { "-" } else { host })
}

/// What made a period part of an incident, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Symptom {
    Alert,
    Down,
    NoServer,
}

struct Period {
    start: Millis,
    end: Option<Millis>,
    symptom: Symptom,
    what: String,
}

/// A server's DOWN periods, from its transitions in time order: from a
/// transition to DOWN to the next one out of it.
fn down_periods(transitions: &[TransitionRow]) -> Vec<(Millis, Option<Millis>, &TransitionRow)> {
    let mut open: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    let mut out: Vec<(Millis, Option<Millis>, &TransitionRow)> = Vec::new();
    for t in transitions {
        let k = (t.host.as_str(), t.backend.as_str(), t.server.as_str());
        if t.to == "DOWN" {
            open.entry(k).or_insert_with(|| {
                out.push((t.at, None, t));
                out.len() - 1
            });
        } else if let Some(i) = open.remove(&k) {
            out[i].1 = Some(t.at);
        }
    }
    out
}

/// The incidents in `facts`, oldest first: periods merged when the next
/// starts less than `gap` after the end of those before it.
pub fn find(facts: &Facts, gap: Millis) -> Vec<Incident> {
    let mut periods: Vec<Period> = Vec::new();
    for (start, end, t) in down_periods(&facts.transitions) {
        periods.push(Period {
            start,
            end,
            symptom: Symptom::Down,
            what: server_name(&t.host, &t.backend, &t.server),
        });
    }
    for NoServerRow {
        host,
        backend,
        start,
        end,
    } in &facts.no_server
    {
        periods.push(Period {
            start: *start,
            end: *end,
            symptom: Symptom::NoServer,
            what: backend_name(host, backend),
        });
    }
    // Info alerts (maintenance, drain set by an administrator) are news,
    // not incidents.
    for a in facts.alerts.iter().filter(|a| a.alert.severity.rank() > 0) {
        periods.push(Period {
            start: a.alert.starts_at,
            end: a.alert.ends_at,
            symptom: Symptom::Alert,
            what: a.alert.rule.clone(),
        });
    }
    periods.sort_by_key(|p| p.start);
    let mut out: Vec<(Incident, Option<Millis>, Symptom)> = Vec::new();
    for p in periods {
        let joins = out.last().is_some_and(|(i, reach, _)| {
            i.end.is_none() || reach.is_none_or(|r| p.start < r.saturating_add(gap))
        });
        if !joins {
            out.push((
                Incident {
                    id: id_of(p.start),
                    start: p.start,
                    end: Some(p.start),
                    servers: Vec::new(),
                    backends: Vec::new(),
                    alerts: Vec::new(),
                    worst: String::new(),
                },
                Some(p.start),
                p.symptom,
            ));
        }
        let (inc, reach, worst) = out.last_mut().expect("pushed");
        inc.end = match (inc.end, p.end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        *reach = inc.end;
        *worst = (*worst).max(p.symptom);
        let list = match p.symptom {
            Symptom::Down => &mut inc.servers,
            Symptom::NoServer => &mut inc.backends,
            Symptom::Alert => &mut inc.alerts,
        };
        if !list.contains(&p.what) {
            list.push(p.what);
        }
    }
    out.into_iter()
        .map(|(mut inc, _, worst)| {
            inc.worst = match worst {
                Symptom::NoServer => format!("no server available: {}", inc.backends.join(", ")),
                Symptom::Down => format!("{} server(s) DOWN", inc.servers.len()),
                Symptom::Alert => format!("alert: {}", inc.alerts.join(", ")),
            };
            inc
        })
        .collect()
}

/// `20261124-162115`.
pub fn id_of(t: Millis) -> String {
    let s = format_rfc3339_ms(t);
    format!(
        "{}{}{}-{}{}{}",
        &s[0..4],
        &s[5..7],
        &s[8..10],
        &s[11..13],
        &s[14..16],
        &s[17..19]
    )
}

/// One thing that happened, for the event list.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub at: Millis,
    /// `transition`, `no_server`, `server_available`, `alert_firing`,
    /// `alert_resolved`, `delivered`, `delivery_failed`.
    pub kind: &'static str,
    /// `host/backend/server`, `host/backend`, or (an alert about neither)
    /// the alert's rule.
    pub subject: String,
    /// What a person reads: `UP -> DOWN`, the alert's summary, the sink.
    pub what: String,
    /// The cause as HAProxy wrote it, the check details, the delivery
    /// error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The per-minute figures of a window, folded as the rollups are read
/// ([`crate::store::Store::each_rollup`]): per backend (its servers'
/// minutes merged, `<NOSRV>` counted apart) and, for the servers
/// something happened to in the window, per server. A day of 300 servers
/// is 432,000 server-minutes: they are not held.
#[derive(Debug, Default)]
pub struct Minutes {
    keep: std::collections::HashSet<String>,
    backends: BTreeMap<String, BTreeMap<Millis, (Minute, u64)>>,
    servers: BTreeMap<String, Vec<Bucket>>,
}

impl Minutes {
    /// The timers a bucket reads (Tw, Tr; not Tt): only these are decoded.
    pub const TIMERS: [bool; 3] = [true, true, false];

    /// Figures for the window `[from, to)` of `facts`: its servers with a
    /// transition or a check line in it get their own series.
    pub fn for_window(facts: &Facts, from: Millis, to: Millis) -> Minutes {
        let within = |t: Millis| t >= from && t < to;
        let keep = facts
            .transitions
            .iter()
            .filter(|t| within(t.at))
            .map(|t| server_name(&t.host, &t.backend, &t.server))
            .chain(
                facts
                    .checks
                    .iter()
                    .filter(|c| within(c.at))
                    .map(|c| server_name(&c.host, &c.backend, &c.server)),
            )
            .collect();
        Minutes {
            keep,
            ..Default::default()
        }
    }

    pub fn add(&mut self, r: Rollup) {
        let k = &r.key;
        let slot = self
            .backends
            .entry(backend_name(&k.host, &k.backend))
            .or_default()
            .entry(r.minute)
            .or_default();
        slot.0.merge(&r.data);
        if k.server == "<NOSRV>" {
            slot.1 += r.data.counts.status[5];
            return;
        }
        let name = server_name(&k.host, &k.backend, &k.server);
        if self.keep.contains(&name) {
            let bucket = Bucket::of(r.minute, &r.data, 0);
            self.servers.entry(name).or_default().push(bucket);
        }
    }
}

/// One minute of one backend or server.
#[derive(Clone, Debug, Serialize)]
pub struct Bucket {
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub minute: Millis,
    pub requests: u64,
    #[serde(rename = "5xx")]
    pub status_5xx: u64,
    /// 503s HAProxy answered itself, no server being available (`<NOSRV>`).
    pub nosrv: u64,
    /// Requests ended by the server side (termination state `S...` or
    /// `s...`: aborted, refused, timed out).
    pub server_aborts: u64,
    /// Requests that timed out in a queue (`sQ`).
    pub queue_timeouts: u64,
    pub retries: u64,
    pub redispatches: u64,
    pub queue_max: u32,
    /// Tr (server response), milliseconds; Tt for TCP lines is not in
    /// the rollups.
    pub tr_p50: Option<u64>,
    pub tr_p95: Option<u64>,
    pub tr_p99: Option<u64>,
    /// Tw (time waiting in queues), p95.
    pub tw_p95: Option<u64>,
}

impl Bucket {
    fn of(minute: Millis, m: &Minute, nosrv: u64) -> Bucket {
        let c = &m.counts;
        let ended = |f: &dyn Fn(&[u8; 4]) -> bool| {
            c.termination
                .iter()
                .filter(|(code, _)| f(code))
                .map(|(_, n)| n)
                .sum::<u64>()
        };
        let q = |t: usize, q: f64| {
            m.timers[t]
                .as_ref()
                .filter(|t| t.count() > 0)
                .map(|t| t.quantile(q))
        };
        Bucket {
            minute,
            requests: c.requests,
            status_5xx: c.status[5],
            nosrv,
            server_aborts: ended(&|code| matches!(code[0], b'S' | b's')),
            queue_timeouts: ended(&|code| code[0] == b's' && code[1] == b'Q'),
            retries: c.retries,
            redispatches: c.redispatches,
            queue_max: c.srv_queue_max.max(c.backend_queue_max),
            tr_p50: q(1, 0.50),
            tr_p95: q(1, 0.95),
            tr_p99: q(1, 0.99),
            tw_p95: q(0, 0.95),
        }
    }
}

/// The per-minute figures of one backend or one server.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// `host/backend` or `host/backend/server`.
    pub name: String,
    /// `backend` or `server`.
    pub kind: &'static str,
    pub buckets: Vec<Bucket>,
}

/// How long one server was down in the window.
#[derive(Clone, Debug, Serialize)]
pub struct Outage {
    pub server: String,
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub down_at: Millis,
    #[serde(serialize_with = "opt_time")]
    pub up_at: Option<Millis>,
    pub cause: Option<String>,
}

/// How long one backend had no server available in the window.
#[derive(Clone, Debug, Serialize)]
pub struct NoServer {
    pub backend: String,
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub start: Millis,
    #[serde(serialize_with = "opt_time")]
    pub end: Option<Millis>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Impact {
    pub requests: u64,
    #[serde(rename = "5xx")]
    pub status_5xx: u64,
    pub nosrv: u64,
    pub server_aborts: u64,
    pub queue_timeouts: u64,
    pub retries: u64,
    pub redispatches: u64,
}

/// What a post-mortem starts with.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The incident shown, if the window is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub start: Millis,
    #[serde(serialize_with = "opt_time")]
    pub end: Option<Millis>,
    /// The first thing that went wrong in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_sign: Option<Event>,
    /// From the first failed check to the DOWN it led to (the time HAProxy
    /// took to detect the first outage), when the check lines are logged
    /// (`option log-health-checks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_after_ms: Option<Millis>,
    /// From the first server DOWN to the last one back UP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered_after_ms: Option<Millis>,
    pub outages: Vec<Outage>,
    pub no_server: Vec<NoServer>,
    /// Requests in the minutes the incident touches (the rollups hold
    /// minutes), as they count them.
    pub impact: Impact,
    /// Alerts that fired during the incident.
    pub alerts_fired: usize,
    /// When the first alert reached a remote sink.
    #[serde(serialize_with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub first_delivery: Option<Millis>,
}

/// An incident's story: what `timeline` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Story {
    /// The window shown (padded): `[from, to)`.
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub from: Millis,
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub to: Millis,
    /// The database holds minutes: buckets are a minute each.
    pub bucket: &'static str,
    pub summary: Summary,
    pub events: Vec<Event>,
    pub series: Vec<Series>,
    /// Each server's states over the window, for the chart.
    pub lanes: Vec<Lane>,
}

/// One server's states over the window.
#[derive(Clone, Debug, Serialize)]
pub struct Lane {
    /// `host/backend/server`.
    pub server: String,
    /// `host/backend`: lanes are grouped by it.
    pub backend: String,
    /// Back to back, covering `[from, to)`.
    pub spans: Vec<Span>,
    /// Failed health checks (ticks on the lane).
    #[serde(serialize_with = "times")]
    pub failed_checks: Vec<Millis>,
}

impl Lane {
    /// Nothing but UP (or unknown) and no failed check: collapsed when
    /// there are many.
    pub fn healthy(&self) -> bool {
        self.failed_checks.is_empty()
            && self
                .spans
                .iter()
                .all(|s| s.state == "UP" || s.state == "UNKNOWN")
    }
}

/// A state from `start` to `end`.
#[derive(Clone, Debug, Serialize)]
pub struct Span {
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub start: Millis,
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub end: Millis,
    pub state: String,
}

fn times<S: serde::Serializer>(t: &[Millis], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(t.len()))?;
    for t in t {
        seq.serialize_element(&format_rfc3339_ms(*t))?;
    }
    seq.end()
}

/// Each server's lane over `[from, to)`: the servers with a transition or
/// a check line in it, or requests in its minutes. The state at `from` is
/// the one the last transition before it left (else the one the first
/// after it left, else unknown).
fn lanes(facts: &Facts, series: &[Series], from: Millis, to: Millis) -> Vec<Lane> {
    /// A server's backend, transitions, failed checks in the window, and
    /// whether anything of it is in the window.
    type Seen<'a> = (String, Vec<&'a TransitionRow>, Vec<Millis>, bool);
    let mut by: BTreeMap<String, Seen> = BTreeMap::new();
    for t in &facts.transitions {
        let e = by
            .entry(server_name(&t.host, &t.backend, &t.server))
            .or_insert_with(|| (backend_name(&t.host, &t.backend), vec![], vec![], false));
        e.1.push(t);
        e.3 |= t.at >= from && t.at < to;
    }
    for c in &facts.checks {
        if c.at < from || c.at >= to {
            continue;
        }
        let e = by
            .entry(server_name(&c.host, &c.backend, &c.server))
            .or_insert_with(|| (backend_name(&c.host, &c.backend), vec![], vec![], false));
        e.3 = true;
        if c.result.as_deref() == Some("failed") {
            e.2.push(c.at);
        }
    }
    for x in series.iter().filter(|x| x.kind == "server") {
        if let Some(e) = by.get_mut(&x.name) {
            e.3 = true;
        } else {
            let backend = x.name.rsplit_once('/').map_or("", |(b, _)| b).to_string();
            by.insert(x.name.clone(), (backend, vec![], vec![], true));
        }
    }
    let mut out: Vec<Lane> = by
        .into_iter()
        .filter(|(_, e)| e.3)
        .map(|(server, (backend, ts, failed_checks, _))| {
            let before = ts.iter().rev().find(|t| t.at < from);
            let mut state = before
                .map(|t| t.to.clone())
                .or_else(|| ts.iter().find(|t| t.at >= from).map(|t| t.from.clone()))
                .unwrap_or_else(|| "UNKNOWN".into());
            let mut start = from;
            let mut spans = Vec::new();
            for t in ts.iter().filter(|t| t.at >= from && t.at < to) {
                if t.at > start {
                    spans.push(Span {
                        start,
                        end: t.at,
                        state: state.clone(),
                    });
                }
                start = t.at;
                state = t.to.clone();
            }
            spans.push(Span {
                start,
                end: to,
                state,
            });
            Lane {
                server,
                backend,
                spans,
                failed_checks,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.backend, &a.server).cmp(&(&b.backend, &b.server)));
    out
}

/// A check line as an event (listed, and the first sign when it is one).
fn check_event(c: &crate::store::CheckRow) -> Event {
    Event {
        at: c.at,
        kind: "check",
        subject: server_name(&c.host, &c.backend, &c.server),
        what: check_what(c),
        detail: check_text(&c.check),
    }
}

/// `check failed, 0/2 DOWN`: HAProxy's words for a check line.
fn check_what(c: &crate::store::CheckRow) -> String {
    let status = match (c.check.get("health"), c.check.get("check_state")) {
        (Some(serde_json::Value::Array(h)), state) if h.len() == 2 => format!(
            ", {}/{}{}",
            h[0],
            h[1],
            state
                .and_then(|s| s.as_str())
                .map(|s| format!(" {s}"))
                .unwrap_or_default()
        ),
        _ => String::new(),
    };
    format!(
        "{} {}{status}",
        if c.check.get("agent").and_then(|a| a.as_bool()) == Some(true) {
            "agent check"
        } else {
            "check"
        },
        c.result.as_deref().unwrap_or("done")
    )
}

/// The first failed check of the run of failures that ended in `o`'s
/// DOWN: walking back from the DOWN, the failures of that server until a
/// check that did not fail.
fn first_failed_check<'a>(
    checks: &'a [crate::store::CheckRow],
    o: &Outage,
) -> Option<&'a crate::store::CheckRow> {
    let upto = checks.partition_point(|c| c.at <= o.down_at);
    let mut first = None;
    for c in checks[..upto].iter().rev() {
        if server_name(&c.host, &c.backend, &c.server) != o.server {
            continue;
        }
        if c.result.as_deref() != Some("failed") {
            break;
        }
        first = Some(c);
    }
    first
}

/// The check's own words: reason, info, code, duration (not the status,
/// which [`check_what`] says).
fn check_text(c: &serde_json::Value) -> Option<String> {
    let obj = c.as_object()?;
    let mut parts = Vec::new();
    for k in ["reason", "info", "code", "duration_ms"] {
        if let Some(v) = obj.get(k) {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(o) => o
                    .values()
                    .map(|v| v.to_string().trim_matches('"').to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            parts.push(match k {
                "duration_ms" => format!("check {v} ms"),
                "code" => format!("code {v}"),
                _ => v,
            });
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

impl Story {
    /// The story of `[from, to)`; `incident` names it when it is one.
    pub fn build(
        facts: &Facts,
        minutes: Minutes,
        from: Millis,
        to: Millis,
        incident: Option<&Incident>,
    ) -> Story {
        let within = |t: Millis| t >= from && t < to;
        // The summary tells the incident itself, `[s0, s1)` (the padding is
        // lead-up and aftermath, in the events); without one, the window.
        let mut events = Vec::new();
        for t in facts.transitions.iter().filter(|t| within(t.at)) {
            // The cause as HAProxy wrote it says it all; the check details
            // stand in when there is none.
            let detail = t
                .cause
                .clone()
                .or_else(|| t.check.as_ref().and_then(check_text));
            events.push(Event {
                at: t.at,
                kind: "transition",
                subject: server_name(&t.host, &t.backend, &t.server),
                what: format!("{} -> {}", t.from, t.to),
                detail,
            });
        }
        for c in facts.checks.iter().filter(|c| within(c.at)) {
            events.push(check_event(c));
        }
        for p in &facts.no_server {
            let name = backend_name(&p.host, &p.backend);
            if within(p.start) {
                events.push(Event {
                    at: p.start,
                    kind: "no_server",
                    subject: name.clone(),
                    what: "no server available".into(),
                    detail: None,
                });
            }
            if let Some(end) = p.end.filter(|&e| within(e)) {
                events.push(Event {
                    at: end,
                    kind: "server_available",
                    subject: name,
                    what: format!("a server is available again after {}", human(end - p.start)),
                    detail: None,
                });
            }
        }
        let (s0, s1) = incident.map_or((from, to), |i| (i.start, i.end.map_or(to, |e| e + 1)));
        let mut first_delivery: Option<Millis> = None;
        let mut alerts_fired = 0;
        for a in &facts.alerts {
            let al = &a.alert;
            // What it is about, named as the other events name it.
            let label = |k: &str| al.labels.get(k).map(String::as_str);
            let subject = match (label("backend"), label("server")) {
                (Some(b), Some(srv)) => server_name(label("host").unwrap_or(""), b, srv),
                (Some(b), None) => backend_name(label("host").unwrap_or(""), b),
                _ => al.rule.clone(),
            };
            if within(al.starts_at) {
                alerts_fired += (al.starts_at >= s0 && al.starts_at < s1) as usize;
                events.push(Event {
                    at: al.starts_at,
                    kind: "alert_firing",
                    subject: subject.clone(),
                    what: format!(
                        "{} alert {} fired: {}",
                        al.severity.as_str(),
                        al.rule,
                        al.summary
                    ),
                    detail: None,
                });
            }
            if let Some(end) = al.ends_at.filter(|&e| within(e)) {
                events.push(Event {
                    at: end,
                    kind: "alert_resolved",
                    subject: subject.clone(),
                    what: format!("alert {} resolved: {}", al.rule, al.summary),
                    detail: None,
                });
            }
            for d in &a.deliveries {
                match d.delivered.filter(|&t| within(t)) {
                    Some(t) => {
                        first_delivery = Some(first_delivery.map_or(t, |f| f.min(t)));
                        events.push(Event {
                            at: t,
                            kind: "delivered",
                            subject: subject.clone(),
                            what: format!("{} notice delivered to {}", d.status, d.sink),
                            detail: (d.attempts > 1).then(|| format!("{} attempts", d.attempts)),
                        });
                    }
                    None if d.state != "delivered" && within(al.starts_at) => {
                        events.push(Event {
                            at: al.starts_at,
                            kind: "delivery_failed",
                            subject: subject.clone(),
                            what: format!(
                                "{} notice not delivered to {} ({})",
                                d.status, d.sink, d.state
                            ),
                            detail: d.last_error.clone(),
                        });
                    }
                    None => {}
                }
            }
        }
        // Time order; at one instant, in the order things follow each
        // other (a transition before the no-server it causes).
        let rank = |k: &str| match k {
            "check" => 0,
            "transition" => 1,
            "no_server" | "server_available" => 2,
            "alert_firing" | "alert_resolved" => 3,
            _ => 4,
        };
        events.sort_by(|a, b| {
            (a.at, rank(a.kind), &a.subject).cmp(&(b.at, rank(b.kind), &b.subject))
        });

        let outages: Vec<Outage> = down_periods(&facts.transitions)
            .into_iter()
            .filter(|(start, end, _)| *start < s1 && end.is_none_or(|e| e >= s0))
            .map(|(down_at, up_at, t)| Outage {
                server: server_name(&t.host, &t.backend, &t.server),
                down_at,
                up_at,
                cause: t.cause.clone(),
            })
            .collect();
        let no_server: Vec<NoServer> = facts
            .no_server
            .iter()
            .filter(|p| p.start < s1 && p.end.is_none_or(|e| e >= s0))
            .map(|p| NoServer {
                backend: backend_name(&p.host, &p.backend),
                start: p.start,
                end: p.end,
            })
            .collect();
        let recovered_after_ms = match (
            outages.iter().map(|o| o.down_at).min(),
            outages.iter().map(|o| o.up_at).collect::<Option<Vec<_>>>(),
        ) {
            (Some(first), Some(ups)) => ups.into_iter().max().map(|last| last - first),
            _ => None,
        };
        // The first thing that went wrong in the incident (what the
        // padding shows before it may be another incident's).
        let mut first_sign = events
            .iter()
            .filter(|e| e.at >= s0 && e.at < s1)
            .find(|e| {
                (e.kind == "transition"
                    && (e.what.ends_with("-> DOWN") || e.what.ends_with("-> STOPPING")))
                    || e.kind == "no_server"
                    || e.kind == "alert_firing"
            })
            .cloned();
        // Health checks fail before HAProxy calls a server DOWN (`fall`
        // failures in a row): the first of the run that ended in the
        // incident's first DOWN is the first sign, and from it to the
        // DOWN is the time HAProxy took to detect it.
        let first_down = outages
            .iter()
            .filter(|o| o.down_at >= s0)
            .min_by_key(|o| o.down_at);
        let first_failed = first_down.and_then(|o| first_failed_check(&facts.checks, o));
        let detected_after_ms = first_down.zip(first_failed).map(|(o, c)| o.down_at - c.at);
        if let Some(c) = first_failed.filter(|c| first_sign.as_ref().is_none_or(|f| c.at <= f.at)) {
            first_sign = Some(check_event(c));
        }

        let mut impact = Impact::default();
        let mut series = Vec::new();
        for (name, minutes) in minutes.backends {
            let buckets: Vec<Bucket> = minutes
                .iter()
                .map(|(t, (m, nosrv))| Bucket::of(*t, m, *nosrv))
                .collect();
            // The minutes the incident touches.
            for b in buckets
                .iter()
                .filter(|b| b.minute < s1 && b.minute + 60_000 > s0)
            {
                impact.requests += b.requests;
                impact.status_5xx += b.status_5xx;
                impact.nosrv += b.nosrv;
                impact.server_aborts += b.server_aborts;
                impact.queue_timeouts += b.queue_timeouts;
                impact.retries += b.retries;
                impact.redispatches += b.redispatches;
            }
            series.push(Series {
                name,
                kind: "backend",
                buckets,
            });
        }
        for (name, mut buckets) in minutes.servers {
            // Rows come in the table's order (by server, then minute).
            buckets.sort_by_key(|b| b.minute);
            series.push(Series {
                name,
                kind: "server",
                buckets,
            });
        }
        Story {
            lanes: lanes(facts, &series, from, to),
            from,
            to,
            bucket: "1m",
            summary: Summary {
                incident: incident.map(|i| i.id.clone()),
                start: incident.map_or(from, |i| i.start),
                end: incident.map_or(Some(to), |i| i.end),
                first_sign,
                detected_after_ms,
                recovered_after_ms,
                outages,
                no_server,
                impact,
                alerts_fired,
                first_delivery,
            },
            events,
            series,
        }
    }
}

/// `2m05s`, `1h02m`, `350ms`.
pub fn human(ms: Millis) -> String {
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}.{:01}s", s, ms % 1000 / 100)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if ms < 86_400_000 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}d{:02}h", s / 86_400, s / 3600 % 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(at: Millis, server: &str, from: &str, to: &str) -> TransitionRow {
        TransitionRow {
            at,
            host: "lb1".into(),
            backend: "be".into(),
            server: server.into(),
            from: from.into(),
            to: to.into(),
            cause: Some("Layer4 timeout".into()),
            check: None,
        }
    }

    #[test]
    fn periods_closer_than_the_gap_are_one_incident() {
        let m = 60_000;
        let facts = Facts {
            checks: vec![],
            transitions: vec![
                t(0, "s1", "UP", "DOWN"),
                t(2 * m, "s2", "UP", "DOWN"),
                t(3 * m, "s1", "DOWN", "UP"),
                t(4 * m, "s2", "DOWN", "UP"),
                // 20 minutes later: another incident, still going on.
                t(24 * m, "s1", "UP", "DOWN"),
            ],
            no_server: vec![NoServerRow {
                host: "lb1".into(),
                backend: "be".into(),
                start: 2 * m,
                end: Some(3 * m),
            }],
            alerts: vec![],
        };
        let found = find(&facts, 5 * m);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].start, 0);
        assert_eq!(found[0].end, Some(4 * m));
        assert_eq!(found[0].servers, ["lb1/be/s1", "lb1/be/s2"]);
        assert_eq!(found[0].backends, ["lb1/be"]);
        assert_eq!(found[0].worst, "no server available: lb1/be");
        assert_eq!(found[0].id, "19700101-000000");
        assert_eq!(found[1].end, None, "s1 is still down");
        assert_eq!(found[1].worst, "1 server(s) DOWN");
        // A gap of a minute splits the first one where nothing was wrong?
        // No: s2 went down before s1 came back; only 20 minutes of calm
        // split incidents.
        assert_eq!(find(&facts, m).len(), 2);
        assert_eq!(find(&facts, 30 * m).len(), 1);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(350), "350ms");
        assert_eq!(human(12_300), "12.3s");
        assert_eq!(human(125_000), "2m05s");
        assert_eq!(human(3_720_000), "1h02m");
    }
}
