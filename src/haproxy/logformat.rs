//! Request lines of any `log-format`: the values a compiled
//! [`LogFormat`] reads out of a line, put where hapwatch's [`Request`]
//! keeps them. What the format lacks stays absent (`-1` timers, no
//! status, no server), never invented.

use crate::bytes::digits;
use crate::patterns::logformat::{unquote, Field, LogFormat};
use crate::patterns::PatternSet;
use crate::time::{self, Millis};

use super::request::{self, Mode, Request, Steps};

/// The accept date of a line whose format has none: the syslog header's
/// time is put there by the engine.
pub const UNDATED: Millis = Millis::MIN;

/// `123`, `-1`, `+543`, `-`: the value and whether it had a `+`.
fn number(v: &[u8], hexa: bool) -> Option<(i64, bool)> {
    if hexa {
        let s = std::str::from_utf8(v).ok()?;
        return i64::from_str_radix(s, 16).ok().map(|n| (n, false));
    }
    let (neg, plus, d) = match v {
        [b'-', d @ ..] => (true, false, d),
        [b'+', d @ ..] => (false, true, d),
        d => (false, false, d),
    };
    let n = digits(d)? as i64;
    Some((if neg { -n } else { n }, plus))
}

/// `24/Nov/2026:16:21:15 +0100` on UTC.
fn zoned_date(v: &[u8]) -> Option<Millis> {
    let (t, n) = time::parse_haproxy_date(v)?;
    match v.get(n..)? {
        [b' ', s @ (b'+' | b'-'), z @ ..] if z.len() == 4 => {
            let hhmm = digits(z)? as i64;
            let off = ((hhmm / 100) * 60 + hhmm % 100) * 60_000;
            Some(if *s == b'-' { t + off } else { t - off })
        }
        _ => None,
    }
}

/// The request a line of format `f` logs, or `None` if it is not one.
pub fn parse<'a>(f: &LogFormat, line: &'a [u8]) -> Option<Request<'a>> {
    if let Some(r) = after_prefix(f, line) {
        return Some(r);
    }
    let caps = f.read(line)?;
    let mut r = Request::new(if f.http { Mode::Http } else { Mode::Tcp });
    r.accept = UNDATED;
    r.steps = match f.steps_told {
        true => Steps::Told,
        false => Steps::Untold,
    };
    // Dates by precision: milliseconds, then a zoned second, then %Ts.
    let (mut dated_ms, mut zoned, mut epoch, mut ms, mut tq) = (None, None, None, None, None);
    for (k, item) in f.items.iter().enumerate() {
        let Some(v) = caps.get(k) else { continue };
        let v = unquote(v);
        let n = || number(v, item.hexa);
        let u = || n().map_or(0, |(x, _)| x.clamp(0, u32::MAX as i64) as u32);
        match item.field {
            // The address alone, without the brackets of `[::1]`.
            Field::ClientIp => r.set_client(
                v.strip_prefix(b"[")
                    .and_then(|a| a.strip_suffix(b"]"))
                    .unwrap_or(v),
            ),
            Field::ClientPort => r.set_client_port(n().and_then(|(p, _)| u16::try_from(p).ok())),
            Field::FrontendTransport => {
                (r.frontend, r.tls) = match v.strip_suffix(b"~") {
                    Some(fe) => (fe, true),
                    None => (v, false),
                }
            }
            Field::Frontend => {
                if r.frontend.is_empty() {
                    r.frontend = v;
                }
            }
            Field::Backend => r.backend = v,
            Field::Server => r.server = v,
            Field::Timer(t) => {
                let (x, plus) = n().unwrap_or((-1, false));
                r.timers[t] = request::timer(x).unwrap_or(-1);
                r.logasap |= plus;
            }
            Field::Tq => tq = n().map(|(x, _)| x),
            // A status that no integer holds is no status (not one wrapped).
            Field::Status => r.status = n().and_then(|(x, _)| i32::try_from(x).ok()).unwrap_or(-1),
            Field::Bytes => {
                let (b, plus) = n().unwrap_or((0, false));
                (r.bytes, r.bytes_partial) = (b.max(0) as u64, plus);
            }
            Field::ReqCookie => r.req_cookie = v,
            Field::ResCookie => r.res_cookie = v,
            Field::Termination => r.termination = v,
            Field::ActConn => r.actconn = u(),
            Field::FeConn => r.feconn = u(),
            Field::BeConn => r.beconn = u(),
            Field::SrvConn => r.srv_conn = u(),
            Field::Retries => {
                r.retries = u();
                r.redispatched = v.first() == Some(&b'+');
            }
            Field::SrvQueue => r.srv_queue = u(),
            Field::BackendQueue => r.backend_queue = u(),
            Field::DateMs => {
                dated_ms = dated_ms.or_else(|| time::parse_haproxy_date(v).map(|(t, _)| t))
            }
            Field::DateZoned => zoned = zoned.or_else(|| zoned_date(v)),
            Field::Epoch => epoch = n().and_then(|(s, _)| s.checked_mul(1000)),
            Field::Millis => ms = n().map(|(x, _)| x.clamp(0, 999)),
            Field::RequestLine => r.request_line = Some(v),
            // The load balancer is the syslog header's host, as for its
            // health lines (which never carry %H): one key for both.
            Field::LogOrigin => r.steps = Steps::of_origin(v),
            Field::Hostname | Field::Text => {}
        }
    }
    if r.timers[0] == -1 {
        if let Some(t) = tq {
            r.timers[0] = t;
        }
    }
    if let Some(t) = dated_ms {
        r.accept = t;
    } else if let Some(t) = zoned.or(epoch).and_then(|t| t.checked_add(ms.unwrap_or(0))) {
        r.accept = t;
        r.zoned = true;
    }
    Some(r)
}

/// A line of a built-in format with text items put in front (`%H %ci:%cp
/// [%tr] ...`): the front read by the scanner, the rest by the built-in's
/// hand-written parser, whose lines the tests hold equal to the compiled
/// format's. The front's items name only text, which a request does not
/// keep. `None` sends the line down the general path.
fn after_prefix<'a>(f: &LogFormat, line: &'a [u8]) -> Option<Request<'a>> {
    let p = f.prefix.as_ref()?;
    let (rest, origin) = f.prefix_end_and_origin(line)?;
    let mut r = request::parse(&line[rest..])?;
    if let Some(v) = origin {
        r.steps = Steps::of_origin(v);
    }
    fits(&p.builtin, &r).then_some(r)
}

/// Whether the hand-written parser read `r` as the built-in format `name`
/// (patterns/formats.toml) writes it: it reads all of them, and a format
/// reads only its own lines.
fn fits(name: &str, r: &Request) -> bool {
    match name {
        "tcplog" => r.mode == Mode::Tcp,
        "httplog-clf" => r.mode == Mode::Clf,
        // The request's closing quote ends the line: no TLS fields after it.
        "httplog" | "httplog-1.x" => r.mode == Mode::Http && r.tail.ends_with(b"\""),
        "httpslog" => r.mode == Mode::Http && r.http().is_some_and(|h| h.tls_info.is_some()),
        _ => false,
    }
}

/// A request in one of the formats the patterns name: a format declared
/// for the line's frontend first, then the others in order.
pub fn parse_any<'a>(p: &PatternSet, line: &'a [u8]) -> Option<Request<'a>> {
    first_format(p, line, parse).map(|(r, _)| r)
}

/// A request in one of the formats that are a built-in one with items in
/// front, read as [`parse_any`] would choose among those alone. Their
/// lines end as the built-in's do, which no health message does: they may
/// be tried before the health patterns, as built-in lines are. True with
/// it when the format was declared for the line's frontend.
pub fn parse_prefixed<'a>(p: &PatternSet, line: &'a [u8]) -> Option<(Request<'a>, bool)> {
    first_format(p, line, after_prefix)
}

/// The first format `read` reads `line` with, and whether it is one
/// declared for the line's frontend.
fn first_format<'a>(
    p: &PatternSet,
    line: &'a [u8],
    read: impl Fn(&LogFormat, &'a [u8]) -> Option<Request<'a>>,
) -> Option<(Request<'a>, bool)> {
    let formats = || p.formats.iter().filter(|f| !f.specialised);
    for f in formats() {
        let Some(g) = &f.frontend else { continue };
        let Some(r) = read(f, line) else { continue };
        if g.matches_bytes(r.frontend) {
            return Some((r, true));
        }
    }
    formats()
        .filter(|f| f.frontend.is_none())
        .find_map(|f| read(f, line))
        .map(|r| (r, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(f: &str, line: &'a str) -> Request<'a> {
        let lf = LogFormat::compile("t", f).unwrap();
        parse(&lf, line.as_bytes()).unwrap_or_else(|| panic!("no match: {line}"))
    }

    #[test]
    fn hostname_first_and_a_request_id() {
        let r = req(
            "%H %ID %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r",
            r#"lb-1 7F00:A3 10.0.0.1:5000 [24/Nov/2026:16:21:15.230] fe~ be/s1 0/1/2/30/40 503 12 SC-- 5/4/3/2/+1 0/7 "GET / HTTP/1.1""#,
        );
        assert_eq!(
            (r.client(), r.client_port()),
            (&b"10.0.0.1"[..], Some(5000))
        );
        assert_eq!(
            (r.frontend, r.tls, r.backend, r.server),
            (&b"fe"[..], true, &b"be"[..], &b"s1"[..])
        );
        assert_eq!(
            (r.timers, r.status, r.bytes),
            ([0, 1, 2, 30, 40, -1], 503, 12)
        );
        assert_eq!((r.retries, r.redispatched, r.backend_queue), (1, true, 7));
        assert!(r.is_error());
        assert_eq!(
            time::format_rfc3339_ms(r.accept),
            "2026-11-24T16:21:15.230Z"
        );
        assert!(!r.zoned);
        assert_eq!(r.http().unwrap().uri, b"/");
    }

    #[test]
    fn zoned_and_epoch_dates_are_utc() {
        let r = req(
            "%ci [%trg] %b/%s %ST",
            "1.2.3.4 [24/Nov/2026:17:21:15 +0100] be/s 200",
        );
        assert!(r.zoned);
        assert_eq!(
            time::format_rfc3339_ms(r.accept),
            "2026-11-24T16:21:15.000Z"
        );
        let r = req("%Ts.%ms %b/%s %{+X}Ts", "1795537275.230 be/s 6B05B97B");
        assert_eq!(
            time::format_rfc3339_ms(r.accept),
            "2026-11-24T16:21:15.230Z"
        );
        let r = req("%b/%s %ST", "be/s 200");
        assert_eq!((r.accept, r.timers), (UNDATED, [-1; 6]));
        // Seconds past any date in milliseconds (18 digits): no date, not
        // one wrapped around (nor, with overflow checks, a panic).
        let r = req("%Ts %b/%s %ST", "999999999999999999 be/s 200");
        assert_eq!(r.accept, UNDATED);
    }

    /// A tunnel's Tt past 2^31 ms (24.8 days) is its value; one past any
    /// process's life is unknown, as an unreadable timer is.
    #[test]
    fn long_timers_and_impossible_ones() {
        let r = req("%b/%s %Tw/%Tc/%Tt", "be/s 0/1/2600000000");
        assert_eq!(r.timers[5], 2_600_000_000);
        let r = req("%b/%s %Tw/%Tc/%Tt", "be/s 0/1/999999999999999999");
        assert_eq!(r.timers[5], -1);
    }

    #[test]
    fn tcp_format_and_absent_values() {
        let r = req(
            "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq",
            "[::1]:80 [24/Nov/2026:16:21:15.230] fe be/<NOSRV> -1/-1/+5 0 SC 0/0/0/0/0 0/0",
        );
        assert_eq!(
            (r.mode, r.client(), r.server),
            (Mode::Tcp, &b"::1"[..], &b"<NOSRV>"[..])
        );
        assert_eq!((r.timers[1], r.timers[5], r.logasap), (-1, 5, true));
    }
}
