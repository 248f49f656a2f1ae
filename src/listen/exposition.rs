//! The `/metrics` text on its way out: written a line at a time in the
//! format the client asked for, and handed to the HTTP body in chunks as
//! it is written.
//!
//! Why not a `String`: with 100,000 servers the exposition is 377 MB of
//! text, and the Prometheus text format was a second copy of it: a scrape
//! doubled `listen`'s memory for its duration. Streamed, a scrape holds a
//! few chunks ([`CHUNK`] bytes each, [`IN_FLIGHT`] of them) whatever the
//! number of servers, and the first bytes leave before the last series is
//! encoded.
//!
//! A chunk is 1 MiB: with 64 KiB chunks a scrape of 100,000 servers was
//! 5,800 hand-overs between the encoder, the runtime and the client, and a
//! UDP feed of 20,000 msg/s lost 0.3% of its datagrams during scrapes
//! (none with 1 MiB; BENCHMARKS.md).

use std::fmt::{self, Write};
use std::time::Duration;

use ::bytes::Bytes;

/// Bytes a chunk holds before it is handed to the body.
pub const CHUNK: usize = 1 << 20;
/// Chunks written and not yet sent to the client: the encoder waits (it
/// runs on a blocking thread) rather than getting ahead of a slow client.
pub const IN_FLIGHT: usize = 2;
/// How long the encoder waits for a client that reads nothing: then the
/// scrape ends (Prometheus' own scrape timeout is 10 s by default), and
/// the series' lock it holds is let go.
const STALLED: Duration = Duration::from_secs(30);

/// What the body reads: a chunk, or the error that ends it unfinished.
pub type Piece = Result<Bytes, std::io::Error>;

/// A `fmt::Write` that hands what is written to a channel in chunks.
pub struct Chunks {
    buf: String,
    tx: tokio::sync::mpsc::Sender<Piece>,
    rt: tokio::runtime::Handle,
}

impl Chunks {
    /// For a blocking thread of runtime `rt` (`spawn_blocking`): sending
    /// waits for the body to take the chunk before.
    pub fn new(tx: tokio::sync::mpsc::Sender<Piece>, rt: tokio::runtime::Handle) -> Chunks {
        Chunks {
            buf: String::with_capacity(CHUNK + 4096),
            tx,
            rt,
        }
    }

    fn send(&mut self, piece: Piece) -> fmt::Result {
        let tx = &self.tx;
        match self
            .rt
            .block_on(async { tokio::time::timeout(STALLED, tx.send(piece)).await })
        {
            Ok(Ok(())) => Ok(()),
            // The client went away or read nothing for too long: stop
            // encoding, there is no one to write to.
            _ => Err(fmt::Error),
        }
    }

    fn send_buffer(&mut self) -> fmt::Result {
        let full = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK + 4096));
        self.send(Ok(Bytes::from(full.into_bytes())))
    }

    /// Sends what is left once the whole text is written (`Ok`), or ends
    /// the body unfinished (`Err`: the client sees a broken transfer, not a
    /// truncated exposition it would take as whole).
    pub fn finish(mut self, written: fmt::Result) {
        // Nothing more can be done for a client that went away.
        let _ = match written {
            Ok(()) if self.buf.is_empty() => Ok(()),
            Ok(()) => self.send_buffer(),
            Err(fmt::Error) => self.send(Err(std::io::Error::other("writing /metrics failed"))),
        };
    }
}

impl Write for Chunks {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= CHUNK {
            self.send_buffer()?;
        }
        Ok(())
    }
}

/// Prometheus' text format (0.0.4) from the OpenMetrics text that
/// prometheus-client writes: a counter's family is named with its
/// `_total` suffix, as its samples are, and there is no `# EOF`. The
/// samples are the same lines. (For clients that do not ask for
/// OpenMetrics: `curl`, `promtool check metrics`.)
///
/// The encoder writes a line in many small pieces; they are gathered into
/// [`CHUNK`]s and read a chunk at a time, where runs of sample lines go
/// through whole (read piece by piece, the Prometheus text took 60% more
/// time than OpenMetrics for 10,000 servers).
pub struct PromText<W> {
    out: W,
    /// What the encoder wrote and is not read yet.
    input: String,
    /// A `# HELP` line held until the next says whether it is a counter's.
    help: Option<String>,
}

impl<W: Write> PromText<W> {
    pub fn new(out: W) -> PromText<W> {
        PromText {
            out,
            input: String::new(),
            help: None,
        }
    }

    /// Reads the whole lines of `input` into `out`, and keeps the rest.
    fn convert(&mut self) -> fmt::Result {
        let input = std::mem::take(&mut self.input);
        let end = memchr::memrchr(b'\n', input.as_bytes()).map_or(0, |i| i + 1);
        let mut rest = &input[..end];
        while !rest.is_empty() {
            if rest.starts_with('#') {
                let nl = memchr::memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len() - 1);
                self.end_line(&rest[..nl])?;
                rest = &rest[nl + 1..];
                continue;
            }
            // A run of sample lines, up to the next `#` line, as it is.
            let run = memchr::memmem::find(rest.as_bytes(), b"\n#").map_or(rest.len(), |i| i + 1);
            self.write_help()?;
            self.out.write_str(&rest[..run])?;
            rest = &rest[run..];
        }
        self.input = input;
        self.input.drain(..end);
        Ok(())
    }

    /// A help line held and not followed by its counter's type: as it is.
    fn write_help(&mut self) -> fmt::Result {
        match self.help.take() {
            Some(help) => writeln!(self.out, "{help}"),
            None => Ok(()),
        }
    }

    fn end_line(&mut self, line: &str) -> fmt::Result {
        if let Some(help) = self.help.take() {
            let rest = &help["# HELP ".len()..];
            let name = rest.split(' ').next().unwrap_or("");
            let counter = line
                .strip_prefix("# TYPE ")
                .and_then(|t| t.strip_prefix(name))
                == Some(" counter");
            if counter && !name.ends_with("_total") {
                let text = &rest[name.len()..];
                writeln!(self.out, "# HELP {name}_total{text}")?;
                return writeln!(self.out, "# TYPE {name}_total counter");
            }
            writeln!(self.out, "{help}")?;
        }
        if line == "# EOF" {
            return Ok(());
        }
        if line.starts_with("# HELP ") {
            self.help = Some(line.to_string());
            return Ok(());
        }
        writeln!(self.out, "{line}")
    }

    /// The rest (a last line without its newline too), and the writer.
    pub fn finish(mut self) -> Result<W, fmt::Error> {
        if !self.input.is_empty() && !self.input.ends_with('\n') {
            self.input.push('\n');
        }
        self.convert()?;
        self.write_help()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for PromText<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.input.push_str(s);
        if self.input.len() >= CHUNK {
            self.convert()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENMETRICS: &str = "# HELP hapwatch_lines Messages parsed\n\
        # TYPE hapwatch_lines counter\nhapwatch_lines_total{} 3\n\
        # HELP hapwatch_queue_depth Frames\n# TYPE hapwatch_queue_depth gauge\n\
        hapwatch_queue_depth{} 0\n# HELP hapwatch_bytes_total Bytes\n\
        # TYPE hapwatch_bytes_total counter\nhapwatch_bytes_total{} 9\n# EOF\n";
    const PROMETHEUS: &str = "# HELP hapwatch_lines_total Messages parsed\n\
        # TYPE hapwatch_lines_total counter\nhapwatch_lines_total{} 3\n\
        # HELP hapwatch_queue_depth Frames\n# TYPE hapwatch_queue_depth gauge\n\
        hapwatch_queue_depth{} 0\n# HELP hapwatch_bytes_total Bytes\n\
        # TYPE hapwatch_bytes_total counter\nhapwatch_bytes_total{} 9\n";

    /// Counter families take their samples' name; the same text whatever
    /// pieces the encoder writes it in (cut at every byte, two cuts).
    #[test]
    fn prometheus_text_names_counter_families_as_their_samples_in_any_pieces() {
        let whole = |pieces: &[&str]| {
            let mut p = PromText::new(String::new());
            for piece in pieces {
                p.write_str(piece).unwrap();
            }
            p.finish().unwrap()
        };
        assert_eq!(whole(&[OPENMETRICS]), PROMETHEUS);
        for a in 0..=OPENMETRICS.len() {
            for b in (a..=OPENMETRICS.len()).step_by(7) {
                let (x, rest) = OPENMETRICS.split_at(a);
                let (y, z) = rest.split_at(b - a);
                assert_eq!(whole(&[x, y, z]), PROMETHEUS, "cut at {a} and {b}");
            }
        }
        // A last line without its newline, a help line last.
        assert_eq!(whole(&["a 1\nb 2"]), "a 1\nb 2\n");
        assert_eq!(whole(&["a 1\n# HELP x y"]), "a 1\n# HELP x y\n");
    }

    /// The chunks read back as the text written; a client that goes away
    /// stops the writer with an error instead of keeping it waiting.
    #[test]
    fn chunks_carry_the_text_and_stop_when_the_client_goes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
        let handle = rt.handle().clone();
        let line = "x".repeat(999) + "\n";
        let writer = std::thread::spawn(move || {
            let mut c = Chunks::new(tx, handle);
            let mut r = Ok(());
            for _ in 0..5_000 {
                r = r.and_then(|()| c.write_str(&line));
            }
            c.finish(r);
        });
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        rt.block_on(async {
            while let Some(piece) = rx.recv().await {
                let b = piece.unwrap();
                sizes.push(b.len());
                got.extend_from_slice(&b);
            }
        });
        writer.join().unwrap();
        assert_eq!(got.len(), 5_000_000);
        assert!(got.chunks(1000).all(|l| l.ends_with(b"\n")));
        assert!(sizes.iter().all(|&n| n < CHUNK + 1000), "{sizes:?}");
        // Chunks of whole writes (the first write past CHUNK sends), the rest.
        let per = CHUNK.div_ceil(1000) * 1000;
        assert_eq!(sizes.len(), 5_000_000 / per + 1, "{sizes:?}");

        // The reader drops its end after one chunk: the writer's next
        // chunk fails, and it ends at once.
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let handle = rt.handle().clone();
        let writer = std::thread::spawn(move || {
            let mut c = Chunks::new(tx, handle);
            let mut written = 0;
            let r = (0..100_000).try_for_each(|_| {
                written += 1;
                c.write_str(&"y".repeat(1023))
            });
            c.finish(r);
            (r, written)
        });
        rt.block_on(async {
            rx.recv().await.unwrap().unwrap();
            drop(rx);
        });
        let (r, written) = writer.join().unwrap();
        assert!(r.is_err());
        assert!(
            written < 4 * CHUNK / 1023,
            "wrote {written} KB for a client that left"
        );
    }
}
