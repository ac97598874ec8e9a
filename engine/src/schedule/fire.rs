//! One fire: a tick of a schedule enqueued as one job with the tick's idempotency key.
//!
//! Invariant: a fire stores a job only through [`Store::enqueue`] with the key
//! [`super::tick_key`] and the window [`super::claim_window`], so the store alone decides
//! whether this tick already has its job; a fire never retries by itself (the caller
//! decides, see [`super::run`]).

use super::{ScheduleSpec, claim_window, tick_key};
use crate::clock::{Clock, Millis};
use crate::config::EngineConfig;
use crate::limits::Guards;
use crate::metrics::Metrics;
use crate::queue::{Dedup, JobId, NewJob};
use crate::store::{Store, StoreError};
use std::sync::Arc;

/// What a fire did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fired {
    /// This engine stored the tick's job.
    Enqueued(JobId),
    /// The tick already had its job (fired by another engine, or before a restart).
    Duplicate(JobId),
}

/// Why a fire stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum FireError {
    #[error("schedule '{0}' is not in the config")]
    UnknownSchedule(String),
    #[error("queue '{queue}' is full ({waiting} jobs waiting, max_ready {max})")]
    QueueFull { queue: String, waiting: u64, max: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FireError {
    /// Whether trying again later may work.
    pub fn is_transient(&self) -> bool {
        matches!(self, FireError::Store(_))
    }
}

/// What a fire needs from the engine: the config, the store, the clock, the queue gates
/// (`max_ready`, shared with the API) and the metrics, if on.
pub struct Scheduler {
    pub(super) config: Arc<EngineConfig>,
    store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    guards: Arc<Guards>,
    metrics: Option<Arc<Metrics>>,
}

impl Scheduler {
    pub fn new(
        config: Arc<EngineConfig>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        guards: Arc<Guards>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self { config, store, clock, guards, metrics }
    }

    /// Enqueues `tick` of the schedule `name` now, logs it and counts it (`enqueued` or
    /// `duplicate`; a failure is the caller's to retry or give up on).
    pub async fn fire(&self, name: &str, tick: Millis) -> Result<Fired, FireError> {
        let spec = self.config.schedules.get(name).ok_or_else(|| FireError::UnknownSchedule(name.to_string()))?;
        let outcome = self.enqueue(name, spec, tick).await;
        let counted = match &outcome {
            Ok(Fired::Enqueued(id)) => {
                tracing::info!(
                    schedule = %name,
                    tick = %crate::wire::rfc3339(tick),
                    queue = %spec.queue,
                    function_id = %spec.function_id,
                    message_receipt_id = %id,
                    "schedule fired"
                );
                "enqueued"
            }
            Ok(Fired::Duplicate(id)) => {
                tracing::debug!(
                    schedule = %name,
                    tick = %crate::wire::rfc3339(tick),
                    message_receipt_id = %id,
                    "schedule tick already enqueued (by another engine, or before a restart)"
                );
                "duplicate"
            }
            Err(_) => return outcome, // counted once given up on (`gave_up`)
        };
        self.count(name, counted);
        outcome
    }

    /// The tick will not be enqueued (after its retries): counted `failed`.
    pub(super) fn gave_up(&self, name: &str) {
        self.count(name, "failed");
    }

    fn count(&self, name: &str, outcome: &'static str) {
        if let Some(m) = &self.metrics {
            m.schedule_tick(name, outcome);
        }
    }

    async fn enqueue(&self, name: &str, spec: &ScheduleSpec, tick: Millis) -> Result<Fired, FireError> {
        let now = self.clock.now();
        if let Some(queue) = self.config.queues.get(&spec.queue) {
            let admitted = self.guards.ready.admit(self.store.as_ref(), &spec.queue, queue.max_ready, now).await?;
            if let Err(full) = admitted {
                return Err(FireError::QueueFull {
                    queue: spec.queue.clone(),
                    waiting: full.waiting,
                    max: queue.max_ready,
                });
            }
        }
        let job = NewJob {
            id: crate::queue::new_job_id(),
            queue: spec.queue.clone(),
            function_id: spec.function_id.clone(),
            payload: spec.payload.clone(),
            group: spec.group.clone(),
            enqueued_at: now,
            not_before: None,
            dedup: Some(Dedup { key: tick_key(name, tick), window_ms: claim_window(&spec.timetable, tick) }),
            priority: spec.priority,
        };
        let noted = crate::logging::jobs::Enqueued::note(std::slice::from_ref(&job));
        let answers = self.store.enqueue(vec![job]).await?;
        if let Some(noted) = noted {
            noted.log(&answers);
        }
        let answer = answers
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Unavailable("the store answered no job for one enqueued".into()))?;
        Ok(if answer.duplicate { Fired::Duplicate(answer.id) } else { Fired::Enqueued(answer.id) })
    }
}
