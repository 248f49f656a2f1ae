//! The human report: aligned columns, colour only on a terminal.

use std::borrow::Cow;
use std::fmt::Write;

use super::{Report, TimerSummary};
use crate::engine::Label;
use crate::text::printable;

fn ms(t: &TimerSummary, v: Option<u64>) -> String {
    match (t.count, v) {
        (0, _) | (_, None) => "-".into(),
        (_, Some(v)) => v.to_string(),
    }
}

pub(crate) fn host(h: &str) -> &str {
    if h.is_empty() {
        "-"
    } else {
        h
    }
}

pub(crate) fn paint(s: &str, label: Label, color: bool) -> String {
    let code = match label {
        Label::Up => "32",
        Label::Down => "31;1",
        Label::Maint | Label::Drain | Label::Stopping => "33",
        Label::Unknown => "2",
    };
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Renders rows with columns padded to their widest cell. `color_col` is
/// painted with the label of its row (escape codes do not count as width).
pub(crate) fn grid(
    out: &mut String,
    header: &[&str],
    rows: &[(Vec<String>, Option<Label>)],
    color: bool,
) {
    // Names, causes and lines come from the log: a forged one must not
    // drive the terminal (see `text`). Borrowed unless a cell has one.
    let rows: Vec<(Vec<Cow<str>>, Option<Label>)> = rows
        .iter()
        .map(|(r, l)| (r.iter().map(|c| printable(c)).collect(), *l))
        .collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for (r, _) in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: &[Cow<str>], label: Option<Label>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i] - c.chars().count();
            // Names and words to the left, figures to the right.
            let numeric = !matches!(
                header[i],
                "HOST"
                    | "BACKEND"
                    | "SERVER"
                    | "STATE"
                    | "TOP TERM"
                    | "AT"
                    | "CHANGE"
                    | "CAUSE"
                    | "SINCE"
                    | "CHECK"
                    | "LAST REQUEST"
                    | "HOSTS"
                    | "ELSEWHERE"
                    | "NO SERVER AVAILABLE"
                    | "SERVERS UP PER HOST"
                    | "LAST LINE"
                    | "LOGS"
                    | "CLOCK"
                    | "FRONTEND"
                    | "RESUMED AT"
                    | "URL"
                    | "CLIENT"
                    | "TERMINATION"
                    | "COOKIE"
            );
            let cell = match (header[i], label) {
                ("STATE", Some(l)) => Cow::Owned(paint(c, l, color)),
                _ => Cow::Borrowed(&**c),
            };
            if numeric && header[i] != "STATE" {
                s.push_str(&" ".repeat(pad));
                s.push_str(&cell);
            } else {
                s.push_str(&cell);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
            if i + 1 < cells.len() {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string()
    };
    let hdr: Vec<Cow<str>> = header.iter().map(|&h| Cow::Borrowed(h)).collect();
    let _ = writeln!(out, "{}", line(&hdr, None));
    for (r, l) in &rows {
        let _ = writeln!(out, "{}", line(r, *l));
    }
}

/// The two most frequent abnormal termination states, e.g. `SC--:12 cD--:3`
/// (`-` when every request ended normally). The first two characters tell
/// who ended the session and in which phase.
fn top_termination(t: &std::collections::BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = t
        .iter()
        .filter(|(code, _)| !code.starts_with("--"))
        .collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if v.is_empty() {
        return "-".into();
    }
    v.iter()
        .take(2)
        .map(|(c, n)| format!("{c}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn pct(x: f64) -> String {
    format!("{:.2}", x * 100.0)
}

/// A duration, "unknown" when a line with no time bounds it.
fn dur_or_unknown(s: Option<f64>) -> String {
    s.map_or_else(|| "unknown".into(), dur)
}

fn dur(s: f64) -> String {
    if s == 0.0 {
        "-".into()
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

/// `s1 (backup)`, `s3 (no event yet)`, `s9 (not in the configuration)`.
/// A server's state; `-` for `<NOSRV>`, which is no server and has none.
pub fn state_cell(server: &str, state: &str) -> String {
    if crate::inventory::is_placeholder(server) {
        "-".to_string()
    } else {
        state.to_string()
    }
}

pub fn server_name(server: &str, backup: bool, inventory: Option<&str>) -> String {
    let mut s = server.to_string();
    if backup {
        s.push_str(" (backup)");
    }
    if let Some(i) = inventory.filter(|i| *i != crate::inventory::CONFIGURED) {
        s.push_str(&format!(" ({i})"));
    }
    s
}

/// `--by`: the requests of each value, most first, as halog lists them
/// (`halog -st`, `-tc`, `-cc`), with their share, errors and bytes.
fn by_table(out: &mut String, by: &super::ByReport, color: bool) {
    if by.sort.is_some() {
        return named_table(out, by, color);
    }
    let total: u64 = by.rows.iter().map(|r| r.requests).sum();
    let _ = writeln!(out, "\nREQUESTS BY {}", by.key.to_uppercase());
    let rows: Vec<_> = by
        .rows
        .iter()
        .map(|r| {
            let share = r.requests as f64 / total.max(1) as f64;
            let err = r.errors as f64 / r.requests.max(1) as f64;
            let row = vec![
                r.value.clone(),
                r.requests.to_string(),
                pct(share),
                pct(err),
                r.bytes.to_string(),
            ];
            (row, None)
        })
        .collect();
    let key = by.key.to_uppercase();
    grid(out, &[&key, "REQ", "%", "ERR%", "BYTES"], &rows, color);
    if by.without > 0 {
        let _ = writeln!(
            out,
            "{} requests without a {} (TCP lines, or a format without it)",
            by.without, by.key
        );
    }
}

/// `--by url|client`: halog's `-u*`/`-ic` columns, in its order.
fn named_table(out: &mut String, by: &super::ByReport, color: bool) {
    let _ = writeln!(
        out,
        "\nREQUESTS BY {} (by {}, {} of {})",
        by.key.to_uppercase(),
        by.sort.unwrap_or("count"),
        by.rows.len(),
        by.distinct.unwrap_or(by.rows.len())
    );
    let rows: Vec<_> = by
        .rows
        .iter()
        .filter_map(|r| {
            let t = r.times?;
            // `~`: kept after the table was full, some requests uncounted.
            let requests = match r.uncounted {
                0 => r.requests.to_string(),
                _ => format!("~{}", r.requests),
            };
            let row = vec![
                requests,
                r.errors.to_string(),
                t.time_total_ms.to_string(),
                t.time_avg_ms.to_string(),
                t.ok_time_total_ms.to_string(),
                t.ok_time_avg_ms.to_string(),
                t.bytes_avg.to_string(),
                r.bytes.to_string(),
                r.value.clone(),
            ];
            Some((row, None))
        })
        .collect();
    let key = by.key.to_uppercase();
    grid(
        out,
        &[
            "REQ", "ERR", "TTOT", "TAVG", "OKTOT", "OKAVG", "BAVG", "BTOT", &key,
        ],
        &rows,
        color,
    );
    if by.without > 0 {
        let _ = writeln!(
            out,
            "{} requests without a {} (TCP lines, or a request not logged)",
            by.without, by.key
        );
    }
    if by.floor > 0 {
        let most = by.rows.iter().map(|r| r.uncounted).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "more {key}s than {} MiB keep: the rows are a summary of the heaviest; \
             a {key} in no row had at most {} requests ({} requests are in no row)",
            crate::engine::breakdown::MAX_BYTES >> 20,
            by.floor,
            by.overflow,
            key = by.key,
        );
        if most > 0 {
            let _ = writeln!(
                out,
                "~: a {} kept once the table was full; up to {most} of its earlier requests are not in its figures",
                by.key
            );
        }
    }
}

/// `--percentiles`: halog's `-pct` columns (percent, requests covered,
/// TR, Tc, Tr, Td), then Tw.
fn percentile_table(out: &mut String, p: &super::PercentileReport, color: bool) {
    let _ = writeln!(
        out,
        "\nTIMER PERCENTILES (ms; {} requests with every timer; apart: {} with a -1 timer, {} TCP)",
        p.counted, p.errors, p.tcp
    );
    let rows: Vec<_> = p
        .rows
        .iter()
        .map(|r| {
            let cells = vec![
                // halog's `%3.1f` where one decimal says it all.
                match (r.pct * 10.0).fract() == 0.0 {
                    true => format!("{:.1}", r.pct),
                    false => r.pct.to_string(),
                },
                r.requests.to_string(),
                r.tr_req.to_string(),
                r.tc.to_string(),
                r.tr.to_string(),
                r.td.to_string(),
                r.tw.to_string(),
            ];
            (cells, None)
        })
        .collect();
    grid(
        out,
        &["PCT", "REQ", "TR", "Tc", "Tr", "Td", "Tw"],
        &rows,
        color,
    );
}

/// `--accept-holes`: halog's `-ad`/`-ac` rows, dated.
fn holes_table(out: &mut String, h: &super::HolesReport) {
    let _ = writeln!(
        out,
        "\nACCEPT HOLES ({} of {} ms or more, then {} accept{} or more in a millisecond)",
        h.holes.len(),
        h.min_gap_ms,
        h.min_accepts,
        if h.min_accepts == 1 { "" } else { "s" }
    );
    // Written row by row, not through `grid`: the dates are all one
    // width, and a gap of a millisecond lists millions of rows.
    let gap = h.holes.iter().map(|x| x.gap_ms).max().unwrap_or(0);
    let gap_w = gap.to_string().len().max("GAP MS".len());
    let acc = h.holes.iter().map(|x| x.accepts).max().unwrap_or(0);
    let acc_w = acc.to_string().len().max("ACCEPTS".len());
    let _ = writeln!(
        out,
        "{:<24}  {:>gap_w$}  {:>acc_w$}",
        "RESUMED AT", "GAP MS", "ACCEPTS"
    );
    for x in &h.holes {
        let _ = writeln!(
            out,
            "{:<24}  {:>gap_w$}  {:>acc_w$}",
            crate::time::format_rfc3339_ms(x.at),
            x.gap_ms,
            x.accepts
        );
    }
}

pub fn render(r: &Report, color: bool) -> String {
    let mut out = String::new();
    let i = &r.input.counts;
    // A count the first line names only when there is one.
    let note = |n: u64, what: &str| match n {
        0 => String::new(),
        n => format!(", {n} {what}"),
    };
    let _ = writeln!(
        out,
        "{} lines: {} requests, {} health events, {} other, {} unparsed{}{}{}{}{}",
        i.lines,
        i.requests,
        i.health_events,
        i.other,
        i.unparsed,
        note(i.oversized, "oversized"),
        note(
            i.nul_runs,
            "runs of NUL bytes skipped (a file truncated under its writer, or zeroed by a crash)"
        ),
        note(
            i.untimed,
            "with no time (applied in arrival order, time unknown)"
        ),
        note(
            i.skewed,
            "skewed (dated in the future or before 2000: not applied)",
        ),
        if i.dropped_servers + i.dropped_hosts > 0 {
            format!(
                ", {} of servers and {} of hosts past --max-servers/--max-hosts (not kept)",
                i.dropped_servers, i.dropped_hosts
            )
        } else {
            String::new()
        },
    );
    if let (Some(s), Some(e)) = (&r.window.start, &r.window.end) {
        let _ = writeln!(out, "window {s} .. {e} ({})", dur(r.window.seconds));
    }
    if i.log_steps > 0 {
        let _ = writeln!(
            out,
            "{} lines were written before their transaction ended (HAProxy's `log-steps`) and are not requests; \
             unless the log-format has `%OG`, a request's response step and its close look alike and both count (`log-steps close` logs each request once)",
            i.log_steps
        );
    }
    for (by, sources) in &r.input.counts.rate_limited {
        for (from, n) in sources {
            let from = printable(from);
            let _ = writeln!(
                out,
                "{n} messages of {from} dropped by {by}'s rate limit before any log kept them (not in this report)"
            );
        }
    }
    for (fe, n) in &r.input.unparsed_by_frontend {
        let fe = printable(fe);
        let _ = writeln!(
            out,
            "{n} unparsed line{} of frontend {fe} do{} not fit its log-format (--show-unparsed N shows them)",
            if *n == 1 { "" } else { "s" },
            if *n == 1 { "es" } else { "" },
        );
    }
    for x in &r.input.resumed {
        let _ = writeln!(out, "{}: resumed at byte {} (--db)", x.file, x.offset);
    }
    for e in &r.input.errors {
        let _ = writeln!(out, "error: {e}");
    }

    if let Some(s) = &r.selected {
        let _ = writeln!(
            out,
            "filters selected {} of {} request lines{}",
            s.selected,
            s.selected + s.rejected + s.missing_field,
            if s.missing_field > 0 {
                format!(
                    " ({} without a field a filter reads: not selected)",
                    s.missing_field
                )
            } else {
                String::new()
            }
        );
    }

    if let Some(by) = &r.by {
        by_table(&mut out, by, color);
        return out;
    }
    if let Some(p) = &r.percentiles {
        percentile_table(&mut out, p, color);
        return out;
    }
    if let Some(h) = &r.accept_holes {
        holes_table(&mut out, h);
        return out;
    }

    let _ = writeln!(out, "\nSERVERS");
    let rows: Vec<_> = r
        .servers
        .iter()
        .map(|s| {
            let t = &s.traffic;
            // HTTP servers show Tr (response time) and Ta; TCP ones Tt.
            let (resp, total) = if t.timers_ms.Tr.count > 0 || t.timers_ms.Ta.count > 0 {
                (&t.timers_ms.Tr, &t.timers_ms.Ta)
            } else {
                (&t.timers_ms.Tt, &t.timers_ms.Tt)
            };
            (
                vec![
                    host(&s.host).to_string(),
                    s.backend.clone(),
                    server_name(&s.server, s.backup, s.inventory),
                    state_cell(&s.server, s.state.as_str()),
                    t.requests.to_string(),
                    t.status.c2.to_string(),
                    t.status.c3.to_string(),
                    t.status.c4.to_string(),
                    t.status.c5.to_string(),
                    pct(t.error_rate),
                    format!("{}/{}", ms(resp, resp.p50), ms(resp, resp.p99)),
                    format!("{}/{}", ms(total, total.p99), ms(total, total.max)),
                    ms(&t.timers_ms.Tw, t.timers_ms.Tw.p99),
                    t.srv_queue_max.to_string(),
                    t.retries.to_string(),
                    top_termination(&t.termination),
                    dur_or_unknown(s.down_seconds),
                    dur_or_unknown(s.maint_seconds.zip(s.drain_seconds).map(|(m, d)| m + d)),
                    s.transitions.to_string(),
                ],
                Some(s.state),
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
            "REQ",
            "2xx",
            "3xx",
            "4xx",
            "5xx",
            "ERR%",
            "Tr|Tt p50/p99",
            "Ta|Tt p99/max",
            "Tw p99",
            "QMAX",
            "RETRIES",
            "TOP TERM",
            "DOWN",
            "MAINT+DRAIN",
            "TRANS",
        ],
        &rows,
        color,
    );

    let _ = writeln!(out, "\nBACKENDS");
    let rows: Vec<_> = r
        .backends
        .iter()
        .map(|b| {
            let t = &b.traffic;
            (
                vec![
                    host(&b.host).to_string(),
                    b.backend.clone(),
                    b.servers.to_string(),
                    t.requests.to_string(),
                    t.status.c5.to_string(),
                    pct(t.error_rate),
                    format!(
                        "{}/{}",
                        ms(&t.timers_ms.Ta, t.timers_ms.Ta.p50),
                        ms(&t.timers_ms.Ta, t.timers_ms.Ta.p99)
                    ),
                    t.backend_queue_max.to_string(),
                    dur_or_unknown(b.no_server_seconds),
                    b.no_server_periods.len().to_string(),
                ],
                None,
            )
        })
        .collect();
    grid(
        &mut out,
        &[
            "HOST",
            "BACKEND",
            "SERVERS",
            "REQ",
            "5xx",
            "ERR%",
            "Ta p50/p99",
            "BQMAX",
            "NO-SERVER",
            "PERIODS",
        ],
        &rows,
        color,
    );

    if let Some(alerts) = r.alerts.as_ref().filter(|a| !a.is_empty()) {
        let _ = writeln!(out, "\nALERTS");
        for a in alerts {
            let _ = writeln!(out, "{}", a.line());
        }
    }
    if !r.transitions.is_empty() {
        let _ = writeln!(out, "\nTRANSITIONS");
        let rows: Vec<crate::store::HistoryRow> = r.transitions.iter().map(Into::into).collect();
        out.push_str(&super::store::history_table(&rows, color));
    }
    for b in &r.backends {
        for p in &b.no_server_periods {
            let _ = writeln!(
                out,
                "{} {}: no server available from {} to {} ({})",
                printable(host(&b.host)),
                printable(&b.backend),
                p.start,
                p.end.as_deref().unwrap_or("end of window"),
                dur_or_unknown(p.seconds)
            );
        }
    }
    if !r.unparsed_samples.is_empty() {
        let _ = writeln!(out, "\nUNPARSED (first {})", r.unparsed_samples.len());
        for s in &r.unparsed_samples {
            let _ = writeln!(out, "{}", printable(s));
        }
    }
    out
}
