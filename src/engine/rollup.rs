//! Per-server, per-minute rollups: what timelines and alert baselines read
//! instead of raw requests.
//!
//! A minute holds counts (requests, status classes, errors, bytes, retries,
//! redispatches, termination states), queue maxima and three timers' counts
//! in HDR histograms' layout ([`Tally`]): Tw (queue), Tr (server response,
//! HTTP) and Tt (session, what TCP logs have). Like everything in
//! `super::stats`, a minute is a commutative monoid: the pieces of one
//! minute recorded by different worker threads, or written by successive
//! commits, add up to the same minute. The store merges a minute with the
//! row already there ([`Minute::merge`]), so a minute can be written while
//! still open.
//!
//! Invariant: rollups are only recorded when a store will receive them
//! (`Engine::rollups`), and they leave the engine at every commit
//! ([`super::Aggregates::drain_minutes`]): memory holds the minutes since the
//! last commit, not the history.

use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

use crate::haproxy::{Request, Timer};
use crate::time::Millis;

use super::counts::Counts;
use super::stats::{quantile_of, ServerKey, TimerStats};
use super::tally::Tally;

pub const MINUTE_MS: Millis = 60_000;

/// The timers a minute keeps a histogram of, in column order.
pub const TIMERS: [Timer; 3] = [Timer::Tw, Timer::Tr, Timer::Tt];

/// The start of the minute `t` falls in.
#[inline]
pub fn minute_of(t: Millis) -> Millis {
    t.div_euclid(MINUTE_MS) * MINUTE_MS
}

/// Requests whose timers a minute keeps as logged before it builds its
/// histograms: a server that is quiet for most minutes (a sparse log over
/// months, one request a minute) then never allocates, flushes, merges or
/// encodes three histograms for a request or two.
const FEW: usize = 8;

/// `Minute::few_n` once the minute records into its histograms.
const PROMOTED: u8 = u8::MAX;

#[derive(Clone, Debug, Default)]
pub struct Minute {
    pub counts: Counts,
    /// [`TIMERS`]: counts in HDR histograms' layout (2 significant
    /// digits) with sum and max (see `super::tally` for why not the
    /// crate's histograms). Read them through [`Minute::timer`] or
    /// [`Minute::quantile`], which add the few requests not in them yet.
    timers: [Option<Tally>; 3],
    /// The timers in V2 encoding, once [`Minute::seal`]ed (`timers` are
    /// then empty).
    pub(crate) sealed: Option<Box<[Option<Vec<u8>>; 3]>>,
    /// Sealed: no more requests ([`Minute::is_sealed`]).
    closed: bool,
    /// The first [`FEW`] requests' timers ([`TIMERS`], -1 where a line has
    /// none), while `timers` are empty. The minute's distribution is always
    /// `timers` and these together.
    few: [[i32; 3]; FEW],
    /// How many of `few` are used, or [`PROMOTED`].
    few_n: u8,
}

/// The same counts and the same distributions, whichever form holds them.
impl PartialEq for Minute {
    fn eq(&self, o: &Self) -> bool {
        let (mut a, mut b) = (self.clone(), o.clone());
        a.unseal();
        b.unseal();
        a.flush();
        b.flush();
        a.counts == b.counts && a.timers == b.timers
    }
}

impl Minute {
    /// A minute of these counts and histograms (read back from the store).
    pub fn of(counts: Counts, timers: [Option<Tally>; 3]) -> Minute {
        Minute {
            counts,
            timers,
            few_n: PROMOTED,
            ..Default::default()
        }
    }

    #[inline]
    pub fn add(&mut self, r: &Request) {
        self.counts.add(r);
        self.take(TIMERS.map(|t| r.timer(t)));
    }

    /// One request's timers: held as logged while there is room, else
    /// recorded (the few held before go into the histograms first). A
    /// timer past an `i32` (a tunnel open for weeks) is recorded at once:
    /// the few are held in half the room, as nearly every timer fits.
    #[inline(always)]
    fn take(&mut self, v: [i64; 3]) {
        if (self.few_n as usize) < FEW && v.iter().all(|&x| x <= i32::MAX as i64) {
            // Any negative timer is one that never completed: `-1`.
            self.few[self.few_n as usize] = v.map(|x| x.max(-1) as i32);
            self.few_n += 1;
            return;
        }
        if self.few_n != PROMOTED {
            self.promote();
        }
        self.record(v);
    }

    /// The requests held in `few`.
    fn few(&self) -> &[[i32; 3]] {
        match self.few_n {
            PROMOTED => &[],
            n => &self.few[..n as usize],
        }
    }

    /// Moves the few requests held as logged into the histograms, which
    /// take every request from now on.
    fn promote(&mut self) {
        let few = self.few;
        let n = self.few().len();
        self.few_n = PROMOTED;
        for v in &few[..n] {
            self.record(v.map(i64::from));
        }
    }

    #[inline(always)]
    fn record(&mut self, v: [i64; 3]) {
        for (slot, v) in self.timers.iter_mut().zip(v) {
            if v >= 0 {
                slot.get_or_insert_with(Tally::default).record(v as u64);
            }
        }
    }

    /// Timer `k`'s counts, without the few requests held as logged (see
    /// [`Minute::few_values`]); `None` before the minute records into them.
    pub fn tally(&self, k: usize) -> Option<&Tally> {
        self.timers[k].as_ref()
    }

    /// Timer `k`'s counts, the few requests held as logged included.
    fn whole(&self, k: usize) -> Option<std::borrow::Cow<'_, Tally>> {
        use std::borrow::Cow;
        let mut few = self.few_values().filter(|(i, _)| *i == k).peekable();
        let mut t = match (&self.timers[k], few.peek().is_some()) {
            (Some(t), false) => return Some(Cow::Borrowed(t)),
            (None, false) => return None,
            (Some(t), true) => t.clone(),
            (None, true) => Tally::default(),
        };
        for (_, v) in few {
            t.record(v);
        }
        Some(Cow::Owned(t))
    }

    /// The requests' timers not in the histograms yet, by [`TIMERS`] index:
    /// for totals that record them one by one (see `Stats::absorb`).
    pub fn few_values(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.few()
            .iter()
            .flat_map(|v| v.iter().enumerate().filter(|(_, v)| **v >= 0))
            .map(|(k, v)| (k, *v as u64))
    }

    /// Timer `k`'s distribution, readable (flushed), the few requests not
    /// in its histogram yet included; `None` if no request had it.
    pub fn timer(&self, k: usize) -> Option<TimerStats> {
        if let Some(encoded) = &self.sealed {
            let h = encoded[k].as_deref().and_then(Minute::decode_timer)?;
            return Some(TimerStats::from_hist(h));
        }
        self.whole(k).map(|t| TimerStats::from_tally(&t))
    }

    /// Timer `k`'s value at quantile `q` (`None` if no request had it): what
    /// [`Minute::timer`]'s histogram answers, without building one for a
    /// minute that still holds its requests as logged. The degradation
    /// rules ask this of every server's every minute, and over a sparse
    /// log nearly all of them hold a request or two: a histogram allocated
    /// and filled for each made `analyze --alerts` 30 times slower than
    /// `analyze` on a month of log.
    pub fn quantile(&self, k: usize, q: f64) -> Option<u64> {
        // Sealed, a minute is its encoded histograms alone (`seal` moved its
        // few requests into them): decode timer `k`'s, not the minute.
        if let Some(encoded) = &self.sealed {
            let h = encoded[k].as_deref().and_then(Minute::decode_timer)?;
            return (!h.is_empty()).then(|| h.value_at_quantile(q));
        }
        if self.timers[k].is_some() {
            return self.whole(k)?.quantile(q);
        }
        let mut v = [0u64; FEW];
        let mut n = 0;
        for (_, x) in self.few_values().filter(|(i, _)| *i == k) {
            v[n] = x;
            n += 1;
        }
        if n == 0 {
            return None;
        }
        Some(quantile_of(&mut v[..n], q))
    }

    /// Moves the few requests held as logged into the counts.
    pub fn flush(&mut self) {
        if !self.few().is_empty() {
            self.promote();
        }
    }

    /// Keeps the tallies only encoded, as the store writes them: a minute
    /// waiting for its commit then holds a few hundred bytes instead of
    /// kilobytes of counts. Holding every minute's histograms until the
    /// commit cost `analyze --db` more than all the rest of the rollups.
    /// Merging into a sealed minute decodes it first (exact: V2 keeps every
    /// count); only the exact sum becomes the histogram's (see
    /// `Tally::from_hist`), which the store does not keep anyway. A
    /// minute of a few requests held as logged is small already: it is only
    /// marked sealed.
    pub fn seal(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if self.timers.iter().all(Option::is_none) {
            return;
        }
        self.flush();
        let encoded = [0, 1, 2].map(|k| self.encode_timer(k));
        self.timers = [None, None, None];
        self.sealed = Some(Box::new(encoded));
    }

    /// Sealed: it takes no more requests; a piece that arrives for it is
    /// merged and the minute sealed again (see `store::writer`).
    pub fn is_sealed(&self) -> bool {
        self.closed
    }

    fn unseal(&mut self) {
        self.closed = false;
        if let Some(encoded) = self.sealed.take() {
            for (slot, blob) in self.timers.iter_mut().zip(encoded.iter()) {
                *slot = blob
                    .as_deref()
                    .and_then(Minute::decode_timer)
                    .map(|h| Tally::from_hist(&h));
            }
        }
    }

    pub fn merge(&mut self, o: &Minute) {
        if o.sealed.is_some() {
            let mut o = o.clone();
            o.unseal();
            return self.merge(&o);
        }
        self.unseal();
        self.counts.merge(&o.counts);
        for (mine, theirs) in self.timers.iter_mut().zip(&o.timers) {
            let Some(t) = theirs else { continue };
            match mine {
                Some(m) => m.add(t),
                None => *mine = Some(t.clone()),
            }
        }
        // Their few requests as if added here.
        for v in o.few() {
            self.take(v.map(i64::from));
        }
    }

    /// A histogram in HdrHistogram's V2 encoding (portable: other HDR
    /// implementations read it), the few requests held as logged included.
    pub fn encode_timer(&self, k: usize) -> Option<Vec<u8>> {
        if let Some(encoded) = &self.sealed {
            return encoded[k].clone();
        }
        Some(self.whole(k)?.encode_v2())
    }

    /// The reverse of [`Minute::encode_timer`]; `None` for a corrupt blob
    /// (the minute then lacks that timer rather than failing the read).
    pub fn decode_timer(blob: &[u8]) -> Option<Histogram<u64>> {
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(blob))
            .ok()?;
        h.auto(true);
        Some(h)
    }
}

/// One server's minute, as it leaves the engine for the store.
#[derive(Clone, Debug)]
pub struct Rollup {
    pub key: ServerKey,
    pub minute: Millis,
    pub data: Minute,
}

/// Buckets finer than a minute, for one short window (a timeline of a few
/// minutes read from files wants seconds): the same [`Minute`]s, keyed by
/// the start of a `width` bucket. Never stored: the database keeps minutes.
#[derive(Debug)]
pub struct Fine {
    pub width: Millis,
    buckets: std::collections::HashMap<(ServerKey, Millis), Minute>,
}

impl Fine {
    pub fn new(width: Millis) -> Fine {
        Fine {
            width: width.max(1),
            buckets: Default::default(),
        }
    }

    pub fn add(&mut self, host: &[u8], r: &Request) {
        let key = ServerKey {
            host: String::from_utf8_lossy(host).into_owned(),
            backend: String::from_utf8_lossy(r.backend).into_owned(),
            server: String::from_utf8_lossy(r.server).into_owned(),
        };
        let start = r.accept.div_euclid(self.width) * self.width;
        self.buckets.entry((key, start)).or_default().add(r);
    }

    /// The buckets as rollups (`minute` holding the bucket's start).
    pub fn into_rollups(self) -> impl Iterator<Item = Rollup> {
        self.buckets.into_iter().map(|((key, minute), mut data)| {
            data.flush();
            Rollup { key, minute, data }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::request;

    fn req(line: &str) -> Request<'_> {
        request::parse(line.as_bytes()).expect("a request line")
    }

    #[test]
    fn minutes_merge_and_survive_encoding() {
        let a = req("127.0.0.1:1 [24/Nov/2026:10:00:01.000] fe be/s1 0/0/1/12/13 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"");
        let b = req("127.0.0.1:1 [24/Nov/2026:10:00:02.000] fe be/s1 0/3/1/900/901 503 10 - - sH-- 1/1/0/0/0 0/2 \"GET / HTTP/1.1\"");
        let mut one = Minute::default();
        one.add(&a);
        one.add(&b);
        let (mut x, mut y) = (Minute::default(), Minute::default());
        x.add(&a);
        y.add(&b);
        x.merge(&y);
        assert_eq!(x, one);
        assert_eq!(one.counts.requests, 2);
        assert_eq!(one.counts.status[2], 1);
        assert_eq!(one.counts.status[5], 1);
        assert_eq!(one.counts.errors, 1);
        assert_eq!(one.counts.backend_queue_max, 2);
        assert_eq!(one.counts.termination, vec![(*b"----", 1), (*b"sH--", 1)]);
        one.flush();
        let tr = Minute::decode_timer(&one.encode_timer(1).unwrap()).unwrap();
        assert_eq!(tr.len(), 2);
        assert!(tr.equivalent(12, tr.value_at_quantile(0.5)));
        assert!(tr.equivalent(900, tr.max()));
        assert!(Minute::decode_timer(b"not a histogram").is_none());
    }

    /// A minute's first requests are kept as logged, its histograms built
    /// from the ninth: whichever form each piece is in, merged either way
    /// round, sealed or not, the minute reads as one that recorded every
    /// request.
    #[test]
    fn few_requests_and_histograms_read_the_same() {
        let line = |tr: u32| {
            format!("127.0.0.1:1 [24/Nov/2026:10:00:01.000] fe be/s1 0/{}/1/{tr}/{} 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"", tr % 3, tr + 5)
        };
        let values = |m: &Minute, k: usize| {
            let h = Minute::decode_timer(&m.encode_timer(k).expect("recorded")).unwrap();
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>()
        };
        let trs: Vec<u32> = (0..23).map(|i| 3 + i * i * 7).collect();
        let mut whole = Minute::default();
        for &tr in &trs {
            whole.add(&req(&line(tr)));
        }
        // Three requests (kept as logged) and twenty (in histograms).
        let (mut few, mut many) = (Minute::default(), Minute::default());
        for &tr in &trs[..3] {
            few.add(&req(&line(tr)));
        }
        for &tr in &trs[3..] {
            many.add(&req(&line(tr)));
        }
        assert!(few.timers.iter().all(Option::is_none), "no histogram yet");
        assert_eq!(few.timer(1).unwrap().count(), 3);
        let mut a = few.clone();
        a.merge(&many);
        let mut b = many.clone();
        b.merge(&few);
        let mut sealed_few = few.clone();
        sealed_few.seal();
        assert!(sealed_few.is_sealed());
        let mut c = many.clone();
        c.seal();
        c.merge(&sealed_few);
        for m in [&a, &b, &c] {
            assert_eq!(m.counts, whole.counts);
            for k in 0..2 {
                assert_eq!(values(m, k), values(&whole, k), "timer {k}");
            }
        }
        // Sum and maximum too, where nothing was sealed (a sealed minute's
        // sum is its histogram's: see `seal`).
        assert_eq!(a, whole);
        assert_eq!(b, whole);
        // Eight pieces of one request each stay as logged; the ninth builds
        // the histograms.
        let mut pieces = Minute::default();
        for (i, &tr) in trs[..9].iter().enumerate() {
            let mut one = Minute::default();
            one.add(&req(&line(tr)));
            pieces.merge(&one);
            assert_eq!(pieces.timers[1].is_some(), i == 8, "piece {i}");
        }
        assert_eq!(pieces.timer(1).unwrap().count(), 9);
    }

    /// `Minute::quantile` reads a minute of a few requests as logged, and
    /// answers what the histogram of the same requests would: for one to
    /// eight values (held as logged) and more (in histograms), sealed or
    /// not, at every quantile the rules use, values on and off the
    /// histogram's bucket edges.
    #[test]
    fn quantiles_of_a_few_requests_are_the_histogram_s() {
        let line = |tr: u32| {
            format!("127.0.0.1:1 [24/Nov/2026:10:00:01.000] fe be/s1 {}/0/1/{tr}/{} 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"", tr % 2, tr + 1)
        };
        let trs = [7, 0, 255, 256, 257, 999, 1_000, 1_001, 130_000, 3, 45, 12];
        for n in 1..=trs.len() {
            for start in 0..trs.len() {
                let mut m = Minute::default();
                for i in 0..n {
                    m.add(&req(&line(trs[(start + i) % trs.len()])));
                }
                assert_eq!(m.timers[1].is_some(), n > FEW);
                let mut sealed = m.clone();
                sealed.seal();
                for q in [0.0, 0.5, 0.9, 0.95, 0.99, 1.0] {
                    for k in 0..3 {
                        let want = m.timer(k).map(|t| t.hist().value_at_quantile(q));
                        assert_eq!(
                            m.quantile(k, q),
                            want,
                            "n {n} from {start}, q {q}, timer {k}"
                        );
                        assert_eq!(sealed.quantile(k, q), want, "sealed, n {n}, q {q}");
                    }
                }
            }
        }
        assert_eq!(Minute::default().quantile(1, 0.95), None);
    }

    #[test]
    fn a_sealed_minute_writes_and_merges_as_the_open_one() {
        let line = |tr: u32| {
            format!("127.0.0.1:1 [24/Nov/2026:10:00:01.000] fe be/s1 0/0/1/{tr}/{} 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"", tr + 1)
        };
        let (mut open, mut sealed, mut late) =
            (Minute::default(), Minute::default(), Minute::default());
        for tr in [3, 3, 40, 700, 12_000] {
            open.add(&req(&line(tr)));
            sealed.add(&req(&line(tr)));
        }
        for tr in [5, 900] {
            late.add(&req(&line(tr)));
        }
        open.flush();
        sealed.seal();
        assert!(
            sealed.timers.iter().all(Option::is_none),
            "only the encoding is kept"
        );
        for k in 0..3 {
            assert_eq!(sealed.encode_timer(k), open.encode_timer(k));
        }
        // A piece arriving late for a sealed minute, and a sealed piece
        // merged into an open minute: the same counts as without sealing.
        open.merge(&late);
        sealed.merge(&late);
        let mut other_way = late.clone();
        let mut sealed_piece = Minute::default();
        for tr in [3, 3, 40, 700, 12_000] {
            sealed_piece.add(&req(&line(tr)));
        }
        sealed_piece.seal();
        other_way.merge(&sealed_piece);
        for m in [&mut sealed, &mut other_way] {
            m.flush();
            assert_eq!(m.counts.requests, 7);
            // Tw and Tr (an HTTP log has no Tt): the same counts.
            let counts = |m: &Minute, k| {
                let h = Minute::decode_timer(&m.encode_timer(k).expect("recorded")).unwrap();
                h.iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value()))
                    .collect::<Vec<_>>()
            };
            for k in 0..2 {
                assert_eq!(counts(m, k), counts(&open, k));
                assert_eq!(counts(m, k).iter().map(|c| c.1).sum::<u64>(), 7);
            }
            assert!(m.encode_timer(2).is_none());
        }
    }

    #[test]
    fn minute_boundaries() {
        assert_eq!(minute_of(119_999), 60_000);
        assert_eq!(minute_of(120_000), 120_000);
        assert_eq!(minute_of(-1), -60_000);
    }
}
