//! What the memory store tells a store that persists it: each [`Change`] it makes, through
//! a [`Journal`], and the [`Restored`] jobs it is given back at start-up.
//!
//! Invariant: replaying the changes in the order they were reported, from the jobs restored,
//! gives the jobs the memory store holds (up to what a restart re-derives anyway: leases,
//! readiness of due retries, FIFO heads).

use crate::clock::Millis;
use crate::queue::Job;

/// A change [`MemoryStore`] made that a store persisting it must write (the file store
/// keeps its jobs in a `MemoryStore` and writes these behind it, see `store::file`).
/// Leases, releases, recoveries, due retries becoming ready, FIFO promotions and progress
/// are not changes: a restart re-derives all of them (in-flight jobs are ready again,
/// attempt not counted, or cancelled when a cancel was requested; a group's head is its
/// oldest pending member) or need not keep them (progress). A release of a cancel-requested
/// job is a change (`Finished`: it ends cancelled). A change hands over the job as it
/// now is, built for the journal only (a store without one builds none).
///
/// Every job has one order number at a time (`seq`: its enqueue order, or its dead-letter
/// order while dead), unique in the store and never handed out twice, so a persisting store
/// can key its rows by it. A change that gives the job a new number says which it had
/// (`was`).
#[derive(Debug)]
pub enum Change<'a> {
    /// Stored as `Ready` (or `Waiting` behind its group) with enqueue order `seq`.
    Enqueued { job: Job, seq: u64 },
    /// Succeeded and deleted; counts `completed`.
    Completed { id: &'a str, queue: &'a str, seq: u64 },
    /// Failed with budget left: `Delayed` until `job.due_at` with `job.attempts` and
    /// `job.last_error`, keeping its order `seq`; counts `failed`.
    Retried { job: Job, seq: u64 },
    /// Failed with the budget spent: `Dead` with dead-letter order `dead_seq` (its enqueue
    /// order was `was`); counts `failed` and `dead_lettered`.
    DeadLettered { job: Job, dead_seq: u64, was: u64 },
    /// Back from the DLQ: `Ready` with `attempts = 0` and the new enqueue order `seq` (its
    /// dead-letter order was `was`).
    Redriven { job: Job, seq: u64, was: u64 },
    /// Deleted from the DLQ, where its order was `seq`.
    Discarded { id: &'a str, queue: &'a str, seq: u64 },
    /// The job just enqueued holds its queue's idempotency key until the claim expires
    /// (reported right after its `Enqueued`; a duplicate reports nothing at all).
    Claimed(DedupClaim),
    /// Ended and kept, with its order `seq`, until `job.expires_at`: `Completed` with
    /// `job.result` (counts `completed`), or `Cancelled` (counts nothing) — cancelled before
    /// it ran, or its cancel-requested attempt ended.
    Finished { job: Job, seq: u64 },
    /// In flight with a cancel request: should its attempt never report (the engine
    /// stops), the job is `Cancelled` as `request` says, not ready again. Counts nothing.
    CancelRequested { job: Job, seq: u64, request: CancelRequest },
    /// A finished job (`Completed` or `Cancelled`) forgotten once kept long enough.
    Expired { id: &'a str, queue: &'a str, seq: u64 },
}

/// A live idempotency key: jobs with `key` on `queue` enqueued before `expires_at` are
/// duplicates of `job_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupClaim {
    pub queue: String,
    pub key: String,
    pub job_id: String,
    /// The first job's `enqueued_at`: claims that expired by then can be forgotten.
    pub claimed_at: crate::clock::Millis,
    pub expires_at: crate::clock::Millis,
}

/// Where a [`MemoryStore`] operation reports its [`Change`]s, in the order it made them,
/// while it still holds the store's lock.
pub type Journal<'j> = &'j mut dyn FnMut(Change<'_>);

/// A job as a persisting store reloads it: `job.state` is `Ready` (pending: ready, waiting
/// or in flight when the engine stopped), `Delayed`, `Dead`, or `Completed` / `Cancelled`
/// (with `finished_at`, `expires_at` and, completed, its `result`); `seq` is its enqueue
/// order (dead-letter order for `Dead`). A pending job with `cancel_requested` was in
/// flight when a cancel was asked ([`Change::CancelRequested`]): it comes back
/// `Cancelled`, not ready, its `finished_at` and `expires_at` the request's `at` and
/// `until`.
pub struct Restored {
    pub job: Job,
    pub seq: u64,
}

/// A cancel request of an in-flight job, made at `at`: once its attempt has ended, the job
/// is kept `Cancelled` until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelRequest {
    pub at: Millis,
    pub until: Millis,
}

impl CancelRequest {
    /// When the cancelled job ended and until when it is kept, its attempt having ended at
    /// `ended` (pass the request's `at` when unknown): kept as long after its end as the
    /// request asked for after the request.
    pub fn ended_at(&self, ended: Millis) -> (Millis, Millis) {
        let at = ended.max(self.at);
        (at, self.until.saturating_add(at - self.at))
    }
}
