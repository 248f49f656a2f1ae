//! Shards that share nothing, deduplicated by a clustered Alertmanager
//! (docs/SCALING.md): two `hapwatch listen` shards, each receiving one load
//! balancer's lines, and a fleet shard receiving both load balancers'
//! health lines only; each posts to both peers of a two-node
//! Alertmanager cluster (Debian's prometheus-alertmanager, gossip on
//! 127.0.0.1), as Alertmanager's HA practice asks. One webhook receiver
//! behind the cluster must get exactly one notification per alert, firing
//! and resolved.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{require_tools, KillOnDrop};

const AM: [u16; 2] = [29801, 29802];
const GOSSIP: [u16; 2] = [29803, 29804];
const HOOK: u16 = 29805;
const SHARD_A: u16 = 29811;
const SHARD_B: u16 = 29812;
const FLEET: u16 = 29813;

/// Every POST the webhook receiver got, as JSON.
fn webhook(port: u16) -> Arc<Mutex<Vec<serde_json::Value>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let into = got.clone();
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let mut r = BufReader::new(c);
            let mut len = 0;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if h == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice(&body) {
                    into.lock().unwrap().push(v);
                }
            }
            let _ = r
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    got
}

fn get(port: u16, path: &str) -> serde_json::Value {
    let out = common::http_get(port, path, "");
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

/// Peer `i` of the cluster; its notifications go to the webhook.
fn alertmanager(dir: &std::path::Path, i: usize) -> KillOnDrop {
    let cfg = dir.join("am.yml");
    std::fs::write(
        &cfg,
        format!(
            "route:\n  receiver: hook\n  group_by: ['alertname', 'host', 'backend', 'server']\n  \
             group_wait: 1s\n  group_interval: 6s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      \
             - url: http://127.0.0.1:{HOOK}/\n        send_resolved: true\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.join(format!("am{i}")).display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", AM[i]))
        .arg(format!("--cluster.listen-address=127.0.0.1:{}", GOSSIP[i]))
        .arg(format!("--cluster.peer=127.0.0.1:{}", GOSSIP[1 - i]))
        // The second peer waits this long for the first's notification
        // log before it notifies itself. Less than group_interval, as in
        // production (15s and 5m by default): a peer that waits past its
        // next flush acts on an old view of the group (a firing sent after
        // the other peer sent the resolution).
        .arg("--cluster.peer-timeout=2s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// A `hapwatch listen` shard on `port` with these rules, posting to both
/// Alertmanager peers.
fn shard(dir: &std::path::Path, name: &str, port: u16, rules: &str) -> KillOnDrop {
    let file = dir.join(format!("{name}.toml"));
    let mut text = format!("{rules}\n[delivery]\nretry_min = \"200ms\"\n");
    for p in AM {
        text += &format!("\n[[sinks]]\nkind = \"alertmanager\"\nname = \"am{p}\"\nurl = \"http://127.0.0.1:{p}\"\n");
    }
    std::fs::write(&file, text).unwrap();
    let db = dir.join(format!("{name}.db"));
    common::listen_ready(&[
        "--udp",
        &format!("127.0.0.1:{port}"),
        "--db",
        db.to_str().unwrap(),
        "--rules",
        file.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ])
}

/// An RFC 5424 line of `host` stamped now (Alertmanager judges alerts
/// against its own clock).
fn line(host: &str, msg: &str) -> String {
    format!(
        "<129>1 {} {host} haproxy 1 - - {msg}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
    )
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (alertname, host or "", status) of each notification received.
fn notifications(got: &Mutex<Vec<serde_json::Value>>) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = got
        .lock()
        .unwrap()
        .iter()
        .map(|n| {
            let g = &n["groupLabels"];
            (
                g["alertname"].as_str().unwrap_or("").to_string(),
                g["host"].as_str().unwrap_or("").to_string(),
                n["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn two_shards_and_a_fleet_shard_page_once_through_an_alertmanager_cluster() {
    require_tools(&["prometheus-alertmanager"]);
    let dir = tempfile::tempdir().unwrap();
    let got = webhook(HOOK);
    let _am: Vec<KillOnDrop> = (0..2).map(|i| alertmanager(dir.path(), i)).collect();
    // Both peers up and the gossip settled: each sees the other.
    wait_for("the Alertmanager cluster to settle", 60, || {
        AM.iter().all(|p| {
            let s = get(*p, "/api/v2/status");
            s["cluster"]["status"] == "ready"
                && s["cluster"]["peers"]
                    .as_array()
                    .is_some_and(|a| a.len() == 2)
        })
    });
    // lb1 belongs to shard A, lb2 to shard B: per-host pages only. The
    // fleet shard gets both load balancers' health lines (few) and runs
    // the fleet rules only.
    let per_host = "[haproxy_server_down_fleet]\nenabled = false\n[haproxy_lb_view_diverges]\nenabled = false\n[haproxy_host_silent]\nenabled = false\n";
    let fleet_only = "[haproxy_backend_server_status]\nenabled = false\n[haproxy_backend_status]\nenabled = false\n[haproxy_server_flapping]\nenabled = false\n[haproxy_lb_view_diverges]\nenabled = false\n[haproxy_host_silent]\nenabled = false\n";
    let _a = shard(dir.path(), "a", SHARD_A, per_host);
    let _b = shard(dir.path(), "b", SHARD_B, per_host);
    let _f = shard(dir.path(), "fleet", FLEET, fleet_only);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |host: &str, shard_port: u16, msg: &str| {
        let l = line(host, msg);
        u.send_to(l.as_bytes(), ("127.0.0.1", shard_port)).unwrap();
        u.send_to(l.as_bytes(), ("127.0.0.1", FLEET)).unwrap();
    };
    let check = "Health check for server be_app/srv1 succeeded, reason: Layer7 check passed, code: 200, check duration: 1ms, status: 2/2 UP.";
    let down = "Server be_app/srv1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    let up = "Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";
    send("lb1", SHARD_A, check);
    send("lb2", SHARD_B, check);
    std::thread::sleep(Duration::from_millis(300));
    send("lb1", SHARD_A, down);
    std::thread::sleep(Duration::from_millis(300));
    send("lb2", SHARD_B, down);
    let firing = |n: &[(String, String, String)], rule: &str, host: &str| {
        n.iter()
            .filter(|x| x.0 == rule && x.1 == host && x.2 == "firing")
            .count()
    };
    wait_for("three pages", 30, || {
        let n = notifications(&got);
        firing(&n, "haproxy_backend_server_status", "lb1") > 0
            && firing(&n, "haproxy_backend_server_status", "lb2") > 0
            && firing(&n, "haproxy_server_down_fleet", "") > 0
    });
    // Each peer holds the three alerts (the cluster shares its
    // notification log and silences, not alerts: each shard posted to each).
    for p in AM {
        wait_for("the alerts on both peers", 10, || {
            get(p, "/api/v2/alerts").as_array().is_some_and(|a| {
                a.iter()
                    .filter(|x| x["labels"]["server"] == "srv1" && x["status"]["state"] == "active")
                    .count()
                    == 3
            })
        });
    }
    // Past the second peer's wait: it would have notified by now.
    std::thread::sleep(Duration::from_secs(4));
    send("lb1", SHARD_A, up);
    send("lb2", SHARD_B, up);
    wait_for("three resolutions", 30, || {
        notifications(&got)
            .iter()
            .filter(|x| x.2 == "resolved")
            .count()
            >= 3
    });
    // Past the second peer's wait and its next flush.
    std::thread::sleep(Duration::from_secs(8));
    let n = notifications(&got);
    let want = |rule: &str, host: &str, status: &str| {
        (rule.to_string(), host.to_string(), status.to_string())
    };
    assert_eq!(
        n,
        [
            want("haproxy_backend_server_status", "lb1", "firing"),
            want("haproxy_backend_server_status", "lb1", "resolved"),
            want("haproxy_backend_server_status", "lb2", "firing"),
            want("haproxy_backend_server_status", "lb2", "resolved"),
            want("haproxy_server_down_fleet", "", "firing"),
            want("haproxy_server_down_fleet", "", "resolved"),
        ],
        "each posted to both peers, notified once"
    );
}
