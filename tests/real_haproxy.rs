//! End to end against the real daemons: runs fixtures/capture.sh (a fresh
//! HAProxy and rsyslog on 127.0.0.1 with a scripted outage, ~50 s) and
//! checks that every captured form tells the scripted story. This is what
//! keeps hapwatch honest about output it has not seen before: the daemons
//! installed on this machine, not the committed fixtures.
//!
//! Needs haproxy, rsyslogd and python3 (`.ci/run` installs them).

mod common;
use common::*;
use std::process::Command;

#[test]
fn fresh_capture_from_real_haproxy_and_rsyslog() {
    for tool in ["haproxy", "rsyslogd", "python3"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap()
            .status
            .success();
        assert!(
            found,
            "{tool} is needed: apt-get install haproxy rsyslog python3"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let script = fixture("capture.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir.path())
        // Ports apart from the committed capture's, so both can run at once.
        .env("CAPTURE_PORT_BASE", "27300")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "capture failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = [
        "be_app/srv2 UP->DOWN",
        "be_app/srv2 DOWN->UP",
        "be_app/srv1 UP->MAINT",
        "be_app/srv1 MAINT->UP",
        "be_app/srv3 UP->DRAIN",
        "be_app/srv3 DRAIN->UP",
    ];
    for form in [
        "haproxy-udp-rfc3164.log",
        "haproxy-udp-rfc5424.log",
        "rsyslog-tcp-octet.log",
        "rsyslog-tcp-forward.log",
        "rsyslog-file.log",
    ] {
        let path = dir.path().join(form);
        let r = analyze_json(&[path.to_str().unwrap()]);
        let t = transitions(&r);
        // The be_app story is strictly ordered; the two be_tcp servers may
        // be logged in either order within the same second.
        let app: Vec<&String> = t.iter().filter(|s| s.starts_with("be_app")).collect();
        assert_eq!(app, expected, "{form}");
        let mut tcp: Vec<&String> = t.iter().filter(|s| s.starts_with("be_tcp")).collect();
        tcp.sort();
        assert_eq!(
            tcp,
            [
                "be_tcp/t1 DOWN->UP",
                "be_tcp/t1 UP->DOWN",
                "be_tcp/t2 DOWN->UP",
                "be_tcp/t2 UP->DOWN"
            ],
            "{form}"
        );
        assert_eq!(r["input"]["unparsed"], 0, "{form}");
        assert!(r["input"]["requests"].as_u64().unwrap() > 500, "{form}");
        let be_tcp = r["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["backend"] == "be_tcp")
            .unwrap();
        assert_eq!(
            be_tcp["no_server_periods"].as_array().unwrap().len(),
            1,
            "{form}"
        );
        let tr = &server(&r, "be_app", "srv1")["timers_ms"]["Tr"];
        assert!(
            tr["max"].as_u64().unwrap() >= 300,
            "{form}: slow period visible in Tr: {tr}"
        );
    }
}

#[test]
fn fresh_capture_of_tls_clf_backup_tracking_agent() {
    for tool in ["haproxy", "openssl", "python3"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap()
            .status
            .success();
        assert!(
            found,
            "{tool} is needed: apt-get install haproxy openssl python3"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(fixture("capture-variants.sh"))
        .arg(dir.path())
        .env("CAPTURE_PORT_BASE", "27400")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "capture failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = analyze_json(&[dir.path().join("haproxy-variants.log").to_str().unwrap()]);
    assert_eq!(r["input"]["unparsed"], 0);
    assert!(r["input"]["requests"].as_u64().unwrap() > 400);
    // Per server, the order HAProxy logged is the scripted one.
    let t = transitions(&r);
    for server in ["be_bk/a", "be_bk/b", "be_trk/t", "be_trk/ag"] {
        let got: Vec<&String> = t
            .iter()
            .filter(|s| s.starts_with(&format!("{server} ")))
            .collect();
        let want: Vec<&str> = [
            "be_bk/b UP->DOWN",
            "be_bk/b DOWN->UP",
            "be_bk/a UP->DOWN",
            "be_trk/t UP->DOWN",
            "be_bk/a DOWN->UP",
            "be_trk/t DOWN->UP",
            "be_trk/ag UP->DRAIN",
            "be_trk/ag DRAIN->DOWN",
            "be_trk/ag DOWN->UP",
            "be_bk/b UP->MAINT",
            "be_bk/b MAINT->UP",
        ]
        .into_iter()
        .filter(|s| s.starts_with(&format!("{server} ")))
        .collect();
        assert_eq!(got, want, "{server}");
    }
    assert!(r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["host"] == "lb-test"));
}
