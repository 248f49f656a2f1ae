//! The command line as a user meets it: inputs, formats, filters, errors
//! and exit codes.

mod common;
use common::*;
use std::io::Write;

trait ReplaceBytes {
    fn replace_bytes(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceBytes for [u8] {
    fn replace_bytes(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self.windows(from.len()).position(|w| w == from).unwrap();
        [&self[..at], to, &self[at + from.len()..]].concat()
    }
}

fn fx(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

#[test]
fn missing_file_is_named_others_still_analyzed_exit_1() {
    let f = fx("haproxy-udp-rfc3164.log");
    let out = hapwatch(&[
        "analyze",
        "--format",
        "json",
        "/nonexistent/haproxy.log",
        &f,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/haproxy.log"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["requests"], 790);
    assert_eq!(r["input"]["errors"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_arguments_exit_2_with_what_to_fix() {
    let f = fx("haproxy-udp-rfc3164.log");
    for (args, says) in [
        (vec!["analyze", "--since", "yesterday", &f], "RFC 3339"),
        (vec!["analyze", "--format", "xml", &f], "possible values"),
        (vec!["analyze"], "FILES"),
        (vec!["analyze", "--threads", "0", &f], "threads"),
        (
            vec![
                "analyze",
                "--since",
                "2026-11-25",
                "--until",
                "2026-11-24",
                &f,
            ],
            "--since must be before --until",
        ),
        (
            vec!["analyze", "--patterns", "/nonexistent-dir", &f],
            "nonexistent-dir",
        ),
        (vec!["frobnicate"], "frobnicate"),
        // halog's habit of a value after a space: the list is not a file.
        (
            vec!["analyze", "--percentiles", "50,90,99", &f],
            "--percentiles=50,90,99",
        ),
    ] {
        let out = hapwatch(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn invalid_pattern_file_exits_2_naming_file_and_pattern() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        "[[pattern]]\nname = 'broken'\nclass = 'server'\nregex = '^(unclosed'\nsample = 'x'\n",
    )
    .unwrap();
    let out = hapwatch(&[
        "analyze",
        "--patterns",
        dir.path().to_str().unwrap(),
        &fx("rsyslog-file.log"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mine.toml") && err.contains("broken"), "{err}");
}

#[test]
fn user_patterns_extend_the_builtin_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lua.toml"),
        "[[pattern]]\nname = 'lua_marked_down'\nclass = 'server'\n\
         regex = '^lua: (?P<backend>\\S+)/(?P<server>\\S+) marked down by (?P<cause>.*)$'\n\
         op = 'DOWN'\nsample = 'lua: be/s1 marked down by script'\n",
    )
    .unwrap();
    let log = "2026-11-24T10:00:00Z lb1 haproxy[1]: lua: be/s1 marked down by script\n";
    let out = hapwatch_stdin(
        &[
            "analyze",
            "--format",
            "json",
            "--patterns",
            dir.path().to_str().unwrap(),
            "-",
        ],
        log.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["health_events"], 1);
    assert_eq!(server(&r, "be", "s1")["state"], "DOWN");
    let list = hapwatch(&["patterns", "--patterns", dir.path().to_str().unwrap()]);
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout).contains("lua_marked_down"));
}

#[test]
fn gzip_by_magic_bytes_with_several_members() {
    let text = std::fs::read(fixture("haproxy-udp-rfc5424.log")).unwrap();
    let half = &text[..text.len() / 2];
    let cut = half.iter().rposition(|&c| c == b'\n').unwrap() + 1;
    let (a, b) = text.split_at(cut);
    let dir = tempfile::tempdir().unwrap();
    // No .gz suffix: detection is by content. Two concatenated members, as
    // logrotate's delaycompress + cat produce.
    let path = dir.path().join("rotated.log.1");
    let mut f = std::fs::File::create(&path).unwrap();
    for part in [a, b] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part).unwrap();
        f.write_all(&enc.finish().unwrap()).unwrap();
    }
    drop(f);
    let gz = analyze_json(&[path.to_str().unwrap()]);
    let plain = analyze_json(&[&fx("haproxy-udp-rfc5424.log")]);
    assert_eq!(gz["input"], plain["input"]);
    assert_eq!(gz["transitions"], plain["transitions"]);
    assert_eq!(gz["servers"], plain["servers"]);
}

/// logrotate's other usual `compresscmd`s: xz, zstd and bzip2 files, each
/// made by the real tool from two halves of a capture and concatenated (as
/// `cat` of two rotations), no telling suffix: read as the plain capture
/// is, from a file and from stdin.
#[test]
fn xz_zstd_and_bzip2_rotations_by_magic_bytes() {
    require_tools(&["xz", "zstd", "bzip2"]);
    let text = std::fs::read(fixture("haproxy-udp-rfc5424.log")).unwrap();
    let cut = text[..text.len() / 2]
        .iter()
        .rposition(|&c| c == b'\n')
        .unwrap()
        + 1;
    let plain = analyze_json(&[&fx("haproxy-udp-rfc5424.log")]);
    assert!(
        plain["transitions"].as_array().unwrap().len() > 2,
        "{plain}"
    );
    let dir = tempfile::tempdir().unwrap();
    for tool in ["xz", "zstd", "bzip2"] {
        let mut packed = Vec::new();
        for part in [&text[..cut], &text[cut..]] {
            let mut child = std::process::Command::new(tool)
                .args(["-c", "-q"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(part).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{tool}");
            packed.extend(out.stdout);
        }
        let path = dir.path().join(format!("rotated-{tool}.log.2"));
        std::fs::write(&path, &packed).unwrap();
        let from_file = analyze_json(&[path.to_str().unwrap()]);
        let out = hapwatch_stdin(&["analyze", "--format", "json", "-"], &packed);
        assert!(out.status.success(), "{tool} on stdin");
        let from_stdin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for r in [&from_file, &from_stdin] {
            assert_eq!(r["input"]["lines"], plain["input"]["lines"], "{tool}");
            assert_eq!(r["input"]["unparsed"], 0, "{tool}");
            assert_eq!(r["transitions"], plain["transitions"], "{tool}");
            assert_eq!(r["servers"], plain["servers"], "{tool}");
        }
    }
}

#[test]
fn stdin_and_several_files_in_order() {
    let text = std::fs::read(fixture("rsyslog-file.log")).unwrap();
    let out = hapwatch_stdin(&["analyze", "--format", "json", "-"], &text);
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["requests"], 790);
    // The same capture twice (two load balancers' files): counts double.
    let two = analyze_json(&[&fx("rsyslog-file.log"), &fx("haproxy-udp-rfc3164.log")]);
    assert_eq!(two["input"]["requests"], 1580);
    assert_eq!(two["transitions"].as_array().unwrap().len(), 20);
}

/// One file named twice is read once: `hapwatch analyze haproxy.log
/// haproxy.log*` (the shell gives the current file twice), a link beside
/// the file it points to, `-` twice. Read side by side, each name was a
/// reader of its own: a file's requests counted twice (into the store's
/// rollups too), and standard input's lines torn between two readers of
/// one pipe. Two files with the same lines (two load balancers' logs)
/// are still two inputs (`stdin_and_several_files_in_order`).
#[test]
fn a_file_named_twice_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let gen = std::process::Command::new(env!("CARGO_BIN_EXE_hapwatch-gen"))
        .args(["--lines", "20000", "--seed", "3"])
        .output()
        .unwrap();
    let log = dir.path().join("haproxy.log");
    std::fs::write(&log, &gen.stdout).unwrap();
    let link = dir.path().join("current");
    std::os::unix::fs::symlink(&log, &link).unwrap();
    let (log, link) = (log.to_str().unwrap(), link.to_str().unwrap());
    let figures = |r: &serde_json::Value| {
        let servers: Vec<_> = (r["servers"].as_array().unwrap().iter())
            .map(|s| {
                (
                    s["host"].clone(),
                    s["server"].clone(),
                    s["requests"].clone(),
                )
            })
            .collect();
        let transitions = r["transitions"].as_array().unwrap().len();
        (r["input"].to_string(), servers, transitions)
    };
    let once = analyze_json(&[log]);
    assert_eq!(once["input"]["requests"], 19_954, "{}", once["input"]);
    for args in [vec![log, log], vec![log, link], vec![link, log, log]] {
        let out = hapwatch(&[&["analyze", "--format", "json"][..], &args].concat());
        assert!(out.status.success(), "{args:?}");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(figures(&r), figures(&once), "{args:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("read once"), "{args:?}: {said}");
    }
    let text = std::fs::read(log).unwrap();
    for args in [vec!["-", "-"], vec!["-", "/dev/stdin"]] {
        let out = hapwatch_stdin(
            &[&["analyze", "--format", "json"][..], &args].concat(),
            &text,
        );
        assert!(out.status.success(), "{args:?}");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(figures(&r), figures(&once), "{args:?}");
    }
    // Into the store: the rollups of one reading.
    let db = dir.path().join("x.db");
    let db = db.to_str().unwrap();
    let out = hapwatch(&["analyze", "--db", db, "--format", "json", log, link]);
    assert!(out.status.success());
    let stored: i64 = rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT SUM(requests) FROM rollups", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 19_954);
}

/// A server that goes DOWN, UP and DOWN again within one second (`inter
/// 100ms fall 1 rise 1`, or an operator's runtime API) in a log dated to
/// the second (rsyslog's traditional file format, Debian's default) is
/// DOWN at the end: its second DOWN line was taken for a copy of the first
/// (same text, same time) and dropped, and the server read UP. A line
/// written twice (a second log path, each line delivered twice) is still
/// one event: nothing about the server came between the two copies.
#[test]
fn a_server_down_twice_in_one_second_ends_down() {
    let down = "Nov 24 10:00:00 lb1 haproxy[1]: Server be_app/srv1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    let up = "Nov 24 10:00:00 lb1 haproxy[1]: Server be_app/srv1 is UP, reason: Layer4 check passed, check duration: 0ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";
    let other = "Nov 24 10:00:05 lb1 haproxy[1]: Server be_app/srv2 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    let dir = tempfile::tempdir().unwrap();
    let once = [down, up, down, other];
    let twice: Vec<&str> = once.iter().flat_map(|l| [*l, *l]).collect();
    for (name, lines, duplicates) in [("once.log", &once[..], 0), ("twice.log", &twice[..], 4)] {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let r = analyze_json(&["--tz", "UTC", path.to_str().unwrap()]);
        let changes: Vec<_> = (r["transitions"].as_array().unwrap().iter())
            .map(|t| format!("{} {}->{}", t["server"], t["from"], t["to"]))
            .collect();
        assert_eq!(
            changes,
            [
                "\"srv1\" \"UP\"->\"DOWN\"",
                "\"srv1\" \"DOWN\"->\"UP\"",
                "\"srv1\" \"UP\"->\"DOWN\"",
                "\"srv2\" \"UP\"->\"DOWN\""
            ],
            "{name}"
        );
        let srv1 = (r["servers"].as_array().unwrap().iter())
            .find(|s| s["server"] == "srv1")
            .unwrap();
        assert_eq!(srv1["state"], "DOWN", "{name}");
        assert_eq!(r["input"]["duplicates"], duplicates, "{name}");
    }
    // Stored: the history has the three, and a copy of the log read again
    // (another file, the same lines) adds none.
    let db = dir.path().join("x.db");
    let db = db.to_str().unwrap();
    let log = dir.path().join("once.log");
    let copy = dir.path().join("copy.log");
    std::fs::copy(&log, &copy).unwrap();
    let history = || {
        let out = hapwatch(&["history", "--db", db, "--format", "json"]);
        let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (h["transitions"].as_array().unwrap().iter())
            .map(|t| format!("{} {}->{}", t["server"], t["from"], t["to"]))
            .collect::<Vec<_>>()
    };
    for file in [&log, &copy] {
        let out = hapwatch(&["analyze", "--tz", "UTC", "--db", db, file.to_str().unwrap()]);
        assert!(out.status.success());
        assert_eq!(history().len(), 4, "{:?}", history());
    }
    // The timeline read from the file: srv1 is still down at its end.
    let out = hapwatch(&[
        "timeline",
        "--tz",
        "UTC",
        "--format",
        "json",
        log.to_str().unwrap(),
    ]);
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let open: Vec<_> = (t["summary"]["outages"].as_array().unwrap().iter())
        .filter(|o| o["up_at"].is_null())
        .map(|o| o["server"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        open,
        ["lb1/be_app/srv1", "lb1/be_app/srv2"],
        "{}",
        t["summary"]
    );
}

/// `hapwatch analyze /var/log/haproxy.log*`: the shell gives logrotate's
/// rotations in name order, the current file first (`haproxy.log`,
/// `haproxy.log.1`, `haproxy.log.2.gz`; with dateext `haproxy.log`,
/// `haproxy.log-20261123.gz`, ...). In whatever order they are given,
/// they are read oldest first, as one log. Before, the newest file came
/// first and every state line of the older ones was stale: their
/// transitions were lost.
#[test]
fn a_log_s_rotations_are_read_oldest_first_in_any_order_given() {
    let text = std::fs::read_to_string(fixture("rsyslog-file.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let one = analyze_json(&[&fx("rsyslog-file.log")]);
    let parts = [&lines[..100], &lines[100..400], &lines[400..]];
    let gz = |t: &str| {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(t.as_bytes()).unwrap();
        enc.finish().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    for names in [
        ["haproxy.log.2.gz", "haproxy.log.1", "haproxy.log"],
        [
            "haproxy.log-20261123.gz",
            "haproxy.log-20261124",
            "haproxy.log",
        ],
        [
            "haproxy-2026-11-23.log.gz",
            "haproxy-2026-11-24.log",
            "haproxy.log",
        ],
    ] {
        let sub = dir.path().join(names[1]);
        std::fs::create_dir(&sub).unwrap();
        let paths: Vec<String> = names
            .iter()
            .zip(parts)
            .map(|(name, part)| {
                let path = sub.join(name);
                let t = part.join("\n") + "\n";
                let bytes = if name.ends_with(".gz") {
                    gz(&t)
                } else {
                    t.into_bytes()
                };
                std::fs::write(&path, bytes).unwrap();
                path.to_string_lossy().into_owned()
            })
            .collect();
        // The glob's order, and the reverse of it.
        let mut globbed = paths.clone();
        globbed.sort();
        for order in [globbed.clone(), globbed.into_iter().rev().collect()] {
            let args: Vec<&str> = order.iter().map(String::as_str).collect();
            let r = analyze_json(&args);
            assert_eq!(r["transitions"], one["transitions"], "{order:?}");
            assert_eq!(
                r["input"]["requests"], one["input"]["requests"],
                "{order:?}"
            );
        }
    }
}

#[test]
fn bad_lines_are_counted_and_good_lines_around_them_kept() {
    let good = "<134>1 2026-11-24T16:21:15.231Z - haproxy 1 - - 127.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s1 0/0/0/5/5 200 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n";
    let mut data = Vec::new();
    data.extend_from_slice(good.as_bytes());
    data.extend_from_slice(b"\xff\xfe garbage \x00\x01 not utf8\n");
    data.extend(std::iter::repeat_n(b'A', 70_000));
    data.push(b'\n');
    data.extend_from_slice(good.as_bytes());
    data.extend_from_slice(b"<134>1 2026-11-24T16:21:15Z - haproxy 1 - - 127.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s1 0/0\n");
    data.extend_from_slice(good.as_bytes());
    // A server name that is not UTF-8: one server, however many lines.
    for _ in 0..3 {
        let line = good.as_bytes().replace_bytes(b"be/s1", b"be/s\xff");
        data.extend_from_slice(&line);
    }
    let out = hapwatch_stdin(
        &["analyze", "--format", "json", "--show-unparsed", "5", "-"],
        &data,
    );
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["requests"], 6);
    assert_eq!(r["input"]["oversized"], 1);
    assert_eq!(r["input"]["unparsed"], 2);
    assert_eq!(r["input"]["lines"], 9);
    assert_eq!(server(&r, "be", "s\u{fffd}")["requests"], 3);
    let samples = r["unparsed_samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    assert!(samples[1].as_str().unwrap().contains("fe be/s1 0/0"));
    assert_eq!(server(&r, "be", "s1")["requests"], 3);
}

/// rsyslog's `message repeated N times: [ MSG]` (RepeatedMsgReduction):
/// a request counts N times (and N times under a selection), a health
/// message once, a summary rsyslog cut (800 bytes) or a count no rsyslog
/// writes is one line not understood.
#[test]
fn rsyslog_repeat_summaries_count_each_repetition() {
    let req = "127.0.0.1:1 [24/Nov/2026:16:21:15.230] fe be/s1 0/0/0/5/5 503 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"";
    let down = "Server be/s2 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    let head = "2026-11-24T16:21:15+00:00 lb1 haproxy[8]:";
    let text = [
        format!("{head} {req}"),
        format!("{head} message repeated 4 times: [ {req}]"),
        format!("{head} {down}"),
        format!("{head} message repeated 2 times: [ {down}]"),
        format!("{head} message repeated 3 times: [ {}]", &req[..60]),
        format!("{head} message repeated 99999999 times: [ {req}]"),
        format!("{head} last message repeated 3 times"),
    ]
    .join("\n");
    let analyze_stdin_json = |args: &[&str], input: &[u8]| -> serde_json::Value {
        let out = hapwatch_stdin(args, input);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let r = analyze_stdin_json(&["analyze", "--format", "json", "-"], text.as_bytes());
    assert_eq!(r["input"]["lines"], 7, "{}", r["input"]);
    assert_eq!(r["input"]["requests"], 5, "{}", r["input"]);
    assert_eq!(server(&r, "be", "s1")["requests"], 5);
    assert_eq!(r["input"]["health_events"], 2, "{}", r["input"]);
    assert_eq!(transitions(&r), ["be/s2 UP->DOWN"]);
    assert_eq!(r["input"]["unparsed"], 3, "{}", r["input"]);
    // A selection sees every repetition.
    let r = analyze_stdin_json(
        &["analyze", "--errors", "--format", "json", "-"],
        text.as_bytes(),
    );
    assert_eq!(server(&r, "be", "s1")["requests"], 5);
}

#[test]
fn filters_select_time_backend_server_host() {
    let f = fx("rsyslog-file.log");
    let r = analyze_json(&["--backend", "be_tcp", &f]);
    assert!(r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["backend"] == "be_tcp"));
    assert_eq!(transitions(&r).len(), 4);
    let r = analyze_json(&["--server", "srv*", &f]);
    assert_eq!(r["servers"].as_array().unwrap().len(), 3);
    let r = analyze_json(&["--host", "other-lb", &f]);
    assert!(r["servers"].as_array().unwrap().is_empty());
    // Only the be_tcp outage: 18:34:50 .. 18:34:57.
    let r = analyze_json(&[
        "--since",
        "2026-11-24T18:34:50Z",
        "--until",
        "24/Nov/2026:18:34:57",
        &f,
    ]);
    assert_eq!(
        transitions(&r),
        [
            "be_tcp/t1 UP->DOWN",
            "be_tcp/t2 UP->DOWN",
            "be_tcp/t1 DOWN->UP",
            "be_tcp/t2 DOWN->UP"
        ]
    );
    assert_eq!(r["window"]["start"], "2026-11-24T18:34:50.000Z");
    // srv1 was already back from maintenance: its state carries into the window.
    assert_eq!(server(&r, "be_app", "srv1")["state"], "UP");
    assert_eq!(server(&r, "be_app", "srv1")["maint_seconds"], 0.0);
    let reqs: u64 = r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert!(reqs > 50 && reqs < 790, "{reqs}");
}

#[test]
fn csv_has_a_header_and_a_row_per_server() {
    let out = hapwatch(&["analyze", "--format", "csv", &fx("haproxy-udp-rfc3164.log")]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("host,backend,server,backup,state,requests,1xx,2xx"));
    assert!(lines[0].contains("Tr_p99"));
    assert_eq!(lines.len(), 1 + 6);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(",be_app,srv2,false,UP,215,0,171,")),
        "{text}"
    );
}

/// A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a
/// formula (CSV injection): a client can put one in a URL, a sender of
/// syslog in a host name. Such a cell is written with a `'` in front, as
/// OWASP advises; a value HAProxy writes itself (`----`) and JSON are kept
/// as logged.
#[test]
fn csv_cells_a_spreadsheet_would_run_are_quoted() {
    let line = |host: &str, url: &str| {
        format!("<134>Nov 30 10:00:00 {host} haproxy[1]: 10.0.0.1:1 [30/Nov/2026:10:00:00.000] fe be/s1 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET {url} HTTP/1.1\"\n")
    };
    let log = [
        line("=cmd|'/C.calc'!A0", "=1+2"),
        line("lb1", "@SUM(A1)"),
        line("lb1", "-2+3"),
        line("lb1", "+4"),
        line("lb1", "/ok"),
    ]
    .concat();
    let csv = |args: &[&str]| {
        let out = hapwatch_stdin(
            &[&["analyze", "--format", "csv"], args, &["-"]].concat(),
            log.as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let servers = csv(&[]);
    assert!(
        servers
            .lines()
            .any(|l| l.starts_with("'=cmd|'/C.calc'!A0,be,s1,")),
        "{servers}"
    );
    assert!(
        servers.lines().any(|l| l.starts_with("lb1,be,s1,")),
        "{servers}"
    );
    let urls = csv(&["--by", "url"]);
    let keys: Vec<&str> = urls
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    for want in ["'=1+2", "'@SUM(A1)", "'-2+3", "'+4", "/ok"] {
        assert!(keys.contains(&want), "{want}: {urls}");
    }
    let terms = csv(&["--by", "termination"]);
    assert!(terms.lines().any(|l| l.starts_with("--,5,")), "{terms}");
    let out = hapwatch_stdin(
        &["analyze", "--format", "json", "--by", "url", "-"],
        log.as_bytes(),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json["by"]["rows"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["value"] == "=1+2"), "{json}");
}

#[test]
fn year_comes_from_request_lines_and_rolls_over() {
    // RFC 3164 health lines across New Year, dated by a request line from 2025.
    let log = "\
<134>Dec 31 23:59:58 haproxy[1]: 127.0.0.1:1 [31/Dec/2025:23:59:58.000] fe be/s1 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
<129>Dec 31 23:59:59 haproxy[1]: Server be/s1 is DOWN, reason: Layer4 timeout, check duration: 1001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
<133>Jan  1 00:00:09 haproxy[1]: Server be/s1 is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.
";
    let out = hapwatch_stdin(
        &["analyze", "--format", "json", "--year", "2030", "-"],
        log.as_bytes(),
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = r["transitions"].as_array().unwrap();
    assert_eq!(t[0]["at"], "2025-12-31T23:59:59.000Z");
    assert_eq!(t[1]["at"], "2026-01-01T00:00:09.000Z");
    assert_eq!(server(&r, "be", "s1")["down_seconds"], 10.0);
}

#[test]
fn the_window_opens_at_the_earliest_event_even_a_health_line() {
    // A health line before the first request of the chunk: the window (and
    // the DOWN time implied for s1 before its `is UP`) starts at 10:00:00.
    let log = "\
2026-11-24T10:00:00Z lb1 haproxy[1]: Health check for server be/s2 succeeded, reason: Layer4 check passed, check duration: 0ms, status: 2/2 UP.
2026-11-24T10:00:05Z lb1 haproxy[1]: 127.0.0.1:1 [24/Nov/2026:10:00:05.000] fe be/s2 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
2026-11-24T10:00:10Z lb1 haproxy[1]: Server be/s1 is UP, reason: Layer4 check passed, check duration: 0ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.
";
    let out = hapwatch_stdin(&["analyze", "--format", "json", "-"], log.as_bytes());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["window"]["start"], "2026-11-24T10:00:00.000Z");
    assert_eq!(server(&r, "be", "s1")["down_seconds"], 10.0);
    assert_eq!(transitions(&r), ["be/s1 DOWN->UP"]);
}

/// Offline, the same rule as live: a state line older than its server's
/// newest state (past the reorder window) is counted as stale and does not
/// overturn it; the database and the report agree.
#[test]
fn a_late_state_line_does_not_overturn_a_newer_state_offline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("late.log");
    let line = |t: &str, what: &str| {
        format!("2026-11-24T19:00:{t}+00:00 lb1 haproxy[1]: Server be_app/srv1 is {what}\n")
    };
    let down = "DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    let up = "UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";
    std::fs::write(&log, line("00", down) + &line("20", up) + &line("10", down)).unwrap();
    let db = dir.path().join("late.db");
    let r = analyze_json(&[
        "--reorder-window",
        "0s",
        "--alerts",
        "--db",
        db.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert_eq!(r["input"]["stale"], 1, "{}", r["input"]);
    assert_eq!(
        transitions(&r),
        ["be_app/srv1 UP->DOWN", "be_app/srv1 DOWN->UP"]
    );
    let firing = r["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "firing")
        .count();
    let resolved = r["alerts"].as_array().unwrap().len() - firing;
    assert_eq!((firing, resolved), (1, 1), "{}", r["alerts"]);
    let s = hapwatch(&["status", "--db", db.to_str().unwrap(), "--format", "json"]);
    let s: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(server(&s, "be_app", "srv1")["state"], "UP", "{s}");
}

/// A reader that stops early (`| head -c 1`) ends the output quietly:
/// exit 0, nothing on stderr (`patterns` panicked with exit 101).
#[test]
fn a_closed_pipe_ends_quietly() {
    let file = fixture("rsyslog-file.log");
    for args in [vec!["patterns"], vec!["analyze", file.to_str().unwrap()]] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "'{}' {} | head -c 1 > /dev/null; exit ${{PIPESTATUS[0]}}",
                env!("CARGO_BIN_EXE_hapwatch"),
                args.join(" ")
            ))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {said}");
        assert!(said.is_empty(), "{args:?}: {said}");
    }
}

/// `--color always` colours a piped table, `--color never` and the default
/// (not a terminal) do not, and NO_COLOR does not override `always`.
#[test]
fn color_is_chosen_by_flag_then_no_color_then_the_terminal() {
    let file = fixture("rsyslog-file.log");
    let file = file.to_str().unwrap();
    let escapes = |args: &[&str], no_color: bool| -> bool {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hapwatch"));
        c.args(args);
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        let out = c.output().unwrap();
        assert!(out.status.success());
        out.stdout.windows(2).any(|w| w == b"\x1b[")
    };
    assert!(escapes(&["analyze", "--color", "always", file], false));
    assert!(escapes(&["analyze", file, "--color", "always"], true));
    assert!(!escapes(&["analyze", "--color", "never", file], false));
    assert!(!escapes(&["analyze", file], false));
    assert!(!escapes(&["analyze", "--color", "auto", file], true));
    let bad = hapwatch(&["analyze", "--color", "rainbow", file]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `status --skewed`'s rows, as JSON.
fn skewed_rows(db: &std::path::Path) -> Vec<serde_json::Value> {
    let out = hapwatch(&[
        "status",
        "--skewed",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["skewed"].as_array().unwrap().clone()
}

/// Offline, the same trusted time as live: a line dated more than
/// `--max-skew` after its file was last written is quarantined (counted,
/// listed by `status --skewed`, not applied), and an RFC 3164 line takes
/// its year from its own host, not from another host's request.
#[test]
fn a_line_dated_after_its_file_was_written_is_quarantined_offline() {
    let (dir, log) = log_file(
        "\
2026-11-24T10:00:00Z lb1 haproxy[1]: Server be/s1 is DOWN, reason: Layer4 timeout, check duration: 1001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
2099-11-24T10:00:09Z lb1 haproxy[1]: Server be/s1 is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.
2099-11-24T10:00:09Z lb1 haproxy[1]: 127.0.0.1:1 [24/Nov/2099:10:00:09.000] fe be/s1 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
<134>Nov 24 10:00:10 evil haproxy[9]: 10.0.0.9:4000 [24/Nov/2020:10:00:10.000] fe be/s9 0/0/0/1/1 200 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
<129>Nov 24 10:00:11 lb2 haproxy[1]: Server be/s2 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
",
    );
    let db = dir.path().join("x.db");
    let r = analyze_json(&["--db", db.to_str().unwrap(), log.to_str().unwrap()]);
    assert_eq!(r["input"]["skewed"], 2, "{}", r["input"]);
    assert_eq!(server(&r, "be", "s1")["state"], "DOWN");
    let t = r["transitions"].as_array().unwrap();
    let s2 = t.iter().find(|t| t["server"] == "s2").unwrap();
    let year = std::fs::metadata(&log)
        .unwrap()
        .modified()
        .map(chrono::DateTime::<chrono::Utc>::from)
        .map(|d| chrono::Datelike::year(&d))
        .unwrap();
    let at = s2["at"].as_str().unwrap();
    assert!(
        at.starts_with(&format!("{year}-11-24")) || at.starts_with(&format!("{}-11-24", year - 1)),
        "lb2's year from the file's time, not from evil's 2020: {at}"
    );
    let rows = skewed_rows(&db);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r["event_time"].as_str().unwrap().starts_with("2099")));
    let table = hapwatch(&["status", "--skewed", "--db", db.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("is UP"));
    // Told to, hapwatch reads dates as they are.
    let r = analyze_json(&["--max-skew", "36500d", log.to_str().unwrap()]);
    assert_eq!(r["input"]["skewed"], 0);
    assert_eq!(server(&r, "be", "s1")["state"], "UP");
}

/// A load balancer that booted without a clock (no RTC, NTP not yet
/// synced) logs from 1970-01-01; a corrupted date can read year 0000.
/// Neither may set the report's window, nor time a server's state across
/// half a century: quarantined like a date in the future.
#[test]
fn a_line_dated_before_haproxy_existed_is_quarantined() {
    let (dir, log) = log_file(
        "\
1970-01-01T00:00:07Z lb1 haproxy[1]: Server be/s1 is DOWN, reason: Layer4 timeout, check duration: 1001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
<134>Jan  1 00:00:08 lb1 haproxy[1]: 127.0.0.1:1 [01/Jan/1970:00:00:08.000] fe be/s1 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
<134>Nov 24 10:00:10 lb1 haproxy[1]: 127.0.0.1:2 [24/Nov/0000:10:00:10.000] fe be/s1 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
2026-11-24T10:00:11Z lb1 haproxy[1]: 127.0.0.1:3 [24/Nov/2026:10:00:11.000] fe be/s1 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
2026-11-24T10:00:12Z lb1 haproxy[1]: Server be/s1 is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.
",
    );
    let db = dir.path().join("x.db");
    let r = analyze_json(&["--db", db.to_str().unwrap(), log.to_str().unwrap()]);
    assert_eq!(r["input"]["skewed"], 3, "{}", r["input"]);
    assert_eq!(
        r["window"]["start"], "2026-11-24T10:00:11.000Z",
        "{}",
        r["window"]
    );
    let s1 = server(&r, "be", "s1");
    assert_eq!(s1["requests"], 1, "{s1}");
    assert_eq!(s1["state"], "UP", "{s1}");
    // "is UP" says it was down before: since the log's first line was
    // written (the request accepted at 10:00:11 and answered in 1 ms), not
    // since 1970.
    assert_eq!(s1["down_seconds"], 0.999, "{s1}");
    assert_eq!(skewed_rows(&db).len(), 3);
    let table = hapwatch(&["analyze", log.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("before 2000"), "{table}");
}

/// HAProxy keeps a stream's total time as an `unsigned long` of
/// milliseconds (`logs.t_close`): a TCP tunnel or a WebSocket open for
/// more than 24.8 days logs a `Tt` or `Ta` past 2^31. Such a timer is its
/// value, not a negative one dropped as "never completed", nor one wrapped
/// into a few milliseconds; and a status that does not fit is no status,
/// nor a timer longer than any process runs a timer.
#[test]
fn a_session_of_weeks_keeps_its_timers() {
    let (dir, log) = log_file(
        "\
2026-11-24T10:00:00Z lb1 haproxy[1]: 10.0.0.1:5000 [24/Oct/2026:10:00:00.000] fe_tcp be_db/pg1 0/1/2600000000 120 -- 1/1/0/0/0 0/0
2026-11-24T10:00:01Z lb1 haproxy[1]: 10.0.0.1:5001 [24/Nov/2026:10:00:01.000] fe_tcp be_db/pg1 0/1/4294967396 120 -- 1/1/0/0/0 0/0
2026-11-24T10:00:02Z lb1 haproxy[1]: 10.0.0.1:5002 [24/Nov/2026:10:00:02.000] fe be/ws1 0/0/1/2/3000000000 101 100 - - ---- 1/1/0/0/0 0/0 \"GET /ws HTTP/1.1\"
2026-11-24T10:00:02Z lb1 haproxy[1]: 10.0.0.1:5003 [24/Nov/2026:10:00:02.000] fe_tcp be_db/pg1 0/1/999999999999999999 120 -- 1/1/0/0/0 0/0
2026-11-24T10:00:03Z lb1 haproxy[1]: 10.0.0.2 - - [24/Nov/2026:10:00:03 +0000] \"GET / HTTP/1.1\" 4294967496 2750 \"\" \"\" 33317 661 \"fe\" \"be\" \"ws1\" 10 0 30 69 109 \"----\" 1 1 1 1 0 0 0 \"\" \"\" \"\" \"\"
",
    );
    let db = dir.path().join("x.db");
    for extra in [vec![], vec!["--db", db.to_str().unwrap()]] {
        let mut args = extra.clone();
        args.extend(["--allow-unparsed", log.to_str().unwrap()]);
        let r = analyze_json(&args);
        let pg1 = server(&r, "be_db", "pg1");
        let tt = &pg1["timers_ms"]["Tt"];
        assert_eq!(tt["count"], 2, "{extra:?} {tt}");
        assert_eq!(tt["max"], 4_294_967_396u64, "{extra:?} {tt}");
        assert_eq!(tt["mean"], 3_447_483_698.0, "{extra:?} {tt}");
        let ws1 = server(&r, "be", "ws1");
        let ta = &ws1["timers_ms"]["Ta"];
        assert_eq!(ta["max"], 3_000_000_000u64, "{extra:?} {ta}");
        // The CLF line's status is past any integer HAProxy writes: the
        // line is not read (as a native line's would not be), not read as
        // a status of 200. Nor is a Tt of 31 million years (no process
        // runs that long; summed, such timers would overflow).
        assert_eq!(ws1["requests"], 1, "{extra:?} {ws1}");
        assert_eq!(r["input"]["unparsed"], 2, "{extra:?} {}", r["input"]);
    }
}

/// A pipe given by name (`analyze <(zcat old.log.gz)`, a FIFO, /dev/stdin)
/// cannot seek back over the bytes read to tell its compression: it is
/// read as standard input is, with the same report as the file.
#[test]
fn a_pipe_by_name_is_read_like_standard_input() {
    let log = fx("rsyslog-file.log");
    let run_with = |command: &str, inner: &str| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{} {command} --format json <({inner})",
                env!("CARGO_BIN_EXE_hapwatch")
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{inner}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let run = |inner: &str| run_with("analyze", inner);
    let file = analyze_json(&[&log]);
    assert_eq!(run(&format!("cat {log}")), file);
    assert_eq!(run(&format!("gzip -c {log}")), file);
    // timeline reads files twice (the second time for the window's finer
    // buckets), a pipe once: it tells the story as from stdin, not with
    // a second pass that found nothing (an impact of 0 requests).
    let piped = run_with("timeline", &format!("cat {log}"));
    let out = hapwatch_stdin(
        &["timeline", "--format", "json", "-"],
        &std::fs::read(&log).unwrap(),
    );
    let stdin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(piped, stdin);
    assert!(
        piped["summary"]["impact"]["requests"].as_u64().unwrap() > 600,
        "{}",
        piped["summary"]
    );
}

/// `%B` is a `long long`: twenty lines of 18 digits sum past a `u64`. The
/// total stays at the largest value, in the report and in the `--by url`
/// table, rather than wrapping into a plausible number.
#[test]
fn byte_totals_past_u64_stay_at_the_largest() {
    let line = "2026-11-24T10:00:00Z lb1 haproxy[1]: 10.0.0.1:5000 [24/Nov/2026:10:00:00.000] fe be/s1 0/0/1/2/3 200 999999999999999999 - - ---- 1/1/0/0/0 0/0 \"GET /x HTTP/1.1\"\n";
    let (dir, log) = log_file(line.repeat(20));
    let db = dir.path().join("x.db");
    for extra in [vec![], vec!["--db", db.to_str().unwrap()]] {
        let mut args = extra.clone();
        args.push(log.to_str().unwrap());
        let r = analyze_json(&args);
        let s1 = server(&r, "be", "s1");
        assert_eq!(s1["bytes"], u64::MAX, "{extra:?} {s1}");
    }
    let r = analyze_json(&["--by", "url", log.to_str().unwrap()]);
    let row = &r["by"]["rows"][0];
    assert_eq!(row["bytes"], u64::MAX, "{row}");
}

/// A tunnel's line is written when it closes and dated when it opened: a
/// session of 30 days that ends in the log's first second says HAProxy
/// ran then, not that the log holds the 30 days. A server whose first line
/// is "is UP" was down since the log began (five minutes), not for a month.
#[test]
fn a_tunnel_closing_in_the_log_does_not_open_its_health_window_weeks_before() {
    let (_dir, log) = log_file(
        "\
2026-11-24T10:00:00Z lb1 haproxy[1]: 10.0.0.1:5000 [25/Oct/2026:10:00:00.000] fe_tcp be_db/pg1 0/1/2592000000 120 -- 1/1/0/0/0 0/0
2026-11-24T10:00:01Z lb1 haproxy[1]: 10.0.0.1:5001 [24/Nov/2026:10:00:01.000] fe be/s1 0/0/1/2/3 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
2026-11-24T10:05:00Z lb1 haproxy[1]: Server be/s2 is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.
2026-11-24T10:10:00Z lb1 haproxy[1]: 10.0.0.1:5001 [24/Nov/2026:10:10:00.000] fe be/s1 0/0/1/2/3 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
",
    );
    let r = analyze_json(&["--tz", "UTC", log.to_str().unwrap()]);
    let s2 = server(&r, "be", "s2");
    assert_eq!(s2["down_seconds"], 300.0, "{s2}");
    // The report's window still counts the requests by their accept dates.
    assert_eq!(
        r["window"]["start"], "2026-10-25T10:00:00.000Z",
        "{}",
        r["window"]
    );
}

/// A line with no date (`log stdout format raw`, `docker logs` or
/// `kubectl logs` without timestamps) takes the time of the line before
/// it, and a request line is written when its request ends (accept + Ta,
/// Tt for TCP), not when it was accepted. After a database session of an
/// hour, a server's DOWN is at 11:00, not at 10:00: before, it borrowed
/// the accept date and the outage began an hour before it did.
#[test]
fn an_undated_line_takes_the_time_the_line_before_it_was_written() {
    let (_dir, log) = log_file(
        "\
10.0.0.1:40000 [07/Dec/2026:10:59:59.000] fe_db be_db/pg1 1/0/2 1234 -- 1/1/1/1/0 0/0
10.0.0.2:40001 [07/Dec/2026:10:00:00.000] fe_db be_db/pg1 1/0/3600000 1234 -- 1/1/1/1/0 0/0
Server be_db/pg1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
10.0.0.3:40002 [07/Dec/2026:11:00:01.000] fe_db be_db/pg2 1/0/2 1234 -- 1/1/1/1/0 0/0
10.0.0.4:5000 [07/Dec/2026:11:00:02.000] fe be/s1 0/0/1/2/60000 101 100 - - ---- 1/1/0/0/0 0/0 \"GET /ws HTTP/1.1\"
Server be/s2 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
",
    );
    let (at, r) = timed_transitions(&log, "UTC");
    let t = |s: &str| hapwatch::time::parse_user_time(s).unwrap();
    assert_eq!(
        at,
        [
            (t("2026-12-07T11:00:00Z"), "be_db/pg1 UP->DOWN".to_string()),
            (t("2026-12-07T11:01:02Z"), "be/s2 UP->DOWN".to_string()),
        ],
        "{}",
        r["transitions"]
    );
}

/// HAProxy in a container logging `stdout` in its default format
/// (rfc3164: a date with no zone), the lines as the runtime keeps them,
/// each with its own UTC time; read on a laptop in Paris (`--tz` is the
/// local zone by default). The runtime's time says more than the zoneless
/// date inside, so the story is at the right UTC time without `--tz`:
/// before, every date was read as Paris time, an hour early.
#[test]
fn a_runtime_s_utc_time_beats_the_zoneless_date_inside() {
    let msg_get = "<134>Dec  7 10:00:00 haproxy[8]: 10.0.0.1:40000 [07/Dec/2026:10:00:00.100] fe be/s1 0/0/1/2/3 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"";
    let msg_down = "<129>Dec  7 10:00:07 haproxy[8]: Server be/s1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    let forms = [
        // `docker logs -t`
        format!("2026-12-07T10:00:00.200000000Z {msg_get}\n2026-12-07T10:00:07.500000000Z {msg_down}\n"),
        // Docker's json-file
        format!(
            "{{\"log\":{},\"stream\":\"stdout\",\"time\":\"2026-12-07T10:00:00.2Z\"}}\n\
             {{\"log\":{},\"stream\":\"stdout\",\"time\":\"2026-12-07T10:00:07.5Z\"}}\n",
            serde_json::to_string(&format!("{msg_get}\n")).unwrap(),
            serde_json::to_string(&format!("{msg_down}\n")).unwrap()
        ),
        // CRI (containerd, CRI-O), the node in UTC+9
        format!(
            "2026-12-07T19:00:00.2+09:00 stdout F {msg_get}\n2026-12-07T19:00:07.5+09:00 stdout F {msg_down}\n"
        ),
    ];
    for text in forms {
        let (_dir, log) = log_file(&text);
        let r = analyze_json(&["--tz", "Europe/Paris", log.to_str().unwrap()]);
        assert_eq!(r["window"]["start"], "2026-12-07T10:00:00.100Z", "{text}");
        assert_eq!(
            r["transitions"][0]["at"], "2026-12-07T10:00:07.500Z",
            "{text}"
        );
    }
}

/// Anyone who can write to the log or send to the receiver chooses the
/// names: a forged line's ESC, BEL and bidi override must not reach the
/// operator's terminal from any text output (shown as escapes), while JSON
/// keeps the name as logged.
#[test]
fn hostile_bytes_in_names_never_reach_the_terminal() {
    let srv = "s1\x1b]0;pwned\x07";
    let be = "be\u{202e}x";
    let (dir, log) = log_file(
        format!("\
2026-11-24T10:00:10Z lb1 haproxy[1]: 127.0.0.1:1 [24/Nov/2026:10:00:10.000] fe {be}/{srv} 0/0/0/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
2026-11-24T10:00:11Z lb1 haproxy[1]: Server {be}/{srv} is DOWN, reason: Layer4 timeout \x1b[2J, check duration: 1001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
2026-11-24T10:00:11Z lb1 haproxy[1]: backend {be} has no server available!
2026-11-24T10:00:13Z lb1 haproxy[1]: Server {be}/{srv} is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.
2099-11-24T10:00:09Z lb1 haproxy[1]: Server {be}/{srv} is DOWN, reason: \x1b[31m forged, check duration: 1ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
\x1b[5mnot a haproxy line
"),
    );
    let db = dir.path().join("x.db");
    let (l, d) = (log.to_str().unwrap(), db.to_str().unwrap());
    let r = analyze_json(&["--db", d, "--alerts", l]);
    assert_eq!(
        server(&r, be, srv)["requests"],
        1,
        "JSON keeps the names as logged"
    );
    let outputs = [
        vec!["analyze", "--alerts", "--show-unparsed", "5", l],
        vec!["status", "--db", d],
        vec!["status", "--db", d, "--fleet"],
        vec!["status", "--db", d, "--skewed"],
        vec!["history", "--db", d],
        vec!["alerts", "--db", d],
        vec!["timeline", "--db", d],
        vec!["timeline", "--db", d, "--format", "markdown"],
        vec!["timeline", "--db", d, "--list"],
    ];
    for args in outputs {
        let out = hapwatch(&args);
        assert!(
            out.status.success() || out.status.code() == Some(1),
            "{args:?}"
        );
        let text = String::from_utf8(out.stdout).unwrap();
        for hostile in ['\x1b', '\x07', '\u{202e}'] {
            assert!(
                !text.contains(hostile),
                "{args:?} printed {hostile:?}:\n{text}"
            );
        }
        assert!(
            text.contains("\\x1b") || text.contains("\\u{202e}"),
            "{args:?} shows the name escaped:\n{text}"
        );
    }
}

#[test]
fn an_input_mostly_not_understood_is_said_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // A HAProxy whose frontend has its own log-format (unique id first):
    // every request line unparsed, a health line understood.
    let custom = dir.path().join("custom.log");
    let mut text = String::new();
    for i in 0..9 {
        text.push_str(&format!(
            "<134>Nov 24 16:21:{i:02} haproxy[4061]: 7F000001:AD4C_0A00020F:0050_6743A1B2_000{i}:1 127.0.0.1:44128 [24/Nov/2026:16:21:{i:02}.230] fe_http be_app/srv1 0/0/0/1/1 200 127 \"GET / HTTP/1.1\"\n"
        ));
    }
    text.push_str("<129>Nov 24 16:21:10 haproxy[4061]: Server be_app/srv2 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n");
    std::fs::write(&custom, &text).unwrap();
    let path = custom.to_str().unwrap();
    let out = hapwatch(&["analyze", "--format", "json", path]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{path}: 9 of 10 lines not understood (90%)")),
        "{err}"
    );
    assert!(
        err.contains("7F000001:AD4C_0A00020F:0050_6743A1B2_0000:1"),
        "{err}"
    );
    assert!(
        err.contains("7F000001:AD4C_0A00020F:0050_6743A1B2_0001:1"),
        "{err}"
    );
    assert!(!err.contains("_0002:1"), "two samples, not more: {err}");
    assert!(
        err.contains("nearest known form: an HAProxy request line"),
        "{err}"
    );
    assert!(err.contains("custom `log-format`"), "{err}");
    // The report is still made: the health line is in it.
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["unparsed"], 9);
    assert_eq!(r["transitions"].as_array().unwrap().len(), 1);
    // --allow-unparsed: said all the same, exit 0.
    let out = hapwatch(&["analyze", "--allow-unparsed", path]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("9 of 10 lines"));
    // Per input: a good file beside it is not blamed, and a file half
    // understood or better is not worth a word.
    let out = hapwatch(&["analyze", path, &fx("haproxy-udp-rfc3164.log")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(!err.contains("haproxy-udp-rfc3164.log"), "{err}");
    let half = dir.path().join("half.log");
    let good = std::fs::read_to_string(fixture("haproxy-udp-rfc3164.log")).unwrap();
    let lines: Vec<&str> = good.lines().take(10).collect();
    std::fs::write(
        &half,
        format!("{}\nnot haproxy\nnot haproxy either\n", lines.join("\n")),
    )
    .unwrap();
    let out = hapwatch(&["analyze", half.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another program's syslog and journalctl's JSON are named as such.
    let other = dir.path().join("auth.log");
    std::fs::write(
        &other,
        "Nov 24 16:21:15 lb1 sshd[22]: Accepted publickey for root\n",
    )
    .unwrap();
    let err = String::from_utf8_lossy(&hapwatch(&["analyze", other.to_str().unwrap()]).stderr)
        .into_owned();
    assert!(err.contains("another program (sshd)"), "{err}");
}

/// Two pods' CRI logs given together are read side by side in time, in
/// turns: kubelet dates each part of a long line as it reads it, and a
/// turn never ends between two parts of one line (its worker joins them).
#[test]
fn two_pods_read_side_by_side_keep_each_long_line_whole() {
    let dir = tempfile::tempdir().unwrap();
    let at = |ms: u64| {
        format!(
            "2026-12-02T10:{:02}:{:02}.{:03}000000Z",
            ms / 60_000,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let request = |ms: u64, url: usize| {
        format!(
            "10.0.0.1:4000 [02/Dec/2026:10:{:02}:{:02}.{:03}] fe be_app/srv1 0/0/1/5/6 200 512 - - ---- 1/1/0/0/0 0/0 \"GET /{} HTTP/1.1\"",
            ms / 60_000,
            ms / 1000 % 60,
            ms % 1000,
            "x".repeat(url)
        )
    };
    // Pod a: a long line every 10 ms, in five parts dated 1 ms apart;
    // pod b: a short line every 4 ms.
    let (mut a, mut b) = (String::new(), String::new());
    let (mut lines_a, mut lines_b) = (0, 0);
    for ms in (0..60_000).step_by(10) {
        let line = request(ms, 400);
        let parts: Vec<&[u8]> = line.as_bytes().chunks(100).collect();
        for (k, p) in parts.iter().enumerate() {
            let tag = if k + 1 == parts.len() { 'F' } else { 'P' };
            let p = std::str::from_utf8(p).unwrap();
            a += &format!("{} stdout {tag} {p}\n", at(ms + k as u64));
        }
        lines_a += 1;
    }
    for ms in (0..60_000).step_by(4) {
        b += &format!("{} stdout F {}\n", at(ms), request(ms, 10));
        lines_b += 1;
    }
    let (pa, pb) = (dir.path().join("a.log"), dir.path().join("b.log"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    for threads in ["1", "2"] {
        let r = analyze_json(&[
            "--threads",
            threads,
            pa.to_str().unwrap(),
            pb.to_str().unwrap(),
        ]);
        assert_eq!(r["input"]["requests"], lines_a + lines_b, "{}", r["input"]);
        assert_eq!(r["input"]["unparsed"], 0, "{}", r["input"]);
    }
}

/// A container runtime cuts a long line into parts: CRI into `P` parts
/// ended by an `F` part (kubelet: at 16 KiB), Docker's json-file into
/// records whose `log` has no newline but the last's (at 16 KiB: HAProxy's
/// lines with `log ... len 65535` and a long URI). `analyze` cuts its input
/// into 2 MiB chunks for its workers. A chunk boundary between two parts of
/// one line must not split it: every line is read whole, from a mapped
/// file, a gzip stream and stdin, on one thread or two. Parts of a line
/// whose last part never came (the file ends) are counted unparsed, not
/// dropped.
#[test]
fn runtime_parts_across_chunk_boundaries_are_joined() {
    let cri = |i: usize, p: &str, last: bool| {
        let tag = if last { 'F' } else { 'P' };
        format!("2026-12-02T10:00:00.{i:09}Z stdout {tag} {p}\n")
    };
    let json_file = |i: usize, p: &str, last: bool| {
        let log = serde_json::to_string(&format!("{p}{}", if last { "\n" } else { "" })).unwrap();
        format!(
            "{{\"log\":{log},\"stream\":\"stdout\",\"time\":\"2026-12-02T10:00:00.{i:09}Z\"}}\n"
        )
    };
    // A part of line `i`, whether it is the line's last.
    type Part<'a> = &'a dyn Fn(usize, &str, bool) -> String;
    // Each form, the size of its parts, and how many lines of how long a
    // URL: ~7 MiB of CRI (100-byte parts), ~16 MiB of json-file (Docker
    // writes a part per full 16 KiB buffer), so that chunk boundaries fall
    // inside the parts of some line.
    let forms: [(&str, Part, usize, usize, usize); 2] = [
        ("cri", &cri, 100, 12_000, 480),
        ("json-file", &json_file, 16 * 1024, 400, 40_000),
    ];
    for (form, part, size, n, url) in forms {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        let line = |i: usize| {
            format!(
                "10.0.{}.{}:4000 [02/Dec/2026:10:{:02}:{:02}.000] fe be_app/srv{} 0/0/1/5/6 200 512 - - ---- 1/1/0/0/0 0/0 \"GET /{} HTTP/1.1\"",
                i % 200,
                i % 250,
                (i / 60) % 60,
                i % 60,
                i % 3,
                "x".repeat(url + i % 37)
            )
        };
        for i in 0..n {
            let line = line(i);
            let parts: Vec<&str> = line
                .as_bytes()
                .chunks(size)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            for (k, p) in parts.iter().enumerate() {
                text.push_str(&part(i, p, k + 1 == parts.len()));
            }
        }
        // A line whose last part never came: the file ends inside it.
        text.push_str(&part(1, &line(1)[..size], false));
        let path = dir.path().join("pod.log");
        std::fs::write(&path, &text).unwrap();
        let gz = dir.path().join("pod.log.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut enc, text.as_bytes()).unwrap();
        enc.finish().unwrap();
        let check = |r: &serde_json::Value, what: &str| {
            assert_eq!(r["input"]["requests"], n, "{form}, {what}: {}", r["input"]);
            assert_eq!(r["input"]["unparsed"], 1, "{form}, {what}: {}", r["input"]);
        };
        for threads in ["1", "2"] {
            for file in [&path, &gz] {
                let r = analyze_json(&["--threads", threads, file.to_str().unwrap()]);
                check(&r, &format!("{} on {threads}", file.display()));
            }
            let out = hapwatch_stdin(
                &["analyze", "--threads", threads, "--format", "json", "-"],
                text.as_bytes(),
            );
            let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            check(&r, &format!("stdin on {threads}"));
        }
    }
}

/// Runs of NUL bytes where lines should be: a file copytruncated under a
/// writer that does not append (HAProxy's stdout redirected with `>`:
/// the writer goes on at its old offset, and the file starts with a hole
/// that reads as NULs), and blocks a crash left zeroed (a line cut off,
/// NULs, then the lines written after the reboot). The line after a run
/// is read, whatever the run's length (here past both the 64 KiB line
/// limit and a 2 MiB chunk); the piece of a line a crash cut off is
/// counted unparsed; the runs are counted. Read from the file, without
/// mmap, from gzip and from stdin.
#[test]
fn a_run_of_nul_bytes_loses_no_line_around_it() {
    let text = std::fs::read(fixture("rsyslog-file.log")).unwrap();
    let lines: Vec<&[u8]> = text
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines[136].windows(12).any(|w| w == b"Health check"));
    assert!(lines[146].windows(7).any(|w| w == b"is UP. "));
    let mut damaged = Vec::new();
    let mut clean = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        match i {
            // copytruncate: a hole before a health line.
            136 => damaged.extend(std::iter::repeat_n(0u8, 5000)),
            // A hole longer than a line and than a chunk.
            146 => damaged.extend(std::iter::repeat_n(0u8, 3 << 20)),
            // A crash: line 200 cut off, zeroed blocks, then line 201.
            200 => {
                damaged.extend_from_slice(&l[..40]);
                damaged.extend(std::iter::repeat_n(0u8, 4096));
                continue;
            }
            _ => {}
        }
        damaged.extend_from_slice(l);
        damaged.push(b'\n');
        clean.extend_from_slice(l);
        clean.push(b'\n');
    }
    // A crash at the end: zeroed blocks and no newline.
    damaged.extend(std::iter::repeat_n(0u8, 8192));
    let dir = tempfile::tempdir().unwrap();
    let (damaged_path, clean_path) = (dir.path().join("damaged.log"), dir.path().join("clean.log"));
    std::fs::write(&damaged_path, &damaged).unwrap();
    std::fs::write(&clean_path, &clean).unwrap();
    let gz_path = dir.path().join("damaged.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&damaged).unwrap();
    std::fs::write(&gz_path, enc.finish().unwrap()).unwrap();

    let want = analyze_json(&[clean_path.to_str().unwrap()]);
    assert_eq!(want["input"]["lines"], 813);
    let stdin = hapwatch_stdin(&["analyze", "--format", "json", "-"], &damaged);
    assert!(stdin.status.success());
    let from_stdin: serde_json::Value = serde_json::from_slice(&stdin.stdout).unwrap();
    for (how, got) in [
        ("mmap", analyze_json(&[damaged_path.to_str().unwrap()])),
        (
            "read",
            analyze_json(&["--no-mmap", damaged_path.to_str().unwrap()]),
        ),
        ("gzip", analyze_json(&[gz_path.to_str().unwrap()])),
        ("stdin", from_stdin),
    ] {
        let (i, w) = (&got["input"], &want["input"]);
        // The cut-off piece of line 200 is one line more, not understood.
        assert_eq!(i["lines"], 814, "{how}: {i}");
        assert_eq!(i["unparsed"], 1, "{how}: {i}");
        assert_eq!(i["oversized"], 0, "{how}: {i}");
        assert_eq!(i["nul_runs"], 4, "{how}: {i}");
        for k in ["requests", "health_events", "other"] {
            assert_eq!(i[k], w[k], "{how}: {k}");
        }
        assert_eq!(got["transitions"], want["transitions"], "{how}");
        assert_eq!(got["servers"], want["servers"], "{how}");
    }
}

/// Whichever worker reads a chunk (workers take the next chunk when they
/// are free), the report is the one a single thread gives: every figure,
/// the transitions in order, the lines not understood. A log of several
/// 2 MiB chunks from two load balancers, with health events, late lines
/// and lines of no known shape spread over it, read on one to three
/// threads, with and without `--db`, twice each.
#[test]
fn the_report_is_the_same_whichever_worker_reads_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    let n = 60_000;
    for i in 0..n {
        let (min, sec, ms) = (10 + i / 2400, (i / 40) % 60, (i * 7) % 1000);
        let host = if i % 2 == 0 { "lb1" } else { "lb2" };
        let (be, srv) = (["be_api", "be_web", "be_img"][i % 3], i % 4);
        let tr = (i * 37) % 900;
        let status = [200, 200, 200, 404, 503, 200, 302][i % 7];
        text.push_str(&format!(
            "2026-12-02T11:{min:02}:{sec:02}.{ms:03}Z {host} haproxy[41]: 10.1.{}.{}:{} [02/Dec/2026:11:{min:02}:{sec:02}.{ms:03}] fe~ {be}/srv{srv} 0/0/1/{tr}/{} {status} {} - - ---- 9/9/3/1/0 0/0 \"GET /p/{} HTTP/1.1\"\n",
            i % 250,
            i % 199,
            1024 + i % 60000,
            tr + 2,
            100 + i % 5000,
            i % 97
        ));
        if i % 6_000 == 3_000 {
            let state = if (i / 6_000) % 2 == 0 { "DOWN" } else { "UP" };
            text.push_str(&format!(
                "2026-12-02T11:{min:02}:{sec:02}.{ms:03}Z {host} haproxy[41]: Server {be}/srv{srv} is {state}, reason: Layer4 check passed, check duration: 0ms. 3 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.\n"
            ));
        }
        if i % 9_999 == 17 {
            text.push_str("a line of no known shape\n");
        }
    }
    let path = dir.path().join("haproxy.log");
    std::fs::write(&path, &text).unwrap();
    assert!(text.len() > 8 << 20, "several chunks: {} bytes", text.len());
    let file = path.to_str().unwrap();
    let mut k = 0;
    let mut run = |threads: &str, db: bool| {
        k += 1;
        let db_path = dir.path().join(format!("{k}.sqlite"));
        let mut args = vec!["--threads", threads, file];
        if db {
            args.extend(["--db", db_path.to_str().unwrap()]);
        }
        analyze_json(&args)
    };
    let one = run("1", false);
    assert_eq!(one["input"]["requests"], n, "{}", one["input"]);
    assert_eq!(one["input"]["unparsed"], 6, "{}", one["input"]);
    assert_eq!(one["transitions"].as_array().unwrap().len(), 10);
    for threads in ["1", "2", "3"] {
        for db in [false, true] {
            for _ in 0..2 {
                assert_eq!(run(threads, db), one, "--threads {threads}, --db {db}");
            }
        }
    }
}

/// `<NOSRV>` is HAProxy's word for "no server": the requests that reached
/// none are a row of their own (as halog lists them), but it is not one of
/// the backend's servers and has no state; `status` counts it so too.
#[test]
fn nosrv_is_a_row_but_not_a_server() {
    let f = fx("haproxy-udp-rfc3164.log");
    let r = analyze_json(&[&f]);
    assert_eq!(server(&r, "be_tcp", "<NOSRV>")["requests"], 18);
    assert_eq!(backend(&r, "be_tcp")["servers"], 2);
    let out = hapwatch(&["analyze", "--color", "never", &f]);
    let table = String::from_utf8(out.stdout).unwrap();
    let words = |needle: &str, section: &str| -> Vec<String> {
        let from = table.find(section).unwrap();
        let line = table[from..].lines().find(|l| l.contains(needle)).unwrap();
        line.split_whitespace().map(str::to_string).collect()
    };
    // HOST BACKEND SERVER STATE ...; HOST BACKEND SERVERS ...
    assert_eq!(words("<NOSRV>", "SERVERS")[3], "-", "{table}");
    assert_eq!(words("be_tcp", "BACKENDS")[2], "2", "{table}");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let db = db.to_str().unwrap();
    assert!(hapwatch(&["analyze", "--db", db, &f]).status.success());
    let out = hapwatch(&["status", "--db", db, "--color", "never"]);
    let status = String::from_utf8(out.stdout).unwrap();
    let row = status.lines().find(|l| l.contains("<NOSRV>")).unwrap();
    assert_eq!(row.split_whitespace().nth(3), Some("-"), "{status}");
}

/// HAProxy 3.2 with `log-steps all` (fixtures/README.md): the accept,
/// request and connect steps of a transaction are no requests. They were
/// counted as requests of `fe/<NOSRV>` with status 0 or -1 (four phantom
/// requests in a log of three), and the connect step once more on the
/// server.
#[test]
fn log_steps_before_the_end_of_a_transaction_are_not_requests() {
    let f = fx("log-steps/haproxy-3.2-log-steps.log");
    let r = analyze_json(&[&f]);
    assert_eq!(r["input"]["lines"], 16);
    assert_eq!(r["input"]["log_steps"], 9, "{}", r["input"]);
    // The response step and the close of `/` and `/nope` (told apart by
    // nothing in the line), `/dead`'s close, the TCP connect step and close.
    assert_eq!(r["input"]["requests"], 7);
    let servers = r["servers"].as_array().unwrap();
    assert!(
        servers.iter().all(|s| s["server"] != "<NOSRV>"),
        "{servers:?}"
    );
    assert_eq!(server(&r, "be_dead", "d1")["requests"], 1);
    let s1 = server(&r, "be", "s1");
    assert_eq!(s1["status"]["5xx"], 0, "{s1}");
    assert_eq!(s1["errors"], 0, "{s1}");
    // No status a step had yet: only the statuses HAProxy answered.
    let by = analyze_json(&["--by", "status", &f]);
    let statuses: Vec<&str> = by["by"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["value"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["200", "404", "503"]);
    // Read up to the status alone (`--errors`), the steps are still steps.
    let errors = analyze_json(&["--errors", &f]);
    assert_eq!(errors["input"]["log_steps"], 9);
    assert_eq!(errors["input"]["requests"], 7);
    assert_eq!(server(&errors, "be_dead", "d1")["requests"], 1);
    // The table says what was left out, and why the rest may count twice.
    let out = hapwatch(&["analyze", "--color", "never", &f]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains(
            "9 lines were written before their transaction ended (HAProxy's `log-steps`)"
        ),
        "{table}"
    );
    assert!(table.contains("`log-steps close`"), "{table}");
    // Keep-alive, and clients that left before their request ended: those
    // ended (`CR--`, status 400), and are requests as without log-steps.
    let aborts = analyze_json(&[&fx("log-steps/haproxy-3.2-log-steps-aborts.log")]);
    assert_eq!(aborts["input"]["lines"], 15);
    assert_eq!(aborts["input"]["log_steps"], 7, "{}", aborts["input"]);
    assert_eq!(aborts["input"]["requests"], 8);
    let nosrv = server(&aborts, "fe", "<NOSRV>");
    assert_eq!(nosrv["requests"], 2, "{nosrv}");
    assert_eq!(nosrv["status"]["4xx"], 2, "{nosrv}");
    // `%OG` in the format names every step: the response step too.
    let cfg = fx("log-steps/haproxy-log-origin.cfg");
    let origin = analyze_json(&[
        "--haproxy-config",
        &cfg,
        &fx("log-steps/haproxy-3.2-log-origin.log"),
    ]);
    assert_eq!(origin["input"]["lines"], 9);
    assert_eq!(origin["input"]["unparsed"], 0, "{}", origin["input"]);
    assert_eq!(origin["input"]["log_steps"], 6, "{}", origin["input"]);
    assert_eq!(origin["input"]["requests"], 3);
    assert_eq!(server(&origin, "be", "s1")["requests"], 1);
    assert_eq!(server(&origin, "be", "s1")["status"]["2xx"], 1);
    // The client that left mid-request (`sess_error`) is a request.
    assert_eq!(server(&origin, "fe", "<NOSRV>")["status"]["4xx"], 1);
    // A log without steps says nothing of them.
    let plain = analyze_json(&[&fx("haproxy-udp-rfc3164.log")]);
    assert!(plain["input"].get("log_steps").is_none());
}

/// HAProxy's `log-forward` relaying its own host-less RFC 3164 lines
/// (fixtures/log-forward/): in RFC 5424 it writes the tag where the host
/// goes (`haproxy[24308]: - - - -`). Each relayed form tells the same
/// story under no host, not under a "host" named after the process, which
/// changes at every reload.
#[test]
fn haproxys_log_forward_relay_is_read_alike_in_every_format() {
    let mut stories = Vec::new();
    for form in ["relay-rfc5424.log", "relay-rfc3164.log", "relay-raw.log"] {
        let r = analyze_json(&[fixture(&format!("log-forward/{form}")).to_str().unwrap()]);
        let rows: Vec<String> = r["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}|{}/{} {}",
                    s["host"], s["backend"], s["server"], s["requests"]
                )
            })
            .collect();
        assert_eq!(
            rows,
            [r#"""|"be"/"<NOSRV>" 1"#, r#"""|"be"/"s1" 1"#],
            "{form}"
        );
        assert_eq!(transitions(&r), ["be/s1 UP->DOWN"], "{form}");
        assert_eq!(r["input"]["unparsed"], 0, "{form}");
        stories.push(r["transitions"][0]["cause"].clone());
    }
    assert!(stories.windows(2).all(|w| w[0] == w[1]), "{stories:?}");
}
