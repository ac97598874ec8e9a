//! Conformance cases of the job lifecycle (issue 22): status by id through every state,
//! results kept and expired, cancel before and during a run, progress, priorities and the
//! rate gate. Time is each case's own (the stores are told `now`), so retention and rate
//! windows are stepped, never slept through.
//!
//! `expire_finished` forgets finished jobs of every queue, and a shared store (Redis) is
//! shared by cases running at once: the cases count only their own jobs, by asking for them.

use super::{err, job, lease, unique};
use crate::limits::rate::RateLimit;
use crate::queue::{JobState, Payload, Progress};
use crate::store::{CancelOutcome, Finish, Store};
use bytes::Bytes;
use std::sync::Arc;

fn value(text: &'static str) -> Payload {
    Payload(Bytes::from_static(text.as_bytes()))
}

async fn state_of(store: &Arc<dyn Store>, queue: &str, id: &str, now: u64) -> Option<JobState> {
    store.get_job(queue, id, now).await.unwrap().map(|j| j.state)
}

fn outcome(o: &CancelOutcome) -> &'static str {
    match o {
        CancelOutcome::NotFound => "not_found",
        CancelOutcome::Cancelled(_) => "cancelled",
        CancelOutcome::Cancelling(..) => "cancelling",
        CancelOutcome::AlreadyCancelled(_) => "already_cancelled",
        CancelOutcome::AlreadyFinished(_) => "already_finished",
    }
}

pub async fn get_job_follows_a_job_from_ready_to_completed(store: Arc<dyn Store>) {
    let q = unique("q");
    let j = job(&q, "f", None, 1);
    store.enqueue(vec![j.clone()]).await.unwrap();
    let ready = store.get_job(&q, &j.id, 2_000).await.unwrap().expect("a ready job is found");
    assert_eq!((ready.state, ready.attempts, ready.function_id.as_str()), (JobState::Ready, 0, "f"));
    assert_eq!((ready.payload, ready.enqueued_at), (j.payload.clone(), j.enqueued_at));
    let l = lease(&store, &q, "f", 1, 5_000).await.remove(0);
    let running = store.get_job(&q, &j.id, 5_000).await.unwrap().expect("in flight");
    assert_eq!((running.state, running.attempts, running.cancel_requested), (JobState::InFlight, 1, false));
    assert!(store.finish(&l.token, Finish::Retry { due_at: 7_000, error: err("boom") }).await.unwrap());
    let retrying = store.get_job(&q, &j.id, 5_001).await.unwrap().expect("retrying");
    assert_eq!((retrying.state, retrying.attempts, retrying.due_at), (JobState::Delayed, 1, 7_000));
    assert_eq!(retrying.last_error, Some(err("boom")));
    let again = lease(&store, &q, "f", 1, 7_000).await.remove(0);
    let kept = Finish::CompleteRetained { result: value("result"), at: 7_500, until: 17_500 };
    assert!(store.finish(&again.token, kept).await.unwrap());
    let done = store.get_job(&q, &j.id, 8_000).await.unwrap().expect("a kept result is found");
    assert_eq!((done.state, done.attempts), (JobState::Completed, 2));
    assert_eq!((done.result, done.finished_at, done.expires_at), (Some(value("result")), Some(7_500), Some(17_500)));
    let s = store.stats(&q).await.unwrap();
    assert_eq!(
        (s.ready, s.delayed, s.in_flight, s.completed, s.failed),
        (0, 0, 0, 1, 1),
        "kept results are in no gauge"
    );
    assert!(lease(&store, &q, "f", 1, 20_000).await.is_empty(), "a completed job does not run again");
}

pub async fn get_job_sees_waiting_delayed_and_dead_jobs(store: Arc<dyn Store>) {
    let q = unique("q");
    let (head, member) = (job(&q, "f", Some("G"), 1), job(&q, "f", Some("G"), 2));
    let later = super::delayed(job(&q, "f", None, 3), 9_000);
    let doomed = job(&q, "g", None, 4);
    store.enqueue(vec![head.clone(), member.clone(), later.clone(), doomed.clone()]).await.unwrap();
    assert_eq!(state_of(&store, &q, &member.id, 2_000).await, Some(JobState::Waiting));
    let delayed = store.get_job(&q, &later.id, 2_000).await.unwrap().expect("delayed");
    assert_eq!((delayed.state, delayed.due_at), (JobState::Delayed, 9_000));
    let l = lease(&store, &q, "g", 1, 5_000).await.remove(0);
    assert!(store.finish(&l.token, Finish::DeadLetter { error: err("bad"), at: 5_100 }).await.unwrap());
    let dead = store.get_job(&q, &doomed.id, 5_200).await.unwrap().expect("a dead letter is found");
    assert_eq!((dead.state, dead.dead_lettered_at, dead.last_error), (JobState::Dead, Some(5_100), Some(err("bad"))));
    assert!(store.get_job(&q, "no-such-job", 5_200).await.unwrap().is_none());
    assert!(store.get_job(&unique("other"), &head.id, 5_200).await.unwrap().is_none(), "ids are per queue");
}

pub async fn a_kept_result_is_gone_at_its_expiry_and_expire_forgets_it(store: Arc<dyn Store>) {
    let q = unique("q");
    let (kept, plain) = (job(&q, "f", None, 1), job(&q, "f", None, 2));
    store.enqueue(vec![kept.clone(), plain.clone()]).await.unwrap();
    let leases = lease(&store, &q, "f", 2, 5_000).await;
    let finish = Finish::CompleteRetained { result: value("42"), at: 6_000, until: 16_000 };
    assert!(store.finish(&leases[0].token, finish).await.unwrap());
    assert!(store.finish(&leases[1].token, Finish::Complete).await.unwrap());
    assert!(store.get_job(&q, &plain.id, 6_001).await.unwrap().is_none(), "no retention: gone at once");
    assert_eq!(state_of(&store, &q, &kept.id, 15_999).await, Some(JobState::Completed), "kept before its expiry");
    assert_eq!(state_of(&store, &q, &kept.id, 16_000).await, None, "gone at its expiry, before any sweep");
    store.expire_finished(15_999).await.unwrap();
    assert_eq!(state_of(&store, &q, &kept.id, 15_999).await, Some(JobState::Completed), "not expired yet");
    assert!(store.expire_finished(16_000).await.unwrap() >= 1);
    assert_eq!(state_of(&store, &q, &kept.id, 6_001).await, None, "forgotten, whatever time is asked");
    assert_eq!(store.stats(&q).await.unwrap().completed, 2);
}

pub async fn cancel_before_start_never_runs_and_counts_nowhere(store: Arc<dyn Store>) {
    let q = unique("q");
    let (ready, later, other) =
        (job(&q, "f", None, 1), super::delayed(job(&q, "f", None, 2), 9_000), job(&q, "f", None, 3));
    store.enqueue(vec![ready.clone(), later.clone(), other.clone()]).await.unwrap();
    let first = store.cancel(&q, &ready.id, 2_000, 62_000).await.unwrap();
    let CancelOutcome::Cancelled(job) = &first else { panic!("a ready job is cancelled at once: {}", outcome(&first)) };
    assert_eq!((job.state, job.finished_at, job.expires_at), (JobState::Cancelled, Some(2_000), Some(62_000)));
    let second = store.cancel(&q, &later.id, 2_001, 62_001).await.unwrap();
    assert_eq!(outcome(&second), "cancelled", "a delayed job is cancelled at once");
    let again = store.cancel(&q, &ready.id, 2_002, 62_002).await.unwrap();
    assert_eq!(outcome(&again), "already_cancelled");
    assert_eq!(outcome(&store.cancel(&q, "no-such-job", 2_003, 62_003).await.unwrap()), "not_found");
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight, s.dead), (1, 0, 0, 0), "cancelled jobs are in no gauge");
    assert_eq!((s.completed, s.failed, s.dead_lettered), (0, 0, 0));
    assert_eq!(store.next_due(&q).await.unwrap(), None, "the delayed job is no longer due");
    let leased: Vec<_> = lease(&store, &q, "f", 10, 10_000).await.into_iter().map(|l| l.job.id).collect();
    assert_eq!(leased, vec![other.id.clone()], "cancelled jobs never run");
    let kept = store.get_job(&q, &later.id, 10_000).await.unwrap().expect("kept until its expiry");
    assert_eq!((kept.state, kept.expires_at), (JobState::Cancelled, Some(62_001)));
    assert_eq!(state_of(&store, &q, &later.id, 62_001).await, None, "gone at its expiry");
}

pub async fn cancel_of_fifo_members_lets_the_group_go_on(store: Arc<dyn Store>) {
    let q = unique("q");
    let a: Vec<_> = (0..3).map(|n| job(&q, "f", Some("A"), n)).collect();
    let b: Vec<_> = (10..12).map(|n| job(&q, "f", Some("B"), n)).collect();
    store.enqueue(a.iter().chain(&b).cloned().collect()).await.unwrap();
    // B's head is cancelled while ready: B's next member is its head now.
    assert_eq!(outcome(&store.cancel(&q, &b[0].id, 2_000, 62_000).await.unwrap()), "cancelled");
    let first: Vec<_> = lease(&store, &q, "f", 10, 5_000).await;
    let ids: Vec<_> = first.iter().map(|l| l.job.id.clone()).collect();
    assert_eq!(ids, vec![a[0].id.clone(), b[1].id.clone()]);
    // A waiting member of A leaves its group; the one behind it follows the head.
    assert_eq!(outcome(&store.cancel(&q, &a[1].id, 5_001, 65_001).await.unwrap()), "cancelled");
    assert_eq!(store.stats(&q).await.unwrap().ready, 1, "only a[2] still waits");
    assert!(lease(&store, &q, "f", 10, 5_002).await.is_empty(), "A's head is still in flight");
    assert!(store.finish(&first[0].token, Finish::Complete).await.unwrap());
    let next: Vec<_> = lease(&store, &q, "f", 10, 5_003).await.into_iter().map(|l| l.job.id).collect();
    assert_eq!(next, vec![a[2].id.clone()]);
    assert_eq!(state_of(&store, &q, &a[1].id, 5_003).await, Some(JobState::Cancelled));
}

pub async fn cancel_during_a_run_requests_it_and_the_end_cancels(store: Arc<dyn Store>) {
    let q = unique("q");
    let (j, other) = (job(&q, "f", None, 1), job(&q, "f", None, 2));
    store.enqueue(vec![j.clone(), other.clone()]).await.unwrap();
    let leases = lease(&store, &q, "f", 2, 5_000).await;
    let (l, o) = (&leases[0], &leases[1]);
    let asked = store.cancel(&q, &j.id, 5_100, 65_100).await.unwrap();
    let CancelOutcome::Cancelling(job, token) = &asked else { panic!("in flight: {}", outcome(&asked)) };
    assert_eq!((job.state, job.cancel_requested, token), (JobState::InFlight, true, &l.token));
    let seen = store.get_job(&q, &j.id, 5_100).await.unwrap().expect("in flight");
    assert_eq!((seen.state, seen.cancel_requested), (JobState::InFlight, true));
    let tokens = [l.token.clone(), o.token.clone()];
    assert_eq!(store.cancel_requested(&tokens).await.unwrap(), vec![l.token.clone()]);
    assert_eq!(outcome(&store.cancel(&q, &j.id, 5_200, 65_200).await.unwrap()), "already_cancelled");
    assert!(store.finish(&l.token, Finish::Cancelled { at: 5_300, until: 65_300 }).await.unwrap());
    let ended = store.get_job(&q, &j.id, 5_400).await.unwrap().expect("kept");
    assert_eq!((ended.state, ended.finished_at, ended.expires_at), (JobState::Cancelled, Some(5_300), Some(65_300)));
    assert!(store.cancel_requested(&tokens).await.unwrap().is_empty(), "its lease is over");
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.in_flight, s.completed, s.failed, s.dead_lettered), (1, 0, 0, 0));
    assert!(lease(&store, &q, "f", 10, 100_000).await.is_empty(), "a cancelled job does not run again");
}

pub async fn a_failed_or_released_attempt_of_a_cancel_requested_job_ends_cancelled(store: Arc<dyn Store>) {
    let q = unique("q");
    let jobs: Vec<_> = (1..=3).map(|n| job(&q, "f", None, n)).collect();
    store.enqueue(jobs.clone()).await.unwrap();
    let leases = lease(&store, &q, "f", 3, 5_000).await;
    for j in &jobs {
        assert_eq!(outcome(&store.cancel(&q, &j.id, 5_100, 65_100).await.unwrap()), "cancelling");
    }
    let ends = [
        Finish::Retry { due_at: 6_000, error: err("later") },
        Finish::DeadLetter { error: err("dead"), at: 5_500 },
        Finish::Release,
    ];
    for (l, end) in leases.iter().zip(ends) {
        assert!(store.finish(&l.token, end).await.unwrap());
    }
    for j in &jobs {
        let got = store.get_job(&q, &j.id, 5_600).await.unwrap().expect("kept");
        assert_eq!(got.state, JobState::Cancelled, "{}", j.id);
        assert!(got.expires_at.is_some_and(|at| at >= 65_100), "kept as the cancel asked");
    }
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight, s.dead), (0, 0, 0, 0));
    assert_eq!((s.failed, s.dead_lettered, s.completed), (0, 0, 0), "a cancelled attempt is not a failure");
    assert!(lease(&store, &q, "f", 10, 6_000).await.is_empty(), "not retried");
    assert!(store.dead_letters(&q, None, 10).await.unwrap().entries.is_empty(), "not dead-lettered");
}

pub async fn a_cancel_requested_job_that_succeeds_stays_completed(store: Arc<dyn Store>) {
    let q = unique("q");
    let (j, dead) = (job(&q, "f", None, 1), job(&q, "g", None, 2));
    store.enqueue(vec![j.clone(), dead.clone()]).await.unwrap();
    let l = lease(&store, &q, "f", 1, 5_000).await.remove(0);
    assert_eq!(outcome(&store.cancel(&q, &j.id, 5_100, 65_100).await.unwrap()), "cancelling");
    let kept = Finish::CompleteRetained { result: value("done"), at: 5_200, until: 15_200 };
    assert!(store.finish(&l.token, kept).await.unwrap());
    let got = store.get_job(&q, &j.id, 5_300).await.unwrap().expect("kept");
    assert_eq!((got.state, got.result), (JobState::Completed, Some(value("done"))), "the work was done");
    assert_eq!(outcome(&store.cancel(&q, &j.id, 5_400, 65_400).await.unwrap()), "already_finished");
    let d = lease(&store, &q, "g", 1, 5_000).await.remove(0);
    assert!(store.finish(&d.token, Finish::DeadLetter { error: err("x"), at: 5_500 }).await.unwrap());
    assert_eq!(outcome(&store.cancel(&q, &dead.id, 5_600, 65_600).await.unwrap()), "already_finished");
    assert_eq!(store.stats(&q).await.unwrap().dead, 1, "cancel leaves a dead letter where it is");
    assert_eq!(store.stats(&q).await.unwrap().completed, 1);
}

pub async fn progress_keeps_the_latest_report_of_the_current_attempt(store: Arc<dyn Store>) {
    let q = unique("q");
    let j = job(&q, "f", None, 1);
    store.enqueue(vec![j.clone()]).await.unwrap();
    let first = lease(&store, &q, "f", 1, 5_000).await.remove(0);
    let half = Progress { value: Some(0.5), detail: None };
    let most = Progress { value: Some(0.9), detail: Some(value("step 9")) };
    assert!(store.set_progress(&first.token, half).await.unwrap());
    assert!(store.set_progress(&first.token, most.clone()).await.unwrap());
    let seen = store.get_job(&q, &j.id, 5_100).await.unwrap().expect("in flight");
    assert_eq!(seen.progress, Some(most), "the latest report wins");
    assert!(store.finish(&first.token, Finish::Release).await.unwrap());
    let stale = Progress { value: Some(1.0), detail: None };
    assert!(!store.set_progress(&first.token, stale).await.unwrap(), "a stale token is refused");
    let second = lease(&store, &q, "f", 1, 5_200).await.remove(0);
    let fresh = store.get_job(&q, &j.id, 5_200).await.unwrap().expect("in flight");
    assert_eq!(fresh.progress, None, "a new attempt starts with no progress");
    assert!(store.set_progress(&second.token, Progress { value: Some(0.1), detail: None }).await.unwrap());
}

pub async fn lease_takes_higher_priorities_first_then_enqueue_order(store: Arc<dyn Store>) {
    let q = unique("q");
    let with = |n: u32, priority: u8| {
        let mut j = job(&q, "f", None, n);
        j.priority = priority;
        j
    };
    let jobs = vec![with(0, 0), with(1, 5), with(2, 9), with(3, 5), with(4, 0)];
    store.enqueue(jobs.clone()).await.unwrap();
    let first = lease(&store, &q, "f", 2, 5_000).await;
    let ids = |ls: &[super::Lease]| ls.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first), vec![jobs[2].id.clone(), jobs[1].id.clone()]);
    assert_eq!(first[1].job.priority, 5);
    assert!(store.finish(&first[1].token, Finish::Release).await.unwrap());
    assert!(store.finish(&first[0].token, Finish::Retry { due_at: 6_000, error: err("again") }).await.unwrap());
    let rest = lease(&store, &q, "f", 10, 6_000).await;
    let want = [2, 1, 3, 0, 4].map(|i| jobs[i].id.clone()).to_vec();
    assert_eq!(ids(&rest), want, "a released or retried job keeps its priority");
    let got = store.get_job(&q, &jobs[3].id, 6_000).await.unwrap().expect("in flight");
    assert_eq!(got.priority, 5);
}

pub async fn priorities_leave_fifo_order_alone(store: Arc<dyn Store>) {
    let q = unique("q");
    let a: Vec<_> = (0..2).map(|n| job(&q, "f", Some("A"), n)).collect();
    let mut urgent = job(&q, "f", None, 5);
    urgent.priority = 9;
    store.enqueue(vec![a[0].clone(), a[1].clone(), urgent.clone()]).await.unwrap();
    let first = lease(&store, &q, "f", 10, 5_000).await;
    let ids: Vec<_> = first.iter().map(|l| l.job.id.clone()).collect();
    assert_eq!(ids, vec![urgent.id.clone(), a[0].id.clone()], "the group's head only, after the urgent job");
    assert!(store.finish(&first[1].token, Finish::Complete).await.unwrap());
    let next: Vec<_> = lease(&store, &q, "f", 10, 5_001).await.into_iter().map(|l| l.job.id).collect();
    assert_eq!(next, vec![a[1].id.clone()]);
}

pub async fn the_rate_gate_grants_at_most_burst_plus_rate_per_window(store: Arc<dyn Store>) {
    let q = unique("q");
    let gate = store.rate_gate();
    let limit = RateLimit { count: 10, window_ms: 1_000, burst: 3 };
    // Take as much as is granted every 20 ms for 5 s, giving one token of each grant back.
    let mut starts = Vec::new();
    for now in (0..5_000u64).step_by(20) {
        let grant = gate.take(&q, &limit, 4, 10_000 + now).await.unwrap();
        assert!(grant.granted <= 3, "never more than the burst at once");
        if grant.granted == 0 {
            assert!(grant.next_at.is_some_and(|at| at > 10_000 + now), "an empty bucket says when to come back");
        }
        let used = grant.granted.saturating_sub(1);
        if grant.granted > used {
            gate.refund(&q, &limit, grant.granted - used, 10_000 + now).await.unwrap();
        }
        starts.extend(std::iter::repeat_n(now, used as usize));
    }
    for (i, &from) in starts.iter().enumerate() {
        let in_window = starts[i..].iter().take_while(|&&t| t < from + 1_000).count();
        assert!(in_window <= 3 + 10, "{in_window} starts in the second from {from}");
    }
    assert!(starts.len() >= 45, "the limit is used, not starved: {} starts in 5 s", starts.len());
    // Buckets are per queue.
    let other = gate.take(&unique("q"), &limit, 3, 15_000).await.unwrap();
    assert_eq!(other.granted, 3, "another queue's bucket is full");
}
