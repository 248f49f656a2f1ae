//! A [`Story`] as one self-contained HTML page: the summary, a chart on
//! one time axis (a lane per server coloured by state, failed checks as
//! ticks, grouped by backend and HAProxy host, a no-server band per
//! backend, alert markers, per-minute requests, 5xx and Tr p95 per
//! backend), then the event table.
//!
//! The chart is SVG written here, not a charting library's: state lanes
//! are rectangles and ticks on a time axis, which no plotting crate draws
//! for us, and writing them keeps the page small (300 servers over a day
//! stay far under 2 MB) and every name's escaping in one function. Nothing
//! is fetched: no script, font or style from the network. A few lines of
//! script show the hovered element's event in a box; every element also
//! has an SVG `<title>`, so the page reads without script too.

use std::fmt::Write;

use super::{human, Story};
use crate::time::{format_rfc3339_ms, Millis};

/// Text for HTML: `&`, `<`, `>`, quotes escaped (names come from the
/// network: one must never become markup or script).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Chart geometry: names on the left, the time axis on the right.
const LABEL: f64 = 260.0;
const WIDTH: f64 = 1000.0;
const LANE: f64 = 16.0;
/// Past this many lanes, those with nothing but UP are folded into one.
const SHOW_HEALTHY: usize = 24;
/// Events listed in the table at most (the rest are counted).
const MAX_EVENTS: usize = 5_000;

fn colour(state: &str) -> &'static str {
    match state {
        "UP" => "#3fa34d",
        "DOWN" => "#d7263d",
        "MAINT" => "#6c5ce7",
        "DRAIN" => "#f4a261",
        "STOPPING" => "#e9c46a",
        _ => "#c8c8c8",
    }
}

struct Axis {
    from: Millis,
    to: Millis,
}

impl Axis {
    fn x(&self, t: Millis) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        LABEL + ((t.clamp(self.from, self.to) - self.from) as f64 / span) * WIDTH
    }
}

fn t(ms: Millis) -> String {
    format_rfc3339_ms(ms)
}

pub fn html(s: &Story) -> String {
    let axis = Axis {
        from: s.from,
        to: s.to,
    };
    let sum = &s.summary;
    let title = format!("Incident {}", sum.incident.as_deref().unwrap_or("window"));
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );

    // The summary.
    out.push_str("<dl class=\"summary\">");
    let mut item = |k: &str, v: String| {
        let _ = write!(out, "<dt>{k}</dt><dd>{v}</dd>");
    };
    item(
        "When",
        format!(
            "<span id=\"start\">{}</span> to <span id=\"end\">{}</span>{}",
            t(sum.start),
            sum.end.map_or("(still going on)".into(), t),
            sum.end
                .map(|e| format!(" ({})", human(e - sum.start)))
                .unwrap_or_default()
        ),
    );
    if let Some(f) = &sum.first_sign {
        item(
            "First sign",
            format!("{} {} {}", t(f.at), esc(&f.subject), esc(&f.what)),
        );
    }
    if let Some(d) = sum.detected_after_ms {
        item(
            "Detected in",
            format!(
                "<span id=\"detected\">{}</span> (first failed check to DOWN)",
                human(d)
            ),
        );
    }
    let rows = sum.outages.iter().map(|o| {
        format!(
            "{} from {} to {}",
            esc(&o.server),
            t(o.down_at),
            o.up_at.map_or("(still down)".into(), t)
        )
    });
    items(&mut item, "Down", "outages", rows);
    let rows = sum.fleet.iter().map(|f| {
        format!(
            "{} DOWN on {}/{} ({}) from {} to {}{}",
            esc(&f.server),
            f.down_on.len(),
            f.of,
            esc(&f.down_on.join(", ")),
            t(f.down_at),
            f.up_at.map_or("(still down)".into(), t),
            if f.not_down_on.is_empty() {
                String::new()
            } else {
                format!("; not on {}", esc(&f.not_down_on.join(", ")))
            }
        )
    });
    items(&mut item, "Fleet", "servers", rows);
    let rows = sum.no_server.iter().map(|n| {
        format!(
            "{} from {} to {}{}",
            esc(&n.backend),
            t(n.start),
            n.end.map_or("(still none)".into(), t),
            n.end
                .map(|e| format!(" ({})", human(e - n.start)))
                .unwrap_or_default()
        )
    });
    items(&mut item, "No server", "periods without a server", rows);
    if let Some(r) = sum.recovered_after_ms {
        item(
            "Recovered in",
            format!("{} (first DOWN to last UP)", human(r)),
        );
    }
    let i = &sum.impact;
    item(
        "Impact",
        format!(
            "<span id=\"requests\">{}</span> requests, <span id=\"status5xx\">{}</span> answered 5xx \
             ({} &lt;NOSRV&gt;), {} ended by the server side, {} queue timeouts, {} retries, {} redispatches",
            i.requests, i.status_5xx, i.nosrv, i.server_aborts, i.queue_timeouts, i.retries, i.redispatches
        ),
    );
    let rows = sum.degraded.iter().map(|d| {
        format!(
            "{} {}: {} from {} for {}",
            esc(&d.backend),
            d.kind,
            esc(&d.what),
            t(d.start),
            human(d.end - d.start)
        )
    });
    items(&mut item, "Degraded", "degradations", rows);
    item("Alerts", format!("{} fired", sum.alerts_fired));
    out.push_str("</dl>\n");

    chart(&mut out, s, &axis);

    // The events.
    // Below the chart, laid out when scrolled to: a day's thousands of
    // rows cost the first screen nothing.
    out.push_str("<section class=\"below\">");
    let _ = write!(
        out,
        "<h2>Events</h2><table class=\"events\"><thead><tr><th>Time (UTC)</th><th>Subject</th>\
         <th>Event</th><th>Detail</th></tr></thead><tbody>"
    );
    let (listed, aggregated) = pick_events(&s.events);
    for e in listed {
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.kind,
            t(e.at),
            esc(&e.subject),
            esc(&e.what),
            esc(e.detail.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>\n");
    if !aggregated.is_empty() {
        let n: usize = aggregated.iter().map(|a| a.count).sum();
        let _ = write!(
            out,
            "<h2>Aggregated</h2><p id=\"aggregated\" data-events=\"{n}\">{n} more events (health \
             checks first) are counted here rather than listed, by subject and event \
             (every one is in --format json):</p><table class=\"events\"><thead><tr>\
             <th>Count</th><th>First</th><th>Last</th><th>Subject</th><th>Event</th></tr></thead><tbody>"
        );
        for a in &aggregated {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                a.count,
                t(a.first),
                t(a.last),
                esc(a.subject),
                esc(a.what)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>");
    let _ = writeln!(
        out,
        "<div id=\"tip\"></div><script>{SCRIPT}</script></body></html>"
    );
    out
}

/// A bar as a closed subpath of a `<path>`.
fn bar_path(d: &mut String, x: f64, y: f64, w: f64, h: f64) {
    if h > 0.0 {
        let _ = write!(d, "M{x:.2} {y:.1}h{w:.2}v{h:.1}h-{w:.2}z");
    }
}

/// Summary rows under one term: the first [`SUMMARY_ROWS`] shown, the
/// rest folded (a day's 200 outages would push the chart off the screen;
/// the events table has each of them).
fn items(
    item: &mut impl FnMut(&str, String),
    term: &str,
    what: &str,
    rows: impl Iterator<Item = String>,
) {
    let mut rows: Vec<String> = rows.collect();
    let folded = match rows.len() > SUMMARY_ROWS + 1 {
        true => rows.split_off(SUMMARY_ROWS),
        false => Vec::new(),
    };
    for r in rows {
        item(term, r);
    }
    if !folded.is_empty() {
        item(
            term,
            format!(
                "<details><summary>{} more {what}</summary>{}</details>",
                folded.len(),
                folded.join("<br>")
            ),
        );
    }
}

/// Summary rows shown under one term before the rest are folded.
const SUMMARY_ROWS: usize = 8;

/// The SVG: time axis, lanes, no-server bands, alert markers, minutes.
fn chart(page: &mut String, s: &Story, axis: &Axis) {
    // Drawn first, then framed: the height is known once it is drawn.
    let mut body = String::new();
    let out = &mut body;
    let show_all = s.lanes.len() <= SHOW_HEALTHY;
    let shown: Vec<_> = s
        .lanes
        .iter()
        .filter(|l| show_all || !l.healthy())
        .collect();
    let folded = s.lanes.len() - shown.len();
    let backends: Vec<&str> = {
        let mut b: Vec<&str> = s.lanes.iter().map(|l| l.backend.as_str()).collect();
        for n in &s.summary.no_server {
            b.push(&n.backend);
        }
        b.sort();
        b.dedup();
        b
    };
    let minute_backends: Vec<_> = s.series.iter().filter(|x| x.kind == "backend").collect();
    // Grid lines reach the bottom, known at the end: a placeholder no
    // escaped name can contain (it has a raw `<`).
    const BOTTOM: &str = "<B>";
    // Time axis: ticks at round steps.
    let span = axis.to - axis.from;
    let step = [
        1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000, 21_600_000,
    ]
    .into_iter()
    .find(|s| span / s <= 12)
    .unwrap_or(86_400_000);
    let mut tick = (axis.from / step + 1) * step;
    while tick < axis.to {
        let x = axis.x(tick);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{x:.2}\" x2=\"{x:.2}\" y1=\"20\" y2=\"{BOTTOM}\"/>\
             <text class=\"axis\" x=\"{x:.2}\" y=\"14\">{}</text>",
            &t(tick)[11..19]
        );
        tick += step;
    }
    let mut y = 30.0;
    let mut group = "";
    for lane in &shown {
        if lane.backend != group {
            group = &lane.backend;
        }
        let _ = write!(
            out,
            "<text class=\"name\" x=\"4\" y=\"{:.1}\">{}</text>",
            y + LANE - 4.0,
            esc(&lane.server)
        );
        for sp in &lane.spans {
            let (x0, x1) = (axis.x(sp.start), axis.x(sp.end));
            let _ = write!(
                out,
                "<rect class=\"state\" x=\"{x0:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{LANE}\" \
                 fill=\"{}\" data-server=\"{}\" data-state=\"{}\" data-start=\"{}\" data-end=\"{}\">\
                 <title>{} {} from {} to {}</title></rect>",
                (x1 - x0).max(0.0),
                colour(&sp.state),
                esc(&lane.server),
                esc(&sp.state),
                t(sp.start),
                t(sp.end),
                esc(&lane.server),
                esc(&sp.state),
                t(sp.start),
                t(sp.end)
            );
        }
        // One tick per pixel, per 5 when they are many: a server failing
        // checks all day is a solid bar of ticks either way, and 100,000
        // of them are no page.
        let px = if lane.failed_checks.len() > 200 {
            5.0
        } else {
            1.0
        };
        let mut checks = lane.failed_checks.iter().peekable();
        while let Some(&c) = checks.next() {
            let x = axis.x(c);
            let (mut n, mut last) = (1, c);
            let bin = (x / px).floor();
            while let Some(&&d) = checks.peek().filter(|&&&d| (axis.x(d) / px).floor() == bin) {
                (n, last) = (n + 1, d);
                checks.next();
            }
            let what = if n == 1 {
                format!("check failed at {}", t(c))
            } else {
                format!("{n} checks failed from {} to {}", t(c), t(last))
            };
            let _ = write!(
                out,
                "<line class=\"check\" x1=\"{x:.2}\" x2=\"{x:.2}\" y1=\"{:.1}\" y2=\"{:.1}\" \
                 data-server=\"{}\" data-at=\"{}\" data-count=\"{n}\"><title>{} {what}</title></line>",
                y - 2.0,
                y + LANE + 2.0,
                esc(&lane.server),
                t(c),
                esc(&lane.server),
            );
        }
        y += LANE + 4.0;
    }
    if folded > 0 {
        let _ = write!(
            out,
            "<text class=\"name\" id=\"folded\" x=\"4\" y=\"{:.1}\">{folded} more servers UP throughout (not drawn)</text>",
            y + LANE - 4.0
        );
        y += LANE + 4.0;
    }
    // A band per backend: red while it had no server available.
    for b in &backends {
        let _ = write!(
            out,
            "<text class=\"name\" x=\"4\" y=\"{:.1}\">{} (servers available)</text>\
             <rect x=\"{LABEL}\" y=\"{:.1}\" width=\"{WIDTH}\" height=\"{:.1}\" fill=\"#eef5ee\"/>",
            y + LANE - 4.0,
            esc(b),
            y + 4.0,
            LANE - 8.0
        );
        for n in s.summary.no_server.iter().filter(|n| n.backend == *b) {
            let end = n.end.unwrap_or(axis.to);
            let (x0, x1) = (axis.x(n.start), axis.x(end));
            let _ = write!(
                out,
                "<rect class=\"noserver\" x=\"{x0:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{LANE}\" \
                 fill=\"#7a0010\" data-backend=\"{}\" data-start=\"{}\" data-end=\"{}\">\
                 <title>{} had no server available from {} to {}</title></rect>",
                (x1 - x0).max(1.0),
                esc(b),
                t(n.start),
                n.end.map_or("".into(), t),
                esc(b),
                t(n.start),
                n.end.map_or("(still none)".into(), t)
            );
        }
        y += LANE + 4.0;
    }
    // Alerts: a marker where each fired or resolved.
    let _ = write!(
        out,
        "<text class=\"name\" x=\"4\" y=\"{:.1}\">alerts</text>",
        y + LANE - 4.0
    );
    for e in s
        .events
        .iter()
        .filter(|e| matches!(e.kind, "alert_firing" | "alert_resolved" | "delivered"))
    {
        let x = axis.x(e.at);
        let (shape, fill) = match e.kind {
            "alert_firing" => (
                format!(
                    "{:.2},{:.1} {:.2},{:.1} {:.2},{:.1}",
                    x - 5.0,
                    y + LANE,
                    x + 5.0,
                    y + LANE,
                    x,
                    y
                ),
                "#d7263d",
            ),
            "alert_resolved" => (
                format!(
                    "{:.2},{:.1} {:.2},{:.1} {:.2},{:.1}",
                    x - 5.0,
                    y,
                    x + 5.0,
                    y,
                    x,
                    y + LANE
                ),
                "#3fa34d",
            ),
            _ => (
                format!(
                    "{:.2},{:.1} {:.2},{:.1} {:.2},{:.1} {:.2},{:.1}",
                    x,
                    y,
                    x + 5.0,
                    y + LANE / 2.0,
                    x,
                    y + LANE,
                    x - 5.0,
                    y + LANE / 2.0
                ),
                "#1d3557",
            ),
        };
        let _ = write!(
            out,
            "<polygon class=\"alert\" points=\"{shape}\" fill=\"{fill}\" data-kind=\"{}\" data-at=\"{}\">\
             <title>{} {} {}</title></polygon>",
            e.kind,
            t(e.at),
            t(e.at),
            esc(&e.subject),
            esc(&e.what)
        );
    }
    y += LANE + 4.0;
    // HAProxy itself: a dashed line across the chart where it reloaded,
    // started or stopped (a reload explains many a DOWN), a square on
    // its own lane to hover.
    let process: Vec<_> = s.events.iter().filter(|e| e.kind == "haproxy").collect();
    if !process.is_empty() {
        let _ = write!(
            out,
            "<text class=\"name\" x=\"4\" y=\"{:.1}\">HAProxy (reloads, starts, stops)</text>",
            y + LANE - 4.0
        );
        for e in process {
            let x = axis.x(e.at);
            let _ = write!(
                out,
                "<line class=\"process\" x1=\"{x:.2}\" x2=\"{x:.2}\" y1=\"20\" y2=\"{BOTTOM}\"/>\
                 <rect class=\"haproxy\" x=\"{:.2}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"{}\" \
                 data-at=\"{}\" data-host=\"{}\"><title>{} {}: {}</title></rect>",
                x - 4.0,
                y + LANE / 2.0 - 4.0,
                if e.what.contains("failure") { "#d7263d" } else { "#6a4c93" },
                t(e.at),
                esc(&e.subject),
                t(e.at),
                esc(&e.subject),
                esc(&e.what)
            );
        }
        y += LANE + 4.0;
    }
    // Per backend and bucket: requests (bars), 5xx (red on top), Tr (or
    // Tt) p95. Bars of `per` buckets each, at most ~240 across: a day of
    // minutes would be 1,440 bars per backend, more page than picture.
    let width = s.bucket_ms.max(1);
    let buckets = ((axis.to - axis.from) / width).max(1);
    let per = (buckets + 239) / 240;
    let bar = per * width;
    for x in &minute_backends {
        // (start, requests, 5xx, the largest p95 of its buckets)
        let mut bins: Vec<(Millis, u64, u64, Option<u64>)> = Vec::new();
        for b in &x.buckets {
            let start = b.start - (b.start - axis.from.div_euclid(width) * width).rem_euclid(bar);
            match bins.last_mut() {
                Some(last) if last.0 == start => {
                    last.1 += b.counts.requests;
                    last.2 += b.counts.status_5xx;
                    last.3 = last.3.max(b.p95);
                }
                _ => bins.push((start, b.counts.requests, b.counts.status_5xx, b.p95)),
            }
        }
        let timer = x.timer.unwrap_or("Tr");
        let per_text = super::width_text(bar);
        let max_req = bins.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
        let max_tr = bins.iter().filter_map(|b| b.3).max().unwrap_or(0).max(1) as f64;
        let h = 2.0 * LANE;
        let _ = write!(
            out,
            "<text class=\"name\" x=\"4\" y=\"{:.1}\">{} requests per {per_text} (5xx red, line {timer} p95)</text>",
            y + LANE,
            esc(&x.name)
        );
        // Behind the bars: where the incident's requests failed (red) or
        // slowed down (orange).
        for d in s.summary.degraded.iter().filter(|d| d.backend == x.name) {
            let (x0, x1) = (axis.x(d.start), axis.x(d.end));
            let _ = write!(
                out,
                "<rect class=\"degraded\" x=\"{x0:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{h:.1}\" \
                 fill=\"{}\" opacity=\"0.18\" data-backend=\"{}\" data-kind=\"{}\" data-start=\"{}\" data-end=\"{}\">\
                 <title>{} {}: {} from {} to {}</title></rect>",
                y,
                (x1 - x0).max(1.0),
                if d.kind == "errors" { "#d7263d" } else { "#f4a259" },
                esc(&d.backend),
                d.kind,
                t(d.start),
                t(d.end),
                esc(&d.backend),
                d.kind,
                esc(&d.what),
                t(d.start),
                t(d.end)
            );
        }
        // One path for the bars and one for their red 5xx tops: a day's
        // 2,400 bars as rects with a title each were half the page's
        // elements. The tooltip finds its bar by x (`data-x`, `data-tips`).
        let [mut line, mut bars, mut reds, mut xs, mut tips] = [(); 5].map(|_| String::new());
        for &(start, requests, errors, p95) in &bins {
            let (x0, x1) = (axis.x(start), axis.x(start + bar));
            let w = (x1 - x0 - 1.0).max(0.5);
            let rh = requests as f64 / max_req * h;
            let eh = errors as f64 / max_req * h;
            bar_path(&mut bars, x0, y + h - rh, w, rh);
            if errors > 0 {
                bar_path(&mut reds, x0, y + h - eh, w, eh);
            }
            let _ = write!(xs, "{x0:.2} ");
            let _ = write!(
                tips,
                "{}: {requests} requests, {errors} 5xx, {timer} p95 {} ms|",
                &t(start)[11..if bar % 60_000 == 0 { 16 } else { 19 }],
                p95.map_or("-".into(), |v| v.to_string()),
            );
            if let Some(p) = p95 {
                let _ = write!(
                    line,
                    "{:.1},{:.1} ",
                    (x0 + x1) / 2.0,
                    y + h - p as f64 / max_tr * h
                );
            }
        }
        let _ = write!(
            out,
            "<path class=\"requests\" d=\"{bars}\" fill=\"#8ab6d6\" data-backend=\"{}\" data-x=\"{}\" \
             data-tips=\"{}\"/>",
            esc(&x.name),
            xs.trim_end(),
            tips.trim_end_matches('|')
        );
        if !reds.is_empty() {
            let _ = write!(
                out,
                "<path class=\"errors\" d=\"{reds}\" fill=\"#d7263d\"/>"
            );
        }
        if !line.is_empty() {
            let _ = write!(
                out,
                "<polyline class=\"p95\" points=\"{}\" fill=\"none\" stroke=\"#1d3557\" stroke-width=\"1.5\">\
                 <title>{} {timer} p95 (max {} ms)</title></polyline>",
                line.trim_end(),
                esc(&x.name),
                max_tr
            );
        }
        y += h + 3.0 * 4.0 + LANE;
    }
    let height = y + 10.0;
    let _ = write!(
        page,
        "<h2>Timeline</h2><svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {height:.1}\" \
         data-from=\"{}\" data-to=\"{}\" data-x0=\"{LABEL}\" data-width=\"{WIDTH}\">",
        LABEL + WIDTH + 10.0,
        t(axis.from),
        t(axis.to)
    );
    page.push_str(&body.replace(BOTTOM, &format!("{height:.1}")));
    let out = page;
    out.push_str("</svg>\n<p class=\"legend\">");
    for st in ["UP", "DOWN", "MAINT", "DRAIN", "STOPPING", "UNKNOWN"] {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{st}</span>",
            colour(st)
        );
    }
    out.push_str(
        "<span><i style=\"background:#7a0010\"></i>no server available</span>\
         <span>| failed check</span><span>▲ alert fired ▼ resolved ◆ delivered</span>\
         <span style=\"color:#6a4c93\">■ ┆ HAProxy reloaded, started or stopped</span></p>\n",
    );
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}\
dl.summary{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}dd{margin:0}\
svg{width:100%;height:auto;border:1px solid #ddd;background:#fff}\
text.name{font-size:11px;fill:#333}text.axis{font-size:10px;fill:#666;text-anchor:middle}\
line.grid{stroke:#eee}line.process{stroke:#6a4c93;stroke-dasharray:3 3;opacity:.6}line.check{stroke:#000;stroke-width:1.5}\
table.events{border-collapse:collapse;font-size:12px}table.events td,table.events th{border-bottom:1px solid #eee;padding:2px 8px;text-align:left}\
tr.check{color:#666}table.events td:first-child{white-space:nowrap}tr.transition td:nth-child(3){font-weight:600}\
.legend span{margin-right:1.2em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}\
.below{content-visibility:auto;contain-intrinsic-size:auto 3000px}#tip{position:fixed;bottom:1em;right:1em;background:#222;color:#fff;padding:.4em .7em;border-radius:4px;font-size:12px;display:none;max-width:40em}";

/// Events not listed, counted by subject and event.
struct Aggregated<'a> {
    subject: &'a str,
    what: &'a str,
    count: usize,
    first: Millis,
    last: Millis,
}

/// The events the page lists (at most [`MAX_EVENTS`], in time order: every
/// one but health checks first, then checks while there is room) and the
/// rest, aggregated: a flapping fleet logs checks by the hundred thousand,
/// and a page of that many rows is no page.
fn pick_events(events: &[super::Event]) -> (Vec<&super::Event>, Vec<Aggregated<'_>>) {
    if events.len() <= MAX_EVENTS {
        return (events.iter().collect(), Vec::new());
    }
    let others = events.iter().filter(|e| e.kind != "check").count();
    let mut checks_room = MAX_EVENTS.saturating_sub(others);
    let mut others_room = MAX_EVENTS;
    let mut listed = Vec::with_capacity(MAX_EVENTS);
    let mut rest: std::collections::BTreeMap<(&str, &str), Aggregated> = Default::default();
    for e in events {
        let room = if e.kind == "check" {
            &mut checks_room
        } else {
            &mut others_room
        };
        if *room > 0 {
            *room -= 1;
            listed.push(e);
            continue;
        }
        let a = rest
            .entry((e.subject.as_str(), e.what.as_str()))
            .or_insert(Aggregated {
                subject: &e.subject,
                what: &e.what,
                count: 0,
                first: e.at,
                last: e.at,
            });
        a.count += 1;
        a.last = e.at;
    }
    let mut rest: Vec<Aggregated> = rest.into_values().collect();
    rest.sort_by(|a, b| b.count.cmp(&a.count).then(a.first.cmp(&b.first)));
    (listed, rest)
}

/// Shows the hovered element's title in a box, and marks the page as read
/// (a headless browser test reads `data-ready`, and `data-error` if a
/// script failed).
const SCRIPT: &str = "window.onerror=function(m){document.body.dataset.error=String(m)};\
(function(){var tip=document.getElementById('tip');\
document.getElementById('chart').addEventListener('mousemove',function(e){\
var g=e.target,t=g.querySelector&&g.querySelector('title'),s=t&&t.textContent;\
if(g.dataset&&g.dataset.tips){var svg=g.ownerSVGElement,p=svg.createSVGPoint();p.x=e.clientX;p.y=e.clientY;\
p=p.matrixTransform(svg.getScreenCTM().inverse());var xs=g.dataset.x.split(' '),i=0;\
while(i+1<xs.length&&+xs[i+1]<=p.x)i++;s=g.dataset.tips.split('|')[i]}\
if(s){tip.textContent=s;tip.style.display='block'}else{tip.style.display='none'}});\
document.body.dataset.ready=String(document.querySelectorAll('#chart rect.state').length);})();";

#[cfg(test)]
mod tests {
    use super::esc;

    /// A day's hundreds of outages do not push the chart off the first
    /// screen: the first few are listed, the rest folded, none lost.
    #[test]
    fn a_long_summary_list_is_folded() {
        let list = |n: usize| {
            let mut items = Vec::new();
            let rows = (0..n).map(|i| format!("s{i}"));
            super::items(
                &mut |k: &str, v| items.push((k.to_string(), v)),
                "Down",
                "outages",
                rows,
            );
            items
        };
        assert_eq!(list(3).len(), 3);
        // One more than shown is listed rather than folded.
        assert_eq!(list(super::SUMMARY_ROWS + 1).len(), super::SUMMARY_ROWS + 1);
        let folded = list(20);
        assert_eq!(folded.len(), super::SUMMARY_ROWS + 1);
        assert!(folded.iter().all(|(k, _)| k == "Down"));
        let last = &folded.last().unwrap().1;
        assert!(
            last.starts_with("<details><summary>12 more outages</summary>s8<br>s9<br>"),
            "{last}"
        );
        assert!(last.ends_with("s19</details>"), "{last}");
    }

    #[test]
    fn a_name_never_becomes_markup_or_script() {
        assert_eq!(
            esc("<script>alert(\"x\")</script>&'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }
}
