//! Following one job by its receipt (`switchyard.v1.Queues/GetJob`, `/CancelJob`), and
//! waiting for its result.
//!
//! Invariant: [`Queues::wait_for_result`] answers only what the engine said — a completed
//! job's result, or a typed error for a job that ended otherwise (`JOB_DEAD`,
//! `JOB_CANCELLED`), is unknown (`JOB_NOT_FOUND`, from the engine) or did not end within
//! the timeout (`TIMEOUT`) — and never asks the engine more often than every 50 ms
//! (backing off to 1 s), so many waiters cost the engine little.
//!
//! A completed job is kept (with its result) only on a queue with `result_retention_ms`;
//! without it, a job that completed is `JOB_NOT_FOUND` at once.

use crate::handler::{HandlerError, Progress};
use crate::json::from_proto;
use crate::queues::{Queues, time};
use crate::{Error, Reason};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};
use switchyard_proto::v1 as pb;

/// Where a job is in its life, as `GetJob` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Due, waiting for a worker slot.
    Ready,
    /// FIFO: behind an earlier job of its group.
    Waiting,
    /// A delayed enqueue, not due yet.
    Delayed,
    /// Running on a worker.
    InFlight,
    /// An attempt failed; the next is due at `due_at`.
    Retrying,
    /// Succeeded; `result` holds the handler's value.
    Completed,
    /// In the dead-letter queue.
    Dead,
    /// Cancelled before or during a run.
    Cancelled,
}

impl JobState {
    /// The state the engine names `word` (`"in_flight"`), if it is one this SDK knows.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "ready" => JobState::Ready,
            "waiting" => JobState::Waiting,
            "delayed" => JobState::Delayed,
            "in_flight" => JobState::InFlight,
            "retrying" => JobState::Retrying,
            "completed" => JobState::Completed,
            "dead" => JobState::Dead,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    /// The engine's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Ready => "ready",
            JobState::Waiting => "waiting",
            JobState::Delayed => "delayed",
            JobState::InFlight => "in_flight",
            JobState::Retrying => "retrying",
            JobState::Completed => "completed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// One job as `GetJob` reports it.
#[derive(Clone, Debug)]
pub struct Job {
    /// The id the producer got back.
    pub message_receipt_id: String,
    /// Its queue.
    pub queue: String,
    /// The function it runs.
    pub function_id: String,
    /// `None` for a state word this SDK version does not know (see `state_word`).
    pub state: Option<JobState>,
    /// The engine's word for the state.
    pub state_word: String,
    /// Attempts started so far.
    pub attempts: u32,
    /// `max_retries + 1` of its queue.
    pub max_attempts: u32,
    /// The last failed attempt's error.
    pub last_error: Option<HandlerError>,
    /// Its payload.
    pub payload: Value,
    /// FIFO jobs only.
    pub group: Option<String>,
    /// 0 (default, lowest) to 9.
    pub priority: u32,
    /// When it was first enqueued.
    pub enqueued_at: Option<SystemTime>,
    /// Delayed or retrying: when it is due.
    pub due_at: Option<SystemTime>,
    /// Completed, dead or cancelled: when it ended.
    pub finished_at: Option<SystemTime>,
    /// Completed or cancelled: until when the engine keeps it.
    pub expires_at: Option<SystemTime>,
    /// Completed: the handler's value.
    pub result: Option<Value>,
    /// The latest progress its handler reported.
    pub progress: Option<Progress>,
    /// In flight, and a cancel was asked for.
    pub cancel_requested: bool,
    /// A topic subscriber's job: its topic.
    pub topic: Option<String>,
}

/// What `CancelJob` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It had not started: it never runs.
    Cancelled,
    /// It is running: its worker is told to stop, and it ends cancelled.
    Cancelling,
    /// An earlier cancel did it.
    AlreadyCancelled,
    /// It had completed or been dead-lettered: nothing changed.
    AlreadyFinished,
}

impl CancelOutcome {
    fn parse(word: &str) -> Result<Self, Error> {
        Ok(match word {
            "cancelled" => CancelOutcome::Cancelled,
            "cancelling" => CancelOutcome::Cancelling,
            "already_cancelled" => CancelOutcome::AlreadyCancelled,
            "already_finished" => CancelOutcome::AlreadyFinished,
            other => {
                return Err(Error::local(
                    Reason::Other("UNKNOWN_OUTCOME".into()),
                    format!("the engine answered cancel outcome '{other}', which this SDK does not know"),
                ));
            }
        })
    }

    /// The engine's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelOutcome::Cancelled => "cancelled",
            CancelOutcome::Cancelling => "cancelling",
            CancelOutcome::AlreadyCancelled => "already_cancelled",
            CancelOutcome::AlreadyFinished => "already_finished",
        }
    }
}

const FIRST_POLL: Duration = Duration::from_millis(50);
const LAST_POLL: Duration = Duration::from_secs(1);

impl Queues {
    /// The job `message_receipt_id` of `queue`: live, or finished and still kept.
    /// `JOB_NOT_FOUND` when the queue has no such job (any more).
    pub async fn get_job(&self, queue: &str, message_receipt_id: &str) -> Result<Job, Error> {
        let req = pb::GetJobRequest { queue: queue.into(), message_receipt_id: message_receipt_id.into() };
        let out = self.client().get_job(req).await.map_err(|s| self.error(s))?.into_inner();
        Ok(job(out.job.unwrap_or_default()))
    }

    /// Cancels the job: one that has not started never runs; a running one's worker is told
    /// to stop and the job ends cancelled (not retried, not dead-lettered). Idempotent.
    pub async fn cancel_job(&self, queue: &str, message_receipt_id: &str) -> Result<(CancelOutcome, Job), Error> {
        let req = pb::CancelJobRequest { queue: queue.into(), message_receipt_id: message_receipt_id.into() };
        let out = self.client().cancel_job(req).await.map_err(|s| self.error(s))?.into_inner();
        Ok((CancelOutcome::parse(&out.outcome)?, job(out.job.unwrap_or_default())))
    }

    /// Waits until the job has finished and answers its result. Errors: `JOB_DEAD` (it was
    /// dead-lettered; details carry its last error's `message` and `code`), `JOB_CANCELLED`,
    /// `TIMEOUT` (not finished within `timeout`), `JOB_NOT_FOUND` (from the engine: unknown,
    /// or completed on a queue that keeps no results).
    pub async fn wait_for_result(
        &self,
        queue: &str,
        message_receipt_id: &str,
        timeout: Duration,
    ) -> Result<Value, Error> {
        let deadline = Instant::now() + timeout;
        let mut pause = FIRST_POLL;
        loop {
            let job = self.get_job(queue, message_receipt_id).await?;
            match job.state {
                Some(JobState::Completed) => return Ok(job.result.unwrap_or(Value::Null)),
                Some(JobState::Dead) => return Err(ended(Reason::JobDead, &job, "was dead-lettered")),
                Some(JobState::Cancelled) => return Err(ended(Reason::JobCancelled, &job, "was cancelled")),
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                let message = format!(
                    "job '{message_receipt_id}' of queue '{queue}' did not finish within {} ms (it is {})",
                    timeout.as_millis(),
                    job.state_word
                );
                return Err(Error::local(Reason::Timeout, message));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(LAST_POLL);
        }
    }
}

/// The typed error for a job that ended without a result.
fn ended(reason: Reason, job: &Job, how: &str) -> Error {
    let mut details = HashMap::from([
        ("queue".to_string(), job.queue.clone()),
        ("message_receipt_id".to_string(), job.message_receipt_id.clone()),
    ]);
    let mut message = format!("job '{}' of queue '{}' {how}", job.message_receipt_id, job.queue);
    if let Some(e) = &job.last_error {
        message.push_str(&format!(" after {} attempt(s): {}: {}", job.attempts, e.code, e.message));
        details.insert("message".into(), e.message.clone());
        details.insert("code".into(), e.code.clone());
    }
    Error { details, ..Error::local(reason, message) }
}

fn job(j: pb::JobInfo) -> Job {
    let some = |s: String| (!s.is_empty()).then_some(s);
    Job {
        state: JobState::parse(&j.state),
        state_word: j.state,
        attempts: j.attempts.unwrap_or(0),
        max_attempts: j.max_attempts,
        last_error: j.last_error.map(|e| HandlerError {
            message: e.message,
            code: e.code,
            stack: e.stack,
            non_retryable: e.non_retryable,
        }),
        payload: j.payload.as_ref().map(from_proto).unwrap_or_default(),
        group: some(j.group),
        priority: j.priority.unwrap_or(0),
        enqueued_at: time(j.enqueued_at),
        due_at: time(j.due_at),
        finished_at: time(j.finished_at),
        expires_at: time(j.expires_at),
        result: j.result.as_ref().map(from_proto),
        progress: j.progress.map(|p| Progress { value: p.value, detail: p.detail.as_ref().map(from_proto) }),
        cancel_requested: j.cancel_requested,
        topic: some(j.topic),
        message_receipt_id: j.message_receipt_id,
        queue: j.queue,
        function_id: j.function_id,
    }
}
