//! The `hapwatch` binary: argument parsing and exit codes only; the library
//! does the work.
//!
//! Exit codes: 0 success; 1 some input could not be read (the rest was
//! analysed); 2 bad arguments, configuration or patterns.

use std::{io::IsTerminal, path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand, ValueEnum};

use hapwatch::{
    analyze,
    engine::{Filter, Glob},
    input::Source,
    patterns::PatternSet,
    report::{self, Report},
    store::Store,
    time::{parse_user_time, Millis},
};

#[derive(Parser)]
#[command(
    name = "hapwatch",
    version,
    about = "HAProxy backend health from HAProxy's own logs",
    after_help = "Exit status: 0 success; 1 an input or the database could not be read or \
                  written (the rest was still done); 2 bad arguments, patterns or database."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour in tables: auto (on a terminal, unless NO_COLOR is set),
    /// always, never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether tables on stdout get colour: `--color` first, then the
    /// NO_COLOR convention (no-color.org: set and not empty), then whether
    /// stdout is a terminal.
    fn on(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

fn duration(s: &str) -> Result<Millis, String> {
    duration_or_zero(s).and_then(|ms| {
        if ms > 0 {
            Ok(ms)
        } else {
            Err(format!("`{s}` must be more than zero"))
        }
    })
}

fn duration_or_zero(s: &str) -> Result<Millis, String> {
    hapwatch::time::parse_duration(s)
}

fn user_time(s: &str) -> Result<Millis, String> {
    parse_user_time(s).ok_or_else(|| {
        format!(
            "`{s}` is not a time: use RFC 3339 (2026-11-24T16:21:00Z), a date (2026-11-24) \
             or HAProxy's form (24/Nov/2026:16:21:00)"
        )
    })
}

#[derive(Clone, Copy, ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

/// What `status` and `history` take.
#[derive(clap::Args)]
struct StoreQuery {
    /// The database written by `analyze --db`.
    #[arg(
        long,
        value_name = "FILE",
        env = "HAPWATCH_DB",
        default_value = "hapwatch.db"
    )]
    db: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    format: ListFormat,
    #[command(flatten)]
    filter: FilterArgs,
}

/// `hapwatch listen`. Every option can also come from `--config FILE`
/// (TOML, the same names with `_` for `-`); flags win.
#[derive(clap::Args, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ListenArgs {
    /// Receive syslog over UDP here (repeatable; default 127.0.0.1:5514
    /// when no listener is given).
    #[arg(long, value_name = "IP:PORT")]
    udp: Vec<String>,
    /// Receive syslog over TCP here, LF or octet-counted framing
    /// (repeatable; default 127.0.0.1:5514 when no listener is given).
    #[arg(long, value_name = "IP:PORT")]
    tcp: Vec<String>,
    /// Receive datagrams on a unix socket (HAProxy `log /path local0`).
    #[arg(long, value_name = "PATH")]
    unix: Vec<PathBuf>,
    /// Follow a log file across rotation (from its checkpoint, else its end).
    #[arg(long, value_name = "FILE")]
    follow: Vec<PathBuf>,
    /// Serve Prometheus metrics on http://IP:PORT/metrics.
    #[arg(long, value_name = "IP:PORT")]
    metrics: Option<String>,
    /// The SQLite database (created if missing).
    #[arg(long, value_name = "FILE", env = "HAPWATCH_DB")]
    db: Option<PathBuf>,
    /// Frames longer than this are dropped and counted (default 64KiB).
    #[arg(long, value_name = "BYTES")]
    max_frame: Option<usize>,
    /// TCP connections at once; more are refused and counted (default 1024).
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Close a TCP connection silent for this long (default 10m).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    #[serde(default, deserialize_with = "de_duration")]
    idle_timeout: Option<Millis>,
    /// Accept only from these networks (repeatable, e.g. 10.0.0.0/8); others
    /// are dropped and counted.
    #[arg(long, value_name = "CIDR")]
    allow: Vec<String>,
    /// UDP receive buffer to ask the kernel for (default 8MiB; capped by
    /// net.core.rmem_max).
    #[arg(long, value_name = "BYTES")]
    udp_recv_buffer: Option<usize>,
    /// Frames the engine's queue holds (default 262144).
    #[arg(long, value_name = "N")]
    queue: Option<usize>,
    /// See `analyze --reorder-window` (default 2s).
    #[arg(long, value_name = "DURATION", value_parser = duration_or_zero)]
    #[serde(default, deserialize_with = "de_duration")]
    reorder_window: Option<Millis>,
    /// When no message has arrived for this long, event time follows the
    /// wall clock, so that rule windows with no new events still close
    /// (default 60s).
    #[arg(long, value_name = "DURATION", value_parser = duration_or_zero)]
    #[serde(default, deserialize_with = "de_duration")]
    idle_grace: Option<Millis>,
    /// Extra or overriding message patterns: every *.toml in DIR.
    #[arg(long, value_name = "DIR", env = "HAPWATCH_PATTERNS")]
    patterns: Option<PathBuf>,
    /// Alert rules (TOML; default: the built-in rules).
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Append every alert event to this file as a JSON line.
    #[arg(long, value_name = "FILE")]
    alerts_jsonl: Option<PathBuf>,
    /// Read options from this TOML file (flags override it).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
    let s: String = serde::Deserialize::deserialize(d)?;
    duration_or_zero(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl ListenArgs {
    /// Flags over the config file.
    fn merge(self, file: ListenArgs) -> ListenArgs {
        fn or<T>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
            if a.is_empty() {
                b
            } else {
                a
            }
        }
        ListenArgs {
            udp: or(self.udp, file.udp),
            tcp: or(self.tcp, file.tcp),
            unix: or(self.unix, file.unix),
            follow: or(self.follow, file.follow),
            metrics: self.metrics.or(file.metrics),
            db: self.db.or(file.db),
            max_frame: self.max_frame.or(file.max_frame),
            max_connections: self.max_connections.or(file.max_connections),
            idle_timeout: self.idle_timeout.or(file.idle_timeout),
            allow: or(self.allow, file.allow),
            udp_recv_buffer: self.udp_recv_buffer.or(file.udp_recv_buffer),
            queue: self.queue.or(file.queue),
            reorder_window: self.reorder_window.or(file.reorder_window),
            idle_grace: self.idle_grace.or(file.idle_grace),
            patterns: self.patterns.or(file.patterns),
            rules: self.rules.or(file.rules),
            alerts_jsonl: self.alerts_jsonl.or(file.alerts_jsonl),
            config: self.config,
        }
    }
}

fn listen(args: ListenArgs) -> ExitCode {
    let args = match &args.config {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("hapwatch: --config {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            match toml::from_str::<ListenArgs>(&text) {
                Ok(file) => args.merge(file),
                Err(e) => {
                    eprintln!("hapwatch: --config {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
        }
        None => args,
    };
    let patterns = match load_patterns(args.patterns.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut allow = Vec::new();
    for a in &args.allow {
        match a
            .parse::<ipnet::IpNet>()
            .or_else(|_| a.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Ok(n) => allow.push(n),
            Err(_) => {
                eprintln!("hapwatch: --allow {a}: not a network: give an address or CIDR, e.g. 10.0.0.0/8");
                return ExitCode::from(2);
            }
        }
    }
    let rules = match args.rules.as_deref().map(load_rules) {
        None => hapwatch::alerts::RuleFile::default(),
        Some(Ok(r)) => r,
        Some(Err(code)) => return code,
    };
    let (mut udp, mut tcp) = (args.udp, args.tcp);
    if udp.is_empty() && tcp.is_empty() && args.unix.is_empty() && args.follow.is_empty() {
        udp.push("127.0.0.1:5514".into());
        tcp.push("127.0.0.1:5514".into());
    }
    let opts = hapwatch::listen::Options {
        udp,
        tcp,
        unix: args.unix,
        follow: args.follow,
        metrics: args.metrics,
        db: args.db.unwrap_or_else(hapwatch::store::default_path),
        patterns,
        limits: hapwatch::listen::Limits {
            max_frame: args.max_frame.unwrap_or(64 * 1024).max(1),
            max_connections: args.max_connections.unwrap_or(1024).max(1),
            idle_timeout: std::time::Duration::from_millis(
                args.idle_timeout.unwrap_or(600_000).max(1) as u64,
            ),
            allow,
            udp_recv_buffer: args.udp_recv_buffer.unwrap_or(8 << 20),
        },
        reorder_window: args.reorder_window.unwrap_or(2_000),
        idle_grace: std::time::Duration::from_millis(
            args.idle_grace.unwrap_or(60_000).max(0) as u64
        ),
        queue: args.queue.unwrap_or(1 << 18),
        commit_every: std::time::Duration::from_millis(100),
        rules,
        rules_path: args.rules.clone(),
        alerts_jsonl: args.alerts_jsonl,
    };
    match hapwatch::listen::run(opts) {
        Ok(hapwatch::listen::Stopped::Clean) => ExitCode::SUCCESS,
        // It said what was not stored.
        Ok(hapwatch::listen::Stopped::Unstored) => ExitCode::from(1),
        Err(e) => {
            eprintln!("hapwatch: {e}");
            ExitCode::from(2)
        }
    }
}

fn load_rules(path: &std::path::Path) -> Result<hapwatch::alerts::RuleFile, ExitCode> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("hapwatch: {}: {e}", path.display());
        ExitCode::from(2)
    })?;
    hapwatch::alerts::RuleFile::parse(&text).map_err(|e| {
        eprintln!("hapwatch: {}: {e}", path.display());
        ExitCode::from(2)
    })
}

fn open_db(path: &std::path::Path) -> Result<Store, ExitCode> {
    Store::open_read_only(path).map_err(|e| {
        eprintln!("hapwatch: {e}");
        ExitCode::from(2)
    })
}

fn print(text: &str) -> ExitCode {
    use std::io::Write;
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
struct FilterArgs {
    /// Only events at or after this time (RFC 3339 or HAProxy's date form).
    #[arg(long, value_parser = user_time)]
    since: Option<Millis>,
    /// Only events before this time.
    #[arg(long, value_parser = user_time)]
    until: Option<Millis>,
    /// Only this backend (`*` globs allowed).
    #[arg(long)]
    backend: Option<String>,
    /// Only this server (`*` globs allowed).
    #[arg(long)]
    server: Option<String>,
    /// Only this HAProxy host (`-` for lines without a hostname).
    #[arg(long)]
    host: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        Filter {
            since: self.since,
            until: self.until,
            backend: self.backend.as_deref().map(Glob::new),
            server: self.server.as_deref().map(Glob::new),
            host: self.host.as_deref().map(Glob::new),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Analyse HAProxy log files: per-server traffic, timers, errors and health.
    Analyze {
        /// Log files (plain or gzip), `-` for stdin; read in the order given.
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        filter: FilterArgs,
        /// Year of RFC 3164 dates when no request line gives it
        /// (default: the file's modification time).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1970..=9999))]
        year: Option<i64>,
        /// Print up to N lines that were not understood.
        #[arg(long, default_value_t = 0, value_name = "N")]
        show_unparsed: usize,
        /// Extra or overriding message patterns: every *.toml in DIR.
        #[arg(long, value_name = "DIR", env = "HAPWATCH_PATTERNS")]
        patterns: Option<PathBuf>,
        /// Worker threads (default: one per core).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// Read files instead of mapping them: safe for a file that another
        /// process may truncate meanwhile (logrotate copytruncate).
        #[arg(long)]
        no_mmap: bool,
        /// Also store server states and transitions in this SQLite file
        /// (created if missing; reading the same log again adds nothing).
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// With --db: forget transitions older than this before the newest
        /// event stored (e.g. 30d, 12h, 90m).
        #[arg(long, value_name = "AGE", value_parser = duration, requires = "db")]
        retain: Option<Millis>,
        /// With --db: commit what was read this often (a killed run keeps
        /// what it committed; memory holds only what is not committed yet).
        #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "1s", requires = "db")]
        commit_every: Millis,
        /// Health events are applied in event-time order within this window
        /// (lines from several senders or over UDP can overtake each other).
        #[arg(long, value_name = "DURATION", value_parser = duration_or_zero, default_value = "2s")]
        reorder_window: Millis,
        /// Evaluate the alert rules on the log's own times and list the
        /// alerts (firing and resolved) in the report.
        #[arg(long)]
        alerts: bool,
        /// Alert rules to use instead of the defaults (TOML; see
        /// `hapwatch check-config`).
        #[arg(long, value_name = "FILE", requires = "alerts")]
        rules: Option<PathBuf>,
    },
    /// Alerts stored in the database (by `listen`, or `analyze --db --alerts`), newest first.
    Alerts {
        #[arg(
            long,
            value_name = "FILE",
            env = "HAPWATCH_DB",
            default_value = "hapwatch.db"
        )]
        db: PathBuf,
        /// Only alerts firing now.
        #[arg(long)]
        active: bool,
        /// Only alerts active at or after this time.
        #[arg(long, value_parser = user_time)]
        since: Option<Millis>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Check an alert rule file: exit 0 if valid, 2 with the line and the
    /// problem if not.
    CheckConfig { file: PathBuf },
    /// The current state of every server, from the database (like the stats page).
    Status(StoreQuery),
    /// Every state transition stored in the database, in event-time order.
    History(StoreQuery),
    /// Receive HAProxy logs live (UDP, TCP, unix socket, followed files) and
    /// keep every server's state in the database.
    Listen(ListenArgs),
    /// List the message patterns in use (built-in and --patterns DIR) and check them.
    Patterns {
        #[arg(long, value_name = "DIR", env = "HAPWATCH_PATTERNS")]
        patterns: Option<PathBuf>,
    },
}

fn load_patterns(dir: Option<&std::path::Path>) -> Result<Arc<PatternSet>, ExitCode> {
    PatternSet::load(dir).map(Arc::new).map_err(|e| {
        eprintln!("hapwatch: invalid patterns: {e:#}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let colour = cli.color.on();
    match cli.command {
        Command::Analyze {
            files,
            format,
            filter,
            year,
            show_unparsed,
            patterns,
            threads,
            no_mmap,
            db,
            retain,
            commit_every,
            reorder_window,
            alerts,
            rules,
        } => {
            let alerts = match (alerts, rules.as_deref().map(load_rules)) {
                (false, _) => None,
                (true, None) => Some(hapwatch::alerts::RuleFile::default()),
                (true, Some(Ok(r))) => Some(r),
                (true, Some(Err(code))) => return code,
            };
            let patterns = match load_patterns(patterns.as_deref()) {
                Ok(p) => p,
                Err(code) => return code,
            };
            // Open the database first: a bad --db is reported before the work.
            // A new one is created (the file, so that a bad path still exits
            // 2 here) and its schema written on a thread while reading
            // starts: it has no checkpoints to read first.
            let mut opening = None;
            let store = match db.as_deref() {
                Some(p) if !p.exists() => {
                    if let Err(e) = Store::create_file(p) {
                        eprintln!("hapwatch: {e}");
                        return ExitCode::from(2);
                    }
                    let path = p.to_path_buf();
                    opening = Some((path.clone(), std::thread::spawn(move || Store::open(&path))));
                    None
                }
                Some(p) => match Store::open(p) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        eprintln!("hapwatch: {e}");
                        return ExitCode::from(2);
                    }
                },
                None => None,
            };
            if let (Some(s), Some(u)) = (filter.since, filter.until) {
                if s >= u {
                    eprintln!("hapwatch: --since must be before --until");
                    return ExitCode::from(2);
                }
            }
            let threads = threads
                .map(usize::from)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            let sources: Vec<Source> = files.iter().map(|f| Source::parse(f)).collect();
            // With --db, each file resumes where the last run stopped.
            let keys: Vec<Option<String>> = sources
                .iter()
                .map(|s| match s {
                    Source::File(p) => Some(
                        std::fs::canonicalize(p)
                            .unwrap_or_else(|_| p.clone())
                            .display()
                            .to_string(),
                    ),
                    Source::Stdin => None,
                })
                .collect();
            let mut starts = vec![0u64; sources.len()];
            let mut seed = Vec::new();
            if let Some(store) = store.as_ref() {
                use std::os::unix::fs::MetadataExt;
                for (i, (src, key)) in sources.iter().zip(&keys).enumerate() {
                    if let (Source::File(p), Some(key)) = (src, key) {
                        if let Ok(meta) = std::fs::metadata(p) {
                            match store.resume_offset(key, meta.dev(), meta.ino()) {
                                Ok(off) => starts[i] = off.unwrap_or(0),
                                Err(e) => {
                                    eprintln!("hapwatch: {e}");
                                    return ExitCode::from(2);
                                }
                            }
                        }
                    }
                }
                // A file read on from where it stopped continues its story:
                // the state machine starts from the states stored.
                if starts.iter().any(|&s| s > 0) {
                    match store.load_states() {
                        Ok(s) => seed = s,
                        Err(e) => {
                            eprintln!("hapwatch: {e}");
                            return ExitCode::from(2);
                        }
                    }
                }
            }
            let every = std::time::Duration::from_millis(commit_every as u64);
            let writer = match (store, opening) {
                (Some(s), _) => Some(hapwatch::store::Writer::new(s, every)),
                (None, Some((path, open))) => {
                    Some(hapwatch::store::Writer::opening(path, open, every))
                }
                (None, None) => None,
            };
            let outcome = analyze::run(
                analyze::Options {
                    starts: starts.clone(),
                    hold_tail: writer.is_some(),
                    sources,
                    patterns,
                    filter: filter.filter(),
                    year,
                    threads,
                    show_unparsed,
                    progress: std::io::stderr().is_terminal(),
                    mmap: !no_mmap,
                    checkpoint_paths: keys,
                    seed,
                    reorder_window,
                    alerts: alerts.clone(),
                },
                writer,
            );
            let mut writer = outcome.writer;
            for e in &outcome.errors {
                eprintln!("hapwatch: {e}");
            }
            // A store that fails does not cost the report: it still prints,
            // and stderr says what was not stored (exit status 1).
            let mut store_failed = false;
            if let Some(w) = writer.as_mut() {
                match &outcome.store_error {
                    None => {
                        if let Some(Err(e)) =
                            retain.map(|keep| w.store().and_then(|s| s.prune(keep)))
                        {
                            eprintln!("hapwatch: --retain: {e}");
                            store_failed = true;
                        }
                    }
                    Some(e) => {
                        let (rollups, transitions, alerts) = w.unwritten(&outcome.engine);
                        eprintln!(
                            "hapwatch: {e}; not stored: {transitions} transitions, {rollups} \
                             server-minutes of rollups, {alerts} alert events, the state of {} servers{}",
                            outcome
                                .engine
                                .health
                                .servers
                                .len()
                                .max(outcome.engine.aggregates.servers.len()),
                            if w.commits > 0 {
                                format!(
                                    " (the {} commits before the failure are stored)",
                                    w.commits
                                )
                            } else {
                                String::new()
                            }
                        );
                        store_failed = true;
                    }
                }
            }
            let mut report = Report::build(&outcome.engine, &outcome.errors);
            // In event-time order (degradation alerts are judged when their
            // minutes close, after the transitions of the same time).
            report.alerts = outcome.alerts.map(|mut v| {
                v.sort_by_key(|a| a.ends_at.unwrap_or(a.starts_at));
                v
            });
            report.input.resumed = outcome
                .marks
                .iter()
                .filter(|m| m.started_at > 0)
                .map(|m| report::Resumed {
                    file: files[m.source].clone(),
                    offset: m.started_at,
                })
                .collect();
            let text = match format {
                Format::Table => report::table::render(&report, colour),
                Format::Json => report.to_json() + "\n",
                Format::Csv => match report::csv::render(&report) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("hapwatch: {e}");
                        return ExitCode::from(1);
                    }
                },
            };
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            if out.write_all(text.as_bytes()).is_err() {
                return ExitCode::SUCCESS; // closed pipe (e.g. `| head`)
            }
            if outcome.errors.is_empty() && !store_failed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Status(StoreQuery { db, format, filter }) => {
            let store = match open_db(&db) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let f = filter.filter();
            let (servers, backends) = match (store.servers(&f), store.backends(&f)) {
                (Ok(s), Ok(b)) => (s, b),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("hapwatch: {e}");
                    return ExitCode::from(1);
                }
            };
            match format {
                ListFormat::Table => {
                    print(&report::store::status_table(&servers, &backends, colour))
                }
                ListFormat::Json => print(
                    &(serde_json::to_string_pretty(
                        &serde_json::json!({ "servers": servers, "backends": backends }),
                    )
                    .expect("serializes")
                        + "\n"),
                ),
            }
        }
        Command::History(StoreQuery { db, format, filter }) => {
            let store = match open_db(&db) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let rows = match store.history(&filter.filter()) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("hapwatch: {e}");
                    return ExitCode::from(1);
                }
            };
            match format {
                ListFormat::Table => print(&report::store::history_table(&rows, colour)),
                ListFormat::Json => print(
                    &(serde_json::to_string_pretty(&serde_json::json!({ "transitions": rows }))
                        .expect("serializes")
                        + "\n"),
                ),
            }
        }
        Command::Listen(args) => listen(args),
        Command::Alerts {
            db,
            active,
            since,
            format,
        } => {
            let store = match open_db(&db) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let listed = store
                .alerts(active, since)
                .and_then(|a| Ok((a, store.failed_deliveries()?)));
            let (alerts, failed) = match listed {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("hapwatch: {e}");
                    return ExitCode::from(1);
                }
            };
            match format {
                ListFormat::Json => print(
                    &(serde_json::json!({ "alerts": alerts, "failed_deliveries": failed })
                        .to_string()
                        + "\n"),
                ),
                ListFormat::Table => {
                    let mut out = String::from("STATUS    SEVERITY  STARTS                    ENDS                      ALERT\n");
                    for a in &alerts {
                        out.push_str(&format!(
                            "{:<9} {:<9} {:<25} {:<25} {}: {}\n",
                            a["status"].as_str().unwrap_or(""),
                            a["severity"].as_str().unwrap_or(""),
                            a["starts_at"].as_str().unwrap_or(""),
                            a["ends_at"].as_str().unwrap_or("-"),
                            a["rule"].as_str().unwrap_or(""),
                            a["summary"].as_str().unwrap_or(""),
                        ));
                    }
                    if !failed.is_empty() {
                        out.push_str("\nFAILED DELIVERIES\nSTATE     TRIES  SINK                            ALERT  (LAST ERROR)\n");
                        for d in &failed {
                            out.push_str(&format!(
                                "{:<9} {:<6} {:<31} {} {}: {} ({})\n",
                                d["state"].as_str().unwrap_or(""),
                                d["attempts"],
                                d["sink"].as_str().unwrap_or(""),
                                d["status"].as_str().unwrap_or(""),
                                d["rule"].as_str().unwrap_or(""),
                                d["summary"].as_str().unwrap_or(""),
                                d["last_error"].as_str().unwrap_or(""),
                            ));
                        }
                    }
                    print(&out)
                }
            }
        }
        Command::CheckConfig { file } => match load_rules(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Patterns { patterns } => {
            let set = match load_patterns(patterns.as_deref()) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let mut bad = 0;
            let mut text = String::new();
            for p in &set.patterns {
                let hits = set.all_matches(p.sample.as_bytes());
                let ok = hits == [p.name.as_str()];
                bad += !ok as usize;
                text.push_str(&format!(
                    "{:<24} {:<8} {:<36} {}\n",
                    p.name,
                    format!("{:?}", p.class).to_lowercase(),
                    p.source,
                    if ok {
                        "sample ok".to_string()
                    } else {
                        format!("SAMPLE MATCHES {hits:?}")
                    }
                ));
            }
            // A closed pipe (`| head -1`) ends quietly (println! panicked).
            print(&text);
            if bad > 0 {
                eprintln!(
                    "hapwatch: {bad} pattern sample(s) do not match exactly their own pattern"
                );
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
    }
}
