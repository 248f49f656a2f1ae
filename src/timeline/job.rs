//! `hapwatch timeline` from its settings to the text it prints: the facts
//! read (from the database, or from log files through a temporary one),
//! the incidents found, the window picked.

use crate::text::printable_lines;
use std::path::PathBuf;

use super::{find, render, Incident, Story};
use crate::engine::rollup::MINUTE_MS;
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
    /// `--bucket`: `None` picks one (see [`fine_width`]).
    pub bucket: Option<Millis>,
    pub format: Format,
    /// `--haproxy-config`: the servers it declares.
    pub inventory: Option<crate::inventory::Inventory>,
}

/// What went wrong, and the exit status it is worth: 2 for what the user
/// asked (an unknown incident), 1 for what failed (a database, a file).
#[derive(Debug)]
pub struct Failed(pub u8, pub String);

/// What a job tells, to be written out.
pub enum Told {
    Text(String),
    /// Written as it is serialized (a day's is 50 MB).
    Json(Box<Story>),
}

impl Told {
    pub fn write_to(&self, mut w: impl std::io::Write) -> std::io::Result<()> {
        match self {
            Told::Text(t) => w.write_all(t.as_bytes())?,
            Told::Json(story) => render::write_json(story, &mut w)?,
        }
        w.flush()
    }
}

impl From<String> for Told {
    fn from(s: String) -> Told {
        Told::Text(s)
    }
}

/// Runs the job: what to print.
pub fn run(job: Job) -> Result<Told, Failed> {
    // Files are read a second time for the window's finer buckets: not
    // stdin, nor a pipe by name (`<(zcat old.log.gz)`, read once).
    let readable_again =
        |f: &String| f != "-" && std::fs::metadata(f).map_or(true, |m| m.is_file());
    let from_files = !job.files.is_empty() && job.files.iter().all(readable_again);
    if job.bucket.is_some_and(|w| w < MINUTE_MS) && !from_files {
        return Err(Failed(
            2,
            "--bucket finer than 1m needs log files (not stdin or a pipe) to read again: the \
             database keeps minutes"
                .into(),
        ));
    }
    // The temporary database lives as long as this function.
    let mut _dir = None;
    let mut path = job.db.clone();
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
        for n in &done.not_understood {
            crate::say!("hapwatch: {n}");
        }
        _dir = Some(dir);
        path = db;
        Store::open_read_only(&path).map_err(|e| Failed(1, e.to_string()))?
    };
    let names = Filter {
        since: None,
        until: None,
        ..job.filter.clone()
    };
    let mut facts = store.facts(&names).map_err(|e| Failed(1, e.to_string()))?;
    let untimed = facts.without_untimed();
    if untimed > 0 {
        crate::say!(
            "hapwatch: {untimed} events come from lines with no time (HAProxy's stderr) and \
             are left off the timeline, which places events in time; `hapwatch analyze` \
             lists them in the order they happened"
        );
    }
    let incidents = find(&facts, job.gap);
    if job.list {
        return Ok(match job.format {
            Format::Json => render::list_json(&incidents).into(),
            // Names and causes come from the log: see `text`.
            _ => printable_lines(&render::list_text(&incidents))
                .into_owned()
                .into(),
        });
    }
    let newest = newest(&facts);
    let (incident, from, to) = match &job.pick {
        Pick::Last => match incidents.last() {
            Some(i) => window(i, job.pad, newest),
            None => {
                return Ok(Told::Text(
                    "no incident: no server went DOWN, no backend lost its servers, no alert \
                     fired (pick a window with --since/--until or --around)\n"
                        .into(),
                ))
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
    let window = Filter {
        since: Some(from),
        until: Some(to),
        ..job.filter.clone()
    };
    // Files hold every request: a short window gets buckets of seconds,
    // read again from them (the database keeps minutes).
    let width = match job.bucket {
        Some(w) => w,
        None if from_files => fine_width(to - from).unwrap_or(MINUTE_MS),
        None => MINUTE_MS,
    };
    if (to - from) / width > MAX_BUCKETS {
        return Err(Failed(
            2,
            format!(
                "--bucket {}s makes more than {MAX_BUCKETS} buckets of this window: a wider one",
                width / 1000
            ),
        ));
    }
    let mut minutes = super::Minutes::for_window(&facts, from, to);
    minutes.width = width;
    if width < MINUTE_MS {
        fine_pass(&job, &window, width)?
            .into_rollups()
            .filter(|r| window.selects(&r.key.host, &r.key.backend, Some(&r.key.server)))
            .for_each(|r| minutes.add(r));
    } else if job.filter.server.is_none() && store.has_backend_minutes() {
        // A backend's minutes as stored, all of its servers' added up (a
        // `--server` filter wants only some of them: added up below), and
        // its servers' own minutes for those something happened to.
        server_minutes(&path, &mut minutes, &window, |minutes| {
            store
                .each_backend_minute(&window, super::Minutes::TIMERS, |b| minutes.add_backend(b))
                .map_err(failed)
        })?;
        // The hosts that served a server some host saw go down: not in the
        // backends' minutes. Those with its transitions or check lines
        // report it already, and are not asked (a host that did not serve
        // it reads the whole window).
        let outaged: Vec<(String, String)> = (minutes.outaged())
            .map(|(b, s)| (b.to_string(), s.to_string()))
            .collect();
        let told: std::collections::HashSet<(&str, &str, &str)> = (facts.transitions.iter())
            .map(|t| (&t.host[..], &t.backend[..], &t.server[..]))
            .chain((facts.checks.iter()).map(|c| (&c.host[..], &c.backend[..], &c.server[..])))
            .collect();
        for (backend, server) in outaged {
            for host in store.hosts_knowing(&backend, &server).map_err(failed)? {
                if told.contains(&(&host[..], &backend[..], &server[..]))
                    || !window.selects(&host, &backend, Some(&server))
                {
                    continue;
                }
                if store
                    .served_in(&host, &backend, &server, &window)
                    .map_err(failed)?
                {
                    minutes.serving(&backend, &server, &host);
                }
            }
        }
    } else {
        store
            .each_rollup(&window, super::Minutes::TIMERS, |r| minutes.add(r))
            .map_err(failed)?;
    }
    let mut story = Story::build(&facts, minutes, from, to, incident.as_ref());
    if let Some(inv) = &job.inventory {
        story.inventory(inv);
    }
    Ok(match job.format {
        Format::Text => printable_lines(&render::text(&story)).into_owned().into(),
        Format::Markdown => printable_lines(&render::markdown(&story))
            .into_owned()
            .into(),
        Format::Json => Told::Json(Box::new(story)),
        Format::Html => super::html::html(&story).into(),
    })
}

fn failed(e: crate::store::StoreError) -> Failed {
    Failed(1, e.to_string())
}

/// Reads the minutes of the servers `minutes` keeps into it on as many
/// threads as there are cores, each with its own connection (a day of 165
/// servers is 237,600 rows, two histograms each to decode, and most of a
/// day's timeline), while this thread does `meanwhile` (the backends'
/// minutes). A database `listen` is writing may commit between two
/// connections' reads: a minute can be a commit newer in one series than
/// in another, never partly written.
fn server_minutes(
    path: &std::path::Path,
    minutes: &mut super::Minutes,
    window: &Filter,
    meanwhile: impl FnOnce(&mut super::Minutes) -> Result<(), Failed>,
) -> Result<(), Failed> {
    let servers = minutes.kept().to_vec();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let chunk = servers.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let read: Vec<_> = servers
            .chunks(chunk)
            .map(|servers| {
                let mut part = minutes.empty_like();
                s.spawn(move || {
                    let store = Store::open_read_only(path).map_err(failed)?;
                    for key in servers {
                        let name = super::server_name(&key.host, &key.backend, &key.server);
                        store
                            .each_server_minute(key, window, super::Minutes::TIMERS, |r| {
                                part.add_kept(&name, r.minute, &r.data)
                            })
                            .map_err(failed)?;
                    }
                    Ok(part)
                })
            })
            .collect();
        meanwhile(minutes)?;
        for part in read {
            minutes.absorb(&mut part.join().expect("a reading thread panicked")?);
        }
        Ok(())
    })
}

/// Buckets for a window of `span` read from files: the finest of these
/// giving at most [`FINE_BUCKETS`] buckets, or `None` (minutes) past them.
fn fine_width(span: Millis) -> Option<Millis> {
    [1_000, 2_000, 5_000, 10_000, 15_000, 30_000]
        .into_iter()
        .find(|w| span / w <= FINE_BUCKETS)
}

/// More buckets than this in one window is a mistake (a day by the second).
const MAX_BUCKETS: Millis = 100_000;

/// At most this many buckets in a window read from files (a 10-minute
/// window by the second, an hour by 10 s, five hours by 30 s).
const FINE_BUCKETS: Millis = 600;

/// Reads the files again for the requests of `window`, into buckets of
/// `width`: the engine's own request path (dates corrected as in the
/// database), nothing else kept.
fn fine_pass(
    job: &Job,
    window: &Filter,
    width: Millis,
) -> Result<crate::engine::rollup::Fine, Failed> {
    use crate::input::{self, Body, Source};
    let mut engine = crate::engine::Engine::new(job.reading.patterns.clone(), window.clone());
    engine.fine = Some(crate::engine::rollup::Fine::new(width));
    engine.zone = job.reading.zone.clone();
    for f in &job.files {
        let src = Source::parse(f);
        let failed = |e: std::io::Error| Failed(1, format!("{}: {e}", src.name()));
        let opened = input::open(&src, job.reading.year, false, (0, None), Default::default())
            .map_err(failed)?;
        let Body::Stream(r) = opened.body else {
            continue; // not mapped when not asked to be; never `Done` from 0
        };
        let mut chunks = input::Chunker::new(r);
        // One buffer, read over chunk after chunk (a fresh one was
        // zero-filled whole before each read).
        let mut spare = Vec::new();
        while let Some(chunk) = chunks.next_chunk_with(spare).map_err(failed)? {
            for line in input::lines(&chunk) {
                engine.ingest_line(line);
            }
            spare = chunk;
        }
    }
    Ok(engine.fine.take().expect("set above"))
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
