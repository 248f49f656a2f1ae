//! Per-server request counts and status classes equal `halog -srv`
//! (Debian's haproxy package ships /usr/sbin/halog; .ci/run installs it).

mod common;
use common::*;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};

/// `backend/server` -> [1xx, 2xx, 3xx, 4xx, 5xx, other, total]
fn halog_srv(path: &std::path::Path) -> BTreeMap<String, [u64; 7]> {
    let halog = ["/usr/sbin/halog", "/usr/bin/halog"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("halog is needed: apt-get install haproxy");
    let out = Command::new(halog)
        .arg("-srv")
        .stdin(Stdio::from(std::fs::File::open(path).unwrap()))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            (f[0].to_string(), [n(1), n(2), n(3), n(4), n(5), n(6), n(7)])
        })
        .filter(|(_, v)| v[6] > 0) // halog lists TCP servers with zero HTTP requests
        .collect()
}

fn hapwatch_srv(path: &std::path::Path) -> BTreeMap<String, [u64; 7]> {
    let r = analyze_json(&[path.to_str().unwrap()]);
    let mut m: BTreeMap<String, [u64; 7]> = BTreeMap::new();
    for s in r["servers"].as_array().unwrap() {
        // Every HTTP line has Ta (never -1), no TCP line has: skip the TCP
        // servers, whose lines halog counts as parse errors.
        if s["timers_ms"]["Ta"]["count"] == 0 {
            continue;
        }
        let st = &s["status"];
        let g = |k: &str| st[k].as_u64().unwrap();
        let e = m
            .entry(format!(
                "{}/{}",
                s["backend"].as_str().unwrap(),
                s["server"].as_str().unwrap()
            ))
            .or_default();
        // halog has no notion of the host: sum across load balancers.
        for (i, k) in ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]
            .iter()
            .enumerate()
        {
            e[i] += g(k);
        }
        e[6] += s["requests"].as_u64().unwrap();
    }
    m
}

#[test]
fn real_fixture_matches_halog() {
    // halog expects the 5-field traditional header (with a hostname).
    let text = std::fs::read_to_string(fixture("haproxy-udp-rfc3164.log")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trad.log");
    let trad: String = text
        .lines()
        .map(|l| {
            let l = l.split_once('>').unwrap().1;
            l.replacen(" haproxy[", " lb1 haproxy[", 1) + "\n"
        })
        .collect();
    std::fs::write(&path, trad).unwrap();
    let h = halog_srv(&path);
    assert!(h.contains_key("be_app/srv1"), "{h:?}");
    assert_eq!(hapwatch_srv(&path), h);
}

#[test]
fn generated_log_matches_halog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.log");
    let out = Command::new(env!("CARGO_BIN_EXE_hapwatch-gen"))
        .args(["--lines", "60000", "--seed", "7"])
        .output()
        .unwrap();
    std::fs::write(&path, out.stdout).unwrap();
    let h = halog_srv(&path);
    assert!(h.len() >= 10, "{h:?}");
    assert_eq!(hapwatch_srv(&path), h);
}
