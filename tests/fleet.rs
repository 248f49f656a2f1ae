//! Fleets of load balancers: three real HAProxy processes (lb1, lb2, lb3,
//! named by `log-send-hostname`) in front of the same servers
//! (`fixtures/capture-fleet.sh`): srv2 DOWN on lb1 and lb2 only (lb3
//! reaches it at another address), srv3 DOWN on all three then back, lb3
//! killed. `status --fleet` and the fleet rules, on the committed capture,
//! on a fresh one, and live through `listen`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{capture_with, fixture, hapwatch, require_tools};

fn json(args: &[&str]) -> serde_json::Value {
    let out = hapwatch(args);
    assert!(
        out.status.success(),
        "hapwatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fleet(db: &Path, silence: &str) -> serde_json::Value {
    json(&[
        "status",
        "--fleet",
        "--host-silence",
        silence,
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
    ])
}

fn server<'a>(f: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    f["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == name)
        .unwrap_or_else(|| panic!("no {name} in {f:#}"))
}

/// What every capture shows, however it was read into `db`.
fn the_fleet_story(db: &Path) {
    let f = fleet(db, "2m");
    let hosts: Vec<&str> = f["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["lb1", "lb2", "lb3"], "{f:#}");
    // srv2: one LB's view differs.
    let srv2 = server(&f, "srv2");
    assert_eq!(srv2["fleet_state"], "PARTIAL", "{srv2:#}");
    assert_eq!(
        (srv2["down_on"].as_u64(), srv2["of"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(srv2["hosts"]["lb1"]["state"], "DOWN");
    assert_eq!(srv2["hosts"]["lb2"]["state"], "DOWN");
    assert_eq!(srv2["hosts"]["lb3"]["state"], "UP");
    // srv3 died for everyone and came back: UP on 3/3.
    let srv3 = server(&f, "srv3");
    assert_eq!(srv3["fleet_state"], "UP", "{srv3:#}");
    assert_eq!(srv3["of"].as_u64(), Some(3));
    // The table says it in one line.
    let out = hapwatch(&["status", "--fleet", "--db", db.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("be_app/srv2")).unwrap();
    assert!(line.contains("DOWN on 2/3"), "{text}");
    assert!(line.contains("lb1, lb2"), "{text}");
    assert!(line.contains("UP on lb3"), "{text}");
    // lb3 was killed eight seconds before the others stopped: silent at 5s.
    let f = fleet(db, "5s");
    let lb3 = f["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "lb3")
        .unwrap();
    assert_eq!(lb3["silent"], true, "{f:#}");
    let srv2 = server(&f, "srv2");
    assert_eq!(srv2["fleet_state"], "DOWN", "{srv2:#}");
    assert_eq!(
        (srv2["down_on"].as_u64(), srv2["of"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(srv2["hosts"]["lb3"]["silent"], true);
}

/// The alert events of `db` as (rule, status, labels without severity).
fn alerts(db: &Path) -> Vec<(String, String, serde_json::Value)> {
    let a = json(&["alerts", "--db", db.to_str().unwrap(), "--format", "json"]);
    a["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
                a["labels"].clone(),
            )
        })
        .collect()
}

/// One fleet page for srv3 (down on every LB), none for srv2 (down on two
/// of three), and the disagreement on srv2 as a warning.
fn the_fleet_alerts(db: &Path) {
    let all = alerts(db);
    let fleet: Vec<_> = all
        .iter()
        .filter(|a| a.0 == "haproxy_server_down_fleet")
        .collect();
    assert_eq!(fleet.len(), 1, "{all:#?}");
    assert_eq!(fleet[0].1, "resolved");
    assert_eq!(fleet[0].2["server"], "srv3");
    assert!(fleet[0].2.get("host").is_none(), "{:?}", fleet[0].2);
    // Three per-host pages for srv3, two for srv2: still there.
    let per_host = all
        .iter()
        .filter(|a| a.0 == "haproxy_backend_server_status")
        .count();
    assert_eq!(per_host, 5, "{all:#?}");
    let diverge: Vec<_> = all
        .iter()
        .filter(|a| a.0 == "haproxy_lb_view_diverges")
        .collect();
    assert_eq!(diverge.len(), 1, "{all:#?}");
    assert_eq!(diverge[0].2["server"], "srv2");
}

const RULES: &str = "[haproxy_lb_view_diverges]\nfor = \"3s\"\n";

fn analyze_into(dir: &Path, log: &Path) -> std::path::PathBuf {
    analyze_all_into(dir, &[log])
}

/// [`analyze_into`] of several logs given together.
fn analyze_all_into(dir: &Path, logs: &[&Path]) -> std::path::PathBuf {
    let db = dir.join("fleet.db");
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let mut args = vec![
        "analyze",
        "--db",
        db.to_str().unwrap(),
        "--alerts",
        "--rules",
        rules.to_str().unwrap(),
    ];
    args.extend(logs.iter().map(|l| l.to_str().unwrap()));
    let out = hapwatch(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

#[test]
fn the_committed_fleet_capture_groups_each_server_across_its_load_balancers() {
    let dir = tempfile::tempdir().unwrap();
    let db = analyze_into(dir.path(), &fixture("fleet/haproxy-fleet.log"));
    the_fleet_story(&db);
    the_fleet_alerts(&db);
}

/// Each load balancer's own log, as its own rsyslog kept it, given
/// together (in any order): read side by side in the time their lines
/// say, they tell the fleet story and give the alerts of the one log an
/// aggregator wrote, and so do their first halves read, then the whole
/// files read on (each file goes on from its own checkpoint). Read one
/// after the other, lb1's whole capture came before lb2's first line: the
/// fleet rules never saw two load balancers at one time.
#[test]
fn each_load_balancer_s_own_log_read_together_tells_the_fleet_story() {
    let whole = std::fs::read_to_string(fixture("fleet/haproxy-fleet.log")).unwrap();
    let own = |lb: &str| -> Vec<String> {
        (whole.lines())
            .filter(|l| l.split_whitespace().nth(3) == Some(lb))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let sorted = |mut a: Vec<(String, String, serde_json::Value)>| {
        a.sort_by_key(|x| format!("{x:?}"));
        a
    };
    let one = tempfile::tempdir().unwrap();
    let aggregated = sorted(alerts(&analyze_into(
        one.path(),
        &fixture("fleet/haproxy-fleet.log"),
    )));
    for halves in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = ["lb3", "lb1", "lb2"]
            .iter()
            .map(|lb| dir.path().join(format!("{lb}.log")))
            .collect();
        let logs: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
        if halves {
            for (lb, f) in ["lb3", "lb1", "lb2"].iter().zip(&files) {
                let lines = own(lb);
                std::fs::write(f, lines[..lines.len() / 2].concat()).unwrap();
            }
            analyze_all_into(dir.path(), &logs);
        }
        for (lb, f) in ["lb3", "lb1", "lb2"].iter().zip(&files) {
            std::fs::write(f, own(lb).concat()).unwrap();
        }
        let db = analyze_all_into(dir.path(), &logs);
        the_fleet_story(&db);
        the_fleet_alerts(&db);
        assert_eq!(sorted(alerts(&db)), aggregated, "halves first: {halves}");
    }
}

/// Two busy load balancers' own logs (`hapwatch-gen`, dates to the second)
/// read together: no line is late for the reorder window, and the report,
/// transitions and alerts are those of the log that holds both.
#[test]
fn busy_load_balancers_read_side_by_side_give_the_report_of_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let (both, logs) = busy_logs(dir.path(), 300_000);
    let one = report(&[], &[&both]);
    let two = report(&[], &[&logs[0], &logs[1]]);
    assert_eq!(two["input"]["late"], 0, "{:#}", two["input"]);
    assert!(one["alerts"].as_array().unwrap().len() > 10, "{one:#}");
    for part in ["input", "servers", "backends", "transitions", "alerts"] {
        assert_eq!(one[part], two[part], "{part}");
    }
}

/// The same logs as logrotate leaves them (`haproxy.log.1.gz`, or one
/// rotated and one current), and plain files read without mapping them
/// (`--no-mmap`): side by side too. Read one after the other (as they
/// were), 91 health lines came late for the reorder window, and the six
/// pages for a server down on both load balancers never came.
#[test]
fn rotated_and_unmapped_logs_are_read_side_by_side_too() {
    let dir = tempfile::tempdir().unwrap();
    let (both, logs) = busy_logs(dir.path(), 100_000);
    let gz: Vec<String> = (logs.iter())
        .map(|l| {
            let path = format!("{l}.1.gz");
            let mut z = flate2::write::GzEncoder::new(
                std::fs::File::create(&path).unwrap(),
                flate2::Compression::fast(),
            );
            std::io::Write::write_all(&mut z, &std::fs::read(l).unwrap()).unwrap();
            z.finish().unwrap();
            path
        })
        .collect();
    let one = report(&[], &[&both]);
    assert!(one["alerts"].as_array().unwrap().len() > 5, "{one:#}");
    for (flags, files) in [
        (&[][..], [&gz[0], &gz[1]]),
        (&[], [&gz[0], &logs[1]]),
        (&["--no-mmap"], [&logs[0], &logs[1]]),
    ] {
        let two = report(flags, &files);
        assert_eq!(two["input"]["late"], 0, "{flags:?} {files:?}");
        for part in ["input", "servers", "backends", "transitions", "alerts"] {
            assert_eq!(one[part], two[part], "{part} of {flags:?} {files:?}");
        }
    }
}

/// `hapwatch-gen`'s log of two load balancers, `lines` long, and each
/// one's own lines (lb2's first): the log that holds both, then theirs.
fn busy_logs(dir: &Path, lines: usize) -> (String, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_hapwatch-gen"))
        .args(["--lines", &lines.to_string(), "--seed", "3"])
        .output()
        .unwrap();
    let whole = String::from_utf8(out.stdout).unwrap();
    let both = dir.join("both.log");
    std::fs::write(&both, &whole).unwrap();
    let mut logs = Vec::new();
    for lb in ["lb2", "lb1"] {
        let own: String = (whole.lines())
            .filter(|l| l.split_whitespace().nth(3) == Some(lb))
            .map(|l| format!("{l}\n"))
            .collect();
        let path = dir.join(format!("{lb}.log"));
        std::fs::write(&path, own).unwrap();
        logs.push(path.to_str().unwrap().to_string());
    }
    (both.to_str().unwrap().to_string(), logs)
}

/// `analyze --alerts --format json` of `files`, its transitions and
/// alerts sorted: same-time lines of two hosts come in the order they
/// arrive.
fn report(flags: &[&str], files: &[&String]) -> serde_json::Value {
    let mut args = vec!["analyze", "--alerts", "--format", "json"];
    args.extend(flags);
    args.extend(files.iter().map(|f| f.as_str()));
    let mut r = json(&args);
    for list in ["transitions", "alerts"] {
        let mut v: Vec<String> = (r[list].as_array().unwrap().iter())
            .map(|x| x.to_string())
            .collect();
        v.sort();
        r[list] = serde_json::json!(v);
    }
    r
}

/// The timeline groups the outages by server across load balancers, and
/// counts the incident's servers once.
#[test]
fn the_timeline_of_a_fleet_says_down_on_k_of_n() {
    let dir = tempfile::tempdir().unwrap();
    let db = analyze_into(dir.path(), &fixture("fleet/haproxy-fleet.log"));
    let t = json(&["timeline", "--db", db.to_str().unwrap(), "--format", "json"]);
    let fleet = t["summary"]["fleet"].as_array().unwrap();
    let got: Vec<_> = fleet
        .iter()
        .map(|f| {
            (
                f["server"].as_str().unwrap(),
                f["down_on"].clone(),
                f["of"].as_u64().unwrap(),
                f["not_down_on"].clone(),
                f["up_at"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "be_app/srv2",
                serde_json::json!(["lb1", "lb2"]),
                3,
                serde_json::json!(["lb3"]),
                true
            ),
            (
                "be_app/srv3",
                serde_json::json!(["lb1", "lb2", "lb3"]),
                3,
                serde_json::json!([]),
                false
            ),
        ]
    );
    let out = hapwatch(&["timeline", "--db", db.to_str().unwrap(), "--list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("2 server(s) DOWN (5 on their load balancers)"),
        "{list}"
    );
    let out = hapwatch(&["timeline", "--db", db.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fleet          be_app/srv3 DOWN on 3/3 (lb1, lb2, lb3)"),
        "{text}"
    );
    // The fleet alert is about every load balancer: `*`, not `-` (no host).
    assert!(
        text.contains("*/be_app/srv3  critical alert haproxy_server_down_fleet fired"),
        "{text}"
    );
}

/// A load balancer that serves a server's requests through another's
/// outage of it reports the server too: "DOWN on 1/2 (lb1) · not on lb2",
/// as the fleet alert counts it, not "DOWN on 1/1 (lb1)", which reads as
/// down everywhere. lb2 logs no health line of srv1: its checks never
/// failed (HAProxy logs changes only). From the files and from the
/// database (its backends' minutes, or the rollups alone).
#[test]
fn a_load_balancer_serving_the_server_counts_in_the_timeline_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for s in 0..300 {
        let (m, sec) = (s / 60, s % 60);
        for lb in ["lb1", "lb2"] {
            // lb1 sends srv1 nothing while it is down (60 s to 180 s).
            let srv = match lb == "lb1" && (60..180).contains(&s) {
                true => "srv2",
                false => ["srv1", "srv2"][s % 2],
            };
            log.push_str(&format!(
                "Nov 24 10:0{m}:{sec:02} {lb} haproxy[1]: 10.0.0.1:4242 [24/Nov/2026:10:0{m}:{sec:02}.100] fe be_app/{srv} 0/0/1/5/6 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n"
            ));
        }
        if s == 60 {
            log.push_str("Nov 24 10:01:00 lb1 haproxy[1]: Server be_app/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n");
        }
        if s == 180 {
            log.push_str("Nov 24 10:03:00 lb1 haproxy[1]: Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 2ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.\n");
        }
    }
    let path = dir.path().join("both.log");
    std::fs::write(&path, log).unwrap();
    let file = path.to_str().unwrap();
    let db = analyze_into(dir.path(), &path);
    let db = db.to_str().unwrap();
    let told = |args: &[&str]| {
        let t = json(&[&["timeline", "--format", "json"][..], args].concat());
        // No fleet section where one host reports the server.
        let f = t["summary"]["fleet"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let f: Vec<_> = (f.iter())
            .map(|f| {
                (
                    f["server"].clone(),
                    f["down_on"].clone(),
                    f["of"].clone(),
                    f["not_down_on"].clone(),
                )
            })
            .collect();
        f
    };
    let want = vec![(
        serde_json::json!("be_app/srv1"),
        serde_json::json!(["lb1"]),
        serde_json::json!(2),
        serde_json::json!(["lb2"]),
    )];
    assert_eq!(told(&[file]), want, "from the file");
    assert_eq!(told(&["--db", db]), want, "from the database");
    assert_eq!(
        told(&["--db", db, "--server", "srv1"]),
        want,
        "the rollups alone"
    );
    let out = hapwatch(&["timeline", file]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("be_app/srv1 DOWN on 1/2 (lb1)"), "{text}");
}

#[test]
fn fresh_capture_of_three_real_load_balancers() {
    require_tools(&["haproxy", "python3"]);
    let cap = capture_with("capture-fleet.sh", "29600", &[]);
    let dir = tempfile::tempdir().unwrap();
    let db = analyze_into(dir.path(), &cap.path().join("haproxy-fleet.log"));
    the_fleet_story(&db);
    the_fleet_alerts(&db);
}

/// The same three load balancers logging straight to `hapwatch listen`.
#[test]
fn three_real_load_balancers_logging_to_listen() {
    require_tools(&["haproxy", "python3"]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let port = 29790;
    // Killed if the test fails before its SIGTERM.
    let mut guard = common::listen_ready(&[
        "--udp",
        &format!("127.0.0.1:{port}"),
        "--db",
        db.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]);
    let child = &mut guard.0;
    let cap = capture_with(
        "capture-fleet.sh",
        "29700",
        &[("CAPTURE_LOG_PORT", &port.to_string())],
    );
    drop(cap);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "listen did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    the_fleet_story(&db);
    the_fleet_alerts(&db);
}

/// `status --fleet` counts a server a load balancer sends requests to (no
/// health line of it yet: a server without `check` is UP for HAProxy) as
/// UP in its backend's "servers up per host" too, as in its own row ("UP
/// on 2/2"): the backend said "lb1 0/2" beside two servers UP on both.
#[test]
fn fleet_backends_count_the_servers_their_rows_show_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for s in 0..60 {
        for lb in ["lb1", "lb2"] {
            for srv in ["t1", "t2"] {
                log.push_str(&format!(
                    "Nov 24 10:00:{s:02} {lb} haproxy[1]: 10.0.0.1:4242 [24/Nov/2026:10:00:{s:02}.100] fe_tcp be_tcp/{srv} 0/1/20 100 -- 1/1/0/0/0 0/0\n"
                ));
            }
        }
    }
    // lb1's checks of t2 fail: DOWN there, still served by lb2.
    log.push_str("Nov 24 10:00:59 lb1 haproxy[1]: Server be_tcp/t2 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n");
    let path = dir.path().join("both.log");
    std::fs::write(&path, log).unwrap();
    let db = analyze_into(dir.path(), &path);
    let f = json(&[
        "status",
        "--fleet",
        "--format",
        "json",
        "--db",
        db.to_str().unwrap(),
    ]);
    let states: Vec<_> = (f["servers"].as_array().unwrap().iter())
        .map(|s| {
            (
                s["server"].clone(),
                s["fleet_state"].clone(),
                s["down_on"].clone(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (
                serde_json::json!("t1"),
                serde_json::json!("UP"),
                serde_json::json!(0)
            ),
            (
                serde_json::json!("t2"),
                serde_json::json!("PARTIAL"),
                serde_json::json!(1)
            ),
        ]
    );
    let be = &f["backends"][0]["hosts"];
    let up = |h: &str| (be[h]["servers_up"].clone(), be[h]["servers"].clone());
    assert_eq!(
        up("lb1"),
        (serde_json::json!(1), serde_json::json!(2)),
        "{be}"
    );
    assert_eq!(
        up("lb2"),
        (serde_json::json!(2), serde_json::json!(2)),
        "{be}"
    );
    let out = hapwatch(&["status", "--fleet", "--db", db.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lb1 1/2, lb2 2/2"), "{text}");
}

/// README's fleet section is what the commands print.
#[test]
fn the_readme_fleet_status_is_what_hapwatch_prints() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fleet.db");
    let out = hapwatch(&[
        "analyze",
        "--db",
        db.to_str().unwrap(),
        "--alerts",
        fixture("fleet/haproxy-fleet.log").to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    let readme = std::fs::read_to_string(fixture("../README.md")).unwrap();
    let block = readme
        .split("$ hapwatch analyze --db fleet.db --alerts fixtures/fleet/haproxy-fleet.log\n")
        .nth(1)
        .unwrap();
    for line in block.lines().take_while(|l| !l.starts_with("$ ")) {
        if line != "..." {
            assert!(
                said.contains(line),
                "README says {line:?}; analyze printed:\n{said}"
            );
        }
    }
    let shown = block
        .split("$ hapwatch status --fleet --db fleet.db\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let out = hapwatch(&["status", "--fleet", "--db", db.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), shown);
}

/// `hapwatch listen` on `udp` with `/metrics` on `web` and a database in
/// `dir`, ready.
fn listen_with_metrics(dir: &Path, udp: u16, web: u16, more: &[&str]) -> common::KillOnDrop {
    let (udp, web) = (format!("127.0.0.1:{udp}"), format!("127.0.0.1:{web}"));
    let db = dir.join("m.db");
    let mut args = vec![
        "--udp",
        &udp,
        "--metrics",
        &web,
        "--db",
        db.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    common::listen_ready(&args)
}

/// The three load balancers' capture sent over UDP, paced; how many lines.
fn send_fleet_log(udp: u16) -> u64 {
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let log = std::fs::read_to_string(fixture("fleet/haproxy-fleet.log")).unwrap();
    for l in log.lines() {
        u.send_to(l.as_bytes(), ("127.0.0.1", udp)).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    log.lines().count() as u64
}

/// `/metrics` of a listener that heard the three load balancers passes
/// `promtool check metrics` (HELP on every family, base units), and a
/// client asking for OpenMetrics gets OpenMetrics.
#[test]
fn metrics_pass_promtool_check_metrics() {
    require_tools(&["promtool"]);
    let dir = tempfile::tempdir().unwrap();
    let (udp, web) = (29791, 29792);
    let _guard = listen_with_metrics(dir.path(), udp, web, &[]);
    let lines = send_fleet_log(udp);
    let text = common::wait_metric(web, "hapwatch_lines_total", lines);
    let body = text.split("\r\n\r\n").nth(1).unwrap().to_string();
    assert!(
        body.contains(
            "hapwatch_server_state{host=\"lb3\",backend=\"be_app\",server=\"srv2\",state=\"UP\"} 1"
        ),
        "{body}"
    );
    // The exporter's check and downtime series: srv2 refused lb1's
    // connections (L4CON) and is DOWN there since 09:50:05, up to lb1's
    // newest line (09:50:31); srv3 was DOWN 09:50:11-09:50:17 on lb3,
    // whose last check passed (L7OK, code 200).
    let value = |series: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {body}"))
    };
    let srv = |host: &str, server: &str| {
        format!("{{host=\"{host}\",proxy=\"be_app\",server=\"{server}\"")
    };
    assert_eq!(
        value(&format!(
            "hapwatch_server_check_status{},state=\"L4CON\"}}",
            srv("lb1", "srv2")
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            "hapwatch_server_check_status{},state=\"L7OK\"}}",
            srv("lb1", "srv2")
        )),
        0.0
    );
    assert_eq!(
        value(&format!(
            "hapwatch_server_check_status{},state=\"L7OK\"}}",
            srv("lb3", "srv3")
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            "hapwatch_server_check_code{}}}",
            srv("lb3", "srv3")
        )),
        200.0
    );
    let down = value(&format!(
        "hapwatch_server_downtime_seconds_total{}}}",
        srv("lb1", "srv2")
    ));
    assert!((20.0..=30.0).contains(&down), "{down}");
    let down = value(&format!(
        "hapwatch_server_downtime_seconds_total{}}}",
        srv("lb3", "srv3")
    ));
    assert!((5.0..=7.0).contains(&down), "{down}");
    assert_eq!(
        value(&format!(
            "hapwatch_server_downtime_seconds_total{}}}",
            srv("lb3", "srv1")
        )),
        0.0
    );
    // Replayed at once, the capture's hosts agree with each other; their
    // dates are hours behind the receive time.
    for h in ["lb1", "lb2", "lb3"] {
        let o = value(&format!(
            "hapwatch_host_clock_offset_seconds{{host=\"{h}\"}}"
        ));
        assert!(o < -3600.0, "{h}: {o}");
    }
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
    // Prometheus asks for OpenMetrics and gets it.
    let om = common::http_get(
        web,
        "/metrics",
        "Accept: application/openmetrics-text; version=1.0.0\r\n",
    );
    assert!(om.contains("application/openmetrics-text"), "{om}");
    assert!(om.trim_end().ends_with("# EOF"), "{om}");
}

/// contrib/prometheus-rules.yml: valid, and its unit tests pass.
#[test]
fn the_prometheus_rules_pass_promtool() {
    require_tools(&["promtool"]);
    let contrib = fixture("../contrib");
    for args in [
        vec!["check", "rules", "prometheus-rules.yml"],
        vec!["test", "rules", "prometheus-rules.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&contrib)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A real Prometheus (Debian's) scrapes a real `hapwatch listen` that heard
/// the three load balancers, and the rules' expressions find what the
/// capture shows: srv2 seen differently by the load balancers, no server
/// DOWN on all of them.
#[test]
fn prometheus_scrapes_listen_and_the_fleet_expressions_hold() {
    require_tools(&["prometheus", "promtool"]);
    let dir = tempfile::tempdir().unwrap();
    let (udp, web, prom) = (29793, 29794, 29795);
    let _listen = listen_with_metrics(dir.path(), udp, web, &[]);
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: hapwatch\n    static_configs:\n      - targets: ['127.0.0.1:{web}']\n",
            fixture("../contrib/prometheus-rules.yml").display()
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _prom = common::KillOnDrop(child);
    let lines = send_fleet_log(udp);
    common::wait_metric(web, "hapwatch_lines_total", lines);
    let query = |q: &str| -> serde_json::Value {
        let out = Command::new("promtool")
            .args([
                "query",
                "instant",
                "-o",
                "json",
                &format!("http://127.0.0.1:{prom}"),
                q,
            ])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    };
    // Prometheus up, and a scrape after the lines were taken.
    let servers = |q: &str| -> Vec<String> {
        query(q)
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        format!(
                            "{}/{}",
                            r["metric"]["proxy"].as_str().unwrap_or(""),
                            r["metric"]["server"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let diverge = "count by (proxy, server) (max by (host, proxy, server) (hapwatch_server_status{state=\"DOWN\"}) == 1) and count by (proxy, server) (max by (host, proxy, server) (hapwatch_server_status{state=\"UP\"}) == 1)";
    let deadline = Instant::now() + Duration::from_secs(30);
    while servers(diverge) != ["be_app/srv2"] {
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw srv2 diverge: {:?}",
            query(diverge)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let fleet_down = "count by (proxy, server) (max by (host, proxy, server) (hapwatch_server_status{state=\"DOWN\"}) == 1) == count by (proxy, server) (max by (host, proxy, server) (hapwatch_server_status) == 1)";
    assert_eq!(servers(fleet_down), Vec::<String>::new());
    let reporting =
        "count by (proxy, server) (max by (host, proxy, server) (hapwatch_server_status) == 1)";
    let r = query(reporting);
    assert!(
        r.as_array().unwrap().iter().all(|x| x["value"][1] == "3"),
        "{r}"
    );
    // Every query of the Grafana dashboard runs (its variables as "All"),
    // and those that draw what the capture holds find it.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("../contrib/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$host", ".*")
                .replace("$proxy", ".*")
                .replace("$__rate_interval", "1m");
            // A rate needs two scrapes of a series: wait for them.
            let drawn = [1, 2, 4, 7, 8].contains(&panel["id"].as_u64().unwrap());
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let url = format!("http://127.0.0.1:{prom}");
                let out = Command::new("promtool")
                    .args(["query", "instant", "-o", "json", &url, &expr])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "panel {:?}: {expr}: {}",
                    panel["title"],
                    String::from_utf8_lossy(&out.stderr)
                );
                let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                if !drawn || found.as_array().is_some_and(|a| !a.is_empty()) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "panel {:?} finds nothing: {expr}",
                    panel["title"]
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// `/metrics` counts alert deliveries by sink and outcome, and says which
/// version serves it.
#[test]
fn metrics_count_alert_deliveries_by_sink_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (udp, web, hook, closed) = (29796, 29797, 29798, 29799);
    // A receiver that answers 200 to everything.
    let l = std::net::TcpListener::bind(("127.0.0.1", hook)).unwrap();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for c in l.incoming().flatten() {
            let mut c = c;
            let mut buf = [0u8; 65536];
            let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = c.read(&mut buf);
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[delivery]\nretry_min = \"100ms\"\nmax_attempts = 2\n\
             [[sinks]]\nkind = \"webhook\"\nname = \"up\"\nurl = \"http://127.0.0.1:{hook}/\"\n\
             [[sinks]]\nkind = \"webhook\"\nname = \"down\"\nurl = \"http://127.0.0.1:{closed}/\"\ntimeout = \"1s\"\n"
        ),
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    let _guard = listen_with_metrics(
        dir.path(),
        udp,
        web,
        &["--reorder-window", "0s", "--rules", rules],
    );
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(
        format!("<129>Dec  1 09:50:05 lb1 haproxy[1]: {}", common::DOWN).as_bytes(),
        ("127.0.0.1", udp),
    )
    .unwrap();
    let text = common::wait_metric(
        web,
        "hapwatch_alert_deliveries_total{sink=\"down\",outcome=\"dead\"}",
        1,
    );
    assert_eq!(
        common::metric(
            &text,
            "hapwatch_alert_deliveries_total{sink=\"up\",outcome=\"delivered\"}"
        ),
        1,
        "{text}"
    );
    assert_eq!(
        common::metric(
            &text,
            "hapwatch_alert_deliveries_total{sink=\"down\",outcome=\"retried\"}"
        ),
        1,
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "hapwatch_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
}

/// `line` with every `HH:MM:SS` moved by `secs` (the capture's times
/// never cross midnight).
fn shift_times(line: &str, secs: i64) -> String {
    let re = regex::Regex::new(r"\b(\d\d):(\d\d):(\d\d)").unwrap();
    re.replace_all(line, |c: &regex::Captures| {
        let t: i64 = (1..=3).fold(0, |t, i| t * 60 + c[i].parse::<i64>().unwrap()) + secs;
        format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    })
    .into_owned()
}

fn host<'a>(f: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    f["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == name)
        .unwrap_or_else(|| panic!("no host {name} in {f:#}"))
}

/// lb2's clock runs five minutes behind (its dates, header and accept
/// date, all five minutes early): its lines are judged in its own time,
/// the fleet compares it on one clock. It is not silent, the fleet story
/// and alerts are those of the true capture, and the view says it is
/// skewed.
#[test]
fn a_load_balancer_whose_clock_runs_behind_is_skewed_not_silent() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::read_to_string(fixture("fleet/haproxy-fleet.log")).unwrap();
    let skewed: String = log
        .lines()
        .map(|l| match l.split_whitespace().nth(3) {
            Some("lb2") => shift_times(l, -300) + "\n",
            _ => format!("{l}\n"),
        })
        .collect();
    assert_ne!(skewed, log);
    let path = dir.path().join("lb2-behind.log");
    std::fs::write(&path, skewed).unwrap();
    let db = analyze_into(dir.path(), &path);
    the_fleet_story(&db);
    the_fleet_alerts(&db);
    let f = fleet(&db, "2m");
    let lb2 = host(&f, "lb2");
    let offset = lb2["clock_offset_seconds"].as_f64().unwrap();
    assert!((offset + 300.0).abs() < 3.0, "{lb2:#}");
    assert_eq!(lb2["skewed"], true);
    assert_eq!(lb2["clock_reference"], "fleet");
    for h in ["lb1", "lb3"] {
        assert_eq!(host(&f, h)["skewed"], false, "{f:#}");
    }
    let out = hapwatch(&["status", "--fleet", "--db", db.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("lb2")).unwrap();
    assert!(
        line.contains("dates 5m00s behind the other hosts"),
        "{text}"
    );
    assert!(!line.contains("silent"), "{text}");
}

/// RFC 5424 lines of `host` whose clock reads `now + offset`.
fn clock_lines(host: &str, now: i64, offset: i64, i: usize) -> Vec<String> {
    let t = chrono::DateTime::from_timestamp_millis(now + offset).unwrap();
    let stamp = t.format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let accept = t.format("%d/%b/%Y:%H:%M:%S%.3f");
    let mut lines = vec![format!(
        "<134>1 {stamp} {host} haproxy 10 - - 127.0.0.1:{} [{accept}] fe_http be_app/srv1 0/0/0/1/1 200 127 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
        40000 + i
    )];
    if i.is_multiple_of(10) {
        lines.push(format!(
            "<133>1 {stamp} {host} haproxy 10 - - Health check for server be_app/srv1 succeeded, reason: Layer7 check passed, code: 200, check duration: 1ms, status: 2/2 UP."
        ));
    }
    lines
}

/// Live, offsets are measured against the receive time: lb2's clock five
/// minutes behind, lb3's three minutes ahead (under --max-skew: applied).
/// No host is silent, none of the three pages as silent, and the view
/// says which clocks are off and by how much.
#[test]
fn live_clocks_behind_and_ahead_are_measured_against_the_receive_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("clocks.db");
    let port = 29789;
    let mut guard = common::listen_ready(&[
        "--udp",
        &format!("127.0.0.1:{port}"),
        "--db",
        db.to_str().unwrap(),
    ]);
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..40 {
        let now = common::now_ms();
        for (h, offset) in [("lb1", 0), ("lb2", -300_000), ("lb3", 180_000)] {
            for l in clock_lines(h, now, offset, i) {
                u.send_to(l.as_bytes(), ("127.0.0.1", port)).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    guard.terminate();
    let f = fleet(&db, "2m");
    for (h, want, skewed) in [
        ("lb1", 0.0, false),
        ("lb2", -300.0, true),
        ("lb3", 180.0, true),
    ] {
        let v = host(&f, h);
        let offset = v["clock_offset_seconds"].as_f64().unwrap();
        assert!((offset - want).abs() < 2.0, "{h}: {v:#}");
        assert_eq!(v["skewed"], skewed, "{h}: {v:#}");
        assert_eq!(v["silent"], false, "{h}: {v:#}");
        assert_eq!(v["clock_reference"], "received", "{h}: {v:#}");
    }
    let out = hapwatch(&["status", "--fleet", "--db", db.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dates 5m00s behind their arrival"), "{text}");
    assert!(
        text.contains("dates 3m00s ahead of their arrival"),
        "{text}"
    );
    let all = alerts(&db);
    assert!(
        !all.iter().any(|a| a.0 == "haproxy_host_silent"),
        "{all:#?}"
    );
}

/// A restart at any line: `listen` killed while its reorder window holds
/// lb1's health line, started again, and only lb2 heard from since. lb1's
/// clock, measured before the crash, is known to the new process (its
/// `/metrics`, its fleet rules) and is still what the store says (it was
/// written over with "not measured" by the restarted process, which had
/// read lb1's held line back but measured nothing with it), and its newest
/// line stays its newest.
#[test]
fn a_restart_keeps_the_clocks_measured_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("held.db");
    let port = 29788;
    let args = [
        "--udp",
        &format!("127.0.0.1:{port}"),
        "--db",
        db.to_str().unwrap(),
        "--reorder-window",
        "60s",
    ];
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |lines: Vec<String>| {
        for l in lines {
            u.send_to(l.as_bytes(), ("127.0.0.1", port)).unwrap();
        }
    };
    let before = {
        let mut guard = common::listen_ready(&args);
        // A request line and a health line (held by the 60 s window) from
        // lb1, its clock 30 s behind; a commit stores both; then a crash.
        send(clock_lines("lb1", common::now_ms(), -30_000, 0));
        std::thread::sleep(Duration::from_millis(2500));
        guard.0.kill().unwrap();
        guard.0.wait().unwrap();
        let f = fleet(&db, "10m");
        host(&f, "lb1").clone()
    };
    let offset = |v: &serde_json::Value| v["clock_offset_seconds"].as_f64();
    assert!(
        offset(&before).is_some_and(|o| (o + 30.0).abs() < 2.0),
        "{before:#}"
    );
    // Started again with /metrics: lb1's clock is known from the start.
    let web = 29787;
    let mut again = args.to_vec();
    let web_addr = format!("127.0.0.1:{web}");
    again.extend(["--metrics", &web_addr]);
    let mut guard = common::listen_ready(&again);
    for i in 1..4 {
        send(clock_lines("lb2", common::now_ms(), 0, i));
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = common::wait_metric(web, "hapwatch_lines_total", 3);
    let lb1 = m
        .lines()
        .find_map(|l| l.strip_prefix("hapwatch_host_clock_offset_seconds{host=\"lb1\"}"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no offset of lb1 in {m}"));
    assert!((lb1 + 30.0).abs() < 2.0, "{lb1}");
    std::thread::sleep(Duration::from_millis(1500));
    guard.terminate();
    let f = fleet(&db, "10m");
    let after = host(&f, "lb1");
    assert_eq!(offset(after), offset(&before), "{after:#}");
    assert_eq!(after["skewed"], true, "{after:#}");
    assert_eq!(after["last_line"], before["last_line"], "{after:#}");
    assert!(
        offset(host(&f, "lb2")).is_some_and(|o| o.abs() < 2.0),
        "{f:#}"
    );
}
