//! Batched writing: what the engine produced since the last commit, with the
//! file positions it was read from, in one transaction every `interval`.
//!
//! `analyze --db` commits about once a second, so a long run keeps its
//! rollups out of memory and a killed run keeps what it committed; `listen`
//! commits every 100 ms. Rollups leave the engine at each commit and wait
//! here until one succeeds: a failing disk costs memory, not data, and the
//! caller can say what was not stored.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::engine::rollup::{Minute, Rollup, MINUTE_MS};
use crate::engine::Reader;
use crate::engine::{Engine, ServerKey};
use crate::time::Millis;

use super::minutes::{add_to_backend, BackendMinutes};
use super::{Batch, Changed, Store, StoreError};

/// How far a file was read, by its path as given to `--db` runs
/// (canonical), device and inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    /// A journal source: the cursor of its last entry (`path` is the
    /// source's name, the numbers 0).
    pub cursor: Option<String>,
    /// A compressed file or a journal export: how many bytes of what it
    /// decodes to were read (`offset` is then the file's size once it was
    /// read to its end, 0 before).
    pub decoded: Option<u64>,
    /// The text the file opens with (see [`super::Head`]).
    pub head: Option<super::Head>,
}

/// The database, or the thread still creating it (see [`Writer::opening`]).
enum Slot {
    Ready(Store),
    Opening(
        std::path::PathBuf,
        std::thread::JoinHandle<Result<Store, StoreError>>,
    ),
    Failed(std::path::PathBuf, String),
}

/// Joins the opening thread on first use.
fn ready(slot: &mut Slot) -> Result<&mut Store, StoreError> {
    if let Slot::Opening(..) = slot {
        let taken = std::mem::replace(slot, Slot::Failed(Default::default(), String::new()));
        let Slot::Opening(path, open) = taken else {
            unreachable!("matched above")
        };
        let opened = open.join().unwrap_or_else(|_| {
            let panicked = std::io::Error::other("the thread creating it panicked");
            Err(StoreError::Io(path.clone(), panicked))
        });
        match opened {
            Ok(s) => *slot = Slot::Ready(s),
            Err(e) => {
                *slot = Slot::Failed(path, e.to_string());
                return Err(e);
            }
        }
    }
    match slot {
        Slot::Ready(s) => Ok(s),
        Slot::Failed(path, msg) => Err(StoreError::Io(
            path.clone(),
            std::io::Error::other(msg.clone()),
        )),
        Slot::Opening(..) => unreachable!("joined above"),
    }
}

pub struct Writer {
    store: Slot,
    /// Commit when this much wall time has passed since the last commit.
    pub interval: Duration,
    /// ... or when this many rollups are waiting.
    pub max_pending: usize,
    /// Keep written transitions in the engine (analyze reports them);
    /// otherwise they are dropped once stored (listen runs for months).
    pub keep_transitions: bool,
    /// Transitions of the engine already written (when kept).
    written: usize,
    /// Minutes waiting, merged by server and minute: worker threads send a
    /// piece of the same minute with every chunk, and one merged row is far
    /// cheaper to write than many (each is read, merged and written back).
    pending: FxHashMap<(ServerKey, Millis), Minute>,
    /// The backend minutes of the sealed minutes in `pending`, added up as
    /// each was sealed (its histograms still decoded): adding them up at
    /// the commit decoded every one again, most of the last commit's time
    /// (18 ms of 30-50 for a 2M-line file).
    sealed_backends: BackendMinutes,
    marks: BTreeMap<String, Checkpoint>,
    /// Alert events waiting for the next commit.
    alerts: Vec<crate::model::Alert>,
    /// The alert rules' state, written with the next commit.
    rules_state: Option<String>,
    /// What the reorder window holds, written with the next commit.
    held: Option<Vec<Vec<u8>>>,
    /// How many of them were announced while the database was failing
    /// (see [`Writer::announce_unstored`]).
    announced: usize,
    /// Remote sinks (names): the outbox gets a row per alert and sink.
    pub sinks: Vec<(String, crate::model::Severity)>,
    /// Alert events the last successful commit stored: what sinks deliver.
    pub committed_alerts: Vec<crate::model::Alert>,
    last: Instant,
    pub commits: u64,
    /// Transitions that were new to the database.
    pub new_transitions: usize,
    /// Time the last commit took.
    pub last_latency: Duration,
    /// What each stored row was written from, to write only the rows that
    /// changed: per server (health events seen, state since), per server
    /// (last request), per backend.
    rows: RowVersions,
}

/// The versions of the rows a writer stored last.
#[derive(Default)]
struct RowVersions {
    /// `Engine::generation` at the last successful commit: unchanged, no
    /// row can have changed (an idle receiver's commits cost nothing).
    generation: Option<u64>,
    health: FxHashMap<ServerKey, (u64, Option<Millis>)>,
    requests: FxHashMap<ServerKey, Option<Millis>>,
    backends: FxHashMap<(String, String), BackendVersion>,
    /// Servers touched since a commit that has not succeeded yet: looked
    /// at again until one does.
    unsettled: rustc_hash::FxHashSet<ServerKey>,
}

type BackendVersion = (Option<u32>, Option<u32>, usize, Option<Millis>);

impl RowVersions {
    /// The rows that differ from what was stored, with their new versions.
    /// The first commit looks at every server (states loaded at start
    /// included); later ones only at the servers the engine touched since
    /// (and those of a commit that failed): a commit costs what changed,
    /// not what exists.
    fn changed(&mut self, engine: &mut Engine) -> (Changed, Versions) {
        let mut c = Changed::default();
        let mut v = Versions {
            generation: Some(engine.generation),
            ..Default::default()
        };
        if self.generation == v.generation {
            return (c, v);
        }
        let first = self.generation.is_none();
        let touched_health = engine.health.take_touched(Reader::Store);
        let touched_requests = engine.aggregates.take_touched(Reader::Store);
        if first {
            self.unsettled.extend(engine.health.servers.keys().cloned());
            self.unsettled
                .extend(engine.aggregates.servers.iter().map(|(k, _)| k.clone()));
        } else {
            self.unsettled.extend(touched_health);
            let servers = &engine.aggregates.servers;
            self.unsettled
                .extend(touched_requests.into_iter().map(|i| servers[i].0.clone()));
        }
        for k in &self.unsettled {
            let health = engine.health.servers.get(k).map(|st| (st.events, st.since));
            let request = engine.aggregates.find(k).map(|s| s.last);
            let mut differs = false;
            if let Some(now) = health {
                if self.health.get(k) != Some(&now) {
                    differs = true;
                    v.health.push((k.clone(), now));
                }
            }
            if let Some(last) = request {
                if self.requests.get(k) != Some(&last) {
                    differs = true;
                    v.requests.push((k.clone(), last));
                }
            }
            if differs {
                c.servers.push(k.clone());
            }
        }
        for (k, b) in &engine.health.backends {
            let now = (
                b.active,
                b.backups,
                b.no_server.len(),
                b.no_server.last().and_then(|p| p.end),
            );
            if self.backends.get(k) != Some(&now) {
                c.backends.push(k.clone());
                v.backends.push((k.clone(), now));
            }
        }
        (c, v)
    }

    /// A commit stored them.
    fn stored(&mut self, v: Versions) {
        self.unsettled.clear();
        self.health.extend(v.health);
        self.requests.extend(v.requests);
        self.backends.extend(v.backends);
        self.generation = v.generation;
    }
}

/// New row versions, applied once their commit succeeds.
#[derive(Default)]
struct Versions {
    generation: Option<u64>,
    health: Vec<(ServerKey, (u64, Option<Millis>))>,
    requests: Vec<(ServerKey, Option<Millis>)>,
    backends: Vec<((String, String), BackendVersion)>,
}

impl Writer {
    pub fn new(store: Store, interval: Duration) -> Writer {
        Self::with(Slot::Ready(store), interval)
    }

    /// A writer whose database a thread is still creating: a new database's
    /// schema costs milliseconds that the first commit need not wait for
    /// (analyze starts reading meanwhile). An error comes out of the first
    /// use.
    pub fn opening(
        path: std::path::PathBuf,
        open: std::thread::JoinHandle<Result<Store, StoreError>>,
        interval: Duration,
    ) -> Writer {
        Self::with(Slot::Opening(path, open), interval)
    }

    /// The database, once open.
    pub fn store(&mut self) -> Result<&mut Store, StoreError> {
        ready(&mut self.store)
    }

    fn with(store: Slot, interval: Duration) -> Writer {
        Writer {
            store,
            interval,
            max_pending: 10_000,
            keep_transitions: true,
            written: 0,
            pending: FxHashMap::default(),
            sealed_backends: BackendMinutes::new(),
            announced: 0,
            marks: BTreeMap::new(),
            alerts: Vec::new(),
            rules_state: None,
            held: None,
            committed_alerts: Vec::new(),
            sinks: Vec::new(),
            last: Instant::now(),
            commits: 0,
            new_transitions: 0,
            last_latency: Duration::ZERO,
            rows: RowVersions::default(),
        }
    }

    /// Minutes recorded elsewhere (analyze's worker threads).
    pub fn add_rollups(&mut self, rollups: Vec<Rollup>) {
        let Some(newest) = rollups.iter().map(|r| r.minute).max() else {
            return;
        };
        for r in rollups {
            match self.pending.entry((r.key, r.minute)) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    if e.get().is_sealed() {
                        // Its backend's minute counts it already: the
                        // piece too, and the minute stays sealed.
                        add_to_backend(&mut self.sealed_backends, &e.key().0, r.minute, &r.data);
                        e.get_mut().merge(&r.data);
                        e.get_mut().seal();
                    } else {
                        e.get_mut().merge(&r.data);
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    // Sealed by its worker (a server's minutes far apart: a
                    // sparse log): no later step adds it to its backend.
                    if r.data.is_sealed() {
                        add_to_backend(&mut self.sealed_backends, &e.key().0, r.minute, &r.data);
                    }
                    e.insert(r.data);
                }
            }
        }
        // Minutes two minutes older than the newest are done but for
        // requests logged minutes late: their histograms wait encoded (a
        // late piece still merges, at the cost of a decode), added to their
        // backend's minute first.
        let old = |minute: Millis| minute + 2 * MINUTE_MS <= newest;
        for ((key, minute), m) in self.pending.iter_mut() {
            if old(*minute) && !m.is_sealed() {
                add_to_backend(&mut self.sealed_backends, key, *minute, m);
                m.seal();
            }
        }
        for ((_, _, minute), (m, _)) in self.sealed_backends.iter_mut() {
            if old(*minute) {
                m.seal();
            }
        }
    }

    /// Alert events to store with the next commit (one outbox row per
    /// remote sink that wants each).
    pub fn add_alerts(&mut self, alerts: Vec<crate::model::Alert>) {
        self.alerts.extend(alerts);
    }

    /// The alert rules' state to store with the next commit (JSON).
    pub fn set_rules_state(&mut self, state: String) {
        self.rules_state = Some(state);
    }

    /// The lines the reorder window holds, to store with the next commit
    /// (in place of those stored).
    pub fn set_held(&mut self, lines: Vec<Vec<u8>>) {
        self.held = Some(lines);
    }

    /// Records that a file has been read (and its lines given to the
    /// engine) up to a position; written with the next commit.
    pub fn mark(&mut self, c: Checkpoint) {
        self.marks.insert(c.path.clone(), c);
    }

    /// Server-minutes waiting for a commit.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn due(&self) -> bool {
        self.last.elapsed() >= self.interval || self.pending.len() >= self.max_pending
    }

    /// Rollups, transitions and alert events waiting for a successful
    /// commit.
    pub fn unwritten(&self, engine: &Engine) -> (usize, usize, usize) {
        (
            self.pending.len(),
            engine.health.transitions.len() - self.written,
            self.alerts.len(),
        )
    }

    /// While commits fail, pages must not wait for the database: the alert
    /// events not announced yet, once each. They are still stored (and
    /// queued for remote sinks) when a commit succeeds, and not announced
    /// again then.
    pub fn announce_unstored(&mut self) -> &[crate::model::Alert] {
        let from = self.announced;
        self.announced = self.alerts.len();
        &self.alerts[from..]
    }

    /// Writes everything added since the last commit, with the engine's
    /// new transitions and current states, in one transaction.
    pub fn commit(&mut self, engine: &mut Engine) -> Result<(), StoreError> {
        let started = Instant::now();
        self.last = started;
        let checkpoints: Vec<Checkpoint> = self.marks.values().cloned().collect();
        let rollups: Vec<Rollup> = self
            .pending
            .drain()
            .map(|((key, minute), data)| Rollup { key, minute, data })
            .collect();
        // The sealed minutes' backends are added up already; the others'
        // are added to a copy (a failed commit puts the minutes back as
        // they were, and must not leave them counted).
        let mut backend_minutes = self.sealed_backends.clone();
        for r in rollups.iter().filter(|r| !r.data.is_sealed()) {
            add_to_backend(&mut backend_minutes, &r.key, r.minute, &r.data);
        }
        let skewed = std::mem::take(&mut engine.skewed);
        let (changed, versions) = self.rows.changed(&mut *engine);
        let stored = ready(&mut self.store).and_then(|s| {
            s.persist(&Batch {
                engine,
                transitions: &engine.health.transitions[self.written..],
                checks: &engine.health.checks,
                process: &engine.health.process,
                rollups: &rollups,
                backend_minutes: &backend_minutes,
                checkpoints: &checkpoints,
                alerts: &self.alerts,
                sinks: &self.sinks,
                rules_state: self.rules_state.as_deref(),
                held: self.held.as_deref(),
                skewed: &skewed,
                changed: &changed,
            })
        });
        let new = match stored {
            Ok(n) => n,
            Err(e) => {
                // Nothing is lost: the minutes wait for the next commit
                // (the transaction rolled back, so none was merged).
                for r in rollups {
                    self.pending.insert((r.key, r.minute), r.data);
                }
                engine.skewed = skewed;
                return Err(e);
            }
        };
        self.rows.stored(versions);
        self.sealed_backends.clear();
        // A sparse log's epoch can bring tens of thousands of minutes: the
        // map does not keep that room between commits.
        self.pending.shrink_to(self.max_pending);
        // Announced while the database was failing: not again.
        let mut alerts = std::mem::take(&mut self.alerts);
        self.committed_alerts = alerts.split_off(self.announced.min(alerts.len()));
        self.announced = 0;
        self.rules_state = None;
        self.held = None;
        self.marks.clear();
        self.new_transitions += new;
        engine.health.checks.clear();
        engine.health.process.clear();
        engine.clocks.stored();
        if self.keep_transitions {
            self.written = engine.health.transitions.len();
        } else {
            engine.health.transitions.clear();
        }
        self.commits += 1;
        self.last_latency = started.elapsed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Filter;

    fn piece(minute: &str, tr: i32) -> Rollup {
        crate::store::minutes::tests::piece("be", "s1", minute, tr, 200)
    }

    #[test]
    fn a_piece_arriving_after_its_minute_was_sealed_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::new(
            Store::open(&dir.path().join("h.db")).unwrap(),
            Duration::from_secs(60),
        );
        w.add_rollups(vec![piece("10:00", 7), piece("10:05", 9)]);
        // 10:00 is sealed now (two minutes older than 10:05); a request
        // logged minutes late still belongs to it.
        assert!(w.pending.values().any(|m| m.is_sealed()));
        w.add_rollups(vec![piece("10:00", 800), piece("10:05", 9)]);
        w.commit(&mut Engine::new(
            std::sync::Arc::new(crate::patterns::PatternSet::builtin()),
            Filter::default(),
        ))
        .unwrap();
        let stored = w.store().unwrap().rollups(&Filter::default()).unwrap();
        let ten = stored
            .iter()
            .find(|r| r.minute == piece("10:00", 0).minute)
            .unwrap();
        assert_eq!(ten.data.counts.requests, 2);
        let tr = ten.data.timer(1).unwrap().hist().into_owned();
        assert_eq!(tr.len(), 2);
        assert!(tr.equivalent(tr.max(), 800));
        let five = stored
            .iter()
            .find(|r| r.minute == piece("10:05", 0).minute)
            .unwrap();
        assert_eq!(five.data.counts.requests, 2);
    }

    /// After the first commit, a commit looks only at the servers the
    /// engine touched (a request, a health event) and at those of a commit
    /// that failed: one request among 1,000 known servers writes one row,
    /// and the row is right.
    #[test]
    fn a_commit_writes_the_servers_touched_since_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::new(
            Store::open(&dir.path().join("t.db")).unwrap(),
            Duration::from_secs(60),
        );
        let mut engine = Engine::new(
            std::sync::Arc::new(crate::patterns::PatternSet::builtin()),
            Filter::default(),
        );
        let request = |i: usize, second: u32| {
            format!(
                "<134>Nov 24 19:00:{second:02} lb1 haproxy[1]: 127.0.0.1:1000 \
                 [24/Nov/2026:19:00:{second:02}.000] fe be/s{i} 0/0/0/5/5 200 100 - - ---- \
                 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""
            )
        };
        for i in 0..1000 {
            engine.ingest_line(request(i, 1).as_bytes());
        }
        let (c, v) = w.rows.changed(&mut engine);
        assert_eq!(c.servers.len(), 1000, "the first commit: every server");
        w.rows.stored(v);
        // One request, and a DOWN for a server that has no request.
        engine.ingest_line(request(7, 2).as_bytes());
        let patterns = crate::patterns::PatternSet::builtin();
        let down = b"Server be/other is DOWN, reason: Layer4 timeout, check duration: 2001ms. \
            0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
        let crate::haproxy::Message::Health(ev) = crate::haproxy::classify(&patterns, down) else {
            panic!("a DOWN line is a health event")
        };
        engine.apply_health("lb1", 1_795_000_000_000, &ev);
        let (c, v) = w.rows.changed(&mut engine);
        let mut names: Vec<&str> = c.servers.iter().map(|k| k.server.as_str()).collect();
        names.sort();
        assert_eq!(names, ["other", "s7"]);
        // That commit failed (not stored): the next one has them again,
        // with what came since.
        drop(v);
        engine.ingest_line(request(8, 3).as_bytes());
        let (c, v) = w.rows.changed(&mut engine);
        let mut names: Vec<&str> = c.servers.iter().map(|k| k.server.as_str()).collect();
        names.sort();
        assert_eq!(names, ["other", "s7", "s8"]);
        w.rows.stored(v);
        let (c, _) = w.rows.changed(&mut engine);
        assert!(c.servers.is_empty(), "nothing since: {:?}", c.servers);
    }
}
