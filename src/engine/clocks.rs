//! Each load balancer's clock, as its lines tell it.
//!
//! Every line is judged in its own host's event time (a state machine
//! never mixes two clocks). But a fleet compares hosts: a load balancer
//! whose clock runs five minutes behind must not look silent for five
//! minutes, nor one five minutes ahead make the others look silent. So each
//! host's *offset* is measured: how far its lines' dates are from when they
//! arrive.
//!
//! - Live, the reference is the receive time: a line's offset is its
//!   emission time (a request's accept date + Ta, a health line's date)
//!   minus the time it was received.
//! - From a file, there is no receive time; the file's order is the order
//!   of arrival (one relay wrote it), so a line is compared with the newest
//!   date read before it (the *watermark*), and each batch's offsets are
//!   taken relative to the middle host's (the median), so that one host
//!   ahead does not make every other one look behind. With a single host in
//!   a batch nothing is measured (one host per file tells nothing).
//!
//! A host's offset is the largest of its lines' in the last one to two
//! minutes of reference time: the line that came fastest, as relays and
//! networks only ever delay. A delayed relay (a backlog) therefore looks
//! like a clock behind; the fleet view says both.

use std::collections::{BTreeMap, BTreeSet};

use crate::bytes::same;
use crate::time::Millis;

/// Hosts measured; past this, new names are not (a flood of invented host
/// names costs no memory).
const MAX_HOSTS: usize = 10_000;

/// Hosts looked for by a scan before the index is asked.
const FEW: usize = 8;

/// How much reference time one window of samples spans.
const WINDOW_MS: Millis = 60_000;

/// One batch of lines (live: those received together; from a file: a
/// chunk): each host's newest date and its largest offset in the batch.
#[derive(Debug, Default, Clone)]
pub struct Arrivals {
    /// Live: when the lines being read were received.
    pub received: Option<Millis>,
    /// The newest date read so far (kept across batches).
    watermark: Option<Millis>,
    slots: Vec<Slot>,
    index: rustc_hash::FxHashMap<Box<[u8]>, usize>,
    /// The slot of the last line's host: most lines repeat it.
    cur: usize,
    /// The slot of the host before it.
    prev: usize,
}

#[derive(Debug, Clone)]
pub struct Slot {
    pub host: Box<[u8]>,
    pub newest: Millis,
    /// The largest (date - reference) of the host's lines in the batch.
    pub offset: Option<Millis>,
}

impl Arrivals {
    /// A line of `host` written at `t` (its own clock). In line when the
    /// host is the last line's (most lines) or the one before it (two load
    /// balancers' lines interleaved, a relay's file): once a request line.
    #[inline(always)]
    pub fn note(&mut self, host: &[u8], t: Millis) {
        if self
            .slots
            .get(self.cur)
            .is_some_and(|s| same(&s.host, host))
        {
            return self.record(self.cur, t);
        }
        if self
            .slots
            .get(self.prev)
            .is_some_and(|s| same(&s.host, host))
        {
            std::mem::swap(&mut self.cur, &mut self.prev);
            return self.record(self.cur, t);
        }
        self.note_another(host, t)
    }

    /// [`Arrivals::note`] of a line whose host is neither of the last two.
    #[inline(never)]
    fn note_another(&mut self, host: &[u8], t: Millis) {
        // A few hosts taking turns: a scan beats hashing the name.
        let i = match self
            .slots
            .iter()
            .take(FEW)
            .position(|s| same(&s.host, host))
        {
            Some(i) => i,
            None => match self.find(host) {
                Some(i) => i,
                None => return,
            },
        };
        self.prev = self.cur;
        self.cur = i;
        self.record(i, t);
    }

    #[inline(always)]
    fn record(&mut self, i: usize, t: Millis) {
        let mark = self.watermark.map_or(t, |w| w.max(t));
        self.watermark = Some(mark);
        // From a file, a lone host is its own watermark: that says nothing.
        let reference = match self.received {
            Some(r) => Some(r),
            None if self.slots.len() >= 2 => Some(mark),
            None => None,
        };
        let s = &mut self.slots[i];
        s.newest = s.newest.max(t);
        if let Some(r) = reference {
            let d = t - r;
            s.offset = Some(s.offset.map_or(d, |o| o.max(d)));
        }
    }

    #[cold]
    fn find(&mut self, host: &[u8]) -> Option<usize> {
        if let Some(&i) = self.index.get(host) {
            return Some(i);
        }
        if self.slots.len() >= MAX_HOSTS {
            return None;
        }
        self.index.insert(host.into(), self.slots.len());
        self.slots.push(Slot {
            host: host.into(),
            newest: Millis::MIN,
            offset: None,
        });
        Some(self.slots.len() - 1)
    }

    /// A date read by another reader of the same input, in order (the
    /// request line an `analyze` worker read before a health line).
    pub fn see(&mut self, t: Millis) {
        self.watermark = Some(self.watermark.map_or(t, |w| w.max(t)));
    }

    /// Another reader's batch of the same stretch of input (an `analyze`
    /// worker's chunk), its offsets measured there, joined to this one.
    /// The watermark is left: this reader's lines of that stretch come
    /// after, each after [`Arrivals::see`] of the dates before it.
    pub fn absorb(&mut self, other: Vec<Slot>) {
        for o in other {
            let Some(i) = self.find(&o.host) else {
                continue;
            };
            let s = &mut self.slots[i];
            s.newest = s.newest.max(o.newest);
            s.offset = match (s.offset, o.offset) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }

    /// The batch so far, emptied; the watermark stays.
    pub fn take(&mut self) -> (Vec<Slot>, Option<Millis>) {
        self.index.clear();
        self.cur = 0;
        self.prev = 0;
        (std::mem::take(&mut self.slots), self.watermark)
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// What the offset of a host was measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The receive time (live).
    Received,
    /// The other hosts of the same file (offline).
    Fleet,
}

impl Reference {
    pub fn as_str(self) -> &'static str {
        match self {
            Reference::Received => "received",
            Reference::Fleet => "fleet",
        }
    }
}

/// One host's clock, as measured.
#[derive(Debug, Clone)]
pub struct HostClock {
    /// Its newest date (its own clock).
    pub last_event: Millis,
    /// Its dates minus the reference, when measured.
    pub offset: Option<Millis>,
    pub reference: Reference,
    window_start: Millis,
    window: Option<Millis>,
    previous: Option<Millis>,
}

impl HostClock {
    fn sample(&mut self, at: Millis, d: Millis) {
        if at - self.window_start >= WINDOW_MS {
            // Two windows back is forgotten: a clock set right is seen
            // within two minutes.
            self.previous = if at - self.window_start >= 2 * WINDOW_MS {
                None
            } else {
                self.window
            };
            self.window = None;
            self.window_start = at;
        }
        self.window = Some(self.window.map_or(d, |w| w.max(d)));
        self.offset = match (self.window, self.previous) {
            (Some(w), Some(p)) => Some(w.max(p)),
            (w, p) => w.or(p),
        };
    }
}

/// Every host's clock, and which changed since the store last took them.
#[derive(Debug, Default, Clone)]
pub struct HostClocks {
    pub hosts: BTreeMap<String, HostClock>,
    dirty: BTreeSet<String>,
    /// Moves whenever an offset changes.
    pub version: u64,
}

impl HostClocks {
    /// Takes a batch in. Returns the hosts whose offset changed, with it.
    pub fn fold(&mut self, batch: Vec<Slot>, arrivals: &Arrivals) -> Vec<(String, Millis)> {
        let (reference, at) = match arrivals.received {
            Some(r) => (Reference::Received, r),
            None => (Reference::Fleet, arrivals.watermark.unwrap_or(0)),
        };
        // From a file, offsets are the hosts' against the middle one's.
        let middle = match reference {
            Reference::Received => 0,
            Reference::Fleet => {
                let mut o: Vec<Millis> = batch.iter().filter_map(|s| s.offset).collect();
                if o.len() >= 3 {
                    let k = o.len() / 2;
                    *o.select_nth_unstable(k).1
                } else {
                    0
                }
            }
        };
        let mut changed = Vec::new();
        for s in batch {
            let host = String::from_utf8_lossy(&s.host);
            // Known hosts (nearly every batch's) are found without
            // allocating their name.
            if !self.hosts.contains_key(&*host) {
                if self.hosts.len() >= MAX_HOSTS {
                    continue;
                }
                self.hosts.insert(
                    host.clone().into_owned(),
                    HostClock {
                        last_event: s.newest,
                        offset: None,
                        reference,
                        window_start: at,
                        window: None,
                        previous: None,
                    },
                );
            }
            let c = self.hosts.get_mut(&*host).expect("inserted above");
            let before = c.offset;
            c.last_event = c.last_event.max(s.newest);
            c.reference = reference;
            if let Some(d) = s.offset {
                c.sample(at, d - middle);
            }
            if c.offset != before {
                self.version += 1;
                if let Some(o) = c.offset {
                    changed.push((host.clone().into_owned(), o));
                }
            }
            if !self.dirty.contains(&*host) {
                self.dirty.insert(host.into_owned());
            }
        }
        changed
    }

    /// A host's clock as a previous process stored it: known from the
    /// start (the fleet rules, `/metrics`), until this process measures
    /// it again (the stored offset counts as the previous window's, so
    /// within two windows the host's new lines replace it).
    pub fn restore(&mut self, host: String, last_event: Millis, offset: Millis, now: Millis) {
        if self.hosts.len() >= MAX_HOSTS || self.hosts.contains_key(&host) {
            return;
        }
        self.hosts.insert(
            host,
            HostClock {
                last_event,
                offset: Some(offset),
                reference: Reference::Received,
                window_start: now,
                window: None,
                previous: Some(offset),
            },
        );
        self.version += 1;
    }

    pub fn offset(&self, host: &str) -> Millis {
        self.hosts.get(host).and_then(|c| c.offset).unwrap_or(0)
    }

    /// The hosts changed since [`HostClocks::stored`] was last called.
    pub fn changed(&self) -> impl Iterator<Item = (&str, &HostClock)> {
        self.dirty
            .iter()
            .filter_map(|h| self.hosts.get(h).map(|c| (h.as_str(), c)))
    }

    /// The store wrote what [`HostClocks::changed`] gave.
    pub fn stored(&mut self) {
        self.dirty.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const S: Millis = 1000;

    fn fold(clocks: &mut HostClocks, a: &mut Arrivals) -> Vec<(String, Millis)> {
        let (batch, _) = a.take();
        clocks.fold(batch, a)
    }

    #[test]
    fn a_restored_clock_stands_until_the_host_is_measured_again() {
        let mut c = HostClocks::default();
        c.restore("lb1".into(), 900 * S, -30 * S, 1_000 * S);
        assert_eq!(c.offset("lb1"), -30 * S);
        // Set right meanwhile: its lines a window later say so.
        let mut a = Arrivals {
            received: Some(1_000 * S + WINDOW_MS),
            ..Default::default()
        };
        a.note(b"lb1", 1_000 * S + WINDOW_MS - 100);
        fold(&mut c, &mut a);
        assert_eq!(c.offset("lb1"), -100);
    }

    #[test]
    fn live_offsets_are_against_the_receive_time_and_take_the_fastest_line() {
        let mut a = Arrivals {
            received: Some(1_000 * S),
            ..Default::default()
        };
        a.note(b"lb1", 1_000 * S - 200); // 200 ms on the way
        a.note(b"lb1", 1_000 * S - 3 * S); // a slow request line
        a.note(b"lb2", 700 * S); // five minutes behind
        let mut c = HostClocks::default();
        let mut changed = fold(&mut c, &mut a);
        changed.sort();
        assert_eq!(changed, [("lb1".into(), -200), ("lb2".into(), -300 * S)]);
        assert_eq!(c.offset("lb3"), 0);
        // A single host is still measured live.
        a.received = Some(1_010 * S);
        a.note(b"lb2", 710 * S + 500);
        assert_eq!(fold(&mut c, &mut a), [("lb2".into(), -300 * S + 500)]);
        // Set right (NTP): within two windows the old offset is gone.
        for m in 1..=3 {
            a.received = Some((1_010 + 60 * m) * S);
            a.note(b"lb2", (1_010 + 60 * m) * S - 100);
            fold(&mut c, &mut a);
        }
        assert_eq!(c.offset("lb2"), -100);
    }

    #[test]
    fn from_a_file_offsets_are_against_the_other_hosts() {
        let mut c = HostClocks::default();
        let mut a = Arrivals::default();
        // lb3 writes dates five minutes ahead, lb1 and lb2 agree.
        for i in 0..10 {
            let t = 1_000 * S + i * S;
            a.note(b"lb1", t);
            a.note(b"lb3", t + 300 * S);
            a.note(b"lb2", t + 10);
        }
        fold(&mut c, &mut a);
        // To the second: lines of different hosts interleave.
        assert!((c.offset("lb3") - 300 * S).abs() < 2 * S, "{c:?}");
        assert!(c.offset("lb1").abs() < S, "{c:?}");
        assert!(c.offset("lb2").abs() < S, "{c:?}");
        // One host alone in a file tells nothing.
        let mut c = HostClocks::default();
        let mut a = Arrivals::default();
        a.note(b"lb1", 1_000 * S);
        a.note(b"lb1", 1_001 * S);
        assert!(fold(&mut c, &mut a).is_empty());
        assert_eq!(c.hosts["lb1"].last_event, 1_001 * S);
        assert_eq!(c.hosts["lb1"].offset, None);
    }

    #[test]
    fn each_host_keeps_its_own_newest_and_offset_however_they_take_turns() {
        // Hosts in runs, in pairs, in threes and at random (the last line's
        // and the one before's host are looked at first): each slot ends
        // with what a plain map of its own lines says.
        let hosts: [&[u8]; 12] = [
            b"lb1", b"lb2", b"lb3", b"lb4", b"lb5", b"lb6", b"lb7", b"lb8", b"lb9", b"lb10",
            b"lb11", b"lb12",
        ];
        let mut seed = 7u64;
        let mut rnd = move |n: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as usize % n
        };
        let orders: Vec<Vec<usize>> = vec![
            (0..60).map(|i| i / 20).collect(),
            (0..60).map(|i| i % 2).collect(),
            (0..60).map(|i| i % 3).collect(),
            (0..60).map(|i| [0, 0, 1, 2, 1, 1][i % 6]).collect(),
            (0..200).map(|_| rnd(12)).collect(),
            (0..200).map(|_| rnd(2)).collect(),
        ];
        for order in orders {
            let mut a = Arrivals::default();
            let mut want: BTreeMap<&[u8], (Millis, Option<Millis>)> = BTreeMap::new();
            let mut mark = Millis::MIN;
            for (k, &h) in order.iter().enumerate() {
                let t = 1_000 * S + k as Millis * 10 - (h as Millis) * 3;
                a.note(hosts[h], t);
                mark = mark.max(t);
                let e = want.entry(hosts[h]).or_insert((Millis::MIN, None));
                e.0 = e.0.max(t);
                // From a file, a line measures its host against the others
                // once there are two.
                if want.len() >= 2 {
                    let e = want.get_mut(hosts[h]).unwrap();
                    e.1 = Some(e.1.map_or(t - mark, |o| o.max(t - mark)));
                }
            }
            let (slots, _) = a.take();
            assert_eq!(slots.len(), want.len(), "{order:?}");
            for slot in slots {
                let (newest, offset) = want[&slot.host[..]];
                assert_eq!((slot.newest, slot.offset), (newest, offset), "{order:?}");
            }
        }
    }

    #[test]
    fn hosts_past_the_bound_are_not_measured() {
        let mut a = Arrivals {
            received: Some(0),
            ..Default::default()
        };
        for i in 0..MAX_HOSTS + 5 {
            a.note(format!("lb{i}").as_bytes(), 0);
        }
        let (batch, _) = a.take();
        assert_eq!(batch.len(), MAX_HOSTS);
    }
}
