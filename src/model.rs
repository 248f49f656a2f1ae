//! The shared nouns: what one step hands to the next. Every module above
//! `haproxy` may use them; they depend on nothing but `haproxy`'s parsed
//! check details and `time`.
//!
//! - [`ServerKey`]: a server, keyed by the HAProxy host that logged it.
//! - [`Label`], [`Transition`]: a server's state and a change of it.
//! - [`StateEvent`]: what the engine tells the alert rules, in event-time
//!   order (a transition, a backend event, how far the ordered path has
//!   come, a preview of held lines).
//! - [`Alert`], [`Severity`], [`Status`]: what the rules produce, what the
//!   store keeps and what the sinks deliver.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::haproxy::{Admin, CheckDetails, Op};
use crate::time::Millis;

/// Identifies a server: the HAProxy host that logged it (empty when the
/// syslog header had none), its backend and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServerKey {
    pub host: String,
    pub backend: String,
    pub server: String,
}

/// The one-word state an operator reads on the stats page.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Label {
    Unknown,
    Up,
    Down,
    Stopping,
    Maint,
    Drain,
}

impl Label {
    pub fn of(op: Option<Op>, admin: Admin) -> Label {
        match (admin, op) {
            (Admin::Maint, _) => Label::Maint,
            (_, None) => Label::Unknown,
            (_, Some(Op::Down)) => Label::Down,
            (Admin::Drain, _) => Label::Drain,
            (_, Some(Op::Stopping)) => Label::Stopping,
            (_, Some(Op::Up)) => Label::Up,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Unknown => "UNKNOWN",
            Label::Up => "UP",
            Label::Down => "DOWN",
            Label::Stopping => "STOPPING",
            Label::Maint => "MAINT",
            Label::Drain => "DRAIN",
        }
    }
}

/// One state change, as listed in reports (JSON: `at` in RFC 3339; `null`
/// with `order` for a line that had no time, see [`crate::time::UNTIMED`]).
#[derive(Clone, Debug, Serialize)]
pub struct Transition {
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub at: Millis,
    /// Arrival order (from 1) of a transition whose line had no time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
    pub host: String,
    pub backend: String,
    pub server: String,
    pub from: Label,
    pub to: Label,
    pub cause: Option<String>,
    pub pattern: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckDetails>,
    /// How many transitions of this server to the same state came before
    /// it at this same millisecond (a server DOWN, UP and DOWN again within
    /// a second of a log dated to the second): part of its key in the
    /// store.
    #[serde(skip)]
    pub nth: u32,
}

/// One health check line (`Health check for server be/srv failed, reason:
/// ..., status: 0/2 DOWN.`): the steps that lead to a transition, kept for
/// timelines (the first failed check is the first sign).
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub at: Millis,
    pub host: String,
    pub backend: String,
    pub server: String,
    pub check: CheckDetails,
}

/// HAProxy itself started, reloaded or stopped, as it logged it: a proxy
/// started or stopped, a worker forked or exited, a reload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessEvent {
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub at: Millis,
    pub host: String,
    /// The pattern's name (`worker_forked`, `proxy_stopped`, ...).
    pub event: String,
    /// The proxy the line names, empty when it names none.
    pub proxy: String,
    pub message: String,
}

/// What the alert rules read of a backend right after an event: how many
/// active servers it has left and whether it has none available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendView {
    pub active: Option<u32>,
    pub no_server: bool,
}

/// The engine's account of health, in the order it applied it: what the
/// alert rules consume ([`crate::engine::Engine::events`]).
#[derive(Clone, Debug)]
pub enum StateEvent {
    /// A transition, just applied, and its backend after it (boxed: events
    /// are moved around often, transitions are few).
    Transition(Box<Transition>, BackendView),
    /// A backend-level event that is not a transition ("no server
    /// available"), and the backend after it.
    Backend {
        host: String,
        backend: String,
        at: Millis,
        view: BackendView,
    },
    /// A server's health line (a check line, a state line) applied on
    /// `host`, and the server's state after it: how the fleet rules know
    /// which load balancers report a server, transitions or not (a check
    /// line's `status: 2/2 UP` is a state but not a transition).
    Heard {
        host: String,
        backend: String,
        server: String,
        at: Millis,
        label: Label,
    },
    /// Live: the ordered path has applied every event before `next` (every
    /// event if None), the last at `now`; what was announced ahead for an
    /// earlier time is confirmed or withdrawn.
    Released { next: Option<Millis>, now: Millis },
    /// Live: the events one state line and the lines held with it in the
    /// reorder window will give its backend, worked out ahead of the window
    /// on a scratch copy of the backend.
    Preview {
        host: String,
        backend: String,
        events: Vec<StateEvent>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    /// The severity `as_str` names, if it is one.
    pub fn from_name(name: &str) -> Option<Severity> {
        [Severity::Critical, Severity::Warning, Severity::Info]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    /// Info < warning < critical: a sink's `min_severity` compares these.
    pub fn rank(self) -> u8 {
        match self {
            Severity::Info => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

/// One alert, as sinks and `hapwatch alerts` show it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub rule: String,
    pub status: Status,
    pub severity: Severity,
    /// alertname, host, backend, server (when it is about one), severity,
    /// and the rule's own labels.
    pub labels: BTreeMap<String, String>,
    #[serde(
        serialize_with = "crate::time::serialize_rfc3339",
        deserialize_with = "de_time"
    )]
    pub starts_at: Millis,
    #[serde(
        serialize_with = "serialize_opt_time",
        deserialize_with = "de_opt_time",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub ends_at: Option<Millis>,
    pub summary: String,
    pub description: String,
    pub runbook: String,
}

fn de_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
    let s = String::deserialize(d)?;
    crate::time::parse_rfc3339(s.as_bytes())
        .map(|(t, _)| t)
        .ok_or_else(|| serde::de::Error::custom(format!("{s}: not an RFC 3339 time")))
}

fn de_opt_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
    de_time(d).map(Some)
}

fn serialize_opt_time<S: serde::Serializer>(t: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => crate::time::serialize_rfc3339(t, s),
        None => s.serialize_none(),
    }
}

impl Alert {
    /// Identifies "the same alert" across firing and resolution: the rule
    /// and its labels.
    pub fn fingerprint(&self) -> String {
        let mut f = self.rule.clone();
        for (k, v) in &self.labels {
            f.push('\x1f');
            f.push_str(k);
            f.push('=');
            f.push_str(v);
        }
        f
    }

    /// One line for a terminal.
    pub fn line(&self) -> String {
        let at = crate::time::format_rfc3339_ms(self.ends_at.unwrap_or(self.starts_at));
        let status = match self.status {
            Status::Firing => "FIRING",
            Status::Resolved => "RESOLVED",
        };
        let line = format!(
            "{at} {status} [{}] {}: {}",
            self.severity.as_str(),
            self.rule,
            self.summary
        );
        // The summary names servers from the log: see `text`.
        crate::text::printable(&line).into_owned()
    }
}
