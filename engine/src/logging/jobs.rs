//! One log line per job event, under the target `switchyard::job`.
//!
//! Invariant: every line names its job with the same fields — `queue`, `function_id`,
//! `message_receipt_id`, `attempt`, `outcome`, and where they apply `duration_ms` (from
//! the invoke being sent to the attempt's end) and `error_code` — and never carries the
//! payload or the worker's error message (both may hold user data; the DLQ keeps them).
//!
//! Levels: dead-lettering is `warn` (someone has to look at it); every other event is
//! `debug`, so `SWITCHYARD_LOG=info,switchyard::job=debug` shows them alone. With debug
//! off, each call is one level check: the fields are only evaluated inside the macros.
//!
//! The events, in a job's life: `enqueued` (stored and acknowledged), `started` (sent to a
//! worker), then one of `completed`, `retried` (failed, budget left), `dead_lettered`
//! (failed, budget spent) or `released` (the engine gave the attempt up — shutdown, no
//! worker left — and it does not count). Each end is logged once the store recorded it.

use crate::clock::Millis;
use crate::queue::{Job, NewJob};
use crate::store::Finish;
use tracing::Level;

/// The target of every job event line.
pub const TARGET: &str = "switchyard::job";

/// How an attempt ended, as the `outcome` field says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Retried,
    DeadLettered,
    Released,
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Cancelled => "cancelled",
            Outcome::Released => "released",
        }
    }
}

/// The end of one attempt, kept while its [`Finish`] goes to the store.
#[derive(Clone, Debug)]
pub struct Ended {
    outcome: Outcome,
    error_code: Option<String>,
    sent_at: Option<Millis>,
}

impl Ended {
    /// `sent_at`: when the invoke went to a worker (`None` if it never did).
    pub fn of(finish: &Finish, sent_at: Option<Millis>) -> Self {
        let (outcome, error_code) = match finish {
            Finish::Complete | Finish::CompleteRetained { .. } => (Outcome::Completed, None),
            Finish::Cancelled { .. } => (Outcome::Cancelled, None),
            Finish::Retry { error, .. } => (Outcome::Retried, Some(error.code.clone())),
            Finish::DeadLetter { error, .. } => (Outcome::DeadLettered, Some(error.code.clone())),
            Finish::Release => (Outcome::Released, None),
        };
        Self { outcome, error_code, sent_at }
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Logs the end of `job`'s attempt, recorded by the store at `now`.
    #[inline]
    pub fn log(&self, job: &Job, now: Millis) {
        let duration_ms = self.sent_at.map(|t| now.saturating_sub(t));
        let error_code = self.error_code.as_deref();
        if self.outcome == Outcome::DeadLettered {
            tracing::warn!(
                target: TARGET,
                queue = %job.queue,
                function_id = %job.function_id,
                message_receipt_id = %job.id,
                attempt = job.attempts,
                outcome = self.outcome.as_str(),
                duration_ms,
                error_code,
                "job dead-lettered: its retries are spent"
            );
        } else {
            tracing::debug!(
                target: TARGET,
                queue = %job.queue,
                function_id = %job.function_id,
                message_receipt_id = %job.id,
                attempt = job.attempts,
                outcome = self.outcome.as_str(),
                duration_ms,
                error_code,
                "job {}",
                self.outcome.as_str()
            );
        }
    }
}

/// A job was sent to a worker for attempt `job.attempts`.
#[inline]
pub fn started(job: &Job) {
    tracing::debug!(
        target: TARGET,
        queue = %job.queue,
        function_id = %job.function_id,
        message_receipt_id = %job.id,
        attempt = job.attempts,
        outcome = "started",
        "job started"
    );
}

/// What to log of an enqueue once the store has the jobs: nothing is copied unless job
/// events are on.
pub struct Enqueued(Vec<(String, String, String)>);

impl Enqueued {
    pub fn note(jobs: &[NewJob]) -> Option<Self> {
        tracing::enabled!(target: TARGET, Level::DEBUG)
            .then(|| Self(jobs.iter().map(|j| (j.queue.clone(), j.function_id.clone(), j.id.clone())).collect()))
    }

    /// The jobs are stored and acknowledged (`answers`, in order: a duplicate stored
    /// nothing and is logged as such, with the first job's id).
    pub fn log(self, answers: &[crate::queue::Enqueued]) {
        for ((queue, function_id, id), answer) in self.0.into_iter().zip(answers) {
            if answer.duplicate {
                tracing::debug!(
                    target: TARGET,
                    queue = %queue,
                    function_id = %function_id,
                    message_receipt_id = %answer.id,
                    outcome = "duplicate",
                    "enqueue matched an idempotency key: no job stored"
                );
                continue;
            }
            tracing::debug!(
                target: TARGET,
                queue = %queue,
                function_id = %function_id,
                message_receipt_id = %id,
                attempt = 0u32,
                outcome = "enqueued",
                "job enqueued"
            );
        }
    }
}
