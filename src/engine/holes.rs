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
//! hole or missed one at midnight. Memory grows with the distinct
//! accepting milliseconds, as halog's does.

use rustc_hash::FxHashMap;

use crate::time::Millis;

/// Accepts per millisecond, from one or more readers.
#[derive(Clone, Debug, Default)]
pub struct Holes {
    accepts: FxHashMap<Millis, u32>,
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
            accepts: FxHashMap::default(),
            min_gap: min_gap.max(1),
            min_accepts: min_accepts.max(1),
        }
    }

    #[inline]
    pub fn add(&mut self, accept: Millis) {
        *self.accepts.entry(accept).or_default() += 1;
    }

    pub fn merge(&mut self, o: &Holes) {
        for (&t, &n) in &o.accepts {
            *self.accepts.entry(t).or_default() += n;
        }
    }

    /// The holes, in time order.
    pub fn holes(&self) -> Vec<Hole> {
        let mut times: Vec<(Millis, u32)> = self.accepts.iter().map(|(&t, &n)| (t, n)).collect();
        times.sort_unstable();
        times
            .windows(2)
            .filter_map(|w| {
                let gap_ms = w[1].0 - w[0].0;
                (gap_ms >= self.min_gap && w[1].1 >= self.min_accepts).then_some(Hole {
                    at: w[1].0,
                    gap_ms,
                    accepts: w[1].1,
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
        a.merge(&b);
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
}
