//! HAProxy layer: one message (the part after the syslog header) -> a typed
//! event. Request lines go through the nom parser in [`request`]; everything
//! else is matched against the data-driven [`crate::patterns`].

pub mod health;
pub mod logformat;
pub mod request;

use crate::patterns::PatternSet;
pub use health::{Admin, CheckDetails, HealthEvent, Op};
pub use request::{Mode, Request, Timer};

/// What one HAProxy message is.
// Requests are nearly every message: boxing them to shrink the enum would
// cost an allocation per line, the rare health events are boxed instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Message<'a> {
    Request(Request<'a>),
    Health(Box<HealthEvent>),
    /// A known non-health message; the index of its pattern.
    Other(usize),
    Unparsed,
}

impl Message<'_> {
    pub fn is_some_request(&self) -> bool {
        matches!(self, Message::Request(_))
    }
}

/// HAProxy's stderr / journald prefix: `[WARNING]  (8995) : `, older
/// `[NOTICE] 049/041157 (4436) : `. Returns the level, pid and the message.
pub fn strip_stderr_prefix(msg: &[u8]) -> Option<(&[u8], Option<u32>, &[u8])> {
    let body = msg.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', body.get(..10)?)?;
    let level = &body[..close];
    if level.is_empty() || !level.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    let mut rest = &body[close + 1..];
    rest = &rest[rest.iter().take_while(|&&c| c == b' ').count()..];
    // Older versions: day-of-year/time before the pid.
    if rest.first().is_some_and(u8::is_ascii_digit) {
        let sp = memchr::memchr(b' ', rest)?;
        rest = &rest[sp + 1..];
    }
    let pid_body = rest.strip_prefix(b"(")?;
    let close = memchr::memchr(b')', pid_body)?;
    let pid = std::str::from_utf8(&pid_body[..close])
        .ok()
        .and_then(|p| p.parse().ok());
    let msg = pid_body[close + 1..].strip_prefix(b" : ")?;
    Some((level, pid, msg))
}

/// The time HAProxy before 2.3 put in its stderr prefix
/// (`[NOTICE] 049/041157 (4436) : `: day of the year from 0, local time).
pub fn stderr_time(msg: &[u8]) -> Option<crate::time::NoYear> {
    let body = msg.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', body.get(..10)?)?;
    let rest = &body[close + 1..];
    let rest = &rest[rest.iter().take_while(|&&c| c == b' ').count()..];
    crate::time::parse_yday_time(rest.get(..10)?)
}

/// Strips what HAProxy or a relay may leave at the end of a message.
pub fn trim_message(m: &[u8]) -> &[u8] {
    let mut m = m;
    while let [rest @ .., b'\n' | b'\r' | b' ' | b'\0'] = m {
        m = rest;
    }
    m
}

/// Whether the format declared for `r`'s frontend, when there is one,
/// reads its line rather than the built-in parser that read `r`. In line:
/// once a request line, and most configurations declare no format for a
/// frontend.
#[inline(always)]
pub fn overridden(patterns: &PatternSet, r: &Request) -> bool {
    patterns.by_frontend() && overridden_by_frontend(patterns, r)
}

#[inline(never)]
fn overridden_by_frontend(patterns: &PatternSet, r: &Request) -> bool {
    match patterns.declared_format(r.frontend) {
        // A format that spells out the built-in one: `r` is what it reads.
        Some(f) => !(f.is_builtin_verbatim() && f.http == (r.mode == request::Mode::Http)),
        None => patterns.format_for(r.frontend),
    }
}

/// `r`, read by a built-in format's parser, or what the format declared
/// for its frontend reads, when there is one. (Not `#[cold]`: with a
/// prefixed format `classify` comes here for every request line.)
pub fn own_format<'a>(patterns: &PatternSet, msg: &'a [u8], r: Request<'a>) -> Request<'a> {
    if overridden(patterns, &r) {
        if let Some(r) = logformat::parse_any(patterns, trim_message(msg)) {
            return r;
        }
    }
    r
}

/// Classifies one message.
pub fn classify<'a>(patterns: &PatternSet, msg: &'a [u8]) -> Message<'a> {
    // Request lines first: they are 99% of a busy log, and the parser
    // rejects anything else within the first few bytes. A built-in format
    // with items in front, when one is declared, is what most lines are
    // in; its rest must be a whole built-in line, which no built-in line
    // after its first word is: it goes first.
    if patterns.prefixed {
        match logformat::parse_prefixed(patterns, trim_message(msg)) {
            Some((r, true)) => return Message::Request(r),
            Some((r, false)) => return Message::Request(own_format(patterns, msg, r)),
            None => {}
        }
    }
    if let Some(r) = request::parse(msg) {
        return Message::Request(own_format(patterns, msg, r));
    }
    let whole = msg;
    let msg = trim_message(match strip_stderr_prefix(msg) {
        Some((_, _, m)) => m,
        None => msg,
    });
    match patterns.find(msg) {
        Some((idx, None)) => Message::Other(idx),
        Some((idx, Some(groups))) => Message::Health(Box::new(HealthEvent::from_match(
            &patterns.patterns[idx],
            &groups,
        ))),
        // A `log-format` line: after the patterns, which are anchored on
        // HAProxy's own words, where a format's free text could match anything.
        None => match logformat::parse_any(patterns, trim_message(whole)) {
            Some(r) => Message::Request(r),
            None => Message::Unparsed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patterns::Class;

    #[test]
    fn stderr_forms() {
        let (l, pid, m) =
            strip_stderr_prefix(b"[WARNING]  (8995) : Server be_app/srv2 is DOWN.").unwrap();
        assert_eq!(
            (l, pid, m),
            (
                &b"WARNING"[..],
                Some(8995),
                &b"Server be_app/srv2 is DOWN."[..]
            )
        );
        let (_, pid, m) =
            strip_stderr_prefix(b"[NOTICE] 049/041157 (4436) : Proxy x started.").unwrap();
        assert_eq!((pid, m), (Some(4436), &b"Proxy x started."[..]));
        assert!(strip_stderr_prefix(b"[24/Nov/2026] x").is_none());
    }

    fn health(line: &str) -> HealthEvent {
        match classify(&PatternSet::builtin(), line.as_bytes()) {
            Message::Health(h) => *h,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn down_with_inline_check_reason() {
        let h = health("Server be_tcp/t1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.");
        assert_eq!(
            (h.backend.as_str(), h.server.as_deref()),
            ("be_tcp", Some("t1"))
        );
        assert_eq!(h.op, Some(Op::Down));
        let c = h.check.unwrap();
        assert_eq!(c.reason.as_deref(), Some("Layer4 connection problem"));
        assert_eq!(c.info.as_deref(), Some("Connection refused"));
        assert_eq!(c.duration_ms, Some(0));
        assert_eq!(
            (h.active, h.backups, h.sessions, h.requeued, h.queue),
            (Some(1), Some(0), Some(0), Some(0), Some(0))
        );
    }

    #[test]
    fn short_down_backup_via_and_running_on_backup() {
        let h = health("[WARNING]  (8995) : Server be_app/srv2 is DOWN. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.");
        assert_eq!((h.op, h.cause, h.active), (Some(Op::Down), None, Some(2)));
        let h = health("Backup Server be_bk/b is DOWN, changed from CLI. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.");
        assert!(h.backup);
        assert_eq!(h.cause.as_deref(), Some("changed from CLI"));
        let h = health("Server be_trk/t is DOWN via be_bk/a. 0 active and 1 backup servers left. Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue.");
        assert_eq!(h.via.as_deref(), Some("be_bk/a"));
        assert!(h.running_on_backup);
    }

    #[test]
    fn maintenance_and_drain() {
        let h = health("Server be_app/srv1 is UP/READY (leaving forced maintenance).");
        assert_eq!((h.op, h.admin), (Some(Op::Up), Some(Admin::Ready)));
        let h = health("Server be_app/srv1 is DOWN/DRAIN (leaving maintenance).");
        assert_eq!((h.op, h.admin), (Some(Op::Down), Some(Admin::Drain)));
        let h = health("Server be/s is going DOWN for maintenance (No IP for server ). 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.");
        assert_eq!(h.cause.as_deref(), Some("No IP for server "));
        assert_eq!(h.admin, Some(Admin::Maint));
        let h = health("Server be_app/srv3 is UP (leaving forced drain).");
        assert_eq!((h.op, h.admin), (Some(Op::Up), Some(Admin::Ready)));
        // A forced drain lifted, the server still draining: 2.6's words,
        // then 2.8's (src/server.c).
        for line in [
            "Server be_trk/t is leaving forced drain but remains in drain mode via be_bk/a.",
            "Server be_trk/t remains in drain mode via be_bk/a.",
            "Backup Server be_bk/b remains in drain mode.",
        ] {
            let h = health(line);
            assert_eq!(
                (h.pattern.as_str(), h.admin),
                ("drain_leaving_remains", Some(Admin::Drain)),
                "{line}"
            );
        }
    }

    #[test]
    fn checks_and_backend() {
        let h = health("Health check for backup server be/s1.example.com conditionally succeeded, reason: Layer7 check passed, code: 200, info: \"OK\", check duration: 3ms, status: 3/3 UP.");
        assert!(h.backup);
        assert_eq!(h.server.as_deref(), Some("s1.example.com"));
        let c = h.check.unwrap();
        assert_eq!(
            (c.health, c.code, c.result.as_deref()),
            (Some((3, 3)), Some(200), Some("conditionally succeeded"))
        );
        let h = health("Health check for server be/s failed, reason: Layer4 timeout, info: \" at initial connection step of tcp-check\", check duration: 2001ms, status: 0/2 DOWN.");
        assert_eq!(
            h.check.unwrap().info.as_deref(),
            Some(" at initial connection step of tcp-check")
        );
        let h = health("[ALERT]  (8995) : backend 'be' has no server available!");
        assert_eq!(
            (h.class, h.backend.as_str(), h.server),
            (Class::Backend, "be", None)
        );
        let h = health("proxy ls_x has no server available!");
        assert_eq!(h.backend, "ls_x");
    }

    /// The DNS lines as HAProxy logs them (src/server.c, src/resolvers.c):
    /// an address changed by a resolution before 3.0, an SRV record's
    /// target with its updater, and from 3.0 the address, its port or both,
    /// by a cache, an additional record or a resolvers/nameserver pair.
    #[test]
    fn dns_lines_as_each_version_logs_them() {
        for (line, from, to, cause) in [
            (
                "be_dns/web1 changed its IP from 192.0.2.10 to 192.0.2.11 by mydns/ns1.",
                Some("192.0.2.10"),
                Some("192.0.2.11"),
                "mydns/ns1",
            ),
            (
                "be_dns/web1 changed its IP from 192.0.2.10 to 192.0.2.11 by DNS additional record.",
                Some("192.0.2.10"),
                Some("192.0.2.11"),
                "DNS additional record",
            ),
            (
                "be_dns/web1 changed its FQDN from (null) to web3.example.com by 'SRV record'",
                Some("(null)"),
                Some("web3.example.com"),
                "SRV record",
            ),
            (
                "[WARNING]  (8) : be_dns/web1: IP changed from '192.0.2.10' to '192.0.2.11' by 'DNS cache'.",
                Some("192.0.2.10"),
                Some("192.0.2.11"),
                "DNS cache",
            ),
            (
                "be_dns/web1: IP changed from '192.0.2.10' to '192.0.2.12', port changed from '80' to '8080' by 'mydns/ns1'.",
                Some("192.0.2.10"),
                Some("192.0.2.12"),
                "mydns/ns1",
            ),
            (
                "be_dns/web1: port changed from '8080' to '+1000' by 'DNS additional record'.",
                None,
                None,
                "DNS additional record",
            ),
            (
                "be_dns/web1: IP changed from '192.0.2.12' to '' by 'mydns/ns1'.",
                Some("192.0.2.12"),
                Some(""),
                "mydns/ns1",
            ),
        ] {
            let h = health(line);
            assert_eq!(h.class, Class::Dns, "{line}");
            assert_eq!(h.backend, "be_dns", "{line}");
            assert_eq!(h.server.as_deref(), Some("web1"), "{line}");
            assert_eq!((h.from.as_deref(), h.to.as_deref()), (from, to), "{line}");
            assert_eq!(h.cause.as_deref(), Some(cause), "{line}");
            assert_eq!((h.op, h.admin), (None, None), "{line}");
        }
    }

    #[test]
    fn other_and_unparsed() {
        let p = PatternSet::builtin();
        assert!(matches!(classify(&p, b"hello world"), Message::Unparsed));
        // Seen from HAProxy 2.6 in master-worker mode, and without a log
        // option; each counted under its own kind.
        for (line, kind) in [
            ("Connect from 127.0.0.1:57010 to 127.0.0.1:27556 (fe/HTTP)", "connect_log"),
            ("[NOTICE]   (15250) : haproxy version is 2.6.12-1+deb12u4", "master_info"),
            ("[NOTICE]   (15250) : path to executable is /usr/sbin/haproxy", "master_info"),
            // 3.x in a container (`docker logs`), at start and at reloads.
            ("[NOTICE]   (403) : Automatically setting global.maxconn to 524251.", "master_info"),
            ("[WARNING]  (403) : [haproxy.main()] HAProxy was started as root without any 'chroot' directive.", "config_message"),
            ("[WARNING]  (39) : config : parsing [/cfg/c2.cfg:14] : defaults section 'haptic-base' (declared at /cfg/c2.cfg:4) is explicitly referenced by another proxy and implicitly used here.", "config_message"),
            ("[ALERT]    (232) : config : Error(s) found in configuration file : /cfg/fe-timeout.cfg", "config_message"),
            ("[WARNING] 303/161811 (12) : parsing [/etc/haproxy/haproxy.cfg:31] : 'option httplog' not usable with backend 'be_tcp' (needs 'mode http'). Falling back to 'option tcplog'.", "config_message"),
            ("[WARNING] 250/123447 (44) : parsing [/etc/haproxy/haproxy.conf:813]: Missing LF on last line, file might have been truncated at position 3.", "config_message"),
            // `journalctl -u haproxy`: systemd's bookkeeping, journalctl's markers.
            ("haproxy.service: Consumed 1h 2min 3.456s CPU time.", "unit_info"),
            ("haproxy.service: Deactivated successfully.", "unit_info"),
            ("-- Boot 1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6 --", "journal_marker"),
            ("-- No entries --", "journal_marker"),
            // A process sent SIGHUP dumps its servers (src/haproxy.c).
            ("SIGHUP received, dumping servers states for proxy be_app.", "sighup_dump"),
            ("SIGHUP received, dumping servers states.", "sighup_dump"),
            ("SIGHUP: Proxy be_app has 2 active servers and 0 backup servers available. Conn: act(FE+BE): 0+0, 0 pend (0 unass), tot(FE+BE): 0+45.", "sighup_dump"),
            ("SIGHUP: Proxy be_tcp is running on backup servers ! Conn: act(FE+BE): 0+0, 0 pend (0 unass), tot(FE+BE): 0+3.", "sighup_dump"),
            ("SIGHUP: Proxy fe_http has no servers. Conn: act(FE+BE): 3+0, 0 pend (0 unass), tot(FE+BE): 120+0.", "sighup_dump"),
            // HAProxy's own HTTP client: no backend of the configuration.
            ("SIGHUP: Server <HTTPCLIENT>/<HTTPSCLIENT> is UP. Conn: 0 act, 0 pend, 0 tot.", "sighup_dump"),
            ("SIGHUP: Proxy <HTTPCLIENT> has no server available ! Conn: act(FE+BE): 0+0, 0 pend (0 unass), tot(FE+BE): 0+0.", "sighup_dump"),
            ("Blocking cacheable cookie in response from instance be_app, server srv1.", "cacheable_cookie_blocked"),
            ("-- Logs begin at Mon 2026-11-30 08:00:01 UTC, end at Sun 2026-12-06 01:30:00 UTC. --", "journal_marker"),
            // ACME certificate renewals (3.2+, src/acme.c's `send_log`s).
            ("acme: /etc/haproxy/ssl/site.pem: Starting update of the certificate.", "acme"),
            ("acme: /etc/haproxy/ssl/site.pem: Successful update of the certificate.", "acme"),
            ("acme: site.pem: invalid HTTP status code 429 when getting Order URL, retrying in 3s (2/3 retries)...", "acme"),
            ("acme: site.pem: couldn't get a the Order status Aborting. (3/3)", "acme"),
            ("[NOTICE]   (8) : acme: generate account key '/etc/haproxy/LE.account.key' for acme section 'LE'.", "acme"),
            ("acme: site.pem: dns-01 requires to set the \"_acme-challenge.example.com\" TXT record to \"abc\" and use the \"acme challenge_ready site.pem domain example.com\" command over the CLI", "acme"),
        ] {
            match classify(&p, line.as_bytes()) {
                Message::Other(idx) => assert_eq!(p.patterns[idx].name, kind, "{line}"),
                _ => panic!("{line}: not an other message"),
            }
        }
        assert!(matches!(classify(&p, b""), Message::Unparsed));
    }

    /// HAProxy starting, reloading, stopping: events with their proxy and
    /// message (2.6 in master-worker mode, and older forms).
    #[test]
    fn process_lines() {
        for (line, pattern, proxy) in [
            ("Proxy fe started.", "proxy_started", "fe"),
            (
                "[NOTICE]   (15250) : Loading success.",
                "loading_success",
                "",
            ),
            (
                "[ALERT]    (15250) : Loading failure!",
                "loading_failure",
                "",
            ),
            ("[NOTICE]   (15250) : Reloading HAProxy", "reloading", ""),
            (
                "[WARNING] 303/161811 (12) : Reexecuting Master process",
                "reloading",
                "",
            ),
            (
                "[NOTICE]   (15250) : New worker (15291) forked",
                "worker_forked",
                "",
            ),
            (
                "[NOTICE]   (1) : New worker #1 (8) forked",
                "worker_forked",
                "",
            ),
            (
                "[NOTICE]   (1) : Initializing new worker (403)",
                "worker_forked",
                "",
            ),
            // systemd about the unit, as `journalctl -u haproxy` shows it.
            ("Reloading haproxy.service.", "unit_reload", ""),
            ("Reloaded HAProxy Load Balancer.", "unit_reload", ""),
            ("Stopping HAProxy Load Balancer...", "unit_start_stop", ""),
            ("Started haproxy@edge.service.", "unit_start_stop", ""),
            ("Failed to start HAProxy Load Balancer.", "unit_start_stop", ""),
            (
                "haproxy.service: Main process exited, code=exited, status=143/n/a",
                "unit_exited",
                "",
            ),
            (
                "haproxy.service: Failed with result 'exit-code'.",
                "unit_exited",
                "",
            ),
            (
                "[WARNING]  (15250) : Former worker (15291) exited with code 0 (Exit)",
                "worker_exited",
                "",
            ),
            (
                "[WARNING] 303/161813 (12) : Former worker 14 exited with code 0",
                "worker_exited",
                "",
            ),
            (
                "[WARNING]  (15250) : Exiting Master process...",
                "master_exiting",
                "",
            ),
            (
                "[ALERT]    (15250) : Current worker (15299) exited with code 143 (Terminated)",
                "worker_exited",
                "",
            ),
            (
                "[WARNING]  (15250) : All workers exited. Exiting... (0)",
                "master_exiting",
                "",
            ),
            (
                "[ALERT] 267/203941 (16713) : sendmsg()/writev() failed in logger #1: Permission denied (errno=13)",
                "logger_failed",
                "",
            ),
            (
                "[ALERT]    (8) : socket() failed in logger #2: Too many open files (errno=24)",
                "logger_failed",
                "",
            ),
            (
                "[WARNING]  (15291) : Proxy <HTTPCLIENT> stopped (cumulated conns: FE: 0, BE: 0).",
                "proxy_stopped",
                "<HTTPCLIENT>",
            ),
            (
                "Stopping backend be_app in 0 ms.",
                "proxy_stopping",
                "be_app",
            ),
            // A stop or reload with `grace` and `hard-stop-after`, and one
            // that could not pause or resume listeners (src/proxy.c,
            // src/haproxy.c, as 2.6 to 3.x write them).
            ("Scheduling a soft-stop in 5000 ms.", "soft_stop", ""),
            (
                "Grace period expired, proceeding with soft-stop now.",
                "soft_stop",
                "",
            ),
            (
                "[WARNING]  (8) : soft-stop running for too long, performing a hard-stop.",
                "hard_stop",
                "",
            ),
            (
                "Proxy fe_http hard-stopped (3 remaining conns will be closed).",
                "hard_stop",
                "fe_http",
            ),
            (
                "Some tasks resisted to hard-stop, exiting now.",
                "hard_stop",
                "",
            ),
            (
                "frontend fe_http failed to enter pause mode.",
                "proxy_pause_failed",
                "fe_http",
            ),
            (
                "Some proxies refused to pause, performing soft stop now.",
                "proxy_pause_failed",
                "",
            ),
            (
                "Port 443 busy while trying to enable proxy ls_tls.",
                "proxy_resume_failed",
                "ls_tls",
            ),
            (
                "Bind on socket 2 busy while trying to enable frontend fe_http.",
                "proxy_resume_failed",
                "fe_http",
            ),
            (
                "Some proxies refused to resume, probably due to a conflict on a listening port. You may want to try again after the conflicting application is stopped, otherwise a restart might be needed to resume safe operations.",
                "proxy_resume_failed",
                "",
            ),
        ] {
            let h = health(line);
            assert_eq!(
                (h.class, h.pattern.as_str(), h.backend.as_str(), h.server),
                (Class::Process, pattern, proxy, None),
                "{line}"
            );
            let message = h.cause.unwrap();
            assert!(line.ends_with(&message), "{line}: {message}");
        }
    }
}
