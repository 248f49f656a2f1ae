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
        String::from_utf8_lossy(r.client()),
        r.client_port(),
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

/// A built-in format with items put in front (`%H` first, the commonest
/// custom format): read by the scanner for the front and the built-in's
/// hand-written parser for the rest, it gives what its compiled format
/// gives, on every request line of the real captures; health lines stay
/// health lines.
#[test]
fn a_built_in_format_with_items_in_front_reads_as_its_compiled_format() {
    use hapwatch::haproxy::{classify, Message};
    use hapwatch::patterns::logformat::LogFormat;
    let builtin = PatternSet::builtin();
    let source = |n: &str| {
        let f = builtin.formats.iter().find(|f| f.name == n).expect(n);
        f.source.clone()
    };
    // Each front and the values a line puts there.
    let fronts = [
        ("%H", "lb-7"),
        ("%ID %pid", "7F00:A3B2 4242"),
        ("app=%[var(txn.app)]", "app=shop"),
    ];
    let mut compared = 0;
    for (front, values) in fronts {
        let names = ["httpslog", "httplog", "tcplog"];
        let own: Vec<LogFormat> = names
            .iter()
            .map(|n| LogFormat::compile(n, &format!("{front} {}", source(n))).unwrap())
            .collect();
        let mut set = PatternSet::builtin();
        set.add_formats(own.clone());
        // Linked to the built-in they end with, the longest one.
        for (f, n) in set.formats.iter().zip(names) {
            assert_eq!(f.prefix.as_ref().map(|p| p.builtin.as_str()), Some(n));
        }
        for line in lines() {
            let msg = hapwatch::syslog::parse(line.as_bytes()).msg;
            // Lines of the three formats: a CLF line with a front is of
            // none of them (no format here reads it).
            if request::parse(msg).is_none_or(|r| r.mode == hapwatch::haproxy::Mode::Clf) {
                continue;
            }
            let prefixed = format!("{values} {}", String::from_utf8_lossy(msg).trim_end());
            // The front read by the scanner, the rest by the fast parser.
            assert!(logformat::parse_prefixed(&set, prefixed.as_bytes()).is_some());
            let Message::Request(fast) = classify(&set, prefixed.as_bytes()) else {
                panic!("not a request: {prefixed}")
            };
            let slow = own
                .iter()
                .find_map(|f| logformat::parse(f, prefixed.as_bytes()))
                .unwrap_or_else(|| panic!("no compiled format reads {prefixed}"));
            assert_eq!(seen(&fast), seen(&slow), "{front}: {prefixed}");
            compared += 1;
        }
        let health = "lb-7 Server be_app/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left.";
        assert!(matches!(
            classify(&set, health.as_bytes()),
            Message::Unparsed | Message::Health(_)
        ));
        let health = &health["lb-7 ".len()..];
        assert!(matches!(
            classify(&set, health.as_bytes()),
            Message::Health(_)
        ));
    }
    assert!(compared > 100, "{compared} lines compared");
}

/// Which formats take that path: a front of text items only, ending in
/// text or a space; a format that spells out the built-in one reads as it.
#[test]
fn only_fronts_of_text_items_are_read_by_the_built_in_parser() {
    use hapwatch::patterns::logformat::LogFormat;
    let builtin = PatternSet::builtin();
    let source = |n: &str| {
        let f = builtin.formats.iter().find(|f| f.name == n).expect(n);
        f.source.clone()
    };
    let (httplog, tcplog) = (source("httplog"), source("tcplog"));
    let linked = |s: &str| {
        let mut set = PatternSet::builtin();
        set.add_formats(vec![LogFormat::compile("own", s).unwrap()]);
        let f = set.formats.into_iter().next().unwrap();
        (
            f.prefix.as_ref().map(|p| p.builtin.clone()),
            f.is_builtin_verbatim(),
        )
    };
    let some = |n: &str| Some(n.to_string());
    assert_eq!(linked(&httplog), (some("httplog"), true));
    assert_eq!(linked(&format!("%H {httplog}")), (some("httplog"), false));
    assert_eq!(linked(&format!("[%ID] {tcplog}")), (some("tcplog"), false));
    // Items with a role stay on the general path (a second backend, a
    // second date: the format decides which one counts).
    assert_eq!(linked(&format!("%b {httplog}")), (None, false));
    assert_eq!(linked(&format!("%T {httplog}")), (None, false));
    // An item right against the built-in's first one: no place to cut.
    assert_eq!(linked(&format!("%H{httplog}")), (None, false));
    // Something after the built-in's last item: not its line.
    assert_eq!(linked(&format!("{httplog} %ID")), (None, false));
    // The longest built-in wins: httpslog's string starts with httplog's.
    let httpslog = source("httpslog");
    assert_eq!(linked(&format!("%H {httpslog}")), (some("httpslog"), false));

    // A `%H httplog` format does not take an httpslog or a tcplog line,
    // though the fast parser reads both.
    let mut set = PatternSet::builtin();
    set.add_formats(vec![
        LogFormat::compile("own", &format!("%H {httplog}")).unwrap()
    ]);
    let https = r#"lb-7 127.0.0.1:5 [24/Nov/2026:16:21:15.230] fe_tls~ be/s 0/0/0/0/0 200 5 - - ---- 1/1/0/0/0 0/0 "GET /x HTTP/1.1" 0/0000000000000000/0/0/0 -/TLSv1.3/TLS_AES_256_GCM_SHA384"#;
    let tcp = "lb-7 127.0.0.1:37880 [24/Nov/2026:16:21:15.231] fe_tcp be_tcp/t1 1/0/1 120 CD 1/1/0/0/0 0/0";
    let http = r#"lb-7 127.0.0.1:5 [24/Nov/2026:16:21:15.230] fe be/s 0/0/0/0/0 200 5 - - ---- 1/1/0/0/0 0/0 "GET /x HTTP/1.1""#;
    assert!(logformat::parse_prefixed(&set, https.as_bytes()).is_none());
    assert!(logformat::parse_prefixed(&set, tcp.as_bytes()).is_none());
    let (r, by_frontend) = logformat::parse_prefixed(&set, http.as_bytes()).unwrap();
    assert_eq!((r.server, r.status, by_frontend), (&b"s"[..], 200, false));
    // Nor does a `%H tcplog` format take an httplog-clf line, which the
    // fast parser reads after the front (as neither HTTP nor TCP).
    let mut set = PatternSet::builtin();
    set.add_formats(vec![
        LogFormat::compile("own", &format!("%H {tcplog}")).unwrap()
    ]);
    let clf = concat!(
        r#"lb-7 10.0.1.2 - - [06/Feb/2009:12:14:14 +0100] "GET /index.html HTTP/1.1" 200 2750 "" "" "#,
        r#"33317 661 "http-in" "static" "srv1" 10 0 30 69 109 "----" 1 1 1 1 0 0 0 "" "" "" """#
    );
    assert!(request::parse(&clf.as_bytes()["lb-7 ".len()..]).is_some());
    assert!(logformat::parse_prefixed(&set, clf.as_bytes()).is_none());
}
