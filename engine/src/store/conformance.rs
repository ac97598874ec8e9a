//! The store conformance suite: one behaviour across stores.
//!
//! Every store runs these cases unchanged through [`store_conformance_tests!`]:
//! `store_conformance_tests!(|| async { Arc::new(MyStore::open(...).await) })`, or, when
//! something must outlive each case (a temporary directory, a key-prefix clean-up),
//! `… async { Fixture::with_guard(Arc::new(store), guard) }`.
//! Each case uses its own random queue names, so stores shared between tests (Redis) need
//! no cleanup between cases. Cases take the time as an argument, never from a clock.
//! The job lifecycle's cases (status, results, cancel, progress, priorities, the rate
//! gate) are in [`lifecycle`].

mod lifecycle;

pub use lifecycle::*;

use super::{Finish, Lease, LeaseRequest, Store};
use crate::queue::{Dedup, Enqueued, JobError, JobState, NewJob, Payload};
use bytes::Bytes;
use std::sync::Arc;

/// What a store factory hands the suite: the store, and whatever must outlive the case.
/// Fields drop in order: the store first, then its guard.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    _guard: Box<dyn std::any::Any + Send>,
}

impl Fixture {
    pub fn with_guard(store: Arc<dyn Store>, guard: impl Send + 'static) -> Self {
        Self { store, _guard: Box::new(guard) }
    }
}

impl<S: Store> From<Arc<S>> for Fixture {
    fn from(store: Arc<S>) -> Self {
        Self::with_guard(store, ())
    }
}

/// Generates one `#[tokio::test]` per conformance case for the store made by `$factory`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@cases $factory;
            enqueue_then_lease_hands_out_attempt_one,
            lease_respects_max_budgets_and_functions,
            lease_follows_enqueue_order,
            complete_deletes_and_counts,
            retry_waits_until_due,
            dead_letter_keeps_error_and_pages,
            redrive_gives_fresh_budget,
            discard_selected_then_all,
            fifo_leases_only_the_group_head,
            fifo_dead_letter_unblocks_the_group,
            fifo_redrive_reenters_at_the_tail,
            stale_tokens_are_refused,
            finish_many_answers_each_end_in_order,
            release_does_not_count_the_attempt,
            recover_makes_in_flight_ready,
            stats_track_every_state,
            oldest_ready_is_the_first_enqueue_of_the_next_lease,
            enqueue_notifies_changed,
            delayed_enqueue_runs_no_earlier_than_due,
            fifo_delayed_head_holds_its_group,
            fifo_member_whose_turn_comes_early_waits_for_its_delay,
            dedup_within_the_window_answers_the_first_job,
            dedup_key_expires_after_the_window,
            get_job_follows_a_job_from_ready_to_completed,
            get_job_sees_waiting_delayed_and_dead_jobs,
            a_kept_result_is_gone_at_its_expiry_and_expire_forgets_it,
            cancel_before_start_never_runs_and_counts_nowhere,
            cancel_of_fifo_members_lets_the_group_go_on,
            cancel_during_a_run_requests_it_and_the_end_cancels,
            a_failed_or_released_attempt_of_a_cancel_requested_job_ends_cancelled,
            a_cancel_requested_job_that_succeeds_stays_completed,
            progress_keeps_the_latest_report_of_the_current_attempt,
            lease_takes_higher_priorities_first_then_enqueue_order,
            priorities_leave_fifo_order_alone,
            the_rate_gate_grants_at_most_burst_plus_rate_per_window
        );
    };
    (@cases $factory:expr; $($case:ident),+) => {
        $(
            #[tokio::test]
            async fn $case() {
                // A store whose server stops answering fails the case instead of hanging
                // the whole test run.
                let limit = std::time::Duration::from_secs(120);
                let case = async {
                    let factory = $factory;
                    let fixture: $crate::store::conformance::Fixture = factory().await.into();
                    $crate::store::conformance::$case(fixture.store.clone()).await;
                    drop(fixture);
                };
                tokio::time::timeout(limit, case)
                    .await
                    .unwrap_or_else(|_| panic!("{} did not finish in {limit:?}", stringify!($case)));
            }
        )+
    };
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

fn job(queue: &str, function: &str, group: Option<&str>, n: u32) -> NewJob {
    NewJob {
        not_before: None,
        dedup: None,
        priority: 0,
        id: unique("job"),
        queue: queue.into(),
        function_id: function.into(),
        payload: Payload(Bytes::from(format!("payload-{n}"))),
        group: group.map(Into::into),
        enqueued_at: 1_000 + n as u64,
    }
}

fn lease_req(queue: &str, functions: &[(&str, usize)], max: usize, now: u64) -> LeaseRequest {
    LeaseRequest {
        queue: queue.into(),
        functions: functions.iter().map(|(f, b)| (f.to_string(), *b)).collect(),
        max,
        now,
    }
}

async fn lease(store: &Arc<dyn Store>, queue: &str, function: &str, max: usize, now: u64) -> Vec<Lease> {
    store.lease(lease_req(queue, &[(function, max)], max, now)).await.unwrap()
}

fn err(msg: &str) -> JobError {
    JobError { message: msg.into(), code: "E".into(), stack: format!("at {msg}") }
}

pub async fn enqueue_then_lease_hands_out_attempt_one(store: Arc<dyn Store>) {
    let q = unique("q");
    let j = job(&q, "f", None, 1);
    store.enqueue(vec![j.clone()]).await.unwrap();
    let leases = lease(&store, &q, "f", 10, 5_000).await;
    assert_eq!(leases.len(), 1);
    let got = &leases[0].job;
    assert_eq!((got.id.as_str(), got.function_id.as_str()), (j.id.as_str(), "f"));
    assert_eq!(got.payload, j.payload, "payload must come back byte for byte");
    assert_eq!((got.attempts, got.state, got.enqueued_at), (1, JobState::InFlight, j.enqueued_at));
    assert!(lease(&store, &q, "f", 10, 5_000).await.is_empty(), "an in-flight job is not leased twice");
}

pub async fn lease_respects_max_budgets_and_functions(store: Arc<dyn Store>) {
    let q = unique("q");
    let jobs: Vec<_> = (0..6).map(|n| job(&q, if n % 2 == 0 { "a" } else { "b" }, None, n)).collect();
    store.enqueue(jobs).await.unwrap();
    assert!(lease(&store, &q, "nobody", 10, 5_000).await.is_empty(), "jobs of functions not asked for stay");
    let got = store.lease(lease_req(&q, &[("a", 1), ("b", 5)], 3, 5_000)).await.unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got.iter().filter(|l| l.job.function_id == "a").count(), 1, "budget of 'a' is 1");
    let rest = store.lease(lease_req(&q, &[("a", 10), ("b", 10)], 10, 5_000)).await.unwrap();
    assert_eq!(rest.len(), 3);
}

pub async fn lease_follows_enqueue_order(store: Arc<dyn Store>) {
    let q = unique("q");
    let jobs: Vec<_> = (0..5).map(|n| job(&q, "f", None, n)).collect();
    for j in &jobs {
        store.enqueue(vec![j.clone()]).await.unwrap();
    }
    let got: Vec<_> = lease(&store, &q, "f", 10, 5_000).await.into_iter().map(|l| l.job.id).collect();
    let want: Vec<_> = jobs.into_iter().map(|j| j.id).collect();
    assert_eq!(got, want);
}

pub async fn complete_deletes_and_counts(store: Arc<dyn Store>) {
    let q = unique("q");
    store.enqueue(vec![job(&q, "f", None, 1)]).await.unwrap();
    let l = lease(&store, &q, "f", 1, 5_000).await.remove(0);
    assert!(store.finish(&l.token, Finish::Complete).await.unwrap());
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.ready, s.in_flight, s.enqueued, s.completed, s.failed), (0, 0, 1, 1, 0));
    assert!(lease(&store, &q, "f", 1, 1_000_000).await.is_empty());
}

pub async fn retry_waits_until_due(store: Arc<dyn Store>) {
    let q = unique("q");
    store.enqueue(vec![job(&q, "f", None, 1)]).await.unwrap();
    let l = lease(&store, &q, "f", 1, 5_000).await.remove(0);
    assert!(store.finish(&l.token, Finish::Retry { due_at: 7_000, error: err("boom") }).await.unwrap());
    assert_eq!(store.next_due(&q).await.unwrap(), Some(7_000));
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.delayed, s.failed, s.in_flight), (1, 1, 0));
    assert!(lease(&store, &q, "f", 1, 6_999).await.is_empty(), "not before its due time");
    let again = lease(&store, &q, "f", 1, 7_000).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.attempts, 2);
    assert_eq!(again[0].job.last_error.as_ref().map(|e| e.message.as_str()), Some("boom"));
    assert_eq!(store.next_due(&q).await.unwrap(), None);
}

pub async fn dead_letter_keeps_error_and_pages(store: Arc<dyn Store>) {
    let q = unique("q");
    let jobs: Vec<_> = (0..5).map(|n| job(&q, "f", None, n)).collect();
    store.enqueue(jobs.clone()).await.unwrap();
    for (i, l) in lease(&store, &q, "f", 10, 5_000).await.into_iter().enumerate() {
        let finish = Finish::DeadLetter { error: err(&format!("e{i}")), at: 6_000 + i as u64 };
        assert!(store.finish(&l.token, finish).await.unwrap());
    }
    let first = store.dead_letters(&q, None, 2).await.unwrap();
    assert_eq!(first.entries.len(), 2);
    let d = &first.entries[0];
    assert_eq!((d.id.as_str(), d.state, d.attempts), (jobs[0].id.as_str(), JobState::Dead, 1));
    assert_eq!(d.payload, jobs[0].payload);
    assert_eq!(d.last_error, Some(err("e0")));
    assert_eq!((d.enqueued_at, d.dead_lettered_at), (jobs[0].enqueued_at, Some(6_000)));
    let mut seen: Vec<_> = first.entries.iter().map(|e| e.id.clone()).collect();
    let mut cursor = first.next_cursor;
    while let Some(c) = cursor {
        let page = store.dead_letters(&q, Some(&c), 2).await.unwrap();
        seen.extend(page.entries.iter().map(|e| e.id.clone()));
        cursor = page.next_cursor;
    }
    assert_eq!(seen, jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>());
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.dead, s.dead_lettered, s.failed), (5, 5, 5));
}

pub async fn redrive_gives_fresh_budget(store: Arc<dyn Store>) {
    let q = unique("q");
    store.enqueue(vec![job(&q, "f", None, 1)]).await.unwrap();
    let l = lease(&store, &q, "f", 1, 5_000).await.remove(0);
    store.finish(&l.token, Finish::DeadLetter { error: err("x"), at: 5_001 }).await.unwrap();
    assert_eq!(store.redrive(&q, &["no-such-id".to_string()], 6_000).await.unwrap(), 0);
    assert_eq!(store.redrive(&q, &[], 6_000).await.unwrap(), 1);
    assert!(store.dead_letters(&q, None, 10).await.unwrap().entries.is_empty());
    let again = lease(&store, &q, "f", 1, 6_000).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.attempts, 1, "a redriven job starts a fresh budget");
    assert_eq!(again[0].job.id, l.job.id, "the receipt id is kept");
}

pub async fn discard_selected_then_all(store: Arc<dyn Store>) {
    let q = unique("q");
    store.enqueue((0..3).map(|n| job(&q, "f", None, n)).collect()).await.unwrap();
    let leases = lease(&store, &q, "f", 3, 5_000).await;
    for l in &leases {
        store.finish(&l.token, Finish::DeadLetter { error: err("x"), at: 5_001 }).await.unwrap();
    }
    assert_eq!(store.discard(&q, &[leases[1].job.id.clone()]).await.unwrap(), 1);
    assert_eq!(store.dead_letters(&q, None, 10).await.unwrap().entries.len(), 2);
    assert_eq!(store.discard(&q, &[]).await.unwrap(), 2);
    assert_eq!(store.stats(&q).await.unwrap().dead, 0);
    assert!(lease(&store, &q, "f", 3, 10_000).await.is_empty(), "discarded jobs are gone");
}

pub async fn fifo_leases_only_the_group_head(store: Arc<dyn Store>) {
    let q = unique("q");
    let a: Vec<_> = (0..3).map(|n| job(&q, "f", Some("A"), n)).collect();
    let b: Vec<_> = (10..12).map(|n| job(&q, "f", Some("B"), n)).collect();
    store.enqueue(a.clone()).await.unwrap();
    store.enqueue(b.clone()).await.unwrap();
    let first = lease(&store, &q, "f", 10, 5_000).await;
    let ids: Vec<_> = first.iter().map(|l| l.job.id.clone()).collect();
    assert_eq!(ids, vec![a[0].id.clone(), b[0].id.clone()], "one head per group");
    // A's head fails and retries in place: A is blocked, B goes on.
    let la = &first[0];
    store.finish(&la.token, Finish::Retry { due_at: 9_000, error: err("x") }).await.unwrap();
    store.finish(&first[1].token, Finish::Complete).await.unwrap();
    let next = lease(&store, &q, "f", 10, 6_000).await;
    assert_eq!(next.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>(), vec![b[1].id.clone()]);
    let retried = lease(&store, &q, "f", 10, 9_000).await;
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].job.id.clone(), retried[0].job.attempts), (a[0].id.clone(), 2));
    store.finish(&retried[0].token, Finish::Complete).await.unwrap();
    let a1 = lease(&store, &q, "f", 10, 9_000).await;
    assert_eq!(a1.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>(), vec![a[1].id.clone()]);
}

pub async fn fifo_dead_letter_unblocks_the_group(store: Arc<dyn Store>) {
    let q = unique("q");
    let a: Vec<_> = (0..2).map(|n| job(&q, "f", Some("A"), n)).collect();
    store.enqueue(a.clone()).await.unwrap();
    let head = lease(&store, &q, "f", 10, 5_000).await.remove(0);
    store.finish(&head.token, Finish::DeadLetter { error: err("x"), at: 5_001 }).await.unwrap();
    let next = lease(&store, &q, "f", 10, 5_002).await;
    assert_eq!(next.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>(), vec![a[1].id.clone()]);
}

pub async fn fifo_redrive_reenters_at_the_tail(store: Arc<dyn Store>) {
    let q = unique("q");
    let a: Vec<_> = (0..3).map(|n| job(&q, "f", Some("A"), n)).collect();
    store.enqueue(a.clone()).await.unwrap();
    let head = lease(&store, &q, "f", 10, 5_000).await.remove(0);
    store.finish(&head.token, Finish::DeadLetter { error: err("x"), at: 5_001 }).await.unwrap();
    let second = lease(&store, &q, "f", 10, 5_002).await.remove(0);
    assert_eq!(store.redrive(&q, &[], 5_003).await.unwrap(), 1);
    assert!(lease(&store, &q, "f", 10, 5_004).await.is_empty(), "the group's head is still in flight");
    store.finish(&second.token, Finish::Complete).await.unwrap();
    let mut order = Vec::new();
    for _ in 0..2 {
        let l = lease(&store, &q, "f", 10, 5_005).await;
        assert_eq!(l.len(), 1);
        order.push(l[0].job.id.clone());
        store.finish(&l[0].token, Finish::Complete).await.unwrap();
    }
    assert_eq!(order, vec![a[2].id.clone(), a[0].id.clone()]);
}

pub async fn stale_tokens_are_refused(store: Arc<dyn Store>) {
    let q = unique("q");
    store.enqueue(vec![job(&q, "f", None, 1)]).await.unwrap();
    let first = lease(&store, &q, "f", 1, 5_000).await.remove(0);
    assert!(store.finish(&first.token, Finish::Release).await.unwrap());
    assert!(!store.finish(&first.token, Finish::Complete).await.unwrap(), "released: token is stale");
    let second = lease(&store, &q, "f", 1, 5_000).await.remove(0);
    assert_ne!(first.token, second.token);
    assert!(!store.finish(&first.token, Finish::Complete).await.unwrap(), "re-leased: old token is stale");
    assert!(store.finish(&second.token, Finish::Complete).await.unwrap());
    assert!(!store.finish(&second.token, Finish::Complete).await.unwrap(), "finished twice");
    assert_eq!(store.stats(&q).await.unwrap().completed, 1);
}

pub async fn finish_many_answers_each_end_in_order(store: Arc<dyn Store>) {
    let q = unique("q");
    store.enqueue((1..=4).map(|n| job(&q, "f", None, n)).collect()).await.unwrap();
    let l = lease(&store, &q, "f", 4, 5_000).await;
    assert_eq!(l.len(), 4);
    let answers = store
        .finish_many(vec![
            (l[0].token.clone(), Finish::Complete),
            (l[0].token.clone(), Finish::Complete), // finished just before: stale
            (l[1].token.clone(), Finish::Retry { due_at: 7_000, error: err("later") }),
            (l[2].token.clone(), Finish::DeadLetter { error: err("dead"), at: 6_000 }),
            (l[3].token.clone(), Finish::Release),
        ])
        .await;
    let answers: Vec<bool> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers, [true, false, true, true, true]);
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight, s.dead), (1, 1, 0, 1));
    assert_eq!((s.completed, s.failed, s.dead_lettered), (1, 2, 1));
    assert!(store.finish_many(Vec::new()).await.is_empty());
    let again = lease(&store, &q, "f", 4, 7_000).await;
    let mut ids: Vec<&str> = again.iter().map(|l| l.job.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![l[1].job.id.as_str(), l[3].job.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "the retried job (due) and the released one are ready again");
}

pub async fn release_does_not_count_the_attempt(store: Arc<dyn Store>) {
    let q = unique("q");
    store.enqueue(vec![job(&q, "f", None, 1)]).await.unwrap();
    let l = lease(&store, &q, "f", 1, 5_000).await.remove(0);
    store.finish(&l.token, Finish::Release).await.unwrap();
    let again = lease(&store, &q, "f", 1, 5_000).await.remove(0);
    assert_eq!(again.job.attempts, 1);
    assert_eq!(store.stats(&q).await.unwrap().failed, 0);
}

pub async fn recover_makes_in_flight_ready(store: Arc<dyn Store>) {
    let q = unique("q");
    store.enqueue((0..3).map(|n| job(&q, "f", None, n)).collect()).await.unwrap();
    let leased = lease(&store, &q, "f", 2, 5_000).await;
    assert_eq!(leased.len(), 2);
    assert!(store.recover().await.unwrap() >= 2);
    let all = lease(&store, &q, "f", 10, 5_000).await;
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|l| l.job.attempts == 1), "the interrupted attempt is not counted");
    assert!(!store.finish(&leased[0].token, Finish::Complete).await.unwrap(), "pre-recovery lease is stale");
}

pub async fn stats_track_every_state(store: Arc<dyn Store>) {
    let q = unique("q");
    store.enqueue((0..4).map(|n| job(&q, "f", None, n)).collect()).await.unwrap();
    store.enqueue((0..2).map(|n| job(&q, "f", Some("G"), n)).collect()).await.unwrap();
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.ready, s.enqueued), (6, 6), "waiting FIFO jobs count as ready");
    let l = store.lease(lease_req(&q, &[("f", 3)], 3, 5_000)).await.unwrap();
    store.finish(&l[0].token, Finish::Retry { due_at: 10_000, error: err("x") }).await.unwrap();
    store.finish(&l[1].token, Finish::DeadLetter { error: err("y"), at: 5_001 }).await.unwrap();
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight, s.dead), (3, 1, 1, 1));
    assert_eq!((s.enqueued, s.completed, s.failed, s.dead_lettered), (6, 0, 2, 1));
    assert_eq!(store.stats(&unique("empty")).await.unwrap(), Default::default());
}

pub async fn oldest_ready_is_the_first_enqueue_of_the_next_lease(store: Arc<dyn Store>) {
    let q = unique("q");
    assert_eq!(store.oldest_ready(&q).await.unwrap(), None, "an unknown queue has none");
    // Two functions: the oldest across both counts. enqueued_at is 1_000 + n.
    store.enqueue(vec![job(&q, "b", None, 5), job(&q, "a", None, 7), job(&q, "a", Some("G"), 8)]).await.unwrap();
    store.enqueue(vec![job(&q, "a", Some("G"), 3)]).await.unwrap(); // waits behind its group's head
    assert_eq!(store.oldest_ready(&q).await.unwrap(), Some(1_005));
    let first = lease(&store, &q, "b", 1, 5_000).await;
    assert_eq!(store.oldest_ready(&q).await.unwrap(), Some(1_007), "an in-flight job is not ready");
    store.finish(&first[0].token, Finish::Release).await.unwrap();
    assert_eq!(store.oldest_ready(&q).await.unwrap(), Some(1_005), "a released job is ready again");
    let all = store.lease(lease_req(&q, &[("a", 10), ("b", 10)], 10, 5_000)).await.unwrap();
    assert_eq!(all.len(), 3, "the waiting member stays behind its head");
    assert_eq!(store.oldest_ready(&q).await.unwrap(), None, "a waiting FIFO member is not ready");
    let head = all.iter().find(|l| l.job.group.is_some()).expect("the group's head");
    store.finish(&head.token, Finish::Complete).await.unwrap();
    assert_eq!(store.oldest_ready(&q).await.unwrap(), Some(1_003), "the next member is ready once its head is done");
}

pub async fn enqueue_notifies_changed(store: Arc<dyn Store>) {
    let q = unique("q");
    let changed = store.changed();
    let waiter = changed.notified();
    store.enqueue(vec![job(&q, "f", None, 1)]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), waiter).await.expect("changed is notified on enqueue");
}

fn delayed(mut j: NewJob, not_before: u64) -> NewJob {
    j.not_before = Some(not_before);
    j
}

fn keyed(mut j: NewJob, key: &str, window_ms: u64) -> NewJob {
    j.dedup = Some(Dedup { key: key.into(), window_ms });
    j
}

pub async fn delayed_enqueue_runs_no_earlier_than_due(store: Arc<dyn Store>) {
    let q = unique("q");
    let later = delayed(job(&q, "f", None, 1), 8_000);
    let now = job(&q, "f", None, 2);
    store.enqueue(vec![later.clone(), now.clone()]).await.unwrap();
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.ready, s.delayed, s.enqueued), (1, 1, 2), "the delayed job is listed as delayed");
    assert_eq!(store.next_due(&q).await.unwrap(), Some(8_000));
    let first = lease(&store, &q, "f", 10, 5_000).await;
    assert_eq!(first.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>(), vec![now.id.clone()]);
    assert!(lease(&store, &q, "f", 10, 7_999).await.is_empty(), "not before its not_before");
    let due = lease(&store, &q, "f", 10, 8_000).await;
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].job.id.clone(), due[0].job.attempts), (later.id.clone(), 1));
    assert_eq!(due[0].job.enqueued_at, later.enqueued_at, "its enqueue time stays its own");
}

pub async fn fifo_delayed_head_holds_its_group(store: Arc<dyn Store>) {
    let q = unique("q");
    let a0 = delayed(job(&q, "f", Some("A"), 0), 8_000);
    let a1 = job(&q, "f", Some("A"), 1);
    let b0 = job(&q, "f", Some("B"), 2);
    store.enqueue(vec![a0.clone(), a1.clone(), b0.clone()]).await.unwrap();
    let first = lease(&store, &q, "f", 10, 5_000).await;
    assert_eq!(first.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>(), vec![b0.id.clone()], "A waits for its head");
    let head = lease(&store, &q, "f", 10, 8_000).await;
    assert_eq!(head.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>(), vec![a0.id.clone()]);
    store.finish(&head[0].token, Finish::Complete).await.unwrap();
    let next = lease(&store, &q, "f", 10, 8_000).await;
    assert_eq!(next.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>(), vec![a1.id.clone()]);
}

pub async fn fifo_member_whose_turn_comes_early_waits_for_its_delay(store: Arc<dyn Store>) {
    let q = unique("q");
    let a0 = job(&q, "f", Some("A"), 0);
    let a1 = delayed(job(&q, "f", Some("A"), 1), 9_000);
    store.enqueue(vec![a0.clone(), a1.clone()]).await.unwrap();
    let head = lease(&store, &q, "f", 10, 5_000).await;
    assert_eq!(head.len(), 1);
    store.finish(&head[0].token, Finish::Complete).await.unwrap();
    assert!(lease(&store, &q, "f", 10, 5_000).await.is_empty(), "its turn, but not its time");
    assert_eq!(store.stats(&q).await.unwrap().delayed, 1);
    let due = lease(&store, &q, "f", 10, 9_000).await;
    assert_eq!(due.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>(), vec![a1.id.clone()]);
}

pub async fn dedup_within_the_window_answers_the_first_job(store: Arc<dyn Store>) {
    let q = unique("q");
    let other_q = unique("q");
    let first = keyed(job(&q, "f", None, 1), "order-1", 60_000);
    let again = keyed(job(&q, "f", None, 2), "order-1", 60_000);
    let answers = store.enqueue(vec![first.clone()]).await.unwrap();
    assert_eq!(answers, vec![Enqueued::created(first.id.clone())]);
    assert_eq!(store.enqueue(vec![again.clone()]).await.unwrap(), vec![Enqueued::duplicate_of(first.id.clone())]);
    // A batch with one key twice: the second is a duplicate of the first.
    let (x, y) = (keyed(job(&q, "f", None, 3), "order-2", 60_000), keyed(job(&q, "f", None, 4), "order-2", 60_000));
    let plain = job(&q, "f", None, 5);
    let answers = store.enqueue(vec![x.clone(), y, plain.clone()]).await.unwrap();
    let want = vec![
        Enqueued::created(x.id.clone()),
        Enqueued::duplicate_of(x.id.clone()),
        Enqueued::created(plain.id.clone()),
    ];
    assert_eq!(answers, want);
    // Keys are per queue.
    let elsewhere = keyed(job(&other_q, "f", None, 6), "order-1", 60_000);
    assert_eq!(store.enqueue(vec![elsewhere.clone()]).await.unwrap(), vec![Enqueued::created(elsewhere.id.clone())]);
    let s = store.stats(&q).await.unwrap();
    assert_eq!((s.ready, s.enqueued), (3, 3), "duplicates store and count nothing");
    let leased: Vec<_> = lease(&store, &q, "f", 10, 5_000).await.into_iter().map(|l| l.job.id).collect();
    assert_eq!(leased, vec![first.id.clone(), x.id.clone(), plain.id.clone()]);
    // Completed, the first job still holds its key until the window ends.
    let late = keyed(job(&q, "f", None, 7), "order-1", 60_000);
    assert_eq!(store.enqueue(vec![late]).await.unwrap(), vec![Enqueued::duplicate_of(first.id.clone())]);
}

pub async fn dedup_key_expires_after_the_window(store: Arc<dyn Store>) {
    // A minute's window (on the engine's clock, which the jobs' enqueue times are): a
    // broker whose own clean-up runs on real time keeps the claim that long, too.
    let q = unique("q");
    let at = |n: u32, t: u64| {
        let mut j = keyed(job(&q, "f", None, n), "k", 60_000);
        j.enqueued_at = t;
        j
    };
    let first = at(0, 1_000); // held until 61_000
    store.enqueue(vec![first.clone()]).await.unwrap();
    assert_eq!(store.enqueue(vec![at(1, 60_999)]).await.unwrap(), vec![Enqueued::duplicate_of(first.id.clone())]);
    let after = at(2, 61_000);
    assert_eq!(store.enqueue(vec![after.clone()]).await.unwrap(), vec![Enqueued::created(after.id.clone())]);
    assert_eq!(
        store.enqueue(vec![at(3, 61_050)]).await.unwrap(),
        vec![Enqueued::duplicate_of(after.id.clone())],
        "the new job holds the key now"
    );
    assert_eq!(store.stats(&q).await.unwrap().enqueued, 2);
}
