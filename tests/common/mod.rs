//! Shared helpers: run the real binary, parse its JSON.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// `text` written as `haproxy.log` in a new temporary directory: the
/// directory (the log lives as long as it does; a database can go beside
/// it) and the log's path.
pub fn log_file(text: impl AsRef<[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("haproxy.log");
    std::fs::write(&log, text).unwrap();
    (dir, log)
}

pub fn hapwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hapwatch"))
        .args(args)
        .output()
        .expect("run hapwatch")
}

pub fn hapwatch_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hapwatch"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hapwatch");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// `hapwatch analyze --format json ARGS...`, asserting exit status 0.
pub fn analyze_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["analyze", "--format", "json"];
    all.extend_from_slice(args);
    let out = hapwatch(&all);
    assert!(
        out.status.success(),
        "hapwatch {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing on stderr when it is not a terminal: no progress bar, no noise.
    assert!(
        out.stderr.is_empty(),
        "unexpected stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

pub fn server<'a>(r: &'a serde_json::Value, backend: &str, server: &str) -> &'a serde_json::Value {
    r["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["backend"] == backend && s["server"] == server)
        .unwrap_or_else(|| panic!("no server {backend}/{server} in report"))
}

/// A backend of a report (`analyze`) or of `status`, by name.
pub fn backend<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == name)
        .unwrap_or_else(|| panic!("no backend {name} in report"))
}

/// Transitions as "backend/server FROM->TO" strings, in order.
/// `analyze --tz TZ FILE`: its transitions with their times (UTC ms), and
/// the whole report.
pub fn timed_transitions(path: &Path, tz: &str) -> (Vec<(i64, String)>, serde_json::Value) {
    let r = analyze_json(&["--tz", tz, path.to_str().unwrap()]);
    let at = r["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| hapwatch::time::parse_user_time(t["at"].as_str().unwrap()).unwrap())
        .zip(transitions(&r))
        .collect();
    (at, r)
}

pub fn transitions(r: &serde_json::Value) -> Vec<String> {
    r["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}/{} {}->{}",
                t["backend"].as_str().unwrap(),
                t["server"].as_str().unwrap(),
                t["from"].as_str().unwrap(),
                t["to"].as_str().unwrap()
            )
        })
        .collect()
}

/// What `fixtures/capture-console.sh` captured: the changes, in order, as
/// the log lines tell them.
pub const CONSOLE_STORY: [&str; 11] = [
    "be_app/s1 UP->MAINT",
    "be_app/s1 MAINT->DRAIN",
    "be_app/s1 DRAIN->UP",
    "be_app/s2 UP->DOWN",
    "be_app/s2 DOWN->UP",
    "be_app/s2 UP->DOWN",
    "be_app/s2 DOWN->UP",
    "be_app/s2 UP->DOWN",
    "be_app/s1 UP->DOWN",
    "be_app/s1 DOWN->UP",
    "be_app/s2 DOWN->UP",
];

/// The five forms fixtures/capture.sh writes (one HAProxy, several paths).
pub const FORMS: [&str; 5] = [
    "haproxy-udp-rfc3164.log",
    "haproxy-udp-rfc5424.log",
    "rsyslog-tcp-octet.log",
    "rsyslog-tcp-forward.log",
    "rsyslog-file.log",
];

/// fixtures/capture.sh's scripted story, as each form must tell it.
pub const EXPECTED: [&str; 10] = [
    "be_app/srv2 UP->DOWN",
    "be_app/srv2 DOWN->UP",
    "be_app/srv1 UP->MAINT",
    "be_app/srv1 MAINT->UP",
    "be_app/srv3 UP->DRAIN",
    "be_app/srv3 DRAIN->UP",
    "be_tcp/t1 UP->DOWN",
    "be_tcp/t2 UP->DOWN",
    "be_tcp/t1 DOWN->UP",
    "be_tcp/t2 DOWN->UP",
];

/// fixtures/capture-variants.sh: `log-send-hostname`, `option httpslog` on
/// TLS, `option httplog clf`, a backup server, a tracking server, an agent
/// check, and runtime API changes (fixtures/README.md).
pub const VARIANTS_EXPECTED: [&str; 11] = [
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
];

/// Fails with the install line when a daemon the test drives is missing.
pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap()
            .status
            .success();
        assert!(
            found,
            "{tool} is needed: apt-get install haproxy rsyslog python3 openssl faketime"
        );
    }
}

/// Runs a capture script into a fresh directory, on its own ports.
pub fn capture(script: &str, port_base: &str) -> tempfile::TempDir {
    capture_with(script, port_base, &[])
}

/// [`capture`] with more of the script's settings (`CAPTURE_TZ`, ...).
pub fn capture_with(script: &str, port_base: &str, env: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(fixture(script))
        .arg(dir.path())
        .env("CAPTURE_PORT_BASE", port_base)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A HAProxy DOWN message (without its syslog header), as HAProxy writes it.
pub const DOWN: &str = "Server be_app/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";

/// One scrape of `http://127.0.0.1:PORT/metrics`, headers and all (empty
/// when nothing listens there yet).
pub fn metrics(port: u16) -> String {
    http_get(port, "/metrics", "")
}

/// `GET path` on 127.0.0.1:`port` with `headers` (each ending in CRLF): the
/// response's head and its body, the body decoded when it came chunked
/// (as `/metrics` does); a broken chunked body reads as no body, as
/// Prometheus would fail the scrape. Empty when nothing answers.
pub fn http_get(port: u16, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    );
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        return raw;
    };
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return raw;
    }
    format!("{head}\r\n\r\n{}", dechunk(body).unwrap_or_default())
}

/// An HTTP/1.1 chunked body, whole (`None` if it does not end with its
/// last, empty chunk).
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let n = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..n)?);
        body = rest.get(n..)?.strip_prefix("\r\n")?;
    }
}

/// The value of the first sample line of a scrape that starts with
/// `prefix` (0 when absent).
pub fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Polls /metrics until `prefix` reaches `want` (bounded).
pub fn wait_metric(port: u16, prefix: &str, want: u64) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let m = metrics(port);
        if metric(&m, prefix) >= want {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{prefix} never reached {want}:\n{m}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// rsyslogd in the foreground with this configuration, its pid file in
/// `dir`, quiet; the caller stops it.
pub fn rsyslogd(conf: &std::path::Path, dir: &std::path::Path) -> std::process::Child {
    std::process::Command::new("rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Whether the tests run as root (some need to be another user or group,
/// or to boot systemd).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A child process stopped (SIGKILL) when dropped, if it still runs: a
/// failing assertion leaves no daemon behind.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's systemd-journal-remote: an export stream into a journal file.
pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// The capture (fixtures/, moved by `shift_ms`) as journald keeps HAProxy's syslog messages: one entry per
/// line of the RFC 5424 copy, its time, `SYSLOG_IDENTIFIER=haproxy`, the
/// message alone; a binary `MESSAGE` for one (journald stores a message
/// with control characters so).
pub fn export_stream(host: &str, shift_ms: i64) -> Vec<u8> {
    export_stream_of(host, shift_ms, None)
}

/// [`export_stream`], each `MESSAGE` the line of the fixture `stdout` (a
/// copy of the same capture in another `log` format) as HAProxy writes it
/// to stdout in that format, run by systemd: journald takes a `<0>`..`<7>`
/// level prefix off the line (systemd's syslog_parse_priority without the
/// facility), and keeps any other (`<134>`) in the message.
pub fn export_stream_of(host: &str, shift_ms: i64, stdout: Option<&str>) -> Vec<u8> {
    let written = stdout.map(|f| std::fs::read_to_string(fixture(f)).unwrap());
    let mut written = written.as_deref().map(str::lines);
    entries(host, shift_ms, true, |_, msg| {
        match written.as_mut().map(|w| w.next().unwrap()) {
            Some(w) => match w.as_bytes() {
                [b'<', b'0'..=b'7', b'>', ..] => w[3..].to_string(),
                _ => w.to_string(),
            },
            None => msg.to_string(),
        }
    })
}

/// [`export_stream`] as journald keeps HAProxy's `log /dev/log format
/// rfc5424`: journald's syslog socket takes the PRI off, finds no RFC 3164
/// time and no `tag:` after it, so the message is the rest of the frame
/// (`1 2026-11-24T18:34:18.689388+00:00 - haproxy 9241 - - MSG`) and the
/// entry has no `SYSLOG_IDENTIFIER` (journalctl names it by `_COMM`).
pub fn export_stream_dev_log_rfc5424(host: &str) -> Vec<u8> {
    entries(host, 0, false, |line, _| {
        line[line.find('>').unwrap() + 1..].to_string()
    })
}

/// One journal entry per line of the RFC 5424 copy of the capture, its
/// message made by `message(line, message as HAProxy sent it)`.
fn entries(
    host: &str,
    shift_ms: i64,
    identifier: bool,
    mut message: impl FnMut(&str, &str) -> String,
) -> Vec<u8> {
    let text = std::fs::read_to_string(fixture("haproxy-udp-rfc5424.log")).unwrap();
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let f: Vec<&str> = l.splitn(8, ' ').collect();
        let t = hapwatch::time::parse_user_time(f[1]).unwrap() + shift_ms;
        let micros = t * 1000 + 456;
        let msg = message(l, f[7]);
        out.extend_from_slice(
            format!(
                "__REALTIME_TIMESTAMP={micros}\n__MONOTONIC_TIMESTAMP={}\n\
                 _BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME={host}\n",
                micros - 1_700_000_000_000_000,
            )
            .as_bytes(),
        );
        if identifier {
            let id = format!("SYSLOG_IDENTIFIER=haproxy\nSYSLOG_PID={}\n", f[4]);
            out.extend_from_slice(id.as_bytes());
        }
        out.extend_from_slice(format!("_PID={}\n_COMM=haproxy\nPRIORITY=6\n", f[4]).as_bytes());
        if i == 3 {
            let m = format!("{msg}\u{1}");
            out.extend_from_slice(b"MESSAGE\n");
            out.extend_from_slice(&(m.len() as u64).to_le_bytes());
            out.extend_from_slice(m.as_bytes());
            out.push(b'\n');
        } else {
            out.extend_from_slice(format!("MESSAGE={msg}\n").as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// The wall clock, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A backend server: Python's http.server on `port`.
pub fn http_server(port: u16, dir: &Path) -> Child {
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server on {port} never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Requests to `port` (HAProxy) every 100 ms until `stop` (at most 600).
pub fn traffic(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..600 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n");
                let _ = s.read_to_end(&mut Vec::new());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// A child process killed (and reaped) when dropped.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// SIGTERM, as systemd stops it; it must drain, commit and exit 0.
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(self.0.wait().unwrap().success());
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HAProxy configuration: `log` line given, frontend `fe_http` on
/// `frontend`, backend `be_app` with srv1 and srv2 checked every 200 ms
/// (`retries 0`: a request to a dead server fails at once, while a retry
/// waits a second per try, and the traffic, HAProxy's clock, goes on).
pub fn two_server_cfg(log: &str, frontend: u16, srv1: u16, srv2: u16) -> String {
    format!(
        "global\n    log {log}\n\
         defaults\n    mode http\n    log global\n    option httplog\n    retries 0\n\
         \x20   timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe_http\n    bind 127.0.0.1:{frontend}\n    default_backend be_app\n\
         backend be_app\n    option httpchk GET /\n\
         \x20   server srv1 127.0.0.1:{srv1} check inter 200ms fall 2 rise 2\n\
         \x20   server srv2 127.0.0.1:{srv2} check inter 200ms fall 2 rise 2\n"
    )
}

/// Fails unless `haproxy -c` accepts the configuration at `path`: a test's
/// configuration is one a real HAProxy runs.
pub fn haproxy_accepts(path: &Path) {
    let out = Command::new("haproxy")
        .args(["-c", "-q", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "haproxy -c {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `hapwatch listen` with these arguments, once it says where it listens
/// (its other stderr lines are read and dropped); killed when dropped.
pub fn listen_ready(args: &[&str]) -> KillOnDrop {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hapwatch"))
        .arg("listen")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let guard = KillOnDrop(child);
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "hapwatch listen {args:?} did not start"
        );
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    guard
}
