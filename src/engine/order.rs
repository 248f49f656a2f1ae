//! Health events in event-time order, each once.
//!
//! Over UDP, or from several senders, a message can overtake another by a
//! little; a reconnecting sender, a second log path or a file read twice
//! delivers the same message again. [`Reorder`] holds each health event for
//! `window` of event time (default 2 s), releases them in (event time,
//! arrival) order, and drops a message already seen with the same event time
//! from the same host. Arrival order breaks ties, so a check line and the
//! state line it explains, logged in the same millisecond, stay in order.
//!
//! A message older than what was already released ("late": beyond the
//! window) is still applied, in arrival order, and counted; the state
//! machine never counts negative durations for it.
//!
//! HAProxy run in the foreground (`-db`, as container images and systemd
//! units run it) with its log on its own stdout or stderr writes each
//! change twice into what the runtime collects: a console message,
//! `[WARNING]  (8) : Server be/s1 is DOWN, ...`, with no time of its own,
//! and the log line. [`Reorder::push_from`] takes the two for one message:
//! the later copy is a duplicate, unless it is the log line with a time and
//! the console copy, timed by the line before it, is still held: then the
//! log line stands in for it. A copy's pair comes within a few messages
//! (a runtime that reads stdout and stderr apart may put lines between
//! them), in the same order on both outputs; a message whose pair never
//! comes (a `log` line's level filter) stays one message.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rustc_hash::FxHashMap;

use crate::time::Millis;

pub const DEFAULT_WINDOW_MS: Millis = 2_000;

/// How long (event time) a message is remembered to recognise a duplicate:
/// long enough for a sender that reconnects and re-sends its last minute.
const REMEMBER_MS: Millis = 5 * 60_000;
/// And at most this many messages, whatever their times.
const REMEMBER_MAX: usize = 100_000;

/// A console message and its log line are a pair when at most this many
/// messages came in between: the two are written one after the other.
const PAIR_WITHIN: u64 = 64;
/// And, when both carry a time, at most this far apart (HAProxy before 2.3
/// timed its console messages to the second, the log to the millisecond).
const PAIR_MS: Millis = 10_000;

/// Which of HAProxy's outputs wrote a health message: the log, or the
/// console (stderr, `[WARNING]  (pid) : ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Log = 0,
    Console = 1,
}

/// Where a health message came from, to find its copy on the other output.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub output: Output,
    /// Its text as both outputs write it (see `engine::origin`).
    pub text: u64,
    /// Its host, if its line names one: HAProxy's stderr names none, the
    /// log lines beside it may (`log stderr format rfc3164`: `localhost`),
    /// and the two copies are still one message.
    pub host: Option<u64>,
    /// The HAProxy process that wrote it: the console's `(8)`, the log
    /// header's `haproxy[8]`.
    pub pid: Option<u32>,
    /// Dated by its line (a log's header, an envelope), not by the line
    /// before it or its arrival.
    pub timed: bool,
    /// Counted in `input.untimed` (no time at all, or its arrival's): to
    /// be taken back from there when its copy stands in with a time.
    pub counted_untimed: bool,
    /// What it is about (its host, backend and server), to tell the same
    /// message again from a copy ([`Reorder::push_about`]).
    pub subject: Option<u64>,
}

/// What [`Reorder::push_from`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The copy of one already queued or released: dropped.
    Duplicate,
    /// Queued in place of its copy from the console, which had no time;
    /// whether that copy was counted in `input.untimed`.
    InsteadOf {
        counted_untimed: bool,
    },
}

/// A message whose copy from the other output has not come (yet).
#[derive(Clone, Copy, Debug)]
struct Unpaired {
    text: u64,
    host: Option<u64>,
    /// Its arrival number in the window.
    seq: u64,
    at: Millis,
    timed: bool,
    counted_untimed: bool,
}

#[derive(Debug)]
pub struct Reorder<T> {
    window: Millis,
    /// (event time, arrival) -> index in `items`.
    heap: BinaryHeap<Reverse<(Millis, u64)>>,
    items: rustc_hash::FxHashMap<u64, (T, std::time::Instant)>,
    arrivals: u64,
    /// Events released so far.
    popped: u64,
    /// Newest event time pushed: what is older than `newest - window` goes.
    newest: Option<Millis>,
    /// Event time of the last released event.
    released: Option<Millis>,
    /// Messages seen (event time, fingerprint), with the number of events
    /// their subject had when each was last taken.
    seen: FxHashMap<(Millis, u64), u64>,
    seen_order: VecDeque<(Millis, u64)>,
    /// Per subject, the events taken and the newest one's time.
    subjects: FxHashMap<u64, (u64, Millis)>,
    /// Per [`Output`], the recent messages still without their copy.
    unpaired: [VecDeque<Unpaired>; 2],
    pub duplicates: u64,
    pub late: u64,
}

impl<T> Reorder<T> {
    pub fn new(window: Millis) -> Self {
        Reorder {
            window: window.max(0),
            heap: BinaryHeap::new(),
            items: Default::default(),
            arrivals: 0,
            popped: 0,
            newest: None,
            released: None,
            seen: Default::default(),
            seen_order: VecDeque::new(),
            subjects: Default::default(),
            unpaired: Default::default(),
            duplicates: 0,
            late: 0,
        }
    }

    /// Queues an event at event time `at`; `fingerprint` identifies the
    /// message (host and text). Returns false for a duplicate (dropped).
    pub fn push(&mut self, at: Millis, fingerprint: u64, item: T) -> bool {
        self.push_about(at, fingerprint, None, item)
    }

    /// [`Reorder::push`] of a message about `subject` (a server): one seen
    /// with the same time is a copy, unless its subject had another event
    /// of that same time since. A log dated to the second (rsyslog's
    /// traditional file format) writes a server that goes DOWN, UP and
    /// DOWN again within one second as two identical DOWN lines with its
    /// UP between: the second is the server's state, not a copy. Copies
    /// (a second log path, a sender that re-sends its backlog) come with
    /// nothing about the server between, or after its newer events.
    pub fn push_about(
        &mut self,
        at: Millis,
        fingerprint: u64,
        subject: Option<u64>,
        item: T,
    ) -> bool {
        match self.seen.get(&(at, fingerprint)) {
            Some(&taken) => {
                let again = (subject.and_then(|s| self.subjects.get(&s)))
                    .is_some_and(|&(n, newest)| n != taken && newest == at);
                if !again {
                    self.duplicates += 1;
                    return false;
                }
            }
            None => self.seen_order.push_back((at, fingerprint)),
        }
        let taken = subject.map_or(0, |s| {
            let (n, newest) = self.subjects.entry(s).or_insert((0, at));
            *n += 1;
            *newest = (*newest).max(at);
            *n
        });
        self.seen.insert((at, fingerprint), taken);
        self.forget(at);
        if self.released.is_some_and(|r| at < r) {
            self.late += 1;
        }
        self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
        let seq = self.arrivals;
        self.arrivals += 1;
        self.heap.push(Reverse((at, seq)));
        self.items.insert(seq, (item, std::time::Instant::now()));
        true
    }

    /// [`Reorder::push`] for a message from one of HAProxy's outputs:
    /// dropped (and counted a duplicate) when it is the copy of one the
    /// other output wrote, or, when `stand_in`, standing in for that copy
    /// if it has a time and the copy had none (see the module's doc).
    /// Live, a copy timed by its arrival is on time, and may have been
    /// announced ahead of the window already: it keeps its place.
    pub fn push_from(
        &mut self,
        at: Millis,
        fingerprint: u64,
        (origin, stand_in): (Origin, bool),
        item: T,
    ) -> Pushed {
        let arrivals = self.arrivals;
        let other = &mut self.unpaired[1 - origin.output as usize];
        while other
            .front()
            .is_some_and(|u| arrivals - u.seq > PAIR_WITHIN)
        {
            other.pop_front();
        }
        let pair = other.iter().position(|u| {
            let host = u.host == origin.host || u.host.is_none() || origin.host.is_none();
            let near = !(u.timed && origin.timed) || (u.at - at).abs() <= PAIR_MS;
            u.text == origin.text && host && near
        });
        if let Some(i) = pair {
            // Both outputs keep HAProxy's order: those before the pair
            // will not get theirs.
            let twin = other.drain(..=i).next_back().expect("paired");
            let replaces = stand_in
                && origin.timed
                && !twin.timed
                && !self.seen.contains_key(&(at, fingerprint));
            self.duplicates += 1;
            if replaces && self.withdraw(twin.seq) {
                self.push_about(at, fingerprint, origin.subject, item);
                return Pushed::InsteadOf {
                    counted_untimed: twin.counted_untimed,
                };
            }
            return Pushed::Duplicate;
        }
        if !self.push_about(at, fingerprint, origin.subject, item) {
            return Pushed::Duplicate;
        }
        let mine = &mut self.unpaired[origin.output as usize];
        if mine.len() as u64 >= PAIR_WITHIN {
            mine.pop_front();
        }
        mine.push_back(Unpaired {
            text: origin.text,
            host: origin.host,
            seq: arrivals,
            at,
            timed: origin.timed,
            counted_untimed: origin.counted_untimed,
        });
        Pushed::Queued
    }

    /// Takes back a held event (its copy stands in for it); false when it
    /// was released already.
    fn withdraw(&mut self, seq: u64) -> bool {
        if self.items.remove(&seq).is_none() {
            return false;
        }
        self.heap.retain(|Reverse((_, s))| *s != seq);
        true
    }

    fn forget(&mut self, now: Millis) {
        let horizon = self.newest.unwrap_or(now).max(now) - REMEMBER_MS.max(self.window);
        while let Some(&(t, fp)) = self.seen_order.front() {
            if t >= horizon && self.seen_order.len() <= REMEMBER_MAX {
                break;
            }
            self.seen_order.pop_front();
            self.seen.remove(&(t, fp));
        }
        // Subjects are servers, but hostile lines name any number of them:
        // the quiet ones are forgotten past twice the bound (a subject
        // forgotten makes its copies copies again, as without subjects).
        if self.subjects.len() > 2 * REMEMBER_MAX {
            self.subjects.retain(|_, (_, newest)| *newest >= horizon);
            if self.subjects.len() > REMEMBER_MAX {
                self.subjects.clear();
            }
        }
    }

    /// Moves the watermark without an event (request lines' times).
    pub fn advance(&mut self, t: Millis) {
        if self.newest.is_some_and(|n| t > n) {
            self.newest = Some(t);
        }
    }

    /// The next event whose window has passed, given the newest event time
    /// seen (offline, and live while traffic flows).
    pub fn pop_ready(&mut self) -> Option<(Millis, T)> {
        let newest = self.newest?;
        let &Reverse((at, _)) = self.heap.peek()?;
        // A late event (older than what was released) goes at once.
        let late = self.released.is_some_and(|r| at < r);
        if at > newest - self.window && !late {
            return None;
        }
        self.pop()
    }

    /// The next event whatever its time: at the end of the input, or live
    /// when the wall clock says the window has passed with no newer event.
    pub fn pop(&mut self) -> Option<(Millis, T)> {
        let Reverse((at, seq)) = self.heap.pop()?;
        self.popped += 1;
        self.released = Some(self.released.map_or(at, |r| r.max(at)));
        Some((at, self.items.remove(&seq).expect("queued item").0))
    }

    /// Live: the event time up to which events may go because one of them
    /// arrived at least `wait` ago (wall clock): whatever could still
    /// overtake it has had the window's length to arrive. Release with
    /// [`Reorder::pop_until`].
    pub fn waited(&self, wait: std::time::Duration) -> Option<Millis> {
        let now = std::time::Instant::now();
        self.heap
            .iter()
            .filter(|Reverse((_, seq))| {
                self.items
                    .get(seq)
                    .is_some_and(|(_, arrived)| now.duration_since(*arrived) >= wait)
            })
            .map(|Reverse((at, _))| *at)
            .max()
    }

    /// The next event at or before `t`, in event-time order.
    pub fn pop_until(&mut self, t: Millis) -> Option<(Millis, T)> {
        let &Reverse((at, _)) = self.heap.peek()?;
        if at > t {
            return None;
        }
        self.pop()
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Changes whenever an event comes in or goes: whether what the window
    /// holds may differ from when this was last read.
    pub fn version(&self) -> (u64, u64) {
        (self.arrivals, self.popped)
    }

    /// Event time of the next event to go, and of the newest released.
    pub fn next_and_released(&self) -> (Option<Millis>, Option<Millis>) {
        (self.heap.peek().map(|Reverse((at, _))| *at), self.released)
    }

    /// The events waiting, in the order they will be released.
    pub fn held(&self) -> Vec<(Millis, &T)> {
        let mut keys: Vec<(Millis, u64)> = self.heap.iter().map(|Reverse(k)| *k).collect();
        keys.sort_unstable();
        keys.into_iter()
            .map(|(at, seq)| (at, &self.items[&seq].0))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(r: &mut Reorder<&'static str>) -> Vec<(Millis, &'static str)> {
        std::iter::from_fn(|| r.pop()).collect()
    }

    #[test]
    fn overtaken_events_are_put_back_in_order() {
        let mut r = Reorder::new(2_000);
        r.push(10_000, 1, "down");
        r.push(9_500, 2, "check failed"); // arrived 500 ms late over UDP
        assert_eq!(r.pop_ready(), None, "both still inside the window");
        r.push(12_100, 3, "up");
        assert_eq!(r.pop_ready(), Some((9_500, "check failed")));
        assert_eq!(r.pop_ready(), Some((10_000, "down")));
        assert_eq!(r.pop_ready(), None);
        assert_eq!(drain(&mut r), vec![(12_100, "up")]);
        assert_eq!(r.late, 0);
    }

    #[test]
    fn held_events_are_listed_in_release_order() {
        let mut r = Reorder::new(2_000);
        r.push(10_000, 1, "down");
        r.push(9_500, 2, "check");
        r.push(10_000, 3, "no server");
        assert_eq!(
            r.held(),
            vec![(9_500, &"check"), (10_000, &"down"), (10_000, &"no server")]
        );
        assert_eq!(r.len(), 3, "listing releases nothing");
    }

    #[test]
    fn same_time_keeps_arrival_order() {
        let mut r = Reorder::new(2_000);
        r.push(5_000, 1, "check line");
        r.push(5_000, 2, "state line");
        assert_eq!(
            drain(&mut r),
            vec![(5_000, "check line"), (5_000, "state line")]
        );
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut r = Reorder::new(2_000);
        assert!(r.push(5_000, 7, "down"));
        assert!(!r.push(5_000, 7, "down again"));
        assert!(r.push(6_000, 7, "same text, later: a new event"));
        assert_eq!(r.duplicates, 1);
        assert_eq!(drain(&mut r).len(), 2);
        // Remembered after release too (a sender re-sending its backlog).
        assert!(!r.push(5_000, 7, "down, third copy"));
    }

    /// Times to the second: a server DOWN, UP and DOWN again in one second
    /// is three events; the same three delivered twice, interleaved (two
    /// log paths) or re-sent once the server has moved on, are still three.
    #[test]
    fn the_same_message_again_after_its_server_changed_is_an_event() {
        let (down, up, s1, s2) = (7, 8, Some(1), Some(2));
        let mut r = Reorder::new(2_000);
        assert!(r.push_about(5_000, down, s1, "down"));
        assert!(r.push_about(5_000, up, s1, "up"));
        assert!(r.push_about(5_000, down, s1, "down again"));
        assert!(!r.push_about(5_000, down, s1, "its copy"));
        // Another server's events do not make a copy of this one new.
        assert!(r.push_about(5_000, 9, s2, "s2 down"));
        assert!(!r.push_about(5_000, down, s1, "a copy still"));
        // s1 moved on: its backlog re-sent is copies.
        assert!(r.push_about(6_000, up, s1, "up, later"));
        for fp in [down, up, down] {
            assert!(!r.push_about(5_000, fp, s1, "re-sent"));
        }
        assert_eq!(r.duplicates, 5);
        let order: Vec<_> = drain(&mut r).into_iter().map(|(_, w)| w).collect();
        assert_eq!(order, ["down", "up", "down again", "s2 down", "up, later"]);
        // Interleaved copies of the three.
        let mut r = Reorder::new(2_000);
        for fp in [down, down, up, up, down, down] {
            r.push_about(5_000, fp, s1, "x");
        }
        assert_eq!((drain(&mut r).len(), r.duplicates), (3, 3));
    }

    #[test]
    fn late_events_are_released_at_once_and_counted() {
        let mut r = Reorder::new(2_000);
        r.push(10_000, 1, "a");
        r.push(20_000, 2, "b");
        assert_eq!(r.pop_ready(), Some((10_000, "a")));
        r.push(9_000, 3, "late");
        assert_eq!(r.late, 1);
        assert_eq!(r.pop_ready(), Some((9_000, "late")));
    }

    #[test]
    fn live_events_go_once_they_have_waited_the_window() {
        let mut r = Reorder::new(60_000);
        r.push(5_000, 1, "b");
        r.push(4_000, 2, "a, overtaken");
        assert_eq!(r.waited(std::time::Duration::from_millis(30)), None);
        std::thread::sleep(std::time::Duration::from_millis(40));
        r.push(4_500, 3, "c, just arrived");
        let t = r.waited(std::time::Duration::from_millis(30)).unwrap();
        assert_eq!(t, 5_000);
        let out: Vec<_> = std::iter::from_fn(|| r.pop_until(t)).collect();
        // Everything up to the waited event, in event-time order.
        assert_eq!(
            out,
            vec![
                (4_000, "a, overtaken"),
                (4_500, "c, just arrived"),
                (5_000, "b")
            ]
        );
    }

    /// A message from `output`, offline (a timed copy stands in).
    fn said(output: Output, text: u64, timed: bool) -> (Origin, bool) {
        let origin = Origin {
            output,
            text,
            host: Some(1),
            pid: None,
            timed,
            counted_untimed: false,
            subject: None,
        };
        (origin, true)
    }
    const LOG: Output = Output::Log;
    const CONSOLE: Output = Output::Console;

    #[test]
    fn a_log_line_with_a_time_stands_in_for_its_console_copy() {
        let mut r = Reorder::new(2_000);
        // `[WARNING]  (8) : Server be/s1 is DOWN` timed by the line before.
        assert_eq!(
            r.push_from(9_000, 1, said(CONSOLE, 7, false), "console"),
            Pushed::Queued
        );
        assert_eq!(
            r.push_from(9_400, 2, said(LOG, 7, true), "log"),
            Pushed::InsteadOf {
                counted_untimed: false
            }
        );
        assert_eq!(drain(&mut r), vec![(9_400, "log")]);
        assert_eq!(r.duplicates, 1);
        // Live, the console copy, timed by its arrival, keeps its place.
        let live = |(o, _): (Origin, bool)| (o, false);
        r.push_from(19_000, 3, live(said(CONSOLE, 8, false)), "console");
        let log = r.push_from(18_990, 4, live(said(LOG, 8, true)), "log");
        assert_eq!(log, Pushed::Duplicate);
        assert_eq!(drain(&mut r), vec![(19_000, "console")]);
    }

    #[test]
    fn copies_read_apart_pair_in_order_and_a_real_repeat_stays() {
        let mut r = Reorder::new(2_000);
        // A runtime reading stdout and stderr apart: the log's DOWN, UP,
        // DOWN first, then the console's; all timed by their envelope.
        for (at, text, what) in [
            (1_000, 1, "down"),
            (2_000, 2, "up"),
            (3_000, 1, "down again"),
        ] {
            assert_eq!(
                r.push_from(at, at as u64, said(LOG, text, true), what),
                Pushed::Queued
            );
        }
        for (at, text) in [(1_001, 1), (2_001, 2), (3_001, 1)] {
            let p = r.push_from(at, 100 + at as u64, said(CONSOLE, text, true), "copy");
            assert_eq!(p, Pushed::Duplicate, "{at}");
        }
        assert_eq!(
            drain(&mut r),
            vec![(1_000, "down"), (2_000, "up"), (3_000, "down again")]
        );
        // One output alone never pairs: the same text twice is two events.
        let mut r = Reorder::new(2_000);
        r.push_from(1_000, 1, said(CONSOLE, 1, false), "down");
        r.push_from(1_000, 2, said(CONSOLE, 1, false), "down again");
        assert_eq!(drain(&mut r).len(), 2);
    }

    #[test]
    fn a_message_whose_copy_never_comes_stays_one_message() {
        let mut r = Reorder::new(2_000);
        // The log's level filter keeps DOWN (alert), not UP (notice).
        r.push_from(1_000, 1, said(CONSOLE, 1, true), "down");
        r.push_from(1_000, 2, said(LOG, 1, true), "down, log");
        r.push_from(2_000, 3, said(CONSOLE, 2, true), "up");
        r.push_from(3_000, 4, said(CONSOLE, 1, true), "down again");
        r.push_from(3_000, 5, said(LOG, 1, true), "down again, log");
        assert_eq!(
            drain(&mut r),
            vec![(1_000, "down"), (2_000, "up"), (3_000, "down again")]
        );
        // Too far apart, or too many messages between: not a pair.
        let mut r = Reorder::new(0);
        r.push_from(1_000, 1, said(CONSOLE, 1, true), "down");
        let later = r.push_from(1_000 + PAIR_MS + 1, 2, said(LOG, 1, true), "down, later");
        assert_eq!(later, Pushed::Queued);
        let mut r = Reorder::new(0);
        r.push_from(0, 0, said(CONSOLE, 1, false), "down");
        for i in 1..=PAIR_WITHIN {
            r.push_from(0, i, said(CONSOLE, 2 + i, false), "other");
        }
        assert_eq!(
            r.push_from(0, 999, said(LOG, 1, true), "down"),
            Pushed::Queued
        );
        assert_eq!(r.duplicates, 0);
    }

    #[test]
    fn a_copy_with_no_host_pairs_with_any_hosts_and_two_hosts_never_pair() {
        let from = |output, host, timed| {
            let (o, stand_in) = said(output, 1, timed);
            (Origin { host, ..o }, stand_in)
        };
        let mut r = Reorder::new(2_000);
        // HAProxy's stderr names no host; `log stderr format rfc3164`
        // writes `localhost`.
        r.push_from(1_000, 1, from(CONSOLE, None, false), "console");
        let log = r.push_from(1_200, 2, from(LOG, Some(7), true), "log");
        assert_eq!(
            log,
            Pushed::InsteadOf {
                counted_untimed: false
            }
        );
        // Two load balancers logging the same text are two events.
        r.push_from(3_000, 3, from(CONSOLE, Some(8), true), "lb2 console");
        let lb1 = r.push_from(3_000, 4, from(LOG, Some(7), true), "lb1 log");
        assert_eq!(lb1, Pushed::Queued);
        assert_eq!(
            drain(&mut r),
            vec![(1_200, "log"), (3_000, "lb2 console"), (3_000, "lb1 log")]
        );
    }

    #[test]
    fn a_console_copy_already_released_keeps_its_place() {
        let mut r = Reorder::new(0);
        r.push_from(5_000, 1, said(CONSOLE, 1, false), "console");
        assert_eq!(r.pop_ready(), Some((5_000, "console")));
        assert_eq!(
            r.push_from(5_300, 2, said(LOG, 1, true), "log"),
            Pushed::Duplicate
        );
        assert!(r.is_empty());
    }

    #[test]
    fn memory_of_duplicates_is_bounded() {
        let mut r = Reorder::new(0);
        for i in 0..(REMEMBER_MAX as i64 + 10) {
            r.push(i, i as u64, ());
            r.pop_ready();
        }
        assert!(r.seen.len() <= REMEMBER_MAX + 1);
        assert!(r.is_empty());
        // A server name a line, all within the time remembered.
        for i in 0..(3 * REMEMBER_MAX as u64) {
            r.push_about(1_000_000, i, Some(i), ());
            r.pop_ready();
        }
        assert!(r.subjects.len() <= 2 * REMEMBER_MAX, "{}", r.subjects.len());
    }
}
