//! `analyze`'s request filters: halog's input filters (`-H`, `-e`/`-E`,
//! `-rt`/`-RT`, `-Q`/`-QS`, `-tcn`/`-TCN`, `-hs`/`-HS`, `-hdr-match`, `-v`)
//! choose which request lines every request report counts (servers,
//! `--by`, `--percentiles`, accept holes, `--db`). Health lines are never
//! filtered: a server's state does not depend on which requests are read.
//!
//! As in halog, the conditions given must all hold, `--invert` (`-v`)
//! negates their conjunction, and a line that lacks a field a condition
//! reads is not selected whether inverted or not (halog skips it as a
//! truncated line): it is counted ([`Select::missing`]). Where halog reads
//! fields by position, so that a TCP line's byte count passes for its
//! status, the fields here are read by meaning: a TCP line has no status
//! (so `--errors` and `--status` do not select it) and no Tr, and its
//! queues and termination state are its own.

use crate::haproxy::{Mode, Request, Timer};

/// halog's `-hs`/`-HS` range: `[min][:[max]]`, one code without `:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    pub low: i32,
    pub high: i32,
}

impl StatusRange {
    /// `500`, `500:599`, `:399`, `400:`. Missing ends are 0 and 65535, as
    /// in halog.
    pub fn parse(s: &str) -> Result<StatusRange, String> {
        let num = |t: &str, default: i32| -> Result<i32, String> {
            if t.is_empty() {
                return Ok(default);
            }
            t.parse::<u16>()
                .map(i32::from)
                .map_err(|_| format!("{t:?} is not a status code (0-65535)"))
        };
        let (low, high) = match s.split_once(':') {
            Some((l, h)) => (num(l, 0)?, num(h, 65535)?),
            None if s.is_empty() => return Err("a status or a range MIN:MAX is needed".into()),
            None => {
                let n = num(s, 0)?;
                (n, n)
            }
        };
        if low > high {
            return Err(format!("{low} is above {high}"));
        }
        Ok(StatusRange { low, high })
    }
}

/// halog's `-hdr-match BLOCK:FIELD=VALUE`: the FIELDth header (from 1) of
/// the BLOCKth capture block (`{...}`, from 1: request headers first,
/// then response headers) equals VALUE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderMatch {
    pub block: usize,
    pub field: usize,
    pub value: Vec<u8>,
}

impl HeaderMatch {
    pub fn parse(s: &str) -> Result<HeaderMatch, String> {
        let shape = "BLOCK:FIELD=VALUE, e.g. 1:2=example.com";
        let (place, value) = s
            .split_once('=')
            .ok_or_else(|| format!("no '=' in {s:?}: {shape}"))?;
        let (block, field) = place
            .split_once(':')
            .ok_or_else(|| format!("no ':' in {s:?}: {shape}"))?;
        let n = |t: &str, what: &str| match t.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("{what} {t:?} must be a number from 1: {shape}")),
        };
        Ok(HeaderMatch {
            block: n(block, "block")?,
            field: n(field, "field")?,
            value: value.as_bytes().to_vec(),
        })
    }

    /// The header the line captured there; `None` when the line has no
    /// such block or field.
    fn captured<'a>(&self, r: &Request<'a>) -> Option<&'a [u8]> {
        let h = r.http()?;
        let block = match self.block {
            1 => h.req_headers?,
            2 => h.res_headers?,
            _ => return None,
        };
        block.split(|&b| b == b'|').nth(self.field - 1)
    }
}

/// Which queue `--queued` asks for (halog `-Q`, `-QS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    /// Waited in the server's or the backend's queue.
    Any,
    /// Waited in the server's queue.
    Server,
}

/// [`Select::status_gate`]: the verdict of a selection that reads the
/// status only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusGate {
    errors: Option<bool>,
    status: Option<(StatusRange, bool)>,
    invert: bool,
}

impl StatusGate {
    /// Whether an HTTP line with this status is selected.
    #[inline(always)]
    pub fn admits(&self, s: i32) -> bool {
        StatusGate::holds(self.errors, self.status, s) != self.invert
    }

    #[inline(always)]
    fn holds(errors: Option<bool>, status: Option<(StatusRange, bool)>, s: i32) -> bool {
        let mut ok = true;
        if let Some(want) = errors {
            ok &= (s < 0 || (500..=599).contains(&s)) == want;
        }
        if let Some((range, within)) = status {
            ok &= (range.low..=range.high).contains(&s) == within;
        }
        ok
    }
}

/// The conditions a request line must meet to be counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Select {
    /// `-H`: HTTP lines only.
    pub http_only: bool,
    /// `-e` (`Some(true)`): status -1 or 5xx; `-E` (`Some(false)`): not.
    pub errors: Option<bool>,
    /// `-rt T` (`Some((T, true))`): Tr >= T; `-RT T`: Tr < T (a `-1` Tr
    /// is below any T, as in halog).
    pub tr: Option<(i64, bool)>,
    pub queued: Option<Queued>,
    /// `-tcn XY` (`Some((XY, true))`), `-TCN XY`: the termination state
    /// begins (does not begin) with these two letters.
    pub termination: Option<([u8; 2], bool)>,
    /// `-hs` (`true`) / `-HS` (`false`).
    pub status: Option<(StatusRange, bool)>,
    pub header: Option<HeaderMatch>,
    /// `-v`.
    pub invert: bool,
    /// Lines selected and not selected, and lines without a field a
    /// condition reads (not selected either).
    pub selected: u64,
    pub rejected: u64,
    pub missing: u64,
}

impl Select {
    /// No condition at all: every line is selected.
    pub fn is_empty(&self) -> bool {
        !self.http_only
            && self.errors.is_none()
            && self.tr.is_none()
            && self.queued.is_none()
            && self.termination.is_none()
            && self.status.is_none()
            && self.header.is_none()
            && !self.invert
    }

    /// `Some(true)`: every condition holds (or, inverted, not all);
    /// `None`: a field a condition reads is not in the line.
    fn test(&self, r: &Request) -> Option<bool> {
        let http = r.mode != Mode::Tcp;
        let mut ok = !self.http_only || http;
        if let Some((t, above)) = self.tr {
            if !http {
                return None;
            }
            ok &= (r.timer(Timer::Tr) >= t) == above;
        }
        if self.errors.is_some() || self.status.is_some() {
            if !http {
                return None;
            }
            ok &= self.status_holds(r.status);
        }
        match self.queued {
            Some(Queued::Any) => ok &= r.srv_queue > 0 || r.backend_queue > 0,
            Some(Queued::Server) => ok &= r.srv_queue > 0,
            None => {}
        }
        if let Some((code, equal)) = self.termination {
            let t = r.termination.get(..2)?;
            ok &= (t == code) == equal;
        }
        if let Some(h) = &self.header {
            ok &= h.captured(r)? == &h.value[..];
        }
        Some(ok != self.invert)
    }

    /// `-e`/`-E` and `-hs`/`-HS` on a status.
    #[inline(always)]
    fn status_holds(&self, s: i32) -> bool {
        StatusGate::holds(self.errors, self.status, s)
    }

    /// When the status alone decides an HTTP line's verdict (only
    /// `-e`/`-E`, `-hs`/`-HS`, `-H` and `-v` are asked): that verdict, for
    /// the parser to stop at the status of a line turned down
    /// (`request::parse_gated`). The line is then turned down here too,
    /// from the same status, and counted as rejected.
    #[inline(always)]
    pub fn status_gate(&self) -> Option<StatusGate> {
        let decides = (self.errors.is_some() || self.status.is_some())
            && self.tr.is_none()
            && self.queued.is_none()
            && self.termination.is_none()
            && self.header.is_none();
        decides.then_some(StatusGate {
            errors: self.errors,
            status: self.status,
            invert: self.invert,
        })
    }

    /// Whether `r` is counted; tallies the verdict.
    #[inline]
    pub fn admits(&mut self, r: &Request) -> bool {
        match self.test(r) {
            Some(true) => {
                self.selected += 1;
                true
            }
            Some(false) => {
                self.rejected += 1;
                false
            }
            None => {
                self.missing += 1;
                false
            }
        }
    }

    pub fn merge(&mut self, o: &Select) {
        self.selected += o.selected;
        self.rejected += o.rejected;
        self.missing += o.missing;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: i32, tr: i64, term: &'static [u8]) -> Request<'static> {
        let mut r = Request::new(Mode::Http);
        r.status = status;
        r.timers = [1, 0, 1, tr, 10, -1];
        r.termination = term;
        r
    }

    #[test]
    fn conditions_hold_together_and_invert_as_one() {
        let mut s = Select {
            errors: Some(true),
            termination: Some((*b"SH", true)),
            ..Default::default()
        };
        assert!(s.admits(&http(503, 5, b"SH--")));
        assert!(!s.admits(&http(503, 5, b"----")));
        assert!(!s.admits(&http(200, 5, b"SH--")));
        s.invert = true;
        assert!(!s.admits(&http(503, 5, b"SH--")));
        assert!(s.admits(&http(200, 5, b"SH--")));
        assert_eq!((s.selected, s.rejected, s.missing), (2, 3, 0));
    }

    #[test]
    fn a_line_without_the_field_is_never_selected_even_inverted() {
        let tcp = Request::new(Mode::Tcp);
        for invert in [false, true] {
            let mut s = Select {
                tr: Some((100, true)),
                invert,
                ..Default::default()
            };
            assert!(!s.admits(&tcp));
            assert_eq!(s.missing, 1);
        }
        // A -1 Tr is below any threshold, as halog compares it.
        let mut s = Select {
            tr: Some((100, false)),
            ..Default::default()
        };
        assert!(s.admits(&http(200, -1, b"----")));
    }

    #[test]
    fn header_match_reads_the_block_and_field_named() {
        let mut r = http(200, 5, b"----");
        r.tail = b"{example.com|curl/8} {text/html} \"GET / HTTP/1.1\"";
        let m = |s: &str| Select {
            header: Some(HeaderMatch::parse(s).unwrap()),
            ..Default::default()
        };
        assert!(m("1:1=example.com").admits(&r));
        assert!(m("1:2=curl/8").admits(&r));
        assert!(!m("1:2=wget").admits(&r));
        assert!(m("2:1=text/html").admits(&r));
        // No third field, no second block: not selected, counted.
        let mut s = m("1:3=x");
        assert!(!s.admits(&r));
        r.tail = b"{example.com} \"GET / HTTP/1.1\"";
        assert!(!s.admits(&r));
        let mut inv = m("2:1=x");
        inv.invert = true;
        assert!(!inv.admits(&r));
        assert_eq!((s.missing, inv.missing), (2, 1));
    }

    /// `--errors`/`--status` let the parser stop at the status of a line
    /// they turn down: every such selection gives each line the verdict
    /// of the line read whole, and a line it keeps is read whole.
    #[test]
    fn a_line_stopped_at_its_status_gets_the_verdict_of_the_whole_line() {
        use crate::haproxy::request::{parse, parse_gated};
        let lines = [
            "10.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s1 0/0/1/2/3 200 123 - - ---- 1/1/0/0/0 0/0 \"GET /p0 HTTP/1.1\"",
            "10.0.0.1:1 [24/Nov/2026:16:21:15.231] fe be/s1 0/0/-1/-1/3003 503 217 - - SC-- 1/1/0/0/3 0/0 \"GET / HTTP/1.1\"",
            "10.0.0.1:1 [24/Nov/2026:16:21:15.232] fe be/s2 0/0/1/-1/+5 -1 +543 - - CD-- 1/1/1/1/+14 2/1 {a|b} \"GET /x HTTP/2.0\"",
            "10.0.0.1:1 [24/Nov/2026:16:21:15.233] fe~ be/s2 0/0/0/0/0 404 5 - - ---- 1/1/0/0/0 0/0 \"GET /x HTTP/1.1\" 0/0000000000000000/0/0/0 -/TLSv1.3/TLS_AES_256_GCM_SHA384",
            "10.0.0.1:1 [24/Nov/2026:16:21:15.234] fe fe/<NOSRV> -1/-1/-1/-1/0 400 187 - - PR-- 1/1/0/0/0 0/0 \"<BADREQ>\"",
            "10.0.0.1:1 [24/Nov/2026:16:21:15.235] fe_tcp be_tcp/t1 1/0/1 120 CD 1/1/0/0/0 0/0",
        ];
        let range = |s| Some((StatusRange::parse(s).unwrap(), true));
        let outside = |s| Some((StatusRange::parse(s).unwrap(), false));
        let selections = [
            Select {
                errors: Some(true),
                ..Default::default()
            },
            Select {
                errors: Some(false),
                ..Default::default()
            },
            Select {
                errors: Some(true),
                invert: true,
                ..Default::default()
            },
            Select {
                status: range("400:499"),
                ..Default::default()
            },
            Select {
                status: outside("200:299"),
                http_only: true,
                ..Default::default()
            },
            Select {
                status: range("500:"),
                invert: true,
                ..Default::default()
            },
            Select {
                errors: Some(false),
                status: range("300:"),
                ..Default::default()
            },
        ];
        for sel in selections {
            let (mut whole, mut gated) = (sel.clone(), sel.clone());
            let gate = sel.status_gate().expect("the status alone decides");
            for line in lines {
                let all = parse(line.as_bytes()).unwrap();
                let part = parse_gated(line.as_bytes(), |s| gate.admits(s)).unwrap();
                let kept = whole.admits(&all);
                assert_eq!(gated.admits(&part), kept, "{sel:?}: {line}");
                if kept {
                    assert_eq!(part, all, "a line kept is read whole: {line}");
                } else if part != all {
                    // Stopped at the status: what came before it is there.
                    assert_eq!(
                        (
                            part.accept,
                            part.backend,
                            part.server,
                            part.timers,
                            part.status
                        ),
                        (all.accept, all.backend, all.server, all.timers, all.status)
                    );
                    assert_eq!((part.bytes, part.termination), (0, &b""[..]));
                }
            }
            assert_eq!(
                (gated.selected, gated.rejected, gated.missing),
                (whole.selected, whole.rejected, whole.missing),
                "{sel:?}"
            );
        }
        // Any other condition reads fields after the status: no gate.
        for other in [
            Select {
                errors: Some(true),
                tr: Some((10, true)),
                ..Default::default()
            },
            Select {
                errors: Some(true),
                queued: Some(Queued::Any),
                ..Default::default()
            },
            Select {
                status: range("500"),
                termination: Some((*b"SC", true)),
                ..Default::default()
            },
            Select {
                http_only: true,
                ..Default::default()
            },
        ] {
            assert!(other.status_gate().is_none(), "{other:?}");
        }
    }

    #[test]
    fn ranges_and_matches_parse_as_halog_reads_them() {
        let r = |s| StatusRange::parse(s).unwrap();
        assert_eq!(
            r("503"),
            StatusRange {
                low: 503,
                high: 503
            }
        );
        assert_eq!(
            r("500:"),
            StatusRange {
                low: 500,
                high: 65535
            }
        );
        assert_eq!(r(":399"), StatusRange { low: 0, high: 399 });
        assert!(StatusRange::parse("5xx").is_err());
        assert!(StatusRange::parse("599:500").is_err());
        assert!(HeaderMatch::parse("1:2").is_err());
        assert!(HeaderMatch::parse("0:1=x").is_err());
        assert!(HeaderMatch::parse("x=y").is_err());
        assert_eq!(HeaderMatch::parse("2:1=a=b").unwrap().value, b"a=b");
    }
}
