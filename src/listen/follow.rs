//! `--follow FILE`: tail a log file like `tail -F`, across rotation.
//!
//! Starts at the stored checkpoint when the file is the same one (device
//! and inode, and the first KiB of its text). A path followed before whose
//! file is another now (rotated or copytruncated while hapwatch was down):
//! first the old file's lines after the checkpoint, when logrotate left it
//! beside the path (renamed, or copytruncate's copy), then the new file
//! from its start, every line of it being new. A path never followed: at
//! its end (history is `analyze`'s job). Polls: rename
//! rotation (a new inode at the path) finishes the old file through the open
//! descriptor, then opens the new one from its start; copytruncate (the file
//! shorter than the position) starts over. Rotated `.gz` files are never
//! opened. SIGHUP reopens the path at once.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use ::bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::metrics::Listener;
use super::{Batch, Sender, StartError, BATCH};
use crate::store::{Checkpoint, Head, Store};

const POLL: Duration = Duration::from_millis(200);
/// A line longer than this is dropped whole and counted (`oversized`).
const MAX_LINE: usize = crate::engine::MAX_LINE;

pub struct Follower {
    path: PathBuf,
    /// Stored under this name (canonical path).
    key: String,
    file: Option<std::fs::File>,
    ino: (u64, u64),
    /// The first KiB of the file's text, kept with its checkpoints so that
    /// a restart tells the file from another written at the same path
    /// (`None` under [`Head::MIN`] bytes; read again until whole).
    head: Option<Head>,
    pos: u64,
    partial: Vec<u8>,
    /// Inside a line over MAX_LINE, dropped up to its LF; it started here.
    skipping: Option<u64>,
    /// Lines, bytes and oversized lines read, in /metrics as `file://PATH`.
    pub stats: Arc<Listener>,
}

impl Follower {
    pub fn open(path: &Path, store: &Store) -> Result<Follower, StartError> {
        let file = std::fs::File::open(path)
            .map_err(|e| StartError(format!("--follow {}: {e}", path.display())))?;
        let mut meta = file
            .metadata()
            .map_err(|e| StartError(format!("--follow {}: {e}", path.display())))?;
        let key = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string();
        let mut text = head_bytes(&file);
        let mut file = file;
        let fail = |e: crate::store::StoreError| StartError(e.to_string());
        let stored = store
            .resume_offset(&key, (meta.dev(), meta.ino()), Some(&text), false)
            .map_err(fail)?
            .map(|r| r.offset);
        let pos = match stored {
            Some(off) if off <= meta.len() => off,
            // Truncated while hapwatch was stopped (copytruncate): from the
            // start, as a running follower does.
            Some(_) => 0,
            // Followed before, and another file now: written since. The
            // old one, if it is beside the path, first, from its
            // checkpoint; the poll then finds the path rotated, finishes
            // it and opens the new file from its start.
            None => match store.checkpoint_of(&key).map_err(fail)? {
                Some(c) => match moved_aside(Path::new(&key), &c) {
                    Some((old, m)) => {
                        (text, meta) = (head_bytes(&old), m);
                        file = old;
                        c.offset
                    }
                    None => 0,
                },
                None => meta.len(),
            },
        };
        let me = Follower {
            path: path.to_path_buf(),
            key,
            file: Some(file),
            ino: (meta.dev(), meta.ino()),
            head: Head::of(&text),
            pos,
            partial: Vec::new(),
            skipping: None,
            stats: Arc::new(Listener {
                name: format!("file://{}", path.display()),
                ..Default::default()
            }),
        };
        if stored != Some(pos) {
            store
                .start_checkpoint(&me.mark())
                .map_err(|e| StartError(e.to_string()))?;
        }
        Ok(me)
    }

    pub async fn run(
        mut self,
        tx: Sender,
        stop: CancellationToken,
        reload: Arc<tokio::sync::Notify>,
    ) {
        loop {
            // Blocking file I/O off the runtime's threads.
            let (me, batches) = match tokio::task::spawn_blocking(move || {
                let b = self.poll();
                (self, b)
            })
            .await
            {
                Ok(x) => x,
                Err(_) => return,
            };
            self = me;
            for b in batches {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = reload.notified() => { self.file = None; }
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Reads what is new; handles rotation and truncation.
    fn poll(&mut self) -> Vec<Batch> {
        let mut out = Vec::new();
        let now = std::fs::metadata(&self.path).ok();
        let rotated = now.as_ref().is_some_and(|m| (m.dev(), m.ino()) != self.ino);
        if self.file.is_some() && !rotated && now.as_ref().is_some_and(|m| m.len() < self.pos) {
            // copytruncate: the same file, shorter: start over.
            self.pos = 0;
            self.head = None;
            self.partial.clear();
            self.skipping = None;
        }
        // Finish the current file through its descriptor (after a rename the
        // last lines written before rotation are still there).
        self.read_new(&mut out);
        if rotated || self.file.is_none() {
            if let Ok(f) = std::fs::File::open(&self.path) {
                if let Ok(m) = f.metadata() {
                    let same = (m.dev(), m.ino()) == self.ino;
                    self.ino = (m.dev(), m.ino());
                    if !same {
                        self.pos = 0;
                        self.head = None;
                        self.partial.clear();
                        self.skipping = None;
                    }
                    self.file = Some(f);
                    self.read_new(&mut out);
                }
            }
        }
        out
    }

    /// Checkpoint: after the last whole line (before a line being dropped:
    /// a restart drops it again rather than read its tail).
    fn mark(&self) -> Checkpoint {
        Checkpoint {
            path: self.key.clone(),
            dev: self.ino.0,
            ino: self.ino.1,
            offset: self
                .skipping
                .unwrap_or(self.pos - self.partial.len() as u64),
            cursor: None,
            decoded: None,
            head: self.head,
        }
    }

    fn read_new(&mut self, out: &mut Vec<Batch>) {
        // Taken out while reading, so that the rest of `self` stays usable.
        let Some(mut f) = self.file.take() else {
            return;
        };
        self.read_from(&mut f, out);
        self.file = Some(f);
    }

    fn read_from(&mut self, f: &mut std::fs::File, out: &mut Vec<Batch>) {
        if f.seek(SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.pos += n as u64;
            if self.head.is_none_or(|h| (h.len as usize) < Head::MAX) {
                self.head = Head::of(&head_bytes(f));
            }
            let mut frames = Vec::new();
            let mut start = 0;
            for i in memchr::memchr_iter(b'\n', &buf[..n]) {
                let piece = &buf[start..i];
                start = i + 1;
                if self.skipping.take().is_some() {
                    continue; // the end of a line already counted as oversized
                }
                if self.partial.len() + piece.len() > MAX_LINE {
                    // Too long, unless a hole (see below) precedes the
                    // line: it then starts at the hole's last NUL.
                    let line = match memchr::memrchr(0, piece) {
                        Some(z) => Some(piece[z..].to_vec()),
                        None => memchr::memrchr(0, &self.partial)
                            .map(|z| [&self.partial[z..], piece].concat()),
                    };
                    self.partial.clear();
                    match line.filter(|l| l.len() <= MAX_LINE) {
                        Some(line) => {
                            self.stats.messages.fetch_add(1, Relaxed);
                            self.stats.bytes.fetch_add(line.len() as u64, Relaxed);
                            frames.push(Bytes::from(line));
                        }
                        _ => {
                            self.stats.oversized.fetch_add(1, Relaxed);
                        }
                    }
                    continue;
                }
                self.stats.messages.fetch_add(1, Relaxed);
                self.stats
                    .bytes
                    .fetch_add((self.partial.len() + piece.len()) as u64, Relaxed);
                if self.partial.is_empty() {
                    frames.push(Bytes::copy_from_slice(piece));
                } else {
                    self.partial.extend_from_slice(piece);
                    frames.push(Bytes::from(std::mem::take(&mut self.partial)));
                }
            }
            if self.skipping.is_none() {
                self.partial.extend_from_slice(&buf[start..n]);
                if self.partial.len() > MAX_LINE {
                    // A hole (copytruncate under a writer that does not
                    // append: NULs up to its offset) is no line: kept from
                    // its last NUL, for the engine to count the run with
                    // the line after it (see `Engine::odd_line`).
                    if let Some(z) = memchr::memrchr(0, &self.partial).filter(|&z| z > 0) {
                        self.partial.drain(..z);
                    }
                }
                if self.partial.len() > MAX_LINE {
                    // An endless line: dropped up to its LF, counted once.
                    self.skipping = Some(self.pos - self.partial.len() as u64);
                    self.partial.clear();
                    self.stats.oversized.fetch_add(1, Relaxed);
                }
            }
            let mark = self.mark();
            let mut chunks = frames.chunks(BATCH).peekable();
            while let Some(c) = chunks.next() {
                out.push(
                    Batch::new(c.to_vec(), chunks.peek().is_none().then(|| mark.clone()))
                        .from(&self.stats),
                );
            }
        }
    }
}

/// The first [`Head::MAX`] bytes of a followed file (fewer when it is
/// shorter or cannot be read), read where they are: the descriptor's
/// position stays.
fn head_bytes(f: &std::fs::File) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0; Head::MAX];
    let mut n = 0;
    while n < b.len() {
        match f.read_at(&mut b[n..], n as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    b.truncate(n);
    b
}

/// The file a checkpoint of `path` (canonical: the directory is the real
/// file's, where logrotate works) was taken in, when logrotate moved it
/// aside while hapwatch was down and left it in the same directory: the
/// same device and inode (renamed), or a text that opens with the same
/// head (copytruncate's copy), as long as the checkpoint at least. A
/// compressed one is neither.
fn moved_aside(path: &Path, c: &Checkpoint) -> Option<(std::fs::File, std::fs::Metadata)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let here = std::fs::metadata(path).ok();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(m) = entry.metadata() else { continue };
        let same_as_path = here
            .as_ref()
            .is_some_and(|h| (h.dev(), h.ino()) == (m.dev(), m.ino()));
        if !m.is_file() || m.len() < c.offset || same_as_path {
            continue;
        }
        let renamed = (m.dev(), m.ino()) == (c.dev, c.ino);
        if !renamed && c.head.is_none() {
            continue;
        }
        let Ok(f) = std::fs::File::open(entry.path()) else {
            continue;
        };
        if c.head.is_none_or(|h| h.opens(&head_bytes(&f))) {
            return Some((f, m));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// The old file is found renamed (by inode) or copied (by head), never
    /// compressed, nor the file at the path itself.
    #[test]
    fn the_file_a_checkpoint_was_taken_in_is_found_beside_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("haproxy.log");
        let text: Vec<u8> = (0..40)
            .flat_map(|i| format!("Nov 24 10:00:{i:02} lb1 haproxy[7]: line {i}\n").into_bytes())
            .collect();
        std::fs::write(&log, &text).unwrap();
        let m = std::fs::metadata(&log).unwrap();
        let c = Checkpoint {
            path: log.display().to_string(),
            dev: m.dev(),
            ino: m.ino(),
            offset: 500,
            cursor: None,
            decoded: None,
            head: Head::of(&text),
        };
        assert!(moved_aside(&log, &c).is_none(), "the path's own file");
        // Renamed, and a new file at the path.
        let one = dir.path().join("haproxy.log.1");
        std::fs::rename(&log, &one).unwrap();
        std::fs::write(&log, b"another text\n").unwrap();
        let (_, found) = moved_aside(&log, &c).unwrap();
        assert_eq!(found.ino(), m.ino());
        // The renamed file compressed (another inode, other bytes), and
        // copied (made while the renamed file still holds its inode, so
        // that the copy's is another), then removed.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        std::fs::write(dir.path().join("haproxy.log.1.gz"), gz.finish().unwrap()).unwrap();
        let copy = dir.path().join("haproxy.log.0");
        std::fs::copy(&one, &copy).unwrap();
        std::fs::remove_file(&one).unwrap();
        // copytruncate's copy: another inode, the same text.
        let (_, found) = moved_aside(&log, &c).unwrap();
        assert_ne!(found.ino(), m.ino());
        std::fs::remove_file(&copy).unwrap();
        assert!(moved_aside(&log, &c).is_none(), "the gzip file is not it");
        // Shorter than the checkpoint: not the file read up to there.
        std::fs::write(&copy, &text[..400]).unwrap();
        assert!(moved_aside(&log, &c).is_none());
    }
}
