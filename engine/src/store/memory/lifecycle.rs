//! The job lifecycle on the memory store: one job by id, cancel, progress, cancel
//! requests, and forgetting finished jobs.
//!
//! Invariant: these go through the id index ([`super::ids`]) and move a record only between
//! the places the store's invariant names, keeping the gauges exact — a job cancelled before
//! it ran leaves `ready` / `waiting` / `delayed` for `finished` (counted in none), its FIFO
//! group moving on as when a head completes; an in-flight job stays in flight, marked, until
//! its attempt ends (`MemoryStore::finish_locked` decides what it becomes). A finished job
//! whose `expires_at` is not after `now` is answered as gone even before
//! `expire_finished` has removed it.

use super::ids::Place;
use super::record::Record;
use super::{CancelRequest, Change, Finished, Inner, Journal, MemoryStore};
use crate::clock::Millis;
use crate::queue::{Job, JobState, Progress};
use crate::store::{CancelOutcome, LeaseToken};

impl Inner {
    /// The record at `place`, and the job as a caller sees it.
    fn locate(&self, place: Place) -> Option<(&Record, Job)> {
        let (record, state) = match place {
            Place::Ready { route, priority, seq } => {
                (self.routes[route as usize].ready.get(priority, seq)?, JobState::Ready)
            }
            Place::Waiting { queue, seq } => (self.queues[queue as usize].waiting.get(&seq)?, JobState::Waiting),
            Place::Delayed { queue, due, seq } => {
                let record = self.queues[queue as usize].delayed.get(&(due, seq))?;
                return Some((record, Job { due_at: due, ..self.job(record, JobState::Delayed) }));
            }
            Place::InFlight { slot } => (self.in_flight.get(slot)?, JobState::InFlight),
            Place::Dead { queue, seq } => (self.queues[queue as usize].dead.get(&seq)?, JobState::Dead),
            Place::Finished { expires_at, seq } => {
                let finished = self.finished.get(&(expires_at, seq))?;
                return Some((&finished.record, self.finished_job(finished, expires_at)));
            }
        };
        Some((record, self.job(record, state)))
    }

    /// The job `id` of `queue` as a caller sees it, with where it is.
    fn find(&self, queue: &str, id: &str) -> Option<(Job, Place)> {
        let place = self.ids.get(id)?;
        let (record, job) = self.locate(place)?;
        (self.queues[self.queue_index(record) as usize].name == queue).then_some((job, place))
    }

    /// Takes a job that has not started out of its place (`Ready`, `Waiting` or `Delayed`);
    /// a FIFO head's group moves on, a waiting member leaves its group's list.
    fn take_pending(&mut self, place: Place) -> Option<Record> {
        let (record, head) = match place {
            Place::Ready { route, priority, seq } => (self.routes[route as usize].ready.remove(priority, seq)?, true),
            Place::Delayed { queue, due, seq } => (self.queues[queue as usize].delayed.remove(&(due, seq))?, true),
            Place::Waiting { queue, seq } => {
                let q = &mut self.queues[queue as usize];
                let record = q.waiting.remove(&seq)?;
                let group = record.group().expect("a waiting job has a group");
                let members = &mut q.groups.get_mut(group).expect("a waiting job's group is live").waiting;
                let at = members.iter().position(|s| *s == seq).expect("a group lists its waiting members");
                members.remove(at);
                (record, false)
            }
            Place::InFlight { .. } | Place::Dead { .. } | Place::Finished { .. } => return None,
        };
        if let (true, Some(group)) = (head, record.group()) {
            let queue = self.queue_index(&record);
            self.advance_group(queue, group);
        }
        Some(record)
    }
}

impl MemoryStore {
    pub(super) fn get_job_at(&self, queue: &str, id: &str, now: Millis) -> Option<Job> {
        let (job, place) = self.inner.lock().find(queue, id)?;
        match place {
            Place::Finished { expires_at, .. } if expires_at <= now => None,
            _ => Some(job),
        }
    }

    /// [`crate::store::Store::cancel`], reporting the change.
    pub fn cancel_with(&self, queue: &str, id: &str, at: Millis, until: Millis, journal: Journal<'_>) -> CancelOutcome {
        self.cancel_inner(queue, id, at, until, Some(journal))
    }

    pub(super) fn cancel_inner(
        &self,
        queue: &str,
        id: &str,
        at: Millis,
        until: Millis,
        journal: Option<Journal<'_>>,
    ) -> CancelOutcome {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let Some((job, place)) = inner.find(queue, id) else {
            return CancelOutcome::NotFound;
        };
        match place {
            Place::Finished { expires_at, .. } if expires_at <= at => CancelOutcome::NotFound,
            Place::Finished { .. } if job.state == JobState::Cancelled => CancelOutcome::AlreadyCancelled(job),
            Place::Finished { .. } | Place::Dead { .. } => CancelOutcome::AlreadyFinished(job),
            Place::InFlight { slot } => {
                let record = inner.in_flight.get_mut(slot).expect("located");
                if record.cancel_request().is_some() {
                    return CancelOutcome::AlreadyCancelled(job);
                }
                let request = CancelRequest { at, until };
                record.life_mut().cancel = Some(request);
                let token =
                    LeaseToken { job_id: job.id.clone(), lease_id: (u64::from(slot) << 32) | u64::from(record.lease) };
                let job = Job { cancel_requested: true, ..job };
                if let Some(journal) = journal {
                    journal(Change::CancelRequested { job: job.clone(), seq: record.seq, request });
                }
                CancelOutcome::Cancelling(job, token)
            }
            Place::Ready { .. } | Place::Waiting { .. } | Place::Delayed { .. } => {
                let record = inner.take_pending(place).expect("located");
                inner.keep_finished(record, (JobState::Cancelled, at, until), None, journal);
                let (job, _) = inner.find(queue, id).expect("just filed");
                drop(guard);
                self.notify(); // a FIFO group may have moved on
                CancelOutcome::Cancelled(job)
            }
        }
    }

    pub(super) fn progress(&self, token: &LeaseToken, progress: Progress) -> bool {
        let mut inner = self.inner.lock();
        let Some(record) = inner.in_flight.leased_mut(token) else { return false };
        record.life_mut().progress = Some(progress);
        true
    }

    pub(super) fn cancel_requested_of(&self, tokens: &[LeaseToken]) -> Vec<LeaseToken> {
        let inner = self.inner.lock();
        let requested = |t: &&LeaseToken| inner.in_flight.leased(t).is_some_and(|r| r.cancel_request().is_some());
        tokens.iter().filter(requested).cloned().collect()
    }

    /// [`crate::store::Store::expire_finished`], reporting each job forgotten.
    pub fn expire_finished_with(&self, now: Millis, journal: Journal<'_>) -> u64 {
        self.expire_inner(now, Some(journal))
    }

    pub(super) fn expire_inner(&self, now: Millis, mut journal: Option<Journal<'_>>) -> u64 {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let mut n = 0;
        while let Some(entry) = inner.finished.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), Finished { record, .. }) = entry.remove_entry();
            inner.ids.remove(&record);
            if let Some(journal) = journal.as_mut() {
                let queue = &inner.queues[inner.routes[record.route as usize].queue as usize].name;
                journal(Change::Expired { id: &record.id(), queue, seq });
            }
            n += 1;
        }
        n
    }
}
