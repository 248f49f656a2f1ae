//! [`Tally`]: a minute's timer as counts in HdrHistogram's own layout.
//!
//! A minute's three timers are recorded on the workers, added to their
//! server's totals when drained, merged piece by piece on the writer, added
//! to their backend's minute and written in HdrHistogram's V2 encoding. With
//! the `hdrhistogram` crate's `Histogram` for each, those steps cost
//! `analyze --db` most of its time over `analyze` (BENCHMARKS.md, issue 17):
//! the crate adds histograms of different sizes value by value and encodes
//! through a buffer it zero-fills nine bytes a count. Here a minute's timer
//! is the plain array of counts the crate itself keeps, indexed the same way
//! (2 significant digits, lowest value 1): adding two is adding arrays, and
//! the V2 encoding is one pass over it. Reading (quantiles, a merged window,
//! a stored blob) goes through the crate: [`Tally::to_hist`],
//! [`Tally::from_hist`]; tests check the two layouts and encodings agree
//! value for value.

use hdrhistogram::Histogram;

use super::stats::resolution;

/// Counts a half-bucket holds at 2 significant digits: the crate's
/// `sub_bucket_half_count` (256 sub-buckets, every value below 256 exact).
const HALF: usize = 128;
const HALF_BITS: u32 = 7;
/// `64 - unit_magnitude (0) - sub_bucket_half_count_magnitude (7) - 1`.
const LEADING_ZERO_BASE: u32 = 56;

/// HdrHistogram's V2 cookie (uncompressed) and its header's size.
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_HEADER: usize = 40;

/// The crate's counts index of `v` (its `index_for`, private there).
#[inline(always)]
pub fn index_of(v: u64) -> usize {
    let bucket = LEADING_ZERO_BASE - (v | 0xff).leading_zeros();
    let sub = (v >> bucket) as usize;
    ((bucket as usize) << HALF_BITS) + sub
}

/// The lowest value counted at `index` (the crate's `value_for`).
#[inline]
pub fn value_of(index: usize) -> u64 {
    if index < 2 * HALF {
        return index as u64;
    }
    let bucket = (index >> HALF_BITS) - 1;
    (((index & (HALF - 1)) + HALF) as u64) << bucket
}

/// A timer's counts by HdrHistogram index, with the exact sum and maximum.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Grown to the largest index recorded, no further than [`grow`]'s
    /// rounding: a minute of Tw (nearly always 0) holds 64 counts.
    counts: Vec<u64>,
    pub sum: u64,
    pub max: u64,
}

/// The same counts, sum and maximum, however far each array has grown.
impl PartialEq for Tally {
    fn eq(&self, o: &Tally) -> bool {
        self.used() == o.used() && self.sum == o.sum && self.max == o.max
    }
}

impl Tally {
    #[inline(always)]
    pub fn record(&mut self, v: u64) {
        // Nearly every value: below 256, its own index.
        let i = match v < 2 * HALF as u64 {
            true => v as usize,
            false => index_of(v),
        };
        self.bump(i, 1);
        self.sum += v;
        self.max = self.max.max(v);
    }

    /// `n` more in bucket `index`, the array grown to it if need be: the
    /// count alone (the caller keeps the sum and maximum).
    #[inline(always)]
    fn bump(&mut self, index: usize, n: u64) {
        if index >= self.counts.len() {
            self.grow(index);
        }
        self.counts[index] += n;
    }

    /// Room up to `index`: rounded up to 64 counts, and at least doubled,
    /// so a minute's rising values do not reallocate at each new bucket.
    #[cold]
    fn grow(&mut self, index: usize) {
        let len = (index + 1).max(self.counts.len() * 2).next_multiple_of(64);
        self.counts.resize(len, 0);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The counts up to the largest value's (the rest are zero).
    fn used(&self) -> &[u64] {
        match self.counts.is_empty() {
            true => &[],
            false => &self.counts[..=index_of(self.max).min(self.counts.len() - 1)],
        }
    }

    /// The nonzero counts: (the lowest value of their bucket, count),
    /// ascending.
    pub fn for_each(&self, f: impl FnMut(u64, u64)) {
        self.for_each_from(0, f)
    }

    /// [`Tally::for_each`] from the bucket of index `start` on.
    pub fn for_each_from(&self, start: usize, mut f: impl FnMut(u64, u64)) {
        let used = self.used();
        for (i, &n) in used.iter().enumerate().skip(start) {
            if n > 0 {
                f(value_of(i), n);
            }
        }
    }

    /// The counts of the values below 256, each its own bucket: the count
    /// of value `v` at `v`.
    pub fn exact(&self) -> &[u64] {
        let used = self.used();
        &used[..used.len().min(2 * HALF)]
    }

    /// Another tally's counts (array to array).
    pub fn add(&mut self, o: &Tally) {
        let theirs = o.used();
        if theirs.len() > self.counts.len() {
            self.counts.resize(theirs.len(), 0);
        }
        for (mine, &n) in self.counts.iter_mut().zip(theirs) {
            *mine += n;
        }
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }

    /// What `Histogram::value_at_quantile` answers for the same values:
    /// the bucket whose running count reaches ceil(q * n) (at least the
    /// first), as its highest value (its lowest for q = 0). `None` when
    /// empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let q = q.min(1.0);
        let rank = ((q * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.used().iter().enumerate() {
            seen += c;
            if seen >= rank {
                let v = value_of(i);
                return Some(match q == 0.0 {
                    true => v,
                    false => resolution().highest_equivalent(v),
                });
            }
        }
        unreachable!("the rank is at most the count")
    }

    /// The crate's histogram of these counts (auto-resizing, as the
    /// engine's are).
    pub fn to_hist(&self) -> Histogram<u64> {
        let mut h = resolution().clone();
        self.for_each(|v, n| {
            // Below i64::MAX / 2 (a timer is an i32): cannot fail.
            let _ = h.record_n(v, n);
        });
        h
    }

    /// A histogram's counts, read back from the store (which keeps no
    /// exact sum: the histogram's mean stands in for it, as
    /// `TimerStats::from_hist` does).
    pub fn from_hist(h: &Histogram<u64>) -> Tally {
        let mut t = Tally::default();
        for v in h.iter_recorded() {
            t.bump(index_of(v.value_iterated_to()), v.count_at_value());
        }
        t.sum = (h.mean() * h.len() as f64).round() as u64;
        t.max = h.max();
        t
    }

    /// HdrHistogram's V2 encoding of these counts (what
    /// `V2Serializer::serialize` writes for the same histogram but its
    /// header's highest trackable value, here the largest value's): a
    /// count or, for two zeros or more, minus their number, zig-zagged,
    /// as a LEB128 varint whose ninth byte holds eight bits.
    pub fn encode_v2(&self) -> Vec<u8> {
        let counts = self.used();
        let mut out = Vec::with_capacity(V2_HEADER + counts.len() * 2);
        out.extend_from_slice(&V2_COOKIE.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes()); // payload length, below
        out.extend_from_slice(&0u32.to_be_bytes()); // normalizing index offset
        out.extend_from_slice(&2u32.to_be_bytes()); // significant digits
        out.extend_from_slice(&1u64.to_be_bytes()); // lowest discernible value
        out.extend_from_slice(&self.max.max(2).to_be_bytes()); // highest trackable
        out.extend_from_slice(&1.0f64.to_be_bytes()); // integer to double ratio
        let mut i = 0;
        while i < counts.len() {
            let n = counts[i];
            i += 1;
            let value = match n {
                0 => {
                    let zeros = 1 + counts[i..].iter().take_while(|&&c| c == 0).count();
                    i += zeros - 1;
                    match zeros {
                        1 => 0,
                        z => -(z as i64),
                    }
                }
                n => n as i64,
            };
            varint(((value << 1) ^ (value >> 63)) as u64, &mut out);
        }
        let payload = (out.len() - V2_HEADER) as u32;
        out[4..8].copy_from_slice(&payload.to_be_bytes());
        out
    }
}

/// The crate's varint: seven bits a byte, low first, the high bit set while
/// more follow; a ninth byte holds the last eight bits whole.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    for _ in 0..8 {
        if v < 0x80 {
            out.push(v as u8);
            return;
        }
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

    /// Values on and around every bucket edge up to an i32's largest, the
    /// way the crate would count them.
    fn edges() -> Vec<u64> {
        let mut v: Vec<u64> = (0..1200).collect();
        for shift in 8..31 {
            let e = 1u64 << shift;
            v.extend([e - 3, e - 2, e - 1, e, e + 1, e + 2, e + (e >> 1) + 1]);
        }
        v.extend([i32::MAX as u64 - 1, i32::MAX as u64]);
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn the_index_is_the_crate_s() {
        let h = resolution();
        let mut last = 0;
        for v in edges() {
            let i = index_of(v);
            assert_eq!(value_of(i), h.lowest_equivalent(v), "value {v}");
            assert!(i >= last, "indices ascend with values ({v})");
            // The next bucket starts at the next index.
            let next = h.next_non_equivalent(v);
            assert_eq!(index_of(next), i + 1, "value {v}, next {next}");
            last = i;
        }
    }

    fn decode(blob: &[u8]) -> Histogram<u64> {
        Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(blob))
            .expect("the crate reads our encoding")
    }

    #[test]
    fn encoded_as_the_crate_encodes() {
        // Sets with runs of zeros of one and many, counts past one varint
        // byte, and values up to an i32's largest.
        let sets: Vec<Vec<(u64, u64)>> = vec![
            vec![(0, 1)],
            vec![(5, 1), (7, 1), (300, 2)],
            vec![(0, 70_000), (1, 3), (3, 200), (12, 1 << 40)],
            edges().into_iter().map(|v| (v, v % 7 + 1)).collect(),
            vec![(i32::MAX as u64, 1), (1_000, 129)],
        ];
        for set in sets {
            let (mut t, mut h) = (Tally::default(), resolution().clone());
            for &(v, n) in &set {
                for _ in 0..n.min(3) {
                    t.record(v);
                }
                // The rest at once (counts past a varint's bytes).
                if n > 3 {
                    t.bump(index_of(v), n - 3);
                }
                h.record_n(v, n).unwrap();
            }
            let ours = decode(&t.encode_v2());
            assert_eq!(ours, h, "decoded: the same counts");
            assert_eq!(t.to_hist(), h);
            let mut theirs = Vec::new();
            V2Serializer::new().serialize(&h, &mut theirs).unwrap();
            // The same payload; the headers differ in the highest
            // trackable value only.
            assert_eq!(t.encode_v2()[V2_HEADER..], theirs[V2_HEADER..]);
            assert_eq!(t.encode_v2()[..24], theirs[..24]);
            let back = Tally::from_hist(&ours);
            assert_eq!(back.counts[..back.used().len()], *t.used());
        }
    }

    #[test]
    fn quantiles_and_merges_are_the_crate_s() {
        let values: Vec<u64> = (0..500u64).map(|i| (i * i * 37) % 70_000).collect();
        let (mut a, mut b, mut h) = (Tally::default(), Tally::default(), resolution().clone());
        for (k, &v) in values.iter().enumerate() {
            match k % 3 {
                0 => a.record(v),
                _ => b.record(v),
            }
            h.record(v).unwrap();
        }
        a.add(&b);
        assert_eq!(a.count(), 500);
        assert_eq!(a.sum, values.iter().sum::<u64>());
        assert_eq!(a.max, *values.iter().max().unwrap());
        for q in [0.0, 0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0, 1.5] {
            assert_eq!(a.quantile(q), Some(h.value_at_quantile(q)), "q {q}");
        }
        assert_eq!(Tally::default().quantile(0.5), None);
        assert!(Tally::default().encode_v2().len() == V2_HEADER);
    }
}
