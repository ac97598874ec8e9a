//! [`Counted`]: the store as the engine sees it, counting on the way through.
//!
//! Invariant: every call is passed to the inner store unchanged and its answer returned
//! unchanged; only after an answer does it count — jobs enqueued (per queue, once stored),
//! dead letters redriven and discarded (the counts the store answered), and every failed
//! call by operation. Attempt ends are counted by the dispatcher, which knows each job's
//! queue (a lease token does not).

use super::Metrics;
use crate::clock::Millis;
use crate::limits::rate::RateGate;
use crate::queue::{Enqueued, Job, JobId, NewJob, Progress};
use crate::store::{
    CancelOutcome, DeadLetterPage, Finish, Lease, LeaseRequest, LeaseToken, QueueStats, Store, StoreError,
};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::Notify;

pub struct Counted {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl Counted {
    pub fn wrap(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<dyn Store> {
        Arc::new(Self { inner, metrics })
    }

    fn check<T>(&self, operation: &'static str, answer: Result<T, StoreError>) -> Result<T, StoreError> {
        if answer.is_err() {
            self.metrics.store_error(operation);
        }
        answer
    }
}

#[async_trait]
impl Store for Counted {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        // The queues taken before the move; a duplicate stored nothing, so it is not counted.
        // Most batches are one queue's, so runs are summed.
        let queues: Vec<String> = jobs.iter().map(|j| j.queue.clone()).collect();
        let answers = self.check("enqueue", self.inner.enqueue(jobs).await)?;
        let mut runs: Vec<(&str, u64)> = Vec::new();
        for (queue, answer) in queues.iter().zip(&answers) {
            if answer.duplicate {
                continue;
            }
            match runs.last_mut() {
                Some((q, n)) if *q == queue.as_str() => *n += 1,
                _ => runs.push((queue.as_str(), 1)),
            }
        }
        for (queue, n) in runs {
            if let Some(q) = self.metrics.queue(queue) {
                q.enqueued.fetch_add(n, Relaxed);
            }
        }
        Ok(answers)
    }

    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>, StoreError> {
        self.check("lease", self.inner.lease(request).await)
    }

    async fn finish(&self, token: &LeaseToken, finish: Finish) -> Result<bool, StoreError> {
        self.check("finish", self.inner.finish(token, finish).await)
    }

    async fn finish_many(&self, ends: Vec<(LeaseToken, Finish)>) -> Vec<Result<bool, StoreError>> {
        let answers = self.inner.finish_many(ends).await;
        answers.into_iter().map(|a| self.check("finish", a)).collect()
    }

    async fn next_due(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        self.check("next_due", self.inner.next_due(queue).await)
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        self.check("stats", self.inner.stats(queue).await)
    }

    async fn oldest_ready(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        self.check("oldest_ready", self.inner.oldest_ready(queue).await)
    }

    async fn dead_letters(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<DeadLetterPage, StoreError> {
        self.check("dead_letters", self.inner.dead_letters(queue, cursor, limit).await)
    }

    async fn redrive(&self, queue: &str, ids: &[JobId], now: Millis) -> Result<u64, StoreError> {
        let n = self.check("redrive", self.inner.redrive(queue, ids, now).await)?;
        if let Some(q) = self.metrics.queue(queue) {
            q.redriven.fetch_add(n, Relaxed);
        }
        Ok(n)
    }

    async fn discard(&self, queue: &str, ids: &[JobId]) -> Result<u64, StoreError> {
        let n = self.check("discard", self.inner.discard(queue, ids).await)?;
        if let Some(q) = self.metrics.queue(queue) {
            q.discarded.fetch_add(n, Relaxed);
        }
        Ok(n)
    }

    async fn recover(&self) -> Result<u64, StoreError> {
        self.check("recover", self.inner.recover().await)
    }

    async fn get_job(&self, queue: &str, id: &str, now: Millis) -> Result<Option<Job>, StoreError> {
        self.check("get_job", self.inner.get_job(queue, id, now).await)
    }

    async fn cancel(&self, queue: &str, id: &str, at: Millis, until: Millis) -> Result<CancelOutcome, StoreError> {
        let outcome = self.check("cancel", self.inner.cancel(queue, id, at, until).await)?;
        // One that was running is counted when its attempt stops (the dispatcher's `ended`).
        if let (CancelOutcome::Cancelled(_), Some(q)) = (&outcome, self.metrics.queue(queue)) {
            q.cancelled.fetch_add(1, Relaxed);
        }
        Ok(outcome)
    }

    async fn set_progress(&self, token: &LeaseToken, progress: Progress) -> Result<bool, StoreError> {
        self.check("set_progress", self.inner.set_progress(token, progress).await)
    }

    async fn cancel_requested(&self, tokens: &[LeaseToken]) -> Result<Vec<LeaseToken>, StoreError> {
        self.check("cancel_requested", self.inner.cancel_requested(tokens).await)
    }

    async fn expire_finished(&self, now: Millis) -> Result<u64, StoreError> {
        self.check("expire_finished", self.inner.expire_finished(now).await)
    }

    fn rate_gate(&self) -> Arc<dyn RateGate> {
        self.inner.rate_gate()
    }

    fn changed(&self) -> Arc<Notify> {
        self.inner.changed()
    }

    fn failure(&self) -> Option<String> {
        self.inner.failure()
    }

    fn stall(&self) -> Option<String> {
        self.inner.stall()
    }
}
