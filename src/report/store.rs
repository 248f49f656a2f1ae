//! Printers for what the state store holds: `hapwatch status` (like HAProxy's
//! stats page) and `hapwatch history`.

use std::fmt::Write;

use super::table::{grid, host};
use crate::engine::{Filter, Label};
use crate::inventory::Inventory;
use crate::store::{BackendRow, HistoryRow, ServerRow, SkewedRow};

pub(crate) fn label(s: &str) -> Label {
    match s {
        "UP" => Label::Up,
        "DOWN" => Label::Down,
        "STOPPING" => Label::Stopping,
        "MAINT" => Label::Maint,
        "DRAIN" => Label::Drain,
        _ => Label::Unknown,
    }
}

/// `hapwatch status --haproxy-config`: the rows set against the declared
/// servers, as [`super::Report::inventory`] does for a report. Returns the
/// `be/srv` names of servers stored but not declared.
pub fn inventory(
    servers: &mut Vec<ServerRow>,
    backends: &mut Vec<BackendRow>,
    inv: &Inventory,
    f: &Filter,
) -> Vec<String> {
    use crate::inventory::NO_EVENT_YET;
    let unknown = inv.unknown(
        servers
            .iter()
            .map(|s| (s.backend.as_str(), s.server.as_str())),
    );
    let hosts = crate::inventory::hosts(
        servers
            .iter()
            .map(|s| s.host.as_str())
            .chain(backends.iter().map(|b| b.host.as_str())),
    );
    let seen: std::collections::HashSet<(String, String, String)> = servers
        .iter()
        .map(|s| (s.host.clone(), s.backend.clone(), s.server.clone()))
        .collect();
    for s in servers.iter_mut() {
        let Some(m) = inv.mark(&s.backend, &s.server) else {
            continue;
        };
        s.inventory = Some(m.inventory);
        let Some(c) = m.declared else { continue };
        if s.state == Label::Unknown.as_str() && s.since.is_none() {
            let (label, why) = c.initial();
            s.state = label.as_str().to_string();
            s.last_cause.get_or_insert(why);
        }
    }
    let missing: Vec<ServerRow> = inv
        .missing(&hosts, &seen, |h, b, s| f.selects(h, b, Some(s)))
        .into_iter()
        .map(|(h, c)| {
            let (state, why) = c.initial();
            ServerRow {
                host: h.to_string(),
                backend: c.backend.clone(),
                server: c.server.clone(),
                backup: c.backup,
                state: state.as_str().to_string(),
                since: None,
                last_cause: Some(why),
                check: None,
                check_reason: None,
                last_request: None,
                inventory: Some(NO_EVENT_YET),
            }
        })
        .collect();
    servers.extend(missing);
    for h in &hosts {
        for (b, _) in inv.backends() {
            if f.selects(h, b, None) && !backends.iter().any(|x| x.host == *h && x.backend == b) {
                backends.push(BackendRow {
                    host: h.clone(),
                    backend: b.to_string(),
                    servers_up: 0,
                    servers: 0,
                    no_server_since: None,
                });
            }
        }
    }
    // Counts as the stats page would show them, declared servers included.
    for b in backends.iter_mut() {
        let of_b = || {
            servers
                .iter()
                .filter(|s| s.host == b.host && s.backend == b.backend)
                .filter(|s| !crate::inventory::is_placeholder(&s.server))
        };
        b.servers = of_b().count() as u32;
        b.servers_up = of_b()
            .filter(|s| matches!(s.state.as_str(), "UP" | "DRAIN" | "STOPPING"))
            .count() as u32;
    }
    servers.sort_by(|a, b| (&a.host, &a.backend, &a.server).cmp(&(&b.host, &b.backend, &b.server)));
    backends.sort_by(|a, b| (&a.host, &a.backend).cmp(&(&b.host, &b.backend)));
    unknown
}

pub fn status_table(servers: &[ServerRow], backends: &[BackendRow], color: bool) -> String {
    let mut out = String::new();
    let rows: Vec<_> = servers
        .iter()
        .map(|s| {
            (
                vec![
                    host(&s.host).to_string(),
                    s.backend.clone(),
                    super::table::server_name(&s.server, s.backup, s.inventory),
                    super::table::state_cell(&s.server, &s.state),
                    s.since.clone().unwrap_or_else(|| "-".into()),
                    s.check.clone().unwrap_or_else(|| "-".into()),
                    s.last_request.clone().unwrap_or_else(|| "-".into()),
                    s.last_cause.clone().unwrap_or_default(),
                ],
                Some(label(&s.state)),
            )
        })
        .collect();
    grid(
        &mut out,
        &[
            "HOST",
            "BACKEND",
            "SERVER",
            "STATE",
            "SINCE",
            "CHECK",
            "LAST REQUEST",
            "CAUSE",
        ],
        &rows,
        color,
    );
    let _ = writeln!(out);
    let rows: Vec<_> = backends
        .iter()
        .map(|b| {
            (
                vec![
                    host(&b.host).to_string(),
                    b.backend.clone(),
                    format!("{}/{}", b.servers_up, b.servers),
                    b.no_server_since
                        .as_ref()
                        .map(|t| format!("no server available since {t}"))
                        .unwrap_or_default(),
                ],
                None,
            )
        })
        .collect();
    grid(&mut out, &["HOST", "BACKEND", "UP", "CAUSE"], &rows, color);
    out
}

pub fn history_table(rows: &[HistoryRow], color: bool) -> String {
    let mut out = String::new();
    let rows: Vec<_> = rows
        .iter()
        .map(|t| {
            (
                vec![
                    t.at.clone().unwrap_or_else(|| "time unknown".into()),
                    host(&t.host).to_string(),
                    format!("{}/{}", t.backend, t.server),
                    format!("{} -> {}", t.from, t.to),
                    t.cause.clone().unwrap_or_default(),
                ],
                None,
            )
        })
        .collect();
    grid(
        &mut out,
        &["AT", "HOST", "SERVER", "CHANGE", "CAUSE"],
        &rows,
        color,
    );
    out
}

/// `hapwatch alerts`: stored alerts, newest first, then the deliveries that
/// failed for good or are still being retried, with the receiver's reason.
pub fn alerts_table(alerts: &[serde_json::Value], failed: &[serde_json::Value]) -> String {
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let mut out = String::from(
        "STATUS    SEVERITY  STARTS                    ENDS                      ALERT\n",
    );
    for a in alerts {
        let _ = writeln!(
            out,
            "{:<9} {:<9} {:<25} {:<25} {}: {}",
            s(a, "status"),
            s(a, "severity"),
            a["starts_at"].as_str().unwrap_or("time unknown"),
            match (a["ends_at"].as_str(), a["status"].as_str()) {
                (Some(t), _) => t,
                (None, Some("resolved")) => "time unknown",
                (None, _) => "-",
            },
            s(a, "rule"),
            s(a, "summary"),
        );
    }
    if !failed.is_empty() {
        out.push_str(
            "\nFAILED DELIVERIES\nSTATE     TRIES  SINK                            ALERT  (LAST ERROR)\n",
        );
        for d in failed {
            let _ = writeln!(
                out,
                "{:<9} {:<6} {:<31} {} {}: {} ({})",
                s(d, "state"),
                d["attempts"],
                s(d, "sink"),
                s(d, "status"),
                s(d, "rule"),
                s(d, "summary"),
                s(d, "last_error"),
            );
        }
    }
    // Rules' summaries name servers from the log: see `text`.
    crate::text::printable_lines(&out).into_owned()
}

/// `hapwatch status --skewed`: lines quarantined for their date.
pub fn skewed_table(rows: &[SkewedRow]) -> String {
    let mut out =
        String::from("EVENT TIME                ALLOWED                      HOST  LINE\n");
    for r in rows {
        // The bound a line broke: the latest date allowed (`--max-skew`),
        // or the earliest (2000) for a line before it.
        let side = if r.event_time < r.bound { ">=" } else { "<=" };
        let _ = writeln!(
            out,
            "{:<25} {side} {:<25} {:<5} {}",
            r.event_time,
            r.bound,
            host(&r.host),
            r.line
        );
    }
    if rows.is_empty() {
        out.push_str("(no line was quarantined for its date)\n");
    }
    // The lines are the log's own: see `text`.
    crate::text::printable_lines(&out).into_owned()
}
