//! hapwatch turns HAProxy's own logs into the health of every backend
//! server: per-server state and transitions, request timers and errors.
//!
//! The pipeline, one module per step (see ARCHITECTURE.md):
//!
//! - [`input`]: bytes from files, `.gz` and stdin, cut into chunks of whole lines.
//! - [`syslog`]: one line -> timestamp, host, program, pid, message.
//! - [`haproxy`]: the message -> a typed request, health event or other,
//!   using [`patterns`] (data in `patterns/*.toml`: health messages and
//!   log-formats, compiled by `patterns::logformat`).
//! - [`haproxy_cfg`]: haproxy.cfg read for each frontend's log format and
//!   the inventory of backends and servers; [`doctor`]: what it keeps out
//!   of the logs.
//! - `model`: the shared nouns (server key, transition, state event, alert).
//! - [`engine`]: per-server state machine and request aggregates, in event
//!   time; its account of health as state events. Knows nothing of alerts
//!   or storage.
//! - [`alerts`]: alert rules over state events and closed minutes, in event time.
//! - [`store`]: the SQLite state store, batched commits.
//! - `delivery`: the courier, from the outbox to webhooks, Alertmanager, commands.
//! - `pipeline`: engine -> alerts -> store, the one place that closes
//!   minutes, commits and announces, for `analyze` and `listen`.
//! - [`analyze`]: the offline pipeline over every core.
//! - [`listen`]: the live receiver (UDP, TCP, unix socket, followed files), same engine.
//! - [`report`]: one report model, printed as a table, JSON or CSV.
//! - [`time`]: event-time parsing; nothing here reads the wall clock.
//! - `bytes`: the byte scanning the parsers share.
//! - `text`: what a terminal is shown of text from a log (controls escaped).
//! - `fuzz`: the fuzz targets' entry points (`fuzz/`, cargo fuzz).
//!
//! The public surface is what the `hapwatch` binary, the tests and the
//! benchmarks use; `model`, `pipeline`, `delivery`, `bytes` and the engine's,
//! alerts' and receivers' inner modules are the crate's own.

/// A line on stderr that never panics: `eprintln!` panics when stderr is a
/// closed pipe (a supervisor gone), and a panic in the signal task left
/// `listen` deaf to SIGTERM. What cannot be said is dropped.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod alerts;
pub mod analyze;
mod bytes;
mod delivery;
pub mod doctor;
pub mod engine;
pub mod envelope;
#[doc(hidden)]
pub mod fuzz;
pub mod haproxy;
pub mod haproxy_cfg;
pub mod input;
pub mod inventory;
pub mod listen;
mod model;
pub mod patterns;
mod pipeline;
pub mod report;
pub mod store;
pub mod syslog;
mod text;
pub mod time;
pub mod timeline;
