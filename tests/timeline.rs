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
    // The requests of the minutes the incident touches (18:34 only: the
    // rollups hold minutes): 615 to be_app, 154 to be_tcp.
    assert_eq!(s["impact"]["requests"], 615 + 154);
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
    // Per minute, per backend and per server; srv1's slow minute (300 ms
    // answers from 18:34:32.7) shows in its p99.
    let series = story["series"].as_array().unwrap();
    let srv1 = series
        .iter()
        .find(|x| x["name"] == "-/be_app/srv1")
        .unwrap();
    let p99 = srv1["buckets"][0]["tr_p99"].as_u64().unwrap();
    assert!(p99 >= 300, "srv1's p99 Tr at 18:34: {p99}");
    assert!(series
        .iter()
        .any(|x| x["name"] == "-/be_tcp" && x["kind"] == "backend"));

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
    let from_file = ok(&[
        "timeline",
        log.to_str().unwrap(),
        "--alerts",
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
    // Alerts were judged (server down pages): they are in the story.
    assert!(from_file.contains("\"alert_firing\""), "{from_file}");
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

    // Requests only: nothing went wrong.
    let dir = tempfile::tempdir().unwrap();
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
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=2000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<body data-ready=\""),
        "the script did not run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dom.contains("data-error"), "a script error: {dom}");

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
    assert!(dom.contains("<span id=\"requests\">769</span>"));
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
