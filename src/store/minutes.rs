//! The per-minute request figures, at two levels: per server (`rollups`)
//! and per backend (`backend_rollups`, every server's minute of it added
//! up, `<NOSRV>`'s included). A backend's minute is written in the same
//! transaction as its servers', from the same pieces, so it always equals
//! their sum; it exists because a day's timeline of 300 servers would
//! otherwise merge 432,000 server-minutes (two histograms each) into
//! 14,400 backend-minutes on every read, which was most of its time.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Row, Transaction};

use crate::engine::counts::Counts;
use crate::engine::rollup::{Minute, Rollup};
use crate::engine::stats::{pack, termination_str};
use crate::engine::tally::Tally;
use crate::engine::ServerKey;
use crate::time::Millis;

/// A minute's columns after its key, in both tables.
macro_rules! minute_columns {
    () => {
        "requests, status_other, status_1xx, status_2xx, status_3xx, status_4xx, status_5xx,
         errors, bytes, retries, redispatches, srv_queue_max, backend_queue_max, terminations,
         tw, tr, tt"
    };
}

/// [`minute_columns`] set from the parameters after a key and the
/// `<NOSRV>` 503s (`?5` on), for [`Table::put`].
macro_rules! minute_assignments {
    () => {
        "requests = ?5, status_other = ?6, status_1xx = ?7, status_2xx = ?8, status_3xx = ?9,
         status_4xx = ?10, status_5xx = ?11, errors = ?12, bytes = ?13, retries = ?14,
         redispatches = ?15, srv_queue_max = ?16, backend_queue_max = ?17, terminations = ?18,
         tw = ?19, tr = ?20, tt = ?21"
    };
}

/// The statements adding minutes to one table: its key first, then (for
/// backends) the `<NOSRV>` 503s, then [`minute_columns`].
struct Table {
    /// `backend_rollups`: three key columns and the `<NOSRV>` 503s. Said
    /// here, not found by comparing addresses: each use of a `const` may be
    /// a fresh temporary (a debug build compared `&BACKENDS` unequal to
    /// itself and read backend rows with a server's four keys).
    backends: bool,
    /// A stored minute, to merge a piece into.
    get: &'static str,
    /// A new minute (most are): nothing if one is stored already.
    fresh: &'static str,
    /// The merged minute written back in place: an `UPDATE` changes no
    /// key, so no index (`INSERT OR REPLACE` deleted and inserted the
    /// row's entry in `rollups_server`: a page of the index per server at
    /// every commit of a live feed).
    put: &'static str,
}

const SERVERS: Table = Table {
    backends: false,
    get: concat!(
        "SELECT host, backend, server, minute_ms, ",
        minute_columns!(),
        " FROM rollups WHERE host = ?1 AND backend = ?2 AND server = ?3 AND minute_ms = ?4"
    ),
    fresh: concat!(
        "INSERT INTO rollups (host, backend, server, minute_ms, ",
        minute_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                   ?18, ?19, ?20, ?21) ON CONFLICT DO NOTHING"
    ),
    put: concat!(
        "UPDATE rollups SET ",
        minute_assignments!(),
        " WHERE host = ?1 AND backend = ?2 AND server = ?3 AND minute_ms = ?4"
    ),
};

const BACKENDS: Table = Table {
    backends: true,
    get: concat!(
        "SELECT host, backend, minute_ms, nosrv_5xx, ",
        minute_columns!(),
        " FROM backend_rollups WHERE host = ?1 AND backend = ?2 AND minute_ms = ?3"
    ),
    fresh: concat!(
        "INSERT INTO backend_rollups (host, backend, minute_ms, nosrv_5xx, ",
        minute_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                   ?18, ?19, ?20, ?21) ON CONFLICT DO NOTHING"
    ),
    put: concat!(
        "UPDATE backend_rollups SET nosrv_5xx = ?4, ",
        minute_assignments!(),
        " WHERE host = ?1 AND backend = ?2 AND minute_ms = ?3"
    ),
};

/// `SELECT`s reading whole rows start with the key and (backends) the
/// `<NOSRV>` 503s, four columns either way: the minute's columns follow.
const FIGURES_AT: usize = 4;

/// [`crate::store::Store::each_backend_minute`]'s query.
pub(super) const EACH_BACKEND_MINUTE: &str = concat!(
    "SELECT host, backend, minute_ms, nosrv_5xx, ",
    minute_columns!(),
    " FROM backend_rollups WHERE minute_ms >= ?1 AND minute_ms < ?2"
);

/// [`crate::store::Store::each_server_minute`]'s query.
pub(super) const SERVER_MINUTES: &str = concat!(
    "SELECT host, backend, server, minute_ms, ",
    minute_columns!(),
    " FROM rollups WHERE host = ?1 AND backend = ?2 AND server = ?3
        AND minute_ms >= ?4 AND minute_ms < ?5"
);

/// One backend's minute, read back.
#[derive(Clone, Debug)]
pub struct BackendMinute {
    pub host: String,
    pub backend: String,
    pub minute: Millis,
    /// 503s HAProxy answered itself, no server being available.
    pub nosrv: u64,
    pub data: Minute,
}

pub(super) fn rollup_from_row(r: &Row) -> rusqlite::Result<Rollup> {
    rollup_from_row_with(r, [true; 3])
}

/// A server's minute with only the timers `decode` asks for decoded (a
/// histogram costs more to decode than the rest of the row to read).
pub(super) fn rollup_from_row_with(r: &Row, decode: [bool; 3]) -> rusqlite::Result<Rollup> {
    Ok(Rollup {
        key: ServerKey {
            host: r.get(0)?,
            backend: r.get(1)?,
            server: r.get(2)?,
        },
        minute: r.get(3)?,
        data: minute_from_row(r, decode)?,
    })
}

pub(super) fn backend_minute_from_row(
    r: &Row,
    decode: [bool; 3],
) -> rusqlite::Result<BackendMinute> {
    Ok(BackendMinute {
        host: r.get(0)?,
        backend: r.get(1)?,
        minute: r.get(2)?,
        nosrv: r.get::<_, i64>(3)? as u64,
        data: minute_from_row(r, decode)?,
    })
}

/// The figures at [`FIGURES_AT`] of a row.
fn minute_from_row(r: &Row, decode: [bool; 3]) -> rusqlite::Result<Minute> {
    let at = FIGURES_AT;
    let int = |k: usize| r.get::<_, i64>(at + k).map(|v| v as u64);
    let mut status = [0u64; 6];
    for (k, s) in status.iter_mut().enumerate() {
        *s = int(1 + k)?;
    }
    let terminations = r.get_ref(at + 13)?.as_str()?;
    // Codes are four plain characters: read in place, without a String
    // each (an escaped one, from odd bytes, takes the long way).
    let termination = match serde_json::from_str::<BTreeMap<&str, u64>>(terminations) {
        Ok(m) => m
            .into_iter()
            .map(|(k, n)| (pack(k.as_bytes()), n))
            .collect(),
        Err(_) => serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(terminations)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (pack(k.as_bytes()), v.as_u64().unwrap_or(0)))
            .collect(),
    };
    let mut timers: [Option<Tally>; 3] = [None, None, None];
    // A TCP line has no Tr: a reader of Tr gets Tt, which stands in for it
    // (the whole connection), where Tr is absent.
    let mut decode = decode;
    decode[2] |= decode[1] && r.get_ref(at + 15)?.as_blob_or_null()?.is_none();
    for (k, t) in timers.iter_mut().enumerate().filter(|(k, _)| decode[*k]) {
        *t = r
            .get_ref(at + 14 + k)?
            .as_blob_or_null()?
            .and_then(Minute::decode_timer)
            .map(|hist| Tally::from_hist(&hist));
    }
    Ok(Minute::of(
        Counts {
            requests: int(0)?,
            status,
            errors: int(7)?,
            bytes: int(8)?,
            retries: int(9)?,
            redispatches: int(10)?,
            srv_queue_max: r.get(at + 11)?,
            backend_queue_max: r.get(at + 12)?,
            termination,
        },
        timers,
    ))
}

/// A minute as [`minute_columns`]' values.
fn figures(m: &Minute) -> [Value; 17] {
    let c = &m.counts;
    let terminations: serde_json::Map<String, serde_json::Value> = c
        .termination
        .iter()
        .map(|(code, n)| (termination_str(code), (*n).into()))
        .collect();
    let int = |v: u64| Value::Integer(v as i64);
    let blob = |k| m.encode_timer(k).map_or(Value::Null, Value::Blob);
    [
        int(c.requests),
        int(c.status[0]),
        int(c.status[1]),
        int(c.status[2]),
        int(c.status[3]),
        int(c.status[4]),
        int(c.status[5]),
        int(c.errors),
        int(c.bytes),
        int(c.retries),
        int(c.redispatches),
        Value::Integer(c.srv_queue_max.into()),
        Value::Integer(c.backend_queue_max.into()),
        Value::Text(serde_json::Value::Object(terminations).to_string()),
        blob(0),
        blob(1),
        blob(2),
    ]
}

/// Adds each minute to its stored one (a minute can be written while still
/// open, or by a later run): read, merge, write back. `key` is the row's
/// key (and, for backends, its `<NOSRV>` 503s, added too).
fn add<'a>(
    tx: &Transaction,
    table: &Table,
    rows: impl Iterator<Item = (Vec<Value>, Cow<'a, Minute>)>,
) -> rusqlite::Result<()> {
    let mut get = tx.prepare_cached(table.get)?;
    let mut fresh = tx.prepare_cached(table.fresh)?;
    let mut put = tx.prepare_cached(table.put)?;
    let backends = table.backends;
    // The key's columns (a backend's `<NOSRV>` 503s, its fourth value, are
    // not part of it).
    let keys = if backends { 3 } else { 4 };
    for (mut key, m) in rows {
        // Most minutes are new: try that first, merge only when one exists.
        let values = figures(&m);
        if fresh.execute(params_from_iter(key.iter().chain(&values)))? == 1 {
            continue;
        }
        let (nosrv, mut stored) = get.query_row(params_from_iter(&key[..keys]), |r| {
            let nosrv = if backends { r.get::<_, i64>(3)? } else { 0 };
            Ok((nosrv, minute_from_row(r, [true; 3])?))
        })?;
        stored.merge(&m);
        if let (true, Value::Integer(n)) = (backends, &mut key[3]) {
            *n += nosrv;
        }
        put.execute(params_from_iter(key.into_iter().chain(figures(&stored))))?;
    }
    Ok(())
}

/// A backend's minute: its servers' minutes added up, and the 503s
/// HAProxy answered itself (`<NOSRV>`'s 5xx), by host, backend and minute.
pub type BackendMinutes = BTreeMap<(String, String, Millis), (Minute, u64)>;

/// Adds one server's minute (or a piece of it) to its backend's minute.
pub fn add_to_backend(sums: &mut BackendMinutes, key: &ServerKey, minute: Millis, m: &Minute) {
    let slot = sums
        .entry((key.host.clone(), key.backend.clone(), minute))
        .or_default();
    slot.0.merge(m);
    if key.server == "<NOSRV>" {
        slot.1 += m.counts.status[5];
    }
}

/// Writes a batch's server minutes and their backends' minutes
/// ([`BackendMinutes`] of the same rollups: the writer adds a server's
/// minute to its backend's when it seals it, so that the commit does not
/// decode it again).
pub(super) fn write(
    tx: &Transaction,
    rollups: &[Rollup],
    backends: &BackendMinutes,
) -> rusqlite::Result<()> {
    let key = |k: &ServerKey, minute: Millis| {
        vec![
            Value::Text(k.host.clone()),
            Value::Text(k.backend.clone()),
            Value::Text(k.server.clone()),
            Value::Integer(minute),
        ]
    };
    // In the table's key order (minute, then server): the writer's minutes
    // come in hash order, and inserted so each lands on a page of its own,
    // far from the last one's. Over a sparse log (a commit of 100,000
    // server-minutes) the page cache then spilled the same pages to the
    // WAL again and again: twice the writes, three times the reads of key
    // order.
    let mut ordered: Vec<&Rollup> = rollups.iter().collect();
    ordered.sort_unstable_by(|a, b| (a.minute, &a.key).cmp(&(b.minute, &b.key)));
    add(
        tx,
        &SERVERS,
        ordered
            .into_iter()
            .map(|r| (key(&r.key, r.minute), Cow::Borrowed(&r.data))),
    )?;
    let mut backends: Vec<_> = backends.iter().collect();
    backends.sort_unstable_by_key(|((host, backend, minute), _)| (*minute, host, backend));
    add(
        tx,
        &BACKENDS,
        backends
            .into_iter()
            .map(|((host, backend, minute), (m, nosrv))| {
                (
                    backend_key(host, backend, *minute, *nosrv),
                    Cow::Borrowed(m),
                )
            }),
    )
}

/// A backend minute's key columns, and its `<NOSRV>` 503s ([`add`]'s
/// fourth value).
fn backend_key(host: &str, backend: &str, minute: Millis, nosrv: u64) -> Vec<Value> {
    vec![
        Value::Text(host.to_string()),
        Value::Text(backend.to_string()),
        Value::Integer(minute),
        Value::Integer(nosrv as i64),
    ]
}

/// Server minutes added up per backend minute.
fn by_backend<'a>(rollups: impl Iterator<Item = &'a Rollup>) -> BackendMinutes {
    let mut sums = BackendMinutes::new();
    for r in rollups {
        add_to_backend(&mut sums, &r.key, r.minute, &r.data);
    }
    sums
}

/// Fills `backend_rollups` from the server minutes a database kept before
/// it existed (migration 11): read in minute order (the table's key since
/// migration 14, which runs first; no sort of the whole table), a minute's
/// backends added up at a time, so
/// that memory holds one minute whatever the table's size.
pub(super) fn backfill(tx: &Transaction) -> rusqlite::Result<()> {
    let mut q = tx.prepare(concat!(
        "SELECT host, backend, server, minute_ms, ",
        minute_columns!(),
        " FROM rollups ORDER BY minute_ms"
    ))?;
    let mut rows = q.query([])?;
    let mut minute: Vec<Rollup> = Vec::new();
    loop {
        let next = rows.next()?.map(rollup_from_row).transpose()?;
        if let (Some(m), Some(r)) = (minute.first(), &next) {
            if m.minute == r.minute {
                minute.push(next.expect("matched"));
                continue;
            }
        }
        let sums = by_backend(minute.iter());
        add(
            tx,
            &BACKENDS,
            sums.into_iter()
                .map(|((host, backend, minute), (m, nosrv))| {
                    (backend_key(&host, &backend, minute, nosrv), Cow::Owned(m))
                }),
        )?;
        minute.clear();
        match next {
            Some(r) => minute.push(r),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use crate::engine::rollup::{minute_of, Minute, Rollup};
    use crate::engine::{Engine, Filter, ServerKey};
    use crate::haproxy::request;
    use crate::store::{BackendMinute, Store, Writer};

    /// One request's minute (`tr` -1: none), as a worker hands it over.
    pub(in crate::store) fn piece(
        backend: &str,
        server: &str,
        minute: &str,
        tr: i32,
        status: u16,
    ) -> Rollup {
        let line = format!(
            "127.0.0.1:1 [24/Nov/2026:{minute}:01.000] fe {backend}/{server} 0/0/1/{tr}/9 \
             {status} 100 - - {} 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
            if status == 503 { "SC--" } else { "----" }
        );
        let r = request::parse(line.as_bytes()).expect("a request line");
        let mut data = Minute::default();
        data.add(&r);
        data.flush();
        Rollup {
            key: ServerKey {
                host: "lb1".into(),
                backend: backend.into(),
                server: server.into(),
            },
            minute: minute_of(r.accept),
            data,
        }
    }

    fn engine() -> Engine {
        Engine::new(
            std::sync::Arc::new(crate::patterns::PatternSet::builtin()),
            Filter::default(),
        )
    }

    /// Requests, 5xx, `<NOSRV>` 503s, terminations, Tr's count and max.
    type Figures = (u64, u64, u64, Vec<([u8; 4], u64)>, u64, u64);

    /// (backend, minute) -> its figures.
    type Sums = BTreeMap<(String, i64), Figures>;

    fn figures(m: &Minute, nosrv: u64) -> Figures {
        let mut t = m.counts.termination.clone();
        t.sort();
        let tr = m.timer(1).expect("Tr");
        (
            m.counts.requests,
            m.counts.status[5],
            nosrv,
            t,
            tr.count(),
            tr.max,
        )
    }

    fn stored(s: &Store) -> Sums {
        let mut out = Sums::new();
        s.each_backend_minute(&Filter::default(), [true; 3], |b: BackendMinute| {
            out.insert((b.backend.clone(), b.minute), figures(&b.data, b.nosrv));
        })
        .unwrap();
        out
    }

    /// [`summed`], and backend `be`'s figures at 10:00 in it.
    fn summed_at_ten(s: &Store) -> (Sums, Figures) {
        let want = summed(s);
        let ten = piece("be", "s1", "10:00", 0, 200).minute;
        let be = want[&("be".to_string(), ten)].clone();
        (want, be)
    }

    /// Backend `be` at 10:00: a fast 200, a slow 503 and a `<NOSRV>` 503.
    fn ten_o_clock() -> Vec<Rollup> {
        vec![
            piece("be", "s1", "10:00", 7, 200),
            piece("be", "s2", "10:00", 900, 503),
            piece("be", "<NOSRV>", "10:00", -1, 503),
        ]
    }

    /// What the backend minutes must be: their servers' minutes added.
    fn summed(s: &Store) -> Sums {
        let mut sums: BTreeMap<(String, i64), (Minute, u64)> = BTreeMap::new();
        for r in s.rollups(&Filter::default()).unwrap() {
            let slot = sums.entry((r.key.backend.clone(), r.minute)).or_default();
            slot.0.merge(&r.data);
            if r.key.server == "<NOSRV>" {
                slot.1 += r.data.counts.status[5];
            }
        }
        sums.into_iter()
            .map(|(k, (m, nosrv))| (k, figures(&m, nosrv)))
            .collect()
    }

    /// A server's minute is added to its backend's when the writer seals
    /// it (two minutes older than the newest): once, whatever comes after.
    /// A piece logged late for a sealed minute, a server seen first after
    /// its minute was sealed, and a commit that fails and is tried again
    /// all leave the backend minute equal to its servers' minutes added up.
    #[test]
    fn a_sealed_minute_counts_once_in_its_backend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut w = Writer::new(Store::open(&path).unwrap(), Duration::from_secs(60));
        let mut first = ten_o_clock();
        first.push(piece("be", "s1", "10:01", 8, 200));
        w.add_rollups(first);
        // 10:00 and 10:01 are sealed by a minute of 10:05.
        w.add_rollups(vec![piece("be", "s1", "10:05", 9, 200)]);
        // Late: a piece of a sealed minute, a server new to it.
        w.add_rollups(vec![
            piece("be", "s1", "10:00", 30, 200),
            piece("be", "s3", "10:00", 40, 200),
            piece("be", "<NOSRV>", "10:00", -1, 503),
        ]);
        // Another client holds the database: the commit fails, the
        // minutes wait, and the next one stores them once.
        w.store()
            .unwrap()
            .conn
            .busy_timeout(Duration::from_millis(50))
            .unwrap();
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        assert!(w.commit(&mut engine()).is_err());
        other.execute_batch("ROLLBACK").unwrap();
        w.commit(&mut engine()).unwrap();
        // After a commit, what was stored is not added again.
        w.add_rollups(vec![piece("be", "s2", "10:06", 5, 200)]);
        w.commit(&mut engine()).unwrap();
        let s = w.store().unwrap();
        let (want, be) = summed_at_ten(s);
        assert_eq!((be.0, be.1, be.2), (6, 3, 2), "requests, 503s, <NOSRV>");
        assert_eq!(be.4, 4, "Tr of s1 twice, s2, s3");
        assert_eq!(stored(s), want);
        assert_eq!(want.len(), 4, "10:00, 10:01, 10:05, 10:06");
    }

    /// A backend's minute is its servers' minutes added up, `<NOSRV>`'s
    /// 503s counted apart: written over several commits that add to rows
    /// already there, and filled in by the migration for a database that
    /// kept only server minutes.
    #[test]
    fn a_backend_minute_is_its_servers_minutes_added_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut w = Writer::new(Store::open(&path).unwrap(), Duration::from_secs(60));
        let mut first = ten_o_clock();
        first.push(piece("api", "a1", "10:00", 3, 200));
        w.add_rollups(first);
        w.commit(&mut engine()).unwrap();
        // The same minutes again (a minute written while still open), and
        // a new one.
        w.add_rollups(vec![
            piece("be", "s1", "10:00", 40, 200),
            piece("be", "<NOSRV>", "10:00", -1, 503),
            piece("be", "s2", "10:01", 5, 200),
        ]);
        w.commit(&mut engine()).unwrap();
        let s = w.store().unwrap();
        let (want, be) = summed_at_ten(s);
        assert_eq!((be.0, be.1, be.2), (5, 3, 2), "requests, 503s, <NOSRV>");
        // Tr of s1 twice and s2's (<NOSRV> has none), 900 ms in 2 digits.
        assert_eq!(be.4, 3);
        assert!((900..910).contains(&be.5), "{}", be.5);
        assert_eq!(stored(s), want);
        assert_eq!(want.len(), 3);

        // A database from before backend minutes: they are filled in.
        drop(w);
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP TABLE backend_rollups; ALTER TABLE checkpoints DROP COLUMN cursor;
             ALTER TABLE checkpoints DROP COLUMN decoded;
             ALTER TABLE checkpoints DROP COLUMN head_len;
             ALTER TABLE checkpoints DROP COLUMN head_hash;
             ALTER TABLE servers DROP COLUMN check_json;
             ALTER TABLE servers DROP COLUMN check_before;
             ALTER TABLE servers DROP COLUMN from_check;
             ALTER TABLE servers DROP COLUMN last_state_ms;
             DROP TABLE hosts; PRAGMA user_version = 10;",
        )
        .unwrap();
        drop(c);
        let s = Store::open(&path).unwrap();
        assert_eq!(stored(&s), want);
    }

    /// WAL frames a commit of `w` writes: the log truncated first.
    fn frames_of_a_commit(w: &mut Writer, path: &std::path::Path) -> u64 {
        let conn = &w.store().unwrap().conn;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let page: i64 = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap();
        w.commit(&mut engine()).unwrap();
        // A 32-byte header, then a 24-byte header and a page a frame.
        let wal = std::fs::metadata(path.with_extension("db-wal"))
            .unwrap()
            .len();
        wal.saturating_sub(32) / (24 + page as u64)
    }

    /// A live feed: every server's newest minute written again at every
    /// commit (`listen --commit-every`), over half an hour of minutes
    /// stored. Keyed by server, such a commit rewrote a page wherever each
    /// server's minutes end, one a server (2,000 here, and 84 MB a commit
    /// for 10,000 servers in `bench/steady_io.py`); keyed by minute, it
    /// writes the pages of that minute and, when the minute is new, the
    /// server index's entries.
    #[test]
    fn a_commit_of_every_server_s_newest_minute_writes_that_minute_s_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let mut w = Writer::new(Store::open(&path).unwrap(), Duration::from_secs(60));
        let servers = 2000;
        let minute = |at: &str| -> Vec<Rollup> {
            (0..servers)
                .map(|i| piece("be", &format!("s{i}"), at, 5, 200))
                .collect()
        };
        for m in 0..30 {
            w.add_rollups(minute(&format!("10:{m:02}")));
            w.commit(&mut engine()).unwrap();
        }
        w.add_rollups(minute("10:30"));
        let new_minute = frames_of_a_commit(&mut w, &path);
        w.add_rollups(minute("10:30"));
        let again = frames_of_a_commit(&mut w, &path);
        let pages = format!("{servers} servers: {new_minute} pages, again {again}");
        assert!(new_minute < servers / 2, "a new minute of {pages}");
        assert!(again < servers / 8, "the same minute of {pages}");
        // And the minute holds both pieces of every server.
        let s = w.store().unwrap();
        let at = piece("be", "s1", "10:30", 0, 200).minute;
        let newest: Vec<Rollup> = s
            .rollups(&Filter::default())
            .unwrap()
            .into_iter()
            .filter(|r| r.minute == at)
            .collect();
        assert_eq!(newest.len(), servers as usize);
        assert!(newest.iter().all(|r| r.data.counts.requests == 2));
        assert_eq!(
            s.rollups(&Filter::default()).unwrap().len(),
            31 * servers as usize
        );
    }

    /// A database keyed by server (schema 13) is rekeyed by minute when
    /// opened to write, every minute kept as it was.
    #[test]
    fn minutes_keyed_by_server_are_rekeyed_by_minute() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let mut w = Writer::new(Store::open(&path).unwrap(), Duration::from_secs(60));
        let mut rollups = ten_o_clock();
        rollups.push(piece("api", "a1", "10:03", 3, 200));
        rollups.push(piece("be", "s1", "10:01", 8, 200));
        w.add_rollups(rollups);
        w.commit(&mut engine()).unwrap();
        let rows = |s: &Store| -> Vec<(ServerKey, crate::time::Millis, super::Counts)> {
            let all = s.rollups(&Filter::default()).unwrap();
            all.into_iter()
                .map(|r| (r.key, r.minute, r.data.counts))
                .collect()
        };
        let (before, backends) = (rows(w.store().unwrap()), stored(w.store().unwrap()));
        assert_eq!(before.len(), 5);
        drop(w);
        // Both tables as migrations 2 and 11 made them, with these rows.
        let made_by = |m: usize, table: &str| {
            let sql = super::super::MIGRATIONS[m - 1];
            let from = sql.find(&format!("CREATE TABLE {table} (")).unwrap();
            let index = format!("CREATE INDEX {table}_minute ON {table} (minute_ms);");
            let to = sql.find(&index).unwrap() + index.len();
            format!(
                "ALTER TABLE {table} RENAME TO now; {} INSERT INTO {table} SELECT * FROM now;
                 DROP TABLE now;",
                &sql[from..to]
            )
        };
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&made_by(2, "rollups")).unwrap();
        c.execute_batch(&made_by(11, "backend_rollups")).unwrap();
        c.execute_batch(
            "ALTER TABLE checkpoints DROP COLUMN decoded;
             ALTER TABLE checkpoints DROP COLUMN head_len;
             ALTER TABLE checkpoints DROP COLUMN head_hash;
             ALTER TABLE servers DROP COLUMN check_json;
             ALTER TABLE servers DROP COLUMN check_before;
             ALTER TABLE servers DROP COLUMN from_check;
             ALTER TABLE servers DROP COLUMN last_state_ms; PRAGMA user_version = 13",
        )
        .unwrap();
        let key = |c: &rusqlite::Connection, table: &str| -> String {
            let sql: String = c
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            let at = sql.find("PRIMARY KEY").unwrap();
            sql[at..sql[at..].find(')').unwrap() + at + 1].to_string()
        };
        assert_eq!(
            key(&c, "rollups"),
            "PRIMARY KEY (host, backend, server, minute_ms)"
        );
        drop(c);
        let s = Store::open(&path).unwrap();
        assert_eq!(
            key(&s.conn, "rollups"),
            "PRIMARY KEY (minute_ms, host, backend, server)"
        );
        assert_eq!(
            key(&s.conn, "backend_rollups"),
            "PRIMARY KEY (minute_ms, host, backend)"
        );
        assert_eq!(rows(&s), before);
        assert_eq!(stored(&s), backends);
    }
}
