//! haproxy.cfg read for what it tells hapwatch: the format each frontend
//! logs in (so that any `log-format` is read), and every backend and server
//! with its `check`, `backup`, `disabled`, `track` and `agent-check`.
//!
//! Words are split as HAProxy's `parse_line` splits them (src/tools.c):
//! `"..."` with backslash escapes and environment variables (`$VAR`,
//! `${VAR}`, `${VAR-default}`), `'...'` taken as written, `\ ` outside
//! quotes, `#` starting a comment. `.if`/`.elif`/`.else`/`.endif` blocks are
//! followed with the predicates of HAProxy 2.6 to 3.x (`defined`, `feature`,
//! `streq`, `strneq`, `version_atleast`, `version_before`, `enabled`, `!`,
//! `&&`, `||`, `0`/`1`). A file `haproxy -c` accepts is never refused:
//! keywords hapwatch has no use for are skipped, whatever they are.

use std::collections::HashMap;
use std::path::Path;

use crate::patterns::logformat::{FormatError, LogFormat};

/// The version `version_atleast()` and `version_before()` compare with:
/// Debian 12's HAProxy (the oldest hapwatch is tested against).
pub const ASSUMED_VERSION: &str = "2.6";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxy {
    pub name: String,
    /// `frontend`, `backend`, `listen` or `defaults`.
    pub kind: &'static str,
    pub file: String,
    pub line: usize,
    pub http: bool,
    /// `option httplog` (`httplog`, `httplog-clf`), `httpslog`, `tcplog`
    /// (`tcplog-clf`): the built-in format's name in patterns/formats.toml.
    pub option_log: Option<String>,
    pub log_format: Option<String>,
    pub log_format_sd: Option<String>,
    pub error_log_format: Option<String>,
    pub log_tag: Option<String>,
    /// `log` lines (`log global`, `log 127.0.0.1:514 local0`), as written.
    pub logs: Vec<String>,
    pub no_log: bool,
    pub dontlog_normal: bool,
    /// `log-steps` (3.1+), as written (`accept,close`, `all`): the steps of
    /// a transaction HAProxy logs it at; `None`, once at its end.
    pub log_steps: Option<String>,
    pub log_health_checks: bool,
    /// `default-server` parameters, in order (inherited from `defaults`):
    /// read before each server's own.
    pub default_server: Vec<String>,
    pub servers: Vec<Server>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub check: bool,
    pub backup: bool,
    pub disabled: bool,
    pub track: Option<String>,
    pub agent_check: bool,
}

#[derive(Clone, Debug, Default)]
pub struct HaproxyConfig {
    /// Frontends, backends and listens, in file order.
    pub proxies: Vec<Proxy>,
    /// `log` lines of `global`.
    pub global_logs: Vec<String>,
    pub log_send_hostname: bool,
    pub files: Vec<String>,
}

/// Why a configuration cannot be used: the file, the line, what to fix.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl HaproxyConfig {
    /// Reads the files in order, as `haproxy -f a -f b` does.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<HaproxyConfig, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let mut cfg = HaproxyConfig::default();
        for p in paths {
            let p = p.as_ref();
            let text = std::fs::read(p).map_err(|e| {
                ConfigError(format!(
                    "cannot read HAProxy configuration {}: {e}",
                    p.display()
                ))
            })?;
            cfg.read(
                &p.display().to_string(),
                &String::from_utf8_lossy(&text),
                &env,
            )?;
        }
        Ok(cfg)
    }

    /// Reads one file's text; `env` for its variables.
    pub fn read(
        &mut self,
        file: &str,
        text: &str,
        env: &HashMap<String, String>,
    ) -> Result<(), ConfigError> {
        self.files.push(file.to_string());
        let mut defaults: HashMap<String, Proxy> = HashMap::new();
        let mut last_defaults = Proxy::default();
        // Where the lines go: `None` for a section hapwatch skips.
        let mut current: Option<Proxy> = None;
        let mut in_global = false;
        let mut conds = Conditions::default();
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let at = |what: String| ConfigError(format!("{file}:{line_no}: {what}"));
            let words = split(raw, env).map_err(at)?;
            let Some(first) = words.first() else { continue };
            match first.as_str() {
                ".if" => {
                    let v = condition(&words[1..]).map_err(at)?;
                    conds.open(v);
                    continue;
                }
                ".elif" => {
                    let v = condition(&words[1..]).map_err(at)?;
                    conds.elif(v).map_err(at)?;
                    continue;
                }
                ".else" => {
                    conds.otherwise().map_err(at)?;
                    continue;
                }
                ".endif" => {
                    conds.close().map_err(at)?;
                    continue;
                }
                _ if !conds.active() => continue,
                // `.notice`, `.warning`, `.alert`, `.diag`: messages at parse time.
                w if w.starts_with('.') => continue,
                _ => {}
            }
            let section = matches!(
                first.as_str(),
                "global"
                    | "defaults"
                    | "frontend"
                    | "backend"
                    | "listen"
                    | "peers"
                    | "resolvers"
                    | "userlist"
                    | "cache"
                    | "program"
                    | "http-errors"
                    | "ring"
                    | "mailers"
                    | "log-forward"
                    | "crt-store"
                    | "traces"
                    | "dynamic-update"
                    | "acme"
            );
            if section {
                self.finish(current.take(), &mut defaults, &mut last_defaults);
                in_global = first == "global";
                let kind: Option<&'static str> = match first.as_str() {
                    "defaults" => Some("defaults"),
                    "frontend" => Some("frontend"),
                    "backend" => Some("backend"),
                    "listen" => Some("listen"),
                    _ => None,
                };
                if let Some(kind) = kind {
                    let name = words
                        .get(1)
                        .filter(|w| *w != "from")
                        .cloned()
                        .unwrap_or_default();
                    if name.is_empty() && kind != "defaults" {
                        return Err(at(format!("`{kind}` needs a name")));
                    }
                    let from = words
                        .iter()
                        .position(|w| w == "from")
                        .and_then(|i| words.get(i + 1));
                    let base = match from {
                        Some(f) => defaults.get(f).cloned().ok_or_else(|| {
                            at(format!(
                                "`from {f}`: no `defaults {f}` section before this line"
                            ))
                        })?,
                        None => last_defaults.clone(),
                    };
                    current = Some(Proxy {
                        name,
                        kind,
                        file: file.to_string(),
                        line: line_no,
                        servers: Vec::new(),
                        ..base
                    });
                }
                continue;
            }
            if in_global {
                match first.as_str() {
                    "log" => self.global_logs.push(words[1..].join(" ")),
                    "log-send-hostname" => self.log_send_hostname = true,
                    _ => {}
                }
                continue;
            }
            if let Some(p) = current.as_mut() {
                keyword(p, &words);
            }
        }
        self.finish(current.take(), &mut defaults, &mut last_defaults);
        if conds.depth() > 0 {
            return Err(ConfigError(format!(
                "{file}: an `.if` block is not closed by `.endif`"
            )));
        }
        Ok(())
    }

    fn finish(
        &mut self,
        p: Option<Proxy>,
        defaults: &mut HashMap<String, Proxy>,
        last: &mut Proxy,
    ) {
        let Some(p) = p else { return };
        if p.kind == "defaults" {
            if !p.name.is_empty() {
                defaults.insert(p.name.clone(), p.clone());
            }
            *last = p;
        } else {
            self.proxies.push(p);
        }
    }

    /// Proxies that receive traffic and log it: frontends and listens.
    pub fn frontends(&self) -> impl Iterator<Item = &Proxy> {
        self.proxies.iter().filter(|p| p.kind != "backend")
    }

    /// Proxies with servers: backends and listens.
    pub fn backends(&self) -> impl Iterator<Item = &Proxy> {
        self.proxies.iter().filter(|p| p.kind != "frontend")
    }

    /// A compiled format for each frontend with its own `log-format`, for
    /// its lines only; HAProxy's built-in formats are already known.
    pub fn formats(&self) -> Result<Vec<LogFormat>, FormatError> {
        let mut out = Vec::new();
        for p in self.frontends() {
            let Some(f) = p.effective_format() else {
                continue;
            };
            if let Format::Custom(s) = f {
                let mut lf = LogFormat::compile(
                    &format!("{} {} ({}:{})", p.kind, p.name, p.file, p.line),
                    s,
                )?;
                // The proxy's mode says what its lines are, whatever items they hold.
                lf.http |= p.http;
                out.push(lf.for_frontends(&p.name));
            }
        }
        Ok(out)
    }
}

/// The format a frontend's request lines are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format<'a> {
    /// One of HAProxy's, by its name in patterns/formats.toml.
    Builtin(&'a str),
    Custom(&'a str),
}

impl Proxy {
    /// What HAProxy writes for this proxy's requests, if anything: a
    /// `log-format` wins over the `option`s, as in HAProxy.
    pub fn effective_format(&self) -> Option<Format<'_>> {
        if let Some(f) = &self.log_format {
            return Some(Format::Custom(f));
        }
        let o = self.option_log.as_deref()?;
        // `option httplog` in a TCP proxy: HAProxy falls back to tcplog.
        Some(Format::Builtin(match o {
            "httplog" | "httpslog" | "httplog-clf" if !self.http => "tcplog",
            o => o,
        }))
    }

    pub fn logs_anywhere(&self, global: &[String]) -> bool {
        !self.no_log
            && self
                .logs
                .iter()
                .any(|l| l != "global" || !global.is_empty())
    }
}

/// One keyword line inside a proxy section.
fn keyword(p: &mut Proxy, w: &[String]) {
    let (no, w) = match w {
        [first, rest @ ..] if first == "no" && !rest.is_empty() => (true, rest),
        _ => (false, w),
    };
    match (arg_of(w, 0), arg_of(w, 1)) {
        ("mode", m) => p.http = m == "http",
        // The built-in formats by their names in patterns/formats.toml;
        // a later one replaces a `log-format`, as in HAProxy.
        ("option", o @ ("httplog" | "httpslog" | "tcplog")) => {
            let clf = arg_of(w, 2) == "clf" && o != "httpslog";
            p.option_log = (!no).then(|| {
                if clf {
                    format!("{o}-clf")
                } else {
                    o.to_string()
                }
            });
            if !no {
                p.log_format = None;
            }
        }
        ("option", "dontlog-normal") => p.dontlog_normal = !no,
        ("log-steps", _) => p.log_steps = (w.len() > 1).then(|| w[1..].join(" ")),
        ("option", "log-health-checks") => p.log_health_checks = !no,
        // A format is one word; older configurations wrote several, joined.
        ("log-format", _) => {
            p.log_format = (!no && w.len() > 1).then(|| w[1..].join(" "));
            p.option_log = None;
        }
        ("log-format-sd", _) => p.log_format_sd = (w.len() > 1).then(|| w[1..].join(" ")),
        ("error-log-format", _) => p.error_log_format = (w.len() > 1).then(|| w[1..].join(" ")),
        ("log-tag", t) => p.log_tag = Some(t.to_string()),
        ("log", _) if no => {
            p.no_log = true;
            p.logs.clear();
        }
        ("log", _) => {
            p.no_log = false;
            p.logs.push(w[1..].join(" "));
        }
        ("default-server", _) => p.default_server.extend(w[1..].iter().cloned()),
        ("server", name) if !name.is_empty() => {
            let params = [&p.default_server[..], &w[3.min(w.len())..]].concat();
            p.servers.push(server(name.to_string(), &params))
        }
        ("server-template", prefix) => {
            // `server-template srv 1-3 addr` or `server-template srv 3 addr`.
            let range = arg_of(w, 2);
            let (from, to) = match range.split_once('-') {
                Some((a, b)) => (a.parse().unwrap_or(1), b.parse().unwrap_or(0)),
                None => (1, range.parse().unwrap_or(0)),
            };
            let to: usize = to;
            let params = [&p.default_server[..], &w[4.min(w.len())..]].concat();
            for i in from..=to.min(from + 100_000) {
                p.servers.push(server(format!("{prefix}{i}"), &params));
            }
        }
        _ => {}
    }
}

fn arg_of(w: &[String], i: usize) -> &str {
    w.get(i).map(String::as_str).unwrap_or("")
}

fn server(name: String, params: &[String]) -> Server {
    let mut s = Server {
        name,
        ..Server::default()
    };
    let mut i = 0;
    while i < params.len() {
        match params[i].as_str() {
            "check" => s.check = true,
            "no-check" => s.check = false,
            "backup" => s.backup = true,
            "no-backup" => s.backup = false,
            "disabled" => s.disabled = true,
            "enabled" => s.disabled = false,
            "agent-check" => s.agent_check = true,
            "no-agent-check" => s.agent_check = false,
            "track" => {
                s.track = params.get(i + 1).cloned();
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    s
}

/// One line split into words, as HAProxy splits it.
pub fn split(line: &str, env: &HashMap<String, String>) -> Result<Vec<String>, String> {
    let b: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut w = String::new();
    let mut in_word = false;
    let (mut dq, mut sq) = (false, false);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if sq {
            if c == '\'' {
                sq = false;
            } else {
                w.push(c);
            }
            i += 1;
            continue;
        }
        match c {
            '\\' if i + 1 < b.len() => {
                let n = b[i + 1];
                w.push(match n {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    n => n,
                });
                in_word = true;
                i += 2;
                continue;
            }
            '"' => {
                dq = !dq;
                in_word = true;
            }
            '\'' if !dq => {
                sq = true;
                in_word = true;
            }
            '$' if b
                .get(i + 1)
                .is_some_and(|n| *n == '{' || n.is_ascii_alphabetic() || *n == '_') =>
            {
                let (value, used) = variable(&b[i + 1..], env)?;
                w.push_str(&value);
                in_word = true;
                i += 1 + used;
                continue;
            }
            '#' if !dq => break,
            ' ' | '\t' if !dq => {
                if in_word {
                    words.push(std::mem::take(&mut w));
                    in_word = false;
                }
            }
            c => {
                w.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    if dq || sq {
        return Err("a quote is not closed on this line".into());
    }
    if in_word {
        words.push(w);
    }
    Ok(words)
}

/// `VAR`, `{VAR}`, `{VAR-default}` after a `$`: its value and the
/// characters read. An unset variable is empty, as in HAProxy.
fn variable(b: &[char], env: &HashMap<String, String>) -> Result<(String, usize), String> {
    if b[0] == '{' {
        let end = b
            .iter()
            .position(|c| *c == '}')
            .ok_or("`${` is not closed by `}`")?;
        let inner: String = b[1..end].iter().collect();
        let (name, default) = match inner.split_once('-') {
            Some((n, d)) => (n.to_string(), Some(d.to_string())),
            None => (inner, None),
        };
        let v = env.get(&name).cloned().or(default).unwrap_or_default();
        return Ok((v, end + 1));
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
        .count();
    let name: String = b[..n].iter().collect();
    Ok((env.get(&name).cloned().unwrap_or_default(), n))
}

/// The `.if` blocks open at a line: each level's state.
#[derive(Default)]
struct Conditions {
    /// (this branch is taken, a branch of this block was taken, parent active)
    stack: Vec<(bool, bool, bool)>,
}

impl Conditions {
    fn active(&self) -> bool {
        self.stack
            .last()
            .is_none_or(|&(taken, _, parent)| taken && parent)
    }
    fn depth(&self) -> usize {
        self.stack.len()
    }
    fn open(&mut self, v: bool) {
        let parent = self.active();
        self.stack.push((v, v, parent));
    }
    fn elif(&mut self, v: bool) -> Result<(), String> {
        let top = self.stack.last_mut().ok_or("`.elif` without `.if`")?;
        top.0 = !top.1 && v;
        top.1 |= v;
        Ok(())
    }
    fn otherwise(&mut self) -> Result<(), String> {
        let top = self.stack.last_mut().ok_or("`.else` without `.if`")?;
        top.0 = !top.1;
        top.1 = true;
        Ok(())
    }
    fn close(&mut self) -> Result<(), String> {
        self.stack
            .pop()
            .map(|_| ())
            .ok_or_else(|| "`.endif` without `.if`".to_string())
    }
}

/// An `.if` condition: terms joined by `&&` and `||` (`&&` first).
fn condition(words: &[String]) -> Result<bool, String> {
    let expr = words.join(" ");
    Ok(expr
        .split("||")
        .any(|alt| alt.split("&&").all(|t| term(t.trim()))))
}

fn term(t: &str) -> bool {
    if let Some(rest) = t.strip_prefix('!') {
        return !term(rest.trim());
    }
    let (name, args) = match t.split_once('(') {
        Some((n, a)) => (
            n.trim(),
            a.trim_end_matches(')')
                .split(',')
                .map(str::trim)
                .collect::<Vec<_>>(),
        ),
        None => (t, Vec::new()),
    };
    match name {
        "defined" => args.first().is_some_and(|v| std::env::var_os(v).is_some()),
        "streq" => args.len() == 2 && args[0] == args[1],
        "strneq" => args.len() == 2 && args[0] != args[1],
        "version_atleast" => args
            .first()
            .is_some_and(|v| version_cmp(ASSUMED_VERSION, v).is_ge()),
        "version_before" => args
            .first()
            .is_some_and(|v| version_cmp(ASSUMED_VERSION, v).is_lt()),
        // Build features and enabled keywords: assumed present (the common
        // packages have them).
        "feature" | "enabled" => true,
        "" | "0" | "false" => false,
        _ => t.parse::<i64>().ok().is_none_or(|n| n != 0),
    }
}

fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts =
        |s: &str| -> Vec<u64> { s.split(['.', '-']).map_while(|p| p.parse().ok()).collect() };
    parts(a).cmp(&parts(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> HaproxyConfig {
        let mut c = HaproxyConfig::default();
        let env: HashMap<String, String> = [("LB".to_string(), "lb1".to_string())].into();
        c.read("haproxy.cfg", text, &env).unwrap();
        c
    }

    #[test]
    fn words_as_haproxy_splits_them() {
        let env: HashMap<String, String> = [("A".to_string(), "x y".to_string())].into();
        let s = |l: &str| split(l, &env).unwrap();
        assert_eq!(
            s(r#"log-format "%ci:%cp [%tr] %{+Q}r" # comment"#),
            ["log-format", "%ci:%cp [%tr] %{+Q}r"]
        );
        assert_eq!(s(r"log-format %ci\ %s"), ["log-format", "%ci %s"]);
        assert_eq!(
            s(r#"x '$A "q"' "$A" ${A} ${B-def}"#),
            ["x", "$A \"q\"", "x y", "x y", "def"]
        );
        assert_eq!(s(r#"x "a#b""#), ["x", "a#b"]);
        assert!(split(r#"x "open"#, &env).is_err());
    }

    #[test]
    fn formats_by_frontend_with_defaults_inheritance() {
        let c = cfg(r#"
global
    log 127.0.0.1:514 local0
    log-send-hostname
defaults base
    mode http
    log global
    option httplog
defaults
    mode tcp
    option tcplog
frontend fe_web from base
    log-format "%H %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %{+Q}r"
frontend fe_plain from base
frontend fe_tcp
listen li_api
    mode http
    option httplog clf
    server a 10.0.0.1:80 check
backend be
    server-template s 3 10.0.0.1:80 check backup
    server t 10.0.0.9:80 track be/s1 disabled
"#);
        let f = |n: &str| {
            c.proxies
                .iter()
                .find(|p| p.name == n)
                .unwrap()
                .effective_format()
        };
        assert!(matches!(f("fe_web"), Some(Format::Custom(s)) if s.starts_with("%H ")));
        assert_eq!(f("fe_plain"), Some(Format::Builtin("httplog")));
        assert_eq!(f("fe_tcp"), Some(Format::Builtin("tcplog")));
        assert_eq!(f("li_api"), Some(Format::Builtin("httplog-clf")));
        let be = c.backends().find(|p| p.name == "be").unwrap();
        let names: Vec<_> = be.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["s1", "s2", "s3", "t"]);
        assert!(be.servers[0].check && be.servers[0].backup);
        assert_eq!(
            (be.servers[3].track.as_deref(), be.servers[3].disabled),
            (Some("be/s1"), true)
        );
        assert!(c.log_send_hostname);
        let formats = c.formats().unwrap();
        assert_eq!(formats.len(), 1);
        assert!(formats[0].frontend.as_ref().unwrap().matches("fe_web"));
    }

    #[test]
    fn conditional_blocks() {
        let c = cfg(r#"
.if version_atleast(2.4)
frontend new
.elif defined(NOPE_NOT_SET)
frontend never
.else
frontend old
.endif
.if !streq(${LB},lb1) || strneq(a,a)
frontend other
.endif
.if version_before(2.0)
  .if 1
frontend nested
  .endif
.endif
"#);
        let names: Vec<_> = c.proxies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["new"]);
    }

    #[test]
    fn mistakes_say_where() {
        let mut c = HaproxyConfig::default();
        let e = c
            .read("h.cfg", "frontend a from nowhere\n", &HashMap::new())
            .unwrap_err();
        assert!(
            e.0.starts_with("h.cfg:1: ") && e.0.contains("defaults nowhere"),
            "{e}"
        );
        let e = c
            .read("h.cfg", ".if 1\nfrontend a\n", &HashMap::new())
            .unwrap_err();
        assert!(e.0.contains("not closed"), "{e}");
    }
}

/// A `[[formats]]` entry of a configuration file.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatEntry {
    pub name: String,
    /// The frontends that log in it (a glob); any when absent.
    pub frontend: Option<String>,
    pub format: String,
}

/// The user's request line formats, from every place they can be given,
/// in the order they are tried: `--log-format` strings, `[[formats]]`,
/// then the custom formats of `--haproxy-config` files. With the formats,
/// what each lacks, for a word at start-up.
pub fn user_formats(
    log_formats: &[String],
    entries: &[FormatEntry],
    configs: &[std::path::PathBuf],
) -> Result<(Vec<LogFormat>, Vec<String>), String> {
    let mut out = Vec::new();
    for (i, s) in log_formats.iter().enumerate() {
        out.push(
            LogFormat::compile(&format!("--log-format #{}", i + 1), s)
                .map_err(|e| e.to_string())?,
        );
    }
    for e in entries {
        let f = LogFormat::compile(&e.name, &e.format).map_err(|e| e.to_string())?;
        out.push(match &e.frontend {
            Some(g) => f.for_frontends(g),
            None => f,
        });
    }
    if !configs.is_empty() {
        let cfg = HaproxyConfig::load(configs).map_err(|e| e.to_string())?;
        out.extend(cfg.formats().map_err(|e| e.to_string())?);
    }
    let words = out
        .iter()
        .flat_map(|f| {
            f.lacks()
                .into_iter()
                .map(move |l| format!("{}: {l}", f.name))
        })
        .collect();
    Ok((out, words))
}
