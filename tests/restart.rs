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
    let out = hapwatch(&[
        "analyze",
        "--db",
        db.to_str().unwrap(),
        "--alerts",
        "--rules",
        rules.to_str().unwrap(),
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the database says: alert events, transitions, rollups.
fn told(db: &Path) -> (Vec<String>, serde_json::Value, Vec<(i64, i64, i64)>) {
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

#[test]
fn a_log_read_in_pieces_gives_the_alerts_of_one_reading() {
    for fixture_name in ["rsyslog-file.log", "haproxy-udp-rfc5424.log"] {
        let text = std::fs::read_to_string(fixture(fixture_name)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules.toml");
        std::fs::write(&rules, RULES).unwrap();
        let whole = dir.path().join("whole.log");
        std::fs::write(&whole, &text).unwrap();
        let one = dir.path().join("one.db");
        analyze(&one, &rules, &whole);
        let expected = told(&one);
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
