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
/// A server's DOWN period on one host: from, to (None: still down), and
/// the transition that began it.
type DownPeriod<'a> = (Millis, Option<Millis>, &'a TransitionRow);

fn down_periods(transitions: &[TransitionRow]) -> Vec<DownPeriod<'_>> {
    let mut open: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    let mut out: Vec<DownPeriod> = Vec::new();
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
                Symptom::Down => {
                    // `host/backend/server`: across load balancers, a server
                    // DOWN on three is one server.
                    let servers: std::collections::BTreeSet<&str> = inc
                        .servers
                        .iter()
                        .map(|n| n.split_once('/').map_or(n.as_str(), |(_, rest)| rest))
                        .collect();
                    if servers.len() == inc.servers.len() {
                        format!("{} server(s) DOWN", inc.servers.len())
                    } else {
                        format!(
                            "{} server(s) DOWN ({} on their load balancers)",
                            servers.len(),
                            inc.servers.len()
                        )
                    }
                }
                Symptom::Alert => format!("alert: {}", inc.alerts.join(", ")),
            };
            inc
        })
        .collect()
}

/// `20261124-162115`.
pub fn id_of(t: Millis) -> String {
    if let Some(n) = crate::time::untimed_order(t) {
        return format!("untimed-{n}");
    }
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
    /// `haproxy` (HAProxy itself started, reloaded, stopped), `check`,
    /// `transition`, `no_server`, `server_available`, `degraded`,
    /// `alert_firing`, `alert_resolved`, `delivered`, `delivery_failed`.
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

/// The figures of a window per bucket (a minute from the database, or
/// seconds read again from files), folded as the rollups are read
/// ([`crate::store::Store::each_rollup`]): per backend (its servers'
/// buckets merged, `<NOSRV>` counted apart) and, for the servers
/// something happened to in the window, per server. A day of 300 servers
/// is 432,000 server-minutes: they are not held.
#[derive(Debug, Default)]
pub struct Minutes {
    /// The buckets' width: a minute, or less (the rollups' `minute` is
    /// then the start of their bucket).
    pub width: Millis,
    /// The servers something happened to in the window (their names, and
    /// their keys to read their minutes by).
    keep: std::collections::HashSet<String>,
    kept: Vec<crate::engine::ServerKey>,
    backends: BTreeMap<String, BTreeMap<Millis, (Minute, u64)>>,
    /// A rollup is one server's whole bucket (the store merged its
    /// pieces): its figures are worked out at once, its histograms not
    /// kept (a day of the servers something happened to is 100,000s of
    /// minutes).
    servers: BTreeMap<String, Vec<Bucket>>,
    /// Buckets wider than a minute gather several rollups first.
    gathering: BTreeMap<String, BTreeMap<Millis, Minute>>,
    /// The servers DOWN on some host in the window, by backend: those
    /// whose outages the fleet summary counts hosts for.
    outaged: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// The hosts that sent each of those requests in the window, by
    /// backend and server: they report the server too
    /// ([`Minutes::serving`]).
    served: Served,
}

impl Minutes {
    /// The timers a bucket reads (Tw, Tr; not Tt): only these are decoded.
    pub const TIMERS: [bool; 3] = [true, true, false];

    /// Figures for the window `[from, to)` of `facts`: its servers with a
    /// transition or a check line in it get their own series.
    pub fn for_window(facts: &Facts, from: Millis, to: Millis) -> Minutes {
        let within = |t: Millis| t >= from && t < to;
        let kept: std::collections::BTreeSet<(&str, &str, &str)> = facts
            .transitions
            .iter()
            .filter(|t| within(t.at))
            .map(|t| (t.host.as_str(), t.backend.as_str(), t.server.as_str()))
            .chain(
                facts
                    .checks
                    .iter()
                    .filter(|c| within(c.at))
                    .map(|c| (c.host.as_str(), c.backend.as_str(), c.server.as_str())),
            )
            .collect();
        let mut outaged: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for (_, _, t) in down_periods(&facts.transitions)
            .into_iter()
            .filter(|(start, end, _)| *start < to && end.is_none_or(|e| e >= from))
        {
            outaged
                .entry(t.backend.clone())
                .or_default()
                .insert(t.server.clone());
        }
        Minutes {
            width: crate::engine::rollup::MINUTE_MS,
            outaged,
            keep: kept.iter().map(|(h, b, s)| server_name(h, b, s)).collect(),
            kept: kept
                .into_iter()
                .map(|(h, b, s)| crate::engine::ServerKey {
                    host: h.into(),
                    backend: b.into(),
                    server: s.into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// The servers that get their own series, to read their minutes.
    pub fn kept(&self) -> &[crate::engine::ServerKey] {
        &self.kept
    }

    /// The servers (`backend`, `server`) whose hosts serving them the
    /// fleet summary counts: [`Minutes::add`] sees them in the rollups it
    /// is given; where it is given none (the backends' minutes), the store
    /// says ([`crate::store::Store::served_in`]) and [`Minutes::serving`]
    /// is told.
    pub fn outaged(&self) -> impl Iterator<Item = (&str, &str)> {
        (self.outaged.iter()).flat_map(|(b, servers)| servers.iter().map(move |s| (&b[..], &s[..])))
    }

    /// `host` sent `backend/server` requests in the window (allocates only
    /// for a server some host saw go down, once a host).
    pub fn serving(&mut self, backend: &str, server: &str, host: &str) {
        if !self
            .outaged
            .get(backend)
            .is_some_and(|s| s.contains(server))
        {
            return;
        }
        let hosts = (self.served.entry(backend.to_string()).or_default())
            .entry(server.to_string())
            .or_default();
        if !hosts.contains(host) {
            hosts.insert(host.to_string());
        }
    }

    /// The same buckets and servers, nothing in them yet: to be filled
    /// apart (another thread) and [`Minutes::absorb`]ed.
    pub fn empty_like(&self) -> Minutes {
        Minutes {
            width: self.width,
            keep: self.keep.clone(),
            ..Default::default()
        }
    }

    /// Takes the server buckets `o` holds (servers `self` has none of).
    pub fn absorb(&mut self, o: &mut Minutes) {
        self.servers.append(&mut o.servers);
        self.gathering.append(&mut o.gathering);
    }

    /// One server's rollup into its bucket and its backend's.
    pub fn add(&mut self, r: Rollup) {
        let k = &r.key;
        let nosrv = if k.server == "<NOSRV>" {
            r.data.counts.status[5]
        } else {
            0
        };
        self.backend_slot(&k.host, &k.backend, r.minute)
            .merge(&r.data, nosrv);
        if k.server != "<NOSRV>" {
            if r.data.counts.requests > 0 {
                self.serving(&k.backend, &k.server, &k.host);
            }
            self.add_server(r);
        }
    }

    /// A backend's minute as the store added it up (all its servers').
    pub fn add_backend(&mut self, b: crate::store::BackendMinute) {
        self.backend_slot(&b.host, &b.backend, b.minute)
            .merge(&b.data, b.nosrv);
    }

    fn backend_slot(&mut self, host: &str, backend: &str, minute: Millis) -> Slot<'_> {
        let start = minute.div_euclid(self.width) * self.width;
        Slot(
            self.backends
                .entry(backend_name(host, backend))
                .or_default()
                .entry(start)
                .or_default(),
        )
    }

    /// One server's rollup into its bucket, if it is one of those kept.
    pub fn add_server(&mut self, r: Rollup) {
        let k = &r.key;
        let name = server_name(&k.host, &k.backend, &k.server);
        if self.keep.contains(&name) {
            self.add_kept(&name, r.minute, &r.data);
        }
    }

    /// A minute of the kept server `name` into its bucket.
    pub fn add_kept(&mut self, name: &str, minute: Millis, data: &Minute) {
        let start = minute.div_euclid(self.width) * self.width;
        if self.width <= crate::engine::rollup::MINUTE_MS {
            let bucket = Bucket::of(start, data, 0);
            match self.servers.get_mut(name) {
                Some(s) => s.push(bucket),
                None => drop(self.servers.insert(name.into(), vec![bucket])),
            }
        } else {
            let bucket = self.gathering.entry(name.into()).or_default().entry(start);
            bucket.or_default().merge(data);
        }
    }
}

/// A backend's bucket being added up, and its `<NOSRV>` 503s.
struct Slot<'a>(&'a mut (Minute, u64));

impl Slot<'_> {
    fn merge(self, m: &Minute, nosrv: u64) {
        self.0 .0.merge(m);
        self.0 .1 += nosrv;
    }
}

/// One bucket (a minute, or the story's finer `bucket`) of one backend or
/// server.
#[derive(Clone, Debug, Serialize)]
pub struct Bucket {
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub start: Millis,
    /// Requests, 5xx, `<NOSRV>`, server aborts, queue timeouts, retries,
    /// redispatches (the JSON has them beside `start`).
    #[serde(flatten)]
    pub counts: Impact,
    pub queue_max: u32,
    /// The series' latency timer (Tr, the server's response; Tt, the
    /// whole connection, for TCP), milliseconds.
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    /// Tw (time waiting in queues), p95.
    pub tw_p95: Option<u64>,
    /// Which timer p50..p99 are of (`Tr`, or `Tt` where there is no Tr).
    #[serde(skip)]
    pub timer: Option<&'static str>,
}

impl Bucket {
    /// Adds `o`'s counts to these; the percentiles become the higher of
    /// the two (percentiles do not add: a folded row says "at worst").
    pub fn fold(&mut self, o: &Bucket) {
        self.counts.add(&o.counts);
        self.queue_max = self.queue_max.max(o.queue_max);
        self.p50 = self.p50.max(o.p50);
        self.p95 = self.p95.max(o.p95);
        self.p99 = self.p99.max(o.p99);
        self.tw_p95 = self.tw_p95.max(o.tw_p95);
    }

    fn of(start: Millis, m: &Minute, nosrv: u64) -> Bucket {
        let c = &m.counts;
        let ended = |f: &dyn Fn(&[u8; 4]) -> bool| {
            c.termination
                .iter()
                .filter(|(code, _)| f(code))
                .map(|(_, n)| n)
                .sum::<u64>()
        };
        let q = |t: usize, q: f64| m.quantile(t, q);
        // Tr where there is one (HTTP), else Tt (TCP logs have no Tr).
        let (latency, timer) = match q(1, 0.5) {
            Some(_) => (1, Some("Tr")),
            None => (2, q(2, 0.5).map(|_| "Tt")),
        };
        Bucket {
            start,
            counts: Impact {
                requests: c.requests,
                status_5xx: c.status[5],
                nosrv,
                server_aborts: ended(&|code| matches!(code[0], b'S' | b's')),
                queue_timeouts: ended(&|code| code[0] == b's' && code[1] == b'Q'),
                retries: c.retries,
                redispatches: c.redispatches,
            },
            queue_max: c.srv_queue_max.max(c.backend_queue_max),
            p50: q(latency, 0.50),
            p95: q(latency, 0.95),
            p99: q(latency, 0.99),
            tw_p95: q(0, 0.95),
            timer,
        }
    }
}

/// The figures of one backend or one server, per bucket.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// `host/backend` or `host/backend/server`.
    pub name: String,
    /// `backend` or `server`.
    pub kind: &'static str,
    /// The timer of the buckets' p50..p99: `Tr` (HTTP), `Tt` (TCP, which
    /// has no Tr); absent when no request had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer: Option<&'static str>,
    pub buckets: Vec<Bucket>,
}

impl Series {
    fn new(name: String, kind: &'static str, buckets: Vec<Bucket>) -> Series {
        Series {
            timer: buckets.iter().find_map(|b| b.timer),
            name,
            kind,
            buckets,
        }
    }
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

/// One server's outages across the load balancers that report it, when
/// the story has more than one: "DOWN on 2/3 (lb1, lb2) · UP on lb3".
#[derive(Clone, Debug, Serialize)]
pub struct FleetOutage {
    /// `backend/server`.
    pub server: String,
    /// Hosts on which it was DOWN in the window, first down first.
    pub down_on: Vec<String>,
    /// Hosts that report the server (a transition or a check line of it).
    pub of: usize,
    /// Those never DOWN in the window.
    pub not_down_on: Vec<String>,
    /// The first host's DOWN.
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub down_at: Millis,
    /// The last host's UP, when every host's outage ended.
    #[serde(serialize_with = "opt_time")]
    pub up_at: Option<Millis>,
}

/// Backend, server, and the hosts that sent it requests in a window.
type Served = BTreeMap<String, BTreeMap<String, std::collections::BTreeSet<String>>>;

/// The outages grouped by server across hosts (empty when one host or
/// none reports the server). A host reports a server by its transitions,
/// its check lines, and the requests it sent the server in the window
/// (`served`): one that served it through another's outage saw it UP, as
/// the fleet alert counts it (`alerts::fleet`).
fn fleet_outages(
    facts: &Facts,
    served: &Served,
    outages: &[(Millis, Option<Millis>, &TransitionRow)],
) -> Vec<FleetOutage> {
    let mut reporting: BTreeMap<(&str, &str), std::collections::BTreeSet<&str>> = BTreeMap::new();
    for (h, b, srv) in facts
        .transitions
        .iter()
        .map(|t| (&t.host, &t.backend, &t.server))
        .chain(
            facts
                .checks
                .iter()
                .map(|c| (&c.host, &c.backend, &c.server)),
        )
        .chain(served.iter().flat_map(|(b, servers)| {
            (servers.iter()).flat_map(move |(srv, hosts)| hosts.iter().map(move |h| (h, b, srv)))
        }))
    {
        reporting.entry((b, srv)).or_default().insert(h);
    }
    let hosts: std::collections::BTreeSet<&str> = reporting.values().flatten().copied().collect();
    if hosts.len() < 2 {
        return Vec::new();
    }
    let mut by_server: BTreeMap<(&str, &str), Vec<&DownPeriod>> = BTreeMap::new();
    for o in outages {
        by_server
            .entry((o.2.backend.as_str(), o.2.server.as_str()))
            .or_default()
            .push(o);
    }
    by_server
        .into_iter()
        .map(|((b, srv), list)| {
            let mut down_on: Vec<String> = Vec::new();
            for o in &list {
                let h = if o.2.host.is_empty() {
                    "-"
                } else {
                    o.2.host.as_str()
                };
                if !down_on.iter().any(|x| x == h) {
                    down_on.push(h.to_string());
                }
            }
            let reported = reporting.get(&(b, srv));
            let not_down_on = reported
                .into_iter()
                .flatten()
                .filter(|h| !list.iter().any(|o| o.2.host == **h))
                .map(|h| h.to_string())
                .collect();
            FleetOutage {
                server: format!("{b}/{srv}"),
                of: reported.map_or(0, |r| r.len()).max(down_on.len()),
                not_down_on,
                down_at: list.iter().map(|o| o.0).min().unwrap_or(0),
                up_at: list
                    .iter()
                    .map(|o| o.1)
                    .collect::<Option<Vec<_>>>()
                    .and_then(|ups| ups.into_iter().max()),
                down_on,
            }
        })
        .collect()
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
    /// 503s HAProxy answered itself, no server being available (`<NOSRV>`).
    pub nosrv: u64,
    /// Requests ended by the server side (termination state `S...` or
    /// `s...`: aborted, refused, timed out).
    pub server_aborts: u64,
    /// Requests that timed out in a queue (`sQ`).
    pub queue_timeouts: u64,
    pub retries: u64,
    pub redispatches: u64,
}

impl Impact {
    pub fn add(&mut self, o: &Impact) {
        self.requests += o.requests;
        self.status_5xx += o.status_5xx;
        self.nosrv += o.nosrv;
        self.server_aborts += o.server_aborts;
        self.queue_timeouts += o.queue_timeouts;
        self.retries += o.retries;
        self.redispatches += o.redispatches;
    }
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
    /// The outages by server across load balancers (several hosts only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleet: Vec<FleetOutage>,
    pub no_server: Vec<NoServer>,
    /// Requests in the minutes the incident touches (the rollups hold
    /// minutes), as they count them.
    pub impact: Impact,
    /// Periods in the window where a backend's requests failed or slowed
    /// down (see [`degradations`]).
    pub degraded: Vec<Degradation>,
    /// Alerts that fired during the incident.
    pub alerts_fired: usize,
    /// When the first alert reached a remote sink.
    #[serde(serialize_with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub first_delivery: Option<Millis>,
}

/// A backend's requests failing or slow for a while.
#[derive(Clone, Debug, Serialize)]
pub struct Degradation {
    pub backend: String,
    /// `errors` (answered 5xx or ended by the server side) or `latency`
    /// (p95 of the series' timer).
    pub kind: &'static str,
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub start: Millis,
    /// The end of its last bucket.
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub end: Millis,
    /// In words: `12 of 32 requests failed (37%)`, `Tr p95 up to 309 ms
    /// (usually 6 ms)`.
    pub what: String,
}

/// A bucket's requests failed when at least this share did (answered
/// 5xx, or ended by the server side: TCP has no status).
const ERROR_SHARE: f64 = 0.05;
/// A window of failing buckets is told when this many requests failed.
const ERRORS_TOLD: u64 = 3;
/// A bucket is slow when its p95 is at least this many times the window's
/// usual one (the median of its buckets' p95) and ...
const SLOW_FACTOR: u64 = 2;
/// ... at least this much above it (ms): a 2 ms answer becoming 5 ms is
/// not news.
const SLOW_MS: u64 = 100;

/// Each backend's error and latency degradations in the window: runs of
/// failing (or slow) buckets, a quiet bucket between two of them not
/// ending the run.
pub fn degradations(series: &[Series], width: Millis) -> Vec<Degradation> {
    let mut out = Vec::new();
    for x in series.iter().filter(|x| x.kind == "backend") {
        let failed = |b: &Bucket| b.counts.status_5xx.max(b.counts.server_aborts);
        let mut p95: Vec<u64> = x.buckets.iter().filter_map(|b| b.p95).collect();
        p95.sort_unstable();
        let usual = p95.get(p95.len() / 2).copied();
        let slow = |b: &Bucket| match (b.p95, usual) {
            (Some(p), Some(u)) => p >= SLOW_FACTOR * u.max(1) && p >= u + SLOW_MS,
            _ => false,
        };
        let failing = |b: &Bucket| {
            failed(b) > 0 && failed(b) as f64 >= ERROR_SHARE * b.counts.requests as f64
        };
        for kind in ["errors", "latency"] {
            let bad = |b: &Bucket| {
                if kind == "errors" {
                    failing(b)
                } else {
                    slow(b)
                }
            };
            // (start, end, failed, requests, highest p95)
            let mut run: Option<(Millis, Millis, u64, u64, u64)> = None;
            let flush = |r: (Millis, Millis, u64, u64, u64), out: &mut Vec<Degradation>| {
                let (start, end, f, n, peak) = r;
                let what = if kind == "errors" {
                    if f < ERRORS_TOLD {
                        return;
                    }
                    format!(
                        "{f} of {n} requests failed ({:.0}%)",
                        f as f64 * 100.0 / n.max(1) as f64
                    )
                } else {
                    format!(
                        "{} p95 up to {peak} ms (usually {} ms)",
                        x.timer.unwrap_or("Tr"),
                        usual.unwrap_or(0)
                    )
                };
                out.push(Degradation {
                    backend: x.name.clone(),
                    kind,
                    start,
                    end,
                    what,
                });
            };
            for b in &x.buckets {
                let end = b.start + width;
                match (&mut run, bad(b)) {
                    (Some(r), true) if b.start <= r.1 + width => {
                        r.1 = end;
                        r.2 += failed(b);
                        r.3 += b.counts.requests;
                        r.4 = r.4.max(b.p95.unwrap_or(0));
                    }
                    (_, true) => {
                        if let Some(r) = run.take() {
                            flush(r, &mut out);
                        }
                        let n = b.counts.requests;
                        run = Some((b.start, end, failed(b), n, b.p95.unwrap_or(0)));
                    }
                    (Some(r), false) if b.start > r.1 + width => {
                        flush(run.take().expect("matched"), &mut out);
                    }
                    _ => {}
                }
            }
            if let Some(r) = run {
                flush(r, &mut out);
            }
        }
    }
    out.sort_by_key(|d| d.start);
    out
}

/// An incident's story: what `timeline` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Story {
    /// The window shown (padded): `[from, to)`.
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub from: Millis,
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub to: Millis,
    /// Each bucket's width: `1m` from a database (it keeps minutes), down
    /// to `1s` for a short window read from files.
    pub bucket: String,
    /// The same in milliseconds.
    pub bucket_ms: Millis,
    pub summary: Summary,
    pub events: Vec<Event>,
    pub series: Vec<Series>,
    /// Each server's states over the window, for the chart.
    pub lanes: Vec<Lane>,
    /// With `--haproxy-config`: the declared servers this window says
    /// nothing of, and the servers in it that are not declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<InventoryNote>,
}

/// What `--haproxy-config` adds to a story (names `host/backend/server`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct InventoryNote {
    /// Declared, with no event in the window: each also has a lane, in the
    /// state HAProxy starts it in.
    pub no_event: Vec<String>,
    pub not_declared: Vec<String>,
}

impl Story {
    /// Sets the story against the configuration's servers, for every host
    /// it names (`-` when none).
    pub fn inventory(&mut self, inv: &crate::inventory::Inventory) {
        let host_of = |name: &str| name.split('/').next().unwrap_or("-").to_string();
        let mut hosts: Vec<String> = self.lanes.iter().map(|l| host_of(&l.server)).collect();
        hosts.extend(self.series.iter().map(|x| host_of(&x.name)));
        hosts.sort();
        hosts.dedup();
        if hosts.is_empty() {
            hosts.push("-".into());
        }
        let mut note = InventoryNote::default();
        for l in &self.lanes {
            let mut parts = l.server.splitn(3, '/').skip(1);
            let (b, srv) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !crate::inventory::is_placeholder(srv) && inv.get(b, srv).is_none() {
                note.not_declared.push(l.server.clone());
            }
        }
        for h in &hosts {
            for c in inv.servers() {
                let name = server_name(if h == "-" { "" } else { h }, &c.backend, &c.server);
                if self.lanes.iter().any(|l| l.server == name) {
                    continue;
                }
                self.lanes.push(Lane {
                    server: name.clone(),
                    backend: backend_name(if h == "-" { "" } else { h }, &c.backend),
                    spans: vec![Span {
                        start: self.from,
                        end: self.to,
                        state: c.initial().0.as_str().to_string(),
                    }],
                    failed_checks: Vec::new(),
                });
                note.no_event.push(name);
            }
        }
        self.lanes.sort_by(|a, b| a.server.cmp(&b.server));
        self.inventory = Some(note);
    }
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

/// Proxies named in one grouped event at most; the rest are counted.
const PROXIES_NAMED: usize = 8;

/// HAProxy's starts, reloads and stops in `[from, to)` as events. A reload
/// stops and starts every proxy within a moment: the lines of one kind
/// from one host less than a second apart are one event naming the
/// proxies (`Proxy fe, be_app, be_tcp stopped`), not one line each.
fn process_events(process: &[crate::model::ProcessEvent], from: Millis, to: Millis) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    // The group being built: its kind, host, first time and proxies.
    let mut group: Option<(&str, &str, Millis, Vec<&str>, &str)> = None;
    let flush = |g: (&str, &str, Millis, Vec<&str>, &str), out: &mut Vec<Event>| {
        let (event, host, at, proxies, message) = g;
        let subject = if host.is_empty() { "-" } else { host }.to_string();
        let what = if proxies.len() <= 1 {
            message.to_string()
        } else {
            let mut names = proxies[..proxies.len().min(PROXIES_NAMED)].join(", ");
            if proxies.len() > PROXIES_NAMED {
                let _ = std::fmt::Write::write_fmt(
                    &mut names,
                    format_args!(" and {} more", proxies.len() - PROXIES_NAMED),
                );
            }
            let verb = event.strip_prefix("proxy_").unwrap_or(event);
            format!("{} proxies {verb}: {names}", proxies.len())
        };
        out.push(Event {
            at,
            kind: "haproxy",
            subject,
            what,
            detail: None,
        });
    };
    for p in process.iter().filter(|p| p.at >= from && p.at < to) {
        match &mut group {
            Some((event, host, at, proxies, _))
                if *event == p.event
                    && *host == p.host
                    && !p.proxy.is_empty()
                    && !proxies.is_empty()
                    && p.at - *at < 1000 =>
            {
                proxies.push(&p.proxy);
            }
            _ => {
                if let Some(g) = group.take() {
                    flush(g, &mut out);
                }
                let proxies = if p.proxy.is_empty() {
                    vec![]
                } else {
                    vec![p.proxy.as_str()]
                };
                group = Some((&p.event, &p.host, p.at, proxies, &p.message));
            }
        }
    }
    if let Some(g) = group {
        flush(g, &mut out);
    }
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
        events.extend(process_events(&facts.process, from, to));
        let (s0, s1) = incident.map_or((from, to), |i| (i.start, i.end.map_or(to, |e| e + 1)));
        let mut first_delivery: Option<Millis> = None;
        let mut alerts_fired = 0;
        for a in &facts.alerts {
            let al = &a.alert;
            // What it is about, named as the other events name it.
            let label = |k: &str| al.labels.get(k).map(String::as_str);
            // A fleet alert has no host: `*` for every load balancer.
            let host = label("host").unwrap_or("*");
            let subject = match (label("backend"), label("server")) {
                (Some(b), Some(srv)) => server_name(host, b, srv),
                (Some(b), None) => backend_name(host, b),
                _ => label("host").map_or_else(|| al.rule.clone(), str::to_string),
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
            "haproxy" => 0,
            "check" => 1,
            "transition" => 2,
            "no_server" | "server_available" => 3,
            "alert_firing" | "alert_resolved" => 4,
            _ => 5,
        };
        events.sort_by(|a, b| {
            (a.at, rank(a.kind), &a.subject).cmp(&(b.at, rank(b.kind), &b.subject))
        });

        let periods: Vec<_> = down_periods(&facts.transitions)
            .into_iter()
            .filter(|(start, end, _)| *start < s1 && end.is_none_or(|e| e >= s0))
            .collect();
        let fleet = fleet_outages(facts, &minutes.served, &periods);
        let outages: Vec<Outage> = periods
            .into_iter()
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
        let width = minutes.width;
        for (name, minutes) in minutes.backends {
            let buckets: Vec<Bucket> = minutes
                .iter()
                .map(|(t, (m, nosrv))| Bucket::of(*t, m, *nosrv))
                .collect();
            // The buckets the incident touches.
            for b in buckets
                .iter()
                .filter(|b| b.start < s1 && b.start + width > s0)
            {
                impact.add(&b.counts);
            }
            series.push(Series::new(name, "backend", buckets));
        }
        let mut servers = minutes.servers;
        for (name, buckets) in minutes.gathering {
            let buckets = buckets.iter().map(|(t, m)| Bucket::of(*t, m, 0));
            servers.entry(name).or_default().extend(buckets);
        }
        for (name, mut buckets) in servers {
            // Rows come in the table's order (by server, then minute).
            buckets.sort_by_key(|b| b.start);
            series.push(Series::new(name, "server", buckets));
        }
        // Degradations in the window; those the incident overlaps in its
        // summary, every one in the events.
        let all = degradations(&series, width);
        for d in &all {
            events.push(Event {
                at: d.start,
                kind: "degraded",
                subject: d.backend.clone(),
                what: format!("{}: {}", d.kind, d.what),
                detail: Some(format!("for {}", human(d.end - d.start))),
            });
        }
        events.sort_by(|a, b| {
            (a.at, rank(a.kind), &a.subject).cmp(&(b.at, rank(b.kind), &b.subject))
        });
        let degraded = all
            .into_iter()
            .filter(|d| d.start < s1 && d.end > s0)
            .collect();
        Story {
            lanes: lanes(facts, &series, from, to),
            inventory: None,
            from,
            to,
            bucket: width_text(width),
            bucket_ms: width,
            summary: Summary {
                incident: incident.map(|i| i.id.clone()),
                start: incident.map_or(from, |i| i.start),
                end: incident.map_or(Some(to), |i| i.end),
                first_sign,
                detected_after_ms,
                recovered_after_ms,
                outages,
                fleet,
                no_server,
                impact,
                degraded,
                alerts_fired,
                first_delivery,
            },
            events,
            series,
        }
    }
}

/// A bucket's width as the story names it: `1m`, `10s`.
fn width_text(w: Millis) -> String {
    if w % 60_000 == 0 {
        format!("{}m", w / 60_000)
    } else if w % 1000 == 0 {
        format!("{}s", w / 1000)
    } else {
        format!("{w}ms")
    }
}

pub use crate::time::human;

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
            process: vec![],
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
    fn a_reload_is_one_event_naming_its_proxies() {
        let p = |at: Millis, host: &str, event: &str, proxy: &str, message: &str| {
            crate::model::ProcessEvent {
                at,
                host: host.into(),
                event: event.into(),
                proxy: proxy.into(),
                message: message.into(),
            }
        };
        let mut process = vec![p(1_000, "lb1", "reloading", "", "Reloading HAProxy")];
        for (i, name) in ["fe", "be_app", "be_tcp"].iter().enumerate() {
            let message = format!("Proxy {name} stopped (cumulated conns: FE: 1, BE: 0).");
            process.push(p(
                1_200 + i as Millis,
                "lb1",
                "proxy_stopped",
                name,
                &message,
            ));
        }
        // Another host's stop at the same moment is its own event; twelve
        // proxies are named up to eight.
        process.push(p(
            1_300,
            "lb2",
            "proxy_stopped",
            "fe",
            "Proxy fe stopped (x).",
        ));
        for i in 0..12 {
            process.push(p(
                5_000,
                "lb1",
                "proxy_started",
                &format!("p{i}"),
                "Proxy p started.",
            ));
        }
        process.push(p(9_000, "lb1", "loading_failure", "", "Loading failure!"));
        let events = process_events(&process, 0, 9_000);
        let what: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.subject.as_str(), e.what.as_str()))
            .collect();
        assert_eq!(
            what,
            [
                ("lb1", "Reloading HAProxy"),
                ("lb1", "3 proxies stopped: fe, be_app, be_tcp"),
                ("lb2", "Proxy fe stopped (x)."),
                (
                    "lb1",
                    "12 proxies started: p0, p1, p2, p3, p4, p5, p6, p7 and 4 more"
                ),
            ],
            "the failure at 9 s is past the window"
        );
        assert!(events.iter().all(|e| e.kind == "haproxy"));
        assert_eq!(events[1].at, 1_200);
    }

    #[test]
    fn degradations_are_runs_of_failing_or_slow_buckets() {
        let b = |i: Millis, requests: u64, errors: u64, p95: u64| Bucket {
            start: i * 1000,
            counts: Impact {
                requests,
                status_5xx: errors,
                ..Default::default()
            },
            queue_max: 0,
            p50: Some(p95 / 2),
            p95: Some(p95),
            p99: Some(p95),
            tw_p95: None,
            timer: Some("Tr"),
        };
        let buckets = vec![
            b(0, 100, 0, 10),
            b(1, 100, 10, 10), // failing
            b(2, 100, 0, 10),  // one quiet bucket: the run goes on
            b(3, 100, 6, 10),  // failing
            b(4, 100, 0, 10),
            b(5, 100, 0, 10),
            b(6, 100, 2, 10),  // 2% failed: not failing
            b(7, 100, 0, 300), // slow: 30x the usual 10 ms
            b(8, 100, 0, 105), // 10x but only 95 ms above: not slow
            b(9, 100, 1, 10),  // 1%: not failing
            b(10, 10, 1, 10),  // 10%, but a run of one failure is not told
        ];
        let series = vec![Series::new("lb/be".into(), "backend", buckets)];
        let d = degradations(&series, 1000);
        let said: Vec<(&str, Millis, Millis, &str)> = d
            .iter()
            .map(|d| (d.kind, d.start, d.end, d.what.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                // Of the failing buckets' requests.
                ("errors", 1000, 4000, "16 of 200 requests failed (8%)"),
                ("latency", 7000, 8000, "Tr p95 up to 300 ms (usually 10 ms)"),
            ]
        );
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(350), "350ms");
        assert_eq!(human(12_300), "12.3s");
        assert_eq!(human(125_000), "2m05s");
        assert_eq!(human(3_720_000), "1h02m");
    }
}
