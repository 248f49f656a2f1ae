//! `hapwatch timeline` from its settings to the text it prints: the facts
//! read (from the database, or from log files through a temporary one),
//! the incidents found, the window picked.

use std::path::PathBuf;

use super::{find, render, Incident, Story};
use crate::engine::Filter;
use crate::store::{Facts, Store};
use crate::time::Millis;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
    Html,
}

/// Which window to tell.
#[derive(Clone, Debug)]
pub enum Pick {
    /// The last incident.
    Last,
    /// `--incident ID`.
    Incident(String),
    /// `--alert FINGERPRINT` (a prefix is enough when it is unique).
    Alert(String),
    /// `--around T --span D`.
    Around(Millis, Millis),
    /// `--since` and/or `--until` (filter's times).
    Between,
}

pub struct Job {
    /// Log files to read instead of a database.
    pub files: Vec<String>,
    /// Read these instead (when `files` is empty).
    pub db: PathBuf,
    /// How to read files (`analyze`'s settings).
    pub reading: crate::analyze::Reading,
    pub filter: Filter,
    pub list: bool,
    pub pick: Pick,
    pub gap: Millis,
    pub pad: Millis,
    pub format: Format,
}

/// What went wrong, and the exit status it is worth: 2 for what the user
/// asked (an unknown incident), 1 for what failed (a database, a file).
#[derive(Debug)]
pub struct Failed(pub u8, pub String);

/// Runs the job: the text to print.
pub fn run(job: Job) -> Result<String, Failed> {
    // The temporary database lives as long as this function.
    let mut _dir = None;
    let store = if job.files.is_empty() {
        Store::open_read_only(&job.db).map_err(|e| Failed(2, e.to_string()))?
    } else {
        let dir =
            tempfile::tempdir().map_err(|e| Failed(1, format!("a temporary directory: {e}")))?;
        let db = dir.path().join("timeline.db");
        let done = crate::analyze::job::run(crate::analyze::Job {
            files: job.files.clone(),
            db: Some(db.clone()),
            retain: None,
            commit_every: std::time::Duration::from_secs(3600),
            readers: Default::default(),
            reading: job.reading.clone(),
        })
        .map_err(|e| Failed(1, e.to_string()))?;
        if let Some(p) = done.problems.first() {
            return Err(Failed(1, p.clone()));
        }
        _dir = Some(dir);
        Store::open_read_only(&db).map_err(|e| Failed(1, e.to_string()))?
    };
    let names = Filter {
        since: None,
        until: None,
        ..job.filter.clone()
    };
    let facts = store.facts(&names).map_err(|e| Failed(1, e.to_string()))?;
    let incidents = find(&facts, job.gap);
    if job.list {
        return Ok(match job.format {
            Format::Json => render::list_json(&incidents),
            _ => render::list_text(&incidents),
        });
    }
    let newest = newest(&facts);
    let (incident, from, to) = match &job.pick {
        Pick::Last => match incidents.last() {
            Some(i) => window(i, job.pad, newest),
            None => {
                return Ok(
                    "no incident: no server went DOWN, no backend lost its servers, no alert \
                     fired (pick a window with --since/--until or --around)\n"
                        .into(),
                )
            }
        },
        Pick::Incident(id) => match incidents.iter().find(|i| &i.id == id) {
            Some(i) => window(i, job.pad, newest),
            None => {
                return Err(Failed(
                    2,
                    format!(
                        "no incident {id}; the incidents are: {} (see --list)",
                        ids(&incidents)
                    ),
                ))
            }
        },
        Pick::Alert(fp) => {
            let found: Vec<_> = facts
                .alerts
                .iter()
                .filter(|a| a.fingerprint.starts_with(fp.as_str()))
                .collect();
            let a = match found.as_slice() {
                [a, ..] if found.iter().all(|b| b.fingerprint == a.fingerprint) => a,
                [] => {
                    return Err(Failed(
                        2,
                        format!("no alert with fingerprint {fp} (see `hapwatch alerts`)"),
                    ))
                }
                _ => {
                    return Err(Failed(
                        2,
                        format!("{fp} names several alerts: give more of the fingerprint"),
                    ))
                }
            };
            let at = a.alert.starts_at;
            match incidents
                .iter()
                .find(|i| i.start <= at && i.end.is_none_or(|e| at <= e))
            {
                Some(i) => window(i, job.pad, newest),
                None => (
                    None,
                    at - job.pad,
                    a.alert.ends_at.unwrap_or(at).max(at) + job.pad + 1,
                ),
            }
        }
        Pick::Around(t, span) => (None, t - span / 2, t + span / 2),
        Pick::Between => {
            let from = job
                .filter
                .since
                .unwrap_or_else(|| oldest(&facts).unwrap_or(0));
            let to = job.filter.until.unwrap_or(newest.unwrap_or(from) + 1);
            (None, from, to)
        }
    };
    let mut minutes = super::Minutes::for_window(&facts, from, to);
    store
        .each_rollup(
            &Filter {
                since: Some(from),
                until: Some(to),
                ..job.filter.clone()
            },
            super::Minutes::TIMERS,
            |r| minutes.add(r),
        )
        .map_err(|e| Failed(1, e.to_string()))?;
    let story = Story::build(&facts, minutes, from, to, incident.as_ref());
    Ok(match job.format {
        Format::Text => render::text(&story),
        Format::Markdown => render::markdown(&story),
        Format::Json => render::json(&story),
        Format::Html => super::html::html(&story),
    })
}

fn ids(incidents: &[Incident]) -> String {
    if incidents.is_empty() {
        return "none".into();
    }
    incidents
        .iter()
        .map(|i| i.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An incident padded on both sides; one still going on ends at the newest
/// fact known (there is no other "now" in a log).
fn window(i: &Incident, pad: Millis, newest: Option<Millis>) -> (Option<Incident>, Millis, Millis) {
    let end = i
        .end
        .unwrap_or_else(|| newest.unwrap_or(i.start).max(i.start));
    (Some(i.clone()), i.start - pad, end + pad + 1)
}

fn times(f: &Facts) -> impl Iterator<Item = Millis> + '_ {
    f.transitions
        .iter()
        .map(|t| t.at)
        .chain(
            f.no_server
                .iter()
                .flat_map(|p| [Some(p.start), p.end])
                .flatten(),
        )
        .chain(
            f.alerts
                .iter()
                .flat_map(|a| [Some(a.alert.starts_at), a.alert.ends_at])
                .flatten(),
        )
}

fn newest(f: &Facts) -> Option<Millis> {
    times(f).max()
}

fn oldest(f: &Facts) -> Option<Millis> {
    times(f).min()
}
