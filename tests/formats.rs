//! HAProxy's built-in formats, as log-format strings in patterns/formats.toml,
//! read every request line of the real captures exactly as the hand-written
//! parser does: the specialised path and the compiled one agree.

mod common;

use hapwatch::haproxy::{logformat, request, Request};
use hapwatch::patterns::PatternSet;

/// What a user sees of a request, whichever parser read it.
fn seen(r: &Request) -> String {
    let h = r.http();
    format!(
        "{:?} {:?} {} {:?} {} {:?}/{:?} {:?} {} {} {} {}{} {:?} {:?} {:?} {} {} {} {} {} {} {} {} {:?}",
        String::from_utf8_lossy(r.client),
        r.client_port,
        r.accept,
        String::from_utf8_lossy(r.frontend),
        r.tls,
        String::from_utf8_lossy(r.backend),
        String::from_utf8_lossy(r.server),
        r.timers,
        r.logasap,
        r.status,
        r.bytes,
        r.bytes_partial,
        r.redispatched,
        String::from_utf8_lossy(r.req_cookie),
        String::from_utf8_lossy(r.res_cookie),
        String::from_utf8_lossy(r.termination),
        r.actconn,
        r.feconn,
        r.beconn,
        r.srv_conn,
        r.retries,
        r.srv_queue,
        r.backend_queue,
        r.zoned,
        h.map(|h| (String::from_utf8_lossy(h.method).into_owned(), String::from_utf8_lossy(h.uri).into_owned(), String::from_utf8_lossy(h.version).into_owned())),
    )
}

fn lines() -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![common::fixture("")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read(&p).unwrap();
                out.extend(String::from_utf8_lossy(&text).lines().map(str::to_string));
            }
        }
    }
    out
}

#[test]
fn every_built_in_format_reads_the_captures_as_the_fast_parser_does() {
    let set = PatternSet::builtin();
    let order = ["httpslog", "httplog", "tcplog", "httplog-clf"];
    let formats: Vec<_> = order
        .iter()
        .map(|n| set.formats.iter().find(|f| f.name == *n).expect(n))
        .collect();
    let mut compared = std::collections::BTreeMap::new();
    for line in lines() {
        let msg = hapwatch::syslog::parse(line.as_bytes()).msg;
        let Some(fast) = request::parse(msg) else {
            continue;
        };
        let msg = msg.trim_ascii_end();
        let (name, slow) = formats
            .iter()
            .find_map(|f| logformat::parse(f, msg).map(|r| (f.name.as_str(), r)))
            .unwrap_or_else(|| panic!("no built-in format reads {line}"));
        assert_eq!(seen(&slow), seen(&fast), "{name}: {line}");
        *compared.entry(name).or_insert(0) += 1;
    }
    // The captures hold HTTP, HTTPS and TCP lines: each path was compared.
    for n in ["httpslog", "httplog", "tcplog"] {
        assert!(
            compared.get(n).copied().unwrap_or(0) > 0,
            "no {n} line compared: {compared:?}"
        );
    }
}

#[test]
fn tcplog_clf_is_read_by_its_format_not_misread_as_http_clf() {
    let line = r#"10.0.1.2 - - [06/Feb/2009:12:14:14 +0000] "TCP " 000 2750 "" "" 33317 661 "fe_tcp" "be_tcp" "t1" 0 0 1 120 300 "CD"-- 1 1 1 1 0 0 0 "" """#;
    assert!(request::parse(line.as_bytes()).is_none());
    let set = PatternSet::builtin();
    let hapwatch::haproxy::Message::Request(r) = hapwatch::haproxy::classify(&set, line.as_bytes())
    else {
        panic!("not a request")
    };
    assert_eq!(
        (r.backend, r.server, r.termination),
        (&b"be_tcp"[..], &b"t1"[..], &b"CD"[..])
    );
    assert_eq!(
        (r.timers[1], r.timers[2], r.timers[5], r.bytes),
        (0, 1, 120, 2750)
    );
    assert_eq!(
        hapwatch::time::format_rfc3339_ms(r.accept),
        "2009-02-06T12:14:14.661Z"
    );
}
