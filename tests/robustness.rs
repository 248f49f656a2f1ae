//! No input can crash a parser: arbitrary bytes and mutated real lines.

use hapwatch::{engine::Engine, haproxy, input, patterns::PatternSet, syslog};
use proptest::prelude::*;
use std::sync::Arc;

fn real_lines() -> &'static [Vec<u8>] {
    static LINES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    LINES.get_or_init(load_lines)
}

fn load_lines() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out = Vec::new();
    for f in [
        "haproxy-udp-rfc3164.log",
        "haproxy-udp-rfc5424.log",
        "rsyslog-tcp-octet.log",
        "haproxy-stderr.log",
    ] {
        let text = std::fs::read(dir.join(f)).unwrap();
        out.extend(text.split(|&c| c == b'\n').take(60).map(|l| l.to_vec()));
    }
    out
}

fn feed(line: &[u8]) {
    let h = syslog::parse(line);
    let _ = haproxy::request::parse(h.msg);
    let _ = haproxy::strip_stderr_prefix(h.msg);
    static PATTERNS: std::sync::OnceLock<Arc<PatternSet>> = std::sync::OnceLock::new();
    let p = PATTERNS.get_or_init(|| Arc::new(PatternSet::builtin()));
    let mut e = Engine::new(p.clone(), Default::default());
    let mut clock = hapwatch::engine::Clock::new(hapwatch::time::YearResolver::new(2026, None));
    e.ingest_line_now(line, &mut clock);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        feed(&bytes);
    }

    #[test]
    fn mutated_real_lines(idx in 0usize..240, cut in 0usize..400, flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..6)) {
        let lines = real_lines();
        let mut l = lines[idx % lines.len()].clone();
        for (pos, b) in flips {
            if !l.is_empty() {
                let n = l.len();
                l[pos % n] = b;
            }
        }
        l.truncate(cut.min(l.len()));
        feed(&l);
    }

    #[test]
    fn time_and_pattern_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = hapwatch::time::parse_haproxy_date(&bytes);
        let _ = hapwatch::time::parse_rfc3339(&bytes);
        let _ = hapwatch::time::parse_rfc3164_date(&bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = hapwatch::time::parse_user_time(&text);
        // A user's pattern file: any text is an error or a pattern set.
        let _ = PatternSet::from_sources(&[("fuzz.toml".into(), text.clone())]);
        let _ = PatternSet::from_sources(&[(
            "fuzz.toml".into(),
            format!("[[pattern]]\nname='x'\nclass='other'\nregex='''{text}'''\nsample='s'\n"),
        )]);
    }

    #[test]
    fn chunker_keeps_every_line(lines in proptest::collection::vec("[a-z ]{0,40}", 0..200), step in 1usize..5000) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        struct Trickle<'a>(&'a [u8], usize);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut c = input::Chunker::new(Trickle(text.as_bytes(), step));
        let mut got = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            got.extend(input::lines(&ch).map(|l| String::from_utf8(l.to_vec()).unwrap()));
        }
        prop_assert_eq!(got, lines);
    }
}
