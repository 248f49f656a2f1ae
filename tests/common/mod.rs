//! Shared helpers: run the real binary, parse its JSON.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
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

/// Transitions as "backend/server FROM->TO" strings, in order.
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
