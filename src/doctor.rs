//! `hapwatch doctor`: what HAProxy's configuration will keep out of its
//! logs, for hapwatch, and the lines to add. Each finding names the
//! section and line it is about and the configuration to write; the log
//! targets are described (what hapwatch makes of each `format`) whether or
//! not anything is missing.

use crate::haproxy_cfg::{Format, HaproxyConfig, Proxy};

/// One thing the logs will lack, and its fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    /// Configuration to add, where it goes.
    pub fix: String,
}

/// The findings, then a word on each log target.
pub struct Examination {
    pub findings: Vec<Finding>,
    pub targets: Vec<String>,
}

fn at(p: &Proxy) -> String {
    format!("{} {} ({}:{})", p.kind, p.name, p.file, p.line)
}

fn find(out: &mut Vec<Finding>, what: String, fix: String) {
    out.push(Finding { what, fix });
}

pub fn examine(cfg: &HaproxyConfig) -> Examination {
    let mut out = Vec::new();
    let any_target = !cfg.global_logs.is_empty()
        || cfg
            .proxies
            .iter()
            .any(|p| p.logs.iter().any(|l| l != "global"));
    if !any_target {
        find(
            &mut out,
            "no `log` target: HAProxy writes no log at all".into(),
            "global\n    log 127.0.0.1:5514 local0\ndefaults\n    log global".into(),
        );
    }
    for p in cfg.frontends() {
        if any_target && !p.logs_anywhere(&cfg.global_logs) {
            find(
                &mut out,
                format!(
                    "{} logs nothing (no `log` line, or `log global` with none in global)",
                    at(p)
                ),
                format!("{} {}\n    log global", p.kind, p.name),
            );
        }
        match p.effective_format() {
            None => find(
                &mut out,
                format!("{} logs no request lines (no `option httplog`/`tcplog`, no `log-format`): no traffic figures, no latency or error alerts", at(p)),
                format!(
                    "{} {}\n    option {}",
                    p.kind,
                    p.name,
                    if p.http { "httplog" } else { "tcplog" }
                ),
            ),
            Some(Format::Custom(s)) => match crate::patterns::logformat::LogFormat::compile(&at(p), s) {
                Ok(mut f) => {
                    f.http |= p.http;
                    let lacks = f.lacks();
                    if !lacks.is_empty() {
                        find(
                            &mut out,
                            format!("{}: its log-format has {}", at(p), lacks.join("; ")),
                            format!(
                                "{} {}\n    log-format \"{} {}\"",
                                p.kind,
                                p.name,
                                s.replace('"', "\\\""),
                                f.missing_items().join(" ")
                            ),
                        );
                    }
                }
                Err(e) => find(&mut out, e.to_string(), "fix the `log-format` string".into()),
            },
            Some(Format::Builtin(_)) => {}
        }
        if p.dontlog_normal {
            find(
                &mut out,
                format!("{} has `option dontlog-normal`: successful requests are not logged, traffic and latency figures cover errors only", at(p)),
                format!("{} {}\n    no option dontlog-normal", p.kind, p.name),
            );
        }
        // 3.1's `log-steps` logs a transaction once at each step it names,
        // in the proxy's format unless a `log-profile` gives a step another:
        // the response step reads as a request as the close does
        // (`Request::is_earlier_step` tells only the steps before it).
        if let Some(steps) = &p.log_steps {
            let mut names = steps.split([',', ' ']).filter(|s| !s.is_empty());
            if names.any(|s| s != "close") {
                find(
                    &mut out,
                    format!("{} has `log-steps {steps}`: HAProxy logs a transaction at each of these steps: hapwatch counts the accept, request and connect steps apart, but a response step and the close both as the request unless the format has `%OG` (a `log-profile` can give the other steps a format of their own)", at(p)),
                    format!("{} {}\n    log-steps close", p.kind, p.name),
                );
            }
        }
    }
    for p in cfg.backends() {
        if p.servers.iter().any(|s| s.check) && !p.log_health_checks {
            find(
                &mut out,
                format!("{} checks its servers without `option log-health-checks`: only state changes are logged, not the failing checks that lead to them", at(p)),
                format!("{} {}\n    option log-health-checks", p.kind, p.name),
            );
        }
    }
    if cfg.files.len() > 1 && !cfg.log_send_hostname {
        find(
            &mut out,
            format!(
                "{} configurations (load balancers) without `log-send-hostname`: their RFC 3164 lines carry no host name, and hapwatch cannot tell them apart",
                cfg.files.len()
            ),
            "global\n    log-send-hostname".into(),
        );
    }
    levels(cfg, &mut out);
    let mut targets = Vec::new();
    let all_logs = cfg
        .global_logs
        .iter()
        .map(|l| ("global".to_string(), l))
        .chain(cfg.proxies.iter().flat_map(|p| {
            p.logs
                .iter()
                .map(move |l| (format!("{} {}", p.kind, p.name), l))
        }));
    for (section, line) in all_logs {
        if line == "global" {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(addr) = words.first() else { continue };
        let format = words
            .iter()
            .position(|w| *w == "format")
            .and_then(|i| words.get(i + 1))
            .copied()
            .unwrap_or("rfc3164");
        targets.push(format!(
            "{section}: log {addr} (format {format}): {}",
            format_word(format)
        ));
        if is_udp(addr) {
            find(
                &mut out,
                format!("{section} logs to {addr} over UDP: datagrams dropped under load are lost without a trace in HAProxy"),
                format!(
                    "{section}\n    log tcp@{}    # HAProxy 2.6+; hapwatch listen --tcp",
                    keeping_info(line)
                        .trim_start_matches("udp@")
                        .trim_start_matches("udp4@")
                        .trim_start_matches("udp6@"),
                ),
            );
        }
    }
    Examination {
        findings: out,
        targets,
    }
}

/// Syslog's levels, most severe first: a `log` line's `<level>` keeps it
/// and those before it.
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];
/// What HAProxy logs at `notice`: a server coming UP, maintenance and
/// drain, health checks (`src/server.c`, `src/check.c`); DOWN is an alert.
const NOTICE: usize = 5;
/// Request lines (`info`).
const INFO: usize = 6;

/// The last level a `log` line (its words after `log`) keeps: the word
/// after its facility, `debug` when it names none.
fn kept_level(line: &str) -> usize {
    const FACILITIES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
        "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
        "local5", "local6", "local7",
    ];
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    // `len N`, `format F`, `sample R:S`, `profile P` come before it.
    let mut i = 0;
    while i < words.len() && !FACILITIES.contains(&words[i]) {
        i += 1 + matches!(words[i], "len" | "format" | "sample" | "profile") as usize;
    }
    (words.get(i + 1))
        .and_then(|l| LEVELS.iter().position(|x| x == l))
        .unwrap_or(LEVELS.len() - 1)
}

/// A section whose `log` lines all stop short of `notice` or `info` (the
/// most any of them keeps, `log global` counting global's).
fn levels(cfg: &HaproxyConfig, out: &mut Vec<Finding>) {
    let best = |lines: &[String]| {
        (lines.iter())
            .filter(|l| *l != "global")
            .map(|l| (kept_level(l), l.clone()))
            .max_by_key(|(level, _)| *level)
    };
    let global = best(&cfg.global_logs);
    let sections = std::iter::once(("global".to_string(), global.clone())).chain(
        cfg.proxies.iter().filter_map(|p| {
            let own = best(&p.logs)?;
            let with_global = p.logs.iter().any(|l| l == "global");
            let kept = match &global {
                Some(g) if with_global && g.0 > own.0 => g.clone(),
                _ => own,
            };
            Some((format!("{} {}", p.kind, p.name), Some(kept)))
        }),
    );
    for (section, kept) in sections {
        let Some((level, line)) = kept else { continue };
        let lost = match level {
            l if l < NOTICE => "a server coming back UP, maintenance, drain and health checks (notice) and request lines (info) are not logged: hapwatch sees servers go DOWN and never come back, and no traffic",
            l if l < INFO => "request lines (info) are not logged: no traffic figures, no latency or error alerts",
            _ => continue,
        };
        find(
            out,
            format!(
                "{section} keeps log levels up to `{}` (`log {line}`): {lost}",
                LEVELS[level]
            ),
            format!("{section}\n    log {}", keeping_info(&line)),
        );
    }
}

/// A `log` line (its words after `log`) that keeps request lines: without
/// the level that stops it short of `info`, as it is otherwise. The fix of
/// each finding about the line starts from it, so that applying one does
/// not undo another (the UDP target's `tcp@` line kept `notice`).
fn keeping_info(line: &str) -> String {
    let level = kept_level(line);
    (line.split_whitespace())
        .filter(|w| level >= INFO || *w != LEVELS[level])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A datagram target: an address, not a stream, a ring, a socket file or
/// a standard stream.
fn is_udp(addr: &str) -> bool {
    let stream = [
        "tcp@", "tcp4@", "tcp6@", "uxst@", "ring@", "backend@", "mptcp@", "fd@", "stdout", "stderr",
    ];
    !(stream.iter().any(|s| addr.starts_with(s))
        || addr.starts_with('/')
        || addr.starts_with("unix@")
        || addr.starts_with("uxdg@"))
}

/// What hapwatch makes of a `log ... format`.
fn format_word(f: &str) -> &'static str {
    match f {
        "rfc3164" => "read; local time without a zone (give --tz unless UTC), no host name unless `log-send-hostname`",
        "rfc5424" => "read; times with their zone, host name included",
        "local" => "read; local time without a zone, no host name",
        "timed" | "iso" => "read; a time, no host name",
        "short" | "priority" | "raw" => "read; no time: `listen` dates lines by their receive time, `analyze` by the line before",
        _ => "not a format HAProxy knows",
    }
}

impl Examination {
    /// The report as text: findings with their fixes, then the targets.
    pub fn text(&self, files: &[String]) -> String {
        let mut s = String::new();
        let files = files.join(", ");
        if self.findings.is_empty() {
            s.push_str(&format!("{files}: nothing missing for hapwatch\n"));
        } else {
            s.push_str(&format!(
                "{files}: {} thing(s) hapwatch will lack\n",
                self.findings.len()
            ));
            for f in &self.findings {
                s.push_str(&format!("\n- {}\n  in haproxy.cfg:\n", f.what));
                for l in f.fix.lines() {
                    s.push_str(&format!("      {l}\n"));
                }
            }
        }
        if !self.targets.is_empty() {
            s.push_str("\nlog targets:\n");
            for t in &self.targets {
                s.push_str(&format!("  {t}\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> HaproxyConfig {
        let mut c = HaproxyConfig::default();
        c.read("h.cfg", text, &Default::default()).unwrap();
        c
    }

    #[test]
    fn nothing_missing() {
        let e = examine(&cfg(
            "global\n    log /dev/log local0\n    log tcp@127.0.0.1:5514 format rfc5424 local0\n\
             defaults\n    mode http\n    log global\n    option httplog\n    option log-health-checks\n\
             frontend fe\n    bind :80\nbackend be\n    server s 10.0.0.1:80 check\n",
        ));
        assert_eq!(e.findings, []);
        assert_eq!(e.targets.len(), 2);
        assert!(e.targets[1].contains("zone"), "{:?}", e.targets);
    }

    #[test]
    fn each_lack_with_its_fix() {
        let e = examine(&cfg("global\n    log 127.0.0.1:514 format short local0\n\
             defaults\n    mode http\n    log global\n\
             frontend fe_none\n    bind :80\n\
             frontend fe_quiet\n    option httplog\n    option dontlog-normal\n    no log\n\
             frontend fe_lf\n    log-format \"%ci %b/%s %ST\"\n\
             backend be\n    server s 10.0.0.1:80 check\n"));
        let all = lines(&e);
        let has = |a: &str, b: &str| says(&all, a, b);
        assert!(
            has(
                "frontend fe_none (h.cfg:6) logs no request lines",
                "option httplog"
            ),
            "{all:#?}"
        );
        assert!(
            has("frontend fe_quiet", "no option dontlog-normal"),
            "{all:#?}"
        );
        assert!(
            has("fe_quiet (h.cfg:8) logs nothing", "log global"),
            "{all:#?}"
        );
        assert!(has("fe_lf", "no %Tr: latency alerts disabled"), "{all:#?}");
        assert!(has("backend be", "option log-health-checks"), "{all:#?}");
        assert!(
            has("over UDP", "log tcp@127.0.0.1:514 format short local0"),
            "{all:#?}"
        );
        assert!(e.targets[0].contains("no time"), "{:?}", e.targets);
        let none = examine(&cfg("frontend fe\n    option httplog\n"));
        assert!(
            none.findings[0].what.contains("no `log` target"),
            "{:?}",
            none.findings
        );
    }

    /// 3.1's `log-steps`: a line a step, a response step and the close
    /// each counted as a request.
    #[test]
    fn log_steps_other_than_close() {
        let steps = examine(&cfg(
            "global\n    log tcp@127.0.0.1:5514 local0\n\
             defaults\n    mode http\n    log global\n    option httplog\n    log-steps accept,close\n\
             frontend fe_steps\n    bind :80\n\
             frontend fe_close\n    log-steps close\n\
             listen li_all\n    log-steps all\n",
        ));
        let all = lines(&steps);
        let has = |a: &str, b: &str| says(&all, a, b);
        assert!(
            has(
                "frontend fe_steps (h.cfg:8) has `log-steps accept,close`",
                "frontend fe_steps\n    log-steps close"
            ),
            "{all:#?}"
        );
        assert!(has("listen li_all", "log-steps close"), "{all:#?}");
        assert!(!has("fe_close", ""), "{all:#?}");
    }

    /// `log ... local0 err` (or `notice`) keeps HAProxy's DOWN lines and
    /// drops what hapwatch needs after them; Debian's default keeps all on
    /// one line and notices on another, which is enough.
    #[test]
    fn log_levels_that_drop_up_lines_or_requests() {
        let e = examine(&cfg(
            "global\n    log tcp@127.0.0.1:5514 format rfc5424 local0 err\n\
             defaults\n    mode http\n    log global\n    option httplog\n    option log-health-checks\n\
             frontend fe\n    bind :80\n\
             frontend fe_own\n    log 127.0.0.1:514 len 2048 local1 notice\n",
        ));
        let all = lines(&e);
        let has = |a: &str, b: &str| says(&all, a, b);
        let global = "global keeps log levels up to `err` (`log tcp@127.0.0.1:5514 format rfc5424 local0 err`): a server coming back UP";
        let fix = "global\n    log tcp@127.0.0.1:5514 format rfc5424 local0";
        assert!(has(global, fix), "{all:#?}");
        let own = "frontend fe_own keeps log levels up to `notice`";
        assert!(has(own, "log 127.0.0.1:514 len 2048 local1"), "{all:#?}");
        // The same line's UDP target: its `tcp@` fix keeps request lines
        // too (it kept `notice`, undoing the fix above).
        let udp = "frontend fe_own logs to 127.0.0.1:514 over UDP";
        let tcp = "log tcp@127.0.0.1:514 len 2048 local1    #";
        assert!(has(udp, tcp), "{all:#?}");
        assert_eq!(kept_level("/dev/log local0"), 7);
        assert_eq!(kept_level("/dev/log local1 notice"), 5);
        assert_eq!(kept_level("stdout format raw local0 info"), 6);
        let both = "127.0.0.1 len 512 format short local2 warning debug";
        assert_eq!(kept_level(both), 4);
        // Debian's default: everything on one line, notices on another.
        let debian = examine(&cfg(
            "global\n    log /dev/log local0\n    log /dev/log local1 notice\n\
             defaults\n    mode http\n    log global\n    option httplog\n    option log-health-checks\n\
             frontend fe\n    bind :80\n",
        ));
        let debian = lines(&debian);
        assert!(!debian.iter().any(|f| f.contains("levels")), "{debian:#?}");
    }

    /// Each finding as `what => fix`.
    fn lines(e: &Examination) -> Vec<String> {
        (e.findings.iter())
            .map(|f| format!("{} => {}", f.what, f.fix))
            .collect()
    }

    /// Whether a finding says `what` and fixes it with `fix`.
    fn says(all: &[String], what: &str, fix: &str) -> bool {
        all.iter().any(|f| f.contains(what) && f.contains(fix))
    }
}
