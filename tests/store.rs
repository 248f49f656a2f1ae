//! The state store: `analyze --db`, `status`, `history`, and what the store
//! refuses.

mod common;
use common::*;

fn fx(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

/// A fresh database holding the analysis of one fixture.
fn analyzed_db(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let out = hapwatch(&["analyze", "--db", db.to_str().unwrap(), &fx(name)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, db)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn analyze_db_then_status_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let out = hapwatch(&["analyze", "--db", db, &fx("haproxy-udp-rfc3164.log")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(db).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let s = json(&hapwatch(&["status", "--db", db, "--format", "json"]));
    let srv2 = s["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["server"] == "srv2")
        .unwrap();
    assert_eq!(srv2["state"], "UP");
    assert_eq!(srv2["since"], "2026-11-24T18:34:29.000Z");
    assert_eq!(srv2["check"], "2/2 UP");
    assert_eq!(srv2["last_request"], "2026-11-24T18:35:00.763Z");
    let be_tcp = backend(&s, "be_tcp");
    assert_eq!(
        (be_tcp["servers_up"].as_u64(), be_tcp["servers"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(be_tcp["no_server_since"].is_null());

    let h = json(&hapwatch(&["history", "--db", db, "--format", "json"]));
    let t = h["transitions"].as_array().unwrap();
    assert_eq!(t.len(), 10);
    assert_eq!(t[0]["at"], "2026-11-24T18:34:24.000Z");
    assert_eq!(
        (t[0]["from"].as_str(), t[0]["to"].as_str()),
        (Some("UP"), Some("DOWN"))
    );
    assert_eq!(t[0]["check"]["info"], "Connection refused");
    let h = json(&hapwatch(&[
        "history",
        "--db",
        db,
        "--format",
        "json",
        "--backend",
        "be_tcp",
        "--since",
        "2026-11-24T18:34:55Z",
    ]));
    assert_eq!(h["transitions"].as_array().unwrap().len(), 2);
    // The table form names the change.
    let table = String::from_utf8(hapwatch(&["history", "--db", db]).stdout).unwrap();
    assert!(table.contains("be_app/srv2  UP -> DOWN"), "{table}");
}

#[test]
fn the_same_log_twice_stores_each_transition_once_and_state_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let log = fx("haproxy-udp-rfc5424.log");
    for _ in 0..2 {
        assert!(hapwatch(&["analyze", "--db", db, &log]).status.success());
    }
    // An older slice of the same log, under another name (so that it is read
    // again, not resumed): srv1 was in maintenance then.
    let copy = dir.path().join("copy.log");
    std::fs::copy(&log, &copy).unwrap();
    let out = hapwatch(&[
        "analyze",
        "--db",
        db,
        "--until",
        "2026-11-24T18:34:41Z",
        copy.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let h = json(&hapwatch(&["history", "--db", db, "--format", "json"]));
    assert_eq!(h["transitions"].as_array().unwrap().len(), 10);
    let s = json(&hapwatch(&[
        "status", "--db", db, "--format", "json", "--server", "srv1",
    ]));
    assert_eq!(s["servers"][0]["state"], "UP");
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let (dir, db) = analyzed_db("rsyslog-file.log");
    let dbs = db.to_str().unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "journal_mode", "DELETE").unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    for args in [
        vec!["status", "--db", dbs],
        vec!["history", "--db", dbs],
        vec!["analyze", "--db", dbs, &fx("rsyslog-file.log")],
    ] {
        let out = hapwatch(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("schema version 99") && err.contains("newer"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database was modified"
    );
    assert!(!dir.path().join("state.db-wal").exists());
}

#[test]
fn bad_database_paths_exit_2_with_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let not_db = dir.path().join("notes.txt");
    std::fs::write(&not_db, "these are not the droids\n".repeat(100)).unwrap();
    let not_db = not_db.to_str().unwrap();
    for args in [
        vec!["status", "--db", not_db],
        vec!["analyze", "--db", not_db, &fx("rsyslog-file.log")],
    ] {
        let out = hapwatch(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a hapwatch database"));
    }
    let missing = dir.path().join("nope.db");
    let out = hapwatch(&["status", "--db", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hapwatch analyze --db"));
    // A directory where the file cannot be created.
    let out = hapwatch(&[
        "analyze",
        "--db",
        "/proc/hapwatch-test.db",
        &fx("rsyslog-file.log"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/proc/hapwatch-test.db"));
}

#[test]
fn status_reads_while_another_process_writes() {
    let (_dir, db) = analyzed_db("rsyslog-file.log");
    let dbs = db.to_str().unwrap();
    let mut writer = rusqlite::Connection::open(&db).unwrap();
    let tx = writer
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    tx.execute("UPDATE servers SET state = 'DOWN' WHERE server = 't1'", [])
        .unwrap();
    // The write lock is held: readers still see the last committed state.
    let s = json(&hapwatch(&[
        "status", "--db", dbs, "--format", "json", "--server", "t1",
    ]));
    assert_eq!(s["servers"][0]["state"], "UP");
    tx.commit().unwrap();
    let s = json(&hapwatch(&[
        "status", "--db", dbs, "--format", "json", "--server", "t1",
    ]));
    assert_eq!(s["servers"][0]["state"], "DOWN");
}

fn input_of(out: &std::process::Output) -> serde_json::Value {
    json(out)["input"].clone()
}

#[test]
fn a_growing_file_resumes_where_the_last_run_stopped() {
    for mmap in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let db = db.to_str().unwrap();
        let log = dir.path().join("haproxy.log");
        std::fs::copy(fixture("rsyslog-file.log"), &log).unwrap();
        let log = log.to_str().unwrap();
        let run = || {
            let mut args = vec!["analyze", "--format", "json", "--db", db, log];
            if !mmap {
                args.push("--no-mmap");
            }
            input_of(&hapwatch(&args))
        };
        assert_eq!(run()["requests"], 790);
        // Nothing new: nothing read, nothing counted twice.
        let i = run();
        assert_eq!(
            (i["lines"].as_u64(), i["requests"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(i["resumed"][0]["offset"], 140458);
        // Two new lines and half of a third, still being written.
        let req = "2026-11-24T18:36:00+00:00 localhost haproxy[9241]: 127.0.0.1:5 [24/Nov/2026:18:36:00.000] fe_http be_app/srv1 0/0/0/1/1 200 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n";
        let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
        use std::io::Write;
        write!(f, "{req}{req}{}", &req[..60]).unwrap();
        let i = run();
        assert_eq!(
            (i["lines"].as_u64(), i["requests"].as_u64()),
            (Some(2), Some(2)),
            "mmap={mmap}"
        );
        write!(f, "{}", &req[60..]).unwrap();
        let i = run();
        assert_eq!(
            (i["lines"].as_u64(), i["requests"].as_u64()),
            (Some(1), Some(1)),
            "mmap={mmap}"
        );
    }
}

/// Two load balancers' logs growing, read side by side (mapped, and read
/// a chunk ahead with `--no-mmap`): each resumes at its own checkpoint,
/// and a last line still being written in either is left to the next run.
#[test]
fn two_growing_logs_read_side_by_side_each_resume_where_they_stopped() {
    use std::io::Write;
    for mmap in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let db = db.to_str().unwrap();
        let text = std::fs::read_to_string(fixture("rsyslog-file.log")).unwrap();
        let logs: Vec<String> = ["lb1", "lb2"]
            .iter()
            .map(|lb| {
                let log = dir.path().join(format!("{lb}.log"));
                std::fs::write(&log, text.replace(" localhost ", &format!(" {lb} "))).unwrap();
                log.to_str().unwrap().to_string()
            })
            .collect();
        let run = || {
            let mut args = vec!["analyze", "--format", "json", "--db", db];
            args.extend(logs.iter().map(|l| l.as_str()));
            if !mmap {
                args.push("--no-mmap");
            }
            input_of(&hapwatch(&args))
        };
        let lines = |i: &serde_json::Value| (i["lines"].as_u64(), i["requests"].as_u64());
        assert_eq!(run()["requests"], 2 * 790, "mmap={mmap}");
        assert_eq!(lines(&run()), (Some(0), Some(0)), "mmap={mmap}");
        let req = |lb: &str| {
            format!("2026-11-24T18:36:00+00:00 {lb} haproxy[9241]: 127.0.0.1:5 [24/Nov/2026:18:36:00.000] fe_http be_app/srv1 0/0/0/1/1 200 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n")
        };
        let mut files: Vec<_> = (logs.iter())
            .map(|l| std::fs::OpenOptions::new().append(true).open(l).unwrap())
            .collect();
        // Two new lines in lb1's, one in lb2's, and half of a third in each.
        for (f, (lb, n)) in files.iter_mut().zip([("lb1", 2), ("lb2", 1)]) {
            let r = req(lb);
            write!(f, "{}{}", r.repeat(n), &r[..60]).unwrap();
        }
        assert_eq!(lines(&run()), (Some(3), Some(3)), "mmap={mmap}");
        for (f, lb) in files.iter_mut().zip(["lb1", "lb2"]) {
            write!(f, "{}", &req(lb)[60..]).unwrap();
        }
        assert_eq!(lines(&run()), (Some(2), Some(2)), "mmap={mmap}");
        assert_eq!(lines(&run()), (Some(0), Some(0)), "mmap={mmap}");
    }
}

#[test]
fn a_rotated_or_truncated_file_is_read_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let log = dir.path().join("haproxy.log");
    std::fs::copy(fixture("rsyslog-file.log"), &log).unwrap();
    let logs = log.to_str().unwrap();
    let run = || {
        input_of(&hapwatch(&[
            "analyze", "--format", "json", "--db", db, logs,
        ]))
    };
    assert_eq!(run()["requests"], 790);
    // logrotate: the path now names a new file (another inode).
    let fresh = dir.path().join("new.log");
    std::fs::copy(fixture("haproxy-udp-rfc3164.log"), &fresh).unwrap();
    std::fs::rename(&fresh, &log).unwrap();
    assert_eq!(run()["requests"], 790);
    // copytruncate: same inode, shorter than the checkpoint.
    let text = std::fs::read(fixture("haproxy-udp-rfc3164.log")).unwrap();
    std::fs::write(&log, &text[..text.len() / 2]).unwrap();
    let i = run();
    assert!(i["resumed"].is_null(), "{i}");
    assert!(i["requests"].as_u64().unwrap() > 300);
    // Transitions stay unique whatever was read again.
    let h = json(&hapwatch(&["history", "--db", db, "--format", "json"]));
    assert_eq!(h["transitions"].as_array().unwrap().len(), 20);
}

#[test]
fn a_gzip_file_read_whole_is_skipped_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let gz = dir.path().join("haproxy.log.1.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    use std::io::Write;
    enc.write_all(&std::fs::read(fixture("rsyslog-file.log")).unwrap())
        .unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let gz = gz.to_str().unwrap();
    let run = || input_of(&hapwatch(&["analyze", "--format", "json", "--db", db, gz]));
    assert_eq!(run()["requests"], 790);
    assert_eq!(run()["lines"], 0);
}

/// `bytes` gzipped as one member.
fn gzipped(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A gzip file that grew after it was read whole (a second member appended:
/// `gzip -c more.log >> haproxy.log.gz`, what some rotation setups do) is
/// read on from where its decoded text ended; before, it was read again
/// from its start and every request counted twice.
#[test]
fn a_gzip_file_that_grew_is_read_on_where_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let text = std::fs::read(fixture("rsyslog-file.log")).unwrap();
    let cut = text[..text.len() / 2]
        .iter()
        .rposition(|&c| c == b'\n')
        .unwrap()
        + 1;
    let gz = dir.path().join("haproxy.log.gz");
    std::fs::write(&gz, gzipped(&text[..cut])).unwrap();
    let gzs = gz.to_str().unwrap();
    let run = || input_of(&hapwatch(&["analyze", "--format", "json", "--db", db, gzs]));
    let first = run()["requests"].as_u64().unwrap();
    assert!(first > 300 && first < 790, "{first}");
    let mut f = std::fs::OpenOptions::new().append(true).open(&gz).unwrap();
    std::io::Write::write_all(&mut f, &gzipped(&text[cut..])).unwrap();
    drop(f);
    let second = run();
    assert_eq!(
        second["requests"].as_u64().unwrap(),
        790 - first,
        "{second}"
    );
    let c = rusqlite::Connection::open(db).unwrap();
    let stored: i64 = c
        .query_row("SELECT SUM(requests) FROM rollups", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 790);
    assert_eq!(run()["lines"], 0);
}

/// logrotate's daily round with `analyze --db` after each (the README's
/// `analyze haproxy.log.2.gz haproxy.log.1 haproxy.log`): `haproxy.log` is
/// renamed `haproxy.log.1` (the same inode under another path) and a day
/// later compressed to `haproxy.log.2.gz` (another inode, the same text).
/// Each is found by the text it opens with and read on where it was left:
/// every request is stored once. Before, a renamed or compressed file had
/// no checkpoint under its new path and was read again from its start.
#[test]
fn logrotates_renamed_and_compressed_files_are_read_on_where_they_were_left() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let text = std::fs::read(fixture("rsyslog-file.log")).unwrap();
    // Four parts, cut after a line.
    let cut = |q: usize| {
        let at = text.len() * q / 4;
        at + text[at..].iter().position(|&c| c == b'\n').unwrap() + 1
    };
    let (a, b, c) = (cut(1), cut(2), cut(3));
    let path = |name: &str| dir.path().join(name);
    let log = path("haproxy.log");
    let run = |files: &[&str]| {
        let mut args = vec!["analyze", "--format", "json", "--db", db];
        let files: Vec<String> = files
            .iter()
            .map(|f| path(f).display().to_string())
            .collect();
        args.extend(files.iter().map(String::as_str));
        input_of(&hapwatch(&args))
    };
    let stored = || -> i64 {
        let c = rusqlite::Connection::open(db).unwrap();
        c.query_row("SELECT SUM(requests) FROM rollups", [], |r| r.get(0))
            .unwrap()
    };
    // Day 1: the first quarter.
    std::fs::write(&log, &text[..a]).unwrap();
    let day1 = run(&["haproxy.log"])["requests"].as_i64().unwrap();
    assert_eq!(stored(), day1);
    // The night: written on to the half, then renamed; a new file gets the
    // third quarter.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, &text[a..b]).unwrap();
    drop(f);
    std::fs::rename(&log, path("haproxy.log.1")).unwrap();
    std::fs::write(&log, &text[b..c]).unwrap();
    // Day 2: the rename's new lines and the new file, nothing twice.
    let day2 = run(&["haproxy.log.1", "haproxy.log"]);
    let whole = input_of(&hapwatch(&[
        "analyze",
        "--format",
        "json",
        &fx("rsyslog-file.log"),
    ]));
    let lines = |t: &[u8]| t.iter().filter(|&&c| c == b'\n').count() as u64;
    assert_eq!(day2["lines"].as_u64(), Some(lines(&text[a..c])), "{day2}");
    // The next night: `haproxy.log.1` compressed to `.2.gz` (delaycompress),
    // `haproxy.log` renamed, the last quarter in a new one.
    std::fs::write(
        path("haproxy.log.2.gz"),
        gzipped(&std::fs::read(path("haproxy.log.1")).unwrap()),
    )
    .unwrap();
    std::fs::remove_file(path("haproxy.log.1")).unwrap();
    std::fs::rename(&log, path("haproxy.log.1")).unwrap();
    std::fs::write(&log, &text[c..]).unwrap();
    let day3 = run(&["haproxy.log.2.gz", "haproxy.log.1", "haproxy.log"]);
    assert_eq!(day3["lines"].as_u64(), Some(lines(&text[c..])), "{day3}");
    assert_eq!(Some(stored()), whole["requests"].as_i64());
    assert_eq!(
        run(&["haproxy.log.2.gz", "haproxy.log.1", "haproxy.log"])["lines"],
        0
    );
}

/// A truncated gzip file (cut short by a full disk, or still being
/// compressed): its good lines are read and stored, the error said, and
/// the next run reads nothing of it again. Its checkpoint was left out on
/// an error while its lines were stored: the next run counted them all
/// twice.
#[test]
fn a_truncated_gzip_files_lines_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let whole = gzipped(&std::fs::read(fixture("rsyslog-file.log")).unwrap());
    let gz = dir.path().join("haproxy.log.1.gz");
    std::fs::write(&gz, &whole[..whole.len() * 2 / 3]).unwrap();
    let gz = gz.to_str().unwrap();
    let run = || hapwatch(&["analyze", "--format", "json", "--db", db, gz]);
    let first = run();
    assert_eq!(first.status.code(), Some(1), "a read error is said");
    assert!(String::from_utf8_lossy(&first.stderr).contains("haproxy.log.1.gz"));
    let report = |out: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["input"].clone()
    };
    let first = report(&first);
    let requests = first["requests"].as_i64().unwrap();
    assert!(requests > 200 && requests < 790, "{first}");
    // The line the file was cut in is left: it is not what HAProxy wrote.
    assert_eq!(first["unparsed"], 0, "{first}");
    let again = run();
    assert_eq!(again.status.code(), Some(1), "still truncated");
    let again = report(&again);
    assert_eq!(again["lines"], 0, "{again}");
    let c = rusqlite::Connection::open(db).unwrap();
    let stored: i64 = c
        .query_row("SELECT SUM(requests) FROM rollups", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, requests);
}

/// The same truncated file read side by side with another load
/// balancer's log (its lane read on a thread of its own): the good lines
/// of both stored once, the error said, and the next run reads neither
/// again.
#[test]
fn a_truncated_gzip_file_read_beside_another_log_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let whole = gzipped(&std::fs::read(fixture("rsyslog-file.log")).unwrap());
    let gz = dir.path().join("haproxy.log.1.gz");
    std::fs::write(&gz, &whole[..whole.len() * 2 / 3]).unwrap();
    let (gz, other) = (gz.to_str().unwrap(), fixture("rsyslog-tcp-forward.log"));
    let other = other.to_str().unwrap();
    let requests = |files: &[&str], db: &str| -> (Option<i32>, serde_json::Value) {
        let mut args = vec!["analyze", "--format", "json", "--db", db];
        args.extend(files);
        let out = hapwatch(&args);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), report["input"].clone())
    };
    let alone = |file: &str, name: &str| {
        let db = dir.path().join(name);
        requests(&[file], db.to_str().unwrap()).1["requests"]
            .as_i64()
            .unwrap()
    };
    let want = alone(gz, "gz.db") + alone(other, "other.db");
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let (code, first) = requests(&[other, gz], db);
    assert_eq!(code, Some(1), "a read error is said");
    assert_eq!(first["requests"].as_i64(), Some(want), "{first}");
    assert_eq!(first["unparsed"], 0, "{first}");
    let (code, again) = requests(&[other, gz], db);
    assert_eq!(code, Some(1), "still truncated");
    assert_eq!(again["lines"], 0, "{again}");
    let c = rusqlite::Connection::open(db).unwrap();
    let stored: i64 = c
        .query_row("SELECT SUM(requests) FROM rollups", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, want);
}

/// `journalctl -o export >> saved.export`: a saved export read through
/// its decoder is read on where its decoded text ended, as a compressed
/// file is; before, it was read whole again once it had grown.
#[test]
fn a_saved_journal_export_that_grew_is_read_on_where_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let stream = export_stream_of("lb1", 0, None);
    // Cut after an entry (a blank line ends one).
    let half = stream.len() / 2;
    let cut = half
        + stream[half..]
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap()
        + 2;
    let saved = dir.path().join("haproxy.export");
    std::fs::write(&saved, &stream[..cut]).unwrap();
    let path = saved.to_str().unwrap();
    let run = || {
        input_of(&hapwatch(&[
            "analyze", "--format", "json", "--db", db, path,
        ]))
    };
    let all = input_of(&hapwatch_stdin(
        &["analyze", "--format", "json", "-"],
        &stream,
    ));
    let first = run();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&saved)
        .unwrap();
    std::io::Write::write_all(&mut f, &stream[cut..]).unwrap();
    drop(f);
    let second = run();
    for field in ["lines", "requests", "health_events"] {
        let (a, b) = (
            first[field].as_u64().unwrap(),
            second[field].as_u64().unwrap(),
        );
        assert!(a > 0 && b > 0, "{field}: {first} {second}");
        assert_eq!(
            Some(a + b),
            all[field].as_u64(),
            "{field}: {first} {second}"
        );
    }
    assert_eq!(run()["lines"], 0);
}

/// A compressed file's last line without its newline is read: nothing
/// writes to a compressed file as it is read, so it is whole. It was held
/// back for a later run, as the last line of a plain file being written is,
/// and the file then marked read whole: lost. Standard input's too (no
/// checkpoint, no later run).
#[test]
fn a_gzip_files_last_line_without_a_newline_is_read_with_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut text = std::fs::read(fixture("rsyslog-file.log")).unwrap();
    assert_eq!(text.pop(), Some(b'\n'));
    let gz = dir.path().join("haproxy.log.1.gz");
    std::fs::write(&gz, gzipped(&text)).unwrap();
    let gz = gz.to_str().unwrap();
    let without = input_of(&hapwatch(&["analyze", "--format", "json", gz]));
    assert_eq!(without["lines"], 814);
    let db = db.to_str().unwrap();
    let with = input_of(&hapwatch(&["analyze", "--format", "json", "--db", db, gz]));
    assert_eq!(with, without);
    let stdin = hapwatch_stdin(&["analyze", "--format", "json", "--db", db, "-"], &text);
    assert_eq!(input_of(&stdin), without);
}

/// kill -9 in the middle of a gzip file: commits happened while it was
/// read (its checkpoint is a place in the decoded text), and running again
/// decodes up to there, skips it and ends exactly where an uninterrupted
/// run ends. Before, nothing was committed until the file was read whole,
/// so a month of compressed log held every minute in memory to its end
/// (3.2 GB).
#[test]
fn sigkill_in_the_middle_of_a_gzip_file_and_the_rerun_converges() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let gen = Command::new(env!("CARGO_BIN_EXE_hapwatch-gen"))
        .args(["--lines", "1500000", "--seed", "5"])
        .output()
        .unwrap();
    let gz = dir.path().join("haproxy.log.2.gz");
    std::fs::write(&gz, gzipped(&gen.stdout)).unwrap();
    let gzs = gz.to_str().unwrap();
    let crashed = dir.path().join("crashed.db");
    let crashed_s = crashed.to_str().unwrap();
    let mut child = analyze_to_kill(crashed_s, gzs);
    // Kill it once a commit inside the file is stored (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let decoded = loop {
        let read = rusqlite::Connection::open_with_flags(
            &crashed,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|ro| {
            ro.busy_timeout(std::time::Duration::from_secs(5))?;
            ro.query_row("SELECT MAX(decoded) FROM checkpoints", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
        });
        if let Ok(Some(n)) = read {
            break n;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended without a commit inside the file"
        );
        assert!(std::time::Instant::now() < deadline, "no commit mid-file");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    kill(child);
    assert!(
        decoded > 0 && (decoded as usize) < gen.stdout.len(),
        "{decoded}"
    );

    let rerun = input_of(&hapwatch(&[
        "analyze", "--format", "json", "--db", crashed_s, gzs,
    ]));
    assert!(!rerun["resumed"].as_array().unwrap().is_empty(), "{rerun}");
    let clean = dir.path().join("clean.db");
    let clean_s = clean.to_str().unwrap();
    let whole = input_of(&hapwatch(&[
        "analyze", "--format", "json", "--db", clean_s, gzs,
    ]));
    assert!(
        rerun["lines"].as_u64().unwrap() < whole["lines"].as_u64().unwrap(),
        "the rerun read the file again from its start: {rerun}"
    );
    assert_converged(&crashed, &clean, &format!("killed at {decoded}"));
}

/// kill -9 after the first commit inside a file: that commit stored the
/// health state of exactly the lines before its checkpoint. Before, it
/// stored the state of every chunk applied, a chunk or an epoch further
/// (minutes past it); read again from the checkpoint, those lines' events
/// replayed on the state they had led to, and an event of the same second
/// as the server's last change stored a transition that never was: here
/// `is DOWN` (the server already DOWN) then `is UP` in one second,
/// replayed on UP, stored UP to DOWN. The gzip test above failed this way
/// now and then (the generator's log has such seconds).
#[test]
fn a_commit_stores_the_health_state_of_the_lines_before_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("haproxy.log");
    let text = restless_log(3600);
    std::fs::write(&log, &text).unwrap();
    let logs = log.to_str().unwrap();
    let crashed = dir.path().join("crashed.db");
    let crashed_s = crashed.to_str().unwrap();
    let child = analyze_to_kill(crashed_s, logs);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // The first commit inside the file, read in one transaction.
    let (offset, newest) = loop {
        let read = rusqlite::Connection::open_with_flags(
            &crashed,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|ro| {
            ro.busy_timeout(std::time::Duration::from_secs(5))?;
            ro.query_row(
                "SELECT (SELECT MAX(offset) FROM checkpoints), (SELECT MAX(at_ms) FROM transitions)",
                [],
                |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
            )
        });
        if let Ok((Some(o), Some(t))) = read {
            if o > 0 {
                break (o as usize, t);
            }
        }
        assert!(std::time::Instant::now() < deadline, "no commit mid-file");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    kill(child);
    // The last line before the checkpoint: its second (`Nov 24 HH:MM:SS`).
    let line = text[..offset - 1].rsplit(|&b| b == b'\n').next().unwrap();
    let hms = std::str::from_utf8(&line[7..15]).unwrap();
    let secs: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let before = RESTLESS_START + ((secs[0] - 10) * 3600 + secs[1] * 60 + secs[2]) * 1000;
    assert!(
        newest <= before,
        "a transition at {newest} stored with a checkpoint after a line of {before}"
    );
    assert!(hapwatch(&["analyze", "--db", crashed_s, logs])
        .status
        .success());
    let clean = dir.path().join("clean.db");
    assert!(
        hapwatch(&["analyze", "--db", clean.to_str().unwrap(), logs])
            .status
            .success()
    );
    assert_converged(&crashed, &clean, &format!("killed at byte {offset}"));
}

/// 2026-11-24T10:00:00Z, where [`restless_log`] starts.
const RESTLESS_START: i64 = 1_795_514_400_000;

/// `seconds` of one load balancer, 100 lines a second: requests to 15
/// servers, and state lines. Each server in a minute of its own: `is DOWN`
/// at second 2s, and 30 s later `is DOWN` again (it is) and `is UP` in
/// the same second.
fn restless_log(seconds: usize) -> Vec<u8> {
    use std::io::Write;
    const DOWN: &str = "is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 14 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    const UP: &str = "is UP, reason: Layer7 check passed, code: 200, check duration: 2ms. 15 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";
    let mut out = Vec::with_capacity(seconds * 100 * 200);
    for sec in 0..seconds {
        let (h, m, s) = (10 + sec / 3600, sec / 60 % 60, sec % 60);
        // The server whose state lines fall in this second, and whether
        // they are its second pair.
        let event = (s % 2 == 0).then_some(((s % 30) / 2, s >= 30));
        for k in 0..100 {
            let i = sec * 100 + k;
            write!(out, "Nov 24 {h:02}:{m:02}:{s:02} lb1 haproxy[7]: ").unwrap();
            match (event, k) {
                (Some((srv, _)), 50) => writeln!(out, "Server be_app/srv{srv} {DOWN}"),
                (Some((srv, true)), 51) => writeln!(out, "Server be_app/srv{srv} {UP}"),
                _ => writeln!(
                    out,
                    "10.0.0.{}:{} [24/Nov/2026:{h:02}:{m:02}:{s:02}.{:03}] fe be_app/srv{} 0/0/1/{}/{} 200 512 - - ---- 9/9/3/1/0 0/0 \"GET /item/{i} HTTP/1.1\"",
                    i % 250,
                    1024 + i % 60_000,
                    k * 10,
                    i % 15,
                    5 + i % 40,
                    6 + i % 40
                ),
            }
            .unwrap();
        }
    }
    out
}

/// `analyze --db DB FILE` on one thread, committing every 20 ms: a run
/// to kill in the middle.
fn analyze_to_kill(db: &str, file: &str) -> std::process::Child {
    use std::process::{Command, Stdio};
    Command::new(env!("CARGO_BIN_EXE_hapwatch"))
        .args([
            "analyze",
            "--threads",
            "1",
            "--commit-every",
            "20ms",
            "--db",
            db,
            file,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILL, and the run had not ended before it.
fn kill(mut child: std::process::Child) {
    use std::os::unix::process::ExitStatusExt;
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the run ended before the kill: {status:?}"
    );
}

/// A database killed in the middle and run again ends as an uninterrupted
/// run's: the same transitions, states and rollups (histograms included:
/// not one request counted twice or lost). Where they part is shown.
fn assert_converged(crashed: &std::path::Path, clean: &std::path::Path, what: &str) {
    for cmd in ["history", "status"] {
        let of = |db: &std::path::Path| {
            json(&hapwatch(&[
                cmd,
                "--db",
                db.to_str().unwrap(),
                "--format",
                "json",
            ]))
            .to_string()
        };
        let (a, b) = (of(crashed), of(clean));
        if a != b {
            let at = a
                .bytes()
                .zip(b.bytes())
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            let near = |t: &str| t[at.saturating_sub(300)..(at + 300).min(t.len())].to_string();
            panic!(
                "{cmd} differs after the crash and rerun ({what}): ...{} against ...{}",
                near(&a),
                near(&b)
            );
        }
    }
    let (a, b) = (rollups(crashed), rollups(clean));
    assert!(a.len() > 30, "{} minutes", a.len());
    assert_eq!(a, b, "rollups differ after the crash and rerun ({what})");
}

#[test]
fn retain_forgets_old_transitions_by_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    assert!(hapwatch(&["analyze", "--db", db, &fx("rsyslog-file.log")])
        .status
        .success());
    // Forty days later, one more outage.
    let later = dir.path().join("later.log");
    std::fs::write(
        &later,
        "2027-01-03T10:00:00+00:00 localhost haproxy[1]: Server be_app/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n",
    )
    .unwrap();
    // Written then: a line dated after its file's time would be skewed.
    std::fs::File::options()
        .write(true)
        .open(&later)
        .unwrap()
        .set_modified(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_798_970_401), // 2027-01-03T10:00:01Z
        )
        .unwrap();
    let out = hapwatch(&[
        "analyze",
        "--db",
        db,
        "--retain",
        "30d",
        later.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = json(&hapwatch(&["history", "--db", db, "--format", "json"]));
    let t = h["transitions"].as_array().unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["at"], "2027-01-03T10:00:00.000Z");
    // The rollups of November went with them.
    let c = rusqlite::Connection::open(db).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM rollups", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    // Current states stay.
    let s = json(&hapwatch(&["status", "--db", db, "--format", "json"]));
    assert_eq!(s["servers"].as_array().unwrap().len(), 6);
    // A bad age is a usage error.
    let out = hapwatch(&[
        "analyze",
        "--db",
        db,
        "--retain",
        "30 days",
        later.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("30d"));
}

/// kill -9 in the middle of `analyze --db`: the database stays sound, what
/// was committed before is there, and running again ends exactly where an
/// uninterrupted run ends.
#[test]
fn sigkill_in_the_middle_loses_nothing_committed_and_the_rerun_converges() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    let gen = Command::new(env!("CARGO_BIN_EXE_hapwatch-gen"))
        .args(["--lines", "3000000", "--seed", "3"])
        .output()
        .unwrap();
    // The first tenth is analysed completely first: its transitions are
    // committed before the crash.
    let cut = gen.stdout[..gen.stdout.len() / 10]
        .iter()
        .rposition(|&c| c == b'\n')
        .unwrap()
        + 1;
    std::fs::write(&log, &gen.stdout[..cut]).unwrap();
    let logs = log.to_str().unwrap();
    let crashed = dir.path().join("crashed.db");
    let crashed_s = crashed.to_str().unwrap();
    assert!(hapwatch(&["analyze", "--db", crashed_s, logs])
        .status
        .success());
    let before = json(&hapwatch(&[
        "history", "--db", crashed_s, "--format", "json",
    ]));
    assert!(!before["transitions"].as_array().unwrap().is_empty());
    std::fs::write(&log, &gen.stdout).unwrap();

    let child = analyze_to_kill(crashed_s, logs);
    // Kill it once it has committed part of the new lines: its checkpoint
    // has moved past the first tenth (bounded wait).
    let ro =
        rusqlite::Connection::open_with_flags(&crashed, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    ro.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let offset: i64 = ro
            .query_row("SELECT MAX(offset) FROM checkpoints", [], |r| r.get(0))
            .unwrap();
        if offset as usize > cut {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no commit mid-run");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(ro);
    kill(child);

    let c = rusqlite::Connection::open(&crashed).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(c);
    let after = json(&hapwatch(&[
        "history", "--db", crashed_s, "--format", "json",
    ]));
    let after = after["transitions"].as_array().unwrap();
    let before = before["transitions"].as_array().unwrap();
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "committed transitions lost"
    );

    // Run again; compare with one uninterrupted run on a fresh database.
    assert!(hapwatch(&["analyze", "--db", crashed_s, logs])
        .status
        .success());
    let clean = dir.path().join("clean.db");
    let clean_s = clean.to_str().unwrap();
    std::fs::write(&log, &gen.stdout[..cut]).unwrap();
    assert!(hapwatch(&["analyze", "--db", clean_s, logs])
        .status
        .success());
    std::fs::write(&log, &gen.stdout).unwrap();
    assert!(hapwatch(&["analyze", "--db", clean_s, logs])
        .status
        .success());
    assert_converged(&crashed, &clean, "a plain file");
}

/// Every rollup row, in key order, with its histograms decoded to counts.
fn rollups(db: &std::path::Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut q = c
        .prepare(
            "SELECT host, backend, server, minute_ms, requests, status_2xx, status_5xx,
                    errors, bytes, terminations, srv_queue_max, tw, tr, tt
             FROM rollups ORDER BY host, backend, server, minute_ms",
        )
        .unwrap();
    let rows = q
        .query_map([], |r| {
            let mut s = String::new();
            for i in 0..11 {
                let v: rusqlite::types::Value = r.get(i)?;
                s.push_str(&format!("{v:?} "));
            }
            for i in 11..14 {
                let blob: Option<Vec<u8>> = r.get(i)?;
                let h = blob.map(|b| {
                    hapwatch::engine::rollup::Minute::decode_timer(&b).expect("a valid histogram")
                });
                let counts: Vec<(u64, u64)> = h
                    .iter()
                    .flat_map(|h| {
                        h.iter_recorded()
                            .map(|v| (v.value_iterated_to(), v.count_at_value()))
                    })
                    .collect();
                s.push_str(&format!("{counts:?} "));
            }
            Ok(s)
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// The per-minute rollups hold what the report counted, minute by minute.
#[test]
fn rollups_per_server_and_minute_add_up_to_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let report = analyze_json(&["--db", db.to_str().unwrap(), &fx("rsyslog-file.log")]);
    // Recording rollups changes nothing in the report.
    let plain = analyze_json(&[&fx("rsyslog-file.log")]);
    assert_eq!(plain["servers"], report["servers"]);
    assert_eq!(plain["backends"], report["backends"]);
    let c = rusqlite::Connection::open(&db).unwrap();
    for s in report["servers"].as_array().unwrap() {
        let (requests, errors, s5xx, minutes): (i64, i64, i64, i64) = c
            .query_row(
                "SELECT SUM(requests), SUM(errors), SUM(status_5xx), COUNT(*) FROM rollups
                 WHERE host = ?1 AND backend = ?2 AND server = ?3",
                rusqlite::params![
                    s["host"].as_str().unwrap(),
                    s["backend"].as_str().unwrap(),
                    s["server"].as_str().unwrap()
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(requests as u64, s["requests"].as_u64().unwrap(), "{s}");
        assert_eq!(errors as u64, s["errors"].as_u64().unwrap(), "{s}");
        assert_eq!(s5xx as u64, s["status"]["5xx"].as_u64().unwrap(), "{s}");
        assert!(minutes >= 1);
    }
    // One minute of one server, read back: its Tr histogram has the minute's
    // requests and a 95th percentile within the report's range.
    let (n, tr): (i64, Vec<u8>) = c
        .query_row(
            "SELECT requests, tr FROM rollups WHERE backend = 'be_app' AND tr IS NOT NULL
             ORDER BY requests DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let h = hapwatch::engine::rollup::Minute::decode_timer(&tr).unwrap();
    assert!(h.len() as i64 <= n && !h.is_empty());
    assert!(h.value_at_quantile(0.95) <= h.max());
}

/// The same lines twice (a second log path, a sender re-sending): the
/// transitions are those of the clean log, and the copies are counted.
#[test]
fn duplicated_health_lines_give_the_clean_story() {
    let clean = std::fs::read_to_string(fixture("rsyslog-file.log")).unwrap();
    let is_health = |l: &str| l.contains(": Server ") || l.contains(": Health check");
    let mut messy = String::new();
    for l in clean.lines() {
        messy.push_str(l);
        messy.push('\n');
        if is_health(l) {
            messy.push_str(l);
            messy.push('\n');
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messy.log");
    std::fs::write(&path, messy).unwrap();
    let a = analyze_json(&[&fx("rsyslog-file.log")]);
    let b = analyze_json(&[path.to_str().unwrap()]);
    assert!(!a["transitions"].as_array().unwrap().is_empty());
    assert_eq!(a["transitions"], b["transitions"]);
    assert_eq!(a["servers"], b["servers"]);
    let copies = clean.lines().filter(|l| is_health(l)).count() as u64;
    assert_eq!(b["input"]["duplicates"].as_u64(), Some(copies));
}

/// Health lines that overtook each other by less than the reorder window
/// (UDP, two senders) are applied in event-time order.
#[test]
fn overtaken_health_lines_are_applied_in_event_time_order() {
    let line =
        |t: &str, msg: &str| format!("<131>1 2026-11-24T10:00:{t}Z lb1 haproxy 1 - - {msg}\n");
    let check = "Health check for server be/s1 failed, reason: Layer4 timeout, check duration: 2001ms, status: 0/2 DOWN.";
    let down = "Server be/s1 is DOWN. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    let up = "Server be/s1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";
    // Arrival order: DOWN before the check line that explains it, then UP
    // (1.5 s later in event time) before that DOWN... as a UDP path can.
    let log = [
        line("11.500", up),
        line("10.300", down),
        line("10.100", check),
        line("30.000", "Server be/s1 is going DOWN for maintenance. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("udp.log");
    std::fs::write(&path, log).unwrap();
    let r = analyze_json(&[path.to_str().unwrap()]);
    let t = r["transitions"].as_array().unwrap();
    let story: Vec<(&str, &str, &str)> = t
        .iter()
        .map(|t| {
            (
                t["at"].as_str().unwrap(),
                t["from"].as_str().unwrap(),
                t["to"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        story,
        vec![
            ("2026-11-24T10:00:10.300Z", "UP", "DOWN"),
            ("2026-11-24T10:00:11.500Z", "DOWN", "UP"),
            ("2026-11-24T10:00:30.000Z", "UP", "MAINT"),
        ]
    );
    // The check line, applied first, explains the DOWN.
    assert_eq!(t[0]["check"]["reason"], "Layer4 timeout");
    assert_eq!(r["input"]["late"], 0);
    // With no window the arrival order is the story: UP first, then a DOWN
    // that arrives late.
    let raw = analyze_json(&["--reorder-window", "0s", path.to_str().unwrap()]);
    assert_ne!(raw["transitions"], r["transitions"]);
    assert_eq!(raw["input"]["late"], 2);
}

/// A server seen only through health messages, over several commits, has
/// no "last request" (not the epoch).
#[test]
fn a_server_without_requests_has_no_last_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    for (i, msg) in [
        "Server be/s1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "Server be/s1 is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
    ]
    .iter()
    .enumerate()
    {
        let log = dir.path().join(format!("{i}.log"));
        std::fs::write(&log, format!("2026-11-24T10:00:0{i}+00:00 lb1 haproxy[1]: {msg}\n")).unwrap();
        assert!(hapwatch(&["analyze", "--db", db, log.to_str().unwrap()]).status.success());
    }
    let s = json(&hapwatch(&["status", "--db", db, "--format", "json"]));
    assert_eq!(s["servers"][0]["state"], "UP");
    assert!(s["servers"][0]["last_request"].is_null(), "{s}");
}

/// A log spread over hours (a server's minutes far apart, as in months of
/// a quiet service): each backend's minute is its servers' minutes added
/// up, requests, 5xx and Tr histograms alike. The workers seal such
/// minutes as soon as a newer one comes; those minutes reached the server
/// rows but not their backend's.
#[test]
fn a_sparse_log_s_backend_minutes_add_up_its_servers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sparse.log");
    let mut text = String::new();
    // Two servers, one request each every seven minutes for ten hours,
    // a 503 now and then.
    for i in 0..86u32 {
        let (h, m) = (8 + i * 7 / 60, i * 7 % 60);
        for (s, tr) in [("srv1", 20 + i), ("srv2", 400 + 3 * i)] {
            let status = if i % 10 == 3 { 503 } else { 200 };
            text.push_str(&format!(
                "Nov 24 {h:02}:{m:02}:05 lb1 haproxy[1]: 10.0.0.1:4000 [24/Nov/2026:{h:02}:{m:02}:05.000] \
                 fe be_app/{s} 0/0/1/{tr}/{t} {status} 512 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n",
                t = tr + 1
            ));
        }
    }
    std::fs::write(&log, text).unwrap();
    let db = dir.path().join("state.db");
    let report = analyze_json(&["--db", db.to_str().unwrap(), log.to_str().unwrap()]);
    // The servers' totals (their percentiles too) are those of a run
    // without minutes, which counts every request in them directly.
    let plain = analyze_json(&[log.to_str().unwrap()]);
    assert_eq!(plain["servers"], report["servers"]);
    assert_eq!(report["servers"][0]["requests"], 86);
    let c = rusqlite::Connection::open(&db).unwrap();
    let minutes = |sql: &str| -> Vec<(i64, i64, i64, Vec<u64>)> {
        let mut q = c.prepare(sql).unwrap();
        q.query_map([], |r| {
            let tr: Vec<u8> = r.get(3)?;
            let h = hapwatch::engine::rollup::Minute::decode_timer(&tr).expect("a histogram");
            let values = h.iter_recorded().map(|v| v.value_iterated_to()).collect();
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, values))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
    };
    let servers = minutes(
        "SELECT minute_ms, SUM(requests), SUM(status_5xx), tr FROM rollups
         GROUP BY minute_ms ORDER BY minute_ms",
    );
    let backends = minutes(
        "SELECT minute_ms, requests, status_5xx, tr FROM backend_rollups
         WHERE backend = 'be_app' ORDER BY minute_ms",
    );
    assert_eq!(servers.len(), 86, "one minute every seven");
    assert_eq!(
        backends.iter().map(|b| (b.0, b.1, b.2)).collect::<Vec<_>>(),
        servers.iter().map(|s| (s.0, s.1, s.2)).collect::<Vec<_>>()
    );
    // Both servers' Tr in their backend's histogram (SUM above added the
    // counts; the histogram holds both values).
    for b in &backends {
        assert_eq!(b.3.len(), 2, "minute {}: {:?}", b.0, b.3);
    }
}
