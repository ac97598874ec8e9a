//! What a worker logs about each job it runs, through `tracing` (target `switchyard_sdk…`).
//!
//! Invariant: the field names are the engine's job-event names — `queue`, `function_id`,
//! `message_receipt_id`, `attempt`, `outcome`, `duration_ms`, `error_code` — and no line
//! ever carries the payload or the result.
//!
//! 1. DEBUG `job started` when a handler starts.
//! 2. At its end, one line: DEBUG `job completed` (`outcome = completed`); WARN `job failed:
//!    MESSAGE` (`outcome = failed`, plus `error_code`, `error` and `stack` when the handler
//!    has one) for an `Err`, a panic or an attempt the engine cancelled for its timeout
//!    (`error_code = TIMEOUT`); DEBUG `job cancelled` (`outcome = cancelled`) for any other
//!    cancel (the engine shutting down).
//!
//! Direct calls have no queue and no receipt id; those fields are then absent.

use crate::handler::{Context, HandlerError};
use std::time::Duration;

/// One event at `$level` with the job's fields, then the event's own fields and message.
macro_rules! job_event {
    ($level:ident, $job:expr, $($rest:tt)+) => {
        tracing::$level!(
            queue = $job.queue.as_deref(),
            function_id = %$job.function_id,
            message_receipt_id = $job.message_receipt_id.as_deref(),
            attempt = $job.attempt,
            $($rest)+
        )
    };
}

/// The engine's cancel reason for an attempt that outlived its queue's `timeout_ms`.
const TIMEOUT_REASON: &str = "timeout";

/// The fields of one invocation, taken from its context before the handler owns it.
pub(crate) struct Job {
    function_id: String,
    queue: Option<String>,
    message_receipt_id: Option<String>,
    attempt: u32,
}

impl Job {
    pub fn of(ctx: &Context) -> Self {
        Self {
            function_id: ctx.function_id.clone(),
            queue: ctx.queue.clone(),
            message_receipt_id: ctx.message_receipt_id.clone(),
            attempt: ctx.attempt,
        }
    }

    pub fn started(&self) {
        job_event!(debug, self, "job started");
    }

    pub fn finished(&self, outcome: &Result<Vec<u8>, HandlerError>, took: Duration) {
        match outcome {
            Ok(_) => job_event!(debug, self, outcome = "completed", duration_ms = millis(took), "job completed"),
            Err(e) => self.failed(e, took),
        }
    }

    /// The engine cancelled the attempt (`reason` as it said it, if it reached the task).
    pub fn cancelled(&self, reason: Option<&str>, took: Duration) {
        if reason == Some(TIMEOUT_REASON) {
            let e =
                HandlerError::new("the engine cancelled the attempt: it outlived its timeout_ms").with_code("TIMEOUT");
            return self.failed(&e, took);
        }
        job_event!(
            debug,
            self,
            outcome = "cancelled",
            duration_ms = millis(took),
            reason = reason.unwrap_or("cancelled"),
            "job cancelled by the engine: {}",
            reason.unwrap_or("cancelled")
        );
    }

    fn failed(&self, e: &HandlerError, took: Duration) {
        job_event!(
            warn,
            self,
            outcome = "failed",
            duration_ms = millis(took),
            error_code = %e.code,
            error = %e.message,
            stack = (!e.stack.is_empty()).then_some(e.stack.as_str()),
            "job failed: {}",
            e.message
        );
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}
