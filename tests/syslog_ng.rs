//! syslog-ng between HAProxy and `hapwatch listen`, configured as the README
//! says: a real HAProxy 2.6 logs over UDP to a real syslog-ng 3.38, which
//! forwards with the README's `network(... transport("tcp"))` destination
//! (RFC 3164, LF-framed) and with `syslog(...)` (RFC 5424, octet-counted)
//! to two listeners; a server is killed and brought back under traffic.
//!
//! Debian's syslog-ng conflicts with rsyslog (both are the system's log
//! daemon), which the other tests use: `.ci/run` unpacks Debian's
//! syslog-ng-core package (`apt-get download`, `dpkg -x`) into
//! `SYSLOG_NG_ROOT` (default /opt/syslog-ng-unpacked) instead of installing
//! it, and installs the libraries it links. Needs haproxy and python3 too.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FRONTEND: u16 = 29120;
const SRV1: u16 = 29121;
const SRV2: u16 = 29122;
const SYSLOG_NG_UDP: u16 = 29123;
const LISTEN_TCP: u16 = 29124;
const LISTEN_OCTETS: u16 = 29125;

fn syslog_ng_root() -> PathBuf {
    PathBuf::from(
        std::env::var("SYSLOG_NG_ROOT").unwrap_or_else(|_| "/opt/syslog-ng-unpacked".into()),
    )
}

/// A real syslog-ng, run from the unpacked package, all its files in `dir`.
fn syslog_ng(dir: &Path) -> KillOnDrop {
    let root = syslog_ng_root();
    let bin = root.join("usr/sbin/syslog-ng");
    assert!(
        bin.exists(),
        "{} is missing: run `apt-get download syslog-ng-core && dpkg -x syslog-ng-core_*.deb {}` \
         and `apt-get install libivykis0 libnet1 libpcre3 libwrap0 libjson-c5` (see .ci/run)",
        bin.display(),
        root.display()
    );
    let conf = dir.join("syslog-ng.conf");
    // The destination as the README gives it, and the RFC 5424 one.
    std::fs::write(
        &conf,
        format!(
            "@version: 3.38\n\
             options {{ keep-hostname(yes); time-reopen(1); }};\n\
             source s_haproxy {{ network(ip(\"127.0.0.1\") port({SYSLOG_NG_UDP}) transport(\"udp\")); }};\n\
             destination d_hapwatch {{ network(\"127.0.0.1\" port({LISTEN_TCP}) transport(\"tcp\")); }};\n\
             destination d_hapwatch_5424 {{ syslog(\"127.0.0.1\" port({LISTEN_OCTETS}) transport(\"tcp\")); }};\n\
             log {{ source(s_haproxy); destination(d_hapwatch); destination(d_hapwatch_5424); }};\n"
        ),
    )
    .unwrap();
    let lib = |p: &str| root.join(p).display().to_string();
    let child = Command::new(&bin)
        .env(
            "LD_LIBRARY_PATH",
            [
                lib("lib/x86_64-linux-gnu"),
                lib("usr/lib/x86_64-linux-gnu"),
                lib("usr/lib/syslog-ng"),
            ]
            .join(":"),
        )
        .arg("-F")
        .arg("-f")
        .arg(&conf)
        .arg(format!(
            "--module-path={}",
            root.join("usr/lib/syslog-ng/3.38").display()
        ))
        .arg(format!("--persist-file={}", dir.join("persist").display()))
        .arg(format!("--pidfile={}", dir.join("pid").display()))
        .arg(format!("--control={}", dir.join("ctl").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("syslog-ng");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("pid").exists() {
        assert!(Instant::now() < deadline, "syslog-ng did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    KillOnDrop(child)
}

/// `(UTC ms, "be/srv FROM->TO", host)` of what `listen` stored.
fn stored(db: &Path) -> Vec<(i64, String, String)> {
    let out = hapwatch(&["history", "--db", db.to_str().unwrap(), "--format", "json"]);
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let Some(ts) = h["transitions"].as_array() else {
        return Vec::new();
    };
    ts.iter()
        .zip(transitions(&h))
        .map(|(t, l)| {
            (
                hapwatch::time::parse_user_time(t["at"].as_str().unwrap()).unwrap(),
                l,
                t["host"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn wait_stored(db: &Path, n: usize) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    while stored(db).len() < n {
        assert!(
            Instant::now() < deadline,
            "{n} transitions never stored: {:?}",
            stored(db)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    now_ms()
}

#[test]
fn haproxy_through_syslog_ng_as_the_readme_configures_it() {
    require_tools(&["haproxy", "python3"]);
    let dir = tempfile::tempdir().unwrap();
    let (db, db_5424) = (dir.path().join("lf.db"), dir.path().join("octets.db"));
    let mut listeners = Vec::new();
    for (port, db) in [(LISTEN_TCP, &db), (LISTEN_OCTETS, &db_5424)] {
        listeners.push(KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_hapwatch"))
                .args(["listen", "--tcp", &format!("127.0.0.1:{port}")])
                .arg("--db")
                .arg(db)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "listen on {port} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _syslog_ng = syslog_ng(dir.path());
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        two_server_cfg(
            &format!("127.0.0.1:{SYSLOG_NG_UDP} local0"),
            FRONTEND,
            SRV1,
            SRV2,
        ),
    )
    .unwrap();
    let _srv1 = KillOnDrop(http_server(SRV1, dir.path()));
    let mut srv2 = KillOnDrop(http_server(SRV2, dir.path()));
    let haproxy = KillOnDrop(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(FRONTEND, stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    let killed = now_ms();
    let _ = srv2.0.kill();
    let _ = srv2.0.wait();
    let down_seen = wait_stored(&db, 1);
    let back = now_ms();
    srv2 = KillOnDrop(http_server(SRV2, dir.path()));
    let up_seen = wait_stored(&db, 2);
    wait_stored(&db_5424, 2);
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    drop(haproxy);
    for (db, what) in [
        (&db, "network() (RFC 3164, LF)"),
        (&db_5424, "syslog() (RFC 5424, octet-counted)"),
    ] {
        let got = stored(db);
        let labels: Vec<&str> = got.iter().map(|(_, l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            ["be_app/srv2 UP->DOWN", "be_app/srv2 DOWN->UP"],
            "{what}"
        );
        // RFC 3164 has whole seconds.
        let (down, up) = (got[0].0, got[1].0);
        assert!(
            down >= killed - 1_000 && down <= down_seen,
            "{what}: DOWN at {down}, killed {killed}, stored {down_seen}"
        );
        assert!(
            up >= back - 1_000 && up <= up_seen,
            "{what}: UP at {up}, back {back}, stored {up_seen}"
        );
        // keep-hostname(yes): the relay names the sender (HAProxy sends no
        // host name), never itself as a different host per format.
        assert!(!got[0].2.is_empty(), "{what}: {got:?}");
        assert_eq!(got[0].2, got[1].2, "{what}");
    }
    // Both forwarding forms name the same load balancer.
    assert_eq!(stored(&db)[0].2, stored(&db_5424)[0].2);
    drop(srv2);
    drop(listeners);
}
