//! journald: a real journal file, made by Debian's systemd-journal-remote
//! from an export stream of the real HAProxy capture (fixtures/), read back
//! through journalctl in each of its output forms, as an operator would
//! pipe or save them. Every form with a wall-clock time tells the
//! capture's story at its times; the forms without one (`cat`,
//! `short-monotonic`) tell it in order, timed by the request lines.
//!
//! Needs journalctl and systemd-journal-remote (`.ci/run` installs them).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn journal(dir: &Path) -> std::path::PathBuf {
    journal_of(dir, None)
}

/// A journal of the capture; with `stdout`, its entries are HAProxy's
/// stdout in the format of that fixture ([`export_stream_of`]).
fn journal_of(dir: &Path, stdout: Option<&str>) -> std::path::PathBuf {
    let name = format!("remote-{}.journal", stdout.unwrap_or("syslog"));
    journal_from(dir, &name, &export_stream_of("lb1", 0, stdout))
}

/// A journal file `name` in `dir`, made by systemd-journal-remote from an
/// export stream.
fn journal_from(dir: &Path, name: &str, stream: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg("-o")
        .arg(&path)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("systemd-journal-remote: apt-get install systemd-journal-remote");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(stream).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// `journalctl --file JOURNAL -a -o FORM` (in `tz`), saved to a file.
fn journalctl(journal: &Path, form: &str, tz: &str, dir: &Path) -> std::path::PathBuf {
    let out = Command::new("journalctl")
        .env("TZ", tz)
        .arg("--file")
        .arg(journal)
        .args(["-a", "--no-pager", "-o", form])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{form}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(format!("{form}-{}.txt", tz.replace('/', "_")));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// `path` read in `tz` tells the capture's story: its requests, its
/// transitions at its times (within `slack` ms), every server under `host`.
fn tells_the_capture(
    path: &Path,
    tz: &str,
    (want, requests): (&[(i64, String)], u64),
    slack: i64,
    host: &str,
    what: &str,
) {
    let (got, r) = timed_transitions(path, tz);
    assert_eq!(r["input"]["unparsed"], 0, "{what}");
    assert_eq!(r["input"]["requests"].as_u64(), Some(requests), "{what}");
    let labels: Vec<&String> = got.iter().map(|(_, l)| l).collect();
    let want_labels: Vec<&String> = want.iter().map(|(_, l)| l).collect();
    assert_eq!(labels, want_labels, "{what}");
    for ((t, l), (wt, _)) in got.iter().zip(want) {
        assert!(
            (t - wt).abs() <= slack,
            "{what}: {l} at {t}, the capture says {wt}"
        );
    }
    for s in r["servers"].as_array().unwrap() {
        assert_eq!(s["host"], host, "{what}");
    }
}

#[test]
fn every_journalctl_form_tells_the_capture() {
    require_tools(&["journalctl", JOURNAL_REMOTE]);
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let (want, want_r) = timed_transitions(&fixture("haproxy-udp-rfc5424.log"), "UTC");
    assert_eq!(want.len(), 10);
    let requests = want_r["input"]["requests"].as_u64().unwrap();
    for (form, tz, host, slack) in [
        ("json", "UTC", "lb1", 1),
        ("json-seq", "UTC", "lb1", 1),
        ("json-sse", "UTC", "lb1", 1),
        ("json-pretty", "UTC", "lb1", 1),
        ("verbose", "UTC", "lb1", 1),
        ("verbose", "Asia/Tokyo", "lb1", 1),
        ("export", "UTC", "lb1", 1),
        ("short", "UTC", "lb1", 1_000),
        ("short-precise", "UTC", "lb1", 1),
        ("short-iso", "UTC", "lb1", 1_000),
        ("short-iso-precise", "UTC", "lb1", 1),
        ("short-full", "UTC", "lb1", 1_000),
        ("with-unit", "UTC", "lb1", 1_000),
        ("short-unix", "UTC", "lb1", 1),
        // journalctl writes local times: read in the same zone.
        ("short", "Asia/Tokyo", "lb1", 1_000),
        ("short-full", "America/New_York", "lb1", 1_000),
        // No wall-clock time: health lines take the request line's before.
        ("short-monotonic", "UTC", "lb1", 1_000),
        ("cat", "UTC", "", 1_000),
    ] {
        let path = journalctl(&j, form, tz, dir.path());
        let what = format!("{form} in {tz}");
        tells_the_capture(&path, tz, (&want, requests), slack, host, &what);
    }
    // --directory: a copied journal directory, as `--journal-dir` reads it.
    let out = Command::new("journalctl")
        .arg("--directory")
        .arg(dir.path())
        .args(["-a", "--no-pager", "-o", "json"])
        .output()
        .unwrap();
    let path = dir.path().join("dir.json");
    std::fs::write(&path, &out.stdout).unwrap();
    assert_eq!(timed_transitions(&path, "UTC").0.len(), 10);
}

/// HAProxy run by systemd, logging to stdout (`log stdout format rfc3164`
/// or `rfc5424`): each journal entry's message is a whole syslog frame
/// (`<133>Nov 24 18:34:18 haproxy[9241]: ...`, its PRI kept by journald),
/// inside journalctl's own header. The frame is read inside: the capture's
/// story at its times, the journal's host.
#[test]
fn haproxy_logging_to_stdout_through_the_journal_tells_the_capture() {
    require_tools(&["journalctl", JOURNAL_REMOTE]);
    let dir = tempfile::tempdir().unwrap();
    let (want, want_r) = timed_transitions(&fixture("haproxy-udp-rfc5424.log"), "UTC");
    assert_eq!(want.len(), 10);
    let requests = want_r["input"]["requests"].as_u64().unwrap();
    for stdout in ["haproxy-udp-rfc3164.log", "haproxy-udp-rfc5424.log"] {
        let j = journal_of(dir.path(), Some(stdout));
        for (form, slack) in [
            ("json", 1_000),
            ("short", 1_000),
            ("short-iso", 1_000),
            ("short-precise", 1_000),
            ("with-unit", 1_000),
        ] {
            let path = journalctl(&j, form, "UTC", dir.path());
            let text = std::fs::read_to_string(&path).unwrap();
            // The frame is in the message, its PRI kept.
            assert!(text.contains("<133>"), "{form}: {text:.300}");
            let what = format!("{stdout} as {form}");
            tells_the_capture(&path, "UTC", (&want, requests), slack, "lb1", &what);
        }
    }
}

/// HAProxy's `log /dev/log format rfc5424` on a systemd host: journald's
/// syslog socket takes the PRI off and, finding no RFC 3164 time and no
/// `tag:`, keeps the rest of the frame as the message, with no
/// `SYSLOG_IDENTIFIER` (journalctl's forms name it by `_COMM`, as in
/// `haproxy[9241]: 1 2026-11-24T18:34:18.689388+00:00 - haproxy 9241 - -
/// MSG`). The frame without its PRI is read inside: the capture's story at
/// HAProxy's times, under the journal's host.
#[test]
fn haproxy_rfc5424_through_journalds_syslog_socket_tells_the_capture() {
    require_tools(&["journalctl", JOURNAL_REMOTE]);
    let dir = tempfile::tempdir().unwrap();
    let (want, want_r) = timed_transitions(&fixture("haproxy-udp-rfc5424.log"), "UTC");
    assert_eq!(want.len(), 10);
    let requests = want_r["input"]["requests"].as_u64().unwrap();
    let j = journal_from(
        dir.path(),
        "dev-log.journal",
        &export_stream_dev_log_rfc5424("lb1"),
    );
    for (form, host) in [
        ("json", "lb1"),
        ("short", "lb1"),
        ("short-iso", "lb1"),
        ("short-precise", "lb1"),
        ("with-unit", "lb1"),
        ("cat", ""),
    ] {
        let path = journalctl(&j, form, "UTC", dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(" - haproxy 9241 - - "), "{form}: {text:.300}");
        let what = format!("/dev/log rfc5424 as {form}");
        tells_the_capture(&path, "UTC", (&want, requests), 1, host, &what);
    }
}

#[test]
fn a_journal_entry_that_is_not_haproxys_is_counted_unparsed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.json");
    let haproxy = "{\"__REALTIME_TIMESTAMP\":\"1795537394123456\",\"_HOSTNAME\":\"lb1\",\"SYSLOG_IDENTIFIER\":\"haproxy\",\"MESSAGE\":\"Server be_app/srv2 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\"}";
    let sshd = "{\"__REALTIME_TIMESTAMP\":\"1795537395123456\",\"_HOSTNAME\":\"lb1\",\"SYSLOG_IDENTIFIER\":\"sshd\",\"MESSAGE\":\"Accepted publickey for root\"}";
    // MESSAGE as bytes (not UTF-8), and null (an entry without one).
    let up = "Server be_app/srv2 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";
    let array: Vec<String> = up.bytes().map(|b| b.to_string()).collect();
    let bytes = format!(
        "{{\"__REALTIME_TIMESTAMP\":\"1795537396123456\",\"_HOSTNAME\":\"lb1\",\"MESSAGE\":[{}]}}",
        array.join(",")
    );
    let null = "{\"__REALTIME_TIMESTAMP\":\"1795537397123456\",\"MESSAGE\":null}";
    std::fs::write(&path, format!("{haproxy}\n{sshd}\n{bytes}\n{null}\n")).unwrap();
    let out = hapwatch(&[
        "analyze",
        "--format",
        "json",
        "--allow-unparsed",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["lines"], 4);
    assert_eq!(r["input"]["health_events"], 2, "{}", r["input"]);
    assert_eq!(r["input"]["unparsed"], 2, "{}", r["input"]);
    let t = transitions(&r);
    assert_eq!(t, ["be_app/srv2 UP->DOWN", "be_app/srv2 DOWN->UP"]);
}

/// journald's own notice that it dropped HAProxy's messages to its rate
/// limit (`Suppressed N messages from haproxy.service`, which `journalctl
/// -u haproxy` shows among HAProxy's lines, entry fields as journald writes
/// them): in every journalctl form that names the writer, the lost count
/// is reported (JSON `rate_limited`, a warning saying which limit to lift),
/// the notice is a known line, not one of HAProxy's nor unparsed.
#[test]
fn the_journals_rate_limit_notice_is_reported_as_lost_lines() {
    require_tools(&["journalctl", JOURNAL_REMOTE]);
    let dir = tempfile::tempdir().unwrap();
    let mut stream = export_stream_of("lb1", 0, None);
    // One second after the capture's last entry.
    let text = std::fs::read_to_string(fixture("haproxy-udp-rfc5424.log")).unwrap();
    let last = text.lines().last().unwrap().split(' ').nth(1).unwrap();
    let micros = (hapwatch::time::parse_user_time(last).unwrap() + 1_000) * 1000;
    stream.extend_from_slice(
        format!(
            "__REALTIME_TIMESTAMP={micros}\n__MONOTONIC_TIMESTAMP={}\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=lb1\n\
             _PID=345\n_COMM=systemd-journal\n_SYSTEMD_UNIT=systemd-journald.service\n\
             SYSLOG_IDENTIFIER=systemd-journald\nPRIORITY=6\n\
             MESSAGE_ID=a596d6fe7bfa4994828e72309e95d61e\n\
             MESSAGE=Suppressed 4321 messages from haproxy.service\nN_DROPPED=4321\n\
             OBJECT_PID=4001\nOBJECT_SYSTEMD_UNIT=haproxy.service\n\n",
            micros - 1_700_000_000_000_000
        )
        .as_bytes(),
    );
    let j = dir.path().join("rate-limited.journal");
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg("-o")
        .arg(&j)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success());
    let plain = analyze_json(&[fixture("haproxy-udp-rfc5424.log").to_str().unwrap()]);
    for form in [
        "json",
        "export",
        "short",
        "short-iso",
        "short-precise",
        "with-unit",
    ] {
        let path = journalctl(&j, form, "UTC", dir.path());
        let out = hapwatch(&["analyze", "--format", "json", path.to_str().unwrap()]);
        assert!(out.status.success(), "{form}");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (i, want) = (&r["input"], &plain["input"]);
        assert_eq!(
            i["rate_limited"],
            serde_json::json!({"journald": {"haproxy.service": 4321}}),
            "{form}: {i}"
        );
        assert_eq!(i["unparsed"], 0, "{form}: {i}");
        assert_eq!(i["requests"], want["requests"], "{form}: {i}");
        assert_eq!(i["health_events"], want["health_events"], "{form}: {i}");
        assert_eq!(
            i["other"].as_u64(),
            want["other"].as_u64().map(|n| n + 1),
            "{form}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(
                "4321 messages of haproxy.service were dropped by the journal's rate limit"
            ) && err.contains("RateLimitBurst="),
            "{form}: {err}"
        );
    }
    // Without the notice, no such figure nor warning.
    assert!(
        plain["input"].get("rate_limited").is_none(),
        "{}",
        plain["input"]
    );
}
