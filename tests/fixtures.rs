//! The logs captured from a real HAProxy 2.6 and rsyslog by
//! fixtures/capture.sh (see fixtures/README.md for what happened when):
//! every form must tell the same story.

mod common;
use common::*;

#[test]
fn every_form_gives_the_scripted_transitions() {
    for form in FORMS {
        let path = fixture(form);
        let r = analyze_json(&[path.to_str().unwrap()]);
        assert_eq!(transitions(&r), EXPECTED, "{form}");
        let i = &r["input"];
        assert_eq!(i["lines"], 814, "{form}");
        assert_eq!(i["requests"], 790, "{form}");
        assert_eq!(i["health_events"], 19, "{form}");
        assert_eq!(i["other"], 5, "{form}");
        assert_eq!(i["unparsed"], 0, "{form}");
        // Times as HAProxy logged them (events.log: srv2 killed at :23.7,
        // detected by the 300 ms checks at :24).
        let t = &r["transitions"];
        assert!(
            t[0]["at"]
                .as_str()
                .unwrap()
                .starts_with("2026-11-24T18:34:24"),
            "{form}"
        );
        assert!(
            t[1]["at"]
                .as_str()
                .unwrap()
                .starts_with("2026-11-24T18:34:29"),
            "{form}"
        );
        assert_eq!(
            t[0]["cause"],
            "reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms",
            "{form}: the reason comes from the check line before the short DOWN line"
        );
    }
}

#[test]
fn durations_counts_and_no_server_period() {
    let r = analyze_json(&[fixture("haproxy-udp-rfc3164.log").to_str().unwrap()]);
    let srv2 = server(&r, "be_app", "srv2");
    assert_eq!(srv2["down_seconds"], 5.0);
    assert_eq!(srv2["state"], "UP");
    assert_eq!(srv2["requests"], 215);
    assert_eq!(srv2["status"]["2xx"], 171);
    assert_eq!(srv2["status"]["4xx"], 43);
    assert_eq!(srv2["status"]["5xx"], 1);
    assert_eq!(server(&r, "be_app", "srv1")["maint_seconds"], 3.0);
    assert_eq!(server(&r, "be_app", "srv3")["drain_seconds"], 3.0);
    // The slow period: 300 ms per request on srv1 for 5 s.
    let tr = &server(&r, "be_app", "srv1")["timers_ms"]["Tr"];
    assert!(tr["p99"].as_u64().unwrap() >= 300, "{tr}");
    assert!(tr["max"].as_u64().unwrap() >= 300, "{tr}");
    assert!(tr["p50"].as_u64().unwrap() < 50, "{tr}");
    // TCP servers: Tt, no HTTP status.
    let t1 = server(&r, "be_tcp", "t1");
    assert_eq!(t1["timers_ms"]["Tt"]["count"], t1["requests"]);
    assert_eq!(t1["timers_ms"]["Tr"]["count"], 0);
    let be_tcp = backend(&r, "be_tcp");
    assert_eq!(be_tcp["no_server_periods"].as_array().unwrap().len(), 1);
    assert_eq!(be_tcp["no_server_seconds"], 6.0);
    assert_eq!(r["input"]["other_kinds"]["proxy_stopped"], 5);
}

#[test]
fn rsyslog_forms_carry_the_hostname() {
    for form in [
        "rsyslog-tcp-octet.log",
        "rsyslog-tcp-forward.log",
        "rsyslog-file.log",
    ] {
        let r = analyze_json(&[fixture(form).to_str().unwrap()]);
        assert!(
            r["servers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["host"] == "localhost"),
            "{form}"
        );
    }
    let r = analyze_json(&[fixture("haproxy-udp-rfc3164.log").to_str().unwrap()]);
    assert!(r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["host"] == ""));
}

#[test]
fn stderr_lines_parse_and_get_their_time_from_a_journal_header() {
    // Bare stderr (HAProxy 2.3+, what `docker logs` shows) has no time at
    // all: every transition is there, in the order HAProxy wrote it, with
    // no time (`at: null`, an order number) and no invented duration.
    let r = analyze_json(&[fixture("haproxy-stderr.log").to_str().unwrap()]);
    assert_eq!(r["input"]["health_events"], 19);
    // The 19 health events and the 6 `Proxy X stopped` lines (HAProxy
    // stopping, kept for a timeline like them).
    assert_eq!(r["input"]["untimed"], 25);
    assert_eq!(r["input"]["unparsed"], 0);
    assert_eq!(transitions(&r), EXPECTED);
    let ts = r["transitions"].as_array().unwrap();
    for (i, t) in ts.iter().enumerate() {
        assert!(t["at"].is_null(), "{t}");
        assert!(t["order"].as_u64().is_some(), "{t}");
        if i > 0 {
            assert!(t["order"].as_u64() > ts[i - 1]["order"].as_u64(), "{t}");
        }
    }
    // The causes HAProxy gave are kept.
    assert_eq!(
        ts[6]["cause"],
        "reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms"
    );
    let srv2 = server(&r, "be_app", "srv2");
    assert_eq!(srv2["state"], "UP");
    assert!(srv2["down_seconds"].is_null(), "{srv2}");
    assert!(srv2["since"].is_null(), "{srv2}");
    let be_tcp = r["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == "be_tcp")
        .unwrap();
    let periods = be_tcp["no_server_periods"].as_array().unwrap();
    assert_eq!(periods.len(), 1, "{be_tcp}");
    assert!(periods[0]["seconds"].is_null(), "{be_tcp}");
    assert!(be_tcp["no_server_seconds"].is_null(), "{be_tcp}");
    assert!(r["window"]["start"].is_null(), "{}", r["window"]);
    // The table says the times are unknown rather than printing 1970.
    let out = hapwatch(&["analyze", fixture("haproxy-stderr.log").to_str().unwrap()]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("25 with no time (applied in arrival order, time unknown)"),
        "{table}"
    );
    let down = table
        .lines()
        .find(|l| l.contains("srv2") && l.contains("DOWN") && l.contains("time unknown"));
    assert!(down.is_some(), "{table}");
    assert!(!table.contains("1970"), "{table}");
    assert!(table.contains("unknown"), "{table}");
    // A timeline places events in time: these are left out, and it says so.
    let out = hapwatch(&["timeline", fixture("haproxy-stderr.log").to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("25 events come from lines with no time"),
        "{err}"
    );
    // journalctl's short format puts a header in front: the same story.
    let text = std::fs::read_to_string(fixture("haproxy-stderr.log")).unwrap();
    let journal: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| format!("Nov 24 18:34:{:02} lb1 haproxy[5775]: {l}\n", 10 + i))
        .collect();
    let out = hapwatch_stdin(
        &["analyze", "--format", "json", "--year", "2026", "-"],
        journal.as_bytes(),
    );
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(transitions(&r), EXPECTED);
    assert!(r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["host"] == "lb1"));
}

#[test]
fn table_output_names_what_happened() {
    let out = hapwatch(&[
        "analyze",
        fixture("haproxy-udp-rfc5424.log").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("814 lines: 790 requests, 19 health events, 5 other, 0 unparsed"),
        "{text}"
    );
    assert!(text.contains("be_app/srv2  UP -> DOWN"), "{text}");
    assert!(
        text.contains("be_tcp: no server available from 2026-11-24T18:34:50"),
        "{text}"
    );
    assert!(
        !text.contains("\x1b["),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn variants_tls_clf_backup_tracking_agent() {
    let r = analyze_json(&[fixture("variants/haproxy-variants.log").to_str().unwrap()]);
    assert_eq!(transitions(&r), VARIANTS_EXPECTED);
    let i = &r["input"];
    assert_eq!(
        (i["lines"].as_u64(), i["requests"].as_u64()),
        (Some(545), Some(527))
    );
    assert_eq!(
        (i["health_events"].as_u64(), i["unparsed"].as_u64()),
        (Some(13), Some(0))
    );
    assert!(r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["host"] == "lb-test"));
    let t = r["transitions"].as_array().unwrap();
    assert_eq!(t[0]["cause"], "changed from CLI");
    assert_eq!(t[3]["cause"], "via be_bk/a");
    assert_eq!(
        t[7]["cause"],
        "reason: Layer7 wrong status, code: 0, info: \"via agent : down\", check duration: 0ms"
    );
    // httpslog lines (TLS frontend) feed be_bk, CLF lines be_trk.
    let b = server(&r, "be_bk", "b");
    assert_eq!(b["backup"], true);
    assert_eq!(b["maint_seconds"], 2.0);
    assert_eq!(server(&r, "be_bk", "a")["requests"], 247);
    assert_eq!(server(&r, "be_trk", "t")["requests"], 146);
    let ag = server(&r, "be_trk", "ag");
    assert_eq!(
        (ag["down_seconds"].as_f64(), ag["drain_seconds"].as_f64()),
        (Some(2.0), Some(2.0))
    );
    // CLF carries the timers too.
    assert_eq!(server(&r, "be_trk", "ag")["timers_ms"]["Ta"]["count"], 120);
}

#[test]
fn a_server_whose_checks_say_up_is_up_not_unknown() {
    // The start of the real capture: `option log-health-checks` logs each
    // server's first check (`status: 2/2 UP`), and no state line yet.
    let text = std::fs::read_to_string(fixture("haproxy-stderr.log")).unwrap();
    let start: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
    let out = hapwatch_stdin(&["analyze", "--format", "json", "-"], start.as_bytes());
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for srv in ["srv1", "srv2", "srv3"] {
        // srv2's fourth line is a failed check: `1/2 UP`, still UP.
        assert_eq!(server(&r, "be_app", srv)["state"], "UP", "{srv}");
    }
    assert_eq!(server(&r, "be_app", "srv2")["check"], "1/2 UP");
    assert!(transitions(&r).is_empty(), "{}", r["transitions"]);
    // The whole capture still tells the same ten transitions.
    let r = analyze_json(&[fixture("haproxy-stderr.log").to_str().unwrap()]);
    assert_eq!(transitions(&r), EXPECTED);
}

#[test]
fn a_backend_that_never_lost_its_servers_spent_zero_seconds_without_not_minus_zero() {
    // An empty sum of f64 is -0.0 in Rust; JSON readers print it as "-0".
    let path = fixture("haproxy-udp-rfc3164.log");
    let out = hapwatch(&["analyze", "--format", "json", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("-0.0"), "{text}");
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = backend(&r, "be_app")["no_server_seconds"].as_f64().unwrap();
    assert!(s == 0.0 && s.is_sign_positive(), "{s}");
}

/// HAProxy in the foreground with its log on its own stderr (`log stderr
/// format iso`, `haproxy -db 2>FILE`) writes each change twice: a console
/// message with no time (`[WARNING]  (pid) : Server ...`) then the log
/// line. The console copy is the same change, not a second one: read as
/// one, timed by the log line, a server put into maintenance, drained and
/// made ready within a second, and another that flaps, are told as they
/// happened, with no flap the copies made up (hapwatch read 15
/// transitions here, `be_app/s2` going DOWN and UP in the same
/// millisecond, and a backend without servers for no time at all).
#[test]
fn haproxys_console_copy_of_a_change_is_not_a_second_change() {
    let (got, r) = timed_transitions(&fixture("console/haproxy-stderr-iso.log"), "UTC");
    let labels: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels, CONSOLE_STORY);
    let at = |s: &str| hapwatch::time::parse_user_time(s).unwrap();
    let times: Vec<i64> = got.iter().map(|(t, _)| *t).collect();
    let logged = [
        "19.172", "19.785", "20.393", "22.860", "24.668", "25.873", "27.679", "28.882", "30.247",
        "31.755", "33.100",
    ]
    .map(|s| at(&format!("2026-12-07T10:09:{s}Z")));
    assert_eq!(times, logged, "each change at its log line's time");
    let i = &r["input"];
    // Eleven changes, "remains in forced drain mode" and the backend's
    // "no server available", each twice.
    assert_eq!(
        (i["health_events"].as_u64(), i["duplicates"].as_u64()),
        (Some(26), Some(13)),
        "{i}"
    );
    let periods = &backend(&r, "be_app")["no_server_periods"];
    assert_eq!(periods.as_array().unwrap().len(), 1, "{periods}");
    assert_eq!(periods[0]["start"], "2026-12-07T10:09:30.247Z", "{periods}");
    assert_eq!(periods[0]["end"], "2026-12-07T10:09:31.755Z", "{periods}");

    // Its log on stdout in the raw format, as container images log, and
    // both streams in one (`docker logs haproxy 2>&1`): no line has a time,
    // the copies are adjacent, the story is the same.
    let r = analyze_json(&[fixture("console/haproxy-raw-2to1.log").to_str().unwrap()]);
    assert_eq!(transitions(&r), CONSOLE_STORY);
    assert_eq!(r["input"]["duplicates"], 13, "{}", r["input"]);
    assert_eq!(r["input"]["unparsed"], 0, "{}", r["input"]);
}

/// HAProxy 3.2 in master-worker mode (`-W -db`), `log stderr format
/// rfc3164`, reloaded once (SIGUSR2), captured by hand: its log lines name
/// a host (`localhost`), its console copies none. Each copy is its log
/// line's: one server, under the log's host, DOWN once (the new worker's
/// "is DOWN" after the reload changes nothing), not a second server with
/// no host. (Two DOWN, two "no server available!" and two "Proxy ...
/// stopped": six copies.)
#[test]
fn a_console_copy_with_no_host_is_its_log_lines_copy() {
    let r = analyze_json(&[fixture("console/haproxy-3.2-master-worker.log")
        .to_str()
        .unwrap()]);
    assert_eq!(server_rows(&r), ["localhost be/s1"], "{}", r["servers"]);
    assert_eq!(transitions(&r), ["be/s1 UP->DOWN"]);
    assert_eq!(r["transitions"][0]["at"], "2026-12-07T10:23:17.000Z");
    let i = &r["input"];
    assert_eq!(
        (i["duplicates"].as_u64(), i["unparsed"].as_u64()),
        (Some(6), Some(0)),
        "{i}"
    );
    assert_eq!(
        backend(&r, "be")["no_server_periods"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// "host backend/server" of each row of the report.
fn server_rows(r: &serde_json::Value) -> Vec<String> {
    r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}/{}", s["host"], s["backend"], s["server"]).replace('"', ""))
        .collect()
}

/// HAProxy 3.2, `log stderr format rfc3164 local0 err`, captured by hand:
/// the log keeps DOWN (alert), not UP (notice), which only the console
/// writes, with no host. It is the same process's (the pid in front of
/// it), so the same host's: `s1` comes back UP under `localhost` and goes
/// DOWN again, rather than a second `s1` with no host that alone was UP.
#[test]
fn a_console_message_whose_log_line_never_comes_is_its_processs_hosts() {
    let r = analyze_json(&[fixture("console/haproxy-3.2-log-level-err.log")
        .to_str()
        .unwrap()]);
    let rows = server_rows(&r);
    assert_eq!(
        rows,
        ["localhost be/s1", "localhost be/s2"],
        "{}",
        r["servers"]
    );
    let story = [
        "be/s1 UP->DOWN",
        "be/s1 DOWN->UP",
        "be/s1 UP->DOWN",
        "be/s2 UP->DOWN",
    ];
    assert_eq!(transitions(&r), story);
    assert_eq!(server(&r, "be", "s1")["state"], "DOWN");
}
