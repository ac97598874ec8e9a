//! `builtin` / `in_memory`: the embedded store for development and tests, and the index
//! the durable file store keeps its jobs in.
//!
//! Invariant: every job is held in exactly one place, and the place is its state —
//! `Ready` in its route's `ready` (by priority, then enqueue sequence), `Delayed` in its
//! queue's `delayed` (by due time: a retry's, or a delayed enqueue's `not_before`),
//! `InFlight` in the `in_flight` slab (found by its lease token, never by a search),
//! `Waiting` in its queue's `waiting` (its FIFO group lists it in order), `Dead` in its
//! queue's `dead` (by dead-letter sequence), `Completed` (kept with its result) or
//! `Cancelled` in `finished` (with an expiry index) — and the id index ([`ids`]) says
//! which part of the store (live, dead, finished) and which sequence, rewritten by every
//! transition between those parts. A FIFO group is `busy` while its head is ready, delayed
//! or in flight; only then do later members wait — so a delayed FIFO head holds its group
//! until it has run, and a member whose turn comes before its `not_before` is delayed, not
//! ready. One mutex guards it all, so every operation is one atomic transition.
//!
//! The job lifecycle ([`lifecycle`]): a cancelled job that has not started leaves its place
//! for `finished` at once (a FIFO head's group moves on, a waiting member leaves its
//! group's list); an in-flight one is marked, and the end of its attempt makes it
//! `Cancelled` unless it succeeded. Finished jobs count in no gauge; `expire_finished`
//! pops them from the front of its expiry index. Progress lives in the in-flight record only.
//! Rate limits are a [`LocalGate`] of this store: per engine, as the store is.
//!
//! Idempotency keys live per queue in `claims` (key → first job, expiry), with an expiry
//! index to forget them: a job whose key has a live claim (expiry after the job's
//! `enqueued_at`) is not stored and answers the first job's id; an expired claim is
//! replaced. The check and the insert are under the same lock, so a batch with the same key
//! twice stores the first only.
//!
//! Records are compact ([`record`]): an engine-issued job with a small payload costs about
//! 80 bytes and no allocation of its own. The id index adds a 32-byte entry per job plus
//! its table's slack: a million queued jobs hold about 150 MB in all (measured by
//! `benches/memory_store.rs`: 149.5 bytes per job, 80.3 before the index). A route (queue, function) is interned once; routes are never forgotten, so a
//! producer inventing function names without end grows the store by one small entry each.

mod dead;
mod finish;
mod ids;
mod index;
mod journal;
mod lifecycle;
mod record;
mod restore;

pub use journal::{CancelRequest, Change, DedupClaim, Journal, Restored};

use super::{CancelOutcome, DeadLetterPage, Finish, Lease, LeaseRequest, LeaseToken, QueueStats, Store, StoreError};
use crate::clock::Millis;
use crate::limits::rate::{LocalGate, RateGate};
use crate::queue::{Enqueued, Job, JobId, JobState, MAX_PRIORITY, NewJob, Payload, Progress};
use async_trait::async_trait;
use foldhash::HashMap;
use ids::{Ids, Part};
use index::{ByPriority, Delayed, Slab};
use parking_lot::Mutex;
use record::Record;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::Notify;

/// The in-memory store.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    changed: Arc<Notify>,
    gate: Arc<LocalGate>,
}

#[derive(Default)]
struct Inner {
    queues: Vec<QueueIndex>,
    queue_ids: HashMap<String, u32>,
    routes: Vec<Route>,
    in_flight: Slab,
    /// Where each job is, by id.
    ids: Ids,
    /// `Completed` (kept) and `Cancelled` jobs of every queue, by sequence.
    finished: BTreeMap<u64, Finished>,
    /// The finished jobs by `(expires_at, seq)`, to forget them once their time is over.
    expiry: BTreeMap<(Millis, u64), ()>,
    next_seq: u64,
    next_lease: u32,
}

/// A job kept after its end: `Completed` (with its result, where the queue keeps results)
/// or `Cancelled`, from `at` until `until`.
struct Finished {
    record: Record,
    state: JobState,
    at: Millis,
    until: Millis,
    result: Option<Payload>,
}

/// One (queue, function): the jobs of that function ready in that queue.
struct Route {
    queue: u32,
    function: String,
    ready: ByPriority,
}

#[derive(Default)]
struct QueueIndex {
    name: String,
    /// Route index by function name.
    routes: HashMap<String, u32>,
    delayed: Delayed,
    dead: BTreeMap<u64, Record>,
    groups: HashMap<Box<str>, Group>,
    /// FIFO members behind their group's head, by enqueue sequence.
    waiting: BTreeMap<u64, Record>,
    /// Live idempotency keys: the first job's id and when the claim expires.
    claims: HashMap<Box<str>, (JobId, Millis)>,
    /// The claims by expiry, to forget them once they are over.
    claim_expiry: BTreeMap<(Millis, Box<str>), ()>,
    in_flight: u64,
    counters: QueueStats,
}

/// A FIFO group with live members.
#[derive(Default)]
struct Group {
    /// Its head is ready, delayed or in flight.
    busy: bool,
    /// The sequence numbers of its members in `waiting`, in order.
    waiting: VecDeque<u64>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self { inner: Mutex::new(Inner::default()), changed: Arc::new(Notify::new()), gate: Arc::default() }
    }

    fn notify(&self) {
        self.changed.notify_waiters();
        self.changed.notify_one();
    }
}

impl Inner {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn queue_id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.queue_ids.get(name) {
            return *id;
        }
        let id = self.queues.len() as u32;
        self.queues.push(QueueIndex { name: name.to_string(), ..QueueIndex::default() });
        self.queue_ids.insert(name.to_string(), id);
        id
    }

    fn queue(&self, name: &str) -> Option<&QueueIndex> {
        self.queue_ids.get(name).map(|id| &self.queues[*id as usize])
    }

    fn route_id(&mut self, queue: u32, function: &str) -> u32 {
        if let Some(id) = self.queues[queue as usize].routes.get(function) {
            return *id;
        }
        let id = self.routes.len() as u32;
        self.routes.push(Route { queue, function: function.to_string(), ready: ByPriority::default() });
        self.queues[queue as usize].routes.insert(function.to_string(), id);
        id
    }

    fn job(&self, record: &Record, state: JobState) -> Job {
        let route = &self.routes[record.route as usize];
        record.job(&self.queues[route.queue as usize].name, &route.function, state)
    }

    fn queue_index(&self, record: &Record) -> u32 {
        self.routes[record.route as usize].queue
    }

    /// Files a new (or redriven) record: ready (delayed until its `not_before`), or waiting
    /// behind its busy FIFO group.
    fn admit(&mut self, record: Record) -> JobState {
        let Some(group) = record.group() else {
            return self.make_due(record);
        };
        let group: Box<str> = group.into();
        let queue = self.queue_index(&record);
        let q = &mut self.queues[queue as usize];
        let g = q.groups.entry(group).or_default();
        if g.busy {
            g.waiting.push_back(record.seq);
            q.waiting.insert(record.seq, record);
            JobState::Waiting
        } else {
            g.busy = true;
            self.make_due(record)
        }
    }

    /// Ready, or delayed while the record has a `not_before` (a due one is promoted by the
    /// next lease).
    fn make_due(&mut self, record: Record) -> JobState {
        match record.not_before() {
            Some(due) => {
                self.delay(record, due);
                JobState::Delayed
            }
            None => {
                self.make_ready(record);
                JobState::Ready
            }
        }
    }

    fn delay(&mut self, record: Record, due: Millis) {
        let queue = self.queue_index(&record);
        self.queues[queue as usize].delayed.insert(due, record);
    }

    /// The live claim on `key` in `queue` at `now`, forgetting the claims expired by then.
    fn live_claim(&mut self, queue: u32, key: &str, now: Millis) -> Option<JobId> {
        let q = &mut self.queues[queue as usize];
        while let Some(((at, _), ())) = q.claim_expiry.first_key_value() {
            if *at > now {
                break;
            }
            let ((at, k), ()) = q.claim_expiry.pop_first().expect("non-empty");
            if q.claims.get(&k).is_some_and(|(_, expires)| *expires == at) {
                q.claims.remove(&k);
            }
        }
        q.claims.get(key).filter(|(_, expires)| *expires > now).map(|(id, _)| id.clone())
    }

    fn claim(&mut self, queue: u32, key: &str, id: JobId, expires_at: Millis) {
        let q = &mut self.queues[queue as usize];
        let key: Box<str> = key.into();
        q.claim_expiry.insert((expires_at, key.clone()), ());
        q.claims.insert(key, (id, expires_at));
    }

    fn make_ready(&mut self, record: Record) {
        self.routes[record.route as usize].ready.push(record);
    }

    /// The head of `group` is gone (completed, dead-lettered or cancelled): the next
    /// member, if any, becomes ready.
    fn advance_group(&mut self, queue: u32, group: &str) {
        let q = &mut self.queues[queue as usize];
        let Some(g) = q.groups.get_mut(group) else {
            return;
        };
        match g.waiting.pop_front() {
            Some(seq) => {
                let next = q.waiting.remove(&seq).expect("a group's members are in their queue's waiting");
                self.make_due(next);
            }
            None => {
                q.groups.remove(group);
            }
        }
    }

    /// Files `record` in `finished` as `state` (`Completed` or `Cancelled`) from `at` until
    /// `until`, reporting it. Its group, if any, has been advanced by the caller.
    fn keep_finished(
        &mut self,
        mut record: Record,
        (state, at, until): (JobState, Millis, Millis),
        result: Option<Payload>,
        journal: Option<Journal<'_>>,
    ) {
        record.end();
        let seq = record.seq;
        self.ids.set(&record, Part::Finished);
        let finished = Finished { record, state, at, until, result };
        if let Some(journal) = journal {
            journal(Change::Finished { job: self.finished_job(&finished), seq });
        }
        self.finished.insert(seq, finished);
        self.expiry.insert((until, seq), ());
    }

    fn finished_job(&self, f: &Finished) -> Job {
        let job = self.job(&f.record, f.state);
        Job { finished_at: Some(f.at), expires_at: Some(f.until), result: f.result.clone(), ..job }
    }

    fn promote_due(&mut self, queue: u32, now: Millis) {
        while let Some(mut record) = self.queues[queue as usize].delayed.pop_due(now) {
            if let Some(extra) = record.extra.as_mut() {
                extra.not_before = None; // delayed once: a later redrive runs at once
            }
            self.make_ready(record);
        }
    }

    /// The attempt did not happen: ready again, the attempt not counted — or, when a
    /// cancel was requested meanwhile, `Cancelled` as the request says.
    fn release(&mut self, mut record: Record, journal: Option<Journal<'_>>) {
        record.attempts -= 1;
        record.clear_progress();
        let queue = self.queue_index(&record);
        self.queues[queue as usize].in_flight -= 1;
        match record.cancel_request() {
            None => self.make_ready(record),
            Some(request) => {
                if let Some(group) = record.group() {
                    self.advance_group(queue, group);
                }
                let (at, until) = request.ended_at(request.at);
                self.keep_finished(record, (JobState::Cancelled, at, until), None, journal);
            }
        }
    }
}

impl MemoryStore {
    /// [`Store::enqueue`], reporting each job stored.
    pub fn enqueue_with(&self, jobs: Vec<NewJob>, journal: Journal<'_>) -> Vec<Enqueued> {
        self.enqueue_inner(jobs, Some(journal))
    }

    fn enqueue_inner(&self, jobs: Vec<NewJob>, mut journal: Option<Journal<'_>>) -> Vec<Enqueued> {
        let mut inner = self.inner.lock();
        let mut last: Option<(u32, u32)> = None;
        let mut answers = Vec::with_capacity(jobs.len());
        for new in jobs {
            let (queue, route) = match last {
                // A batch is usually one queue and function: look them up once.
                Some((queue, route))
                    if inner.routes[route as usize].function == new.function_id
                        && inner.queues[queue as usize].name == new.queue =>
                {
                    (queue, route)
                }
                _ => {
                    let queue = inner.queue_id(&new.queue);
                    (queue, inner.route_id(queue, &new.function_id))
                }
            };
            last = Some((queue, route));
            let claim = match (&new.dedup, new.dedup_expires_at()) {
                (Some(d), Some(expires_at)) => {
                    if let Some(first) = inner.live_claim(queue, &d.key, new.enqueued_at) {
                        answers.push(Enqueued::duplicate_of(first));
                        continue;
                    }
                    Some((d.key.clone(), expires_at))
                }
                _ => None,
            };
            let seq = inner.seq();
            inner.queues[queue as usize].counters.enqueued += 1;
            answers.push(Enqueued::created(new.id.clone()));
            if let Some((key, expires_at)) = &claim {
                inner.claim(queue, key, new.id.clone(), *expires_at);
            }
            let claimed = claim.map(|(key, expires_at)| DedupClaim {
                queue: new.queue.clone(),
                key,
                job_id: new.id.clone(),
                claimed_at: new.enqueued_at,
                expires_at,
            });
            // The journal's copy is the producer's job as it came (the payload shared, not copied).
            let job = journal.is_some().then(|| Job::from(new.clone()));
            let record = Record::new(new, seq, route);
            inner.ids.set(&record, Part::Live);
            let state = inner.admit(record);
            if let (Some(journal), Some(job)) = (journal.as_mut(), job) {
                journal(Change::Enqueued { job: Job { state, ..job }, seq });
                if let Some(claimed) = claimed {
                    journal(Change::Claimed(claimed));
                }
            }
        }
        drop(inner);
        self.notify();
        answers
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        Ok(self.enqueue_inner(jobs, None))
    }

    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>, StoreError> {
        let mut inner = self.inner.lock();
        let Some(&queue) = inner.queue_ids.get(&request.queue) else {
            return Ok(Vec::new());
        };
        inner.promote_due(queue, request.now);
        let q = &inner.queues[queue as usize];
        let mut budgets: Vec<(u32, usize)> = request
            .functions
            .iter()
            .filter(|(_, budget)| *budget > 0)
            .filter_map(|(f, budget)| q.routes.get(f).map(|route| (*route, *budget)))
            .collect();
        let mut leases = Vec::new();
        while leases.len() < request.max {
            // The ready job of the highest priority, oldest first, among the functions that
            // still have budget.
            let best = budgets
                .iter()
                .enumerate()
                .filter(|(_, (_, budget))| *budget > 0)
                .filter_map(|(i, (route, _))| {
                    inner.routes[*route as usize].ready.next().map(|(priority, seq)| (MAX_PRIORITY - priority, seq, i))
                })
                .min();
            let Some((_, _, i)) = best else { break };
            budgets[i].1 -= 1;
            let mut record = inner.routes[budgets[i].0 as usize].ready.pop_next().expect("has a next");
            inner.next_lease = inner.next_lease.wrapping_add(1);
            record.lease = inner.next_lease;
            record.attempts += 1;
            record.clear_progress();
            let job = inner.job(&record, JobState::InFlight);
            let slot = inner.in_flight.insert(record);
            inner.queues[queue as usize].in_flight += 1;
            let lease_id = (u64::from(slot) << 32) | u64::from(inner.next_lease);
            leases.push(Lease { token: LeaseToken { job_id: job.id.clone(), lease_id }, job });
        }
        Ok(leases)
    }

    async fn finish(&self, token: &LeaseToken, finish: Finish) -> Result<bool, StoreError> {
        Ok(self.finish_inner(token, finish, None))
    }

    async fn finish_many(&self, ends: Vec<(LeaseToken, Finish)>) -> Vec<Result<bool, StoreError>> {
        self.finish_many_inner(ends, None).into_iter().map(Ok).collect()
    }

    async fn next_due(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        let inner = self.inner.lock();
        Ok(inner.queue(queue).and_then(|q| q.delayed.next_due()))
    }

    async fn oldest_ready(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        let inner = self.inner.lock();
        let Some(q) = inner.queue(queue) else {
            return Ok(None);
        };
        let heads = q.routes.values().filter_map(|r| inner.routes[*r as usize].ready.oldest_record());
        Ok(heads.min_by_key(|r| r.seq).map(|r| r.enqueued_at))
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        let inner = self.inner.lock();
        let Some(q) = inner.queue(queue) else {
            return Ok(QueueStats::default());
        };
        let ready: usize = q.routes.values().map(|r| inner.routes[*r as usize].ready.len()).sum();
        Ok(QueueStats {
            ready: (ready + q.waiting.len()) as u64,
            delayed: q.delayed.len() as u64,
            in_flight: q.in_flight,
            dead: q.dead.len() as u64,
            ..q.counters
        })
    }

    async fn dead_letters(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<DeadLetterPage, StoreError> {
        let after = super::dead_letter_cursor(cursor)?;
        let inner = self.inner.lock();
        let Some(q) = inner.queue(queue) else {
            return Ok(DeadLetterPage::default());
        };
        let mut entries = Vec::new();
        let mut last = None;
        for (seq, record) in q.dead.range(after + 1..).take(limit) {
            entries.push(inner.job(record, JobState::Dead));
            last = Some(*seq);
        }
        let more = last.is_some_and(|l| q.dead.range(l + 1..).next().is_some());
        Ok(DeadLetterPage { entries, next_cursor: if more { last.map(|l| l.to_string()) } else { None } })
    }

    async fn redrive(&self, queue: &str, ids: &[JobId], now: Millis) -> Result<u64, StoreError> {
        Ok(self.redrive_inner(queue, ids, now, None))
    }

    async fn discard(&self, queue: &str, ids: &[JobId]) -> Result<u64, StoreError> {
        Ok(self.discard_inner(queue, ids, None))
    }

    async fn recover(&self) -> Result<u64, StoreError> {
        let mut inner = self.inner.lock();
        let in_flight = inner.in_flight.drain();
        let n = in_flight.len() as u64;
        for record in in_flight {
            inner.release(record, None);
        }
        drop(inner);
        if n > 0 {
            self.notify();
        }
        Ok(n)
    }

    async fn get_job(&self, queue: &str, id: &str, now: Millis) -> Result<Option<Job>, StoreError> {
        Ok(self.get_job_at(queue, id, now))
    }

    async fn cancel(&self, queue: &str, id: &str, at: Millis, until: Millis) -> Result<CancelOutcome, StoreError> {
        Ok(self.cancel_inner(queue, id, at, until, None))
    }

    async fn set_progress(&self, token: &LeaseToken, progress: Progress) -> Result<bool, StoreError> {
        Ok(self.progress(token, progress))
    }

    async fn cancel_requested(&self, tokens: &[LeaseToken]) -> Result<Vec<LeaseToken>, StoreError> {
        Ok(self.cancel_requested_of(tokens))
    }

    async fn expire_finished(&self, now: Millis) -> Result<u64, StoreError> {
        Ok(self.expire_inner(now, None))
    }

    fn rate_gate(&self) -> Arc<dyn RateGate> {
        self.gate.clone()
    }

    fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}

#[cfg(test)]
mod tests;
