//! HAProxy's Custom log format language (configuration manual, section
//! 8.2.6) compiled into a regex that reads the lines the format makes
//! HAProxy write.
//!
//! The string is read the way HAProxy's `parse_logformat_string` (src/log.c)
//! reads it: items `%name`, `%{+Q,-X}name`, `%(key:type)name`,
//! `%[sample,converter]`, `%%` for a percent sign, `%o` setting flags for
//! every item after it, spaces as separators merged into one, anything else
//! literal text. Each item becomes a group shaped like what HAProxy writes
//! for it (a number, an address, a date, a word, free text), the whole
//! anchored at both ends: the regex crate's leftmost-first semantics with
//! lazy free text find where each item ends even when items hold spaces,
//! and it runs in linear time, so a hostile line costs no more than a long
//! one.
//!
//! This module only knows the language and the shapes; what each alias
//! means for a request is `haproxy::logformat`'s business.

use regex::bytes::{Regex, RegexBuilder};

mod scan;

/// What hapwatch reads out of an item: the aliases it uses by their role,
/// everything else as named text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    ClientIp,
    ClientPort,
    /// `%ft`: the frontend, `~` after it for a TLS listener.
    FrontendTransport,
    Frontend,
    Backend,
    Server,
    /// `%TR %Tw %Tc %Tr %Ta %Tt`, by the index of `haproxy::Timer`.
    Timer(usize),
    /// `%Tq` (HAProxy 1.x's request time, read as TR when TR is absent).
    Tq,
    /// `%OG`: the step of its transaction the line was written at
    /// (`log-steps`), or a session error.
    LogOrigin,
    Status,
    Bytes,
    ReqCookie,
    ResCookie,
    Termination,
    ActConn,
    FeConn,
    BeConn,
    SrvConn,
    Retries,
    SrvQueue,
    BackendQueue,
    /// `%t`, `%tr`: local time with milliseconds, no zone.
    DateMs,
    /// `%T`, `%Tl`, `%trg`, `%trl`: to the second, with a zone.
    DateZoned,
    /// `%Ts`: seconds since the epoch.
    Epoch,
    /// `%ms`: the accept date's milliseconds.
    Millis,
    /// `%r`: the request line.
    RequestLine,
    /// `%H`: the host name of the HAProxy that logged.
    Hostname,
    Text,
}

/// What an item's value looks like in the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Int,
    Ip,
    Word,
    DateMs,
    DateZoned,
    Text,
    /// `{a|b}` captured headers: nothing at all when none are declared.
    Captures,
    /// `%hrl`/`%hsl`: one word per declared capture, possibly none.
    CaptureList,
}

/// The aliases of the configuration manual (2.6 to 3.x), what hapwatch
/// makes of each and its shape.
const ALIASES: &[(&str, Field, Shape)] = &[
    ("T", Field::DateZoned, Shape::DateZoned),
    ("Tl", Field::DateZoned, Shape::DateZoned),
    ("Ts", Field::Epoch, Shape::Int),
    ("t", Field::DateMs, Shape::DateMs),
    ("ms", Field::Millis, Shape::Int),
    ("tr", Field::DateMs, Shape::DateMs),
    ("trg", Field::DateZoned, Shape::DateZoned),
    ("trl", Field::DateZoned, Shape::DateZoned),
    ("TR", Field::Timer(0), Shape::Int),
    ("Tw", Field::Timer(1), Shape::Int),
    ("Tc", Field::Timer(2), Shape::Int),
    ("Tr", Field::Timer(3), Shape::Int),
    ("Ta", Field::Timer(4), Shape::Int),
    ("Tt", Field::Timer(5), Shape::Int),
    ("Tq", Field::Tq, Shape::Int),
    ("Td", Field::Text, Shape::Int),
    ("Th", Field::Text, Shape::Int),
    ("Ti", Field::Text, Shape::Int),
    ("Tu", Field::Text, Shape::Int),
    ("B", Field::Bytes, Shape::Int),
    ("U", Field::Text, Shape::Int),
    ("CC", Field::ReqCookie, Shape::Word),
    ("CS", Field::ResCookie, Shape::Word),
    ("H", Field::Hostname, Shape::Word),
    ("HM", Field::Text, Shape::Word),
    ("HP", Field::Text, Shape::Word),
    ("HPO", Field::Text, Shape::Word),
    ("HQ", Field::Text, Shape::Word),
    ("HU", Field::Text, Shape::Word),
    ("HV", Field::Text, Shape::Word),
    ("ID", Field::Text, Shape::Text),
    ("ST", Field::Status, Shape::Int),
    ("ac", Field::ActConn, Shape::Int),
    ("b", Field::Backend, Shape::Word),
    ("bc", Field::BeConn, Shape::Int),
    ("bi", Field::Text, Shape::Ip),
    ("bp", Field::Text, Shape::Int),
    ("bq", Field::BackendQueue, Shape::Int),
    ("ci", Field::ClientIp, Shape::Ip),
    ("cp", Field::ClientPort, Shape::Int),
    ("f", Field::Frontend, Shape::Word),
    ("fc", Field::FeConn, Shape::Int),
    ("fi", Field::Text, Shape::Ip),
    ("fp", Field::Text, Shape::Int),
    ("ft", Field::FrontendTransport, Shape::Word),
    ("fn", Field::Text, Shape::Word),
    ("lc", Field::Text, Shape::Int),
    ("hr", Field::Text, Shape::Captures),
    ("hrl", Field::Text, Shape::CaptureList),
    ("hs", Field::Text, Shape::Captures),
    ("hsl", Field::Text, Shape::CaptureList),
    ("OG", Field::LogOrigin, Shape::Word),
    ("pid", Field::Text, Shape::Int),
    ("r", Field::RequestLine, Shape::Text),
    ("rc", Field::Retries, Shape::Int),
    ("rt", Field::Text, Shape::Int),
    ("s", Field::Server, Shape::Word),
    ("sc", Field::SrvConn, Shape::Int),
    ("si", Field::Text, Shape::Ip),
    ("sp", Field::Text, Shape::Int),
    ("sq", Field::SrvQueue, Shape::Int),
    ("sslc", Field::Text, Shape::Word),
    ("sslv", Field::Text, Shape::Word),
    ("ts", Field::Termination, Shape::Word),
    ("tsc", Field::Termination, Shape::Word),
];

/// Aliases only an HTTP stream logs: a format with one reads HTTP lines.
const HTTP_ONLY: &[&str] = &[
    "tr", "trg", "trl", "Ta", "Ti", "Tq", "TR", "Tr", "CC", "CS", "HM", "HP", "HPO", "HQ", "HU",
    "HV", "r", "hr", "hs", "hrl", "hsl", "tsc",
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Flags {
    quote: bool,
    hexa: bool,
    escape: bool,
    json: bool,
    cbor: bool,
}

impl Flags {
    /// `+Q,-X,+json`: applies the signed flags; a bare name sets it.
    fn apply(&mut self, args: &str) -> Result<(), String> {
        for a in args.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let (on, name) = match a.as_bytes()[0] {
                b'+' => (true, &a[1..]),
                b'-' => (false, &a[1..]),
                _ => (true, a),
            };
            match name {
                "Q" => self.quote = on,
                "X" => self.hexa = on,
                "E" => self.escape = on,
                "json" => self.json = on,
                "cbor" => self.cbor = on,
                // Mandatory, binary: no effect on how a value is read.
                "M" | "bin" => {}
                _ => {
                    return Err(format!(
                        "unknown flag `{a}` (HAProxy knows Q, X, E, M, bin, json, cbor)"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// One item of the format, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The alias (`ci`) or the sample expression in brackets (`[ssl_fc_sni]`).
    pub alias: String,
    /// The key of `%(key)`: the JSON key under `%{+json}o`.
    pub key: Option<String>,
    pub field: Field,
    /// `+X`: numbers and addresses in hexadecimal.
    pub hexa: bool,
}

/// One part of a parsed format string.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Separator,
    Item(Item, Shape, Flags),
}

/// A log-format's regex, built the first time a line needs it. The
/// pattern is made here from escaped text and fixed groups, so it always
/// compiles (the size limit is far above any format string's); were it
/// ever refused, the format would read no line by regex, and say so once.
#[derive(Debug)]
struct LazyRegex {
    /// The format's, to name it.
    name: String,
    pattern: String,
    compiled: std::sync::OnceLock<Option<Regex>>,
}

impl LazyRegex {
    fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| {
                RegexBuilder::new(&self.pattern)
                    .unicode(false)
                    .size_limit(1 << 24)
                    .build()
                    .inspect_err(|e| {
                        eprintln!(
                            "hapwatch: log-format `{}`: its regex cannot be built ({e}); \
                             lines its scanner gives up on are not read",
                            self.name
                        )
                    })
                    .ok()
            })
            .as_ref()
    }
}

/// A compiled log-format: its source, the regex and what each group holds.
#[derive(Clone, Debug)]
pub struct LogFormat {
    pub name: String,
    pub source: String,
    /// Frontends whose lines use this format (a glob; `None`: any).
    pub frontend: Option<super::Glob>,
    /// The same language as `ops`: decides lines `ops` give up on, and
    /// only those, so compiled on first use (shared by the workers' copies):
    /// compiling the built-in formats' regexes was a quarter of hapwatch's
    /// start, before the first line, for lines most logs never have.
    regex: std::sync::Arc<LazyRegex>,
    ops: Vec<scan::Op>,
    /// Group `i + 1` of the regex holds `items[i]`.
    pub items: Vec<Item>,
    /// HTTP aliases in the format: its lines are HTTP lines.
    pub http: bool,
    /// Its lines log what tells a `log-steps` step from a transaction's
    /// end without `%OG` (`haproxy::request::Steps::Told`).
    pub steps_told: bool,
    /// The HAProxy option that writes this format (`option httplog`), for
    /// the built-in ones.
    pub option: Option<String>,
    /// Read by the hand-written parser of `haproxy::request` (the same
    /// lines, ten times faster): not tried again through the regex.
    pub specialised: bool,
    /// Set when the format is a specialised built-in one with items put
    /// in front (`%H ` or `%ID ` before httplog's items, the most common
    /// custom formats): the front is read by the scanner, the rest by the
    /// built-in's hand-written parser ([`LogFormat::follow_builtin`]).
    pub prefix: Option<Prefix>,
    /// The parsed string of a text format (empty for JSON).
    parts: Vec<Part>,
}

/// The front of a format that ends with a whole built-in format.
#[derive(Clone, Debug)]
pub struct Prefix {
    ops: Vec<scan::Op>,
    /// The built-in format that follows it.
    pub builtin: String,
    /// How many parts of the string the built-in format's are.
    run: usize,
    /// The items in front, and which of them is `%OG`, if one is: its
    /// value is read (the others are skipped).
    slots: usize,
    origin: Option<usize>,
}

/// The values of one line's items, by the items' order.
#[derive(Debug, PartialEq, Eq)]
pub struct Values<'a> {
    line: &'a [u8],
    spans: Vec<Option<(usize, usize)>>,
}

impl<'a> Values<'a> {
    /// Item `k`'s value as written (quotes kept), `None` if absent.
    pub fn get(&self, k: usize) -> Option<&'a [u8]> {
        let (a, b) = (*self.spans.get(k)?)?;
        Some(&self.line[a..b])
    }
}

/// Why a format string cannot be compiled: where and what.
#[derive(Debug, PartialEq, Eq)]
pub struct FormatError(pub String);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `items` has one of this role ([`LogFormat::has`], also while
/// the format is being compiled).
fn has_field(items: &[Item], f: Field) -> bool {
    items.iter().any(|i| i.field == f)
}

impl LogFormat {
    pub fn compile(name: &str, source: &str) -> Result<LogFormat, FormatError> {
        let (parts, global) =
            parse(source).map_err(|e| FormatError(format!("log-format `{name}`: {e}")))?;
        if global.cbor {
            return Err(FormatError(format!(
                "log-format `{name}`: `%{{+cbor}}o` writes binary CBOR, which hapwatch does not read; use `%{{+json}}o`"
            )));
        }
        let ((pattern, items), ops) = if global.json {
            (json_regex(&parts), scan::json_ops(&parts))
        } else {
            (text_regex(&parts), scan::text_ops(&parts))
        };
        let regex = std::sync::Arc::new(LazyRegex {
            name: name.to_string(),
            pattern,
            compiled: std::sync::OnceLock::new(),
        });
        let http = parts
            .iter()
            .any(|p| matches!(p, Part::Item(i, ..) if HTTP_ONLY.contains(&i.alias.as_str())));
        let has = |f: Field| has_field(&items, f);
        let steps_told = has(Field::Termination)
            && match http {
                true => has(Field::Status),
                false => has(Field::Timer(1)) && has(Field::Timer(2)),
            };
        Ok(LogFormat {
            name: name.to_string(),
            source: source.to_string(),
            frontend: None,
            regex,
            ops,
            items,
            http,
            steps_told,
            option: None,
            specialised: false,
            prefix: None,
            parts: if global.json { Vec::new() } else { parts },
        })
    }

    /// Notes `builtin` as this format's rest (unless a longer built-in
    /// one already is) when this format is `builtin`'s string with items put before it that only name text
    /// (`%H`, `%ID`, `%pid`, `%[var(txn.x)]`...): lines are then read by
    /// `builtin`'s hand-written parser after the scanner read the front.
    /// Items with a role (a date, a backend) keep the format on the
    /// general path, where the first of two dates wins.
    pub fn follow_builtin(&mut self, builtin: &LogFormat) -> bool {
        // A built-in format's string may start with a space after `%o`.
        let run = match builtin.parts.as_slice() {
            [Part::Separator, run @ ..] => run,
            run => run,
        };
        let longer = self.prefix.as_ref().is_none_or(|p| p.run < run.len());
        if self.specialised || run.is_empty() || !longer || !self.parts.ends_with(run) {
            return false;
        }
        let front = &self.parts[..self.parts.len() - run.len()];
        let roles = front.iter().all(|p| match p {
            Part::Item(i, ..) => {
                matches!(i.field, Field::Text | Field::Hostname | Field::LogOrigin)
            }
            _ => true,
        });
        // The front must end where the run starts: after text or a space.
        let ends = matches!(front.last(), None | Some(Part::Text(_) | Part::Separator));
        if !roles || !ends {
            return false;
        }
        let items = front.iter().filter(|p| matches!(p, Part::Item(..)));
        let origin = items
            .clone()
            .position(|p| matches!(p, Part::Item(i, ..) if i.field == Field::LogOrigin));
        self.prefix = Some(Prefix {
            ops: scan::prefix_ops(front),
            builtin: builtin.name.clone(),
            run: run.len(),
            slots: items.count(),
            origin,
        });
        true
    }

    /// Whether the format is a built-in one's string as it stands (a
    /// `log-format` that spells out `option httplog`, as many
    /// configurations do): its lines are what the built-in's parser reads.
    pub fn is_builtin_verbatim(&self) -> bool {
        self.prefix
            .as_ref()
            .is_some_and(|p| matches!(p.ops.as_slice(), [scan::Op::Rest]))
    }

    /// Where the rest of the line starts after the front, for a format
    /// with a [`Prefix`]; `None` when the line's front is not of the
    /// format (or is not plain: [`LogFormat::read`] then decides).
    pub fn prefix_end(&self, line: &[u8]) -> Option<usize> {
        let p = self.prefix.as_ref()?;
        scan::prefix_end(&p.ops, line)
    }

    /// [`LogFormat::prefix_end`], and the value of the front's `%OG` when
    /// it has one.
    pub fn prefix_end_and_origin<'a>(&self, line: &'a [u8]) -> Option<(usize, Option<&'a [u8]>)> {
        let p = self.prefix.as_ref()?;
        let Some(k) = p.origin else {
            return Some((scan::prefix_end(&p.ops, line)?, None));
        };
        let (rest, spans) = scan::prefix_spans(&p.ops, p.slots, line)?;
        let origin = spans[k].map(|(a, b)| unquote(&line[a..b]));
        Some((rest, origin))
    }

    pub fn for_frontends(mut self, glob: &str) -> Self {
        self.frontend = Some(super::Glob::new(glob));
        self
    }

    /// Each item's value in `line`, or `None` when the line is not of this
    /// format.
    pub fn read<'a>(&self, line: &'a [u8]) -> Option<Values<'a>> {
        let spans = match scan::scan(&self.ops, self.items.len(), line) {
            Ok(spans) => spans?,
            Err(scan::Over) => self.read_by_regex(line)?.spans,
        };
        Some(Values { line, spans })
    }

    /// What the regex reads in `line`: the same as [`LogFormat::read`], in
    /// linear time whatever the line.
    pub fn read_by_regex<'a>(&self, line: &'a [u8]) -> Option<Values<'a>> {
        let caps = self.regex.get()?.captures(line)?;
        let spans = (1..=self.items.len())
            .map(|k| caps.get(k).map(|m| (m.start(), m.end())))
            .collect();
        Some(Values { line, spans })
    }

    /// Whether the format has an item of this role.
    pub fn has(&self, f: Field) -> bool {
        has_field(&self.items, f)
    }

    /// What the format does not give hapwatch, in words an operator acts on.
    pub fn lacks(&self) -> Vec<&'static str> {
        self.gaps().into_iter().map(|(_, says)| says).collect()
    }

    /// The items that would fill what [`LogFormat::lacks`] says, in order.
    pub fn missing_items(&self) -> Vec<&'static str> {
        self.gaps().into_iter().map(|(item, _)| item).collect()
    }

    fn gaps(&self) -> Vec<(&'static str, &'static str)> {
        let has = |fields: &[Field]| fields.iter().any(|f| self.has(*f));
        let dated = [Field::DateMs, Field::DateZoned, Field::Epoch];
        [
            (
                true,
                &[Field::Server][..],
                "%s",
                "no %s: requests are not counted per server",
            ),
            (
                true,
                &[Field::Backend],
                "%b",
                "no %b: requests are not counted per backend",
            ),
            (
                true,
                &[Field::Frontend, Field::FrontendTransport],
                "%ft",
                "no %ft or %f: lines cannot be told apart by frontend",
            ),
            (
                true,
                &dated,
                "[%tr]",
                "no %tr, %t, %T or %Ts: requests are dated by the syslog header",
            ),
            (
                self.http,
                &[Field::Timer(3)],
                "%Tr",
                "no %Tr: latency alerts disabled",
            ),
            (
                self.http,
                &[Field::Status],
                "%ST",
                "no %ST: status classes and the error rate are missing",
            ),
            (
                true,
                &[Field::Timer(1)],
                "%Tw",
                "no %Tw: queueing time is missing",
            ),
            (
                true,
                &[Field::Termination],
                "%tsc",
                "no %ts or %tsc: server-side terminations are not seen",
            ),
        ]
        .into_iter()
        .filter(|(applies, fields, ..)| *applies && !has(fields))
        .map(|(_, _, item, says)| (item, says))
        .collect()
    }
}

/// The items, text and separators of a format string, and the flags of `%o`.
fn parse(s: &str) -> Result<(Vec<Part>, Flags), String> {
    let b = s.as_bytes();
    let mut parts: Vec<Part> = Vec::new();
    let mut global = Flags::default();
    let mut text = String::new();
    let mut i = 0;
    let flush = |text: &mut String, parts: &mut Vec<Part>| {
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(text)));
        }
    };
    while i < b.len() {
        match b[i] {
            b' ' => {
                flush(&mut text, &mut parts);
                if !matches!(parts.last(), Some(Part::Separator)) {
                    parts.push(Part::Separator);
                }
                i += 1;
            }
            b'%' if b.get(i + 1) == Some(&b'%') => {
                text.push('%');
                i += 2;
            }
            b'%' => {
                flush(&mut text, &mut parts);
                let start = i;
                i += 1;
                let mut key = None;
                if b.get(i) == Some(&b'(') {
                    let end = s[i..]
                        .find(')')
                        .ok_or_else(|| format!("missing `)` after `{}`", &s[start..]))?;
                    let inner = &s[i + 1..i + end];
                    let name = inner.split(':').next().unwrap_or("");
                    key = (!name.is_empty()).then(|| name.to_string());
                    i += end + 1;
                }
                let mut flags = global;
                let mut args = None;
                if b.get(i) == Some(&b'{') {
                    let end = s[i..]
                        .find('}')
                        .ok_or_else(|| format!("missing `}}` after `{}`", &s[start..]))?;
                    args = Some(&s[i + 1..i + end]);
                    flags.apply(&s[i + 1..i + end])?;
                    i += end + 1;
                }
                let alias = if b.get(i) == Some(&b'[') {
                    let end = find_close(&b[i..])
                        .ok_or_else(|| format!("missing `]` after `{}`", &s[start..]))?;
                    let expr = &s[i..i + end + 1];
                    i += end + 1;
                    expr.to_string()
                } else {
                    let n = b[i..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .count();
                    if n == 0 {
                        return Err(format!("`%` at byte {start} is followed by no alias: write `%%` for a percent sign"));
                    }
                    let a = &s[i..i + n];
                    i += n;
                    a.to_string()
                };
                if alias == "o" {
                    if let Some(a) = args {
                        global.apply(a)?;
                    }
                    continue;
                }
                let (field, shape) = if alias.starts_with('[') {
                    (Field::Text, Shape::Text)
                } else {
                    ALIASES
                        .iter()
                        .find(|(n, ..)| *n == alias)
                        .map_or((Field::Text, Shape::Text), |(_, f, s)| (*f, *s))
                };
                parts.push(Part::Item(
                    Item {
                        alias,
                        key,
                        field,
                        hexa: flags.hexa,
                    },
                    shape,
                    flags,
                ));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or(' ');
                text.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    flush(&mut text, &mut parts);
    Ok((parts, global))
}

/// The `]` that closes a sample expression (brackets nest in arguments).
fn find_close(b: &[u8]) -> Option<usize> {
    let mut depth = 0;
    for (k, &c) in b.iter().enumerate() {
        match c {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// The unquoted value of a shape.
fn bare(shape: Shape, hexa: bool) -> &'static str {
    match (shape, hexa) {
        (Shape::Int, false) => r"[+-]?[0-9]+|-",
        (Shape::Int, true) | (Shape::Ip, true) => r"[0-9A-Fa-f]+|-",
        // IPv4, IPv6, `unix`, `abns@...`: lazy, so `%ci:%cp` splits at the last colon.
        (Shape::Ip, false) => r#"[^\s"]+?"#,
        (Shape::Word, _) => r#"[^\s"]+?"#,
        (Shape::DateMs, _) => r"[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}",
        (Shape::DateZoned, _) => {
            r"[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}"
        }
        (Shape::Captures, _) => r"\{[^}]*\}",
        (Shape::Text, _) | (Shape::CaptureList, _) => r".*?",
    }
}

/// An item's value: quoted where a flag asks (or bare: HAProxy does not
/// quote numbers and addresses), escaped quotes inside with `+E` or JSON.
fn value(shape: Shape, flags: Flags) -> String {
    let bare = bare(shape, flags.hexa);
    if flags.json {
        return format!(r#""(?:[^"\\]|\\.)*"|null|{bare}"#);
    }
    if flags.quote {
        let quoted = match shape {
            Shape::Text | Shape::CaptureList if flags.escape => r#""(?:[^"\\]|\\.)*""#,
            Shape::Text | Shape::CaptureList => r#"".*?""#,
            Shape::Int => r#""[+-]?[0-9]+""#,
            Shape::Captures => r#""\{[^}]*\}""#,
            _ => r#""[^"]*""#,
        };
        return format!("{quoted}|{bare}");
    }
    bare.to_string()
}

fn may_be_empty(shape: Shape) -> bool {
    matches!(shape, Shape::Captures | Shape::CaptureList)
}

/// The regex of a text format. A separator is one space, and HAProxy
/// writes none after an item that wrote nothing: an item that may be empty
/// is optional together with the separator before it.
fn text_regex(parts: &[Part]) -> (String, Vec<Item>) {
    let mut re = String::from("^");
    let mut items = Vec::new();
    let mut k = 0;
    while k < parts.len() {
        match &parts[k] {
            Part::Text(t) => re.push_str(&regex::escape(t)),
            // HAProxy writes no separator before anything was written.
            Part::Separator if k == 0 => {}
            Part::Separator => {
                match parts.get(k + 1) {
                    Some(Part::Item(item, shape, flags)) if may_be_empty(*shape) => {
                        re.push_str(&format!("(?: ({}))?", value(*shape, *flags)));
                        items.push(item.clone());
                        k += 1;
                    }
                    // A separator at the end: HAProxy writes it; relays trim it.
                    None => re.push_str(" ?"),
                    _ => re.push(' '),
                }
            }
            Part::Item(item, shape, flags) => {
                let v = value(*shape, *flags);
                if may_be_empty(*shape) {
                    re.push_str(&format!("({v})?"));
                } else {
                    re.push_str(&format!("({v})"));
                }
                items.push(item.clone());
            }
        }
        k += 1;
    }
    re.push_str(" *$");
    (re, items)
}

/// The regex of a `%{+json}o` format: HAProxy writes only the named items,
/// as `{"key": value, ...}` in order; text and separators are left out.
fn json_regex(parts: &[Part]) -> (String, Vec<Item>) {
    let mut re = String::from(r"^\{");
    let mut items = Vec::new();
    for p in parts {
        let Part::Item(item, shape, flags) = p else {
            continue;
        };
        let Some(key) = &item.key else { continue };
        if !items.is_empty() {
            re.push_str(", ");
        }
        let v = value(
            *shape,
            Flags {
                json: true,
                ..*flags
            },
        );
        re.push_str(&format!(r#""{}": ({v}|\[[^\]]*\])"#, regex::escape(key)));
        items.push(item.clone());
    }
    re.push_str(r"\} *$");
    (re, items)
}

/// A value as HAProxy wrote it, without the quotes around it.
pub fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(f: &str, line: &str) -> Vec<(String, String)> {
        let lf = LogFormat::compile("t", f).unwrap();
        let c = lf
            .read(line.as_bytes())
            .unwrap_or_else(|| panic!("no match: {line}"));
        lf.items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                let v = c.get(i).map_or(&b""[..], unquote);
                (it.alias.clone(), String::from_utf8_lossy(v).into_owned())
            })
            .collect()
    }

    fn get<'a>(v: &'a [(String, String)], alias: &str) -> &'a str {
        &v.iter().find(|(a, _)| a == alias).unwrap().1
    }

    #[test]
    fn httplog_with_and_without_captures() {
        let f = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r";
        let v = values(
            f,
            r#"::1:44128 [24/Nov/2026:16:21:15.230] fe~ be/s1 0/0/1/2/3 200 123 - - ---- 1/1/0/0/+1 0/0 "GET /a b HTTP/1.1""#,
        );
        assert_eq!(get(&v, "ci"), "::1");
        assert_eq!(get(&v, "cp"), "44128");
        assert_eq!(get(&v, "ft"), "fe~");
        assert_eq!(get(&v, "rc"), "+1");
        assert_eq!(get(&v, "hr"), "");
        assert_eq!(get(&v, "r"), "GET /a b HTTP/1.1");
        let v = values(
            f,
            r#"10.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s1 0/0/1/2/3 200 123 - - ---- 1/1/0/0/0 0/0 {host a|ua b} {x} "GET / HTTP/1.1""#,
        );
        assert_eq!((get(&v, "hr"), get(&v, "hs")), ("{host a|ua b}", "{x}"));
    }

    #[test]
    fn spaces_merge_and_percent_escapes() {
        let v = values(
            "%H   %ci 100%% %[ssl_fc_sni]  %s",
            "lb1 10.0.0.1 100% a b c srv",
        );
        assert_eq!(get(&v, "H"), "lb1");
        assert_eq!(get(&v, "[ssl_fc_sni]"), "a b c");
        assert_eq!(get(&v, "s"), "srv");
    }

    #[test]
    fn json_by_hand_and_by_flag() {
        let v = values(
            r#"{"client":"%ci","status":%ST,"backend":"%b","server":"%s"}"#,
            r#"{"client":"10.0.0.1","status":503,"backend":"be","server":"<NOSRV>"}"#,
        );
        assert_eq!((get(&v, "ST"), get(&v, "s")), ("503", "<NOSRV>"));
        let f = "%{+json}o %(client)ci %(status)ST %(request)r %(term)ts %[str(x)]";
        let v = values(
            f,
            r#"{"client": "10.0.0.1", "status": 200, "request": "GET /\"q\" HTTP/1.1", "term": "----"}"#,
        );
        assert_eq!(get(&v, "r"), r#"GET /\"q\" HTTP/1.1"#);
        assert_eq!(get(&v, "ts"), "----");
        assert_eq!(
            LogFormat::compile("t", f).unwrap().items.len(),
            4,
            "unnamed items are not written"
        );
    }

    #[test]
    fn global_quote_flag_and_its_exceptions() {
        // HAProxy's own `option httplog clf`.
        let f = r#"%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl"#;
        let line = r#"10.0.0.1 - - [24/Nov/2026:16:21:15 +0000] "GET / HTTP/1.1" 200 12 "" "" 5000 230 "fe" "be" "s1" 0 0 1 2 3 "----" 1 1 0 0 0 0 0 "" """#;
        let v = values(f, line);
        assert_eq!(
            (get(&v, "ci"), get(&v, "s"), get(&v, "tsc"), get(&v, "ms")),
            ("10.0.0.1", "s1", "----", "230")
        );
    }

    #[test]
    fn unknown_aliases_are_text_and_mistakes_are_said() {
        let lf = LogFormat::compile("t", "%zz %s").unwrap();
        assert_eq!(lf.items[0].field, Field::Text);
        for (f, says) in [
            ("%{+Q %s", "missing `}`"),
            ("%[src %s", "missing `]`"),
            ("100% done", "write `%%`"),
            ("%{+Z}s", "unknown flag `+Z`"),
            ("%{+cbor}o %(a)s", "does not read"),
        ] {
            let e = LogFormat::compile("t", f).unwrap_err();
            assert!(e.0.contains(says), "{f}: {e}");
        }
    }

    #[test]
    fn what_a_format_lacks_is_said() {
        let lf = LogFormat::compile("t", "%ci %b/%s %ST %{+Q}r").unwrap();
        let lacks = lf.lacks().join("; ");
        assert!(lacks.contains("no %Tr: latency alerts disabled"), "{lacks}");
        assert!(lacks.contains("dated by the syslog header"), "{lacks}");
        assert!(!lacks.contains("no %s"), "{lacks}");
    }

    /// A format's regex compiles when a line first needs it: each built-in
    /// one, and one as long as a format string gets, compiles.
    #[test]
    fn every_format_regex_compiles_when_needed() {
        let builtin = crate::patterns::PatternSet::builtin();
        assert!(builtin.formats.len() >= 6);
        for f in &builtin.formats {
            assert!(f.regex.compiled.get().is_none(), "{}: not at load", f.name);
            assert!(f.regex.get().is_some(), "{}", f.name);
        }
        let long = ["%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B"; 200].join(" ");
        let lf = LogFormat::compile("long", &long).unwrap();
        assert!(lf.regex.get().is_some());
    }

    /// The scanner and the regex are one language: the same values on
    /// every line, well-formed or mangled one byte at a time.
    #[test]
    fn scanner_and_regex_agree() {
        let formats = [
            "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r",
            "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r %[fc_err]/%[ssl_fc_err,hex]/%[ssl_c_err] %[ssl_fc_sni]/%sslv/%sslc",
            "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq",
            r#"%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl"#,
            "%H %ID %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Ta %ST %B %tsc %{+Q,+E}r %[req.hdr(host)]",
            r#"{"client":"%ci","status":%ST,"backend":"%b","server":"%s","t":"%Ta"}"#,
            "%{+json}o %(client)ci %(status)ST %(request)r %(term)ts %(hdrs)hr",
            "%{+X}Ts %{+X}ci:%{+X}cp %b/%s %ST %[a] %[b]",
        ];
        let lines = [
            r#"::1:44128 [24/Nov/2026:16:21:15.230] fe~ be/s1 0/0/1/2/3 200 123 - - ---- 1/1/0/0/+1 0/0 "GET /a b HTTP/1.1""#,
            r#"10.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s1 0/-1/1/2/+3 200 +123 - - ---- 1/1/0/0/0 0/0 {host a|ua b} {x} "GET / HTTP/1.1" 0/00/0 sni.example/TLSv1.3/TLS_AES_128_GCM_SHA256 "#,
            "10.0.0.1:5000 [24/Nov/2026:16:21:15.230] fe_tcp be/s1 0/1/30 500 -- 1/1/0/0/0 0/0",
            r#"10.0.0.1 - - [24/Nov/2026:17:21:15 +0100] "GET / HTTP/1.1" 200 12 "" "" 5000 230 "fe" "be" "s1" 0 0 1 2 3 "----" 1 1 0 0 0 0 0 "" "" "a" "b""#,
            r#"lb-1 7F00:A3 x 10.0.0.1:5000 [24/Nov/2026:16:21:15.230] fe~ be/s1 0/1/2/40 503 12 SC-- "GET /"q" HTTP/1.1" example.com"#,
            r#"{"client":"10.0.0.1","status":503,"backend":"be","server":"<NOSRV>","t":"-1"}"#,
            r#"{"client": "10.0.0.1", "status": 200, "request": "GET /"q" HTTP/1.1", "term": "----", "hdrs": ["a", "b"]}"#,
            r#"{"client": null, "status": -1, "request": "x", "term": "--", "hdrs": "{x|y}"}"#,
            "6B05B97B 0A000001:1388 be/s 200 a b c d",
        ];
        let mut checked = 0;
        for f in formats {
            let lf = LogFormat::compile("t", f).unwrap();
            for line in lines {
                let b = line.as_bytes();
                let mut variants = vec![b.to_vec()];
                for k in 0..b.len() {
                    let mut cut = b.to_vec();
                    cut.remove(k);
                    variants.push(cut);
                    for c in [b' ', b'"', b'-', b':', b'/', b'\\', b'\n', b'0'] {
                        let mut v = b.to_vec();
                        v.insert(k, c);
                        variants.push(v);
                    }
                }
                for v in &variants {
                    let by_regex = lf.read_by_regex(v);
                    if let Ok(spans) = scan::scan(&lf.ops, lf.items.len(), v) {
                        let by_scan = spans.map(|spans| Values { line: v, spans });
                        assert_eq!(by_scan, by_regex, "{f}\n{}", String::from_utf8_lossy(v));
                        checked += usize::from(by_regex.is_some());
                    }
                }
            }
        }
        assert!(checked > 500, "only {checked} lines matched");
    }

    #[test]
    fn hostile_lines_cost_linear_time() {
        let lf = LogFormat::compile("t", "%[a] %[b] %[c] %[d] %s %ST").unwrap();
        let line = "x ".repeat(30_000);
        assert!(lf.read(line.as_bytes()).is_none());
    }
}
