//! Syslog layer: one frame (a line or a datagram) -> timestamp, host,
//! program, pid and the HAProxy message.
//!
//! Every form HAProxy and rsyslog really send is recognised (see
//! `../shared/HAPROXY-NOTES.md` and the fixtures): RFC 3164 with or without a
//! hostname, RFC 5424 (including rsyslog's two spaces before the message),
//! RFC 3339 timestamps (`RSYSLOG_ForwardFormat`, `RSYSLOG_FileFormat`,
//! journalctl `short-iso`), rsyslog's PRI-less file format, HAProxy's `short`
//! (`<PRI>` only) and `raw` (message only) formats.
//!
//! The common shapes take a hand-written fast path: it runs once per line and
//! is most of what `analyze` spends outside the request parser. Anything it
//! does not recognise with certainty (structured data, odd tags) goes to
//! `syslog_loose`, the parser Vector uses; a test checks both agree on the
//! shapes they share.

use crate::bytes::find;
use crate::time::{self, Millis, NoYear};

/// When the frame says it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    None,
    Full(Millis),
    /// RFC 3164: month and day, no year; see [`time::YearResolver`].
    NoYear(NoYear),
    /// A whole date in the writer's local time, zone unknown
    /// (`journalctl -o short-full`): put on UTC by `--tz`.
    Local(Millis),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub pri: Option<u8>,
    pub stamp: Stamp,
    pub host: Option<&'a [u8]>,
    pub program: Option<&'a [u8]>,
    pub pid: Option<u32>,
    pub msg: &'a [u8],
}

impl<'a> Header<'a> {
    fn bare(pri: Option<u8>, msg: &'a [u8]) -> Self {
        Header {
            pri,
            stamp: Stamp::None,
            host: None,
            program: None,
            pid: None,
            msg,
        }
    }

    /// Syslog severity (0 emerg .. 7 debug) from the PRI, when there was one.
    pub fn severity(&self) -> Option<u8> {
        self.pri.map(|p| p & 7)
    }
}

fn trim_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | b'\0' | b' '] = b {
        b = rest;
    }
    b
}

fn skip_spaces(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b' ').count();
    &b[n..]
}

/// Splits at the first space: (token, rest after the space).
fn token(b: &[u8]) -> (&[u8], &[u8]) {
    match find(b, b' ') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[b.len()..]),
    }
}

fn parse_pri(b: &[u8]) -> Option<(u8, &[u8])> {
    if b.first() != Some(&b'<') {
        return None;
    }
    let end = b.iter().take(5).position(|&c| c == b'>')?;
    if end < 2 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in &b[1..end] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    (v <= 191).then_some((v as u8, &b[end + 1..]))
}

/// A syslog tag, `haproxy[4061]:` or `haproxy:`. Returns program and pid.
#[inline]
fn parse_tag(t: &[u8]) -> Option<(&[u8], Option<u32>)> {
    let t = t.strip_suffix(b":")?;
    if let Some(open) = find(t, b'[') {
        let pid = crate::bytes::digits(t[open + 1..].strip_suffix(b"]")?)?;
        let pid = u32::try_from(pid).ok()?;
        (open > 0).then_some((&t[..open], Some(pid)))
    } else {
        (!t.is_empty() && t.len() <= 48 && !t.contains(&b'/')).then_some((t, None))
    }
}

/// A header that names no host, when `tag` is one (`haproxy[4061]:`).
#[inline]
fn tag_only<'a>(pri: Option<u8>, stamp: Stamp, tag: &'a [u8], msg: &'a [u8]) -> Option<Header<'a>> {
    let (program, pid) = parse_tag(tag)?;
    Some(Header {
        pri,
        stamp,
        host: None,
        program: Some(program),
        pid,
        msg,
    })
}

/// After the timestamp of a BSD-style line: `[host ]tag: msg`.
fn host_tag_msg<'a>(
    pri: Option<u8>,
    stamp: Stamp,
    rest: &'a [u8],
    host_required: bool,
) -> Option<Header<'a>> {
    let rest = skip_spaces(rest);
    let (first, after_first) = token(rest);
    // A tag ends with `:`; a host (most lines' first word) does not.
    if !host_required && first.last() == Some(&b':') {
        if let Some(h) = tag_only(pri, stamp, first, skip_spaces(after_first)) {
            return Some(h);
        }
    }
    let (second, after_second) = token(after_first);
    let (program, pid) = parse_tag(second)?;
    Some(Header {
        pri,
        stamp,
        host: Some(first),
        program: Some(program),
        pid,
        msg: skip_spaces(after_second),
    })
}

/// A dated header with neither host nor tag, read again with the
/// message's first word as its host: `TIME host msg`, what a file template
/// without the tag writes (rsyslog's `%TIMESTAMP% %HOSTNAME% %msg%`). Read
/// first, such a line looks like HAProxy's own `iso` or `timed` formats
/// (`TIME msg`), which have no host, so the engine asks this only
/// of a message it could not read. `None` when the header has a host or a
/// tag, no date, or the first word cannot be a host name.
pub fn host_in_message<'a>(h: &Header<'a>) -> Option<Header<'a>> {
    if h.host.is_some() || h.program.is_some() || h.stamp == Stamp::None {
        return None;
    }
    let sp = find(h.msg, b' ')?;
    let (host, msg) = (&h.msg[..sp], skip_spaces(&h.msg[sp + 1..]));
    // Names, IPv4 and IPv6 addresses: what rsyslog's %HOSTNAME% holds.
    let hostlike = (1..=255).contains(&host.len())
        && host
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b':'));
    (hostlike && !msg.is_empty()).then_some(Header {
        host: Some(host),
        msg,
        ..*h
    })
}

fn nil(b: &[u8]) -> Option<&[u8]> {
    (b != b"-").then_some(b)
}

/// RFC 5424 after `<PRI>1 `. Only the structured-data-free form is handled
/// here (HAProxy and rsyslog send `-`); the rest goes to `syslog_loose`.
fn rfc5424(pri: Option<u8>, b: &[u8]) -> Option<Header<'_>> {
    let (ts, b) = token(b);
    let stamp = if ts == b"-" {
        Stamp::None
    } else {
        let (t, n) = time::parse_rfc3339(ts)?;
        if n != ts.len() {
            return None;
        }
        Stamp::Full(t)
    };
    let (host, b) = token(b);
    let (app, b) = token(b);
    let (procid, b) = token(b);
    let (_msgid, b) = token(b);
    let (sd, b) = token(b);
    if sd != b"-" {
        return None;
    }
    // rsyslog's RSYSLOG_SyslogProtocol23Format puts two spaces here; a UTF-8
    // BOM may open the message.
    let msg = skip_spaces(b);
    let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
    // HAProxy's `log-forward` relaying an RFC 3164 line that names no host
    // (HAProxy's default) takes its tag for the host and writes no
    // APP-NAME: `<134>1 TIME haproxy[24308]: - - - - MSG`. No host name
    // ends in `:`; it is the tag.
    if app == b"-" && host.last() == Some(&b':') {
        if let Some(h) = tag_only(pri, stamp, host, msg) {
            return Some(h);
        }
    }
    Some(Header {
        pri,
        stamp,
        host: nil(host),
        program: nil(app),
        pid: nil(procid)
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|p| p.parse().ok()),
        msg,
    })
}

fn fast(line: &[u8]) -> Option<Header<'_>> {
    let (pri, b) = match parse_pri(line) {
        Some((p, rest)) => (Some(p), rest),
        None => (None, line),
    };
    if let Some(after) = b.strip_prefix(b"1 ") {
        return rfc5424(pri, after);
    }
    if let Some((d, n)) = time::parse_rfc3164_date(b) {
        // The host may be absent (HAProxy's default): only a tag tells.
        return host_tag_msg(pri, Stamp::NoYear(d), &b[n..], false).or_else(|| {
            pri.is_some().then(|| Header {
                stamp: Stamp::NoYear(d),
                ..Header::bare(pri, skip_spaces(&b[n..]))
            })
        });
    }
    if b.first().is_some_and(u8::is_ascii_digit) {
        if let Some((t, n)) = time::parse_rfc3339(b) {
            // rsyslog's file formats and `short-iso`: `TIME host tag: msg`;
            // HAProxy's `iso` (`TIME msg`) and `timed` (`<PRI>TIME msg`)
            // formats have neither host nor tag.
            return host_tag_msg(pri, Stamp::Full(t), &b[n..], true).or_else(|| {
                (b.get(n) == Some(&b' ')).then(|| Header {
                    stamp: Stamp::Full(t),
                    ..Header::bare(pri, skip_spaces(&b[n..]))
                })
            });
        }
    }
    if let Some(h) = journal_short(pri, b) {
        return Some(h);
    }
    // HAProxy `short` (`<PRI>msg`) and `raw` (msg alone) formats.
    Some(Header::bare(pri, b))
}

/// The `journalctl -o` forms that are neither RFC 3164 nor RFC 3339, all
/// followed by `host identifier[pid]: msg`:
/// - `short-full`, `with-unit`: `Tue 2026-11-24 16:23:14 UTC` (local time,
///   the zone's abbreviation; only UTC/GMT say which zone);
/// - `short-unix`: `1795537394.123456` (seconds since the epoch);
/// - `short-monotonic`, `short-delta`: `[95537394.123456]`, `[95537394.123456
///   <    5.000000 >]` (time since boot: no date at all).
fn journal_short(pri: Option<u8>, b: &[u8]) -> Option<Header<'_>> {
    let first = *b.first()?;
    if first == b'[' && b.get(1).is_some_and(|c| c.is_ascii_digit() || *c == b' ') {
        let close = memchr::memchr(b']', b.get(..64)?)?;
        let inside = &b[1..close];
        let ok = inside
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b' ' | b'.' | b'<' | b'>'));
        return ok.then(|| host_tag_msg(pri, Stamp::None, &b[close + 1..], true))?;
    }
    if first.is_ascii_digit() {
        // Ten digits, a dot, six digits: seconds and microseconds.
        let secs = crate::bytes::digits(b.get(..10)?)? as i64;
        if b.get(10) != Some(&b'.') {
            return None;
        }
        let (frac, n) = (
            &b[11..],
            b[11..].iter().take_while(|c| c.is_ascii_digit()).count(),
        );
        if n == 0 || frac.get(n) != Some(&b' ') {
            return None;
        }
        let ms = frac[..n.min(3)]
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(3)
            .fold(0i64, |v, c| v * 10 + (c - b'0') as i64);
        return host_tag_msg(pri, Stamp::Full(secs * 1000 + ms), &b[11 + n..], true);
    }
    // `Tue 2026-11-24 16:23:14 UTC `
    if b.len() > 24 && b[3] == b' ' && b[0].is_ascii_uppercase() && b[8] == b'-' {
        let (t, n) = time::parse_rfc3339(&b[4..23])?;
        if n != 19 || b[23] != b' ' {
            return None;
        }
        let rest = &b[24..];
        let zone_len = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-'))
            .count();
        let stamp = match &rest[..zone_len] {
            b"UTC" | b"GMT" => Stamp::Full(t),
            _ => Stamp::Local(t),
        };
        return host_tag_msg(pri, stamp, &rest[zone_len..], true);
    }
    None
}

fn from_loose<'a>(line: &'a [u8], s: &'a str) -> Option<Header<'a>> {
    let m = syslog_loose::parse_message_with_year_exact(s, |_| 1970, syslog_loose::Variant::Either)
        .ok()?;
    let stamp = match m.timestamp {
        Some(ts) if matches!(m.protocol, syslog_loose::Protocol::RFC5424(_)) => {
            Stamp::Full(ts.timestamp_millis())
        }
        Some(ts) => {
            // Year-less RFC 3164: the callback gave 1970; keep month/day only.
            use chrono::{Datelike, Timelike};
            let ts = ts.naive_utc();
            Stamp::NoYear(NoYear {
                month: ts.month(),
                day: ts.day(),
                ms_of_day: ts.num_seconds_from_midnight() as i64 * 1000
                    + ts.nanosecond() as i64 / 1_000_000,
            })
        }
        None => Stamp::None,
    };
    // Slices returned by syslog_loose point into `s`, which is `line`.
    let sub = |x: &str| -> &'a [u8] {
        let off = x.as_ptr() as usize - s.as_ptr() as usize;
        &line[off..off + x.len()]
    };
    Some(Header {
        pri: parse_pri(line).map(|p| p.0),
        stamp,
        host: m.hostname.map(sub),
        program: m.appname.map(sub),
        pid: match m.procid {
            Some(syslog_loose::ProcId::PID(p)) => Some(p as u32),
            _ => None,
        },
        msg: sub(m.msg),
    })
}

/// Parses one frame. Never fails: what is not a syslog header is a bare
/// message (HAProxy's `raw` format, stderr lines).
#[inline]
pub fn parse(line: &[u8]) -> Header<'_> {
    read(line).0
}

/// [`parse`], and whether the hand-written fast path read the header (its
/// reading of a header depends on the header's bytes alone).
#[inline]
fn read(line: &[u8]) -> (Header<'_>, bool) {
    let line = strip_octet_count(trim_end(line));
    if let Some(h) = fast(line) {
        // A bare message that still opens like a header (e.g. structured data
        // or an unusual tag) is worth a second opinion.
        let bare = h.stamp == Stamp::None && h.program.is_none();
        if !bare || !looks_like_header(h.msg) {
            return (h, true);
        }
    }
    (slow(line), false)
}

#[cold]
fn slow(line: &[u8]) -> Header<'_> {
    if let Ok(s) = std::str::from_utf8(line) {
        if let Some(h) = from_loose(line, s) {
            if h.program.is_some() || h.stamp != Stamp::None {
                return h;
            }
        }
    }
    let (pri, b) = match parse_pri(line) {
        Some((p, rest)) => (Some(p), rest),
        None => (None, line),
    };
    Header::bare(pri, b)
}

/// The most repetitions [`repeated`] reads: a run of 100,000 identical
/// messages is already more than a HAProxy log with any time or port in it
/// ever repeats, and replaying a larger count would let one line of a
/// hostile file cost seconds.
pub const MAX_REPEATS: u64 = 100_000;

/// rsyslog's `$RepeatedMsgReduction on` (in Ubuntu's default rsyslog.conf)
/// writes a run of identical messages (same host, program, pid and text) as
/// the first, then `message repeated N times: [ MSG]` (the message as
/// rsyslog holds it, with its leading space, cut at 800 bytes): the
/// repetitions (N, at most [`MAX_REPEATS`]) and the message. The old
/// `last message repeated N times` (no message) is not this: nothing says
/// which message, as another line may come between.
pub fn repeated(msg: &[u8]) -> Option<(u64, &[u8])> {
    let rest = msg.strip_prefix(b"message repeated ")?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits > 6 {
        return None;
    }
    let n = crate::bytes::digits(&rest[..digits])?;
    let inner = rest[digits..]
        .strip_prefix(b" times: [")?
        .strip_suffix(b"]")?;
    let inner = inner.strip_prefix(b" ").unwrap_or(inner);
    // Never nested (and a nested one would be read recursively).
    if inner.starts_with(b"message repeated ") {
        return None;
    }
    ((1..=MAX_REPEATS).contains(&n) && !inner.is_empty()).then_some((n, inner))
}

/// Which daemon dropped messages to its rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limiter {
    Journald,
    Rsyslog,
}

impl Limiter {
    pub fn name(self) -> &'static str {
        match self {
            Limiter::Journald => "journald",
            Limiter::Rsyslog => "rsyslog",
        }
    }
}

/// A logging daemon's own notice that it dropped messages to its rate
/// limit: the daemon, what it names (a unit, an input and process) and how
/// many. The journal (`systemd-journald`; `systemd-journal` in older
/// systemd) writes `Suppressed N messages from haproxy.service` (its
/// source: `"Suppressed %i messages from %s"` with the unit), which
/// `journalctl -u haproxy` shows beside HAProxy's own lines; rsyslog writes `imuxsock[pid:
/// 8, name: /usr/sbin/haproxy]: N messages lost due to rate-limiting (200
/// allowed within 5 seconds)` (`"%s: %u messages lost due to
/// rate-limiting"`) and, in 8.x before that, `imuxsock lost N messages
/// from pid 8 due to rate-limiting`. Only under the daemon's own tag: a
/// line that quotes a notice is not one.
pub fn rate_limited<'a>(h: &Header<'a>) -> Option<(Limiter, &'a [u8], u64)> {
    let number = |b: &[u8]| {
        if b.len() > 12 {
            None
        } else {
            crate::bytes::digits(b)
        }
    };
    let program = h.program?;
    let msg = trim_end(h.msg);
    // `systemd-journald`, `systemd-journal`, and the unit under
    // `journalctl -o with-unit` (`systemd-journald.service`).
    if program.starts_with(b"systemd-journal") {
        let rest = msg.strip_prefix(b"Suppressed ")?;
        let sp = rest.iter().position(|&c| c == b' ')?;
        let n = number(&rest[..sp])?;
        let from = rest[sp..].strip_prefix(b" messages from ")?;
        return (!from.is_empty()).then_some((Limiter::Journald, from, n));
    }
    // `rsyslogd`, and `rsyslogd-2177` (an error number) in older ones.
    if !program.starts_with(b"rsyslogd") {
        return None;
    }
    if let Some(rest) = msg.strip_prefix(b"imuxsock lost ") {
        let sp = rest.iter().position(|&c| c == b' ')?;
        let n = number(&rest[..sp])?;
        let pid = rest[sp..]
            .strip_prefix(b" messages from ")?
            .strip_suffix(b" due to rate-limiting")?;
        return Some((Limiter::Rsyslog, pid, n));
    }
    const LOST: &[u8] = b" messages lost due to rate-limiting";
    let at = memchr::memmem::find(msg, LOST)?;
    let head = &msg[..at];
    let colon = head.iter().rposition(|&c| c == b':')?;
    let n = number(head[colon + 1..].strip_prefix(b" ")?)?;
    (colon > 0).then_some((Limiter::Rsyslog, &head[..colon], n))
}

/// How many headers [`Recent`] keeps: a relay's file takes turns between a
/// few load balancers.
const RECENT: usize = 4;
/// The longest header [`Recent`] keeps (`<134>Nov 24 16:21:15 lb-name
/// haproxy[12345]: ` is 38 bytes).
const HEADER_MAX: usize = 64;

/// The RFC 3164 headers of the last lines read, byte for byte: every line
/// one host logs in one second starts with the same `Nov 24 16:21:15 lb1
/// haproxy[4001]: `, and a line that starts with a header kept here is
/// read as that header and its message, not parsed again (the header is
/// most of what a line costs outside the request parser). Kept only for
/// headers the fast path read: it reads the header's bytes left to right
/// and nothing after them, so the same bytes read the same.
#[derive(Clone, Debug, Default)]
pub struct Recent {
    /// Newest first: a host's lines of this second find their header in
    /// the first slot tried.
    kept: [Kept; RECENT],
}

#[derive(Clone, Copy, Debug)]
struct Kept {
    /// The header's bytes, up to the message; `len` 0: nothing kept.
    bytes: [u8; HEADER_MAX],
    len: u8,
    pri: Option<u8>,
    stamp: Stamp,
    /// Where host and program are in `bytes`: (start, length).
    host: Option<(u8, u8)>,
    program: (u8, u8),
    pid: Option<u32>,
}

impl Default for Kept {
    fn default() -> Kept {
        Kept {
            bytes: [0; HEADER_MAX],
            len: 0,
            pri: None,
            stamp: Stamp::None,
            host: None,
            program: (0, 0),
            pid: None,
        }
    }
}

impl Kept {
    #[inline(always)]
    fn reuse<'a>(&self, line: &'a [u8]) -> Option<Header<'a>> {
        let n = self.len as usize;
        // The kept header, then a message that does not open with what the
        // header would have taken (spaces) or a line end would cut.
        if n == 0
            || line.len() <= n
            || matches!(line[n], b' ' | b'\n' | b'\r' | b'\0')
            || !crate::bytes::starts_with(line, &self.bytes[..n])
        {
            return None;
        }
        let at = |(start, len): (u8, u8)| &line[start as usize..(start + len) as usize];
        Some(Header {
            pri: self.pri,
            stamp: self.stamp,
            host: self.host.map(at),
            program: Some(at(self.program)),
            pid: self.pid,
            msg: trim_end(&line[n..]),
        })
    }
}

impl Recent {
    /// [`parse`], reusing a kept header when the line starts with it.
    #[inline]
    pub fn parse<'a>(&mut self, line: &'a [u8]) -> Header<'a> {
        for k in &self.kept {
            if let Some(h) = k.reuse(line) {
                return h;
            }
        }
        let (h, fast) = read(line);
        if fast {
            self.keep(line, &h);
        }
        h
    }

    #[cold]
    fn keep(&mut self, line: &[u8], h: &Header) {
        let (Stamp::NoYear(_), Some(program)) = (h.stamp, h.program) else {
            return;
        };
        // An octet count is framing that varies line to line.
        if line.first().is_some_and(u8::is_ascii_digit) {
            return;
        }
        let base = line.as_ptr() as usize;
        let place = |s: &[u8]| -> Option<(u8, u8)> {
            let start = (s.as_ptr() as usize).checked_sub(base)?;
            Some((u8::try_from(start).ok()?, u8::try_from(s.len()).ok()?))
        };
        // Where the message starts (its length may be anything).
        let Some(n) = (h.msg.as_ptr() as usize).checked_sub(base) else {
            return;
        };
        // The tag must end at a space inside the header (a message glued
        // to it would be read differently): it does whenever the message
        // is not empty, checked all the same since reuse rests on it.
        if h.msg.is_empty() || n == 0 || n > HEADER_MAX || line[n - 1] != b' ' {
            return;
        }
        let host = match h.host {
            Some(host) => match place(host) {
                Some(p) => Some(p),
                None => return,
            },
            None => None,
        };
        let Some(program) = place(program) else {
            return;
        };
        let mut k = Kept {
            len: n as u8,
            pri: h.pri,
            stamp: h.stamp,
            host,
            program,
            pid: h.pid,
            ..Kept::default()
        };
        k.bytes[..n].copy_from_slice(&line[..n]);
        self.kept.rotate_right(1);
        self.kept[0] = k;
    }
}

/// A saved RFC 6587 octet-counted stream (`185 <133>1 ...`) read line by
/// line: the count is framing, not message.
fn strip_octet_count(line: &[u8]) -> &[u8] {
    let n = line
        .iter()
        .take(7)
        .take_while(|c| c.is_ascii_digit())
        .count();
    match line.get(n..n + 2) {
        Some(b" <") if n > 0 => &line[n + 1..],
        _ => line,
    }
}

fn looks_like_header(b: &[u8]) -> bool {
    b.starts_with(b"1 ")
        || time::parse_rfc3164_date(b).is_some()
        || time::parse_rfc3339(b).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339_ms;

    #[test]
    fn rate_limit_notices_of_the_journal_and_rsyslog_are_read() {
        let read = |line: &str| {
            let h = parse(line.as_bytes());
            rate_limited(&h)
                .map(|(by, from, n)| (by, String::from_utf8_lossy(from).into_owned(), n))
        };
        let journald = |from: &str, n| Some((Limiter::Journald, from.to_string(), n));
        let rsyslog = |from: &str, n| Some((Limiter::Rsyslog, from.to_string(), n));
        assert_eq!(
            read("Dec 03 10:20:31 lb1 systemd-journald[345]: Suppressed 12345 messages from haproxy.service"),
            journald("haproxy.service", 12345)
        );
        assert_eq!(
            read("Jun 28 03:08:43 localhost systemd-journal[1864]: Suppressed 917 messages from /system.slice/haproxy.service"),
            journald("/system.slice/haproxy.service", 917)
        );
        assert_eq!(
            read("2026-12-03T10:20:31+00:00 lb1 rsyslogd: imuxsock[pid: 4001, name: /usr/sbin/haproxy]: 4242 messages lost due to rate-limiting (200 allowed within 5 seconds)"),
            rsyslog("imuxsock[pid: 4001, name: /usr/sbin/haproxy]", 4242)
        );
        assert_eq!(
            read("Jun 28 10:32:17 localhost rsyslogd-2177: imjournal: 236 messages lost due to rate-limiting"),
            rsyslog("imjournal", 236)
        );
        assert_eq!(
            read("Dec  3 10:20:31 lb1 rsyslogd-2177: imuxsock lost 532 messages from pid 4001 due to rate-limiting"),
            rsyslog("pid 4001", 532)
        );
        for not in [
            // Quoted by another program, or begun but not ended.
            "Dec 03 10:20:31 lb1 haproxy[8]: Suppressed 12 messages from haproxy.service",
            "Dec 03 10:20:31 lb1 logger: imjournal: 236 messages lost due to rate-limiting",
            "Dec 03 10:20:31 lb1 rsyslogd: imuxsock[pid: 4001]: begin to drop messages due to rate-limiting",
            "Dec 03 10:20:31 lb1 systemd-journald[345]: Suppressed many messages from haproxy.service",
            "Dec 03 10:20:31 lb1 systemd-journald[345]: Suppressed 12 messages from ",
            "Dec 03 10:20:31 lb1 rsyslogd: 236 messages lost due to rate-limiting",
        ] {
            assert_eq!(read(not), None, "{not}");
        }
    }

    #[test]
    fn rsyslog_repeated_message_summaries_are_read() {
        // As rsyslog 8.2302 wrote them (RepeatedMsgReduction on).
        let h = parse(b"2026-12-03T01:20:00+00:00 lb1 haproxy[8]: message repeated 3 times: [ 10.0.0.1 be_app/srv1 200 12]");
        assert_eq!(
            repeated(h.msg),
            Some((3, &b"10.0.0.1 be_app/srv1 200 12"[..]))
        );
        assert_eq!(
            repeated(b"message repeated 2 times: [ backend be_app has no server available!]"),
            Some((2, &b"backend be_app has no server available!"[..]))
        );
        for not in [
            &b"last message repeated 3 times"[..],
            b"message repeated 3 times: [ no closing bracket",
            b"message repeated times: [ x]",
            b"message repeated 0 times: [ x]",
            b"message repeated 9999999 times: [ x]",
            b"message repeated 3 times: [ ]",
            b"message repeated -3 times: [ x]",
            b"message repeated 2 times: [ message repeated 2 times: [ x]]",
        ] {
            assert_eq!(repeated(not), None, "{}", String::from_utf8_lossy(not));
        }
    }

    fn show(h: &Header) -> (String, String, String, Option<u32>, String) {
        let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        (
            match h.stamp {
                Stamp::None => "-".into(),
                Stamp::Full(t) => format_rfc3339_ms(t),
                Stamp::NoYear(d) => format_rfc3339_ms(d.with_year(2026)),
                Stamp::Local(t) => format!("local {}", format_rfc3339_ms(t)),
            },
            s(h.host).unwrap_or("-".into()),
            s(h.program).unwrap_or("-".into()),
            h.pid,
            String::from_utf8_lossy(h.msg).into_owned(),
        )
    }

    #[test]
    fn haproxy_direct_rfc3164_without_host() {
        let h = parse(
            b"<134>Nov 24 16:21:15 haproxy[4061]: 127.0.0.1:44128 [24/Nov/2026:16:21:15.230] fe",
        );
        assert_eq!(h.pri, Some(134));
        assert_eq!(
            show(&h),
            (
                "2026-11-24T16:21:15.000Z".into(),
                "-".into(),
                "haproxy".into(),
                Some(4061),
                "127.0.0.1:44128 [24/Nov/2026:16:21:15.230] fe".into()
            )
        );
    }

    #[test]
    fn haproxy_log_send_hostname() {
        let h = parse(b"<129>Nov 24 16:33:26 lb2 haproxy[23408]: Server a/b is DOWN.");
        assert_eq!(show(&h).1, "lb2");
        assert_eq!(show(&h).4, "Server a/b is DOWN.");
    }

    #[test]
    fn haproxy_rfc5424() {
        let h = parse(b"<134>1 2026-11-24T16:21:15.231349+00:00 - haproxy 4061 - - msg here");
        assert_eq!(
            show(&h),
            (
                "2026-11-24T16:21:15.231Z".into(),
                "-".into(),
                "haproxy".into(),
                Some(4061),
                "msg here".into()
            )
        );
    }

    #[test]
    fn haproxy_log_forward_relaying_rfc3164_without_host_as_rfc5424() {
        // What HAProxy 3.2's `log-forward` wrote (fixtures/log-forward/).
        let h = parse(
            b"<129>1 2026-12-07T11:00:27-00:00 haproxy[24308]: - - - - Server be/s1 is DOWN.",
        );
        let want = (
            "2026-12-07T11:00:27.000Z",
            "-",
            "haproxy",
            Some(24308),
            "Server be/s1 is DOWN.",
        );
        let (t, host, program, pid, msg) = show(&h);
        assert_eq!((&*t, &*host, &*program, pid, &*msg), want);
        // A real host with a real APP-NAME is kept.
        let h = parse(b"<129>1 2026-12-07T11:00:27Z lb1 haproxy 24308 - - Server be/s1 is DOWN.");
        assert_eq!(h.host, Some(&b"lb1"[..]));
    }

    #[test]
    fn rsyslog_protocol23_two_spaces() {
        let h =
            parse(b"<133>1 2026-11-24T16:21:13+00:00 localhost haproxy 4061 - -  Health check x\n");
        assert_eq!(show(&h).1, "localhost");
        assert_eq!(show(&h).4, "Health check x");
    }

    #[test]
    fn rsyslog_forward_and_file_formats() {
        for line in [
            "<133>2026-11-24T16:21:13+00:00 lb1 haproxy[4061]: hello",
            "2026-11-24T16:21:13.000000+00:00 lb1 haproxy[4061]: hello",
            "2026-11-24T16:21:13+0000 lb1 haproxy[4061]: hello",
        ] {
            let h = parse(line.as_bytes());
            assert_eq!(
                show(&h),
                (
                    "2026-11-24T16:21:13.000Z".into(),
                    "lb1".into(),
                    "haproxy".into(),
                    Some(4061),
                    "hello".into()
                ),
                "{line}"
            );
        }
    }

    #[test]
    fn traditional_file_and_journal_short() {
        let h = parse(b"Nov  4 16:21:13 lb1 haproxy[4061]: hello");
        assert_eq!(show(&h).0, "2026-11-04T16:21:13.000Z");
        assert_eq!(show(&h).1, "lb1");
        assert_eq!(show(&h).4, "hello");
    }

    #[test]
    fn octet_counted_capture() {
        let h = parse(
            b"185 <133>1 2026-11-24T16:21:13+00:00 localhost haproxy 4061 - -  Health check x\n",
        );
        assert_eq!(show(&h).4, "Health check x");
        assert_eq!(h.pri, Some(133));
    }

    #[test]
    fn short_and_raw() {
        let h = parse(b"<129>Server a/b is DOWN.");
        assert_eq!((h.pri, h.msg), (Some(129), &b"Server a/b is DOWN."[..]));
        let h = parse(b"[WARNING]  (8995) : Server a/b is DOWN.");
        assert_eq!(h.msg, b"[WARNING]  (8995) : Server a/b is DOWN.");
    }

    #[test]
    fn haproxy_iso_and_timed() {
        // What HAProxy 2.6 sends with `format iso` and `format timed`, on a
        // host in Tokyo: an ISO date with its offset, then the message.
        for line in [
            &b"2026-12-01T02:56:28.482516+09:00 Server be_app/srv2 is DOWN, reason: x"[..],
            b"<1>2026-12-01T02:56:28.482506+09:00 Server be_app/srv2 is DOWN, reason: x",
        ] {
            let h = parse(line);
            let (t, host, program, pid, msg) = show(&h);
            assert_eq!(t, "2026-11-30T17:56:28.482Z");
            assert_eq!((host.as_str(), program.as_str(), pid), ("-", "-", None));
            assert_eq!(msg, "Server be_app/srv2 is DOWN, reason: x");
        }
        let h = parse(b"2026-12-01T02:56:26.323533+09:00 127.0.0.1:42812 [01/Dec/2026:02:56:26.321] fe_http be_app/srv1 0/0/0/1/1 200 127 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"");
        assert!(show(&h).4.starts_with("127.0.0.1:42812 [01/Dec"));
    }

    #[test]
    fn a_host_without_a_tag_is_read_from_the_message_on_request() {
        // rsyslog's `%TIMESTAMP:::date-rfc3339% %HOSTNAME% %msg%`: first
        // read as HAProxy's `iso` format, the host inside the message.
        let line = b"2026-11-24T10:00:04+00:00 lb1 Server be/s1 is DOWN, reason: x";
        let h = parse(line);
        assert_eq!(show(&h).1, "-");
        let again = host_in_message(&h).expect("a host and a message");
        let (t, host, program, _, msg) = show(&again);
        assert_eq!(t, "2026-11-24T10:00:04.000Z");
        assert_eq!((host.as_str(), program.as_str()), ("lb1", "-"));
        assert_eq!(msg, "Server be/s1 is DOWN, reason: x");
        // The same with a PRI and a BSD date.
        let h = parse(b"<134>Nov 24 10:00:03 lb1 10.0.1.2:5000 [24/Nov/2026:10:00:03.000] x");
        assert_eq!(show(&h).0, "2026-11-24T10:00:03.000Z", "the date is kept");
        assert_eq!(show(&host_in_message(&h).unwrap()).1, "lb1");
        // A header that named its host or tag, a line without a date, a
        // first word no host has, a word alone: nothing to read again.
        for line in [
            &b"2026-11-24T10:00:04+00:00 lb1 haproxy[1]: Server be/s1 is DOWN"[..],
            b"<134>Nov 24 10:00:03 haproxy[1]: lb1 foo",
            b"lb1 Server be/s1 is DOWN",
            b"2026-11-24T10:00:04+00:00 [lb1] Server be/s1 is DOWN",
            b"2026-11-24T10:00:04+00:00 lb1",
        ] {
            assert_eq!(
                host_in_message(&parse(line)),
                None,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn structured_data_falls_back_to_syslog_loose() {
        let h = parse(b"<134>1 2026-11-24T16:21:15Z lb1 haproxy 42 - [meta x=\"1\"] the message");
        assert_eq!(show(&h).1, "lb1");
        assert_eq!(show(&h).4, "the message");
        assert_eq!(h.pid, Some(42));
    }

    /// The fast path and syslog_loose agree on every shape they both parse.
    #[test]
    fn fast_path_agrees_with_syslog_loose() {
        for line in [
            "<134>Nov 24 16:21:15 haproxy[4061]: a b c",
            "<129>Nov  4 16:33:26 lb2 haproxy[23408]: Server a/b is DOWN.",
            "<134>1 2026-11-24T16:21:15.231349+00:00 - haproxy 4061 - - a b",
            "<133>1 2026-11-24T16:21:13+00:00 localhost haproxy 4061 - - x",
            "<133>2026-11-24T16:21:13+00:00 lb1 haproxy[4061]: hello",
        ] {
            let f = fast(line.as_bytes()).unwrap();
            let l = from_loose(line.as_bytes(), line).unwrap();
            assert_eq!(show(&f), show(&l), "{line}");
        }
    }

    /// Every header [`Recent`] reuses reads as [`parse`] reads it: after
    /// any line, any other line (real captures of every form; lines cut
    /// anywhere in their header and given another ending: spaces, a line
    /// end, a glued message, nothing; more hosts than are kept).
    #[test]
    fn a_kept_header_reads_as_a_parsed_one() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/");
        let mut real: Vec<Vec<u8>> = Vec::new();
        for f in [
            "haproxy-udp-rfc3164.log",
            "haproxy-udp-rfc5424.log",
            "rsyslog-file.log",
            "rsyslog-tcp-forward.log",
            "rsyslog-tcp-octet.log",
            "haproxy-stderr.log",
        ] {
            let text = std::fs::read(format!("{dir}{f}")).unwrap();
            real.extend(text.split(|&c| c == b'\n').map(<[u8]>::to_vec));
        }
        assert!(real.len() > 100);
        let mut recent = Recent::default();
        for line in &real {
            assert_eq!(recent.parse(line), parse(line));
        }
        let bases = [
            "<134>Nov 24 16:21:15 lb1 haproxy[4061]: 10.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s",
            "Nov  4 16:21:15 lb2 haproxy[1]: Server be/s is DOWN.",
            "<134>Nov 24 16:21:15 haproxy[4061]: Server be/s is UP.",
            "Nov 24 16:21:15.123 lb1 haproxy: x",
            "185 <134>Nov 24 16:21:15 lb1 haproxy[4061]: x",
            "Nov 24 16:21:15 a-load-balancer-with-a-very-long-host-name.example.com haproxy[4061]: x",
        ];
        let ends: [&[u8]; 7] = [b" msg", b"  msg", b"", b" ", b"\r\n", b"x y", b":z"];
        for base in bases {
            let base = base.as_bytes();
            let mut lines: Vec<Vec<u8>> = Vec::new();
            for cut in 0..=base.len().min(HEADER_MAX + 8) {
                for end in ends {
                    lines.push([&base[..cut], end].concat());
                }
            }
            for first in &lines {
                let mut recent = Recent::default();
                recent.parse(first);
                for line in &lines {
                    assert_eq!(
                        recent.parse(line),
                        parse(line),
                        "after {:?}: {:?}",
                        String::from_utf8_lossy(first),
                        String::from_utf8_lossy(line)
                    );
                }
            }
        }
        // Five hosts taking turns, four kept: each line still reads right.
        let mut recent = Recent::default();
        for i in 0..50 {
            let line = format!("Nov 24 16:21:15 lb{} haproxy[{}]: m{i}", i % 5, i % 5);
            assert_eq!(recent.parse(line.as_bytes()), parse(line.as_bytes()));
        }
        // The common case is kept: the same second of one host.
        let mut recent = Recent::default();
        recent.parse(bases[0].as_bytes());
        let next = bases[0].replace("10.0.0.1", "10.0.0.2");
        assert!(recent
            .kept
            .iter()
            .any(|k| k.reuse(next.as_bytes()).is_some()));
        // The newest header is the first tried, after other hosts' too.
        let mut recent = Recent::default();
        for line in [
            bases[0],
            "Nov 24 16:21:15 lb9 haproxy[7]: x",
            bases[0],
            "Nov 24 16:21:15 lb8 haproxy[7]: x",
        ] {
            recent.parse(line.as_bytes());
        }
        let lb8 = "Nov 24 16:21:15 lb8 haproxy[7]: 10.0.0.2:1 [24/Nov/2026:16:21:15.000]";
        assert!(recent.kept[0].reuse(lb8.as_bytes()).is_some());
        assert!(recent.kept[2].reuse(next.as_bytes()).is_some());
        // Whatever the length of the message that came with it.
        let mut recent = Recent::default();
        let long = format!("{} \"GET /{} HTTP/1.1\"", bases[0], "a".repeat(300));
        recent.parse(long.as_bytes());
        assert!(recent
            .kept
            .iter()
            .any(|k| k.reuse(next.as_bytes()).is_some()));
    }
}
