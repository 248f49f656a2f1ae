//! The per-server state machine: HAProxy's operational state (UP, DOWN,
//! STOPPING) × administrative state (READY, MAINT, DRAIN), plus UNKNOWN until
//! the first evidence; and per-backend "no server available" periods.
//!
//! Invariant: events are applied in event-time order by one owner; durations
//! are measured in event time only (never the wall clock) and clipped to the
//! analysed window.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::haproxy::{Admin, CheckDetails, HealthEvent, Op};
use crate::patterns::Class;
use crate::time::Millis;

use super::stats::ServerKey;
use super::touched::{Reader, Touched};
pub use crate::model::{Label, Transition};

#[derive(Clone, Debug, Default)]
pub struct ServerState {
    pub op: Option<Op>,
    pub admin: Option<Admin>,
    pub backup: bool,
    /// When the current label began (event time), if seen.
    pub since: Option<Millis>,
    pub last_cause: Option<String>,
    /// Last `status: x/y STATE` of a health check line.
    pub last_check: Option<CheckDetails>,
    pub transitions: u64,
    /// Milliseconds spent in each label within the window.
    pub time_in: BTreeMap<Label, i64>,
    /// A state began or ended on a line with no time
    /// ([`crate::time::UNTIMED`]): `time_in` is not the whole story and
    /// reports say the durations are unknown.
    pub times_unknown: bool,
    /// Events (of any class) seen for this server.
    pub events: u64,
    /// The last event of this server was a check line.
    pub check_just_before: bool,
    /// The state was only read off a check line's `status: x/y UP|DOWN`
    /// (no state line yet): see [`HealthTracker::apply`].
    pub from_check: bool,
    /// Event time of the newest state line applied (stored since schema
    /// 17; for an older row `since` stands in for it).
    pub last_state_at: Option<Millis>,
    /// Loaded from the database, and no line of this run has met it yet
    /// ([`HealthTracker::seed`]).
    pub stored: bool,
    /// The states its transitions of the newest millisecond went to
    /// ([`Transition::nth`]), and that millisecond.
    pub same_ms: Option<(Millis, Vec<Label>)>,
    /// The readers whose [`HealthTracker::touched`] list has it.
    pub(crate) touched: u8,
}

impl ServerState {
    pub fn label(&self) -> Label {
        Label::of(self.op, self.admin.unwrap_or(Admin::Ready))
    }

    /// A line at `at` meets a state an earlier run stored: the story goes
    /// on from it, unless the line is older than it by more than `slack`
    /// (the reorder window), which makes the log older than what is
    /// stored (an archive read afterwards): the server then starts afresh,
    /// as it did when that log was first read. An untimed line says
    /// nothing of its age.
    fn meet_stored(&mut self, at: Millis, slack: Millis) {
        if !std::mem::take(&mut self.stored) || crate::time::is_untimed(at) {
            return;
        }
        let newest = self.last_state_at.or(self.since);
        if newest.is_some_and(|t| !crate::time::is_untimed(t) && at < t.saturating_sub(slack)) {
            *self = ServerState::default();
        }
    }

    /// Nothing has said anything about its state yet.
    fn blank(&self) -> bool {
        self.since.is_none() && self.op.is_none() && self.admin.is_none()
    }

    /// Counts `since..end`, clipped to the window, as time in `label`:
    /// unless either end is a line's arrival order rather than a time,
    /// which makes this server's durations unknown.
    fn add_time(&mut self, label: Label, since: Millis, end: Millis, window_start: Option<Millis>) {
        if crate::time::is_untimed(since) || crate::time::is_untimed(end) {
            self.times_unknown = true;
            return;
        }
        let from = window_start.map_or(since, |w| since.max(w));
        if end > from {
            *self.time_in.entry(label).or_default() += end - from;
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct NoServerPeriod {
    pub start: Millis,
    pub end: Option<Millis>,
}

#[derive(Clone, Debug, Default)]
pub struct BackendState {
    pub no_server: Vec<NoServerPeriod>,
    pub active: Option<u32>,
    pub backups: Option<u32>,
}

/// `reason: X, code: N, info: "...", check duration: Nms`, as HAProxy
/// writes it inline when `log-health-checks` is off.
fn check_cause(c: &CheckDetails) -> String {
    let mut s = format!("reason: {}", c.reason.as_deref().unwrap_or(""));
    if let Some(code) = c.code {
        s.push_str(&format!(", code: {code}"));
    }
    if let Some(info) = &c.info {
        s.push_str(&format!(", info: \"{info}\""));
    }
    if let Some(d) = c.duration_ms {
        s.push_str(&format!(", check duration: {d}ms"));
    }
    s
}

/// The operational state a health check line reports (`status: 1/2 UP`).
fn check_op(c: &CheckDetails) -> Option<Op> {
    match c.check_state.as_deref()? {
        "UP" => Some(Op::Up),
        "DOWN" => Some(Op::Down),
        _ => None,
    }
}

/// What a state message implies about the state before it, when it is the
/// first thing seen of a server: `is UP` after checks means it was DOWN,
/// as `was DOWN and now enters maintenance` says; `leaving maintenance`
/// means MAINT.
fn implied_previous(ev: &HealthEvent) -> Option<(Option<Op>, Admin)> {
    match ev.pattern.as_str() {
        "server_up" | "maint_was_down" => Some((Some(Op::Down), Admin::Ready)),
        "server_down" | "server_stopping" | "maint_going_down" | "drain_enters" => {
            Some((Some(Op::Up), Admin::Ready))
        }
        // Leaving maintenance, or saying it stays in it: MAINT before.
        "maint_leaving"
        | "dns_resolves_again"
        | "maint_leaving_remains"
        | "maint_remains_forced"
        | "dns_resolves_remains" => Some((None, Admin::Maint)),
        "drain_leaving" => Some((Some(Op::Up), Admin::Drain)),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct HealthTracker {
    pub servers: BTreeMap<ServerKey, ServerState>,
    /// Servers an event was applied to since each reader took them (each
    /// once per reader): the store writes their rows, `/metrics` updates
    /// their series, not every server's.
    pub touched: Touched<ServerKey>,
    pub backends: BTreeMap<(String, String), BackendState>,
    pub transitions: Vec<Transition>,
    /// Check lines applied since a store took them (only when
    /// `keep_checks`: a store is there to take them).
    pub checks: Vec<crate::model::Check>,
    /// HAProxy's starts, reloads and stops since a store took them (only
    /// when `keep_checks`).
    pub process: Vec<crate::model::ProcessEvent>,
    pub keep_checks: bool,
    /// Start of the window: time before it is not counted.
    pub window_start: Option<Millis>,
    /// State lines older than a state already applied to their server:
    /// not applied (see [`HealthTracker::apply`]).
    pub stale: u64,
    /// Transitions recorded because the runtime API said another state
    /// (see [`HealthTracker::reconcile`]).
    pub reconciled: u64,
    /// How much older than a stored state a line may be and still go on
    /// from it ([`HealthTracker::seed`]).
    pub stored_slack: Millis,
}

/// The cause of a transition the runtime API showed and no line told.
pub const RECONCILED: &str = "reconciled from the runtime API";

/// The cause of a transition a SIGHUP dump showed and no line told.
pub const DUMPED: &str = "shown by a SIGHUP dump (no line told the change)";

impl HealthTracker {
    /// The servers' states an earlier run stored (`analyze --db` run
    /// again, on the same file grown or on the next one logrotate left
    /// under a new name): each goes on at its server's first line of this
    /// run, unless that line is older than it by more than `slack`
    /// ([`ServerState::meet_stored`]).
    pub fn seed(
        &mut self,
        states: impl IntoIterator<Item = (ServerKey, ServerState)>,
        slack: Millis,
    ) {
        self.stored_slack = slack;
        self.servers.extend(states.into_iter().map(|(k, mut st)| {
            st.stored = true;
            (k, st)
        }));
    }

    /// The state HAProxy's runtime API reports for a server at `at`
    /// (`since`: when it says the state began). A server nothing has said
    /// anything of yet is seeded, with no transition (as a check line
    /// seeds it); one whose state differs gets a transition with cause
    /// [`RECONCILED`]: the lines that told it were lost. True when a
    /// transition was recorded.
    #[allow(clippy::too_many_arguments)]
    pub fn reconcile(
        &mut self,
        host: &str,
        at: Millis,
        backend: &str,
        server: &str,
        op: Op,
        admin: Admin,
        since: Option<Millis>,
    ) -> bool {
        let key = ServerKey {
            host: host.to_string(),
            backend: backend.to_string(),
            server: server.to_string(),
        };
        let st = self.servers.entry(key.clone()).or_default();
        if st.blank() || st.from_check {
            self.touched.mark(&mut st.touched, || key);
            (st.op, st.admin) = (Some(op), Some(admin));
            st.since = since.or(Some(at));
            st.from_check = false;
            st.last_cause.get_or_insert_with(|| RECONCILED.to_string());
            return false;
        }
        if st.label() == Label::of(Some(op), admin) {
            return false;
        }
        let backup = st.backup;
        let ev = HealthEvent {
            server: Some(server.to_string()),
            backup,
            op: Some(op),
            admin: Some(admin),
            cause: Some(RECONCILED.to_string()),
            ..HealthEvent::bare("runtime_api", Class::Server, backend)
        };
        let before = self.transitions.len();
        self.apply(host, at, &ev, true);
        let recorded = self.transitions.len() > before;
        self.reconciled += recorded as u64;
        recorded
    }

    /// A server's state as a SIGHUP dump shows it at `at`. HAProxy tells
    /// there only whether the server is stopped (`DOWN`: DOWN or in
    /// maintenance) or not (`UP`: UP, STOPPING or DRAIN). A server nothing
    /// has told yet is seeded, with no transition, as of `at` (as the
    /// runtime API seeds it: the time before, in a state nothing told, is
    /// counted in none, so a dump hours into a log does not make a server
    /// DOWN for those hours); one the log shows otherwise gets a transition
    /// with cause [`DUMPED`], the dump's own pattern, and counts as
    /// reconciled: the line that told the change was lost.
    fn dumped(&mut self, host: &str, at: Millis, ev: &HealthEvent, report: bool) {
        let (Some(server), Some(op)) = (&ev.server, ev.op) else {
            return;
        };
        let key = ServerKey {
            host: host.to_string(),
            backend: ev.backend.clone(),
            server: server.clone(),
        };
        let st = self.servers.entry(key.clone()).or_default();
        st.meet_stored(at, self.stored_slack);
        if st.blank() || st.from_check {
            self.touched.mark(&mut st.touched, || key);
            st.events += 1;
            (st.op, st.admin) = (Some(op), Some(Admin::Ready));
            st.since = Some(at);
            st.from_check = false;
            return;
        }
        let running = op != Op::Down;
        let shown = match st.label() {
            Label::Up | Label::Stopping | Label::Drain => running,
            Label::Down | Label::Maint => !running,
            Label::Unknown => false,
        };
        if shown {
            st.events += 1;
            return;
        }
        // Running while in maintenance: it left it (to READY, the likelier;
        // the dump does not tell DRAIN apart).
        let admin = (running && st.admin == Some(Admin::Maint)).then_some(Admin::Ready);
        let told = HealthEvent {
            class: Class::Server,
            op: Some(op),
            admin,
            cause: Some(DUMPED.to_string()),
            ..ev.clone()
        };
        let before = self.transitions.len();
        self.apply(host, at, &told, report);
        self.reconciled += (self.transitions.len() > before) as u64;
    }

    /// Applies one health event at event time `at`. `report` is false for
    /// events before the window (they set the state but list nothing).
    pub fn apply(&mut self, host: &str, at: Millis, ev: &HealthEvent, report: bool) {
        if ev.class == Class::Snapshot {
            return self.dumped(host, at, ev, report);
        }
        if ev.class == Class::Process {
            if self.keep_checks && report {
                self.process.push(crate::model::ProcessEvent {
                    at,
                    host: host.to_string(),
                    event: ev.pattern.clone(),
                    proxy: ev.backend.clone(),
                    message: ev.cause.clone().unwrap_or_default(),
                });
            }
            return;
        }
        if ev.class == Class::Backend {
            let b = self
                .backends
                .entry((host.to_string(), ev.backend.clone()))
                .or_default();
            if b.no_server.last().is_none_or(|p| p.end.is_some()) {
                b.no_server.push(NoServerPeriod {
                    start: at,
                    end: None,
                });
            }
            b.active = Some(0);
            b.backups = Some(0);
            return;
        }
        let Some(server) = &ev.server else { return };
        let key = ServerKey {
            host: host.to_string(),
            backend: ev.backend.clone(),
            server: server.clone(),
        };
        let window_start = self.window_start;
        let st = match self.servers.get_mut(&key) {
            Some(st) => st,
            None => self.servers.entry(key.clone()).or_default(),
        };
        st.meet_stored(at, self.stored_slack);
        self.touched.mark(&mut st.touched, || key);
        st.events += 1;
        st.backup |= ev.backup;
        if ev.class == Class::Check {
            // A check line says the server's operational state (`status:
            // 1/2 UP`): before any state line, that is better than
            // UNKNOWN. Not a transition: nothing says when it began.
            let first = st.blank();
            if let (true, Some(op)) = (first, ev.check.as_ref().and_then(check_op)) {
                st.op = Some(op);
                st.admin = Some(Admin::Ready);
                st.since = window_start;
                st.from_check = true;
            }
            st.last_check = ev.check.clone();
            st.check_just_before = true;
            if let (true, true, Some(check)) = (self.keep_checks, report, &ev.check) {
                self.checks.push(crate::model::Check {
                    at,
                    host: host.to_string(),
                    backend: ev.backend.clone(),
                    server: server.clone(),
                    check: check.clone(),
                });
            }
            return;
        }
        // Only a check line immediately before this state line explains it.
        let check_before = std::mem::take(&mut st.check_just_before);
        if ev.op.is_none() && ev.admin.is_none() {
            return; // DNS address changes and the like: information only.
        }
        // A state line older than one already applied to this server (it
        // arrived after the reorder window let newer lines in) cannot
        // overturn the newer state: the live state, the database and the
        // alerts all keep to the newest line (the database keeps a server's
        // row only for a later time), and the line is counted as stale.
        if st
            .last_state_at
            .or(st.since)
            .is_some_and(|newest| at < newest)
        {
            self.stale += 1;
            return;
        }
        st.last_state_at = Some(at);
        // A check line at the edge (`0/2 DOWN`, `2/2 UP`) is written with
        // the state it leads to, just before the state line that announces
        // it: the state before is then still what the state line implies.
        let seeded = std::mem::take(&mut st.from_check);
        if seeded && check_before {
            (st.op, st.admin, st.since) = (None, None, None);
        }
        let first = st.blank();
        if first {
            if let Some((op, admin)) = implied_previous(ev) {
                st.op = op;
                st.admin = Some(admin);
                st.since = window_start;
            }
        }
        let before = st.label();
        let (old_op, old_admin) = (st.op, st.admin);
        if let Some(op) = ev.op {
            st.op = Some(op);
        }
        if let Some(admin) = ev.admin {
            st.admin = Some(admin);
        } else if st.admin.is_none() {
            st.admin = Some(Admin::Ready);
        }
        if ev.cause.is_some() || ev.via.is_some() {
            st.last_cause = ev
                .cause
                .clone()
                .or_else(|| ev.via.as_ref().map(|v| format!("via {v}")));
        }
        if (st.op, st.admin) == (old_op, old_admin) {
            return;
        }
        let after = st.label();
        if let Some(since) = st.since {
            st.add_time(before, since, at, window_start);
        }
        st.since = Some(at);
        if before != after {
            // With `option log-health-checks` the state line is short and
            // the reason is on the check line just before it.
            let checked =
                matches!(ev.op, Some(Op::Up | Op::Down | Op::Stopping)) && ev.admin.is_none();
            let (cause, check) = match (&ev.cause, &ev.via, &st.last_check) {
                (None, None, Some(c)) if check_before && checked && c.reason.is_some() => {
                    (Some(check_cause(c)), Some(c.clone()))
                }
                _ => (
                    ev.cause
                        .clone()
                        .or_else(|| ev.via.as_ref().map(|v| format!("via {v}"))),
                    ev.check.clone(),
                ),
            };
            if cause.is_some() {
                st.last_cause = cause.clone();
            }
            st.transitions += report as u64;
            // The n-th transition to `after` at this millisecond: read
            // again from a stored state (a log re-read), the same lines
            // give the same keys, whichever came before them.
            let same = match &mut st.same_ms {
                Some((t, to)) if *t == at => to,
                other => &mut other.insert((at, Vec::new())).1,
            };
            let nth = same.iter().filter(|&&l| l == after).count() as u32;
            same.push(after);
            if report {
                self.transitions.push(Transition {
                    at,
                    order: crate::time::untimed_order(at),
                    host: host.to_string(),
                    backend: ev.backend.clone(),
                    server: server.clone(),
                    from: before,
                    to: after,
                    cause,
                    pattern: ev.pattern.clone(),
                    check,
                    nth,
                });
            }
        }
        // Backend bookkeeping: counts as HAProxy reports them, and a server
        // coming UP ends a "no server available" period (HAProxy never logs
        // "backend recovered").
        let b = self
            .backends
            .entry((host.to_string(), ev.backend.clone()))
            .or_default();
        if ev.active.is_some() {
            b.active = ev.active;
            b.backups = ev.backups;
        }
        if after == Label::Up || after == Label::Drain {
            if let Some(p) = b.no_server.last_mut().filter(|p| p.end.is_none()) {
                p.end = Some(at);
            }
        }
    }

    /// The servers an event was applied to since `reader` last took them.
    pub fn take_touched(&mut self, reader: Reader) -> Vec<ServerKey> {
        let keys = self.touched.take(reader);
        for k in &keys {
            if let Some(st) = self.servers.get_mut(k) {
                st.touched &= !reader.bit();
            }
        }
        keys
    }

    /// Closes every open interval at `end`: call once, after the last event.
    pub fn finish(&mut self, end: Millis) {
        let window_start = self.window_start;
        for st in self.servers.values_mut() {
            if let Some(since) = st.since {
                st.add_time(st.label(), since, end, window_start);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::{classify, Message};
    use crate::patterns::PatternSet;

    fn ev(line: &str) -> HealthEvent {
        match classify(&PatternSet::builtin(), line.as_bytes()) {
            Message::Health(h) => *h,
            m => panic!("{m:?}"),
        }
    }

    const DOWN: &str = "Server be/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    const UP: &str = "Server be/s1 is UP, reason: Layer4 check passed, check duration: 0ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";

    #[test]
    fn down_then_up_counts_down_time() {
        let mut t = HealthTracker {
            window_start: Some(0),
            ..Default::default()
        };
        t.apply("", 10_000, &ev(DOWN), true);
        t.apply("", 25_000, &ev(UP), true);
        t.finish(30_000);
        let st = t.servers.values().next().unwrap();
        assert_eq!(st.time_in.get(&Label::Down), Some(&15_000));
        assert_eq!(st.time_in.get(&Label::Up), Some(&(10_000 + 5_000)));
        assert_eq!(t.transitions.len(), 2);
        assert_eq!(
            (t.transitions[0].from, t.transitions[0].to),
            (Label::Up, Label::Down)
        );
        assert_eq!(
            t.transitions[0].cause.as_deref(),
            Some("reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms")
        );
    }

    #[test]
    fn maintenance_and_no_server_period() {
        let mut t = HealthTracker {
            window_start: Some(0),
            ..Default::default()
        };
        t.apply("lb1", 1_000, &ev("Server be/s1 is going DOWN for maintenance. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."), true);
        t.apply(
            "lb1",
            1_000,
            &ev("backend be has no server available!"),
            true,
        );
        t.apply(
            "lb1",
            4_000,
            &ev("Server be/s1 is UP/READY (leaving forced maintenance)."),
            true,
        );
        t.finish(5_000);
        let st = t.servers.values().next().unwrap();
        assert_eq!(st.time_in.get(&Label::Maint), Some(&3_000));
        let b = &t.backends[&("lb1".to_string(), "be".to_string())];
        assert_eq!(b.no_server.len(), 1);
        assert_eq!(
            (b.no_server[0].start, b.no_server[0].end),
            (1_000, Some(4_000))
        );
    }

    /// A state stored by an earlier run goes on at a line within the
    /// reorder window before it (a late line: stale, as in one run), and
    /// gives way at an older one (an older log: its server starts afresh).
    #[test]
    fn a_stored_state_gives_way_only_to_a_line_older_than_the_window() {
        let mut stored = HealthTracker::default();
        stored.apply("", 100_000, &ev(UP), true);
        let states: Vec<_> = stored.servers.clone().into_iter().collect();
        for (at, stale, from) in [(99_000, 1, None), (50_000, 0, Some(Label::Up))] {
            let mut t = HealthTracker::default();
            t.seed(states.clone(), 2_000);
            t.apply("", at, &ev(DOWN), true);
            assert_eq!(t.stale, stale, "at {at}");
            assert_eq!(t.transitions.first().map(|x| x.from), from, "at {at}");
            // Met once: the next line is judged as in one run.
            t.apply("", at - 10_000, &ev(DOWN), true);
            assert_eq!(t.stale, stale + 1, "at {at}");
        }
    }

    #[test]
    fn check_progress_is_not_a_transition() {
        let mut t = HealthTracker::default();
        t.apply("", 1, &ev("Health check for server be/s1 failed, reason: Layer4 timeout, check duration: 2001ms, status: 1/2 UP."), true);
        assert!(t.transitions.is_empty());
        let st = t.servers.values().next().unwrap();
        assert_eq!(st.last_check.as_ref().unwrap().health, Some((1, 2)));
        // `1/2 UP`: the server is UP (failing, not yet DOWN), not UNKNOWN.
        assert_eq!(st.label(), Label::Up);
    }

    #[test]
    fn a_check_line_gives_the_state_without_swallowing_the_transition() {
        let down_check = "Health check for server be/s1 failed, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms, status: 0/2 DOWN.";
        let up_check = "Health check for server be/s1 succeeded, reason: Layer4 check passed, check duration: 0ms, status: 2/2 UP.";
        let short_down = "Server be/s1 is DOWN. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
        let short_up = "Server be/s1 is UP. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";
        // `option log-health-checks`: the edge's check line, then the state
        // line it leads to: one UP -> DOWN, as without the check line.
        let mut t = HealthTracker::default();
        t.apply("", 1_000, &ev(down_check), true);
        assert_eq!(t.servers.values().next().unwrap().label(), Label::Down);
        t.apply("", 1_000, &ev(short_down), true);
        t.apply("", 5_000, &ev(up_check), true);
        t.apply("", 5_000, &ev(short_up), true);
        let got: Vec<_> = t.transitions.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(got, [(Label::Up, Label::Down), (Label::Down, Label::Up)]);
        // A server whose checks only ever said `2/2 UP` is UP, with no
        // transition; its next state line is one.
        let mut t = HealthTracker::default();
        t.apply("", 1_000, &ev(up_check), true);
        t.apply(
            "",
            2_000,
            &ev(&up_check
                .replace("2/2 UP", "1/2 UP")
                .replace("succeeded", "failed")),
            true,
        );
        assert_eq!(t.servers.values().next().unwrap().label(), Label::Up);
        assert!(t.transitions.is_empty());
        t.apply("", 3_000, &ev(short_down), true);
        let got: Vec<_> = t.transitions.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(got, [(Label::Up, Label::Down)]);
    }

    /// The first line of a server that says what it was (`was DOWN and
    /// now enters maintenance`, HAProxy's words for a DOWN server put in
    /// maintenance, by the CLI, DNS or a reload's server-state file) tells
    /// the state before too: DOWN -> MAINT, not UNKNOWN -> MAINT.
    #[test]
    fn was_down_and_now_enters_maintenance_is_a_transition_from_down() {
        let mut t = HealthTracker::default();
        t.apply(
            "",
            1_000,
            &ev("Server be/s1 was DOWN and now enters maintenance (changed from server-state after a reload)."),
            true,
        );
        let got: Vec<_> = t.transitions.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(got, [(Label::Down, Label::Maint)]);
    }

    /// A server's first line saying it stays in maintenance (`remains in
    /// forced maintenance`, `... but remains in maintenance`) tells no
    /// change: MAINT, with no transition into it.
    #[test]
    fn remains_in_maintenance_is_no_transition() {
        for line in [
            "Backup Server be/s1 remains in forced maintenance.",
            "Server be/s1 is leaving forced maintenance but remains in maintenance via be/a.",
            "Server be/s1 ('s1.example.com') resolves again but remains in maintenance.",
        ] {
            let mut t = HealthTracker::default();
            t.apply("", 1_000, &ev(line), true);
            assert!(t.transitions.is_empty(), "{line}: {:?}", t.transitions);
            assert_eq!(
                t.servers.values().next().unwrap().label(),
                Label::Maint,
                "{line}"
            );
        }
    }

    /// A SIGHUP dump (`SIGHUP: Server be/s1 is UP. Conn: ...`) says, at one
    /// moment, whether each server is stopped: it seeds a server no line
    /// told yet, agrees with what HAProxy shows as running or stopped (DRAIN
    /// and STOPPING run, MAINT is stopped), and records a transition where
    /// it contradicts the log (the line that told the change was lost).
    #[test]
    fn a_sighup_dump_seeds_and_tells_what_the_log_lost() {
        let dump = |srv: &str, state: &str| {
            ev(&format!(
                "SIGHUP: Server be/{srv} is {state}. Conn: 0 act, 0 pend, 12 tot."
            ))
        };
        let mut t = HealthTracker {
            window_start: Some(0),
            ..Default::default()
        };
        // Seeded, no transition, as of the dump: nothing said what the
        // state was before.
        t.apply("", 1_000, &dump("s9", "UP"), true);
        t.apply("", 1_000, &dump("s8", "DOWN"), true);
        let label = |t: &HealthTracker, s: &str| {
            t.servers
                .iter()
                .find(|(k, _)| k.server == s)
                .map(|(_, st)| st.label())
        };
        assert_eq!(label(&t, "s9"), Some(Label::Up));
        assert_eq!(label(&t, "s8"), Some(Label::Down));
        assert!(t.transitions.is_empty(), "{:?}", t.transitions);
        // DOWN told, its UP lost: the dump's UP is the transition.
        t.apply("", 2_000, &ev(DOWN), true);
        t.apply("", 9_000, &dump("s1", "UP"), true);
        let got: Vec<_> = t.transitions.iter().map(|t| (t.from, t.to, t.at)).collect();
        assert_eq!(
            got,
            [
                (Label::Up, Label::Down, 2_000),
                (Label::Down, Label::Up, 9_000)
            ]
        );
        let last = t.transitions.last().unwrap();
        assert_eq!(last.pattern, "sighup_server");
        assert!(
            last.cause.as_deref().unwrap().contains("SIGHUP"),
            "{last:?}"
        );
        assert_eq!(t.reconciled, 1);
        // What the dump shows as the same: no transition.
        let drain = "Server be/s2 enters drain state. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";
        let maint = "Server be/s3 is going DOWN for maintenance. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
        let stopping = "Server be/s4 is stopping, reason: Layer7 check passed, code: 200, info: \"OK\", check duration: 1ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
        for line in [drain, maint, stopping] {
            t.apply("", 10_000, &ev(line), true);
        }
        let n = t.transitions.len();
        t.apply("", 11_000, &dump("s2", "UP"), true);
        t.apply("", 11_000, &dump("s3", "DOWN"), true);
        t.apply("", 11_000, &dump("s4", "UP"), true);
        t.apply("", 11_000, &dump("s1", "UP"), true);
        assert_eq!(t.transitions.len(), n, "{:?}", &t.transitions[n..]);
        // MAINT shown running: it left maintenance unlogged.
        t.apply("", 12_000, &dump("s3", "UP"), true);
        assert_eq!(label(&t, "s3"), Some(Label::Up));
        // A dump older than the last state line applied changes nothing.
        t.apply("", 13_000, &ev(DOWN), true);
        t.apply("", 12_500, &dump("s1", "UP"), true);
        assert_eq!(label(&t, "s1"), Some(Label::Down));
        // The proxy's own line: no server available opens the period.
        t.apply(
            "",
            14_000,
            &ev("SIGHUP: Proxy be has no server available ! Conn: act(FE+BE): 0+0, 0 pend (0 unass), tot(FE+BE): 0+3."),
            true,
        );
        let b = &t.backends[&(String::new(), "be".to_string())];
        assert_eq!((b.no_server.len(), b.no_server[0].start), (1, 14_000));
        // s8, seeded DOWN at 1 s: down from then, not from the window's start.
        t.finish(20_000);
        let s8 = t.servers.iter().find(|(k, _)| k.server == "s8").unwrap().1;
        assert_eq!(s8.time_in.get(&Label::Down), Some(&19_000));
    }
}
