//! Jobs and their lifecycle.
//!
//! A job's state is data ([`JobState`]), never implied by which list it sits in. Every
//! move between states is a named transition applied atomically by a store
//! ([`crate::store::Store`]); the decision *which* transition follows a failed attempt is
//! made here, by the pure function [`retry::after_failure`], never by a store.
//!
//! ```text
//!  enqueue ──► Ready ──lease──► InFlight ──success──► (deleted, counted completed)
//!    │           ▲  ▲              │ │
//!    │ (fifo,    │  └──release─────┘ └─failure─► Delayed ──due──► Ready
//!    │ not head) │                   └─failure, budget spent─► Dead ──redrive──► Ready
//!    ▼           │                                               └──discard──► (deleted)
//!  Waiting ──────┘ (its group's head finished or was dead-lettered)
//! ```
//!
//! A completed job is deleted at once unless its queue keeps results
//! (`result_retention_ms`): then it stays `Completed`, with its result, until its
//! `expires_at`. Cancelling ([`crate::store::Store::cancel`]) moves a `Ready`, `Waiting` or
//! `Delayed` job to `Cancelled` at once; an `InFlight` one gets `cancel_requested` and ends
//! `Cancelled` when its attempt stops (whatever the attempt's outcome but success). A
//! `Cancelled` job is kept until its `expires_at`, then forgotten; it never runs again.

pub mod group;
pub mod retry;

use crate::clock::Millis;
use bytes::Bytes;

/// The id a producer gets back from an enqueue (`message_receipt_id`).
pub type JobId = String;

/// A JSON payload, carried as the encoded bytes of a `google.protobuf.Value` so that the
/// engine and its stores pass it through without re-encoding.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Payload(pub Bytes);

/// The closed set of states a stored job can be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum JobState {
    /// FIFO only: queued behind an earlier job of its group. Moved to `Ready` by the
    /// store when the group's head completes or is dead-lettered.
    Waiting,
    /// Due now; may be leased. Entered on enqueue, when a delay expires, on release and
    /// on redrive.
    #[default]
    Ready,
    /// Not due before `due_at`: a retry scheduled by a failed attempt with budget left, or
    /// a delayed enqueue (`delay_ms` / `not_before`).
    Delayed,
    /// Leased to a worker. Entered by `lease`; left by `finish` or `release`.
    InFlight,
    /// In the dead-letter queue. Entered by a failed attempt with no budget left (or a
    /// non-retryable failure); left by redrive (back to `Ready`) or discard (deleted).
    Dead,
    /// Succeeded, and kept with its result until `expires_at` (queues with
    /// `result_retention_ms`); a queue without retention deletes completed jobs at once.
    Completed,
    /// Cancelled before or during a run; kept until `expires_at`, then forgotten.
    Cancelled,
}

impl JobState {
    /// Completed, dead or cancelled: no attempt of it will start again (but a dead one's
    /// after a redrive).
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Completed | JobState::Dead | JobState::Cancelled)
    }
}

/// Priorities run from 0 (the default, lowest) to this (highest).
pub const MAX_PRIORITY: u8 = 9;

/// A running job's latest progress report, as its handler sent it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Progress {
    pub value: Option<f64>,
    /// An encoded `google.protobuf.Value`, like a payload.
    pub detail: Option<Payload>,
}

/// The last error of a failed attempt, as the worker reported it (or as the engine
/// observed it: timeout, worker disconnected).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct JobError {
    pub message: String,
    pub code: String,
    pub stack: String,
}

impl JobError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { message: message.into(), code: code.into(), stack: String::new() }
    }
}

/// What a producer asks to store.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub id: JobId,
    pub queue: String,
    pub function_id: String,
    pub payload: Payload,
    /// The FIFO message group; `None` on standard queues. A job with a group is gated
    /// behind the earlier jobs of its group.
    pub group: Option<String>,
    pub enqueued_at: Millis,
    /// Delayed enqueue: the job is `Delayed` until this instant (`None`: ready at once). A
    /// FIFO job keeps its place in its group (its order is still its enqueue), so a delayed
    /// head holds its group until it has run.
    pub not_before: Option<Millis>,
    /// Idempotency: no job is created when the queue already has a live claim on the key.
    pub dedup: Option<Dedup>,
    /// 0 (default) to [`MAX_PRIORITY`]: a ready job of higher priority is leased before any
    /// of lower priority; equal priorities in enqueue order. Always 0 on FIFO queues.
    pub priority: u8,
}

/// An idempotency key claim: within `window_ms` of the first job's `enqueued_at`, a job with
/// the same `key` on the same queue is a duplicate of the first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dedup {
    pub key: String,
    pub window_ms: u64,
}

impl NewJob {
    /// When the job is due the first time.
    pub fn due_at(&self) -> Millis {
        self.not_before.unwrap_or(self.enqueued_at)
    }

    /// A job's claim on its key ends at this instant.
    pub fn dedup_expires_at(&self) -> Option<Millis> {
        self.dedup.as_ref().map(|d| self.enqueued_at.saturating_add(d.window_ms))
    }
}

/// What `Store::enqueue` answers for one job: created, or a duplicate of the earlier job
/// `id` (nothing stored). Grows with the per-job outcomes later issues add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id, or, for a duplicate, the first job's.
    pub id: JobId,
    pub duplicate: bool,
}

impl Enqueued {
    pub fn created(id: impl Into<JobId>) -> Self {
        Self { id: id.into(), duplicate: false }
    }

    pub fn duplicate_of(id: impl Into<JobId>) -> Self {
        Self { id: id.into(), duplicate: true }
    }
}

/// A stored job as a store hands it out.
#[derive(Clone, Debug, Default)]
pub struct Job {
    pub id: JobId,
    pub queue: String,
    pub function_id: String,
    pub payload: Payload,
    pub group: Option<String>,
    pub state: JobState,
    /// Attempts started so far (including the one in flight, if any).
    pub attempts: u32,
    pub enqueued_at: Millis,
    /// When a `Delayed` job becomes ready.
    pub due_at: Millis,
    pub last_error: Option<JobError>,
    pub dead_lettered_at: Option<Millis>,
    /// A delayed enqueue's due time, kept until the job has first become ready (a FIFO job
    /// waiting behind its group is delayed, not ready, when its turn comes before this).
    pub not_before: Option<Millis>,
    pub priority: u8,
    /// `InFlight` only: a cancel was requested; the attempt's end makes it `Cancelled`.
    pub cancel_requested: bool,
    /// The latest progress of the attempt in flight (cleared when a new attempt starts).
    pub progress: Option<Progress>,
    /// `Completed` / `Cancelled`: when it ended (`Dead`: see `dead_lettered_at`).
    pub finished_at: Option<Millis>,
    /// `Completed` / `Cancelled`: until when it is kept.
    pub expires_at: Option<Millis>,
    /// `Completed`: the handler's value (an encoded `google.protobuf.Value`).
    pub result: Option<Payload>,
}

impl From<NewJob> for Job {
    /// The job as first stored: ready (delayed with a `not_before`), no attempt yet.
    fn from(new: NewJob) -> Self {
        Job {
            state: if new.not_before.is_some() { JobState::Delayed } else { JobState::Ready },
            due_at: new.due_at(),
            id: new.id,
            queue: new.queue,
            function_id: new.function_id,
            payload: new.payload,
            group: new.group,
            attempts: 0,
            enqueued_at: new.enqueued_at,
            last_error: None,
            dead_lettered_at: None,
            not_before: new.not_before,
            priority: new.priority,
            ..Job::default()
        }
    }
}

/// A new engine-issued job id: a UUID v7 (time-ordered), hyphenated and lower case, the
/// form the stores keep in 16 bytes.
pub fn new_job_id() -> JobId {
    uuid_string(uuid::Uuid::now_v7())
}

/// `uuid` hyphenated and lower case, without going through `fmt`.
pub fn uuid_string(uuid: uuid::Uuid) -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    uuid.hyphenated().encode_lower(&mut buf).to_owned()
}
