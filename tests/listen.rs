//! `hapwatch listen`: the live receiver, through its sockets, its database
//! and its /metrics, as rsyslog and HAProxy would use it. All on 127.0.0.1,
//! each test on its own ports; every loop is bounded.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `hapwatch listen`, stopped with SIGTERM when dropped.
struct Listen {
    child: Child,
    pub db: std::path::PathBuf,
    /// What it wrote on stderr after its first line.
    said: std::sync::Arc<std::sync::Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Listen {
    fn start(args: &[&str]) -> Listen {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.db");
        Self::start_with(dir, db, args)
    }

    fn start_with(dir: tempfile::TempDir, db: std::path::PathBuf, args: &[&str]) -> Listen {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hapwatch"))
            .arg("listen")
            .arg("--db")
            .arg(&db)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Ready once it says where it listens (bounded wait).
        let mut err = BufReader::new(child.stderr.take().unwrap());
        // Warnings may come first (a database readable by others).
        let mut before = String::new();
        loop {
            let mut line = String::new();
            err.read_line(&mut line).unwrap();
            if line.contains("listening on") {
                break;
            }
            assert!(line.contains("warning:"), "did not start: {before}{line}");
            before.push_str(&line);
        }
        let said = std::sync::Arc::new(std::sync::Mutex::new(before));
        let into = said.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                into.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Listen {
            child,
            db,
            said,
            _dir: dir,
        }
    }

    fn stderr(&self) -> String {
        self.said.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status and how long it took.
    fn stop(&mut self) -> (std::process::ExitStatus, Duration) {
        let t = Instant::now();
        unsafe_kill(self.child.id(), "TERM");
        let deadline = t + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s, t.elapsed());
            }
            assert!(Instant::now() < deadline, "no exit 10 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn peak_rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    fn json(&self, cmd: &str) -> serde_json::Value {
        self.json_args(&[cmd])
    }

    /// A store command with these arguments, as JSON.
    fn json_args(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--db", self.db.to_str().unwrap(), "--format", "json"]);
        let out = hapwatch(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, sig: &str) {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
}

/// What `analyze --db` stores for a file: the reference for listen.
fn analyzed(path: &std::path::Path) -> (serde_json::Value, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ref.db");
    let out = hapwatch(&[
        "analyze",
        "--db",
        db.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let get = |cmd| {
        let o = hapwatch(&[cmd, "--db", db.to_str().unwrap(), "--format", "json"]);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    (get("status"), get("history"))
}

fn lines_of(name: &str) -> Vec<Vec<u8>> {
    std::fs::read(fixture(name))
        .unwrap()
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect()
}

/// The same captured traffic through each way in gives what `analyze`
/// gives for the file: live and offline are one engine.
#[test]
fn each_way_in_gives_what_analyze_gives() {
    // UDP: one datagram per line, as HAProxy sends.
    let mut l = Listen::start(&["--udp", "127.0.0.1:27801", "--metrics", "127.0.0.1:27802"]);
    let lines = lines_of("haproxy-udp-rfc3164.log");
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, line) in lines.iter().enumerate() {
        u.send_to(line, "127.0.0.1:27801").unwrap();
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(2)); // stay under the buffer
        }
    }
    wait_metric(27802, "hapwatch_lines_total", lines.len() as u64);
    let (s, t) = l.stop();
    assert!(
        s.success() && t < Duration::from_secs(5),
        "{s:?} after {t:?}"
    );
    let (status, history) = analyzed(&fixture("haproxy-udp-rfc3164.log"));
    assert_eq!(l.json("history"), history);
    assert_eq!(l.json("status"), status);

    // TCP: rsyslog's octet-counted stream and its LF stream, as captured,
    // sent in odd-sized pieces on two connections.
    for name in ["rsyslog-tcp-octet.log", "rsyslog-tcp-forward.log"] {
        let mut l = Listen::start(&["--tcp", "127.0.0.1:27803", "--metrics", "127.0.0.1:27804"]);
        let raw = std::fs::read(fixture(name)).unwrap();
        let mut c = TcpStream::connect("127.0.0.1:27803").unwrap();
        for piece in raw.chunks(1009) {
            c.write_all(piece).unwrap();
        }
        drop(c);
        let n = analyze_json(&[fixture(name).to_str().unwrap()])["input"]["lines"]
            .as_u64()
            .unwrap();
        wait_metric(27804, "hapwatch_lines_total", n);
        assert!(l.stop().0.success());
        let (status, history) = analyzed(&fixture(name));
        assert_eq!(l.json("history"), history, "{name}");
        assert_eq!(l.json("status"), status, "{name}");
    }

    // A unix datagram socket, as `log /path local0` uses.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("log.sock");
    let mut l = Listen::start(&[
        "--unix",
        sock.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:27805",
    ]);
    let u = std::os::unix::net::UnixDatagram::unbound().unwrap();
    for (i, line) in lines.iter().enumerate() {
        u.send_to(line, &sock).unwrap();
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    wait_metric(27805, "hapwatch_lines_total", lines.len() as u64);
    assert!(l.stop().0.success());
    assert_eq!(l.json("history"), history_of("haproxy-udp-rfc3164.log"));
}

fn history_of(name: &str) -> serde_json::Value {
    analyzed(&fixture(name)).1
}

/// Random bytes, truncated frames, bad and huge octet counts, a 10 MB line,
/// a silent connection and 2,000 connection attempts: every reject is
/// counted, memory stays bounded, and a good sender is served throughout.
#[test]
fn bad_input_is_counted_and_good_senders_are_served() {
    let l = Listen::start(&[
        "--tcp",
        "127.0.0.1:27811",
        "--udp",
        "127.0.0.1:27811",
        "--metrics",
        "127.0.0.1:27812",
        "--max-connections",
        "100",
        "--idle-timeout",
        "2s",
    ]);
    let down = b"<129>Nov 24 18:34:24 haproxy[1]: Server be_app/srv2 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    // A silent connection, held open.
    let silent = TcpStream::connect("127.0.0.1:27811").unwrap();
    // Garbage of every kind, each on its own connection.
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut random = vec![0u8; 200_000];
    for b in random.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    let mut huge_line = vec![b'x'; 10 << 20];
    huge_line.push(b'\n');
    let bad: Vec<Vec<u8>> = vec![
        random.clone(),
        b"120 <134>cut short".to_vec(),
        b"12a4 <1>not a count\n".to_vec(),
        b"99999999999999999999 zzz\n".to_vec(),
        b"999999999 ".to_vec(),
        huge_line,
    ];
    for b in &bad {
        let mut c = TcpStream::connect("127.0.0.1:27811").unwrap();
        let _ = c.write_all(b);
    }
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(&random[..60_000], "127.0.0.1:27811").unwrap();
    u.send_to(&vec![b'y'; 65_000], "127.0.0.1:27811").unwrap(); // under the limit, unparsed
                                                                // 2,000 connection attempts at once (bounded: each closed at once).
    let floods: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let mut held = Vec::new();
                for _ in 0..500 {
                    if let Ok(c) = TcpStream::connect("127.0.0.1:27811") {
                        held.push(c);
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            })
        })
        .collect();
    for f in floods {
        f.join().unwrap();
    }
    // A good sender, after all that: served.
    let mut good = TcpStream::connect("127.0.0.1:27811").unwrap();
    good.write_all(&[b"<133>Nov 24 18:34:20 haproxy[1]: Server be_app/srv2 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 3 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.\n".as_slice(), down, b"\n"].concat()).unwrap();
    let m = wait_metric(
        27812,
        "hapwatch_server_state{host=\"\",backend=\"be_app\",server=\"srv2\",state=\"DOWN\"}",
        1,
    );
    let tcp = "{listener=\"tcp://127.0.0.1:27811\"}";
    assert!(
        metric(&m, &format!("hapwatch_frames_oversized_total{tcp}")) >= 2,
        "{m}"
    );
    // "99999999999999999999 zzz" is a length no frame has; "120 <134>cut
    // short" ends with its connection.
    assert!(
        metric(&m, &format!("hapwatch_frames_malformed_total{tcp}")) >= 1,
        "{m}"
    );
    assert!(
        metric(&m, &format!("hapwatch_frames_partial_total{tcp}")) >= 1,
        "{m}"
    );
    assert!(
        metric(&m, &format!("hapwatch_tcp_connections_refused_total{tcp}")) > 0,
        "{m}"
    );
    assert!(
        metric(&m, "hapwatch_parse_failures_total{kind=\"unparsed\"}") > 0,
        "{m}"
    );
    // The silent connection is closed after --idle-timeout.
    std::thread::sleep(Duration::from_millis(2_500));
    let m = metrics(27812);
    assert!(
        metric(
            &m,
            &format!("hapwatch_tcp_connections_idle_closed_total{tcp}")
        ) >= 1,
        "{m}"
    );
    drop(silent);
    let rss = l.peak_rss_kb();
    assert!(rss < 150_000, "peak RSS {rss} kB");
    eprintln!("peak RSS after the bad input: {rss} kB");
}

#[test]
fn a_port_in_use_or_a_bad_address_exits_2_naming_it() {
    let _taken = std::net::TcpListener::bind("127.0.0.1:27821").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let db = db.to_str().unwrap();
    for (args, says) in [
        (vec!["--tcp", "127.0.0.1:27821"], "--tcp 127.0.0.1:27821"),
        (
            vec!["--udp", "localhost:5514"],
            "--udp localhost:5514: not an address",
        ),
        (
            vec!["--udp", "127.0.0.1:27822", "--metrics", "127.0.0.1:27821"],
            "--metrics 127.0.0.1:27821",
        ),
        (vec!["--allow", "10.0.0.0/33"], "--allow 10.0.0.0/33"),
        (
            vec!["--follow", "/nonexistent/haproxy.log"],
            "--follow /nonexistent/haproxy.log",
        ),
    ] {
        let mut all = vec!["listen", "--db", db];
        all.extend(args);
        let out = hapwatch(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{all:?}: {err}");
    }
    // A config file error names the line.
    let cfg = dir.path().join("listen.toml");
    std::fs::write(&cfg, "udp = [\"127.0.0.1:27823\"]\nmax_frame = \"big\"\n").unwrap();
    let out = hapwatch(&["listen", "--db", db, "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
}

/// `listen`'s arguments to follow `log` with its metrics at `metrics`.
fn follow_args<'a>(log: &'a std::path::Path, metrics: &'a str) -> [&'a str; 4] {
    ["--follow", log.to_str().unwrap(), "--metrics", metrics]
}

/// Appends `lines` to `path` (created if need be), each with its LF, as
/// a log writer does.
fn append(path: &std::path::Path, lines: &[Vec<u8>]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        f.write_all(l).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

/// `--follow`: tails from the end, survives rename rotation and
/// copytruncate, resumes from its checkpoint after a restart, and keeps
/// listening through SIGHUP.
#[test]
fn follow_survives_rotation_truncation_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("haproxy.log");
    let lines = lines_of("rsyslog-file.log");
    let write = |path: &std::path::Path, from: usize, to: usize| append(path, &lines[from..to]);
    // History before hapwatch starts is analyze's job: not read.
    write(&log, 0, 100);
    let db = dir.path().join("live.db");
    let keep = tempfile::tempdir().unwrap();
    let follow = follow_args(&log, "127.0.0.1:27831");
    let mut l = Listen::start_with(keep, db.clone(), &follow);
    write(&log, 100, 300);
    wait_metric(27831, "hapwatch_lines_total", 200);
    // Rename rotation: the old file gets two more lines, then a new file.
    let rotated = dir.path().join("haproxy.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    write(&rotated, 300, 302);
    write(&log, 302, 400);
    wait_metric(27831, "hapwatch_lines_total", 300);
    // copytruncate: the file emptied in place, then written again.
    std::fs::write(&log, b"").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    write(&log, 400, 450);
    wait_metric(27831, "hapwatch_lines_total", 350);
    unsafe_kill(l.child.id(), "HUP");
    write(&log, 450, 500);
    let m = wait_metric(27831, "hapwatch_lines_total", 400);
    assert_eq!(metric(&m, "hapwatch_lines_total"), 400, "no line twice");
    assert!(l.stop().0.success());
    // Restart: reads on from the checkpoint, not from the end, not twice.
    write(&log, 500, 550);
    let keep = tempfile::tempdir().unwrap();
    let mut l = Listen::start_with(keep, db.clone(), &follow);
    let m = wait_metric(27831, "hapwatch_lines_total", 50);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(metric(&metrics(27831), "hapwatch_lines_total"), 50, "{m}");
    assert!(l.stop().0.success());
}

/// One file followed under two names (the file, and a link beside it) is
/// followed once, and `listen` says so. Followed twice, each of its lines
/// was read twice: every request counted twice.
#[test]
fn a_file_followed_under_two_names_is_followed_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("haproxy.log");
    let link = dir.path().join("current.log");
    let lines = lines_of("rsyslog-file.log");
    append(&log, &lines[..10]);
    std::os::unix::fs::symlink(&log, &link).unwrap();
    let db = dir.path().join("live.db");
    let keep = tempfile::tempdir().unwrap();
    let (a, b) = (log.to_str().unwrap(), link.to_str().unwrap());
    let args = ["--follow", a, "--follow", b, "--metrics", "127.0.0.1:27836"];
    let mut l = Listen::start_with(keep, db, &args);
    assert!(l.stderr().contains("followed once"), "{}", l.stderr());
    append(&log, &lines[10..310]);
    let m = wait_metric(27836, "hapwatch_lines_total", 300);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(metric(&metrics(27836), "hapwatch_lines_total"), 300, "{m}");
    assert!(l.stop().0.success());
}

/// A restart after the file was replaced while hapwatch was down reads
/// what it missed: the lines written to the old file after the last one
/// read, when logrotate left it beside the path (renamed, or copied by
/// copytruncate), then the new file from its start (the path was
/// followed, so every line in it was written since). Before, a file
/// emptied and written past the old checkpoint was read on from that byte
/// (its first lines lost), a renamed one was left for the new file's end
/// (all lost), and the old file's last lines were never read.
#[test]
fn a_restart_reads_a_file_rotated_while_it_was_down_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("haproxy.log");
    let (one, two) = (
        dir.path().join("haproxy.log.1"),
        dir.path().join("haproxy.log.2"),
    );
    let lines = lines_of("rsyslog-file.log");
    let write = |path: &std::path::Path, from: usize, to: usize| append(path, &lines[from..to]);
    write(&log, 0, 100);
    let db = dir.path().join("live.db");
    let follow = follow_args(&log, "127.0.0.1:27834");
    let run = |from: usize, to: usize, want: u64| {
        let keep = tempfile::tempdir().unwrap();
        let mut l = Listen::start_with(keep, db.clone(), &follow);
        write(&log, from, to);
        let m = wait_metric(27834, "hapwatch_lines_total", want);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(metric(&metrics(27834), "hapwatch_lines_total"), want, "{m}");
        assert!(l.stop().0.success());
    };
    // First run: from the end, then 100 lines.
    run(100, 200, 100);
    // Emptied in place while stopped (no copy), and 300 lines written
    // past the old checkpoint's byte: all 300 and the next 10.
    std::fs::write(&log, b"").unwrap();
    write(&log, 200, 500);
    run(500, 510, 310);
    // logrotate's copytruncate while stopped: 10 more lines in the old
    // text, copied to haproxy.log.1, then the file emptied and 30 new.
    write(&log, 510, 520);
    std::fs::copy(&log, &one).unwrap();
    std::fs::write(&log, b"").unwrap();
    write(&log, 520, 550);
    run(550, 560, 50);
    // Rename rotation while stopped: 10 more lines, haproxy.log.1 to .2,
    // haproxy.log to .1, and a new file of 30.
    write(&log, 560, 570);
    std::fs::rename(&one, &two).unwrap();
    std::fs::rename(&log, &one).unwrap();
    write(&log, 570, 600);
    run(600, 610, 50);
    // An unchanged file reads on from its checkpoint.
    write(&log, 610, 630);
    run(630, 640, 30);
}

/// `--follow` a file that HAProxy's stdout is redirected to with `>` (no
/// append): logrotate's copytruncate empties it, the writer goes on at
/// its old offset, and the file now starts with a hole that reads as NULs,
/// here past the 64 KiB line limit. The first line after the hole is read
/// (it was dropped with the hole as one oversized line), the run counted.
#[test]
fn follow_reads_the_line_after_a_copytruncate_hole() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("haproxy.log");
    let lines = lines_of("rsyslog-file.log");
    // Not append: the writer keeps its own offset, as a shell's `>` does.
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    let mut write = |from: usize, to: usize| {
        for l in &lines[from..to] {
            writer.write_all(l).unwrap();
            writer.write_all(b"\n").unwrap();
        }
    };
    write(0, 600);
    assert!(std::fs::metadata(&log).unwrap().len() > 64 * 1024);
    let db = dir.path().join("live.db");
    let keep = tempfile::tempdir().unwrap();
    let follow = follow_args(&log, "127.0.0.1:27833");
    let mut l = Listen::start_with(keep, db, &follow);
    write(600, 610);
    wait_metric(27833, "hapwatch_lines_total", 10);
    // copytruncate: logrotate copies the file, then empties it in place.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    write(610, 660);
    wait_metric(27833, "hapwatch_lines_total", 60);
    // Nothing more comes: not the hole read as a line, not a line twice.
    std::thread::sleep(Duration::from_millis(500));
    let m = metrics(27833);
    assert_eq!(metric(&m, "hapwatch_lines_total"), 60, "{m}");
    assert_eq!(metric(&m, "hapwatch_nul_runs_total"), 1, "{m}");
    assert!(l.stop().0.success());
}

/// (a)-(d) of the issue: real HAProxy and rsyslog, four ways in; a backend
/// server killed and brought back; each hapwatch shows DOWN then UP at the
/// times HAProxy logged.
#[test]
fn real_haproxy_and_rsyslog_reach_listen_four_ways() {
    require_tools(&["haproxy", "rsyslogd", "python3", "curl"]);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/listen.sh"))
        .arg(dir.path())
        .arg("27900")
        .arg(env!("CARGO_BIN_EXE_hapwatch"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "listen.sh: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.path().join("events.log")).unwrap_or_default()
    );
    // HAProxy's own record of the outage, from its raw UDP output.
    let raw = analyze_json(&[dir.path().join("raw.log").to_str().unwrap()]);
    let logged: Vec<(String, String, String)> = raw["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["at"].as_str().unwrap().into(),
                t["from"].as_str().unwrap().into(),
                t["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        logged
            .iter()
            .map(|t| (t.1.as_str(), t.2.as_str()))
            .collect::<Vec<_>>(),
        vec![("UP", "DOWN"), ("DOWN", "UP")],
        "{raw}"
    );
    for (way, host) in [
        ("udp", ""),
        ("octet", "localhost"),
        ("lf", "localhost"),
        ("unix", ""),
    ] {
        let db = dir.path().join(format!("{way}.db"));
        let h = hapwatch(&[
            "history",
            "--db",
            db.to_str().unwrap(),
            "--format",
            "json",
            "--server",
            "srv2",
        ]);
        let h: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
        let got: Vec<(String, String, String)> = h["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                assert_eq!(t["host"], host, "{way}");
                (
                    t["at"].as_str().unwrap().into(),
                    t["from"].as_str().unwrap().into(),
                    t["to"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(got, logged, "{way}");
        let s = hapwatch(&[
            "status",
            "--db",
            db.to_str().unwrap(),
            "--format",
            "json",
            "--server",
            "srv2",
        ]);
        let s: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
        assert_eq!(s["servers"][0]["state"], "UP", "{way}: {s}");
        assert_eq!(s["servers"][0]["since"], logged[1].0, "{way}");
    }
    let m = std::fs::read_to_string(dir.path().join("metrics.txt")).unwrap();
    assert!(
        m.contains(
            "hapwatch_server_state{host=\"\",backend=\"be_app\",server=\"srv2\",state=\"UP\"} 1"
        ),
        "{m}"
    );
    let events = std::fs::read_to_string(dir.path().join("events.log")).unwrap();
    for line in events.lines().filter(|l| l.contains("exit of")) {
        assert!(line.contains(": 0 after"), "{line}");
    }
}

/// UDP loss is measured, not hidden: with a tiny receive buffer and queue,
/// a burst is partly dropped, and received + kernel drops account for every
/// datagram sent, processed + app drops for every one received.
#[test]
fn udp_loss_is_counted_by_the_kernel_and_by_hapwatch() {
    let l = Listen::start(&[
        "--udp",
        "127.0.0.1:27841",
        "--metrics",
        "127.0.0.1:27842",
        "--udp-recv-buffer",
        "2048",
        "--queue",
        "512",
    ]);
    let lines = lines_of("haproxy-udp-rfc3164.log");
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = 100_000u64;
    for i in 0..sent as usize {
        u.send_to(&lines[i % lines.len()], "127.0.0.1:27841")
            .unwrap();
    }
    // Kernel drops are read once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = "{listener=\"udp://127.0.0.1:27841\"}";
    loop {
        let m = metrics(27842);
        let received = metric(&m, &format!("hapwatch_messages_received_total{listener}"));
        let kernel = metric(&m, &format!("hapwatch_udp_kernel_drops_total{listener}"));
        let app = metric(&m, &format!("hapwatch_udp_app_drops_total{listener}"));
        let processed = metric(&m, "hapwatch_lines_total");
        if received + kernel == sent && processed + app == received {
            assert!(kernel > 0, "a 2 KiB buffer should overflow: {m}");
            break;
        }
        assert!(Instant::now() < deadline, "loss not accounted for:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(l);
}

/// `--allow`: a source outside the allowed networks is dropped and counted,
/// over UDP and TCP.
#[test]
fn sources_outside_allow_are_dropped_and_counted() {
    let _l = Listen::start(&[
        "--udp",
        "127.0.0.1:27851",
        "--tcp",
        "127.0.0.1:27851",
        "--metrics",
        "127.0.0.1:27852",
        "--allow",
        "10.0.0.0/8",
    ]);
    let line = b"<133>Nov 24 18:34:29 haproxy[1]: Server be/s1 is UP. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.\n";
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(line, "127.0.0.1:27851")
        .unwrap();
    let mut c = TcpStream::connect("127.0.0.1:27851").unwrap();
    let _ = c.write_all(line);
    // Each receiver counts on its own task: wait for both.
    wait_metric(
        27852,
        "hapwatch_sources_denied_total{listener=\"udp://127.0.0.1:27851\"}",
        1,
    );
    let m = wait_metric(
        27852,
        "hapwatch_sources_denied_total{listener=\"tcp://127.0.0.1:27851\"}",
        1,
    );
    assert_eq!(
        metric(
            &m,
            "hapwatch_sources_denied_total{listener=\"udp://127.0.0.1:27851\"}"
        ),
        1,
        "{m}"
    );
    assert_eq!(metric(&m, "hapwatch_lines_total"), 0, "{m}");
}

/// Back-pressure: with a queue far smaller than what one TCP sender pushes
/// at full speed, nothing is lost: the connection is read as the engine
/// catches up.
#[test]
fn tcp_waits_for_the_engine_and_loses_nothing() {
    let l = Listen::start(&[
        "--tcp",
        "127.0.0.1:27861",
        "--metrics",
        "127.0.0.1:27862",
        "--queue",
        "512",
    ]);
    let lines = lines_of("rsyslog-file.log");
    let mut stream = Vec::new();
    let total = 200_000usize;
    for i in 0..total {
        let l = &lines[i % lines.len()];
        stream.extend_from_slice(format!("{} ", l.len() + 5).as_bytes());
        stream.extend_from_slice(b"<134>");
        stream.extend_from_slice(l);
    }
    let mut c = TcpStream::connect("127.0.0.1:27861").unwrap();
    c.write_all(&stream).unwrap();
    drop(c);
    let m = wait_metric(27862, "hapwatch_lines_total", total as u64);
    assert_eq!(metric(&m, "hapwatch_lines_total"), total as u64);
    assert_eq!(
        metric(&m, "hapwatch_parse_failures_total{kind=\"unparsed\"}"),
        0,
        "{m}"
    );
    drop(l);
}

/// Event time: the same log gives the same alerts offline
/// (`analyze --alerts`) and live (`listen`, JSON-lines sink), firing and
/// resolved at the logged times; both databases list them; a restarted
/// receiver keeps a firing alert firing without announcing it again.
#[test]
fn alerts_live_equal_alerts_offline_and_survive_a_restart() {
    // A latency rule that the slow period of the capture trips, so that
    // degradation alerts (judged per closed minute) are compared too.
    let rdir = tempfile::tempdir().unwrap();
    let rules = rules_file(
        rdir.path(),
        "[haproxy_server_latency]\nthreshold_ms = 150\npercentile = 0.99\nmin_requests = 5\nfor = \"0s\"\n",
    );
    // A stop is not the end of a minute (the next run judges it whole):
    // one request two minutes later moves event time on, so that live closes
    // the capture's last minute as analyze does at the end of its input.
    const LATER: &str = "<134>Nov 24 18:37:00 haproxy[9241]: 127.0.0.1:34999 [24/Nov/2026:18:37:00.000] fe_http be_app/srv1 0/0/0/0/0 200 127 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"";
    let capture = rdir.path().join("capture.log");
    let mut text = std::fs::read_to_string(fixture("haproxy-udp-rfc3164.log")).unwrap();
    text.push_str(LATER);
    text.push('\n');
    std::fs::write(&capture, text).unwrap();
    let offline = analyze_json(&[
        "--alerts",
        "--rules",
        rules.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    let alerts = offline["alerts"].as_array().unwrap();
    let srv2: Vec<(&str, &str)> = alerts
        .iter()
        .filter(|a| a["labels"]["server"] == "srv2")
        .map(|a| {
            (
                a["status"].as_str().unwrap(),
                a["ends_at"].as_str().or(a["starts_at"].as_str()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        srv2,
        vec![
            ("firing", "2026-11-24T18:34:24.000Z"),
            ("resolved", "2026-11-24T18:34:29.000Z")
        ]
    );
    let down = alerts
        .iter()
        .find(|a| a["labels"]["server"] == "srv2")
        .unwrap();
    assert_eq!(down["rule"], "haproxy_backend_server_status");
    assert_eq!(down["labels"]["alertname"], "haproxy_backend_server_status");
    assert_eq!(down["labels"]["severity"], "critical");
    assert!(down["runbook"].as_str().unwrap().contains("haproxy -c -f"));

    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27871",
        "--metrics",
        "127.0.0.1:27872",
        "--alerts-jsonl",
        jsonl.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]);
    let lines = lines_of("haproxy-udp-rfc3164.log");
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, line) in lines.iter().enumerate() {
        u.send_to(line, "127.0.0.1:27871").unwrap();
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    wait_metric(27872, "hapwatch_lines_total", lines.len() as u64);
    u.send_to(LATER.as_bytes(), "127.0.0.1:27871").unwrap();
    wait_metric(27872, "hapwatch_lines_total", lines.len() as u64 + 1);
    wait_for("every alert event in the JSON lines file", || {
        std::fs::read_to_string(&jsonl).map_or(0, |t| t.lines().count()) >= alerts.len()
    });
    assert!(l.stop().0.success());
    let live = received(&jsonl);
    assert!(alerts.iter().any(|a| a["rule"] == "haproxy_server_latency"
        && a["labels"]["server"] == "srv1"
        && a["status"] == "firing"));
    // Same events; live announces minute-based ones when the minute closes.
    let key = |a: &serde_json::Value| {
        format!(
            "{} {} {} {}",
            a["ends_at"].as_str().or(a["starts_at"].as_str()).unwrap(),
            a["rule"],
            a["labels"],
            a["status"]
        )
    };
    let mut live_sorted = live.clone();
    live_sorted.sort_by_key(key);
    let mut offline_sorted = alerts.clone();
    offline_sorted.sort_by_key(key);
    assert_eq!(live_sorted, offline_sorted);
    let listed = l.json("alerts");
    assert_eq!(
        listed["alerts"].as_array().unwrap().len(),
        alerts.iter().filter(|a| a["status"] == "firing").count()
    );

    // A server left DOWN: firing; a restart keeps it firing and silent.
    let db = l.db.clone();
    let keep = tempfile::tempdir().unwrap();
    let mut l = Listen::start_with(
        keep,
        db.clone(),
        &[
            "--udp",
            "127.0.0.1:27873",
            "--metrics",
            "127.0.0.1:27874",
            "--alerts-jsonl",
            jsonl.to_str().unwrap(),
            "--reorder-window",
            "0s",
        ],
    );
    u.send_to(b"<129>Nov 24 19:00:00 haproxy[1]: Server be_app/srv3 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.", "127.0.0.1:27873").unwrap();
    wait_metric(27874, "hapwatch_lines_total", 1);
    assert!(l.stop().0.success());
    let keep = tempfile::tempdir().unwrap();
    let mut l = Listen::start_with(
        keep,
        db.clone(),
        &[
            "--udp",
            "127.0.0.1:27873",
            "--metrics",
            "127.0.0.1:27874",
            "--alerts-jsonl",
            jsonl.to_str().unwrap(),
            "--reorder-window",
            "0s",
        ],
    );
    u.send_to(b"<129>Nov 24 19:00:05 haproxy[1]: Server be_app/srv3 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.", "127.0.0.1:27873").unwrap();
    u.send_to(b"<133>Nov 24 19:00:09 haproxy[1]: Server be_app/srv3 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 3 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.", "127.0.0.1:27873").unwrap();
    wait_metric(27874, "hapwatch_lines_total", 2);
    assert!(l.stop().0.success());
    let srv3: Vec<String> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|s| serde_json::from_str::<serde_json::Value>(s).unwrap())
        .filter(|a| a["labels"]["server"] == "srv3" && a["severity"] == "critical")
        .map(|a| {
            format!(
                "{} {}",
                a["status"].as_str().unwrap(),
                a["starts_at"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        srv3,
        vec![
            "firing 2026-11-24T19:00:00.000Z",
            "resolved 2026-11-24T19:00:00.000Z"
        ],
        "announced once, resolved once"
    );
    let active = l.json("alerts");
    assert!(active["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["labels"]["server"] != "srv3" || a["status"] == "resolved"));
}

#[test]
fn check_config_explains_errors_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "stats_url = \"http://lb1:8404/stats\"\n\n[haproxy_server_flapping]\ntransitions = 6\nwindow = \"15m\"\n\n[haproxy_backend_server_status]\nbackend = \"be_*\"\nlabels = { team = \"web\" }\nsummary = \"{backend}/{server} down, team {team}: {summary}\"\n\n[[sinks]]\nkind = \"webhook\"\nurl = \"https://hooks.example.com/haproxy\"\n\n[[sinks]]\nkind = \"webhook\"\nname = \"plain\"\nurl = \"http://127.0.0.1:9/x\"\n").unwrap();
    let out = hapwatch(&["check-config", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ftp = dir.path().join("ftp.toml");
    std::fs::write(
        &ftp,
        "[[sinks]]\nkind = \"webhook\"\nurl = \"ftp://example.com/\"\n",
    )
    .unwrap();
    let out = hapwatch(&["check-config", ftp.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http:// or https://"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[haproxy_backend_server_status]\nenabled = true\nseverity = \"loud\"\n",
    )
    .unwrap();
    let out = hapwatch(&["check-config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("severity"), "{err}");
    // The rules take effect: a filtered rule stays silent for other backends,
    // and the stats URL is in the runbook.
    let r = analyze_json(&[
        "--alerts",
        "--rules",
        good.to_str().unwrap(),
        fixture("haproxy-udp-rfc3164.log").to_str().unwrap(),
    ]);
    let a = &r["alerts"][0];
    assert_eq!(a["labels"]["team"], "web");
    assert_eq!(
        a["summary"],
        "be_app/srv2 down, team web: be_app/srv2 on - is DOWN"
    );
    assert!(a["runbook"]
        .as_str()
        .unwrap()
        .contains("http://lb1:8404/stats"));
}

/// A webhook receiver (tests/e2e/webhook.py): 500 to the first `fails`
/// requests. Killed when dropped.
struct Hook(Child);

impl Hook {
    fn start(port: u16, fails: u32, log: &std::path::Path) -> Hook {
        Self::start_failing(port, fails, log, 500, "")
    }

    /// Answers `code` with `body` to the first `fails` requests.
    fn start_failing(port: u16, fails: u32, log: &std::path::Path, code: u16, body: &str) -> Hook {
        let child = Command::new("python3")
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/webhook.py"))
            .args([
                port.to_string(),
                fails.to_string(),
                log.to_str().unwrap().to_string(),
                code.to_string(),
                body.to_string(),
            ])
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "webhook receiver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Hook(child)
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn received(log: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Writes `toml` as `rules.toml` in `dir`, for `--rules`.
fn rules_file(dir: &std::path::Path, toml: impl AsRef<str>) -> std::path::PathBuf {
    let path = dir.join("rules.toml");
    std::fs::write(&path, toml.as_ref()).unwrap();
    path
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const DOWN_AT: &str = "<129>Nov 24 19:00:00 haproxy[1]: Server be_app/srv1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
const UP_AT: &str = "<133>Nov 24 19:00:07 haproxy[1]: Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 3 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";

/// A webhook that fails the first three attempts: the alerts still arrive,
/// once per notification, with the secret header from the environment;
/// an exec sink gets the same alerts on stdin.
#[test]
fn webhook_retries_until_delivered_once_and_exec_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hook.jsonl");
    let exec_out = dir.path().join("exec.jsonl");
    let _hook = Hook::start(27881, 3, &log);
    let rules = rules_file(
        dir.path(),
        format!(
            "[delivery]\nretry_min = \"50ms\"\nretry_max = \"200ms\"\n\n\
             [[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:27881/hook\"\nheaders = {{ Authorization = \"env:HOOK_TOKEN\" }}\n\n\
             [[sinks]]\nkind = \"exec\"\ncommand = [\"tee\", \"-a\", \"{}\"]\n",
            exec_out.display()
        ),
    );
    std::env::set_var("HOOK_TOKEN", "Bearer s3cret");
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27882",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(DOWN_AT.as_bytes(), "127.0.0.1:27882").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    u.send_to(UP_AT.as_bytes(), "127.0.0.1:27882").unwrap();
    wait_for("two deliveries", || {
        received(&log).iter().filter(|r| r["code"] == 200).count() >= 2
    });
    std::thread::sleep(Duration::from_millis(500)); // nothing more may come
    let got = received(&log);
    let ok: Vec<&serde_json::Value> = got.iter().filter(|r| r["code"] == 200).collect();
    assert_eq!(
        got.len(),
        5,
        "3 failures, then one delivery per notification: {got:?}"
    );
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0]["body"]["status"], "firing");
    assert_eq!(ok[1]["body"]["status"], "resolved");
    assert_eq!(ok[0]["body"]["labels"]["server"], "srv1");
    assert!(got.iter().all(|r| r["auth"] == "Bearer s3cret"));
    let exec = received(&exec_out);
    assert_eq!(exec.len(), 2, "{exec:?}");
    assert!(l.stop().0.success());
    // Nothing left failing.
    let a = l.json("alerts");
    assert!(
        a["failed_deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "delivered"),
        "{a}"
    );
}

/// kill -9 between "alert fired" and "delivered": after a restart the
/// alert is delivered.
#[test]
fn an_alert_fired_before_a_kill_9_is_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hook.jsonl");
    let rules = rules_file(
        dir.path(),
        "[delivery]\nretry_min = \"50ms\"\nretry_max = \"100ms\"\n\n[[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:27891/hook\"\ntimeout = \"1s\"\n",
    );
    let db = dir.path().join("live.db");
    let args = [
        "--udp",
        "127.0.0.1:27892",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ];
    // The webhook is down: the alert waits in the outbox.
    let mut l = Listen::start_with(tempfile::tempdir().unwrap(), db.clone(), &args);
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(DOWN_AT.as_bytes(), "127.0.0.1:27892")
        .unwrap();
    wait_for("a failed delivery", || {
        let o = hapwatch(&["alerts", "--db", db.to_str().unwrap(), "--format", "json"]);
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .map(|v| !v["failed_deliveries"].as_array().unwrap().is_empty())
            .unwrap_or(false)
    });
    l.child.kill().unwrap(); // SIGKILL
    l.child.wait().unwrap();
    let _hook = Hook::start(27891, 0, &log);
    let mut l = Listen::start_with(tempfile::tempdir().unwrap(), db.clone(), &args);
    wait_for("the delivery after restart", || !received(&log).is_empty());
    let got = received(&log);
    assert_eq!(got[0]["body"]["labels"]["server"], "srv1");
    assert_eq!(got[0]["body"]["status"], "firing");
    assert!(l.stop().0.success());
}

/// A line with no time held in the reorder window at a kill -9 is read
/// again at the restart: dated then by its (new) receive time, never
/// stored as a line with no time at all.
#[test]
fn an_untimed_line_held_at_a_kill_9_gets_a_time_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let args = ["--udp", "127.0.0.1:28201", "--reorder-window", "30s"];
    let mut l = Listen::start_with(tempfile::tempdir().unwrap(), db.clone(), &args);
    let down = DOWN_AT.split_once("]: ").unwrap().1;
    let stderr = format!("[WARNING]  (8) : {down}");
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(stderr.as_bytes(), "127.0.0.1:28201")
        .unwrap();
    // Commits every 100 ms store what the window holds.
    std::thread::sleep(Duration::from_secs(1));
    l.child.kill().unwrap(); // SIGKILL
    l.child.wait().unwrap();
    let restarted = now_ms();
    let mut l = Listen::start_with(tempfile::tempdir().unwrap(), db.clone(), &args);
    assert!(l.stop().0.success());
    let h = l.json("history");
    let ts = h["transitions"].as_array().unwrap();
    assert_eq!(ts.len(), 1, "{h}");
    let at = ts[0]["at"]
        .as_str()
        .unwrap_or_else(|| panic!("no time: {h}"));
    let at = hapwatch::time::parse_user_time(at).unwrap();
    assert!(at >= restarted && at <= now_ms(), "{h}");
}

/// A real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1: the
/// alert arrives with its labels through Alertmanager's own API, and
/// resolves.
#[test]
fn alertmanager_receives_and_resolves() {
    let am = Alertmanager::start(27893);
    let get_alerts = || am.alerts();
    let dir2 = tempfile::tempdir().unwrap();
    let rules = rules_file(
        dir2.path(),
        "stats_url = \"http://127.0.0.1:8404/stats\"\n[delivery]\nretry_min = \"100ms\"\n\n[[sinks]]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:27893\"\ngenerator_url = \"http://127.0.0.1:8404/stats\"\n",
    );
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27894",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    // Times of now: Alertmanager treats an alert that ended long ago as
    // resolved on arrival.
    let now = chrono::Utc::now();
    let line = line_at;
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(
        line(now, "Server be_app/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.").as_bytes(),
        "127.0.0.1:27894",
    )
    .unwrap();
    let mut firing = serde_json::Value::Null;
    wait_for("the alert in Alertmanager", || {
        let a = get_alerts();
        match a
            .as_array()
            .and_then(|a| a.iter().find(|x| x["labels"]["server"] == "srv1"))
        {
            Some(x) => {
                firing = x.clone();
                true
            }
            None => false,
        }
    });
    assert_eq!(
        firing["labels"]["alertname"],
        "haproxy_backend_server_status"
    );
    assert_eq!(firing["labels"]["backend"], "be_app");
    assert_eq!(firing["labels"]["host"], "lb1");
    assert_eq!(firing["labels"]["severity"], "critical");
    assert_eq!(firing["status"]["state"], "active");
    assert!(firing["annotations"]["runbook"]
        .as_str()
        .unwrap()
        .contains("http://127.0.0.1:8404/stats"));
    assert_eq!(firing["generatorURL"], "http://127.0.0.1:8404/stats");
    u.send_to(
        line(chrono::Utc::now(), "Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.").as_bytes(),
        "127.0.0.1:27894",
    )
    .unwrap();
    wait_for("the alert resolved in Alertmanager", || {
        get_alerts().as_array().is_some_and(|a| {
            !a.iter()
                .any(|x| x["labels"]["server"] == "srv1" && x["status"]["state"] == "active")
        })
    });
    assert!(l.stop().0.success());
}

/// SIGHUP reloads the rule file without dropping listeners; an invalid file
/// keeps the rules in force.
#[test]
fn sighup_reloads_rules_and_keeps_them_when_the_file_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(
        dir.path(),
        "[haproxy_backend_server_status]\nenabled = false\n",
    );
    let jsonl = dir.path().join("alerts.jsonl");
    let l = Listen::start(&[
        "--udp",
        "127.0.0.1:27981",
        "--metrics",
        "127.0.0.1:27982",
        "--rules",
        rules.to_str().unwrap(),
        "--alerts-jsonl",
        jsonl.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let down = |srv: &str, sec: u32| {
        format!("<129>Nov 24 19:00:{sec:02} haproxy[1]: Server be_app/{srv} is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.")
    };
    let alerted = || {
        std::fs::read_to_string(&jsonl)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["labels"]["server"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    u.send_to(down("srv1", 1).as_bytes(), "127.0.0.1:27981")
        .unwrap();
    wait_metric(27982, "hapwatch_lines_total", 1);
    std::fs::write(&rules, "[haproxy_backend_server_status]\nenabled = maybe\n").unwrap();
    unsafe_kill(l.child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(300));
    u.send_to(down("srv2", 2).as_bytes(), "127.0.0.1:27981")
        .unwrap();
    wait_metric(27982, "hapwatch_lines_total", 2);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        alerted().is_empty(),
        "the disabled rule stayed disabled: {:?}",
        alerted()
    );
    std::fs::write(&rules, "[haproxy_backend_server_status]\nenabled = true\n").unwrap();
    unsafe_kill(l.child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(300));
    u.send_to(down("srv3", 3).as_bytes(), "127.0.0.1:27981")
        .unwrap();
    wait_for("the alert under the reloaded rules", || {
        alerted() == ["srv3"]
    });
}

/// The repeat interval: a firing alert is notified again while it fires,
/// and no more once resolved.
#[test]
fn a_firing_alert_is_notified_again_after_the_repeat_interval() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hook.jsonl");
    let _hook = Hook::start(27883, 0, &log);
    let rules = rules_file(
        dir.path(),
        "[delivery]\nrepeat_interval = \"1s\"\n\n[[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:27883/hook\"\n",
    );
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27884",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(DOWN_AT.as_bytes(), "127.0.0.1:27884").unwrap();
    let firing = || {
        received(&log)
            .iter()
            .filter(|r| r["body"]["status"] == "firing")
            .count()
    };
    wait_for("a repeated notification", || firing() >= 2);
    u.send_to(UP_AT.as_bytes(), "127.0.0.1:27884").unwrap();
    wait_for("the resolution", || {
        received(&log)
            .iter()
            .any(|r| r["body"]["status"] == "resolved")
    });
    let after = firing();
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(firing(), after, "notified again after it resolved");
    assert!(l.stop().0.success());
}

/// The TOML config file gives listen its options; flags win over it.
#[test]
fn a_config_file_sets_the_listeners_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("listen.toml");
    std::fs::write(
        &cfg,
        "udp = [\"127.0.0.1:27911\"]\nmetrics = \"127.0.0.1:27999\"\nmax_frame = 1000\nreorder_window = \"0s\"\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    let l = Listen::start(&["--config", &cfg, "--metrics", "127.0.0.1:27912"]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(&vec![b'x'; 2000], "127.0.0.1:27911").unwrap(); // over max_frame
    u.send_to(DOWN_AT.as_bytes(), "127.0.0.1:27911").unwrap();
    let m = wait_metric(27912, "hapwatch_lines_total", 1);
    assert_eq!(
        metric(
            &m,
            "hapwatch_frames_oversized_total{listener=\"udp://127.0.0.1:27911\"}"
        ),
        1,
        "{m}"
    );
    drop(l);
}

/// `[[rules]]`: more rules with their own names, of any degradation kind,
/// filtered by globs and with their own templates.
#[test]
fn named_rules_of_a_kind_are_evaluated_with_their_own_options() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(
        dir.path(),
        "[[rules]]\nname = \"api_slow\"\nkind = \"latency\"\nbackend = \"be_app\"\nthreshold_ms = 150\npercentile = 0.99\nmin_requests = 5\nfor = \"0s\"\nsummary = \"{server} slow for the API team\"\n\n[[rules]]\nname = \"tcp_slow\"\nkind = \"latency\"\nbackend = \"be_nothing\"\nthreshold_ms = 1\nmin_requests = 1\nfor = \"0s\"\n",
    );
    let r = analyze_json(&[
        "--alerts",
        "--rules",
        rules.to_str().unwrap(),
        fixture("haproxy-udp-rfc3164.log").to_str().unwrap(),
    ]);
    let named: Vec<&serde_json::Value> = r["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "api_slow" || a["rule"] == "tcp_slow")
        .collect();
    assert_eq!(named.len(), 2, "{named:?}");
    assert_eq!(named[0]["labels"]["alertname"], "api_slow");
    assert_eq!(named[0]["labels"]["server"], "srv1");
    assert_eq!(named[0]["summary"], "srv1 slow for the API team");
    assert_eq!(named[1]["status"], "resolved");
    // Names must be distinct and not those of the built-in rules.
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"haproxy_server_errors\"\nkind = \"errors\"\n",
    )
    .unwrap();
    let out = hapwatch(&["check-config", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("its own name"));
}

/// haproxy_server_flapping: four transitions of a server within ten
/// minutes fire it; a quiet window resolves it at the next transition.
#[test]
fn a_flapping_server_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("flap.log");
    let down = "Server be_app/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    let up = "Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.";
    let mut text = String::new();
    for (t, m) in [
        ("10:00:00", down),
        ("10:01:00", up),
        ("10:02:00", down),
        ("10:03:00", up),
        ("10:30:00", down),
    ] {
        text.push_str(&format!("2026-11-24T{t}+00:00 lb1 haproxy[1]: {m}\n"));
    }
    std::fs::write(&log, text).unwrap();
    let r = analyze_json(&["--alerts", log.to_str().unwrap()]);
    let flap: Vec<(&str, &str)> = r["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "haproxy_server_flapping")
        .map(|a| {
            (
                a["status"].as_str().unwrap(),
                a["ends_at"].as_str().or(a["starts_at"].as_str()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flap,
        vec![
            ("firing", "2026-11-24T10:03:00.000Z"),
            // The 10-minute window after the last change, not the next
            // change.
            ("resolved", "2026-11-24T10:13:00.000Z")
        ]
    );
}

/// A sink that always fails: the delivery is dead-lettered after
/// max_attempts and shown by `hapwatch alerts`; ingestion goes on.
#[test]
fn a_delivery_that_keeps_failing_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hook.jsonl");
    let _hook = Hook::start(27885, 1000, &log);
    let rules = rules_file(
        dir.path(),
        "[delivery]\nretry_min = \"20ms\"\nretry_max = \"40ms\"\nmax_attempts = 3\n\n[[sinks]]\nkind = \"webhook\"\nname = \"broken\"\nurl = \"http://127.0.0.1:27885/hook\"\n",
    );
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27886",
        "--metrics",
        "127.0.0.1:27887",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(DOWN_AT.as_bytes(), "127.0.0.1:27886").unwrap();
    let db = l.db.clone();
    wait_for("a dead letter", || {
        let o = hapwatch(&["alerts", "--db", db.to_str().unwrap(), "--format", "json"]);
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .map(|v| {
                v["failed_deliveries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["state"] == "dead")
            })
            .unwrap_or(false)
    });
    assert_eq!(received(&log).len(), 3, "exactly max_attempts tries");
    // Ingestion went on meanwhile.
    u.send_to(UP_AT.as_bytes(), "127.0.0.1:27886").unwrap();
    wait_metric(27887, "hapwatch_lines_total", 2);
    let t = hapwatch(&["alerts", "--db", db.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&t.stdout);
    assert!(
        table.contains("FAILED DELIVERIES") && table.contains("dead") && table.contains("HTTP 500"),
        "{table}"
    );
    assert!(l.stop().0.success());
}

/// Live, a rule whose window gets no new events still closes: after
/// `--idle-grace` of silence event time follows the wall clock. The minute
/// of errors below is only judged once nothing has arrived for the grace;
/// its alert carries the log's times, not the wall clock's.
#[test]
fn a_quiet_minute_closes_on_the_wall_clock_after_the_idle_grace() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let rules = rules_file(
        dir.path(),
        "[haproxy_server_errors]\nmin_requests = 5\nfor = \"0s\"\n\n[haproxy_server_latency]\nenabled = false\n",
    );
    let mut l = Listen::start(&[
        "--tcp",
        "127.0.0.1:27888",
        "--rules",
        rules.to_str().unwrap(),
        "--alerts-jsonl",
        jsonl.to_str().unwrap(),
        "--reorder-window",
        "0s",
        "--idle-grace",
        "2s",
    ]);
    let request = |srv: &str, at: &str, status: u16| {
        format!("<134>Nov 24 10:{at} haproxy[1]: 127.0.0.1:34392 [24/Nov/2026:10:{at}.000] fe_http be_app/{srv} 0/0/0/5/5 {status} 127 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n")
    };
    let mut text = String::new();
    for s in 10..30 {
        text.push_str(&request("srv1", &format!("00:{s}"), 503));
    }
    // The last line: event time reaches 10:01:29, a second short of the
    // 10:00 minute's closing time (its end plus 30 s for late requests).
    text.push_str(&request("srv2", "01:29", 200));
    let mut c = TcpStream::connect("127.0.0.1:27888").unwrap();
    c.write_all(text.as_bytes()).unwrap();
    drop(c);
    let sent = Instant::now();
    let alerts = || {
        received(&jsonl)
            .into_iter()
            .filter(|a| a["rule"] == "haproxy_server_errors")
            .collect::<Vec<_>>()
    };
    // Within the grace: nothing (event time has not reached the close).
    std::thread::sleep(Duration::from_millis(1_200));
    assert!(
        alerts().is_empty(),
        "judged before the grace: {:?}",
        alerts()
    );
    wait_for("the minute to close on the wall clock", || {
        !alerts().is_empty()
    });
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(2_000) && waited < Duration::from_secs(6),
        "closed after {waited:?}"
    );
    let a = &alerts()[0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["labels"]["server"], "srv1");
    // Firing from the end of the window that showed it, in event time.
    assert_eq!(a["starts_at"], "2026-11-24T10:01:00.000Z");
    assert!(l.stop().0.success());
}

/// The page does not wait for the reorder window: a DOWN line's alert is
/// announced as the line arrives (here the window is 30 s), and when the
/// window lets the line into the state (at SIGTERM) it is not announced a
/// second time.
#[test]
fn a_down_alert_is_announced_before_the_reorder_window_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27889",
        "--metrics",
        "127.0.0.1:27890",
        "--alerts-jsonl",
        jsonl.to_str().unwrap(),
        "--reorder-window",
        "30s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(DOWN_AT.as_bytes(), "127.0.0.1:27889").unwrap();
    wait_for("the alert, while the line is still held", || {
        !received(&jsonl).is_empty()
    });
    let m = metrics(27890);
    assert_eq!(metric(&m, "hapwatch_alert_previews_total"), 1, "{m}");
    // Still held: the state has not seen it yet.
    let status = l.json("status");
    assert!(
        !status.to_string().contains("\"DOWN\""),
        "applied before the window: {status}"
    );
    assert!(l.stop().0.success());
    let alerts = received(&jsonl);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["status"], "firing");
    assert_eq!(alerts[0]["labels"]["server"], "srv1");
    assert_eq!(alerts[0]["starts_at"], "2026-11-24T19:00:00.000Z");
    // The ordered path applied it at the stop: state and history have it.
    let h = l.json("history");
    assert!(h.to_string().contains("\"DOWN\""), "{h}");
    let stored = l.json("alerts");
    assert_eq!(
        stored["alerts"].as_array().map(|a| a.len()),
        Some(1),
        "{stored}"
    );
}

/// A followed file with a line far over 64 KiB, written in pieces across
/// polls: the line is dropped whole and counted (its tail is not taken for
/// a line of its own); the lines around it are read.
#[test]
fn a_followed_file_drops_and_counts_an_endless_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("haproxy.log");
    std::fs::write(&log, b"").unwrap();
    let lines = lines_of("rsyslog-file.log");
    let mut l = Listen::start(&[
        "--follow",
        log.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:27832",
    ]);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&lines[0]).unwrap();
    f.write_all(b"\n").unwrap();
    // 3 x 40 KiB without a line feed, each seen by a poll of its own.
    for _ in 0..3 {
        f.write_all(&vec![b'x'; 40 * 1024]).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(450));
    }
    f.write_all(b"tail of the endless line\n").unwrap();
    f.write_all(&lines[1]).unwrap();
    f.write_all(b"\n").unwrap();
    let name = format!("listener=\"file://{}\"", log.display());
    let m = wait_metric(27832, "hapwatch_lines_total", 2);
    std::thread::sleep(Duration::from_millis(500));
    let m2 = metrics(27832);
    assert_eq!(metric(&m2, "hapwatch_lines_total"), 2, "{m}");
    assert_eq!(
        metric(&m2, &format!("hapwatch_frames_oversized_total{{{name}}}")),
        1,
        "{m2}"
    );
    assert_eq!(
        metric(&m2, &format!("hapwatch_messages_received_total{{{name}}}")),
        2,
        "{m2}"
    );
    // Applied: nothing waits in the queue (it read -2 before followed
    // frames were counted in).
    let depth = m2
        .lines()
        .find(|l| l.starts_with("hapwatch_queue_depth"))
        .unwrap();
    assert_eq!(depth, "hapwatch_queue_depth{} 0", "{m2}");
    assert!(l.stop().0.success());
}

/// The deliveries `hapwatch alerts` lists as failed.
fn failed_deliveries(db: &std::path::Path) -> Vec<serde_json::Value> {
    let o = hapwatch(&["alerts", "--db", db.to_str().unwrap(), "--format", "json"]);
    serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .ok()
        .and_then(|v| v["failed_deliveries"].as_array().cloned())
        .unwrap_or_default()
}

/// A 400 says the request itself is refused: trying again cannot help. It
/// is dead-lettered at the first answer, with the receiver's reason.
#[test]
fn a_webhook_answering_400_is_dead_lettered_at_once_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hook.jsonl");
    let _hook = Hook::start_failing(27951, 1000, &log, 400, "start time must be before end time");
    let rules = rules_file(
        dir.path(),
        "[delivery]\nretry_min = \"20ms\"\nretry_max = \"40ms\"\nmax_attempts = 5\n\n[[sinks]]\nkind = \"webhook\"\nname = \"strict\"\nurl = \"http://127.0.0.1:27951/hook\"\n",
    );
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27952",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(DOWN_AT.as_bytes(), "127.0.0.1:27952")
        .unwrap();
    let db = l.db.clone();
    wait_for("a dead letter", || {
        failed_deliveries(&db).iter().any(|d| d["state"] == "dead")
    });
    std::thread::sleep(Duration::from_millis(400)); // 10 retry intervals
    assert_eq!(received(&log).len(), 1, "a 400 is not retried");
    let d = failed_deliveries(&db);
    assert_eq!(d[0]["attempts"], 1, "{d:?}");
    assert_eq!(
        d[0]["last_error"], "HTTP 400: start time must be before end time",
        "{d:?}"
    );
    let t = hapwatch(&["alerts", "--db", db.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&t.stdout).contains("start time must be before end time"));
    assert!(l.stop().0.success());
}

/// The sink is down when the server goes DOWN and already UP again when
/// the firing's retry comes due: the resolution waits for its firing.
#[test]
fn after_an_outage_a_sink_gets_firing_then_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hook.jsonl");
    // One failure, then the firing's retry is due 2 s later (1 s doubled).
    let _hook = Hook::start(27953, 1, &log);
    let rules = rules_file(
        dir.path(),
        "[delivery]\nretry_min = \"1s\"\nretry_max = \"2s\"\n\n[[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:27953/hook\"\n",
    );
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27954",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(DOWN_AT.as_bytes(), "127.0.0.1:27954").unwrap();
    wait_for("the first, failed, attempt", || received(&log).len() == 1);
    u.send_to(UP_AT.as_bytes(), "127.0.0.1:27954").unwrap();
    wait_for("both delivered", || {
        received(&log).iter().filter(|r| r["code"] == 200).count() >= 2
    });
    let ok: Vec<String> = received(&log)
        .iter()
        .filter(|r| r["code"] == 200)
        .map(|r| r["body"]["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ok, ["firing", "resolved"]);
    assert!(l.stop().0.success());
}

/// MAINT and DRAIN are recorded at info: no sink is paged with them (the
/// Alertmanager re-post included) unless it asks with `min_severity`.
#[test]
fn info_alerts_reach_only_the_sinks_that_ask_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let am_log = dir.path().join("am.jsonl");
    let info_log = dir.path().join("info.jsonl");
    // A stand-in Alertmanager: it records every POST.
    let _am = Hook::start(27955, 0, &am_log);
    let _info = Hook::start(27956, 0, &info_log);
    let rules = rules_file(
        dir.path(),
        "[delivery]\nrepeat = \"200ms\"\n\n\
         [[sinks]]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:27955\"\n\n\
         [[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:27956/all\"\nmin_severity = \"info\"\n",
    );
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27957",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let maint = "<133>Nov 24 19:00:00 haproxy[1]: Server be_app/srv2 is going DOWN for maintenance. 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    u.send_to(maint.as_bytes(), "127.0.0.1:27957").unwrap();
    wait_for("the info record at the sink that asked", || {
        !received(&info_log).is_empty()
    });
    std::thread::sleep(Duration::from_millis(1200)); // six re-post periods
    assert_eq!(received(&am_log).len(), 0, "{:?}", received(&am_log));
    assert_eq!(received(&info_log)[0]["body"]["severity"], "info");
    // A critical alert goes everywhere, and is re-posted while it fires.
    u.send_to(DOWN_AT.as_bytes(), "127.0.0.1:27957").unwrap();
    wait_for("re-posts of the critical alert", || {
        received(&am_log).len() >= 3
    });
    assert!(received(&am_log)
        .iter()
        .all(|r| r["body"][0]["labels"]["severity"] == "critical"));
    assert!(l.stop().0.success());
}

/// Debian's prometheus-alertmanager on 127.0.0.1:PORT, alone (no cluster),
/// killed when dropped.
struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start(port: u16) -> Alertmanager {
        require_tools(&["prometheus-alertmanager"]);
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("am.yml");
        std::fs::write(
            &cfg,
            "route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n  - name: none\n",
        )
        .unwrap();
        let mut child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(s) = child.try_wait().unwrap() {
                panic!("alertmanager exited: {s:?}");
            }
            assert!(Instant::now() < deadline, "alertmanager did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Alertmanager {
            child,
            port,
            _dir: dir,
        }
    }

    /// GET /api/v2/alerts: what Alertmanager holds (resolved ones are not
    /// listed).
    fn alerts(&self) -> serde_json::Value {
        let out = http_get(self.port, "/api/v2/alerts", "");
        let body = out.split_once("\r\n\r\n").map_or("[]", |(_, b)| b);
        serde_json::from_str(body).unwrap_or(serde_json::json!([]))
    }

    fn active(&self, server: &str) -> bool {
        self.alerts().as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["labels"]["server"] == server && x["status"]["state"] == "active")
        })
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RFC 5424 line stamped `t` (Alertmanager judges alerts against its own
/// clock, so these tests send times of now).
fn line_at(t: chrono::DateTime<chrono::Utc>, msg: &str) -> String {
    format!(
        "<129>1 {} lb1 haproxy 1 - - {msg}",
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    )
}

/// The real Alertmanager is stopped while a server goes DOWN and comes back
/// UP, then started again: it gets the firing, then the resolution, and
/// holds nothing active (delivered the other way round, the late firing
/// would stay active until its own end).
#[test]
fn alertmanager_restarted_mid_incident_ends_with_nothing_active() {
    let am = Alertmanager::start(27958);
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(
        dir.path(),
        "[delivery]\nretry_min = \"500ms\"\nretry_max = \"4s\"\n\n[[sinks]]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:27958\"\ntimeout = \"1s\"\n",
    );
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27959",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    drop(am); // the outage starts
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(
        line_at(chrono::Utc::now(), "Server be_app/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.").as_bytes(),
        "127.0.0.1:27959",
    )
    .unwrap();
    let db = l.db.clone();
    // Two failed attempts: the firing's next retry is 2 s away, the
    // resolution's first retry (after its own failure) only 1 s.
    wait_for("two failed attempts", || {
        failed_deliveries(&db)
            .first()
            .is_some_and(|d| d["attempts"].as_u64() >= Some(2))
    });
    u.send_to(
        line_at(chrono::Utc::now(), "Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.").as_bytes(),
        "127.0.0.1:27959",
    )
    .unwrap();
    // Stored (commits are every 100 ms) and, without ordering, tried once.
    std::thread::sleep(Duration::from_millis(300));
    let am = Alertmanager::start(27958); // the outage ends
    wait_for("every delivery made", || {
        failed_deliveries(&db)
            .iter()
            .all(|d| d["state"] == "delivered")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!am.active("srv1"), "{}", am.alerts());
    assert!(l.stop().0.success());
}

/// Requests of be_app/srv1 in minute 19:00 (HAProxy's own UDP form).
fn requests_at(second: u32, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("<134>Nov 24 19:00:{second:02} haproxy[1]: 127.0.0.1:{} [24/Nov/2026:19:00:{second:02}.{i:03}] fe be_app/srv1 0/0/0/5/5 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"", 1000 + i))
        .collect()
}

/// What the database holds: requests in rollups, transitions, alert events.
fn stored(db: &std::path::Path) -> (i64, i64, Vec<(String, String)>) {
    let c = rusqlite::Connection::open(db).unwrap();
    let requests = c
        .query_row("SELECT COALESCE(SUM(requests), 0) FROM rollups", [], |r| {
            r.get(0)
        })
        .unwrap();
    let transitions = c
        .query_row("SELECT COUNT(*) FROM transitions", [], |r| r.get(0))
        .unwrap();
    let mut q = c
        .prepare("SELECT rule, status FROM alerts ORDER BY starts_ms, rule")
        .unwrap();
    let alerts = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (requests, transitions, alerts)
}

fn jsonl_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Another client holds the database's write lock for longer than the busy
/// timeout: commits fail, the page is announced anyway, and once the lock
/// is released every request, transition and alert is stored.
#[test]
fn a_locked_database_delays_the_store_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27961",
        "--metrics",
        "127.0.0.1:27962",
        "--reorder-window",
        "0s",
        "--alerts-jsonl",
        jsonl.to_str().unwrap(),
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |lines: &[String]| {
        for x in lines {
            u.send_to(x.as_bytes(), "127.0.0.1:27961").unwrap();
        }
    };
    send(&requests_at(1, 40));
    wait_metric(27962, "hapwatch_lines_total", 40);
    wait_metric(27962, "hapwatch_db_batches_total", 2);
    // The lock: an immediate transaction of another connection.
    let mut other = rusqlite::Connection::open(&l.db).unwrap();
    let tx = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    send(&[DOWN_AT.replace("19:00:00", "19:00:02")]);
    send(&requests_at(3, 40));
    // Announced while the database refuses it (busy timeout 5 s).
    wait_for("the page while the database is locked", || {
        !jsonl_lines(&jsonl).is_empty()
    });
    let m = wait_metric(27962, "hapwatch_db_errors_total", 1);
    assert!(metric(&m, "hapwatch_db_unstored_rows") > 0, "{m}");
    std::thread::sleep(Duration::from_millis(1500)); // past the busy timeout
    tx.rollback().unwrap();
    drop(other);
    let before = metric(&metrics(27962), "hapwatch_db_batches_total");
    wait_metric(27962, "hapwatch_db_batches_total", before + 2);
    let m = wait_metric(27962, "hapwatch_lines_total", 81);
    assert_eq!(metric(&m, "hapwatch_db_unstored_rows"), 0, "{m}");
    send(&[UP_AT.replace("19:00:07", "19:00:09")]);
    wait_metric(27962, "hapwatch_lines_total", 82);
    let (status, _) = l.stop();
    assert!(status.success(), "{}", l.stderr());
    assert!(
        l.stderr().contains("accepts writes again"),
        "{}",
        l.stderr()
    );
    let (requests, transitions, alerts) = stored(&l.db);
    assert_eq!(requests, 80, "every request in the rollups");
    assert_eq!(transitions, 2);
    assert_eq!(
        alerts,
        [(
            "haproxy_backend_server_status".to_string(),
            "resolved".to_string()
        )]
    );
    // Announced once each: the firing early, the resolution after.
    let said: Vec<String> = jsonl_lines(&jsonl)
        .iter()
        .map(|a| a["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(said, ["firing", "resolved"]);
}

/// Runs `sh -c` as root, asserting success.
fn sh(cmd: &str) {
    let s = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(s.success(), "{cmd}");
}

/// A small tmpfs of its own, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        sh(&format!(
            "mount -t tmpfs -o size={size} tmpfs {}",
            at.display()
        ));
        Tmpfs(at.to_path_buf())
    }

    fn fill(&self) {
        // dd stops at "No space left on device": that is the point.
        let _ = Command::new("dd")
            .args([
                "if=/dev/zero",
                &format!("of={}", self.0.join("filler").display()),
                "bs=4096",
            ])
            .stderr(Stdio::null())
            .status();
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The database's file system fills up and is freed: the pages go out
/// meanwhile and nothing is lost. Stopped while the disk is full, listen
/// says what was not stored and exits 1.
#[test]
fn a_full_disk_delays_the_store_and_a_stop_while_full_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&dir.path().join("fs"), "4m");
    let jsonl = dir.path().join("alerts.jsonl");
    let db = dir.path().join("fs/live.db");
    let mut l = Listen::start_with(
        tempfile::tempdir().unwrap(),
        db.clone(),
        &[
            "--udp",
            "127.0.0.1:27963",
            "--metrics",
            "127.0.0.1:27964",
            "--reorder-window",
            "0s",
            "--alerts-jsonl",
            jsonl.to_str().unwrap(),
        ],
    );
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |lines: &[String]| {
        for x in lines {
            u.send_to(x.as_bytes(), "127.0.0.1:27963").unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    wait_metric(27964, "hapwatch_db_batches_total", 1);
    // Full.
    fs.fill();
    let mut downs = Vec::new();
    for i in 0..100 {
        downs.push(
            DOWN_AT
                .replace("be_app/srv1", &format!("be_app/s{i}"))
                .replace("19:00:00", "19:00:10"),
        );
    }
    send(&downs);
    send(&requests_at(11, 50));
    wait_metric(27964, "hapwatch_lines_total", 150);
    wait_metric(27964, "hapwatch_db_errors_total", 1);
    wait_for("100 pages while the disk is full", || {
        jsonl_lines(&jsonl).len() >= 100
    });
    fs.free();
    wait_for("the store after the disk was freed", || {
        stored(&db).1 == 100
    });
    wait_metric(27964, "hapwatch_db_unstored_rows", 0);
    assert_eq!(metric(&metrics(27964), "hapwatch_db_unstored_rows"), 0);
    let (requests, transitions, alerts) = stored(&db);
    assert_eq!((requests, transitions), (50, 100));
    assert_eq!(alerts.len(), 100);
    // Full again, every server back UP, and stopped while it is full.
    fs.fill();
    let ups: Vec<String> = (0..100)
        .map(|i| {
            UP_AT
                .replace("be_app/srv1", &format!("be_app/s{i}"))
                .replace("19:00:07", "19:00:30")
        })
        .collect();
    send(&ups);
    wait_metric(27964, "hapwatch_lines_total", 250);
    let errors = metric(&metrics(27964), "hapwatch_db_errors_total");
    wait_metric(27964, "hapwatch_db_errors_total", errors + 1);
    let (status, _) = l.stop();
    assert_eq!(status.code(), Some(1), "{}", l.stderr());
    let said = l.stderr();
    assert!(said.contains("not stored: 100 transitions"), "{said}");
    assert!(said.contains("100 alert events"), "{said}");
}

/// The database's files turn read-only (immutable: root ignores modes) and
/// writable again: the store is delayed, nothing is lost.
#[test]
fn a_read_only_database_delays_the_store_and_loses_nothing() {
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27965",
        "--metrics",
        "127.0.0.1:27966",
        "--reorder-window",
        "0s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(DOWN_AT.as_bytes(), "127.0.0.1:27965").unwrap();
    wait_for("the DOWN stored", || stored(&l.db).1 == 1);
    let files: Vec<String> = ["", "-wal", "-shm"]
        .iter()
        .map(|x| format!("{}{x}", l.db.display()))
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    sh(&format!("chattr +i {}", files.join(" ")));
    let errors = metric(&metrics(27966), "hapwatch_db_errors_total");
    for x in requests_at(5, 30) {
        u.send_to(x.as_bytes(), "127.0.0.1:27965").unwrap();
    }
    u.send_to(UP_AT.as_bytes(), "127.0.0.1:27965").unwrap();
    wait_metric(27966, "hapwatch_db_errors_total", errors + 1);
    sh(&format!("chattr -i {}", files.join(" ")));
    wait_for("the store once writable", || stored(&l.db).1 == 2);
    wait_metric(27966, "hapwatch_db_unstored_rows", 0);
    assert!(l.stop().0.success(), "{}", l.stderr());
    let (requests, transitions, alerts) = stored(&l.db);
    assert_eq!((requests, transitions), (30, 2));
    assert_eq!(
        alerts,
        [("haproxy_backend_server_status".into(), "resolved".into())]
    );
}

/// Live, a flapping alert resolves when its window passes with no change,
/// on the idle clock once the log goes quiet, at the window's end in event
/// time.
#[test]
fn live_flapping_resolves_on_the_idle_clock_at_the_end_of_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let rules = rules_file(
        dir.path(),
        "[haproxy_server_flapping]\ntransitions = 4\nwindow = \"4s\"\n",
    );
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:27967",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
        "--idle-grace",
        "500ms",
        "--alerts-jsonl",
        jsonl.to_str().unwrap(),
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, line) in [DOWN_AT, UP_AT, DOWN_AT, UP_AT].iter().enumerate() {
        let stamped = line
            .replace("19:00:00", &format!("19:00:0{i}"))
            .replace("19:00:07", &format!("19:00:0{i}"));
        u.send_to(stamped.as_bytes(), "127.0.0.1:27967").unwrap();
    }
    let flapping = || -> Vec<(String, String)> {
        jsonl_lines(&jsonl)
            .iter()
            .filter(|a| a["rule"] == "haproxy_server_flapping")
            .map(|a| {
                let at = a["ends_at"].as_str().or(a["starts_at"].as_str()).unwrap();
                (a["status"].as_str().unwrap().into(), at[11..].into())
            })
            .collect()
    };
    wait_for("the flapping alert", || !flapping().is_empty());
    let fired = Instant::now();
    wait_for("its resolution", || flapping().len() == 2);
    // 4 s of window + 0.5 s of grace, less what passed before firing.
    assert!(fired.elapsed() >= Duration::from_millis(3500));
    assert_eq!(
        flapping(),
        [
            ("firing".to_string(), "19:00:03.000Z".to_string()),
            ("resolved".to_string(), "19:00:07.000Z".to_string())
        ]
    );
    assert!(l.stop().0.success());
}

/// A degradation alert firing when listen is stopped resolves after the
/// restart, once its condition no longer holds (its condition and `for`
/// timers are restored with it).
#[test]
fn a_degradation_alert_firing_at_a_restart_resolves_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let jsonl = dir.path().join("alerts.jsonl");
    let rules = rules_file(
        dir.path(),
        "[haproxy_server_errors]\nmin_requests = 5\nwindow = \"1m\"\nfor = \"2m\"\n\n[haproxy_server_latency]\nenabled = false\n",
    );
    let args = [
        "--tcp",
        "127.0.0.1:27968",
        "--rules",
        rules.to_str().unwrap(),
        "--alerts-jsonl",
        jsonl.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ];
    let request = |srv: &str, at: &str, status: u16| {
        format!("<134>Nov 24 10:{at} haproxy[1]: 127.0.0.1:34392 [24/Nov/2026:10:{at}.000] fe_http be_app/{srv} 0/0/0/5/5 {status} 127 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n")
    };
    let send = |text: &str| {
        let mut c = TcpStream::connect("127.0.0.1:27968").unwrap();
        c.write_all(text.as_bytes()).unwrap();
    };
    let errors = || {
        received(&jsonl)
            .into_iter()
            .filter(|a| a["rule"] == "haproxy_server_errors")
            .map(|a| {
                let at = a["ends_at"].as_str().or(a["starts_at"].as_str()).unwrap();
                format!("{} {}", a["status"].as_str().unwrap(), &at[11..19])
            })
            .collect::<Vec<_>>()
    };
    // Two minutes of 503s: firing at 10:02, when minute 10:01 closes.
    let mut l = Listen::start_with(tempfile::tempdir().unwrap(), db.clone(), &args);
    let mut text = String::new();
    for m in ["00", "01"] {
        for s in 10..30 {
            text.push_str(&request("srv1", &format!("{m}:{s}"), 503));
        }
    }
    text.push_str(&request("srv2", "02:31", 200));
    send(&text);
    wait_for("the errors alert", || !errors().is_empty());
    assert!(l.stop().0.success());
    assert_eq!(errors(), ["firing 10:02:00"], "still firing at the stop");
    // After the restart: a clean minute, and the condition has been clear
    // for its two minutes at 10:04.
    let mut l = Listen::start_with(tempfile::tempdir().unwrap(), db.clone(), &args);
    let mut text = String::new();
    for s in 10..30 {
        text.push_str(&request("srv1", &format!("03:{s}"), 200));
    }
    text.push_str(&request("srv2", "04:31", 200));
    send(&text);
    wait_for("the resolution", || errors().len() == 2);
    assert_eq!(errors(), ["firing 10:02:00", "resolved 10:04:00"]);
    assert!(l.stop().0.success());
    let active = hapwatch(&[
        "alerts",
        "--db",
        db.to_str().unwrap(),
        "--active",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&active.stdout).unwrap();
    assert_eq!(v["alerts"].as_array().unwrap().len(), 0, "{v}");
}

/// The unix socket: not writable by every local user (0660 by default,
/// `--unix-mode`, `--unix-group`), a live instance's socket is never taken
/// over (exit 2, the first keeps receiving), a stale one is replaced.
#[test]
fn the_unix_socket_is_not_open_to_all_and_never_stolen() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("log.sock");
    let sock_s = sock.to_str().unwrap();
    let mut l = Listen::start(&["--unix", sock_s, "--metrics", "127.0.0.1:28021"]);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "default mode {mode:o}");
    // A second instance on the same path exits 2 naming it...
    let other = tempfile::tempdir().unwrap();
    let db2 = other.path().join("second.db");
    let out = hapwatch(&["listen", "--db", db2.to_str().unwrap(), "--unix", sock_s]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(sock_s) && err.contains("in use"), "{err}");
    // ...and the first still receives.
    let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
    s.send_to(DOWN_AT.as_bytes(), &sock).unwrap();
    wait_metric(28021, "hapwatch_lines_total", 1);
    // Killed, it leaves its socket behind, stale: the next run replaces
    // it, with the mode and group asked for.
    l.child.kill().unwrap();
    l.child.wait().unwrap();
    assert!(sock.exists());
    let gid = unsafe_current_gid();
    let mut l = Listen::start(&[
        "--unix",
        sock_s,
        "--unix-mode",
        "0600",
        "--unix-group",
        &gid.to_string(),
    ]);
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.gid(), gid);
    assert!(l.stop().0.success());
    // Bad values exit 2 saying what to write.
    for (args, says) in [
        (vec!["--unix-mode", "rw"], "--unix-mode rw"),
        (vec!["--unix-mode", "1777"], "--unix-mode 1777"),
        (vec!["--unix-group", "no-such-group-here"], "--unix-group"),
    ] {
        let mut all = vec!["listen", "--db", db2.to_str().unwrap(), "--unix", sock_s];
        all.extend(args);
        let out = hapwatch(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{all:?}: {err}");
    }
}

/// The test's own group id (a group the test may give its files).
fn unsafe_current_gid() -> u32 {
    let out = Command::new("id").arg("-g").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Secrets in a sink's URL (`user:password@`, query values) are never
/// shown or stored: not by `hapwatch alerts`, not in the database, not on
/// stderr. Every file hapwatch creates is 0600; a database readable by
/// others is warned about.
#[test]
fn secrets_in_sink_urls_are_never_shown_or_stored() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on 28011: every delivery fails and is listed.
    let rules = rules_file(
        dir.path(),
        "[delivery]\nretry_min = \"20ms\"\nretry_max = \"40ms\"\nmax_attempts = 2\n\n\
         [[sinks]]\nkind = \"webhook\"\nurl = \"http://ops:S3cretPass@127.0.0.1:28011/hook?token=T0kenValue&team=web\"\n\
         [[sinks]]\nkind = \"alertmanager\"\nurl = \"http://am:AmPassw0rd@127.0.0.1:28011\"\n",
    );
    let jsonl = dir.path().join("alerts.jsonl");
    let db = dir.path().join("wide.db");
    // A database created readable by others (by hand, or an old version).
    drop(rusqlite::Connection::open(&db).unwrap());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let keep = tempfile::tempdir().unwrap();
    let mut l = Listen::start_with(
        keep,
        db.clone(),
        &[
            "--udp",
            "127.0.0.1:28012",
            "--rules",
            rules.to_str().unwrap(),
            "--reorder-window",
            "0s",
            "--alerts-jsonl",
            jsonl.to_str().unwrap(),
        ],
    );
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(DOWN_AT.as_bytes(), "127.0.0.1:28012")
        .unwrap();
    wait_for("two dead letters", || {
        failed_deliveries(&db)
            .iter()
            .filter(|d| d["state"] == "dead")
            .count()
            == 2
    });
    assert!(l.stop().0.success());
    let said = l.stderr();
    assert!(said.contains("readable by other users"), "{said}");
    let shown = hapwatch(&["alerts", "--db", db.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(
        shown.contains("127.0.0.1:28011"),
        "the sink is still named: {shown}"
    );
    let mut stored = std::fs::read(&db).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("wide.db-wal")) {
        stored.extend(wal);
    }
    let stored = String::from_utf8_lossy(&stored);
    for secret in ["S3cretPass", "T0kenValue", "AmPassw0rd"] {
        assert!(!shown.contains(secret), "`alerts` shows {secret}: {shown}");
        assert!(!stored.contains(secret), "the database holds {secret}");
        assert!(!said.contains(secret), "stderr says {secret}: {said}");
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&jsonl), 0o600, "--alerts-jsonl");
}

/// A supervisor that went away (its end of the stderr pipe closed) must not
/// keep `listen` from stopping: SIGTERM still drains, commits and exits.
#[test]
fn sigterm_stops_listen_even_when_its_stderr_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hapwatch"))
        .args([
            "listen",
            "--db",
            db.to_str().unwrap(),
            "--udp",
            "127.0.0.1:27971",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "{line}");
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(DOWN_AT.as_bytes(), "127.0.0.1:27971")
        .unwrap();
    drop(err);
    std::thread::sleep(Duration::from_millis(300));
    unsafe_kill(child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running 10 s after SIGTERM with its stderr closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let h = hapwatch(&["history", "--db", db.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(v["transitions"].as_array().unwrap().len(), 1, "{v}");
}

/// Trusted time: a line dated beyond `--max-skew` past the receive time is
/// quarantined (counted, listed by `status --skewed`, not applied), and an
/// RFC 3164 line takes its year from its own host's lines, never from
/// another host's.
#[test]
fn forged_dates_and_other_hosts_years_do_not_move_state() {
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:28031",
        "--metrics",
        "127.0.0.1:28032",
        "--reorder-window",
        "0s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |s: &str| {
        u.send_to(s.as_bytes(), "127.0.0.1:28031").unwrap();
    };
    let now = chrono::Utc::now();
    send(&line_at(
        now - chrono::Duration::seconds(60),
        "Server be_app/srv1 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
    ));
    wait_metric(28032, "hapwatch_lines_total", 1);
    // The same server UP, dated 2099.
    send(&line_at(
        "2099-11-24T19:00:07Z".parse().unwrap(),
        "Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
    ));
    // And dated 1970: a load balancer booted without a clock.
    send(&line_at(
        "1970-01-01T00:00:09Z".parse().unwrap(),
        "Server be_app/srv1 is UP, reason: Layer7 check passed, code: 200, check duration: 1ms. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
    ));
    // Another host's request dated 2020 (in the past: not skewed), then an
    // RFC 3164 health line (no year) from lb2.
    send("<134>Nov 24 10:00:00 evil haproxy[9]: 10.0.0.9:4000 [24/Nov/2020:10:00:00.000] fe be_app/srv9 0/0/0/1/1 200 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"");
    send("<129>Nov 24 10:00:05 lb2 haproxy[1]: Server be_app/srv2 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.");
    let m = wait_metric(28032, "hapwatch_lines_total", 5);
    assert_eq!(metric(&m, "hapwatch_lines_skewed_total"), 2, "{m}");
    assert!(l.stop().0.success());
    let status = l.json("status");
    let state = |host: &str, srv: &str| {
        status["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["host"] == host && s["server"] == srv)
            .map(|s| (s["state"].as_str().unwrap().to_string(), s["since"].clone()))
    };
    let (st, since) = state("lb1", "srv1").unwrap();
    assert_eq!(st, "DOWN", "neither dubious UP is applied ({since})");
    let (st, since) = state("lb2", "srv2").unwrap();
    assert_eq!(st, "DOWN");
    let year = chrono::Datelike::year(&now);
    // Nov 24 resolves to this year or, early in a year, the one before.
    let since = since.as_str().unwrap().to_string();
    assert!(
        since.starts_with(&format!("{year}-11-24"))
            || since.starts_with(&format!("{}-11-24", year - 1)),
        "lb2's line takes its year from lb2 and the receive time, not from evil's 2020: {since}"
    );
    let skewed = l.json_args(&["status", "--skewed"]);
    let rows = skewed["skewed"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{skewed}");
    for year in ["2099-11-24", "1970-01-01"] {
        let row = rows
            .iter()
            .find(|r| r["event_time"].as_str().unwrap().starts_with(year))
            .unwrap_or_else(|| panic!("{year}: {skewed}"));
        assert_eq!(row["host"], "lb1");
        assert!(row["line"].as_str().unwrap().contains("is UP"));
    }
}

/// Every frame a TCP sender sends ends in exactly one count: a message,
/// oversized (shown while its connection stays open), malformed, or
/// partial (cut short by the sender closing or by the idle timeout).
/// rsyslog's file format sent LF-framed is a message, not malformed.
#[test]
fn every_frame_ends_in_exactly_one_count() {
    let _l = Listen::start(&[
        "--tcp",
        "127.0.0.1:27991",
        "--metrics",
        "127.0.0.1:27992",
        "--max-frame",
        "1024",
        "--idle-timeout",
        "500ms",
    ]);
    let tcp = "{listener=\"tcp://127.0.0.1:27991\"}";
    let count = |m: &str, what: &str| metric(m, &format!("hapwatch_{what}_total{tcp}"));
    let mut a = TcpStream::connect("127.0.0.1:27991").unwrap();
    for i in 0..5 {
        writeln!(
            a,
            "2026-11-24T10:00:0{i}+00:00 lb1 haproxy[1]: Proxy fe started."
        )
        .unwrap();
    }
    a.write_all(&vec![b'x'; 5000]).unwrap();
    a.write_all(b"\n").unwrap();
    // Counted while the connection is still open.
    let m = wait_metric(27992, &format!("hapwatch_frames_oversized_total{tcp}"), 1);
    assert_eq!(count(&m, "frames_malformed"), 0, "{m}");
    // A frame begun, then silence: closed for idleness, counted partial.
    a.write_all(b"<134>no end").unwrap();
    // Another sender closes in the middle of an octet-counted frame.
    let mut b = TcpStream::connect("127.0.0.1:27991").unwrap();
    b.write_all(b"30 <134>short").unwrap();
    drop(b);
    let m = wait_metric(27992, &format!("hapwatch_frames_partial_total{tcp}"), 2);
    let sent = 5 + 1 + 1 + 1;
    let counted = count(&m, "messages_received")
        + count(&m, "frames_oversized")
        + count(&m, "frames_malformed")
        + count(&m, "frames_partial");
    assert_eq!(counted, sent, "{m}");
    assert_eq!(count(&m, "messages_received"), 5, "{m}");
    assert_eq!(count(&m, "tcp_connections_idle_closed"), 1, "{m}");
}

/// Every byte received ends in exactly one outcome (item 9 of the
/// hostile-input issue): what TCP and UDP senders send, framing included,
/// is `hapwatch_bytes_received`, and it is the sum of
/// `hapwatch_bytes_total{outcome=...}`, each outcome holding the bytes of
/// its frames: processed, oversized (a UDP datagram by its whole length,
/// not the part read), malformed, partial, denied.
#[test]
fn every_byte_received_ends_in_exactly_one_outcome() {
    let _l = Listen::start(&[
        "--tcp",
        "127.0.0.1:28111",
        "--udp",
        "127.0.0.1:28111",
        "--metrics",
        "127.0.0.1:28112",
        "--max-frame",
        "300",
        "--allow",
        "127.0.0.1/32",
    ]);
    let good = format!("<129>Nov 30 10:00:00 lb1 haproxy[7]: {DOWN}");
    let octet = format!("{} {good}", good.len());
    // TCP: two good frames (octet-counted, LF), an oversized one of each
    // kind, a malformed length, then one cut short by the close.
    let big = "x".repeat(400);
    let tcp_parts = [
        (octet.clone(), "processed"),
        (format!("{good}\n"), "processed"),
        (format!("400 {big}"), "oversized"),
        (format!("{big}\n"), "oversized"),
        (format!("12345678901234 {good}\n"), "malformed"),
        ("40 <129>cut".to_string(), "partial"),
    ];
    let mut c = TcpStream::connect("127.0.0.1:28111").unwrap();
    for (p, _) in &tcp_parts {
        c.write_all(p.as_bytes()).unwrap();
    }
    drop(c);
    // UDP: a good datagram, an oversized one (1,000 bytes: the buffer
    // holds 300), and one from outside --allow.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(good.as_bytes(), "127.0.0.1:28111").unwrap();
    u.send_to(&[b'y'; 1000], "127.0.0.1:28111").unwrap();
    let outside = UdpSocket::bind("127.0.0.2:0").unwrap();
    outside.send_to(good.as_bytes(), "127.0.0.1:28111").unwrap();
    let udp_parts = [
        (good.len(), "processed"),
        (1000, "oversized"),
        (good.len(), "denied"),
    ];

    let mut want: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
    for (p, o) in &tcp_parts {
        *want.entry(("tcp", o)).or_default() += p.len() as u64;
    }
    for (n, o) in udp_parts {
        *want.entry(("udp", o)).or_default() += n as u64;
    }
    for proto in ["tcp", "udp"] {
        let l = format!("{proto}://127.0.0.1:28111");
        let sent: u64 = want
            .iter()
            .filter(|((p, _), _)| *p == proto)
            .map(|(_, n)| n)
            .sum();
        let m = wait_metric(
            28112,
            &format!("hapwatch_bytes_received_total{{listener=\"{l}\"}}"),
            sent,
        );
        let received = metric(
            &m,
            &format!("hapwatch_bytes_received_total{{listener=\"{l}\"}}"),
        );
        assert_eq!(received, sent, "{proto}: every byte sent is received\n{m}");
        let mut sum = 0;
        for o in [
            "processed",
            "oversized",
            "malformed",
            "partial",
            "denied",
            "dropped",
        ] {
            let got = metric(
                &m,
                &format!("hapwatch_bytes_total{{listener=\"{l}\",outcome=\"{o}\"}}"),
            );
            let expected = want.get(&(proto, o)).copied().unwrap_or(0);
            assert_eq!(got, expected, "{proto} {o}\n{m}");
            sum += got;
        }
        assert_eq!(sum, received, "{proto}: the outcomes add up\n{m}");
    }
}

/// A TCP connection from `from` (an address of 127.0.0.0/8) to `to`.
fn connect_from(from: &str, to: &str) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(
        &format!("{from}:0")
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )?;
    s.connect(&to.parse::<std::net::SocketAddr>().unwrap().into())?;
    Ok(s.into())
}

/// One source cannot take every TCP slot: 5,000 dribbling connections
/// from one address (and a hundred from ten others, holding every slot)
/// and a legitimate sender from yet another address is served; a
/// connection that never sends a whole frame is closed after
/// `--first-frame-timeout`.
#[test]
fn one_source_cannot_take_every_tcp_slot() {
    // 5,100 sockets held by this process: raise its descriptor limit to the
    // hard limit (a soft limit of 1,024 is common).
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a stack value.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    assert!(
        lim.rlim_max >= 6_000,
        "the test needs 6,000 file descriptors (ulimit -Hn is {})",
        lim.rlim_max
    );
    let _l = Listen::start(&[
        "--tcp",
        "127.0.0.1:28001",
        "--metrics",
        "127.0.0.1:28002",
        "--max-connections",
        "100",
        "--max-connections-per-source",
        "10",
        "--first-frame-timeout",
        "3s",
    ]);
    let to = "127.0.0.1:28001";
    let mut held = Vec::new();
    // Every slot taken by connections that never finish a frame.
    for src in 10..20 {
        for _ in 0..10 {
            let mut c = connect_from(&format!("127.0.0.{src}"), to).unwrap();
            c.write_all(b"<").unwrap();
            held.push(c);
        }
    }
    // 5,000 more from one address, each dribbling a byte.
    let started = Instant::now();
    for _ in 0..5_000 {
        if let Ok(mut c) = connect_from("127.0.0.1", to) {
            let _ = c.write_all(b"<");
            held.push(c);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "bounded");
    }
    // A legitimate sender from another address is served at once.
    let mut good = connect_from("127.0.0.2", to).unwrap();
    good.write_all(format!("{DOWN_AT}\n").as_bytes()).unwrap();
    let m = wait_metric(28002, "hapwatch_lines_total", 1);
    let tcp = "{listener=\"tcp://127.0.0.1:28001\"}";
    assert!(
        metric(&m, &format!("hapwatch_tcp_connections_refused_total{tcp}")) >= 4_000,
        "past its share, one source is refused: {m}"
    );
    assert!(
        metric(&m, &format!("hapwatch_tcp_connections_open{tcp}")) <= 100,
        "{m}"
    );
    // The dribblers are closed after --first-frame-timeout; the sender
    // that sent a frame stays.
    std::thread::sleep(Duration::from_millis(3_500));
    let m = metrics(28002);
    assert_eq!(
        metric(&m, &format!("hapwatch_tcp_connections_open{tcp}")),
        1,
        "{m}"
    );
    good.write_all(format!("{UP_AT}\n").as_bytes()).unwrap();
    wait_metric(28002, "hapwatch_lines_total", 2);
}

/// Memory is bound in bytes, not frames: while the database is locked the
/// engine waits in its commit, the queue fills to `--queue-bytes` and TCP
/// senders wait; the peak RSS stays within the bound (plus what hapwatch
/// needs anyway), and every line sent is counted once the lock is gone.
#[test]
fn a_database_stall_costs_at_most_the_queue_bytes() {
    let mut l = Listen::start(&[
        "--tcp",
        "127.0.0.1:28041",
        "--metrics",
        "127.0.0.1:28042",
        "--queue-bytes",
        "8MiB",
    ]);
    let idle = l.peak_rss_kb();
    wait_metric(28042, "hapwatch_db_batches_total", 1);
    let mut other = rusqlite::Connection::open(&l.db).unwrap();
    let tx = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    // Writes wait once the queue is full: the sender runs on its own
    // thread, bounded in lines and time.
    let sender = std::thread::spawn(|| {
        let mut c = TcpStream::connect("127.0.0.1:28041").unwrap();
        c.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        let line = requests_at(1, 1)[0].clone() + "\n";
        let chunk = line.repeat(1000);
        let started = Instant::now();
        let mut sent = 0u64;
        while sent < 400_000 && started.elapsed() < Duration::from_secs(20) {
            c.write_all(chunk.as_bytes()).unwrap();
            sent += 1000;
        }
        (sent, started.elapsed())
    });
    std::thread::sleep(Duration::from_secs(6));
    tx.rollback().unwrap();
    drop(other);
    let (sent, took) = sender.join().unwrap();
    eprintln!("sent {sent} lines in {took:?}");
    let m = wait_metric(28042, "hapwatch_lines_total", sent);
    assert_eq!(metric(&m, "hapwatch_lines_total"), sent);
    let peak = l.peak_rss_kb();
    eprintln!("idle {idle} kB, peak {peak} kB, {sent} lines");
    // 8 MiB of queue, plus parsing and committing what it held (the frame
    // bound alone let 262,144 frames, ~90 MB, wait here).
    assert!(peak < idle + 32 * 1024, "idle {idle} kB, peak {peak} kB");
    assert!(l.stop().0.success());
}

/// Cardinality is bounded: past `--max-servers` and `--max-hosts` the lines
/// of new names are counted (`hapwatch_series_dropped_total`, said once on
/// stderr) and never kept.
#[test]
fn names_past_the_cap_are_counted_not_kept() {
    let mut l = Listen::start(&[
        "--tcp",
        "127.0.0.1:28091",
        "--metrics",
        "127.0.0.1:28092",
        "--max-servers",
        "50",
        "--max-hosts",
        "3",
    ]);
    let mut c = TcpStream::connect("127.0.0.1:28091").unwrap();
    let line = |host: &str, srv: usize| {
        format!("<134>Nov 24 19:00:01 {host} haproxy[1]: 127.0.0.1:1000 [24/Nov/2026:19:00:01.000] fe be/s{srv} 0/0/0/5/5 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n")
    };
    let mut sent = 0;
    // Six load balancers: three are kept.
    for host in ["lb1", "lb2", "lb3", "lb4", "lb5", "lb6"] {
        c.write_all(line(host, 0).as_bytes()).unwrap();
        sent += 1;
    }
    // 199 more names on lb1 and lb2: 47 more are kept.
    for srv in 0..200 {
        c.write_all(line(if srv % 2 == 0 { "lb1" } else { "lb2" }, srv).as_bytes())
            .unwrap();
        sent += 1;
    }
    let m = wait_metric(28092, "hapwatch_lines_total", sent);
    let dropped = |kind: &str| {
        metric(
            &m,
            &format!("hapwatch_series_dropped_total{{kind=\"{kind}\"}}"),
        )
    };
    assert_eq!(dropped("server"), 199 - 47, "{m}");
    assert_eq!(dropped("host"), 3, "{m}");
    let servers = m
        .lines()
        .filter(|l| l.starts_with("hapwatch_requests_total{") && l.contains("class=\"2xx\""))
        .count();
    assert_eq!(servers, 50, "{m}");
    assert!(l.stop().0.success());
    let said = l.stderr();
    assert_eq!(
        said.matches("--max-servers").count(),
        1,
        "said once: {said}"
    );
    let rows: i64 = rusqlite::Connection::open(&l.db)
        .unwrap()
        .query_row("SELECT count(*) FROM servers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 50);
}

/// CPU time (user + system, in clock ticks) a process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// An idle receiver costs (almost) nothing however many servers it knows:
/// a commit with nothing new writes no row and /metrics is not rebuilt.
#[test]
fn an_idle_receiver_with_many_servers_costs_no_cpu() {
    let l = Listen::start(&["--tcp", "127.0.0.1:28101", "--metrics", "127.0.0.1:28102"]);
    let mut c = TcpStream::connect("127.0.0.1:28101").unwrap();
    let mut text = String::new();
    for srv in 0..5_000 {
        text.push_str(&format!("<134>Nov 24 19:00:01 lb1 haproxy[1]: 127.0.0.1:1000 [24/Nov/2026:19:00:01.000] fe be/s{srv} 0/0/0/5/5 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n"));
    }
    c.write_all(text.as_bytes()).unwrap();
    wait_metric(28102, "hapwatch_lines_total", 5_000);
    std::thread::sleep(Duration::from_millis(1_500)); // the last commit and rebuild
    let pid = l.child.id();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_ticks(pid) - before;
    // Clock ticks are 10 ms: 3 s idle may cost at most 5% of a core.
    assert!(
        used <= 15,
        "{used} ticks of CPU in 3 s idle with 5,000 servers"
    );
}

/// `hapwatch listen --stdin` of `input` until its end, its database
/// (`live.db`) and alerts (`alerts.jsonl`) in the directory returned.
fn listen_stdin(input: &[u8]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (db, alerts) = (dir.path().join("live.db"), dir.path().join("alerts.jsonl"));
    let out = hapwatch_stdin(
        &[
            "listen",
            "--stdin",
            "--db",
            db.to_str().unwrap(),
            "--alerts-jsonl",
            alerts.to_str().unwrap(),
        ],
        input,
    );
    (out, dir)
}

#[test]
fn stdin_is_a_live_source_until_its_end() {
    // `docker logs -f -t haproxy 2>&1 | hapwatch listen --stdin`: the
    // stderr of the real capture with the times `docker logs -t` puts in
    // front (the fixture's events, from events.log), then its end.
    let stderr = std::fs::read_to_string(fixture("haproxy-stderr.log")).unwrap();
    let dated = std::fs::read_to_string(fixture("haproxy-udp-rfc5424.log")).unwrap();
    // Each stderr health line at the time its RFC 5424 twin was sent.
    let mut times = std::collections::HashMap::new();
    for l in dated.lines() {
        let mut f = l.splitn(8, ' ');
        let t = f.nth(1).unwrap().to_string();
        let msg = l.splitn(8, ' ').nth(7).unwrap().to_string();
        times.entry(msg).or_insert(t);
    }
    let mut input = String::new();
    for l in stderr.lines() {
        let msg = l.split_once(" : ").unwrap().1;
        if let Some(t) = times.get(msg) {
            // Docker's fixed nine digits, in UTC.
            let t = hapwatch::time::parse_user_time(t).unwrap();
            let t = hapwatch::time::format_rfc3339_ms(t).replace('Z', "000000Z");
            input.push_str(&format!("{t} {l}\n"));
        }
    }
    let t = Instant::now();
    let (out, dir) = listen_stdin(input.as_bytes());
    let (db, alerts) = (dir.path().join("live.db"), dir.path().join("alerts.jsonl"));
    // Its end ends the run: nothing else listens, nothing is left unstored.
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listening on stdin"), "{err}");
    assert!(!err.contains("not understood"), "{err}");
    let out = hapwatch(&["history", "--db", db.to_str().unwrap(), "--format", "json"]);
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let story: Vec<String> = h["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{} {}/{} {}->{}",
                &t["at"].as_str().unwrap()[11..19],
                t["backend"].as_str().unwrap(),
                t["server"].as_str().unwrap(),
                t["from"].as_str().unwrap(),
                t["to"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        story.contains(&"18:34:24 be_app/srv2 UP->DOWN".to_string()),
        "{story:?}"
    );
    assert!(
        story.contains(&"18:34:29 be_app/srv2 DOWN->UP".to_string()),
        "{story:?}"
    );
    assert_eq!(story.len(), 10, "{story:?}");
    let fired = std::fs::read_to_string(&alerts).unwrap();
    let down = fired
        .lines()
        .find(|l| l.contains("\"server\":\"srv2\"") && l.contains("\"status\":\"firing\""))
        .unwrap_or_else(|| panic!("{fired}"));
    assert!(
        down.contains("\"starts_at\":\"2026-11-24T18:34:24"),
        "{down}"
    );
}

/// `haproxy -db 2>&1 | hapwatch listen --stdin` with `log stderr format
/// iso`: each change comes as a console message with no time and a log
/// line with one. Live, the first copy to arrive stands (timed by its
/// arrival when it is the console's), the other is its duplicate: each
/// change is stored once, in order, and pages once.
#[test]
fn haproxys_console_copy_received_live_is_not_a_second_change() {
    let input = std::fs::read_to_string(fixture("console/haproxy-stderr-iso.log")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (db, alerts) = (dir.path().join("live.db"), dir.path().join("alerts.jsonl"));
    let mut l = std::process::Command::new(env!("CARGO_BIN_EXE_hapwatch"))
        .args(["listen", "--stdin", "--db", db.to_str().unwrap()])
        .args(["--alerts-jsonl", alerts.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // As HAProxy writes them: a change's two copies at once, the next
    // change later (each console copy is dated by its arrival).
    let mut stdin = l.stdin.take().unwrap();
    for line in input.lines() {
        if line.starts_with('[') {
            std::thread::sleep(Duration::from_millis(20));
        }
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }
    drop(stdin);
    let out = l.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let out = hapwatch(&["history", "--db", db.to_str().unwrap(), "--format", "json"]);
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(transitions(&h), CONSOLE_STORY, "{h}");
    let fired = std::fs::read_to_string(&alerts).unwrap();
    let s2_down = fired
        .lines()
        .filter(|l| l.contains("\"server\":\"s2\"") && l.contains("\"status\":\"firing\""))
        .filter(|l| l.contains("haproxy_backend_server_status"))
        .count();
    assert_eq!(s2_down, 3, "{fired}");
}

#[test]
fn lines_with_no_time_are_dated_by_their_arrival_and_it_is_said() {
    // `docker logs -f haproxy 2>&1 | hapwatch listen --stdin`: HAProxy's
    // bare stderr (2.3+) has no time at all. Live, the receive time is the
    // closest truth: every transition is stored at it, in order, alerts
    // start at it, and the output says where the times came from.
    let stderr = std::fs::read(fixture("haproxy-stderr.log")).unwrap();
    let before = now_ms();
    let (out, dir) = listen_stdin(&stderr);
    let (db, alerts) = (dir.path().join("live.db"), dir.path().join("alerts.jsonl"));
    let after = now_ms();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("dated by their receive time"), "{err}");
    let out = hapwatch(&["history", "--db", db.to_str().unwrap(), "--format", "json"]);
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(transitions(&h), EXPECTED, "{h}");
    for t in h["transitions"].as_array().unwrap() {
        let at = hapwatch::time::parse_user_time(t["at"].as_str().unwrap()).unwrap();
        assert!(at >= before - 1_000 && at <= after, "{t}");
    }
    let fired = std::fs::read_to_string(&alerts).unwrap();
    let down = fired
        .lines()
        .find(|l| l.contains("\"server\":\"srv2\"") && l.contains("\"status\":\"firing\""))
        .unwrap_or_else(|| panic!("{fired}"));
    let a: serde_json::Value = serde_json::from_str(down).unwrap();
    let starts = hapwatch::time::parse_user_time(a["starts_at"].as_str().unwrap()).unwrap();
    assert!(starts >= before - 1_000 && starts <= after, "{down}");
}

#[test]
fn a_source_mostly_not_understood_is_counted_and_said_once() {
    let mut l = Listen::start(&["--udp", "127.0.0.1:28171", "--metrics", "127.0.0.1:28172"]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A frontend with its own log-format (unique id first): not a form
    // hapwatch reads yet.
    for i in 0..40 {
        let line = format!("<134>Nov 24 16:21:15 haproxy[1]: 7F000001:AD4C_{i:04} 127.0.0.1:44128 [24/Nov/2026:16:21:15.230] fe_http be_app/srv1 0/0/0/1/1 200 127");
        u.send_to(line.as_bytes(), "127.0.0.1:28171").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let l_ = "hapwatch_messages_unparsed_total{listener=\"udp://127.0.0.1:28171\"}";
    while metric(&metrics(28172), l_) < 40 {
        assert!(Instant::now() < deadline, "{}", metrics(28172));
        std::thread::sleep(Duration::from_millis(50));
    }
    while !l.stderr().contains("not understood") {
        assert!(Instant::now() < deadline, "{}", l.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let said = l.stderr();
    assert_eq!(said.matches("not understood").count(), 1, "{said}");
    assert!(said.contains("udp://127.0.0.1:28171"), "{said}");
    assert!(said.contains("custom `log-format`"), "{said}");
    assert!(l.stop().0.success());
}

/// A journal file in `dir` made by systemd-journal-remote from `export`.
fn journal_file(path: &std::path::Path, export: &[u8]) {
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg("-o")
        .arg(path)
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-journal-remote: apt-get install systemd-journal-remote");
    child.stdin.take().unwrap().write_all(export).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_journal_is_followed_live_restarted_and_resumed() {
    require_tools(&["journalctl", JOURNAL_REMOTE, "pgrep"]);
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("journal");
    std::fs::create_dir(&jdir).unwrap();
    // What was there before: not read (a first run starts at the end).
    journal_file(
        &jdir.join("a.journal"),
        b"__REALTIME_TIMESTAMP=1795392000000000\n__MONOTONIC_TIMESTAMP=1\n\
          _BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=lb0\nSYSLOG_IDENTIFIER=haproxy\n\
          MESSAGE=Server be_app/old is DOWN, reason: Layer4 timeout. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n\n",
    );
    let db = dir.path().join("live.db");
    let jd = jdir.to_str().unwrap().to_string();
    let args = ["--journal-dir", &jd, "--metrics", "127.0.0.1:28181"];
    let mut l = Listen::start_with(tempfile::tempdir().unwrap(), db.clone(), &args);
    let history = |db: &std::path::Path| -> Vec<String> {
        let out = hapwatch(&["history", "--db", db.to_str().unwrap(), "--format", "json"]);
        let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        h["transitions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| {
                        format!(
                            "{} {}",
                            t["host"].as_str().unwrap(),
                            t["to"].as_str().unwrap()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let wait_for = |n: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let h = history(&db);
            if h.len() >= n {
                return h;
            }
            assert!(Instant::now() < deadline, "{what}: {h:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // journalctl is following: the capture arrives as a new journal file.
    std::thread::sleep(Duration::from_secs(1));
    journal_file(&jdir.join("b.journal"), &export_stream("lb1", 0));
    let h = wait_for(10, "the capture, live");
    assert_eq!(h.len(), 10, "{h:?}");
    assert!(h.iter().all(|t| t.starts_with("lb1 ")), "{h:?}");
    // journalctl dies: started again, counted; the listener goes on.
    let pid = l.child.id().to_string();
    let child = Command::new("pgrep")
        .args(["-P", &pid, "journalctl"])
        .output()
        .unwrap();
    let child = String::from_utf8_lossy(&child.stdout).trim().to_string();
    assert!(!child.is_empty(), "no journalctl child");
    unsafe_kill(child.parse().unwrap(), "KILL");
    let m = wait_metric(
        28181,
        &format!("hapwatch_journal_restarts_total{{listener=\"journal-dir://{jd}\"}}"),
        1,
    );
    assert!(m.contains("hapwatch_journal_restarts_total"), "{m}");
    let (status, _) = l.stop();
    assert!(status.success());
    assert!(l.stderr().contains("journalctl ended"), "{}", l.stderr());
    // While hapwatch was stopped, another load balancer's capture (an hour
    // later) came in: the next run reads it, and only it.
    journal_file(&jdir.join("c.journal"), &export_stream("lb2", 3_600_000));
    let mut l = Listen::start_with(tempfile::tempdir().unwrap(), db.clone(), &args);
    let h = wait_for(20, "resumed after the cursor");
    std::thread::sleep(Duration::from_millis(500));
    let h2 = history(&db);
    assert_eq!(h2.len(), 20, "{h:?}");
    assert_eq!(
        h2.iter().filter(|t| t.starts_with("lb1 ")).count(),
        10,
        "{h2:?}"
    );
    assert_eq!(
        h2.iter().filter(|t| t.starts_with("lb2 ")).count(),
        10,
        "{h2:?}"
    );
    assert!(l.stop().0.success());
}

#[test]
fn a_sender_in_another_zone_is_spotted_and_tz_reads_it_right() {
    // A HAProxy on Asia/Tokyo sending RFC 3164 (local time, no offset).
    let tokyo_now = || {
        let t = chrono::Utc::now() + chrono::Duration::hours(9);
        (
            t.format("%b %e %H:%M:%S").to_string(),
            t.format("%d/%b/%Y:%H:%M:%S%.3f").to_string(),
        )
    };
    let line = |srv: &str| {
        let (h, a) = tokyo_now();
        format!("<134>{h} haproxy[1]: 127.0.0.1:1 [{a}] fe be/{srv} 0/0/0/5/5 200 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"")
    };
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Read as UTC (the default): nine hours ahead, quarantined, said once.
    let mut l = Listen::start(&["--udp", "127.0.0.1:28191", "--metrics", "127.0.0.1:28192"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !l.stderr().contains("--tz") {
        assert!(Instant::now() < deadline, "{}", l.stderr());
        u.send_to(line("s1").as_bytes(), "127.0.0.1:28191").unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    let said = l.stderr();
    assert!(said.contains("9 h ahead of the receive time"), "{said}");
    assert!(said.contains("UTC+09:00"), "{said}");
    assert_eq!(said.matches("arrive").count(), 1, "said once: {said}");
    assert!(said.contains("(an IANA name, e.g. Asia/Tokyo)"), "{said}");
    let m = metrics(28192);
    assert_eq!(
        metric(&m, "hapwatch_unzoned_offset_suspected_seconds"),
        32400,
        "{m}"
    );
    assert!(metric(&m, "hapwatch_lines_skewed_total") > 0, "{m}");
    assert!(l.stop().0.success());
    // Told the zone: applied, at the true time, nothing said.
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:28191",
        "--metrics",
        "127.0.0.1:28192",
        "--tz",
        "Asia/Tokyo",
    ]);
    for _ in 0..5 {
        u.send_to(line("s2").as_bytes(), "127.0.0.1:28191").unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    wait_metric(28192, "hapwatch_lines_total", 5);
    let before = chrono::Utc::now().timestamp_millis();
    assert!(l.stop().0.success());
    assert!(!l.stderr().contains("--tz"), "{}", l.stderr());
    let s = l.json("status");
    let s2 = s["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == "s2")
        .unwrap_or_else(|| panic!("{s}"))
        .clone();
    let last = hapwatch::time::parse_user_time(s2["last_request"].as_str().unwrap()).unwrap();
    assert!((before - last).abs() < 60_000, "{s2}");
    // A bad zone: exit 2, saying how to find one.
    let out = hapwatch(&["listen", "--tz", "Asia/Tokio", "--udp", "127.0.0.1:28193"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timedatectl list-timezones"));
}

/// With `--haproxy-config`, /metrics lists every declared server once its
/// HAProxy host logs anything (a `disabled` one as MAINT), marks servers
/// that log without being declared, and SIGHUP reads the file again.
#[test]
fn metrics_list_declared_servers_and_sighup_rereads_haproxy_cfg() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    let write = |extra: &str| {
        std::fs::write(
            &cfg,
            format!(
                "defaults\n  mode http\n  option httplog\n  default-server check\nbackend be_app\n  server srv1 10.0.0.1:80\n  server srv2 10.0.0.2:80 disabled\n{extra}"
            ),
        )
        .unwrap()
    };
    write("");
    let l = Listen::start(&[
        "--udp",
        "127.0.0.1:29247",
        "--metrics",
        "127.0.0.1:29248",
        "--haproxy-config",
        cfg.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let request = |srv: &str| {
        format!("<134>Nov 24 19:00:01 lb1 haproxy[1]: 10.0.0.9:5000 [24/Nov/2026:19:00:01.000] fe be_app/{srv} 0/0/1/2/3 200 12 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"")
    };
    u.send_to(request("srv1").as_bytes(), "127.0.0.1:29247")
        .unwrap();
    u.send_to(request("ghost").as_bytes(), "127.0.0.1:29247")
        .unwrap();
    let key = |srv: &str| format!("{{host=\"lb1\",backend=\"be_app\",server=\"{srv}\"");
    let state = |m: &str, srv: &str, st: &str| {
        metric(
            m,
            &format!("hapwatch_server_state{},state=\"{st}\"}}", key(srv)),
        )
    };
    let mut m = String::new();
    // The ghost's line is read from UDP when it is read: waited for too.
    let ghost = format!("hapwatch_server_configured{}}} 0", key("ghost"));
    wait_for("the declared servers in /metrics", || {
        m = metrics(29248);
        state(&m, "srv2", "MAINT") == 1 && m.contains(&ghost)
    });
    assert_eq!(state(&m, "srv1", "UNKNOWN"), 1, "{m}");
    assert_eq!(
        metric(&m, &format!("hapwatch_server_configured{}}}", key("srv1"))),
        1
    );
    write("  server srv3 10.0.0.3:80 no-check\n");
    unsafe_kill(l.child.id(), "HUP");
    wait_for("srv3 after SIGHUP", || {
        m = metrics(29248);
        state(&m, "srv3", "UP") == 1
    });
    // A file that cannot be read keeps what was read.
    std::fs::write(&cfg, "backend\n").unwrap();
    unsafe_kill(l.child.id(), "HUP");
    wait_for("the refusal said", || {
        l.stderr()
            .contains("the previous formats and servers stay in force")
    });
    assert_eq!(state(&metrics(29248), "srv3", "UP"), 1);
}

/// `show servers state` asked of a runtime API socket, by hand.
fn api(sock: &std::path::Path, command: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    writeln!(s, "{command}").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `--haproxy-socket` against a real HAProxy whose logs are all lost (its
/// `log` target is a port nobody reads): the states come from the runtime
/// API at start (UP, DOWN, a `disabled` server MAINT), and a change made
/// later is caught by the next reading, recorded as a transition "reconciled
/// from the runtime API" and counted in /metrics.
#[test]
fn runtime_api_seeds_states_and_reconciles_what_the_logs_lost() {
    require_tools(&["haproxy"]);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    // srv1's port accepts (checks pass), srv2's refuses (checks fail).
    let live = std::net::TcpListener::bind("127.0.0.1:29251").unwrap();
    std::thread::spawn(move || {
        for c in live.incoming() {
            drop(c)
        }
    });
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  stats socket {} mode 600 level admin\n  log 127.0.0.1:29259 local0\n\
             defaults\n  mode tcp\n  log global\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             listen fe\n  bind 127.0.0.1:29250\n  default-server check inter 200ms fall 1 rise 1\n\
             \n  server srv1 127.0.0.1:29251\n  server srv2 127.0.0.1:29252\n  server srv3 127.0.0.1:29251 disabled\n",
            sock.display()
        ),
    )
    .unwrap();
    let _haproxy = Running(
        Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // HAProxy has judged srv2 DOWN before hapwatch starts.
    wait_for("srv2 DOWN in HAProxy", || {
        sock.exists()
            && api(&sock, "show servers state fe")
                .lines()
                .any(|l| l.contains(" srv2 ") && l.split_whitespace().nth(5) == Some("0"))
    });
    let l = Listen::start(&[
        "--udp",
        "127.0.0.1:29253",
        "--metrics",
        "127.0.0.1:29254",
        "--haproxy-socket",
        &format!("lb1={}", sock.display()),
        "--reconcile",
        "500ms",
    ]);
    let state = |m: &str, srv: &str, st: &str| {
        metric(
            m,
            &format!("hapwatch_server_state{{host=\"lb1\",backend=\"fe\",server=\"{srv}\",state=\"{st}\"}}"),
        )
    };
    let mut m = String::new();
    wait_for("the states read from the runtime API", || {
        m = metrics(29254);
        state(&m, "srv1", "UP") == 1
            && state(&m, "srv2", "DOWN") == 1
            && state(&m, "srv3", "MAINT") == 1
    });
    assert_eq!(
        metric(&m, "hapwatch_reconciled_total"),
        0,
        "seeding is no transition: {m}"
    );
    // An operator puts srv1 in maintenance; the log line is lost.
    api(&sock, "set server fe/srv1 state maint");
    wait_for("srv1 MAINT reconciled", || {
        m = metrics(29254);
        state(&m, "srv1", "MAINT") == 1
    });
    assert_eq!(metric(&m, "hapwatch_reconciled_total"), 1, "{m}");
    assert!(metric(&m, "hapwatch_runtime_api_reads_total") >= 2, "{m}");
    assert_eq!(metric(&m, "hapwatch_runtime_api_errors_total"), 0, "{m}");
    let history = l.json_args(&["history"]);
    let t = history["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["server"] == "srv1")
        .unwrap_or_else(|| panic!("no transition of srv1: {history:#}"));
    assert_eq!(
        (&t["from"], &t["to"], &t["cause"]),
        (
            &serde_json::json!("UP"),
            &serde_json::json!("MAINT"),
            &serde_json::json!("reconciled from the runtime API")
        ),
        "{t:#}"
    );
    assert!(
        l.stderr().contains("runtime API") && l.stderr().contains("3 servers read (host lb1)"),
        "{}",
        l.stderr()
    );
}

/// A runtime API that is not there is said and counted, and listen goes on.
#[test]
fn an_unreachable_runtime_api_is_counted_not_fatal() {
    let l = Listen::start(&[
        "--udp",
        "127.0.0.1:29255",
        "--metrics",
        "127.0.0.1:29256",
        "--haproxy-socket",
        "lb1=/nonexistent/admin.sock",
        "--reconcile",
        "200ms",
    ]);
    wait_metric(29256, "hapwatch_runtime_api_errors_total", 2);
    assert!(
        l.stderr().contains("/nonexistent/admin.sock"),
        "{}",
        l.stderr()
    );
    assert_eq!(
        l.stderr().matches("/nonexistent/admin.sock").count(),
        1,
        "said once, not at every reading: {}",
        l.stderr()
    );
}

/// The peak resident set of process `pid` so far, in MB.
fn peak_mb(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .unwrap()
        / 1024
}

/// A scrape of 20,000 servers' series (75 MB of text) leaves as it is
/// encoded, in chunks: listen's peak memory does not grow by the text. (It
/// was encoded whole into a `String`, and converted into a second one for
/// the Prometheus text format: the peak grew by ~150 MB during a scrape.)
/// What arrives is every series, the framing whole.
#[test]
fn a_scrape_of_many_servers_is_sent_as_it_is_encoded() {
    const SERVERS: usize = 20_000;
    let l = Listen::start(&[
        "--tcp",
        "127.0.0.1:29301",
        "--metrics",
        "127.0.0.1:29302",
        "--max-servers",
        "30000",
    ]);
    let mut s = TcpStream::connect("127.0.0.1:29301").unwrap();
    let mut batch = String::new();
    for i in 0..SERVERS {
        batch.push_str(&format!(
            "<134>Nov 24 19:00:01 lb1 haproxy[1]: 127.0.0.1:1000 [24/Nov/2026:19:00:01.000] fe \
             be{}/s{} 0/0/0/5/5 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n",
            i / 1000,
            i % 1000
        ));
    }
    s.write_all(batch.as_bytes()).unwrap();
    drop(s);
    // Stored (not scraped: a scrape is what is measured).
    let c = rusqlite::Connection::open(&l.db).unwrap();
    let servers = || {
        c.query_row("SELECT COUNT(*) FROM servers", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0)
    };
    wait_for("20,000 servers stored", || servers() == SERVERS as i64);
    std::thread::sleep(Duration::from_millis(500));
    let before = peak_mb(l.child.id());
    let text = metrics(29302);
    let after = peak_mb(l.child.id());
    let series = text
        .lines()
        .filter(|l| l.starts_with("hapwatch_requests_total{") && l.contains("class=\"2xx\""))
        .count();
    assert_eq!(series, SERVERS, "every server's 2xx series");
    assert!(text.len() > 70_000_000, "{} bytes", text.len());
    assert!(
        after - before < 30,
        "the peak grew from {before} to {after} MB during a scrape of {} MB",
        text.len() >> 20
    );
}

/// A SIGHUP dump received live that contradicts what the lines told (srv1
/// was UP, its DOWN datagram lost): the transition it tells fires srv1's
/// DOWN alert with the dump as its cause, and counts as reconciled; srv2,
/// which no line told, is seeded UP with no alert.
#[test]
fn a_sighup_dump_received_live_fires_the_down_a_lost_datagram_did_not() {
    let dir = tempfile::tempdir().unwrap();
    let exec_out = dir.path().join("exec.jsonl");
    let rules = rules_file(
        dir.path(),
        format!(
            "[[sinks]]\nkind = \"exec\"\ncommand = [\"tee\", \"-a\", \"{}\"]\n",
            exec_out.display()
        ),
    );
    let mut l = Listen::start(&[
        "--udp",
        "127.0.0.1:28770",
        "--metrics",
        "127.0.0.1:28771",
        "--rules",
        rules.to_str().unwrap(),
        "--reorder-window",
        "0s",
    ]);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for line in [
        UP_AT,
        "<133>Nov 24 19:00:09 haproxy[1]: SIGHUP received, dumping servers states for proxy be_app.",
        "<133>Nov 24 19:00:09 haproxy[1]: SIGHUP: Server be_app/srv1 is DOWN. Conn: 0 act, 0 pend, 12 tot.",
        "<133>Nov 24 19:00:09 haproxy[1]: SIGHUP: Server be_app/srv2 is UP. Conn: 0 act, 0 pend, 30 tot.",
        "<133>Nov 24 19:00:09 haproxy[1]: SIGHUP: Proxy be_app has 1 active servers and 0 backup servers available. Conn: act(FE+BE): 0+0, 0 pend (0 unass), tot(FE+BE): 0+42.",
    ] {
        u.send_to(line.as_bytes(), "127.0.0.1:28770").unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_metric(28771, "hapwatch_reconciled_total", 1);
    wait_for("the DOWN alert", || !received(&exec_out).is_empty());
    std::thread::sleep(Duration::from_millis(500)); // nothing more may come
    let alerts = received(&exec_out);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["status"], "firing", "{alerts:?}");
    assert_eq!(alerts[0]["labels"]["server"], "srv1", "{alerts:?}");
    assert!(alerts[0].to_string().contains("SIGHUP dump"), "{alerts:?}");
    let m = metrics(28771);
    assert!(l.stop().0.success());
    let status = l.json("status");
    assert_eq!(
        server(&status, "be_app", "srv1")["state"],
        "DOWN",
        "{status}"
    );
    assert_eq!(server(&status, "be_app", "srv2")["state"], "UP", "{status}");
    // Every line of the dump read (its proxy's counts among the others).
    assert!(m.contains("hapwatch_messages_unparsed_total{"), "{m}");
    assert_eq!(metric(&m, "hapwatch_messages_unparsed_total"), 0, "{m}");
}

/// HAProxy 3.2's `log-steps all` received live (fixtures/log-steps): the
/// lines written before a transaction ended are counted on their own, not
/// as requests.
#[test]
fn log_steps_received_live_are_counted_apart_from_requests() {
    let mut l = Listen::start(&["--udp", "127.0.0.1:28780", "--metrics", "127.0.0.1:28781"]);
    let log = std::fs::read_to_string(fixture("log-steps/haproxy-3.2-log-steps.log")).unwrap();
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for line in log.lines() {
        u.send_to(line.as_bytes(), "127.0.0.1:28780").unwrap();
    }
    let m = wait_metric(28781, "hapwatch_lines_total", 16);
    assert_eq!(metric(&m, "hapwatch_lines_log_steps_total"), 9, "{m}");
    assert_eq!(metric(&m, "hapwatch_parse_failures_total"), 0, "{m}");
    assert!(l.stop().0.success());
}
