//! One CSV row per server, every aggregate flattened into columns.

use super::Report;
use crate::haproxy::Timer;

/// A name from the log as a cell a spreadsheet shows and does not run.
/// Excel, LibreOffice and Google Sheets take a cell that starts with `=`,
/// `+`, `-` or `@` as a formula (one that starts with a tab or carriage
/// return may be, too): a client can put one in a URL, anyone who can send
/// syslog in a host name. Such a cell gets a `'` in front (OWASP's advice
/// for CSV injection). A lone `-` stays: it is HAProxy's "none", and no formula.
/// Only names: the figures, and what HAProxy itself writes (termination
/// states such as `----`), are kept as they are.
fn name(s: &str) -> String {
    match s.as_bytes() {
        [b'=' | b'+' | b'@' | b'\t' | b'\r', ..] | [b'-', _, ..] => format!("'{s}"),
        _ => s.to_string(),
    }
}

pub fn render(r: &Report) -> Result<String, ::csv::Error> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    if let Some(by) = &r.by {
        let mut header = vec![by.key, "requests", "errors", "bytes"];
        if by.sort.is_some() {
            header.extend([
                "time_total_ms",
                "time_avg_ms",
                "ok_time_total_ms",
                "ok_time_avg_ms",
                "bytes_avg",
                "uncounted",
            ]);
        }
        w.write_record(header)?;
        for row in &by.rows {
            // URLs and clients come from clients; the other keys (status,
            // termination state, cookie flags, frontend) from HAProxy.
            let value = match by.key {
                "url" | "client" => name(&row.value),
                _ => row.value.clone(),
            };
            let mut rec = vec![
                value,
                row.requests.to_string(),
                row.errors.to_string(),
                row.bytes.to_string(),
            ];
            if let Some(t) = row.times {
                rec.extend(
                    [
                        t.time_total_ms,
                        t.time_avg_ms,
                        t.ok_time_total_ms,
                        t.ok_time_avg_ms,
                        t.bytes_avg,
                        row.uncounted,
                    ]
                    .map(|v| v.to_string()),
                );
            }
            w.write_record(rec)?;
        }
        return finish(w);
    }
    if let Some(p) = &r.percentiles {
        w.write_record(["pct", "requests", "TR", "Tc", "Tr", "Td", "Tw"])?;
        for x in &p.rows {
            w.write_record([
                x.pct.to_string(),
                x.requests.to_string(),
                x.tr_req.to_string(),
                x.tc.to_string(),
                x.tr.to_string(),
                x.td.to_string(),
                x.tw.to_string(),
            ])?;
        }
        return finish(w);
    }
    if let Some(h) = &r.accept_holes {
        w.write_record(["at", "gap_ms", "accepts"])?;
        for x in &h.holes {
            w.write_record([
                crate::time::format_rfc3339_ms(x.at),
                x.gap_ms.to_string(),
                x.accepts.to_string(),
            ])?;
        }
        return finish(w);
    }
    let mut header: Vec<String> = [
        "host",
        "backend",
        "server",
        "backup",
        "state",
        "requests",
        "1xx",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "other",
        "errors",
        "error_rate",
        "bytes",
        "retries",
        "redispatches",
        "srv_queue_max",
        "backend_queue_max",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for t in Timer::ALL {
        for f in ["count", "p50", "p90", "p99", "max", "mean"] {
            header.push(format!("{}_{f}", t.name()));
        }
    }
    header.extend(
        [
            "down_seconds",
            "maint_seconds",
            "drain_seconds",
            "transitions",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    // Empty for a figure that is absent (no timer) or unknown.
    fn opt<T: ToString>(v: Option<T>) -> String {
        v.map(|v| v.to_string()).unwrap_or_default()
    }
    for s in &r.servers {
        let t = &s.traffic;
        let mut row = vec![
            name(&s.host),
            name(&s.backend),
            name(&s.server),
            s.backup.to_string(),
            s.state.as_str().to_string(),
            t.requests.to_string(),
            t.status.c1.to_string(),
            t.status.c2.to_string(),
            t.status.c3.to_string(),
            t.status.c4.to_string(),
            t.status.c5.to_string(),
            t.status.other.to_string(),
            t.errors.to_string(),
            t.error_rate.to_string(),
            t.bytes.to_string(),
            t.retries.to_string(),
            t.redispatches.to_string(),
            t.srv_queue_max.to_string(),
            t.backend_queue_max.to_string(),
        ];
        for timer in Timer::ALL {
            let x = t.timers_ms.get(timer);
            row.extend([
                x.count.to_string(),
                opt(x.p50),
                opt(x.p90),
                opt(x.p99),
                opt(x.max),
                x.mean.map(|m| m.to_string()).unwrap_or_default(),
            ]);
        }
        row.extend([
            // Empty: unknown (a state began or ended on a line with no time).
            opt(s.down_seconds),
            opt(s.maint_seconds),
            opt(s.drain_seconds),
            s.transitions.to_string(),
        ]);
        w.write_record(&row)?;
    }
    finish(w)
}

fn finish(w: ::csv::Writer<Vec<u8>>) -> Result<String, ::csv::Error> {
    let bytes = w
        .into_inner()
        .map_err(|e| ::csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8(bytes).expect("CSV written from strings is UTF-8"))
}
