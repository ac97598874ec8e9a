//! The memory store: the conformance suite, and the journal it reports to.

use super::*;
use crate::queue::{JobError, Payload};
use bytes::Bytes;

crate::store_conformance_tests!(|| async { std::sync::Arc::new(super::MemoryStore::new()) });

fn new_job(id: &str, group: Option<&str>) -> NewJob {
    NewJob {
        not_before: None,
        dedup: None,
        priority: 0,
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
            Change::Enqueued { job, seq } => {
                assert!(!self.0.values().any(|(_, s)| *s == seq), "a fresh order number");
                self.0.insert(job.id.clone(), (job, seq));
            }
            Change::Redriven { job, seq, was } | Change::DeadLettered { job, dead_seq: seq, was } => {
                assert_eq!(self.0[&job.id].1, was, "the order number it had");
                assert!(!self.0.values().any(|(_, s)| *s == seq), "a fresh order number");
                self.0.insert(job.id.clone(), (job, seq));
            }
            Change::Retried { job, seq } => {
                assert_eq!(self.0[&job.id].1, seq, "a retry keeps its order");
                self.0.insert(job.id.clone(), (job, seq));
            }
            Change::Completed { id, seq, .. } | Change::Discarded { id, seq, .. } => {
                assert_eq!(self.0.remove(id).map(|(_, s)| s), Some(seq), "the order number it had");
            }
            Change::Claimed(claim) => assert!(self.0.contains_key(&claim.job_id), "a claim follows its job"),
            Change::Finished { job, seq } | Change::CancelRequested { job, seq, .. } => {
                assert_eq!(self.0[&job.id].1, seq, "a finished job keeps its order");
                self.0.insert(job.id.clone(), (job, seq));
            }
            Change::Expired { id, seq, .. } => {
                assert_eq!(self.0.remove(id).map(|(_, s)| s), Some(seq), "the order number it had");
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
    restored.restore(jobs, vec![("q".into(), store.stats("q").await.unwrap())], 0);
    assert_eq!(restored.stats("q").await.unwrap(), QueueStats { in_flight: 0, ..store.stats("q").await.unwrap() });
    assert!(lease_ids(&restored, 100).await.is_empty(), "'a' waits for its retry, 'b' behind it");
    assert_eq!(lease_ids(&restored, 500).await, [("a".to_string(), 2)]);
    assert_eq!(restored.redrive_with("q", &[], 600, &mut |_| {}), 1, "'c' is still dead");
}

impl MemoryStore {
    /// Every record the store holds, wherever it is, and the id index's entries.
    fn held_and_indexed(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        let mut held = inner.finished.len() + inner.routes.iter().map(|r| r.ready.len()).sum::<usize>();
        held += inner.queues.iter().map(|q| q.delayed.len() + q.dead.len() + q.waiting.len()).sum::<usize>();
        held += inner.queues.iter().map(|q| q.in_flight as usize).sum::<usize>();
        (held, inner.ids.len())
    }
}

#[tokio::test]
async fn the_id_index_follows_every_transition() {
    let store = MemoryStore::new();
    let mut jobs: Vec<NewJob> = (0..6).map(|n| new_job(&format!("j{n}"), None)).collect();
    jobs.extend((0..3).map(|n| new_job(&uuid::Uuid::now_v7().to_string(), Some(if n < 2 { "g" } else { "h" }))));
    jobs[1].priority = 5;
    jobs[2].not_before = Some(50);
    store.enqueue(jobs.clone()).await.unwrap();
    assert_eq!(store.held_and_indexed(), (9, 9));
    let state = |id: &str| {
        let store = &store;
        let id = id.to_string();
        async move { store.get_job("q", &id, 20).await.unwrap().map(|j| j.state) }
    };
    assert_eq!(state(&jobs[6].id).await, Some(JobState::Ready));
    assert_eq!(state(&jobs[7].id).await, Some(JobState::Waiting));
    assert_eq!(state(&jobs[2].id).await, Some(JobState::Delayed));
    let leased = store.lease(LeaseRequest { queue: "q".into(), functions: vec![("f".into(), 4)], max: 4, now: 20 });
    let leased = leased.await.unwrap();
    assert_eq!(leased[0].job.id, "j1", "the highest priority first");
    assert_eq!(state("j1").await, Some(JobState::InFlight));
    let error = JobError::new("E", "boom");
    assert!(store.finish(&leased[0].token, Finish::Retry { due_at: 500, error: error.clone() }).await.unwrap());
    assert!(store.finish(&leased[1].token, Finish::DeadLetter { error, at: 30 }).await.unwrap());
    assert!(store.finish(&leased[2].token, Finish::Complete).await.unwrap());
    let kept = Finish::CompleteRetained { result: Payload(Bytes::from_static(b"r")), at: 40, until: 100 };
    assert!(store.finish(&leased[3].token, kept).await.unwrap());
    assert_eq!(store.held_and_indexed(), (8, 8), "a completion without retention leaves the store and its index");
    assert!(matches!(store.cancel("q", &jobs[7].id, 41, 200).await.unwrap(), CancelOutcome::Cancelled(_)));
    assert!(matches!(store.cancel("q", "j5", 41, 150).await.unwrap(), CancelOutcome::Cancelled(_)));
    assert!(matches!(store.cancel("other", "j4", 41, 150).await.unwrap(), CancelOutcome::NotFound));
    assert_eq!(store.held_and_indexed(), (8, 8));
    assert_eq!(store.expire_finished(150).await.unwrap(), 2, "the result kept until 100 and j5 until 150");
    assert_eq!(store.held_and_indexed(), (6, 6));
    assert_eq!(store.discard("q", &[]).await.unwrap(), 1);
    assert_eq!(store.recover().await.unwrap(), 0);
    assert_eq!(store.held_and_indexed(), (5, 5));
}
