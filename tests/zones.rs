//! Every `log ... format` of a real HAProxy (Debian's 2.6), in three time
//! zones, one of them across a daylight-saving change: fixtures/capture-forms.sh
//! runs one HAProxy with a `log` target per format (rfc3164, rfc5424, local,
//! short, priority, timed, iso, raw), kills be_app/srv2 and brings it back.
//! Every format must tell the same story at the same UTC times (those of the
//! RFC 5424 copy, which carries its offset) once `--tz` names the zone; so
//! must HAProxy's stdout and stderr as each container runtime writes them,
//! and its stdout in each format as the journal of a systemd service keeps it.
//!
//! Needs haproxy, python3 and faketime (`.ci/run` installs them).

mod common;
use common::*;
use std::path::Path;

const FORMATS: [&str; 8] = [
    "rfc3164", "rfc5424", "local", "short", "priority", "timed", "iso", "raw",
];

/// (requests, [(UTC ms, "be/srv FROM->TO")]) of one file.
fn story(path: &Path, tz: &str) -> (u64, Vec<(i64, String)>, serde_json::Value) {
    let (at, r) = timed_transitions(path, tz);
    (r["input"]["requests"].as_u64().unwrap(), at, r)
}

/// The lines HAProxy said it dropped (capture-forms.sh asks each worker's
/// `show info` before it goes).
fn dropped_logs(dir: &Path) -> u64 {
    let log = std::fs::read_to_string(dir.join("events.log")).unwrap();
    let counts: Vec<u64> = log
        .lines()
        .filter_map(|l| l.split_once(" haproxy DroppedLogs "))
        .map(|(_, n)| n.trim().parse().expect("DroppedLogs is a number"))
        .collect();
    assert!(!counts.is_empty(), "no DroppedLogs in events.log: {log}");
    counts.iter().sum()
}

/// The time of the events.log line containing `what`.
fn event(dir: &Path, what: &str) -> i64 {
    let log = std::fs::read_to_string(dir.join("events.log")).unwrap();
    let line = log.lines().find(|l| l.contains(what)).unwrap();
    hapwatch::time::parse_user_time(line.split(' ').next().unwrap()).unwrap()
}

/// Every format against the RFC 5424 copy: the same requests, the same
/// transitions, at the same times (to the second: RFC 3164 has no
/// fraction; `short`, `priority` and `raw` health lines have no time and
/// take the one of the request line before them).
fn same_story_in_every_format(dir: &Path, tz: &str) -> Vec<(i64, String)> {
    let (want_requests, want, _) = story(&dir.join("format-rfc5424.log"), tz);
    assert!(want_requests > 50, "{want_requests}");
    let labels: Vec<&str> = want.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["be_app/srv2 UP->DOWN", "be_app/srv2 DOWN->UP"],
        "{tz}"
    );
    for f in FORMATS {
        let (requests, got, r) = story(&dir.join(format!("format-{f}.log")), tz);
        assert_eq!(r["input"]["unparsed"], 0, "{f} in {tz}");
        assert_eq!(requests, want_requests, "{f} in {tz}");
        assert_eq!(got.len(), want.len(), "{f} in {tz}: {got:?}");
        for ((t, l), (wt, wl)) in got.iter().zip(&want) {
            assert_eq!(l, wl, "{f} in {tz}");
            assert!(
                (t - wt).abs() < 1_000,
                "{f} in {tz}: {l} at {t}, RFC 5424 says {wt}"
            );
        }
    }
    want
}

/// HAProxy's stdout and stderr as each container runtime and tool writes
/// them (capture_helpers.py `runtime`, from each one's documentation): the
/// requests of the bare stream, the transitions of the RFC 5424 copy, the
/// pod, container or service as the host (never `stdout`/`stderr`). Where
/// the envelope has a time, the times are the runtime's (to the second:
/// HAProxy's line was read a little after it was written); where it has
/// none, a health line takes the time of the request line before it.
fn same_story_in_every_runtime(dir: &Path, tz: &str, want: &[(i64, String)]) {
    let (udp_requests, _, _) = story(&dir.join("format-rfc5424.log"), tz);
    // HAProxy writes its stdout without blocking and drops (and counts) a
    // line that finds the pipe full; on a busy machine the stream may lack
    // a request its UDP copies have (a CI run read 188 of 189). Each
    // runtime's file is held to the stream it wraps.
    let (want_requests, _, _) = story(&dir.join("runtime/stdout.log"), tz);
    let dropped = dropped_logs(dir);
    assert!(
        want_requests <= udp_requests && udp_requests - want_requests <= dropped,
        "stdout has {want_requests} requests, the RFC 5424 copy {udp_requests}, \
         HAProxy dropped {dropped} lines"
    );
    for (file, host, timed) in [
        ("docker-json", "", true),
        ("cri", "", true),
        ("cri-parts", "", true),
        ("docker-t", "", true),
        (
            "kubectl-prefix-timestamps",
            "haproxy-6d4cf56db6-x7k2p",
            true,
        ),
        ("kubectl-prefix", "haproxy-6d4cf56db6-x7k2p", false),
        ("compose-t", "lb-haproxy-1", true),
        ("compose", "lb-haproxy-1", false),
        ("swarm", "lb_haproxy.1", false),
        ("swarm-t", "lb_haproxy.1", true),
    ] {
        let path = dir.join("runtime").join(format!("{file}.log"));
        let slack = if timed { 1_000 } else { 2_000 };
        tells_the_story(&path, tz, (want, want_requests), slack, host);
    }
}

/// `path` read in `tz` tells the story of the RFC 5424 copy: its requests,
/// its transitions at its times (less than `slack` ms off), every server
/// under `host`.
fn tells_the_story(
    path: &Path,
    tz: &str,
    (want, want_requests): (&[(i64, String)], u64),
    slack: i64,
    host: &str,
) {
    let what = format!("{} in {tz}", path.file_name().unwrap().to_string_lossy());
    let (requests, got, r) = story(path, tz);
    assert_eq!(r["input"]["unparsed"], 0, "{what}");
    assert_eq!(requests, want_requests, "{what}");
    let labels: Vec<&String> = got.iter().map(|(_, l)| l).collect();
    let want_labels: Vec<&String> = want.iter().map(|(_, l)| l).collect();
    assert_eq!(labels, want_labels, "{what}");
    for ((t, l), (wt, _)) in got.iter().zip(want) {
        assert!(
            (t - wt).abs() < slack,
            "{what}: {l} at {t}, RFC 5424 says {wt}"
        );
    }
    for s in r["servers"].as_array().unwrap() {
        assert_eq!(s["host"], host, "{what}");
    }
}

/// HAProxy under systemd, logging to stdout in each format: each line as
/// journald keeps it (a `<0>`..`<7>` prefix taken off, `<134>` kept) and
/// as rsyslog's file (`-file`, the zone's local time) or `journalctl -o
/// short-iso` (`-iso`, with its offset) writes it, stamped when received
/// (capture_helpers.py udp-sink): the story of the RFC 5424 copy, the
/// journal's host (`lb1`) as the host, never HAProxy's `localhost`.
fn same_story_under_systemd(dir: &Path, tz: &str, want: &[(i64, String)]) {
    let (want_requests, _, _) = story(&dir.join("format-rfc5424.log"), tz);
    for f in FORMATS {
        for how in ["file", "iso"] {
            let path = dir.join(format!("journal-{f}-{how}.log"));
            tells_the_story(&path, tz, (want, want_requests), 1_500, "lb1");
        }
    }
}

#[test]
fn every_log_format_in_utc() {
    require_tools(&["haproxy", "python3"]);
    // In master-worker mode, reloaded once srv2 is back.
    let dir = capture_with(
        "capture-forms.sh",
        "27600",
        &[("CAPTURE_TZ", "UTC"), ("CAPTURE_RELOAD", "1")],
    );
    let seen = same_story_in_every_format(dir.path(), "UTC");
    same_story_in_every_runtime(dir.path(), "UTC", &seen);
    same_story_under_systemd(dir.path(), "UTC", &seen);
    // The master's own lines on stderr: a reload and two stops, each
    // known (not unparsed), here timed by the runtime.
    let r = analyze_json(&[dir.path().join("runtime/docker-json.log").to_str().unwrap()]);
    let kinds = &r["input"]["other_kinds"];
    for (kind, n) in [
        ("worker_forked", 2),
        ("loading_success", 2),
        ("reloading", 1),
        ("worker_exited", 2),
        ("master_exiting", 2),
    ] {
        assert_eq!(kinds[kind], n, "{kind}: {kinds}");
    }
    // HAProxy's bare stderr has no time at all: the DOWN and the UP are
    // there all the same, in order, with no time rather than a made-up one.
    let stderr = analyze_json(&[dir.path().join("stderr.log").to_str().unwrap()]);
    assert_eq!(stderr["input"]["unparsed"], 0, "{}", stderr["input"]);
    assert_eq!(stderr["input"]["health_events"], 2, "{}", stderr["input"]);
    assert_eq!(
        transitions(&stderr),
        ["be_app/srv2 UP->DOWN", "be_app/srv2 DOWN->UP"]
    );
    let ts = stderr["transitions"].as_array().unwrap();
    assert!(ts.iter().all(|t| t["at"].is_null()), "{ts:?}");
    assert!(ts[0]["order"].as_u64() < ts[1]["order"].as_u64(), "{ts:?}");
    assert!(
        server(&stderr, "be_app", "srv2")["down_seconds"].is_null(),
        "{stderr}"
    );
    let kill = event(dir.path(), "kill be_app/srv2");
    let down = seen[0].0;
    assert!(
        down >= kill - 1_000 && down < kill + 5_000,
        "DOWN {down}, killed {kill}"
    );
}

#[test]
fn every_log_format_from_a_host_in_tokyo() {
    require_tools(&["haproxy", "python3"]);
    let dir = capture_with("capture-forms.sh", "27700", &[("CAPTURE_TZ", "Asia/Tokyo")]);
    let seen = same_story_in_every_format(dir.path(), "Asia/Tokyo");
    same_story_in_every_runtime(dir.path(), "Asia/Tokyo", &seen);
    same_story_under_systemd(dir.path(), "Asia/Tokyo", &seen);
    // The true time: within seconds of the kill, not nine hours off.
    let kill = event(dir.path(), "kill be_app/srv2");
    let down = seen[0].0;
    assert!(
        down >= kill - 1_000 && down < kill + 5_000,
        "DOWN {down}, killed {kill}"
    );
    // Read as UTC, Tokyo's local times are nine hours after the file was
    // written: quarantined as skewed, never applied as a state to come (nor
    // moved to last year).
    let (_, wrong, r) = story(&dir.path().join("format-rfc3164.log"), "UTC");
    assert!(wrong.is_empty(), "{wrong:?}");
    assert!(
        r["input"]["skewed"].as_u64().unwrap() > 50,
        "{}",
        r["input"]
    );
    // Zoned forms need no --tz: their offset says it. Nor does a runtime's
    // time: the accept dates are put on UTC by the offset it implies.
    for f in [
        "format-timed.log",
        "runtime/docker-json.log",
        "runtime/cri.log",
    ] {
        let (_, zoned, _) = story(&dir.path().join(f), "UTC");
        assert_eq!(zoned.len(), 2, "{f}");
        assert!((zoned[0].0 - down).abs() < 1_000, "{f}");
    }
}

#[test]
fn every_log_format_across_new_yorks_autumn_fold() {
    require_tools(&["haproxy", "python3", "faketime"]);
    // HAProxy's clock starts at 01:59:52 EDT on 1 November 2026, eight
    // seconds before New York's clocks go back to 01:00 EST: srv2 goes DOWN
    // in the first 01:59, comes back UP in the second 01:00.
    let dir = capture_with(
        "capture-forms.sh",
        "27800",
        &[
            ("CAPTURE_TZ", "America/New_York"),
            ("CAPTURE_FAKETIME", "2026-11-01 01:59:52"),
            ("CAPTURE_DOWN_AT", "2"),
            ("CAPTURE_UP_AT", "14"),
        ],
    );
    let log = std::fs::read_to_string(dir.path().join("format-rfc3164.log")).unwrap();
    assert!(
        log.contains("Nov  1 01:59:5"),
        "the capture did not start before the fold"
    );
    assert!(
        log.contains("Nov  1 01:00:1"),
        "the capture did not cross the fold"
    );
    let seen = same_story_in_every_format(dir.path(), "America/New_York");
    let (down, up) = (seen[0].0, seen[1].0);
    let at = |s: &str| hapwatch::time::parse_user_time(s).unwrap();
    // DOWN at 01:59:5x EDT (05:59:5xZ), UP at 01:00:xx EST (06:00:xxZ):
    // the UP is after the DOWN, not an hour before it.
    assert!(
        down > at("2026-11-01T05:59:50Z") && down < at("2026-11-01T06:00:00Z"),
        "{down}"
    );
    assert!(
        up > at("2026-11-01T06:00:00Z") && up < at("2026-11-01T06:00:30Z"),
        "{up}"
    );
}
