//! `analyze --percentiles`: halog's `-pct` table. For each percentile, the
//! number of requests it covers and the value of TR, Tc, Tr and Td (the
//! data phase: Ta - TR - Tw - Tc - Tr) under which that many requests
//! fall; Tw is added after halog's four columns.
//!
//! halog's rules (`admin/halog/halog.c`, `filter_graphs` and the
//! `FILT_PERCENTILE` output): only HTTP lines whose five timers are all
//! known count (a `-1` timer is an error, counted apart); values are exact
//! (every distinct millisecond is kept, no histogram rounding); the row of
//! percentile p covers `floor(n * p / 100)` requests and shows the
//! smallest value whose cumulative count reaches it.

use rustc_hash::FxHashMap;

use crate::haproxy::{Mode, Request, Timer};

/// The columns, in halog's order and then Tw.
pub const COLUMNS: [&str; 5] = ["TR", "Tc", "Tr", "Td", "Tw"];

/// halog's rows, in tenths of a percent: 0.1% to 2% by 0.1, to 10% by 1,
/// to 90% by 5, to 98% by 1, to 100% by 0.1.
pub fn halog_steps() -> Vec<f64> {
    let mut steps = Vec::new();
    let mut step = 1u32;
    while step <= 1000 {
        steps.push(f64::from(step) / 10.0);
        step += match step {
            100..=899 => 50,
            20..=979 => 10,
            _ => 1,
        };
    }
    steps
}

/// Exact counts of one timer's values: a dense array for the usual
/// milliseconds, a map for the rest (negative Td, long timeouts).
#[derive(Clone, Debug)]
struct Values {
    dense: Vec<u64>,
    sparse: FxHashMap<i64, u64>,
}

/// Values below this are counted in the array (a 512 KiB array per
/// timer, five per worker).
const DENSE: usize = 65_536;

impl Default for Values {
    fn default() -> Values {
        Values {
            dense: vec![0; DENSE],
            sparse: FxHashMap::default(),
        }
    }
}

impl Values {
    #[inline]
    fn add(&mut self, v: i64) {
        match usize::try_from(v) {
            Ok(i) if i < DENSE => self.dense[i] += 1,
            _ => *self.sparse.entry(v).or_default() += 1,
        }
    }

    fn merge(&mut self, o: &Values) {
        for (a, b) in self.dense.iter_mut().zip(&o.dense) {
            *a += b;
        }
        for (k, n) in &o.sparse {
            *self.sparse.entry(*k).or_default() += n;
        }
    }

    /// Every value with its count, ascending.
    fn sorted(&self) -> Vec<(i64, u64)> {
        let mut v: Vec<(i64, u64)> = self
            .dense
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (i as i64, n))
            .chain(self.sparse.iter().map(|(&k, &n)| (k, n)))
            .collect();
        v.sort_unstable();
        v
    }
}

/// The timers of the lines counted so far.
#[derive(Clone, Debug, Default)]
pub struct Percentiles {
    /// The rows asked for (percent, ascending).
    pub list: Vec<f64>,
    values: [Values; 5],
    /// Lines counted (all five timers known).
    pub counted: u64,
    /// HTTP lines with a `-1` timer, not counted (halog's errors).
    pub errors: u64,
    /// TCP lines: not counted (three timers).
    pub tcp: u64,
}

/// One row: percentile, requests covered, and the value of each column.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub pct: f64,
    pub requests: u64,
    pub values: [i64; 5],
}

impl Percentiles {
    pub fn new(list: Vec<f64>) -> Percentiles {
        Percentiles {
            list,
            ..Default::default()
        }
    }

    #[inline]
    pub fn add(&mut self, r: &Request) {
        if r.mode == Mode::Tcp {
            self.tcp += 1;
            return;
        }
        let t = |x: Timer| r.timer(x);
        let (tr_, tw, tc, tr, ta) = (
            t(Timer::TR),
            t(Timer::Tw),
            t(Timer::Tc),
            t(Timer::Tr),
            t(Timer::Ta),
        );
        if tr_ < 0 || tw < 0 || tc < 0 || tr < 0 || ta < 0 {
            self.errors += 1;
            return;
        }
        self.counted += 1;
        let td = ta
            .saturating_sub(tr_)
            .saturating_sub(tw)
            .saturating_sub(tc)
            .saturating_sub(tr);
        for (i, v) in [tr_, tc, tr, td, tw].into_iter().enumerate() {
            self.values[i].add(v);
        }
    }

    pub fn merge(&mut self, o: &Percentiles) {
        for (a, b) in self.values.iter_mut().zip(&o.values) {
            a.merge(b);
        }
        self.counted += o.counted;
        self.errors += o.errors;
        self.tcp += o.tcp;
    }

    /// The rows of [`Percentiles::list`], by halog's rule. Empty when no
    /// line was counted.
    pub fn rows(&self) -> Vec<Row> {
        self.rows_of(&self.list)
    }

    /// The rows of `pcts` (percent, 0 < p <= 100, ascending).
    pub fn rows_of(&self, pcts: &[f64]) -> Vec<Row> {
        if self.counted == 0 {
            return Vec::new();
        }
        let sorted: Vec<Vec<(i64, u64)>> = self.values.iter().map(Values::sorted).collect();
        pcts.iter()
            .map(|&p| {
                let requests = covered(self.counted, p);
                let mut values = [0i64; 5];
                for (col, vals) in sorted.iter().enumerate() {
                    // The first value whose cumulative count reaches it
                    // (the smallest value for a row that covers nothing).
                    let mut cum = 0;
                    let mut value = vals[0].0;
                    for &(v, n) in vals {
                        cum += n;
                        value = v;
                        if cum >= requests {
                            break;
                        }
                    }
                    values[col] = value;
                }
                Row {
                    pct: p,
                    requests,
                    values,
                }
            })
            .collect()
    }
}

/// `floor(n * p / 100)` as halog computes it for its own steps (in
/// thousandths: `n * (step / 1000.0)`), so a row covers exactly as many
/// requests as halog's.
fn covered(n: u64, p: f64) -> u64 {
    let tenths = p * 10.0;
    let fraction = if (tenths - tenths.round()).abs() < 1e-9 {
        tenths.round() / 1000.0
    } else {
        p / 100.0
    };
    (n as f64 * fraction) as u64
}

/// `--percentiles 50,90,99.9`: percents above 0, at most 100, ascending
/// once sorted; repeated ones once.
pub fn parse_list(s: &str) -> Result<Vec<f64>, String> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim) {
        let p: f64 = part
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("{part:?} is not a percentile (e.g. 50,90,99.9)"))?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(format!("{part}: a percentile is above 0 and at most 100"));
        }
        v.push(p);
    }
    v.sort_by(f64::total_cmp);
    v.dedup();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(timers: [i64; 5]) -> Request<'static> {
        let mut r = Request::new(Mode::Http);
        r.timers[..5].copy_from_slice(&timers);
        r
    }

    #[test]
    fn halogs_steps_are_its_72_rows() {
        let s = halog_steps();
        assert_eq!(s.len(), 20 + 8 + 16 + 8 + 20);
        assert_eq!(&s[..3], &[0.1, 0.2, 0.3]);
        assert!(s.contains(&2.0) && s.contains(&10.0) && s.contains(&95.0));
        assert_eq!(&s[s.len() - 2..], &[99.9, 100.0]);
    }

    #[test]
    fn rows_take_the_first_value_reaching_the_share() {
        let mut p = Percentiles::default();
        // Tr 1..=100, data time 0, one error and one TCP line not counted.
        for tr in 1..=100 {
            p.add(&line([0, 0, 2, tr, 2 + tr]));
        }
        p.add(&line([0, 0, -1, -1, 5]));
        p.add(&Request::new(Mode::Tcp));
        let mut q = Percentiles::default();
        q.add(&line([3, 1, 2, 70_000, 70_010]));
        p.merge(&q);
        assert_eq!((p.counted, p.errors, p.tcp), (101, 1, 1));
        let rows = p.rows_of(&[0.1, 50.0, 99.0, 100.0]);
        // 0.1% covers 0 requests: the smallest value.
        assert_eq!((rows[0].requests, rows[0].values[2]), (0, 1));
        assert_eq!((rows[1].requests, rows[1].values[2]), (50, 50));
        assert_eq!(rows[2].values[2], 99);
        assert_eq!(rows[3].values, [3, 2, 70_000, 4, 1]);
        assert!(Percentiles::new(vec![50.0]).rows().is_empty());
    }

    #[test]
    fn lists_parse_sorted_and_bounded() {
        assert_eq!(parse_list("99, 50,99.9").unwrap(), vec![50.0, 99.0, 99.9]);
        assert!(parse_list("0").is_err());
        assert!(parse_list("101").is_err());
        assert!(parse_list("p99").is_err());
    }
}
