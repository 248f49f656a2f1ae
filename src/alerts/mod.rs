//! Alerts on state transitions, in event time.
//!
//! The [`Evaluator`] sees every transition and every "no server available"
//! period as the engine applies them, and turns them into alert events
//! (firing, resolved) at the times the log gives, never the wall clock: the
//! same log gives the same alerts offline (`analyze --alerts`) and live.
//!
//! Rules here (on by default, each can be disabled or tuned in the TOML
//! rule file, see [`RuleFile`]):
//!
//! - `haproxy_backend_server_status`: a server DOWN (by its checks, or set
//!   by an administrator), firing while it is down, resolved when it is UP;
//!   entering MAINT or DRAIN is recorded at `info`, not paged.
//! - `haproxy_backend_status`: a backend with no server available; resolved
//!   when one of its servers is UP again.
//! - `haproxy_server_flapping`: at least N changes of a server's own health
//!   (UP/DOWN/STOPPING; MAINT and DRAIN only with `count_admin`) within W;
//!   resolved when W passes without one, at the end of W in event time.
//! - `haproxy_server_down_fleet`, `haproxy_lb_view_diverges`,
//!   `haproxy_host_silent`: across load balancers (see [`fleet`]).
//!
//! Invariant: one alert per rule and label set is firing at a time
//! (`fingerprint`); evaluation is deterministic in the input order.

pub(crate) mod degrade;
pub(crate) mod fleet;
pub(crate) mod sinks;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::engine::Glob;
use crate::model::{BackendView, Label, StateEvent, Transition};
use crate::time::Millis;

/// The runbook every server alert carries: the usual steps, in order.
pub const RUNBOOK: &str =
    "1. Check the server on the HAProxy stats page{stats_url}: state, last check, \
its error. 2. Check the server itself: CPU, memory, disk, network, the service's own logs. \
3. Validate the HAProxy configuration (haproxy -c -f /etc/haproxy/haproxy.cfg). \
4. Look for recent changes (deploys, configuration, network). \
5. Restart HAProxy only if the servers are healthy and it still reports them down.";

pub use crate::model::{Alert, Severity, Status};

/// The rule file (`--rules FILE`): each built-in rule by name, all optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// Filled into the runbook's "stats page" step.
    pub stats_url: Option<String>,
    #[serde(default)]
    pub haproxy_backend_server_status: RuleOptions,
    #[serde(default)]
    pub haproxy_backend_status: RuleOptions,
    #[serde(default)]
    pub haproxy_server_flapping: FlapOptions,
    #[serde(default)]
    pub haproxy_server_latency: degrade::LatencyOptions,
    #[serde(default)]
    pub haproxy_server_errors: degrade::ErrorOptions,
    #[serde(default)]
    pub haproxy_backend_queue: degrade::QueueOptions,
    #[serde(default)]
    pub haproxy_server_down_fleet: fleet::FleetDownOptions,
    #[serde(default)]
    pub haproxy_lb_view_diverges: fleet::DivergeOptions,
    #[serde(default)]
    pub haproxy_host_silent: RuleOptions,
    /// A host with no line for this long (event time) is silent (default
    /// 2m): `haproxy_host_silent` fires, and its servers' last states count
    /// neither way in the fleet rules.
    pub host_silence: Option<String>,
    /// More degradation rules, each with its own name (`[[rules]]`).
    #[serde(default)]
    pub rules: Vec<degrade::CustomRule>,
    /// Where alerts go besides stdout (`[[sinks]]`).
    #[serde(default)]
    pub sinks: Vec<sinks::SinkConfig>,
    #[serde(default)]
    pub delivery: sinks::Delivery,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleOptions {
    pub enabled: bool,
    /// Default: critical for state rules, warning for degradation and
    /// flapping.
    pub severity: Option<Severity>,
    pub backend: Option<String>,
    pub server: Option<String>,
    pub host: Option<String>,
    /// Extra labels on every alert of the rule.
    pub labels: BTreeMap<String, String>,
    /// Templates: `{label}` is replaced by the label's value (`{backend}`,
    /// `{server}`, `{host}`, `{severity}`, yours), `{summary}` and
    /// `{description}` by hapwatch's own text. Nothing else is expanded:
    /// a template cannot run anything.
    pub summary: Option<String>,
    pub description: Option<String>,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            enabled: true,
            severity: None,
            backend: None,
            server: None,
            host: None,
            labels: BTreeMap::new(),
            summary: None,
            description: None,
        }
    }
}

/// Fills `{name}` placeholders; unknown names are left as written.
pub fn render(
    template: &str,
    labels: &BTreeMap<String, String>,
    summary: &str,
    description: &str,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match name {
                    "summary" => out.push_str(summary),
                    "description" => out.push_str(description),
                    _ => match labels.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push('{');
                            out.push_str(name);
                            out.push('}');
                        }
                    },
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlapOptions {
    #[serde(flatten)]
    pub rule: RuleOptions,
    /// Transitions within `window` that make a server flapping.
    pub transitions: usize,
    /// The window, e.g. "10m".
    pub window: String,
    /// Count administrative changes (MAINT, DRAIN, set by an operator or
    /// an agent) too; by default only UP/DOWN/STOPPING changes count: a
    /// planned maintenance cycle is not flapping.
    pub count_admin: bool,
}

impl Default for FlapOptions {
    fn default() -> Self {
        FlapOptions {
            rule: RuleOptions::default(),
            transitions: 4,
            window: "10m".into(),
            count_admin: false,
        }
    }
}

impl RuleOptions {
    pub(crate) fn selects(&self, host: &str, backend: &str, server: Option<&str>) -> bool {
        self.host
            .as_deref()
            .is_none_or(|g| Glob::new(g).matches(host))
            && self
                .backend
                .as_deref()
                .is_none_or(|g| Glob::new(g).matches(backend))
            && match (self.server.as_deref(), server) {
                (Some(g), Some(s)) => Glob::new(g).matches(s),
                _ => true,
            }
    }
}

/// A duration of a rule file (`10m`, `30s`, `2h`) that must be more than
/// zero ([`crate::time::parse_duration`] reads it).
pub fn parse_duration(s: &str) -> Option<Millis> {
    crate::time::parse_duration(s).ok().filter(|&v| v > 0)
}

/// Why a rule file cannot be used, naming the line or the setting (the
/// user's to fix: exit status 2).
#[derive(Debug)]
pub struct RuleError(String);

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

impl RuleFile {
    /// Reads, parses and checks a rule file; the error names the file and
    /// the line.
    pub fn load(path: &std::path::Path) -> Result<RuleFile, RuleError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RuleError(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|RuleError(e)| RuleError(format!("{}: {e}", path.display())))
    }

    /// Parses and checks a rule file; the error names the line.
    pub fn parse(text: &str) -> Result<RuleFile, RuleError> {
        Self::parse_checked(text).map_err(RuleError)
    }

    fn parse_checked(text: &str) -> Result<RuleFile, String> {
        let f: RuleFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if parse_duration(&f.haproxy_server_flapping.window).is_none() {
            return Err(format!(
                "haproxy_server_flapping.window = {:?}: not a duration (e.g. 10m)",
                f.haproxy_server_flapping.window
            ));
        }
        if f.haproxy_server_flapping.transitions < 2 {
            return Err("haproxy_server_flapping.transitions must be at least 2".into());
        }
        degrade::check(
            &f.haproxy_server_latency,
            &f.haproxy_server_errors,
            &f.haproxy_backend_queue,
        )?;
        fleet::check(
            &f.haproxy_server_down_fleet,
            &f.haproxy_lb_view_diverges,
            f.host_silence.as_deref().unwrap_or("2m"),
        )?;
        let builtin = [
            "haproxy_server_down_fleet",
            "haproxy_lb_view_diverges",
            "haproxy_host_silent",
            "haproxy_backend_server_status",
            "haproxy_backend_status",
            "haproxy_server_flapping",
            "haproxy_server_latency",
            "haproxy_server_errors",
            "haproxy_backend_queue",
        ];
        let mut rule_names = std::collections::BTreeSet::new();
        for r in &f.rules {
            if r.name.is_empty()
                || builtin.contains(&r.name.as_str())
                || !rule_names.insert(r.name.clone())
            {
                return Err(format!(
                    "[[rules]] name = {:?}: give each rule its own name, other than the built-in ones",
                    r.name
                ));
            }
            let (l, e, q) = (
                degrade::LatencyOptions::default(),
                degrade::ErrorOptions::default(),
                degrade::QueueOptions::default(),
            );
            match &r.kind {
                degrade::CustomKind::Latency(x) => degrade::check(x, &e, &q),
                degrade::CustomKind::Errors(x) => degrade::check(&l, x, &q),
                degrade::CustomKind::Queue(x) => degrade::check(&l, &e, x),
            }
            .map_err(|m| format!("rule {}: {m}", r.name))?;
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &f.sinks {
            s.check()?;
            if !names.insert(s.name()) {
                return Err(format!(
                    "two sinks are named {:?}: give each a `name`",
                    s.name()
                ));
            }
        }
        for (k, v) in [
            ("retry_min", &f.delivery.retry_min),
            ("retry_max", &f.delivery.retry_max),
            ("repeat", &f.delivery.repeat),
            ("repeat_interval", &f.delivery.repeat_interval),
        ] {
            if parse_duration(v).is_none() {
                return Err(format!("delivery.{k} = {v:?}: not a duration (e.g. 30s)"));
            }
        }
        Ok(f)
    }
}

/// What the rules must carry across a restart besides the firing alerts
/// (stored with each event): the flapping windows, which backends are
/// without servers, the degradation conditions. Written with every commit
/// (`Store::persist`) and read back at start, so that a run stopped at any
/// line and started again gives the alert events of one run.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct EvaluatorState {
    recent: Vec<((String, String, String), Vec<Millis>)>,
    backend_down: Vec<((String, String), bool)>,
    degradation: degrade::DegradationState,
    /// Absent in the state of a version without fleet rules.
    #[serde(default)]
    fleet: fleet::FleetState,
}

impl EvaluatorState {
    /// The first minute the degradation rules need back from the store.
    pub fn minutes_from(&self) -> Millis {
        degrade::Degradation::restore_from(&self.degradation)
    }
}

/// Turns transitions into alert events; see the module doc.
#[derive(Debug)]
pub struct Evaluator {
    rules: RuleFile,
    flap_window: Millis,
    /// Firing alerts by fingerprint.
    pub firing: BTreeMap<String, Alert>,
    /// Per server: times of its recent transitions (flapping).
    recent: BTreeMap<(String, String, String), VecDeque<Millis>>,
    /// Per backend: whether it was without servers after the last event.
    backend_down: BTreeMap<(String, String), bool>,
    /// Events not yet taken by the caller, in event order.
    pub out: Vec<Alert>,
    pub degradation: degrade::Degradation,
    /// Events announced ahead of the reorder window (live), by
    /// (fingerprint, status, event time), until the ordered path reaches
    /// them: see [`Evaluator::announce_preview`].
    previewed: BTreeMap<(String, Status, Millis), Alert>,
    /// Events announced ahead.
    pub previews: u64,
    /// Of those, events the ordered path did not confirm (a line older
    /// than them arrived later and told another story).
    pub previews_unconfirmed: u64,
    /// Whether [`Evaluator::state`] may differ from when it was last taken
    /// with [`Evaluator::take_changed`].
    changed: bool,
    /// The rules across load balancers and what they remember.
    fleet: fleet::Fleet,
    /// `host_silence`.
    silence: Millis,
    /// The runbook text with the rule file's `stats_url`: built once per
    /// rule file, not per alert or health line.
    runbook: String,
}

impl Evaluator {
    pub fn new(rules: RuleFile) -> Evaluator {
        let flap_window = parse_duration(&rules.haproxy_server_flapping.window).unwrap_or(600_000);
        let rules_silence = rules.host_silence.clone();
        Evaluator {
            rules,
            flap_window,
            firing: BTreeMap::new(),
            recent: BTreeMap::new(),
            backend_down: BTreeMap::new(),
            out: Vec::new(),
            degradation: degrade::Degradation::default(),
            previewed: BTreeMap::new(),
            previews: 0,
            previews_unconfirmed: 0,
            changed: true,
            fleet: fleet::Fleet::new(),
            silence: Self::silence_of(&rules_silence),
            runbook: String::new(),
        }
        .with_runbook()
    }

    fn with_runbook(mut self) -> Evaluator {
        self.runbook = self.runbook_text();
        self
    }

    fn silence_of(s: &Option<String>) -> Millis {
        s.as_deref().and_then(parse_duration).unwrap_or(120_000)
    }

    /// Runs one of the fleet rules' steps with the rule file's settings,
    /// then fires and resolves what it decided.
    fn with_fleet<R>(
        &mut self,
        step: impl FnOnce(&mut fleet::Fleet, &fleet::Settings, &mut Vec<fleet::Act>) -> R,
    ) -> R {
        let settings = fleet::Settings {
            down: &self.rules.haproxy_server_down_fleet,
            diverge: &self.rules.haproxy_lb_view_diverges,
            silent: &self.rules.haproxy_host_silent,
            silence: self.silence,
            runbook: &self.runbook,
        };
        let mut acts = Vec::new();
        let r = step(&mut self.fleet, &settings, &mut acts);
        self.changed |= std::mem::take(&mut self.fleet.dirty);
        for act in acts {
            match act {
                fleet::Act::Fire(a) => self.fire(a),
                fleet::Act::Resolve(a, at) => self.resolve(&a, at),
            }
        }
        r
    }

    /// A copy for working out, ahead of the reorder window, what the
    /// events of one backend will announce: the rules, what is firing, the
    /// backend's flapping history; no degradation state (minutes are judged
    /// by the ordered path only).
    pub fn scratch(&self, host: &str, backend: &str) -> Evaluator {
        let mut e = Evaluator::new(self.rules.clone());
        // A preview sees one backend of one host: no fleet to judge.
        e.fleet.enabled = false;
        // Only this backend's alerts can be touched by its lines (a copy of
        // every firing alert per line would be quadratic in an outage).
        e.firing = self
            .firing
            .iter()
            .filter(|(_, a)| {
                a.labels.get("host").map(String::as_str) == Some(host)
                    && a.labels.get("backend").map(String::as_str) == Some(backend)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        e.recent = self
            .recent
            .iter()
            .filter(|((h, b, _), _)| h == host && b == backend)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        e.backend_down = self
            .backend_down
            .iter()
            .filter(|((h, b), _)| h == host && b == backend)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        e
    }

    /// Announces what a scratch evaluator found, each event once: the
    /// ordered path, when it produces the same event (rule, labels, status,
    /// time), keeps it quiet. A state line says what happened at its own
    /// time, and no line logged earlier can undo it, so what is announced
    /// ahead is, in practice, what the ordered path confirms.
    pub fn announce_preview(&mut self, events: Vec<Alert>) {
        for a in events {
            let key = (a.fingerprint(), a.status, Self::time_of(&a));
            if self.previewed.contains_key(&key) {
                continue;
            }
            self.previews += 1;
            self.previewed.insert(key, a.clone());
            self.out.push(a);
        }
    }

    fn time_of(a: &Alert) -> Millis {
        match a.status {
            Status::Firing => a.starts_at,
            Status::Resolved => a.ends_at.unwrap_or(a.starts_at),
        }
    }

    /// The ordered path has applied every event before `before` (every
    /// event if None), the last at `now`: an event announced ahead for an
    /// earlier time that it did not produce was wrong. A firing one is
    /// withdrawn (resolved at `now`) so that no sink keeps a page the state
    /// does not support.
    pub fn settle(&mut self, before: Option<Millis>, now: Millis) {
        if self.previewed.is_empty() {
            return;
        }
        let stale: Vec<_> = self
            .previewed
            .keys()
            .filter(|(_, _, t)| before.is_none_or(|b| *t < b))
            .cloned()
            .collect();
        for key in stale {
            let mut a = self.previewed.remove(&key).expect("listed");
            self.previews_unconfirmed += 1;
            if a.status == Status::Firing && !self.firing.contains_key(&key.0) {
                a.status = Status::Resolved;
                a.ends_at = Some(now.max(a.starts_at));
                self.out.push(a);
            }
        }
    }

    /// Per-minute rollups as they leave the engine, and how far event time
    /// has come: closes and judges the minutes that are over.
    ///
    /// The minutes are taken in time order and those behind them closed as
    /// they go, so that a batch spanning days (a sparse log's epoch, the
    /// end of a run) never holds more open minutes than the last few.
    pub fn on_minutes(&mut self, rollups: &[crate::engine::rollup::Rollup], now: Option<Millis>) {
        // Open minutes are stored as rollups; the state changes only when
        // minutes are judged.
        let closed = self.degradation.closed_until();
        let mut rest = rollups;
        while let Some(first) = rest.first() {
            let n = rest.iter().take_while(|r| r.minute == first.minute).count();
            let (same, later) = rest.split_at(n);
            if let Some(t) = now {
                self.close_minutes_until(t.min(first.minute));
            }
            self.degradation.add(same);
            // A request minute stands for a line of its host at its end,
            // and a server a host sends requests to is one it reports (as
            // UP: HAProxy sends none to a server it holds DOWN).
            let end = first.minute + crate::engine::rollup::MINUTE_MS - 1;
            self.with_fleet(|f, s, out| {
                let mut last_host = None;
                for r in same {
                    let k = &r.key;
                    if last_host != Some(k.host.as_str()) {
                        f.heard(&k.host, end, s, out);
                        last_host = Some(k.host.as_str());
                    }
                    if !k.server.starts_with('<') {
                        f.serves(k, end, s, out);
                    }
                }
            });
            rest = later;
        }
        if let Some(t) = now {
            self.close_minutes_until(t);
        }
        self.changed |= self.degradation.closed_until() != closed;
    }

    /// `host`'s clock runs `offset` ahead of the reference (measured by
    /// the engine, `engine::clocks`): the fleet rules compare hosts on one
    /// clock.
    pub fn clock_offset(&mut self, host: String, offset: Millis) {
        self.fleet.clock_offset(host, offset);
    }

    /// Whether the state changed since this was last asked: a commit
    /// stores it then, in the transaction that stores what changed it.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    fn close_minutes_until(&mut self, t: Millis) {
        let mut out = Vec::new();
        self.degradation
            .close_until(t, &self.rules, &self.runbook, &mut out);
        for a in out {
            match a.status {
                Status::Firing => self.fire(a),
                Status::Resolved => {
                    let at = a.ends_at.unwrap_or(a.starts_at);
                    self.resolve(&a, at)
                }
            }
        }
    }

    /// New rules (SIGHUP); what is firing stays firing.
    pub fn set_rules(&mut self, rules: RuleFile) {
        self.flap_window = parse_duration(&rules.haproxy_server_flapping.window).unwrap_or(600_000);
        self.silence = Self::silence_of(&rules.host_silence);
        self.rules = rules;
        self.runbook = self.runbook_text();
    }

    /// What to carry across a restart (see [`EvaluatorState`]).
    pub fn state(&self) -> EvaluatorState {
        EvaluatorState {
            recent: self
                .recent
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().copied().collect()))
                .collect(),
            backend_down: self
                .backend_down
                .iter()
                .filter(|(_, down)| **down)
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            degradation: self.degradation.state(),
            fleet: self.fleet.state.clone(),
        }
    }

    /// Carries on from a stopped run: its state and the stored minutes it
    /// needs (from [`EvaluatorState::minutes_from`] on).
    pub fn restore_state(
        &mut self,
        s: EvaluatorState,
        minutes: Vec<crate::engine::rollup::Rollup>,
    ) {
        self.recent = s
            .recent
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        self.backend_down.extend(s.backend_down);
        self.degradation.restore(s.degradation, minutes);
        self.fleet.restore(s.fleet);
        self.changed = true;
    }

    /// Alerts that were firing when the process last stopped: they stay
    /// firing, and are not announced again.
    pub fn restore(&mut self, firing: Vec<Alert>) {
        for a in firing {
            if a.rule == "haproxy_backend_status" {
                if let (Some(h), Some(b)) = (a.labels.get("host"), a.labels.get("backend")) {
                    self.backend_down.insert((h.clone(), b.clone()), true);
                }
            }
            self.firing.insert(a.fingerprint(), a);
        }
    }

    fn runbook_text(&self) -> String {
        RUNBOOK.replace(
            "{stats_url}",
            &self
                .rules
                .stats_url
                .as_ref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default(),
        )
    }

    pub(crate) fn labels(
        rule: &str,
        opts: &RuleOptions,
        severity: Severity,
        host: &str,
        backend: &str,
        server: Option<&str>,
    ) -> BTreeMap<String, String> {
        let mut l = opts.labels.clone();
        l.insert("alertname".into(), rule.into());
        l.insert("host".into(), host.into());
        l.insert("backend".into(), backend.into());
        if let Some(s) = server {
            l.insert("server".into(), s.into());
        }
        l.insert("severity".into(), severity.as_str().into());
        l
    }

    fn options(&self, rule: &str) -> Option<&RuleOptions> {
        let r = &self.rules;
        Some(match rule {
            "haproxy_backend_server_status" => &r.haproxy_backend_server_status,
            "haproxy_backend_status" => &r.haproxy_backend_status,
            "haproxy_server_flapping" => &r.haproxy_server_flapping.rule,
            "haproxy_server_latency" => &r.haproxy_server_latency.rule,
            "haproxy_server_errors" => &r.haproxy_server_errors.rule,
            "haproxy_backend_queue" => &r.haproxy_backend_queue.rule,
            "haproxy_server_down_fleet" => &r.haproxy_server_down_fleet.rule,
            "haproxy_lb_view_diverges" => &r.haproxy_lb_view_diverges.rule,
            "haproxy_host_silent" => &r.haproxy_host_silent,
            name => {
                return r
                    .rules
                    .iter()
                    .find(|c| c.name == name)
                    .map(|c| c.kind.rule())
            }
        })
    }

    fn fire(&mut self, mut a: Alert) {
        if let Some(o) = self.options(&a.rule) {
            let (s, d) = (a.summary.clone(), a.description.clone());
            if let Some(t) = &o.summary {
                a.summary = render(t, &a.labels, &s, &d);
            }
            if let Some(t) = &o.description {
                a.description = render(t, &a.labels, &s, &d);
            }
        }
        let fp = a.fingerprint();
        if self.firing.contains_key(&fp) {
            return; // one firing alert per rule and labels
        }
        self.firing.insert(fp.clone(), a.clone());
        self.emit(fp, a);
    }

    fn resolve(&mut self, fp_of: &Alert, at: Millis) {
        let fp = fp_of.fingerprint();
        if let Some(mut a) = self.firing.remove(&fp) {
            a.status = Status::Resolved;
            a.ends_at = Some(at);
            self.emit(fp, a);
        }
    }

    /// Hands an event to the caller, unless it was announced ahead.
    fn emit(&mut self, fp: String, a: Alert) {
        let key = (fp, a.status, Self::time_of(&a));
        if self.previewed.remove(&key).is_none() {
            self.out.push(a);
        }
    }

    /// One event of the engine's account of health, in its order.
    pub fn on_state(&mut self, e: &StateEvent) {
        match e {
            // Flapping windows and backends without servers change; the
            // rest only moves alerts, which are stored as alert events.
            StateEvent::Transition(t, view) => {
                self.changed = true;
                self.on_transition(t, *view)
            }
            StateEvent::Backend {
                host,
                backend,
                at,
                view,
            } => {
                self.changed = true;
                self.backend(host, backend, *at, *view)
            }
            StateEvent::Heard {
                host,
                backend,
                server,
                at,
                label,
            } => {
                self.changed |= self
                    .with_fleet(|f, s, out| f.on_heard(host, backend, server, *at, *label, s, out))
            }
            StateEvent::Released { next, now } => self.settle(*next, *now),
            StateEvent::Preview {
                host,
                backend,
                events,
            } => {
                let mut scratch = self.scratch(host, backend);
                for e in events {
                    scratch.on_state(e);
                }
                self.announce_preview(scratch.out);
            }
        }
    }

    /// One transition, just applied, and its backend after it.
    pub fn on_transition(&mut self, t: &Transition, view: BackendView) {
        let opts = self.rules.haproxy_backend_server_status.clone();
        let (host, backend, server) = (t.host.as_str(), t.backend.as_str(), t.server.as_str());
        let left = view.active;
        if opts.enabled && opts.selects(host, backend, Some(server)) {
            let rule = "haproxy_backend_server_status";
            // Entering MAINT or DRAIN is an administrator's act: info.
            let severity = match t.to {
                Label::Maint | Label::Drain => Severity::Info,
                _ => opts.severity.unwrap_or(Severity::Critical),
            };
            let runbook = self.runbook.clone();
            let base = |sev: Severity, summary: String, description: String| Alert {
                rule: rule.into(),
                status: Status::Firing,
                severity: sev,
                labels: Self::labels(rule, &opts, sev, host, backend, Some(server)),
                starts_at: t.at,
                ends_at: None,
                summary,
                description,
                runbook: runbook.clone(),
            };
            let cause = t.cause.clone().unwrap_or_else(|| "no reason logged".into());
            let check = t
                .check
                .as_ref()
                .and_then(|c| c.health)
                .map(|(x, y)| format!(", check {x}/{y}"))
                .unwrap_or_default();
            let servers_left = left
                .map(|n| format!(" {n} active servers left in {backend}."))
                .unwrap_or_default();
            match t.to {
                Label::Down | Label::Stopping => {
                    // A server DOWN: critical while it lasts.
                    let a = base(
                        severity,
                        format!(
                            "{backend}/{server} on {} is {}",
                            show_host(host),
                            t.to.as_str()
                        ),
                        format!("{cause}{check}.{servers_left}"),
                    );
                    // Resolve a previous info record of the same server.
                    let info = base(Severity::Info, String::new(), String::new());
                    self.resolve(&info, t.at);
                    self.fire(a);
                }
                Label::Maint | Label::Drain => {
                    let crit = base(
                        opts.severity.unwrap_or(Severity::Critical),
                        String::new(),
                        String::new(),
                    );
                    self.resolve(&crit, t.at);
                    let a = base(
                        Severity::Info,
                        format!(
                            "{backend}/{server} on {} set to {} by an administrator",
                            show_host(host),
                            t.to.as_str()
                        ),
                        format!("{cause}.{servers_left}"),
                    );
                    self.fire(a);
                }
                Label::Up | Label::Unknown => {
                    for sev in [opts.severity.unwrap_or(Severity::Critical), Severity::Info] {
                        let a = base(sev, String::new(), String::new());
                        self.resolve(&a, t.at);
                    }
                }
            }
        }
        self.flapping(t);
        self.backend(host, backend, t.at, view);
        self.with_fleet(|f, s, out| f.on_transition(t, s, out));
    }

    /// Event time has come to `now` (the log's newest time; live, carried
    /// on by the wall clock after the idle grace): a flapping alert whose
    /// window has passed without a transition is resolved, at the end of
    /// that window.
    pub fn advance(&mut self, now: Millis) {
        let window = self.flap_window;
        let over: Vec<(String, String, String)> = self
            .recent
            .iter()
            .filter(|(_, times)| times.back().is_some_and(|&l| l + window <= now))
            .map(|(k, _)| k.clone())
            .collect();
        self.changed |= !over.is_empty();
        for key in over {
            self.quiet(&key);
        }
        self.changed |= self.with_fleet(|f, s, out| f.advance(now, s, out));
    }

    /// A server whose last counted transition is a whole window old: its
    /// history is dropped and its flapping alert, if any, resolved at the
    /// end of the window.
    fn quiet(&mut self, key: &(String, String, String)) {
        let Some(last) = self.recent.remove(key).and_then(|t| t.back().copied()) else {
            return;
        };
        let rule = "haproxy_server_flapping";
        let opts = &self.rules.haproxy_server_flapping.rule;
        let severity = opts.severity.unwrap_or(Severity::Warning);
        let labels = Self::labels(rule, opts, severity, &key.0, &key.1, Some(&key.2));
        let probe = Alert {
            rule: rule.into(),
            status: Status::Firing,
            severity,
            labels,
            starts_at: last,
            ends_at: None,
            summary: String::new(),
            description: String::new(),
            runbook: String::new(),
        };
        self.resolve(&probe, last + self.flap_window);
    }

    /// Whether a transition counts for flapping: a change of the server's
    /// own health, not an operator's (unless `count_admin`), and not the
    /// first sighting of a server (from UNKNOWN).
    fn counts_for_flapping(&self, t: &Transition) -> bool {
        let admin = |l: Label| matches!(l, Label::Maint | Label::Drain);
        t.from != Label::Unknown
            && (self.rules.haproxy_server_flapping.count_admin || !(admin(t.from) || admin(t.to)))
    }

    fn flapping(&mut self, t: &Transition) {
        let opts = self.rules.haproxy_server_flapping.clone();
        if !opts.rule.enabled || !opts.rule.selects(&t.host, &t.backend, Some(&t.server)) {
            return;
        }
        if !self.counts_for_flapping(t) {
            return;
        }
        let key = (t.host.clone(), t.backend.clone(), t.server.clone());
        // A window that passed since the last change ends the episode at
        // its own time, whenever the evaluator hears of it.
        if self
            .recent
            .get(&key)
            .and_then(|times| times.back())
            .is_some_and(|&l| l + self.flap_window <= t.at)
        {
            self.quiet(&key);
        }
        let times = self.recent.entry(key).or_default();
        times.push_back(t.at);
        while times.front().is_some_and(|&f| f <= t.at - self.flap_window) {
            times.pop_front();
        }
        let n = times.len();
        let rule = "haproxy_server_flapping";
        let a = Alert {
            rule: rule.into(),
            status: Status::Firing,
            severity: opts.rule.severity.unwrap_or(Severity::Warning),
            labels: Self::labels(
                rule,
                &opts.rule,
                opts.rule.severity.unwrap_or(Severity::Warning),
                &t.host,
                &t.backend,
                Some(&t.server),
            ),
            starts_at: t.at,
            ends_at: None,
            summary: format!(
                "{}/{} on {} changed state {n} times within {}",
                t.backend,
                t.server,
                show_host(&t.host),
                opts.window
            ),
            description: format!(
                "Last change: {} -> {} ({}).",
                t.from.as_str(),
                t.to.as_str(),
                t.cause.as_deref().unwrap_or("no reason logged")
            ),
            runbook: self.runbook.clone(),
        };
        if n >= opts.transitions {
            self.fire(a);
        }
    }

    fn backend(&mut self, host: &str, backend: &str, at: Millis, view: BackendView) {
        let opts = self.rules.haproxy_backend_status.clone();
        if !opts.enabled || !opts.selects(host, backend, None) {
            return;
        }
        let key = (host.to_string(), backend.to_string());
        let now_down = view.no_server;
        let was = self.backend_down.insert(key, now_down).unwrap_or(false);
        if was == now_down {
            return;
        }
        let rule = "haproxy_backend_status";
        let a = Alert {
            rule: rule.into(),
            status: Status::Firing,
            severity: opts.severity.unwrap_or(Severity::Critical),
            labels: Self::labels(
                rule,
                &opts,
                opts.severity.unwrap_or(Severity::Critical),
                host,
                backend,
                None,
            ),
            starts_at: at,
            ends_at: None,
            summary: format!(
                "backend {backend} on {} has no server available",
                show_host(host)
            ),
            description: "HAProxy answers its requests with 503 until a server is UP again.".into(),
            runbook: self.runbook.clone(),
        };
        if now_down {
            self.fire(a);
        } else {
            self.resolve(&a, at);
        }
    }
}

fn show_host(h: &str) -> &str {
    if h.is_empty() {
        "-"
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_labels_and_nothing_else() {
        let mut l = BTreeMap::new();
        l.insert("server".to_string(), "srv1".to_string());
        assert_eq!(
            render(
                "{server} down: {summary} ({description}) {unknown} $(rm -rf /) {",
                &l,
                "S",
                "D"
            ),
            "srv1 down: S (D) {unknown} $(rm -rf /) {"
        );
    }

    #[test]
    fn rule_file_errors_name_the_line() {
        let e = RuleFile::parse(
            "[haproxy_server_flapping]\ntransitions = 4\nwindow = \"ten minutes\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("window"), "{e}");
        let e = RuleFile::parse("[haproxy_backend_status]\nenabled = true\nseverity = \"loud\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = RuleFile::parse("[haproxy_backend_statuz]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        assert!(RuleFile::parse("stats_url = \"http://lb1:8404/stats\"\n[haproxy_server_flapping]\ntransitions = 3\nwindow = \"5m\"\n").is_ok());
    }
}

#[cfg(test)]
mod flapping_tests {
    use super::*;

    fn t(at_min: i64, from: Label, to: Label) -> Transition {
        Transition {
            at: at_min * 60_000,
            order: None,
            host: "lb1".into(),
            backend: "be".into(),
            server: "s1".into(),
            from,
            to,
            cause: None,
            pattern: String::new(),
            check: None,
            nth: 0,
        }
    }

    fn flaps(e: &mut Evaluator) -> Vec<(Status, Millis)> {
        std::mem::take(&mut e.out)
            .into_iter()
            .filter(|a| a.rule == "haproxy_server_flapping")
            .map(|a| (a.status, a.ends_at.unwrap_or(a.starts_at) / 60_000))
            .collect()
    }

    fn run(rules: RuleFile, ts: &[Transition], until: i64) -> Vec<(Status, Millis)> {
        let mut e = Evaluator::new(rules);
        for x in ts {
            e.on_transition(x, BackendView::default());
        }
        e.advance(until * 60_000);
        flaps(&mut e)
    }

    use Label::*;

    #[test]
    fn flapping_resolves_when_its_window_passes_without_a_change() {
        let ts = [
            t(0, Up, Down),
            t(1, Down, Up),
            t(2, Up, Down),
            t(3, Down, Up),
        ];
        // Ten minutes after the last change: over, at 3 + 10.
        assert_eq!(
            run(RuleFile::default(), &ts, 13),
            [(Status::Firing, 3), (Status::Resolved, 13)]
        );
        // Event time has not reached the end of the window yet.
        assert_eq!(run(RuleFile::default(), &ts, 12), [(Status::Firing, 3)]);
    }

    #[test]
    fn a_planned_maintenance_cycle_is_not_flapping() {
        let ts = [
            t(0, Up, Maint),
            t(1, Maint, Up),
            t(2, Up, Drain),
            t(3, Drain, Up),
        ];
        assert_eq!(run(RuleFile::default(), &ts, 5), []);
        let mut rules = RuleFile::default();
        rules.haproxy_server_flapping.count_admin = true;
        assert_eq!(run(rules, &ts, 5), [(Status::Firing, 3)]);
    }
}
