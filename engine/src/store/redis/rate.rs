//! The cluster-wide rate limit: every engine on a key prefix takes a queue's tokens from
//! one bucket, `P:q:<len>:<queue>:rate` (a hash `tokens at`).
//!
//! Invariant: the bucket obeys [`crate::limits::rate::Bucket`] exactly — refill at the
//! limit's rate from the instant it was last read (the engines' `now`, never Redis time),
//! at most `burst` — and each take and each refund is one script, so with any number of
//! engines at most `burst + rate × T / 1000` attempts start in any window of `T` ms. A
//! bucket key expires once it would have refilled anyway (a missing bucket is full).
//!
//! Engines whose clocks disagree only refill less: a `now` behind the bucket's `at` earns
//! nothing.

use super::{Shared, unavailable};
use crate::clock::Millis;
use crate::limits::rate::{Grant, RateGate, RateLimit};
use crate::store::StoreError;
use async_trait::async_trait;
use std::sync::Arc;

/// The [`RateGate`] of a Redis store.
pub(super) struct RedisGate {
    pub(super) shared: Arc<Shared>,
}

impl RedisGate {
    fn invocation<'a>(
        &self,
        script: &'a ::redis::Script,
        queue: &str,
        limit: &RateLimit,
        n: u32,
        now: Millis,
    ) -> ::redis::ScriptInvocation<'a> {
        let mut inv = self.shared.invocation(script);
        inv.arg(queue).arg(limit.count.max(1)).arg(limit.window_ms.max(1)).arg(limit.burst).arg(n).arg(now);
        inv
    }
}

#[async_trait]
impl RateGate for RedisGate {
    async fn take(&self, queue: &str, limit: &RateLimit, want: u32, now: Millis) -> Result<Grant, StoreError> {
        let inv = self.invocation(&self.shared.scripts.rate_take, queue, limit, want, now);
        let (granted, next_at): (u32, i64) =
            inv.invoke_async(&mut self.shared.conn.clone()).await.map_err(unavailable("rate limit take"))?;
        Ok(Grant { granted, next_at: u64::try_from(next_at).ok() })
    }

    async fn refund(&self, queue: &str, limit: &RateLimit, n: u32, now: Millis) -> Result<(), StoreError> {
        if n == 0 {
            return Ok(());
        }
        let inv = self.invocation(&self.shared.scripts.rate_refund, queue, limit, n, now);
        let _: u64 = inv.invoke_async(&mut self.shared.conn.clone()).await.map_err(unavailable("rate limit refund"))?;
        Ok(())
    }
}
