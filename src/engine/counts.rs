//! [`Counts`]: the request counts a server's totals ([`super::Stats`]) and
//! its per-minute rollups ([`super::rollup::Minute`]) both keep, added and
//! merged in one place.

use crate::haproxy::Request;

use super::stats::{count_termination, pack};

/// Requests, status classes, errors, bytes, retries, redispatches, queue
/// maxima and termination states: a commutative monoid (sums and maxima),
/// like everything the workers merge.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
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
}

impl Counts {
    /// One request (inline: once a line, from a server's totals or its
    /// minute).
    #[inline(always)]
    pub fn add(&mut self, r: &Request) {
        self.requests += 1;
        self.status[r.status_class()] += 1;
        self.errors += r.is_error() as u64;
        // A hostile line's 18 digits, summed, must not wrap (nor panic
        // under overflow checks): a total past u64 stays at its maximum.
        self.bytes = self.bytes.saturating_add(r.bytes);
        self.retries += r.retries as u64;
        self.redispatches += r.redispatched as u64;
        self.srv_queue_max = self.srv_queue_max.max(r.srv_queue);
        self.backend_queue_max = self.backend_queue_max.max(r.backend_queue);
        // A log-format without %ts/%tsc logs no termination state.
        if !r.termination.is_empty() {
            count_termination(&mut self.termination, pack(r.termination), 1);
        }
    }

    /// Another set of counts (another worker's, a drained minute's, a
    /// stored row's).
    pub fn merge(&mut self, o: &Counts) {
        self.requests += o.requests;
        for (mine, theirs) in self.status.iter_mut().zip(&o.status) {
            *mine += theirs;
        }
        self.errors += o.errors;
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.retries += o.retries;
        self.redispatches += o.redispatches;
        self.srv_queue_max = self.srv_queue_max.max(o.srv_queue_max);
        self.backend_queue_max = self.backend_queue_max.max(o.backend_queue_max);
        for (code, n) in &o.termination {
            count_termination(&mut self.termination, *code, *n);
        }
    }
}
