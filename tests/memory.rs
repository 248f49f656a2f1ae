//! Memory does not grow with the time span of a log: a week of a sparse
//! log (ten servers, a request each a minute) analysed with alerts and with
//! a database stays far below what holding every minute would take (on the
//! code before this test, 1.1 GB and 0.75 GB), and below what 2 MiB chunks
//! gave with minutes kept (each line a server-minute of its own, a chunk's
//! 13,500 minutes held four or five times over: 64-69 MB with alerts,
//! 77-86 MB with a database, two workers). The figures over 14 to 90 days
//! are in BENCHMARKS.md ("Memory over the time span").
//!
//! Nor with the number of servers beyond what each one's figures need: a
//! server seen a few times holds its few timer values, not six histograms
//! of 2-3 KB per worker (see `many_server_names`).
//!
//! One test in its own binary: the peak RSS read is that of this process's
//! children, and no other test may start any.

mod common;

use std::io::Write;
use std::process::Command;

/// bench/sparse_log.py's format: rsyslog file lines, ten servers of be_app,
/// one request per server and minute, one DOWN/UP pair a day.
fn sparse_log(days: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let start = 1_785_542_400_000i64; // 2026-08-01T00:00:00Z
    for minute in 0..days as i64 * 1440 {
        let t = start + minute * 60_000;
        let iso = hapwatch::time::format_rfc3339_ms(t);
        let iso = format!("{}+00:00", &iso[..19]);
        let (y, mo, d) = hapwatch::time::civil_from_days(t.div_euclid(86_400_000));
        let month = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ][mo as usize - 1];
        let accept = format!("{d:02}/{month}/{y}:{}", &iso[11..19]);
        for s in 1..=10 {
            let tr = 5 + (minute * 7 + s * 13) % 40;
            writeln!(
                out,
                "{iso} lb1 haproxy[1]: 10.0.{s}.1:1024 [{accept}.{:03}] fe be_app/srv{s} 0/0/1/{tr}/{} 200 512 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
                s * 10,
                tr + 1
            )
            .unwrap();
        }
        if minute % 1440 == 600 {
            writeln!(out, "{iso} lb1 haproxy[1]: Server be_app/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 9 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.").unwrap();
        }
        if minute % 1440 == 605 {
            writeln!(out, "{iso} lb1 haproxy[1]: Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 10 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.").unwrap();
        }
    }
    out
}

/// The largest resident set of any child waited for so far, in MB.
fn children_peak_mb() -> i64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    u.ru_maxrss / 1024
}

/// 20,000 servers of 20 backends, a request each a minute for eight
/// minutes, Tr from 3 to 302 ms.
fn many_names_log() -> Vec<u8> {
    let mut out = Vec::new();
    for m in 0..8 {
        for i in 0..20_000 {
            let tr = 3 + (i * 7 + m * 13) % 300;
            writeln!(
                out,
                "Nov 24 10:{m:02}:01 lb1 haproxy[1]: 10.0.0.1:1000 [24/Nov/2026:10:{m:02}:01.000] fe be{}/srv{} 0/0/1/{tr}/{} 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
                i / 1000,
                i % 1000,
                tr + 1
            )
            .unwrap();
        }
    }
    out
}

/// Memory with many server names, after the week's runs (whose bounds are
/// lower: they have been checked). On the code before timers held their
/// few values, 779 MB, 914 MB with `--alerts` and 791 MB with `--db`
/// (two workers each held six histograms per server, ~39 KB a server);
/// 91, 139 and 120 MB since.
fn many_server_names(dir: &std::path::Path) {
    let log = dir.join("names.log");
    std::fs::write(&log, many_names_log()).unwrap();
    let db = dir.join("names.db");
    for (extra, bound) in [
        (vec![], 200),
        (vec!["--alerts"], 250),
        (vec!["--db", db.to_str().unwrap()], 250),
    ] {
        let mut args = vec!["--threads", "2"];
        args.extend(&extra);
        args.push(log.to_str().unwrap());
        let r = common::analyze_json(&args);
        let mb = children_peak_mb();
        assert_eq!(r["input"]["requests"], 160_000);
        let servers = r["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 20_000);
        // Each server's figures are its eight requests'.
        let s = servers
            .iter()
            .find(|s| s["backend"] == "be7" && s["server"] == "srv123")
            .unwrap();
        assert_eq!(s["requests"], 8, "{s}");
        // Tr 64, 77, ..., 155: the fourth and the eighth of eight.
        let tr = &s["timers_ms"]["Tr"];
        assert_eq!(
            (&tr["p50"], &tr["p90"], &tr["max"]),
            (&103.into(), &155.into(), &155.into())
        );
        assert!(
            mb < bound,
            "analyze {extra:?} with 20,000 servers peaked at {mb} MB"
        );
    }
}

#[test]
fn a_week_of_sparse_log_and_many_names_are_analysed_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // First (the figure is the largest child so far): standard input is
    // read into buffers, and many workers each hold one queued and one
    // being parsed, a chunk's size each. 128 MiB of log: 59 / 50 MB with
    // 16 / 32 workers in 2 MiB chunks, 20 MB in chunks that shrink with
    // the workers.
    let line = b"Nov 24 10:00:00 lb1 haproxy[4001]: 10.0.1.2:54350 [24/Nov/2026:10:00:00.000] fe be_app/srv1 1/0/1/49/51 200 2366 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n";
    let big = dir.path().join("big.log");
    let copies = (128 << 20) / line.len();
    // Written a line at a time: this process stays small, and so does the
    // child it forks (whose resident set counts what it shares until exec).
    let mut w = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    for _ in 0..copies {
        w.write_all(line).unwrap();
    }
    w.into_inner().unwrap().sync_all().unwrap();
    // From the file, not `common::hapwatch_stdin`: its copy of the input
    // would be this process's, and so the forked child's.
    let out = Command::new(env!("CARGO_BIN_EXE_hapwatch"))
        .args(["analyze", "--format", "json", "--threads", "32", "-"])
        .stdin(std::fs::File::open(&big).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["requests"], copies);
    let stdin_mb = children_peak_mb();
    assert!(
        stdin_mb < 35,
        "analyze - --threads 32 peaked at {stdin_mb} MB"
    );
    let log = dir.path().join("week.log");
    std::fs::write(&log, sparse_log(7)).unwrap();
    let run = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.push(log.to_str().unwrap());
        common::analyze_json(&args)
    };
    // Two workers whatever the machine: the bounds below are two workers'
    // (more share the budget of minutes but hold more in flight, see the
    // eight- and sixteen-worker runs at the end).
    let r = run(&["--threads", "2", "--alerts"]);
    let alerts_mb = children_peak_mb();
    assert_eq!(r["input"]["requests"], 7 * 1440 * 10);
    let down: Vec<&serde_json::Value> = r["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "haproxy_backend_server_status")
        .collect();
    assert_eq!(down.len(), 14, "a DOWN and its resolution each day");
    let db = dir.path().join("week.db");
    let r = run(&["--threads", "2", "--db", db.to_str().unwrap()]);
    let db_mb = children_peak_mb();
    assert_eq!(r["input"]["requests"], 7 * 1440 * 10);
    let c = rusqlite::Connection::open(&db).unwrap();
    let (rows, requests): (i64, i64) = c
        .query_row("SELECT COUNT(*), SUM(requests) FROM rollups", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((rows, requests), (7 * 1440 * 10, 7 * 1440 * 10));
    // 34-40 MB and 51-60 MB on this project's machine (the second figure
    // is the larger of both runs: the largest child so far).
    assert!(alerts_mb < 50, "analyze --alerts peaked at {alerts_mb} MB");
    assert!(db_mb < 70, "analyze --db peaked at {db_mb} MB");
    // The same week gzipped: committed as it is read, its checkpoints in
    // its decoded text. Held to its end, it peaked at 161 MB (a month,
    // 3.2 GB); 49 MB now.
    let gz = dir.path().join("week.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&log).unwrap()).unwrap();
    enc.finish().unwrap();
    let db = dir.path().join("week-gz.db");
    let r = common::analyze_json(&[
        "--threads",
        "2",
        "--db",
        db.to_str().unwrap(),
        gz.to_str().unwrap(),
    ]);
    assert_eq!(r["input"]["requests"], 7 * 1440 * 10);
    let gz_mb = children_peak_mb();
    assert!(
        gz_mb < 70,
        "analyze --db of a gzip file peaked at {gz_mb} MB"
    );

    // Eight workers (one per core on a larger machine) share that budget
    // instead of each holding a two-worker share: 99-106 MB before, 66-73
    // MB then (the largest of the three runs). Sixteen: the queues shrink to
    // one chunk a worker, and the ordering thread holds fewer epochs behind
    // the slowest (69-77 MB before, 54-68 MB then, three runs each). With
    // the reader at most four epochs ahead of the oldest not closed, eight
    // workers beside two busy loops peak at 44-54 MB in 42 runs; before,
    // 53-81 MB in 30 and once 102 MB (an idle worker not run for a few
    // milliseconds held every epoch after its own open).
    for workers in ["8", "16"] {
        let db = dir.path().join(format!("week{workers}.db"));
        let r = run(&["--threads", workers, "--db", db.to_str().unwrap()]);
        let mb = children_peak_mb();
        assert_eq!(r["input"]["requests"], 7 * 1440 * 10);
        assert!(
            mb < 75,
            "analyze --db --threads {workers} peaked at {mb} MB"
        );
    }
    // The 128 MiB file mapped, 32 workers: its chunks, mapped from the
    // reader's populate until applied, shrink with the workers as read
    // ones do. 140 MB in 2 MiB chunks, 46 MB in 256 KiB ones.
    let r = common::analyze_json(&["--threads", "32", big.to_str().unwrap()]);
    assert_eq!(r["input"]["requests"], copies);
    let mb = children_peak_mb();
    assert!(
        mb < 90,
        "analyze --threads 32 of a mapped file peaked at {mb} MB"
    );
    std::fs::remove_file(&big).unwrap();
    many_server_names(dir.path());
}
