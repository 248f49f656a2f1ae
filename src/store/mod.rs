//! The state store: per-server state and every transition, in SQLite.
//!
//! An embedded file (`./hapwatch.db`, `--db`, `HAPWATCH_DB`), created with
//! mode 0600, in WAL mode so that `status` and `history` read while another
//! process writes. The schema is versioned with `PRAGMA user_version`; a
//! database from a newer hapwatch is refused before anything is written.
//!
//! Invariants: writing is idempotent. A transition is unique on (host,
//! backend, server, event time, new state), so the same log read twice, or
//! the same message received over two paths, is stored once; a server's
//! current state only moves forward in event time. Everything one `persist`
//! writes is one transaction: a crash leaves the previous state, whole.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::engine::rollup::{minute_of, Rollup};
use crate::engine::{Engine, Filter, Transition};
use crate::haproxy::{Admin, Op};
use crate::time::{format_rfc3339_ms, Millis};

mod facts;
mod minutes;
mod writer;
pub use facts::{AlertRow, CheckRow, DeliveryRow, Facts, NoServerRow, TransitionRow};
pub use minutes::BackendMinute;
use minutes::{rollup_from_row, rollup_from_row_with};
pub use writer::{Checkpoint, Writer};

/// What one commit writes: see [`Store::persist`].
pub struct Batch<'a> {
    /// Servers and backends: their current state is written.
    pub engine: &'a Engine,
    /// Transitions not written yet.
    pub transitions: &'a [Transition],
    /// Check lines not written yet.
    pub checks: &'a [crate::model::Check],
    /// HAProxy's starts, reloads and stops not written yet.
    pub process: &'a [crate::model::ProcessEvent],
    /// Minutes recorded since the last batch (merged with stored ones).
    pub rollups: &'a [Rollup],
    /// Those minutes added up per backend (merged with stored ones).
    pub backend_minutes: &'a minutes::BackendMinutes,
    pub checkpoints: &'a [Checkpoint],
    /// Alert events since the last batch, in order.
    pub alerts: &'a [crate::model::Alert],
    /// Remote sinks, with the least severity each takes: each alert event
    /// gets an outbox row per sink that wants it.
    pub sinks: &'a [(String, crate::model::Severity)],
    /// What the alert rules carry across a restart (JSON), when it changed.
    pub rules_state: Option<&'a str>,
    /// The lines of the health events the reorder window holds, when that
    /// changed: they replace those stored (see [`Store::held_lines`]).
    pub held: Option<&'a [Vec<u8>]>,
    /// Lines quarantined for their date since the last batch.
    pub skewed: &'a [crate::engine::Skewed],
    /// The servers and backends whose rows changed since the last batch:
    /// a commit costs what changed, not what exists.
    pub changed: &'a Changed,
}

/// Which server and backend rows a batch writes.
/// The first bytes of the text a file reads as (decoded, for a compressed
/// file), kept with its checkpoint to find the file again under another
/// path or inode: FNV-1a of up to [`Head::MAX`] bytes (a hash defined here,
/// so that a database outlives any crate's choice of function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: u32,
    pub hash: u64,
}

impl Head {
    /// Bytes hashed: a line or more of HAProxy's, with its time to the
    /// millisecond and its client's address and port.
    pub const MAX: usize = 1024;
    /// Fewer bytes than this are no head: too short to tell files apart.
    pub const MIN: usize = 64;

    /// The head of a text that opens with `bytes` (`None` under
    /// [`Head::MIN`]).
    pub fn of(bytes: &[u8]) -> Option<Head> {
        let b = &bytes[..bytes.len().min(Head::MAX)];
        (b.len() >= Head::MIN).then(|| Head {
            len: b.len() as u32,
            hash: fnv1a(b),
        })
    }

    /// Whether a text that opens with `bytes` has this head.
    pub fn opens(&self, bytes: &[u8]) -> bool {
        let n = self.len as usize;
        bytes.len() >= n && fnv1a(&bytes[..n]) == self.hash
    }
}

/// A checkpoint's columns, in [`checkpoint_at`]'s order.
const CHECKPOINT: &str = "SELECT path, dev, ino, offset, cursor, decoded, head_len, head_hash
                          FROM checkpoints";

/// A [`CHECKPOINT`] row.
fn checkpoint_at(r: &rusqlite::Row) -> rusqlite::Result<Checkpoint> {
    let (len, hash) = (r.get::<_, Option<i64>>(6)?, r.get::<_, Option<i64>>(7)?);
    Ok(Checkpoint {
        path: r.get(0)?,
        dev: r.get::<_, i64>(1)? as u64,
        ino: r.get::<_, i64>(2)? as u64,
        offset: r.get::<_, i64>(3)? as u64,
        cursor: r.get(4)?,
        decoded: r.get::<_, Option<i64>>(5)?.map(|n| n as u64),
        head: len.zip(hash).map(|(len, hash)| Head {
            len: len as u32,
            hash: hash as u64,
        }),
    })
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where a file's checkpoint says to read on ([`Store::resume_offset`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resume {
    /// A byte of the file; for a compressed file, its size once it was
    /// read to its end (0 before).
    pub offset: u64,
    /// A compressed file (or a journal export): the bytes of what it
    /// decodes to read so far. `None` in checkpoints written before
    /// schema 15, and for plain files.
    pub decoded: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Changed {
    pub servers: Vec<crate::engine::ServerKey>,
    pub backends: Vec<(String, String)>,
}

/// One delivery waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub sink: String,
    pub payload: String,
    pub attempts: u32,
}

fn op_str(o: Op) -> &'static str {
    match o {
        Op::Up => "UP",
        Op::Down => "DOWN",
        Op::Stopping => "STOPPING",
    }
}

fn parse_op(s: &str) -> Option<Op> {
    [Op::Up, Op::Down, Op::Stopping]
        .into_iter()
        .find(|o| op_str(*o) == s)
}

fn admin_str(a: Admin) -> &'static str {
    match a {
        Admin::Ready => "READY",
        Admin::Maint => "MAINT",
        Admin::Drain => "DRAIN",
    }
}

fn parse_admin(s: &str) -> Option<Admin> {
    [Admin::Ready, Admin::Maint, Admin::Drain]
        .into_iter()
        .find(|a| admin_str(*a) == s)
}

/// Schema migrations, applied in order; `user_version` counts those done.
/// A new database gets [`SCHEMA`] instead: a migration added here changes
/// `schema.sql` too (a test compares the two).
const MIGRATIONS: &[&str] = &[
    // 1: current state, transitions, backends and their no-server periods.
    "
    CREATE TABLE servers (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        server TEXT NOT NULL,
        backup INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        since_ms INTEGER,
        last_cause TEXT,
        check_health INTEGER,
        check_of INTEGER,
        check_state TEXT,
        check_reason TEXT,
        last_request_ms INTEGER,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (host, backend, server)
    ) WITHOUT ROWID;
    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        server TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        cause TEXT,
        pattern TEXT NOT NULL,
        check_json TEXT,
        UNIQUE (host, backend, server, at_ms, to_state)
    );
    CREATE INDEX transitions_at ON transitions (at_ms);
    CREATE TABLE backends (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        active INTEGER,
        backups INTEGER,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (host, backend)
    ) WITHOUT ROWID;
    CREATE TABLE checkpoints (
        path TEXT PRIMARY KEY,
        dev INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE no_server_periods (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        PRIMARY KEY (host, backend, start_ms)
    ) WITHOUT ROWID;
    ",
    // 2: per-server per-minute rollups; the server's two state dimensions,
    // so that a later run continues the state machine where this one left.
    "
    CREATE TABLE rollups (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        server TEXT NOT NULL,
        minute_ms INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        status_other INTEGER NOT NULL,
        status_1xx INTEGER NOT NULL,
        status_2xx INTEGER NOT NULL,
        status_3xx INTEGER NOT NULL,
        status_4xx INTEGER NOT NULL,
        status_5xx INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        retries INTEGER NOT NULL,
        redispatches INTEGER NOT NULL,
        srv_queue_max INTEGER NOT NULL,
        backend_queue_max INTEGER NOT NULL,
        -- JSON object: termination state -> count
        terminations TEXT NOT NULL,
        -- HdrHistogram V2 encodings of Tw, Tr and Tt (milliseconds)
        tw BLOB,
        tr BLOB,
        tt BLOB,
        PRIMARY KEY (host, backend, server, minute_ms)
    ) WITHOUT ROWID;
    CREATE INDEX rollups_minute ON rollups (minute_ms);
    ALTER TABLE servers ADD COLUMN op TEXT;
    ALTER TABLE servers ADD COLUMN admin TEXT;
    ",
    // 3: alerts, firing and resolved (one row per firing, by rule + labels
    // and start time: the same log replayed stores each alert once).
    "
    CREATE TABLE alerts (
        fingerprint TEXT NOT NULL,
        starts_ms INTEGER NOT NULL,
        rule TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        ends_ms INTEGER,
        alert_json TEXT NOT NULL,
        PRIMARY KEY (fingerprint, starts_ms)
    ) WITHOUT ROWID;
    CREATE INDEX alerts_status ON alerts (status);
    ",
    // 4: the outbox: one row per alert event and remote sink, delivered at
    // least once by the courier, retried, dead-lettered.
    "
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        sink TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        starts_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_ms INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        delivered_ms INTEGER,
        UNIQUE (sink, fingerprint, starts_ms, status)
    );
    CREATE INDEX outbox_due ON outbox (state, next_ms);
    ",
    // 5: when a firing alert was last notified (wall clock), for the
    // repeat interval.
    "
    ALTER TABLE alerts ADD COLUMN notified_ms INTEGER;
    ",
    // 6: what the alert rules carry across a restart (flapping windows,
    // degradation conditions and baselines), as JSON, one row.
    "
    CREATE TABLE rules_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL
    );
    ",
    // 7: the lines of the health events `listen`'s reorder window held at
    // the last commit: read on from a followed file's checkpoint, a
    // restart (even after SIGKILL) puts them back into the window first.
    "
    CREATE TABLE held_lines (
        seq INTEGER PRIMARY KEY,
        line BLOB NOT NULL
    );
    ",
    // 8: lines quarantined for a date too far after their receive time
    // (`--max-skew`), newest kept: `status --skewed`.
    "
    CREATE TABLE skewed (
        id INTEGER PRIMARY KEY,
        received_ms INTEGER NOT NULL,
        host TEXT NOT NULL,
        event_ms INTEGER NOT NULL,
        line TEXT NOT NULL
    );
    ",
    // 9: health check lines (`Health check for server ... failed`), the
    // steps before a transition: a timeline's first sign and time to detect.
    "
    CREATE TABLE checks (
        at_ms INTEGER NOT NULL,
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        server TEXT NOT NULL,
        result TEXT,
        check_json TEXT NOT NULL,
        UNIQUE (host, backend, server, at_ms, check_json)
    );
    CREATE INDEX checks_at ON checks (at_ms);
    ",
    // 10: HAProxy itself starting, reloading, stopping (`Proxy X started.`,
    // `New worker (8) forked`, `Loading success.`): a timeline shows them
    // beside the health events they often explain.
    "
    CREATE TABLE process_events (
        at_ms INTEGER NOT NULL,
        host TEXT NOT NULL,
        event TEXT NOT NULL,
        proxy TEXT NOT NULL,
        message TEXT NOT NULL,
        UNIQUE (host, at_ms, message)
    );
    CREATE INDEX process_events_at ON process_events (at_ms);
    ",
    // 11: per-backend per-minute rollups, every server's minute (and
    // `<NOSRV>`'s) added up as it is written: a timeline of a day reads a
    // backend's 1,440 minutes, not its servers' 1,440 each. Filled from
    // `rollups` by `minutes::backfill` when a database is migrated.
    "
    CREATE TABLE backend_rollups (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        minute_ms INTEGER NOT NULL,
        -- 503s HAProxy answered itself (`<NOSRV>`'s 5xx)
        nosrv_5xx INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        status_other INTEGER NOT NULL,
        status_1xx INTEGER NOT NULL,
        status_2xx INTEGER NOT NULL,
        status_3xx INTEGER NOT NULL,
        status_4xx INTEGER NOT NULL,
        status_5xx INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        retries INTEGER NOT NULL,
        redispatches INTEGER NOT NULL,
        srv_queue_max INTEGER NOT NULL,
        backend_queue_max INTEGER NOT NULL,
        terminations TEXT NOT NULL,
        tw BLOB,
        tr BLOB,
        tt BLOB,
        PRIMARY KEY (host, backend, minute_ms)
    ) WITHOUT ROWID;
    CREATE INDEX backend_rollups_minute ON backend_rollups (minute_ms);
    ",
    // 12: a journal source's place (`listen --journal`): the cursor of the
    // last entry whose effects are stored, written in the same transaction.
    "
    ALTER TABLE checkpoints ADD COLUMN cursor TEXT;
    ",
    // 13: each load balancer's clock as measured (`engine::clocks`): its
    // newest date and how far its dates run from the receive time (live)
    // or from the other hosts' (a file). The fleet view judges silence
    // and says skew with it.
    "
    CREATE TABLE hosts (
        host TEXT PRIMARY KEY,
        last_event_ms INTEGER NOT NULL,
        offset_ms INTEGER,
        reference TEXT NOT NULL
    ) WITHOUT ROWID;
    ",
    // 14: the minutes keyed by minute first. Keyed by server first, a
    // commit that adds to every server's newest minute (`listen` at every
    // `--commit-every`, `analyze` once a minute of every server is
    // pending) rewrote a page per server wherever its minutes end: 10,000
    // servers with half an hour of minutes were 84 MB a commit, WAL and
    // checkpoint (`bench/steady_io.py`). By minute, a commit writes where
    // its minutes are, the table's end. A server's minutes (a timeline's
    // series) are found through `rollups_server`, which a minute written
    // again does not change (`minutes::Table::put` updates in place).
    "
    CREATE TABLE rollups_by_minute (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        server TEXT NOT NULL,
        minute_ms INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        status_other INTEGER NOT NULL,
        status_1xx INTEGER NOT NULL,
        status_2xx INTEGER NOT NULL,
        status_3xx INTEGER NOT NULL,
        status_4xx INTEGER NOT NULL,
        status_5xx INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        retries INTEGER NOT NULL,
        redispatches INTEGER NOT NULL,
        srv_queue_max INTEGER NOT NULL,
        backend_queue_max INTEGER NOT NULL,
        -- JSON object: termination state -> count
        terminations TEXT NOT NULL,
        -- HdrHistogram V2 encodings of Tw, Tr and Tt (milliseconds)
        tw BLOB,
        tr BLOB,
        tt BLOB,
        PRIMARY KEY (minute_ms, host, backend, server)
    ) WITHOUT ROWID;
    INSERT INTO rollups_by_minute SELECT * FROM rollups;
    DROP TABLE rollups;
    ALTER TABLE rollups_by_minute RENAME TO rollups;
    CREATE INDEX rollups_server ON rollups (host, backend, server, minute_ms);
    CREATE TABLE backend_rollups_by_minute (
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        minute_ms INTEGER NOT NULL,
        -- 503s HAProxy answered itself (`<NOSRV>`'s 5xx)
        nosrv_5xx INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        status_other INTEGER NOT NULL,
        status_1xx INTEGER NOT NULL,
        status_2xx INTEGER NOT NULL,
        status_3xx INTEGER NOT NULL,
        status_4xx INTEGER NOT NULL,
        status_5xx INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        retries INTEGER NOT NULL,
        redispatches INTEGER NOT NULL,
        srv_queue_max INTEGER NOT NULL,
        backend_queue_max INTEGER NOT NULL,
        terminations TEXT NOT NULL,
        tw BLOB,
        tr BLOB,
        tt BLOB,
        PRIMARY KEY (minute_ms, host, backend)
    ) WITHOUT ROWID;
    INSERT INTO backend_rollups_by_minute SELECT * FROM backend_rollups;
    DROP TABLE backend_rollups;
    ALTER TABLE backend_rollups_by_minute RENAME TO backend_rollups;
    ",
    // 15: how far a compressed file (or a journal export) was read, in
    // bytes of what it decodes to. Such a file cannot be read on from a
    // byte of its own; it is decoded again from its start and this many
    // bytes skipped. Without it a compressed file was a checkpoint only
    // once read whole: nothing was committed while it was read, and a month
    // of log held every minute until the end (3.2 GB).
    "
    ALTER TABLE checkpoints ADD COLUMN decoded INTEGER;
    ",
    // 16: the text a checkpoint's file opens with ([`Head`]): logrotate
    // renames `haproxy.log` to `haproxy.log.1` (same inode, another path)
    // and later compresses it to `haproxy.log.2.gz` (another inode, the
    // same text); found by its head, it is read on where it was left, not
    // again from its start. A file whose head changed under the same
    // inode (copytruncate, then written past the checkpoint) starts over.
    "
    ALTER TABLE checkpoints ADD COLUMN head_len INTEGER;
    ALTER TABLE checkpoints ADD COLUMN head_hash INTEGER;
    ",
    // 17: what a server's next state line needs of the lines before it,
    // so that a restart (a log read in pieces, a crash) reads on as one
    // reading does: the last check line whole (`check_json`: with `option
    // log-health-checks` the state line's cause is on the check line just
    // before it), whether that check line was the server's last line
    // (`check_before`), whether its state was only read off a check line
    // (`from_check`: provisional), and the newest state line's time
    // (`last_state_ms`: an older line is stale).
    "
    ALTER TABLE servers ADD COLUMN check_json TEXT;
    ALTER TABLE servers ADD COLUMN check_before INTEGER;
    ALTER TABLE servers ADD COLUMN from_check INTEGER;
    ALTER TABLE servers ADD COLUMN last_state_ms INTEGER;
    ",
    // 18: a transition is the `nth` of its server to its state at its
    // millisecond. A log
    // dated to the second writes a server DOWN, UP and DOWN again within
    // one second as two UP -> DOWN at the same time: keyed without `nth`,
    // the second was taken for the first written again and not stored (the
    // history ended UP, the state DOWN). The key still makes a transition
    // read again (a log re-read, a backlog re-sent) one row.
    "
    CREATE TABLE transitions_nth (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        host TEXT NOT NULL,
        backend TEXT NOT NULL,
        server TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        cause TEXT,
        pattern TEXT NOT NULL,
        check_json TEXT,
        nth INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO transitions_nth
        (id, at_ms, host, backend, server, from_state, to_state, cause, pattern, check_json)
        SELECT id, at_ms, host, backend, server, from_state, to_state, cause, pattern, check_json
        FROM transitions;
    DROP TABLE transitions;
    ALTER TABLE transitions_nth RENAME TO transitions;
    CREATE INDEX transitions_at ON transitions (at_ms);
    CREATE UNIQUE INDEX transitions_once ON transitions (host, backend, server, at_ms, to_state, nth);
    ",
];

/// What [`MIGRATIONS`] leave on an empty database, in one batch: a new
/// database gets this instead of the eighteen steps (tables created,
/// rekeyed and renamed, SQLite parsing the whole schema again after each):
/// the thread that creates it while the log is read took 14 M instructions,
/// 4 M with this.
const SCHEMA: &str = include_str!("schema.sql");

/// The migration that creates `backend_rollups`, filled from `rollups`.
const BACKEND_ROLLUPS: i64 = 11;

/// Quarantined lines kept in the `skewed` table (the newest).
const SKEWED_ROWS: i64 = 1000;

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Why a database cannot be used. Every one of these is the user's to fix
/// (exit status 2 at the command line).
#[derive(Debug)]
pub enum StoreError {
    NotSqlite(PathBuf),
    TooNew { path: PathBuf, found: i64 },
    Missing(PathBuf),
    Sqlite(PathBuf, rusqlite::Error),
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotSqlite(p) => write!(
                f,
                "{} is not a hapwatch database (not SQLite): give --db another path",
                p.display()
            ),
            StoreError::TooNew { path, found } => write!(
                f,
                "{} has schema version {found}, newer than this hapwatch ({SCHEMA_VERSION}): \
                 use a newer hapwatch; the file was not changed",
                path.display()
            ),
            StoreError::Missing(p) => write!(
                f,
                "{} does not exist: run `hapwatch analyze --db {} FILES` first, or give --db \
                 (or HAPWATCH_DB; the service writes {SERVICE_DB})",
                p.display(),
                p.display()
            ),
            StoreError::Sqlite(p, e) => write!(f, "{}: {e}", p.display()),
            StoreError::Io(p, e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                let owner = {
                    use std::os::unix::fs::MetadataExt;
                    std::fs::metadata(p).ok().map(|m| m.uid())
                };
                write!(
                    f,
                    "{}: permission denied: the database is its writer's alone (mode 0600); \
                     read it as that user{}, e.g. `sudo -u {} hapwatch status`",
                    p.display(),
                    owner.map_or(String::new(), |u| format!(" (uid {u})")),
                    owner
                        .and_then(user_name)
                        .unwrap_or_else(|| "hapwatch".to_string())
                )
            }
            StoreError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for StoreError {}

/// `--db`, else `HAPWATCH_DB` (clap reads it), else `./hapwatch.db`.
/// Where `listen` and `analyze` write when neither `--db` nor
/// `HAPWATCH_DB` says: the working directory.
pub fn default_path() -> PathBuf {
    PathBuf::from("hapwatch.db")
}

/// The service's database (contrib/hapwatch.service).
pub const SERVICE_DB: &str = "/var/lib/hapwatch/hapwatch.db";

/// Where `status`, `history` and `alerts` read when neither `--db` nor
/// `HAPWATCH_DB` says: `./hapwatch.db` if there is one, else the service's
/// database if there is one, else `./hapwatch.db` (and the error says how
/// to make it).
pub fn default_query_path() -> PathBuf {
    let here = default_path();
    if !here.exists() && Path::new(SERVICE_DB).exists() {
        return PathBuf::from(SERVICE_DB);
    }
    here
}

/// A user's name, from the password database.
fn user_name(uid: u32) -> Option<String> {
    // SAFETY: getpwuid returns null or a pointer to static storage, read at
    // once (the query commands are single-threaded here).
    let pw = unsafe { libc::getpwuid(uid) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: a non-null passwd record has a NUL-terminated pw_name.
    let name = unsafe { std::ffi::CStr::from_ptr((*pw).pw_name) };
    Some(name.to_string_lossy().into_owned())
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn sqlite_header(path: &Path) -> Result<bool, StoreError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| StoreError::Io(path.into(), e))?;
    let mut head = [0u8; 16];
    let n = f
        .read(&mut head)
        .map_err(|e| StoreError::Io(path.into(), e))?;
    // An empty file is what we create before SQLite writes its header.
    Ok(n == 0 || (n == 16 && &head == b"SQLite format 3\0"))
}

/// Who besides its owner may read what hapwatch writes (the database, its
/// `-wal` and `-shm`, `--alerts-jsonl`): nobody (mode 0600), or one group
/// (`--group`: mode 0640 and that group), e.g. the operators who run
/// `hapwatch status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readers(pub Option<u32>);

impl Readers {
    /// `--group NAME|GID`.
    pub fn group(g: &str) -> Result<Readers, String> {
        group_id(g).map(|id| Readers(Some(id))).ok_or_else(|| {
            format!("--group {g}: no such group: give a group name or number (getent group)")
        })
    }

    /// The mode a file is created with.
    pub fn mode(self) -> u32 {
        if self.0.is_some() {
            0o640
        } else {
            0o600
        }
    }

    /// Gives a file of ours the group and mode (nothing to do without a
    /// group: files are created 0600).
    pub fn apply(self, path: &Path) -> std::io::Result<()> {
        let Some(gid) = self.0 else { return Ok(()) };
        use std::os::unix::fs::PermissionsExt;
        std::os::unix::fs::chown(path, None, Some(gid))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640))
    }
}

/// A group's id from its name or number.
pub fn group_id(g: &str) -> Option<u32> {
    if let Ok(n) = g.parse() {
        return Some(n);
    }
    let name = std::ffi::CString::new(g).ok()?;
    // SAFETY: getgrnam reads a NUL-terminated name and returns a pointer to
    // static storage or null; the gid is copied out at once (called while
    // the arguments are read, before any other thread could call it).
    let entry = unsafe { libc::getgrnam(name.as_ptr()) };
    // SAFETY: not null, so a valid `group` record.
    (!entry.is_null()).then(|| unsafe { (*entry).gr_gid })
}

impl Store {
    /// Creates an empty database file, mode 0600 (0640 for `readers`,
    /// whose group [`Store::open_for`] gives it; SQLite would use the
    /// umask); [`Store::open`] then takes it as new. Fails if it exists.
    pub fn create_file(path: &Path, readers: Readers) -> Result<(), StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(readers.mode())
            .open(path)
            .map(drop)
            .map_err(|e| StoreError::Io(path.into(), e))
    }

    /// Opens for writing, creating the file (mode 0600) and the schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_for(path, Readers::default())
    }

    /// [`Store::open`], the database, its `-wal` and `-shm` readable by
    /// `readers` (SQLite makes the last two with the database's mode, but
    /// the owner's group unless it runs as root).
    pub fn open_for(path: &Path, readers: Readers) -> Result<Store, StoreError> {
        let store = Self::open_schema(path, readers)?;
        if readers.0.is_some() {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                let p = PathBuf::from(p);
                if p.exists() {
                    readers.apply(&p).map_err(|e| StoreError::Io(p, e))?;
                }
            }
        }
        Ok(store)
    }

    fn open_schema(path: &Path, readers: Readers) -> Result<Store, StoreError> {
        let err = |e| StoreError::Sqlite(path.into(), e);
        if path.exists() {
            if !sqlite_header(path)? {
                return Err(StoreError::NotSqlite(path.into()));
            }
            // Check the version read-only first: a newer database is never
            // touched, not even by a journal-mode change.
            let ro = Self::open_read_only(path)?;
            drop(ro);
        } else {
            Self::create_file(path, readers)?;
        }
        let mut conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        // Leave the WAL to SQLite's automatic checkpoints (every 1000 pages)
        // instead of copying it into the database at every close: a short
        // `analyze --db` would otherwise spend a tenth of its time there.
        // Readers read through the WAL; nothing committed depends on it.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.into(),
                found: version,
            });
        }
        if version < SCHEMA_VERSION {
            let tx = conn.transaction().map_err(err)?;
            if version == 0 {
                tx.execute_batch(SCHEMA).map_err(err)?;
            } else {
                for m in &MIGRATIONS[version as usize..] {
                    tx.execute_batch(m).map_err(err)?;
                }
            }
            if (1..BACKEND_ROLLUPS).contains(&version) {
                minutes::backfill(&tx).map_err(err)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(Store {
            conn,
            path: path.into(),
        })
    }

    /// Opens for reading (`status`, `history`); works while another process
    /// writes.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let err = |e| StoreError::Sqlite(path.into(), e);
        if !path.exists() {
            return Err(StoreError::Missing(path.into()));
        }
        if !sqlite_header(path)? {
            return Err(StoreError::NotSqlite(path.into()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        // Readers scan (a timeline of a day reads every rollup): pages are
        // mapped rather than copied in, and more of them stay cached.
        conn.execute_batch("PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536;")
            .map_err(err)?;
        // Reading the version also proves the file is a readable database.
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::NotADatabase =>
                {
                    StoreError::NotSqlite(path.into())
                }
                e => err(e),
            })?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.into(),
                found: version,
            });
        }
        Ok(Store {
            conn,
            path: path.into(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A warning when other users may read the database (hapwatch creates
    /// it 0600; an older or hand-made file may be wider, and SQLite gives
    /// its `-wal` and `-shm` the same mode).
    pub fn permissions_warning(&self) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&self.path).ok()?.permissions().mode() & 0o777;
        (mode & 0o007 != 0).then(|| {
            format!(
                "warning: {} is readable by other users (mode {mode:04o}): it holds alerts and \
                 server names; chmod 600 {0} (or 640 for a group of readers)",
                self.path.display()
            )
        })
    }

    /// Where the last run stopped reading `path` (canonical), if the file
    /// is still the same one (device and inode, and the text it opens
    /// with, `head`: its first [`Head::MAX`] bytes, decoded when
    /// `decoded`); else where any run stopped reading the same text under
    /// another path (renamed by logrotate, or compressed: the position in
    /// the text carries over). `None` when there is no checkpoint for it.
    pub fn resume_offset(
        &self,
        path: &str,
        (dev, ino): (u64, u64),
        head: Option<&[u8]>,
        decoded: bool,
    ) -> Result<Option<Resume>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let opens = |h: Option<Head>| match (h, head) {
            (Some(h), Some(bytes)) => h.opens(bytes),
            (Some(_), None) => false,
            // Written before schema 16: device and inode alone.
            (None, _) => true,
        };
        if let Some(c) = self.checkpoint_of(path)? {
            if (c.dev, c.ino) == (dev, ino) && opens(c.head) {
                return Ok(Some(Resume {
                    offset: c.offset,
                    decoded: c.decoded,
                }));
            }
        }
        // Another path's checkpoint of the same text; a rotated file
        // (another inode, another text at the same path) starts over.
        let Some(bytes) = head else {
            return Ok(None);
        };
        let mut q = self
            .conn
            .prepare(&format!(
                "{CHECKPOINT} WHERE head_len IS NOT NULL AND path != ?1"
            ))
            .map_err(err)?;
        let rows = q.query_map(params![path], checkpoint_at).map_err(err)?;
        let mut reached = None;
        for row in rows {
            let c = row.map_err(err)?;
            if c.head.is_some_and(|h| h.opens(bytes)) {
                // The place in the text: a compressed file's in what it
                // decodes to, a plain file's its byte.
                reached = reached.max(Some(c.decoded.unwrap_or(c.offset)));
            }
        }
        Ok(reached.map(|at| match decoded {
            true => Resume {
                offset: 0,
                decoded: Some(at),
            },
            false => Resume {
                offset: at,
                decoded: None,
            },
        }))
    }

    /// The checkpoint stored under `path` (canonical), whatever file the
    /// path names now: where a run stopped reading the file it named then.
    pub fn checkpoint_of(&self, path: &str) -> Result<Option<Checkpoint>, StoreError> {
        self.conn
            .query_row(
                &format!("{CHECKPOINT} WHERE path = ?1"),
                params![path],
                checkpoint_at,
            )
            .optional()
            .map_err(|e| StoreError::Sqlite(self.path.clone(), e))
    }

    /// Where a journal source (`listen --journal`) stopped: the cursor of
    /// the last entry stored.
    pub fn resume_cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT cursor FROM checkpoints WHERE path = ?1",
                params![source],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| StoreError::Sqlite(self.path.clone(), e))
    }

    /// Records where a file starts to be read when nothing was read of it
    /// yet (`listen --follow` starting at its end): a restart, even after
    /// SIGKILL before the first commit, reads on from here.
    pub fn start_checkpoint(&self, c: &Checkpoint) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO checkpoints (path, dev, ino, offset, updated_ms, head_len, head_hash)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)
                 ON CONFLICT (path) DO UPDATE SET
                    dev = excluded.dev, ino = excluded.ino, offset = excluded.offset,
                    decoded = NULL, head_len = excluded.head_len,
                    head_hash = excluded.head_hash",
                params![
                    c.path,
                    c.dev as i64,
                    c.ino as i64,
                    c.offset as i64,
                    c.head.map(|h| h.len as i64),
                    c.head.map(|h| h.hash as i64)
                ],
            )
            .map(drop)
            .map_err(|e| StoreError::Sqlite(self.path.clone(), e))
    }

    /// Writes one batch in one transaction: the transitions and rollups
    /// since the last batch, every server's and backend's current state, and
    /// where each file was read up to. A crash leaves all of it as it was
    /// before, so the next run reads the same lines again and counts them
    /// once. Returns the number of transitions that were new.
    pub fn persist(&mut self, b: &Batch) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::Sqlite(path.clone(), e);
        let engine = b.engine;
        let tx = self.conn.transaction().map_err(err)?;
        let mut new = 0;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO transitions
                     (at_ms, host, backend, server, from_state, to_state, cause, pattern, check_json, nth)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(err)?;
            for t in b.transitions {
                new += ins
                    .execute(params![
                        t.at,
                        t.host,
                        t.backend,
                        t.server,
                        t.from.as_str(),
                        t.to.as_str(),
                        t.cause,
                        t.pattern,
                        t.check
                            .as_ref()
                            .map(|c| serde_json::to_string(c).expect("serializes")),
                        t.nth,
                    ])
                    .map_err(err)?;
            }
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO checks
                     (at_ms, host, backend, server, result, check_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for c in b.checks {
                ins.execute(params![
                    c.at,
                    c.host,
                    c.backend,
                    c.server,
                    c.check.result,
                    serde_json::to_string(&c.check).expect("serializes"),
                ])
                .map_err(err)?;
            }
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO process_events (at_ms, host, event, proxy, message)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for p in b.process {
                ins.execute(params![p.at, p.host, p.event, p.proxy, p.message])
                    .map_err(err)?;
            }
            minutes::write(&tx, b.rollups, b.backend_minutes).map_err(err)?;
            if let Some(state) = b.rules_state {
                tx.execute(
                    "INSERT OR REPLACE INTO rules_state (id, state) VALUES (1, ?1)",
                    params![state],
                )
                .map_err(err)?;
            }
            if !b.skewed.is_empty() {
                let mut ins = tx
                    .prepare_cached(
                        "INSERT INTO skewed (received_ms, host, event_ms, line) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(err)?;
                for k in b.skewed {
                    ins.execute(params![k.bound, k.host, k.at, k.line])
                        .map_err(err)?;
                }
                tx.execute(
                    "DELETE FROM skewed WHERE id <= (SELECT max(id) FROM skewed) - ?1",
                    params![SKEWED_ROWS],
                )
                .map_err(err)?;
            }
            {
                let mut ins = tx
                    .prepare_cached(
                        // A process restarted knows a host's clock only once
                        // it has measured a line again (lines read back from
                        // the reorder window arrived before the restart and
                        // measure nothing): what is stored stays until then,
                        // and a newest line stays the newest.
                        "INSERT INTO hosts (host, last_event_ms, offset_ms, reference)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (host) DO UPDATE SET
                           last_event_ms = MAX(last_event_ms, excluded.last_event_ms),
                           reference = CASE WHEN excluded.offset_ms IS NULL
                             THEN reference ELSE excluded.reference END,
                           offset_ms = COALESCE(excluded.offset_ms, offset_ms)",
                    )
                    .map_err(err)?;
                for (host, c) in b.engine.clocks.changed() {
                    ins.execute(params![host, c.last_event, c.offset, c.reference.as_str()])
                        .map_err(err)?;
                }
            }
            if let Some(held) = b.held {
                tx.execute("DELETE FROM held_lines", []).map_err(err)?;
                let mut ins = tx
                    .prepare_cached("INSERT INTO held_lines (seq, line) VALUES (?1, ?2)")
                    .map_err(err)?;
                for (i, line) in held.iter().enumerate() {
                    ins.execute(params![i as i64, line]).map_err(err)?;
                }
            }
            let mut al = tx
                .prepare_cached(
                    "INSERT INTO alerts (fingerprint, starts_ms, rule, status, severity, ends_ms, alert_json, notified_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CAST(strftime('%s','now') AS INTEGER) * 1000)
                     ON CONFLICT (fingerprint, starts_ms) DO UPDATE SET
                        status = excluded.status, ends_ms = excluded.ends_ms,
                        alert_json = excluded.alert_json
                     WHERE excluded.status = 'resolved'",
                )
                .map_err(err)?;
            let mut ob = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO outbox (sink, fingerprint, starts_ms, status, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for a in b.alerts {
                let status = match a.status {
                    crate::model::Status::Firing => "firing",
                    crate::model::Status::Resolved => "resolved",
                };
                let payload = serde_json::to_string(a).expect("serializes");
                // Info records (MAINT, DRAIN) are not paged unless a sink
                // asks for them.
                for (sink, min) in b.sinks {
                    if a.severity.rank() >= min.rank() {
                        ob.execute(params![sink, a.fingerprint(), a.starts_at, status, payload])
                            .map_err(err)?;
                    }
                }
                al.execute(params![
                    a.fingerprint(),
                    a.starts_at,
                    a.rule,
                    match a.status {
                        crate::model::Status::Firing => "firing",
                        crate::model::Status::Resolved => "resolved",
                    },
                    a.severity.as_str(),
                    a.ends_at,
                    serde_json::to_string(a).expect("serializes"),
                ])
                .map_err(err)?;
            }
            // A server row moves only forward in event time: reading an
            // older log after a newer one does not turn the clock back. A
            // run that only saw requests of a server (UNKNOWN) keeps the
            // state an earlier run established.
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO servers (host, backend, server, backup, state, since_ms, last_cause,
                        check_health, check_of, check_state, check_reason, last_request_ms, updated_ms,
                        op, admin, check_json, check_before, from_check, last_state_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                        ?16, ?17, ?18, ?19)
                     ON CONFLICT (host, backend, server) DO UPDATE SET
                        backup = excluded.backup OR servers.backup,
                        state = CASE excluded.state WHEN 'UNKNOWN' THEN servers.state
                                ELSE excluded.state END,
                        since_ms = COALESCE(excluded.since_ms, servers.since_ms),
                        op = COALESCE(excluded.op, servers.op),
                        admin = COALESCE(excluded.admin, servers.admin),
                        last_cause = COALESCE(excluded.last_cause, servers.last_cause),
                        check_health = COALESCE(excluded.check_health, servers.check_health),
                        check_of = COALESCE(excluded.check_of, servers.check_of),
                        check_state = COALESCE(excluded.check_state, servers.check_state),
                        check_reason = COALESCE(excluded.check_reason, servers.check_reason),
                        check_json = COALESCE(excluded.check_json, servers.check_json),
                        check_before = COALESCE(excluded.check_before, servers.check_before),
                        from_check = COALESCE(excluded.from_check, servers.from_check),
                        last_state_ms = COALESCE(excluded.last_state_ms, servers.last_state_ms),
                        last_request_ms = COALESCE(
                            MAX(excluded.last_request_ms, servers.last_request_ms),
                            excluded.last_request_ms, servers.last_request_ms),
                        updated_ms = excluded.updated_ms
                     WHERE excluded.updated_ms >= servers.updated_ms",
                )
                .map_err(err)?;
            for k in &b.changed.servers {
                let st = engine.health.servers.get(k);
                let last_request = engine.aggregates.find(k).and_then(|s| s.last);
                let check = st.and_then(|s| s.last_check.as_ref());
                let label = st.map_or(crate::engine::Label::Unknown, |s| s.label());
                // The event time this row stands for: the last thing seen
                // of the server.
                let updated = [st.and_then(|s| s.since), last_request]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(0);
                up.execute(params![
                    k.host,
                    k.backend,
                    k.server,
                    st.is_some_and(|s| s.backup),
                    label.as_str(),
                    st.and_then(|s| s.since),
                    st.and_then(|s| s.last_cause.clone()),
                    check.and_then(|c| c.health.map(|h| h.0)),
                    check.and_then(|c| c.health.map(|h| h.1)),
                    check.and_then(|c| c.check_state.clone()),
                    check.and_then(|c| c.reason.clone()),
                    last_request,
                    updated,
                    st.and_then(|s| s.op).map(op_str),
                    st.and_then(|s| s.admin).map(admin_str),
                    check.map(|c| serde_json::to_string(c).expect("serializes")),
                    st.map(|s| s.check_just_before),
                    st.map(|s| s.from_check),
                    st.and_then(|s| s.last_state_at),
                ])
                .map_err(err)?;
            }
            let mut be = tx
                .prepare_cached(
                    "INSERT INTO backends (host, backend, active, backups, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (host, backend) DO UPDATE SET
                        active = COALESCE(excluded.active, backends.active),
                        backups = COALESCE(excluded.backups, backends.backups),
                        updated_ms = excluded.updated_ms
                     WHERE excluded.updated_ms >= backends.updated_ms",
                )
                .map_err(err)?;
            let mut period = tx
                .prepare_cached(
                    "INSERT INTO no_server_periods (host, backend, start_ms, end_ms)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (host, backend, start_ms) DO UPDATE SET
                        end_ms = COALESCE(excluded.end_ms, no_server_periods.end_ms)",
                )
                .map_err(err)?;
            let (_, end) = engine.window();
            let backends: Vec<(&(String, String), &crate::engine::state::BackendState)> = b
                .changed
                .backends
                .iter()
                .filter_map(|k| engine.health.backends.get_key_value(k))
                .collect();
            for ((host, backend), st) in backends {
                be.execute(params![
                    host,
                    backend,
                    st.active,
                    st.backups,
                    end.unwrap_or(0)
                ])
                .map_err(err)?;
                for p in &st.no_server {
                    period
                        .execute(params![host, backend, p.start, p.end])
                        .map_err(err)?;
                }
            }
            let mut cp = tx
                .prepare_cached(
                    "INSERT INTO checkpoints
                        (path, dev, ino, offset, updated_ms, cursor, decoded, head_len, head_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (path) DO UPDATE SET
                        dev = excluded.dev, ino = excluded.ino,
                        offset = excluded.offset, updated_ms = excluded.updated_ms,
                        cursor = excluded.cursor, decoded = excluded.decoded,
                        head_len = excluded.head_len, head_hash = excluded.head_hash",
                )
                .map_err(err)?;
            for c in b.checkpoints {
                cp.execute(params![
                    c.path,
                    c.dev as i64,
                    c.ino as i64,
                    c.offset as i64,
                    end.unwrap_or(0),
                    c.cursor,
                    c.decoded.map(|n| n as i64),
                    c.head.map(|h| h.len as i64),
                    c.head.map(|h| h.hash as i64)
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(new)
    }

    /// The state every server was left in, to continue from (a resumed file,
    /// a restarted receiver): what `HealthTracker` would have had.
    pub fn load_states(
        &self,
    ) -> Result<Vec<(crate::engine::ServerKey, crate::engine::state::ServerState)>, StoreError>
    {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare(
                "SELECT host, backend, server, backup, op, admin, since_ms, last_cause,
                        check_health, check_of, check_state, check_reason,
                        check_json, check_before, from_check, last_state_ms
                 FROM servers WHERE op IS NOT NULL OR admin IS NOT NULL",
            )
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                let key = crate::engine::ServerKey {
                    host: r.get(0)?,
                    backend: r.get(1)?,
                    server: r.get(2)?,
                };
                let health = match (r.get::<_, Option<u32>>(8)?, r.get::<_, Option<u32>>(9)?) {
                    (Some(x), Some(y)) => Some((x, y)),
                    _ => None,
                };
                let st = crate::engine::state::ServerState {
                    backup: r.get(3)?,
                    op: r.get::<_, Option<String>>(4)?.as_deref().and_then(parse_op),
                    admin: r
                        .get::<_, Option<String>>(5)?
                        .as_deref()
                        .and_then(parse_admin),
                    since: r.get(6)?,
                    last_cause: r.get(7)?,
                    // The check line whole; rows from before schema 17
                    // keep its counts, state and reason.
                    last_check: r
                        .get::<_, Option<String>>(12)?
                        .and_then(|j| serde_json::from_str(&j).ok())
                        .or_else(|| {
                            health.map(|h| crate::haproxy::CheckDetails {
                                health: Some(h),
                                check_state: r.get(10).ok().flatten(),
                                reason: r.get(11).ok().flatten(),
                                ..Default::default()
                            })
                        }),
                    check_just_before: r.get::<_, Option<bool>>(13)?.unwrap_or(false),
                    from_check: r.get::<_, Option<bool>>(14)?.unwrap_or(false),
                    last_state_at: r.get(15)?,
                    ..Default::default()
                };
                Ok((key, st))
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    /// Alerts, newest first: firing only with `active`; those that started
    /// or ended at or after `since`.
    pub fn alerts(
        &self,
        active: bool,
        since: Option<Millis>,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare(
                "SELECT alert_json FROM alerts
                 WHERE (?1 = 0 OR status = 'firing')
                   AND (COALESCE(ends_ms, starts_ms) >= ?2 OR status = 'firing')
                 ORDER BY starts_ms DESC, rule",
            )
            .map_err(err)?;
        let rows = q
            .query_map(params![active as i64, since.unwrap_or(i64::MIN)], |r| {
                r.get::<_, String>(0)
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(serde_json::from_str(&r.map_err(err)?).unwrap_or(serde_json::Value::Null));
        }
        Ok(out)
    }

    /// Firing alerts not notified since `before` (wall clock) are queued
    /// again for `sinks` (the repeat interval). Returns how many.
    pub fn renotify(
        &mut self,
        sinks: &[(String, crate::model::Severity)],
        before: i64,
        now: i64,
    ) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::Sqlite(path.clone(), e);
        let tx = self.conn.transaction().map_err(err)?;
        let due: Vec<(String, i64, String, String)> = {
            let mut q = tx
                .prepare(
                    "SELECT fingerprint, starts_ms, alert_json, severity FROM alerts
                     WHERE status = 'firing' AND COALESCE(notified_ms, 0) <= ?1",
                )
                .map_err(err)?;
            let rows = q
                .query_map(params![before], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(err)?
        };
        for (fp, starts, payload, severity) in &due {
            let rank = crate::model::Severity::from_name(severity).map_or(0, |s| s.rank());
            for (sink, _) in sinks.iter().filter(|(_, min)| rank >= min.rank()) {
                tx.execute(
                    "INSERT OR IGNORE INTO outbox (sink, fingerprint, starts_ms, status, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![sink, fp, starts, format!("repeat@{now}"), payload],
                )
                .map_err(err)?;
            }
            tx.execute(
                "UPDATE alerts SET notified_ms = ?3 WHERE fingerprint = ?1 AND starts_ms = ?2",
                params![fp, starts, now],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(due.len())
    }

    /// Deliveries due at `now` (wall clock), oldest first. A row waits
    /// while an older row of the same alert for the same sink is pending
    /// (backing off): a resolution is never delivered before its firing.
    pub fn outbox_due(&self, now: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare_cached(
                "SELECT id, sink, payload, attempts FROM outbox AS o
                 WHERE state = 'pending' AND next_ms <= ?1
                   AND NOT EXISTS (SELECT 1 FROM outbox AS e
                                   WHERE e.state = 'pending' AND e.sink = o.sink
                                     AND e.fingerprint = o.fingerprint AND e.id < o.id)
                 ORDER BY id LIMIT ?2",
            )
            .map_err(err)?;
        let rows = q
            .query_map(params![now, limit as i64], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    sink: r.get(1)?,
                    payload: r.get(2)?,
                    attempts: r.get(3)?,
                })
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    pub fn outbox_delivered(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_ms = ?2
                 WHERE id = ?1",
                params![id, now],
            )
            .map(|_| ())
            .map_err(|e| StoreError::Sqlite(self.path.clone(), e))
    }

    /// A failed attempt: retry at `next`, or dead-letter.
    pub fn outbox_failed(
        &self,
        id: i64,
        next: i64,
        error: &str,
        dead: bool,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, next_ms = ?2, last_error = ?3,
                        state = CASE WHEN ?4 THEN 'dead' ELSE 'pending' END
                 WHERE id = ?1",
                params![id, next, error, dead],
            )
            .map(|_| ())
            .map_err(|e| StoreError::Sqlite(self.path.clone(), e))
    }

    /// Deliveries that failed at least once and are not delivered: pending
    /// retries and dead letters.
    pub fn failed_deliveries(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare(
                "SELECT sink, state, attempts, last_error, payload FROM outbox
                 WHERE state != 'delivered' AND attempts > 0 ORDER BY id",
            )
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                let payload: String = r.get(4)?;
                let a: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
                Ok(serde_json::json!({
                    "sink": r.get::<_, String>(0)?,
                    "state": r.get::<_, String>(1)?,
                    "attempts": r.get::<_, i64>(2)?,
                    "last_error": r.get::<_, Option<String>>(3)?,
                    "rule": a["rule"],
                    "status": a["status"],
                    "summary": a["summary"],
                }))
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    /// The lines `listen`'s reorder window held at the last commit, in
    /// release order: read from a checkpoint on, they were already read.
    pub fn held_lines(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare("SELECT line FROM held_lines ORDER BY seq")
            .map_err(err)?;
        let rows = q.query_map([], |r| r.get(0)).map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    /// What the alert rules carried when the last run stopped (JSON).
    pub fn rules_state(&self) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row("SELECT state FROM rules_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| StoreError::Sqlite(self.path.clone(), e))
    }

    /// Alerts firing when the last run stopped: they stay firing.
    pub fn firing_alerts(&self) -> Result<Vec<crate::model::Alert>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare("SELECT alert_json FROM alerts WHERE status = 'firing'")
            .map_err(err)?;
        let rows = q.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            if let Ok(a) = serde_json::from_str(&r.map_err(err)?) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Per-minute rollups of the servers the filter selects, oldest first.
    pub fn rollups(&self, f: &Filter) -> Result<Vec<Rollup>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare(
                "SELECT host, backend, server, minute_ms, requests, status_other, status_1xx,
                        status_2xx, status_3xx, status_4xx, status_5xx, errors, bytes, retries,
                        redispatches, srv_queue_max, backend_queue_max, terminations, tw, tr, tt
                 FROM rollups WHERE minute_ms >= ?1 AND minute_ms < ?2
                 ORDER BY minute_ms, host, backend, server",
            )
            .map_err(err)?;
        let since = f.since.map_or(i64::MIN, minute_of);
        let rows = q
            .query_map(params![since, f.until.unwrap_or(i64::MAX)], rollup_from_row)
            .map_err(err)?;
        selected(rows, |r| {
            f.selects(&r.key.host, &r.key.backend, Some(&r.key.server))
        })
        .map_err(err)
    }

    /// Drops transitions, rollups and ended no-server periods older than `keep`
    /// before the newest event time stored (event time, not the wall clock:
    /// analysing last year's logs does not erase them at once). Current
    /// server states are kept. Returns the number of rows removed.
    pub fn prune(&mut self, keep: Millis) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::Sqlite(path.clone(), e);
        let tx = self.conn.transaction().map_err(err)?;
        let newest: Option<Millis> = tx
            .query_row(
                "SELECT MAX(t) FROM (SELECT MAX(at_ms) AS t FROM transitions
                                     UNION ALL SELECT MAX(updated_ms) FROM servers
                                     UNION ALL SELECT MAX(minute_ms) FROM rollups)",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        let Some(newest) = newest else {
            return Ok(0);
        };
        let cutoff = newest - keep;
        let mut n = tx
            .execute("DELETE FROM transitions WHERE at_ms < ?1", params![cutoff])
            .map_err(err)?;
        n += tx
            .execute("DELETE FROM checks WHERE at_ms < ?1", params![cutoff])
            .map_err(err)?;
        n += tx
            .execute(
                "DELETE FROM process_events WHERE at_ms < ?1",
                params![cutoff],
            )
            .map_err(err)?;
        for table in ["rollups", "backend_rollups"] {
            n += tx
                .execute(
                    &format!("DELETE FROM {table} WHERE minute_ms < ?1"),
                    params![minute_of(cutoff)],
                )
                .map_err(err)?;
        }
        n += tx
            .execute(
                "DELETE FROM no_server_periods WHERE end_ms IS NOT NULL AND end_ms < ?1",
                params![cutoff],
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(n)
    }

    /// The current state of every server the filter selects.
    pub fn servers(&self, f: &Filter) -> Result<Vec<ServerRow>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare(
                "SELECT host, backend, server, backup, state, since_ms, last_cause,
                        check_health, check_of, check_state, check_reason, last_request_ms
                 FROM servers ORDER BY host, backend, server",
            )
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                Ok(ServerRow {
                    host: r.get(0)?,
                    backend: r.get(1)?,
                    server: r.get(2)?,
                    backup: r.get(3)?,
                    state: r.get(4)?,
                    since: r.get::<_, Option<Millis>>(5)?.map(format_rfc3339_ms),
                    last_cause: r.get(6)?,
                    check: match (r.get::<_, Option<u32>>(7)?, r.get::<_, Option<u32>>(8)?) {
                        (Some(x), Some(y)) => Some(format!(
                            "{x}/{y} {}",
                            r.get::<_, Option<String>>(9)?.unwrap_or_default()
                        )),
                        _ => None,
                    },
                    check_reason: r.get(10)?,
                    last_request: r.get::<_, Option<Millis>>(11)?.map(format_rfc3339_ms),
                    inventory: None,
                })
            })
            .map_err(err)?;
        selected(rows, |r| f.selects(&r.host, &r.backend, Some(&r.server))).map_err(err)
    }

    /// Backends with servers up/total and whether they have a server now.
    pub fn backends(&self, f: &Filter) -> Result<Vec<BackendRow>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare(
                "SELECT s.host, s.backend,
                        SUM(s.state IN ('UP', 'DRAIN', 'STOPPING')), COUNT(*),
                        (SELECT MAX(start_ms) FROM no_server_periods p
                          WHERE p.host = s.host AND p.backend = s.backend AND p.end_ms IS NULL)
                 FROM servers s WHERE s.server != '<NOSRV>'
                 GROUP BY s.host, s.backend ORDER BY s.host, s.backend",
            )
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                Ok(BackendRow {
                    host: r.get(0)?,
                    backend: r.get(1)?,
                    servers_up: r.get(2)?,
                    servers: r.get(3)?,
                    no_server_since: r.get::<_, Option<Millis>>(4)?.map(format_rfc3339_ms),
                })
            })
            .map_err(err)?;
        selected(rows, |r| f.selects(&r.host, &r.backend, None)).map_err(err)
    }

    /// Each HAProxy host the store knows, with the event time of its
    /// newest line stored (a request, a state or check line, a no-server
    /// period, HAProxy's own start or stop; not `backends.updated_ms`, the
    /// time of the commit's newest event whatever its host) and how many of its lines were
    /// quarantined for their date: what the fleet view calls silent or
    /// skewed. Derived from the rows themselves, so the hot path pays
    /// nothing for it.
    pub fn hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut parts = vec![
            "SELECT host AS h, MAX(updated_ms) AS t FROM servers GROUP BY host",
            "SELECT host, MAX(COALESCE(end_ms, start_ms)) FROM no_server_periods GROUP BY host",
        ];
        if self.has_table("checks").map_err(err)? {
            parts.push("SELECT host, MAX(at_ms) FROM checks GROUP BY host");
        }
        if self.has_table("process_events").map_err(err)? {
            parts.push("SELECT host, MAX(at_ms) FROM process_events GROUP BY host");
        }
        let skewed = if self.has_table("skewed").map_err(err)? {
            "(SELECT COUNT(*) FROM skewed k WHERE k.host = h)"
        } else {
            "0"
        };
        let clock = if self.has_table("hosts").map_err(err)? {
            parts.push("SELECT host, last_event_ms FROM hosts");
            "(SELECT offset_ms FROM hosts c WHERE c.host = h), \
             (SELECT reference FROM hosts c WHERE c.host = h)"
        } else {
            "NULL, NULL"
        };
        let sql = format!(
            "SELECT h, MAX(t), {skewed}, {clock} FROM ({}) GROUP BY h ORDER BY h",
            parts.join(" UNION ALL ")
        );
        let mut q = self.conn.prepare(&sql).map_err(err)?;
        let rows = q
            .query_map([], |r| {
                Ok(HostRow {
                    host: r.get(0)?,
                    last: r.get::<_, Option<Millis>>(1)?.filter(|&t| t > 0),
                    skewed_lines: r.get::<_, i64>(2)? as u64,
                    offset: r.get(3)?,
                    reference: r.get(4)?,
                })
            })
            .map_err(err)?;
        selected(rows, |_| true).map_err(err)
    }

    /// Transitions in event-time order, filtered.
    /// The lines quarantined for their date, newest first.
    pub fn skewed(&self) -> Result<Vec<SkewedRow>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare("SELECT received_ms, host, event_ms, line FROM skewed ORDER BY id DESC")
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                Ok(SkewedRow {
                    bound: format_rfc3339_ms(r.get(0)?),
                    host: r.get(1)?,
                    event_time: format_rfc3339_ms(r.get(2)?),
                    line: r.get(3)?,
                })
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    pub fn history(&self, f: &Filter) -> Result<Vec<HistoryRow>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare(
                "SELECT at_ms, host, backend, server, from_state, to_state, cause, pattern, check_json
                 FROM transitions
                 WHERE at_ms >= ?1 AND at_ms < ?2
                 ORDER BY at_ms, id",
            )
            .map_err(err)?;
        let rows = q
            .query_map(
                params![f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX)],
                |r| {
                    let at: Millis = r.get(0)?;
                    Ok(HistoryRow {
                        at: crate::time::format_if_timed(at),
                        order: crate::time::untimed_order(at),
                        host: r.get(1)?,
                        backend: r.get(2)?,
                        server: r.get(3)?,
                        from: r.get(4)?,
                        to: r.get(5)?,
                        cause: r.get(6)?,
                        pattern: r.get(7)?,
                        check: r
                            .get::<_, Option<String>>(8)?
                            .and_then(|s| serde_json::from_str(&s).ok()),
                    })
                },
            )
            .map_err(err)?;
        selected(rows, |r| f.selects(&r.host, &r.backend, Some(&r.server))).map_err(err)
    }
}

/// The rows a filter keeps, or the first error.
fn selected<T>(
    rows: impl Iterator<Item = rusqlite::Result<T>>,
    keep: impl Fn(&T) -> bool,
) -> rusqlite::Result<Vec<T>> {
    let mut out = Vec::new();
    for row in rows {
        let row = row?;
        if keep(&row) {
            out.push(row);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerRow {
    pub host: String,
    pub backend: String,
    pub server: String,
    pub backup: bool,
    pub state: String,
    pub since: Option<String>,
    pub last_cause: Option<String>,
    /// Last health check progress, e.g. `2/2 UP`.
    pub check: Option<String>,
    pub check_reason: Option<String>,
    pub last_request: Option<String>,
    /// With `--haproxy-config`: see `report::ServerReport::inventory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendRow {
    pub host: String,
    pub backend: String,
    pub servers_up: u32,
    pub servers: u32,
    /// Set while the backend has no server available.
    pub no_server_since: Option<String>,
}

impl From<&crate::engine::Transition> for HistoryRow {
    fn from(t: &crate::engine::Transition) -> Self {
        HistoryRow {
            at: crate::time::format_if_timed(t.at),
            order: t.order,
            host: t.host.clone(),
            backend: t.backend.clone(),
            server: t.server.clone(),
            from: t.from.as_str().to_string(),
            to: t.to.as_str().to_string(),
            cause: t.cause.clone(),
            pattern: t.pattern.clone(),
            check: t.check.as_ref().and_then(|c| serde_json::to_value(c).ok()),
        }
    }
}

/// A HAProxy host as the store knows it ([`Store::hosts`]).
#[derive(Debug, Clone, Serialize)]
pub struct HostRow {
    pub host: String,
    /// Event time of its newest stored line.
    pub last: Option<Millis>,
    /// Its lines quarantined for a date too far past their receive time.
    pub skewed_lines: u64,
    /// How far its dates run ahead of the reference (negative: behind),
    /// when measured (`engine::clocks`).
    pub offset: Option<Millis>,
    /// What the offset was measured against: `received` or `fleet`.
    pub reference: Option<String>,
}

/// A line quarantined for its date (`status --skewed`).
#[derive(Debug, Clone, Serialize)]
pub struct SkewedRow {
    /// The latest date it could have had: receive time (or the file's
    /// modification time) plus `--max-skew`.
    pub bound: String,
    pub host: String,
    pub event_time: String,
    pub line: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    /// `None` (JSON `null`) for a line with no time, with its `order`.
    pub at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
    pub host: String,
    pub backend: String,
    pub server: String,
    pub from: String,
    pub to: String,
    pub cause: Option<String>,
    pub pattern: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every object of a database's schema, as SQLite keeps it.
    fn schema_of(c: &Connection) -> Vec<(String, String, String, Option<String>)> {
        let mut q = c
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
            .unwrap();
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_checkpoint_is_found_by_the_text_its_file_opens_with() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("c.db")).unwrap();
        let text: Vec<u8> = (0..40)
            .flat_map(|i| {
                format!("2026-12-07T10:00:{i:02}+00:00 lb1 haproxy[1]: line {i}\n").into_bytes()
            })
            .collect();
        let other = text
            .iter()
            .map(|b| b.to_ascii_uppercase())
            .collect::<Vec<_>>();
        let head = Head::of(&text[..500]).unwrap();
        s.conn
            .execute(
                "INSERT INTO checkpoints (path, dev, ino, offset, updated_ms, head_len, head_hash)
                 VALUES ('/log/haproxy.log', 1, 10, 900, 0, ?1, ?2),
                        ('/log/old.log', 1, 30, 700, 0, NULL, NULL)",
                params![head.len as i64, head.hash as i64],
            )
            .unwrap();
        let at = |path: &str, id: (u64, u64), head: &[u8], decoded: bool| {
            s.resume_offset(path, id, Some(head), decoded).unwrap()
        };
        let plain = |offset| {
            Some(Resume {
                offset,
                decoded: None,
            })
        };
        // Its own path and inode, the same text (grown since).
        assert_eq!(at("/log/haproxy.log", (1, 10), &text, false), plain(900));
        // Copytruncated and written past the checkpoint: another text.
        assert_eq!(at("/log/haproxy.log", (1, 10), &other, false), None);
        // Renamed, then compressed: the same text under another path.
        assert_eq!(at("/log/haproxy.log.1", (1, 10), &text, false), plain(900));
        let gz = Some(Resume {
            offset: 0,
            decoded: Some(900),
        });
        assert_eq!(at("/log/haproxy.log.2.gz", (1, 20), &text, true), gz);
        // Its inode reused for another text: nothing to resume.
        assert_eq!(at("/log/new.log", (1, 10), &other, false), None);
        // Too short a text to tell: no head, no match by it.
        assert_eq!(Head::of(&text[..Head::MIN - 1]), None);
        assert_eq!(
            s.resume_offset("/log/x.log", (1, 10), None, false).unwrap(),
            None
        );
        // A checkpoint from before heads were kept: device and inode.
        assert_eq!(at("/log/old.log", (1, 30), &other, false), plain(700));
    }

    #[test]
    fn a_new_database_has_the_schema_its_migrations_make() {
        let dir = tempfile::tempdir().unwrap();
        // The way a database that is not new gets there: every migration.
        let migrated = Connection::open(dir.path().join("m.db")).unwrap();
        for m in MIGRATIONS {
            migrated.execute_batch(m).unwrap();
        }
        // A new one, as `Store::open` makes it (from `schema.sql`).
        let path = dir.path().join("n.db");
        drop(Store::open(&path).unwrap());
        let new = Connection::open(&path).unwrap();
        let (want, got) = (schema_of(&migrated), schema_of(&new));
        assert!(want.len() > 20, "{want:?}");
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(w, g, "schema.sql differs from MIGRATIONS");
        }
        assert_eq!(want.len(), got.len(), "schema.sql differs from MIGRATIONS");
        let version: i64 = new
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
