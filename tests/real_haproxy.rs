//! End to end against the real daemons: runs fixtures/capture.sh (a fresh
//! HAProxy and rsyslog on 127.0.0.1 with a scripted outage, ~50 s) and
//! checks that every captured form tells the scripted story. This is what
//! keeps hapwatch honest about output it has not seen before: the daemons
//! installed on this machine, not the committed fixtures.
//!
//! fixtures/capture-formats.sh does the same for custom log-formats.
//!
//! Needs haproxy, rsyslogd and python3 (`.ci/run` installs them).

mod common;
use common::*;

#[test]
fn fresh_capture_from_real_haproxy_and_rsyslog() {
    require_tools(&["haproxy", "rsyslogd", "python3"]);
    // Ports apart from the other capture's, so both tests run at once.
    let dir = capture("capture.sh", "27300");
    let app_story: Vec<&str> = EXPECTED
        .into_iter()
        .filter(|s| s.starts_with("be_app"))
        .collect();
    let mut tcp_story: Vec<&str> = EXPECTED
        .into_iter()
        .filter(|s| s.starts_with("be_tcp"))
        .collect();
    tcp_story.sort();
    // The committed forms, and rsyslog's documented JSON template (not
    // among the committed fixtures: read here from a fresh capture only).
    for form in FORMS.into_iter().chain(["rsyslog-json.log"]) {
        let path = dir.path().join(form);
        let r = analyze_json(&[path.to_str().unwrap()]);
        let t = transitions(&r);
        // The be_app story is strictly ordered; the two be_tcp servers may
        // be logged in either order within the same second.
        let app: Vec<&String> = t.iter().filter(|s| s.starts_with("be_app")).collect();
        assert_eq!(app, app_story, "{form}");
        let mut tcp: Vec<&String> = t.iter().filter(|s| s.starts_with("be_tcp")).collect();
        tcp.sort();
        assert_eq!(tcp, tcp_story, "{form}");
        assert_eq!(r["input"]["unparsed"], 0, "{form}");
        // ~800 are sent; fewer on a loaded machine.
        assert!(r["input"]["requests"].as_u64().unwrap() > 300, "{form}");
        let be_tcp = backend(&r, "be_tcp");
        assert_eq!(
            be_tcp["no_server_periods"].as_array().unwrap().len(),
            1,
            "{form}"
        );
        let tr = &server(&r, "be_app", "srv1")["timers_ms"]["Tr"];
        assert!(
            tr["max"].as_u64().unwrap() >= 300,
            "{form}: slow period visible in Tr: {tr}"
        );
    }
}

#[test]
fn fresh_capture_of_tls_clf_backup_tracking_agent() {
    require_tools(&["haproxy", "openssl", "python3"]);
    let dir = capture("capture-variants.sh", "27400");
    let r = analyze_json(&[dir.path().join("haproxy-variants.log").to_str().unwrap()]);
    assert_eq!(r["input"]["unparsed"], 0);
    // The TLS listener's connection errors, as HAProxy logs them (client
    // and accept date in front): each read as its kind, not unparsed (at
    // least the script's two: a loaded machine may time a handshake out).
    let kinds = &r["input"]["other_kinds"];
    assert!(
        kinds["ssl_handshake_failure"].as_u64() >= Some(1),
        "{kinds}"
    );
    assert!(kinds["connection_error"].as_u64() >= Some(1), "{kinds}");
    // 600 are sent; a loaded machine serves fewer TLS requests in the
    // scripted 30 s (the count is not what this test is about).
    assert!(
        r["input"]["requests"].as_u64().unwrap() > 200,
        "{}",
        r["input"]
    );
    // Per server, the order HAProxy logged is the scripted one.
    let t = transitions(&r);
    for server in ["be_bk/a", "be_bk/b", "be_trk/t", "be_trk/ag"] {
        let got: Vec<&String> = t
            .iter()
            .filter(|s| s.starts_with(&format!("{server} ")))
            .collect();
        let want: Vec<&str> = VARIANTS_EXPECTED
            .into_iter()
            .filter(|s| s.starts_with(&format!("{server} ")))
            .collect();
        // The agent's "ready up" makes two changes at once (leave drain,
        // come UP); HAProxy logs them in either order depending on timing,
        // and hapwatch follows what was logged.
        let other_order = [
            "be_trk/ag UP->DRAIN",
            "be_trk/ag DRAIN->DOWN",
            "be_trk/ag DOWN->DRAIN",
            "be_trk/ag DRAIN->UP",
        ];
        if server == "be_trk/ag" && got == other_order {
            continue;
        }
        assert_eq!(got, want, "{server}");
    }
    assert!(r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["host"] == "lb-test"));
}

/// `hapwatch analyze --format json --haproxy-config CFG LOG`.
fn analyze_with_config(cfg: &std::path::Path, log: &std::path::Path) -> std::process::Output {
    hapwatch(&[
        "analyze",
        "--format",
        "json",
        "--haproxy-config",
        cfg.to_str().unwrap(),
        log.to_str().unwrap(),
    ])
}

/// What README's "Your own log-format" shows, on the committed capture
/// (fixtures/capture-formats.sh): four frontends in four formats, read
/// whole with the configuration HAProxy ran, three quarters unread
/// without it.
fn read_custom_formats(dir: &std::path::Path) -> serde_json::Value {
    let (cfg, log) = (dir.join("haproxy.cfg"), dir.join("haproxy-formats.log"));
    let out = analyze_with_config(&cfg, &log);
    assert!(out.status.success());
    // What fe_id's format lacks is said, by frontend and line.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("frontend fe_id (") && err.contains("no %Tw"),
        "{err}"
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["unparsed"], 0, "{}", r["input"]);
    assert_eq!(
        transitions(&r),
        ["be_app/srv2 UP->DOWN", "be_app/srv2 DOWN->UP"]
    );
    // Every request of the four frontends reached a server of be_app.
    let served = ["srv1", "srv2"]
        .map(|s| server(&r, "be_app", s)["requests"].as_u64().unwrap())
        .iter()
        .sum::<u64>();
    assert_eq!(served, r["input"]["requests"].as_u64().unwrap());
    r
}

#[test]
fn the_readme_custom_formats_capture_is_read_whole_with_its_haproxy_cfg() {
    let dir = fixture("formats");
    let r = read_custom_formats(&dir);
    assert_eq!(
        (&r["input"]["lines"], &r["input"]["requests"]),
        (&serde_json::json!(814), &serde_json::json!(800))
    );
    // Without the configuration only fe_http's lines (option httplog) are
    // read, and the user is told what to give.
    let out = hapwatch(&["analyze", dir.join("haproxy-formats.log").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("600 of 814 lines not understood"), "{err}");
    assert!(err.contains("--haproxy-config"), "{err}");
}

#[test]
fn fresh_capture_of_custom_formats() {
    require_tools(&["haproxy", "python3"]);
    let dir = capture("capture-formats.sh", "27500");
    let r = read_custom_formats(dir.path());
    // 800 are sent; fewer on a loaded machine.
    assert!(
        r["input"]["requests"].as_u64().unwrap() > 300,
        "{}",
        r["input"]
    );
}

/// rsyslog with `$RepeatedMsgReduction on` (Ubuntu's default rsyslog.conf
/// has it) writes a run of identical messages as the first and `message
/// repeated N times: [ MSG]`. A log-format with no date and no port (here
/// client, frontend, server, status, bytes) repeats itself at every
/// request from one client: every one of them is a request, none of the
/// lines is left unparsed.
#[test]
fn rsyslog_repeated_message_reduction_loses_no_request() {
    require_tools(&["haproxy", "rsyslogd", "python3"]);
    let (p_fe, p_srv, p_log) = (28301u16, 28302u16, 28303u16);
    let dir = tempfile::tempdir().unwrap();
    let (cfg, log) = (
        dir.path().join("haproxy.cfg"),
        dir.path().join("haproxy.log"),
    );
    std::fs::write(
        dir.path().join("rsyslog.conf"),
        format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imudp\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{p_log}\")\n\
             $RepeatedMsgReduction on\n\
             local0.* action(type=\"omfile\" file=\"{f}\")\n",
            d = dir.path().display(),
            f = log.display()
        ),
    )
    .unwrap();
    std::fs::write(
        &cfg,
        format!(
            "global\n    log 127.0.0.1:{p_log} local0\n\
             defaults\n    mode http\n    log global\n\
             \x20   timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             frontend fe_http\n    bind 127.0.0.1:{p_fe}\n\
             \x20   log-format \"%ci %ft %b/%s %ST %B %tsc\"\n\
             \x20   default_backend be_app\n\
             backend be_app\n    server srv1 127.0.0.1:{p_srv}\n"
        ),
    )
    .unwrap();
    haproxy_accepts(&cfg);
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "hello\n").unwrap();
    let _srv = KillOnDrop(http_server(p_srv, www.path()));
    let _rsyslog = KillOnDrop(rsyslogd(&dir.path().join("rsyslog.conf"), dir.path()));
    let mut haproxy = KillOnDrop(
        std::process::Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let get = |path: &str| {
        use std::io::{Read, Write};
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", p_fe)) {
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let req = format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n");
                let mut reply = Vec::new();
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_end(&mut reply).is_ok()
                    && !reply.is_empty()
                {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "HAProxy never answered"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    // 40 identical lines, then a different one, which makes rsyslog write
    // its summary of the run.
    for _ in 0..40 {
        get("/index.html");
    }
    get("/missing");
    // Until the 404 is in the file (at most 10 s), then stop both daemons.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains(" 404 ")
    {
        assert!(std::time::Instant::now() < deadline, "rsyslog wrote no 404");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(_rsyslog);
    let _ = haproxy.0.kill();
    let _ = haproxy.0.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    // The run was folded (else this test tests nothing).
    assert!(
        text.contains("message repeated 39 times: [ 127.0.0.1 fe_http be_app/srv1 200 "),
        "{text}"
    );
    assert_eq!(text.lines().count(), 3, "{text}");
    let out = analyze_with_config(&cfg, &log);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["unparsed"], 0, "{}", r["input"]);
    assert_eq!(r["input"]["lines"], 3, "{}", r["input"]);
    assert_eq!(r["input"]["requests"], 41, "{}", r["input"]);
    let srv1 = server(&r, "be_app", "srv1");
    assert_eq!(srv1["requests"], 41, "{srv1}");
}

/// A HAProxy sent SIGHUP (`kill -HUP`; under master-worker, a worker)
/// logs every server's state (`SIGHUP: Server be/srv is UP. Conn: ...`).
/// A server that starts UP and never changes has no line of its own: the
/// dump says it is UP, not UNKNOWN. A log that lost a server's DOWN line
/// (a datagram, a rotated file) still tells the transition, at the dump,
/// with the dump as its cause; one that kept it gets nothing more.
#[test]
fn a_real_sighup_dump_tells_what_a_lost_line_did_not() {
    require_tools(&["haproxy", "python3"]);
    let (p_fe, p_srv1, p_srv2) = (28760u16, 28761u16, 28762u16);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    let cfg_text = two_server_cfg("stdout format rfc3164 local0", p_fe, p_srv1, p_srv2);
    std::fs::write(&cfg, cfg_text).unwrap();
    haproxy_accepts(&cfg);
    let _srv1 = KillOnDrop(http_server(p_srv1, dir.path()));
    let mut srv2 = KillOnDrop(http_server(p_srv2, dir.path()));
    let (out, err) = (dir.path().join("stdout.log"), dir.path().join("stderr.log"));
    let haproxy = KillOnDrop(
        std::process::Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    );
    // The `n`th line holding `what` (HAProxy's own order).
    let wait_for_line = |what: &str, n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::read_to_string(&out).unwrap().matches(what).count() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "HAProxy never logged {what:?} {n} times"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    // srv2 DOWN, UP again, DOWN again.
    let down = "Server be_app/srv2 is DOWN,";
    let _ = srv2.0.kill();
    let _ = srv2.0.wait();
    wait_for_line(down, 1);
    srv2 = KillOnDrop(http_server(p_srv2, dir.path()));
    wait_for_line("Server be_app/srv2 is UP", 1);
    // A second apart: the same message in the same second (RFC 3164
    // times) is taken for the same message received twice.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let _ = srv2.0.kill();
    let _ = srv2.0.wait();
    wait_for_line(down, 2);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &haproxy.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for_line("SIGHUP: Proxy be_app ", 1);
    drop(haproxy);
    let log = std::fs::read_to_string(&out).unwrap();
    let state = |r: &serde_json::Value, s: &str| server(r, "be_app", s)["state"].clone();
    let story = [
        "be_app/srv2 UP->DOWN",
        "be_app/srv2 DOWN->UP",
        "be_app/srv2 UP->DOWN",
    ];

    let whole = analyze_json(&[out.to_str().unwrap()]);
    assert_eq!(transitions(&whole), story, "{log}");
    assert_eq!(whole["transitions"][2]["pattern"], "server_down", "{log}");
    let both = |r: &serde_json::Value| (state(r, "srv1"), state(r, "srv2"));
    assert_eq!(both(&whole), ("UP".into(), "DOWN".into()));
    // HAProxy's internal `<HTTPCLIENT>` proxy, dumped too, is no backend
    // without a server; every line of the dump is read.
    assert_eq!(whole["input"]["unparsed"], 0, "{log}");
    for b in whole["backends"].as_array().unwrap() {
        assert_eq!(b["no_server_periods"], serde_json::json!([]), "{b}");
    }

    // The second DOWN line lost.
    let last_down = log.rfind(down).unwrap();
    let line_start = log[..last_down].rfind('\n').map_or(0, |i| i + 1);
    let line_end = last_down + log[last_down..].find('\n').unwrap() + 1;
    let (_d, lost) = log_file(format!("{}{}", &log[..line_start], &log[line_end..]));
    let r = analyze_json(&[lost.to_str().unwrap()]);
    assert_eq!(transitions(&r), story, "{log}");
    let t = &r["transitions"][2];
    assert_eq!(t["pattern"], "sighup_server");
    assert!(t["cause"].as_str().unwrap().contains("SIGHUP dump"), "{t}");
    assert_eq!(both(&r), ("UP".into(), "DOWN".into()));

    // HAProxy's stderr holds the same dump, with no time since 2.3.
    let r = analyze_json(&[err.to_str().unwrap()]);
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert_eq!(both(&r), ("UP".into(), "DOWN".into()), "{stderr}");
}

/// fixtures/capture-console.sh against this machine's HAProxy: each
/// change written twice on HAProxy's own output (console and log) is told
/// once, in order, whether the log lines carry a time or not.
#[test]
fn fresh_capture_of_haproxys_console_copies() {
    require_tools(&["haproxy", "python3"]);
    let dir = capture("capture-console.sh", "28400");
    for form in ["haproxy-stderr-iso.log", "haproxy-raw-2to1.log"] {
        let r = analyze_json(&[dir.path().join(form).to_str().unwrap()]);
        assert_eq!(transitions(&r), CONSOLE_STORY, "{form}");
        let i = &r["input"];
        assert_eq!(
            (i["duplicates"].as_u64(), i["unparsed"].as_u64()),
            (Some(13), Some(0)),
            "{form}: {i}"
        );
        assert_eq!(
            backend(&r, "be_app")["no_server_periods"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "{form}"
        );
    }
}
