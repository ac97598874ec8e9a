//! How an attempt ends on the memory store: the one place a lease's record leaves the
//! in-flight slab (but recovery).
//!
//! Invariant: a finish applies only under the current lease token, and moves the record
//! to exactly one place — deleted (completed without retention), `finished` (completed and
//! kept, or cancelled), `delayed` (retry), `dead`, or back to ready (release) — counting it
//! once. The attempt of a cancel-requested job that fails (retry, dead-letter) or does not
//! happen (release) ends it `Cancelled`, counted in nothing; a success stays a success.

use super::ids::Part;
use super::{Change, Inner, Journal, MemoryStore};
use crate::queue::{Job, JobState};
use crate::store::{Finish, LeaseToken};

impl MemoryStore {
    /// [`Store::finish`], reporting the change (none for a release or a stale token).
    pub fn finish_with(&self, token: &LeaseToken, finish: Finish, journal: Journal<'_>) -> bool {
        self.finish_inner(token, finish, Some(journal))
    }

    pub(super) fn finish_inner(&self, token: &LeaseToken, finish: Finish, journal: Option<Journal<'_>>) -> bool {
        let finished = Self::finish_locked(&mut self.inner.lock(), token, finish, journal);
        if finished {
            self.notify();
        }
        finished
    }

    /// [`Store::finish_many`] under one lock, reporting the changes.
    pub fn finish_many_with(&self, ends: Vec<(LeaseToken, Finish)>, journal: Journal<'_>) -> Vec<bool> {
        self.finish_many_inner(ends, Some(journal))
    }

    pub(super) fn finish_many_inner(
        &self,
        ends: Vec<(LeaseToken, Finish)>,
        mut journal: Option<Journal<'_>>,
    ) -> Vec<bool> {
        let mut inner = self.inner.lock();
        let mut finished = Vec::with_capacity(ends.len());
        for (token, finish) in ends {
            // Reborrowed per end, with the trait object's lifetime shortened to the call.
            let journal: Option<&mut dyn FnMut(Change<'_>)> = match journal.as_mut() {
                Some(journal) => Some(&mut **journal),
                None => None,
            };
            finished.push(Self::finish_locked(&mut inner, &token, finish, journal));
        }
        drop(inner);
        if finished.contains(&true) {
            self.notify();
        }
        finished
    }

    /// Ends one attempt on the locked store; `false` for a stale token. The failure of a
    /// cancel-requested job ends it `Cancelled` (see the store seam's doc).
    fn finish_locked(inner: &mut Inner, token: &LeaseToken, finish: Finish, mut journal: Option<Journal<'_>>) -> bool {
        let Some(mut record) = inner.in_flight.take(token) else {
            return false;
        };
        let queue = inner.queue_index(&record);
        let finish = match (finish, record.cancel_request()) {
            (Finish::Retry { .. }, Some(request)) => {
                let (at, until) = request.ended_at(request.at);
                Finish::Cancelled { at, until }
            }
            (Finish::DeadLetter { at, .. }, Some(request)) => {
                let (at, until) = request.ended_at(at);
                Finish::Cancelled { at, until }
            }
            (finish, _) => finish,
        };
        let (state, kept, result) = match finish {
            Finish::Complete => {
                inner.ids.remove(&record);
                if let Some(journal) = journal.as_mut() {
                    let (id, queue, seq) = (&token.job_id, &inner.queues[queue as usize].name, record.seq);
                    journal(Change::Completed { id, queue, seq });
                }
                (JobState::Completed, None, None)
            }
            Finish::CompleteRetained { result, at, until } => (JobState::Completed, Some((at, until)), Some(result)),
            Finish::Cancelled { at, until } => (JobState::Cancelled, Some((at, until)), None),
            Finish::Retry { due_at, error } => {
                record.extra_mut().last_error = Some(error);
                record.clear_progress();
                if let Some(journal) = journal {
                    journal(Change::Retried {
                        job: Job { due_at, ..inner.job(&record, JobState::Delayed) },
                        seq: record.seq,
                    });
                }
                let q = &mut inner.queues[queue as usize];
                q.in_flight -= 1;
                q.counters.failed += 1;
                inner.delay(record, due_at);
                return true;
            }
            Finish::DeadLetter { error, at } => {
                let dead_seq = inner.seq();
                let was = std::mem::replace(&mut record.seq, dead_seq);
                let extra = record.extra_mut();
                extra.last_error = Some(error);
                extra.dead_lettered_at = Some(at);
                if let Some(journal) = journal {
                    journal(Change::DeadLettered { job: inner.job(&record, JobState::Dead), dead_seq, was });
                }
                if let Some(group) = record.group() {
                    inner.advance_group(queue, group);
                }
                let q = &mut inner.queues[queue as usize];
                q.in_flight -= 1;
                q.counters.failed += 1;
                q.counters.dead_lettered += 1;
                inner.ids.set(&record, Part::Dead);
                inner.queues[queue as usize].dead.insert(dead_seq, record);
                return true;
            }
            Finish::Release => {
                inner.release(record, journal);
                return true;
            }
        };
        // Completed or cancelled: the attempt is over and the group moves on.
        let q = &mut inner.queues[queue as usize];
        q.in_flight -= 1;
        if state == JobState::Completed {
            q.counters.completed += 1;
        }
        if let Some(group) = record.group() {
            inner.advance_group(queue, group);
        }
        if let Some((at, until)) = kept {
            inner.keep_finished(record, (state, at, until), result, journal);
        }
        true
    }
}
