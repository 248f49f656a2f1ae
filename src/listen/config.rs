//! `hapwatch listen`'s settings: flags and `--config FILE` (TOML, the
//! same names with `_` for `-`; flags win), checked and turned into
//! [`Options`] with the defaults an operator expects (loopback listeners,
//! 64 KiB frames, 1,024 connections, a 2 s reorder window).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::tls::TlsFiles;
use super::{Limits, Options, StartError, UnixAccess};
use crate::alerts::RuleFile;
use crate::patterns::PatternSet;
use crate::time::{parse_duration, parse_positive_duration, Millis};

/// `hapwatch listen`. Every option can also come from `--config FILE`
/// (TOML, the same names with `_` for `-`); flags win.
#[derive(clap::Args, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Receive syslog over UDP here (repeatable; default 127.0.0.1:5514
    /// when no listener is given).
    #[arg(long, value_name = "IP:PORT")]
    pub udp: Vec<String>,
    /// Receive syslog over TCP here, LF or octet-counted framing
    /// (repeatable; default 127.0.0.1:5514 when no listener is given).
    #[arg(long, value_name = "IP:PORT")]
    pub tcp: Vec<String>,
    /// Receive syslog over TLS here (RFC 5425: rsyslog's gtls or ossl
    /// driver; octet-counted or LF framing), with --tls-cert and --tls-key
    /// (repeatable).
    #[arg(long, value_name = "IP:PORT")]
    pub tls: Vec<String>,
    /// The TLS listeners' certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate signed by this CA (PEM) on the TLS
    /// listeners: only senders holding one may send.
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Receive datagrams on a unix socket (HAProxy `log /path local0`).
    #[arg(long, value_name = "PATH")]
    pub unix: Vec<PathBuf>,
    /// File mode of the unix sockets, octal (default 0660: owner and
    /// group; whoever can write there can inject health events).
    #[arg(long, value_name = "MODE")]
    pub unix_mode: Option<String>,
    /// Group of the unix sockets, a name or a number (e.g. haproxy, so
    /// that HAProxy may write there).
    #[arg(long, value_name = "GROUP")]
    pub unix_group: Option<String>,
    /// Follow a log file across rotation (from its checkpoint, else its end);
    /// `-` is --stdin.
    #[arg(long, value_name = "FILE")]
    pub follow: Vec<PathBuf>,
    /// Follow this systemd unit's journal entries live (`journalctl -f -o
    /// json --unit UNIT`, resumed after the last entry read across restarts;
    /// the first run starts at the end). Repeatable.
    #[arg(long, value_name = "UNIT")]
    pub journal: Vec<String>,
    /// Follow the journal files of this directory (a copied journal,
    /// systemd-journal-remote's output). Repeatable.
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Vec<PathBuf>,
    /// Read standard input until its end, as a live source (`docker logs -f
    /// -t haproxy 2>&1 | hapwatch listen --stdin`); alone, its end stops
    /// listen.
    #[arg(long)]
    pub stdin: bool,
    /// Serve Prometheus metrics on http://IP:PORT/metrics.
    #[arg(long, value_name = "IP:PORT")]
    pub metrics: Option<String>,
    /// The SQLite database (created if missing).
    #[arg(long, value_name = "FILE", env = "HAPWATCH_DB")]
    pub db: Option<PathBuf>,
    /// Let this group read the database and --alerts-jsonl (mode 0640 and
    /// this group; default: owner only, 0600).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Frames longer than this are dropped and counted (default 64KiB).
    #[arg(long, value_name = "BYTES")]
    pub max_frame: Option<usize>,
    /// TCP connections at once; more are refused and counted (default 1024).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// TCP connections one source address may hold; more are refused and
    /// counted (default 64).
    #[arg(long, value_name = "N")]
    pub max_connections_per_source: Option<usize>,
    /// Close a TCP connection that has not sent a whole frame within this
    /// (default 10s; a sender sends at once, a dribbler holds a slot).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    #[serde(default, deserialize_with = "de_duration")]
    pub first_frame_timeout: Option<Millis>,
    /// Close a TCP connection silent for this long (default 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    #[serde(default, deserialize_with = "de_duration")]
    pub idle_timeout: Option<Millis>,
    /// Accept only from these networks (repeatable, e.g. 10.0.0.0/8); others
    /// are dropped and counted.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,
    /// UDP receive buffer to ask the kernel for (default 8MiB; capped by
    /// net.core.rmem_max).
    #[arg(long, value_name = "BYTES")]
    pub udp_recv_buffer: Option<usize>,
    /// Frames the engine's queue holds (default 262144).
    #[arg(long, value_name = "N")]
    pub queue: Option<usize>,
    /// Bytes the engine's queue holds (default 256MiB): past it TCP and
    /// files wait and datagrams are dropped and counted, so a database
    /// stall costs at most this much memory. Plain bytes or KiB/MiB/GiB.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    #[serde(default, deserialize_with = "de_bytes")]
    pub queue_bytes: Option<usize>,
    /// See `analyze --reorder-window` (default 2s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "de_duration")]
    pub reorder_window: Option<Millis>,
    /// When no message has arrived for this long, event time follows the
    /// wall clock, so that rule windows with no new events still close
    /// (default 60s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "de_duration")]
    pub idle_grace: Option<Millis>,
    /// Lines dated more than this after they were received are counted,
    /// quarantined (`status --skewed`) and not applied: a forged or broken
    /// clock cannot pin a state in the future (default 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "de_duration")]
    pub max_skew: Option<Millis>,
    /// Time zone of the HAProxy hosts, for dates they write without an
    /// offset (RFC 3164 headers, HAProxy's accept date): an IANA name
    /// (Europe/Paris), UTC or local (default UTC; a sender whose dates sit a
    /// whole number of hours from the receive time is warned about).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Distinct servers kept (default 100000); lines of more are counted
    /// (hapwatch_series_dropped_total) and not kept.
    #[arg(long, value_name = "N")]
    pub max_servers: Option<usize>,
    /// Distinct load balancers (syslog hosts) kept (default 10000).
    #[arg(long, value_name = "N")]
    pub max_hosts: Option<usize>,
    /// Extra or overriding message patterns: every *.toml in DIR.
    #[arg(long, value_name = "DIR", env = "HAPWATCH_PATTERNS")]
    pub patterns: Option<PathBuf>,
    /// A custom HAProxy `log-format` string the request lines are written
    /// in (as in haproxy.cfg, without the quotes); repeatable.
    #[arg(long = "log-format", value_name = "FORMAT")]
    pub log_format: Vec<String>,
    /// HAProxy's configuration: each frontend's lines are read with its own
    /// `log-format`; repeatable, like `haproxy -f`.
    #[arg(long = "haproxy-config", value_name = "FILE")]
    pub haproxy_config: Vec<PathBuf>,
    /// HAProxy's runtime API, `[HOST=]PATH` or `[HOST=]ipv4@ADDR:PORT`
    /// (HOST: the name its log lines carry; default this machine's): every
    /// server's state is read at start and every --reconcile; a state no
    /// line told is recorded as a transition. Repeatable.
    #[arg(long = "haproxy-socket", value_name = "[HOST=]SOCKET")]
    pub haproxy_socket: Vec<String>,
    /// How often --haproxy-socket is read again (default 60s; 0: at start
    /// only).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "de_duration")]
    pub reconcile: Option<Millis>,
    /// Config file only: `[[formats]]` with `name`, `format` and an
    /// optional `frontend` glob.
    #[arg(skip)]
    pub formats: Vec<crate::haproxy_cfg::FormatEntry>,
    /// Alert rules (TOML; default: the built-in rules).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Append every alert event to this file as a JSON line.
    #[arg(long, value_name = "FILE")]
    pub alerts_jsonl: Option<PathBuf>,
    /// Read options from this TOML file (flags override it).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// A size: a number of bytes, or with KiB, MiB or GiB.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = n
        .parse()
        .map_err(|_| format!("`{s}` is not a size: use bytes or KiB, MiB, GiB (256MiB)"))?;
    let scale = match unit {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("`{s}`: the unit is KiB, MiB or GiB (256MiB)")),
    };
    n.checked_mul(scale)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("`{s}` must be more than zero and fit in memory"))
}

fn de_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Size {
        N(usize),
        S(String),
    }
    match <Size as serde::Deserialize>::deserialize(d)? {
        Size::N(n) => Ok(Some(n)),
        Size::S(s) => parse_bytes(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
    let s: String = serde::Deserialize::deserialize(d)?;
    parse_duration(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl Settings {
    /// Flags over the config file.
    pub fn merge(self, file: Settings) -> Settings {
        fn or<T>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
            if a.is_empty() {
                b
            } else {
                a
            }
        }
        Settings {
            udp: or(self.udp, file.udp),
            tcp: or(self.tcp, file.tcp),
            tls: or(self.tls, file.tls),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            tls_client_ca: self.tls_client_ca.or(file.tls_client_ca),
            unix: or(self.unix, file.unix),
            unix_mode: self.unix_mode.or(file.unix_mode),
            unix_group: self.unix_group.or(file.unix_group),
            follow: or(self.follow, file.follow),
            metrics: self.metrics.or(file.metrics),
            db: self.db.or(file.db),
            group: self.group.or(file.group),
            max_frame: self.max_frame.or(file.max_frame),
            max_connections: self.max_connections.or(file.max_connections),
            max_connections_per_source: self
                .max_connections_per_source
                .or(file.max_connections_per_source),
            first_frame_timeout: self.first_frame_timeout.or(file.first_frame_timeout),
            idle_timeout: self.idle_timeout.or(file.idle_timeout),
            allow: or(self.allow, file.allow),
            udp_recv_buffer: self.udp_recv_buffer.or(file.udp_recv_buffer),
            queue: self.queue.or(file.queue),
            queue_bytes: self.queue_bytes.or(file.queue_bytes),
            reorder_window: self.reorder_window.or(file.reorder_window),
            idle_grace: self.idle_grace.or(file.idle_grace),
            max_skew: self.max_skew.or(file.max_skew),
            tz: self.tz.or(file.tz),
            stdin: self.stdin || file.stdin,
            journal: or(self.journal, file.journal),
            journal_dir: or(self.journal_dir, file.journal_dir),
            max_servers: self.max_servers.or(file.max_servers),
            max_hosts: self.max_hosts.or(file.max_hosts),
            patterns: self.patterns.or(file.patterns),
            log_format: or(self.log_format, file.log_format),
            haproxy_config: or(self.haproxy_config, file.haproxy_config),
            haproxy_socket: or(self.haproxy_socket, file.haproxy_socket),
            reconcile: self.reconcile.or(file.reconcile),
            formats: or(self.formats, file.formats),
            rules: self.rules.or(file.rules),
            alerts_jsonl: self.alerts_jsonl.or(file.alerts_jsonl),
            config: self.config,
        }
    }

    /// Reads `--config`, merges it under the flags, loads the patterns and
    /// the rules, and fills in the defaults. Every error names what to fix.
    pub fn resolve(self) -> Result<Options, StartError> {
        let args = match &self.config {
            Some(path) => {
                let bad = |e: &dyn std::fmt::Display| {
                    StartError(format!("--config {}: {e}", path.display()))
                };
                let text = std::fs::read_to_string(path).map_err(|e| bad(&e))?;
                let file = toml::from_str::<Settings>(&text).map_err(|e| bad(&e))?;
                self.merge(file)
            }
            None => self,
        };
        let recipe = Recipe {
            patterns: args.patterns.clone(),
            log_format: args.log_format.clone(),
            formats: args.formats.clone(),
            haproxy_config: args.haproxy_config.clone(),
        };
        let (patterns, inventory) = recipe.cook().map_err(StartError)?;
        let mut allow = Vec::new();
        for a in &args.allow {
            match a
                .parse::<ipnet::IpNet>()
                .or_else(|_| a.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            {
                Ok(n) => allow.push(n),
                Err(_) => {
                    return Err(StartError(format!(
                        "--allow {a}: not a network: give an address or CIDR, e.g. 10.0.0.0/8"
                    )))
                }
            }
        }
        let rules = match args.rules.as_deref() {
            None => RuleFile::default(),
            Some(path) => RuleFile::load(path).map_err(|e| StartError(e.to_string()))?,
        };
        let (mut udp, mut tcp) = (args.udp, args.tcp);
        // A file followed under two names (a link beside it) would be read
        // twice, its requests counted twice.
        let (mut follow, repeated) = crate::input::once_each(args.follow);
        for (name, first) in repeated {
            crate::say!(
                "hapwatch: warning: --follow {} is {} again (the same file): followed once",
                name.display(),
                first.display()
            );
        }
        let stdin = args.stdin || follow.iter().any(|p| p.as_os_str() == "-");
        follow.retain(|p| p.as_os_str() != "-");
        if udp.is_empty()
            && tcp.is_empty()
            && args.tls.is_empty()
            && args.unix.is_empty()
            && follow.is_empty()
            && !stdin
            && args.journal.is_empty()
            && args.journal_dir.is_empty()
        {
            udp.push("127.0.0.1:5514".into());
            tcp.push("127.0.0.1:5514".into());
        }
        let mode = match args.unix_mode.as_deref() {
            None => 0o660,
            Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .ok()
                .filter(|&v| v <= 0o777)
                .ok_or_else(|| {
                    StartError(format!(
                        "--unix-mode {m}: not a file mode: give octal permissions, e.g. 0660"
                    ))
                })?,
        };
        let group = match args.unix_group.as_deref() {
            None => None,
            Some(g) => Some(crate::store::group_id(g).ok_or_else(|| {
                StartError(format!(
                    "--unix-group {g}: no such group: give a group name or number (getent group)"
                ))
            })?),
        };
        let tls_files = TlsFiles {
            cert: args.tls_cert,
            key: args.tls_key,
            client_ca: args.tls_client_ca,
        };
        // Read now: a missing or wrong file is an error at start, and
        // certificate files without --tls are a mistake worth naming.
        let tls = if args.tls.is_empty() {
            if tls_files.cert.is_some() || tls_files.key.is_some() || tls_files.client_ca.is_some()
            {
                return Err(StartError(
                    "--tls-cert, --tls-key and --tls-client-ca are for --tls IP:PORT: give one"
                        .into(),
                ));
            }
            None
        } else {
            Some((args.tls, super::tls::acceptor(&tls_files)?))
        };
        let readers = match args.group.as_deref() {
            None => crate::store::Readers::default(),
            Some(g) => crate::store::Readers::group(g).map_err(StartError)?,
        };
        let runtime_api = args
            .haproxy_socket
            .iter()
            .map(|a| super::runtime_api::Socket::parse(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StartError)?;
        Ok(Options {
            runtime_api,
            reconcile: Duration::from_millis(args.reconcile.unwrap_or(60_000).max(0) as u64),
            recipe,
            inventory,
            readers,
            udp,
            tcp,
            tls,
            unix: args.unix,
            unix_access: UnixAccess { mode, group },
            follow,
            stdin,
            journals: args
                .journal
                .into_iter()
                .map(super::journal::Journal::Unit)
                .chain(
                    args.journal_dir
                        .into_iter()
                        .map(super::journal::Journal::Dir),
                )
                .collect(),
            metrics: args.metrics,
            db: args.db.unwrap_or_else(crate::store::default_path),
            patterns,
            limits: Limits {
                max_frame: args.max_frame.unwrap_or(64 * 1024).max(1),
                max_connections: args.max_connections.unwrap_or(1024).max(1),
                max_connections_per_source: args.max_connections_per_source.unwrap_or(64).max(1),
                first_frame_timeout: Duration::from_millis(
                    args.first_frame_timeout.unwrap_or(10_000) as u64,
                ),
                idle_timeout: Duration::from_millis(
                    args.idle_timeout.unwrap_or(600_000).max(1) as u64
                ),
                allow,
                udp_recv_buffer: args.udp_recv_buffer.unwrap_or(8 << 20),
            },
            reorder_window: args.reorder_window.unwrap_or(2_000),
            idle_grace: Duration::from_millis(args.idle_grace.unwrap_or(60_000).max(0) as u64),
            queue: args.queue.unwrap_or(1 << 18),
            queue_bytes: args.queue_bytes.unwrap_or(256 << 20),
            commit_every: Duration::from_millis(100),
            rules,
            rules_path: args.rules,
            alerts_jsonl: args.alerts_jsonl,
            max_skew: args.max_skew.unwrap_or(600_000),
            zone: match args.tz.as_deref() {
                Some(z) => {
                    crate::time::Zone::parse(z).map_err(|e| StartError(format!("--tz: {e}")))?
                }
                None => crate::time::Zone::utc(),
            },
            cap: crate::engine::Cap::new(
                args.max_servers.unwrap_or(100_000).max(1),
                args.max_hosts.unwrap_or(10_000).max(1),
            ),
        })
    }
}

/// How the patterns and the inventory are made: at start, and again at
/// SIGHUP (haproxy.cfg may have changed with HAProxy's reload).
#[derive(Clone, Debug, Default)]
pub struct Recipe {
    pub patterns: Option<PathBuf>,
    pub log_format: Vec<String>,
    pub formats: Vec<crate::haproxy_cfg::FormatEntry>,
    pub haproxy_config: Vec<PathBuf>,
}

impl Recipe {
    /// The patterns with every format named, and the servers haproxy.cfg
    /// declares (if one is given); what a format lacks is said.
    pub fn cook(
        &self,
    ) -> Result<(Arc<PatternSet>, Option<Arc<crate::inventory::Inventory>>), String> {
        let mut patterns = PatternSet::load(self.patterns.as_deref())
            .map_err(|e| format!("invalid patterns: {e}"))?;
        let (formats, lacks) = crate::haproxy_cfg::user_formats(
            &self.log_format,
            &self.formats,
            &self.haproxy_config,
        )?;
        for l in &lacks {
            crate::say!("hapwatch: {l}");
        }
        patterns.add_formats(formats);
        let inventory = if self.haproxy_config.is_empty() {
            None
        } else {
            let cfg = crate::haproxy_cfg::HaproxyConfig::load(&self.haproxy_config)
                .map_err(|e| e.to_string())?;
            Some(Arc::new(crate::inventory::Inventory::of(&cfg)))
        };
        Ok((Arc::new(patterns), inventory))
    }
}
