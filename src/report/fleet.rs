//! The fleet view (`hapwatch status --fleet`): each server across the load
//! balancers that log it. "srv3 DOWN on 2/4 (lb1, lb3)" is one load
//! balancer's network or a partition; "DOWN on 4/4" is the server.
//!
//! Built from what `status` reads (per-host rows) and each host's newest
//! stored line, in event time moved by the host's measured clock offset
//! (`engine::clocks`): a host whose newest line is more than the silence
//! (`--host-silence`) behind the fleet's newest line is *silent*, and a
//! host whose clock runs minutes behind is not silent but *skewed*, said
//! so. A silent host's last known state is shown as such and not counted
//! either way: a load balancer that stopped logging is not evidence that a
//! server is UP.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::table::{grid, host as show};
use crate::engine::Label;
use crate::store::{BackendRow, HostRow, ServerRow};
use crate::time::{format_rfc3339_ms, human, Millis};

/// The default `--host-silence`.
pub const HOST_SILENCE_MS: Millis = 120_000;

/// A clock offset shown as skew: relays and networks delay lines by less,
/// NTP keeps clocks far closer.
pub const SKEW_SHOWN_MS: Millis = 10_000;

#[derive(Debug, Serialize)]
pub struct Fleet {
    /// The fleet's newest line: the "now" silence is judged against.
    pub as_of: Option<String>,
    pub host_silence_seconds: u64,
    pub hosts: Vec<FleetHost>,
    pub servers: Vec<FleetServer>,
    pub backends: Vec<FleetBackend>,
}

#[derive(Debug, Serialize)]
pub struct FleetHost {
    pub host: String,
    pub last_line: Option<String>,
    /// How far its newest line is behind the fleet's newest.
    pub behind_seconds: Option<f64>,
    pub silent: bool,
    /// Lines quarantined for their date: too far past their receive time
    /// (its clock runs ahead) or before 2000 (never set); `status --skewed`
    /// shows them.
    pub skewed_lines: u64,
    /// How far its dates run ahead of the reference (negative: behind), when
    /// measured: live against the receive time, from a file against the
    /// other hosts (`clock_reference`: `received` or `fleet`).
    pub clock_offset_seconds: Option<f64>,
    pub clock_reference: Option<String>,
    /// The offset is large enough to say (see [`SKEW_SHOWN_MS`]).
    pub skewed: bool,
}

#[derive(Debug, Serialize)]
pub struct HostView {
    /// As the host's own row says: `UNKNOWN` when no health line named
    /// the server there yet.
    pub state: String,
    /// No health line yet, but the host sends the server requests: it
    /// holds it UP (HAProxy sends none to a server it holds DOWN), and the
    /// fleet counts it so, as the fleet rules do.
    pub serving: bool,
    pub since: Option<String>,
    pub silent: bool,
}

#[derive(Debug, Serialize)]
pub struct FleetServer {
    pub backend: String,
    pub server: String,
    pub backup: bool,
    /// `DOWN` on every host that reports it and is not silent, `PARTIAL`
    /// when DOWN on some of them, else the one state they agree on, or
    /// `MIXED`; `SILENT` when every host reporting it is silent.
    pub fleet_state: &'static str,
    /// Hosts (not silent) that see it DOWN, and of how many (not silent)
    /// that report it.
    pub down_on: usize,
    pub of: usize,
    /// The earliest `since` of the hosts that see it DOWN.
    pub down_since: Option<String>,
    pub hosts: BTreeMap<String, HostView>,
}

#[derive(Debug, Serialize)]
pub struct BackendOnHost {
    pub servers_up: u32,
    pub servers: u32,
    pub no_server_since: Option<String>,
    pub silent: bool,
}

#[derive(Debug, Serialize)]
pub struct FleetBackend {
    pub backend: String,
    /// Hosts (not silent) on which it has no server available, of how many
    /// (not silent).
    pub no_server_on: usize,
    pub of: usize,
    pub hosts: BTreeMap<String, BackendOnHost>,
}

/// Groups per-host rows by server and backend; `seen` says when each host
/// last logged.
pub fn build(
    servers: &[ServerRow],
    backends: &[BackendRow],
    seen: &[HostRow],
    silence: Millis,
) -> Fleet {
    // Each host's newest line on the fleet's clock.
    let fleet_last = |h: &HostRow| h.last.map(|l| l - h.offset.unwrap_or(0));
    let newest = seen.iter().filter_map(fleet_last).max();
    let silent_host = |h: &HostRow| match (newest, fleet_last(h)) {
        (Some(n), Some(l)) => n - l > silence,
        (Some(_), None) => true,
        _ => false,
    };
    let silent: std::collections::HashSet<&str> = seen
        .iter()
        .filter(|h| silent_host(h))
        .map(|h| h.host.as_str())
        .collect();
    let hosts = seen
        .iter()
        .map(|h| FleetHost {
            host: h.host.clone(),
            last_line: h.last.map(format_rfc3339_ms),
            behind_seconds: newest
                .zip(fleet_last(h))
                .map(|(n, l)| (n - l).max(0) as f64 / 1000.0),
            silent: silent.contains(h.host.as_str()),
            skewed_lines: h.skewed_lines,
            clock_offset_seconds: h.offset.map(|o| o as f64 / 1000.0),
            clock_reference: h.reference.clone(),
            skewed: h.offset.is_some_and(|o| o.abs() >= SKEW_SHOWN_MS),
        })
        .collect();

    let servers_in = servers;
    let mut by_server: BTreeMap<(&str, &str), Vec<&ServerRow>> = BTreeMap::new();
    for s in servers {
        if crate::inventory::is_placeholder(&s.server) {
            continue;
        }
        by_server
            .entry((s.backend.as_str(), s.server.as_str()))
            .or_default()
            .push(s);
    }
    let servers = by_server
        .into_iter()
        .map(|((backend, server), rows)| {
            let live: Vec<&&ServerRow> = rows
                .iter()
                .filter(|r| !silent.contains(r.host.as_str()))
                .collect();
            let down: Vec<&&ServerRow> =
                live.iter().copied().filter(|r| r.state == "DOWN").collect();
            let effective = |r: &ServerRow| {
                if serving(r) {
                    "UP"
                } else {
                    super::store::label(&r.state).as_str()
                }
            };
            let fleet_state = if live.is_empty() {
                "SILENT"
            } else if down.len() == live.len() {
                "DOWN"
            } else if !down.is_empty() {
                "PARTIAL"
            } else if live.iter().all(|r| effective(r) == effective(live[0])) {
                effective(live[0])
            } else {
                "MIXED"
            };
            FleetServer {
                backend: backend.to_string(),
                server: server.to_string(),
                backup: rows.iter().any(|r| r.backup),
                fleet_state,
                down_on: down.len(),
                of: live.len(),
                // RFC 3339 strings of one formatter sort as their times.
                down_since: down.iter().filter_map(|r| r.since.clone()).min(),
                hosts: rows
                    .iter()
                    .map(|r| {
                        (
                            r.host.clone(),
                            HostView {
                                state: r.state.clone(),
                                serving: serving(r),
                                since: r.since.clone(),
                                silent: silent.contains(r.host.as_str()),
                            },
                        )
                    })
                    .collect(),
            }
        })
        .collect();

    // A server its host serves and has no health line of counts UP in its
    // backend too, as it does in its own row.
    let mut serving_in: std::collections::HashMap<(&str, &str), u32> = Default::default();
    for s in servers_in.iter().filter(|s| serving(s)) {
        if !crate::inventory::is_placeholder(&s.server) {
            *serving_in.entry((&s.host, &s.backend)).or_default() += 1;
        }
    }
    let mut by_backend: BTreeMap<&str, Vec<&BackendRow>> = BTreeMap::new();
    for b in backends {
        by_backend.entry(b.backend.as_str()).or_default().push(b);
    }
    let backends = by_backend
        .into_iter()
        .map(|(backend, rows)| {
            let live = rows.iter().filter(|r| !silent.contains(r.host.as_str()));
            FleetBackend {
                backend: backend.to_string(),
                no_server_on: live.clone().filter(|r| r.no_server_since.is_some()).count(),
                of: live.count(),
                hosts: rows
                    .iter()
                    .map(|r| {
                        (
                            r.host.clone(),
                            BackendOnHost {
                                servers_up: r.servers_up
                                    + serving_in.get(&(&r.host[..], &r.backend[..])).unwrap_or(&0),
                                servers: r.servers,
                                no_server_since: r.no_server_since.clone(),
                                silent: silent.contains(r.host.as_str()),
                            },
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    Fleet {
        as_of: newest.map(format_rfc3339_ms),
        host_silence_seconds: (silence / 1000) as u64,
        hosts,
        servers,
        backends,
    }
}

/// Requests but no health line: see [`HostView::serving`].
fn serving(r: &ServerRow) -> bool {
    r.state == "UNKNOWN" && r.last_request.is_some()
}

fn label(fleet_state: &str) -> Label {
    match fleet_state {
        "UP" => Label::Up,
        "DOWN" => Label::Down,
        "PARTIAL" | "MAINT" | "DRAIN" | "STOPPING" | "MIXED" => Label::Maint,
        _ => Label::Unknown,
    }
}

/// `lb1, lb3`: host names as the tables show them.
fn names<'a>(hosts: impl Iterator<Item = &'a str>) -> String {
    hosts.map(show).collect::<Vec<_>>().join(", ")
}

/// The view as text: servers (one line each, the worst first within a
/// backend is not reordered: backends and servers sort by name, as
/// `status` does), backends, hosts.
pub fn fleet_table(f: &Fleet, color: bool) -> String {
    let mut out = String::new();
    let rows: Vec<_> = f
        .servers
        .iter()
        .map(|s| {
            let of_state = |want: &str| {
                names(
                    s.hosts
                        .iter()
                        .filter(|(_, v)| !v.silent && v.state == want)
                        .map(|(h, _)| h.as_str()),
                )
            };
            let state = match s.fleet_state {
                "DOWN" | "PARTIAL" => format!("DOWN on {}/{}", s.down_on, s.of),
                "SILENT" => "SILENT".to_string(),
                st => format!("{st} on {}/{}", s.of, s.of),
            };
            let hosts = match s.fleet_state {
                "DOWN" | "PARTIAL" => of_state("DOWN"),
                _ => String::new(),
            };
            // What the other hosts say, state by state, then the silent.
            let mut others: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            let mut silent = Vec::new();
            for (h, v) in &s.hosts {
                if v.silent {
                    silent.push(format!("{} (last {})", show(h), v.state));
                } else if v.state != "DOWN" && matches!(s.fleet_state, "PARTIAL" | "MIXED") {
                    let st = if v.serving {
                        "UP (serving)"
                    } else {
                        v.state.as_str()
                    };
                    others.entry(st).or_default().push(h.as_str());
                }
            }
            let mut rest: Vec<String> = others
                .into_iter()
                .map(|(st, hs)| format!("{st} on {}", names(hs.into_iter())))
                .collect();
            if !silent.is_empty() {
                rest.push(format!("silent: {}", silent.join(", ")));
            }
            (
                vec![
                    format!(
                        "{}/{}{}",
                        s.backend,
                        s.server,
                        if s.backup { " (backup)" } else { "" }
                    ),
                    state,
                    hosts,
                    s.down_since.clone().unwrap_or_else(|| "-".into()),
                    rest.join(" · "),
                ],
                Some(label(s.fleet_state)),
            )
        })
        .collect();
    grid(
        &mut out,
        &["SERVER", "STATE", "HOSTS", "SINCE", "ELSEWHERE"],
        &rows,
        color,
    );
    let _ = writeln!(out);
    let rows: Vec<_> = f
        .backends
        .iter()
        .map(|b| {
            let without = names(
                b.hosts
                    .iter()
                    .filter(|(_, v)| !v.silent && v.no_server_since.is_some())
                    .map(|(h, _)| h.as_str()),
            );
            let per_host = b
                .hosts
                .iter()
                .map(|(h, v)| {
                    format!(
                        "{} {}/{}{}",
                        show(h),
                        v.servers_up,
                        v.servers,
                        if v.silent { " (silent)" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            (
                vec![
                    b.backend.clone(),
                    if b.no_server_on == 0 {
                        format!("on 0/{}", b.of)
                    } else {
                        format!("on {}/{} ({without})", b.no_server_on, b.of)
                    },
                    per_host,
                ],
                None,
            )
        })
        .collect();
    grid(
        &mut out,
        &["BACKEND", "NO SERVER AVAILABLE", "SERVERS UP PER HOST"],
        &rows,
        color,
    );
    let _ = writeln!(out);
    let rows: Vec<_> = f
        .hosts
        .iter()
        .map(|h| {
            let status = if h.silent {
                format!(
                    "silent for {}",
                    human((h.behind_seconds.unwrap_or(0.0) * 1000.0) as Millis)
                )
            } else {
                match h.behind_seconds {
                    Some(b) if b >= 1.0 => {
                        format!("sending ({} behind)", human((b * 1000.0) as Millis))
                    }
                    _ => "sending".to_string(),
                }
            };
            let mut clock = Vec::new();
            if let (true, Some(o)) = (h.skewed, h.clock_offset_seconds) {
                let by = human((o.abs().round() * 1000.0) as Millis);
                let against = match h.clock_reference.as_deref() {
                    Some("fleet") => "the other hosts",
                    _ => "their arrival",
                };
                clock.push(if o < 0.0 {
                    format!("dates {by} behind {against} (its clock, or a delayed relay)")
                } else {
                    format!("dates {by} ahead of {against} (its clock)")
                });
            }
            if h.skewed_lines > 0 {
                clock.push(format!(
                    "{} lines quarantined for their date (clock ahead, or never set? status --skewed)",
                    h.skewed_lines
                ));
            }
            let skew = clock.join("; ");
            (
                vec![
                    show(&h.host).to_string(),
                    h.last_line.clone().unwrap_or_else(|| "-".into()),
                    status,
                    skew,
                ],
                None,
            )
        })
        .collect();
    grid(
        &mut out,
        &["HOST", "LAST LINE", "LOGS", "CLOCK"],
        &rows,
        color,
    );
    if let Some(t) = &f.as_of {
        let _ = writeln!(
            out,
            "\nAs of the fleet's newest line, {t}; a host is silent after {} without one.",
            human(f.host_silence_seconds as Millis * 1000)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: &str, server: &str, state: &str, since: &str) -> ServerRow {
        ServerRow {
            host: host.into(),
            backend: "be_app".into(),
            server: server.into(),
            backup: false,
            state: state.into(),
            since: Some(since.into()),
            last_cause: None,
            check: None,
            check_reason: None,
            last_request: None,
            inventory: None,
        }
    }

    fn seen(host: &str, last: Millis) -> HostRow {
        HostRow {
            host: host.into(),
            last: Some(last),
            skewed_lines: 0,
            offset: None,
            reference: None,
        }
    }

    #[test]
    fn a_server_down_on_some_hosts_is_partial_and_a_silent_host_counts_neither_way() {
        let servers = [
            row("lb1", "srv3", "DOWN", "2026-11-24T16:23:20.000Z"),
            row("lb2", "srv3", "UP", "2026-11-24T16:00:00.000Z"),
            row("lb3", "srv3", "DOWN", "2026-11-24T16:23:14.000Z"),
            row("lb4", "srv3", "UP", "2026-11-24T16:00:00.000Z"),
            row("lb1", "srv1", "UP", "2026-11-24T16:00:00.000Z"),
            row("lb2", "srv1", "UP", "2026-11-24T16:00:00.000Z"),
        ];
        let t = 1_000_000_000;
        let hosts = [
            seen("lb1", t),
            seen("lb2", t - 5_000),
            seen("lb3", t),
            seen("lb4", t - 600_000),
        ];
        let f = build(&servers, &[], &hosts, HOST_SILENCE_MS);
        let srv3 = f.servers.iter().find(|s| s.server == "srv3").unwrap();
        assert_eq!((srv3.fleet_state, srv3.down_on, srv3.of), ("PARTIAL", 2, 3));
        assert_eq!(srv3.down_since.as_deref(), Some("2026-11-24T16:23:14.000Z"));
        assert!(srv3.hosts["lb4"].silent);
        let srv1 = f.servers.iter().find(|s| s.server == "srv1").unwrap();
        assert_eq!((srv1.fleet_state, srv1.down_on, srv1.of), ("UP", 0, 2));
        let text = fleet_table(&f, false);
        let line = text.lines().find(|l| l.contains("srv3")).unwrap();
        assert!(line.contains("DOWN on 2/3"), "{line}");
        assert!(line.contains("lb1, lb3"), "{line}");
        assert!(line.contains("UP on lb2"), "{line}");
        assert!(line.contains("silent: lb4 (last UP)"), "{line}");
        assert!(text.contains("silent for 10m00s"), "{text}");
        // Every host that reports it sees it DOWN: DOWN, not PARTIAL.
        let f = build(&servers[..3], &[], &hosts[..3], HOST_SILENCE_MS);
        let srv3 = f.servers.iter().find(|s| s.server == "srv3").unwrap();
        assert_eq!(srv3.fleet_state, "PARTIAL");
        // A host that only sends it requests holds it UP.
        let mut serving_only = row("lb2", "srv3", "UNKNOWN", "2026-11-24T16:00:00.000Z");
        serving_only.since = None;
        serving_only.last_request = Some("2026-11-24T16:23:30.000Z".into());
        let f = build(
            &[servers[0].clone(), serving_only.clone()],
            &[],
            &hosts,
            HOST_SILENCE_MS,
        );
        assert_eq!(f.servers[0].fleet_state, "PARTIAL");
        assert!(f.servers[0].hosts["lb2"].serving);
        let text = fleet_table(&f, false);
        assert!(text.contains("UP (serving) on lb2"), "{text}");
        let f = build(&[serving_only], &[], &hosts, HOST_SILENCE_MS);
        assert_eq!(f.servers[0].fleet_state, "UP");
        let only_down = [servers[0].clone(), servers[2].clone()];
        let f = build(&only_down, &[], &hosts, HOST_SILENCE_MS);
        assert_eq!(f.servers[0].fleet_state, "DOWN");
        assert_eq!((f.servers[0].down_on, f.servers[0].of), (2, 2));
    }
}
