//! Delivering alerts to the remote sinks, through the outbox table.
//!
//! An alert event is written to the outbox, one row per remote sink that
//! wants it, in the same transaction that stores the alert
//! ([`crate::store::Store::persist`]). The [`Courier`] thread delivers
//! pending rows, oldest first and, per sink and alert, in order (a
//! resolution never overtakes its firing): at least once (a crash before a
//! row is marked delivered sends it again), retried with exponential backoff
//! across restarts, dead-lettered after `max_attempts` or at once on a
//! permanent refusal (visible in `hapwatch alerts`). An unreachable sink
//! only delays its own rows: ingestion never waits for delivery.
//! Alertmanager also gets every firing alert it wants re-posted every
//! `repeat` (it forgets alerts not re-sent within its resolve timeout).
//!
//! This module sits above the store (it reads and marks the outbox) and the
//! alert rules (their configuration and the [`Alert`] it sends).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::alerts::parse_duration;
use crate::alerts::sinks::{scrub, Delivery, SinkConfig};
use crate::model::{Alert, Severity, Status};
use crate::store::{OutboxRow, Store};

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Alertmanager's JSON for one alert.
fn alertmanager_json(a: &Alert, generator: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "labels": a.labels,
        "annotations": {
            "summary": a.summary,
            "description": a.description,
            "runbook": a.runbook,
        },
    });
    // From a line with no time (HAProxy's stderr read by `analyze`): no
    // start (Alertmanager takes its receive time) and an end of now, which
    // resolves it; never "time unknown" in a field Alertmanager parses.
    if !crate::time::is_untimed(a.starts_at) {
        v["startsAt"] = crate::time::format_rfc3339_ms(a.starts_at).into();
    }
    if let Some(e) = a.ends_at {
        let e = if crate::time::is_untimed(e) {
            wall_ms()
        } else {
            e
        };
        v["endsAt"] = crate::time::format_rfc3339_ms(e).into();
    }
    if let Some(g) = generator {
        v["generatorURL"] = g.into();
    }
    v
}

/// Why a delivery failed, for the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub message: String,
    /// Trying again cannot help: an HTTP 4xx other than 408 (timeout) and
    /// 429 (too many requests) says the request itself is refused.
    pub permanent: bool,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure {
            message,
            permanent: false,
        }
    }
}

/// An alert with no time later than `now`. A start in the future is a
/// clock problem (a sender's zone unset or wrong, a lying clock): sent as
/// it is, Alertmanager answers `400 start time must be before end time` on
/// every retry and the page never arrives. Said on stderr, once per alert
/// and sink try; the stored alert keeps its event time.
fn not_in_future(a: &Alert, now: crate::time::Millis) -> std::borrow::Cow<'_, Alert> {
    let late = |t: crate::time::Millis| t > now;
    if !late(a.starts_at) && !a.ends_at.is_some_and(late) {
        return std::borrow::Cow::Borrowed(a);
    }
    crate::say!(
        "hapwatch: alert {} {:?} starts at {}, after now ({}): a clock or time zone problem \
         (is --tz the HAProxy host's zone?); sent with its times clamped to now",
        a.rule,
        a.labels,
        crate::time::format_rfc3339_ms(a.starts_at),
        crate::time::format_rfc3339_ms(now)
    );
    let mut c = a.clone();
    c.starts_at = c.starts_at.min(now);
    c.ends_at = c.ends_at.map(|e| e.min(now).max(c.starts_at));
    std::borrow::Cow::Owned(c)
}

/// Sends one alert to one sink. Err says why, for the outbox.
pub fn deliver(sink: &SinkConfig, a: &Alert) -> Result<(), Failure> {
    let a = &*not_in_future(a, wall_ms());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(sink.timeout()))
        .http_status_as_error(false)
        .build()
        .into();
    let post =
        |url: &str, headers: &BTreeMap<String, String>, body: String| -> Result<(), Failure> {
            let mut req = agent.post(url).header("Content-Type", "application/json");
            for (k, v) in headers {
                let value = match v.strip_prefix("env:") {
                    Some(var) => {
                        std::env::var(var).map_err(|_| format!("header {k}: ${var} is not set"))?
                    }
                    None => v.clone(),
                };
                req = req.header(k.as_str(), value.as_str());
            }
            // A transport error may quote the URL, credentials included.
            let mut resp = req.send(body).map_err(|e| scrub(&e.to_string(), url))?;
            let code = resp.status().as_u16();
            if (200..300).contains(&code) {
                return Ok(());
            }
            // The receiver's reason (Alertmanager: "start time must be
            // before end time"), bounded: it is stored with the row.
            let said = resp
                .body_mut()
                .with_config()
                .limit(4096)
                .read_to_string()
                .unwrap_or_default();
            let said: String = said.trim().chars().take(512).collect();
            Err(Failure {
                message: if said.is_empty() {
                    format!("HTTP {code}")
                } else {
                    // A receiver may echo the request line back.
                    scrub(&format!("HTTP {code}: {said}"), url)
                },
                permanent: (400..500).contains(&code) && code != 408 && code != 429,
            })
        };
    match sink {
        SinkConfig::Webhook { url, headers, .. } => {
            post(url, headers, serde_json::to_string(a).expect("serializes"))
        }
        SinkConfig::Alertmanager {
            url, generator_url, ..
        } => {
            let body =
                serde_json::Value::Array(vec![alertmanager_json(a, generator_url.as_deref())]);
            post(
                &format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                &BTreeMap::new(),
                body.to_string(),
            )
        }
        SinkConfig::Exec { command, env, .. } => {
            exec(command, env, a, sink.timeout()).map_err(Failure::from)
        }
    }
}

fn exec(command: &[String], pass: &[String], a: &Alert, timeout: Duration) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a timeout kills whatever it started too.
        .process_group(0)
        .env("HAPWATCH_ALERT_RULE", &a.rule)
        .env(
            "HAPWATCH_ALERT_STATUS",
            match a.status {
                Status::Firing => "firing",
                Status::Resolved => "resolved",
            },
        )
        .env("HAPWATCH_ALERT_SEVERITY", a.severity.as_str())
        .env("HAPWATCH_ALERT_SUMMARY", &a.summary)
        .env(
            "HAPWATCH_ALERT_STARTS_AT",
            crate::time::format_rfc3339_ms(a.starts_at),
        );
    for name in pass {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    for (k, v) in &a.labels {
        cmd.env(format!("HAPWATCH_ALERT_LABEL_{}", k.to_uppercase()), v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", command[0]))?;
    // Written on its own thread: a child that never reads its stdin must
    // not hold this thread past the timeout (a pipe takes 64 KiB).
    let feeder = child.stdin.take().map(|mut stdin| {
        let mut json = serde_json::to_string(a).expect("serializes");
        json.push('\n');
        std::thread::spawn(move || {
            let _ = stdin.write_all(json.as_bytes());
        })
    });
    let deadline = Instant::now() + timeout;
    let result = loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => break Ok(()),
            Ok(Some(s)) => break Err(format!("{} exited with {s}", command[0])),
            Ok(None) if Instant::now() >= deadline => {
                // SAFETY: killpg on the group this child leads; no memory
                // is touched.
                unsafe {
                    libc::killpg(child.id() as libc::pid_t, libc::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("{} timed out after {timeout:?}", command[0]));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => break Err(e.to_string()),
        }
    };
    // The child is gone, so is its end of the pipe: the writer returns.
    if let Some(f) = feeder {
        let _ = f.join();
    }
    result
}

/// The delivery thread: its own connection to the database.
/// Delivery tries by sink and outcome, for `/metrics`
/// (`hapwatch_alert_deliveries_total`): delivered, failed and retried,
/// failed for good (dead-lettered).
#[derive(Debug, Default)]
pub struct Outcomes(std::sync::Mutex<std::collections::BTreeMap<String, [u64; 3]>>);

/// The outcomes' names, in [`Outcomes`]' order.
pub const OUTCOMES: [&str; 3] = ["delivered", "retried", "dead"];

impl Outcomes {
    fn add(&self, sink: &str, outcome: usize) {
        let mut m = self.0.lock().expect("outcomes lock");
        match m.get_mut(sink) {
            Some(c) => c[outcome] += 1,
            None => {
                let mut c = [0; 3];
                c[outcome] = 1;
                m.insert(sink.to_string(), c);
            }
        }
    }

    pub fn snapshot(&self) -> Vec<(String, [u64; 3])> {
        let m = self.0.lock().expect("outcomes lock");
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

pub struct Courier {
    /// What became of each try, by sink.
    pub outcomes: std::sync::Arc<Outcomes>,
    pub store: Store,
    /// Replaced on SIGHUP.
    pub sinks: std::sync::Arc<std::sync::Mutex<Vec<SinkConfig>>>,
    pub delivery: Delivery,
    /// Alert events the database could not store yet: each remote sink
    /// that wants one is tried once, at once, so a failing disk does not
    /// hold up a page. Once stored they go through the outbox as usual (at
    /// least once: a sink may get such an event twice).
    pub direct: std::sync::mpsc::Receiver<Vec<Alert>>,
}

impl Courier {
    /// Delivers what is due; returns how many rows it handled. Called in a
    /// loop by [`Courier::run`].
    pub fn round(&mut self) -> usize {
        let now = wall_ms();
        let rows: Vec<OutboxRow> = match self.store.outbox_due(now, 100) {
            Ok(r) => r,
            Err(_) => return 0,
        };
        let min = parse_duration(&self.delivery.retry_min).unwrap_or(1000);
        let max = parse_duration(&self.delivery.retry_max).unwrap_or(300_000);
        let n = rows.len();
        let sinks = self.sinks.lock().expect("sinks lock").clone();
        for row in rows {
            let Some(sink) = sinks.iter().find(|s| s.name() == row.sink) else {
                // The sink was removed from the configuration: dead.
                let _ = self
                    .store
                    .outbox_failed(row.id, now, "sink no longer configured", true);
                continue;
            };
            let alert: Alert = match serde_json::from_str(&row.payload) {
                Ok(a) => a,
                Err(e) => {
                    let _ = self.store.outbox_failed(row.id, now, &e.to_string(), true);
                    continue;
                }
            };
            match deliver(sink, &alert) {
                Ok(()) => {
                    self.outcomes.add(&row.sink, 0);
                    let _ = self.store.outbox_delivered(row.id, wall_ms());
                }
                Err(e) => {
                    let attempts = row.attempts + 1;
                    let dead = e.permanent || attempts >= self.delivery.max_attempts;
                    self.outcomes.add(&row.sink, if dead { 2 } else { 1 });
                    let backoff = min.saturating_mul(1 << attempts.min(20)).min(max);
                    let _ = self
                        .store
                        .outbox_failed(row.id, wall_ms() + backoff, &e.message, dead);
                }
            }
        }
        n
    }

    /// Tries the events handed over while the database failed (see
    /// [`Courier::direct`]).
    pub fn direct_round(&mut self) {
        while let Ok(alerts) = self.direct.try_recv() {
            let sinks = self.sinks.lock().expect("sinks lock").clone();
            for a in &alerts {
                for s in sinks.iter().filter(|s| s.wants(a.severity)) {
                    let _ = deliver(s, a);
                }
            }
        }
    }

    /// Queues firing alerts again for webhook and exec sinks once their
    /// repeat interval has passed.
    pub fn renotify(&mut self) {
        let every = parse_duration(&self.delivery.repeat_interval).unwrap_or(4 * 3_600_000);
        let sinks: Vec<(String, Severity)> = self
            .sinks
            .lock()
            .expect("sinks lock")
            .iter()
            .filter(|s| !matches!(s, SinkConfig::Alertmanager { .. }))
            .map(|s| (s.name(), s.min_severity()))
            .collect();
        if sinks.is_empty() {
            return;
        }
        let now = wall_ms();
        let _ = self.store.renotify(&sinks, now - every, now);
    }

    /// Re-posts firing alerts to Alertmanager sinks (best effort).
    pub fn repost(&mut self) {
        let firing = match self.store.firing_alerts() {
            Ok(f) => f,
            Err(_) => return,
        };
        let sinks = self.sinks.lock().expect("sinks lock").clone();
        for s in &sinks {
            if let SinkConfig::Alertmanager { .. } = s {
                for a in firing.iter().filter(|a| s.wants(a.severity)) {
                    let _ = deliver(s, a);
                }
            }
        }
    }

    /// Runs until `stop` is set. What is still pending stays in the outbox
    /// for the next start (a sink that does not answer must not hold up the
    /// shutdown).
    /// `wake` is signalled after a commit that stored alerts: delivery
    /// starts at once instead of at the next poll.
    pub fn run(
        mut self,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        wake: std::sync::mpsc::Receiver<()>,
    ) {
        let repeat =
            Duration::from_millis(parse_duration(&self.delivery.repeat).unwrap_or(60_000) as u64);
        let mut last_repost = Instant::now();
        let mut last_renotify = Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            self.direct_round();
            if self.round() == 0 {
                // Retries come due on their own: poll now and then.
                let _ = wake.recv_timeout(Duration::from_millis(100));
                while wake.try_recv().is_ok() {}
            }
            if last_repost.elapsed() >= repeat {
                self.repost();
                last_repost = Instant::now();
            }
            if last_renotify.elapsed() >= Duration::from_millis(200) {
                self.renotify();
                last_renotify = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            rule: "haproxy_backend_server_status".into(),
            status: Status::Firing,
            severity: Severity::Critical,
            labels: [("server".to_string(), "srv1".to_string())].into(),
            starts_at: 0,
            ends_at: None,
            summary: "be/srv1 is DOWN".into(),
            description: String::new(),
            runbook: String::new(),
        }
    }

    fn exec_sink(script: &str, env: &[&str], timeout: &str) -> SinkConfig {
        SinkConfig::Exec {
            name: None,
            command: vec!["sh".into(), "-c".into(), script.into()],
            timeout: Some(timeout.into()),
            env: env.iter().map(|s| s.to_string()).collect(),
            min_severity: None,
        }
    }

    #[test]
    fn no_time_goes_to_a_sink_in_the_future() {
        // A DOWN stamped nine hours ahead (a Tokyo host read as UTC): the
        // exec sink, like every sink, gets it clamped to now.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("starts");
        let future = alert_at(wall_ms() + 9 * 3_600_000);
        let script = format!("echo $HAPWATCH_ALERT_STARTS_AT > {}", out.display());
        deliver(&exec_sink(&script, &[], "5s"), &future).unwrap();
        let sent = std::fs::read_to_string(&out).unwrap();
        let sent = crate::time::parse_user_time(sent.trim()).unwrap();
        assert!(sent <= wall_ms() && sent > wall_ms() - 60_000, "{sent}");
        // Resolved in the future too: both clamped, end not before start.
        let mut r = alert_at(wall_ms() + 3_600_000);
        r.ends_at = Some(wall_ms() + 7_200_000);
        let now = wall_ms();
        let c = not_in_future(&r, now);
        assert_eq!((c.starts_at, c.ends_at), (now, Some(now)));
        // The past is left alone, borrowed.
        let past = alert_at(1_000);
        assert!(matches!(
            not_in_future(&past, now),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn an_alert_from_a_line_with_no_time_reaches_alertmanager_parseable() {
        // HAProxy's bare stderr read by `analyze --alerts`: the alert's
        // times are arrival orders. Alertmanager gets no startsAt (it takes
        // its own receive time) and, resolved, an endsAt of now.
        let mut a = alert_at(crate::time::untimed(1));
        let v = alertmanager_json(&a, None);
        assert!(v.get("startsAt").is_none(), "{v}");
        assert!(v.get("endsAt").is_none(), "{v}");
        a.ends_at = Some(crate::time::untimed(2));
        let v = alertmanager_json(&a, None);
        let end = crate::time::parse_user_time(v["endsAt"].as_str().unwrap()).unwrap();
        assert!((wall_ms() - end).abs() < 60_000, "{v}");
    }

    fn alert_at(t: crate::time::Millis) -> Alert {
        Alert {
            starts_at: t,
            ..alert()
        }
    }

    #[test]
    fn the_exec_sink_gets_a_cleared_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        // Names only this test uses: the process environment is shared.
        std::env::set_var("HAPWATCH_TEST_HOOK_TOKEN", "s3cret");
        std::env::set_var("HAPWATCH_TEST_PASSED", "wanted");
        let script = format!("env > {}", out.display());
        deliver(
            &exec_sink(&script, &["HAPWATCH_TEST_PASSED"], "5s"),
            &alert(),
        )
        .unwrap();
        let env = std::fs::read_to_string(&out).unwrap();
        assert!(
            !env.contains("s3cret"),
            "a secret reached the child:\n{env}"
        );
        assert!(env.contains("HAPWATCH_TEST_PASSED=wanted"), "{env}");
        assert!(env.contains("HAPWATCH_ALERT_RULE=haproxy_backend_server_status"));
        assert!(env.contains("HAPWATCH_ALERT_LABEL_SERVER=srv1"));
        assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
    }

    #[test]
    fn a_child_that_never_reads_a_large_alert_is_killed_at_its_timeout() {
        let mut a = alert();
        a.description = "x".repeat(200_000); // more than a pipe holds
        let started = Instant::now();
        let r = deliver(&exec_sink("sleep 30", &[], "500ms"), &a);
        let took = started.elapsed();
        assert!(r.unwrap_err().message.contains("timed out"));
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }
}
