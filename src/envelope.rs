//! Envelope layer: what a container runtime or orchestrator wraps around
//! HAProxy's line before it reaches a file, taken off so that the syslog and
//! HAProxy layers see the line HAProxy wrote. Detected per line, no flag:
//!
//! | source | shape |
//! |---|---|
//! | Docker json-file driver | `{"log":"MSG\n","stream":"stderr","time":"2026-11-24T16:23:14.123456789Z"}` |
//! | CRI (containerd, CRI-O: `/var/log/pods`) | `2026-11-24T16:23:14.123456789Z stderr F MSG` (`P`: a part, joined with what follows) |
//! | `kubectl logs --prefix` | `[pod/NAME/CONTAINER] MSG` |
//! | `docker compose logs` | `NAME  \| MSG` |
//! | `docker service logs` (swarm) | `SERVICE.SLOT.TASKID@NODE  \| MSG`; with `-t` the time comes first: `TIME SERVICE.SLOT.TASKID@NODE  \| MSG` |
//! | `docker logs -t`, `kubectl logs --timestamps` | `2026-11-24T16:23:14.123456789Z MSG` |
//! | `journalctl -o json` | `{"__CURSOR":...,"__REALTIME_TIMESTAMP":"1795537394123456","_HOSTNAME":"lb1","MESSAGE":"MSG"}` (`MESSAGE` text or bytes) |
//! | `journalctl -o json-seq` | the same after an ASCII RS (0x1E) |
//! | `journalctl -o json-sse` | the same after `data: ` (server-sent events; the blank line between is no line) |
//! | rsyslog's JSON templates (`option.jsonf`, `%jsonmesg%`), log shippers (Vector, Fluent Bit, Filebeat, Logstash) | `{"@timestamp":"2026-11-24T16:23:14+00:00","host":"lb1","syslog-tag":"haproxy[8]:","message":" MSG"}`: the message under `message` or `msg`, the time, host and program under the names they use (see [`shipped_json`]) |
//!
//! The last one needs no envelope: it is the shape of HAProxy's own `iso`
//! log format, which [`crate::syslog`] reads; [`header`] looks inside when
//! what follows the time is itself a syslog header (HAProxy logging
//! `rfc3164` to stdout).
//!
//! What the envelope gives: a time, used when the message has none (HAProxy's
//! stderr has none since 2.3), and a name, used as the HAProxy host when the
//! message has none: the pod (kubectl), the container (compose), the service
//! and slot (swarm: `haproxy.1`, stable across the task's restarts). A
//! stream name (`stdout`, `stderr`) is never a host.

use std::borrow::Cow;

use crate::syslog::{self, Header, Stamp};
use crate::time::{self, Millis};

/// Which envelope a line came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    None,
    DockerJson,
    Journal,
    /// A JSON record of rsyslog or a log shipper.
    Shipped,
    Cri,
    Kubectl,
    Compose,
}

/// What the envelope said, and the line inside it.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub kind: Kind,
    pub time: Option<Millis>,
    pub host: Option<&'a [u8]>,
    /// Who wrote the message, where the envelope says it and the line
    /// does not: a journal entry's `SYSLOG_IDENTIFIER` (journald took the
    /// tag off the syslog header).
    pub program: Option<&'a [u8]>,
    /// A part of a longer line whose rest comes in the next line(s): a CRI
    /// `P` part, or a json-file record whose `log` has no newline.
    pub partial: bool,
    pub inner: Cow<'a, [u8]>,
}

impl<'a> Envelope<'a> {
    fn none(line: &'a [u8]) -> Envelope<'a> {
        Envelope {
            kind: Kind::None,
            time: None,
            host: None,
            program: None,
            partial: false,
            inner: Cow::Borrowed(line),
        }
    }
}

/// Takes the envelope off one line; a line without one is its own inner
/// line. Costs a few byte comparisons on a line that has none.
pub fn open(line: &[u8]) -> Envelope<'_> {
    peel(line).unwrap_or_else(|| Envelope::none(line))
}

/// The envelope of a line, `None` for most lines (none): told by the first
/// bytes, inline, so that a plain syslog or HAProxy line pays a few
/// comparisons and no call.
#[inline(always)]
pub fn peel(line: &[u8]) -> Option<Envelope<'_>> {
    match *line.first()? {
        // A journal entry has a `MESSAGE` (looked for first: one parse of
        // a shipper's record, not two).
        b'{' => docker_json(line)
            .or_else(|| memchr::memmem::find(line, b"\"MESSAGE\"").and_then(|_| journal_json(line)))
            .or_else(|| shipped_json(line)),
        // json-seq (RFC 7464): each record after a record separator.
        0x1E => journal_json(&line[1..]),
        // json-sse: each record an event's data.
        b'd' if line.starts_with(b"data: {") => journal_json(&line[6..]),
        b'[' if line.starts_with(b"[pod/") => kubectl_prefix(line),
        // CRI's time: `2026-11-24T...` (an IP or a syslog date is not).
        c if c.is_ascii_digit() && line.get(4) == Some(&b'-') => {
            cri(line).or_else(|| timed_swarm(line))
        }
        // `NAME  | `: a space, then more spaces or the bar (a syslog date
        // has a day there).
        c if c.is_ascii_alphanumeric() && maybe_compose(line) => compose(line),
        _ => None,
    }
}

#[inline(always)]
fn maybe_compose(line: &[u8]) -> bool {
    // Eight bytes at a time: a syslog date's month (`Nov `) ends in the
    // first eight, and this runs for every plain line.
    let n = crate::bytes::find(&line[..line.len().min(256)], b' ');
    n.is_some_and(|n| matches!(line.get(n + 1), Some(b' ' | b'|')))
}

/// The syslog header of an opened line, with the envelope's name where the
/// line has none, and its time where the line's says less ([`says_more`]:
/// HAProxy's stdout in its default rfc3164 has a date with no zone, the
/// runtime's or the journal's time beside it is UTC; a shipper's record
/// only where the line has none). A journal entry's `_HOSTNAME` is the machine
/// whatever the message says: a frame HAProxy wrote to stdout names
/// `localhost` (its RFC 3164 header without `log-send-hostname`), as
/// [`nested`] has it for the same entry written by journalctl or rsyslog.
pub fn header<'b>(env: &'b Envelope<'_>) -> Header<'b> {
    let mut h = look_inside(syslog::parse(&env.inner));
    if let Some(t) = env.time {
        h.stamp = match env.kind {
            // A shipper dates its record when it ships it (Filebeat's
            // `@timestamp`), maybe days after the line: the line's own
            // date first.
            Kind::Shipped if h.stamp != Stamp::None => h.stamp,
            // A runtime or journald, when the line reached it.
            _ => says_more(Stamp::Full(t), h.stamp),
        };
    }
    if h.host.is_none() || (env.kind == Kind::Journal && env.host.is_some()) {
        h.host = env.host;
    }
    if h.program.is_none() {
        h.program = env.program;
    }
    h
}

/// `TIME <PRI>...`: a timestamp put before a whole syslog line (`docker
/// logs -t` of a HAProxy logging rfc3164 to stdout): the line inside says
/// more, its time too when it has a zone ([`says_more`]). Every other
/// header is returned as it is, at the cost of one test (this runs on
/// every line).
///
/// A syslog line whose message opens with a PRI again (`<134>`) is a frame
/// inside a frame: HAProxy logging to stdout (`log stdout format rfc3164`,
/// `rfc5424`, `priority` or `timed`) under systemd, kept by journald (whose
/// level prefix takes `<0>` to `<7>` only) and written by rsyslog or
/// journalctl: `Dec  2 10:00:00 lb1 haproxy[8]: <134>Dec  2 10:00:00
/// haproxy[8]: MSG`. The inner header is read too (see [`nested`]).
#[inline]
pub fn look_inside(mut h: Header<'_>) -> Header<'_> {
    look_inside_in_place(&mut h);
    h
}

/// [`look_inside`] where the header lies (the engine's per-line path: see
/// `Engine::ingest_line` for why not a copy).
#[inline]
pub fn look_inside_in_place(h: &mut Header<'_>) {
    if h.host.is_none() && h.program.is_none() && matches!(h.stamp, Stamp::Full(_)) {
        *h = inside(*h);
    } else if nests(h.msg) && (h.program.is_some() || h.stamp != Stamp::None) {
        *h = nested(*h);
    }
}

/// Whether a message opens like a frame of its own: a PRI (`<134>`), the
/// date of HAProxy's `iso` format (`2026-12-02T...`, also `timed`'s once
/// journald took its `<6>` off), or RFC 5424's version and date
/// (`1 2026-12-02T...`: `log /dev/log format rfc5424`, whose PRI journald's
/// syslog socket takes off, leaving the rest as the message). Two bytes
/// read: a request line opens with its client, and no IPv4 address has a
/// `-` fifth or a space second.
#[inline(always)]
fn nests(msg: &[u8]) -> bool {
    match msg.first() {
        Some(b'<') => true,
        Some(b'1') if msg.get(1) == Some(&b' ') => msg.get(6) == Some(&b'-'),
        Some(c) => c.is_ascii_digit() && msg.get(4) == Some(&b'-'),
        None => false,
    }
}

/// A frame inside a syslog line's message. The inner header is HAProxy's
/// own: its PRI and tag are kept, and its time when it says more (an
/// offset, then a year; the inner one when they are alike). The host is
/// the outer header's, journald's: the machine HAProxy runs on (HAProxy's
/// RFC 3164 header says `localhost` unless `log-send-hostname` is set,
/// its RFC 5424 one `-`, and the other formats have none). A message that
/// only looks like a frame (`<x>`, `<999>`, a date alone) is the message.
#[cold]
fn nested(outer: Header<'_>) -> Header<'_> {
    let inner = syslog::parse(outer.msg);
    if inner.pri.is_none() && !matches!(inner.stamp, Stamp::Full(_)) {
        return outer;
    }
    let (program, pid) = match inner.program {
        Some(p) => (Some(p), inner.pid),
        None => (outer.program, outer.pid),
    };
    Header {
        pri: inner.pri,
        stamp: says_more(outer.stamp, inner.stamp),
        host: outer.host.or(inner.host),
        program,
        pid,
        msg: inner.msg,
    }
}

#[cold]
fn inside(h: Header<'_>) -> Header<'_> {
    let inner = syslog::parse(h.msg);
    if inner.program.is_none() && inner.pri.is_none() {
        return h;
    }
    Header {
        stamp: says_more(h.stamp, inner.stamp),
        ..inner
    }
}

/// Of the two times a wrapped line carries, the one that says more: an
/// offset (a UTC time), then a year, then any; HAProxy's own (`inner`)
/// when they say as much. A date with no zone is read in `--tz`, which is
/// hours wrong when the load balancer keeps another zone than the machine
/// reading its log, while the time a runtime, journald or a relay put
/// beside it is UTC, and of the same moment.
fn says_more(outer: Stamp, inner: Stamp) -> Stamp {
    let says = |s: Stamp| match s {
        Stamp::Full(_) => 3,
        Stamp::Local(_) => 2,
        Stamp::NoYear(_) => 1,
        Stamp::None => 0,
    };
    if says(outer) > says(inner) {
        outer
    } else {
        inner
    }
}

/// A JSON string, borrowed from the line when it has no escapes. (serde
/// does not borrow an `Option<Cow<str>>` directly: it always copies.)
#[derive(serde::Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// A JSON string serde borrowed from `line` (it had no escapes), as the
/// bytes of the line it is; `None` for one it had to copy.
fn in_line<'l>(line: &'l [u8], t: Cow<'_, str>) -> Option<&'l [u8]> {
    match t {
        Cow::Borrowed(h) => {
            let off = (h.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
            line.get(off..off + h.len())
        }
        Cow::Owned(_) => None,
    }
}

/// Docker's json-file driver: one JSON object per line. `log` is the line
/// as written (its newline kept), `time` RFC 3339 with nanoseconds. Docker
/// cuts a line longer than its 16 KiB buffer (HAProxy's with `log ... len
/// 65535` and a long URI or captured headers) into records of which only
/// the last ends its `log` with the newline: the others are parts of a
/// full buffer each, joined as CRI's are. A shorter `log` without a newline
/// is a whole line (a shipper's record that dropped it), never a part.
fn docker_json(line: &[u8]) -> Option<Envelope<'_>> {
    if !line.starts_with(b"{\"log\":") {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        log: Cow<'a, str>,
        #[serde(default, borrow)]
        time: Option<Text<'a>>,
    }
    let l: Line = serde_json::from_slice(line).ok()?;
    let time = l
        .time
        .and_then(|t| time::parse_rfc3339(t.0.as_bytes()).map(|(t, _)| t));
    Some(Envelope {
        kind: Kind::DockerJson,
        time,
        host: None,
        program: None,
        partial: l.log.len() >= DOCKER_BUFFER && !l.log.ends_with('\n'),
        inner: match l.log {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        },
    })
}

/// The size of the buffer Docker's log copier fills before it writes a part
/// of a longer line (moby's `daemon/logger/copier.go`); bytes it could not
/// encode as UTF-8 are each written as U+FFFD, longer, never shorter.
const DOCKER_BUFFER: usize = 16 * 1024;

/// `journalctl -o json`: one object per entry. `MESSAGE` is a string, or
/// an array of bytes when it is not valid UTF-8 or holds control
/// characters; the time is `__REALTIME_TIMESTAMP` (microseconds since the
/// epoch, as a string), the host `_HOSTNAME`. A syslog identifier and pid
/// are what journald took off the syslog header: HAProxy's message follows.
fn journal_json(line: &[u8]) -> Option<Envelope<'_>> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Message<'a> {
        #[serde(borrow)]
        Text(Cow<'a, str>),
        Bytes(Vec<u8>),
    }
    #[derive(serde::Deserialize)]
    struct Entry<'a> {
        #[serde(rename = "MESSAGE", borrow)]
        message: Option<Message<'a>>,
        #[serde(rename = "__REALTIME_TIMESTAMP", borrow)]
        realtime: Option<Text<'a>>,
        #[serde(rename = "_HOSTNAME", borrow)]
        hostname: Option<Text<'a>>,
        #[serde(rename = "SYSLOG_IDENTIFIER", borrow)]
        identifier: Option<Text<'a>>,
    }
    let e: Entry = serde_json::from_slice(line).ok()?;
    let time = e
        .realtime
        .and_then(|t| t.0.parse::<i64>().ok())
        .map(|us| us.div_euclid(1000));
    // The host name and identifier are borrowed from the line when they
    // have no escapes (they never do).
    let host = e.hostname.and_then(|t| in_line(line, t.0));
    let program = e
        .identifier
        .and_then(|t| in_line(line, t.0))
        .filter(|p| !p.is_empty());
    let inner = match e.message? {
        Message::Text(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
        Message::Text(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
        Message::Bytes(b) => Cow::Owned(b),
    };
    Some(Envelope {
        kind: Kind::Journal,
        time,
        host: host.filter(|h| !h.is_empty()),
        program,
        partial: false,
        inner,
    })
}

/// A JSON record as rsyslog writes it with a JSON template, or a log
/// shipper: the message and what the syslog header said, each under the
/// name its writer gives it (the first present wins):
///
/// | what | names |
/// |---|---|
/// | message | `message` (rsyslog's documented `jsonf` template, Vector, Fluent Bit, Filebeat, Logstash), `msg` (rsyslog's `%jsonmesg%`), `log` (Fluent Bit's tail input) |
/// | time | `@timestamp`, `timestamp`, `timereported`, `time`: RFC 3339; `date`: seconds since the epoch (Fluent Bit) |
/// | host | `hostname`, `host` (a name, or ECS's object with `name`) |
/// | program | `programname`, `app-name`, `appname`, `ident`, `syslog-tag` / `syslogtag` (`haproxy[8]:`) |
///
/// rsyslog's `msg` keeps the space after the RFC 3164 tag's colon: taken
/// off. The message may also be a whole syslog line (Logstash's `message`),
/// whose own header says more. A record with no message is not one.
fn shipped_json(line: &[u8]) -> Option<Envelope<'_>> {
    use serde_json::Value;
    // One field per name: serde refuses a record holding two aliases of
    // one field, and Vector writes both `host` and `hostname`.
    #[derive(serde::Deserialize)]
    struct Record<'a> {
        #[serde(default, borrow)]
        message: Option<Field<'a>>,
        #[serde(default, borrow)]
        msg: Option<Field<'a>>,
        #[serde(default, borrow)]
        log: Option<Field<'a>>,
        #[serde(rename = "@timestamp", default, borrow)]
        at_timestamp: Option<Field<'a>>,
        #[serde(default, borrow)]
        timestamp: Option<Field<'a>>,
        #[serde(default, borrow)]
        timereported: Option<Field<'a>>,
        #[serde(default, borrow)]
        time: Option<Field<'a>>,
        #[serde(default, borrow)]
        date: Option<Field<'a>>,
        #[serde(default, borrow)]
        hostname: Option<Field<'a>>,
        #[serde(default, borrow)]
        host: Option<Field<'a>>,
        #[serde(default, borrow)]
        programname: Option<Field<'a>>,
        #[serde(rename = "app-name", default, borrow)]
        app_name: Option<Field<'a>>,
        #[serde(default, borrow)]
        appname: Option<Field<'a>>,
        #[serde(default, borrow)]
        ident: Option<Field<'a>>,
        #[serde(rename = "syslog-tag", default, borrow)]
        syslog_tag: Option<Field<'a>>,
        #[serde(default, borrow)]
        syslogtag: Option<Field<'a>>,
    }
    /// A text borrowed where it has no escapes, or any other JSON value.
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Field<'a> {
        #[serde(borrow)]
        Text(Cow<'a, str>),
        Other(Value),
    }
    impl<'a> Field<'a> {
        fn text(self) -> Option<Cow<'a, str>> {
            match self {
                Field::Text(t) => Some(t),
                Field::Other(_) => None,
            }
        }
    }
    let r: Record = serde_json::from_slice(line).ok()?;
    let message = [r.message, r.msg, r.log]
        .into_iter()
        .flatten()
        .find_map(Field::text)?;
    let time = [r.at_timestamp, r.timestamp, r.timereported, r.time]
        .into_iter()
        .flatten()
        .filter_map(Field::text)
        .find_map(|t| time::parse_rfc3339(t.as_bytes()).map(|(t, _)| t))
        .or_else(|| match r.date? {
            Field::Other(Value::Number(n)) => epoch_seconds(n.as_f64()?),
            Field::Text(t) => epoch_seconds(t.parse().ok()?),
            Field::Other(_) => None,
        });
    // Names are borrowed from the line (they have no escapes; one that
    // does is dropped rather than copied: the header inside may name it).
    let raw = |t| in_line(line, t);
    let host = [r.hostname, r.host]
        .into_iter()
        .flatten()
        .find_map(|h| match h {
            Field::Text(t) => raw(t),
            // ECS (Filebeat): `"host":{"name":"lb1",...}`: its name is found
            // in the line as it was written.
            Field::Other(Value::Object(o)) => match o.get("name")? {
                Value::String(n) => memchr::memmem::find(line, format!("\"{n}\"").as_bytes())
                    .map(|k| &line[k + 1..k + 1 + n.len()]),
                _ => None,
            },
            Field::Other(_) => None,
        });
    let program = [
        r.programname,
        r.app_name,
        r.appname,
        r.ident,
        r.syslog_tag,
        r.syslogtag,
    ]
    .into_iter()
    .flatten()
    .filter_map(Field::text)
    .find_map(|p| {
        let p = raw(p)?;
        // `haproxy[8]:` -> `haproxy`
        let end = p
            .iter()
            .position(|&c| c == b'[' || c == b':')
            .unwrap_or(p.len());
        Some(&p[..end]).filter(|p| !p.is_empty() && *p != b"-")
    });
    let inner = match message {
        Cow::Borrowed(m) => Cow::Borrowed(m.trim_start_matches(' ').as_bytes()),
        Cow::Owned(m) => Cow::Owned(m.trim_start_matches(' ').as_bytes().to_vec()),
    };
    Some(Envelope {
        kind: Kind::Shipped,
        time,
        host: host.filter(|h| !h.is_empty() && *h != b"-"),
        program,
        partial: false,
        inner,
    })
}

/// Seconds since the epoch (with a fraction) as milliseconds, if a date
/// of this era (a number of another unit is no time at all here).
fn epoch_seconds(s: f64) -> Option<Millis> {
    (1e8..1e11)
        .contains(&s)
        .then(|| (s * 1000.0).round() as Millis)
}

/// Whether `line` is a part of a longer line whose rest is in the lines
/// after it (a CRI `P` part, a json-file record without its newline): what
/// cuts an input into pieces must not cut there.
pub fn continued(line: &[u8]) -> bool {
    match line.first() {
        Some(c) if c.is_ascii_digit() => cri(line).is_some_and(|e| e.partial),
        Some(b'{') => docker_json(line).is_some_and(|e| e.partial),
        _ => false,
    }
}

/// CRI: `TIME STREAM TAG MSG`, TAG `F` (full) or `P` (partial).
fn cri(line: &[u8]) -> Option<Envelope<'_>> {
    let (t, n) = time::parse_rfc3339(line)?;
    let rest = line[n..].strip_prefix(b" ")?;
    let rest = rest
        .strip_prefix(b"stdout ")
        .or_else(|| rest.strip_prefix(b"stderr "))?;
    let (partial, msg) = match rest {
        [b'F', b' ', msg @ ..] => (false, msg),
        [b'P', b' ', msg @ ..] => (true, msg),
        [b'F'] => (false, &rest[1..]),
        [b'P'] => (true, &rest[1..]),
        _ => return None,
    };
    Some(Envelope {
        kind: Kind::Cri,
        time: Some(t),
        host: None,
        program: None,
        partial,
        inner: Cow::Borrowed(msg),
    })
}

/// `docker service logs -t`: Docker puts the time before the task's name
/// (`2026-11-30T21:59:09.243066290Z lbh.1.uyguuydmx2i4@vm    | MSG`), where
/// compose puts it after.
fn timed_swarm(line: &[u8]) -> Option<Envelope<'_>> {
    let (t, n) = time::parse_rfc3339(line)?;
    let rest = line[n..].strip_prefix(b" ")?;
    if !rest.first()?.is_ascii_alphanumeric() || !maybe_compose(rest) {
        return None;
    }
    let env = compose(rest)?;
    Some(Envelope {
        time: Some(t),
        ..env
    })
}

/// `kubectl logs --prefix`: `[pod/NAME/CONTAINER] MSG`.
fn kubectl_prefix(line: &[u8]) -> Option<Envelope<'_>> {
    let close = memchr::memchr(b']', line)?;
    let mut parts = line[1..close].splitn(3, |&c| c == b'/');
    let (_kind, pod, _container) = (parts.next()?, parts.next()?, parts.next()?);
    if pod.is_empty() || pod.contains(&b' ') {
        return None;
    }
    let msg = &line[close + 1..];
    Some(Envelope {
        kind: Kind::Kubectl,
        time: None,
        host: Some(pod),
        program: None,
        partial: false,
        inner: Cow::Borrowed(msg.strip_prefix(b" ").unwrap_or(msg)),
    })
}

/// `docker compose logs` (`NAME  | MSG`) and `docker service logs`
/// (`SERVICE.SLOT.TASKID@NODE  | MSG`): a name of the characters Docker
/// allows, padded with spaces, then `| `.
fn compose(line: &[u8]) -> Option<Envelope<'_>> {
    let name_len = line
        .iter()
        .take(256)
        .take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'@'))
        .count();
    let name = &line[..name_len];
    let rest = &line[name_len..];
    let pad = rest.iter().take_while(|&&c| c == b' ').count();
    if pad == 0 || rest.get(pad) != Some(&b'|') {
        return None;
    }
    let msg = &rest[pad + 1..];
    let msg = msg.strip_prefix(b" ").unwrap_or(msg);
    let host = match memchr::memchr(b'@', name) {
        // Swarm: `haproxy.1.9y7cjx9fd5n4kzsd2nxkbnqq2@node1` (with
        // `--no-trunc`; `haproxy.1.9y7cjx9fd5n4` by default): the service
        // and slot (node id for a global service), without the task id,
        // new at every restart.
        Some(at) => {
            let task = &name[..at];
            match memchr::memrchr(b'.', task) {
                Some(dot) if memchr::memchr(b'.', &task[..dot]).is_some() => &task[..dot],
                _ => task,
            }
        }
        None => name,
    };
    Some(Envelope {
        kind: Kind::Compose,
        time: None,
        host: (!host.is_empty()).then_some(host),
        program: None,
        partial: false,
        inner: Cow::Borrowed(msg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339_ms;

    const DOWN: &str = "[WARNING]  (8) : Server be_app/srv2 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";

    /// (time, host, message) as the layers above see them.
    fn seen(line: &str) -> (String, String, String) {
        let env = open(line.as_bytes());
        let h = header(&env);
        (
            match h.stamp {
                Stamp::Full(t) => format_rfc3339_ms(t),
                Stamp::NoYear(d) => format_rfc3339_ms(d.with_year(2026)),
                Stamp::Local(t) => format!("local {}", format_rfc3339_ms(t)),
                Stamp::None => "-".into(),
            },
            h.host
                .map_or("-".into(), |h| String::from_utf8_lossy(h).into_owned()),
            String::from_utf8_lossy(h.msg).into_owned(),
        )
    }

    #[test]
    fn every_runtime_gives_the_line_haproxy_wrote() {
        let t = "2026-11-24T16:23:14.123Z";
        let json = format!(
            "{{\"log\":\"{}\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-24T16:23:14.123456789Z\"}}",
            DOWN.replace('"', "\\\"")
        );
        let cases = [
            (json.as_str(), t, "-"),
            (
                &*format!("2026-11-24T16:23:14.123456789Z stderr F {DOWN}"),
                t,
                "-",
            ),
            (&*format!("2026-11-24T16:23:14.123456789Z {DOWN}"), t, "-"),
            (
                &*format!("[pod/haproxy-6d4cf56db6-x7k2p/haproxy] {DOWN}"),
                "-",
                "haproxy-6d4cf56db6-x7k2p",
            ),
            (
                &*format!(
                    "[pod/haproxy-6d4cf56db6-x7k2p/haproxy] 2026-11-24T16:23:14.123456789Z {DOWN}"
                ),
                t,
                "haproxy-6d4cf56db6-x7k2p",
            ),
            (&*format!("haproxy1    | {DOWN}"), "-", "haproxy1"),
            (
                &*format!("lb-haproxy-1  | 2026-11-24T16:23:14.123456789Z {DOWN}"),
                t,
                "lb-haproxy-1",
            ),
            (
                &*format!("haproxy.1.9y7cjx9fd5n4kzsd2nxkbnqq2@node1    | {DOWN}"),
                "-",
                "haproxy.1",
            ),
            // What a real Docker 20.10 wrote for `docker service logs -t`
            // (task id cut to 12 characters, the time in front).
            (
                &*format!("2026-11-24T16:23:14.123066290Z lbh.1.uyguuydmx2i4@vm    | {DOWN}"),
                t,
                "lbh.1",
            ),
            (&*format!("lbh.1.uyguuydmx2i4@vm    | {DOWN}"), "-", "lbh.1"),
        ];
        for (line, time, host) in cases {
            let (gt, gh, gm) = seen(line);
            assert_eq!((gt.as_str(), gh.as_str()), (time, host), "{line}");
            assert_eq!(gm, DOWN, "{line}");
        }
    }

    #[test]
    fn a_syslog_line_inside_keeps_its_own_header() {
        // HAProxy logging rfc3164 to stdout, read by `docker logs -t`:
        // its header names the host, the runtime's UTC time says more than
        // its date with no zone.
        let (t, host, msg) =
            seen("2026-11-24T16:23:14.5Z <129>Nov 24 16:23:14 lb7 haproxy[8]: Server a/b is DOWN.");
        assert_eq!(
            (t.as_str(), host.as_str(), msg.as_str()),
            ("2026-11-24T16:23:14.500Z", "lb7", "Server a/b is DOWN.")
        );
        // rfc5424 inside: its own time, with its offset.
        let (t, _, _) = seen(
            "2026-11-24T16:23:14.5Z <129>1 2026-11-25T01:23:14.25+09:00 lb7 haproxy 8 - - Server a/b is DOWN.",
        );
        assert_eq!(t, "2026-11-24T16:23:14.250Z");
        // `short` inside: no time of its own, the runtime's is taken.
        let (t, _, msg) = seen("2026-11-24T16:23:14.5Z stdout F <1>Server a/b is DOWN.");
        assert_eq!(
            (t.as_str(), msg.as_str()),
            ("2026-11-24T16:23:14.500Z", "Server a/b is DOWN.")
        );
    }

    /// JSON records as rsyslog 8.2302 wrote them (the documented `jsonf`
    /// template and `%jsonmesg%`, captured on this machine from HAProxy
    /// lines sent over UDP) and as log shippers document theirs.
    #[test]
    fn shipped_json_records_give_the_line_inside() {
        let down = "Server be\\/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
        let plain = down.replace("\\/", "/");
        let cases = [
            // rsyslog, `option.jsonf` template of rsyslog's documentation:
            // RFC 3164 in (the space after the tag's colon kept), then
            // RFC 5424 in (none; the tag without its colon).
            (
                format!(
                    r#"{{"@timestamp":"2026-11-24T10:00:01+00:00", "host":"localhost", "severity":"ALERT", "facility":"local0", "syslog-tag":"haproxy[4001]:", "source":"haproxy", "message":" {down}"}}"#
                ),
                ("2026-11-24T10:00:01.000Z", "localhost", "haproxy"),
            ),
            (
                format!(
                    r#"{{"@timestamp":"2026-11-24T11:00:01.123+01:00", "host":"lb9", "severity":"NOTICE", "facility":"local0", "syslog-tag":"haproxy[4001]", "source":"haproxy", "message":"{down}"}}"#
                ),
                ("2026-11-24T10:00:01.123Z", "lb9", "haproxy"),
            ),
            // rsyslog, `%jsonmesg%`: `msg`, `timereported`, `hostname`.
            (
                format!(
                    r#"{{ "msg": " {down}", "rawmsg": "<129>Nov 24 10:00:01 haproxy[4001]: {down}", "timereported": "2026-11-24T10:00:01+00:00", "hostname": "localhost", "syslogtag": "haproxy[4001]:", "inputname": "imudp", "fromhost": "localhost", "fromhost-ip": "127.0.0.1", "pri": "129", "timegenerated": "2026-12-05T02:27:23.585272+00:00", "programname": "haproxy", "app-name": "haproxy", "procid": "4001", "msgid": "-", "uuid": null, "$!": null }}"#
                ),
                ("2026-11-24T10:00:01.000Z", "localhost", "haproxy"),
            ),
            // Vector's syslog source: `host` and `hostname` both.
            (
                format!(
                    r#"{{"appname":"haproxy","facility":"local0","host":"lb1","hostname":"lb1","message":"{down}","procid":4001,"severity":"alert","source_ip":"127.0.0.1","source_type":"syslog","timestamp":"2026-11-24T10:00:01Z","version":1}}"#
                ),
                ("2026-11-24T10:00:01.000Z", "lb1", "haproxy"),
            ),
            // Fluent Bit's syslog parser: seconds since the epoch in `date`.
            (
                format!(
                    r#"{{"date":1795514401.25,"pri":"129","time":"Nov 24 10:00:01","host":"lb1","ident":"haproxy","pid":"4001","message":"{down}"}}"#
                ),
                ("2026-11-24T10:00:01.250Z", "lb1", "haproxy"),
            ),
            // Filebeat (ECS): the file's whole line in `message`, whose
            // header says the time and host; `log` and `host` objects.
            (
                format!(
                    r#"{{"@timestamp":"2026-12-05T02:27:23.585Z","host":{{"name":"shipper"}},"log":{{"offset":0,"file":{{"path":"/var/log/haproxy.log"}}}},"message":"Nov 24 10:00:01 lb1 haproxy[4001]: {down}","input":{{"type":"filestream"}}}}"#
                ),
                ("2026-11-24T10:00:01.000Z", "lb1", "haproxy"),
            ),
            // ECS host object, message alone.
            (
                format!(
                    r#"{{"@timestamp":"2026-11-24T10:00:01.000Z","host":{{"name":"lb2","ip":["10.0.0.2"]}},"message":"{down}"}}"#
                ),
                ("2026-11-24T10:00:01.000Z", "lb2", "-"),
            ),
        ];
        for (line, (time, host, program)) in &cases {
            let env = open(line.as_bytes());
            assert_eq!(env.kind, Kind::Shipped, "{line}");
            let h = header(&env);
            assert_eq!(h.msg, plain.as_bytes(), "{line}");
            assert_eq!(seen(line).0, *time, "{line}");
            assert_eq!(h.host, Some(host.as_bytes()), "{line}");
            assert_eq!(h.program.unwrap_or(b"-"), program.as_bytes(), "{line}");
        }
        // A JSON line with no message, or a message that is not text, is
        // no record: counted unparsed above.
        for line in [
            r#"{"level":"info","ts":1795514401.25,"caller":"main.go:42"}"#,
            r#"{"message":{"text":"x"},"@timestamp":"2026-11-24T10:00:01Z"}"#,
            r#"{"message":"x""#,
        ] {
            assert!(peel(line.as_bytes()).is_none(), "{line}");
        }
    }

    #[test]
    fn haproxy_stdout_through_the_journal_is_read_inside() {
        // HAProxy under systemd logging to stdout, as rsyslog writes what
        // imjournal read: the outer header is journald's, the frame inside
        // HAProxy's (its `<134>` kept: journald takes `<0>`..`<7>` only).
        let tag = "Dec  2 10:00:01 lb1 haproxy[8]: ";
        let iso = "2026-12-02T10:00:01+0000 lb1 haproxy[8]: ";
        let msg = "Server a/b is DOWN.";
        for (outer, inner, time) in [
            // rfc3164: the inner date (no year either way).
            (
                tag,
                "<129>Dec  2 10:00:00 localhost haproxy[8]: ",
                "2026-12-02T10:00:00.000Z",
            ),
            // local (no host), and an outer date with an offset: it says more.
            (
                iso,
                "<129>Dec  2 10:00:00 haproxy[8]: ",
                "2026-12-02T10:00:01.000Z",
            ),
            // rfc5424: the inner date, with its fraction and offset.
            (
                tag,
                "<129>1 2026-12-02T19:00:00.250+09:00 - haproxy 8 - - ",
                "2026-12-02T10:00:00.250Z",
            ),
            // rfc5424 to journald's syslog socket (`log /dev/log format
            // rfc5424`): the PRI taken off, the rest kept as the message.
            (
                tag,
                "1 2026-12-02T19:00:00.250+09:00 - haproxy 8 - - ",
                "2026-12-02T10:00:00.250Z",
            ),
            // priority: a PRI alone, the outer date.
            (tag, "<129>", "2026-12-02T10:00:01.000Z"),
            // iso, and timed once journald took its `<1>` off.
            (
                tag,
                "2026-12-02T10:00:00.125+00:00 ",
                "2026-12-02T10:00:00.125Z",
            ),
        ] {
            let line = format!("{outer}{inner}{msg}");
            let h = look_inside(syslog::parse(line.as_bytes()));
            assert_eq!(h.msg, msg.as_bytes(), "{line}");
            // The machine is journald's, whatever HAProxy's header says.
            assert_eq!(h.host, Some(&b"lb1"[..]), "{line}");
            assert_eq!(h.program, Some(&b"haproxy"[..]), "{line}");
            assert_eq!(seen(&line).0, time, "{line}");
            if inner.starts_with('<') {
                assert_eq!(h.severity(), Some(1), "{line}");
            }
        }
        // `journalctl -o json` of the same: the journal's host, and its
        // time (UTC) over HAProxy's date with no zone.
        let json = "{\"__REALTIME_TIMESTAMP\":\"1796205601250000\",\"_HOSTNAME\":\"lb1\",\"MESSAGE\":\"<129>Dec  2 10:00:00 localhost haproxy[8]: Server a/b is DOWN.\"}";
        assert_eq!(
            seen(json),
            ("2026-12-02T10:00:01.250Z".into(), "lb1".into(), msg.into())
        );
        // What only looks like a frame is the message; a request line
        // (its client first) is not looked into.
        for msg in [
            "<x>Server a/b is DOWN.",
            "<999>Server a/b is DOWN.",
            "<1",
            "2026-12-02 was a Wednesday",
            "1 2026-12-02 was a Wednesday",
            "1 active and 0 backup servers left.",
            "10.0.0.1:4000 [02/Dec/2026:10:00:00.000] fe be/s 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
            "2001:db8::1:4000 [02/Dec/2026:10:00:00.000] fe be/s 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
        ] {
            let line = format!("{tag}{msg}");
            let h = look_inside(syslog::parse(line.as_bytes()));
            assert_eq!(h, syslog::parse(line.as_bytes()), "{line}");
            assert_eq!(h.msg, msg.as_bytes(), "{line}");
        }
    }

    #[test]
    fn what_is_not_an_envelope_is_left_alone() {
        for line in [
            "<134>Nov 24 16:21:15 haproxy[4061]: 127.0.0.1:44128 [24/Nov/2026:16:21:15.230] fe be/s 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 {a|b} \"GET / HTTP/1.1\"",
            "Nov 24 16:21:15 lb1 haproxy[4061]: Server a/b is DOWN.",
            "2026-11-24T16:21:13.123456+00:00 lb1 haproxy[4061]: Server a/b is DOWN.",
            "127.0.0.1:44128 [24/Nov/2026:16:21:15.230] fe be/s 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 {a|b} \"GET / HTTP/1.1\"",
            "Server be | x is DOWN.",
            "{\"level\":\"info\"}",
            "[WARNING]  (8) : Server a/b is DOWN.",
        ] {
            let env = open(line.as_bytes());
            assert_eq!(env, Envelope::none(line.as_bytes()), "{line}");
        }
        // A stream name is never a host, a broken JSON line is its own line.
        assert_eq!(
            seen("2026-11-24T16:23:14Z stdout F Server a/b is DOWN.").1,
            "-"
        );
        assert_eq!(open(b"{\"log\":\"x").inner.as_ref(), b"{\"log\":\"x");
    }

    #[test]
    fn cri_parts() {
        let e = open(b"2026-11-24T16:23:14.1Z stdout P 127.0.0.1:1 [24/Nov");
        assert!(e.partial);
        assert_eq!(e.inner.as_ref(), b"127.0.0.1:1 [24/Nov");
    }

    /// Docker's json-file: a record whose `log` is a full 16 KiB buffer
    /// without a newline is a part (its daemon cuts lines there), the one
    /// with the newline ends the line; a short `log` without one is a
    /// whole line.
    #[test]
    fn json_file_parts() {
        let text = "x".repeat(DOCKER_BUFFER);
        let part =
            format!(r#"{{"log":"{text}","stream":"stdout","time":"2026-11-24T16:23:14.1Z"}}"#);
        let e = open(part.as_bytes());
        assert!(e.partial && continued(part.as_bytes()));
        assert_eq!(e.inner.as_ref(), text.as_bytes());
        let last = br#"{"log":"/2026:16:23:14.000] fe\n","stream":"stdout","time":"2026-11-24T16:23:14.1Z"}"#;
        let e = open(last);
        assert_eq!((e.kind, e.partial), (Kind::DockerJson, false));
        assert!(!continued(last));
        let shipped = br#"{"log":"127.0.0.1:1 [24/Nov/2026:16:23:14.000] fe","stream":"stdout","time":"2026-11-24T16:23:14.1Z"}"#;
        let e = open(shipped);
        assert_eq!((e.kind, e.partial), (Kind::DockerJson, false));
        assert!(!continued(shipped));
    }
}
