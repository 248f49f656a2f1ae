//! Per-server request counts and status classes equal `halog -srv`
//! (Debian's haproxy package ships /usr/sbin/halog; .ci/run installs it).

mod common;
use common::*;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};

/// What `halog FLAG < path` prints.
fn halog(flag: &str, path: &std::path::Path) -> String {
    halog_args(&[flag], path)
}

fn halog_args(args: &[&str], path: &std::path::Path) -> String {
    let halog = ["/usr/sbin/halog", "/usr/bin/halog"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("halog is needed: apt-get install haproxy");
    let out = Command::new(halog)
        .args(args)
        .stdin(Stdio::from(std::fs::File::open(path).unwrap()))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// `backend/server` -> [1xx, 2xx, 3xx, 4xx, 5xx, other, total]
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

/// `--by`'s rows of a JSON report: value -> requests.
fn by_requests(r: &serde_json::Value) -> BTreeMap<String, u64> {
    r["by"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let k = row["value"].as_str().unwrap().to_string();
            (k, row["requests"].as_u64().unwrap())
        })
        .collect()
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
            let got = by_requests(&r);
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

/// halog's `#req err ttot tavg oktot okavg bavg btot key` rows, in order.
fn halog_named(args: &[&str], path: &std::path::Path) -> Vec<(String, [u64; 8])> {
    halog_args(args, path)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(9, ' ').collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            (f[8].to_string(), std::array::from_fn(n))
        })
        .collect()
}

fn hapwatch_named(args: &[&str], path: &std::path::Path) -> Vec<(String, [u64; 8])> {
    let mut all = args.to_vec();
    all.push(path.to_str().unwrap());
    named_rows(&analyze_json(&all))
}

/// A JSON report's `--by url|client` rows, in halog's column order.
fn named_rows(r: &serde_json::Value) -> Vec<(String, [u64; 8])> {
    r["by"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let g = |k: &str| row[k].as_u64().unwrap();
            (
                row["value"].as_str().unwrap().to_string(),
                [
                    g("requests"),
                    g("errors"),
                    g("time_total_ms"),
                    g("time_avg_ms"),
                    g("ok_time_total_ms"),
                    g("ok_time_avg_ms"),
                    g("bytes_avg"),
                    g("bytes"),
                ],
            )
        })
        .collect()
}

/// `halog -u*`, `-ic` and `-query` against `analyze --by url|client
/// --sort ... --top 0`: the same rows with the same figures, in the same
/// order of the sorted column (ties may be listed in another order; halog
/// -u lists URLs in reverse byte order, `--sort key` in byte order).
#[test]
fn urls_and_clients_match_halog_in_every_order() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        traditional_fixture(dir.path()),
        generated(dir.path(), "60000", "13"),
    ];
    let cases: [(&str, &[&str], Option<usize>); 11] = [
        ("-u", &["--by", "url", "--sort", "key"], None),
        ("-uc", &["--by", "url", "--sort", "count"], Some(0)),
        ("-ue", &["--by", "url", "--sort", "errors"], Some(1)),
        ("-ut", &["--by", "url", "--sort", "total-time"], Some(2)),
        ("-ua", &["--by", "url", "--sort", "avg-time"], Some(3)),
        ("-uto", &["--by", "url", "--sort", "total-ok-time"], Some(4)),
        ("-uao", &["--by", "url", "--sort", "avg-ok-time"], Some(5)),
        ("-uba", &["--by", "url", "--sort", "avg-bytes"], Some(6)),
        ("-ubt", &["--by", "url", "--sort", "total-bytes"], Some(7)),
        ("-ic", &["--by", "client"], Some(0)),
        ("-uc -query", &["--by", "url", "--query"], Some(0)),
    ];
    for file in &files {
        for (flag, args, column) in cases {
            let flags: Vec<&str> = flag.split(' ').collect();
            let want = halog_named(&flags, file);
            let mut all = args.to_vec();
            all.extend(["--top", "0"]);
            let got = hapwatch_named(&all, file);
            assert!(!want.is_empty(), "{flag}");
            if file == &files[1] {
                assert!(want.len() >= 5, "{flag}: {want:?}");
            }
            let as_map = |v: &[(String, [u64; 8])]| v.iter().cloned().collect::<BTreeMap<_, _>>();
            assert_eq!(as_map(&got), as_map(&want), "{flag} on {}", file.display());
            match column {
                Some(c) => {
                    let order =
                        |v: &[(String, [u64; 8])]| v.iter().map(|r| r.1[c]).collect::<Vec<_>>();
                    assert_eq!(order(&got), order(&want), "{flag}");
                }
                None => {
                    let keys = |v: &[(String, [u64; 8])]| {
                        v.iter().map(|r| r.0.clone()).collect::<Vec<_>>()
                    };
                    let mut reversed = keys(&want);
                    reversed.reverse();
                    assert_eq!(keys(&got), reversed, "{flag}");
                }
            }
        }
        // The query string, kept, makes more URLs than cut.
        let cut = hapwatch_named(&["--by", "url", "--top", "0"], file);
        let kept = hapwatch_named(&["--by", "url", "--query", "--top", "0"], file);
        assert!(kept.len() >= cut.len());
    }
    // --top: the first N rows, and how many there are.
    let r = analyze_json(&["--by", "client", "--top", "3", files[1].to_str().unwrap()]);
    assert_eq!(r["by"]["rows"].as_array().unwrap().len(), 3);
    assert!(r["by"]["distinct"].as_u64().unwrap() > 3, "{:#}", r["by"]);
    assert_eq!(r["by"]["sort"], "count");
}

#[test]
fn an_unknown_sort_exits_2_naming_the_valid_ones() {
    let out = hapwatch(&["analyze", "--by", "url", "--sort", "fastest", "-"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("avg-time"), "{err}");
    assert!(err.contains("total-bytes"), "{err}");
}

/// README shows `hapwatch ARGS fixtures/rsyslog-file.log` and, in the
/// next block, what it prints from `heading` on.
fn assert_readme_shows(args: &[&str], heading: &str) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let cmd = format!("hapwatch {} fixtures/rsyslog-file.log", args.join(" "));
    let after = &readme[readme.find(&cmd).expect("the command is in README")..];
    let block = after.split("```").nth(2).unwrap().trim_start_matches('\n');
    let file = fixture("rsyslog-file.log");
    let mut all = args.to_vec();
    all.push(file.to_str().unwrap());
    let out = hapwatch(&all);
    let text = String::from_utf8_lossy(&out.stdout);
    let shown = &text[text.find(heading).unwrap()..];
    assert_eq!(shown.trim_end(), block.trim_end(), "{cmd}");
}

/// README's "Coming from halog" shows what `--by url` prints.
#[test]
fn the_readme_url_table_is_what_hapwatch_prints() {
    assert_readme_shows(&["analyze", "--by", "url", "--top", "5"], "REQUESTS BY URL");
}

/// `halog -pct` against `analyze --percentiles`: every row (percent,
/// requests covered, TR, Tc, Tr, Td) equal, on the real capture and a
/// generated file; Tw comes after halog's columns.
#[test]
fn percentiles_match_halog_pct() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        traditional_fixture(dir.path()),
        generated(dir.path(), "60000", "17"),
    ];
    for file in &files {
        let want: Vec<Vec<String>> = halog("-pct", file)
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect();
        assert_eq!(want.len(), 72, "halog's 72 rows on {}", file.display());
        let out = hapwatch(&["analyze", "--percentiles", file.to_str().unwrap()]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let got: Vec<Vec<String>> = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("PCT"))
            .skip(1)
            .map(|l| l.split_whitespace().take(6).map(String::from).collect())
            .collect();
        assert_eq!(got, want, "on {}", file.display());
        // A list of one's own: the same values as halog's rows there.
        let r = analyze_json(&["--percentiles=50,99", file.to_str().unwrap()]);
        let p = &r["percentiles"];
        let rows = p["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        let fifty = want.iter().find(|r| r[0] == "50.0").unwrap();
        assert_eq!(rows[0]["requests"].to_string(), fifty[1]);
        assert_eq!(rows[0]["Tr"].to_string(), fifty[4]);
        assert!(rows[1]["Tr"].as_i64() >= rows[0]["Tr"].as_i64());
        assert!(p["counted"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_bad_percentile_list_exits_2_saying_why() {
    for (arg, says) in [
        ("--percentiles=0", "above 0"),
        ("--percentiles=101", "at most 100"),
        ("--percentiles=p99", "not a percentile"),
    ] {
        let out = hapwatch(&["analyze", arg, "-"]);
        assert_eq!(out.status.code(), Some(2), "{arg}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{arg}: {err}");
    }
}

/// How many request lines `analyze` with these filters selected.
fn selected(args: &[&str], path: &std::path::Path) -> u64 {
    let mut all = args.to_vec();
    all.push(path.to_str().unwrap());
    analyze_json(&all)["selected"]["selected"].as_u64().unwrap()
}

/// halog's input filters, each and combined, select the lines hapwatch's
/// do (`halog -H F -c` against `--http-only F`), and a report under a
/// filter is halog's report under it. On TCP lines the two differ by
/// design: halog reads fields by position (a TCP line's byte count passes
/// for its status), hapwatch reads them by meaning.
#[test]
fn request_filters_select_what_halogs_select() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        traditional_fixture(dir.path()),
        generated(dir.path(), "60000", "19"),
    ];
    let cases: [(&str, &[&str]); 14] = [
        ("-e", &["--errors"]),
        ("-E", &["--no-errors"]),
        ("-rt 100", &["--tr-at-least", "100ms"]),
        ("-RT 100", &["--tr-below", "100ms"]),
        ("-Q", &["--queued"]),
        ("-QS", &["--server-queued"]),
        ("-tcn SH", &["--termination", "SH"]),
        ("-TCN --", &["--not-termination", "--"]),
        ("-hs 500:599", &["--status", "500:599"]),
        ("-hs 404", &["--status", "404"]),
        ("-HS 200", &["--not-status", "200"]),
        ("-hs :399", &["--status", ":399"]),
        ("-e -tcn SC", &["--errors", "--termination", "SC"]),
        ("-v -rt 50", &["--invert", "--tr-at-least", "50ms"]),
    ];
    for file in &files {
        let all = halog_args(&["-H", "-c"], file)
            .trim()
            .parse::<u64>()
            .unwrap();
        assert_eq!(selected(&["--http-only"], file), all);
        for (flag, args) in cases {
            let mut h = vec!["-H"];
            h.extend(flag.split(' '));
            h.push("-c");
            let want: u64 = halog_args(&h, file).trim().parse().unwrap();
            let mut a = vec!["--http-only"];
            a.extend_from_slice(args);
            assert_eq!(selected(&a, file), want, "{flag} on {}", file.display());
            if file == &files[1] && !flag.contains("-v") {
                assert!(want > 0 && want < all, "{flag} selects some: {want}");
            }
        }
        // A report under a filter: halog -e -uc, --errors --by url.
        let want = halog_named(&["-H", "-e", "-uc"], file);
        let got = hapwatch_named(
            &["--http-only", "--errors", "--by", "url", "--top", "0"],
            file,
        );
        let as_map = |v: &[(String, [u64; 8])]| v.iter().cloned().collect::<BTreeMap<_, _>>();
        assert_eq!(as_map(&got), as_map(&want), "-e -uc on {}", file.display());
    }
    // Where they differ: -v also inverts -H, so halog then selects the TCP
    // lines, whose "status" (their bytes) it reads; hapwatch's TCP lines
    // have no status and are never selected by a status filter.
    let gen = &files[1];
    let tcp = std::fs::read_to_string(gen)
        .unwrap()
        .lines()
        .filter(|l| l.contains("] fe_tcp "))
        .count() as u64;
    assert!(tcp > 0);
    let halog_v: u64 = halog_args(&["-H", "-hs", "400:", "-v", "-c"], gen)
        .trim()
        .parse()
        .unwrap();
    let r = analyze_json(&[
        "--http-only",
        "--status",
        "400:",
        "--invert",
        gen.to_str().unwrap(),
    ]);
    let s = &r["selected"];
    assert_eq!(s["selected"].as_u64().unwrap(), halog_v - tcp);
    assert_eq!(s["missing_field"].as_u64().unwrap(), tcp);
}

/// `--header-match` reads the captured header named (halog 2.6's
/// `-hdr-match` is newer than Debian's halog: compared with the lines
/// themselves). A block or field a line does not have: not selected,
/// counted, not an error.
#[test]
fn header_match_selects_the_captured_value_and_counts_lines_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let gen = generated(dir.path(), "20000", "23");
    let text = std::fs::read_to_string(&gen).unwrap();
    let with = |p: &str| text.lines().filter(|l| l.contains(p)).count() as u64;
    let api = with("{api.example.com|");
    assert!(api > 0);
    assert_eq!(
        selected(&["--header-match", "1:1=api.example.com"], &gen),
        api
    );
    let http = with("] fe_http ");
    let r = analyze_json(&["--header-match", "3:1=x", gen.to_str().unwrap()]);
    assert_eq!(r["selected"]["selected"], 0);
    assert_eq!(
        r["selected"]["missing_field"].as_u64().unwrap(),
        with("] fe_")
    );
    assert!(http > 0);
    // The report counts only what was selected.
    let r = analyze_json(&[
        "--header-match",
        "1:1=api.example.com",
        gen.to_str().unwrap(),
    ]);
    let total: u64 = r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, api);
    for bad in ["1:2", "0:1=x", "a:1=x"] {
        let out = hapwatch(&["analyze", "--header-match", bad, "-"]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("BLOCK:FIELD=VALUE"));
    }
    for (arg, bad) in [
        ("--status", "5xx"),
        ("--termination", "S"),
        ("--tr-below", "100"),
    ] {
        let out = hapwatch(&["analyze", arg, bad, "-"]);
        assert_eq!(out.status.code(), Some(2), "{arg} {bad}");
    }
}

/// `halog -ad D -ac N` against `--accept-holes D --accept-count N`: the
/// same holes (time of day, gap, accepts), on a generated file with five
/// seconds taken out and on the real capture.
#[test]
fn accept_holes_match_halog() {
    let dir = tempfile::tempdir().unwrap();
    let gen = generated(dir.path(), "60000", "29");
    let text = std::fs::read_to_string(&gen).unwrap();
    // The first accept date, `24/Nov/2026:10:00:00.001`: its minute.
    let accept = &text[text.find("] fe_").unwrap() - 24..][..24];
    let cut = format!("{}:2", &accept[..17]); // seconds 20-29 of it
    let holed = dir.path().join("holed.log");
    let kept: String = text
        .lines()
        .filter(|l| !l.contains(&cut))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&holed, kept).unwrap();
    let real = traditional_fixture(dir.path());
    for (file, gap, count) in [
        (&holed, "1000", "1"),
        (&holed, "3", "4"),
        (&real, "1000", "1"),
        (&real, "50", "2"),
    ] {
        let want: Vec<(String, u64, u64)> = halog_args(&["-ad", gap, "-ac", count], file)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (
                    f[0].to_string(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                )
            })
            .collect();
        let r = analyze_json(&[
            "--tz",
            "UTC",
            "--accept-holes",
            &format!("{gap}ms"),
            "--accept-count",
            count,
            file.to_str().unwrap(),
        ]);
        let got: Vec<(String, u64, u64)> = r["accept_holes"]["holes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let at = h["at"].as_str().unwrap();
                (
                    at[11..23].to_string(),
                    h["gap_ms"].as_u64().unwrap(),
                    h["accepts"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "-ad {gap} -ac {count} on {}", file.display());
        if file == &holed && gap == "1000" {
            assert_eq!(got.len(), 1, "the ten seconds taken out: {got:?}");
            assert!(got[0].1 >= 10_000, "{got:?}");
        }
    }
}

/// `--by frontend`: every request under its listener's name (no `~`).
#[test]
fn by_frontend_counts_each_listeners_requests() {
    let dir = tempfile::tempdir().unwrap();
    let gen = generated(dir.path(), "20000", "31");
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for l in std::fs::read_to_string(&gen).unwrap().lines() {
        if let Some(i) = l.find("] fe_") {
            let fe = l[i + 2..].split(' ').next().unwrap().trim_end_matches('~');
            *want.entry(fe.to_string()).or_default() += 1;
        }
    }
    assert!(want.len() >= 2, "{want:?}");
    let r = analyze_json(&["--by", "frontend", gen.to_str().unwrap()]);
    assert_eq!(by_requests(&r), want);
}

/// README's `--percentiles` block is what hapwatch prints.
#[test]
fn the_readme_percentile_table_is_what_hapwatch_prints() {
    assert_readme_shows(
        &["analyze", "--percentiles=50,90,99,99.9"],
        "TIMER PERCENTILES",
    );
}

/// 500,000 requests for 400,000 URLs seen once or twice and two hot ones,
/// `/early/hot` from the start and `/late/hot` in the last quarter: past the
/// bound of `--by url`.
fn many_urls(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("urls.log");
    let mut text = String::new();
    let mut x: u64 = 11;
    let n = 500_000u64;
    for i in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let url = if i % 50 == 0 {
            "/early/hot".to_string()
        } else if i > n * 3 / 4 && i % 20 == 1 {
            "/late/hot".to_string()
        } else {
            format!("/item/{}", (x >> 33) % 400_000)
        };
        let (s, ms) = (i / 1000, i % 1000);
        let t = format!("{:02}:{:02}:{:02}", 10 + s / 3600, s / 60 % 60, s % 60);
        text += &format!(
            "Nov 24 {t} lb1 haproxy[1]: 10.0.0.{}:{} [24/Nov/2026:{t}.{ms:03}] fe be/s1 0/0/1/{}/{} 200 {} - - ---- 1/1/1/1/0 0/0 \"GET {url} HTTP/1.1\"\n",
            i % 250,
            1024 + i % 60_000,
            i % 40,
            i % 40 + 2,
            100 + i % 9000,
        );
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Past the bound, which requests each worker read decides what its summary
/// evicted: each worker reads its own share of the chunks (the k-th chunk
/// to worker k mod N), so a summary is the same on every run.
#[test]
fn a_summary_is_the_same_on_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = many_urls(dir.path());
    let run = || {
        let r = analyze_json(&[
            "--by",
            "url",
            "--threads",
            "2",
            "--top",
            "50",
            path.to_str().unwrap(),
        ]);
        r["by"].clone()
    };
    let first = run();
    assert!(first["floor"].as_u64().unwrap() > 0, "a summary: {first}");
    for _ in 0..3 {
        let again = run();
        let brief = |b: &serde_json::Value| {
            format!(
                "distinct {} floor {} overflow {}",
                b["distinct"], b["floor"], b["overflow"]
            )
        };
        assert!(again == first, "{} then {}", brief(&first), brief(&again));
    }
}

/// More distinct URLs than `--by url` keeps (32 MiB: about 200,000): the
/// rows are a summary that still holds the heaviest, as `halog -uc` (exact,
/// and several times the memory) counts them. Two hot URLs, one of which
/// first comes when the table has long been full, among 400,000 URLs seen
/// once or twice.
#[test]
fn a_summary_keeps_the_heaviest_urls_past_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = many_urls(dir.path());
    let want = halog_named(&["-uc"], &path);
    let r = analyze_json(&["--by", "url", "--top", "2", path.to_str().unwrap()]);
    let by = &r["by"];
    let floor = by["floor"]
        .as_u64()
        .expect("a summary: JSON says its floor");
    assert!(floor > 0 && by["overflow"].as_u64().unwrap() > 0, "{by}");
    assert!(by["distinct"].as_u64().unwrap() < 400_000, "{by}");
    let got = named_rows(&r);
    assert_eq!(want[0].0, "/early/hot");
    assert_eq!(want[1].0, "/late/hot");
    for (k, (h, w)) in got.iter().zip(&want[..2]).enumerate() {
        assert_eq!(h.0, w.0);
        // Above the floor, so kept; the one kept since its first request
        // is exact, the late one within its `uncounted`.
        assert!(w.1[0] > floor);
        let uncounted = by["rows"][k]["uncounted"].as_u64().unwrap_or(0);
        if uncounted == 0 {
            assert_eq!(h.1, w.1, "{}", w.0);
        } else {
            assert!(
                h.1[0] <= w.1[0] && w.1[0] <= h.1[0] + uncounted,
                "{h:?} {w:?}"
            );
        }
    }
    assert_eq!(
        by["rows"][0]["uncounted"],
        serde_json::Value::Null,
        "exact: {by}"
    );
    // The table says it is a summary and how far to trust it.
    let out = hapwatch(&["analyze", "--by", "url", path.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("the rows are a summary of the heaviest"),
        "{table}"
    );
    // (Its floor depends on how many workers shared the chunks.)
    assert!(table.contains("a url in no row had at most "), "{table}");
}

/// A `--by`, `--percentiles` or `--accept-holes` table alone (text, CSV)
/// is read without counting per server; the figures must not move. With
/// `--db` the run counts per server (the store takes them): both runs
/// print the same report, byte for byte.
#[test]
fn a_table_alone_is_the_same_with_or_without_per_server_counts() {
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), "20000", "3");
    let file = file.to_str().unwrap();
    let tables: [&[&str]; 5] = [
        &["--by", "status"],
        &["--by", "termination"],
        &["--by", "url", "--top", "5"],
        &["--percentiles"],
        &["--accept-holes", "3ms"],
    ];
    let mut n = 0;
    let run = |args: &[&str]| {
        let out = hapwatch(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // What the first line says of lines past the caps differs by design (a
    // run without per-server counts has none to leave out); the rest not.
    let table = |text: &str| {
        text.lines()
            .map(|l| {
                l.split(", ")
                    .filter(|part| !part.contains("--max-servers"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for t in tables {
        for format in ["table", "csv"] {
            let mut args = vec!["analyze", "--format", format, file];
            args.extend_from_slice(t);
            let lean = run(&args);
            assert!(lean.lines().count() > 3, "{args:?}: {lean}");
            n += 1;
            let db = dir.path().join(format!("{n}.sqlite"));
            let db = db.to_str().unwrap();
            let counted = run(&[&args[..], &["--db", db]].concat());
            assert_eq!(lean, counted, "{args:?}");
            // `--max-servers 1`: servers past the cap keep no counts of their
            // own, but their lines are requests of the table all the same
            // (the table bounds its own memory). A run that counted per
            // server used to leave them out of it.
            let capped = [&args[..], &["--max-servers", "1"]].concat();
            assert_eq!(table(&lean), table(&run(&capped)), "{capped:?}");
            let db = format!("{db}-capped");
            let capped = [&capped[..], &["--db", &db]].concat();
            assert_eq!(table(&lean), table(&run(&capped)), "{capped:?}");
        }
    }
}

/// Words to the left, figures to the right: in every `--by` table the
/// value column (URL, client, termination state, cookie flags) starts
/// where its heading does, whatever its length; a status is a figure.
#[test]
fn by_tables_align_words_left_and_figures_right() {
    let file = fixture("rsyslog-file.log");
    for (by, heading) in [
        ("url", "URL"),
        ("client", "CLIENT"),
        ("termination", "TERMINATION"),
        ("cookie", "COOKIE"),
        ("frontend", "FRONTEND"),
        ("status", "STATUS"),
    ] {
        let out = hapwatch(&["analyze", "--by", by, file.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout);
        let table: Vec<&str> = text[text.find("REQUESTS BY").unwrap()..]
            .lines()
            .skip(1)
            .take_while(|l| !l.contains("requests without"))
            .collect();
        let head = table[0];
        let col = head.find(heading).unwrap();
        let rows = &table[1..];
        assert!(!rows.is_empty(), "--by {by}: {text}");
        for row in rows {
            let at = |i: usize| row.as_bytes().get(i).copied();
            if by == "status" {
                // Right-aligned under its heading: the last digit below
                // the heading's last letter.
                let end = col + heading.len() - 1;
                assert!(at(end).is_some_and(|c| c.is_ascii_digit()), "{row}");
                assert_eq!(at(end + 1), Some(b' '), "{row}");
            } else {
                assert!(at(col).is_some_and(|c| c != b' '), "--by {by}: {row}");
                assert!(col == 0 || at(col - 1) == Some(b' '), "--by {by}: {row}");
            }
        }
    }
}
