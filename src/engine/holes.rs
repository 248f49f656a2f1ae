//! `analyze --accept-holes`: halog's `-ad`/`-ac`. Requests are counted by
//! the millisecond they were accepted; a hole is a gap of at least the
//! delay asked between one accepting millisecond and the next, followed
//! by at least the count asked of accepts in that next millisecond (a
//! listener that stopped accepting, then a burst of the backlog: a full
//! accept queue, a stalled process, a SYN flood's aftermath).
//!
//! halog keys by the time of day (its holes wrap at midnight); here the
//! key is the whole accept date, in the report's time (UTC unless `--tz`
//! says the log is another zone), so a log of several days has no false
//! hole or missed one at midnight.
//!
//! Memory: halog keeps every accepting millisecond. Here time is cut in
//! slots as long as the least gap asked, and a slot keeps only its first
//! accepting millisecond (with its accepts) and its last: only a slot's
//! first accept can end a gap that long (another accept of the same slot
//! is nearer than that), and the accept before it is the last of the
//! nearest slot before with any. Exact, and bounded by the time span over
//! the gap (a day at 500 ms: 172,800 slots), not by the lines.

use crate::time::Millis;

/// A slot's first accepting millisecond, its accepts, and its last one
/// (milliseconds into the slot: 24 bytes a slot with its number).
#[derive(Clone, Copy, Debug)]
struct Slot {
    first: u32,
    accepts: u32,
    last: u32,
}

impl Slot {
    /// The same slot seen again (by another line or reader).
    #[inline]
    fn absorb(&mut self, o: Slot) {
        match o.first.cmp(&self.first) {
            std::cmp::Ordering::Less => {
                self.first = o.first;
                self.accepts = o.accepts;
            }
            std::cmp::Ordering::Equal => self.accepts += o.accepts,
            std::cmp::Ordering::Greater => {}
        }
        self.last = self.last.max(o.last);
    }
}

/// Accepts by slot, from one or more readers.
#[derive(Clone, Debug, Default)]
pub struct Holes {
    /// `(slot, what it saw)`, appended as lines come: a log is nearly in
    /// accept order, so a line mostly lands in the last slot. Sorted and
    /// folded when it doubles ([`Holes::compact`]), so it holds at most
    /// twice the distinct slots.
    slots: Vec<(Millis, Slot)>,
    /// Length after the last compaction.
    compacted: usize,
    /// `-ad`: the least gap shown, ms (at least 1).
    pub min_gap: Millis,
    /// `-ac`: the least accepts in the millisecond after the gap.
    pub min_accepts: u32,
}

/// A gap in accepts and what came after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hole {
    /// The millisecond accepts resumed.
    pub at: Millis,
    /// Since the previous accepting millisecond.
    pub gap_ms: Millis,
    /// Accepts in that millisecond.
    pub accepts: u32,
}

impl Holes {
    pub fn new(min_gap: Millis, min_accepts: u32) -> Holes {
        Holes {
            slots: Vec::new(),
            compacted: 0,
            // Offsets in a slot are u32: at most 49 days.
            min_gap: min_gap.clamp(1, Millis::from(u32::MAX)),
            min_accepts: min_accepts.max(1),
        }
    }

    #[inline]
    pub fn add(&mut self, accept: Millis) {
        let slot = accept.div_euclid(self.min_gap);
        let at = (accept - slot * self.min_gap) as u32;
        let seen = Slot {
            first: at,
            accepts: 1,
            last: at,
        };
        match self.slots.last_mut() {
            Some((k, s)) if *k == slot => s.absorb(seen),
            _ => {
                self.slots.push((slot, seen));
                if self.slots.len() >= (self.compacted + self.compacted / 2).max(1 << 16) {
                    self.compact();
                }
                if self.slots.len() == self.slots.capacity() {
                    // Grown by halves, not doubled: this is most of the
                    // memory of a run with a gap of a millisecond or two.
                    self.slots.reserve_exact(self.slots.len() / 2);
                }
            }
        }
    }

    /// Sorts the slots and folds each slot's entries into one.
    fn compact(&mut self) {
        self.slots.sort_unstable_by_key(|(k, _)| *k);
        self.slots.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1.absorb(later.1);
            }
            same
        });
        self.compacted = self.slots.len();
    }

    /// Adds another reader's slots (the first one merged is moved in).
    pub fn merge(&mut self, mut o: Holes) {
        o.compact();
        if self.slots.is_empty() {
            std::mem::swap(&mut self.slots, &mut o.slots);
        } else {
            self.compact();
            self.slots.reserve_exact(o.slots.len());
            self.slots.append(&mut o.slots);
        }
        self.compact();
    }

    /// The holes, in time order.
    pub fn holes(&self) -> Vec<Hole> {
        // Merged readers are compacted; a reader alone may not be.
        let copy;
        let slots = if self.compacted == self.slots.len() {
            &self.slots
        } else {
            let mut c = self.clone();
            c.compact();
            copy = c;
            &copy.slots
        };
        slots
            .windows(2)
            .filter_map(|w| {
                let (before, s) = (w[0].1, w[1].1);
                let at = w[1].0 * self.min_gap + Millis::from(s.first);
                let gap_ms = at - (w[0].0 * self.min_gap + Millis::from(before.last));
                (gap_ms >= self.min_gap && s.accepts >= self.min_accepts).then_some(Hole {
                    at,
                    gap_ms,
                    accepts: s.accepts,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_then_enough_accepts_is_a_hole() {
        let mut a = Holes::new(500, 2);
        let mut b = Holes::new(500, 2);
        for t in [1_000, 1_001, 1_002] {
            a.add(t);
        }
        // 998 ms of silence, then a burst of three (split across readers).
        a.add(2_000);
        b.add(2_000);
        b.add(2_000);
        // A gap followed by one accept only: not shown with -ac 2.
        b.add(3_000);
        a.merge(b);
        assert_eq!(
            a.holes(),
            vec![Hole {
                at: 2_000,
                gap_ms: 998,
                accepts: 3
            }]
        );
        assert!(Holes::new(0, 0).holes().is_empty());
    }

    /// The slots give what every millisecond kept would give, whatever
    /// the order the accepts come in.
    #[test]
    fn slots_find_the_holes_every_millisecond_would() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i64
        };
        let times: Vec<Millis> = (0..5_000)
            .map(|_| {
                let t = next() % 200_000;
                // Clusters and silences: some stretches get nothing.
                if (t / 10_000) % 3 == 1 {
                    t / 7
                } else {
                    t
                }
            })
            .collect();
        for gap in [1, 3, 40, 500, 2_000] {
            for count in [1, 2] {
                let mut sorted = times.clone();
                sorted.sort_unstable();
                let mut per_ms: Vec<(Millis, u32)> = Vec::new();
                for t in sorted {
                    match per_ms.last_mut() {
                        Some((l, n)) if *l == t => *n += 1,
                        _ => per_ms.push((t, 1)),
                    }
                }
                let want: Vec<Hole> = per_ms
                    .windows(2)
                    .filter(|w| w[1].0 - w[0].0 >= gap && w[1].1 >= count)
                    .map(|w| Hole {
                        at: w[1].0,
                        gap_ms: w[1].0 - w[0].0,
                        accepts: w[1].1,
                    })
                    .collect();
                let mut a = Holes::new(gap, count);
                let mut b = Holes::new(gap, count);
                for (i, &t) in times.iter().enumerate() {
                    if i % 3 == 0 {
                        b.add(t)
                    } else {
                        a.add(t)
                    }
                }
                a.merge(b);
                assert_eq!(a.holes(), want, "gap {gap} count {count}");
                assert!(
                    count > 1 || gap > 500 || !want.is_empty(),
                    "gap {gap}: some holes"
                );
            }
        }
    }
}
