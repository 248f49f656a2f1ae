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
    patterns::PatternSet,
    report,
    store::Store,
    time::{parse_duration, parse_positive_duration, parse_user_time, Millis, Zone},
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

/// `analyze --by`.
#[derive(Clone, Copy, ValueEnum)]
enum By {
    Status,
    Termination,
    Cookie,
    Url,
    Client,
    Frontend,
}

impl By {
    fn key(self) -> hapwatch::engine::breakdown::By {
        use hapwatch::engine::breakdown::By as K;
        match self {
            By::Status => K::Status,
            By::Termination => K::Termination,
            By::Cookie => K::Cookie,
            By::Url => K::Url,
            By::Client => K::Client,
            By::Frontend => K::Frontend,
        }
    }
}

/// `analyze --by url|client --sort`: halog's `-u`, `-uc`, `-ue`, `-ua`,
/// `-ut`, `-uao`, `-uto`, `-uba`, `-ubt`.
#[derive(Clone, Copy, ValueEnum)]
enum SortBy {
    Key,
    Count,
    Errors,
    AvgTime,
    TotalTime,
    AvgOkTime,
    TotalOkTime,
    AvgBytes,
    TotalBytes,
}

impl SortBy {
    fn sort(self) -> hapwatch::engine::breakdown::Sort {
        use hapwatch::engine::breakdown::Sort as S;
        match self {
            SortBy::Key => S::Key,
            SortBy::Count => S::Count,
            SortBy::Errors => S::Errors,
            SortBy::AvgTime => S::AvgTime,
            SortBy::TotalTime => S::TotalTime,
            SortBy::AvgOkTime => S::AvgOkTime,
            SortBy::TotalOkTime => S::TotalOkTime,
            SortBy::AvgBytes => S::AvgBytes,
            SortBy::TotalBytes => S::TotalBytes,
        }
    }
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

/// `--bucket`: `None` for auto.
#[derive(Clone, Copy, Debug)]
struct Bucket(Option<Millis>);

fn parse_bucket(s: &str) -> Result<Bucket, String> {
    if s == "auto" {
        return Ok(Bucket(None));
    }
    let w = parse_positive_duration(s).map_err(|e| format!("{e}, or auto"))?;
    if w % 1000 != 0 {
        return Err(format!(
            "`{s}`: a bucket is whole seconds (1s, 10s, 1m, 5m) or auto"
        ));
    }
    // Wider buckets gather the stored minutes: a 90 s bucket would split
    // a minute between two of them.
    if w > 60_000 && w % 60_000 != 0 {
        return Err(format!(
            "`{s}`: a bucket of a minute or more is whole minutes (1m, 5m, 1h)"
        ));
    }
    Ok(Bucket(Some(w)))
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TimelineFormat {
    Text,
    Markdown,
    Json,
    /// One self-contained page with a chart (nothing fetched).
    Html,
}

/// What `status` and `history` take.
#[derive(clap::Args)]
struct StoreQuery {
    /// The database (default: ./hapwatch.db, else the service's
    /// /var/lib/hapwatch/hapwatch.db).
    #[arg(long, value_name = "FILE", env = "HAPWATCH_DB")]
    db: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    format: ListFormat,
    #[command(flatten)]
    filter: FilterArgs,
}

fn listen(settings: Box<hapwatch::listen::config::Settings>) -> ExitCode {
    match settings.resolve().and_then(hapwatch::listen::run) {
        Ok(hapwatch::listen::Stopped::Clean) => ExitCode::SUCCESS,
        // It said what was not stored.
        Ok(hapwatch::listen::Stopped::Unstored) => ExitCode::from(1),
        Err(e) => {
            hapwatch::say!("hapwatch: {e}");
            ExitCode::from(2)
        }
    }
}

fn load_rules(path: &std::path::Path) -> Result<hapwatch::alerts::RuleFile, ExitCode> {
    hapwatch::alerts::RuleFile::load(path).map_err(|e| {
        hapwatch::say!("hapwatch: {e}");
        ExitCode::from(2)
    })
}

/// `--alerts` with or without `--rules` (analyze, timeline): the rules to
/// judge, the defaults unless a file is given.
fn alert_rules(
    alerts: bool,
    rules: Option<&std::path::Path>,
) -> Result<Option<hapwatch::alerts::RuleFile>, ExitCode> {
    match (alerts, rules.map(load_rules)) {
        (false, _) => Ok(None),
        (true, None) => Ok(Some(hapwatch::alerts::RuleFile::default())),
        (true, Some(r)) => r.map(Some),
    }
}

fn open_db(path: Option<&std::path::Path>) -> Result<Store, ExitCode> {
    let path = path.map_or_else(hapwatch::store::default_query_path, |p| p.to_path_buf());
    Store::open_read_only(&path).map_err(|e| {
        hapwatch::say!("hapwatch: {e}");
        ExitCode::from(2)
    })
}

fn print(text: &str) -> ExitCode {
    use std::io::Write;
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

/// How request lines are written, beyond HAProxy's built-in formats.
#[derive(clap::Args, Default)]
struct FormatArgs {
    /// A custom HAProxy `log-format` string the request lines are written
    /// in (as in haproxy.cfg, without the quotes); repeatable.
    #[arg(long = "log-format", value_name = "FORMAT")]
    log_format: Vec<String>,
    /// HAProxy's configuration: each frontend's lines are read with its
    /// own `log-format`; repeatable, like `haproxy -f`.
    #[arg(long = "haproxy-config", value_name = "FILE")]
    haproxy_config: Vec<PathBuf>,
}

/// halog's input filters, for `analyze` (see `engine::select`).
#[derive(clap::Args)]
struct SelectArgs {
    /// Only HTTP request lines (halog -H).
    #[arg(long, help_heading = "Request filters (halog's)")]
    http_only: bool,
    /// Only requests with status -1 or 5xx (halog -e).
    #[arg(
        long,
        conflicts_with = "no_errors",
        help_heading = "Request filters (halog's)"
    )]
    errors: bool,
    /// Only requests without (halog -E).
    #[arg(long, help_heading = "Request filters (halog's)")]
    no_errors: bool,
    /// Only requests whose Tr is at least this (halog -rt), e.g. 500ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_timer, help_heading = "Request filters (halog's)")]
    tr_at_least: Option<i64>,
    /// Only requests whose Tr is below this, or -1 (halog -RT).
    #[arg(long, value_name = "DURATION", value_parser = parse_timer, conflicts_with = "tr_at_least", help_heading = "Request filters (halog's)")]
    tr_below: Option<i64>,
    /// Only requests that waited in a server's or backend's queue (halog -Q).
    #[arg(
        long,
        conflicts_with = "server_queued",
        help_heading = "Request filters (halog's)"
    )]
    queued: bool,
    /// Only requests that waited in the server's queue (halog -QS).
    #[arg(long, help_heading = "Request filters (halog's)")]
    server_queued: bool,
    /// Only requests whose termination state begins with these two
    /// letters, e.g. SH (halog -tcn).
    #[arg(long, value_name = "XY", value_parser = parse_term_code, allow_hyphen_values = true, help_heading = "Request filters (halog's)")]
    termination: Option<[u8; 2]>,
    /// Only requests whose termination state does not (halog -TCN).
    #[arg(long, value_name = "XY", value_parser = parse_term_code, allow_hyphen_values = true, conflicts_with = "termination", help_heading = "Request filters (halog's)")]
    not_termination: Option<[u8; 2]>,
    /// Only requests with a status in MIN:MAX, or this status (halog -hs);
    /// either end may be left out (500:).
    #[arg(long, value_name = "RANGE", value_parser = hapwatch::engine::select::StatusRange::parse, help_heading = "Request filters (halog's)")]
    status: Option<hapwatch::engine::select::StatusRange>,
    /// Only requests with a status outside it (halog -HS).
    #[arg(long, value_name = "RANGE", value_parser = hapwatch::engine::select::StatusRange::parse, conflicts_with = "status", help_heading = "Request filters (halog's)")]
    not_status: Option<hapwatch::engine::select::StatusRange>,
    /// Only requests whose captured header FIELD (from 1) of capture
    /// block BLOCK (1: the first {...}) equals VALUE (halog -hdr-match).
    #[arg(long, value_name = "BLOCK:FIELD=VALUE", value_parser = hapwatch::engine::select::HeaderMatch::parse, help_heading = "Request filters (halog's)")]
    header_match: Option<hapwatch::engine::select::HeaderMatch>,
    /// Select the requests the filters above do not (halog -v).
    #[arg(long, help_heading = "Request filters (halog's)")]
    invert: bool,
}

impl SelectArgs {
    fn select(&self) -> Option<hapwatch::engine::select::Select> {
        use hapwatch::engine::select::{Queued, Select};
        let s = Select {
            http_only: self.http_only,
            errors: (self.errors || self.no_errors).then_some(self.errors),
            tr: (self.tr_at_least.map(|t| (t, true))).or(self.tr_below.map(|t| (t, false))),
            queued: match (self.queued, self.server_queued) {
                (true, _) => Some(Queued::Any),
                (_, true) => Some(Queued::Server),
                _ => None,
            },
            termination: (self.termination.map(|t| (t, true)))
                .or(self.not_termination.map(|t| (t, false))),
            status: (self.status.map(|r| (r, true))).or(self.not_status.map(|r| (r, false))),
            header: self.header_match.clone(),
            invert: self.invert,
            ..Default::default()
        };
        (!s.is_empty()).then_some(s)
    }
}

/// A timer threshold: a duration, in whole milliseconds as HAProxy logs.
fn parse_timer(s: &str) -> Result<i64, String> {
    hapwatch::time::parse_duration(s)
}

/// Two letters of a termination state, as HAProxy writes them (`SH`, `--`).
fn parse_term_code(s: &str) -> Result<[u8; 2], String> {
    match s.as_bytes() {
        &[a, b] if a.is_ascii_graphic() && b.is_ascii_graphic() => Ok([a, b]),
        _ => Err(format!(
            "`{s}`: two letters of a termination state, e.g. SH, CD or -- (halog -tcn)"
        )),
    }
}

/// `--percentiles`' rows (one value to clap, not a list of values).
#[derive(Clone)]
struct PctList(Vec<f64>);

/// `--percentiles` alone: halog's rows; else a list.
fn parse_percentiles(s: &str) -> Result<PctList, String> {
    if s == "halog" {
        return Ok(PctList(hapwatch::engine::percentiles::halog_steps()));
    }
    hapwatch::engine::percentiles::parse_list(s).map(PctList)
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
        /// Log files (plain or compressed), `-` for stdin; read in the order
        /// given, but logrotate's rotations of one log oldest first
        /// (`haproxy.log*`: `.2.gz`, `.1`, then the log).
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
        /// Time zone of the HAProxy host, for dates written without an
        /// offset (RFC 3164 headers, HAProxy's accept date): an IANA name
        /// (Europe/Paris), UTC or local (default: this machine's zone).
        #[arg(long, value_name = "ZONE", value_parser = Zone::parse)]
        tz: Option<Zone>,
        /// Print up to N lines that were not understood.
        #[arg(long, default_value_t = 0, value_name = "N")]
        show_unparsed: usize,
        /// Exit 0 even when more than half the lines of an input were not
        /// understood (said on stderr either way; default: exit 1).
        #[arg(long)]
        allow_unparsed: bool,
        /// Extra or overriding message patterns: every *.toml in DIR.
        #[arg(long, value_name = "DIR", env = "HAPWATCH_PATTERNS")]
        patterns: Option<PathBuf>,
        #[command(flatten)]
        formats: FormatArgs,
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
        #[arg(long, value_name = "AGE", value_parser = parse_positive_duration, requires = "db")]
        retain: Option<Millis>,
        /// With --db: commit what was read this often (a killed run keeps
        /// what it committed; memory holds only what is not committed yet).
        #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, default_value = "1s", requires = "db")]
        commit_every: Millis,
        /// With --db: let this group read the database (mode 0640 and this
        /// group; default: owner only, 0600).
        #[arg(long, value_name = "GROUP", value_parser = hapwatch::store::Readers::group, requires = "db")]
        group: Option<hapwatch::store::Readers>,
        /// Health events are applied in event-time order within this window
        /// (lines from several senders or over UDP can overtake each other).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
        reorder_window: Millis,
        /// Evaluate the alert rules on the log's own times and list the
        /// alerts (firing and resolved) in the report.
        #[arg(long)]
        alerts: bool,
        /// Alert rules to use instead of the defaults (TOML; see
        /// `hapwatch check-config`).
        #[arg(long, value_name = "FILE", requires = "alerts")]
        rules: Option<PathBuf>,
        /// Lines dated more than this after their file was last written
        /// (stdin: after now) are counted and quarantined, not applied
        /// (`status --skewed` lists them with --db).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10m")]
        max_skew: Millis,
        /// Distinct servers kept per worker; lines of more are counted
        /// (`dropped_servers`) and not kept per server (the --by,
        /// --percentiles and --accept-holes tables still count them).
        #[arg(long, value_name = "N", default_value_t = 100_000)]
        max_servers: usize,
        /// Distinct load balancers (syslog hosts) kept per worker.
        #[arg(long, value_name = "N", default_value_t = 10_000)]
        max_hosts: usize,
        /// Count requests by HTTP status code (halog -st), termination
        /// code (-tc), persistence cookie code (-cc), URL (-u*) or client
        /// address (-ic) instead of by server.
        #[arg(long, value_enum, value_name = "KEY")]
        by: Option<By>,
        /// With --by url|client: the order of the rows (halog's -u, -uc,
        /// -ue, -ua, -ut, -uao, -uto, -uba, -ubt).
        #[arg(long, value_enum, default_value = "count", requires = "by")]
        sort: SortBy,
        /// With --by url|client: the first N rows (0: all).
        #[arg(long, value_name = "N", default_value_t = 20, requires = "by")]
        top: usize,
        /// With --by url: keep the query string (halog -query).
        #[arg(long, requires = "by")]
        query: bool,
        /// Timer percentiles instead of the server report (halog -pct):
        /// TR, Tc, Tr, Td (data time) and Tw, at halog's percentiles or at
        /// these (e.g. 50,90,99,99.9).
        #[arg(long, value_name = "LIST", num_args = 0..=1, require_equals = true, default_missing_value = "halog", value_parser = parse_percentiles, conflicts_with = "by")]
        percentiles: Option<PctList>,
        /// Gaps of at least this between accepts, e.g. 500ms, and the
        /// accepts that followed (halog -ad), instead of the server report.
        #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, conflicts_with_all = ["by", "percentiles"])]
        accept_holes: Option<Millis>,
        /// With --accept-holes: only gaps followed by at least N accepts in
        /// one millisecond (halog -ac).
        #[arg(long, value_name = "N", default_value_t = 1, requires = "accept_holes")]
        accept_count: u32,
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Alerts stored in the database (by `listen`, or `analyze --db --alerts`), newest first.
    Alerts {
        /// The database (default: ./hapwatch.db, else the service's
        /// /var/lib/hapwatch/hapwatch.db).
        #[arg(long, value_name = "FILE", env = "HAPWATCH_DB")]
        db: Option<PathBuf>,
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
    Status {
        #[command(flatten)]
        query: StoreQuery,
        /// List every server this HAProxy configuration declares (those
        /// never logged as "no event yet") and flag stored servers it does
        /// not declare. Repeatable.
        #[arg(long = "haproxy-config", value_name = "FILE")]
        haproxy_config: Vec<PathBuf>,
        /// Instead, the lines quarantined for their date (too far after
        /// they were received, `--max-skew`, or before 2000), newest first.
        #[arg(long)]
        skewed: bool,
        /// Each server across the load balancers that log it: "DOWN on
        /// 2/4 (lb1, lb3)", backends without a server per host, and which
        /// hosts went silent.
        #[arg(long)]
        fleet: bool,
        /// With --fleet: a host whose newest line is this far behind the
        /// fleet's newest is silent (its last state counts neither way).
        #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_positive_duration)]
        host_silence: Millis,
    },
    /// Every state transition stored in the database, in event-time order.
    History(StoreQuery),
    /// The story of an incident: summary, events in order, per-minute
    /// figures; from the database or from log files.
    Timeline {
        /// Log files (plain or compressed, `-` for stdin) to read instead of
        /// the database, through the same engine as `analyze` (a log's
        /// rotations oldest first, as there).
        files: Vec<String>,
        /// The database (default: ./hapwatch.db, else the service's
        /// /var/lib/hapwatch/hapwatch.db).
        #[arg(long, value_name = "FILE", env = "HAPWATCH_DB")]
        db: Option<PathBuf>,
        /// List the incidents instead: servers DOWN, backends without a
        /// server, alerts firing, merged when less than --gap apart.
        #[arg(long)]
        list: bool,
        /// The incident to tell (an ID from --list; default: the last one).
        #[arg(long, value_name = "ID")]
        incident: Option<String>,
        /// The incident around this alert (its fingerprint, or enough of
        /// it to be unique; see `hapwatch alerts`).
        #[arg(long, value_name = "FINGERPRINT")]
        alert: Option<String>,
        /// A window centred on this time instead (RFC 3339 or HAProxy's form).
        #[arg(long, value_parser = user_time)]
        around: Option<Millis>,
        /// With --around: the window's length.
        #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, default_value = "30m")]
        span: Millis,
        /// Periods closer than this are one incident.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
        gap: Millis,
        /// Shown before and after an incident, so that the lead-up shows.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
        pad: Millis,
        /// The width of the per-backend figures' buckets: `auto` (seconds
        /// for a window of up to a few hours read from files, else a
        /// minute), or a duration (less than a minute only from files: the
        /// database keeps minutes).
        #[arg(long, value_name = "auto|DURATION", value_parser = parse_bucket, default_value = "auto")]
        bucket: Bucket,
        /// With files: evaluate the default alert rules (or --rules) on the
        /// log's own times, as `analyze --alerts` does.
        #[arg(long)]
        alerts: bool,
        /// With --alerts: these rules instead of the defaults.
        #[arg(long, value_name = "FILE", requires = "alerts")]
        rules: Option<PathBuf>,
        /// With files: the year of RFC 3164 dates when no line gives it.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1970..=9999))]
        year: Option<i64>,
        /// With files: the HAProxy host's time zone for dates written without
        /// an offset: an IANA name, UTC or local (default: this machine's).
        #[arg(long, value_name = "ZONE", value_parser = Zone::parse)]
        tz: Option<Zone>,
        #[arg(long, value_enum, default_value = "text")]
        format: TimelineFormat,
        /// Write it to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        formats: FormatArgs,
    },
    /// Receive HAProxy logs live (UDP, TCP, unix socket, followed files) and
    /// keep every server's state in the database.
    Listen(Box<hapwatch::listen::config::Settings>),
    /// What HAProxy's configuration keeps out of its logs, for hapwatch,
    /// and the lines to add: exit 0 when nothing is missing, 1 otherwise.
    Doctor {
        /// HAProxy's configuration (repeatable, like `haproxy -f`; several
        /// load balancers' files at once are checked as a fleet).
        #[arg(long = "haproxy-config", value_name = "FILE", required = true)]
        haproxy_config: Vec<PathBuf>,
    },
    /// List the message patterns in use (built-in and --patterns DIR) and check them.
    Patterns {
        #[arg(long, value_name = "DIR", env = "HAPWATCH_PATTERNS")]
        patterns: Option<PathBuf>,
        #[command(flatten)]
        formats: FormatArgs,
    },
}

/// The servers `--haproxy-config` declares, if given.
/// The log files as they are read: each file once (said on stderr when a
/// name repeats another), a log's rotations oldest first.
fn to_read(files: Vec<String>) -> Vec<String> {
    let (files, repeated) = hapwatch::input::once_each(files);
    for (name, first) in repeated {
        hapwatch::say!("hapwatch: warning: {name} is {first} again (the same file): read once");
    }
    hapwatch::input::in_rotation_order(files)
}

fn load_inventory(files: &[PathBuf]) -> Result<Option<hapwatch::inventory::Inventory>, ExitCode> {
    if files.is_empty() {
        return Ok(None);
    }
    match hapwatch::haproxy_cfg::HaproxyConfig::load(files) {
        Ok(cfg) => Ok(Some(hapwatch::inventory::Inventory::of(&cfg))),
        Err(e) => {
            hapwatch::say!("hapwatch: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn load_patterns(
    dir: Option<&std::path::Path>,
    formats: &FormatArgs,
) -> Result<Arc<PatternSet>, ExitCode> {
    let mut set = PatternSet::load(dir).map_err(|e| {
        hapwatch::say!("hapwatch: invalid patterns: {e:#}");
        ExitCode::from(2)
    })?;
    let (user, lacks) =
        hapwatch::haproxy_cfg::user_formats(&formats.log_format, &[], &formats.haproxy_config)
            .map_err(|e| {
                hapwatch::say!("hapwatch: {e}");
                ExitCode::from(2)
            })?;
    for l in &lacks {
        hapwatch::say!("hapwatch: {l}");
    }
    set.add_formats(user);
    Ok(Arc::new(set))
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
            tz,
            show_unparsed,
            allow_unparsed,
            patterns,
            formats,
            threads,
            no_mmap,
            db,
            retain,
            commit_every,
            group,
            reorder_window,
            alerts,
            rules,
            max_skew,
            max_servers,
            max_hosts,
            by,
            sort,
            top,
            query,
            percentiles,
            accept_holes,
            accept_count,
            select,
        } => {
            let alerts = match alert_rules(alerts, rules.as_deref()) {
                Ok(a) => a,
                Err(code) => return code,
            };
            let patterns = match load_patterns(patterns.as_deref(), &formats) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let inventory = match load_inventory(&formats.haproxy_config) {
                Ok(i) => i,
                Err(code) => return code,
            };
            if let (Some(s), Some(u)) = (filter.since, filter.until) {
                if s >= u {
                    hapwatch::say!("hapwatch: --since must be before --until");
                    return ExitCode::from(2);
                }
            }
            // `--percentiles 50,90,99 FILE`: the list needs an `=` (without
            // a value the flag means halog's rows), so clap took it for a
            // file. Said before the work, not as a missing file after it.
            if percentiles.is_some() {
                if let Some(list) = files.iter().find(|f| {
                    !std::path::Path::new(f).exists()
                        && hapwatch::engine::percentiles::parse_list(f).is_ok()
                }) {
                    hapwatch::say!(
                        "hapwatch: `{list}` is not a file: for these percentiles write --percentiles={list} (with `=`; --percentiles alone gives halog's)"
                    );
                    return ExitCode::from(2);
                }
            }
            // A table of `--by`, `--percentiles` or `--accept-holes` is the
            // whole text or CSV report: per-server counts would be thrown
            // away, unless a store, the rules or the inventory check reads
            // them.
            let server_stats = matches!(format, Format::Json)
                || (by.is_none() && percentiles.is_none() && accept_holes.is_none())
                || db.is_some()
                || alerts.is_some()
                || inventory.is_some();
            let job = analyze::Job {
                files: to_read(files),
                db,
                retain,
                commit_every: std::time::Duration::from_millis(commit_every as u64),
                readers: group.unwrap_or_default(),
                reading: analyze::Reading {
                    patterns,
                    filter: filter.filter(),
                    year,
                    threads: threads.map(usize::from).unwrap_or_else(|| {
                        std::thread::available_parallelism().map_or(2, |n| n.get())
                    }),
                    show_unparsed,
                    progress: std::io::stderr().is_terminal(),
                    mmap: !no_mmap,
                    reorder_window,
                    alerts,
                    max_skew: Some(max_skew),
                    cap: hapwatch::engine::Cap::new(max_servers.max(1), max_hosts.max(1)),
                    zone: tz.unwrap_or_else(Zone::local),
                    by: by.map(|by| {
                        let mut b = hapwatch::engine::breakdown::Breakdown::new(by.key());
                        b.sort = sort.sort();
                        b.top = top;
                        b.query = query;
                        b
                    }),
                    percentiles: percentiles.map(|p| p.0),
                    holes: accept_holes.map(|gap| (gap, accept_count)),
                    select: select.select(),
                    server_stats,
                },
            };
            // A database that cannot be used is reported before the work.
            let analyze::Done {
                mut report,
                not_understood,
                problems,
                warnings,
            } = match analyze::job::run(job) {
                Ok(done) => done,
                Err(e) => {
                    hapwatch::say!("hapwatch: {e}");
                    return ExitCode::from(2);
                }
            };
            for p in warnings.iter().chain(&problems) {
                hapwatch::say!("hapwatch: {p}");
            }
            if let Some(inv) = &inventory {
                let unknown = report.inventory(inv, &filter.filter());
                if let Some(w) =
                    hapwatch::inventory::unknown_warning(&unknown, &formats.haproxy_config)
                {
                    hapwatch::say!("hapwatch: {w}");
                }
            }
            for n in &not_understood {
                hapwatch::say!("hapwatch: {n}");
            }
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written = match format {
                Format::Table => out.write_all(report::table::render(&report, colour).as_bytes()),
                // Streamed: 100,000 servers are 160 MB of JSON, which a
                // string would hold (twice, while it grows) beside the report.
                Format::Json => report.write_json(&mut out),
                Format::Csv => match report::csv::render(&report) {
                    Ok(s) => out.write_all(s.as_bytes()),
                    Err(e) => {
                        hapwatch::say!("hapwatch: {e}");
                        return ExitCode::from(1);
                    }
                },
            };
            if written.and_then(|()| out.flush()).is_err() {
                return ExitCode::SUCCESS; // closed pipe (e.g. `| head`)
            }
            if problems.is_empty() && (not_understood.is_empty() || allow_unparsed) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Status {
            query: StoreQuery { db, format, filter },
            haproxy_config,
            skewed,
            fleet,
            host_silence,
        } => {
            let inventory = match load_inventory(&haproxy_config) {
                Ok(i) => i,
                Err(code) => return code,
            };
            let store = match open_db(db.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            if skewed {
                let rows = match store.skewed() {
                    Ok(r) => r,
                    Err(e) => {
                        hapwatch::say!("hapwatch: {e}");
                        return ExitCode::from(1);
                    }
                };
                return match format {
                    ListFormat::Table => print(&report::store::skewed_table(&rows)),
                    ListFormat::Json => {
                        print(&(serde_json::json!({ "skewed": rows }).to_string() + "\n"))
                    }
                };
            }
            let f = filter.filter();
            let (mut servers, mut backends) = match (store.servers(&f), store.backends(&f)) {
                (Ok(s), Ok(b)) => (s, b),
                (Err(e), _) | (_, Err(e)) => {
                    hapwatch::say!("hapwatch: {e}");
                    return ExitCode::from(1);
                }
            };
            if let Some(inv) = &inventory {
                let unknown = report::store::inventory(&mut servers, &mut backends, inv, &f);
                if let Some(w) = hapwatch::inventory::unknown_warning(&unknown, &haproxy_config) {
                    hapwatch::say!("hapwatch: {w}");
                }
            }
            if fleet {
                let hosts = match store.hosts() {
                    Ok(h) => h,
                    Err(e) => {
                        hapwatch::say!("hapwatch: {e}");
                        return ExitCode::from(1);
                    }
                };
                let view = report::fleet::build(&servers, &backends, &hosts, host_silence);
                return match format {
                    ListFormat::Table => print(&report::fleet::fleet_table(&view, colour)),
                    ListFormat::Json => {
                        print(&(serde_json::to_string_pretty(&view).expect("serializes") + "\n"))
                    }
                };
            }
            let hosts = servers
                .iter()
                .map(|s| s.host.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            match format {
                ListFormat::Table => {
                    let mut text = report::store::status_table(&servers, &backends, colour);
                    if hosts > 1 {
                        text += &format!(
                            "\n{hosts} load balancers: `hapwatch status --fleet` shows each server across them.\n"
                        );
                    }
                    print(&text)
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
            let store = match open_db(db.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let rows = match store.history(&filter.filter()) {
                Ok(r) => r,
                Err(e) => {
                    hapwatch::say!("hapwatch: {e}");
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
        Command::Timeline {
            files,
            db,
            list,
            incident,
            alert,
            around,
            span,
            gap,
            pad,
            bucket,
            alerts,
            rules,
            year,
            tz,
            format,
            output,
            filter,
            formats,
        } => {
            use hapwatch::timeline::job::{self, Pick};
            let patterns = match load_patterns(None, &formats) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let inventory = match load_inventory(&formats.haproxy_config) {
                Ok(i) => i,
                Err(code) => return code,
            };
            let alerts = match alert_rules(alerts, rules.as_deref()) {
                Ok(a) => a,
                Err(code) => return code,
            };
            let picks = [incident.is_some(), alert.is_some(), around.is_some()];
            if picks.iter().filter(|&&p| p).count() > 1
                || (picks.contains(&true) && (filter.since.is_some() || filter.until.is_some()))
            {
                hapwatch::say!(
                    "hapwatch: pick one window: --incident, --alert, --around or --since/--until"
                );
                return ExitCode::from(2);
            }
            if let (Some(s), Some(u)) = (filter.since, filter.until) {
                if s >= u {
                    hapwatch::say!("hapwatch: --since must be before --until");
                    return ExitCode::from(2);
                }
            }
            let pick = match (incident, alert, around) {
                (Some(id), _, _) => Pick::Incident(id),
                (_, Some(fp), _) => Pick::Alert(fp),
                (_, _, Some(t)) => Pick::Around(t, span),
                _ if filter.since.is_some() || filter.until.is_some() => Pick::Between,
                _ => Pick::Last,
            };
            let reading = analyze::Reading {
                patterns,
                filter: Default::default(),
                year,
                threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
                show_unparsed: 0,
                progress: false,
                mmap: true,
                reorder_window: 2000,
                alerts,
                max_skew: Some(600_000),
                cap: hapwatch::engine::Cap::new(100_000, 10_000),
                zone: tz.unwrap_or_else(Zone::local),
                by: None,
                percentiles: None,
                holes: None,
                select: None,
                server_stats: true,
            };
            let run = job::run(job::Job {
                files: to_read(files),
                db: db.unwrap_or_else(hapwatch::store::default_query_path),
                reading,
                filter: filter.filter(),
                list,
                pick,
                gap,
                pad,
                bucket: bucket.0,
                inventory,
                format: match format {
                    TimelineFormat::Text => job::Format::Text,
                    TimelineFormat::Markdown => job::Format::Markdown,
                    TimelineFormat::Json => job::Format::Json,
                    TimelineFormat::Html => job::Format::Html,
                },
            });
            match (run, output) {
                (Ok(told), None) => {
                    // A closed pipe (`| head`) is not an error worth reporting.
                    let _ = told.write_to(std::io::stdout().lock());
                    ExitCode::SUCCESS
                }
                (Ok(told), Some(path)) => {
                    match std::fs::File::create(&path).and_then(|f| told.write_to(f)) {
                        Ok(()) => ExitCode::SUCCESS,
                        Err(e) => {
                            hapwatch::say!("hapwatch: cannot write {}: {e}", path.display());
                            ExitCode::from(1)
                        }
                    }
                }
                (Err(job::Failed(code, e)), _) => {
                    hapwatch::say!("hapwatch: {e}");
                    ExitCode::from(code)
                }
            }
        }
        Command::Alerts {
            db,
            active,
            since,
            format,
        } => {
            let store = match open_db(db.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let listed = store
                .alerts(active, since)
                .and_then(|a| Ok((a, store.failed_deliveries()?)));
            let (alerts, failed) = match listed {
                Ok(x) => x,
                Err(e) => {
                    hapwatch::say!("hapwatch: {e}");
                    return ExitCode::from(1);
                }
            };
            match format {
                ListFormat::Json => print(
                    &(serde_json::json!({ "alerts": alerts, "failed_deliveries": failed })
                        .to_string()
                        + "\n"),
                ),
                ListFormat::Table => print(&report::store::alerts_table(&alerts, &failed)),
            }
        }
        Command::CheckConfig { file } => match load_rules(&file) {
            Ok(_) => {
                print(&format!("{}: ok\n", file.display()));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Doctor { haproxy_config } => {
            let cfg = match hapwatch::haproxy_cfg::HaproxyConfig::load(&haproxy_config) {
                Ok(c) => c,
                Err(e) => {
                    hapwatch::say!("hapwatch: {e}");
                    return ExitCode::from(2);
                }
            };
            let e = hapwatch::doctor::examine(&cfg);
            print(&e.text(&cfg.files));
            if e.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Patterns { patterns, formats } => {
            let set = match load_patterns(patterns.as_deref(), &formats) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let (text, bad) = report::patterns_table(&set);
            // A closed pipe (`| head -1`) ends quietly (println! panicked).
            print(&text);
            if bad > 0 {
                hapwatch::say!(
                    "hapwatch: {bad} pattern sample(s) do not match exactly their own pattern"
                );
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
    }
}
