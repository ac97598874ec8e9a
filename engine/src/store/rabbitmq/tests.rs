//! The RabbitMQ store against the broker on `SWITCHYARD_TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`; `scripts/services.sh` starts one). Every store
//! here uses a fresh key prefix and deletes the queues it declared when dropped.

use super::RabbitStore;
use std::sync::Arc;

pub fn url() -> String {
    std::env::var("SWITCHYARD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn fresh_prefix() -> String {
    format!("sytest-{}", uuid::Uuid::now_v7().simple())
}

/// Deletes the queues of the stores it watches when dropped (after the stores).
pub struct Cleanup {
    prefix: String,
    stores: Vec<Arc<RabbitStore>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut queues: Vec<String> = self.stores.iter().flat_map(|s| s.declared_queues()).collect();
        queues.sort();
        queues.dedup();
        let claims: Vec<String> = self.stores.iter().flat_map(|s| s.claim_queues()).collect();
        self.stores.clear();
        let prefix = self.prefix.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                RabbitStore::delete_queues(&url(), &claims).await?;
                RabbitStore::delete_prefix(&url(), &prefix, &queues).await
            })
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not clean up rabbitmq prefix {}: {e}", self.prefix);
        }
    }
}

pub async fn connect(prefix: &str) -> Arc<RabbitStore> {
    Arc::new(
        RabbitStore::connect(&url(), prefix)
            .await
            .unwrap_or_else(|e| panic!("these tests need RabbitMQ at {} (scripts/services.sh starts one): {e}", url())),
    )
}

mod conformance {
    crate::store_conformance_tests!(|| async {
        let prefix = super::fresh_prefix();
        let store = super::connect(&prefix).await;
        let guard = super::Cleanup { prefix, stores: vec![store.clone()] };
        crate::store::conformance::Fixture::with_guard(store, guard)
    });
}

// ---- state that outlives its engine ------------------------------------------------------

use crate::queue::{JobError, NewJob, Payload};
use crate::store::{Finish, LeaseRequest, Store, StoreError};

fn job(queue: &str, group: Option<&str>, n: u32) -> NewJob {
    NewJob {
        not_before: None,
        dedup: None,
        priority: 0,
        id: format!("job-{n}-{}", uuid::Uuid::now_v7().simple()),
        queue: queue.into(),
        function_id: "f".into(),
        payload: Payload(bytes::Bytes::from(format!("payload-{n}"))),
        group: group.map(Into::into),
        enqueued_at: 1_000 + n as u64,
    }
}

fn req(queue: &str, now: u64) -> LeaseRequest {
    LeaseRequest { queue: queue.into(), functions: vec![("f".into(), 10)], max: 10, now }
}

/// Waits until `store` owns and has caught up every shard of `queue` (another store on
/// the prefix has just closed its connection).
async fn owns_all(store: &RabbitStore, queue: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let session = store.session().unwrap();
        let shards = session.ensure(queue, false).await.unwrap();
        if shards.iter().all(|s| s.is_active()) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the shards of {queue} did not come to the new owner");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_new_owner_keeps_attempts_errors_due_times_and_the_fifo_head() {
    let prefix = fresh_prefix();
    let first = connect(&prefix).await;
    let mut cleanup = Cleanup { prefix: prefix.clone(), stores: vec![] };
    let (a, b) = (job("q", Some("G"), 1), job("q", Some("G"), 2));
    first.enqueue(vec![a.clone(), b.clone()]).await.unwrap();
    let head = first.lease(req("q", 5_000)).await.unwrap().remove(0);
    assert_eq!(head.job.id, a.id);
    let boom = JobError { message: "boom".into(), code: "E".into(), stack: "at f".into() };
    assert!(first.finish(&head.token, Finish::Retry { due_at: 9_000, error: boom.clone() }).await.unwrap());
    // The first engine goes away; the second owns the shard from the broker alone.
    let session = first.session().unwrap();
    drop(first);
    tokio::time::timeout(std::time::Duration::from_secs(5), session.close()).await.expect("connection closes");
    drop(session);
    let second = connect(&prefix).await;
    cleanup.stores.push(second.clone());
    owns_all(&second, "q").await;
    let s = second.stats("q").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight), (1, 1, 0), "the head waits for its retry, its successor behind it");
    assert_eq!(second.next_due("q").await.unwrap(), Some(9_000));
    assert!(second.lease(req("q", 8_999)).await.unwrap().is_empty(), "the group waits for its head's retry");
    let again = second.lease(req("q", 9_000)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].job.id.as_str(), again[0].job.attempts), (a.id.as_str(), 2), "attempt 2 of the head");
    assert_eq!(again[0].job.last_error, Some(boom));
    assert!(second.finish(&again[0].token, Finish::Complete).await.unwrap());
    let next = second.lease(req("q", 9_000)).await.unwrap();
    assert_eq!(next.iter().map(|l| l.job.id.as_str()).collect::<Vec<_>>(), [b.id.as_str()]);
    drop(cleanup);
}

#[tokio::test]
async fn a_conflicting_queue_stops_start_up_with_its_name() {
    let prefix = fresh_prefix();
    let store = connect(&prefix).await;
    let cleanup = Cleanup { prefix: prefix.clone(), stores: vec![store.clone()] };
    // Someone declared a classic queue where shard 0 of `q` goes.
    let url = url();
    let connecting = lapin::Connection::connect(&url, Default::default());
    let conn = tokio::time::timeout(std::time::Duration::from_secs(20), connecting)
        .await
        .expect("RabbitMQ answers a connection in 20 s")
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let name = format!("{prefix}.q.0");
    let durable = lapin::options::QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(name.as_str().into(), durable, Default::default()).await.unwrap();
    store.inner.queues.lock().insert("q".into());
    match store.declare(&["q".to_string()]).await {
        Err(StoreError::Corrupt(m)) => assert!(m.contains(&name) && m.contains("key_prefix"), "{m}"),
        other => panic!("a conflicting queue must stop start-up: {other:?}"),
    }
    let _ = conn.close(200, "done".into()).await;
    drop(cleanup);
}

#[tokio::test]
async fn two_engines_agree_on_an_idempotency_key() {
    use crate::queue::{Dedup, Enqueued};
    let prefix = fresh_prefix();
    let (a, b) = (connect(&prefix).await, connect(&prefix).await);
    let cleanup = Cleanup { prefix: prefix.clone(), stores: vec![a.clone(), b.clone()] };
    let keyed = |n: u32| {
        let mut j = job("q", None, n);
        j.dedup = Some(Dedup { key: "charge-1".into(), window_ms: 60_000 });
        j
    };
    let first = keyed(1);
    // Both engines at once: exactly one stores its job, the other answers its id.
    let (x, y) = tokio::join!(a.enqueue(vec![first.clone()]), b.enqueue(vec![keyed(2)]));
    let (x, y) = (x.unwrap().remove(0), y.unwrap().remove(0));
    assert_ne!(x.duplicate, y.duplicate, "one is first: {x:?} {y:?}");
    let winner = if x.duplicate { y.id.clone() } else { x.id.clone() };
    assert_eq!(if x.duplicate { &x.id } else { &y.id }, &winner, "the duplicate names the stored job");
    // And later, from either engine.
    assert_eq!(a.enqueue(vec![keyed(3)]).await.unwrap(), vec![Enqueued::duplicate_of(winner.clone())]);
    assert_eq!(b.enqueue(vec![keyed(4)]).await.unwrap(), vec![Enqueued::duplicate_of(winner)]);
    drop((a, b));
    drop(cleanup);
}

/// A "broker" that accepts connections and never says a word (one still booting, or
/// killed mid-handshake): opening the store fails `Unavailable` within the connect timeout
/// instead of hanging the engine's start-up.
#[tokio::test]
async fn a_broker_that_accepts_and_never_answers_is_unavailable_not_a_hang() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..16 {
            match listener.accept().await {
                Ok((socket, _)) => held.push(socket),
                Err(_) => return,
            }
        }
    });
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let limit = super::session::CONNECT_TIMEOUT + std::time::Duration::from_secs(20);
    let opened = tokio::time::timeout(limit, RabbitStore::connect(&url, &fresh_prefix())).await;
    match opened.expect("connect gave up on its own") {
        Err(crate::store::StoreError::Unavailable(why)) => assert!(why.contains("did not complete"), "{why}"),
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("a silent peer is not a broker"),
    }
    silent.abort();
}

/// A quorum queue gives a consumer without a prefetch only ~2,000 messages; the owner holds
/// a shard's messages unacked, so without its own prefetch a longer backlog went unseen
/// (stats short, each further enqueue waiting for an arrival that never came).
#[tokio::test]
async fn a_backlog_beyond_the_brokers_default_credit_is_mirrored_whole() {
    let prefix = fresh_prefix();
    let store = connect(&prefix).await;
    let cleanup = Cleanup { prefix: prefix.clone(), stores: vec![store.clone()] };
    // One group: every job on one shard.
    let jobs: Vec<NewJob> = (0..3_000).map(|n| job("q", Some("G"), n)).collect();
    let enqueued = async {
        for batch in jobs.chunks(500) {
            store.enqueue(batch.to_vec()).await.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), enqueued).await.expect("3000 enqueues answer");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let ready = store.stats("q").await.unwrap().ready;
        if ready == 3_000 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the owner sees {ready} of 3000 waiting jobs");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(store);
    drop(cleanup);
}

// ---- requests to the owner of a shard ----------------------------------------------------

/// Another engine's request reaches this engine's control queue and its answer comes back
/// over direct reply-to, saying which shards it looked at.
#[tokio::test]
async fn a_request_to_the_owner_is_answered_over_direct_reply_to() {
    use super::control::{Reply, Request};
    let prefix = fresh_prefix();
    let (owner, asker) = (connect(&prefix).await, connect(&prefix).await);
    let cleanup = Cleanup { prefix: prefix.clone(), stores: vec![owner.clone(), asker.clone()] };
    // Only the owner consumes `q`: it owns every shard once caught up. Declared through the
    // store, so the clean-up knows to delete it.
    owner.declare(&["q".to_string()]).await.unwrap();
    owns_all(&owner, "q").await;
    let owner_id = owner.session().unwrap().id.clone();
    let request = Request::Get { queue: "q".into(), id: "nobody".into(), now: 1 };
    let wait = std::time::Duration::from_secs(10);
    match asker.session().unwrap().ask(&owner_id, &request, wait).await.unwrap() {
        Reply::Got { covered, job: None } => assert_eq!(covered, super::lifecycle::ALL, "every shard looked at"),
        other => panic!("expected a not-found answer covering every shard: {other:?}"),
    }
    drop((owner, asker));
    drop(cleanup);
}

/// An engine that has gone (no control queue) is refused at once; one whose queue exists
/// but which never answers makes the request `Unavailable` at the bound, not a hang.
#[tokio::test]
async fn an_owner_that_is_gone_or_silent_is_unavailable_not_a_hang() {
    use super::control::Request;
    let prefix = fresh_prefix();
    let asker = connect(&prefix).await;
    let cleanup = Cleanup { prefix: prefix.clone(), stores: vec![asker.clone()] };
    let session = asker.session().unwrap();
    let request = Request::Cancel { queue: "q".into(), id: "j".into(), at: 1, until: 2 };
    let short = std::time::Duration::from_millis(300);
    match session.ask("gone", &request, std::time::Duration::from_secs(10)).await {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("has gone"), "{why}"),
        other => panic!("a request to an engine without a control queue: {other:?}"),
    }
    // A control queue nobody consumes: the request waits there, unanswered.
    let conn = lapin::Connection::connect(&url(), Default::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let silent = session.names.control("silent");
    let options = lapin::options::QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
    ch.queue_declare(silent.as_str().into(), options, Default::default()).await.unwrap();
    match session.ask("silent", &request, short).await {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("did not answer"), "{why}"),
        other => panic!("a silent owner: {other:?}"),
    }
    let _ = conn.close(200, "done".into()).await;
    drop(session);
    drop(asker);
    drop(cleanup);
}

// ---- kept jobs outlive their owner ---------------------------------------------------------

/// Closes `store`'s connection, so the broker hands its shards to the next consumer.
async fn go_away(store: Arc<RabbitStore>) {
    let session = store.session().unwrap();
    drop(store);
    tokio::time::timeout(std::time::Duration::from_secs(5), session.close()).await.expect("connection closes");
}

#[tokio::test]
async fn a_kept_result_and_cancels_survive_an_owner_change_and_expire() {
    use crate::queue::JobState;
    use crate::store::CancelOutcome;
    let prefix = fresh_prefix();
    let first = connect(&prefix).await;
    let mut cleanup = Cleanup { prefix: prefix.clone(), stores: vec![] };
    let (done, ready, running) = (job("q", None, 1), job("q", None, 2), job("q", None, 3));
    first.enqueue(vec![done.clone()]).await.unwrap();
    let lease = first.lease(req("q", 5_000)).await.unwrap().remove(0);
    let result = Payload(bytes::Bytes::from_static(b"the result"));
    let kept = Finish::CompleteRetained { result: result.clone(), at: 5_000, until: 65_000 };
    assert!(first.finish(&lease.token, kept).await.unwrap());
    first.enqueue(vec![ready.clone(), running.clone()]).await.unwrap();
    match first.cancel("q", &ready.id, 5_100, 65_100).await.unwrap() {
        CancelOutcome::Cancelled(j) => assert_eq!(j.id, ready.id),
        other => panic!("a ready job is cancelled at once: {other:?}"),
    }
    let lease = first.lease(req("q", 5_200)).await.unwrap().remove(0);
    assert_eq!(lease.job.id, running.id);
    match first.cancel("q", &running.id, 5_300, 65_300).await.unwrap() {
        CancelOutcome::Cancelling(j, token) => {
            assert_eq!(j.id, running.id);
            assert_eq!(token, lease.token, "the answer names this engine's lease, so the engine stops it at once");
        }
        other => panic!("a running job is cancel-requested: {other:?}"),
    }
    assert_eq!(first.cancel_requested(std::slice::from_ref(&lease.token)).await.unwrap(), vec![lease.token.clone()]);
    // The owner dies with the cancelled job still in flight.
    go_away(first).await;
    let second = connect(&prefix).await;
    cleanup.stores.push(second.clone());
    owns_all(&second, "q").await;
    let got = second.get_job("q", &done.id, 6_000).await.unwrap().expect("the kept result is there");
    assert_eq!((got.state, got.result, got.expires_at), (JobState::Completed, Some(result), Some(65_000)));
    let got = second.get_job("q", &ready.id, 6_000).await.unwrap().expect("the cancelled job is there");
    assert_eq!((got.state, got.expires_at), (JobState::Cancelled, Some(65_100)));
    let got = second.get_job("q", &running.id, 6_000).await.unwrap().expect("the cancel-requested job is there");
    assert_eq!(got.state, JobState::Cancelled, "a new owner never runs a cancel-requested job again");
    assert!(second.lease(req("q", 6_000)).await.unwrap().is_empty(), "nothing to run");
    let s = second.stats("q").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight), (0, 0, 0), "kept jobs are in no gauge: {s:?}");
    // Expiry forgets them, and acks their messages: a third owner finds nothing.
    assert!(second.expire_finished(65_300).await.unwrap() >= 3);
    assert!(second.get_job("q", &done.id, 65_300).await.unwrap().is_none());
    go_away(second).await;
    cleanup.stores.clear();
    let third = connect(&prefix).await;
    cleanup.stores.push(third.clone());
    owns_all(&third, "q").await;
    for id in [&done.id, &ready.id, &running.id] {
        assert!(third.get_job("q", id, 1).await.unwrap().is_none(), "{id} was acked at expiry");
    }
    drop(cleanup);
}

#[tokio::test]
async fn priority_travels_in_the_message_and_orders_leases_across_shards() {
    let prefix = fresh_prefix();
    let first = connect(&prefix).await;
    let mut cleanup = Cleanup { prefix: prefix.clone(), stores: vec![] };
    let mut jobs: Vec<NewJob> = (0..8).map(|n| job("q", None, n)).collect();
    for (n, j) in jobs.iter_mut().enumerate() {
        j.priority = (n % 3) as u8 * 4; // 0, 4, 8, 0, 4, 8, …
    }
    first.enqueue(jobs.clone()).await.unwrap();
    go_away(first).await;
    let second = connect(&prefix).await;
    cleanup.stores.push(second.clone());
    owns_all(&second, "q").await;
    let leased = second.lease(req("q", 5_000)).await.unwrap();
    let order: Vec<(u8, u64)> = leased.iter().map(|l| (l.job.priority, l.job.enqueued_at)).collect();
    let mut want: Vec<(u8, u64)> = jobs.iter().map(|j| (j.priority, j.enqueued_at)).collect();
    want.sort_by_key(|(p, at)| (std::cmp::Reverse(*p), *at));
    assert_eq!(order, want, "highest priority first, then enqueue order, after an owner change");
    drop(cleanup);
}

// ---- the rate limit across engines -----------------------------------------------------

/// Two engines that split a queue's shards each grant their share: over a stepped clock,
/// the attempts both may start in any second stay within `burst + 1 + rate`, and the limit
/// is used.
#[tokio::test]
async fn two_engines_splitting_the_shards_hold_the_rate_limit_between_them() {
    use crate::limits::rate::RateLimit;
    let prefix = fresh_prefix();
    let (a, b) = (connect(&prefix).await, connect(&prefix).await);
    let cleanup = Cleanup { prefix: prefix.clone(), stores: vec![a.clone(), b.clone()] };
    a.declare(&["q".to_string()]).await.unwrap();
    b.declare(&["q".to_string()]).await.unwrap();
    let owned =
        |s: &RabbitStore| s.session().unwrap().known("q").map_or(0, |sh| sh.iter().filter(|s| s.leases()).count());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while (owned(&a), owned(&b)) != (2, 2) {
        assert!(std::time::Instant::now() < deadline, "the shards were not split: {} / {}", owned(&a), owned(&b));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let limit = RateLimit { count: 20, window_ms: 1000, burst: 2 };
    let (ga, gb) = (a.rate_gate(), b.rate_gate());
    let mut starts = Vec::new();
    for now in (0..10_000u64).step_by(5) {
        for gate in [&ga, &gb] {
            let granted = gate.take("q", &limit, 50, now).await.unwrap().granted;
            starts.extend(std::iter::repeat_n(now, granted as usize));
        }
    }
    for (i, &from) in starts.iter().enumerate() {
        let n = starts[i..].iter().take_while(|&&t| t < from + 1_000).count() as u32;
        assert!(n <= limit.burst + 1 + limit.count, "{n} starts in the second from {from}");
    }
    assert!(starts.len() >= 190, "the limit is used, not starved: {} in 10 s", starts.len());
    drop((a, b));
    drop(cleanup);
}

/// A job enqueued through an engine that does not own its shard is confirmed before its
/// owner has received it: the owner's lookup syncs with the shard first, so it finds it.
#[tokio::test]
async fn the_owner_finds_a_job_enqueued_through_another_engine_a_moment_ago() {
    let prefix = fresh_prefix();
    let owner = connect(&prefix).await;
    let cleanup_stores = vec![owner.clone()];
    let mut cleanup = Cleanup { prefix: prefix.clone(), stores: cleanup_stores };
    owns_all(&owner, "q").await;
    // A producer on the prefix that does not consume `q` (it only publishes to it).
    let producer = connect(&prefix).await;
    cleanup.stores.push(producer.clone());
    let session = producer.session().unwrap();
    for n in 0..20 {
        let j = job("q", None, n);
        let shard = super::topology::Names::shard_of(None, &j.id);
        let msg = super::codec::JobMsg {
            order_at: j.enqueued_at,
            id: j.id.clone(),
            queue: j.queue.clone(),
            function_id: j.function_id.clone(),
            payload: j.payload.clone(),
            group: None,
            enqueued_at: j.enqueued_at,
            version: 0,
            attempts: 0,
            due_at: None,
            last_error: None,
            dead: None,
            not_before: None,
            priority: 0,
            end: None,
        };
        session.publish(&session.names.shard("q", shard), &super::codec::Msg::Job(msg)).await.unwrap();
        let found = owner.get_job("q", &j.id, 5_000).await.unwrap();
        assert!(found.is_some_and(|f| f.id == j.id), "job {n} enqueued a moment ago is found by its owner");
    }
    drop(session);
    drop(cleanup);
}

/// One finish's kept completions go out as one message, which is acked only once its last
/// job expired: a new owner finds what is still kept, and nothing after the last expiry.
#[tokio::test]
async fn kept_completions_batched_in_one_message_expire_one_by_one_across_owners() {
    use super::topology::Names;
    use crate::queue::JobState;
    let prefix = fresh_prefix();
    let mut cleanup = Cleanup { prefix: prefix.clone(), stores: vec![] };
    let owner = connect(&prefix).await;
    // Four standard jobs on shard 0, ended by one call: one kept batch.
    let jobs: Vec<NewJob> =
        (0..).map(|n| job("q", None, n)).filter(|j| Names::shard_of(None, &j.id) == 0).take(4).collect();
    owner.enqueue(jobs.clone()).await.unwrap();
    let leases = owner.lease(req("q", 5_000)).await.unwrap();
    assert_eq!(leases.len(), 4);
    let ends = leases
        .into_iter()
        .enumerate()
        .map(|(n, l)| {
            let until = if n < 2 { 20_000 } else { 40_000 };
            (
                l.token,
                Finish::CompleteRetained { result: Payload(bytes::Bytes::from(format!("r{n}"))), at: 5_000, until },
            )
        })
        .collect();
    for r in owner.finish_many(ends).await {
        assert!(r.unwrap());
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let check = |store: Arc<RabbitStore>, now: u64, want: usize| {
        let ids = ids.clone();
        async move {
            let mut found = 0;
            for id in &ids {
                if let Some(j) = store.get_job("q", id, now).await.unwrap() {
                    assert_eq!(j.state, JobState::Completed);
                    assert!(j.result.is_some());
                    found += 1;
                }
            }
            assert_eq!(found, want, "kept jobs found at {now}");
        }
    };
    check(owner.clone(), 6_000, 4).await;
    go_away(owner).await;
    // Nobody consumes now: the shard holds the batch (and perhaps a counters message).
    let conn = lapin::Connection::connect(&url(), Default::default()).await.unwrap();
    let waiting = super::topology::ready_count(&conn.create_channel().await.unwrap(), &format!("{prefix}.q.0")).await;
    assert!(waiting.unwrap() <= 2, "four kept jobs, one message");
    let _ = conn.close(200, "counted".into()).await;
    let mut next = connect(&prefix).await;
    cleanup.stores.push(next.clone());
    owns_all(&next, "q").await;
    check(next.clone(), 6_000, 4).await;
    for (expire_at, left, forgotten) in [(20_000, 2, 2), (40_000, 0, 4)] {
        // The second owner after the first expiry restored the expired pair from the batch
        // too: it forgets them again with the other two.
        assert_eq!(next.expire_finished(expire_at).await.unwrap(), forgotten);
        go_away(next).await;
        cleanup.stores.clear();
        next = connect(&prefix).await;
        cleanup.stores.push(next.clone());
        owns_all(&next, "q").await;
        // Restored from the batch until it is acked, but gone at its time (and forgotten
        // by the next expiry).
        check(next.clone(), expire_at, left).await;
    }
    drop(cleanup);
}
