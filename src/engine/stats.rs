//! Request aggregates per (host, backend, server).
//!
//! Invariant: everything here is a commutative monoid (counts, sums, maxima,
//! HDR histograms), so worker threads aggregate their own chunks and
//! [`Aggregates::merge`] combines them: the result does not depend on how
//! the input was split.

use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;

use crate::haproxy::{Request, Timer};
use crate::time::Millis;

/// Identifies a server: the HAProxy host that logged it (empty when the
/// syslog header had none), its backend and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey {
    pub host: String,
    pub backend: String,
    pub server: String,
}

/// Latency distribution of one timer: an HDR histogram (2 significant
/// digits: < 1% relative error) plus the exact sum and maximum.
#[derive(Clone, Debug)]
pub struct TimerStats {
    pub hist: Histogram<u64>,
    pub sum: u64,
    pub max: u64,
}

impl TimerStats {
    fn new() -> Self {
        TimerStats {
            hist: Histogram::new(2).expect("2 significant digits is valid"),
            sum: 0,
            max: 0,
        }
    }

    #[inline]
    pub fn record(&mut self, v: u64) {
        // `record`, not `saturating_record`: the latter never resizes and
        // would clamp every value above the current range. A timer is an i32
        // of milliseconds, far below the auto-resize limit (i64::MAX / 2), so
        // this cannot fail.
        let _ = self.hist.record(v);
        self.sum += v;
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn quantile(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    pub fn mean(&self) -> f64 {
        self.sum as f64 / self.count().max(1) as f64
    }

    fn merge(&mut self, o: &TimerStats) {
        // Both histograms auto-resize, so adding cannot fail on range.
        self.hist
            .add(&o.hist)
            .expect("auto-resizing histograms merge");
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub requests: u64,
    /// other, 1xx, 2xx, 3xx, 4xx, 5xx
    pub status: [u64; 6],
    pub errors: u64,
    pub bytes: u64,
    pub retries: u64,
    pub redispatches: u64,
    pub srv_queue_max: u32,
    pub backend_queue_max: u32,
    /// Termination state (packed bytes) -> count. A handful of distinct
    /// values in practice, so a linear scan beats a hash map.
    pub termination: Vec<([u8; 4], u64)>,
    pub timers: [Option<Box<TimerStats>>; 6],
    pub first: Option<Millis>,
    pub last: Option<Millis>,
}

impl Stats {
    #[inline]
    pub fn add(&mut self, r: &Request) {
        self.requests += 1;
        self.status[r.status_class()] += 1;
        self.errors += r.is_error() as u64;
        self.bytes += r.bytes;
        self.retries += r.retries as u64;
        self.redispatches += r.redispatched as u64;
        self.srv_queue_max = self.srv_queue_max.max(r.srv_queue);
        self.backend_queue_max = self.backend_queue_max.max(r.backend_queue);
        let mut code = [0u8; 4];
        let n = r.termination.len().min(4);
        code[..n].copy_from_slice(&r.termination[..n]);
        match self.termination.iter_mut().find(|(c, _)| *c == code) {
            Some((_, k)) => *k += 1,
            None => self.termination.push((code, 1)),
        }
        for t in Timer::ALL {
            let v = r.timer(t);
            if v >= 0 {
                self.timers[t as usize]
                    .get_or_insert_with(|| Box::new(TimerStats::new()))
                    .record(v as u64);
            }
        }
        self.first = Some(self.first.map_or(r.accept, |f| f.min(r.accept)));
        self.last = Some(self.last.map_or(r.accept, |l| l.max(r.accept)));
    }

    pub fn merge(&mut self, o: &Stats) {
        self.requests += o.requests;
        for k in 0..6 {
            self.status[k] += o.status[k];
        }
        self.errors += o.errors;
        self.bytes += o.bytes;
        self.retries += o.retries;
        self.redispatches += o.redispatches;
        self.srv_queue_max = self.srv_queue_max.max(o.srv_queue_max);
        self.backend_queue_max = self.backend_queue_max.max(o.backend_queue_max);
        for (code, n) in &o.termination {
            match self.termination.iter_mut().find(|(c, _)| c == code) {
                Some((_, k)) => *k += n,
                None => self.termination.push((*code, *n)),
            }
        }
        for k in 0..6 {
            if let Some(t) = &o.timers[k] {
                match &mut self.timers[k] {
                    Some(mine) => mine.merge(t),
                    None => self.timers[k] = Some(t.clone()),
                }
            }
        }
        self.first = match (self.first, o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, o.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn timer(&self, t: Timer) -> Option<&TimerStats> {
        self.timers[t as usize].as_deref()
    }
}

pub fn termination_str(code: &[u8; 4]) -> String {
    let n = code.iter().position(|&c| c == 0).unwrap_or(4);
    String::from_utf8_lossy(&code[..n]).into_owned()
}

/// Stats per server, looked up by the raw bytes of the key so that a
/// request line costs no allocation once its server has been seen.
#[derive(Debug, Default)]
pub struct Aggregates {
    index: FxHashMap<Box<[u8]>, usize>,
    pub servers: Vec<(ServerKey, Stats)>,
    scratch: Vec<u8>,
}

impl Aggregates {
    #[inline]
    pub fn entry(&mut self, host: &[u8], backend: &[u8], server: &[u8]) -> &mut Stats {
        self.scratch.clear();
        self.scratch.extend_from_slice(host);
        self.scratch.push(0);
        self.scratch.extend_from_slice(backend);
        self.scratch.push(0);
        self.scratch.extend_from_slice(server);
        let idx = match self.index.get(self.scratch.as_slice()) {
            Some(&i) => i,
            None => {
                let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                let key = ServerKey {
                    host: s(host),
                    backend: s(backend),
                    server: s(server),
                };
                self.servers.push((key, Stats::default()));
                let i = self.servers.len() - 1;
                self.index
                    .insert(self.scratch.clone().into_boxed_slice(), i);
                i
            }
        };
        &mut self.servers[idx].1
    }

    pub fn merge(&mut self, other: Aggregates) {
        for (k, s) in other.servers {
            self.entry(k.host.as_bytes(), k.backend.as_bytes(), k.server.as_bytes())
                .merge(&s);
        }
    }
}
