//! Operator moves out of the memory store's DLQ: redrive (back to ready with a fresh budget,
//! a FIFO job at the tail of its group) and discard (deleted).
//!
//! Invariant: only dead jobs move, each once, under the store's one lock; the id index
//! follows each (live again, or gone), and the journal hears each move.

use super::ids::Part;
use super::{Change, Inner, Journal, MemoryStore};
use crate::clock::Millis;
use crate::queue::{Job, JobId, JobState};
use foldhash::HashSet;

impl Inner {
    /// Dead-letter sequence numbers of the chosen dead jobs of `queue` (all when `ids` is empty).
    fn select_dead(&self, queue: u32, ids: &[JobId]) -> Vec<u64> {
        let dead = &self.queues[queue as usize].dead;
        if ids.is_empty() {
            return dead.keys().copied().collect();
        }
        let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
        dead.iter().filter(|(_, r)| wanted.iter().any(|id| r.has_id(id))).map(|(s, _)| *s).collect()
    }
}

impl MemoryStore {
    /// [`Store::redrive`], reporting each job moved.
    pub fn redrive_with(&self, queue: &str, ids: &[JobId], now: Millis, journal: Journal<'_>) -> u64 {
        self.redrive_inner(queue, ids, now, Some(journal))
    }

    pub(super) fn redrive_inner(
        &self,
        queue: &str,
        ids: &[JobId],
        _now: Millis,
        mut journal: Option<Journal<'_>>,
    ) -> u64 {
        let mut inner = self.inner.lock();
        let Some(&q) = inner.queue_ids.get(queue) else {
            return 0;
        };
        let chosen = inner.select_dead(q, ids);
        for dead_seq in &chosen {
            let mut record = inner.queues[q as usize].dead.remove(dead_seq).expect("selected");
            let seq = inner.seq();
            let was = std::mem::replace(&mut record.seq, seq);
            record.attempts = 0;
            record.clear_progress();
            if let Some(extra) = record.extra.as_mut() {
                extra.dead_lettered_at = None;
            }
            let job = journal.is_some().then(|| inner.job(&record, JobState::Ready));
            inner.ids.set(&record, Part::Live);
            let state = inner.admit(record);
            if let (Some(journal), Some(job)) = (journal.as_mut(), job) {
                journal(Change::Redriven { job: Job { state, ..job }, seq, was });
            }
        }
        drop(inner);
        if !chosen.is_empty() {
            self.notify();
        }
        chosen.len() as u64
    }

    /// [`Store::discard`], reporting each job deleted.
    pub fn discard_with(&self, queue: &str, ids: &[JobId], journal: Journal<'_>) -> u64 {
        self.discard_inner(queue, ids, Some(journal))
    }

    pub(super) fn discard_inner(&self, queue: &str, ids: &[JobId], mut journal: Option<Journal<'_>>) -> u64 {
        let mut inner = self.inner.lock();
        let Some(&q) = inner.queue_ids.get(queue) else {
            return 0;
        };
        let chosen = inner.select_dead(q, ids);
        for dead_seq in &chosen {
            let record = inner.queues[q as usize].dead.remove(dead_seq).expect("selected");
            inner.ids.remove(&record);
            if let Some(journal) = journal.as_mut() {
                journal(Change::Discarded { id: &record.id(), queue, seq: *dead_seq });
            }
        }
        chosen.len() as u64
    }
}
