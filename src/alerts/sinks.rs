//! Where alerts go: the `[[sinks]]` of the rule file (webhook, Alertmanager,
//! exec) and the outbox's retry policy. Delivering them is
//! [`crate::delivery`]'s work.
//!
//! An alert event is written to the outbox, one row per remote sink, in the
//! same transaction that stores the alert ([`crate::store::Store::persist`]).
//! The [`Courier`] thread delivers pending rows, oldest first: at least once
//! (a crash before a row is marked delivered sends it again), retried with
//! exponential backoff across restarts, dead-lettered after `max_attempts`
//! (visible in `hapwatch alerts`). An unreachable sink only delays its own
//! rows: ingestion never waits for delivery. Alertmanager also gets every
//! firing alert re-posted every `repeat` (it forgets alerts not re-sent
//! within its resolve timeout).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{parse_duration, Severity};

/// One `[[sinks]]` entry of the rule file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON POST of the alert to `url`. Header values `env:NAME` are read
    /// from the environment (secrets stay out of the file and the logs).
    Webhook {
        name: Option<String>,
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        timeout: Option<String>,
        /// Alerts below this severity are not sent here (default warning:
        /// MAINT and DRAIN records, at info, are not paged).
        #[serde(default)]
        min_severity: Option<Severity>,
    },
    /// Prometheus Alertmanager: `POST {url}/api/v2/alerts`.
    Alertmanager {
        name: Option<String>,
        url: String,
        #[serde(default)]
        timeout: Option<String>,
        /// Link back in `generatorURL` (e.g. the stats page).
        #[serde(default)]
        generator_url: Option<String>,
        #[serde(default)]
        min_severity: Option<Severity>,
    },
    /// Runs `command[0]` with `command[1..]` (no shell), the alert as JSON
    /// on stdin and as HAPWATCH_ALERT_* variables; exit 0 is success. The
    /// child's environment is cleared: it gets `PATH`, the alert's
    /// variables and only the variables named in `env` (hapwatch's own
    /// environment holds webhook secrets).
    Exec {
        name: Option<String>,
        command: Vec<String>,
        #[serde(default)]
        timeout: Option<String>,
        #[serde(default)]
        env: Vec<String>,
        #[serde(default)]
        min_severity: Option<Severity>,
    },
}

impl SinkConfig {
    pub fn name(&self) -> String {
        match self {
            SinkConfig::Webhook { name, url, .. } => name
                .clone()
                .unwrap_or_else(|| format!("webhook {}", redact_url(url))),
            SinkConfig::Alertmanager { name, url, .. } => name
                .clone()
                .unwrap_or_else(|| format!("alertmanager {}", redact_url(url))),
            SinkConfig::Exec { name, command, .. } => name
                .clone()
                .unwrap_or_else(|| format!("exec {}", command.first().map_or("", |c| c.as_str()))),
        }
    }

    /// The least severe alert this sink receives.
    pub fn min_severity(&self) -> Severity {
        match self {
            SinkConfig::Webhook { min_severity, .. }
            | SinkConfig::Alertmanager { min_severity, .. }
            | SinkConfig::Exec { min_severity, .. } => min_severity.unwrap_or(Severity::Warning),
        }
    }

    /// Whether an alert of this severity goes to this sink.
    pub fn wants(&self, s: Severity) -> bool {
        s.rank() >= self.min_severity().rank()
    }

    pub fn timeout(&self) -> Duration {
        let t = match self {
            SinkConfig::Webhook { timeout, .. }
            | SinkConfig::Alertmanager { timeout, .. }
            | SinkConfig::Exec { timeout, .. } => timeout,
        };
        Duration::from_millis(t.as_deref().and_then(parse_duration).unwrap_or(5_000) as u64)
    }

    /// What the rule-file check reports.
    pub fn check(&self) -> Result<(), String> {
        let t = match self {
            SinkConfig::Webhook { url, timeout, .. }
            | SinkConfig::Alertmanager { url, timeout, .. } => {
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    return Err(format!(
                        "sink {}: url must start with http:// or https://",
                        self.name()
                    ));
                }
                timeout
            }
            SinkConfig::Exec {
                command, timeout, ..
            } => {
                if command.is_empty() {
                    return Err(format!("sink {}: command is empty", self.name()));
                }
                timeout
            }
        };
        if let Some(t) = t {
            if parse_duration(t).is_none() {
                return Err(format!(
                    "sink {}: timeout = {t:?}: not a duration",
                    self.name()
                ));
            }
        }
        Ok(())
    }
}

/// Retry policy of the outbox.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// First retry after this; doubled each time up to `retry_max`.
    pub retry_min: String,
    pub retry_max: String,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// Firing alerts are re-posted to Alertmanager this often.
    pub repeat: String,
    /// A firing alert is notified again to webhook and exec sinks this
    /// often while it fires.
    pub repeat_interval: String,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            retry_min: "1s".into(),
            retry_max: "5m".into(),
            max_attempts: 10,
            repeat: "1m".into(),
            repeat_interval: "4h".into(),
        }
    }
}

/// The outbox's view of the sinks: name and least severity (the store
/// writes one row per remote sink that wants the alert).
/// A URL as it may be shown and stored: a password (`user:***@`), a
/// user-only credential (`***@`) and every query value (`token=***`)
/// hidden; scheme, host, port and path kept, so the sink is still
/// recognisable.
pub fn redact_url(url: &str) -> String {
    let (rest, fragment) = match url.split_once('#') {
        Some((r, _)) => (r, "#***"),
        None => (url, ""),
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (scheme, after) = match before_query.split_once("://") {
        Some((s, a)) => (Some(s), a),
        None => (None, before_query),
    };
    let authority_end = after.find('/').unwrap_or(after.len());
    let (authority, path) = after.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_string(),
    };
    let mut out = String::with_capacity(url.len());
    if let Some(s) = scheme {
        out.push_str(s);
        out.push_str("://");
    }
    out.push_str(&authority);
    out.push_str(path);
    if let Some(q) = query {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None => kv.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out.push_str(fragment);
    out
}

/// `text` (an error message) with every secret of `url` replaced: the
/// URL itself and, in case a library quotes them apart, its password,
/// user-only credential and query values.
pub fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact_url(url));
    let after = url.split_once("://").map_or(url, |(_, a)| a);
    let authority = &after[..after.find('/').unwrap_or(after.len())];
    let mut secrets: Vec<&str> = Vec::new();
    if let Some((user, _)) = authority.rsplit_once('@') {
        secrets.push(user.split_once(':').map_or(user, |(_, pass)| pass));
    }
    if let Some((_, q)) = url.split_once('?') {
        let q = q.split('#').next().unwrap_or(q);
        secrets.extend(
            q.split('&')
                .filter_map(|kv| kv.split_once('=').map(|(_, v)| v)),
        );
    }
    for s in secrets.into_iter().filter(|s| s.len() >= 3) {
        out = out.replace(s, "***");
    }
    out
}

pub fn names(sinks: &[SinkConfig]) -> Vec<(String, Severity)> {
    sinks.iter().map(|s| (s.name(), s.min_severity())).collect()
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn secrets_in_urls_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact_url("https://ops:S3cret@hooks.example.com:8443/a/b?token=abc&team=web#frag"),
            "https://ops:***@hooks.example.com:8443/a/b?token=***&team=***#***"
        );
        assert_eq!(
            redact_url("https://T0ken@api.example.com/x"),
            "https://***@api.example.com/x"
        );
        assert_eq!(redact_url("http://127.0.0.1:9093"), "http://127.0.0.1:9093");
        // An @ in the path is not a credential.
        assert_eq!(
            redact_url("http://h/users/@me?flag"),
            "http://h/users/@me?flag"
        );
        assert_eq!(
            scrub(
                "http://u:pw1@h/x?k=v12: connection refused (pw1)",
                "http://u:pw1@h/x?k=v12"
            ),
            "http://u:***@h/x?k=***: connection refused (***)"
        );
    }
}
