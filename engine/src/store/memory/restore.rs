//! Start-up of a persisting store: the jobs and idempotency keys it kept, loaded into an
//! empty memory store.
//!
//! Invariant: every restored job lands in the place its kept state names (pending ones
//! admitted in enqueue order, so each FIFO group's oldest pending member is its head), and
//! order numbers handed out afterwards exceed every restored one.

use super::ids::Part;
use super::record::Record;
use super::{DedupClaim, MemoryStore, Restored};
use crate::queue::{JobState, NewJob};
use crate::store::QueueStats;

impl MemoryStore {
    /// Loads what a persisting store kept, into an empty store: `jobs` in any order (they
    /// are placed by `seq`; FIFO groups are rebuilt, their oldest pending member the head),
    /// and each queue's counters (`enqueued`, `completed`, `failed`, `dead_lettered`).
    /// Every order number handed out afterwards exceeds each restored job's and
    /// `seq_floor`, which the store sets above any number it may have handed out before
    /// (a dead-letter cursor is one), though those jobs are gone. A pending job with a
    /// cancel request (it was in flight) is `Cancelled` as the request says; finished jobs
    /// are kept until their `expires_at` (the next `expire_finished` forgets those past it).
    pub fn restore(&self, mut jobs: Vec<Restored>, counters: Vec<(String, QueueStats)>, seq_floor: u64) {
        jobs.sort_by_key(|r| r.seq);
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        inner.next_seq = inner.next_seq.max(seq_floor);
        for (queue, c) in counters {
            let q = inner.queue_id(&queue);
            inner.queues[q as usize].counters = c;
        }
        for Restored { job, seq } in jobs {
            inner.next_seq = inner.next_seq.max(seq);
            let queue = inner.queue_id(&job.queue);
            let route = inner.route_id(queue, &job.function_id);
            let (state, attempts, due_at) = (job.state, job.attempts, job.due_at);
            let (last_error, dead_lettered_at) = (job.last_error.clone(), job.dead_lettered_at);
            let ended = (job.finished_at.unwrap_or(job.enqueued_at), job.expires_at.unwrap_or(0));
            let result = job.result.clone();
            let cancelled =
                job.cancel_requested && matches!(state, JobState::Ready | JobState::Waiting | JobState::InFlight);
            let new = NewJob {
                id: job.id,
                queue: job.queue,
                function_id: job.function_id,
                payload: job.payload,
                group: job.group,
                enqueued_at: job.enqueued_at,
                not_before: job.not_before,
                dedup: None,
                priority: job.priority,
            };
            let mut record = Record::new(new, seq, route);
            record.attempts = attempts;
            if last_error.is_some() || dead_lettered_at.is_some() {
                let extra = record.extra_mut();
                extra.last_error = last_error;
                extra.dead_lettered_at = dead_lettered_at;
            }
            match (state, cancelled) {
                (JobState::Dead, _) => {
                    inner.ids.set(&record, Part::Dead);
                    inner.queues[queue as usize].dead.insert(seq, record);
                }
                (JobState::Delayed, _) => {
                    if let Some(group) = record.group() {
                        inner.queues[queue as usize].groups.entry(group.into()).or_default().busy = true;
                    }
                    inner.ids.set(&record, Part::Live);
                    inner.delay(record, due_at);
                }
                (JobState::Completed | JobState::Cancelled, _) => {
                    inner.keep_finished(record, (state, ended.0, ended.1), result, None);
                }
                (_, true) => {
                    // Its attempt never reported: cancelled, and its group (never admitted
                    // here) goes on with its next member.
                    inner.keep_finished(record, (JobState::Cancelled, ended.0, ended.1), None, None);
                }
                _ => {
                    inner.ids.set(&record, Part::Live);
                    inner.admit(record);
                }
            }
        }
    }

    /// Loads the idempotency keys a persisting store kept (after [`MemoryStore::restore`]).
    pub fn restore_claims(&self, claims: Vec<DedupClaim>) {
        let mut inner = self.inner.lock();
        for c in claims {
            let q = inner.queue_id(&c.queue);
            inner.claim(q, &c.key, c.job_id, c.expires_at);
        }
    }
}
