//! Degradation rules: a server that is UP but slow, failing or queueing.
//!
//! They read the per-minute rollups (the same minutes the store keeps), not
//! raw requests, so that `analyze` (whose requests are parsed on several
//! threads) and `listen` evaluate the same data in the same order: minute
//! by minute, once a minute is closed. A minute closes when event time has
//! passed its end by [`GRACE_MS`] (a request is logged when it ends, so its
//! minute fills a little late).
//!
//! Each rule holds a condition per server: pending when it first holds,
//! firing when it has held for `for`, resolved when it has not held for
//! `for` again. A minute without enough requests does not hold.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::{parse_duration, Alert, RuleOptions, Severity, Status};
use crate::engine::rollup::{Minute, Rollup, MINUTE_MS};
use crate::engine::ServerKey;
use crate::time::Millis;

/// How long after a minute's end event time must go before it is judged.
pub const GRACE_MS: Millis = 30_000;

/// A `for` duration: zero is allowed (fire at the first minute).
fn dur(s: &str) -> Option<Millis> {
    crate::time::parse_duration(s).ok()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyOptions {
    #[serde(flatten)]
    pub rule: RuleOptions,
    /// Sliding window, whole minutes (e.g. "1m", "5m").
    pub window: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub min_requests: u64,
    /// 0.95 for p95.
    pub percentile: f64,
    /// Above this many milliseconds (Tr for HTTP, Tt for TCP)...
    pub threshold_ms: Option<u64>,
    /// ... or above this many times the server's own baseline (a decayed
    /// average of its previous hour of minutes).
    pub baseline_factor: Option<f64>,
}

impl Default for LatencyOptions {
    fn default() -> Self {
        LatencyOptions {
            rule: RuleOptions::default(),
            window: "1m".into(),
            for_: "2m".into(),
            min_requests: 20,
            percentile: 0.95,
            threshold_ms: Some(1000),
            baseline_factor: Some(3.0),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorOptions {
    #[serde(flatten)]
    pub rule: RuleOptions,
    pub window: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub min_requests: u64,
    /// Share of 5xx and server-side terminations, 0.05 for 5%.
    pub max_ratio: f64,
}

impl Default for ErrorOptions {
    fn default() -> Self {
        ErrorOptions {
            rule: RuleOptions::default(),
            window: "1m".into(),
            for_: "2m".into(),
            min_requests: 20,
            max_ratio: 0.05,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueOptions {
    #[serde(flatten)]
    pub rule: RuleOptions,
    pub window: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub min_requests: u64,
    /// Tw (time in queue) p95 above this many milliseconds...
    pub tw_p95_ms: u64,
    /// ... or the backend queue above this many requests.
    pub max_backend_queue: u32,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            rule: RuleOptions::default(),
            window: "1m".into(),
            for_: "2m".into(),
            min_requests: 1,
            tw_p95_ms: 500,
            max_backend_queue: 10,
        }
    }
}

/// Checks what serde cannot: durations and ranges.
pub fn check(l: &LatencyOptions, e: &ErrorOptions, q: &QueueOptions) -> Result<(), String> {
    for (rule, window, for_) in [
        ("haproxy_server_latency", &l.window, &l.for_),
        ("haproxy_server_errors", &e.window, &e.for_),
        ("haproxy_backend_queue", &q.window, &q.for_),
    ] {
        match parse_duration(window) {
            Some(w) if w % MINUTE_MS == 0 => {}
            _ => {
                return Err(format!(
                    "{rule}.window = {window:?}: give whole minutes (e.g. 1m, 5m)"
                ))
            }
        }
        if dur(for_).is_none() {
            return Err(format!(
                "{rule}.for = {for_:?}: not a duration (e.g. 2m, 0s)"
            ));
        }
    }
    if !(0.0..1.0).contains(&l.percentile) || l.percentile == 0.0 {
        return Err(
            "haproxy_server_latency.percentile must be between 0 and 1 (0.95 for p95)".into(),
        );
    }
    if l.threshold_ms.is_none() && l.baseline_factor.is_none() {
        return Err("haproxy_server_latency needs threshold_ms or baseline_factor".into());
    }
    if !(0.0..=1.0).contains(&e.max_ratio) {
        return Err("haproxy_server_errors.max_ratio must be between 0 and 1 (0.05 for 5%)".into());
    }
    Ok(())
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Cond {
    /// Since when the condition has held (pending or firing).
    holding_since: Option<Millis>,
    /// Since when it has not held, while firing.
    clear_since: Option<Millis>,
    firing: bool,
}

/// Per-server minutes and condition states.
#[derive(Debug, Default)]
pub struct Degradation {
    /// Each server's index in `servers`. Everything else is kept by index:
    /// a month of minutes reaches each server millions of times, and
    /// hashing or comparing its three names at each step was most of the
    /// run.
    ids: FxHashMap<ServerKey, u32>,
    servers: Vec<Server>,
    /// The servers with an open minute, by minute: the oldest open minute
    /// is the first key, and closing it touches only its servers (not a
    /// scan of every server at each commit).
    by_minute: BTreeMap<Millis, Vec<u32>>,
    /// The servers with a condition under way (pending or firing).
    under_way: BTreeSet<u32>,
    /// Minutes before this are closed.
    closed_until: Millis,
    /// Minutes that arrived after their minute was closed (not judged).
    pub late_minutes: u64,
}

/// One server's minutes and conditions.
#[derive(Debug)]
struct Server {
    key: ServerKey,
    /// Open minutes, oldest first: one or two (a `BTreeMap` here took a
    /// 3 KB node for each of 100,000 servers).
    open: Vec<(Millis, Minute)>,
    /// Closed minutes, the last few (the longest window of the rules in
    /// use, at most [`KEPT_MINUTES`]).
    closed: VecDeque<(Millis, Minute)>,
    /// Decayed average of the server's per-minute latency percentile, and
    /// how many minutes it has learnt from.
    baseline: Option<(f64, u32)>,
    /// The conditions under way, by rule.
    conds: Vec<(String, Cond)>,
}

impl Server {
    /// A closed minute joins the server's last `keep`: the newest minutes
    /// are all a window of `keep` minutes or fewer can read.
    fn keep_closed(&mut self, minute: Millis, m: Minute, keep: usize) {
        while self.closed.len() >= keep.max(1) {
            self.closed.pop_front();
        }
        // Room for one more, not four (a kilobyte), while there are few:
        // most of 100,000 servers keep one or two.
        if self.closed.len() == self.closed.capacity() && self.closed.len() < 4 {
            self.closed.reserve_exact(1);
        }
        self.closed.push_back((minute, m));
    }

    /// Adds a piece of an open minute (merged with the minute's other
    /// pieces); whether the minute is new here.
    fn add_open(&mut self, minute: Millis, m: &Minute) -> bool {
        match self.open.binary_search_by_key(&minute, |(t, _)| *t) {
            Ok(i) => {
                self.open[i].1.merge(m);
                false
            }
            Err(i) => {
                if self.open.len() == self.open.capacity() && self.open.len() < 4 {
                    self.open.reserve_exact(1);
                }
                self.open.insert(i, (minute, m.clone()));
                true
            }
        }
    }

    fn take_open(&mut self, minute: Millis) -> Option<Minute> {
        let i = self.open.binary_search_by_key(&minute, |(t, _)| *t).ok()?;
        Some(self.open.remove(i).1)
    }
}

/// The closed minutes of one server that its rules' windows read. Counts
/// are summed as asked (a few fields a minute); a window of several
/// minutes is merged once, and only for a rule that reads a percentile
/// over enough requests: judging is done for every server's every minute,
/// and over a sparse log nearly every one of them fails `min_requests`.
struct Windows<'a> {
    closed: &'a VecDeque<(Millis, Minute)>,
    end: Millis,
    /// Windows of several minutes merged so far, by width.
    merged: Vec<(usize, Minute)>,
}

/// What a window's counts say.
struct Tally {
    requests: u64,
    errors: u64,
    backend_queue_max: u32,
}

impl<'a> Windows<'a> {
    /// The closed minutes among the `n` ending at `end`, newest first.
    fn minutes(&self, n: usize) -> impl Iterator<Item = &'a Minute> {
        let from = self.end - n as Millis * MINUTE_MS;
        self.closed
            .iter()
            .rev()
            .take_while(move |(t, _)| *t >= from)
            .map(|(_, m)| m)
    }

    fn tally(&self, n: usize) -> Tally {
        let mut t = Tally {
            requests: 0,
            errors: 0,
            backend_queue_max: 0,
        };
        for m in self.minutes(n) {
            t.requests += m.counts.requests;
            t.errors += m.counts.errors;
            t.backend_queue_max = t.backend_queue_max.max(m.counts.backend_queue_max);
        }
        t
    }

    /// Timer `k`'s value at quantile `q` over `n` minutes (see
    /// [`crate::engine::rollup::TIMERS`]), `None` if no request had it.
    fn quantile(&mut self, n: usize, k: usize, q: f64) -> Option<u64> {
        let mut it = self.minutes(n);
        let first = it.next()?;
        if it.next().is_none() {
            return first.quantile(k, q);
        }
        if let Some((_, m)) = self.merged.iter().find(|(w, _)| *w == n) {
            return m.quantile(k, q);
        }
        let mut m = Minute::default();
        for x in self.minutes(n) {
            m.merge(x);
        }
        let v = m.quantile(k, q);
        self.merged.push((n, m));
        v
    }

    /// The latency percentile `q` over `n` minutes and the timer it is of:
    /// Tr (HTTP), else Tt (TCP has no Tr).
    fn latency(&mut self, n: usize, q: f64) -> Option<(u64, &'static str)> {
        match self.quantile(n, 1, q) {
            Some(v) => Some((v, "Tr")),
            None => self.quantile(n, 2, q).map(|v| (v, "Tt")),
        }
    }
}

/// What [`Degradation`] must carry across a restart besides the minutes
/// themselves (those are in the store's rollups): conditions with their
/// `for` timers, baselines, and how far minutes were judged.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct DegradationState {
    conds: Vec<((String, ServerKey), Cond)>,
    baseline: Vec<(ServerKey, (f64, u32))>,
    closed_until: Millis,
}

/// Closed minutes kept per server: the longest window a rule may have.
const KEPT_MINUTES: usize = 60;

impl Degradation {
    /// `key`'s index, given on first sight.
    fn id(&mut self, key: &ServerKey) -> u32 {
        if let Some(&i) = self.ids.get(key) {
            return i;
        }
        let i = u32::try_from(self.servers.len()).expect("fewer than 4 billion servers");
        self.ids.insert(key.clone(), i);
        self.servers.push(Server {
            key: key.clone(),
            open: Vec::new(),
            closed: VecDeque::new(),
            baseline: None,
            conds: Vec::new(),
        });
        i
    }

    pub fn state(&self) -> DegradationState {
        // As it always was kept: conditions by rule then server, baselines
        // by server.
        let mut conds: Vec<_> = (self.servers.iter())
            .flat_map(|s| {
                (s.conds.iter()).map(move |(r, c)| ((r.clone(), s.key.clone()), c.clone()))
            })
            .collect();
        conds.sort_by(|a, b| a.0.cmp(&b.0));
        let mut baseline: Vec<_> = (self.servers.iter())
            .filter_map(|s| Some((s.key.clone(), s.baseline?)))
            .collect();
        baseline.sort_by(|x, y| x.0.cmp(&y.0));
        DegradationState {
            conds,
            baseline,
            closed_until: self.closed_until,
        }
    }

    /// Carries on from a stopped run: its state, and the stored minutes
    /// from the longest window before `closed_until` on (older ones are
    /// closed, newer ones still open: stored, never judged).
    pub fn restore(&mut self, s: DegradationState, mut minutes: Vec<Rollup>) {
        for server in &mut self.servers {
            server.conds.clear();
            server.baseline = None;
        }
        self.under_way.clear();
        for ((rule, key), c) in s.conds {
            let id = self.id(&key);
            self.servers[id as usize].conds.push((rule, c));
            self.under_way.insert(id);
        }
        for (key, b) in s.baseline {
            let id = self.id(&key);
            self.servers[id as usize].baseline = Some(b);
        }
        self.closed_until = s.closed_until;
        minutes.sort_by_key(|r| r.minute);
        let open = minutes.partition_point(|r| r.minute < self.closed_until);
        self.add(&minutes[open..]);
        for r in minutes.into_iter().take(open) {
            let id = self.id(&r.key);
            self.servers[id as usize].keep_closed(r.minute, r.data, KEPT_MINUTES);
        }
    }

    /// Minutes before this are closed (judged).
    pub fn closed_until(&self) -> Millis {
        self.closed_until
    }

    /// How far back stored minutes are needed by [`Degradation::restore`].
    pub fn restore_from(s: &DegradationState) -> Millis {
        s.closed_until - KEPT_MINUTES as Millis * MINUTE_MS
    }

    pub fn add(&mut self, rollups: &[Rollup]) {
        for r in rollups {
            if r.minute < self.closed_until {
                self.late_minutes += 1;
                continue;
            }
            let id = self.id(&r.key);
            if self.servers[id as usize].add_open(r.minute, &r.data) {
                self.by_minute.entry(r.minute).or_default().push(id);
            }
        }
    }

    /// Closes the minutes that ended before `t - GRACE_MS` and judges them,
    /// minute by minute; alert events go to `out`.
    pub fn close_until(
        &mut self,
        t: Millis,
        rules: &super::RuleFile,
        runbook: &str,
        out: &mut Vec<Alert>,
    ) {
        let limit = t.saturating_sub(GRACE_MS);
        let (list, q) = (Rule::all(rules), rules.haproxy_server_latency.percentile);
        // What the longest window reads: older minutes are dropped as
        // they close (a rule of one minute keeps one).
        let keep = list.iter().map(|r| r.window).max().unwrap_or(1);
        let keep = keep.clamp(1, KEPT_MINUTES);
        loop {
            // The oldest open minute that is over.
            let next = self
                .by_minute
                .keys()
                .next()
                .copied()
                .filter(|m| m + MINUTE_MS <= limit);
            let Some(minute) = next else { break };
            let end = minute + MINUTE_MS;
            let mut judged = self.by_minute.remove(&minute).unwrap_or_default();
            for &id in &judged {
                let s = &mut self.servers[id as usize];
                if let Some(m) = s.take_open(minute) {
                    s.keep_closed(minute, m, keep);
                }
            }
            // Servers with a condition under way are judged too: a minute
            // without their requests does not hold.
            judged.extend(self.under_way.iter().copied());
            judged.sort_unstable();
            judged.dedup();
            // In the servers' order (that of their names), whatever the
            // order their minutes came in.
            let servers = &self.servers;
            judged.sort_unstable_by(|a, b| servers[*a as usize].key.cmp(&servers[*b as usize].key));
            for id in judged {
                self.judge(id, minute, end, &list, q, runbook, out);
            }
            self.closed_until = end;
        }
    }

    /// Judges server `id`'s closed minute `minute` (ending at `end`) by
    /// each rule.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &mut self,
        id: u32,
        minute: Millis,
        end: Millis,
        list: &[Rule<'_>],
        baseline_q: f64,
        runbook: &str,
        out: &mut Vec<Alert>,
    ) {
        let Server {
            key,
            closed,
            conds,
            baseline,
            ..
        } = &mut self.servers[id as usize];
        let mut w = Windows {
            closed,
            end,
            merged: Vec::new(),
        };
        let has_minute = w.closed.back().is_some_and(|(t, _)| *t == minute);
        let base = *baseline;
        for rule in list {
            let opts = rule.kind.rule();
            if !opts.enabled || !opts.selects(&key.host, &key.backend, Some(&key.server)) {
                continue;
            }
            let holds = has_minute && rule.holds(&mut w, base);
            let Some((status, starts_at, ends_at)) = step(conds, rule.name, holds, end, rule.for_)
            else {
                continue;
            };
            // Words only for an alert that is sent.
            let (summary, description) = rule.describe(&mut w, key, has_minute, base);
            let severity = opts.severity.unwrap_or(Severity::Warning);
            out.push(Alert {
                rule: rule.name.into(),
                status,
                severity,
                labels: super::Evaluator::labels(
                    rule.name,
                    opts,
                    severity,
                    &key.host,
                    &key.backend,
                    Some(&key.server),
                ),
                starts_at,
                ends_at,
                summary,
                description,
                runbook: runbook.into(),
            });
        }
        // The baseline learns from the minute just judged (after it was
        // compared: a slow minute is not its own baseline).
        if has_minute {
            if let Some((x, _)) = w.latency(1, baseline_q) {
                let x = x as f64;
                let b = baseline.get_or_insert((x, 0));
                b.0 += (x - b.0) / 60.0;
                b.1 += 1;
            }
        }
        match conds.is_empty() {
            true => self.under_way.remove(&id),
            false => self.under_way.insert(id),
        };
    }
}

/// One rule's condition on one server after a judged minute: pending
/// when it first holds, firing once it has held for `for_`, resolved once
/// it has not held for `for_` again (at least a minute). Returns the alert
/// to send, if any: status, `starts_at`, `ends_at`.
fn step(
    conds: &mut Vec<(String, Cond)>,
    rule: &str,
    holds: bool,
    end: Millis,
    for_: Millis,
) -> Option<(Status, Millis, Option<Millis>)> {
    let at = conds.iter().position(|(r, _)| r == rule);
    if !holds && at.is_none() {
        // What nearly every server's minute is: nothing to keep.
        return None;
    }
    let i = at.unwrap_or_else(|| {
        conds.push((rule.to_string(), Cond::default()));
        conds.len() - 1
    });
    let c = &mut conds[i].1;
    let (event, over) = if holds {
        c.clear_since = None;
        let since = *c.holding_since.get_or_insert(end - MINUTE_MS);
        match !c.firing && end - since >= for_ {
            true => {
                c.firing = true;
                (Some((Status::Firing, end, None)), false)
            }
            false => (None, false),
        }
    } else if c.firing {
        let clear = *c.clear_since.get_or_insert(end - MINUTE_MS);
        match end - clear >= for_.max(MINUTE_MS) {
            true => {
                let starts = c.holding_since.unwrap_or(end);
                (Some((Status::Resolved, starts, Some(end))), true)
            }
            false => (None, false),
        }
    } else {
        (None, true)
    };
    if over {
        conds.remove(i);
    }
    event
}

/// A rule as judged: its name and kind, its window in minutes and its
/// `for`, read once per batch of minutes rather than for each server.
struct Rule<'a> {
    name: &'a str,
    kind: Kind<'a>,
    window: usize,
    for_: Millis,
}

impl<'a> Rule<'a> {
    /// The built-in rules, then the rule file's own `[[rules]]`.
    fn all(rules: &'a super::RuleFile) -> Vec<Rule<'a>> {
        let mut list = vec![
            (
                "haproxy_server_latency",
                Kind::Latency(&rules.haproxy_server_latency),
            ),
            (
                "haproxy_server_errors",
                Kind::Errors(&rules.haproxy_server_errors),
            ),
            (
                "haproxy_backend_queue",
                Kind::Queue(&rules.haproxy_backend_queue),
            ),
        ];
        for r in &rules.rules {
            list.push((r.name.as_str(), r.kind.as_kind()));
        }
        let minutes = |w: &str| (parse_duration(w).unwrap_or(MINUTE_MS) / MINUTE_MS) as usize;
        list.into_iter()
            .map(|(name, kind)| {
                let (window, for_) = match &kind {
                    Kind::Latency(l) => (&l.window, &l.for_),
                    Kind::Errors(e) => (&e.window, &e.for_),
                    Kind::Queue(q) => (&q.window, &q.for_),
                };
                Rule {
                    name,
                    window: minutes(window),
                    for_: dur(for_).unwrap_or(120_000),
                    kind,
                }
            })
            .collect()
    }

    /// Whether the window ending with a minute the server has holds the
    /// rule. Counts first: a percentile is read only over enough requests.
    fn holds(&self, w: &mut Windows, base: Option<(f64, u32)>) -> bool {
        let n = self.window;
        let t = w.tally(n);
        match self.kind {
            Kind::Latency(l) => {
                if t.requests < l.min_requests {
                    return false;
                }
                let Some((v, _)) = w.latency(n, l.percentile) else {
                    return false;
                };
                let over_abs = l.threshold_ms.is_some_and(|t| v > t);
                let over_base = match (l.baseline_factor, base) {
                    (Some(k), Some((b, n))) if n >= 10 && b > 0.0 => v as f64 > k * b,
                    _ => false,
                };
                over_abs || over_base
            }
            Kind::Errors(e) => {
                let ratio = t.errors as f64 / t.requests.max(1) as f64;
                t.requests >= e.min_requests && ratio > e.max_ratio
            }
            Kind::Queue(q) => {
                t.requests >= q.min_requests
                    && (t.backend_queue_max > q.max_backend_queue
                        || w.quantile(n, 0, 0.95).unwrap_or(0) > q.tw_p95_ms)
            }
        }
    }

    /// An alert's summary and description: what the window shows.
    fn describe(
        &self,
        w: &mut Windows,
        key: &ServerKey,
        has_minute: bool,
        base: Option<(f64, u32)>,
    ) -> (String, String) {
        let who = format!(
            "{}/{} on {}",
            key.backend,
            key.server,
            if key.host.is_empty() { "-" } else { &key.host }
        );
        let n = self.window;
        let t = w.tally(n);
        match self.kind {
            Kind::Latency(l) => {
                let what = match w.latency(n, l.percentile) {
                    Some((v, timer)) if has_minute && t.requests >= l.min_requests => {
                        let base_txt = base
                            .filter(|b| b.1 >= 10)
                            .map(|b| format!(", baseline {:.0} ms", b.0))
                            .unwrap_or_default();
                        format!(
                            "p{:.0} of {timer} {v} ms over {} requests in {}{base_txt}",
                            l.percentile * 100.0,
                            t.requests,
                            l.window
                        )
                    }
                    _ => String::new(),
                };
                (format!("{who} is slow"), what)
            }
            Kind::Errors(e) => {
                let ratio = t.errors as f64 / t.requests.max(1) as f64;
                (
                    format!("{who} fails {:.1}% of its requests", ratio * 100.0),
                    format!(
                        "{} of {} requests in {} were 5xx or ended by the server side (termination state S?, sC, SH...).",
                        t.errors, t.requests, e.window
                    ),
                )
            }
            Kind::Queue(q) => {
                let tw = w.quantile(n, 0, 0.95).unwrap_or(0);
                (
                    format!("requests queue in {} for {}", key.backend, key.server),
                    format!(
                        "Tw p95 {tw} ms, backend queue up to {} over {}: servers are at maxconn or too few are UP.",
                        t.backend_queue_max, q.window
                    ),
                )
            }
        }
    }
}

/// A degradation rule of any origin.
enum Kind<'a> {
    Latency(&'a LatencyOptions),
    Errors(&'a ErrorOptions),
    Queue(&'a QueueOptions),
}

impl Kind<'_> {
    fn rule(&self) -> &RuleOptions {
        match self {
            Kind::Latency(l) => &l.rule,
            Kind::Errors(e) => &e.rule,
            Kind::Queue(q) => &q.rule,
        }
    }
}

/// A rule of the rule file's `[[rules]]`: a name and a kind with its
/// options, e.g. `name = "api_slow"`, `kind = "latency"`,
/// `backend = "be_api"`, `threshold_ms = 300`.
#[derive(Clone, Debug, Deserialize)]
pub struct CustomRule {
    pub name: String,
    #[serde(flatten)]
    pub kind: CustomKind,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CustomKind {
    Latency(LatencyOptions),
    Errors(ErrorOptions),
    Queue(QueueOptions),
}

impl CustomKind {
    fn as_kind(&self) -> Kind<'_> {
        match self {
            CustomKind::Latency(l) => Kind::Latency(l),
            CustomKind::Errors(e) => Kind::Errors(e),
            CustomKind::Queue(q) => Kind::Queue(q),
        }
    }

    pub fn rule(&self) -> &RuleOptions {
        match self {
            CustomKind::Latency(l) => &l.rule,
            CustomKind::Errors(e) => &e.rule,
            CustomKind::Queue(q) => &q.rule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::RuleFile;

    fn minute(at: Millis, requests: u64, errors: u64, queue: u32) -> Rollup {
        Rollup {
            key: ServerKey {
                host: "lb1".into(),
                backend: "be".into(),
                server: "s1".into(),
            },
            minute: at,
            data: Minute::of(
                crate::engine::counts::Counts {
                    requests,
                    errors,
                    backend_queue_max: queue,
                    ..Default::default()
                },
                [None, None, None],
            ),
        }
    }

    /// Feeds minutes 0..n (one per minute) and returns (rule, status, time).
    fn run(rules: &RuleFile, minutes: &[(u64, u64, u32)]) -> Vec<(String, Status, Millis)> {
        let mut d = Degradation::default();
        let mut out = Vec::new();
        for (i, &(r, e, q)) in minutes.iter().enumerate() {
            let at = i as Millis * MINUTE_MS;
            d.add(&[minute(at, r, e, q)]);
            d.close_until(at + MINUTE_MS + GRACE_MS, rules, "", &mut out);
        }
        out.iter()
            .map(|a| (a.rule.clone(), a.status, a.ends_at.unwrap_or(a.starts_at)))
            .collect()
    }

    #[test]
    fn errors_fire_after_their_for_duration_and_resolve_after_it_again() {
        let rules = RuleFile::default(); // 5%, 20 requests, for 2m
        let got = run(
            &rules,
            &[
                (100, 0, 0),
                (100, 10, 0),
                (100, 10, 0),
                (100, 10, 0),
                (100, 0, 0),
                (100, 0, 0),
                (100, 0, 0),
            ],
        );
        let m = |i: i64| i * MINUTE_MS;
        assert_eq!(
            got,
            vec![
                // Held from minute 1 (its start) to the end of minute 2: 2 min.
                ("haproxy_server_errors".into(), Status::Firing, m(3)),
                // Clear from minute 4 to the end of minute 5: 2 min.
                ("haproxy_server_errors".into(), Status::Resolved, m(6)),
            ]
        );
        // Too few requests never hold.
        assert!(run(
            &rules,
            &[(10, 10, 0), (10, 10, 0), (10, 10, 0), (10, 10, 0)]
        )
        .is_empty());
    }

    /// A window of several minutes reads each of them, though a server
    /// keeps no more closed minutes than the longest window (here three;
    /// the other rules read one).
    #[test]
    fn a_window_of_three_minutes_reads_three_and_keeps_no_more() {
        let mut rules = RuleFile::default(); // 5%, 20 requests
        rules.haproxy_server_errors.window = "3m".into();
        rules.haproxy_server_errors.for_ = "0s".into();
        let mut d = Degradation::default();
        let mut out = Vec::new();
        // 15 of 15 failed, then quiet minutes of 5 requests: 20 requests
        // from minute 1 on, and minute 0 out of the window from minute 3.
        let minutes = [(15, 15), (5, 0), (5, 0), (5, 0), (5, 0), (5, 0)];
        for (i, &(r, e)) in minutes.iter().enumerate() {
            let at = i as Millis * MINUTE_MS;
            d.add(&[minute(at, r, e, 0)]);
            d.close_until(at + MINUTE_MS + GRACE_MS, &rules, "", &mut out);
            assert!(d.servers[0].closed.len() <= 3, "minute {i}");
        }
        let got: Vec<_> = (out.iter())
            .filter(|a| a.rule == "haproxy_server_errors")
            .map(|a| (a.status, a.ends_at.unwrap_or(a.starts_at)))
            .collect();
        let m = |i: i64| i * MINUTE_MS;
        // Minutes 0-1 (20 requests, 15 failed) and 0-2 hold; 1-3 are 15
        // requests, too few.
        assert_eq!(got, vec![(Status::Firing, m(2)), (Status::Resolved, m(4))]);
        assert_eq!(d.servers[0].closed.len(), 3);
    }

    /// A server's own baseline: ten quiet minutes at ~10 ms, then a minute
    /// at 100 ms fires with no absolute threshold at all.
    #[test]
    fn latency_above_the_servers_own_baseline_fires() {
        let mut rules = RuleFile::default();
        rules.haproxy_server_latency.threshold_ms = None;
        rules.haproxy_server_latency.for_ = "0s".into();
        let line = |tr: u32| {
            format!("127.0.0.1:1 [24/Nov/2026:10:00:00.000] fe be/s1 0/0/0/{tr}/{tr} 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"")
        };
        let mut d = Degradation::default();
        let mut out = Vec::new();
        for i in 0..13 {
            let at = i as Millis * MINUTE_MS;
            let mut m = Minute::default();
            let tr = if i == 12 { 100 } else { 10 };
            for _ in 0..30 {
                let l = line(tr);
                m.add(&crate::haproxy::request::parse(l.as_bytes()).unwrap());
            }
            m.flush();
            let mut r = minute(at, 0, 0, 0);
            r.data = m;
            d.add(&[r]);
            d.close_until(at + MINUTE_MS + GRACE_MS, &rules, "", &mut out);
            if i < 12 {
                assert!(out.is_empty(), "minute {i}: {out:?}");
            }
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, "haproxy_server_latency");
        assert!(
            out[0].description.contains("baseline 10 ms"),
            "{}",
            out[0].description
        );
    }

    /// Stopped after any minute and carried on from its state (through
    /// JSON, as the store keeps it) and the stored minutes, two servers'
    /// errors and latency against their baselines give the alerts of one
    /// uninterrupted run.
    #[test]
    fn a_restart_at_any_minute_gives_the_alerts_of_one_run() {
        let mut rules = RuleFile::default();
        rules.haproxy_server_latency.threshold_ms = None;
        rules.haproxy_server_latency.for_ = "1m".into();
        let line = |tr: u32, status: u32| {
            format!("127.0.0.1:1 [24/Nov/2026:10:00:00.000] fe be/s 0/0/0/{tr}/{tr} {status} 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"")
        };
        // Minute i of server s: slow from minute 14 to 17 on s1, failing
        // from 16 to 19 on s2; two requests (kept as logged) or thirty.
        let rollups: Vec<Vec<Rollup>> = (0..24)
            .map(|i| {
                ["s1", "s2"]
                    .iter()
                    .map(|srv| {
                        let mut m = Minute::default();
                        let n = if i % 5 == 3 { 2 } else { 30 };
                        for k in 0..n {
                            let slow = *srv == "s1" && (14..18).contains(&i);
                            let tr = if slow { 200 } else { 10 + k % 3 };
                            let fail = *srv == "s2" && (16..20).contains(&i) && k % 4 == 0;
                            m.add(
                                &crate::haproxy::request::parse(
                                    line(tr, if fail { 503 } else { 200 }).as_bytes(),
                                )
                                .unwrap(),
                            );
                        }
                        let mut r = minute(i * MINUTE_MS, 0, 0, 0);
                        r.key.server = (*srv).into();
                        r.data = m;
                        r
                    })
                    .collect()
            })
            .collect();
        let feed = |d: &mut Degradation, from: usize, to: usize, out: &mut Vec<Alert>| {
            for (i, rs) in rollups.iter().enumerate().take(to).skip(from) {
                d.add(rs);
                d.close_until((i as Millis + 1) * MINUTE_MS + GRACE_MS, &rules, "", out);
            }
        };
        let seen = |out: &[Alert]| {
            out.iter()
                .map(|a| {
                    (
                        a.rule.clone(),
                        a.labels["server"].clone(),
                        a.status,
                        a.starts_at,
                        a.ends_at,
                        a.description.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut whole = Vec::new();
        feed(&mut Degradation::default(), 0, rollups.len(), &mut whole);
        let whole = seen(&whole);
        let rules_seen: std::collections::BTreeSet<_> =
            whole.iter().map(|a| (a.0.clone(), a.2)).collect();
        assert_eq!(
            rules_seen.len(),
            4,
            "both rules fire and resolve: {whole:?}"
        );
        for cut in 1..rollups.len() {
            let (mut first, mut out) = (Degradation::default(), Vec::new());
            feed(&mut first, 0, cut, &mut out);
            let state: DegradationState =
                serde_json::from_str(&serde_json::to_string(&first.state()).unwrap()).unwrap();
            let from = Degradation::restore_from(&state);
            let stored: Vec<Rollup> = rollups[..cut]
                .iter()
                .flatten()
                .filter(|r| r.minute >= from)
                .cloned()
                .collect();
            let mut second = Degradation::default();
            second.restore(state, stored);
            feed(&mut second, cut, rollups.len(), &mut out);
            assert_eq!(seen(&out), whole, "stopped after minute {cut}");
        }
    }

    #[test]
    fn a_backend_queue_fires() {
        let mut rules = RuleFile::default();
        rules.haproxy_backend_queue.for_ = "0s".into();
        let got = run(&rules, &[(5, 0, 50), (5, 0, 0), (5, 0, 0)]);
        assert_eq!(
            got[0],
            ("haproxy_backend_queue".into(), Status::Firing, MINUTE_MS)
        );
        assert_eq!(got[1].1, Status::Resolved);
    }
}
