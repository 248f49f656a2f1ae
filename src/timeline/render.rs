//! A [`Story`] and a list of [`Incident`]s as text, Markdown and JSON.
//!
//! Names come from the network: in Markdown every character that could
//! become markup (`|`, `<`, `&`, `*`, `_`, backticks, brackets...) is
//! escaped, so a server name never turns into a link, a table column or
//! HTML.

use std::fmt::Write;
use std::io::Write as _;

use serde::Serialize;

use super::{human, Bucket, Impact, Incident, Series, Story};
use crate::time::{format_rfc3339_ms, Millis};

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

/// One backend's table: its title, header and rows (text and Markdown).
struct Table {
    title: String,
    head: [String; 9],
    rows: Vec<[String; 9]>,
}

/// Rows at most in a Markdown table (a document's table, not a log).
const MD_ROWS: usize = 60;

/// Missing buckets in a row past which a gap is shown by its first and
/// last bucket only (a quiet night at one row a minute is not a page of
/// zeros).
const GAP_ROWS: i64 = 5;

/// The series' buckets with a row of zero requests where a bucket is
/// missing between two that are not: a backend's traffic that stopped
/// during an incident (a frontend down, clients gone) is a row that says
/// 0, not a time that the eye skips. Only between the series' own first
/// and last buckets: past them the log may just have ended. A table's
/// rows only; the JSON keeps the buckets as counted.
fn with_gaps(buckets: &[Bucket], width: Millis) -> Vec<Bucket> {
    let zero = |start| Bucket {
        start,
        counts: Impact::default(),
        queue_max: 0,
        p50: None,
        p95: None,
        p99: None,
        tw_p95: None,
        timer: None,
    };
    let width = width.max(1);
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        if let Some(last) = out.last() {
            let missing = (b.start - last.start) / width - 1;
            let first = last.start + width;
            match missing {
                m if m <= 0 => {}
                m if m <= GAP_ROWS => out.extend((0..m).map(|k| zero(first + k * width))),
                m => out.extend([zero(first), zero(first + (m - 1) * width)]),
            }
        }
        out.push(b.clone());
    }
    out
}

impl Table {
    /// All the series' buckets.
    fn of(s: &Story, series: &Series, name: &str) -> Table {
        Table::of_buckets(s, series, name, &with_gaps(&series.buckets, s.bucket_ms))
    }

    /// For a document: with buckets finer than a minute, only those the
    /// incident touches, and at most [`MD_ROWS`] of them (consecutive
    /// buckets folded: counts added, the highest percentile kept).
    fn small(s: &Story, series: &Series, name: &str) -> Table {
        if s.bucket_ms >= 60_000 {
            return Table::of(s, series, name);
        }
        let (s0, s1) = (s.summary.start, s.summary.end.unwrap_or(s.to));
        let buckets = with_gaps(&series.buckets, s.bucket_ms);
        let touched: Vec<&Bucket> = buckets
            .iter()
            .filter(|b| b.start <= s1 && b.start + s.bucket_ms > s0)
            .collect();
        let n = touched.len().div_ceil(MD_ROWS).max(1);
        let folded: Vec<Bucket> = touched
            .chunks(n)
            .map(|c| {
                let mut b = c[0].clone();
                for o in &c[1..] {
                    b.fold(o);
                }
                b
            })
            .collect();
        let mut t = Table::of_buckets(s, series, name, &folded);
        t.title = format!(
            "{} (the incident's {}{})",
            t.title,
            if n > 1 { "buckets, " } else { "buckets" },
            if n > 1 {
                format!("{n} per row, highest percentiles")
            } else {
                String::new()
            }
        );
        t
    }

    fn of_buckets(s: &Story, series: &Series, name: &str, buckets: &[Bucket]) -> Table {
        // Seconds shown when the buckets are finer than a minute.
        let clock = if s.bucket.ends_with('m') {
            11..16
        } else {
            11..19
        };
        let timer = series.timer.unwrap_or("Tr").to_uppercase();
        let per = match s.bucket.as_str() {
            "1m" => "minute".to_string(),
            b => b.to_string(),
        };
        Table {
            title: format!("Per {per}, backend {name}"),
            head: [
                "TIME".into(),
                "REQ".into(),
                "5XX".into(),
                "NOSRV".into(),
                "SRV ABORT".into(),
                format!("{timer} P50"),
                format!("{timer} P95"),
                format!("{timer} P99"),
                "TW P95".into(),
            ],
            rows: buckets
                .iter()
                .map(|b| {
                    [
                        time(b.start)[clock.clone()].to_string(),
                        b.counts.requests.to_string(),
                        b.counts.status_5xx.to_string(),
                        b.counts.nosrv.to_string(),
                        b.counts.server_aborts.to_string(),
                        opt(b.p50),
                        opt(b.p95),
                        opt(b.p99),
                        opt(b.tw_p95),
                    ]
                })
                .collect(),
        }
    }
}

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
    if let Some(n) = &s.inventory {
        let list = |v: &[String]| {
            let mut t = v.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > 8 {
                t.push_str(&format!(" and {} more", v.len() - 8));
            }
            t
        };
        if !n.no_event.is_empty() {
            let _ = writeln!(
                out,
                "  no state event {} declared server{} in haproxy.cfg: {}",
                n.no_event.len(),
                if n.no_event.len() == 1 { "" } else { "s" },
                list(&n.no_event)
            );
        }
        if !n.not_declared.is_empty() {
            let _ = writeln!(
                out,
                "  not declared   {} (stale haproxy.cfg or the wrong file?)",
                list(&n.not_declared)
            );
        }
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
    for f in &sum.fleet {
        let _ = writeln!(
            out,
            "  fleet          {} DOWN on {}/{} ({})  {} to {}{}{}",
            f.server,
            f.down_on.len(),
            f.of,
            f.down_on.join(", "),
            time(f.down_at),
            end_text(f.up_at),
            f.up_at
                .map(|u| format!(" ({})", human(u - f.down_at)))
                .unwrap_or_default(),
            if f.not_down_on.is_empty() {
                String::new()
            } else {
                format!(" · not on {}", f.not_down_on.join(", "))
            }
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
    for d in &sum.degraded {
        let _ = writeln!(
            out,
            "  degraded       {}  {}: {}, {} for {}",
            d.backend,
            d.kind,
            d.what,
            time(d.start),
            human(d.end - d.start)
        );
    }
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
        let Table { title, head, rows } = Table::of(s, series, &series.name);
        let _ = writeln!(out, "\n{title}");
        let widths: Vec<usize> = (0..9)
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].len())
                    .chain([head[c].len()])
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
        let _ = writeln!(out, "{}", line(head.iter().map(String::as_str).collect()));
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
    for f in &sum.fleet {
        let _ = writeln!(
            out,
            "- **Fleet**: {} DOWN on {}/{} ({}) from {} to {}{}",
            md(&f.server),
            f.down_on.len(),
            f.of,
            md(&f.down_on.join(", ")),
            time(f.down_at),
            end_text(f.up_at),
            if f.not_down_on.is_empty() {
                String::new()
            } else {
                format!("; not on {}", md(&f.not_down_on.join(", ")))
            }
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
    for d in &sum.degraded {
        let _ = writeln!(
            out,
            "- **Degraded** ({}): {} {} from {} for {}",
            d.kind,
            md(&d.backend),
            md(&d.what),
            time(d.start),
            human(d.end - d.start)
        );
    }
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
        let Table { title, head, rows } = Table::small(s, series, &md(&series.name));
        let _ = writeln!(out, "\n{title}:\n");
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let _ = writeln!(out, "|{}", "---:|".repeat(head.len()));
        for r in rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
    }
    out
}

/// The story as JSON, written as it is made: indented, but a bucket on
/// one line (a day of 165 servers and 10 backends is 252,000 buckets: 14 lines each made
/// 91 MB where 50 do, and took longer to write than the story to build).
pub fn write_json(s: &Story, w: impl std::io::Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 16, w);
    let mut ser = serde_json::Serializer::with_formatter(&mut w, Shallow::default());
    s.serialize(&mut ser).map_err(std::io::Error::other)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// serde_json's `PrettyFormatter` down to [`Shallow::DEPTH`] levels of
/// nesting, compact below: a story's buckets (and nothing shallower) are
/// each one line.
#[derive(Default)]
struct Shallow {
    level: usize,
    has_value: bool,
}

impl Shallow {
    /// Root, `series`, a series, its `buckets`: a bucket is the fifth.
    const DEPTH: usize = 4;

    fn open(&mut self, w: &mut (impl std::io::Write + ?Sized), b: &[u8]) -> std::io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b)
    }

    fn close(&mut self, w: &mut (impl std::io::Write + ?Sized), b: &[u8]) -> std::io::Result<()> {
        self.level -= 1;
        if self.has_value && self.level < Self::DEPTH {
            self.line(w)?;
        }
        w.write_all(b)
    }

    fn item(&mut self, w: &mut (impl std::io::Write + ?Sized), first: bool) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.level <= Self::DEPTH {
            self.line(w)?;
        }
        Ok(())
    }

    fn line(&self, w: &mut (impl std::io::Write + ?Sized)) -> std::io::Result<()> {
        w.write_all(b"\n")?;
        (0..self.level).try_for_each(|_| w.write_all(b"  "))
    }
}

impl serde_json::ser::Formatter for Shallow {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(if self.level <= Self::DEPTH {
            b": "
        } else {
            b":"
        })
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

pub fn list_json(incidents: &[Incident]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "incidents": incidents }))
        .expect("serializes")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::md;

    /// The story's shape, nested as deep as a bucket and deeper: read back
    /// whole, indented down to the series' `buckets`, a bucket on a line.
    #[test]
    fn the_json_is_indented_down_to_a_bucket_on_one_line() {
        let v = serde_json::json!({
            "from": "x",
            "empty": [],
            "summary": {"outages": [{"server": "lb1/be/s1"}], "none": {}},
            "series": [{"name": "lb1/be", "buckets": [
                {"start": "t0", "p50": 1, "deep": {"a": [1, 2]}},
                {"start": "t1", "p50": null}
            ]}]
        });
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, super::Shallow::default());
        serde::Serialize::serialize(&v, &mut ser).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.contains(&r#"        {"deep":{"a":[1,2]},"p50":1,"start":"t0"},"#),
            "{text}"
        );
        assert!(
            lines.contains(&r#"        {"p50":null,"start":"t1"}"#),
            "{text}"
        );
        assert!(lines.contains(&r#"  "empty": [],"#), "{text}");
        assert!(
            lines.contains(&r#"        "server": "lb1/be/s1""#),
            "{text}"
        );
        assert_eq!(lines.last(), Some(&"}"));
    }

    #[test]
    fn a_name_never_becomes_markup() {
        assert_eq!(
            md("<script>a|b</script> [x](http://e) `c` *d* _e_ &amp;"),
            "&lt;script>a\\|b&lt;/script> \\[x\\]\\(http://e\\) \\`c\\` \\*d\\* \\_e\\_ &amp;amp;"
        );
    }
}
