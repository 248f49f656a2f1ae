//! Message patterns as data: `patterns/*.toml` at the repository root,
//! embedded at build time, extended or overridden at run time with
//! `--patterns DIR`.
//!
//! A pattern is a name, a class, an anchored regex with named groups, the
//! state it leads to and a sample line. Loading expands `{{fragment}}`
//! references from `[defs]`, compiles every regex and fails with the file and
//! pattern name on any mistake (exit 2 at the CLI).

pub mod logformat;
mod split;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, OnceLock},
};

use logformat::LogFormat;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use regex_automata::{meta, util::captures::Captures, util::syntax, Input};
use regex_syntax::hir::{Hir, HirKind};
use serde::Deserialize;
use split::{Read, Slot, Split};

/// The files shipped in `patterns/`, in matching order.
pub const BUILTIN: &[(&str, &str)] = &[
    ("health.toml", include_str!("../patterns/health.toml")),
    ("other.toml", include_str!("../patterns/other.toml")),
    ("process.toml", include_str!("../patterns/process.toml")),
    ("formats.toml", include_str!("../patterns/formats.toml")),
];

/// A name pattern with `*` wildcards (`be_*`); `-` is the empty name.
#[derive(Clone, Debug)]
pub struct Glob(String);

impl Glob {
    pub fn new(s: &str) -> Glob {
        Glob(if s == "-" {
            String::new()
        } else {
            s.to_string()
        })
    }

    /// [`Glob::matches`] on bytes: a name without `*` compared as it is
    /// (once per request line of a frontend with its own format).
    #[inline]
    pub fn matches_bytes(&self, name: &[u8]) -> bool {
        if !self.0.contains('*') {
            return name == self.0.as_bytes();
        }
        std::str::from_utf8(name).is_ok_and(|n| self.matches(n))
    }

    pub fn matches(&self, name: &str) -> bool {
        if !self.0.contains('*') {
            return name == self.0;
        }
        let parts: Vec<&str> = self.0.split('*').collect();
        if parts.len() == 1 {
            return name == self.0;
        }
        let (first, last) = (parts[0], parts[parts.len() - 1]);
        if !name.starts_with(first) || name.len() < first.len() + last.len() {
            return false;
        }
        let mut rest = &name[first.len()..name.len() - last.len()];
        if !name.ends_with(last) {
            return false;
        }
        for p in &parts[1..parts.len() - 1] {
            match rest.find(p) {
                Some(i) => rest = &rest[i + p.len()..],
                None => return false,
            }
        }
        true
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// A server's operational or administrative state changed.
    Server,
    /// One health or agent check result (`status: x/y`): progress, not a transition.
    Check,
    /// A backend has no server available.
    Backend,
    /// DNS resolution changed a server's address or state.
    Dns,
    /// A server's state shown at one moment, not a change (a SIGHUP dump):
    /// it seeds a server no line told yet and records a transition only
    /// where it contradicts the log (see `HealthTracker::apply`).
    Snapshot,
    /// HAProxy itself started, reloaded or stopped (a proxy started or
    /// stopped, a worker forked or exited): kept for the timeline, counted
    /// as "other" by `analyze`.
    Process,
    /// Anything else HAProxy says that is worth counting.
    Other,
}

/// A pattern's regex. A built-in pattern's compiles the first time a
/// message needs it (they are tested to compile and to have their groups):
/// compiling all of them was half of hapwatch's start, before the first
/// line, for messages most logs hold a few kinds of. A user's compiles when
/// it is read, so that its errors are told before the first line. Shared by
/// the workers' copies of the set.
#[derive(Clone, Debug)]
pub struct PatternRegex(Arc<Compiled>);

/// Literals a match may start with.
type Literals = Box<[Box<[u8]>]>;

#[derive(Debug)]
struct Compiled {
    source: String,
    /// For checking a pattern's groups and for `--explain`'s set.
    regex: OnceLock<Regex>,
    /// What [`PatternSet::find`] runs (see [`PatternRegex::groups`]).
    matcher: OnceLock<meta::Regex>,
    /// What turns a message away before the regex runs.
    screen: OnceLock<Screen>,
    /// The regex in parts, if it splits (see [`split`]).
    split: OnceLock<Option<Split>>,
    /// Where the matcher's groups are, by name.
    names: OnceLock<split::Names>,
}

/// The literals a pattern's regex says every match holds, read from it
/// once ([`Screen::of`]).
#[derive(Debug)]
struct Screen {
    /// The literals every match starts with, for a pattern anchored at the
    /// start of the message (`None`: any message may match).
    prefixes: Option<Literals>,
    /// The longest literal every match holds (` is DOWN`), if one of a few
    /// bytes.
    needle: Option<memchr::memmem::Finder<'static>>,
}

impl PatternRegex {
    fn new(source: String, regex: OnceLock<Regex>) -> Self {
        PatternRegex(Arc::new(Compiled {
            source,
            regex,
            matcher: OnceLock::new(),
            screen: OnceLock::new(),
            split: OnceLock::new(),
            names: OnceLock::new(),
        }))
    }

    fn compiled(source: String, regex: Regex) -> Self {
        Self::new(source, OnceLock::from(regex))
    }

    fn lazy(source: String) -> Self {
        Self::new(source, OnceLock::new())
    }

    pub fn get(&self) -> &Regex {
        (self.0.regex)
            .get_or_init(|| compile(self.source()).expect("a built-in pattern compiles (tested)"))
    }

    /// The regex as written, its fragments expanded.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// Whether a built-in pattern's regex has been compiled.
    #[cfg(test)]
    fn is_compiled(&self) -> bool {
        self.0.regex.get().is_some()
            || self.0.matcher.get().is_some()
            || self.0.split.get().is_some_and(Option::is_some)
    }

    /// The literals every match starts with (see [`Screen`]), read from
    /// the regex the first time they are asked for.
    fn prefixes(&self) -> Option<&[Box<[u8]>]> {
        self.screen().prefixes.as_deref()
    }

    fn screen(&self) -> &Screen {
        self.0.screen.get_or_init(|| Screen::of(self.source()))
    }

    /// Whether `msg` holds the literal every match holds.
    fn has_needle(&self, msg: &[u8]) -> bool {
        (self.screen().needle.as_ref()).is_none_or(|n| n.find(msg).is_some())
    }

    /// `msg`'s groups if this pattern matches it, by the regex's bounded
    /// backtracker alone: `regex`'s `captures` runs a lazy DFA over the
    /// message first to find where the match ends, an automaton whose
    /// tables a health line, one in hundreds of request lines, finds out
    /// of cache every time.
    ///
    /// A message without the pattern's needle is turned away first: the
    /// patterns of one first word (`Server `) are a dozen, and a message
    /// is one of them.
    ///
    /// A regex that ends in free text and a fixed tail is read in parts
    /// ([`split`]), each a few bytes once, rather than by a backtrack that
    /// tries the tail at every byte of the text.
    pub fn groups<'a>(&'a self, msg: &'a [u8]) -> Option<Groups<'a>> {
        if !self.has_needle(msg) {
            return None;
        }
        if let Some(split) = self.split() {
            match split.read(msg) {
                Read::No => return None,
                Read::Yes { head, rest, cause } => {
                    return Some(Groups {
                        msg,
                        names: &split.names,
                        caps: Caps::Split { head, rest, cause },
                    })
                }
                Read::Unsure => {}
            }
        }
        self.whole_groups(msg)
    }

    /// The regex in parts, if it splits (tried the first time it is asked).
    fn split(&self) -> Option<&Split> {
        (self.0.split)
            .get_or_init(|| Split::of(self.source()))
            .as_ref()
    }

    /// [`PatternRegex::groups`] by the whole regex.
    fn whole_groups<'a>(&'a self, msg: &'a [u8]) -> Option<Groups<'a>> {
        let re = self.matcher();
        let mut caps = re.create_captures();
        re.search_captures(&Input::new(msg), &mut caps);
        let names = (self.0.names).get_or_init(|| split::names(re, Slot::Whole).into());
        caps.is_match().then_some(Groups {
            msg,
            names,
            caps: Caps::Whole(caps),
        })
    }

    /// Whether this pattern matches `msg`, its groups not read.
    fn matches(&self, msg: &[u8]) -> bool {
        self.has_needle(msg) && self.matcher().is_match(Input::new(msg))
    }

    fn matcher(&self) -> &meta::Regex {
        self.0.matcher.get_or_init(|| {
            matcher(self.source()).expect("a pattern's regex compiled when it was read")
        })
    }
}

/// What [`PatternSet::find`] tries a pattern on a message by: the
/// patterns without prefix literals, and one set of their regexes.
#[derive(Debug)]
struct Gate {
    unprefixed: Vec<usize>,
    set: RegexSet,
    /// The first bytes of the prefixed patterns' literals: a message that
    /// starts with none of them (most that get this far) skips them all.
    firsts: [bool; 256],
}

/// The groups of a message a pattern matched.
pub struct Groups<'a> {
    msg: &'a [u8],
    /// The pattern's group names and where each is read: a look-up by a
    /// name among a dozen, not the captures' hash of it.
    names: &'a [(Box<str>, Slot)],
    caps: Caps,
}

enum Caps {
    Whole(Captures),
    Split {
        head: Captures,
        rest: Captures,
        cause: Option<std::ops::Range<usize>>,
    },
}

impl<'a> Groups<'a> {
    /// The bytes group `name` matched, if it took part in the match.
    pub fn name(&self, name: &str) -> Option<&'a [u8]> {
        let slot = self.names.iter().find(|(n, _)| **n == *name)?.1;
        let span = match (&self.caps, slot) {
            (Caps::Whole(c), Slot::Whole(i)) => c.get_group(i)?.range(),
            (Caps::Split { head, .. }, Slot::Head(i)) => head.get_group(i)?.range(),
            (Caps::Split { rest, .. }, Slot::Rest(i)) => rest.get_group(i)?.range(),
            (Caps::Split { cause, .. }, Slot::Cause) => cause.clone()?,
            _ => return None,
        };
        Some(&self.msg[span])
    }

    /// The bytes the whole pattern matched.
    pub fn whole(&self) -> &'a [u8] {
        match &self.caps {
            Caps::Whole(c) => c.get_match().map_or(&[], |m| &self.msg[m.range()]),
            // Anchored at both ends: from HEAD's start to the end.
            Caps::Split { head, .. } => head.get_match().map_or(&[], |m| &self.msg[m.start()..]),
        }
    }
}

/// A pattern's regex as [`PatternRegex::groups`] runs it: `regex`'s
/// `bytes::Regex` (the syntax as [`compile`] reads it, leftmost-first) but
/// for the lazy DFA.
fn matcher(regex: &str) -> Result<meta::Regex, Box<meta::BuildError>> {
    meta::Builder::new()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            meta::Config::new()
                .match_kind(regex_automata::MatchKind::LeftmostFirst)
                .utf8_empty(false)
                .nfa_size_limit(Some(10 << 20))
                .hybrid(false),
        )
        .build(regex)
        .map_err(Box::new)
}

impl Screen {
    /// Read from the regex's syntax tree (a regex that does not parse, which
    /// a compiled one does, screens nothing).
    fn of(regex: &str) -> Screen {
        match hir(regex) {
            Some(hir) => Screen {
                prefixes: prefixes(&hir),
                needle: needle(&hir),
            },
            None => Screen {
                prefixes: None,
                needle: None,
            },
        }
    }
}

/// A pattern's regex as a syntax tree, read as [`matcher`] reads it (ASCII
/// classes, any bytes); `None` if it does not parse, which a compiled
/// regex does.
fn hir(regex: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(regex)
        .ok()
}

/// The longest of the literals a regex is a sequence of at its top (` is
/// DOWN` in `^Server (?P<backend>..)/(?P<server>..) is DOWN...`), if it
/// has one of three bytes or more: every match holds it.
fn needle(hir: &Hir) -> Option<memchr::memmem::Finder<'static>> {
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let longest = (items.iter())
        .filter_map(|h| match h.kind() {
            HirKind::Literal(l) => Some(&l.0),
            _ => None,
        })
        .max_by_key(|l| l.len())
        .filter(|l| l.len() >= 3)?;
    Some(memchr::memmem::Finder::new(&longest[..]).into_owned())
}

/// The literals every match of a regex starts with, if it is anchored at
/// the start of the message (`^`, not multi-line) and they are few and
/// not empty; else `None`.
fn prefixes(hir: &Hir) -> Option<Literals> {
    use regex_syntax::hir::{literal, Look};
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let seq = literal::Extractor::new()
        .kind(literal::ExtractKind::Prefix)
        .extract(hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(literals.iter().map(|l| l.as_bytes().into()).collect())
}

/// ASCII classes: HAProxy's messages are ASCII, and Unicode `\S`/`\d`
/// tables made compiling and matching several times slower. Non-ASCII
/// bytes still match `\S` and `.`.
fn compile(regex: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(regex).unicode(false).build()
}

/// Where a pattern's resulting state comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateRef {
    Fixed(String),
    Group(String),
}

#[derive(Clone, Debug)]
pub struct Pattern {
    pub name: String,
    pub class: Class,
    pub regex: PatternRegex,
    pub op: Option<StateRef>,
    pub admin: Option<StateRef>,
    pub sample: String,
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defs: HashMap<String, String>,
    #[serde(default)]
    pattern: Vec<RawPattern>,
    #[serde(default)]
    format: Vec<RawFormat>,
}

/// A `log-format` as data: HAProxy's built-in ones in formats.toml, a
/// user's in a `--patterns` file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormat {
    name: String,
    format: String,
    /// Frontends whose lines use it (a glob); any when absent.
    frontend: Option<String>,
    /// The HAProxy option that writes it.
    option: Option<String>,
    #[serde(default)]
    specialised: bool,
    /// A line of this format, checked at load.
    sample: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    name: String,
    class: Class,
    regex: String,
    op: Option<String>,
    admin: Option<String>,
    sample: String,
}

impl<'de> Deserialize<'de> for Class {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "server" => Class::Server,
            "check" => Class::Check,
            "backend" => Class::Backend,
            "dns" => Class::Dns,
            "snapshot" => Class::Snapshot,
            "process" => Class::Process,
            "other" => Class::Other,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown class `{s}` (expected server, check, backend, dns, snapshot, process or other)"
                )))
            }
        })
    }
}

fn compile_format(raw: RawFormat) -> Result<LogFormat, String> {
    let mut f = LogFormat::compile(&raw.name, &raw.format).map_err(|e| e.to_string())?;
    if let Some(g) = &raw.frontend {
        f = f.for_frontends(g);
    }
    f.option = raw.option;
    f.specialised = raw.specialised;
    if let Some(sample) = &raw.sample {
        if f.read(sample.trim_end().as_bytes()).is_none() {
            return Err(format!(
                "log-format `{}`: its sample is not read by its format",
                raw.name
            ));
        }
    }
    Ok(f)
}

/// The states a pattern's `op` and `admin` may name.
const OPS: &[&str] = &["UP", "DOWN", "STOPPING"];
const ADMINS: &[&str] = &["READY", "MAINT", "DRAIN"];

/// A pattern read: its regex (compiled when `checked` is given: a user's
/// pattern, whose groups are checked here).
fn pattern(
    raw: &RawPattern,
    regex: PatternRegex,
    checked: Option<&Regex>,
    source: &str,
) -> Result<Pattern, String> {
    if let Some(r) = checked {
        check_groups(raw.class, r)?;
    }
    Ok(Pattern {
        op: state_ref(raw.op.clone(), OPS, checked)?,
        admin: state_ref(raw.admin.clone(), ADMINS, checked)?,
        name: raw.name.clone(),
        class: raw.class,
        regex,
        sample: raw.sample.clone(),
        source: source.to_string(),
    })
}

/// A server's pattern names its backend and server.
fn check_groups(class: Class, regex: &Regex) -> Result<(), String> {
    if !matches!(class, Class::Other | Class::Backend | Class::Process) {
        for g in ["backend", "server"] {
            if !regex.capture_names().any(|n| n == Some(g)) {
                return Err(format!("a {class:?} pattern needs a `{g}` group"));
            }
        }
    }
    Ok(())
}

/// One set of all the patterns' regexes, in their order.
fn build_set<'a>(sources: impl IntoIterator<Item = &'a str>) -> Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(sources).unicode(false).build()
}

/// All patterns, compiled, with one `RegexSet` to find the candidate in a
/// single pass over the message.
#[derive(Clone, Debug)]
pub struct PatternSet {
    pub patterns: Vec<Pattern>,
    /// The set of the patterns' regexes (in their order), compiled when a
    /// first message needs it unless a user's pattern is among them (see
    /// [`PatternRegex`]).
    set: Arc<OnceLock<RegexSet>>,
    /// How [`PatternSet::find`] picks the patterns to try, built with the
    /// first message it is asked about.
    gate: Arc<OnceLock<Gate>>,
    /// Request line formats beyond the hand-parsed ones: users' formats
    /// first (by `--log-format`, `--haproxy-config`, `[[formats]]`, pattern
    /// files), then HAProxy's built-in ones.
    pub formats: Vec<LogFormat>,
    /// Some format is for named frontends: a line the fast parser read may
    /// be one of them.
    by_frontend: bool,
    /// Some format is a built-in one with items in front
    /// (`LogFormat::prefix`).
    pub prefixed: bool,
    /// Those frontends: names without `*` looked up, globs tried.
    /// (by name: the index in `formats` of the first format declared for it)
    frontends: rustc_hash::FxHashMap<Box<[u8]>, usize>,
    frontend_globs: Vec<Glob>,
}

/// Why the patterns cannot be used: which file, which pattern, what is
/// wrong, in one message (the user's to fix: exit status 2).
#[derive(Debug)]
pub struct PatternError(String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

type Result<T, E = PatternError> = std::result::Result<T, E>;

/// `what: why`, as one error.
fn because(what: impl std::fmt::Display, why: impl std::fmt::Display) -> PatternError {
    PatternError(format!("{what}: {why}"))
}

fn expand(regex: &str, defs: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(regex.len() * 2);
    let mut rest = regex;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find("}}")
            .ok_or_else(|| "unclosed `{{` in regex".to_string())?;
        let name = &rest[open + 2..open + close];
        out.push_str(
            defs.get(name)
                .ok_or_else(|| format!("unknown fragment `{{{{{name}}}}}` (not in [defs])"))?,
        );
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A pattern's `op` or `admin`: a fixed state or `$group`. With its
/// regex (a user's pattern), the group is checked to exist.
fn state_ref(
    v: Option<String>,
    allowed: &[&str],
    regex: Option<&Regex>,
) -> Result<Option<StateRef>, String> {
    Ok(match v {
        None => None,
        Some(g) if g.starts_with('$') => {
            let name = &g[1..];
            if regex.is_some_and(|r| !r.capture_names().any(|n| n == Some(name))) {
                return Err(format!("`{g}` names no group of the regex"));
            }
            Some(StateRef::Group(name.to_string()))
        }
        Some(s) if allowed.contains(&s.as_str()) => Some(StateRef::Fixed(s)),
        Some(s) => return Err(format!("state `{s}` is not one of {}", allowed.join(", "))),
    })
}

impl PatternSet {
    /// The embedded patterns, plus every `*.toml` in `dir` (sorted by file
    /// name). A user pattern with a built-in pattern's name replaces it.
    pub fn load(dir: Option<&Path>) -> Result<Self> {
        let mut files: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(n, s)| (format!("patterns/{n}"), s.to_string()))
            .collect();
        if let Some(dir) = dir {
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| {
                    because(
                        format!("cannot read patterns directory {}", dir.display()),
                        e,
                    )
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| because(format!("cannot read {}", p.display()), e))?;
                files.push((p.display().to_string(), text));
            }
        }
        Self::from_sources(&files)
    }

    pub fn builtin() -> Self {
        Self::load(None).expect("embedded patterns are valid (tested)")
    }

    pub fn from_sources(files: &[(String, String)]) -> Result<Self> {
        fn in_pattern(source: &str, name: &str) -> String {
            format!("{source}: pattern `{name}`")
        }
        // Read first (TOML, formats, `{{defs}}` expanded), compile after:
        // the set of all patterns compiles on a thread of its own while the
        // patterns one by one compile here (the two were half of
        // hapwatch's start, before the first line). Errors come in the
        // order of the files all the same.
        let mut defs: HashMap<String, String> = HashMap::new();
        let mut formats: Vec<LogFormat> = Vec::new();
        // (file, pattern, its regex expanded, whether the file is built in)
        let mut read: Vec<(&String, RawPattern, String, bool)> = Vec::new();
        let mut failed = None;
        'files: for (source, text) in files {
            let file: File = match toml::from_str(text) {
                Ok(f) => f,
                Err(e) => {
                    failed = Some(because(source, e.to_string().trim()));
                    break;
                }
            };
            defs.extend(file.defs);
            let builtin = BUILTIN.iter().any(|(_, b)| b == text);
            for raw in file.format {
                match compile_format(raw) {
                    Ok(f) => match formats.iter_mut().find(|q| q.name == f.name) {
                        Some(q) => *q = f,
                        None => formats.push(f),
                    },
                    Err(e) => {
                        failed = Some(because(source, e));
                        break 'files;
                    }
                }
            }
            for raw in file.pattern {
                match expand(&raw.regex, &defs) {
                    Ok(expanded) => read.push((source, raw, expanded, builtin)),
                    Err(e) => {
                        failed = Some(because(in_pattern(source, &raw.name), e));
                        break 'files;
                    }
                }
            }
        }
        // The patterns that stay, in order: a later one of a name replaces
        // the earlier in its place.
        let mut kept: Vec<usize> = Vec::new();
        for (i, (_, raw, ..)) in read.iter().enumerate() {
            match kept.iter_mut().find(|k| read[**k].1.name == raw.name) {
                Some(k) => *k = i,
                None => kept.push(i),
            }
        }
        // Built-in patterns are tested (`every_builtin_pattern_compiles_with_its_groups`):
        // their regexes and the set of them wait for a message that needs
        // them. A user's pattern is compiled and checked now, and then the
        // set too (a user's error is told before the first line).
        let users = kept.iter().any(|&i| !read[i].3);
        let (patterns, set) = std::thread::scope(|s| {
            let set = (failed.is_none() && users)
                .then(|| s.spawn(|| build_set(kept.iter().map(|&i| read[i].2.as_str()))));
            // Every pattern read compiles (a replaced one's error is named
            // too); those kept are taken after.
            let mut compiled: Vec<Option<Pattern>> = Vec::with_capacity(read.len());
            for (source, raw, expanded, builtin) in &read {
                let ctx = || in_pattern(source, &raw.name);
                let p = if *builtin {
                    let regex = PatternRegex::lazy(expanded.clone());
                    pattern(raw, regex, None, source).map_err(|e| because(ctx(), e))?
                } else {
                    let r = compile(expanded).map_err(|e| because(ctx(), e))?;
                    let regex = PatternRegex::compiled(expanded.clone(), r);
                    let r = regex.get();
                    pattern(raw, regex.clone(), Some(r), source).map_err(|e| because(ctx(), e))?
                };
                compiled.push(Some(p));
            }
            if let Some(e) = failed {
                return Err(e);
            }
            let set = match set {
                Some(t) => OnceLock::from(
                    t.join()
                        .expect("compiling a regex set does not panic")
                        .map_err(|e| because("patterns", e))?,
                ),
                None => OnceLock::new(),
            };
            // In the set's order: its k-th regex is the k-th pattern's.
            let patterns: Vec<Pattern> = (kept.iter())
                .map(|&i| compiled[i].take().expect("each read pattern is kept once"))
                .collect();
            Ok((patterns, set))
        })?;
        let set = Arc::new(set);
        // Users' formats before HAProxy's: they are what the user says.
        formats.sort_by_key(|f| f.option.is_some());
        let mut set = PatternSet {
            patterns,
            set,
            gate: Arc::default(),
            formats: Vec::new(),
            by_frontend: false,
            prefixed: false,
            frontends: Default::default(),
            frontend_globs: Vec::new(),
        };
        set.add_formats(formats);
        Ok(set)
    }

    /// Adds request line formats, before those already known.
    pub fn add_formats(&mut self, formats: Vec<LogFormat>) {
        let mut all = formats;
        all.append(&mut self.formats);
        self.by_frontend = all.iter().any(|f| f.frontend.is_some() && !f.specialised);
        self.frontends.clear();
        self.frontend_globs.clear();
        for (k, g) in all
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.specialised)
            .filter_map(|(k, f)| Some((k, f.frontend.as_ref()?)))
        {
            if g.as_str().contains('*') {
                self.frontend_globs.push(g.clone());
            } else {
                self.frontends
                    .entry(g.as_str().as_bytes().into())
                    .or_insert(k);
            }
        }
        // Built-in formats with items put in front are read mostly by
        // the built-in's hand-written parser.
        let builtins: Vec<LogFormat> = all.iter().filter(|f| f.specialised).cloned().collect();
        for f in all.iter_mut() {
            for b in &builtins {
                f.follow_builtin(b);
            }
        }
        // A format that spells a built-in one out is read by the fast
        // parser first anyway (`haproxy::classify`).
        self.prefixed = all
            .iter()
            .any(|f| f.prefix.is_some() && !f.is_builtin_verbatim());
        self.formats = all;
    }

    /// Whether a format is declared for this frontend: its lines are read
    /// with it, even when HAProxy's default format would read them too.
    #[inline]
    pub fn format_for(&self, frontend: &[u8]) -> bool {
        // A set lookup per line; globs (rare) tried after it.
        self.by_frontend
            && (self.frontends.contains_key(frontend)
                || !self.frontend_globs.is_empty() && {
                    let fe = std::str::from_utf8(frontend).unwrap_or("");
                    self.frontend_globs.iter().any(|g| g.matches(fe))
                })
    }

    /// Whether a format is declared for some frontend (by name or glob).
    #[inline(always)]
    pub fn by_frontend(&self) -> bool {
        self.by_frontend
    }

    /// The format declared for this frontend by its exact name, if any (a
    /// glob's are known to [`PatternSet::format_for`] alone).
    #[inline]
    pub fn declared_format(&self, frontend: &[u8]) -> Option<&LogFormat> {
        if !self.by_frontend {
            return None;
        }
        self.frontends.get(frontend).map(|&k| &self.formats[k])
    }

    /// For a line no format read: the format declared for a frontend whose
    /// name the line carries as a word (` fe_api `, `"fe_api"`), if any:
    /// the line did not fit its frontend's format.
    #[cold]
    pub fn frontend_format_named_in(&self, line: &[u8]) -> Option<usize> {
        if !self.by_frontend {
            return None;
        }
        let edge = |c: Option<&u8>| {
            c.is_none_or(|c| {
                matches!(
                    c,
                    b' ' | b'"' | b'[' | b']' | b'{' | b'}' | b',' | b':' | b'~'
                )
            })
        };
        self.formats.iter().position(|f| {
            let Some(g) = f.frontend.as_ref().filter(|_| !f.specialised) else {
                return false;
            };
            let name = g.as_str().as_bytes();
            !name.is_empty()
                && !name.contains(&b'*')
                && memchr::memmem::find_iter(line, name).any(|k| {
                    edge(k.checked_sub(1).and_then(|p| line.get(p)))
                        && edge(line.get(k + name.len()))
                })
        })
    }

    /// The set of all patterns, compiled the first time it is needed.
    fn set(&self) -> &RegexSet {
        self.set.get_or_init(|| {
            build_set(self.patterns.iter().map(|p| p.regex.source()))
                .expect("the built-in patterns' set compiles (tested)")
        })
    }

    /// The first pattern that matches `msg`, in the patterns' order. A
    /// pattern anchored on its first words is tried only on a message that
    /// starts with them (a test of a few bytes, nothing compiled); the
    /// others (a name first) only if a set of theirs says they match. A set
    /// of all patterns chose the one to run before, and `regex`'s
    /// `captures` ran a lazy DFA before its backtracker: two automata whose
    /// tables the next health line (one in hundreds of request lines) finds
    /// out of cache, and the set's compile (13.8 M instructions) at the
    /// first one.
    ///
    /// A pattern of class `other` is counted by its name alone: its groups
    /// are not read (`None`), and one led by a name is not run at all once
    /// the set said it matches (HAProxy's connection errors, which a TLS
    /// frontend scanned from the internet logs by the thousand).
    pub fn find<'a>(&'a self, msg: &'a [u8]) -> Option<(usize, Option<Groups<'a>>)> {
        let gate = self.gate.get_or_init(|| {
            let unprefixed: Vec<usize> = (0..self.patterns.len())
                .filter(|&i| self.patterns[i].regex.prefixes().is_none())
                .collect();
            let set = build_set(unprefixed.iter().map(|&i| self.patterns[i].regex.source()))
                .expect("the patterns' regexes compiled when they were read");
            let mut firsts = [false; 256];
            for p in self.patterns.iter().filter_map(|p| p.regex.prefixes()) {
                for l in p {
                    firsts[l[0] as usize] = true;
                }
            }
            Gate {
                unprefixed,
                set,
                firsts,
            }
        });
        let first = msg.first().map_or(0, |&b| b);
        let prefixed = gate.firsts[first as usize];
        let mut hits = None;
        for (i, p) in self.patterns.iter().enumerate() {
            let candidate = match p.regex.prefixes() {
                Some(prefixes) => {
                    prefixed && prefixes.iter().any(|p| p[0] == first && msg.starts_with(p))
                }
                None => {
                    let k = gate
                        .unprefixed
                        .binary_search(&i)
                        .expect("an unprefixed pattern");
                    hits.get_or_insert_with(|| gate.set.matches(msg)).matched(k)
                }
            };
            if !candidate {
                continue;
            }
            if p.class == Class::Other {
                if p.regex.prefixes().is_none() || p.regex.matches(msg) {
                    return Some((i, None));
                }
            } else if let Some(g) = p.regex.groups(msg) {
                return Some((i, Some(g)));
            }
        }
        None
    }

    /// Checks that every split pattern ([`split`]) reads `msg` as its
    /// whole regex does (panics if not): the `health` fuzz target's check.
    #[doc(hidden)]
    pub fn check_splits(&self, msg: &[u8]) {
        for p in &self.patterns {
            if let Some(split) = p.regex.split() {
                split.agrees(p.regex.matcher(), msg);
            }
        }
    }

    /// Every pattern matching `msg` (used by the tests and `--explain`).
    pub fn all_matches(&self, msg: &[u8]) -> Vec<&str> {
        self.set()
            .matches(msg)
            .into_iter()
            .map(|i| self.patterns[i].name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built-in patterns are not checked when they are loaded (their
    /// regexes compile when a message first needs them): this is their
    /// check, the one a user's pattern gets at load.
    #[test]
    fn every_builtin_pattern_compiles_with_its_groups() {
        let set = PatternSet::builtin();
        assert!(set.set.get().is_none(), "the set waits for a message");
        for p in &set.patterns {
            assert!(!p.regex.is_compiled(), "{}: not at load", p.name);
            let r = compile(p.regex.source()).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            check_groups(p.class, &r).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            for (v, allowed) in [(&p.op, OPS), (&p.admin, ADMINS)] {
                match v {
                    Some(StateRef::Group(g)) => {
                        assert!(r.capture_names().any(|n| n == Some(g)), "{}: ${g}", p.name)
                    }
                    Some(StateRef::Fixed(s)) => assert!(allowed.contains(&s.as_str())),
                    None => {}
                }
            }
        }
        // A message compiles its own pattern's regex only, and no set: the
        // patterns before it are turned away by their prefixes.
        let (idx, groups) = set
            .find(b"Server be/s1 is DOWN, reason: Layer4 timeout.")
            .unwrap();
        let groups = groups.expect("a server pattern's groups");
        assert_eq!(set.patterns[idx].name, "server_down");
        assert_eq!(groups.name("server"), Some(&b"s1"[..]));
        assert_eq!(groups.name("via"), None);
        assert!(set.set.get().is_none());
        let compiled: Vec<&str> = (set.patterns.iter())
            .filter(|p| p.regex.is_compiled())
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(compiled, ["server_down"]);
        // The workers' copies share what was compiled.
        let copy = set.clone();
        assert!(copy.patterns[idx].regex.is_compiled());
    }

    /// Built-in patterns are anchored on HAProxy's own first words, but
    /// for three DNS messages that start with the server's name, two that
    /// start with the frontend's and HAProxy's own HTTP client's requests,
    /// with the client's: a message that is none of them (a request line no
    /// format read, another program's) is turned away by a prefix test a
    /// pattern and by one set of those six, no pattern's regex run or
    /// compiled. An unparsed line cost 1.4 µs more when the first five ran
    /// on every one.
    #[test]
    fn a_message_no_pattern_starts_like_runs_the_unprefixed_ones_only() {
        let set = PatternSet::builtin();
        let unprefixed: Vec<&str> = (set.patterns.iter())
            .filter(|p| p.regex.prefixes().is_none())
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            unprefixed,
            [
                "dns_fqdn_changed",
                "dns_ip_changed",
                "dns_ip_changed_v3",
                "ssl_handshake_failure",
                "connection_error",
                "internal_client"
            ]
        );
        for msg in [
            &b"10.0.0.1:5 [24/Nov/2026:10:00:00.000] fe be/s1 0/0/1/2/3 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""[..],
            b"sshd[1]: Accepted publickey for root from 10.0.0.1 port 4",
            b"",
            b"server be/s1 is DOWN",
        ] {
            assert!(set.find(msg).is_none());
        }
        assert!(set.patterns.iter().all(|p| !p.regex.is_compiled()));
        // One of those six matches when its set says it does: a DNS
        // pattern is run for its groups, an `other` one is not run at all.
        let (k, groups) = set.find(b"fe_https/1: SSL handshake failure").unwrap();
        assert_eq!(set.patterns[k].name, "ssl_handshake_failure");
        assert!(groups.is_none());
        assert!(set.patterns.iter().all(|p| !p.regex.is_compiled()));
        let (k, groups) = set
            .find(b"be_dns/web1 changed its IP from 10.0.0.1 to 10.0.0.2 by DNS cache.")
            .unwrap();
        assert_eq!(set.patterns[k].name, "dns_ip_changed");
        assert_eq!(groups.unwrap().name("to"), Some(&b"10.0.0.2"[..]));
        // An unanchored or multi-line pattern has no prefix: tried on every
        // message.
        let prefixes = |r: &str| Screen::of(r).prefixes;
        assert!(prefixes("Server (?P<backend>x)").is_none());
        assert!(prefixes("(?m)^Server").is_none());
        assert!(prefixes("^(?:Server|x*)").is_none());
        // A top-level literal is a needle; one inside a group or an
        // alternative is not.
        let n = |r: &str| Screen::of(r).needle.map(|f| f.needle().to_vec());
        assert_eq!(
            n("^Server (?P<b>x+)/(?P<s>y+) is DOWN(?:, z)?$"),
            Some(b" is DOWN".to_vec())
        );
        assert_eq!(n("^(?:Server|Proxy) x"), None);
        assert_eq!(n("^a(?:bcdef)?"), None);
        let p = prefixes("^(?P<backup>Backup )?Server (?P<b>\\S+)").unwrap();
        assert_eq!(&*p, [&b"Backup Server "[..], b"Server "].map(Box::from));
    }

    /// A connection that failed before it became a stream is logged with
    /// the client, the accept date and frontend/listener in front of
    /// HAProxy's message (`session_embryonic_build_legacy_err`): each of
    /// `conn_err_code_str`'s messages, and the SSL library's reason, is
    /// read as its kind, with that prefix, with `unknown` for a source, and
    /// without it.
    #[test]
    fn haproxys_connection_errors_are_read_with_and_without_their_prefix() {
        let set = PatternSet::builtin();
        // The frontend as the pattern reads it (`find` does not read an
        // `other` pattern's groups).
        let kind = |msg: &str| {
            let (k, _) = set.find(msg.as_bytes()).unwrap_or_else(|| panic!("{msg}"));
            let p = &set.patterns[k];
            let g = p.regex.groups(msg.as_bytes()).expect("it matches");
            let fe = String::from_utf8_lossy(g.name("frontend").unwrap()).into_owned();
            (p.name.as_str(), fe)
        };
        let errors = [
            "Reached configured maxconn value",
            "Too many sockets on the process",
            "Out of system buffers",
            "Connection closed while waiting for PROXY protocol header",
            "Timeout while waiting for PROXY protocol header",
            "Truncated PROXY protocol header received",
            "Received something which does not look like a PROXY protocol header",
            "Connection error during SSL handshake",
            "Timeout during SSL handshake",
            "Rejected a client-initiated SSL renegotiation attempt",
            "Aborted connection after a TLS 1.3 KeyUpdate flood",
            "SSL client certificate not trusted",
            "Stopped a TLSv1 heartbeat attack (CVE-2014-0160)",
            "Attempt to use SSL on an unknown target (internal error)",
            "SOCKS4 Proxy deny the request",
            "ECONNRESET returned by OS",
            "unknown connection error (code=42 flags=00000300)",
        ];
        for prefix in [
            "10.0.0.7:51234 [05/Dec/2026:08:00:01.123] ",
            "2001:db8::7:51234 [05/Dec/2026:08:00:01.123] ",
            "unknown [05/Dec/2026:08:00:01.123] ",
            "",
        ] {
            for e in errors {
                let msg = format!("{prefix}fe_tls/1: {e}");
                assert_eq!(kind(&msg), ("connection_error", "fe_tls".into()), "{msg}");
            }
            let msg = format!("{prefix}fe_tls/1: SSL handshake failure (error:0A000126:SSL routines::unexpected eof while reading)");
            assert_eq!(kind(&msg), ("ssl_handshake_failure", "fe_tls".into()));
            let msg = format!("{prefix}fe_tls/1: SSL handshake failure");
            assert_eq!(kind(&msg), ("ssl_handshake_failure", "fe_tls".into()));
        }
    }

    /// A user's pattern is compiled and checked at load: its error is told
    /// before the first line, with the set compiled at once.
    #[test]
    fn a_users_pattern_is_checked_when_read() {
        let mut files: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        let bad = |regex: &str| {
            format!("[[pattern]]\nname = \"mine\"\nclass = \"server\"\nregex = '{regex}'\nop = \"$state\"\nsample = 'x'\n")
        };
        for (regex, says) in [
            ("^mine (?P<backend>\\S+", "mine"),
            (
                "^mine (?P<server>\\S+) (?P<state>UP|DOWN)$",
                "needs a `backend` group",
            ),
            (
                "^mine (?P<backend>\\S+)/(?P<server>\\S+)$",
                "`$state` names no group",
            ),
        ] {
            files.push(("user.toml".into(), bad(regex)));
            let e = PatternSet::from_sources(&files).unwrap_err().to_string();
            assert!(
                e.contains("user.toml: pattern `mine`") && e.contains(says),
                "{e}"
            );
            files.pop();
        }
        files.push((
            "user.toml".into(),
            bad("^mine (?P<backend>\\S+)/(?P<server>\\S+) (?P<state>UP|DOWN)$"),
        ));
        let set = PatternSet::from_sources(&files).unwrap();
        assert!(set.set.get().is_some(), "compiled with a user's pattern");
        let mine = set.patterns.iter().find(|p| p.name == "mine").unwrap();
        assert!(mine.regex.is_compiled());
        assert_eq!(set.all_matches(b"mine be/s1 UP"), vec!["mine"]);
    }

    #[test]
    fn every_sample_matches_exactly_its_pattern() {
        let set = PatternSet::builtin();
        assert!(set.patterns.len() >= 25);
        for p in &set.patterns {
            assert_eq!(
                set.all_matches(p.sample.as_bytes()),
                vec![p.name.as_str()],
                "sample of {} ({})",
                p.name,
                p.source
            );
            // `find`, pattern by pattern, takes the one the set finds.
            let (k, groups) = set.find(p.sample.as_bytes()).expect("a sample matches");
            assert_eq!(set.patterns[k].name, p.name);
            assert_eq!(groups.is_none(), p.class == Class::Other, "{}", p.name);
            if let Some(g) = groups {
                assert_eq!(g.whole(), p.sample.as_bytes());
            }
        }
    }

    #[test]
    fn user_file_overrides_and_extends() {
        let user = r#"
[[pattern]]
name = "proxy_started"
class = "other"
regex = '^Proxy (?P<proxy>\S+) has started\.$'
sample = 'Proxy x has started.'

[[pattern]]
name = "my_lua_down"
class = "server"
regex = '^lua: server {{srv}} marked down$'
op = "DOWN"
sample = 'lua: server Server be/s1 marked down'
"#;
        let mut files: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        files.push(("user.toml".into(), user.into()));
        let set = PatternSet::from_sources(&files).unwrap();
        assert_eq!(
            set.all_matches(b"Proxy x has started."),
            vec!["proxy_started"]
        );
        assert!(set.all_matches(b"Proxy x started.").is_empty());
        assert_eq!(
            set.all_matches(b"lua: server Server be/s1 marked down"),
            vec!["my_lua_down"]
        );
    }

    /// Files are read before patterns compile (the set on a thread of its
    /// own): the first problem in file order is still the one named.
    #[test]
    fn the_first_bad_file_is_named_first() {
        let file = |name: &str, text: &str| (name.to_string(), text.to_string());
        let regex = file(
            "a.toml",
            "[[pattern]]\nname='x'\nclass='other'\nregex='('\nsample='a'",
        );
        let fragment = file(
            "b.toml",
            "[[pattern]]\nname='y'\nclass='other'\nregex='{{zz}}'\nsample='a'",
        );
        let toml = file("c.toml", "[[pattern]\n");
        let first = |files: &[(String, String)]| {
            format!(
                "{:#}",
                PatternSet::from_sources(files).map(|_| ()).unwrap_err()
            )
        };
        let named = |files: &[(String, String)], what: &str| {
            let e = first(files);
            assert!(e.contains(what), "{what} in {e}");
        };
        named(&[regex.clone(), fragment.clone()], "a.toml: pattern `x`");
        named(&[fragment.clone(), regex.clone()], "b.toml: pattern `y`");
        named(&[regex.clone(), toml.clone()], "a.toml: pattern `x`");
        named(&[toml, regex], "c.toml");
    }

    #[test]
    fn bad_files_name_the_problem() {
        let bad = |text: &str| {
            PatternSet::from_sources(&[("u.toml".into(), text.into())])
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
                .unwrap_err()
        };
        assert!(
            bad("[[pattern]]\nname='x'\nclass='other'\nregex='('\nsample='a'")
                .contains("pattern `x`")
        );
        assert!(
            bad("[[pattern]]\nname='x'\nclass='nope'\nregex='a'\nsample='a'")
                .contains("unknown class")
        );
        assert!(
            bad("[[pattern]]\nname='x'\nclass='other'\nregex='{{zz}}'\nsample='a'")
                .contains("unknown fragment")
        );
        assert!(
            bad("[[pattern]]\nname='x'\nclass='other'\nregex='a'\nop='SIDEWAYS'\nsample='a'")
                .contains("not one of")
        );
    }
}
