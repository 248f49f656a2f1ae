//! Batched writing: what the engine produced since the last commit, with the
//! file positions it was read from, in one transaction every `interval`.
//!
//! `analyze --db` commits about once a second, so a long run keeps its
//! rollups out of memory and a killed run keeps what it committed; `listen`
//! commits every 100 ms. Rollups leave the engine at each commit and wait
//! here until one succeeds: a failing disk costs memory, not data, and the
//! caller can say what was not stored.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::engine::rollup::{Minute, Rollup};
use crate::engine::{Engine, ServerKey};
use crate::time::Millis;

use super::{Batch, Store, StoreError};

/// How far a file was read, by its path as given to `--db` runs
/// (canonical), device and inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
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
    pending: HashMap<(ServerKey, Millis), Minute>,
    /// Rollups taken by a commit that failed.
    unstored: usize,
    marks: BTreeMap<String, Checkpoint>,
    /// Alert events of the engine already taken (when kept).
    alerts_written: usize,
    /// Alert events waiting for the next commit.
    alerts: Vec<crate::alerts::Alert>,
    /// Wall time of silence beyond the idle grace (live): added to the last
    /// event time for closing minutes when traffic stops.
    pub idle: Duration,
    /// The last commit: every open minute is judged (end of input, or a
    /// receiver stopping).
    pub closing: bool,
    /// Remote sinks (names): the outbox gets a row per alert and sink.
    pub sinks: Vec<String>,
    /// Alert events the last successful commit stored: what sinks deliver.
    pub committed_alerts: Vec<crate::alerts::Alert>,
    last: Instant,
    pub commits: u64,
    /// Transitions that were new to the database.
    pub new_transitions: usize,
    /// Time the last commit took.
    pub last_latency: Duration,
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
            max_pending: 50_000,
            keep_transitions: true,
            written: 0,
            pending: HashMap::new(),
            unstored: 0,
            marks: BTreeMap::new(),
            alerts: Vec::new(),
            alerts_written: 0,
            committed_alerts: Vec::new(),
            sinks: Vec::new(),
            closing: false,
            idle: Duration::ZERO,
            last: Instant::now(),
            commits: 0,
            new_transitions: 0,
            last_latency: Duration::ZERO,
        }
    }

    /// Minutes recorded elsewhere (analyze's worker threads).
    pub fn add_rollups(&mut self, rollups: Vec<Rollup>) {
        for r in rollups {
            match self.pending.entry((r.key, r.minute)) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(&r.data),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(r.data);
                }
            }
        }
    }

    /// Records that a file has been read (and its lines given to the
    /// engine) up to a position; written with the next commit.
    pub fn mark(&mut self, c: Checkpoint) {
        self.marks.insert(c.path.clone(), c);
    }

    pub fn due(&self) -> bool {
        self.last.elapsed() >= self.interval || self.pending.len() >= self.max_pending
    }

    /// Rollups and transitions waiting for a successful commit.
    pub fn unwritten(&self, engine: &Engine) -> (usize, usize) {
        (
            self.pending.len() + self.unstored,
            engine.health.transitions.len() - self.written,
        )
    }

    /// Writes everything new since the last commit, in one transaction.
    pub fn commit(&mut self, engine: &mut Engine) -> Result<(), StoreError> {
        let started = Instant::now();
        self.last = started;
        let fresh = engine.aggregates.drain_minutes();
        if let Some(a) = engine.alerts.as_deref_mut() {
            // Degradation rules judge the minutes as they close.
            let now = if self.closing {
                Some(Millis::MAX)
            } else {
                engine.last.map(|t| t + self.idle.as_millis() as Millis)
            };
            a.on_minutes(&fresh, now);
        }
        self.add_rollups(fresh);
        if let Some(a) = engine.alerts.as_deref_mut() {
            if self.keep_transitions {
                // analyze reports them all: copy what is new.
                self.alerts.extend_from_slice(&a.out[self.alerts_written..]);
                self.alerts_written = a.out.len();
            } else {
                self.alerts.append(&mut a.out);
            }
        }
        let checkpoints: Vec<Checkpoint> = self.marks.values().cloned().collect();
        let rollups: Vec<Rollup> = self
            .pending
            .drain()
            .map(|((key, minute), data)| Rollup { key, minute, data })
            .collect();
        // Counted as not stored until the commit succeeds.
        self.unstored = rollups.len();
        let new = ready(&mut self.store)?.persist(&Batch {
            engine,
            transitions: &engine.health.transitions[self.written..],
            rollups: &rollups,
            checkpoints: &checkpoints,
            alerts: &self.alerts,
            sinks: &self.sinks,
        })?;
        self.committed_alerts = std::mem::take(&mut self.alerts);
        self.unstored = 0;
        self.marks.clear();
        self.new_transitions += new;
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
