//! The store seam: where jobs live, and the one place their state changes.
//!
//! Invariant: every operation is one atomic transition of one or more jobs, guarded by the
//! state it expects. `finish` applies only while the job is still `InFlight` under the
//! caller's [`LeaseToken`]; a stale token (the job was released, recovered or re-leased
//! meanwhile) changes nothing and answers `false`. Stores never decide *what* follows a
//! failure — the dispatcher asks [`crate::queue::retry`] and hands the store a [`Finish`].
//!
//! FIFO gating lives in the store, because with several engines on one store it is the
//! only place that sees every engine's leases: a job with a group is leased only when
//! every earlier job of its group has completed or been dead-lettered.
//!
//! What a store is told, in order of a job's life:
//! 1. `enqueue` — stored (durably, for a durable store) before this returns; `Delayed`
//!    until its `not_before` if it has one; not stored at all when its idempotency key has
//!    a live claim on its queue (the answer names the first job). Claims are made in the
//!    same atomic step as the insert, and expire `window_ms` after the first job's
//!    `enqueued_at` (the engine's clock).
//! 2. `lease` — up to `max` ready jobs of one queue whose functions have capacity.
//! 3. `finish` — complete, retry at a due time, dead-letter, or release (not counted).
//! 4. `redrive` / `discard` — operator moves out of the DLQ.
//!
//! The job lifecycle for callers (see [`crate::queue`] for the states):
//! - `get_job` — one job by id, live or finished-and-retained; a `Completed` or `Cancelled`
//!   job whose `expires_at` is not after `now` is gone (`None`) even before
//!   `expire_finished` has deleted it.
//! - `cancel` — `Ready` / `Waiting` / `Delayed` → `Cancelled` at once (a FIFO group moves on
//!   as when its head completes); `InFlight` → `cancel_requested`, and the attempt's end
//!   then makes it `Cancelled`: a `Retry` or `DeadLetter` finish of a cancel-requested job is
//!   applied as [`Finish::Cancelled`] by the store itself, a `Complete` stays a completion
//!   (the work was done), a `Release` stays a release but the job is then `Cancelled`, not
//!   ready. Cancelled jobs are not counted `failed` or `dead_lettered`.
//! - `set_progress` — the latest report of a job in flight, under its lease token.
//! - `cancel_requested` — which of an engine's leases have a cancel request (an engine
//!   other than the one holding the lease may have taken it).
//! - `expire_finished` — forgets retained jobs whose time is over.
//! - priorities — `lease` takes ready jobs by priority (highest first), then enqueue order.
//! - `rate_gate` — the token buckets of rate-limited queues: in the store's process for an
//!   embedded store, shared by every engine for a shared one.
//!
//! Every store passes [`conformance`] unchanged.

pub mod conformance;
pub mod file;
pub mod memory;
pub mod rabbitmq;
pub mod redis;

use crate::clock::Millis;
use crate::config::AdapterSpec;
use crate::limits::rate::RateGate;
use crate::queue::{Enqueued, Job, JobError, JobId, NewJob, Payload, Progress};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::Notify;

/// Identifies one lease of one job: a finish with an older token is refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseToken {
    pub job_id: JobId,
    pub lease_id: u64,
}

/// A job handed out by `lease`, now `InFlight`; `job.attempts` counts this attempt.
#[derive(Clone, Debug)]
pub struct Lease {
    pub token: LeaseToken,
    pub job: Job,
}

/// What to lease: from `queue`, at most `max` jobs, at most `budget` per function, only
/// jobs whose `due_at <= now`. The oldest ready jobs (enqueue order) go first.
#[derive(Clone, Debug)]
pub struct LeaseRequest {
    pub queue: String,
    pub functions: Vec<(String, usize)>,
    pub max: usize,
    pub now: Millis,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Success: the job is deleted and counted `completed`.
    Complete,
    /// Success on a queue that keeps results: `Completed` with its `result` until `until`,
    /// then forgotten; counted `completed`.
    CompleteRetained { result: Payload, at: Millis, until: Millis },
    /// The attempt of a cancel-requested job ended (the engine gave up on it, or it failed):
    /// `Cancelled` until `until`. Not counted failed.
    Cancelled { at: Millis, until: Millis },
    /// Failure with budget left: `Delayed` until `due_at`; counted `failed`.
    Retry { due_at: Millis, error: JobError },
    /// Failure with the budget spent: `Dead`; counted `failed` and `dead_lettered`.
    DeadLetter { error: JobError, at: Millis },
    /// The attempt did not happen (engine shutting down, no worker after all): `Ready`
    /// again and the attempt is not counted.
    Release,
}

/// Per-queue gauges and counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// `Ready` and `Waiting` jobs.
    pub ready: u64,
    pub delayed: u64,
    pub in_flight: u64,
    pub dead: u64,
    pub enqueued: u64,
    pub completed: u64,
    /// Failed attempts (each retry and each dead-lettering).
    pub failed: u64,
    pub dead_lettered: u64,
}

/// One page of the dead-letter queue, oldest dead-lettering first.
#[derive(Clone, Debug, Default)]
pub struct DeadLetterPage {
    pub entries: Vec<Job>,
    /// Pass back to continue; `None` at the end.
    pub next_cursor: Option<String>,
}

/// The position after which a dead-letter page starts. Every store's cursor is the dead
/// sequence number of the last entry it returned, in decimal; none (or empty) is the start.
pub fn dead_letter_cursor(cursor: Option<&str>) -> Result<u64, StoreError> {
    match cursor {
        None | Some("") => Ok(0),
        Some(c) => c.parse::<u64>().map_err(|_| StoreError::BadCursor(c.to_string())),
    }
}

/// What `Store::cancel` did.
#[derive(Clone, Debug)]
pub enum CancelOutcome {
    /// No such job in the queue (never was, or no longer kept).
    NotFound,
    /// It was ready, waiting or delayed: now `Cancelled`; it never runs.
    Cancelled(Job),
    /// It is in flight under `lease`: cancel is requested; the engine holding the lease
    /// stops the attempt, and its end makes the job `Cancelled`.
    Cancelling(Job, LeaseToken),
    /// Cancelled (or cancel-requested) before.
    AlreadyCancelled(Job),
    /// Completed or dead: nothing changed.
    AlreadyFinished(Job),
}

/// Why a store operation failed. Callers see these as `UNAVAILABLE`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("invalid page token '{0}'")]
    BadCursor(String),
    #[error("store is corrupt or incompatible: {0}")]
    Corrupt(String),
}

/// The seam every store implements. See the module doc for the invariants.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores new jobs, all or none. Returns only once they are stored, with one answer
    /// per job in order: created, or a duplicate (its `dedup` key has a live claim on its
    /// queue: nothing stored, the first job's id answered). A job with a `not_before` is
    /// `Delayed` until then. A batch with one key twice: the second is a duplicate of the
    /// first.
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError>;

    /// Moves ready jobs to `InFlight` (see [`LeaseRequest`]). Delayed jobs whose due time
    /// has come are ready.
    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>, StoreError>;

    /// Ends an attempt. `Ok(false)` when the token is stale (nothing changed).
    async fn finish(&self, token: &LeaseToken, finish: Finish) -> Result<bool, StoreError>;

    /// Ends several attempts (one worker message's results): one answer per end, in
    /// order, each what [`Store::finish`] would have answered. The default runs them
    /// concurrently (a remote store answers them in one round of trips); a local store
    /// applies them under one lock.
    async fn finish_many(&self, ends: Vec<(LeaseToken, Finish)>) -> Vec<Result<bool, StoreError>> {
        futures::future::join_all(
            ends.into_iter().map(|(token, finish)| async move { self.finish(&token, finish).await }),
        )
        .await
    }

    /// The earliest due time of a `Delayed` job of `queue`.
    async fn next_due(&self, queue: &str) -> Result<Option<Millis>, StoreError>;

    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError>;

    /// The first-enqueue time of the oldest `Ready` job of `queue` (the next one a lease
    /// would take, were its function served), if any. `Waiting` FIFO members and retries
    /// not yet moved out of `Delayed` are not ready. A redriven job keeps its first enqueue
    /// time. Read at scrape time for the oldest-ready-age gauge.
    async fn oldest_ready(&self, queue: &str) -> Result<Option<Millis>, StoreError>;

    /// Dead letters of `queue` after `cursor`, at most `limit`.
    async fn dead_letters(&self, queue: &str, cursor: Option<&str>, limit: usize)
    -> Result<DeadLetterPage, StoreError>;

    /// Moves dead letters (all when `ids` is empty) back to `Ready` with `attempts = 0`.
    /// A FIFO job re-enters at the tail of its group. Returns how many moved.
    async fn redrive(&self, queue: &str, ids: &[JobId], now: Millis) -> Result<u64, StoreError>;

    /// Deletes dead letters (all when `ids` is empty). Returns how many.
    async fn discard(&self, queue: &str, ids: &[JobId]) -> Result<u64, StoreError>;

    /// The job `id` of `queue` as it stands at `now`; `None` when unknown or no longer kept.
    async fn get_job(&self, queue: &str, id: &str, now: Millis) -> Result<Option<Job>, StoreError>;

    /// Cancels the job `id` of `queue` (see the module doc); a `Cancelled` job is kept until
    /// `until`. `at` is the engine's now.
    async fn cancel(&self, queue: &str, id: &str, at: Millis, until: Millis) -> Result<CancelOutcome, StoreError>;

    /// Records the latest progress of the job `token` leases. `Ok(false)` when stale.
    async fn set_progress(&self, token: &LeaseToken, progress: Progress) -> Result<bool, StoreError>;

    /// Of `tokens` (leases this engine holds), those whose job has a cancel request.
    async fn cancel_requested(&self, tokens: &[LeaseToken]) -> Result<Vec<LeaseToken>, StoreError>;

    /// Forgets `Completed` and `Cancelled` jobs whose `expires_at` is at or before `now`.
    /// Returns how many.
    async fn expire_finished(&self, now: Millis) -> Result<u64, StoreError>;

    /// The token buckets that rate-limited queues lease through.
    fn rate_gate(&self) -> Arc<dyn RateGate>;

    /// Start-up: every job this engine had `InFlight` becomes `Ready` again, the
    /// interrupted attempt not counted. Returns how many.
    async fn recover(&self) -> Result<u64, StoreError>;

    /// Start-up: the queues the config names. A store that keeps objects per queue in a
    /// shared broker declares them here, so a conflicting one stops start-up with a clear
    /// error rather than failing the first enqueue; the others need nothing.
    async fn declare(&self, _queues: &[String]) -> Result<(), StoreError> {
        Ok(())
    }

    /// Notified whenever jobs may have become ready (enqueue, finish, redrive, …).
    fn changed(&self) -> Arc<Notify>;

    /// Why the store has stopped for good, if it has (a durable store after a failed
    /// write): every call answers `Unavailable` until the engine restarts, and the engine
    /// reports NOT_SERVING on its health service so that a supervisor restarts it.
    fn failure(&self) -> Option<String> {
        None
    }

    /// Why the store cannot write right now, if it has been stuck for a while (a durable
    /// store whose disk has not answered one commit for seconds): health is NOT_SERVING
    /// while this lasts, so traffic goes elsewhere, and SERVING again once it passes.
    fn stall(&self) -> Option<String> {
        None
    }
}

/// Whether this build has a store for `adapter`. Stores not built yet are refused at
/// start-up (and by `check-config`) with a clear message — never accepted and ignored.
pub fn check(adapter: &AdapterSpec) -> Result<(), StoreError> {
    match adapter {
        AdapterSpec::RabbitMq { url, .. } if url.starts_with("amqps://") => Err(StoreError::Unavailable(format!(
            "{}: amqps:// (TLS) is not supported by this build; use amqp:// to a local broker or a TLS-terminating proxy",
            adapter.describe()
        ))),
        AdapterSpec::Memory | AdapterSpec::File { .. } | AdapterSpec::Redis { .. } | AdapterSpec::RabbitMq { .. } => {
            Ok(())
        }
    }
}

/// Opens the store the config names.
pub async fn open(adapter: &AdapterSpec) -> Result<Arc<dyn Store>, StoreError> {
    check(adapter)?;
    match adapter {
        AdapterSpec::Memory => Ok(Arc::new(memory::MemoryStore::new())),
        AdapterSpec::File { path } => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || file::FileStore::open(&path))
                .await
                .map_err(|e| StoreError::Unavailable(format!("opening the file store did not finish: {e}")))??;
            Ok(Arc::new(store))
        }
        AdapterSpec::Redis { url, key_prefix } => {
            let options = self::redis::RedisOptions::from_env()?;
            Ok(Arc::new(self::redis::RedisStore::connect(url, key_prefix, options).await?))
        }
        AdapterSpec::RabbitMq { url, key_prefix } => {
            Ok(Arc::new(rabbitmq::RabbitStore::connect(url, key_prefix).await?))
        }
    }
}
