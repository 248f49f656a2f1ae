//! Per-server request counts and status classes equal `halog -srv`
//! (Debian's haproxy package ships /usr/sbin/halog; .ci/run installs it).

mod common;
use common::*;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};

/// `backend/server` -> [1xx, 2xx, 3xx, 4xx, 5xx, other, total]
/// What `halog FLAG < path` prints.
fn halog(flag: &str, path: &std::path::Path) -> String {
    let halog = ["/usr/sbin/halog", "/usr/bin/halog"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("halog is needed: apt-get install haproxy");
    let out = Command::new(halog)
        .arg(flag)
        .stdin(Stdio::from(std::fs::File::open(path).unwrap()))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn halog_srv(path: &std::path::Path) -> BTreeMap<String, [u64; 7]> {
    halog("-srv", path)
        .lines()
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

/// The real capture with the traditional 5-field header halog expects
/// (with a hostname), in `dir`.
fn traditional_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture("haproxy-udp-rfc3164.log")).unwrap();
    let path = dir.join("trad.log");
    let trad: String = text
        .lines()
        .map(|l| {
            let l = l.split_once('>').unwrap().1;
            l.replacen(" haproxy[", " lb1 haproxy[", 1) + "\n"
        })
        .collect();
    std::fs::write(&path, trad).unwrap();
    path
}

/// `hapwatch-gen --lines N --seed S` into `dir`.
fn generated(dir: &std::path::Path, lines: &str, seed: &str) -> std::path::PathBuf {
    let path = dir.join(format!("gen-{seed}.log"));
    let out = Command::new(env!("CARGO_BIN_EXE_hapwatch-gen"))
        .args(["--lines", lines, "--seed", seed])
        .output()
        .unwrap();
    std::fs::write(&path, out.stdout).unwrap();
    path
}

#[test]
fn real_fixture_matches_halog() {
    let dir = tempfile::tempdir().unwrap();
    let path = traditional_fixture(dir.path());
    let h = halog_srv(&path);
    assert!(h.contains_key("be_app/srv1"), "{h:?}");
    assert_eq!(hapwatch_srv(&path), h);
}

#[test]
fn generated_log_matches_halog() {
    let dir = tempfile::tempdir().unwrap();
    let path = generated(dir.path(), "60000", "7");
    let h = halog_srv(&path);
    assert!(h.len() >= 10, "{h:?}");
    assert_eq!(hapwatch_srv(&path), h);
}

/// `halog -st`, `-tc` and `-cc` against `analyze --by status|termination|
/// cookie`. halog reads fields by position, so it takes a TCP line's
/// bytes for a status and its queue counts for cookie codes: compared on
/// the HTTP lines, where both count the same thing.
#[test]
fn status_termination_and_cookie_codes_match_halog() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        traditional_fixture(dir.path()),
        generated(dir.path(), "60000", "11"),
    ];
    for file in files {
        let http: String = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("] fe_tcp "))
            .map(|l| format!("{l}\n"))
            .collect();
        let path = file.with_extension("http.log");
        std::fs::write(&path, http).unwrap();
        for (flag, key) in [("-st", "status"), ("-tc", "termination"), ("-cc", "cookie")] {
            let want: BTreeMap<String, u64> = halog(flag, &path)
                .lines()
                .filter_map(|l| l.rsplit_once(' '))
                .map(|(k, n)| (k.to_string(), n.parse().unwrap()))
                .collect();
            let r = analyze_json(&["--by", key, path.to_str().unwrap()]);
            assert_eq!(r["by"]["key"], key);
            let got: BTreeMap<String, u64> = r["by"]["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    let k = row["value"].as_str().unwrap().to_string();
                    (k, row["requests"].as_u64().unwrap())
                })
                .collect();
            // Several statuses and terminations (cookies: none are set).
            assert!(want.len() > usize::from(flag != "-cc"), "{flag}: {want:?}");
            assert_eq!(got, want, "{flag} on {}", path.display());
            assert_eq!(r["by"]["without"], 0);
        }
    }
}

#[test]
fn an_unknown_by_key_exits_2_naming_the_valid_ones() {
    let out = hapwatch(&["analyze", "--by", "url-ish", "-"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("status, termination, cookie"), "{err}");
}
