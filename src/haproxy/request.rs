//! HAProxy request lines: `option httplog`, `option httpslog`, `option tcplog`
//! and `option httplog clf` (HAProxy 1.8 to 3.x, and 1.x's `Tq/.../Tt`).
//!
//! ```text
//! httplog: %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r
//! httpslog: httplog + %[fc_err]/%[ssl_fc_err,hex]/... %[ssl_fc_sni]/%sslv/%sslc
//! tcplog:  %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq
//! clf:     %{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl
//! ```
//!
//! Borrowed slices only: this runs for every line of a multi-gigabyte log and
//! allocates nothing.

use nom::{bytes::complete::tag, IResult, Parser};

use crate::bytes::{digits, find};
use crate::time::{self, Millis};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Http,
    Tcp,
    Clf,
}

/// The timers, in HAProxy's names. `-1` means "this phase never completed"
/// (HAProxy's own convention) or "not logged in this format".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Timer {
    TR = 0,
    Tw = 1,
    Tc = 2,
    Tr = 3,
    Ta = 4,
    Tt = 5,
}

impl Timer {
    pub const ALL: [Timer; 6] = [
        Timer::TR,
        Timer::Tw,
        Timer::Tc,
        Timer::Tr,
        Timer::Ta,
        Timer::Tt,
    ];
    pub fn name(self) -> &'static str {
        ["TR", "Tw", "Tc", "Tr", "Ta", "Tt"][self as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub mode: Mode,
    /// The client as the line logged it; read by [`Request::client`] and
    /// [`Request::client_port`].
    pub client_logged: Client<'a>,
    /// Accept date, `[%tr]` / `[%t]`: the event time of a request.
    pub accept: Millis,
    /// Frontend name without the `~` that marks a TLS listener.
    pub frontend: &'a [u8],
    pub tls: bool,
    pub backend: &'a [u8],
    /// Server name, or `<NOSRV>` when none was chosen.
    pub server: &'a [u8],
    /// `-1` for a phase that never completed; HAProxy's own are `long`s
    /// (a tunnel's `Tt` passes 2^31 ms after 24.8 days).
    pub timers: [i64; 6],
    /// `+` before the last timer: `option logasap` logged before the end.
    pub logasap: bool,
    /// HTTP status; `-1` for an aborted request or a TCP line.
    pub status: i32,
    pub bytes: u64,
    /// `+` before the byte count (logasap).
    pub bytes_partial: bool,
    pub req_cookie: &'a [u8],
    pub res_cookie: &'a [u8],
    /// Termination state, e.g. `----`, `SC--`, `cD`.
    pub termination: &'a [u8],
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srv_conn: u32,
    pub retries: u32,
    /// `+` before the retries: the request was redispatched.
    pub redispatched: bool,
    pub srv_queue: u32,
    pub backend_queue: u32,
    /// What follows the queues: captured headers, the quoted request and
    /// httpslog's TLS fields (HTTP); empty for TCP. Split on demand by the
    /// methods below: `analyze` needs none of it, so it costs nothing there.
    pub tail: &'a [u8],
    /// The request line where a format puts it apart (CLF, a `log-format`).
    pub request_line: Option<&'a [u8]>,
    /// The accept date carried a zone (`%trg`, `%T`, `%Ts`): it is UTC.
    pub zoned: bool,
    /// What the line tells of `log-steps` ([`Request::is_earlier_step`]).
    pub steps: Steps,
}

/// What a line tells of the step of its transaction it was written at
/// (HAProxy 3.1+'s `log-steps`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steps {
    /// Nothing: a `log-format` without the log origin (`%OG`) nor what
    /// else tells (below).
    Untold,
    /// The termination state, and the status (HTTP) or `Tw` and `Tc`
    /// (TCP): HAProxy's own formats, and a `log-format` that logs them.
    Told,
    /// `%OG` says the line was written before the end: `txn_accept`,
    /// `txn_request`, `txn_connect`, `txn_response`.
    Before,
    /// `%OG` says it was written at the end (`txn_close`), or at a session
    /// error or kill, or names an origin HAProxy may add later.
    End,
}

impl Steps {
    /// What a `%OG` value says.
    pub fn of_origin(v: &[u8]) -> Steps {
        match v {
            b"txn_accept" | b"txn_request" | b"txn_connect" | b"txn_response" => Steps::Before,
            _ => Steps::End,
        }
    }
}

/// The client as a line logged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client<'a> {
    /// `%ci:%cp`, as the built-in formats write it: split only when asked
    /// (most reports never do, and the split was 3% of a line's parse).
    Joined(&'a [u8]),
    /// The address alone, and the port where the format logs it (`%cp`).
    Apart(&'a [u8], Option<u16>),
}

/// The parts of an HTTP line's tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HttpParts<'a> {
    pub req_headers: Option<&'a [u8]>,
    pub res_headers: Option<&'a [u8]>,
    /// `GET`, or `<BADREQ>`.
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub version: &'a [u8],
    /// httpslog's trailing TLS fields, as logged.
    pub tls_info: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    /// A request with nothing known yet: `-1` timers and status, no names.
    pub fn new(mode: Mode) -> Request<'a> {
        Request {
            mode,
            client_logged: Client::Apart(b"", None),
            accept: 0,
            frontend: b"",
            tls: false,
            backend: b"",
            server: b"",
            timers: [-1; 6],
            logasap: false,
            status: -1,
            bytes: 0,
            bytes_partial: false,
            req_cookie: b"",
            res_cookie: b"",
            termination: b"",
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srv_conn: 0,
            retries: 0,
            redispatched: false,
            srv_queue: 0,
            backend_queue: 0,
            tail: b"",
            request_line: None,
            zoned: false,
            steps: Steps::Untold,
        }
    }

    /// A line HAProxy 3.1+ wrote at an earlier step of a transaction than
    /// its end (`log-steps`, `txn_accept`, `txn_request`, `txn_connect`):
    /// no response yet, or no server connection yet, though nothing went
    /// wrong. A line written at the end has a termination state other than
    /// `--` when a phase never completed (a client that left, a server that
    /// refused), and HTTP one that ended normally has a status; so a
    /// normal termination with no status (HTTP: `-1`, or `0` at accept),
    /// or with no connection (TCP: `Tw` or `Tc` of `-1`), is a step. The
    /// response step and the connect step (TCP) look like the end and
    /// are not told apart that way; a `log-format` with `%OG` (the log
    /// origin) tells every step by name.
    #[inline(always)]
    pub fn is_earlier_step(&self) -> bool {
        match self.steps {
            Steps::Told => self.is_unfinished_step(),
            Steps::Before => true,
            Steps::Untold | Steps::End => false,
        }
    }

    /// [`Request::is_earlier_step`] for a line whose steps are
    /// [`Steps::Told`] (every line of HAProxy's own formats).
    #[inline(always)]
    pub fn is_unfinished_step(&self) -> bool {
        // The status or the timers first: nearly every line has them.
        let unfinished = match self.mode {
            Mode::Http | Mode::Clf => self.status <= 0,
            Mode::Tcp => (self.timers[1] | self.timers[2]) < 0,
        };
        unfinished && self.termination.starts_with(b"--")
    }

    /// Captured headers, request line and TLS fields; `None` for TCP.
    pub fn http(&self) -> Option<HttpParts<'a>> {
        let mut p = HttpParts::default();
        let req = match self.request_line {
            Some(r) => r,
            None => {
                if self.mode != Mode::Http {
                    return None;
                }
                let mut i = self.tail;
                if let Some((h, rest)) = captured(i) {
                    p.req_headers = Some(h);
                    i = rest;
                    if let Some((h, rest)) = captured(i) {
                        p.res_headers = Some(h);
                        i = rest;
                    }
                }
                let (req, tls) = quoted_request(i)?;
                p.tls_info = tls;
                req
            }
        };
        (p.method, p.uri, p.version) = request_line(req);
        Some(p)
    }

    /// Client address without the port (IPv4, IPv6 without its brackets,
    /// `unix`).
    #[inline]
    pub fn client(&self) -> &'a [u8] {
        match self.client_logged {
            Client::Joined(w) => split_client(w).0,
            Client::Apart(addr, _) => addr,
        }
    }

    pub fn client_port(&self) -> Option<u16> {
        match self.client_logged {
            Client::Joined(w) => split_client(w).1,
            Client::Apart(_, port) => port,
        }
    }

    /// The client address alone (a format's `%ci`, CLF's client); a port
    /// logged apart stays.
    pub fn set_client(&mut self, addr: &'a [u8]) {
        self.client_logged = Client::Apart(addr, self.client_port());
    }

    /// The port logged apart (a format's `%cp`); the address stays.
    pub fn set_client_port(&mut self, port: Option<u16>) {
        self.client_logged = Client::Apart(self.client(), port);
    }

    pub fn timer(&self, t: Timer) -> i64 {
        self.timers[t as usize]
    }

    /// 1..=5 for 1xx..5xx, 0 for anything else (including `-1`).
    pub fn status_class(&self) -> usize {
        match self.status {
            100..=599 => (self.status / 100) as usize,
            _ => 0,
        }
    }

    /// Server-side termination: the first letter of the state is `S`
    /// (the server aborted or refused) or `s` (server-side timeout).
    pub fn server_side_termination(&self) -> bool {
        matches!(self.termination.first(), Some(b'S' | b's'))
    }

    /// What hapwatch calls an error: a 5xx or a server-side termination.
    pub fn is_error(&self) -> bool {
        self.status_class() == 5 || self.server_side_termination()
    }
}

type R<'a, T> = IResult<&'a [u8], T>;

fn err(i: &[u8]) -> nom::Err<nom::error::Error<&[u8]>> {
    nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Verify))
}

/// A space-delimited word and the single space after it (or end of input).
/// (The same as `take_till1(|c| c == b' ')` plus the space, written out:
/// it runs a dozen times per line and the closure did not inline well.)
#[inline]
fn word(i: &[u8]) -> R<'_, &[u8]> {
    match split_word(i) {
        Some((w, used)) => Ok((&i[used..], w)),
        None => Err(err(i)),
    }
}

/// The non-empty word that opens `i` and the bytes it takes with its space
/// (or the end): what [`word`] and [`Cursor::word`] both read.
#[inline(always)]
fn split_word(i: &[u8]) -> Option<(&[u8], usize)> {
    match find(i, b' ') {
        Some(0) => None,
        Some(n) => Some((&i[..n], n + 1)),
        None if i.is_empty() => None,
        None => Some((i, i.len())),
    }
}

/// `123`, `-1`, `+543`: value and whether it had a `+`.
fn signed(w: &[u8]) -> Option<(i64, bool)> {
    let (neg, plus, d) = match w {
        [b'-', d @ ..] => (true, false, d),
        [b'+', d @ ..] => (false, true, d),
        d => (false, false, d),
    };
    let v = digits(d)? as i64;
    Some((if neg { -v } else { v }, plus))
}

fn num<T: TryFrom<i64>>(w: &[u8]) -> Option<T> {
    T::try_from(signed(w)?.0).ok()
}

#[inline]
fn rfind(b: &[u8], c: u8) -> Option<usize> {
    b.iter().rposition(|&x| x == c)
}

#[inline]
fn port(b: &[u8]) -> Option<u16> {
    u16::try_from(digits(b)?).ok()
}

/// `192.168.0.1:4242`, `[::1]:4242`, `fe80::1:49064` (port after the last
/// colon), `unix:1`.
fn split_client(w: &[u8]) -> (&[u8], Option<u16>) {
    match rfind(w, b':') {
        Some(i) => {
            let port = port(&w[i + 1..]);
            let addr = &w[..i];
            let addr = addr
                .strip_prefix(b"[")
                .and_then(|a| a.strip_suffix(b"]"))
                .unwrap_or(addr);
            (addr, port)
        }
        None => (w, None),
    }
}

/// `[24/Nov/2026:16:21:15.230]` and the space after it; whether it carried
/// a zone (then the time is UTC).
#[inline(always)]
fn accept_date(i: &[u8]) -> R<'_, (Millis, bool)> {
    let i = i.strip_prefix(b"[").ok_or_else(|| err(i))?;
    let (t, n) = time::parse_haproxy_date(i).ok_or_else(|| err(i))?;
    // CLF's `%trg` carries a zone: `06/Feb/2009:12:14:14 +0100`.
    let mut rest = &i[n..];
    let mut t = t;
    let mut zoned = false;
    if let [b' ', s @ (b'+' | b'-'), h1, h2, m1, m2, b']', ..] = rest {
        let d = |a: &u8, b: &u8| ((a - b'0') as i64) * 10 + (b - b'0') as i64;
        if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) {
            let off = (d(h1, h2) * 60 + d(m1, m2)) * 60_000;
            t -= if *s == b'-' { -off } else { off };
            rest = &rest[6..];
            zoned = true;
        }
    }
    let rest = rest.strip_prefix(b"] ").ok_or_else(|| err(rest))?;
    Ok((rest, (t, zoned)))
}

/// `{...}` captured headers (values separated by `|`, may hold spaces).
fn captured(i: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = i.strip_prefix(b"{")?;
    let end = find(body, b'}')?;
    let rest = &body[end + 1..];
    Some((&body[..end], rest.strip_prefix(b" ").unwrap_or(rest)))
}

/// `"GET /path HTTP/1.1"` into method, URI, version. HAProxy cuts long
/// lines (1024 bytes by default), so the closing quote may be missing.
fn request_line(r: &[u8]) -> (&[u8], &[u8], &[u8]) {
    if r == b"<BADREQ>" {
        return (r, b"", b"");
    }
    let (method, rest) = match find(r, b' ') {
        Some(s) => (&r[..s], &r[s + 1..]),
        None => return (r, b"", b""),
    };
    match rfind(rest, b' ') {
        Some(s) if rest[s + 1..].starts_with(b"HTTP/") => (method, &rest[..s], &rest[s + 1..]),
        _ => (method, rest, b""),
    }
}

/// The quoted request and what follows it (httpslog fields).
fn quoted_request(i: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let body = i.strip_prefix(b"\"")?;
    match rfind(body, b'"') {
        Some(end) => {
            let tail = body[end + 1..]
                .strip_prefix(b" ")
                .unwrap_or(&body[end + 1..]);
            Some((&body[..end], (!tail.is_empty()).then_some(tail)))
        }
        None => Some((body, None)),
    }
}

/// Parses one HAProxy message as a request line, or `None`.
#[inline]
pub fn parse(msg: &[u8]) -> Option<Request<'_>> {
    parse_gated(msg, |_| true)
}

/// [`parse`], reading an HTTP line of a native format no further than its
/// status when `wanted` turns that status down (`--errors`, `--status`:
/// most lines, whose rest halog does not read either). Such a line comes
/// back with its status, names, date and timers, and nothing after the
/// status (no bytes, termination state, connections, queues or request),
/// for the selection that turns it down to count it.
#[inline]
pub fn parse_gated(msg: &[u8], wanted: impl Fn(i32) -> bool) -> Option<Request<'_>> {
    // Cheap rejection: every format opens with the client, a word, then
    // ` [` (native) or ` - - [` (CLF).
    let sp = find(&msg[..msg.len().min(80)], b' ')?;
    if sp == 0 {
        return None;
    }
    let rest = &msg[sp + 1..];
    if rest.first() == Some(&b'[') {
        return parse_native(&msg[..sp], rest, wanted);
    }
    if rest.starts_with(b"- - [") {
        return parse_clf(msg).ok().map(|(_, r)| r);
    }
    None
}

/// The native formats (`httplog`, `httpslog`, `tcplog`) read in one pass:
/// each number is parsed as its bytes are scanned (not found as a word
/// first and read again), and the request is built once, at the end.
#[inline]
fn parse_native<'a>(
    client: &'a [u8],
    i: &'a [u8],
    wanted: impl Fn(i32) -> bool,
) -> Option<Request<'a>> {
    let (i, (accept, _)) = accept_date(i).ok()?;
    let mut c = Cursor { b: i, i: 0 };
    let frontend = c.word()?;
    let be_srv = c.word()?;
    let slash = find(be_srv, b'/')?;
    let (backend, server) = (&be_srv[..slash], &be_srv[slash + 1..]);
    // `TR/Tw/Tc/Tr/Ta` (HTTP) or `Tw/Tc/Tt` (TCP): the count says which.
    let (mode, timers, logasap) = c.timers()?;
    let http = mode == Mode::Http;
    let status = if http {
        let (v, _) = c.number()?;
        if !c.end_word() {
            return None;
        }
        let status = i32::try_from(v).ok()?;
        if !wanted(status) {
            let mut r = Request::new(mode);
            (r.accept, r.timers, r.logasap, r.status) = (accept, timers, logasap, status);
            return Some(named(r, client, frontend, backend, server));
        }
        status
    } else {
        -1
    };
    let (bytes, bytes_partial) = c.number()?;
    if !c.end_word() {
        return None;
    }
    let (req_cookie, res_cookie) = if http {
        (c.word()?, c.word()?)
    } else {
        (&b""[..], &b""[..])
    };
    let termination = c.word()?;
    let u = |v: i64| v.clamp(0, u32::MAX as i64) as u32;
    // `actconn/feconn/beconn/srv_conn/retries` then `srv_queue/backend_queue`.
    let (actconn, _) = c.number_then(b'/')?;
    let (feconn, _) = c.number_then(b'/')?;
    let (beconn, _) = c.number_then(b'/')?;
    let (srv_conn, _) = c.number_then(b'/')?;
    let (retries, redispatched) = c.number_then(b' ')?;
    let (srv_queue, _) = c.number_then(b'/')?;
    let (backend_queue, _) = c.number()?;
    if !c.end_word() {
        return None;
    }
    let tail = &i[c.i..];
    // The request (and headers before it) are split on demand; an HTTP line
    // must still end with one to be an HTTP log line.
    if http && !matches!(tail.first(), Some(b'"' | b'{')) {
        return None;
    }
    let (frontend, tls) = tls_frontend(frontend);
    Some(Request {
        mode,
        client_logged: Client::Joined(client),
        accept,
        frontend,
        tls,
        backend,
        server,
        timers,
        logasap,
        status,
        bytes: bytes.max(0) as u64,
        bytes_partial,
        req_cookie,
        res_cookie,
        termination,
        actconn: u(actconn),
        feconn: u(feconn),
        beconn: u(beconn),
        srv_conn: u(srv_conn),
        retries: u(retries),
        redispatched,
        srv_queue: u(srv_queue),
        backend_queue: u(backend_queue),
        tail: if http { tail } else { b"" },
        request_line: None,
        zoned: false,
        steps: Steps::Told,
    })
}

/// The longest timer read, in milliseconds (2^38, 8.7 years): HAProxy
/// keeps its timers as `long`s, and a tunnel's `Tt` passes 2^31 after 24.8
/// days, but no process runs for years. A longer one is no HAProxy line's
/// (the native and CLF parsers refuse it, a `log-format`'s is unknown), and
/// the bound keeps every sum of timers far from overflowing.
pub const MAX_TIMER: i64 = 1 << 38;

/// Every timer at most [`MAX_TIMER`]: their bits past it tested at once,
/// and one by one only when some are set (a `-1` sets them all).
#[inline(always)]
fn within(t: &[i64; 6]) -> bool {
    t.iter().fold(0, |all, &x| all | x) >> MAX_TIMER.trailing_zeros() == 0
        || t.iter().all(|&x| x <= MAX_TIMER)
}

/// A timer as read, or `None` past [`MAX_TIMER`].
#[inline]
pub fn timer(t: i64) -> Option<i64> {
    (t <= MAX_TIMER).then_some(t)
}

/// httpslog's frontend ends in `~`: its name without it, and whether.
#[inline(always)]
fn tls_frontend(frontend: &[u8]) -> (&[u8], bool) {
    match frontend.strip_suffix(b"~") {
        Some(f) => (f, true),
        None => (frontend, false),
    }
}

/// A request [`parse_gated`] stopped at: its names. Out of line, so that
/// the whole line's path stays as it was.
#[inline(never)]
fn named<'a>(
    mut r: Request<'a>,
    client: &'a [u8],
    frontend: &'a [u8],
    backend: &'a [u8],
    server: &'a [u8],
) -> Request<'a> {
    r.client_logged = Client::Joined(client);
    (r.frontend, r.tls) = tls_frontend(frontend);
    (r.backend, r.server) = (backend, server);
    r
}

/// Where [`parse_native`] is in a line.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// A non-empty word and the space after it (or the end of the line).
    #[inline(always)]
    fn word(&mut self) -> Option<&'a [u8]> {
        // No `IResult` to build and take apart five times a line.
        let (w, used) = split_word(self.b.get(self.i..)?)?;
        self.i += used;
        Some(w)
    }

    /// The timers word, `TR/Tw/Tc/Tr/Ta` (HTTP) or `Tw/Tc/Tt` (TCP), as
    /// the six timers (`-1` for those the mode does not log) and whether
    /// the last had a `+` (logasap). Read number by number into scalars,
    /// not into an array by index and copied out of it: the array lived in
    /// memory, written eight bytes a number and read back sixteen at a
    /// time (62 instructions a line more, callgrind; see BENCHMARKS.md).
    #[inline(always)]
    fn timers(&mut self) -> Option<(Mode, [i64; 6], bool)> {
        let (a, _) = self.number_then(b'/')?;
        let (b, _) = self.number_then(b'/')?;
        let (c, plus) = self.number()?;
        if !self.eat(b'/') {
            let t = [-1, a, b, -1, -1, c];
            return (self.end_word() && within(&t)).then_some((Mode::Tcp, t, plus));
        }
        let (d, _) = self.number_then(b'/')?;
        let (e, plus) = self.number()?;
        let t = [a, b, c, d, e, -1];
        (self.end_word() && within(&t)).then_some((Mode::Http, t, plus))
    }

    /// A number and the byte that must follow it (taken).
    #[inline(always)]
    fn number_then(&mut self, sep: u8) -> Option<(i64, bool)> {
        let n = self.number()?;
        self.eat(sep).then_some(n)
    }

    /// `123`, `-1`, `+543` (1 to 18 digits): value and whether it had a `+`.
    ///
    /// Most of a line's dozen numbers are one to three digits with no sign
    /// (timers, the status, connection counts): those are read from the
    /// four bytes at hand, without a loop, and a longer one goes on from
    /// its fourth digit. A sign, or fewer than four bytes left, take the
    /// general path, out of line ([`long_number`]). (Reading eight
    /// bytes at once was tried: more instructions, see BENCHMARKS.md.)
    #[inline(always)]
    fn number(&mut self) -> Option<(i64, bool)> {
        let rest = self.b.get(self.i..)?;
        if let [a, b, c, d, ..] = *rest {
            let [a, b, c, d] = [a, b, c, d].map(|x| x.wrapping_sub(b'0'));
            if a <= 9 {
                let v = if b > 9 {
                    self.i += 1;
                    a as i64
                } else if c > 9 {
                    self.i += 2;
                    (a * 10 + b) as i64
                } else if d > 9 {
                    self.i += 3;
                    a as i64 * 100 + (b * 10 + c) as i64
                } else {
                    // Four digits or more: on from the fourth.
                    let mut v = a as i64 * 100 + (b * 10 + c) as i64;
                    let mut n = 3;
                    for &ch in rest[3..].iter().take(16) {
                        let d = ch.wrapping_sub(b'0');
                        if d > 9 {
                            break;
                        }
                        v = v.wrapping_mul(10).wrapping_add(d as i64);
                        n += 1;
                    }
                    if n > 18 {
                        return None;
                    }
                    self.i += n;
                    v
                };
                return Some((v, false));
            }
        }
        let (v, plus, used) = long_number(rest)?;
        self.i += used;
        Some((v, plus))
    }

    #[inline(always)]
    fn eat(&mut self, ch: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&ch);
        self.i += hit as usize;
        hit
    }

    /// A word ends at a space (taken) or at the end of the line.
    #[inline(always)]
    fn end_word(&mut self) -> bool {
        match self.b.get(self.i) {
            Some(b' ') => {
                self.i += 1;
                true
            }
            None => true,
            _ => false,
        }
    }
}

/// [`Cursor::number`] for any number at the start of `rest`: signed, or
/// at the line's end; its value, whether it had a `+`, and the bytes it
/// took. A free function over a slice, not a method: a call that took the
/// cursor by reference kept its position in memory for the whole parse,
/// stored at every number and loaded back for the next.
#[inline(never)]
fn long_number(rest: &[u8]) -> Option<(i64, bool, usize)> {
    let (sign, digits) = match rest.split_first() {
        Some((&c @ (b'-' | b'+'), d)) => (c, d),
        _ => (0, rest),
    };
    // Most numbers are a few digits: the loop runs over the slice (no
    // bound to check) and the length is known when it stops. A 19th
    // digit only says "too long" (its value, wrapped, is dropped).
    let mut v: i64 = 0;
    let mut n = 0;
    for &ch in digits.iter().take(19) {
        let d = ch.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(d as i64);
        n += 1;
    }
    if n == 0 || n > 18 {
        return None;
    }
    let used = n + (sign != 0) as usize;
    Some((if sign == b'-' { -v } else { v }, sign == b'+', used))
}

/// A CLF field: `"quoted"` (quotes removed) or a bare word.
fn clf_field(i: &[u8]) -> R<'_, &[u8]> {
    if let Some(body) = i.strip_prefix(b"\"") {
        let end = find(body, b'"').ok_or_else(|| err(i))?;
        let rest = &body[end + 1..];
        Ok((rest.strip_prefix(b" ").unwrap_or(rest), &body[..end]))
    } else {
        word(i)
    }
}

fn parse_clf<'a>(i: &'a [u8]) -> R<'a, Request<'a>> {
    // `%{+Q}o` writes nothing for a plain CLF line; the client comes first.
    let (i, client) = word(i)?;
    let (i, _) = tag(&b"- - "[..]).parse(i)?;
    let (i, (accept, zoned)) = accept_date(i)?;
    // The request is quoted and may itself hold quotes escaped as #22.
    let (i, req) = clf_field(i)?;
    // `option tcplog clf` (3.x) orders its fields otherwise: its compiled
    // format (patterns/formats.toml) reads it.
    if req == b"TCP " {
        return Err(err(i));
    }
    let mut f = [&b""[..]; 22];
    let mut i = i;
    for slot in f.iter_mut() {
        let (rest, v) = clf_field(i)?;
        *slot = v;
        i = rest;
    }
    // status bytes "" "" cport ms fe be srv TR Tw Tc Tr Ta tsc ac fc bc sc rc sq bq
    let n = |w: &'a [u8]| num::<i64>(w).ok_or_else(|| err(w));
    let ms = n(f[5])?;
    let u = |v: i64| v.clamp(0, u32::MAX as i64) as u32;
    let (frontend, tls) = match f[6].strip_suffix(b"~") {
        Some(x) => (x, true),
        None => (f[6], false),
    };
    let mut timers = [-1i64; 6];
    for k in 0..5 {
        timers[k] = n(f[9 + k]).and_then(|t| timer(t).ok_or_else(|| err(f[9 + k])))?;
    }
    let (bytes, bytes_partial) = signed(f[1]).ok_or_else(|| err(f[1]))?;
    let (retries, redispatched) = signed(f[19]).ok_or_else(|| err(f[19]))?;
    let (client, _) = split_client(client);
    let r = Request {
        mode: Mode::Clf,
        client_logged: Client::Apart(client, port(f[4])),
        accept: accept + ms.clamp(0, 999),
        frontend,
        tls,
        backend: f[7],
        server: f[8],
        timers,
        logasap: signed(f[13]).is_some_and(|x| x.1),
        status: i32::try_from(n(f[0])?).map_err(|_| err(f[0]))?,
        bytes: bytes.max(0) as u64,
        bytes_partial,
        req_cookie: b"",
        res_cookie: b"",
        termination: f[14],
        actconn: u(n(f[15])?),
        feconn: u(n(f[16])?),
        beconn: u(n(f[17])?),
        srv_conn: u(n(f[18])?),
        retries: u(retries),
        redispatched,
        srv_queue: u(n(f[20])?),
        backend_queue: u(n(f[21])?),
        tail: i,
        request_line: Some(req),
        zoned,
        steps: Steps::Told,
    };
    // %CC %CS %hrl %hsl follow; hapwatch does not report them for CLF.
    Ok((b"", r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339_ms;

    fn p(s: &str) -> Request<'_> {
        parse(s.as_bytes()).unwrap_or_else(|| panic!("no parse: {s}"))
    }

    /// The steps HAProxy 3.2 wrote before a transaction's end
    /// (fixtures/log-steps), and lines written at the end that also lack a
    /// status or a connection, but because a phase failed.
    #[test]
    fn a_step_before_the_end_is_told_from_an_end_that_failed() {
        let at = "127.0.0.1:42466 [07/Dec/2026:08:05:56.896]";
        let steps = [
            r#"fe fe/<NOSRV> -1/-1/-1/-1/0 0 0 - - ---- 1/1/0/0/0 0/0 "<BADREQ>""#,
            r#"fe fe/<NOSRV> -1/-1/-1/-1/0 -1 0 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#,
            r#"fe be/s1 0/0/0/-1/0 -1 0 - - ---- 1/1/1/1/0 0/0 "GET / HTTP/1.1""#,
            "fe_tcp fe_tcp/<NOSRV> -1/-1/0 0 -- 1/1/0/0/0 0/0",
        ];
        for s in steps {
            assert!(p(&format!("{at} {s}")).is_earlier_step(), "{s}");
        }
        let ends = [
            // The response step and the close look alike: both count.
            r#"fe be/s1 0/0/0/1/1 200 454 - - ---- 1/1/1/1/0 0/0 "GET / HTTP/1.1""#,
            r#"fe be_dead/d1 0/0/-1/-1/3006 503 217 - - SC-- 1/1/0/0/3 0/0 "GET /dead HTTP/1.1""#,
            r#"fe fe/<NOSRV> -1/-1/-1/-1/5001 408 212 - - cR-- 1/1/0/0/0 0/0 "<BADREQ>""#,
            r#"fe fe/<NOSRV> -1/-1/-1/-1/200 400 0 - - CR-- 1/1/0/0/0 0/0 "<BADREQ>""#,
            r#"fe be/s1 10/0/1/-1/2012 -1 0 - - CD-- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#,
            r#"fe be/s1 0/0/0/12/+12 200 +300 - - ---- 1/1/1/1/0 0/0 "GET / HTTP/1.1""#,
            "fe_tcp be_tcp/s1 1/0/1 455 -- 1/1/0/0/0 0/0",
            "fe_tcp be_tcp/s1 1/-1/3001 0 SC 1/1/0/0/3 0/0",
            "fe_tcp be_tcp/s1 1/0/0 0 -- 1/1/1/1/0 0/0",
        ];
        for s in ends {
            assert!(!p(&format!("{at} {s}")).is_earlier_step(), "{s}");
        }
    }

    /// The short path of `Cursor::number` reads every number as the
    /// general one does: value, `+`, bytes taken, and refusals.
    #[test]
    fn numbers_read_the_same_on_the_short_path() {
        let digits = "98765432109876543210";
        let mut cases: Vec<String> = ["", "-", "+", " ", "/1", "x9", "0007/", "-0", "+ 1"]
            .map(String::from)
            .to_vec();
        for len in 1..=20 {
            for sign in ["", "-", "+"] {
                for tail in ["", " ", "/", "x", " 200", "/0/1", "9"] {
                    cases.push(format!("{sign}{}{tail}", &digits[..len]));
                }
            }
        }
        fn at(s: &[u8]) -> Cursor<'_> {
            Cursor { b: s, i: 0 }
        }
        for s in &cases {
            let mut short = at(s.as_bytes());
            let read = (short.number(), short.i);
            let general = long_number(s.as_bytes());
            let general = (
                general.map(|(v, plus, _)| (v, plus)),
                general.map_or(0, |g| g.2),
            );
            assert_eq!(read, general, "{s:?}");
        }
        let mut c = at(b"1/22/333/4444/+5 7");
        let http = (Mode::Http, [1, 22, 333, 4444, 5, -1], true);
        assert_eq!((c.timers(), c.number()), (Some(http), Some((7, false))));
        let mut c = at(b"1/22/+333 7");
        let tcp = (Mode::Tcp, [-1, 1, 22, -1, -1, 333], true);
        assert_eq!((c.timers(), c.number()), (Some(tcp), Some((7, false))));
        // Four timers, six, two, or one word too long: not a timers word.
        for s in ["1/2/3/4 ", "1/2/3/4/5/6 ", "1/2 ", "1/2/3x "] {
            assert_eq!(at(s.as_bytes()).timers(), None, "{s:?}");
        }
        // 19 digits are too many, with or without the short path.
        assert_eq!(at(b"1234567890123456789 ").number(), None);
    }

    #[test]
    fn httplog() {
        let r = p("127.0.0.1:44128 [24/Nov/2026:16:21:15.230] fe_http be_app/srv1 0/0/1/2/3 200 123 - - ---- 1/1/0/0/0 0/0 \"GET /p0 HTTP/1.1\"");
        assert_eq!(r.mode, Mode::Http);
        assert_eq!(r.client(), b"127.0.0.1");
        assert_eq!(r.client_port(), Some(44128));
        assert_eq!(format_rfc3339_ms(r.accept), "2026-11-24T16:21:15.230Z");
        assert_eq!(
            (r.frontend, r.backend, r.server),
            (&b"fe_http"[..], &b"be_app"[..], &b"srv1"[..])
        );
        assert_eq!(r.timers, [0, 0, 1, 2, 3, -1]);
        assert_eq!((r.status, r.bytes), (200, 123));
        assert_eq!(r.termination, b"----");
        let h = r.http().unwrap();
        assert_eq!(
            (h.method, h.uri, h.version),
            (&b"GET"[..], &b"/p0"[..], &b"HTTP/1.1"[..])
        );
    }

    #[test]
    fn refused_after_retries() {
        let r = p("10.0.0.1:1 [24/Nov/2026:16:21:15.231] fe be/s1 0/0/-1/-1/3003 503 217 - - SC-- 1/1/0/0/3 0/0 \"GET / HTTP/1.1\"");
        assert_eq!(r.timers, [0, 0, -1, -1, 3003, -1]);
        assert_eq!(r.retries, 3);
        assert!(r.is_error() && r.server_side_termination());
    }

    #[test]
    fn tcplog() {
        let r = p("127.0.0.1:37880 [24/Nov/2026:16:21:15.231] fe_tcp be_tcp/t1 1/0/1 120 CD 1/1/0/0/0 0/0");
        assert_eq!(r.mode, Mode::Tcp);
        assert_eq!(r.timers, [-1, 1, 0, -1, -1, 1]);
        assert_eq!((r.bytes, r.termination, r.status), (120, &b"CD"[..], -1));
    }

    #[test]
    fn httpslog() {
        let r = p("127.0.0.1:5 [24/Nov/2026:16:21:15.230] fe_tls~ be/s 0/0/0/0/0 200 5 - - ---- 1/1/0/0/0 0/0 \"GET /x HTTP/1.1\" 0/0000000000000000/0/0/0 -/TLSv1.3/TLS_AES_256_GCM_SHA384");
        assert!(r.tls);
        assert_eq!(r.frontend, b"fe_tls");
        let h = r.http().unwrap();
        assert_eq!(h.uri, b"/x");
        assert_eq!(
            h.tls_info,
            Some(&b"0/0000000000000000/0/0/0 -/TLSv1.3/TLS_AES_256_GCM_SHA384"[..])
        );
    }

    #[test]
    fn ipv6_plus_signs_and_headers() {
        let r = p("fe80::9379:c29e:6701:cef8:49064 [28/Nov/2019:16:36:55.883] fe keystone_admin/dvd-ctrl2.ctlplane.int.dvd.dev 0/0/1/-1/+5 -1 +543 - - CD-- 1/1/1/1/+14 0/0 {multiple | request | headers} {} \"GET /redirect_to?http://example.com/{}[]()|'\\^~*<> HTTP/2.0\"");
        assert_eq!(r.client(), b"fe80::9379:c29e:6701:cef8");
        assert_eq!(r.client_port(), Some(49064));
        assert_eq!(r.server, b"dvd-ctrl2.ctlplane.int.dvd.dev");
        assert_eq!((r.status, r.bytes, r.bytes_partial), (-1, 543, true));
        assert!(r.logasap && r.redispatched);
        assert_eq!(r.retries, 14);
        let h = r.http().unwrap();
        assert_eq!(h.req_headers, Some(&b"multiple | request | headers"[..]));
        assert_eq!(h.res_headers, Some(&b""[..]));
        assert_eq!(h.version, b"HTTP/2.0");
        assert_eq!(h.uri, b"/redirect_to?http://example.com/{}[]()|'\\^~*<>");
    }

    #[test]
    fn badreq_nosrv_truncated() {
        let r = p("1.2.3.4:5 [24/Nov/2026:16:21:15.230] fe fe/<NOSRV> -1/-1/-1/-1/0 400 187 - - PR-- 1/1/0/0/0 0/0 \"<BADREQ>\"");
        assert_eq!(
            (r.server, r.http().unwrap().method),
            (&b"<NOSRV>"[..], &b"<BADREQ>"[..])
        );
        let r = p("1.2.3.4:5 [24/Nov/2026:16:21:15.230] fe be/s 1/0/0/0/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET /very/long/cut");
        assert_eq!(r.http().unwrap().uri, b"/very/long/cut");
    }

    #[test]
    fn old_1x_timers() {
        let r = p("10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} \"GET /index.html HTTP/1.1\"");
        assert_eq!(r.timers[..5], [10, 0, 30, 69, 109]);
    }

    #[test]
    fn clf() {
        let r = p("10.0.1.2 - - [06/Feb/2009:12:14:14 +0100] \"GET /index.html HTTP/1.1\" 200 2750 \"\" \"\" 33317 661 \"http-in\" \"static\" \"srv1\" 10 0 30 69 109 \"----\" 1 1 1 1 0 0 0 \"\" \"\" \"\" \"\"");
        assert_eq!(r.mode, Mode::Clf);
        assert_eq!(format_rfc3339_ms(r.accept), "2009-02-06T11:14:14.661Z");
        assert_eq!(
            (r.backend, r.server, r.status),
            (&b"static"[..], &b"srv1"[..], 200)
        );
        assert_eq!(r.timers[..5], [10, 0, 30, 69, 109]);
        assert_eq!(r.termination, b"----");
        assert_eq!(r.client_port(), Some(33317));
        assert_eq!(r.http().unwrap().uri, b"/index.html");
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "[",
            "Server be/s is DOWN.",
            "1.2.3.4:5 [24/Nov/2026:16:21:15.230] fe be/s 1/2 200",
            "1.2.3.4:5 [24/Nov/2026:16:21:15.230] fe bes 1/0/0/0/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET /\"",
        ] {
            assert!(parse(s.as_bytes()).is_none(), "{s}");
        }
    }

    /// The one-pass reader keeps the word rules: each number group is a
    /// whole word, exactly 5 (HTTP) or 3 (TCP) timers, 5 connection counts,
    /// 2 queues, 1 to 18 digits, single spaces.
    /// A format's `%ci` and `%cp` may come in either order; a built-in
    /// line's `ci:cp` word is split when asked.
    #[test]
    fn the_client_either_way() {
        let mut a = Request::new(Mode::Http);
        a.set_client(b"10.0.0.1");
        a.set_client_port(Some(5000));
        let mut b = Request::new(Mode::Http);
        b.set_client_port(Some(5000));
        b.set_client(b"10.0.0.1");
        for r in [a, b] {
            assert_eq!(
                (r.client(), r.client_port()),
                (&b"10.0.0.1"[..], Some(5000))
            );
        }
        let r = p("[::1]:4242 [24/Nov/2026:16:21:15.231] fe be/s 1/2/3 4 -- 1/2/3/4/5 6/7");
        assert_eq!(r.client_logged, Client::Joined(b"[::1]:4242"));
        assert_eq!((r.client(), r.client_port()), (&b"::1"[..], Some(4242)));
    }

    #[test]
    fn field_shapes() {
        let http = |timers: &str, status: &str, bytes: &str, conns: &str, queues: &str| {
            format!("10.0.0.1:1 [24/Nov/2026:16:21:15.231] fe be/s {timers} {status} {bytes} - - ---- {conns} {queues} \"GET / HTTP/1.1\"")
        };
        let ok = http("1/2/3/4/5", "200", "10", "1/2/3/4/5", "6/7");
        let r = p(&ok);
        assert_eq!(r.timers, [1, 2, 3, 4, 5, -1]);
        assert_eq!(
            (r.actconn, r.feconn, r.beconn, r.srv_conn, r.retries),
            (1, 2, 3, 4, 5)
        );
        assert_eq!(
            (r.srv_queue, r.backend_queue, r.status, r.bytes),
            (6, 7, 200, 10)
        );
        assert_eq!(r.tail, b"\"GET / HTTP/1.1\"");
        // `+` flags: logasap on the last timer and the bytes, redispatch on
        // the retries; `-1` timers; a negative size is none.
        let flagged = http("0/0/-1/-1/+30", "-1", "+5", "1/1/1/1/+2", "0/0");
        let r = p(&flagged);
        assert_eq!(
            (r.timers[2], r.timers[4], r.logasap, r.status),
            (-1, 30, true, -1)
        );
        assert_eq!(
            (r.bytes, r.bytes_partial, r.retries, r.redispatched),
            (5, true, 2, true)
        );
        assert_eq!(
            p(&http("1/2/3/4/5", "200", "-7", "1/2/3/4/5", "6/7")).bytes,
            0
        );
        let long = "1".repeat(18);
        assert_eq!(
            p(&http("1/2/3/4/5", "200", &long, "1/2/3/4/5", "6/7")).bytes,
            111_111_111_111_111_111
        );
        for bad in [
            http("1/2/3/4", "200", "1", "1/2/3/4/5", "6/7"),
            http("1/2/3/4/5/6", "200", "1", "1/2/3/4/5", "6/7"),
            http("1/2/3/4/5x", "200", "1", "1/2/3/4/5", "6/7"),
            http("1/2//4/5", "200", "1", "1/2/3/4/5", "6/7"),
            http("1/2/3/4/5", "2x0", "1", "1/2/3/4/5", "6/7"),
            http("1/2/3/4/5", "99999999999", "1", "1/2/3/4/5", "6/7"),
            http("1/2/3/4/5", "200", &"1".repeat(19), "1/2/3/4/5", "6/7"),
            http("1/2/3/4/5", "200", &"9".repeat(25), "1/2/3/4/5", "6/7"),
            http("1/2/3/4/5", "200", "+", "1/2/3/4/5", "6/7"),
            http("1/-/3/4/5", "200", "1", "1/2/3/4/5", "6/7"),
            http("1/2/3/4/5", "200", "1", "1/2/3/4/+", "6/7"),
            http("1/2/3/4/5", "200", "1", "1/2/3/4", "6/7"),
            http("1/2/3/4/5", "200", "1", "1/2/3/4/5/6", "6/7"),
            http("1/2/3/4/5", "200", "1", "1/2/3/4/5", "6"),
            http("1/2/3/4/5", "200", "1", "1/2/3/4/5", "6/7/8"),
            http("1/2/3/4/5", "200", "1 ", "1/2/3/4/5", "6/7"),
            ok.replace(" \"GET", " GET"),
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad}");
        }
        // TCP: three timers, no status, no cookies; what follows the queues
        // is not read.
        let tcp = "10.0.0.1:1 [24/Nov/2026:16:21:15.231] fe be/s 1/2/3 40 CD 1/1/1/1/0 0/0";
        assert_eq!(p(tcp).tail, b"");
        assert!(parse(format!("{tcp} extra").as_bytes()).is_some());
        assert!(parse(tcp.replace(" 0/0", " 0/0/0").as_bytes()).is_none());
        assert!(parse(tcp.replace("1/2/3 ", "1/2/3/4 ").as_bytes()).is_none());
    }
}
