//! Rate limits across the engines of one prefix: each engine's bucket holds its share of
//! the queue's limit, the share being the fraction of the queue's shards it leases from.
//!
//! Invariant: **at any instant the shares of a queue sum to at most 1**, because a shard is
//! leased from by at most one engine (its owner, caught up and not handing it over: the
//! broker's single active consumer decides, see `shard`). An engine owning `o` of the
//! [`SHARDS`] shards refills at `rate × o / SHARDS` (its window stretched by
//! `SHARDS / o`, rounded up) and holds at most `max(1, ⌊burst × o / SHARDS⌋)` tokens; an
//! engine owning none grants nothing (it has nothing to lease).
//!
//! So, over any window of `T` ms in which `k` engines lease from the queue and no shard
//! changes hands, the attempts started cluster-wide number at most
//! `burst + (k − 1) + rate × T / 1000` (each share's bucket is a [`Bucket`], whose bound is
//! `capacity + rate × T`; the capacities sum to at most `burst + k − 1`, the `max(1, …)`
//! adding at most one token per engine beyond its share of `burst`). A shard that changes
//! hands in the window can add at most the new owner's capacity once (its bucket starts
//! full the first time it owns a shard of the queue); one engine alone owns every shard and
//! holds exactly `burst + rate × T / 1000`, the embedded stores' bound.
//!
//! Cost: nothing on the broker — a share is read from the shards this engine consumes.
//! What it does not do: follow the load. A queue whose ready jobs sit on one engine's
//! shards (a few FIFO groups) runs at that engine's share of the limit, not the whole of it;
//! standard queues spread their jobs over the shards by id, so their shares match the load.

use super::Inner;
use super::topology::SHARDS;
use crate::clock::Millis;
use crate::limits::rate::{Bucket, Grant, RateGate, RateLimit};
use crate::store::StoreError;
use async_trait::async_trait;
use foldhash::HashMap;
use parking_lot::Mutex;
use std::sync::Weak;

/// How soon an engine without shards of a queue looks again.
const NO_SHARE_RETRY_MS: Millis = 500;

/// The store's gate: buckets per queue, sized by this engine's share.
pub struct ShareGate {
    store: Weak<Inner>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl ShareGate {
    pub(super) fn new(store: Weak<Inner>) -> Self {
        Self { store, buckets: Mutex::new(HashMap::default()) }
    }

    /// How many shards of `queue` this engine leases from now. A queue not used yet is
    /// declared and subscribed first (as a lease would), waiting for the shards this engine
    /// gets to catch up.
    async fn owned(&self, queue: &str) -> Result<usize, StoreError> {
        let Some(inner) = self.store.upgrade() else { return Ok(0) };
        let session = inner.session.read().clone();
        let Some(session) = session.filter(|s| !s.is_failed()) else { return Ok(0) };
        inner.queues.lock().insert(queue.to_string());
        let shards = session.ensure(queue, true).await?;
        Ok(shards.iter().filter(|s| s.leases()).count())
    }
}

/// `limit` scaled to `owned` of the [`SHARDS`] shards (see the module doc).
pub fn share(limit: &RateLimit, owned: usize) -> Option<RateLimit> {
    if owned == 0 {
        return None;
    }
    let (owned, all) = (owned.min(SHARDS) as u64, SHARDS as u64);
    Some(RateLimit {
        count: limit.count,
        window_ms: (limit.window_ms * all).div_ceil(owned),
        burst: ((u64::from(limit.burst) * owned) / all).max(1) as u32,
    })
}

#[async_trait]
impl RateGate for ShareGate {
    async fn take(&self, queue: &str, limit: &RateLimit, want: u32, now: Millis) -> Result<Grant, StoreError> {
        let Some(mine) = share(limit, self.owned(queue).await?) else {
            return Ok(Grant { granted: 0, next_at: Some(now.saturating_add(NO_SHARE_RETRY_MS)) });
        };
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(queue.to_string()).or_insert_with(|| Bucket::full(&mine, now));
        Ok(bucket.take(&mine, want, now))
    }

    async fn refund(&self, queue: &str, limit: &RateLimit, n: u32, now: Millis) -> Result<(), StoreError> {
        let Some(mine) = share(limit, self.owned(queue).await?) else { return Ok(()) };
        if let Some(bucket) = self.buckets.lock().get_mut(queue) {
            bucket.refund(&mine, n, now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit { count: 20, window_ms: 1000, burst: 4 };

    #[test]
    fn shares_of_every_split_sum_to_the_rate_and_at_most_burst_plus_engines_minus_one() {
        assert_eq!(share(&LIMIT, 0), None, "no shard, no tokens");
        assert_eq!(share(&LIMIT, SHARDS), Some(LIMIT), "one engine owning all holds the whole limit");
        // Every way of splitting the shards between engines.
        for split in [vec![1, 3], vec![2, 2], vec![1, 1, 2], vec![1, 1, 1, 1], vec![3, 1]] {
            let shares: Vec<RateLimit> = split.iter().map(|&o| share(&LIMIT, o).unwrap()).collect();
            let rate: f64 = shares.iter().map(RateLimit::per_second).sum();
            assert!(rate <= LIMIT.per_second() + 1e-9, "{split:?}: {rate}/s");
            assert!(rate >= LIMIT.per_second() * 0.95, "{split:?}: the limit is used, {rate}/s");
            let burst: u32 = shares.iter().map(|s| s.burst).sum();
            assert!(burst < LIMIT.burst + split.len() as u32, "{split:?}: burst {burst}");
        }
        let one = RateLimit { count: 1, window_ms: 60_000, burst: 1 };
        let quarter = share(&one, 1).unwrap();
        assert_eq!((quarter.burst, quarter.window_ms), (1, 240_000), "a share of burst 1 still grants whole tokens");
    }

    #[test]
    fn two_engines_with_two_shards_each_start_at_most_burst_plus_one_plus_rate_per_window() {
        // Two buckets, one per engine, each at its share; grants counted per 1-second window.
        let (a, b) = (share(&LIMIT, 2).unwrap(), share(&LIMIT, 2).unwrap());
        let (mut ba, mut bb) = (Bucket::full(&a, 0), Bucket::full(&b, 0));
        let mut starts = Vec::new();
        for now in (0..20_000).step_by(3) {
            for _ in 0..ba.take(&a, 5, now).granted {
                starts.push(now);
            }
            for _ in 0..bb.take(&b, 5, now).granted {
                starts.push(now);
            }
        }
        for (i, &from) in starts.iter().enumerate() {
            let n = starts[i..].iter().take_while(|&&t| t < from + 1_000).count() as u32;
            assert!(n <= LIMIT.burst + 1 + LIMIT.count, "{n} starts in the second from {from}");
        }
        assert!(starts.len() >= 380, "the limit is used, not starved: {}", starts.len());
    }
}
