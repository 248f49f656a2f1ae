//! Health events: what a matched health pattern says, in typed form.

use std::sync::OnceLock;

use regex::bytes::Regex;
use serde::{Deserialize, Serialize};

use crate::patterns::{Class, Groups, Pattern, StateRef};

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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
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

fn text(c: &Groups, name: &str) -> Option<String> {
    c.name(name)
        .map(|m| String::from_utf8_lossy(m).into_owned())
}

fn number(c: &Groups, name: &str) -> Option<u32> {
    std::str::from_utf8(c.name(name)?).ok()?.parse().ok()
}

fn resolve(r: &Option<StateRef>, c: &Groups) -> Option<String> {
    match r {
        None => None,
        Some(StateRef::Fixed(s)) => Some(s.clone()),
        Some(StateRef::Group(g)) => text(c, g),
    }
}

/// `reason: X[, code: N][, info: "..."][, check duration: Nms]`, as
/// HAProxy's `srv_append_status` writes it. Read by hand: the regex with
/// captures ([`check_details_regex`], which says what is read) was about
/// two fifths of a health line's 69,000 instructions (1.1% of a whole
/// log's at 0.2% of its lines).
/// A cause that is not plain ASCII on one line (where the regex's `\d`
/// and `.` read Unicode) goes to the regex itself.
fn check_details(cause: &str) -> Option<CheckDetails> {
    if !cause.is_ascii() || cause.contains('\n') {
        return check_details_regex(cause);
    }
    let body = cause.strip_prefix("reason: ")?;
    // The reason is as short as it can be: it ends at the first `, ` (or
    // the end) after which the optional parts take the rest exactly.
    let ends = body.match_indices(", ").map(|(i, _)| i);
    let (reason, (code, info, dur)) = ends
        .chain([body.len()])
        .find_map(|i| Some((&body[..i], check_parts(&body[i..])?)))?;
    let own = |s: &str| s.to_string();
    Some(CheckDetails {
        reason: Some(own(reason)),
        code: code.and_then(|s| s.parse().ok()),
        info: info.map(own),
        duration_ms: dur.and_then(|s| s.parse().ok()),
        ..Default::default()
    })
}

/// What follows the reason, all of it: `[, code: N][, info: "..."][,
/// check duration: Nms]`; the code, info and duration as written.
type Parts<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

fn check_parts(mut rest: &str) -> Option<Parts<'_>> {
    fn digits(s: &str) -> usize {
        s.bytes().take_while(u8::is_ascii_digit).count()
    }
    let mut code = None;
    if let Some(r) = rest.strip_prefix(", code: ") {
        let sign = usize::from(r.starts_with('-'));
        let n = sign + digits(&r[sign..]);
        if n > sign {
            code = Some(&r[..n]);
            rest = &r[n..];
        }
    }
    /// The duration, when the rest is exactly it.
    fn duration(r: &str) -> Option<&str> {
        let d = r.strip_prefix(", check duration: ")?.strip_suffix("ms")?;
        (!d.is_empty() && digits(d) == d.len()).then_some(d)
    }
    if let Some(r) = rest.strip_prefix(", info: \"") {
        // The info runs to the last quote that the end, or a duration
        // and the end, can follow (its `.*` takes all it can).
        if let Some(info) = r.strip_suffix('"') {
            return Some((code, Some(info), None));
        }
        let q = r.rfind("\", check duration: ")?;
        return Some((code, Some(&r[..q]), Some(duration(&r[q + 1..])?)));
    }
    if rest.is_empty() {
        return Some((code, None, None));
    }
    Some((code, None, Some(duration(rest)?)))
}

/// [`check_details`] by its regex: the reference for what it reads.
fn check_details_regex(cause: &str) -> Option<CheckDetails> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r#"^reason: (?P<reason>.*?)(?:, code: (?P<code>-?\d+))?(?:, info: "(?P<info>.*)")?(?:, check duration: (?P<dur>\d+)ms)?$"#,
        )
        .expect("valid")
    });
    let c = re.captures(cause.as_bytes())?;
    let text = |name| {
        c.name(name)
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
    };
    Some(CheckDetails {
        reason: text("reason"),
        code: text("code").and_then(|s| s.parse().ok()),
        info: text("info"),
        duration_ms: text("dur").and_then(|s| s.parse().ok()),
        ..Default::default()
    })
}

impl HealthEvent {
    pub fn from_match(p: &Pattern, c: &Groups) -> HealthEvent {
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
    fn process(p: &Pattern, c: &Groups) -> HealthEvent {
        HealthEvent {
            cause: Some(String::from_utf8_lossy(c.whole()).into_owned()),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand reader reads what the regex reads: HAProxy's own causes,
    /// and every arrangement of parts with the pieces that could fool a
    /// reader (a `, code: ` inside the reason, quotes and a duration inside
    /// the info, numbers too long, parts out of order or cut short).
    #[test]
    fn check_details_read_by_hand_as_the_regex_reads_them() {
        let mut causes = vec![
            "reason: Layer7 check passed, code: 200, check duration: 0ms".to_string(),
            "reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms"
                .into(),
            "reason: Layer4 check passed, check duration: 0ms".into(),
            "reason: Layer7 wrong status, code: 0, info: \"via agent : down\"".into(),
            "reason: Layer4 timeout, check duration: 2001ms".into(),
            "reason: Socket error, info: \"No port available for the TCP connection\"".into(),
            "reason: Layer6 invalid response, info: \"SSL handshake failure\", check duration: 3ms"
                .into(),
            "reason: Agent reports an error, info: \"drain\"".into(),
            "changed from CLI".into(),
            "reason: ".into(),
            "reason:".into(),
            "reason: ünïcode, code: 5".into(),
            "reason: digits, code: ١٢".into(),
            "reason: two\nlines, code: 5".into(),
        ];
        let reasons = [
            "Layer7 check passed",
            "a, code: 1 b",
            "x, info: \"y",
            "",
            "r, check duration: 5ms z",
        ];
        let codes = [
            "",
            ", code: 200",
            ", code: -1",
            ", code: ",
            ", code: 99999999999",
            ", code: 2x",
        ];
        let infos = [
            "",
            ", info: \"Connection refused\"",
            ", info: \"a \" quote\"",
            ", info: \"x\", check duration: 5ms\"",
            ", info: \"unterminated",
            ", info: \"\"",
        ];
        let durs = [
            "",
            ", check duration: 12ms",
            ", check duration: ms",
            ", check duration: 99999999999999999999999ms",
            ", check duration: 5",
        ];
        for r in reasons {
            for c in codes {
                for i in infos {
                    for d in durs {
                        causes.push(format!("reason: {r}{c}{i}{d}"));
                        // Parts out of order.
                        causes.push(format!("reason: {r}{d}{c}{i}"));
                    }
                }
            }
        }
        for cause in &causes {
            assert_eq!(
                check_details(cause),
                check_details_regex(cause),
                "{cause:?}"
            );
        }
        // What the two agree on is what an operator reads.
        let d = check_details(&causes[1]).unwrap();
        assert_eq!(
            (
                d.reason.as_deref(),
                d.code,
                d.info.as_deref(),
                d.duration_ms
            ),
            (
                Some("Layer4 connection problem"),
                None,
                Some("Connection refused"),
                Some(0)
            )
        );
        let d = check_details("reason: a, code: 1 b, code: 503").unwrap();
        assert_eq!(
            (d.reason.as_deref(), d.code),
            (Some("a, code: 1 b"), Some(503))
        );
    }
}
