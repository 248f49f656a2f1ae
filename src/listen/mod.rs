//! `hapwatch listen`: the receiver rsyslog and HAProxy forward to.
//!
//! ```text
//! UDP / TCP (LF + octet counting) / unix datagram / followed files   (tokio tasks, net.rs, follow.rs)
//!   --bounded queue of frame batches-->  engine thread                 (this file)
//!        Engine::ingest_line_now, reorder window on the wall clock, Writer (SQLite, every 100 ms)
//!   --Snapshot after each commit-->  /metrics                          (metrics.rs, exposition.rs)
//! ```
//!
//! The engine is the one `analyze` uses, sequentially. The queue is
//! bounded: TCP and file readers wait when it is full (back-pressure: the
//! kernel's window fills and the sender slows down), UDP cannot wait and
//! counts what it drops. Event time comes from the log; the wall clock only
//! releases health events from the reorder window when no newer event
//! came for the window's length, and paces commits.

pub mod config;
pub(crate) mod exposition;
pub(crate) mod follow;
pub(crate) mod framing;
pub(crate) mod journal;
pub(crate) mod metrics;
pub(crate) mod net;
pub(crate) mod runtime_api;
pub(crate) mod stdin;
pub(crate) mod tls;

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::bytes::Bytes;

use crate::engine::{Clock, Engine, Filter};
use crate::patterns::PatternSet;
use crate::pipeline::Pipeline;
use crate::store::{Checkpoint, Store, Writer};
use crate::time::{Millis, YearResolver};

/// Frames per batch: one queue operation per batch, not per frame.
pub const BATCH: usize = 256;

/// What a receiver hands to the engine.
pub struct Batch {
    pub frames: Vec<Bytes>,
    /// A followed file: read up to here once these frames are applied.
    pub mark: Option<Checkpoint>,
    /// The listener (or followed file, or stdin) it came from: its lines
    /// not understood are counted there.
    pub source: Option<Arc<metrics::Listener>>,
    /// The queue's room this batch takes, given back when the engine has
    /// applied it (dropped with the batch).
    room: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Batch {
    pub fn new(frames: Vec<Bytes>, mark: Option<Checkpoint>) -> Batch {
        Batch {
            frames,
            mark,
            source: None,
            room: None,
        }
    }

    pub fn from(mut self, l: &Arc<metrics::Listener>) -> Batch {
        self.source = Some(l.clone());
        self
    }

    /// Bytes this batch holds: its frames and their bookkeeping.
    fn weight(&self) -> u32 {
        let b: usize = self.frames.iter().map(|f| f.len() + FRAME_OVERHEAD).sum();
        b.min(u32::MAX as usize) as u32
    }
}

/// Memory a queued frame costs besides its bytes (its `Bytes`, its share of
/// the batch's vector, the allocator's rounding).
const FRAME_OVERHEAD: usize = 64;

/// Why a batch was not queued: no room (datagrams are then dropped and
/// counted), or the engine has stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum NotQueued {
    Full,
    Closed,
}

/// The queue from the receivers to the engine, bounded in frames and in
/// bytes (`--queue-bytes`): a batch waits (TCP, files) or is dropped and
/// counted (datagrams) until there is room for its bytes.
#[derive(Clone)]
pub struct Sender {
    tx: tokio::sync::mpsc::Sender<Batch>,
    room: Arc<tokio::sync::Semaphore>,
    /// The most bytes one batch may take (the whole queue).
    max: u32,
    /// `hapwatch_queue_depth`: the frames queued, counted here for every
    /// receiver (the engine takes them off as it applies them).
    shared: Arc<metrics::Shared>,
}

impl Sender {
    fn new(
        tx: tokio::sync::mpsc::Sender<Batch>,
        bytes: usize,
        shared: Arc<metrics::Shared>,
    ) -> Sender {
        let max = bytes.clamp(
            1,
            tokio::sync::Semaphore::MAX_PERMITS.min(u32::MAX as usize),
        );
        Sender {
            tx,
            room: Arc::new(tokio::sync::Semaphore::new(max)),
            max: max as u32,
            shared,
        }
    }

    /// Waits for room (back-pressure), then queues.
    pub async fn send(&self, mut b: Batch) -> Result<(), NotQueued> {
        let n = self.count_in(&b);
        let need = b.weight().clamp(1, self.max);
        let queued = match self.room.clone().acquire_many_owned(need).await {
            Ok(permit) => {
                b.room = Some(permit);
                self.tx.send(b).await.map_err(|_| NotQueued::Closed)
            }
            Err(_) => Err(NotQueued::Closed),
        };
        self.count_out_if_not(&queued, n);
        queued
    }

    /// Counted before the engine can take them off: the gauge never dips.
    fn count_in(&self, b: &Batch) -> u64 {
        let n = b.frames.len() as u64;
        self.shared.queue_depth.fetch_add(n, Relaxed);
        n
    }

    fn count_out_if_not(&self, queued: &Result<(), NotQueued>, n: u64) {
        if queued.is_err() {
            self.shared.queue_depth.fetch_sub(n, Relaxed);
        }
    }

    /// Queues without waiting.
    pub fn try_send(&self, mut b: Batch) -> Result<(), NotQueued> {
        let n = self.count_in(&b);
        let need = b.weight().clamp(1, self.max);
        let queued = match self.room.clone().try_acquire_many_owned(need) {
            Ok(permit) => {
                b.room = Some(permit);
                self.tx.try_send(b).map_err(|e| match e {
                    tokio::sync::mpsc::error::TrySendError::Full(_) => NotQueued::Full,
                    tokio::sync::mpsc::error::TrySendError::Closed(_) => NotQueued::Closed,
                })
            }
            Err(_) => Err(NotQueued::Full),
        };
        self.count_out_if_not(&queued, n);
        queued
    }
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_frame: usize,
    pub max_connections: usize,
    /// Connections one source address may hold.
    pub max_connections_per_source: usize,
    pub idle_timeout: Duration,
    /// A connection that has not sent a whole frame within this is closed.
    pub first_frame_timeout: Duration,
    pub allow: Vec<ipnet::IpNet>,
    pub udp_recv_buffer: usize,
}

impl Limits {
    pub fn allowed(&self, ip: std::net::IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// Who may write to the unix sockets: the file mode and group they get.
#[derive(Debug, Clone, Copy)]
pub struct UnixAccess {
    pub mode: u32,
    pub group: Option<u32>,
}

pub struct Options {
    pub udp: Vec<String>,
    pub tcp: Vec<String>,
    /// TLS listeners' addresses and their acceptor (certificate read).
    pub tls: Option<(Vec<String>, tokio_rustls::TlsAcceptor)>,
    pub unix: Vec<PathBuf>,
    pub unix_access: UnixAccess,
    pub follow: Vec<PathBuf>,
    /// `--stdin`: standard input, until its end.
    pub stdin: bool,
    /// `--journal UNIT`, `--journal-dir DIR`.
    pub journals: Vec<journal::Journal>,
    pub metrics: Option<String>,
    pub db: PathBuf,
    pub patterns: Arc<PatternSet>,
    /// How `patterns` and `inventory` were made: SIGHUP makes them again.
    pub recipe: config::Recipe,
    /// The servers `--haproxy-config` declares.
    pub inventory: Option<Arc<crate::inventory::Inventory>>,
    /// `--haproxy-socket`: runtime APIs read at start and every
    /// `reconcile` (zero: at start only).
    pub runtime_api: Vec<runtime_api::Socket>,
    pub reconcile: Duration,
    pub limits: Limits,
    pub reorder_window: Millis,
    /// Silence after which event time follows the wall clock.
    pub idle_grace: Duration,
    /// Frames the queue holds before UDP drops and TCP waits.
    pub queue: usize,
    /// Bytes the queue holds before UDP drops and TCP waits.
    pub queue_bytes: usize,
    pub commit_every: Duration,
    pub rules: crate::alerts::RuleFile,
    /// Where `rules` came from: SIGHUP reads it again.
    pub rules_path: Option<PathBuf>,
    /// Append every alert event, as a JSON line, to this file.
    pub alerts_jsonl: Option<PathBuf>,
    /// Lines dated more than this after they were received are
    /// quarantined.
    pub max_skew: Millis,
    /// `--tz`: the zone of dates written without an offset.
    pub zone: crate::time::Zone,
    /// Distinct servers and hosts kept.
    pub cap: crate::engine::Cap,
    /// Who may read the files written (`--group`).
    pub readers: crate::store::Readers,
}

/// Why `listen` could not start: all the user's to fix (exit status 2).
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Runs until SIGINT or SIGTERM; then drains, commits and returns.
/// How `listen` ended, once it started.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Everything received was stored.
    Clean,
    /// The database still refused the last commit: stderr said what was
    /// not stored (exit status 1).
    Unstored,
}

pub fn run(opts: Options) -> Result<Stopped, StartError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("hapwatch-net")
        .build()
        .map_err(|e| StartError(format!("cannot start the runtime: {e}")))?;
    let store = Store::open_for(&opts.db, opts.readers).map_err(|e| StartError(e.to_string()))?;
    if let Some(w) = store.permissions_warning() {
        crate::say!("hapwatch: {w}");
    }
    // Bind everything first: a port in use or a bad address stops here,
    // named, before anything runs.
    let (bound, mut listeners) = rt.block_on(net::bind_all(&opts))?;
    let followers = opts
        .follow
        .iter()
        .map(|p| follow::Follower::open(p, &store))
        .collect::<Result<Vec<_>, _>>()?;
    listeners.extend(followers.iter().map(|f| f.stats.clone()));
    let stdin = opts.stdin.then(|| {
        Arc::new(metrics::Listener {
            name: "stdin".into(),
            ..Default::default()
        })
    });
    let journals: Vec<(journal::Journal, Arc<metrics::Listener>)> = opts
        .journals
        .iter()
        .map(|j| {
            let l = Arc::new(metrics::Listener {
                name: j.name(),
                ..Default::default()
            });
            (j.clone(), l)
        })
        .collect();
    listeners.extend(journals.iter().map(|(_, l)| l.clone()));
    let mut cursors = journals
        .iter()
        .map(|(j, _)| Ok((j.name(), store.resume_cursor(&j.name())?)))
        .collect::<Result<std::collections::HashMap<_, _>, crate::store::StoreError>>()
        .map_err(|e| StartError(e.to_string()))?;
    // Standard input alone: its end is the end of the run.
    let stdin_alone = listeners.is_empty();
    listeners.extend(stdin.clone());
    let shared = Arc::new(metrics::Shared {
        listeners,
        ..Default::default()
    });
    let capacity = (opts.queue / BATCH).max(2);
    shared
        .queue_capacity
        .store((capacity * BATCH) as u64, Relaxed);
    let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(capacity);
    let tx = Sender::new(tx, opts.queue_bytes, shared.clone());
    let metrics_listener = match &opts.metrics {
        Some(addr) => Some(
            rt.block_on(tokio::net::TcpListener::bind(addr.as_str()))
                .map_err(|e| StartError(format!("--metrics {addr}: {e}")))?,
        ),
        None => None,
    };
    // Signal handlers before anything is announced: a SIGHUP or SIGTERM
    // sent as soon as we say we listen must not find the default action.
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        let _guard = rt.enter();
        let mk = |k| signal(k).map_err(|e| StartError(format!("cannot handle signals: {e}")));
        (
            mk(SignalKind::interrupt())?,
            mk(SignalKind::terminate())?,
            mk(SignalKind::hangup())?,
        )
    };
    let names: Vec<String> = shared.listeners.iter().map(|l| l.name.clone()).collect();
    crate::say!(
        "hapwatch: listening on {}{}; database {}",
        names.join(", "),
        metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| format!("; metrics on http://{a}/metrics"))
            .unwrap_or_default(),
        opts.db.display()
    );
    // Type=notify: systemd starts what is ordered after hapwatch (rsyslog)
    // only now that every socket is bound. Outside systemd, nothing to do.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let shutdown = tokio_util::sync::CancellationToken::new();
    let reload = Arc::new(tokio::sync::Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    {
        let _guard = rt.enter();
        net::spawn_all(&mut tasks, bound, tx.clone(), &opts.limits, &shutdown);
        for f in followers {
            let (tx, stop, reload) = (tx.clone(), shutdown.clone(), reload.clone());
            tasks.spawn(f.run(tx, stop, reload));
        }
        for (j, l) in journals {
            let f = journal::Follow {
                after: cursors.remove(&j.name()).flatten(),
                journal: j,
                max_frame: opts.limits.max_frame,
            };
            tasks.spawn(journal::run(f, tx.clone(), l, shutdown.clone()));
        }
        if let Some(l) = stdin {
            tasks.spawn(stdin::run(
                tx.clone(),
                l,
                opts.limits.max_frame,
                shutdown.clone(),
                stdin_alone,
            ));
        }
        if let Some(l) = metrics_listener {
            let shared = shared.clone();
            let stop = shutdown.clone();
            rt.spawn(async move {
                tokio::select! {
                    _ = metrics::serve(l, shared) => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
        // UDP kernel drops, from /proc/net/udp, once a second.
        let (shared2, stop) = (shared.clone(), shutdown.clone());
        rt.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => net::read_kernel_drops(&shared2),
                    _ = stop.cancelled() => break,
                }
            }
        });
    }
    drop(tx);

    // Signals: SIGINT/SIGTERM stop receiving; SIGHUP reopens followed files.
    // New rules from SIGHUP, for the engine thread and the courier.
    let (rules_tx, rules_rx) = std::sync::mpsc::channel::<crate::alerts::RuleFile>();
    let (reread_tx, reread_rx) = std::sync::mpsc::channel::<Reread>();
    let recipe = opts.recipe.clone();
    // The engine thread takes the first ones as it takes any later ones.
    let _ = reread_tx.send((opts.patterns.clone(), opts.inventory.clone()));
    // The runtime APIs are read on their own thread: a socket that hangs
    // never holds up the engine (each reading has a timeout too).
    let (api_tx, api_rx) = std::sync::mpsc::channel::<ApiReading>();
    if !opts.runtime_api.is_empty() {
        let (sockets, every, stop) = (opts.runtime_api.clone(), opts.reconcile, shutdown.clone());
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("hapwatch-runtime-api".into())
            .spawn(move || read_runtime_apis(sockets, every, api_tx, shared, stop))
            .expect("spawn the runtime API thread");
    }
    let courier_sinks = Arc::new(std::sync::Mutex::new(opts.rules.sinks.clone()));
    let rules_path = opts.rules_path.clone();
    let sinks_for_hup = courier_sinks.clone();
    let (stop, hup) = (shutdown.clone(), reload.clone());
    rt.spawn(async move {
        let (mut int, mut term, mut hup_sig) = signals;
        loop {
            tokio::select! {
                _ = int.recv() => break,
                _ = term.recv() => break,
                _ = hup_sig.recv() => {
                    crate::say!("hapwatch: SIGHUP: reopening followed files");
                    hup.notify_waiters();
                    if !recipe.haproxy_config.is_empty() {
                        // A configuration that cannot be read keeps the
                        // formats and servers in force.
                        match recipe.cook() {
                            Ok(r) => {
                                crate::say!("hapwatch: SIGHUP: formats and servers read again from --haproxy-config");
                                let _ = reread_tx.send(r);
                            }
                            Err(e) => crate::say!(
                                "hapwatch: SIGHUP: {e}; the previous formats and servers stay in force"
                            ),
                        }
                    }
                    if let Some(path) = &rules_path {
                        // An invalid file keeps the rules in force.
                        match std::fs::read_to_string(path)
                            .map_err(|e| e.to_string())
                            .and_then(|t| crate::alerts::RuleFile::parse(&t).map_err(|e| e.to_string()))
                        {
                            Ok(r) => {
                                crate::say!("hapwatch: SIGHUP: rules reloaded from {}", path.display());
                                *sinks_for_hup.lock().expect("sinks lock") = r.sinks.clone();
                                let _ = rules_tx.send(r);
                            }
                            Err(e) => crate::say!(
                                "hapwatch: SIGHUP: {}: {e}; the previous rules stay in force",
                                path.display()
                            ),
                        }
                    }
                }
            }
        }
        crate::say!("hapwatch: stopping: draining what was received");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        stop.cancel();
    });

    let mut writer = Writer::new(store, opts.commit_every);
    writer.keep_transitions = false;
    writer.sinks = crate::alerts::sinks::names(&opts.rules.sinks);
    // The courier delivers the outbox on its own connection and thread:
    // a slow or dead sink never holds up ingestion.
    let courier_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (wake_tx, wake_rx) = std::sync::mpsc::channel::<()>();
    let (direct_tx, direct_rx) = std::sync::mpsc::channel::<Vec<crate::alerts::Alert>>();
    let courier = if opts.rules.sinks.is_empty() && opts.rules_path.is_none() {
        None
    } else {
        let c = crate::delivery::Courier {
            outcomes: shared.deliveries.clone(),
            store: Store::open(&opts.db).map_err(|e| StartError(e.to_string()))?,
            sinks: courier_sinks.clone(),
            delivery: opts.rules.delivery.clone(),
            direct: direct_rx,
        };
        let stop = courier_stop.clone();
        Some(
            std::thread::Builder::new()
                .name("hapwatch-courier".into())
                .spawn(move || c.run(stop, wake_rx))
                .expect("spawn the courier thread"),
        )
    };
    let mut engine = Engine::new(opts.patterns.clone(), Filter::default());
    engine.rollups = true;
    engine.order = crate::engine::order::Reorder::new(opts.reorder_window);
    match writer.store().and_then(|s| s.load_states()) {
        Ok(states) => engine.health.servers.extend(states),
        Err(e) => return Err(StartError(e.to_string())),
    }
    // The clocks measured live before a restart (not those `analyze`
    // measured against the other hosts of a file).
    match writer.store().and_then(|s| s.hosts()) {
        Ok(hosts) => {
            for h in hosts {
                if let (Some(o), Some("received")) = (h.offset, h.reference.as_deref()) {
                    let last = h.last.unwrap_or(0);
                    engine.clocks.restore(h.host, last, o, now_ms());
                }
            }
        }
        Err(e) => return Err(StartError(e.to_string())),
    }
    engine.preview = true;
    engine.cap = opts.cap.clone();
    engine.zone = opts.zone.clone();
    // The rules carry on where the last run stopped: firing alerts stay
    // firing (unannounced), flapping windows and degradation conditions go on.
    let evaluator = crate::alerts::Evaluator::new(opts.rules.clone());
    let mut pipeline = Pipeline::new(engine, Some(evaluator), Some(writer));
    pipeline.persist_held = true;
    pipeline
        .restore_alerts()
        .map_err(|e| StartError(e.to_string()))?;
    let jsonl = match &opts.alerts_jsonl {
        Some(p) => Some({
            use std::os::unix::fs::OpenOptionsExt;
            // Alerts name servers and carry runbooks: owner only (and
            // `--group`).
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(opts.readers.mode())
                .open(p)
                .and_then(|f| opts.readers.apply(p).map(|_| f))
                .map_err(|e| StartError(format!("--alerts-jsonl {}: {e}", p.display())))?
        }),
        None => None,
    };
    let sinks = Sinks {
        jsonl,
        new_rules: rules_rx,
        reread: reread_rx,
        runtime_api: api_rx,
        wake: wake_tx,
        direct: direct_tx,
    };
    let handle = rt.handle().clone();
    let engine_thread = {
        let shared = shared.clone();
        let pace = Pace {
            window: Duration::from_millis(opts.reorder_window.max(0) as u64),
            idle_grace: opts.idle_grace,
            max_skew: opts.max_skew,
            zone: opts.zone.clone(),
            watchdog: {
                // WatchdogSec=: ping at half the interval, from the engine
                // thread, so that a wedged engine is restarted.
                let mut usec = 0;
                sd_notify::watchdog_enabled(false, &mut usec)
                    .then(|| Duration::from_micros(usec / 2).max(Duration::from_millis(50)))
            },
        };
        std::thread::Builder::new()
            .name("hapwatch-engine".into())
            .spawn(move || engine_loop(handle, rx, pipeline, shared, pace, sinks))
            .expect("spawn the engine thread")
    };
    // Receivers end when shutdown is cancelled; the engine thread ends when
    // the last of them has dropped its sender and the queue is empty.
    rt.block_on(async { while tasks.join_next().await.is_some() {} });
    let result = engine_thread.join().expect("engine thread");
    courier_stop.store(true, Relaxed);
    if let Some(c) = courier {
        let _ = c.join();
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Spots a sender whose dates without a zone are read in the wrong one:
/// the same whole number of hours between its dates and the receive time in
/// three batches in a row (a relay's backlog drifts; a zone does not). Said
/// once on stderr, and kept in `/metrics`.
#[derive(Default)]
struct ZoneCheck {
    hours: Option<i64>,
    seen: u32,
    said: bool,
}

impl ZoneCheck {
    fn sample(
        &mut self,
        t: Millis,
        now: Millis,
        zone: &crate::time::Zone,
        shared: &metrics::Shared,
    ) {
        let h = crate::time::zone_explains(t - now);
        if h != self.hours {
            (self.hours, self.seen) = (h, 0);
        }
        self.seen += 1;
        let Some(h) = h else { return };
        if self.seen < 3 || self.said {
            return;
        }
        self.said = true;
        shared.zone_suspect_seconds.store(h * 3600, Relaxed);
        let (way, sign) = if h > 0 {
            ("ahead of", '+')
        } else {
            ("behind", '-')
        };
        crate::say!(
            "hapwatch: dates without a zone (RFC 3164 headers, HAProxy's accept dates) arrive \
             {} h {way} the receive time, read in {}: the HAProxy host's zone is probably \
             UTC{sign}{:02}:00; give it with --tz (an IANA name, e.g. {}), until then its \
             times are wrong by that much{}",
            h.abs(),
            zone.name(),
            h.abs(),
            if h > 0 {
                "Asia/Tokyo"
            } else {
                "America/New_York"
            },
            if h > 0 {
                " and its lines are quarantined as skewed"
            } else {
                ""
            }
        );
    }
}

/// Wall-clock durations the engine thread goes by.
struct Pace {
    /// The reorder window: how long a health event waits.
    window: Duration,
    /// Silence after which event time follows the wall clock.
    idle_grace: Duration,
    /// How far after the receive time a line may be dated.
    max_skew: Millis,
    /// `--tz`.
    zone: crate::time::Zone,
    /// How often to tell systemd's watchdog the engine is alive.
    watchdog: Option<Duration>,
}

/// The engine thread: every frame through the one engine, commits paced
/// by the wall clock.
fn engine_loop(
    rt: tokio::runtime::Handle,
    mut rx: tokio::sync::mpsc::Receiver<Batch>,
    mut p: Pipeline,
    shared: Arc<metrics::Shared>,
    pace: Pace,
    mut sinks: Sinks,
) -> Result<Stopped, StartError> {
    let Pace {
        window,
        idle_grace,
        max_skew,
        zone,
        watchdog,
    } = pace;
    let mut zone_check = ZoneCheck::default();
    let mut pinged = Instant::now();
    let mut said_dropped = false;
    // The engine's generation at the last successful commit, and when the
    // last commit was tried.
    let mut committed_at = u64::MAX;
    let mut last_commit = Instant::now();
    // The engine's generation /metrics shows, and the series it shows.
    let mut published = u64::MAX;
    let mut series = metrics::Publisher::default();
    let (y, m, d) = crate::time::civil_from_days(now_ms().div_euclid(86_400_000));
    let mut clock = Clock::new(YearResolver::new(y, Some((m, d)))).with_zone(zone.clone());
    // Live, a line with no time is dated by its arrival, never by an order
    // (`time::UNTIMED`): the held lines read again below arrive now (the
    // time they were first received is not kept).
    clock.received = Some(now_ms());
    // What the reorder window held at the last commit was read before the
    // checkpoints: it goes back in first.
    p.restore_held(&mut clock)
        .map_err(|e| StartError(e.to_string()))?;
    let mut last_frame = Instant::now();
    let mut retry = Retry::default();
    let tick = Duration::from_millis(50);
    loop {
        // While the database refuses commits, what waits for it is held in
        // memory up to a bound; past it the queue is left to fill, so TCP
        // senders wait and datagrams are counted as dropped: nothing is
        // dropped silently.
        let full = |p: &Pipeline| {
            retry.failing()
                && p.writer.as_ref().expect("listen stores").pending_len()
                    >= MAX_PENDING_WHILE_FAILING
        };
        if full(&p) {
            std::thread::sleep(retry.until_next());
        }
        let got = if full(&p) {
            Err(()) // still full: try the commit again first
        } else {
            rt.block_on(async { tokio::time::timeout(tick, rx.recv()).await })
                .map_err(|_| ())
        };
        let open = match got {
            Ok(Some(batch)) => {
                shared
                    .queue_depth
                    .fetch_sub(batch.frames.len() as u64, Relaxed);
                // A line dated after the receive time by more than the skew
                // allowed is a forged date or a broken clock: quarantined.
                p.engine.max_time = Some(now_ms() + max_skew);
                // Lines with no time of their own (HAProxy's stderr) are
                // dated by their arrival: the closest truth live.
                clock.received = Some(now_ms());
                p.engine.arrivals.received = clock.received;
                let untimed = p.engine.counters.untimed;
                for f in &batch.frames {
                    let before = p.engine.counters.unparsed;
                    p.ingest_line_now(f, &mut clock);
                    if p.engine.counters.unparsed != before {
                        if let Some(l) = &batch.source {
                            l.unparsed_line(f);
                        }
                    }
                }
                p.fold_arrivals(None);
                if let Some(l) = &batch.source {
                    l.say_if_mostly_unparsed();
                    l.untimed_lines(p.engine.counters.untimed - untimed);
                }
                if let Some(t) = p.engine.unzoned.take() {
                    zone_check.sample(t, now_ms(), &zone, &shared);
                }
                last_frame = Instant::now();
                // A followed file's position goes with the commit that
                // stores what its lines did; the lines still in the reorder
                // window are stored with it (`persist_held`).
                if let Some(m) = batch.mark {
                    p.writer.as_mut().expect("listen stores").mark(m);
                }
                true
            }
            Ok(None) => false,
            Err(_) => true, // a tick without traffic
        };
        if !said_dropped && p.engine.counters.dropped_servers + p.engine.counters.dropped_hosts > 0
        {
            said_dropped = true;
            crate::say!(
                "hapwatch: more than {} servers or {} hosts: lines of new names are counted \
                 (hapwatch_series_dropped_total) and not kept; raise --max-servers/--max-hosts \
                 if they are real",
                p.engine.cap.max_servers,
                p.engine.cap.max_hosts
            );
        }
        if watchdog.is_some_and(|every| pinged.elapsed() >= every) {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            pinged = Instant::now();
        }
        while let Ok((host, at, rows)) = sinks.runtime_api.try_recv() {
            // Live lines first: what the reorder window holds is applied
            // before the API's word on the same backends is weighed.
            p.release_waited(window);
            p.reconcile(
                &host,
                at,
                rows.into_iter().map(|r| {
                    let since = r.since_change.map(|s| at - s as Millis * 1000);
                    (r.backend, r.server, r.op, r.admin, since)
                }),
            );
        }
        if let Ok((patterns, inventory)) = sinks.reread.try_recv() {
            p.engine.patterns = patterns;
            series.set_inventory(inventory);
            published = u64::MAX; // shown again, marked by the new servers
        }
        if let Ok(r) = sinks.new_rules.try_recv() {
            if let Some(w) = p.writer.as_mut() {
                w.sinks = crate::alerts::sinks::names(&r.sinks);
            }
            if let Some(a) = p.alerts.as_mut() {
                a.set_rules(r);
            }
        }
        // The wall clock closes the reorder window: an event that has
        // waited its length goes, with everything older than it.
        if !p.engine.order.is_empty() {
            p.release_waited(window);
        }
        let writer = p.writer.as_mut().expect("listen stores");
        // An alert is committed (and handed to the courier) at once: the
        // 100 ms batching is for everything else.
        // Nothing came since the last commit: commit once a second only,
        // for the idle clock (minutes and flapping windows it closes), so
        // an idle receiver with many servers costs next to nothing.
        let quiet = p.engine.generation == committed_at
            && writer.pending_len() == 0
            && last_commit.elapsed() < Duration::from_secs(1);
        let due = (writer.due() && !quiet) || p.alerting();
        // Degradation minutes close on event time; when traffic stops, the
        // wall clock carries event time on after `--idle-grace` of silence
        // so that a rule whose window gets no new events still closes (a
        // short stall of a sender, shorter than the grace, closes nothing
        // early).
        p.idle = last_frame.elapsed().saturating_sub(idle_grace);
        if !open || (due && retry.due()) {
            // A stop is not the end of time: what the reorder window holds
            // is applied (the database says what was received), but open
            // minutes stay open, stored as rollups, and the next run judges
            // them whole, as one uninterrupted run would.
            if !open {
                p.release_all();
            }
            last_commit = Instant::now();
            match p.commit() {
                Ok(()) => {
                    committed_at = p.engine.generation;
                    let writer = p.writer.as_mut().expect("listen stores");
                    shared
                        .db_batch_us
                        .store(writer.last_latency.as_micros() as u64, Relaxed);
                    shared.db_batches.fetch_add(1, Relaxed);
                    if retry.failing() {
                        crate::say!(
                            "hapwatch: the database accepts writes again; what waited is stored"
                        );
                    }
                    retry = Retry::default();
                    // Stored first, then announced: a crash in between
                    // loses no alert from the database.
                    sinks.deliver(&writer.committed_alerts);
                    if !writer.committed_alerts.is_empty() {
                        let _ = sinks.wake.send(());
                    }
                }
                Err(e) => {
                    shared.db_errors.fetch_add(1, Relaxed);
                    if !retry.failing() {
                        crate::say!("hapwatch: {e}; keeping what waits and retrying with backoff");
                    }
                    retry.failed();
                    // Pages do not wait for the database.
                    let early = p
                        .writer
                        .as_mut()
                        .expect("listen stores")
                        .announce_unstored();
                    sinks.deliver(early);
                    if !early.is_empty() {
                        let _ = sinks.direct.send(early.to_vec());
                        let _ = sinks.wake.send(());
                    }
                }
            }
            let (rollups, transitions, alerts) = p
                .writer
                .as_ref()
                .expect("listen stores")
                .unwritten(&p.engine);
            shared
                .db_unstored
                .store((rollups + transitions + alerts) as u64, Relaxed);
            // /metrics follows what changed (nothing while idle), at the
            // cost of what changed.
            if !open || published != p.engine.generation {
                publish(&mut p, &mut series, &shared);
                published = p.engine.generation;
            }
        }
        if shared.wanted.swap(false, Relaxed) {
            publish(&mut p, &mut series, &shared);
            published = p.engine.generation;
        }
        if !open {
            if retry.failing() && retry.last_chance() {
                // Stopping: a few more tries while the fault may clear.
                std::thread::sleep(retry.until_next());
                continue;
            }
            break;
        }
    }
    if retry.failing() {
        let (rollups, transitions, alerts) = p
            .writer
            .as_ref()
            .expect("listen stores")
            .unwritten(&p.engine);
        crate::say!(
            "hapwatch: the database could not be written: not stored: {transitions} transitions, \
             {rollups} server-minutes of rollups, {alerts} alert events"
        );
        return Ok(Stopped::Unstored);
    }
    Ok(Stopped::Clean)
}

/// Minutes of rollups held while the database refuses commits before the
/// engine stops taking frames (about 1 KB each, sealed).
const MAX_PENDING_WHILE_FAILING: usize = 100_000;

/// Backoff between commits while the database refuses them (locked, full,
/// read-only): 100 ms doubling to 5 s, so a fault that clears is noticed
/// within seconds and a lasting one costs little.
#[derive(Default)]
struct Retry {
    failures: u32,
    next: Option<Instant>,
    /// Tries made after the receivers stopped.
    at_stop: u32,
}

impl Retry {
    fn failing(&self) -> bool {
        self.failures > 0
    }

    fn due(&self) -> bool {
        self.next.is_none_or(|n| Instant::now() >= n)
    }

    fn failed(&mut self) {
        self.failures += 1;
        let wait = Duration::from_millis(100 << self.failures.min(6)).min(Duration::from_secs(5));
        self.next = Some(Instant::now() + wait);
    }

    fn until_next(&self) -> Duration {
        self.next.map_or(Duration::ZERO, |n| {
            n.saturating_duration_since(Instant::now())
        })
    }

    /// At a stop, three more tries (a few seconds) before giving up.
    fn last_chance(&mut self) -> bool {
        self.at_stop += 1;
        self.at_stop <= 3
    }
}

/// One reading of a runtime API: the host it is for, when, each server.
type ApiReading = (String, Millis, Vec<runtime_api::ServerRow>);

/// Reads every `--haproxy-socket` at once, then every `every` (zero: once),
/// until `stop`. A failure is counted and said when it first happens (and
/// when it changes), not at every reading.
fn read_runtime_apis(
    sockets: Vec<runtime_api::Socket>,
    every: Duration,
    out: std::sync::mpsc::Sender<ApiReading>,
    shared: Arc<metrics::Shared>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut said: Vec<Option<String>> = vec![None; sockets.len()];
    loop {
        for (k, socket) in sockets.iter().enumerate() {
            match socket.servers_state(Duration::from_secs(5)) {
                Ok(rows) => {
                    shared.runtime_api_reads.fetch_add(1, Relaxed);
                    if said[k].as_deref() != Some("") {
                        crate::say!(
                            "hapwatch: runtime API {socket}: {} servers read (host {})",
                            rows.len(),
                            if socket.host.is_empty() {
                                "-"
                            } else {
                                &socket.host
                            }
                        );
                        said[k] = Some(String::new());
                    }
                    if out.send((socket.host.clone(), now_ms(), rows)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    shared.runtime_api_errors.fetch_add(1, Relaxed);
                    if said[k].as_deref() != Some(e.as_str()) {
                        crate::say!("hapwatch: {e}; read again in {}s", every.as_secs());
                        said[k] = Some(e);
                    }
                }
            }
        }
        if every.is_zero() {
            return;
        }
        let until = Instant::now() + every;
        while Instant::now() < until {
            if stop.is_cancelled() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100).min(every));
        }
    }
}

/// The patterns and the inventory made again (see [`config::Recipe`]).
type Reread = (Arc<PatternSet>, Option<Arc<crate::inventory::Inventory>>);

/// Where alert events go once stored: stdout (one line each) and,
/// optionally, a JSON-lines file; and new rules from SIGHUP.
struct Sinks {
    jsonl: Option<std::fs::File>,
    new_rules: std::sync::mpsc::Receiver<crate::alerts::RuleFile>,
    /// Formats and servers read again from haproxy.cfg at SIGHUP.
    reread: std::sync::mpsc::Receiver<Reread>,
    /// What the runtime APIs said (`--haproxy-socket`).
    runtime_api: std::sync::mpsc::Receiver<ApiReading>,
    /// Tells the courier that the outbox has new rows.
    wake: std::sync::mpsc::Sender<()>,
    /// Alert events the database refused: the courier tries each remote
    /// sink once at once (they are queued in the outbox again when stored).
    direct: std::sync::mpsc::Sender<Vec<crate::alerts::Alert>>,
}

impl Sinks {
    fn deliver(&mut self, alerts: &[crate::alerts::Alert]) {
        use std::io::Write;
        if alerts.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        for a in alerts {
            let _ = writeln!(out, "{}", a.line());
            if let Some(f) = self.jsonl.as_mut() {
                let _ = writeln!(f, "{}", serde_json::to_string(a).expect("serializes"));
            }
        }
        let _ = out.flush();
    }
}

/// Publishes what `/metrics` shows of the engine and the rules.
fn publish(p: &mut Pipeline, series: &mut metrics::Publisher, shared: &metrics::Shared) {
    let engine = &p.engine;
    let counters = metrics::Snapshot {
        lines: engine.counters.lines,
        parse_unparsed: engine.counters.unparsed,
        parse_oversized: engine.counters.oversized,
        nul_runs: engine.counters.nul_runs,
        duplicates: engine.order.duplicates,
        late: engine.order.late,
        stale: engine.health.stale,
        skewed: engine.counters.skewed,
        log_steps: engine.counters.log_steps,
        dropped_servers: engine.counters.dropped_servers,
        dropped_hosts: engine.counters.dropped_hosts,
        alert_previews: p.alerts.as_ref().map_or(0, |a| a.previews),
        alert_previews_unconfirmed: p.alerts.as_ref().map_or(0, |a| a.previews_unconfirmed),
        reconciled: engine.health.reconciled,
        rate_limited: engine.counters.rate_limited.clone(),
        event_now: engine.last,
        clock_offsets: series.clock_offsets(&engine.clocks),
    };
    series.publish(&mut p.engine, counters, shared);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/metrics` as a scrape of an engine that read `lines` shows it.
    fn scrape(lines: &[String]) -> String {
        let patterns = Arc::new(crate::patterns::PatternSet::builtin());
        let mut engine = Engine::new(patterns, crate::engine::Filter::default());
        for l in lines {
            engine.ingest_line(l.as_bytes());
        }
        engine.aggregates.flush();
        let shared = Arc::new(metrics::Shared::default());
        let mut p = Pipeline::new(engine, None, None);
        publish(&mut p, &mut metrics::Publisher::default(), &shared);
        metrics::render(&shared)
    }

    /// `promtool check metrics` reads the exposition (when installed; CI
    /// installs it). Its lint notes (help text of OpenMetrics counters,
    /// units) are not parse errors; an unreadable exposition is.
    fn promtool_reads(text: &str) {
        let Ok(out) = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(text.as_bytes())?;
                c.wait_with_output()
            })
        else {
            return;
        };
        let said = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!said.contains("parsing error"), "promtool: {said}");
        assert!(!said.contains("error while linting"), "promtool: {said}");
    }

    /// The journal's notice that it dropped HAProxy's messages (followed
    /// live with `--journal haproxy.service`, `journalctl -o json`): a
    /// counter by what it names, summed over notices; a hostile run of
    /// names stays bounded.
    #[test]
    fn rate_limit_notices_are_a_counter_by_source() {
        let notice = |n: u64, unit: &str| {
            format!("{{\"__REALTIME_TIMESTAMP\":\"1795537394123456\",\"_HOSTNAME\":\"lb1\",\"SYSLOG_IDENTIFIER\":\"systemd-journald\",\"MESSAGE\":\"Suppressed {n} messages from {unit}\"}}")
        };
        let mut lines = vec![
            notice(4000, "haproxy.service"),
            notice(321, "haproxy.service"),
        ];
        lines.extend((0..100).map(|i| notice(1, &format!("u{i}.service"))));
        let text = scrape(&lines);
        assert!(
            text.contains("hapwatch_upstream_rate_limited_total{by=\"journald\",from=\"haproxy.service\"} 4321\n"),
            "{text}"
        );
        let sources = text
            .lines()
            .filter(|l| l.starts_with("hapwatch_upstream_rate_limited_total{"))
            .count();
        assert_eq!(sources, 64, "{text}");
        assert!(
            text.contains(
                "hapwatch_upstream_rate_limited_total{by=\"journald\",from=\"(others)\"} 38\n"
            ),
            "{text}"
        );
        promtool_reads(&text);
    }

    #[test]
    fn latency_histograms_are_cumulative_once_and_end_at_inf() {
        // Tr of 3 ms, 40 ms, 2 s and 50 s (above the largest bound).
        let lines: Vec<String> = [3, 40, 2_000, 50_000]
            .iter()
            .map(|tr| format!("<134>Nov 24 16:21:15 haproxy[1]: 127.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s1 0/0/0/{tr}/{tr} 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""))
            .collect();
        let text = scrape(&lines);
        let bucket = |le: &str| -> u64 {
            let prefix = format!(
                "hapwatch_request_seconds_bucket{{le=\"{le}\",host=\"\",backend=\"be\",server=\"s1\",timer=\"Tr\"}} "
            );
            let line = text
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
            line[prefix.len()..].parse().unwrap()
        };
        assert_eq!(bucket("0.005"), 1);
        assert_eq!(bucket("0.01"), 1);
        assert_eq!(bucket("0.05"), 2);
        assert_eq!(bucket("2.5"), 3);
        assert_eq!(bucket("30.0"), 3);
        assert_eq!(bucket("+Inf"), 4, "the +Inf bucket is the count");
        assert!(text.contains(
            "hapwatch_request_seconds_count{host=\"\",backend=\"be\",server=\"s1\",timer=\"Tr\"} 4"
        ));
        // Cumulative: never decreasing along le, for every series.
        let mut last: Option<(String, u64)> = None;
        for l in text
            .lines()
            .filter(|l| l.starts_with("hapwatch_request_seconds_bucket"))
        {
            let series = l[l.find(",host=").unwrap()..l.find('}').unwrap()].to_string();
            let v: u64 = l.rsplit(' ').next().unwrap().parse().unwrap();
            if let Some((s, prev)) = &last {
                if *s == series {
                    assert!(v >= *prev, "bucket decreases: {l}");
                }
            }
            last = Some((series, v));
        }
        promtool_reads(&text);
    }

    /// Names come from the network: quotes and backslashes in them are
    /// escaped, so the scrape stays readable and no label is injected.
    #[test]
    fn hostile_names_are_escaped_in_metrics() {
        let lines: Vec<String> = [r#"be"q/s1"#, r#"be/s",evil="1"#, r#"be\x/s2"#]
            .iter()
            .map(|name| format!("<134>Nov 24 16:21:15 haproxy[1]: 127.0.0.1:1 [24/Nov/2026:16:21:15.230] fe {name} 0/0/0/5/5 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""))
            .collect();
        let text = scrape(&lines);
        assert!(text.contains(r#"backend="be\"q""#), "{text}");
        assert!(text.contains(r#"server="s\",evil=\"1""#), "{text}");
        assert!(text.contains(r#"backend="be\\x""#), "{text}");
        assert!(
            !text.contains(r#",evil="1""#),
            "a label was injected:\n{text}"
        );
        promtool_reads(&text);
    }
}
