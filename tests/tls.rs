//! `listen --tls`: syslog over TLS (RFC 5425) as Debian's rsyslog sends it
//! with its gtls driver (package rsyslog-gnutls), octet-counted, with and
//! without client certificates; what is not TLS, or has no trusted client
//! certificate, injects nothing. A CA, a server and a client certificate
//! are made with openssl for each test. All on 127.0.0.1; every process
//! is stopped when its test ends.

mod common;
use common::*;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A throwaway PKI: `ca.pem`, `server.pem`/`server.key` (localhost,
/// 127.0.0.1), `client.pem`/`client.key` signed by the CA, and
/// `rogue.pem`/`rogue.key`, a client signed by another CA.
fn pki(dir: &Path) {
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-ec")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh(&format!(
        "openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=hapwatch-test-ca
         openssl req -x509 {ec} -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other-ca
         printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
         printf 'extendedKeyUsage=clientAuth\\n' > client.ext
         openssl req {ec} -keyout server.key -out server.csr -subj /CN=localhost
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext
         openssl req {ec} -keyout client.key -out client.csr -subj /CN=lb1
         openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext
         openssl req {ec} -keyout rogue.key -out rogue.csr -subj /CN=rogue
         openssl x509 -req -in rogue.csr -CA other-ca.pem -CAkey other-ca.key -CAcreateserial -out rogue.pem -days 2 -extfile client.ext"
    ));
}

/// `hapwatch listen` with these flags, once it says where it listens.
fn listen(db: &Path, args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hapwatch"))
        .arg("listen")
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let mut said = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&said).contains("listening on") {
        assert_eq!(
            err.read(&mut byte).unwrap(),
            1,
            "did not start: {}",
            String::from_utf8_lossy(&said)
        );
        said.push(byte[0]);
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    Running(child)
}

/// A new PKI in a temporary directory, and `hapwatch listen --tls
/// 127.0.0.1:PORT` with its server certificate (and `--tls-client-ca`
/// when `client_ca`), metrics on METRICS, the database `tls.db` there.
fn tls_listener(port: u16, metrics: u16, client_ca: bool) -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    pki(p);
    let s = |f: &str| p.join(f).to_str().unwrap().to_string();
    let (tls, metrics) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{metrics}"));
    let mut args = vec![
        "--tls".to_string(),
        tls,
        "--tls-cert".into(),
        s("server.pem"),
        "--tls-key".into(),
        s("server.key"),
        "--metrics".into(),
        metrics,
    ];
    if client_ca {
        args.extend(["--tls-client-ca".into(), s("ca.pem")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let hw = listen(&p.join("tls.db"), &args);
    (dir, hw)
}

/// rsyslogd receiving on UDP `udp` and forwarding everything over TLS
/// (gtls, octet-counted, the server's name checked) to 127.0.0.1:`tls`,
/// presenting `client` (a `.pem`/`.key` pair in `dir`) when given.
fn rsyslog(dir: &Path, udp: u16, tls: u16, client: Option<&str>) -> Running {
    let d = dir.display();
    let cert = client.map_or(String::new(), |c| {
        format!(
            "DefaultNetstreamDriverCertFile=\"{d}/{c}.pem\"\n       \
             DefaultNetstreamDriverKeyFile=\"{d}/{c}.key\""
        )
    });
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{d}\"\n       \
             DefaultNetstreamDriver=\"gtls\"\n       \
             DefaultNetstreamDriverCAFile=\"{d}/ca.pem\"\n       {cert})\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             module(load=\"imudp\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\n\
             *.* action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{tls}\" protocol=\"tcp\"\n    \
             StreamDriver=\"gtls\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\"\n    \
             StreamDriverPermittedPeers=\"localhost\" TCP_Framing=\"octet-counted\"\n    \
             action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\")\n"
        ),
    )
    .unwrap();
    let child = rsyslogd(&conf, dir);
    Running(child)
}

/// The state `hapwatch status` gives one server, if it knows it.
fn state(db: &Path, server: &str) -> Option<String> {
    let out = hapwatch(&["status", "--db", db.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["servers"]
        .as_array()?
        .iter()
        .find(|s| s["server"] == server)
        .map(|s| s["state"].as_str().unwrap_or("").to_string())
}

/// Sends `msg` to rsyslog (UDP) until hapwatch holds `server`'s state,
/// bounded: rsyslog takes a moment to open its input and its connection.
fn through_rsyslog(db: &Path, udp: u16, server: &str, want: &str) {
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let msg = DOWN.replace("srv1", server);
    let deadline = Instant::now() + Duration::from_secs(30);
    while state(db, server).as_deref() != Some(want) {
        assert!(
            Instant::now() < deadline,
            "{server} never reached {want} through rsyslog's TLS forwarding"
        );
        u.send_to(
            format!("<129>{} lb1 haproxy[7]: {msg}", now()).as_bytes(),
            ("127.0.0.1", udp),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Sends `data` over TLS with openssl s_client (CA-checked), presenting
/// `client` when given; true if s_client completed its side.
fn s_client(dir: &Path, port: u16, client: Option<&str>, data: &[u8]) -> bool {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-quiet", "-no_ign_eof", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-CAfile")
        .arg(dir.join("ca.pem"));
    if let Some(c) = client {
        cmd.arg("-cert")
            .arg(dir.join(format!("{c}.pem")))
            .arg("-key")
            .arg(dir.join(format!("{c}.key")));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    // stdin closed: s_client sends, then ends (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.success();
        }
        assert!(Instant::now() < deadline, "openssl s_client hung");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Now, as an RFC 3164 header writes it (a line dated later than now
/// would be quarantined as skewed, not applied).
fn now() -> String {
    chrono::Utc::now().format("%b %e %H:%M:%S").to_string()
}

fn frame(server: &str) -> Vec<u8> {
    let m = format!(
        "<129>{} lb1 haproxy[7]: {}",
        now(),
        DOWN.replace("srv1", server)
    );
    format!("{} {m}", m.len()).into_bytes()
}

/// rsyslog's gtls driver, as Debian ships it, forwards octet-counted to
/// `--tls` presenting a client certificate that `--tls-client-ca` trusts:
/// the DOWN it forwards is applied. A client without a certificate, one
/// whose certificate another CA signed, and plain TCP on the TLS port get
/// nothing in, and each is counted.
#[test]
fn rsyslog_gtls_forwards_and_untrusted_senders_inject_nothing() {
    require_tools(&["rsyslogd", "openssl"]);
    assert!(
        Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists()
            || std::env::var_os("CI").is_none(),
        "rsyslog's gtls driver (Debian package rsyslog-gnutls) is missing"
    );
    let (dir, _hw) = tls_listener(28121, 28122, true);
    let p = dir.path();
    let db = p.join("tls.db");
    let _rs = rsyslog(p, 28123, 28121, Some("client"));
    through_rsyslog(&db, 28123, "srv1", "DOWN");

    // Untrusted senders, each with a DOWN for a server of its own.
    s_client(p, 28121, None, &frame("nocert"));
    s_client(p, 28121, Some("rogue"), &frame("rogue"));
    let mut plain = std::net::TcpStream::connect("127.0.0.1:28121").unwrap();
    plain.write_all(&frame("plain")).unwrap();
    drop(plain);
    let l = "{listener=\"tls://127.0.0.1:28121\"}";
    wait_metric(
        28122,
        &format!("hapwatch_tls_handshakes_failed_total{l}"),
        3,
    );
    // A trusted sender after them is applied; theirs never are.
    assert!(s_client(p, 28121, Some("client"), &frame("after")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(&db, "after").is_none() {
        assert!(Instant::now() < deadline, "the trusted s_client's DOWN");
        std::thread::sleep(Duration::from_millis(100));
    }
    for s in ["nocert", "rogue", "plain"] {
        assert_eq!(state(&db, s), None, "{s} injected a state");
    }
    let m = metrics(28122);
    assert!(
        metric(&m, &format!("hapwatch_messages_received_total{l}")) >= 2,
        "{m}"
    );
}

/// Without `--tls-client-ca` any client may send (server authentication
/// only, rsyslog's `anon` or `x509/name` with no client certificate); both
/// framings work over TLS; the bytes received are the plaintext's.
#[test]
fn server_only_tls_takes_both_framings() {
    require_tools(&["openssl"]);
    let (dir, _hw) = tls_listener(28131, 28132, false);
    let p = dir.path();
    let db = p.join("tls.db");
    let mut data = frame("octet");
    let lf = format!(
        "<129>{} lb1 haproxy[7]: {}\n",
        now(),
        DOWN.replace("srv1", "lf")
    );
    data.extend_from_slice(lf.as_bytes());
    assert!(
        s_client(p, 28131, None, &data),
        "handshake without client CA"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(&db, "octet").is_none() || state(&db, "lf").is_none() {
        assert!(Instant::now() < deadline, "both frames applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = metrics(28132);
    let l = "{listener=\"tls://127.0.0.1:28131\"}";
    assert_eq!(
        metric(&m, &format!("hapwatch_bytes_received_total{l}")),
        data.len() as u64,
        "{m}"
    );
}

/// Wrong TLS settings exit 2 at start, naming the flag and what to give.
#[test]
fn bad_tls_settings_exit_2_naming_the_file() {
    require_tools(&["openssl"]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    pki(p);
    let s = |n: &str| p.join(n).to_str().unwrap().to_string();
    let db = s("x.db");
    let run = |args: &[&str]| {
        let mut all = vec!["listen", "--db", &db];
        all.extend_from_slice(args);
        hapwatch(&all)
    };
    // --tls ADDR with (cert, key, client CA), as file names in `p`.
    let tls = |cert: &str, key: &str, ca: Option<&str>| -> Vec<String> {
        let mut a = vec!["--tls".into(), "127.0.0.1:28141".into()];
        a.extend(["--tls-cert".into(), s(cert), "--tls-key".into(), s(key)]);
        if let Some(ca) = ca {
            a.extend(["--tls-client-ca".into(), s(ca)]);
        }
        a
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--tls".into(), "127.0.0.1:28141".into()], "--tls-cert"),
        (tls("missing.pem", "server.key", None), "--tls-cert"),
        (tls("server.key", "server.key", None), "--tls-cert"),
        (
            tls("server.pem", "client.key", None),
            "the key must be the certificate's own",
        ),
        (
            tls("server.pem", "server.key", Some("server.key")),
            "--tls-client-ca",
        ),
        (
            vec!["--tls-cert".into(), s("server.pem")],
            "are for --tls IP:PORT",
        ),
    ];
    for (args, says) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says}: {err}");
    }
}
