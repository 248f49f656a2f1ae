//! HAProxy's runtime API (the `stats socket`), read for `show servers
//! state`: every server's state at start, before any log line says it, and
//! again every `--reconcile` interval to catch what lost datagrams never
//! told. The answer's columns are found by their names in its header
//! (management guide, "show servers state", format version 1 of HAProxy
//! 1.6 to 3.x), so columns a later version adds cost nothing.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::haproxy::{Admin, Op};

/// Where a runtime API listens: `/run/haproxy/admin.sock`,
/// `unix@/run/...`, `ipv4@127.0.0.1:9999`, `ipv6@[::1]:9999`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Unix(PathBuf),
    Tcp(String),
}

/// One `--haproxy-socket`: the load balancer's host name (as its log
/// lines carry it) and where its runtime API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socket {
    pub host: String,
    pub addr: Addr,
}

impl std::fmt::Display for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.addr {
            Addr::Unix(p) => write!(f, "{}", p.display()),
            Addr::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// This machine's host name, as rsyslog writes it in the lines it relays
/// for a local HAProxy (the short name).
fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().split('.').next().unwrap_or("").to_string())
        .unwrap_or_default()
}

impl Socket {
    /// `[HOST=]ADDR`: without `HOST=`, this machine's host name; `=ADDR`
    /// for lines that carry none (HAProxy sending without
    /// `log-send-hostname`).
    pub fn parse(arg: &str) -> Result<Socket, String> {
        let (host, addr) = match arg.split_once('=') {
            Some((h, a)) => (h.to_string(), a),
            None => (local_host(), arg),
        };
        let addr = if let Some(a) = addr
            .strip_prefix("ipv4@")
            .or_else(|| addr.strip_prefix("ipv6@"))
        {
            let a = a.trim_start_matches('[').replace("]:", ":");
            if !a.contains(':') {
                return Err(format!(
                    "--haproxy-socket {arg}: `{addr}` has no port (ipv4@HOST:PORT)"
                ));
            }
            Addr::Tcp(if addr.starts_with("ipv6@") {
                let (h, p) = a.rsplit_once(':').expect("has a colon");
                format!("[{h}]:{p}")
            } else {
                a
            })
        } else {
            let path = addr.strip_prefix("unix@").unwrap_or(addr);
            if path.is_empty() {
                return Err(format!(
                    "--haproxy-socket {arg}: give the stats socket's path or ipv4@HOST:PORT"
                ));
            }
            Addr::Unix(PathBuf::from(path))
        };
        Ok(Socket { host, addr })
    }

    /// Sends one command and reads the whole answer (the API closes the
    /// connection after it in its default, non-interactive mode).
    pub fn ask(&self, command: &str, timeout: Duration) -> std::io::Result<String> {
        fn talk(mut s: impl Read + Write, command: &str) -> std::io::Result<String> {
            s.write_all(command.as_bytes())?;
            s.write_all(b"\n")?;
            let mut out = Vec::new();
            s.read_to_end(&mut out)?;
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        match &self.addr {
            Addr::Unix(p) => {
                let s = std::os::unix::net::UnixStream::connect(p)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                talk(s, command)
            }
            Addr::Tcp(a) => {
                use std::net::ToSocketAddrs;
                let to = a.to_socket_addrs()?.next().ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
                })?;
                let s = std::net::TcpStream::connect_timeout(&to, timeout)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                talk(s, command)
            }
        }
    }

    /// Every server's state, now.
    pub fn servers_state(&self, timeout: Duration) -> Result<Vec<ServerRow>, String> {
        let text = self
            .ask("show servers state", timeout)
            .map_err(|e| format!("runtime API {self}: {e}"))?;
        parse(&text).map_err(|e| format!("runtime API {self}: {e}"))
    }
}

/// One server of `show servers state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerRow {
    pub backend: String,
    pub server: String,
    pub op: Op,
    pub admin: Admin,
    /// `srv_time_since_last_change`, seconds.
    pub since_change: Option<u64>,
}

/// `srv_op_state`: 0 stopped, 1 starting (up, throttled), 2 running,
/// 3 stopping.
fn op_state(v: u32) -> Option<Op> {
    match v {
        0 => Some(Op::Down),
        1 | 2 => Some(Op::Up),
        3 => Some(Op::Stopping),
        _ => None,
    }
}

/// `srv_admin_state`, a mask: forced, inherited, configured (`disabled`)
/// or resolution maintenance (0x01, 0x02, 0x04, 0x20); forced or inherited
/// drain (0x08, 0x10). 0x40 only says the FQDN was changed.
fn admin_state(mask: u32) -> Admin {
    if mask & 0x27 != 0 {
        Admin::Maint
    } else if mask & 0x18 != 0 {
        Admin::Drain
    } else {
        Admin::Ready
    }
}

/// The answer to `show servers state`: a version line, a `# name ...`
/// header, one line per server. Anything else is an error the API wrote
/// (`Unknown command`, `Permission denied`).
pub fn parse(text: &str) -> Result<Vec<ServerRow>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let version = lines.next().unwrap_or("").trim();
    if version != "1" {
        let said = text.trim();
        return Err(if said.is_empty() {
            "empty answer to `show servers state`".into()
        } else {
            format!(
                "`show servers state` answered `{}`, not its format 1",
                said.lines().next().unwrap_or("")
            )
        });
    }
    let header: Vec<&str> = match lines.next() {
        Some(h) if h.starts_with('#') => h.trim_start_matches('#').split_whitespace().collect(),
        _ => return Err("`show servers state` without its `#` header".into()),
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("`show servers state` has no `{name}` column"))
    };
    let (be, srv, op, admin) = (
        col("be_name")?,
        col("srv_name")?,
        col("srv_op_state")?,
        col("srv_admin_state")?,
    );
    let since = col("srv_time_since_last_change").ok();
    let mut rows = Vec::new();
    for l in lines.filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u32>().ok());
        let (Some(b), Some(s), Some(o), Some(a)) = (f.get(be), f.get(srv), num(op), num(admin))
        else {
            continue;
        };
        let Some(o) = op_state(o) else { continue };
        rows.push(ServerRow {
            backend: b.to_string(),
            server: s.to_string(),
            op: o,
            admin: admin_state(a),
            since_change: since.and_then(|i| f.get(i)?.parse().ok()),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As HAProxy 2.6 writes it (src/server_state.c, version 1).
    const STATE: &str = "1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 be_app 1 srv1 127.0.0.1 2 0 1 1 43 6 3 4 6 0 0 0 - 8081 - 0 0 - - 0
3 be_app 2 srv2 127.0.0.1 0 0 1 1 5 8 2 0 6 0 0 0 - 8082 - 0 0 - - 0
3 be_app 3 srv3 127.0.0.1 2 8 1 1 9 6 3 4 6 0 0 0 - 8083 - 0 0 - - 0
3 be_app 4 srv4 127.0.0.1 0 5 1 1 60 1 0 0 14 0 0 0 - 8084 - 0 0 - - 0
";

    #[test]
    fn states_read_by_column_name() {
        let rows = parse(STATE).unwrap();
        let got: Vec<(&str, Op, Admin, Option<u64>)> = rows
            .iter()
            .map(|r| (r.server.as_str(), r.op, r.admin, r.since_change))
            .collect();
        assert_eq!(
            got,
            [
                ("srv1", Op::Up, Admin::Ready, Some(43)),
                ("srv2", Op::Down, Admin::Ready, Some(5)),
                ("srv3", Op::Up, Admin::Drain, Some(9)),
                ("srv4", Op::Down, Admin::Maint, Some(60)),
            ]
        );
        assert!(parse("Unknown command: 'show servers stat'\n")
            .unwrap_err()
            .contains("Unknown command"));
        assert!(parse("").is_err());
    }

    #[test]
    fn socket_arguments() {
        assert_eq!(
            Socket::parse("lb1=/run/haproxy/admin.sock").unwrap(),
            Socket {
                host: "lb1".into(),
                addr: Addr::Unix("/run/haproxy/admin.sock".into())
            }
        );
        assert_eq!(
            Socket::parse("=ipv4@127.0.0.1:9999").unwrap(),
            Socket {
                host: String::new(),
                addr: Addr::Tcp("127.0.0.1:9999".into())
            }
        );
        assert_eq!(
            Socket::parse("x=ipv6@[::1]:9999").unwrap().addr,
            Addr::Tcp("[::1]:9999".into())
        );
        assert!(Socket::parse("x=ipv4@127.0.0.1").is_err());
        assert!(Socket::parse("x=").is_err());
    }
}
