//! `--journal UNIT` and `--journal-dir DIR`: the systemd journal followed
//! live, for hosts where HAProxy's health lines exist only there (no syslog
//! target; its stderr under `haproxy.service`).
//!
//! A child `journalctl -f -o json` (run directly, no shell) writes one JSON
//! entry per line; the lines go through the same queue as any listener's,
//! and the envelope layer reads them (`MESSAGE`, `__REALTIME_TIMESTAMP`,
//! `_HOSTNAME`). The place is each entry's `__CURSOR`: the last one of a
//! batch goes with it to the store and is written in the commit that stores
//! what the batch did (`checkpoints.cursor`, like a followed file's offset),
//! so a restart of hapwatch reads on after the last entry stored
//! (`--after-cursor`), never past one that was not; the first run starts at
//! the end (history is `analyze`'s job). (journalctl's own `--cursor-file`
//! is written only when it ends by itself, not when it is killed: no use.)
//! A child that dies is started again after a growing pause (1 s to 30 s),
//! after the last entry read, counted in `hapwatch_journal_restarts_total`;
//! the other listeners never wait for it. On stop, the child is ended and
//! what it already wrote is read to its end.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::codec::{AnyDelimiterCodec, FramedRead};
use tokio_util::sync::CancellationToken;

use super::metrics::Listener;
use super::{Batch, Sender};
use crate::store::Checkpoint;

/// What to follow: a unit of the system journal, or a journal directory
/// (copied from another machine, or `systemd-journal-remote`'s).
#[derive(Clone, Debug)]
pub enum Journal {
    Unit(String),
    Dir(PathBuf),
}

impl Journal {
    pub fn name(&self) -> String {
        match self {
            Journal::Unit(u) => format!("journal://{u}"),
            Journal::Dir(d) => format!("journal-dir://{}", d.display()),
        }
    }

    fn command(&self, after: Option<&str>) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("journalctl");
        c.args([
            "--follow",
            "--output=json",
            "--all",
            "--no-pager",
            "--quiet",
        ]);
        match after {
            // `--follow` alone shows only the last 10 entries after it.
            Some(cursor) => c.args(["--lines=all", &format!("--after-cursor={cursor}")]),
            // Without a place yet: from now on.
            None => c.arg("--lines=0"),
        };
        match self {
            Journal::Unit(u) => {
                c.arg("--unit").arg(u);
            }
            Journal::Dir(d) => {
                c.arg("--directory").arg(d);
            }
        }
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        c
    }
}

pub struct Follow {
    pub journal: Journal,
    /// The cursor stored by the last run, if any.
    pub after: Option<String>,
    pub max_frame: usize,
}

pub async fn run(mut f: Follow, tx: Sender, l: Arc<Listener>, stop: CancellationToken) {
    let mut pause = Duration::from_secs(1);
    loop {
        let started = std::time::Instant::now();
        match f.journal.command(f.after.as_deref()).spawn() {
            Ok(mut child) => {
                let out = child.stdout.take().expect("piped stdout");
                let codec =
                    AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), f.max_frame);
                let mut lines = FramedRead::new(out, codec);
                let stopping = pump(&mut lines, &mut child, &mut f.after, &tx, &l, &stop).await;
                let status = child.wait().await;
                if stopping {
                    return;
                }
                // A child that ran a while had nothing wrong with it: the
                // pause starts short again.
                if started.elapsed() > Duration::from_secs(60) {
                    pause = Duration::from_secs(1);
                }
                crate::say!(
                    "hapwatch: {}: journalctl ended ({}); starting it again in {} s",
                    l.name,
                    status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                    pause.as_secs()
                );
            }
            Err(e) => crate::say!(
                "hapwatch: {}: cannot run journalctl ({e}); trying again in {} s",
                l.name,
                pause.as_secs()
            ),
        }
        l.restarts.fetch_add(1, Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => return,
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// Reads the child's lines into the queue until it ends (false) or
/// hapwatch stops (true: the child is asked to end, its output read out).
async fn pump(
    lines: &mut FramedRead<tokio::process::ChildStdout, AnyDelimiterCodec>,
    child: &mut tokio::process::Child,
    after: &mut Option<String>,
    tx: &Sender,
    l: &Arc<Listener>,
    stop: &CancellationToken,
) -> bool {
    let mut stopping = false;
    loop {
        let next = if stopping {
            lines.next().await
        } else {
            tokio::select! {
                n = lines.next() => n,
                _ = stop.cancelled() => {
                    stopping = true;
                    // What it already wrote is still read and applied.
                    if let Some(pid) = child.id() {
                        // SAFETY: kill(2) on our own child's pid.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                    }
                    continue;
                }
            }
        };
        let (frames, open) = super::stdin::batch(lines, next, l);
        if !frames.is_empty() {
            let mark = frames.iter().rev().find_map(|f| cursor_of(f)).map(|c| {
                *after = Some(c.clone());
                Checkpoint {
                    path: l.name.clone(),
                    dev: 0,
                    ino: 0,
                    offset: 0,
                    cursor: Some(c),
                    decoded: None,
                    head: None,
                }
            });
            if tx.send(Batch::new(frames, mark).from(l)).await.is_err() {
                return true;
            }
        }
        if !open {
            return stopping;
        }
    }
}

/// `"__CURSOR":"s=...;i=...;b=...;m=...;t=...;x=..."` of a JSON entry (a
/// cursor has no character JSON escapes).
fn cursor_of(entry: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"__CURSOR\":\"";
    let at = memchr::memmem::find(entry, KEY)? + KEY.len();
    let len = memchr::memchr(b'"', &entry[at..])?;
    std::str::from_utf8(&entry[at..at + len])
        .ok()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cursor_is_found_wherever_journalctl_puts_it() {
        let e = br#"{"_HOSTNAME":"lb1","__CURSOR":"s=85595b;i=2;b=0123;m=56e4;t=6610;x=9b50","MESSAGE":"x"}"#;
        assert_eq!(
            super::cursor_of(e).as_deref(),
            Some("s=85595b;i=2;b=0123;m=56e4;t=6610;x=9b50")
        );
        assert_eq!(super::cursor_of(br#"{"MESSAGE":"x"}"#), None);
    }
}
