//! Deployment as pasted: the rsyslog snippet beside Debian's haproxy file,
//! the systemd unit's hardening, readiness and watchdog, the query commands
//! finding the service's database. All on 127.0.0.1; every daemon started
//! here is stopped here.

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn kill(child: &Child, sig: &str) {
    Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
}

fn listen(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
    // Through sh, which execs hapwatch with its own pid in WATCHDOG_PID, as
    // systemd sets it (a watchdog is for the main process only).
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_hapwatch"))
        .arg("listen")
        .arg("--db")
        .arg(db)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let child = Running(child);
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "did not start: {line}");
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    child
}

/// The datagrams systemd would get on NOTIFY_SOCKET, until `want` (bounded).
fn notified(sock: &UnixDatagram, want: &str) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let s = String::from_utf8_lossy(&buf[..n]).to_string();
            let done = s.contains(want);
            got.push(s);
            if done {
                return got;
            }
        }
    }
    panic!("never notified {want}: {got:?}");
}

/// Type=notify: READY=1 once the sockets are bound, WATCHDOG=1 while the
/// engine turns (WatchdogSec=), STOPPING=1 at SIGTERM.
#[test]
fn listen_tells_systemd_it_is_ready_alive_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let child = listen(
        &dir.path().join("x.db"),
        &["--udp", "127.0.0.1:28061"],
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let first = notified(&sock, "READY=1");
    assert!(first.iter().all(|s| !s.contains("STOPPING")), "{first:?}");
    // Pings at half the interval: two within a second.
    let pings = notified(&sock, "WATCHDOG=1");
    assert!(pings.last().unwrap().contains("WATCHDOG=1"));
    notified(&sock, "WATCHDOG=1");
    kill(&child.0, "TERM");
    notified(&sock, "STOPPING=1");
    let mut child = child;
    assert!(child.0.wait().unwrap().success());
}

/// `systemd-analyze security` scores contrib/hapwatch.service at most 2.0
/// (checked where systemd-analyze is installed).
#[test]
fn the_unit_is_hardened() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/hapwatch.service");
    let out = match Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            eprintln!("systemd-analyze is not installed: the score is not checked here");
            return;
        }
    };
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("hapwatch.service: ").nth(1))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no score in: {text}"));
    assert!(score <= 2.0, "exposure {score}:\n{text}");
    let unit = std::fs::read_to_string(&unit).unwrap();
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "StateDirectory=hapwatch",
        "RuntimeDirectory=hapwatch",
        "Environment=HAPWATCH_DB=/var/lib/hapwatch/hapwatch.db",
    ] {
        assert!(unit.contains(needed), "{needed}");
    }
}

/// An rsyslogd on 127.0.0.1 with Debian's haproxy file and ours in its
/// include directory (`ours`: the name our snippet gets in rsyslog.d);
/// stopped when dropped.
fn rsyslog_beside_debians(dir: &Path, udp: u16, ours: &str, hapwatch_port: u16) -> Running {
    let d = dir.join("rsyslog.d");
    std::fs::create_dir_all(&d).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let snippet = std::fs::read_to_string(root.join("contrib/48-hapwatch.conf"))
        .unwrap()
        .replace("port=\"5514\"", &format!("port=\"{hapwatch_port}\""));
    std::fs::write(d.join(ours), snippet).unwrap();
    // Debian's haproxy package's file, its paths moved here.
    let debian = "\
# Create an additional socket in haproxy's chroot in order to allow logging via
# /dev/log to chroot'ed HAProxy processes
$AddUnixListenSocket DIR/haproxy-dev-log

# Send HAProxy messages to a dedicated logfile
:programname, startswith, \"haproxy\" {
  DIR/haproxy.log
  stop
}
"
    .replace("DIR", dir.to_str().unwrap());
    std::fs::write(d.join("49-haproxy.conf"), debian).unwrap();
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{0}\")\n\
                 module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
                 module(load=\"imudp\")\n\
                 input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\n\
                 $IncludeConfig {0}/rsyslog.d/*.conf\n\
                 *.* {0}/everything-else.log\n",
            dir.display()
        ),
    )
    .unwrap();
    Running(rsyslogd(&conf, dir))
}

/// How many lines hapwatch got through an rsyslogd whose include directory
/// holds Debian's 49-haproxy.conf and our snippet under `ours`, after a
/// HAProxy line reached rsyslog and its local file.
fn through_rsyslog(ours: &str, base: u16) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let mut hw = listen(
        &dir.path().join("x.db"),
        &[
            "--tcp",
            &format!("127.0.0.1:{}", base + 1),
            "--metrics",
            &format!("127.0.0.1:{}", base + 2),
        ],
        &[],
    );
    let _rsyslog = rsyslog_beside_debians(dir.path(), base, ours, base + 1);
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = dir.path().join("haproxy.log");
    let deadline = Instant::now() + Duration::from_secs(15);
    // rsyslog takes a moment to open its input: send until the local file
    // has the line (bounded).
    while std::fs::read_to_string(&local).map_or(true, |t| !t.contains("be_app/srv1")) {
        assert!(
            Instant::now() < deadline,
            "rsyslog never wrote {}",
            local.display()
        );
        u.send_to(
            format!("<129>Nov 30 10:00:00 lb1 haproxy[7]: {DOWN}").as_bytes(),
            ("127.0.0.1", base),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    // Forwarding is asynchronous: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut got = 0;
    while Instant::now() < deadline && got == 0 {
        got = metric(&metrics(base + 2), "hapwatch_lines_total");
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(&hw.0, "TERM");
    hw.0.wait().unwrap();
    got
}

/// contrib/48-hapwatch.conf, installed as named beside Debian's haproxy
/// package's 49-haproxy.conf (which ends in `stop`), forwards HAProxy's
/// messages to hapwatch and keeps the local file; named after it (as the
/// README once said, 49-hapwatch.conf), it would receive nothing.
#[test]
fn the_rsyslog_snippet_works_beside_debians_haproxy_file() {
    require_tools(&["rsyslogd"]);
    assert!(
        through_rsyslog("48-hapwatch.conf", 28071) > 0,
        "48- forwards"
    );
    assert_eq!(
        through_rsyslog("49-hapwatch.conf", 28081),
        0,
        "a name after 49-haproxy.conf gets nothing: the control that shows the name matters"
    );
}

/// An operator's `hapwatch status` finds the service's database (or says
/// where it is), and a database it may not read says how to read it.
#[test]
fn query_commands_find_the_database_and_say_how_to_read_it() {
    // The service test below creates /var/lib/hapwatch/hapwatch.db.
    let _system = SYSTEM.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // Nothing here, no HAPWATCH_DB: the message names the service's path.
    let out = Command::new(env!("CARGO_BIN_EXE_hapwatch"))
        .arg("status")
        .current_dir(dir.path())
        .env_remove("HAPWATCH_DB")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !Path::new("/var/lib/hapwatch/hapwatch.db").exists() {
        assert_eq!(out.status.code(), Some(2));
        assert!(err.contains("/var/lib/hapwatch/hapwatch.db"), "{err}");
    }
    // A database of another user (0600): the error says how to read it.
    if !is_root() {
        eprintln!("not root: the other-user case is not checked here");
        return;
    }
    require_tools(&["setpriv"]);
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let db = dir.path().join("service.db");
    let made = hapwatch(&[
        "analyze",
        "--db",
        db.to_str().unwrap(),
        &fixture("haproxy-udp-rfc3164.log").display().to_string(),
    ]);
    assert!(made.status.success());
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_hapwatch"))
        .args(["status", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("permission denied") && err.contains("sudo -u root hapwatch status"),
        "{err}"
    );
}

/// `--group`: the files hapwatch writes (the database, its `-wal` and
/// `-shm`, `--alerts-jsonl`) are 0640 and the group's, so that an operator
/// in that group reads `hapwatch status` without sudo; without it they
/// are 0600 (the test above shows such a reader refused).
#[test]
fn group_readers_read_what_hapwatch_writes() {
    if !is_root() {
        eprintln!("not root: cannot give files to another group or be another user here");
        return;
    }
    require_tools(&["setpriv"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let nogroup = gid_of("nogroup");
    let owned = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap();
        (m.mode() & 0o777, m.gid())
    };
    let as_nobody = |db: &Path| {
        Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_hapwatch"))
            .args(["status", "--format", "json", "--db", db.to_str().unwrap()])
            .output()
            .unwrap()
    };

    // analyze --db --group
    let db = dir.path().join("analyzed.db");
    let made = hapwatch(&[
        "analyze",
        "--db",
        db.to_str().unwrap(),
        "--group",
        "nogroup",
        &fixture("rsyslog-file.log").display().to_string(),
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert_eq!(owned(&db), (0o640, nogroup), "analyze's database");
    let out = as_nobody(&db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!v["servers"].as_array().unwrap().is_empty(), "{v}");

    // listen --group, read while it runs (the -wal and -shm exist then).
    let db = dir.path().join("live.db");
    let jsonl = dir.path().join("alerts.jsonl");
    let hw = listen(
        &db,
        &[
            "--udp",
            "127.0.0.1:28161",
            "--group",
            "nogroup",
            "--alerts-jsonl",
            jsonl.to_str().unwrap(),
        ],
        &[],
    );
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let line = format!(
        "<129>{} lb1 haproxy[7]: {DOWN}",
        chrono::Utc::now().format("%b %e %H:%M:%S")
    );
    u.send_to(line.as_bytes(), "127.0.0.1:28161").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = as_nobody(&db);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["servers"].as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a group reader never saw the DOWN: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(owned(&p), (0o640, nogroup), "{}", p.display());
    }
    assert_eq!(owned(&jsonl), (0o640, nogroup), "--alerts-jsonl");
    kill(&hw.0, "TERM");

    // A group that does not exist: exit 2, named.
    let out = hapwatch(&["listen", "--db", "x.db", "--group", "no-such-group-here"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--group no-such-group-here"));
}

/// A group's id, by getent.
fn gid_of(name: &str) -> u32 {
    let out = Command::new("getent")
        .args(["group", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .unwrap_or_else(|| panic!("no group {name}"))
}

/// Held by the tests that use the machine's own paths
/// (/var/lib/hapwatch, /etc/systemd/system, the user hapwatch).
static SYSTEM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The README's "Running it as a service" commands, as pasted, under a real
/// systemd (PID 1 in its own pid, mount and network namespaces, loopback
/// only): install, `systemctl enable --now` (Type=notify: active once
/// bound), the "Is it receiving?" block (metrics, a DOWN over TCP, the
/// page in `hapwatch alerts`, the state in `hapwatch status` as the
/// service user), a DOWN through Debian's rsyslog with the 48- snippet,
/// stop. tests/e2e/service.sh does it and removes what it installed; it
/// skips on a machine where hapwatch is installed.
#[test]
fn the_readmes_service_commands_work_as_pasted_under_systemd() {
    if !is_root() {
        eprintln!("not root: systemd cannot be booted here");
        return;
    }
    require_tools(&["unshare", "nsenter", "sudo", "logger", "curl", "rsyslogd"]);
    if !Path::new("/lib/systemd/systemd").exists() {
        assert!(std::env::var_os("CI").is_none(), "CI installs systemd");
        eprintln!("no systemd: not checked here");
        return;
    }
    let _system = SYSTEM.lock().unwrap_or_else(|e| e.into_inner());
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("timeout")
        .arg("120")
        .arg("bash")
        .arg(Path::new(root).join("tests/e2e/service.sh"))
        .arg(root)
        .arg(env!("CARGO_BIN_EXE_hapwatch"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.code() == Some(77) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI has no installation: {said}"
        );
        eprintln!("{said}");
        return;
    }
    assert!(out.status.success(), "{said}");
    assert!(said.contains("every command of the README's service section worked as pasted"));
}
