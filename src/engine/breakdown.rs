//! `analyze --by`: requests counted by one of the keys halog counts by
//! (`-st` status codes, `-tc` termination codes, `-cc` cookie codes)
//! instead of by server. Each worker counts its own lines; the counts merge
//! exactly, like every other aggregate.
//!
//! Where halog's rules differ (it reads fields by position, so a TCP line's
//! bytes count as its "status"): only HTTP lines have a status or cookie
//! codes here; a TCP line's termination state is its two letters.

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
}

impl By {
    /// The key's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            By::Status => "status",
            By::Termination => "termination",
            By::Cookie => "cookie",
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
        self.bytes += o.bytes;
    }
}

/// Requests counted by one key. Keys are small (a status code, two
/// letters): packed into an integer, no allocation per line.
#[derive(Clone, Debug)]
pub struct Breakdown {
    pub by: By,
    rows: FxHashMap<i64, Row>,
    /// Lines without the key (a TCP line's status, a format without
    /// `%ST` or `%tsc`): counted, not keyed.
    pub without: u64,
}

impl Breakdown {
    pub fn new(by: By) -> Breakdown {
        Breakdown {
            by,
            rows: FxHashMap::default(),
            without: 0,
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
        }
    }

    #[inline]
    pub fn add(&mut self, r: &Request) {
        let Some(k) = self.key(r) else {
            self.without += 1;
            return;
        };
        let row = self.rows.entry(k).or_default();
        row.requests += 1;
        row.errors += u64::from(r.is_error());
        row.bytes += r.bytes;
    }

    pub fn merge(&mut self, o: &Breakdown) {
        for (k, row) in &o.rows {
            self.rows.entry(*k).or_default().merge(row);
        }
        self.without += o.without;
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
            .collect();
        rows.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then_with(|| a.0.cmp(&b.0)));
        rows
    }
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
    fn keys_as_halog_names_them_and_merged_across_workers() {
        let mut a = Breakdown::new(By::Termination);
        let mut b = Breakdown::new(By::Termination);
        a.add(&req(Mode::Http, 200, b"----"));
        a.add(&req(Mode::Http, 503, b"SC--"));
        b.add(&req(Mode::Tcp, -1, b"CD"));
        b.add(&req(Mode::Http, 200, b"--NI"));
        b.add(&req(Mode::Http, 200, b""));
        a.merge(&b);
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
}
