//! Message patterns as data: `patterns/*.toml` at the repository root,
//! embedded at build time, extended or overridden at run time with
//! `--patterns DIR`.
//!
//! A pattern is a name, a class, an anchored regex with named groups, the
//! state it leads to and a sample line. Loading expands `{{fragment}}`
//! references from `[defs]`, compiles every regex and fails with the file and
//! pattern name on any mistake (exit 2 at the CLI).

pub mod logformat;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, OnceLock},
};

use logformat::LogFormat;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;

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
    /// HAProxy itself started, reloaded or stopped (a proxy started or
    /// stopped, a worker forked or exited): kept for the timeline, counted
    /// as "other" by `analyze`.
    Process,
    /// Anything else HAProxy says that is worth counting.
    Other,
}

/// A pattern's regex, for the groups of a message the set said it matches.
/// A built-in pattern's compiles the first time a message needs it (they
/// are tested to compile and to have their groups): compiling all of them
/// was half of hapwatch's start, before the first line, for messages most
/// logs hold a few kinds of. A user's compiles when it is read, so that
/// its errors are told before the first line. Shared by the workers'
/// copies of the set.
#[derive(Clone, Debug)]
pub struct PatternRegex(Arc<(String, OnceLock<Regex>)>);

impl PatternRegex {
    fn compiled(source: String, regex: Regex) -> Self {
        PatternRegex(Arc::new((source, OnceLock::from(regex))))
    }

    fn lazy(source: String) -> Self {
        PatternRegex(Arc::new((source, OnceLock::new())))
    }

    pub fn get(&self) -> &Regex {
        (self.0)
            .1
            .get_or_init(|| compile(self.source()).expect("a built-in pattern compiles (tested)"))
    }

    /// The regex as written, its fragments expanded.
    pub fn source(&self) -> &str {
        &self.0 .0
    }
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
            "process" => Class::Process,
            "other" => Class::Other,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown class `{s}` (expected server, check, backend, dns, process or other)"
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

    /// The first pattern that matches `msg`.
    pub fn find<'m>(&self, msg: &'m [u8]) -> Option<(usize, regex::bytes::Captures<'m>)> {
        // Cheap test first: most messages reaching here match nothing.
        let idx = self.set().matches(msg).into_iter().next()?;
        self.patterns[idx]
            .regex
            .get()
            .captures(msg)
            .map(|c| (idx, c))
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
            assert!(p.regex.0 .1.get().is_none(), "{}: not at load", p.name);
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
        // A message compiles the set and its own pattern's regex only.
        let (idx, _) = set
            .find(b"Server be/s1 is DOWN, reason: Layer4 timeout.")
            .unwrap();
        assert_eq!(set.patterns[idx].name, "server_down");
        assert!(set.set.get().is_some());
        let compiled: Vec<&str> = (set.patterns.iter())
            .filter(|p| p.regex.0 .1.get().is_some())
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(compiled, ["server_down"]);
        // The workers' copies share what was compiled.
        let copy = set.clone();
        assert!(copy.set.get().is_some() && copy.patterns[idx].regex.0 .1.get().is_some());
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
        assert!(mine.regex.0 .1.get().is_some());
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
