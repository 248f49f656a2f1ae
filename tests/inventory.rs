//! haproxy.cfg as the inventory of servers (issue 15, point 4): `analyze`
//! and `status` list every declared server, those never logged as "no
//! event yet" in the state HAProxy starts them in, and flag servers that
//! log without being declared. The configuration is one `haproxy -c`
//! accepts.

mod common;
use common::*;

const CFG: &str = "global
  log 127.0.0.1:29240 local0
defaults
  mode http
  option httplog
  log global
  timeout connect 1s
  timeout client 1s
  timeout server 1s
  default-server check inter 1s
frontend fe
  bind 127.0.0.1:29241
  default_backend be_app
backend be_app
  server s1 127.0.0.1:29242
  server s2 127.0.0.1:29243 backup
  server s3 127.0.0.1:29244 disabled
  server s4 127.0.0.1:29245 no-check
backend be_tpl
  server-template web 1-3 127.0.0.1:29246
";

const LOG: &str = r#"Nov 24 16:21:15 lb1 haproxy[1]: 10.0.0.1:5000 [24/Nov/2026:16:21:15.230] fe be_app/s1 0/0/1/2/3 200 12 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"
Nov 24 16:21:16 lb1 haproxy[1]: 10.0.0.1:5001 [24/Nov/2026:16:21:16.230] fe be_app/s9 0/0/1/2/3 200 12 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"
Nov 24 16:21:16 lb1 haproxy[1]: 10.0.0.1:5002 [24/Nov/2026:16:21:16.530] fe be_app/<NOSRV> -1/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 "GET / HTTP/1.1"
Nov 24 16:21:17 lb1 haproxy[1]: Backup Server be_app/s2 is DOWN, reason: Layer4 connection problem, info: "Connection refused", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
"#;

fn setup() -> (tempfile::TempDir, String, String) {
    require_tools(&["haproxy"]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, CFG).unwrap();
    haproxy_accepts(&cfg);
    let log = dir.path().join("haproxy.log");
    std::fs::write(&log, LOG).unwrap();
    let (cfg, log) = (
        cfg.to_str().unwrap().to_string(),
        log.to_str().unwrap().to_string(),
    );
    (dir, cfg, log)
}

fn row<'a>(servers: &'a serde_json::Value, backend: &str, server: &str) -> &'a serde_json::Value {
    servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["backend"] == backend && s["server"] == server)
        .unwrap_or_else(|| panic!("{backend}/{server} is not listed: {servers:#}"))
}

#[test]
fn analyze_lists_every_declared_server_and_flags_the_undeclared() {
    let (_dir, cfg, log) = setup();
    let args = [
        "analyze", "--year", "2026", "--tz", "UTC", "--format", "json",
    ];
    let out = hapwatch(&[&args[..], &["--haproxy-config", &cfg, &log]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("1 server logs but is not in") && err.contains("be_app/s9"),
        "the undeclared server is said: {err}"
    );
    assert!(!err.contains("NOSRV"), "<NOSRV> is not a server: {err}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &r["servers"];
    let says = |b: &str, srv: &str| {
        let x = row(s, b, srv);
        (
            x["state"].as_str().unwrap().to_string(),
            x["inventory"].as_str().unwrap_or("").to_string(),
        )
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(says("be_app", "s1"), pair("UNKNOWN", "configured"));
    assert_eq!(says("be_app", "s2"), pair("DOWN", "configured"));
    assert_eq!(says("be_app", "s3"), pair("MAINT", "no event yet"));
    assert_eq!(says("be_app", "s4"), pair("UP", "no event yet"));
    assert_eq!(
        says("be_app", "s9"),
        pair("UNKNOWN", "not in the configuration")
    );
    for w in ["web1", "web2", "web3"] {
        assert_eq!(says("be_tpl", w), pair("UNKNOWN", "no event yet"));
        assert_eq!(row(s, "be_tpl", w)["host"], "lb1");
    }
    assert_eq!(row(s, "be_app", "s2")["backup"], true);
    assert!(row(s, "be_app", "s3")["last_cause"]
        .as_str()
        .unwrap()
        .contains("disabled in"));
    let be_tpl = r["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == "be_tpl")
        .expect("a backend that never logged is listed");
    assert_eq!(be_tpl["servers"], 3);

    // Without the configuration, only what logged.
    let out = hapwatch(&[&args[..], &[&log[..]]].concat());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["server"] != "s3" && s.get("inventory").is_none()));

    // The table says it too.
    let out = hapwatch(&[
        "analyze",
        "--year",
        "2026",
        "--tz",
        "UTC",
        "--haproxy-config",
        &cfg,
        &log,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("web2 (no event yet)"), "{text}");
    assert!(text.contains("s9 (not in the configuration)"), "{text}");
}

#[test]
fn status_lists_every_declared_server() {
    let (dir, cfg, log) = setup();
    let db = dir.path().join("h.db");
    let db = db.to_str().unwrap();
    let out = hapwatch(&["analyze", "--year", "2026", "--tz", "UTC", "--db", db, &log]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hapwatch(&[
        "status",
        "--db",
        db,
        "--haproxy-config",
        &cfg,
        "--format",
        "json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("be_app/s9"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &r["servers"];
    assert_eq!(row(s, "be_app", "s3")["state"], "MAINT");
    assert_eq!(row(s, "be_app", "s3")["inventory"], "no event yet");
    assert_eq!(row(s, "be_app", "s2")["state"], "DOWN");
    assert_eq!(row(s, "be_tpl", "web3")["inventory"], "no event yet");
    assert_eq!(
        row(s, "be_app", "s9")["inventory"],
        "not in the configuration"
    );
    let be_app = r["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == "be_app")
        .unwrap();
    // s1..s4 declared, s9 logs: s4 is UP (no check), nothing else is.
    assert_eq!(
        (be_app["servers_up"].as_u64(), be_app["servers"].as_u64()),
        (Some(1), Some(5))
    );
    let out = hapwatch(&["status", "--db", db, "--haproxy-config", &cfg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("web1 (no event yet)"), "{text}");
    // A configuration hapwatch cannot read: exit 2, what to fix.
    let out = hapwatch(&[
        "status",
        "--db",
        db,
        "--haproxy-config",
        "/nonexistent/haproxy.cfg",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/haproxy.cfg"));
}

#[test]
fn timeline_lists_declared_servers_with_no_state_event() {
    let (_dir, cfg, log) = setup();
    let base = [
        "timeline",
        "--year",
        "2026",
        "--tz",
        "UTC",
        "--haproxy-config",
        &cfg,
    ];
    let out = hapwatch(&[&base[..], &[&log[..]]].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("no state event 6 declared servers in haproxy.cfg")
            && text.contains("lb1/be_tpl/web3"),
        "{text}"
    );
    let out = hapwatch(&[&base[..], &["--format", "json", &log[..]]].concat());
    let story: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lane = |name: &str| {
        story["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["server"] == name)
            .unwrap_or_else(|| panic!("no lane for {name}: {story:#}"))["spans"][0]["state"]
            .clone()
    };
    assert_eq!(lane("lb1/be_app/s3"), "MAINT");
    assert_eq!(lane("lb1/be_app/s4"), "UP");
    assert_eq!(lane("lb1/be_tpl/web1"), "UNKNOWN");
    assert_eq!(
        lane("lb1/be_app/s2"),
        "UP",
        "the lane starts before s2 went DOWN"
    );
    assert!(story["inventory"]["no_event"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("lb1/be_app/s1")));
}
