//! Health events: what a matched health pattern says, in typed form.

use std::sync::OnceLock;

use regex::bytes::{Captures, Regex};
use serde::Serialize;

use crate::patterns::{Class, Pattern, StateRef};

/// HAProxy's operational state of a server (`SRV_ST_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub enum Op {
    #[serde(rename = "UP")]
    Up,
    #[serde(rename = "DOWN")]
    Down,
    #[serde(rename = "STOPPING")]
    Stopping,
}

/// HAProxy's administrative state of a server (`SRV_ADMF_*`, simplified).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub enum Admin {
    #[serde(rename = "READY")]
    Ready,
    #[serde(rename = "MAINT")]
    Maint,
    #[serde(rename = "DRAIN")]
    Drain,
}

/// The details of a check, from `reason: ..., code: N, info: "...", check
/// duration: Nms` and, on check lines, `status: x/y UP`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `succeeded`, `failed`, `conditionally succeeded` (check lines only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// `status: x/y STATE`: x is the current health counter, y the rise or
    /// fall threshold it is heading to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<(u32, u32)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_state: Option<String>,
    pub agent: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthEvent {
    /// The pattern that matched (`server_down`, `health_check`, ...).
    pub pattern: String,
    pub class: Class,
    pub backend: String,
    /// Absent for backend events.
    pub server: Option<String>,
    pub backup: bool,
    pub op: Option<Op>,
    pub admin: Option<Admin>,
    /// The cause as HAProxy wrote it (check reason and info, `changed from
    /// CLI`, a DNS status, ...).
    pub cause: Option<String>,
    pub check: Option<CheckDetails>,
    /// `via be/srv`: the tracked server this state came from.
    pub via: Option<String>,
    pub active: Option<u32>,
    pub backups: Option<u32>,
    pub running_on_backup: bool,
    pub sessions: Option<u32>,
    pub requeued: Option<u32>,
    pub queue: Option<u32>,
    /// DNS: FQDN, or the old and new address.
    pub fqdn: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

fn text(c: &Captures, name: &str) -> Option<String> {
    c.name(name)
        .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
}

fn number(c: &Captures, name: &str) -> Option<u32> {
    std::str::from_utf8(c.name(name)?.as_bytes())
        .ok()?
        .parse()
        .ok()
}

fn resolve(r: &Option<StateRef>, c: &Captures) -> Option<String> {
    match r {
        None => None,
        Some(StateRef::Fixed(s)) => Some(s.clone()),
        Some(StateRef::Group(g)) => text(c, g),
    }
}

/// `reason: X[, code: N][, info: "..."][, check duration: Nms]`.
fn check_details(cause: &str) -> Option<CheckDetails> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r#"^reason: (?P<reason>.*?)(?:, code: (?P<code>-?\d+))?(?:, info: "(?P<info>.*)")?(?:, check duration: (?P<dur>\d+)ms)?$"#,
        )
        .expect("valid")
    });
    let c = re.captures(cause.as_bytes())?;
    Some(CheckDetails {
        reason: text(&c, "reason"),
        code: text(&c, "code").and_then(|s| s.parse().ok()),
        info: text(&c, "info"),
        duration_ms: text(&c, "dur").and_then(|s| s.parse().ok()),
        ..Default::default()
    })
}

impl HealthEvent {
    pub fn from_match(p: &Pattern, c: &Captures) -> HealthEvent {
        if p.class == Class::Process {
            return HealthEvent::process(p, c);
        }
        let cause = text(c, "cause");
        let mut check = cause.as_deref().and_then(check_details);
        if p.class == Class::Check {
            let d = check.get_or_insert_with(CheckDetails::default);
            d.result = text(c, "result");
            d.health = number(c, "health").zip(number(c, "of"));
            d.check_state = text(c, "check_state");
            d.agent = p.name.starts_with("agent");
        }
        let op = resolve(&p.op, c).and_then(|s| match s.as_str() {
            "UP" => Some(Op::Up),
            "DOWN" => Some(Op::Down),
            "STOPPING" => Some(Op::Stopping),
            _ => None,
        });
        let admin = resolve(&p.admin, c).and_then(|s| match s.as_str() {
            "READY" => Some(Admin::Ready),
            "MAINT" => Some(Admin::Maint),
            "DRAIN" => Some(Admin::Drain),
            _ => None,
        });
        HealthEvent {
            pattern: p.name.clone(),
            class: p.class,
            backend: text(c, "backend").unwrap_or_default(),
            server: if p.class == Class::Backend {
                None
            } else {
                text(c, "server")
            },
            backup: c.name("backup").is_some(),
            op,
            admin,
            cause,
            check,
            via: text(c, "via"),
            active: number(c, "active"),
            backups: number(c, "backups"),
            running_on_backup: c.name("on_backup").is_some(),
            sessions: number(c, "sessions"),
            requeued: number(c, "requeued"),
            queue: number(c, "queue"),
            fqdn: text(c, "fqdn"),
            from: text(c, "from"),
            to: text(c, "to"),
        }
    }

    /// HAProxy itself started, reloaded or stopped: no server, the proxy
    /// (if the line names one) in `backend`, the message in `cause`.
    fn process(p: &Pattern, c: &Captures) -> HealthEvent {
        HealthEvent {
            cause: c
                .get(0)
                .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned()),
            ..HealthEvent::bare(&p.name, p.class, &text(c, "proxy").unwrap_or_default())
        }
    }

    /// An event of `class` about `backend` that says nothing else yet:
    /// the base the other constructors fill.
    pub fn bare(pattern: &str, class: Class, backend: &str) -> HealthEvent {
        HealthEvent {
            pattern: pattern.to_string(),
            class,
            backend: backend.to_string(),
            server: None,
            backup: false,
            op: None,
            admin: None,
            cause: None,
            check: None,
            via: None,
            active: None,
            backups: None,
            running_on_backup: false,
            sessions: None,
            requeued: None,
            queue: None,
            fqdn: None,
            from: None,
            to: None,
        }
    }
}
