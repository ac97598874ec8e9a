//! `builtin` / `in_memory`: the embedded store for development and tests.
//!
//! Invariant: every job is in exactly one index matching its state — `Ready` jobs in
//! their queue's `ready[function]`, `Delayed` in `delayed`, `Dead` in `dead`; `InFlight`
//! and `Waiting` jobs in none (they are found by id). FIFO jobs are also in their group's
//! list, head first, until they complete or are dead-lettered; only the head is ever
//! `Ready`, `Delayed` or `InFlight`. One mutex guards it all, so each operation is atomic.

use super::{DeadLetterPage, Finish, Lease, LeaseRequest, LeaseToken, QueueStats, Store, StoreError};
use crate::clock::Millis;
use crate::queue::{Job, JobId, JobState, NewJob};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::Notify;

/// A change [`MemoryStore`] made that a store persisting it must write (the file store
/// keeps its jobs in a `MemoryStore` and writes these behind it, see `store::file`).
/// Leases, releases, recoveries, due retries becoming ready and FIFO promotions are not
/// changes: a restart re-derives all of them (in-flight jobs are ready again, attempt not
/// counted; a group's head is its oldest pending member).
#[derive(Debug)]
pub enum Change<'a> {
    /// Stored as `Ready` (or `Waiting` behind its group) with enqueue order `seq`.
    Enqueued { job: &'a Job, seq: u64 },
    /// Succeeded and deleted; counts `completed`.
    Completed { id: &'a str, queue: &'a str },
    /// Failed with budget left: `Delayed` until `job.due_at` with `job.attempts` and
    /// `job.last_error`; counts `failed`.
    Retried { job: &'a Job },
    /// Failed with the budget spent: `Dead` with dead-letter order `dead_seq`; counts
    /// `failed` and `dead_lettered`.
    DeadLettered { job: &'a Job, dead_seq: u64 },
    /// Back from the DLQ: `Ready` with `attempts = 0` and the new enqueue order `seq`.
    Redriven { job: &'a Job, seq: u64 },
    /// Deleted from the DLQ.
    Discarded { id: &'a str, queue: &'a str },
}

/// Where a [`MemoryStore`] operation reports its [`Change`]s, in the order it made them,
/// while it still holds the store's lock.
pub type Journal<'j> = &'j mut dyn FnMut(Change<'_>);

/// A job as a persisting store reloads it: `job.state` is `Ready` (pending: ready, waiting
/// or in flight when the engine stopped), `Delayed` or `Dead`; `seq` is its enqueue order
/// (dead-letter order for `Dead`).
pub struct Restored {
    pub job: Job,
    pub seq: u64,
}

/// The in-memory store.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    changed: Arc<Notify>,
}

#[derive(Default)]
struct Inner {
    jobs: HashMap<JobId, Entry>,
    queues: HashMap<String, QueueIndex>,
    next_seq: u64,
    next_lease: u64,
}

struct Entry {
    job: Job,
    /// Enqueue order; a redriven job gets a new one.
    seq: u64,
    lease_id: u64,
}

#[derive(Default)]
struct QueueIndex {
    ready: HashMap<String, BTreeMap<u64, JobId>>,
    delayed: BTreeSet<(Millis, u64, JobId)>,
    groups: HashMap<String, VecDeque<JobId>>,
    dead: BTreeMap<u64, JobId>,
    waiting: u64,
    in_flight: u64,
    counters: QueueStats,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self { inner: Mutex::new(Inner::default()), changed: Arc::new(Notify::new()) }
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

    /// Makes `id` Ready (it must be in no index).
    fn make_ready(&mut self, id: &JobId) {
        let entry = self.jobs.get_mut(id).expect("indexed job exists");
        entry.job.state = JobState::Ready;
        let q = self.queues.entry(entry.job.queue.clone()).or_default();
        q.ready.entry(entry.job.function_id.clone()).or_default().insert(entry.seq, id.clone());
    }

    /// Appends a FIFO job to its group: Ready if it is the head, Waiting otherwise.
    fn join_group(&mut self, id: &JobId, queue: &str, group: &str) {
        let q = self.queues.entry(queue.to_string()).or_default();
        let members = q.groups.entry(group.to_string()).or_default();
        members.push_back(id.clone());
        if members.len() == 1 {
            self.make_ready(id);
        } else {
            q.waiting += 1;
            self.jobs.get_mut(id).expect("job exists").job.state = JobState::Waiting;
        }
    }

    /// Removes the head of a FIFO group and promotes the next member.
    fn leave_group(&mut self, queue: &str, group: &str, id: &JobId) {
        let q = self.queues.get_mut(queue).expect("queue exists");
        let Some(members) = q.groups.get_mut(group) else {
            return;
        };
        debug_assert_eq!(members.front(), Some(id));
        members.retain(|m| m != id);
        let next = members.front().cloned();
        if members.is_empty() {
            q.groups.remove(group);
        }
        if let Some(next) = next
            && self.jobs.get(&next).is_some_and(|e| e.job.state == JobState::Waiting)
        {
            self.queues.get_mut(queue).expect("queue exists").waiting -= 1;
            self.make_ready(&next);
        }
    }

    fn promote_due(&mut self, queue: &str, now: Millis) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        let mut due = Vec::new();
        while let Some(first) = q.delayed.first() {
            if first.0 > now {
                break;
            }
            due.push(q.delayed.pop_first().expect("non-empty").2);
        }
        for id in due {
            self.make_ready(&id);
        }
    }

    fn select_dead(&self, queue: &str, ids: &[JobId]) -> Vec<(u64, JobId)> {
        let Some(q) = self.queues.get(queue) else {
            return Vec::new();
        };
        if ids.is_empty() {
            return q.dead.iter().map(|(k, v)| (*k, v.clone())).collect();
        }
        ids.iter()
            .filter_map(|id| {
                let e = self.jobs.get(id)?;
                (e.job.queue == queue && e.job.state == JobState::Dead).then(|| (e.seq, id.clone()))
            })
            .collect()
    }
}

impl MemoryStore {
    /// Loads what a persisting store kept, into an empty store: `jobs` in any order (they
    /// are placed by `seq`; FIFO groups are rebuilt, their oldest pending member the head),
    /// and each queue's counters (`enqueued`, `completed`, `failed`, `dead_lettered`).
    pub fn restore(&self, mut jobs: Vec<Restored>, counters: Vec<(String, QueueStats)>) {
        jobs.sort_by_key(|r| r.seq);
        let mut inner = self.inner.lock();
        for (queue, c) in counters {
            inner.queues.entry(queue).or_default().counters = c;
        }
        for Restored { mut job, seq } in jobs {
            inner.next_seq = inner.next_seq.max(seq);
            let (id, queue, group, state, due_at) =
                (job.id.clone(), job.queue.clone(), job.group.clone(), job.state, job.due_at);
            job.state = JobState::Ready;
            inner.jobs.insert(id.clone(), Entry { job, seq, lease_id: 0 });
            let q = inner.queues.entry(queue.clone()).or_default();
            match (state, group) {
                (JobState::Dead, _) => {
                    q.dead.insert(seq, id.clone());
                    inner.jobs.get_mut(&id).expect("inserted").job.state = JobState::Dead;
                }
                (JobState::Delayed, group) => {
                    q.delayed.insert((due_at, seq, id.clone()));
                    if let Some(g) = group {
                        q.groups.entry(g).or_default().push_back(id.clone());
                    }
                    inner.jobs.get_mut(&id).expect("inserted").job.state = JobState::Delayed;
                }
                (_, Some(g)) => inner.join_group(&id, &queue, &g),
                (_, None) => inner.make_ready(&id),
            }
        }
    }

    /// [`Store::enqueue`], reporting each job stored.
    pub fn enqueue_with(&self, jobs: Vec<NewJob>, journal: Journal<'_>) {
        let mut inner = self.inner.lock();
        for new in jobs {
            let seq = inner.seq();
            let id = new.id.clone();
            let (queue, group) = (new.queue.clone(), new.group.clone());
            let job = Job {
                id: new.id,
                queue: new.queue,
                function_id: new.function_id,
                payload: new.payload,
                group: new.group,
                state: JobState::Ready,
                attempts: 0,
                enqueued_at: new.enqueued_at,
                due_at: new.enqueued_at,
                last_error: None,
                dead_lettered_at: None,
            };
            inner.jobs.insert(id.clone(), Entry { job, seq, lease_id: 0 });
            inner.queues.entry(queue.clone()).or_default().counters.enqueued += 1;
            match group {
                Some(g) => inner.join_group(&id, &queue, &g),
                None => inner.make_ready(&id),
            }
            journal(Change::Enqueued { job: &inner.jobs[&id].job, seq });
        }
        drop(inner);
        self.notify();
    }

    /// [`Store::finish`], reporting the change (none for a release or a stale token).
    pub fn finish_with(&self, token: &LeaseToken, finish: Finish, journal: Journal<'_>) -> bool {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.jobs.get_mut(&token.job_id) else {
            return false;
        };
        if entry.job.state != JobState::InFlight || entry.lease_id != token.lease_id {
            return false;
        }
        let (queue, group, seq) = (entry.job.queue.clone(), entry.job.group.clone(), entry.seq);
        let q = inner.queues.get_mut(&queue).expect("queue exists");
        q.in_flight -= 1;
        match finish {
            Finish::Complete => {
                q.counters.completed += 1;
                if let Some(g) = &group {
                    inner.leave_group(&queue, g, &token.job_id);
                }
                inner.jobs.remove(&token.job_id);
                journal(Change::Completed { id: &token.job_id, queue: &queue });
            }
            Finish::Retry { due_at, error } => {
                q.counters.failed += 1;
                q.delayed.insert((due_at, seq, token.job_id.clone()));
                let job = &mut inner.jobs.get_mut(&token.job_id).expect("exists").job;
                job.state = JobState::Delayed;
                job.due_at = due_at;
                job.last_error = Some(error);
                journal(Change::Retried { job });
            }
            Finish::DeadLetter { error, at } => {
                q.counters.failed += 1;
                q.counters.dead_lettered += 1;
                let dead_seq = inner.seq();
                let q = inner.queues.get_mut(&queue).expect("queue exists");
                q.dead.insert(dead_seq, token.job_id.clone());
                let entry = inner.jobs.get_mut(&token.job_id).expect("exists");
                entry.seq = dead_seq;
                entry.job.state = JobState::Dead;
                entry.job.last_error = Some(error);
                entry.job.dead_lettered_at = Some(at);
                if let Some(g) = &group {
                    inner.leave_group(&queue, g, &token.job_id);
                }
                journal(Change::DeadLettered { job: &inner.jobs[&token.job_id].job, dead_seq });
            }
            Finish::Release => {
                inner.jobs.get_mut(&token.job_id).expect("exists").job.attempts -= 1;
                inner.make_ready(&token.job_id);
            }
        }
        drop(inner);
        self.notify();
        true
    }

    /// [`Store::redrive`], reporting each job moved.
    pub fn redrive_with(&self, queue: &str, ids: &[JobId], now: Millis, journal: Journal<'_>) -> u64 {
        let mut inner = self.inner.lock();
        let chosen = inner.select_dead(queue, ids);
        for (dead_seq, id) in &chosen {
            inner.queues.get_mut(queue).expect("queue exists").dead.remove(dead_seq);
            let seq = inner.seq();
            let entry = inner.jobs.get_mut(id).expect("dead job exists");
            entry.seq = seq;
            entry.job.attempts = 0;
            entry.job.dead_lettered_at = None;
            entry.job.due_at = now;
            match entry.job.group.clone() {
                Some(g) => inner.join_group(id, queue, &g),
                None => inner.make_ready(id),
            }
            journal(Change::Redriven { job: &inner.jobs[id].job, seq });
        }
        drop(inner);
        if !chosen.is_empty() {
            self.notify();
        }
        chosen.len() as u64
    }

    /// [`Store::discard`], reporting each job deleted.
    pub fn discard_with(&self, queue: &str, ids: &[JobId], journal: Journal<'_>) -> u64 {
        let mut inner = self.inner.lock();
        let chosen = inner.select_dead(queue, ids);
        for (dead_seq, id) in &chosen {
            inner.queues.get_mut(queue).expect("queue exists").dead.remove(dead_seq);
            inner.jobs.remove(id);
            journal(Change::Discarded { id, queue });
        }
        chosen.len() as u64
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<(), StoreError> {
        self.enqueue_with(jobs, &mut |_| {});
        Ok(())
    }

    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>, StoreError> {
        let mut inner = self.inner.lock();
        inner.promote_due(&request.queue, request.now);
        let mut budgets: Vec<(String, usize)> = request.functions.into_iter().filter(|(_, b)| *b > 0).collect();
        let mut picked = Vec::new();
        {
            let Some(q) = inner.queues.get_mut(&request.queue) else {
                return Ok(Vec::new());
            };
            while picked.len() < request.max {
                // The oldest ready job among the functions that still have budget.
                let best = budgets
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, b))| *b > 0)
                    .filter_map(|(i, (f, _))| q.ready.get(f).and_then(|m| m.keys().next()).map(|s| (*s, i)))
                    .min();
                let Some((seq, i)) = best else { break };
                let ready = q.ready.get_mut(&budgets[i].0).expect("present");
                let id = ready.remove(&seq).expect("present");
                if ready.is_empty() {
                    q.ready.remove(&budgets[i].0);
                }
                budgets[i].1 -= 1;
                q.in_flight += 1;
                picked.push(id);
            }
        }
        let mut leases = Vec::with_capacity(picked.len());
        for id in picked {
            inner.next_lease += 1;
            let lease_id = inner.next_lease;
            let entry = inner.jobs.get_mut(&id).expect("indexed job exists");
            entry.job.state = JobState::InFlight;
            entry.job.attempts += 1;
            entry.lease_id = lease_id;
            leases.push(Lease { token: LeaseToken { job_id: id, lease_id }, job: entry.job.clone() });
        }
        Ok(leases)
    }

    async fn finish(&self, token: &LeaseToken, finish: Finish) -> Result<bool, StoreError> {
        Ok(self.finish_with(token, finish, &mut |_| {}))
    }

    async fn next_due(&self, queue: &str) -> Result<Option<Millis>, StoreError> {
        Ok(self.inner.lock().queues.get(queue).and_then(|q| q.delayed.first().map(|d| d.0)))
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        let inner = self.inner.lock();
        let Some(q) = inner.queues.get(queue) else {
            return Ok(QueueStats::default());
        };
        Ok(QueueStats {
            ready: q.ready.values().map(|m| m.len() as u64).sum::<u64>() + q.waiting,
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
        let Some(q) = inner.queues.get(queue) else {
            return Ok(DeadLetterPage::default());
        };
        let mut entries = Vec::new();
        let mut last = None;
        for (seq, id) in q.dead.range(after + 1..).take(limit) {
            entries.push(inner.jobs[id].job.clone());
            last = Some(*seq);
        }
        let more = last.is_some_and(|l| q.dead.range(l + 1..).next().is_some());
        Ok(DeadLetterPage { entries, next_cursor: if more { last.map(|l| l.to_string()) } else { None } })
    }

    async fn redrive(&self, queue: &str, ids: &[JobId], now: Millis) -> Result<u64, StoreError> {
        Ok(self.redrive_with(queue, ids, now, &mut |_| {}))
    }

    async fn discard(&self, queue: &str, ids: &[JobId]) -> Result<u64, StoreError> {
        Ok(self.discard_with(queue, ids, &mut |_| {}))
    }

    async fn recover(&self) -> Result<u64, StoreError> {
        let mut inner = self.inner.lock();
        let in_flight: Vec<JobId> =
            inner.jobs.iter().filter(|(_, e)| e.job.state == JobState::InFlight).map(|(id, _)| id.clone()).collect();
        for id in &in_flight {
            let entry = inner.jobs.get_mut(id).expect("exists");
            entry.job.attempts -= 1;
            let queue = entry.job.queue.clone();
            inner.queues.get_mut(&queue).expect("queue exists").in_flight -= 1;
            inner.make_ready(id);
        }
        drop(inner);
        if !in_flight.is_empty() {
            self.notify();
        }
        Ok(in_flight.len() as u64)
    }

    fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{JobError, Payload};
    use bytes::Bytes;

    crate::store_conformance_tests!(|| async { std::sync::Arc::new(super::MemoryStore::new()) });

    fn new_job(id: &str, group: Option<&str>) -> NewJob {
        NewJob {
            id: id.into(),
            queue: "q".into(),
            function_id: "f".into(),
            payload: Payload(Bytes::from(id.to_string())),
            group: group.map(Into::into),
            enqueued_at: 10,
        }
    }

    /// Replays a journal the way a persisting store keeps rows: the last word on each id.
    #[derive(Default)]
    struct Rows(std::collections::BTreeMap<String, (Job, u64)>);

    impl Rows {
        fn record(&mut self, change: Change<'_>) {
            match change {
                Change::Enqueued { job, seq } | Change::Redriven { job, seq } => {
                    self.0.insert(job.id.clone(), (job.clone(), seq));
                }
                Change::Retried { job } => {
                    let seq = self.0[&job.id].1;
                    self.0.insert(job.id.clone(), (job.clone(), seq));
                }
                Change::DeadLettered { job, dead_seq } => {
                    self.0.insert(job.id.clone(), (job.clone(), dead_seq));
                }
                Change::Completed { id, .. } | Change::Discarded { id, .. } => {
                    self.0.remove(id);
                }
            }
        }
    }

    async fn lease_ids(store: &MemoryStore, now: Millis) -> Vec<(String, u32)> {
        let request = LeaseRequest { queue: "q".into(), functions: vec![("f".into(), 100)], max: 100, now };
        store.lease(request).await.unwrap().into_iter().map(|l| (l.job.id, l.job.attempts)).collect()
    }

    #[tokio::test]
    async fn a_journal_restores_the_same_queue() {
        let store = MemoryStore::new();
        let mut rows = Rows::default();
        let jobs = vec![new_job("a", Some("g")), new_job("b", Some("g")), new_job("c", None), new_job("d", None)];
        store.enqueue_with(jobs, &mut |c| rows.record(c));
        let leased = store.lease(LeaseRequest { queue: "q".into(), functions: vec![("f".into(), 3)], max: 3, now: 20 });
        let leased = leased.await.unwrap();
        assert_eq!(leased.iter().map(|l| l.job.id.as_str()).collect::<Vec<_>>(), ["a", "c", "d"]);
        let error = JobError::new("E", "boom");
        let retry = Finish::Retry { due_at: 500, error: error.clone() };
        assert!(store.finish_with(&leased[0].token, retry, &mut |c| rows.record(c)));
        let dead = Finish::DeadLetter { error, at: 30 };
        assert!(store.finish_with(&leased[1].token, dead, &mut |c| rows.record(c)));
        assert!(store.finish_with(&leased[2].token, Finish::Complete, &mut |c| rows.record(c)));

        let restored = MemoryStore::new();
        let jobs = rows.0.into_values().map(|(job, seq)| Restored { job, seq }).collect();
        restored.restore(jobs, vec![("q".into(), store.stats("q").await.unwrap())]);
        assert_eq!(restored.stats("q").await.unwrap(), QueueStats { in_flight: 0, ..store.stats("q").await.unwrap() });
        assert!(lease_ids(&restored, 100).await.is_empty(), "'a' waits for its retry, 'b' behind it");
        assert_eq!(lease_ids(&restored, 500).await, [("a".to_string(), 2)]);
        assert_eq!(restored.redrive_with("q", &[], 600, &mut |_| {}), 1, "'c' is still dead");
    }
}
