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

use super::ids::{Part, Place};
use super::record::Record;
use super::{CancelRequest, Change, Finished, Inner, Journal, MemoryStore};
use crate::clock::Millis;
use crate::queue::{Job, JobState, Progress};
use crate::store::{CancelOutcome, LeaseToken};

/// Where in the store a live record is, found from its [`Place`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spot {
    Ready,
    Waiting,
    Delayed(Millis),
    InFlight(u32),
    Dead,
    Finished,
}

impl Inner {
    /// Finds the record at `place`: a live one in its route's ready jobs, its queue's
    /// waiting or delayed jobs (by sequence), or the in-flight slab (a scan of what is in
    /// flight), in that order.
    fn spot(&self, place: Place) -> Option<(&Record, Spot)> {
        let queue = self.routes[place.route as usize].queue as usize;
        let q = &self.queues[queue];
        match place.part {
            Part::Dead => return q.dead.get(&place.seq).map(|r| (r, Spot::Dead)),
            Part::Finished => return self.finished.get(&place.seq).map(|f| (&f.record, Spot::Finished)),
            Part::Live => {}
        }
        if let Some(r) = self.routes[place.route as usize].ready.get(place.priority, place.seq) {
            return Some((r, Spot::Ready));
        }
        if let Some(r) = q.waiting.get(&place.seq) {
            return Some((r, Spot::Waiting));
        }
        if let Some((due, r)) = q.delayed.get(place.seq) {
            return Some((r, Spot::Delayed(due)));
        }
        let slot = self.in_flight.find(place.seq)?;
        self.in_flight.get(slot).map(|r| (r, Spot::InFlight(slot)))
    }

    /// The job `id` of `queue` as a caller sees it, and where it is.
    fn find(&self, queue: &str, id: &str) -> Option<(Job, Spot)> {
        let place = self.ids.get(id)?;
        let (record, spot) = self.spot(place)?;
        if self.queues[self.queue_index(record) as usize].name != queue {
            return None;
        }
        let job = match spot {
            Spot::Ready => self.job(record, JobState::Ready),
            Spot::Waiting => self.job(record, JobState::Waiting),
            Spot::Delayed(due) => Job { due_at: due, ..self.job(record, JobState::Delayed) },
            Spot::InFlight(_) => self.job(record, JobState::InFlight),
            Spot::Dead => self.job(record, JobState::Dead),
            Spot::Finished => self.finished_job(self.finished.get(&place.seq).expect("spotted")),
        };
        Some((job, spot))
    }

    /// Takes a job that has not started out of its spot (`Ready`, `Waiting` or `Delayed`);
    /// a FIFO head's group moves on, a waiting member leaves its group's list.
    fn take_pending(&mut self, place: Place, spot: Spot) -> Option<Record> {
        let queue = self.routes[place.route as usize].queue;
        let q = &mut self.queues[queue as usize];
        let (record, head) = match spot {
            Spot::Ready => (self.routes[place.route as usize].ready.remove(place.priority, place.seq)?, true),
            Spot::Delayed(_) => (q.delayed.remove(place.seq)?, true),
            Spot::Waiting => {
                let record = q.waiting.remove(&place.seq)?;
                let group = record.group().expect("a waiting job has a group");
                let members = &mut q.groups.get_mut(group).expect("a waiting job's group is live").waiting;
                let at = members.iter().position(|s| *s == place.seq).expect("a group lists its waiting members");
                members.remove(at);
                (record, false)
            }
            Spot::InFlight(_) | Spot::Dead | Spot::Finished => return None,
        };
        if let (true, Some(group)) = (head, record.group()) {
            self.advance_group(queue, group);
        }
        Some(record)
    }
}

impl MemoryStore {
    pub(super) fn get_job_at(&self, queue: &str, id: &str, now: Millis) -> Option<Job> {
        let (job, _) = self.inner.lock().find(queue, id)?;
        // A finished job past its time is gone, swept or not.
        job.expires_at.is_none_or(|until| until > now).then_some(job)
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
        let Some((job, spot)) = inner.find(queue, id) else {
            return CancelOutcome::NotFound;
        };
        match spot {
            Spot::Finished if job.expires_at.is_some_and(|until| until <= at) => CancelOutcome::NotFound,
            Spot::Finished if job.state == JobState::Cancelled => CancelOutcome::AlreadyCancelled(job),
            Spot::Finished | Spot::Dead => CancelOutcome::AlreadyFinished(job),
            Spot::InFlight(slot) => {
                let record = inner.in_flight.get_mut(slot).expect("spotted");
                if record.cancel_request().is_some() {
                    return CancelOutcome::AlreadyCancelled(job);
                }
                let request = CancelRequest { at, until };
                record.life_mut().cancel = Some(request);
                let lease_id = (u64::from(slot) << 32) | u64::from(record.lease);
                let token = LeaseToken { job_id: job.id.clone(), lease_id };
                let job = Job { cancel_requested: true, ..job };
                if let Some(journal) = journal {
                    journal(Change::CancelRequested { job: job.clone(), seq: record.seq, request });
                }
                CancelOutcome::Cancelling(job, token)
            }
            Spot::Ready | Spot::Waiting | Spot::Delayed(_) => {
                let place = inner.ids.get(id).expect("found");
                let record = inner.take_pending(place, spot).expect("spotted");
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
        while let Some(entry) = inner.expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (_, seq) = entry.remove_entry().0;
            let Finished { record, .. } = inner.finished.remove(&seq).expect("what expires is kept");
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
