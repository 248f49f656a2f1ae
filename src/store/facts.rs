//! What a timeline is made of, read back typed: transitions, check lines,
//! backend no-server periods, alert events and their deliveries. The per-minute
//! request figures are [`Store::rollups`].

use rusqlite::params;
use serde::Serialize;

use super::{selected, Store, StoreError};
use crate::engine::Filter;
use crate::time::Millis;

/// One stored transition.
#[derive(Clone, Debug, Serialize)]
pub struct TransitionRow {
    pub at: Millis,
    pub host: String,
    pub backend: String,
    pub server: String,
    pub from: String,
    pub to: String,
    pub cause: Option<String>,
    /// The check details as stored (`reason`, `code`, `info`, `status`...).
    pub check: Option<serde_json::Value>,
}

/// One stored health check line.
#[derive(Clone, Debug, Serialize)]
pub struct CheckRow {
    pub at: Millis,
    pub host: String,
    pub backend: String,
    pub server: String,
    /// `succeeded`, `failed`, `conditionally succeeded`.
    pub result: Option<String>,
    /// The details as stored (`reason`, `info`, `health`, `check_state`...).
    pub check: serde_json::Value,
}

/// A period in which a backend had no server available.
#[derive(Clone, Debug, Serialize)]
pub struct NoServerRow {
    pub host: String,
    pub backend: String,
    pub start: Millis,
    /// Still without a server when the log ends.
    pub end: Option<Millis>,
}

/// One alert (its firing and, once resolved, its end) and where it went.
#[derive(Clone, Debug)]
pub struct AlertRow {
    pub fingerprint: String,
    pub alert: crate::model::Alert,
    pub deliveries: Vec<DeliveryRow>,
}

/// One alert event handed to one remote sink.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRow {
    pub sink: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub delivered: Option<Millis>,
    pub last_error: Option<String>,
}

/// Everything but the rollups, for every time (incidents are found over
/// the whole story) and the names `f` selects.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub transitions: Vec<TransitionRow>,
    pub checks: Vec<CheckRow>,
    pub no_server: Vec<NoServerRow>,
    pub alerts: Vec<AlertRow>,
    /// HAProxy's starts, reloads and stops (`f`'s hosts; a proxy is not a
    /// backend, `--backend` keeps them all).
    pub process: Vec<crate::model::ProcessEvent>,
}

/// [`Store::each_rollup`]'s query.
const EACH_ROLLUP: &str =
    "SELECT host, backend, server, minute_ms, requests, status_other, status_1xx, status_2xx,
            status_3xx, status_4xx, status_5xx, errors, bytes, retries, redispatches,
            srv_queue_max, backend_queue_max, terminations, tw, tr, tt
     FROM rollups WHERE minute_ms >= ?1 AND minute_ms < ?2";

impl Facts {
    /// Takes out what happened on lines with no time
    /// ([`crate::time::UNTIMED`]): a timeline places events in time, and
    /// these have only an order. Returns how many were taken out.
    pub fn without_untimed(&mut self) -> usize {
        use crate::time::is_untimed;
        let before = self.len();
        self.transitions.retain(|t| !is_untimed(t.at));
        self.checks.retain(|c| !is_untimed(c.at));
        self.no_server
            .retain(|p| !is_untimed(p.start) && !p.end.is_some_and(is_untimed));
        self.alerts.retain(|a| !is_untimed(a.alert.starts_at));
        self.process.retain(|p| !is_untimed(p.at));
        before - self.len()
    }

    fn len(&self) -> usize {
        self.transitions.len()
            + self.checks.len()
            + self.no_server.len()
            + self.alerts.len()
            + self.process.len()
    }
}

impl Store {
    /// Visits the rollups of `f`'s window and names one by one, in the
    /// table's order (by minute, then server), with only the timers
    /// `decode` asks for decoded (Tw, Tr, Tt; Tt too where Tr is asked for
    /// and absent, a TCP backend's minute): a day of 300 servers is
    /// 432,000 rows, which a timeline folds as it reads instead of holding.
    /// The window is a range of the table's key, read in one pass (tested):
    /// not a B-tree search of the table per row, as when the table was
    /// keyed by server and the window found through a minute index (2.5
    /// times slower for a day; a scan of a day's 80 MB is 40 ms).
    pub fn each_rollup(
        &self,
        f: &Filter,
        decode: [bool; 3],
        mut visit: impl FnMut(crate::engine::rollup::Rollup),
    ) -> Result<(), StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self.conn.prepare(EACH_ROLLUP).map_err(err)?;
        let since = f.since.map_or(i64::MIN, crate::engine::rollup::minute_of);
        let mut rows = q
            .query(params![since, f.until.unwrap_or(i64::MAX)])
            .map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let (host, backend, server): (String, String, String) = (
                row.get(0).map_err(err)?,
                row.get(1).map_err(err)?,
                row.get(2).map_err(err)?,
            );
            if !f.selects(&host, &backend, Some(&server)) {
                continue;
            }
            visit(super::rollup_from_row_with(row, decode).map_err(err)?);
        }
        Ok(())
    }

    /// Whether backends' minutes are kept: not in a database an older
    /// hapwatch wrote and nobody migrated since (read-only opens do not).
    pub fn has_backend_minutes(&self) -> bool {
        self.has_table("backend_rollups").unwrap_or(false)
    }

    /// Visits the backend minutes of `f`'s window and hosts and backends
    /// (its `--server` is not looked at: a backend's minute is all of its
    /// servers), with only the timers `decode` asks for decoded (see
    /// [`Store::each_rollup`]); see [`Store::has_backend_minutes`].
    pub fn each_backend_minute(
        &self,
        f: &Filter,
        decode: [bool; 3],
        mut visit: impl FnMut(super::BackendMinute),
    ) -> Result<(), StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare(super::minutes::EACH_BACKEND_MINUTE)
            .map_err(err)?;
        let since = f.since.map_or(i64::MIN, crate::engine::rollup::minute_of);
        let mut rows = q
            .query(params![since, f.until.unwrap_or(i64::MAX)])
            .map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let (host, backend): (String, String) =
                (row.get(0).map_err(err)?, row.get(1).map_err(err)?);
            if f.selects(&host, &backend, None) {
                visit(super::minutes::backend_minute_from_row(row, decode).map_err(err)?);
            }
        }
        Ok(())
    }

    /// Visits one server's minutes of `f`'s window, oldest first (found
    /// through `rollups_server`: a few servers of many are read alone).
    pub fn each_server_minute(
        &self,
        server: &crate::engine::ServerKey,
        f: &Filter,
        decode: [bool; 3],
        mut visit: impl FnMut(crate::engine::rollup::Rollup),
    ) -> Result<(), StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare_cached(super::minutes::SERVER_MINUTES)
            .map_err(err)?;
        let since = f.since.map_or(i64::MIN, crate::engine::rollup::minute_of);
        let mut rows = q
            .query(params![
                server.host,
                server.backend,
                server.server,
                since,
                f.until.unwrap_or(i64::MAX)
            ])
            .map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            visit(super::rollup_from_row_with(row, decode).map_err(err)?);
        }
        Ok(())
    }

    /// The hosts that know `backend/server`: those with its row in
    /// `servers` (its requests or its health lines).
    pub fn hosts_knowing(&self, backend: &str, server: &str) -> Result<Vec<String>, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        self.conn
            .prepare_cached("SELECT host FROM servers WHERE backend = ?1 AND server = ?2")
            .map_err(err)?
            .query_map(params![backend, server], |r| r.get(0))
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)
    }

    /// Whether `host` sent `backend/server` requests in `f`'s window (a
    /// minute of rollups there). The rollups are keyed by minute first:
    /// the window's rows are read until one is found.
    pub fn served_in(
        &self,
        host: &str,
        backend: &str,
        server: &str,
        f: &Filter,
    ) -> Result<bool, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let since = f.since.map_or(i64::MIN, crate::engine::rollup::minute_of);
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM rollups WHERE minute_ms >= ?4 AND minute_ms < ?5
                    AND host = ?1 AND backend = ?2 AND server = ?3)",
            )
            .map_err(err)?
            .query_row(
                params![host, backend, server, since, f.until.unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .map_err(err)
    }

    pub fn facts(&self, f: &Filter) -> Result<Facts, StoreError> {
        let err = |e| StoreError::Sqlite(self.path.clone(), e);
        let mut q = self
            .conn
            .prepare(
                "SELECT at_ms, host, backend, server, from_state, to_state, cause, check_json
                 FROM transitions ORDER BY at_ms, id",
            )
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                Ok(TransitionRow {
                    at: r.get(0)?,
                    host: r.get(1)?,
                    backend: r.get(2)?,
                    server: r.get(3)?,
                    from: r.get(4)?,
                    to: r.get(5)?,
                    cause: r.get(6)?,
                    check: r
                        .get::<_, Option<String>>(7)?
                        .and_then(|s| serde_json::from_str(&s).ok()),
                })
            })
            .map_err(err)?;
        let transitions =
            selected(rows, |t| f.selects(&t.host, &t.backend, Some(&t.server))).map_err(err)?;
        // A database an older hapwatch wrote (opened read-only, not
        // migrated) may have no table for checks or HAProxy's own events:
        // nothing was kept of them, the story goes on without.
        let checks = if self.has_table("checks").map_err(err)? {
            self.checks(f).map_err(err)?
        } else {
            Vec::new()
        };
        let process = if self.has_table("process_events").map_err(err)? {
            self.process(f).map_err(err)?
        } else {
            Vec::new()
        };
        let mut q = self
            .conn
            .prepare(
                "SELECT host, backend, start_ms, end_ms FROM no_server_periods
                 ORDER BY start_ms, host, backend",
            )
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                Ok(NoServerRow {
                    host: r.get(0)?,
                    backend: r.get(1)?,
                    start: r.get(2)?,
                    end: r.get(3)?,
                })
            })
            .map_err(err)?;
        let no_server = selected(rows, |p| f.selects(&p.host, &p.backend, None)).map_err(err)?;
        let mut q = self
            .conn
            .prepare(
                "SELECT fingerprint, starts_ms, alert_json FROM alerts ORDER BY starts_ms, rule",
            )
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(err)?;
        let mut d = self
            .conn
            .prepare(
                "SELECT sink, status, state, attempts, delivered_ms, last_error FROM outbox
                 WHERE fingerprint = ?1 AND starts_ms = ?2 ORDER BY id",
            )
            .map_err(err)?;
        let mut alerts = Vec::new();
        for row in rows {
            let (fingerprint, starts, json) = row.map_err(err)?;
            // A row this version cannot read is skipped, not fatal.
            let Ok(alert) = serde_json::from_str::<crate::model::Alert>(&json) else {
                continue;
            };
            let label = |k: &str| alert.labels.get(k).map(String::as_str);
            if !f.selects(
                label("host").unwrap_or(""),
                label("backend").unwrap_or(""),
                label("server"),
            ) && label("backend").is_some()
            {
                continue;
            }
            let deliveries = d
                .query_map(params![fingerprint, starts], |r| {
                    Ok(DeliveryRow {
                        sink: r.get(0)?,
                        status: r.get(1)?,
                        state: r.get(2)?,
                        attempts: r.get(3)?,
                        delivered: r.get(4)?,
                        last_error: r.get(5)?,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(err)?;
            alerts.push(AlertRow {
                fingerprint,
                alert,
                deliveries,
            });
        }
        Ok(Facts {
            transitions,
            checks,
            no_server,
            alerts,
            process,
        })
    }

    pub(super) fn has_table(&self, name: &str) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            params![name],
            |r| r.get(0),
        )
    }

    fn checks(&self, f: &Filter) -> rusqlite::Result<Vec<CheckRow>> {
        let mut q = self.conn.prepare(
            "SELECT at_ms, host, backend, server, result, check_json FROM checks
                 ORDER BY at_ms, rowid",
        )?;
        let rows = q.query_map([], |r| {
            Ok(CheckRow {
                at: r.get(0)?,
                host: r.get(1)?,
                backend: r.get(2)?,
                server: r.get(3)?,
                result: r.get(4)?,
                check: serde_json::from_str(&r.get::<_, String>(5)?)
                    .unwrap_or(serde_json::Value::Null),
            })
        })?;
        selected(rows, |c| f.selects(&c.host, &c.backend, Some(&c.server)))
    }

    fn process(&self, f: &Filter) -> rusqlite::Result<Vec<crate::model::ProcessEvent>> {
        let mut q = self.conn.prepare(
            "SELECT at_ms, host, event, proxy, message FROM process_events
                 ORDER BY at_ms, rowid",
        )?;
        let rows = q.query_map([], |r| {
            Ok(crate::model::ProcessEvent {
                at: r.get(0)?,
                host: r.get(1)?,
                event: r.get(2)?,
                proxy: r.get(3)?,
                message: r.get(4)?,
            })
        })?;
        selected(rows, |p| f.host.as_ref().is_none_or(|g| g.matches(&p.host)))
    }
}

#[cfg(test)]
mod tests {
    /// A day's timeline reads every row of the window: a range of the
    /// table, not a search of the table per entry of an index.
    #[test]
    fn the_rollups_of_a_window_are_read_as_a_range_of_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        drop(super::Store::open(&path).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        let plan: Vec<String> = c
            .prepare(&format!("EXPLAIN QUERY PLAN {}", super::EACH_ROLLUP))
            .unwrap()
            .query_map([0, 1], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            plan,
            ["SEARCH rollups USING PRIMARY KEY (minute_ms>? AND minute_ms<?)"]
        );
    }
}
