//! Syslog over TCP: RFC 6587 octet counting (`LEN SP MSG`, what rsyslog's
//! `TCP_Framing="octet-counted"` and HAProxy's `log-proto octet-count` send)
//! and LF-delimited frames (rsyslog's default), told apart frame by frame:
//! a frame that starts with a digit is octet-counted (a syslog message
//! starts with `<`), anything else runs to the next LF.
//!
//! A frame that starts with digits not followed by a space is an LF frame
//! (rsyslog's file format, `2026-11-24T10:00:00+00:00 lb1 ...`, sent as
//! is). A frame over `max` bytes is discarded and counted as soon as it is
//! known to be too long, and the stream goes on: an LF frame is skipped to
//! its LF, an octet-counted one by its length, without buffering it. A
//! length too long to be one ends in LF framing for that frame (counted as
//! malformed), so one bad sender cannot wedge the connection; a frame cut
//! short by the end of the connection is counted as partial. Vector's framer
//! drops oversized frames silently; here every frame ends in exactly one
//! count: a message, oversized, malformed or partial, and every byte of
//! the stream in exactly one [`ByteStats`] bucket.

use ::bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// Longest length prefix accepted (digits): 64 KiB frames need 5.
const MAX_DIGITS: usize = 10;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FrameStats {
    pub oversized: u64,
    pub malformed: u64,
    /// Frames cut short by the end of the connection (the sender closed,
    /// or the connection was closed for idleness or at shutdown).
    pub partial: u64,
}

/// Where the bytes of the stream went, each byte in exactly one bucket:
/// framing (length prefixes, LFs, separators) goes with its frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ByteStats {
    /// Frames given out as messages (and stray separators).
    pub processed: u64,
    pub oversized: u64,
    /// Lines whose octet count no frame can have (given out as lines).
    pub malformed: u64,
    pub partial: u64,
}

impl ByteStats {
    pub fn total(&self) -> u64 {
        self.processed + self.oversized + self.malformed + self.partial
    }
}

#[derive(Debug)]
pub struct SyslogDecoder {
    max: usize,
    /// Bytes still to throw away from an oversized frame: `Some(n)` for an
    /// octet-counted one, `Some(usize::MAX)` for an LF one (to its LF).
    skip: Option<usize>,
    /// Where the LF search resumes (bytes already known to have none).
    scanned: usize,
    /// The line being read began with a length no frame can have: it is
    /// counted malformed when it ends.
    malformed_line: bool,
    pub stats: FrameStats,
    pub bytes: ByteStats,
}

impl SyslogDecoder {
    pub fn new(max: usize) -> Self {
        SyslogDecoder {
            max,
            skip: None,
            scanned: 0,
            malformed_line: false,
            stats: FrameStats::default(),
            bytes: ByteStats::default(),
        }
    }

    /// Runs one step that takes bytes off `buf` and puts them in the bucket
    /// of the frame count the step changed (none: processed). A step counts
    /// at most one frame, so its bytes have one bucket.
    fn step<T>(&mut self, buf: &mut BytesMut, f: impl FnOnce(&mut Self, &mut BytesMut) -> T) -> T {
        let (before, was) = (buf.len(), self.stats);
        let out = f(self, buf);
        let n = before.saturating_sub(buf.len()) as u64;
        let b = &mut self.bytes;
        if self.stats.oversized > was.oversized {
            b.oversized += n;
        } else if self.stats.malformed > was.malformed {
            b.malformed += n;
        } else if self.stats.partial > was.partial {
            b.partial += n;
        } else {
            b.processed += n;
        }
        out
    }

    /// The connection ends with `buf` unread (closed for idleness, or at
    /// shutdown): a frame begun there is counted as partial.
    pub fn abandon(&mut self, buf: &mut BytesMut) {
        if self.skip.is_some() {
            self.bytes.oversized += buf.len() as u64;
        } else {
            self.step(buf, |d, buf| {
                if buf.iter().any(|c| !c.is_ascii_whitespace()) {
                    d.stats.partial += 1;
                }
                buf.clear();
            });
        }
        buf.clear();
        self.skip = None;
        self.scanned = 0;
        self.malformed_line = false;
    }

    fn lf_frame(&mut self, buf: &mut BytesMut) -> Option<Bytes> {
        match memchr::memchr(b'\n', &buf[self.scanned..]) {
            Some(i) => {
                let end = self.scanned + i;
                self.scanned = 0;
                let mut line = buf.split_to(end + 1);
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                let malformed = std::mem::take(&mut self.malformed_line);
                if line.len() > self.max {
                    self.stats.oversized += 1;
                    return Some(Bytes::new());
                }
                if malformed {
                    self.stats.malformed += 1;
                }
                Some(line.freeze())
            }
            None if buf.len() > self.max => {
                // Too long already: drop what we have and skip to the LF.
                // The empty frame tells the caller now (the counter shows
                // it while the connection stays open).
                self.stats.oversized += 1;
                buf.clear();
                self.scanned = 0;
                self.malformed_line = false;
                self.skip = Some(usize::MAX);
                Some(Bytes::new())
            }
            None => {
                self.scanned = buf.len();
                None
            }
        }
    }
}

impl Decoder for SyslogDecoder {
    type Item = Bytes;
    type Error = std::io::Error;

    /// Returns `Some(empty)` for a dropped frame so the caller keeps going
    /// (empty frames are skipped by the engine).
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Self::Error> {
        // The rest of an oversized frame, thrown away: its bytes are its.
        let before = buf.len();
        let skipping = self.skip_oversized(buf);
        self.bytes.oversized += (before - buf.len()) as u64;
        if skipping {
            return Ok(None);
        }
        Ok(self.step(buf, Self::frame))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Self::Error> {
        if let Some(f) = self.decode(buf)? {
            return Ok(Some(f));
        }
        if self.skip.is_some() || buf.is_empty() {
            self.bytes.oversized += buf.len() as u64;
            buf.clear();
            return Ok(None);
        }
        Ok(self.step(buf, Self::last))
    }
}

impl SyslogDecoder {
    /// Throws away what is left of an oversized frame; true while more of
    /// it is to come.
    fn skip_oversized(&mut self, buf: &mut BytesMut) -> bool {
        match self.skip {
            Some(usize::MAX) => match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    buf.advance(i + 1);
                    self.skip = None;
                }
                None => {
                    buf.clear();
                    return true;
                }
            },
            Some(n) => {
                let k = n.min(buf.len());
                buf.advance(k);
                if k < n {
                    self.skip = Some(n - k);
                    return true;
                }
                self.skip = None;
            }
            None => {}
        }
        false
    }

    /// The next frame at the start of `buf` (after the separators).
    fn frame(&mut self, buf: &mut BytesMut) -> Option<Bytes> {
        // Frames may be separated by stray LFs or spaces.
        while buf
            .first()
            .is_some_and(|&c| c == b'\n' || c == b'\r' || c == b' ')
        {
            buf.advance(1);
        }
        if buf.is_empty() {
            return None;
        }
        if !buf[0].is_ascii_digit() || self.scanned > 0 {
            return self.lf_frame(buf);
        }
        let digits = buf
            .iter()
            .take(MAX_DIGITS + 1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == buf.len() && digits <= MAX_DIGITS {
            return None; // the length is not complete yet
        }
        if digits <= MAX_DIGITS && buf[digits] != b' ' {
            // Not a length: an LF frame that starts with a digit (a
            // date, in rsyslog's file format).
            return self.lf_frame(buf);
        }
        if digits > MAX_DIGITS {
            // A length no frame can have: read as a line, counted when
            // it ends.
            self.malformed_line = true;
            return self.lf_frame(buf);
        }
        let len: usize = std::str::from_utf8(&buf[..digits])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(usize::MAX);
        if len > self.max {
            self.stats.oversized += 1;
            buf.advance(digits + 1);
            self.skip = Some(len);
            return Some(Bytes::new());
        }
        if buf.len() < digits + 1 + len {
            buf.reserve(digits + 1 + len - buf.len());
            return None;
        }
        buf.advance(digits + 1);
        let mut frame = buf.split_to(len);
        // rsyslog ends octet-counted frames with the message only, but
        // some senders add a trailing LF inside the count.
        while frame.last() == Some(&b'\n') {
            frame.truncate(frame.len() - 1);
        }
        Some(frame.freeze())
    }

    /// What is left at the end of the stream, not an oversized frame's
    /// rest and not empty.
    fn last(&mut self, buf: &mut BytesMut) -> Option<Bytes> {
        // A last line without its LF (the sender closed): keep it, unless it
        // is a truncated octet-counted frame.
        self.scanned = 0;
        let rest = buf.split_to(buf.len());
        if std::mem::take(&mut self.malformed_line) {
            if rest.len() > self.max {
                self.stats.oversized += 1;
                return None;
            }
            self.stats.malformed += 1;
            return Some(rest.freeze());
        }
        if rest[0].is_ascii_digit()
            && rest
                .iter()
                .position(|&c| c == b' ')
                .is_some_and(|i| rest[..i].iter().all(u8::is_ascii_digit))
        {
            self.stats.partial += 1;
            return None;
        }
        if rest.len() > self.max {
            self.stats.oversized += 1;
            return None;
        }
        Some(rest.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[&[u8]], max: usize) -> (Vec<String>, FrameStats) {
        let mut d = SyslogDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input {
            buf.extend_from_slice(piece);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                if !f.is_empty() {
                    out.push(String::from_utf8_lossy(&f).into_owned());
                }
            }
        }
        while let Some(f) = d.decode_eof(&mut buf).unwrap() {
            if !f.is_empty() {
                out.push(String::from_utf8_lossy(&f).into_owned());
            }
        }
        (out, d.stats)
    }

    #[test]
    fn octet_counted_and_lf_frames_in_one_stream() {
        let (f, s) = frames(
            &[
                b"5 <1>ab12 <134>hello",
                b" w<1>lf line\n<2>second\r\n4 <3>x",
            ],
            100,
        );
        assert_eq!(
            f,
            vec!["<1>ab", "<134>hello w", "<1>lf line", "<2>second", "<3>x"]
        );
        assert_eq!(s, FrameStats::default());
    }

    #[test]
    fn split_anywhere_gives_the_same_frames() {
        let stream = b"17 <134>first message<1>line two\n9 <2>third\n";
        let whole = frames(&[stream], 100).0;
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(frames(&[a, b], 100).0, whole, "cut at {cut}");
        }
    }

    #[test]
    fn oversized_frames_are_skipped_and_counted() {
        let big = vec![b'x'; 300];
        let mut octet = b"300 ".to_vec();
        octet.extend_from_slice(&big);
        let mut lf = b"<1>".to_vec();
        lf.extend_from_slice(&big);
        lf.push(b'\n');
        let (f, s) = frames(&[&octet, b"4 <1>a", &lf[..100], &lf[100..], b"<2>b\n"], 64);
        assert_eq!(f, vec!["<1>a", "<2>b"]);
        assert_eq!(s.oversized, 2);
    }

    #[test]
    fn a_bad_or_huge_length_does_not_wedge_the_stream() {
        let (f, s) = frames(&[b"12x <1>not a length\n99999999999999 zzz\n<2>ok\n"], 100);
        assert_eq!(
            f,
            vec!["12x <1>not a length", "99999999999999 zzz", "<2>ok"]
        );
        // "12x" is a line that starts with digits; fourteen digits and a
        // space look like a length no frame can have.
        assert_eq!(s.malformed, 1);
        // A huge count within the digit limit: skipped as oversized.
        let (f, s) = frames(&[b"9999999 ", b"abc"], 100);
        assert!(f.is_empty());
        assert_eq!(s.oversized, 1);
    }

    #[test]
    fn truncated_octet_frame_at_eof_is_dropped() {
        let (f, s) = frames(&[b"5 <1>ab12 <134>trunc"], 100);
        assert_eq!(f, vec!["<1>ab"]);
        assert_eq!((s.malformed, s.partial), (0, 1));
    }

    #[test]
    fn rsyslog_file_format_lines_sent_lf_framed_are_frames() {
        let (f, s) = frames(
            &[b"2026-11-24T10:00:00+00:00 lb1 haproxy[1]: a\n2026-11-24T10:00:01+00:00 lb1 haproxy[1]: b\n"],
            200,
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(s, FrameStats::default());
    }

    #[test]
    fn an_oversized_frame_is_reported_before_it_ends() {
        let mut d = SyslogDecoder::new(64);
        let mut buf = BytesMut::from(&[b'x'; 100][..]);
        assert_eq!(d.decode(&mut buf).unwrap(), Some(Bytes::new()));
        assert_eq!(d.stats.oversized, 1, "counted while the frame goes on");
        let mut buf = BytesMut::from(&b"1000 <1>"[..]);
        let mut d = SyslogDecoder::new(64);
        assert_eq!(d.decode(&mut buf).unwrap(), Some(Bytes::new()));
        assert_eq!(d.stats.oversized, 1);
    }

    #[test]
    fn a_frame_left_unfinished_is_partial() {
        let mut d = SyslogDecoder::new(64);
        let mut buf = BytesMut::from(&b"<1>no LF yet"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        d.abandon(&mut buf);
        assert_eq!(d.stats.partial, 1);
        assert!(buf.is_empty());
    }

    /// Decodes `pieces` as reads of one connection and ends it (closed, or
    /// abandoned with what is left): the byte counts.
    fn bytes_of(pieces: &[&[u8]], max: usize, closed: bool) -> ByteStats {
        let mut d = SyslogDecoder::new(max);
        let mut buf = BytesMut::new();
        for piece in pieces {
            buf.extend_from_slice(piece);
            while d.decode(&mut buf).unwrap().is_some() {}
        }
        if closed {
            while d.decode_eof(&mut buf).unwrap().is_some() {}
        } else {
            d.abandon(&mut buf);
        }
        d.bytes
    }

    #[test]
    fn every_byte_lands_in_the_bucket_of_its_frame() {
        let big = [b'x'; 100];
        let mut octet_big = b"100 ".to_vec();
        octet_big.extend_from_slice(&big);
        let mut lf_big = big.to_vec();
        lf_big.push(b'\n');
        let stream: Vec<&[u8]> = vec![
            b"5 <1>ab",                      // 7 processed
            &octet_big,                      // 104 oversized
            b"<2>line\n",                    // 8 processed
            &lf_big,                         // 101 oversized
            b"123456789012345 bad length\n", // 27 malformed
            b"\n\n",                         // 2 separators: processed
            b"9 <3>trunc",                   // 10 partial (closed mid-frame)
        ];
        let b = bytes_of(&stream, 64, true);
        assert_eq!(
            b,
            ByteStats {
                processed: 7 + 8 + 2,
                oversized: 104 + 101,
                malformed: 27,
                partial: 10,
            }
        );
        // The same stream abandoned (idle, shutdown) instead of closed.
        assert_eq!(bytes_of(&stream, 64, false), b);
    }

    proptest::proptest! {
        #[test]
        fn bytes_add_up_to_what_was_sent(
            frames in proptest::collection::vec(
                (0u8..5, proptest::collection::vec(32u8..127, 0..90)), 0..12),
            cuts in proptest::collection::vec(0usize..2000, 0..6),
            closed in proptest::bool::ANY,
        ) {
            let mut stream = Vec::new();
            for (kind, body) in &frames {
                match kind {
                    0 => { stream.extend_from_slice(format!("{} ", body.len()).as_bytes()); stream.extend_from_slice(body) }
                    1 => { stream.extend_from_slice(body); stream.push(b'\n') }
                    2 => { stream.extend_from_slice(b"12345678901234 "); stream.extend_from_slice(body); stream.push(b'\n') }
                    3 => { stream.extend_from_slice(b"2026-11-30T05:00:00Z "); stream.extend_from_slice(body); stream.push(b'\n') }
                    _ => stream.extend_from_slice(body),
                }
            }
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            at.sort_unstable();
            let mut pieces = Vec::new();
            let mut from = 0;
            for c in at {
                pieces.push(&stream[from..c]);
                from = c;
            }
            pieces.push(&stream[from..]);
            let b = bytes_of(&pieces, 64, closed);
            proptest::prop_assert_eq!(b.total(), stream.len() as u64, "{:?}", b);
        }
    }
}
