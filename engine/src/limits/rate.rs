//! Rate limits: token buckets that bound how fast a queue's attempts start.
//!
//! Invariant: in any window of `T` ms at most `burst + rate × T / 1000` tokens are granted
//! for one queue (a bucket holds at most `burst`, and refills at `rate` per second from the
//! instant it was last read). A refund gives back tokens that were granted but not used,
//! never more than the bucket holds. Time is the caller's (the engine's injected clock),
//! so tests step it.
//!
//! The dispatcher takes tokens before it leases (at most what it would lease), leases at
//! most what it was granted, and refunds the rest; a queue with no token waits until
//! [`Grant::next_at`] — its jobs stay ready, they do not fail.
//!
//! [`LocalGate`] keeps the buckets in the engine process: the limit is per engine. It is
//! the gate of the embedded stores (one engine per store). A shared store (Redis) keeps
//! them where every engine takes from the same bucket, so the limit holds cluster-wide.

use crate::clock::Millis;
use crate::store::StoreError;
use async_trait::async_trait;
use foldhash::HashMap;
use parking_lot::Mutex;

/// A queue's `rate_limit`: `count` attempts per `window_ms` (1000 for `per_second`, 60000
/// for `per_minute`), and how many may start at once (`burst`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub window_ms: u64,
    pub burst: u32,
}

impl RateLimit {
    pub fn per_second(&self) -> f64 {
        f64::from(self.count) * 1000.0 / self.window_ms as f64
    }

    /// Milliseconds for one token to come back.
    pub fn ms_per_token(&self) -> f64 {
        self.window_ms as f64 / f64::from(self.count)
    }
}

/// What [`RateGate::take`] granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub granted: u32,
    /// When the bucket holds a whole token again, if the take left it with less than one.
    pub next_at: Option<Millis>,
}

/// Where a queue's tokens are taken from.
#[async_trait]
pub trait RateGate: Send + Sync {
    /// Takes up to `want` tokens of `queue`'s bucket at `now`.
    async fn take(&self, queue: &str, limit: &RateLimit, want: u32, now: Millis) -> Result<Grant, StoreError>;
    /// Gives back `n` tokens taken and not used.
    async fn refund(&self, queue: &str, limit: &RateLimit, n: u32, now: Millis) -> Result<(), StoreError>;
}

/// One token bucket: `tokens` as of `at`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub at: Millis,
}

impl Bucket {
    /// A bucket seen for the first time is full.
    pub fn full(limit: &RateLimit, now: Millis) -> Self {
        Self { tokens: f64::from(limit.burst), at: now }
    }

    /// Refills up to `now` (time never runs backwards here: an earlier `now` refills
    /// nothing), then takes up to `want` whole tokens.
    pub fn take(&mut self, limit: &RateLimit, want: u32, now: Millis) -> Grant {
        self.refill(limit, now);
        let granted = (self.tokens.floor() as u32).min(want);
        self.tokens -= f64::from(granted);
        let next_at = (self.tokens < 1.0)
            .then(|| self.at.saturating_add(((1.0 - self.tokens) * limit.ms_per_token()).ceil() as Millis));
        Grant { granted, next_at }
    }

    pub fn refund(&mut self, limit: &RateLimit, n: u32, now: Millis) {
        self.refill(limit, now);
        self.tokens = (self.tokens + f64::from(n)).min(f64::from(limit.burst));
    }

    fn refill(&mut self, limit: &RateLimit, now: Millis) {
        if now > self.at {
            let earned = (now - self.at) as f64 / limit.ms_per_token();
            self.tokens = (self.tokens + earned).min(f64::from(limit.burst));
            self.at = now;
        }
    }
}

/// Buckets in this process, by queue.
#[derive(Default)]
pub struct LocalGate {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl LocalGate {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_bucket<T>(&self, queue: &str, limit: &RateLimit, now: Millis, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut buckets = self.buckets.lock();
        if let Some(b) = buckets.get_mut(queue) {
            return f(b);
        }
        f(buckets.entry(queue.to_string()).or_insert_with(|| Bucket::full(limit, now)))
    }
}

#[async_trait]
impl RateGate for LocalGate {
    async fn take(&self, queue: &str, limit: &RateLimit, want: u32, now: Millis) -> Result<Grant, StoreError> {
        Ok(self.with_bucket(queue, limit, now, |b| b.take(limit, want, now)))
    }

    async fn refund(&self, queue: &str, limit: &RateLimit, n: u32, now: Millis) -> Result<(), StoreError> {
        self.with_bucket(queue, limit, now, |b| b.refund(limit, n, now));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_PER_SECOND: RateLimit = RateLimit { count: 10, window_ms: 1000, burst: 2 };

    #[test]
    fn a_full_bucket_grants_its_burst_then_one_token_per_interval() {
        let mut b = Bucket::full(&TEN_PER_SECOND, 1_000);
        assert_eq!(b.take(&TEN_PER_SECOND, 5, 1_000), Grant { granted: 2, next_at: Some(1_100) });
        assert_eq!(b.take(&TEN_PER_SECOND, 5, 1_050).granted, 0);
        assert_eq!(b.take(&TEN_PER_SECOND, 5, 1_100), Grant { granted: 1, next_at: Some(1_200) });
        // A long pause refills to the burst, never beyond.
        assert_eq!(b.take(&TEN_PER_SECOND, 5, 60_000).granted, 2);
    }

    #[test]
    fn grants_in_any_window_stay_within_burst_plus_rate_times_window() {
        let mut b = Bucket::full(&TEN_PER_SECOND, 0);
        let mut starts = Vec::new();
        for now in (0..10_000).step_by(7) {
            for _ in 0..b.take(&TEN_PER_SECOND, 3, now).granted {
                starts.push(now);
            }
        }
        for (i, &from) in starts.iter().enumerate() {
            let in_window = starts[i..].iter().take_while(|&&t| t < from + 1_000).count();
            assert!(in_window <= 2 + 10, "{in_window} starts in the second from {from}");
        }
        assert!(starts.len() >= 95, "the limit is used, not starved: {}", starts.len());
    }

    #[test]
    fn a_refund_returns_unused_tokens_up_to_the_burst() {
        let mut b = Bucket::full(&TEN_PER_SECOND, 0);
        assert_eq!(b.take(&TEN_PER_SECOND, 2, 0).granted, 2);
        b.refund(&TEN_PER_SECOND, 5, 0);
        assert_eq!(b.take(&TEN_PER_SECOND, 5, 0).granted, 2);
    }
}
