//! Entry points for the fuzz targets (`fuzz/`, cargo fuzz): one per
//! parser that takes bytes from outside — TCP framing, syslog headers,
//! request lines, health messages, whole lines through the engine to a
//! report, pattern files, rule files, the listen config. Each must return
//! for any input without panicking; where a parser promises more (every
//! byte of a stream counted once, frames no longer than the limit), it is
//! asserted here so the fuzzer checks it too.
//!
//! They live in the crate, not in `fuzz/`, because the parsers are the
//! crate's own (`pub(crate)`); compiled always, so clippy and the seeds'
//! unit test keep them working.

use std::sync::{Arc, OnceLock};

use ::bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::patterns::PatternSet;

fn patterns() -> &'static Arc<PatternSet> {
    static P: OnceLock<Arc<PatternSet>> = OnceLock::new();
    P.get_or_init(|| Arc::new(PatternSet::builtin()))
}

/// TCP framing: the first byte picks `--max-frame` (16 to 4,096), the
/// second where the stream is cut into reads; the decoder must account for
/// every byte and give no frame over the limit.
pub fn framing(data: &[u8]) {
    let (Some(&m), Some(&cut)) = (data.first(), data.get(1)) else {
        return;
    };
    let max = 16 + (m as usize) * 16;
    let stream = &data[2..];
    let step = 1 + cut as usize;
    let mut d = crate::listen::framing::SyslogDecoder::new(max);
    let mut buf = BytesMut::new();
    let check = |f: Option<::bytes::Bytes>| {
        if let Some(f) = &f {
            assert!(f.len() <= max, "a frame of {} over {max}", f.len());
        }
        f.is_some()
    };
    for piece in stream.chunks(step) {
        buf.extend_from_slice(piece);
        while check(d.decode(&mut buf).expect("the decoder never fails")) {}
    }
    // Closed by the sender, or abandoned (idle, shutdown) half the time.
    if cut % 2 == 0 {
        while check(d.decode_eof(&mut buf).expect("the decoder never fails")) {}
    } else {
        d.abandon(&mut buf);
    }
    assert_eq!(d.bytes.total(), stream.len() as u64, "{:?}", d.bytes);
}

/// A syslog header, and the message it leaves.
pub fn syslog(data: &[u8]) {
    let h = crate::syslog::parse(data);
    let _ = h.severity();
    let _ = crate::haproxy::strip_stderr_prefix(h.msg);
    // A header kept from the first line reads the second as parsing does.
    let cut = data.iter().position(|&c| c == b'\n').unwrap_or(data.len());
    let (first, second) = (&data[..cut], data.get(cut + 1..).unwrap_or_default());
    let mut recent = crate::syslog::Recent::default();
    recent.parse(first);
    assert_eq!(recent.parse(second), crate::syslog::parse(second));
}

/// A HAProxy request line (HTTP, TCP, CLF), every field read.
pub fn request(data: &[u8]) {
    if let Some(r) = crate::haproxy::request::parse(data) {
        let _ = (r.http(), r.status_class(), r.is_error());
        for t in crate::haproxy::request::Timer::ALL {
            let _ = r.timer(t);
        }
    }
}

/// A message against the built-in health patterns; each pattern read in
/// parts reads it as its whole regex does.
pub fn health(data: &[u8]) {
    let _ = crate::haproxy::classify(patterns(), data);
    patterns().check_splits(data);
}

/// Whole lines through the engine (parsing, times, the state machine) to
/// a report and its JSON; then the same bytes through the journal's record
/// readers.
pub fn lines(data: &[u8]) {
    let mut engine =
        crate::engine::Engine::new(patterns().clone(), crate::engine::Filter::default());
    let mut clock = crate::engine::Clock::new(crate::time::YearResolver::new(2026, None));
    for line in data.split(|&c| c == b'\n') {
        engine.ingest_line_now(line, &mut clock);
    }
    engine.finish();
    let report = crate::report::Report::build(engine, &[]);
    serde_json::to_string(&report).expect("a report serialises");
    // The same bytes as a saved journal of records of many lines, read the
    // way `analyze` reads `-o export`, `json-pretty` and `verbose` (never a
    // panic; an error ends the reading).
    use std::io::Read;
    let mut text = Vec::new();
    let export = crate::input::RecordLines::new(crate::input::JournalExport(data));
    let _ = export.take(1 << 20).read_to_end(&mut text);
    text.clear();
    let pretty = crate::input::RecordLines::new(crate::input::JsonPretty(data));
    let _ = pretty.take(1 << 20).read_to_end(&mut text);
    text.clear();
    let verbose = crate::input::RecordLines::new(crate::input::JournalVerbose::new(data));
    let _ = verbose.take(1 << 20).read_to_end(&mut text);
}

/// A pattern file (`patterns/*.toml`), as `--patterns DIR` reads it.
pub fn patterns_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(set) = PatternSet::from_sources(&[("fuzz.toml".into(), text.into())]) {
        let _ = set.find(b"Server be/srv is DOWN, reason: Layer4 timeout");
    }
}

/// An alert rule file (`--rules`).
pub fn rules(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::alerts::RuleFile::parse(text);
    }
}

/// A listen `--config` file, resolved (files it names are not read).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut s) = toml::from_str::<crate::listen::config::Settings>(text) else {
        return;
    };
    s.patterns = None;
    s.rules = None;
    s.haproxy_config.clear();
    s.tls.clear();
    (s.tls_cert, s.tls_key, s.tls_client_ca) = (None, None, None);
    let _ = s.resolve();
}

/// A log-format string (up to the first newline) compiled, and the rest
/// read as lines of it.
pub fn logformat(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (format, lines) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(mut f) = crate::patterns::logformat::LogFormat::compile("fuzz", format) {
        // Linked as a pattern set links it: a built-in format with items
        // in front is read by the scanner and the hand-written parser.
        static BUILTIN: std::sync::OnceLock<crate::patterns::PatternSet> =
            std::sync::OnceLock::new();
        let builtin = BUILTIN.get_or_init(crate::patterns::PatternSet::builtin);
        for b in builtin.formats.iter().filter(|b| b.specialised) {
            f.follow_builtin(b);
        }
        let _ = f.lacks();
        for line in lines.lines() {
            // The scanner and the regex read the same values.
            assert_eq!(f.read(line.as_bytes()), f.read_by_regex(line.as_bytes()));
            if let Some(r) = crate::haproxy::logformat::parse(&f, line.as_bytes()) {
                let _ = (r.http(), r.status_class(), r.is_error());
            }
        }
    }
}

/// A haproxy.cfg, its formats compiled, and what `doctor` says of it.
pub fn haproxy_cfg(data: &[u8]) {
    let mut cfg = crate::haproxy_cfg::HaproxyConfig::default();
    if cfg
        .read(
            "fuzz.cfg",
            &String::from_utf8_lossy(data),
            &Default::default(),
        )
        .is_ok()
    {
        let _ = cfg.formats();
        let _ = cfg.backends().map(|b| b.servers.len()).sum::<usize>();
        let _ = crate::doctor::examine(&cfg).text(&["fuzz.cfg".into()]);
    }
}

/// An answer of HAProxy's runtime API to `show servers state` (and its
/// first line as a `--haproxy-socket` argument).
pub fn runtime_api(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(rows) = crate::listen::runtime_api::parse(&text) {
        assert!(rows
            .iter()
            .all(|r| !r.backend.is_empty() && !r.server.is_empty()));
    }
    let _ = crate::listen::runtime_api::Socket::parse(text.lines().next().unwrap_or(""));
}

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every target by name, for the binaries and the seeds' test.
pub const TARGETS: [(&str, Target); 11] = [
    ("framing", framing),
    ("syslog", syslog),
    ("request", request),
    ("health", health),
    ("lines", lines),
    ("patterns", patterns_file),
    ("rules", rules),
    ("config", config),
    ("logformat", logformat),
    ("haproxy_cfg", haproxy_cfg),
    ("runtime_api", runtime_api),
];

#[cfg(test)]
mod tests {
    /// Every committed seed (fuzz/corpus/TARGET/*) runs through its target:
    /// the corpus stays valid input, and the entry points stay callable.
    #[test]
    fn every_seed_runs_through_its_target() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, target) in super::TARGETS {
            let dir = root.join(name);
            let seeds: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            assert!(!seeds.is_empty(), "no seed for {name}");
            for s in seeds {
                target(&std::fs::read(&s).unwrap());
            }
        }
    }
}
