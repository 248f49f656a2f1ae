//! HAProxy in real container runtimes: Debian's Docker 20.10 (dockerd,
//! with swarm mode) and Debian's podman (with runc), each with all its
//! state in the test's temporary directory and an image imported from this
//! machine's HAProxy 2.6 (no registry is reachable). The `docker` CLI talks
//! to dockerd, and to podman through its Docker-compatible API socket, so
//! the README's `docker logs` commands run here as pasted. A server is
//! killed and brought back under steady traffic; what `docker logs -t`,
//! `docker logs`, `docker logs -f -t | hapwatch listen --stdin`, `docker
//! service logs [-t]` and the runtimes' own log files (Docker's json-file;
//! podman's `k8s-file`, the CRI format kubelet writes under /var/log/pods)
//! say must be that story, at the times it happened.
//!
//! Needs root, docker.io (dockerd and the CLI), podman, runc, haproxy and
//! python3 (`.ci/run` installs them).

mod common;
use common::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    Docker,
    Podman,
}

/// A container engine of our own: storage, run state and API socket in
/// `dir`.
struct Runtime {
    dir: tempfile::TempDir,
    engine: Engine,
    service: Child,
}

impl Runtime {
    fn start(engine: Engine) -> Runtime {
        let dir = tempfile::tempdir().unwrap();
        // runc: crun refuses this machine's hybrid cgroup hierarchy. The
        // default ulimits (podman asks for more than a sandbox's hard
        // limits) and a file event log (no journald) are for test machines.
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\nruntime = \"runc\"\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n",
        )
        .unwrap();
        let mut r = Runtime {
            service: Command::new("true").spawn().unwrap(),
            engine,
            dir,
        };
        let sock = format!("unix://{}", r.path("api.sock").display());
        let mut service = match engine {
            Engine::Podman => {
                let mut c = r.podman();
                c.args(["system", "service", "--time=0", &sock]);
                c
            }
            // No bridge and no iptables rules (containers use the host's
            // network); vfs: no overlay mounts left behind.
            Engine::Docker => {
                let mut c = Command::new("dockerd");
                c.args(["--host", &sock, "--data-root"])
                    .arg(r.path("root"))
                    .arg("--exec-root")
                    .arg(r.path("exec"))
                    .arg("--pidfile")
                    .arg(r.path("dockerd.pid"))
                    .args([
                        "--iptables=false",
                        "--ip6tables=false",
                        "--bridge=none",
                        "--storage-driver=vfs",
                    ]);
                c
            }
        };
        r.service = service
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(r.path("engine.log")).unwrap())
            .spawn()
            .expect("the container engine");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !r
            .sh("docker info >/dev/null 2>&1")
            .status()
            .unwrap()
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "{engine:?} never answered: {}",
                std::fs::read_to_string(r.path("engine.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        r
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn podman(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.path("containers.conf"))
            .arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("run"))
            .arg("--tmpdir")
            .arg(self.path("tmp"))
            // vfs: no overlay mounts left behind in the temporary directory.
            .args(["--storage-driver", "vfs"]);
        c
    }

    /// A shell whose `docker` reaches this engine.
    fn sh(&self, script: &str) -> Command {
        let mut c = Command::new("sh");
        c.env(
            "DOCKER_HOST",
            format!("unix://{}", self.path("api.sock").display()),
        )
        .env("PATH", path_with_hapwatch())
        .args(["-c", script]);
        c
    }

    fn run(&self, script: &str) -> String {
        let out = self.sh(script).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// An image of this machine's HAProxy and the libraries it links.
    fn import_haproxy(&self) {
        let root = self.path("rootfs");
        let libs = Command::new("ldd")
            .arg("/usr/sbin/haproxy")
            .output()
            .unwrap();
        let libs = String::from_utf8(libs.stdout).unwrap();
        let mut files = vec!["/usr/sbin/haproxy".to_string()];
        files.extend(
            libs.split_whitespace()
                .filter(|w| w.starts_with('/'))
                .map(String::from),
        );
        for f in files {
            let to = root.join(f.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&f, &to).unwrap();
        }
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = self
            .sh("docker import - localhost/haproxy:test")
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(tar.wait().unwrap().success(), "tar of the image");
        assert!(
            out.status.success(),
            "docker import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self
            .sh("docker service rm lb; docker rm -f $(docker ps -aq)")
            .output();
        if self.engine == Engine::Docker {
            let _ = self.sh("docker swarm leave --force").output();
            // SIGTERM: dockerd stops its containerd and shims itself.
            let _ = Command::new("kill")
                .arg(self.service.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while self.service.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.service.kill();
        let _ = self.service.wait();
        // dockerd leaves its network namespace mounted: the temporary
        // directory could not be removed.
        let _ = Command::new("umount")
            .arg(self.path("exec/netns/default"))
            .stderr(Stdio::null())
            .status();
    }
}

/// PATH with the hapwatch under test first.
fn path_with_hapwatch() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_hapwatch")).parent().unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

/// Waits until what `logs` prints has `what`.
fn wait_logs(rt: &Runtime, logs: &str, what: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if rt.run(&format!("{logs} 2>&1")).contains(what) {
            return now_ms();
        }
        assert!(Instant::now() < deadline, "no {what:?} in {logs}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn story(r: &serde_json::Value) -> Vec<(Option<i64>, String)> {
    let labels = transitions(r);
    r["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(labels)
        .map(|(t, l)| {
            (
                t["at"]
                    .as_str()
                    .map(|s| hapwatch::time::parse_user_time(s).unwrap()),
                l,
            )
        })
        .collect()
}

#[test]
fn haproxy_under_docker_as_docker_logs_swarm_and_json_file_tell_it() {
    require_tools(&[
        "dockerd", "docker", "runc", "haproxy", "python3", "tar", "ldd",
    ]);
    assert!(is_root(), "dockerd runs as root");
    the_story_in(Engine::Docker, 29130);
}

#[test]
fn haproxy_under_podman_as_docker_logs_and_the_cri_file_tell_it() {
    require_tools(&[
        "podman", "runc", "docker", "haproxy", "python3", "tar", "ldd",
    ]);
    assert!(is_root(), "podman runs containers as root here");
    the_story_in(Engine::Podman, 29140);
}

/// HAProxy as the container `haproxy` (frontend on `port`, servers on the
/// next two), and under Docker a second one as the swarm service `lb`
/// (frontend on `port + 3`), checking the same servers.
fn the_story_in(engine: Engine, port: u16) {
    let (srv1_port, srv2_port) = (port + 1, port + 2);
    let rt = Runtime::start(engine);
    rt.import_haproxy();
    let dir = rt.dir.path().display().to_string();
    std::fs::write(
        rt.path("haproxy.cfg"),
        two_server_cfg("stdout format raw local0", port, srv1_port, srv2_port),
    )
    .unwrap();
    std::fs::write(
        rt.path("lb.cfg"),
        two_server_cfg("stdout format raw local0", port + 3, srv1_port, srv2_port),
    )
    .unwrap();
    let _srv1 = KillOnDrop(http_server(srv1_port, rt.dir.path()));
    let mut srv2 = KillOnDrop(http_server(srv2_port, rt.dir.path()));
    rt.run(&format!(
        "docker run -d --name haproxy --network host -v {dir}:/cfg:ro localhost/haproxy:test \
         /usr/sbin/haproxy -db -f /cfg/haproxy.cfg"
    ));
    let swarm = engine == Engine::Docker;
    let mut logs = vec!["docker logs haproxy"];
    if swarm {
        rt.run("docker swarm init --advertise-addr 127.0.0.1 >/dev/null");
        rt.run(&format!(
            "docker service create --quiet --no-resolve-image --name lb --network host \
             --mount type=bind,src={dir},dst=/cfg,readonly localhost/haproxy:test \
             /usr/sbin/haproxy -db -f /cfg/lb.cfg"
        ));
        logs.push("docker service logs lb");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = vec![traffic(port, stop.clone())];
    if swarm {
        load.push(traffic(port + 3, stop.clone()));
    }
    for l in &logs {
        wait_logs(&rt, l, "fe_http be_app/srv2");
    }
    let killed = now_ms();
    let _ = srv2.0.kill();
    let _ = srv2.0.wait();
    let down_seen = logs
        .iter()
        .map(|l| wait_logs(&rt, l, "be_app/srv2 is DOWN"))
        .max()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let back = now_ms();
    srv2 = KillOnDrop(http_server(srv2_port, rt.dir.path()));
    let up_seen = logs
        .iter()
        .map(|l| wait_logs(&rt, l, "be_app/srv2 is UP"))
        .max()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.join().unwrap();
    }
    let want = ["be_app/srv2 UP->DOWN", "be_app/srv2 DOWN->UP"];
    // Each transition between the moment it was caused and the moment it
    // was seen (less a second: podman's `docker logs -t` has no fraction).
    let within = |got: &[(Option<i64>, String)], slack: i64, what: &str| {
        let labels: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, want, "{what}");
        let (down, up) = (got[0].0.unwrap(), got[1].0.unwrap());
        assert!(
            down >= killed - slack && down <= down_seen,
            "{what}: DOWN at {down}, killed {killed}, seen {down_seen}"
        );
        assert!(
            up >= back - slack && up <= up_seen,
            "{what}: UP at {up}, back {back}, seen {up_seen}"
        );
    };

    // `docker logs -t haproxy 2>&1 | hapwatch analyze -`, as in the README.
    let out = rt.run("docker logs -t haproxy 2>&1 | hapwatch analyze --format json -");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["input"]["unparsed"], 0, "{}", r["input"]);
    assert!(
        r["input"]["requests"].as_u64().unwrap() >= 5,
        "{}\n{}",
        r["input"],
        rt.run("docker logs -t haproxy 2>&1")
    );
    within(&story(&r), 1_000, "docker logs -t");

    // Without -t the health lines have no time: each takes that of the
    // request line before it (HAProxy's accept date), 100 ms of traffic
    // apart at most, plus the request's own time.
    let out = rt.run("docker logs haproxy 2>&1 | hapwatch analyze --format json -");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["input"]["unparsed"], 0, "{}", r["input"]);
    within(&story(&r), 2_000, "docker logs");

    // The runtime's own file: Docker's json-file driver; podman's k8s-file
    // driver, which writes the CRI format (nanosecond times, stdout/stderr,
    // F/P).
    let file = match engine {
        Engine::Docker => rt.run("docker inspect --format '{{.LogPath}}' haproxy"),
        Engine::Podman => {
            let out = rt
                .podman()
                .args([
                    "inspect",
                    "--format",
                    "{{.HostConfig.LogConfig.Path}}",
                    "haproxy",
                ])
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let file = file.trim();
    let first = std::fs::read_to_string(file).unwrap();
    let first = first.lines().next().unwrap();
    match engine {
        Engine::Docker => assert!(first.starts_with("{\"log\":"), "{first}"),
        Engine::Podman => assert!(
            first.contains(" stdout F ") || first.contains(" stderr F "),
            "{first}"
        ),
    }
    let r = analyze_json(&[file]);
    assert_eq!(r["input"]["unparsed"], 0, "{}", r["input"]);
    within(&story(&r), 0, &format!("{engine:?}'s log file"));
    assert!(
        r["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["host"] == ""),
        "stdout/stderr are never a host: {}",
        r["servers"]
    );

    if swarm {
        // `docker service logs -t haproxy | hapwatch analyze -`, as in the
        // README: the service and slot name the load balancer.
        for (cmd, slack) in [
            ("docker service logs -t lb", 1_000),
            ("docker service logs lb", 2_000),
        ] {
            let out = rt.run(&format!("{cmd} 2>&1 | hapwatch analyze --format json -"));
            let r: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(r["input"]["unparsed"], 0, "{cmd}: {}", r["input"]);
            within(&story(&r), slack, cmd);
            assert!(
                r["servers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|s| s["host"] == "lb.1"),
                "{cmd}: {}",
                r["servers"]
            );
        }
    }

    // `docker logs -f -t haproxy 2>&1 | hapwatch listen --stdin`, as in the
    // README: live until the container stops and its log ends.
    let db = rt.path("live.db");
    let mut follow = rt
        .sh(&format!(
            "docker logs -f -t haproxy 2>&1 | hapwatch listen --stdin --db {}",
            db.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    rt.run("docker stop -t 2 haproxy >/dev/null");
    let deadline = Instant::now() + Duration::from_secs(30);
    while follow.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "listen --stdin did not end with the log"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut err = String::new();
    follow
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(follow.wait().unwrap().success(), "{err}");
    let out = hapwatch(&["history", "--db", db.to_str().unwrap(), "--format", "json"]);
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    within(&story(&h), 1_000, "listen --stdin");
    drop(srv2);
}
