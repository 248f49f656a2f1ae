//! A restart is invisible: a log read in pieces (`analyze --db` run again
//! as the file grows, reading on from its checkpoint) gives the history,
//! the rollups and the alert events of one reading, wherever it is cut.

mod common;
use common::*;

use std::path::Path;

/// xorshift: cut points that differ from seed to seed, the same each run.
fn cuts(seed: u64, lines: usize, n: usize) -> Vec<usize> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<usize> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1 + (x % (lines as u64 - 1)) as usize
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

const RULES: &str = "[haproxy_server_flapping]\ntransitions = 2\nwindow = \"10m\"\n";

fn analyze(db: &Path, rules: &Path, file: &Path) {
    analyze_all(db, rules, &[file.to_path_buf()]);
}

/// [`analyze`] of several files at once.
fn analyze_all(db: &Path, rules: &Path, files: &[std::path::PathBuf]) {
    let mut args = vec![
        "analyze",
        "--db",
        db.to_str().unwrap(),
        "--alerts",
        "--rules",
        rules.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = hapwatch(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Alert events, transitions, rollups.
type Told = (Vec<String>, serde_json::Value, Vec<(i64, i64, i64)>);

/// What the database says: alert events, transitions, rollups.
fn told(db: &Path) -> Told {
    let a = hapwatch(&["alerts", "--db", db.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let mut alerts: Vec<String> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {} {}",
                a["rule"], a["status"], a["labels"], a["starts_at"], a["ends_at"]
            )
        })
        .collect();
    alerts.sort();
    let h = hapwatch(&["history", "--db", db.to_str().unwrap(), "--format", "json"]);
    let history: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    let c = rusqlite::Connection::open(db).unwrap();
    let mut q = c
        .prepare("SELECT minute_ms, requests, errors FROM rollups ORDER BY host, backend, server, minute_ms")
        .unwrap();
    let rollups = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (alerts, history, rollups)
}

/// The rules file written in `dir`, and what one reading of `text`
/// (`analyze --db` of the whole log) leaves in a database.
fn one_reading(dir: &Path, text: &str) -> (std::path::PathBuf, Told) {
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let whole = dir.join("whole.log");
    std::fs::write(&whole, text).unwrap();
    let one = dir.join("one.db");
    analyze(&one, &rules, &whole);
    (rules, told(&one))
}

#[test]
fn a_log_read_in_pieces_gives_the_alerts_of_one_reading() {
    for fixture_name in ["rsyslog-file.log", "haproxy-udp-rfc5424.log"] {
        let text = std::fs::read_to_string(fixture(fixture_name)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let dir = tempfile::tempdir().unwrap();
        let (rules, expected) = one_reading(dir.path(), &text);
        assert!(
            expected
                .0
                .iter()
                .any(|a| a.contains("haproxy_server_flapping")),
            "the one reading has a flapping alert: {:?}",
            expected.0
        );
        for seed in 1..=6 {
            let cut = cuts(seed, lines.len(), 3);
            let growing = dir.path().join(format!("growing-{seed}.log"));
            let db = dir.path().join(format!("pieces-{seed}.db"));
            let mut written = 0;
            for &end in cut.iter().chain(std::iter::once(&lines.len())) {
                let mut piece = lines[written..end].join("\n");
                piece.push('\n');
                use std::io::Write;
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&growing)
                    .unwrap()
                    .write_all(piece.as_bytes())
                    .unwrap();
                written = end;
                analyze(&db, &rules, &growing);
            }
            let got = told(&db);
            assert_eq!(got.0, expected.0, "{fixture_name}: alerts, cut at {cut:?}");
            assert_eq!(got.1, expected.1, "{fixture_name}: history, cut at {cut:?}");
            assert_eq!(got.2, expected.2, "{fixture_name}: rollups, cut at {cut:?}");
        }
    }
}

/// With `option log-health-checks` the state line is short (`Server
/// be_app/srv2 is DOWN. 2 active ...`) and its reason is on the check line
/// just before it. A log read up to a check line, then on: the transition
/// keeps the check's cause and details, and a server's state read off a
/// check line stays provisional across the restart, as in one reading.
/// Before, the second run knew neither (the cause was null).
#[test]
fn a_log_cut_after_any_check_line_gives_the_history_of_one_reading() {
    let text = std::fs::read_to_string(fixture("rsyslog-file.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let (rules, expected) = one_reading(dir.path(), &text);
    let checks: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("Health check for server"))
        .collect();
    assert!(checks.len() >= 6, "{checks:?}");
    for &i in &checks {
        let growing = dir.path().join(format!("cut-{i}.log"));
        let db = dir.path().join(format!("cut-{i}.db"));
        std::fs::write(&growing, lines[..=i].join("\n") + "\n").unwrap();
        analyze(&db, &rules, &growing);
        std::fs::write(&growing, &text).unwrap();
        analyze(&db, &rules, &growing);
        let got = told(&db);
        assert_eq!(got.1, expected.1, "history, cut after line {}", i + 1);
        assert_eq!(got.0, expected.0, "alerts, cut after line {}", i + 1);
    }
}

/// logrotate's `dateext` (and any rotation that leaves the new log under
/// a name read for the first time): yesterday's file read, then today's.
/// Today's servers go on from the states stored: the history and the
/// states are those of one reading, wherever the day ends. Before, a file
/// that did not resume from a checkpoint started every server's story
/// afresh: a short state line (`option log-health-checks`) just after the
/// cut lost the cause and details its check line gave.
#[test]
fn a_log_rotated_to_a_new_name_gives_the_history_of_one_reading() {
    let status = |db: &Path| {
        let out = hapwatch(&["status", "--db", db.to_str().unwrap(), "--format", "json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    for fixture_name in ["rsyslog-file.log", "haproxy-udp-rfc5424.log"] {
        let text = std::fs::read_to_string(fixture(fixture_name)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let dir = tempfile::tempdir().unwrap();
        let (rules, expected) = one_reading(dir.path(), &text);
        let states = status(&dir.path().join("one.db"));
        // After each check line, and anywhere.
        let mut at: Vec<usize> = (0..lines.len() - 1)
            .filter(|&i| lines[i].contains("Health check for server"))
            .map(|i| i + 1)
            .chain(cuts(7, lines.len(), 3))
            .collect();
        at.dedup();
        assert!(at.len() >= 9, "{at:?}");
        for cut in at {
            let db = dir.path().join(format!("days-{cut}.db"));
            for (day, part) in [(24, &lines[..cut]), (25, &lines[cut..])] {
                let file = dir.path().join(format!("haproxy.log-202611{day}-{cut}"));
                std::fs::write(&file, part.join("\n") + "\n").unwrap();
                analyze(&db, &rules, &file);
            }
            let got = told(&db);
            assert_eq!(
                got.1, expected.1,
                "{fixture_name}: history, cut after line {cut}"
            );
            assert_eq!(
                got.0, expected.0,
                "{fixture_name}: alerts, cut after line {cut}"
            );
            assert_eq!(
                got.2, expected.2,
                "{fixture_name}: rollups, cut after line {cut}"
            );
            assert_eq!(
                status(&db),
                states,
                "{fixture_name}: states, cut after line {cut}"
            );
        }
    }
}

/// The other way round: an older log read after a newer one (an archive
/// filled in afterwards) still stores its own story. Its servers' first
/// lines are older than the states stored, so they start afresh as they
/// did when the log was first read, and the newer states stay.
#[test]
fn an_older_log_read_after_a_newer_one_stores_its_own_history() {
    let text = std::fs::read_to_string(fixture("rsyslog-file.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    // Between a server's DOWN and its UP: the newer log's states are
    // newer than the older log's lines of the same server.
    let cut = 1 + lines.iter().position(|l| l.contains(" is DOWN")).unwrap();
    let (old, new) = (dir.path().join("old.log"), dir.path().join("new.log"));
    std::fs::write(&old, lines[..cut].join("\n") + "\n").unwrap();
    std::fs::write(&new, lines[cut..].join("\n") + "\n").unwrap();
    let alone = dir.path().join("alone.db");
    analyze(&alone, &rules, &old);
    let status = |db: &Path| {
        let out = hapwatch(&["status", "--db", db.to_str().unwrap(), "--format", "json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let newer = dir.path().join("newer.db");
    analyze(&newer, &rules, &new);
    let newest = status(&newer);
    // Its report tells the states of its own time: those of the log read
    // alone, not the newer ones stored (be_tcp's servers, UP since a time
    // after this log ends, are as unknown as they are to it alone).
    let states = |args: &[&str]| -> Vec<String> {
        let r = analyze_json(args);
        let s = |s: &serde_json::Value, k: &str| s[k].as_str().unwrap().to_string();
        let servers = r["servers"].as_array().unwrap().iter();
        servers
            .map(|x| format!("{}/{} {}", s(x, "backend"), s(x, "server"), s(x, "state")))
            .collect()
    };
    let (old_path, newer_path) = (old.to_str().unwrap(), newer.to_str().unwrap());
    let alone_states = states(&[old_path]);
    let read = states(&[
        "--db",
        newer_path,
        "--rules",
        rules.to_str().unwrap(),
        "--alerts",
        old_path,
    ]);
    assert_eq!(read, alone_states);
    let (history, old_history) = (told(&newer).1, told(&alone).1);
    let all = history["transitions"].as_array().unwrap();
    let old_ones = old_history["transitions"].as_array().unwrap();
    assert!(!old_ones.is_empty());
    for t in old_ones {
        assert!(all.contains(t), "{t} is not in {all:?}");
    }
    assert_eq!(status(&newer), newest, "the newer states stay");
}

/// A log of 15 minutes on one load balancer: three servers with a request
/// every 2 s each; srv1 flaps (DOWN/UP twice), srv2 answers 503 to half
/// its requests in minutes 4 to 8, srv3 is slow (2 s) in minutes 6 to 10:
/// transition, flapping, error-rate and latency alerts, firing and
/// resolved.
fn incident_log() -> Vec<String> {
    incidents(15)
}

/// [`incident_log`]'s fifteen minutes, repeated for `minutes` minutes.
fn incidents(minutes: u32) -> Vec<String> {
    let mut lines = Vec::new();
    let hms = |s: u32| format!("{:02}:{:02}:{:02}", 10 + s / 3600, s / 60 % 60, s % 60);
    let at = |s: u32| format!("2026-11-24T{}+00:00", hms(s));
    let apache = |s: u32| format!("24/Nov/2026:{}.000", hms(s));
    for s in (0..minutes * 60).step_by(2) {
        let minute = s / 60 % 15;
        match s % 900 {
            130 | 190 => lines.push(format!(
                "{} lb1 haproxy[7]: Server be_app/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
                at(s)
            )),
            160 | 220 => lines.push(format!(
                "{} lb1 haproxy[7]: Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 3 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
                at(s)
            )),
            _ => {}
        }
        for srv in 1..=3 {
            let status = if srv == 2 && (4..=8).contains(&minute) && s % 4 == 0 {
                503
            } else {
                200
            };
            let tr = if srv == 3 && (6..=10).contains(&minute) {
                2000
            } else {
                20
            };
            lines.push(format!(
                "{} lb1 haproxy[7]: 10.0.0.{srv}:{} [{}] fe_http be_app/srv{srv} 0/0/1/{tr}/{} {status} 512 - - ---- 3/3/1/1/0 0/0 \"GET /x HTTP/1.1\"",
                at(s),
                1024 + s % 60000,
                apache(s),
                tr + 1
            ));
        }
    }
    lines
}

const LIVE_RULES: &str = "[haproxy_server_flapping]\ntransitions = 2\nwindow = \"5m\"\n\
[haproxy_server_latency]\nwindow = \"1m\"\nfor = \"1m\"\nmin_requests = 10\nthreshold_ms = 800\n\
[haproxy_server_errors]\nwindow = \"1m\"\nfor = \"1m\"\nmin_requests = 10\nmax_ratio = 0.2\n";

/// `hapwatch listen --follow`, started and waited for.
fn follow(db: &Path, rules: &Path, log: &Path) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hapwatch"))
        .args(["listen", "--db", db.to_str().unwrap(), "--rules"])
        .arg(rules)
        .arg("--follow")
        .arg(log)
        // Event time only: no wall clock closes minutes in this test.
        .args(["--idle-grace", "1h", "--reorder-window", "300ms"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "did not start: {line}");
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    child
}

/// Waits (bounded) until the database's checkpoint for `log` is at its end.
fn caught_up(db: &Path, log: &Path) {
    let len = std::fs::metadata(log).unwrap().len() as i64;
    let key = std::fs::canonicalize(log).unwrap().display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let at: Option<i64> = rusqlite::Connection::open(db).ok().and_then(|c| {
            c.query_row(
                "SELECT offset FROM checkpoints WHERE path = ?1",
                [&key],
                |r| r.get(0),
            )
            .ok()
        });
        if at == Some(len) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "checkpoint {at:?} never reached {len}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `listen` stopped with SIGKILL or SIGTERM at random moments while it
/// follows a growing log, started again each time, stores the alert
/// events, the history and the rollups of one uninterrupted reading: what
/// it committed and where it stands in the file are one transaction, and a
/// stop is not the end of a minute.
#[test]
fn listen_stopped_at_any_moment_gives_the_alerts_of_one_reading() {
    let lines = incident_log();
    let dir = tempfile::Builder::new()
        .disable_cleanup(std::env::var_os("HAPWATCH_KEEP_TEST_DIR").is_some())
        .tempdir()
        .unwrap();
    eprintln!("in {}", dir.path().display());
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, LIVE_RULES).unwrap();
    let whole = dir.path().join("whole.log");
    std::fs::write(&whole, lines.join("\n") + "\n").unwrap();
    let one = dir.path().join("one.db");
    analyze(&one, &rules, &whole);
    let expected = told(&one);
    // Each alert is one row, resolved at its end.
    for rule in [
        "haproxy_server_flapping",
        "haproxy_server_errors",
        "haproxy_server_latency",
        "haproxy_backend_server_status",
    ] {
        assert!(
            expected
                .0
                .iter()
                .any(|a| a.contains(rule) && a.contains("resolved")),
            "the one reading has {rule}, resolved: {:?}",
            expected.0
        );
    }
    for seed in 1..=4u64 {
        let log = dir.path().join(format!("live-{seed}.log"));
        let db = dir.path().join(format!("live-{seed}.db"));
        std::fs::write(&log, "").unwrap();
        let mut child = follow(&db, &rules, &log);
        // Pieces of random length, each followed by a random pause; after
        // some of them a SIGKILL at a random moment, then a restart.
        let cut = cuts(seed, lines.len(), 12);
        let mut written = 0;
        let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut kills = 0;
        for &end in cut.iter().chain(std::iter::once(&lines.len())) {
            let piece = lines[written..end].join("\n") + "\n";
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .unwrap()
                .write_all(piece.as_bytes())
                .unwrap();
            written = end;
            std::thread::sleep(std::time::Duration::from_millis(rand(700)));
            if end < lines.len() && rand(2) == 0 {
                if rand(2) == 0 {
                    child.kill().unwrap();
                    child.wait().unwrap();
                } else {
                    std::process::Command::new("kill")
                        .args(["-TERM", &child.id().to_string()])
                        .status()
                        .unwrap();
                    assert!(child.wait().unwrap().success());
                }
                kills += 1;
                child = follow(&db, &rules, &log);
            }
        }
        caught_up(&db, &log);
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(child.wait().unwrap().success());
        let got = told(&db);
        assert!(kills > 0, "seed {seed} stopped nothing");
        assert_eq!(got.0, expected.0, "alerts, {kills} stops, seed {seed}");
        assert_eq!(got.1, expected.1, "history, {kills} stops, seed {seed}");
        assert_eq!(got.2, expected.2, "rollups, {kills} stops, seed {seed}");
    }
}

/// `analyze --db` killed with SIGKILL at a random moment of a long run, then
/// run again to the end, stores what one run stores: each commit holds
/// the checkpoint, the rollups, the transitions, the alert events and the
/// rules' state of exactly the lines before it. So do two load balancers'
/// compressed logs read side by side (each lane's checkpoint in its
/// decoded text, read a chunk ahead on a thread of its own).
#[test]
fn analyze_killed_mid_run_and_run_again_gives_the_alerts_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, LIVE_RULES).unwrap();
    let log = dir.path().join("day.log");
    // Eight hours: 44,000 lines, long enough to be killed in the middle.
    let text = incidents(8 * 60).join("\n") + "\n";
    std::fs::write(&log, &text).unwrap();
    let mut rotated = Vec::new();
    for lb in ["lb1", "lb2"] {
        let gz = dir.path().join(format!("{lb}.log.1.gz"));
        let mut z = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut z, text.replace(" lb1 ", &format!(" {lb} ")).as_bytes())
            .unwrap();
        z.finish().unwrap();
        rotated.push(gz);
    }
    for (k, files) in [vec![log.clone()], rotated].into_iter().enumerate() {
        killed_mid_run(dir.path(), &rules, &files, k);
    }
}

/// [`analyze_killed_mid_run_and_run_again_gives_the_alerts_of_one_run`] of
/// `files`, its databases named after `k`.
fn killed_mid_run(dir: &Path, rules: &Path, files: &[std::path::PathBuf], k: usize) {
    // Two hosts' transitions at one time are listed in the order their
    // lines arrived, which a run resumed mid-way may change: each host's
    // own order is what is compared.
    let told = |db: &Path| {
        let mut t = told(db);
        if let Some(list) = t.1["transitions"].as_array_mut() {
            list.sort_by_key(|x| (x["at"].to_string(), x["host"].to_string()));
        }
        t
    };
    let one = dir.join(format!("one-{k}.db"));
    let started = std::time::Instant::now();
    analyze_all(&one, rules, files);
    // Kills land at a random tenth to nine tenths of one run's time,
    // whatever the build's speed.
    let whole = started.elapsed();
    let expected = told(&one);
    assert!(expected.0.len() > 100, "{} alerts", expected.0.len());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut cut_short = 0;
    for seed in 1..=6 {
        let db = dir.join(format!("killed-{k}-{seed}.db"));
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hapwatch"))
            .args([
                "analyze",
                "--db",
                db.to_str().unwrap(),
                "--commit-every",
                "20ms",
            ])
            .args([
                "--alerts",
                "--rules",
                rules.to_str().unwrap(),
                "--format",
                "json",
            ])
            .args(files)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole.mul_f64((10 + x % 80) as f64 / 100.0));
        child.kill().unwrap();
        let killed = !child.wait().unwrap().success();
        cut_short += killed as usize;
        let stored: i64 = rusqlite::Connection::open(&db)
            .and_then(|c| c.query_row("SELECT count(*) FROM rollups", [], |r| r.get(0)))
            .unwrap_or(0);
        eprintln!("{files:?} seed {seed}: killed {killed}, {stored} rollups stored before");
        analyze_all(&db, rules, files);
        let got = told(&db);
        assert_eq!(got.0, expected.0, "alerts, seed {seed}, {files:?}");
        assert_eq!(got.1, expected.1, "history, seed {seed}, {files:?}");
        assert_eq!(got.2, expected.2, "rollups, seed {seed}, {files:?}");
    }
    assert!(
        cut_short > 0,
        "no run of {files:?} was killed before its end"
    );
}

/// The pieces a run is cut into inside (the workers' epochs) are invisible
/// too: the same log gives the same alerts whatever `--threads`, and each
/// episode of errors (the same every 15 minutes) is one alert. A minute
/// whose lines straddled two epochs was judged on its first part when the
/// ordering thread had applied lines beyond it (a health line deep in the
/// next chunk was enough): one episode in eight became two alerts, and
/// which ones changed with the number of workers and the load.
#[test]
fn alerts_do_not_depend_on_the_number_of_workers() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, LIVE_RULES).unwrap();
    let log = dir.path().join("day.log");
    std::fs::write(&log, incidents(8 * 60).join("\n") + "\n").unwrap();
    let alerts = |threads: &str| -> Vec<(String, String, String)> {
        let out = hapwatch(&[
            "analyze",
            "--threads",
            threads,
            "--alerts",
            "--rules",
            rules.to_str().unwrap(),
            "--format",
            "json",
            log.to_str().unwrap(),
        ]);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut a: Vec<_> = v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let server = a["labels"]["server"].as_str().unwrap_or("").to_string();
                let what = format!("{} {}", a["rule"], a["status"]);
                (what, server, format!("{} {}", a["starts_at"], a["ends_at"]))
            })
            .collect();
        a.sort();
        a
    };
    let one = alerts("1");
    // 32 episodes in 8 hours: srv2 fails from minute 4 to 8 of each 15.
    let errors: Vec<_> = one
        .iter()
        .filter(|(what, server, _)| what.contains("haproxy_server_errors") && server == "srv2")
        .filter(|(what, _, _)| what.contains("resolved"))
        .collect();
    assert_eq!(errors.len(), 32, "{errors:#?}");
    let slow = one
        .iter()
        .filter(|(what, server, _)| what.contains("latency\" \"resolved") && server == "srv3");
    assert_eq!(slow.count(), 32);
    for threads in ["2", "3", "8"] {
        assert_eq!(alerts(threads), one, "--threads {threads}");
    }
}
