//! The job lifecycle on Redis: status, retention, cancel (before a run, during one, through
//! another engine, of a reclaimed lease), progress and priorities. The shared cases are in
//! the conformance suite; these are the Redis-specific ones (two store instances on one
//! prefix play two engines, the scripts' number formatting, Redis-side expiry).

use super::{PrefixGuard, connect, fresh_prefix, job, lease, short_ttl, url};
use crate::queue::{JobError, JobState, Payload, Progress};
use crate::store::redis::{RedisOptions, RedisStore, keys::Keys};
use crate::store::{CancelOutcome, Finish, LeaseRequest, Store};
use bytes::Bytes;
use std::time::Duration;

async fn two(prefix: &str) -> (RedisStore, RedisStore) {
    (connect(prefix, RedisOptions::default()).await, connect(prefix, RedisOptions::default()).await)
}

async fn redis_cmd<T: ::redis::FromRedisValue>(cmd: &mut ::redis::Cmd) -> T {
    let mut con = ::redis::Client::open(url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    cmd.query_async(&mut con).await.unwrap()
}

fn result(text: &str) -> Payload {
    Payload(Bytes::from(text.to_string()))
}

#[tokio::test]
async fn get_job_follows_a_job_through_its_states_and_forgets_it_after_retention() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let (a, b) = two(&prefix).await;
    let j = job("q", None, 1);
    a.enqueue(vec![j.clone()]).await.unwrap();
    let got = b.get_job("q", &j.id, 5_000).await.unwrap().expect("stored");
    assert_eq!((got.state, got.attempts, got.payload), (JobState::Ready, 0, j.payload.clone()));
    assert!(b.get_job("other", &j.id, 5_000).await.unwrap().is_none(), "a job is found only in its queue");
    assert!(b.get_job("q", "no-such-job", 5_000).await.unwrap().is_none());

    let l = lease(&a, "q", 1).await.remove(0);
    assert_eq!(b.get_job("q", &j.id, 5_000).await.unwrap().unwrap().state, JobState::InFlight);
    a.finish(&l.token, Finish::Retry { due_at: 6_000, error: JobError::new("E", "boom") }).await.unwrap();
    let retrying = b.get_job("q", &j.id, 5_500).await.unwrap().unwrap();
    assert_eq!((retrying.state, retrying.attempts, retrying.due_at), (JobState::Delayed, 1, 6_000));
    assert_eq!(retrying.last_error.unwrap().message, "boom");

    let req = LeaseRequest { queue: "q".into(), functions: vec![("f".into(), 1)], max: 1, now: 6_000 };
    let l = a.lease(req).await.unwrap().remove(0);
    let done = Finish::CompleteRetained { result: result("\"ok\""), at: 7_000, until: 17_000 };
    assert!(a.finish(&l.token, done).await.unwrap());
    let kept = b.get_job("q", &j.id, 16_999).await.unwrap().expect("kept until expires_at");
    assert_eq!((kept.state, kept.attempts), (JobState::Completed, 2));
    assert_eq!((kept.finished_at, kept.expires_at, kept.result), (Some(7_000), Some(17_000), Some(result("\"ok\""))));
    let s = b.stats("q").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight, s.dead, s.completed, s.failed), (0, 0, 0, 0, 1, 1));

    // Redis expires the hash too (the backstop), after the retention plus a grace.
    let ttl: i64 = redis_cmd(::redis::cmd("PTTL").arg(Keys::new(&prefix).job(&j.id))).await;
    assert!(ttl > 10_000 && ttl <= 70_000, "PTTL {ttl}");

    assert!(b.get_job("q", &j.id, 17_000).await.unwrap().is_none(), "gone at expires_at, before any sweep");
    assert_eq!(a.expire_finished(16_999).await.unwrap(), 0);
    assert_eq!(a.expire_finished(17_000).await.unwrap(), 1);
    assert_eq!(b.expire_finished(17_000).await.unwrap(), 0, "forgotten once, whichever engine sweeps");
    assert!(b.get_job("q", &j.id, 0).await.unwrap().is_none(), "deleted, whatever the reader's clock");
}

#[tokio::test]
async fn expire_finished_works_in_bounded_runs_until_all_due_are_gone() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let store = connect(&prefix, RedisOptions::default()).await;
    let n = crate::store::redis::lifecycle::EXPIRE_BATCH + 5;
    let jobs: Vec<_> = (0..n as u32).map(|i| job("q", None, i)).collect();
    store.enqueue(jobs.clone()).await.unwrap();
    for j in &jobs {
        assert!(matches!(store.cancel("q", &j.id, 2_000, 3_000).await.unwrap(), CancelOutcome::Cancelled(_)));
    }
    assert_eq!(store.expire_finished(3_000).await.unwrap(), n as u64);
    let left: u64 = redis_cmd(::redis::cmd("ZCARD").arg(Keys::new(&prefix).retained())).await;
    assert_eq!(left, 0);
}

#[tokio::test]
async fn cancel_before_a_run_takes_the_job_out_of_every_index() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let (a, b) = two(&prefix).await;
    let ready = job("q", None, 1);
    let mut delayed = job("q", None, 2);
    delayed.not_before = Some(9_000);
    let runs = job("q", None, 3);
    a.enqueue(vec![ready.clone(), delayed.clone(), runs.clone()]).await.unwrap();

    for j in [&ready, &delayed] {
        match b.cancel("q", &j.id, 2_000, 62_000).await.unwrap() {
            CancelOutcome::Cancelled(job) => {
                assert_eq!(
                    (job.state, job.finished_at, job.expires_at),
                    (JobState::Cancelled, Some(2_000), Some(62_000))
                )
            }
            other => panic!("expected Cancelled, got {other:?}"),
        }
    }
    assert!(matches!(a.cancel("q", &ready.id, 2_100, 62_100).await.unwrap(), CancelOutcome::AlreadyCancelled(_)));
    assert!(matches!(a.cancel("q", "unknown", 2_100, 62_100).await.unwrap(), CancelOutcome::NotFound));
    assert!(matches!(a.cancel("other", &ready.id, 2_100, 62_100).await.unwrap(), CancelOutcome::NotFound));

    let s = a.stats("q").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.failed, s.enqueued), (1, 0, 0, 3), "cancelled jobs are in no gauge");
    let req = LeaseRequest { queue: "q".into(), functions: vec![("f".into(), 10)], max: 10, now: 10_000 };
    let leased = a.lease(req).await.unwrap();
    assert_eq!(leased.iter().map(|l| l.job.id.as_str()).collect::<Vec<_>>(), vec![runs.id.as_str()]);
    assert!(a.finish(&leased[0].token, Finish::Complete).await.unwrap());
    assert!(a.get_job("q", &runs.id, 10_000).await.unwrap().is_none(), "no retention: deleted at once");
    assert!(matches!(a.cancel("q", &runs.id, 10_000, 70_000).await.unwrap(), CancelOutcome::NotFound));
    assert!(matches!(a.cancel("q", &ready.id, 62_000, 122_000).await.unwrap(), CancelOutcome::NotFound), "expired");
}

#[tokio::test]
async fn cancelled_fifo_members_let_their_group_move_on() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let store = connect(&prefix, RedisOptions::default()).await;
    let g: Vec<_> = (0..4).map(|n| job("q", Some("G"), n)).collect();
    store.enqueue(g.clone()).await.unwrap();
    // A waiting member, then the ready head.
    assert!(matches!(store.cancel("q", &g[1].id, 2_000, 3_000).await.unwrap(), CancelOutcome::Cancelled(_)));
    assert!(matches!(store.cancel("q", &g[0].id, 2_000, 3_000).await.unwrap(), CancelOutcome::Cancelled(_)));
    assert_eq!(store.stats("q").await.unwrap().ready, 2, "ready counts the new head and the one waiting");
    let next = lease(&store, "q", 10).await;
    assert_eq!(next.iter().map(|l| l.job.id.as_str()).collect::<Vec<_>>(), vec![g[2].id.as_str()]);
    // The head in flight: cancel is requested; its failed attempt ends it Cancelled and the
    // last member moves up.
    assert!(matches!(store.cancel("q", &g[2].id, 2_000, 3_000).await.unwrap(), CancelOutcome::Cancelling(..)));
    let failed = Finish::Retry { due_at: 5_500, error: JobError::new("E", "x") };
    assert!(store.finish(&next[0].token, failed).await.unwrap());
    let last = lease(&store, "q", 10).await;
    assert_eq!(last.iter().map(|l| l.job.id.as_str()).collect::<Vec<_>>(), vec![g[3].id.as_str()]);
    let s = store.stats("q").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight, s.failed, s.dead), (0, 0, 1, 0, 0));
}

#[tokio::test]
async fn cancel_of_another_engines_lease_reaches_it_and_ends_the_job_cancelled() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let (holder, other) = two(&prefix).await;
    let jobs: Vec<_> = (0..3).map(|n| job("q", None, n)).collect();
    holder.enqueue(jobs.clone()).await.unwrap();
    let leases = lease(&holder, "q", 3).await;
    let tokens: Vec<_> = leases.iter().map(|l| l.token.clone()).collect();
    assert!(holder.cancel_requested(&tokens).await.unwrap().is_empty());

    let token = match other.cancel("q", &jobs[1].id, 5_100, 65_100).await.unwrap() {
        CancelOutcome::Cancelling(job, token) => {
            assert!(job.cancel_requested && job.state == JobState::InFlight);
            token
        }
        other => panic!("expected Cancelling, got {other:?}"),
    };
    assert_eq!(token, leases[1].token, "the answer names the holder's lease");
    assert!(matches!(other.cancel("q", &jobs[1].id, 5_200, 65_200).await.unwrap(), CancelOutcome::AlreadyCancelled(_)));
    assert_eq!(holder.cancel_requested(&tokens).await.unwrap(), vec![token.clone()], "one round trip finds it");
    assert!(holder.get_job("q", &jobs[1].id, 5_200).await.unwrap().unwrap().cancel_requested);

    // The holder stops the attempt; a dead-lettering of a cancel-requested job is a cancel too.
    assert!(holder.finish(&token, Finish::Cancelled { at: 5_300, until: 65_300 }).await.unwrap());
    let dead = Finish::DeadLetter { error: JobError::new("E", "x"), at: 5_400 };
    assert!(other.cancel("q", &jobs[2].id, 5_350, 65_350).await.is_ok());
    assert!(holder.finish(&leases[2].token, dead).await.unwrap());
    let two_cancelled = holder.get_job("q", &jobs[2].id, 5_500).await.unwrap().unwrap();
    assert_eq!(
        (two_cancelled.state, two_cancelled.finished_at, two_cancelled.expires_at),
        (JobState::Cancelled, Some(5_400), Some(65_400))
    );
    let one = holder.get_job("q", &jobs[1].id, 5_500).await.unwrap().unwrap();
    assert_eq!((one.state, one.cancel_requested, one.expires_at), (JobState::Cancelled, false, Some(65_300)));
    assert!(holder.cancel_requested(&tokens).await.unwrap().is_empty(), "no longer in flight");

    // A cancel-requested job that completes anyway stays a completion.
    assert!(other.cancel("q", &jobs[0].id, 5_500, 65_500).await.is_ok());
    assert!(holder.finish(&leases[0].token, Finish::Complete).await.unwrap());
    let s = other.stats("q").await.unwrap();
    assert_eq!((s.in_flight, s.completed, s.failed, s.dead, s.dead_lettered, s.delayed), (0, 1, 0, 0, 0, 0));
    assert!(matches!(other.cancel("q", &jobs[1].id, 6_000, 66_000).await.unwrap(), CancelOutcome::AlreadyCancelled(_)));
}

#[tokio::test]
async fn a_released_or_reclaimed_cancel_requested_job_ends_cancelled_not_ready() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let dying = connect(&prefix, short_ttl()).await;
    let alive = connect(&prefix, short_ttl()).await;
    let (released, reclaimed) = (job("q", None, 1), job("q", None, 2));
    dying.enqueue(vec![released.clone(), reclaimed.clone()]).await.unwrap();
    let leases = lease(&dying, "q", 2).await;
    for j in [&released, &reclaimed] {
        assert!(matches!(alive.cancel("q", &j.id, 5_000, 65_000).await.unwrap(), CancelOutcome::Cancelling(..)));
    }
    assert!(dying.finish(&leases[0].token, Finish::Release).await.unwrap());
    let r = alive.get_job("q", &released.id, 5_000).await.unwrap().unwrap();
    assert_eq!((r.state, r.attempts, r.finished_at, r.expires_at), (JobState::Cancelled, 0, Some(5_000), Some(65_000)));

    dying.stop_heartbeat();
    let mut state = JobState::InFlight;
    for _ in 0..100 {
        alive.shared.heartbeat_once().await.unwrap();
        state = alive.get_job("q", &reclaimed.id, 5_000).await.unwrap().unwrap().state;
        if state != JobState::InFlight {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, JobState::Cancelled, "the dead engine's cancel-requested lease ends cancelled");
    assert!(lease(&alive, "q", 10).await.is_empty(), "neither runs again");
    let s = alive.stats("q").await.unwrap();
    assert_eq!((s.ready, s.in_flight, s.failed), (0, 0, 0));
}

#[tokio::test]
async fn progress_is_kept_under_its_lease_and_cleared_by_the_next_attempt() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let (a, b) = two(&prefix).await;
    let j = job("q", None, 1);
    a.enqueue(vec![j.clone()]).await.unwrap();
    let l = lease(&a, "q", 1).await.remove(0);
    let first = Progress { value: Some(0.1 + 0.2), detail: Some(result("{\"step\":\"upload\"}")) };
    assert!(a.set_progress(&l.token, first.clone()).await.unwrap());
    assert_eq!(b.get_job("q", &j.id, 5_000).await.unwrap().unwrap().progress, Some(first), "exact f64 round trip");
    let only_value = Progress { value: Some(1.0), detail: None };
    assert!(a.set_progress(&l.token, only_value.clone()).await.unwrap());
    assert_eq!(b.get_job("q", &j.id, 5_000).await.unwrap().unwrap().progress, Some(only_value));

    a.finish(&l.token, Finish::Retry { due_at: 5_000, error: JobError::new("E", "x") }).await.unwrap();
    assert!(!a.set_progress(&l.token, Progress::default()).await.unwrap(), "a stale lease records nothing");
    let again = lease(&a, "q", 1).await.remove(0);
    assert_eq!(again.job.progress, None, "a new attempt starts without progress");
    assert_eq!(b.get_job("q", &j.id, 5_000).await.unwrap().unwrap().progress, None);
}

#[tokio::test]
async fn leases_take_higher_priorities_first_then_enqueue_order() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let store = connect(&prefix, RedisOptions::default()).await;
    // Far into the sequence, where Lua's 14-digit number formatting would merge the scores.
    let _: () = redis_cmd(::redis::cmd("SET").arg(format!("{prefix}:seq")).arg(200_000_000_000_000u64)).await;
    let mut jobs = Vec::new();
    for (n, (priority, function)) in
        [(0, "f"), (5, "g"), (9, "f"), (5, "f"), (0, "g"), (9, "g"), (0, "f")].into_iter().enumerate()
    {
        let mut j = job("q", None, n as u32);
        j.priority = priority;
        j.function_id = function.into();
        jobs.push(j);
    }
    store.enqueue(jobs.clone()).await.unwrap();
    let oldest = store.oldest_ready("q").await.unwrap();
    assert_eq!(oldest, Some(jobs[0].enqueued_at), "the oldest ready job, whatever its priority");
    let req =
        LeaseRequest { queue: "q".into(), functions: vec![("f".into(), 10), ("g".into(), 10)], max: 10, now: 5_000 };
    let order: Vec<usize> =
        store.lease(req).await.unwrap().iter().map(|l| jobs.iter().position(|j| j.id == l.job.id).unwrap()).collect();
    assert_eq!(order, vec![2, 5, 1, 3, 0, 4, 6]);
    let got = store.get_job("q", &jobs[1].id, 5_000).await.unwrap().unwrap();
    assert_eq!(got.priority, 5);
}

#[tokio::test]
async fn a_retried_job_keeps_its_priority_and_a_dead_one_cannot_be_cancelled() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let store = connect(&prefix, RedisOptions::default()).await;
    let mut urgent = job("q", None, 1);
    urgent.priority = 9;
    let (older, dies) = (job("q", None, 0), job("q", None, 2));
    store.enqueue(vec![older.clone(), urgent.clone()]).await.unwrap();
    let first = lease(&store, "q", 1).await.remove(0);
    assert_eq!(first.job.id, urgent.id);
    store.finish(&first.token, Finish::Retry { due_at: 5_000, error: JobError::new("E", "x") }).await.unwrap();
    let again = lease(&store, "q", 1).await.remove(0);
    assert_eq!((again.job.id.as_str(), again.job.attempts), (urgent.id.as_str(), 2), "still ahead of the older job");

    store.enqueue(vec![dies.clone()]).await.unwrap();
    let rest = lease(&store, "q", 2).await;
    let l = rest.iter().find(|l| l.job.id == dies.id).unwrap();
    store.finish(&l.token, Finish::DeadLetter { error: JobError::new("E", "x"), at: 5_000 }).await.unwrap();
    match store.cancel("q", &dies.id, 6_000, 66_000).await.unwrap() {
        CancelOutcome::AlreadyFinished(job) => assert_eq!(job.state, JobState::Dead),
        other => panic!("expected AlreadyFinished, got {other:?}"),
    }
    assert_eq!(store.stats("q").await.unwrap().dead, 1, "still in the DLQ");
}
