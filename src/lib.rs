//! hapwatch turns HAProxy's own logs into the health of every backend
//! server: per-server state and transitions, request timers and errors.
//!
//! The pipeline, one module per step (see ARCHITECTURE.md):
//!
//! - [`input`]: bytes from files, `.gz` and stdin, cut into chunks of whole lines.
//! - [`syslog`]: one line -> timestamp, host, program, pid, message.
//! - [`haproxy`]: the message -> a typed request, health event or other,
//!   using [`patterns`] (data in `patterns/*.toml`) for everything but requests.
//! - [`engine`]: per-server state machine and request aggregates, in event time.
//! - [`alerts`]: alert rules on transitions, in event time.
//! - [`analyze`]: the offline pipeline over every core.
//! - [`listen`]: the live receiver (UDP, TCP, unix socket, followed files), same engine.
//! - [`report`]: one report model, printed as a table, JSON or CSV.
//! - [`time`]: event-time parsing; nothing here reads the wall clock.
//! - [`bytes`]: the byte scanning the parsers share.

pub mod alerts;
pub mod analyze;
pub mod bytes;
pub mod engine;
pub mod haproxy;
pub mod input;
pub mod listen;
pub mod patterns;
pub mod report;
pub mod store;
pub mod syslog;
pub mod time;
