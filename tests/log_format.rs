//! Custom `log-format`s against a real HAProxy: five frontends on the same
//! backend, the default `option httplog` and four formats no built-in
//! parser reads (`%H` first without `%Tr`, hand-written JSON, a unique id
//! first with a captured header, httplog with `log-format-sd` over RFC
//! 5424), the lines read through `--haproxy-config` and `--log-format`,
//! with the requests, servers and the outage they show: the same traffic
//! through each frontend gives each the httplog frontend's figures.
//!
//! Needs haproxy and python3 (`.ci/run` installs them).

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOST_FIRST: &str =
    "%H %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r";
const JSON: &str = r#"{"time":"%trg","client":"%ci","frontend":"%ft","backend":"%b","server":"%s","Tw":%Tw,"Tc":%Tc,"Tr":%Tr,"Ta":%Ta,"status":%ST,"bytes":%B,"term":"%tsc"}"#;
const ID_FIRST: &str = "%ID [%t] %f %b/%s %ST %Tr %hr";
/// RFC 5424 structured data HAProxy writes before the message.
const SD: &str = r#"[hapwatch@32473 backend="%b" server="%s" status="%ST"]"#;
/// The frontends, in the order of their ports.
const FRONTENDS: [&str; 5] = ["fe_host", "fe_json", "fe_id", "fe_http", "fe_sd"];

fn get(port: u16) {
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n");
        let _ = s.read_to_end(&mut Vec::new());
    }
}

/// Runs HAProxy with the three frontends, sends `n` requests to each,
/// takes srv2 down, sends `n` more; returns the configuration and the
/// syslog datagrams HAProxy sent.
fn capture(dir: &std::path::Path, n: usize) -> (std::path::PathBuf, Vec<u8>) {
    let (sink_port, fe) = (29210u16, [29211u16, 29212, 29213, 29216, 29217]);
    let (s1, s2) = (29214u16, 29215u16);
    let sink = UdpSocket::bind(("127.0.0.1", sink_port)).unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (got, stop) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(k) = sink.recv(&mut buf) {
                    let mut g = got.lock().unwrap();
                    g.extend_from_slice(&buf[..k]);
                    g.push(b'\n');
                }
            }
        })
    };
    // haproxy.cfg quotes the formats as an operator writes them.
    let q = |f: &str| f.replace('\\', "\\\\").replace('"', "\\\"");
    let cfg = format!(
        "global\n    log 127.0.0.1:{sink_port} local0\n\
         defaults\n    mode http\n    log global\n    option httplog\n    option dontlognull\n    retries 0\n\
         \x20   timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe_host\n    bind 127.0.0.1:{}\n    log-format \"{}\"\n    default_backend be_app\n\
         frontend fe_json\n    bind 127.0.0.1:{}\n    log-format \"{}\"\n    default_backend be_app\n\
         frontend fe_id\n    bind 127.0.0.1:{}\n    unique-id-format %{{+X}}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid\n\
         \x20   capture request header Host len 32\n\
         \x20   log-format \"{}\"\n    default_backend be_app\n\
         frontend fe_http\n    bind 127.0.0.1:{}\n    default_backend be_app\n\
         frontend fe_sd\n    bind 127.0.0.1:{}\n    no log\n    log 127.0.0.1:{sink_port} format rfc5424 local0\n\
         \x20   log-format-sd \"{}\"\n    default_backend be_app\n\
         backend be_app\n    option httpchk GET /\n\
         \x20   server srv1 127.0.0.1:{s1} check inter 200ms fall 2 rise 2\n\
         \x20   server srv2 127.0.0.1:{s2} check inter 200ms fall 2 rise 2\n",
        fe[0],
        q(HOST_FIRST),
        fe[1],
        q(JSON),
        fe[2],
        q(ID_FIRST),
        fe[3],
        fe[4],
        q(SD),
    );
    let cfg_path = dir.join("haproxy.cfg");
    std::fs::write(&cfg_path, &cfg).unwrap();
    haproxy_accepts(&cfg_path);
    let _b1 = KillOnDrop(http_server(s1, dir));
    let b2 = KillOnDrop(http_server(s2, dir));
    let haproxy = KillOnDrop(
        std::process::Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg_path)
            // Local dates (%tr, %t, the syslog header) nine hours off UTC,
            // zoned ones (%trg) on UTC: the two must meet.
            .env("TZ", "Asia/Tokyo")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while fe
        .iter()
        .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_err())
    {
        assert!(Instant::now() < deadline, "haproxy never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(600)); // checks UP
    for _ in 0..n {
        for p in fe.iter().copied() {
            get(p);
        }
    }
    drop(b2);
    std::thread::sleep(Duration::from_millis(1500)); // srv2 DOWN
    for _ in 0..n {
        for p in fe.iter().copied() {
            get(p);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(haproxy);
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let lines = got.lock().unwrap().clone();
    (cfg_path, lines)
}

#[test]
fn any_log_format_is_read_from_haproxy_cfg() {
    require_tools(&["haproxy", "python3"]);
    let dir = tempfile::tempdir().unwrap();
    let n = 20;
    let (cfg, lines) = capture(dir.path(), n);
    let log = dir.path().join("haproxy.log");
    std::fs::write(&log, &lines).unwrap();
    let text = String::from_utf8_lossy(&lines);
    assert!(
        text.contains(r#"{"time":""#),
        "HAProxy wrote JSON: {text:.2000}"
    );

    let analyze = |extra: &[&str]| {
        let mut all = vec!["analyze", "--format", "json", "--tz", "Asia/Tokyo"];
        all.extend_from_slice(extra);
        all.push(log.to_str().unwrap());
        hapwatch(&all)
    };
    // Without the configuration, most lines are not understood: said, exit 1.
    let out = analyze(&[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With it, every line is read.
    let out = analyze(&["--haproxy-config", cfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // What the %ID format lacks is said, by frontend.
    assert!(
        stderr.contains("frontend fe_id") && stderr.contains("no %Tw"),
        "{stderr}"
    );
    assert!(
        stderr.contains("frontend fe_host") && stderr.contains("no %Tr: latency alerts disabled"),
        "{stderr}"
    );
    assert!(!stderr.contains("frontend fe_sd"), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["unparsed"], 0, "{text:.3000}");
    assert_eq!(r["input"]["requests"], 5 * 2 * n as u64);
    assert!(
        text.contains("[hapwatch@32473 backend=\"be_app\" server=\"srv1\" status=\"200\"]"),
        "HAProxy wrote the structured data: {text:.3000}"
    );
    let srv1 = server(&r, "be_app", "srv1");
    let srv2 = server(&r, "be_app", "srv2");
    let total = srv1["requests"].as_u64().unwrap() + srv2["requests"].as_u64().unwrap();
    // Requests that found no server (none here) would be under <NOSRV>.
    assert_eq!(total, 5 * 2 * n as u64, "{r}");
    assert!(srv1["timers_ms"]["Tr"]["max"].as_u64().is_some(), "{srv1}");
    // srv2 went DOWN: after it, every request went to srv1.
    assert!(srv1["requests"].as_u64().unwrap() >= 5 * n as u64, "{r}");
    let t = transitions(&r);
    assert!(
        t.iter()
            .any(|s| s.starts_with("be_app/srv2") && s.contains("DOWN")),
        "{t:?}"
    );
    // The JSON lines' zoned dates and the others' local ones agree: one
    // story, no request in the future or an hour away.
    let (first, last) = (
        r["window"]["start"].as_str().unwrap(),
        r["window"]["end"].as_str().unwrap(),
    );
    assert!(
        r["window"]["seconds"].as_f64().unwrap() < 30.0,
        "{first} {last}"
    );
    let (a_minute_ago, soon) = (rfc3339_from_now(-60_000), rfc3339_from_now(300_000));
    assert!(
        first > a_minute_ago.as_str() && first < soon.as_str(),
        "{first} is not now"
    );
    // `listen` reads them alike: not a word of lines not understood with
    // the configuration, the hint to give it without.
    for (with_cfg, args) in [
        (true, vec!["--haproxy-config", cfg.to_str().unwrap()]),
        (false, vec![]),
    ] {
        let db = dir.path().join(format!("live-{with_cfg}.db"));
        let mut all = vec![
            "listen",
            "--stdin",
            "--tz",
            "Asia/Tokyo",
            "--db",
            db.to_str().unwrap(),
        ];
        all.extend(args);
        let out = hapwatch_stdin(&all, &lines);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert_eq!(!err.contains("not understood"), with_cfg, "{err}");
        if !with_cfg {
            assert!(err.contains("--haproxy-config"), "{err}");
        }
    }
    // Each frontend's lines alone: the same traffic went through each, so
    // each gives the httplog frontend's figures (what its format has).
    let figures = |fe: &str| {
        let marker = if fe == "fe_json" {
            "\"frontend\":\"fe_json\"".to_string()
        } else {
            format!(" {fe} ")
        };
        let own: String = text
            .lines()
            .filter(|l| l.contains(&marker))
            .map(|l| format!("{l}\n"))
            .collect();
        let path = dir.path().join(format!("{fe}.log"));
        std::fs::write(&path, own).unwrap();
        let out = hapwatch(&[
            "analyze",
            "--format",
            "json",
            "--tz",
            "Asia/Tokyo",
            "--haproxy-config",
            cfg.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{fe}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["input"]["unparsed"], 0, "{fe}");
        let per = |srv: &str, what: &dyn Fn(&serde_json::Value) -> serde_json::Value| {
            what(server(&r, "be_app", srv))
        };
        let f = |srv: &str| {
            (
                per(srv, &|s| s["requests"].clone()),
                per(srv, &|s| s["status"].clone()),
                per(srv, &|s| s["timers_ms"]["Ta"]["count"].clone()),
                per(srv, &|s| s["timers_ms"]["Tr"]["count"].clone()),
            )
        };
        (f("srv1"), f("srv2"))
    };
    let reference = figures("fe_http");
    assert_eq!(
        (reference.0 .0.as_u64(), reference.1 .0.as_u64()),
        (Some(n as u64 / 2 + n as u64), Some(n as u64 / 2)),
        "httplog frontend: {reference:?}"
    );
    for fe in FRONTENDS {
        let (a, b) = figures(fe);
        // Requests and status classes everywhere.
        assert_eq!(
            (&a.0, &a.1, &b.0, &b.1),
            (
                &reference.0 .0,
                &reference.0 .1,
                &reference.1 .0,
                &reference.1 .1
            ),
            "{fe}"
        );
        match fe {
            // No %Ta, no %Tr: absent, never zeros.
            "fe_id" => assert_eq!(
                (a.2.as_u64(), a.3.clone()),
                (Some(0), reference.0 .3.clone()),
                "{fe}"
            ),
            // No %Tr.
            "fe_host" => assert_eq!(
                (a.2.clone(), a.3.as_u64()),
                (reference.0 .2.clone(), Some(0)),
                "{fe}"
            ),
            _ => assert_eq!((&a.2, &a.3), (&reference.0 .2, &reference.0 .3), "{fe}"),
        }
    }
    // A format without %tsc counts no termination state, not an empty one.
    let term = srv1["termination"].as_object().unwrap();
    assert!(!term.contains_key(""), "{term:?}");
}

/// Now and `offset_ms`, as the report writes times (RFC 3339, UTC).
fn rfc3339_from_now(offset_ms: i64) -> String {
    hapwatch::time::format_rfc3339_ms(now_ms() + offset_ms)
}

/// `analyze` of `input` on standard input, its lines in `format`
/// (`--log-format`), dated in 2026 on UTC: the JSON report.
fn analyze_in_format(format: &str, input: &str) -> serde_json::Value {
    let out = hapwatch_stdin(
        &[
            "analyze",
            "--format",
            "json",
            "--year",
            "2026",
            "--tz",
            "UTC",
            "--log-format",
            format,
            "-",
        ],
        input.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_log_format_given_on_the_command_line() {
    let line = "<134>Nov 24 16:21:15 lb1 haproxy[1]: 7F00_1 [24/Nov/2026:16:21:15.230] fe_id be_app/srv1 503 12\n";
    let r = analyze_in_format(ID_FIRST, line);
    assert_eq!(r["input"]["requests"], 1);
    let s = server(&r, "be_app", "srv1");
    assert_eq!(s["status"]["5xx"], 1, "{s}");
    // A mistake in a format: exit 2, what to fix.
    for cmd in [
        &["analyze", "--log-format", "%{+Q %s", "-"][..],
        &["listen", "--stdin", "--log-format", "100% %s"][..],
    ] {
        let out = hapwatch_stdin(cmd, b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(
            err.contains("missing `}`") || err.contains("write `%%`"),
            "{err}"
        );
    }
}

#[test]
fn formats_named_in_listens_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("hapwatch.toml");
    let db = dir.path().join("live.db");
    let lines = "<134>Nov 24 16:21:15 lb1 haproxy[1]: 7F00_1 [24/Nov/2026:16:21:15.230] fe_id be_app/srv1 503 12\n".repeat(4);
    let write = |format: &str| {
        std::fs::write(
            &cfg,
            format!("[[formats]]\nname = \"ids\"\nfrontend = \"fe_i*\"\nformat = '{format}'\n"),
        )
        .unwrap()
    };
    write(ID_FIRST);
    let args = [
        "listen",
        "--stdin",
        "--tz",
        "UTC",
        "--db",
        db.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ];
    let out = hapwatch_stdin(&args, lines.as_bytes());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("not understood"), "{err}");
    assert!(
        err.contains("ids: no %Tw"),
        "what the format lacks is said by its name: {err}"
    );
    write("%{+Q %s");
    let out = hapwatch_stdin(&args, lines.as_bytes());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`ids`") && err.contains("missing `}`"),
        "{err}"
    );
}

/// A line that names a frontend with a format of its own but does not fit
/// it is counted for that frontend and shown with --show-unparsed.
#[test]
fn lines_that_do_not_fit_their_frontends_format_are_counted_per_frontend() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n  mode http\nfrontend fe_id\n  bind :80\n  log-format \"{ID_FIRST}\"\n  default_backend be_app\nbackend be_app\n  server srv1 10.0.0.1:80\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("h.log");
    std::fs::write(
        &log,
        "Nov 24 16:21:15 lb1 haproxy[1]: 7F00_1 [24/Nov/2026:16:21:15.230] fe_id be_app/srv1 200 12 {a}\n\
         Nov 24 16:21:15 lb1 haproxy[1]: 7F00_2 [24/Nov/2026:16:21:15.330] fe_id be_app/srv1 2OO 12 {a}\n\
         Nov 24 16:21:15 lb1 haproxy[1]: something else entirely\n",
    )
    .unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "analyze",
            "--year",
            "2026",
            "--tz",
            "UTC",
            "--haproxy-config",
            cfg.to_str().unwrap(),
            "--show-unparsed",
            "5",
        ];
        a.extend_from_slice(extra);
        a.push(log.to_str().unwrap());
        hapwatch(&a)
    };
    let out = args(&["--format", "json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["requests"], 1);
    assert_eq!(r["input"]["unparsed"], 2);
    assert_eq!(
        r["input"]["unparsed_by_frontend"],
        serde_json::json!({"fe_id": 1})
    );
    let out = args(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 unparsed line of frontend fe_id does not fit its log-format")
            && text.contains("7F00_2"),
        "{text}"
    );
}

/// `log-steps` in a `log-format` of the operator's own: its steps are told
/// as in HAProxy's formats when it logs the status and the termination
/// state, and never when it does not (every line of it would then look
/// like a step).
#[test]
fn log_steps_are_told_in_a_log_format_that_logs_status_and_termination() {
    let read = |format: &str, lines: &[&str]| -> serde_json::Value {
        let input: String = lines
            .iter()
            .map(|l| format!("<134>Dec  7 08:05:56 lb1 haproxy[1]: {l}\n"))
            .collect();
        analyze_in_format(format, &input)
    };
    // Lines not understood, steps, requests (steps: 0 when not said).
    let counts = |r: &serde_json::Value| {
        let n = |k: &str| r["input"][k].as_u64().unwrap_or(0);
        (n("unparsed"), n("log_steps"), n("requests"))
    };
    // httplog's items in another order.
    let moved = "%ci:%cp [%tr] %ft %b/%s %ST %tsc %TR/%Tw/%Tc/%Tr/%Ta %B %{+Q}r";
    let r = read(
        moved,
        &[
            r#"127.0.0.1:1 [07/Dec/2026:08:05:56.896] fe fe/<NOSRV> 0 ---- -1/-1/-1/-1/0 0 "<BADREQ>""#,
            r#"127.0.0.1:1 [07/Dec/2026:08:05:56.896] fe fe/<NOSRV> -1 ---- -1/-1/-1/-1/0 0 "GET / HTTP/1.1""#,
            r#"127.0.0.1:1 [07/Dec/2026:08:05:56.896] fe be/s1 -1 ---- 0/0/0/-1/0 0 "GET / HTTP/1.1""#,
            r#"127.0.0.1:1 [07/Dec/2026:08:05:56.896] fe be/s1 200 ---- 0/0/0/1/1 454 "GET / HTTP/1.1""#,
            r#"127.0.0.1:2 [07/Dec/2026:08:05:56.950] fe fe/<NOSRV> 400 CR-- -1/-1/-1/-1/200 0 "<BADREQ>""#,
        ],
    );
    assert_eq!(counts(&r), (0, 3, 2), "{}", r["input"]);
    assert_eq!(server(&r, "be", "s1")["requests"], 1);
    // `%H` before httplog: read by HAProxy's own parser after the name.
    let host_first = "%H %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r";
    let r = read(
        host_first,
        &[
            r#"vm 127.0.0.1:1 [07/Dec/2026:08:05:56.896] fe fe/<NOSRV> -1/-1/-1/-1/0 -1 0 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#,
            r#"vm 127.0.0.1:1 [07/Dec/2026:08:05:56.896] fe be/s1 0/0/0/1/1 200 454 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#,
        ],
    );
    assert_eq!(counts(&r), (0, 1, 1), "{}", r["input"]);
    // `%OG` at the end of a format of its own: the response step by name.
    let origin_last = "%ci:%cp [%tr] %ft %b/%s %ST %tsc %TR/%Tw/%Tc/%Tr/%Ta %B %{+Q}r %OG";
    let r = read(
        origin_last,
        &[
            r#"127.0.0.1:1 [07/Dec/2026:08:05:56.896] fe be/s1 200 ---- 0/0/0/1/1 154 "GET / HTTP/1.1" txn_response"#,
            r#"127.0.0.1:1 [07/Dec/2026:08:05:56.896] fe be/s1 200 ---- 0/0/0/1/1 454 "GET / HTTP/1.1" txn_close"#,
        ],
    );
    assert_eq!(counts(&r), (0, 1, 1), "{}", r["input"]);
    assert_eq!(server(&r, "be", "s1")["bytes"], 454);
    // No status logged: `----` with no status is every line, not a step.
    let no_status = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %B %tsc %{+Q}r";
    let r = read(
        no_status,
        &[
            r#"127.0.0.1:1 [07/Dec/2026:08:05:56.896] fe be/s1 0/0/0/1/1 454 ---- "GET / HTTP/1.1""#,
            r#"127.0.0.1:3 [07/Dec/2026:08:05:56.990] fe be/s1 0/0/0/2/2 100 ---- "GET /b HTTP/1.1""#,
        ],
    );
    assert!(r["input"].get("log_steps").is_none(), "{}", r["input"]);
    assert_eq!(counts(&r), (0, 0, 2), "{}", r["input"]);
}
