//! Backpressure per queue: an enqueue is refused with `QUEUE_FULL` once the queue holds
//! `max_ready` jobs waiting (ready or delayed), so producers that outrun the workers learn
//! it instead of filling the store's memory.
//!
//! Invariant: on one engine, a queue admits no job once `max_ready` are waiting, give or
//! take the enqueues in flight at the moment its count is read. The gate keeps, per queue, the count the store last reported plus what this engine admitted since;
//! a count under the limit admits at once, and a count at the limit (or older than
//! [`REFRESH_MS`]) is read again from the store (`Store::stats`) before deciding, so jobs
//! that completed meanwhile make room. Reading the store only then keeps the check off the
//! enqueue path's round trips.
//!
//! Not exact across engines sharing a store: another engine's enqueues are seen at the next
//! read, so with several engines a queue may pass the limit by what they admit within
//! [`REFRESH_MS`].

use crate::clock::Millis;
use crate::store::{Store, StoreError};
use parking_lot::Mutex;
use std::collections::HashMap;

/// The longest a queue's count is trusted without reading the store again.
pub const REFRESH_MS: Millis = 250;

#[derive(Default)]
pub struct ReadyGate {
    seen: Mutex<HashMap<String, Seen>>,
}

#[derive(Clone, Copy)]
struct Seen {
    waiting: u64,
    read_at: Millis,
}

/// A refusal: the queue's waiting count when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub waiting: u64,
}

impl ReadyGate {
    /// Admits one job to `queue` (limit `max`) at time `now`, or says it is full.
    pub async fn admit(
        &self,
        store: &dyn Store,
        queue: &str,
        max: u64,
        now: Millis,
    ) -> Result<Result<(), Full>, StoreError> {
        if self.try_admit(queue, max, now, false).is_some() {
            return Ok(Ok(()));
        }
        let stats = store.stats(queue).await?;
        let waiting = stats.ready + stats.delayed;
        self.seen.lock().insert(queue.to_string(), Seen { waiting, read_at: now });
        Ok(match self.try_admit(queue, max, now, true) {
            Some(()) => Ok(()),
            None => Err(Full { waiting }),
        })
    }

    /// Admits on the count held, if it is fresh (or `fresh` says it was just read) and under
    /// `max`.
    fn try_admit(&self, queue: &str, max: u64, now: Millis, fresh: bool) -> Option<()> {
        let mut seen = self.seen.lock();
        let s = seen.get_mut(queue)?;
        if (!fresh && now.saturating_sub(s.read_at) >= REFRESH_MS) || s.waiting >= max {
            return None;
        }
        s.waiting += 1;
        Some(())
    }
}
