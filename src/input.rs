//! Offline input: files (plain, or gzip, xz, zstd or bzip2, told apart by
//! magic bytes, not by name), `-` for stdin, read in large chunks that end on a line boundary.
//!
//! Invariant: a chunk never splits a line; a line longer than the chunk size
//! is discarded up to its newline and counted, and reading goes on.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read},
    path::PathBuf,
    sync::atomic::Ordering,
};

use flate2::read::MultiGzDecoder;

use crate::envelope;
use crate::syslog::{self, Stamp};
use crate::time::{civil_from_days, Millis, YearResolver};

/// Bytes read per chunk handed to a worker.
pub const CHUNK: usize = 2 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn parse(s: &str) -> Source {
        if s == "-" {
            Source::Stdin
        } else {
            Source::File(PathBuf::from(s))
        }
    }

    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".into(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// The inputs with each file once, and each name left out with the name
/// it repeats. `hapwatch analyze haproxy.log haproxy.log*` gives the
/// current file twice, a link names the file beside it, `-` may come twice
/// (or as `/dev/stdin`): read twice, side by side, a file's requests were
/// counted twice (into the store's rollups too), and standard input's
/// lines torn between two readers of one pipe. Told by device and inode
/// (`-` by what `/dev/stdin` is), not by name: two files with the same
/// lines (two load balancers' copies) stay two inputs. A name that cannot
/// be read stays, for the reader to say why.
pub fn once_each<P: AsRef<std::path::Path> + Clone>(files: Vec<P>) -> (Vec<P>, Vec<(P, P)>) {
    use std::os::unix::fs::MetadataExt;
    /// A file by device and inode; by name where it cannot be looked at
    /// (a followed file not created yet, `-` without `/dev/stdin`).
    #[derive(PartialEq, Eq, Hash)]
    enum Key {
        Inode(u64, u64),
        Name(std::ffi::OsString),
    }
    let mut seen: std::collections::HashMap<Key, P> = Default::default();
    let (mut kept, mut left) = (Vec::new(), Vec::new());
    for f in files {
        let name = f.as_ref().as_os_str();
        let path = match name == "-" {
            true => std::path::Path::new("/dev/stdin"),
            false => f.as_ref(),
        };
        let key = match std::fs::metadata(path) {
            Ok(m) => Key::Inode(m.dev(), m.ino()),
            Err(_) => Key::Name(name.to_owned()),
        };
        match seen.get(&key) {
            Some(first) => left.push((f, first.clone())),
            None => {
                seen.insert(key, f.clone());
                kept.push(f);
            }
        }
    }
    (kept, left)
}

/// The files to read, logrotate's rotations of one log oldest first, each
/// log's in the places its files had: `haproxy.log*` as the shell gives it
/// (`haproxy.log`, `haproxy.log.1`, `haproxy.log.2.gz`, the current file
/// first) is read as the log was written. Read newest first, every state
/// line of the older files would be older than the states already applied
/// (stale), and their story lost. Told by name only (numbered `.N`,
/// `dateext`'s `-DATE`, before a compression suffix or, with logrotate's
/// `extension`, before the extension): the files of other logs, and `-`,
/// keep the order given.
pub fn in_rotation_order(files: Vec<String>) -> Vec<String> {
    let keys: Vec<Option<(String, Age)>> = files.iter().map(|f| rotation_of(f)).collect();
    // Each log's places in the list, in the order given.
    let mut places: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (i, key) in keys.iter().enumerate() {
        if let Some((log, _)) = key {
            places.entry(log).or_default().push(i);
        }
    }
    let mut out = files.clone();
    for at in places.values() {
        let mut oldest_first = at.clone();
        oldest_first.sort_by_key(|&j| keys[j].as_ref().map(|(_, age)| age));
        for (&place, &j) in at.iter().zip(&oldest_first) {
            out[place] = files[j].clone();
        }
    }
    out
}

/// How old a file is among its log's rotations, oldest first: numbered
/// ones by their number (`.2` before `.1`), dated ones by their date, the
/// log itself last.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Age {
    Numbered(std::cmp::Reverse<u64>),
    Dated(String),
    Current,
}

/// The log a file name is a rotation of (its directory and current name),
/// and how old it is; the log itself when the name is no rotation's.
fn rotation_of(file: &str) -> Option<(String, Age)> {
    if file == "-" {
        return None;
    }
    let path = std::path::Path::new(file);
    let dir = path
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = path.file_name()?.to_str()?;
    let name = [".gz", ".xz", ".zst", ".bz2"]
        .iter()
        .find_map(|z| name.strip_suffix(z))
        .unwrap_or(name);
    let log = |base: String| format!("{dir}/{base}");
    // `.N`: a number of a few digits (a longer one is a date).
    if let Some((base, n)) = name.rsplit_once('.') {
        if !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()) {
            return Some((
                log(base.into()),
                Age::Numbered(std::cmp::Reverse(n.parse().ok()?)),
            ));
        }
    }
    // `-DATE`, or `-DATE.EXT` (logrotate's `extension`: `haproxy-20261207.log`).
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_alphabetic()) => {
            (stem, Some(ext))
        }
        _ => (name, None),
    };
    for (stem, ext) in [(name, None), (stem, ext)] {
        if let Some((base, date)) = dated(stem) {
            let base = match ext {
                Some(ext) => format!("{base}.{ext}"),
                None => base.to_string(),
            };
            return Some((log(base), Age::Dated(date)));
        }
    }
    Some((log(name.into()), Age::Current))
}

/// `base-20261207`, `base-2026-12-07`, `base-2026120714` (a date of
/// `dateformat`'s digits and separators, eight digits at least): the base
/// and the date's digits.
fn dated(stem: &str) -> Option<(&str, String)> {
    // The longest such tail: `-2026-12-07`, not `-07`.
    stem.match_indices('-').find_map(|(i, _)| {
        let tail = &stem[i + 1..];
        let digits: String = tail.chars().filter(char::is_ascii_digit).collect();
        let ok = i > 0
            && tail.starts_with(|c: char| c.is_ascii_digit())
            && tail
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == '_')
            && digits.len() >= 8;
        ok.then(|| (&stem[..i], digits))
    })
}

/// How an opened input is read.
pub enum Body {
    /// A plain regular file, mapped: workers read it in place, no copy.
    Mapped(memmap2::Mmap),
    /// Compressed files, stdin, pipes: read and copied into chunks.
    Stream(Box<dyn Read + Send>),
    /// A compressed file already read whole by an earlier run (`--db`),
    /// and the bytes it decoded to then (unknown in checkpoints older than
    /// schema 15).
    Done(Option<u64>),
}

pub struct Opened {
    pub body: Body,
    /// Where reading starts (a checkpoint): a byte of a plain file, or of
    /// what a compressed file or journal export decodes to (see
    /// [`Opened::compressed`]).
    pub start: u64,
    /// (device, inode) of a file: what a checkpoint is tied to.
    pub identity: Option<(u64, u64)>,
    /// Size on disk, for the progress bar (compressed size when compressed).
    pub size: Option<u64>,
    /// Read through a decoder (a decompressor, the journal export's): its
    /// offsets are the decoded text's, and a checkpoint inside the file
    /// counts those (`start` too).
    pub compressed: bool,
    /// For RFC 3164 dates without a year: the file's modification time.
    pub years: YearResolver,
    /// When the input was last written (a file's modification time; now
    /// for stdin): no line in it can be dated much later.
    pub written: crate::time::Millis,
}

/// The forms rotated logs are compressed in (logrotate's `compresscmd`),
/// told by their magic bytes, not their name: `haproxy.log.1` may be
/// compressed and `x.gz` plain. Several members or frames one after the
/// other (`cat a.gz b.gz`) read as one stream in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Compression {
    /// Bytes [`Compression::sniff`] looks at (xz's magic is the longest).
    pub const MAGIC: usize = 6;

    pub fn sniff(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.starts_with(b"BZh") && head.get(3).is_some_and(u8::is_ascii_digit) {
            Some(Compression::Bzip2)
        } else {
            None
        }
    }

    fn decoder(self, r: impl io::BufRead + Send + 'static) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Compression::Gzip => Box::new(MultiGzDecoder::new(r)),
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
        })
    }
}

/// Counts bytes pulled from the underlying file (before decompression), so
/// progress reflects the position in the file.
struct Counting<R> {
    inner: R,
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

fn year_of(t: std::time::SystemTime) -> Option<(i64, u32, u32)> {
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(civil_from_days(secs.div_euclid(86_400)))
}

/// Opens a source. `year` (from `--year`) overrides the modification time.
/// With `mmap`, a plain regular file is mapped instead of read. `start` is
/// a byte offset to resume a plain file at (a checkpoint of `--db`); for a
/// compressed file (or a journal export), a `start` equal to its size
/// means it was read whole before, and `decoded` is where to resume in
/// what it decodes to (the bytes before are decoded again and skipped: a
/// decompressor cannot start mid-stream).
pub fn open(
    src: &Source,
    year: Option<i64>,
    mmap: bool,
    (start, decoded): (u64, Option<u64>),
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> io::Result<Opened> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::MetadataExt;
    let mut mapped = None;
    let mut begin = 0;
    let mut identity = None;
    let mut compression = None;
    let mut export = false;
    let now = std::time::SystemTime::now();
    let mut written = now;
    let (raw, size, mtime): (Box<dyn Read + Send>, _, _) = match src {
        Source::Stdin => (Box::new(io::stdin()), None, None),
        Source::File(p) => {
            let mut f = File::open(p)?;
            let meta = f.metadata()?;
            if meta.is_dir() {
                return Err(io::Error::other("is a directory"));
            }
            identity = Some((meta.dev(), meta.ino()));
            let mut magic = [0u8; EXPORT_SNIFF];
            let n = match read_up_to(&mut f, &mut magic) {
                (_, Some(e)) => return Err(e),
                (n, None) => n,
            };
            compression = Compression::sniff(&magic[..n]);
            export = compression.is_none()
                && (journal_export(&magic[..n])
                    || journal_pretty(&magic[..n])
                    || journal_verbose(&magic[..n]));
            if !meta.is_file() {
                // A pipe by name: `analyze <(zcat old.log.gz)`, a FIFO,
                // /dev/stdin. It cannot seek back over the bytes sniffed,
                // nor be mapped, nor checkpointed: read as standard input
                // is, those bytes first.
                let sniffed = io::Cursor::new(magic[..n].to_vec());
                let raw: Box<dyn Read + Send> = Box::new(sniffed.chain(f));
                identity = None;
                (raw, None, None)
            } else {
                // A file shorter than its checkpoint was truncated: start over.
                begin = if compression.is_some() || export || start > meta.len() {
                    0
                } else {
                    start
                };
                if mmap && meta.len() > 0 && compression.is_none() && !export {
                    // SAFETY: the map is read-only. A file truncated by another
                    // process while mapped raises SIGBUS on access; `--no-mmap`
                    // avoids that for files rotated with copytruncate.
                    let m = unsafe { memmap2::Mmap::map(&f)? };
                    let _ = m.advise(memmap2::Advice::Sequential);
                    // A file not in the page cache is then read into it in 2 MiB
                    // folios (Linux 6.x, transparent huge pages `madvise` or
                    // `always`; without the advice, 4 KiB ones), each mapped by
                    // one page-table entry, not 512: every later reading of the
                    // file, ours or any program's, runs faster (`analyze
                    // --threads 1`: 0.408 s of CPU in 4 KiB folios, 0.356 s in
                    // 2 MiB ones; BENCHMARKS.md, "The page cache's folios"). A
                    // file already cached stays as it is. A hint only.
                    #[cfg(target_os = "linux")]
                    let _ = m.advise(memmap2::Advice::HugePage);
                    mapped = Some(m);
                }
                f.seek(SeekFrom::Start(begin))?;
                written = meta.modified().unwrap_or(now);
                (
                    Box::new(f),
                    Some(meta.len()),
                    meta.modified().ok().and_then(year_of),
                )
            }
        }
    };
    // Without --year and without a file time (stdin), the current year is
    // the last resort; request lines carry their own year and correct it.
    let years = match (year, mtime) {
        (Some(y), _) => YearResolver::new(y, None),
        (None, Some((y, m, d))) => YearResolver::new(y, Some((m, d))),
        (None, None) => {
            let now = year_of(std::time::SystemTime::now()).unwrap_or((1970, 1, 1));
            YearResolver::new(now.0, Some((now.1, now.2)))
        }
    };
    let done = (compression.is_some() || export) && start > 0 && Some(start) == size;
    let mut skipped = 0;
    let (body, compressed) = if done {
        (Body::Done(decoded), true)
    } else if let Some(m) = mapped {
        (Body::Mapped(m), false)
    } else {
        let (again, counted) = (counter.clone(), counter.load(Ordering::Relaxed));
        let mut buf = BufReader::with_capacity(
            256 * 1024,
            Counting {
                inner: raw,
                counter,
            },
        );
        if src == &Source::Stdin {
            compression = Compression::sniff(buf.fill_buf()?);
        }
        let reader: Box<dyn Read + Send> = match compression {
            Some(c) => c.decoder(buf)?,
            None => Box::new(buf),
        };
        // `journalctl -o export`, `json-pretty` or `verbose` (a file, a
        // pipe, compressed): records of several lines, one line each.
        let mut reader = BufReader::with_capacity(256 * 1024, reader);
        let head = reader.fill_buf()?;
        let mut reader: Box<dyn Read + Send> = if journal_pretty(head) {
            export = true;
            Box::new(RecordLines::new(JsonPretty(reader)))
        } else if journal_verbose(head) {
            export = true;
            Box::new(RecordLines::new(JournalVerbose::new(reader)))
        } else if export || journal_export(head) {
            export = true;
            Box::new(RecordLines::new(JournalExport(reader)))
        } else {
            Box::new(reader)
        };
        let stream = compression.is_some() || export;
        if let (true, Some(n)) = (stream, decoded.filter(|&n| n > 0)) {
            // Decoded again up to the checkpoint. Shorter than that, it is
            // not the file the checkpoint was written for (rewritten in
            // place): read from its start.
            if io::copy(&mut (&mut reader).take(n), &mut io::sink())? < n {
                again.store(counted, Ordering::Relaxed);
                return open(src, year, mmap, (0, None), again);
            }
            skipped = n;
        }
        (Body::Stream(reader), stream)
    };
    let written = written
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as crate::time::Millis);
    Ok(Opened {
        written,
        body,
        start: match done {
            true => start,
            false => begin.max(skipped),
        },
        identity,
        size,
        compressed,
        years,
    })
}

/// The first `max` bytes of the text the file at `path` reads as (decoded,
/// for a compressed file or a journal export), and whether it is decoded:
/// what a checkpoint keeps to find the file again under another name
/// (`store::Head`). `None` for what cannot be read, or is no regular file.
pub fn text_head(path: &std::path::Path, max: usize) -> Option<(Vec<u8>, bool)> {
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let src = Source::File(path.to_path_buf());
    let opened = open(&src, None, false, (0, None), Default::default()).ok()?;
    let Body::Stream(reader) = opened.body else {
        return None;
    };
    let mut head = Vec::with_capacity(max);
    reader.take(max as u64).read_to_end(&mut head).ok()?;
    Some((head, opened.compressed))
}

/// A binary journal field longer than this is not a log line: the stream
/// is not an export (or is damaged), and reading stops with an error.
const MAX_FIELD: u64 = 16 << 20;

/// Bytes looked at to tell a compressed file or a saved journal (`-o
/// export`, `json-pretty`, `verbose`: its header's cursor starts about 40
/// bytes in).
const EXPORT_SNIFF: usize = 64;

/// `journalctl -o export` opens with a field of the entry's address.
fn journal_export(head: &[u8]) -> bool {
    const _: () = assert!(EXPORT_SNIFF >= Compression::MAGIC);
    head.starts_with(b"__CURSOR=") || head.starts_with(b"__REALTIME_TIMESTAMP=")
}

/// `journalctl -o json-pretty` opens an entry with `{` alone on its line
/// and a tab before each field.
fn journal_pretty(head: &[u8]) -> bool {
    head.starts_with(b"{\n\t\"")
}

/// `journalctl -o json-pretty` read as `-o json`: each entry, `{` and `}`
/// on lines of their own around its fields (`\t"NAME" : value,` a line),
/// joined into one line that the journal envelope reads as it reads
/// `-o json` (JSON does not mind the spaces). A JSON string holds no raw
/// newline, so a line that is `}` alone ends the entry whatever the
/// message says. An entry cut short at the end is handed out as it is
/// (not understood, counted); an entry longer than [`MAX_FIELD`] is handed
/// out in pieces (each too long for a line: dropped and counted).
pub struct JsonPretty<R>(pub R);

/// The next line of a saved journal without its line end, at most
/// [`MAX_FIELD`] bytes of it; `None` at the end.
fn journal_line(r: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    if r.take(MAX_FIELD).read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(Some(line))
}

impl<R: BufRead> Records for JsonPretty<R> {
    /// The next entry (or a line outside any).
    fn next_record(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        loop {
            let Some(line) = journal_line(&mut self.0)? else {
                if out.is_empty() {
                    return Ok(false);
                }
                out.push(b'\n');
                return Ok(true);
            };
            if out.is_empty() && line != b"{" {
                if line.is_empty() {
                    continue;
                }
                // Not an entry's first line: as it is.
                out.extend_from_slice(&line);
                out.push(b'\n');
                return Ok(true);
            }
            let field = line.trim_ascii_start();
            out.extend_from_slice(field);
            if field == b"}" || out.len() as u64 > MAX_FIELD {
                out.push(b'\n');
                return Ok(true);
            }
        }
    }
}

/// `journalctl -o export` (systemd's Journal Export Format) read as lines:
/// each entry (fields `NAME=value`, or `NAME`, a little-endian u64 size and
/// the bytes for a binary value; a blank line after the entry) becomes
/// `journalctl -o short-iso-precise`'s line, which the syslog layer reads:
/// `2026-11-24T16:23:14.123456+00:00 HOST IDENTIFIER[PID]: MESSAGE` (the
/// time from `__REALTIME_TIMESTAMP`; without one, the message alone).
/// Newlines inside a binary message become spaces: one entry, one line.
pub struct JournalExport<R>(pub R);

impl<R: BufRead> Records for JournalExport<R> {
    fn next_record(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            if (&mut self.0).take(MAX_FIELD).read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if line.is_empty() {
                if fields.is_empty() {
                    continue;
                }
                break;
            }
            match memchr::memchr(b'=', &line) {
                Some(eq) => fields.push((line[..eq].to_vec(), line[eq + 1..].to_vec())),
                None => {
                    let mut size = [0u8; 8];
                    self.0.read_exact(&mut size)?;
                    let n = u64::from_le_bytes(size);
                    if n > MAX_FIELD {
                        return Err(io::Error::other(format!(
                            "journal export: a field of {n} bytes"
                        )));
                    }
                    let mut value = vec![0u8; n as usize];
                    self.0.read_exact(&mut value)?;
                    let mut nl = [0u8; 1];
                    self.0.read_exact(&mut nl)?;
                    fields.push((line.clone(), value));
                }
            }
        }
        if fields.is_empty() {
            return Ok(false);
        }
        let micros = field(&fields, b"__REALTIME_TIMESTAMP")
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok());
        entry_line(&fields, micros, out);
        Ok(true)
    }
}

/// A journal entry's field by name.
fn field<'f>(fields: &'f [(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<&'f [u8]> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// A journal entry as `journalctl -o short-iso-precise`'s line (see
/// [`JournalExport`]), into `out`.
fn entry_line(fields: &[(Vec<u8>, Vec<u8>)], micros: Option<i64>, out: &mut Vec<u8>) {
    let get = |k: &[u8]| field(fields, k);
    if let Some(us) = micros {
        let t = crate::time::format_rfc3339_ms(us.div_euclid(1000));
        // `...T16:23:14.123Z` -> `...T16:23:14.123456+00:00`
        out.extend_from_slice(&t.as_bytes()[..23]);
        out.extend_from_slice(format!("{:03}+00:00 ", us.rem_euclid(1000)).as_bytes());
        let host = get(b"_HOSTNAME").filter(|h| !h.is_empty()).unwrap_or(b"-");
        out.extend_from_slice(host);
        out.push(b' ');
        let ident = get(b"SYSLOG_IDENTIFIER")
            .or_else(|| get(b"_COMM"))
            .filter(|h| !h.is_empty())
            .unwrap_or(b"-");
        out.extend_from_slice(ident);
        if let Some(pid) = get(b"SYSLOG_PID").or_else(|| get(b"_PID")) {
            out.push(b'[');
            out.extend_from_slice(pid);
            out.push(b']');
        }
        out.extend_from_slice(b": ");
    }
    let msg = get(b"MESSAGE").unwrap_or_default();
    out.extend(
        msg.iter()
            .map(|&c| if c == b'\n' || c == b'\r' { b' ' } else { c }),
    );
    out.push(b'\n');
}

/// `journalctl -o verbose` opens an entry with its time and cursor:
/// `Mon 2026-12-07 14:03:16.025712 UTC [s=...;t=6620bafedd58b;...]`.
fn journal_verbose(head: &[u8]) -> bool {
    let day = head
        .get(..4)
        .is_some_and(|d| d[..3].iter().all(u8::is_ascii_alphabetic) && d[3] == b' ');
    let date = head.get(4..15).is_some_and(|d| {
        d.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b' ',
            _ => c.is_ascii_digit(),
        })
    });
    day && date && memchr::memmem::find(&head[..head.len().min(64)], b" [s=").is_some()
}

/// `journalctl -o verbose` read as lines: each entry (its header line, then
/// a field a line, `    NAME=value`) becomes the line [`JournalExport`]
/// makes of the same entry. The time is the cursor's `t=` (the entry's
/// realtime in hexadecimal microseconds), not the header's local time.
pub struct JournalVerbose<R> {
    inner: R,
    /// The next entry's header, read as the end of the one before.
    header: Option<Vec<u8>>,
}

impl<R: BufRead> JournalVerbose<R> {
    pub fn new(inner: R) -> Self {
        JournalVerbose {
            inner,
            header: None,
        }
    }

    fn line(&mut self) -> io::Result<Option<Vec<u8>>> {
        journal_line(&mut self.inner)
    }
}

impl<R: BufRead> Records for JournalVerbose<R> {
    fn next_record(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let header = match self.header.take() {
            Some(h) => h,
            None => loop {
                match self.line()? {
                    None => return Ok(false),
                    Some(l) if l.is_empty() => continue,
                    Some(l) => break l,
                }
            },
        };
        if !journal_verbose(&header) {
            // Not an entry's header: as it is.
            out.extend_from_slice(&header);
            out.push(b'\n');
            return Ok(true);
        }
        let micros = memchr::memmem::find(&header, b";t=").and_then(|at| {
            let hex = &header[at + 3..];
            let end = hex.iter().position(|c| !c.is_ascii_hexdigit())?;
            i64::from_str_radix(std::str::from_utf8(&hex[..end]).ok()?, 16).ok()
        });
        let mut fields = Vec::new();
        while let Some(line) = self.line()? {
            match line.strip_prefix(b"    ") {
                Some(f) => {
                    if let Some(eq) = memchr::memchr(b'=', f) {
                        fields.push((f[..eq].to_vec(), f[eq + 1..].to_vec()));
                    }
                }
                None => {
                    self.header = Some(line);
                    break;
                }
            }
        }
        entry_line(&fields, micros, out);
        Ok(true)
    }
}

/// A stream of records that each become one line ([`JournalExport`],
/// [`JsonPretty`]).
pub trait Records {
    /// The next record's line into `out` (empty); false at the end.
    fn next_record(&mut self, out: &mut Vec<u8>) -> io::Result<bool>;
}

/// [`Records`] read as the lines they become.
pub struct RecordLines<D> {
    records: D,
    out: Vec<u8>,
    at: usize,
    done: bool,
}

impl<D: Records> RecordLines<D> {
    pub fn new(records: D) -> Self {
        RecordLines {
            records,
            out: Vec::new(),
            at: 0,
            done: false,
        }
    }
}

impl<D: Records> Read for RecordLines<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.out.len() {
            self.out.clear();
            self.at = 0;
            if self.done || !self.records.next_record(&mut self.out)? {
                self.done = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads `r` into chunks of whole lines.
pub struct Chunker<R> {
    reader: R,
    carry: Vec<u8>,
    /// Inside a line longer than a chunk: drop bytes up to the next newline.
    discarding: bool,
    eof: bool,
    error: Option<io::Error>,
    /// Lines dropped because they did not fit in a chunk.
    pub oversized: u64,
    /// Keep a last line without its newline unread (it may still be being
    /// written): for checkpoints, which must end on a line boundary.
    pub hold_tail: bool,
    /// Bytes handed out in chunks or skipped as oversized.
    pub consumed: u64,
    /// Bytes per chunk ([`CHUNK`] unless set).
    pub size: usize,
}

impl<R: Read> Chunker<R> {
    pub fn new(reader: R) -> Self {
        Chunker {
            reader,
            carry: Vec::new(),
            discarding: false,
            eof: false,
            error: None,
            oversized: 0,
            hold_tail: false,
            consumed: 0,
            size: CHUNK,
        }
    }

    /// The next chunk of whole lines, or `None` at the end.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.next_chunk_with(Vec::new())
    }

    /// Like [`Chunker::next_chunk`], filling `buf` (a recycled chunk): its
    /// pages are already mapped, which spares a page fault per 4 KiB read,
    /// and its bytes are already written, so they are read over rather
    /// than cleared: only bytes past them are zero-filled. (The standard
    /// library's `read_to_end` zero-fills all it reads into first when
    /// the reader has no `read_buf` of its own, as the counting reader and
    /// the decoders: a `memset` of the whole input, 4% of a one-thread run
    /// from standard input.)
    pub fn next_chunk_with(&mut self, mut buf: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        // The chunk is `buf[..filled]`; past it, bytes of no meaning.
        let mut filled = 0;
        loop {
            let carried = self.carry.len();
            if buf.len() < filled + carried {
                buf.resize(filled + carried, 0);
            }
            buf[filled..filled + carried].copy_from_slice(&self.carry);
            filled += carried;
            self.carry.clear();
            if self.eof {
                // A last line cut by a read error (a truncated gzip file)
                // is not the line that was written: the lines before it
                // are handed out, then the error, and it is left unread.
                if filled == 0 || self.discarding || self.hold_tail || self.error.is_some() {
                    return match self.error.take() {
                        Some(e) => Err(e),
                        None => Ok(None),
                    };
                }
                buf.truncate(filled);
                self.consumed += filled as u64;
                return Ok(Some(buf));
            }
            let want = self.size.saturating_sub(filled).max(64 * 1024);
            if buf.len() < filled + want {
                buf.resize(filled + want, 0);
            }
            let (n, error) = read_up_to(&mut self.reader, &mut buf[filled..filled + want]);
            filled += n;
            if let Some(e) = error {
                // Hand out the good lines read so far, then the error.
                self.error = Some(e);
                self.eof = true;
            } else if n < want {
                self.eof = true;
            }
            if self.discarding {
                match memchr::memchr(b'\n', &buf[..filled]) {
                    Some(i) => {
                        self.discarding = false;
                        self.consumed += i as u64 + 1;
                        buf.copy_within(i + 1..filled, 0);
                        filled -= i + 1;
                    }
                    None => {
                        self.consumed += filled as u64;
                        filled = 0; // still inside the long line
                        continue;
                    }
                }
            }
            match memchr::memrchr(b'\n', &buf[..filled]) {
                Some(i) => {
                    let i = parts_kept_whole(&buf[..=i]) - 1;
                    self.carry.extend_from_slice(&buf[i + 1..filled]);
                    buf.truncate(i + 1);
                    self.consumed += buf.len() as u64;
                    return Ok(Some(buf));
                }
                None if !self.eof && filled >= self.size => {
                    // A run of NULs (a hole: a file copytruncated under a
                    // writer that does not append) is no line: dropped up
                    // to its last NUL, which stays for the engine to count
                    // the run, before the line that follows it.
                    if let Some(i) = memchr::memrchr(0, &buf[..filled]).filter(|&i| i > 0) {
                        self.consumed += i as u64;
                        self.carry.extend_from_slice(&buf[i..filled]);
                        filled = 0;
                        continue;
                    }
                    // A single line fills a whole chunk: far beyond the line
                    // limit. Count it once and skip to its end.
                    self.oversized += 1;
                    self.discarding = true;
                    self.consumed += filled as u64;
                    filled = 0;
                }
                None => {
                    self.carry.extend_from_slice(&buf[..filled]);
                    filled = 0;
                }
            }
        }
    }
}

/// Reads into all of `buf` unless the input ends first: what was read, and
/// the error that stopped it, if one did.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// Where to end a chunk of whole lines (`chunk` ends with a newline) so
/// that the parts of one line a container runtime cut up (CRI `P` parts then
/// `F`, json-file records of a full 16 KiB buffer then one with the newline)
/// go to one worker, which joins them: before the trailing run of parts,
/// if any. A chunk of nothing but parts ends where it is (their
/// line is far beyond the line limit, and is counted so).
pub fn parts_kept_whole(chunk: &[u8]) -> usize {
    let mut end = chunk.len();
    while end > 0 {
        let start = memchr::memrchr(b'\n', &chunk[..end - 1]).map_or(0, |i| i + 1);
        if !crate::envelope::continued(&chunk[start..end - 1]) {
            break;
        }
        end = start;
    }
    if end == 0 {
        chunk.len()
    } else {
        end
    }
}

/// When a line says it was written, for reading several logs in time
/// order (`analyze` given each load balancer's file): its syslog header's
/// date, a runtime's or journald's time around it (the one that says more,
/// as the engine takes it), else the accept date of a request line written
/// raw; `None` when it says nothing. A date without a year takes one from
/// a copy of `years`: a probe anywhere in a file leaves the stream's
/// anchor where it was. A zoneless date is compared as written: the logs
/// read together are in one zone or say theirs.
pub fn line_time(line: &[u8], years: &YearResolver) -> Option<Millis> {
    match envelope::peel(line) {
        Some(env) => header_time(&envelope::header(&env), years),
        None => {
            let mut h = syslog::parse(line);
            envelope::look_inside_in_place(&mut h);
            header_time(&h, years)
        }
    }
}

/// [`line_time`] of a line's header: its date, else the accept date
/// (`[24/Nov/2026:10:00:00.000]`, after the client's address) that a
/// request line written raw opens with.
fn header_time(h: &syslog::Header, years: &YearResolver) -> Option<Millis> {
    match h.stamp {
        Stamp::Full(t) | Stamp::Local(t) => Some(t),
        Stamp::NoYear(d) => Some(years.clone().resolve(d)),
        Stamp::None => {
            let open = memchr::memchr(b'[', &h.msg[..h.msg.len().min(64)])?;
            Some(crate::time::parse_haproxy_date(&h.msg[open + 1..])?.0)
        }
    }
}

/// The chunk of a mapped file from `start` (on a line boundary): about
/// `size` bytes, up to a line boundary. A line longer than a chunk stays
/// whole (the line limit drops it later). One chunk at a time: the reader
/// changes the size as it goes (`EpochClock`).
pub fn mapped_chunk(data: &[u8], start: usize, size: usize) -> std::ops::Range<usize> {
    let mut end = (start + size).min(data.len());
    if end < data.len() {
        end = match memchr::memrchr(b'\n', &data[start..end]) {
            Some(i) => start + parts_kept_whole(&data[start..start + i + 1]),
            None => memchr::memchr(b'\n', &data[end..]).map_or(data.len(), |i| end + i + 1),
        };
    }
    start..end
}

/// How far ahead of the line being parsed its chunk is asked into the
/// cache: about ten lines, several memory latencies of parsing. (512 to
/// 4096 bytes measured alike, none at all 15-23% slower on an AMD EPYC VM.)
const PREFETCH_AHEAD: usize = 2048;

/// Asks the CPU to bring `chunk[from..to]` into its cache, one 64-byte line
/// at a time, and returns how far it got. A hint only: it never faults and
/// changes no result.
///
/// Why: parsing a line takes long enough that the out-of-order core cannot
/// reach the next line's first bytes, and where the hardware prefetcher does
/// not stream them in (seen on an AMD EPYC VM: the line splitter's first
/// touch was a fifth of the run) each line starts with a miss to memory.
#[inline(always)]
fn prefetch(chunk: &[u8], from: usize, to: usize) -> usize {
    let to = to.min(chunk.len());
    let mut at = from;
    while at < to {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `at < chunk.len()`, an address inside the slice;
        // prefetching reads nothing the program sees.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(chunk.as_ptr().add(at).cast());
        }
        at += 64;
    }
    at
}

/// Splits a chunk into lines (without `\n`).
pub fn lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    // One memchr iterator over the whole chunk: its setup is paid once,
    // not once per line.
    let mut ends = memchr::memchr_iter(b'\n', chunk);
    let mut start = 0;
    let mut ahead = 0;
    std::iter::from_fn(move || match ends.next() {
        Some(end) => {
            let line = &chunk[start..end];
            start = end + 1;
            ahead = prefetch(chunk, ahead, end + PREFETCH_AHEAD);
            Some(line)
        }
        None if start < chunk.len() => {
            let line = &chunk[start..];
            start = chunk.len();
            Some(line)
        }
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name that cannot be looked at (a followed file not created yet)
    /// is told by its name: twice, once; two such names, two inputs. Two
    /// files with the same bytes are two inputs.
    #[test]
    fn each_file_once_by_inode_else_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        std::fs::write(&a, "x\n").unwrap();
        std::fs::write(&b, "x\n").unwrap();
        let hard = dir.path().join("a-again.log");
        std::fs::hard_link(&a, &hard).unwrap();
        let (later, other) = (dir.path().join("later.log"), dir.path().join("other.log"));
        let given = vec![
            a.clone(),
            b.clone(),
            later.clone(),
            hard.clone(),
            later.clone(),
            other.clone(),
        ];
        let (kept, left) = once_each(given);
        assert_eq!(kept, vec![a.clone(), b, later.clone(), other]);
        assert_eq!(left, vec![(hard, a), (later.clone(), later)]);
    }

    #[test]
    fn a_log_s_rotations_are_put_oldest_first_in_their_places() {
        let order =
            |files: &[&str]| in_rotation_order(files.iter().map(|f| f.to_string()).collect());
        // The shell's `haproxy.log*`, numbered and dateext (its default
        // format, `dateformat -%Y-%m-%d`, and `extension .log`).
        for (given, want) in [
            (
                vec![
                    "/l/haproxy.log",
                    "/l/haproxy.log.1",
                    "/l/haproxy.log.10.gz",
                    "/l/haproxy.log.2.gz",
                ],
                vec![
                    "/l/haproxy.log.10.gz",
                    "/l/haproxy.log.2.gz",
                    "/l/haproxy.log.1",
                    "/l/haproxy.log",
                ],
            ),
            (
                vec![
                    "haproxy.log",
                    "haproxy.log-20261123.gz",
                    "haproxy.log-20261124",
                ],
                vec![
                    "haproxy.log-20261123.gz",
                    "haproxy.log-20261124",
                    "haproxy.log",
                ],
            ),
            (
                vec![
                    "haproxy.log",
                    "haproxy.log-2026-11-24",
                    "haproxy.log-2026-11-23.xz",
                ],
                vec![
                    "haproxy.log-2026-11-23.xz",
                    "haproxy.log-2026-11-24",
                    "haproxy.log",
                ],
            ),
            (
                vec![
                    "lb-1/haproxy-20261124.log.zst",
                    "lb-1/haproxy.log",
                    "lb-1/haproxy-20261123.log",
                ],
                vec![
                    "lb-1/haproxy-20261123.log",
                    "lb-1/haproxy-20261124.log.zst",
                    "lb-1/haproxy.log",
                ],
            ),
            // Two logs interleaved, stdin and another file in between: each
            // log's files in that log's places, the rest where they were.
            (
                vec![
                    "a/haproxy.log",
                    "-",
                    "b/haproxy.log",
                    "a/haproxy.log.1",
                    "other.log",
                    "b/haproxy.log.1",
                ],
                vec![
                    "a/haproxy.log.1",
                    "-",
                    "b/haproxy.log.1",
                    "a/haproxy.log",
                    "other.log",
                    "b/haproxy.log",
                ],
            ),
            // Not rotations of one log: as given.
            (
                vec!["lb2.log", "lb1.log", "my-app-2.log"],
                vec!["lb2.log", "lb1.log", "my-app-2.log"],
            ),
        ] {
            assert_eq!(order(&given), want, "{given:?}");
        }
    }

    /// A reader that returns at most `step` bytes per call.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Every line, through chunks that each reuse the one before as
    /// `analyze` reuses them: its bytes still there (made garbage here),
    /// read over, never part of the next chunk.
    fn all_lines(data: &[u8], step: usize) -> (Vec<Vec<u8>>, u64) {
        let mut c = Chunker::new(Trickle(data, step));
        let (mut out, mut spare) = (Vec::new(), Vec::new());
        while let Some(mut ch) = c.next_chunk_with(spare).unwrap() {
            assert!(ch.ends_with(b"\n") || !data.ends_with(b"\n"));
            out.extend(lines(&ch).map(|l| l.to_vec()));
            ch.fill(b'#');
            spare = ch;
        }
        (out, c.oversized)
    }

    /// A reused chunk longer than the next, and one of stale newlines: the
    /// chunks hold the input's bytes only, in order, and end on its lines.
    #[test]
    fn a_reused_chunk_s_old_bytes_never_show() {
        let data: Vec<u8> = (0..5_000)
            .flat_map(|i| format!("line {i} {}\n", "y".repeat(i % 97)).into_bytes())
            .collect();
        for (size, stale) in [(4096, b'\n'), (65536, b'#'), (1 << 20, 0)] {
            let mut c = Chunker::new(Trickle(&data, 1000));
            c.size = size;
            let (mut got, mut spare) = (Vec::new(), vec![stale; 3 * size]);
            while let Some(ch) = c.next_chunk_with(spare).unwrap() {
                assert!(ch.ends_with(b"\n"), "size {size}");
                got.extend_from_slice(&ch);
                spare = ch;
                spare.resize(3 * size, stale);
            }
            assert!(got == data, "size {size}: the input, byte for byte");
            assert_eq!(c.consumed, data.len() as u64);
        }
    }

    /// The parts of a CRI line stay in one chunk, whichever cutter cuts.
    #[test]
    fn a_chunk_never_ends_between_the_parts_of_a_line() {
        let p = |m: &str| format!("2026-12-02T10:00:00.1Z stdout P {m}\n");
        let f = |m: &str| format!("2026-12-02T10:00:00.1Z stderr F {m}\n");
        let plain = "Dec  2 10:00:00 lb1 haproxy[8]: x\n".to_string();
        for (chunk, kept) in [
            // Ends after an F, or a plain line: where it is.
            (vec![p("a"), f("b")], 2),
            (vec![f("a"), plain.clone()], 2),
            // Ends in the parts of a line: before them.
            (vec![f("a"), p("b"), p("c")], 1),
            (vec![plain.clone(), f("a"), p("b")], 2),
            // Nothing but parts: where it is.
            (vec![p("a"), p("b")], 2),
        ] {
            let text = chunk.concat();
            let want: usize = chunk[..kept].iter().map(String::len).sum();
            assert_eq!(parts_kept_whole(text.as_bytes()), want, "{text}");
        }
        // Through both cutters: each chunk but the last ends after an F.
        let mut text = String::new();
        for i in 0..6000 {
            text.push_str(&p(&"x".repeat(300 + i % 7)));
            text.push_str(&p("y"));
            text.push_str(&f("z"));
        }
        let ends_whole = |c: &[u8]| {
            let last = c[..c.len() - 1].rsplit(|&b| b == b'\n').next().unwrap();
            assert!(!crate::envelope::continued(last));
        };
        let ranges = mapped_chunks(text.as_bytes(), CHUNK);
        assert!(ranges.len() > 1);
        for r in &ranges {
            ends_whole(&text.as_bytes()[r.clone()]);
        }
        let mut c = Chunker::new(text.as_bytes());
        let mut all = Vec::new();
        while let Some(chunk) = c.next_chunk().unwrap() {
            ends_whole(&chunk);
            all.extend_from_slice(&chunk);
        }
        assert_eq!(all, text.as_bytes());
    }

    /// The prefetch that runs ahead of the splitter stops at the chunk's
    /// end and changes no line: chunks shorter and longer than its
    /// distance, lines longer than it, with and without a final newline.
    #[test]
    fn lines_read_ahead_changes_no_line() {
        for (len, line) in [
            (0, 1),
            (10, 3),
            (PREFETCH_AHEAD, 7),
            (3 * PREFETCH_AHEAD + 5, 200),
        ]
        .into_iter()
        .chain([(9000, PREFETCH_AHEAD * 2 + 1), (70, 1)])
        {
            let text: Vec<u8> = (0..len)
                .map(|i| {
                    if i % line == line - 1 {
                        b'\n'
                    } else {
                        b'a' + (i % 26) as u8
                    }
                })
                .collect();
            let got: Vec<&[u8]> = lines(&text).collect();
            let mut want: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            if text.ends_with(b"\n") || text.is_empty() {
                want.pop();
            }
            assert_eq!(got, want, "{len} bytes, a newline every {line}");
        }
        // It goes no further than asked, nor past the chunk.
        let chunk = [0u8; 1000];
        assert_eq!(prefetch(&chunk, 0, 100), 128);
        assert_eq!(prefetch(&chunk, 128, 100), 128);
        assert_eq!(prefetch(&chunk, 128, 5000), 1024);
    }

    #[test]
    fn chunks_never_split_lines() {
        let mut data = Vec::new();
        for i in 0..200_000 {
            data.extend_from_slice(format!("line {i} with some text\n").as_bytes());
        }
        for step in [1 << 20, 7919, CHUNK * 2] {
            let (ls, over) = all_lines(&data, step);
            assert_eq!(ls.len(), 200_000);
            assert_eq!(ls[123_456], b"line 123456 with some text");
            assert_eq!(over, 0);
        }
    }

    #[test]
    fn giant_line_is_skipped_and_counted() {
        let mut data = b"first\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', CHUNK * 3 + 17));
        data.extend_from_slice(b"\nlast\n");
        let (ls, over) = all_lines(&data, 65536);
        assert_eq!(ls, vec![b"first".to_vec(), b"last".to_vec()]);
        assert_eq!(over, 1);
    }

    /// A hole longer than a chunk (a copytruncated file, read through a
    /// pipe or gzip) is dropped up to its last chunk's worth: the line
    /// after it arrives whole, behind what is left of the run (less than a
    /// chunk, for the engine to count and skip), and the bytes skipped
    /// count as consumed (checkpoints stay on the file's offsets).
    #[test]
    fn a_hole_longer_than_a_chunk_keeps_the_line_after_it() {
        let mut data = b"first\n".to_vec();
        data.extend(std::iter::repeat_n(0u8, CHUNK * 3 + 17));
        data.extend_from_slice(b"after the hole\nlast\n");
        for step in [65536, CHUNK * 2] {
            let mut c = Chunker::new(Trickle(&data, step));
            let mut got = Vec::new();
            while let Some(ch) = c.next_chunk().unwrap() {
                got.extend(lines(&ch).map(|l| l.to_vec()));
            }
            assert_eq!(got.len(), 3, "step {step}");
            let after = &got[1];
            assert!(after.len() <= CHUNK && after[0] == 0, "step {step}");
            let run = after.iter().take_while(|&&b| b == 0).count();
            assert_eq!(&after[run..], b"after the hole", "step {step}");
            assert_eq!((&got[0][..], &got[2][..]), (&b"first"[..], &b"last"[..]));
            assert_eq!(c.oversized, 0, "step {step}");
            assert_eq!(c.consumed, data.len() as u64, "step {step}");
        }
    }

    /// A whole mapped file cut at one size.
    fn mapped_chunks(data: &[u8], size: usize) -> Vec<std::ops::Range<usize>> {
        let (mut ranges, mut at) = (vec![], 0);
        while at < data.len() {
            let r = mapped_chunk(data, at, size);
            at = r.end;
            ranges.push(r);
        }
        ranges
    }

    #[test]
    fn mapped_chunks_cover_everything_on_line_boundaries() {
        let mut data = Vec::new();
        for i in 0..300_000 {
            data.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        data.extend(std::iter::repeat_n(b'x', CHUNK * 2));
        data.extend_from_slice(b"\nend");
        let ranges = mapped_chunks(&data, CHUNK);
        assert_eq!(ranges[0].start, 0);
        assert_eq!(ranges.last().unwrap().end, data.len());
        for w in ranges.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert_eq!(data[w[0].end - 1], b'\n');
        }
        let n: usize = ranges.iter().map(|r| lines(&data[r.clone()]).count()).sum();
        assert_eq!(n, 300_002);
    }

    #[test]
    fn last_line_without_newline() {
        let (ls, _) = all_lines(b"a\nb", 1);
        assert_eq!(ls, vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn json_pretty_entries_are_read_as_one_line_each() {
        let pretty = b"{\n\t\"__REALTIME_TIMESTAMP\" : \"1795537394123456\",\n\t\"MESSAGE\" : \"a }\\n{ b\"\n}\n{\n\t\"MESSAGE\" : [ 104, 105 ]\n}\n{\n\t\"MESSAGE\" : \"cut";
        let mut text = String::new();
        RecordLines::new(JsonPretty(&pretty[..]))
            .read_to_string(&mut text)
            .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"__REALTIME_TIMESTAMP" : "1795537394123456","MESSAGE" : "a }\n{ b"}"#,
                r#"{"MESSAGE" : [ 104, 105 ]}"#,
                r#"{"MESSAGE" : "cut"#,
            ]
        );
        // Each whole one is what the journal envelope reads.
        let e = crate::envelope::open(lines[0].as_bytes());
        assert_eq!(e.kind, crate::envelope::Kind::Journal);
        assert_eq!(&e.inner[..], b"a }\n{ b");
        assert_eq!(e.time, Some(1_795_537_394_123));
        assert!(journal_pretty(pretty) && !journal_pretty(lines[0].as_bytes()));
    }

    #[test]
    fn verbose_entries_are_read_as_one_line_each() {
        let verbose = b"Mon 2026-12-07 14:03:16.025712 JST [s=4393;i=c978;b=1ba4;m=7d22;t=6620bafedd58b;x=d7d8]\n    _HOSTNAME=lb1\n    SYSLOG_IDENTIFIER=haproxy\n    _PID=8\n    no field\n    MESSAGE=Server be/s1 is DOWN\nnot an entry\n";
        assert!(journal_verbose(verbose));
        let mut text = String::new();
        RecordLines::new(JournalVerbose::new(&verbose[..]))
            .read_to_string(&mut text)
            .unwrap();
        // t=6620bafedd58b is 1796652196025739 us: the time in UTC whatever
        // zone the header was written in.
        assert_eq!(
            text,
            "2026-12-07T14:03:16.025739+00:00 lb1 haproxy[8]: Server be/s1 is DOWN\nnot an entry\n"
        );
    }

    #[test]
    fn a_line_cut_by_a_read_error_is_left_unread() {
        // What a truncated gzip file reads as: lines, then an error.
        let cut = io::Cursor::new(b"one\ntwo\nthr".to_vec()).chain(Failing);
        let mut c = Chunker::new(cut);
        let chunk = c.next_chunk_with(Vec::new()).unwrap().unwrap();
        assert_eq!(chunk, b"one\ntwo\n");
        assert_eq!(c.consumed, 8);
        assert!(c.next_chunk_with(Vec::new()).is_err());
        assert_eq!(c.consumed, 8, "the cut line is not counted as read");
    }

    struct Failing;

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "incomplete deflate stream",
            ))
        }
    }
}
