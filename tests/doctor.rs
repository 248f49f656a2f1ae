//! `hapwatch doctor` on configurations a real HAProxy accepts (`haproxy -c`):
//! one that gives hapwatch everything (exit 0), one that keeps most of it
//! out of the logs (exit 1, each lack with the lines to add), and what
//! adding those lines changes.

mod common;
use common::*;

const GOOD: &str = "global
    log tcp@127.0.0.1:5514 format rfc5424 local0
    log-send-hostname
defaults
    mode http
    log global
    option httplog
    option log-health-checks
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe_http
    bind 127.0.0.1:29230
    default_backend be_app
backend be_app
    server srv1 127.0.0.1:29231 check
";

const POOR: &str = "global
    log 127.0.0.1:514 local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe_http
    bind 127.0.0.1:29230
    option dontlog-normal
    default_backend be_app
frontend fe_custom
    bind 127.0.0.1:29232
    log-format \"%ci [%tr] %b/%s %ST\"
    default_backend be_app
backend be_app
    server srv1 127.0.0.1:29231 check
";

#[test]
fn doctor_says_what_the_logs_will_lack_and_what_to_add() {
    require_tools(&["haproxy"]);
    let dir = tempfile::tempdir().unwrap();
    let (good, poor) = (dir.path().join("good.cfg"), dir.path().join("poor.cfg"));
    std::fs::write(&good, GOOD).unwrap();
    std::fs::write(&poor, POOR).unwrap();
    haproxy_accepts(&good);
    haproxy_accepts(&poor);

    let out = hapwatch(&["doctor", "--haproxy-config", good.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("nothing missing for hapwatch"), "{text}");
    assert!(
        text.contains("log tcp@127.0.0.1:5514 (format rfc5424)"),
        "{text}"
    );

    let out = hapwatch(&["doctor", "--haproxy-config", poor.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for says in [
        "frontend fe_http (",
        "no option dontlog-normal",
        "frontend fe_custom (",
        "no %Tr: latency alerts disabled",
        "backend be_app",
        "option log-health-checks",
        "over UDP",
        "log tcp@127.0.0.1:514 local0",
        "(format rfc3164): read; local time without a zone",
    ] {
        assert!(text.contains(says), "{says:?} not in:\n{text}");
    }
    // Two load balancers' files without log-send-hostname: said.
    let out = hapwatch(&[
        "doctor",
        "--haproxy-config",
        poor.to_str().unwrap(),
        "--haproxy-config",
        poor.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("log-send-hostname"));

    // The fixes it prints, applied, leave nothing but what the custom
    // format itself lacks.
    let fixed = POOR
        .replace(
            "    log 127.0.0.1:514 local0\n",
            "    log tcp@127.0.0.1:514 local0\n",
        )
        .replace("    option dontlog-normal\n", "")
        // The backend's section, not `default_backend be_app` (HAProxy 2.6
        // ignores `option log-health-checks` in a frontend, 3.2 refuses it).
        .replace(
            "\nbackend be_app\n",
            "\nbackend be_app\n    option log-health-checks\n",
        );
    let fixed_path = dir.path().join("fixed.cfg");
    std::fs::write(&fixed_path, &fixed).unwrap();
    haproxy_accepts(&fixed_path);
    let out = hapwatch(&["doctor", "--haproxy-config", fixed_path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        !text.contains("over UDP")
            && !text.contains("dontlog")
            && !text.contains("log-health-checks"),
        "{text}"
    );
    assert!(text.contains("fe_custom"), "{text}");

    // A file that cannot be read: exit 2, which.
    let out = hapwatch(&["doctor", "--haproxy-config", "/nonexistent/haproxy.cfg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/haproxy.cfg"));
}
