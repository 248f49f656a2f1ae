//! Printers for what the state store holds: `hapwatch status` (like HAProxy's
//! stats page) and `hapwatch history`.

use std::fmt::Write;

use super::table::{grid, host};
use crate::engine::Label;
use crate::store::{BackendRow, HistoryRow, ServerRow};

fn label(s: &str) -> Label {
    match s {
        "UP" => Label::Up,
        "DOWN" => Label::Down,
        "STOPPING" => Label::Stopping,
        "MAINT" => Label::Maint,
        "DRAIN" => Label::Drain,
        _ => Label::Unknown,
    }
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
                    format!("{}{}", s.server, if s.backup { " (backup)" } else { "" }),
                    s.state.clone(),
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
                    t.at.clone(),
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
