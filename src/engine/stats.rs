//! Request aggregates per (host, backend, server).
//!
//! Invariant: everything here is a commutative monoid (counts, sums, maxima,
//! HDR histograms), so worker threads aggregate their own chunks and
//! [`Aggregates::merge`] combines them: the result does not depend on how
//! the input was split.

use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;

use crate::bytes::{name_hash, same};
use crate::haproxy::{Request, Timer};
use crate::time::Millis;

use super::counts::Counts;
use super::rollup::{self, minute_of, Minute, Rollup};
use super::tally::Tally;
use super::touched::{Reader, Touched};
pub use crate::model::ServerKey;

/// Values below this are counted in a plain array first and moved into the
/// histogram in bulk by [`TimerStats::flush`]: most timers are a few
/// milliseconds, and an array increment is far cheaper than a histogram
/// record (five per request line). Exact, so accuracy does not change.
const SMALL: usize = 512;

/// Values a timer holds as recorded before it builds its histogram, then
/// the values the histogram records before the timer gets its small-value
/// array (see [`TimerStats::record`]).
const HOT: u64 = 64;

/// An empty histogram of the timers' resolution (2 significant digits):
/// what a value held as recorded is rounded by when read.
pub(crate) fn resolution() -> &'static Histogram<u64> {
    static EMPTY: std::sync::OnceLock<Histogram<u64>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Histogram::new(2).expect("2 significant digits is valid"))
}

/// HdrHistogram's `value_at_quantile` of these values (sorted here), as a
/// histogram of 2 significant digits holding them answers it: the value
/// whose count reaches ceil(q * n) (at least the first), reported as the
/// highest value its bucket holds (the lowest for q = 0). `v` not empty.
pub(crate) fn quantile_of(v: &mut [u64], q: f64) -> u64 {
    v.sort_unstable();
    let n = v.len();
    let q = q.min(1.0);
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    let x = v[rank - 1];
    let h = resolution();
    match q == 0.0 {
        true => h.lowest_equivalent(x),
        false => h.highest_equivalent(x),
    }
}

/// Where a timer's distribution is.
#[derive(Clone, Debug)]
enum Dist {
    /// Fewer than [`HOT`] values, as recorded: a server seen a few times
    /// (most of 100,000 names) holds a few bytes instead of a 2 KB
    /// histogram for each of its six timers. Never beside a small-value
    /// array (`TimerStats::small` is empty).
    Few(Vec<u32>),
    /// Boxed: a timer of a few values is then 64 bytes, not 160.
    Hist(Box<Histogram<u64>>),
}

/// Latency distribution of one timer: an HDR histogram (2 significant
/// digits: < 1% relative error) plus the exact sum and maximum. Read the
/// distribution through [`TimerStats::quantile`] or [`TimerStats::hist`]:
/// a timer of a few values holds them as recorded.
#[derive(Clone, Debug)]
pub struct TimerStats {
    dist: Dist,
    /// SMALL counters while recording; empty once [`TimerStats::compact`]ed.
    small: Box<[u16]>,
    pending: u64,
    pub sum: u64,
    pub max: u64,
}

impl Default for TimerStats {
    fn default() -> Self {
        Self::new()
    }
}

impl TimerStats {
    /// A timer that holds its first values as recorded and gets a
    /// small-value array once it has recorded [`HOT`].
    pub fn new() -> Self {
        TimerStats {
            dist: Dist::Few(Vec::new()),
            small: Box::default(),
            pending: 0,
            sum: 0,
            max: 0,
        }
    }

    /// From a stored histogram (rollups keep no exact sum: the mean of
    /// the histogram stands in for it).
    pub fn from_hist(hist: Histogram<u64>) -> Self {
        TimerStats {
            sum: (hist.mean() * hist.len() as f64).round() as u64,
            max: hist.max(),
            dist: Dist::Hist(Box::new(hist)),
            small: Box::new([]),
            pending: 0,
        }
    }

    /// Inline: five of these run for every request line, nearly all
    /// taking the small-value counter; the call cost as much as the count.
    #[inline(always)]
    pub fn record(&mut self, v: u64) {
        self.sum += v;
        self.max = self.max.max(v);
        match self.small.get_mut(v as usize) {
            Some(c) if *c < u16::MAX - 1 => {
                *c += 1;
                self.pending += 1;
            }
            _ => self.record_slow(v),
        }
    }

    /// A value past the small-value counters (or one whose counter is
    /// full, or a timer without them): held as recorded while the timer has
    /// few, else into the histogram itself.
    #[inline(never)]
    fn record_slow(&mut self, v: u64) {
        if let Some(c) = self.small.get_mut(v as usize) {
            *c += 1;
            self.pending += 1;
            self.flush();
            return;
        }
        if let Dist::Few(values) = &mut self.dist {
            if (values.len() as u64) < HOT - 1 {
                if let Ok(v) = u32::try_from(v) {
                    values.push(v);
                    return;
                }
            }
        }
        // `record`, not `saturating_record`: the latter never resizes and
        // would clamp every value above the current range. A timer is an i32
        // of milliseconds, far below the auto-resize limit (i64::MAX / 2), so
        // this cannot fail.
        let hist = self.hist_mut();
        let _ = hist.record(v);
        let busy = hist.len() >= HOT;
        // A server that keeps getting requests earns its small-value array;
        // one seen a few times never pays its 1 KB.
        if self.small.is_empty() && busy {
            self.small = vec![0; SMALL].into_boxed_slice();
        }
    }

    /// The histogram, built from the values held as recorded if the timer
    /// had few so far (it then records into it).
    fn hist_mut(&mut self) -> &mut Histogram<u64> {
        if let Dist::Few(values) = &self.dist {
            self.dist = Dist::Hist(Box::new(Self::histogram_of(values)));
        }
        match &mut self.dist {
            Dist::Hist(h) => h,
            Dist::Few(_) => unreachable!("built above"),
        }
    }

    fn histogram_of(values: &[u32]) -> Histogram<u64> {
        let mut h = resolution().clone();
        for &v in values {
            let _ = h.record(v as u64);
        }
        h
    }

    /// The distribution as an HDR histogram (flushed first: see
    /// [`TimerStats::flush`]); built for the occasion if the timer holds
    /// its few values as recorded.
    pub fn hist(&self) -> std::borrow::Cow<'_, Histogram<u64>> {
        debug_assert_eq!(self.pending, 0, "flush before reading the histogram");
        match &self.dist {
            Dist::Hist(h) => std::borrow::Cow::Borrowed(h),
            Dist::Few(values) => std::borrow::Cow::Owned(Self::histogram_of(values)),
        }
    }

    /// Moves the small-value counts into the histogram: call before reading.
    pub fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        // Nothing above the largest value recorded (`max`): most arrays are
        // used at their low end (Tw is nearly always 0).
        let used = (self.max as usize).saturating_add(1).min(self.small.len());
        let Dist::Hist(hist) = &mut self.dist else {
            unreachable!("a timer with a small-value array has its histogram")
        };
        for (v, c) in self.small[..used].iter_mut().enumerate() {
            if *c > 0 {
                let _ = hist.record_n(v as u64, *c as u64);
                *c = 0;
            }
        }
        self.pending = 0;
    }

    /// Nothing waits in the small-value array: the histogram is complete.
    pub fn is_flushed(&self) -> bool {
        self.pending == 0
    }

    pub fn count(&self) -> u64 {
        match &self.dist {
            Dist::Few(values) => values.len() as u64,
            Dist::Hist(h) => h.len() + self.pending,
        }
    }

    pub fn quantile(&self, q: f64) -> u64 {
        debug_assert_eq!(self.pending, 0, "flush before reading quantiles");
        match &self.dist {
            Dist::Hist(h) => h.value_at_quantile(q),
            Dist::Few(values) if values.is_empty() => 0,
            Dist::Few(values) => {
                let mut v = [0u64; HOT as usize];
                for (v, &x) in v.iter_mut().zip(values) {
                    *v = x as u64;
                }
                quantile_of(&mut v[..values.len()], q)
            }
        }
    }

    /// The distribution's values by their bucket's lowest value, with
    /// their counts, ascending (the histogram's `iter_recorded`).
    pub fn for_each_recorded(&self, f: impl FnMut(u64, u64)) {
        debug_assert_eq!(self.pending, 0, "flush before reading the values");
        self.for_each_in_dist(f);
    }

    /// [`TimerStats::for_each_recorded`] without a flush: the histogram's
    /// buckets, then the values still waiting in the small-value array
    /// (by their bucket's lowest value too), so a bucket can come twice
    /// and out of order. For readers that add the counts up (`/metrics`
    /// histograms): a flushed copy for each read cost a histogram's
    /// allocation per timer, server and publication.
    pub fn for_each_held(&self, mut f: impl FnMut(u64, u64)) {
        self.for_each_in_dist(&mut f);
        if self.pending > 0 {
            let used = (self.max as usize).saturating_add(1).min(self.small.len());
            for (v, &n) in self.small[..used].iter().enumerate() {
                if n > 0 {
                    f(resolution().lowest_equivalent(v as u64), n.into());
                }
            }
        }
    }

    fn for_each_in_dist(&self, mut f: impl FnMut(u64, u64)) {
        match &self.dist {
            Dist::Hist(h) => {
                for v in h.iter_recorded() {
                    f(
                        h.lowest_equivalent(v.value_iterated_to()),
                        v.count_at_value(),
                    );
                }
            }
            Dist::Few(values) => {
                let mut low = [0u64; HOT as usize];
                for (l, &v) in low.iter_mut().zip(values) {
                    *l = resolution().lowest_equivalent(v as u64);
                }
                let low = &mut low[..values.len()];
                low.sort_unstable();
                for run in low.chunk_by(|a, b| a == b) {
                    f(run[0], run.len() as u64);
                }
            }
        }
    }

    pub fn mean(&self) -> f64 {
        self.sum as f64 / self.count().max(1) as f64
    }

    /// A minute's [`Tally`] as a timer of its own (its exact sum and
    /// maximum kept).
    pub fn from_tally(t: &Tally) -> TimerStats {
        TimerStats {
            dist: Dist::Hist(Box::new(t.to_hist())),
            small: Box::new([]),
            pending: 0,
            sum: t.sum,
            max: t.max,
        }
    }

    /// Adds a drained minute's [`Tally`]: each bucket's count at once, into
    /// the small-value array where it has room (a busy timer earns one as
    /// [`TimerStats::record`] does), else into the histogram. A bucket's
    /// lowest value stands for its values: the histogram counts them alike.
    pub fn add_tally(&mut self, t: &Tally) {
        if self.small.is_empty() && self.count() + t.count() >= HOT {
            let _ = self.hist_mut();
            self.small = vec![0; SMALL].into_boxed_slice();
        }
        // Values below 256 array to array, when no counter can fill up
        // (each holds at most `pending`; flushed first if one could): a
        // minute's usual values at once.
        let exact = t.exact();
        let mut start = 0;
        if self.small.len() >= exact.len() {
            let n: u64 = exact.iter().sum();
            let room = |pending: u64| pending + n < (u16::MAX - 1) as u64;
            if !room(self.pending) {
                self.flush();
            }
            if room(self.pending) {
                for (c, &n) in self.small.iter_mut().zip(exact) {
                    *c += n as u16;
                }
                self.pending += n;
                start = exact.len();
            }
        }
        t.for_each_from(start, |v, n| match self.small.get_mut(v as usize) {
            Some(c) if (*c as u64) + n < (u16::MAX - 1) as u64 => {
                *c += n as u16;
                self.pending += n;
            }
            _ => {
                let _ = self.hist_mut().record_n(v, n);
            }
        });
        self.sum += t.sum;
        self.max = self.max.max(t.max);
    }

    pub fn merge(&mut self, o: &TimerStats) {
        debug_assert_eq!(o.pending, 0, "flush before merging");
        self.flush();
        match (&mut self.dist, &o.dist) {
            (Dist::Few(mine), Dist::Few(theirs)) if ((mine.len() + theirs.len()) as u64) < HOT => {
                mine.extend_from_slice(theirs)
            }
            (_, Dist::Few(theirs)) => {
                let hist = self.hist_mut();
                for &v in theirs {
                    let _ = hist.record(v as u64);
                }
            }
            // Both histograms auto-resize, so adding cannot fail on range.
            (_, Dist::Hist(theirs)) => self
                .hist_mut()
                .add(&**theirs)
                .expect("auto-resizing histograms merge"),
        }
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }
}

/// A quiet server's timer values, as logged: one `u32` each, the timer's
/// index in the low three bits (see [`Stats::held`]).
const TIMER_BITS: u32 = 3;

/// Values a server holds as logged, all its timers together, before each
/// timer gets a [`TimerStats`] of its own: as many as six timers of
/// [`HOT`]` - 1` values would hold each.
const HELD_VALUES: usize = 6 * (HOT as usize - 1);

/// A value held as logged: its timer's index and the value.
#[inline]
fn unpack(x: u32) -> (usize, u64) {
    (
        (x & ((1 << TIMER_BITS) - 1)) as usize,
        (x >> TIMER_BITS) as u64,
    )
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub counts: Counts,
    /// Each timer's distribution once the server is busy (`held` is then
    /// empty and stays so).
    timers: [Option<Box<TimerStats>>; 6],
    /// A quiet server's timer values as logged, timer in the low bits,
    /// until there are [`HELD_VALUES`]: one allocation for six timers. A
    /// server seen a few times (most of 100,000 names) held six boxed
    /// timers of a few values each, ~1 KB a server and worker.
    held: Vec<u32>,
    /// The timers are in `timers`, not in `held`.
    busy: bool,
    /// Accept date of the last request (`status`'s "last request").
    pub last: Option<Millis>,
    /// Per-minute rollups since the last commit (only with a store; see
    /// [`super::rollup`]), oldest first. Requests arrive nearly in time
    /// order, so the minute is almost always the last one.
    pub minutes: Vec<(Millis, Minute)>,
    /// The first this many of `minutes` are sealed, their counts already
    /// in these totals (see [`Stats::add_minute`]).
    sealed: usize,
}

/// Room for this many minutes stays with a server when its minutes are
/// drained (see [`Aggregates::drain_minutes`]).
const KEPT_MINUTES: usize = 4;

/// A minute this much older than a server's newest is done but for
/// requests logged late: it is kept sealed (encoded, a few hundred bytes
/// instead of kilobytes of histogram) until it is drained. A sparse log
/// over months holds many minutes per epoch; a dense one never gets here.
const SEAL_LAG: Millis = 5 * rollup::MINUTE_MS;

impl Stats {
    #[inline]
    pub fn add(&mut self, r: &Request) {
        self.add_counts(r);
        self.record_timers(r, &Timer::ALL);
    }

    /// With rollups: the counts and the timers of [`rollup::TIMERS`] only in
    /// the minute (they join these totals when the minute is drained, see
    /// [`Aggregates::drain_minutes`]): each value is counted once.
    #[inline]
    pub fn add_with_minute(&mut self, r: &Request) {
        self.last = Some(self.last.map_or(r.accept, |l| l.max(r.accept)));
        self.record_timers(r, &[Timer::TR, Timer::Tc, Timer::Ta]);
        self.add_minute(r);
    }

    /// Adds a drained minute's counts and timers to these totals.
    fn absorb(&mut self, m: &Minute) {
        self.counts.merge(&m.counts);
        let tallies = [0, 1, 2].map(|k| m.tally(k));
        if tallies.iter().any(Option::is_some) {
            self.get_busy();
        }
        for (t, m) in rollup::TIMERS.iter().zip(tallies) {
            if let Some(m) = m {
                self.timers[*t as usize]
                    .get_or_insert_with(|| Box::new(TimerStats::new()))
                    .add_tally(m);
            }
        }
        // A quiet minute's requests, one by one: cheaper than a histogram.
        for (k, v) in m.few_values() {
            self.record(rollup::TIMERS[k], v);
        }
    }

    /// A request's timers: one test of `busy` a request, then the busy
    /// server's path as it always was (the dense log's every line).
    #[inline]
    fn record_timers(&mut self, r: &Request, which: &[Timer]) {
        if !self.busy {
            return self.hold(r, which);
        }
        for &t in which {
            let v = r.timer(t);
            if v >= 0 {
                self.timers[t as usize]
                    .get_or_insert_with(|| Box::new(TimerStats::new()))
                    .record(v as u64);
            }
        }
    }

    /// [`Stats::record_timers`] of a quiet server.
    #[inline(never)]
    fn hold(&mut self, r: &Request, which: &[Timer]) {
        for &t in which {
            let v = r.timer(t);
            if v >= 0 {
                self.record(t, v as u64);
            }
        }
    }

    /// One value of timer `t`: held as logged while the server is quiet.
    fn record(&mut self, t: Timer, v: u64) {
        if !self.busy {
            if self.held.len() < HELD_VALUES && v < 1 << (32 - TIMER_BITS) {
                self.held.push((v as u32) << TIMER_BITS | t as u32);
                return;
            }
            self.get_busy();
        }
        self.timers[t as usize]
            .get_or_insert_with(|| Box::new(TimerStats::new()))
            .record(v);
    }

    /// Timer `t`'s values held as logged.
    fn held(&self, t: Timer) -> impl Iterator<Item = u64> + '_ {
        self.held
            .iter()
            .map(|&x| unpack(x))
            .filter(move |&(k, _)| k == t as usize)
            .map(|(_, v)| v)
    }

    /// Moves the values held as logged into each timer's own distribution,
    /// which takes every value from now on.
    #[cold]
    fn get_busy(&mut self) {
        if self.busy {
            return;
        }
        self.busy = true;
        for x in std::mem::take(&mut self.held) {
            self.record_held(x);
        }
        // Readable as a busy server's timers are after `Aggregates::flush`
        // (a report's backend becomes busy as it adds its servers up).
        self.flush();
    }

    /// A value held as logged (this server's or another's), into its
    /// timer's own distribution.
    fn record_held(&mut self, x: u32) {
        let (k, v) = unpack(x);
        self.timers[k]
            .get_or_insert_with(|| Box::new(TimerStats::new()))
            .record(v);
    }

    #[inline]
    fn add_counts(&mut self, r: &Request) {
        self.counts.add(r);
        self.last = Some(self.last.map_or(r.accept, |l| l.max(r.accept)));
    }

    /// Adds `r` to its minute's rollup.
    #[inline]
    fn add_minute(&mut self, r: &Request) {
        let m = minute_of(r.accept);
        let sealed = self.sealed;
        match self
            .minutes
            .iter_mut()
            .enumerate()
            .rev()
            .find(|(_, (k, _))| *k == m)
        {
            // A sealed minute takes no more requests: a late one starts a
            // second piece of it (pieces of a minute are merged on their
            // way to the store).
            Some((i, (_, minute))) if i >= sealed => minute.add(r),
            _ => {
                self.seal_before(m - SEAL_LAG);
                let mut minute = Minute::default();
                minute.add(r);
                // Room for one: most servers hold one minute between two
                // drains (a vector's first growth makes room for four, 1 KB
                // a server).
                if self.minutes.capacity() == 0 {
                    self.minutes.reserve_exact(1);
                }
                self.minutes.push((m, minute));
            }
        }
    }

    /// Seals the leading minutes older than `cutoff`, adding their counts
    /// to these totals first (drained minutes are added then).
    fn seal_before(&mut self, cutoff: Millis) {
        while let Some((k, _)) = self.minutes.get(self.sealed) {
            if *k >= cutoff {
                break;
            }
            let mut data = std::mem::take(&mut self.minutes[self.sealed].1);
            self.absorb(&data);
            data.seal();
            self.minutes[self.sealed].1 = data;
            self.sealed += 1;
        }
    }

    pub fn merge(&mut self, o: &Stats) {
        self.counts.merge(&o.counts);
        if !self.busy && !o.busy && self.held.len() + o.held.len() <= HELD_VALUES {
            self.held.extend_from_slice(&o.held);
        } else {
            self.get_busy();
            for &x in &o.held {
                self.record_held(x);
            }
            self.flush();
        }
        for k in 0..6 {
            if let Some(t) = &o.timers[k] {
                match &mut self.timers[k] {
                    Some(mine) => mine.merge(t),
                    None => self.timers[k] = Some(t.clone()),
                }
            }
        }
        self.last = match (self.last, o.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        // Sealed minutes are in `o`'s totals, added above: they join the
        // sealed run. Open ones go in as pieces of their own (merged with
        // the other pieces of their minute on the way to the store).
        for (i, (k, m)) in o.minutes.iter().enumerate() {
            if i < o.sealed {
                self.minutes.insert(self.sealed, (*k, m.clone()));
                self.sealed += 1;
            } else {
                self.minutes.push((*k, m.clone()));
            }
        }
    }

    /// See `TimerStats::flush`.
    pub fn flush(&mut self) {
        for t in self.timers.iter_mut().flatten() {
            t.flush();
        }
    }

    /// Timer `t`'s distribution (`None` if no request had it); built for
    /// the occasion while the server holds its values as logged.
    pub fn timer(&self, t: Timer) -> Option<std::borrow::Cow<'_, TimerStats>> {
        use std::borrow::Cow;
        if self.busy {
            return self.timers[t as usize].as_deref().map(Cow::Borrowed);
        }
        let mut values = self.held(t).peekable();
        values.peek()?;
        let mut timer = TimerStats::new();
        for v in values {
            timer.record(v);
        }
        timer.flush();
        Some(Cow::Owned(timer))
    }
}

/// Adds `n` to a termination state's count. A handful of distinct states
/// in practice, so a linear scan beats a hash map.
#[inline]
pub fn count_termination(counts: &mut Vec<([u8; 4], u64)>, code: [u8; 4], n: u64) {
    match counts.iter_mut().find(|(c, _)| *c == code) {
        Some((_, k)) => *k += n,
        None => counts.push((code, n)),
    }
}

/// A termination state in 4 bytes (NUL-padded), as counted.
#[inline]
pub fn pack(t: &[u8]) -> [u8; 4] {
    // A load, not a memcpy of a variable length: HTTP's four letters and
    // TCP's two (one line in eleven of a mixed log called memcpy).
    match *t {
        [a, b, c, d, ..] => [a, b, c, d],
        [a, b, c] => [a, b, c, 0],
        [a, b] => [a, b, 0, 0],
        [a] => [a, 0, 0, 0],
        [] => [0; 4],
    }
}

pub fn termination_str(code: &[u8; 4]) -> String {
    let n = code.iter().position(|&c| c == 0).unwrap_or(4);
    String::from_utf8_lossy(&code[..n]).into_owned()
}

/// Stats per server, looked up by a hash of the raw key bytes so that a
/// request line costs no allocation and no copy once its server is known.
#[derive(Debug, Default)]
pub struct Aggregates {
    /// Hash of (host, backend, server) -> index in `servers`. A hash shared
    /// by two different keys (never seen in practice, but possible) sends
    /// the second one to a linear search.
    index: FxHashMap<u64, usize>,
    pub servers: Vec<(ServerKey, Stats)>,
    /// The key bytes as logged (names need not be UTF-8), beside `servers`.
    raw: Vec<[Box<[u8]>; 3]>,
    /// Beside `servers`: the readers whose `touched` list has it.
    touched_flag: Vec<u8>,
    /// Servers a request was added to since each reader took them
    /// (indices into `servers`, each once per reader).
    pub touched: Touched<usize>,
    /// A name was not UTF-8: its key is a lossy copy, which the index (by
    /// the bytes logged) cannot find.
    lossy: bool,
}

/// One hash of the three names (see [`name_hash`]): each name's hash
/// rotated apart, so that `a/b` and `b/a` differ.
#[inline(always)]
fn key_hash(host: &[u8], backend: &[u8], server: &[u8]) -> u64 {
    name_hash(host) ^ name_hash(backend).rotate_left(21) ^ name_hash(server).rotate_left(42)
}

#[inline(always)]
fn is(raw: &[Box<[u8]>; 3], host: &[u8], backend: &[u8], server: &[u8]) -> bool {
    same(&raw[2], server) && same(&raw[1], backend) && same(&raw[0], host)
}

impl Aggregates {
    pub fn flush(&mut self) {
        for (_, s) in &mut self.servers {
            s.flush();
        }
    }

    /// Where a server is, if it is here (no allocation), and the hash of
    /// its key for [`Aggregates::insert`]: one hash and one probe a line.
    #[inline]
    pub fn position(&self, host: &[u8], backend: &[u8], server: &[u8]) -> (Option<usize>, u64) {
        let h = key_hash(host, backend, server);
        let at = match self.index.get(&h) {
            Some(&i) if is(&self.raw[i], host, backend, server) => Some(i),
            // A hash shared by two keys: a scan.
            Some(_) => self.raw.iter().position(|k| is(k, host, backend, server)),
            None => None,
        };
        (at, h)
    }

    /// Whether a server is already here (no allocation).
    pub fn contains(&self, host: &[u8], backend: &[u8], server: &[u8]) -> bool {
        self.position(host, backend, server).0.is_some()
    }

    /// Adds a server not here yet ([`Aggregates::position`] said so and
    /// gave `h`); returns its index.
    pub fn insert(&mut self, h: u64, host: &[u8], backend: &[u8], server: &[u8]) -> usize {
        self.lossy |= [host, backend, server]
            .iter()
            .any(|b| std::str::from_utf8(b).is_err());
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let key = ServerKey {
            host: s(host),
            backend: s(backend),
            server: s(server),
        };
        self.servers.push((key, Stats::default()));
        self.raw.push([host.into(), backend.into(), server.into()]);
        self.touched_flag.push(0);
        let i = self.servers.len() - 1;
        self.index.entry(h).or_insert(i);
        i
    }

    /// The server at `idx`, marked touched (a request is being added).
    #[inline]
    pub fn at(&mut self, idx: usize) -> &mut Stats {
        self.touched.mark(&mut self.touched_flag[idx], || idx);
        &mut self.servers[idx].1
    }

    pub fn entry(&mut self, host: &[u8], backend: &[u8], server: &[u8]) -> &mut Stats {
        let idx = match self.position(host, backend, server) {
            (Some(i), _) => i,
            (None, h) => self.insert(h, host, backend, server),
        };
        self.at(idx)
    }

    /// The servers a request was added to since `reader` last took them
    /// (indices into `servers`).
    pub fn take_touched(&mut self, reader: Reader) -> Vec<usize> {
        let idx = self.touched.take(reader);
        for &i in &idx {
            self.touched_flag[i] &= !reader.bit();
        }
        idx
    }

    /// A server's totals by its key (a hash lookup; a name that is not
    /// UTF-8, whose key is a lossy copy, is found by a scan).
    pub fn find(&self, k: &ServerKey) -> Option<&Stats> {
        let h = key_hash(k.host.as_bytes(), k.backend.as_bytes(), k.server.as_bytes());
        match self.index.get(&h) {
            Some(&i) if self.servers[i].0 == *k => Some(&self.servers[i].1),
            None if !self.lossy => None,
            // A hash shared by two keys, or a lossy key.
            _ => self
                .servers
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, s)| s),
        }
    }

    /// Server-minutes recorded since the last drain.
    pub fn open_minutes(&self) -> usize {
        self.servers.iter().map(|(_, s)| s.minutes.len()).sum()
    }

    /// Takes every server's minutes out (for the store), oldest first.
    pub fn drain_minutes(&mut self) -> Vec<Rollup> {
        let mut out = Vec::with_capacity(self.open_minutes());
        for (key, s) in &mut self.servers {
            let sealed = std::mem::take(&mut s.sealed);
            let mut minutes = std::mem::take(&mut s.minutes);
            if minutes.is_empty() {
                // Quiet since the last drain: its room goes back.
                continue;
            }
            for (i, (minute, data)) in minutes.drain(..).enumerate() {
                if i >= sealed {
                    s.absorb(&data);
                }
                out.push(Rollup {
                    key: key.clone(),
                    minute,
                    data,
                });
            }
            // The room for the next minutes, kept while the server is busy:
            // a live feed drains every server at each commit and its next
            // request would allocate it again (with 10,000 busy servers, a
            // sixth of the engine thread's time in `malloc`). Not past a
            // few minutes' room: a server that once held many gives it back,
            // and so does one quiet until the next drain.
            if minutes.capacity() <= KEPT_MINUTES {
                s.minutes = minutes;
            }
        }
        out.sort_by_key(|r| r.minute);
        out
    }

    /// Gives back the room [`Aggregates::drain_minutes`] keeps for the
    /// next minutes: no more will come (a worker at the end of its input;
    /// a report of 100,000 servers would otherwise hold 1 KB more each).
    pub fn release_minute_room(&mut self) {
        for (_, s) in &mut self.servers {
            if s.minutes.is_empty() {
                s.minutes = Vec::new();
            }
        }
    }

    pub fn merge(&mut self, other: Aggregates) {
        for ((_, mut s), [h, b, srv]) in other.servers.into_iter().zip(other.raw) {
            s.flush();
            self.entry(&h, &b, &srv).merge(&s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hundred_thousand_servers_each_have_a_hash_of_their_own() {
        // Names as fleets write them: short ones a digit apart, long ones
        // that differ only in the middle, hosts that share a prefix.
        let mut a = Aggregates::default();
        let key = |i: usize| {
            let host = format!("lb{}.eu-west-1.internal", i % 7);
            let backend = match i % 3 {
                0 => format!("be{}", i % 50),
                1 => format!("k8s-default-svc-{:03}-http", i % 200),
                _ => "api".to_string(),
            };
            let server = match i % 2 {
                0 => format!("srv{i}"),
                _ => format!("pod-{i:06}-web-production"),
            };
            (host, backend, server)
        };
        for i in 0..100_000 {
            let (h, b, s) = key(i);
            let (at, hash) = a.position(h.as_bytes(), b.as_bytes(), s.as_bytes());
            assert_eq!(at, None, "{h}/{b}/{s} is new");
            assert_eq!(a.insert(hash, h.as_bytes(), b.as_bytes(), s.as_bytes()), i);
        }
        // No two keys share a hash: none is left to the linear scan.
        assert_eq!(a.index.len(), 100_000);
        for i in (0..100_000).step_by(997) {
            let (h, b, s) = key(i);
            assert_eq!(
                a.position(h.as_bytes(), b.as_bytes(), s.as_bytes()).0,
                Some(i)
            );
        }
        assert_eq!(
            a.position(b"lb0.eu-west-1.internal", b"api", b"srv0").0,
            None
        );
    }

    /// HTTP requests whose timers are `v`, `v + 1`, ..., `v + 5`.
    fn requests(values: impl Iterator<Item = i64>) -> Stats {
        let mut s = Stats::default();
        for v in values {
            let mut r = Request::new(crate::haproxy::Mode::Http);
            r.timers = [v, v + 1, v + 2, v + 3, v + 4, v + 5];
            s.add(&r);
        }
        s
    }

    /// Each timer's count, p50, p99, max and sum, as the report reads them.
    fn figures(s: &Stats) -> Vec<(u64, u64, u64, u64, u64)> {
        Timer::ALL
            .iter()
            .map(|&t| {
                let t = s.timer(t).expect("every timer logged");
                (t.count(), t.quantile(0.5), t.quantile(0.99), t.max, t.sum)
            })
            .collect()
    }

    #[test]
    fn a_quiet_server_holds_its_timers_as_logged_and_reads_as_a_busy_one() {
        // Ten requests: sixty values in one store, no timer of its own
        // (100,000 such servers held six boxed timers each, ~1 KB).
        let quiet = requests((0..10).map(|i| i * 37 % 300));
        assert!(!quiet.busy);
        assert_eq!(quiet.held.len(), 60);
        assert!(quiet.timers.iter().all(Option::is_none));
        let mut busy = quiet.clone();
        busy.get_busy();
        assert!(busy.held.is_empty() && busy.timers.iter().all(Option::is_some));
        assert_eq!(figures(&quiet), figures(&busy));
        // A value too large to hold beside its timer's index makes the
        // server busy, and counts.
        let mut long = requests(0..3);
        long.add(&{
            let mut r = Request::new(crate::haproxy::Mode::Http);
            r.timers[Timer::Tt as usize] = 1 << 30;
            r
        });
        assert!(long.busy);
        assert_eq!(long.timer(Timer::Tt).unwrap().max, 1 << 30);
    }

    #[test]
    fn a_backend_of_quiet_and_busy_servers_reads_every_value() {
        // A busy server of 90 requests first, then two quiet ones (50 and
        // 40 requests, 300 and 240 values held as logged): theirs go into
        // the busy sum's small-value arrays last, and must be read too.
        let servers = [90..180, 0..50, 50..90].map(|r| requests(r.map(|i| i * 7 % 250)));
        assert_eq!(
            servers.iter().map(|s| s.busy).collect::<Vec<_>>(),
            [true, false, false]
        );
        let mut backend = Stats::default();
        for mut s in servers {
            // As the engine hands its servers over: flushed.
            s.flush();
            backend.merge(&s);
        }
        assert!(backend.busy);
        // Two quiet servers whose values together are too many to hold.
        let mut two = requests(0..50);
        two.merge(&requests(50..90));
        assert!(two.busy);
        let mut both = requests(0..90);
        both.flush();
        assert_eq!(figures(&two), figures(&both));
        let mut every = requests((0..180).map(|i| i * 7 % 250));
        every.flush();
        assert_eq!(figures(&backend), figures(&every));
        // Exact: p99 of Tr (v + 3) over these 180 values.
        let mut tr: Vec<u64> = (0..180).map(|i| (i * 7 % 250 + 3) as u64).collect();
        tr.sort_unstable();
        let p99 = tr[(0.99f64 * 180.0).ceil() as usize - 1];
        assert_eq!(backend.timer(Timer::Tr).unwrap().quantile(0.99), p99);
    }

    #[test]
    fn a_small_counter_that_fills_up_is_moved_into_the_histogram() {
        let mut t = TimerStats::new();
        for _ in 0..200_000 {
            t.record(3);
        }
        t.record(1_000);
        t.flush();
        assert_eq!(t.count(), 200_001);
        assert_eq!(t.quantile(0.5), 3);
        assert_eq!(t.hist().count_at(3), 200_000);
    }

    /// A drained minute's tally adds to a server's totals as its values
    /// recorded one by one would: into a timer that is new, one that holds
    /// a few values, one that is busy; counts past a small-value counter's
    /// range (the array flushed for room) and values past the array.
    #[test]
    fn a_tally_adds_as_its_values_recorded_one_by_one() {
        let values = [
            (0, 70_000),
            (3, 5),
            (255, 2),
            (256, 1),
            (511, 3),
            (700, 9),
            (90_000, 1),
        ];
        let mut tally = Tally::default();
        for (v, n) in values {
            for _ in 0..n {
                tally.record(v);
            }
        }
        for before in [0u64, 5, 1_000] {
            let (mut got, mut want) = (TimerStats::new(), TimerStats::new());
            for v in 0..before {
                got.record(v % 300);
                want.record(v % 300);
            }
            for _ in 0..3 {
                got.add_tally(&tally);
                for (v, n) in values {
                    for _ in 0..n {
                        want.record(v);
                    }
                }
            }
            got.flush();
            want.flush();
            assert_eq!(got.count(), want.count(), "{before} before");
            assert_eq!((got.sum, got.max), (want.sum, want.max));
            assert_eq!(*got.hist(), *want.hist(), "{before} before");
        }
    }

    /// A timer seen a few times (most of 100,000 server names) has no
    /// small-value array; one that keeps recording gets it at HOT values,
    /// and the counts are exact either way.
    #[test]
    fn only_a_busy_timer_gets_a_small_value_array() {
        let mut t = TimerStats::new();
        for _ in 0..HOT - 1 {
            t.record(4);
        }
        assert!(t.small.is_empty(), "cold: no 1 KB array");
        for _ in 0..1000 {
            t.record(4);
        }
        assert_eq!(t.small.len(), SMALL, "busy: the array");
        t.flush();
        assert_eq!(t.count(), HOT - 1 + 1000);
        assert_eq!(t.hist().count_at(4), HOT - 1 + 1000);
    }
}

#[cfg(test)]
mod few_values_tests {
    use super::*;

    /// Values as timers look (mostly small, some across bucket edges and
    /// past the small-value array), from a fixed seed.
    fn values(seed: u64, n: usize) -> Vec<u64> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match (x >> 60) % 4 {
                    0 => (x >> 33) % 10,
                    1 => 250 + (x >> 33) % 20,
                    2 => 500 + (x >> 33) % 40,
                    _ => (x >> 33) % 70_000,
                }
            })
            .collect()
    }

    fn histogram(v: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new(2).unwrap();
        for &x in v {
            h.record(x).unwrap();
        }
        h
    }

    fn assert_same(t: &TimerStats, v: &[u64], what: &str) {
        let h = histogram(v);
        assert_eq!(t.count(), v.len() as u64, "{what}");
        assert_eq!(t.sum, v.iter().sum::<u64>(), "{what}");
        assert_eq!(t.max, v.iter().copied().max().unwrap_or(0), "{what}");
        for q in [0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(t.quantile(q), h.value_at_quantile(q), "{what}: q {q}");
        }
        assert_eq!(*t.hist(), h, "{what}");
        let recorded: Vec<(u64, u64)> = h
            .iter_recorded()
            .map(|x| {
                (
                    h.lowest_equivalent(x.value_iterated_to()),
                    x.count_at_value(),
                )
            })
            .collect();
        let mut seen = Vec::new();
        t.for_each_recorded(|v, n| seen.push((v, n)));
        assert_eq!(seen, recorded, "{what}");
    }

    /// A busy timer read without a flush (what `/metrics` does at every
    /// publication) gives the values a flushed one gives: added up by
    /// bucket, the same counts, values waiting in the small-value array
    /// included (those above 255 ms share a bucket two by two).
    #[test]
    fn a_timer_read_unflushed_holds_the_values_of_the_flushed_one() {
        for (seed, n) in [(1, 70), (2, 500), (3, 5000)] {
            let v = values(seed, n);
            let mut t = TimerStats::new();
            for (i, &x) in v.iter().enumerate() {
                t.record(x);
                // Flushed midway: some values in the histogram, the rest
                // waiting in the array.
                if i == n / 2 {
                    t.flush();
                }
            }
            assert!(!t.is_flushed(), "{n} values: some wait");
            let mut held = std::collections::BTreeMap::new();
            t.for_each_held(|low, k| *held.entry(low).or_insert(0) += k);
            let mut flushed = t.clone();
            flushed.flush();
            let mut recorded = std::collections::BTreeMap::new();
            flushed.for_each_recorded(|low, k| {
                recorded.insert(low, k);
            });
            assert_eq!(held, recorded, "{n} values");
            assert_eq!(held.values().sum::<u64>(), n as u64);
        }
    }

    /// A timer of a few values holds them as recorded and answers as the
    /// histogram it no longer builds would, before and after it builds one
    /// (at HOT values), and whatever its values were merged with.
    #[test]
    fn a_timer_of_a_few_values_answers_as_its_histogram() {
        for n in [1, 2, 3, 7, 8, 9, 31, 62, 63, 64, 65, 130, 1000] {
            for seed in 0..20 {
                let v = values(seed * 1000 + n as u64, n);
                let mut t = TimerStats::new();
                for &x in &v {
                    t.record(x);
                }
                t.flush();
                assert_eq!(
                    matches!(t.dist, Dist::Few(_)),
                    n < HOT as usize,
                    "{n} values: held as recorded below HOT"
                );
                assert_same(&t, &v, &format!("{n} values, seed {seed}"));
                // Merged with another of a few or of many, both ways round.
                for m in [1, 5, 40, 63, 200] {
                    let w = values(seed + 77 * m as u64, m);
                    let mut u = TimerStats::new();
                    for &x in &w {
                        u.record(x);
                    }
                    u.flush();
                    let all: Vec<u64> = v.iter().chain(&w).copied().collect();
                    let mut a = t.clone();
                    a.merge(&u);
                    assert_same(&a, &all, &format!("{n} + {m}, seed {seed}"));
                    let mut b = u.clone();
                    b.merge(&t);
                    assert_same(&b, &all, &format!("{m} + {n}, seed {seed}"));
                    // And recording goes on after a merge.
                    a.record(3);
                    a.record(9_000);
                    a.flush();
                    let more: Vec<u64> = all.iter().copied().chain([3, 9_000]).collect();
                    assert_same(&a, &more, &format!("{n} + {m} + 2, seed {seed}"));
                }
            }
        }
    }

    /// What the few values save: a timer of a few values is its values,
    /// not a histogram's 2 KB of counts.
    #[test]
    fn a_timer_of_a_few_values_holds_no_histogram() {
        let mut t = TimerStats::new();
        for v in 0..HOT - 1 {
            t.record(v * 1000);
        }
        match &t.dist {
            Dist::Few(v) => assert!(v.capacity() <= HOT as usize, "{}", v.capacity()),
            Dist::Hist(_) => panic!("{} values built a histogram", HOT - 1),
        }
        assert!(t.small.is_empty());
        t.record(5);
        assert!(
            matches!(t.dist, Dist::Hist(_)),
            "the HOT-th value builds it"
        );
    }
}

#[cfg(test)]
mod pack_tests {
    use super::*;

    #[test]
    fn a_termination_state_packs_to_its_first_four_bytes() {
        for (t, code, shown) in [
            (&b"----"[..], *b"----", "----"),
            (b"SC--", *b"SC--", "SC--"),
            (b"SCQ", *b"SCQ\0", "SCQ"),
            (b"cD", *b"cD\0\0", "cD"),
            (b"C", *b"C\0\0\0", "C"),
            (b"", [0; 4], ""),
            // A longer word (a custom format's): its first four.
            (b"CDNIx", *b"CDNI", "CDNI"),
        ] {
            assert_eq!(pack(t), code, "{t:?}");
            assert_eq!(termination_str(&pack(t)), shown);
        }
    }
}

#[cfg(test)]
mod sealing_tests {
    use super::*;
    use crate::haproxy::request;

    fn line(minute: u32, tr: u32) -> String {
        format!(
            "127.0.0.1:1 [24/Nov/2026:{:02}:{:02}:01.000] fe be/s1 0/0/1/{tr}/{} 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
            10 + minute / 60,
            minute % 60,
            tr + 1
        )
    }

    /// Aggregates of one server, `be/s1`, whose figures are `s`.
    fn one_server(s: Stats) -> Aggregates {
        let mut aggregates = Aggregates::default();
        let key = ServerKey {
            host: String::new(),
            backend: "be".into(),
            server: "s1".into(),
        };
        aggregates.servers.push((key, s));
        aggregates
            .raw
            .push([Box::default(), Box::default(), Box::default()]);
        aggregates
    }

    #[test]
    fn old_minutes_are_sealed_and_every_request_is_counted_once() {
        let mut with = Stats::default();
        let mut without = Stats::default();
        let mut lines: Vec<String> = (0..30).map(|m| line(m, m + 3)).collect();
        // Logged late: its minute (2) is sealed by then.
        lines.push(line(2, 900));
        lines.push(line(30, 7));
        for l in &lines {
            let r = request::parse(l.as_bytes()).unwrap();
            with.add_with_minute(&r);
            without.add(&r);
        }
        assert!(with.sealed >= 25, "old minutes sealed: {}", with.sealed);
        let mut aggregates = one_server(with);
        let rollups = aggregates.drain_minutes();
        // 31 minutes, minute 2 in two pieces.
        assert_eq!(rollups.len(), 32);
        assert_eq!(
            rollups.iter().map(|r| r.data.counts.requests).sum::<u64>(),
            32
        );
        let mut with = aggregates.servers.pop().unwrap().1;
        with.flush();
        without.flush();
        assert_eq!(with.counts.requests, 32);
        for t in [Timer::Tw, Timer::Tr, Timer::Tt] {
            let figures = |s: &Stats| s.timer(t).map(|x| (x.count(), x.max, x.sum));
            assert_eq!(figures(&with), figures(&without), "{t:?}");
        }
        assert_eq!(with.timer(Timer::Tr).unwrap().max, 900);
    }

    #[test]
    fn each_request_goes_to_its_own_minute_in_any_order() {
        // Accept dates at a minute's first and last millisecond, a request
        // of an older minute still open arriving after a newer one, and one
        // of the minute before the first: each counted in its minute, an
        // open minute in one piece.
        let at = |hms: &str| {
            format!("127.0.0.1:1 [24/Nov/2026:{hms}] fe be/s1 0/0/1/5/6 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"")
        };
        let dates = [
            "10:00:00.000",
            "10:00:59.999",
            "10:01:00.000",
            "10:00:30.000",
            "10:01:59.999",
            "09:59:59.999",
            "10:02:00.000",
            "10:01:00.001",
        ];
        let mut s = Stats::default();
        for d in dates {
            s.add_with_minute(&request::parse(at(d).as_bytes()).unwrap());
        }
        let per_minute: Vec<(String, u64)> = one_server(s)
            .drain_minutes()
            .iter()
            .map(|r| {
                (
                    crate::time::format_rfc3339_ms(r.minute),
                    r.data.counts.requests,
                )
            })
            .collect();
        let minute = |m: &str| format!("2026-11-24T{m}:00.000Z");
        assert_eq!(
            per_minute,
            [
                (minute("09:59"), 1),
                (minute("10:00"), 3),
                (minute("10:01"), 3),
                (minute("10:02"), 1)
            ]
        );
    }
}
