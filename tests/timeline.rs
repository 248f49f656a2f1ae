//! `hapwatch timeline` on the real-HAProxy fixture (fixtures/README.md says
//! what happened when): the incident found, its story in every format, the
//! same story from the log file, from a database `analyze` filled and from
//! one `listen` filled; bad windows; hostile names.

mod common;

use common::{fixture, hapwatch};
use std::path::Path;

const LOG: &str = "haproxy-udp-rfc5424.log";

fn ok(args: &[&str]) -> String {
    let out = hapwatch(args);
    assert!(
        out.status.success(),
        "hapwatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

#[test]
fn the_fixture_incident_told_from_the_log_file() {
    let log = fixture(LOG);
    let log = log.to_str().unwrap();
    // With the default gap (5m) the whole capture is one incident; with 1s
    // the srv2 outage and the be_tcp one are two.
    let list = ok(&["timeline", log, "--list"]);
    assert!(list.contains("20261124-183424"), "{list}");
    assert!(list.contains("no server available: -/be_tcp"), "{list}");
    let two = json(&["timeline", log, "--list", "--gap", "1s", "--format", "json"]);
    let ids: Vec<&str> = two["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["20261124-183424", "20261124-183450"]);

    let story = json(&["timeline", log, "--format", "json"]);
    let s = &story["summary"];
    assert_eq!(s["incident"], "20261124-183424");
    assert_eq!(s["start"], "2026-11-24T18:34:24.196Z");
    assert_eq!(s["end"], "2026-11-24T18:34:56.253Z");
    // Padded by 5 minutes on both sides.
    assert_eq!(story["from"], "2026-11-24T18:29:24.196Z");
    // srv2 was killed at 18:34:23.7: its first failed check (1/2) is the
    // first sign, the second (0/2) made it DOWN 301 ms later.
    assert_eq!(s["first_sign"]["subject"], "-/be_app/srv2");
    assert_eq!(s["first_sign"]["at"], "2026-11-24T18:34:23.895Z");
    assert_eq!(s["first_sign"]["what"], "check failed, 1/2 UP");
    assert_eq!(s["detected_after_ms"], 301);
    let outages = s["outages"].as_array().unwrap();
    let srv2 = outages
        .iter()
        .find(|o| o["server"] == "-/be_app/srv2")
        .unwrap();
    assert_eq!(srv2["down_at"], "2026-11-24T18:34:24.196Z");
    assert_eq!(srv2["up_at"], "2026-11-24T18:34:29.321Z");
    assert!(srv2["cause"]
        .as_str()
        .unwrap()
        .contains("Layer4 connection problem"));
    assert_eq!(outages.len(), 3, "srv2, t1, t2: {outages:?}");
    assert_eq!(s["no_server"][0]["backend"], "-/be_tcp");
    assert_eq!(s["no_server"][0]["start"], "2026-11-24T18:34:50.840Z");
    assert_eq!(s["no_server"][0]["end"], "2026-11-24T18:34:56.200Z");
    // Read from the file, a window of ten and a half minutes is told by
    // the 2 s: the requests of the buckets the incident touches, accepted
    // from 18:34:24 to 18:34:58 (646, of which 129 to be_tcp, counted
    // with a regex over the file's accept dates).
    assert_eq!(story["bucket"], "2s");
    assert_eq!(s["impact"]["requests"], 646);
    // Events in time order: the maintenance and drain of srv1 and srv3
    // between the two outages.
    let events = story["events"].as_array().unwrap();
    let at: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = at.clone();
    sorted.sort();
    assert_eq!(at, sorted);
    let said: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["subject"].as_str().unwrap(),
                e["what"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "-/be_app/srv2 check failed, 0/2 DOWN",
        "-/be_app/srv2 UP -> DOWN",
        "-/be_app/srv1 UP -> MAINT",
        "-/be_app/srv3 UP -> DRAIN",
        "-/be_tcp no server available",
    ] {
        assert!(said.iter().any(|s| s == want), "{want} not in {said:?}");
    }
    // Per 2 s, per backend and per server; srv1's slow answers (300 ms
    // from 18:34:32.7 to 18:34:37) show in its p99 from the 18:34:32
    // bucket, not before.
    let series = story["series"].as_array().unwrap();
    let srv1 = series
        .iter()
        .find(|x| x["name"] == "-/be_app/srv1")
        .unwrap();
    assert_eq!(srv1["timer"], "Tr");
    let slow: Vec<&str> = srv1["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["p99"].as_u64().unwrap_or(0) >= 300)
        .map(|b| b["start"].as_str().unwrap())
        .collect();
    assert_eq!(slow[0], "2026-11-24T18:34:32.000Z", "{slow:?}");
    // be_tcp logs no Tr: its latency is Tt. With no server (18:34:50.8 to
    // 18:34:56.2) its connections ended on the server side (`SC`).
    let tcp = series
        .iter()
        .find(|x| x["name"] == "-/be_tcp" && x["kind"] == "backend")
        .unwrap();
    assert_eq!(tcp["timer"], "Tt");
    let aborted: Vec<&str> = tcp["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["server_aborts"].as_u64().unwrap() > 0)
        .map(|b| b["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        aborted,
        [
            "2026-11-24T18:34:52.000Z",
            "2026-11-24T18:34:54.000Z",
            "2026-11-24T18:34:56.000Z"
        ]
    );
    // The degradations the incident overlaps: srv1's slow answers lift
    // be_app's p95, be_tcp's connections fail while it has no server.
    let degraded: Vec<String> = s["degraded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {}",
                d["backend"], d["kind"], d["start"], d["what"]
            )
        })
        .collect();
    assert_eq!(
        degraded,
        [
            "\"-/be_app\" \"latency\" \"2026-11-24T18:34:32.000Z\" \"Tr p95 up to 309 ms (usually 5 ms)\"",
            "\"-/be_tcp\" \"latency\" \"2026-11-24T18:34:50.000Z\" \"Tt p95 up to 2159 ms (usually 3 ms)\"",
            "\"-/be_tcp\" \"errors\" \"2026-11-24T18:34:52.000Z\" \"18 of 27 requests failed (67%)\"",
        ]
    );
    // From a database (minutes), or asked for: a minute per bucket, the
    // incident's impact over the minutes it touches.
    let minutes = json(&["timeline", log, "--bucket", "1m", "--format", "json"]);
    assert_eq!(minutes["bucket"], "1m");
    assert_eq!(minutes["summary"]["impact"]["requests"], 615 + 154);

    // The terminal and Markdown forms say the same.
    let text = ok(&["timeline", log]);
    assert!(
        text.starts_with("Incident 20261124-183424: 2026-11-24T18:34:24.196Z"),
        "{text}"
    );
    assert!(
        text.contains(
            "no server      -/be_tcp  2026-11-24T18:34:50.840Z to 2026-11-24T18:34:56.200Z (5.3s)"
        ),
        "{text}"
    );
    let md = ok(&["timeline", log, "--format", "markdown"]);
    assert!(md.starts_with("## Incident 20261124-183424"), "{md}");
    assert!(
        md.contains("| Time (UTC) | Subject | Event | Detail |"),
        "{md}"
    );
    assert!(
        md.contains("| 2026-11-24T18:34:24.196Z | -/be\\_app/srv2 | UP -> DOWN |"),
        "{md}"
    );

    // A window picked by time instead.
    let around = json(&[
        "timeline",
        log,
        "--around",
        "2026-11-24T18:34:40Z",
        "--span",
        "4s",
        "--format",
        "json",
    ]);
    let whats: Vec<&str> = around["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats, ["UP -> MAINT"], "18:34:38 to 18:34:42");
}

/// A backend whose traffic stopped (the clients went away, a frontend
/// failed) has buckets with no request: the tables show them as rows of
/// 0, a short gap every bucket of it, a long one by its first and last
/// bucket; past the last request (the log may end there) nothing is made
/// up. The JSON keeps the buckets as counted.
#[test]
fn traffic_that_stops_shows_as_rows_of_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("haproxy.log");
    let req = |hms: &str| {
        format!(
            "2026-11-24T{hms}Z lb1 haproxy[1]: 10.0.0.1:5000 [24/Nov/2026:{hms}.000] fe be/s1 0/0/1/2/3 200 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n"
        )
    };
    let mut text = String::new();
    // Requests up to 10:00:03, none from 10:00:04 to 10:00:07 (two 2 s
    // buckets), again at 10:00:08, then none from 10:00:10 to 10:00:29
    // (ten buckets), again at 10:00:30.
    for hms in [
        "10:00:00", "10:00:01", "10:00:02", "10:00:03", "10:00:08", "10:00:09", "10:00:30",
    ] {
        text += &req(hms);
    }
    text += "2026-11-24T10:00:10Z lb1 haproxy[1]: Server be/s1 is DOWN, reason: Layer4 timeout, check duration: 1001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n";
    text += "2026-11-24T10:00:29Z lb1 haproxy[1]: Server be/s1 is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.\n";
    std::fs::write(&log, text).unwrap();
    let log = log.to_str().unwrap();
    let args = ["timeline", log, "--bucket", "2s"];
    let out = ok(&args);
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Per 2s, backend lb1/be"))
        .skip(2)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    let rows: Vec<(String, String)> = table
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("10:00:00", "2"),
        ("10:00:02", "2"),
        ("10:00:04", "0"),
        ("10:00:06", "0"),
        ("10:00:08", "2"),
        ("10:00:10", "0"),
        ("10:00:28", "0"),
        ("10:00:30", "1"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(rows, want, "{out}");
    assert!(table[2].ends_with("-      -      -      -"), "{}", table[2]);
    // Markdown shows the incident's buckets (10:00:10 to 10:00:29): the
    // gap's first and last.
    let md = ok(&["timeline", log, "--bucket", "2s", "--format", "markdown"]);
    assert!(
        md.contains("| 10:00:10 | 0 | 0 | 0 | 0 | - | - | - | - |\n| 10:00:28 | 0 |"),
        "{md}"
    );
    let story = json(&["timeline", log, "--bucket", "2s", "--format", "json"]);
    let be = story["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "lb1/be" && x["kind"] == "backend")
        .unwrap();
    assert_eq!(be["buckets"].as_array().unwrap().len(), 4, "{be}");
}

/// `hapwatch listen --follow LOG --db DB` from an empty log to which the
/// fixture is appended, stopped with SIGTERM once it has read it all.
fn listen_fills(db: &Path, lines: &[u8]) {
    use std::io::{BufRead, Write};
    let dir = db.parent().unwrap();
    let log = dir.join("haproxy.log");
    std::fs::write(&log, b"").unwrap();
    let mut child = common::Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_hapwatch"))
            .args(["listen", "--db", db.to_str().unwrap(), "--follow"])
            .arg(&log)
            // Event time only: the wall clock closes nothing.
            .args(["--idle-grace", "1h"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = std::io::BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "did not start: {line}");
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(lines)
        .unwrap();
    let key = std::fs::canonicalize(&log).unwrap().display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let at: Option<i64> = rusqlite::Connection::open(db).ok().and_then(|c| {
            c.query_row(
                "SELECT offset FROM checkpoints WHERE path = ?1",
                [&key],
                |r| r.get(0),
            )
            .ok()
        });
        if at == Some(lines.len() as i64) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "listen never read it all"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn the_same_story_from_a_file_an_analyze_database_and_a_listen_database() {
    let dir = tempfile::tempdir().unwrap();
    let log = fixture(LOG);
    // Minutes: what the databases keep.
    let from_file = ok(&[
        "timeline",
        log.to_str().unwrap(),
        "--alerts",
        "--bucket",
        "1m",
        "--format",
        "json",
    ]);

    let analyzed = dir.path().join("analyze.db");
    ok(&[
        "analyze",
        "--db",
        analyzed.to_str().unwrap(),
        "--alerts",
        log.to_str().unwrap(),
    ]);
    let from_analyze = ok(&[
        "timeline",
        "--db",
        analyzed.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(from_file, from_analyze);
    // A backend's minutes are read as the store added them up; a
    // `--server` filter has them added up from its servers' instead: the
    // same figures.
    let every_server = ok(&[
        "timeline",
        "--db",
        analyzed.to_str().unwrap(),
        "--server",
        "*",
        "--format",
        "json",
    ]);
    assert_eq!(from_file, every_server);

    let listened = dir.path().join("listen.db");
    listen_fills(&listened, &std::fs::read(&log).unwrap());
    let from_listen = ok(&[
        "timeline",
        "--db",
        listened.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(from_file, from_listen);
    // Alerts were judged (server down pages): they are in the story, and
    // so is HAProxy stopping at the end of the capture.
    assert!(from_file.contains("\"alert_firing\""), "{from_file}");
    let story: serde_json::Value = serde_json::from_str(&from_file).unwrap();
    let stop = story["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "haproxy")
        .unwrap();
    assert_eq!(stop["at"], "2026-11-24T18:35:00.890Z");
    assert!(
        stop["what"]
            .as_str()
            .unwrap()
            .starts_with("5 proxies stopped: fe_http, fe_tcp, be_app"),
        "{stop}"
    );

    // A database an older hapwatch wrote (schema 8: no check lines, no
    // HAProxy events kept) still tells the rest of the story, read-only.
    let old = analyzed;
    let c = rusqlite::Connection::open(&old).unwrap();
    c.execute_batch(
        "DROP TABLE checks; DROP TABLE process_events; DROP TABLE backend_rollups;
         PRAGMA user_version = 8;",
    )
    .unwrap();
    drop(c);
    let from_old: serde_json::Value = serde_json::from_str(&ok(&[
        "timeline",
        "--db",
        old.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    let kinds: std::collections::BTreeSet<&str> = from_old["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("transition") && kinds.contains("alert_firing"),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains("haproxy") && !kinds.contains("check"),
        "{kinds:?}"
    );
    // Its backends' minutes are added up from its servers' (its servers
    // with check lines but no transition have no series: no checks kept).
    let backends = |story: &serde_json::Value| -> Vec<serde_json::Value> {
        let series = story["series"].as_array().unwrap().iter();
        series.filter(|s| s["kind"] == "backend").cloned().collect()
    };
    let story: serde_json::Value = serde_json::from_str(&from_analyze).unwrap();
    assert_eq!(backends(&from_old), backends(&story));
    assert!(backends(&story).len() >= 2, "{story}");
}

#[test]
fn bad_windows_exit_2_saying_what_to_do_and_an_empty_story_says_so() {
    let log = fixture(LOG);
    let log = log.to_str().unwrap();
    let out = hapwatch(&["timeline", log, "--incident", "20990101-000000"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no incident 20990101-000000"), "{err}");
    assert!(
        err.contains("20261124-183424"),
        "names those there are: {err}"
    );

    let out = hapwatch(&["timeline", log, "--around", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));

    let out = hapwatch(&["timeline", log, "--alert", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no alert with fingerprint nope"));

    let out = hapwatch(&[
        "timeline",
        log,
        "--incident",
        "x",
        "--around",
        "2026-11-24T18:34:40Z",
    ]);
    assert_eq!(out.status.code(), Some(2));

    // Buckets: seconds only from files, whole seconds, not a million.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    ok(&["analyze", "--db", db.to_str().unwrap(), log]);
    let out = hapwatch(&["timeline", "--db", db.to_str().unwrap(), "--bucket", "10s"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the database keeps minutes"), "{err}");
    let five = json(&[
        "timeline",
        "--db",
        db.to_str().unwrap(),
        "--bucket",
        "5m",
        "--format",
        "json",
    ]);
    assert_eq!(five["bucket"], "5m");
    let out = hapwatch(&["timeline", log, "--bucket", "1500ms"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("whole seconds"));
    let out = hapwatch(&["timeline", log, "--bucket", "90s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("whole minutes"));
    let out = hapwatch(&[
        "timeline",
        log,
        "--since",
        "2026-01-01",
        "--until",
        "2026-12-01",
        "--bucket",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a wider one"));

    // Requests only: nothing went wrong.
    let calm = dir.path().join("calm.log");
    let lines: String = std::fs::read_to_string(fixture(LOG))
        .unwrap()
        .lines()
        .filter(|l| l.contains(" fe_http "))
        .take(50)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&calm, lines).unwrap();
    let said = ok(&["timeline", calm.to_str().unwrap()]);
    assert!(said.starts_with("no incident"), "{said}");
    let said = ok(&["timeline", calm.to_str().unwrap(), "--list"]);
    assert!(said.starts_with("no incident"), "{said}");
    // An empty window still tells what it holds: nothing.
    let said = ok(&[
        "timeline",
        calm.to_str().unwrap(),
        "--since",
        "2030-01-01T00:00:00Z",
        "--until",
        "2030-01-01T01:00:00Z",
    ]);
    assert!(said.contains("Events (2030-01-01T00:00:00.000Z"), "{said}");
    assert!(said.contains("\n  none\n"), "{said}");
}

/// Names come from the network: in Markdown they never become markup.
#[test]
fn hostile_names_never_become_markup() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("evil.log");
    std::fs::write(
        &log,
        "<129>1 2026-11-24T18:34:24.196+00:00 lb1 haproxy 1 - - Server be<script>|x/s&amp;[1](http://e) is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n",
    )
    .unwrap();
    let md = ok(&["timeline", log.to_str().unwrap(), "--format", "markdown"]);
    assert!(
        md.contains("be&lt;script>\\|x/s&amp;amp;\\[1\\]\\(http://e\\)"),
        "{md}"
    );
    assert!(!md.contains("<script>"), "{md}");
    assert!(
        !md.contains(">|x/"),
        "an unescaped | would split the table's row: {md}"
    );
    let row = md
        .lines()
        .find(|l| l.starts_with("| 2026-11-24T18:34:24.196Z |"))
        .unwrap();
    assert_eq!(
        row.matches(" | ").count(),
        3,
        "four cells, the name in one: {row}"
    );
}

/// The HTML page, rendered by a real Chromium (headless): it loads with no
/// script error, and what a person would look at is where the log says.
#[test]
fn the_html_page_shows_the_incident_in_a_real_browser() {
    common::require_tools(&["chromium"]);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("incident.html");
    let log = fixture(LOG);
    ok(&[
        "timeline",
        log.to_str().unwrap(),
        "--alerts",
        "--pad",
        "20s",
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing fetched from anywhere.
    for fetch in ["src=", "href=", "@import", "url("] {
        assert!(
            !html.contains(fetch),
            "the page fetches something ({fetch})"
        );
    }
    let dom = chromium_dom(&page);

    // The chart's time axis: x = x0 + (t - from) / (to - from) * width.
    let attr = |tag: &str, name: &str| -> String {
        let i = tag
            .find(&format!(" {name}=\""))
            .unwrap_or_else(|| panic!("{name} in {tag}"));
        let rest = &tag[i + name.len() + 3..];
        rest[..rest.find('"').unwrap()].to_string()
    };
    let ms = hapwatch_time;
    let svg = &dom[dom.find("<svg id=\"chart\"").unwrap()..];
    let head = &svg[..svg.find('>').unwrap()];
    let (from, to) = (ms(&attr(head, "data-from")), ms(&attr(head, "data-to")));
    let x0: f64 = attr(head, "data-x0").parse().unwrap();
    let width: f64 = attr(head, "data-width").parse().unwrap();
    let x_of = |t: i64| x0 + (t - from) as f64 / (to - from) as f64 * width;
    let tags = |needle: &str| -> Vec<String> {
        svg.match_indices(needle)
            .map(|(i, _)| svg[i..i + svg[i..].find('>').unwrap()].to_string())
            .collect()
    };
    // srv2's DOWN band: from its DOWN to its UP, as logged.
    let down: Vec<String> = tags("<rect class=\"state\"")
        .into_iter()
        .filter(|t| {
            t.contains("data-server=\"-/be_app/srv2\"") && t.contains("data-state=\"DOWN\"")
        })
        .collect();
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(attr(&down[0], "data-start"), "2026-11-24T18:34:24.196Z");
    assert_eq!(attr(&down[0], "data-end"), "2026-11-24T18:34:29.321Z");
    let x: f64 = attr(&down[0], "x").parse().unwrap();
    let w: f64 = attr(&down[0], "width").parse().unwrap();
    assert!(
        (x - x_of(ms("2026-11-24T18:34:24.196Z"))).abs() < 0.01,
        "x {x}"
    );
    assert!(
        (x + w - x_of(ms("2026-11-24T18:34:29.321Z"))).abs() < 0.02,
        "end {}",
        x + w
    );
    // be_tcp's no-server band.
    let band = tags("<rect class=\"noserver\"");
    assert_eq!(band.len(), 1, "{band:?}");
    assert_eq!(attr(&band[0], "data-backend"), "-/be_tcp");
    assert_eq!(attr(&band[0], "data-start"), "2026-11-24T18:34:50.840Z");
    assert_eq!(attr(&band[0], "data-end"), "2026-11-24T18:34:56.200Z");
    // srv2's two failed checks as ticks; the alert markers.
    let ticks = tags("<line class=\"check\"");
    assert_eq!(
        ticks.iter().filter(|t| t.contains("-/be_app/srv2")).count(),
        2
    );
    let fired: Vec<String> = tags("<polygon class=\"alert\"")
        .into_iter()
        .filter(|t| t.contains("data-kind=\"alert_firing\""))
        .collect();
    assert!(
        fired
            .iter()
            .any(|t| attr(t, "data-at") == "2026-11-24T18:34:24.196Z"),
        "{fired:?}"
    );
    // The summary's figures.
    assert!(dom.contains("<span id=\"detected\">301ms</span>"));
    // A window of 72 s is told by the second: the requests accepted from
    // 18:34:24 to 18:34:57, the buckets the incident touches (a regex
    // over the file's accept dates counts 621).
    assert!(dom.contains("<span id=\"requests\">621</span>"));
    // A backend's request bars are one path; the tooltip finds a bar's
    // figures by its x: one tip per x, each at its bar's time.
    let bars = tags("<path class=\"requests\"");
    assert!(bars.len() >= 2, "{bars:?}");
    for b in &bars {
        let xs: Vec<f64> = attr(b, "data-x")
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        let tips = attr(b, "data-tips");
        let tips: Vec<&str> = tips.split('|').collect();
        assert_eq!(xs.len(), tips.len(), "{b}");
        for (x, tip) in xs.iter().zip(&tips) {
            let at = ms(&format!("2026-11-24T{}.000Z", &tip[..8]));
            assert!(
                (x - x_of(at)).abs() < 0.01,
                "{tip} at x {x}, not {}",
                x_of(at)
            );
            assert!(tip.contains(" requests, "), "{tip}");
        }
    }
}

/// An RFC 3339 time in milliseconds, read the way hapwatch reads it.
fn hapwatch_time(s: &str) -> i64 {
    // 2026-11-24T18:34:04.196Z
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000
        + t[2] * 1000
        + format!("{frac:0<3}")[..3].parse::<i64>().unwrap()
}

/// A name with markup in it stays text in the page.
#[test]
fn hostile_names_never_become_html() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("evil.log");
    std::fs::write(
        &log,
        "<129>1 2026-11-24T18:34:24.196+00:00 lb1 haproxy 1 - - Server be<script>alert(1)</script>/s\"onmouseover=\"x is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n",
    )
    .unwrap();
    let html = ok(&["timeline", log.to_str().unwrap(), "--format", "html"]);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("s\"onmouseover"), "{html}");
    assert!(html.contains("be&lt;script&gt;alert(1)&lt;/script&gt;/s&quot;onmouseover=&quot;x"));
}

/// Polls `db` until `sql` (one integer) reaches `want`, for at most 20 s.
fn wait_rows(db: &Path, sql: &str, want: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let n: i64 = rusqlite::Connection::open(db)
            .ok()
            .and_then(|c| c.query_row(sql, [], |r| r.get(0)).ok())
            .unwrap_or(0);
        if n >= want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{sql}: {n}, waited for {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A real HAProxy in master-worker mode, reloaded (SIGUSR2) while its only
/// server is down, logging to `listen` over UDP: the reload is in the
/// story, one event naming the proxies the old worker stopped, after the
/// DOWN it did not cure.
#[test]
fn a_real_haproxy_reload_is_in_the_story() {
    use std::io::BufRead;
    common::require_tools(&["haproxy"]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hapwatch.db");
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        "global\n    log 127.0.0.1:27861 local0\n\
         defaults\n    mode http\n    log global\n    option httplog\n\
         \x20   timeout connect 200ms\n    timeout client 2s\n    timeout server 2s\n\
         frontend fe_reload\n    bind 127.0.0.1:27862\n    default_backend be_reload\n\
         backend be_reload\n    option httpchk\n\
         \x20   server s1 127.0.0.1:27863 check inter 200ms fall 1 rise 1\n",
    )
    .unwrap();
    let mut listen = common::Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_hapwatch"))
            .args(["listen", "--db", db.to_str().unwrap()])
            .args(["--udp", "127.0.0.1:27861"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = std::io::BufReader::new(listen.0.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "did not start: {line}");
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let stderr = std::fs::File::create(dir.path().join("haproxy.stderr")).unwrap();
    let mut haproxy = common::Running(
        std::process::Command::new("haproxy")
            .args(["-W", "-db", "-f"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    wait_rows(
        &db,
        "SELECT COUNT(*) FROM transitions WHERE server = 's1' AND to_state = 'DOWN'",
        1,
    );
    let master = haproxy.0.id() as i32;
    // SAFETY: signalling a child we started.
    assert_eq!(unsafe { libc::kill(master, libc::SIGUSR2) }, 0);
    wait_rows(
        &db,
        "SELECT COUNT(*) FROM process_events WHERE proxy = 'fe_reload'",
        1,
    );
    assert_eq!(unsafe { libc::kill(master, libc::SIGTERM) }, 0);
    haproxy.0.wait().unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("haproxy.stderr")).unwrap();
    assert!(stderr.contains("Reloading HAProxy"), "{stderr}");
    assert_eq!(
        unsafe { libc::kill(listen.0.id() as i32, libc::SIGTERM) },
        0
    );
    assert!(listen.0.wait().unwrap().success());

    let story = json(&["timeline", "--db", db.to_str().unwrap(), "--format", "json"]);
    let events = story["events"].as_array().unwrap();
    let down = events
        .iter()
        .find(|e| e["kind"] == "transition" && e["what"] == "UP -> DOWN")
        .unwrap_or_else(|| panic!("no DOWN: {events:#?}"));
    let reload = events
        .iter()
        .find(|e| e["kind"] == "haproxy")
        .unwrap_or_else(|| panic!("no reload: {events:#?}"));
    let what = reload["what"].as_str().unwrap();
    assert!(
        // HAProxy's own internal proxy too: `<HTTPCLIENT>` (2.5+).
        what.contains(" proxies stopped: ")
            && what.contains("fe_reload")
            && what.contains("be_reload"),
        "{reload}"
    );
    assert!(
        reload["at"].as_str() > down["at"].as_str(),
        "{reload} before {down}"
    );
    let text = ok(&["timeline", "--db", db.to_str().unwrap()]);
    assert!(text.contains("proxies stopped"), "{text}");
}

/// A flapping fleet: 50 servers logging 100,000 health checks in ten
/// minutes. The page lists 5,000 events (every transition among them),
/// counts the rest by server and event, draws ticks by the pixel, and
/// stays a page a browser opens.
#[test]
fn a_hundred_thousand_events_stay_a_usable_page() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("flap.log");
    let mut text = String::new();
    let t0 = 1_795_000_000_000_i64; // 2026-11-19T...
    let stamp = |ms: i64| {
        let secs = ms / 1000;
        let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
        format!("2026-11-19T{h:02}:{m:02}:{s:02}.{:03}Z", ms % 1000)
    };
    let mut n = 0;
    for i in 0..2_000_i64 {
        for s in 0..50 {
            let at = t0 + i * 300 + s;
            let (result, status) = if i % 2 == 0 {
                (
                    "failed, reason: Layer4 timeout, check duration: 2001ms",
                    "1/2 UP",
                )
            } else {
                (
                    "succeeded, reason: Layer4 check passed, check duration: 0ms",
                    "2/2 UP",
                )
            };
            text.push_str(&format!(
                "<133>1 {} lb1 haproxy 1 - - Health check for server be_flap/s{s} {result}, status: {status}.\n",
                stamp(at)
            ));
            n += 1;
        }
    }
    // One real outage in the middle.
    let down = t0 + 300_000;
    text.push_str(&format!(
        "<129>1 {} lb1 haproxy 1 - - Server be_flap/s7 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 49 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n",
        stamp(down)
    ));
    text.push_str(&format!(
        "<133>1 {} lb1 haproxy 1 - - Server be_flap/s7 is UP, reason: Layer4 check passed, check duration: 0ms. 50 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.\n",
        stamp(down + 20_000)
    ));
    assert_eq!(n, 100_000);
    std::fs::write(&log, text).unwrap();
    let page = dir.path().join("flap.html");
    ok(&[
        "timeline",
        log.to_str().unwrap(),
        "--since",
        &stamp(t0),
        "--until",
        &stamp(t0 + 600_100),
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 5_000_000, "{} bytes", html.len());
    let rows = html.matches("<tr class=\"").count();
    assert_eq!(rows, 5_000, "listed events");
    assert_eq!(html.matches("<tr class=\"transition\">").count(), 2);
    // The rest counted, and the counts add up.
    let at = html.find("id=\"aggregated\" data-events=\"").unwrap();
    let rest: usize = html[at + 29..].split('"').next().unwrap().parse().unwrap();
    assert_eq!(rest + 5_000, 100_002);
    // Ticks by the pixel: far fewer than the 50,000 failed checks, and
    // they count every one.
    let ticks: Vec<&str> = html.split("<line class=\"check\"").skip(1).collect();
    assert!(ticks.len() < 15_000, "{} ticks", ticks.len());
    let counted: usize = ticks
        .iter()
        .map(|t| {
            let at = t.find("data-count=\"").unwrap() + 12;
            t[at..].split('"').next().unwrap().parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(counted, 50_000);
    common::require_tools(&["chromium"]);
    chromium_dom(&page);
}

/// The page as headless Chromium leaves it once loaded (its DOM): the
/// page's script ran (`data-ready`) and raised no error (`data-error`).
fn chromium_dom(page: &Path) -> String {
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("<body data-ready=\""),
        "the script did not run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dom.contains("data-error"), "a script error: {dom:.2000}");
    dom
}
