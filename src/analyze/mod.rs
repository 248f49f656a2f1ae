//! `hapwatch analyze`: the offline pipeline, on every core.
//!
//! ```text
//! reader thread --chunks of whole lines--> N workers --results--> ordering (this thread)
//!   input::open, Chunker          Engine::ingest_line         Clock + Engine::apply_health
//! ```
//!
//! Workers parse and aggregate requests on their own (the aggregates merge
//! exactly); the health events of each chunk come back and are applied in
//! input order, with the time hints the worker saw (the last request before
//! each event), so the result is the one a single thread would give.
//! Every queue is bounded: memory does not grow with the input.

pub mod job;

pub use job::{Done, Job};

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicU64},
        Arc,
    },
};

use crate::engine::rollup::Rollup;
use crate::engine::state::ServerState;
use crate::engine::{Clock, Engine, Filter, PendingHealth, ServerKey};
use crate::input::{self, Source};
use crate::patterns::PatternSet;
use crate::pipeline::Pipeline;
use crate::store::{Checkpoint, StoreError, Writer};
use crate::time::{Millis, YearResolver};

/// How to read, as `analyze`'s flags say: shared by [`Job`] (what the
/// user asked) and [`Options`] (what a run is given).
#[derive(Clone)]
pub struct Reading {
    pub patterns: Arc<PatternSet>,
    pub filter: Filter,
    /// `--year`: the year of RFC 3164 dates when no line says otherwise.
    pub year: Option<i64>,
    pub threads: usize,
    pub show_unparsed: usize,
    /// Draw a progress bar (the caller checks that stderr is a terminal).
    pub progress: bool,
    /// Map plain files instead of reading them (faster; see `--no-mmap`).
    pub mmap: bool,
    /// See `crate::engine::order`.
    pub reorder_window: Millis,
    /// Evaluate these alert rules (`--alerts`).
    pub alerts: Option<crate::alerts::RuleFile>,
    /// `--max-skew`: lines dated this long after their file was last
    /// written are quarantined (see [`Engine::max_time`]).
    pub max_skew: Option<Millis>,
    /// `--max-servers`, `--max-hosts` (per worker: see [`crate::engine::Cap`]).
    pub cap: crate::engine::Cap,
    /// `--tz`: the zone of dates written without an offset.
    pub zone: crate::time::Zone,
    /// `--by` (with `--sort`, `--top`, `--query`): also count requests by
    /// this key; each worker counts into a copy of this empty breakdown.
    pub by: Option<crate::engine::breakdown::Breakdown>,
    /// `--percentiles`: the rows asked for (see `engine::percentiles`).
    pub percentiles: Option<Vec<f64>>,
    /// `--accept-holes`, `--accept-count`: least gap (ms) and accepts.
    pub holes: Option<(Millis, u32)>,
    /// halog's input filters (see `engine::select`); none when empty.
    pub select: Option<crate::engine::select::Select>,
    /// Count per server ([`Engine::server_stats`]); a store or alert rules
    /// count per server whatever this says.
    pub server_stats: bool,
}

pub struct Options {
    pub reading: Reading,
    pub sources: Vec<Source>,
    /// Per source, where to resume (checkpoints of `--db`).
    pub starts: Vec<crate::store::Resume>,
    /// Leave a last line without its newline for the next run, so that a
    /// checkpoint never splits a line still being written.
    pub hold_tail: bool,
    /// Per source, the path its checkpoint is stored under (`--db`).
    pub checkpoint_paths: Vec<CheckpointKey>,
    /// Server states to continue from (a resumed file).
    pub seed: Vec<(ServerKey, ServerState)>,
}

/// A file's checkpoint: the path it is stored under (canonical) and the
/// text the file opens with. `None` for standard input.
pub type CheckpointKey = Option<(String, Option<crate::store::Head>)>;

/// How far a file was read: what a checkpoint stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Index in `Options::sources`.
    pub source: usize,
    pub dev: u64,
    pub ino: u64,
    /// Byte offset after the last line read (compressed: the file size
    /// once read to its end, 0 before).
    pub offset: u64,
    /// Compressed (or a journal export): bytes of its decoded text after
    /// the last line read.
    pub decoded: Option<u64>,
    /// Where this run started.
    pub started_at: u64,
}

impl Mark {
    /// Input `source` read up to `offset` (a decoded one: up to `decoded`
    /// of its text), if it is a file (`identity`), read from `started_at`
    /// in this run; standard input has no mark.
    fn of(
        source: usize,
        identity: Option<(u64, u64)>,
        started_at: u64,
        offset: u64,
        decoded: Option<u64>,
    ) -> Option<Mark> {
        identity.map(|(dev, ino)| Mark {
            source,
            dev,
            ino,
            offset,
            decoded,
            started_at,
        })
    }
}

/// Where a file's mark puts it after `read` bytes: a plain file's byte,
/// or a decoded one's place in its text (`compressed`).
fn offset_of(compressed: bool, read: u64) -> (u64, Option<u64>) {
    match compressed {
        true => (0, Some(read)),
        false => (read, None),
    }
}

/// Where a stream read to its end, or to a read error (`failed`), is
/// marked: a compressed file read whole with its `size` too, so that the
/// next run skips it unread; one that failed (a truncated gzip file) where
/// its good lines end, all handed out before the error: they are stored,
/// and the next run must not count them again.
fn stream_end(compressed: bool, failed: bool, size: Option<u64>, read: u64) -> (u64, Option<u64>) {
    match (compressed, failed) {
        (true, false) => (size.unwrap_or(0), Some(read)),
        _ => offset_of(compressed, read),
    }
}

pub struct Outcome {
    pub engine: Engine,
    /// Every alert event, in the order the rules gave them (`--alerts`).
    pub alerts: Option<Vec<crate::model::Alert>>,
    /// The database writer, for what the caller does after the run
    /// (`--retain`, saying what was not stored).
    pub writer: Option<Writer>,
    /// The store failed: nothing after its last successful commit was
    /// written.
    pub store_error: Option<StoreError>,
    /// One message per input that could not be read (fully).
    pub errors: Vec<String>,
    /// Files read to their end (no checkpoint for stdin or a failed read).
    pub marks: Vec<Mark>,
    /// Per source (`Options::sources`), what was understood of it.
    pub inputs: Vec<InputCount>,
}

/// One input's lines, those not understood, and the first two of them.
#[derive(Clone, Debug, Default)]
pub struct InputCount {
    pub lines: u64,
    pub unparsed: u64,
    pub samples: Vec<String>,
}

enum Data {
    Owned(Vec<u8>),
    Mapped(Arc<memmap2::Mmap>, std::ops::Range<usize>),
}

impl Data {
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Owned(v) => v,
            Data::Mapped(m, r) => &m[r.clone()],
        }
    }

    /// Done with this chunk: recycle the buffer, or hand the mapping back
    /// with the chunk's result, for the ordering thread's [`Sweep`] to drop
    /// its pages from this process (they stay in the page cache) so that
    /// resident memory does not grow with the file. Not here as well: each
    /// `madvise(DONTNEED)` flushes the TLB of every core running this
    /// process, and one call a chunk instead of two was 3% of a run's CPU
    /// (see BENCHMARKS.md, "The log mapped ahead").
    fn release(self, free: &crossbeam_channel::Sender<Vec<u8>>) -> Option<Mapped> {
        match self {
            Data::Owned(v) => {
                let _ = free.send(v);
                None
            }
            Data::Mapped(m, r) => Some((m, r.end)),
        }
    }
}

/// Drops `m[from..to]`'s pages from this process (`from` on a page).
fn dont_need(m: &memmap2::Mmap, from: usize, to: usize) {
    if to > from {
        // SAFETY: a read-only shared file mapping; DONTNEED only drops the
        // pages, a later access reads them again.
        unsafe {
            let _ = m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from);
        }
    }
}

/// Maps `m[from..to]`'s pages into this process (`from` on a page), on
/// the reader's thread before the chunk is queued: a worker reading a
/// chunk it was handed would otherwise take a page fault every 64 KiB (the
/// fault-around window), 5% of a one-worker run's CPU, where one call maps
/// the whole chunk (reading it from disk first when it is not cached).
/// Linux 5.14 and later; elsewhere, or if it fails, the faults happen as
/// before. A hint only: no result depends on it.
fn populate(m: &memmap2::Mmap, from: usize, to: usize) {
    #[cfg(target_os = "linux")]
    if to > from {
        let _ = m.advise_range(memmap2::Advice::PopulateRead, from, to - from);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (m, from, to);
}

/// A mapped file and the end of a chunk of it.
type Mapped = (Arc<memmap2::Mmap>, usize);

/// Drops a mapped file's pages up to the end of the chunks applied, in
/// input order, every [`SWEEP_CHUNKS`] chunks and at the file's end: every
/// page below, not only the chunks' own. On a fault the
/// kernel maps the pages around it too, and a worker starting a chunk
/// mapped again pages of the one before, dropped already by the other
/// worker; nothing dropped them again. A year of a sparse log (858 MB,
/// `--alerts`) ended with 15 MB of it resident, growing by about 1 MB a
/// second. The only place a mapped chunk's pages are dropped (see
/// [`Data::release`]): a chunk stays resident from the reader's
/// [`populate`] until it is applied, at most the queued chunks and those
/// the ordering thread waits behind, and up to [`SWEEP_CHUNKS`] applied.
#[derive(Default)]
struct Sweep {
    /// The file being swept and how far.
    at: Option<Mapped>,
    /// Chunks applied since.
    waiting: usize,
    /// Files read side by side with it, each where its sweep stopped and
    /// its chunks applied since, taken up from there on its next turn
    /// (from its start, each turn walked every page below: two busy logs
    /// side by side took a fifth longer than the one log that holds
    /// both). Weak: a file no chunk holds is unmapped, as it always was.
    others: Vec<(std::sync::Weak<memmap2::Mmap>, usize, usize)>,
}

/// How far below a fault the kernel may map a file's pages: never past the
/// page table that maps the fault (2 MiB on x86-64 and arm64 with 4 KiB
/// pages), which bounds both the fault-around window (`fault_around_bytes`,
/// 64 KiB by default, aligned in the address space, not the file) and a
/// large page-cache folio mapped whole.
const FAULT_REACH: usize = 2 << 20;

/// The sweep drops pages once this many chunks are applied (and at a
/// file's end): each `madvise(DONTNEED)` interrupts every other core
/// running this process to flush its TLB, the workers' included, whatever
/// its length. Counted in chunks, not bytes: a log whose minutes are kept
/// is read in chunks a quarter the size, and holds more besides.
const SWEEP_CHUNKS: usize = 4;

impl Sweep {
    fn up_to(&mut self, (m, end): Mapped) {
        if !self
            .at
            .as_ref()
            .is_some_and(|(old, _)| Arc::ptr_eq(old, &m))
        {
            if let Some((old, at)) = self.at.take() {
                self.others.push((Arc::downgrade(&old), at, self.waiting));
            }
            self.others.retain(|(w, ..)| w.strong_count() > 0);
            let mine = (self.others.iter()).position(|(w, ..)| std::ptr::eq(w.as_ptr(), &*m));
            let Some(i) = mine else {
                // A file new to the sweep: from its start.
                dont_need(&m, 0, end);
                self.at = Some((m, end));
                self.waiting = 0;
                return;
            };
            let (_, at, waiting) = self.others.swap_remove(i);
            self.at = Some((m.clone(), at));
            self.waiting = waiting;
        }
        let at = self.at.as_ref().map_or(0, |(_, at)| *at);
        self.waiting += 1;
        if self.waiting < SWEEP_CHUNKS && end < m.len() {
            return;
        }
        // The next chunk's worker may have faulted after the last sweep,
        // mapping pages below where it stopped: reach back over them.
        let from = at.saturating_sub(FAULT_REACH) & !4095;
        dont_need(&m, from, end);
        self.at = Some((m, end));
        self.waiting = 0;
    }
}

/// Where the input stands once a chunk has been applied: what a commit may
/// record as the file's checkpoint.
#[derive(Clone, Debug)]
enum Position {
    /// A file, read up to here.
    At(Mark),
    /// Standard input: no checkpoint, any moment is a fine commit.
    Untracked,
}

struct Chunk {
    seq: u64,
    /// Index in `Options::sources`.
    source: usize,
    /// See [`EPOCH_BYTES`].
    epoch: u64,
    data: Data,
    /// Set on the first chunk of each input: its year reference.
    years: Option<YearResolver>,
    /// Lines of this chunk's input dated after this are skewed.
    max_time: Option<Millis>,
    after: Position,
    /// Of [`InFlight`], given back once the chunk is applied.
    tickets: usize,
}

/// A request line: its accept date and its host (the year of that host's
/// RFC 3164 dates), and when it was written (the time of an undated line
/// after it): what [`Clock::observe`] takes.
struct Dated {
    accepted: Millis,
    written: Millis,
    host: Box<[u8]>,
}

impl Dated {
    /// The last request line `eng` read, if any.
    fn last_of(eng: &Engine) -> Option<Dated> {
        Some(Dated {
            accepted: eng.last_request?,
            written: eng.last_written?,
            host: eng.last_request_host.get().into(),
        })
    }

    /// On the ordering thread, in input order: the line tells the clock
    /// (its host's year, the time of an undated line after it), the
    /// hosts' clocks and the reorder window how far the log has come.
    fn heard(&self, clock: &mut Clock, p: &mut Pipeline) {
        clock.observe(&self.host, self.accepted, self.written);
        p.engine.arrivals.see(self.accepted);
        p.advance(self.accepted);
    }
}

struct ChunkResult {
    seq: u64,
    /// The worker that read it.
    worker: usize,
    tickets: usize,
    source: usize,
    /// Lines taken and lines not understood in this chunk.
    lines: u64,
    unparsed: u64,
    epoch: u64,
    years: Option<YearResolver>,
    max_time: Option<Millis>,
    first_request: Option<Millis>,
    /// The earliest time a request line read so far was written (its
    /// accept date plus Ta, or Tt): where the health window may open.
    written_from: Option<Millis>,
    /// The last request line of the chunk.
    last_request: Option<Dated>,
    /// Each health event with the last request before it in the chunk.
    pending: Vec<(Option<Dated>, PendingHealth)>,
    skewed: Vec<crate::engine::Skewed>,
    samples: Vec<String>,
    /// The chunk's hosts and dates (their clocks, `engine::clocks`).
    arrivals: (Vec<crate::engine::clocks::Slot>, Option<Millis>),
    after: Position,
    /// The chunk's file mapping, released once applied.
    mapped: Option<Mapped>,
}

/// Chunks are grouped in epochs of at most this many bytes. A worker
/// keeps its per-minute rollups for a whole epoch (one histogram per server
/// and minute, not one per chunk) and hands them over when it takes its
/// first chunk of a later epoch (or, idle, once another worker has: see
/// [`Taken`]); a commit happens only at an epoch boundary, once every
/// worker that read a chunk of it has handed over, so that the rollups written are
/// exactly those of the lines before the checkpoint. The reader numbers
/// the epochs: a new one starts every `EPOCH_BYTES` of chunks, or sooner
/// when a worker holds more than its share of server-minutes (a
/// sparse log over a long span: memory follows the minutes held, not the
/// bytes).
const EPOCH_BYTES: usize = 32 * 1024 * 1024;

/// Bytes per chunk when minutes are kept (`--db`, `--alerts`) by two
/// workers, a quarter of [`input::CHUNK`]; see [`MinuteBudget`] for more
/// workers. The smallest step of an epoch is one chunk, and a chunk's
/// minutes are held four or five times over before they are stored: by its
/// worker, in the results queue, by this thread until every worker is past
/// the epoch, by the writer until the commit. A log with one request per
/// server and minute (months of a quiet service) opens a minute per line,
/// 13,500 for a 2 MiB chunk: with two workers a month of
/// `bench/sparse_log.py 30 50` peaked at 120 to 150 MB with `--db`, 76 MB
/// with this size. A dense log is read in these only until its workers
/// report calm ([`EpochClock::chunk_size`]).
const ROLLUP_CHUNK: usize = 512 * 1024;

/// Server-minutes each of two workers may hold before it asks for a
/// shorter epoch.
const CROWDED_MINUTES: usize = 8_000;

/// The smallest chunk however many workers share the budget: per-chunk
/// costs (a result, two channel hand-overs, a wake-up) stay a small part of
/// a chunk's parse.
const MIN_ROLLUP_CHUNK: usize = 64 * 1024;

/// An epoch this long (grown by calm hand-overs alone) switches the reader
/// to its own chunk size.
const CALM_EPOCH: usize = 4 * ROLLUP_CHUNK;

/// How the minutes held in flight are shared among the workers. Memory
/// follows the minutes held, and every worker holds its own: with the
/// two-worker sizes above for each, a month of sparse log with `--db` peaked
/// at 59 MB with two workers, 96 MB with four, 269 MB with eight and 367 MB
/// with sixteen (the default is one per core). So the two-worker budget is
/// split among them: each worker's chunks and crowding threshold shrink as
/// their number grows, and the total held stays about the same.
#[derive(Clone, Copy, Debug, PartialEq)]
struct MinuteBudget {
    /// Bytes per chunk while workers are crowded (calm, they are the
    /// reader's own: [`EpochClock::chunk_size`]).
    chunk: usize,
    /// Server-minutes a worker may hold before it asks for a shorter epoch.
    crowded: usize,
}

impl MinuteBudget {
    fn new(workers: usize, rollups: bool) -> MinuteBudget {
        if !rollups {
            // No minutes held: chunks as large as the reader likes.
            return MinuteBudget {
                chunk: input::CHUNK,
                crowded: usize::MAX,
            };
        }
        let shares = workers.max(2);
        MinuteBudget {
            chunk: (ROLLUP_CHUNK * 2 / shares).max(MIN_ROLLUP_CHUNK),
            crowded: CROWDED_MINUTES * 2 / shares,
        }
    }

    /// An epoch this small lets the next ones grow.
    fn calm(&self) -> usize {
        self.crowded / 4
    }

    /// Whether a worker's hand-over of `minutes` says the log is calm. Only
    /// if it read a chunk of that epoch: at the start, every worker but the
    /// first hands over an epoch it read nothing of, empty. Counted as calm,
    /// those fifteen (of sixteen workers) could double the epochs of a
    /// sparse log past `CALM_EPOCH` before the first crowded report came
    /// back, and the reader then queued chunks of 512 KiB, 3,400 minutes
    /// each (a month of sparse log peaked once in six runs at 158 MB).
    fn calm_hand_over(&self, ended: &Ended, minutes: usize) -> bool {
        ended.read && minutes < self.calm()
    }
}

/// A worker's side of the epochs: the one it holds minutes of.
#[derive(Default)]
struct Shift {
    current: u64,
    /// It read a chunk of `current`.
    read: bool,
}

/// An epoch a worker is done with.
#[derive(Debug, PartialEq)]
struct Ended {
    epoch: u64,
    /// The worker read a chunk of it (or else it holds nothing of it).
    read: bool,
}

impl Shift {
    /// The worker takes a chunk of `epoch`: the epoch it is done with, to
    /// hand over, when this one is later (the reader numbers epochs in
    /// order, and a worker's chunks come in order).
    fn take(&mut self, epoch: u64) -> Option<Ended> {
        let ended = self.skip_to(epoch);
        self.read = true;
        ended
    }

    /// Another worker took a chunk of `epoch` from the queue all share:
    /// this one will take none earlier (see [`Taken`]), so the epoch it
    /// holds, if earlier, is done with, though it read nothing since.
    fn skip_to(&mut self, epoch: u64) -> Option<Ended> {
        let ended = (epoch > self.current).then_some(Ended {
            epoch: self.current,
            read: self.read,
        });
        if ended.is_some() {
            (self.current, self.read) = (epoch, false);
        }
        ended
    }
}

/// The newest epoch any worker has taken a chunk of, from the queue all
/// share, and a nudge for each worker when it grows. A worker hands an
/// epoch over when it takes a chunk of a later one; taking chunks as they
/// come, a worker may take none for a while (eight workers on two cores:
/// the first awake after a pause take them all), and the ordering thread,
/// which holds an epoch's minutes until each worker that read it has
/// handed it over, held up to twice the memory. Nudged, an idle worker
/// hands its epoch over as soon as another has taken a later one: the
/// queue is first in, first out, and epochs grow with the chunks, so
/// whatever it takes next is of that epoch or later. (Waking every 2 ms
/// to look instead held more: a week of sparse log with sixteen workers
/// peaked at 68-90 MB, 52-74 MB nudged.)
struct Taken {
    epoch: AtomicU64,
    nudges: Vec<crossbeam_channel::Sender<()>>,
}

impl Taken {
    /// One nudge queue for each of `workers`, and their ends.
    fn new(workers: usize) -> (Taken, Vec<crossbeam_channel::Receiver<()>>) {
        let (nudges, ends) = (0..workers).map(|_| crossbeam_channel::bounded(1)).unzip();
        let taken = Taken {
            epoch: AtomicU64::new(0),
            nudges,
        };
        (taken, ends)
    }

    /// Worker `me` took a chunk of `epoch`: the others are nudged if it is
    /// the first of its epoch. (Release, with [`Taken::newest`]'s Acquire:
    /// a worker that sees the epoch takes its next chunk after this one.)
    fn took(&self, me: usize, epoch: u64) {
        use std::sync::atomic::Ordering::AcqRel;
        if self.epoch.fetch_max(epoch, AcqRel) < epoch {
            for (k, n) in self.nudges.iter().enumerate() {
                if k != me {
                    // Full: a nudge is already waiting, which will read
                    // the newest epoch.
                    let _ = n.try_send(());
                }
            }
        }
    }

    fn newest(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Epochs the reader may run ahead of the oldest one not closed yet (its
/// minutes judged and handed to the writer). The ordering thread holds an
/// epoch's minutes until every worker that read it has handed it over, and
/// a worker hands over when it next runs: eight workers on two cores, one
/// of them runnable but not running for a few milliseconds while the others
/// take chunk after chunk of a sparse log, and every minute of a week's
/// file waited for it (the tickets bound chunks read and not yet applied,
/// not minutes applied and not yet closed): `--db --threads 8` of a week of
/// `sparse_log` peaked at 53-81 MB beside two busy loops, once 102 MB, the
/// writer's map filling with all the week's minutes at once (heaptrack).
/// Only where one queue serves every worker ([`Taken`] nudges the idle
/// ones, so every epoch before the newest taken closes): a worker dealt
/// its chunks in turn may take none of the next epochs, and its queue
/// already stops the reader.
const EPOCHS_AHEAD: u64 = 4;

/// The reader's wait for [`EPOCHS_AHEAD`], and the ordering thread's word
/// that epochs closed.
struct EpochGate {
    /// Every epoch before this one is closed.
    closed: AtomicU64,
    reader: std::sync::OnceLock<std::thread::Thread>,
    /// One queue for all workers (see [`EPOCHS_AHEAD`]) and minutes kept.
    on: bool,
}

impl EpochGate {
    fn new(on: bool) -> EpochGate {
        EpochGate {
            closed: AtomicU64::new(0),
            reader: std::sync::OnceLock::new(),
            on,
        }
    }

    /// The reader waits until a chunk of `epoch` may be sent; `false`:
    /// stop reading (a worker failed, and its epoch would never close).
    fn wait(&self, epoch: u64, failed: &AtomicBool) -> bool {
        use std::sync::atomic::Ordering::{Acquire, Relaxed};
        if !self.on {
            return true;
        }
        let _ = self.reader.set(std::thread::current());
        while epoch >= self.closed.load(Acquire) + EPOCHS_AHEAD {
            if failed.load(Relaxed) {
                return false;
            }
            std::thread::park_timeout(std::time::Duration::from_millis(10));
        }
        true
    }

    /// Every epoch before `below` is closed.
    fn close(&self, below: u64) {
        use std::sync::atomic::Ordering::Release;
        if self.closed.fetch_max(below, Release) < below {
            if let Some(t) = self.reader.get() {
                t.unpark();
            }
        }
    }
}

/// Chunks queued for the workers, in all: four for each of two (fewer
/// stall a worker now and then), but one for each of eight or more. The
/// ordering thread holds an epoch's minutes until the slowest worker hands
/// it over, and the deeper the queues the further the slowest lags: with
/// sixteen workers and four each, a month of sparse log with `--db` held
/// 36,000-38,000 minutes there, 11,000-13,000 with one each. A buffer read
/// from standard input or gzip is held the same way (see [`OWNED_BYTES`]).
const QUEUED_CHUNKS: usize = 8;

/// Chunks queued for each of `workers`.
fn queue_depth(workers: usize) -> usize {
    (QUEUED_CHUNKS / workers.max(1)).clamp(1, 4)
}

/// Chunks queued for `workers` in all: [`QUEUED_CHUNKS`], give or take a
/// worker's share (three workers, two each: six).
fn queued_chunks(workers: usize) -> usize {
    workers.max(1) * queue_depth(workers)
}

/// How many chunks may be out at once, read and not yet applied by the
/// ordering thread: the reader waits for one to be applied before it
/// reads (and, for a mapped file, maps) another. With one queue for all,
/// nothing else keeps a fast worker from running ahead of a slow one
/// while the results it hands over wait, in memory and with their pages
/// mapped, for the slow one's chunk before them; dealt in turn, the slow
/// one's full queue stopped the reader. The chunks queued and one being
/// parsed by each worker: a result waiting for an earlier one holds its
/// chunk's place until that one is applied. Those are tickets: a chunk
/// takes one, or a worker's share while the minutes crowd
/// ([`InFlight::tickets`]).
struct InFlight {
    give: crossbeam_channel::Sender<()>,
    take: crossbeam_channel::Receiver<()>,
    /// A worker's share of the tickets.
    share: usize,
    /// A worker panicked: its chunk will never be applied.
    failed: AtomicBool,
}

impl InFlight {
    fn new(workers: usize) -> InFlight {
        let n = queued_chunks(workers) + workers;
        let (give, take) = crossbeam_channel::bounded(n);
        for _ in 0..n {
            let _ = give.send(());
        }
        InFlight {
            give,
            take,
            share: n / workers.max(1),
            failed: AtomicBool::new(false),
        }
    }

    /// The tickets a chunk takes: one, or with `crowding` a worker's share,
    /// so that no more chunks are out than workers. A small chunk of a
    /// sparse log holds thousands of minutes (two workers' chunks of 512
    /// KiB of `bench/sparse_log.py`, 3,200 each), and with one queue for
    /// all a fast worker runs as far ahead as the tickets allow while the
    /// ordering thread holds the minutes it hands over, waiting for the
    /// slow one's chunk before them. A week of it with `--db` and two
    /// workers, 12 runs each: 53-62 MB dealt in turn, 52-73 MB from one
    /// queue with a ticket a chunk, 46-59 MB with one chunk out a worker,
    /// in the same time. A dense log's chunks are calm and large, and take
    /// one: fewer out would leave its workers waiting.
    fn tickets(&self, crowding: bool) -> usize {
        match crowding {
            true => self.share,
            false => 1,
        }
    }

    /// Waits until a chunk of `tickets` may be read; `false`: stop
    /// reading (a worker failed, and the chunk it held would never make
    /// room).
    fn acquire(&self, tickets: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let mut got = 0;
        while got < tickets {
            match self
                .take
                .recv_timeout(std::time::Duration::from_millis(100))
            {
                Ok(()) => got += 1,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) if !self.failed.load(Relaxed) => {
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// A chunk of `tickets` was applied (or none was read after all).
    fn release(&self, tickets: usize) {
        for _ in 0..tickets {
            let _ = self.give.try_send(());
        }
    }
}

/// Marks a worker failed if it unwinds (see [`InFlight::acquire`]).
struct FailGuard<'a>(&'a AtomicBool);

impl Drop for FailGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The queues the reader sends chunks to (the k-th to `senders[k mod N]`)
/// and each worker's end: one queue shared by all (every sender and
/// receiver a handle of it), or with `dealt` one of its own for each
/// worker. As many chunks queued in all either way.
fn chunk_queues<T>(
    workers: usize,
    dealt: bool,
) -> (
    Vec<crossbeam_channel::Sender<T>>,
    Vec<crossbeam_channel::Receiver<T>>,
) {
    if dealt {
        (0..workers)
            .map(|_| crossbeam_channel::bounded(queue_depth(workers)))
            .unzip()
    } else {
        let (tx, rx) = crossbeam_channel::bounded(queued_chunks(workers));
        (0..workers).map(|_| (tx.clone(), rx.clone())).unzip()
    }
}

/// Bytes of input read into buffers (standard input, gzip) that the
/// workers hold, about, in all: each holds at least one chunk queued and
/// one being parsed, so these chunks shrink as workers grow (down to a
/// quarter MiB; two or four workers keep [`input::CHUNK`]). Sixteen workers
/// on standard input held 72 MB in 2 MiB chunks.
const OWNED_BYTES: usize = 8 * 1024 * 1024;

/// [`OWNED_BYTES`] for a mapped file, whose chunks are held the same way
/// (mapped by the reader, dropped once applied): sixteen workers peaked at
/// 97-100 MB in 2 MiB chunks. Twice the bytes: eight workers keep 2 MiB
/// (smaller chunks cost them 7% of a run in hand-overs).
const MAPPED_BYTES: usize = 2 * OWNED_BYTES;

/// Bytes per chunk when `workers` hold about `bytes` of input in all
/// ([`OWNED_BYTES`], [`MAPPED_BYTES`]).
fn chunk_share(bytes: usize, workers: usize) -> usize {
    (bytes / workers.max(1)).clamp(256 * 1024, input::CHUNK)
}

/// What workers tell the reader about the minutes they hold.
#[derive(Default)]
struct Crowding {
    /// A worker holds more than its [`MinuteBudget::crowded`].
    crowded: std::sync::atomic::AtomicBool,
    /// A worker handed over an epoch of few minutes: epochs may grow.
    calm: std::sync::atomic::AtomicBool,
}

/// Numbers the chunks' epochs (the reader's side of [`EPOCH_BYTES`]) and
/// sizes the chunks. Epochs start at one chunk and double up to
/// `EPOCH_BYTES` only as workers report epochs of few minutes; a crowded
/// worker ends the epoch and starts over at one chunk. The reader runs
/// ahead of the workers, so it grows on what they report, not on what it
/// has sent. Chunks are the budget's small ones from the start and while
/// workers are crowded, the reader's own size once they report calm: a
/// dense log, whatever the number of workers, is read in chunks whose
/// hand-overs cost nothing measurable (sixteen workers on two cores took
/// 1.2 s instead of 0.6 s over the 2M-line file in 64 KiB chunks).
struct EpochClock {
    epoch: u64,
    /// Bytes in the current epoch so far.
    filled: usize,
    /// The length of the current epoch, in bytes.
    length: usize,
    budget: MinuteBudget,
    crowding: Arc<Crowding>,
}

impl EpochClock {
    fn new(crowding: Arc<Crowding>, budget: MinuteBudget) -> EpochClock {
        EpochClock {
            epoch: 0,
            filled: 0,
            length: budget.chunk,
            budget,
            crowding,
        }
    }

    /// How many bytes the next chunk should hold: the reader's own size
    /// once epochs have doubled past a few small chunks (one calm hand-over
    /// among crowded ones does not count; a crowded one starts epochs over
    /// at one small chunk). The reader's size, as without minutes: a calm
    /// log holds few minutes a chunk whatever its size, and small chunks
    /// cost a dense log: at 512 KiB, four times the hand-overs and the
    /// pages dropped behind them (each drop a TLB shootdown on the other
    /// core), `analyze --db` of the 2M-line file spent 0.527 s of CPU,
    /// 0.488 s at 2 MiB.
    fn chunk_size(&self) -> usize {
        if self.length < CALM_EPOCH {
            self.budget.chunk
        } else {
            input::CHUNK
        }
    }

    /// Whether minutes are kept and the chunks are the budget's small
    /// ones: each may hold thousands of minutes (see [`InFlight::tickets`]).
    fn crowding(&self) -> bool {
        self.budget.crowded < usize::MAX && self.length < CALM_EPOCH
    }

    /// The epoch of the next chunk, `bytes` long.
    fn next(&mut self, bytes: usize) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let crowded = self.crowding.crowded.swap(false, Relaxed);
        if crowded {
            self.length = self.budget.chunk;
        }
        // A chunk that would not fit starts the next epoch (chunks end on
        // a line, a little short of their size: one still fills an epoch
        // of one).
        let full = self.filled + bytes > self.length;
        if self.filled > 0 && (full || crowded) {
            self.epoch += 1;
            self.filled = 0;
            if !crowded && self.crowding.calm.swap(false, Relaxed) {
                self.length = (self.length * 2).min(EPOCH_BYTES);
            }
        }
        self.filled += bytes;
        self.epoch
    }
}

enum FromWorker {
    // Boxed: a chunk result is ten times the size of an epoch hand-over,
    // and there is one per 2 MiB chunk.
    Chunk(Box<ChunkResult>),
    /// `rollups` of chunks of epoch `epoch`; the worker has no rollups left
    /// of epochs up to `complete`.
    Epoch {
        worker: usize,
        epoch: u64,
        complete: u64,
        rollups: Vec<Rollup>,
    },
}

/// Inputs above this size get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 50 * 1024 * 1024;

/// Where the reader hands chunks out: in order (`seq`), each in an epoch
/// and holding its tickets of [`InFlight`].
struct Handout<'s> {
    /// Dropped with the reader's end: the workers then stop.
    queues: Vec<crossbeam_channel::Sender<Chunk>>,
    in_flight: &'s InFlight,
    gate: &'s EpochGate,
    epochs: EpochClock,
    seq: u64,
    threads: usize,
}

impl Handout<'_> {
    /// About how long a mapped file's next chunk is.
    fn mapped_size(&self) -> usize {
        (self.epochs.chunk_size()).min(chunk_share(MAPPED_BYTES, self.threads))
    }

    /// Hands out `data`, of input `source` (a mapped chunk's pages mapped
    /// first, see [`populate`]); `false` when the run stops (a worker
    /// failed, or every worker is gone).
    fn hand(
        &mut self,
        source: usize,
        data: Data,
        years: Option<YearResolver>,
        max_time: Option<Millis>,
        after: Position,
    ) -> bool {
        let tickets = self.in_flight.tickets(self.epochs.crowding());
        if !self.in_flight.acquire(tickets) {
            return false;
        }
        let epoch = self.epochs.next(data.bytes().len());
        if !self.gate.wait(epoch, &self.in_flight.failed) {
            return false;
        }
        if let Data::Mapped(m, r) = &data {
            populate(m, r.start & !4095, r.end);
        }
        self.send(Chunk {
            seq: 0,
            source,
            epoch,
            data,
            years,
            max_time,
            after,
            tickets,
        })
    }

    /// Numbers `chunk` and queues it.
    fn send(&mut self, mut chunk: Chunk) -> bool {
        chunk.seq = self.seq;
        self.seq += 1;
        self.queues[chunk.seq as usize % self.threads]
            .send(chunk)
            .is_ok()
    }
}

/// At most this many files are read side by side (each open at once).
const SIDE_BY_SIDE: usize = 64;

/// Where a mapped file's reading ends: its last newline when a checkpoint
/// must not split a line still being written, else its end.
fn mapped_end(m: &memmap2::Mmap, begin: usize, hold_tail: bool) -> usize {
    match hold_tail {
        true => memchr::memrchr(b'\n', &m[begin..]).map_or(begin, |i| begin + i + 1),
        false => m.len(),
    }
}

/// The latest date a file's lines can have (`--max-skew`): not much after
/// it was last written (with `--year`, not before the end of that year).
fn latest_date(
    opened: &input::Opened,
    max_skew: Option<Millis>,
    year: Option<i64>,
) -> Option<Millis> {
    max_skew.map(|skew| {
        let year_end = year.map_or(0, |y| {
            crate::time::days_from_civil(y + 1, 1, 1) * 86_400_000
        });
        opened.written.max(year_end) + skew
    })
}

/// One of several inputs read side by side ([`side_by_side`]).
struct Lane {
    source: usize,
    text: Text,
    identity: Option<(u64, u64)>,
    started_at: u64,
    /// For the dates without a year: moved on as the lane is read (its
    /// first chunk carries it as it was opened).
    years: YearResolver,
    /// No chunk of it handed out yet.
    fresh: bool,
    max_time: Option<Millis>,
    /// The date of the next line (`None`: it has none).
    head: Option<Millis>,
}

/// What a lane reads from.
enum Text {
    /// A plain file, mapped, up to `end`: its chunks handed out in place.
    Mapped {
        m: Arc<memmap2::Mmap>,
        at: usize,
        end: usize,
    },
    /// A compressed file (logrotate's `haproxy.log.1.gz`), standard input,
    /// or a file not mapped (`--no-mmap`): read a chunk ahead, the lines
    /// from `at` not handed out yet.
    Stream(Box<Stream>),
}

/// What reading inputs side by side tells at its end, as the reader
/// reading them one after the other does.
#[derive(Default)]
struct Told {
    marks: Vec<Mark>,
    errors: Vec<String>,
    /// Lines too long for a chunk, skipped.
    oversized: u64,
}

struct Stream {
    feed: Feed,
    buf: Vec<u8>,
    at: usize,
    /// Bytes the chunker handed out, up to the end of `buf`, and lines it
    /// skipped as too long.
    consumed: u64,
    oversized: u64,
    /// Read through a decoder: its marks count the decoded text.
    compressed: bool,
    /// Size on disk (a compressed file read to its end is marked with it).
    size: Option<u64>,
    name: String,
    /// A read failed (told): marked where its good lines end.
    failed: bool,
}

/// Where a stream lane's chunks come from.
enum Feed {
    /// Read on the reader's thread (standard input: a thread of its own
    /// could wait on it forever once the run stops).
    Here(input::Chunker<Box<dyn std::io::Read + Send>>),
    /// Read a chunk ahead on a thread of the lane's own: a file's decoder.
    /// On the reader's thread, two compressed logs side by side took 32%
    /// longer than one after the other (the reader, inflating both, was
    /// the whole run's bound and waited besides on the small chunks' hand
    /// outs); see BENCHMARKS.md.
    Thread(crossbeam_channel::Receiver<Fed>),
}

/// A chunk a lane's thread read, and its chunker's counts after it.
struct Fed {
    chunk: std::io::Result<Option<Vec<u8>>>,
    consumed: u64,
    oversized: u64,
}

impl Fed {
    /// `chunker`'s next chunk of whole lines (of about `size` bytes, into
    /// `spare`), and its counts after it: what a lane reads, on its own
    /// thread or the reader's.
    fn read(
        chunker: &mut input::Chunker<Box<dyn std::io::Read + Send>>,
        size: usize,
        spare: Vec<u8>,
    ) -> Fed {
        chunker.size = size;
        let chunk = chunker.next_chunk_with(spare);
        Fed {
            chunk,
            consumed: chunker.consumed,
            oversized: chunker.oversized,
        }
    }
}

impl Feed {
    /// The next chunk of whole lines (of about `size` bytes, into a
    /// `spare` buffer), and the chunker's counts after it (`counts`, those
    /// after the last chunk, if its thread ended without a word: it
    /// panicked, which the run's scope then says).
    fn next(&mut self, size: usize, spare: impl FnOnce() -> Vec<u8>, counts: (u64, u64)) -> Fed {
        match self {
            Feed::Here(c) => Fed::read(c, size, spare()),
            Feed::Thread(rx) => rx.recv().unwrap_or_else(|_| Fed {
                chunk: Err(std::io::Error::other("its reading thread ended")),
                consumed: counts.0,
                oversized: counts.1,
            }),
        }
    }
}

/// A file's chunker read on a thread of its own, handing each chunk over
/// when asked (the next is then read while that one is parsed).
fn read_ahead<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    mut chunker: input::Chunker<Box<dyn std::io::Read + Send>>,
    size: usize,
    free: crossbeam_channel::Receiver<Vec<u8>>,
) -> crossbeam_channel::Receiver<Fed> {
    let (tx, rx) = crossbeam_channel::bounded(0);
    scope.spawn(move || {
        loop {
            let fed = Fed::read(&mut chunker, size, free.try_recv().unwrap_or_default());
            let more = matches!(fed.chunk, Ok(Some(_)));
            // Sent back when the lane is gone (the run stopped): done.
            if tx.send(fed).is_err() || !more {
                return;
            }
        }
    });
    rx
}

/// A stream lane's chunks: its share of the bytes chunks of streams hold,
/// split among the streams read together (64 lanes of full-size chunks
/// would hold 128 MiB).
fn stream_chunk(out: &Handout, streams: usize) -> usize {
    (out.epochs.chunk_size()).min(chunk_share(OWNED_BYTES / streams.max(1), out.threads))
}

impl Lane {
    /// The lanes of the inputs opened at once: one read to its end already
    /// (its checkpoint) is only marked, one that failed to open is told.
    #[allow(clippy::too_many_arguments)]
    fn all(
        opened: Vec<std::io::Result<input::Opened>>,
        sources: &[Source],
        starts: &[crate::store::Resume],
        hold_tail: bool,
        max_skew: Option<Millis>,
        year: Option<i64>,
        told: &mut Told,
    ) -> Vec<Lane> {
        let mut lanes = Vec::new();
        for (source, o) in opened.into_iter().enumerate() {
            let o = match o {
                Ok(o) => o,
                Err(e) => {
                    told.errors.push(format!("{}: {e}", sources[source].name()));
                    continue;
                }
            };
            let max_time = latest_date(&o, max_skew, year);
            let (identity, started_at) = (o.identity, o.start);
            let text = match o.body {
                input::Body::Done(decoded) => {
                    let offset = starts.get(source).copied().unwrap_or_default().offset;
                    (told.marks).extend(Mark::of(source, identity, started_at, offset, decoded));
                    continue;
                }
                input::Body::Mapped(m) => {
                    let at = o.start as usize;
                    let end = mapped_end(&m, at, hold_tail);
                    if at >= end {
                        let mark = Mark::of(source, identity, started_at, end as u64, None);
                        told.marks.extend(mark);
                        continue;
                    }
                    Text::Mapped {
                        m: Arc::new(m),
                        at,
                        end,
                    }
                }
                input::Body::Stream(r) => {
                    let mut chunker = input::Chunker::new(r);
                    // As one read alone ([`run`]'s reader says why).
                    chunker.hold_tail = hold_tail && !o.compressed && identity.is_some();
                    Text::Stream(Box::new(Stream {
                        feed: Feed::Here(chunker),
                        buf: Vec::new(),
                        at: 0,
                        consumed: 0,
                        oversized: 0,
                        compressed: o.compressed,
                        size: o.size,
                        name: sources[source].name(),
                        failed: false,
                    }))
                }
            };
            let mut lane = Lane {
                source,
                text,
                identity,
                started_at,
                years: o.years,
                fresh: true,
                max_time,
                head: None,
            };
            lane.head = lane.next_date();
            lanes.push(lane);
        }
        lanes
    }

    /// The text read and where the lane is in it.
    fn text(&self) -> &[u8] {
        match &self.text {
            Text::Mapped { m, end, .. } => &m[..*end],
            Text::Stream(s) => &s.buf,
        }
    }

    fn at(&self) -> usize {
        match &self.text {
            Text::Mapped { at, .. } => *at,
            Text::Stream(s) => s.at,
        }
    }

    fn is_open(&self) -> bool {
        self.at() < self.text().len()
    }

    /// The date of the next line, if there is one and it has a date (a
    /// stream's before its first chunk is read: none).
    fn next_date(&self) -> Option<Millis> {
        self.is_open().then(|| self.date_at(self.at())).flatten()
    }

    /// Where reading stands with the text up to `cut` handed out.
    fn mark(&self, cut: usize) -> Option<Mark> {
        let mark = |offset, decoded| {
            Mark::of(self.source, self.identity, self.started_at, offset, decoded)
        };
        match &self.text {
            Text::Mapped { .. } => mark(cut as u64, None),
            Text::Stream(s) => {
                let held = (s.buf.len() - cut) as u64;
                let (offset, decoded) =
                    offset_of(s.compressed, self.started_at + s.consumed - held);
                mark(offset, decoded)
            }
        }
    }

    /// After a turn: a stream read to the end of its chunk reads its next
    /// one (into a `spare` buffer); a lane at its end, or failed, is marked
    /// (and its error told).
    fn fill(&mut self, size: usize, spare: impl FnOnce() -> Vec<u8>, told: &mut Told) {
        let s = match &mut self.text {
            Text::Stream(s) => s,
            // A mapped file read to its end.
            Text::Mapped { at, end, .. } => {
                if at >= end {
                    let at = *at;
                    told.marks.extend(self.mark(at));
                }
                return;
            }
        };
        if s.at < s.buf.len() {
            return;
        }
        let fed = s.feed.next(size, spare, (s.consumed, s.oversized));
        (s.consumed, s.oversized) = (fed.consumed, fed.oversized);
        match fed.chunk {
            Ok(Some(buf)) => {
                (s.buf, s.at) = (buf, 0);
                return;
            }
            Ok(None) => {}
            Err(e) => {
                told.errors.push(format!("{}: {e}", s.name));
                s.failed = true;
            }
        }
        (s.buf, s.at) = (Vec::new(), 0);
        let read = self.started_at + s.consumed;
        let (offset, decoded) = stream_end(s.compressed, s.failed, s.size, read);
        let (source, identity, started_at) = (self.source, self.identity, self.started_at);
        told.marks
            .extend(Mark::of(source, identity, started_at, offset, decoded));
        told.oversized += s.oversized;
    }

    /// The date of the line that starts at `at`.
    fn date_at(&self, at: usize) -> Option<Millis> {
        let line = &self.text()[at..];
        let line = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
        input::line_time(line, &self.years)
    }

    /// The first line of `text[from..to]` (`from` a line start) dated
    /// after `limit`, or `to`. A log's lines are in time order, near
    /// enough (a cut only says which lane goes first): halving the bytes
    /// finds it with a few dates read, not one a line.
    fn first_after(&self, from: usize, to: usize, limit: Millis) -> usize {
        let m = self.text();
        let after = |p: usize| self.date_at(p).is_some_and(|t| t > limit);
        let line_end = |p: usize| memchr::memchr(b'\n', &m[p..to]).map_or(to, |i| p + i + 1);
        // Every line that starts before `lo` is not after `limit`; the
        // first that is starts in `lo..=hi` (`hi` itself: none is).
        let (mut lo, mut hi) = (from, to);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            // The first line start at or after `mid`, or `lo`'s own.
            let p = match mid > lo {
                true => memchr::memchr(b'\n', &m[mid - 1..hi]).map_or(hi, |i| mid + i),
                false => lo,
            };
            let p = if p >= hi { lo } else { p };
            if after(p) {
                hi = p;
            } else {
                lo = line_end(p);
            }
        }
        hi
    }
}

/// Several inputs read side by side, in the time their lines say: the
/// next chunk is always the lane's whose next line is earliest (an undated
/// one at once), cut before its first line more than `slack` after the
/// next line of every other lane, so that the lines reach the ordering
/// thread in time order within the reorder window. One input's lines stay
/// in their order, and each lane's checkpoint moves with its own chunks.
/// A mapped file's chunk is handed out in place; a stream's, from the
/// chunk it read ahead (copied when a turn ends inside it).
fn side_by_side(
    mut lanes: Vec<Lane>,
    out: &mut Handout,
    slack: Millis,
    (free, counter): (&crossbeam_channel::Receiver<Vec<u8>>, &AtomicU64),
    pb: &indicatif::ProgressBar,
    told: &mut Told,
) {
    let streams = (lanes.iter())
        .filter(|l| matches!(l.text, Text::Stream(_)))
        .count();
    let size = stream_chunk(out, streams);
    // The lanes' threads end when their lanes are dropped, before the
    // scope waits for them (the run stopped) or at their files' ends.
    std::thread::scope(|scope| {
        for lane in &mut lanes {
            let Text::Stream(s) = &mut lane.text else {
                continue;
            };
            if lane.identity.is_none() {
                continue;
            }
            let placeholder = Feed::Thread(crossbeam_channel::never());
            if let Feed::Here(chunker) = std::mem::replace(&mut s.feed, placeholder) {
                s.feed = Feed::Thread(read_ahead(scope, chunker, size, free.clone()));
            }
        }
        take_turns(lanes, (out, streams), slack, (free, counter), pb, told)
    })
}

/// [`side_by_side`]'s turns, its lanes' threads started (`streams`: the
/// lanes that share the chunks of streams, see [`stream_chunk`]).
fn take_turns(
    mut lanes: Vec<Lane>,
    (out, streams): (&mut Handout, usize),
    slack: Millis,
    (free, counter): (&crossbeam_channel::Receiver<Vec<u8>>, &AtomicU64),
    pb: &indicatif::ProgressBar,
    told: &mut Told,
) {
    for lane in &mut lanes {
        lane.fill(stream_chunk(out, streams), Vec::new, told);
        lane.head = lane.next_date();
    }
    loop {
        let open = || (0..lanes.len()).filter(|&i| lanes[i].is_open());
        let Some(next) = open().min_by_key(|&i| (lanes[i].head.unwrap_or(Millis::MIN), i)) else {
            return;
        };
        let limit = (open().filter(|&i| i != next))
            .filter_map(|i| lanes[i].head)
            .min()
            .map(|t| t.saturating_add(slack));
        let lane = &mut lanes[next];
        let (text, at) = (lane.text(), lane.at());
        let r = match &lane.text {
            Text::Mapped { .. } => input::mapped_chunk(text, at, out.mapped_size()),
            Text::Stream(_) => at..text.len(),
        };
        // One line at least, whatever its date.
        let first_end =
            (memchr::memchr(b'\n', &text[r.start..r.end])).map_or(r.end, |i| r.start + i + 1);
        let cut = match limit {
            Some(limit) if first_end < r.end => {
                // Not between the parts of a line a runtime cut up (it
                // dates each part as it reads it): one worker joins them.
                let cut = lane.first_after(first_end, r.end, limit);
                r.start + input::parts_kept_whole(&lane.text()[r.start..cut])
            }
            _ => r.end,
        };
        let after = lane.mark(cut).map_or(Position::Untracked, Position::At);
        let first = std::mem::take(&mut lane.fresh).then(|| lane.years.clone());
        let (source, max_time) = (lane.source, lane.max_time);
        let sent = match &mut lane.text {
            Text::Mapped { m, at, .. } => {
                *at = cut;
                let data = Data::Mapped(m.clone(), r.start..cut);
                out.hand(source, data, first, max_time, after)
            }
            Text::Stream(s) => {
                let data = match (r.start, cut) {
                    (0, cut) if cut == s.buf.len() => std::mem::take(&mut s.buf),
                    _ => {
                        let mut data = free.try_recv().unwrap_or_default();
                        data.clear();
                        data.extend_from_slice(&s.buf[r.start..cut]);
                        data
                    }
                };
                s.at = cut.min(s.buf.len());
                out.hand(source, Data::Owned(data), first, max_time, after)
            }
        };
        if !sent {
            return;
        }
        let spare = || free.try_recv().unwrap_or_default();
        lane.fill(stream_chunk(out, streams), spare, told);
        lane.head = lane.next_date();
        if let Some(t) = lane.head {
            lane.years.observe(t);
        }
        let mapped: usize = (lanes.iter())
            .map(|l| match l.text {
                Text::Mapped { at, .. } => at,
                Text::Stream(_) => 0,
            })
            .sum();
        pb.set_position(mapped as u64 + counter.load(std::sync::atomic::Ordering::Relaxed));
    }
}

fn progress_bar(sources: &[Source], wanted: bool) -> indicatif::ProgressBar {
    let total: u64 = sources
        .iter()
        .filter_map(|s| match s {
            Source::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Source::Stdin => None,
        })
        .sum();
    if !wanted || total < PROGRESS_MIN_BYTES {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    pb
}

pub fn run(opts: Options, writer: Option<Writer>) -> Outcome {
    let threads = opts.reading.threads.max(1);
    let (res_tx, res_rx) = crossbeam_channel::bounded::<FromWorker>(threads * 2);
    // Chunk buffers go back to the reader once parsed: at most the few in
    // flight are ever allocated.
    let (free_tx, free_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
    let counter = Arc::new(AtomicU64::new(0));
    let pb = progress_bar(&opts.sources, opts.reading.progress);
    // Rollups feed the store and the degradation alert rules.
    let rollups = writer.is_some() || opts.reading.alerts.is_some();
    // Whichever worker is free takes the next chunk, from one queue: the
    // cores of a VM do not run at one speed (on a 2-core EPYC VM, one
    // worker took 1.5x the other's CPU time for the same lines), and a
    // worker dealt every other chunk then waits for the slower one; one
    // queue took the 2M-line run from 0.262 to 0.230 s while the VM's
    // cores ran apart, and changed nothing while they ran alike (see
    // BENCHMARKS.md). How far ahead a worker may run is [`InFlight`]'s.
    // The figures do not depend on which worker read what (they add up).
    // A bounded `--by` table deals the k-th chunk to worker k mod N all the
    // same: its rows past its bound depend on what each worker read (every
    // run keeps the same rows). A run that keeps minutes (`--db`,
    // `--alerts`) takes them as they come too (`--db` on the 2M-line file
    // 0.293 -> 0.271 s); three things keep the minutes the ordering thread
    // holds as few as dealt in turn: an epoch waits only for the workers
    // that read it ([`Epochs::readers`]), an idle worker is nudged to hand
    // its epoch over ([`Taken`]), and small chunks of crowded minutes are
    // out one a worker ([`InFlight::tickets`]).
    let dealt = opts.reading.by.as_ref().is_some_and(|b| b.by.bounded());
    let (chunk_tx, chunk_rx) = chunk_queues::<Chunk>(threads, dealt);
    let (taken, nudge_rx) = match rollups && !dealt {
        true => {
            let (t, ends) = Taken::new(threads);
            (Some(t), ends)
        }
        false => (None, Vec::new()),
    };
    let budget = MinuteBudget::new(threads, rollups);
    let new_engine = || {
        let mut e = Engine::new(opts.reading.patterns.clone(), opts.reading.filter.clone());
        // Two per input at least: `analyze` shows them when an input is
        // mostly not understood.
        e.sample_limit = opts.reading.show_unparsed.max(INPUT_SAMPLES);
        e.rollups = rollups;
        e.server_stats = opts.reading.server_stats || rollups;
        e.cap = opts.reading.cap.clone();
        e.zone = opts.reading.zone.clone();
        e.breakdown = opts.reading.by.clone();
        e.percentiles =
            (opts.reading.percentiles.clone()).map(crate::engine::percentiles::Percentiles::new);
        e.holes = (opts.reading.holes).map(|(gap, n)| crate::engine::holes::Holes::new(gap, n));
        e.select = opts.reading.select.clone();
        e
    };
    let mut main = new_engine();
    main.health
        .seed(opts.seed.iter().cloned(), opts.reading.reorder_window);
    main.order = crate::engine::order::Reorder::new(opts.reading.reorder_window);
    let alerts = opts
        .reading
        .alerts
        .clone()
        .map(crate::alerts::Evaluator::new);
    let mut p = Pipeline::new(main, alerts, writer);
    p.keep_alerts = true;
    // No minute is whole before the first epoch closes.
    p.minutes_whole_to = Some(Millis::MIN);
    let mut store_error = None;
    // With a database, the rules carry on from the last run (a log read in
    // pieces gives the alerts of one reading).
    if let Err(e) = p.restore_alerts() {
        store_error = Some(e);
    }
    let crowding = Arc::new(Crowding::default());
    let in_flight = &InFlight::new(threads);
    let gate = &EpochGate::new(taken.is_some());
    let mut inputs = vec![InputCount::default(); opts.sources.len()];

    let (errors, oversized, marks, workers, mut epochs_left) = std::thread::scope(|s| {
        let reader = {
            let epochs = EpochClock::new(crowding.clone(), budget);
            let (sources, year, counter, pb, free_rx, mmap, starts, hold_tail) = (
                &opts.sources,
                opts.reading.year,
                counter.clone(),
                pb.clone(),
                free_rx,
                opts.reading.mmap,
                &opts.starts,
                opts.hold_tail,
            );
            let max_skew = opts.reading.max_skew;
            // A lane's chunk runs this far past the next line of the
            // others: a quarter of the window, which dates to the second
            // (RFC 3164's) stretch by up to a second more.
            let slack = (opts.reading.reorder_window / 4).clamp(10, 250);
            s.spawn(move || {
                let mut errors = Vec::new();
                let mut oversized = 0;
                let mut marks = Vec::new();
                let mut out = Handout {
                    queues: chunk_tx,
                    in_flight,
                    gate,
                    epochs,
                    seq: 0,
                    threads,
                };
                let open = |idx: usize, src: &Source| {
                    let start = starts.get(idx).copied().unwrap_or_default();
                    let at = (start.offset, start.decoded);
                    input::open(src, year, mmap, at, counter.clone())
                };
                // Several logs (each load balancer's) side by side in time:
                // one after the other, the fleet rules saw one host's whole
                // day before the next's.
                if (2..=SIDE_BY_SIDE).contains(&sources.len()) {
                    let all = (sources.iter().enumerate())
                        .map(|(idx, src)| open(idx, src))
                        .collect();
                    let mut told = Told::default();
                    let lanes =
                        Lane::all(all, sources, starts, hold_tail, max_skew, year, &mut told);
                    let reading = (&free_rx, &*counter);
                    side_by_side(lanes, &mut out, slack, reading, &pb, &mut told);
                    return (told.errors, told.oversized, told.marks);
                }
                for (idx, src) in sources.iter().enumerate() {
                    let start = starts.get(idx).copied().unwrap_or_default();
                    let opened = match open(idx, src) {
                        Ok(o) => o,
                        Err(e) => {
                            errors.push(format!("{}: {e}", src.name()));
                            continue;
                        }
                    };
                    let max_time = latest_date(&opened, max_skew, year);
                    let mut years = Some(opened.years);
                    let mark = |offset: u64, decoded: Option<u64>| {
                        Mark::of(idx, opened.identity, opened.start, offset, decoded)
                    };
                    // Where reading stands after `read` bytes: a plain
                    // file's byte, or a decoded one's place in its text.
                    let place = |read: u64| {
                        let (offset, decoded) = offset_of(opened.compressed, read);
                        mark(offset, decoded)
                    };
                    let reader = match opened.body {
                        input::Body::Done(decoded) => {
                            marks.extend(mark(start.offset, decoded));
                            continue;
                        }
                        input::Body::Mapped(m) => {
                            let m = Arc::new(m);
                            let begin = opened.start as usize;
                            let end = mapped_end(&m, begin, hold_tail);
                            let mut at = begin;
                            while at < end {
                                let r = input::mapped_chunk(&m[..end], at, out.mapped_size());
                                at = r.end;
                                let pos = r.end as u64;
                                let after = place(pos).map_or(Position::Untracked, Position::At);
                                let data = Data::Mapped(m.clone(), r);
                                if !out.hand(idx, data, years.take(), max_time, after) {
                                    return (errors, oversized, marks);
                                }
                                pb.set_position(pos);
                            }
                            marks.extend(place(end as u64));
                            continue;
                        }
                        input::Body::Stream(r) => r,
                    };
                    let mut chunker = input::Chunker::new(reader);
                    // Only a plain file's checkpoint leaves a last line
                    // without its newline to the next run: a compressed file
                    // is not written to as it is read, and standard input or
                    // a pipe has no next run to read it (held, it was lost).
                    chunker.hold_tail =
                        hold_tail && !opened.compressed && opened.identity.is_some();
                    let mut failed = false;
                    loop {
                        chunker.size = out
                            .epochs
                            .chunk_size()
                            .min(chunk_share(OWNED_BYTES, threads));
                        let tickets = in_flight.tickets(out.epochs.crowding());
                        if !in_flight.acquire(tickets) {
                            return (errors, oversized, marks);
                        }
                        let spare = free_rx.try_recv().unwrap_or_default();
                        let next = chunker.next_chunk_with(spare);
                        if !matches!(next, Ok(Some(_))) {
                            in_flight.release(tickets);
                        }
                        match next {
                            Ok(Some(data)) => {
                                let after = place(opened.start + chunker.consumed)
                                    .map_or(Position::Untracked, Position::At);
                                let epoch = out.epochs.next(data.len());
                                if !gate.wait(epoch, &in_flight.failed) {
                                    return (errors, oversized, marks);
                                }
                                let chunk = Chunk {
                                    seq: 0,
                                    source: idx,
                                    epoch,
                                    data: Data::Owned(data),
                                    years: years.take(),
                                    max_time,
                                    after,
                                    tickets,
                                };
                                if !out.send(chunk) {
                                    return (errors, oversized, marks);
                                }
                                pb.set_position(counter.load(std::sync::atomic::Ordering::Relaxed));
                            }
                            Ok(None) => break,
                            Err(e) => {
                                errors.push(format!("{}: {e}", src.name()));
                                failed = true;
                                break;
                            }
                        }
                    }
                    oversized += chunker.oversized;
                    let read = opened.start + chunker.consumed;
                    let (offset, decoded) =
                        stream_end(opened.compressed, failed, opened.size, read);
                    marks.extend(mark(offset, decoded));
                }
                (errors, oversized, marks)
            })
        };
        let mut nudges = nudge_rx.into_iter();
        let workers: Vec<_> = (chunk_rx.into_iter().enumerate())
            .map(|(worker, rx)| {
                let (tx, free) = (res_tx.clone(), free_tx.clone());
                let crowding = crowding.clone();
                let mut eng = new_engine();
                // The workers' URL or client summaries share the bound: the
                // merged one is no larger than one run on a single thread.
                if let Some(b) = &mut eng.breakdown {
                    b.max_bytes /= threads;
                }
                let nudged = nudges.next().unwrap_or_else(crossbeam_channel::never);
                let taken = taken.as_ref();
                s.spawn(move || {
                    let _failed = FailGuard(&in_flight.failed);
                    let mut shift = Shift::default();
                    // An epoch this worker is done with: its minutes, and
                    // that it holds none of epochs up to `complete`.
                    let hand_over = |eng: &mut Engine, ended: Ended, complete: u64| {
                        let rollups = eng.aggregates.drain_minutes();
                        if budget.calm_hand_over(&ended, rollups.len()) {
                            crowding
                                .calm
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        let msg = FromWorker::Epoch {
                            worker,
                            epoch: ended.epoch,
                            complete,
                            rollups,
                        };
                        tx.send(msg).is_ok()
                    };
                    loop {
                        // A chunk queued is taken at once; a select of the
                        // queue and the nudges only when there is none (a
                        // select for every chunk cost the two-worker run
                        // 7% of its time, 0.226 -> 0.243 s).
                        use crossbeam_channel::TryRecvError::Empty;
                        let chunk = match (rx.try_recv(), taken) {
                            (Ok(chunk), _) => chunk,
                            (Err(Empty), None) => match rx.recv() {
                                Ok(chunk) => chunk,
                                Err(_) => break,
                            },
                            (Err(Empty), Some(taken)) => crossbeam_channel::select! {
                                recv(rx) -> chunk => match chunk {
                                    Ok(chunk) => chunk,
                                    Err(_) => break,
                                },
                                recv(nudged) -> _ => {
                                    let newest = taken.newest();
                                    if let Some(ended) = shift.skip_to(newest) {
                                        if !hand_over(&mut eng, ended, newest - 1) {
                                            break;
                                        }
                                    }
                                    continue;
                                }
                            },
                            (Err(_), _) => break,
                        };
                        if let Some(t) = taken {
                            t.took(worker, chunk.epoch);
                        }
                        if let Some(ended) = shift.take(chunk.epoch).filter(|_| rollups) {
                            if !hand_over(&mut eng, ended, chunk.epoch - 1) {
                                break;
                            }
                        }
                        (eng.last_request, eng.last_written) = (None, None);
                        eng.max_time = chunk.max_time;
                        let (lines_before, unparsed_before) =
                            (eng.counters.lines, eng.counters.unparsed);
                        let mut r = ChunkResult {
                            seq: chunk.seq,
                            worker,
                            tickets: chunk.tickets,
                            source: chunk.source,
                            lines: 0,
                            unparsed: 0,
                            epoch: chunk.epoch,
                            years: chunk.years,
                            max_time: chunk.max_time,
                            first_request: None,
                            written_from: None,
                            last_request: None,
                            pending: Vec::new(),
                            skewed: Vec::new(),
                            samples: Vec::new(),
                            arrivals: Default::default(),
                            after: chunk.after.clone(),
                            mapped: None,
                        };
                        let samples_before = eng.unparsed_samples.len();
                        for line in input::lines(chunk.data.bytes()) {
                            if let Some(p) = eng.ingest_line(line) {
                                r.pending.push((Dated::last_of(&eng), p));
                            }
                            if r.first_request.is_none() {
                                r.first_request = eng.last_request;
                            }
                        }
                        // The reader ends a chunk after a line's last part.
                        eng.end_of_input();
                        r.written_from = eng.written_from();
                        r.last_request = Dated::last_of(&eng);
                        r.lines = eng.counters.lines - lines_before;
                        r.unparsed = eng.counters.unparsed - unparsed_before;
                        r.skewed = std::mem::take(&mut eng.skewed);
                        r.arrivals = eng.arrivals.take();
                        r.mapped = chunk.data.release(&free);
                        if rollups && eng.aggregates.open_minutes() > budget.crowded {
                            crowding
                                .crowded
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        // Samples go back for ordering; the worker keeps
                        // collecting up to the limit per chunk.
                        r.samples = eng.unparsed_samples.split_off(samples_before);
                        if tx.send(FromWorker::Chunk(Box::new(r))).is_err() {
                            break;
                        }
                    }
                    if rollups {
                        let last = Ended {
                            epoch: shift.current,
                            read: shift.read,
                        };
                        hand_over(&mut eng, last, u64::MAX);
                        eng.aggregates.release_minute_room();
                    }
                    eng
                })
            })
            .collect();
        drop(res_tx);

        // Ordering: apply each chunk's health events in input order.
        let mut waiting: BTreeMap<u64, ChunkResult> = BTreeMap::new();
        let mut next = 0u64;
        let zone = &opts.reading.zone;
        let mut clock = Clock::new(YearResolver::new(1970, None)).with_zone(zone.clone());
        let mut epochs = Epochs::new(threads);
        let mut sweep = Sweep::default();
        for msg in res_rx {
            match msg {
                FromWorker::Chunk(r) => {
                    waiting.insert(r.seq, *r);
                }
                FromWorker::Epoch {
                    worker,
                    epoch,
                    complete,
                    rollups,
                } => {
                    epochs.rollups.entry(epoch).or_default().extend(rollups);
                    epochs.complete[worker] = Some(complete);
                    if let Some(e) = epochs.last_applied {
                        epochs.commit_if_due(&mut p, e, &mut store_error);
                    }
                    gate.close(epochs.closed);
                }
            }
            while let Some(head) = waiting.get(&next) {
                if epochs.last_applied.is_some_and(|e| head.epoch > e) {
                    // The first chunk of a later epoch: every chunk before
                    // it is applied, none of its own epoch is. The one
                    // moment a commit stores the health state of exactly
                    // the lines before its checkpoint; when one is due, the
                    // chunk waits for the workers that read the epochs
                    // applied to hand them over (they do as soon as they
                    // take a chunk of a later epoch, or, idle, are nudged:
                    // see [`Taken`]; dealt in turn, the chunks out after
                    // this one go to each of the others).
                    let wait = !epochs.commit_if_due(&mut p, head.epoch, &mut store_error);
                    gate.close(epochs.closed);
                    if wait {
                        break;
                    }
                }
                let Some(r) = waiting.remove(&next) else {
                    break;
                };
                next += 1;
                in_flight.release(r.tickets);
                if let Some(y) = r.years {
                    let untimed = clock.untimed;
                    clock = Clock::new(y).with_zone(zone.clone());
                    clock.untimed = untimed;
                }
                if let Some(f) = r.first_request.filter(|&t| p.engine.filter.in_time(t)) {
                    p.engine.see_accepted(f);
                }
                if let Some(w) = r.written_from {
                    p.engine.see_written(w);
                }
                p.engine.max_time = r.max_time;
                let room = crate::engine::SKEWED_KEPT.saturating_sub(p.engine.skewed.len());
                p.engine.skewed.extend(r.skewed.into_iter().take(room));
                // The chunk's clocks first: the fleet rules compare its
                // hosts' health lines on one clock.
                p.fold_arrivals(Some(r.arrivals));
                for (hint, mut pending) in r.pending {
                    if let Some(d) = hint {
                        d.heard(&mut clock, &mut p);
                    }
                    let at = p.engine.time_of(&mut pending, &mut clock);
                    p.submit_health(at, pending);
                }
                // The newest request of the chunk, as far as its minutes go.
                let reach = r
                    .first_request
                    .max(r.last_request.as_ref().map(|d| d.accepted));
                if let Some(d) = r.last_request {
                    d.heard(&mut clock, &mut p);
                }
                let input = &mut inputs[r.source];
                if let Some(m) = r.mapped {
                    sweep.up_to(m);
                }
                input.lines += r.lines;
                input.unparsed += r.unparsed;
                let room = INPUT_SAMPLES.saturating_sub(input.samples.len());
                input.samples.extend(r.samples.iter().take(room).cloned());
                let room = opts
                    .reading
                    .show_unparsed
                    .saturating_sub(p.engine.unparsed_samples.len());
                p.engine
                    .unparsed_samples
                    .extend(r.samples.into_iter().take(room));
                // Minutes are closed (and stored) an epoch at a time, with
                // or without a database: holding them to the end made
                // memory grow with the time span of the log.
                if rollups {
                    epochs.applied(r.epoch, r.worker, r.after, reach, &opts.checkpoint_paths);
                    epochs.commit_if_due(&mut p, r.epoch, &mut store_error);
                    gate.close(epochs.closed);
                }
            }
        }
        let (errors, oversized, marks) = reader.join().expect("reader thread");
        let workers: Vec<Engine> = workers
            .into_iter()
            .map(|w| w.join().expect("worker thread"))
            .collect();
        (errors, oversized, marks, workers, epochs)
    });
    pb.finish_and_clear();
    for w in workers {
        p.engine.merge_worker(w);
    }
    // The health lines of the last chunk measure their hosts' clocks too.
    p.fold_arrivals(None);
    p.engine.counters.lines += oversized;
    p.engine.counters.oversized += oversized;
    p.finish();
    // End of input: every minute left is judged, and every minute is in.
    p.closing = true;
    p.minutes_whole_to = None;
    let left: Vec<Rollup> = std::mem::take(&mut epochs_left.rollups)
        .into_values()
        .flatten()
        .collect();
    p.close_minutes(left);
    if let Some(w) = p.writer.as_mut() {
        for m in &marks {
            if let Some(c) = checkpoint(&opts.checkpoint_paths, m) {
                w.mark(c);
            }
        }
    }
    // The last commit holds everything a failed one kept: tried again with
    // backoff (a lock held by another client, a disk being freed) before
    // the run says what was not stored.
    for wait in [0, 500, 1000, 2000] {
        std::thread::sleep(std::time::Duration::from_millis(wait));
        match p.commit() {
            Ok(()) => {
                store_error = None;
                break;
            }
            Err(e) => store_error = Some(e),
        }
    }
    let alerts = p.alerts.is_some().then(|| p.alert_events());
    Outcome {
        engine: p.engine,
        alerts,
        writer: p.writer,
        store_error,
        errors,
        marks,
        inputs,
    }
}

/// Unparsed lines kept per input, to show when most of it is.
const INPUT_SAMPLES: usize = 2;

/// What the ordering thread knows about each epoch, to commit at their
/// boundaries (see [`EPOCH_BYTES`]).
struct Epochs {
    /// Rollups handed over, by epoch.
    rollups: BTreeMap<u64, Vec<Rollup>>,
    /// Per worker: every epoch up to this one is handed over.
    complete: Vec<Option<u64>>,
    /// Per epoch applied: the file positions reached in it.
    marks: BTreeMap<u64, Vec<Checkpoint>>,
    /// Every epoch before this one is closed: its minutes handed on.
    closed: u64,
    /// Per epoch applied: the newest request time of its chunks (the first
    /// or last request of each, whichever is later).
    reach: BTreeMap<u64, Millis>,
    /// Per epoch applied: the workers that read its chunks, the only ones
    /// that hold minutes of it.
    readers: BTreeMap<u64, Vec<usize>>,
    /// The epoch of the last chunk applied (kept only with rollups):
    /// every earlier one is whole.
    last_applied: Option<u64>,
}

impl Epochs {
    fn new(workers: usize) -> Epochs {
        Epochs {
            rollups: BTreeMap::new(),
            complete: vec![None; workers],
            marks: BTreeMap::new(),
            closed: 0,
            reach: BTreeMap::new(),
            readers: BTreeMap::new(),
            last_applied: None,
        }
    }

    /// A chunk of `epoch` is applied; `reach` is its newest request time.
    fn applied(
        &mut self,
        epoch: u64,
        worker: usize,
        after: Position,
        reach: Option<Millis>,
        paths: &[CheckpointKey],
    ) {
        if let Some(t) = reach {
            let r = self.reach.entry(epoch).or_insert(t);
            *r = (*r).max(t);
        }
        self.last_applied = Some(epoch);
        let readers = self.readers.entry(epoch).or_default();
        if !readers.contains(&worker) {
            readers.push(worker);
        }
        let marks = self.marks.entry(epoch).or_default();
        if let Some(c) = match &after {
            Position::At(m) => checkpoint(paths, m),
            _ => None,
        } {
            marks.retain(|old| old.path != c.path);
            marks.push(c);
        }
    }

    /// Closes the epochs that are whole (every chunk applied: every epoch
    /// before `whole_before`; every worker's rollups here): the rules judge
    /// their minutes and the writer merges them at once (memory holds one
    /// row per server and minute), then commits if it is time and the
    /// commit stores what the lines before its checkpoints did, no more:
    /// the epoch of the last chunk applied is closed.
    /// Health state past a checkpoint is not idempotent: read again after a
    /// crash, a server's events from there replay on the state they led to
    /// (`DOWN` then `UP` in one second, replayed on `UP`, stored a
    /// transition `UP` to `DOWN` that never was). `false`: a commit is due
    /// and waits for that.
    fn commit_if_due(
        &mut self,
        p: &mut Pipeline,
        whole_before: u64,
        store_error: &mut Option<StoreError>,
    ) -> bool {
        // The last epoch whose chunks are all applied and whose rollups are
        // all here.
        let Some(applied) = whole_before.checked_sub(1) else {
            return true;
        };
        // The last of them whose readers have all handed it over, and every
        // epoch before. Only its readers: with one queue for all, a worker
        // may read nothing of many epochs, and the epochs after the last it
        // read would wait for it to take a chunk again.
        let mut boundary = None;
        for (&epoch, readers) in self.readers.range(..=applied) {
            let over = |&w: &usize| self.complete[w].is_some_and(|c| c >= epoch);
            if !readers.iter().all(over) {
                break;
            }
            boundary = Some(epoch);
        }
        if let Some(boundary) = boundary {
            self.closed = boundary + 1;
            let later = self.rollups.split_off(&(boundary + 1));
            let whole = std::mem::replace(&mut self.rollups, later);
            self.readers = self.readers.split_off(&(boundary + 1));
            let later = self.reach.split_off(&(boundary + 1));
            let mut reach = std::mem::replace(&mut self.reach, later)
                .into_iter()
                .peekable();
            // The rules see the minutes in epoch order, each epoch's as far
            // as its lines and those before go (not as far as the lines
            // applied since: the next epoch's part of a minute is still to
            // come); the writer merges them at once (memory holds one row
            // per server and minute). The pipeline's `minutes_whole_to`
            // (`Some` until the end of the input) is the running maximum.
            for (epoch, r) in whole {
                while let Some((_, t)) = reach.next_if(|&(e, _)| e <= epoch) {
                    p.minutes_whole_to = p.minutes_whole_to.max(Some(t));
                }
                p.close_minutes(r);
            }
            for (_, t) in reach {
                p.minutes_whole_to = p.minutes_whole_to.max(Some(t));
            }
            let later = self.marks.split_off(&(boundary + 1));
            for (_, marks) in std::mem::replace(&mut self.marks, later) {
                if let Some(w) = p.writer.as_mut() {
                    for c in marks {
                        w.mark(c);
                    }
                }
            }
        }
        let Some(w) = p.writer.as_ref() else {
            return true;
        };
        // Only here, between epochs: a quarter of the writer's bound is
        // enough. Waiting for the bound itself, the epochs closed before
        // the next commit can pass it by as much again, and the minutes
        // they hold with it.
        if !w.due() && w.pending_len() * 4 < w.max_pending {
            return true;
        }
        if self.last_applied.is_some_and(|e| e >= self.closed) {
            return false;
        }
        // The checkpoint about to be written covers every line applied so
        // far: nothing may wait in the reorder window behind it.
        p.release_all();
        // A failed commit keeps what it held; the next one (a second on)
        // tries again.
        if let Err(e) = p.commit() {
            *store_error = Some(e);
        }
        true
    }
}

fn checkpoint(paths: &[CheckpointKey], m: &Mark) -> Option<Checkpoint> {
    let (path, head) = paths.get(m.source)?.clone()?;
    Some(Checkpoint {
        path,
        dev: m.dev,
        ino: m.ino,
        offset: m.offset,
        cursor: None,
        decoded: m.decoded,
        head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lane is cut before its first line dated after the limit, found by
    /// halving its bytes: at every second of a file of RFC 3164 lines
    /// (dates to the second, several lines each), and with a raw request
    /// line (its accept date) and an undated line among them.
    #[test]
    fn a_lane_is_cut_before_its_first_line_dated_after_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lb1.log");
        let mut text = String::new();
        let mut starts = Vec::new();
        for i in 0..600 {
            starts.push((i / 3, text.len()));
            let (m, s) = (i / 3 / 60, i / 3 % 60);
            text += &match i {
                100 => format!("10.0.0.1:1 [24/Nov/2026:10:{m:02}:{s:02}.000] fe be/s 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n"),
                101 => "a line with no date at all\n".to_string(),
                _ => format!("Nov 24 10:{m:02}:{s:02} lb1 haproxy[1]: line {i}\n"),
            };
        }
        std::fs::write(&path, &text).unwrap();
        let counter = Arc::new(AtomicU64::new(0));
        let source = Source::File(path);
        let opened = input::open(&source, Some(2026), true, (0, None), counter);
        let told = &mut Told::default();
        let lanes = Lane::all(vec![opened], &[source], &[], false, None, Some(2026), told);
        let lane = &lanes[0];
        let t0 = crate::time::days_from_civil(2026, 11, 24) * 86_400_000 + 10 * 3_600_000;
        assert_eq!(lane.head, Some(t0));
        for second in [-1, 0, 1, 32, 33, 34, 100, 198, 199, 200] {
            let limit = t0 + second * 1000 + 500;
            let want = (starts.iter())
                .find(|&&(s, _)| s > second)
                .map_or(text.len(), |&(_, at)| at);
            let first_end = text.find('\n').unwrap() + 1;
            let from = if second < 0 { 0 } else { first_end };
            let want = want.max(from);
            assert_eq!(lane.first_after(from, text.len(), limit), want, "{second}");
        }
    }

    #[test]
    fn the_reader_waits_for_the_epochs_it_runs_ahead_of_to_close() {
        let (gate, failed) = (EpochGate::new(true), AtomicBool::new(false));
        assert!(gate.wait(EPOCHS_AHEAD - 1, &failed), "within reach");
        let started = std::time::Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                gate.close(1);
            });
            assert!(gate.wait(EPOCHS_AHEAD, &failed));
        });
        assert!(started.elapsed() >= std::time::Duration::from_millis(50));
        // A worker that failed never hands its epoch over: reading stops.
        failed.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(!gate.wait(EPOCHS_AHEAD + 1, &failed));
        // Dealt in turn, the workers' own queues stop the reader.
        assert!(EpochGate::new(false).wait(1000, &failed));
    }

    /// Resident bytes of the mapping that starts at `at`, from smaps.
    fn resident(at: *const u8) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{:x}-", at as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        lines.next().expect("the mapping is listed");
        let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
        let kb: usize = rss.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    }

    /// A mapped file of `size` bytes of its own.
    fn mapped(size: usize) -> Arc<memmap2::Mmap> {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, &vec![b'x'; size]).unwrap();
        // SAFETY: a file of this test's own, not changed while mapped.
        Arc::new(unsafe { memmap2::Mmap::map(&f) }.unwrap())
    }

    /// A log read in chunks, each applied in order: what stays mapped is
    /// bounded by the sweep's step (plus the window the kernel maps
    /// around a fault), whatever the file's size, and nothing at its end.
    /// The sweep drops pages every four chunks, not at every one: each
    /// `madvise` interrupts the workers' cores to flush their TLBs (one a
    /// chunk was 1-2% of a one-worker run's CPU).
    #[test]
    fn a_long_file_stays_mapped_a_step_at_a_time() {
        let chunk = 2 << 20;
        let size = 13 * chunk + 300 * 1024;
        let m = mapped(size);
        let mut sweep = Sweep::default();
        let mut most = 0;
        let mut start = 0;
        while start < size {
            let end = (start + chunk).min(size);
            populate(&m, start, end);
            assert!(touch(&m, start..end) > 0);
            let done =
                Data::Mapped(m.clone(), start..end).release(&crossbeam_channel::unbounded().0);
            sweep.up_to(done.unwrap());
            most = most.max(resident(m.as_ptr()));
            start = end;
        }
        assert!(most > 0);
        assert!(
            most <= SWEEP_CHUNKS * chunk + FAULT_REACH,
            "{most} bytes resident at most"
        );
        assert_eq!(resident(m.as_ptr()), 0, "nothing at the end");
    }

    /// Reads a byte of each page of `m[r]`, as a worker parsing it would.
    fn touch(m: &memmap2::Mmap, r: std::ops::Range<usize>) -> u64 {
        m[r].iter().step_by(4096).map(|&b| b as u64).sum()
    }

    /// The reader maps a chunk's pages before queueing it (its worker then
    /// takes no page fault in it), the worker done with it leaves them (the
    /// sweep's `madvise(DONTNEED)` is the only one), and the sweep drops them.
    #[test]
    fn a_chunk_is_mapped_by_the_reader_and_dropped_by_the_sweep_alone() {
        let size = 1 << 20;
        let m = mapped(size);
        let cut = 300 * 1024 + 100;
        assert_eq!(resident(m.as_ptr()), 0, "nothing read yet");
        let mut sweep = Sweep::default();
        for chunk in [0..cut, cut..size] {
            // As the reader maps it (a window the kernel maps around may
            // reach into the next chunk: its sweep drops that too).
            populate(&m, chunk.start & !4095, chunk.end);
            let pages = ((chunk.end + 4095) & !4095) - (chunk.start & !4095);
            assert!(resident(m.as_ptr()) >= pages, "mapped ahead of its worker");
            let before = resident(m.as_ptr());
            let done = Data::Mapped(m.clone(), chunk).release(&crossbeam_channel::unbounded().0);
            assert_eq!(resident(m.as_ptr()), before, "left to the sweep");
            sweep.up_to(done.unwrap());
        }
        assert_eq!(resident(m.as_ptr()), 0);
    }

    /// Two chunks of a mapped file read by two workers: the first is done
    /// and released before the second starts, and the second's first read
    /// maps pages of the first again (the kernel maps around a fault).
    /// Applied in order, nothing of either stays resident.
    #[test]
    fn applied_chunks_leave_no_page_of_the_file_resident() {
        let size = 1 << 20;
        let m = mapped(size);
        let read = |r: std::ops::Range<usize>| touch(&m, r);
        // A boundary inside a 64 KiB window, past its first page.
        let cut = 512 * 1024 + 40 * 1024 + 100;
        let (first, second) = (0..cut, cut..size);
        assert!(read(first.clone()) > 0);
        let first_done = Data::Mapped(m.clone(), first).release(&crossbeam_channel::unbounded().0);
        assert!(read(second.clone()) > 0);
        let second_done =
            Data::Mapped(m.clone(), second).release(&crossbeam_channel::unbounded().0);
        let mut sweep = Sweep::default();
        sweep.up_to(first_done.unwrap());
        sweep.up_to(second_done.unwrap());
        assert_eq!(resident(m.as_ptr()), 0);
    }

    /// Two files read side by side, in turns: each is swept from where its
    /// last turn stopped, and neither keeps its pages once read to its end.
    #[test]
    fn files_read_in_turns_are_each_swept_from_where_they_were() {
        let size = 1 << 20;
        let (a, b) = (mapped(size), mapped(size));
        let mut sweep = Sweep::default();
        let step = size / 8;
        for k in 0..8 {
            for m in [&a, &b] {
                let r = k * step..(k + 1) * step;
                std::hint::black_box(touch(m, r.clone()));
                sweep.up_to(
                    Data::Mapped(m.clone(), r)
                        .release(&crossbeam_channel::unbounded().0)
                        .unwrap(),
                );
            }
            // Taken up again, a file is not swept from its start: each is
            // held where its last sweep stopped (its fifth chunk's end),
            // with the one chunk applied since. Read from the sweep, not
            // from the pages resident: whether the kernel mapped any past
            // a chunk's end around a fault depends on where the mapping
            // falls in the address space (a CI run saw none).
            if k == 5 {
                let held = |m: &Arc<memmap2::Mmap>| match &sweep.at {
                    Some((at, end)) if Arc::ptr_eq(at, m) => (*end, sweep.waiting),
                    _ => (sweep.others.iter())
                        .find(|(w, ..)| std::ptr::eq(w.as_ptr(), &**m))
                        .map(|&(_, end, waiting)| (end, waiting))
                        .expect("the sweep holds both files"),
                };
                assert_eq!((held(&a), held(&b)), ((5 * step, 1), (5 * step, 1)));
            }
        }
        assert_eq!((resident(a.as_ptr()), resident(b.as_ptr())), (0, 0));
    }

    /// More workers split the two-worker budget of minutes instead of each
    /// holding it (a month of sparse log with `--db` peaked at 269 MB with
    /// eight workers, 367 MB with sixteen); a report without minutes keeps
    /// its large chunks.
    #[test]
    fn workers_share_one_budget_of_minutes() {
        let two = MinuteBudget::new(2, true);
        assert_eq!((two.chunk, two.crowded), (ROLLUP_CHUNK, CROWDED_MINUTES));
        assert_eq!(MinuteBudget::new(1, true), two);
        for workers in [4, 8, 16] {
            let b = MinuteBudget::new(workers, true);
            assert_eq!(b.crowded * workers, 2 * CROWDED_MINUTES);
            assert_eq!(b.chunk * workers, 2 * ROLLUP_CHUNK, "{workers} workers");
        }
        assert_eq!(MinuteBudget::new(64, true).chunk, MIN_ROLLUP_CHUNK);
        assert_eq!(MinuteBudget::new(16, false).chunk, input::CHUNK);
    }

    /// The reader's side: small chunks, one an epoch, while workers are
    /// crowded; wide chunks and epochs doubling up to `EPOCH_BYTES` once
    /// they report calm; back to small at the next crowded report.
    #[test]
    fn chunks_widen_only_while_workers_are_calm() {
        use std::sync::atomic::Ordering::Relaxed;
        let crowding = Arc::new(Crowding::default());
        let budget = MinuteBudget::new(16, true);
        let mut clock = EpochClock::new(crowding.clone(), budget);
        // A chunk ends on a line, a little short of its size.
        let send = |clock: &mut EpochClock| {
            let size = clock.chunk_size();
            (size, clock.next(size - 100))
        };
        let mut epochs = vec![];
        for _ in 0..5 {
            crowding.crowded.store(true, Relaxed);
            epochs.push(send(&mut clock));
        }
        assert!(epochs.iter().all(|&(size, _)| size == budget.chunk));
        let numbers: Vec<u64> = epochs.iter().map(|e| e.1).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4], "one chunk an epoch");
        assert!(clock.crowding());
        // Calm: epochs double; chunks widen once past a few wide chunks.
        let mut sizes = vec![];
        let mut last_epoch = 4;
        let mut in_epoch = 0;
        let mut longest = 0;
        for _ in 0..2000 {
            crowding.calm.store(true, Relaxed);
            let (size, epoch) = send(&mut clock);
            sizes.push(size);
            if epoch == last_epoch {
                in_epoch += size;
            } else {
                longest = longest.max(in_epoch);
                (last_epoch, in_epoch) = (epoch, size);
            }
        }
        assert_eq!(sizes[0], budget.chunk);
        assert_eq!(*sizes.last().unwrap(), input::CHUNK);
        assert!(!clock.crowding());
        assert!(
            longest <= EPOCH_BYTES && longest > EPOCH_BYTES / 2,
            "{longest}"
        );
        crowding.crowded.store(true, Relaxed);
        let (_, epoch) = send(&mut clock);
        assert!(epoch > last_epoch, "a crowded report ends the epoch");
        assert_eq!(clock.chunk_size(), budget.chunk);
        assert!(clock.crowding());
        // No minutes kept: no crowding.
        let plain = EpochClock::new(crowding.clone(), MinuteBudget::new(16, false));
        assert!(!plain.crowding());
    }

    /// Sixteen workers on a sparse log, where a chunk opens a minute a
    /// line (more than a calm epoch's). At the start, all but one worker's
    /// first hand-over is of an epoch it read no chunk of, empty; counted
    /// as calm, they made the epochs grow and the chunks widen to 512 KiB
    /// before the first crowded report came back (the reader runs ahead of
    /// the workers by their queues): each worker then held 3,400 minutes.
    /// Modelled in steps: the reader sends a chunk a step unless the next
    /// worker's queue is full; each worker reads one a step once started
    /// (sixteen threads on two cores start over a while).
    #[test]
    fn empty_hand_overs_do_not_widen_a_sparse_log_s_chunks() {
        use std::sync::atomic::Ordering::Relaxed;
        let workers = 16;
        let crowding = Arc::new(Crowding::default());
        let budget = MinuteBudget::new(workers, true);
        let mut clock = EpochClock::new(crowding.clone(), budget);
        let mut shifts: Vec<Shift> = (0..workers).map(|_| Shift::default()).collect();
        let mut queues = vec![std::collections::VecDeque::new(); workers];
        let mut held = vec![0; workers];
        let (mut sent, mut widest, mut most_held) = (0, 0, 0);
        for step in 0..5000 {
            for (w, queue) in queues.iter_mut().enumerate() {
                if step < w * 8 {
                    continue;
                }
                let Some((size, epoch)) = queue.pop_front() else {
                    continue;
                };
                if let Some(ended) = shifts[w].take(epoch) {
                    if budget.calm_hand_over(&ended, std::mem::take(&mut held[w])) {
                        crowding.calm.store(true, Relaxed);
                    }
                }
                // A line of ~155 bytes a server-minute (`bench/sparse_log.py`).
                held[w] += size / 155;
                most_held = most_held.max(held[w]);
                if held[w] > budget.crowded {
                    crowding.crowded.store(true, Relaxed);
                }
            }
            let queue = &mut queues[sent % workers];
            if queue.len() < 4 {
                let size = clock.chunk_size();
                widest = widest.max(size);
                queue.push_back((size, clock.next(size - 100)));
                sent += 1;
            }
        }
        assert!(sent > 4000, "{sent}");
        assert_eq!(widest, budget.chunk, "chunks widened");
        assert!(most_held <= budget.crowded, "{most_held}");
    }

    #[test]
    fn a_worker_hands_over_each_epoch_once_saying_whether_it_read_any() {
        let ended = |epoch, read| Ended { epoch, read };
        let mut shift = Shift::default();
        assert_eq!(shift.take(0), None);
        assert_eq!(shift.take(0), None);
        assert_eq!(shift.take(3), Some(ended(0, true)));
        assert_eq!(shift.take(3), None);
        // The first chunk of a worker that took none of the first epochs.
        let mut late = Shift::default();
        assert_eq!(late.take(5), Some(ended(0, false)));
        let budget = MinuteBudget::new(16, true);
        assert!(!budget.calm_hand_over(&ended(0, false), 0));
        assert!(budget.calm_hand_over(&ended(0, true), 0));
        assert!(!budget.calm_hand_over(&ended(0, true), budget.calm()));
    }

    /// Eight chunks queued in all, at least one a worker, at most four;
    /// chunks read into buffers shrink from eight workers on.
    #[test]
    fn queues_shrink_as_workers_grow() {
        let workers = [1, 2, 3, 4, 8, 16, 64];
        assert_eq!(workers.map(queue_depth), [4, 4, 2, 2, 1, 1, 1]);
        let kib = workers.map(|n| chunk_share(OWNED_BYTES, n) / 1024);
        assert_eq!(kib, [2048, 2048, 2048, 2048, 1024, 512, 256]);
        // A mapped file's from sixteen workers on.
        let kib = workers.map(|n| chunk_share(MAPPED_BYTES, n) / 1024);
        assert_eq!(kib, [2048, 2048, 2048, 2048, 2048, 1024, 256]);
    }

    /// A worker that takes the first chunk of an epoch from the shared
    /// queue nudges the others, once an epoch; a nudged worker hands over
    /// the epoch it holds if it is earlier, and then holds none.
    #[test]
    fn a_new_epoch_nudges_the_other_workers_to_hand_theirs_over() {
        let (taken, nudged) = Taken::new(3);
        taken.took(0, 2);
        assert_eq!(taken.newest(), 2);
        let nudges = nudged.iter().map(|n| n.try_recv().is_ok());
        assert_eq!(nudges.collect::<Vec<_>>(), [false, true, true]);
        // The same epoch again, or an earlier one: no nudge.
        taken.took(1, 2);
        taken.took(2, 1);
        assert!(nudged.iter().all(|n| n.try_recv().is_err()));
        // Two new epochs before a worker wakes: one nudge waits.
        taken.took(0, 3);
        taken.took(1, 4);
        assert!(nudged[2].try_recv().is_ok() && nudged[2].try_recv().is_err());
        assert_eq!(taken.newest(), 4);

        let ended = |epoch, read| Ended { epoch, read };
        let mut shift = Shift::default();
        assert_eq!(shift.take(1), Some(ended(0, false)));
        assert_eq!(shift.skip_to(1), None, "not later than its own");
        assert_eq!(shift.skip_to(4), Some(ended(1, true)));
        assert_eq!(shift.skip_to(4), None);
        // Nothing read of epoch 4: its hand-over says so.
        assert_eq!(shift.take(6), Some(ended(4, false)));
    }

    /// An epoch is handed over once the workers that read its chunks have
    /// handed it over: not every worker, one of which may read nothing
    /// for many epochs when chunks go to whichever is free.
    #[test]
    fn an_epoch_waits_only_for_the_workers_that_read_it() {
        let engine = Engine::new(
            Arc::new(crate::patterns::PatternSet::builtin()),
            crate::engine::Filter::default(),
        );
        let mut p = Pipeline::new(engine, None, None);
        let mut epochs = Epochs::new(2);
        let mut store_error = None;
        let minute: Millis = 1_790_000_000_000 / 60_000 * 60_000;
        // Worker 0 reads epochs 0 and 1; worker 1 reads nothing yet.
        epochs.applied(0, 0, Position::Untracked, Some(minute), &[]);
        epochs.applied(1, 0, Position::Untracked, Some(minute + 60_000), &[]);
        epochs.rollups.insert(0, vec![part_of_minute(minute, 6, 0)]);
        epochs.complete[0] = Some(0);
        epochs.commit_if_due(&mut p, 2, &mut store_error);
        assert!(!epochs.rollups.contains_key(&0), "epoch 0 closed");
        assert_eq!(p.minutes_whole_to, Some(minute));
        // Epoch 2 read by both: it waits for worker 1 as well.
        epochs.applied(2, 0, Position::Untracked, Some(minute + 120_000), &[]);
        epochs.applied(2, 1, Position::Untracked, Some(minute + 120_000), &[]);
        epochs
            .rollups
            .insert(1, vec![part_of_minute(minute + 60_000, 6, 0)]);
        epochs
            .rollups
            .insert(2, vec![part_of_minute(minute + 120_000, 6, 0)]);
        epochs.complete[0] = Some(2);
        epochs.commit_if_due(&mut p, 3, &mut store_error);
        assert!(!epochs.rollups.contains_key(&1), "epoch 1 closed");
        assert!(
            epochs.rollups.contains_key(&2),
            "epoch 2 waits for worker 1"
        );
        epochs.complete[1] = Some(2);
        epochs.commit_if_due(&mut p, 3, &mut store_error);
        assert!(epochs.rollups.is_empty());
        assert_eq!(p.minutes_whole_to, Some(minute + 120_000));
    }

    /// The reader waits for room once the queued chunks and one a worker
    /// are out, and stops waiting when a worker failed (its chunk would
    /// never be applied to make room).
    #[test]
    fn a_reader_waits_for_room_and_stops_when_a_worker_failed() {
        let f = InFlight::new(2);
        for _ in 0..QUEUED_CHUNKS + 2 {
            assert!(f.acquire(1));
        }
        assert!(f.take.try_recv().is_err(), "no more out at once");
        f.release(1);
        assert!(f.acquire(1), "a chunk applied makes room for one");
        f.failed.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(!f.acquire(1), "a failed worker's chunk never makes room");
        // Crowding: a chunk takes a worker's share, one out a worker.
        for workers in [1, 2, 3, 8, 16] {
            let f = InFlight::new(workers);
            let share = f.tickets(true);
            assert_eq!(f.tickets(false), 1);
            for _ in 0..workers {
                assert!(f.acquire(share));
            }
            assert!(f.take.len() < share, "{workers} workers: no more out");
            f.release(share);
            assert_eq!(f.take.len() / share, 1);
        }
        // Sixteen workers: one queued and one parsed each. Three: two
        // queued and one parsed each, nine (the queues hold six).
        let f = InFlight::new(16);
        assert_eq!(f.take.len(), 32);
        assert_eq!(InFlight::new(3).take.len(), 9);
        assert_eq!(InFlight::new(1).take.len(), 5);
    }

    /// A worker that is free takes the next chunk, whichever sender the
    /// reader used: a slower worker does not leave the others waiting
    /// behind its full queue. A bounded table's run deals chunks in turn,
    /// each worker its own, as many queued in all.
    #[test]
    fn a_free_worker_takes_the_next_chunk_unless_dealt() {
        let queued = 2 * queue_depth(2) as u64;
        let (tx, rx) = chunk_queues::<u64>(2, false);
        for k in 0..queued {
            tx[k as usize % 2].try_send(k).unwrap();
        }
        assert!(tx[1].try_send(queued).is_err(), "as many queued in all");
        // Worker 1 is busy: worker 0 takes every chunk, in order.
        let taken: Vec<u64> = rx[0].try_iter().collect();
        assert_eq!(taken, (0..queued).collect::<Vec<_>>());
        let (tx, rx) = chunk_queues::<u64>(2, true);
        for k in 0..queued {
            tx[k as usize % 2].try_send(k).unwrap();
        }
        assert!(tx[1].try_send(queued).is_err(), "as many queued in all");
        assert_eq!(rx[0].try_iter().collect::<Vec<_>>(), [0, 2, 4, 6]);
        assert_eq!(rx[1].try_iter().collect::<Vec<_>>(), [1, 3, 5, 7]);
    }

    /// The other order: the first chunk is applied (swept) before the
    /// second's worker reads its first page, whose fault maps pages of the
    /// first chunk again, below where the sweep stopped (the fault-around
    /// window is aligned in the address space, not in the file: 496-548 KiB
    /// for a fault at 552 KiB). Sweeping from the last end's page left
    /// 4-56 KiB resident.
    #[test]
    fn a_chunk_applied_before_the_next_is_read_leaves_no_page_resident() {
        let size = 1 << 20;
        let m = mapped(size);
        let read = |r: std::ops::Range<usize>| touch(&m, r);
        let mut sweep = Sweep::default();
        let cuts = [0, 552 * 1024 + 100, size];
        for w in cuts.windows(2) {
            let chunk = w[0]..w[1];
            assert!(read(chunk.clone()) > 0);
            let done = Data::Mapped(m.clone(), chunk).release(&crossbeam_channel::unbounded().0);
            sweep.up_to(done.unwrap());
        }
        assert_eq!(resident(m.as_ptr()), 0);
    }

    /// One server's minute of `requests`, `errors` of them 5xx.
    fn part_of_minute(minute: Millis, requests: u64, errors: u64) -> Rollup {
        let key = crate::engine::ServerKey {
            host: "lb1".into(),
            backend: "be_app".into(),
            server: "srv2".into(),
        };
        let counts = crate::engine::counts::Counts {
            requests,
            errors,
            ..Default::default()
        };
        let data = crate::engine::rollup::Minute::of(counts, [None, None, None]);
        Rollup { key, minute, data }
    }

    /// A minute whose lines straddle an epoch boundary is judged on all of
    /// them, however far the ordering thread has applied later chunks when
    /// the earlier epoch closes (a worker slow to take its next chunk, more
    /// workers than cores, a loaded machine). The rules judged up to the
    /// newest line applied: the minute's first part alone, too few
    /// requests to hold, and its rest came late and was dropped. Alerts
    /// then changed with `--threads` and with where a resumed run's epochs
    /// fell (a restart test failed under load).
    #[test]
    fn a_minute_across_an_epoch_boundary_is_judged_whole() {
        let rules = crate::alerts::RuleFile::parse(
            "[haproxy_server_errors]\nwindow = \"1m\"\nfor = \"0m\"\nmin_requests = 10\nmax_ratio = 0.2\n",
        )
        .unwrap();
        let engine = Engine::new(
            Arc::new(crate::patterns::PatternSet::builtin()),
            crate::engine::Filter::default(),
        );
        let mut p = Pipeline::new(engine, Some(crate::alerts::Evaluator::new(rules)), None);
        p.keep_alerts = true;
        let minute: Millis = 1_790_000_000_000 / 60_000 * 60_000;
        let mut epochs = Epochs::new(1);
        let mut store_error = None;
        // Epoch 0 ends 20 s into the minute: 6 of its 30 requests, all 5xx.
        p.engine.see(minute + 20_000);
        epochs.applied(0, 0, Position::Untracked, Some(minute + 20_000), &[]);
        // The first chunk of epoch 1 is applied, half an hour of lines...
        p.engine.see(minute + 1_800_000);
        epochs.applied(1, 0, Position::Untracked, Some(minute + 1_800_000), &[]);
        // ... before the worker hands epoch 0 over.
        epochs.rollups.insert(0, vec![part_of_minute(minute, 6, 6)]);
        epochs.complete[0] = Some(0);
        epochs.commit_if_due(&mut p, 1, &mut store_error);
        // The rest of the minute (6 more 5xx: 12 of 30) comes with epoch 1.
        epochs
            .rollups
            .insert(1, vec![part_of_minute(minute, 24, 6)]);
        epochs.complete[0] = Some(u64::MAX);
        p.closing = true;
        let left = std::mem::take(&mut epochs.rollups).into_values().flatten();
        p.close_minutes(left.collect());
        let fired: Vec<_> = p
            .alert_events()
            .into_iter()
            .filter(|a| a.rule == "haproxy_server_errors")
            .filter(|a| a.status == crate::model::Status::Firing)
            .map(|a| a.starts_at)
            .collect();
        // Fired at the end of the minute, when it was judged.
        assert_eq!(fired, [minute + 60_000]);
    }
}
