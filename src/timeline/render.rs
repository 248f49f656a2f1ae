//! A [`Story`] and a list of [`Incident`]s as text, Markdown and JSON.
//!
//! Names come from the network: in Markdown every character that could
//! become markup (`|`, `<`, `&`, `*`, `_`, backticks, brackets...) is
//! escaped, so a server name never turns into a link, a table column or
//! HTML.

use std::fmt::Write;

use super::{human, Bucket, Incident, Story};
use crate::time::format_rfc3339_ms;

fn time(t: crate::time::Millis) -> String {
    format_rfc3339_ms(t)
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn end_text(end: Option<crate::time::Millis>) -> String {
    end.map_or("(still going on)".into(), time)
}

/// `--list`.
pub fn list_text(incidents: &[Incident]) -> String {
    let mut out = String::new();
    if incidents.is_empty() {
        out.push_str(
            "no incident: no server went DOWN, no backend lost its servers, no alert fired\n",
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{:<15}  {:<24}  {:<9}  WORST",
        "ID", "START", "DURATION"
    );
    for i in incidents {
        let _ = writeln!(
            out,
            "{:<15}  {:<24}  {:<9}  {}",
            i.id,
            time(i.start),
            i.end.map_or("ongoing".into(), |e| human(e - i.start)),
            i.worst
        );
    }
    out
}

fn bucket_row(b: &Bucket) -> [String; 9] {
    [
        time(b.minute)[11..16].to_string(),
        b.requests.to_string(),
        b.status_5xx.to_string(),
        b.nosrv.to_string(),
        b.server_aborts.to_string(),
        opt(b.tr_p50),
        opt(b.tr_p95),
        opt(b.tr_p99),
        opt(b.tw_p95),
    ]
}

const BUCKET_HEAD: [&str; 9] = [
    "MINUTE",
    "REQ",
    "5XX",
    "NOSRV",
    "SRV ABORT",
    "TR P50",
    "TR P95",
    "TR P99",
    "TW P95",
];

/// The terminal view.
pub fn text(s: &Story) -> String {
    let mut out = String::new();
    let sum = &s.summary;
    let _ = writeln!(
        out,
        "Incident {}: {} to {}{}",
        sum.incident.as_deref().unwrap_or("window"),
        time(sum.start),
        end_text(sum.end),
        sum.end
            .map(|e| format!(" ({})", human(e - sum.start)))
            .unwrap_or_default()
    );
    if let Some(f) = &sum.first_sign {
        let _ = writeln!(
            out,
            "  first sign     {}  {} {}",
            time(f.at),
            f.subject,
            f.what
        );
    }
    for o in &sum.outages {
        let _ = writeln!(
            out,
            "  down           {}  {} to {}{}",
            o.server,
            time(o.down_at),
            end_text(o.up_at),
            o.up_at
                .map(|u| format!(" ({})", human(u - o.down_at)))
                .unwrap_or_default()
        );
    }
    for n in &sum.no_server {
        let _ = writeln!(
            out,
            "  no server      {}  {} to {}{}",
            n.backend,
            time(n.start),
            end_text(n.end),
            n.end
                .map(|e| format!(" ({})", human(e - n.start)))
                .unwrap_or_default()
        );
    }
    if let Some(d) = sum.detected_after_ms {
        let _ = writeln!(
            out,
            "  detected in    {} (first failed check to DOWN)",
            human(d)
        );
    }
    if let Some(r) = sum.recovered_after_ms {
        let _ = writeln!(out, "  recovered in   {} (first DOWN to last UP)", human(r));
    }
    let i = &sum.impact;
    let _ = writeln!(
        out,
        "  impact         {} requests, {} answered 5xx ({} <NOSRV>), {} ended by the server side, {} queue timeouts, {} retries, {} redispatches",
        i.requests, i.status_5xx, i.nosrv, i.server_aborts, i.queue_timeouts, i.retries, i.redispatches
    );
    let _ = writeln!(
        out,
        "  alerts         {} fired{}",
        sum.alerts_fired,
        sum.first_delivery
            .map(|t| format!(", first delivered {}", time(t)))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "\nEvents ({} to {})", time(s.from), time(s.to));
    if s.events.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for e in &s.events {
        let _ = writeln!(
            out,
            "  {}  {}  {}{}",
            time(e.at),
            e.subject,
            e.what,
            e.detail
                .as_deref()
                .map(|d| format!("  [{d}]"))
                .unwrap_or_default()
        );
    }
    for series in s.series.iter().filter(|x| x.kind == "backend") {
        let _ = writeln!(out, "\nPer minute, backend {}", series.name);
        let rows: Vec<[String; 9]> = series.buckets.iter().map(bucket_row).collect();
        let widths: Vec<usize> = (0..9)
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].len())
                    .chain([BUCKET_HEAD[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let mut l = String::from(" ");
            for (c, w) in cells.iter().zip(&widths) {
                let _ = write!(l, " {c:>w$}");
            }
            l
        };
        let _ = writeln!(out, "{}", line(BUCKET_HEAD.to_vec()));
        for r in &rows {
            let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
        }
    }
    out
}

/// Markdown text: every character that could be markup escaped (`>` is
/// markup only at the start of a line, where a cell never is, or closing
/// a tag, which an escaped `<` never opens).
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// For the incident document: summary, event table, per-minute table.
pub fn markdown(s: &Story) -> String {
    let mut out = String::new();
    let sum = &s.summary;
    let _ = writeln!(
        out,
        "## Incident {}\n",
        md(sum.incident.as_deref().unwrap_or("window"))
    );
    let _ = writeln!(
        out,
        "- **When**: {} to {}{}",
        time(sum.start),
        end_text(sum.end),
        sum.end
            .map(|e| format!(" ({})", human(e - sum.start)))
            .unwrap_or_default()
    );
    if let Some(f) = &sum.first_sign {
        let _ = writeln!(
            out,
            "- **First sign**: {} {} {}",
            time(f.at),
            md(&f.subject),
            md(&f.what)
        );
    }
    for o in &sum.outages {
        let _ = writeln!(
            out,
            "- **Down**: {} from {} to {}{}{}",
            md(&o.server),
            time(o.down_at),
            end_text(o.up_at),
            o.up_at
                .map(|u| format!(" ({})", human(u - o.down_at)))
                .unwrap_or_default(),
            o.cause
                .as_deref()
                .map(|c| format!(": {}", md(c)))
                .unwrap_or_default()
        );
    }
    for n in &sum.no_server {
        let _ = writeln!(
            out,
            "- **No server available**: {} from {} to {}{}",
            md(&n.backend),
            time(n.start),
            end_text(n.end),
            n.end
                .map(|e| format!(" ({})", human(e - n.start)))
                .unwrap_or_default()
        );
    }
    if let Some(r) = sum.recovered_after_ms {
        let _ = writeln!(
            out,
            "- **Recovered in**: {} (first DOWN to last UP)",
            human(r)
        );
    }
    let i = &sum.impact;
    let _ = writeln!(
        out,
        "- **Impact**: {} requests, {} answered 5xx ({} `<NOSRV>`), {} ended by the server side, {} queue timeouts, {} retries, {} redispatches",
        i.requests, i.status_5xx, i.nosrv, i.server_aborts, i.queue_timeouts, i.retries, i.redispatches
    );
    let _ = writeln!(
        out,
        "- **Alerts**: {} fired{}",
        sum.alerts_fired,
        sum.first_delivery
            .map(|t| format!(", first delivered {}", time(t)))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "\n| Time (UTC) | Subject | Event | Detail |");
    let _ = writeln!(out, "|---|---|---|---|");
    for e in &s.events {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            time(e.at),
            md(&e.subject),
            md(&e.what),
            md(e.detail.as_deref().unwrap_or(""))
        );
    }
    for series in s.series.iter().filter(|x| x.kind == "backend") {
        let _ = writeln!(out, "\nPer minute, backend {}:\n", md(&series.name));
        let _ = writeln!(out, "| {} |", BUCKET_HEAD.join(" | "));
        let _ = writeln!(out, "|{}", "---:|".repeat(BUCKET_HEAD.len()));
        for b in &series.buckets {
            let _ = writeln!(out, "| {} |", bucket_row(b).join(" | "));
        }
    }
    out
}

pub fn json(s: &Story) -> String {
    serde_json::to_string_pretty(s).expect("serializes") + "\n"
}

pub fn list_json(incidents: &[Incident]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "incidents": incidents }))
        .expect("serializes")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::md;

    #[test]
    fn a_name_never_becomes_markup() {
        assert_eq!(
            md("<script>a|b</script> [x](http://e) `c` *d* _e_ &amp;"),
            "&lt;script>a\\|b&lt;/script> \\[x\\]\\(http://e\\) \\`c\\` \\*d\\* \\_e\\_ &amp;amp;"
        );
    }
}
