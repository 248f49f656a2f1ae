//! `analyze --by`: requests counted by one of the keys halog counts by
//! (`-st` status codes, `-tc` termination codes, `-cc` cookie codes, `-u*`
//! URLs, `-ic` client addresses) instead of by server. Each worker counts
//! its own lines; the counts merge exactly, like every other aggregate.
//!
//! Where halog's rules differ (it reads fields by position, so a TCP line's
//! bytes count as its "status"): only HTTP lines have a status or cookie
//! codes here; a TCP line's termination state is its two letters.
//!
//! URLs and clients are counted by halog's rules for `-u*` and `-ic`
//! (`admin/halog/halog.c`, `filter_count_url`, `filter_count_ip`), so the
//! figures are the same: an error is a `-1` among the timers (any of the
//! five for a URL; TR or Ta for a client), and the time is Tr for a URL,
//! TR for a client, Ta when that one is `-1` (the "OK" time then counts 0).
//! A URL is cut at `?` or `;` unless the query is kept (`--query`); a
//! request line without one (`<BADREQ>`) is keyed `"<BADREQ>"`, as halog
//! keys it. TCP lines (three timers) are counted apart, as halog does.
//!
//! Memory stays bounded with millions of URLs or clients: the table holds
//! at most [`MAX_BYTES`] of keys and figures (each of N workers a 1/N
//! share), as a Space-Saving summary (Metwally et al., 2005) evicted in
//! halves. When the table is full, the keys whose estimate (requests
//! counted plus [`Named::uncounted`]) is at most the median are dropped and
//! that median becomes the floor; a key kept afterwards starts
//! with the floor as its `uncounted` bound. So every estimate is at least
//! the key's true count, its figures miss at most `uncounted` requests, and
//! any key with more requests than the final floor is in the table: the
//! heavy hitters a `--top` shows are never lost, whatever the order of the
//! log. Below the bound nothing is evicted and every figure is exact.

use rustc_hash::FxHashMap;

use crate::haproxy::{Mode, Request};

/// What requests are counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// The HTTP status code (`-1`: no response), as `halog -st`.
    Status,
    /// The first two letters of the termination state (who ended the
    /// session, in which phase), as `halog -tc`.
    Termination,
    /// The last two letters of an HTTP termination state (persistence
    /// cookie), as `halog -cc`.
    Cookie,
    /// The request's URL, as `halog -u*`.
    Url,
    /// The client address, as `halog -ic`.
    Client,
    /// The frontend (listener name, without the `~` of a TLS one): halog
    /// has no such report.
    Frontend,
}

/// How `--by url` and `--by client` rows are ordered (halog's `-u`,
/// `-uc`, `-ue`, `-ua`, `-ut`, `-uao`, `-uto`, `-uba`, `-ubt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sort {
    Key,
    #[default]
    Count,
    Errors,
    AvgTime,
    TotalTime,
    AvgOkTime,
    TotalOkTime,
    AvgBytes,
    TotalBytes,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Key => "key",
            Sort::Count => "count",
            Sort::Errors => "errors",
            Sort::AvgTime => "avg-time",
            Sort::TotalTime => "total-time",
            Sort::AvgOkTime => "avg-ok-time",
            Sort::TotalOkTime => "total-ok-time",
            Sort::AvgBytes => "avg-bytes",
            Sort::TotalBytes => "total-bytes",
        }
    }
}

/// The memory URLs or clients may take (see the module's word on the
/// summary that keeps the heaviest beyond it): about 290,000 IPv4 clients
/// or 190,000 URLs of 30 bytes, every figure exact below that on one
/// thread (a worker of N keeps 1/N of it).
pub const MAX_BYTES: usize = 32 << 20;

/// Frontends kept: requests of further ones are counted in
/// [`Breakdown::overflow`].
pub const MAX_FRONTENDS: usize = 100_000;

/// What a kept URL or client costs: its slot in a hash table that may be
/// half empty after growing (entry and control byte, twice), and a URL's
/// bytes on the heap with the allocator's overhead.
fn cost<K>(key_len: usize) -> usize {
    2 * (std::mem::size_of::<(K, Named)>() + 1) + if key_len > 0 { key_len + 16 } else { 0 }
}

impl By {
    /// The key's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            By::Status => "status",
            By::Termination => "termination",
            By::Cookie => "cookie",
            By::Url => "url",
            By::Client => "client",
            By::Frontend => "frontend",
        }
    }

    /// Whether rows are keyed by a name (halog's `url_stat`) rather than a
    /// small code.
    pub fn named(self) -> bool {
        matches!(self, By::Url | By::Client)
    }

    /// Whether a worker's table is bounded, so that past its bound what it
    /// keeps depends on which lines that worker read: URLs and clients (a
    /// summary that evicts) and frontends (past [`MAX_FRONTENDS`]).
    pub fn bounded(self) -> bool {
        matches!(self, By::Url | By::Client | By::Frontend)
    }
}

/// halog's figures of one URL or client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Named {
    pub requests: u64,
    pub errors: u64,
    /// Milliseconds: Tr (URL) or TR (client), Ta when that is `-1`.
    pub time: u64,
    /// The same over requests whose Tr (TR) is known.
    pub time_ok: u64,
    pub bytes: u64,
    /// Requests of this key that its figures may miss: 0 for a key kept
    /// since its first request; the summary's floor for one kept after the
    /// table was full (its earlier requests may have been evicted). Its
    /// true count is between `requests` and `requests + uncounted`.
    pub uncounted: u64,
}

impl Named {
    /// The summary's estimate: never below the key's true count.
    pub fn estimate(&self) -> u64 {
        self.requests + self.uncounted
    }

    fn merge(&mut self, o: &Named) {
        self.requests += o.requests;
        self.uncounted += o.uncounted;
        self.errors += o.errors;
        self.time += o.time;
        self.time_ok += o.time_ok;
        self.bytes = self.bytes.saturating_add(o.bytes);
    }

    /// halog's averages, integer division, 0 over nothing: time and bytes
    /// per request, OK time per request without error.
    pub fn time_avg(&self) -> u64 {
        self.time.checked_div(self.requests).unwrap_or(0)
    }

    pub fn time_ok_avg(&self) -> u64 {
        self.time_ok
            .checked_div(self.requests - self.errors)
            .unwrap_or(0)
    }

    pub fn bytes_avg(&self) -> u64 {
        self.bytes.checked_div(self.requests).unwrap_or(0)
    }

    /// The value `sort` orders by (largest first).
    fn sort_value(&self, sort: Sort) -> u64 {
        match sort {
            // The requests counted: what the row shows (the summary keeps
            // every key above its floor whatever the order shown).
            Sort::Key | Sort::Count => self.requests,
            Sort::Errors => self.errors,
            Sort::AvgTime => self.time_avg(),
            Sort::TotalTime => self.time,
            Sort::AvgOkTime => self.time_ok_avg(),
            Sort::TotalOkTime => self.time_ok,
            Sort::AvgBytes => self.bytes_avg(),
            Sort::TotalBytes => self.bytes,
        }
    }
}

/// The counts of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Row {
    pub requests: u64,
    /// As in the server report: a 5xx, a -1 status or a server-side
    /// termination.
    pub errors: u64,
    pub bytes: u64,
}

impl Row {
    fn merge(&mut self, o: &Row) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.bytes = self.bytes.saturating_add(o.bytes);
    }
}

/// Requests counted by one key. Keys are small (a status code, two
/// letters): packed into an integer, no allocation per line.
#[derive(Clone, Debug)]
pub struct Breakdown {
    pub by: By,
    rows: FxHashMap<i64, Row>,
    /// URLs or clients.
    named: FxHashMap<Box<[u8]>, Named>,
    /// Clients written as IPv4 addresses, packed: no allocation per key
    /// and less than half the memory (a log of a million clients).
    ipv4: FxHashMap<u32, Named>,
    /// Frontends: a name, the counts of a code.
    names: FxHashMap<Box<[u8]>, Row>,
    /// Lines without the key (a TCP line's status, a format without
    /// `%ST` or `%tsc`): counted, not keyed.
    pub without: u64,
    /// Requests in no row: of URLs or clients evicted from the summary,
    /// of frontends past [`MAX_FRONTENDS`].
    pub overflow: u64,
    /// The memory the URLs or clients may take ([`MAX_BYTES`]; a share of
    /// it in each worker, less in tests) and what they take.
    pub max_bytes: usize,
    bytes: usize,
    /// The summary's floor: the largest estimate evicted (0 while nothing
    /// was). A key not in the table had at most this many requests.
    pub floor: u64,
    /// `--query`: a URL keeps its query string.
    pub query: bool,
    pub sort: Sort,
    /// Rows shown (0: all).
    pub top: usize,
}

impl Breakdown {
    pub fn new(by: By) -> Breakdown {
        Breakdown {
            by,
            rows: FxHashMap::default(),
            named: FxHashMap::default(),
            ipv4: FxHashMap::default(),
            names: FxHashMap::default(),
            without: 0,
            overflow: 0,
            max_bytes: MAX_BYTES,
            bytes: 0,
            floor: 0,
            query: false,
            sort: Sort::Count,
            top: 0,
        }
    }

    /// The key of `r`, packed: the status, or two letters big-endian.
    fn key(&self, r: &Request) -> Option<i64> {
        let pair = |t: &[u8]| Some(i64::from(*t.first()?) << 8 | i64::from(*t.get(1)?));
        match self.by {
            By::Status => (r.mode != Mode::Tcp).then_some(i64::from(r.status)),
            By::Termination => pair(r.termination),
            By::Cookie if r.mode == Mode::Tcp => None,
            By::Cookie => pair(r.termination.get(2..)?),
            By::Url | By::Client | By::Frontend => None,
        }
    }

    /// A URL or client line, by halog's rules (see the module's word).
    fn add_named(&mut self, r: &Request) {
        use crate::haproxy::Timer;
        if r.mode == Mode::Tcp {
            self.without += 1;
            return;
        }
        let quoted;
        let (key, first) = match self.by {
            By::Url => {
                let Some(h) = r.http() else {
                    self.without += 1;
                    return;
                };
                let uri = match (h.uri, h.method) {
                    (b"", b"") => {
                        self.without += 1;
                        return;
                    }
                    (b"", method) => {
                        quoted = [b"\"", method, b"\""].concat();
                        &quoted[..]
                    }
                    (uri, _) => uri,
                };
                let cut = match self.query {
                    true => uri.len(),
                    false => memchr::memchr2(b'?', b';', uri).unwrap_or(uri.len()),
                };
                (&uri[..cut], Timer::Tr)
            }
            _ => (r.client(), Timer::TR),
        };
        let ta = r.timer(Timer::Ta);
        let error = match self.by {
            By::Url => r.timers[..5].iter().any(|&t| t < 0),
            _ => r.timer(Timer::TR) < 0 || ta < 0,
        };
        let t = r.timer(first);
        let (time, time_ok) = if t >= 0 { (t, t) } else { (ta.max(0), 0) };
        let packed = match self.by {
            By::Client => ipv4(key),
            _ => None,
        };
        let tally = |n: &mut Named| {
            n.requests += 1;
            n.errors += u64::from(error);
            n.time += time as u64;
            n.time_ok += time_ok as u64;
            n.bytes = n.bytes.saturating_add(r.bytes);
        };
        // One lookup for a key already kept (nearly every line).
        let kept = match packed {
            Some(ip) => self.ipv4.get_mut(&ip),
            None => self.named.get_mut(key),
        };
        if let Some(n) = kept {
            return tally(n);
        }
        let c = match packed {
            Some(_) => cost::<u32>(0),
            None => cost::<Box<[u8]>>(key.len()),
        };
        if self.bytes + c > self.max_bytes {
            self.evict();
        }
        self.bytes += c;
        let mut n = Named {
            uncounted: self.floor,
            ..Named::default()
        };
        tally(&mut n);
        match packed {
            Some(ip) => self.ipv4.insert(ip, n),
            None => self.named.insert(key.into(), n),
        };
    }

    #[inline]
    pub fn add(&mut self, r: &Request) {
        if self.by.named() {
            return self.add_named(r);
        }
        let row = if self.by == By::Frontend {
            if self.names.len() >= MAX_FRONTENDS && !self.names.contains_key(r.frontend) {
                self.overflow += 1;
                return;
            }
            match self.names.get_mut(r.frontend) {
                Some(row) => row,
                None => self.names.entry(r.frontend.into()).or_default(),
            }
        } else {
            let Some(k) = self.key(r) else {
                self.without += 1;
                return;
            };
            self.rows.entry(k).or_default()
        };
        row.requests += 1;
        row.errors += u64::from(r.is_error());
        row.bytes = row.bytes.saturating_add(r.bytes);
    }

    /// Drops the URLs or clients whose estimate is at most the median
    /// (half the table, or more on ties) and raises the floor to it.
    #[cold]
    fn evict(&mut self) {
        let mut estimates: Vec<u64> = (self.named.values().chain(self.ipv4.values()))
            .map(Named::estimate)
            .collect();
        if estimates.is_empty() {
            return;
        }
        let mid = estimates.len() / 2;
        let median = *estimates.select_nth_unstable(mid).1;
        drop(estimates);
        let (mut dropped, mut freed) = (0, 0);
        let mut keep = |n: &mut Named, c: usize| {
            let kept = n.estimate() > median;
            if !kept {
                dropped += n.requests;
                freed += c;
            }
            kept
        };
        self.named
            .retain(|k, n| keep(n, cost::<Box<[u8]>>(k.len())));
        self.ipv4.retain(|_, n| keep(n, cost::<u32>(0)));
        self.overflow += dropped;
        self.bytes -= freed;
        self.floor = self.floor.max(median);
    }

    /// Adds another reader's counts, taking its tables.
    pub fn merge(&mut self, o: Breakdown) {
        for (k, row) in o.rows {
            self.rows.entry(k).or_default().merge(&row);
        }
        self.overflow += merge_frontends(&mut self.names, o.names);
        // A key one summary lacks may have had up to that one's floor
        // there; the merged floor bounds a key both lack.
        let (mine, theirs) = (self.floor, o.floor);
        merge_named(&mut self.named, o.named, mine, theirs);
        merge_named(&mut self.ipv4, o.ipv4, mine, theirs);
        self.floor = mine + theirs;
        // A key both had is kept once.
        self.bytes = self
            .named
            .keys()
            .map(|k| cost::<Box<[u8]>>(k.len()))
            .sum::<usize>()
            + self.ipv4.len() * cost::<u32>(0);
        while self.bytes > self.max_bytes {
            self.evict();
        }
        self.without += o.without;
        self.overflow += o.overflow;
    }

    /// URLs or clients, ordered by [`Breakdown::sort`] (largest first,
    /// then by key; `Sort::Key` by key alone), the first
    /// [`Breakdown::top`] of them (all with 0), and how many there are.
    pub fn named_rows(&self) -> (Vec<(String, Named)>, usize) {
        let packed: Vec<(String, &Named)> = self
            .ipv4
            .iter()
            .map(|(ip, n)| (std::net::Ipv4Addr::from(*ip).to_string(), n))
            .collect();
        let mut rows: Vec<(&[u8], &Named)> = self
            .named
            .iter()
            .map(|(k, n)| (&**k, n))
            .chain(packed.iter().map(|(k, n)| (k.as_bytes(), *n)))
            .collect();
        let sort = self.sort;
        let by_key = |a: &(&[u8], &Named), b: &(&[u8], &Named)| a.0.cmp(b.0);
        if sort == Sort::Key {
            rows.sort_unstable_by(by_key);
        } else {
            rows.sort_unstable_by(|a, b| {
                b.1.sort_value(sort)
                    .cmp(&a.1.sort_value(sort))
                    .then_with(|| by_key(a, b))
            });
        }
        let total = rows.len();
        if self.top > 0 {
            rows.truncate(self.top);
        }
        let rows = rows
            .into_iter()
            .map(|(k, n)| (String::from_utf8_lossy(k).into_owned(), *n))
            .collect();
        (rows, total)
    }

    /// The keys as written in the log and their counts, most requests
    /// first (then by key).
    pub fn rows(&self) -> Vec<(String, Row)> {
        let mut rows: Vec<(String, Row)> = self
            .rows
            .iter()
            .map(|(&k, row)| {
                let key = match self.by {
                    By::Status => k.to_string(),
                    _ => String::from_utf8_lossy(&[(k >> 8) as u8, k as u8]).into_owned(),
                };
                (key, *row)
            })
            .chain(
                self.names
                    .iter()
                    .map(|(k, row)| (String::from_utf8_lossy(k).into_owned(), *row)),
            )
            .collect();
        rows.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then_with(|| a.0.cmp(&b.0)));
        rows
    }
}

/// Adds another reader's frontends to `mine`; returns the requests of
/// frontends past [`MAX_FRONTENDS`]. The first table is moved in, not copied.
fn merge_frontends(
    mine: &mut FxHashMap<Box<[u8]>, Row>,
    mut theirs: FxHashMap<Box<[u8]>, Row>,
) -> u64 {
    if mine.is_empty() {
        std::mem::swap(mine, &mut theirs);
    }
    let mut overflow = 0;
    for (k, v) in theirs {
        if let Some(m) = mine.get_mut(&k) {
            m.merge(&v);
        } else if mine.len() >= MAX_FRONTENDS {
            overflow += v.requests;
        } else {
            mine.insert(k, v);
        }
    }
    overflow
}

/// Adds another summary's URLs or clients to `mine` (floors `floor` and
/// `theirs_floor`): a key only one of them has gets the other's floor as
/// uncounted. The first table is moved in, not copied (a million clients).
fn merge_named<K: std::hash::Hash + Eq>(
    mine: &mut FxHashMap<K, Named>,
    mut theirs: FxHashMap<K, Named>,
    floor: u64,
    theirs_floor: u64,
) {
    if mine.is_empty() && floor == 0 {
        std::mem::swap(mine, &mut theirs);
        return;
    }
    if theirs_floor > 0 {
        for (k, n) in mine.iter_mut() {
            if !theirs.contains_key(k) {
                n.uncounted += theirs_floor;
            }
        }
    }
    for (k, mut v) in theirs {
        match mine.get_mut(&k) {
            Some(m) => m.merge(&v),
            None => {
                v.uncounted += floor;
                mine.insert(k, v);
            }
        }
    }
}

/// `10.0.0.1` as a number, when written as the number writes back: four
/// decimal parts, no leading zero (`010.0.0.1` stays a name).
fn ipv4(b: &[u8]) -> Option<u32> {
    let mut parts = b.split(|&c| c == b'.');
    let mut ip = 0u32;
    for _ in 0..4 {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
            return None;
        }
        let v = crate::bytes::digits(p)?;
        ip = ip << 8 | u32::try_from(v).ok().filter(|&v| v <= 255)?;
    }
    parts.next().is_none().then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(mode: Mode, status: i32, term: &'static [u8]) -> Request<'static> {
        Request {
            status,
            termination: term,
            bytes: 10,
            ..Request::new(mode)
        }
    }

    #[test]
    fn ipv4_clients_are_packed_only_when_they_write_back_the_same() {
        for ok in ["10.0.0.1", "255.255.255.255", "0.0.0.0"] {
            let ip = ipv4(ok.as_bytes()).unwrap();
            assert_eq!(std::net::Ipv4Addr::from(ip).to_string(), ok);
        }
        for name in [
            "010.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "::1",
            "unix",
            "1..2.3",
        ] {
            assert_eq!(ipv4(name.as_bytes()), None, "{name}");
        }
        let mut a = Breakdown::new(By::Client);
        let mut b = Breakdown::new(By::Client);
        let mut r = Request::new(Mode::Http);
        r.timers = [1, 0, 0, 5, 10, -1];
        for c in [&b"10.0.0.2"[..], b"10.0.0.10", b"::1"] {
            r.set_client(c);
            a.add(&r);
        }
        b.add(&r);
        r.set_client(b"10.0.0.2");
        b.add(&r);
        a.merge(b);
        a.sort = Sort::Key;
        let (rows, n) = a.named_rows();
        let keys: Vec<(&str, u64)> = rows.iter().map(|(k, v)| (k.as_str(), v.requests)).collect();
        assert_eq!(n, 3);
        assert_eq!(keys, [("10.0.0.10", 1), ("10.0.0.2", 2), ("::1", 2)]);
    }

    #[test]
    fn keys_as_halog_names_them_and_merged_across_workers() {
        let mut a = Breakdown::new(By::Termination);
        let mut b = Breakdown::new(By::Termination);
        a.add(&req(Mode::Http, 200, b"----"));
        a.add(&req(Mode::Http, 503, b"SC--"));
        b.add(&req(Mode::Tcp, -1, b"CD"));
        b.add(&req(Mode::Http, 200, b"--NI"));
        b.add(&req(Mode::Http, 200, b""));
        a.merge(b);
        let rows = a.rows();
        assert_eq!(rows[0].0, "--");
        assert_eq!(rows[0].1.requests, 2);
        let sc = rows.iter().find(|(k, _)| k == "SC").unwrap().1;
        assert_eq!((sc.requests, sc.errors, sc.bytes), (1, 1, 10));
        assert!(rows.iter().any(|(k, _)| k == "CD"));
        assert_eq!(a.without, 1);

        let mut c = Breakdown::new(By::Cookie);
        c.add(&req(Mode::Http, 200, b"--NI"));
        c.add(&req(Mode::Tcp, -1, b"CD"));
        assert_eq!(c.rows()[0].0, "NI");
        assert_eq!(c.without, 1);

        let mut s = Breakdown::new(By::Status);
        s.add(&req(Mode::Http, -1, b"CR--"));
        s.add(&req(Mode::Tcp, -1, b"CD"));
        assert_eq!((s.rows()[0].0.as_str(), s.without), ("-1", 1));
    }

    /// A log of 20,000 clients through a table of about 1,000: cold ones (IPv4,
    /// one or two requests), warm ones (names, 12 requests each) and two
    /// hot ones, one of which first comes when the table is long full.
    fn crowded_log() -> Vec<String> {
        let mut lines = Vec::new();
        let mut x: u64 = 7;
        for i in 0..24_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lines.push(
                std::net::Ipv4Addr::from(0x0a00_0000 + (x >> 40) as u32 % 20_000).to_string(),
            );
            if i % 60 == 0 {
                lines.push("hot-early".into());
            }
            if i >= 12_000 && i % 50 == 0 {
                lines.push("hot-late".into());
            }
            if i % 500 < 12 {
                lines.push(format!("warm-{}", i / 500));
            }
        }
        lines
    }

    fn add_client(b: &mut Breakdown, c: &str) {
        let mut r = Request::new(Mode::Http);
        r.timers = [1, 0, 0, 5, 10, -1];
        r.set_client(c.as_bytes());
        b.add(&r);
    }

    /// What the summary promises: every row's true count is between its
    /// requests and its estimate, a key in no row had at most the floor,
    /// the requests in rows and in `overflow` add up to the log's.
    fn check_summary(b: &Breakdown, lines: &[String]) -> Vec<(String, Named)> {
        let mut truth: std::collections::HashMap<&str, u64> = Default::default();
        for l in lines {
            *truth.entry(l.as_str()).or_default() += 1;
        }
        let mut all = b.clone();
        all.top = 0;
        let (rows, n) = all.named_rows();
        assert!(b.bytes <= b.max_bytes, "{} bytes kept", b.bytes);
        assert_eq!(n, b.named.len() + b.ipv4.len());
        assert!(b.floor > 0, "the table filled up");
        let counted: u64 = rows.iter().map(|(_, r)| r.requests).sum();
        assert_eq!(counted + b.overflow, lines.len() as u64);
        for (k, r) in &rows {
            let t = truth[k.as_str()];
            assert!(r.requests <= t && t <= r.estimate(), "{k}: {r:?}, true {t}");
        }
        for (k, t) in &truth {
            if *t > b.floor {
                assert!(
                    rows.iter().any(|(r, _)| r == k),
                    "{k} ({t} requests) lost, floor {}",
                    b.floor
                );
            }
        }
        rows
    }

    #[test]
    fn the_heaviest_keys_survive_a_full_table() {
        let lines = crowded_log();
        let mut b = Breakdown::new(By::Client);
        b.max_bytes = 1_000 * cost::<u32>(0);
        for l in &lines {
            add_client(&mut b, l);
            assert!(b.bytes <= b.max_bytes);
            assert!(b.named.len() + b.ipv4.len() <= 1_000);
        }
        let rows = check_summary(&b, &lines);
        assert_eq!(rows[0].0, "hot-early");
        assert_eq!(
            (rows[0].1.requests, rows[0].1.uncounted),
            (400, 0),
            "kept from its first request"
        );
        assert_eq!(rows[1].0, "hot-late");
        assert_eq!(rows[1].1.requests, 240);
        // Kept by the guarantee, not by luck: more requests than the floor
        // (what a dropped key had at most).
        assert!(b.floor < 240, "floor {}", b.floor);
    }

    #[test]
    fn summaries_merge_across_workers() {
        let lines = crowded_log();
        let (mut a, mut b) = (Breakdown::new(By::Client), Breakdown::new(By::Client));
        a.max_bytes = 500 * cost::<u32>(0);
        b.max_bytes = 500 * cost::<u32>(0);
        // Workers take chunks of lines in turn.
        for (i, chunk) in lines.chunks(1_000).enumerate() {
            let w = if i % 2 == 0 { &mut a } else { &mut b };
            for l in chunk {
                add_client(w, l);
            }
        }
        a.max_bytes = 1_000 * cost::<u32>(0);
        a.merge(b);
        let rows = check_summary(&a, &lines);
        assert_eq!(
            (rows[0].0.as_str(), rows[1].0.as_str()),
            ("hot-early", "hot-late")
        );
        assert!(a.named.len() + a.ipv4.len() <= 1_000);
        assert!(a.floor < 240, "floor {}", a.floor);
    }

    #[test]
    fn below_the_bound_nothing_is_approximate() {
        let lines = crowded_log();
        let mut b = Breakdown::new(By::Client);
        for l in &lines {
            add_client(&mut b, l);
        }
        b.top = 0;
        let (rows, _) = b.named_rows();
        assert_eq!((b.floor, b.overflow), (0, 0));
        assert!(rows.iter().all(|(_, r)| r.uncounted == 0));
        assert_eq!(
            rows.iter().map(|(_, r)| r.requests).sum::<u64>(),
            lines.len() as u64
        );
    }
}
