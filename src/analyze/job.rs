//! `hapwatch analyze` from its settings to a report: the database opened
//! (or created while reading starts), each file resumed at its checkpoint
//! with the server states stored, the run, `--retain`, and what could not
//! be stored. The binary only parses arguments, prints and picks the exit
//! status.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::input::Source;
use crate::report::{Report, Resumed};
use crate::store::{Head, Store, StoreError, Writer};
use crate::time::Millis;

/// What `hapwatch analyze` was asked to do.
pub struct Job {
    /// Log files (plain or gzip), `-` for stdin, in the order given.
    pub files: Vec<String>,
    /// `--db`: store states, transitions, rollups and alerts here, and read
    /// each file on from where the last run stopped.
    pub db: Option<PathBuf>,
    /// `--retain`: forget transitions older than this before the newest.
    pub retain: Option<Millis>,
    /// `--commit-every`.
    pub commit_every: Duration,
    /// `--group`: who may read the database.
    pub readers: crate::store::Readers,
    pub reading: super::Reading,
}

/// What a job gives: the report, and what went wrong on the way.
pub struct Done {
    pub report: Report,
    /// Inputs of which more than half the lines were not understood: what
    /// they look like, for stderr (`analyze` exits 1 unless
    /// `--allow-unparsed`).
    pub not_understood: Vec<String>,
    /// Inputs that could not be read, a database that failed mid-run and
    /// what it did not store: one message each, for stderr.
    pub problems: Vec<String>,
    /// Worth saying, not a failure (a database readable by others).
    pub warnings: Vec<String>,
}

/// Runs the job. An error is a database that cannot be used at all (the
/// user's to fix, before any work); anything that fails later is in
/// [`Done::problems`] and the report is still made.
pub fn run(job: Job) -> Result<Done, StoreError> {
    // A new database is created (the file first, so that a bad path fails
    // here) and its schema written on a thread while reading starts: it has
    // no checkpoints to read.
    let mut opening = None;
    let mut warnings = Vec::new();
    let store = match job.db.as_deref() {
        Some(p) if !p.exists() => {
            Store::create_file(p, job.readers)?;
            let path = p.to_path_buf();
            let readers = job.readers;
            opening = Some((
                path.clone(),
                std::thread::spawn(move || Store::open_for(&path, readers)),
            ));
            None
        }
        Some(p) => {
            let s = Store::open_for(p, job.readers)?;
            warnings.extend(s.permissions_warning());
            Some(s)
        }
        None => None,
    };
    let sources: Vec<Source> = job.files.iter().map(|f| Source::parse(f)).collect();
    // Checkpoints are stored under the canonical path.
    let keys: Vec<Option<String>> = sources
        .iter()
        .map(|s| match s {
            Source::File(p) => Some(
                std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string(),
            ),
            Source::Stdin => None,
        })
        .collect();
    // The text each file opens with goes with its checkpoint (a new
    // database's too): the file is found again by it once logrotate has
    // renamed or compressed it.
    let heads: Vec<Option<(Vec<u8>, bool)>> = sources
        .iter()
        .map(|s| match (s, job.db.is_some()) {
            (Source::File(p), true) => crate::input::text_head(p, Head::MAX),
            _ => None,
        })
        .collect();
    let mut starts = vec![crate::store::Resume::default(); sources.len()];
    let mut seed = Vec::new();
    if let Some(store) = store.as_ref() {
        for (i, (src, key)) in sources.iter().zip(&keys).enumerate() {
            if let (Source::File(p), Some(key)) = (src, key) {
                if let Ok(meta) = std::fs::metadata(p) {
                    let (head, decoded) = match &heads[i] {
                        Some((h, decoded)) => (Some(&h[..]), *decoded),
                        None => (None, false),
                    };
                    starts[i] = store
                        .resume_offset(key, (meta.dev(), meta.ino()), head, decoded)?
                        .unwrap_or_default();
                }
            }
        }
        // The story goes on from the states stored: in a file read on from
        // where it stopped, and in the next one logrotate left under a new
        // name (`dateext`), whose first lines would else start every
        // server afresh. An older log read afterwards starts its servers
        // afresh all the same (`HealthTracker::seed`).
        seed = store.load_states()?;
    }
    let writer = match (store, opening) {
        (Some(s), _) => Some(Writer::new(s, job.commit_every)),
        (None, Some((path, open))) => Some(Writer::opening(path, open, job.commit_every)),
        (None, None) => None,
    };
    let outcome = super::run(
        super::Options {
            reading: job.reading,
            starts,
            hold_tail: writer.is_some(),
            sources,
            checkpoint_paths: keys
                .into_iter()
                .zip(&heads)
                .map(|(k, h)| Some((k?, h.as_ref().and_then(|(h, _)| Head::of(h)))))
                .collect(),
            seed,
        },
        writer,
    );
    let mut problems = outcome.errors.clone();
    // A store that fails does not cost the report: it is still made, and
    // the problems say what was not stored.
    if let Some(w) = outcome.writer.as_ref() {
        match &outcome.store_error {
            None => {}
            Some(e) => {
                let (rollups, transitions, alerts) = w.unwritten(&outcome.engine);
                let servers = outcome.engine.server_count();
                let before = if w.commits > 0 {
                    format!(" (the {} commits before the failure are stored)", w.commits)
                } else {
                    String::new()
                };
                problems.push(format!(
                    "{e}; not stored: {transitions} transitions, {rollups} server-minutes of \
                     rollups, {alerts} alert events, the state of {servers} servers{before}"
                ));
            }
        }
    }
    if let (Some(keep), Some(w), None) = (job.retain, outcome.writer, &outcome.store_error) {
        let mut w = w;
        if let Err(e) = w.store().and_then(|s| s.prune(keep)) {
            problems.push(format!("--retain: {e}"));
        }
    }
    let not_understood = outcome
        .inputs
        .iter()
        .zip(&job.files)
        .filter(|(c, _)| c.lines > 0 && c.unparsed * 2 > c.lines)
        .map(|(c, name)| {
            let samples: String = c
                .samples
                .iter()
                .map(|l| format!("\n    {}", l.chars().take(200).collect::<String>()))
                .collect();
            let nearest = c
                .samples
                .first()
                .map(|l| crate::engine::diagnose::nearest_form(l.as_bytes()))
                .unwrap_or_default();
            format!(
                "{name}: {} of {} lines not understood ({:.0}%), e.g.:{samples}\n  nearest known form: {nearest}",
                c.unparsed,
                c.lines,
                c.unparsed as f64 * 100.0 / c.lines as f64
            )
        })
        .collect();
    let mut report = Report::build(outcome.engine, &outcome.errors);
    // In event-time order (degradation alerts are judged when their minutes
    // close, after the transitions of the same time).
    report.alerts = outcome.alerts.map(|mut v| {
        v.sort_by_key(|a| a.ends_at.unwrap_or(a.starts_at));
        v
    });
    report.input.resumed = outcome
        .marks
        .iter()
        .filter(|m| m.started_at > 0)
        .map(|m| Resumed {
            file: job.files[m.source].clone(),
            offset: m.started_at,
        })
        .collect();
    warnings.extend(rate_limit_warnings(&report.input.counts.rate_limited));
    Ok(Done {
        report,
        not_understood,
        problems,
        warnings,
    })
}

/// What the logging daemons said they dropped: the report's counts miss
/// those lines, and the operator can lift the limit.
fn rate_limit_warnings(lost: &crate::engine::RateLimited) -> Vec<String> {
    let mut out = Vec::new();
    for (by, sources) in lost {
        for (from, n) in sources {
            let limit = match *by {
                "journald" => "the journal's rate limit (RateLimitBurst= in journald.conf, or LogRateLimitBurst= of the unit)",
                _ if from.starts_with("imuxsock") || from.starts_with("pid ") => {
                    "rsyslog's rate limit of imuxsock (SysSock.RateLimit.Burst / .Interval)"
                }
                _ => "rsyslog's rate limit of that input (its ratelimit.burst / ratelimit.interval)",
            };
            out.push(format!(
                "{n} messages of {from} were dropped by {limit} before any log kept them: \
                 the requests and events of those seconds are missing from this report"
            ));
        }
    }
    out
}
