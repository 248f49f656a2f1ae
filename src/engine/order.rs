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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rustc_hash::FxHashSet;

use crate::time::Millis;

pub const DEFAULT_WINDOW_MS: Millis = 2_000;

/// How long (event time) a message is remembered to recognise a duplicate:
/// long enough for a sender that reconnects and re-sends its last minute.
const REMEMBER_MS: Millis = 5 * 60_000;
/// And at most this many messages, whatever their times.
const REMEMBER_MAX: usize = 100_000;

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
    seen: FxHashSet<(Millis, u64)>,
    seen_order: VecDeque<(Millis, u64)>,
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
            duplicates: 0,
            late: 0,
        }
    }

    /// Queues an event at event time `at`; `fingerprint` identifies the
    /// message (host and text). Returns false for a duplicate (dropped).
    pub fn push(&mut self, at: Millis, fingerprint: u64, item: T) -> bool {
        if !self.seen.insert((at, fingerprint)) {
            self.duplicates += 1;
            return false;
        }
        self.seen_order.push_back((at, fingerprint));
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

    fn forget(&mut self, now: Millis) {
        let horizon = self.newest.unwrap_or(now).max(now) - REMEMBER_MS.max(self.window);
        while let Some(&(t, fp)) = self.seen_order.front() {
            if t >= horizon && self.seen_order.len() <= REMEMBER_MAX {
                break;
            }
            self.seen_order.pop_front();
            self.seen.remove(&(t, fp));
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

    #[test]
    fn memory_of_duplicates_is_bounded() {
        let mut r = Reorder::new(0);
        for i in 0..(REMEMBER_MAX as i64 + 10) {
            r.push(i, i as u64, ());
            r.pop_ready();
        }
        assert!(r.seen.len() <= REMEMBER_MAX + 1);
        assert!(r.is_empty());
    }
}
