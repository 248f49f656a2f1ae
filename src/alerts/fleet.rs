//! Rules across load balancers: the same server seen by every HAProxy that
//! logs it.
//!
//! - `haproxy_server_down_fleet`: a server DOWN on at least `down_on` of the
//!   hosts that report it (default: all of them, and at least `min_hosts`,
//!   2), labels without `host`: one page per server, not one per load
//!   balancer.
//! - `haproxy_lb_view_diverges` (warning): DOWN on some hosts and UP on
//!   others for `for`: one load balancer's network, or a partition.
//! - `haproxy_host_silent` (warning): a host with no line for
//!   `host_silence` (default 2m) while event time goes on. A silent host
//!   counts neither way in the two rules above: a load balancer that
//!   stopped logging is no evidence that a server is UP.
//!
//! A host is heard from by its state lines and by its request minutes (a
//! minute's rollup stands for a line at the minute's end, so silence is
//! judged to the minute). Everything is in event time: silence is judged
//! when [`Fleet::advance`] is told how far event time has come, which the
//! pipeline does after the minutes of that time were handed over.
//!
//! Hosts are compared on one clock: each host's times are moved by its
//! measured clock offset ([`crate::engine::clocks`]), so a load balancer
//! whose clock runs five minutes behind is neither silent nor five minutes
//! late to agree, and one ahead does not make the others look silent.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use super::{parse_duration, show_host, Alert, RuleOptions, Severity, Status};
use crate::model::{Label, ServerKey, Transition};
use crate::time::{format_rfc3339_ms, Millis};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetDownOptions {
    #[serde(flatten)]
    pub rule: RuleOptions,
    /// How many of the hosts that report a server must see it DOWN:
    /// `"all"`, a count (`"2"`) or a share (`"50%"`).
    pub down_on: String,
    /// Fewer hosts reporting a server than this: no fleet alert (one load
    /// balancer's page is `haproxy_backend_server_status`'s).
    pub min_hosts: usize,
}

impl Default for FleetDownOptions {
    fn default() -> Self {
        FleetDownOptions {
            rule: RuleOptions::default(),
            down_on: "all".into(),
            min_hosts: 2,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DivergeOptions {
    #[serde(flatten)]
    pub rule: RuleOptions,
    /// How long the hosts must disagree before it fires.
    #[serde(rename = "for")]
    pub for_: String,
}

impl Default for DivergeOptions {
    fn default() -> Self {
        DivergeOptions {
            rule: RuleOptions::default(),
            for_: "1m".into(),
        }
    }
}

/// `down_on` as read: the threshold for `n` hosts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DownOn {
    All,
    Count(usize),
    Share(f64),
}

impl DownOn {
    pub fn parse(s: &str) -> Result<DownOn, String> {
        let bad = || {
            format!("haproxy_server_down_fleet.down_on = {s:?}: say \"all\", a count of hosts (\"2\") or a share (\"50%\")")
        };
        let s = s.trim();
        if s == "all" {
            return Ok(DownOn::All);
        }
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            return if v > 0.0 && v <= 100.0 {
                Ok(DownOn::Share(v / 100.0))
            } else {
                Err(bad())
            };
        }
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(DownOn::Count(n)),
            _ => Err(bad()),
        }
    }

    /// How many of `n` hosts must see a server DOWN.
    fn of(self, n: usize) -> usize {
        match self {
            DownOn::All => n,
            DownOn::Count(c) => c,
            DownOn::Share(f) => ((f * n as f64) - 1e-9).ceil().max(1.0) as usize,
        }
    }
}

/// What a host last said of a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct View {
    label: Label,
    since: Millis,
    cause: Option<String>,
}

/// The fleet rules' memory, carried across restarts in the rules' state.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct FleetState {
    /// (backend, server) -> host -> its view.
    #[serde(with = "pairs")]
    views: BTreeMap<(String, String), BTreeMap<String, View>>,
    /// Each host's newest line, as far as the rules heard.
    heard: BTreeMap<String, Millis>,
    /// Hosts judged silent.
    silent: BTreeSet<String>,
    /// Servers whose hosts disagree, since when.
    #[serde(with = "pairs")]
    diverging: BTreeMap<(String, String), Millis>,
}

/// A map keyed by tuples as a list of pairs: JSON keys are strings only.
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        m: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// The rules and their state; the [`super::Evaluator`] owns one.
#[derive(Debug)]
pub struct Fleet {
    pub state: FleetState,
    /// Off in the evaluator's scratch copies (previews see one backend of
    /// one host: no fleet).
    pub enabled: bool,
    /// Each host's clock offset, as measured (not kept across restarts:
    /// measured again within a batch).
    offsets: BTreeMap<String, Millis>,
    /// The state changed in a way a restart must find: a new view, a
    /// host heard in a new minute (a restart with a host's last hearing
    /// minutes old would judge it silent at once).
    pub dirty: bool,
    /// The servers [`Fleet::serves`] found a view of, on their host: it is
    /// asked for every server's every minute, and a view is never taken
    /// away (the whole state is replaced: [`Fleet::restore`]), so a server
    /// here needs no lookup of its names (a month of log asked 2 million
    /// times, each building two `String`s for the lookup).
    served: FxHashSet<ServerKey>,
}

/// What a judgement wants done: the evaluator fires and resolves.
pub enum Act {
    Fire(Alert),
    Resolve(Alert, Millis),
}

/// The rule settings the fleet rules read, from the rule file.
pub struct Settings<'a> {
    pub down: &'a FleetDownOptions,
    pub diverge: &'a DivergeOptions,
    pub silent: &'a RuleOptions,
    pub silence: Millis,
    pub runbook: &'a str,
}

impl Settings<'_> {
    fn down_on(&self) -> DownOn {
        DownOn::parse(&self.down.down_on).unwrap_or(DownOn::All)
    }

    fn diverge_for(&self) -> Millis {
        crate::time::parse_duration(&self.diverge.for_).unwrap_or(60_000)
    }
}

fn labels(
    rule: &str,
    opts: &RuleOptions,
    severity: Severity,
    pairs: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut l = opts.labels.clone();
    l.insert("alertname".into(), rule.into());
    for (k, v) in pairs {
        l.insert((*k).into(), (*v).into());
    }
    l.insert("severity".into(), severity.as_str().into());
    l
}

impl Fleet {
    pub fn new() -> Fleet {
        Fleet {
            state: FleetState::default(),
            enabled: true,
            offsets: BTreeMap::new(),
            dirty: false,
            served: FxHashSet::default(),
        }
    }

    /// Carries on from a stopped run's state.
    pub fn restore(&mut self, state: FleetState) {
        self.state = state;
        self.served.clear();
    }

    /// `host`'s dates run `offset` ahead of the reference (negative:
    /// behind).
    pub fn clock_offset(&mut self, host: String, offset: Millis) {
        self.offsets.insert(host, offset);
    }

    /// A time of `host`'s clock on the fleet's.
    fn fleet_time(&self, host: &str, at: Millis) -> Millis {
        at - self.offsets.get(host).copied().unwrap_or(0)
    }

    /// A host was heard from at `at` (a line, or a request minute's end):
    /// a silent host speaks again.
    pub fn heard(&mut self, host: &str, at: Millis, s: &Settings, out: &mut Vec<Act>) {
        if !self.enabled {
            return;
        }
        let at = self.fleet_time(host, at);
        self.hear(host, at, s, out)
    }

    /// [`Fleet::heard`], `at` on the fleet's clock.
    fn hear(&mut self, host: &str, at: Millis, s: &Settings, out: &mut Vec<Act>) {
        const MINUTE: Millis = 60_000;
        match self.state.heard.get_mut(host) {
            Some(last) => {
                self.dirty |= at.div_euclid(MINUTE) > last.div_euclid(MINUTE);
                *last = (*last).max(at);
            }
            None => {
                self.dirty = true;
                self.state.heard.insert(host.to_string(), at);
            }
        }
        if self.state.silent.remove(host) {
            out.push(Act::Resolve(self.silent_alert(host, at, s), at));
            self.judge_host(host, at, s, out);
        }
    }

    /// A transition, just applied: the server's view on that host changes.
    pub fn on_transition(&mut self, t: &Transition, s: &Settings, out: &mut Vec<Act>) {
        if !self.enabled {
            return;
        }
        let at = self.fleet_time(&t.host, t.at);
        self.hear(&t.host, at, s, out);
        self.state
            .views
            .entry((t.backend.clone(), t.server.clone()))
            .or_default()
            .insert(
                t.host.clone(),
                View {
                    label: t.to,
                    since: at,
                    cause: t.cause.clone(),
                },
            );
        self.judge(&t.backend, &t.server, at, s, out);
    }

    /// A health line of a server on `host`, and the server's state after
    /// it. Returns whether the fleet's memory changed.
    #[allow(clippy::too_many_arguments)]
    pub fn on_heard(
        &mut self,
        host: &str,
        backend: &str,
        server: &str,
        at: Millis,
        label: Label,
        s: &Settings,
        out: &mut Vec<Act>,
    ) -> bool {
        if !self.enabled {
            return false;
        }
        let at = self.fleet_time(host, at);
        self.hear(host, at, s, out);
        let views = self
            .state
            .views
            .entry((backend.to_string(), server.to_string()))
            .or_default();
        match views.get_mut(host) {
            Some(v) if v.label == label => return false,
            Some(v) => (v.label, v.since) = (label, at),
            None => {
                views.insert(
                    host.to_string(),
                    View {
                        label,
                        since: at,
                        cause: None,
                    },
                );
            }
        }
        self.judge(backend, server, at, s, out);
        true
    }

    /// `host` sent requests to a server in the minute ending at `at`: it
    /// reports the server, UP, unless a health line said otherwise.
    pub fn serves(&mut self, key: &ServerKey, at: Millis, s: &Settings, out: &mut Vec<Act>) {
        if !self.enabled || self.served.contains(key) {
            return;
        }
        self.served.insert(key.clone());
        let (host, backend, server) = (&key.host[..], &key.backend[..], &key.server[..]);
        let at = self.fleet_time(host, at);
        let views = self
            .state
            .views
            .entry((backend.to_string(), server.to_string()))
            .or_default();
        if views.contains_key(host) {
            return;
        }
        self.dirty = true;
        views.insert(
            host.to_string(),
            View {
                label: Label::Up,
                since: at,
                cause: None,
            },
        );
        self.judge(backend, server, at, s, out);
    }

    /// Event time has come to `now` (with every minute before it handed
    /// over): hosts fall silent, disagreements last long enough to fire.
    pub fn advance(&mut self, now: Millis, s: &Settings, out: &mut Vec<Act>) -> bool {
        if !self.enabled {
            return false;
        }
        // Event time's newest line may come from a host whose clock runs
        // ahead: on the fleet's clock, "now" is that much earlier.
        let ahead = self.offsets.values().copied().max().unwrap_or(0).max(0);
        // Saturating: `analyze` says "no minute is whole yet" with
        // `Millis::MIN`, and a wrapped `now - last` made every host silent.
        let now = now.saturating_sub(ahead);
        let mut changed = false;
        let quiet: Vec<(String, Millis)> = self
            .state
            .heard
            .iter()
            .filter(|(h, &last)| {
                now.saturating_sub(last) > s.silence && !self.state.silent.contains(*h)
            })
            .map(|(h, &last)| (h.clone(), last + s.silence))
            .collect();
        for (host, at) in quiet {
            changed = true;
            self.state.silent.insert(host.clone());
            if s.silent.enabled && s.silent.selects(&host, "", None) {
                out.push(Act::Fire(self.silent_alert(&host, at, s)));
            }
            self.judge_host(&host, at, s, out);
        }
        let due: Vec<((String, String), Millis)> = self
            .state
            .diverging
            .iter()
            .filter(|(_, &since)| since + s.diverge_for() <= now)
            .map(|(k, &v)| (k.clone(), v))
            .collect();
        for ((b, srv), since) in due {
            if let Some(a) = self.diverge_alert(&b, &srv, since, s) {
                out.push(Act::Fire(a));
            }
        }
        changed
    }

    fn silent_alert(&self, host: &str, at: Millis, s: &Settings) -> Alert {
        let rule = "haproxy_host_silent";
        let sev = s.silent.severity.unwrap_or(Severity::Warning);
        let last = self.state.heard.get(host).copied().unwrap_or(at);
        Alert {
            rule: rule.into(),
            status: Status::Firing,
            severity: sev,
            labels: labels(rule, s.silent, sev, &[("host", host)]),
            starts_at: at,
            ends_at: None,
            summary: format!("HAProxy host {} stopped logging", show_host(host)),
            description: format!(
                "No line from it since {}, while the other hosts go on. Its servers' \
                 last states count neither way in the fleet rules until it logs again. \
                 Check the load balancer, its `log` target and the syslog path to hapwatch.",
                format_rfc3339_ms(last)
            ),
            runbook: s.runbook.into(),
        }
    }

    /// Every server `host` reports, judged again (it fell silent or spoke).
    fn judge_host(&mut self, host: &str, at: Millis, s: &Settings, out: &mut Vec<Act>) {
        let servers: Vec<(String, String)> = self
            .state
            .views
            .iter()
            .filter(|(_, v)| v.contains_key(host))
            .map(|(k, _)| k.clone())
            .collect();
        for (b, srv) in servers {
            self.judge(&b, &srv, at, s, out);
        }
    }

    /// The hosts (not silent, selected by the rule) reporting a server.
    fn live<'a>(
        &'a self,
        backend: &'a str,
        server: &'a str,
        opts: &'a RuleOptions,
    ) -> impl Iterator<Item = (&'a String, &'a View)> + 'a {
        self.state
            .views
            .get(&(backend.to_string(), server.to_string()))
            .into_iter()
            .flatten()
            .filter(move |(h, v)| {
                v.label != Label::Unknown
                    && !self.state.silent.contains(*h)
                    && opts.selects(h, backend, Some(server))
            })
    }

    fn judge(&mut self, backend: &str, server: &str, at: Millis, s: &Settings, out: &mut Vec<Act>) {
        let key = (backend.to_string(), server.to_string());
        // DOWN on at least k of the hosts that report it.
        if s.down.rule.enabled {
            let live: Vec<_> = self.live(backend, server, &s.down.rule).collect();
            let n = live.len();
            let down: Vec<_> = live
                .iter()
                .filter(|(_, v)| v.label == Label::Down)
                .collect();
            let holds =
                n >= s.down.min_hosts.max(1) && !down.is_empty() && down.len() >= s.down_on().of(n);
            let rule = "haproxy_server_down_fleet";
            let sev = s.down.rule.severity.unwrap_or(Severity::Critical);
            let causes = down
                .iter()
                .map(|(h, v)| {
                    format!(
                        "{} ({})",
                        show_host(h),
                        v.cause.as_deref().unwrap_or("no reason logged")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let a = Alert {
                rule: rule.into(),
                status: Status::Firing,
                severity: sev,
                labels: labels(
                    rule,
                    &s.down.rule,
                    sev,
                    &[("backend", backend), ("server", server)],
                ),
                starts_at: at,
                ends_at: None,
                summary: format!(
                    "{backend}/{server} is DOWN on {}/{n} load balancers",
                    down.len()
                ),
                description: format!("DOWN on {causes}."),
                runbook: s.runbook.into(),
            };
            out.push(if holds {
                Act::Fire(a)
            } else {
                Act::Resolve(a, at)
            });
        }
        // DOWN on some, UP on others.
        if s.diverge.rule.enabled {
            let live: Vec<_> = self.live(backend, server, &s.diverge.rule).collect();
            let splits = live.iter().any(|(_, v)| v.label == Label::Down)
                && live.iter().any(|(_, v)| v.label == Label::Up);
            if splits {
                let since = *self.state.diverging.entry(key).or_insert(at);
                if since + s.diverge_for() <= at {
                    if let Some(a) = self.diverge_alert(backend, server, since, s) {
                        out.push(Act::Fire(a));
                    }
                }
            } else if self.state.diverging.remove(&key).is_some() {
                if let Some(a) = self.diverge_alert(backend, server, at, s) {
                    out.push(Act::Resolve(a, at));
                }
            }
        }
    }

    /// The divergence alert of a server whose hosts disagree since `since`
    /// (it fires `for` later).
    fn diverge_alert(
        &self,
        backend: &str,
        server: &str,
        since: Millis,
        s: &Settings,
    ) -> Option<Alert> {
        let rule = "haproxy_lb_view_diverges";
        let sev = s.diverge.rule.severity.unwrap_or(Severity::Warning);
        let live: Vec<_> = self.live(backend, server, &s.diverge.rule).collect();
        let on = |l: Label| {
            live.iter()
                .filter(|(_, v)| v.label == l)
                .map(|(h, _)| show_host(h))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some(Alert {
            rule: rule.into(),
            status: Status::Firing,
            severity: sev,
            labels: labels(
                rule,
                &s.diverge.rule,
                sev,
                &[("backend", backend), ("server", server)],
            ),
            starts_at: since + s.diverge_for(),
            ends_at: None,
            summary: format!(
                "load balancers disagree on {backend}/{server}: DOWN on {}, UP on {}",
                on(Label::Down),
                on(Label::Up)
            ),
            description: format!(
                "Since {}: the server answers some load balancers' checks and not others'. \
                 Look at the network between those load balancers and the server \
                 (routes, firewalls, the server's listen address), not at the server alone.",
                format_rfc3339_ms(since)
            ),
            runbook: s.runbook.into(),
        })
    }
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

/// Checks the fleet settings of a rule file.
pub fn check(
    down: &FleetDownOptions,
    diverge: &DivergeOptions,
    silence: &str,
) -> Result<(), String> {
    DownOn::parse(&down.down_on)?;
    if crate::time::parse_duration(&diverge.for_).is_err() {
        return Err(format!(
            "haproxy_lb_view_diverges.for = {:?}: not a duration (e.g. 1m)",
            diverge.for_
        ));
    }
    if parse_duration(silence).is_none() {
        return Err(format!(
            "host_silence = {silence:?}: not a duration (e.g. 2m)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host that only sends requests is heard by its minutes: the
    /// rules' state says so at least once a minute, or a restart (which
    /// stores and reloads that state) would find its hearing minutes old
    /// and judge it silent before its next line.
    #[test]
    fn hearing_a_host_in_a_new_minute_is_a_change_to_store() {
        let rollup = |host: &str, minute: Millis| crate::engine::rollup::Rollup {
            key: crate::model::ServerKey {
                host: host.into(),
                backend: "be_app".into(),
                server: "srv1".into(),
            },
            minute,
            data: Default::default(),
        };
        let mut e = Evaluator::new(RuleFile::default());
        e.take_changed();
        e.on_minutes(&[rollup("lb1", 0)], Some(30 * S));
        assert!(e.take_changed(), "a new host, a new view");
        e.on_minutes(&[rollup("lb1", 0)], Some(40 * S));
        assert!(!e.take_changed(), "the same minute again");
        e.on_minutes(&[rollup("lb1", 60 * S)], Some(90 * S));
        assert!(e.take_changed(), "heard in a new minute");
        let saved = serde_json::to_string(&e.state()).unwrap();
        // Restarted from what was stored: lb1 is not silent at 3 minutes.
        let mut back = Evaluator::new(RuleFile::default());
        back.restore_state(serde_json::from_str(&saved).unwrap(), Vec::new());
        back.advance(3 * 60 * S);
        assert!(
            !back.out.iter().any(|a| a.rule == "haproxy_host_silent"),
            "{:?}",
            back.out
        );
        back.advance(4 * 60 * S);
        assert!(back.out.iter().any(|a| a.rule == "haproxy_host_silent"));
    }

    /// Event time at its least (`analyze` before any minute is whole, or a
    /// host's clock far ahead) is no gap since a host was heard: the
    /// subtraction wrapped around and every host fell silent.
    #[test]
    fn no_host_falls_silent_at_the_start_of_time() {
        let mut e = Evaluator::new(RuleFile::default());
        e.on_state(&heard(3_600 * S, "lb1", "srv1", Label::Up));
        e.advance(Millis::MIN);
        assert!(e.out.is_empty(), "{:?}", e.out);
        e.clock_offset("lb1".into(), 5 * 60 * S);
        e.advance(Millis::MIN + 1);
        assert!(e.out.is_empty(), "{:?}", e.out);
        e.advance(3_600 * S + 8 * 60 * S);
        assert!(e.out.iter().any(|a| a.rule == "haproxy_host_silent"));
    }

    #[test]
    fn down_on_reads_all_counts_and_shares() {
        assert_eq!(DownOn::parse("all").unwrap().of(4), 4);
        assert_eq!(DownOn::parse("2").unwrap().of(4), 2);
        assert_eq!(DownOn::parse("50%").unwrap().of(4), 2);
        assert_eq!(DownOn::parse("50%").unwrap().of(3), 2);
        assert_eq!(DownOn::parse("1%").unwrap().of(3), 1);
        for bad in ["", "0", "0%", "120%", "most", "-1"] {
            assert!(DownOn::parse(bad).is_err(), "{bad}");
        }
    }

    use super::super::{Evaluator, RuleFile};
    use crate::model::{BackendView, StateEvent};

    const S: Millis = 1_000;

    fn t(at: Millis, host: &str, server: &str, from: Label, to: Label) -> StateEvent {
        StateEvent::Transition(
            Box::new(Transition {
                at,
                order: None,
                host: host.into(),
                backend: "be_app".into(),
                server: server.into(),
                from,
                to,
                cause: Some(format!("{host} says so")),
                pattern: String::new(),
                check: None,
                nth: 0,
            }),
            BackendView::default(),
        )
    }

    fn heard(at: Millis, host: &str, server: &str, label: Label) -> StateEvent {
        StateEvent::Heard {
            host: host.into(),
            backend: "be_app".into(),
            server: server.into(),
            at,
            label,
        }
    }

    /// (rule, status, time in seconds, summary) of the fleet rules' events.
    fn fleet_events(e: &mut Evaluator) -> Vec<(String, Status, Millis, String)> {
        std::mem::take(&mut e.out)
            .into_iter()
            .filter(|a| !a.labels.contains_key("host") || a.rule == "haproxy_host_silent")
            .map(|a| {
                assert!(
                    a.rule == "haproxy_host_silent" || !a.labels.contains_key("host"),
                    "{a:?}"
                );
                let at = a.ends_at.unwrap_or(a.starts_at) / S;
                (a.rule, a.status, at, a.summary)
            })
            .collect()
    }

    fn three_hosts_up(e: &mut Evaluator) {
        for h in ["lb1", "lb2", "lb3"] {
            e.on_state(&heard(0, h, "srv2", Label::Up));
        }
    }

    #[test]
    fn a_server_down_on_every_host_pages_once_without_a_host_label() {
        let mut e = Evaluator::new(RuleFile::default());
        three_hosts_up(&mut e);
        e.on_state(&t(10 * S, "lb1", "srv2", Label::Up, Label::Down));
        e.on_state(&t(11 * S, "lb2", "srv2", Label::Up, Label::Down));
        e.on_state(&t(12 * S, "lb3", "srv2", Label::Up, Label::Down));
        e.on_state(&t(20 * S, "lb2", "srv2", Label::Down, Label::Up));
        let ev = fleet_events(&mut e);
        let down: Vec<_> = ev
            .iter()
            .filter(|x| x.0 == "haproxy_server_down_fleet")
            .collect();
        assert_eq!(down.len(), 2, "{ev:?}");
        assert_eq!((down[0].1, down[0].2), (Status::Firing, 12));
        assert_eq!(down[0].3, "be_app/srv2 is DOWN on 3/3 load balancers");
        assert_eq!((down[1].1, down[1].2), (Status::Resolved, 20));
    }

    #[test]
    fn hosts_that_disagree_for_long_enough_are_a_warning_and_down_on_counts_hosts() {
        let mut rules = RuleFile::parse(
            "[haproxy_server_down_fleet]\ndown_on = \"2\"\n[haproxy_lb_view_diverges]\nfor = \"30s\"\n",
        )
        .unwrap();
        rules.haproxy_backend_server_status.enabled = false;
        let mut e = Evaluator::new(rules);
        three_hosts_up(&mut e);
        e.on_state(&t(10 * S, "lb1", "srv2", Label::Up, Label::Down));
        e.advance(39 * S);
        assert_eq!(fleet_events(&mut e), []);
        e.on_state(&t(41 * S, "lb2", "srv2", Label::Up, Label::Down));
        let ev = fleet_events(&mut e);
        assert_eq!(
            ev.iter()
                .map(|x| (x.0.as_str(), x.1, x.2))
                .collect::<Vec<_>>(),
            [
                ("haproxy_server_down_fleet", Status::Firing, 41),
                // Due at 40 s; judged when event time got past it.
                ("haproxy_lb_view_diverges", Status::Firing, 40),
            ]
        );
        assert!(
            ev[1].3.contains("DOWN on lb1, lb2, UP on lb3"),
            "{}",
            ev[1].3
        );
        e.on_state(&t(50 * S, "lb1", "srv2", Label::Down, Label::Up));
        e.on_state(&t(51 * S, "lb2", "srv2", Label::Down, Label::Up));
        let ev = fleet_events(&mut e);
        assert_eq!(
            ev.iter()
                .map(|x| (x.0.as_str(), x.1, x.2))
                .collect::<Vec<_>>(),
            [
                ("haproxy_server_down_fleet", Status::Resolved, 50),
                ("haproxy_lb_view_diverges", Status::Resolved, 51),
            ]
        );
    }

    #[test]
    fn a_silent_host_is_said_and_counts_neither_way() {
        let mut e = Evaluator::new(RuleFile::default());
        three_hosts_up(&mut e);
        e.on_state(&t(10 * S, "lb1", "srv2", Label::Up, Label::Down));
        e.on_state(&t(11 * S, "lb2", "srv2", Label::Up, Label::Down));
        // lb1 and lb2 go on logging; lb3 (which still sees srv2 UP) does not.
        for m in 1..=3 {
            for h in ["lb1", "lb2"] {
                e.on_state(&heard(m * 60 * S, h, "srv1", Label::Up));
            }
            e.advance(m * 60 * S);
        }
        let ev = fleet_events(&mut e);
        assert_eq!(
            ev.iter()
                .map(|x| (x.0.as_str(), x.1, x.2))
                .collect::<Vec<_>>(),
            [
                // lb3 still saw it UP a minute after the others: a warning.
                ("haproxy_lb_view_diverges", Status::Firing, 70),
                ("haproxy_host_silent", Status::Firing, 120),
                ("haproxy_server_down_fleet", Status::Firing, 120),
                // With lb3 silent, nothing disagrees any more.
                ("haproxy_lb_view_diverges", Status::Resolved, 120),
            ],
            "{ev:?}"
        );
        assert_eq!(ev[1].3, "HAProxy host lb3 stopped logging");
        assert_eq!(ev[2].3, "be_app/srv2 is DOWN on 2/2 load balancers");
        // lb3 speaks again, still seeing srv2 UP: not down everywhere.
        e.on_state(&heard(200 * S, "lb3", "srv2", Label::Up));
        let ev = fleet_events(&mut e);
        assert_eq!(
            ev.iter()
                .map(|x| (x.0.as_str(), x.1, x.2))
                .collect::<Vec<_>>(),
            [
                ("haproxy_host_silent", Status::Resolved, 200),
                ("haproxy_server_down_fleet", Status::Resolved, 200),
            ]
        );
    }

    #[test]
    fn a_restart_carries_the_fleet_on() {
        let events = [
            heard(0, "lb1", "srv2", Label::Up),
            heard(0, "lb2", "srv2", Label::Up),
            t(10 * S, "lb1", "srv2", Label::Up, Label::Down),
            t(11 * S, "lb2", "srv2", Label::Up, Label::Down),
            t(20 * S, "lb1", "srv2", Label::Down, Label::Up),
        ];
        let mut one = Evaluator::new(RuleFile::default());
        for x in &events {
            one.on_state(x);
        }
        let all = fleet_events(&mut one);
        for cut in 0..events.len() {
            let mut a = Evaluator::new(RuleFile::default());
            for x in &events[..cut] {
                a.on_state(x);
            }
            let mut got = fleet_events(&mut a);
            let state = serde_json::to_string(&a.state()).unwrap();
            let firing: Vec<_> = a.firing.values().cloned().collect();
            let mut b = Evaluator::new(RuleFile::default());
            b.restore(firing);
            b.restore_state(serde_json::from_str(&state).unwrap(), Vec::new());
            for x in &events[cut..] {
                b.on_state(x);
            }
            got.extend(fleet_events(&mut b));
            assert_eq!(got, all, "stopped after {cut} events");
        }
        // A state written before the fleet rules existed still reads.
        let mut old: serde_json::Value =
            serde_json::to_value(Evaluator::new(RuleFile::default()).state()).unwrap();
        old.as_object_mut().unwrap().remove("fleet");
        let old: super::super::EvaluatorState = serde_json::from_value(old).unwrap();
        assert!(old.fleet.views.is_empty());
    }

    #[test]
    fn a_single_load_balancer_gets_no_fleet_page() {
        let mut e = Evaluator::new(RuleFile::default());
        e.on_state(&heard(0, "lb1", "srv2", Label::Up));
        e.on_state(&t(10 * S, "lb1", "srv2", Label::Up, Label::Down));
        assert_eq!(fleet_events(&mut e), []);
    }
}
