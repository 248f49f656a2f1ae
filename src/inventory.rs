//! haproxy.cfg as the inventory of servers: every backend and server it
//! declares, set against the servers the logs name. A server that never
//! logged anything still exists ("no event yet"), with the state HAProxy
//! gives it before any check (a `disabled` server starts in MAINT; one that
//! nothing checks is UP for HAProxy); a server that logs but is not
//! declared means a stale configuration or the wrong file.

use std::collections::BTreeMap;

use crate::haproxy_cfg::HaproxyConfig;
use crate::model::Label;

/// What the inventory says of a server in a report.
pub const CONFIGURED: &str = "configured";
pub const NO_EVENT_YET: &str = "no event yet";
pub const NOT_CONFIGURED: &str = "not in the configuration";

/// One server as the configuration declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configured {
    pub backend: String,
    pub server: String,
    pub check: bool,
    pub backup: bool,
    pub disabled: bool,
    /// `track be/srv`: its state is the tracked server's.
    pub track: Option<String>,
    pub agent_check: bool,
    /// `haproxy.cfg:12`: where its backend is declared.
    pub at: String,
}

impl Configured {
    /// The state HAProxy gives the server before any event, and why.
    pub fn initial(&self) -> (Label, String) {
        if self.disabled {
            (Label::Maint, format!("disabled in {}", self.at))
        } else if !self.check && self.track.is_none() && !self.agent_check {
            // The stats page shows such a server UP ("no check").
            (
                Label::Up,
                format!("no check in {}: HAProxy counts it UP", self.at),
            )
        } else {
            (Label::Unknown, "no state event yet".to_string())
        }
    }
}

/// Every server of every backend (and `listen`) of a configuration.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    servers: BTreeMap<(String, String), Configured>,
    /// Backends by name, with their number of servers.
    backends: BTreeMap<String, usize>,
}

impl Inventory {
    pub fn of(cfg: &HaproxyConfig) -> Inventory {
        let mut inv = Inventory::default();
        for p in cfg.backends() {
            inv.backends.insert(p.name.clone(), p.servers.len());
            for s in &p.servers {
                inv.servers.insert(
                    (p.name.clone(), s.name.clone()),
                    Configured {
                        backend: p.name.clone(),
                        server: s.name.clone(),
                        check: s.check,
                        backup: s.backup,
                        disabled: s.disabled,
                        track: s.track.clone(),
                        agent_check: s.agent_check,
                        at: format!("{}:{}", p.file, p.line),
                    },
                );
            }
        }
        inv
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    pub fn get(&self, backend: &str, server: &str) -> Option<&Configured> {
        // One allocation-free lookup would need a borrowed tuple key; the
        // inventory is consulted per server, not per line.
        self.servers.get(&(backend.to_string(), server.to_string()))
    }

    pub fn has_backend(&self, backend: &str) -> bool {
        self.backends.contains_key(backend)
    }

    /// Configured servers, by backend then server name.
    pub fn servers(&self) -> impl Iterator<Item = &Configured> {
        self.servers.values()
    }

    /// Configured backends and their number of servers.
    pub fn backends(&self) -> impl Iterator<Item = (&str, usize)> {
        self.backends.iter().map(|(b, n)| (b.as_str(), *n))
    }

    /// `be/srv` names of `logged` servers the configuration does not
    /// declare, for a warning.
    pub fn unknown<'a>(&self, logged: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<String> {
        let mut out: Vec<String> = logged
            .filter(|(b, s)| !is_placeholder(s) && self.get(b, s).is_none())
            .map(|(b, s)| format!("{b}/{s}"))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// What the inventory says of one logged server.
pub struct Mark<'a> {
    /// [`CONFIGURED`] or [`NOT_CONFIGURED`].
    pub inventory: &'static str,
    /// Its declaration, if any.
    pub declared: Option<&'a Configured>,
}

impl Inventory {
    /// A logged server set against the configuration; `None` for
    /// `<NOSRV>` (no server at all).
    pub fn mark(&self, backend: &str, server: &str) -> Option<Mark<'_>> {
        if is_placeholder(server) {
            return None;
        }
        let declared = self.get(backend, server);
        Some(Mark {
            inventory: if declared.is_some() {
                CONFIGURED
            } else {
                NOT_CONFIGURED
            },
            declared,
        })
    }

    /// The declared servers each of `hosts` has not logged (`logged`:
    /// host, backend, server), those `selects` keeps, by host.
    pub fn missing<'a>(
        &'a self,
        hosts: &'a [String],
        logged: &std::collections::HashSet<(String, String, String)>,
        selects: impl Fn(&str, &str, &str) -> bool,
    ) -> Vec<(&'a str, &'a Configured)> {
        let mut out = Vec::new();
        for h in hosts {
            for c in self.servers() {
                let key = (h.clone(), c.backend.clone(), c.server.clone());
                if !logged.contains(&key) && selects(h, &c.backend, &c.server) {
                    out.push((h.as_str(), c));
                }
            }
        }
        out
    }
}

/// The hosts among `names`, each once and sorted; `""` (no host) when
/// there is none: the declared servers are listed under each.
pub fn hosts<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut hosts: Vec<String> = names.map(str::to_string).collect();
    hosts.sort();
    hosts.dedup();
    if hosts.is_empty() {
        hosts.push(String::new());
    }
    hosts
}

/// `<NOSRV>` and the like: HAProxy's word for "no server", not a server.
pub fn is_placeholder(server: &str) -> bool {
    server.starts_with('<')
}

/// The warning for servers that log but are not declared, if any.
pub fn unknown_warning(unknown: &[String], files: &[std::path::PathBuf]) -> Option<String> {
    if unknown.is_empty() {
        return None;
    }
    let shown: Vec<&str> = unknown.iter().take(10).map(String::as_str).collect();
    let more = unknown.len().saturating_sub(shown.len());
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Some(format!(
        "{} server{} log{} but {} not in {} (a stale configuration or the wrong file?): {}{}",
        unknown.len(),
        if unknown.len() == 1 { "" } else { "s" },
        if unknown.len() == 1 { "s" } else { "" },
        if unknown.len() == 1 { "is" } else { "are" },
        files.join(", "),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_states_as_haproxy_sets_them() {
        let mut cfg = HaproxyConfig::default();
        cfg.read(
            "h.cfg",
            "backend be\n  server a 10.0.0.1:80 check\n  server b 10.0.0.2:80 disabled check\n  server c 10.0.0.3:80\n  server d 10.0.0.4:80 track be/a\n",
            &Default::default(),
        )
        .unwrap();
        let inv = Inventory::of(&cfg);
        let label = |s: &str| inv.get("be", s).unwrap().initial().0;
        assert_eq!(
            [label("a"), label("b"), label("c"), label("d")],
            [Label::Unknown, Label::Maint, Label::Up, Label::Unknown]
        );
        assert_eq!(
            inv.unknown([("be", "a"), ("be", "z"), ("other", "a")].into_iter()),
            ["be/z", "other/a"]
        );
    }
}
