//! The one place that drives engine -> alerts -> store, for `analyze` and
//! `listen` alike.
//!
//! The engine turns lines into state and per-minute rollups and records
//! what health did as [`StateEvent`]s; it knows nothing of alerts or
//! storage. [`Pipeline`] hands those events to the alert rules in their
//! order, closes minutes (degradation rules judge them, flapping windows
//! end on event time), and commits: rollups, transitions, states and alert
//! events in one transaction, announced only after it (or, while the
//! database refuses commits, announced without waiting: see
//! [`Writer::announce_unstored`]).
//!
//! Invariant: every minute and every alert event goes through
//! [`Pipeline::close_minutes`] and [`Pipeline::commit`]; no other code
//! judges minutes or moves alert events to the store.

use std::time::Duration;

use crate::alerts::Evaluator;
use crate::engine::rollup::Rollup;
use crate::engine::{Clock, Engine, PendingHealth};
use crate::haproxy::{Admin, Op};
use crate::model::Alert;
use crate::store::{StoreError, Writer};
use crate::time::Millis;

pub struct Pipeline {
    pub engine: Engine,
    /// The alert rules (`--alerts`, `listen`).
    pub alerts: Option<Evaluator>,
    /// The database (`--db`, `listen`).
    pub writer: Option<Writer>,
    /// Keep every alert event for the report (`analyze`); live they leave
    /// with each commit.
    pub keep_alerts: bool,
    /// Alert events taken from the rules, in order (when kept).
    alert_log: Vec<Alert>,
    /// Live: wall time of silence beyond the idle grace, added to the last
    /// event time so that minutes and flapping windows still close when
    /// traffic stops.
    pub idle: Duration,
    /// The last commit at the end of the input (`analyze`): every open
    /// minute is judged. Never live: a receiver stopping leaves its open
    /// minutes to the next run.
    pub closing: bool,
    /// Live: what the reorder window holds is stored with each commit
    /// that changes it, and put back at a restart: a followed file's
    /// checkpoint then covers every line read, held or applied.
    pub persist_held: bool,
    /// `analyze`: the event time up to which the minutes handed to
    /// [`Pipeline::close_minutes`] are whole (the newest request of the
    /// epochs closed so far). The rules judge minutes, and event time ends
    /// flapping windows and hosts' silence, up to it, not up to the newest
    /// line applied: the ordering thread applies chunks of later epochs
    /// before the earlier ones' minutes arrive, and a minute judged on its
    /// first part would drop the rest as late (a host not heard from for
    /// those minutes would be called silent). `None` (live, and at the end
    /// of the input): the minutes are whole up to now.
    pub minutes_whole_to: Option<Millis>,
    /// The window's [`Reorder::version`] last handed to the writer.
    ///
    /// [`Reorder::version`]: crate::engine::order::Reorder::version
    held_saved: Option<(u64, u64)>,
}

impl Pipeline {
    pub fn new(mut engine: Engine, alerts: Option<Evaluator>, writer: Option<Writer>) -> Pipeline {
        engine.observe = alerts.is_some();
        // Check lines are kept for a store (timelines read them), not
        // for a report.
        engine.health.keep_checks = writer.is_some();
        Pipeline {
            engine,
            alerts,
            writer,
            keep_alerts: false,
            alert_log: Vec::new(),
            idle: Duration::ZERO,
            closing: false,
            persist_held: false,
            minutes_whole_to: None,
            held_saved: None,
        }
    }

    /// Carries the rules on from what the database holds: the alerts that
    /// were firing (they stay firing, unannounced), flapping windows,
    /// degradation conditions and the minutes they read.
    pub fn restore_alerts(&mut self) -> Result<(), StoreError> {
        let (Some(a), Some(w)) = (self.alerts.as_mut(), self.writer.as_mut()) else {
            return Ok(());
        };
        let store = w.store()?;
        a.restore(store.firing_alerts()?);
        if let Some(json) = store.rules_state()? {
            // A state this version cannot read is started afresh: the
            // firing alerts above are what matters most.
            if let Ok(state) = serde_json::from_str::<crate::alerts::EvaluatorState>(&json) {
                let filter = crate::engine::Filter {
                    since: Some(state.minutes_from()),
                    ..Default::default()
                };
                let minutes = store.rollups(&filter)?;
                a.restore_state(state, minutes);
            }
        }
        Ok(())
    }

    /// Live, at start: the lines the reorder window held at the last
    /// commit go back into it, before anything new is read.
    pub fn restore_held(&mut self, clock: &mut Clock) -> Result<usize, StoreError> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(0);
        };
        let lines = w.store()?.held_lines()?;
        for line in &lines {
            self.ingest_line_now(line, clock);
        }
        Ok(lines.len())
    }

    /// Hands what health did to the rules, in the order it happened.
    fn drain(&mut self) {
        match self.alerts.as_mut() {
            Some(a) => {
                for e in self.engine.events.drain(..) {
                    a.on_state(&e);
                }
            }
            None => self.engine.events.clear(),
        }
    }

    /// The sequential path (live): one line, timed and applied.
    pub fn ingest_line_now(&mut self, line: &[u8], clock: &mut Clock) {
        self.engine.ingest_line_now(line, clock);
        self.drain();
    }

    /// A timed health event into the reorder window (see
    /// [`Engine::submit_health`]).
    pub fn submit_health(&mut self, at: Millis, p: PendingHealth) {
        self.engine.submit_health(at, p);
        self.drain();
    }

    /// The lines read since the last call measure their hosts' clocks (see
    /// [`crate::engine::clocks`]); the fleet rules judge silence with them.
    pub fn fold_arrivals(
        &mut self,
        extra: Option<(Vec<crate::engine::clocks::Slot>, Option<Millis>)>,
    ) {
        let changed = self.engine.fold_arrivals(extra);
        if let Some(a) = self.alerts.as_mut() {
            for (host, offset) in changed {
                a.clock_offset(host, offset);
            }
        }
    }

    /// Event time has come to `t` (request lines).
    pub fn advance(&mut self, t: Millis) {
        self.engine.advance(t);
        self.drain();
    }

    /// Live: what has waited `wait` of wall time leaves the reorder window.
    pub fn release_waited(&mut self, wait: Duration) {
        self.engine.release_waited(wait);
        self.drain();
    }

    /// Live: the runtime API's states of a host's servers, read at `at`
    /// (see [`Engine::reconcile`]); each `(backend, server, op, admin,
    /// since)`. Returns the transitions recorded.
    pub fn reconcile(
        &mut self,
        host: &str,
        at: Millis,
        servers: impl IntoIterator<Item = (String, String, Op, Admin, Option<Millis>)>,
    ) -> usize {
        let mut n = 0;
        for (backend, server, op, admin, since) in servers {
            n += self
                .engine
                .reconcile(host, at, &backend, &server, op, admin, since) as usize;
        }
        self.drain();
        n
    }

    /// Everything held in the reorder window is applied.
    pub fn release_all(&mut self) {
        self.engine.release_all();
        self.drain();
    }

    /// Closes the window at the end of the input.
    pub fn finish(&mut self) {
        self.engine.finish();
        self.drain();
    }

    /// Event time as the rules see it: the newest time read, carried on by
    /// the wall clock after the idle grace (live).
    fn now(&self) -> Option<Millis> {
        self.engine
            .last
            .map(|t| t + self.idle.as_millis() as Millis)
    }

    /// Minutes that left the engine (or analyze's workers): the rules judge
    /// those that are over, flapping windows end on event time, and the
    /// writer takes the minutes to store.
    pub fn close_minutes(&mut self, mut rollups: Vec<Rollup>) {
        let now = self.now();
        if let Some(a) = self.alerts.as_mut() {
            // In time order: the rules close minutes as they go (several
            // workers' pieces come one worker after the other).
            rollups.sort_by_key(|r| r.minute);
            let whole_to = match self.minutes_whole_to {
                Some(whole) => now.map(|t| t.min(whole)),
                None => now,
            };
            a.on_minutes(
                &rollups,
                if self.closing {
                    Some(Millis::MAX)
                } else {
                    whole_to
                },
            );
            // Flapping windows end on event time, never at "the end"; hosts
            // fall silent only once the minutes that heard them are in.
            if let Some(t) = whole_to {
                a.advance(t);
            }
        }
        if let Some(w) = self.writer.as_mut() {
            w.add_rollups(rollups);
        }
    }

    /// Whether alert events wait for a commit (live commits them at once).
    pub fn alerting(&self) -> bool {
        self.alerts.as_ref().is_some_and(|a| !a.out.is_empty())
    }

    /// Moves the rules' new alert events to the writer (and to the report's
    /// log when kept).
    fn take_alerts(&mut self) {
        let Some(a) = self.alerts.as_mut() else {
            return;
        };
        let out = std::mem::take(&mut a.out);
        if self.keep_alerts {
            self.alert_log.extend(out.iter().cloned());
        }
        if let Some(w) = self.writer.as_mut() {
            w.add_alerts(out);
        }
    }

    /// Closes the engine's own minutes and writes everything new since the
    /// last commit in one transaction. Without a database, the minutes are
    /// still judged.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        let fresh = self.engine.aggregates.drain_minutes();
        self.close_minutes(fresh);
        let alerting = self.alerting();
        self.take_alerts();
        // The rules' state goes with the commit that stores what changed
        // it (a stop at any line, even SIGKILL, restores it as it was).
        if let (Some(a), Some(w)) = (self.alerts.as_mut(), self.writer.as_mut()) {
            if a.take_changed() || alerting || self.closing {
                w.set_rules_state(serde_json::to_string(&a.state()).expect("serializes"));
            }
        }
        if let (true, Some(w)) = (self.persist_held, self.writer.as_mut()) {
            let version = self.engine.order.version();
            if self.held_saved != Some(version) {
                w.set_held(
                    self.engine
                        .held_lines()
                        .into_iter()
                        .map(<[u8]>::to_vec)
                        .collect(),
                );
                self.held_saved = Some(version);
            }
        }
        match self.writer.as_mut() {
            Some(w) => w.commit(&mut self.engine),
            None => Ok(()),
        }
    }

    /// Every alert event of the run, in order (`keep_alerts`).
    pub fn alert_events(&mut self) -> Vec<Alert> {
        self.take_alerts();
        self.alert_log.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::order::Reorder;
    use crate::engine::Filter;
    use crate::patterns::PatternSet;
    use crate::time::YearResolver;

    const DOWN: &str = "<129>Nov 24 19:00:10 lb1 haproxy[1]: Server be_app/srv1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    const UP: &str = "<133>Nov 24 19:00:12 lb1 haproxy[1]: Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";
    const MAINT: &str = "<133>Nov 24 19:00:09 lb1 haproxy[1]: Server be_app/srv1 is going DOWN for maintenance. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";

    /// A live pipeline with a 2 s reorder window and the built-in rules.
    fn live(preview: bool) -> (Pipeline, Clock) {
        let mut e = Engine::new(Arc::new(PatternSet::builtin()), Filter::default());
        e.order = Reorder::new(2_000);
        e.preview = preview;
        let p = Pipeline::new(e, Some(Evaluator::new(Default::default())), None);
        (p, Clock::new(YearResolver::new(2026, Some((11, 25)))))
    }

    fn taken(e: &mut Pipeline) -> Vec<String> {
        let out = std::mem::take(&mut e.alerts.as_mut().unwrap().out);
        out.iter()
            .map(|a| {
                let t = |m: Millis| crate::time::format_rfc3339_ms(m)[11..19].to_string();
                format!(
                    "{} {} {:?} {} {:?}",
                    a.rule,
                    a.severity.as_str(),
                    a.status,
                    t(a.starts_at),
                    a.ends_at.map(t)
                )
            })
            .collect()
    }

    fn all_in_order(lines: &[&str]) -> Vec<String> {
        let (mut e, mut clock) = live(false);
        for l in lines {
            e.ingest_line_now(l.as_bytes(), &mut clock);
        }
        e.release_all();
        taken(&mut e)
    }

    /// `analyze` before its first epoch closes: no minute is whole
    /// (`minutes_whole_to` is `Millis::MIN`), and a commit then (one is
    /// due every `--commit-every`) judged a host heard by its health lines
    /// as silent: `MIN - last` wrapped around to a gap of 290 million
    /// years. Under load, 14 runs in 25 of the restart test stored a
    /// `haproxy_host_silent` firing two minutes after a health line, then
    /// resolved by the first minute of the log.
    #[test]
    fn a_commit_before_any_minute_is_whole_finds_no_host_silent() {
        let (mut p, mut clock) = live(false);
        p.keep_alerts = true;
        p.minutes_whole_to = Some(Millis::MIN);
        p.ingest_line_now(DOWN.as_bytes(), &mut clock);
        p.release_all();
        p.commit().unwrap();
        let rules: Vec<String> = p.alert_events().into_iter().map(|a| a.rule).collect();
        assert_eq!(rules, ["haproxy_backend_server_status"]);
    }

    #[test]
    fn a_down_line_is_announced_before_the_reorder_window_lets_it_in() {
        let (mut e, mut clock) = live(true);
        e.ingest_line_now(DOWN.as_bytes(), &mut clock);
        assert_eq!(e.engine.order.len(), 1, "still held by the window");
        let early = taken(&mut e);
        assert_eq!(early, all_in_order(&[DOWN]));
        assert_eq!(early.len(), 1);
        // The window lets it in: the same alert is not announced again.
        e.release_all();
        assert_eq!(taken(&mut e), Vec::<String>::new());
        let a = e.alerts.as_ref().unwrap();
        assert_eq!((a.previews, a.previews_unconfirmed), (1, 0));
        assert_eq!(a.firing.len(), 1, "the ordered path holds it firing");
    }

    #[test]
    fn overtaken_lines_announce_what_the_ordered_path_will_find() {
        // UP (19:00:12) overtakes the DOWN (19:00:10) it ends.
        let (mut e, mut clock) = live(true);
        e.ingest_line_now(UP.as_bytes(), &mut clock);
        e.ingest_line_now(DOWN.as_bytes(), &mut clock);
        let mut early = taken(&mut e);
        e.release_all();
        assert_eq!(taken(&mut e), Vec::<String>::new(), "announced twice");
        let mut ordered = all_in_order(&[DOWN, UP]);
        early.sort();
        ordered.sort();
        assert_eq!(early, ordered);
        assert_eq!(ordered.len(), 2, "firing at 10 s, resolved at 12 s");
    }

    #[test]
    fn an_announcement_a_later_arrival_contradicts_is_withdrawn() {
        // DOWN at 10 s is announced; then the line saying the server went
        // into maintenance at 9 s arrives: in event-time order the DOWN is
        // no page (a server in MAINT), so the page is withdrawn.
        let (mut e, mut clock) = live(true);
        e.ingest_line_now(DOWN.as_bytes(), &mut clock);
        e.ingest_line_now(MAINT.as_bytes(), &mut clock);
        e.release_all();
        assert_eq!(
            taken(&mut e),
            vec![
                "haproxy_backend_server_status critical Firing 19:00:10 None",
                "haproxy_backend_server_status info Firing 19:00:09 None",
                "haproxy_backend_server_status critical Resolved 19:00:10 Some(\"19:00:10\")",
            ]
        );
        // In event-time order there is no page at all.
        assert_eq!(
            all_in_order(&[MAINT, DOWN]),
            vec!["haproxy_backend_server_status info Firing 19:00:09 None"]
        );
        let a = e.alerts.as_ref().unwrap();
        assert_eq!(a.previews_unconfirmed, 1);
        assert_eq!(a.firing.len(), 1);
    }

    /// UP at 19:00:20, then a DOWN stamped 19:00:10 that arrives after the
    /// window let the UP in: it does not overturn the newer state, so no
    /// page fires and what the database keeps (the newest line) is what the
    /// live state says.
    #[test]
    fn a_state_line_older_than_the_state_does_not_overturn_it() {
        let down_at = |t: &str| DOWN.replace("19:00:10", t);
        let up_at = |t: &str| UP.replace("19:00:12", t);
        let (mut e, mut clock) = live(false);
        e.engine.order = Reorder::new(0);
        for l in [down_at("19:00:00"), up_at("19:00:20"), down_at("19:00:10")] {
            e.ingest_line_now(l.as_bytes(), &mut clock);
        }
        e.release_all();
        let st = e.engine.health.servers.values().next().unwrap();
        assert_eq!(st.label().as_str(), "UP");
        assert_eq!(e.engine.health.stale, 1);
        assert_eq!(e.engine.health.transitions.len(), 2, "DOWN, then UP");
        assert_eq!(
            taken(&mut e),
            vec![
                "haproxy_backend_server_status critical Firing 19:00:00 None",
                "haproxy_backend_server_status critical Resolved 19:00:00 Some(\"19:00:20\")",
            ]
        );
        assert!(e.alerts.as_ref().unwrap().firing.is_empty());
    }
}
